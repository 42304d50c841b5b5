/* test_physics_collide.c - the narrowphase (src/tasks/physics_collide.c)
 * on hand-checked configurations: every shape pair, face, edge and
 * degenerate cases, the speculative margin, and the symmetry between
 * (a, b) and (b, a). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "phys_testlib.h"
#include "tasks/physics_collide.h"

#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

static struct phys_quat axis_angle(struct phys_vec3 axis, double cos_half, double sin_half)
{
    return (struct phys_quat){cos_half, axis.x * sin_half, axis.y * sin_half, axis.z * sin_half};
}

static struct phys_geom geom(enum phys_shape s, struct phys_vec3 c, struct phys_quat q, struct phys_vec3 e)
{
    return (struct phys_geom){s, c, quat_to_mat3(quat_normalize(q)), e};
}

static const struct phys_quat ident = {1, 0, 0, 0};
/* 45 degrees: cos 22.5, sin 22.5 */
#define C22 0.92387953251128674
#define S22 0.38268343236508978

static void spheres(void)
{
    struct phys_geom a = geom(PHYS_SPHERE, v3(0, 0, 0), ident, v3(1, 1, 1));
    struct phys_geom b = geom(PHYS_SPHERE, v3(1.5, 0, 0), ident, v3(0.75, 0.75, 0.75));
    struct phys_vec3 n;
    struct phys_cp p[PHYS_MAX_POINTS];
    int m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 1);
    CHECK(NEAR(n.x, 1) && NEAR(n.y, 0) && NEAR(n.z, 0));
    CHECK(NEAR(p[0].depth, 0.25));
    CHECK(NEAR(p[0].p.x, 0.875)); /* midway between the surfaces at 0.75 and 1 */
    /* Apart by 0.1: nothing, unless the margin reaches. */
    b.c = v3(1.85, 0, 0);
    CHECK(phys_collide(&a, &b, 0.0, &n, p) == 0);
    CHECK(phys_collide(&a, &b, 0.05, &n, p) == 0);
    m = phys_collide(&a, &b, 0.2, &n, p);
    CHECK(m == 1 && NEAR(p[0].depth, -0.1));
    /* Coincident centres: a fixed normal, no NaN. */
    b.c = a.c;
    m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 1 && n.y == 1.0 && NEAR(p[0].depth, 1.75) && v3_isfinite(p[0].p));
}

static void sphere_box(void)
{
    struct phys_geom s = geom(PHYS_SPHERE, v3(0.2, 1.4, -0.1), ident, v3(0.5, 0.5, 0.5));
    struct phys_geom b = geom(PHYS_BOX, v3(0, 0, 0), ident, v3(1, 1, 1));
    struct phys_vec3 n, n2;
    struct phys_cp p[PHYS_MAX_POINTS], p2[PHYS_MAX_POINTS];
    int m = phys_collide(&s, &b, 0.0, &n, p);
    CHECK(m == 1 && NEAR(n.y, -1) && NEAR(p[0].depth, 0.1));
    if (!CHECK(NEAR(p[0].p.x, 0.2) && NEAR(p[0].p.y, 0.95) && NEAR(p[0].p.z, -0.1)))
        fprintf(stderr, "point %.17g %.17g %.17g\n", p[0].p.x, p[0].p.y, p[0].p.z);
    /* The other way round: same point, opposite normal. */
    m = phys_collide(&b, &s, 0.0, &n2, p2);
    CHECK(m == 1 && NEAR(n2.y, 1) && NEAR(p2[0].depth, 0.1) && NEAR(p2[0].p.y, p[0].p.y));
    /* Near a corner: the normal points from the corner to the centre. */
    s.c = v3(1.25, 1.25, 1.25);
    m = phys_collide(&b, &s, 0.0, &n, p);
    double k = 1.0 / sqrt(3.0);
    CHECK(m == 1 && NEAR(n.x, k) && NEAR(n.y, k) && NEAR(n.z, k));
    CHECK(NEAR(p[0].depth, 0.5 - sqrt(3 * 0.0625)));
    /* Centre inside the box: out through the nearest face (+z here). */
    s.c = v3(0.1, -0.2, 0.8);
    m = phys_collide(&b, &s, 0.0, &n, p);
    CHECK(m == 1 && NEAR(n.z, 1) && NEAR(p[0].depth, 0.5 + 0.2));
    /* A rotated box: the sphere above its top edge touches the edge. */
    b = geom(PHYS_BOX, v3(0, 0, 0), axis_angle(v3(0, 0, 1), C22, S22), v3(1, 1, 1));
    s.c = v3(0, sqrt(2.0) + 0.4, 0);
    m = phys_collide(&b, &s, 0.0, &n, p);
    CHECK(m == 1 && NEAR(n.y, 1) && NEAR(p[0].depth, 0.1));
    s.c = v3(0, sqrt(2.0) + 0.6, 0);
    CHECK(phys_collide(&b, &s, 0.0, &n, p) == 0);
}

static void box_box(void)
{
    struct phys_geom a = geom(PHYS_BOX, v3(0, 0, 0), ident, v3(1, 0.5, 1));
    struct phys_geom b = geom(PHYS_BOX, v3(0.2, 0.9, 0.1), ident, v3(0.5, 0.5, 0.5));
    struct phys_vec3 n;
    struct phys_cp p[PHYS_MAX_POINTS];
    /* Face on face: 4 points at b's bottom corners, depth 0.1. */
    int m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 4 && NEAR(n.y, 1));
    for (int i = 0; i < m; i++) {
        CHECK(NEAR(p[i].depth, 0.1));
        CHECK(NEAR(p[i].p.y, 0.45));
        CHECK(NEAR(fabs(p[i].p.x - 0.2), 0.5) && NEAR(fabs(p[i].p.z - 0.1), 0.5));
    }
    /* Swapped: the normal flips, the points stay. */
    m = phys_collide(&b, &a, 0.0, &n, p);
    CHECK(m == 4 && NEAR(n.y, -1) && NEAR(p[0].depth, 0.1));
    /* b hanging over a's edge: the contact is clipped to a's top face. */
    b.c = v3(0.9, 0.9, 0);
    m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 4 && NEAR(n.y, 1));
    for (int i = 0; i < m; i++)
        CHECK(p[i].p.x <= 1.0 + 1e-12 && p[i].p.x >= 0.4 - 1e-12);
    /* b turned 45 degrees about y: its bottom face is a diamond over a's
     * top, clipped to an octagon and reduced to 4 points. */
    b = geom(PHYS_BOX, v3(0, 0.95, 0), axis_angle(v3(0, 1, 0), C22, S22), v3(0.9, 0.5, 0.9));
    m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 4 && NEAR(n.y, 1));
    for (int i = 0; i < m; i++)
        CHECK(NEAR(p[i].depth, 0.05) && fabs(p[i].p.x) <= 1.0 + 1e-12 && fabs(p[i].p.z) <= 1.0 + 1e-12);
    /* Edge on edge: a turned about z (ridge along z), b turned about x
     * (ridge along x) resting crosswise on it, overlapping by 0.05. */
    a = geom(PHYS_BOX, v3(0, 0, 0), axis_angle(v3(0, 0, 1), C22, S22), v3(0.5, 0.5, 0.5));
    b = geom(PHYS_BOX, v3(0, sqrt(2.0) - 0.05, 0), axis_angle(v3(1, 0, 0), C22, S22), v3(0.5, 0.5, 0.5));
    m = phys_collide(&a, &b, 0.0, &n, p);
    CHECK(m == 1 && NEAR(n.y, 1) && NEAR(p[0].depth, 0.05));
    CHECK(NEAR(p[0].p.x, 0) && NEAR(p[0].p.z, 0) && NEAR(p[0].p.y, sqrt(0.5) - 0.025));
    /* Separated along an edge axis only: no contact. */
    b.c = v3(0, sqrt(2.0) + 0.05, 0);
    CHECK(phys_collide(&a, &b, 0.0, &n, p) == 0);
    /* Far apart. */
    b.c = v3(5, 0, 0);
    CHECK(phys_collide(&a, &b, 0.02, &n, p) == 0);
}

static void planes(void)
{
    struct phys_vec3 up = v3(0, 1, 0), n;
    struct phys_cp p[PHYS_MAX_POINTS];
    struct phys_geom s = geom(PHYS_SPHERE, v3(1, 0.4, 2), ident, v3(0.5, 0.5, 0.5));
    int m = phys_collide_plane(&s, up, 0.0, 0.0, &n, p);
    CHECK(m == 1 && NEAR(n.y, -1) && NEAR(p[0].depth, 0.1) && NEAR(p[0].p.y, -0.05));
    s.c.y = 0.55;
    CHECK(phys_collide_plane(&s, up, 0.0, 0.0, &n, p) == 0);
    m = phys_collide_plane(&s, up, 0.0, 0.1, &n, p);
    CHECK(m == 1 && NEAR(p[0].depth, -0.05));
    /* A box flat on the plane: its 4 bottom corners. */
    struct phys_geom b = geom(PHYS_BOX, v3(0, 0.49, 0), ident, v3(1, 0.5, 2));
    m = phys_collide_plane(&b, up, 0.0, 0.0, &n, p);
    CHECK(m == 4);
    for (int i = 0; i < m; i++)
        CHECK(NEAR(p[i].depth, 0.01) && NEAR(fabs(p[i].p.x), 1) && NEAR(fabs(p[i].p.z), 2));
    /* On an edge: 2 points. */
    b = geom(PHYS_BOX, v3(0, sqrt(0.5) - 0.01, 0), axis_angle(v3(0, 0, 1), C22, S22), v3(0.5, 0.5, 0.5));
    m = phys_collide_plane(&b, up, 0.0, 0.0, &n, p);
    CHECK(m == 2 && NEAR(p[0].depth, 0.01) && NEAR(p[1].depth, 0.01));
    /* Sunk deep: 8 corners under the plane, 4 reported, the deepest first. */
    b = geom(PHYS_BOX, v3(0, -3, 0), axis_angle(v3(1, 0, 0), C22, S22), v3(0.5, 0.5, 0.5));
    m = phys_collide_plane(&b, up, 0.0, 0.0, &n, p);
    CHECK(m == 4);
    for (int i = 1; i < m; i++)
        CHECK(p[0].depth >= p[i].depth);
    /* A tilted plane x + y = 1 (normal normalised by the caller). */
    struct phys_vec3 tn = v3(sqrt(0.5), sqrt(0.5), 0);
    s.c = v3(0.5, 0.5, 0); /* on the plane: depth = radius */
    m = phys_collide_plane(&s, tn, sqrt(0.5), 0.0, &n, p);
    CHECK(m == 1 && NEAR(p[0].depth, 0.5) && NEAR(n.x, -sqrt(0.5)));
}

int main(void)
{
    spheres();
    sphere_box();
    box_box();
    planes();
    return check_report("test_physics_collide");
}
