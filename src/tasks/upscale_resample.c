/* upscale_resample.c - the resampler behind the upscale executor.
 *
 * It reproduces Pillow's Image.resize (libImaging/Resample.c and the nearest
 * path of Geometry.c) so that results can be checked against Pillow:
 *   - per axis, each output sample has a window of input samples and
 *     weights: the filter is centred on (i + 0.5) * in / out, stretched by the
 *     scale when reducing, evaluated in double, normalised to sum 1, then
 *     rounded to fixed point with 22 fractional bits;
 *   - a horizontal pass, whose results are clipped to 8 bits, then a vertical
 *     pass over them (a pass is skipped when its axis keeps its size);
 *   - RGBA is premultiplied (x * a / 255, rounded) before filtering and
 *     divided back (truncating) after, except for nearest.
 * The integer arithmetic is exact, so output does not depend on the order of
 * the additions or on which vector instructions the compiler picked; the
 * Lanczos kernel uses our own sin(pi x) (IEEE + and * only) rather than libm,
 * so coefficients are the same on every peer.
 *
 * Memory: the horizontal pass fills rows of a ring that holds the vertical
 * window (at most ksize rows of dw * channels bytes), computed just before
 * they are needed and reused while the window slides, so the working set is
 * a few rows instead of a whole intermediate image.
 *
 * Speed: windows are padded to a fixed tap count per axis (zero weights), so
 * the kernels are instantiated for 1..8 taps with unrolled, branch-free
 * loops; the horizontal pass reads a source row widened once to int32 lanes
 * and sums two output pixels per 8-lane vector; the vertical pass runs over
 * a row's bytes in blocks with constant trip counts, which GCC and Clang
 * vectorise at -O2.  The vector code uses GNU C vector extensions and
 * __builtin_shufflevector (GCC 12, Clang); on x86-64 the two hot kernels are
 * also built for AVX2 and chosen at load time (same results: the arithmetic
 * is integer). */
#include "tasks/upscale_resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"
#include "tasks/imageio.h"
#include "tasks/tasks.h"

#if defined(__clang__)
/* Fused multiply-adds would change coefficient bits from one CPU to the
 * next; GCC never contracts in ISO C mode (-std=c17). */
#pragma STDC FP_CONTRACT OFF
#endif

#define PRECISION_BITS 22
#define HALF (1 << (PRECISION_BITS - 1))

/* Builds the hot kernels twice on x86-64 (baseline SSE2 and AVX2) and picks
 * one at load time; elsewhere one generic build. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(P2C2R_NO_CLONES)
#define HOT_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define HOT_CLONES
#endif

typedef int32_t v4i32 __attribute__((vector_size(16)));
typedef uint8_t v4u8 __attribute__((vector_size(4)));
typedef int32_t v8i32 __attribute__((vector_size(32)));
typedef uint8_t v8u8 __attribute__((vector_size(8)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));
typedef uint8_t v32u8 __attribute__((vector_size(32)));

const char *resample_filter_name(enum resample_filter f)
{
    switch (f) {
    case RESAMPLE_NEAREST: return "nearest";
    case RESAMPLE_BILINEAR: return "bilinear";
    case RESAMPLE_BICUBIC: return "bicubic";
    case RESAMPLE_LANCZOS3: return "lanczos3";
    }
    return "?";
}

int resample_filter_parse(const char *s, size_t len, enum resample_filter *out)
{
    static const struct {
        const char *name;
        enum resample_filter f;
    } names[] = {{"nearest", RESAMPLE_NEAREST},   {"bilinear", RESAMPLE_BILINEAR},
                 {"bicubic", RESAMPLE_BICUBIC},   {"lanczos3", RESAMPLE_LANCZOS3},
                 {"lanczos", RESAMPLE_LANCZOS3}};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i].name) == len && memcmp(names[i].name, s, len) == 0) {
            *out = names[i].f;
            return 0;
        }
    }
    return P2C2R_EINVAL;
}

/* ---- filter kernels ------------------------------------------------------ */

static double filter_bilinear(double x)
{
    x = fabs(x);
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Keys' cubic convolution with a = -0.5 (Pillow's BICUBIC). */
static double filter_bicubic(double x)
{
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0)
        return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* sin(pi * x) from + and * alone: x is reduced exactly to r in [-0.5, 0.5]
 * around the nearest integer n, then sin(pi r) (times -1 for odd n) is its
 * Taylor series to the y^23 term, whose remainder is below 1e-19. */
static double sin_pi(double x)
{
    double n = floor(x + 0.5);
    double r = x - n;
    double y = r * M_PI, y2 = y * y;
    static const double c[] = {
        -1.0 / 6.0,
        1.0 / 120.0,
        -1.0 / 5040.0,
        1.0 / 362880.0,
        -1.0 / 39916800.0,
        1.0 / 6227020800.0,
        -1.0 / 1307674368000.0,
        1.0 / 355687428096000.0,
        -1.0 / 121645100408832000.0,
        1.0 / 51090942171709440000.0,
        -1.0 / 25852016738884976640000.0,
    };
    double p = c[10];
    for (int i = 9; i >= 0; i--)
        p = p * y2 + c[i];
    double s = y + y * y2 * p;
    return fmod(n, 2.0) != 0.0 ? -s : s;
}

static double sinc(double x)
{
    if (x == 0.0)
        return 1.0;
    return sin_pi(x) / (x * M_PI);
}

static double filter_lanczos3(double x)
{
    if (-3.0 <= x && x < 3.0)
        return sinc(x) * sinc(x / 3.0);
    return 0.0;
}

struct filter_def {
    double (*fn)(double);
    double support;
};

static const struct filter_def filters[RESAMPLE_FILTER_COUNT] = {
    [RESAMPLE_NEAREST] = {NULL, 0.0},
    [RESAMPLE_BILINEAR] = {filter_bilinear, 1.0},
    [RESAMPLE_BICUBIC] = {filter_bicubic, 2.0},
    [RESAMPLE_LANCZOS3] = {filter_lanczos3, 3.0},
};

/* ---- coefficients ---------------------------------------------------------- */

/* One axis: for output sample i, taps n[i] input samples from lo[i] with the
 * weights k[i * ksize ...] (fixed point; the rest of the row is zero). */
struct axis {
    int in, out, ksize, maxn;
    int32_t *lo, *n, *k;
    /* For the horizontal pass when maxn <= HPAIR_MAX_TAPS: the weights of
     * outputs 2j and 2j+1 for tap t, each repeated for the four channels,
     * at kpair[(j * maxn + t) * 8], so one vector load feeds two pixels. */
    int32_t *kpair;
};

static void axis_fini(struct axis *a)
{
    free(a->lo);
    free(a->n);
    free(a->k);
    free(a->kpair);
    memset(a, 0, sizeof(*a));
}

static int axis_init(struct axis *a, const struct filter_def *f, int in, int out)
{
    memset(a, 0, sizeof(*a));
    double scale = (double)in / out, fscale = scale < 1.0 ? 1.0 : scale;
    double support = f->support * fscale, ss = 1.0 / fscale;
    int ksize = (int)ceil(support) * 2 + 1;
    a->in = in;
    a->out = out;
    a->ksize = ksize;
    a->lo = malloc(sizeof(int32_t) * (size_t)out);
    a->n = malloc(sizeof(int32_t) * (size_t)out);
    a->k = calloc((size_t)out * (size_t)ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * (size_t)ksize);
    if (!a->lo || !a->n || !a->k || !w) {
        free(w);
        axis_fini(a);
        return P2C2R_ENOMEM;
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale, sum = 0.0;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5);
        if (lo < 0)
            lo = 0;
        if (hi > in)
            hi = in;
        int n = hi - lo;
        for (int x = 0; x < n; x++) {
            w[x] = f->fn((x + lo - center + 0.5) * ss);
            sum += w[x];
        }
        int32_t *k = a->k + (size_t)i * (size_t)ksize;
        for (int x = 0; x < n; x++) {
            double v = sum != 0.0 ? w[x] / sum : w[x];
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
        }
        a->lo[i] = lo;
        a->n[i] = n;
        if (n > a->maxn)
            a->maxn = n;
    }
    free(w);
    return 0;
}

#define HPAIR_MAX_TAPS 8

static int axis_make_pairs(struct axis *a)
{
    if (a->maxn > HPAIR_MAX_TAPS)
        return 0;
    size_t npairs = (size_t)a->out / 2, taps = (size_t)a->maxn;
    a->kpair = malloc(sizeof(int32_t) * 8 * taps * (npairs ? npairs : 1));
    if (!a->kpair)
        return P2C2R_ENOMEM;
    for (size_t j = 0; j < npairs; j++) {
        const int32_t *k0 = a->k + 2 * j * (size_t)a->ksize, *k1 = k0 + a->ksize;
        for (size_t t = 0; t < taps; t++) {
            int32_t *d = a->kpair + (j * taps + t) * 8;
            for (int c = 0; c < 4; c++) {
                d[c] = k0[t];
                d[4 + c] = k1[t];
            }
        }
    }
    return 0;
}

/* ---- pixel kernels ------------------------------------------------------- */

static inline uint8_t clip8(int32_t v)
{
    /* Arithmetic shift of a negative sum gives a negative value: clipped. */
    v >>= PRECISION_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Pillow's MULDIV255: x * a / 255 rounded, without a division. */
static inline uint8_t muldiv255(unsigned x, unsigned a)
{
    unsigned t = x * a + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

/* Widens one source row to four int32 lanes a pixel for the horizontal
 * pass: RGB gets a zero fourth lane, RGBA is premultiplied.  Widening once
 * per input pixel here, instead of once per tap in the pass, leaves the
 * pass with plain vector loads. */
static void row_to4(int32_t *restrict out, const uint8_t *restrict in, int w, int channels)
{
    if (channels == 3) {
        for (int x = 0; x < w; x++) {
            out[4 * x + 0] = in[3 * x + 0];
            out[4 * x + 1] = in[3 * x + 1];
            out[4 * x + 2] = in[3 * x + 2];
            out[4 * x + 3] = 0;
        }
    } else {
        for (int x = 0; x < w; x++) {
            unsigned a = in[4 * x + 3];
            out[4 * x + 0] = muldiv255(in[4 * x + 0], a);
            out[4 * x + 1] = muldiv255(in[4 * x + 1], a);
            out[4 * x + 2] = muldiv255(in[4 * x + 2], a);
            out[4 * x + 3] = (int32_t)a;
        }
    }
}

static void row_premultiply(uint8_t *restrict out, const uint8_t *restrict in, int w)
{
    for (int x = 0; x < w; x++) {
        unsigned a = in[4 * x + 3];
        out[4 * x + 0] = muldiv255(in[4 * x + 0], a);
        out[4 * x + 1] = muldiv255(in[4 * x + 1], a);
        out[4 * x + 2] = muldiv255(in[4 * x + 2], a);
        out[4 * x + 3] = (uint8_t)a;
    }
}

/* Undoes the premultiplication like Pillow: min(255, x * 255 / a) with a
 * truncating division, done as a multiply by recip[a] = ceil(2^24 / a), which
 * is exact for every x * 255 <= 65025 (checked exhaustively). */
static void row_unpremultiply(uint8_t *row, int w, const uint32_t *recip)
{
    for (int x = 0; x < w; x++) {
        unsigned a = row[4 * x + 3];
        if (a == 0 || a == 255)
            continue;
        for (int c = 0; c < 3; c++) {
            uint64_t q = ((uint64_t)(row[4 * x + c] * 255u) * recip[a]) >> 24;
            row[4 * x + c] = (uint8_t)(q > 255 ? 255 : q);
        }
    }
}

/* Horizontal pass over one widened row (row_to4): each output pixel sums
 * its window with all four channels in one vector, two pixels in an 8-lane
 * vector where the weights come in pairs.  Every window is taken as exactly
 * `taps` long (the axis's widest): the weights past a window's own length
 * are zero, and the row is padded with zeroed pixels past its end, so a
 * constant trip count changes no result and lets the loop be unrolled
 * without a bounds check.  Inlined into hpass for each common (taps,
 * channels) pair, so both are constants. */
static inline __attribute__((always_inline)) v4u8 clamp4(v4i32 acc)
{
    const v4i32 zero = {0, 0, 0, 0}, max255 = {255, 255, 255, 255};
    acc >>= PRECISION_BITS;
    acc &= ~(acc < zero); /* negative -> 0 */
    v4i32 over = acc > max255;
    acc = (acc & ~over) | (max255 & over);
    /* Every lane is 0..255 now: keep the low byte of each (little-endian). */
    return __builtin_shufflevector((v16u8)acc, (v16u8)acc, 0, 4, 8, 12);
}

static inline __attribute__((always_inline)) void hpass_one(uint8_t *restrict out, const int32_t *restrict in4,
                                                            const struct axis *ax, int x, const int taps,
                                                            const int channels, const int last)
{
    const int32_t *k = ax->k + (size_t)x * (size_t)ax->ksize;
    const int32_t *p = in4 + 4 * (size_t)ax->lo[x];
    v4i32 acc = {HALF, HALF, HALF, HALF};
#pragma GCC unroll 8
    for (int t = 0; t < taps; t++) {
        v4i32 v;
        memcpy(&v, p + 4 * t, sizeof(v));
        acc += v * k[t];
    }
    v4u8 o = clamp4(acc);
    /* RGB stores 4 bytes too, the 4th overwritten by the next pixel, except
     * for the row's last pixel. */
    memcpy(out + (size_t)x * (size_t)channels, &o, channels == 4 || !last ? 4 : 3);
}

static inline __attribute__((always_inline)) void hpass_fixed(uint8_t *restrict out, const int32_t *restrict in4,
                                                              const struct axis *ax, const int taps,
                                                              const int channels)
{
    const int nout = ax->out;
    int x = 0;
    if (ax->kpair) {
        const v8i32 zero = {0}, max255 = {255, 255, 255, 255, 255, 255, 255, 255};
        /* RGB pairs write 8 bytes for 6: the last pair goes to hpass_one. */
        const int pairs_end = channels == 4 ? nout - 1 : nout - 2;
        for (; x < pairs_end; x += 2) {
            const int32_t *p0 = in4 + 4 * (size_t)ax->lo[x], *p1 = in4 + 4 * (size_t)ax->lo[x + 1];
            const int32_t *kp = ax->kpair + (size_t)(x / 2) * (size_t)taps * 8;
            v8i32 acc = {HALF, HALF, HALF, HALF, HALF, HALF, HALF, HALF};
#pragma GCC unroll 8
            for (int t = 0; t < taps; t++) {
                v4i32 a, b;
                v8i32 kv;
                memcpy(&a, p0 + 4 * t, sizeof(a));
                memcpy(&b, p1 + 4 * t, sizeof(b));
                memcpy(&kv, kp + 8 * t, sizeof(kv));
                acc += __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7) * kv;
            }
            acc >>= PRECISION_BITS;
            acc &= ~(acc < zero);
            v8i32 over = acc > max255;
            acc = (acc & ~over) | (max255 & over);
            uint8_t *d = out + (size_t)x * (size_t)channels;
            if (channels == 4) {
                v8u8 o = __builtin_shufflevector((v32u8)acc, (v32u8)acc, 0, 4, 8, 12, 16, 20, 24, 28);
                memcpy(d, &o, 8);
            } else {
                /* R G B of both pixels, then two bytes the next pair
                 * overwrites. */
                v8u8 o = __builtin_shufflevector((v32u8)acc, (v32u8)acc, 0, 4, 8, 16, 20, 24, 28, 28);
                memcpy(d, &o, 8);
            }
        }
    }
    for (; x < nout; x++)
        hpass_one(out, in4, ax, x, taps, channels, x + 1 == nout);
}

HOT_CLONES
static void hpass(uint8_t *restrict out, int channels, const int32_t *restrict in4, const struct axis *ax)
{
    /* One case per window length that upscaling and mild reductions use;
     * longer windows run the generic loop. */
#define HPASS_CASE(n)                                                  \
    case n:                                                            \
        if (channels == 4)                                             \
            hpass_fixed(out, in4, ax, n, 4);                           \
        else                                                           \
            hpass_fixed(out, in4, ax, n, 3);                           \
        return;
    switch (ax->maxn) {
        HPASS_CASE(1)
        HPASS_CASE(2)
        HPASS_CASE(3)
        HPASS_CASE(4)
        HPASS_CASE(5)
        HPASS_CASE(6)
        HPASS_CASE(7)
        HPASS_CASE(8)
    default:
        if (channels == 4)
            hpass_fixed(out, in4, ax, ax->maxn, 4);
        else
            hpass_fixed(out, in4, ax, ax->maxn, 3);
    }
#undef HPASS_CASE
}

/* Vertical pass: out[i] = clip(sum over taps of rows[t][i] * k[t]), i < len.
 * Work goes in blocks of VBLK bytes with constant trip counts, which
 * vectorise without a scalar epilogue.  Up to VFIXED taps the sum for a
 * block stays in registers (taps a constant after inlining); longer windows
 * (strong reductions) accumulate in an L1-sized array two rows at a time. */
#define VBLK 256
#define VFIXED 8

/* The sum of up to VFIXED terms, written out so that with `taps` constant
 * the compiler sees straight-line code it can vectorise over i. */
#define VSUM(i)                                                                 \
    (HALF + r0[i] * k0 + (taps > 1 ? r1[i] * k1 : 0) + (taps > 2 ? r2[i] * k2 : 0) + \
     (taps > 3 ? r3[i] * k3 : 0) + (taps > 4 ? r4[i] * k4 : 0) + (taps > 5 ? r5[i] * k5 : 0) + \
     (taps > 6 ? r6[i] * k6 : 0) + (taps > 7 ? r7[i] * k7 : 0))

static inline __attribute__((always_inline)) void vpass_fixed(uint8_t *restrict out, const uint8_t *const *rows,
                                                              const int32_t *k, size_t len, const int taps)
{
    /* Unused terms point at row 0 with weight 0 and are compiled out. */
#define VROW(t) const uint8_t *restrict r##t = rows[taps > t ? t : 0]; const int32_t k##t = taps > t ? k[t] : 0
    VROW(0);
    VROW(1);
    VROW(2);
    VROW(3);
    VROW(4);
    VROW(5);
    VROW(6);
    VROW(7);
#undef VROW
    size_t i0 = 0;
    for (; i0 + VBLK <= len; i0 += VBLK) {
        uint8_t *restrict o = out + i0;
        for (int i = 0; i < VBLK; i++) {
            /* Clamped in two steps: GCC vectorises this form far better. */
            int32_t v = VSUM(i0 + i) >> PRECISION_BITS;
            v = v > 0 ? v : 0;
            o[i] = (uint8_t)(v < 255 ? v : 255);
        }
    }
    /* What is left in blocks of 32, so a short row is vectorised too. */
    for (; i0 + 32 <= len; i0 += 32) {
        uint8_t *restrict o = out + i0;
        for (int i = 0; i < 32; i++) {
            int32_t v = VSUM(i0 + i) >> PRECISION_BITS;
            v = v > 0 ? v : 0;
            o[i] = (uint8_t)(v < 255 ? v : 255);
        }
    }
    for (size_t i = i0; i < len; i++)
        out[i] = clip8(VSUM(i));
}
#undef VSUM

static void vpass_long(uint8_t *restrict out, const uint8_t *const *rows, const int32_t *k, int n, size_t len)
{
    int32_t acc[VBLK];
    size_t i0 = 0;
    for (; i0 + VBLK <= len; i0 += VBLK) {
        for (int i = 0; i < VBLK; i++)
            acc[i] = HALF;
        int t = 0;
        for (; t + 1 < n; t += 2) {
            const uint8_t *restrict r0 = rows[t] + i0, *restrict r1 = rows[t + 1] + i0;
            const int32_t k0 = k[t], k1 = k[t + 1];
            for (int i = 0; i < VBLK; i++)
                acc[i] += r0[i] * k0 + r1[i] * k1;
        }
        if (t < n) {
            const uint8_t *restrict r0 = rows[t] + i0;
            const int32_t k0 = k[t];
            for (int i = 0; i < VBLK; i++)
                acc[i] += r0[i] * k0;
        }
        for (int i = 0; i < VBLK; i++) {
            int32_t v = acc[i] >> PRECISION_BITS;
            v = v > 0 ? v : 0;
            out[i0 + i] = (uint8_t)(v < 255 ? v : 255);
        }
    }
    for (size_t i = i0; i < len; i++) {
        int32_t s = HALF;
        for (int t = 0; t < n; t++)
            s += rows[t][i] * k[t];
        out[i] = clip8(s);
    }
}

HOT_CLONES
static void vpass(uint8_t *restrict out, const uint8_t *const *rows, const int32_t *k, int n, size_t len)
{
    switch (n) {
    case 1: vpass_fixed(out, rows, k, len, 1); return;
    case 2: vpass_fixed(out, rows, k, len, 2); return;
    case 3: vpass_fixed(out, rows, k, len, 3); return;
    case 4: vpass_fixed(out, rows, k, len, 4); return;
    case 5: vpass_fixed(out, rows, k, len, 5); return;
    case 6: vpass_fixed(out, rows, k, len, 6); return;
    case 7: vpass_fixed(out, rows, k, len, 7); return;
    case 8: vpass_fixed(out, rows, k, len, 8); return;
    default: vpass_long(out, rows, k, n, len); return;
    }
}

/* ---- nearest --------------------------------------------------------------- */

/* Pillow maps output i to input (int)(s/2 + i*s), s = in/out, accumulating
 * the position in double one step at a time; we do the same so that the
 * picks agree where a position lands exactly on a pixel edge. */
static void nearest_map(int32_t *map, int in, int out)
{
    double step = (double)in / out, pos = step * 0.5;
    for (int i = 0; i < out; i++) {
        int v = (int)pos;
        map[i] = v < 0 ? 0 : v >= in ? in - 1 : v;
        pos += step;
    }
}

static int resample_nearest(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh, int ch,
                            const int *cancel)
{
    int32_t *mx = malloc(sizeof(int32_t) * (size_t)dw), *my = malloc(sizeof(int32_t) * (size_t)dh);
    if (!mx || !my) {
        free(mx);
        free(my);
        return P2C2R_ENOMEM;
    }
    nearest_map(mx, sw, dw);
    nearest_map(my, sh, dh);
    size_t sstride = (size_t)sw * ch, dstride = (size_t)dw * ch;
    for (int y = 0; y < dh; y++) {
        uint8_t *o = dst + (size_t)y * dstride;
        if (tasks_cancelled(cancel)) {
            free(mx);
            free(my);
            return P2C2R_ECANCELLED;
        }
        if (y > 0 && my[y] == my[y - 1]) {
            memcpy(o, o - dstride, dstride);
            continue;
        }
        const uint8_t *r = src + (size_t)my[y] * sstride;
        if (ch == 4) {
            for (int x = 0; x < dw; x++)
                memcpy(o + 4 * (size_t)x, r + 4 * (size_t)mx[x], 4);
        } else {
            /* 4-byte copies that overlap by one are faster than 3 single
             * bytes; the 4th byte read is the next pixel's, which exists
             * except at the end of the last source row. */
            int x = 0;
            if (my[y] + 1 < sh)
                for (; x + 1 < dw; x++)
                    memcpy(o + 3 * (size_t)x, r + 3 * (size_t)mx[x], 4);
            for (; x < dw; x++)
                memcpy(o + 3 * (size_t)x, r + 3 * (size_t)mx[x], 3);
        }
    }
    free(mx);
    free(my);
    return 0;
}

/* ---- driver ---------------------------------------------------------------- */

struct resampler {
    const uint8_t *src;
    int sw, sh, dw, dh, ch;
    int need_h, need_v;
    struct axis ax, ay;
    int32_t *row4;          /* one source row widened by row_to4, plus padding */
    uint8_t *ring;          /* ring_cap intermediate rows of dw * ch bytes */
    int ring_cap;
    int next_row;           /* next intermediate row to compute */
    const uint8_t **rows;   /* intermediate row pointers, by row % ring_cap */
    const uint8_t **win;    /* the current vertical window */
    uint32_t recip[256];
};

/* Computes intermediate row r (source row r, resampled horizontally if the
 * width changes, premultiplied for RGBA) and records where it is. */
static void make_row(struct resampler *rs, int r)
{
    const uint8_t *srow = rs->src + (size_t)r * (size_t)rs->sw * (size_t)rs->ch;
    int slot = r % rs->ring_cap;
    uint8_t *buf = rs->ring + (size_t)slot * (size_t)rs->dw * (size_t)rs->ch;
    if (rs->need_h) {
        row_to4(rs->row4, srow, rs->sw, rs->ch);
        hpass(buf, rs->ch, rs->row4, &rs->ax);
        rs->rows[slot] = buf;
    } else if (rs->ch == 4) {
        row_premultiply(buf, srow, rs->sw);
        rs->rows[slot] = buf;
    } else {
        rs->rows[slot] = srow; /* RGB at the same width: used as it is */
    }
}

static void resampler_fini(struct resampler *rs)
{
    axis_fini(&rs->ax);
    axis_fini(&rs->ay);
    free(rs->row4);
    free(rs->ring);
    free(rs->rows);
    free(rs->win);
}

uint32_t resample_taps(enum resample_filter filter, uint32_t in, uint32_t out)
{
    if ((unsigned)filter >= RESAMPLE_FILTER_COUNT || filter == RESAMPLE_NEAREST || in == 0 || out == 0)
        return 1;
    double scale = in > out ? (double)in / out : 1.0;
    double t = 2.0 * ceil(filters[filter].support * scale) + 1.0;
    return t > 1e9 ? 1000000000u : (uint32_t)t;
}

int resample_image(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw,
                   uint32_t dh, uint32_t channels, enum resample_filter filter)
{
    return resample_image_cancel(src, sw, sh, dst, dw, dh, channels, filter, NULL);
}

int resample_image_cancel(const uint8_t *src, uint32_t sw, uint32_t sh, uint8_t *dst, uint32_t dw,
                          uint32_t dh, uint32_t channels, enum resample_filter filter,
                          const int *cancel)
{
    if (!src || !dst || (channels != 3 && channels != 4) || (unsigned)filter >= RESAMPLE_FILTER_COUNT ||
        sw == 0 || sh == 0 || dw == 0 || dh == 0 || sw > IMAGE_MAX_SIDE || sh > IMAGE_MAX_SIDE ||
        dw > IMAGE_MAX_SIDE || dh > IMAGE_MAX_SIDE)
        return P2C2R_EINVAL;
    const int ch = (int)channels;
    if (sw == dw && sh == dh) {
        memcpy(dst, src, (size_t)sw * sh * channels);
        return 0;
    }
    if (filter == RESAMPLE_NEAREST)
        return resample_nearest(src, (int)sw, (int)sh, dst, (int)dw, (int)dh, ch, cancel);

    struct resampler rs;
    memset(&rs, 0, sizeof(rs));
    rs.src = src;
    rs.sw = (int)sw;
    rs.sh = (int)sh;
    rs.dw = (int)dw;
    rs.dh = (int)dh;
    rs.ch = ch;
    rs.need_h = sw != dw;
    rs.need_v = sh != dh;
    const struct filter_def *f = &filters[filter];
    int rc = P2C2R_ENOMEM;
    size_t dstride = (size_t)dw * channels;

    if (rs.need_h) {
        if ((rc = axis_init(&rs.ax, f, rs.sw, rs.dw)) != 0 || (rc = axis_make_pairs(&rs.ax)) != 0)
            goto fini;
        /* Zero padding past the row end lets the kernels read a whole
         * window at the right edge without a bounds check. */
        rs.row4 = calloc(((size_t)rs.sw + (size_t)rs.ax.ksize) * 4, sizeof(int32_t));
        if (!rs.row4)
            goto fini;
    }
    if (rs.need_v) {
        if ((rc = axis_init(&rs.ay, f, rs.sh, rs.dh)) != 0)
            goto fini;
        rs.ring_cap = rs.ay.maxn;
        if ((size_t)rs.ring_cap * dstride > RESAMPLE_SCRATCH_MAX) {
            rc = P2C2R_EINVAL;
            goto fini;
        }
        rc = P2C2R_ENOMEM;
        rs.ring = malloc((size_t)rs.ring_cap * dstride);
        rs.rows = calloc((size_t)rs.ring_cap, sizeof(*rs.rows));
        rs.win = calloc((size_t)rs.ring_cap, sizeof(*rs.win));
        if (!rs.ring || !rs.rows || !rs.win)
            goto fini;
    }
    for (unsigned a = 1; a < 256; a++)
        rs.recip[a] = ((1u << 24) + a - 1) / a;

    for (int y = 0; y < rs.dh; y++) {
        uint8_t *o = dst + (size_t)y * dstride;
        if (tasks_cancelled(cancel)) {
            rc = P2C2R_ECANCELLED;
            goto fini;
        }
        if (!rs.need_v) {
            /* Only the width changes: the horizontal pass writes the output
             * row itself. */
            row_to4(rs.row4, src + (size_t)y * (size_t)rs.sw * (size_t)ch, rs.sw, ch);
            hpass(o, ch, rs.row4, &rs.ax);
        } else {
            int lo = rs.ay.lo[y], n = rs.ay.n[y];
            /* Windows only move down, so rows below lo are never needed
             * again and the ring can overwrite them. */
            if (rs.next_row < lo)
                rs.next_row = lo;
            while (rs.next_row < lo + n)
                make_row(&rs, rs.next_row++);
            for (int t = 0; t < n; t++)
                rs.win[t] = rs.rows[(lo + t) % rs.ring_cap];
            vpass(o, rs.win, rs.ay.k + (size_t)y * (size_t)rs.ay.ksize, n, dstride);
        }
        if (ch == 4)
            row_unpremultiply(o, rs.dw, rs.recip);
    }
    rc = 0;
fini:
    resampler_fini(&rs);
    return rc;
}
