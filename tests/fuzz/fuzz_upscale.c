/* fuzz_upscale.c - libFuzzer target for the upscale executor's decoders and
 * parameters (src/tasks/imageio.c, src/tasks/upscale.c), with the resampler
 * run on whatever decodes.
 *
 * Input: one selector byte (modulo 4), then
 *   0  a PNG, decoded under small limits (1024 a side, 1 Mpixel)
 *   1  a JPEG, likewise
 *   2  any bytes through imageio_decode (sniffing), then resampled to a small
 *      size picked from the last bytes, with every filter
 *   3  "params\0input": the executor's check and run, as a peer calls them,
 *      skipped when the output would be over 256x256 (the real limits allow
 *      64 Mpixel, which only makes the fuzzer slow)
 * Decoders must return 0 or EINVAL (ENOMEM only if memory ran out) and leave
 * nothing allocated; ASan and UBSan report the rest.
 *
 * The seed corpus (tests/fuzz/corpus/fuzz_upscale) is made by
 * tests/tasks/upscale/gen_fuzz_corpus.py: small PNGs of every colour type
 * (interlaced, 16-bit, palette, transparency), JPEGs (baseline,
 * progressive, grey) and raw-pixel parameter blocks. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"
#include "tasks/imageio.h"
#include "tasks/upscale.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct image_limits fuzz_limits = {1024, 1 << 20};

static void check_rc(int rc)
{
    if (rc != 0 && rc != P2C2R_EINVAL && rc != P2C2R_ENOMEM && rc != P2C2R_ETOOBIG)
        abort();
}

static void resample_small(const struct image *im, const uint8_t *data, size_t size)
{
    uint32_t dw = 1 + (size > 1 ? data[size - 1] % 64 : 3), dh = 1 + (size > 2 ? data[size - 2] % 64 : 5);
    uint8_t *out = malloc((size_t)dw * dh * im->channels);
    if (!out)
        return;
    for (int f = 0; f < RESAMPLE_FILTER_COUNT; f++)
        check_rc(resample_image(im->px, im->width, im->height, out, dw, dh, im->channels, (enum resample_filter)f));
    free(out);
}

struct sink {
    uint8_t *p;
};

static void *fuzz_alloc(struct p2c2r_exec_call *c, size_t n)
{
    struct sink *s = c->opaque;
    if (s->p || n > (64u << 20))
        return NULL;
    s->p = malloc(n ? n : 1);
    return s->p;
}

static void run_executor(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    if (!nul)
        return;
    const char *params = (const char *)data;
    size_t plen = (size_t)(nul - data);
    const uint8_t *in = nul + 1;
    size_t in_len = size - plen - 1;
    struct upscale_params p;
    char err[256];
    if (upscale_params_parse(params, plen, &p, err, sizeof(err)) != 0)
        return;
    uint32_t w = p.in_width, h = p.in_height, ch, ow, oh;
    if (!w && imageio_probe(in, in_len, &w, &h, &ch) != 0)
        return;
    if (!w || upscale_output_size(&p, w, h, &ow, &oh, err, sizeof(err)) != 0 || (uint64_t)ow * oh > 256 * 256)
        return;
    /* Keep decodes small too: a header may claim far more than the bytes. */
    if ((uint64_t)w * h > (1u << 20))
        return;
    struct sink s = {NULL};
    struct p2c2r_exec_call c = {in, in_len, params, plen, fuzz_alloc, &s, err, sizeof(err), NULL, 0};
    int rc = exec_upscale.check(&c);
    check_rc(rc);
    if (rc == 0)
        check_rc(exec_upscale.run(&c));
    free(s.p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    unsigned sel = data[0] % 4;
    data++;
    size--;
    struct image im = {0};
    char err[256];
    switch (sel) {
    case 0:
        check_rc(imageio_decode_png(data, size, &fuzz_limits, &im, err, sizeof(err)));
        break;
    case 1:
        check_rc(imageio_decode_jpeg(data, size, &fuzz_limits, &im, err, sizeof(err)));
        break;
    case 2:
        check_rc(imageio_decode(data, size, &fuzz_limits, &im, err, sizeof(err)));
        if (im.px)
            resample_small(&im, data, size);
        break;
    default:
        run_executor(data, size);
        break;
    }
    image_fini(&im);
    return 0;
}
