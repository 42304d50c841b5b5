/* physics_world.c - the rigid-body simulation of the physics executor (see
 * physics_world.h).
 *
 * One step: (1) the broadphase puts every body's bounding box into the
 * cells of a uniform grid (hashed into buckets by a counting sort) and,
 * body by body in scene order, collects the candidates with a higher index
 * whose boxes overlap; bodies much larger than the median skip the grid and
 * are tested against everyone.  (2) The narrowphase (physics_collide.c)
 * turns candidate pairs into manifolds of up to 4 points, including points
 * up to a small margin apart (speculative contacts, which keep resting
 * contacts from flickering), which come out sorted by (first body, second
 * body); each point inherits the impulses of the nearest point of the
 * previous step's manifold for the same pair (warm starting).  (3) Gravity
 * is added to the velocities, then a sequential-impulse solver runs a fixed
 * number of iterations over the manifolds in that order: friction (a
 * circular cone) then the non-penetration impulse, whose target velocity is
 * the largest of a Baumgarte push-out of the overlap beyond a slop, the
 * approach that exactly closes a speculative gap, and the restitution
 * bounce.  (4) Positions and orientations are integrated with the new
 * velocities (semi-implicit Euler).
 *
 * Invariants: all state lives in the world (reentrant, no globals); every
 * loop runs in a fixed order over arrays indexed by scene position, so the
 * result is a pure function of the input bits; every buffer that grows with
 * the scene is bounded by a per-step budget proportional to the number of
 * bodies (over it is P2C2R_ETOOBIG, never unbounded memory or time).
 *
 * Floating point: IEEE-754 doubles with +, -, *, /, sqrt only (correctly
 * rounded everywhere), evaluated in double precision (FLT_EVAL_METHOD 0:
 * SSE2, not x87), never fused into FMAs and never with -ffast-math; the
 * guards for all of this are in physics_math.h, which this file includes
 * (through physics_world.h) before any code. */
#include "tasks/physics_world.h"

#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"


/* Per-step budgets, proportional to the scene so that legitimate scenes
 * never meet them: grid entries visited, candidate pairs, contact points. */
#define BUDGET_SCAN_PER_BODY 512u
#define BUDGET_PAIRS_PER_BODY 32u
#define BUDGET_POINTS_PER_BODY 16u
#define BUDGET_BASE 4096u

/* Bodies this much larger than the median (bounding radius) stay out of the
 * grid, at most this many of them. */
#define LARGE_FACTOR 4.0
#define MAX_LARGE 64u

struct cpoint {
    struct phys_vec3 ra, rb; /* from each centre to the contact point */
    /* ra x n, rb x n and the inverse inertias times them, fixed for the
     * step: the normal row of the solver without matrix products. */
    struct phys_vec3 rna, rnb, ina, inb;
    double depth;
    double pn;               /* accumulated normal impulse */
    double pt1, pt2;         /* accumulated friction impulse along t1, t2 */
    double mass_n, mass_t1, mass_t2, bias;
};

struct manifold {
    uint32_t a, b;           /* a: body index; b: body index or nb + plane index */
    uint32_t first, npts;    /* its points: pt[first .. first + npts) */
    struct phys_vec3 n;      /* from a to b */
    struct phys_vec3 t1, t2;
    double mu, e, depth;
};

/* What the solver touches, packed for the cache. */
struct sbody {
    struct phys_vec3 v, w;
    double inv_mass;
    struct phys_mat3 inv_i; /* world-frame inverse inertia */
};

struct aabb {
    struct phys_vec3 lo, hi;
};

struct phys_world {
    struct phys_config cfg;
    const int *cancel; /* polled before each step and solver iteration */
    size_t nb, np;
    struct phys_body *bodies;
    struct phys_plane *planes;
    struct phys_vec3 *inv_i_local; /* principal inverse inertia, 0 for static */
    double *radius;                /* bounding-sphere radius */
    struct phys_mat3 *rot;
    struct aabb *box;
    struct sbody *sb;              /* nb + 1: sb[nb] stands for every plane */

    /* broadphase */
    double margin;                 /* contacts are made this far apart (speculative) */
    double inv_cell;
    uint8_t *is_large;
    uint32_t *large;
    size_t nlarge;
    unsigned tbits;
    uint32_t *bucket;              /* (1 << tbits) + 1 starts into ent */
    uint32_t *ent;                 /* body of each entry, grouped by bucket */
    uint32_t *ent_hash, *ent_body; /* entries in body order, before grouping */
    size_t ent_cap;
    uint32_t *stamp;               /* stamp[j] == i + 1: j already seen for i */
    uint32_t *cand;
    size_t cand_cap;

    /* manifolds and points of this step and of the previous one */
    struct manifold *man, *old_man;
    size_t nman, nold_man, man_cap, old_man_cap;
    struct cpoint *pt, *old_pt;
    size_t npt, nold_pt, pt_cap, old_pt_cap;

    struct phys_contact *contacts;
    size_t contacts_cap;
    uint64_t steps_done;
};

#include "tasks/tasks.h"


/* ---- construction ------------------------------------------------------------ */

struct id_ref {
    int64_t id;
    size_t idx; /* < nb: body, else plane idx - nb */
};

static int cmp_id_ref(const void *pa, const void *pb)
{
    const struct id_ref *a = pa, *b = pb;
    if (a->id != b->id)
        return a->id < b->id ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

struct radius_ref {
    double r;
    uint32_t idx;
};

/* Descending radius, then ascending index: a total order, so qsort's
 * result does not depend on its algorithm. */
static int cmp_radius_desc(const void *pa, const void *pb)
{
    const struct radius_ref *a = pa, *b = pb;
    if (a->r != b->r)
        return a->r > b->r ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* Chooses the grid cell and the bodies too large for it. */
static int setup_grid(struct phys_world *w)
{
    size_t nb = w->nb;
    w->inv_cell = 1.0;
    w->nlarge = 0;
    w->margin = PHYS_MARGIN;
    for (size_t i = 0; i < nb; i++)
        if (0.25 * w->radius[i] < w->margin)
            w->margin = 0.25 * w->radius[i];
    if (nb > 0) {
        struct radius_ref *rr = malloc(nb * sizeof(*rr));
        if (!rr)
            return P2C2R_ENOMEM;
        for (size_t i = 0; i < nb; i++)
            rr[i] = (struct radius_ref){w->radius[i], (uint32_t)i};
        qsort(rr, nb, sizeof(*rr), cmp_radius_desc);
        double median = rr[nb / 2].r;
        size_t k = 0;
        while (k < nb && k < MAX_LARGE && rr[k].r > LARGE_FACTOR * median) {
            w->is_large[rr[k].idx] = 1;
            k++;
        }
        /* The grid cell is a little over the largest remaining diameter,
         * so a body's box spans at most two cells along each axis. */
        double rmax = k < nb ? rr[k].r : median;
        w->inv_cell = 1.0 / (2.02 * (rmax + w->margin));
        free(rr);
    }
    for (size_t i = 0; i < nb; i++)
        if (w->is_large[i])
            w->large[w->nlarge++] = (uint32_t)i;
    size_t want = 4 * nb, t = 64;
    unsigned bits = 6;
    while (t < want) {
        t <<= 1;
        bits++;
    }
    w->tbits = bits;
    w->bucket = calloc(t + 1, sizeof(uint32_t));
    return w->bucket ? 0 : P2C2R_ENOMEM;
}

int phys_world_new(const struct phys_config *cfg, const struct phys_body *bodies, size_t nbodies,
                   const struct phys_plane *planes, size_t nplanes, struct phys_world **out, char *err,
                   size_t err_cap)
{
    int rc = phys_config_check(cfg, nbodies, err, err_cap);
    if (rc)
        return rc;
    if (nplanes > PHYS_MAX_PLANES) {
        tasks_errf(err, err_cap, "%zu planes, at most %d allowed", nplanes, PHYS_MAX_PLANES);
        return P2C2R_EINVAL;
    }
    char why[160];
    for (size_t i = 0; i < nbodies; i++) {
        if (phys_body_check(&bodies[i], why, sizeof(why)) != 0) {
            tasks_errf(err, err_cap, "bodies[%zu]: %s", i, why);
            return P2C2R_EINVAL;
        }
    }
    for (size_t i = 0; i < nplanes; i++) {
        if (phys_plane_check(&planes[i], why, sizeof(why)) != 0) {
            tasks_errf(err, err_cap, "planes[%zu]: %s", i, why);
            return P2C2R_EINVAL;
        }
    }
    size_t nids = nbodies + nplanes;
    struct id_ref *ids = malloc((nids ? nids : 1) * sizeof(*ids));
    if (!ids)
        return P2C2R_ENOMEM;
    for (size_t i = 0; i < nbodies; i++)
        ids[i] = (struct id_ref){bodies[i].id, i};
    for (size_t i = 0; i < nplanes; i++)
        ids[nbodies + i] = (struct id_ref){planes[i].id, nbodies + i};
    qsort(ids, nids, sizeof(*ids), cmp_id_ref);
    for (size_t i = 1; i < nids; i++) {
        if (ids[i].id == ids[i - 1].id) {
            tasks_errf(err, err_cap, "id %lld is used twice (ids are unique across bodies and planes)",
                    (long long)ids[i].id);
            free(ids);
            return P2C2R_EINVAL;
        }
    }
    free(ids);

    struct phys_world *w = calloc(1, sizeof(*w));
    if (!w)
        return P2C2R_ENOMEM;
    w->cfg = *cfg;
    w->nb = nbodies;
    w->np = nplanes;
    size_t nb1 = nbodies ? nbodies : 1;
    w->bodies = malloc(nb1 * sizeof(*w->bodies));
    w->planes = malloc((nplanes ? nplanes : 1) * sizeof(*w->planes));
    w->inv_i_local = malloc(nb1 * sizeof(*w->inv_i_local));
    w->radius = malloc(nb1 * sizeof(*w->radius));
    w->rot = malloc(nb1 * sizeof(*w->rot));
    w->box = malloc(nb1 * sizeof(*w->box));
    w->sb = calloc(nbodies + 1, sizeof(*w->sb));
    w->is_large = calloc(nb1, 1);
    w->large = malloc(MAX_LARGE * sizeof(uint32_t));
    w->stamp = calloc(nb1, sizeof(uint32_t));
    if (!w->bodies || !w->planes || !w->inv_i_local || !w->radius || !w->rot || !w->box || !w->sb ||
        !w->is_large || !w->large || !w->stamp)
        goto fail_nomem;
    if (nbodies)
        memcpy(w->bodies, bodies, nbodies * sizeof(*bodies));
    if (nplanes)
        memcpy(w->planes, planes, nplanes * sizeof(*planes));
    for (size_t i = 0; i < nplanes; i++) {
        struct phys_plane *p = &w->planes[i];
        p->normal = v3_scale(p->normal, 1.0 / v3_len(p->normal));
    }
    for (size_t i = 0; i < nbodies; i++) {
        struct phys_body *b = &w->bodies[i];
        b->orientation = quat_normalize(b->orientation);
        struct phys_vec3 e = b->size;
        if (b->shape == PHYS_SPHERE) {
            e = v3(e.x, e.x, e.x);
            b->size = e;
            w->radius[i] = e.x;
        } else {
            w->radius[i] = v3_len(e);
        }
        double m = b->mass;
        w->sb[i].inv_mass = m > 0.0 ? 1.0 / m : 0.0;
        if (m <= 0.0) {
            w->inv_i_local[i] = v3(0, 0, 0);
        } else if (b->shape == PHYS_SPHERE) {
            double inv = 1.0 / (0.4 * m * e.x * e.x);
            w->inv_i_local[i] = v3(inv, inv, inv);
        } else {
            double xx = e.x * e.x, yy = e.y * e.y, zz = e.z * e.z;
            w->inv_i_local[i] = v3(3.0 / (m * (yy + zz)), 3.0 / (m * (xx + zz)), 3.0 / (m * (xx + yy)));
        }
    }
    rc = setup_grid(w);
    if (rc)
        goto fail_nomem;
    *out = w;
    return 0;

fail_nomem:
    phys_world_free(w);
    tasks_errf(err, err_cap, "out of memory for %zu bodies", nbodies);
    return P2C2R_ENOMEM;
}

void phys_world_free(struct phys_world *w)
{
    if (!w)
        return;
    free(w->bodies);
    free(w->planes);
    free(w->inv_i_local);
    free(w->radius);
    free(w->rot);
    free(w->box);
    free(w->sb);
    free(w->is_large);
    free(w->large);
    free(w->bucket);
    free(w->ent);
    free(w->ent_hash);
    free(w->ent_body);
    free(w->stamp);
    free(w->cand);
    free(w->man);
    free(w->old_man);
    free(w->pt);
    free(w->old_pt);
    free(w->contacts);
    free(w);
}

const struct phys_config *phys_world_config(const struct phys_world *w)
{
    return &w->cfg;
}

uint64_t phys_world_steps_done(const struct phys_world *w)
{
    return w->steps_done;
}

const struct phys_body *phys_world_bodies(const struct phys_world *w, size_t *n)
{
    *n = w->nb;
    return w->bodies;
}

const struct phys_plane *phys_world_planes(const struct phys_world *w, size_t *n)
{
    *n = w->np;
    return w->planes;
}

/* Grows *p (of *cap elements of size sz) to hold at least need. */
static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return 0;
    size_t nc = *cap ? *cap : 64;
    while (nc < need)
        nc *= 2;
    void *np = realloc(*p, nc * sz);
    if (!np)
        return P2C2R_ENOMEM;
    *p = np;
    *cap = nc;
    return 0;
}

/* ---- broadphase ---------------------------------------------------------------- */

static int64_t cell_coord(double x, double inv_cell)
{
    double f = floor(x * inv_cell);
    /* Positions are finite and bounded, so this never bites; it keeps the
     * cast defined whatever happens (NaN fails both tests and lands low). */
    if (!(f >= -1e15))
        f = -1e15;
    if (f > 1e15)
        f = 1e15;
    return (int64_t)f;
}

static uint32_t cell_hash(int64_t x, int64_t y, int64_t z, unsigned bits)
{
    uint64_t h = (uint64_t)x * 0x9E3779B97F4A7C15ull ^ (uint64_t)y * 0xC2B2AE3D27D4EB4Full ^
                 (uint64_t)z * 0x165667B19E3779F9ull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    return (uint32_t)(h >> (64 - bits));
}

static int aabb_overlap(const struct aabb *a, const struct aabb *b)
{
    return a->lo.x <= b->hi.x && b->lo.x <= a->hi.x && a->lo.y <= b->hi.y && b->lo.y <= a->hi.y &&
           a->lo.z <= b->hi.z && b->lo.z <= a->hi.z;
}

/* Fills the grid from the current boxes. */
static int grid_build(struct phys_world *w)
{
    size_t t = (size_t)1 << w->tbits, n = 0;
    for (size_t i = 0; i < w->nb; i++) {
        if (w->is_large[i])
            continue;
        const struct aabb *b = &w->box[i];
        int64_t x0 = cell_coord(b->lo.x, w->inv_cell), x1 = cell_coord(b->hi.x, w->inv_cell);
        int64_t y0 = cell_coord(b->lo.y, w->inv_cell), y1 = cell_coord(b->hi.y, w->inv_cell);
        int64_t z0 = cell_coord(b->lo.z, w->inv_cell), z1 = cell_coord(b->hi.z, w->inv_cell);
        size_t cells = (size_t)(x1 - x0 + 1) * (size_t)(y1 - y0 + 1) * (size_t)(z1 - z0 + 1);
        if (grow((void **)&w->ent_hash, &w->ent_cap, n + cells, sizeof(uint32_t)) != 0)
            return P2C2R_ENOMEM;
        for (int64_t x = x0; x <= x1; x++)
            for (int64_t y = y0; y <= y1; y++)
                for (int64_t z = z0; z <= z1; z++)
                    w->ent_hash[n++] = cell_hash(x, y, z, w->tbits);
    }
    /* ent_body and ent follow ent_hash's capacity. */
    size_t cap = w->ent_cap;
    uint32_t *eb = realloc(w->ent_body, (cap ? cap : 1) * sizeof(uint32_t));
    if (!eb)
        return P2C2R_ENOMEM;
    w->ent_body = eb;
    uint32_t *e = realloc(w->ent, (cap ? cap : 1) * sizeof(uint32_t));
    if (!e)
        return P2C2R_ENOMEM;
    w->ent = e;
    /* Second pass for the bodies, in the same order. */
    size_t k = 0;
    for (size_t i = 0; i < w->nb; i++) {
        if (w->is_large[i])
            continue;
        const struct aabb *b = &w->box[i];
        int64_t x0 = cell_coord(b->lo.x, w->inv_cell), x1 = cell_coord(b->hi.x, w->inv_cell);
        int64_t y0 = cell_coord(b->lo.y, w->inv_cell), y1 = cell_coord(b->hi.y, w->inv_cell);
        int64_t z0 = cell_coord(b->lo.z, w->inv_cell), z1 = cell_coord(b->hi.z, w->inv_cell);
        size_t cells = (size_t)(x1 - x0 + 1) * (size_t)(y1 - y0 + 1) * (size_t)(z1 - z0 + 1);
        for (size_t c = 0; c < cells; c++)
            w->ent_body[k++] = (uint32_t)i;
    }
    /* Counting sort by bucket, stable: each bucket lists bodies ascending. */
    memset(w->bucket, 0, (t + 1) * sizeof(uint32_t));
    for (size_t i = 0; i < n; i++)
        w->bucket[w->ent_hash[i] + 1]++;
    for (size_t i = 0; i < t; i++)
        w->bucket[i + 1] += w->bucket[i];
    for (size_t i = 0; i < n; i++)
        w->ent[w->bucket[w->ent_hash[i]]++] = w->ent_body[i];
    /* The scatter advanced each start to the next bucket's: shift back. */
    for (size_t i = t; i > 0; i--)
        w->bucket[i] = w->bucket[i - 1];
    w->bucket[0] = 0;
    return 0;
}

static void sort_u32(uint32_t *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint32_t x = v[i];
        size_t j = i;
        while (j > 0 && v[j - 1] > x) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

struct budget {
    uint64_t scan, scan_max;
    uint64_t pairs, pairs_max;
    uint64_t points_max;
};

/* Collects into w->cand, ascending, the bodies j > i whose boxes overlap
 * body i's (pairs of two static bodies are left out).  Returns the count,
 * or a negative error. */
static int64_t candidates(struct phys_world *w, uint32_t i, struct budget *bg)
{
    size_t n = 0;
    int i_static = w->sb[i].inv_mass == 0.0;
    const struct aabb *bi = &w->box[i];
    if (w->is_large[i]) {
        /* Tested against everyone after it: the result is already sorted. */
        for (uint32_t j = i + 1; j < w->nb; j++) {
            if ((i_static && w->sb[j].inv_mass == 0.0) || !aabb_overlap(bi, &w->box[j]))
                continue;
            if (grow((void **)&w->cand, &w->cand_cap, n + 1, sizeof(uint32_t)) != 0)
                return P2C2R_ENOMEM;
            w->cand[n++] = j;
        }
        bg->scan += w->nb - i;
    } else {
        int64_t x0 = cell_coord(bi->lo.x, w->inv_cell), x1 = cell_coord(bi->hi.x, w->inv_cell);
        int64_t y0 = cell_coord(bi->lo.y, w->inv_cell), y1 = cell_coord(bi->hi.y, w->inv_cell);
        int64_t z0 = cell_coord(bi->lo.z, w->inv_cell), z1 = cell_coord(bi->hi.z, w->inv_cell);
        for (int64_t x = x0; x <= x1; x++)
            for (int64_t y = y0; y <= y1; y++)
                for (int64_t z = z0; z <= z1; z++) {
                    uint32_t h = cell_hash(x, y, z, w->tbits);
                    for (uint32_t k = w->bucket[h]; k < w->bucket[h + 1]; k++) {
                        uint32_t j = w->ent[k];
                        bg->scan++;
                        if (j <= i || w->stamp[j] == i + 1)
                            continue;
                        w->stamp[j] = i + 1;
                        if ((i_static && w->sb[j].inv_mass == 0.0) || !aabb_overlap(bi, &w->box[j]))
                            continue;
                        if (grow((void **)&w->cand, &w->cand_cap, n + 1, sizeof(uint32_t)) != 0)
                            return P2C2R_ENOMEM;
                        w->cand[n++] = j;
                    }
                }
        for (size_t k = 0; k < w->nlarge; k++) {
            uint32_t j = w->large[k];
            if (j <= i || (i_static && w->sb[j].inv_mass == 0.0) || !aabb_overlap(bi, &w->box[j]))
                continue;
            if (grow((void **)&w->cand, &w->cand_cap, n + 1, sizeof(uint32_t)) != 0)
                return P2C2R_ENOMEM;
            w->cand[n++] = j;
        }
        bg->scan += w->nlarge;
        if (n <= 32)
            sort_u32(w->cand, n);
        else
            qsort(w->cand, n, sizeof(uint32_t), cmp_u32);
    }
    bg->pairs += n;
    if (bg->scan > bg->scan_max || bg->pairs > bg->pairs_max)
        return P2C2R_ETOOBIG;
    return (int64_t)n;
}

/* ---- narrowphase and warm starting ------------------------------------------- */

static struct phys_geom geom_of(const struct phys_world *w, uint32_t i)
{
    const struct phys_body *b = &w->bodies[i];
    return (struct phys_geom){b->shape, b->position, w->rot[i], b->size};
}

/* Appends a manifold for pair (a, b) with m points. */
static int add_manifold(struct phys_world *w, uint32_t a, uint32_t b, struct phys_vec3 n,
                        const struct phys_cp *cp, int m, const struct budget *bg)
{
    if (w->npt + (size_t)m > bg->points_max)
        return P2C2R_ETOOBIG;
    if (grow((void **)&w->man, &w->man_cap, w->nman + 1, sizeof(struct manifold)) != 0 ||
        grow((void **)&w->pt, &w->pt_cap, w->npt + (size_t)m, sizeof(struct cpoint)) != 0)
        return P2C2R_ENOMEM;
    const struct phys_body *ba = &w->bodies[a];
    struct manifold *mf = &w->man[w->nman++];
    double fa = ba->friction, fb, ea = ba->restitution, eb;
    struct phys_vec3 cb;
    if (b < w->nb) {
        fb = w->bodies[b].friction;
        eb = w->bodies[b].restitution;
        cb = w->bodies[b].position;
    } else {
        fb = w->planes[b - w->nb].friction;
        eb = w->planes[b - w->nb].restitution;
        cb = v3(0, 0, 0);
    }
    mf->a = a;
    mf->b = b;
    mf->first = (uint32_t)w->npt;
    mf->npts = (uint32_t)m;
    mf->n = n;
    v3_basis(n, &mf->t1, &mf->t2);
    mf->mu = sqrt(fa * fb);
    mf->e = ea > eb ? ea : eb;
    mf->depth = -DBL_MAX;
    for (int k = 0; k < m; k++) {
        struct cpoint *p = &w->pt[w->npt++];
        memset(p, 0, sizeof(*p));
        p->ra = v3_sub(cp[k].p, ba->position);
        p->rb = b < w->nb ? v3_sub(cp[k].p, cb) : v3(0, 0, 0);
        p->depth = cp[k].depth;
        if (p->depth > mf->depth)
            mf->depth = p->depth;
    }
    return 0;
}

/* Runs the broadphase and narrowphase, filling w->man / w->pt in pair order. */
static int find_contacts(struct phys_world *w, char *err, size_t err_cap)
{
    struct budget bg = {0, BUDGET_SCAN_PER_BODY * (uint64_t)w->nb + BUDGET_BASE * 16u, 0,
                        BUDGET_PAIRS_PER_BODY * (uint64_t)w->nb + BUDGET_BASE,
                        BUDGET_POINTS_PER_BODY * (uint64_t)w->nb + BUDGET_BASE};
    w->nman = 0;
    w->npt = 0;
    int rc = grid_build(w);
    if (rc)
        goto fail;
    memset(w->stamp, 0, (w->nb ? w->nb : 1) * sizeof(uint32_t));
    for (uint32_t i = 0; i < w->nb; i++) {
        int64_t nc = candidates(w, i, &bg);
        if (nc < 0) {
            rc = (int)nc;
            goto fail;
        }
        struct phys_geom gi = geom_of(w, i);
        for (int64_t k = 0; k < nc; k++) {
            uint32_t j = w->cand[k];
            struct phys_geom gj = geom_of(w, j);
            struct phys_vec3 n;
            struct phys_cp cp[PHYS_MAX_POINTS];
            int m = phys_collide(&gi, &gj, w->margin, &n, cp);
            if (m > 0 && (rc = add_manifold(w, i, j, n, cp, m, &bg)) != 0)
                goto fail;
        }
        if (w->sb[i].inv_mass == 0.0)
            continue;
        for (uint32_t p = 0; p < w->np; p++) {
            const struct phys_plane *pl = &w->planes[p];
            if (v3_dot(pl->normal, gi.c) - pl->offset >= w->radius[i] + w->margin)
                continue;
            struct phys_vec3 n;
            struct phys_cp cp[PHYS_MAX_POINTS];
            int m = phys_collide_plane(&gi, pl->normal, pl->offset, w->margin, &n, cp);
            if (m > 0 && (rc = add_manifold(w, i, (uint32_t)(w->nb + p), n, cp, m, &bg)) != 0)
                goto fail;
        }
    }
    return 0;

fail:
    if (rc == P2C2R_ETOOBIG)
        tasks_errf(err, err_cap,
                "scene too dense in step %llu: bodies overlap too much for the work budget "
                "(pair tests %llu of %llu, pairs %llu of %llu)",
                (unsigned long long)w->steps_done + 1, (unsigned long long)bg.scan,
                (unsigned long long)bg.scan_max, (unsigned long long)bg.pairs,
                (unsigned long long)bg.pairs_max);
    else
        tasks_errf(err, err_cap, "out of memory in step %llu", (unsigned long long)w->steps_done + 1);
    return rc;
}

/* Gives each new point the impulses of the nearest point of the same pair
 * in the previous step, when it is close enough to be the same contact. */
static void warm_start_match(struct phys_world *w)
{
    size_t k = 0;
    for (size_t i = 0; i < w->nman; i++) {
        struct manifold *m = &w->man[i];
        uint64_t key = (uint64_t)m->a << 32 | m->b;
        while (k < w->nold_man && ((uint64_t)w->old_man[k].a << 32 | w->old_man[k].b) < key)
            k++;
        if (k >= w->nold_man)
            break;
        const struct manifold *o = &w->old_man[k];
        if (((uint64_t)o->a << 32 | o->b) != key)
            continue;
        double size = w->radius[m->a];
        if (m->b < w->nb && w->radius[m->b] < size)
            size = w->radius[m->b];
        double tol2 = 0.01 * size * size; /* within a tenth of the smaller body */
        for (uint32_t p = 0; p < m->npts; p++) {
            struct cpoint *np = &w->pt[m->first + p];
            const struct cpoint *best = NULL;
            double bd = tol2;
            for (uint32_t q = 0; q < o->npts; q++) {
                const struct cpoint *op = &w->old_pt[o->first + q];
                double d = v3_len2(v3_sub(op->ra, np->ra));
                if (d < bd) {
                    bd = d;
                    best = op;
                }
            }
            if (!best)
                continue;
            /* The friction impulse as a world vector, onto the new tangents. */
            struct phys_vec3 f = v3_add(v3_scale(o->t1, best->pt1), v3_scale(o->t2, best->pt2));
            np->pn = best->pn;
            np->pt1 = v3_dot(f, m->t1);
            np->pt2 = v3_dot(f, m->t2);
        }
    }
}

/* ---- solver -------------------------------------------------------------------- */

static double eff_mass(const struct sbody *a, const struct sbody *b, struct phys_vec3 ra,
                       struct phys_vec3 rb, struct phys_vec3 dir)
{
    struct phys_vec3 ca = v3_cross(ra, dir), cb = v3_cross(rb, dir);
    double k = a->inv_mass + b->inv_mass + v3_dot(ca, mat3_mul_v(&a->inv_i, ca)) +
               v3_dot(cb, mat3_mul_v(&b->inv_i, cb));
    return k > 0.0 ? 1.0 / k : 0.0;
}

static struct phys_vec3 rel_vel(const struct sbody *a, const struct sbody *b, struct phys_vec3 ra,
                                struct phys_vec3 rb)
{
    struct phys_vec3 va = v3_add(a->v, v3_cross(a->w, ra));
    struct phys_vec3 vb = v3_add(b->v, v3_cross(b->w, rb));
    return v3_sub(vb, va);
}

/* Applies impulse p at the contact: -p to a, +p to b. */
static void apply(struct sbody *a, struct sbody *b, struct phys_vec3 ra, struct phys_vec3 rb,
                  struct phys_vec3 p)
{
    a->v = v3_madd(a->v, p, -a->inv_mass);
    a->w = v3_sub(a->w, mat3_mul_v(&a->inv_i, v3_cross(ra, p)));
    b->v = v3_madd(b->v, p, b->inv_mass);
    b->w = v3_add(b->w, mat3_mul_v(&b->inv_i, v3_cross(rb, p)));
}

static struct sbody *sbody_of(struct phys_world *w, uint32_t idx)
{
    return &w->sb[idx < w->nb ? idx : w->nb];
}

static void solver_prestep(struct phys_world *w)
{
    double inv_dt = 1.0 / w->cfg.dt;
    for (size_t i = 0; i < w->nman; i++) {
        const struct manifold *m = &w->man[i];
        struct sbody *a = sbody_of(w, m->a), *b = sbody_of(w, m->b);
        for (uint32_t k = 0; k < m->npts; k++) {
            struct cpoint *p = &w->pt[m->first + k];
            p->rna = v3_cross(p->ra, m->n);
            p->rnb = v3_cross(p->rb, m->n);
            p->ina = mat3_mul_v(&a->inv_i, p->rna);
            p->inb = mat3_mul_v(&b->inv_i, p->rnb);
            double kn = a->inv_mass + b->inv_mass + v3_dot(p->rna, p->ina) + v3_dot(p->rnb, p->inb);
            p->mass_n = kn > 0.0 ? 1.0 / kn : 0.0;
            p->mass_t1 = eff_mass(a, b, p->ra, p->rb, m->t1);
            p->mass_t2 = eff_mass(a, b, p->ra, p->rb, m->t2);
            /* Overlap beyond the slop is pushed out a share at a time; a
             * gap (speculative point) lets the bodies approach by exactly
             * the gap within this step. */
            if (p->depth > PHYS_SLOP)
                p->bias = PHYS_BAUMGARTE * inv_dt * (p->depth - PHYS_SLOP);
            else if (p->depth < 0.0)
                p->bias = p->depth * inv_dt;
            else
                p->bias = 0.0;
            /* A fast approach that closes the gap within the step bounces. */
            double vn = v3_dot(rel_vel(a, b, p->ra, p->rb), m->n);
            if (vn < -PHYS_RESTITUTION_THRESHOLD && vn * w->cfg.dt < p->depth && -m->e * vn > p->bias)
                p->bias = -m->e * vn;
            struct phys_vec3 imp = v3_add(v3_scale(m->n, p->pn),
                                          v3_add(v3_scale(m->t1, p->pt1), v3_scale(m->t2, p->pt2)));
            apply(a, b, p->ra, p->rb, imp);
        }
    }
}

static void solver_iterate(struct phys_world *w)
{
    for (size_t i = 0; i < w->nman; i++) {
        const struct manifold *m = &w->man[i];
        struct sbody *a = sbody_of(w, m->a), *b = sbody_of(w, m->b);
        for (uint32_t k = 0; k < m->npts; k++) {
            struct cpoint *p = &w->pt[m->first + k];
            struct phys_vec3 dv = rel_vel(a, b, p->ra, p->rb);
            double n1 = p->pt1 - p->mass_t1 * v3_dot(dv, m->t1);
            double n2 = p->pt2 - p->mass_t2 * v3_dot(dv, m->t2);
            double maxf = m->mu * p->pn, len2 = n1 * n1 + n2 * n2;
            if (len2 > maxf * maxf) {
                double s = maxf / sqrt(len2);
                n1 *= s;
                n2 *= s;
            }
            double d1 = n1 - p->pt1, d2 = n2 - p->pt2;
            p->pt1 = n1;
            p->pt2 = n2;
            apply(a, b, p->ra, p->rb, v3_add(v3_scale(m->t1, d1), v3_scale(m->t2, d2)));
        }
        for (uint32_t k = 0; k < m->npts; k++) {
            struct cpoint *p = &w->pt[m->first + k];
            double vn = v3_dot(v3_sub(b->v, a->v), m->n) + v3_dot(b->w, p->rnb) - v3_dot(a->w, p->rna);
            double np = p->pn + p->mass_n * (p->bias - vn);
            if (np < 0.0)
                np = 0.0;
            double d = np - p->pn;
            p->pn = np;
            a->v = v3_madd(a->v, m->n, -d * a->inv_mass);
            a->w = v3_madd(a->w, p->ina, -d);
            b->v = v3_madd(b->v, m->n, d * b->inv_mass);
            b->w = v3_madd(b->w, p->inb, d);
        }
    }
}

/* ---- stepping -------------------------------------------------------------------- */

static struct phys_vec3 clamp_len(struct phys_vec3 v, double max)
{
    double l2 = v3_len2(v);
    if (l2 <= max * max)
        return v;
    return v3_scale(v, max / sqrt(l2));
}

int phys_world_step(struct phys_world *w, char *err, size_t err_cap)
{
    const double dt = w->cfg.dt;
    /* Orientation-dependent quantities and bounding boxes. */
    for (size_t i = 0; i < w->nb; i++) {
        const struct phys_body *b = &w->bodies[i];
        w->rot[i] = quat_to_mat3(b->orientation);
        struct sbody *s = &w->sb[i];
        s->v = b->velocity;
        s->w = b->angular_velocity;
        s->inv_i = mat3_rotate_diag(&w->rot[i], w->inv_i_local[i]);
        struct phys_vec3 ext;
        if (b->shape == PHYS_SPHERE) {
            ext = b->size;
        } else {
            const double *m = w->rot[i].m;
            const struct phys_vec3 e = b->size;
            ext = v3(fabs(m[0]) * e.x + fabs(m[1]) * e.y + fabs(m[2]) * e.z,
                     fabs(m[3]) * e.x + fabs(m[4]) * e.y + fabs(m[5]) * e.z,
                     fabs(m[6]) * e.x + fabs(m[7]) * e.y + fabs(m[8]) * e.z);
        }
        ext = v3_add(ext, v3(w->margin, w->margin, w->margin));
        w->box[i].lo = v3_sub(b->position, ext);
        w->box[i].hi = v3_add(b->position, ext);
    }
    /* The planes' stand-in never moves. */
    memset(&w->sb[w->nb], 0, sizeof(w->sb[w->nb]));

    int rc = find_contacts(w, err, err_cap);
    if (rc)
        return rc;
    warm_start_match(w);

    for (size_t i = 0; i < w->nb; i++)
        if (w->sb[i].inv_mass > 0.0)
            w->sb[i].v = v3_madd(w->sb[i].v, w->cfg.gravity, dt);
    solver_prestep(w);
    for (uint32_t it = 0; it < w->cfg.iterations; it++) {
        /* A dense step's solve is its longest part: a cancel may end it
         * half-solved (the world is then only freed). */
        if (tasks_cancelled(w->cancel))
            return P2C2R_ECANCELLED;
        solver_iterate(w);
    }

    for (size_t i = 0; i < w->nb; i++) {
        struct phys_body *b = &w->bodies[i];
        const struct sbody *s = &w->sb[i];
        if (s->inv_mass == 0.0)
            continue;
        b->velocity = clamp_len(s->v, PHYS_MAX_SPEED);
        b->angular_velocity = clamp_len(s->w, PHYS_MAX_SPIN);
        b->position = v3_madd(b->position, b->velocity, dt);
        const struct phys_vec3 av = b->angular_velocity;
        struct phys_quat spin = {0.0, av.x, av.y, av.z};
        struct phys_quat dq = quat_mul(spin, b->orientation);
        struct phys_quat q = b->orientation;
        q.w += 0.5 * dt * dq.w;
        q.x += 0.5 * dt * dq.x;
        q.y += 0.5 * dt * dq.y;
        q.z += 0.5 * dt * dq.z;
        b->orientation = quat_normalize(q);
        if (!v3_isfinite(b->position) || !v3_isfinite(b->velocity) || !v3_isfinite(b->angular_velocity) ||
            !isfinite(b->orientation.w + b->orientation.x + b->orientation.y + b->orientation.z)) {
            tasks_errf(err, err_cap, "simulation diverged in step %llu at body id %lld",
                    (unsigned long long)w->steps_done + 1, (long long)b->id);
            return P2C2R_ETASK;
        }
    }

    /* This step's manifolds become the next step's warm-start source. */
    struct manifold *tm = w->old_man;
    size_t tmc = w->old_man_cap;
    w->old_man = w->man;
    w->old_man_cap = w->man_cap;
    w->nold_man = w->nman;
    w->man = tm;
    w->man_cap = tmc;
    struct cpoint *tp = w->old_pt;
    size_t tpc = w->old_pt_cap;
    w->old_pt = w->pt;
    w->old_pt_cap = w->pt_cap;
    w->nold_pt = w->npt;
    w->pt = tp;
    w->pt_cap = tpc;
    w->nman = 0;
    w->npt = 0;
    w->steps_done++;
    return 0;
}

void phys_world_set_cancel(struct phys_world *w, const int *flag) { w->cancel = flag; }

int phys_world_run(struct phys_world *w, char *err, size_t err_cap)
{
    for (uint32_t s = 0; s < w->cfg.steps; s++) {
        int rc = tasks_cancelled(w->cancel) ? P2C2R_ECANCELLED : phys_world_step(w, err, err_cap);
        if (rc == P2C2R_ECANCELLED)
            tasks_errf(err, err_cap, "cancelled at step %u of %u", s, w->cfg.steps);
        if (rc)
            return rc;
    }
    return 0;
}

int phys_world_contacts(struct phys_world *w, const struct phys_contact **out, size_t *n)
{
    /* After a step the last step's manifolds are the "old" ones.  Points
     * further apart than PHYS_TOUCH are near misses, not contacts. */
    if (grow((void **)&w->contacts, &w->contacts_cap, w->nold_man, sizeof(struct phys_contact)) != 0)
        return P2C2R_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < w->nold_man; i++) {
        const struct manifold *m = &w->old_man[i];
        uint32_t touching = 0;
        for (uint32_t j = 0; j < m->npts; j++)
            touching += w->old_pt[m->first + j].depth > -PHYS_TOUCH;
        if (!touching)
            continue;
        struct phys_contact *c = &w->contacts[k++];
        c->a = w->bodies[m->a].id;
        c->b = m->b < w->nb ? w->bodies[m->b].id : w->planes[m->b - w->nb].id;
        c->points = touching;
        c->depth = m->depth;
    }
    *out = w->contacts;
    *n = k;
    return 0;
}
