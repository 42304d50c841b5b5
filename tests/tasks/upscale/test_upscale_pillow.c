/* test_upscale_pillow.c - compares our decoders and resampler with Pillow.
 *
 * Reads the manifest that upscale_pillow.py wrote (run that script, not this
 * program, from ctest) with lines
 *     resize INPUT EXPECTED FILTER WIDTH HEIGHT
 *     decode INPUT EXPECTED
 * and for each decodes INPUT with imageio, resizes it with resample_image
 * when asked, decodes Pillow's EXPECTED PNG and compares channel values.
 * A resize passes when at least 99.9% of its channel values are within 1 of
 * Pillow's; a decode when every value is within 1.  Prints per-filter
 * agreement (exact and within 1) and the worst difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p2c2r/error.h"
#include "tasks/imageio.h"
#include "tasks/upscale_resample.h"

struct stats {
    unsigned long long values, exact, within1;
    int maxdiff, cases;
};

static int read_file(const char *path, uint8_t **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (!b)
            break;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (!b)
        return -1;
    *out = b;
    *len = n;
    return 0;
}

static int decode_path(const char *path, struct image *im)
{
    uint8_t *data;
    size_t len;
    char err[256] = "";
    if (read_file(path, &data, &len) != 0) {
        fprintf(stderr, "cannot read %s\n", path);
        return -1;
    }
    int rc = imageio_decode(data, len, NULL, im, err, sizeof(err));
    free(data);
    if (rc != 0)
        fprintf(stderr, "%s: %s (%s)\n", path, err, p2c2r_errname(rc));
    return rc;
}

/* Compares n values; returns the share within 1 and updates st. */
static double compare(const uint8_t *a, const uint8_t *b, size_t n, struct stats *st, int *maxd)
{
    size_t within = 0;
    *maxd = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d == 0)
            st->exact++;
        if (d <= 1)
            within++;
        if (d > *maxd)
            *maxd = d;
    }
    st->values += n;
    st->within1 += within;
    if (*maxd > st->maxdiff)
        st->maxdiff = *maxd;
    st->cases++;
    return n ? (double)within / (double)n : 1.0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s MANIFEST (run through upscale_pillow.py)\n", argv[0]);
        return 2;
    }
    FILE *m = fopen(argv[1], "r");
    if (!CHECK(m != NULL))
        return check_report("test_upscale_pillow");
    struct stats per[RESAMPLE_FILTER_COUNT], dec;
    memset(per, 0, sizeof(per));
    memset(&dec, 0, sizeof(dec));
    char line[4096];
    int bad_cases = 0;
    while (fgets(line, sizeof(line), m)) {
        char kind[16], in[1024], exp[1024], fname[32];
        unsigned w = 0, h = 0;
        int nf = sscanf(line, "%15s %1023s %1023s %31s %u %u", kind, in, exp, fname, &w, &h);
        if (nf < 3)
            continue;
        struct image src = {0}, want = {0};
        if (!CHECK(decode_path(in, &src) == 0) || !CHECK(decode_path(exp, &want) == 0)) {
            image_fini(&src);
            image_fini(&want);
            continue;
        }
        if (strcmp(kind, "decode") == 0) {
            int maxd;
            if (CHECK(src.width == want.width && src.height == want.height && src.channels == want.channels)) {
                compare(src.px, want.px, (size_t)src.width * src.height * src.channels, &dec, &maxd);
                if (!CHECK(maxd <= 1))
                    fprintf(stderr, "decode %s: differs from Pillow by up to %d\n", in, maxd);
            } else {
                fprintf(stderr, "decode %s: %ux%ux%u, Pillow %ux%ux%u\n", in, src.width, src.height,
                        src.channels, want.width, want.height, want.channels);
            }
        } else {
            enum resample_filter f;
            if (!CHECK(nf == 6 && resample_filter_parse(fname, strlen(fname), &f) == 0) ||
                !CHECK(want.width == w && want.height == h && want.channels == src.channels)) {
                image_fini(&src);
                image_fini(&want);
                continue;
            }
            uint8_t *out = malloc((size_t)w * h * src.channels);
            if (CHECK(out != NULL) &&
                CHECK(resample_image(src.px, src.width, src.height, out, w, h, src.channels, f) == 0)) {
                int maxd;
                double share = compare(out, want.px, (size_t)w * h * src.channels, &per[f], &maxd);
                if (!CHECK(share >= 0.999)) {
                    bad_cases++;
                    fprintf(stderr, "resize %s -> %ux%u %s: only %.4f%% within 1 of Pillow (max diff %d)\n", in,
                            w, h, fname, share * 100, maxd);
                }
            }
            free(out);
        }
        image_fini(&src);
        image_fini(&want);
    }
    fclose(m);
    int total = 0;
    for (int f = 0; f < RESAMPLE_FILTER_COUNT; f++) {
        const struct stats *s = &per[f];
        total += s->cases;
        if (s->cases)
            printf("%-9s %4d cases, %9llu values: %.4f%% identical, %.4f%% within 1, max diff %d\n",
                   resample_filter_name((enum resample_filter)f), s->cases, s->values,
                   100.0 * (double)s->exact / (double)s->values, 100.0 * (double)s->within1 / (double)s->values,
                   s->maxdiff);
    }
    if (dec.cases)
        printf("decode    %4d cases, %9llu values: %.4f%% identical, max diff %d\n", dec.cases, dec.values,
               100.0 * (double)dec.exact / (double)dec.values, dec.maxdiff);
    CHECK(total > 100);
    CHECK(dec.cases >= 10);
    CHECK(bad_cases == 0);
    return check_report("test_upscale_pillow");
}
