/* test_ws.c - the gateway's decoders: base64 (common/b64), WebSocket framing
 * and the message reader at every split point of a stream (common/ws), and
 * the JSON message decoder (coord/gwjson) on every message kind and refusal
 * of docs/GATEWAY.md. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/b64.h"
#include "common/ws.h"
#include "coord/gwjson.h"
#include "p2c2r/error.h"

static void test_b64(void)
{
    static const struct {
        const char *raw, *enc;
    } v[] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
             {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char e[16];
        uint8_t d[16];
        size_t n = strlen(v[i].raw);
        CHECK_EQU(b64_encode((const uint8_t *)v[i].raw, n, e), strlen(v[i].enc));
        CHECK(memcmp(e, v[i].enc, strlen(v[i].enc)) == 0);
        CHECK_EQ(b64_decode(v[i].enc, strlen(v[i].enc), d), (long)n);
        CHECK(memcmp(d, v[i].raw, n) == 0);
    }
    static const char *const bad[] = {"Zg=", "Zg", "Z===", "Zg==Zg==", "Zm9-", "Zm9_", "Zm 9", "=Zg=", "Zg=a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t d[16];
        CHECK_EQ(b64_decode(bad[i], strlen(bad[i]), d), -1);
    }
    /* Every byte value round-trips. */
    uint8_t all[256], back[260];
    char enc[400];
    for (int k = 0; k < 256; k++)
        all[k] = (uint8_t)k;
    size_t el = b64_encode(all, 256, enc);
    CHECK_EQ(b64_decode(enc, el, back), 256);
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_accept(void)
{
    char out[WS_ACCEPT_LEN + 1];
    /* RFC 6455 section 1.3's example. */
    CHECK_EQ(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out), 0);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK_EQ(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ=", 23, out), P2C2R_EPROTO);
    CHECK_EQ(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ!!", 24, out), P2C2R_EPROTO);
}

static void test_hdr(void)
{
    struct ws_hdr h;
    uint8_t b[WS_HDR_MAX];
    static const uint8_t mask[4] = {1, 2, 3, 4};
    static const uint64_t lens[] = {0, 125, 126, 65535, 65536, (uint64_t)1 << 40};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        for (int m = 0; m < 2; m++) {
            size_t hl = ws_put_hdr(b, 1, WS_OP_BINARY, lens[i], m ? mask : NULL);
            CHECK_EQ(ws_decode_hdr(b, hl, UINT64_MAX >> 1, &h), (int)hl);
            CHECK_EQU(h.len, lens[i]);
            CHECK_EQ(h.masked, m);
            for (size_t k = 0; k < hl; k++)
                CHECK_EQ(ws_decode_hdr(b, k, UINT64_MAX >> 1, &h), 0);
            if (lens[i] > 10)
                CHECK_EQ(ws_decode_hdr(b, hl, 10, &h), P2C2R_ETOOBIG);
        }
    }
    /* Refused: reserved bits, unknown opcodes, fragmented or long control
     * frames, lengths not in their shortest form or with the top bit. */
    static const uint8_t bad[][10] = {
        {0xc1, 0x00}, {0x83, 0x00}, {0x8b, 0x00}, {0x09, 0x00}, {0x89, 0x7e, 0x00, 0x7e},
        {0x82, 0x7e, 0x00, 0x10}, {0x82, 0x7f, 0, 0, 0, 0, 0, 0, 0xff, 0xff},
        {0x82, 0x7f, 0x80, 0, 0, 0, 0, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_EQ(ws_decode_hdr(bad[i], 10, UINT64_MAX, &h), P2C2R_EPROTO);
}

struct got {
    int ops[16];
    size_t lens[16];
    uint8_t data[16][64];
    int n;
};

static int collect(void *arg, int op, uint8_t *p, size_t n)
{
    struct got *g = arg;
    if (g->n < 16) {
        g->ops[g->n] = op;
        g->lens[g->n] = n;
        memcpy(g->data[g->n], p, n < 64 ? n : 64);
        g->n++;
    }
    return 0;
}

static size_t put_frame(uint8_t *dst, int fin, int op, const char *payload)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = strlen(payload);
    size_t hl = ws_put_hdr(dst, fin, op, n, mask);
    memcpy(dst + hl, payload, n);
    ws_mask(dst + hl, n, mask, 0);
    return hl + n;
}

/* A stream of a text message, a fragmented binary message with a ping
 * between its fragments, and a close, fed split at every point (the way the
 * gateway does: a partial frame kept and offered again with more bytes)
 * gives the same messages. */
static void test_reader_splits(void)
{
    uint8_t s[512];
    size_t n = 0;
    n += put_frame(s + n, 1, WS_OP_TEXT, "{\"msg_type\":\"stats_request\"}");
    n += put_frame(s + n, 0, WS_OP_BINARY, "abc");
    n += put_frame(s + n, 1, WS_OP_PING, "p");
    n += put_frame(s + n, 0, WS_OP_CONT, "def");
    n += put_frame(s + n, 1, WS_OP_CONT, "g");
    n += put_frame(s + n, 1, WS_OP_CLOSE, "\x03\xe8");
    for (size_t split = 0; split <= n; split++) {
        struct ws_reader r;
        ws_reader_init(&r, 1024, 1);
        struct got g;
        memset(&g, 0, sizeof(g));
        uint8_t copy[512], pend[512];
        memcpy(copy, s, n);
        size_t plen = 0;
        int stopped;
        /* first part */
        long used = ws_reader_feed(&r, copy, split, collect, &g, &stopped);
        CHECK(used >= 0);
        memcpy(pend, copy + used, split - (size_t)used);
        plen = split - (size_t)used;
        memcpy(pend + plen, copy + split, n - split);
        plen += n - split;
        used = ws_reader_feed(&r, pend, plen, collect, &g, &stopped);
        CHECK_EQ(used, (long)plen);
        if (CHECK(g.n == 4)) {
            CHECK(g.ops[0] == WS_OP_TEXT && g.lens[0] == 28 && memcmp(g.data[0], "{\"msg_type\"", 11) == 0);
            CHECK(g.ops[1] == WS_OP_PING && g.lens[1] == 1 && g.data[1][0] == 'p');
            CHECK(g.ops[2] == WS_OP_BINARY && g.lens[2] == 7 && memcmp(g.data[2], "abcdefg", 7) == 0);
            CHECK(g.ops[3] == WS_OP_CLOSE && g.lens[3] == 2);
        }
        ws_reader_fini(&r);
    }
}

static void test_reader_refusals(void)
{
    struct {
        uint8_t b[64];
        size_t n;
        long rc;
    } v[6];
    memset(v, 0, sizeof(v));
    v[0].n = put_frame(v[0].b, 1, WS_OP_CONT, "x"), v[0].rc = P2C2R_EPROTO; /* continuation without start */
    v[1].n = put_frame(v[1].b, 0, WS_OP_TEXT, "x");
    v[1].n += put_frame(v[1].b + v[1].n, 1, WS_OP_TEXT, "y"), v[1].rc = P2C2R_EPROTO; /* new message mid-way */
    v[2].n = ws_put_hdr(v[2].b, 1, WS_OP_TEXT, 2, NULL) + 2, v[2].rc = P2C2R_EPROTO; /* unmasked */
    v[3].n = put_frame(v[3].b, 1, WS_OP_TEXT, "0123456789abcdefg"), v[3].rc = P2C2R_ETOOBIG; /* over 16 */
    v[4].n = put_frame(v[4].b, 0, WS_OP_TEXT, "0123456789");
    v[4].n += put_frame(v[4].b + v[4].n, 1, WS_OP_CONT, "0123456789"), v[4].rc = P2C2R_ETOOBIG;
    v[5].n = put_frame(v[5].b, 1, WS_OP_TEXT, "0123456789abcdef"), v[5].rc = 0; /* exactly 16 */
    for (size_t i = 0; i < 6; i++) {
        struct ws_reader r;
        ws_reader_init(&r, 16, 1);
        struct got g;
        memset(&g, 0, sizeof(g));
        int stopped;
        long rc = ws_reader_feed(&r, v[i].b, v[i].n, collect, &g, &stopped);
        if (v[i].rc) {
            CHECK_EQ(rc, v[i].rc);
            CHECK(r.why != NULL);
        } else {
            CHECK_EQ(rc, (long)v[i].n);
        }
        ws_reader_fini(&r);
    }
}

static void test_utf8(void)
{
    static const char ok[] = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    CHECK(ws_utf8_ok((const uint8_t *)ok, strlen(ok)));
    CHECK(!ws_utf8_ok((const uint8_t *)"\xc0\xaf", 2));         /* overlong */
    CHECK(!ws_utf8_ok((const uint8_t *)"\xed\xa0\x80", 3));     /* surrogate */
    CHECK(!ws_utf8_ok((const uint8_t *)"\xf4\x90\x80\x80", 4)); /* past U+10FFFF */
    CHECK(!ws_utf8_ok((const uint8_t *)"\xe2\x82", 2));         /* cut */
    CHECK(!ws_utf8_ok((const uint8_t *)"\xff", 1));
}

static int dec(const char *t, struct gw_msg *m)
{
    char err[256];
    err[0] = '\0';
    int rc = gw_decode(t, strlen(t), m, err, sizeof(err));
    CHECK(rc == 0 || err[0] != '\0');
    return rc;
}

static void test_gwjson(void)
{
    struct gw_msg *m = malloc(sizeof(*m));
    CHECK_EQ(dec("{\"msg_type\":\"gamer_register\",\"client_id\":\"g\",\"token\":\"t\",\"binary_results\":true}", m), 0);
    CHECK(m->kind == GW_GAMER_REGISTER && m->name.len == 1 && m->token.len == 1 && m->binary_results);
    CHECK(m->text != NULL && m->doc == NULL); /* a flat message: the fast parser */
    gw_msg_free(m);
    /* The same message through jansson alone, and one the fast parser leaves to it. */
    static const char gr[] = "{\"msg_type\":\"gamer_register\",\"client_id\":\"g\"}";
    CHECK_EQ(gw_decode_ex(gr, strlen(gr), 0, m, NULL, 0), 0);
    CHECK(m->doc != NULL && m->text == NULL && m->name.len == 1);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"gamer_register\",\"client_id\":\"\\u00e9\"}", m), 0);
    CHECK(m->doc != NULL && m->name.len == 2);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"task_submit\",\"task_id\":\"a-1\",\"task_type\":\"echo\",\"data\":\"aGk=\","
                 "\"params\":{\"x\":1,\"y\":\"s\",\"z\":true,\"r\":0.5},\"priority\":\"background\","
                 "\"deadline_ms\":100}", m), 0);
    CHECK(m->kind == GW_TASK_SUBMIT && m->tid_len == 5 && memcmp(m->tid, "\"a-1\"", 5) == 0 && !m->tid_is_num);
    CHECK(m->priority == 2 && m->deadline_ms == 100 && m->data.len == 4);
    CHECK(m->params_len == strlen("x=1\ny=s\nz=1\nr=0.5\n") &&
          memcmp(m->params, "x=1\ny=s\nz=1\nr=0.5\n", m->params_len) == 0);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"task_submit\",\"task_id\":9007199254740992,\"task_type\":\"e\",\"data_frame\":true}", m), 0);
    CHECK(m->tid_is_num && m->tid_num == 9007199254740992ull && m->data_frame);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"task_result\",\"task_id\":\"18446744073709551615\",\"success\":false,"
                 "\"error\":\"no\",\"error_code\":\"ENOBLOB\",\"processing_time_ms\":2.5}", m), 0);
    CHECK(m->tid_is_num && m->tid_num == UINT64_MAX && !m->success && m->error_code == P2C2R_ENOBLOB);
    CHECK(m->exec_us == 2500);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"peer_register\",\"task_types\":[\"echo\",{\"name\":\"x\",\"version\":2,"
                 "\"deterministic\":false}],\"slots\":3,\"capabilities\":{\"cpu_cores\":8,\"ram_gb\":0.5},"
                 "\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\",\"signature\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAA"
                 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\"}", m), 0);
    CHECK(m->kind == GW_PEER_REGISTER && m->ntypes == 2 && m->types[0].det && !m->types[1].det &&
          m->types[1].version == 2 && m->slots == 3 && m->cores == 8 && m->mem_bytes == 536870912ull);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"blob_put\",\"request_id\":\"m\",\"data\":\"aGk=\"}", m), 0);
    CHECK(m->kind == GW_BLOB_PUT && m->tid_len == 3 && m->data.len == 4 && !m->data_frame);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"blobs\":["
                 "\"000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F\"]}", m), 0);
    CHECK(m->nblobs == 1 && m->blobs[0] == 0 && m->blobs[10] == 10 && m->blobs[31] == 31);
    gw_msg_free(m);
    CHECK_EQ(dec("{\"msg_type\":\"heartbeat\",\"slots\":4,\"load\":0.3}", m), 0);
    CHECK(m->credit == 4);
    gw_msg_free(m);
    static const struct {
        const char *t;
        int rc;
    } bad[] = {
        {"", P2C2R_EPROTO},
        {"[]", P2C2R_EPROTO},
        {"{\"msg_type\":1}", P2C2R_EPROTO},
        {"{\"msg_type\":\"nope\"}", P2C2R_EPROTO},
        {"{\"msg_type\":\"task_cancel\",\"msg_type\":\"task_cancel\",\"task_id\":1}", P2C2R_EPROTO},
        {"{\"msg_type\":\"task_cancel\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_cancel\",\"task_id\":-1}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_cancel\",\"task_id\":\"\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_cancel\",\"task_id\":\"a\\\"b\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_cancel\",\"task_id\":[1]}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"\",\"data\":\"\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"data_frame\":true}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"params\":{\"a=b\":1}}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"params\":{\"a\":\"x\\ny\"}}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"deadline_ms\":4294967296}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"priority\":\"urgent\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_result\",\"task_id\":\"abc\",\"success\":true,\"result\":\"\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_result\",\"task_id\":\"1\",\"success\":true}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_result\",\"task_id\":\"1\",\"success\":false,\"error_code\":\"EWHAT\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"peer_register\",\"task_types\":[\"echo\"]}", P2C2R_EINVAL},
        {"{\"msg_type\":\"peer_register\",\"task_types\":[],\"key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"heartbeat\",\"load\":-1}", P2C2R_EINVAL},
        {"{\"msg_type\":\"gamer_register\",\"binary_results\":1}", P2C2R_EINVAL},
        {"{\"msg_type\":\"blob_put\",\"request_id\":\"m\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"blob_put\",\"data\":\"\"}", P2C2R_EINVAL},
        {"{\"msg_type\":\"blob_put\",\"request_id\":1,\"data\":\"\",\"data_frame\":true}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"blobs\":[\"00\"]}", P2C2R_EINVAL},
        {"{\"msg_type\":\"task_submit\",\"task_id\":1,\"task_type\":\"e\",\"data\":\"\",\"blobs\":{}}", P2C2R_EINVAL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = dec(bad[i].t, m);
        if (!CHECK(rc == bad[i].rc))
            fprintf(stderr, "  message %zu: %s\n", i, bad[i].t);
        CHECK(m->doc == NULL);
    }
    /* Writers: escapes, and bytes that are not UTF-8 as U+0080..U+00FF. */
    struct buf o;
    buf_init(&o, 1024);
    CHECK_EQ(gw_put_str(&o, "a\"\\\n\x01\xc3\xa9", 7), 0);
    CHECK_EQU(buf_used(&o), strlen("\"a\\\"\\\\\\u000a\\u0001\xc3\xa9\""));
    CHECK(memcmp(buf_head(&o), "\"a\\\"\\\\\\u000a\\u0001\xc3\xa9\"", buf_used(&o)) == 0);
    buf_consume(&o, buf_used(&o));
    CHECK_EQ(gw_put_str(&o, "\xff", 1), 0);
    CHECK(buf_used(&o) == 8 && memcmp(buf_head(&o), "\"\\u00ff\"", 8) == 0);
    static const struct {
        int ms;
        uint64_t v;
        const char *want;
    } nums[] = {{0, 0, "0"}, {0, 7, "7"}, {0, UINT64_MAX, "18446744073709551615"}, {1, 0, "0.000"},
                {1, 5, "0.005"}, {1, 1234567, "1234.567"}, {1, 1000, "1.000"}};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        buf_consume(&o, buf_used(&o));
        CHECK_EQ(nums[i].ms ? gw_put_ms(&o, nums[i].v) : gw_put_u64(&o, nums[i].v), 0);
        CHECK(buf_used(&o) == strlen(nums[i].want) && memcmp(buf_head(&o), nums[i].want, buf_used(&o)) == 0);
    }
    buf_fini(&o);
    free(m);
}

int main(void)
{
    test_b64();
    test_accept();
    test_hdr();
    test_reader_splits();
    test_reader_refusals();
    test_utf8();
    test_gwjson();
    return check_report("test_ws");
}
