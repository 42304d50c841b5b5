/* nats_bench: echo request-reply benchmark for nats-server, a p2c2r competitor.
 *
 *   nats_bench worker --url nats://H:P --connections N [--ready-file F]
 *                     [--send-asap] [--global-delivery THREADS]
 *       N connections, each with a queue subscription (group "echo-workers")
 *       on subject "echo" whose handler publishes the request's payload,
 *       unchanged, to the request's reply subject.  Writes F once every
 *       subscription is known to the server, then runs until killed.
 *
 *   nats_bench client --url nats://H:P --tasks N --inflight K --size B
 *                     [--warmup W] [--send-asap] [--timeout SEC]
 *       One connection with one wildcard subscription on its own inbox
 *       ("_INBOX.<nuid>.*").  Request i is published on "echo" with reply
 *       subject "_INBOX.<nuid>.<i>" (the same scheme nats.c's own
 *       natsConnection_Request uses, minus its per-call locking).  K requests
 *       are published up front, then every reply publishes the next request,
 *       so exactly K are in flight until the tail.  A request's latency runs
 *       from just before its publish call to the arrival of its reply in the
 *       subscription callback.  Prints one JSON line (bench_common.h).
 *
 * --send-asap sets natsOptions_SetSendAsap (write each publish to the socket
 * immediately instead of letting the connection's flusher thread batch them):
 * lower latency at one-in-flight, lower throughput under load. */
#define _POSIX_C_SOURCE 200809L

#include "bench_common.h"

#include <getopt.h>
#include <nats/nats.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SUBJECT "echo"
#define QUEUE_GROUP "echo-workers"

struct opts {
    const char *url;
    const char *ready_file;
    unsigned long connections;
    unsigned long tasks;
    unsigned long inflight;
    unsigned long warmup;
    unsigned long timeout_s;
    unsigned long global_delivery;
    size_t size;
    bool send_asap;
};

static void die_status(const char *what, natsStatus s)
{
    fprintf(stderr, "%s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(1);
}

static natsConnection *connect_to(const struct opts *o)
{
    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, o->url);
    if (s == NATS_OK)
        s = natsOptions_SetSendAsap(opts, o->send_asap);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK && o->global_delivery)
        s = natsOptions_UseGlobalMessageDelivery(opts, true);
    if (s == NATS_OK)
        s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK)
        die_status("connect", s);
    natsOptions_Destroy(opts);
    return nc;
}

/* ---------------------------------------------------------------- worker */

static void on_request(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)sub;
    (void)closure;
    const char *reply = natsMsg_GetReply(msg);
    if (reply) {
        natsStatus s = natsConnection_Publish(nc, reply, natsMsg_GetData(msg),
                                              natsMsg_GetDataLength(msg));
        if (s != NATS_OK && s != NATS_CONNECTION_CLOSED)
            fprintf(stderr, "worker publish: %s\n", natsStatus_GetText(s));
    }
    natsMsg_Destroy(msg);
}

static int run_worker(const struct opts *o)
{
    if (o->global_delivery) {
        natsStatus s = nats_SetMessageDeliveryPoolSize((int)o->global_delivery);
        if (s != NATS_OK)
            die_status("nats_SetMessageDeliveryPoolSize", s);
    }
    natsConnection **conns = calloc(o->connections, sizeof *conns);
    natsSubscription **subs = calloc(o->connections, sizeof *subs);
    if (!conns || !subs) {
        perror("calloc");
        return 1;
    }
    for (unsigned long i = 0; i < o->connections; i++) {
        conns[i] = connect_to(o);
        natsStatus s = natsConnection_QueueSubscribe(&subs[i], conns[i], SUBJECT, QUEUE_GROUP,
                                                     on_request, NULL);
        if (s != NATS_OK)
            die_status("queue subscribe", s);
    }
    /* A flush round-trip per connection guarantees the server has every SUB. */
    for (unsigned long i = 0; i < o->connections; i++) {
        natsStatus s = natsConnection_FlushTimeout(conns[i], 10000);
        if (s != NATS_OK)
            die_status("flush", s);
    }
    if (o->ready_file && bench_write_ready_file(o->ready_file) != 0) {
        perror("ready file");
        return 1;
    }
    for (;;)
        pause(); /* killed by the harness */
}

/* ---------------------------------------------------------------- client */

struct client {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    natsConnection *nc;
    char prefix[128]; /* "_INBOX.<nuid>." */
    const unsigned char *payload;
    size_t size;
    /* current phase: ids [base, base + total) */
    unsigned long base, total, inflight;
    unsigned long submitted, done, completed, failed;
    bool publish_error;
    uint64_t *start_ns; /* by id - base */
    uint64_t *lat_ns;
    size_t n_lat;
};

/* Caller holds c->mu. */
static void publish_next(struct client *c)
{
    unsigned long idx = c->submitted++;
    char reply[160];
    snprintf(reply, sizeof reply, "%s%lu", c->prefix, c->base + idx);
    c->start_ns[idx] = bench_now_ns();
    natsStatus s = natsConnection_PublishRequest(c->nc, SUBJECT, reply, c->payload, (int)c->size);
    if (s != NATS_OK) {
        fprintf(stderr, "publish: %s\n", natsStatus_GetText(s));
        c->publish_error = true;
        c->failed++;
        c->done++;
    }
}

static void on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure)
{
    (void)nc;
    (void)sub;
    uint64_t now = bench_now_ns();
    struct client *c = closure;
    const char *subj = natsMsg_GetSubject(msg);
    const char *dot = strrchr(subj, '.');
    unsigned long id = dot ? strtoul(dot + 1, NULL, 10) : 0;

    pthread_mutex_lock(&c->mu);
    if (dot && id >= c->base && id - c->base < c->submitted) {
        unsigned long idx = id - c->base;
        int n = natsMsg_GetDataLength(msg);
        bool ok = (size_t)n == c->size &&
                  (n == 0 || memcmp(natsMsg_GetData(msg), c->payload, (size_t)n) == 0);
        if (ok) {
            c->lat_ns[c->n_lat++] = now - c->start_ns[idx];
            c->completed++;
        } else {
            c->failed++;
        }
        c->done++;
        if (c->submitted < c->total && !c->publish_error)
            publish_next(c);
        if (c->done == c->total || (c->publish_error && c->done == c->submitted))
            pthread_cond_signal(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    natsMsg_Destroy(msg);
}

/* Runs one phase of `total` requests; returns wall seconds from the first
 * publish to the last reply (or to the timeout). */
static double run_phase(struct client *c, unsigned long total, unsigned long timeout_s)
{
    pthread_mutex_lock(&c->mu);
    c->base += c->total; /* ids of earlier phases are never reused */
    c->total = total;
    c->submitted = c->done = c->completed = c->failed = 0;
    c->publish_error = false;
    c->n_lat = 0;
    free(c->start_ns);
    free(c->lat_ns);
    c->start_ns = calloc(total, sizeof *c->start_ns);
    c->lat_ns = calloc(total, sizeof *c->lat_ns);
    if (!c->start_ns || !c->lat_ns) {
        perror("calloc");
        exit(1);
    }
    uint64_t t0 = bench_now_ns();
    for (unsigned long i = 0; i < c->inflight && c->submitted < total && !c->publish_error; i++)
        publish_next(c);

    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += (time_t)timeout_s;
    while (c->done < c->total && !(c->publish_error && c->done == c->submitted)) {
        if (pthread_cond_timedwait(&c->cv, &c->mu, &deadline) != 0)
            break; /* timed out */
    }
    uint64_t t1 = bench_now_ns();
    /* Stop the callback from touching this phase's arrays any further. */
    c->total = c->submitted;
    pthread_mutex_unlock(&c->mu);
    return (double)(t1 - t0) / 1e9;
}

static int run_client(const struct opts *o)
{
    if (o->tasks == 0 || o->inflight == 0) {
        fprintf(stderr, "--tasks and --inflight must be > 0\n");
        return 2;
    }
    static struct client c;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    c.payload = bench_make_payload(o->size);
    c.size = o->size;
    c.inflight = o->inflight;
    c.nc = connect_to(o);

    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK)
        die_status("inbox", s);
    snprintf(c.prefix, sizeof c.prefix, "%s.", (const char *)inbox);
    char wildcard[160];
    snprintf(wildcard, sizeof wildcard, "%s*", c.prefix);
    natsInbox_Destroy(inbox);

    natsSubscription *sub = NULL;
    s = natsConnection_Subscribe(&sub, c.nc, wildcard, on_reply, &c);
    if (s == NATS_OK) /* replies may be in flight in bulk: lift the client-side caps */
        s = natsSubscription_SetPendingLimits(sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_FlushTimeout(c.nc, 10000);
    if (s != NATS_OK)
        die_status("subscribe", s);

    if (o->warmup) {
        run_phase(&c, o->warmup, o->timeout_s);
        if (c.completed != o->warmup) {
            fprintf(stderr, "warm-up failed (%lu of %lu)\n", c.completed, o->warmup);
            return 1;
        }
    }
    uint64_t cpu0 = bench_cpu_us();
    double secs = run_phase(&c, o->tasks, o->timeout_s);
    uint64_t cpu1 = bench_cpu_us();

    pthread_mutex_lock(&c.mu);
    struct bench_result res = {
        .system = "nats",
        .tasks = o->tasks,
        .completed = c.completed,
        .failed = c.failed,
        .timed_out = o->tasks - c.completed - c.failed,
        .inflight = o->inflight,
        .size = o->size,
        .seconds = secs,
        .cpu_us = cpu1 - cpu0,
        .lat_ns = c.lat_ns,
        .n_lat = c.n_lat,
    };
    bench_print_json(&res);
    int rc = c.completed == o->tasks ? 0 : 1;
    pthread_mutex_unlock(&c.mu);

    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(c.nc);
    nats_CloseAndWait(2000);
    free(c.start_ns);
    free(c.lat_ns);
    free((void *)c.payload);
    return rc;
}

/* ---------------------------------------------------------------- main */

static void usage(void)
{
    fprintf(stderr,
            "usage: nats_bench worker --url URL --connections N [--ready-file F]\n"
            "                         [--send-asap] [--global-delivery THREADS]\n"
            "       nats_bench client --url URL --tasks N --inflight K --size B\n"
            "                         [--warmup W] [--send-asap] [--timeout SEC]\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage();
        return 2;
    }
    const char *mode = argv[1];
    struct opts o = {.url = "nats://127.0.0.1:4222",
                     .connections = 2,
                     .tasks = 10000,
                     .inflight = 1,
                     .size = 64,
                     .timeout_s = 60};
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"ready-file", required_argument, NULL, 'r'},
        {"connections", required_argument, NULL, 'c'},
        {"tasks", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'k'},
        {"size", required_argument, NULL, 's'},
        {"warmup", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'},
        {"send-asap", no_argument, NULL, 'a'},
        {"global-delivery", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o.url = optarg; break;
        case 'r': o.ready_file = optarg; break;
        case 'c': o.connections = bench_parse_ulong("--connections", optarg); break;
        case 'n': o.tasks = bench_parse_ulong("--tasks", optarg); break;
        case 'k': o.inflight = bench_parse_ulong("--inflight", optarg); break;
        case 's': o.size = bench_parse_ulong("--size", optarg); break;
        case 'w': o.warmup = bench_parse_ulong("--warmup", optarg); break;
        case 't': o.timeout_s = bench_parse_ulong("--timeout", optarg); break;
        case 'a': o.send_asap = true; break;
        case 'g': o.global_delivery = bench_parse_ulong("--global-delivery", optarg); break;
        default: usage(); return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(mode, "worker") == 0)
        return run_worker(&o);
    if (strcmp(mode, "client") == 0)
        return run_client(&o);
    usage();
    return 2;
}
