/* test_claims.c - claims are measured, not believed (issue 11, item 3; docs/ARCHITECTURE.md,
 * "Measured claims").  Each scenario is an attack from the issue, made by a fake peer of the
 * harness (raw protocol, in this process) next to honest p2c2r-peers, one coordinator per
 * scenario so that each one's counters speak only of it.
 *
 * caps:     a peer registers gpu=1 "NVIDIA H100", 65,535 cores, 2^64-1 bytes of memory and
 *           executor version 2^32-1.  The coordinator clamps them (1024 cores, 16 TiB, version
 *           1,000,000) and schedules by the clamped values: a task needing a GPU, 64 cores
 *           and 1 TiB still runs on it (the clamped values meet that; a GPU cannot be measured
 *           here, and the check for it is the verification of results), while tasks needing
 *           2048 cores, 32 TiB or version 1,000,001 are refused EUNSUPPORTED like any
 *           requirement no peer meets.  STATS shows the clamped values.
 * staller:  a fake peer declaring 65,535 slots that never answers a task but answers every
 *           PING, next to an honest p2c2r-peer.  Of 600 tasks with a 2 s deadline all must
 *           succeed on the honest peer (before: 599 timed out on the staller): the staller
 *           holds at most its starting tasks-held limit (8), those are hedged elsewhere once
 *           overdue, its limit is halved, and it is cut for holding tasks without answering
 *           after half the peer timeout, although it answers PINGs.
 * sigstop:  a real peer frozen with SIGSTOP while it takes tasks: its tasks move to the other
 *           peer within their deadline (3 s), not after --peer-timeout (30 s).
 * exec_us:  a peer reports exec_us = 2^32-1 for a task it held 1 ms, then leaves.  The
 *           coordinator clamps it to the attempt's measured duration, so it cannot poison the
 *           type's execution time: 100 later tasks with a 1 s deadline are all accepted and
 *           succeed (before: one such RESULT made 96 of 100 be refused by admission). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TIB (1ull << 40)

/* ---- helpers ---------------------------------------------------------------- */

/* A peer's figure from the current coordinator's STATS, or -1. */
static long long peer_stat(uint32_t id, const char *key)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[id=%u].%s", id, key);
    return h_stat(path);
}

/* Submits one echo task and waits for its outcome; returns the status and
 * the peer that ran it. */
static int run_one(p2c2r_client *c, const struct p2c2r_task *t, uint32_t *peer)
{
    p2c2r_ticket tk;
    int rc = p2c2r_client_submit(c, t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), &r);
    H_REQUIRE(rc == 0, "no outcome: %s", h_err(rc));
    int st = r.status;
    if (st != 0)
        h_log("  outcome %s: %.*s", h_err(st), (int)r.output_len, (const char *)r.output);
    *peer = r.peer_id;
    p2c2r_result_release(&r);
    return st;
}

/* ---- caps ------------------------------------------------------------------------- */

static void scenario_caps(void)
{
    h_phase("caps: a peer claiming an H100, 65535 cores, 2^64-1 bytes and version 2^32-1");
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_fake_peer_cfg lc = {.name = "boaster", .types = "echo", .slots = 4, .gpu = 1,
                                 .gpu_model = "NVIDIA H100", .cores = 65535, .mem_bytes = UINT64_MAX,
                                 .version = UINT32_MAX, .delay_ms = 0};
    struct h_fake_peer *fp = h_fake_peer_start(&lc);
    uint32_t id = h_fake_peer_id(fp);
    h_wait_peers(1, NULL);

    H_CHECK(peer_stat(id, "cores") == 1024, "cores 65535 should be clamped to 1024 (stats: %lld)",
            peer_stat(id, "cores"));
    H_CHECK(peer_stat(id, "mem_bytes") == (long long)(16 * TIB),
            "2^64-1 bytes of memory should be clamped to 16 TiB (stats: %lld)", peer_stat(id, "mem_bytes"));
    H_CHECK(peer_stat(id, "types[0].version") == 1000000,
            "executor version 2^32-1 should be clamped to 1000000 (stats: %lld)", peer_stat(id, "types[0].version"));
    H_CHECK(h_stat("counters.claims_clamped") == 1, "counters.claims_clamped: %lld, expected 1",
            h_stat("counters.claims_clamped"));

    p2c2r_client *c = h_renter("caps-renter");
    uint32_t peer = 0;
    /* Within the clamps: runs on it (what else could: nothing measures a GPU). */
    struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = "a", .input_len = 1,
                           .flags = P2C2R_TASK_NOCACHE, .need_gpu = 1, .min_cores = 64, .min_mem_bytes = TIB};
    int st = run_one(c, &t, &peer);
    H_CHECK(st == 0 && peer == id, "GPU + 64 cores + 1 TiB: %s on peer %u, expected success on %u "
            "(the clamped claims still meet it)", h_err(st), peer, id);
    /* Over the clamps: no peer meets them. */
    struct p2c2r_task over[3] = {t, t, t};
    over[0].min_cores = 2048;
    over[1].min_mem_bytes = 32 * TIB;
    over[2].need_gpu = 0, over[2].min_cores = 0, over[2].min_mem_bytes = 0, over[2].min_version = 1000001;
    const char *what[3] = {"2048 cores", "32 TiB of memory", "executor version 1000001"};
    for (int i = 0; i < 3; i++) {
        st = run_one(c, &over[i], &peer);
        H_CHECK(st == P2C2R_EUNSUPPORTED, "a task needing %s: %s on peer %u, expected EUNSUPPORTED "
                "(over the clamp, no peer can meet it)", what[i], h_err(st), peer);
    }
    struct h_fake_counts f;
    h_fake_peer_counts(fp, &f);
    H_CHECK(f.assigned == 1, "the boaster ran %ld tasks, expected only the one within the clamps", f.assigned);
    p2c2r_client_close(c);
    h_fake_peer_stop(fp);
    struct h_proc *ps[] = {co};
    h_stop_all(ps, 1);
}

/* ---- staller ------------------------------------------------------------------------ */

#define STALL_TASKS 600
#define STALL_DEADLINE_MS 2000
#define STALL_PEER_TIMEOUT_MS 8000

static void scenario_staller(void)
{
    h_phase("staller: 65535 slots, never answers, answers PINGs; %d tasks with a %d ms deadline",
            STALL_TASKS, STALL_DEADLINE_MS);
    char pt[16];
    snprintf(pt, sizeof(pt), "%d", STALL_PEER_TIMEOUT_MS);
    const char *cargs[] = {"--peer-timeout", pt, "--ping-interval", "500", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *honest = h_peer_start("honest", 2, "echo", NULL);
    h_wait_peers(1, NULL);
    struct h_fake_peer_cfg sc = {.name = "staller", .types = "echo", .slots = 65535, .delay_ms = H_FAKE_NEVER};
    struct h_fake_peer *fp = h_fake_peer_start(&sc);
    uint32_t sid = h_fake_peer_id(fp);
    h_wait_peers(2, NULL);
    long long honest_id = h_stat("peers[name=honest].id");

    /* All at once on a raw connection: no client-side window. */
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "renter: connect");
    struct msg_hello_ok ok;
    H_REQUIRE(h_raw_hello(&r, ROLE_RENTER, NULL, &ok) == 0, "renter: HELLO");
    int deadline = h_bound_ms(STALL_DEADLINE_MS);
    uint64_t t0 = h_now_ms();
    for (int i = 0; i < STALL_TASKS; i++) {
        char in[32];
        int n = snprintf(in, sizeof(in), "stall-%d", i);
        size_t bl;
        uint8_t *body = h_task_body_ext("echo", 1, PROTO_TASK_F_NOCACHE, NULL, (uint32_t)deadline, in, (size_t)n, &bl);
        H_REQUIRE(h_raw_send_frame(&r, MSG_SUBMIT, 0, (uint64_t)i + 1, body, bl, h_bound_ms(5000)) == 0, "submit %d", i);
        free(body);
    }
    int okn = 0, timed_out = 0, other = 0, elsewhere = 0;
    static uint8_t seen[STALL_TASKS];
    memset(seen, 0, sizeof(seen));
    for (int k = 0; k < STALL_TASKS; k++) {
        struct h_outcome o;
        int rc = h_raw_outcome(&r, &o, deadline + h_bound_ms(5000));
        if (!H_CHECK(rc == H_RAW_FRAME, "outcome %d of %d: read returned %d", k, STALL_TASKS, rc))
            break;
        H_CHECK(o.ticket >= 1 && o.ticket <= STALL_TASKS && !seen[o.ticket - 1], "ticket %llu unknown or twice",
                (unsigned long long)o.ticket);
        if (o.ticket >= 1 && o.ticket <= STALL_TASKS)
            seen[o.ticket - 1] = 1;
        if (o.type == MSG_DELIVER && o.status == 0) {
            okn++;
            elsewhere += o.peer_id == (uint32_t)honest_id;
        } else if (o.status == P2C2R_ETIMEDOUT) {
            timed_out++;
        } else {
            other++;
            if (other <= 3)
                h_log("  ticket %llu: %s %.*s", (unsigned long long)o.ticket, h_err(o.status), (int)o.len,
                      (const char *)o.out);
        }
    }
    h_log("staller: %d ok (%d on the honest peer), %d timed out, %d other, in %llu ms", okn, elsewhere,
          timed_out, other, (unsigned long long)(h_now_ms() - t0));
    H_CHECK(okn == STALL_TASKS && elsewhere == STALL_TASKS,
            "every task should succeed on the honest peer within its deadline: %d ok (%d there), %d timed out, "
            "%d other", okn, elsewhere, timed_out, other);

    json_t *js = h_stats(NULL);
    char p[96];
    snprintf(p, sizeof(p), "peers[id=%u].held_limit", sid);
    long long lim = h_json_int(js, p);
    snprintf(p, sizeof(p), "peers[id=%u].stalls", sid);
    long long stalls = h_json_int(js, p);
    snprintf(p, sizeof(p), "peers[id=%u].overdue", sid);
    long long overdue = h_json_int(js, p);
    long long hedges = h_json_int(js, "counters.stall_hedges");
    h_log("staller: held_limit %lld, stalls %lld, overdue %lld; stall_hedges %lld", lim, stalls, overdue, hedges);
    H_CHECK(lim >= 1 && lim < 8, "the staller's tasks-held limit should have dropped below 8: %lld", lim);
    H_CHECK(stalls >= 1, "the staller's stalls: %lld", stalls);
    H_CHECK(overdue >= 1, "the staller's overdue tasks: %lld", overdue);
    H_CHECK(hedges >= 1, "counters.stall_hedges: %lld", hedges);
    json_decref(js);
    struct h_fake_counts f;
    h_fake_peer_counts(fp, &f);
    H_CHECK(f.assigned >= 1 && f.assigned <= 8, "the staller was given %ld tasks: a new peer holds at most 8",
            f.assigned);

    /* Cut after half the peer timeout of holding tasks without answering,
     * although it answers every PING. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(STALL_PEER_TIMEOUT_MS / 2 + 5000);
    do {
        h_fake_peer_counts(fp, &f);
        if (f.closed)
            break;
        h_sleep_ms(50);
    } while (h_now_ms() < end);
    H_CHECK(f.closed, "the staller should be cut for holding tasks without answering");
    H_CHECK(f.pings >= 1, "the staller answered %ld PINGs: it looked alive", f.pings);
    H_CHECK(h_stat("counters.staller_cuts") == 1, "counters.staller_cuts: %lld", h_stat("counters.staller_cuts"));
    H_CHECK(h_stat("peers_connected") == 1, "only the honest peer should be left");
    h_raw_close(&r);
    h_fake_peer_stop(fp);
    struct h_proc *ps[] = {honest, co};
    h_stop_all(ps, 2);
}

/* ---- sigstop ------------------------------------------------------------------------ */

static void scenario_sigstop(void)
{
    enum { N = 20 };
    h_phase("sigstop: a frozen peer's tasks move to another within their deadline");
    struct h_proc *co = h_coord_start(NULL, NULL); /* --peer-timeout 30 s */
    /* More slots on the peer that will freeze: it is the better choice
     * for most tasks by load, whatever round trips a loaded machine
     * measured, so some of them are sure to be stuck on it. */
    struct h_proc *a = h_peer_start("frozen", 4, "echo", NULL);
    struct h_proc *b = h_peer_start("awake", 1, "echo", NULL);
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("sigstop-renter");
    h_signal(a, SIGSTOP);
    p2c2r_ticket tk[N];
    uint8_t in[N][8];
    int deadline = h_bound_ms(3000);
    for (int i = 0; i < N; i++) {
        memcpy(in[i], "frz-", 4);
        in[i][4] = (uint8_t)('a' + i);
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in[i], .input_len = 5,
                               .deadline_ms = (uint32_t)deadline, .flags = P2C2R_TASK_NOCACHE};
        int rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
    int ok = 0, hedged = 0;
    long long awake_id = h_stat("peers[name=awake].id");
    for (int i = 0; i < N; i++) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        int rc = p2c2r_client_wait(c, tk[i], deadline + h_bound_ms(5000), &r);
        if (!H_CHECK(rc == 0, "task %d: no outcome: %s", i, h_err(rc)))
            break;
        H_CHECK(r.status == 0 && r.output_len == 5 && memcmp(r.output, in[i], 5) == 0 &&
                    r.peer_id == (uint32_t)awake_id,
                "task %d: %s on peer %u, expected success on the awake peer %lld within its %d ms deadline", i,
                h_err(r.status), r.peer_id, awake_id, deadline);
        ok += r.status == 0;
        hedged += (r.flags & P2C2R_RESULT_HEDGED) != 0;
        p2c2r_result_release(&r);
    }
    long long sh = h_stat("counters.stall_hedges");
    h_log("sigstop: %d of %d ok, %d hedged; stall_hedges %lld", ok, N, hedged, sh);
    H_CHECK(sh >= 1, "the frozen peer's tasks should have been hedged as stalled: stall_hedges %lld", sh);
    h_signal(a, SIGCONT);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {a, b, co};
    h_stop_all(ps, 3);
}

/* ---- exec_us ------------------------------------------------------------------------ */

static void scenario_exec_us(void)
{
    enum { LATER = 100 };
    h_phase("exec_us: a RESULT claiming exec_us = 2^32-1, then %d tasks with a 1 s deadline", LATER);
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_proc *honest = h_peer_start("honest", 2, "echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("exec-renter");
    uint32_t peer;
    for (int i = 0; i < 30; i++) {
        char in[16];
        int n = snprintf(in, sizeof(in), "warm-%d", i);
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in, .input_len = (size_t)n,
                               .flags = P2C2R_TASK_NOCACHE};
        H_REQUIRE(run_one(c, &t, &peer) == 0, "warm-up task %d", i);
    }
    H_REQUIRE(h_type_stat_sampled("echo", "attempt_p50_us", 20) >= 0, "20 samples of echo");

    struct h_fake_peer_cfg lc = {.name = "forger", .types = "echo", .slots = 1, .delay_ms = 1,
                                 .exec_us = UINT32_MAX};
    struct h_fake_peer *fp = h_fake_peer_start(&lc);
    h_wait_peers(2, NULL);
    /* Bursts until the forger has answered one. */
    struct h_fake_counts f = {0};
    for (int round = 0; round < 50 && f.answered == 0; round++) {
        p2c2r_ticket tk[4];
        for (int i = 0; i < 4; i++) {
            char in[24];
            int n = snprintf(in, sizeof(in), "forge-%d-%d", round, i);
            struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in, .input_len = (size_t)n,
                                   .flags = P2C2R_TASK_NOCACHE};
            H_REQUIRE(p2c2r_client_submit(c, &t, &tk[i]) == 0, "submit");
        }
        for (int i = 0; i < 4; i++) {
            struct p2c2r_result r = P2C2R_RESULT_INIT;
            H_REQUIRE(p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r) == 0, "outcome");
            p2c2r_result_release(&r);
        }
        h_fake_peer_counts(fp, &f);
    }
    H_REQUIRE(f.answered >= 1, "the forger never got a task");
    h_fake_peer_stop(fp);
    h_wait_peers(1, NULL);
    H_CHECK(h_stat("counters.exec_us_clamped") >= 1, "counters.exec_us_clamped: %lld",
            h_stat("counters.exec_us_clamped"));

    p2c2r_ticket tk[LATER];
    for (int i = 0; i < LATER; i++) {
        char in[16];
        int n = snprintf(in, sizeof(in), "later-%d", i);
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in, .input_len = (size_t)n,
                               .deadline_ms = 1000, .flags = P2C2R_TASK_NOCACHE};
        H_REQUIRE(p2c2r_client_submit(c, &t, &tk[i]) == 0, "submit");
    }
    int ok = 0, refused = 0;
    for (int i = 0; i < LATER; i++) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        int rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        if (!H_CHECK(rc == 0, "later task %d: %s", i, h_err(rc)))
            break;
        ok += r.status == 0;
        refused += r.status == P2C2R_EDEADLINE;
        if (r.status == P2C2R_EDEADLINE && refused == 1)
            h_log("  refused: %.*s", (int)r.output_len, (const char *)r.output);
        p2c2r_result_release(&r);
    }
    h_log("exec_us: %d of %d later tasks ok, %d refused EDEADLINE", ok, LATER, refused);
    H_CHECK(refused == 0, "%d of %d later tasks refused by admission after one forged exec_us", refused, LATER);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {honest, co};
    h_stop_all(ps, 2);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "claims");
    /* An optional argument after the CLI runs one scenario by name. */
    static const struct {
        const char *name;
        void (*run)(void);
    } sc[] = {{"caps", scenario_caps}, {"staller", scenario_staller}, {"sigstop", scenario_sigstop},
              {"exec_us", scenario_exec_us}};
    const char *only = h_arg(4);
    for (size_t i = 0; i < sizeof(sc) / sizeof(sc[0]); i++)
        if (!only || strcmp(only, sc[i].name) == 0)
            sc[i].run();
    return h_finish();
}
