/* physics_world.h - the rigid-body simulation behind the physics executor:
 * spheres and boxes, static planes, gravity, a fixed time step, a uniform
 * grid broadphase and a sequential-impulse contact solver with warm
 * starting.
 *
 * A world owns copies of its bodies and planes.  A world may be used from
 * one thread at a time; distinct worlds are independent (no globals), so
 * simulations run concurrently on several threads.  The same inputs give
 * bit-identical states on every run and every peer (see physics.c for the
 * floating-point assumptions). */
#ifndef P2C2R_PHYSICS_WORLD_H
#define P2C2R_PHYSICS_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/physics_collide.h"
#include "tasks/physics_math.h"

/* Limits on what a scene may ask for (every one is checked, over it is
 * P2C2R_EINVAL).  Work is bounded by steps x bodies. */
#define PHYS_MAX_BODIES 100000
#define PHYS_MAX_PLANES 64
#define PHYS_MAX_STEPS 100000
#define PHYS_MAX_ITERATIONS 100
#define PHYS_MAX_BODY_STEPS 50000000ull /* steps x bodies */
#define PHYS_MAX_DT 1.0
#define PHYS_MAX_COORD 1e6     /* |position component|, |plane offset| */
#define PHYS_MAX_SPEED 1e4     /* |velocity component| in input; speed clamp while running */
#define PHYS_MAX_SPIN 1e3      /* |angular velocity component| in rad/s; also a clamp */
#define PHYS_MAX_GRAVITY 1e4   /* |gravity component| */
#define PHYS_MIN_SIZE 1e-3     /* radius, half extents */
#define PHYS_MAX_SIZE 1e4
#define PHYS_MIN_MASS 1e-6     /* or exactly 0 for a static body */
#define PHYS_MAX_MASS 1e9
#define PHYS_MAX_FRICTION 10.0
#define PHYS_MAX_ID 9007199254740991ll /* 2^53 - 1: exact in every JSON reader */

/* Defaults for the optional scene fields. */
#define PHYS_DEFAULT_DT (1.0 / 60.0)
#define PHYS_DEFAULT_STEPS 60
#define PHYS_DEFAULT_ITERATIONS 20
#define PHYS_DEFAULT_FRICTION 0.5
#define PHYS_DEFAULT_RESTITUTION 0.0

/* Solver constants (fixed: they are part of the executor's version). */
#define PHYS_SLOP 0.005               /* penetration left alone, m */
#define PHYS_MARGIN 0.02              /* speculative contact distance, m (at most 1/4 of the smallest body) */
#define PHYS_TOUCH 0.001              /* reported as touching: overlapping or closer than this, m */
#define PHYS_BAUMGARTE 0.2            /* share of the rest corrected per step */
#define PHYS_RESTITUTION_THRESHOLD 0.5 /* slower impacts do not bounce, m/s */

struct phys_body {
    int64_t id;                   /* unique among bodies and planes, 0..PHYS_MAX_ID */
    enum phys_shape shape;
    double mass;                  /* kg; 0 = static (never moves) */
    struct phys_vec3 size;        /* sphere: radius in x (y, z unused); box: half extents */
    struct phys_vec3 position;    /* of the centre of mass */
    struct phys_quat orientation; /* unit quaternion (normalised on input) */
    struct phys_vec3 velocity;
    struct phys_vec3 angular_velocity; /* world frame, rad/s */
    double restitution;           /* 0..1; a pair bounces with the larger of its two */
    double friction;              /* 0..PHYS_MAX_FRICTION; a pair uses sqrt(fa * fb) */
};

/* The static half-space {x : dot(normal, x) < offset}; bodies rest on the
 * side the normal points to. */
struct phys_plane {
    int64_t id;
    struct phys_vec3 normal;      /* unit (normalised on input) */
    double offset;
    double restitution;
    double friction;
};

struct phys_config {
    struct phys_vec3 gravity;     /* m/s^2 */
    double dt;                    /* s, in (0, PHYS_MAX_DT] */
    uint32_t steps;               /* 0..PHYS_MAX_STEPS */
    uint32_t iterations;          /* solver iterations per step, 1..PHYS_MAX_ITERATIONS */
};

/* A pair that touched in the last step (some contact point overlapping or
 * less than PHYS_TOUCH apart): ids of the two (a is the body that comes
 * first in the scene; b is a body or a plane), the number of such points
 * and the deepest overlap found before that step's solve (negative: a gap). */
struct phys_contact {
    int64_t a, b;
    uint32_t points;
    double depth;
};

struct phys_world;

/* Sets cfg to the defaults (gravity 0,-9.81,0). */
void phys_config_init(struct phys_config *cfg);

/* Checks a config for nbodies bodies against the limits.  Returns 0, or
 * P2C2R_EINVAL with a one-line reason in err (err may be NULL). */
int phys_config_check(const struct phys_config *cfg, size_t nbodies, char *err, size_t err_cap);

/* Checks one body / plane; the reason does not name it (callers prefix
 * where it is).  Returns 0 or P2C2R_EINVAL. */
int phys_body_check(const struct phys_body *b, char *err, size_t err_cap);
int phys_plane_check(const struct phys_plane *p, char *err, size_t err_cap);

/* Validates everything (config, each body and plane, unique ids) and builds
 * a world holding copies of bodies and planes (borrowed).  On success *out
 * is a new world the caller releases with phys_world_free.  Errors:
 * P2C2R_EINVAL with a reason in err, P2C2R_ENOMEM. */
int phys_world_new(const struct phys_config *cfg, const struct phys_body *bodies, size_t nbodies,
                   const struct phys_plane *planes, size_t nplanes, struct phys_world **out,
                   char *err, size_t err_cap);

/* Frees a world; NULL is a no-op. */
void phys_world_free(struct phys_world *w);

/* Advances the world by one step of cfg.dt.  Returns 0; P2C2R_ETOOBIG when
 * the scene is too dense for the work budget of one step (too many
 * candidate pairs or contact points: bodies piled into each other);
 * P2C2R_ENOMEM; P2C2R_ETASK if the state stopped being finite.  After an
 * error the world may only be freed. */
int phys_world_step(struct phys_world *w, char *err, size_t err_cap);

/* Makes phys_world_step and phys_world_run poll flag (borrowed; NULL:
 * never) before every step and every solver iteration and return
 * P2C2R_ECANCELLED once it is set; the world may then only be freed. */
void phys_world_set_cancel(struct phys_world *w, const int *flag);

/* Runs cfg.steps steps (phys_world_step's errors). */
int phys_world_run(struct phys_world *w, char *err, size_t err_cap);

/* The world's config (steps and dt as given; changing them is done before
 * phys_world_new). */
const struct phys_config *phys_world_config(const struct phys_world *w);

/* Steps taken so far. */
uint64_t phys_world_steps_done(const struct phys_world *w);

/* The bodies' current state, in scene order (borrowed, valid until the
 * next step or free). */
const struct phys_body *phys_world_bodies(const struct phys_world *w, size_t *n);
const struct phys_plane *phys_world_planes(const struct phys_world *w, size_t *n);

/* The touching pairs of the last step, in a fixed order (by the first
 * body's scene position, then the second's, planes after bodies).  Returns
 * P2C2R_ENOMEM or 0 with *out pointing into the world (valid until the next
 * step or free). */
int phys_world_contacts(struct phys_world *w, const struct phys_contact **out, size_t *n);

#endif
