/* bench_upscale.c - times the upscale resampler, one thread.
 *
 * Makes a deterministic photo-like test frame (smooth colour fields, edges
 * and a little noise), resizes it with each filter several times and prints
 * the median wall-clock time per filter (and the median CPU time of the
 * thread, which a busy machine disturbs less).  With --save PATH it also writes the frame as
 * PNG so that bench_upscale.sh can time Pillow on exactly the same pixels.
 *
 *   bench_upscale [--in WxH] [--out WxH] [--channels 3|4] [--runs N]
 *                 [--filter NAME] [--save PATH] [--json]
 *
 * Output, one line per filter:
 *   upscale 1920x1080 -> 3840x2160 rgb bicubic: median 12.345 ms (min 12.0, max 12.9, cpu 12.2, 7 runs)
 * or with --json one object per line with the same fields. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p2c2r/error.h"
#include "tasks/imageio.h"
#include "tasks/upscale_resample.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int parse_size(const char *s, uint32_t *w, uint32_t *h)
{
    unsigned a, b;
    char tail;
    if (sscanf(s, "%ux%u%c", &a, &b, &tail) != 2 || a == 0 || b == 0 || a > IMAGE_MAX_SIDE ||
        b > IMAGE_MAX_SIDE)
        return -1;
    *w = a;
    *h = b;
    return 0;
}

/* A frame with what real content has: smooth gradients, hard edges, fine
 * texture.  Deterministic (a fixed LCG), so every run times the same work. */
static void make_frame(uint8_t *px, uint32_t w, uint32_t h, uint32_t ch)
{
    uint32_t seed = 12345;
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            uint8_t *p = px + ((size_t)y * w + x) * ch;
            seed = seed * 1664525u + 1013904223u;
            int noise = (int)(seed >> 28) - 8;
            double fx = (double)x / w, fy = (double)y / h;
            int r = (int)(128 + 100 * sin(fx * 9.0) * cos(fy * 5.0)) + noise;
            int g = (int)(255 * fx * fy) + noise;
            int b = ((x / 64 + y / 64) % 2) ? 220 : 30;
            p[0] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
            p[1] = (uint8_t)(g < 0 ? 0 : g > 255 ? 255 : g);
            p[2] = (uint8_t)b;
            if (ch == 4)
                p[3] = (uint8_t)(x % 512 < 448 ? 255 : (x % 512) * 2);
        }
    }
}

int main(int argc, char **argv)
{
    uint32_t sw = 1920, sh = 1080, dw = 3840, dh = 2160, ch = 3;
    int runs = 7, json = 0, only = -1;
    const char *save = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--in") && v && parse_size(v, &sw, &sh) == 0) {
            i++;
        } else if (!strcmp(a, "--out") && v && parse_size(v, &dw, &dh) == 0) {
            i++;
        } else if (!strcmp(a, "--channels") && v && (!strcmp(v, "3") || !strcmp(v, "4"))) {
            ch = (uint32_t)atoi(v);
            i++;
        } else if (!strcmp(a, "--runs") && v && atoi(v) >= 1 && atoi(v) <= 1000) {
            runs = atoi(v);
            i++;
        } else if (!strcmp(a, "--filter") && v) {
            enum resample_filter f;
            if (resample_filter_parse(v, strlen(v), &f) != 0) {
                fprintf(stderr, "bench_upscale: unknown filter '%s'\n", v);
                return 2;
            }
            only = (int)f;
            i++;
        } else if (!strcmp(a, "--save") && v) {
            save = v;
            i++;
        } else {
            fprintf(stderr,
                    "usage: %s [--in WxH] [--out WxH] [--channels 3|4] [--runs N] [--filter NAME] "
                    "[--save PATH] [--json]\n",
                    argv[0]);
            return 2;
        }
    }
    struct image src, dst;
    if (image_init(&src, sw, sh, ch, NULL) != 0 || image_init(&dst, dw, dh, ch, NULL) != 0) {
        fprintf(stderr, "bench_upscale: sizes over the limits or out of memory\n");
        return 1;
    }
    make_frame(src.px, sw, sh, ch);
    if (save) {
        uint8_t *png;
        size_t len;
        char err[256];
        FILE *f = fopen(save, "wb");
        if (!f || imageio_encode_png(&src, 1, &png, &len, err, sizeof(err)) != 0 ||
            fwrite(png, 1, len, f) != len || fclose(f) != 0) {
            fprintf(stderr, "bench_upscale: cannot write %s\n", save);
            return 1;
        }
        free(png);
    }
    double *t = malloc(sizeof(double) * (size_t)runs), *c = malloc(sizeof(double) * (size_t)runs);
    if (!t || !c)
        return 1;
    for (int f = 0; f < RESAMPLE_FILTER_COUNT; f++) {
        if (only >= 0 && f != only)
            continue;
        /* One untimed run warms caches and faults the output pages in. */
        if (resample_image(src.px, sw, sh, dst.px, dw, dh, ch, (enum resample_filter)f) != 0) {
            fprintf(stderr, "bench_upscale: resample failed\n");
            return 1;
        }
        for (int r = 0; r < runs; r++) {
            double t0 = clock_ms(CLOCK_MONOTONIC), c0 = clock_ms(CLOCK_THREAD_CPUTIME_ID);
            resample_image(src.px, sw, sh, dst.px, dw, dh, ch, (enum resample_filter)f);
            c[r] = clock_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
            t[r] = clock_ms(CLOCK_MONOTONIC) - t0;
        }
        double med = median(t, runs), cpu = median(c, runs);
        const char *name = resample_filter_name((enum resample_filter)f);
        if (json)
            printf("{\"in\":\"%ux%u\",\"out\":\"%ux%u\",\"channels\":%u,\"filter\":\"%s\",\"median_ms\":%.3f,"
                   "\"min_ms\":%.3f,\"max_ms\":%.3f,\"cpu_median_ms\":%.3f,\"runs\":%d}\n",
                   sw, sh, dw, dh, ch, name, med, t[0], t[runs - 1], cpu, runs);
        else
            printf("upscale %ux%u -> %ux%u %s %s: median %.3f ms (min %.3f, max %.3f, cpu %.3f, %d runs)\n", sw,
                   sh, dw, dh, ch == 3 ? "rgb" : "rgba", name, med, t[0], t[runs - 1], cpu, runs);
        fflush(stdout);
    }
    free(t);
    free(c);
    image_fini(&src);
    image_fini(&dst);
    return 0;
}
