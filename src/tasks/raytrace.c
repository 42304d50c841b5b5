/* raytrace.c - the `raytrace` executor (exec_raytrace) and PNG encoding.
 *
 * A task's input is a JSON scene (docs/tasks/raytrace.md); its params pick
 * the tile (x, y, w, h; default the whole frame), the samples per pixel
 * (spp; default the scene's) and the output format (format=raw for RGBA8
 * rows, or png).  Mesh blobs the scene names come from call->blobs.  The
 * output depends only on the input and params, to the byte (raw always;
 * png for a given libpng/zlib build), whatever the peer, thread or tiling.
 *
 * A task pays for decoding its scene and building the BVH, unless the scene
 * names mesh blobs and the peer still holds it parsed as prepared state
 * (keyed by a SHA-256 over the scene text and the blob hashes: the parse is
 * a function of those alone, and a scene is immutable once parsed, so tiles
 * on several threads share it).  The work of rendering is capped at
 * RT_MAX_TASK_SAMPLES samples (w * h * spp) per task so one task cannot
 * hold a peer's thread indefinitely, and the cancel flag is polled before
 * every pixel.  Reentrant: all state lives in the call. */
#include "tasks/raytrace.h"

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_cost.h"
#include "tasks/task_sha256.h"

struct rt_params {
    struct rt_tile tile;
    int has[4];    /* x, y, w, h given */
    uint32_t spp;  /* 0 = the scene's */
    int png;
};

static void set_err(struct p2c2r_exec_call *c, const char *msg)
{
    if (c->err && c->err_cap)
        snprintf(c->err, c->err_cap, "%s", msg);
}

/* Parses param key as a decimal in [min, max].  Returns 0 (absent leaves
 * *present 0), or P2C2R_EINVAL with a reason. */
static int param_u32(const struct p2c2r_exec_call *c, const char *key, uint32_t min, uint32_t max,
                     int *present, uint32_t *out)
{
    const char *v;
    size_t vl;
    *present = 0;
    if (!p2c2r_param_get(c->params, c->params_len, key, &v, &vl))
        return 0;
    uint64_t x = 0;
    int ok = vl > 0 && vl <= 10;
    for (size_t i = 0; ok && i < vl; i++) {
        ok = v[i] >= '0' && v[i] <= '9';
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (!ok || x < min || x > max) {
        if (c->err && c->err_cap)
            snprintf(c->err, c->err_cap, "param %s must be a whole number in %u..%u", key, min, max);
        return P2C2R_EINVAL;
    }
    *present = 1;
    *out = (uint32_t)x;
    return 0;
}

static int params_parse(const struct p2c2r_exec_call *c, struct rt_params *p)
{
    static const char *const keys[4] = {"x", "y", "w", "h"};
    uint32_t *dst[4];
    int rc, has_spp;
    memset(p, 0, sizeof(*p));
    dst[0] = &p->tile.x;
    dst[1] = &p->tile.y;
    dst[2] = &p->tile.w;
    dst[3] = &p->tile.h;
    for (int i = 0; i < 4; i++)
        if ((rc = param_u32(c, keys[i], i < 2 ? 0 : 1, RT_MAX_DIM - (i < 2), &p->has[i], dst[i])) != 0)
            return rc;
    if ((rc = param_u32(c, "spp", 1, RT_MAX_SPP, &has_spp, &p->spp)) != 0)
        return rc;
    const char *v;
    size_t vl;
    if (p2c2r_param_get(c->params, c->params_len, "format", &v, &vl)) {
        if (vl == 3 && memcmp(v, "png", 3) == 0) {
            p->png = 1;
        } else if (!(vl == 3 && memcmp(v, "raw", 3) == 0)) {
            if (c->err && c->err_cap)
                snprintf(c->err, c->err_cap, "param format must be raw or png");
            return P2C2R_EINVAL;
        }
    }
    return 0;
}

static int rt_exec_check(const struct p2c2r_exec_call *c)
{
    struct rt_params p;
    return params_parse(c, &p);
}

static void scene_free(void *obj) { rt_scene_free(obj); }

/* The prepared-state key of a scene: SHA-256 of a domain tag, the scene
 * text and the blobs' hashes in the call's order.  Returns 0, or -1 when
 * hashing failed (then nothing is cached). */
static int scene_key(const struct p2c2r_exec_call *c, uint8_t key[32])
{
    static const char tag[] = "p2c2r raytrace scene v1";
    struct task_sha256 *h = task_sha256_new();
    int ok = h && task_sha256_update(h, tag, sizeof(tag)) == 0 &&
             task_sha256_update(h, c->input, c->input_len) == 0;
    for (size_t i = 0; ok && i < c->nblobs; i++)
        ok = task_sha256_update(h, c->blobs[i].hash, 32) == 0;
    if (ok)
        ok = task_sha256_final(h, key) == 0;
    else
        task_sha256_free(h);
    return ok ? 0 : -1;
}

/* The call's scene: from the prepared state when the scene names blobs and
 * the peer holds it, else parsed (and, with blobs, offered to the cache; a
 * scene that fails to parse is never offered).  *own is what the caller
 * frees when the cache did not take the scene. */
static int scene_get(struct p2c2r_exec_call *c, const struct rt_scene **s, struct rt_scene **own)
{
    uint8_t key[32];
    int keyed = c->nblobs > 0 && scene_key(c, key) == 0;
    *own = NULL;
    if (keyed && (*s = p2c2r_exec_prepared_get(c, key)) != NULL)
        return 0;
    struct rt_scene *ps;
    int rc = rt_scene_parse((const char *)c->input, c->input_len, c->blobs, c->nblobs, &ps, c->err,
                            c->err_cap);
    if (rc != 0)
        return rc;
    const void *cached;
    if (keyed && p2c2r_exec_prepared_put(c, key, ps, rt_scene_bytes(ps), scene_free, &cached) == 0) {
        *s = cached;
    } else {
        *s = ps;
        *own = ps;
    }
    return 0;
}

static int rt_exec_run(struct p2c2r_exec_call *c)
{
    struct rt_params p;
    const struct rt_scene *s = NULL;
    struct rt_scene *own = NULL;
    uint8_t *pix = NULL, *png = NULL;
    size_t png_len = 0;
    char msg[160];
    int rc;
    if ((rc = params_parse(c, &p)) != 0)
        return rc;
    if ((rc = scene_get(c, &s, &own)) != 0)
        return rc;
    struct rt_scene_info si;
    rt_scene_get_info(s, &si);
    struct rt_tile t = p.tile;
    if (!p.has[2])
        t.w = t.x < si.width ? si.width - t.x : 0;
    if (!p.has[3])
        t.h = t.y < si.height ? si.height - t.y : 0;
    uint32_t spp = p.spp ? p.spp : si.spp;
    if (t.x >= si.width || t.y >= si.height || t.w == 0 || t.h == 0 || t.w > si.width - t.x ||
        t.h > si.height - t.y) {
        snprintf(msg, sizeof(msg), "tile x=%u y=%u w=%u h=%u is not inside the %ux%u frame", t.x, t.y,
                 t.w, t.h, si.width, si.height);
        set_err(c, msg);
        rc = P2C2R_EINVAL;
        goto out_scene;
    }
    if ((uint64_t)t.w * t.h * spp > RT_MAX_TASK_SAMPLES) {
        snprintf(msg, sizeof(msg), "w*h*spp = %llu is over the limit of %u samples per task: use smaller tiles",
                 (unsigned long long)t.w * t.h * spp, RT_MAX_TASK_SAMPLES);
        set_err(c, msg);
        rc = P2C2R_EINVAL;
        goto out_scene;
    }
    size_t stride = (size_t)t.w * 4, raw_len = stride * t.h;
    pix = p.png ? malloc(raw_len) : c->alloc_output(c, raw_len);
    if (!pix) {
        set_err(c, p.png ? "out of memory for the tile" : "output over limit");
        rc = p.png ? P2C2R_ENOMEM : P2C2R_ETOOBIG;
        goto out_scene;
    }
    if ((rc = rt_render_tile_cancel(s, &t, spp, pix, stride, c->cancel, c->err, c->err_cap)) != 0)
        goto out_pix;
    if (p.png) {
        if ((rc = rt_png_encode(pix, t.w, t.h, stride, &png, &png_len)) != 0) {
            set_err(c, "PNG encoding failed");
            goto out_pix;
        }
        uint8_t *o = c->alloc_output(c, png_len);
        if (!o) {
            set_err(c, "output over limit");
            rc = P2C2R_ETOOBIG;
            goto out_png;
        }
        memcpy(o, png, png_len);
    }
out_png:
    free(png);
out_pix:
    if (p.png)
        free(pix);
out_scene:
    rt_scene_free(own);
    return rc;
}

/* pixels * spp * (16 + 4 * ceil(log2(1 + primitives))): every sample walks
 * the BVH, whose depth grows with the log of the primitives.  The tile's
 * size comes from the params, or the scene's "width" / "height" less x / y;
 * spp from the params, the scene's "spp", or 1.  Primitives are the
 * triangles that the mesh blobs' headers declare plus one per 48 bytes of
 * scene text (an inline sphere or triangle takes about that). */
static uint64_t rt_exec_estimate(const struct p2c2r_exec_call *c)
{
    const char *js = (const char *)c->input;
    uint32_t fw = 0, fh = 0, sspp = 1;
    if (!cost_peek_uint(js, c->input_len, "\"width\"", &fw) || fw > RT_MAX_DIM)
        fw = fw > RT_MAX_DIM ? RT_MAX_DIM : 256;
    if (!cost_peek_uint(js, c->input_len, "\"height\"", &fh) || fh > RT_MAX_DIM)
        fh = fh > RT_MAX_DIM ? RT_MAX_DIM : 256;
    if (!cost_peek_uint(js, c->input_len, "\"spp\"", &sspp) || sspp == 0 || sspp > RT_MAX_SPP)
        sspp = sspp > RT_MAX_SPP ? RT_MAX_SPP : 1;
    uint64_t x = cost_param(c, "x", 0, RT_MAX_DIM), y = cost_param(c, "y", 0, RT_MAX_DIM);
    uint64_t w = cost_param(c, "w", fw > x ? fw - x : 1, RT_MAX_DIM);
    uint64_t h = cost_param(c, "h", fh > y ? fh - y : 1, RT_MAX_DIM);
    uint64_t spp = cost_param(c, "spp", sspp, RT_MAX_SPP);
    uint64_t prims = c->input_len / 48;
    for (size_t i = 0; i < c->nblobs; i++) {
        const struct p2c2r_blob *b = &c->blobs[i];
        if (b->data && b->len >= RT_MESH_HEADER && memcmp(b->data, RT_MESH_MAGIC, 8) == 0) {
            uint32_t nt = (uint32_t)b->data[12] | (uint32_t)b->data[13] << 8 |
                          (uint32_t)b->data[14] << 16 | (uint32_t)b->data[15] << 24;
            prims += nt < RT_MAX_TRIANGLES ? nt : RT_MAX_TRIANGLES;
        } else {
            prims += b->len / 24; /* header unseen: a triangle is at least 24 bytes of blob */
        }
    }
    uint64_t per_sample = 16 + 4 * (uint64_t)cost_log2(1 + prims);
    return cost_clamp(cost_mul(cost_mul(cost_mul(w ? w : 1, h ? h : 1), spp ? spp : 1), per_sample));
}

const struct p2c2r_executor exec_raytrace = {"raytrace", 1, P2C2R_EXEC_DETERMINISTIC, RT_MAX_INPUT,
                                           rt_exec_check, rt_exec_run, rt_exec_estimate};

/* ---- PNG ------------------------------------------------------------------------ */

struct png_sink {
    uint8_t *p;
    size_t len, cap;
    int oom;
};

static void rt_png_sink_write(png_structp png, png_bytep data, size_t n)
{
    struct png_sink *o = png_get_io_ptr(png);
    if (n > o->cap - o->len) {
        size_t cap = o->cap ? o->cap : 65536;
        while (cap - o->len < n) {
            if (cap > SIZE_MAX / 2) {
                o->oom = 1;
                png_error(png, "PNG too large");
            }
            cap *= 2;
        }
        uint8_t *np = realloc(o->p, cap);
        if (!np) {
            o->oom = 1;
            png_error(png, "out of memory");
        }
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, data, n);
    o->len += n;
}

static void rt_png_sink_flush(png_structp png)
{
    (void)png;
}

/* libpng reports errors by calling this, which must not return. */
static void rt_png_on_error(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static void rt_png_on_warning(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg; /* the library is silent */
}

/* The part that libpng may longjmp out of, kept apart so that nothing it
 * changes is read after the jump.  Returns 0 or -1. */
static int rt_png_write(png_structp png, png_infop info, const uint8_t *rgba, uint32_t w, uint32_t h,
                          size_t stride)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGBA, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, 6);
    png_write_info(png, info);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, rgba + (size_t)y * stride);
    png_write_end(png, info);
    return 0;
}

int rt_png_encode(const uint8_t *rgba, uint32_t w, uint32_t h, size_t stride, uint8_t **out,
                  size_t *out_len)
{
    if (w == 0 || h == 0 || w > RT_MAX_DIM || h > RT_MAX_DIM || stride < (size_t)w * 4)
        return P2C2R_EINVAL;
    /* On the heap: the sink is written by callbacks that may longjmp. */
    struct png_sink *sink = calloc(1, sizeof(*sink));
    if (!sink)
        return P2C2R_ENOMEM;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, rt_png_on_error, rt_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = P2C2R_ENOMEM;
    if (png && info) {
        png_set_write_fn(png, sink, rt_png_sink_write, rt_png_sink_flush);
        rc = rt_png_write(png, info, rgba, w, h, stride) == 0 ? 0 : sink->oom ? P2C2R_ENOMEM : P2C2R_EINVAL;
    }
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    if (rc == 0) {
        *out = sink->p;
        *out_len = sink->len;
    } else {
        free(sink->p);
    }
    free(sink);
    return rc;
}
