/* Shared helpers for the competitor benchmarks (gearman_bench, nats_bench).
 *
 * Header-only on purpose: each benchmark is one translation unit built by
 * build.sh with a plain `cc` line, no library of its own.
 *
 * Output format: one JSON object per client run, with the same keys as
 * `p2c2r bench --json` plus "system", "inflight", "size" and "cpu_us" (the
 * client's own user+system CPU time, measured with getrusage). */
#ifndef P2C2R_BENCH_COMMON_H
#define P2C2R_BENCH_COMMON_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void bench_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000u, .tv_nsec = (long)(ms % 1000u) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static inline uint64_t bench_cpu_us(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Parses a positive decimal integer option value; exits on garbage. */
static inline unsigned long bench_parse_ulong(const char *opt, const char *s)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        fprintf(stderr, "invalid value for %s: '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

/* Payload whose bytes depend on their offset, so truncation or a shifted copy
 * is caught by the echo check. */
static inline unsigned char *bench_make_payload(size_t size)
{
    unsigned char *p = malloc(size ? size : 1);
    if (!p) {
        perror("malloc");
        exit(1);
    }
    for (size_t i = 0; i < size; i++)
        p[i] = (unsigned char)('a' + (i * 7u) % 26u);
    return p;
}

/* Writes "ready\n" to path atomically (tmp file + rename). */
static inline int bench_write_ready_file(const char *path)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    fputs("ready\n", f);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

static int bench_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile of a sorted array, in microseconds. */
static inline double bench_pct_us(const uint64_t *sorted_ns, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    size_t rank = (size_t)(p * (double)n + 0.999999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)sorted_ns[rank - 1] / 1000.0;
}

struct bench_result {
    const char *system;
    unsigned long tasks;
    unsigned long completed;
    unsigned long failed;
    unsigned long timed_out;
    unsigned long inflight;
    size_t size;
    double seconds;
    uint64_t cpu_us;
    uint64_t *lat_ns; /* completed latencies; sorted in place by print */
    size_t n_lat;
};

static inline void bench_print_json(struct bench_result *r)
{
    qsort(r->lat_ns, r->n_lat, sizeof *r->lat_ns, bench_cmp_u64);
    double secs = r->seconds > 0 ? r->seconds : 1e-9;
    double tps = (double)r->completed / secs;
    double mbps = (double)r->completed * (double)r->size / secs / 1e6;
    printf("{\"system\":\"%s\",\"tasks\":%lu,\"completed\":%lu,\"failed\":%lu,"
           "\"timed_out\":%lu,\"inflight\":%lu,\"size\":%zu,\"seconds\":%.6f,"
           "\"tasks_per_s\":%.1f,\"mb_per_s\":%.3f,\"p50_us\":%.1f,\"p90_us\":%.1f,"
           "\"p99_us\":%.1f,\"max_us\":%.1f,\"cpu_us\":%llu}\n",
           r->system, r->tasks, r->completed, r->failed, r->timed_out, r->inflight,
           r->size, r->seconds, tps, mbps, bench_pct_us(r->lat_ns, r->n_lat, 0.50),
           bench_pct_us(r->lat_ns, r->n_lat, 0.90), bench_pct_us(r->lat_ns, r->n_lat, 0.99),
           r->n_lat ? (double)r->lat_ns[r->n_lat - 1] / 1000.0 : 0.0,
           (unsigned long long)r->cpu_us);
    fflush(stdout);
}

#endif
