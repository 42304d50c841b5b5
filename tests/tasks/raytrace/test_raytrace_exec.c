/* test_raytrace_exec.c - the `raytrace` executor through its ABI.
 *
 * A harness plays the peer: alloc_output hands out a malloc'd buffer of
 * exactly the size asked for (so ASan catches a write past it) and refuses
 * sizes over a limit.  Checks the table entry, raw and PNG output against
 * the C API, tile params, defaults, blobs from the call, bad params, the
 * per-task work cap, the output limit, and concurrent runs. */
#include <png.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tasks/raytrace.h"
#include "tasks/tasks.h"

struct harness {
    size_t limit;
    int calls;
    uint8_t *out;
    size_t out_len;
};

static void *harness_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct harness *h = call->opaque;
    h->calls++;
    if (n > h->limit)
        return NULL;
    free(h->out);
    h->out = malloc(n ? n : 1);
    h->out_len = n;
    return h->out;
}

static int run(struct harness *h, const char *scene, const char *params, const struct p2c2r_blob *blobs,
               size_t nblobs, char *err, size_t cap)
{
    const struct p2c2r_executor *e = &exec_raytrace;
    struct p2c2r_exec_call c = {
        .input = (const uint8_t *)scene,
        .input_len = strlen(scene),
        .params = params,
        .params_len = strlen(params),
        .alloc_output = harness_alloc,
        .opaque = h,
        .err = err,
        .err_cap = cap,
        .blobs = blobs,
        .nblobs = nblobs,
    };
    err[0] = '\0';
    if (e->check) {
        int rc = e->check(&c);
        if (rc)
            return rc;
    }
    return e->run(&c);
}

static void harness_reset(struct harness *h, size_t limit)
{
    free(h->out);
    *h = (struct harness){limit, 0, NULL, 0};
}

static const char SCENE[] =
    "{\"width\":24,\"height\":18,\"seed\":3,\"spp\":2,"
    "\"camera\":{\"position\":[0,1,4],\"look_at\":[0,0.4,0],\"fov\":50},"
    "\"spheres\":[{\"center\":[0,0.5,0],\"radius\":0.5,\"material\":{\"type\":\"metal\",\"albedo\":[0.9,0.8,0.7],\"fuzz\":0.1}}],"
    "\"planes\":[{\"point\":[0,0,0],\"normal\":[0,1,0],\"material\":{\"type\":\"diffuse\",\"albedo\":[0.5,0.5,0.5]}}],"
    "\"lights\":[{\"type\":\"rect\",\"corner\":[-1,2,-1],\"edge1\":[2,0,0],\"edge2\":[0,0,2],\"emission\":[4,4,4]}]}";
enum { W = 24, H = 18 };

/* The reference: the C API's full frame at spp. */
static uint8_t *reference(uint32_t spp)
{
    struct rt_scene *s = NULL;
    char err[256];
    uint8_t *px = malloc(W * H * 4);
    CHECK_EQ(rt_scene_parse(SCENE, strlen(SCENE), NULL, 0, &s, err, sizeof(err)), 0);
    struct rt_tile t = {0, 0, W, H};
    if (s)
        CHECK_EQ(rt_render_tile(s, &t, spp, px, W * 4, err, sizeof(err)), 0);
    rt_scene_free(s);
    return px;
}

static void test_table(void)
{
    const struct p2c2r_executor *e = tasks_find("raytrace", 8);
    if (CHECK(e != NULL)) {
        CHECK(strcmp(e->name, "raytrace") == 0);
        CHECK_EQU(e->version, 1);
        CHECK_EQU(e->flags, P2C2R_EXEC_DETERMINISTIC);
        CHECK_EQU(e->max_input, RT_MAX_INPUT);
        CHECK(e->run != NULL && e->check != NULL);
    }
}

static void test_raw(const uint8_t *ref2)
{
    struct harness h = {SIZE_MAX, 0, NULL, 0};
    char err[256];
    /* Defaults: the whole frame at the scene's spp, raw. */
    CHECK_EQ(run(&h, SCENE, "", NULL, 0, err, sizeof(err)), 0);
    CHECK_EQ(h.calls, 1);
    CHECK_EQU(h.out_len, W * H * 4);
    CHECK(h.out && memcmp(h.out, ref2, W * H * 4) == 0);
    /* A tile is the same rectangle of the frame. */
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run(&h, SCENE, "x=5\ny=3\nw=7\nh=9\nformat=raw\n", NULL, 0, err, sizeof(err)), 0);
    CHECK_EQU(h.out_len, 7 * 9 * 4);
    for (int r = 0; h.out && r < 9; r++)
        CHECK(memcmp(h.out + r * 7 * 4, ref2 + ((size_t)(3 + r) * W + 5) * 4, 7 * 4) == 0);
    /* w and h default to the rest of the frame. */
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run(&h, SCENE, "x=20\ny=10", NULL, 0, err, sizeof(err)), 0);
    CHECK_EQU(h.out_len, 4 * 8 * 4);
    for (int r = 0; h.out && r < 8; r++)
        CHECK(memcmp(h.out + r * 4 * 4, ref2 + ((size_t)(10 + r) * W + 20) * 4, 4 * 4) == 0);
    /* spp in params overrides the scene's. */
    uint8_t *ref1 = reference(1);
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run(&h, SCENE, "spp=1\n", NULL, 0, err, sizeof(err)), 0);
    CHECK(h.out && memcmp(h.out, ref1, W * H * 4) == 0);
    free(ref1);
    /* Over the output limit. */
    harness_reset(&h, W * H * 4 - 1);
    CHECK_EQ(run(&h, SCENE, "", NULL, 0, err, sizeof(err)), P2C2R_ETOOBIG);
    CHECK(err[0] != '\0');
    harness_reset(&h, 0);
}

struct png_read {
    const uint8_t *p;
    size_t len, off;
};

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
    struct png_read *r = png_get_io_ptr(png);
    if (n > r->len - r->off)
        png_error(png, "short");
    memcpy(out, r->p + r->off, n);
    r->off += n;
}

/* Decodes an RGBA8 PNG of w x h into rgba; returns 0 on success. */
static int png_decode(const uint8_t *p, size_t len, uint32_t w, uint32_t h, uint8_t *rgba)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    struct png_read r = {p, len, 0};
    int rc = -1;
    if (setjmp(png_jmpbuf(png)))
        goto out;
    png_set_read_fn(png, &r, png_read_mem);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != w || png_get_image_height(png, info) != h ||
        png_get_color_type(png, info) != PNG_COLOR_TYPE_RGBA || png_get_bit_depth(png, info) != 8)
        goto out;
    for (uint32_t y = 0; y < h; y++)
        png_read_row(png, rgba + (size_t)y * w * 4, NULL);
    png_read_end(png, NULL);
    rc = 0;
out:
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

static void test_png(const uint8_t *ref2)
{
    struct harness h = {SIZE_MAX, 0, NULL, 0};
    char err[256];
    CHECK_EQ(run(&h, SCENE, "format=png\n", NULL, 0, err, sizeof(err)), 0);
    CHECK(h.out_len > 8 && h.out && memcmp(h.out, "\x89PNG\r\n\x1a\n", 8) == 0);
    uint8_t *px = malloc(W * H * 4);
    if (h.out)
        CHECK_EQ(png_decode(h.out, h.out_len, W, H, px), 0);
    CHECK(memcmp(px, ref2, W * H * 4) == 0);
    /* The same bytes again. */
    uint8_t *first = malloc(h.out_len);
    size_t first_len = h.out_len;
    memcpy(first, h.out, h.out_len);
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run(&h, SCENE, "format=png\n", NULL, 0, err, sizeof(err)), 0);
    CHECK(h.out_len == first_len && memcmp(h.out, first, first_len) == 0);
    free(first);
    free(px);
    harness_reset(&h, 0);
    /* Encoder arguments. */
    uint8_t *out;
    size_t ol;
    uint8_t one[4] = {1, 2, 3, 255};
    CHECK_EQ(rt_png_encode(one, 0, 1, 4, &out, &ol), P2C2R_EINVAL);
    CHECK_EQ(rt_png_encode(one, 1, 1, 3, &out, &ol), P2C2R_EINVAL);
    CHECK_EQ(rt_png_encode(one, 1, 1, 4, &out, &ol), 0);
    uint8_t back[4];
    CHECK_EQ(png_decode(out, ol, 1, 1, back), 0);
    CHECK(memcmp(back, one, 4) == 0);
    free(out);
}

static void test_bad_params(void)
{
    static const char *const bad[] = {
        "format=jpeg\n", "format=\n",  "spp=0\n",      "spp=4097\n", "spp=abc\n",   "spp=-1\n",
        "x=abc\n",       "w=0\n",      "h=0\n",        "x=24\n",     "y=18\n",      "x=20\nw=5\n",
        "y=10\nh=9\n",   "w=99999\n",  "x=1e3\n",      "x=\n",       "h=4294967296\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct harness h = {SIZE_MAX, 0, NULL, 0};
        char err[256];
        int rc = run(&h, SCENE, bad[i], NULL, 0, err, sizeof(err));
        if (rc != P2C2R_EINVAL)
            fprintf(stderr, "params '%s': rc %d\n", bad[i], rc);
        CHECK_EQ(rc, P2C2R_EINVAL);
        CHECK(err[0] != '\0' && !strchr(err, '\n'));
        CHECK_EQ(h.calls, 0); /* rejected before any output */
        harness_reset(&h, 0);
    }
    /* A malformed scene is EINVAL from run, with the decoder's reason. */
    struct harness h = {SIZE_MAX, 0, NULL, 0};
    char err[256];
    CHECK_EQ(run(&h, "{\"width\":4}", "", NULL, 0, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "height") != NULL);
    CHECK_EQ(run(&h, "{\"width\":100000,\"height\":100000}", "", NULL, 0, err, sizeof(err)), P2C2R_EINVAL);
    CHECK_EQ(h.calls, 0);
    /* The per-task work cap: 16384 x 16384 x 4096 samples is refused
     * before anything is rendered or allocated. */
    const char *huge = "{\"width\":16384,\"height\":16384,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":40}}";
    CHECK_EQ(run(&h, huge, "spp=4096\n", NULL, 0, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "limit") != NULL);
    CHECK_EQ(h.calls, 0);
    /* Without an error buffer nothing is written and nothing crashes. */
    struct p2c2r_exec_call c = {.input = (const uint8_t *)"{", .input_len = 1, .alloc_output = harness_alloc,
                                .opaque = &h};
    CHECK_EQ(exec_raytrace.run(&c), P2C2R_EINVAL);
    harness_reset(&h, 0);
}

static void test_blob(void)
{
    static const float v[9] = {-1, 0, 0, 1, 0, 0, 0, 1.5f, 0};
    static const uint32_t ix[3] = {0, 1, 2};
    size_t bl = rt_mesh_blob_size(3, 1);
    uint8_t blob[16 + 36 + 12];
    CHECK_EQ(rt_mesh_blob_encode(v, 3, ix, 1, blob, bl), 0);
    struct p2c2r_blob b = {{0}, blob, bl};
    for (int i = 0; i < 32; i++)
        b.hash[i] = (uint8_t)(0x10 + i);
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", b.hash[i]);
    char scene[1024];
    snprintf(scene, sizeof(scene),
             "{\"width\":16,\"height\":12,\"camera\":{\"position\":[0,0.5,4],\"look_at\":[0,0.5,0],\"fov\":40},"
             "\"meshes\":[{\"blob\":\"%s\",\"material\":{\"type\":\"emissive\",\"emission\":[1,0.5,0.25]}}]}",
             hex);
    struct harness h = {SIZE_MAX, 0, NULL, 0};
    char err[256];
    CHECK_EQ(run(&h, scene, "", &b, 1, err, sizeof(err)), 0);
    /* The triangle glows in the middle of the frame, the corners are black. */
    if (h.out) {
        const uint8_t *mid = h.out + ((size_t)6 * 16 + 8) * 4, *corner = h.out;
        CHECK(mid[0] == 255 && mid[1] > 150 && mid[2] > 100);
        CHECK(corner[0] == 0 && corner[1] == 0 && corner[2] == 0);
    }
    /* The same scene without the blob in the call. */
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run(&h, scene, "", NULL, 0, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, hex) != NULL);
    harness_reset(&h, 0);
}

struct worker {
    const uint8_t *ref;
    int ok;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    w->ok = 1;
    for (int i = 0; i < 3; i++) {
        struct harness h = {SIZE_MAX, 0, NULL, 0};
        char err[256], params[64];
        uint32_t y = (uint32_t)(i * 5);
        snprintf(params, sizeof(params), "y=%u\nh=5\n", y);
        int rc = run(&h, SCENE, params, NULL, 0, err, sizeof(err));
        w->ok &= rc == 0 && h.out_len == W * 5 * 4 && memcmp(h.out, w->ref + (size_t)y * W * 4, W * 5 * 4) == 0;
        harness_reset(&h, 0);
    }
    return NULL;
}

static void test_concurrent(const uint8_t *ref2)
{
    enum { N = 4 };
    pthread_t th[N];
    struct worker w[N];
    for (int i = 0; i < N; i++) {
        w[i] = (struct worker){ref2, 0};
        CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK(w[i].ok);
    }
}

int main(void)
{
    uint8_t *ref2 = reference(2);
    test_table();
    test_raw(ref2);
    test_png(ref2);
    test_bad_params();
    test_blob();
    test_concurrent(ref2);
    free(ref2);
    return check_report("test_raytrace_exec");
}
