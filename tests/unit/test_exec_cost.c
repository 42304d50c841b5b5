/* test_exec_cost.c - the executors' cost estimates (executor ABI 3) and
 * tasks_estimate (src/tasks/task_cost.c): each estimate is monotone in each
 * of its factors, proportional where its formula says so, and bounded
 * (1..P2C2R_EXEC_COST_MAX) for malformed params and input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p2c2r/executor.h"
#include "tasks/pathfind.h"
#include "tasks/physics.h"
#include "tasks/raytrace.h"
#include "tasks/task_cost.h"
#include "tasks/tasks.h"
#include "tasks/upscale.h"

static uint64_t est(const struct p2c2r_executor *e, const char *params, const void *in,
                    size_t in_len, const struct p2c2r_blob *blobs, size_t nblobs)
{
    struct p2c2r_exec_call call = {
        .input = in,
        .input_len = in_len,
        .params = params,
        .params_len = params ? strlen(params) : 0,
        .blobs = blobs,
        .nblobs = nblobs,
    };
    uint64_t c = e->estimate(&call);
    /* The table's entry and the coordinator's function agree. */
    CHECK_EQU(tasks_estimate(e->name, strlen(e->name), call.params, call.params_len, in, in_len,
                             blobs, nblobs),
              c);
    CHECK(c >= 1 && c <= P2C2R_EXEC_COST_MAX);
    return c;
}

static void test_every_builtin_has_one(void)
{
    size_t n;
    const struct p2c2r_executor *const *t = tasks_builtin(&n);
    for (size_t i = 0; i < n; i++)
        CHECK(t[i]->estimate != NULL);
    /* A type that is not built in costs its bytes. */
    struct p2c2r_blob b = {{0}, NULL, 100};
    CHECK_EQU(tasks_estimate("plugin", 6, NULL, 0, NULL, 41, &b, 1), 142);
}

static void test_bytes(void)
{
    static uint8_t buf[4096];
    struct p2c2r_blob b = {{0}, buf, 1000};
    CHECK_EQU(est(&exec_echo, NULL, buf, 0, NULL, 0), 1);
    CHECK_EQU(est(&exec_echo, NULL, buf, 4096, NULL, 0), 4097);
    CHECK_EQU(est(&exec_sha256, "format=hex", buf, 2048, NULL, 0), 2049);
    CHECK_EQU(est(&exec_sha256, NULL, buf, 2048, &b, 1), 3049);
    /* Sizes only, and an absurd one. */
    CHECK_EQU(est(&exec_echo, NULL, NULL, SIZE_MAX, NULL, 0), P2C2R_EXEC_COST_MAX);
}

static const char SCENE[] =
    "{\"width\": 64, \"height\": 32, \"spp\": 2, \"camera\": {\"position\": [0,0,5], "
    "\"look_at\": [0,0,0], \"fov\": 60}, \"background\": [1,1,1]}";

static void mesh_header(uint8_t h[RT_MESH_HEADER], uint32_t nv, uint32_t nt)
{
    memcpy(h, RT_MESH_MAGIC, 8);
    for (int i = 0; i < 4; i++) {
        h[8 + i] = (uint8_t)(nv >> (8 * i));
        h[12 + i] = (uint8_t)(nt >> (8 * i));
    }
}

static void test_raytrace(void)
{
    const struct p2c2r_executor *e = &exec_raytrace;
    size_t n = strlen(SCENE);
    uint64_t whole = est(e, NULL, SCENE, n, NULL, 0);
    uint64_t t8 = est(e, "x=0\ny=0\nw=8\nh=8", SCENE, n, NULL, 0);
    uint64_t t16 = est(e, "x=0\ny=0\nw=16\nh=8", SCENE, n, NULL, 0);
    uint64_t t16x16 = est(e, "w=16\nh=16", SCENE, n, NULL, 0);
    /* Pixels: proportional. 64x32 is 32 tiles of 8x8. */
    CHECK_EQU(t16, 2 * t8);
    CHECK_EQU(t16x16, 4 * t8);
    CHECK_EQU(whole, 32 * t8);
    /* Samples: proportional; the scene's spp (2) is the default. */
    uint64_t s1 = est(e, "w=8\nh=8\nspp=1", SCENE, n, NULL, 0);
    uint64_t s4 = est(e, "w=8\nh=8\nspp=4", SCENE, n, NULL, 0);
    CHECK_EQU(t8, 2 * s1);
    CHECK_EQU(s4, 4 * s1);
    /* Complexity: more triangles in the mesh blobs cost more, less than
     * proportionally (a BVH's depth). */
    uint8_t small[RT_MESH_HEADER], big[RT_MESH_HEADER];
    mesh_header(small, 3, 1000);
    mesh_header(big, 3, 1000000);
    struct p2c2r_blob bs = {{1}, small, 16 + 12 * 3 + 12 * 1000};
    struct p2c2r_blob bb = {{2}, big, 16 + 12 * 3 + 12 * 1000000};
    uint64_t c0 = est(e, "w=8\nh=8", SCENE, n, NULL, 0);
    uint64_t c1 = est(e, "w=8\nh=8", SCENE, n, &bs, 1);
    uint64_t c2 = est(e, "w=8\nh=8", SCENE, n, &bb, 1);
    CHECK(c0 < c1 && c1 < c2 && c2 < 1000 * c1);
    /* Sizes only (no blob bytes): still grows with the blob's size. */
    struct p2c2r_blob ns = {{1}, NULL, bs.len}, nb = {{2}, NULL, bb.len};
    CHECK(est(e, "w=8\nh=8", SCENE, n, &ns, 1) < est(e, "w=8\nh=8", SCENE, n, &nb, 1));
    /* Malformed: bounded, never an error. */
    est(e, "w=abc\nh=-1\nspp=99999999999999999999999", SCENE, n, NULL, 0);
    est(e, "w=16384\nh=16384\nspp=4096", "{\"width\": 99999999999999}", 24, &bb, 1);
    est(e, NULL, "garbage", 7, NULL, 0);
    est(e, NULL, NULL, 4u << 20, NULL, 0);
}

static char *pf_map(uint32_t w, uint32_t h, uint32_t queries)
{
    size_t cap = 64 + (size_t)(w + 1) * h + 32 + (size_t)queries * 32;
    char *m = malloc(cap), *p = m;
    p += sprintf(p, "type octile\nheight %u\nwidth %u\nmap\n", h, w);
    for (uint32_t y = 0; y < h; y++) {
        memset(p, '.', w);
        p += w;
        *p++ = '\n';
    }
    if (queries) {
        p += sprintf(p, "queries %u\n", queries);
        for (uint32_t i = 0; i < queries; i++)
            p += sprintf(p, "0 0 %u %u\n", w - 1, h - 1);
    }
    *p = '\0';
    return m;
}

static void test_pathfind(void)
{
    const struct p2c2r_executor *e = &exec_pathfind;
    char *a = pf_map(64, 64, 1), *b = pf_map(64, 64, 8), *c = pf_map(128, 64, 8),
         *d = pf_map(64, 64, 16);
    uint64_t ca = est(e, NULL, a, strlen(a), NULL, 0), cb = est(e, NULL, b, strlen(b), NULL, 0);
    uint64_t cc = est(e, NULL, c, strlen(c), NULL, 0), cd = est(e, NULL, d, strlen(d), NULL, 0);
    CHECK(ca < cb && cb < cd && cb < cc);
    /* cells + queries * (cells / 4 + 1) */
    CHECK_EQU(cb, 4096 + 8 * 1025);
    /* Grows with queries at a fixed map, linearly. */
    CHECK_EQU(cb - ca, 7 * 1025);
    CHECK_EQU(cd - cb, 8 * 1025);
    /* The map as a blob: the same cost as inline. */
    char *map = pf_map(64, 64, 0);
    struct p2c2r_blob blob = {{0xab}, (const uint8_t *)map, strlen(map)};
    char params[128] = "map=";
    for (int i = 0; i < 32; i++)
        sprintf(params + 4 + 2 * i, "%02x", blob.hash[i]);
    const char *q8 = "queries 8\n0 0 63 63\n0 0 63 63\n0 0 63 63\n0 0 63 63\n0 0 63 63\n0 0 63 63\n"
                     "0 0 63 63\n0 0 63 63\n";
    CHECK_EQU(est(e, params, q8, strlen(q8), &blob, 1), cb);
    /* Malformed. */
    est(e, "algo=zzz", "height 99999999\nwidth 99999999\nqueries 4294967295", 48, NULL, 0);
    est(e, params, q8, strlen(q8), NULL, 0); /* the blob is missing */
    est(e, NULL, NULL, 32u << 20, NULL, 0);
    free(a), free(b), free(c), free(d), free(map);
}

static char *phys_scene(int bodies, int iterations)
{
    char *s = malloc(256 + (size_t)bodies * 128), *p = s;
    p += sprintf(p, "{\"steps\": 10, ");
    if (iterations)
        p += sprintf(p, "\"iterations\": %d, ", iterations);
    p += sprintf(p, "\"bodies\": [");
    for (int i = 0; i < bodies; i++)
        p += sprintf(p, "%s{\"id\": %d, \"shape\": \"sphere\", \"mass\": 1, \"radius\": 0.5, "
                        "\"position\": [%d, 1, 0]}", i ? ", " : "", i, 2 * i);
    sprintf(p, "]}");
    return s;
}

static void test_physics(void)
{
    const struct p2c2r_executor *e = &exec_physics;
    char *b2 = phys_scene(2, 0), *b5 = phys_scene(5, 0), *i40 = phys_scene(2, 40);
    uint64_t c2 = est(e, NULL, b2, strlen(b2), NULL, 0), c5 = est(e, NULL, b5, strlen(b5), NULL, 0);
    /* (1 + bodies) * (1 + steps * (4 + iterations)); steps from the scene. */
    CHECK_EQU(c2, 3 * (1 + 10 * 24));
    CHECK_EQU(c5, 6 * (1 + 10 * 24));
    CHECK_EQU(est(e, NULL, i40, strlen(i40), NULL, 0), 3 * (1 + 10 * 44));
    /* Steps from the params override the scene's. */
    uint64_t s20 = est(e, "steps=20", b2, strlen(b2), NULL, 0);
    uint64_t s40 = est(e, "steps=40", b2, strlen(b2), NULL, 0);
    CHECK(c2 < s20 && s20 < s40);
    CHECK_EQU(s40 - 3, 2 * (s20 - 3));
    /* Malformed. */
    est(e, "steps=1e9", "{\"steps\": -4, \"iterations\": 100000}", 35, NULL, 0);
    est(e, "steps=100000", NULL, 16u << 20, NULL, 0);
    free(b2), free(b5), free(i40);
}

static void test_upscale(void)
{
    const struct p2c2r_executor *e = &exec_upscale;
    static uint8_t raw[100 * 100 * 4];
    const char *base = "in_width=100\nin_height=100\nformat=raw\n";
    char p[256];
    uint64_t c[4];
    const char *filters[4] = {"nearest", "bilinear", "bicubic", "lanczos3"};
    for (int f = 0; f < 4; f++) {
        snprintf(p, sizeof(p), "%sscale=2\nfilter=%s", base, filters[f]);
        c[f] = est(e, p, raw, sizeof(raw), NULL, 0);
    }
    /* Wider filters cost more: nearest 1 tap a side, then 3, 5, 7. */
    CHECK(c[0] < c[1] && c[1] < c[2] && c[2] < c[3]);
    CHECK_EQU(c[2], 100 * 100 + 200 * 200 * (1 + 5 + 5));
    /* Output pixels: a 4x scale costs about 4 times a 2x one. */
    snprintf(p, sizeof(p), "%sscale=4\nfilter=bicubic", base);
    uint64_t c4 = est(e, p, raw, sizeof(raw), NULL, 0);
    CHECK_EQU(c4, 100 * 100 + 400 * 400 * (1 + 5 + 5));
    /* Shrinking widens the taps. */
    snprintf(p, sizeof(p), "%swidth=25\nheight=25\nfilter=bicubic", base);
    CHECK_EQU(est(e, p, raw, sizeof(raw), NULL, 0), 100 * 100 + 25 * 25 * (1 + 17 + 17));
    /* A PNG's size comes from its header. */
    static const uint8_t png[33] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13,
                                    'I', 'H', 'D', 'R', 0, 0, 0, 100, 0, 0, 0, 100, 8, 6};
    CHECK_EQU(est(e, "scale=2", png, sizeof(png), NULL, 0), 100 * 100 + 200 * 200 * 11);
    /* A JPEG's from its SOF marker. */
    static const uint8_t jpg[] = {0xFF, 0xD8, 0xFF, 0xE0, 0, 4, 0, 0, 0xFF, 0xC0, 0, 11, 8,
                                  0, 50, 0, 100, 3, 1, 0x11, 0};
    CHECK_EQU(est(e, "scale=2", jpg, sizeof(jpg), NULL, 0), 100 * 50 + 200 * 100 * 11);
    /* Malformed. */
    est(e, "scale=banana", "not an image", 12, NULL, 0);
    est(e, "width=99999999\nheight=99999999", png, sizeof(png), NULL, 0);
    est(e, "scale=64\nfilter=lanczos3", NULL, (size_t)256 << 20, NULL, 0);
}

/* Random bytes as input and params: every estimate stays in range. */
static void test_garbage(void)
{
    size_t n;
    const struct p2c2r_executor *const *t = tasks_builtin(&n);
    uint64_t s = 88172645463325252ull;
    uint8_t buf[512];
    char params[64];
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof(buf); i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            buf[i] = round & 1 ? (uint8_t)"0123456789\"widthqueries:= \n"[s % 27] : (uint8_t)s;
        }
        memcpy(params, buf + 100, sizeof(params) - 1);
        params[sizeof(params) - 1] = '\0'; /* est takes its length with strlen */
        size_t len = (size_t)(s % sizeof(buf));
        struct p2c2r_blob b = {{0}, buf + 200, (size_t)(s >> 20) % 300};
        for (size_t i = 0; i < n; i++)
            est(t[i], params, buf, len, &b, s & 1);
    }
}

int main(void)
{
    test_every_builtin_has_one();
    test_bytes();
    test_raytrace();
    test_pathfind();
    test_physics();
    test_upscale();
    test_garbage();
    return check_report("test_exec_cost");
}
