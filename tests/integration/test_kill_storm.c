/* test_kill_storm.c - peers killed at random while four renters run 50,000
 * tasks (x P2C2R_TEST_SCALE, at least 500 per renter).
 *
 * Four peers serve echo and sha256.  Three renters use the public API and a
 * fourth speaks the protocol directly, counting DELIVER frames on the wire
 * below the client library's bookkeeping.  Meanwhile the main thread sends
 * SIGKILL to a random peer every 5..50 ms and starts it again at once, so
 * tasks are lost with their peer all the time and work goes on.  The first
 * peer is spared: a restarted peer takes a while to register (longer under
 * ASan), and with no peer of a type registered the coordinator rightly
 * refuses new tasks of it (EUNSUPPORTED) instead of queueing them.
 *
 * Inputs are patterns derived from (renter, task), so every output is
 * checked byte for byte: echo returns its input, sha256 its digest.  Tasks
 * carry NOCACHE and distinct inputs, so each one really runs, except every
 * 50th: task i of every renter is then the same sha256 (of shared input
 * i / 50), submitted by all four at about the same time, so most of those
 * are coalesced onto an identical task in flight, whose peer may die under
 * it, or answered from the cache.
 *
 * Checked: every ticket gets exactly one outcome (none missing, none twice,
 * none for a ticket never submitted), every outcome is a success with the
 * right bytes (--max-attempts 10 makes losing a task to ten dead peers in a
 * row, ELOST, practically impossible, so it counts as a failure), and the
 * coordinator ends with nothing live or queued and counters that agree. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PEERS 4
#define API_RENTERS 3
#define WINDOW 64
#define MAX_SIZE (32u << 10)
#define SHARED 256
#define SHARED_SIZE 4096
#define NO_PROGRESS_MS 30000

static atomic_int g_done;   /* outcomes seen by all renters */
static atomic_int g_active; /* renters still running */
static uint8_t g_shared[SHARED][SHARED_SIZE];
static uint8_t g_shared_md[SHARED][32];

struct task_spec {
    int sha;      /* sha256, else echo */
    int shared;   /* index into g_shared, or -1 */
    size_t n;
    uint64_t seed;
};

static struct task_spec spec_of(int r, int i)
{
    struct task_spec s;
    uint64_t st = (uint64_t)r * 7919u + (uint64_t)i * 104729u;
    h_rand(&st);
    s.seed = (uint64_t)r << 40 | (uint64_t)i;
    if (i % 50 == 7) {
        s.sha = 1;
        s.shared = (i / 50) % SHARED;
        s.n = SHARED_SIZE;
    } else {
        s.sha = i % 4 == 0;
        s.shared = -1;
        s.n = h_log_uniform(&st, MAX_SIZE);
    }
    return s;
}

/* Writes task (r, i)'s input to in (room for MAX_SIZE); returns it. */
static const uint8_t *input_of(const struct task_spec *s, uint8_t *in)
{
    if (s->shared >= 0)
        return g_shared[s->shared];
    h_fill(in, s->n, s->seed);
    if (s->n >= 8) /* distinct from every other task's, whatever the pattern */
        memcpy(in, &s->seed, 8);
    return in;
}

struct tally {
    int ok, failed, mismatched, dup, unknown, retried, cached;
};

static void judge(const char *who, struct tally *t, int i, const struct task_spec *s, const uint8_t *in,
                  int status, const uint8_t *out, size_t len, unsigned attempts, int cached)
{
    if (status != 0) {
        if (++t->failed <= 5)
            H_FAIL("%s: task %d (%s, %zu bytes) failed with %s: %.*s", who, i, s->sha ? "sha256" : "echo",
                   s->n, h_err(status), (int)(len > 200 ? 200 : len), out ? (const char *)out : "");
        return;
    }
    int good;
    if (s->sha) {
        uint8_t md[32];
        if (s->shared >= 0)
            memcpy(md, g_shared_md[s->shared], 32);
        else
            h_sha256(in, s->n, md);
        good = len == 32 && memcmp(out, md, 32) == 0;
    } else {
        good = len == s->n && (len == 0 || memcmp(out, in, len) == 0);
    }
    if (!good) {
        if (++t->mismatched <= 5)
            H_FAIL("%s: task %d (%s, %zu bytes): wrong output (%zu bytes)", who, i,
                   s->sha ? "sha256" : "echo", s->n, len);
        return;
    }
    t->ok++;
    t->retried += attempts > 1;
    t->cached += cached;
}

/* ---- renters on the public API ---------------------------------------------------- */

struct renter {
    int id, tasks;
    pthread_t thread;
    struct tally t;
};

static void *api_main(void *arg)
{
    struct renter *r = arg;
    char name[32];
    snprintf(name, sizeof(name), "api-renter-%d", r->id);
    struct p2c2r_client_options o = {sizeof o, NULL, name, h_bound_ms(5000), 0, 0};
    p2c2r_client *c = NULL;
    int *outcomes = calloc((size_t)r->tasks, sizeof(int));
    struct {
        int task;
        p2c2r_ticket tk;
        uint8_t *buf;
        const uint8_t *in;
        struct task_spec s;
    } slot[WINDOW];
    for (int i = 0; i < WINDOW; i++) {
        slot[i].task = -1;
        slot[i].buf = malloc(MAX_SIZE);
    }
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    if (!H_CHECK(rc == 0, "%s: connect: %s", name, h_err(rc)))
        goto out;
    int next = 0, done = 0;
    uint64_t last = h_now_ms();
    struct p2c2r_result res[WINDOW] = {P2C2R_RESULT_INIT};
    while (done < r->tasks) {
        for (int i = 0; i < WINDOW && next < r->tasks; i++) {
            if (slot[i].task >= 0)
                continue;
            slot[i].s = spec_of(r->id, next);
            slot[i].in = input_of(&slot[i].s, slot[i].buf);
            struct p2c2r_task t = {.size = sizeof t, .type = slot[i].s.sha ? "sha256" : "echo",
                                   .priority = P2C2R_PRIO_INTERACTIVE,
                                   .input = slot[i].in,
                                   .input_len = slot[i].s.n,
                                   .flags = slot[i].s.shared >= 0 ? 0 : P2C2R_TASK_NOCACHE};
            rc = p2c2r_client_submit(c, &t, &slot[i].tk);
            if (!H_CHECK(rc == 0, "%s: submit task %d: %s", name, next, h_err(rc)))
                goto out;
            slot[i].task = next++;
        }
        int n = p2c2r_client_poll(c, res, WINDOW, 500);
        if (!H_CHECK(n >= 0, "%s: poll: %s (%s)", name, h_err(n), p2c2r_client_last_error(c)))
            goto out;
        uint64_t now = h_now_ms();
        if (n > 0)
            last = now;
        else if (!H_CHECK(now - last < (uint64_t)h_bound_ms(NO_PROGRESS_MS),
                          "%s: no outcome for %d ms (%d of %d done): a renter hangs", name,
                          h_bound_ms(NO_PROGRESS_MS), done, r->tasks))
            goto out;
        for (int k = 0; k < n; k++) {
            int s = -1;
            for (int i = 0; i < WINDOW; i++)
                if (slot[i].task >= 0 && slot[i].tk.id == res[k].ticket.id)
                    s = i;
            if (s < 0) {
                r->t.unknown++;
                H_FAIL("%s: outcome for ticket %llu which is not in flight", name,
                       (unsigned long long)res[k].ticket.id);
            } else {
                int i = slot[s].task;
                if (outcomes[i]++)
                    r->t.dup++;
                judge(name, &r->t, i, &slot[s].s, slot[s].in, res[k].status, res[k].output,
                      res[k].output_len, res[k].attempts, (res[k].flags & P2C2R_RESULT_CACHED) != 0);
                slot[s].task = -1;
                done++;
                atomic_fetch_add(&g_done, 1);
            }
            p2c2r_result_release(&res[k]);
        }
    }
out:
    for (int i = 0; i < WINDOW; i++)
        free(slot[i].buf);
    free(outcomes);
    p2c2r_client_close(c);
    atomic_fetch_sub(&g_active, 1);
    return NULL;
}

/* ---- a renter speaking the protocol directly ------------------------------------------ */

static void *raw_main(void *arg)
{
    struct renter *r = arg;
    const char *name = "raw-renter";
    struct h_raw conn;
    int *delivers = calloc((size_t)r->tasks, sizeof(int));
    uint8_t **bufs = calloc((size_t)r->tasks, sizeof(*bufs));
    if (!H_CHECK(h_raw_connect(&conn, h_addr()) == 0, "%s: connect", name)) {
        free(delivers);
        free(bufs);
        atomic_fetch_sub(&g_active, 1);
        return NULL;
    }
    int rc = h_raw_hello(&conn, ROLE_RENTER, NULL, NULL);
    if (!H_CHECK(rc == 0, "%s: HELLO answered with %d", name, rc))
        goto out;
    int next = 0, done = 0, inflight = 0;
    uint64_t last = h_now_ms();
    while (done < r->tasks) {
        while (inflight < WINDOW && next < r->tasks) {
            struct task_spec s = spec_of(r->id, next);
            bufs[next] = malloc(MAX_SIZE);
            const uint8_t *in = input_of(&s, bufs[next]);
            size_t bl;
            uint8_t *body = h_task_body_ext(s.sha ? "sha256" : "echo", PRIO_INTERACTIVE,
                                            s.shared >= 0 ? 0 : PROTO_TASK_F_NOCACHE, NULL, 0, in, s.n,
                                            &bl);
            H_REQUIRE(body, "out of memory");
            /* ticket = task index + 1 */
            rc = h_raw_send_frame(&conn, MSG_SUBMIT, 0, (uint64_t)next + 1, body, bl, h_bound_ms(10000));
            free(body);
            if (!H_CHECK(rc == 0, "%s: sending SUBMIT %d failed", name, next))
                goto out;
            next++;
            inflight++;
        }
        struct h_outcome o;
        rc = h_raw_outcome(&conn, &o, 500);
        uint64_t now = h_now_ms();
        if (rc == H_RAW_TIMEOUT) {
            if (!H_CHECK(now - last < (uint64_t)h_bound_ms(NO_PROGRESS_MS),
                         "%s: no outcome for %d ms (%d of %d done): a renter hangs", name,
                         h_bound_ms(NO_PROGRESS_MS), done, r->tasks))
                goto out;
            continue;
        }
        if (!H_CHECK(rc == H_RAW_FRAME, "%s: connection ended (%d) with %d of %d done", name, rc, done,
                     r->tasks))
            goto out;
        last = now;
        if (!H_CHECK(o.ticket >= 1 && o.ticket <= (uint64_t)next, "%s: %s for ticket %llu never submitted",
                     name, proto_type_name(o.type), (unsigned long long)o.ticket)) {
            r->t.unknown++;
            continue;
        }
        int i = (int)(o.ticket - 1);
        if (delivers[i]++) {
            r->t.dup++;
            H_FAIL("%s: a second %s for ticket %llu", name, proto_type_name(o.type),
                   (unsigned long long)o.ticket);
            continue;
        }
        struct task_spec s = spec_of(r->id, i);
        if (o.type == MSG_REJECTED) {
            r->t.failed++;
            H_FAIL("%s: task %d REJECTED: %s %.*s", name, i, h_err(o.status), (int)o.len,
                   (const char *)o.out);
        } else {
            judge(name, &r->t, i, &s, input_of(&s, bufs[i]), o.status, o.out, o.len, o.attempts,
                  (o.flags & PROTO_DELIVER_F_CACHED) != 0);
        }
        free(bufs[i]);
        bufs[i] = NULL;
        inflight--;
        done++;
        atomic_fetch_add(&g_done, 1);
    }
    /* Anything more for these tickets would be a second outcome. */
    struct h_frame f;
    rc = h_raw_read(&conn, &f, 300);
    H_CHECK(rc == H_RAW_TIMEOUT, "%s: a frame (%s) arrived after every ticket had its outcome", name,
            rc == H_RAW_FRAME ? proto_type_name(f.hdr.type) : "none");
out:
    for (int i = 0; i < r->tasks; i++)
        free(bufs[i]);
    free(bufs);
    free(delivers);
    h_raw_close(&conn);
    atomic_fetch_sub(&g_active, 1);
    return NULL;
}

/* ---- the storm --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    h_init(argc, argv, "kill_storm");
    int per = (int)(12500 * h_scale());
    per = per < 500 ? 500 : per;
    int total = per * (API_RENTERS + 1);
    for (int k = 0; k < SHARED; k++) {
        h_fill(g_shared[k], SHARED_SIZE, 0x5eed0000u + (uint64_t)k);
        h_sha256(g_shared[k], SHARED_SIZE, g_shared_md[k]);
    }

    h_phase("start a coordinator and %d peers", PEERS);
    const char *cargs[] = {"--max-attempts", "10", NULL};
    h_coord_start(NULL, cargs);
    struct h_proc *peers[PEERS];
    for (int i = 0; i < PEERS; i++) {
        char name[32];
        snprintf(name, sizeof(name), "storm-%d", i + 1);
        peers[i] = h_peer_start(name, 2, "echo,sha256", NULL);
    }
    h_wait_peers(PEERS, NULL);

    h_phase("%d renters x %d tasks while peers are killed at random", API_RENTERS + 1, per);
    struct renter rs[API_RENTERS + 1];
    memset(rs, 0, sizeof(rs));
    atomic_store(&g_active, API_RENTERS + 1);
    for (int i = 0; i <= API_RENTERS; i++) {
        rs[i].id = i + 1;
        rs[i].tasks = per;
        H_REQUIRE(pthread_create(&rs[i].thread, NULL, i < API_RENTERS ? api_main : raw_main, &rs[i]) == 0,
                  "pthread_create");
    }
    uint64_t rng = 0x6b696c6cu, t0 = h_now_ms();
    int kills = 0;
    while (atomic_load(&g_active) > 0) {
        int pause = 5 + (int)(h_rand(&rng) % 46);
        h_sleep_ms(pause);
        if (atomic_load(&g_active) == 0)
            break;
        struct h_proc *v = peers[1 + h_rand(&rng) % (PEERS - 1)];
        h_signal(v, SIGKILL);
        H_REQUIRE(h_wait_exit(v, 5000), "%s did not die from SIGKILL", v->name);
        h_respawn(v);
        kills++;
    }
    for (int i = 0; i <= API_RENTERS; i++)
        pthread_join(rs[i].thread, NULL);
    uint64_t ms = h_now_ms() - t0;

    h_phase("judge the outcomes");
    struct tally sum = {0};
    for (int i = 0; i <= API_RENTERS; i++) {
        const struct tally *t = &rs[i].t;
        h_log("renter %d (%s): ok=%d failed=%d mismatched=%d duplicates=%d unknown=%d retried_ok=%d "
              "cached=%d",
              rs[i].id, i < API_RENTERS ? "api" : "raw", t->ok, t->failed, t->mismatched, t->dup,
              t->unknown, t->retried, t->cached);
        H_CHECK(t->ok == per && t->dup == 0 && t->unknown == 0,
                "renter %d: every one of %d tickets needs exactly one correct outcome", rs[i].id, per);
        sum.ok += t->ok, sum.retried += t->retried, sum.cached += t->cached;
    }
    h_log("%d outcomes, %d correct, in %.1f s with %d peers killed; %d succeeded after a retry, %d were "
          "answered by an identical task or the cache",
          atomic_load(&g_done), sum.ok, (double)ms / 1000.0, kills, sum.retried, sum.cached);

    h_phase("coordinator state after the storm");
    h_wait_peers(PEERS, NULL);
    char *js = h_stats(NULL);
    H_REQUIRE(js, "no stats");
    long long requeued = h_json_num(js, NULL, "requeued"), completed = h_json_num(js, NULL, "completed");
    h_log("coordinator: completed=%lld failed=%lld requeued=%lld retries=%lld lost=%lld cache_hits=%lld "
          "coalesced=%lld",
          completed, h_json_num(js, NULL, "failed"), requeued, h_json_num(js, NULL, "retries"),
          h_json_num(js, NULL, "lost"), h_json_num(js, NULL, "cache_hits"),
          h_json_num(js, NULL, "coalesced"));
    H_CHECK(kills >= 5, "only %d peers were killed: the storm did not happen", kills);
    H_CHECK(requeued >= 1 && sum.retried >= 1,
            "no task was caught on a killed peer (requeued %lld, retried %d)", requeued, sum.retried);
    H_CHECK(completed == total, "counters.completed %lld, expected %d", completed, total);
    long long repeats = h_json_num(js, NULL, "cache_hits") + h_json_num(js, NULL, "coalesced");
    H_CHECK(sum.cached == repeats, "%d outcomes flagged CACHED, but the coordinator answered %lld tasks "
                                   "from the cache or an identical task",
            sum.cached, repeats);
    H_CHECK(h_json_num(js, NULL, "failed") == 0, "counters.failed should be 0");
    H_CHECK(h_json_num(js, NULL, "lost") == 0, "counters.lost should be 0");
    H_CHECK(h_json_num(js, NULL, "tasks_live") == 0, "tasks_live should be 0 after every outcome");
    H_CHECK(h_json_num(js, NULL, "queued") == 0, "queued should be 0 after every outcome");
    free(js);
    return h_finish();
}
