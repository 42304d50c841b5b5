/* fuzz_ws.c - libFuzzer target: the input is the byte stream a WebSocket
 * client sends the gateway after the upgrade (src/common/ws.c).
 *
 * The first byte chooses a split point; the rest is fed to a reader with a
 * small message limit in two parts, the way the gateway does (a partial
 * frame is kept and offered again with the next bytes), and then again in
 * one part.  Checked: the reader never reads or writes outside the bytes it
 * is given (each feed works on a heap copy of exactly those bytes), it
 * consumes whole frames only, every message it hands over is within the
 * limit and every control frame within 125 bytes, an error comes with a
 * reason, and the messages do not depend on where the stream was split. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ws.h"
#include "p2c2r/error.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define LIMIT 300

struct sink {
    uint64_t hash; /* over every message: op, length, bytes */
    unsigned n;
};

static int take(void *arg, int op, uint8_t *p, size_t n)
{
    struct sink *s = arg;
    CHECK_FUZZ(op == WS_OP_TEXT || op == WS_OP_BINARY || op == WS_OP_CLOSE || op == WS_OP_PING ||
               op == WS_OP_PONG);
    CHECK_FUZZ(op >= WS_OP_CLOSE ? n <= WS_CONTROL_MAX : n <= LIMIT);
    s->hash = (s->hash ^ (uint64_t)op ^ (uint64_t)n << 8) * 0x100000001b3ull;
    for (size_t k = 0; k < n; k++)
        s->hash = (s->hash ^ p[k]) * 0x100000001b3ull;
    s->n++;
    return 0;
}

/* Feeds the stream in two parts; returns the final status (bytes left
 * unconsumed at the end, or an error). */
static long run(const uint8_t *in, size_t n, size_t split, struct sink *s)
{
    struct ws_reader r;
    ws_reader_init(&r, LIMIT, 1);
    memset(s, 0, sizeof(*s));
    uint8_t *a = malloc(split ? split : 1);
    memcpy(a, in, split);
    int stopped;
    long rc = ws_reader_feed(&r, a, split, take, s, &stopped);
    long result;
    if (rc < 0) {
        CHECK_FUZZ(r.why != NULL && (rc == P2C2R_EPROTO || rc == P2C2R_ETOOBIG));
        result = rc;
    } else {
        CHECK_FUZZ((size_t)rc <= split);
        size_t keep = split - (size_t)rc, rest = keep + (n - split);
        uint8_t *b = malloc(rest ? rest : 1);
        memcpy(b, a + rc, keep);
        memcpy(b + keep, in + split, n - split);
        long rc2 = ws_reader_feed(&r, b, rest, take, s, &stopped);
        if (rc2 < 0)
            CHECK_FUZZ(r.why != NULL && (rc2 == P2C2R_EPROTO || rc2 == P2C2R_ETOOBIG));
        else
            CHECK_FUZZ((size_t)rc2 <= rest);
        result = rc2 < 0 ? rc2 : (long)(rest - (size_t)rc2);
        free(b);
    }
    free(a);
    ws_reader_fini(&r);
    return result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const uint8_t *in = data + 1;
    size_t n = size - 1, split = n ? data[0] % (n + 1) : 0;
    struct sink whole, parts;
    long a = run(in, n, n, &whole);
    long b = run(in, n, split, &parts);
    /* An error found early may hide messages after it; otherwise the split
     * changes nothing. */
    if (a >= 0 && b >= 0) {
        CHECK_FUZZ(a == b);
        CHECK_FUZZ(whole.n == parts.n && whole.hash == parts.hash);
    } else {
        CHECK_FUZZ(a == b);
    }
    /* The header decoder alone, on the raw bytes. */
    struct ws_hdr h;
    int hl = ws_decode_hdr(in, n, LIMIT, &h);
    CHECK_FUZZ(hl == 0 || hl == P2C2R_EPROTO || hl == P2C2R_ETOOBIG || (hl >= 2 && hl <= WS_HDR_MAX && (size_t)hl <= n));
    return 0;
}
