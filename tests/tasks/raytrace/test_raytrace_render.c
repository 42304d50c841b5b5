/* test_raytrace_render.c - what the renderer computes, and that it is
 * deterministic.
 *
 *  - closed form: a diffuse sphere lit by one point light, black
 *    background, 1 spp (the pixel-centre ray): every pixel equals the
 *    documented model, sRGB8(albedo / pi * I * max(0, n.l) / d^2), within
 *    1/255, and misses are black;
 *  - split invariance: the frame rendered as 1, 4, 7 and 16 tiles (each into
 *    its own buffer, then reassembled) is byte-identical to one full render;
 *  - determinism: two parses of the scene, four threads rendering at once,
 *    and interleaved rows all give the same bytes, and those bytes match a
 *    checked-in FNV-1a digest, so gcc, clang, -O0 and the sanitizers must
 *    agree to the byte;
 *  - every material and light together never produce NaN garbage. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tasks/raytrace.h"

static struct rt_scene *must_parse(const char *json)
{
    struct rt_scene *s = NULL;
    char err[256];
    int rc = rt_scene_parse(json, strlen(json), NULL, 0, &s, err, sizeof(err));
    if (rc)
        fprintf(stderr, "parse: %s\n", err);
    CHECK_EQ(rc, 0);
    return s;
}

static uint8_t *render_full(const struct rt_scene *s, uint32_t w, uint32_t h, uint32_t spp)
{
    uint8_t *px = malloc((size_t)w * h * 4);
    char err[256];
    struct rt_tile t = {0, 0, w, h};
    memset(px, 0xa5, (size_t)w * h * 4);
    CHECK_EQ(rt_render_tile(s, &t, spp, px, (size_t)w * 4, err, sizeof(err)), 0);
    return px;
}

/* ---- closed form ------------------------------------------------------------------ */

static double srgb_encode(double v)
{
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return v <= 0.0031308 ? 12.92 * v : 1.055 * pow(v, 1 / 2.4) - 0.055;
}

static void test_closed_form(void)
{
    enum { W = 48, H = 36 };
    const double alb[3] = {0.8, 0.5, 0.25}, I[3] = {30, 20, 12}, L[3] = {2, 3, 4};
    const double pos[3] = {0, 0, 5}, fov = 40;
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"width\":%d,\"height\":%d,\"spp\":1,\"max_depth\":4,\"background\":[0,0,0],"
             "\"camera\":{\"position\":[%g,%g,%g],\"look_at\":[0,0,0],\"up\":[0,1,0],\"fov\":%g},"
             "\"spheres\":[{\"center\":[0,0,0],\"radius\":1,\"material\":{\"type\":\"diffuse\",\"albedo\":[%g,%g,%g]}}],"
             "\"lights\":[{\"type\":\"point\",\"position\":[%g,%g,%g],\"intensity\":[%g,%g,%g]}]}",
             W, H, pos[0], pos[1], pos[2], fov, alb[0], alb[1], alb[2], L[0], L[1], L[2], I[0], I[1], I[2]);
    struct rt_scene *s = must_parse(json);
    if (!s)
        return;
    uint8_t *px = render_full(s, W, H, 1);
    double th = tan(fov / 2 * M_PI / 180), aspect = (double)W / H;
    int hits = 0, lit = 0, worst = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            /* The documented camera: right = +x, up = +y, forward = -z. */
            double u = (2.0 * (x + 0.5) / W - 1) * th * aspect, v = (1 - 2.0 * (y + 0.5) / H) * th;
            double d[3] = {u, v, -1}, dl = sqrt(u * u + v * v + 1);
            for (int k = 0; k < 3; k++)
                d[k] /= dl;
            /* |pos + t d| = 1 */
            double b = pos[0] * d[0] + pos[1] * d[1] + pos[2] * d[2];
            double c = pos[0] * pos[0] + pos[1] * pos[1] + pos[2] * pos[2] - 1;
            double disc = b * b - c;
            int expect[3] = {0, 0, 0};
            if (disc >= 0) {
                double t = -b - sqrt(disc), p[3], l[3], d2 = 0, nl = 0;
                for (int k = 0; k < 3; k++) {
                    p[k] = pos[k] + t * d[k];
                    l[k] = L[k] - p[k];
                    d2 += l[k] * l[k];
                }
                for (int k = 0; k < 3; k++)
                    nl += p[k] * l[k] / sqrt(d2);
                hits++;
                lit += nl > 0;
                for (int k = 0; k < 3; k++) {
                    double rad = alb[k] / M_PI * I[k] * (nl > 0 ? nl : 0) / d2;
                    expect[k] = (int)lround(255 * srgb_encode(rad));
                }
            }
            const uint8_t *q = px + ((size_t)y * W + x) * 4;
            for (int k = 0; k < 3; k++) {
                int diff = abs((int)q[k] - expect[k]);
                worst = diff > worst ? diff : worst;
                if (diff > 1)
                    fprintf(stderr, "pixel %d,%d channel %d: %d, expected %d\n", x, y, k, q[k], expect[k]);
                CHECK(diff <= 1);
            }
            CHECK_EQ(q[3], 255);
        }
    CHECK(hits > W * H / 8);
    CHECK(lit > 0 && lit < hits);
    printf("closed form: %d of %d pixels on the sphere, %d lit, worst difference %d/255\n", hits, W * H, lit,
           worst);
    free(px);
    rt_scene_free(s);
}

/* ---- a scene with everything --------------------------------------------------------- */

static const char RICH[] =
    "{\"width\":40,\"height\":30,\"seed\":7,\"spp\":2,\"max_depth\":6,\"background\":[0.05,0.07,0.1],\"clamp\":8,"
    "\"camera\":{\"position\":[0,1.2,5],\"look_at\":[0,0.5,0],\"fov\":45},"
    "\"materials\":{\"d\":{\"type\":\"diffuse\",\"albedo\":[0.7,0.6,0.5]},"
    "\"m\":{\"type\":\"metal\",\"albedo\":[0.9,0.9,0.9],\"fuzz\":0.2},"
    "\"g\":{\"type\":\"glass\",\"ior\":1.5},\"e\":{\"type\":\"emissive\",\"emission\":[2,1,0.5]}},"
    "\"spheres\":[{\"center\":[-1,0.5,0],\"radius\":0.5,\"material\":\"d\"},"
    "{\"center\":[0,0.6,-0.5],\"radius\":0.6,\"material\":\"m\"},"
    "{\"center\":[1,0.4,0.5],\"radius\":0.4,\"material\":\"g\"},"
    "{\"center\":[0.3,0.1,1.2],\"radius\":0.1,\"material\":\"e\"}],"
    "\"planes\":[{\"point\":[0,0,0],\"normal\":[0,1,0],\"material\":\"d\"}],"
    "\"meshes\":[{\"vertices\":[1,0,0,-1,0,0,0,1,0,0,-1,0,0,0,1,0,0,-1],"
    "\"indices\":[0,2,4,2,1,4,1,3,4,3,0,4,2,0,5,1,2,5,3,1,5,0,3,5],"
    "\"translate\":[-0.4,0.3,1],\"scale\":0.3,\"material\":\"m\"}],"
    "\"lights\":[{\"type\":\"rect\",\"corner\":[-1,2.5,-1],\"edge1\":[2,0,0],\"edge2\":[0,0,1],\"emission\":[6,6,6]},"
    "{\"type\":\"sphere\",\"center\":[2,2,2],\"radius\":0.3,\"emission\":[8,7,6]},"
    "{\"type\":\"point\",\"position\":[-2,3,2],\"intensity\":[3,3,3]}]}";
enum { RW = 40, RH = 30, RSPP = 2 };

/* FNV-1a of the rich scene's frame: any change to the renderer's output
 * changes this (then bump exec_raytrace's version and update it). */
#define RICH_DIGEST UINT64_C(0x8203edaf6f7bfe85)

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = UINT64_C(0xcbf29ce484222325);
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

/* Renders the given tiles, each into a fresh buffer, and pastes them. */
static void render_tiles(const struct rt_scene *s, const struct rt_tile *tiles, int n, uint8_t *frame)
{
    char err[256];
    for (int i = 0; i < n; i++) {
        const struct rt_tile *t = &tiles[i];
        size_t stride = (size_t)t->w * 4;
        uint8_t *buf = malloc(stride * t->h);
        memset(buf, 0x5a, stride * t->h);
        CHECK_EQ(rt_render_tile(s, t, RSPP, buf, stride, err, sizeof(err)), 0);
        for (uint32_t r = 0; r < t->h; r++)
            memcpy(frame + ((size_t)(t->y + r) * RW + t->x) * 4, buf + r * stride, stride);
        free(buf);
    }
}

static void test_split(const struct rt_scene *s, const uint8_t *full)
{
    static const struct rt_tile one[1] = {{0, 0, RW, RH}};
    static const struct rt_tile four[4] = {{0, 0, 17, 11}, {17, 0, 23, 11}, {0, 11, 17, 19}, {17, 11, 23, 19}};
    /* Two columns cut into 3 and 4 bands of uneven heights. */
    static const struct rt_tile seven[7] = {{0, 0, 13, 5},   {0, 5, 13, 12},  {0, 17, 13, 13}, {13, 0, 27, 11},
                                            {13, 11, 27, 1}, {13, 12, 27, 13}, {13, 25, 27, 5}};
    struct rt_tile sixteen[16];
    for (int i = 0; i < 16; i++)
        sixteen[i] = (struct rt_tile){(uint32_t)(i % 4) * 10, (uint32_t)(i / 4) * 8, 10, i / 4 == 3 ? 6 : 8};
    const struct rt_tile *sets[4] = {one, four, seven, sixteen};
    const int counts[4] = {1, 4, 7, 16};
    uint8_t *frame = malloc((size_t)RW * RH * 4);
    for (int k = 0; k < 4; k++) {
        uint64_t area = 0;
        for (int i = 0; i < counts[k]; i++)
            area += (uint64_t)sets[k][i].w * sets[k][i].h;
        CHECK_EQU(area, RW * RH); /* the tiles cover the frame exactly */
        memset(frame, 0, (size_t)RW * RH * 4);
        render_tiles(s, sets[k], counts[k], frame);
        if (!CHECK(memcmp(frame, full, (size_t)RW * RH * 4) == 0))
            fprintf(stderr, "split into %d tiles differs from the full render\n", counts[k]);
    }
    /* Single pixels, anywhere, in any order. */
    for (int i = 0; i < 50; i++) {
        uint32_t x = (uint32_t)(i * 37) % RW, y = (uint32_t)(i * 11) % RH;
        struct rt_tile t = {x, y, 1, 1};
        uint8_t px[4];
        char err[64];
        CHECK_EQ(rt_render_tile(s, &t, RSPP, px, 4, err, sizeof(err)), 0);
        CHECK(memcmp(px, full + ((size_t)y * RW + x) * 4, 4) == 0);
    }
    free(frame);
}

struct job {
    const struct rt_scene *s;
    uint8_t *frame;
    int mode; /* 0 = the whole frame, 1/2 = even/odd rows into a shared frame */
    int rc;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    char err[128];
    j->rc = 0;
    for (uint32_t y = 0; y < RH; y++) {
        if (j->mode && (y % 2) != (uint32_t)(j->mode - 1))
            continue;
        struct rt_tile t = {0, y, RW, 1};
        j->rc |= rt_render_tile(j->s, &t, RSPP, j->frame + (size_t)y * RW * 4, RW * 4, err, sizeof(err));
    }
    return NULL;
}

static void test_threads(const struct rt_scene *s, const uint8_t *full)
{
    enum { N = 4 };
    pthread_t th[N];
    struct job jobs[N];
    uint8_t *shared = calloc((size_t)RW * RH, 4);
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct job){s, i < 2 ? malloc((size_t)RW * RH * 4) : shared, i < 2 ? 0 : i - 1, -1};
        CHECK_EQ(pthread_create(&th[i], NULL, job_main, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(jobs[i].rc, 0);
    }
    for (int i = 0; i < 2; i++) {
        CHECK(memcmp(jobs[i].frame, full, (size_t)RW * RH * 4) == 0);
        free(jobs[i].frame);
    }
    CHECK(memcmp(shared, full, (size_t)RW * RH * 4) == 0);
    free(shared);
}

static void test_rich(void)
{
    struct rt_scene *s = must_parse(RICH), *s2 = must_parse(RICH);
    if (!s || !s2) {
        rt_scene_free(s);
        rt_scene_free(s2);
        return;
    }
    uint8_t *full = render_full(s, RW, RH, RSPP);
    uint8_t *again = render_full(s2, RW, RH, RSPP);
    CHECK(memcmp(full, again, (size_t)RW * RH * 4) == 0);
    /* Sanity: not one flat colour, alpha opaque, something bright. */
    int distinct = 0, bright = 0;
    for (size_t i = 0; i < (size_t)RW * RH; i++) {
        CHECK_EQ(full[i * 4 + 3], 255);
        distinct += i > 0 && memcmp(full + i * 4, full + (i - 1) * 4, 3) != 0;
        bright += full[i * 4] > 200;
    }
    CHECK(distinct > RW * RH / 4);
    CHECK(bright > 0);
    uint64_t digest = fnv1a(full, (size_t)RW * RH * 4);
    printf("rich scene digest 0x%016llx\n", (unsigned long long)digest);
    CHECK_EQU(digest, RICH_DIGEST);
    test_split(s, full);
    test_threads(s, full);
    /* More samples change the picture (jitter and sampling are live). */
    uint8_t *more = render_full(s, RW, RH, 3);
    CHECK(memcmp(more, full, (size_t)RW * RH * 4) != 0);
    free(more);
    free(full);
    free(again);
    rt_scene_free(s);
    rt_scene_free(s2);
}

/* The seed changes the noise but not the closed-form part. */
static void test_seed(void)
{
    char a[sizeof(RICH) + 8], b[sizeof(RICH) + 8];
    snprintf(a, sizeof(a), "%s", RICH);
    snprintf(b, sizeof(b), "%s", RICH);
    char *p = strstr(b, "\"seed\":7");
    if (!CHECK(p != NULL))
        return;
    p[7] = '8';
    struct rt_scene *sa = must_parse(a), *sb = must_parse(b);
    if (sa && sb) {
        uint8_t *fa = render_full(sa, RW, RH, RSPP), *fb = render_full(sb, RW, RH, RSPP);
        CHECK(memcmp(fa, fb, (size_t)RW * RH * 4) != 0);
        free(fa);
        free(fb);
    }
    rt_scene_free(sa);
    rt_scene_free(sb);
}

int main(void)
{
    test_closed_form();
    test_rich();
    test_seed();
    return check_report("test_raytrace_render");
}
