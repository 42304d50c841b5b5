/* tasks.h - the table of built-in executors (registry.c) and the helpers
 * the executors share (tasks.c). */
#ifndef P2C2R_TASKS_H
#define P2C2R_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"

/* The two executors defined in tasks.c; the compute executors are declared
 * in their own headers (upscale.h, raytrace.h, physics.h, pathfind.h). */
extern const struct p2c2r_executor exec_echo;
extern const struct p2c2r_executor exec_sha256;

/* Returns the built-in executor table (static storage, constant): *count
 * pointers, one per task type, in registration order. */
const struct p2c2r_executor *const *tasks_builtin(size_t *count);

/* Formats a one-line reason into err[0..cap) (no-op when err is NULL or
 * cap is 0): the common way executors and their decoders report errors. */
void tasks_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Whether a cancel flag (NULL: never set) is set: how the inner loops of the
 * executors, which see the flag but not the call, poll it.  The same relaxed
 * load as p2c2r_exec_cancelled. */
static inline int tasks_cancelled(const int *flag)
{
    return flag && __atomic_load_n(flag, __ATOMIC_RELAXED) != 0;
}

/* The output of an executor run outside a peer (the CLI's --local runs, the
 * client library's local fallback): the call's opaque points at one, zeroed
 * but for max, and tasks_out_alloc is its alloc_output.  p is malloc'd (the
 * caller frees it), with one byte more than n for a terminating NUL. */
struct tasks_out {
    uint8_t *p;
    size_t n;
    size_t max; /* the largest output allowed; 0 = no limit */
};
void *tasks_out_alloc(struct p2c2r_exec_call *call, size_t n);

/* Finds a built-in executor by name (name_len bytes, not NUL-terminated):
 * the table's own entry (e.g. &exec_echo), or NULL. */
const struct p2c2r_executor *tasks_find(const char *name, size_t name_len);

#endif
