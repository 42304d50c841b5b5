/* ws.c - WebSocket framing (see ws.h).
 *
 * Invariant of the reader: frag_op is nonzero exactly while a fragmented
 * message is being joined, and frag then holds its bytes so far (at most
 * max_msg); control frames may come between its fragments and are passed
 * through at once. */
#include "common/ws.h"

#include <openssl/sha.h>
#include <string.h>

#include "common/b64.h"
#include "p2c2r/error.h"

int ws_decode_hdr(const uint8_t *p, size_t n, uint64_t max_len, struct ws_hdr *out)
{
    if (n < 2)
        return 0;
    uint8_t b0 = p[0], b1 = p[1];
    struct ws_hdr h;
    memset(&h, 0, sizeof(h));
    h.fin = (uint8_t)(b0 >> 7);
    h.op = b0 & 0x0f;
    h.masked = (uint8_t)(b1 >> 7);
    if (b0 & 0x70)
        return P2C2R_EPROTO; /* no extension was negotiated */
    int control = h.op >= 0x8;
    if (!(h.op <= WS_OP_BINARY || (h.op >= WS_OP_CLOSE && h.op <= WS_OP_PONG)))
        return P2C2R_EPROTO;
    uint64_t len = b1 & 0x7f;
    size_t i = 2;
    if (len == 126) {
        if (n < 4)
            return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        if (len < 126)
            return P2C2R_EPROTO;
        i = 4;
    } else if (len == 127) {
        if (n < 10)
            return 0;
        len = 0;
        for (int k = 0; k < 8; k++)
            len = len << 8 | p[2 + k];
        if (len >> 63 || len <= 0xffff)
            return P2C2R_EPROTO;
        i = 10;
    }
    if (control && (!h.fin || len > WS_CONTROL_MAX))
        return P2C2R_EPROTO;
    if (h.masked) {
        if (n < i + 4)
            return 0;
        memcpy(h.mask, p + i, 4);
        i += 4;
    }
    h.len = len;
    h.hdr_len = i;
    *out = h;
    return len > max_len ? P2C2R_ETOOBIG : (int)i;
}

size_t ws_put_hdr(uint8_t *dst, int fin, int op, uint64_t len, const uint8_t *mask)
{
    size_t i = 2;
    dst[0] = (uint8_t)((fin ? 0x80 : 0) | (op & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (len < 126) {
        dst[1] = (uint8_t)(m | len);
    } else if (len <= 0xffff) {
        dst[1] = (uint8_t)(m | 126);
        dst[2] = (uint8_t)(len >> 8);
        dst[3] = (uint8_t)len;
        i = 4;
    } else {
        dst[1] = (uint8_t)(m | 127);
        for (int k = 0; k < 8; k++)
            dst[2 + k] = (uint8_t)(len >> (56 - 8 * k));
        i = 10;
    }
    if (mask) {
        memcpy(dst + i, mask, 4);
        i += 4;
    }
    return i;
}

void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t off)
{
    size_t k = 0;
    /* Byte by byte up to a key boundary, then eight bytes at a time. */
    for (; k < n && (off + k) % 4 != 0; k++)
        p[k] ^= mask[(off + k) % 4];
    uint64_t m8;
    uint8_t m[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    memcpy(&m8, m, 8);
    for (; k + 8 <= n; k += 8) {
        uint64_t v;
        memcpy(&v, p + k, 8);
        v ^= m8;
        memcpy(p + k, &v, 8);
    }
    for (; k < n; k++)
        p[k] ^= mask[(off + k) % 4];
}

int ws_accept_key(const char *key, size_t n, char out[WS_ACCEPT_LEN + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t raw[24];
    if (n != 24 || b64_decode(key, n, raw) != 16)
        return P2C2R_EPROTO;
    char cat[24 + sizeof(guid)];
    memcpy(cat, key, 24);
    memcpy(cat + 24, guid, sizeof(guid) - 1);
    uint8_t md[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)cat, 24 + sizeof(guid) - 1, md);
    size_t l = b64_encode(md, sizeof(md), out);
    out[l] = '\0';
    return 0;
}

int ws_utf8_ok(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0) {
            need = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            need = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

void ws_reader_init(struct ws_reader *r, uint64_t max_msg, int want_mask)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->frag, (size_t)max_msg);
    r->max_msg = max_msg;
    r->want_mask = (uint8_t)(want_mask != 0);
}

void ws_reader_fini(struct ws_reader *r) { buf_fini(&r->frag); }

static long fail(struct ws_reader *r, int code, const char *why)
{
    r->why = why;
    return code;
}

long ws_reader_feed(struct ws_reader *r, uint8_t *p, size_t n, ws_msg_fn fn, void *arg, int *stopped)
{
    size_t off = 0;
    *stopped = 0;
    while (off < n) {
        struct ws_hdr h;
        /* Control frames are held to WS_CONTROL_MAX by the decoder; a data
         * frame must fit in what is left of the message's limit. */
        uint64_t room = r->frag_op ? r->max_msg - buf_used(&r->frag) : r->max_msg;
        int hl = ws_decode_hdr(p + off, n - off, UINT64_MAX >> 1, &h);
        if (hl == 0)
            break;
        if (hl < 0)
            return fail(r, P2C2R_EPROTO, "malformed frame header");
        if (h.op < WS_OP_CLOSE && h.len > room)
            return fail(r, P2C2R_ETOOBIG, "message over the size limit");
        if (h.masked != r->want_mask)
            return fail(r, P2C2R_EPROTO, r->want_mask ? "client frames must be masked"
                                                      : "server frames must not be masked");
        if (h.len > n - off - (size_t)hl)
            break; /* the payload is not all here yet */
        uint8_t *pl = p + off + (size_t)hl;
        size_t len = (size_t)h.len;
        if (h.masked)
            ws_mask(pl, len, h.mask, 0);
        off += (size_t)hl + len;
        int rc = 0;
        if (h.op >= WS_OP_CLOSE) {
            rc = fn(arg, h.op, pl, len);
        } else if (h.op == WS_OP_CONT) {
            if (!r->frag_op)
                return fail(r, P2C2R_EPROTO, "continuation frame without a message to continue");
            if (buf_append(&r->frag, pl, len) != 0)
                return fail(r, P2C2R_ETOOBIG, "message over the size limit");
            if (h.fin) {
                int op = r->frag_op;
                r->frag_op = 0;
                static uint8_t none[1];
                rc = fn(arg, op, buf_used(&r->frag) ? buf_head(&r->frag) : none, buf_used(&r->frag));
                buf_consume(&r->frag, buf_used(&r->frag));
                buf_shrink(&r->frag, 0);
            }
        } else if (r->frag_op) {
            return fail(r, P2C2R_EPROTO, "new message before the last one's final fragment");
        } else if (h.fin) {
            rc = fn(arg, h.op, pl, len);
        } else {
            r->frag_op = h.op;
            if (buf_append(&r->frag, pl, len) != 0)
                return fail(r, P2C2R_ETOOBIG, "message over the size limit");
        }
        if (rc) {
            *stopped = 1;
            break;
        }
    }
    return (long)off;
}
