/* test_client_frame.c - the client for a frame loop, against the real
 * p2c2rd and p2c2r-peer (and a fake peer that holds tasks):
 *   - p2c2r_client_connect_start: EAGAIN before READY, then READY through
 *     process alone; a refused address ends FAILED, reported by process;
 *   - user values come back on every result (single and batch submits);
 *   - put_blob_start: the result carries the blob's SHA-256 and its user;
 *   - per-type pressure counts the coordinator's timeouts (ETIMEDOUT);
 *   - a trace of a few tasks is Chrome trace-event JSON with the expected
 *     events, and so is `p2c2r bench --trace`;
 *   - coordinator death (SIGKILL) with tasks in flight: exactly one
 *     ECLOSED (or EIO) per outstanding task, the fd does not keep polling
 *     readable (iterations counted over a bounded time), a client without
 *     reconnect stays FAILED, and one with reconnect comes back when a new
 *     coordinator listens on the same port and submits again. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NHOLD_A 6
#define NHOLD_B 4

static struct p2c2r_task echo_task(const void *in, size_t len, uint64_t user)
{
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    t.input = in;
    t.input_len = len;
    t.flags = P2C2R_TASK_NOCACHE;
    t.user = user;
    return t;
}

/* Frame-loop style: poll the fd (POLLOUT while want_write), process, until
 * the state is want or timeout_ms passed.  Returns the state reached. */
static int drive_until(p2c2r_client *c, int want, int timeout_ms, int *first_rc)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(timeout_ms);
    *first_rc = 0;
    while (p2c2r_client_state(c) != want && h_now_ms() < end) {
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
        int to = p2c2r_client_timeout_ms(c);
        poll(&pfd, 1, to < 0 || to > 50 ? 50 : to);
        int rc = p2c2r_client_process(c);
        if (rc < 0 && !*first_rc)
            *first_rc = rc;
    }
    return p2c2r_client_state(c);
}

static void test_connect_start(void)
{
    h_phase("connect_start: READY through process alone");
    p2c2r_client *c;
    int rc = p2c2r_client_connect_start(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect_start: %s", h_err(rc));
    H_CHECK(p2c2r_client_state(c) == P2C2R_STATE_CONNECTING, "state %d right after connect_start",
            p2c2r_client_state(c));
    H_CHECK(p2c2r_client_want_write(c) == 1, "want_write while connecting");
    uint8_t in[4] = {1, 2, 3, 4};
    struct p2c2r_task t = echo_task(in, 4, 7);
    p2c2r_ticket tk;
    rc = p2c2r_client_submit(c, &t, &tk);
    H_CHECK(rc == P2C2R_EAGAIN, "submit before READY: %s, expected EAGAIN", h_err(rc));
    int fd0 = p2c2r_client_fd(c), first;
    H_REQUIRE(drive_until(c, P2C2R_STATE_READY, 5000, &first) == P2C2R_STATE_READY,
              "not READY (process said %s, last error '%s')", h_err(first), p2c2r_client_last_error(c));
    H_CHECK(p2c2r_client_fd(c) == fd0, "the fd number changed");
    H_CHECK(p2c2r_client_timeout_ms(c) == -1, "timeout_ms when READY: %d", p2c2r_client_timeout_ms(c));
    struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
    H_CHECK(r.status == 0 && r.user == 7, "echo after connect_start: %s user %llu", h_err(r.status),
            (unsigned long long)r.user);
    p2c2r_result_release(&r);
    p2c2r_client_close(c);

    h_phase("connect_start: a refused address ends FAILED, said once by process, no spin");
    rc = p2c2r_client_connect_start("127.0.0.1:1", NULL, &c);
    H_REQUIRE(rc == 0, "connect_start to port 1: %s", h_err(rc));
    int st = drive_until(c, P2C2R_STATE_FAILED, 5000, &first);
    H_CHECK(st == P2C2R_STATE_FAILED, "state %d, expected FAILED", st);
    H_CHECK(first == P2C2R_EIO, "process said %s, expected EIO", h_err(first));
    H_CHECK(*p2c2r_client_last_error(c), "no error text");
    struct pollfd pfd = {p2c2r_client_fd(c), POLLIN, 0};
    H_CHECK(poll(&pfd, 1, 100) == 0, "the failed client's fd polls ready (revents %#x)", pfd.revents);
    H_CHECK(p2c2r_client_process(c) == P2C2R_EIO, "process after FAILED");
    rc = p2c2r_client_submit(c, &t, &tk);
    H_CHECK(rc == P2C2R_EIO, "submit after FAILED: %s", h_err(rc));
    p2c2r_client_close(c);

    h_phase("connect (blocking) to a refused address");
    rc = p2c2r_client_connect("127.0.0.1:1", NULL, &c);
    H_CHECK(rc == P2C2R_EIO, "blocking connect to port 1: %s, expected EIO", h_err(rc));
}

static void test_user_values(p2c2r_client *c)
{
    h_phase("user values: single and batch submits");
    enum { N = 40, NB = 8 };
    uint8_t in[N + NB][8];
    uint64_t user_of[N + NB + 1];
    p2c2r_ticket tk[N + NB];
    for (int i = 0; i < N; i++) {
        h_fill(in[i], 8, (uint64_t)i);
        struct p2c2r_task t = echo_task(in[i], 8, 0xABCD0000u + (uint64_t)i);
        tk[i] = h_submit(c, &t);
    }
    struct p2c2r_task batch[NB];
    for (int i = 0; i < NB; i++) {
        h_fill(in[N + i], 8, 1000 + (uint64_t)i);
        batch[i] = echo_task(in[N + i], 8, (uint64_t)i << 40 | 5);
    }
    int rc = p2c2r_client_submit_batch(c, batch, NB, tk + N);
    H_REQUIRE(rc == 0, "batch: %s", h_err(rc));
    uint64_t first = tk[0].id;
    for (int i = 0; i < N + NB; i++) {
        H_REQUIRE(tk[i].id - first < N + NB, "tickets not consecutive");
        user_of[tk[i].id - first] = i < N ? 0xABCD0000u + (uint64_t)i : (uint64_t)(i - N) << 40 | 5;
    }
    int got = 0, bad = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    struct p2c2r_result res[16] = {P2C2R_RESULT_INIT};
    while (got < N + NB && h_now_ms() < end) {
        int n = p2c2r_client_poll(c, res, 16, 100);
        H_REQUIRE(n >= 0, "poll: %s", h_err(n));
        for (int i = 0; i < n; i++) {
            uint64_t k = res[i].ticket.id - first;
            if (k >= N + NB || res[i].status != 0 || res[i].user != user_of[k] ||
                res[i].output_len != 8 || memcmp(res[i].output, in[k], 8) != 0)
                bad++;
            got++;
            p2c2r_result_release(&res[i]);
        }
    }
    H_CHECK(got == N + NB && bad == 0, "%d of %d results, %d wrong (user, status or bytes)", got,
            N + NB, bad);
}

static void test_put_blob_start(p2c2r_client *c)
{
    h_phase("put_blob_start: the hash comes back as a result");
    enum { NBLOB = 3 };
    size_t lens[NBLOB] = {0, 1000, 100 * 1000};
    uint8_t *data[NBLOB];
    p2c2r_ticket tk[NBLOB];
    for (int i = 0; i < NBLOB; i++) {
        data[i] = malloc(lens[i] + 1);
        H_REQUIRE(data[i], "malloc");
        h_fill(data[i], lens[i], 77 + (uint64_t)i);
        int rc = p2c2r_client_put_blob_start(c, data[i], lens[i], 900 + (uint64_t)i, &tk[i]);
        H_REQUIRE(rc == 0, "put_blob_start %d: %s", i, h_err(rc));
    }
    H_CHECK(p2c2r_client_pending(c) == NBLOB, "pending %zu", p2c2r_client_pending(c));
    for (int i = NBLOB - 1; i >= 0; i--) {
        struct p2c2r_result r = h_wait(c, tk[i], 10000);
        uint8_t want[32];
        h_sha256(data[i], lens[i], want);
        H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, want, 32) == 0 &&
                    r.user == 900 + (uint64_t)i,
                "blob %d: %s, %zu bytes, user %llu", i, h_err(r.status), r.output_len,
                (unsigned long long)r.user);
        p2c2r_result_release(&r);
        free(data[i]);
    }
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT;
    p2c2r_client_pressure(c, &p);
    H_CHECK(p.inflight == 0, "uploads counted as tasks in flight: %u", p.inflight);
}

static void test_timeouts(p2c2r_client *c)
{
    h_phase("pressure per type: ETIMEDOUT is counted");
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "hold";
    t.deadline_ms = 150;
    t.flags = P2C2R_TASK_NOCACHE;
    p2c2r_ticket tk[3];
    for (int i = 0; i < 3; i++) {
        t.user = 50 + (uint64_t)i;
        tk[i] = h_submit(c, &t);
    }
    for (int i = 0; i < 3; i++) {
        struct p2c2r_result r = h_wait(c, tk[i], 10000);
        H_CHECK(r.status == P2C2R_ETIMEDOUT && r.user == 50 + (uint64_t)i, "hold %d: %s user %llu", i,
                h_err(r.status), (unsigned long long)r.user);
        p2c2r_result_release(&r);
    }
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT, e = P2C2R_PRESSURE_INIT, all = P2C2R_PRESSURE_INIT,
                          none = P2C2R_PRESSURE_INIT;
    H_REQUIRE(p2c2r_client_type_pressure(c, "hold", &p) == 0, "type_pressure");
    p2c2r_client_type_pressure(c, "echo", &e);
    p2c2r_client_type_pressure(c, "never-submitted", &none);
    p2c2r_client_pressure(c, &all);
    H_CHECK(p.timed_out == 3 && p.inflight == 0 && p.last_miss_ms_ago < 60000 && p.miss_ratio > 0.99,
            "hold: timed_out %llu inflight %u miss_ratio %.2f", (unsigned long long)p.timed_out,
            p.inflight, p.miss_ratio);
    H_CHECK(e.timed_out == 0 && e.last_miss_ms_ago == UINT64_MAX, "echo: timed_out %llu",
            (unsigned long long)e.timed_out);
    H_CHECK(all.timed_out >= 3, "connection: timed_out %llu", (unsigned long long)all.timed_out);
    H_CHECK(none.timed_out == 0 && none.last_miss_ms_ago == UINT64_MAX && none.max_inflight > 0,
            "a type never submitted");

    struct p2c2r_frame_advice a = P2C2R_FRAME_ADVICE_INIT;
    int rc = p2c2r_client_frame_advice(c, "hold", h_now_ms(), 16000, &a);
    H_CHECK(rc == 0 && a.fit >= 1 && a.quality == 0,
            "advice for hold (first call starts its epoch): %s fit %u quality %d", h_err(rc), a.fit,
            a.quality);
    rc = p2c2r_client_frame_advice(c, "hold", h_now_ms(), 0, &a);
    H_CHECK(rc == P2C2R_EINVAL, "advice with budget 0: %s", h_err(rc));
}

static json_t *load_trace(const char *path)
{
    size_t len;
    char *text = h_read_file(path, &len);
    H_REQUIRE(text, "no trace file %s", path);
    json_t *doc = h_json_parse(text);
    free(text);
    H_REQUIRE(doc, "the trace is not JSON");
    H_REQUIRE(json_is_array(h_json_at(doc, "traceEvents")), "no traceEvents array");
    return doc;
}

/* Events of ph with name (NULL = any). */
static int count_events(json_t *doc, const char *ph, const char *name)
{
    json_t *evs = h_json_at(doc, "traceEvents"), *ev;
    size_t i;
    int n = 0;
    json_array_foreach(evs, i, ev) {
        const char *p = json_string_value(json_object_get(ev, "ph"));
        const char *nm = json_string_value(json_object_get(ev, "name"));
        if (p && !strcmp(p, ph) && (!name || (nm && !strcmp(nm, name))))
            n++;
    }
    return n;
}

static int count_prefix(json_t *doc, const char *ph, const char *prefix)
{
    json_t *evs = h_json_at(doc, "traceEvents"), *ev;
    size_t i;
    int n = 0;
    json_array_foreach(evs, i, ev) {
        const char *p = json_string_value(json_object_get(ev, "ph"));
        const char *nm = json_string_value(json_object_get(ev, "name"));
        if (p && !strcmp(p, ph) && nm && !strncmp(nm, prefix, strlen(prefix)))
            n++;
    }
    return n;
}

static void test_trace(p2c2r_client *c)
{
    h_phase("trace: a few tasks as Chrome trace-event JSON");
    char path[512];
    h_path(path, sizeof(path), "trace.json");
    H_REQUIRE(p2c2r_client_trace_start(c, path) == 0, "trace_start");
    H_CHECK(p2c2r_client_trace_start(c, path) == P2C2R_EINVAL, "a second trace_start");
    uint8_t in[16];
    h_fill(in, sizeof(in), 3);
    p2c2r_ticket tk[5];
    for (int i = 0; i < 5; i++) {
        struct p2c2r_task t = echo_task(in, sizeof(in), 3000 + (uint64_t)i);
        tk[i] = h_submit(c, &t);
    }
    struct p2c2r_task g = echo_task(in, sizeof(in), 3999);
    g.need_gpu = 1;
    p2c2r_ticket gt = h_submit(c, &g);
    struct p2c2r_task h = P2C2R_TASK_INIT;
    h.type = "hold";
    h.user = 4000;
    p2c2r_ticket ht = h_submit(c, &h);
    for (int i = 0; i < 5; i++) {
        struct p2c2r_result r = h_wait(c, tk[i], 10000);
        p2c2r_result_release(&r);
    }
    struct p2c2r_result r = h_wait(c, gt, 10000);
    H_CHECK(r.status == P2C2R_EUNSUPPORTED, "gpu task: %s", h_err(r.status));
    p2c2r_result_release(&r);
    H_CHECK(p2c2r_client_trace_stop(c) == 0, "trace_stop");
    H_CHECK(p2c2r_client_trace_stop(c) == 0, "a second trace_stop");
    p2c2r_client_cancel(c, ht);
    r = h_wait(c, ht, 10000);
    p2c2r_result_release(&r);

    json_t *doc = load_trace(path);
    H_CHECK(count_events(doc, "b", "echo") == 6 && count_events(doc, "e", "echo") == 6,
            "echo slices: %d begin, %d end", count_events(doc, "b", "echo"), count_events(doc, "e", "echo"));
    H_CHECK(count_events(doc, "n", "delivered") == 5, "delivered: %d", count_events(doc, "n", "delivered"));
    H_CHECK(count_prefix(doc, "b", "exec on peer ") == 5, "exec slices: %d", count_prefix(doc, "b", "exec on peer "));
    H_CHECK(count_events(doc, "b", "queue+network") == 5, "queue slices");
    H_CHECK(count_events(doc, "n", "refused (EUNSUPPORTED)") == 1, "refusal instant");
    H_CHECK(count_events(doc, "n", "in flight at stop") == 1 && count_events(doc, "e", "hold") == 1,
            "the task in flight at stop");
    /* The end of each task carries its user value and outcome. */
    json_t *evs = h_json_at(doc, "traceEvents"), *ev;
    size_t i;
    int users = 0;
    json_array_foreach(evs, i, ev) {
        const char *p = json_string_value(json_object_get(ev, "ph"));
        if (p && !strcmp(p, "e") && json_object_get(ev, "args")) {
            long long u = h_json_int(ev, "args.user");
            if (u >= 3000 && u <= 4000 && h_json_str(ev, "args.outcome") && json_is_number(h_json_at(ev, "ts")))
                users++;
        }
    }
    H_CHECK(users == 7, "task ends with user and outcome: %d of 7: %s", users, h_json_text(doc));
    json_decref(doc);

    if (h_cli_bin()) {
        h_phase("p2c2r bench --trace");
        char bpath[512];
        h_path(bpath, sizeof(bpath), "bench-trace.json");
        int code = h_cli("bench", "-c", h_addr(), "-n", "20", "--warmup", "0", "--trace", bpath, NULL);
        H_EXPECT_EXIT(code, 0, "bench --trace");
        doc = load_trace(bpath);
        H_CHECK(count_events(doc, "b", "echo") == 20 && count_events(doc, "n", "delivered") == 20,
                "bench trace: %d echo slices, %d delivered", count_events(doc, "b", "echo"),
                count_events(doc, "n", "delivered"));
        json_decref(doc);
    }
}

/* Polls both clients' fds for window_ms like a frame loop that sleeps in
 * poll (50 ms at most), processing and collecting results.  Counts the
 * iterations in which each fd polled ready. */
struct watch {
    p2c2r_client *c;
    uint64_t first;  /* tickets first .. first+n-1 were in flight */
    int n;
    int got[16];     /* results per ticket */
    int bad;         /* results that are not ECLOSED / EIO */
    int ready;       /* iterations with the fd ready */
    int proc_errs;   /* process calls that returned an error */
    int first_err;
};

static void watch_round(struct watch *w, struct pollfd *pfd)
{
    if (pfd->revents)
        w->ready++;
    int rc = p2c2r_client_process(w->c);
    if (rc < 0) {
        if (!w->proc_errs)
            w->first_err = rc;
        w->proc_errs++;
    }
    struct p2c2r_result res[16] = {P2C2R_RESULT_INIT};
    int n = p2c2r_client_poll(w->c, res, 16, 0);
    for (int i = 0; i < n; i++) {
        uint64_t k = res[i].ticket.id - w->first;
        if (k < (uint64_t)w->n)
            w->got[k]++;
        else
            w->bad++;
        if (res[i].status != P2C2R_ECLOSED && res[i].status != P2C2R_EIO)
            w->bad++;
        p2c2r_result_release(&res[i]);
    }
}

static void test_coordinator_death(void)
{
    h_phase("coordinator death: clients with and without reconnect, tasks in flight");
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.reconnect_ms = 50;
    o.reconnect_max_ms = 200;
    o.name = "reconnecting";
    p2c2r_client *a, *b;
    int rc = p2c2r_client_connect(addr, &o, &a);
    H_REQUIRE(rc == 0, "connect a: %s", h_err(rc));
    rc = p2c2r_client_connect(addr, NULL, &b);
    H_REQUIRE(rc == 0, "connect b: %s", h_err(rc));
    struct watch wa = {.c = a, .n = NHOLD_A}, wb = {.c = b, .n = NHOLD_B};
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "hold";
    t.flags = P2C2R_TASK_NOCACHE;
    for (int i = 0; i < NHOLD_A; i++) {
        p2c2r_ticket tk = h_submit(a, &t);
        if (i == 0)
            wa.first = tk.id;
    }
    for (int i = 0; i < NHOLD_B; i++) {
        p2c2r_ticket tk = h_submit(b, &t);
        if (i == 0)
            wb.first = tk.id;
    }
    h_wait_live(a, NHOLD_A, 5000);
    h_wait_live(b, NHOLD_A + NHOLD_B, 5000);

    h_phase("coordinator death: SIGKILL; one result per task, no spin");
    struct h_proc *coord = h_coord();
    h_signal(coord, SIGKILL);
    H_REQUIRE(h_wait_exit(coord, 5000), "the coordinator did not die");
    uint64_t end = h_now_ms() + 1000;
    int rounds = 0;
    while (h_now_ms() < end) {
        struct pollfd pfd[2] = {
            {p2c2r_client_fd(a), POLLIN | (p2c2r_client_want_write(a) ? POLLOUT : 0), 0},
            {p2c2r_client_fd(b), POLLIN | (p2c2r_client_want_write(b) ? POLLOUT : 0), 0},
        };
        int to = p2c2r_client_timeout_ms(a);
        poll(pfd, 2, to < 0 || to > 50 ? 50 : to);
        watch_round(&wa, &pfd[0]);
        watch_round(&wb, &pfd[1]);
        rounds++;
    }
    h_log("1 s after the kill: %d rounds; fd ready in a: %d, b: %d; process errors a: %d, b: %d",
          rounds, wa.ready, wb.ready, wa.proc_errs, wb.proc_errs);
    for (int i = 0; i < NHOLD_A; i++)
        H_CHECK(wa.got[i] == 1, "a: task %d got %d results", i, wa.got[i]);
    for (int i = 0; i < NHOLD_B; i++)
        H_CHECK(wb.got[i] == 1, "b: task %d got %d results", i, wb.got[i]);
    H_CHECK(wa.bad == 0 && wb.bad == 0, "results other than ECLOSED/EIO: a %d, b %d", wa.bad, wb.bad);
    /* Without reconnect: ready once (the close), then quiet.  With it: each
     * attempt (refused, at most one per 25 ms of backoff) may wake it. */
    H_CHECK(wb.ready <= 2, "b's fd polled ready in %d of %d rounds", wb.ready, rounds);
    H_CHECK(wa.ready <= 1 + 1000 / 25, "a's fd polled ready in %d of %d rounds", wa.ready, rounds);
    H_CHECK(rounds <= 1000 / 50 * 4 + 10, "%d rounds in 1 s: the loop spins", rounds);
    H_CHECK(wb.first_err == P2C2R_ECLOSED || wb.first_err == P2C2R_EIO, "b: process said %s",
            h_err(wb.first_err));
    H_CHECK(p2c2r_client_state(b) == P2C2R_STATE_FAILED, "b: state %d", p2c2r_client_state(b));
    H_CHECK(p2c2r_client_state(a) == P2C2R_STATE_BACKOFF || p2c2r_client_state(a) == P2C2R_STATE_CONNECTING,
            "a: state %d", p2c2r_client_state(a));
    H_CHECK(wa.first_err == P2C2R_ECLOSED || wa.first_err == P2C2R_EIO, "a: process said %s first",
            h_err(wa.first_err));
    p2c2r_ticket tk;
    rc = p2c2r_client_submit(a, &t, &tk);
    H_CHECK(rc == P2C2R_EAGAIN, "a: submit while reconnecting: %s", h_err(rc));
    rc = p2c2r_client_submit(b, &t, &tk);
    H_CHECK(rc == P2C2R_ECLOSED || rc == P2C2R_EIO, "b: submit when FAILED: %s", h_err(rc));
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT;
    p2c2r_client_type_pressure(a, "hold", &p);
    H_CHECK(p.inflight == 0 && p.timed_out == 0, "lost tasks counted as outcomes: inflight %u",
            p.inflight);

    h_phase("coordinator death: a new coordinator on %s; a reconnects and submits", addr);
    h_coord_start(addr, NULL);
    h_peer_start("peer2", 1, "echo", NULL);
    h_wait_peers(1, NULL);
    int first;
    int st = drive_until(a, P2C2R_STATE_READY, 5000, &first);
    H_REQUIRE(st == P2C2R_STATE_READY, "a did not reconnect: state %d, last error '%s'", st,
              p2c2r_client_last_error(a));
    uint8_t in[3] = {9, 8, 7};
    struct p2c2r_task e = echo_task(in, 3, 4242);
    struct p2c2r_result r = h_wait(a, h_submit(a, &e), 10000);
    H_CHECK(r.status == 0 && r.user == 4242 && r.output_len == 3, "echo after reconnect: %s",
            h_err(r.status));
    p2c2r_result_release(&r);
    H_CHECK(p2c2r_client_state(b) == P2C2R_STATE_FAILED, "b came back without reconnect");
    p2c2r_client_close(a);
    p2c2r_client_close(b);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "client_frame");
    h_coord_start(NULL, NULL);
    struct h_proc *peer = h_peer_start("peer", 2, "echo", NULL);
    struct h_fake_peer_cfg hc = {.name = "holder", .types = "hold", .slots = 32, .delay_ms = H_FAKE_NEVER};
    struct h_fake_peer *holder = h_fake_peer_start(&hc);
    h_wait_peers(2, NULL);

    test_connect_start();
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    test_user_values(c);
    test_put_blob_start(c);
    test_timeouts(c);
    test_trace(c);
    p2c2r_client_close(c);

    h_stop(peer);
    test_coordinator_death();
    h_fake_peer_stop(holder);
    return h_finish();
}
