/* metrics_http.c - the metrics HTTP/1.1 server (see metrics_http.h).
 *
 * Each connection is in one of four states.  READING: it reads into its
 * input buffer (capped at MHTTP_HEAD_MAX) and answers the first complete
 * head there; a request that follows it in the buffer waits on m->pending
 * for the next loop iteration, with reading stopped.  WRITING: part of an
 * answer is waiting for the kernel to take it; reading is stopped, so a
 * client that pipelines without reading is held by TCP flow control rather
 * than by our memory.  DRAINING: the last answer is queued, the write side
 * is shut down after it, and input is read and discarded, so unread request
 * bytes do not make the kernel reset the connection before the client has
 * read the answer; it ends at EOF or LINGER_MS after the answer was taken.
 * CLOSED: uv_close was called and the memory goes in its callback.
 *
 * An answer is offered to the kernel straight from where it was built (the
 * head on the stack, the body in m->body); only what the kernel does not
 * take at once is copied, into the connection's output buffer.
 *
 * Invariants:
 * - A connection's output buffer is empty unless a write is in flight, and
 *   answers are started only in READING, so one connection holds at most
 *   one answer; m->held is the sum of the output buffers, <= MHTTP_HELD_MAX.
 * - A connection is on m->pending only in READING, with reading stopped and
 *   input left; m->resuming says whether the idle handle runs.
 * - m->nhandles counts every handle of the server (listener, sweep timer,
 *   idle handle, each connection, listed or refused) not yet through its
 *   close callback; m is freed by the last of them once mhttp_stop ran,
 *   never earlier, so no callback sees freed memory.
 * - Only the loop thread touches any of this. */
#include "coord/metrics_http.h"

#include <assert.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "common/tls.h"
#include "common/util.h"
#include "common/ws.h"
#include "p2c2r/error.h"

#define SWEEP_MS 250u
#define LINGER_MS 1000u
#define HEADER_MAX 512u        /* our answer's status line and header fields */
#define BODY_KEEP (1u << 20)   /* m->body capacity kept between answers */
#define UPGRADE_EXTRA_MAX (256u << 10) /* plaintext a TLS client may send after its /ws head at once */

/* The charting library the dashboard (/) loads as /static/chart.js: Debian's
 * libjs-chart.js, served from where the package installs it (nothing of it
 * is copied into p2c2r).  Without the package the route is a 404 and the
 * page shows its figures without plots. */
#ifndef P2C2R_CHARTJS_PATH
#define P2C2R_CHARTJS_PATH "/usr/share/javascript/chart.js/chart.min.js"
#endif

enum mconn_state { MC_READING, MC_WRITING, MC_DRAINING, MC_CLOSED };

struct mconn {
    uv_tcp_t tcp;
    struct mhttp *m;
    struct list_node node;  /* on m->conns while listed */
    struct list_node pnode; /* on m->pending while a request waits its turn */
    struct buf in;          /* request bytes, at most MHTTP_HEAD_MAX */
    struct buf out;         /* what the kernel did not take of the answer */
    size_t held;            /* bytes of out counted in m->held */
    size_t scan;            /* bytes of in already searched for line ends */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    uint64_t deadline_ms; /* uv_now() by which it must make progress */
    uint8_t state, listed, reading, writing, eof, shut_done;
    uint8_t line_seen; /* the request line of the head in `in` has ended */
    uint8_t tls_fresh; /* under TLS and no byte read yet */
    struct tls *tls;   /* NULL = plaintext */
};

struct mhttp {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t sweeper;
    uv_idle_t resumer; /* runs while m->pending is not empty */
    mhttp_render_fn fn;
    void *arg;
    struct list_node conns;
    struct list_node pending;
    uint32_t nconns;
    uint32_t nhandles;
    int stopping, resuming;
    size_t held;
    struct mhttp_stats n;
    char addr[64];
    struct buf body;    /* rendered metrics or a file, reused by every answer */
    char *token;        /* bearer token /metrics requires, NULL: none */
    mhttp_auth_fn auth; /* or another check of the bearer token, NULL: none */
    void *auth_arg;
    char *root;         /* directory of static pages, NULL: none */
    mhttp_upgrade_fn upgrade;
    void *upgrade_arg;
    struct tls_ctx *tls; /* borrowed; NULL = plaintext */
    char discard[4096]; /* where DRAINING connections read into */
};

/* ---- handles and their lifecycle ---------------------------------------- */

static void mhttp_handle_gone(struct mhttp *m)
{
    assert(m->nhandles > 0);
    if (--m->nhandles == 0 && m->stopping) {
        assert(m->held == 0);
        buf_fini(&m->body);
        free(m->token);
        free(m->root);
        free(m);
    }
}

static void on_handle_closed(uv_handle_t *h) { mhttp_handle_gone(h->data); }

static void on_conn_closed(uv_handle_t *h)
{
    struct mconn *c = h->data;
    struct mhttp *m = c->m;
    assert(!c->writing && c->held == 0);
    buf_fini(&c->in);
    buf_fini(&c->out);
    tls_free(c->tls);
    free(c);
    mhttp_handle_gone(m);
}

/* Close now, free in the close callback.  A write in flight is cancelled
 * first (its callback runs before the close callback and gives back what
 * it held). */
static void conn_close(struct mconn *c)
{
    if (c->state == MC_CLOSED)
        return;
    c->state = MC_CLOSED;
    list_remove(&c->pnode);
    if (c->listed) {
        list_remove(&c->node);
        c->listed = 0;
        c->m->nconns--;
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

static void conn_read_start(struct mconn *c)
{
    if (c->reading || c->eof || c->state == MC_CLOSED)
        return;
    int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    if (rc < 0) {
        LOG_D("metrics_read_error", "err=%s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    c->reading = 1;
}

static void conn_read_stop(struct mconn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

/* ---- answers -------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct mconn *c = req->data;
    if (c->state == MC_CLOSED)
        return;
    c->shut_done = 1;
    if (status < 0 || c->eof)
        conn_close(c);
}

/* After the last answer: no more requests, only the linger, which starts
 * once the kernel has taken the answer (a slow reader has the usual time
 * for that first). */
static void conn_drain(struct mconn *c)
{
    c->state = MC_DRAINING;
    c->deadline_ms = uv_now(c->m->loop) + (c->writing ? MHTTP_TIMEOUT_MS : LINGER_MS);
    buf_consume(&c->in, buf_used(&c->in));
    buf_shrink(&c->in, 0);
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        conn_close(c);
        return;
    }
    conn_read_start(c);
}

static void conn_process(struct mconn *c);

static void on_write(uv_write_t *req, int status)
{
    struct mconn *c = req->data;
    struct mhttp *m = c->m;
    assert(c->writing && m->held >= c->held);
    c->writing = 0;
    m->held -= c->held;
    c->held = 0;
    buf_consume(&c->out, buf_used(&c->out));
    buf_shrink(&c->out, 0);
    if (c->state == MC_CLOSED)
        return;
    if (status < 0) {
        LOG_D("metrics_write_error", "err=%s", uv_strerror(status));
        conn_close(c);
        return;
    }
    if (c->state == MC_WRITING) {
        c->state = MC_READING;
        c->deadline_ms = uv_now(m->loop) + MHTTP_TIMEOUT_MS;
        conn_process(c);
    } else if (c->state == MC_DRAINING) {
        c->deadline_ms = uv_now(m->loop) + LINGER_MS;
    }
}

/* Sends bufs[0..n) (borrowed for the call); keep says whether the
 * connection stays open for more requests.  What the kernel takes at once
 * is never copied; the rest is copied into c->out, within the server-wide
 * MHTTP_HELD_MAX, and written from there while reading waits. */
static void conn_send_raw(struct mconn *c, const uv_buf_t *bufs, unsigned n, int keep)
{
    struct mhttp *m = c->m;
    uv_stream_t *s = (uv_stream_t *)&c->tcp;
    size_t total = 0;
    for (unsigned k = 0; k < n; k++)
        total += bufs[k].len;
    int w = uv_try_write(s, bufs, n);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        LOG_D("metrics_write_error", "err=%s", uv_strerror(w));
        conn_close(c);
        return;
    }
    size_t done = (size_t)w, rest = total - done;
    c->deadline_ms = uv_now(m->loop) + MHTTP_TIMEOUT_MS;
    if (rest == 0) {
        if (!keep)
            conn_drain(c);
        return;
    }
    if (rest > MHTTP_HELD_MAX - m->held) {
        m->n.overloaded++;
        LOG_D("metrics_conn_overloaded", "rest=%zu held=%zu", rest, m->held);
        conn_close(c);
        return;
    }
    assert(!c->writing && buf_used(&c->out) == 0);
    for (unsigned k = 0; k < n; k++) {
        size_t skip = done < bufs[k].len ? done : bufs[k].len;
        done -= skip;
        /* Cannot fail: the cap on c->out is MHTTP_BODY_MAX + HEADER_MAX. */
        if (buf_append(&c->out, bufs[k].base + skip, bufs[k].len - skip) != 0) {
            conn_close(c);
            return;
        }
    }
    assert(buf_used(&c->out) == rest);
    uv_buf_t b = uv_buf_init((char *)buf_head(&c->out), (unsigned)rest);
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, s, &b, 1, on_write);
    if (rc < 0) {
        LOG_D("metrics_write_error", "err=%s", uv_strerror(rc));
        conn_close(c);
        return;
    }
    c->writing = 1;
    c->held = rest;
    m->held += rest;
    if (keep) {
        c->state = MC_WRITING;
        conn_read_stop(c);
    } else {
        conn_drain(c);
    }
}

/* Under TLS: what the session queued (handshake messages, records) goes
 * out the plaintext way and the session's buffer is emptied. */
static void conn_send_tls_out(struct mconn *c, int keep)
{
    struct buf *o = tls_out(c->tls);
    size_t n = buf_used(o);
    if (n == 0) {
        if (!keep)
            conn_drain(c);
        return;
    }
    uv_buf_t b = uv_buf_init((char *)buf_head(o), (unsigned)n);
    conn_send_raw(c, &b, 1, keep);
    if (c->tls) { /* conn_send_raw copied what the kernel did not take */
        buf_consume(o, n);
        tls_out_done(c->tls);
    }
}

/* Sends an answer: under TLS encrypted first, into the session's buffer
 * (capped at one whole answer). */
static void conn_send(struct mconn *c, const uv_buf_t *bufs, unsigned n, int keep)
{
    if (!c->tls) {
        conn_send_raw(c, bufs, n, keep);
        return;
    }
    for (unsigned k = 0; k < n; k++) {
        size_t off = 0;
        while (off < bufs[k].len) {
            long w = tls_write(c->tls, (const uint8_t *)bufs[k].base + off, bufs[k].len - off);
            if (w <= 0) {
                LOG_D("metrics_tls_write_error", "err=%s", w == 0 ? "handshake not done" : tls_error(c->tls));
                conn_close(c);
                return;
            }
            off += (size_t)w;
        }
    }
    conn_send_tls_out(c, keep);
}

struct status_text {
    int code;
    const char *reason;
    const char *body;
};

static const struct status_text statuses[] = {
    {200, "OK", NULL},
    {400, "Bad Request", "bad request\n"},
    {401, "Unauthorized", "unauthorized: send Authorization: Bearer TOKEN (p2c2rd --metrics-token, or an operator account's token)\n"},
    {404, "Not Found", "not found: metrics are at /metrics, the WebSocket gateway at /ws\n"},
    {405, "Method Not Allowed", "method not allowed: use GET or HEAD\n"},
    {426, "Upgrade Required", "upgrade required: /ws speaks WebSocket (RFC 6455, version 13) only\n"},
    {431, "Request Header Fields Too Large", "request head over 8192 bytes\n"},
    {503, "Service Unavailable", "service unavailable: the coordinator cannot take the connection\n"},
    {505, "HTTP Version Not Supported", "HTTP version not supported: use HTTP/1.1 or 1.0\n"},
};

/* The route table: what each path is (docs/GATEWAY.md, "The HTTP port").
 * Static pages are files of the root directory, looked up when asked for,
 * so pages can be added without touching the server. */
enum route_kind { RT_METRICS, RT_WS, RT_FILE, RT_STATIC, RT_SYSTEM };

static const struct route {
    const char *path;
    uint8_t kind;
    uint8_t prefix;   /* path is a prefix; the rest names a file of the root */
    const char *file; /* RT_FILE: the file in the root directory; RT_SYSTEM: an absolute path */
} routes[] = {
    {"/metrics", RT_METRICS, 0, NULL},
    {"/ws", RT_WS, 0, NULL},
    {"/", RT_FILE, 0, "index.html"},
    {"/contribute", RT_FILE, 0, "contribute.html"},
    {"/demo", RT_FILE, 0, "demo.html"},
    {"/static/chart.js", RT_SYSTEM, 0, P2C2R_CHARTJS_PATH},
    {"/static/", RT_STATIC, 1, NULL},
};

/* What to answer to one request. */
struct answer {
    int code;
    int head_only; /* HEAD: the head of the answer, with the body's length */
    int keep;      /* the connection stays open after it */
    int minor;     /* the request's HTTP minor version */
    const struct route *rt; /* the route of a 200 */
    char file[72];          /* RT_FILE, RT_STATIC: the file's name in the root */
};

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},   {".json", "application/json"},
        {".wasm", "application/wasm"},         {".png", "image/png"},
        {".svg", "image/svg+xml"},             {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t k = 0; dot && k < ARRAY_LEN(types); k++)
        if (strcmp(dot, types[k].ext) == 0)
            return types[k].type;
    return "application/octet-stream";
}

/* Reads the file at path into o (capped at MHTTP_BODY_MAX).  Returns 0, or
 * -1 when there is no such regular file or it does not fit. */
static int read_path(const char *path, struct buf *o)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct stat st;
    int rc = -1;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= MHTTP_BODY_MAX) {
        uint8_t *p = buf_reserve(o, (size_t)st.st_size);
        size_t got = 0;
        while (p && got < (size_t)st.st_size) {
            ssize_t r = read(fd, p + got, (size_t)st.st_size - got);
            if (r <= 0)
                break;
            got += (size_t)r;
        }
        if (p && got == (size_t)st.st_size) {
            buf_commit(o, got);
            rc = 0;
        }
    }
    close(fd);
    return rc;
}

/* Reads the root's file name into o, as read_path. */
static int read_file(const struct mhttp *m, const char *name, struct buf *o)
{
    char path[4096];
    if (!m->root || (size_t)snprintf(path, sizeof(path), "%s/%s", m->root, name) >= sizeof(path))
        return -1;
    return read_path(path, o);
}

/* Answers a.  The body of a 200 is rendered (or read) into m->body, which
 * every answer reuses: it is either taken by the kernel or copied before
 * this returns. */
static void conn_answer(struct mconn *c, struct answer a)
{
    struct mhttp *m = c->m;
    const char *body = NULL, *ctype = "text/plain; charset=utf-8";
    size_t blen = 0;
    assert(c->state == MC_READING && !c->writing);
    if (a.code == 200) {
        buf_consume(&m->body, buf_used(&m->body));
        if (a.rt->kind == RT_METRICS) {
            m->fn(m->arg, &m->body);
            assert(c->state == MC_READING);
            ctype = "text/plain; version=0.0.4; charset=utf-8";
        } else if (a.rt->kind == RT_SYSTEM ? read_path(a.rt->file, &m->body) == 0
                                           : read_file(m, a.file, &m->body) == 0) {
            ctype = content_type(a.rt->kind == RT_SYSTEM ? a.rt->file : a.file);
        } else {
            a.code = 404;
        }
        body = (const char *)buf_head(&m->body);
        blen = buf_used(&m->body);
    }
    const struct status_text *st = NULL;
    for (size_t k = 0; k < ARRAY_LEN(statuses); k++)
        if (statuses[k].code == a.code)
            st = &statuses[k];
    assert(st);
    if (a.code != 200) {
        body = st->body;
        blen = strlen(body);
    }
    m->n.answers++;
    if (a.code == 400 || a.code == 431 || a.code == 505)
        m->n.bad++;
    if (a.code == 401)
        m->n.unauthorized++;
    const char *conn_hdr = !a.keep          ? "Connection: close\r\n"
                           : a.minor == 0 ? "Connection: keep-alive\r\n"
                                          : "";
    const char *extra = a.code == 405   ? "Allow: GET, HEAD\r\n"
                        : a.code == 401 ? "WWW-Authenticate: Bearer realm=\"p2c2r\"\r\n"
                        : a.code == 426 ? "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                                        : "";
    char head[HEADER_MAX];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                      st->code, st->reason, ctype, blen, extra, conn_hdr);
    assert(hl > 0 && (size_t)hl < sizeof(head));
    LOG_D("metrics_request", "status=%d bytes=%zu keep=%d", a.code, blen, a.keep);
    uv_buf_t v[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init((char *)body, (unsigned)blen)};
    conn_send(c, v, a.head_only || blen == 0 ? 1 : 2, a.keep);
    if (a.code == 200)
        buf_shrink(&m->body, BODY_KEEP);
}

/* The route of r's target (without its query), or NULL; for a file route,
 * the file's name goes to file. */
static const struct route *route_find(const struct mhttp_req *r, char *file, size_t cap)
{
    size_t n = 0;
    while (n < r->target_len && r->target[n] != '?')
        n++;
    for (size_t k = 0; k < ARRAY_LEN(routes); k++) {
        const struct route *rt = &routes[k];
        size_t pl = strlen(rt->path);
        if (!rt->prefix) {
            if (n == pl && memcmp(r->target, rt->path, pl) == 0) {
                snprintf(file, cap, "%s", rt->file ? rt->file : "");
                return rt;
            }
            continue;
        }
        if (n <= pl || n - pl >= cap || memcmp(r->target, rt->path, pl) != 0)
            continue;
        const char *name = r->target + pl;
        size_t nl = n - pl;
        if (name[0] == '.')
            return NULL;
        for (size_t i = 0; i < nl; i++) {
            char ch = name[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                  ch == '.' || ch == '_' || ch == '-'))
                return NULL;
        }
        memcpy(file, name, nl);
        file[nl] = '\0';
        return rt;
    }
    return NULL;
}

/* Whether r carries "Authorization: Bearer TOKEN" with m's token (compared
 * in time independent of where they differ) or one m's check accepts. */
static int authorized(const struct mhttp *m, const struct mhttp_req *r)
{
    if (!m->token && !m->auth)
        return 1;
    if (!r->auth || r->auth_len < 7 || !http_ieq(r->auth, 7, "bearer "))
        return 0;
    size_t tl = m->token ? strlen(m->token) : 0;
    if (m->token && r->auth_len == 7 + tl) {
        unsigned char d = 0;
        for (size_t k = 0; k < tl; k++)
            d |= (unsigned char)(r->auth[7 + k] ^ m->token[k]);
        if (d == 0)
            return 1;
    }
    return m->auth && m->auth(m->auth_arg, r->auth + 7, r->auth_len - 7);
}

/* Whether the root directory has a file called name. */
static int root_has(const struct mhttp *m, const char *name)
{
    char path[4096];
    struct stat st;
    return m->root && (size_t)snprintf(path, sizeof(path), "%s/%s", m->root, name) < sizeof(path) &&
           stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The answer to r; code 101 means: hand the connection to the upgrade
 * callback. */
static struct answer request_answer(const struct mhttp *m, const struct mhttp_req *r)
{
    struct answer a;
    memset(&a, 0, sizeof(a));
    int get_like = r->method_id == MHTTP_METHOD_GET || r->method_id == MHTTP_METHOD_HEAD;
    int head_only = r->method_id == MHTTP_METHOD_HEAD;
    int has_body = (r->flags & MHTTP_REQ_TE) || r->content_length > 0;
    a.head_only = head_only;
    a.minor = r->minor;
    if (r->major != 1 || r->minor > 1) {
        a.code = 505;
        a.minor = 1;
        return a;
    }
    a.keep = r->minor == 1 ? !(r->flags & MHTTP_REQ_CLOSE)
                           : (r->flags & MHTTP_REQ_KEEP_ALIVE) && !(r->flags & MHTTP_REQ_CLOSE);
    /* The body is never read, so nothing after it can be found. */
    if (has_body) {
        a.code = get_like ? 400 : 405;
        a.keep = 0;
        return a;
    }
    if (!get_like) {
        a.code = 405;
        a.head_only = 0;
        return a;
    }
    a.rt = route_find(r, a.file, sizeof(a.file));
    if (!a.rt || (a.rt->kind == RT_WS && !m->upgrade)) {
        a.code = 404;
    } else if (a.rt->kind == RT_WS) {
        int asks = (r->flags & MHTTP_REQ_UPGRADE) && (r->flags & MHTTP_REQ_WEBSOCKET);
        if (!asks || !r->ws_version || r->ws_version_len != 2 || memcmp(r->ws_version, "13", 2) != 0)
            a.code = 426;
        else if (head_only || !r->ws_key)
            a.code = 400;
        else
            a.code = 101;
    } else if (a.rt->kind == RT_FILE && strcmp(a.rt->path, "/") == 0 && !root_has(m, a.file)) {
        a.rt = &routes[0]; /* "/" without pages: the metrics, as before pages existed */
        a.code = authorized(m, r) ? 200 : 401;
    } else {
        a.code = a.rt->kind == RT_METRICS && !authorized(m, r) ? 401 : 200;
    }
    return a;
}

/* Hands c to the upgrade callback, its request head (n bytes) answered by
 * the callback's 101.  A key that does not decode is a 400, a callback that
 * refuses a 503. */
static void conn_upgrade(struct mconn *c, const struct mhttp_req *r, size_t n)
{
    struct mhttp *m = c->m;
    char accept[WS_ACCEPT_LEN + 1];
    if (ws_accept_key(r->ws_key, r->ws_key_len, accept) != 0) {
        buf_consume(&c->in, buf_used(&c->in));
        conn_answer(c, (struct answer){.code = 400, .minor = 1});
        return;
    }
    buf_consume(&c->in, n);
    /* Under TLS the session goes with the socket, and with it everything
     * the client sent after its head: the plaintext already taken out of
     * the session and what the session still holds. */
    struct buf x;
    buf_init(&x, (size_t)MHTTP_HEAD_MAX + UPGRADE_EXTRA_MAX);
    int bad = buf_append(&x, buf_head(&c->in), buf_used(&c->in)) != 0;
    while (c->tls && !bad) {
        uint8_t *p = buf_reserve(&x, 16384);
        int k = p ? tls_read(c->tls, p, 16384) : P2C2R_ETOOBIG;
        if (k <= 0) {
            bad = k < 0;
            break;
        }
        buf_commit(&x, (size_t)k);
    }
    uv_os_fd_t fd;
    int nfd = bad ? -1 : uv_fileno((uv_handle_t *)&c->tcp, &fd) == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
    const uint8_t *ex = buf_used(&x) ? buf_head(&x) : NULL; /* x may hold no memory */
    if (nfd < 0 || m->upgrade(m->upgrade_arg, nfd, c->tls, accept, ex, buf_used(&x)) != 0) {
        if (nfd >= 0)
            close(nfd);
        buf_fini(&x);
        buf_consume(&c->in, buf_used(&c->in));
        conn_answer(c, (struct answer){.code = 503, .minor = 1});
        return;
    }
    buf_fini(&x);
    c->tls = NULL; /* the callback took it */
    m->n.answers++;
    m->n.upgrades++;
    conn_close(c);
}

/* ---- reading -------------------------------------------------------------- */

/* Whether c->in may now hold a complete head or a bad request line, so that
 * parsing it can tell something new: the request line has just ended, an
 * empty line has just ended the head, or the buffer is full.  Each byte is
 * searched once (c->scan remembers how far), so a client that sends its
 * head a byte at a time costs a bounded number of parses, not one per
 * byte.  Empty lines before the request line, which the parser would skip
 * anyway, are dropped here, so they cannot pass for the end of a head. */
static int conn_head_ready(struct mconn *c)
{
    if (!c->line_seen) {
        const uint8_t *h = buf_head(&c->in);
        size_t used = buf_used(&c->in), k = 0;
        for (;;) {
            if (k < used && h[k] == '\n')
                k += 1;
            else if (k + 1 < used && h[k] == '\r' && h[k + 1] == '\n')
                k += 2;
            else
                break;
        }
        buf_consume(&c->in, k);
        c->scan = c->scan > k ? c->scan - k : 0;
    }
    const uint8_t *h = buf_head(&c->in);
    size_t used = buf_used(&c->in);
    if (used >= MHTTP_HEAD_MAX)
        return 1;
    for (size_t k = c->scan; k < used; k++) {
        if (h[k] != '\n')
            continue;
        int ready = !c->line_seen || (k >= 1 && h[k - 1] == '\n') ||
                    (k >= 2 && h[k - 1] == '\r' && h[k - 2] == '\n');
        c->line_seen = 1;
        if (ready) {
            c->scan = k + 1;
            return 1;
        }
    }
    c->scan = used;
    return 0;
}

static void on_resume(uv_idle_t *h);

/* Under TLS: decrypts what the session holds into c->in, as far as it has
 * room (the rest stays in the session for the next call), and sends what
 * the handshake queued.  Returns 0, or -1 when c was closed or is now
 * writing its handshake flight (conn_process runs again after it). */
static int conn_tls_pump(struct mconn *c)
{
    struct mhttp *m = c->m;
    for (;;) {
        size_t room = MHTTP_HEAD_MAX - buf_used(&c->in);
        uint8_t *p = room ? buf_reserve(&c->in, room) : NULL;
        if (!p)
            break;
        int k = tls_read(c->tls, p, room);
        if (k == 0)
            break;
        if (k < 0) {
            if (k == P2C2R_ETLS) {
                m->n.tls_failures++;
                LOG_D("metrics_tls_failed", "err=%s", tls_error(c->tls));
                conn_send_tls_out(c, 0); /* the alert, then the end */
            } else {
                conn_close(c); /* close_notify */
            }
            return -1;
        }
        buf_commit(&c->in, (size_t)k);
    }
    if (buf_used(tls_out(c->tls)) > 0) {
        conn_send_tls_out(c, 1);
        if (c->state != MC_READING)
            return -1;
    }
    return 0;
}

/* A client that sent plaintext to a TLS port gets one plaintext answer
 * saying so, and the end. */
static void conn_refuse_plain(struct mconn *c)
{
#define PLAIN_BODY "TLS required: this port speaks HTTPS only (https:// and wss:// URLs)\n"
    _Static_assert(sizeof(PLAIN_BODY) - 1 == 69, "Content-Length below");
    static const char ans[] = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 69\r\nConnection: close\r\n\r\n" PLAIN_BODY;
#undef PLAIN_BODY
    tls_free(c->tls);
    c->tls = NULL;
    c->m->n.tls_plain_refused++;
    c->m->n.answers++;
    buf_consume(&c->in, buf_used(&c->in));
    uv_buf_t b = uv_buf_init((char *)ans, sizeof(ans) - 1);
    conn_send_raw(c, &b, 1, 0);
}

/* Connections with a request left in their input wait on m->pending for the
 * next loop iteration, not reading meanwhile. */
static void conn_defer(struct mconn *c)
{
    struct mhttp *m = c->m;
    conn_read_stop(c);
    if (!list_linked(&c->pnode))
        list_push_back(&m->pending, &c->pnode);
    if (!m->resuming) {
        uv_idle_start(&m->resumer, on_resume);
        m->resuming = 1;
    }
}

/* Answers the first head in c->in, if it is complete and the connection is
 * READING; defers the rest of the input, or reads more. */
static void conn_process(struct mconn *c)
{
    if (c->state != MC_READING)
        return;
    if (c->tls && conn_tls_pump(c) != 0)
        return;
    if (buf_used(&c->in) > 0 && conn_head_ready(c)) {
        struct mhttp_req r;
        int n = mhttp_parse_head((const char *)buf_head(&c->in), buf_used(&c->in), &r);
        if (n < 0) {
            LOG_D("metrics_bad_request", "err=%s used=%zu", p2c2r_errname(n), buf_used(&c->in));
            conn_answer(c, (struct answer){.code = n == P2C2R_ETOOBIG ? 431 : 400, .minor = 1});
            return;
        }
        if (n > 0) {
            struct answer a = request_answer(c->m, &r);
            if (a.code == 101) {
                conn_upgrade(c, &r, (size_t)n);
                return;
            }
            buf_consume(&c->in, (size_t)n);
            c->scan = 0;
            c->line_seen = 0;
            conn_answer(c, a);
            if (c->state == MC_READING && buf_used(&c->in) > 0) {
                conn_defer(c);
                return;
            }
        }
    }
    if (c->state == MC_READING) {
        buf_shrink(&c->in, 0);
        conn_read_start(c);
    }
}

static void on_resume(uv_idle_t *h)
{
    struct mhttp *m = h->data;
    /* Only the connections waiting now: one deferred again goes back on
     * m->pending for the next iteration. */
    struct list_node batch;
    list_init(&batch);
    if (!list_empty(&m->pending)) {
        batch.next = m->pending.next;
        batch.prev = m->pending.prev;
        batch.next->prev = &batch;
        batch.prev->next = &batch;
        list_init(&m->pending);
    }
    struct list_node *n;
    while ((n = list_pop_front(&batch)) != NULL)
        conn_process(list_entry(n, struct mconn, pnode));
    if (list_empty(&m->pending)) {
        uv_idle_stop(&m->resumer);
        m->resuming = 0;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct mconn *c = h->data;
    (void)suggested;
    if (c->state == MC_DRAINING) {
        *out = uv_buf_init(c->m->discard, sizeof(c->m->discard));
        return;
    }
    if (c->tls) {
        /* Ciphertext goes to the session's own buffer. */
        size_t cap = 0;
        uint8_t *p = tls_in_space(c->tls, 16384 + 64, &cap);
        *out = p ? uv_buf_init((char *)p, (unsigned)cap) : uv_buf_init(NULL, 0);
        return;
    }
    /* Never more than fits under the head limit: a full buffer is a 431,
     * answered before the next read. */
    size_t room = MHTTP_HEAD_MAX - buf_used(&c->in);
    uint8_t *p = room ? buf_reserve(&c->in, room) : NULL;
    *out = p ? uv_buf_init((char *)p, (unsigned)room) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct mconn *c = s->data;
    (void)b;
    if (c->state == MC_CLOSED)
        return;
    if (nread < 0) {
        if (nread != UV_EOF)
            LOG_D("metrics_read_error", "err=%s", uv_strerror((int)nread));
        /* A client that half-closed after its request still gets the answer
         * that is being written; the linger or the shutdown ends it. */
        c->eof = 1;
        conn_read_stop(c);
        if (c->state != MC_DRAINING || c->shut_done || nread != UV_EOF)
            conn_close(c);
        return;
    }
    if (nread == 0 || c->state != MC_READING)
        return;
    if (c->tls) {
        if (c->tls_fresh) {
            c->tls_fresh = 0;
            if ((uint8_t)b->base[0] != TLS_RECORD_HANDSHAKE) {
                conn_refuse_plain(c);
                return;
            }
        }
        tls_in_commit(c->tls, (size_t)nread);
    } else {
        buf_commit(&c->in, (size_t)nread);
    }
    conn_process(c);
}

/* Between requests: nothing of a head read, nothing being answered. */
static int conn_idle(const struct mconn *o)
{
    return o->state == MC_READING && !o->writing && buf_used(&o->in) == 0 &&
           !list_linked(&o->pnode);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct mhttp *m = server->data;
    if (status < 0) {
        LOG_D("metrics_accept_error", "err=%s", uv_strerror(status));
        return;
    }
    struct mconn *c = xcalloc(1, sizeof(*c));
    c->m = m;
    list_init(&c->node);
    list_init(&c->pnode);
    buf_init(&c->in, MHTTP_HEAD_MAX);
    buf_init(&c->out, (size_t)MHTTP_BODY_MAX + HEADER_MAX);
    uv_tcp_init(m->loop, &c->tcp);
    c->tcp.data = c;
    m->nhandles++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (m->tls) {
        /* One whole answer, encrypted (a record header and tag per 16 KiB). */
        size_t out_max = (size_t)MHTTP_BODY_MAX + HEADER_MAX + MHTTP_BODY_MAX / 512 + 4096;
        c->tls = tls_new(m->tls, NULL, out_max);
        c->tls_fresh = 1;
        if (!c->tls) {
            conn_close(c);
            return;
        }
    }
    m->n.accepted++;
    if (m->nconns >= MHTTP_MAX_CONNS) {
        /* The oldest idle connection makes room (the issue 12 attack: 64
         * idle sockets used to lock every scrape out). */
        struct list_node *n;
        for (n = m->conns.next; n != &m->conns; n = n->next) {
            struct mconn *o = list_entry(n, struct mconn, node);
            if (conn_idle(o)) {
                m->n.evicted++;
                LOG_D("metrics_conn_evicted", "conns=%u evicted=%" PRIu64, m->nconns, m->n.evicted);
                conn_close(o);
                break;
            }
        }
    }
    if (m->nconns >= MHTTP_MAX_CONNS) {
        m->n.refused++;
        LOG_D("metrics_conn_refused", "conns=%u refused=%" PRIu64, m->nconns, m->n.refused);
        conn_close(c);
        return;
    }
    list_push_back(&m->conns, &c->node);
    c->listed = 1;
    m->nconns++;
    c->state = MC_READING;
    c->deadline_ms = uv_now(m->loop) + MHTTP_TIMEOUT_MS;
    uv_tcp_nodelay(&c->tcp, 1);
    conn_read_start(c);
}

static void on_sweep(uv_timer_t *t)
{
    struct mhttp *m = t->data;
    uint64_t now = uv_now(m->loop);
    struct list_node *n = m->conns.next;
    while (n != &m->conns) {
        struct mconn *c = list_entry(n, struct mconn, node);
        n = n->next;
        if (now >= c->deadline_ms) {
            if (c->state != MC_DRAINING || c->writing) {
                m->n.timeouts++;
                LOG_D("metrics_conn_timeout", "state=%u used=%zu held=%zu", c->state,
                      buf_used(&c->in), c->held);
            }
            conn_close(c);
        }
    }
}

/* ---- start and stop ------------------------------------------------------- */

int mhttp_start(uv_loop_t *loop, const char *addr, mhttp_render_fn fn, void *arg,
                struct mhttp **out, char *err, size_t errcap)
{
    assert(loop && fn && out);
    struct sockaddr_storage ss;
    socklen_t sl;
    if (!addr || addr_parse(addr, &ss, &sl) != 0) {
        if (errcap)
            snprintf(err, errcap,
                     "cannot parse metrics address '%s': expected HOST:PORT, e.g. 127.0.0.1:9090",
                     addr ? addr : "(null)");
        return P2C2R_EADDR;
    }
    struct mhttp *m = xcalloc(1, sizeof(*m));
    m->loop = loop;
    m->fn = fn;
    m->arg = arg;
    list_init(&m->conns);
    list_init(&m->pending);
    buf_init(&m->body, MHTTP_BODY_MAX);
    uv_tcp_init(loop, &m->listener);
    m->listener.data = m;
    m->nhandles = 1;
    int rc;
    if ((rc = uv_tcp_bind(&m->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&m->listener, 128, on_connection)) != 0) {
        if (errcap)
            snprintf(err, errcap,
                     "cannot listen on %s for metrics: %s (is the port in use? port 0 picks a "
                     "free one)",
                     addr, uv_strerror(rc));
        /* The listener is a live handle: m goes with its close callback. */
        m->stopping = 1;
        uv_close((uv_handle_t *)&m->listener, on_handle_closed);
        return P2C2R_EADDR;
    }
    int nl = sizeof(ss);
    uv_tcp_getsockname(&m->listener, (struct sockaddr *)&ss, &nl);
    addr_format((struct sockaddr *)&ss, m->addr, sizeof(m->addr));
    uv_timer_init(loop, &m->sweeper);
    m->sweeper.data = m;
    m->nhandles++;
    uv_timer_start(&m->sweeper, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_idle_init(loop, &m->resumer);
    m->resumer.data = m;
    m->nhandles++;
    LOG_D("metrics_started", "addr=%s", m->addr);
    *out = m;
    return 0;
}

const char *mhttp_addr(const struct mhttp *m) { return m->addr; }

void mhttp_set_token(struct mhttp *m, const char *token)
{
    free(m->token);
    m->token = token && *token ? xstrdup(token) : NULL;
}

void mhttp_set_auth(struct mhttp *m, mhttp_auth_fn fn, void *arg)
{
    m->auth = fn;
    m->auth_arg = arg;
}

void mhttp_set_root(struct mhttp *m, const char *dir)
{
    free(m->root);
    m->root = dir && *dir ? xstrdup(dir) : NULL;
}

void mhttp_set_tls(struct mhttp *m, struct tls_ctx *ctx) { m->tls = ctx; }

void mhttp_set_upgrade(struct mhttp *m, mhttp_upgrade_fn fn, void *arg)
{
    m->upgrade = fn;
    m->upgrade_arg = arg;
}

void mhttp_stats(const struct mhttp *m, struct mhttp_stats *out)
{
    assert(m && out);
    *out = m->n;
    out->conns = m->nconns;
    out->busy = 0;
    for (const struct list_node *n = m->conns.next; n != &m->conns; n = n->next)
        out->busy += !conn_idle(list_entry(n, const struct mconn, node));
    out->held = m->held;
}

void mhttp_stop(struct mhttp *m)
{
    if (!m)
        return;
    assert(!m->stopping);
    m->stopping = 1;
    struct list_node *n;
    while ((n = list_pop_front(&m->conns)) != NULL) {
        struct mconn *c = list_entry(n, struct mconn, node);
        c->listed = 0;
        m->nconns--;
        conn_close(c);
    }
    uv_close((uv_handle_t *)&m->listener, on_handle_closed);
    uv_close((uv_handle_t *)&m->sweeper, on_handle_closed);
    uv_close((uv_handle_t *)&m->resumer, on_handle_closed);
    LOG_D("metrics_stopped", "addr=%s refused=%" PRIu64, m->addr, m->n.refused);
}
