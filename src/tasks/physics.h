/* physics.h - the physics executor's C API: decode a JSON scene, simulate
 * it (physics_world.h), encode the final state as JSON.
 *
 * The executor exec_physics (task type "physics") is these three steps
 * behind the executor ABI; tests, the benchmark and `p2c2r physics --local`
 * call the same functions directly.  The scene and output formats are
 * specified in docs/tasks/physics.md.
 *
 * Everything here is reentrant: no globals, no locale-dependent parsing or
 * formatting of numbers in the output, and the output bytes are a pure
 * function of the input bytes and params. */
#ifndef P2C2R_PHYSICS_H
#define P2C2R_PHYSICS_H

#include <stddef.h>

#include "p2c2r/executor.h"
#include "tasks/physics_world.h"

/* Largest scene accepted, in bytes (also the executor's max_input; about
 * 100,000 bodies written compactly). */
#define PHYS_MAX_INPUT (16u << 20)

/* A decoded scene: the config and the bodies and planes, in input order. */
struct phys_scene {
    struct phys_config cfg;
    struct phys_body *bodies;
    size_t nbodies;
    struct phys_plane *planes;
    size_t nplanes;
};

/* Decodes a JSON scene of len bytes (not NUL-terminated).  Every field is
 * type- and range-checked.  On success fills *out, which the caller
 * releases with phys_scene_fini.  Errors: P2C2R_EINVAL with a one-line
 * reason in err naming the field (e.g. "bodies[3].mass: must be a number"),
 * P2C2R_ETOOBIG over PHYS_MAX_INPUT, P2C2R_ENOMEM.  *out is untouched on
 * failure. */
int phys_scene_parse(const void *json, size_t len, struct phys_scene *out, char *err, size_t err_cap);

/* Releases what phys_scene_parse allocated; a zeroed scene is a no-op. */
void phys_scene_fini(struct phys_scene *s);

/* Applies the task params ("key=value\n" lines, borrowed) to cfg: `steps`
 * (an integer 0..PHYS_MAX_STEPS) and `dt` (a number in (0, PHYS_MAX_DT]);
 * other keys are ignored.  Returns 0 or P2C2R_EINVAL with a reason; cfg is
 * unchanged on failure. */
int phys_params_apply(const char *params, size_t params_len, struct phys_config *cfg, char *err,
                      size_t err_cap);

/* Encodes the world's state as the executor's output JSON (one line plus a
 * newline): steps done, dt, every body by id in scene order, and the
 * contact pairs of the last step.  Numbers are printed with 17 significant
 * digits, so they read back to the same doubles.  On success *out is a new
 * buffer (free()) of *len bytes, NUL-terminated for convenience.  Errors:
 * P2C2R_ENOMEM. */
int phys_world_to_json(struct phys_world *w, char **out, size_t *len);

/* The whole task: decode input, apply params, simulate, encode.  On success
 * *out / *out_len are as for phys_world_to_json.  Errors as the functions
 * above and phys_world_run, each with a one-line reason in err. */
int phys_run_json(const void *input, size_t input_len, const char *params, size_t params_len,
                  char **out, size_t *out_len, char *err, size_t err_cap);

/* phys_run_json that polls cancel (borrowed; NULL: never) before every step
 * and solver iteration: P2C2R_ECANCELLED once it is set. */
int phys_run_json_cancel(const void *input, size_t input_len, const char *params,
                         size_t params_len, const int *cancel, char **out, size_t *out_len,
                         char *err, size_t err_cap);

/* The executor table entry: name "physics", version 1, flags 0.  Costs a
 * task as (1 + bodies) * (1 + steps * (4 + iterations)) (docs/tasks/physics.md). */
extern const struct p2c2r_executor exec_physics;

#endif
