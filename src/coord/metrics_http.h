/* metrics_http.h - a tiny HTTP/1.1 server on a caller's libuv loop: the
 * coordinator's HTTP port (p2c2rd --http HOST:PORT), which serves Prometheus
 * text at /metrics, static pages from a directory, and hands WebSocket
 * upgrades at /ws to the gateway (src/coord/gateway.c).
 *
 * Routes (a static table in metrics_http.c; a query string is ignored):
 *   /metrics          200 with the body the render callback produces; when a
 *                     token or a token check is set (mhttp_set_token,
 *                     mhttp_set_auth), only for a request with
 *                     "Authorization: Bearer TOKEN" one of them accepts,
 *                     else 401
 *   /ws               a WebSocket upgrade (GET with Upgrade: websocket,
 *                     Connection: upgrade, Sec-WebSocket-Version: 13 and a
 *                     Sec-WebSocket-Key) handed to the upgrade callback; a
 *                     plain GET gets 426, a bad upgrade 400
 *   /, /contribute,   files index.html, contribute.html, demo.html of the
 *   /demo             root directory (mhttp_set_root); "/" without an
 *                     index.html serves the metrics as before
 *   /static/NAME      the file NAME of the root directory (NAME of
 *                     [A-Za-z0-9._-], not starting with a dot)
 * Other paths get 404, other methods 405, malformed heads 400, a head over
 * MHTTP_HEAD_MAX bytes 431, versions other than HTTP/1.0 and 1.1 505.  A GET or HEAD carrying a
 * body (Content-Length > 0 or any Transfer-Encoding) is answered 400.
 * Keep-alive is the default for HTTP/1.1 ("Connection: close" ends it) and
 * opt-in for HTTP/1.0 ("Connection: keep-alive"); pipelined requests are
 * answered in order.  After 400, 405 with a body, 431 and 505 the connection
 * is closed, since where the next request would start is unknown.
 *
 * Limits on what a client can do:
 * - at most MHTTP_MAX_CONNS connections: when that many are open, a new one
 *   takes the place of the oldest idle one (no request started, no answer
 *   being written), which is closed (counted as evicted), so idle sockets
 *   cannot lock scrapes out; only when none is idle is the new one closed
 *   as soon as it is accepted (counted as refused);
 * - a head of at most MHTTP_HEAD_MAX bytes, the only input kept per
 *   connection, and each byte of it examined a bounded number of times
 *   however the client splits it;
 * - a connection is closed when it has not completed a request head within
 *   MHTTP_TIMEOUT_MS of being accepted or of its previous answer being taken
 *   by the kernel, or has not had an answer taken within MHTTP_TIMEOUT_MS of
 *   starting it (so a slow reader holds its answer for a bounded time);
 * - while an answer waits for a slow reader nothing more is read from that
 *   connection, so one connection holds at most one answer, and the answers
 *   waiting for slow readers hold at most MHTTP_HELD_MAX bytes in all: a
 *   connection whose answer would go over that is closed instead;
 * - of the pipelined requests one read brings in, the first is answered at
 *   once and the rest one per loop iteration, so a client that floods
 *   requests cannot keep the loop from its other work.
 *
 * Everything runs on the loop's thread; nothing here is thread-safe. */
#ifndef P2C2R_METRICS_HTTP_H
#define P2C2R_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"

#define MHTTP_HEAD_MAX 8192u         /* request line + header fields + blank line */
#define MHTTP_MAX_CONNS 256u         /* concurrent connections */
#define MHTTP_TIMEOUT_MS 5000u       /* to send a request head, or to take an answer */
#define MHTTP_BODY_MAX (8u << 20)    /* bytes the render callback may append */
#define MHTTP_HELD_MAX (32u << 20)   /* answer bytes waiting for slow readers, all connections */

struct mhttp;

/* Appends the metrics body to o for one GET or HEAD of "/metrics" or "/"
 * (HEAD renders too, so its Content-Length is the real one).  o is empty on
 * entry and capped at MHTTP_BODY_MAX: appends past that fail (buf_append
 * returns P2C2R_ETOOBIG) and the answer carries what fitted.  Called on the
 * loop thread; o is valid until the callback returns.  It must not call
 * mhttp_stop. */
typedef void (*mhttp_render_fn)(void *arg, struct buf *o);

/* Starts listening on addr ("HOST:PORT" or "[V6]:PORT"; port 0 picks a free
 * port, see mhttp_addr) on loop, which the caller keeps running.  fn and arg
 * are borrowed until mhttp_stop.  On success *out is a new server, to be
 * released with mhttp_stop.  Returns 0, or P2C2R_EADDR when addr does not
 * parse or cannot be listened on, with a reason for the operator in err
 * (err may be NULL when errcap is 0).  On failure *out is untouched; any
 * memory is released by the loop's next run. */
int mhttp_start(uv_loop_t *loop, const char *addr, mhttp_render_fn fn, void *arg,
                struct mhttp **out, char *err, size_t errcap);

/* The bound address as "HOST:PORT"; valid until mhttp_stop. */
const char *mhttp_addr(const struct mhttp *m);

/* What the server has done since mhttp_start, and what it holds now. */
struct mhttp_stats {
    uint64_t accepted;   /* connections accepted, refused ones included */
    uint64_t refused;    /* closed at once because MHTTP_MAX_CONNS were open, none idle */
    uint64_t evicted;    /* idle connections closed to make room for a new one */
    uint64_t unauthorized; /* 401 answers (no or a wrong bearer token) */
    uint64_t upgrades;   /* WebSocket upgrades handed to the upgrade callback */
    uint64_t answers;    /* answers started, whatever their status */
    uint64_t bad;        /* of those, 400, 431 and 505 */
    uint64_t timeouts;   /* connections closed for missing a deadline */
    uint64_t overloaded; /* connections closed because MHTTP_HELD_MAX was reached */
    uint64_t tls_plain_refused; /* under TLS: plaintext requests answered 400 */
    uint64_t tls_failures;      /* under TLS: failed handshakes and records */
    uint32_t conns;      /* connections open now (refused ones not counted) */
    uint32_t busy;       /* of those, in the middle of a request or an answer */
    size_t held;         /* answer bytes waiting for slow readers now */
};

/* Requires "Authorization: Bearer TOKEN" for /metrics (token copied; NULL
 * or "" for none). */
void mhttp_set_token(struct mhttp *m, const char *token);

/* A second way to be authorized for /metrics: fn(arg, token, len) returns
 * nonzero for a bearer token it accepts (the coordinator: an operator
 * account's).  With fn set /metrics needs a token, whether or not
 * mhttp_set_token set one.  fn NULL: none. */
typedef int (*mhttp_auth_fn)(void *arg, const char *token, size_t len);
void mhttp_set_auth(struct mhttp *m, mhttp_auth_fn fn, void *arg);

/* Serves static pages from dir (copied; NULL for none). */
void mhttp_set_root(struct mhttp *m, const char *dir);

/* Speaks TLS (common/tls.h) on every connection accepted from now on, with
 * ctx (borrowed until mhttp_stop): HTTPS, and wss at /ws.  A client whose
 * first byte opens no TLS record gets a plaintext "400 Bad Request" saying
 * TLS is required, and the end.  NULL: plaintext. */
struct tls_ctx;
void mhttp_set_tls(struct mhttp *m, struct tls_ctx *ctx);

/* A WebSocket upgrade of /ws, checked and answerable: fd is a duplicate of
 * the connection's socket that the callback now owns (the server closes its
 * own handle), tls the connection's TLS session past its handshake (NULL
 * for plaintext), which the callback owns too once it returns 0 and whose
 * ciphertext input is all consumed (everything it held is in extra), accept is the Sec-WebSocket-Accept value for the 101 answer
 * the callback must send first, and extra[0..extra_len) the bytes the
 * client sent after its request head (borrowed for the call).  Returns 0
 * when it took fd, else nonzero, and the server answers 503 and closes fd. */
struct tls;
typedef int (*mhttp_upgrade_fn)(void *arg, int fd, struct tls *tls, const char *accept,
                                const uint8_t *extra, size_t extra_len);

/* Hands WebSocket upgrades of /ws to fn (borrowed until mhttp_stop); without
 * it /ws is 404. */
void mhttp_set_upgrade(struct mhttp *m, mhttp_upgrade_fn fn, void *arg);

/* Copies the counters into *out. */
void mhttp_stats(const struct mhttp *m, struct mhttp_stats *out);

/* Closes the listener and every connection now (answers in flight are
 * dropped) and frees m once all their close callbacks ran, so the loop must
 * keep running for that.  fn is not called again.  NULL is a no-op. */
void mhttp_stop(struct mhttp *m);

/* ---- the request-head parser (pure, exposed for tests and fuzzing) ------ */

enum mhttp_method { MHTTP_METHOD_OTHER = 0, MHTTP_METHOD_GET, MHTTP_METHOD_HEAD };

enum {
    MHTTP_REQ_CLOSE = 1u << 0,      /* Connection: close */
    MHTTP_REQ_KEEP_ALIVE = 1u << 1, /* Connection: keep-alive */
    MHTTP_REQ_LENGTH = 1u << 2,     /* Content-Length present (see content_length) */
    MHTTP_REQ_TE = 1u << 3,         /* Transfer-Encoding present, any value */
    MHTTP_REQ_UPGRADE = 1u << 4,    /* Connection: upgrade */
    MHTTP_REQ_WEBSOCKET = 1u << 5,  /* Upgrade: websocket */
};

/* A parsed request head.  method and target point into the parsed bytes and
 * are valid as long as those are. */
struct mhttp_req {
    const char *method; /* a token, method_len >= 1 */
    size_t method_len;
    const char *target; /* printable ASCII without spaces, target_len >= 1 */
    size_t target_len;
    uint8_t method_id; /* enum mhttp_method */
    uint8_t major, minor; /* HTTP/major.minor, one digit each, any value */
    unsigned flags;       /* MHTTP_REQ_* */
    uint64_t content_length; /* 0 unless MHTTP_REQ_LENGTH */
    /* Values of these fields (the last one of each name), NULL when absent. */
    const char *auth;   /* Authorization */
    size_t auth_len;
    const char *ws_key; /* Sec-WebSocket-Key */
    size_t ws_key_len;
    const char *ws_version; /* Sec-WebSocket-Version */
    size_t ws_version_len;
};

/* Parses the request head at the start of p[0..n): a request line, header
 * fields and an empty line, lines ending in CRLF or a bare LF; empty lines
 * before the request line are skipped.  Reads at most min(n,
 * MHTTP_HEAD_MAX) bytes and never allocates.  Returns the length of the head
 * (<= MHTTP_HEAD_MAX), with *out filled; 0 when p is a valid but incomplete
 * head shorter than MHTTP_HEAD_MAX (feed more bytes); P2C2R_ETOOBIG when the
 * first MHTTP_HEAD_MAX bytes hold no complete head; P2C2R_EPROTO when the
 * bytes so far cannot start a valid head: a bad request line (method,
 * single spaces, target, "HTTP/d.d"), a bad field name, a control
 * character in a value, obs-fold, a CR without LF, or a Content-Length that
 * is not one decimal number (or is repeated with another value).  *out is
 * written only on success.  Thread-safe. */
int mhttp_parse_head(const char *p, size_t n, struct mhttp_req *out);

/* Whether p[0..n) equals the lower-case literal lit, ignoring the case of
 * p's ASCII letters (header names and tokens: http_parse.c). */
int http_ieq(const char *p, size_t n, const char *lit);

#endif
