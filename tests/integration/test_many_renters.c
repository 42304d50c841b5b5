/* test_many_renters.c - three renters at once, each on its own thread and
 * client, against one coordinator and two peers.
 *
 * Each renter runs N echo tasks (N = 10,000 x P2C2R_TEST_SCALE, at least
 * 500) with up to 64 in flight.  Input sizes run from 0 to 1 MiB with a
 * log-uniform distribution: every size class from a few bytes to a megabyte
 * is equally represented, while the mean stays near 1 MiB / ln(1 MiB), about
 * 75 KB, so the full run moves about 2.3 GB of input (and as much output)
 * instead of the 15 GB a uniform distribution would.
 *
 * Every input is filled with a pattern derived from (renter, task index), so
 * each result is checked byte for byte against the input of the ticket it
 * claims to answer: a result delivered to the wrong ticket, truncated,
 * duplicated or missing fails the test. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define RENTERS 3
#define WINDOW 64
#define MAX_SIZE (1u << 20)
#define NO_PROGRESS_MS 60000

struct renter {
    int id;
    int tasks;
    pthread_t thread;
    char name[32];
    uint64_t size_rng; /* draws each task's size, in task order */
    size_t *sizes;     /* task i's input size, once drawn */
    int drawn;         /* sizes drawn so far */
    uint8_t *in, *check; /* scratch: the input sent, the input judged against */
    /* results */
    int ok, failed, mismatched, unknown;
    uint64_t bytes;
};

/* Task i's input: a pattern of (renter, i) whose first bytes also spell out
 * who the task is, for whoever reads a mismatch report. */
static void input_of(const struct renter *r, int i, uint8_t *in)
{
    size_t n = r->sizes[i];
    uint64_t seed = (uint64_t)r->id << 32 | (uint64_t)i;
    h_fill(in, n, seed);
    if (n >= 16) {
        memcpy(in, &seed, 8);
        memcpy(in + 8, "p2c2r-it", 8);
    }
}

static void renter_task(void *arg, int i, struct p2c2r_task *t)
{
    struct renter *r = arg;
    if (i == r->drawn)
        r->sizes[r->drawn++] = h_log_uniform(&r->size_rng, MAX_SIZE);
    input_of(r, i, r->in);
    t->type = "echo";
    t->priority = P2C2R_PRIO_INTERACTIVE;
    t->input = r->in;
    t->input_len = r->sizes[i];
}

static void renter_judge(void *arg, int i, const struct h_outcome *o)
{
    struct renter *r = arg;
    size_t n = r->sizes[i];
    input_of(r, i, r->check);
    if (o->status != 0) {
        r->failed++;
        if (r->failed <= 5)
            H_FAIL("%s: task %d (%zu bytes) failed: %s: %.*s", r->name, i, n, h_err(o->status), (int)o->len,
                   o->out ? (const char *)o->out : "");
    } else if (o->len != n || (n && memcmp(o->out, r->check, n) != 0)) {
        r->mismatched++;
        if (r->mismatched <= 5) {
            size_t at = 0;
            while (at < n && at < o->len && o->out[at] == r->check[at])
                at++;
            H_FAIL("%s: task %d: echo returned %zu bytes for %zu, first difference at byte %zu", r->name, i,
                   o->len, n, at);
        }
    } else {
        r->ok++;
        r->bytes += n;
    }
}

static void *renter_main(void *arg)
{
    struct renter *r = arg;
    snprintf(r->name, sizeof(r->name), "renter-%d", r->id);
    r->size_rng = 0x1234u + (uint64_t)r->id * 7919u;
    r->sizes = calloc((size_t)r->tasks, sizeof(*r->sizes));
    r->in = malloc(MAX_SIZE);
    r->check = malloc(MAX_SIZE);
    H_REQUIRE(r->sizes && r->in && r->check, "out of memory");
    struct h_renter d = {.name = r->name, .tasks = r->tasks, .window = WINDOW, .no_progress_ms = NO_PROGRESS_MS,
                         .task = renter_task, .judge = renter_judge, .arg = r};
    h_renter_run(&d);
    r->unknown = d.unknown + d.dup;
    free(r->sizes);
    free(r->in);
    free(r->check);
    return NULL;
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "many_renters");
    int per = (int)(10000 * h_scale());
    if (per < 500)
        per = 500;
    h_phase("start daemons");
    h_coord_start(NULL, NULL);
    h_peer_start("peer-1", 2, "echo", NULL);
    h_peer_start("peer-2", 2, "echo", NULL);
    h_wait_peers(2, NULL);

    h_phase("%d renters x %d echo tasks, up to %d in flight each", RENTERS, per, WINDOW);
    uint64_t t0 = h_now_ms();
    struct renter rs[RENTERS];
    memset(rs, 0, sizeof(rs));
    for (int i = 0; i < RENTERS; i++) {
        rs[i].id = i + 1;
        rs[i].tasks = per;
        H_REQUIRE(pthread_create(&rs[i].thread, NULL, renter_main, &rs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < RENTERS; i++)
        pthread_join(rs[i].thread, NULL);
    uint64_t ms = h_now_ms() - t0;
    uint64_t bytes = 0;
    for (int i = 0; i < RENTERS; i++) {
        struct renter *r = &rs[i];
        h_log("renter-%d: %d ok, %d failed, %d mismatched, %d unknown, %.1f MB echoed", r->id, r->ok,
              r->failed, r->mismatched, r->unknown, (double)r->bytes / 1e6);
        H_CHECK(r->ok == per, "renter-%d: %d of %d tasks correct", r->id, r->ok, per);
        bytes += r->bytes;
    }
    h_log("total %.1f MB of input echoed in %.1f s", (double)bytes / 1e6, (double)ms / 1000.0);

    h_phase("coordinator state after the run");
    json_t *js = h_stats(NULL);
    H_CHECK(js != NULL, "stats after the run");
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live should be 0 after every result: %s",
            h_json_text(js));
    H_CHECK(h_json_int(js, "queued") == 0, "queued should be 0 after every result");
    H_CHECK(h_json_int(js, "counters.completed") == (long long)per * RENTERS,
            "counters.completed %lld, expected %d", h_json_int(js, "counters.completed"), per * RENTERS);
    H_CHECK(h_json_int(js, "peers_connected") == 2, "both peers still connected");
    json_decref(js);
    return h_finish();
}
