/* fuzz_raytrace.c - libFuzzer target for the raytrace executor's decoders:
 * the JSON scene (rt_scene_parse) and the binary mesh blob
 * (rt_mesh_blob_check), and what runs on a scene that decodes.
 *
 * Input: scene JSON, optionally followed by a NUL byte and a mesh blob.
 * The blob is offered to the scene under the hash 1111...11 (64 hex '1'),
 * so seeds that name that hash reach the blob path however the blob bytes
 * mutate.  An input that starts with the blob magic is also checked as a
 * blob on its own.  A scene that decodes is rendered for at most 2 x 2
 * pixels at 1 sample, directly and through exec_raytrace (PNG output), so
 * every input costs a bounded amount of work.  Invariants checked: a
 * rejected scene has a non-empty one-line reason; the executor's output
 * equals the C API's. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/raytrace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct sink {
    uint8_t *p;
    size_t n;
};

static void *sink_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct sink *s = call->opaque;
    free(s->p);
    s->p = malloc(n ? n : 1);
    s->n = n;
    return s->p;
}

static void check_reason(const char *err)
{
    if (err[0] == '\0' || strchr(err, '\n'))
        abort(); /* invariant violated: a rejection must say why, on one line */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    uint32_t nv, nt;
    if (size >= 8 && memcmp(data, RT_MESH_MAGIC, 8) == 0) {
        err[0] = '\0';
        if (rt_mesh_blob_check(data, size, &nv, &nt, err, sizeof(err)) != 0)
            check_reason(err);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    struct p2c2r_blob blob;
    memset(blob.hash, 0x11, sizeof(blob.hash));
    blob.data = nul ? nul + 1 : NULL;
    blob.len = nul ? size - jlen - 1 : 0;
    if (nul && rt_mesh_blob_check(blob.data, blob.len, &nv, &nt, err, sizeof(err)) != 0)
        check_reason(err);

    struct rt_scene *s = NULL;
    int rc = rt_scene_parse((const char *)data, jlen, nul ? &blob : NULL, nul ? 1 : 0, &s, err, sizeof(err));
    if (rc != 0) {
        if (rc == P2C2R_EINVAL)
            check_reason(err);
        return 0;
    }
    struct rt_scene_info si;
    rt_scene_get_info(s, &si);
    struct rt_tile t = {si.width / 2, si.height / 2, 0, 0};
    t.w = si.width - t.x < 2 ? si.width - t.x : 2;
    t.h = si.height - t.y < 2 ? si.height - t.y : 2;
    uint8_t px[2 * 2 * 4];
    if (rt_render_tile(s, &t, 1, px, sizeof(px) / 2, err, sizeof(err)) != 0)
        abort(); /* a valid tile of a valid scene must render */
    if ((uint64_t)si.width * si.height <= 1024) {
        double cost[1024];
        rt_estimate_rows(s, 8, cost);
    }
    rt_scene_free(s);

    /* The same pixels through the executor, as PNG. */
    char params[96];
    int pl = snprintf(params, sizeof(params), "x=%u\ny=%u\nw=%u\nh=%u\nspp=1\nformat=png\n", t.x, t.y, t.w, t.h);
    struct sink out = {NULL, 0};
    struct p2c2r_exec_call call = {
        .input = data,
        .input_len = jlen,
        .params = params,
        .params_len = (size_t)pl,
        .alloc_output = sink_alloc,
        .opaque = &out,
        .err = err,
        .err_cap = sizeof(err),
        .blobs = nul ? &blob : NULL,
        .nblobs = nul ? 1 : 0,
    };
    if (exec_raytrace.check(&call) != 0 || exec_raytrace.run(&call) != 0)
        abort();
    uint8_t *png = NULL;
    size_t png_len = 0;
    if (rt_png_encode(px, t.w, t.h, sizeof(px) / 2, &png, &png_len) != 0 || png_len != out.n ||
        memcmp(png, out.p, png_len) != 0)
        abort(); /* the executor must give the C API's bytes */
    free(png);
    free(out.p);
    return 0;
}
