/* raytrace_scene.h - the in-memory scene shared by the ray tracer's parts.
 *
 * Internal to src/tasks/raytrace*.c: raytrace_scene.c fills a struct
 * rt_scene from JSON (and mesh blobs), raytrace_bvh.c intersects rays with
 * it, raytrace_render.c shades.  Once rt_scene_parse returns, a scene is
 * never written again, so any number of threads may render it.
 *
 * Primitives are numbered in one canonical order, which is the order of
 * brute-force intersection and the tie-break between equal hits: spheres
 * [0, nspheres), rect-light quads [nspheres, nspheres + nquads), triangles
 * after them (together nprims, all in the BVH), then planes (outside the
 * BVH, because they are unbounded) at nprims + i. */
#ifndef P2C2R_RAYTRACE_SCENE_H
#define P2C2R_RAYTRACE_SCENE_H

#include <stdint.h>

#include "tasks/raytrace.h"
#include "tasks/raytrace_vec.h"

enum rt_mat_kind { RT_MAT_DIFFUSE, RT_MAT_METAL, RT_MAT_GLASS, RT_MAT_EMISSIVE };

struct rt_material {
    enum rt_mat_kind kind;
    struct rt_v3 albedo;   /* diffuse and metal reflectance, glass tint */
    struct rt_v3 emission; /* emissive radiance */
    double fuzz;           /* metal: 0 = mirror .. 1 */
    double ior;            /* glass: index of refraction */
};

struct rt_sphere {
    struct rt_v3 c;
    double r;
    uint32_t mat;
    int32_t light; /* index into lights for a sphere light, else -1 */
};

/* A parallelogram o + u e1 + v e2 (u, v in [0, 1]); only rect lights. */
struct rt_quad {
    struct rt_v3 o, e1, e2;
    struct rt_v3 n; /* unit e1 x e2: the side that emits */
    uint32_t mat;
    int32_t light;
};

struct rt_plane {
    struct rt_v3 p, n; /* a point on it, unit normal */
    uint32_t mat;
};

enum rt_light_kind { RT_LIGHT_POINT, RT_LIGHT_RECT, RT_LIGHT_SPHERE };

struct rt_light {
    enum rt_light_kind kind;
    struct rt_v3 pos;       /* point light position */
    struct rt_v3 intensity; /* point: radiant intensity; area: emitted radiance */
    uint32_t shape;         /* rect: index into quads; sphere: into spheres */
    uint32_t prim;          /* the shape's primitive index */
    double area;            /* rect: |e1 x e2| */
};

struct rt_camera {
    struct rt_v3 pos, fwd, right, up; /* orthonormal basis */
    double tan_half;                  /* tan(vertical fov / 2) */
};

struct rt_bvh_node {
    float lo[3], hi[3]; /* conservative bounds: padded, rounded outward */
    uint32_t index;     /* inner: first of two adjacent children; leaf: first slot in order */
    uint32_t count;     /* 0 for an inner node, else primitives in the leaf */
};

struct rt_bvh {
    struct rt_bvh_node *nodes;
    uint32_t nnodes, depth;
    uint32_t *order; /* primitive indices, leaves point into it */
};

struct rt_scene {
    uint32_t width, height, spp, max_depth;
    uint64_t seed;
    struct rt_v3 background;
    double exposure, clamp; /* clamp 0 = off */
    struct rt_camera cam;

    struct rt_material *mats;
    uint32_t nmats, nnamed;
    struct rt_sphere *spheres;
    uint32_t nspheres;
    struct rt_quad *quads;
    uint32_t nquads;
    struct rt_plane *planes;
    uint32_t nplanes;
    float *verts; /* 3 per vertex */
    uint32_t nverts;
    uint32_t *tris;    /* 3 vertex indices per triangle */
    uint32_t *tri_mat; /* material per triangle */
    uint32_t ntris;
    struct rt_light *lights;
    uint32_t nlights;

    uint32_t nprims; /* nspheres + nquads + ntris */
    struct rt_bvh bvh;
};

/* Builds s->bvh over the scene's primitives.  Returns 0 or P2C2R_ENOMEM. */
int rt_bvh_build(struct rt_scene *s);

/* Frees what rt_bvh_build allocated.  Safe on a zeroed bvh. */
void rt_bvh_fini(struct rt_bvh *b);

/* A ray with what box tests need precomputed; d need not be unit length.
 * inv[a] is 1 / d[a], and +infinity where d[a] is zero of either sign, so
 * that box_hit (raytrace_bvh.c) can ignore the NaN of 0 * infinity. */
struct rt_ray {
    struct rt_v3 o, d;
    double org[3], inv[3];
};

static inline void rt_ray_init(struct rt_ray *r, struct rt_v3 o, struct rt_v3 d)
{
    r->o = o;
    r->d = d;
    r->org[0] = o.x;
    r->org[1] = o.y;
    r->org[2] = o.z;
    r->inv[0] = d.x == 0.0 ? INFINITY : 1.0 / d.x;
    r->inv[1] = d.y == 0.0 ? INFINITY : 1.0 / d.y;
    r->inv[2] = d.z == 0.0 ? INFINITY : 1.0 / d.z;
}

/* Hits closer than this along the ray are ignored (the ray's own surface). */
#define RT_TMIN 1e-9

/* Finds the closest hit with RT_TMIN < t < tmax among all primitives and
 * planes: smallest t, then lowest primitive index.  Returns 1 and fills
 * *t / *prim on a hit.  Adds the nodes and primitives visited to *work. */
int rt_trace_closest(const struct rt_scene *s, const struct rt_ray *r, double tmax, double *t,
                     uint32_t *prim, uint64_t *work);

/* Same answer as rt_trace_closest, by testing every primitive in order. */
int rt_trace_brute(const struct rt_scene *s, const struct rt_ray *r, double tmax, double *t,
                   uint32_t *prim);

/* Whether anything other than primitive `ignore` (UINT32_MAX for none)
 * lies on the ray with RT_TMIN < t < tmax. */
int rt_trace_occluded(const struct rt_scene *s, const struct rt_ray *r, double tmax, uint32_t ignore,
                      uint64_t *work);

/* Distance to sphere sp along r (smallest root > RT_TMIN), or INFINITY. */
double rt_sphere_hit(const struct rt_sphere *sp, const struct rt_ray *r);

#endif
