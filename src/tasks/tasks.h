/* tasks.h - the table of built-in executors. */
#ifndef P2C2R_TASKS_H
#define P2C2R_TASKS_H

#include <stddef.h>

#include "p2c2r/executor.h"

/* Returns the built-in executor table and its length (static storage). */
const struct p2c2r_executor *tasks_builtin(size_t *count);

/* Formats a one-line reason into err[0..cap) (no-op when err is NULL or
 * cap is 0): the common way executors and their decoders report errors. */
void tasks_errf(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Finds a built-in executor by name (name_len bytes), or NULL. */
const struct p2c2r_executor *tasks_find(const char *name, size_t name_len);

#endif
