/* test_bad_input.c - misbehaving clients on raw sockets.
 *
 * One coordinator runs with small limits (--max-frame 65536, --hello-timeout
 * 300, --max-output 1048576) and a tokens file.  While a well-behaved renter
 * keeps running verified echo tasks on it, raw connections send random
 * bytes, truncated frames, oversized headers, unknown or out-of-place
 * messages, bad tokens and versions, stay silent, or submit large tasks and
 * never read.  Each must get the documented ERROR code (read before the
 * close; docs/PROTOCOL.md section 9) or at least be closed, within a bound;
 * the coordinator must keep running, and the well-behaved renter must finish
 * every one of its tasks correctly. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

#define RENTER_TOKEN "good-renter-token"
#define PEER_TOKEN "good-peer-token"
#define MAX_FRAME 65536

/* ---- the well-behaved renter ---------------------------------------------------- */

static struct {
    pthread_t thread;
    atomic_int stop;
    atomic_int ok;
    int bad, conn_error;
    char why[256];
} good;

static void *good_main(void *arg)
{
    (void)arg;
    enum { WINDOW = 16 };
    struct p2c2r_client_options o = {sizeof o, RENTER_TOKEN, "good-renter", h_bound_ms(5000), 0};
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    if (!H_CHECK(rc == 0, "good renter: connect: %s", h_err(rc))) {
        good.conn_error = 1;
        return NULL;
    }
    struct {
        p2c2r_ticket tk;
        uint8_t in[16384];
        size_t n;
        int busy;
    } *slot = calloc(WINDOW, sizeof(*slot));
    uint64_t st = 77, seq = 0;
    int inflight = 0;
    uint64_t last = h_now_ms();
    while (!atomic_load(&good.stop) || inflight > 0) {
        for (int i = 0; i < WINDOW && !atomic_load(&good.stop); i++) {
            if (slot[i].busy)
                continue;
            slot[i].n = h_log_uniform(&st, sizeof(slot[i].in));
            h_fill(slot[i].in, slot[i].n, ++seq);
            struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, slot[i].in, slot[i].n};
            rc = p2c2r_client_submit(c, &t, &slot[i].tk);
            if (!H_CHECK(rc == 0, "good renter: submit: %s", h_err(rc))) {
                good.conn_error = 1;
                goto out;
            }
            slot[i].busy = 1;
            inflight++;
        }
        struct p2c2r_result res[WINDOW] = {P2C2R_RESULT_INIT};
        int n = p2c2r_client_poll(c, res, WINDOW, 200);
        if (!H_CHECK(n >= 0, "good renter: poll: %s (%s)", h_err(n), p2c2r_client_last_error(c))) {
            good.conn_error = 1;
            goto out;
        }
        uint64_t now = h_now_ms();
        if (n > 0)
            last = now;
        if (!H_CHECK(now - last < (uint64_t)h_bound_ms(20000),
                     "good renter: no result for %d ms with %d in flight", h_bound_ms(20000), inflight)) {
            good.conn_error = 1;
            goto out;
        }
        for (int k = 0; k < n; k++) {
            int s = -1;
            for (int i = 0; i < WINDOW; i++)
                s = slot[i].busy && slot[i].tk.id == res[k].ticket.id ? i : s;
            if (s < 0 || res[k].status != 0 || res[k].output_len != slot[s].n ||
                (slot[s].n && memcmp(res[k].output, slot[s].in, slot[s].n) != 0)) {
                if (good.bad++ < 5)
                    H_FAIL("good renter: bad result for ticket %llu: status %s, %zu bytes",
                           (unsigned long long)res[k].ticket.id, h_err(res[k].status), res[k].output_len);
            } else {
                atomic_fetch_add(&good.ok, 1);
            }
            if (s >= 0) {
                slot[s].busy = 0;
                inflight--;
            }
            p2c2r_result_release(&res[k]);
        }
    }
out:
    free(slot);
    p2c2r_client_close(c);
    return NULL;
}

/* ---- helpers ---------------------------------------------------------------------- */

static struct h_raw open_raw(const char *what)
{
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "%s: cannot connect to %s", what, h_addr());
    return r;
}

static void hello_ok(struct h_raw *r, uint8_t role, const char *token, const char *what)
{
    int rc = h_raw_hello(r, role, token, NULL);
    H_REQUIRE(rc == 0, "%s: valid HELLO answered with %d (%s)", what, rc, rc < 0 && rc > -100 ? h_err(rc) : "");
}

/* Reads until the connection closes (bounded) and checks the ERROR code
 * received before the close: want_code, or none when want_code is 0 and
 * none_ok. */
static void expect_cut(struct h_raw *r, const char *what, int want_code, int bound_ms)
{
    int closed = 0;
    char text[256];
    uint64_t t0 = h_now_ms();
    int code = h_raw_expect_error(r, bound_ms, &closed, text, sizeof(text));
    h_log("  %s: ERROR %s \"%s\", %s after %llu ms", what, code ? h_err(code) : "none", text,
          closed ? "closed" : "still open", (unsigned long long)(h_now_ms() - t0));
    H_CHECK(closed, "%s: the coordinator did not close the connection within %d ms", what, bound_ms);
    if (want_code)
        H_CHECK(code == want_code, "%s: ERROR code %s before the close, expected %s", what,
                code ? h_err(code) : "none (no ERROR frame)", h_err(want_code));
    h_raw_close(r);
    H_REQUIRE(h_running(h_coord()), "the coordinator died after: %s", what);
}

static void send_or_fail(struct h_raw *r, const void *p, size_t n, const char *what)
{
    H_CHECK(h_raw_send(r, p, n, h_bound_ms(5000)) == 0, "%s: send failed", what);
}

static void frame(struct h_raw *r, uint8_t type, uint64_t id, const void *body, size_t n, const char *what)
{
    H_CHECK(h_raw_send_frame(r, type, 0, id, body, n, h_bound_ms(5000)) == 0, "%s: send failed", what);
}

/* ---- the cases -------------------------------------------------------------------- */

static void case_random_bytes(void)
{
    const char *what = "random bytes";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    uint8_t junk[4096];
    uint64_t st = 12345;
    h_fill(junk, sizeof(junk), h_rand(&st));
    junk[0] = 0xEE; /* certainly not the magic */
    send_or_fail(&r, junk, sizeof(junk), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "valid magic, protocol version 9";
    h_phase("%s", what);
    r = open_raw(what);
    uint8_t hdr[PROTO_HDR_LEN];
    proto_put_hdr(hdr, MSG_HELLO, 0, 0, 0);
    hdr[4] = 9;
    send_or_fail(&r, hdr, sizeof(hdr), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
}

static void case_truncated(void)
{
    const char *what = "truncated HELLO then close";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    uint8_t body[64];
    struct msg_hello m = {1, 1, ROLE_RENTER, {(const uint8_t *)RENTER_TOKEN, strlen(RENTER_TOKEN)}, {NULL, 0}};
    size_t n = proto_put_hello(body, &m);
    uint8_t buf[PROTO_HDR_LEN + 64];
    proto_put_hdr(buf, MSG_HELLO, 0, 0, (uint32_t)n);
    memcpy(buf + PROTO_HDR_LEN, body, n);
    send_or_fail(&r, buf, PROTO_HDR_LEN + n / 2, what);
    shutdown(r.fd, SHUT_WR);
    expect_cut(&r, what, 0, h_bound_ms(5000));

    what = "truncated SUBMIT after HELLO, then close";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    size_t bl;
    uint8_t input[1000];
    memset(input, 'x', sizeof(input));
    uint8_t *task = h_task_body("echo", 0, 0, NULL, input, sizeof(input), &bl);
    uint8_t *fr = malloc(PROTO_HDR_LEN + bl);
    proto_put_hdr(fr, MSG_SUBMIT, 0, 1, (uint32_t)bl);
    memcpy(fr + PROTO_HDR_LEN, task, bl);
    send_or_fail(&r, fr, PROTO_HDR_LEN + bl - 100, what);
    shutdown(r.fd, SHUT_WR);
    expect_cut(&r, what, 0, h_bound_ms(5000));

    what = "half a header, then silence";
    h_phase("%s", what);
    r = open_raw(what);
    send_or_fail(&r, fr, 10, what);
    expect_cut(&r, what, P2C2R_ETIMEDOUT, h_bound_ms(5000));
    free(task);
    free(fr);
}

static void case_too_big(void)
{
    const char *what = "header announcing a body over --max-frame, after HELLO";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    uint8_t hdr[PROTO_HDR_LEN];
    proto_put_hdr(hdr, MSG_SUBMIT, 0, 1, MAX_FRAME + 1);
    send_or_fail(&r, hdr, sizeof(hdr), what);
    expect_cut(&r, what, P2C2R_ETOOBIG, h_bound_ms(5000));

    what = "header announcing a 4 GiB body, before HELLO";
    h_phase("%s", what);
    r = open_raw(what);
    proto_put_hdr(hdr, MSG_HELLO, 0, 0, UINT32_MAX);
    send_or_fail(&r, hdr, sizeof(hdr), what);
    expect_cut(&r, what, P2C2R_ETOOBIG, h_bound_ms(5000));

    what = "API submit over --max-frame";
    h_phase("%s", what);
    struct p2c2r_client_options o = {sizeof o, RENTER_TOKEN, NULL, 0, 0};
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    uint8_t *in = calloc(1, MAX_FRAME);
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, in, MAX_FRAME};
    p2c2r_ticket tk;
    rc = p2c2r_client_submit(c, &t, &tk);
    H_CHECK(rc == P2C2R_ETOOBIG, "submit of a %d-byte input to a coordinator with --max-frame %d: %s, "
                                 "expected ETOOBIG",
            MAX_FRAME, MAX_FRAME, h_err(rc));
    free(in);
    p2c2r_client_close(c);
}

static void case_unknown_type(void)
{
    const char *what = "unknown message type 0x7e after HELLO";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    frame(&r, 0x7e, 1, "abc", 3, what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "DELIVER (coordinator-only) sent by a renter";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    uint8_t d[PROTO_DELIVER_PREFIX];
    proto_put_deliver_head(d, 0, 1, 0, 0, 0);
    frame(&r, MSG_DELIVER, 1, d, sizeof(d), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "a second HELLO";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    uint8_t body[64];
    struct msg_hello m = {1, 1, ROLE_RENTER, {(const uint8_t *)RENTER_TOKEN, strlen(RENTER_TOKEN)}, {NULL, 0}};
    frame(&r, MSG_HELLO, 0, body, proto_put_hello(body, &m), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
}

static void case_before_hello(void)
{
    const char *what = "SUBMIT before HELLO";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    size_t bl;
    uint8_t *task = h_task_body("echo", 0, 0, NULL, "hi", 2, &bl);
    frame(&r, MSG_SUBMIT, 1, task, bl, what);
    free(task);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "STATS_REQ before HELLO";
    h_phase("%s", what);
    r = open_raw(what);
    frame(&r, MSG_STATS_REQ, 1, NULL, 0, what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
}

static void case_malformed_bodies(void)
{
    const char *what = "HELLO with a 3-byte body";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    frame(&r, MSG_HELLO, 0, "\x01\x00\x01", 3, what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "HELLO with role 7";
    h_phase("%s", what);
    r = open_raw(what);
    int rc = h_raw_hello(&r, 7, RENTER_TOKEN, NULL);
    H_CHECK(rc == P2C2R_EPROTO, "%s: answered with %d, expected ERROR EPROTO", what, rc);
    expect_cut(&r, what, 0, h_bound_ms(5000));

    what = "HELLO offering only protocol versions 2..3";
    h_phase("%s", what);
    r = open_raw(what);
    uint8_t body[64];
    struct msg_hello m = {2, 3, ROLE_RENTER, {(const uint8_t *)RENTER_TOKEN, strlen(RENTER_TOKEN)}, {NULL, 0}};
    frame(&r, MSG_HELLO, 0, body, proto_put_hello(body, &m), what);
    expect_cut(&r, what, P2C2R_EVERSION, h_bound_ms(5000));

    what = "SUBMIT with a garbage task body";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    uint8_t junk[64];
    h_fill(junk, sizeof(junk), 99);
    junk[0] = 40; /* type name length over 32 */
    frame(&r, MSG_SUBMIT, 1, junk, sizeof(junk), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "SUBMIT_BATCH whose count does not match its entries";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    size_t bl;
    uint8_t *task = h_task_body("echo", 0, 0, NULL, "abc", 3, &bl);
    uint8_t *b = malloc(4 + 2 * (12 + bl));
    wr32(b, 3); /* says 3, holds 2 */
    for (int i = 0; i < 2; i++) {
        wr64(b + 4 + (size_t)i * (12 + bl), (uint64_t)i + 1);
        wr32(b + 4 + (size_t)i * (12 + bl) + 8, (uint32_t)bl);
        memcpy(b + 4 + (size_t)i * (12 + bl) + 12, task, bl);
    }
    frame(&r, MSG_SUBMIT_BATCH, 100, b, 4 + 2 * (12 + bl), what);
    /* Either the whole batch is refused with the connection, or (if the
     * coordinator chose to) answered: never half-accepted and then hung. */
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
    free(b);
    free(task);

    what = "CANCEL with a body";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    frame(&r, MSG_CANCEL, 1, "x", 1, what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
}

static void case_bad_peer(void)
{
    const char *what = "peer RESULT for a task never assigned to it";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    hello_ok(&r, ROLE_PEER, PEER_TOKEN, what);
    /* Registers for a type no renter uses, so no real task is held up. */
    struct msg_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.cores = 1;
    reg.slots = 1;
    reg.ntypes = 1;
    reg.types[0].name.p = (const uint8_t *)"it-fake";
    reg.types[0].name.len = 7;
    reg.types[0].version = 1;
    uint8_t rb[256];
    H_REQUIRE(h_raw_send_register(&r, 2, rb, proto_put_register(rb, &reg), NULL) == 0, "%s: send", what);
    struct h_frame f;
    int rc = h_raw_read(&r, &f, h_bound_ms(5000));
    H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_REGISTER_OK, "%s: PEER_REGISTER not answered with "
                                                                 "REGISTER_OK (%d)",
            what, rc);
    uint8_t res[PROTO_RESULT_PREFIX + 4];
    proto_put_result_head(res, 0, 10);
    memcpy(res + PROTO_RESULT_PREFIX, "fake", 4);
    frame(&r, MSG_RESULT, 0x1234567800000042ull, res, sizeof(res), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "peer sending RESULT before PEER_REGISTER";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_PEER, PEER_TOKEN, what);
    frame(&r, MSG_RESULT, 1, res, sizeof(res), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));

    what = "PEER_REGISTER with a type name of upper-case and spaces";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_PEER, PEER_TOKEN, what);
    reg.types[0].name.p = (const uint8_t *)"BAD TYPE";
    reg.types[0].name.len = 8;
    H_REQUIRE(h_raw_send_register(&r, 2, rb, proto_put_register(rb, &reg), NULL) == 0, "%s: send", what);
    expect_cut(&r, what, P2C2R_EINVAL, h_bound_ms(5000));

    what = "a renter sending PEER_REGISTER";
    h_phase("%s", what);
    r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    reg.types[0].name.p = (const uint8_t *)"echo";
    reg.types[0].name.len = 4;
    frame(&r, MSG_PEER_REGISTER, 2, rb, proto_put_register(rb, &reg), what);
    expect_cut(&r, what, P2C2R_EPROTO, h_bound_ms(5000));
}

static void case_silent(void)
{
    const char *what = "a client that connects and never speaks (--hello-timeout 300)";
    h_phase("%s", what);
    enum { N = 50 };
    struct h_raw r[N];
    for (int i = 0; i < N; i++)
        r[i] = open_raw(what);
    /* All of them: a timeout is an ERROR ETIMEDOUT and a close, well within
     * a few seconds of the 300 ms limit. */
    for (int i = 0; i < N; i++) {
        char w[128];
        snprintf(w, sizeof(w), "silent client %d of %d", i + 1, N);
        if (i == 0 || i == N - 1)
            expect_cut(&r[i], w, P2C2R_ETIMEDOUT, h_bound_ms(5000));
        else {
            int closed;
            int code = h_raw_expect_error(&r[i], h_bound_ms(5000), &closed, NULL, 0);
            H_CHECK(closed && code == P2C2R_ETIMEDOUT, "%s: ERROR %s, closed %d", w, h_err(code), closed);
            h_raw_close(&r[i]);
        }
    }
}

static void case_never_reads(void)
{
    const char *what = "a renter that submits large tasks and never reads (--max-output 1 MiB)";
    h_phase("%s", what);
    json_t *js = h_stats(RENTER_TOKEN);
    long long cuts0 = h_json_int(js, "counters.limit_cuts");
    json_decref(js);
    struct h_raw r = open_raw(what);
    hello_ok(&r, ROLE_RENTER, RENTER_TOKEN, what);
    /* 60 KiB echo tasks: each result is a 60 KiB DELIVER; 1000 of them are
     * far more than the 1 MiB cap plus what the kernel buffers. */
    uint8_t *in = malloc(60 * 1024);
    h_fill(in, 60 * 1024, 5);
    size_t bl;
    uint8_t *task = h_task_body("echo", 0, 0, NULL, in, 60 * 1024, &bl);
    int sent = 0;
    long long cuts = cuts0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    while (sent < 1000 && h_now_ms() < end) {
        if (h_raw_send_frame(&r, MSG_SUBMIT, 0, (uint64_t)sent + 1, task, bl, 1000) != 0)
            break; /* the coordinator cut us: expected sooner or later */
        sent++;
        if (sent % 100 == 0) {
            js = h_stats(RENTER_TOKEN);
            cuts = h_json_int(js, "counters.limit_cuts");
            json_decref(js);
            if (cuts > cuts0)
                break;
        }
    }
    while (cuts <= cuts0 && h_now_ms() < end) {
        js = h_stats(RENTER_TOKEN);
        cuts = h_json_int(js, "counters.limit_cuts");
        json_decref(js);
        h_sleep_ms(20);
    }
    h_log("  sent %d tasks of 60 KiB without reading; coordinator limit_cuts %lld -> %lld", sent, cuts0,
          cuts);
    H_CHECK(cuts > cuts0, "%s: the coordinator did not cut the connection (limit_cuts %lld)", what, cuts);
    /* The ERROR usually cannot be read: the cut drops output that was never
     * handed to the kernel, so the stream may end mid-frame.  If one does
     * arrive, it must be ELIMIT. */
    int closed;
    char text[256];
    int code = h_raw_expect_error(&r, h_bound_ms(10000), &closed, text, sizeof(text));
    H_CHECK(closed, "%s: connection not closed after the cut", what);
    H_CHECK(code == 0 || code == P2C2R_ELIMIT, "%s: ERROR code %s, expected ELIMIT", what, h_err(code));
    h_log("  the reader then saw: ERROR %s \"%s\", %s", code ? h_err(code) : "none (stream cut)", text,
          closed ? "closed" : "open");
    h_raw_close(&r);
    free(task);
    free(in);
    H_REQUIRE(h_running(h_coord()), "the coordinator died after: %s", what);
}

static void case_auth(void)
{
    static const struct {
        uint8_t role;
        const char *token;
        const char *what;
    } cases[] = {
        {ROLE_RENTER, "wrong-token", "renter with a wrong token"},
        {ROLE_RENTER, NULL, "renter with no token"},
        {ROLE_RENTER, PEER_TOKEN, "renter presenting a peer-only token"},
        {ROLE_PEER, RENTER_TOKEN, "peer presenting a renter-only token"},
        {ROLE_RENTER, RENTER_TOKEN "x", "renter with a token that extends a valid one"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        h_phase("bad token: %s", cases[i].what);
        struct h_raw r = open_raw(cases[i].what);
        int rc = h_raw_hello(&r, cases[i].role, cases[i].token, NULL);
        H_CHECK(rc == P2C2R_EAUTH, "%s: HELLO answered with %d (%s), expected ERROR EAUTH", cases[i].what,
                rc, rc < 0 && rc > -100 ? h_err(rc) : "");
        expect_cut(&r, cases[i].what, 0, h_bound_ms(5000)); /* (the ERROR was the HELLO reply) */
    }
    h_phase("bad token through the API");
    struct p2c2r_client_options o = {sizeof o, "nope", NULL, 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_CHECK(rc == P2C2R_EAUTH, "connect with a bad token returned %s, expected EAUTH", h_err(rc));
    p2c2r_client_close(c);
}

static void case_fragmented(void)
{
    const char *what = "valid HELLO and SUBMIT sent one byte at a time";
    h_phase("%s", what);
    struct h_raw r = open_raw(what);
    uint8_t body[64];
    struct msg_hello m = {1, 1, ROLE_RENTER, {(const uint8_t *)RENTER_TOKEN, strlen(RENTER_TOKEN)}, {NULL, 0}};
    size_t hl = proto_put_hello(body, &m);
    size_t bl;
    uint8_t *task = h_task_body("echo", 0, 0, NULL, "fragmented", 10, &bl);
    size_t n = PROTO_HDR_LEN + hl + PROTO_HDR_LEN + bl;
    uint8_t *all = malloc(n);
    proto_put_hdr(all, MSG_HELLO, 0, 0, (uint32_t)hl);
    memcpy(all + PROTO_HDR_LEN, body, hl);
    proto_put_hdr(all + PROTO_HDR_LEN + hl, MSG_SUBMIT, 0, 77, (uint32_t)bl);
    memcpy(all + 2 * PROTO_HDR_LEN + hl, task, bl);
    for (size_t i = 0; i < n; i++) {
        send_or_fail(&r, all + i, 1, what);
        if (i % 8 == 0)
            h_sleep_ms(1);
    }
    struct h_frame f;
    int rc = h_raw_read(&r, &f, h_bound_ms(5000));
    H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_HELLO_OK, "%s: expected HELLO_OK (%d)", what, rc);
    rc = h_raw_read(&r, &f, h_bound_ms(5000));
    struct msg_deliver d;
    H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_DELIVER && f.hdr.req_id == 77 &&
                proto_parse_deliver(f.body, f.hdr.body_len, &d) == 0 && d.status == 0 &&
                d.output.len == 10 && memcmp(d.output.p, "fragmented", 10) == 0,
            "%s: expected DELIVER of 'fragmented' for ticket 77 (%d)", what, rc);
    h_raw_close(&r);
    free(all);
    free(task);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "bad_input");
    h_phase("start daemons");
    char tokens[320];
    h_path(tokens, sizeof(tokens), "tokens");
    const char *tok = "# test tokens\nrenter:" RENTER_TOKEN "\npeer:" PEER_TOKEN "\n";
    H_REQUIRE(h_write_file(tokens, tok, strlen(tok)) == 0, "cannot write %s", tokens);
    char mf[16];
    snprintf(mf, sizeof(mf), "%d", MAX_FRAME);
    const char *cargs[] = {"--max-frame", mf, "--hello-timeout", "300", "--max-output", "1048576",
                           "--tokens", tokens, NULL};
    h_coord_start(NULL, cargs);
    const char *pargs[] = {"--token", PEER_TOKEN, NULL};
    h_peer_start("peer-1", 2, "echo", pargs);
    h_peer_start("peer-2", 2, "echo", pargs);
    h_wait_peers(2, RENTER_TOKEN);

    H_REQUIRE(pthread_create(&good.thread, NULL, good_main, NULL) == 0, "pthread_create");
    /* Let it get going before the abuse starts. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (atomic_load(&good.ok) < 100 && h_now_ms() < end)
        h_sleep_ms(5);

    case_random_bytes();
    case_truncated();
    case_too_big();
    case_unknown_type();
    case_before_hello();
    case_malformed_bodies();
    case_bad_peer();
    case_silent();
    case_never_reads();
    case_auth();
    case_fragmented();

    h_phase("stop the well-behaved renter");
    int before = atomic_load(&good.ok);
    end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    while (atomic_load(&good.ok) < before + 100 && h_now_ms() < end)
        h_sleep_ms(5);
    atomic_store(&good.stop, 1);
    pthread_join(good.thread, NULL);
    h_log("well-behaved renter: %d tasks correct, %d wrong, connection error: %s", atomic_load(&good.ok),
          good.bad, good.conn_error ? "yes" : "no");
    H_CHECK(good.bad == 0 && !good.conn_error, "the well-behaved renter was disturbed");
    H_CHECK(atomic_load(&good.ok) >= before + 100, "the well-behaved renter stopped making progress");

    json_t *js = h_stats(RENTER_TOKEN);
    H_CHECK(js != NULL, "stats at the end");
    h_log("counters: protocol_errors=%lld auth_failures=%lld limit_cuts=%lld peers_connected=%lld",
          h_json_int(js, "counters.protocol_errors"), h_json_int(js, "counters.auth_failures"),
          h_json_int(js, "counters.limit_cuts"), h_json_int(js, "peers_connected"));
    H_CHECK(h_json_int(js, "counters.auth_failures") >= 5, "auth_failures counter");
    H_CHECK(h_json_int(js, "counters.protocol_errors") >= 10, "protocol_errors counter");
    H_CHECK(h_json_int(js, "peers_connected") == 2, "both real peers still connected");
    json_decref(js);
    return h_finish();
}
