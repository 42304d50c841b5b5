/* test_fair.c - a fair share for every renter (issue 12, item 3), against real daemons: one
 * coordinator per scenario, with a tokens file so that every connection of one token is one
 * share, and ONE shared p2c2r-peer with one slot, frozen (SIGSTOP) while the queues fill so
 * that what runs first is decided by the scheduler alone.
 *
 * flood:  renter A opens four connections with its token and queues 50,000 echo tasks
 *         (scaled) on them, first at background priority, then (a second coordinator) at
 *         realtime: priority is self-declared.  Renter B then submits 8 background and 8
 *         realtime tasks.  Once the peer resumes, every one of B's tasks must come back OK
 *         while most of A's backlog is still queued: the coordinator's completed counter,
 *         read as soon as B has all its results, must be under a quarter of A's tasks
 *         (before fair shares B waited for A's whole backlog: the counter read N + 16).
 *         Also checked: A's four connections are one share ("shares" is 2), and all of A's
 *         tasks still complete.  No wall-clock bound is asserted: only a hang guard.
 * queue:  with --queue-max 2000, A tries to queue 2,000 tasks: it gets half of the queue
 *         and the rest are refused with EQUEUEFULL naming its part; B's 100 tasks are then
 *         all accepted (before, A filled the queue and B was refused).
 * aging:  one renter: a plug task occupies the frozen peer, then a lone background task
 *         (the default 60 s deadline), then 40,000 interactive tasks (scaled) with a 30 s
 *         deadline, with --aging 100.  When the peer resumes, the background task, which
 *         has risen to realtime level, must come back among the first results (before the
 *         fix it came last: once risen it still went by its own far deadline, behind every
 *         interactive task due sooner). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define TOK_A "renter-a-4b1f"
#define TOK_B "renter-b-93c2"
#define TOK_P "peer-77e0"
#define A_CONNS 4

static const char *tokens_file(void)
{
    static char path[320];
    h_path(path, sizeof(path), "tokens");
    const char *body = "renter:" TOK_A "\nrenter:" TOK_B "\npeer:" TOK_P "\n";
    H_REQUIRE(h_write_file(path, body, strlen(body)) == 0, "cannot write %s", path);
    return path;
}

static p2c2r_client *renter(const char *token, const char *name)
{
    struct p2c2r_client_options o = {sizeof o, token, name, h_bound_ms(5000), 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "%s: connect to %s: %s", name, h_addr(), h_err(rc));
    return c;
}

static long long stat_b(const char *path)
{
    json_t *js = h_stats(TOK_B);
    long long v = h_json_int(js, path);
    json_decref(js);
    return v;
}

/* Pushes out what the clients have unsent and waits until the coordinator
 * holds n live tasks (bounded); returns the last count seen. */
static long long wait_live(p2c2r_client **cs, int ncs, long long n)
{
    uint64_t until = h_now_ms() + (uint64_t)h_bound_ms(30000);
    long long live = -1;
    do {
        for (int i = 0; i < ncs; i++)
            H_REQUIRE(p2c2r_client_process(cs[i]) >= 0, "client %d failed", i);
        live = stat_b("tasks_live");
        if (live >= n)
            break;
        h_sleep_ms(20);
    } while (h_now_ms() < until);
    return live;
}

/* Input of task k of stream s: unique, so nothing is coalesced or cached. */
static void input(uint8_t *in, int s, int k)
{
    memset(in, 0, 16);
    memcpy(in, &s, sizeof(s));
    memcpy(in + 8, &k, sizeof(k));
}

/* Polls c until want results came (bounded by a hang guard); returns how
 * many had status OK. */
static int collect(p2c2r_client *c, int want, const char *who)
{
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    int got = 0, ok = 0;
    uint64_t last = h_now_ms();
    while (got < want) {
        int k = p2c2r_client_poll(c, res, 256, 100);
        H_REQUIRE(k >= 0, "%s: poll: %s", who, h_err(k));
        if (k > 0)
            last = h_now_ms();
        H_REQUIRE(h_now_ms() - last < (uint64_t)h_bound_ms(30000), "%s: no result for %d ms (%d of %d)", who,
                  h_bound_ms(30000), got, want);
        for (int j = 0; j < k; j++) {
            if (res[j].status == 0 && res[j].output_len == 16)
                ok++;
            else
                H_CHECK(0, "%s: a task failed: %s", who, h_err(res[j].status));
            got++;
            p2c2r_result_release(&res[j]);
        }
    }
    return ok;
}

static struct h_proc *start(const char *extra1, const char *extra2, struct h_proc **peer)
{
    const char *cargs[] = {"--tokens", tokens_file(), "--max-inflight", "100000", extra1, extra2, NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    const char *pargs[] = {"--token", TOK_P, NULL};
    *peer = h_peer_start("shared", 1, "echo", pargs);
    h_wait_peers(1, TOK_B);
    return co;
}

/* Frees a scenario's buffers and stops its daemons. */
static void scenario_end(struct h_proc *co, struct h_proc *peer, void *in, void *tk, void *ts)
{
    free(in);
    free(tk);
    free(ts);
    struct h_proc *ps[] = {peer, co};
    h_stop_all(ps, 2);
}

static void scenario_flood(int prio)
{
    const char *pn = prio == P2C2R_PRIO_REALTIME ? "realtime" : "background";
    int n = (int)(50000 * h_scale());
    n = n < 4000 ? 4000 : n;
    n -= n % A_CONNS;
    h_phase("flood %s: a coordinator with tokens, one shared peer with one slot", pn);
    struct h_proc *peer;
    struct h_proc *co = start(NULL, NULL, &peer);
    p2c2r_client *a[A_CONNS];
    for (int i = 0; i < A_CONNS; i++)
        a[i] = renter(TOK_A, "renter-a");
    p2c2r_client *b = renter(TOK_B, "renter-b");
    H_CHECK(stat_b("shares") == 2, "A's %d connections and B should be 2 shares, got %lld", A_CONNS,
            stat_b("shares"));

    h_phase("flood %s: peer frozen; A queues %d %s tasks on %d connections", pn, n, pn, A_CONNS);
    h_signal(peer, SIGSTOP);
    int per = n / A_CONNS;
    struct p2c2r_task *ts = calloc((size_t)per, sizeof(*ts));
    p2c2r_ticket *tk = calloc((size_t)per, sizeof(*tk));
    uint8_t(*in)[16] = calloc((size_t)n, sizeof(*in));
    H_REQUIRE(ts && tk && in, "out of memory");
    for (int i = 0; i < A_CONNS; i++) {
        for (int j = 0; j < per; j++) {
            input(in[i * per + j], prio * 10 + i, j);
            ts[j] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .priority = prio,
                                        .input = in[i * per + j], .input_len = 16};
        }
        int rc = p2c2r_client_submit_batch(a[i], ts, (size_t)per, tk);
        H_REQUIRE(rc == 0, "A %d: submit_batch of %d: %s", i, per, h_err(rc));
    }
    long long live = wait_live(a, A_CONNS, n);
    H_REQUIRE(live == n, "the coordinator holds %lld of A's %d tasks", live, n);

    h_phase("flood %s: B submits 8 background and 8 realtime tasks", pn);
    uint8_t bin[16][16];
    for (int j = 0; j < 16; j++) {
        input(bin[j], 99, j);
        struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = bin[j], .input_len = 16,
                               .priority = j < 8 ? P2C2R_PRIO_BACKGROUND : P2C2R_PRIO_REALTIME};
        p2c2r_ticket x;
        int rc = p2c2r_client_submit(b, &t, &x);
        H_REQUIRE(rc == 0, "B: submit %d: %s", j, h_err(rc));
    }
    live = wait_live(&b, 1, n + 16);
    H_REQUIRE(live == n + 16, "the coordinator holds %lld of %d tasks", live, n + 16);
    h_signal(peer, SIGCONT);

    h_phase("flood %s: B's results", pn);
    int ok = collect(b, 16, "B");
    long long done = stat_b("counters.completed");
    h_log("flood %s: B had its 16 results when %lld tasks had completed (A queued %d)", pn, done, n);
    H_CHECK(ok == 16, "B: %d of 16 tasks OK", ok);
    H_CHECK(done >= 16 && done < n / 4,
            "B's tasks should run before A's backlog: %lld tasks had completed when B had its 16 results, "
            "expected fewer than %d of A's %d",
            done, n / 4, n);

    h_phase("flood %s: A's results", pn);
    int aok = 0;
    for (int i = 0; i < A_CONNS; i++)
        aok += collect(a[i], per, "A");
    H_CHECK(aok == n, "A: %d of %d tasks OK", aok, n);
    H_CHECK(stat_b("tasks_live") == 0, "tasks_live should be 0 at the end");
    for (int i = 0; i < A_CONNS; i++)
        p2c2r_client_close(a[i]);
    p2c2r_client_close(b);
    scenario_end(co, peer, in, tk, ts);
}

static void scenario_queue(void)
{
    enum { QMAX = 2000, NB = 100 };
    h_phase("queue: --queue-max %d, the peer frozen", QMAX);
    struct h_proc *peer;
    struct h_proc *co = start("--queue-max", "2000", &peer);
    p2c2r_client *a = renter(TOK_A, "renter-a");
    p2c2r_client *b = renter(TOK_B, "renter-b");
    h_signal(peer, SIGSTOP);
    struct p2c2r_task *ts = calloc(QMAX, sizeof(*ts));
    p2c2r_ticket *tk = calloc(QMAX, sizeof(*tk));
    uint8_t(*in)[16] = calloc(QMAX + NB, sizeof(*in));
    H_REQUIRE(ts && tk && in, "out of memory");
    for (int j = 0; j < QMAX; j++) {
        input(in[j], 7, j);
        ts[j] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .input = in[j], .input_len = 16};
    }
    int rc = p2c2r_client_submit_batch(a, ts, QMAX, tk);
    H_REQUIRE(rc == 0, "A: submit_batch: %s", h_err(rc));
    /* Refusals come back at once; accepted tasks wait on the frozen peer. */
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    int full = 0;
    uint64_t until = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (h_now_ms() < until && stat_b("tasks_live") + full < QMAX) {
        int k = p2c2r_client_poll(a, res, 256, 50);
        H_REQUIRE(k >= 0, "A: poll: %s", h_err(k));
        for (int j = 0; j < k; j++) {
            if (H_CHECK(res[j].status == P2C2R_EQUEUEFULL, "A: a task ended early: %s", h_err(res[j].status)))
                full++;
            p2c2r_result_release(&res[j]);
        }
    }
    long long a_live = stat_b("tasks_live");
    h_log("queue: A got %lld tasks in, %d refused with EQUEUEFULL", a_live, full);
    H_CHECK(full > 0 && a_live + full == QMAX, "A: %lld live + %d refused, expected %d in all", a_live, full, QMAX);
    H_CHECK(a_live <= QMAX / 2 + 1, "A holds %lld tasks: more than half the queue (%d)", a_live, QMAX / 2);
    H_CHECK(stat_b("counters.rejected_share_queue") == full, "rejected_share_queue %lld, expected %d",
            stat_b("counters.rejected_share_queue"), full);

    h_phase("queue: B submits %d tasks", NB);
    for (int j = 0; j < NB; j++) {
        input(in[QMAX + j], 8, j);
        ts[j] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .input = in[QMAX + j],
                                    .input_len = 16};
    }
    rc = p2c2r_client_submit_batch(b, ts, NB, tk);
    H_REQUIRE(rc == 0, "B: submit_batch: %s", h_err(rc));
    h_signal(peer, SIGCONT);
    H_CHECK(collect(b, NB, "B") == NB, "B: every task should be accepted and succeed");
    H_CHECK(collect(a, (int)a_live, "A") == a_live, "A: its accepted tasks should succeed");
    p2c2r_client_close(a);
    p2c2r_client_close(b);
    scenario_end(co, peer, in, tk, ts);
}

static void scenario_aging(void)
{
    int n = (int)(40000 * h_scale());
    n = n < 4000 ? 4000 : n;
    h_phase("aging: --aging 100, one renter, the peer frozen behind a plug task");
    struct h_proc *peer;
    struct h_proc *co = start("--aging", "100", &peer);
    p2c2r_client *c = renter(TOK_A, "renter");
    h_signal(peer, SIGSTOP);
    uint8_t plug_in[16], bg_in[16];
    input(plug_in, 20, 0);
    input(bg_in, 21, 0);
    struct p2c2r_task plug = {.size = sizeof plug, .type = "echo", .input = plug_in, .input_len = 16};
    struct p2c2r_task bg = {.size = sizeof bg, .type = "echo", .priority = P2C2R_PRIO_BACKGROUND, .input = bg_in,
                            .input_len = 16};
    p2c2r_ticket plug_tk, bg_tk;
    H_REQUIRE(p2c2r_client_submit(c, &plug, &plug_tk) == 0, "submit plug");
    H_REQUIRE(p2c2r_client_submit(c, &bg, &bg_tk) == 0, "submit background");
    H_REQUIRE(wait_live(&c, 1, 2) == 2, "plug and background task not live");
    /* The interactive stream arrives more than one aging period later. */
    h_sleep_ms(250);
    h_phase("aging: %d interactive tasks with a 30 s deadline", n);
    struct p2c2r_task *ts = calloc((size_t)n, sizeof(*ts));
    p2c2r_ticket *tk = calloc((size_t)n, sizeof(*tk));
    uint8_t(*in)[16] = calloc((size_t)n, sizeof(*in));
    H_REQUIRE(ts && tk && in, "out of memory");
    for (int j = 0; j < n; j++) {
        input(in[j], 22, j);
        ts[j] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo",
                                    .priority = P2C2R_PRIO_INTERACTIVE, .deadline_ms = 30000, .input = in[j],
                                    .input_len = 16};
    }
    H_REQUIRE(p2c2r_client_submit_batch(c, ts, (size_t)n, tk) == 0, "submit_batch");
    H_REQUIRE(wait_live(&c, 1, n + 2) == n + 2, "not all tasks live");
    h_sleep_ms(250); /* every task has risen to realtime level */
    h_signal(peer, SIGCONT);

    h_phase("aging: results");
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    int got = 0, bg_pos = -1, ok = 0;
    uint64_t last = h_now_ms();
    while (got < n + 2) {
        int k = p2c2r_client_poll(c, res, 256, 100);
        H_REQUIRE(k >= 0, "poll: %s", h_err(k));
        if (k > 0)
            last = h_now_ms();
        H_REQUIRE(h_now_ms() - last < (uint64_t)h_bound_ms(30000), "no result for a while (%d of %d)", got, n + 2);
        for (int j = 0; j < k; j++) {
            if (res[j].ticket.id == bg_tk.id) {
                bg_pos = got;
                H_CHECK(res[j].status == 0, "background task: %s", h_err(res[j].status));
            }
            ok += res[j].status == 0;
            got++;
            p2c2r_result_release(&res[j]);
        }
    }
    h_log("aging: the background task came back after %d of %d results", bg_pos, n + 2);
    H_CHECK(ok == n + 2, "%d of %d tasks OK", ok, n + 2);
    H_CHECK(bg_pos >= 0 && bg_pos < 100,
            "the background task should come among the first results once risen: it came after %d of %d", bg_pos,
            n + 2);
    p2c2r_client_close(c);
    scenario_end(co, peer, in, tk, ts);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "fair");
    scenario_flood(P2C2R_PRIO_BACKGROUND);
    scenario_flood(P2C2R_PRIO_REALTIME);
    scenario_queue();
    scenario_aging();
    return h_finish();
}
