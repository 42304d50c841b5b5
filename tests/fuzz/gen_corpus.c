/* gen_corpus.c - writes the fuzz targets' seed corpus.
 *
 * Usage: gen_corpus DIR   (normally DIR = tests/fuzz/corpus)
 * Writes DIR/fuzz_frame/<name>: a valid frame of every message type, whole
 * conversations as each role sends and receives them, and a few broken
 * streams; and DIR/fuzz_body/<name>: a selector byte and a body for every
 * body parser.  Everything is built with the proto_put_* encoders, so the
 * seeds follow the codec; the output is deterministic, so regenerating an
 * unchanged protocol changes no file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/proto.h"
#include "fuzz_msg.h"
#include "p2c2r/error.h"

static const char *out_dir;
static int failed;

static void write_file(const char *target, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", out_dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        failed = 1;
        return;
    }
    snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0) {
        perror(path);
        failed = 1;
    }
}

/* A growing byte string. */
struct bytes {
    uint8_t p[1u << 16];
    size_t n;
};

static uint8_t *bytes_room(struct bytes *b, size_t n)
{
    if (b->n + n > sizeof(b->p)) {
        fprintf(stderr, "gen_corpus: seed too large\n");
        exit(1);
    }
    uint8_t *p = b->p + b->n;
    b->n += n;
    return p;
}

/* ---- bodies --------------------------------------------------------------- */

static size_t body_hello(uint8_t *d, uint8_t role, const char *token, const char *name)
{
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, role, {NULL, 0}, {NULL, 0}};
    if (token)
        m.token = (struct bytes_view){(const uint8_t *)token, strlen(token)};
    if (name)
        m.name = (struct bytes_view){(const uint8_t *)name, strlen(name)};
    return proto_put_hello(d, &m);
}

/* peer: with the 32-byte challenge a peer-role connection gets. */
static size_t body_hello_ok(uint8_t *d, int peer)
{
    struct msg_hello_ok m = {PROTO_VERSION, PROTO_MAX_BODY_DEFAULT, 1024, 7, 0, {0}};
    if (peer) {
        m.has_nonce = 1;
        for (int i = 0; i < PROTO_NONCE_LEN; i++)
            m.nonce[i] = (uint8_t)(i * 7 + 1);
    }
    return proto_put_hello_ok(d, &m);
}

/* auth: with a public key and a signature (of fixed bytes, not a valid
 * one: the fuzzers parse, and a coordinator answers EAUTH). */
/* pooled: with the pool block (cloud, cost 5). */
static size_t body_register_ext(uint8_t *d, int many, int auth, int pooled)
{
    static uint8_t pk[PROTO_PK_LEN], sig[PROTO_SIG_LEN];
    for (int i = 0; i < PROTO_PK_LEN; i++)
        pk[i] = (uint8_t)(0x40 + i);
    for (int i = 0; i < PROTO_SIG_LEN; i++)
        sig[i] = (uint8_t)(0xc0 ^ i);
    static const char *const names[] = {"echo", "sha256", "render", "x"};
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 8;
    m.slots = 4;
    m.mem_bytes = 16ull << 30;
    m.gpu = many ? 1 : 0;
    if (many)
        m.gpu_model = (struct bytes_view){(const uint8_t *)"RTX 4090", 8};
    m.ntypes = many ? PROTO_MAX_TYPES : 2;
    for (unsigned i = 0; i < m.ntypes; i++) {
        const char *nm = names[i % 4];
        /* The long form spreads its flags over every bit, unknown ones
         * included (receivers ignore those). */
        uint8_t fl = many ? (uint8_t)(i * 0x25u) : PROTO_TYPE_F_DETERMINISTIC;
        m.types[i] = (struct proto_tasktype){{(const uint8_t *)nm, strlen(nm)}, 1 + i, fl};
    }
    if (auth) {
        m.pk = pk;
        m.sig = sig;
    }
    if (pooled) {
        m.has_pool = 1;
        m.pool = PROTO_POOL_CLOUD;
        m.cost = 5;
    }
    return proto_put_register(d, &m);
}

static size_t body_register(uint8_t *d, int many, int auth)
{
    return body_register_ext(d, many, auth, 0);
}

static size_t body_task(uint8_t *d, const char *type, const char *params, const void *in,
                        size_t in_len)
{
    size_t pl = params ? strlen(params) : 0;
    size_t o = proto_put_task_head(d, type, strlen(type), 1, 5000, 1, params, pl, NULL, 0,
                                   (uint32_t)in_len);
    if (in_len)
        memcpy(d + o, in, in_len);
    return o + in_len;
}

static size_t body_batch(uint8_t *d)
{
    size_t o = 4;
    wr32(d, 3);
    static const struct {
        const char *type, *params, *input;
    } t[] = {
        {"echo", NULL, "hello"},
        {"sha256", "format=hex\n", "abc"},
        {"sha256", NULL, ""},
    };
    for (size_t i = 0; i < 3; i++) {
        size_t tl = body_task(d + o + PROTO_BATCH_ENTRY_PREFIX, t[i].type, t[i].params,
                              t[i].input, strlen(t[i].input));
        wr64(d + o, 100 + i);
        wr32(d + o + 8, (uint32_t)tl);
        o += PROTO_BATCH_ENTRY_PREFIX + tl;
    }
    return o;
}

static size_t body_result(uint8_t *d, uint16_t status, const char *out)
{
    size_t o = proto_put_result_head(d, status, 1500);
    memcpy(d + o, out, strlen(out));
    return o + strlen(out);
}

static size_t body_deliver(uint8_t *d, uint16_t status, const char *out)
{
    size_t o = proto_put_deliver_head(d, status, 1, 1500, 3, 0);
    memcpy(d + o, out, strlen(out));
    return o + strlen(out);
}

static size_t body_u32(uint8_t *d, uint32_t v)
{
    wr32(d, v);
    return 4;
}

static size_t body_u64(uint8_t *d, uint64_t v)
{
    wr64(d, v);
    return 8;
}

static const char stats_json[] =
    "{\"tasks\":{\"queued\":0,\"running\":1},\"types\":[{\"name\":\"echo\"}],\"peers\":[]}";

/* ---- frames ------------------------------------------------------------- */

/* Every body is built in B, then framed or written from there. */
static uint8_t B[1u << 15];

/* Appends a frame whose body is the first n bytes of B. */
static void add_frame(struct bytes *s, uint8_t type, uint16_t flags, uint64_t req_id, size_t n)
{
    uint8_t *f = bytes_room(s, PROTO_HDR_LEN + n);
    proto_put_hdr(f, type, flags, req_id, (uint32_t)n);
    if (n)
        memcpy(f + PROTO_HDR_LEN, B, n);
}

static size_t body_stats(uint8_t *d)
{
    memcpy(d, stats_json, sizeof(stats_json) - 1);
    return sizeof(stats_json) - 1;
}

static void frames(void)
{
    static struct bytes s;
    const char *T = "fuzz_frame";
#define ONE(name, type, flags, req_id, build)                                         \
    do {                                                                              \
        s.n = 0;                                                                      \
        add_frame(&s, type, flags, req_id, build);                                    \
        write_file(T, name, s.p, s.n);                                                \
    } while (0)
    ONE("hello_renter", MSG_HELLO, 0, 0, body_hello(B, ROLE_RENTER, "s3cret", "renter-1"));
    ONE("hello_peer", MSG_HELLO, 0, 1, body_hello(B, ROLE_PEER, NULL, "peer-1"));
    ONE("hello_ok", MSG_HELLO_OK, 0, 0, body_hello_ok(B, 0));
    ONE("hello_ok_peer", MSG_HELLO_OK, 0, 1, body_hello_ok(B, 1));
    ONE("error", MSG_ERROR, 0, 0,
        proto_put_error(B, (uint16_t)-P2C2R_EAUTH, "bad token", 9));
    ONE("ping", MSG_PING, 0, 5, body_u64(B, 123456789));
    ONE("pong", MSG_PONG, 0, 5, body_u64(B, 123456789));
    ONE("peer_register", MSG_PEER_REGISTER, 0, 2, body_register(B, 0, 1));
    ONE("peer_register_max", MSG_PEER_REGISTER, 0, 2, body_register(B, 1, 1));
    ONE("peer_register_noauth", MSG_PEER_REGISTER, 0, 2, body_register(B, 0, 0));
    ONE("peer_register_pool", MSG_PEER_REGISTER, 0, 2, body_register_ext(B, 0, 1, 1));
    ONE("register_ok", MSG_REGISTER_OK, 0, 2, body_u64(B, 1));
    ONE("credit", MSG_CREDIT, 0, 0, body_u32(B, 4));
    ONE("submit_echo", MSG_SUBMIT, PROTO_F_WANT_ACK, 1, body_task(B, "echo", NULL, "hello", 5));
    ONE("submit_sha256_hex", MSG_SUBMIT, 0, 2, body_task(B, "sha256", "format=hex\n", "abc", 3));
    ONE("submit_sha256_bad", MSG_SUBMIT, 0, 3, body_task(B, "sha256", "format=b64\n", "abc", 3));
    ONE("submit_batch", MSG_SUBMIT_BATCH, PROTO_F_WANT_ACK, 9, body_batch(B));
    ONE("accepted", MSG_ACCEPTED, 0, 9, body_u32(B, 3));
    ONE("rejected", MSG_REJECTED, 0, 3,
        proto_put_error(B, (uint16_t)-P2C2R_EQUEUEFULL, "queue full", 10));
    ONE("cancel", MSG_CANCEL, 0, 2, 0);
    ONE("assign", MSG_ASSIGN, 0, 77, body_task(B, "sha256", NULL, "abc", 3));
    ONE("result", MSG_RESULT, 0, 77, body_result(B, 0, "hello"));
    ONE("result_error", MSG_RESULT, 0, 78,
        body_result(B, (uint16_t)-P2C2R_ETASK, "param format must be raw or hex"));
    ONE("deliver", MSG_DELIVER, 0, 1, body_deliver(B, 0, "hello"));
    ONE("stats_req", MSG_STATS_REQ, 0, 1ull << 63, 0);
    ONE("stats", MSG_STATS, 0, 1ull << 63,
        body_stats(B));

    /* Whole conversations, one direction each. */
    s.n = 0;
    add_frame(&s, MSG_HELLO, 0, 0, body_hello(B, ROLE_RENTER, NULL, "r"));
    add_frame(&s, MSG_SUBMIT, PROTO_F_WANT_ACK, 1, body_task(B, "echo", NULL, "hi", 2));
    add_frame(&s, MSG_SUBMIT_BATCH, 0, 2, body_batch(B));
    add_frame(&s, MSG_CANCEL, 0, 1, 0);
    add_frame(&s, MSG_PING, 0, 3, body_u64(B, 3));
    add_frame(&s, MSG_STATS_REQ, 0, 4, 0);
    write_file(T, "stream_renter_out", s.p, s.n);

    s.n = 0;
    add_frame(&s, MSG_HELLO_OK, 0, 0, body_hello_ok(B, 0));
    add_frame(&s, MSG_ACCEPTED, 0, 1, body_u32(B, 1));
    add_frame(&s, MSG_DELIVER, 0, 1, body_deliver(B, 0, "hi"));
    add_frame(&s, MSG_REJECTED, 0, 100,
          proto_put_error(B, (uint16_t)-P2C2R_EUNSUPPORTED, "no peer", 7));
    add_frame(&s, MSG_PONG, 0, 3, body_u64(B, 3));
    add_frame(&s, MSG_STATS, 0, 4,
          body_stats(B));
    add_frame(&s, MSG_ERROR, 0, 0, proto_put_error(B, (uint16_t)-P2C2R_ESHUTDOWN, "bye", 3));
    write_file(T, "stream_renter_in", s.p, s.n);

    s.n = 0;
    add_frame(&s, MSG_HELLO, 0, 1, body_hello(B, ROLE_PEER, "tok", "peer"));
    add_frame(&s, MSG_PEER_REGISTER, 0, 2, body_register(B, 0, 1));
    add_frame(&s, MSG_CREDIT, 0, 0, body_u32(B, 8));
    add_frame(&s, MSG_RESULT, 0, 77, body_result(B, 0, "out"));
    add_frame(&s, MSG_PONG, 0, 9, body_u64(B, 9));
    write_file(T, "stream_peer_out", s.p, s.n);

    s.n = 0;
    add_frame(&s, MSG_HELLO_OK, 0, 1, body_hello_ok(B, 1));
    add_frame(&s, MSG_REGISTER_OK, 0, 2, body_u64(B, 1));
    add_frame(&s, MSG_ASSIGN, 0, 77, body_task(B, "echo", NULL, "out", 3));
    add_frame(&s, MSG_CANCEL, 0, 77, 0);
    add_frame(&s, MSG_PING, 0, 9, body_u64(B, 9));
    write_file(T, "stream_peer_in", s.p, s.n);

    /* Broken streams: a frame cut short, bad magic and version after a good
     * frame, and a body over any limit. */
    s.n = 0;
    add_frame(&s, MSG_SUBMIT, 0, 1, body_task(B, "echo", NULL, "hello", 5));
    write_file(T, "cut_short", s.p, s.n - 3);
    add_frame(&s, MSG_PING, 0, 1, body_u64(B, 1));
    s.p[s.n - 28 + 2] = 'X';
    write_file(T, "bad_magic_second", s.p, s.n);
    s.p[s.n - 28 + 2] = 'C';
    s.p[s.n - 28 + 4] = 2;
    write_file(T, "bad_version_second", s.p, s.n);
    s.n = 0;
    uint8_t *h = bytes_room(&s, PROTO_HDR_LEN);
    proto_put_hdr(h, MSG_SUBMIT, 0, 1, UINT32_MAX);
    write_file(T, "too_big", s.p, s.n);
#undef ONE
}

/* ---- bodies for fuzz_body ------------------------------------------------ */

/* Writes a fuzz_body seed: the parser selector, then the first n bytes of B. */
static void add_body(const char *name, enum fuzz_parser parser, size_t n)
{
    static uint8_t b[1 + sizeof(B)];
    b[0] = (uint8_t)parser;
    memcpy(b + 1, B, n);
    write_file("fuzz_body", name, b, 1 + n);
}

static void bodies(void)
{
    add_body("hello", FUZZ_P_HELLO, body_hello(B, ROLE_PEER, "token", "name"));
    add_body("hello_ok", FUZZ_P_HELLO_OK, body_hello_ok(B, 0));
    add_body("hello_ok_peer", FUZZ_P_HELLO_OK, body_hello_ok(B, 1));
    add_body("error", FUZZ_P_ERROR, proto_put_error(B, 7, "bad frame", 9));
    add_body("register", FUZZ_P_REGISTER, body_register(B, 0, 1));
    add_body("register_max", FUZZ_P_REGISTER, body_register(B, 1, 1));
    add_body("register_noauth", FUZZ_P_REGISTER, body_register(B, 0, 0));
    add_body("register_pool", FUZZ_P_REGISTER, body_register_ext(B, 0, 1, 1));
    add_body("task_echo", FUZZ_P_TASK, body_task(B, "echo", "a=1\n", "hello", 5));
    add_body("task_sha256_hex", FUZZ_P_TASK, body_task(B, "sha256", "format=hex\n", "abc", 3));
    add_body("task_sha256_raw", FUZZ_P_TASK,
             body_task(B, "sha256", "k=v\nformat=raw", "0123456789abcdef0123456789abcdef", 32));
    add_body("task_sha256_bad", FUZZ_P_TASK, body_task(B, "sha256", "format=HEX\n", "abc", 3));
    add_body("task_unknown", FUZZ_P_TASK, body_task(B, "render", NULL, "scene", 5));
    add_body("result", FUZZ_P_RESULT, body_result(B, 0, "hello"));
    add_body("deliver", FUZZ_P_DELIVER, body_deliver(B, 0, "hello"));
    add_body("u32", FUZZ_P_U32, body_u32(B, 4));
    add_body("u64", FUZZ_P_U64, body_u64(B, 5));
    add_body("batch", FUZZ_P_BATCH, body_batch(B));
    struct msg_job_info ji = {.id = 42, .key = 7, .submit_ms = 1796563443572ull, .done_ms = 1796563443575ull,
                              .exec_us = 1622, .peer_id = 3, .flags = PROTO_DELIVER_F_VERIFIED, .out_len = 32,
                              .status = 0, .attempts = 2, .state = 3,
                              .type = {(const uint8_t *)"sha256", 6}};
    add_body("job_info", FUZZ_P_JOB_INFO, proto_put_job_info(B, &ji));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "Usage: %s DIR\nWrites the fuzz seed corpus under DIR "
                        "(normally tests/fuzz/corpus).\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        perror(out_dir);
        return 1;
    }
    frames();
    bodies();
    return failed;
}
