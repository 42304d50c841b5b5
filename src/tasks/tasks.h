/* tasks.h - the table of built-in executors. */
#ifndef P2C2R_TASKS_H
#define P2C2R_TASKS_H

#include <stddef.h>

#include "p2c2r/executor.h"

/* Returns the built-in executor table and its length (static storage). */
const struct p2c2r_executor *tasks_builtin(size_t *count);

/* Finds a built-in executor by name (name_len bytes), or NULL. */
const struct p2c2r_executor *tasks_find(const char *name, size_t name_len);

#endif
