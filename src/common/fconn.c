/* fconn.c - a framed protocol connection's output queue and input splitting
 * (see fconn.h).
 *
 * Invariants: a connection is on its dirty list exactly when dirty is set;
 * while writing is set, sending holds the bytes libuv is writing and out
 * collects new frames, so frames leave in the order they were queued; a
 * large payload is written directly only when nothing is queued or being
 * written, for the same reason.  Under TLS the ciphertext buffer takes out's
 * place in that double buffering, and nothing is written directly. */
#include "common/fconn.h"

#include <assert.h>
#include <string.h>

#include "common/tls.h"
#include "p2c2r/error.h"

#define DIRECT_MIN (16u * 1024) /* payloads worth writing without a copy */

void fconn_init(struct fconn *f, struct list_node *dirty_list, size_t in_max, size_t out_max,
                size_t keep_in, size_t keep_out, fconn_error_fn on_error)
{
    buf_init(&f->in, in_max);
    buf_init(&f->out, out_max);
    buf_init(&f->sending, out_max);
    list_init(&f->dirty_node);
    f->dirty_list = dirty_list;
    f->keep_in = keep_in;
    f->keep_out = keep_out;
    f->on_error = on_error;
    f->open = f->writing = f->dirty = f->encoded = f->tls_fresh = 0;
    f->tls = NULL;
}

void fconn_fini(struct fconn *f)
{
    fconn_tls_detach(f);
    buf_fini(&f->in);
    buf_fini(&f->out);
    buf_fini(&f->sending);
}

void fconn_stop(struct fconn *f)
{
    f->open = 0;
    if (f->dirty) {
        list_remove(&f->dirty_node);
        f->dirty = 0;
    }
}

void fconn_tls_attach(struct fconn *f, struct tls *t)
{
    assert(!f->tls && buf_used(&f->sending) == 0);
    f->tls = t;
    f->tls_fresh = 1;
    /* The ciphertext buffer and sending trade places (fconn_flush). */
    f->sending.max = tls_out(t)->max;
}

void fconn_tls_detach(struct fconn *f)
{
    if (f->tls) {
        /* Ciphertext may sit in sending, swapped in from the session. */
        if (!f->writing)
            buf_consume(&f->sending, buf_used(&f->sending));
        tls_free(f->tls);
        f->tls = NULL;
        f->tls_fresh = 0;
    }
}

size_t fconn_queued(const struct fconn *f)
{
    return buf_used(&f->out) + (f->tls ? buf_used(tls_out(f->tls)) : 0);
}

void fconn_mark_dirty(struct fconn *f)
{
    if (!f->dirty) {
        f->dirty = 1;
        list_push_back(f->dirty_list, &f->dirty_node);
    }
}

uint8_t *fconn_frame(struct fconn *f, uint8_t type, uint16_t flags, uint64_t req_id,
                     uint32_t body_len)
{
    uint8_t *p = buf_reserve(&f->out, PROTO_HDR_LEN + (size_t)body_len);
    if (!p)
        return NULL;
    proto_put_hdr(p, type, flags, req_id, body_len);
    buf_commit(&f->out, PROTO_HDR_LEN + (size_t)body_len);
    fconn_mark_dirty(f);
    return p + PROTO_HDR_LEN;
}

int fconn_send(struct fconn *f, uint8_t type, uint64_t req_id, const uint8_t *prefix,
               size_t prefix_len, const uint8_t *payload, size_t payload_len)
{
    uint8_t head[PROTO_HDR_LEN + 32];
    size_t body = prefix_len + payload_len, total = PROTO_HDR_LEN + body, done = 0;
    assert(prefix_len <= 32);
    proto_put_hdr(head, type, 0, req_id, (uint32_t)body);
    if (prefix_len)
        memcpy(head + PROTO_HDR_LEN, prefix, prefix_len);
    size_t hl = PROTO_HDR_LEN + prefix_len;
    if (payload_len >= DIRECT_MIN && f->open && !f->writing && !f->encoded && !f->tls && buf_used(&f->out) == 0) {
        uv_buf_t v[2] = {uv_buf_init((char *)head, (unsigned)hl),
                         uv_buf_init((char *)payload, (unsigned)payload_len)};
        int n = uv_try_write((uv_stream_t *)&f->tcp, v, 2);
        done = n > 0 ? (size_t)n : 0;
        if (done == total)
            return 0;
    }
    uint8_t *p = buf_reserve(&f->out, total - done);
    if (!p) {
        /* Part of the frame already left: the stream is broken either way,
         * and the owner cuts the connection. */
        return -1;
    }
    if (done < hl) {
        memcpy(p, head + done, hl - done);
        if (payload_len)
            memcpy(p + hl - done, payload, payload_len);
    } else {
        memcpy(p, payload + (done - hl), total - done);
    }
    buf_commit(&f->out, total - done);
    fconn_mark_dirty(f);
    return 0;
}

int fconn_send_bytes(struct fconn *f, const uint8_t *bytes, size_t n)
{
    size_t done = 0;
    if (n >= DIRECT_MIN && f->open && !f->writing && !f->encoded && !f->tls && buf_used(&f->out) == 0) {
        uv_buf_t v = uv_buf_init((char *)bytes, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&f->tcp, &v, 1);
        done = w > 0 ? (size_t)w : 0;
        if (done == n)
            return 0;
    }
    if (buf_append(&f->out, bytes + done, n - done) != 0)
        return -1;
    fconn_mark_dirty(f);
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct fconn *f = req->data;
    f->writing = 0;
    buf_consume(&f->sending, buf_used(&f->sending));
    buf_shrink(&f->sending, f->keep_out);
    if (status < 0) {
        f->on_error(f, status);
        return;
    }
    if (fconn_queued(f) && f->open)
        fconn_mark_dirty(f);
}

/* Encrypts the frames queued in out into the TLS session's buffer.  Returns
 * 0, or a libuv error when the session failed.  Frames queued after a
 * failure (the owner's ERROR frame) are dropped: only the session's alert
 * can still go out. */
static int tls_encrypt(struct fconn *f)
{
    if (buf_used(&f->out) == 0)
        return 0;
    if (tls_failed(f->tls)) {
        buf_consume(&f->out, buf_used(&f->out));
        return 0;
    }
    long n = tls_write(f->tls, buf_head(&f->out), buf_used(&f->out));
    if (n < 0)
        return UV_EPROTO;
    buf_consume(&f->out, (size_t)n);
    if (buf_used(&f->out) == 0)
        buf_shrink(&f->out, f->keep_out);
    return 0;
}

int fconn_flush(struct fconn *f)
{
    if (f->writing || !f->open)
        return 0;
    struct buf *src = &f->out;
    if (f->tls) {
        int rc = tls_encrypt(f);
        if (rc < 0)
            return rc;
        src = tls_out(f->tls);
    }
    if (buf_used(src) == 0)
        return 0;
    uv_buf_t b = uv_buf_init((char *)buf_head(src), (unsigned)buf_used(src));
    int n = uv_try_write((uv_stream_t *)&f->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0)
        return n;
    buf_consume(src, (size_t)n);
    if (buf_used(src) == 0) {
        if (f->tls)
            tls_out_done(f->tls);
        else
            buf_shrink(&f->out, f->keep_out);
        return 0;
    }
    /* The kernel took only part: hand the rest to libuv and keep collecting
     * new frames (new ciphertext) in the other buffer. */
    struct buf t = f->sending;
    f->sending = *src;
    *src = t;
    b = uv_buf_init((char *)buf_head(&f->sending), (unsigned)buf_used(&f->sending));
    f->writing = 1;
    f->wreq.data = f;
    int rc = uv_write(&f->wreq, (uv_stream_t *)&f->tcp, &b, 1, on_write);
    if (rc < 0) {
        f->writing = 0;
        return rc;
    }
    return 0;
}

void fconn_flush_all(struct list_node *dirty_list)
{
    struct list_node *n;
    while ((n = list_pop_front(dirty_list)) != NULL) {
        struct fconn *f = list_entry(n, struct fconn, dirty_node);
        f->dirty = 0;
        int rc = fconn_flush(f);
        if (rc < 0)
            f->on_error(f, rc);
    }
}

void fconn_alloc(struct fconn *f, uint8_t *shared, size_t shared_len, uv_buf_t *out)
{
    /* With nothing pending, read into the owner's shared buffer: an idle
     * connection then holds no input memory at all, which is what keeps
     * 10,000 peer connections cheap. */
    if (buf_used(&f->in) == 0 || f->tls) {
        /* Under TLS every read is ciphertext, decrypted in place there. */
        *out = uv_buf_init((char *)shared, (unsigned)shared_len);
        return;
    }
    size_t want = shared_len;
    struct frame_hdr fh;
    if (buf_used(&f->in) >= PROTO_HDR_LEN &&
        proto_decode_hdr(buf_head(&f->in), buf_used(&f->in), f->max_body, &fh) == 0) {
        size_t need = PROTO_HDR_LEN + fh.body_len - buf_used(&f->in);
        if (need > want)
            want = need;
    }
    uint8_t *p = buf_reserve(&f->in, want);
    *out = p ? uv_buf_init((char *)p, (unsigned)(f->in.cap - f->in.len)) : uv_buf_init(NULL, 0);
}

/* Hands every whole frame in p[0..n) to fn; *used gets the bytes consumed. */
static int split(struct fconn *f, const uint8_t *p, size_t n, fconn_frame_fn fn, size_t *used,
                 struct frame_hdr *bad, int *bad_code)
{
    size_t off = 0;
    int rc = FCONN_IN_OK;
    for (;;) {
        struct frame_hdr h;
        int64_t fl = proto_decode_hdr(p + off, n - off, f->max_body, &h);
        if (fl == 0)
            break;
        if (fl < 0) {
            *bad = h;
            *bad_code = fl == P2C2R_ETOOBIG ? P2C2R_ETOOBIG : P2C2R_EPROTO;
            rc = FCONN_IN_BAD_HEADER;
            break;
        }
        if (fn(f, &h, p + off + PROTO_HDR_LEN) != 0) {
            rc = FCONN_IN_STOPPED;
            break;
        }
        off += (size_t)fl;
    }
    *used = off;
    return rc;
}

/* Handles plaintext p[0..n) that is not in f's input buffer: whole frames
 * straight from p when nothing is pending, the rest kept in f->in. */
static int input_plain(struct fconn *f, const uint8_t *p, size_t n, fconn_frame_fn fn,
                       struct frame_hdr *bad, int *bad_code)
{
    size_t used;
    int rc;
    if (buf_used(&f->in) == 0) {
        rc = split(f, p, n, fn, &used, bad, bad_code);
        if (rc == FCONN_IN_OK && used < n && buf_append(&f->in, p + used, n - used) != 0)
            rc = FCONN_IN_FULL;
        return rc;
    }
    if (buf_append(&f->in, p, n) != 0)
        return FCONN_IN_FULL;
    rc = split(f, buf_head(&f->in), buf_used(&f->in), fn, &used, bad, bad_code);
    buf_consume(&f->in, rc == FCONN_IN_OK ? used : buf_used(&f->in));
    buf_shrink(&f->in, f->keep_in);
    return rc;
}

/* TLS: decrypts the n bytes read at p record by record into a scratch
 * buffer of the loop's thread and handles each record's plaintext.  (Not in
 * place: a record begun in an earlier read can decrypt to more bytes than it
 * takes from this one.) */
static int input_tls(struct fconn *f, const uint8_t *p, size_t n, fconn_frame_fn fn,
                     struct frame_hdr *bad, int *bad_code)
{
    static _Thread_local uint8_t plain[16384]; /* one record's plaintext */
    if (f->tls_fresh) {
        f->tls_fresh = 0;
        if (p[0] != TLS_RECORD_HANDSHAKE) {
            fconn_tls_detach(f);
            return FCONN_IN_NOT_TLS;
        }
    }
    tls_feed(f->tls, p, n);
    int rc = FCONN_IN_OK;
    for (;;) {
        int k = tls_read(f->tls, plain, sizeof(plain));
        if (k == 0)
            break;
        if (k < 0) {
            rc = k == P2C2R_ECLOSED ? FCONN_IN_EOF : FCONN_IN_TLS;
            break;
        }
        rc = input_plain(f, plain, (size_t)k, fn, bad, bad_code);
        if (rc != FCONN_IN_OK)
            break;
    }
    if (f->tls) {
        tls_feed(f->tls, NULL, 0); /* what a stop left is dropped with the connection */
        /* The handshake's answers, and frames held back until it completed. */
        if (f->open && fconn_queued(f))
            fconn_mark_dirty(f);
    }
    return rc;
}

int fconn_input(struct fconn *f, const uv_buf_t *b, size_t nread, const uint8_t *shared,
                fconn_frame_fn fn, struct frame_hdr *bad, int *bad_code)
{
    if (f->tls)
        return input_tls(f, (const uint8_t *)b->base, nread, fn, bad, bad_code);
    if ((const uint8_t *)b->base == shared)
        return input_plain(f, shared, nread, fn, bad, bad_code);
    size_t used;
    buf_commit(&f->in, nread);
    int rc = split(f, buf_head(&f->in), buf_used(&f->in), fn, &used, bad, bad_code);
    buf_consume(&f->in, rc == FCONN_IN_OK ? used : buf_used(&f->in));
    buf_shrink(&f->in, f->keep_in);
    return rc;
}
