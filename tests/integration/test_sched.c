/* test_sched.c - the scheduler against real daemons, one scenario per
 * coordinator so that each one's counters speak only of that scenario.
 *
 * hedge:     two fast peers and a slow one (a fake peer in this process that
 *            holds every task 400 ms).  Bursts of echo tasks fill every slot,
 *            so the slow peer gets some; each of those is hedged onto a fast
 *            peer once it has run past the type's p95 (--hedge-min-us 20 ms)
 *            and the fast copy wins.  Checked: every task is correct, the
 *            DELIVERs flagged HEDGED are exactly the coordinator's "hedges",
 *            most were won by a fast peer, and the slow peer's answers, which
 *            still come, are counted as late_results.  No latency figure is
 *            asserted: who won is the property that keeps the tail short.
 * hedge_hol: an attempt that cannot be hedged (its task needs a GPU, and
 *            the only GPU peer is the slow one running it) must not keep the
 *            other tasks of its type from being hedged.  A known bug in the
 *            coordinator makes it do so today: that check is an H_XFAIL.
 * breaker:   a fake peer that fails every task.  Each failure runs again on a
 *            good peer; its success there is a strike against the failing
 *            peer, which is quarantined after --breaker-strikes 3 and gets no
 *            more work during its cool-down, while every task succeeds.
 * probe:     with a short cool-down the quarantined peer is probed with a
 *            task: while it still fails, the probe quarantines it again;
 *            once it is healthy, the probe restores it and it gets work.
 * admission: with fewer than 20 completed samples of a type the coordinator
 *            accepts any deadline (and the task times out); once it has them,
 *            a deadline below the type's attempt time is refused at once with
 *            EDEADLINE, before reaching a peer, and so is a background task
 *            whose 250 ms deadline the queue ahead of it would blow, while a
 *            realtime task with a 400 ms deadline, which the attempt time
 *            alone allows and the whole queue (all background) would not, is
 *            accepted.
 * priority:  a peer with one slot is frozen while 10,000 background tasks and
 *            then one realtime task are queued; once it resumes, the realtime
 *            result must come before 90 % of the background ones (it comes
 *            second: only the task already on the peer goes before it).
 * cache:     a repeated sha256 is answered from the result cache (flag
 *            CACHED, no attempt, the peer's done count unchanged), NOCACHE
 *            runs it again, and 100 identical tasks in flight at once run
 *            once (99 coalesced, one execution on the peer).
 * gpu:       a task needing a GPU (or more cores than any peer has) is
 *            rejected with EUNSUPPORTED and a reason naming the requirement
 *            while no peer offers it; once a GPU peer joins, those tasks run
 *            there and nowhere else. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

/* ---- helpers ---------------------------------------------------------------- */

/* The state of the peer called name in the current coordinator's stats,
 * or "" (static buffer). */
static const char *peer_state(const char *name)
{
    static char v[64];
    char path[96];
    snprintf(path, sizeof(path), "peers[name=%s].state", name);
    json_t *js = h_stats(NULL);
    const char *s = h_json_str(js, path);
    snprintf(v, sizeof(v), "%s", s ? s : "");
    json_decref(js);
    return v;
}

/* Input of echo task k of a run: a pattern of (seed, k) that starts with k,
 * so no two tasks of a test have the same input (nothing is answered from
 * the cache or coalesced unless a scenario means it). */
static void task_input(uint8_t *in, size_t n, uint64_t seed, int k)
{
    h_fill(in, n, seed * 1000003u + (uint64_t)k);
    uint64_t tag = seed << 32 | (uint32_t)k;
    memcpy(in, &tag, n < 8 ? n : 8);
}

struct rec {
    int status;
    uint32_t peer_id, flags;
    uint16_t attempts;
};

#define MAX_WINDOW 256
#define ECHO_SIZE 64

/* Runs n echo tasks of class prio with up to window in flight and checks
 * each output byte for byte; recs (may be NULL) gets each outcome by task
 * index.  Returns the number of correct results. */
static int run_echo(p2c2r_client *c, const char *who, int n, int window, uint8_t prio, uint64_t seed,
                    struct rec *recs)
{
    struct {
        int task;
        p2c2r_ticket tk;
        uint8_t in[ECHO_SIZE];
    } slot[MAX_WINDOW];
    if (window > MAX_WINDOW)
        window = MAX_WINDOW;
    for (int i = 0; i < window; i++)
        slot[i].task = -1;
    int next = 0, done = 0, ok = 0, bad = 0;
    uint64_t last = h_now_ms();
    struct p2c2r_result res[MAX_WINDOW] = {P2C2R_RESULT_INIT};
    while (done < n) {
        for (int i = 0; i < window && next < n; i++) {
            if (slot[i].task >= 0)
                continue;
            task_input(slot[i].in, ECHO_SIZE, seed, next);
            struct p2c2r_task t = {.size = sizeof t, .type = "echo", .priority = prio, .input = slot[i].in,
                                   .input_len = ECHO_SIZE};
            int rc = p2c2r_client_submit(c, &t, &slot[i].tk);
            H_REQUIRE(rc == 0, "%s: submit task %d: %s", who, next, h_err(rc));
            slot[i].task = next++;
        }
        int got = p2c2r_client_poll(c, res, MAX_WINDOW, 200);
        H_REQUIRE(got >= 0, "%s: poll: %s (%s)", who, h_err(got), p2c2r_client_last_error(c));
        uint64_t now = h_now_ms();
        if (got > 0)
            last = now;
        H_REQUIRE(now - last < (uint64_t)h_bound_ms(20000), "%s: no result for %d ms (%d of %d done)",
                  who, h_bound_ms(20000), done, n);
        for (int k = 0; k < got; k++) {
            struct p2c2r_result *x = &res[k];
            int s = -1;
            for (int i = 0; i < window; i++)
                if (slot[i].task >= 0 && slot[i].tk.id == x->ticket.id)
                    s = i;
            if (!H_CHECK(s >= 0, "%s: result for ticket %llu not in flight", who,
                         (unsigned long long)x->ticket.id)) {
                p2c2r_result_release(x);
                continue;
            }
            int task = slot[s].task;
            if (x->status != 0) {
                if (++bad <= 5)
                    H_FAIL("%s: task %d failed: %s: %.*s", who, task, h_err(x->status),
                           (int)x->output_len, x->output ? (const char *)x->output : "");
            } else if (x->output_len != ECHO_SIZE || memcmp(x->output, slot[s].in, ECHO_SIZE) != 0) {
                if (++bad <= 5)
                    H_FAIL("%s: task %d: wrong output (%zu bytes)", who, task, x->output_len);
            } else {
                ok++;
            }
            if (recs)
                recs[task] = (struct rec){x->status, x->peer_id, x->flags, x->attempts};
            slot[s].task = -1;
            done++;
            p2c2r_result_release(x);
        }
    }
    return ok;
}

/* ---- hedging ---------------------------------------------------------------------- */

static void scenario_hedge(void)
{
    /* A burst fills every slot, so the slow peer gets 4 of its tasks; 4 in
     * 250 keeps slow attempts far below the 5 % that would move the p95
     * (and so the hedging threshold) up to the slow peer's time. */
    enum { BURST = 250, MIN_HEDGED = 12, MIN_BURSTS = 3, SLOW_MS = 400 };
    h_phase("hedge: start a coordinator and two fast peers");
    /* --verify none: this counts hedges and the late answers they leave;
     * under a verifying policy the slow copy's answer is a check, not late
     * (test_verify.c covers verification). */
    const char *cargs[] = {"--hedge-min-us", "20000", "--verify", "none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *fast[2] = {h_peer_start("fast-1", 2, "echo", NULL), h_peer_start("fast-2", 2, "echo", NULL)};
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("hedge-renter");

    /* The type's attempt quantiles must exist before the slow peer joins,
     * or its first tasks could not be hedged (no p95 yet). */
    h_phase("hedge: a first burst on the fast peers gives echo its attempt quantiles");
    static struct rec recs[BURST];
    int tasks = BURST, ok = run_echo(c, "hedge-renter", BURST, BURST, P2C2R_PRIO_INTERACTIVE, 1000, NULL);
    long long p95 = h_type_stat_sampled("echo", "attempt_p95_us", 20);
    H_REQUIRE(p95 > 0, "echo has no attempt p95 from 20 samples after %d tasks", BURST);

    h_phase("hedge: a slow fake peer joins");
    struct h_fake_peer_cfg sc = {.name = "slow", .types = "echo", .slots = 4, .delay_ms = SLOW_MS};
    struct h_fake_peer *slow = h_fake_peer_start(&sc);
    uint32_t slow_id = h_fake_peer_id(slow);
    h_wait_peers(3, NULL);

    h_phase("hedge: bursts of %d echo tasks until %d were hedged", BURST, MIN_HEDGED);
    int hedged = 0, hedged_fast = 0, slow_won = 0, bursts = 0;
    struct h_fake_counts fc;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    while ((hedged < MIN_HEDGED || bursts < MIN_BURSTS) && h_now_ms() < end) {
        /* Each burst starts with the slow peer idle: its slots are held
         * until it answers, even for tasks a hedge already finished. */
        h_fake_peer_wait_idle(slow, 5000);
        h_sleep_ms(20); /* its last RESULT reaches the coordinator */
        ok += run_echo(c, "hedge-renter", BURST, BURST, P2C2R_PRIO_INTERACTIVE, (uint64_t)bursts + 1, recs);
        tasks += BURST;
        bursts++;
        for (int i = 0; i < BURST; i++) {
            int h = (recs[i].flags & P2C2R_RESULT_HEDGED) != 0;
            hedged += h;
            hedged_fast += h && recs[i].peer_id != slow_id;
            slow_won += recs[i].peer_id == slow_id;
        }
    }
    p2c2r_client_close(c);

    /* The slow peer answers everything it was given, hedged or not; only
     * then are its late answers all counted. */
    h_fake_peer_wait_idle(slow, 5000);
    h_fake_peer_counts(slow, &fc);
    h_sleep_ms(50); /* its last RESULT travels to the coordinator */
    json_t *js = h_stats(NULL);
    long long hedges = h_json_int(js, "counters.hedges"), wins = h_json_int(js, "counters.hedge_wins");
    long long late = h_json_int(js, "counters.late_results");
    p95 = h_json_int(js, "types[name=echo].attempt_p95_us");
    h_log("hedge: %d tasks in %d bursts, %d ok; slow peer was assigned %ld, answered %ld, got %ld "
          "cancels, and gave %d outcomes; %d DELIVERs flagged HEDGED (%d won by a fast peer); "
          "coordinator: hedges=%lld hedge_wins=%lld late_results=%lld echo attempt p95=%lld us",
          tasks, bursts, ok, fc.assigned, fc.answered, fc.cancels, slow_won, hedged, hedged_fast, hedges,
          wins, late, p95);
    H_CHECK(ok == tasks, "every task must succeed with its own bytes: %d of %d", ok, tasks);
    H_CHECK(fc.assigned >= MIN_HEDGED, "the slow peer got only %ld tasks", fc.assigned);
    H_CHECK(hedged >= MIN_HEDGED, "only %d of the %ld tasks the slow peer held were hedged", hedged,
            fc.assigned);
    H_CHECK(hedges == hedged, "coordinator counted %lld hedges, renters saw %d DELIVERs flagged HEDGED",
            hedges, hedged);
    H_CHECK(hedged_fast * 4 >= hedged * 3, "most hedged tasks should be won by a fast peer: %d of %d",
            hedged_fast, hedged);
    H_CHECK(wins >= 1 && wins <= hedges, "hedge_wins %lld with %lld hedges", wins, hedges);
    H_CHECK(late >= wins, "every hedge that won left a slow attempt whose answer is late: "
                          "late_results %lld < hedge_wins %lld",
            late, wins);
    /* The tail: without hedging each task the slow peer held would wait for
     * it; with it, the slow peer produces almost no outcome. */
    H_CHECK(slow_won * 4 <= fc.assigned, "the slow peer still produced %d of the outcomes of the %ld "
                                         "tasks it held",
            slow_won, fc.assigned);
    H_CHECK(!fc.closed, "the coordinator cut the slow peer");
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live should be 0 at the end");
    json_decref(js);

    h_fake_peer_stop(slow);
    struct h_proc *ps[] = {fast[0], fast[1], co};
    h_stop_all(ps, 3);
}

/* Waits (bounded) until fp has answered every task it was given. */
static void fake_idle(struct h_fake_peer *fp)
{
    struct h_fake_counts fc;
    h_fake_peer_wait_idle(fp, 5000);
    h_fake_peer_counts(fp, &fc);
    H_CHECK(fc.answered == fc.assigned, "fake peer still holds %ld tasks", fc.assigned - fc.answered);
    h_sleep_ms(20); /* its last RESULT reaches the coordinator */
}

/* Submits three plain echo tasks in one frame (one fast peer with two
 * slots takes two, so the slow peer gets the third) and returns how many
 * ended on slow_id. */
static int three_plain(p2c2r_client *c, uint32_t slow_id, int seed)
{
    struct p2c2r_task ts[3];
    uint8_t in[3][16];
    p2c2r_ticket tk[3];
    for (int i = 0; i < 3; i++) {
        task_input(in[i], 16, (uint64_t)seed, i);
        ts[i] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .input = in[i], .input_len = 16};
    }
    int rc = p2c2r_client_submit_batch(c, ts, 3, tk);
    H_REQUIRE(rc == 0, "submit_batch: %s", h_err(rc));
    int on_slow = 0;
    for (int i = 0; i < 3; i++) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        H_REQUIRE(rc == 0, "plain task %d: %s", i, h_err(rc));
        H_CHECK(r.status == 0 && r.output_len == 16 && memcmp(r.output, in[i], 16) == 0,
                "plain task %d: status %s", i, h_err(r.status));
        on_slow += r.peer_id == slow_id;
        p2c2r_result_release(&r);
    }
    return on_slow;
}

/* A running attempt that cannot be hedged (its task needs a GPU and no GPU
 * peer is free) must not stop the hedging of the other tasks of its type.
 * Today it does: sweep_hedges takes the type's oldest attempt first and
 * gives up the whole sweep when no peer can take it (coord.c, "if (!p ||
 * task_assign(...)) { list_push_front(...); break; }"), so every attempt
 * behind it waits for its slow peer.  The control shows the same plain task
 * hedged when no GPU task runs. */
static void scenario_hedge_hol(void)
{
    enum { CPU_SLOW_MS = 600, GPU_SLOW_MS = 1500 };
    h_phase("hedge_hol: a coordinator, a fast peer and a slow fake peer");
    const char *cargs[] = {"--hedge-min-us", "20000", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *fast = h_peer_start("fast", 2, "echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("hol-renter");
    int ok = run_echo(c, "hol-renter", 100, 100, P2C2R_PRIO_INTERACTIVE, 700, NULL);
    H_CHECK(ok == 100, "warm-up: %d of 100 correct", ok);
    H_REQUIRE(h_type_stat_sampled("echo", "attempt_p95_us", 20) > 0, "echo has no attempt p95 from 20 samples");
    struct h_fake_peer_cfg sc = {.name = "cpu-slow", .types = "echo", .slots = 1, .delay_ms = CPU_SLOW_MS};
    struct h_fake_peer *cpu_slow = h_fake_peer_start(&sc);
    uint32_t slow_id = h_fake_peer_id(cpu_slow);
    h_wait_peers(2, NULL);

    h_phase("hedge_hol: control: a plain task on the slow peer is hedged");
    struct h_fake_counts fc0, fc1;
    h_fake_peer_counts(cpu_slow, &fc0);
    int on_slow = three_plain(c, slow_id, 701);
    h_fake_peer_counts(cpu_slow, &fc1);
    H_CHECK(fc1.assigned > fc0.assigned, "setup: the slow peer got none of the three tasks");
    H_CHECK(on_slow == 0, "control: %d plain tasks were answered by the slow peer, not hedged", on_slow);
    fake_idle(cpu_slow);

    h_phase("hedge_hol: the same while a GPU task runs on a slow GPU peer");
    struct h_fake_peer_cfg gc = {.name = "gpu-slow", .types = "echo", .slots = 1, .gpu = 1,
                                 .delay_ms = GPU_SLOW_MS};
    struct h_fake_peer *gpu_slow = h_fake_peer_start(&gc);
    h_wait_peers(3, NULL);
    uint8_t gin[16];
    task_input(gin, 16, 702, 0);
    struct p2c2r_task g = {.size = sizeof g, .type = "echo", .input = gin, .input_len = 16, .need_gpu = 1};
    p2c2r_ticket gtk;
    int rc = p2c2r_client_submit(c, &g, &gtk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    h_fake_peer_counts(gpu_slow, &fc0);
    for (uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000); fc0.assigned == 0 && h_now_ms() < end;
         h_fake_peer_counts(gpu_slow, &fc0)) {
        H_REQUIRE(p2c2r_client_process(c) >= 0, "process");
        h_sleep_ms(5);
    }
    H_REQUIRE(fc0.assigned == 1, "the GPU task did not reach the GPU peer");
    h_fake_peer_counts(cpu_slow, &fc0);
    on_slow = three_plain(c, slow_id, 703);
    h_fake_peer_counts(cpu_slow, &fc1);
    H_CHECK(fc1.assigned > fc0.assigned, "setup: the slow peer got none of the three tasks");
    H_CHECK(on_slow == 0,
            "a plain task waited %d ms for the slow peer, unhedged, because the GPU task ahead of it in "
            "echo's running list could not be hedged",
            CPU_SLOW_MS);
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, gtk, h_bound_ms(10000), &r);
    H_REQUIRE(rc == 0, "GPU task: %s", h_err(rc));
    H_CHECK(r.status == 0 && r.output_len == 16 && memcmp(r.output, gin, 16) == 0, "GPU task: status %s",
            h_err(r.status));
    p2c2r_result_release(&r);
    fake_idle(cpu_slow);
    p2c2r_client_close(c);
    h_fake_peer_stop(gpu_slow);
    h_fake_peer_stop(cpu_slow);
    struct h_proc *ps[] = {fast, co};
    h_stop_all(ps, 2);
}

/* A task with requirements that no free peer meets waits at the front of
 * its queue; a peer that cannot run it must still take the tasks behind it
 * that it can.  GPU peer busy for GPU_MS with task A; cores peer busy for
 * CPU_MS with B; then C (GPU) and D (4 cores) queue in that order.  When
 * the cores peer frees up it must take D at once, long before the GPU peer
 * is done with A. */
static void scenario_queue_hol(void)
{
    enum { GPU_MS = 1500, CPU_MS = 200 };
    h_phase("queue_hol: a GPU task at the front of the requirements queue, a cores task behind it");
    /* --verify none: D's answer must not wait for a check on the busy GPU
     * peer; what is tested is which task the cores peer takes. */
    const char *cargs[] = {"--no-hedge", "--verify", "none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg gc = {.name = "gpu", .types = "echo", .slots = 1, .gpu = 1, .cores = 8,
                                 .delay_ms = GPU_MS};
    struct h_fake_peer_cfg cc = {.name = "cores", .types = "echo", .slots = 1, .cores = 8,
                                 .delay_ms = CPU_MS};
    struct h_fake_peer *gpu = h_fake_peer_start(&gc), *cores = h_fake_peer_start(&cc);
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("hol-renter");
    uint8_t in[4][16];
    p2c2r_ticket tk[4];
    struct h_fake_counts f;
    for (int i = 0; i < 4; i++) {
        task_input(in[i], 16, 900 + (uint64_t)i, 0);
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in[i], .input_len = 16,
                               .flags = P2C2R_TASK_NOCACHE};
        if (i == 0 || i == 2)
            t.need_gpu = 1;
        else
            t.min_cores = 4;
        int rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit %d: %s", i, h_err(rc));
        H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
        if (i < 2) { /* A and B must be running before C and D arrive */
            struct h_fake_peer *fp = i == 0 ? gpu : cores;
            h_fake_peer_wait_assigned(fp, 1, 5000);
            h_fake_peer_counts(fp, &f);
            H_REQUIRE(f.assigned == 1, "task %c did not reach its peer", 'A' + i);
        }
    }
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int rc = p2c2r_client_wait(c, tk[3], h_bound_ms(GPU_MS * 4), &r);
    H_REQUIRE(rc == 0, "D: %s", h_err(rc));
    h_fake_peer_counts(gpu, &f);
    H_CHECK(r.status == 0 && r.peer_id == h_fake_peer_id(cores),
            "D (4 cores) ran on peer %u with status %s, expected the cores peer %u", r.peer_id,
            h_err(r.status), h_fake_peer_id(cores));
    H_CHECK(f.answered == 0,
            "D came back only after the GPU peer answered A (%ld answers): the cores peer did not look past "
            "the GPU task C at the front of the queue", f.answered);
    p2c2r_result_release(&r);
    for (int i = 0; i < 3; i++) {
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(GPU_MS * 4), &r);
        H_CHECK(rc == 0 && r.status == 0 && r.output_len == 16 && memcmp(r.output, in[i], 16) == 0,
                "task %c: %s / %s", 'A' + i, h_err(rc), rc == 0 ? h_err(r.status) : "-");
        if (rc == 0) {
            H_CHECK(i == 1 || r.peer_id == h_fake_peer_id(gpu), "GPU task %c ran on peer %u", 'A' + i,
                    r.peer_id);
            p2c2r_result_release(&r);
        }
    }
    p2c2r_client_close(c);
    h_fake_peer_stop(gpu);
    h_fake_peer_stop(cores);
    struct h_proc *ps[] = {co};
    h_stop_all(ps, 1);
}

/* --type-deadline gives tasks that name no deadline their type's own: a
 * task held by a peer that takes 5 s ends ETIMEDOUT (under the global 60 s
 * default it would succeed), and stats report the type's deadline.  A bad
 * spec is a usage error (exit 2) that names the option. */
static void scenario_type_deadline(void)
{
    h_phase("type_deadline: --type-deadline echo=300, a peer that takes 5 s");
    const char *cargs[] = {"--type-deadline", "echo=300,sha256=2000", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg fc = {.name = "slow", .types = "echo,sha256", .slots = 2, .delay_ms = 5000};
    struct h_fake_peer *fp = h_fake_peer_start(&fc);
    h_wait_peers(1, NULL);
    json_t *js = h_stats(NULL);
    H_CHECK(h_json_int(js, "types[name=echo].deadline_ms") == 300, "stats: echo's deadline_ms");
    H_CHECK(h_json_int(js, "types[name=sha256].deadline_ms") == 2000, "stats: sha256's deadline_ms");
    json_decref(js);
    p2c2r_client *c = h_renter("tdl-renter");
    struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = "late", .input_len = 4};
    p2c2r_ticket tk;
    int rc = p2c2r_client_submit(c, &t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk, h_bound_ms(4000), &r);
    H_REQUIRE(rc == 0, "no outcome: %s (the type's 300 ms deadline did not apply)", h_err(rc));
    H_CHECK(r.status == P2C2R_ETIMEDOUT, "echo under a 300 ms type deadline: %s, expected ETIMEDOUT",
            h_err(r.status));
    p2c2r_result_release(&r);
    /* A deadline the task names itself wins over the type's. */
    t.deadline_ms = 60000;
    rc = p2c2r_client_submit(c, &t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, tk, h_bound_ms(15000), &r);
    H_REQUIRE(rc == 0, "no outcome: %s", h_err(rc));
    H_CHECK(r.status == 0 && r.output_len == 4, "echo with its own 60 s deadline: %s, expected success",
            h_err(r.status));
    p2c2r_result_release(&r);
    p2c2r_client_close(c);
    h_fake_peer_stop(fp);
    struct h_proc *ps[] = {co};
    h_stop_all(ps, 1);

    h_phase("type_deadline: a malformed spec");
    const char *argv[] = {h_coord_bin(), "--listen", "127.0.0.1:0", "--type-deadline", "echo=abc", NULL};
    struct h_cmd e = h_run_cmd(NULL, argv);
    H_CHECK(e.code == 2, "p2c2rd --type-deadline echo=abc: %s, expected exit 2",
            e.status == -1 ? "timeout" : h_status_str(e.status));
    H_CHECK(strstr(e.err, "--type-deadline"), "its message should name --type-deadline: '%s'", e.err);
    h_cmd_free(&e);
}

/* A task coalesced onto a queued identical one lends it its urgency: A
 * (deadline 60 s) and B (30 s) wait behind a busy one-slot peer; C, the
 * same work as A with a 5 s deadline, joins A, so A (and with it C) must
 * run before B. */
static void scenario_coalesce_urgency(void)
{
    h_phase("coalesce_urgency: a follower's earlier deadline moves its leader up the queue");
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_fake_peer_cfg fc = {.name = "one", .types = "sha256", .slots = 1, .delay_ms = 150};
    struct h_fake_peer *fp = h_fake_peer_start(&fc);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("urgency-renter");
    struct { const char *in; uint32_t dl; } spec[4] = {{"blocker", 0}, {"A", 60000}, {"B", 30000}, {"A", 5000}};
    p2c2r_ticket tk[4];
    struct h_fake_counts f;
    for (int i = 0; i < 4; i++) {
        struct p2c2r_task t = {.size = sizeof t, .type = "sha256", .input = spec[i].in, .input_len = strlen(spec[i].in),
                               .deadline_ms = spec[i].dl};
        int rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit %d: %s", i, h_err(rc));
        H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
        if (i == 0) { /* the blocker must hold the slot before the others queue */
            h_fake_peer_wait_assigned(fp, 1, 5000);
            h_fake_peer_counts(fp, &f);
            H_REQUIRE(f.assigned == 1, "the blocker did not reach the peer");
        }
    }
    /* Completion order, as p2c2r_client_poll hands results out. */
    int order[4], got = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (got < 4 && h_now_ms() < end) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        int n = p2c2r_client_poll(c, &r, 1, 100);
        H_REQUIRE(n >= 0, "poll: %s", h_err(n));
        if (n == 0)
            continue;
        for (int i = 0; i < 4; i++)
            if (r.ticket.id == tk[i].id)
                order[got++] = i;
        H_CHECK(r.status == 0, "ticket %llu: %s", (unsigned long long)r.ticket.id, h_err(r.status));
        p2c2r_result_release(&r);
    }
    H_REQUIRE(got == 4, "%d of 4 results", got);
    int pos[4];
    for (int i = 0; i < 4; i++)
        pos[order[i]] = i;
    H_CHECK(pos[1] < pos[2] && pos[3] < pos[2],
            "A (lent a 5 s deadline by its twin C) should finish before B (30 s): order %d %d %d %d", order[0],
            order[1], order[2], order[3]);
    h_fake_peer_counts(fp, &f);
    H_CHECK(f.assigned == 3, "the peer ran %ld tasks, expected 3 (C joined A)", f.assigned);
    p2c2r_client_close(c);
    h_fake_peer_stop(fp);
    struct h_proc *ps[] = {co};
    h_stop_all(ps, 1);
}

/* ---- circuit breaker ------------------------------------------------------------------ */

static void scenario_breaker(void)
{
    enum { N1 = 300, N2 = 200, STRIKES = 3 };
    h_phase("breaker: a coordinator with --breaker-strikes %d, two good peers and a failing fake peer",
            STRIKES);
    const char *cargs[] = {"--breaker-strikes", "3", "--breaker-cooldown", "60000", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *good[2] = {h_peer_start("good-1", 2, "echo", NULL), h_peer_start("good-2", 2, "echo", NULL)};
    h_wait_peers(2, NULL);
    struct h_fake_peer_cfg bc = {.name = "bad", .types = "echo", .slots = 4, .fail_code = P2C2R_ETASK};
    struct h_fake_peer *bad = h_fake_peer_start(&bc);
    uint32_t bad_id = h_fake_peer_id(bad);
    h_wait_peers(3, NULL);

    h_phase("breaker: %d echo tasks, 32 in flight", N1);
    p2c2r_client *c = h_renter("breaker-renter");
    struct rec *recs = calloc(N1, sizeof(*recs));
    int ok = run_echo(c, "breaker-renter", N1, 32, P2C2R_PRIO_INTERACTIVE, 101, recs);
    int retried = 0, on_bad = 0;
    for (int i = 0; i < N1; i++) {
        retried += recs[i].attempts >= 2;
        on_bad += recs[i].peer_id == bad_id;
    }
    free(recs);
    struct h_fake_counts fc;
    h_fake_peer_counts(bad, &fc);
    json_t *js = h_stats(NULL);
    const char *state = h_json_str(js, "peers[name=bad].state");
    state = state ? state : "";
    long long strikes = h_json_int(js, "peers[name=bad].strikes"),
              quarantines = h_json_int(js, "counters.quarantines");
    h_log("breaker: %d of %d ok, %d after a retry; bad peer: assigned %ld, state %s, strikes %lld; "
          "quarantines=%lld",
          ok, N1, retried, fc.assigned, state, strikes, quarantines);
    H_CHECK(ok == N1, "every task must succeed on a good peer: %d of %d", ok, N1);
    H_CHECK(on_bad == 0, "%d outcomes came from the failing peer", on_bad);
    H_CHECK(fc.assigned >= STRIKES, "the failing peer got only %ld tasks", fc.assigned);
    H_CHECK(strcmp(state, "quarantined") == 0, "the failing peer's state is '%s', expected quarantined",
            state);
    H_CHECK(quarantines == 1, "counters.quarantines is %lld, expected 1 (cool-down 60 s)", quarantines);
    H_CHECK(strikes >= STRIKES, "the failing peer has %lld strikes", strikes);
    H_CHECK(retried >= STRIKES, "only %d tasks ran a second time", retried);
    json_decref(js); /* state pointed into it */

    h_phase("breaker: %d more tasks while the failing peer is quarantined", N2);
    long assigned_before = fc.assigned;
    ok = run_echo(c, "breaker-renter", N2, 32, P2C2R_PRIO_INTERACTIVE, 102, NULL);
    h_fake_peer_counts(bad, &fc);
    H_CHECK(ok == N2, "every task must succeed: %d of %d", ok, N2);
    H_CHECK(fc.assigned == assigned_before, "a quarantined peer was given %ld more tasks",
            fc.assigned - assigned_before);
    H_CHECK(strcmp(peer_state("bad"), "quarantined") == 0, "the failing peer left quarantine");
    H_CHECK(h_stat("tasks_live") == 0, "tasks_live should be 0 at the end");
    p2c2r_client_close(c);

    h_fake_peer_stop(bad);
    struct h_proc *ps[] = {good[0], good[1], co};
    h_stop_all(ps, 3);
}

/* After its cool-down a quarantined peer is probed with one task: a failed
 * probe quarantines it again (for twice as long), a good one restores it. */
static void scenario_probe(void)
{
    enum { ROUND = 50 };
    h_phase("probe: a coordinator with --breaker-cooldown 300, two good peers and a failing fake peer");
    const char *cargs[] = {"--breaker-strikes", "3", "--breaker-cooldown", "300", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *good[2] = {h_peer_start("good-1", 2, "echo", NULL), h_peer_start("good-2", 2, "echo", NULL)};
    h_wait_peers(2, NULL);
    struct h_fake_peer_cfg bc = {.name = "flaky", .types = "echo", .slots = 4, .fail_code = P2C2R_ETASK};
    struct h_fake_peer *flaky = h_fake_peer_start(&bc);
    uint32_t flaky_id = h_fake_peer_id(flaky);
    h_wait_peers(3, NULL);
    p2c2r_client *c = h_renter("probe-renter");

    h_phase("probe: tasks until a failed probe quarantined the peer a second time");
    int ok = 0, tasks = 0;
    long long q = 0;
    uint64_t seed = 200, end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while ((q = h_stat("counters.quarantines")) < 2 && h_now_ms() < end) {
        ok += run_echo(c, "probe-renter", ROUND, 16, P2C2R_PRIO_INTERACTIVE, seed++, NULL);
        tasks += ROUND;
        h_sleep_ms(10);
    }
    H_CHECK(q >= 2, "quarantines %lld: the failed probe of a quarantined peer should quarantine it again", q);
    H_CHECK(ok == tasks, "every task must succeed: %d of %d", ok, tasks);

    h_phase("probe: the peer heals; the next probe restores it");
    h_fake_peer_set(flaky, 0, 0);
    struct rec recs[ROUND];
    int served = 0;
    char state[32] = "";
    end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (h_now_ms() < end) {
        ok += run_echo(c, "probe-renter", ROUND, 16, P2C2R_PRIO_INTERACTIVE, seed++, recs);
        tasks += ROUND;
        for (int i = 0; i < ROUND; i++)
            served += recs[i].peer_id == flaky_id;
        snprintf(state, sizeof(state), "%s", peer_state("flaky"));
        if (served > 1 && strcmp(state, "ok") == 0)
            break;
        h_sleep_ms(10);
    }
    struct h_fake_counts fc;
    h_fake_peer_counts(flaky, &fc);
    h_log("probe: %d of %d ok; the healed peer is '%s' and produced %d outcomes (assigned %ld in all); "
          "quarantines=%lld",
          ok, tasks, state, served, fc.assigned, h_stat("counters.quarantines"));
    H_CHECK(ok == tasks, "every task must succeed: %d of %d", ok, tasks);
    H_CHECK(strcmp(state, "ok") == 0, "a peer whose probe succeeded should be 'ok', is '%s'", state);
    H_CHECK(served > 1, "the restored peer produced %d outcomes: it should get work again", served);
    p2c2r_client_close(c);
    h_fake_peer_stop(flaky);
    struct h_proc *ps[] = {good[0], good[1], co};
    h_stop_all(ps, 3);
}

/* ---- deadline admission ------------------------------------------------------------------ */

/* Submits one it.slow task and waits for its result (the caller releases it). */
static void slow_task(p2c2r_client *c, uint8_t prio, uint32_t deadline_ms, int k, struct p2c2r_result *r)
{
    uint8_t in[16];
    task_input(in, sizeof(in), 300, k);
    struct p2c2r_task t = {.size = sizeof t, .type = "it.slow", .deadline_ms = deadline_ms, .priority = prio, .input = in,
                           .input_len = sizeof(in)};
    p2c2r_ticket tk;
    int rc = p2c2r_client_submit(c, &t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), r);
    H_REQUIRE(rc == 0, "no result for an it.slow task within %d ms: %s", h_bound_ms(10000), h_err(rc));
}

static void scenario_admission(void)
{
    enum { SLOTS = 4, DELAY_MS = 50, WARM = 24, FILL = 40 };
    h_phase("admission: a coordinator and a fake peer that takes %d ms per it.slow task", DELAY_MS);
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_fake_peer_cfg sc = {.name = "slow-type", .types = "it.slow", .slots = SLOTS,
                                 .delay_ms = DELAY_MS};
    struct h_fake_peer *fp = h_fake_peer_start(&sc);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("admission-renter");
    struct p2c2r_result r = P2C2R_RESULT_INIT;

    h_phase("admission: a 5 ms deadline before any sample is accepted, then times out");
    slow_task(c, P2C2R_PRIO_REALTIME, 5, 0, &r);
    H_CHECK(r.status == P2C2R_ETIMEDOUT && r.attempts == 1,
            "with no samples a 5 ms task should be accepted and time out: status %s attempts %u",
            h_err(r.status), r.attempts);
    p2c2r_result_release(&r);

    h_phase("admission: %d tasks give the type its samples", WARM);
    p2c2r_ticket tk[FILL];
    uint8_t in[FILL][16];
    for (int i = 0; i < WARM; i++) {
        task_input(in[i], 16, 301, i);
        struct p2c2r_task t = {.size = sizeof t, .type = "it.slow", .input = in[i], .input_len = 16};
        int rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    for (int i = 0; i < WARM; i++) {
        int rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        H_REQUIRE(rc == 0, "warm-up task %d: %s", i, h_err(rc));
        H_CHECK(r.status == 0 && r.output_len == 16 && memcmp(r.output, in[i], 16) == 0,
                "warm-up task %d: status %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    /* Admission needs 20 samples behind the quantiles, refreshed every 100 ms. */
    long long p50 = h_type_stat_sampled("it.slow", "attempt_p50_us", 20);
    h_log("admission: it.slow attempt p50 = %lld us", p50);
    H_REQUIRE(p50 >= DELAY_MS * 1000 / 2, "it.slow attempt_p50_us is %lld after %d tasks of %d ms", p50,
              WARM, DELAY_MS);

    h_phase("admission: a 5 ms deadline is now refused at once");
    struct h_fake_counts fc0, fc1;
    h_fake_peer_counts(fp, &fc0);
    slow_task(c, P2C2R_PRIO_REALTIME, 5, 1, &r);
    h_fake_peer_counts(fp, &fc1);
    H_CHECK(r.status == P2C2R_EDEADLINE && r.attempts == 0,
            "a 5 ms deadline under a %lld us p50: status %s attempts %u, expected EDEADLINE with none",
            p50, h_err(r.status), r.attempts);
    H_CHECK(r.output && strstr((const char *)r.output, "deadline"),
            "the EDEADLINE reason should say why: '%.*s'", (int)r.output_len,
            r.output ? (const char *)r.output : "");
    H_CHECK(fc1.assigned == fc0.assigned, "a refused task reached the peer");
    h_log("admission: refused with: %.*s", (int)r.output_len, r.output ? (const char *)r.output : "");
    p2c2r_result_release(&r);
    H_CHECK(h_stat("counters.rejected_deadline") == 1, "counters.rejected_deadline should be 1");

    h_phase("admission: a deadline the type can meet is accepted");
    slow_task(c, P2C2R_PRIO_REALTIME, (uint32_t)h_bound_ms(10000), 2, &r);
    H_CHECK(r.status == 0, "a %d ms deadline: status %s", h_bound_ms(10000), h_err(r.status));
    p2c2r_result_release(&r);

    /* A full queue: FILL background tasks on SLOTS slots, about FILL/SLOTS
     * rounds of DELAY_MS ahead of a new background task, none ahead of a
     * realtime one. */
    /* The estimate for a background task is about 50 + 37 * 50 / 4 = 512 ms,
     * for a realtime one 50 + 50 / 4 = 62 ms: deadlines in between tell
     * whether admission counts only the work ahead in the task's class. */
    enum { QDL_MS = 250, RT_DL_MS = 400 };
    h_phase("admission: %d background tasks queued; a %d ms deadline behind them, then ahead of them",
            FILL, QDL_MS);
    for (int i = 0; i < FILL; i++) {
        task_input(in[i], 16, 302, i);
        struct p2c2r_task t = {.size = sizeof t, .type = "it.slow", .priority = P2C2R_PRIO_BACKGROUND, .input = in[i],
                               .input_len = 16};
        int rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    p2c2r_ticket bg_probe, rt_probe;
    uint8_t pin[2][16];
    task_input(pin[0], 16, 303, 0);
    task_input(pin[1], 16, 303, 1);
    struct p2c2r_task bgt = {.size = sizeof bgt, .type = "it.slow", .deadline_ms = QDL_MS, .priority = P2C2R_PRIO_BACKGROUND,
                             .input = pin[0], .input_len = 16};
    struct p2c2r_task rtt = {.size = sizeof rtt, .type = "it.slow", .deadline_ms = RT_DL_MS,
                             .priority = P2C2R_PRIO_REALTIME, .input = pin[1], .input_len = 16};
    H_REQUIRE(p2c2r_client_submit(c, &bgt, &bg_probe) == 0, "submit");
    H_REQUIRE(p2c2r_client_submit(c, &rtt, &rt_probe) == 0, "submit");
    int rc = p2c2r_client_wait(c, bg_probe, h_bound_ms(10000), &r);
    H_REQUIRE(rc == 0, "background probe: %s", h_err(rc));
    h_log("admission: background probe: %s %.*s", h_err(r.status), (int)r.output_len,
          r.status && r.output ? (const char *)r.output : "");
    H_CHECK(r.status == P2C2R_EDEADLINE && r.attempts == 0,
            "a background task with a %d ms deadline behind %d queued tasks of %d ms on %d slots: "
            "status %s, expected EDEADLINE",
            QDL_MS, FILL, DELAY_MS, SLOTS, h_err(r.status));
    p2c2r_result_release(&r);
    rc = p2c2r_client_wait(c, rt_probe, h_bound_ms(10000), &r);
    H_REQUIRE(rc == 0, "realtime probe: %s", h_err(rc));
    h_log("admission: realtime probe: %s, %u attempts", h_err(r.status), r.attempts);
    H_CHECK(r.status != P2C2R_EDEADLINE,
            "a realtime task with a %d ms deadline has no task of its class ahead: admission must "
            "count only those, not the %d queued background tasks: %.*s",
            RT_DL_MS, FILL, (int)r.output_len, r.output ? (const char *)r.output : "");
    /* Accepted, it goes ahead of the background queue and normally ends
     * well inside its deadline; a machine too loaded for that gives
     * ETIMEDOUT, which says nothing about admission. */
    H_CHECK((r.status == 0 && r.output_len == 16 && memcmp(r.output, pin[1], 16) == 0) ||
                (r.status == P2C2R_ETIMEDOUT && r.attempts >= 1),
            "realtime probe: status %s", h_err(r.status));
    p2c2r_result_release(&r);
    for (int i = 0; i < FILL; i++) {
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        H_REQUIRE(rc == 0, "queued task %d: %s", i, h_err(rc));
        H_CHECK(r.status == 0 && r.output_len == 16 && memcmp(r.output, in[i], 16) == 0,
                "queued background task %d: status %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    H_CHECK(h_stat("counters.rejected_deadline") == 2, "counters.rejected_deadline should be 2");
    p2c2r_client_close(c);
    h_fake_peer_stop(fp);
    h_stop_all(&co, 1);
}

/* ---- priorities -------------------------------------------------------------------------- */

static void scenario_priority(void)
{
    int n = (int)(10000 * h_scale());
    n = n < 1000 ? 1000 : n;
    h_phase("priority: a coordinator and a peer with one slot");
    char mi[16];
    snprintf(mi, sizeof(mi), "%d", n + 100);
    const char *cargs[] = {"--max-inflight", mi, NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *peer = h_peer_start("one-slot", 1, "echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("priority-renter");

    h_phase("priority: peer frozen; %d background tasks, then one realtime task", n);
    h_signal(peer, SIGSTOP);
    struct p2c2r_task *ts = calloc((size_t)n, sizeof(*ts));
    p2c2r_ticket *tk = calloc((size_t)n, sizeof(*tk));
    uint8_t(*in)[16] = calloc((size_t)n, sizeof(*in));
    H_REQUIRE(ts && tk && in, "out of memory");
    for (int i = 0; i < n; i++) {
        task_input(in[i], 16, 400, i);
        ts[i] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .priority = P2C2R_PRIO_BACKGROUND, .input = in[i],
                                    .input_len = 16};
    }
    int rc = p2c2r_client_submit_batch(c, ts, (size_t)n, tk);
    H_REQUIRE(rc == 0, "submit_batch of %d: %s", n, h_err(rc));
    uint8_t rin[16];
    task_input(rin, 16, 401, 0);
    /* A frame-sized deadline, as a game gives realtime work. */
    struct p2c2r_task rt = {.size = sizeof rt, .type = "echo", .deadline_ms = (uint32_t)h_bound_ms(10000),
                            .priority = P2C2R_PRIO_REALTIME, .input = rin, .input_len = 16};
    p2c2r_ticket rtk;
    rc = p2c2r_client_submit(c, &rt, &rtk);
    H_REQUIRE(rc == 0, "submit realtime: %s", h_err(rc));
    /* Everything must be in the coordinator's queues before the peer
     * resumes: one task on the frozen peer, the rest queued. */
    long long live = h_wait_live(c, n + 1, 10000);
    H_REQUIRE(live == n + 1, "the coordinator holds %lld of %d tasks", live, n + 1);
    long long queued = h_stat("queued");
    h_log("priority: %lld tasks live, %lld queued; resuming the peer", live, queued);
    h_signal(peer, SIGCONT);

    h_phase("priority: collect %d results", n + 1);
    int got = 0, rt_pos = -1, ok = 0;
    char *seen = calloc((size_t)n, 1);
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    uint64_t last = h_now_ms();
    while (got < n + 1) {
        int k = p2c2r_client_poll(c, res, 256, 200);
        H_REQUIRE(k >= 0, "poll: %s", h_err(k));
        if (k > 0)
            last = h_now_ms();
        H_REQUIRE(h_now_ms() - last < (uint64_t)h_bound_ms(20000), "no result for %d ms (%d of %d)",
                  h_bound_ms(20000), got, n + 1);
        for (int j = 0; j < k; j++) {
            struct p2c2r_result *x = &res[j];
            if (x->ticket.id == rtk.id) {
                rt_pos = got;
                H_CHECK(x->status == 0 && x->output_len == 16 && memcmp(x->output, rin, 16) == 0,
                        "realtime task: status %s", h_err(x->status));
            } else {
                /* Tickets of one batch are consecutive. */
                uint64_t i = x->ticket.id - tk[0].id;
                if (H_CHECK(i < (uint64_t)n && tk[i].id == x->ticket.id && !seen[i]++,
                            "result for unknown or repeated ticket %llu", (unsigned long long)x->ticket.id))
                    ok += x->status == 0 && x->output_len == 16 && memcmp(x->output, in[i], 16) == 0;
            }
            got++;
            p2c2r_result_release(x);
        }
    }
    h_log("priority: the realtime result came after %d of %d background results", rt_pos, n);
    H_CHECK(ok == n, "%d of %d background tasks correct", ok, n);
    H_CHECK(rt_pos >= 0 && rt_pos < n / 10,
            "the realtime task should be served before 90%% of the background tasks queued ahead of "
            "it: it came after %d of %d",
            rt_pos, n);
    H_CHECK(h_stat("tasks_live") == 0, "tasks_live should be 0 at the end");
    free(seen);
    free(in);
    free(tk);
    free(ts);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {peer, co};
    h_stop_all(ps, 2);
}

/* ---- result cache and coalescing ---------------------------------------------------------- */

#define SHA_SIZE 65536

static void sha_task(p2c2r_client *c, const uint8_t *in, uint32_t flags, struct p2c2r_result *r)
{
    struct p2c2r_task t = {.size = sizeof t, .type = "sha256", .input = in, .input_len = SHA_SIZE, .flags = flags};
    p2c2r_ticket tk;
    int rc = p2c2r_client_submit(c, &t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), r);
    H_REQUIRE(rc == 0, "sha256 task: %s", h_err(rc));
}

static long long peer_done(const char *name)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[name=%s].done", name);
    return h_stat(path);
}

static void scenario_cache(void)
{
    enum { SAME = 100 };
    h_phase("cache: a coordinator (sha256 cached by default) and one peer");
    /* --verify none: one peer can verify nothing, and only verified results
     * are cached otherwise (test_verify.c); this tests the cache itself. */
    const char *cargs[] = {"--verify", "none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *peer = h_peer_start("cache-peer", 2, "sha256,echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("cache-renter");
    uint8_t *x = malloc(SHA_SIZE), *y = malloc(SHA_SIZE);
    uint8_t mdx[32], mdy[32];
    h_fill(x, SHA_SIZE, 500);
    h_fill(y, SHA_SIZE, 501);
    h_sha256(x, SHA_SIZE, mdx);
    h_sha256(y, SHA_SIZE, mdy);
    struct p2c2r_result r = P2C2R_RESULT_INIT;

    h_phase("cache: a first run, a repeat from the cache, a NOCACHE repeat");
    sha_task(c, x, 0, &r);
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, mdx, 32) == 0 &&
                !(r.flags & P2C2R_RESULT_CACHED) && r.attempts == 1,
            "first run: status %s flags 0x%x attempts %u", h_err(r.status), r.flags, r.attempts);
    p2c2r_result_release(&r);
    long long d0 = peer_done("cache-peer");
    sha_task(c, x, 0, &r);
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, mdx, 32) == 0,
            "repeat: status %s, or a wrong digest", h_err(r.status));
    H_CHECK((r.flags & P2C2R_RESULT_CACHED) && r.attempts == 0,
            "a repeat should come from the cache: flags 0x%x attempts %u", r.flags, r.attempts);
    p2c2r_result_release(&r);
    H_CHECK(peer_done("cache-peer") == d0, "the peer ran a repeat the cache holds (done %lld -> %lld)", d0,
            peer_done("cache-peer"));
    H_CHECK(h_stat("counters.cache_hits") == 1, "counters.cache_hits should be 1");
    sha_task(c, x, P2C2R_TASK_NOCACHE, &r);
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, mdx, 32) == 0 &&
                !(r.flags & P2C2R_RESULT_CACHED) && r.attempts == 1,
            "NOCACHE repeat must run: status %s flags 0x%x attempts %u", h_err(r.status), r.flags,
            r.attempts);
    p2c2r_result_release(&r);
    H_CHECK(peer_done("cache-peer") == d0 + 1, "the NOCACHE repeat should run on the peer (done %lld)",
            peer_done("cache-peer"));

    h_phase("cache: %d identical tasks in flight at once (peer frozen)", SAME);
    long long d1 = peer_done("cache-peer"), co0 = h_stat("counters.coalesced");
    h_signal(peer, SIGSTOP);
    struct p2c2r_task ts[SAME];
    p2c2r_ticket tk[SAME];
    for (int i = 0; i < SAME; i++)
        ts[i] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "sha256", .input = y, .input_len = SHA_SIZE};
    int rc = p2c2r_client_submit_batch(c, ts, SAME, tk);
    H_REQUIRE(rc == 0, "submit_batch: %s", h_err(rc));
    long long live = h_wait_live(c, SAME, 10000);
    H_CHECK(live == SAME, "the coordinator holds %lld of %d tasks", live, SAME);
    h_signal(peer, SIGCONT);
    int ok = 0, cached = 0;
    for (int i = 0; i < SAME; i++) {
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        if (!H_CHECK(rc == 0, "identical task %d: %s", i, h_err(rc)))
            break;
        ok += r.status == 0 && r.output_len == 32 && memcmp(r.output, mdy, 32) == 0;
        cached += (r.flags & P2C2R_RESULT_CACHED) != 0;
        p2c2r_result_release(&r);
    }
    long long coalesced = h_stat("counters.coalesced") - co0, d2 = peer_done("cache-peer");
    h_log("cache: %d identical tasks: %d ok, %d flagged CACHED; coalesced %lld; peer runs %lld", SAME, ok,
          cached, coalesced, d2 - d1);
    H_CHECK(ok == SAME, "%d of %d identical tasks got the right digest", ok, SAME);
    H_CHECK(coalesced == SAME - 1, "counters.coalesced grew by %lld, expected %d", coalesced, SAME - 1);
    H_CHECK(cached == SAME - 1, "%d results flagged CACHED, expected %d", cached, SAME - 1);
    H_CHECK(d2 - d1 == 1, "the peer ran the identical tasks %lld times, expected once", d2 - d1);
    free(x);
    free(y);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {peer, co};
    h_stop_all(ps, 2);
}

/* ---- capability requirements ----------------------------------------------------------------- */

static void scenario_gpu(void)
{
    enum { N = 20 };
    h_phase("gpu: a coordinator and a peer without a GPU");
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_proc *cpu = h_peer_start("cpu-peer", 2, "echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("gpu-renter");
    uint8_t in[N][16];
    for (int i = 0; i < N; i++)
        task_input(in[i], 16, 600, i);
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    p2c2r_ticket tk[N];

    struct p2c2r_task g = {.size = sizeof g, .type = "echo", .input = in[0], .input_len = 16, .need_gpu = 1};
    int rc = p2c2r_client_submit(c, &g, &tk[0]);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, tk[0], h_bound_ms(5000), &r);
    H_REQUIRE(rc == 0, "GPU task: %s", h_err(rc));
    h_log("gpu: GPU task with no GPU peer: %s: %.*s", h_err(r.status), (int)r.output_len,
          r.output ? (const char *)r.output : "");
    H_CHECK(r.status == P2C2R_EUNSUPPORTED && r.attempts == 0 && r.output &&
                strstr((const char *)r.output, "GPU"),
            "a task needing a GPU with no GPU peer: status %s, expected EUNSUPPORTED naming the GPU",
            h_err(r.status));
    p2c2r_result_release(&r);
    struct p2c2r_task m = {.size = sizeof m, .type = "echo", .input = in[0], .input_len = 16, .min_cores = 60000};
    rc = p2c2r_client_submit(c, &m, &tk[0]);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    rc = p2c2r_client_wait(c, tk[0], h_bound_ms(5000), &r);
    H_REQUIRE(rc == 0, "cores task: %s", h_err(rc));
    H_CHECK(r.status == P2C2R_EUNSUPPORTED && r.output && strstr((const char *)r.output, "cores"),
            "a task needing 60000 cores: status %s '%.*s', expected EUNSUPPORTED naming the cores",
            h_err(r.status), (int)r.output_len, r.output ? (const char *)r.output : "");
    p2c2r_result_release(&r);
    H_CHECK(h_stat("counters.rejected_capability") == 2, "counters.rejected_capability should be 2");

    h_phase("gpu: a GPU peer joins; GPU tasks run there");
    const char *gargs[] = {"--gpu", "IT test GPU", NULL};
    struct h_proc *gpu = h_peer_start("gpu-peer", 2, "echo", gargs);
    h_wait_peers(2, NULL);
    json_t *js = h_stats(NULL);
    long long gid = h_json_int(js, "peers[name=gpu-peer].id");
    H_CHECK(h_json_bool(js, "peers[name=gpu-peer].gpu") == 1, "the GPU peer shows no GPU in stats: %s",
            h_json_text(h_json_at(js, "peers")));
    json_decref(js);
    for (int i = 0; i < N; i++) {
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = in[i], .input_len = 16, .need_gpu = 1};
        rc = p2c2r_client_submit(c, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    }
    int ok = 0, on_gpu = 0;
    for (int i = 0; i < N; i++) {
        rc = p2c2r_client_wait(c, tk[i], h_bound_ms(10000), &r);
        if (!H_CHECK(rc == 0, "GPU task %d: %s", i, h_err(rc)))
            break;
        ok += r.status == 0 && r.output_len == 16 && memcmp(r.output, in[i], 16) == 0;
        on_gpu += (long long)r.peer_id == gid;
        p2c2r_result_release(&r);
    }
    H_CHECK(ok == N && on_gpu == N, "GPU tasks: %d of %d correct, %d ran on the GPU peer (id %lld)", ok, N,
            on_gpu, gid);
    ok = run_echo(c, "gpu-renter", 200, 16, P2C2R_PRIO_INTERACTIVE, 601, NULL);
    H_CHECK(ok == 200, "tasks without requirements: %d of 200 correct", ok);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {cpu, gpu, co};
    h_stop_all(ps, 3);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "sched");
    scenario_hedge();
    scenario_hedge_hol();
    scenario_queue_hol();
    scenario_breaker();
    scenario_probe();
    scenario_admission();
    scenario_priority();
    scenario_cache();
    scenario_coalesce_urgency();
    scenario_gpu();
    scenario_type_deadline();
    return h_finish();
}
