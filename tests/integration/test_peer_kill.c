/* test_peer_kill.c - peers dying under load.
 *
 * Phase 1: three peers; two API renters and one raw-protocol renter run a
 * few thousand echo and sha256 tasks (some of 2 MiB, so tasks are in flight
 * on every peer).  A third of the way through, one peer is frozen (SIGSTOP)
 * until the coordinator shows tasks assigned to it, then SIGKILLed.  Every
 * ticket must get exactly one outcome (the raw renter counts DELIVER frames
 * on the wire, below the client library's bookkeeping), no renter may hang,
 * successful results must be byte-exact, and the only failure allowed is
 * ELOST (expected: none, since the coordinator requeues lost tasks).
 *
 * Phase 1b: a peer frozen (alive but silent) while holding tasks is dropped
 * after --peer-timeout; its tasks finish elsewhere; it reconnects on resuming.
 *
 * Phase 2: the other peers are frozen with tasks assigned and queued, then
 * killed: every queued task must end with EUNSUPPORTED (or ELOST) once the
 * coordinator's --orphan-timeout (500 ms here) passes, instead of hanging;
 * new tasks are refused with EUNSUPPORTED while no peer is connected.
 *
 * Phase 3: a new peer connects and tasks run again. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define WINDOW 32
/* Above the reference peer's worst idle silence (a PING after 5 s without
 * traffic, checked every second), so only a frozen peer times out. */
#define PEER_TIMEOUT_MS 8000
#define BIG_SIZE (2u << 20)
#define NO_PROGRESS_MS 30000

static atomic_int g_done;      /* outcomes seen by all renters in phase 1 */
static struct h_proc *g_peers[3];

struct task_spec {
    int sha;
    size_t n;
    uint64_t seed;
};

/* Task i of renter r: every 16th a 2 MiB sha256, otherwise echo or sha256
 * with a log-uniform size up to 1 MiB. */
static struct task_spec spec_of(int r, int i)
{
    struct task_spec s;
    uint64_t st = (uint64_t)r * 1000003u + (uint64_t)i;
    h_rand(&st);
    s.seed = (uint64_t)r << 40 | (uint64_t)i;
    if (i % 16 == 5) {
        s.sha = 1;
        s.n = BIG_SIZE;
    } else {
        s.sha = (h_rand(&st) & 3) == 0;
        s.n = h_log_uniform(&st, 1u << 20);
    }
    return s;
}

struct tally {
    int ok, lost, other, mismatched, dup, unknown, retried;
};

/* Judges one outcome of task (r, i); in is its input. */
static void judge(const char *who, struct tally *t, int i, const struct task_spec *s, const uint8_t *in,
                  int status, const uint8_t *out, size_t len, unsigned attempts)
{
    if (status == 0) {
        int good;
        if (s->sha) {
            uint8_t md[32];
            h_sha256(in, s->n, md);
            good = len == 32 && memcmp(out, md, 32) == 0;
        } else {
            good = len == s->n && (len == 0 || memcmp(out, in, len) == 0);
        }
        if (good) {
            t->ok++;
        } else if (++t->mismatched <= 5) {
            H_FAIL("%s: task %d (%s, %zu bytes): wrong output (%zu bytes)", who, i,
                   s->sha ? "sha256" : "echo", s->n, len);
        }
        if (attempts > 1)
            t->retried++;
    } else if (status == P2C2R_ELOST) {
        t->lost++;
    } else if (++t->other <= 5) {
        H_FAIL("%s: task %d (%s, %zu bytes) failed with %s: %.*s", who, i, s->sha ? "sha256" : "echo",
               s->n, h_err(status), (int)(len > 200 ? 200 : len), out ? (const char *)out : "");
    }
}

/* ---- renters (the harness's driver, over the API or a raw connection) ------------- */

struct renter {
    char name[32];
    int id, tasks, raw;
    pthread_t thread;
    struct tally t;
    int rejected;         /* raw only: REJECTED frames */
    uint8_t *in, *check;  /* scratch: the input sent, the input an outcome is judged against */
};

static void renter_task(void *arg, int i, struct p2c2r_task *t)
{
    struct renter *r = arg;
    struct task_spec s = spec_of(r->id, i);
    h_fill(r->in, s.n, s.seed);
    t->type = s.sha ? "sha256" : "echo";
    t->priority = P2C2R_PRIO_INTERACTIVE;
    t->input = r->in;
    t->input_len = s.n;
}

static void renter_judge(void *arg, int i, const struct h_outcome *o)
{
    struct renter *r = arg;
    struct task_spec s = spec_of(r->id, i);
    if (o->type == MSG_REJECTED) {
        r->rejected++;
        H_FAIL("%s: task %d REJECTED: %s %.*s", r->name, i, h_err(o->status), (int)o->len, (const char *)o->out);
    } else {
        h_fill(r->check, s.n, s.seed);
        judge(r->name, &r->t, i, &s, r->check, o->status, o->out, o->len, o->attempts);
    }
    atomic_fetch_add(&g_done, 1);
}

static void *renter_main(void *arg)
{
    struct renter *r = arg;
    r->in = malloc(BIG_SIZE);
    r->check = malloc(BIG_SIZE);
    H_REQUIRE(r->in && r->check, "out of memory");
    struct h_renter d = {.name = r->name, .raw = r->raw, .tasks = r->tasks, .window = WINDOW,
                         .no_progress_ms = NO_PROGRESS_MS, .task = renter_task, .judge = renter_judge, .arg = r};
    h_renter_run(&d);
    r->t.dup = d.dup;
    r->t.unknown = d.unknown;
    free(r->in);
    free(r->check);
    return NULL;
}

/* ---- helpers ------------------------------------------------------------------------ */

static void report(const char *who, const struct tally *t)
{
    h_log("%s: ok=%d lost=%d other_errors=%d mismatched=%d duplicates=%d unknown=%d retried_ok=%d", who,
          t->ok, t->lost, t->other, t->mismatched, t->dup, t->unknown, t->retried);
}

static void phase_kill_one(void)
{
    int per_api = (int)(1200 * h_scale()), per_raw = (int)(1000 * h_scale());
    per_api = per_api < 500 ? 500 : per_api;
    per_raw = per_raw < 400 ? 400 : per_raw;
    int total = 2 * per_api + per_raw;
    h_phase("phase 1: %d tasks from 3 renters, kill peer-2 a third of the way", total);
    struct renter api[2], raw;
    memset(api, 0, sizeof(api));
    memset(&raw, 0, sizeof(raw));
    for (int i = 0; i < 2; i++) {
        api[i].id = i + 1;
        api[i].tasks = per_api;
        snprintf(api[i].name, sizeof(api[i].name), "api-renter-%d", api[i].id);
        H_REQUIRE(pthread_create(&api[i].thread, NULL, renter_main, &api[i]) == 0, "pthread_create");
    }
    raw.id = 3;
    raw.tasks = per_raw;
    raw.raw = 1;
    snprintf(raw.name, sizeof(raw.name), "raw-renter");
    H_REQUIRE(pthread_create(&raw.thread, NULL, renter_main, &raw) == 0, "pthread_create");

    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(60000);
    while (atomic_load(&g_done) < total / 3 && h_now_ms() < end)
        h_sleep_ms(10);
    H_CHECK(atomic_load(&g_done) >= total / 3, "only %d of %d outcomes after %d ms",
            atomic_load(&g_done), total, h_bound_ms(60000));
    struct h_proc *victim = g_peers[1];
    h_signal(victim, SIGSTOP);
    long long inflight = -1, vid = -1;
    end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (h_now_ms() < end) {
        json_t *js = h_stats(NULL);
        inflight = h_json_int(js, "peers[name=peer-2].inflight");
        vid = h_json_int(js, "peers[name=peer-2].id");
        json_decref(js);
        if (inflight > 0)
            break;
        h_sleep_ms(10);
    }
    h_log("peer-2 (coordinator id %lld) frozen with %lld tasks assigned; killing it at %d outcomes", vid,
          inflight, atomic_load(&g_done));
    H_CHECK(inflight > 0, "peer-2 never held a task while frozen (inflight %lld)", inflight);
    h_signal(victim, SIGKILL);
    H_CHECK(h_wait_exit(victim, 5000), "peer-2 did not die from SIGKILL");

    for (int i = 0; i < 2; i++)
        pthread_join(api[i].thread, NULL);
    pthread_join(raw.thread, NULL);

    struct tally sum = {0};
    for (int i = 0; i < 2; i++) {
        const char *who = api[i].name;
        report(who, &api[i].t);
        H_CHECK(api[i].t.ok + api[i].t.lost == per_api && api[i].t.dup == 0 && api[i].t.unknown == 0,
                "%s: every ticket needs exactly one outcome, correct or ELOST", who);
        sum.ok += api[i].t.ok, sum.lost += api[i].t.lost, sum.retried += api[i].t.retried;
    }
    report("raw-renter", &raw.t);
    H_CHECK(raw.t.ok + raw.t.lost == per_raw && raw.t.dup == 0 && raw.t.unknown == 0 && raw.rejected == 0,
            "raw-renter: every ticket needs exactly one DELIVER, correct or ELOST");
    sum.ok += raw.t.ok, sum.lost += raw.t.lost, sum.retried += raw.t.retried;

    json_t *js = h_stats(NULL);
    long long requeued = h_json_int(js, "counters.requeued");
    h_log("phase 1 totals: %d ok, %d ELOST, %d succeeded after a retry; coordinator requeued=%lld lost=%lld",
          sum.ok, sum.lost, sum.retried, requeued, h_json_int(js, "counters.lost"));
    H_CHECK(requeued >= inflight, "coordinator requeued %lld tasks, peer-2 held %lld", requeued, inflight);
    H_CHECK(inflight <= 0 || sum.retried + sum.lost >= 1,
            "peer-2 held tasks when killed but no outcome shows a second attempt");
    H_CHECK(h_json_int(js, "peers_connected") == 2, "2 peers left after the kill");
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live should be 0 once all outcomes are in");
    json_decref(js);
}

/* A peer that stops answering (frozen, not dead: its socket stays open) is
 * dropped after --peer-timeout, its tasks finish on another peer, and once
 * it resumes it notices the cut and registers again. */
static void phase_frozen_peer(void)
{
    enum { N = 40 };
    h_phase("phase 1b: peer-3 frozen with tasks; dropped after --peer-timeout %d ms", PEER_TIMEOUT_MS);
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    h_signal(g_peers[2], SIGSTOP);
    uint8_t *in = malloc(65536);
    h_fill(in, 65536, 3);
    uint8_t md[32];
    h_sha256(in, 65536, md);
    p2c2r_ticket tk[N];
    for (int i = 0; i < N; i++) {
        /* Identical inputs would be coalesced into one run: NOCACHE keeps
         * them N separate tasks, so the frozen peer holds some. */
        struct p2c2r_task t = {.size = sizeof t, .type = "sha256", .priority = 1, .input = in, .input_len = 65536,
                               .flags = P2C2R_TASK_NOCACHE};
        rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    /* Both peers have free slots, so the frozen one gets some of these. */
    long long held = -1;
    uint64_t t0 = h_now_ms(), end = t0 + (uint64_t)h_bound_ms(5000);
    while (h_now_ms() < end) {
        rc = p2c2r_client_process(c);
        H_REQUIRE(rc >= 0, "process: %s", h_err(rc));
        held = h_stat("peers[name=peer-3].inflight");
        if (held > 0)
            break;
        h_sleep_ms(5);
    }
    H_CHECK(held > 0, "frozen peer-3 never held a task");
    int ok = 0, retried = 0;
    for (int i = 0; i < N; i++) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        rc = p2c2r_client_wait(c, tk[i], PEER_TIMEOUT_MS + h_bound_ms(15000), &r);
        if (!H_CHECK(rc == 0, "task %d: no outcome %d ms after its peer froze: %s", i,
                     PEER_TIMEOUT_MS + h_bound_ms(15000), h_err(rc)))
            break;
        H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, md, 32) == 0,
                "task %d: status %s after its peer was dropped", i, h_err(r.status));
        ok += r.status == 0;
        retried += r.attempts > 1;
        p2c2r_result_release(&r);
    }
    h_log("frozen peer-3 held %lld tasks; %d of %d tasks ok after %llu ms, %d of them on a second attempt", held,
          ok, N, (unsigned long long)(h_now_ms() - t0), retried);
    H_CHECK(retried >= 1 && retried >= held, "tasks held by the frozen peer should finish on a second "
                                             "attempt (held %lld, retried %d)",
            held, retried);
    /* Hedging may have finished its tasks on the other peer before the
     * silence timeout: the frozen peer is dropped by that timeout all the
     * same, with no help from anyone. */
    long long conn_peers = -1;
    end = h_now_ms() + (uint64_t)(PEER_TIMEOUT_MS + h_bound_ms(5000));
    while (h_now_ms() < end) {
        conn_peers = h_stat("peers_connected");
        if (conn_peers == 1)
            break;
        h_sleep_ms(50);
    }
    H_CHECK(conn_peers == 1, "peer-3 should have been dropped after %d ms of silence (peers %lld)",
            PEER_TIMEOUT_MS, conn_peers);
    h_signal(g_peers[2], SIGCONT);
    h_wait_peers(2, NULL); /* it reconnects by itself */
    free(in);
    p2c2r_client_close(c);
}

static void phase_kill_all(void)
{
    enum { N = 50 };
    h_phase("phase 2: freeze the remaining peers, queue %d tasks, kill them all", N);
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    h_signal(g_peers[0], SIGSTOP);
    h_signal(g_peers[2], SIGSTOP);
    p2c2r_ticket tk[N];
    for (int i = 0; i < N; i++) {
        struct p2c2r_task t = {sizeof t, i % 5 ? "echo" : "sha256", 0, 0, 1, NULL, 0, "queued", 6};
        rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    /* Wait until the coordinator holds all of them (assigned or queued), so
     * the kill finds them there rather than racing the submissions.
     * (process, not flush, pushes them out: see test_roundtrip's flush check.) */
    long long live = h_wait_live(c, N, 10000), queued = h_stat("queued");
    H_CHECK(live >= N, "coordinator holds %lld of %d tasks", live, N);
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk[0], 0, &r);
    H_CHECK(rc == P2C2R_ETIMEDOUT, "a task finished while every peer was frozen (%s)", h_err(rc));
    h_log("coordinator holds %lld tasks, %lld queued; killing peer-1 and peer-3", live, queued);
    uint64_t t_kill = h_now_ms();
    h_signal(g_peers[0], SIGKILL);
    h_signal(g_peers[2], SIGKILL);
    h_wait_exit(g_peers[0], 5000);
    h_wait_exit(g_peers[2], 5000);

    int got = 0, unsupported = 0, lost = 0, other = 0;
    int seen[N] = {0};
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (got < N && h_now_ms() < end) {
        struct p2c2r_result res[N] = {P2C2R_RESULT_INIT};
        int n = p2c2r_client_poll(c, res, N, 200);
        H_REQUIRE(n >= 0, "poll: %s", h_err(n));
        for (int k = 0; k < n; k++) {
            int i = -1;
            for (int j = 0; j < N; j++)
                i = tk[j].id == res[k].ticket.id ? j : i;
            if (H_CHECK(i >= 0 && !seen[i]++, "outcome for ticket %llu unknown or repeated",
                        (unsigned long long)res[k].ticket.id))
                got++;
            if (res[k].status == P2C2R_EUNSUPPORTED)
                unsupported++;
            else if (res[k].status == P2C2R_ELOST)
                lost++;
            else if (other++ < 5)
                H_FAIL("task orphaned by the loss of every peer ended with %s: %.*s", h_err(res[k].status),
                       (int)res[k].output_len, res[k].output ? (char *)res[k].output : "");
            p2c2r_result_release(&res[k]);
        }
    }
    h_log("after killing every peer: %d outcomes in %llu ms: %d EUNSUPPORTED, %d ELOST, %d other", got,
          (unsigned long long)(h_now_ms() - t_kill), unsupported, lost, other);
    H_CHECK(got == N, "%d of %d queued tasks got an outcome within %d ms of losing every peer "
                      "(--orphan-timeout 500)",
            got, N, h_bound_ms(10000));

    h_phase("phase 2: submissions with no peer connected");
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, "x", 1};
    p2c2r_ticket one;
    rc = p2c2r_client_submit(c, &t, &one);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, one, h_bound_ms(5000), &r);
    H_CHECK(rc == 0 && r.status == P2C2R_EUNSUPPORTED,
            "a task submitted with no peer connected: rc %s status %s, expected EUNSUPPORTED", h_err(rc),
            h_err(rc == 0 ? r.status : 0));
    if (rc == 0)
        p2c2r_result_release(&r);
    json_t *js = h_stats(NULL);
    H_CHECK(h_json_int(js, "peers_connected") == 0, "no peer should be connected");
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live should be 0: %s", h_json_text(js));
    json_decref(js);
    p2c2r_client_close(c);
}

static void phase_new_peer(void)
{
    h_phase("phase 3: a new peer connects and work resumes");
    h_peer_start("peer-4", 2, NULL, NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    enum { N = 200 };
    struct p2c2r_task tasks[N];
    uint8_t *in[N];
    p2c2r_ticket tk[N];
    for (int i = 0; i < N; i++) {
        struct task_spec s = spec_of(9, i);
        s.n = s.n > 65536 ? 65536 : s.n;
        in[i] = malloc(s.n ? s.n : 1);
        h_fill(in[i], s.n, s.seed);
        struct p2c2r_task t = {sizeof t, s.sha ? "sha256" : "echo", 0, 0, 1, NULL, 0, in[i], s.n};
        tasks[i] = t;
    }
    rc = p2c2r_client_submit_batch(c, tasks, N, tk);
    H_REQUIRE(rc == 0, "submit_batch: %s", h_err(rc));
    int ok = 0;
    for (int i = 0; i < N; i++) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        if (!H_CHECK(rc == 0, "task %d: no outcome: %s", i, h_err(rc)))
            break;
        struct task_spec s = {strcmp(tasks[i].type, "sha256") == 0, tasks[i].input_len, 0};
        struct tally t = {0};
        judge("after reconnect", &t, i, &s, in[i], r.status, r.output, r.output_len, r.attempts);
        ok += t.ok;
        p2c2r_result_release(&r);
    }
    H_CHECK(ok == N, "%d of %d tasks correct on the new peer", ok, N);
    for (int i = 0; i < N; i++)
        free(in[i]);
    p2c2r_client_close(c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "peer_kill");
    h_phase("start daemons");
    char pt[16];
    snprintf(pt, sizeof(pt), "%d", PEER_TIMEOUT_MS);
    const char *cargs[] = {"--orphan-timeout", "500", "--peer-timeout", pt, NULL};
    h_coord_start(NULL, cargs);
    g_peers[0] = h_peer_start("peer-1", 2, NULL, NULL);
    g_peers[1] = h_peer_start("peer-2", 2, NULL, NULL);
    g_peers[2] = h_peer_start("peer-3", 2, NULL, NULL);
    h_wait_peers(3, NULL);
    phase_kill_one();
    phase_frozen_peer();
    phase_kill_all();
    phase_new_peer();
    return h_finish();
}
