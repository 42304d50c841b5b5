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

/* ---- renters (the harness's driver, over the API or a raw connection) ------------- */

struct renter {
    char name[32];
    int id, tasks, raw;
    pthread_t thread;
    struct tally t;
    uint8_t in[MAX_SIZE], check[MAX_SIZE]; /* scratch: the input sent, the input judged against */
};

static void renter_task(void *arg, int i, struct p2c2r_task *t)
{
    struct renter *r = arg;
    struct task_spec s = spec_of(r->id, i);
    t->type = s.sha ? "sha256" : "echo";
    t->priority = P2C2R_PRIO_INTERACTIVE;
    t->input = input_of(&s, r->in);
    t->input_len = s.n;
    t->flags = s.shared >= 0 ? 0 : P2C2R_TASK_NOCACHE;
}

static void renter_judge(void *arg, int i, const struct h_outcome *o)
{
    struct renter *r = arg;
    struct task_spec s = spec_of(r->id, i);
    if (o->type == MSG_REJECTED) {
        r->t.failed++;
        H_FAIL("%s: task %d REJECTED: %s %.*s", r->name, i, h_err(o->status), (int)o->len, (const char *)o->out);
    } else {
        judge(r->name, &r->t, i, &s, input_of(&s, r->check), o->status, o->out, o->len, o->attempts,
              (o->flags & PROTO_DELIVER_F_CACHED) != 0);
    }
    atomic_fetch_add(&g_done, 1);
}

static void *renter_main(void *arg)
{
    struct renter *r = arg;
    struct h_renter d = {.name = r->name, .raw = r->raw, .tasks = r->tasks, .window = WINDOW,
                         .no_progress_ms = NO_PROGRESS_MS, .task = renter_task, .judge = renter_judge, .arg = r};
    h_renter_run(&d);
    r->t.dup = d.dup;
    r->t.unknown = d.unknown;
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
    static struct renter rs[API_RENTERS + 1];
    atomic_store(&g_active, API_RENTERS + 1);
    for (int i = 0; i <= API_RENTERS; i++) {
        rs[i].id = i + 1;
        rs[i].tasks = per;
        rs[i].raw = i == API_RENTERS;
        if (rs[i].raw)
            snprintf(rs[i].name, sizeof(rs[i].name), "raw-renter");
        else
            snprintf(rs[i].name, sizeof(rs[i].name), "api-renter-%d", rs[i].id);
        H_REQUIRE(pthread_create(&rs[i].thread, NULL, renter_main, &rs[i]) == 0, "pthread_create");
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
    json_t *js = h_stats(NULL);
    H_REQUIRE(js, "no stats");
    long long requeued = h_json_int(js, "counters.requeued"), completed = h_json_int(js, "counters.completed");
    h_log("coordinator: completed=%lld failed=%lld requeued=%lld retries=%lld lost=%lld cache_hits=%lld "
          "coalesced=%lld",
          completed, h_json_int(js, "counters.failed"), requeued, h_json_int(js, "counters.retries"),
          h_json_int(js, "counters.lost"), h_json_int(js, "counters.cache_hits"),
          h_json_int(js, "counters.coalesced"));
    H_CHECK(kills >= 5, "only %d peers were killed: the storm did not happen", kills);
    H_CHECK(requeued >= 1 && sum.retried >= 1,
            "no task was caught on a killed peer (requeued %lld, retried %d)", requeued, sum.retried);
    H_CHECK(completed == total, "counters.completed %lld, expected %d", completed, total);
    long long repeats = h_json_int(js, "counters.cache_hits") + h_json_int(js, "counters.coalesced");
    H_CHECK(sum.cached == repeats, "%d outcomes flagged CACHED, but the coordinator answered %lld tasks "
                                   "from the cache or an identical task",
            sum.cached, repeats);
    H_CHECK(h_json_int(js, "counters.failed") == 0, "counters.failed should be 0");
    H_CHECK(h_json_int(js, "counters.lost") == 0, "counters.lost should be 0");
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live should be 0 after every outcome");
    H_CHECK(h_json_int(js, "queued") == 0, "queued should be 0 after every outcome");
    json_decref(js);
    return h_finish();
}
