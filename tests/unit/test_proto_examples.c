/* test_proto_examples.c - the frames shown in docs/PROTOCOL.md section 13
 * are frames the code reads and writes.
 *
 * The test reads the document itself (path as argv[1]), takes every hex
 * dump of section 13 (lines "OFFS  xx xx ..." inside code fences, a new
 * frame at each offset 0000, and the one-line `50 32 43 52 ...` frames),
 * and for each: the header decodes, body_len matches the bytes shown, and
 * the body parses with the decoder of its type.  The SUBMIT, DELIVER and
 * RESULT examples are also rebuilt with the encoders and compared byte for
 * byte, and their field labels checked, so the text cannot drift from the
 * code unnoticed.  A PEER_REGISTER example's signature must verify over the
 * nonce and conn_id of the peer's HELLO_OK example before it; the one with a pool
 * block names the cloud pool at cost 5. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/ident.h"
#include "common/proto.h"

#define MAX_FRAMES 64

struct frame {
    uint8_t b[512];
    size_t n;
};

static struct frame frames[MAX_FRAMES];
static int nframes;

static int hexval(int c) { return isdigit(c) ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

/* Appends the hex byte pairs of s (up to two spaces in a row; stops at a
 * wider gap or the first non-hex word, where the ASCII column starts). */
static void take_hex(struct frame *f, const char *s)
{
    int spaces = 0;
    while (*s) {
        if (*s == ' ') {
            if (++spaces > 2)
                return;
            s++;
            continue;
        }
        int hi = hexval((unsigned char)s[0]), lo = s[1] ? hexval((unsigned char)s[1]) : -1;
        if (hi < 0 || lo < 0 || (s[2] && s[2] != ' ' && s[2] != '\n' && s[2] != '`') || f->n >= sizeof(f->b))
            return;
        f->b[f->n++] = (uint8_t)(hi << 4 | lo);
        s += 2;
        spaces = 0;
    }
}

static void load(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!CHECK(fp != NULL)) {
        fprintf(stderr, "cannot open %s\n", path);
        return;
    }
    char line[512];
    int in_examples = 0, in_fence = 0;
    while (fgets(line, sizeof(line), fp)) {
        if (strncmp(line, "## ", 3) == 0)
            in_examples = strncmp(line, "## 13.", 6) == 0;
        if (!in_examples)
            continue;
        if (strncmp(line, "```", 3) == 0) {
            in_fence = !in_fence;
            continue;
        }
        const char *tick = strstr(line, "`50 32 43 52");
        if (!in_fence && tick && nframes < MAX_FRAMES) {
            take_hex(&frames[nframes++], tick + 1);
            continue;
        }
        if (!in_fence || strlen(line) < 6 || strspn(line, "0123456789abcdef") != 4 || line[4] != ' ' ||
            line[5] != ' ')
            continue;
        if (strncmp(line, "0000", 4) == 0 && nframes < MAX_FRAMES)
            nframes++;
        if (nframes == 0)
            continue;
        struct frame *f = &frames[nframes - 1];
        /* The offset column must agree with the bytes so far. */
        if (!CHECK((size_t)strtoul(line, NULL, 16) == f->n))
            fprintf(stderr, "offset column %.4s, but %zu bytes so far\n", line, f->n);
        take_hex(f, line + 6);
    }
    fclose(fp);
}

/* The documented frame of this type (the first), or NULL. */
static const struct frame *find(uint8_t type, int nth)
{
    for (int i = 0; i < nframes; i++)
        if (frames[i].n >= PROTO_HDR_LEN && frames[i].b[5] == type && nth-- == 0)
            return &frames[i];
    return NULL;
}

static void check_all_parse(void)
{
    CHECK(nframes >= 15);
    struct msg_hello_ok peer_ok;
    int have_peer_ok = 0, signed_regs = 0, pooled_regs = 0;
    for (int i = 0; i < nframes; i++) {
        const struct frame *f = &frames[i];
        struct frame_hdr h;
        int64_t fl = proto_decode_hdr(f->b, f->n, PROTO_MAX_BODY_DEFAULT, &h);
        if (!CHECK(fl == (int64_t)f->n)) {
            fprintf(stderr, "example %d (type 0x%02x): header says %lld bytes, the dump shows %zu\n", i,
                    f->n > 5 ? f->b[5] : 0, (long long)fl, f->n);
            continue;
        }
        const uint8_t *b = f->b + PROTO_HDR_LEN;
        size_t n = h.body_len;
        int rc = 0;
        union {
            struct msg_hello hello;
            struct msg_hello_ok ok;
            struct msg_register reg;
            struct msg_task task;
            struct msg_result res;
            struct msg_deliver del;
            struct msg_error err;
        } m;
        uint32_t u32;
        uint64_t u64;
        switch (h.type) {
        case MSG_HELLO: rc = proto_parse_hello(b, n, &m.hello); break;
        case MSG_HELLO_OK: rc = proto_parse_hello_ok(b, n, &m.ok); break;
        case MSG_PEER_REGISTER: rc = proto_parse_register(b, n, &m.reg); break;
        case MSG_REGISTER_OK: rc = proto_parse_u64(b, n, &u64); break;
        case MSG_SUBMIT:
        case MSG_ASSIGN: rc = proto_parse_task(b, n, &m.task); break;
        case MSG_ACCEPTED:
        case MSG_CREDIT: rc = proto_parse_u32(b, n, &u32); break;
        case MSG_RESULT: rc = proto_parse_result(b, n, &m.res); break;
        case MSG_DELIVER: rc = proto_parse_deliver(b, n, &m.del); break;
        case MSG_REJECTED:
        case MSG_ERROR: rc = proto_parse_error(b, n, &m.err); break;
        case MSG_CANCEL: rc = n == 0 ? 0 : -1; break;
        case MSG_SUBMIT_BATCH: {
            struct proto_batch_iter it;
            uint32_t count;
            uint64_t id;
            const uint8_t *tb;
            size_t tl;
            rc = proto_batch_begin(b, n, &it, &count);
            int k = 0;
            while (rc == 0 && (rc = proto_batch_next(&it, &id, &tb, &tl)) == 1) {
                rc = proto_parse_task(tb, tl, &m.task);
                k++;
            }
            CHECK(k == 2);
            break;
        }
        default: rc = -1; break;
        }
        if (!CHECK(rc == 0)) {
            fprintf(stderr, "example %d: %s body does not parse\n", i, proto_type_name(h.type));
            continue;
        }
        if (h.type == MSG_HELLO_OK && m.ok.has_nonce) {
            peer_ok = m.ok;
            have_peer_ok = 1;
        }
        if (h.type == MSG_PEER_REGISTER && CHECK(m.reg.pk != NULL) && CHECK(have_peer_ok)) {
            signed_regs++;
            /* The example with a pool block: a cloud peer at cost 5. */
            if (m.reg.has_pool) {
                pooled_regs++;
                CHECK(m.reg.pool == PROTO_POOL_CLOUD && m.reg.cost == 5);
            }
            if (!CHECK(ident_verify_challenge(m.reg.pk, peer_ok.nonce, peer_ok.conn_id, b, m.reg.signed_len,
                                              m.reg.sig) == 0))
                fprintf(stderr, "example %d: the PEER_REGISTER signature does not verify\n", i);
        }
    }
    CHECK(signed_regs >= 2);
    CHECK(pooled_regs == 1);
}

static void check_submit(void)
{
    const struct frame *f = find(MSG_SUBMIT, 0);
    if (!CHECK(f != NULL))
        return;
    struct msg_task t;
    CHECK(proto_parse_task(f->b + PROTO_HDR_LEN, f->n - PROTO_HDR_LEN, &t) == 0);
    CHECK(t.type.len == 6 && memcmp(t.type.p, "sha256", 6) == 0);
    CHECK(t.priority == 0 && t.nblobs == 0 && t.flags == 0 && t.min_version == 1 && t.deadline_ms == 250);
    uint8_t b[256];
    proto_put_hdr(b, MSG_SUBMIT, PROTO_F_WANT_ACK, 7, (uint32_t)(f->n - PROTO_HDR_LEN));
    size_t n = PROTO_HDR_LEN + proto_put_task_head(b + PROTO_HDR_LEN, "sha256", 6, 1, 250, 0, "format=hex\n",
                                                   11, NULL, 0, 3);
    memcpy(b + n, "abc", 3);
    n += 3;
    CHECK(n == f->n && memcmp(b, f->b, n) == 0);
    /* The ASSIGN example carries the SUBMIT body unchanged. */
    const struct frame *a = find(MSG_ASSIGN, 0);
    if (CHECK(a != NULL))
        CHECK(a->n == f->n && memcmp(a->b + PROTO_HDR_LEN, f->b + PROTO_HDR_LEN, f->n - PROTO_HDR_LEN) == 0);
}

static void check_result_deliver(void)
{
    const struct frame *r = find(MSG_RESULT, 0), *d = find(MSG_DELIVER, 0);
    if (!CHECK(r != NULL && d != NULL))
        return;
    struct msg_result mr;
    struct msg_deliver md;
    CHECK(proto_parse_result(r->b + PROTO_HDR_LEN, r->n - PROTO_HDR_LEN, &mr) == 0);
    CHECK(proto_parse_deliver(d->b + PROTO_HDR_LEN, d->n - PROTO_HDR_LEN, &md) == 0);
    CHECK(mr.status == 0 && mr.exec_us == 42 && mr.output.len == 64);
    CHECK(md.status == 0 && md.attempts == 1 && md.exec_us == 42 && md.peer_id == 1 && md.flags == 0);
    CHECK(md.output.len == mr.output.len && memcmp(md.output.p, mr.output.p, mr.output.len) == 0);
    uint8_t b[256];
    proto_put_hdr(b, MSG_DELIVER, 0, 7, (uint32_t)(PROTO_DELIVER_PREFIX + mr.output.len));
    proto_put_deliver_head(b + PROTO_HDR_LEN, 0, 1, 42, 1, 0);
    memcpy(b + PROTO_HDR_LEN + PROTO_DELIVER_PREFIX, mr.output.p, mr.output.len);
    CHECK(d->n == PROTO_HDR_LEN + PROTO_DELIVER_PREFIX + mr.output.len && memcmp(b, d->b, d->n) == 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s docs/PROTOCOL.md\n", argv[0]);
        return 2;
    }
    load(argv[1]);
    check_all_parse();
    check_submit();
    check_result_deliver();
    return check_report("test_proto_examples");
}
