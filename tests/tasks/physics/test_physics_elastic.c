/* test_physics_elastic.c - collisions with restitution 1 and no gravity
 * keep linear momentum and kinetic energy.
 *
 * Head-on sphere-sphere: the velocities after the impact must equal the
 * textbook 1-D elastic result.  Oblique, frictionless: momentum and energy
 * kept, no spin.  A row of equal spheres (Newton's cradle) passes the
 * velocity down the row.  And a ball dropped on an elastic plane comes
 * back up to nearly its starting height. */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "phys_testlib.h"

static double kinetic(const struct phys_body *b, size_t n)
{
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        double m = b[i].mass, r = b[i].size.x;
        e += 0.5 * m * v3_len2(b[i].velocity) + 0.5 * (0.4 * m * r * r) * v3_len2(b[i].angular_velocity);
    }
    return e;
}

static struct phys_vec3 momentum(const struct phys_body *b, size_t n)
{
    struct phys_vec3 p = v3(0, 0, 0);
    for (size_t i = 0; i < n; i++)
        p = v3_madd(p, b[i].velocity, b[i].mass);
    return p;
}

static struct phys_world *make(struct phys_body *b, size_t n, uint32_t steps)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.gravity = v3(0, 0, 0);
    cfg.steps = steps;
    for (size_t i = 0; i < n; i++) {
        b[i].restitution = 1.0;
        b[i].friction = 0.0;
    }
    struct phys_world *w = NULL;
    char err[256];
    if (!CHECK(phys_world_new(&cfg, b, n, NULL, 0, &w, err, sizeof(err)) == 0))
        fprintf(stderr, "world: %s\n", err);
    return w;
}

static void head_on(double m1, double m2, double v1, double v2)
{
    struct phys_body b[2] = {ph_sphere(1, 0.5, m1, -2.0, 0, 0), ph_sphere(2, 0.5, m2, 2.0, 0, 0)};
    b[0].velocity = v3(v1, 0, 0);
    b[1].velocity = v3(v2, 0, 0);
    struct phys_vec3 p0 = momentum(b, 2);
    double e0 = kinetic(b, 2);
    struct phys_world *w = make(b, 2, 240);
    if (!w)
        return;
    char err[256];
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    size_t n;
    const struct phys_body *s = phys_world_bodies(w, &n);
    struct phys_vec3 p1 = momentum(s, n);
    double e1 = kinetic(s, n);
    double u1 = ((m1 - m2) * v1 + 2 * m2 * v2) / (m1 + m2), u2 = ((m2 - m1) * v2 + 2 * m1 * v1) / (m1 + m2);
    printf("head-on m=%g,%g v=%g,%g: after %.17g, %.17g (expected %.17g, %.17g); dp %.3g, dE/E %.3g\n", m1,
           m2, v1, v2, s[0].velocity.x, s[1].velocity.x, u1, u2, v3_len(v3_sub(p1, p0)), (e1 - e0) / e0);
    CHECK(v3_len(v3_sub(p1, p0)) <= 1e-12 * (fabs(m1 * v1) + fabs(m2 * v2)));
    CHECK(fabs(e1 - e0) <= 1e-12 * e0);
    CHECK(fabs(s[0].velocity.x - u1) <= 1e-12 * (fabs(v1) + fabs(v2)));
    CHECK(fabs(s[1].velocity.x - u2) <= 1e-12 * (fabs(v1) + fabs(v2)));
    CHECK(s[0].velocity.y == 0 && s[0].velocity.z == 0 && s[1].velocity.y == 0 && s[1].velocity.z == 0);
    /* They separated: no overlap left, and the last step saw no contact. */
    CHECK(s[1].position.x - s[0].position.x > 1.0);
    const struct phys_contact *ct;
    size_t nc;
    CHECK(phys_world_contacts(w, &ct, &nc) == 0 && nc == 0);
    phys_world_free(w);
}

static void oblique(void)
{
    struct phys_body b[2] = {ph_sphere(1, 0.5, 1.0, -2.0, 0.3, 0.1), ph_sphere(2, 0.7, 2.5, 2.0, -0.2, 0)};
    b[0].velocity = v3(3.0, 0.1, 0.0);
    b[1].velocity = v3(-1.0, 0.0, 0.2);
    struct phys_vec3 p0 = momentum(b, 2);
    double e0 = kinetic(b, 2);
    struct phys_world *w = make(b, 2, 240);
    if (!w)
        return;
    char err[256];
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    size_t n;
    const struct phys_body *s = phys_world_bodies(w, &n);
    double e1 = kinetic(s, n);
    struct phys_vec3 p1 = momentum(s, n);
    printf("oblique: dp %.3g, dE/E %.3g, v0 after (%.4f %.4f %.4f)\n", v3_len(v3_sub(p1, p0)), (e1 - e0) / e0,
           s[0].velocity.x, s[0].velocity.y, s[0].velocity.z);
    CHECK(v3_len(v3_sub(p1, p0)) <= 1e-12 * 10);
    CHECK(fabs(e1 - e0) <= 1e-12 * e0);
    CHECK(fabs(s[0].velocity.x - 3.0) > 0.5); /* they did collide */
    /* The impulse acts along the line of centres: no torque beyond the
     * rounding of a cross product of (nearly) parallel vectors. */
    CHECK(v3_len(s[0].angular_velocity) < 1e-9 && v3_len(s[1].angular_velocity) < 1e-9);
    phys_world_free(w);
}

/* Five equal spheres in a row, just apart; the first hits the row.  Each
 * collision is between equal masses, so the velocity is handed on and the
 * last sphere leaves with it. */
static void cradle(void)
{
    struct phys_body b[5];
    b[0] = ph_sphere(1, 0.5, 1.0, -3.0, 0, 0);
    b[0].velocity = v3(2.0, 0, 0);
    for (int i = 1; i < 5; i++)
        b[i] = ph_sphere(i + 1, 0.5, 1.0, i * 1.3, 0, 0);
    struct phys_vec3 p0 = momentum(b, 5);
    double e0 = kinetic(b, 5);
    struct phys_world *w = make(b, 5, 300);
    if (!w)
        return;
    char err[256];
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    size_t n;
    const struct phys_body *s = phys_world_bodies(w, &n);
    double e1 = kinetic(s, n);
    printf("cradle: last sphere v=%.17g, others %.3g %.3g %.3g %.3g; dE/E %.3g\n", s[4].velocity.x,
           s[0].velocity.x, s[1].velocity.x, s[2].velocity.x, s[3].velocity.x, (e1 - e0) / e0);
    CHECK(v3_len(v3_sub(momentum(s, n), p0)) <= 1e-12 * 2.0);
    CHECK(fabs(e1 - e0) <= 1e-12 * e0);
    CHECK(fabs(s[4].velocity.x - 2.0) <= 1e-12);
    for (int i = 0; i < 4; i++)
        CHECK(fabs(s[i].velocity.x) <= 1e-12);
    phys_world_free(w);
}

/* A ball dropped from 2 m on a plane with restitution 1 bounces back up;
 * the discrete contact loses or gains at most a little height. */
static void bounce(void)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.dt = 1.0 / 240.0;
    struct phys_body b = ph_sphere(1, 0.25, 1.0, 0, 2.25, 0);
    b.restitution = 1.0;
    struct phys_plane g = ph_ground(0);
    g.restitution = 1.0;
    struct phys_world *w;
    char err[256];
    if (!CHECK(phys_world_new(&cfg, &b, 1, &g, 1, &w, err, sizeof(err)) == 0))
        return;
    /* Falling 2 m takes 0.64 s; the ball is back near the top at 1.28 s. */
    double top = 0.0;
    int bounced = 0;
    for (int i = 0; i < 400; i++) {
        CHECK(phys_world_step(w, err, sizeof(err)) == 0);
        size_t n;
        const struct phys_body *s = phys_world_bodies(w, &n);
        if (s[0].velocity.y > 0.0)
            bounced = 1;
        if (bounced && s[0].position.y > top)
            top = s[0].position.y;
    }
    printf("bounce: back up to %.4f m (dropped from 2.25 m)\n", top);
    CHECK(bounced);
    CHECK(fabs(top - 2.25) < 0.05);
    phys_world_free(w);
}

int main(void)
{
    head_on(1.0, 1.0, 2.0, -2.0);
    head_on(1.0, 3.0, 2.0, -1.0);
    head_on(5.0, 0.5, 1.0, 0.0);
    oblique();
    cradle();
    bounce();
    return check_report("test_physics_elastic");
}
