/* test_upscale_io.c - the image decoders and encoders (src/tasks/imageio.c).
 *
 * Round trips (PNG exact, JPEG close), PNG variants written here with libpng
 * (interlaced, 16-bit), and the untrusted-input rules: every truncation of a
 * PNG and a JPEG, every single-bit flip of a PNG, garbage, bad CRCs,
 * headers over the size limits (100000x100000, 16385 wide, 65 Mpixel) and
 * CMYK JPEG all fail with EINVAL and a reason, never a crash or a leak (run
 * under ASan to see the latter).  Over-limit headers are refused from the
 * header alone: the files carry almost no pixel data, so a decoder that
 * allocated and read first would fail with a different message. */
#include <png.h>
#include <stdio.h> /* before jpeglib.h */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "check.h"
#include "p2c2r/error.h"
#include "tasks/imageio.h"

static void make_pixels(uint8_t *px, uint32_t w, uint32_t h, uint32_t ch, uint32_t seed)
{
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            for (uint32_t c = 0; c < ch; c++) {
                seed = seed * 1103515245u + 12345u;
                /* Smooth plus a little noise: compresses, but not to nothing. */
                px[((size_t)y * w + x) * ch + c] = (uint8_t)((x * 7 + y * 3 + c * 50) + (seed >> 29));
            }
}

static int encode(const struct image *im, int png, uint8_t **out, size_t *len)
{
    char err[256];
    return png ? imageio_encode_png(im, 6, out, len, err, sizeof(err))
               : imageio_encode_jpeg(im, 95, out, len, err, sizeof(err));
}

static void test_png_roundtrip(void)
{
    static const uint32_t sizes[][2] = {{1, 1}, {17, 5}, {64, 64}, {3, 200}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        for (uint32_t ch = 3; ch <= 4; ch++) {
            for (int level = 0; level <= 9; level += 9) {
                struct image im, back = {0};
                CHECK_EQ(image_init(&im, sizes[s][0], sizes[s][1], ch, NULL), 0);
                make_pixels(im.px, im.width, im.height, ch, (uint32_t)(s * 10 + ch));
                uint8_t *png = NULL;
                size_t len = 0;
                char err[256] = "";
                CHECK_EQ(imageio_encode_png(&im, level, &png, &len, err, sizeof(err)), 0);
                CHECK(imageio_sniff(png, len) == IMAGEIO_PNG);
                uint32_t pw, ph, pc;
                CHECK_EQ(imageio_probe(png, len, &pw, &ph, &pc), 0);
                CHECK(pw == im.width && ph == im.height && pc == ch);
                CHECK_EQ(imageio_decode(png, len, NULL, &back, err, sizeof(err)), 0);
                CHECK(back.width == im.width && back.height == im.height && back.channels == ch);
                CHECK_MEM(back.px, (size_t)back.width * back.height * back.channels, im.px,
                          (size_t)im.width * im.height * ch);
                free(png);
                image_fini(&back);
                image_fini(&im);
            }
        }
    }
}

static void test_jpeg_roundtrip(void)
{
    for (uint32_t ch = 3; ch <= 4; ch++) {
        struct image im, back = {0};
        CHECK_EQ(image_init(&im, 50, 33, ch, NULL), 0);
        for (uint32_t i = 0; i < 50 * 33; i++) /* smooth: JPEG keeps it well */
            for (uint32_t c = 0; c < ch; c++)
                im.px[i * ch + c] = (uint8_t)(i % 50 * 2 + c * 20 + i / 50 * 2);
        uint8_t *jpg = NULL;
        size_t len = 0;
        char err[256] = "";
        CHECK_EQ(imageio_encode_jpeg(&im, 95, &jpg, &len, err, sizeof(err)), 0);
        CHECK(imageio_sniff(jpg, len) == IMAGEIO_JPEG);
        uint32_t pw, ph, pc;
        CHECK_EQ(imageio_probe(jpg, len, &pw, &ph, &pc), 0);
        CHECK(pw == 50 && ph == 33 && pc == 3);
        CHECK_EQ(imageio_decode(jpg, len, NULL, &back, err, sizeof(err)), 0);
        /* JPEG has no alpha: RGBA comes back as its RGB. */
        if (CHECK(back.width == 50 && back.height == 33 && back.channels == 3)) {
            double sum = 0;
            for (uint32_t i = 0; i < 50 * 33; i++)
                for (uint32_t c = 0; c < 3; c++)
                    sum += abs((int)back.px[i * 3 + c] - (int)im.px[i * ch + c]);
            CHECK(sum / (50 * 33 * 3) < 3.0);
        }
        /* Deterministic: the same image encodes to the same bytes. */
        uint8_t *again = NULL;
        size_t len2 = 0;
        CHECK_EQ(imageio_encode_jpeg(&im, 95, &again, &len2, err, sizeof(err)), 0);
        CHECK_MEM(again, len2, jpg, len);
        CHECK(imageio_encode_jpeg(&im, 0, &again, &len2, err, sizeof(err)) == P2C2R_EINVAL);
        CHECK(imageio_encode_png(&im, 10, &again, &len2, err, sizeof(err)) == P2C2R_EINVAL);
        free(again);
        free(jpg);
        image_fini(&back);
        image_fini(&im);
    }
}

/* ---- PNG variants written with libpng directly ---------------------------- */

struct membuf {
    uint8_t *p;
    size_t len, cap;
};

static void mem_write(png_structp png, png_bytep data, size_t n)
{
    struct membuf *b = png_get_io_ptr(png);
    if (b->len + n > b->cap) {
        size_t cap = (b->len + n) * 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            png_error(png, "oom");
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void mem_flush(png_structp png)
{
    (void)png;
}

/* Writes a w x h PNG with libpng: depth 8 or 16, colour type, interlace. */
static struct membuf write_png(uint32_t w, uint32_t h, int depth, int ctype, int interlace, const uint8_t *rows)
{
    struct membuf b = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(b.p);
        b.p = NULL;
        return b;
    }
    png_set_write_fn(png, &b, mem_write, mem_flush);
    png_set_IHDR(png, info, w, h, depth, ctype, interlace, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    int chans = ctype == PNG_COLOR_TYPE_RGB ? 3 : ctype == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    size_t stride = (size_t)w * (size_t)chans * (size_t)(depth / 8);
    int passes = png_set_interlace_handling(png);
    for (int p = 0; p < passes; p++)
        for (uint32_t y = 0; y < h; y++)
            png_write_row(png, (png_const_bytep)(rows + y * stride));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return b;
}

static void test_png_variants(void)
{
    char err[256];
    /* Adam7-interlaced RGB decodes to the same pixels as written. */
    uint8_t rgb[23 * 19 * 3];
    make_pixels(rgb, 23, 19, 3, 7);
    struct membuf b = write_png(23, 19, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7, rgb);
    struct image im = {0};
    if (CHECK(b.p != NULL) && CHECK(imageio_decode(b.p, b.len, NULL, &im, err, sizeof(err)) == 0)) {
        CHECK(im.width == 23 && im.height == 19 && im.channels == 3);
        CHECK_MEM(im.px, (size_t)23 * 19 * 3, rgb, sizeof(rgb));
    }
    image_fini(&im);
    free(b.p);

    /* 16-bit RGBA keeps the high byte of each sample (big-endian in PNG). */
    uint8_t rgba16[9 * 4 * 4 * 2], want[9 * 4 * 4];
    make_pixels(rgba16, 9 * 4, 4, 2, 3);
    for (size_t i = 0; i < sizeof(want); i++)
        want[i] = rgba16[2 * i];
    b = write_png(9, 4, 16, PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE, rgba16);
    if (CHECK(b.p != NULL) && CHECK(imageio_decode(b.p, b.len, NULL, &im, err, sizeof(err)) == 0)) {
        CHECK(im.width == 9 && im.height == 4 && im.channels == 4);
        CHECK_MEM(im.px, (size_t)9 * 4 * 4, want, sizeof(want));
    }
    image_fini(&im);
    free(b.p);

    /* 16-bit grey becomes RGB of its high bytes. */
    uint8_t g16[5 * 3 * 2];
    make_pixels(g16, 5 * 3, 1, 2, 9);
    b = write_png(5, 3, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, g16);
    if (CHECK(b.p != NULL) && CHECK(imageio_decode(b.p, b.len, NULL, &im, err, sizeof(err)) == 0)) {
        CHECK(im.width == 5 && im.height == 3 && im.channels == 3);
        for (int i = 0; i < 15; i++)
            CHECK(im.px[3 * i] == g16[2 * i] && im.px[3 * i + 1] == g16[2 * i] && im.px[3 * i + 2] == g16[2 * i]);
    }
    image_fini(&im);
    free(b.p);
}

/* ---- untrusted input -------------------------------------------------------- */

static uint32_t crc_table[256];

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    if (!crc_table[1])
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++)
                c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
            crc_table[i] = c;
        }
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++)
        c = crc_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return c ^ 0xffffffffu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* A PNG whose IHDR claims w x h RGB, with a valid CRC, followed by a tiny
 * IDAT and IEND: only the header is big. */
static size_t png_with_header(uint8_t *out, uint32_t w, uint32_t h)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    /* zlib stream of a few zero bytes (a fraction of one row) */
    static const uint8_t idat[] = {0x78, 0x9c, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01};
    size_t n = 0;
    memcpy(out, sig, 8);
    n = 8;
    put_be32(out + n, 13);
    memcpy(out + n + 4, "IHDR", 4);
    put_be32(out + n + 8, w);
    put_be32(out + n + 12, h);
    out[n + 16] = 8; /* depth */
    out[n + 17] = 2; /* RGB */
    out[n + 18] = out[n + 19] = out[n + 20] = 0;
    put_be32(out + n + 21, crc32_of(out + n + 4, 17));
    n += 25;
    put_be32(out + n, sizeof(idat));
    memcpy(out + n + 4, "IDAT", 4);
    memcpy(out + n + 8, idat, sizeof(idat));
    put_be32(out + n + 8 + sizeof(idat), crc32_of(out + n + 4, 4 + sizeof(idat)));
    n += 12 + sizeof(idat);
    put_be32(out + n, 0);
    memcpy(out + n + 4, "IEND", 4);
    put_be32(out + n + 8, crc32_of(out + n + 4, 4));
    return n + 12;
}

static int decode_fails(const uint8_t *p, size_t n, const char *want_in_err)
{
    struct image im = {0};
    char err[256] = "";
    int rc = imageio_decode(p, n, NULL, &im, err, sizeof(err));
    image_fini(&im);
    if (rc != P2C2R_EINVAL || err[0] == '\0') {
        fprintf(stderr, "  decode of %zu bytes: rc %d err '%s'\n", n, rc, err);
        return 0;
    }
    if (want_in_err && !strstr(err, want_in_err)) {
        fprintf(stderr, "  decode error '%s' does not mention '%s'\n", err, want_in_err);
        return 0;
    }
    return 1;
}

static void test_size_limits(void)
{
    uint8_t buf[256];
    size_t n = png_with_header(buf, 100000, 100000);
    CHECK(decode_fails(buf, n, "limit"));
    n = png_with_header(buf, 16385, 1);
    CHECK(decode_fails(buf, n, "limit"));
    n = png_with_header(buf, 1, 16385);
    CHECK(decode_fails(buf, n, "limit"));
    /* Within the side limit but 65 Mpixel: our own check, before allocating. */
    n = png_with_header(buf, 8193, 8193);
    CHECK(decode_fails(buf, n, "over the limit"));
    n = png_with_header(buf, 0, 10);
    CHECK(decode_fails(buf, n, NULL));
    /* The same file within the limits gets to the pixel data, which is short. */
    n = png_with_header(buf, 2000, 2000);
    CHECK(decode_fails(buf, n, NULL));

    /* Caller-given limits. */
    struct image im;
    CHECK_EQ(image_init(&im, 64, 64, 3, NULL), 0);
    make_pixels(im.px, 64, 64, 3, 1);
    uint8_t *png, *jpg;
    size_t plen, jlen;
    CHECK_EQ(encode(&im, 1, &png, &plen), 0);
    CHECK_EQ(encode(&im, 0, &jpg, &jlen), 0);
    struct image_limits small = {32, 1 << 20}, few = {1024, 4000};
    struct image out = {0};
    char err[256];
    CHECK(imageio_decode(png, plen, &small, &out, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(imageio_decode(png, plen, &few, &out, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(imageio_decode(jpg, jlen, &small, &out, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(imageio_decode(jpg, jlen, &few, &out, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(strstr(err, "over the limit") != NULL);

    /* A JPEG whose SOF claims 65000 x 65000. */
    for (size_t i = 2; i + 9 < jlen; i++) {
        if (jpg[i] == 0xff && jpg[i + 1] == 0xc0) {
            jpg[i + 5] = jpg[i + 7] = 0xfd;
            jpg[i + 6] = jpg[i + 8] = 0xe8;
            CHECK(decode_fails(jpg, jlen, "over the limit"));
            break;
        }
    }
    free(png);
    free(jpg);
    image_fini(&im);

    /* image_check_size at the edges. */
    CHECK_EQ(image_check_size(16384, 4096, NULL, NULL, 0), 0);
    CHECK_EQ(image_check_size(16384, 4097, NULL, NULL, 0), P2C2R_EINVAL);
    CHECK_EQ(image_check_size(16385, 1, NULL, NULL, 0), P2C2R_EINVAL);
    CHECK_EQ(image_check_size(0, 1, NULL, NULL, 0), P2C2R_EINVAL);
    CHECK_EQ(image_init(&im, 100000, 100000, 3, NULL), P2C2R_EINVAL);
    CHECK_EQ(image_init(&im, 10, 10, 2, NULL), P2C2R_EINVAL);

    /* Raw sizes. */
    CHECK_EQ(imageio_check_raw(12, 2, 2, 3, NULL, err, sizeof(err)), 0);
    CHECK_EQ(imageio_check_raw(16, 2, 2, 4, NULL, err, sizeof(err)), 0);
    CHECK_EQ(imageio_check_raw(13, 2, 2, 3, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "needs 12") != NULL);
    CHECK_EQ(imageio_check_raw(11, 2, 2, 3, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK_EQ(imageio_check_raw(8, 2, 2, 2, NULL, err, sizeof(err)), P2C2R_EINVAL);
    CHECK_EQ(imageio_check_raw((size_t)100000 * 100000 * 3, 100000, 100000, 3, NULL, err, sizeof(err)),
             P2C2R_EINVAL);
}

static void test_truncation_and_corruption(void)
{
    struct image im;
    CHECK_EQ(image_init(&im, 20, 13, 3, NULL), 0);
    make_pixels(im.px, 20, 13, 3, 5);
    uint8_t *png, *jpg;
    size_t plen, jlen;
    CHECK_EQ(encode(&im, 1, &png, &plen), 0);
    CHECK_EQ(encode(&im, 0, &jpg, &jlen), 0);
    image_fini(&im);

    /* Every proper prefix is an error: a decoder must see the whole file. */
    int ok = 1;
    for (size_t n = 0; n < plen; n++)
        ok &= decode_fails(png, n, NULL);
    CHECK(ok);
    ok = 1;
    for (size_t n = 0; n < jlen; n++)
        ok &= decode_fails(jpg, n, NULL);
    CHECK(ok);

    /* Every single-bit flip of the PNG breaks a CRC or the signature. */
    uint8_t *c = malloc(plen);
    ok = 1;
    for (size_t i = 0; c && i < plen; i++) {
        memcpy(c, png, plen);
        c[i] ^= (uint8_t)(1u << (i % 8));
        ok &= decode_fails(c, plen, NULL);
    }
    CHECK(ok);
    /* A bad CRC on IHDR and on IDAT, named as such. */
    if (c) {
        memcpy(c, png, plen);
        c[8 + 8 + 13] ^= 0x55; /* IHDR's CRC */
        CHECK(decode_fails(c, plen, "CRC"));
        memcpy(c, png, plen);
        c[plen - 12 - 1] ^= 0x55; /* last byte of the last IDAT's CRC, before IEND */
        CHECK(decode_fails(c, plen, "CRC"));
    }
    free(c);

    /* JPEG has no checksums: a flipped bit may decode; it must never crash. */
    c = malloc(jlen);
    int decoded = 0, refused = 0;
    for (size_t i = 0; c && i < jlen; i++) {
        memcpy(c, jpg, jlen);
        c[i] ^= (uint8_t)(1u << (i % 8));
        struct image out = {0};
        char err[256];
        int rc = imageio_decode(c, jlen, NULL, &out, err, sizeof(err));
        CHECK(rc == 0 || rc == P2C2R_EINVAL);
        if (rc == 0)
            decoded++;
        else
            refused++;
        image_fini(&out);
    }
    CHECK(refused > 0);
    printf("jpeg bit flips: %d decoded, %d refused\n", decoded, refused);
    free(c);

    /* Garbage behind valid signatures, and plain garbage. */
    uint8_t g[4096];
    uint32_t seed = 99;
    for (int round = 0; round < 64; round++) {
        for (size_t i = 0; i < sizeof(g); i++) {
            seed = seed * 1664525u + 1013904223u;
            g[i] = (uint8_t)(seed >> 24);
        }
        size_t n = 16 + (size_t)round * 61;
        if (round % 3 == 0)
            memcpy(g, png, 8 + (size_t)round % 20);
        else if (round % 3 == 1)
            memcpy(g, jpg, 3 + (size_t)round % 40);
        CHECK(decode_fails(g, n, NULL));
    }
    free(png);
    free(jpg);
}

/* A CMYK JPEG, written with libjpeg, is refused with a reason. */
static void test_cmyk(void)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    uint8_t row[8 * 4];
    memset(row, 100, sizeof(row));
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = 8;
    ci.image_height = 8;
    ci.input_components = 4;
    ci.in_color_space = JCS_CMYK;
    jpeg_set_defaults(&ci);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < 8) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    CHECK(decode_fails(buf, len, "CMYK"));
    free(buf);
}

static void test_names(void)
{
    enum imageio_format f;
    CHECK(imageio_format_parse("png", 3, &f) == 0 && f == IMAGEIO_PNG);
    CHECK(imageio_format_parse("jpg", 3, &f) == 0 && f == IMAGEIO_JPEG);
    CHECK(imageio_format_parse("jpeg", 4, &f) == 0 && f == IMAGEIO_JPEG);
    CHECK(imageio_format_parse("raw", 3, &f) == 0 && f == IMAGEIO_RAW);
    CHECK(imageio_format_parse("gif", 3, &f) == P2C2R_EINVAL);
    CHECK(imageio_format_parse("pn", 2, &f) == P2C2R_EINVAL);
    CHECK(strcmp(imageio_format_name(IMAGEIO_JPEG), "jpeg") == 0);
    CHECK(imageio_sniff((const uint8_t *)"", 0) == IMAGEIO_RAW);
    image_fini(NULL);
}

int main(void)
{
    test_png_roundtrip();
    test_jpeg_roundtrip();
    test_png_variants();
    test_size_limits();
    test_truncation_and_corruption();
    test_cmyk();
    test_names();
    return check_report("test_upscale_io");
}
