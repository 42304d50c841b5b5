/* client.c - libp2c2r: the renter's side of the protocol.
 *
 * One non-blocking socket, an output buffer that submit appends to, an input
 * buffer that process drains, and a table of outstanding tickets.  No threads
 * and no signals: blocking calls are poll() loops with a deadline.
 *
 * Invariants: each ticket is in the table from submit until its result is
 * collected; a completed ticket is also on the done list (completion order);
 * when the connection fails every incomplete ticket is completed with the
 * failure, so each submit yields exactly one result.  The backpressure
 * figures (p2c2r_client_pressure) count only outcomes the coordinator sent,
 * DELIVER and REJECTED alike: a refusal reaches the renter as a REJECTED
 * frame, and the results a dead connection makes up say nothing about the
 * coordinator's load.  The caller's sized structs (tasks, options, results,
 * pressure, advice) are read and written only through sized_in / sized_out,
 * never dereferenced past their size member.
 *
 * Connection states: TCP (connect in progress) -> HELLO (HELLO sent) ->
 * READY; any failure -> BACKOFF (reconnect on, a transient error) or FAILED.
 * c->err is nonzero exactly in BACKOFF and FAILED: there is no connection
 * then, and c->fd holds a placeholder (an eventfd never written, so never
 * readable) under the same number, so a caller polling it does not spin.
 * Each attempt begins with an empty input and output buffer: what was queued
 * for a lost connection belonged to tasks that have already failed.
 *
 * TLS (tls_ca_file): each attempt gets a new session (common/tls.h, memory
 * only).  Frames are queued in plaintext in c->out as without TLS;
 * client_write encrypts what the handshake allows and sends the
 * ciphertext; c_recv stands for recv() and decrypts.  The handshake
 * advances inside process like the rest of the I/O, so the non-blocking
 * face is unchanged: want_write reports ciphertext waiting, and the
 * session's buffered input is drained before a wait would sleep on it. */
#include "p2c2r/client.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/proto.h"
#include "common/util.h"
#include "client/fadv.h"
#include "client/sized.h"
#include "client/trace.h"
#include "common/version.h"
#include "client/client_int.h"
#include "client/local.h"

int ctype_find(const p2c2r_client *c, const char *name)
{
    for (int i = 0; i < c->ntypes; i++)
        if (!strcmp(c->types[i].name, name))
            return i;
    return -1;
}

/* The index of type name in c->types, added when new; -1 when the table is
 * full (the type then only counts in c->all). */
int ctype_ix(p2c2r_client *c, const char *name)
{
    int i = ctype_find(c, name);
    if (i >= 0 || c->ntypes == MAX_TYPES)
        return i;
    i = c->ntypes++;
    snprintf(c->types[i].name, sizeof(c->types[i].name), "%s", name);
    fadv_init(&c->types[i].adv);
    return i;
}

/* Counts status as the coordinator's outcome of task e in the pressure
 * figures; returns whether it was late. */
static int entry_count(p2c2r_client *c, struct entry *e, int status, uint64_t now)
{
    uint64_t rtt = now > e->submit_us ? now - e->submit_us : 0;
    struct fadv *ft = e->ctype_ix >= 0 ? &c->types[e->ctype_ix].adv : NULL;
    enum fadv_kind k = fadv_classify(status, rtt, e->deadline_ms);
    uint32_t r32 = rtt > UINT32_MAX ? UINT32_MAX : (uint32_t)rtt;
    fadv_outcome(&c->all, now / 1000, c->all.epoch, k, r32);
    if (ft)
        fadv_outcome(ft, now / 1000, e->epoch, k, r32);
    e->counted = 1;
    return k == FADV_LATE;
}

/* Counts e's outcome (or its loss, inside conn_failed) and traces it. */
static void entry_ended(p2c2r_client *c, struct entry *e)
{
    uint64_t now = now_us();
    struct fadv *ft = e->ctype_ix >= 0 ? &c->types[e->ctype_ix].adv : NULL;
    int late = 0;
    if (e->kind == ENTRY_BLOB) {
        c->nblob_open--;
    } else if (e->counted) {
        /* Its refusal was counted when the local fallback took it. */
    } else if (c->failing) {
        fadv_lost(&c->all);
        if (ft)
            fadv_lost(ft);
    } else {
        late = entry_count(c, e, e->res.status, now);
    }
    if (e->traced && c->trace) {
        struct trace_task tt = {
            .ticket = e->ticket,
            .user = e->res.user,
            .type = e->kind == ENTRY_BLOB ? "blob" : ft ? c->types[e->ctype_ix].name : "task",
            .submit_us = e->submit_us,
            .end_us = now,
            .status = e->res.status,
            .late = late,
            .how = c->failing ? TRACE_LOST : TRACE_RESULT,
            .exec_us = e->res.exec_us,
            .peer_id = e->res.peer_id,
            .flags = e->res.flags,
            .attempts = e->res.attempts,
        };
        trace_task(c->trace, &tt);
    }
}

/* DELIVER flags -> p2c2r_result.flags; bits this library does not know are
 * dropped so callers only ever see documented ones. */
static uint32_t result_flags(uint32_t wire)
{
    return ((wire & PROTO_DELIVER_F_CACHED) ? P2C2R_RESULT_CACHED : 0) |
           ((wire & PROTO_DELIVER_F_HEDGED) ? P2C2R_RESULT_HEDGED : 0) |
           ((wire & PROTO_DELIVER_F_VERIFIED) ? P2C2R_RESULT_VERIFIED : 0);
    /* P2C2R_RESULT_LOCAL is the library's own (local.c), never the wire's. */
}

const char *p2c2r_version(void) { return P2C2R_VERSION_STRING; }

/* ---- ticket table ------------------------------------------------------------ */

struct entry **ticket_slot(p2c2r_client *c, uint64_t ticket)
{
    struct entry **pp = &c->buckets[ticket & (c->nbuckets - 1)];
    while (*pp && (*pp)->ticket != ticket)
        pp = &(*pp)->hnext;
    return pp;
}

static int table_grow(p2c2r_client *c)
{
    size_t nb = c->nbuckets ? c->nbuckets * 2 : 1024;
    struct entry **b = calloc(nb, sizeof(*b));
    if (!b)
        return P2C2R_ENOMEM;
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *next = e->hnext;
            e->hnext = b[e->ticket & (nb - 1)];
            b[e->ticket & (nb - 1)] = e;
            e = next;
        }
    }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
    return 0;
}

struct entry *ticket_new(p2c2r_client *c, uint64_t ticket)
{
    if (c->nentries >= c->nbuckets && table_grow(c) != 0)
        return NULL;
    struct entry *e = c->free_entries;
    if (e)
        c->free_entries = e->hnext;
    else if (!(e = malloc(sizeof(*e))))
        return NULL;
    memset(e, 0, sizeof(*e));
    e->ticket = ticket;
    list_init(&e->node);
    struct entry **pp = &c->buckets[ticket & (c->nbuckets - 1)];
    e->hnext = *pp;
    *pp = e;
    c->nentries++;
    c->ninflight++;
    return e;
}

/* Unlinks e from the table and the done list and recycles it; its result
 * must have been moved out or released. */
void ticket_drop(p2c2r_client *c, struct entry *e)
{
    struct entry **pp = ticket_slot(c, e->ticket);
    *pp = e->hnext;
    list_remove(&e->node);
    if (e->lwait) {
        list_remove(&e->lnode);
        c->nlocal--;
    }
    local_drop(e);
    c->nentries--;
    if (!e->done)
        c->ninflight--;
    e->hnext = c->free_entries;
    c->free_entries = e;
}

/* Fills e's result (its output already in place), counts and traces it, and
 * puts it on the done list. */
void entry_finish(p2c2r_client *c, struct entry *e, int status, uint32_t exec_us,
                         uint32_t peer_id, uint16_t attempts, uint32_t flags)
{
    e->done = 1;
    c->ninflight--;
    e->res.ticket.id = e->ticket;
    e->res.status = status;
    e->res.exec_us = exec_us;
    e->res.peer_id = peer_id;
    e->res.attempts = attempts;
    e->res.flags = flags;
    local_drop(e);
    entry_ended(c, e);
    list_push_back(&c->done, &e->node);
}

void entry_complete(p2c2r_client *c, struct entry *e, int status, const void *out,
                           size_t len, uint32_t exec_us, uint32_t peer_id, uint16_t attempts,
                           uint32_t flags)
{
    if (e->done)
        return;
    e->res.output = NULL;
    e->res.output_len = 0;
    if (len || status == 0) {
        /* One extra byte so text results are NUL-terminated for printing. */
        e->res.output = malloc(len + 1);
        if (e->res.output) {
            memcpy(e->res.output, out, len);
            ((char *)e->res.output)[len] = '\0';
            e->res.output_len = len;
        } else if (status == 0) {
            status = P2C2R_ENOMEM;
        }
    }
    entry_finish(c, e, status, exec_us, peer_id, attempts, flags);
}

/* Replaces the socket under c->fd by an eventfd nobody writes: the number
 * stays valid for the caller's poll set and never polls readable.  Without
 * one (out of descriptors), the number is given up: poll() skips -1. */
static void fd_park(p2c2r_client *c)
{
    if (c->fd < 0)
        return;
    int ph = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ph >= 0 && dup3(ph, c->fd, O_CLOEXEC) >= 0) {
        close(ph);
        return;
    }
    if (ph >= 0)
        close(ph);
    close(c->fd);
    c->fd = -1;
}

/* Errors a new attempt could get past. */
static int transient(int err)
{
    /* Not ETLS: an untrusted certificate or a coordinator without TLS
     * fails every attempt the same way. */
    return err == P2C2R_ECLOSED || err == P2C2R_EIO || err == P2C2R_ETIMEDOUT ||
           err == P2C2R_ESHUTDOWN || err == P2C2R_ELIMIT || err == P2C2R_ENOMEM;
}

/* The next reconnect delay: reconnect_ms doubled per failed attempt up to
 * reconnect_max_ms, drawn from [d/2, d] so that many clients of one dead
 * coordinator do not all come back in the same millisecond. */
static uint64_t backoff_us(p2c2r_client *c)
{
    uint64_t d = c->reconnect_ms;
    for (uint32_t i = 0; i < c->attempts && d < c->reconnect_max_ms; i++)
        d *= 2;
    if (d > c->reconnect_max_ms)
        d = c->reconnect_max_ms;
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 7;
    c->rng ^= c->rng << 17;
    d *= 1000;
    return d / 2 + c->rng % (d / 2 + 1);
}

/* The connection (or the attempt at one) is gone: every incomplete ticket
 * completes with err, once, but for those the local fallback may run
 * (local.c), which wait for it instead; then the client waits to reconnect
 * or is done. */
static void conn_failed(p2c2r_client *c, int err, const char *why)
{
    if (c->err)
        return;
    c->err = err;
    if (why && !c->last_error[0]) { /* a longer reason is cut */
        size_t n = strnlen(why, sizeof(c->last_error) - 1);
        memcpy(c->last_error, why, n);
        c->last_error[n] = '\0';
    }
    c->failing = 1;
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct entry *e = c->buckets[i]; e; e = e->hnext) {
            if (e->done || e->lwait)
                continue;
            if (e->lbody)
                local_enqueue(c, e, err);
            else
                entry_complete(c, e, err, c->last_error, strlen(c->last_error), 0, 0, 0, 0);
        }
    }
    c->failing = 0;
    fd_park(c);
    c->stats_done = 1;
    c->ctl_done = 1;
    c->report = err;
    if (c->reconnect_ms && transient(err)) {
        c->state = S_BACKOFF;
        c->retry_at_us = now_us() + backoff_us(c);
        c->attempts++;
    } else {
        c->state = S_FAILED;
    }
}


/* Starts a connection attempt: a new socket under c->fd's number, a
 * non-blocking connect and the HELLO queued behind it. */
static void attempt_start(p2c2r_client *c)
{
    c->err = 0;
    c->last_error[0] = '\0';
    c->in.off = c->in.len = 0;
    c->out.off = c->out.len = 0;
    free(c->big.buf);
    c->big.buf = NULL;
    c->attempt_deadline_us = now_us() + (uint64_t)c->connect_timeout_ms * 1000;
    c->state = S_TCP;
    if (c->tls_ctx) {
        tls_free(c->tls);
        c->tls = tls_new(c->tls_ctx, c->tls_host, c->out.max + c->out.max / 512 + 65536);
        c->tls_fresh = 1;
        if (!c->tls) {
            conn_failed(c, P2C2R_ENOMEM, "out of memory for a TLS session");
            return;
        }
    }
    int s = socket(c->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0) {
        conn_failed(c, P2C2R_EIO, "cannot create a socket");
        return;
    }
    if (c->fd < 0) {
        c->fd = s;
    } else if (dup3(s, c->fd, O_CLOEXEC) < 0) {
        close(s);
        conn_failed(c, P2C2R_EIO, "cannot create a socket");
        return;
    } else {
        close(s);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, ROLE_RENTER, {NULL, 0}, {NULL, 0}};
    if (c->token) {
        m.token.p = (const uint8_t *)c->token;
        m.token.len = strlen(c->token);
    }
    if (c->name) {
        m.name.p = (const uint8_t *)c->name;
        m.name.len = strlen(c->name);
    }
    size_t hl = proto_hello_size(&m);
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + hl);
    if (!b) {
        conn_failed(c, P2C2R_ENOMEM, "out of memory for HELLO");
        return;
    }
    proto_put_hdr(b, MSG_HELLO, 0, 0, (uint32_t)hl);
    proto_put_hello(b + PROTO_HDR_LEN, &m);
    buf_commit(&c->out, PROTO_HDR_LEN + hl);
    if (connect(c->fd, (struct sockaddr *)&c->ss, c->sl) == 0) {
        c->state = S_HELLO;
        client_write(c);
    } else if (errno != EINPROGRESS) {
        char why[128];
        snprintf(why, sizeof(why), "cannot connect to the coordinator: %s", strerror(errno));
        conn_failed(c, P2C2R_EIO, why);
    }
}

/* S_TCP: whether the connect has completed, failed or timed out. */
static void tcp_check(p2c2r_client *c, uint64_t now)
{
    struct pollfd pfd = {c->fd, POLLOUT, 0};
    if (poll(&pfd, 1, 0) > 0) {
        int soerr = 0;
        socklen_t el = sizeof(soerr);
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr) {
            char why[128];
            snprintf(why, sizeof(why), "cannot connect to the coordinator: %s",
                     strerror(soerr ? soerr : errno));
            conn_failed(c, P2C2R_EIO, why);
            return;
        }
        c->state = S_HELLO;
        client_write(c);
        return;
    }
    if (now >= c->attempt_deadline_us)
        conn_failed(c, P2C2R_ETIMEDOUT, "connect to the coordinator timed out");
}

/* ---- I/O ------------------------------------------------------------------------ */

size_t client_unsent(const p2c2r_client *c)
{
    return buf_used(&c->out) + (c->tls ? buf_used(tls_out(c->tls)) : 0);
}

int client_want_out(const p2c2r_client *c)
{
    if (!c->tls)
        return buf_used(&c->out) > 0;
    return buf_used(tls_out(c->tls)) > 0 || (buf_used(&c->out) > 0 && tls_ready(c->tls));
}

/* TLS failed on this attempt: the connection fails with the reason. */
static void tls_conn_failed(p2c2r_client *c)
{
    char why[320];
    snprintf(why, sizeof(why), "TLS with the coordinator failed: %s", tls_error(c->tls));
    conn_failed(c, P2C2R_ETLS, why);
}

int client_write(p2c2r_client *c)
{
    if (c->state != S_HELLO && c->state != S_READY)
        return c->err;
    struct buf *src = &c->out;
    if (c->tls) {
        if (buf_used(&c->out)) {
            long n = tls_write(c->tls, buf_head(&c->out), buf_used(&c->out));
            if (n < 0) {
                tls_conn_failed(c);
                return c->err;
            }
            buf_consume(&c->out, (size_t)n);
        }
        src = tls_out(c->tls);
    }
    while (buf_used(src)) {
        ssize_t n = send(c->fd, buf_head(src), buf_used(src), MSG_NOSIGNAL);
        if (n > 0) {
            buf_consume(src, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n < 0 && errno == EINTR)
            continue;
        conn_failed(c, P2C2R_EIO, "write to coordinator failed");
        return c->err;
    }
    if (c->tls)
        tls_out_done(c->tls);
    buf_shrink(&c->out, 1u << 20);
    return 0;
}

/* recv() from the coordinator, through TLS when it is on: bytes (> 0), 0 at
 * the end of the stream, or -1 with errno (EAGAIN: nothing now); -2 when TLS
 * failed, which has failed the connection. */
static ssize_t c_recv(p2c2r_client *c, uint8_t *p, size_t n)
{
    if (!c->tls)
        return recv(c->fd, p, n, 0);
    for (;;) {
        int k = tls_read(c->tls, p, n);
        if (k > 0)
            return k;
        if (k == P2C2R_ECLOSED)
            return 0;
        if (k < 0) {
            tls_conn_failed(c);
            return -2;
        }
        size_t cap;
        uint8_t *s = tls_in_space(c->tls, 64u * 1024, &cap);
        if (!s) {
            conn_failed(c, P2C2R_ENOMEM, "out of memory for TLS input");
            return -2;
        }
        ssize_t r = recv(c->fd, s, cap, 0);
        if (r <= 0)
            return r;
        if (c->tls_fresh) {
            c->tls_fresh = 0;
            if (s[0] != TLS_RECORD_HANDSHAKE) {
                conn_failed(c, P2C2R_ETLS, "the coordinator answered without TLS: it has no "
                                           "--tls-cert (connect without a TLS CA), or it is not p2c2rd");
                return -2;
            }
        }
        tls_in_commit(c->tls, (size_t)r);
    }
}

static int handle_frame(p2c2r_client *c, const struct frame_hdr *h, const uint8_t *body)
{
    switch (h->type) {
    case MSG_DELIVER: {
        struct msg_deliver m;
        if (proto_parse_deliver(body, h->body_len, &m) != 0)
            return P2C2R_EPROTO;
        struct entry *e = *ticket_slot(c, h->req_id);
        if (!e || e->done || e->kind != ENTRY_TASK)
            return 0; /* cancelled and collected already: nothing to do */
        if (m.output.len > c->max_result)
            return P2C2R_ETOOBIG;
        int st = m.status ? -(int)m.status : 0;
        if (st == 0 && !(m.flags & PROTO_DELIVER_F_CACHED))
            local_learn_delivered(c, e, m.exec_us);
        entry_complete(c, e, st, m.output.p, m.output.len, m.exec_us, m.peer_id, m.attempts,
                       result_flags(m.flags));
        return 1;
    }
    case MSG_BLOB_OK: {
        if (h->body_len != PROTO_HASH_LEN)
            return P2C2R_EPROTO;
        if (h->req_id == c->blob_id && c->blob_status == 1) {
            memcpy(c->blob_hash, body, PROTO_HASH_LEN);
            c->blob_status = 0;
            return 0;
        }
        struct entry *e = *ticket_slot(c, h->req_id);
        if (!e || e->done || e->kind != ENTRY_BLOB)
            return 0;
        entry_complete(c, e, 0, body, PROTO_HASH_LEN, 0, 0, 0, 0);
        return 1;
    }
    case MSG_JOB_ACK:
    case MSG_JOB_INFO:
    case MSG_JOB_LIST_OK:
        ctl_on_reply(c, h, body, 0, NULL);
        return 0;
    case MSG_REJECTED: {
        struct msg_error m;
        if (proto_parse_error(body, h->body_len, &m) != 0)
            return P2C2R_EPROTO;
        if (ctl_on_reply(c, h, body, m.code ? -(int)m.code : P2C2R_EINVAL, &m.text))
            return 0;
        if (h->req_id == c->blob_id && c->blob_status == 1) {
            c->blob_status = m.code ? -(int)m.code : P2C2R_EINVAL;
            snprintf(c->last_error, sizeof(c->last_error), "%.*s", (int)m.text.len,
                     (const char *)m.text.p);
            return 0;
        }
        /* A task the coordinator refused (EQUEUEFULL, EDEADLINE,
         * EUNSUPPORTED, ...): its one result, with the reason as text. */
        struct entry *e = *ticket_slot(c, h->req_id);
        if (!e || e->done || e->lwait)
            return 0;
        int st = m.code ? -(int)m.code : P2C2R_EINVAL;
        if (e->lbody && local_takes_refusal(st)) {
            /* The fabric cannot run it in time (or at all): the game's own
             * process may (local.c); the refusal is its outcome otherwise.
             * The frame helper hears of the refusal now, whatever follows. */
            entry_count(c, e, st, now_us());
            local_enqueue(c, e, st);
            return 0;
        }
        entry_complete(c, e, st, m.text.p, m.text.len, 0, 0, 0, 0);
        return 1;
    }
    case MSG_ACCEPTED:
    case MSG_PONG:
        return 0;
    case MSG_PING: {
        uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + h->body_len);
        if (b) {
            proto_put_hdr(b, MSG_PONG, 0, h->req_id, h->body_len);
            memcpy(b + PROTO_HDR_LEN, body, h->body_len);
            buf_commit(&c->out, PROTO_HDR_LEN + h->body_len);
        }
        return 0;
    }
    case MSG_STATS:
        if (h->req_id == c->stats_id && !c->stats_done) {
            c->stats_json = malloc(h->body_len + 1);
            if (c->stats_json) {
                memcpy(c->stats_json, body, h->body_len);
                c->stats_json[h->body_len] = '\0';
            }
            c->stats_done = 1;
        }
        return 0;
    case MSG_HELLO_OK: {
        struct msg_hello_ok m;
        if (proto_parse_hello_ok(body, h->body_len, &m) != 0)
            return P2C2R_EPROTO;
        c->max_inflight = m.max_inflight;
        c->max_body = m.max_body;
        if (c->state == S_HELLO) {
            c->state = S_READY;
            c->attempts = 0;
        }
        return 0;
    }
    case MSG_ERROR: {
        struct msg_error m;
        int code = P2C2R_EPROTO;
        if (proto_parse_error(body, h->body_len, &m) == 0) {
            snprintf(c->last_error, sizeof(c->last_error), "%.*s", (int)m.text.len,
                     (const char *)m.text.p);
            if (m.code && -(int)m.code >= P2C2R_ERROR_MIN)
                code = -(int)m.code;
        }
        conn_failed(c, code, NULL);
        return code;
    }
    default:
        return P2C2R_EPROTO;
    }
}

/* Reads what the socket has and handles every whole frame.  Returns the
 * number of results completed, or a connection error. */
#define BIG_RESULT (64u * 1024)

/* If the input buffer ends with the start of a large DELIVER, moves what is
 * there into a buffer of the result's exact size and returns 1: the rest is
 * then read straight into it, saving a copy of every large result. */
static int big_begin(p2c2r_client *c)
{
    struct frame_hdr h;
    size_t used = buf_used(&c->in);
    if (used < PROTO_HDR_LEN + PROTO_DELIVER_PREFIX ||
        proto_decode_hdr(buf_head(&c->in), used, (uint32_t)(c->max_result + PROTO_DELIVER_PREFIX),
                         &h) != 0 ||
        h.type != MSG_DELIVER || h.body_len < PROTO_DELIVER_PREFIX + BIG_RESULT)
        return 0;
    const uint8_t *body = buf_head(&c->in) + PROTO_HDR_LEN;
    proto_parse_deliver(body, PROTO_DELIVER_PREFIX, &c->big.m);
    size_t out_len = h.body_len - PROTO_DELIVER_PREFIX;
    uint8_t *b = malloc(out_len + 1);
    if (!b)
        return 0; /* fall back to the input buffer */
    size_t have = used - PROTO_HDR_LEN - PROTO_DELIVER_PREFIX;
    memcpy(b, body + PROTO_DELIVER_PREFIX, have);
    buf_consume(&c->in, used);
    c->big.buf = b;
    c->big.len = out_len;
    c->big.have = have;
    c->big.ticket = h.req_id;
    return 1;
}

/* The large result is complete: hand its buffer to the ticket. */
static int big_finish(p2c2r_client *c)
{
    uint8_t *b = c->big.buf;
    c->big.buf = NULL;
    struct entry *e = *ticket_slot(c, c->big.ticket);
    if (!e || e->done || e->kind != ENTRY_TASK) {
        free(b);
        return 0;
    }
    const struct msg_deliver *m = &c->big.m;
    b[c->big.len] = '\0';
    e->res.output = b;
    e->res.output_len = c->big.len;
    entry_finish(c, e, m->status ? -(int)m->status : 0, m->exec_us, m->peer_id, m->attempts,
                 result_flags(m->flags));
    return 1;
}

static int do_read(p2c2r_client *c)
{
    int completed = 0;
    if (c->state != S_HELLO && c->state != S_READY)
        return 0;
    /* Input TLS holds is never left behind: no poll would report it. */
    for (int rounds = 0; (rounds < 64 || (c->tls && tls_buffered(c->tls))) && !c->err; rounds++) {
        if (c->big.buf) {
            size_t want = c->big.len - c->big.have;
            ssize_t n = c_recv(c, c->big.buf + c->big.have, want);
            if (n == -2)
                break;
            if (n == 0) {
                conn_failed(c, P2C2R_ECLOSED, "coordinator closed the connection");
                break;
            }
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    break;
                conn_failed(c, P2C2R_EIO, "read from coordinator failed");
                break;
            }
            c->big.have += (size_t)n;
            if (c->big.have == c->big.len)
                completed += big_finish(c);
            else if (!c->tls)
                break; /* the socket is drained (TLS: read on until EAGAIN) */
            continue;
        }
        size_t want = READ_CHUNK;
        struct frame_hdr fh;
        if (buf_used(&c->in) >= PROTO_HDR_LEN &&
            proto_decode_hdr(buf_head(&c->in), buf_used(&c->in), UINT32_MAX, &fh) == 0 &&
            PROTO_HDR_LEN + (size_t)fh.body_len - buf_used(&c->in) > want)
            want = PROTO_HDR_LEN + (size_t)fh.body_len - buf_used(&c->in);
        uint8_t *p = buf_reserve(&c->in, want);
        if (!p) {
            conn_failed(c, P2C2R_ETOOBIG, "frame from coordinator over the result limit");
            break;
        }
        ssize_t n = c_recv(c, p, c->in.cap - c->in.len);
        if (n == -2)
            break;
        if (n == 0) {
            conn_failed(c, P2C2R_ECLOSED, "coordinator closed the connection");
            break;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_failed(c, P2C2R_EIO, "read from coordinator failed");
            break;
        }
        buf_commit(&c->in, (size_t)n);
        for (;;) {
            struct frame_hdr h;
            int64_t fl = proto_decode_hdr(buf_head(&c->in), buf_used(&c->in),
                                          (uint32_t)(c->max_result + PROTO_DELIVER_PREFIX), &h);
            if (fl == 0)
                break;
            if (fl < 0) {
                conn_failed(c, P2C2R_EPROTO, "malformed frame from coordinator");
                break;
            }
            int rc = handle_frame(c, &h, buf_head(&c->in) + PROTO_HDR_LEN);
            buf_consume(&c->in, (size_t)fl);
            if (rc < 0) {
                conn_failed(c, rc, "protocol error from coordinator");
                break;
            }
            completed += rc;
        }
        if (!c->err && big_begin(c))
            continue;
        if ((size_t)n < want && !c->tls)
            break; /* drained the socket (TLS: a record at a time, read on until EAGAIN) */
    }
    buf_shrink(&c->in, 4u << 20);
    return completed;
}

/* S_HELLO: fails the attempt once it has waited too long for HELLO_OK. */
static void hello_check(p2c2r_client *c, uint64_t now)
{
    if (c->state == S_HELLO && now >= c->attempt_deadline_us)
        conn_failed(c, P2C2R_ETIMEDOUT, "no HELLO_OK from the coordinator in time");
}

/* Moves the client on without blocking: a reconnect that is due, a connect
 * in progress, and whatever the socket has.  Returns the results completed. */
static int step(p2c2r_client *c)
{
    int n = 0;
    if (c->state == S_BACKOFF && now_us() >= c->retry_at_us)
        attempt_start(c);
    if (c->state == S_TCP)
        tcp_check(c, now_us());
    if (c->state == S_HELLO || c->state == S_READY) {
        n = do_read(c);
        if (!c->err)
            client_write(c);
        if (c->state == S_HELLO)
            hello_check(c, now_us());
    }
    return n;
}

int p2c2r_client_process(p2c2r_client *c)
{
    if (!c)
        return P2C2R_EINVAL;
    int nl = local_run(c);
    if (c->state == S_FAILED) {
        c->report = 0;
        return c->err;
    }
    int n = step(c) + nl;
    if (c->nlocal && !c->local_blocked)
        n += local_run(c); /* refused tasks handed to the fallback just now */
    if (c->report) {
        int r = c->report;
        c->report = 0;
        return r;
    }
    return n;
}

/* Waits until the socket is readable (or writable while output is pending)
 * or the deadline passes, then processes.  deadline_us 0 = no wait,
 * UINT64_MAX = forever. */
int client_wait_io(p2c2r_client *c, uint64_t deadline_us)
{
    if (c->nlocal) {
        /* Local work first; then sleep no later than the frame that may
         * run what still waits. */
        if (local_run(c))
            return c->err;
        uint64_t at = local_next_us(c);
        if (at < deadline_us)
            deadline_us = at;
    }
    if (c->err) {
        uint64_t now = now_us();
        if (c->nlocal && deadline_us > now) {
            if (deadline_us > c->retry_at_us && c->state == S_BACKOFF)
                deadline_us = c->retry_at_us > now ? c->retry_at_us : now;
            poll(NULL, 0, (int)((deadline_us - now + 999) / 1000));
            step(c);
        }
        return c->err;
    }
    if (c->state != S_READY && deadline_us > c->attempt_deadline_us)
        deadline_us = c->attempt_deadline_us; /* the attempt's own timeout */
    if (c->state == S_TCP) {
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        uint64_t now = now_us();
        poll(&pfd, 1, deadline_us > now ? (int)((deadline_us - now + 999) / 1000) : 0);
        step(c);
        return c->err;
    }
    client_write(c);
    if (c->err)
        return c->err;
    if (c->tls && tls_buffered(c->tls)) {
        do_read(c); /* decrypted input no poll would report */
        return c->err;
    }
    if (c->spin_us && !client_unsent(c) && c->state == S_READY) {
        /* Busy-poll briefly before sleeping: on a core of its own this
         * saves the scheduler's wake-up latency on the answer. */
        uint64_t until = now_us() + c->spin_us;
        if (until > deadline_us)
            until = deadline_us;
        uint8_t probe;
        do {
            ssize_t r = recv(c->fd, &probe, 1, MSG_PEEK | MSG_DONTWAIT);
            if (r > 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) || r == 0) {
                do_read(c);
                return c->err;
            }
        } while (now_us() < until);
    }
    struct pollfd pfd = {c->fd, POLLIN | (client_want_out(c) ? POLLOUT : 0), 0};
    int ms;
    if (deadline_us == UINT64_MAX) {
        ms = -1;
    } else {
        uint64_t now = now_us();
        ms = deadline_us > now ? (int)((deadline_us - now + 999) / 1000) : 0;
    }
    int r = poll(&pfd, 1, ms);
    if (r < 0 && errno != EINTR) {
        conn_failed(c, P2C2R_EIO, "poll failed");
        return c->err;
    }
    if (r > 0) {
        if (pfd.revents & (POLLIN | POLLERR | POLLHUP))
            do_read(c);
        if (!c->err && client_want_out(c))
            client_write(c);
    }
    if (!c->err)
        hello_check(c, now_us());
    return c->err;
}

uint64_t client_deadline_after(int timeout_ms)
{
    if (timeout_ms < 0)
        return UINT64_MAX;
    return now_us() + (uint64_t)timeout_ms * 1000;
}

/* ---- public ------------------------------------------------------------------ */

int p2c2r_client_connect_start(const char *addr, const struct p2c2r_client_options *opts,
                               p2c2r_client **out)
{
    struct p2c2r_client_options o;
    p2c2r_client_options_init(&o);
    if (opts && (!sized_ok(sized_size(opts), &options_layout) ||
                 sized_in(&o, opts, sized_size(opts), &options_layout)))
        return P2C2R_EINVAL;
    if (o.connect_timeout_ms <= 0)
        o.connect_timeout_ms = 5000;
    if (!o.max_result_bytes)
        o.max_result_bytes = PROTO_MAX_BODY_DEFAULT;
    if (o.max_result_bytes > (1u << 30))
        return P2C2R_EINVAL;
    if (!out || (o.token && strlen(o.token) > PROTO_MAX_TOKEN) ||
        (o.name && strlen(o.name) > PROTO_MAX_NAME))
        return P2C2R_EINVAL;
    p2c2r_client *c = calloc(1, sizeof(*c));
    if (!c)
        return P2C2R_ENOMEM;
    c->fd = -1;
    int rc = addr_parse(addr, &c->ss, &c->sl);
    if (rc != 0)
        goto fail;
    rc = P2C2R_ENOMEM;
    if ((o.token && !(c->token = strdup(o.token))) || (o.name && !(c->name = strdup(o.name))))
        goto fail;
    if (o.tls_ca_file) {
        const char *host = o.tls_server_name;
        if (!host && tls_host_of(addr, c->tls_host, sizeof(c->tls_host)) == 0)
            host = c->tls_host;
        rc = P2C2R_EINVAL;
        if (!host || strlen(host) >= sizeof(c->tls_host))
            goto fail;
        if (host != c->tls_host)
            snprintf(c->tls_host, sizeof(c->tls_host), "%s", host);
        char terr[256];
        if (tls_ctx_client_new(o.tls_ca_file, NULL, NULL, &c->tls_ctx, terr, sizeof(terr)) != 0) {
            rc = P2C2R_ETLS; /* the CA file: missing, unreadable or not PEM */
            goto fail;
        }
    }
    c->max_result = o.max_result_bytes;
    c->spin_us = o.spin_us > 1000000 ? 1000000 : o.spin_us;
    c->connect_timeout_ms = o.connect_timeout_ms;
    c->reconnect_ms = o.reconnect_ms > 600000 ? 600000 : o.reconnect_ms;
    c->reconnect_max_ms = o.reconnect_max_ms ? o.reconnect_max_ms : 5000;
    if (c->reconnect_max_ms > 600000)
        c->reconnect_max_ms = 600000;
    if (c->reconnect_max_ms < c->reconnect_ms)
        c->reconnect_max_ms = c->reconnect_ms;
    c->rng = (now_us() ^ (uint64_t)(uintptr_t)c) | 1;
    c->local_us = o.local_fallback_us > 1000000 ? 1000000 : o.local_fallback_us;
    c->local_frame_us = o.local_frame_us ? o.local_frame_us : 16667;
    list_init(&c->localq);
    fadv_init(&c->all);
    buf_init(&c->in, c->max_result + PROTO_DELIVER_PREFIX + PROTO_HDR_LEN + READ_CHUNK);
    buf_init(&c->out, 1u << 30);
    list_init(&c->done);
    attempt_start(c);
    if (c->fd < 0) {
        /* Not even a socket: nothing to poll, so nothing to hand over. */
        rc = c->err;
        goto fail;
    }
    *out = c;
    return 0;
fail:
    p2c2r_client_close(c);
    return rc;
}

int p2c2r_client_connect(const char *addr, const struct p2c2r_client_options *opts,
                         p2c2r_client **out)
{
    p2c2r_client *c;
    int rc = p2c2r_client_connect_start(addr, opts, &c);
    if (rc != 0)
        return rc;
    while (c->state == S_TCP || c->state == S_HELLO)
        client_wait_io(c, c->attempt_deadline_us);
    if (c->state != S_READY) {
        rc = c->err == P2C2R_ECLOSED ? P2C2R_EIO : c->err;
        p2c2r_client_close(c);
        return rc;
    }
    c->report = 0;
    *out = c;
    return 0;
}

void p2c2r_client_close(p2c2r_client *c)
{
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    for (size_t i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];
        while (e) {
            struct entry *n = e->hnext;
            p2c2r_result_release(&e->res);
            local_drop(e);
            free(e);
            e = n;
        }
    }
    while (c->free_entries) {
        struct entry *n = c->free_entries->hnext;
        free(c->free_entries);
        c->free_entries = n;
    }
    free(c->buckets);
    local_blobs_free(c);
    trace_close(c->trace);
    free(c->token);
    free(c->name);
    free(c->stats_json);
    free(c->ctl_body);
    free(c->big.buf);
    tls_free(c->tls);
    tls_ctx_free(c->tls_ctx);
    buf_fini(&c->in);
    buf_fini(&c->out);
    free(c);
}
