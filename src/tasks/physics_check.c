/* physics_check.c - the physics executor's validation of a scene before it
 * is simulated: the configuration (time step, steps, iterations, gravity,
 * the body count and the body-steps product), each body (id, shape, sizes,
 * mass, pose, velocities, surface) and each plane, against the limits in
 * physics_world.h.  Everything a remote sends is checked here before any
 * memory is sized from it; a refusal names the field and the allowed range.
 * Pure functions, no state. */
#include <math.h>

#include "tasks/physics_world.h"
#include "tasks/tasks.h"

void phys_config_init(struct phys_config *cfg)
{
    cfg->gravity = v3(0.0, -9.81, 0.0);
    cfg->dt = PHYS_DEFAULT_DT;
    cfg->steps = PHYS_DEFAULT_STEPS;
    cfg->iterations = PHYS_DEFAULT_ITERATIONS;
}

static int in_range(double v, double lo, double hi)
{
    return isfinite(v) && v >= lo && v <= hi;
}

static int vec_in_range(struct phys_vec3 v, double lim)
{
    return in_range(v.x, -lim, lim) && in_range(v.y, -lim, lim) && in_range(v.z, -lim, lim);
}

int phys_config_check(const struct phys_config *cfg, size_t nbodies, char *err, size_t err_cap)
{
    if (!(isfinite(cfg->dt) && cfg->dt > 0.0 && cfg->dt <= PHYS_MAX_DT)) {
        tasks_errf(err, err_cap, "dt must be a number in (0, %g], got %g", PHYS_MAX_DT, cfg->dt);
        return P2C2R_EINVAL;
    }
    if (cfg->steps > PHYS_MAX_STEPS) {
        tasks_errf(err, err_cap, "steps must be 0..%d, got %u", PHYS_MAX_STEPS, cfg->steps);
        return P2C2R_EINVAL;
    }
    if (cfg->iterations < 1 || cfg->iterations > PHYS_MAX_ITERATIONS) {
        tasks_errf(err, err_cap, "iterations must be 1..%d, got %u", PHYS_MAX_ITERATIONS, cfg->iterations);
        return P2C2R_EINVAL;
    }
    if (!vec_in_range(cfg->gravity, PHYS_MAX_GRAVITY)) {
        tasks_errf(err, err_cap, "gravity components must be finite and at most %g in magnitude",
                PHYS_MAX_GRAVITY);
        return P2C2R_EINVAL;
    }
    if (nbodies > PHYS_MAX_BODIES) {
        tasks_errf(err, err_cap, "%zu bodies, at most %d allowed", nbodies, PHYS_MAX_BODIES);
        return P2C2R_EINVAL;
    }
    if ((unsigned long long)cfg->steps * nbodies > PHYS_MAX_BODY_STEPS) {
        tasks_errf(err, err_cap, "steps x bodies = %llu is over the work limit of %llu; use fewer steps or bodies",
                (unsigned long long)cfg->steps * nbodies, PHYS_MAX_BODY_STEPS);
        return P2C2R_EINVAL;
    }
    return 0;
}

/* Restitution and friction, shared by bodies and planes. */
static int surface_check(double restitution, double friction, char *err, size_t err_cap)
{
    if (!in_range(restitution, 0.0, 1.0)) {
        tasks_errf(err, err_cap, "restitution must be from 0 to 1, got %g", restitution);
        return P2C2R_EINVAL;
    }
    if (!in_range(friction, 0.0, PHYS_MAX_FRICTION)) {
        tasks_errf(err, err_cap, "friction must be from 0 to %g, got %g", PHYS_MAX_FRICTION, friction);
        return P2C2R_EINVAL;
    }
    return 0;
}

int phys_body_check(const struct phys_body *b, char *err, size_t err_cap)
{
    if (b->id < 0 || b->id > PHYS_MAX_ID) {
        tasks_errf(err, err_cap, "id must be an integer 0..%lld", (long long)PHYS_MAX_ID);
        return P2C2R_EINVAL;
    }
    if (b->shape != PHYS_SPHERE && b->shape != PHYS_BOX) {
        tasks_errf(err, err_cap, "shape must be sphere or box");
        return P2C2R_EINVAL;
    }
    if (!(b->mass == 0.0 || in_range(b->mass, PHYS_MIN_MASS, PHYS_MAX_MASS))) {
        tasks_errf(err, err_cap, "mass must be 0 (static) or from %g to %g, got %g", PHYS_MIN_MASS,
                PHYS_MAX_MASS, b->mass);
        return P2C2R_EINVAL;
    }
    int dims = b->shape == PHYS_SPHERE ? 1 : 3;
    for (int i = 0; i < dims; i++) {
        double s = v3_get(b->size, i);
        if (!in_range(s, PHYS_MIN_SIZE, PHYS_MAX_SIZE)) {
            tasks_errf(err, err_cap, "%s must be from %g to %g, got %g",
                    b->shape == PHYS_SPHERE ? "radius" : "half_extents components", PHYS_MIN_SIZE,
                    PHYS_MAX_SIZE, s);
            return P2C2R_EINVAL;
        }
    }
    if (!vec_in_range(b->position, PHYS_MAX_COORD)) {
        tasks_errf(err, err_cap, "position components must be finite and at most %g in magnitude",
                PHYS_MAX_COORD);
        return P2C2R_EINVAL;
    }
    const struct phys_quat *q = &b->orientation;
    if (!in_range(q->w, -1e6, 1e6) || !in_range(q->x, -1e6, 1e6) || !in_range(q->y, -1e6, 1e6) ||
        !in_range(q->z, -1e6, 1e6) || quat_len2(*q) < 1e-12) {
        tasks_errf(err, err_cap, "orientation must be a non-zero quaternion [w, x, y, z] of finite numbers");
        return P2C2R_EINVAL;
    }
    if (!vec_in_range(b->velocity, PHYS_MAX_SPEED)) {
        tasks_errf(err, err_cap, "velocity components must be finite and at most %g in magnitude",
                PHYS_MAX_SPEED);
        return P2C2R_EINVAL;
    }
    if (!vec_in_range(b->angular_velocity, PHYS_MAX_SPIN)) {
        tasks_errf(err, err_cap, "angular_velocity components must be finite and at most %g in magnitude",
                PHYS_MAX_SPIN);
        return P2C2R_EINVAL;
    }
    if (b->mass == 0.0 && (v3_len2(b->velocity) != 0.0 || v3_len2(b->angular_velocity) != 0.0)) {
        tasks_errf(err, err_cap, "a static body (mass 0) cannot have a velocity");
        return P2C2R_EINVAL;
    }
    return surface_check(b->restitution, b->friction, err, err_cap);
}

int phys_plane_check(const struct phys_plane *p, char *err, size_t err_cap)
{
    if (p->id < 0 || p->id > PHYS_MAX_ID) {
        tasks_errf(err, err_cap, "id must be an integer 0..%lld", (long long)PHYS_MAX_ID);
        return P2C2R_EINVAL;
    }
    if (!vec_in_range(p->normal, 1e6) || v3_len2(p->normal) < 1e-12) {
        tasks_errf(err, err_cap, "normal must be a non-zero vector of finite numbers");
        return P2C2R_EINVAL;
    }
    if (!in_range(p->offset, -PHYS_MAX_COORD, PHYS_MAX_COORD)) {
        tasks_errf(err, err_cap, "offset must be finite and at most %g in magnitude", PHYS_MAX_COORD);
        return P2C2R_EINVAL;
    }
    return surface_check(p->restitution, p->friction, err, err_cap);
}
