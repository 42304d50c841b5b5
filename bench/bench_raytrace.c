/* bench_raytrace.c - the raytrace executor's renderer in-process on one
 * thread: decodes a scene (timing the decode and BVH build), renders the
 * whole frame with rt_render_tile, and prints the time, the throughput in
 * samples per second and one JSON line.  This is the baseline the fabric
 * runs in bench/bench_render.sh are compared with.
 *
 * Usage: bench_raytrace SCENE.json [--width W] [--height H] [--spp N]
 *                       [--repeat R] [--output FRAME.png]
 * The best of R runs is reported (default 1). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "common/cliopt.h"
#include "tasks/raytrace.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap)
            break;
        char *nb = cap < ((size_t)256 << 20) ? realloc(b, cap * 2) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    fclose(f);
    *len = n;
    return b;
}

/* The scene with its width and height replaced (0 = keep), via jansson:
 * reals are written with 17 digits, so the rest reads back exactly. */
static char *with_size(const char *json, size_t len, int64_t w, int64_t h, size_t *out_len)
{
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return NULL;
    }
    if (w)
        json_object_set_new(root, "width", json_integer(w));
    if (h)
        json_object_set_new(root, "height", json_integer(h));
    char *o = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (o)
        *out_len = strlen(o);
    return o;
}

int main(int argc, char **argv)
{
    int64_t w = 0, h = 0, spp = 0, repeat = 1;
    const char *png_path = NULL;
    const struct cliopt opts[] = {
        {"width", 0, OPT_INT, "W", 1, RT_MAX_DIM, "frame width (default: the scene's)", &w},
        {"height", 0, OPT_INT, "H", 1, RT_MAX_DIM, "frame height (default: the scene's)", &h},
        {"spp", 0, OPT_INT, "N", 1, RT_MAX_SPP, "samples per pixel (default: the scene's)", &spp},
        {"repeat", 0, OPT_INT, "R", 1, 100, "render R times and report the best (default 1)", &repeat},
        {"output", 'o', OPT_STR, "FILE", 0, 0, "also write the frame as PNG", &png_path},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "bench_raytrace",
                          "SCENE.json [OPTIONS]", "Renders a raytrace scene on one thread and reports the time.", &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1) {
        fprintf(stderr, "bench_raytrace: expected one SCENE.json\n");
        return 2;
    }
    size_t len;
    char *json = slurp(argv[pos], &len);
    if (!json) {
        fprintf(stderr, "bench_raytrace: cannot read %s: %s\n", argv[pos], strerror(errno));
        return 1;
    }
    if (w || h) {
        size_t nl;
        char *j2 = with_size(json, len, w, h, &nl);
        if (!j2) {
            fprintf(stderr, "bench_raytrace: %s: not a JSON object\n", argv[pos]);
            return 1;
        }
        free(json);
        json = j2;
        len = nl;
    }
    char err[256];
    struct rt_scene *s = NULL;
    double t0 = now_s();
    if (rt_scene_parse(json, len, NULL, 0, &s, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_raytrace: %s: %s\n", argv[pos], err);
        return 1;
    }
    double parse_s = now_s() - t0;
    struct rt_scene_info si;
    rt_scene_get_info(s, &si);
    uint32_t n = spp ? (uint32_t)spp : si.spp;
    size_t stride = (size_t)si.width * 4;
    uint8_t *px = malloc(stride * si.height);
    if (!px) {
        fprintf(stderr, "bench_raytrace: out of memory\n");
        return 1;
    }
    struct rt_tile t = {0, 0, si.width, si.height};
    double best = 1e300;
    for (int64_t r = 0; r < repeat; r++) {
        double a = now_s();
        if (rt_render_tile(s, &t, n, px, stride, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_raytrace: %s\n", err);
            return 1;
        }
        double d = now_s() - a;
        best = d < best ? d : best;
    }
    double samples = (double)si.width * si.height * n;
    printf("%s: %ux%u, %u spp, %u primitives (%u BVH nodes, depth %u)\n", argv[pos], si.width, si.height, n,
           si.nprims, si.bvh_nodes, si.bvh_depth);
    printf("decode + BVH %.3f ms; render %.3f s on one thread (best of %lld); %.2f M samples/s\n",
           parse_s * 1e3, best, (long long)repeat, samples / best / 1e6);
    printf("{\"bench\":\"raytrace_local\",\"scene\":\"%s\",\"width\":%u,\"height\":%u,\"spp\":%u,\"threads\":1,"
           "\"decode_ms\":%.3f,\"render_s\":%.6f,\"msamples_per_s\":%.3f}\n",
           argv[pos], si.width, si.height, n, parse_s * 1e3, best, samples / best / 1e6);
    if (png_path) {
        uint8_t *png;
        size_t pl;
        FILE *f = NULL;
        if (rt_png_encode(px, si.width, si.height, stride, &png, &pl) != 0 || !(f = fopen(png_path, "wb")) ||
            fwrite(png, 1, pl, f) != pl) {
            fprintf(stderr, "bench_raytrace: cannot write %s\n", png_path);
            return 1;
        }
        fclose(f);
        free(png);
    }
    free(px);
    free(json);
    rt_scene_free(s);
    return 0;
}
