/* test_conformance.c - the coordinator does what docs/PROTOCOL.md says, on
 * the points where an outside implementer found the two disagreeing.
 *
 * Raw sockets play a renter and a peer written from the text alone:
 * - section 5.5: no DELIVER passes max_body; a result that could only be
 *   delivered in a larger frame ends its task with ETOOBIG instead, and one
 *   of exactly max_body - 16 bytes arrives in a frame of exactly max_body;
 * - section 5.4: a RESULT sent again for one of the connection's last 16
 *   answered tasks is dropped and counted; one for an older task cuts the
 *   connection with EPROTO;
 * - section 12: priority classes are honoured (a realtime task queued after
 *   a background one runs first);
 * - section 3: BLOB_PUT is a renter's message: from a peer or before HELLO
 *   it cuts the connection;
 * - sections 5.3 and 6.1: a type's results are cached while every peer
 *   registered for it declares it deterministic, and not otherwise;
 * - section 5.3: PEER_REGISTER with an empty type name is malformed
 *   (EPROTO), with 33 types ELIMIT, with none or a bad name EINVAL;
 * - section 9: the reason texts of a malformed CREDIT or RESULT and of one
 *   sent before PEER_REGISTER say which it was;
 * - section 5.9: JOB_REQ of a wrong length or an unknown op, JOB_LIST of a
 *   wrong length and a malformed JOB_SUBMIT cut with EPROTO; job messages
 *   are a renter's (a peer is cut); without --state a JOB_REQ is REJECTED
 *   with EUNSUPPORTED and the connection stays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_FRAME 4096

static struct h_raw open_hello(uint8_t role)
{
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "connect to %s", h_addr());
    int rc = h_raw_hello(&r, role, NULL, NULL);
    H_REQUIRE(rc == 0, "HELLO as role %u: %s", role, h_err(rc));
    return r;
}

/* Registers r as a peer of the given types (version 1 each) with slots;
 * type_flags goes into every type entry (PROTO_TYPE_F_*). */
static int raw_register_flags(struct h_raw *r, const char *const *types, int ntypes, uint16_t slots,
                              uint8_t type_flags)
{
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 1;
    m.slots = slots;
    m.mem_bytes = 1u << 30;
    m.ntypes = (uint8_t)ntypes;
    for (int i = 0; i < ntypes; i++) {
        m.types[i].name.p = (const uint8_t *)types[i];
        m.types[i].name.len = strlen(types[i]);
        m.types[i].version = 1;
        m.types[i].flags = type_flags;
    }
    uint8_t body[4096];
    size_t n = proto_put_register(body, &m);
    if (h_raw_send_register(r, 2, body, n, NULL) != 0)
        return -1;
    struct h_frame f;
    int rc = h_raw_read(r, &f, h_bound_ms(5000));
    return rc == H_RAW_FRAME && f.hdr.type == MSG_REGISTER_OK ? 0 : -1;
}

static int raw_register(struct h_raw *r, const char *const *types, int ntypes, uint16_t slots)
{
    return raw_register_flags(r, types, ntypes, slots, 0);
}

static struct h_raw open_peer(const char *type, uint16_t slots)
{
    struct h_raw r = open_hello(ROLE_PEER);
    const char *types[] = {type};
    H_REQUIRE(raw_register(&r, types, 1, slots) == 0, "register a raw peer of type %s", type);
    return r;
}

/* Reads the next ASSIGN (skipping PINGs and BLOB_DATA); returns its task id. */
static uint64_t next_assign(struct h_raw *p, struct msg_task *task)
{
    for (;;) {
        struct h_frame f;
        int rc = h_raw_read(p, &f, h_bound_ms(5000));
        H_REQUIRE(rc == H_RAW_FRAME, "peer: no ASSIGN (%d)", rc);
        if (f.hdr.type != MSG_ASSIGN)
            continue;
        if (task)
            H_REQUIRE(proto_parse_task(f.body, f.hdr.body_len, task) == 0, "peer: malformed ASSIGN");
        return f.hdr.req_id;
    }
}

static int send_result(struct h_raw *p, uint64_t id, uint16_t status, const void *out, size_t len)
{
    uint8_t *b = malloc(PROTO_RESULT_PREFIX + len + 1);
    memset(b, 0, PROTO_RESULT_PREFIX);
    b[0] = (uint8_t)status;
    b[1] = (uint8_t)(status >> 8);
    if (len)
        memcpy(b + PROTO_RESULT_PREFIX, out, len);
    int rc = h_raw_send_frame(p, MSG_RESULT, 0, id, b, PROTO_RESULT_PREFIX + len, 2000);
    free(b);
    return rc;
}

static void submit(struct h_raw *r, uint64_t ticket, const char *type, uint8_t prio, const char *input)
{
    size_t bl;
    uint8_t *body = h_task_body_ext(type, prio, PROTO_TASK_F_NOCACHE, NULL, 0, input, strlen(input), &bl);
    H_REQUIRE(h_raw_send_frame(r, MSG_SUBMIT, 0, ticket, body, bl, 2000) == 0, "submit");
    free(body);
}

/* The connection is still served: a PING gets its PONG. */
static int still_served(struct h_raw *r)
{
    if (h_raw_send_frame(r, MSG_PING, 0, 99, "ok", 2, 2000) != 0)
        return 0;
    for (;;) {
        struct h_frame f;
        if (h_raw_read(r, &f, h_bound_ms(3000)) != H_RAW_FRAME)
            return 0;
        if (f.hdr.type == MSG_PONG && f.hdr.req_id == 99)
            return 1;
    }
}

static void case_deliver_limit(void)
{
    h_phase("section 5.5: no DELIVER over max_body");
    struct h_raw peer = open_peer("conf_big", 1);
    struct h_raw rent = open_hello(ROLE_RENTER);
    size_t fit = MAX_FRAME - PROTO_DELIVER_PREFIX;
    uint8_t *out = malloc(fit + 1);
    h_fill(out, fit + 1, 3);

    submit(&rent, 1, "conf_big", 0, "x");
    uint64_t id = next_assign(&peer, NULL);
    H_REQUIRE(send_result(&peer, id, 0, out, fit) == 0, "peer: send RESULT");
    struct h_frame f;
    int rc = h_raw_read(&rent, &f, h_bound_ms(5000));
    H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_DELIVER && f.hdr.body_len == MAX_FRAME,
            "a result of max_body - 16 bytes: expected a DELIVER of exactly max_body (%d), got %d type %u len %u",
            MAX_FRAME, rc, rc == H_RAW_FRAME ? f.hdr.type : 0, rc == H_RAW_FRAME ? f.hdr.body_len : 0);
    if (rc == H_RAW_FRAME && f.hdr.body_len == MAX_FRAME)
        H_CHECK(memcmp(f.body + PROTO_DELIVER_PREFIX, out, fit) == 0, "DELIVER output differs");

    submit(&rent, 2, "conf_big", 0, "y");
    id = next_assign(&peer, NULL);
    H_REQUIRE(send_result(&peer, id, 0, out, fit + 1) == 0, "peer: send RESULT");
    struct h_outcome o;
    rc = h_raw_outcome(&rent, &o, h_bound_ms(5000));
    H_CHECK(rc == H_RAW_FRAME && o.type == MSG_DELIVER && o.status == P2C2R_ETOOBIG,
            "a result of max_body - 15 bytes: expected DELIVER ETOOBIG, got %d status %s", rc,
            h_err(o.status));
    if (rc == H_RAW_FRAME)
        h_log("  reason: %.*s", (int)o.len, (const char *)o.out);
    H_CHECK(still_served(&peer), "the peer was cut for an undeliverable result");
    free(out);
    h_raw_close(&rent);
    h_raw_close(&peer);
}

static void case_duplicates(void)
{
    h_phase("section 5.4: RESULT sent twice");
    struct h_raw peer = open_peer("conf_dup", 1);
    struct h_raw rent = open_hello(ROLE_RENTER);
    long long dup0 = h_stat("counters.duplicate_results");
    uint64_t first = 0;
    for (int i = 0; i < 18; i++) {
        submit(&rent, 100 + (uint64_t)i, "conf_dup", 0, "d");
        uint64_t id = next_assign(&peer, NULL);
        if (i == 0)
            first = id;
        H_REQUIRE(send_result(&peer, id, 0, "r", 1) == 0, "peer: RESULT");
        struct h_outcome o;
        H_REQUIRE(h_raw_outcome(&rent, &o, h_bound_ms(5000)) == H_RAW_FRAME && o.status == 0,
                  "task %d outcome", i);
        if (i == 0) {
            /* Within the window: dropped, counted, the peer stays. */
            H_REQUIRE(send_result(&peer, id, 0, "r", 1) == 0, "peer: duplicate RESULT");
            H_CHECK(still_served(&peer), "a duplicate within the window cut the peer");
            long long dup = h_stat("counters.duplicate_results");
            H_CHECK(dup == dup0 + 1, "duplicate_results %lld, expected %lld", dup, dup0 + 1);
        }
    }
    /* 17 answers later the first task is outside the window of 16. */
    H_REQUIRE(send_result(&peer, first, 0, "r", 1) == 0, "peer: old RESULT");
    int closed;
    char text[256] = "";
    int code = h_raw_expect_error(&peer, h_bound_ms(5000), &closed, text, sizeof(text));
    H_CHECK(code == P2C2R_EPROTO && closed, "a RESULT outside the window: expected EPROTO and a close, got %s",
            h_err(code));
    H_CHECK(strstr(text, "not assigned") != NULL, "reason: %s", text);
    h_raw_close(&rent);
    h_raw_close(&peer);
}

static long long type_cacheable(const char *type)
{
    json_t *js = h_stats(NULL);
    char path[96];
    snprintf(path, sizeof(path), "types[name=%s].cacheable", type);
    long long v = h_json_bool(js, path);
    json_decref(js);
    return v;
}

static void case_deterministic(void)
{
    h_phase("sections 5.3 and 6.1: a type is cached while every peer of it declares it deterministic");
    struct h_raw det = open_hello(ROLE_PEER);
    const char *types[] = {"conf_det"};
    H_REQUIRE(raw_register_flags(&det, types, 1, 1, PROTO_TYPE_F_DETERMINISTIC) == 0, "register");
    H_CHECK(type_cacheable("conf_det") == 1, "a type whose only peer declares it deterministic is not cacheable");
    struct h_raw rent = open_hello(ROLE_RENTER);
    size_t bl;
    uint8_t *body = h_task_body("conf_det", 0, 0, NULL, "same", 4, &bl);
    H_REQUIRE(h_raw_send_frame(&rent, MSG_SUBMIT, 0, 1, body, bl, 2000) == 0, "submit");
    uint64_t id = next_assign(&det, NULL);
    H_REQUIRE(send_result(&det, id, 0, "out", 3) == 0, "RESULT");
    struct h_outcome o;
    H_REQUIRE(h_raw_outcome(&rent, &o, h_bound_ms(5000)) == H_RAW_FRAME && o.status == 0, "first outcome");
    H_REQUIRE(h_raw_send_frame(&rent, MSG_SUBMIT, 0, 2, body, bl, 2000) == 0, "submit again");
    H_CHECK(h_raw_outcome(&rent, &o, h_bound_ms(5000)) == H_RAW_FRAME && o.status == 0 &&
                (o.flags & PROTO_DELIVER_F_CACHED),
            "a repeat was not answered from the cache (flags 0x%x)", o.flags);

    /* A second peer of the type that does not declare it: no more caching. */
    struct h_raw nondet = open_hello(ROLE_PEER);
    H_REQUIRE(raw_register_flags(&nondet, types, 1, 1, 0) == 0, "register");
    H_CHECK(type_cacheable("conf_det") == 0, "cacheable although one peer does not declare it deterministic");
    body[bl - 1] ^= 1; /* a new input, so no earlier entry answers it */
    for (uint64_t k = 3; k <= 4; k++) {
        H_REQUIRE(h_raw_send_frame(&rent, MSG_SUBMIT, 0, k, body, bl, 2000) == 0, "submit");
        struct h_raw *who = NULL;
        for (int tries = 0; tries < 2 && !who; tries++) {
            struct h_frame f;
            if (h_raw_read(&det, &f, 300) == H_RAW_FRAME && f.hdr.type == MSG_ASSIGN)
                who = &det, id = f.hdr.req_id;
            else if (h_raw_read(&nondet, &f, 300) == H_RAW_FRAME && f.hdr.type == MSG_ASSIGN)
                who = &nondet, id = f.hdr.req_id;
        }
        H_REQUIRE(who, "task %llu was not assigned to a peer (answered from a cache?)", (unsigned long long)k);
        H_REQUIRE(send_result(who, id, 0, "out", 3) == 0, "RESULT");
        H_CHECK(h_raw_outcome(&rent, &o, h_bound_ms(5000)) == H_RAW_FRAME && o.status == 0 &&
                    !(o.flags & PROTO_DELIVER_F_CACHED),
                "run %llu: expected a fresh run (flags 0x%x)", (unsigned long long)k, o.flags);
    }
    free(body);
    h_raw_close(&nondet);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(3000);
    while (type_cacheable("conf_det") != 1 && h_now_ms() < end)
        h_sleep_ms(10);
    H_CHECK(type_cacheable("conf_det") == 1, "cacheable again once the non-deterministic peer left");
    h_raw_close(&rent);
    h_raw_close(&det);
}

static void case_priority(void)
{
    h_phase("section 12: priority classes are honoured");
    struct h_raw peer = open_peer("conf_prio", 1);
    struct h_raw rent = open_hello(ROLE_RENTER);
    /* The peer's one slot is busy; then a background and a realtime task
     * queue up, in that order. */
    submit(&rent, 1, "conf_prio", 2, "hold");
    uint64_t hold = next_assign(&peer, NULL);
    submit(&rent, 2, "conf_prio", 2, "background");
    submit(&rent, 3, "conf_prio", 0, "realtime");
    H_CHECK(still_served(&rent), "renter");
    H_REQUIRE(send_result(&peer, hold, 0, "x", 1) == 0, "peer: RESULT");
    struct msg_task t;
    uint64_t id = next_assign(&peer, &t);
    H_CHECK(t.input.len == 8 && memcmp(t.input.p, "realtime", 8) == 0,
            "after the slot freed the peer got '%.*s', expected the realtime task", (int)t.input.len,
            (const char *)t.input.p);
    H_REQUIRE(send_result(&peer, id, 0, "x", 1) == 0, "peer: RESULT");
    id = next_assign(&peer, &t);
    H_CHECK(t.input.len == 10 && memcmp(t.input.p, "background", 10) == 0, "then '%.*s'", (int)t.input.len,
            (const char *)t.input.p);
    H_REQUIRE(send_result(&peer, id, 0, "x", 1) == 0, "peer: RESULT");
    h_raw_close(&rent);
    h_raw_close(&peer);
}

/* Sends one frame on a fresh connection (after HELLO as role, or none) and
 * expects the cut with code and a reason containing want. */
static void expect_cut(const char *what, int role, int registered, uint8_t type, const void *body, size_t len,
                       int code, const char *want)
{
    struct h_raw r;
    if (role == 0) {
        H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "connect");
    } else if (registered) {
        r = open_peer("conf_cut", 1);
    } else {
        r = open_hello((uint8_t)role);
    }
    /* A PEER_REGISTER is signed, so that the check it is written to meet
     * is the one that cuts it, not the identity check before it. */
    if (type == MSG_PEER_REGISTER && r.have_nonce)
        H_REQUIRE(h_raw_send_register(&r, 5, body, len, NULL) == 0, "%s: send", what);
    else
        H_REQUIRE(h_raw_send_frame(&r, type, 0, 5, body, len, 2000) == 0, "%s: send", what);
    int closed;
    char text[256] = "";
    int got = h_raw_expect_error(&r, h_bound_ms(5000), &closed, text, sizeof(text));
    H_CHECK(got == code && closed, "%s: expected %s and a close, got %s", what, h_err(code), h_err(got));
    H_CHECK(strstr(text, want) != NULL, "%s: reason \"%s\" does not say \"%s\"", what, text, want);
    h_log("  %s: %s \"%s\"", what, h_err(got), text);
    h_raw_close(&r);
}

static void case_cuts(void)
{
    h_phase("sections 3, 5.3 and 9: what cuts a connection, with which code and reason");
    uint8_t blob[16] = {1, 2, 3};
    expect_cut("BLOB_PUT before HELLO", 0, 0, MSG_BLOB_PUT, blob, sizeof(blob), P2C2R_EPROTO, "BLOB_PUT");
    expect_cut("BLOB_PUT from a registered peer", ROLE_PEER, 1, MSG_BLOB_PUT, blob, sizeof(blob),
               P2C2R_EPROTO, "not allowed for peer");
    uint8_t credit[3] = {1, 0, 0}, credit_ok[4] = {1, 0, 0, 0}, result[4] = {0};
    expect_cut("CREDIT of 3 bytes", ROLE_PEER, 1, MSG_CREDIT, credit, sizeof(credit), P2C2R_EPROTO,
               "malformed CREDIT");
    expect_cut("CREDIT over 65535", ROLE_PEER, 1, MSG_CREDIT, (uint8_t[]){0, 0, 1, 0}, 4, P2C2R_EPROTO,
               "malformed CREDIT");
    expect_cut("CREDIT before PEER_REGISTER", ROLE_PEER, 0, MSG_CREDIT, credit_ok, sizeof(credit_ok),
               P2C2R_EPROTO, "CREDIT before PEER_REGISTER");
    expect_cut("RESULT of 4 bytes", ROLE_PEER, 1, MSG_RESULT, result, sizeof(result), P2C2R_EPROTO,
               "malformed RESULT");
    expect_cut("RESULT before PEER_REGISTER", ROLE_PEER, 0, MSG_RESULT, (uint8_t[8]){0}, 8, P2C2R_EPROTO,
               "RESULT before PEER_REGISTER");
    uint8_t jreq[PROTO_JOB_REQ_LEN + 1] = {PROTO_JOB_STATUS, 0, 1};
    expect_cut("JOB_REQ of 11 bytes", ROLE_RENTER, 0, MSG_JOB_REQ, jreq, sizeof(jreq), P2C2R_EPROTO,
               "JOB_REQ body must be 10 bytes");
    jreq[0] = 9;
    expect_cut("JOB_REQ op 9", ROLE_RENTER, 0, MSG_JOB_REQ, jreq, PROTO_JOB_REQ_LEN, P2C2R_EPROTO,
               "unknown JOB_REQ operation 9");
    expect_cut("JOB_LIST of 4 bytes", ROLE_RENTER, 0, MSG_JOB_LIST, jreq, 4, P2C2R_EPROTO, "JOB_LIST body");
    uint8_t jsub[16] = {1, 0, 0, 0, 1}; /* one entry whose length runs past the body */
    jsub[12] = 200;
    expect_cut("JOB_SUBMIT with a short entry", ROLE_RENTER, 0, MSG_JOB_SUBMIT, jsub, sizeof(jsub), P2C2R_EPROTO,
               "malformed JOB_SUBMIT");
    jreq[0] = PROTO_JOB_STATUS;
    expect_cut("JOB_REQ from a registered peer", ROLE_PEER, 1, MSG_JOB_REQ, jreq, PROTO_JOB_REQ_LEN, P2C2R_EPROTO,
               "not allowed for peer");
    {
        /* Without --state: refused, and the connection goes on. */
        struct h_raw r = open_hello(ROLE_RENTER);
        H_REQUIRE(h_raw_send_frame(&r, MSG_JOB_REQ, 0, 77, jreq, PROTO_JOB_REQ_LEN, 2000) == 0, "JOB_REQ: send");
        struct h_outcome o;
        int rc = h_raw_outcome(&r, &o, h_bound_ms(5000));
        H_CHECK(rc == H_RAW_FRAME && o.type == MSG_REJECTED && o.ticket == 77 && o.status == P2C2R_EUNSUPPORTED &&
                    o.len > 0 && memmem(o.out, o.len, "--state", 7) != NULL,
                "JOB_REQ without --state: REJECTED EUNSUPPORTED naming --state (got %d, type 0x%02x, %s)", rc,
                o.type, h_err(o.status));
        H_REQUIRE(h_raw_send_frame(&r, MSG_STATS_REQ, 0, 78, NULL, 0, 2000) == 0, "STATS_REQ after it");
        h_raw_close(&r);
    }

    /* PEER_REGISTER bodies built by hand: header fields, then type entries
     * (name_len, name, u32 version, u8 flags). */
    uint8_t reg[2048];
    memset(reg, 0, sizeof(reg));
    reg[2] = 1; /* slots 1 */
    size_t n = 16;
    reg[13] = 1; /* one type with an empty name */
    reg[n++] = 0;
    n += 4 + 1; /* version, flags */
    expect_cut("PEER_REGISTER with an empty type name", ROLE_PEER, 0, MSG_PEER_REGISTER, reg, n, P2C2R_EPROTO,
               "malformed PEER_REGISTER");
    n = 16;
    reg[13] = 33;
    for (int i = 0; i < 33; i++) {
        reg[n] = 3; /* distinct names "aax", "bax", ... */
        reg[n + 1] = (uint8_t)('a' + i % 26);
        reg[n + 2] = (uint8_t)('a' + i / 26);
        reg[n + 3] = 'x';
        n += 1 + 3 + 4 + 1; /* name_len, name, version, flags */
    }
    expect_cut("PEER_REGISTER with 33 types", ROLE_PEER, 0, MSG_PEER_REGISTER, reg, n, P2C2R_ELIMIT,
               "33 task types");
    n = 16;
    reg[13] = 0;
    expect_cut("PEER_REGISTER with no types", ROLE_PEER, 0, MSG_PEER_REGISTER, reg, n, P2C2R_EINVAL,
               "no task types");
    reg[13] = 1;
    reg[n++] = 3;
    memcpy(reg + n, "A B", 3);
    n += 3 + 4 + 1;
    expect_cut("PEER_REGISTER with a bad type name", ROLE_PEER, 0, MSG_PEER_REGISTER, reg, n, P2C2R_EINVAL,
               "task type names");
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "conformance");
    char mf[16];
    snprintf(mf, sizeof(mf), "%d", MAX_FRAME);
    /* --verify none: the cases check the protocol as one run per task
     * shows it (caching, duplicates, priority); verification is
     * test_verify.c's. */
    const char *args[] = {"--max-frame", mf, "--verify", "none", NULL};
    h_coord_start(NULL, args);
    case_deliver_limit();
    case_duplicates();
    case_priority();
    case_deterministic();
    case_cuts();
    H_REQUIRE(h_running(h_coord()), "the coordinator died");
    return h_finish();
}
