/* http_parse.c - the HTTP/1.1 request-head parser of the HTTP port
 * (mhttp_parse_head, see metrics_http.h): the one decoder there of what a
 * remote sends, pure (no I/O, no allocation), fuzzed by fuzz_http.  Kept
 * apart from the server in metrics_http.c, which owns connections, answers
 * and routes. */
#include "coord/metrics_http.h"

#include <stddef.h>
#include <string.h>

#include "p2c2r/error.h"

static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    switch (ch) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return 1;
    default:
        return 0;
    }
}

/* Field-value bytes: visible ASCII, obs-text, space and tab. */
static int is_value_char(unsigned char ch) { return ch == '\t' || (ch >= 0x20 && ch != 0x7f); }

static int is_ows(unsigned char ch) { return ch == ' ' || ch == '\t'; }

enum { EOL_NEED = 0, EOL_YES = 1, EOL_NO = -1, EOL_BAD = -2 };

/* Consumes a line end (CRLF or LF) at s[*i], within s[0..lim). */
static int eol(const unsigned char *s, size_t lim, size_t *i)
{
    if (*i >= lim)
        return EOL_NEED;
    if (s[*i] == '\n') {
        *i += 1;
        return EOL_YES;
    }
    if (s[*i] != '\r')
        return EOL_NO;
    if (*i + 1 >= lim)
        return EOL_NEED;
    if (s[*i + 1] != '\n')
        return EOL_BAD;
    *i += 2;
    return EOL_YES;
}

int http_ieq(const char *p, size_t n, const char *lit)
{
    size_t k = 0;
    for (; k < n && lit[k]; k++) {
        unsigned char ch = (unsigned char)p[k];
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        if (ch != (unsigned char)lit[k])
            return 0;
    }
    return k == n && lit[k] == '\0';
}

static void parse_connection(struct mhttp_req *r, const char *v, size_t n)
{
    size_t k = 0;
    while (k < n) {
        while (k < n && (v[k] == ',' || is_ows((unsigned char)v[k])))
            k++;
        size_t t = k;
        while (k < n && v[k] != ',')
            k++;
        size_t e = k;
        while (e > t && is_ows((unsigned char)v[e - 1]))
            e--;
        if (http_ieq(v + t, e - t, "close"))
            r->flags |= MHTTP_REQ_CLOSE;
        else if (http_ieq(v + t, e - t, "keep-alive"))
            r->flags |= MHTTP_REQ_KEEP_ALIVE;
        else if (http_ieq(v + t, e - t, "upgrade"))
            r->flags |= MHTTP_REQ_UPGRADE;
    }
}

static int parse_field(struct mhttp_req *r, const char *name, size_t nl, const char *v, size_t vl)
{
    if (http_ieq(name, nl, "content-length")) {
        if (vl == 0)
            return P2C2R_EPROTO;
        uint64_t x = 0;
        for (size_t k = 0; k < vl; k++) {
            if (v[k] < '0' || v[k] > '9')
                return P2C2R_EPROTO;
            uint64_t d = (uint64_t)(v[k] - '0');
            if (x > (UINT64_MAX - d) / 10)
                return P2C2R_EPROTO;
            x = x * 10 + d;
        }
        if ((r->flags & MHTTP_REQ_LENGTH) && r->content_length != x)
            return P2C2R_EPROTO;
        r->flags |= MHTTP_REQ_LENGTH;
        r->content_length = x;
    } else if (http_ieq(name, nl, "transfer-encoding")) {
        r->flags |= MHTTP_REQ_TE;
    } else if (http_ieq(name, nl, "connection")) {
        parse_connection(r, v, vl);
    } else if (http_ieq(name, nl, "upgrade")) {
        if (http_ieq(v, vl, "websocket"))
            r->flags |= MHTTP_REQ_WEBSOCKET;
    } else if (http_ieq(name, nl, "authorization")) {
        r->auth = v;
        r->auth_len = vl;
    } else if (http_ieq(name, nl, "sec-websocket-key")) {
        r->ws_key = v;
        r->ws_key_len = vl;
    } else if (http_ieq(name, nl, "sec-websocket-version")) {
        r->ws_version = v;
        r->ws_version_len = vl;
    }
    return 0;
}

int mhttp_parse_head(const char *p, size_t n, struct mhttp_req *out)
{
    const unsigned char *s = (const unsigned char *)p;
    const size_t lim = n < MHTTP_HEAD_MAX ? n : MHTTP_HEAD_MAX;
    /* Running out of bytes is "feed me more" until the limit, then final. */
    const int need = n >= MHTTP_HEAD_MAX ? P2C2R_ETOOBIG : 0;
    struct mhttp_req r;
    size_t i = 0;
    int e;
    memset(&r, 0, sizeof(r));

    while ((e = eol(s, lim, &i)) == EOL_YES) {
        /* empty lines before the request line are ignored (RFC 9112 2.2) */
    }
    if (e == EOL_NEED)
        return need;
    if (e == EOL_BAD)
        return P2C2R_EPROTO;

    size_t ms = i;
    while (i < lim && is_tchar(s[i]))
        i++;
    if (i == lim)
        return need;
    if (i == ms || s[i] != ' ')
        return P2C2R_EPROTO;
    r.method = p + ms;
    r.method_len = i - ms;
    i++;

    size_t ts = i;
    while (i < lim && s[i] > 0x20 && s[i] < 0x7f)
        i++;
    if (i == lim)
        return need;
    if (i == ts || s[i] != ' ')
        return P2C2R_EPROTO;
    r.target = p + ts;
    r.target_len = i - ts;
    i++;

    static const char version[] = "HTTP/0.0"; /* 0 stands for any digit */
    for (size_t k = 0; k < sizeof(version) - 1; k++) {
        if (i + k >= lim)
            return need;
        unsigned char ch = s[i + k];
        if (version[k] == '0' ? ch < '0' || ch > '9' : ch != (unsigned char)version[k])
            return P2C2R_EPROTO;
    }
    r.major = (uint8_t)(s[i + 5] - '0');
    r.minor = (uint8_t)(s[i + 7] - '0');
    i += sizeof(version) - 1;
    if ((e = eol(s, lim, &i)) != EOL_YES)
        return e == EOL_NEED ? need : P2C2R_EPROTO;

    for (;;) {
        if ((e = eol(s, lim, &i)) == EOL_YES)
            break;
        if (e == EOL_NEED)
            return need;
        if (e == EOL_BAD)
            return P2C2R_EPROTO;
        /* A field line starting with white space is obs-fold (or a name
         * with white space before it): both are to be rejected. */
        size_t ns = i;
        while (i < lim && is_tchar(s[i]))
            i++;
        if (i == lim)
            return need;
        if (i == ns || s[i] != ':')
            return P2C2R_EPROTO;
        size_t nl = i - ns;
        i++;
        while (i < lim && is_ows(s[i]))
            i++;
        size_t vs = i;
        while (i < lim && is_value_char(s[i]))
            i++;
        if (i == lim)
            return need;
        size_t ve = i;
        while (ve > vs && is_ows(s[ve - 1]))
            ve--;
        if ((e = eol(s, lim, &i)) != EOL_YES)
            return e == EOL_NEED ? need : P2C2R_EPROTO;
        int rc = parse_field(&r, p + ns, nl, p + vs, ve - vs);
        if (rc < 0)
            return rc;
    }

    if (r.method_len == 3 && memcmp(r.method, "GET", 3) == 0)
        r.method_id = MHTTP_METHOD_GET;
    else if (r.method_len == 4 && memcmp(r.method, "HEAD", 4) == 0)
        r.method_id = MHTTP_METHOD_HEAD;
    *out = r;
    return (int)i;
}

