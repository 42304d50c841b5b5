/* test_proto.c - unit tests for the wire codec (src/common/proto.c).
 *
 * Every message type is encoded with the proto_put_* functions, framed with
 * proto_put_hdr, and decoded with proto_decode_hdr at every split point of
 * the frame, alone and followed by another frame; the body is then parsed
 * with the matching parser and every field compared.  Every truncation of
 * every body, and the body plus one trailing byte, must be refused where the
 * format says the fields fill the body exactly.
 *
 * Each decode and parse runs on a copy of its input in a malloc'd buffer of
 * exactly the input's size, so under AddressSanitizer any read past the
 * given length is reported rather than silently landing in a larger
 * buffer. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/buf.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/error.h"

#define SCRATCH_LEN (256u << 10)

static uint8_t body_buf[SCRATCH_LEN];
static uint8_t frame_buf[SCRATCH_LEN + PROTO_HDR_LEN];

/* ---- helpers ------------------------------------------------------------ */

static uint8_t *dup_exact(const void *p, size_t n)
{
    uint8_t *c = malloc(n);
    if (!c && n == 0)
        c = malloc(1);
    if (!c) {
        perror("malloc");
        abort();
    }
    if (n)
        memcpy(c, p, n);
    return c;
}

static size_t put_frame(uint8_t *dst, uint8_t type, uint16_t flags, uint64_t req_id,
                        const uint8_t *body, size_t n)
{
    proto_put_hdr(dst, type, flags, req_id, (uint32_t)n);
    if (n)
        memcpy(dst + PROTO_HDR_LEN, body, n);
    return PROTO_HDR_LEN + n;
}

static int64_t decode_exact(const uint8_t *p, size_t n, uint32_t max_body, struct frame_hdr *h)
{
    uint8_t *c = dup_exact(p, n);
    int64_t r = proto_decode_hdr(c, n, max_body, h);
    free(c);
    return r;
}

/* Feeds the first k bytes of a well-formed frame for every k: the decoder
 * must ask for more until the frame is whole, must leave *out alone until
 * the header is whole, and must then report the header it was given. */
static void check_splits(const uint8_t *frame, size_t len, uint8_t type, uint16_t flags,
                         uint64_t req_id)
{
    for (size_t k = 0; k <= len; k++) {
        struct frame_hdr h, untouched;
        memset(&h, 0xa5, sizeof(h));
        untouched = h;
        int64_t r = decode_exact(frame, k, PROTO_MAX_BODY_DEFAULT, &h);
        CHECK_EQ(r, k < len ? 0 : (int64_t)len);
        if (k < PROTO_HDR_LEN) {
            CHECK(memcmp(&h, &untouched, sizeof(h)) == 0);
            continue;
        }
        CHECK_EQU(h.version, PROTO_VERSION);
        CHECK_EQU(h.type, type);
        CHECK_EQU(h.flags, flags);
        CHECK_EQU(h.req_id, req_id);
        CHECK_EQU(h.body_len, len - PROTO_HDR_LEN);
    }
}

/* Two frames back to back: the first is reported as soon as it is whole and
 * never includes a byte of the second; the second then decodes on its own. */
static void check_back_to_back(const uint8_t *f1, size_t l1, const uint8_t *f2, size_t l2)
{
    uint8_t *both = malloc(l1 + l2);
    if (!both)
        abort();
    memcpy(both, f1, l1);
    memcpy(both + l1, f2, l2);
    for (size_t k = 0; k <= l1 + l2; k++) {
        struct frame_hdr h;
        CHECK_EQ(decode_exact(both, k, PROTO_MAX_BODY_DEFAULT, &h), k < l1 ? 0 : (int64_t)l1);
    }
    struct frame_hdr h;
    CHECK_EQ(decode_exact(both + l1, l2, PROTO_MAX_BODY_DEFAULT, &h), (int64_t)l2);
    free(both);
}

/* Every frame the tests build is recorded here, in order, for the
 * back-to-back and stream tests. */
#define MAX_FRAMES 128
#define STREAM_LEN (1u << 20)
struct rec_frame {
    size_t off, len;
    uint8_t type;
    uint64_t req_id;
};
static uint8_t stream[STREAM_LEN];
static size_t stream_len;
static struct rec_frame frames[MAX_FRAMES];
static size_t nframes;

static void record_frame(const uint8_t *f, size_t len, uint8_t type, uint64_t req_id)
{
    if (nframes == MAX_FRAMES || stream_len + len > STREAM_LEN)
        return;
    memcpy(stream + stream_len, f, len);
    frames[nframes++] = (struct rec_frame){stream_len, len, type, req_id};
    stream_len += len;
}

/* Frames a body, checks every split point and records the frame. */
static void check_frame(uint8_t type, uint16_t flags, uint64_t req_id, const uint8_t *body,
                        size_t n)
{
    size_t fl = put_frame(frame_buf, type, flags, req_id, body, n);
    check_splits(frame_buf, fl, type, flags, req_id);
    record_frame(frame_buf, fl, type, req_id);
}

typedef int (*parse_any_fn)(const uint8_t *b, size_t n);

/* Every strict prefix of a valid body is refused; so is the body followed
 * by one more byte.  Parsers with a free-length tail (RESULT, DELIVER)
 * accept any length from their fixed prefix on (tail_from). */
static void check_truncations(const uint8_t *body, size_t n, parse_any_fn parse, size_t tail_from)
{
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = dup_exact(body, k);
        CHECK_EQ(parse(c, k), k < tail_from ? P2C2R_EPROTO : 0);
        free(c);
    }
    uint8_t *c = malloc(n + 1);
    if (!c)
        abort();
    memcpy(c, body, n);
    c[n] = 0;
    CHECK_EQ(parse(c, n + 1), tail_from == SIZE_MAX ? P2C2R_EPROTO : 0);
    c[n] = 0xff;
    CHECK_EQ(parse(c, n + 1), tail_from == SIZE_MAX ? P2C2R_EPROTO : 0);
    free(c);
}

/* A parser must not accept a body it did not check, so every view it
 * returns lies inside the body it was given. */
static int view_inside(struct bytes_view v, const uint8_t *b, size_t n)
{
    if (v.len == 0)
        return 1;
    return v.p >= b && v.len <= n && (size_t)(v.p - b) <= n - v.len;
}

static int any_hello(const uint8_t *b, size_t n)
{
    struct msg_hello m;
    return proto_parse_hello(b, n, &m);
}

static int any_hello_ok(const uint8_t *b, size_t n)
{
    struct msg_hello_ok m;
    return proto_parse_hello_ok(b, n, &m);
}

static int any_error(const uint8_t *b, size_t n)
{
    struct msg_error m;
    int rc = proto_parse_error(b, n, &m);
    if (rc == 0)
        CHECK(view_inside(m.text, b, n));
    return rc;
}

static int any_register(const uint8_t *b, size_t n)
{
    struct msg_register m;
    return proto_parse_register(b, n, &m);
}

static int any_task(const uint8_t *b, size_t n)
{
    struct msg_task m;
    return proto_parse_task(b, n, &m);
}

static int any_result(const uint8_t *b, size_t n)
{
    struct msg_result m;
    int rc = proto_parse_result(b, n, &m);
    if (rc == 0) {
        CHECK(view_inside(m.output, b, n));
        CHECK_EQU(m.output.len, n - PROTO_RESULT_PREFIX);
    }
    return rc;
}

static int any_deliver(const uint8_t *b, size_t n)
{
    struct msg_deliver m;
    int rc = proto_parse_deliver(b, n, &m);
    if (rc == 0) {
        CHECK(view_inside(m.output, b, n));
        CHECK_EQU(m.output.len, n - PROTO_DELIVER_PREFIX);
    }
    return rc;
}

static int any_u32(const uint8_t *b, size_t n)
{
    uint32_t v;
    return proto_parse_u32(b, n, &v);
}

static int any_u64(const uint8_t *b, size_t n)
{
    uint64_t v;
    return proto_parse_u64(b, n, &v);
}

/* Walks a SUBMIT_BATCH body; returns 0 when the entries fill it exactly,
 * else the first error.  *entries counts the entries handed out. */
static int batch_walk(const uint8_t *b, size_t n, uint32_t *entries)
{
    struct proto_batch_iter it;
    uint32_t count = 0, seen = 0;
    uint64_t id;
    const uint8_t *t;
    size_t tl;
    int rc = proto_batch_begin(b, n, &it, &count);
    *entries = 0;
    if (rc != 0)
        return rc;
    CHECK(count >= 1 && count <= PROTO_MAX_BATCH);
    while ((rc = proto_batch_next(&it, &id, &t, &tl)) == 1) {
        CHECK(t >= b && tl <= n && (size_t)(t - b) <= n - tl);
        seen++;
        if (seen > count)
            break;
    }
    CHECK(seen <= count);
    if (rc == 0)
        CHECK_EQU(seen, count);
    *entries = seen;
    return rc;
}

static int any_batch(const uint8_t *b, size_t n)
{
    uint32_t entries;
    return batch_walk(b, n, &entries);
}

/* ---- header ------------------------------------------------------------- */

static void test_hdr_roundtrip(void)
{
    static const struct {
        uint8_t type;
        uint16_t flags;
        uint64_t req_id;
    } cases[] = {
        {MSG_PING, 0, 0},
        {MSG_SUBMIT, PROTO_F_WANT_ACK, 1},
        {MSG_DELIVER, 0xffff, UINT64_MAX},
        {0xee, 0x8001, 0x0102030405060708ull}, /* the decoder does not judge types */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint8_t f[PROTO_HDR_LEN];
        proto_put_hdr(f, cases[i].type, cases[i].flags, cases[i].req_id, 0);
        CHECK(memcmp(f, "P2CR", 4) == 0);
        CHECK_EQU(f[4], PROTO_VERSION);
        CHECK_EQU(rd32(f), PROTO_MAGIC);
        check_splits(f, sizeof(f), cases[i].type, cases[i].flags, cases[i].req_id);
    }
    /* Fields are little-endian at fixed offsets. */
    uint8_t f[PROTO_HDR_LEN];
    proto_put_hdr(f, 0x21, 0x0201, 0x0807060504030201ull, 0x04030201u);
    static const uint8_t want[PROTO_HDR_LEN] = {'P', '2', 'C', 'R', 1, 0x21, 0x01, 0x02, 1, 2,
                                                3,   4,   5,   6,   7, 8,    1,    2,    3, 4};
    CHECK(memcmp(f, want, sizeof(want)) == 0);
}

static void test_hdr_bad_magic(void)
{
    uint8_t body[8] = {0};
    uint8_t f[PROTO_HDR_LEN + 8];
    size_t fl = put_frame(f, MSG_PING, 0, 9, body, sizeof(body));
    for (size_t i = 0; i < 4; i++) {
        static const uint8_t wrong[] = {0x00, 0xff, 'p', 'R'};
        for (size_t w = 0; w < ARRAY_LEN(wrong); w++) {
            uint8_t g[sizeof(f)];
            memcpy(g, f, fl);
            if (g[i] == wrong[w])
                continue;
            g[i] = wrong[w];
            /* Rejected as soon as the bad byte arrives, not 20 bytes later. */
            for (size_t k = 0; k <= fl; k++) {
                struct frame_hdr h;
                CHECK_EQ(decode_exact(g, k, PROTO_MAX_BODY_DEFAULT, &h),
                         k <= i ? 0 : P2C2R_EPROTO);
            }
        }
    }
    /* Plain text (an HTTP request, say) is refused at its first byte. */
    struct frame_hdr h;
    CHECK_EQ(decode_exact((const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 1, PROTO_MAX_BODY_DEFAULT,
                          &h),
             P2C2R_EPROTO);
}

static void test_hdr_bad_version(void)
{
    static const uint8_t versions[] = {0, 2, 0x7f, 0xff};
    for (size_t v = 0; v < ARRAY_LEN(versions); v++) {
        uint8_t f[PROTO_HDR_LEN];
        proto_put_hdr(f, MSG_HELLO, 0, 0, 0);
        f[4] = versions[v];
        for (size_t k = 0; k <= sizeof(f); k++) {
            struct frame_hdr h;
            CHECK_EQ(decode_exact(f, k, PROTO_MAX_BODY_DEFAULT, &h), k <= 4 ? 0 : P2C2R_EPROTO);
        }
    }
}

static void test_hdr_max_body(void)
{
    uint8_t f[PROTO_HDR_LEN + 101];
    memset(f, 0x5a, sizeof(f));
    struct frame_hdr h;

    /* One byte over the limit: refused as soon as the length is known. */
    proto_put_hdr(f, MSG_SUBMIT, 0, 3, 101);
    for (size_t k = 0; k <= sizeof(f); k++)
        CHECK_EQ(decode_exact(f, k, 100, &h), k < PROTO_HDR_LEN ? 0 : P2C2R_ETOOBIG);

    /* Exactly at the limit: accepted, and the header is visible while the
     * body is still on its way, so a reader can size its buffer. */
    proto_put_hdr(f, MSG_SUBMIT, 0, 3, 100);
    memset(&h, 0, sizeof(h));
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, 100, &h), 0);
    CHECK_EQU(h.body_len, 100);
    CHECK_EQU(h.req_id, 3);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN + 99, 100, &h), 0);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN + 100, 100, &h), PROTO_HDR_LEN + 100);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN + 101, 100, &h), PROTO_HDR_LEN + 100);

    /* A zero limit still admits empty bodies. */
    proto_put_hdr(f, MSG_CANCEL, 0, 3, 0);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, 0, &h), PROTO_HDR_LEN);
    proto_put_hdr(f, MSG_CANCEL, 0, 3, 1);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, 0, &h), P2C2R_ETOOBIG);

    /* The largest announced length neither overflows nor passes. */
    proto_put_hdr(f, MSG_RESULT, 0, 3, UINT32_MAX);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, UINT32_MAX, &h), 0);
    CHECK_EQU(h.body_len, UINT32_MAX);
    CHECK_EQ(decode_exact(f, sizeof(f), UINT32_MAX, &h), 0);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, PROTO_MAX_BODY_DEFAULT, &h), P2C2R_ETOOBIG);
    proto_put_hdr(f, MSG_RESULT, 0, 3, PROTO_MAX_BODY_DEFAULT + 1);
    CHECK_EQ(decode_exact(f, PROTO_HDR_LEN, PROTO_MAX_BODY_DEFAULT, &h), P2C2R_ETOOBIG);
}

static void test_type_names(void)
{
    static const struct {
        uint8_t type;
        const char *name;
    } names[] = {
        {MSG_HELLO, "HELLO"},
        {MSG_HELLO_OK, "HELLO_OK"},
        {MSG_ERROR, "ERROR"},
        {MSG_PING, "PING"},
        {MSG_PONG, "PONG"},
        {MSG_PEER_REGISTER, "PEER_REGISTER"},
        {MSG_REGISTER_OK, "REGISTER_OK"},
        {MSG_CREDIT, "CREDIT"},
        {MSG_SUBMIT, "SUBMIT"},
        {MSG_SUBMIT_BATCH, "SUBMIT_BATCH"},
        {MSG_ACCEPTED, "ACCEPTED"},
        {MSG_REJECTED, "REJECTED"},
        {MSG_CANCEL, "CANCEL"},
        {MSG_ASSIGN, "ASSIGN"},
        {MSG_RESULT, "RESULT"},
        {MSG_DELIVER, "DELIVER"},
        {MSG_STATS_REQ, "STATS_REQ"},
        {MSG_STATS, "STATS"},
    };
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        CHECK(strcmp(proto_type_name(names[i].type), names[i].name) == 0);
    static const uint8_t unknown[] = {0x00, 0x06, 0x0f, 0x13, 0x25, 0x32, 0x41, 0x52, 0xff};
    for (size_t i = 0; i < ARRAY_LEN(unknown); i++)
        CHECK(strcmp(proto_type_name(unknown[i]), "UNKNOWN") == 0);
}

/* ---- HELLO, HELLO_OK, ERROR -------------------------------------------- */

static struct bytes_view bv(const void *p, size_t n)
{
    return (struct bytes_view){(const uint8_t *)p, n};
}

static void check_hello(const struct msg_hello *m, uint64_t req_id)
{
    size_t n = proto_hello_size(m);
    CHECK_EQU(n, 9 + m->token.len + m->name.len);
    CHECK_EQU(proto_put_hello(body_buf, m), n);
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_hello o;
    if (CHECK(proto_parse_hello(b, n, &o) == 0)) {
        CHECK_EQU(o.ver_min, m->ver_min);
        CHECK_EQU(o.ver_max, m->ver_max);
        CHECK_EQU(o.role, m->role);
        CHECK_MEM(o.token.p, o.token.len, m->token.p, m->token.len);
        CHECK_MEM(o.name.p, o.name.len, m->name.p, m->name.len);
        CHECK(view_inside(o.token, b, n));
        CHECK(view_inside(o.name, b, n));
    }
    check_truncations(b, n, any_hello, SIZE_MAX);
    free(b);
    check_frame(MSG_HELLO, 0, req_id, body_buf, n);
}

static void test_hello(void)
{
    char token[PROTO_MAX_TOKEN + 1], name[PROTO_MAX_NAME + 1];
    memset(token, 't', sizeof(token));
    memset(name, 'n', sizeof(name));

    struct msg_hello m = {1, 3, ROLE_PEER, bv("s3cr3t", 6), bv("peer-01", 7)};
    check_hello(&m, 0);
    m = (struct msg_hello){PROTO_VERSION, PROTO_VERSION, ROLE_RENTER, bv(NULL, 0), bv(NULL, 0)};
    check_hello(&m, 1);
    m = (struct msg_hello){0, 0xffff, ROLE_NONE, bv(token, PROTO_MAX_TOKEN),
                           bv(name, PROTO_MAX_NAME)};
    check_hello(&m, 2);

    /* Over the limits, and an empty version range. */
    uint8_t b[16 + PROTO_MAX_TOKEN + PROTO_MAX_NAME];
    m = (struct msg_hello){1, 1, ROLE_RENTER, bv(token, PROTO_MAX_TOKEN + 1), bv("x", 1)};
    size_t n = proto_put_hello(b, &m);
    CHECK_EQ(any_hello(b, n), P2C2R_EPROTO);
    m = (struct msg_hello){1, 1, ROLE_RENTER, bv("x", 1), bv(name, PROTO_MAX_NAME + 1)};
    n = proto_put_hello(b, &m);
    CHECK_EQ(any_hello(b, n), P2C2R_EPROTO);
    m = (struct msg_hello){2, 1, ROLE_RENTER, bv("x", 1), bv("y", 1)};
    n = proto_put_hello(b, &m);
    CHECK_EQ(any_hello(b, n), P2C2R_EPROTO);
    /* A token length that points past the body. */
    m = (struct msg_hello){1, 1, ROLE_RENTER, bv("abc", 3), bv(NULL, 0)};
    n = proto_put_hello(b, &m);
    wr16(b + 6, 200);
    CHECK_EQ(any_hello(b, n), P2C2R_EPROTO);
}

static void test_hello_ok(void)
{
    static const struct msg_hello_ok cases[] = {
        {PROTO_VERSION, PROTO_MAX_BODY_DEFAULT, 1000, 0x0123456789abcdefull},
        {0, 0, 0, 0},
        {0xffff, UINT32_MAX, UINT32_MAX, UINT64_MAX},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        CHECK_EQU(proto_put_hello_ok(body_buf, &cases[i]), PROTO_HELLO_OK_LEN);
        uint8_t *b = dup_exact(body_buf, PROTO_HELLO_OK_LEN);
        struct msg_hello_ok o;
        if (CHECK(proto_parse_hello_ok(b, PROTO_HELLO_OK_LEN, &o) == 0)) {
            CHECK_EQU(o.version, cases[i].version);
            CHECK_EQU(o.max_body, cases[i].max_body);
            CHECK_EQU(o.max_inflight, cases[i].max_inflight);
            CHECK_EQU(o.conn_id, cases[i].conn_id);
        }
        check_truncations(b, PROTO_HELLO_OK_LEN, any_hello_ok, SIZE_MAX);
        free(b);
        check_frame(MSG_HELLO_OK, 0, i, body_buf, PROTO_HELLO_OK_LEN);
    }
}

/* ERROR and REJECTED share the body: code, text. */
static void check_error(uint8_t type, uint64_t req_id, uint16_t code, const char *text,
                        size_t text_len)
{
    size_t n = proto_error_size(text_len);
    size_t kept = text_len > 1024 ? 1024 : text_len;
    CHECK_EQU(n, 4 + kept);
    CHECK_EQU(proto_put_error(body_buf, code, text, text_len), n);
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_error o;
    if (CHECK(proto_parse_error(b, n, &o) == 0)) {
        CHECK_EQU(o.code, code);
        CHECK_MEM(o.text.p, o.text.len, text, kept);
    }
    check_truncations(b, n, any_error, SIZE_MAX);
    free(b);
    check_frame(type, 0, req_id, body_buf, n);
}

static void test_error(void)
{
    static char long_text[2000];
    memset(long_text, 'e', sizeof(long_text));
    check_error(MSG_ERROR, 0, (uint16_t)-P2C2R_EPROTO, "bad frame header", 16);
    check_error(MSG_ERROR, 0, 0, "", 0);
    check_error(MSG_ERROR, 0, 0xffff, long_text, 1024);
    /* Text over 1 KiB is cut by the encoder, consistently with its size. */
    check_error(MSG_ERROR, 0, (uint16_t)-P2C2R_ETOOBIG, long_text, sizeof(long_text));
    check_error(MSG_REJECTED, 77, (uint16_t)-P2C2R_EQUEUEFULL, "queue full", 10);
    check_error(MSG_REJECTED, UINT64_MAX, (uint16_t)-P2C2R_EUNSUPPORTED, "no peer runs 'x'", 16);
}

/* ---- PING, PONG, REGISTER_OK, CREDIT, ACCEPTED: one integer ------------- */

static void check_u64_msg(uint8_t type, uint64_t req_id, uint64_t v)
{
    uint8_t raw[8];
    wr64(raw, v);
    uint8_t *b = dup_exact(raw, 8);
    uint64_t o = ~v;
    CHECK_EQ(proto_parse_u64(b, 8, &o), 0);
    CHECK_EQU(o, v);
    check_truncations(b, 8, any_u64, SIZE_MAX);
    free(b);
    check_frame(type, 0, req_id, raw, 8);
}

static void check_u32_msg(uint8_t type, uint64_t req_id, uint32_t v)
{
    uint8_t raw[4];
    wr32(raw, v);
    uint8_t *b = dup_exact(raw, 4);
    uint32_t o = ~v;
    CHECK_EQ(proto_parse_u32(b, 4, &o), 0);
    CHECK_EQU(o, v);
    check_truncations(b, 4, any_u32, SIZE_MAX);
    free(b);
    check_frame(type, 0, req_id, raw, 4);
}

static void test_integers(void)
{
    check_u64_msg(MSG_PING, 0, 0x1122334455667788ull);
    check_u64_msg(MSG_PONG, 0, 0x1122334455667788ull);
    check_u64_msg(MSG_PING, 5, 0);
    check_u64_msg(MSG_PONG, 5, UINT64_MAX);
    check_u64_msg(MSG_REGISTER_OK, 0, 42);
    check_u32_msg(MSG_CREDIT, 0, 16);
    check_u32_msg(MSG_CREDIT, 0, UINT32_MAX);
    check_u32_msg(MSG_ACCEPTED, 9, 1);
    check_u32_msg(MSG_ACCEPTED, 10, PROTO_MAX_BATCH);

    /* The out-parameter is written only on success. */
    uint8_t raw[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    uint64_t v64 = 7;
    uint32_t v32 = 7;
    CHECK_EQ(proto_parse_u64(raw, 9, &v64), P2C2R_EPROTO);
    CHECK_EQ(proto_parse_u32(raw, 3, &v32), P2C2R_EPROTO);
    CHECK_EQU(v64, 7);
    CHECK_EQU(v32, 7);
    CHECK_EQ(proto_parse_u32(raw, 4, &v32), 0);
    CHECK_EQU(v32, 0x04030201u);
}

/* ---- PEER_REGISTER ------------------------------------------------------ */

static void check_truncations_but(const uint8_t *body, size_t n, parse_any_fn parse, size_t ok_at);

static void check_register(const struct msg_register *m, uint64_t req_id)
{
    size_t n = proto_register_size(m);
    CHECK_EQU(proto_put_register(body_buf, m), n);
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_register o;
    if (CHECK(proto_parse_register(b, n, &o) == 0)) {
        CHECK_EQU(o.cores, m->cores);
        CHECK_EQU(o.slots, m->slots);
        CHECK_EQU(o.mem_bytes, m->mem_bytes);
        CHECK_EQU(o.gpu, m->gpu);
        CHECK_MEM(o.gpu_model.p, o.gpu_model.len, m->gpu_model.p, m->gpu_model.len);
        CHECK(view_inside(o.gpu_model, b, n));
        if (CHECK(o.ntypes == m->ntypes)) {
            for (unsigned i = 0; i < o.ntypes; i++) {
                CHECK_MEM(o.types[i].name.p, o.types[i].name.len, m->types[i].name.p,
                          m->types[i].name.len);
                CHECK(view_inside(o.types[i].name, b, n));
                CHECK_EQU(o.types[i].version, m->types[i].version);
                /* Unknown flag bits are ignored: cleared, not refused. */
                CHECK_EQU(o.types[i].flags, m->types[i].flags & PROTO_TYPE_FLAGS_KNOWN);
            }
        }
        CHECK_EQU(o.has_pool, m->has_pool);
        CHECK_EQU(o.pool, m->has_pool ? m->pool : 0);
        CHECK_EQU(o.cost, m->has_pool ? m->cost : 0);
    }
    /* The pool block is optional: without it the body is whole too. */
    check_truncations_but(b, n, any_register, m->has_pool ? n - PROTO_POOL_BLOCK_LEN : SIZE_MAX);
    free(b);
    check_frame(MSG_PEER_REGISTER, 0, req_id, body_buf, n);
}

static void test_register(void)
{
    static char names[PROTO_MAX_TYPES][PROTO_MAX_TYPE_NAME + 1];
    static char model[PROTO_MAX_NAME + 1];
    memset(model, 'g', sizeof(model));
    for (int i = 0; i < PROTO_MAX_TYPES; i++) {
        memset(names[i], 'a' + i % 26, sizeof(names[i]));
        names[i][0] = (char)('0' + i % 10);
    }

    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 16;
    m.slots = 8;
    m.mem_bytes = 1ull << 34;
    m.gpu = 1;
    m.gpu_model = bv("RTX 4090", 8);
    m.ntypes = 2;
    m.types[0] = (struct proto_tasktype){bv("echo", 4), 1, PROTO_TYPE_F_DETERMINISTIC};
    m.types[1] = (struct proto_tasktype){bv("sha256", 6), 2, 0};
    check_register(&m, 0);

    memset(&m, 0, sizeof(m));
    check_register(&m, 1); /* no types, no GPU */

    memset(&m, 0, sizeof(m));
    m.cores = 0xffff;
    m.slots = 0xffff;
    m.mem_bytes = UINT64_MAX;
    m.gpu = 0xff;
    m.gpu_model = bv(model, PROTO_MAX_NAME);
    m.ntypes = PROTO_MAX_TYPES;
    for (int i = 0; i < PROTO_MAX_TYPES; i++)
        m.types[i] = (struct proto_tasktype){bv(names[i], (size_t)(i + 1)), UINT32_MAX - (uint32_t)i,
                                             (uint8_t)(0xff - i)};
    m.types[PROTO_MAX_TYPES - 1].name.len = PROTO_MAX_TYPE_NAME;
    check_register(&m, 2);

    /* The pool block: any pool byte and cost come through as sent (the
     * coordinator judges the pool). */
    memset(&m, 0, sizeof(m));
    m.ntypes = 1;
    m.types[0] = (struct proto_tasktype){bv("raytrace", 8), 1, PROTO_TYPE_F_DETERMINISTIC};
    m.has_pool = 1;
    m.pool = PROTO_POOL_CLOUD;
    m.cost = 0xfedcba98u;
    check_register(&m, 3);
    m.pool = 0xff;
    m.cost = 0;
    check_register(&m, 4);

    /* Every value of a type's flags byte is accepted; only the known bits
     * come through. */
    for (unsigned f = 0; f < 256; f++) {
        memset(&m, 0, sizeof(m));
        m.ntypes = 1;
        m.types[0] = (struct proto_tasktype){bv("physics", 7), 3, (uint8_t)f};
        static uint8_t fb[64];
        size_t fn = proto_put_register(fb, &m);
        CHECK_EQU(fn, 16u + PROTO_TYPE_ENTRY_FIXED + 7);
        CHECK_EQU(fb[fn - 1], f);
        struct msg_register o;
        uint8_t *c = dup_exact(fb, fn);
        if (CHECK(proto_parse_register(c, fn, &o) == 0))
            CHECK_EQU(o.types[0].flags, f & PROTO_TYPE_F_DETERMINISTIC);
        free(c);
    }

    /* Over the limits. */
    static uint8_t b[4096];
    size_t n;
    memset(&m, 0, sizeof(m));
    m.gpu_model = bv(model, PROTO_MAX_NAME + 1);
    n = proto_put_register(b, &m);
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);

    memset(&m, 0, sizeof(m));
    m.ntypes = 1;
    m.types[0] = (struct proto_tasktype){bv(names[0], PROTO_MAX_TYPE_NAME + 1), 1};
    n = proto_put_register(b, &m);
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);
    m.types[0].name.len = 0;
    n = proto_put_register(b, &m);
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);

    /* ntypes over PROTO_MAX_TYPES, with every entry present: the encoder
     * cannot express this, so append a 33rd entry by hand. */
    memset(&m, 0, sizeof(m));
    m.ntypes = PROTO_MAX_TYPES;
    for (int i = 0; i < PROTO_MAX_TYPES; i++)
        m.types[i] = (struct proto_tasktype){bv(names[i], 3), 1};
    n = proto_put_register(b, &m);
    CHECK_EQ(any_register(b, n), 0);
    b[n++] = 1;
    b[n++] = 'z';
    wr32(b + n, 1);
    n += 4;
    b[n++] = PROTO_TYPE_F_DETERMINISTIC;
    b[13] = PROTO_MAX_TYPES + 1;
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);
    b[13] = 0xff;
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);
    /* An ntypes that claims more entries than are present. */
    memset(&m, 0, sizeof(m));
    m.ntypes = 1;
    m.types[0] = (struct proto_tasktype){bv("echo", 4), 1};
    n = proto_put_register(b, &m);
    b[13] = 2;
    CHECK_EQ(any_register(b, n), P2C2R_EPROTO);
}

/* Every proper prefix of body fails to parse, but the one of ok_at bytes (a
 * message whose tail is optional: the shorter one is whole), and so does
 * body with a byte more. */
static void check_truncations_but(const uint8_t *body, size_t n, parse_any_fn parse, size_t ok_at)
{
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = dup_exact(body, k);
        CHECK_EQ(parse(c, k), k == ok_at ? 0 : P2C2R_EPROTO);
        free(c);
    }
    uint8_t *c = malloc(n + 1);
    if (!c)
        abort();
    memcpy(c, body, n);
    c[n] = 0;
    CHECK_EQ(parse(c, n + 1), P2C2R_EPROTO);
    free(c);
}

/* HELLO_OK to a peer: the 20 bytes a renter gets, then the 32-byte nonce. */
static void test_hello_ok_nonce(void)
{
    struct msg_hello_ok m = {PROTO_VERSION, PROTO_MAX_BODY_DEFAULT, 8192, 0x1122334455667788ull, 1, {0}};
    for (int i = 0; i < PROTO_NONCE_LEN; i++)
        m.nonce[i] = (uint8_t)(0xa0 + i);
    CHECK_EQU(proto_hello_ok_size(&m), PROTO_HELLO_OK_PEER_LEN);
    CHECK_EQU(proto_put_hello_ok(body_buf, &m), PROTO_HELLO_OK_PEER_LEN);
    CHECK_MEM(body_buf + PROTO_HELLO_OK_LEN, PROTO_NONCE_LEN, m.nonce, PROTO_NONCE_LEN);
    uint8_t *b = dup_exact(body_buf, PROTO_HELLO_OK_PEER_LEN);
    struct msg_hello_ok o;
    memset(&o, 0x55, sizeof(o));
    if (CHECK(proto_parse_hello_ok(b, PROTO_HELLO_OK_PEER_LEN, &o) == 0)) {
        CHECK_EQU(o.has_nonce, 1);
        CHECK_MEM(o.nonce, PROTO_NONCE_LEN, m.nonce, PROTO_NONCE_LEN);
        CHECK_EQU(o.conn_id, m.conn_id);
        CHECK_EQU(o.max_inflight, m.max_inflight);
    }
    /* Its first 20 bytes are a renter's HELLO_OK: no nonce. */
    memset(&o, 0x55, sizeof(o));
    if (CHECK(proto_parse_hello_ok(b, PROTO_HELLO_OK_LEN, &o) == 0))
        CHECK_EQU(o.has_nonce, 0);
    check_truncations_but(b, PROTO_HELLO_OK_PEER_LEN, any_hello_ok, PROTO_HELLO_OK_LEN);
    free(b);
    check_frame(MSG_HELLO_OK, 0, 1, body_buf, PROTO_HELLO_OK_PEER_LEN);
    m.has_nonce = 0;
    CHECK_EQU(proto_hello_ok_size(&m), PROTO_HELLO_OK_LEN);
    CHECK_EQU(proto_put_hello_ok(body_buf, &m), PROTO_HELLO_OK_LEN);
}

/* PEER_REGISTER with its identity: the capabilities, then the public key and
 * the signature, which cover the capabilities exactly. */
static void test_register_auth(void)
{
    uint8_t pk[PROTO_PK_LEN], sig[PROTO_SIG_LEN];
    for (int i = 0; i < PROTO_PK_LEN; i++)
        pk[i] = (uint8_t)(0x10 + i);
    for (int i = 0; i < PROTO_SIG_LEN; i++)
        sig[i] = (uint8_t)(0x80 + i);
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 4;
    m.slots = 2;
    m.mem_bytes = 1ull << 32;
    m.gpu_model = bv("A", 1);
    m.gpu = 1;
    m.ntypes = 2;
    m.types[0] = (struct proto_tasktype){bv("echo", 4), 1, PROTO_TYPE_F_DETERMINISTIC};
    m.types[1] = (struct proto_tasktype){bv("sha256", 6), 1, PROTO_TYPE_F_DETERMINISTIC};
    size_t caps = proto_register_signed_size(&m);
    CHECK_EQU(proto_register_size(&m), caps);
    m.pk = pk;
    m.sig = sig;
    size_t n = proto_register_size(&m);
    CHECK_EQU(n, caps + PROTO_REGISTER_AUTH_LEN);
    CHECK_EQU(proto_register_signed_size(&m), caps);
    CHECK_EQU(proto_put_register(body_buf, &m), n);
    CHECK_MEM(body_buf + caps, PROTO_PK_LEN, pk, PROTO_PK_LEN);
    CHECK_MEM(body_buf + caps + PROTO_PK_LEN, PROTO_SIG_LEN, sig, PROTO_SIG_LEN);
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_register o;
    if (CHECK(proto_parse_register(b, n, &o) == 0)) {
        CHECK(o.pk == b + caps && o.sig == b + caps + PROTO_PK_LEN);
        CHECK_EQU(o.signed_len, caps);
        CHECK_EQU(o.ntypes, 2);
    }
    /* The capabilities alone are a register body without identity. */
    if (CHECK(proto_parse_register(b, caps, &o) == 0)) {
        CHECK(o.pk == NULL && o.sig == NULL);
        CHECK_EQU(o.signed_len, caps);
    }
    /* The length after the types says what follows (docs/PROTOCOL.md 5.3):
     * 0 nothing, 8 a pool block, 96 the identity, 104 both.  So the one
     * prefix of 8 more bytes than the capabilities reads as a pool block
     * without identity (refused EAUTH by the coordinator); a frame's body
     * is never cut short on the wire, so no whole body is read two ways. */
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = dup_exact(b, k);
        CHECK_EQ(any_register(c, k), k == caps || k == caps + PROTO_POOL_BLOCK_LEN ? 0 : P2C2R_EPROTO);
        free(c);
    }
    free(b);
    check_frame(MSG_PEER_REGISTER, 0, 2, body_buf, n);
    /* With the pool block: it lies in the signed part, before the key. */
    m.has_pool = 1;
    m.pool = PROTO_POOL_CLOUD;
    m.cost = 40;
    size_t pcaps = proto_register_signed_size(&m);
    CHECK_EQU(pcaps, caps + PROTO_POOL_BLOCK_LEN);
    size_t pn = proto_put_register(body_buf, &m);
    CHECK_EQU(pn, pcaps + PROTO_REGISTER_AUTH_LEN);
    CHECK_EQU(body_buf[caps], PROTO_POOL_CLOUD);
    uint8_t *pb = dup_exact(body_buf, pn);
    if (CHECK(proto_parse_register(pb, pn, &o) == 0)) {
        CHECK(o.pk == pb + pcaps && o.sig == pb + pcaps + PROTO_PK_LEN);
        CHECK_EQU(o.signed_len, pcaps);
        CHECK_EQU(o.has_pool, 1);
        CHECK_EQU(o.pool, PROTO_POOL_CLOUD);
        CHECK_EQU(o.cost, 40);
    }
    /* Its prefixes: the capabilities with the pool block, or alone, parse
     * (without identity), and so does the one 96 bytes past the
     * capabilities (an identity whose signature cannot verify); every
     * other one is malformed. */
    for (size_t k = 0; k < pn; k++) {
        uint8_t *c = dup_exact(pb, k);
        CHECK_EQ(any_register(c, k), k == caps || k == pcaps || k == caps + PROTO_REGISTER_AUTH_LEN
                                         ? 0 : P2C2R_EPROTO);
        free(c);
    }
    free(pb);
    m.has_pool = 0;
    m.pool = 0;
    m.cost = 0;
    /* No signature given: zeros, for the signer to fill in place. */
    m.sig = NULL;
    CHECK_EQU(proto_put_register(body_buf, &m), n);
    static const uint8_t zeros[PROTO_SIG_LEN];
    CHECK_MEM(body_buf + caps + PROTO_PK_LEN, PROTO_SIG_LEN, zeros, PROTO_SIG_LEN);
}

/* The signed part of the PEER_REGISTER example of docs/PROTOCOL.md section
 * 13 (the example adds a key and a signature, which test_proto_examples
 * verifies), as a body without identity, byte for byte: req_id 2, 8 cores,
 * 8 slots, 16 GiB, no GPU, echo v1 and sha256 v1, both deterministic.  The same body without the flags bytes (the format before
 * they were added) is refused, not misread. */
static void test_register_example(void)
{
    static const uint8_t frame[] = {
        0x50, 0x32, 0x43, 0x52, 0x01, 0x10, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x26, 0x00, 0x00, 0x00, 0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,
        0x00, 0x02, 0x00, 0x00, 0x04, 0x65, 0x63, 0x68, 0x6f, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x73,
        0x68, 0x61, 0x32, 0x35, 0x36, 0x01, 0x00, 0x00, 0x00, 0x01,
    };
    static const uint8_t old_body[] = {
        0x08, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00,
        0x04, 0x65, 0x63, 0x68, 0x6f, 0x01, 0x00, 0x00, 0x00, 0x06, 0x73, 0x68, 0x61, 0x32, 0x35, 0x36,
        0x01, 0x00, 0x00, 0x00,
    };
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 8;
    m.slots = 8;
    m.mem_bytes = 16ull << 30;
    m.ntypes = 2;
    m.types[0] = (struct proto_tasktype){bv("echo", 4), 1, PROTO_TYPE_F_DETERMINISTIC};
    m.types[1] = (struct proto_tasktype){bv("sha256", 6), 1, PROTO_TYPE_F_DETERMINISTIC};
    size_t n = proto_register_size(&m);
    if (!CHECK(PROTO_HDR_LEN + n == sizeof(frame)))
        return;
    proto_put_hdr(frame_buf, MSG_PEER_REGISTER, 0, 2, (uint32_t)n);
    CHECK_EQU(proto_put_register(frame_buf + PROTO_HDR_LEN, &m), n);
    CHECK_MEM(frame_buf, sizeof(frame), frame, sizeof(frame));
    CHECK_EQ(any_register(old_body, sizeof(old_body)), P2C2R_EPROTO);
    /* One type in the old format: its flags byte is simply missing. */
    uint8_t one[16 + 1 + 4 + 4];
    memcpy(one, old_body, sizeof(one));
    one[13] = 1;
    CHECK_EQ(any_register(one, sizeof(one)), P2C2R_EPROTO);
    one[13] = 0; /* and a body of no types with a trailing entry */
    CHECK_EQ(any_register(one, sizeof(one)), P2C2R_EPROTO);
}

/* ---- tasks: SUBMIT, ASSIGN, SUBMIT_BATCH entries ------------------------ */

struct task_spec {
    const char *type;
    size_t type_len;
    uint32_t min_version, deadline_ms;
    uint8_t priority;
    const char *params;
    size_t params_len;
    const uint8_t *input;
    size_t input_len;
};

static size_t put_task(uint8_t *dst, const struct task_spec *t)
{
    size_t o = proto_put_task_head(dst, t->type, t->type_len, t->min_version, t->deadline_ms,
                                   t->priority, t->params, t->params_len, NULL, 0,
                                   (uint32_t)t->input_len);
    CHECK_EQU(o + t->input_len, proto_task_size(t->type_len, t->params_len, 0, t->input_len));
    if (t->input_len)
        memcpy(dst + o, t->input, t->input_len);
    return o + t->input_len;
}

static void check_task_fields(const struct msg_task *o, const struct task_spec *t,
                              const uint8_t *b, size_t n)
{
    CHECK_MEM(o->type.p, o->type.len, t->type, t->type_len);
    CHECK_EQU(o->min_version, t->min_version);
    CHECK_EQU(o->deadline_ms, t->deadline_ms);
    CHECK_EQU(o->priority, t->priority);
    CHECK_MEM(o->params.p, o->params.len, t->params, t->params_len);
    CHECK_MEM(o->input.p, o->input.len, t->input, t->input_len);
    CHECK(view_inside(o->type, b, n));
    CHECK(view_inside(o->params, b, n));
    CHECK(view_inside(o->input, b, n));
}

/* Round-trips one task; with splits, also frames it as SUBMIT and ASSIGN
 * and checks every truncation. */
static void check_task(const struct task_spec *t, int thorough)
{
    size_t n = put_task(body_buf, t);
    CHECK_EQU(n, PROTO_TASK_FIXED + t->type_len + t->params_len + t->input_len);
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_task o;
    if (CHECK(proto_parse_task(b, n, &o) == 0))
        check_task_fields(&o, t, b, n);
    if (thorough)
        check_truncations(b, n, any_task, SIZE_MAX);
    free(b);
    if (thorough) {
        check_frame(MSG_SUBMIT, PROTO_F_WANT_ACK, 1000 + t->type_len, body_buf, n);
        check_frame(MSG_ASSIGN, 0, 2000 + t->type_len, body_buf, n);
    }
}

static void test_task(void)
{
    static char params[PROTO_MAX_PARAMS + 1];
    static uint8_t input[1000];
    static const char type32[] = "abcdefghijklmnopqrstuvwxyz012345";
    memset(params, 'p', sizeof(params));
    for (size_t i = 0; i < sizeof(input); i++)
        input[i] = (uint8_t)(i * 7);

    struct task_spec t = {"sha256", 6, 2, 5000, 1, "format=hex\n", 11, (const uint8_t *)"abc", 3};
    check_task(&t, 1);
    t = (struct task_spec){"e", 1, 0, 0, 0, NULL, 0, NULL, 0}; /* the smallest task */
    check_task(&t, 1);
    t = (struct task_spec){type32, PROTO_MAX_TYPE_NAME, UINT32_MAX, UINT32_MAX, 0xff,
                           params, PROTO_MAX_PARAMS, input, sizeof(input)};
    check_task(&t, 1);

    /* Deterministic variety without split checks, to stay fast. */
    struct rng r = {12345};
    for (int i = 0; i < 300; i++) {
        t.type_len = 1 + rng_next(&r) % PROTO_MAX_TYPE_NAME;
        t.min_version = (uint32_t)rng_next(&r);
        t.deadline_ms = (uint32_t)rng_next(&r);
        t.priority = (uint8_t)rng_next(&r);
        t.params_len = rng_next(&r) % 300;
        t.params = t.params_len ? params : NULL;
        t.input_len = rng_next(&r) % sizeof(input);
        t.input = t.input_len ? input + rng_next(&r) % (sizeof(input) - t.input_len + 1) : NULL;
        check_task(&t, 0);
    }

    /* Over the limits and lengths that overrun. */
    static uint8_t b[PROTO_TASK_FIXED + 64 + PROTO_MAX_PARAMS + 8];
    size_t n;
    t = (struct task_spec){"", 0, 0, 0, 0, NULL, 0, NULL, 0};
    n = put_task(b, &t);
    CHECK_EQ(any_task(b, n), P2C2R_EPROTO);
    t = (struct task_spec){"abcdefghijklmnopqrstuvwxyz0123456", PROTO_MAX_TYPE_NAME + 1, 0, 0, 0,
                           NULL, 0, NULL, 0};
    n = put_task(b, &t);
    CHECK_EQ(any_task(b, n), P2C2R_EPROTO);
    t = (struct task_spec){"echo", 4, 0, 0, 0, params, PROTO_MAX_PARAMS + 1, NULL, 0};
    n = put_task(b, &t);
    CHECK_EQ(any_task(b, n), P2C2R_EPROTO);
    t.params_len = PROTO_MAX_PARAMS;
    n = put_task(b, &t);
    CHECK_EQ(any_task(b, n), 0);
    /* An input length far past the body, and one byte past it. */
    t = (struct task_spec){"echo", 4, 0, 0, 0, NULL, 0, NULL, 0};
    n = proto_put_task_head(b, t.type, t.type_len, 0, 0, 0, NULL, 0, NULL, 0, UINT32_MAX);
    CHECK_EQ(any_task(b, n), P2C2R_EPROTO);
    n = proto_put_task_head(b, t.type, t.type_len, 0, 0, 0, NULL, 0, NULL, 0, 5);
    memset(b + n, 'i', 4);
    CHECK_EQ(any_task(b, n + 4), P2C2R_EPROTO);
    CHECK_EQ(any_task(b, n + 5), 0);
    /* A params length past the body. */
    n = proto_put_task_head(b, t.type, t.type_len, 0, 0, 0, NULL, 0, NULL, 0, 0);
    wr16(b + 1 + 4 + 2 + 8, 3);
    CHECK_EQ(any_task(b, n), P2C2R_EPROTO);
}

/* Flags and the requirements block: round trip, every truncation, and the
 * bits a receiver must refuse. */
static void test_task_ext(void)
{
    static uint8_t b[256];
    const uint8_t blob[PROTO_HASH_LEN] = {1, 2, 3};
    struct proto_reqs rq = {1, 16, (uint64_t)12 << 30};
    size_t h = proto_put_task_head_ext(b, "upscale", 7, 2, 40, PRIO_REALTIME, PROTO_TASK_F_NOCACHE,
                                       "scale=2\n", 8, blob, 1, &rq, 3);
    memcpy(b + h, "xyz", 3);
    size_t n = h + 3;
    CHECK_EQU(n, proto_task_size_ext(7, 8, 1, 1, 3));
    struct msg_task o;
    if (CHECK(proto_parse_task(b, n, &o) == 0)) {
        CHECK_EQU(o.flags, PROTO_TASK_F_NOCACHE | PROTO_TASK_F_REQS);
        CHECK_EQU(o.nblobs, 1u);
        CHECK_EQU(o.reqs.gpu, 1u);
        CHECK_EQU(o.reqs.min_cores, 16u);
        CHECK_EQU(o.reqs.min_mem, (uint64_t)12 << 30);
        CHECK_MEM(o.blobs, PROTO_HASH_LEN, blob, PROTO_HASH_LEN);
        CHECK_MEM(o.input.p, o.input.len, "xyz", 3);
    }
    check_truncations(b, n, any_task, SIZE_MAX);
    /* Without requirements the block is absent and reqs reads as zero. */
    h = proto_put_task_head_ext(b, "echo", 4, 0, 0, PRIO_BACKGROUND, 0, NULL, 0, NULL, 0, NULL, 0);
    CHECK_EQU(h, proto_task_size_ext(4, 0, 0, 0, 0));
    if (CHECK(proto_parse_task(b, h, &o) == 0))
        CHECK(o.flags == 0 && o.reqs.gpu == 0 && o.reqs.min_cores == 0 && o.reqs.min_mem == 0);
    /* Unknown flag bits, nblobs over 4, and a gpu byte other than 0/1 are malformed. */
    b[1 + 4 + 1] = 0x08;
    CHECK_EQ(any_task(b, h), P2C2R_EPROTO);
    b[1 + 4 + 1] = 0x05;
    CHECK_EQ(any_task(b, h), P2C2R_EPROTO);
    h = proto_put_task_head_ext(b, "echo", 4, 0, 0, 0, 0, NULL, 0, NULL, 0, &rq, 0);
    b[1 + 4 + 2 + 8 + 2] = 2;
    CHECK_EQ(any_task(b, h), P2C2R_EPROTO);
}

/* ---- SUBMIT_BATCH ------------------------------------------------------- */

/* Builds a batch body from tasks; returns its length. */
static size_t put_batch(uint8_t *dst, uint32_t count, const struct task_spec *tasks, size_t ntasks,
                        uint64_t first_id)
{
    size_t o = 4;
    wr32(dst, count);
    for (size_t i = 0; i < ntasks; i++) {
        size_t tl = put_task(dst + o + PROTO_BATCH_ENTRY_PREFIX, &tasks[i]);
        wr64(dst + o, first_id + i);
        wr32(dst + o + 8, (uint32_t)tl);
        o += PROTO_BATCH_ENTRY_PREFIX + tl;
    }
    return o;
}

static void test_batch(void)
{
    static const uint8_t in[] = {0, 1, 2, 3, 0xff};
    const struct task_spec tasks[] = {
        {"echo", 4, 1, 100, 0, NULL, 0, in, sizeof(in)},
        {"sha256", 6, 0, 0, 2, "format=raw\n", 11, NULL, 0},
        {"x", 1, 7, 0, 1, "a=b", 3, in, 1},
    };
    size_t n = put_batch(body_buf, 3, tasks, 3, 500);
    uint8_t *b = dup_exact(body_buf, n);
    struct proto_batch_iter it;
    uint32_t count = 0;
    if (CHECK(proto_batch_begin(b, n, &it, &count) == 0)) {
        CHECK_EQU(count, 3);
        for (size_t i = 0; i < 3; i++) {
            uint64_t id = 0;
            const uint8_t *t = NULL;
            size_t tl = 0;
            if (!CHECK(proto_batch_next(&it, &id, &t, &tl) == 1))
                break;
            CHECK_EQU(id, 500 + i);
            CHECK(t == b + 4 + (i + 1) * PROTO_BATCH_ENTRY_PREFIX +
                           (i > 0 ? proto_task_size(4, 0, 0, sizeof(in)) : 0) +
                           (i > 1 ? proto_task_size(6, 11, 0, 0) : 0));
            uint8_t *e = dup_exact(t, tl); /* entry-exact, for ASan */
            struct msg_task o;
            if (CHECK(proto_parse_task(e, tl, &o) == 0))
                check_task_fields(&o, &tasks[i], e, tl);
            free(e);
        }
        uint64_t id;
        const uint8_t *t;
        size_t tl;
        CHECK_EQ(proto_batch_next(&it, &id, &t, &tl), 0);
        CHECK_EQ(proto_batch_next(&it, &id, &t, &tl), 0); /* the end stays the end */
    }
    check_truncations(b, n, any_batch, SIZE_MAX);
    free(b);
    check_frame(MSG_SUBMIT_BATCH, PROTO_F_WANT_ACK, 77, body_buf, n);

    /* A single minimal entry is the smallest valid batch. */
    const struct task_spec tiny = {"e", 1, 0, 0, 0, NULL, 0, NULL, 0};
    n = put_batch(body_buf, 1, &tiny, 1, 1);
    CHECK_EQU(n, 4 + PROTO_BATCH_ENTRY_PREFIX + PROTO_TASK_FIXED + 1);
    uint32_t entries;
    CHECK_EQ(any_batch(body_buf, n), 0);
    check_frame(MSG_SUBMIT_BATCH, 0, 78, body_buf, n);

    /* PROTO_MAX_BATCH minimal entries: accepted; one more count: refused. */
    struct task_spec *many = malloc(sizeof(*many) * (PROTO_MAX_BATCH + 1));
    for (size_t i = 0; i <= PROTO_MAX_BATCH; i++)
        many[i] = tiny;
    n = put_batch(body_buf, PROTO_MAX_BATCH, many, PROTO_MAX_BATCH, 1);
    b = dup_exact(body_buf, n);
    CHECK_EQ(batch_walk(b, n, &entries), 0);
    CHECK_EQU(entries, PROTO_MAX_BATCH);
    free(b);
    n = put_batch(body_buf, PROTO_MAX_BATCH + 1, many, PROTO_MAX_BATCH + 1, 1);
    b = dup_exact(body_buf, n);
    CHECK_EQ(batch_walk(b, n, &entries), P2C2R_EPROTO);
    CHECK_EQU(entries, 0);
    free(b);
    free(many);

    /* Count 0, even with an entry behind it; count UINT32_MAX; short bodies. */
    n = put_batch(body_buf, 0, &tiny, 1, 1);
    CHECK_EQ(any_batch(body_buf, n), P2C2R_EPROTO);
    n = put_batch(body_buf, UINT32_MAX, &tiny, 1, 1);
    CHECK_EQ(any_batch(body_buf, n), P2C2R_EPROTO);
    for (size_t k = 0; k < 4; k++) {
        b = dup_exact("\x01\x00\x00\x00", k);
        CHECK_EQ(any_batch(b, k), P2C2R_EPROTO);
        free(b);
    }

    /* A count larger than the body could possibly hold is refused up front. */
    n = put_batch(body_buf, 2, &tiny, 1, 1);
    struct proto_batch_iter it2;
    CHECK_EQ(proto_batch_begin(body_buf, n, &it2, &count), P2C2R_EPROTO);

    /* Overrun: the count promises a second entry the body does not have
     * (the first entry is big enough to pass the up-front size check). */
    static const uint8_t in100[100] = {0};
    const struct task_spec big = {"echo", 4, 0, 0, 0, NULL, 0, in100, sizeof(in100)};
    n = put_batch(body_buf, 2, &big, 1, 1);
    CHECK_EQ(proto_batch_begin(body_buf, n, &it2, &count), 0);
    CHECK_EQ(batch_walk(body_buf, n, &entries), P2C2R_EPROTO);
    CHECK_EQU(entries, 1);

    /* Overrun: an entry's length reaches past the body. */
    n = put_batch(body_buf, 1, tasks, 1, 1);
    wr32(body_buf + 4 + 8, (uint32_t)(n - 4 - PROTO_BATCH_ENTRY_PREFIX + 1));
    CHECK_EQ(batch_walk(body_buf, n, &entries), P2C2R_EPROTO);
    CHECK_EQU(entries, 0);
    wr32(body_buf + 4 + 8, UINT32_MAX);
    CHECK_EQ(batch_walk(body_buf, n, &entries), P2C2R_EPROTO);

    /* Underfill: bytes left after the last entry. */
    n = put_batch(body_buf, 1, tasks, 2, 1);
    CHECK_EQ(batch_walk(body_buf, n, &entries), P2C2R_EPROTO);
    CHECK_EQU(entries, 1);
    n = put_batch(body_buf, 1, tasks, 1, 1);
    body_buf[n] = 0;
    CHECK_EQ(batch_walk(body_buf, n + 1, &entries), P2C2R_EPROTO);
    /* Underfill inside an entry: a short length leaves the task cut, which
     * the entry's own parse then refuses. */
    n = put_batch(body_buf, 1, tasks, 1, 1);
    uint32_t tl0 = rd32(body_buf + 4 + 8);
    wr32(body_buf + 4 + 8, tl0 - 1);
    CHECK_EQ(batch_walk(body_buf, n, &entries), P2C2R_EPROTO);
    CHECK_EQ(any_task(body_buf + 4 + PROTO_BATCH_ENTRY_PREFIX, tl0 - 1), P2C2R_EPROTO);
}

/* ---- RESULT, DELIVER ---------------------------------------------------- */

static void check_result(uint64_t req_id, uint16_t status, uint32_t exec_us, const void *out,
                         size_t out_len)
{
    size_t n = proto_put_result_head(body_buf, status, exec_us);
    CHECK_EQU(n, PROTO_RESULT_PREFIX);
    if (out_len)
        memcpy(body_buf + n, out, out_len);
    n += out_len;
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_result o;
    if (CHECK(proto_parse_result(b, n, &o) == 0)) {
        CHECK_EQU(o.status, status);
        CHECK_EQU(o.exec_us, exec_us);
        CHECK_MEM(o.output.p, o.output.len, out, out_len);
        CHECK(out_len == 0 || o.output.p == b + PROTO_RESULT_PREFIX);
    }
    check_truncations(b, n, any_result, PROTO_RESULT_PREFIX);
    free(b);
    check_frame(MSG_RESULT, 0, req_id, body_buf, n);
}

static void check_deliver(uint64_t req_id, uint16_t status, uint16_t attempts, uint32_t exec_us,
                          uint32_t peer_id, const void *out, size_t out_len)
{
    size_t n = proto_put_deliver_head(body_buf, status, attempts, exec_us, peer_id, status ? 0 : PROTO_DELIVER_F_CACHED);
    CHECK_EQU(n, PROTO_DELIVER_PREFIX);
    if (out_len)
        memcpy(body_buf + n, out, out_len);
    n += out_len;
    uint8_t *b = dup_exact(body_buf, n);
    struct msg_deliver o;
    if (CHECK(proto_parse_deliver(b, n, &o) == 0)) {
        CHECK_EQU(o.status, status);
        CHECK_EQU(o.attempts, attempts);
        CHECK_EQU(o.exec_us, exec_us);
        CHECK_EQU(o.peer_id, peer_id);
        CHECK_EQU(o.flags, status ? 0u : PROTO_DELIVER_F_CACHED);
        CHECK_MEM(o.output.p, o.output.len, out, out_len);
        CHECK(out_len == 0 || o.output.p == b + PROTO_DELIVER_PREFIX);
    }
    check_truncations(b, n, any_deliver, PROTO_DELIVER_PREFIX);
    free(b);
    check_frame(MSG_DELIVER, 0, req_id, body_buf, n);
}

static void test_result_deliver(void)
{
    static uint8_t big[3000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i ^ (i >> 8));
    check_result(11, 0, 1234, "hello", 5);
    check_result(12, 0, 0, NULL, 0);
    check_result(13, (uint16_t)-P2C2R_ETASK, UINT32_MAX, "bad input", 9);
    check_result(UINT64_MAX, 0xffff, 1, big, sizeof(big));
    check_deliver(21, 0, 1, 1234, 7, "hello", 5);
    check_deliver(22, 0, 0, 0, 0, NULL, 0);
    check_deliver(23, (uint16_t)-P2C2R_ELOST, 4, 0, 0, "lost", 4);
    check_deliver(UINT64_MAX, 0xffff, 0xffff, UINT32_MAX, UINT32_MAX, big, sizeof(big));
}

/* ---- durable jobs: JOB_INFO records, JOB_SUBMIT as a checked batch ---------- */

static int any_job_info(const uint8_t *b, size_t n)
{
    struct msg_job_info m;
    size_t used;
    int rc = proto_parse_job_info(b, n, &m, &used);
    /* A record is a prefix of its body: the rest (a GET's output, the next
     * record of a list) is the caller's. */
    return rc == 0 && used != n ? P2C2R_EPROTO : rc;
}

/* A small well-formed task body (echo of "hi"); free it. */
static uint8_t *h_task_for_test(size_t *len)
{
    size_t n = proto_task_size(4, 0, 0, 2);
    uint8_t *b = malloc(n);
    if (!b)
        abort();
    size_t o = proto_put_task_head(b, "echo", 4, 0, 0, 0, NULL, 0, NULL, 0, 2);
    memcpy(b + o, "hi", 2);
    *len = n;
    return b;
}

static void test_job_info(void)
{
    struct msg_job_info m = {0};
    m.id = 0x0102030405060708ull;
    m.key = UINT64_MAX;
    m.submit_ms = 1796563443572ull;
    m.done_ms = 1796563443575ull;
    m.exec_us = 1622;
    m.peer_id = 7;
    m.flags = PROTO_DELIVER_F_VERIFIED;
    m.out_len = 32;
    m.status = (uint16_t)-P2C2R_ETASK;
    m.attempts = 2;
    m.state = 3;
    m.type.p = (const uint8_t *)"sha256";
    m.type.len = 6;
    uint8_t b[PROTO_JOB_INFO_FIXED + PROTO_MAX_TYPE_NAME + 4];
    size_t n = proto_put_job_info(b, &m);
    CHECK_EQU(n, proto_job_info_size(6));
    struct msg_job_info g;
    size_t used = 0;
    CHECK_EQ(proto_parse_job_info(b, n, &g, &used), 0);
    CHECK_EQU(used, n);
    CHECK(g.id == m.id && g.key == m.key && g.submit_ms == m.submit_ms && g.done_ms == m.done_ms);
    CHECK(g.exec_us == m.exec_us && g.peer_id == m.peer_id && g.flags == m.flags && g.out_len == 32);
    CHECK(g.status == m.status && g.attempts == 2 && g.state == 3);
    CHECK(g.type.len == 6 && memcmp(g.type.p, "sha256", 6) == 0 && view_inside(g.type, b, n));
    /* Every strict prefix is refused; a record followed by more bytes is
     * parsed as itself (used says where it ends). */
    for (size_t k = 0; k < n; k++) {
        uint8_t *c = dup_exact(b, k);
        CHECK_EQ(any_job_info(c, k), P2C2R_EPROTO);
        free(c);
    }
    b[n] = 0xee;
    CHECK_EQ(proto_parse_job_info(b, n + 1, &g, &used), 0);
    CHECK_EQU(used, n);
    /* A state outside 1..3, a type name over the limit. */
    b[52] = 0;
    CHECK_EQ(proto_parse_job_info(b, n, &g, &used), P2C2R_EPROTO);
    b[52] = 4;
    CHECK_EQ(proto_parse_job_info(b, n, &g, &used), P2C2R_EPROTO);
    b[52] = 1;
    b[53] = PROTO_MAX_TYPE_NAME + 1;
    CHECK_EQ(proto_parse_job_info(b, sizeof(b), &g, &used), P2C2R_EPROTO);
    b[53] = 6;
    check_frame(MSG_JOB_INFO, 0, 1ull << 63 | 5, b, n);
    uint8_t req[PROTO_JOB_REQ_LEN] = {PROTO_JOB_GET, PROTO_JOB_F_RELEASE, 1, 2, 3, 4, 5, 6, 7, 8};
    check_frame(MSG_JOB_REQ, 0, 1ull << 63 | 6, req, sizeof(req));
    CHECK(strcmp(proto_type_name(MSG_JOB_SUBMIT), "JOB_SUBMIT") == 0);
    CHECK(strcmp(proto_type_name(MSG_JOB_LIST_OK), "JOB_LIST_OK") == 0);

    /* proto_batch_check: a batch with one malformed task is refused whole. */
    uint8_t batch[256];
    size_t tl;
    uint8_t *task = h_task_for_test(&tl);
    wr32(batch, 2);
    size_t o = 4;
    for (int i = 0; i < 2; i++) {
        wr64(batch + o, (uint64_t)i + 1);
        wr32(batch + o + 8, (uint32_t)tl);
        memcpy(batch + o + PROTO_BATCH_ENTRY_PREFIX, task, tl);
        o += PROTO_BATCH_ENTRY_PREFIX + tl;
    }
    struct proto_batch_iter it;
    uint32_t count = 0;
    CHECK_EQ(proto_batch_check(batch, o, &it, &count), 0);
    CHECK_EQU(count, 2);
    batch[4 + PROTO_BATCH_ENTRY_PREFIX] = 0; /* the first task's type length */
    CHECK_EQ(proto_batch_check(batch, o, &it, &count), P2C2R_EPROTO);
    CHECK_EQ(proto_batch_check(batch, o - 1, &it, &count), P2C2R_EPROTO);
    free(task);
}

/* ---- empty and free-form bodies: CANCEL, STATS_REQ, STATS --------------- */

static void test_other_frames(void)
{
    check_frame(MSG_CANCEL, 0, 42, NULL, 0);
    check_frame(MSG_CANCEL, 0, UINT64_MAX, NULL, 0);
    check_frame(MSG_STATS_REQ, 0, 1ull << 63, NULL, 0);
    static const char json[] = "{\"tasks\":{\"queued\":0},\"types\":[],\"peers\":[]}";
    check_frame(MSG_STATS, 0, 1ull << 63, (const uint8_t *)json, sizeof(json) - 1);
}

/* ---- streams ------------------------------------------------------------ */

static void test_back_to_back(void)
{
    CHECK(nframes > 30);
    for (size_t i = 0; i + 1 < nframes; i++)
        check_back_to_back(stream + frames[i].off, frames[i].len, stream + frames[i + 1].off,
                           frames[i + 1].len);
    /* Each frame followed by itself. */
    for (size_t i = 0; i < nframes; i += 7)
        check_back_to_back(stream + frames[i].off, frames[i].len, stream + frames[i].off,
                           frames[i].len);
}

/* Every recorded frame, concatenated, read through a capped struct buf in
 * chunks of various sizes the way a connection's read loop does: each frame
 * comes out whole, in order, exactly once. */
static void test_stream(void)
{
    static const size_t chunks[] = {1, 2, 3, 7, 19, 20, 21, 64, 1000, 4096, STREAM_LEN};
    for (size_t c = 0; c < ARRAY_LEN(chunks); c++) {
        struct buf in;
        buf_init(&in, STREAM_LEN);
        size_t fed = 0, next = 0;
        int ok = 1;
        while (fed < stream_len && ok) {
            size_t k = chunks[c] < stream_len - fed ? chunks[c] : stream_len - fed;
            if (!CHECK(buf_append(&in, stream + fed, k) == 0))
                break;
            fed += k;
            for (;;) {
                struct frame_hdr h;
                int64_t r = proto_decode_hdr(buf_head(&in), buf_used(&in), PROTO_MAX_BODY_DEFAULT, &h);
                if (r == 0)
                    break;
                if (!CHECK(r > 0) || !CHECK(next < nframes)) {
                    ok = 0;
                    break;
                }
                const struct rec_frame *f = &frames[next++];
                CHECK_EQ(r, (int64_t)f->len);
                CHECK_EQU(h.type, f->type);
                CHECK_EQU(h.req_id, f->req_id);
                CHECK(memcmp(buf_head(&in), stream + f->off, f->len) == 0);
                buf_consume(&in, (size_t)r);
            }
        }
        CHECK_EQU(next, nframes);
        CHECK_EQU(buf_used(&in), 0);
        buf_fini(&in);
    }
}

int main(void)
{
    test_hdr_roundtrip();
    test_hdr_bad_magic();
    test_hdr_bad_version();
    test_hdr_max_body();
    test_type_names();
    test_hello();
    test_hello_ok();
    test_hello_ok_nonce();
    test_error();
    test_integers();
    test_register();
    test_register_example();
    test_register_auth();
    test_task();
    test_task_ext();
    test_batch();
    test_result_deliver();
    test_other_frames();
    test_job_info();
    test_back_to_back();
    test_stream();
    return check_report("test_proto");
}
