/* raytrace_bvh.c - ray/primitive intersection and the bounding volume
 * hierarchy over the scene's spheres, light rectangles and triangles.
 *
 * The BVH is an acceleration only: rt_trace_closest returns exactly what
 * testing every primitive in canonical order (rt_trace_brute) returns, the
 * smallest t and among equal t the lowest primitive index.  Three things
 * make that hold: node boxes are conservative (each primitive's box is
 * padded by far more than any rounding error and rounded outward to float),
 * a node is skipped only when its box starts strictly beyond the best hit
 * so far, and ties are broken on the primitive index rather than on the
 * order of traversal.
 *
 * The build is binned SAH with an explicit stack; past depth 40 it splits
 * ranges in half by count, so the tree is at most 63 levels deep and the
 * fixed traversal stacks cannot overflow.  Traversal uses no heap and no
 * globals: any number of threads may trace one scene. */
#include "tasks/raytrace_scene.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define LEAF_MAX 8       /* a range this small may become a leaf when splitting does not pay */
#define SAH_BINS 16
#define SAH_DEPTH 40     /* below this depth, split by count (balanced) */
#define MAX_DEPTH 63     /* hard cap: a node this deep is a leaf whatever its size */
#define STACK_SIZE 96    /* > MAX_DEPTH + 1 */

/* ---- primitives --------------------------------------------------------------- */

double rt_sphere_hit(const struct rt_sphere *sp, const struct rt_ray *r)
{
    struct rt_v3 oc = v3_sub(r->o, sp->c);
    double a = v3_dot(r->d, r->d);
    double hb = v3_dot(oc, r->d);
    double cc = v3_dot(oc, oc) - sp->r * sp->r;
    double disc = hb * hb - a * cc;
    if (disc < 0.0)
        return INFINITY;
    double sq = sqrt(disc);
    double t = (-hb - sq) / a;
    if (t > RT_TMIN)
        return t;
    t = (-hb + sq) / a;
    return t > RT_TMIN ? t : INFINITY;
}

static double quad_hit(const struct rt_quad *q, const struct rt_ray *r)
{
    double den = v3_dot(q->n, r->d);
    if (den == 0.0)
        return INFINITY;
    double t = v3_dot(q->n, v3_sub(q->o, r->o)) / den;
    if (!(t > RT_TMIN))
        return INFINITY;
    struct rt_v3 p = v3_sub(v3_madd(r->o, r->d, t), q->o);
    /* Coordinates of p in the (e1, e2) basis, via the dual basis. */
    struct rt_v3 w = v3_cross(q->e1, q->e2);
    double ww = v3_dot(w, w);
    double u = v3_dot(w, v3_cross(p, q->e2)) / ww;
    double v = v3_dot(w, v3_cross(q->e1, p)) / ww;
    if (u < 0.0 || u > 1.0 || v < 0.0 || v > 1.0)
        return INFINITY;
    return t;
}

static struct rt_v3 vert(const struct rt_scene *s, uint32_t i)
{
    const float *p = s->verts + (size_t)i * 3;
    return v3(p[0], p[1], p[2]);
}

/* Moller-Trumbore in double on the float vertices. */
static double tri_hit(const struct rt_scene *s, uint32_t tri, const struct rt_ray *r)
{
    const uint32_t *ix = s->tris + (size_t)tri * 3;
    struct rt_v3 a = vert(s, ix[0]);
    struct rt_v3 e1 = v3_sub(vert(s, ix[1]), a), e2 = v3_sub(vert(s, ix[2]), a);
    struct rt_v3 pv = v3_cross(r->d, e2);
    double det = v3_dot(e1, pv);
    if (det == 0.0)
        return INFINITY;
    double inv = 1.0 / det;
    struct rt_v3 tv = v3_sub(r->o, a);
    double u = v3_dot(tv, pv) * inv;
    if (u < 0.0 || u > 1.0)
        return INFINITY;
    struct rt_v3 qv = v3_cross(tv, e1);
    double v = v3_dot(r->d, qv) * inv;
    if (v < 0.0 || u + v > 1.0)
        return INFINITY;
    double t = v3_dot(e2, qv) * inv;
    return t > RT_TMIN ? t : INFINITY;
}

static double plane_hit(const struct rt_plane *pl, const struct rt_ray *r)
{
    double den = v3_dot(pl->n, r->d);
    if (den == 0.0)
        return INFINITY;
    double t = v3_dot(pl->n, v3_sub(pl->p, r->o)) / den;
    return t > RT_TMIN ? t : INFINITY;
}

/* Distance to BVH primitive prim along r, or INFINITY. */
static double prim_hit(const struct rt_scene *s, uint32_t prim, const struct rt_ray *r)
{
    if (prim < s->nspheres)
        return rt_sphere_hit(&s->spheres[prim], r);
    prim -= s->nspheres;
    if (prim < s->nquads)
        return quad_hit(&s->quads[prim], r);
    return tri_hit(s, prim - s->nquads, r);
}

static void prim_bounds(const struct rt_scene *s, uint32_t prim, double lo[3], double hi[3])
{
    struct rt_v3 p[4];
    int n;
    if (prim < s->nspheres) {
        const struct rt_sphere *sp = &s->spheres[prim];
        struct rt_v3 rr = v3(sp->r, sp->r, sp->r);
        p[0] = v3_sub(sp->c, rr);
        p[1] = v3_add(sp->c, rr);
        n = 2;
    } else if (prim - s->nspheres < s->nquads) {
        const struct rt_quad *q = &s->quads[prim - s->nspheres];
        p[0] = q->o;
        p[1] = v3_add(q->o, q->e1);
        p[2] = v3_add(q->o, q->e2);
        p[3] = v3_add(p[1], q->e2);
        n = 4;
    } else {
        const uint32_t *ix = s->tris + (size_t)(prim - s->nspheres - s->nquads) * 3;
        for (int k = 0; k < 3; k++)
            p[k] = vert(s, ix[k]);
        n = 3;
    }
    for (int a = 0; a < 3; a++) {
        lo[a] = hi[a] = v3_get(p[0], a);
        for (int k = 1; k < n; k++) {
            double x = v3_get(p[k], a);
            lo[a] = x < lo[a] ? x : lo[a];
            hi[a] = x > hi[a] ? x : hi[a];
        }
    }
}

/* ---- build ------------------------------------------------------------------- */

/* An axis-aligned box as 6 floats: lo[3], hi[3]. */
struct fbox {
    float lo[3], hi[3];
};

/* A primitive being sorted into the tree: records move as ranges are
 * partitioned, so every pass over a range reads memory in order. */
struct bprim {
    struct fbox box; /* padded, rounded outward */
    float cen[3];    /* the box's centre */
    uint32_t prim;
};

static double box_area(const struct fbox *b)
{
    double dx = (double)b->hi[0] - b->lo[0], dy = (double)b->hi[1] - b->lo[1];
    double dz = (double)b->hi[2] - b->lo[2];
    if (dx < 0.0)
        return 0.0; /* empty */
    return dx * dy + dy * dz + dz * dx;
}

static void box_empty(struct fbox *b)
{
    for (int a = 0; a < 3; a++) {
        b->lo[a] = FLT_MAX;
        b->hi[a] = -FLT_MAX;
    }
}

static void box_add(struct fbox *b, const struct fbox *x)
{
    for (int a = 0; a < 3; a++) {
        b->lo[a] = x->lo[a] < b->lo[a] ? x->lo[a] : b->lo[a];
        b->hi[a] = x->hi[a] > b->hi[a] ? x->hi[a] : b->hi[a];
    }
}

static void box_add_point(struct fbox *b, const float *p)
{
    for (int a = 0; a < 3; a++) {
        b->lo[a] = p[a] < b->lo[a] ? p[a] : b->lo[a];
        b->hi[a] = p[a] > b->hi[a] ? p[a] : b->hi[a];
    }
}

/* A range of the order array waiting to become a node, with its bounds
 * and its centroids' bounds (known from the parent's split). */
struct range {
    uint32_t node, begin, end, depth;
    struct fbox box, cbox;
};

/* Bounds of rec[begin, end) and of their centroids, by a pass. */
static void range_bounds(const struct bprim *rec, struct range *r)
{
    box_empty(&r->box);
    box_empty(&r->cbox);
    for (uint32_t i = r->begin; i < r->end; i++) {
        box_add(&r->box, &rec[i].box);
        box_add_point(&r->cbox, rec[i].cen);
    }
}

static int bin_of(const struct bprim *p, int axis, float cmin, double scale)
{
    int k = (int)(((double)p->cen[axis] - cmin) * scale);
    return k < 0 ? 0 : k >= SAH_BINS ? SAH_BINS - 1 : k;
}

/* Splits range r in two (in place in rec) and fills the children's
 * ranges, or returns 0 to make r a leaf.  Binned SAH on the centroids'
 * longest axis; halves by count when that cannot split, or past SAH_DEPTH. */
static int split_range(struct bprim *rec, const struct range *r, struct range *left, struct range *right)
{
    uint32_t n = r->end - r->begin, mid = 0;
    if (n <= 2 || r->depth >= MAX_DEPTH)
        return 0;
    int axis = 0;
    for (int a = 1; a < 3; a++)
        if ((double)r->cbox.hi[a] - r->cbox.lo[a] > (double)r->cbox.hi[axis] - r->cbox.lo[axis])
            axis = a;
    double ext = (double)r->cbox.hi[axis] - r->cbox.lo[axis];
    if (r->depth < SAH_DEPTH && ext > 0.0) {
        double scale = SAH_BINS / ext;
        float cmin = r->cbox.lo[axis];
        uint32_t cnt[SAH_BINS] = {0};
        struct fbox bb[SAH_BINS], cb[SAH_BINS];
        for (int k = 0; k < SAH_BINS; k++) {
            box_empty(&bb[k]);
            box_empty(&cb[k]);
        }
        for (uint32_t i = r->begin; i < r->end; i++) {
            int k = bin_of(&rec[i], axis, cmin, scale);
            cnt[k]++;
            box_add(&bb[k], &rec[i].box);
            box_add_point(&cb[k], rec[i].cen);
        }
        /* Split k puts bins [0, k) left.  Sweep from the right, then the left. */
        struct fbox rbox[SAH_BINS], rcb[SAH_BINS], acc, cacc;
        uint32_t rcnt[SAH_BINS], total = 0;
        box_empty(&acc);
        box_empty(&cacc);
        for (int k = SAH_BINS - 1; k > 0; k--) {
            box_add(&acc, &bb[k]);
            box_add(&cacc, &cb[k]);
            total += cnt[k];
            rbox[k] = acc;
            rcb[k] = cacc;
            rcnt[k] = total;
        }
        box_empty(&acc);
        total = 0;
        double best = INFINITY;
        int best_k = -1;
        for (int k = 1; k < SAH_BINS; k++) {
            box_add(&acc, &bb[k - 1]);
            total += cnt[k - 1];
            if (total == 0 || rcnt[k] == 0)
                continue;
            double cost = box_area(&acc) * total + box_area(&rbox[k]) * rcnt[k];
            if (cost < best) {
                best = cost;
                best_k = k;
            }
        }
        double parea = box_area(&r->box);
        /* Leaf cost n, split cost 1 + expected primitives tested below. */
        if (best_k > 0 && n <= LEAF_MAX && parea > 0.0 && 1.0 + best / parea >= (double)n)
            return 0;
        if (best_k > 0) {
            uint32_t i = r->begin, j = r->end;
            while (i < j) {
                if (bin_of(&rec[i], axis, cmin, scale) < best_k) {
                    i++;
                } else {
                    struct bprim t = rec[i];
                    rec[i] = rec[--j];
                    rec[j] = t;
                }
            }
            assert(i > r->begin && i < r->end);
            *left = (struct range){0, r->begin, i, r->depth + 1, {{0}, {0}}, {{0}, {0}}};
            *right = (struct range){0, i, r->end, r->depth + 1, rbox[best_k], rcb[best_k]};
            box_empty(&left->box);
            box_empty(&left->cbox);
            for (int k = 0; k < best_k; k++) {
                box_add(&left->box, &bb[k]);
                box_add(&left->cbox, &cb[k]);
            }
            return 1;
        }
    }
    if (n <= LEAF_MAX && r->depth < SAH_DEPTH)
        return 0; /* small, and the centroids coincide */
    mid = r->begin + n / 2;
    *left = (struct range){0, r->begin, mid, r->depth + 1, {{0}, {0}}, {{0}, {0}}};
    *right = (struct range){0, mid, r->end, r->depth + 1, {{0}, {0}}, {{0}, {0}}};
    range_bounds(rec, left);
    range_bounds(rec, right);
    return 1;
}

int rt_bvh_build(struct rt_scene *s)
{
    struct rt_bvh *bv = &s->bvh;
    uint32_t n = s->nprims;
    memset(bv, 0, sizeof(*bv));
    if (n == 0)
        return 0;
    struct bprim *rec = malloc((size_t)n * sizeof(*rec));
    bv->order = malloc((size_t)n * sizeof(uint32_t));
    bv->nodes = malloc(((size_t)2 * n - 1) * sizeof(struct rt_bvh_node));
    if (!rec || !bv->order || !bv->nodes) {
        free(rec);
        rt_bvh_fini(bv);
        return P2C2R_ENOMEM;
    }
    for (uint32_t p = 0; p < n; p++) {
        double lo[3], hi[3], m = 0.0;
        prim_bounds(s, p, lo, hi);
        for (int a = 0; a < 3; a++) {
            m = fabs(lo[a]) > m ? fabs(lo[a]) : m;
            m = fabs(hi[a]) > m ? fabs(hi[a]) : m;
        }
        /* Rounding in the hit tests is ~1e-16 relative; this pad is ~1e-6. */
        double pad = 1e-6 * (m + 1e-3);
        struct bprim *bp = &rec[p];
        for (int a = 0; a < 3; a++) {
            bp->box.lo[a] = nextafterf((float)(lo[a] - pad), -INFINITY);
            bp->box.hi[a] = nextafterf((float)(hi[a] + pad), INFINITY);
            bp->cen[a] = (float)(0.5 * ((double)bp->box.lo[a] + bp->box.hi[a]));
        }
        bp->prim = p;
    }
    struct range stack[STACK_SIZE];
    int sp = 0;
    bv->nnodes = 1;
    stack[sp] = (struct range){0, 0, n, 0, {{0}, {0}}, {{0}, {0}}};
    range_bounds(rec, &stack[sp++]);
    while (sp > 0) {
        struct range r = stack[--sp], left, right;
        struct rt_bvh_node *node = &bv->nodes[r.node];
        memcpy(node->lo, r.box.lo, sizeof(node->lo));
        memcpy(node->hi, r.box.hi, sizeof(node->hi));
        if (r.depth > bv->depth)
            bv->depth = r.depth;
        if (!split_range(rec, &r, &left, &right)) {
            node->index = r.begin;
            node->count = r.end - r.begin;
            continue;
        }
        node->index = bv->nnodes;
        node->count = 0;
        left.node = bv->nnodes;
        right.node = bv->nnodes + 1;
        bv->nnodes += 2;
        assert(sp + 2 <= STACK_SIZE);
        stack[sp++] = right;
        stack[sp++] = left;
    }
    assert(bv->nnodes <= 2 * n - 1 && bv->depth <= MAX_DEPTH);
    for (uint32_t i = 0; i < n; i++)
        bv->order[i] = rec[i].prim;
    free(rec);
    return 0;
}

void rt_bvh_fini(struct rt_bvh *b)
{
    free(b->nodes);
    free(b->order);
    memset(b, 0, sizeof(*b));
}

/* ---- traversal ----------------------------------------------------------------- */

/* Slab test against a node's box, clipped to [0, tmax]; sets *tnear on a
 * hit.  On an axis the ray runs parallel to, inv is +infinity and a slab
 * distance is +-infinity, or NaN when the origin lies exactly on the slab's
 * face: the comparisons below are false for NaN, so such an axis imposes no
 * constraint, which is the right (conservative) answer for a closed slab. */
static int box_hit(const struct rt_bvh_node *nd, const struct rt_ray *r, double tmax, double *tnear)
{
    double t0 = 0.0, t1 = tmax;
    for (int a = 0; a < 3; a++) {
        double ta = ((double)nd->lo[a] - r->org[a]) * r->inv[a];
        double tb = ((double)nd->hi[a] - r->org[a]) * r->inv[a];
        if (ta > tb) {
            double x = ta;
            ta = tb;
            tb = x;
        }
        if (ta > t0)
            t0 = ta;
        if (tb < t1)
            t1 = tb;
    }
    if (t0 > t1)
        return 0;
    *tnear = t0;
    return 1;
}

/* Whether a hit at (t, prim) beats the best so far. */
static int better(double t, uint32_t prim, int found, double best_t, uint32_t best_prim, double tmax)
{
    if (!found)
        return t < tmax;
    return t < best_t || (t == best_t && prim < best_prim);
}

static void planes_closest(const struct rt_scene *s, const struct rt_ray *r, double tmax, int *found,
                           double *bt, uint32_t *bp)
{
    for (uint32_t i = 0; i < s->nplanes; i++) {
        double t = plane_hit(&s->planes[i], r);
        if (t != INFINITY && better(t, s->nprims + i, *found, *bt, *bp, tmax)) {
            *found = 1;
            *bt = t;
            *bp = s->nprims + i;
        }
    }
}

int rt_trace_closest(const struct rt_scene *s, const struct rt_ray *r, double tmax, double *t,
                     uint32_t *prim, uint64_t *work)
{
    int found = 0;
    double bt = tmax;
    uint32_t bp = UINT32_MAX;
    uint64_t steps = 0;
    if (s->nprims) {
        const struct rt_bvh_node *nodes = s->bvh.nodes;
        uint32_t stack[STACK_SIZE];
        int sp = 0;
        double tn;
        if (box_hit(&nodes[0], r, tmax, &tn))
            stack[sp++] = 0;
        while (sp > 0) {
            const struct rt_bvh_node *nd = &nodes[stack[--sp]];
            steps++;
            if (nd->count) {
                for (uint32_t i = 0; i < nd->count; i++) {
                    uint32_t p = s->bvh.order[nd->index + i];
                    double th = prim_hit(s, p, r);
                    if (th != INFINITY && better(th, p, found, bt, bp, tmax)) {
                        found = 1;
                        bt = th;
                        bp = p;
                    }
                }
                steps += nd->count;
                continue;
            }
            /* Visit the nearer child first; skip a child only when its box
             * begins strictly beyond the best hit (equal t may tie-break). */
            double lim = found ? bt : tmax;
            double ta = 0, tb = 0;
            int ha = box_hit(&nodes[nd->index], r, lim, &ta);
            int hb = box_hit(&nodes[nd->index + 1], r, lim, &tb);
            if (ha && hb) {
                assert(sp + 2 <= STACK_SIZE);
                if (ta <= tb) {
                    stack[sp++] = nd->index + 1;
                    stack[sp++] = nd->index;
                } else {
                    stack[sp++] = nd->index;
                    stack[sp++] = nd->index + 1;
                }
            } else if (ha) {
                stack[sp++] = nd->index;
            } else if (hb) {
                stack[sp++] = nd->index + 1;
            }
        }
    }
    planes_closest(s, r, tmax, &found, &bt, &bp);
    *work += steps + s->nplanes;
    if (found) {
        *t = bt;
        *prim = bp;
    }
    return found;
}

int rt_trace_brute(const struct rt_scene *s, const struct rt_ray *r, double tmax, double *t,
                   uint32_t *prim)
{
    int found = 0;
    double bt = tmax;
    uint32_t bp = UINT32_MAX;
    for (uint32_t p = 0; p < s->nprims; p++) {
        double th = prim_hit(s, p, r);
        if (th != INFINITY && better(th, p, found, bt, bp, tmax)) {
            found = 1;
            bt = th;
            bp = p;
        }
    }
    planes_closest(s, r, tmax, &found, &bt, &bp);
    if (found) {
        *t = bt;
        *prim = bp;
    }
    return found;
}

int rt_trace_occluded(const struct rt_scene *s, const struct rt_ray *r, double tmax, uint32_t ignore,
                      uint64_t *work)
{
    for (uint32_t i = 0; i < s->nplanes; i++)
        if (plane_hit(&s->planes[i], r) < tmax)
            return 1;
    if (!s->nprims)
        return 0;
    const struct rt_bvh_node *nodes = s->bvh.nodes;
    uint32_t stack[STACK_SIZE];
    int sp = 0;
    uint64_t steps = 0;
    double tn;
    int hit = 0;
    if (box_hit(&nodes[0], r, tmax, &tn))
        stack[sp++] = 0;
    while (sp > 0 && !hit) {
        const struct rt_bvh_node *nd = &nodes[stack[--sp]];
        steps++;
        if (nd->count) {
            for (uint32_t i = 0; i < nd->count && !hit; i++) {
                uint32_t p = s->bvh.order[nd->index + i];
                steps++;
                if (p != ignore && prim_hit(s, p, r) < tmax)
                    hit = 1;
            }
            continue;
        }
        for (uint32_t k = 0; k < 2; k++)
            if (box_hit(&nodes[nd->index + k], r, tmax, &tn)) {
                assert(sp < STACK_SIZE);
                stack[sp++] = nd->index + k;
            }
    }
    *work += steps;
    return hit;
}
