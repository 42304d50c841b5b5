/* test_roundtrip.c - one renter against a coordinator and two peers.
 *
 * The peers split the task types (one runs only echo, the other only sha256
 * with one slot) so the test can freeze the sha256 peer with SIGSTOP and get
 * deterministic "still running" tasks: that is how it checks out-of-order
 * completion, wait(timeout 0) on an unfinished task, and cancellation
 * without depending on timing.
 *
 * Checks: echo and sha256 (known vectors and OpenSSL), empty input, a
 * 1000-task submit_batch of mixed sizes and types matched by ticket,
 * out-of-order completion, ETIMEDOUT from wait(0), the non-blocking face
 * (poll on the fd, process, poll(0)), cancel (queued, running, finished,
 * unknown), unsupported types, an unsatisfiable min_version not blocking
 * other tasks, size limits, and EAGAIN backpressure at max_inflight. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_INFLIGHT 2000

static const uint8_t sha_abc[32] = {
    0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
    0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
static const char sha_empty_hex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

static struct h_proc *sha_peer;

static struct p2c2r_task task_of(const char *type, const char *params, const void *in, size_t n)
{
    struct p2c2r_task t = {sizeof t, type, 0, 0, P2C2R_PRIO_INTERACTIVE, params, params ? strlen(params) : 0,
                           in, n};
    return t;
}

/* A task the coordinator must run on a peer: not answered from its result
 * cache nor merged with an identical task in flight. */
static struct p2c2r_task task_fresh(const char *type, const char *params, const void *in, size_t n)
{
    struct p2c2r_task t = task_of(type, params, in, n);
    t.flags = P2C2R_TASK_NOCACHE;
    return t;
}

static struct p2c2r_result run_one(p2c2r_client *c, const char *type, const char *params, const void *in,
                                   size_t n)
{
    struct p2c2r_task t = task_of(type, params, in, n);
    return h_wait(c, h_submit(c, &t), 10000);
}

static void check_ok(const struct p2c2r_result *r, const void *want, size_t n, const char *what)
{
    if (!H_CHECK(r->status == 0, "%s: status %s (%.*s)", what, h_err(r->status), (int)r->output_len,
                 r->output ? (const char *)r->output : ""))
        return;
    H_CHECK(r->output_len == n, "%s: output %zu bytes, expected %zu", what, r->output_len, n);
    H_CHECK(r->output_len != n || n == 0 || memcmp(r->output, want, n) == 0, "%s: output bytes differ",
            what);
    if (r->flags & P2C2R_RESULT_CACHED)
        return; /* answered by the result cache or an identical task: no run of its own */
    H_CHECK(r->peer_id != 0, "%s: peer_id 0 on a successful result", what);
    H_CHECK(r->attempts >= 1, "%s: attempts %u", what, r->attempts);
}

static void test_echo_sha(p2c2r_client *c)
{
    h_phase("echo and sha256");
    const char msg[] = "hello, p2c2r";
    struct p2c2r_result r = run_one(c, "echo", NULL, msg, sizeof(msg) - 1);
    check_ok(&r, msg, sizeof(msg) - 1, "echo small");
    p2c2r_result_release(&r);

    r = run_one(c, "sha256", NULL, "abc", 3);
    check_ok(&r, sha_abc, 32, "sha256(abc) known vector");
    p2c2r_result_release(&r);

    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", sha_abc[i]);
    r = run_one(c, "sha256", "format=hex\n", "abc", 3);
    check_ok(&r, hex, 64, "sha256(abc) format=hex");
    p2c2r_result_release(&r);

    /* Large enough to run on the peer's executor threads, not inline. */
    size_t n = 3u << 20;
    uint8_t *big = malloc(n), md[32];
    h_fill(big, n, 42);
    h_sha256(big, n, md);
    r = run_one(c, "sha256", NULL, big, n);
    check_ok(&r, md, 32, "sha256 of 3 MiB vs OpenSSL");
    p2c2r_result_release(&r);
    r = run_one(c, "echo", NULL, big, n);
    check_ok(&r, big, n, "echo of 3 MiB");
    p2c2r_result_release(&r);
    free(big);

    r = run_one(c, "sha256", "format=bogus\n", "abc", 3);
    H_CHECK(r.status == P2C2R_EINVAL, "sha256 with format=bogus: status %s, expected EINVAL",
            h_err(r.status));
    H_CHECK(r.status == 0 || r.output_len > 0, "an error result should carry a reason text");
    p2c2r_result_release(&r);
}

static void test_empty(p2c2r_client *c)
{
    h_phase("empty input");
    struct p2c2r_result r = run_one(c, "echo", NULL, NULL, 0);
    check_ok(&r, "", 0, "echo of empty input");
    p2c2r_result_release(&r);
    r = run_one(c, "sha256", "format=hex\n", NULL, 0);
    check_ok(&r, sha_empty_hex, 64, "sha256 of empty input");
    p2c2r_result_release(&r);
}

static void test_batch(p2c2r_client *c)
{
    enum { N = 1000 };
    h_phase("submit_batch of %d mixed tasks", N);
    struct p2c2r_task *tasks = calloc(N, sizeof(*tasks));
    uint8_t **in = calloc(N, sizeof(*in));
    p2c2r_ticket *tk = calloc(N, sizeof(*tk));
    int *seen = calloc(N, sizeof(*seen));
    uint64_t st = 7;
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        size_t n = h_log_uniform(&st, 256 * 1024);
        in[i] = malloc(n ? n : 1);
        h_fill(in[i], n, 1000 + (uint64_t)i);
        int sha = i % 3 == 1;
        tasks[i] = task_of(sha ? "sha256" : "echo", NULL, in[i], n);
        tasks[i].priority = (uint8_t)(i % 3);
        total += n;
    }
    int rc = p2c2r_client_submit_batch(c, tasks, N, tk);
    H_REQUIRE(rc == 0, "submit_batch(%d tasks, %zu bytes) returned %s", N, total, h_err(rc));
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < i; j++)
            H_REQUIRE(tk[i].id != tk[j].id, "submit_batch gave ticket %llu twice",
                      (unsigned long long)tk[i].id);
    }
    int got = 0, ok = 0, inorder = 1, last = -1;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(30000);
    struct p2c2r_result res[64] = {P2C2R_RESULT_INIT};
    while (got < N && h_now_ms() < end) {
        int n = p2c2r_client_poll(c, res, 64, 200);
        H_REQUIRE(n >= 0, "poll returned %s", h_err(n));
        for (int k = 0; k < n; k++) {
            struct p2c2r_result *r = &res[k];
            int idx = -1;
            for (int i = 0; i < N; i++) {
                if (tk[i].id == r->ticket.id) {
                    idx = i;
                    break;
                }
            }
            if (H_CHECK(idx >= 0, "result for unknown ticket %llu", (unsigned long long)r->ticket.id) &&
                H_CHECK(!seen[idx]++, "second result for batch task %d", idx)) {
                got++;
                if (idx < last)
                    inorder = 0;
                last = idx;
                char what[64];
                snprintf(what, sizeof(what), "batch task %d (%s, %zu bytes)", idx, tasks[idx].type,
                         tasks[idx].input_len);
                if (strcmp(tasks[idx].type, "echo") == 0) {
                    check_ok(r, in[idx], tasks[idx].input_len, what);
                } else {
                    uint8_t md[32];
                    h_sha256(in[idx], tasks[idx].input_len, md);
                    check_ok(r, md, 32, what);
                }
                ok += r->status == 0;
            }
            p2c2r_result_release(r);
        }
    }
    H_CHECK(got == N, "batch: %d of %d results within %d ms", got, N, h_bound_ms(30000));
    h_log("batch: %d results, %d ok, %zu input bytes, completion order %s", got, ok, total,
          inorder ? "same as submission" : "differs from submission");
    for (int i = 0; i < N; i++)
        free(in[i]);
    free(in);
    free(tasks);
    free(tk);
    free(seen);
}

/* sha256 runs only on sha_peer: freezing it leaves sha256 tasks assigned and
 * unfinished for as long as the test wants. */
static void test_out_of_order(p2c2r_client *c)
{
    h_phase("out-of-order completion and wait(timeout 0)");
    uint8_t in[65536], md[32];
    h_fill(in, sizeof(in), 99);
    h_sha256(in, sizeof(in), md);
    h_signal(sha_peer, SIGSTOP);
    struct p2c2r_task ta = task_of("sha256", NULL, in, sizeof(in));
    p2c2r_ticket a = h_submit(c, &ta);
    p2c2r_ticket b[10];
    char msgs[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(msgs[i], sizeof(msgs[i]), "small-%d", i);
        struct p2c2r_task tb = task_of("echo", NULL, msgs[i], strlen(msgs[i]));
        b[i] = h_submit(c, &tb);
    }
    /* The later echo tasks complete while the earlier sha256 cannot. */
    int seen = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (seen < 10 && h_now_ms() < end) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        int n = p2c2r_client_poll(c, &r, 1, 100);
        H_REQUIRE(n >= 0, "poll: %s", h_err(n));
        if (n == 0)
            continue;
        H_CHECK(r.ticket.id != a.id, "the sha256 task completed while its only peer was stopped");
        int idx = -1;
        for (int i = 0; i < 10; i++)
            idx = r.ticket.id == b[i].id ? i : idx;
        if (H_CHECK(idx >= 0, "unexpected ticket %llu", (unsigned long long)r.ticket.id)) {
            check_ok(&r, msgs[idx], strlen(msgs[idx]), "echo submitted after a stuck task");
            seen++;
        }
        p2c2r_result_release(&r);
    }
    H_CHECK(seen == 10, "%d of 10 echo results arrived while the sha256 peer was stopped", seen);

    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int rc = p2c2r_client_wait(c, a, 0, &r);
    H_CHECK(rc == P2C2R_ETIMEDOUT, "wait(timeout 0) on an unfinished task returned %s", h_err(rc));
    rc = p2c2r_client_wait(c, a, 50, &r);
    H_CHECK(rc == P2C2R_ETIMEDOUT, "wait(timeout 50) on an unfinished task returned %s", h_err(rc));
    int n = p2c2r_client_poll(c, &r, 1, 0);
    H_CHECK(n == 0, "poll(timeout 0) returned %d with only a stuck task outstanding", n);
    H_CHECK(p2c2r_client_pending(c) == 1, "pending %zu, expected 1", p2c2r_client_pending(c));

    h_signal(sha_peer, SIGCONT);
    r = h_wait(c, a, 10000);
    check_ok(&r, md, 32, "sha256 after its peer resumed");
    p2c2r_result_release(&r);
    rc = p2c2r_client_wait(c, a, 0, &r);
    H_CHECK(rc == P2C2R_ENOTFOUND, "wait on a collected ticket returned %s, expected ENOTFOUND",
            h_err(rc));
    H_CHECK(p2c2r_client_pending(c) == 0, "pending %zu, expected 0", p2c2r_client_pending(c));
    n = p2c2r_client_poll(c, &r, 1, 1000);
    H_CHECK(n == 0, "poll with nothing outstanding returned %d", n);
}

/* flush returns once everything queued is written; it must not wait for
 * results.  With the only sha256 peer frozen no frame can come back, so a
 * flush that also waits for input runs out its whole timeout (or hangs
 * forever with -1).  The check is that it returned before its timeout, a
 * bound a thousand times over what writing 100 bytes to loopback takes,
 * even under a sanitizer. */
static void test_flush(p2c2r_client *c)
{
    h_phase("flush with nothing coming back");
    h_signal(sha_peer, SIGSTOP);
    struct p2c2r_task t = task_of("sha256", NULL, "flush", 5);
    p2c2r_ticket tk = h_submit(c, &t);
    int timeout = 2000;
    uint64_t t0 = h_now_ms();
    int rc = p2c2r_client_flush(c, timeout);
    uint64_t ms = h_now_ms() - t0;
    H_CHECK(rc == 0, "flush returned %s", h_err(rc));
    H_CHECK(ms + 100 < (uint64_t)timeout,
            "flush of one small SUBMIT took %llu ms of its %d ms timeout: it waits for input after "
            "the output is written (so flush(c, -1) can block forever)",
            (unsigned long long)ms, timeout);
    h_signal(sha_peer, SIGCONT);
    struct p2c2r_result r = h_wait(c, tk, 10000);
    H_CHECK(r.status == 0 && r.output_len == 32, "sha256 after flush: %s", h_err(r.status));
    p2c2r_result_release(&r);
}

static void test_cancel(p2c2r_client *c)
{
    h_phase("cancel");
    uint8_t in[65536];
    h_fill(in, sizeof(in), 5);
    p2c2r_ticket unknown = {987654321};
    H_CHECK(p2c2r_client_cancel(c, unknown) == P2C2R_ENOTFOUND, "cancel of an unknown ticket");

    h_signal(sha_peer, SIGSTOP);
    struct p2c2r_task t = task_of("sha256", NULL, in, sizeof(in));
    p2c2r_ticket running = h_submit(c, &t); /* assigned to the frozen peer */
    p2c2r_ticket queued = h_submit(c, &t);  /* its one slot is taken: queued */
    int rc = p2c2r_client_cancel(c, queued);
    H_CHECK(rc == 0, "cancel of a queued task returned %s", h_err(rc));
    struct p2c2r_result r = h_wait(c, queued, 10000);
    H_CHECK(r.status == P2C2R_ECANCELLED, "cancelled queued task: status %s, expected ECANCELLED",
            h_err(r.status));
    p2c2r_result_release(&r);
    rc = p2c2r_client_cancel(c, running);
    H_CHECK(rc == 0, "cancel of a running task returned %s", h_err(rc));
    r = h_wait(c, running, 10000);
    H_CHECK(r.status == P2C2R_ECANCELLED, "cancelled running task: status %s, expected ECANCELLED",
            h_err(r.status));
    p2c2r_result_release(&r);
    h_signal(sha_peer, SIGCONT);

    /* The peer's slot comes back once it answers the cancelled assignment. */
    uint8_t md[32];
    h_sha256(in, sizeof(in), md);
    r = run_one(c, "sha256", NULL, in, sizeof(in));
    check_ok(&r, md, 32, "sha256 after cancellations");
    p2c2r_result_release(&r);

    /* Cancelling a finished (not yet collected) task keeps its real result. */
    struct p2c2r_task e = task_of("echo", NULL, "done", 4);
    p2c2r_ticket fin = h_submit(c, &e);
    struct p2c2r_result tmp = P2C2R_RESULT_INIT;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    int arrived = 0;
    while (!arrived && h_now_ms() < end) {
        /* Let the result arrive without collecting it: process sends the
         * SUBMIT and reads whatever came back. */
        int n = p2c2r_client_process(c);
        H_REQUIRE(n >= 0, "process: %s", h_err(n));
        arrived = n > 0;
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN, 0};
        if (!arrived)
            poll(&pfd, 1, 100);
    }
    H_CHECK(arrived, "the echo result did not arrive within %d ms", h_bound_ms(10000));
    rc = p2c2r_client_cancel(c, fin);
    H_CHECK(rc == 0, "cancel of a finished task returned %s", h_err(rc));
    rc = p2c2r_client_wait(c, fin, h_bound_ms(10000), &tmp);
    H_CHECK(rc == 0 && tmp.status == 0 && tmp.output_len == 4,
            "finished-then-cancelled task: rc %s status %s, expected its real result", h_err(rc),
            h_err(rc == 0 ? tmp.status : 0));
    if (rc == 0)
        p2c2r_result_release(&tmp);
    H_CHECK(p2c2r_client_cancel(c, fin) == P2C2R_ENOTFOUND, "cancel of a collected ticket");
}

/* Deadlines count from acceptance, for queued and running tasks alike. */
static void test_deadlines(p2c2r_client *c)
{
    h_phase("deadlines while running and while queued");
    h_signal(sha_peer, SIGSTOP);
    struct p2c2r_task t = task_fresh("sha256", NULL, "late", 4);
    t.deadline_ms = 300;
    p2c2r_ticket running = h_submit(c, &t); /* takes the frozen peer's one slot */
    p2c2r_ticket queued = h_submit(c, &t);
    struct p2c2r_result r = h_wait(c, running, 10000);
    H_CHECK(r.status == P2C2R_ETIMEDOUT, "running task past its deadline: status %s, expected ETIMEDOUT",
            h_err(r.status));
    H_CHECK(r.output_len && strstr((const char *)r.output, "running"),
            "reason should say it was running: '%.*s'", (int)r.output_len, r.output ? (char *)r.output : "");
    p2c2r_result_release(&r);
    r = h_wait(c, queued, 10000);
    H_CHECK(r.status == P2C2R_ETIMEDOUT, "queued task past its deadline: status %s, expected ETIMEDOUT",
            h_err(r.status));
    H_CHECK(r.output_len && strstr((const char *)r.output, "queued"),
            "reason should say it was queued: '%.*s'", (int)r.output_len, r.output ? (char *)r.output : "");
    p2c2r_result_release(&r);
    h_signal(sha_peer, SIGCONT);
    /* The slot comes back once the peer answers the timed-out assignment. */
    struct p2c2r_task again = task_fresh("sha256", NULL, "abc", 3);
    r = h_wait(c, h_submit(c, &again), 10000);
    check_ok(&r, sha_abc, 32, "sha256 after deadlines");
    p2c2r_result_release(&r);
}

/* A renter that goes away with work outstanding: its queued tasks are
 * dropped, its running one is cancelled at the peer, and the peer's slot
 * comes back for everyone else. */
static void test_renter_disconnect(p2c2r_client *c)
{
    enum { N = 10 };
    h_phase("renter disconnects with tasks running and queued");
    h_signal(sha_peer, SIGSTOP);
    p2c2r_client *x;
    int rc = p2c2r_client_connect(h_addr(), NULL, &x);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    for (int i = 0; i < N; i++) {
        struct p2c2r_task t = task_fresh("sha256", NULL, "gone", 4);
        h_submit(x, &t);
    }
    long long live = h_wait_live(x, N, 10000); /* processing x sends the SUBMITs */
    H_CHECK(live == N, "coordinator holds %lld tasks, expected %d", live, N);
    p2c2r_client_close(x);
    /* Only the orphan on the frozen peer may remain. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (live > 1 && h_now_ms() < end) {
        live = h_stat("tasks_live");
        h_sleep_ms(10);
    }
    H_CHECK(live == 1, "after the renter left, tasks_live is %lld, expected 1 (its running task)", live);
    h_signal(sha_peer, SIGCONT);
    struct p2c2r_task again = task_fresh("sha256", NULL, "abc", 3);
    struct p2c2r_result r = h_wait(c, h_submit(c, &again), 10000);
    check_ok(&r, sha_abc, 32, "sha256 after another renter left");
    p2c2r_result_release(&r);
    json_t *js = h_stats(NULL);
    H_CHECK(h_json_int(js, "tasks_live") == 0, "tasks_live after the orphan was answered: %s",
            h_json_text(js));
    H_CHECK(h_json_int(js, "renters") >= 1, "renters count");
    json_decref(js);
}

static void test_unsupported(p2c2r_client *c)
{
    h_phase("unsupported task type");
    struct p2c2r_result r = run_one(c, "nosuch", NULL, "x", 1);
    H_CHECK(r.status == P2C2R_EUNSUPPORTED, "type 'nosuch': status %s, expected EUNSUPPORTED",
            h_err(r.status));
    H_CHECK(r.output_len > 0 && strstr((const char *)r.output, "nosuch"),
            "the rejection should name the type, got '%.*s'", (int)r.output_len,
            r.output ? (const char *)r.output : "");
    p2c2r_result_release(&r);

    h_phase("unsatisfiable min_version");
    /* No peer has echo v99.  Whatever the coordinator does with such a task,
     * it must not hold up the echo tasks behind it; and since no connected
     * peer can ever run it, the expected outcome is EUNSUPPORTED (its own
     * deadline bounds this test if the coordinator just parks it). */
    struct p2c2r_task hi = task_of("echo", NULL, "v99", 3);
    hi.min_version = 99;
    hi.deadline_ms = (uint32_t)h_bound_ms(8000);
    uint64_t t0 = h_now_ms();
    p2c2r_ticket thi = h_submit(c, &hi);
    struct p2c2r_task lo = task_of("echo", NULL, "after", 5);
    p2c2r_ticket tlo = h_submit(c, &lo);
    struct p2c2r_result rl = P2C2R_RESULT_INIT;
    int rc = p2c2r_client_wait(c, tlo, h_bound_ms(5000), &rl);
    H_CHECK(rc == 0, "an echo task submitted after an unsatisfiable min_version=99 echo task got no "
                     "result within %d ms (%s): head-of-line blocking in the type queue",
            h_bound_ms(5000), h_err(rc));
    if (rc == 0) {
        check_ok(&rl, "after", 5, "echo behind a min_version=99 task");
        p2c2r_result_release(&rl);
    }
    struct p2c2r_result rh = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, thi, h_bound_ms(15000), &rh);
    H_CHECK(rc == 0, "min_version=99 task: no outcome at all (%s)", h_err(rc));
    if (rc == 0) {
        H_CHECK(rh.status == P2C2R_EUNSUPPORTED,
                "min_version=99 task (no peer has that version): status %s after %llu ms, expected "
                "EUNSUPPORTED",
                h_err(rh.status), (unsigned long long)(h_now_ms() - t0));
        p2c2r_result_release(&rh);
    }
    if (p2c2r_client_pending(c)) {
        /* Diagnosis: does the blocked task move once the one ahead of it is
         * gone?  Then clear it so it cannot disturb the later checks. */
        rc = p2c2r_client_wait(c, tlo, h_bound_ms(2000), &rl);
        H_CHECK(rc == 0, "the echo task stayed queued even after the min_version=99 task ahead "
                         "of it had ended: nothing dispatches a type queue when its head is removed");
        if (rc != 0) {
            p2c2r_client_cancel(c, tlo);
            rc = p2c2r_client_wait(c, tlo, h_bound_ms(5000), &rl);
        }
        if (rc == 0)
            p2c2r_result_release(&rl);
    }
}

static void test_limits(p2c2r_client *c)
{
    h_phase("size limits");
    size_t n = (16u << 20) + 1;
    uint8_t *big = calloc(1, n);
    struct p2c2r_task t = task_of("echo", NULL, big, n);
    p2c2r_ticket tk;
    int rc = p2c2r_client_submit(c, &t, &tk);
    H_CHECK(rc == P2C2R_ETOOBIG, "submit of a 16 MiB + 1 input returned %s, expected ETOOBIG",
            h_err(rc));
    /* 9 MiB fits in a frame but is over the executors' 8 MiB input limit. */
    struct p2c2r_result r = run_one(c, "echo", NULL, big, 9u << 20);
    H_CHECK(r.status == P2C2R_ETOOBIG, "echo of 9 MiB: status %s, expected ETOOBIG from the peer",
            h_err(r.status));
    p2c2r_result_release(&r);
    free(big);
    struct p2c2r_task bad = task_of("", NULL, "x", 1);
    H_CHECK(p2c2r_client_submit(c, &bad, &tk) == P2C2R_EINVAL, "empty type name should be EINVAL");
    bad.type = "a-type-name-that-is-longer-than-32-bytes";
    H_CHECK(p2c2r_client_submit(c, &bad, &tk) == P2C2R_EINVAL, "33+ byte type name should be EINVAL");
}

/* The frame-loop face: poll the fd ourselves, process, then poll(…, 0). */
static void test_nonblocking(p2c2r_client *c)
{
    enum { TOTAL = 300, WINDOW = 32 };
    h_phase("non-blocking face");
    struct {
        p2c2r_ticket tk;
        size_t n;
        uint8_t *in;
    } slot[WINDOW];
    memset(slot, 0, sizeof(slot));
    uint64_t st = 3;
    int submitted = 0, done = 0, saw_want_write = 0, loops = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(30000);
    while (done < TOTAL && h_now_ms() < end) {
        for (int s = 0; s < WINDOW && submitted < TOTAL; s++) {
            if (slot[s].in)
                continue;
            /* Every 8th task is large, so the output side backs up. */
            size_t n = submitted % 8 == 0 ? (512u << 10) : h_log_uniform(&st, 8192);
            slot[s].in = malloc(n ? n : 1);
            slot[s].n = n;
            h_fill(slot[s].in, n, 5000 + (uint64_t)submitted);
            struct p2c2r_task t = task_of("echo", NULL, slot[s].in, n);
            int rc = p2c2r_client_submit(c, &t, &slot[s].tk);
            H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
            submitted++;
        }
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN, 0};
        if (p2c2r_client_want_write(c)) {
            pfd.events |= POLLOUT;
            saw_want_write = 1;
        }
        int pr = poll(&pfd, 1, 100);
        H_REQUIRE(pr >= 0, "poll failed");
        if (pr > 0) {
            int rc = p2c2r_client_process(c);
            H_REQUIRE(rc >= 0, "process returned %s", h_err(rc));
        }
        struct p2c2r_result res[16] = {P2C2R_RESULT_INIT};
        int n = p2c2r_client_poll(c, res, 16, 0);
        H_REQUIRE(n >= 0, "poll(0) returned %s", h_err(n));
        for (int k = 0; k < n; k++) {
            int s = -1;
            for (int i = 0; i < WINDOW; i++)
                s = slot[i].in && slot[i].tk.id == res[k].ticket.id ? i : s;
            if (H_CHECK(s >= 0, "unexpected ticket %llu", (unsigned long long)res[k].ticket.id)) {
                check_ok(&res[k], slot[s].in, slot[s].n, "non-blocking echo");
                free(slot[s].in);
                slot[s].in = NULL;
                done++;
            }
            p2c2r_result_release(&res[k]);
        }
        loops++;
    }
    H_CHECK(done == TOTAL, "non-blocking loop: %d of %d results within %d ms", done, TOTAL,
            h_bound_ms(30000));
    h_log("non-blocking: %d results in %d loop turns, want_write seen: %s", done, loops,
          saw_want_write ? "yes" : "no");
    for (int i = 0; i < WINDOW; i++)
        free(slot[i].in);
}

static void test_backpressure(void)
{
    h_phase("backpressure at max_inflight");
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    uint32_t max = p2c2r_client_max_inflight(c);
    H_CHECK(max == MAX_INFLIGHT, "max_inflight %u, coordinator runs with --max-inflight %d", max,
            MAX_INFLIGHT);
    p2c2r_ticket *tk = calloc(max + 2, sizeof(*tk));
    struct p2c2r_task t = task_of("echo", NULL, "bp", 2);
    uint32_t i;
    for (i = 0; i < max; i++) {
        rc = p2c2r_client_submit(c, &t, &tk[i]);
        if (rc != 0)
            break;
    }
    H_CHECK(i == max, "submit %u of %u returned %s before the limit", i + 1, max, h_err(rc));
    p2c2r_ticket extra;
    rc = p2c2r_client_submit(c, &t, &extra);
    H_CHECK(rc == P2C2R_EAGAIN, "submit over max_inflight returned %s, expected EAGAIN", h_err(rc));
    struct p2c2r_task two[2] = {t, t};
    p2c2r_ticket tk2[2];
    rc = p2c2r_client_submit_batch(c, two, 2, tk2);
    H_CHECK(rc == P2C2R_EAGAIN, "submit_batch over max_inflight returned %s, expected EAGAIN",
            h_err(rc));
    H_CHECK(p2c2r_client_pending(c) == max, "pending %zu after refused submits, expected %u",
            p2c2r_client_pending(c), max);
    struct p2c2r_result r = h_wait(c, tk[0], 10000);
    check_ok(&r, "bp", 2, "first task under backpressure");
    p2c2r_result_release(&r);
    rc = p2c2r_client_submit(c, &t, &tk[max]);
    H_CHECK(rc == 0, "submit after collecting one result returned %s", h_err(rc));
    uint32_t want = rc == 0 ? max : max - 1, got = 0, bad = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(30000);
    struct p2c2r_result res[128] = {P2C2R_RESULT_INIT};
    while (got < want && h_now_ms() < end) {
        int n = p2c2r_client_poll(c, res, 128, 200);
        H_REQUIRE(n >= 0, "poll: %s", h_err(n));
        for (int k = 0; k < n; k++) {
            got++;
            bad += res[k].status != 0 || res[k].output_len != 2;
            p2c2r_result_release(&res[k]);
        }
    }
    H_CHECK(got == want && bad == 0, "backpressure drain: %u of %u results, %u bad", got, want, bad);
    free(tk);
    p2c2r_client_close(c);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "roundtrip");
    h_phase("start daemons");
    char mi[16];
    snprintf(mi, sizeof(mi), "%d", MAX_INFLIGHT);
    const char *cargs[] = {"--max-inflight", mi, NULL};
    h_coord_start(NULL, cargs);
    h_peer_start("echo-peer", 2, "echo", NULL);
    sha_peer = h_peer_start("sha-peer", 1, "sha256", NULL);
    h_wait_peers(2, NULL);

    p2c2r_client *c;
    struct p2c2r_client_options o = {sizeof o, NULL, "roundtrip", 0, 0};
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "connect to %s: %s", h_addr(), h_err(rc));
    H_CHECK(strcmp(p2c2r_client_last_error(c), "") == 0, "last_error set on a fresh client");

    test_echo_sha(c);
    test_empty(c);
    test_batch(c);
    test_out_of_order(c);
    test_flush(c);
    test_cancel(c);
    test_deadlines(c);
    test_renter_disconnect(c);
    test_unsupported(c);
    test_limits(c);
    test_nonblocking(c);
    test_backpressure();

    h_phase("stats");
    char *text = NULL;
    rc = p2c2r_client_stats(c, h_bound_ms(5000), &text);
    H_CHECK(rc == 0, "stats: %s", h_err(rc));
    json_t *js = h_json_parse(text);
    free(text);
    H_CHECK(h_json_int(js, "counters.completed") > 1000, "stats counters.completed too small: %s",
            h_json_text(js));
    H_CHECK(h_json_int(js, "counters.cancelled") >= 2, "stats counters.cancelled < 2");
    H_CHECK(h_json_int(js, "renters") == 1, "stats renters != 1");
    json_decref(js);
    p2c2r_client_close(c);
    return h_finish();
}
