/* upscale.h - the upscale task: decode an image (PNG, JPEG or raw RGB/RGBA),
 * resample it to a new size with a Pillow-compatible filter, encode it (PNG,
 * JPEG or raw).  The executor `exec_upscale` wraps upscale_process; the CLI
 * (`p2c2r upscale --local`), the tests and the benchmark call this API
 * directly.  Parameters are documented in docs/tasks/upscale.md. */
#ifndef P2C2R_UPSCALE_H
#define P2C2R_UPSCALE_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"
#include "tasks/imageio.h"
#include "tasks/upscale_resample.h"

/* Largest input the executor accepts: 64 Mpixel of raw RGBA. */
#define UPSCALE_MAX_INPUT ((size_t)IMAGE_MAX_PIXELS * 4)
/* Largest scale factor; the output limits usually bind first. */
#define UPSCALE_MAX_SCALE 64

/* Parsed task parameters ("key=value\n" lines).  Zero-initialise, or use
 * upscale_params_parse. */
struct upscale_params {
    enum resample_filter filter; /* filter=, default bicubic (Pillow's default) */
    uint32_t width, height;      /* width=, height=: output size; 0 = not given */
    uint64_t scale_num;          /* scale= as scale_num / scale_den; 0 = not given */
    uint64_t scale_den;
    int has_format;              /* format= given; else the input's format */
    enum imageio_format format;
    int quality;                 /* quality=1..100 for JPEG output, default 90 */
    int compression;             /* compression=0..9 (zlib level) for PNG, default 6 */
    uint32_t in_width, in_height;/* in_width=, in_height=: the input is raw */
    uint32_t in_channels;        /* in_channels=3|4 for raw input, default 4 */
    const int *cancel;           /* not a param: the caller's cancel flag (NULL: never),
                                    polled before every output row of the resample */
};

/* What a task did (for logs and the CLI's summary). */
struct upscale_info {
    uint32_t in_width, in_height, out_width, out_height, channels;
    enum imageio_format in_format, out_format;
};

/* Parses a params block (len bytes, not NUL-terminated, may be NULL when len
 * is 0).  Unknown or repeated keys and malformed values are errors, so typos
 * do not pass silently.  Returns 0 and fills *out, or P2C2R_EINVAL with a
 * reason in err.  Thread-safe. */
int upscale_params_parse(const char *params, size_t len, struct upscale_params *out, char *err,
                         size_t err_cap);

/* Computes the output size for an in_w x in_h input: width and height as
 * given; one of them alone keeps the aspect ratio; scale multiplies both
 * (rounded half up, at least 1).  Returns 0, or P2C2R_EINVAL with a reason
 * (no size or scale given, both given, or the result over the limits). */
int upscale_output_size(const struct upscale_params *p, uint32_t in_w, uint32_t in_h, uint32_t *out_w,
                        uint32_t *out_h, char *err, size_t err_cap);

/* Allocates the output buffer of exactly n bytes; returns NULL when n is over
 * the caller's limit or memory is short.  Called at most once. */
typedef void *(*upscale_alloc_fn)(void *opaque, size_t n);

/* Runs the whole task on input (borrowed): decode, resample, encode, then
 * alloc(opaque, n) once for the result, which it fills.  info (may be NULL)
 * is written on success.  Errors: EINVAL (bad params, corrupt or oversized
 * input, output over the limits; reason in err), ETOOBIG (alloc refused the
 * size), ENOMEM.  Reentrant: no global state. */
int upscale_process(const struct upscale_params *p, const uint8_t *input, size_t input_len,
                    upscale_alloc_fn alloc, void *opaque, struct upscale_info *info, char *err,
                    size_t err_cap);

/* The executor: name "upscale", version 1, flags 0.  check validates the
 * params and a raw input's size; run calls upscale_process; estimate costs
 * in_pixels + out_pixels * (1 + taps_x + taps_y) (docs/tasks/upscale.md). */
extern const struct p2c2r_executor exec_upscale;

#endif
