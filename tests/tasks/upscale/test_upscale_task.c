/* test_upscale_task.c - the upscale task (src/tasks/upscale.c): parameter
 * parsing, output sizes, the whole decode -> resample -> encode pipeline, and
 * the executor entry (check and run through a fake peer's alloc_output).
 * Every bad parameter and bad input must give EINVAL with a reason; an
 * output the peer cannot hold gives ETOOBIG. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p2c2r/error.h"
#include "tasks/upscale.h"

static int parse(const char *s, struct upscale_params *p, char *err, size_t cap)
{
    return upscale_params_parse(s, strlen(s), p, err, cap);
}

static void test_params(void)
{
    struct upscale_params p;
    char err[256];
    CHECK_EQ(parse("scale=2\n", &p, err, sizeof(err)), 0);
    CHECK(p.filter == RESAMPLE_BICUBIC && p.scale_num == 2 && p.scale_den == 1 && !p.has_format);
    CHECK(p.quality == 90 && p.compression == 6 && p.in_width == 0 && p.in_channels == 4);
    CHECK_EQ(parse("filter=lanczos3\nwidth=640\nheight=360\nformat=jpeg\nquality=75", &p, err, sizeof(err)), 0);
    CHECK(p.filter == RESAMPLE_LANCZOS3 && p.width == 640 && p.height == 360 && p.has_format &&
          p.format == IMAGEIO_JPEG && p.quality == 75);
    CHECK_EQ(parse("scale=1.5\nfilter=nearest\n\nin_width=4\nin_height=3\nin_channels=3\ncompression=0\n", &p,
                   err, sizeof(err)),
             0);
    CHECK(p.scale_num == 15 && p.scale_den == 10 && p.filter == RESAMPLE_NEAREST && p.in_width == 4 &&
          p.in_height == 3 && p.in_channels == 3 && p.compression == 0);
    CHECK_EQ(parse("scale=.25\nfilter=bilinear", &p, err, sizeof(err)), 0);
    CHECK(p.scale_num == 25 && p.scale_den == 100 && p.filter == RESAMPLE_BILINEAR);
    CHECK_EQ(parse("height=10\nfilter=lanczos", &p, err, sizeof(err)), 0);
    CHECK(p.height == 10 && p.width == 0 && p.filter == RESAMPLE_LANCZOS3);
    CHECK_EQ(upscale_params_parse("scale=2\nwidth=9", 7, &p, err, sizeof(err)), 0); /* len is honoured */

    static const char *const bad[] = {
        "",
        "filter=bicubic",
        "scale=2\nwidth=10",
        "scale=0",
        "scale=0.0",
        "scale=-1",
        "scale=abc",
        "scale=1.2345678",
        "scale=65",
        "scale=2..",
        "scale=.",
        "scale=",
        "width=0",
        "width=16385",
        "width=+5",
        "width= 5",
        "width=5x",
        "width=99999999999",
        "scale=2\nfilter=cubic",
        "scale=2\nformat=gif",
        "scale=2\nquality=0",
        "scale=2\nquality=101",
        "scale=2\ncompression=10",
        "scale=2\nscale=3",
        "scale=2\nwidht=3",
        "scale=2\nnoequals",
        "scale=2\nin_width=10",
        "scale=2\nin_height=10",
        "scale=2\nin_channels=3",
        "scale=2\nin_width=2\nin_height=2\nin_channels=2",
        "scale=2\nin_width=2\nin_height=2\nin_channels=5",
        "scale=2\n=3",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        int rc = parse(bad[i], &p, err, sizeof(err));
        if (!CHECK(rc == P2C2R_EINVAL && err[0] != '\0'))
            fprintf(stderr, "  params '%s' gave %d '%s'\n", bad[i], rc, err);
    }
    parse("scale=2\nwidht=3", &p, err, sizeof(err));
    CHECK(strstr(err, "widht") != NULL);
    parse("scale=2\nfilter=cubic", &p, err, sizeof(err));
    CHECK(strstr(err, "lanczos3") != NULL);
}

static void test_output_size(void)
{
    struct upscale_params p;
    char err[256];
    uint32_t w, h;
    CHECK_EQ(parse("scale=2", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 37, 23, &w, &h, err, sizeof(err)) == 0 && w == 74 && h == 46);
    CHECK_EQ(parse("scale=1.5", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 37, 23, &w, &h, err, sizeof(err)) == 0 && w == 56 && h == 35); /* halves up */
    CHECK_EQ(parse("scale=0.37", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 37, 23, &w, &h, err, sizeof(err)) == 0 && w == 14 && h == 9);
    CHECK_EQ(parse("scale=0.000001", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 37, 23, &w, &h, err, sizeof(err)) == 0 && w == 1 && h == 1);
    CHECK_EQ(parse("width=33", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 100, 50, &w, &h, err, sizeof(err)) == 0 && w == 33 && h == 17);
    CHECK_EQ(parse("height=25", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 100, 50, &w, &h, err, sizeof(err)) == 0 && w == 50 && h == 25);
    CHECK_EQ(parse("width=7\nheight=900", &p, err, sizeof(err)), 0);
    CHECK(upscale_output_size(&p, 100, 50, &w, &h, err, sizeof(err)) == 0 && w == 7 && h == 900);
    CHECK_EQ(parse("scale=2", &p, err, sizeof(err)), 0);
    CHECK_EQ(upscale_output_size(&p, 10000, 10000, &w, &h, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "over the limit") != NULL);
    CHECK_EQ(upscale_output_size(&p, 8192, 4096, &w, &h, err, sizeof(err)), P2C2R_EINVAL); /* 64M x 4 */
    CHECK_EQ(upscale_output_size(&p, 8192, 2048, &w, &h, err, sizeof(err)), 0);          /* 64M exactly */
    CHECK_EQ(parse("height=16384", &p, err, sizeof(err)), 0);
    CHECK_EQ(upscale_output_size(&p, 16384, 1, &w, &h, err, sizeof(err)), P2C2R_EINVAL); /* width 268M */
}

/* ---- pipeline ---------------------------------------------------------------- */

struct sink {
    uint8_t *p;
    size_t n, limit;
    int calls;
};

static void *sink_alloc(void *opaque, size_t n)
{
    struct sink *s = opaque;
    s->calls++;
    if (n > s->limit)
        return NULL;
    s->p = malloc(n ? n : 1);
    s->n = n;
    return s->p;
}

static void make_rgb(uint8_t *px, uint32_t w, uint32_t h, uint32_t ch)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++)
                px[((size_t)y * w + x) * ch + c] = (uint8_t)(x * 9 + y * 5 + c * 70 + ((x ^ y) & 8) * 8);
}

static int process(const char *params, const uint8_t *in, size_t len, struct sink *s, struct upscale_info *info,
                   char *err, size_t cap)
{
    struct upscale_params p;
    int rc = parse(params, &p, err, cap);
    if (rc != 0)
        return rc;
    return upscale_process(&p, in, len, sink_alloc, s, info, err, cap);
}

static void test_process(void)
{
    enum { W = 31, H = 17 };
    uint8_t rgb[W * H * 3], rgba[W * H * 4];
    make_rgb(rgb, W, H, 3);
    make_rgb(rgba, W, H, 4);
    char err[256];
    struct upscale_info info;

    /* raw -> raw is exactly resample_image. */
    for (int f = 0; f < RESAMPLE_FILTER_COUNT; f++) {
        char params[200];
        snprintf(params, sizeof(params), "in_width=%d\nin_height=%d\nin_channels=3\nwidth=70\nheight=29\nfilter=%s",
                 W, H, resample_filter_name((enum resample_filter)f));
        struct sink s = {NULL, 0, SIZE_MAX, 0};
        CHECK_EQ(process(params, rgb, sizeof(rgb), &s, &info, err, sizeof(err)), 0);
        uint8_t *want = malloc(70 * 29 * 3);
        CHECK_EQ(resample_image(rgb, W, H, want, 70, 29, 3, (enum resample_filter)f), 0);
        CHECK_MEM(s.p, s.n, want, (size_t)70 * 29 * 3);
        CHECK(s.calls == 1 && info.out_width == 70 && info.out_height == 29 && info.channels == 3 &&
              info.in_format == IMAGEIO_RAW && info.out_format == IMAGEIO_RAW);
        free(want);
        free(s.p);
    }

    /* raw RGBA -> png -> decoded equals the raw result. */
    char params[200];
    snprintf(params, sizeof(params), "in_width=%d\nin_height=%d\nscale=2.5\nfilter=lanczos3\nformat=png", W, H);
    struct sink s = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(process(params, rgba, sizeof(rgba), &s, &info, err, sizeof(err)), 0);
    CHECK(info.out_width == 78 && info.out_height == 43 && info.channels == 4 && info.out_format == IMAGEIO_PNG);
    struct image dec = {0};
    uint8_t *want = malloc(78 * 43 * 4);
    CHECK_EQ(resample_image(rgba, W, H, want, 78, 43, 4, RESAMPLE_LANCZOS3), 0);
    if (CHECK(imageio_decode(s.p, s.n, NULL, &dec, err, sizeof(err)) == 0))
        CHECK_MEM(dec.px, (size_t)78 * 43 * 4, want, (size_t)78 * 43 * 4);
    image_fini(&dec);

    /* png in -> default format is png, same pixels again; then jpeg out. */
    uint8_t *png = s.p;
    size_t png_len = s.n;
    struct sink s2 = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(process("scale=1\nfilter=bicubic", png, png_len, &s2, &info, err, sizeof(err)), 0);
    CHECK(info.in_format == IMAGEIO_PNG && info.out_format == IMAGEIO_PNG && info.out_width == 78);
    if (CHECK(imageio_decode(s2.p, s2.n, NULL, &dec, err, sizeof(err)) == 0))
        CHECK_MEM(dec.px, (size_t)78 * 43 * 4, want, (size_t)78 * 43 * 4);
    image_fini(&dec);
    free(s2.p);
    struct sink s3 = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(process("width=39\nformat=jpeg\nquality=80", png, png_len, &s3, &info, err, sizeof(err)), 0);
    CHECK(info.out_width == 39 && info.out_height == 22 && info.out_format == IMAGEIO_JPEG);
    if (CHECK(imageio_decode(s3.p, s3.n, NULL, &dec, err, sizeof(err)) == 0))
        CHECK(dec.width == 39 && dec.height == 22 && dec.channels == 3);
    image_fini(&dec);
    /* jpeg in -> jpeg out by default. */
    struct sink s4 = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(process("scale=2", s3.p, s3.n, &s4, &info, err, sizeof(err)), 0);
    CHECK(info.in_format == IMAGEIO_JPEG && info.out_format == IMAGEIO_JPEG && info.out_width == 78);
    free(s4.p);
    free(s3.p);
    free(want);

    /* Errors. */
    struct sink e = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(process("in_width=31\nin_height=17\nin_channels=3\nscale=2", rgb, sizeof(rgb) - 1, &e, NULL, err,
                     sizeof(err)),
             P2C2R_EINVAL);
    CHECK(strstr(err, "raw input") != NULL && e.calls == 0);
    CHECK_EQ(process("in_width=31\nin_height=17\nscale=2", rgb, sizeof(rgb), &e, NULL, err, sizeof(err)),
             P2C2R_EINVAL); /* 4 channels by default: wrong size */
    CHECK_EQ(process("scale=2", rgb, sizeof(rgb), &e, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "neither PNG nor JPEG") != NULL);
    CHECK_EQ(process("scale=2", png, png_len / 2, &e, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "PNG") != NULL);
    CHECK_EQ(process("width=16000\nheight=16000", png, png_len, &e, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "over the limit") != NULL);
    CHECK_EQ(e.calls, 0); /* every error so far came before the output was allocated */
    /* A reduction that would need over RESAMPLE_SCRATCH_MAX of window rows
     * (every one of 16384 rows for one output row 16384 wide) is refused. */
    uint8_t *tall = calloc((size_t)4 * 16384 * 4, 1);
    if (CHECK(tall != NULL)) {
        CHECK_EQ(process("in_width=4\nin_height=16384\nwidth=16384\nheight=1\nfilter=lanczos3", tall,
                         (size_t)4 * 16384 * 4, &e, NULL, err, sizeof(err)),
                 P2C2R_EINVAL);
        CHECK(strstr(err, "scratch") != NULL);
        free(e.p);
        e.p = NULL;
        free(tall);
    }
    /* The peer refuses the output size: ETOOBIG, for raw and for png. */
    struct sink small = {NULL, 0, 100, 0};
    CHECK_EQ(process("in_width=31\nin_height=17\nin_channels=3\nscale=2", rgb, sizeof(rgb), &small, NULL, err,
                     sizeof(err)),
             P2C2R_ETOOBIG);
    CHECK(strstr(err, "over the output limit") != NULL && small.calls == 1 && small.p == NULL);
    small.calls = 0;
    CHECK_EQ(process("scale=2\nformat=png", png, png_len, &small, NULL, err, sizeof(err)), P2C2R_ETOOBIG);
    CHECK(small.calls == 1);
    free(png);
}

/* ---- the executor entry ------------------------------------------------------ */

struct fake_peer {
    uint8_t *out;
    size_t n, limit;
    int calls;
};

static void *peer_alloc(struct p2c2r_exec_call *c, size_t n)
{
    struct fake_peer *fp = c->opaque;
    fp->calls++;
    if (fp->calls > 1 || n > fp->limit)
        return NULL;
    fp->out = malloc(n ? n : 1);
    fp->n = n;
    return fp->out;
}

static int exec_call(const char *params, const uint8_t *in, size_t len, struct fake_peer *fp, char *err,
                     size_t cap, int *check_rc)
{
    struct p2c2r_exec_call c = {in, len, params, strlen(params), peer_alloc, fp, err, cap, NULL, 0};
    err[0] = '\0';
    *check_rc = exec_upscale.check(&c);
    return exec_upscale.run(&c);
}

static void test_executor(void)
{
    CHECK(strcmp(exec_upscale.name, "upscale") == 0);
    CHECK(exec_upscale.version == 1 && exec_upscale.flags == P2C2R_EXEC_DETERMINISTIC && exec_upscale.check && exec_upscale.run);
    CHECK(exec_upscale.max_input >= (size_t)IMAGE_MAX_PIXELS * 4);

    uint8_t rgb[8 * 6 * 3];
    make_rgb(rgb, 8, 6, 3);
    char err[256];
    int crc;
    struct fake_peer fp = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(exec_call("in_width=8\nin_height=6\nin_channels=3\nscale=3\nfilter=bilinear\n", rgb, sizeof(rgb), &fp,
                       err, sizeof(err), &crc),
             0);
    CHECK_EQ(crc, 0);
    CHECK(fp.calls == 1 && fp.n == 24 * 18 * 3);
    uint8_t want[24 * 18 * 3];
    CHECK_EQ(resample_image(rgb, 8, 6, want, 24, 18, 3, RESAMPLE_BILINEAR), 0);
    CHECK_MEM(fp.out, fp.n, want, sizeof(want));
    free(fp.out);

    /* PNG in, PNG out, through check and run. */
    struct image im = {rgb, 8, 6, 3};
    uint8_t *png;
    size_t plen;
    CHECK_EQ(imageio_encode_png(&im, 6, &png, &plen, err, sizeof(err)), 0);
    struct fake_peer fp2 = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(exec_call("scale=3\nfilter=bilinear", png, plen, &fp2, err, sizeof(err), &crc), 0);
    CHECK_EQ(crc, 0);
    struct image dec = {0};
    if (CHECK(imageio_decode(fp2.out, fp2.n, NULL, &dec, err, sizeof(err)) == 0))
        CHECK_MEM(dec.px, (size_t)24 * 18 * 3, want, sizeof(want));
    image_fini(&dec);
    free(fp2.out);

    /* check refuses early what run would refuse, with the same kind of reason. */
    struct {
        const char *params;
        const uint8_t *in;
        size_t len;
        int run_rc;
        const char *in_err;
    } cases[] = {
        {"scale=2\nfilter=sinc", png, plen, P2C2R_EINVAL, "filter"},
        {"in_width=8\nin_height=6\nin_channels=3\nscale=2", rgb, sizeof(rgb) - 3, P2C2R_EINVAL, "raw input"},
        {"in_width=8\nin_height=6\nscale=2", rgb, sizeof(rgb), P2C2R_EINVAL, "raw input"},
        {"scale=2", rgb, sizeof(rgb), P2C2R_EINVAL, "PNG"},
        {"scale=2", png, 20, P2C2R_EINVAL, "PNG"},
        {"width=16384\nheight=16384", png, plen, P2C2R_EINVAL, "over the limit"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct fake_peer f = {NULL, 0, SIZE_MAX, 0};
        int rrc = exec_call(cases[i].params, cases[i].in, cases[i].len, &f, err, sizeof(err), &crc);
        if (!CHECK(rrc == cases[i].run_rc && strstr(err, cases[i].in_err) != NULL))
            fprintf(stderr, "  case %zu: run %d err '%s'\n", i, rrc, err);
        /* check may pass what only decoding finds (a PNG cut after its header). */
        CHECK(crc == P2C2R_EINVAL || (crc == 0 && i == 4));
        CHECK(f.out == NULL);
    }
    /* A truncated PNG whose header is intact: check passes, run refuses. */
    struct fake_peer f = {NULL, 0, SIZE_MAX, 0};
    CHECK_EQ(exec_call("scale=2", png, plen - 20, &f, err, sizeof(err), &crc), P2C2R_EINVAL);
    CHECK(crc == 0 && f.calls == 0 && strstr(err, "PNG") != NULL);
    /* Output over the peer's limit. */
    struct fake_peer tiny = {NULL, 0, 50, 0};
    CHECK_EQ(exec_call("scale=2\nformat=raw", png, plen, &tiny, err, sizeof(err), &crc), P2C2R_ETOOBIG);
    CHECK(crc == 0 && tiny.out == NULL);
    free(png);
}

int main(void)
{
    test_params();
    test_output_size();
    test_process();
    test_executor();
    return check_report("test_upscale_task");
}
