/* conn.c - connections: accepting, framing in and out (common/fconn), the message handler
 * table, cutting a misbehaving connection with a reason, detaching a closed one from
 * every piece of scheduling state, and per-connection timeouts and pings. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"
#include "coord/jobs.h"

static void conn_detach(struct conn *c);

const char *conn_state_name(int s)
{
    static const char *const n[] = {"hello", "ready", "draining", "closed"};
    return s >= 0 && s <= CS_CLOSED ? n[s] : "?";
}

/* ---- output --------------------------------------------------------------- */

/* Reserves a whole frame in c's output and writes its header.  Returns the
 * body pointer (body_len bytes to fill now), or NULL when the connection is
 * draining or its output would pass its cap: the caller must then cut the
 * connection. */
size_t conn_out_pending(const struct conn *c)
{
    return buf_used(&c->io.out) + buf_used(&c->io.sending);
}

uint8_t *conn_frame(struct conn *c, uint8_t type, uint16_t flags, uint64_t req_id, uint32_t body_len)
{
    if (c->state >= CS_DRAINING)
        return NULL;
    uint8_t *p = fconn_frame(&c->io, type, flags, req_id, body_len);
    if (p) {
        c->co->n.bytes_out += PROTO_HDR_LEN + (size_t)body_len;
        limits_charge_buffers(c); /* the caller fills the body: no cut here */
    }
    return p;
}

/* Sends a frame whose body is prefix + payload; a large payload is written
 * without a copy when it can be (fconn_send).  Returns 0, or -1 when the
 * output would pass its cap (the caller cuts the connection). */
int conn_send(struct conn *c, uint8_t type, uint64_t req_id, const uint8_t *prefix, size_t prefix_len,
              const uint8_t *payload, size_t payload_len)
{
    if (c->state >= CS_DRAINING ||
        fconn_send(&c->io, type, req_id, prefix, prefix_len, payload, payload_len) != 0)
        return -1;
    c->co->n.bytes_out += PROTO_HDR_LEN + prefix_len + payload_len;
    return limits_sync_buffers(c);
}

/* A write failed: the connection is gone. */
static void on_io_error(struct fconn *f, int status)
{
    struct conn *c = f->tcp.data;
    c->co->now = now_us();
    LOG_D("conn_write_error", "conn=%" PRIu64 " err=%s", c->id, uv_strerror(status));
    conn_close(c);
}

/* Detaches the connections cut since the last call (see conn_fail). */
void conn_reap(struct coord *co)
{
    struct list_node *n;
    while ((n = list_pop_front(&co->reap)) != NULL)
        conn_detach(list_entry(n, struct conn, reap_node));
}

void conn_on_check(uv_check_t *h)
{
    struct coord *co = h->data;
    co->now = now_us();
    conn_reap(co);
    if (co->tls)
        tlsserve_admit(co);
    /* Hedges are due at a type's p95, often a few hundred microseconds:
     * looking at each type's oldest attempt after every loop iteration
     * costs O(types) and starts a copy as soon as one is due, instead of
     * at the next 5 ms sweep (which still covers an idle loop). */
    sched_sweep_hedges(co, co->now);
    /* Durable changes commit before any output leaves: a JOB_ACK, and an
     * ASSIGN of a job, go out only once the job is in the database. */
    jobs_flush(co, 0);
    gw_flush_all(co);
    fconn_flush_all(&co->dirty);
}

/* ---- connections ------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    fconn_fini(&c->io);
    gw_free(c->gw);
    if (c->peer)
        free(c->peer->has);
    free(c->peer);
    free(c);
}

/* Removes c from all scheduling state (renter_detach, peer_detach). */
static void conn_detach(struct conn *c)
{
    if (c->detached)
        return;
    c->detached = 1;
    list_remove(&c->reap_node);
    if (c->role == ROLE_RENTER && c->state != CS_HELLO) {
        renter_detach(c);
        jobs_conn_gone(c);
    }
    if (c->peer)
        peer_detach(c->co, c->peer);
    account_logout(c);
}

void conn_close(struct conn *c)
{
    if (c->state >= CS_CLOSED)
        return;
    struct coord *co = c->co;
    conn_detach(c);
    c->state = CS_CLOSED;
    limits_conn_closed(c);
    fconn_stop(&c->io);
    if (co->walk == &c->all_node)
        co->walk = c->all_node.next;
    list_remove(&c->all_node);
    list_remove(&c->drain_node);
    if (co->tls)
        tlsserve_closed(c);
    co->nconns--;
    LOG_D("conn_closed", "conn=%" PRIu64 " addr=%s", c->id, c->addr);
    uv_close((uv_handle_t *)&c->io.tcp, on_closed);
}

/* Cuts a misbehaving or failed connection: sends ERROR(code, reason), stops
 * using it for anything, and closes it once the error had a moment to leave
 * (reads are discarded meanwhile so the kernel does not reset it early). */
void conn_fail(struct conn *c, int code, const char *fmt, ...)
{
    if (c->state >= CS_DRAINING)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = sizeof(text) - 1;
    char esc[4 * sizeof(text)];
    /* A HELLO refused while its address backs off (EAGAIN) is a guesser's
     * routine: one warning when the backoff starts (account.c), not one per
     * attempt. */
    LOG(code == P2C2R_ESHUTDOWN || code == P2C2R_ECLOSED ? LOG_INFO : code == P2C2R_EAGAIN ? LOG_DEBUG : LOG_WARN, "conn_cut",
        "conn=%" PRIu64 " addr=%s role=%u state=%s code=%s reason=\"%s\"", c->id, c->addr, c->role,
        conn_state_name(c->state), p2c2r_errname(code), log_esc(esc, sizeof(esc), text, (size_t)n));
    if (code == P2C2R_EPROTO || code == P2C2R_ETOOBIG)
        c->co->n.proto_errors++;
    else if (code == P2C2R_ELIMIT)
        c->co->n.limit_cuts++;
    /* Detaching requeues or frees tasks, which must not happen under a
     * caller that is walking a task list: it is deferred to conn_reap, at
     * the top of the next check or sweep.  Until then the connection takes
     * no new work: it is draining, and a peer's slots drop to zero. */
    c->state = CS_DRAINING;
    limits_conn_left_pool(c);
    c->drain_until_us = c->co->now + DRAIN_MS * 1000;
    list_push_back(&c->co->draining, &c->drain_node);
    if (c->peer)
        peer_refresh(c->co, c->peer); /* draining: no new work */
    if (!c->detached && !list_linked(&c->reap_node))
        list_push_back(&c->co->reap, &c->reap_node);
    /* A connection cut for not reading loses what was queued for it: the
     * error should not wait behind megabytes nobody reads.  Otherwise what
     * was queued (outcomes, at shutdown) goes out before the error. */
    if (code == P2C2R_ELIMIT)
        buf_consume(&c->io.out, buf_used(&c->io.out));
    size_t bl = proto_error_size((size_t)n);
    uint8_t *b = fconn_frame(&c->io, MSG_ERROR, 0, 0, (uint32_t)bl);
    if (b)
        proto_put_error(b, (uint16_t)-code, text, (size_t)n);
}

static int on_ping(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint8_t *b = conn_frame(c, MSG_PONG, 0, h->req_id, h->body_len);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "output over limit");
        return -1;
    }
    memcpy(b, body, h->body_len);
    return 0;
}

static int on_remote_error(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct msg_error m;
    char esc[512];
    if (proto_parse_error(body, h->body_len, &m) == 0)
        LOG_W("remote_error", "conn=%" PRIu64 " code=%u text=\"%s\"", c->id, m.code,
              log_esc(esc, sizeof(esc), m.text.p, m.text.len));
    conn_close(c);
    return -1;
}

#define R_NONE (1u << ROLE_NONE)
#define R_RENTER (1u << ROLE_RENTER)
#define R_PEER (1u << ROLE_PEER)

/* What each role may send; anything else closes the connection. */
static const struct handler {
    uint8_t type;
    uint8_t roles;
    int (*fn)(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
} handlers[] = {
    {MSG_HELLO, R_NONE, renter_on_hello},
    {MSG_ERROR, R_NONE | R_RENTER | R_PEER, on_remote_error},
    {MSG_PING, R_RENTER | R_PEER, on_ping},
    {MSG_PONG, R_RENTER | R_PEER, peer_on_pong},
    {MSG_PEER_REGISTER, R_PEER, peer_on_register},
    {MSG_CREDIT, R_PEER, peer_on_credit},
    {MSG_RESULT, R_PEER, peer_on_result},
    {MSG_SUBMIT, R_RENTER, renter_on_submit},
    {MSG_SUBMIT_BATCH, R_RENTER, renter_on_submit_batch},
    {MSG_CANCEL, R_RENTER, renter_on_cancel},
    {MSG_STATS_REQ, R_RENTER, stats_on_request},
    {MSG_BLOB_PUT, R_RENTER, blob_on_put},
    {MSG_JOB_SUBMIT, R_RENTER, jobs_on_submit},
    {MSG_JOB_REQ, R_RENTER, jobs_on_request},
    {MSG_JOB_LIST, R_RENTER, jobs_on_list},
};

static const struct handler *handler_for(uint8_t type)
{
    static const struct handler *by_type[256];
    static int init;
    if (!init) {
        for (size_t i = 0; i < ARRAY_LEN(handlers); i++)
            by_type[handlers[i].type] = &handlers[i];
        init = 1;
    }
    return by_type[type];
}

int conn_dispatch(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    const struct handler *hd = handler_for(h->type);
    uint8_t role = c->state == CS_HELLO ? ROLE_NONE : c->role;
    if (!hd) {
        conn_fail(c, P2C2R_EPROTO, "unknown message type 0x%02x", h->type);
        return -1;
    }
    if (!(hd->roles & (1u << role))) {
        conn_fail(c, P2C2R_EPROTO, "message %s not allowed for %s in state %s",
                  proto_type_name(h->type),
                  role == ROLE_RENTER ? "renter" : role == ROLE_PEER ? "peer" : "connection",
                  conn_state_name(c->state));
        return -1;
    }
    if (h->type == MSG_PEER_REGISTER || h->type == MSG_RESULT || h->type == MSG_CREDIT) {
        /* fine */
    } else if (role == ROLE_PEER && !c->peer && h->type != MSG_ERROR && h->type != MSG_PING &&
               h->type != MSG_PONG) {
        conn_fail(c, P2C2R_EPROTO, "peer must send PEER_REGISTER first");
        return -1;
    }
    return hd->fn(c, h, body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct conn *c = h->data;
    (void)suggested;
    fconn_alloc(&c->io, c->co->rbuf, READ_CHUNK, out);
}

/* One whole frame: dispatched unless the connection is already being cut
 * (a handler may cut its own connection, e.g. a peer whose output filled
 * while it was given new work, and still return 0). */
static int on_frame(struct fconn *f, const struct frame_hdr *h, const uint8_t *body)
{
    struct conn *c = f->tcp.data;
    if (c->state >= CS_DRAINING)
        return 1; /* a TLS handshake finishing while its refusal waits */
    return conn_dispatch(c, h, body) != 0 || c->state >= CS_DRAINING;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
        else
            conn_close(c);
        return;
    }
    /* Nothing, or discarding while the error leaves; but a TLS handshake
     * goes on, or the error could never be sent. */
    if (nread == 0 || (c->state >= CS_DRAINING && (!c->io.tls || c->tls_done)))
        return;
    if (c->co->tls && tlsserve_hold(c, b, (size_t)nread))
        return; /* kept until a handshake slot is free */
    conn_input(c, b, (size_t)nread);
}

void conn_input(struct conn *c, const uv_buf_t *b, size_t nread)
{
    struct coord *co = c->co;
    co->n.bytes_in += (uint64_t)nread;
    co->now = now_us();
    c->last_rx_us = co->now;
    struct frame_hdr bad;
    int code = 0;
    int rc = fconn_input(&c->io, b, (size_t)nread, co->rbuf, on_frame, &bad, &code);
    if (co->tls && tlsserve_after_read(c, rc))
        return;
    switch (rc) {
    case FCONN_IN_BAD_HEADER:
        if (code == P2C2R_ETOOBIG)
            conn_fail(c, P2C2R_ETOOBIG, "frame body of %u bytes over the limit of %u", bad.body_len,
                      co->cfg.max_body);
        else
            conn_fail(c, P2C2R_EPROTO, "bad frame header (magic or version)");
        break;
    case FCONN_IN_FULL:
        conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
        break;
    default:
        if (c->state < CS_DRAINING)
            limits_after_read(c);
        break;
    }
}

void conn_abandon(struct conn *c) { uv_close((uv_handle_t *)&c->io.tcp, on_closed); }

int conn_setup(struct conn *c, struct list_node *dirty_list, size_t out_max, int tls)
{
    struct coord *co = c->co;
    c->id = ++co->next_conn_id;
    c->state = CS_HELLO;
    co->now = now_us();
    c->created_us = c->last_rx_us = co->now;
    fconn_init(&c->io, dirty_list, (size_t)co->cfg.max_body + PROTO_HDR_LEN + READ_CHUNK, out_max, 0,
               64u << 10, on_io_error);
    c->io.max_body = co->cfg.max_body;
    c->io.open = 1;
    list_init(&c->reap_node);
    list_init(&c->drain_node);
    list_init(&c->tasks);
    list_init(&c->hello_node);
    list_init(&c->stats_node);
    list_init(&c->anode);
    list_push_back(&co->conns, &c->all_node);
    co->nconns++;
    co->n.conns_total++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->io.tcp, (struct sockaddr *)&ss, &sl) == 0)
        addr_format((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
    uv_tcp_nodelay(&c->io.tcp, 1);
    list_init(&c->tls_wait_node);
    /* Before any ERROR below: a refusal goes out over TLS once the
     * handshake is done (tlsserve.c). */
    if (tls && co->tls)
        tlsserve_accept(c, co->stopping ||
                               co->nconns > 2 * ((uint64_t)co->cfg.max_conns + co->cfg.max_unauth));
    if (co->stopping) {
        conn_fail(c, P2C2R_ESHUTDOWN, "coordinator shutting down");
        return 1;
    }
    limits_conn_accepted(c);
    /* --max-conns is checked at HELLO and the pool before it is bounded
     * (limits.c); this only bounds the connections still draining. */
    if (co->nconns > 2 * ((uint64_t)co->cfg.max_conns + co->cfg.max_unauth)) {
        conn_fail(c, P2C2R_ELIMIT, "too many connections (limit %u)", co->cfg.max_conns);
        return 1;
    }
    return 0;
}

void conn_on_connection(uv_stream_t *server, int status)
{
    struct coord *co = server->data;
    if (status < 0) {
        LOG_W("accept_error", "err=%s", uv_strerror(status));
        return;
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->co = co;
    uv_tcp_init(&co->loop, &c->io.tcp);
    c->io.tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->io.tcp) != 0) {
        conn_abandon(c);
        return;
    }
    int refused = conn_setup(c, &co->dirty, co->cfg.max_output, 1);
    if (refused && co->stopping)
        return;
    conn_start_reading(c);
}

void conn_start_reading(struct conn *c)
{
    uv_read_start((uv_stream_t *)&c->io.tcp, on_alloc, on_read);
}

/* The timeout and ping checks of one connection. */
static void conn_check(struct coord *co, struct conn *c, uint64_t now)
{
    struct peer_rec *p = c->peer;
    if (c->state == CS_HELLO && now - c->created_us > co->cfg.hello_timeout_ms * 1000ull) {
        conn_fail(c, P2C2R_ETIMEDOUT, "no HELLO within %u ms", co->cfg.hello_timeout_ms);
    } else if (c->state == CS_READY && c->role == ROLE_PEER &&
               now - c->last_rx_us > co->cfg.peer_timeout_ms * 1000ull) {
        conn_fail(c, P2C2R_ETIMEDOUT, "peer silent for %u ms", co->cfg.peer_timeout_ms);
    } else if (limits_check_conn(c, now) != 0) {
        return;
    } else if (c->state == CS_READY && p) {
        peer_maybe_ping(co, p, now);
    }
}

/* Every 100 ms: closes connections done draining and checks a slice of all
 * connections for HELLO and silence timeouts and pings, such that each is
 * checked once per walk period: a quarter of the shortest of those timeouts, between 100 ms
 * and 1 s.  At 10,000 peers a full walk every 100 ms cost ~0.25 us of CPU
 * per task; a slice keeps the cost per second flat while every timeout
 * still fires within a quarter of its length. */
void conn_sweep(struct coord *co, uint64_t now)
{
    struct list_node *n = co->draining.next;
    while (n != &co->draining) {
        struct conn *c = list_entry(n, struct conn, drain_node);
        n = n->next;
        if (now >= c->drain_until_us ||
            (!c->io.writing && fconn_queued(&c->io) == 0 && now + DRAIN_MS * 500 >= c->drain_until_us))
            conn_close(c);
    }
    uint32_t period = co->cfg.hello_timeout_ms;
    if (co->cfg.peer_timeout_ms < period)
        period = co->cfg.peer_timeout_ms;
    if (co->cfg.ping_ms < period)
        period = co->cfg.ping_ms;
    if (co->cfg.frame_timeout_ms < period)
        period = co->cfg.frame_timeout_ms;
    period /= 4;
    period = period < CONN_SWEEP_TICKS * SWEEP_MS ? CONN_SWEEP_TICKS * SWEEP_MS : period > 1000 ? 1000 : period;
    uint32_t slices = period / (CONN_SWEEP_TICKS * SWEEP_MS);
    uint32_t quota = (co->nconns + slices - 1) / slices;
    for (uint32_t k = 0; k < quota && co->nconns; k++) {
        if (co->walk == &co->conns)
            co->walk = co->conns.next;
        struct conn *c = list_entry(co->walk, struct conn, all_node);
        co->walk = co->walk->next;
        conn_check(co, c, now);
    }
}
