/* physics_collide.c - contact generation for the physics executor (see
 * physics_collide.h): sphere-sphere, sphere-box, box-box, and each shape
 * against a static plane.
 *
 * Invariants: every function reports only points whose depth is above
 * -margin (overlapping, or about to: the solver treats a point with a
 * negative depth as a speculative contact that only stops an approach that
 * would close the gap within the step), at most PHYS_MAX_POINTS of them, with a unit normal pointing from the
 * first shape to the second; the choice between equal candidates is always
 * the first one in a fixed loop order, so the output is a pure function of
 * the input bits.  Degenerate inputs (coincident centres, parallel edges)
 * take a fixed fallback instead of dividing by zero.
 *
 * Known limits (documented in docs/tasks/physics.md): no continuous
 * collision detection, so a body that moves further than its own size in
 * one step can pass through another; box-box edge contacts give a single
 * point. */
#include "tasks/physics_collide.h"

#include <float.h>

/* A box whose penetration along an edge-edge axis is not clearly smaller
 * than along a face axis is treated as a face contact: face contacts give
 * up to 4 points and stable stacking, edge contacts only one. */
#define EDGE_REL_TOL 0.95
#define EDGE_ABS_TOL 1e-4

/* Reduces n > PHYS_MAX_POINTS candidate points to 4 that keep the deepest
 * point and span the largest area, compacting them to the front of p.
 * Returns the new count. */
static int reduce_points(struct phys_cp *p, int n)
{
    if (n <= PHYS_MAX_POINTS)
        return n;
    int pick[4];
    /* the deepest point */
    pick[0] = 0;
    for (int i = 1; i < n; i++)
        if (p[i].depth > p[pick[0]].depth)
            pick[0] = i;
    /* the point farthest from it */
    double best = -1.0;
    pick[1] = pick[0] == 0 ? 1 : 0;
    for (int i = 0; i < n; i++) {
        double d = v3_len2(v3_sub(p[i].p, p[pick[0]].p));
        if (i != pick[0] && d > best) {
            best = d;
            pick[1] = i;
        }
    }
    /* the point making the largest triangle with those two */
    struct phys_vec3 a = p[pick[0]].p, b = p[pick[1]].p;
    best = -1.0;
    pick[2] = -1;
    for (int i = 0; i < n; i++) {
        if (i == pick[0] || i == pick[1])
            continue;
        double ar = v3_len2(v3_cross(v3_sub(b, a), v3_sub(p[i].p, a)));
        if (ar > best) {
            best = ar;
            pick[2] = i;
        }
    }
    /* the point farthest outside that triangle: the sum of the areas it
     * makes with the three edges equals the triangle's area inside it and
     * grows outside. */
    struct phys_vec3 c = p[pick[2]].p;
    best = -1.0;
    pick[3] = -1;
    for (int i = 0; i < n; i++) {
        if (i == pick[0] || i == pick[1] || i == pick[2])
            continue;
        struct phys_vec3 q = p[i].p;
        double s = v3_len(v3_cross(v3_sub(a, q), v3_sub(b, q))) +
                   v3_len(v3_cross(v3_sub(b, q), v3_sub(c, q))) +
                   v3_len(v3_cross(v3_sub(c, q), v3_sub(a, q)));
        if (s > best) {
            best = s;
            pick[3] = i;
        }
    }
    struct phys_cp out[4];
    for (int k = 0; k < 4; k++)
        out[k] = p[pick[k]];
    for (int k = 0; k < 4; k++)
        p[k] = out[k];
    return 4;
}

static int sphere_sphere(const struct phys_geom *a, const struct phys_geom *b, double margin,
                         struct phys_vec3 *n, struct phys_cp *pts)
{
    struct phys_vec3 d = v3_sub(b->c, a->c);
    double rs = a->e.x + b->e.x, d2 = v3_len2(d);
    if (d2 >= (rs + margin) * (rs + margin))
        return 0;
    double dist = sqrt(d2);
    /* Coincident centres have no direction; any fixed one will do. */
    *n = dist > 1e-12 ? v3_scale(d, 1.0 / dist) : v3(0.0, 1.0, 0.0);
    double depth = rs - dist;
    pts[0].p = v3_madd(a->c, *n, a->e.x - 0.5 * depth);
    pts[0].depth = depth;
    return 1;
}

/* Sphere s against box b; the normal points from the sphere to the box. */
static int sphere_box(const struct phys_geom *s, const struct phys_geom *b, double margin,
                      struct phys_vec3 *n, struct phys_cp *pts)
{
    double r = s->e.x;
    struct phys_vec3 local = mat3_tmul_v(&b->r, v3_sub(s->c, b->c));
    struct phys_vec3 cl = local;
    int inside = 1;
    for (int i = 0; i < 3; i++) {
        double v = v3_get(local, i), e = v3_get(b->e, i);
        if (v > e) {
            cl = v3_set(cl, i, e);
            inside = 0;
        } else if (v < -e) {
            cl = v3_set(cl, i, -e);
            inside = 0;
        }
    }
    struct phys_vec3 out_local; /* unit, from the box towards the sphere */
    double depth;
    if (inside) {
        /* The centre is inside: leave through the nearest face. */
        int axis = 0;
        double best = DBL_MAX;
        for (int i = 0; i < 3; i++) {
            double gap = v3_get(b->e, i) - fabs(v3_get(local, i));
            if (gap < best) {
                best = gap;
                axis = i;
            }
        }
        double sgn = v3_get(local, axis) < 0.0 ? -1.0 : 1.0;
        out_local = v3_set(v3(0, 0, 0), axis, sgn);
        cl = v3_set(local, axis, sgn * v3_get(b->e, axis));
        depth = r + best;
    } else {
        struct phys_vec3 d = v3_sub(local, cl);
        double d2 = v3_len2(d);
        if (d2 >= (r + margin) * (r + margin))
            return 0;
        double dist = sqrt(d2);
        /* outside the box, so dist > 0 unless rounding put it on a face */
        if (dist <= 1e-12)
            return 0;
        out_local = v3_scale(d, 1.0 / dist);
        depth = r - dist;
    }
    struct phys_vec3 out = mat3_mul_v(&b->r, out_local);
    struct phys_vec3 surf = v3_add(b->c, mat3_mul_v(&b->r, cl));
    *n = v3_neg(out);
    pts[0].p = v3_madd(surf, out, -0.5 * depth);
    pts[0].depth = depth;
    return 1;
}

/* Sutherland-Hodgman: keeps the part of polygon in[0..n) where
 * dot(axis, p) * sign <= limit.  Returns the new vertex count (out has room
 * for 2n). */
static int clip_polygon(const struct phys_vec3 *in, int n, struct phys_vec3 axis, double sign,
                        double limit, struct phys_vec3 *out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        struct phys_vec3 p = in[i], q = in[(i + 1) % n];
        double dp = sign * v3_dot(axis, p) - limit, dq = sign * v3_dot(axis, q) - limit;
        if (dp <= 0.0)
            out[m++] = p;
        if ((dp < 0.0 && dq > 0.0) || (dp > 0.0 && dq < 0.0)) {
            double t = dp / (dp - dq);
            out[m++] = v3_madd(p, v3_sub(q, p), t);
        }
    }
    return m;
}

/* Face contact: ref's face with outward normal rn (one of ref's axes,
 * index ai) touches inc.  Points are written with their depth along rn. */
static int face_contact(const struct phys_geom *ref, const struct phys_geom *inc, int ai,
                        struct phys_vec3 rn, double margin, struct phys_cp *pts)
{
    /* The incident face: inc's face most opposed to rn. */
    int bj = 0;
    double best = -1.0;
    for (int j = 0; j < 3; j++) {
        double d = fabs(v3_dot(mat3_col(&inc->r, j), rn));
        if (d > best) {
            best = d;
            bj = j;
        }
    }
    struct phys_vec3 ibn = mat3_col(&inc->r, bj);
    double s = v3_dot(ibn, rn) > 0.0 ? -1.0 : 1.0;
    int u = (bj + 1) % 3, v = (bj + 2) % 3;
    struct phys_vec3 fc = v3_madd(inc->c, ibn, s * v3_get(inc->e, bj));
    struct phys_vec3 au = v3_scale(mat3_col(&inc->r, u), v3_get(inc->e, u));
    struct phys_vec3 av = v3_scale(mat3_col(&inc->r, v), v3_get(inc->e, v));
    struct phys_vec3 poly[16], tmp[16];
    poly[0] = v3_add(v3_add(fc, au), av);
    poly[1] = v3_add(v3_sub(fc, au), av);
    poly[2] = v3_sub(v3_sub(fc, au), av);
    poly[3] = v3_sub(v3_add(fc, au), av);
    int n = 4;
    /* Clip against the four side planes of the reference face. */
    for (int k = 0; k < 3 && n > 0; k++) {
        if (k == ai)
            continue;
        struct phys_vec3 ax = mat3_col(&ref->r, k);
        double c = v3_dot(ax, ref->c), e = v3_get(ref->e, k);
        n = clip_polygon(poly, n, ax, 1.0, c + e, tmp);
        n = clip_polygon(tmp, n, ax, -1.0, -(c - e), poly);
    }
    double face = v3_dot(rn, ref->c) + v3_get(ref->e, ai);
    struct phys_cp cand[16];
    int m = 0;
    for (int i = 0; i < n; i++) {
        double depth = face - v3_dot(rn, poly[i]);
        if (depth > -margin) {
            cand[m].p = v3_madd(poly[i], rn, 0.5 * depth);
            cand[m].depth = depth;
            m++;
        }
    }
    m = reduce_points(cand, m);
    for (int i = 0; i < m; i++)
        pts[i] = cand[i];
    return m;
}

/* Closest points of segments p1 + s d1 and p2 + t d2 (s, t in [-1, 1]:
 * d1, d2 are half-lengths).  Writes the midpoint of the two closest points. */
static struct phys_vec3 segment_midpoint(struct phys_vec3 p1, struct phys_vec3 d1, struct phys_vec3 p2,
                                         struct phys_vec3 d2)
{
    struct phys_vec3 r = v3_sub(p1, p2);
    double a = v3_dot(d1, d1), e = v3_dot(d2, d2), b = v3_dot(d1, d2);
    double c = v3_dot(d1, r), f = v3_dot(d2, r);
    double den = a * e - b * b, s = 0.0, t;
    if (den > 1e-12 * a * e)
        s = (b * f - c * e) / den;
    s = s < -1.0 ? -1.0 : s > 1.0 ? 1.0 : s;
    t = (b * s + f) / e;
    if (t < -1.0 || t > 1.0) {
        t = t < -1.0 ? -1.0 : 1.0;
        s = (b * t - c) / a;
        s = s < -1.0 ? -1.0 : s > 1.0 ? 1.0 : s;
    }
    struct phys_vec3 q1 = v3_madd(p1, d1, s), q2 = v3_madd(p2, d2, t);
    return v3_scale(v3_add(q1, q2), 0.5);
}

static int box_box(const struct phys_geom *a, const struct phys_geom *b, double margin,
                   struct phys_vec3 *n, struct phys_cp *pts)
{
    struct phys_vec3 ua[3], ub[3];
    double ea[3], eb[3], rel[3][3], arel[3][3];
    for (int i = 0; i < 3; i++) {
        ua[i] = mat3_col(&a->r, i);
        ub[i] = mat3_col(&b->r, i);
        ea[i] = v3_get(a->e, i);
        eb[i] = v3_get(b->e, i);
    }
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            rel[i][j] = v3_dot(ua[i], ub[j]);
            arel[i][j] = fabs(rel[i][j]);
        }
    struct phys_vec3 t = v3_sub(b->c, a->c);

    /* Face axes of a (kind 0), of b (kind 1). */
    double face_pen = DBL_MAX;
    int face_kind = 0, face_axis = 0;
    for (int i = 0; i < 3; i++) {
        double rb = eb[0] * arel[i][0] + eb[1] * arel[i][1] + eb[2] * arel[i][2];
        double pen = ea[i] + rb - fabs(v3_dot(t, ua[i]));
        if (pen <= -margin)
            return 0;
        if (pen < face_pen) {
            face_pen = pen;
            face_kind = 0;
            face_axis = i;
        }
    }
    for (int j = 0; j < 3; j++) {
        double ra = ea[0] * arel[0][j] + ea[1] * arel[1][j] + ea[2] * arel[2][j];
        double pen = ra + eb[j] - fabs(v3_dot(t, ub[j]));
        if (pen <= -margin)
            return 0;
        /* b's face wins only when clearly better, so that two aligned
         * boxes always pick a's face: a stable choice across steps. */
        if (pen < face_pen * 0.999999 - 1e-9) {
            face_pen = pen;
            face_kind = 1;
            face_axis = j;
        }
    }
    /* Edge-edge axes ua[i] x ub[j]. */
    double edge_pen = DBL_MAX;
    int edge_i = -1, edge_j = -1;
    struct phys_vec3 edge_axis = v3(0, 0, 0);
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            struct phys_vec3 l = v3_cross(ua[i], ub[j]);
            double len2 = v3_len2(l);
            /* Parallel edges: the face axes already cover this direction. */
            if (len2 < 1e-10)
                continue;
            l = v3_scale(l, 1.0 / sqrt(len2));
            double ra = 0.0, rb = 0.0;
            for (int k = 0; k < 3; k++) {
                ra += ea[k] * fabs(v3_dot(ua[k], l));
                rb += eb[k] * fabs(v3_dot(ub[k], l));
            }
            double pen = ra + rb - fabs(v3_dot(t, l));
            if (pen <= -margin)
                return 0;
            if (pen < edge_pen) {
                edge_pen = pen;
                edge_i = i;
                edge_j = j;
                edge_axis = l;
            }
        }

    if (edge_i >= 0 && edge_pen < face_pen - (1.0 - EDGE_REL_TOL) * fabs(face_pen) - EDGE_ABS_TOL) {
        struct phys_vec3 nn = v3_dot(edge_axis, t) < 0.0 ? v3_neg(edge_axis) : edge_axis;
        /* The edge of a furthest along nn and the edge of b furthest
         * against it. */
        struct phys_vec3 pa = a->c, pb = b->c;
        for (int k = 0; k < 3; k++) {
            if (k != edge_i)
                pa = v3_madd(pa, ua[k], v3_dot(ua[k], nn) >= 0.0 ? ea[k] : -ea[k]);
            if (k != edge_j)
                pb = v3_madd(pb, ub[k], v3_dot(ub[k], nn) <= 0.0 ? eb[k] : -eb[k]);
        }
        *n = nn;
        pts[0].p = segment_midpoint(pa, v3_scale(ua[edge_i], ea[edge_i]), pb,
                                    v3_scale(ub[edge_j], eb[edge_j]));
        pts[0].depth = edge_pen;
        return 1;
    }

    int m;
    if (face_kind == 0) {
        struct phys_vec3 nn = v3_dot(ua[face_axis], t) < 0.0 ? v3_neg(ua[face_axis]) : ua[face_axis];
        *n = nn;
        m = face_contact(a, b, face_axis, nn, margin, pts);
    } else {
        /* b is the reference: its face points back at a. */
        struct phys_vec3 nn = v3_dot(ub[face_axis], t) < 0.0 ? v3_neg(ub[face_axis]) : ub[face_axis];
        *n = nn;
        m = face_contact(b, a, face_axis, v3_neg(nn), margin, pts);
    }
    return m;
}

int phys_collide(const struct phys_geom *a, const struct phys_geom *b, double margin, struct phys_vec3 *n,
                 struct phys_cp pts[PHYS_MAX_POINTS])
{
    if (a->shape == PHYS_SPHERE && b->shape == PHYS_SPHERE)
        return sphere_sphere(a, b, margin, n, pts);
    if (a->shape == PHYS_SPHERE)
        return sphere_box(a, b, margin, n, pts);
    if (b->shape == PHYS_SPHERE) {
        int m = sphere_box(b, a, margin, n, pts);
        if (m)
            *n = v3_neg(*n);
        return m;
    }
    return box_box(a, b, margin, n, pts);
}

int phys_collide_plane(const struct phys_geom *a, struct phys_vec3 pn, double offset, double margin,
                       struct phys_vec3 *n, struct phys_cp pts[PHYS_MAX_POINTS])
{
    *n = v3_neg(pn);
    if (a->shape == PHYS_SPHERE) {
        double depth = offset - (v3_dot(pn, a->c) - a->e.x);
        if (depth <= -margin)
            return 0;
        pts[0].p = v3_madd(a->c, pn, 0.5 * depth - a->e.x);
        pts[0].depth = depth;
        return 1;
    }
    struct phys_cp cand[8];
    int m = 0;
    struct phys_vec3 ax = v3_scale(mat3_col(&a->r, 0), a->e.x);
    struct phys_vec3 ay = v3_scale(mat3_col(&a->r, 1), a->e.y);
    struct phys_vec3 az = v3_scale(mat3_col(&a->r, 2), a->e.z);
    for (int i = 0; i < 8; i++) {
        struct phys_vec3 p = a->c;
        p = v3_madd(p, ax, (i & 1) ? -1.0 : 1.0);
        p = v3_madd(p, ay, (i & 2) ? -1.0 : 1.0);
        p = v3_madd(p, az, (i & 4) ? -1.0 : 1.0);
        double depth = offset - v3_dot(pn, p);
        if (depth > -margin) {
            cand[m].p = v3_madd(p, pn, 0.5 * depth);
            cand[m].depth = depth;
            m++;
        }
    }
    m = reduce_points(cand, m);
    for (int i = 0; i < m; i++)
        pts[i] = cand[i];
    return m;
}
