/* raytrace.h - the raytrace executor's C API: decode a JSON scene, render a
 * tile of it into an RGBA8 buffer, encode PNG, and the binary mesh blob.
 *
 * The executor (exec_raytrace, in raytrace.c) is a thin layer over these
 * functions; the unit tests, the benchmark and `p2c2r render` call them
 * directly.  The scene format, the light model and the limits are documented
 * in docs/tasks/raytrace.md.
 *
 * Determinism: a pixel's value depends only on the scene, the pixel's
 * coordinates and the sample count, never on the tile it was rendered in,
 * the thread, or the order of calls.  Every function here is reentrant: a
 * parsed scene is immutable and may be rendered from many threads at once.
 * Nothing here allocates global state or prints anything. */
#ifndef P2C2R_RAYTRACE_H
#define P2C2R_RAYTRACE_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"

/* Limits on what a scene or a task may ask for (docs/tasks/raytrace.md). */
#define RT_MAX_DIM 16384u             /* frame width and height */
#define RT_MAX_SPP 4096u              /* samples per pixel */
#define RT_MAX_DEPTH 64u              /* path segments per sample */
#define RT_MAX_TRIANGLES (2u << 20)   /* triangles over all meshes */
#define RT_MAX_VERTICES (4u << 20)    /* vertices over all meshes */
#define RT_MAX_SPHERES 65536u
#define RT_MAX_PLANES 64u
#define RT_MAX_MESHES 1024u
#define RT_MAX_LIGHTS 64u
#define RT_MAX_MATERIALS 1024u        /* named materials */
#define RT_MAX_COORD 1e6              /* |coordinate|, radius, edge length */
#define RT_MAX_INPUT (4u << 20)       /* scene JSON bytes the executor takes */
#define RT_MAX_TASK_SAMPLES (1u << 28) /* w * h * spp of one executor task */

/* A parsed scene: immutable, shareable between threads.  Opaque. */
struct rt_scene;

/* Decodes a scene from json (len bytes, not NUL-terminated).  Meshes that
 * name a blob ("blob": 64 hex digits) are looked up in blobs[0..nblobs) by
 * hash and copied, so the blobs are only borrowed during the call.  Builds
 * the BVH.  On success *out is a new scene the caller owns (rt_scene_free).
 * Errors: P2C2R_EINVAL with a one-line reason in err (malformed JSON, a
 * missing or mistyped field, a value out of range, a limit exceeded, a blob
 * not supplied or malformed), P2C2R_ENOMEM.  err may be NULL.  Thread-safe. */
int rt_scene_parse(const char *json, size_t len, const struct p2c2r_blob *blobs, size_t nblobs,
                   struct rt_scene **out, char *err, size_t err_cap);

/* Frees a scene.  NULL is a no-op. */
void rt_scene_free(struct rt_scene *s);

struct rt_scene_info {
    uint32_t width, height; /* frame size in pixels */
    uint32_t spp;           /* the scene's default samples per pixel */
    uint32_t max_depth;
    uint64_t seed;
    uint32_t nspheres, nplanes, ntriangles, nlights, nmaterials;
    uint32_t nprims;        /* primitives in the BVH: spheres, light rects, triangles */
    uint32_t bvh_nodes, bvh_depth;
};

/* Fills *info with the scene's frame size, defaults and sizes. */
void rt_scene_get_info(const struct rt_scene *s, struct rt_scene_info *info);

/* A rectangle of the frame, in pixels; (0,0) is the top-left pixel. */
struct rt_tile {
    uint32_t x, y, w, h;
};

/* Renders tile t of the frame at spp samples per pixel into rgba: t.h rows
 * of t.w pixels, 4 bytes each (R, G, B, A=255), row r starting at
 * rgba + r * stride (stride >= 4 * t.w).  With spp = 1 each pixel is one
 * ray through its centre; with more, samples are jittered inside the pixel.
 * Errors: P2C2R_EINVAL (empty tile, tile outside the frame, spp not in
 * 1..RT_MAX_SPP, stride too small) with a reason in err.  No work cap: the
 * caller owns its CPU (the executor caps work per task).  Reentrant. */
int rt_render_tile(const struct rt_scene *s, const struct rt_tile *t, uint32_t spp, uint8_t *rgba,
                   size_t stride, char *err, size_t err_cap);

/* rt_render_tile that polls cancel (borrowed; NULL: never) before every
 * pixel and returns P2C2R_ECANCELLED once it is set, so a cancel costs at
 * most one pixel's samples of further work; rows already rendered stay in
 * rgba, the rest is untouched. */
int rt_render_tile_cancel(const struct rt_scene *s, const struct rt_tile *t, uint32_t spp,
                          uint8_t *rgba, size_t stride, const int *cancel, char *err,
                          size_t err_cap);

/* Bytes a parsed scene holds in memory (the struct, its arrays and BVH): what
 * it is charged in the peer's prepared-state cache. */
size_t rt_scene_bytes(const struct rt_scene *s);

/* Estimates the relative cost of rendering each row of the frame by tracing
 * one path per step x step block of pixels and counting BVH nodes visited
 * and primitives tested.  row_cost has room for the frame's height; every
 * entry is written and is > 0.  step is clamped to 1..256.  Cheap (about
 * width * height / step^2 paths), deterministic, reentrant. */
void rt_estimate_rows(const struct rt_scene *s, uint32_t step, double *row_cost);

/* Test hook: intersects the ray o + t d (t > 0; d need not be normalised)
 * with the scene, through the BVH (brute_force = 0) or by testing every
 * primitive in order (1).  Both return the smallest t and, among hits at
 * that t, the lowest primitive index, so they must agree exactly.  Returns
 * 1 and fills *t and *prim on a hit, 0 on a miss.  Primitive indices: the
 * spheres (scene spheres, then sphere lights), then rect lights, then
 * triangles in mesh order, then planes. */
int rt_scene_trace(const struct rt_scene *s, const double o[3], const double d[3], int brute_force,
                   double *t, uint32_t *prim);

/* ---- the binary mesh blob ---------------------------------------------------
 *
 * Layout (all little-endian, no padding, nothing after the last index):
 *   offset 0   8 bytes   magic "P2RTMSH1"
 *   offset 8   u32       vertex count V (1..RT_MAX_VERTICES)
 *   offset 12  u32       triangle count T (1..RT_MAX_TRIANGLES)
 *   offset 16  V * 3 f32 vertex positions x, y, z (finite, |v| <= RT_MAX_COORD)
 *   then       T * 3 u32 vertex indices of each triangle (< V)
 * Total size 16 + 12 V + 12 T bytes. */
#define RT_MESH_MAGIC "P2RTMSH1"
#define RT_MESH_HEADER 16u

/* Returns the size of a blob with nverts vertices and ntris triangles. */
size_t rt_mesh_blob_size(uint32_t nverts, uint32_t ntris);

/* Writes a mesh blob into out (out_len must be rt_mesh_blob_size(...)).
 * verts holds 3 * nverts floats, idx 3 * ntris indices.  Does not validate
 * the values (rt_mesh_blob_check does).  Returns 0 or P2C2R_EINVAL when
 * out_len is wrong. */
int rt_mesh_blob_encode(const float *verts, uint32_t nverts, const uint32_t *idx, uint32_t ntris,
                        uint8_t *out, size_t out_len);

/* Validates a mesh blob completely (size, magic, counts within limits,
 * finite vertices within range, indices in range) and reports its counts.
 * Returns 0 or P2C2R_EINVAL with a reason in err.  Never reads past len. */
int rt_mesh_blob_check(const uint8_t *data, size_t len, uint32_t *nverts, uint32_t *ntris, char *err,
                       size_t err_cap);

/* ---- PNG ------------------------------------------------------------------ */

/* Encodes h rows of w RGBA8 pixels (row r at rgba + r * stride) as an 8-bit
 * RGBA PNG with libpng.  On success *out is a new buffer of *out_len bytes
 * that the caller frees with free().  The bytes are the same for the same
 * pixels and the same libpng/zlib build.  Errors: P2C2R_EINVAL (empty or
 * oversized image), P2C2R_ENOMEM.  Reentrant. */
int rt_png_encode(const uint8_t *rgba, uint32_t w, uint32_t h, size_t stride, uint8_t **out,
                  size_t *out_len);

/* The executor: name "raytrace", version 1 (see docs/tasks/raytrace.md).
 * A scene that names mesh blobs is kept parsed (with its BVH) as prepared
 * state, keyed by a SHA-256 over the scene text and the blobs' hashes. */
extern const struct p2c2r_executor exec_raytrace;

#endif
