/* bench_jetstream.c - the durable-jobs comparison point (issue 13): NATS
 * JetStream doing what bench_durable does with p2c2r.  A work-queue stream
 * on file storage holds the jobs; submitters publish 64 B jobs and count a
 * job once its PubAck came back (JetStream's "stored"), one batch at a time
 * (batch 1: js_Publish; batch N: N js_PublishAsync then
 * js_PublishAsyncComplete); a worker on its own connection pulls them and
 * acknowledges each (natsMsg_Ack), which removes it from the stream.
 *
 *   bench_jetstream --url nats://127.0.0.1:PORT [--seconds S] [--batch N]
 *
 * Run by bench/bench_durable.sh when nats-server and libnats are installed
 * (scripts/deps.sh --bench).  Prints one line of key=value figures, named
 * as bench_durable's. */
#define _GNU_SOURCE /* clock_gettime, nanosleep under -std=c17 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#define MAX_SAMPLES (1u << 21)

static const char *g_url = "nats://127.0.0.1:4222";
static double g_seconds = 10;
static int g_batch = 32;
static atomic_int g_stop;
static atomic_llong g_worked;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, natsStatus s)
{
    fprintf(stderr, "bench_jetstream: %s: %s\n", what, natsStatus_GetText(s));
    exit(1);
}

static void *worker_main(void *arg)
{
    (void)arg;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsSubscription *sub = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, g_url);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s == NATS_OK)
        s = js_PullSubscribe(&sub, js, "jobs.>", "workers", NULL, NULL, &jerr);
    if (s != NATS_OK)
        die("worker", s);
    while (!atomic_load(&g_stop)) {
        natsMsgList list = {0};
        s = natsSubscription_Fetch(&list, sub, 256, 100, &jerr);
        if (s != NATS_OK)
            continue; /* a timeout: nothing to do */
        for (int i = 0; i < list.Count; i++)
            if (natsMsg_Ack(list.Msgs[i], NULL) == NATS_OK)
                atomic_fetch_add(&g_worked, 1);
        natsMsgList_Destroy(&list);
    }
    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    return NULL;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--url") && v)
            g_url = v, i++;
        else if (!strcmp(a, "--seconds") && v)
            g_seconds = atof(v), i++;
        else if (!strcmp(a, "--batch") && v)
            g_batch = atoi(v), i++;
        else {
            fprintf(stderr, "usage: bench_jetstream --url nats://HOST:PORT [--seconds S] [--batch N]\n");
            return 2;
        }
    }
    if (g_batch < 1 || g_batch > 4096 || g_seconds <= 0) {
        fprintf(stderr, "bench_jetstream: --batch 1..4096, --seconds > 0\n");
        return 2;
    }
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    jsErrCode jerr = 0;
    natsStatus s = natsConnection_ConnectTo(&nc, g_url);
    if (s == NATS_OK)
        s = natsConnection_JetStream(&js, nc, NULL);
    if (s != NATS_OK)
        die("connect", s);
    (void)js_DeleteStream(js, "JOBS", NULL, NULL);
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    const char *subjects[] = {"jobs.>"};
    cfg.Name = "JOBS";
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Retention = js_WorkQueuePolicy; /* a worker's ack removes the job */
    if ((s = js_AddStream(NULL, js, &cfg, NULL, &jerr)) != NATS_OK)
        die("add stream", s);
    pthread_t worker;
    pthread_create(&worker, NULL, worker_main, NULL);

    uint32_t *lat = malloc(MAX_SAMPLES * sizeof(uint32_t));
    size_t nlat = 0;
    uint64_t acked = 0, errors = 0;
    char job[64];
    memset(job, 'j', sizeof(job));
    uint64_t t0 = now_us(), end = t0 + (uint64_t)(g_seconds * 1e6);
    while (now_us() < end) {
        uint64_t a = now_us();
        if (g_batch == 1) {
            s = js_Publish(NULL, js, "jobs.echo", job, (int)sizeof(job), NULL, &jerr);
        } else {
            s = NATS_OK;
            for (int k = 0; k < g_batch && s == NATS_OK; k++)
                s = js_PublishAsync(js, "jobs.echo", job, (int)sizeof(job), NULL);
            if (s == NATS_OK)
                s = js_PublishAsyncComplete(js, NULL);
        }
        uint64_t b = now_us();
        if (s != NATS_OK) {
            errors++;
            fprintf(stderr, "bench_jetstream: publish: %s\n", natsStatus_GetText(s));
            break;
        }
        acked += (uint64_t)g_batch;
        if (nlat < MAX_SAMPLES)
            lat[nlat++] = (uint32_t)(b - a);
    }
    double secs = (double)(now_us() - t0) / 1e6;
    /* Let the worker finish what was stored, for the count. */
    for (int i = 0; i < 200 && (uint64_t)atomic_load(&g_worked) < acked; i++) {
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&g_stop, 1);
    pthread_join(worker, NULL);
    qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
    uint32_t p50 = nlat ? lat[(size_t)(0.5 * (double)(nlat - 1) + 0.5)] : 0;
    uint32_t p99 = nlat ? lat[(size_t)(0.99 * (double)(nlat - 1) + 0.5)] : 0;
    printf("jetstream_jobs_acked=%" PRIu64 " jetstream_jobs_per_s=%.0f batch=%d ack_p50_us=%u ack_p99_us=%u"
           " worker_acked=%lld errors=%" PRIu64 " seconds=%.2f\n",
           acked, (double)acked / secs, g_batch, p50, p99, (long long)atomic_load(&g_worked), errors, secs);
    free(lat);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    nats_Close();
    return errors ? 1 : 0;
}
