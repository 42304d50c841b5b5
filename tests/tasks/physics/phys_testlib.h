/* phys_testlib.h - helpers shared by the physics executor's tests: body
 * builders, a harness that runs exec_physics the way a peer does, and
 * file reading. */
#ifndef P2C2R_PHYS_TESTLIB_H
#define P2C2R_PHYS_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/physics.h"

/* A dynamic sphere / box at rest at (x, y, z), restitution 0, friction 0.5. */
struct phys_body ph_sphere(int64_t id, double radius, double mass, double x, double y, double z);
struct phys_body ph_box(int64_t id, double hx, double hy, double hz, double mass, double x, double y,
                        double z);

/* The ground: the plane y = 0 with its normal up. */
struct phys_plane ph_ground(int64_t id);

/* Runs exec_physics like a peer: check, then run with an output buffer of
 * exactly the size asked for (refused over out_limit bytes).  On success
 * *out is a malloc'd NUL-terminated copy of the output (caller frees).
 * err (256 bytes) receives the executor's reason on failure. */
int ph_exec(const char *input, size_t input_len, const char *params, size_t out_limit, char **out,
            size_t *out_len, char err[256]);

/* Reads a whole file into a new NUL-terminated buffer, or NULL. */
char *ph_read_file(const char *path, size_t *len);

#endif
