/* link.c - one connection from the peer to its coordinator.
 *
 * A link goes idle -> connecting -> hello -> ready -> closing -> idle, and
 * from idle reconnects after an exponential backoff with jitter, until the
 * agent stops.  In hello it has sent HELLO; HELLO_OK makes it send
 * PEER_REGISTER (its types, their versions and flags), REGISTER_OK makes it
 * ready, and only then may ASSIGN, CANCEL and BLOB_DATA arrive.
 *
 * Output and input go through common/fconn, as the coordinator's
 * connections do: frames are built in place in the output buffer, a link
 * with output goes on the agent's dirty list, and once per loop iteration
 * (a check handle) every dirty link is written; reads land in the agent's
 * shared buffer unless a frame is partial, and every whole frame is
 * dispatched.
 *
 * Invariants: every ASSIGN received in a session
 * is answered by exactly one RESULT in that session, and a job finishing
 * after its link reconnected carries an old session number and is dropped,
 * because the coordinator has already requeued that task; misbehaviour of
 * the coordinator (a malformed frame, a message out of order) closes the
 * link with a reason and never crashes the peer. */
#include "peer/peer_int.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "common/ident.h"
#include "common/log.h"
#include "common/tls.h"
#include "p2c2r/error.h"

_Static_assert(PROTO_NONCE_LEN == IDENT_NONCE_LEN && PROTO_PK_LEN == IDENT_PK_LEN &&
                   PROTO_SIG_LEN == IDENT_SIG_LEN,
               "the wire carries ident.h's key, nonce and signature");

#define READ_CHUNK (64u * 1024)
/* A link that sent nothing for this long sends a PING (docs/PROTOCOL.md
 * 5.7), so that the coordinator hears from an idle peer before its
 * --peer-timeout.  The coordinator pings peers it has not heard from for its
 * --ping-interval, and the PONG counts as sending, so this fires only when
 * the coordinator pings less often than this.  At 1 s it made every idle
 * peer ping every second whatever --ping-interval said: with 10,000 idle
 * peers that kept the coordinator at ~7% of a core where 5 s costs ~2%. */
#define PING_IDLE_MS 5000

static const char *link_state_name(int s)
{
    static const char *const n[] = {"idle", "connecting", "hello", "ready", "closing"};
    return s >= 0 && s <= LS_CLOSING ? n[s] : "?";
}

/* ---- output ----------------------------------------------------------------- */

static uint8_t *link_frame(struct link *l, uint8_t type, uint64_t req_id, uint32_t body_len)
{
    uint8_t *p = fconn_frame(&l->io, type, 0, req_id, body_len);
    l->tx_frames++;
    return p;
}

/* A write failed: the coordinator is gone. */
static void on_io_error(struct fconn *f, int status)
{
    link_close(f->tcp.data, uv_strerror(status));
}

static void on_flush(uv_check_t *h)
{
    struct peer_agent *a = h->data;
    fconn_flush_all(&a->dirty);
}

void link_flusher_start(struct peer_agent *a)
{
    a->rbuf = xmalloc(READ_CHUNK);
    uv_check_init(&a->loop, &a->flusher);
    a->flusher.data = a;
    uv_check_start(&a->flusher, on_flush);
}

uint8_t *link_reserve(struct link *l, size_t n) { return buf_reserve(&l->io.out, n); }

void link_commit(struct link *l, size_t n)
{
    buf_commit(&l->io.out, n);
    fconn_mark_dirty(&l->io);
    l->tx_frames++;
}

void link_send_result_text(struct link *l, uint64_t task_id, int status, const char *text)
{
    size_t tl = strlen(text);
    uint8_t *b = link_frame(l, MSG_RESULT, task_id, (uint32_t)(PROTO_RESULT_PREFIX + tl));
    if (!b) {
        link_close(l, "output buffer full");
        return;
    }
    proto_put_result_head(b, (uint16_t)(status < 0 ? -status : status), 0);
    memcpy(b + PROTO_RESULT_PREFIX, text, tl);
    if (status == 0)
        l->done++;
    else
        l->failed++;
}

void link_job_done(struct link *l, uint32_t session, int status, const uint8_t *frame,
                   size_t frame_len)
{
    if (l->session != session || l->state != LS_READY)
        return;
    l->inflight--;
    if (status == 0)
        l->done++;
    else
        l->failed++;
    /* A large result going to an idle link is written from the job's own
     * buffer; only what the kernel leaves is copied. */
    l->tx_frames++;
    if (fconn_send_bytes(&l->io, frame, frame_len) != 0)
        link_close(l, "output buffer full");
}

/* ---- inbound ---------------------------------------------------------------- */

/* BLOB_DATA: 32-byte SHA-256, then the bytes. */
static int on_blob_data(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    if (h->body_len < PROTO_HASH_LEN)
        return P2C2R_EPROTO;
    size_t len = h->body_len - PROTO_HASH_LEN;
    if (pblob_put(&l->a->blobs, body, body + PROTO_HASH_LEN, len) != 0) {
        LOG_W("blob_hash_mismatch", "link=%u len=%zu", l->index, len);
        return P2C2R_EPROTO;
    }
    return 0;
}

/* PEER_REGISTER, signed: its capabilities, then the key and the signature
 * of the challenge (the HELLO_OK's nonce and conn_id, and the capabilities
 * as sent), built in place in the output buffer. */
static void send_register(struct link *l, const struct msg_hello_ok *ok)
{
    struct peer_agent *a = l->a;
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    m.cores = (uint16_t)(a->cfg.cores ? a->cfg.cores : cores > 0 ? cores : 1);
    m.slots = (uint16_t)a->cfg.slots;
    m.mem_bytes = a->cfg.mem_bytes ? a->cfg.mem_bytes
                  : pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    m.gpu = a->cfg.gpu_model ? 1 : 0;
    if (a->cfg.gpu_model) {
        m.gpu_model.p = (const uint8_t *)a->cfg.gpu_model;
        m.gpu_model.len = strlen(a->cfg.gpu_model);
    }
    m.ntypes = (uint8_t)a->nex;
    for (uint32_t i = 0; i < a->nex; i++) {
        m.types[i].name.p = (const uint8_t *)a->ex[i]->name;
        m.types[i].name.len = strlen(a->ex[i]->name);
        m.types[i].version = a->ex[i]->version;
        m.types[i].flags = (a->ex[i]->flags & P2C2R_EXEC_DETERMINISTIC) ? PROTO_TYPE_F_DETERMINISTIC : 0;
    }
    m.has_pool = a->cfg.pool != PROTO_POOL_VOLUNTEER || a->cfg.cost != 0;
    m.pool = a->cfg.pool;
    m.cost = a->cfg.cost;
    m.pk = l->key->pk;
    size_t n = proto_register_size(&m), signed_len = proto_register_signed_size(&m);
    uint8_t *b = link_frame(l, MSG_PEER_REGISTER, 2, (uint32_t)n);
    if (!b)
        return;
    proto_put_register(b, &m);
    ident_sign_challenge(l->key, ok->nonce, ok->conn_id, b, signed_len, b + signed_len + PROTO_PK_LEN);
}

static int link_dispatch(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    switch (h->type) {
    case MSG_HELLO_OK: {
        struct msg_hello_ok ok;
        if (l->state != LS_HELLO || proto_parse_hello_ok(body, h->body_len, &ok) != 0 ||
            ok.max_body < 1024)
            return P2C2R_EPROTO;
        if (!ok.has_nonce) {
            LOG_W("no_challenge", "link=%u coordinator=%s hint=\"the coordinator sent no nonce to "
                  "sign: it predates peer identity; upgrade it\"", l->index, l->a->cfg.coordinator);
            return P2C2R_EPROTO;
        }
        /* A result must fit in a DELIVER frame within the coordinator's
         * limit, which is what the renter was promised. */
        l->max_body = ok.max_body;
        l->max_output = ok.max_body - PROTO_DELIVER_PREFIX;
        if (l->max_output > l->a->cfg.max_output)
            l->max_output = l->a->cfg.max_output;
        l->io.max_body = ok.max_body;
        l->io.in.max = (size_t)ok.max_body + PROTO_HDR_LEN + READ_CHUNK;
        send_register(l, &ok);
        return 0;
    }
    case MSG_REGISTER_OK:
        if (l->state != LS_HELLO)
            return P2C2R_EPROTO;
        l->state = LS_READY;
        l->backoff_ms = l->a->cfg.backoff_min_ms;
        LOG_I("registered", "link=%u coordinator=%s slots=%u", l->index, l->a->cfg.coordinator,
              l->a->cfg.slots);
        return 0;
    case MSG_ASSIGN:
        if (l->state != LS_READY)
            return P2C2R_EPROTO;
        return pool_assign(l, h, body);
    case MSG_CANCEL:
        if (l->state != LS_READY)
            return P2C2R_EPROTO;
        pool_cancel(&l->a->pool, l, h->req_id);
        return 0;
    case MSG_PING: {
        uint8_t *b = link_frame(l, MSG_PONG, h->req_id, h->body_len);
        if (b)
            memcpy(b, body, h->body_len);
        return 0;
    }
    case MSG_PONG:
        return 0;
    case MSG_BLOB_DATA:
        return l->state == LS_READY ? on_blob_data(l, h, body) : P2C2R_EPROTO;
    case MSG_ERROR: {
        struct msg_error e;
        char esc[512];
        if (proto_parse_error(body, h->body_len, &e) == 0)
            LOG(e.code == (uint16_t)-P2C2R_ESHUTDOWN ? LOG_INFO : LOG_WARN, "coordinator_error",
                "link=%u code=%s text=\"%s\"", l->index, p2c2r_errname(-(int)e.code),
                log_esc(esc, sizeof(esc), e.text.p, e.text.len));
        return P2C2R_ECLOSED;
    }
    default:
        return P2C2R_EPROTO;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct link *l = h->data;
    (void)suggested;
    fconn_alloc(&l->io, l->a->rbuf, READ_CHUNK, out);
}

/* One whole frame from the coordinator; anything it should not have sent
 * closes the link. */
static int on_frame(struct fconn *f, const struct frame_hdr *h, const uint8_t *body)
{
    struct link *l = f->tcp.data;
    if (l->state != LS_HELLO && l->state != LS_READY)
        return 1;
    int rc = link_dispatch(l, h, body);
    if (rc != 0) {
        if (rc == P2C2R_EPROTO)
            LOG_W("protocol_error", "link=%u type=%s", l->index, proto_type_name(h->type));
        link_close(l, rc == P2C2R_ECLOSED ? "coordinator sent ERROR" : "unexpected message");
        return 1;
    }
    return l->state != LS_HELLO && l->state != LS_READY;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct link *l = s->data;
    if (nread < 0) {
        link_close(l, nread == UV_EOF ? "coordinator closed the connection"
                      : nread == UV_ENOBUFS ? "input buffer limit reached"
                                            : uv_strerror((int)nread));
        return;
    }
    if (nread == 0 || l->state == LS_CLOSING)
        return;
    struct frame_hdr bad;
    int code = 0;
    int rc = fconn_input(&l->io, b, (size_t)nread, l->a->rbuf, on_frame, &bad, &code);
    if (rc == FCONN_IN_TLS) {
        char why[320];
        snprintf(why, sizeof(why), "TLS failed: %s", tls_error(l->io.tls));
        link_close(l, why);
    } else if (rc == FCONN_IN_NOT_TLS) {
        link_close(l, "the coordinator answered without TLS: it has no --tls-cert (drop --tls-ca), "
                      "or this is not a p2c2r coordinator");
    } else if (rc == FCONN_IN_EOF) {
        link_close(l, "coordinator closed the connection");
    } else if (rc == FCONN_IN_BAD_HEADER)
        link_close(l, code == P2C2R_ETOOBIG ? "frame from coordinator over the announced limit"
                                            : "malformed frame from coordinator");
    else if (rc == FCONN_IN_FULL)
        link_close(l, "input buffer limit reached");
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void on_retry(uv_timer_t *t)
{
    struct link *l = t->data;
    link_connect(l);
}

static void schedule_retry(struct link *l)
{
    struct peer_agent *a = l->a;
    if (a->stopping)
        return;
    /* Exponential backoff with +-50% jitter so a fleet of peers does not
     * reconnect in lock-step after a coordinator restart. */
    uint32_t base = l->backoff_ms;
    uint32_t jitter = (uint32_t)(rng_next(&a->rng) % (base + 1));
    uint32_t delay = base / 2 + jitter;
    l->backoff_ms = base * 2 > a->cfg.backoff_max_ms ? a->cfg.backoff_max_ms : base * 2;
    LOG_I("reconnect_scheduled", "link=%u delay_ms=%u", l->index, delay);
    uv_timer_start(&l->retry, on_retry, delay, 0);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct link *l = h->data;
    l->tcp_open = 0;
    l->state = LS_IDLE;
    fconn_tls_detach(&l->io); /* each connection does its own handshake */
    buf_consume(&l->io.in, buf_used(&l->io.in));
    buf_consume(&l->io.out, buf_used(&l->io.out));
    buf_consume(&l->io.sending, buf_used(&l->io.sending));
    schedule_retry(l);
}

void link_close(struct link *l, const char *why)
{
    if (l->state == LS_CLOSING || l->state == LS_IDLE)
        return;
    LOG_I("link_closed", "link=%u state=%s why=\"%s\" done=%" PRIu64 " failed=%" PRIu64, l->index,
          link_state_name(l->state), why, l->done, l->failed);
    l->state = LS_CLOSING;
    l->session++;
    l->inflight = 0;
    fconn_stop(&l->io);
    /* Jobs not started for this link are useless now: the coordinator has
     * put them back in its queue. */
    pool_cancel_link(&l->a->pool, l);
    uv_close((uv_handle_t *)&l->io.tcp, on_tcp_closed);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct link *l = req->data;
    struct peer_agent *a = l->a;
    if (status < 0 || a->stopping) {
        if (status < 0)
            LOG_W("connect_failed", "link=%u coordinator=%s err=%s", l->index, a->cfg.coordinator,
                  uv_strerror(status));
        l->state = LS_HELLO; /* so link_close proceeds */
        link_close(l, status < 0 ? uv_strerror(status) : "stopping");
        return;
    }
    l->state = LS_HELLO;
    l->max_body = PROTO_MAX_BODY_DEFAULT;
    l->io.max_body = PROTO_MAX_BODY_DEFAULT;
    l->io.open = 1;
    l->max_output = a->cfg.max_output;
    uv_tcp_nodelay(&l->io.tcp, 1);
    if (a->tls) {
        /* The HELLO below waits in the plaintext output until the handshake,
         * which the first flush starts, has completed. */
        struct tls *t = tls_new(a->tls, a->tls_host, l->io.out.max + l->io.out.max / 512 + 65536);
        if (!t) {
            link_close(l, "out of memory for a TLS session");
            return;
        }
        fconn_tls_attach(&l->io, t);
    }
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, ROLE_PEER, {NULL, 0}, {NULL, 0}};
    if (a->cfg.token) {
        m.token.p = (const uint8_t *)a->cfg.token;
        m.token.len = strlen(a->cfg.token);
    }
    if (a->cfg.name) {
        m.name.p = (const uint8_t *)a->cfg.name;
        m.name.len = strlen(a->cfg.name);
    }
    uint8_t *b = link_frame(l, MSG_HELLO, 1, (uint32_t)proto_hello_size(&m));
    if (b)
        proto_put_hello(b, &m);
    uv_read_start((uv_stream_t *)&l->io.tcp, on_alloc, on_read);
}

void link_connect(struct link *l)
{
    struct peer_agent *a = l->a;
    if (a->stopping || l->state != LS_IDLE)
        return;
    uv_tcp_init(&a->loop, &l->io.tcp);
    l->io.tcp.data = l;
    l->tcp_open = 1;
    l->state = LS_CONNECTING;
    l->creq.data = l;
    int rc = uv_tcp_connect(&l->creq, &l->io.tcp, (struct sockaddr *)&a->addr, on_connect);
    if (rc < 0) {
        l->state = LS_HELLO;
        link_close(l, uv_strerror(rc));
    }
}

void link_tick(struct link *l, uint64_t now)
{
    /* Frames are counted, not timed (a clock read per result costs more
     * than the echo it answers): at each tick a link that sent something
     * since the last one was active now. */
    if (l->tx_frames != l->tx_seen) {
        l->tx_seen = l->tx_frames;
        l->last_tx_us = now;
    }
    if (l->state == LS_READY && now - l->last_tx_us > PING_IDLE_MS * 1000ull) {
        uint8_t *b = link_frame(l, MSG_PING, 0, 8);
        if (b)
            wr64(b, now);
        l->last_tx_us = now;
    }
}

void link_init(struct link *l, struct peer_agent *a, uint32_t index)
{
    l->a = a;
    l->index = index;
    l->backoff_ms = a->cfg.backoff_min_ms;
    fconn_init(&l->io, &a->dirty, PROTO_MAX_BODY_DEFAULT + PROTO_HDR_LEN + READ_CHUNK, 256u << 20, 1u << 20,
               1u << 20, on_io_error);
    uv_timer_init(&a->loop, &l->retry);
    l->retry.data = l;
}

void link_stop(struct link *l)
{
    uv_timer_stop(&l->retry);
    uv_close((uv_handle_t *)&l->retry, NULL);
    if (l->state != LS_IDLE && l->state != LS_CLOSING)
        link_close(l, "stopping");
}

void link_fini(struct link *l)
{
    fconn_fini(&l->io);
}
