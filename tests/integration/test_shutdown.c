/* test_shutdown.c - stopping the coordinator with work in flight.
 *
 * First, a check that neither daemon can be killed by SIGPIPE (see
 * phase_sigpipe).
 *
 * Phase 1: two external peers, two API renters and one raw-protocol renter
 * keep tasks in flight; both peers are frozen (SIGSTOP) so outstanding tasks
 * stay outstanding, and p2c2rd gets SIGTERM.  Every ticket must get exactly
 * one outcome (its result, ESHUTDOWN, or a connection error), no renter may
 * hang, and p2c2rd must exit 0 within a bound.  The raw renter, whose every
 * SUBMIT the coordinator had processed before the signal, must see the
 * documented sequence: one DELIVER per ticket (ESHUTDOWN for unfinished
 * ones), then ERROR ESHUTDOWN, then the close (docs/PROTOCOL.md section 7).
 *
 * Phase 2: a new p2c2rd on the same address; the peers, still running, must
 * reconnect by themselves, and tasks run again.
 *
 * Phase 3: p2c2rd with --local-peers (peer threads inside the daemon) gets
 * SIGINT with tasks in flight: same outcome rules, exit 0 within a bound. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define WINDOW 32
#define BIG (2u << 20)

static atomic_int g_outcomes; /* results collected before the signal */
static struct h_proc *peers[2];

struct counts {
    int submitted, ok, shutdown, conn_err, other, dup, unknown;
};

static void count_status(struct counts *k, int status, const char *who, const void *out, size_t len)
{
    if (status == 0)
        k->ok++;
    else if (status == P2C2R_ESHUTDOWN)
        k->shutdown++;
    else if (status == P2C2R_ECLOSED || status == P2C2R_EIO)
        k->conn_err++;
    else if (k->other++ < 5)
        H_FAIL("%s: outcome %s: %.*s", who, h_err(status), (int)(len > 200 ? 200 : len),
               out ? (const char *)out : "");
}

/* ---- API renter: submits until its connection fails --------------------------------- */

struct api_renter {
    int id;
    pthread_t thread;
    atomic_int outcomes;
    struct counts k;
    int submit_error; /* what submit returned once the coordinator was gone */
    int hung;
};

static void *api_main(void *arg)
{
    struct api_renter *r = arg;
    char name[32];
    snprintf(name, sizeof(name), "api-renter-%d", r->id);
    struct p2c2r_client_options o = {sizeof o, NULL, name, h_bound_ms(5000), 0};
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    if (!H_CHECK(rc == 0, "%s: connect: %s", name, h_err(rc)))
        return NULL;
    struct {
        p2c2r_ticket tk;
        int busy;
        size_t n;
        uint8_t *in;
    } slot[WINDOW];
    for (int i = 0; i < WINDOW; i++)
        slot[i].busy = 0, slot[i].in = malloc(BIG);
    uint64_t st = (uint64_t)r->id * 77, seq = 0, last = h_now_ms();
    int inflight = 0, dead = 0;
    while (!dead || inflight > 0) {
        for (int i = 0; i < WINDOW && !dead; i++) {
            if (slot[i].busy)
                continue;
            seq++;
            int sha = seq % 8 == 3;
            slot[i].n = sha ? BIG : h_log_uniform(&st, 256 * 1024);
            h_fill(slot[i].in, slot[i].n, seq);
            struct p2c2r_task t = {sizeof t, sha ? "sha256" : "echo", 0, 0, 1, NULL, 0, slot[i].in, slot[i].n};
            rc = p2c2r_client_submit(c, &t, &slot[i].tk);
            if (rc != 0) {
                /* The connection is gone: submit must say so, not queue. */
                H_CHECK(rc == P2C2R_ESHUTDOWN || rc == P2C2R_ECLOSED || rc == P2C2R_EIO,
                        "%s: submit after the shutdown returned %s", name, h_err(rc));
                r->submit_error = rc;
                dead = 1;
                break;
            }
            slot[i].busy = 1;
            inflight++;
            r->k.submitted++;
        }
        struct p2c2r_result res[WINDOW] = {P2C2R_RESULT_INIT};
        int n = p2c2r_client_poll(c, res, WINDOW, 200);
        if (!H_CHECK(n >= 0, "%s: poll: %s", name, h_err(n)))
            break;
        uint64_t now = h_now_ms();
        if (n > 0)
            last = now;
        if (now - last > (uint64_t)h_bound_ms(15000)) {
            r->hung = 1;
            H_FAIL("%s: no outcome for %d ms with %d tickets outstanding: the renter hangs", name,
                   h_bound_ms(15000), inflight);
            break;
        }
        for (int k = 0; k < n; k++) {
            int s = -1;
            for (int i = 0; i < WINDOW; i++)
                s = slot[i].busy && slot[i].tk.id == res[k].ticket.id ? i : s;
            if (s < 0) {
                r->k.unknown++;
                H_FAIL("%s: outcome for ticket %llu not outstanding", name,
                       (unsigned long long)res[k].ticket.id);
            } else {
                count_status(&r->k, res[k].status, name, res[k].output, res[k].output_len);
                if (res[k].status == 0 && slot[s].n != BIG)
                    H_CHECK(res[k].output_len == slot[s].n &&
                                (slot[s].n == 0 || memcmp(res[k].output, slot[s].in, slot[s].n) == 0),
                            "%s: wrong echo output", name);
                if (res[k].status != 0)
                    dead = 1; /* failures only come with the shutdown */
                slot[s].busy = 0;
                inflight--;
                atomic_fetch_add(&g_outcomes, 1);
                atomic_fetch_add(&r->outcomes, 1);
            }
            p2c2r_result_release(&res[k]);
        }
    }
    H_CHECK(p2c2r_client_pending(c) == 0 || r->hung, "%s: %zu tickets left pending", name,
            p2c2r_client_pending(c));
    for (int i = 0; i < WINDOW; i++)
        free(slot[i].in);
    p2c2r_client_close(c);
    return NULL;
}

/* ---- raw renter: checks the wire-level shutdown sequence -------------------------------- */

static struct {
    pthread_t thread;
    atomic_int stop_submitting; /* set by main */
    atomic_int quiet;           /* set by the renter: all SUBMITs processed */
    struct counts k;
    int no_deliver, error_code, closed, order_ok;
} raw;

static void *raw_main(void *arg)
{
    (void)arg;
    const char *name = "raw-renter";
    enum { MAXT = 100000 };
    struct h_raw conn;
    if (!H_CHECK(h_raw_connect(&conn, h_addr()) == 0, "%s: connect", name))
        return NULL;
    int rc = h_raw_hello(&conn, ROLE_RENTER, NULL, NULL);
    if (!H_CHECK(rc == 0, "%s: HELLO: %d", name, rc))
        return NULL;
    uint8_t *delivered = calloc(MAXT, 1);
    int next = 0, inflight = 0, stats_sent = 0, seen_error = 0;
    uint8_t in[4096];
    raw.order_ok = 1;
    for (;;) {
        if (!atomic_load(&raw.stop_submitting)) {
            while (inflight < WINDOW && next < MAXT - 1) {
                size_t n = (size_t)(next * 37 % (int)sizeof(in));
                h_fill(in, n, (uint64_t)next);
                size_t bl;
                uint8_t *body = h_task_body("echo", 0, 0, NULL, in, n, &bl);
                rc = h_raw_send_frame(&conn, MSG_SUBMIT, 0, (uint64_t)next + 1, body, bl, h_bound_ms(5000));
                free(body);
                if (!H_CHECK(rc == 0, "%s: send SUBMIT", name))
                    goto out;
                next++;
                inflight++;
                raw.k.submitted++;
            }
        } else if (!stats_sent) {
            /* Frames on one connection are handled in order: once the STATS
             * reply is back, every SUBMIT before it has been accepted. */
            H_CHECK(h_raw_send_frame(&conn, MSG_STATS_REQ, 0, 1ull << 62, NULL, 0, h_bound_ms(5000)) == 0,
                    "%s: send STATS_REQ", name);
            stats_sent = 1;
        }
        struct h_frame f;
        rc = h_raw_read(&conn, &f, h_bound_ms(15000));
        if (rc == H_RAW_EOF || rc == H_RAW_RESET) {
            raw.closed = 1;
            break;
        }
        if (!H_CHECK(rc == H_RAW_FRAME, "%s: read: %d (nothing for %d ms: hang?)", name, rc, h_bound_ms(15000)))
            break;
        if (f.hdr.type == MSG_STATS) {
            atomic_store(&raw.quiet, 1);
            continue;
        }
        if (f.hdr.type == MSG_ERROR) {
            struct msg_error e;
            if (proto_parse_error(f.body, f.hdr.body_len, &e) == 0)
                raw.error_code = -(int)e.code;
            seen_error = 1;
            continue;
        }
        if (f.hdr.type != MSG_DELIVER) {
            H_CHECK(f.hdr.type == MSG_ACCEPTED || f.hdr.type == MSG_PONG, "%s: unexpected %s", name,
                    proto_type_name(f.hdr.type));
            continue;
        }
        if (seen_error)
            raw.order_ok = 0;
        uint64_t id = f.hdr.req_id;
        struct msg_deliver d;
        if (!H_CHECK(id >= 1 && id <= (uint64_t)next && proto_parse_deliver(f.body, f.hdr.body_len, &d) == 0,
                     "%s: bad DELIVER for %llu", name, (unsigned long long)id)) {
            raw.k.unknown++;
            continue;
        }
        if (delivered[id]++) {
            raw.k.dup++;
            H_FAIL("%s: second DELIVER for ticket %llu", name, (unsigned long long)id);
            continue;
        }
        count_status(&raw.k, d.status ? -(int)d.status : 0, name, d.output.p, d.output.len);
        inflight--;
        if (!atomic_load(&raw.stop_submitting))
            atomic_fetch_add(&g_outcomes, 1);
    }
    for (int i = 1; i <= next; i++)
        raw.no_deliver += !delivered[i];
out:
    free(delivered);
    h_raw_close(&conn);
    return NULL;
}

/* ---- helpers ------------------------------------------------------------------------------ */

static void report(const char *who, const struct counts *k)
{
    h_log("%s: submitted=%d ok=%d ESHUTDOWN=%d conn_error=%d other=%d duplicates=%d unknown=%d", who,
          k->submitted, k->ok, k->shutdown, k->conn_err, k->other, k->dup, k->unknown);
}

/* Waits for p2c2rd to exit after a signal; requires exit 0 within a bound. */
static void expect_clean_exit(struct h_proc *p, const char *what)
{
    uint64_t t0 = h_now_ms();
    int exited = h_wait_exit(p, h_bound_ms(10000));
    H_CHECK(exited, "%s: p2c2rd still running %d ms after the signal", what, h_bound_ms(10000));
    if (exited)
        H_CHECK(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0, "%s: p2c2rd ended with %s", what,
                h_status_str(p->status));
    h_log("%s: p2c2rd exited after %llu ms", what, (unsigned long long)(h_now_ms() - t0));
}

static void run_tasks(int n, const char *what)
{
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "%s: connect: %s", what, h_err(rc));
    int ok = 0;
    for (int i = 0; i < n; i++) {
        char msg[32];
        snprintf(msg, sizeof(msg), "task-%d", i);
        struct p2c2r_task t = {sizeof t, i % 2 ? "echo" : "sha256", 0, 0, 1, NULL, 0, msg, strlen(msg)};
        p2c2r_ticket tk;
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        if (!H_CHECK(p2c2r_client_submit(c, &t, &tk) == 0, "%s: submit", what))
            break;
        rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), &r);
        if (!H_CHECK(rc == 0, "%s: wait: %s", what, h_err(rc)))
            break;
        ok += r.status == 0 && r.output_len == (i % 2 ? strlen(msg) : 32);
        p2c2r_result_release(&r);
    }
    H_CHECK(ok == n, "%s: %d of %d tasks ok", what, ok, n);
    p2c2r_client_close(c);
}

/* ---- phases ------------------------------------------------------------------------------- */

/* 1 when SIGPIPE cannot kill pid: ignored, caught, or blocked (from
 * /proc/PID/status), -1 when that cannot be read. */
static int sigpipe_survivable(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    char *st = h_read_file(path, NULL);
    if (!st)
        return -1;
    static const char *const keys[] = {"SigIgn:", "SigCgt:", "SigBlk:"};
    int ok = 0;
    for (int i = 0; i < 3; i++) {
        const char *m = strstr(st, keys[i]);
        if (m && (strtoull(m + strlen(keys[i]), NULL, 16) >> (SIGPIPE - 1) & 1))
            ok = 1;
    }
    free(st);
    return ok;
}

/* A daemon writes to sockets whose remote may vanish at any moment; with
 * the default disposition the write that finds the connection reset raises
 * SIGPIPE and kills the whole process, whereas it must only close that one
 * connection.  libuv writes with plain write(2), so the program itself has
 * to ignore SIGPIPE.  (The daemons here start with the default disposition,
 * as from a shell.)  Phase 1 can show the crash for real when a resumed
 * peer answers tasks of a coordinator that has gone; this checks the cause
 * directly, since whether that crash happens depends on event ordering. */
static void phase_sigpipe(void)
{
    h_phase("daemons survive writes to vanished connections (SIGPIPE)");
    int c = sigpipe_survivable(h_coord()->pid), p = sigpipe_survivable(peers[0]->pid);
    H_CHECK(c != 0, "p2c2rd runs with SIGPIPE at its default action: a write to a connection the "
                    "remote has reset kills the coordinator (ignore SIGPIPE in main)");
    H_CHECK(p != 0, "p2c2r-peer runs with SIGPIPE at its default action: a write to a coordinator "
                    "connection that was reset kills the peer (ignore SIGPIPE in main)");
}

static void phase_sigterm(void)
{
    h_phase("phase 1: renters busy, peers frozen, SIGTERM to p2c2rd");
    struct api_renter api[2];
    memset(api, 0, sizeof(api));
    for (int i = 0; i < 2; i++) {
        api[i].id = i + 1;
        H_REQUIRE(pthread_create(&api[i].thread, NULL, api_main, &api[i]) == 0, "pthread_create");
    }
    H_REQUIRE(pthread_create(&raw.thread, NULL, raw_main, NULL) == 0, "pthread_create");
    p2c2r_client *idle;
    int rc = p2c2r_client_connect(h_addr(), NULL, &idle);
    H_REQUIRE(rc == 0, "idle renter: connect: %s", h_err(rc));

    /* Some of everyone's tasks complete before the signal, so the shutdown
     * meets renters with finished, running and queued tasks. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(30000);
    while ((atomic_load(&g_outcomes) < 300 || atomic_load(&api[0].outcomes) < 20 ||
            atomic_load(&api[1].outcomes) < 20) &&
           h_now_ms() < end)
        h_sleep_ms(10);
    H_CHECK(atomic_load(&api[0].outcomes) >= 20 && atomic_load(&api[1].outcomes) >= 20,
            "the API renters got %d and %d outcomes within %d ms", atomic_load(&api[0].outcomes),
            atomic_load(&api[1].outcomes), h_bound_ms(30000));
    atomic_store(&raw.stop_submitting, 1);
    while (!atomic_load(&raw.quiet) && h_now_ms() < end)
        h_sleep_ms(5);
    H_CHECK(atomic_load(&raw.quiet), "the raw renter's STATS_REQ was not answered");
    h_signal(peers[0], SIGSTOP);
    h_signal(peers[1], SIGSTOP);
    h_sleep_ms(100); /* let the renters fill the queues behind the frozen peers */
    long long live = h_stat("tasks_live");
    h_log("SIGTERM with %lld tasks live, %d outcomes so far", live, atomic_load(&g_outcomes));
    H_CHECK(live > 0, "no task was in flight at the shutdown");
    h_signal(h_coord(), SIGTERM);

    for (int i = 0; i < 2; i++)
        pthread_join(api[i].thread, NULL);
    pthread_join(raw.thread, NULL);
    expect_clean_exit(h_coord(), "SIGTERM with tasks in flight");

    int shutdowns = 0;
    for (int i = 0; i < 2; i++) {
        char who[32];
        snprintf(who, sizeof(who), "api-renter-%d", api[i].id);
        report(who, &api[i].k);
        struct counts *k = &api[i].k;
        H_CHECK(!api[i].hung && k->ok + k->shutdown + k->conn_err + k->other == k->submitted && !k->dup &&
                    !k->unknown,
                "%s: %d tickets, %d outcomes: each ticket needs exactly one", who, k->submitted,
                k->ok + k->shutdown + k->conn_err + k->other);
        shutdowns += k->shutdown;
    }
    H_CHECK(shutdowns > 0, "no API renter saw ESHUTDOWN, though their tasks were queued behind frozen peers");

    report("raw-renter", &raw.k);
    h_log("raw-renter: ERROR %s, closed=%d, tickets with no DELIVER=%d, DELIVERs after the ERROR: %s",
          raw.error_code ? h_err(raw.error_code) : "none", raw.closed, raw.no_deliver,
          raw.order_ok ? "none" : "some");
    H_CHECK(raw.closed, "raw renter: the connection was not closed");
    H_CHECK(raw.error_code == P2C2R_ESHUTDOWN, "raw renter: ERROR code %s before the close, expected ESHUTDOWN",
            raw.error_code ? h_err(raw.error_code) : "none");
    H_CHECK(raw.no_deliver == 0 && !raw.k.dup,
            "raw renter: %d of its accepted tickets got no DELIVER before the close (expected DELIVER "
            "ESHUTDOWN for each)",
            raw.no_deliver);
    H_CHECK(raw.order_ok, "raw renter: DELIVER frames arrived after the ERROR");
    H_CHECK(raw.k.other == 0 && raw.k.conn_err == 0, "raw renter: unexpected statuses");

    /* A renter that was idle during the shutdown learns of it on its next call. */
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, "late", 4};
    p2c2r_ticket tk;
    rc = p2c2r_client_submit(idle, &t, &tk);
    if (rc == 0) {
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        rc = p2c2r_client_wait(idle, tk, h_bound_ms(5000), &r);
        H_CHECK(rc == 0 && r.status != 0, "idle renter: a task after the shutdown: wait %s status %s",
                h_err(rc), h_err(rc == 0 ? r.status : 0));
        if (rc == 0)
            p2c2r_result_release(&r);
    } else {
        H_CHECK(rc == P2C2R_ESHUTDOWN || rc == P2C2R_ECLOSED || rc == P2C2R_EIO,
                "idle renter: submit after the shutdown returned %s", h_err(rc));
    }
    h_log("idle renter: last_error \"%s\"", p2c2r_client_last_error(idle));
    p2c2r_client_close(idle);
    h_signal(peers[0], SIGCONT);
    h_signal(peers[1], SIGCONT);
}

static void phase_restart(const char *addr)
{
    h_phase("phase 2: new p2c2rd on %s; the peers must reconnect", addr);
    /* The peers lived through the coordinator's shutdown, or this says how
     * they died (SIGPIPE: see phase_sigpipe). */
    int alive = 1;
    for (int i = 0; i < 2; i++) {
        if (!H_CHECK(h_running(peers[i]), "peer-%d died when the coordinator shut down: %s", i + 1,
                     h_status_str(peers[i]->status)))
            alive = 0;
    }
    if (!alive)
        return;
    h_coord_start(addr, NULL);
    H_CHECK(strcmp(h_addr(), addr) == 0, "restarted coordinator listens on %s, wanted %s", h_addr(), addr);
    h_wait_peers(2, NULL);
    run_tasks(50, "after the peers reconnected");
    h_signal(h_coord(), SIGTERM);
    expect_clean_exit(h_coord(), "SIGTERM with no work");
    for (int i = 0; i < 2; i++) {
        /* Peers waiting to reconnect must still stop cleanly. */
        h_signal(peers[i], SIGTERM);
        H_CHECK(h_wait_exit(peers[i], h_bound_ms(10000)), "peer-%d still running after SIGTERM", i + 1);
        if (peers[i]->reaped)
            H_CHECK(WIFEXITED(peers[i]->status) && WEXITSTATUS(peers[i]->status) == 0,
                    "peer-%d ended with %s", i + 1, h_status_str(peers[i]->status));
    }
}

static void phase_local_peers(void)
{
    h_phase("phase 3: p2c2rd --local-peers 2, SIGINT with tasks in flight");
    const char *cargs[] = {"--local-peers", "2", NULL};
    h_coord_start(NULL, cargs);
    h_wait_peers(2, NULL);
    atomic_store(&g_outcomes, 0);
    struct api_renter api[2];
    memset(api, 0, sizeof(api));
    for (int i = 0; i < 2; i++) {
        api[i].id = 10 + i;
        H_REQUIRE(pthread_create(&api[i].thread, NULL, api_main, &api[i]) == 0, "pthread_create");
    }
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(30000);
    while ((atomic_load(&api[0].outcomes) < 50 || atomic_load(&api[1].outcomes) < 50) && h_now_ms() < end)
        h_sleep_ms(10);
    h_log("SIGINT with %lld tasks live", h_stat("tasks_live"));
    h_signal(h_coord(), SIGINT);
    for (int i = 0; i < 2; i++)
        pthread_join(api[i].thread, NULL);
    expect_clean_exit(h_coord(), "SIGINT with local peers");
    for (int i = 0; i < 2; i++) {
        char who[32];
        snprintf(who, sizeof(who), "api-renter-%d", api[i].id);
        report(who, &api[i].k);
        struct counts *k = &api[i].k;
        H_CHECK(!api[i].hung && k->ok + k->shutdown + k->conn_err + k->other == k->submitted && !k->dup &&
                    !k->unknown,
                "%s: %d tickets, %d outcomes: each ticket needs exactly one", who, k->submitted,
                k->ok + k->shutdown + k->conn_err + k->other);
    }
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "shutdown");
    h_phase("start daemons");
    h_coord_start(NULL, NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    peers[0] = h_peer_start("peer-1", 2, NULL, NULL);
    peers[1] = h_peer_start("peer-2", 2, NULL, NULL);
    h_wait_peers(2, NULL);
    phase_sigpipe();
    phase_sigterm();
    phase_restart(addr);
    phase_local_peers();
    return h_finish();
}
