/* hist.c - log-linear latency histogram and Prometheus text writers (see
 * hist.h).
 *
 * Bucket i < 16 holds the value i.  Above, a value v with its top bit at
 * position e (e >= 4) goes to bucket (e - 3) * 8 + (v >> (e - 3)): the top
 * four bits select one of 8 sub-buckets, each 2^(e-3) wide, so a bucket is
 * never wider than an eighth of its smallest value.  Writing e' = max(e, 3)
 * makes the same formula give v itself for v < 16, which is why hist_add
 * needs no branch for small values.  Indexes from 240 up (v >= 2^32) are
 * clamped into the overflow bucket 240, which holds nothing below 2^32: so
 * the top of [15 * 2^28, 2^32) stays 2^32 - 1 and the error bound holds up
 * to 2^32, while an overflow answer is the largest sample.
 *
 * Invariants: count == sum of b[] == sum of prom[]; max_us is the largest
 * sample added or merged.  Prometheus lines are formatted whole before they
 * are appended, so a full buffer never receives half a line. */
#include "common/hist.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

_Static_assert(HIST_NBUCKETS == ((32 - HIST_SUB_BITS) << HIST_SUB_BITS) + (1 << HIST_SUB_BITS) + 1,
               "buckets must cover 0 .. 2^32-1 exactly, plus one for the rest");
_Static_assert(sizeof(struct hist) <= 2112, "struct hist is meant to be embedded");

const uint64_t hist_prom_bounds_us[HIST_PROM_NBOUNDS] = {
    50,     100,    250,    500,     1000,    2500,    5000,    10000,   25000,
    50000,  100000, 250000, 500000,  1000000, 2500000, 5000000, 10000000,
};

/* The same bounds as Prometheus writes them: seconds, exact decimals. */
static const char *const prom_bounds_text[HIST_PROM_NBOUNDS] = {
    "0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025",
    "0.05",    "0.1",    "0.25",    "0.5",    "1",     "2.5",    "5",     "10",
};

static inline unsigned hist_index(uint64_t v)
{
    unsigned e = 63u - (unsigned)__builtin_clzll(v | (1u << HIST_SUB_BITS));
    unsigned s = e - HIST_SUB_BITS;
    uint64_t i = ((uint64_t)s << HIST_SUB_BITS) + (v >> s);
    return i < HIST_NBUCKETS ? (unsigned)i : HIST_NBUCKETS - 1;
}

/* The largest value bucket i holds (the top bucket is open-ended). */
static uint64_t hist_bucket_max(unsigned i)
{
    if (i < 2u << HIST_SUB_BITS)
        return i;
    if (i == HIST_NBUCKETS - 1)
        return UINT64_MAX;
    unsigned s = (i >> HIST_SUB_BITS) - 1;
    uint64_t m = (i & ((1u << HIST_SUB_BITS) - 1)) + (1u << HIST_SUB_BITS);
    return ((m + 1) << s) - 1;
}

void hist_init(struct hist *h) { memset(h, 0, sizeof(*h)); }

void hist_add(struct hist *h, uint64_t us)
{
    /* The Prometheus bucket is the number of bounds below the sample.  Most
     * samples are a few hundred microseconds, under the third bound, so
     * walking up from the smallest bound and stopping at the first one not
     * below the sample costs two or three predictable comparisons (the
     * straight-line count of all 17 was ~40 instructions of each call, and
     * a task makes four). */
    unsigned k = 0;
    while (k < HIST_PROM_NBOUNDS && us > hist_prom_bounds_us[k])
        k++;
    h->count++;
    h->sum_us += us;
    h->max_us = us > h->max_us ? us : h->max_us;
    h->b[hist_index(us)]++;
    h->prom[k]++;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    if (h->count == 0)
        return 0;
    uint64_t rank;
    if (!(q > 0)) {
        rank = 1;
    } else if (q >= 1 || q * (double)h->count >= (double)h->count) {
        rank = h->count;
    } else {
        double r = q * (double)h->count;
        rank = (uint64_t)r;
        if ((double)rank < r)
            rank++;
        if (rank == 0)
            rank = 1;
    }
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t top = hist_bucket_max(i);
            return top < h->max_us ? top : h->max_us;
        }
    }
    /* Unreachable while count equals the sum of the buckets. */
    assert(0 && "hist counts out of step");
    return h->max_us;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    assert(dst != src);
    dst->count += src->count;
    dst->sum_us += src->sum_us;
    if (src->max_us > dst->max_us)
        dst->max_us = src->max_us;
    for (unsigned i = 0; i < HIST_NBUCKETS; i++)
        dst->b[i] += src->b[i];
    for (unsigned k = 0; k <= HIST_PROM_NBOUNDS; k++)
        dst->prom[k] += src->prom[k];
}

/* ---- Prometheus text format ------------------------------------------------ */

static int buf_error(const struct buf *o, size_t n)
{
    return n > o->max || buf_used(o) > o->max - n ? P2C2R_ETOOBIG : P2C2R_ENOMEM;
}

/* Appends one printf-formatted piece of text, all of it or nothing. */
static int put(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int put(struct buf *o, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    assert(n >= 0);
    if ((size_t)n < sizeof(small))
        return buf_append(o, small, (size_t)n);
    /* Long labels: format straight into the buffer (n + 1 for the NUL that
     * vsnprintf writes, which is not committed). */
    char *p = (char *)buf_reserve(o, (size_t)n + 1);
    if (p) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        buf_commit(o, (size_t)n);
        return 0;
    }
    /* The line itself may still fit where its NUL does not: format it
     * aside then. */
    int rc = buf_error(o, (size_t)n);
    if (rc == P2C2R_ETOOBIG)
        return rc;
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        return P2C2R_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rc = buf_append(o, tmp, (size_t)n);
    free(tmp);
    return rc;
}

static int has_labels(const char *labels) { return labels && labels[0]; }

int prom_help(struct buf *o, const char *name, const char *type, const char *help)
{
    assert(name && type && help);
    size_t hl = 0;
    for (const char *s = help; *s; s++)
        hl += *s == '\\' || *s == '\n' ? 2 : 1;
    size_t nl = strlen(name), tl = strlen(type);
    size_t total = 7 + nl + 1 + hl + 1 + 7 + nl + 1 + tl + 1;
    char *p = (char *)buf_reserve(o, total);
    if (!p)
        return buf_error(o, total);
    char *w = p;
    memcpy(w, "# HELP ", 7);
    w += 7;
    memcpy(w, name, nl);
    w += nl;
    *w++ = ' ';
    for (const char *s = help; *s; s++) {
        if (*s == '\\') {
            *w++ = '\\';
            *w++ = '\\';
        } else if (*s == '\n') {
            *w++ = '\\';
            *w++ = 'n';
        } else {
            *w++ = *s;
        }
    }
    *w++ = '\n';
    memcpy(w, "# TYPE ", 7);
    w += 7;
    memcpy(w, name, nl);
    w += nl;
    *w++ = ' ';
    memcpy(w, type, tl);
    w += tl;
    *w++ = '\n';
    assert((size_t)(w - p) == total);
    buf_commit(o, total);
    return 0;
}

int prom_counter(struct buf *o, const char *name, const char *labels, uint64_t v)
{
    assert(name);
    if (has_labels(labels))
        return put(o, "%s{%s} %" PRIu64 "\n", name, labels, v);
    return put(o, "%s %" PRIu64 "\n", name, v);
}

int prom_gauge(struct buf *o, const char *name, const char *labels, double v)
{
    assert(name);
    char num[32];
    if (isnan(v)) {
        snprintf(num, sizeof(num), "NaN");
    } else if (isinf(v)) {
        snprintf(num, sizeof(num), "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        /* %.15g is exact for every value that came from an integer below
         * 2^49 and for most decimals; fall back to the digits that always
         * read back exactly. */
        snprintf(num, sizeof(num), "%.15g", v);
        if (strtod(num, NULL) != v)
            snprintf(num, sizeof(num), "%.17g", v);
    }
    if (has_labels(labels))
        return put(o, "%s{%s} %s\n", name, labels, num);
    return put(o, "%s %s\n", name, num);
}

int hist_prom(struct buf *o, const char *name, const char *labels, const struct hist *h)
{
    assert(name && h);
    const char *lb = has_labels(labels) ? labels : "";
    const char *sep = has_labels(labels) ? "," : "";
    uint64_t cum = 0;
    int rc;
    for (unsigned k = 0; k < HIST_PROM_NBOUNDS; k++) {
        cum += h->prom[k];
        rc = put(o, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n", name, lb, sep, prom_bounds_text[k],
                 cum);
        if (rc)
            return rc;
    }
    assert(cum + h->prom[HIST_PROM_NBOUNDS] == h->count);
    if ((rc = put(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, lb, sep, h->count)) != 0)
        return rc;
    if (has_labels(labels))
        rc = put(o, "%s_sum{%s} %" PRIu64 ".%06" PRIu64 "\n", name, labels, h->sum_us / 1000000,
                 h->sum_us % 1000000);
    else
        rc = put(o, "%s_sum %" PRIu64 ".%06" PRIu64 "\n", name, h->sum_us / 1000000,
                 h->sum_us % 1000000);
    if (rc)
        return rc;
    if (has_labels(labels))
        return put(o, "%s_count{%s} %" PRIu64 "\n", name, labels, h->count);
    return put(o, "%s_count %" PRIu64 "\n", name, h->count);
}
