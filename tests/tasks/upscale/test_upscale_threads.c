/* test_upscale_threads.c - determinism of the upscale executor.
 *
 * The same resize must give byte-identical output run after run, from
 * several threads at once, and whichever kernel build the CPU selects: the
 * resampler is compiled a second time without the AVX2 clones
 * (resample_image_generic, see CMakeLists.txt) and both must agree on every
 * byte.  The cases cover every filter, RGB and RGBA, up- and downscaling,
 * one-axis resizes and a strong reduction whose windows are too long for
 * the unrolled kernels.  The whole pipeline (PNG in, PNG out) is checked
 * from the threads too. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p2c2r/error.h"
#include "tasks/upscale.h"

/* The same source built with P2C2R_NO_CLONES and this name. */
int resample_image_generic(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw, uint32_t dh,
                           uint32_t channels, enum resample_filter filter);

#define NTHREADS 4
#define ROUNDS 2

struct rcase {
    uint32_t sw, sh, dw, dh, ch;
    enum resample_filter f;
};

static struct rcase cases[64 * RESAMPLE_FILTER_COUNT];
static int ncases;
static uint8_t *srcs[2]; /* 3 and 4 channels, SRC_W x SRC_H */
#define SRC_W 203
#define SRC_H 121
static uint64_t ref_hash[64 * RESAMPLE_FILTER_COUNT];
static uint8_t *png_input;
static size_t png_input_len;
static uint64_t png_ref_hash;

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static uint64_t run_case(const struct rcase *c, int generic)
{
    size_t n = (size_t)c->dw * c->dh * c->ch;
    uint8_t *out = malloc(n);
    if (!out)
        return 0;
    memset(out, 0xa5, n);
    const uint8_t *src = srcs[c->ch - 3];
    int rc = generic ? resample_image_generic(src, c->sw, c->sh, out, c->dw, c->dh, c->ch, c->f)
                     : resample_image(src, c->sw, c->sh, out, c->dw, c->dh, c->ch, c->f);
    uint64_t h = rc == 0 ? fnv1a(out, n) : 0;
    free(out);
    return h;
}

struct buf {
    uint8_t *p;
    size_t n;
};

static void *alloc_malloc(void *opaque, size_t n)
{
    struct buf *b = opaque;
    b->p = malloc(n ? n : 1);
    b->n = n;
    return b->p;
}

static uint64_t run_pipeline(void)
{
    struct upscale_params p;
    const char *params = "scale=1.75\nfilter=lanczos3\nformat=png";
    struct buf out = {NULL, 0};
    struct upscale_info info;
    if (upscale_params_parse(params, strlen(params), &p, NULL, 0) != 0)
        return 0;
    int rc = upscale_process(&p, png_input, png_input_len, alloc_malloc, &out, &info, NULL, 0);
    uint64_t h = rc == 0 ? fnv1a(out.p, out.n) : 0;
    free(out.p);
    return h;
}

struct worker {
    int mismatches;
    int pipeline_mismatches;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < ncases; i++)
            if (run_case(&cases[i], 0) != ref_hash[i])
                w->mismatches++;
        if (run_pipeline() != png_ref_hash)
            w->pipeline_mismatches++;
    }
    return NULL;
}

static void add_sizes(uint32_t sw, uint32_t sh, uint32_t dw, uint32_t dh)
{
    for (uint32_t ch = 3; ch <= 4; ch++)
        for (int f = 0; f < RESAMPLE_FILTER_COUNT; f++)
            cases[ncases++] = (struct rcase){sw, sh, dw, dh, ch, (enum resample_filter)f};
}

int main(void)
{
    for (int ch = 3; ch <= 4; ch++) {
        uint8_t *p = malloc((size_t)SRC_W * SRC_H * (size_t)ch);
        uint32_t seed = 7;
        for (size_t i = 0; p && i < (size_t)SRC_W * SRC_H * (size_t)ch; i++) {
            seed = seed * 1664525u + 1013904223u;
            /* Smooth areas, hard edges and noise, alpha included. */
            size_t x = i / (size_t)ch % SRC_W, y = i / (size_t)ch / SRC_W;
            p[i] = (uint8_t)(((x / 16 + y / 16) % 2 ? 200 : 20) + (seed >> 28) + x % 7);
        }
        srcs[ch - 3] = p;
    }
    if (!CHECK(srcs[0] && srcs[1]))
        return check_report("test_upscale_threads");
    add_sizes(SRC_W, SRC_H, 2 * SRC_W, 2 * SRC_H);     /* 2x */
    add_sizes(SRC_W, SRC_H, 517, 301);                 /* non-integer up */
    add_sizes(SRC_W, SRC_H, 97, 60);                   /* down */
    add_sizes(SRC_W, SRC_H, 9, 7);                     /* strong reduction: long windows */
    add_sizes(SRC_W, SRC_H, SRC_W, 333);               /* height only */
    add_sizes(SRC_W, SRC_H, 64, SRC_H);                /* width only */
    add_sizes(SRC_W, SRC_H, 1, 1);

    for (int i = 0; i < ncases; i++) {
        ref_hash[i] = run_case(&cases[i], 0);
        CHECK(ref_hash[i] != 0);
        /* Run after run. */
        CHECK(run_case(&cases[i], 0) == ref_hash[i]);
        /* Whichever kernels the CPU picked, the baseline build agrees. */
        if (!CHECK(run_case(&cases[i], 1) == ref_hash[i]))
            fprintf(stderr, "  generic build differs: %ux%u -> %ux%u ch %u %s\n", cases[i].sw, cases[i].sh,
                    cases[i].dw, cases[i].dh, cases[i].ch, resample_filter_name(cases[i].f));
    }

    struct image im = {srcs[1], SRC_W, SRC_H, 4};
    char err[256];
    CHECK_EQ(imageio_encode_png(&im, 6, &png_input, &png_input_len, err, sizeof(err)), 0);
    png_ref_hash = run_pipeline();
    CHECK(png_ref_hash != 0 && run_pipeline() == png_ref_hash);

    pthread_t th[NTHREADS];
    struct worker w[NTHREADS];
    memset(w, 0, sizeof(w));
    for (int t = 0; t < NTHREADS; t++)
        CHECK_EQ(pthread_create(&th[t], NULL, worker_main, &w[t]), 0);
    for (int t = 0; t < NTHREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ(w[t].mismatches, 0);
        CHECK_EQ(w[t].pipeline_mismatches, 0);
    }
    printf("%d resize cases x (%d threads x %d rounds + 3 serial runs): byte-identical\n", ncases, NTHREADS,
           ROUNDS);
    free(png_input);
    free(srcs[0]);
    free(srcs[1]);
    return check_report("test_upscale_threads");
}
