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

struct slot {
    p2c2r_ticket tk;
    uint8_t *in;
    size_t n;
    int task; /* index, -1 when free */
};

struct renter {
    int id;
    int tasks;
    pthread_t thread;
    /* results */
    int ok, failed, mismatched, unknown;
    uint64_t bytes;
    char error[256];
};

static void *renter_main(void *arg)
{
    struct renter *r = arg;
    char name[32];
    snprintf(name, sizeof(name), "renter-%d", r->id);
    struct p2c2r_client_options o = {sizeof o, NULL, name, h_bound_ms(5000), 0};
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    if (!H_CHECK(rc == 0, "%s: connect: %s", name, h_err(rc)))
        return NULL;
    struct slot slot[WINDOW];
    for (int i = 0; i < WINDOW; i++) {
        slot[i].task = -1;
        slot[i].in = malloc(MAX_SIZE);
    }
    uint64_t size_rng = 0x1234u + (uint64_t)r->id * 7919u;
    int next = 0, done = 0, inflight = 0;
    uint64_t last_progress = h_now_ms();
    struct p2c2r_result res[WINDOW] = {P2C2R_RESULT_INIT};
    while (done < r->tasks) {
        for (int i = 0; i < WINDOW && next < r->tasks; i++) {
            if (slot[i].task >= 0)
                continue;
            struct slot *s = &slot[i];
            s->n = h_log_uniform(&size_rng, MAX_SIZE);
            s->task = next;
            uint64_t seed = (uint64_t)r->id << 32 | (uint64_t)next;
            h_fill(s->in, s->n, seed);
            /* The first bytes also spell out who the task is, for whoever
             * reads a mismatch report. */
            if (s->n >= 16) {
                memcpy(s->in, &seed, 8);
                memcpy(s->in + 8, "p2c2r-it", 8);
            }
            struct p2c2r_task t = {sizeof t, "echo", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, s->in, s->n};
            rc = p2c2r_client_submit(c, &t, &s->tk);
            if (rc == P2C2R_EAGAIN) {
                s->task = -1;
                break;
            }
            if (!H_CHECK(rc == 0, "%s: submit task %d (%zu bytes): %s", name, next, s->n, h_err(rc)))
                goto out;
            next++;
            inflight++;
        }
        int n = p2c2r_client_poll(c, res, WINDOW, 1000);
        if (!H_CHECK(n >= 0, "%s: poll: %s (%s)", name, h_err(n), p2c2r_client_last_error(c)))
            goto out;
        uint64_t now = h_now_ms();
        if (n > 0)
            last_progress = now;
        else if (!H_CHECK(now - last_progress < (uint64_t)h_bound_ms(NO_PROGRESS_MS),
                          "%s: no result for %d ms with %d tasks in flight (%d of %d done)", name,
                          h_bound_ms(NO_PROGRESS_MS), inflight, done, r->tasks))
            goto out;
        for (int k = 0; k < n; k++) {
            struct p2c2r_result *x = &res[k];
            struct slot *s = NULL;
            for (int i = 0; i < WINDOW; i++) {
                if (slot[i].task >= 0 && slot[i].tk.id == x->ticket.id)
                    s = &slot[i];
            }
            if (!s) {
                r->unknown++;
                H_FAIL("%s: result for ticket %llu that is not in flight (duplicate or invented)",
                        name, (unsigned long long)x->ticket.id);
            } else if (x->status != 0) {
                r->failed++;
                if (r->failed <= 5)
                    H_FAIL("%s: task %d (%zu bytes) failed: %s: %.*s", name, s->task, s->n,
                            h_err(x->status), (int)x->output_len, x->output ? (char *)x->output : "");
            } else if (x->output_len != s->n || (s->n && memcmp(x->output, s->in, s->n) != 0)) {
                r->mismatched++;
                if (r->mismatched <= 5) {
                    size_t at = 0;
                    while (at < s->n && at < x->output_len && ((uint8_t *)x->output)[at] == s->in[at])
                        at++;
                    H_FAIL("%s: task %d: echo returned %zu bytes for %zu, first difference at byte %zu",
                            name, s->task, x->output_len, s->n, at);
                }
            } else {
                r->ok++;
                r->bytes += s->n;
            }
            if (s) {
                s->task = -1;
                inflight--;
                done++;
            }
            p2c2r_result_release(x);
        }
    }
out:
    for (int i = 0; i < WINDOW; i++)
        free(slot[i].in);
    p2c2r_client_close(c);
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
    char *js = h_stats(NULL);
    H_CHECK(js != NULL, "stats after the run");
    H_CHECK(h_json_num(js, NULL, "tasks_live") == 0, "tasks_live should be 0 after every result: %s",
            js ? js : "");
    H_CHECK(h_json_num(js, NULL, "queued") == 0, "queued should be 0 after every result");
    H_CHECK(h_json_num(js, NULL, "completed") == (long long)per * RENTERS,
            "counters.completed %lld, expected %d", h_json_num(js, NULL, "completed"), per * RENTERS);
    H_CHECK(h_json_num(js, NULL, "peers_connected") == 2, "both peers still connected");
    free(js);
    return h_finish();
}
