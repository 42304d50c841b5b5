/* task_cost.h - what a task will cost before it runs: tasks_estimate, the
 * pure function the coordinator calls to cost a task of any type by the
 * executors' estimate callbacks (executor ABI 3), and the small allocation-
 * free helpers those callbacks share (saturating arithmetic, peeking at a
 * number in a text header).
 *
 * Costs are dimensionless, in 1..P2C2R_EXEC_COST_MAX, and meant to be
 * proportional to run time within one task type (the coordinator learns the
 * time per unit per type and per peer); the formulas are in each executor's
 * page under docs/tasks/ and in docs/TASKS.md.  Everything here is pure,
 * reentrant and never allocates. */
#ifndef P2C2R_TASK_COST_H
#define P2C2R_TASK_COST_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"

/* The cost of a task of type (type_len bytes, not NUL-terminated) with these
 * params, input and blobs (all borrowed; input and any blob's data may be
 * NULL when only their sizes are known).  Calls the built-in executor's
 * estimate; a type that is not built in, or whose executor has none, costs
 * p2c2r_exec_cost_bytes (its input and blob bytes).  Never fails: malformed
 * params or input give a cost within the limits, never an error.  Thread-safe. */
uint64_t tasks_estimate(const char *type, size_t type_len, const char *params, size_t params_len,
                        const uint8_t *input, size_t input_len, const struct p2c2r_blob *blobs,
                        size_t nblobs);

/* a * b and a + b, saturating at P2C2R_EXEC_COST_MAX. */
uint64_t cost_mul(uint64_t a, uint64_t b);
uint64_t cost_add(uint64_t a, uint64_t b);
/* x clamped to 1..P2C2R_EXEC_COST_MAX. */
uint64_t cost_clamp(uint64_t x);
/* ceil(log2(x)) for x >= 1 (0 for x <= 1). */
uint32_t cost_log2(uint64_t x);

/* Finds the first occurrence of key (a NUL-terminated string such as
 * "\"width\"" or "height ") in text[0..len) and reads the unsigned decimal
 * after it, skipping spaces, tabs, ':' and '='.  Returns 1 and sets *out
 * (saturated at UINT32_MAX) when digits follow, else 0.  text may be NULL. */
int cost_peek_uint(const char *text, size_t len, const char *key, uint32_t *out);

/* Occurrences of key (NUL-terminated, not empty) in text[0..len); text may
 * be NULL (0). */
uint64_t cost_count(const char *text, size_t len, const char *key);

/* The unsigned decimal value of params key, or dflt when it is absent or not
 * a plain decimal; values over max count as max. */
uint64_t cost_param(const struct p2c2r_exec_call *call, const char *key, uint64_t dflt, uint64_t max);

#endif
