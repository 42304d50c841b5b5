/* bench_durable.c - the cost of durable jobs (issue 13): acknowledged
 * durable jobs per second with group commit and the latency of each
 * acknowledgement (submit call to JOB_ACK), beside a probe of live tasks
 * (one echo in flight: submit to DELIVER) in the same run, against a
 * running coordinator with --state.  Run bench/bench_durable.sh for the
 * whole comparison (W2 alone, W2 beside a durable load).
 *
 *   bench_durable --coordinator HOST:PORT [--seconds S] [--batch N] [--threads T]
 *                 [--rate JOBS_PER_S] [--no-live]
 *
 * Each durable thread submits batches of --batch echo jobs (64 B input),
 * one batch at a time, and releases nothing (the coordinator's retention
 * does).  --rate paces the submits (0: as fast as acknowledgements come).
 * Prints one line of key=value figures. */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p2c2r/client.h"

#define MAX_SAMPLES (1u << 21)

static const char *g_addr = "127.0.0.1:8765";
static double g_seconds = 10;
static int g_batch = 32, g_threads = 1, g_live = 1;
static double g_rate = 0;
static atomic_int g_stop;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct samples {
    uint32_t *v;
    size_t n;
};

static void sample_add(struct samples *s, uint64_t us)
{
    if (s->n < MAX_SAMPLES)
        s->v[s->n++] = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(struct samples *s, double p)
{
    if (!s->n)
        return 0;
    size_t i = (size_t)(p * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static p2c2r_client *connect_as(const char *name)
{
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.name = name;
    o.connect_timeout_ms = 5000;
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(g_addr, &o, &c);
    if (rc) {
        fprintf(stderr, "bench_durable: cannot connect to %s: %s\n", g_addr, p2c2r_strerror(rc));
        exit(1);
    }
    return c;
}

struct dthread {
    pthread_t th;
    int idx;
    uint64_t acked, refused, errors;
    struct samples lat;
};

static void *durable_main(void *arg)
{
    struct dthread *d = arg;
    char name[32];
    snprintf(name, sizeof(name), "bench-durable-%d", d->idx);
    p2c2r_client *c = connect_as(name);
    struct p2c2r_task *t = calloc((size_t)g_batch, sizeof(*t));
    uint64_t *ids = calloc((size_t)g_batch, sizeof(*ids));
    int *codes = calloc((size_t)g_batch, sizeof(*codes));
    char in[64];
    memset(in, 'd', sizeof(in));
    for (int k = 0; k < g_batch; k++) {
        p2c2r_task_init(&t[k]);
        t[k].type = "echo";
        t[k].input = in;
        t[k].input_len = sizeof(in);
        t[k].priority = P2C2R_PRIO_BACKGROUND;
    }
    uint64_t start = now_us();
    double per_thread_rate = g_rate / g_threads;
    while (!atomic_load(&g_stop)) {
        if (per_thread_rate > 0) {
            uint64_t due = start + (uint64_t)((double)d->acked / per_thread_rate * 1e6);
            uint64_t now = now_us();
            if (due > now) {
                struct timespec ts = {0, (long)((due - now) * 1000)};
                nanosleep(&ts, NULL);
            }
        }
        uint64_t t0 = now_us();
        int rc = p2c2r_job_submit(c, t, (size_t)g_batch, NULL, 10000, ids, codes);
        uint64_t t1 = now_us();
        if (rc) {
            d->errors++;
            fprintf(stderr, "bench_durable: submit: %s: %s\n", p2c2r_strerror(rc), p2c2r_client_last_error(c));
            break;
        }
        sample_add(&d->lat, t1 - t0);
        for (int k = 0; k < g_batch; k++)
            codes[k] ? d->refused++ : d->acked++;
    }
    p2c2r_client_close(c);
    free(t);
    free(ids);
    free(codes);
    return NULL;
}

struct lthread {
    pthread_t th;
    uint64_t done, errors;
    struct samples lat;
};

static void *live_main(void *arg)
{
    struct lthread *l = arg;
    p2c2r_client *c = connect_as("bench-live");
    char in[64];
    memset(in, 'l', sizeof(in));
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    t.input = in;
    t.input_len = sizeof(in);
    t.flags = P2C2R_TASK_NOCACHE;
    while (!atomic_load(&g_stop)) {
        uint64_t t0 = now_us();
        p2c2r_ticket tk;
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        int rc = p2c2r_client_submit(c, &t, &tk);
        if (rc == 0)
            rc = p2c2r_client_wait(c, tk, 10000, &r);
        uint64_t t1 = now_us();
        if (rc || r.status) {
            l->errors++;
        } else {
            l->done++;
            sample_add(&l->lat, t1 - t0);
        }
        p2c2r_result_release(&r);
        /* A probe, not a load: about 1,000 round trips a second. */
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    p2c2r_client_close(c);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--coordinator") && v)
            g_addr = v, i++;
        else if (!strcmp(a, "--seconds") && v)
            g_seconds = atof(v), i++;
        else if (!strcmp(a, "--batch") && v)
            g_batch = atoi(v), i++;
        else if (!strcmp(a, "--threads") && v)
            g_threads = atoi(v), i++;
        else if (!strcmp(a, "--rate") && v)
            g_rate = atof(v), i++;
        else if (!strcmp(a, "--no-live"))
            g_live = 0;
        else {
            fprintf(stderr, "usage: bench_durable --coordinator HOST:PORT [--seconds S] [--batch N] [--threads T]"
                            " [--rate JOBS_PER_S] [--no-live]\n");
            return 2;
        }
    }
    if (g_batch < 1 || g_batch > 4096 || g_threads < 1 || g_threads > 64 || g_seconds <= 0) {
        fprintf(stderr, "bench_durable: --batch 1..4096, --threads 1..64, --seconds > 0\n");
        return 2;
    }
    struct dthread *d = calloc((size_t)g_threads, sizeof(*d));
    struct lthread l;
    memset(&l, 0, sizeof(l));
    l.lat.v = malloc(MAX_SAMPLES * sizeof(uint32_t));
    uint64_t t0 = now_us();
    for (int i = 0; i < g_threads; i++) {
        d[i].idx = i;
        d[i].lat.v = malloc(MAX_SAMPLES * sizeof(uint32_t));
        pthread_create(&d[i].th, NULL, durable_main, &d[i]);
    }
    if (g_live)
        pthread_create(&l.th, NULL, live_main, &l);
    struct timespec ts = {(time_t)g_seconds, (long)((g_seconds - (double)(time_t)g_seconds) * 1e9)};
    nanosleep(&ts, NULL);
    atomic_store(&g_stop, 1);
    for (int i = 0; i < g_threads; i++)
        pthread_join(d[i].th, NULL);
    if (g_live)
        pthread_join(l.th, NULL);
    double secs = (double)(now_us() - t0) / 1e6;
    struct samples all = {malloc(MAX_SAMPLES * sizeof(uint32_t)), 0};
    uint64_t acked = 0, refused = 0, errors = 0;
    for (int i = 0; i < g_threads; i++) {
        acked += d[i].acked;
        refused += d[i].refused;
        errors += d[i].errors;
        for (size_t k = 0; k < d[i].lat.n; k++)
            sample_add(&all, d[i].lat.v[k]);
    }
    qsort(all.v, all.n, sizeof(uint32_t), cmp_u32);
    qsort(l.lat.v, l.lat.n, sizeof(uint32_t), cmp_u32);
    printf("durable_jobs_acked=%" PRIu64 " durable_jobs_per_s=%.0f batch=%d threads=%d ack_p50_us=%u ack_p99_us=%u"
           " refused=%" PRIu64 " errors=%" PRIu64 " live_roundtrips=%" PRIu64 " live_p50_us=%u live_p99_us=%u"
           " seconds=%.2f\n",
           acked, (double)acked / secs, g_batch, g_threads, pct(&all, 0.5), pct(&all, 0.99), refused, errors,
           l.done, pct(&l.lat, 0.5), pct(&l.lat, 0.99), secs);
    return errors ? 1 : 0;
}
