/* test_upscale_cli.c - `p2c2r upscale` (src/cli/cmd_upscale.c) end to end.
 *
 * Runs the command (built into upscale_cli_driver) as a child process:
 * --local, --json, usage errors (exit 2), unreadable and corrupt input
 * (exit 1 with a reason), then against a real coordinator with one local
 * peer (p2c2rd --listen 127.0.0.1:0 --local-peers 1 --ready-file), where the
 * fabric's output must be byte-identical to the local run's.
 *
 * argv: p2c2rd p2c2r-peer upscale_cli_driver.  Runs on the integration
 * harness (tests/integration/harness.h): every child is bounded in time, the
 * daemon is stopped with SIGTERM and must exit cleanly, and its log is
 * printed when a check fails. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "p2c2r/error.h"
#include "tasks/upscale.h"

/* Whether the last run's stdout has every one of the NULL-terminated strings. */
static int out_has_all(const char *first, ...) __attribute__((sentinel));
static int out_has_all(const char *first, ...)
{
    int ok = 1;
    va_list ap;
    va_start(ap, first);
    for (const char *s = first; s; s = va_arg(ap, const char *))
        ok = ok && h_out_has(s);
    va_end(ap);
    return ok;
}

static void make_input(const char *png_path, const char *raw_path)
{
    struct image im;
    H_REQUIRE(image_init(&im, 48, 27, 3, NULL) == 0, "image_init");
    for (uint32_t i = 0; i < 48 * 27 * 3; i++)
        im.px[i] = (uint8_t)(i * 7 + (i / 144) * 13);
    uint8_t *png;
    size_t len;
    char err[256];
    H_REQUIRE(imageio_encode_png(&im, 6, &png, &len, err, sizeof(err)) == 0, "encode the input PNG: %s", err);
    H_REQUIRE(h_write_file(png_path, png, len) == 0, "write %s", png_path);
    H_REQUIRE(h_write_file(raw_path, im.px, 48 * 27 * 3) == 0, "write %s", raw_path);
    free(png);
    image_fini(&im);
}

/* The pixels our resampler gives for the test input. */
static uint8_t *expected(uint32_t dw, uint32_t dh, enum resample_filter f, const char *raw_path)
{
    uint8_t *out = malloc((size_t)dw * dh * 3);
    char *src = h_read_file(raw_path, NULL);
    if (out && src)
        resample_image((const uint8_t *)src, 48, 27, out, dw, dh, 3, f);
    free(src);
    return out;
}

static int decoded_equals(const char *p, const uint8_t *want, uint32_t w, uint32_t h)
{
    size_t n;
    char *data = h_read_file(p, &n);
    struct image im = {0};
    char err[256];
    if (!data)
        return 0;
    int ok = imageio_decode((const uint8_t *)data, n, NULL, &im, err, sizeof(err)) == 0 && im.width == w &&
             im.height == h && im.channels == 3 && memcmp(im.px, want, (size_t)w * h * 3) == 0;
    image_fini(&im);
    free(data);
    return ok;
}

/* Whether file p holds exactly the n bytes at want. */
static int file_is(const char *p, const void *want, size_t n)
{
    size_t len;
    char *got = h_read_file(p, &len);
    int ok = got && len == n && memcmp(got, want, n) == 0;
    free(got);
    return ok;
}

/* Checks the last --json run: status, output size and where it ran. */
static void check_json(const char *status, long long out_width, long long out_height, const char *format,
                       int local)
{
    json_t *j = h_out_json();
    H_CHECK(h_json_str_is(j, "status", status), "--json: status should be %s: %s", status, h_last()->out);
    if (out_width >= 0)
        H_CHECK(h_json_int(j, "out_width") == out_width, "--json: out_width %lld: %s", out_width, h_last()->out);
    if (out_height >= 0)
        H_CHECK(h_json_int(j, "out_height") == out_height, "--json: out_height %lld: %s", out_height,
                h_last()->out);
    if (format)
        H_CHECK(h_json_str_is(j, "format", format), "--json: format %s: %s", format, h_last()->out);
    if (local >= 0)
        H_CHECK(h_json_bool(j, "local") == local, "--json: local %d: %s", local, h_last()->out);
    json_decref(j);
}

static void test_local(const char *in_png, const char *in_raw)
{
    h_phase("p2c2r upscale: --local");
    char outp[300], outraw[300];
    h_path(outp, sizeof(outp), "local.png");
    h_path(outraw, sizeof(outraw), "local.raw");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "--filter", "lanczos3", "--local", NULL), 0, "local png");
    H_CHECK(out_has_all("48x27 png", "96x54 png", "lanczos3", "locally", NULL), "local png: %s", h_last()->out);
    uint8_t *want = expected(96, 54, RESAMPLE_LANCZOS3, in_raw);
    H_CHECK(decoded_equals(outp, want, 96, 54), "local png: not our resampler's 96x54 lanczos3 pixels");
    free(want);

    /* Raw in, raw out, JSON summary. */
    H_EXPECT_EXIT(h_cli(in_raw, outraw, "--in-width", "48", "--in-height", "27", "--in-channels", "3", "--width",
                        "100", "--filter", "bilinear", "--local", "--json", NULL),
                  0, "local raw json");
    check_json("ok", 100, 56, "raw", 1);
    want = expected(100, 56, RESAMPLE_BILINEAR, in_raw);
    H_CHECK(file_is(outraw, want, 100 * 56 * 3), "local raw: not our resampler's 100x56 bilinear pixels");
    free(want);

    /* JPEG by extension. */
    char outj[300];
    h_path(outj, sizeof(outj), "local.jpg");
    H_EXPECT_EXIT(h_cli(in_png, outj, "--height", "54", "--quality", "70", "--local", NULL), 0, "local jpeg");
    size_t n;
    char *got = h_read_file(outj, &n);
    H_CHECK(got && imageio_sniff((const uint8_t *)got, n) == IMAGEIO_JPEG, "local.jpg is not a JPEG");
    free(got);
}

static void test_errors(const char *in_png, const char *in_raw)
{
    h_phase("p2c2r upscale: usage errors and bad input");
    char outp[300], bad[300];
    h_path(outp, sizeof(outp), "err.png");
    h_path(bad, sizeof(bad), "corrupt.png");
    /* Usage errors: exit 2 with a message. */
    H_EXPECT_EXIT(h_cli(NULL, NULL), 2, "no arguments"); /* the first NULL ends the list */
    H_EXPECT_EXIT(h_cli(in_png, NULL), 2, "no output");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "--width", "9", "--local", NULL), 2, "scale and width");
    H_CHECK_ERR("not both");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "--filter", "sinc", "--local", NULL), 2, "bad filter");
    H_CHECK_ERR("filter");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--local", NULL), 2, "no size");
    H_EXPECT_EXIT(h_cli(in_raw, outp, "--scale", "2", "--local", NULL), 2, "raw without its size");
    H_CHECK_ERR("--in-width");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "--quality", "0", NULL), 2, "quality 0");
    H_EXPECT_EXIT(h_cli("--help", NULL), 0, "--help");
    H_CHECK_OUT("Usage:");
    /* Runtime failures: exit 1 with the reason. */
    H_EXPECT_EXIT(h_cli("/nonexistent/in.png", outp, "--scale", "2", "--local", NULL), 1, "missing input");
    H_CHECK_ERR("cannot read");
    size_t n;
    char *png = h_read_file(in_png, &n);
    if (H_CHECK(png != NULL, "cannot read %s", in_png)) {
        H_CHECK(h_write_file(bad, png, n / 2) == 0, "write %s", bad);
        free(png);
    }
    H_EXPECT_EXIT(h_cli(bad, outp, "--scale", "2", "--local", NULL), 1, "corrupt input");
    H_CHECK_ERR("PNG");
    H_EXPECT_EXIT(h_cli(bad, outp, "--scale", "2", "--local", "--json", NULL), 1, "corrupt input json");
    check_json("EINVAL", -1, -1, NULL, -1);
    json_t *j = h_out_json();
    H_CHECK(h_json_at(j, "error") != NULL, "corrupt input --json should carry the error: %s", h_last()->out);
    json_decref(j);
    H_EXPECT_EXIT(h_cli(in_raw, outp, "--in-width", "48", "--in-height", "28", "--in-channels", "3", "--scale",
                        "2", "--local", NULL),
                  1, "raw input of the wrong size");
    H_CHECK_ERR("raw input");
    /* No coordinator listening. */
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "-c", "127.0.0.1:1", NULL), 1, "no coordinator");
    H_CHECK_ERR("cannot connect");
}

static void test_fabric(const char *in_png, const char *in_raw)
{
    h_phase("p2c2r upscale: through p2c2rd with one local peer");
    const char *cargs[] = {"--local-peers", "1", "--log-level", "warn", NULL};
    struct h_proc *coord = h_coord_start(NULL, cargs);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    char outp[300], outl[300], outraw[300], bad[300];
    h_path(outp, sizeof(outp), "fabric.png");
    h_path(outl, sizeof(outl), "local.png"); /* from test_local: same params */
    h_path(outraw, sizeof(outraw), "fabric.raw");
    h_path(bad, sizeof(bad), "corrupt.png");
    H_EXPECT_EXIT(h_cli(in_png, outp, "--scale", "2", "--filter", "lanczos3", "-c", addr, NULL), 0, "fabric run");
    H_CHECK(out_has_all("96x54 png", "on peer", NULL), "fabric run: %s", h_last()->out);
    /* The fabric's bytes are the local run's bytes. */
    size_t ln;
    char *l = h_read_file(outl, &ln);
    if (H_CHECK(l != NULL, "cannot read %s", outl))
        H_CHECK(file_is(outp, l, ln), "the fabric's PNG differs from the local run's");
    free(l);

    H_EXPECT_EXIT(h_cli(in_raw, outraw, "--in-width", "48", "--in-height", "27", "--in-channels", "3", "--scale",
                        "1.5", "--filter", "bicubic", "-c", addr, "--json", NULL),
                  0, "fabric raw json");
    check_json("ok", 72, -1, NULL, 0);
    uint8_t *want = expected(72, 41, RESAMPLE_BICUBIC, in_raw);
    H_CHECK(file_is(outraw, want, 72 * 41 * 3), "fabric raw: not our resampler's 72x41 bicubic pixels");
    free(want);

    /* A corrupt input fails on the peer with the executor's reason. */
    H_EXPECT_EXIT(h_cli(bad, outp, "--scale", "2", "-c", addr, NULL), 1, "fabric corrupt input");
    H_CHECK_ERR("PNG");
    H_EXPECT_EXIT(h_cli(bad, outp, "--scale", "2", "-c", addr, "--json", NULL), 1, "fabric corrupt input json");
    check_json("EINVAL", -1, -1, NULL, -1);

    h_stop(coord);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "upscale_cli");
    H_REQUIRE(h_cli_bin(), "usage: %s P2C2RD P2C2R-PEER UPSCALE_CLI_DRIVER", argv[0]);
    char in_png[300], in_raw[300];
    h_path(in_png, sizeof(in_png), "in.png");
    h_path(in_raw, sizeof(in_raw), "in.rgb");
    make_input(in_png, in_raw);
    test_local(in_png, in_raw);
    test_errors(in_png, in_raw);
    test_fabric(in_png, in_raw);
    return h_finish();
}
