/* registry.c - the table of built-in executors.
 *
 * Every built-in task type is listed here by name of its executor object, so
 * a program that links the table links every executor: a missing object is
 * a link error, never a type that silently disappears from a peer.  The
 * table is constant, in the order peers register their types, and each
 * entry's name is unique (test_tasks checks both). */
#include "tasks/tasks.h"

#include <string.h>

#include "tasks/pathfind.h"
#include "tasks/physics.h"
#include "tasks/raytrace.h"
#include "tasks/upscale.h"

static const struct p2c2r_executor *const builtin[] = {
    &exec_echo, &exec_sha256, &exec_upscale, &exec_raytrace, &exec_physics, &exec_pathfind,
};

const struct p2c2r_executor *const *tasks_builtin(size_t *count)
{
    *count = sizeof(builtin) / sizeof(builtin[0]);
    return builtin;
}

const struct p2c2r_executor *tasks_find(const char *name, size_t name_len)
{
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++) {
        if (strlen(builtin[i]->name) == name_len && memcmp(builtin[i]->name, name, name_len) == 0)
            return builtin[i];
    }
    return NULL;
}
