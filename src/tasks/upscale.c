/* upscale.c - the upscale executor: parameters, the decode -> resample ->
 * encode pipeline, and the executor table entry.
 *
 * Parameters come from a table (key, kind, bounds, destination), so parsing,
 * validation and the documentation's list cannot drift apart; unknown and
 * repeated keys are errors.  The pipeline holds at most the decoded input,
 * the output pixels and (for PNG/JPEG output) the encoded bytes at once;
 * raw output is resampled straight into the buffer from alloc, with no copy.
 * All sizes are checked against the limits in imageio.h before anything
 * large is allocated.  Every failure returns a code with a one-line reason;
 * nothing here keeps state between calls. */
#include "tasks/upscale.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

#define DEFAULT_QUALITY 90
#define DEFAULT_COMPRESSION 6
#define SCALE_MAX_DECIMALS 6

enum param_kind { PK_U32, PK_INT, PK_FILTER, PK_FORMAT, PK_SCALE };

struct param_def {
    const char *key;
    enum param_kind kind;
    uint32_t min, max; /* PK_U32 and PK_INT bounds */
    size_t offset;     /* field in struct upscale_params */
};

static const struct param_def param_defs[] = {
    {"filter", PK_FILTER, 0, 0, offsetof(struct upscale_params, filter)},
    {"width", PK_U32, 1, IMAGE_MAX_SIDE, offsetof(struct upscale_params, width)},
    {"height", PK_U32, 1, IMAGE_MAX_SIDE, offsetof(struct upscale_params, height)},
    {"scale", PK_SCALE, 0, 0, offsetof(struct upscale_params, scale_num)},
    {"format", PK_FORMAT, 0, 0, offsetof(struct upscale_params, format)},
    {"quality", PK_INT, 1, 100, offsetof(struct upscale_params, quality)},
    {"compression", PK_INT, 0, 9, offsetof(struct upscale_params, compression)},
    {"in_width", PK_U32, 1, IMAGE_MAX_SIDE, offsetof(struct upscale_params, in_width)},
    {"in_height", PK_U32, 1, IMAGE_MAX_SIDE, offsetof(struct upscale_params, in_height)},
    {"in_channels", PK_U32, 3, 4, offsetof(struct upscale_params, in_channels)},
};
#define NPARAMS (sizeof(param_defs) / sizeof(param_defs[0]))

#include "tasks/task_cost.h"
#include "tasks/tasks.h"


/* Plain decimal digits only (no sign, no spaces), at most max. */
static int parse_u32(const char *s, size_t n, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v < min || v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* A decimal "I", "I.F" or ".F" with up to SCALE_MAX_DECIMALS fraction digits,
 * kept exact as num / den (den a power of ten), so output sizes come out the
 * same on every peer without floating point. */
static int parse_scale(const char *s, size_t n, uint64_t *num, uint64_t *den)
{
    uint64_t v = 0, d = 1;
    int digits = 0, frac = -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (s[i] < '0' || s[i] > '9' || digits >= 12)
            return -1;
        if (frac >= 0 && ++frac > SCALE_MAX_DECIMALS)
            return -1;
        if (frac > 0)
            d *= 10;
        v = v * 10 + (uint64_t)(s[i] - '0');
        digits++;
    }
    if (digits == 0 || v == 0 || v > (uint64_t)UPSCALE_MAX_SCALE * d)
        return -1;
    *num = v;
    *den = d;
    return 0;
}

int upscale_params_parse(const char *params, size_t len, struct upscale_params *out, char *err,
                         size_t err_cap)
{
    struct upscale_params p;
    memset(&p, 0, sizeof(p));
    p.filter = RESAMPLE_BICUBIC;
    p.quality = DEFAULT_QUALITY;
    p.compression = DEFAULT_COMPRESSION;
    p.in_channels = 4;
    unsigned seen = 0;
    const char *s = params, *end = params ? params + len : NULL;
    while (s && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *le = nl ? nl : end;
        const char *eq = memchr(s, '=', (size_t)(le - s));
        if (le == s) {
            s = le + 1; /* empty line */
            continue;
        }
        if (!eq) {
            tasks_errf(err, err_cap, "param line '%.*s' is not key=value", (int)(le - s > 40 ? 40 : le - s), s);
            return P2C2R_EINVAL;
        }
        size_t kl = (size_t)(eq - s), vl = (size_t)(le - eq - 1);
        const char *v = eq + 1;
        size_t i = 0;
        while (i < NPARAMS && !(strlen(param_defs[i].key) == kl && memcmp(param_defs[i].key, s, kl) == 0))
            i++;
        if (i == NPARAMS) {
            tasks_errf(err, err_cap,
                    "unknown param '%.*s' (known: filter, width, height, scale, format, quality, "
                    "compression, in_width, in_height, in_channels)",
                    (int)(kl > 40 ? 40 : kl), s);
            return P2C2R_EINVAL;
        }
        const struct param_def *d = &param_defs[i];
        if (seen & (1u << i)) {
            tasks_errf(err, err_cap, "param %s given twice", d->key);
            return P2C2R_EINVAL;
        }
        seen |= 1u << i;
        char *field = (char *)&p + d->offset;
        int bad = 0;
        switch (d->kind) {
        case PK_U32: {
            uint32_t u;
            bad = parse_u32(v, vl, d->min, d->max, &u) != 0;
            if (!bad)
                memcpy(field, &u, sizeof(u));
            break;
        }
        case PK_INT: {
            uint32_t u;
            bad = parse_u32(v, vl, d->min, d->max, &u) != 0;
            if (!bad) {
                int iv = (int)u;
                memcpy(field, &iv, sizeof(iv));
            }
            break;
        }
        case PK_FILTER:
            bad = resample_filter_parse(v, vl, &p.filter) != 0;
            if (bad) {
                tasks_errf(err, err_cap, "param filter must be nearest, bilinear, bicubic or lanczos3, not '%.*s'",
                        (int)(vl > 40 ? 40 : vl), v);
                return P2C2R_EINVAL;
            }
            break;
        case PK_FORMAT:
            bad = imageio_format_parse(v, vl, &p.format) != 0;
            if (bad) {
                tasks_errf(err, err_cap, "param format must be png, jpeg or raw, not '%.*s'", (int)(vl > 40 ? 40 : vl), v);
                return P2C2R_EINVAL;
            }
            p.has_format = 1;
            break;
        case PK_SCALE:
            bad = parse_scale(v, vl, &p.scale_num, &p.scale_den) != 0;
            if (bad) {
                tasks_errf(err, err_cap,
                        "param scale must be a decimal number above 0 and at most %d with at most %d "
                        "decimals, not '%.*s'",
                        UPSCALE_MAX_SCALE, SCALE_MAX_DECIMALS, (int)(vl > 40 ? 40 : vl), v);
                return P2C2R_EINVAL;
            }
            break;
        }
        if (bad) {
            tasks_errf(err, err_cap, "param %s must be a whole number from %u to %u, not '%.*s'", d->key, d->min,
                    d->max, (int)(vl > 40 ? 40 : vl), v);
            return P2C2R_EINVAL;
        }
        s = nl ? nl + 1 : end;
    }
    int has_size = p.width || p.height;
    if (has_size && p.scale_num) {
        tasks_errf(err, err_cap, "give either scale or width/height, not both");
        return P2C2R_EINVAL;
    }
    if (!has_size && !p.scale_num) {
        tasks_errf(err, err_cap, "give the output size: scale, or width and/or height");
        return P2C2R_EINVAL;
    }
    if (!p.in_width != !p.in_height) {
        tasks_errf(err, err_cap, "raw input needs both in_width and in_height");
        return P2C2R_EINVAL;
    }
    if (!p.in_width && (seen & (1u << 9))) {
        tasks_errf(err, err_cap, "in_channels is for raw input: give in_width and in_height too");
        return P2C2R_EINVAL;
    }
    *out = p;
    return 0;
}

/* round(a * b / c), halves up, for values that cannot overflow 64 bits. */
static uint64_t muldiv_round(uint64_t a, uint64_t b, uint64_t c)
{
    return (2 * a * b + c) / (2 * c);
}

int upscale_output_size(const struct upscale_params *p, uint32_t in_w, uint32_t in_h, uint32_t *out_w,
                        uint32_t *out_h, char *err, size_t err_cap)
{
    uint64_t w, h;
    if (in_w == 0 || in_h == 0 || in_w > IMAGE_MAX_SIDE || in_h > IMAGE_MAX_SIDE) {
        tasks_errf(err, err_cap, "input size %ux%u is out of range", in_w, in_h);
        return P2C2R_EINVAL;
    }
    if (p->scale_num) {
        if (p->width || p->height) {
            tasks_errf(err, err_cap, "give either scale or width/height, not both");
            return P2C2R_EINVAL;
        }
        w = muldiv_round(in_w, p->scale_num, p->scale_den);
        h = muldiv_round(in_h, p->scale_num, p->scale_den);
    } else if (p->width && p->height) {
        w = p->width;
        h = p->height;
    } else if (p->width) {
        w = p->width;
        h = muldiv_round(in_h, p->width, in_w);
    } else if (p->height) {
        h = p->height;
        w = muldiv_round(in_w, p->height, in_h);
    } else {
        tasks_errf(err, err_cap, "give the output size: scale, or width and/or height");
        return P2C2R_EINVAL;
    }
    if (w == 0)
        w = 1;
    if (h == 0)
        h = 1;
    if (w > UINT32_MAX || h > UINT32_MAX ||
        image_check_size((uint32_t)w, (uint32_t)h, NULL, NULL, 0) != 0) {
        tasks_errf(err, err_cap,
                "output size %llux%llu is over the limit (%u pixels a side, %llu pixels in all)",
                (unsigned long long)w, (unsigned long long)h, IMAGE_MAX_SIDE,
                (unsigned long long)IMAGE_MAX_PIXELS);
        return P2C2R_EINVAL;
    }
    *out_w = (uint32_t)w;
    *out_h = (uint32_t)h;
    return 0;
}

static void explain_resample_error(int rc, uint32_t sw, uint32_t sh, uint32_t dw, uint32_t dh, char *err,
                                   size_t err_cap)
{
    if (rc == P2C2R_ECANCELLED)
        tasks_errf(err, err_cap, "cancelled while resizing %ux%u to %ux%u", sw, sh, dw, dh);
    else if (rc == P2C2R_ENOMEM)
        tasks_errf(err, err_cap, "out of memory resizing %ux%u to %ux%u", sw, sh, dw, dh);
    else
        tasks_errf(err, err_cap, "resizing %ux%u to %ux%u needs more than %zu MiB of scratch memory", sw, sh, dw,
                dh, RESAMPLE_SCRATCH_MAX >> 20);
}

int upscale_process(const struct upscale_params *p, const uint8_t *input, size_t input_len,
                    upscale_alloc_fn alloc, void *opaque, struct upscale_info *info, char *err,
                    size_t err_cap)
{
    struct image src = {0}, dst = {0};
    uint8_t *enc = NULL;
    size_t enc_len = 0;
    const uint8_t *spx;
    uint32_t sw, sh, ch, dw, dh;
    enum imageio_format in_fmt;
    int rc;

    if (p->in_width) {
        in_fmt = IMAGEIO_RAW;
        rc = imageio_check_raw(input_len, p->in_width, p->in_height, p->in_channels, NULL, err, err_cap);
        if (rc != 0)
            return rc;
        spx = input;
        sw = p->in_width;
        sh = p->in_height;
        ch = p->in_channels;
    } else {
        in_fmt = imageio_sniff(input, input_len);
        rc = imageio_decode(input, input_len, NULL, &src, err, err_cap);
        if (rc != 0)
            return rc;
        spx = src.px;
        sw = src.width;
        sh = src.height;
        ch = src.channels;
    }
    enum imageio_format out_fmt = p->has_format ? p->format : in_fmt;
    rc = upscale_output_size(p, sw, sh, &dw, &dh, err, err_cap);
    if (rc != 0)
        goto release;

    if (out_fmt == IMAGEIO_RAW) {
        size_t n = (size_t)dw * dh * ch;
        uint8_t *o = alloc(opaque, n);
        if (!o) {
            tasks_errf(err, err_cap, "output of %zu bytes (%ux%u raw) is over the output limit: ask for png or jpeg, "
                    "or a smaller size", n, dw, dh);
            rc = P2C2R_ETOOBIG;
            goto release;
        }
        rc = resample_image_cancel(spx, sw, sh, o, dw, dh, ch, p->filter, p->cancel);
        if (rc != 0) {
            explain_resample_error(rc, sw, sh, dw, dh, err, err_cap);
            goto release;
        }
    } else {
        rc = image_init(&dst, dw, dh, ch, NULL);
        if (rc == 0)
            rc = resample_image_cancel(spx, sw, sh, dst.px, dw, dh, ch, p->filter, p->cancel);
        if (rc != 0) {
            explain_resample_error(rc, sw, sh, dw, dh, err, err_cap);
            goto release;
        }
        /* The decoded input is no longer needed: free it before encoding. */
        image_fini(&src);
        rc = out_fmt == IMAGEIO_PNG ? imageio_encode_png(&dst, p->compression, &enc, &enc_len, err, err_cap)
                                    : imageio_encode_jpeg(&dst, p->quality, &enc, &enc_len, err, err_cap);
        if (rc != 0)
            goto release;
        uint8_t *o = alloc(opaque, enc_len);
        if (!o) {
            tasks_errf(err, err_cap, "output of %zu bytes (%ux%u %s) is over the output limit", enc_len, dw, dh,
                    imageio_format_name(out_fmt));
            rc = P2C2R_ETOOBIG;
            goto release;
        }
        memcpy(o, enc, enc_len);
    }
    if (info) {
        info->in_width = sw;
        info->in_height = sh;
        info->out_width = dw;
        info->out_height = dh;
        info->channels = ch;
        info->in_format = in_fmt;
        info->out_format = out_fmt;
    }
release:
    free(enc);
    image_fini(&dst);
    image_fini(&src);
    return rc;
}

/* ---- executor -------------------------------------------------------------- */

static int upscale_check(const struct p2c2r_exec_call *c)
{
    struct upscale_params p;
    int rc = upscale_params_parse(c->params, c->params_len, &p, c->err, c->err_cap);
    if (rc != 0)
        return rc;
    uint32_t w, h, ch, ow, oh;
    if (p.in_width) {
        rc = imageio_check_raw(c->input_len, p.in_width, p.in_height, p.in_channels, NULL, c->err, c->err_cap);
        if (rc != 0)
            return rc;
        w = p.in_width;
        h = p.in_height;
    } else if (imageio_probe(c->input, c->input_len, &w, &h, &ch) != 0) {
        tasks_errf(c->err, c->err_cap, "input is not a readable PNG or JPEG (for raw pixels give in_width and in_height)");
        return P2C2R_EINVAL;
    } else if ((rc = image_check_size(w, h, NULL, c->err, c->err_cap)) != 0) {
        return rc;
    }
    return upscale_output_size(&p, w, h, &ow, &oh, c->err, c->err_cap);
}

static void *exec_alloc(void *opaque, size_t n)
{
    struct p2c2r_exec_call *c = opaque;
    return c->alloc_output(c, n);
}

static int upscale_run(struct p2c2r_exec_call *c)
{
    struct upscale_params p;
    if (c->err && c->err_cap)
        c->err[0] = '\0';
    int rc = upscale_params_parse(c->params, c->params_len, &p, c->err, c->err_cap);
    if (rc != 0)
        return rc;
    p.cancel = c->cancel;
    return upscale_process(&p, c->input, c->input_len, exec_alloc, c, NULL, c->err, c->err_cap);
}

/* Reads a JPEG's frame size from its SOF marker without libjpeg (which
 * allocates): walks the marker segments from the start.  Returns 0 or -1. */
static int jpeg_peek_size(const uint8_t *d, size_t len, uint32_t *w, uint32_t *h)
{
    size_t pos = 2;
    if (len < 2 || d[0] != 0xFF || d[1] != 0xD8)
        return -1;
    while (pos + 9 <= len) {
        if (d[pos] != 0xFF)
            return -1;
        uint8_t m = d[pos + 1];
        size_t seg = (size_t)d[pos + 2] << 8 | d[pos + 3];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            *h = (uint32_t)d[pos + 5] << 8 | d[pos + 6];
            *w = (uint32_t)d[pos + 7] << 8 | d[pos + 8];
            return *w && *h ? 0 : -1;
        }
        if (seg < 2)
            return -1;
        pos += 2 + seg;
    }
    return -1;
}

/* in_pixels + out_pixels * (1 + taps_x + taps_y): decoding reads every
 * input pixel; each output pixel takes taps_x horizontal and taps_y
 * vertical filter taps (resample_taps) and is encoded once.  The input size
 * comes from in_width/in_height (raw), a PNG's IHDR or a JPEG's SOF, else
 * counts as a square of input_len pixels; params that do not parse count
 * as scale=1 with bicubic. */
static uint64_t upscale_estimate(const struct p2c2r_exec_call *c)
{
    struct upscale_params p;
    uint32_t w = 0, h = 0, ch, ow, oh;
    if (upscale_params_parse(c->params, c->params_len, &p, NULL, 0) != 0) {
        memset(&p, 0, sizeof(p));
        p.filter = RESAMPLE_BICUBIC;
    }
    if (p.in_width) {
        w = p.in_width;
        h = p.in_height;
    } else if (!c->input || (imageio_sniff(c->input, c->input_len) == IMAGEIO_PNG
                                 ? imageio_probe(c->input, c->input_len, &w, &h, &ch) != 0
                                 : jpeg_peek_size(c->input, c->input_len, &w, &h) != 0)) {
        uint64_t side = 1;
        while (side < IMAGE_MAX_SIDE && side * side < c->input_len)
            side++;
        w = h = (uint32_t)side;
    }
    w = w < 1 ? 1 : w > IMAGE_MAX_SIDE ? IMAGE_MAX_SIDE : w;
    h = h < 1 ? 1 : h > IMAGE_MAX_SIDE ? IMAGE_MAX_SIDE : h;
    if (upscale_output_size(&p, w, h, &ow, &oh, NULL, 0) != 0) {
        ow = w;
        oh = h;
    }
    uint64_t taps = 1 + (uint64_t)resample_taps(p.filter, w, ow) + resample_taps(p.filter, h, oh);
    return cost_clamp(cost_add((uint64_t)w * h, cost_mul((uint64_t)ow * oh, taps)));
}

const struct p2c2r_executor exec_upscale = {"upscale", 1, P2C2R_EXEC_DETERMINISTIC, UPSCALE_MAX_INPUT,
                                          upscale_check, upscale_run, upscale_estimate};
