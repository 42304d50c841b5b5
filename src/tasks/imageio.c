/* imageio.c - PNG (libpng) and JPEG (libjpeg-turbo) decoding and encoding in
 * memory, for executors that take or return images.
 *
 * Both libraries report errors by calling a handler that must not return; we
 * longjmp out of it.  To keep that safe, each codec keeps all of its state in
 * a struct owned by the calling function and does its setjmp in a separate
 * function (png_decode_body, jpeg_decode_body, ...): after a longjmp the
 * caller still sees every pointer that was allocated (the C rules about
 * locals changed between setjmp and longjmp apply only inside the function
 * that called setjmp), and frees them on its single cleanup path.
 *
 * Invariants: dimensions are checked against the limits from the header,
 * before pixel memory is allocated (libpng also gets them as user limits, so
 * it refuses oversized IHDRs itself); every library warning about corrupt
 * data is an error; nothing is printed; output buffers grow by doubling
 * inside a struct that this module owns, so an error in the middle of
 * encoding leaks nothing. */
#include "tasks/imageio.h"

#include <limits.h>
#include <png.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h> /* jpeglib.h needs FILE and size_t first */
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "p2c2r/error.h"

/* The largest ancillary chunk libpng may buffer (text, ICC profiles): real
 * files stay far below, and it bounds the memory a hostile file can take. */
#define PNG_CHUNK_MAX (4u << 20)
/* Memory libjpeg may take for its own tables and (progressive) coefficient
 * buffers; a 64 Mpixel 4:4:4 progressive file needs about 400 MiB. */
#define JPEG_MEM_MAX ((long)768 << 20)

const struct image_limits image_default_limits = {IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS};

#include "tasks/tasks.h"


int image_check_size(uint32_t width, uint32_t height, const struct image_limits *lim, char *err,
                     size_t err_cap)
{
    if (!lim)
        lim = &image_default_limits;
    if (width == 0 || height == 0) {
        tasks_errf(err, err_cap, "image size %ux%u is empty", width, height);
        return P2C2R_EINVAL;
    }
    if (width > lim->max_side || height > lim->max_side ||
        (uint64_t)width * height > lim->max_pixels) {
        tasks_errf(err, err_cap, "image size %ux%u is over the limit (%u pixels a side, %llu pixels in all)",
                width, height, lim->max_side, (unsigned long long)lim->max_pixels);
        return P2C2R_EINVAL;
    }
    return 0;
}

int image_init(struct image *im, uint32_t width, uint32_t height, uint32_t channels,
               const struct image_limits *lim)
{
    if ((channels != 3 && channels != 4) || image_check_size(width, height, lim, NULL, 0) != 0)
        return P2C2R_EINVAL;
    /* The limits keep the product far below SIZE_MAX on 64-bit hosts; the
     * check matters only where size_t is 32 bits. */
    uint64_t n = (uint64_t)width * height * channels;
    if (n > SIZE_MAX)
        return P2C2R_ENOMEM;
    uint8_t *px = malloc((size_t)n);
    if (!px)
        return P2C2R_ENOMEM;
    im->px = px;
    im->width = width;
    im->height = height;
    im->channels = channels;
    return 0;
}

void image_fini(struct image *im)
{
    if (!im)
        return;
    free(im->px);
    memset(im, 0, sizeof(*im));
}

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

enum imageio_format imageio_sniff(const uint8_t *data, size_t len)
{
    if (len >= 8 && memcmp(data, png_sig, 8) == 0)
        return IMAGEIO_PNG;
    if (len >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return IMAGEIO_JPEG;
    return IMAGEIO_RAW;
}

const char *imageio_format_name(enum imageio_format f)
{
    switch (f) {
    case IMAGEIO_RAW: return "raw";
    case IMAGEIO_PNG: return "png";
    case IMAGEIO_JPEG: return "jpeg";
    }
    return "?";
}

int imageio_format_parse(const char *s, size_t len, enum imageio_format *out)
{
    static const struct {
        const char *name;
        enum imageio_format f;
    } names[] = {{"raw", IMAGEIO_RAW}, {"png", IMAGEIO_PNG}, {"jpeg", IMAGEIO_JPEG}, {"jpg", IMAGEIO_JPEG}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].f;
            return 0;
        }
    }
    return P2C2R_EINVAL;
}

int imageio_check_raw(size_t len, uint32_t width, uint32_t height, uint32_t channels,
                      const struct image_limits *lim, char *err, size_t err_cap)
{
    if (channels != 3 && channels != 4) {
        tasks_errf(err, err_cap, "raw images have 3 (RGB) or 4 (RGBA) channels, not %u", channels);
        return P2C2R_EINVAL;
    }
    int rc = image_check_size(width, height, lim, err, err_cap);
    if (rc != 0)
        return rc;
    uint64_t want = (uint64_t)width * height * channels;
    if ((uint64_t)len != want) {
        tasks_errf(err, err_cap, "raw input is %zu bytes, but %ux%u with %u channels needs %llu", len, width,
                height, channels, (unsigned long long)want);
        return P2C2R_EINVAL;
    }
    return 0;
}

/* ---- growable output buffer ------------------------------------------------ */

struct outbuf {
    uint8_t *p;
    size_t len, cap;
};

/* Makes room for at least `more` bytes after len.  Returns 0 or -1. */
static int outbuf_reserve(struct outbuf *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    size_t cap = b->cap ? b->cap : 65536;
    while (cap - b->len < more) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* ---- PNG ---------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

struct png_dec {
    png_structp png;
    png_infop info;
    const uint8_t *data;
    size_t len, pos;
    const struct image_limits *lim;
    uint8_t *px;
    png_bytep *rows;
    uint32_t width, height, channels;
    char *err;
    size_t err_cap;
    char warning[128]; /* the first warning, which often explains an error */
};

static void png_error_cb(png_structp png, png_const_charp msg)
{
    struct png_dec *d = png_get_error_ptr(png);
    /* libpng refuses an IHDR over the user limits with a warning saying
     * which limit, then a generic error. */
    if (strstr(d->warning, "exceeds user limit"))
        tasks_errf(d->err, d->err_cap, "PNG header refused: %s (the limit is %u pixels a side)", d->warning,
                d->lim->max_side);
    else if (d->warning[0])
        tasks_errf(d->err, d->err_cap, "corrupt PNG: %s (%s)", msg, d->warning);
    else
        tasks_errf(d->err, d->err_cap, "corrupt PNG: %s", msg);
    png_longjmp(png, 1);
}

/* Warnings are mostly about ancillary data that libpng skips (a bad CRC on a
 * text chunk, an unknown sRGB profile), where the pixels are intact; we keep
 * the first one to explain an error that may follow, and print nothing. */
static void png_dec_warning_cb(png_structp png, png_const_charp msg)
{
    struct png_dec *d = png_get_error_ptr(png);
    if (!d->warning[0])
        snprintf(d->warning, sizeof(d->warning), "%s", msg);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_read_cb(png_structp png, png_bytep out, size_t n)
{
    struct png_dec *d = png_get_io_ptr(png);
    if (n > d->len - d->pos)
        png_error(png, "truncated data");
    memcpy(out, d->data + d->pos, n);
    d->pos += n;
}

/* Everything that can longjmp happens here; state lives in *d, which the
 * caller owns and cleans up. */
static int png_decode_body(struct png_dec *d)
{
    if (setjmp(png_jmpbuf(d->png)))
        return P2C2R_EINVAL;
    /* libpng checks IHDR against these before it allocates anything. */
    png_set_user_limits(d->png, d->lim->max_side, d->lim->max_side);
    png_set_chunk_malloc_max(d->png, PNG_CHUNK_MAX);
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    /* Fuzz builds only: checksums would stop the fuzzer at every mutation. */
    png_set_crc_action(d->png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
#ifdef PNG_IGNORE_ADLER32
    png_set_option(d->png, PNG_IGNORE_ADLER32, PNG_OPTION_ON);
#endif
#endif
    png_set_read_fn(d->png, d, png_read_cb);
    png_read_info(d->png, d->info);

    png_uint_32 w, h;
    int depth, ctype, interlace;
    png_get_IHDR(d->png, d->info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    if (image_check_size(w, h, d->lim, d->err, d->err_cap) != 0)
        return P2C2R_EINVAL;
    d->warning[0] = '\0'; /* from here on, only warnings about this image */

    if (depth == 16)
        png_set_strip_16(d->png);
    if (ctype == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(d->png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(d->png);
    if (png_get_valid(d->png, d->info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(d->png);
    if (ctype == PNG_COLOR_TYPE_GRAY || ctype == PNG_COLOR_TYPE_GRAY_ALPHA)
        png_set_gray_to_rgb(d->png);
    png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->info);

    uint32_t ch = png_get_channels(d->png, d->info);
    if ((ch != 3 && ch != 4) || png_get_bit_depth(d->png, d->info) != 8 ||
        png_get_rowbytes(d->png, d->info) != (size_t)w * ch) {
        tasks_errf(d->err, d->err_cap, "PNG colour type %d at depth %d is not supported", ctype, depth);
        return P2C2R_EINVAL;
    }
    d->px = malloc((size_t)w * h * ch);
    d->rows = malloc(sizeof(png_bytep) * h);
    if (!d->px || !d->rows)
        return P2C2R_ENOMEM;
    for (uint32_t y = 0; y < h; y++)
        d->rows[y] = d->px + (size_t)y * w * ch;
    png_read_image(d->png, d->rows);
    /* Reads the chunks after the image data through IEND, checking their
     * CRCs: a file cut short after its pixels is still truncated. */
    png_read_end(d->png, NULL);
    d->width = w;
    d->height = h;
    d->channels = ch;
    return 0;
}

int imageio_decode_png(const uint8_t *data, size_t len, const struct image_limits *lim,
                       struct image *out, char *err, size_t err_cap)
{
    struct png_dec d = {.data = data, .len = len, .lim = lim ? lim : &image_default_limits,
                        .err = err, .err_cap = err_cap};
    if (err && err_cap)
        err[0] = '\0';
    if (len < 8 || memcmp(data, png_sig, 8) != 0) {
        tasks_errf(err, err_cap, "not a PNG file (bad signature)");
        return P2C2R_EINVAL;
    }
    d.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &d, png_error_cb, png_dec_warning_cb);
    if (!d.png)
        return P2C2R_ENOMEM;
    d.info = png_create_info_struct(d.png);
    int rc = d.info ? png_decode_body(&d) : P2C2R_ENOMEM;
    png_destroy_read_struct(&d.png, &d.info, NULL);
    free(d.rows);
    if (rc != 0) {
        free(d.px);
        if (rc == P2C2R_ENOMEM)
            tasks_errf(err, err_cap, "out of memory decoding PNG");
        return rc;
    }
    out->px = d.px;
    out->width = d.width;
    out->height = d.height;
    out->channels = d.channels;
    return 0;
}

struct png_enc {
    png_structp png;
    png_infop info;
    const struct image *im;
    int level;
    struct outbuf buf;
    char *err;
    size_t err_cap;
};

static void png_enc_error_cb(png_structp png, png_const_charp msg)
{
    struct png_enc *e = png_get_error_ptr(png);
    tasks_errf(e->err, e->err_cap, "PNG encoding failed: %s", msg);
    png_longjmp(png, 1);
}

static void png_write_cb(png_structp png, png_bytep p, size_t n)
{
    struct png_enc *e = png_get_io_ptr(png);
    if (outbuf_reserve(&e->buf, n) != 0)
        png_error(png, "out of memory");
    memcpy(e->buf.p + e->buf.len, p, n);
    e->buf.len += n;
}

static void png_flush_cb(png_structp png)
{
    (void)png;
}

static int png_encode_body(struct png_enc *e)
{
    if (setjmp(png_jmpbuf(e->png)))
        return P2C2R_ENOMEM;
    const struct image *im = e->im;
    png_set_write_fn(e->png, e, png_write_cb, png_flush_cb);
    png_set_IHDR(e->png, e->info, im->width, im->height, 8,
                 im->channels == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(e->png, e->level);
    png_write_info(e->png, e->info);
    size_t stride = (size_t)im->width * im->channels;
    for (uint32_t y = 0; y < im->height; y++)
        png_write_row(e->png, im->px + y * stride);
    png_write_end(e->png, NULL);
    return 0;
}

int imageio_encode_png(const struct image *im, int level, uint8_t **out, size_t *out_len,
                       char *err, size_t err_cap)
{
    if (!im->px || (im->channels != 3 && im->channels != 4) ||
        image_check_size(im->width, im->height, NULL, err, err_cap) != 0 || level < 0 || level > 9) {
        tasks_errf(err, err_cap, "cannot encode this image as PNG (bad size, channels or level)");
        return P2C2R_EINVAL;
    }
    struct png_enc e = {.im = im, .level = level, .err = err, .err_cap = err_cap};
    e.png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &e, png_enc_error_cb, png_warning_cb);
    if (!e.png)
        return P2C2R_ENOMEM;
    e.info = png_create_info_struct(e.png);
    int rc = e.info ? png_encode_body(&e) : P2C2R_ENOMEM;
    png_destroy_write_struct(&e.png, &e.info);
    if (rc != 0) {
        free(e.buf.p);
        return rc;
    }
    *out = e.buf.p;
    *out_len = e.buf.len;
    return 0;
}

/* ---- JPEG ---------------------------------------------------------------- */

struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char *err;
    size_t err_cap;
    const char *what; /* "corrupt JPEG" or "JPEG encoding failed" */
};

static void jpeg_error_exit_cb(j_common_ptr cinfo)
{
    struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
    char msg[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, msg);
    tasks_errf(e->err, e->err_cap, "%s: %s", e->what, msg);
    longjmp(e->jb, 1);
}

/* Warnings (level -1) report corrupt data that libjpeg would paper over with
 * grey; a corrupt input is an error here, as TurboJPEG's stop-on-warning
 * mode makes it.  Trace messages (level >= 0) are ignored. */
static void jpeg_emit_message_cb(j_common_ptr cinfo, int level)
{
    if (level < 0)
        jpeg_error_exit_cb(cinfo);
}

static void jpeg_progress_cb(j_common_ptr cinfo)
{
    if (cinfo->is_decompressor &&
        ((j_decompress_ptr)cinfo)->input_scan_number > IMAGEIO_JPEG_MAX_SCANS) {
        struct jpeg_err *e = (struct jpeg_err *)cinfo->err;
        tasks_errf(e->err, e->err_cap, "corrupt JPEG: more than %d scans", IMAGEIO_JPEG_MAX_SCANS);
        longjmp(e->jb, 1);
    }
}

static void jpeg_err_init(struct jpeg_err *e, const char *what, char *err, size_t err_cap)
{
    jpeg_std_error(&e->pub);
    e->pub.error_exit = jpeg_error_exit_cb;
    e->pub.emit_message = jpeg_emit_message_cb;
    e->err = err;
    e->err_cap = err_cap;
    e->what = what;
}

struct jpeg_dec {
    struct jpeg_decompress_struct cinfo;
    struct jpeg_err jerr;
    struct jpeg_progress_mgr progress;
    int created;
    const uint8_t *data;
    size_t len;
    const struct image_limits *lim;
    uint8_t *px;
    uint32_t width, height;
    int header_only;
};

static int jpeg_decode_body(struct jpeg_dec *d)
{
    if (setjmp(d->jerr.jb))
        return P2C2R_EINVAL;
    jpeg_create_decompress(&d->cinfo);
    d->created = 1;
    d->cinfo.mem->max_memory_to_use = JPEG_MEM_MAX;
    d->progress.progress_monitor = jpeg_progress_cb;
    d->cinfo.progress = &d->progress;
    /* jpeg_mem_src takes an unsigned long length. */
    if (d->len > ULONG_MAX) {
        tasks_errf(d->jerr.err, d->jerr.err_cap, "JPEG input too large");
        return P2C2R_EINVAL;
    }
    jpeg_mem_src(&d->cinfo, d->data, (unsigned long)d->len);
    jpeg_read_header(&d->cinfo, TRUE);
    uint32_t w = d->cinfo.image_width, h = d->cinfo.image_height;
    d->width = w;
    d->height = h;
    if (d->header_only)
        return 0;
    if (image_check_size(w, h, d->lim, d->jerr.err, d->jerr.err_cap) != 0)
        return P2C2R_EINVAL;
    if (d->cinfo.jpeg_color_space == JCS_CMYK || d->cinfo.jpeg_color_space == JCS_YCCK) {
        tasks_errf(d->jerr.err, d->jerr.err_cap, "CMYK JPEG images are not supported: convert to RGB first");
        return P2C2R_EINVAL;
    }
    d->cinfo.out_color_space = JCS_RGB;
    d->cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_decompress(&d->cinfo);
    if (d->cinfo.output_width != w || d->cinfo.output_height != h || d->cinfo.output_components != 3) {
        tasks_errf(d->jerr.err, d->jerr.err_cap, "JPEG decoder produced an unexpected layout");
        return P2C2R_EINVAL;
    }
    d->px = malloc((size_t)w * h * 3);
    if (!d->px)
        return P2C2R_ENOMEM;
    while (d->cinfo.output_scanline < h) {
        JSAMPROW row = d->px + (size_t)d->cinfo.output_scanline * w * 3;
        if (jpeg_read_scanlines(&d->cinfo, &row, 1) != 1) {
            tasks_errf(d->jerr.err, d->jerr.err_cap, "corrupt JPEG: decoder stalled");
            return P2C2R_EINVAL;
        }
    }
    jpeg_finish_decompress(&d->cinfo);
    return 0;
}

/* Decodes (or, with header_only, reads the size of) a JPEG; on success the
 * caller owns d->px. */
static int jpeg_run(struct jpeg_dec *d, char *err, size_t err_cap)
{
    if (err && err_cap)
        err[0] = '\0';
    jpeg_err_init(&d->jerr, "corrupt JPEG", err, err_cap);
    d->cinfo.err = &d->jerr.pub;
    int rc = jpeg_decode_body(d);
    if (d->created)
        jpeg_destroy_decompress(&d->cinfo);
    if (rc != 0) {
        free(d->px);
        d->px = NULL;
        if (rc == P2C2R_ENOMEM)
            tasks_errf(err, err_cap, "out of memory decoding JPEG");
    }
    return rc;
}

int imageio_decode_jpeg(const uint8_t *data, size_t len, const struct image_limits *lim,
                        struct image *out, char *err, size_t err_cap)
{
    if (imageio_sniff(data, len) != IMAGEIO_JPEG) {
        tasks_errf(err, err_cap, "not a JPEG file (bad signature)");
        return P2C2R_EINVAL;
    }
    struct jpeg_dec d;
    memset(&d, 0, sizeof(d));
    d.data = data;
    d.len = len;
    d.lim = lim ? lim : &image_default_limits;
    int rc = jpeg_run(&d, err, err_cap);
    if (rc != 0)
        return rc;
    out->px = d.px;
    out->width = d.width;
    out->height = d.height;
    out->channels = 3;
    return 0;
}

struct jpeg_dst {
    struct jpeg_destination_mgr pub;
    struct outbuf buf;
};

static void jpeg_dst_init(j_compress_ptr cinfo)
{
    struct jpeg_dst *d = (struct jpeg_dst *)cinfo->dest;
    if (outbuf_reserve(&d->buf, 65536) != 0)
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 0);
    d->pub.next_output_byte = d->buf.p;
    d->pub.free_in_buffer = d->buf.cap;
}

/* Called when the whole buffer is full (libjpeg's contract). */
static boolean jpeg_dst_empty(j_compress_ptr cinfo)
{
    struct jpeg_dst *d = (struct jpeg_dst *)cinfo->dest;
    d->buf.len = d->buf.cap;
    if (outbuf_reserve(&d->buf, d->buf.cap) != 0)
        ERREXIT1(cinfo, JERR_OUT_OF_MEMORY, 1);
    d->pub.next_output_byte = d->buf.p + d->buf.len;
    d->pub.free_in_buffer = d->buf.cap - d->buf.len;
    return TRUE;
}

static void jpeg_dst_term(j_compress_ptr cinfo)
{
    struct jpeg_dst *d = (struct jpeg_dst *)cinfo->dest;
    d->buf.len = d->buf.cap - d->pub.free_in_buffer;
}

struct jpeg_enc {
    struct jpeg_compress_struct cinfo;
    struct jpeg_err jerr;
    struct jpeg_dst dst;
    int created;
    const struct image *im;
    int quality;
};

static int jpeg_encode_body(struct jpeg_enc *e)
{
    if (setjmp(e->jerr.jb))
        return P2C2R_ENOMEM;
    jpeg_create_compress(&e->cinfo);
    e->created = 1;
    e->dst.pub.init_destination = jpeg_dst_init;
    e->dst.pub.empty_output_buffer = jpeg_dst_empty;
    e->dst.pub.term_destination = jpeg_dst_term;
    e->cinfo.dest = &e->dst.pub;
    const struct image *im = e->im;
    e->cinfo.image_width = im->width;
    e->cinfo.image_height = im->height;
    /* libjpeg-turbo reads RGBX directly and ignores the fourth byte. */
    e->cinfo.input_components = (int)im->channels;
    e->cinfo.in_color_space = im->channels == 4 ? JCS_EXT_RGBX : JCS_RGB;
    jpeg_set_defaults(&e->cinfo);
    jpeg_set_quality(&e->cinfo, e->quality, TRUE);
    e->cinfo.dct_method = JDCT_ISLOW;
    jpeg_start_compress(&e->cinfo, TRUE);
    size_t stride = (size_t)im->width * im->channels;
    while (e->cinfo.next_scanline < im->height) {
        JSAMPROW row = im->px + e->cinfo.next_scanline * stride;
        jpeg_write_scanlines(&e->cinfo, &row, 1);
    }
    jpeg_finish_compress(&e->cinfo);
    return 0;
}

int imageio_encode_jpeg(const struct image *im, int quality, uint8_t **out, size_t *out_len,
                        char *err, size_t err_cap)
{
    if (!im->px || (im->channels != 3 && im->channels != 4) ||
        image_check_size(im->width, im->height, NULL, err, err_cap) != 0 || quality < 1 ||
        quality > 100 || im->width > JPEG_MAX_DIMENSION || im->height > JPEG_MAX_DIMENSION) {
        tasks_errf(err, err_cap, "cannot encode this image as JPEG (bad size, channels or quality)");
        return P2C2R_EINVAL;
    }
    struct jpeg_enc e;
    memset(&e, 0, sizeof(e));
    e.im = im;
    e.quality = quality;
    jpeg_err_init(&e.jerr, "JPEG encoding failed", err, err_cap);
    e.cinfo.err = &e.jerr.pub;
    int rc = jpeg_encode_body(&e);
    if (e.created)
        jpeg_destroy_compress(&e.cinfo);
    if (rc != 0) {
        free(e.dst.buf.p);
        return rc;
    }
    *out = e.dst.buf.p;
    *out_len = e.dst.buf.len;
    return 0;
}

/* ---- probing ------------------------------------------------------------- */

int imageio_probe(const uint8_t *data, size_t len, uint32_t *width, uint32_t *height,
                  uint32_t *channels)
{
    enum imageio_format f = imageio_sniff(data, len);
    if (f == IMAGEIO_PNG) {
        /* Signature, then IHDR: length, type, width, height, depth, colour. */
        if (len < 33 || memcmp(data + 12, "IHDR", 4) != 0)
            return P2C2R_EINVAL;
        uint32_t w = be32(data + 16), h = be32(data + 20);
        uint8_t ctype = data[25];
        uint32_t ch = (ctype == 4 || ctype == 6) ? 4 : 3;
        /* A tRNS chunk before the image data adds alpha. */
        size_t pos = 8;
        while (ch == 3 && len - pos >= 12) {
            uint32_t clen = be32(data + pos);
            if (memcmp(data + pos + 4, "IDAT", 4) == 0)
                break;
            if (memcmp(data + pos + 4, "tRNS", 4) == 0)
                ch = 4;
            if (clen > len - pos - 12)
                break;
            pos += 12 + (size_t)clen;
        }
        if (w == 0 || h == 0)
            return P2C2R_EINVAL;
        *width = w;
        *height = h;
        *channels = ch;
        return 0;
    }
    if (f == IMAGEIO_JPEG) {
        struct jpeg_dec d;
        memset(&d, 0, sizeof(d));
        d.data = data;
        d.len = len;
        d.lim = &image_default_limits;
        d.header_only = 1;
        if (jpeg_run(&d, NULL, 0) != 0 || d.width == 0 || d.height == 0)
            return P2C2R_EINVAL;
        *width = d.width;
        *height = d.height;
        *channels = 3;
        return 0;
    }
    return P2C2R_EINVAL;
}

int imageio_decode(const uint8_t *data, size_t len, const struct image_limits *lim,
                   struct image *out, char *err, size_t err_cap)
{
    switch (imageio_sniff(data, len)) {
    case IMAGEIO_PNG: return imageio_decode_png(data, len, lim, out, err, err_cap);
    case IMAGEIO_JPEG: return imageio_decode_jpeg(data, len, lim, out, err, err_cap);
    case IMAGEIO_RAW: break;
    }
    tasks_errf(err, err_cap, "input is neither PNG nor JPEG (for raw pixels give in_width and in_height)");
    return P2C2R_EINVAL;
}
