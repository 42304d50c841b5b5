/* test_physics_fall.c - free fall, checked analytically.
 *
 * With semi-implicit Euler (v += g dt, then x += v dt) a body starting at
 * x0 with velocity v0 is after n steps at
 *     x_n = x0 + n dt v0 + g dt^2 n (n + 1) / 2,
 * which the simulation must reproduce to rounding; and that is within
 * g dt t / 2 of the exact 1/2 g t^2 (t = n dt).  Also: a body with no
 * gravity keeps its velocity exactly, a spinning body keeps its angular
 * velocity and a unit quaternion, and a static body never moves. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "phys_testlib.h"

static void fall(double dt, uint32_t n, struct phys_vec3 g, struct phys_vec3 v0, enum phys_shape shape)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.dt = dt;
    cfg.steps = n;
    cfg.gravity = g;
    struct phys_body b = shape == PHYS_SPHERE ? ph_sphere(7, 0.5, 2.0, 1.0, 100.0, -3.0)
                                              : ph_box(7, 0.5, 0.25, 1.0, 2.0, 1.0, 100.0, -3.0);
    b.velocity = v0;
    struct phys_world *w;
    char err[256];
    if (!CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == 0))
        return;
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    CHECK(phys_world_steps_done(w) == n);
    size_t nb;
    const struct phys_body *s = phys_world_bodies(w, &nb);
    double t = n * dt, k = dt * dt * (double)n * (double)(n + 1) / 2.0;
    struct phys_vec3 closed = v3(1.0 + n * dt * v0.x + g.x * k, 100.0 + n * dt * v0.y + g.y * k,
                                 -3.0 + n * dt * v0.z + g.z * k);
    struct phys_vec3 exact = v3(1.0 + v0.x * t + 0.5 * g.x * t * t, 100.0 + v0.y * t + 0.5 * g.y * t * t,
                                -3.0 + v0.z * t + 0.5 * g.z * t * t);
    double err_closed = v3_len(v3_sub(s[0].position, closed));
    double err_exact = v3_len(v3_sub(s[0].position, exact));
    double bound = 0.5 * v3_len(g) * dt * t; /* the Euler error term */
    printf("fall dt=%g n=%u: |x - closed form| = %.3g, |x - exact| = %.3g (bound %.3g)\n", dt, n,
           err_closed, err_exact, bound);
    CHECK(err_closed <= 1e-9 * (1.0 + v3_len(closed)));
    CHECK(err_exact <= bound * (1.0 + 1e-9) + 1e-9);
    /* The velocity is exactly v0 + n g dt up to rounding. */
    struct phys_vec3 v = v3_madd(v0, g, n * dt);
    CHECK(v3_len(v3_sub(s[0].velocity, v)) <= 1e-9 * (1.0 + v3_len(v)));
    /* No torque: no spin, orientation untouched. */
    CHECK(v3_len2(s[0].angular_velocity) == 0.0);
    CHECK(s[0].orientation.w == 1.0);
    phys_world_free(w);
}

/* A body spinning freely keeps its angular velocity and its quaternion
 * stays a unit quaternion; a static body does not move at all. */
static void spin_and_static(void)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.steps = 600;
    struct phys_body b[2] = {ph_sphere(1, 0.5, 1.0, 0, 50, 0), ph_box(2, 1, 1, 1, 0.0, 10, 0, 0)};
    b[0].angular_velocity = v3(0.3, 2.0, -1.0);
    struct phys_world *w;
    char err[256];
    if (!CHECK(phys_world_new(&cfg, b, 2, NULL, 0, &w, err, sizeof(err)) == 0))
        return;
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    size_t nb;
    const struct phys_body *s = phys_world_bodies(w, &nb);
    CHECK(s[0].angular_velocity.x == 0.3 && s[0].angular_velocity.y == 2.0 && s[0].angular_velocity.z == -1.0);
    CHECK(fabs(quat_len2(s[0].orientation) - 1.0) < 1e-12);
    CHECK(s[0].orientation.w != 1.0); /* it did turn */
    CHECK(s[1].position.x == 10 && s[1].position.y == 0 && s[1].position.z == 0);
    CHECK(s[1].orientation.w == 1.0 && v3_len2(s[1].velocity) == 0.0);
    phys_world_free(w);
}

int main(void)
{
    fall(1.0 / 60.0, 60, v3(0, -9.81, 0), v3(0, 0, 0), PHYS_SPHERE);
    fall(1.0 / 60.0, 120, v3(0, -9.81, 0), v3(2.0, 5.0, -1.0), PHYS_BOX);
    fall(0.001, 1000, v3(0, -9.81, 0), v3(0, 0, 0), PHYS_SPHERE);
    fall(0.05, 40, v3(1.5, -3.0, 0.5), v3(0, 0, 0), PHYS_BOX);
    fall(0.01, 100, v3(0, 0, 0), v3(3.0, -2.0, 1.0), PHYS_SPHERE);
    spin_and_static();
    return check_report("test_physics_fall");
}
