/* imageio.h - in-memory image decoding and encoding for the image executors:
 * PNG through libpng, JPEG through libjpeg-turbo, and raw interleaved RGB or
 * RGBA pixels.
 *
 * Every decoder treats its input as untrusted: dimensions are checked against
 * struct image_limits before any pixel memory is allocated, corrupt or
 * truncated data is an error (never a crash, a hang or a partial image), and
 * nothing leaks on any error path.  The functions are reentrant (no global
 * state) and silent: a failure is a return code plus a one-line reason
 * written into the caller's err buffer. */
#ifndef P2C2R_IMAGEIO_H
#define P2C2R_IMAGEIO_H

#include <stddef.h>
#include <stdint.h>

/* Default limits for input and output images: no side over 16384 pixels and
 * no more than 64 Mpixel in all (256 MiB as RGBA). */
#define IMAGE_MAX_SIDE 16384u
#define IMAGE_MAX_PIXELS ((uint64_t)64 << 20)

/* Most progressive-JPEG scans a decoder accepts: real encoders use about ten;
 * thousands of tiny scans are a known way to burn CPU. */
#define IMAGEIO_JPEG_MAX_SCANS 200

struct image_limits {
    uint32_t max_side;   /* largest width or height */
    uint64_t max_pixels; /* largest width * height */
};

/* An 8-bit interleaved image: channels is 3 (RGB) or 4 (RGBA, straight, not
 * premultiplied alpha); rows are packed top to bottom with no padding, so px
 * holds width * height * channels bytes. */
struct image {
    uint8_t *px;
    uint32_t width, height;
    uint32_t channels;
};

enum imageio_format { IMAGEIO_RAW = 0, IMAGEIO_PNG = 1, IMAGEIO_JPEG = 2 };

/* The default limits (IMAGE_MAX_SIDE, IMAGE_MAX_PIXELS). */
extern const struct image_limits image_default_limits;

/* Returns 0 when a width x height image is non-empty and within lim (NULL =
 * the defaults), else P2C2R_EINVAL with the reason in err (may be NULL). */
int image_check_size(uint32_t width, uint32_t height, const struct image_limits *lim, char *err,
                     size_t err_cap);

/* Allocates an uninitialised width x height image of channels (3 or 4) in
 * caller-provided storage.  Errors: EINVAL (size over lim, NULL = defaults;
 * bad channel count), ENOMEM.  On failure *im is left untouched. */
int image_init(struct image *im, uint32_t width, uint32_t height, uint32_t channels,
               const struct image_limits *lim);

/* Frees the pixels of an image from image_init or a decoder and zeroes it.
 * NULL and a zeroed image are no-ops. */
void image_fini(struct image *im);

/* Says what encoded data looks like from its first bytes: IMAGEIO_PNG,
 * IMAGEIO_JPEG, or IMAGEIO_RAW for anything else. */
enum imageio_format imageio_sniff(const uint8_t *data, size_t len);

/* "raw", "png" or "jpeg". */
const char *imageio_format_name(enum imageio_format f);

/* Parses "raw", "png", "jpeg" or "jpg" (len bytes, not NUL-terminated).
 * Returns 0 and sets *out, or P2C2R_EINVAL. */
int imageio_format_parse(const char *s, size_t len, enum imageio_format *out);

/* Reads the dimensions and channel count a decode would produce from a PNG or
 * JPEG header without decoding pixels or checking limits (for a summary
 * line).  Returns 0, or P2C2R_EINVAL when the header cannot be read. */
int imageio_probe(const uint8_t *data, size_t len, uint32_t *width, uint32_t *height,
                  uint32_t *channels);

/* Decodes a PNG or a JPEG (chosen by imageio_sniff) into a new image in *out
 * (the caller owns it: release with image_fini).  PNG: any bit depth, colour
 * type and interlacing; palette and grey become RGB, transparency becomes
 * RGBA, 16-bit samples keep their high byte.  JPEG: grey and YCbCr become RGB
 * (CMYK is refused); warnings about corrupt data are errors.  lim (NULL =
 * defaults) is checked against the header before pixels are allocated.
 * Errors: EINVAL (not PNG/JPEG, corrupt, truncated, over the limits; reason
 * in err), ENOMEM.  *out is written only on success. */
int imageio_decode(const uint8_t *data, size_t len, const struct image_limits *lim,
                   struct image *out, char *err, size_t err_cap);
int imageio_decode_png(const uint8_t *data, size_t len, const struct image_limits *lim,
                       struct image *out, char *err, size_t err_cap);
int imageio_decode_jpeg(const uint8_t *data, size_t len, const struct image_limits *lim,
                        struct image *out, char *err, size_t err_cap);

/* Validates raw pixels: len must be exactly width * height * channels
 * (channels 3 or 4) and the size within lim (NULL = defaults).  Returns 0 or
 * P2C2R_EINVAL with the reason in err.  Raw data needs no decoding: the
 * caller uses the bytes in place. */
int imageio_check_raw(size_t len, uint32_t width, uint32_t height, uint32_t channels,
                      const struct image_limits *lim, char *err, size_t err_cap);

/* Encodes im as PNG (8-bit RGB or RGBA, zlib level 0..9) into a new buffer:
 * on success *out (free with free()) holds *out_len bytes.  Deterministic for
 * a given libpng and zlib.  Errors: EINVAL (bad image or level), ENOMEM. */
int imageio_encode_png(const struct image *im, int level, uint8_t **out, size_t *out_len,
                       char *err, size_t err_cap);

/* Encodes im as a baseline JPEG of quality 1..100 (4:2:0, integer DCT) into a
 * new buffer, as imageio_encode_png does.  JPEG has no alpha: an RGBA image's
 * alpha channel is dropped.  Errors: EINVAL, ENOMEM. */
int imageio_encode_jpeg(const struct image *im, int quality, uint8_t **out, size_t *out_len,
                        char *err, size_t err_cap);

#endif
