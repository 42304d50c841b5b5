/* fuzz_http.c - libFuzzer target: the input is what a client of the
 * metrics endpoint sends (src/coord/metrics_http.c, mhttp_parse_head).
 *
 * The whole input is parsed as the server does with a full buffer, then
 * again and again from where each head ends, as pipelined requests are.
 * Every result is checked against the parser's contract: the return value
 * is a head length within the input and MHTTP_HEAD_MAX, 0 only for input
 * shorter than MHTTP_HEAD_MAX, or one of the two errors; a parsed head's
 * method is a token, its target printable ASCII, both inside the head; the
 * flags and the Content-Length agree; *out is untouched on anything but
 * success.  Each parse runs on a heap copy of exactly the bytes given, so
 * AddressSanitizer sees any read past them.  And the result may not depend
 * on how the bytes arrive: strict prefixes of a head ask for more, prefixes
 * of an incomplete head too, and a prefix of an input with an error is
 * either incomplete or the same error. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/metrics_http.h"
#include "p2c2r/error.h"

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int is_token_char(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* Parses p[0..n) from an exact heap copy and checks the contract; the
 * views in *out are rebased onto p. */
static int parse(const uint8_t *p, size_t n, struct mhttp_req *out)
{
    char *c = malloc(n ? n : 1);
    if (!c)
        abort();
    memcpy(c, p, n);
    struct mhttp_req r;
    memset(&r, 0xa5, sizeof(r));
    const struct mhttp_req untouched = r;
    int rc = mhttp_parse_head(c, n, &r);
    if (rc > 0) {
        CHECK_FUZZ((size_t)rc <= n && (size_t)rc <= MHTTP_HEAD_MAX);
        /* A head ends with an empty line. */
        CHECK_FUZZ(c[rc - 1] == '\n');
        CHECK_FUZZ(r.method >= c && r.method_len >= 1 && r.method + r.method_len <= c + rc);
        CHECK_FUZZ(r.target > r.method && r.target_len >= 1 && r.target + r.target_len <= c + rc);
        for (size_t k = 0; k < r.method_len; k++)
            CHECK_FUZZ(is_token_char((unsigned char)r.method[k]));
        CHECK_FUZZ(r.method[r.method_len] == ' ' && r.method + r.method_len + 1 == r.target);
        for (size_t k = 0; k < r.target_len; k++)
            CHECK_FUZZ((unsigned char)r.target[k] > 0x20 && (unsigned char)r.target[k] < 0x7f);
        CHECK_FUZZ(r.target[r.target_len] == ' ');
        CHECK_FUZZ(r.major <= 9 && r.minor <= 9);
        CHECK_FUZZ(memcmp(r.target + r.target_len, " HTTP/", 6) == 0);
        CHECK_FUZZ(r.target[r.target_len + 6] == '0' + r.major &&
                   r.target[r.target_len + 8] == '0' + r.minor);
        CHECK_FUZZ((r.flags & ~(unsigned)(MHTTP_REQ_CLOSE | MHTTP_REQ_KEEP_ALIVE | MHTTP_REQ_LENGTH |
                                          MHTTP_REQ_TE | MHTTP_REQ_UPGRADE | MHTTP_REQ_WEBSOCKET)) == 0);
        /* Field values lie inside the head, after the request line. */
        const char *views[3] = {r.auth, r.ws_key, r.ws_version};
        size_t vlens[3] = {r.auth_len, r.ws_key_len, r.ws_version_len};
        for (int k = 0; k < 3; k++)
            CHECK_FUZZ(views[k] ? views[k] > r.target && views[k] + vlens[k] <= c + rc : vlens[k] == 0);
        CHECK_FUZZ((r.flags & MHTTP_REQ_LENGTH) || r.content_length == 0);
        int get = r.method_len == 3 && memcmp(r.method, "GET", 3) == 0;
        int head = r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0;
        CHECK_FUZZ(r.method_id == (get ? MHTTP_METHOD_GET : head ? MHTTP_METHOD_HEAD
                                                                 : MHTTP_METHOD_OTHER));
        r.method = (const char *)p + (r.method - c);
        r.target = (const char *)p + (r.target - c);
        if (r.auth)
            r.auth = (const char *)p + (r.auth - c);
        if (r.ws_key)
            r.ws_key = (const char *)p + (r.ws_key - c);
        if (r.ws_version)
            r.ws_version = (const char *)p + (r.ws_version - c);
        *out = r;
    } else {
        CHECK_FUZZ(memcmp(&r, &untouched, sizeof(r)) == 0);
        if (rc == 0)
            CHECK_FUZZ(n < MHTTP_HEAD_MAX);
        else if (rc == P2C2R_ETOOBIG)
            CHECK_FUZZ(n >= MHTTP_HEAD_MAX);
        else
            CHECK_FUZZ(rc == P2C2R_EPROTO);
    }
    free(c);
    return rc;
}

/* The result for p[0..k) given the result rc for p[0..n), k < n. */
static void check_prefix(const uint8_t *p, size_t n, int rc, size_t k)
{
    struct mhttp_req r;
    int rk = parse(p, k, &r);
    if (rc > 0)
        CHECK_FUZZ(k < (size_t)rc ? rk == 0 : rk == rc);
    else if (rc == 0)
        CHECK_FUZZ(rk == 0);
    else if (rc == P2C2R_ETOOBIG)
        CHECK_FUZZ(k < MHTTP_HEAD_MAX ? rk == 0 : rk == P2C2R_ETOOBIG);
    else
        CHECK_FUZZ(rk == 0 || rk == P2C2R_EPROTO);
    (void)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    /* At most a few pipelined heads, as the input allows. */
    for (int heads = 0; heads < 16; heads++) {
        const uint8_t *p = data + off;
        size_t n = size - off;
        struct mhttp_req r;
        int rc = parse(p, n, &r);
        if (n > 0) {
            check_prefix(p, n, rc, n - 1);
            check_prefix(p, n, rc, n / 2);
            if (rc > 0)
                check_prefix(p, n, rc, (size_t)rc - 1);
            /* The first bytes of the input choose one more split point. */
            check_prefix(p, n, rc, (p[0] * 131u + (n > 1 ? p[1] : 0)) % n);
        }
        if (rc <= 0)
            break;
        /* The head parses alone exactly as with what followed it. */
        struct mhttp_req alone;
        CHECK_FUZZ(parse(p, (size_t)rc, &alone) == rc);
        CHECK_FUZZ(alone.method == r.method && alone.method_len == r.method_len &&
                   alone.target == r.target && alone.target_len == r.target_len &&
                   alone.flags == r.flags && alone.content_length == r.content_length &&
                   alone.major == r.major && alone.minor == r.minor);
        off += (size_t)rc;
    }
    return 0;
}
