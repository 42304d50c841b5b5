/* upscale_resample.h - separable image resampling that reproduces Pillow's
 * Image.resize: nearest, bilinear, bicubic (a = -0.5) and Lanczos-3, on 8-bit
 * RGB and RGBA (RGBA is filtered premultiplied, as Pillow does).
 *
 * Pure computation: no I/O, no global state, reentrant, and deterministic
 * (integer arithmetic on coefficients computed with IEEE double operations
 * only), so the same call gives byte-identical pixels on every peer. */
#ifndef P2C2R_UPSCALE_RESAMPLE_H
#define P2C2R_UPSCALE_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

enum resample_filter {
    RESAMPLE_NEAREST = 0,
    RESAMPLE_BILINEAR = 1,
    RESAMPLE_BICUBIC = 2,
    RESAMPLE_LANCZOS3 = 3,
};
#define RESAMPLE_FILTER_COUNT 4

/* Scratch memory one resample may take (the rows of the vertical window).
 * Only extreme one-axis reductions of wide images come near it. */
#define RESAMPLE_SCRATCH_MAX ((size_t)256 << 20)

/* "nearest", "bilinear", "bicubic" or "lanczos3". */
const char *resample_filter_name(enum resample_filter f);

/* Parses a filter name (len bytes, not NUL-terminated): the four names above,
 * or "lanczos" for lanczos3.  Returns 0 and sets *out, or P2C2R_EINVAL. */
int resample_filter_parse(const char *s, size_t len, enum resample_filter *out);

/* Resamples the packed sw x sh image src into the packed dw x dh image dst,
 * both with `channels` (3 = RGB, 4 = RGBA with straight alpha) interleaved
 * 8-bit channels.  Borrows src (read only) and dst (every byte is written);
 * they must not overlap.  Equal sizes copy.  Sizes must be 1..IMAGE_MAX_SIDE
 * (imageio.h); the caller enforces the pixel-count limits.
 * Errors: EINVAL (bad sizes or channels, or scratch over
 * RESAMPLE_SCRATCH_MAX), ENOMEM.  Thread-safe: uses only its arguments. */
int resample_image(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw,
                   uint32_t dh, uint32_t channels, enum resample_filter filter);

/* resample_image that polls cancel (borrowed; NULL: never) before every
 * output row and returns P2C2R_ECANCELLED once it is set (rows not yet
 * reached are left unwritten). */
int resample_image_cancel(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw,
                          uint32_t dh, uint32_t channels, enum resample_filter filter,
                          const int *cancel);

/* Taps per output sample of filter along an axis resized from in to out
 * samples (the filter's support, widened by the reduction factor when
 * shrinking, on both sides; 1 for nearest): what each output pixel costs
 * per pass.  in and out are at least 1. */
uint32_t resample_taps(enum resample_filter filter, uint32_t in, uint32_t out);

#endif
