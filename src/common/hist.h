/* hist.h - a fixed-size, mergeable latency histogram, and the writers of the
 * Prometheus text format that export it (with plain counters and gauges).
 *
 * A struct hist holds microsecond samples in log-linear buckets: values
 * 0..15 each have their own bucket, and every power of two from 16 up is
 * split into 8 equal sub-buckets, up to 2^32 us (about 71 minutes); larger
 * samples share one overflow bucket above those.  It needs no allocation, so it can be
 * embedded in any struct, and two histograms merge by adding their counts.
 *
 * Quantiles come from those buckets.  The Prometheus buckets (the fixed
 * boundaries in hist_prom_bounds_us, from 50 us to 10 s) are counted
 * separately and exactly, so a sample is in the bucket le="B" exactly when
 * sample <= B, whatever the internal bucketing; that costs 18 counters.
 *
 * Not thread-safe: a histogram belongs to one thread (merge into another
 * thread's copy to combine them). */
#ifndef P2C2R_HIST_H
#define P2C2R_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

#define HIST_SUB_BITS 3 /* 8 sub-buckets per power of two */
/* 16 exact buckets, 8 for each power of two 2^4 .. 2^31, then the overflow
 * bucket for everything from 2^32 up. */
#define HIST_NBUCKETS 241
/* The finite Prometheus boundaries; a last counter holds what is above. */
#define HIST_PROM_NBOUNDS 17

struct hist {
    uint64_t count;  /* samples added */
    uint64_t sum_us; /* their sum (wraps only after ~584,000 years in total) */
    uint64_t max_us; /* the largest sample, 0 when empty */
    uint64_t b[HIST_NBUCKETS];
    /* prom[k]: samples in (bound[k-1], bound[k]]; prom[HIST_PROM_NBOUNDS]:
     * samples above the last bound.  They always sum to count. */
    uint64_t prom[HIST_PROM_NBOUNDS + 1];
};

/* The Prometheus boundaries in microseconds, ascending: 50 100 250 500 1000
 * 2500 5000 10000 25000 50000 100000 250000 500000 1000000 2500000 5000000
 * 10000000, exported as le="0.00005" .. le="10" (seconds), then le="+Inf". */
extern const uint64_t hist_prom_bounds_us[HIST_PROM_NBOUNDS];

/* Empties h (all counts zero).  h is the caller's storage; there is no fini. */
void hist_init(struct hist *h);

/* Records one sample of us microseconds.  O(1), no branches on the value
 * beyond what the compiler turns into conditional moves. */
void hist_add(struct hist *h, uint64_t us);

/* Returns an upper bound for the q-th quantile (q in 0..1, clamped; NaN
 * counts as 0): the largest value of the bucket that holds the sample of
 * rank ceil(q * count) (at least 1), capped at the largest sample.  So with
 * v that sample, v <= result, and result - v < v / 8 for v < 2^32 (exact
 * for v < 16); above 2^32 us the result is the largest sample.  Returns 0
 * when h is empty. */
uint64_t hist_quantile(const struct hist *h, double q);

/* Adds every count of src to dst (dst may not be src). */
void hist_merge(struct hist *dst, const struct hist *src);

/* The writers below append whole lines of the Prometheus text format
 * (version 0.0.4) to o.  name is a valid metric name; labels is inserted
 * verbatim between braces, e.g. `type="echo",stage="queue"`, so label values
 * must already be escaped (\\, \" and \n); NULL or "" means no labels.  Each
 * returns 0, or P2C2R_ETOOBIG / P2C2R_ENOMEM when o cannot take the output,
 * in which case a partial line is never left behind (a histogram may be cut
 * between lines). */

/* "# HELP name help" (help escaped as the format requires) and "# TYPE name
 * type"; type is "counter", "gauge", "histogram", "summary" or "untyped".
 * Write it once per metric name, before all of that name's samples. */
int prom_help(struct buf *o, const char *name, const char *type, const char *help);

/* "name{labels} v". */
int prom_counter(struct buf *o, const char *name, const char *labels, uint64_t v);

/* "name{labels} v", v in the shortest form that reads back exactly; NaN and
 * infinities are written NaN, +Inf and -Inf. */
int prom_gauge(struct buf *o, const char *name, const char *labels, double v);

/* The histogram series of h: name_bucket{labels,le="..."} with cumulative
 * counts at every bound and at +Inf (which equals count), then name_sum in
 * seconds (exact: sum_us printed with six decimals) and name_count.  Use
 * prom_help(o, name, "histogram", ...) once before. */
int hist_prom(struct buf *o, const char *name, const char *labels, const struct hist *h);

#endif
