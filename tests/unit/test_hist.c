/* test_hist.c - unit tests for the latency histogram and the Prometheus
 * text writers (src/common/hist.c): bucket edges, quantiles against a sorted
 * reference on random data within the documented error, edge values (0, 1,
 * 2^32 and beyond, UINT64_MAX), merge, and the exported text checked line
 * by line (cumulative, monotone, exact at every boundary, +Inf == count),
 * plus counters, gauges, HELP escaping and the whole-line rule on a full
 * buffer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/buf.h"
#include "common/hist.h"
#include "common/util.h"
#include "p2c2r/error.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The reference: the sample of rank ceil(q * n) (at least 1) in sorted v. */
static uint64_t ref_quantile(const uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return sorted[rank - 1];
}

/* The documented bound: v <= got, and got - v < v / 8 (exact below 16). */
static int within_error(uint64_t v, uint64_t got)
{
    if (got < v)
        return 0;
    if (v < 16)
        return got == v;
    return (got - v) * 8 < v;
}

static void test_empty_and_init(void)
{
    struct hist h;
    memset(&h, 0xa5, sizeof(h));
    hist_init(&h);
    CHECK_EQU(h.count, 0);
    CHECK_EQU(h.sum_us, 0);
    CHECK_EQU(h.max_us, 0);
    CHECK_EQU(hist_quantile(&h, 0.0), 0);
    CHECK_EQU(hist_quantile(&h, 0.5), 0);
    CHECK_EQU(hist_quantile(&h, 1.0), 0);
    CHECK(sizeof(struct hist) <= 2112);
}

static void test_small_values_exact(void)
{
    /* Values below 16 have a bucket each, so every quantile is exact. */
    for (uint64_t v = 0; v < 16; v++) {
        struct hist h;
        hist_init(&h);
        hist_add(&h, v);
        CHECK_EQU(hist_quantile(&h, 0.0), v);
        CHECK_EQU(hist_quantile(&h, 0.5), v);
        CHECK_EQU(hist_quantile(&h, 1.0), v);
        CHECK_EQU(h.max_us, v);
        CHECK_EQU(h.sum_us, v);
    }
}

/* Every value up to 2^16, then a sparse sweep up to 2^34, each with a
 * larger sample present so the answer is the top of v's bucket rather than
 * max_us: it obeys the documented bound, and it is the same for every value
 * of one bucket (tops are monotone, so the buckets do not overlap). */
static void test_every_value_bound(void)
{
    unsigned bad = 0, unordered = 0;
    uint64_t prev_top = 0;
    for (uint64_t v = 0; v <= (1ull << 34); v += v < (1u << 16) ? 1 : 1 + v / 61) {
        struct hist h;
        hist_init(&h);
        hist_add(&h, v);
        hist_add(&h, UINT64_MAX);
        uint64_t got = hist_quantile(&h, 0.5);
        if (v < (1ull << 32) && !within_error(v, got))
            bad++;
        if (got < prev_top)
            unordered++;
        prev_top = got;
    }
    CHECK_EQU(bad, 0);
    CHECK_EQU(unordered, 0);
    /* Alone, a sample is its own answer: the cap at max_us. */
    for (uint64_t v = 0; v < (1ull << 40); v = v * 3 + 1) {
        struct hist h;
        hist_init(&h);
        hist_add(&h, v);
        CHECK_EQU(hist_quantile(&h, 0.5), v);
    }
    /* Power-of-two edges: 2^k - 1 tops a bucket, 2^k starts one. */
    for (unsigned k = 4; k < 32; k++) {
        struct hist h;
        hist_init(&h);
        hist_add(&h, (1ull << k) - 1);
        hist_add(&h, UINT64_MAX);
        CHECK_EQU(hist_quantile(&h, 0.5), (1ull << k) - 1);
        hist_init(&h);
        hist_add(&h, 1ull << k);
        hist_add(&h, UINT64_MAX);
        CHECK_EQU(hist_quantile(&h, 0.5), (1ull << k) + (1ull << (k - 3)) - 1);
    }
}

static void test_huge_values(void)
{
    struct hist h;
    hist_init(&h);
    hist_add(&h, (1ull << 32) - 1); /* the last value with a bound */
    CHECK_EQU(hist_quantile(&h, 1.0), (1ull << 32) - 1);
    hist_add(&h, 1ull << 32);
    hist_add(&h, 3600ull * 1000000 * 24); /* a day */
    hist_add(&h, UINT64_MAX);
    CHECK_EQU(h.count, 4);
    CHECK_EQU(h.max_us, UINT64_MAX);
    /* 2^32 - 1 tops the last bounded bucket, so its answer stays within the
     * bound even with larger samples present; everything from 2^32 up
     * shares the overflow bucket, whose answer is the largest sample. */
    CHECK_EQU(hist_quantile(&h, 0.25), (1ull << 32) - 1);
    CHECK_EQU(hist_quantile(&h, 0.5), UINT64_MAX);
    CHECK_EQU(hist_quantile(&h, 1.0), UINT64_MAX);
    CHECK_EQU(h.b[HIST_NBUCKETS - 2], 1);
    CHECK_EQU(h.b[HIST_NBUCKETS - 1], 3);
    CHECK_EQU(h.prom[HIST_PROM_NBOUNDS], 4);
    /* The bottom of the last bounded bucket, next to an overflow sample. */
    hist_init(&h);
    hist_add(&h, 15ull << 28);
    hist_add(&h, 1ull << 32);
    CHECK_EQU(hist_quantile(&h, 0.5), (1ull << 32) - 1);
    CHECK(within_error(15ull << 28, hist_quantile(&h, 0.5)));

    hist_init(&h);
    hist_add(&h, 0);
    hist_add(&h, 1);
    hist_add(&h, 1ull << 40);
    CHECK_EQU(hist_quantile(&h, 0.0), 0);
    CHECK_EQU(hist_quantile(&h, 0.34), 1);
    CHECK_EQU(hist_quantile(&h, 0.67), 1ull << 40);
    CHECK_EQU(h.sum_us, (1ull << 40) + 1);
}

static void test_quantile_arguments(void)
{
    struct hist h;
    hist_init(&h);
    for (uint64_t v = 1; v <= 10; v++)
        hist_add(&h, v);
    CHECK_EQU(hist_quantile(&h, -1.0), 1);
    CHECK_EQU(hist_quantile(&h, NAN), 1);
    CHECK_EQU(hist_quantile(&h, 0.0), 1);
    CHECK_EQU(hist_quantile(&h, 0.1), 1);
    CHECK_EQU(hist_quantile(&h, 0.11), 2);
    CHECK_EQU(hist_quantile(&h, 0.5), 5);
    CHECK_EQU(hist_quantile(&h, 0.95), 10);
    CHECK_EQU(hist_quantile(&h, 1.0), 10);
    CHECK_EQU(hist_quantile(&h, 7.0), 10);
    CHECK_EQU(hist_quantile(&h, INFINITY), 10);
}

static uint64_t rand_latency(struct rng *r)
{
    /* Log-uniform over 0 .. ~2^32, with a sprinkle of exact small values,
     * so every bucket range is exercised. */
    uint64_t x = rng_next(r);
    unsigned bits = (unsigned)(x % 33);
    uint64_t v = bits ? (rng_next(r) >> (64 - bits)) : 0;
    return v;
}

static void test_random_against_reference(void)
{
    static const double qs[] = {0.0, 0.001, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9,
                                0.95, 0.99, 0.999, 0.9999, 1.0};
    struct rng r = {12345};
    for (unsigned round = 0; round < 20; round++) {
        size_t n = 1 + (size_t)(rng_next(&r) % 20000);
        uint64_t *v = malloc(n * sizeof(*v));
        if (!CHECK(v != NULL))
            return;
        struct hist h;
        hist_init(&h);
        uint64_t sum = 0;
        for (size_t i = 0; i < n; i++) {
            v[i] = rand_latency(&r);
            sum += v[i];
            hist_add(&h, v[i]);
        }
        qsort(v, n, sizeof(*v), cmp_u64);
        CHECK_EQU(h.count, n);
        CHECK_EQU(h.sum_us, sum);
        CHECK_EQU(h.max_us, v[n - 1]);
        unsigned bad = 0;
        for (size_t k = 0; k < ARRAY_LEN(qs); k++) {
            uint64_t want = ref_quantile(v, n, qs[k]);
            uint64_t got = hist_quantile(&h, qs[k]);
            if (!within_error(want, got)) {
                bad++;
                fprintf(stderr, "  n=%zu q=%g want=%ju got=%ju\n", n, qs[k], (uintmax_t)want,
                        (uintmax_t)got);
            }
        }
        CHECK_EQU(bad, 0);
        /* The Prometheus counters are exact: compare with the reference. */
        for (unsigned k = 0; k < HIST_PROM_NBOUNDS; k++) {
            uint64_t le = 0;
            for (size_t i = 0; i < n; i++)
                le += v[i] <= hist_prom_bounds_us[k];
            uint64_t cum = 0;
            for (unsigned j = 0; j <= k; j++)
                cum += h.prom[j];
            CHECK_EQU(cum, le);
        }
        free(v);
    }
}

static void test_merge(void)
{
    struct rng r = {777};
    struct hist a, b, all;
    hist_init(&a);
    hist_init(&b);
    hist_init(&all);
    for (unsigned i = 0; i < 5000; i++) {
        uint64_t x = rand_latency(&r);
        hist_add(i % 3 ? &a : &b, x);
        hist_add(&all, x);
    }
    struct hist m = a;
    hist_merge(&m, &b);
    CHECK(memcmp(&m, &all, sizeof(m)) == 0);
    /* Merging an empty histogram changes nothing; merging into an empty one
     * copies. */
    struct hist e;
    hist_init(&e);
    struct hist m2 = all;
    hist_merge(&m2, &e);
    CHECK(memcmp(&m2, &all, sizeof(m2)) == 0);
    hist_merge(&e, &all);
    CHECK(memcmp(&e, &all, sizeof(e)) == 0);
    /* max comes from whichever side had it. */
    hist_init(&a);
    hist_init(&b);
    hist_add(&a, 5);
    hist_add(&b, 900);
    hist_merge(&a, &b);
    CHECK_EQU(a.max_us, 900);
    CHECK_EQU(hist_quantile(&a, 1.0), 900);
    CHECK_EQU(hist_quantile(&a, 0.5), 5);
}

/* ---- Prometheus output ---------------------------------------------------- */

/* Splits o's text into lines (in place, NUL-terminated); returns the count
 * and checks the text ends with a line feed. */
static size_t split_lines(struct buf *o, char **lines, size_t max)
{
    size_t n = 0, len = buf_used(o);
    char *s = (char *)buf_head(o);
    CHECK(len > 0 && s[len - 1] == '\n');
    char *end = s + len;
    while (s < end && n < max) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        if (!nl)
            break;
        *nl = '\0';
        lines[n++] = s;
        s = nl + 1;
    }
    return n;
}

static void test_prom_histogram_lines(void)
{
    static const char *const le[] = {"0.00005", "0.0001", "0.00025", "0.0005", "0.001", "0.0025",
                                     "0.005",   "0.01",   "0.025",   "0.05",   "0.1",   "0.25",
                                     "0.5",     "1",      "2.5",     "5",      "10",    "+Inf"};
    struct hist h;
    hist_init(&h);
    /* Samples on, just below and just above every bound. */
    uint64_t sum = 0;
    for (unsigned k = 0; k < HIST_PROM_NBOUNDS; k++) {
        uint64_t b = hist_prom_bounds_us[k];
        uint64_t s3[3] = {b - 1, b, b + 1};
        for (unsigned j = 0; j < 3; j++) {
            hist_add(&h, s3[j]);
            sum += s3[j];
        }
    }
    hist_add(&h, 0);
    hist_add(&h, 20000000);
    sum += 20000000;

    struct buf o;
    buf_init(&o, 1u << 20);
    CHECK_EQ(prom_help(&o, "p2c2r_lat_seconds", "histogram", "Latency."), 0);
    CHECK_EQ(hist_prom(&o, "p2c2r_lat_seconds", "type=\"echo\",stage=\"queue\"", &h), 0);
    CHECK_EQ(hist_prom(&o, "p2c2r_lat_seconds", "", &h), 0);
    char *lines[64];
    size_t n = split_lines(&o, lines, ARRAY_LEN(lines));
    CHECK_EQU(n, 2 + 2 * (HIST_PROM_NBOUNDS + 1 + 2));
    if (n != 2 + 2 * (HIST_PROM_NBOUNDS + 1 + 2)) {
        buf_fini(&o);
        return;
    }
    CHECK(strcmp(lines[0], "# HELP p2c2r_lat_seconds Latency.") == 0);
    CHECK(strcmp(lines[1], "# TYPE p2c2r_lat_seconds histogram") == 0);
    for (unsigned pass = 0; pass < 2; pass++) {
        const char *lb = pass == 0 ? "type=\"echo\",stage=\"queue\"," : "";
        char **l = lines + 2 + pass * (HIST_PROM_NBOUNDS + 3);
        uint64_t prev = 0;
        for (unsigned k = 0; k <= HIST_PROM_NBOUNDS; k++) {
            char want[160];
            snprintf(want, sizeof(want), "p2c2r_lat_seconds_bucket{%sle=\"%s\"} ", lb, le[k]);
            if (!CHECK(strncmp(l[k], want, strlen(want)) == 0)) {
                fprintf(stderr, "  line '%s', want prefix '%s'\n", l[k], want);
                continue;
            }
            uint64_t v = strtoull(l[k] + strlen(want), NULL, 10);
            /* Cumulative and monotone, exact at the bound: 1 (the zero) + 3
             * per earlier bound + 2 (b-1 and b) here; b + 1 is above. */
            uint64_t expect = k < HIST_PROM_NBOUNDS ? 1 + 3 * k + 2 : h.count;
            CHECK_EQU(v, expect);
            CHECK(v >= prev);
            prev = v;
        }
        CHECK_EQU(prev, h.count);
        char want[160];
        if (pass == 0) {
            snprintf(want, sizeof(want),
                     "p2c2r_lat_seconds_sum{type=\"echo\",stage=\"queue\"} %ju.%06ju",
                     (uintmax_t)(sum / 1000000), (uintmax_t)(sum % 1000000));
            CHECK(strcmp(l[HIST_PROM_NBOUNDS + 1], want) == 0);
            snprintf(want, sizeof(want), "p2c2r_lat_seconds_count{type=\"echo\",stage=\"queue\"} %ju",
                     (uintmax_t)h.count);
            CHECK(strcmp(l[HIST_PROM_NBOUNDS + 2], want) == 0);
        } else {
            snprintf(want, sizeof(want), "p2c2r_lat_seconds_sum %ju.%06ju",
                     (uintmax_t)(sum / 1000000), (uintmax_t)(sum % 1000000));
            CHECK(strcmp(l[HIST_PROM_NBOUNDS + 1], want) == 0);
            snprintf(want, sizeof(want), "p2c2r_lat_seconds_count %ju", (uintmax_t)h.count);
            CHECK(strcmp(l[HIST_PROM_NBOUNDS + 2], want) == 0);
        }
        /* The sum in seconds reads back to the microsecond total. */
        const char *sp = strrchr(l[HIST_PROM_NBOUNDS + 1], ' ');
        CHECK(sp && llround(strtod(sp + 1, NULL) * 1e6) == (long long)sum);
    }
    buf_fini(&o);

    /* An empty histogram: all zeros, sum 0.000000. */
    hist_init(&h);
    buf_init(&o, 1u << 16);
    CHECK_EQ(hist_prom(&o, "x", NULL, &h), 0);
    n = split_lines(&o, lines, ARRAY_LEN(lines));
    CHECK_EQU(n, HIST_PROM_NBOUNDS + 3);
    if (n == HIST_PROM_NBOUNDS + 3) {
        CHECK(strcmp(lines[0], "x_bucket{le=\"0.00005\"} 0") == 0);
        CHECK(strcmp(lines[HIST_PROM_NBOUNDS], "x_bucket{le=\"+Inf\"} 0") == 0);
        CHECK(strcmp(lines[HIST_PROM_NBOUNDS + 1], "x_sum 0.000000") == 0);
        CHECK(strcmp(lines[HIST_PROM_NBOUNDS + 2], "x_count 0") == 0);
    }
    buf_fini(&o);
}

static void test_prom_scalars(void)
{
    struct buf o;
    buf_init(&o, 1u << 16);
    CHECK_EQ(prom_help(&o, "a_total", "counter", "Back\\slash and\nnew line."), 0);
    CHECK_EQ(prom_counter(&o, "a_total", NULL, 0), 0);
    CHECK_EQ(prom_counter(&o, "a_total", "", 7), 0);
    CHECK_EQ(prom_counter(&o, "a_total", "type=\"echo\"", UINT64_MAX), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, 12.0), 0);
    CHECK_EQ(prom_gauge(&o, "g", "k=\"v\"", 0.1), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, -2.5e-7), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, NAN), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, INFINITY), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, -INFINITY), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, 1.0 / 3.0), 0);
    CHECK_EQ(prom_gauge(&o, "g", NULL, 9007199254740993.0), 0);
    static const char *const want[] = {
        "# HELP a_total Back\\\\slash and\\nnew line.",
        "# TYPE a_total counter",
        "a_total 0",
        "a_total 7",
        "a_total{type=\"echo\"} 18446744073709551615",
        "g 12",
        "g{k=\"v\"} 0.1",
        "g -2.5e-07",
        "g NaN",
        "g +Inf",
        "g -Inf",
    };
    char *lines[32];
    size_t n = split_lines(&o, lines, ARRAY_LEN(lines));
    CHECK_EQU(n, ARRAY_LEN(want) + 2);
    for (size_t i = 0; i < ARRAY_LEN(want) && i < n; i++) {
        if (!CHECK(strcmp(lines[i], want[i]) == 0))
            fprintf(stderr, "  line %zu '%s', want '%s'\n", i, lines[i], want[i]);
    }
    /* The last two read back exactly. */
    if (n == ARRAY_LEN(want) + 2) {
        CHECK(strtod(lines[n - 2] + 2, NULL) == 1.0 / 3.0);
        CHECK(strtod(lines[n - 1] + 2, NULL) == 9007199254740993.0);
    }
    buf_fini(&o);

    /* Long labels take the path that formats in place. */
    char labels[1000];
    memset(labels, 'a', sizeof(labels) - 1);
    memcpy(labels, "k=\"", 3);
    labels[sizeof(labels) - 2] = '"';
    labels[sizeof(labels) - 1] = '\0';
    buf_init(&o, 1u << 16);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), 0);
    size_t line = strlen("long{") + strlen(labels) + strlen("} 5\n");
    CHECK_EQU(buf_used(&o), line);
    buf_fini(&o);
    /* A long line fits a buffer with room for exactly it (the NUL the
     * formatting needs is not the caller's concern), and not one byte
     * less. */
    buf_init(&o, line);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), 0);
    CHECK_EQU(buf_used(&o), line);
    buf_fini(&o);
    buf_init(&o, line - 1);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), P2C2R_ETOOBIG);
    CHECK_EQU(buf_used(&o), 0);
    buf_fini(&o);
    buf_init(&o, 2 * line);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), 0);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), 0);
    CHECK_EQ(prom_counter(&o, "long", labels, 5), P2C2R_ETOOBIG);
    CHECK_EQU(buf_used(&o), 2 * line);
    buf_fini(&o);
}

/* With a small cap, every writer either appends whole lines or fails with
 * P2C2R_ETOOBIG and leaves what was there. */
static void test_prom_full_buffer(void)
{
    struct hist h;
    hist_init(&h);
    hist_add(&h, 1234);
    char labels[400];
    memset(labels, 'b', sizeof(labels) - 1);
    labels[sizeof(labels) - 1] = '\0';
    for (size_t cap = 1; cap < 3000; cap += 7) {
        struct buf o;
        buf_init(&o, cap);
        int rc = hist_prom(&o, "h", cap % 2 ? labels : "k=\"v\"", &h);
        CHECK(rc == 0 || rc == P2C2R_ETOOBIG);
        if (buf_used(&o))
            CHECK(buf_head(&o)[buf_used(&o) - 1] == '\n');
        size_t before = buf_used(&o);
        rc = prom_help(&o, "h", "histogram", "some help text");
        CHECK(rc == 0 || (rc == P2C2R_ETOOBIG && buf_used(&o) == before));
        before = buf_used(&o);
        rc = prom_gauge(&o, "g", labels, 1.5);
        CHECK(rc == 0 || (rc == P2C2R_ETOOBIG && buf_used(&o) == before));
        buf_fini(&o);
    }
}

int main(void)
{
    test_empty_and_init();
    test_small_values_exact();
    test_every_value_bound();
    test_huge_values();
    test_quantile_arguments();
    test_random_against_reference();
    test_merge();
    test_prom_histogram_lines();
    test_prom_scalars();
    test_prom_full_buffer();
    return check_report("test_hist");
}
