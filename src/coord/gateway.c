/* gateway.c - the JSON/WebSocket gateway (see gateway.h, docs/GATEWAY.md).
 *
 * Input: bytes are split into WebSocket messages (common/ws.h); each text
 * message is decoded (gwjson.h), checked against the connection's role, and
 * turned into one binary frame (HELLO, PEER_REGISTER, SUBMIT, BLOB_PUT,
 * CANCEL, RESULT, CREDIT, STATS_REQ) given to conn_dispatch, the native
 * handler table.  A task_submit or blob_put with data_frame (a task_result
 * with result_frame) waits for the binary message that carries its bytes.
 *
 * Output: the coordinator queues binary frames for a gateway connection as
 * for any other (conn_frame, conn_send); the connection's output list is
 * the gateway's, and before each flush gw_translate rewrites the queued
 * frames as WebSocket messages (JSON text, and binary messages for results
 * when the renter asked for them).  GW_RAW frames carry WebSocket bytes
 * that go out as they are (a pong), so their order with the rest is kept.
 *
 * Renter task ids: the renter's task_id (any JSON string or integer; a
 * blob_put's request_id likewise, its slot marked blob) is
 * kept in a slot of a per-connection table and the slot's id (generation
 * << 32 | index) is the native ticket, so a DELIVER finds the task_id in
 * O(1); the table holds at most max_inflight + GW_TID_SLACK slots.
 *
 * Invariants: the output buffer holds whole binary frames except between
 * gw_translate and the flush right after it; g->pend is set exactly while a
 * binary message is expected. */
#include "coord/gateway.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/ident.h"
#include "common/ws.h"
#include "coord/coord_int.h"
#include "coord/gwjson.h"

#define GW_RAW 0xF0              /* internal frame: its body is WebSocket bytes to send as they are */
#define GW_TID_SLACK 1024u       /* task_id slots past max_inflight (refusals still on their way) */
#define GW_MSG_SLACK (64u << 10) /* message size past max_body*4/3: JSON around the base64 */

struct gw_tid {
    uint64_t submit_us;
    uint32_t gen, next;
    uint8_t used, len;
    uint8_t blob; /* a blob_put's request_id, not a task_id */
    char text[GW_MAX_ID + 3];
};

struct gateway {
    struct list_node dirty; /* gateway connections with output to translate and write */
    struct buf scratch;     /* frame bodies built from JSON */
    uint64_t max_msg;
};

struct gw {
    struct ws_reader rd;
    struct buf in;   /* a partial WebSocket frame */
    struct buf wire; /* translated output */
    struct buf pre;  /* the 101 answer and the challenge, before anything else */
    uint8_t nonce[IDENT_NONCE_LEN];
    uint8_t pk[IDENT_PK_LEN];
    uint8_t key_ok, binary_results, binary_inputs;
    uint8_t reg_pending; /* ROLE_RENTER / ROLE_PEER: its registration is not answered yet */
    char name[PROTO_MAX_NAME + 1];
    struct gw_msg *pend; /* waiting for its binary message */
    uint32_t pend_tid;
    struct gw_tid *tids;
    uint32_t ntids, free_tid, tid_max;
};

void gw_init(struct coord *co)
{
    struct gateway *G = xcalloc(1, sizeof(*G));
    list_init(&G->dirty);
    buf_init(&G->scratch, (size_t)co->cfg.max_body + 64 * 1024);
    G->max_msg = (uint64_t)co->cfg.max_body / 3 * 4 + GW_MSG_SLACK;
    co->gw = G;
}

void gw_fini(struct coord *co)
{
    if (!co->gw)
        return;
    buf_fini(&co->gw->scratch);
    free(co->gw);
    co->gw = NULL;
}

void gw_free(struct gw *g)
{
    if (!g)
        return;
    ws_reader_fini(&g->rd);
    buf_fini(&g->in);
    buf_fini(&g->wire);
    buf_fini(&g->pre);
    if (g->pend) {
        gw_msg_free(g->pend);
        free(g->pend);
    }
    free(g->tids);
    free(g);
}

int gw_peer_key_ok(const struct conn *c, const uint8_t *pk)
{
    return c->gw && c->gw->key_ok && memcmp(c->gw->pk, pk, IDENT_PK_LEN) == 0 ? 0 : P2C2R_EAUTH;
}

/* ---- task ids ----------------------------------------------------------------- */

static int tid_alloc(struct gw *g, const struct gw_msg *m, uint64_t now, uint32_t *idx)
{
    if (g->free_tid == NO_IDX) {
        if (g->ntids >= g->tid_max)
            return -1;
        g->tids = xrealloc(g->tids, (size_t)(g->ntids + 1) * sizeof(*g->tids));
        memset(&g->tids[g->ntids], 0, sizeof(*g->tids));
        g->tids[g->ntids].next = NO_IDX;
        g->free_tid = g->ntids++;
    }
    uint32_t i = g->free_tid;
    struct gw_tid *t = &g->tids[i];
    g->free_tid = t->next;
    t->used = 1;
    t->blob = m->kind == GW_BLOB_PUT;
    t->gen++;
    t->submit_us = now;
    t->len = m->tid_len;
    memcpy(t->text, m->tid, m->tid_len);
    *idx = i;
    return 0;
}

static uint64_t tid_ticket(const struct gw *g, uint32_t i) { return (uint64_t)g->tids[i].gen << 32 | i; }

static struct gw_tid *tid_find(struct gw *g, uint64_t ticket)
{
    uint32_t i = (uint32_t)ticket;
    if (i >= g->ntids || !g->tids[i].used || g->tids[i].gen != (uint32_t)(ticket >> 32))
        return NULL;
    return &g->tids[i];
}

static void tid_release(struct gw *g, struct gw_tid *t)
{
    t->used = 0;
    t->next = g->free_tid;
    g->free_tid = (uint32_t)(t - g->tids);
}

/* ---- output: binary frames to WebSocket messages ------------------------------ */

/* Opens a text message in o: room for the longest server header, filled by
 * msg_end.  Returns the offset to give msg_end. */
static size_t msg_begin(struct buf *o, int *rc)
{
    size_t start = buf_used(o);
    if (!buf_reserve(o, 10))
        *rc = -1;
    else
        buf_commit(o, 10);
    return start;
}

/* Closes the message opened at start: writes its header right before the
 * payload and moves the payload back over the unused part of the room. */
static void msg_end(struct buf *o, size_t start, int op)
{
    uint8_t *base = buf_head(o) + start;
    size_t len = buf_used(o) - start - 10;
    uint8_t hdr[WS_HDR_MAX];
    size_t hl = ws_put_hdr(hdr, 1, op, len, NULL);
    memcpy(base, hdr, hl);
    if (hl < 10) {
        memmove(base + hl, base + 10, len);
        o->len -= 10 - hl;
    }
}

static int put_binary(struct buf *o, const uint8_t *p, size_t n)
{
    uint8_t hdr[WS_HDR_MAX];
    size_t hl = ws_put_hdr(hdr, 1, WS_OP_BINARY, n, NULL);
    return buf_append(o, hdr, hl) || buf_append(o, p, n) ? -1 : 0;
}

static int put_close(struct buf *o, int status, const char *reason, size_t rl)
{
    uint8_t f[2 + WS_CONTROL_MAX];
    if (rl > WS_CONTROL_MAX - 2)
        rl = WS_CONTROL_MAX - 2;
    /* Cut at a character boundary so the reason stays UTF-8. */
    while (rl && ((unsigned char)reason[rl] & 0xc0) == 0x80)
        rl--;
    f[0] = (uint8_t)(status >> 8);
    f[1] = (uint8_t)status;
    memcpy(f + 2, reason, rl);
    uint8_t hdr[WS_HDR_MAX];
    size_t hl = ws_put_hdr(hdr, 1, WS_OP_CLOSE, 2 + rl, NULL);
    return buf_append(o, hdr, hl) || buf_append(o, f, 2 + rl) ? -1 : 0;
}

static int close_status(int code)
{
    switch (code) {
    case P2C2R_EPROTO: return WS_CLOSE_PROTOCOL;
    case P2C2R_ETOOBIG: return WS_CLOSE_TOO_BIG;
    case P2C2R_ESHUTDOWN: return WS_CLOSE_GOING_AWAY;
    case P2C2R_ECLOSED: return WS_CLOSE_NORMAL;
    default: return WS_CLOSE_POLICY;
    }
}

static int put_error_fields(struct buf *o, int code, const char *text, size_t tl)
{
    int rc = gw_printf(o, "\"error\":\"%s\",\"message\":", p2c2r_errname(code));
    return rc || gw_put_str(o, text, tl);
}

static int tr_error(struct conn *c, struct buf *o, const struct frame_hdr *h, const uint8_t *b)
{
    struct gw *g = c->gw;
    struct msg_error e;
    if (proto_parse_error(b, h->body_len, &e) != 0)
        return 0;
    int code = -(int)e.code, rc = 0;
    const char *text = (const char *)e.text.p;
    size_t start;
    if (code != P2C2R_ECLOSED) {
        if (g->reg_pending) {
            start = msg_begin(o, &rc);
            if (rc)
                return -1;
            rc |= g->reg_pending == ROLE_RENTER
                      ? gw_printf(o, "{\"msg_type\":\"registration_ack\",\"status\":\"error\",\"client_id\":")
                      : gw_printf(o, "{\"msg_type\":\"peer_register_response\",\"success\":false,\"peer_id\":");
            rc |= gw_put_str(o, g->name, strlen(g->name));
            rc |= gw_printf(o, ",");
            rc |= put_error_fields(o, code, text, e.text.len);
            rc |= gw_printf(o, "}");
            if (rc)
                return -1;
            msg_end(o, start, WS_OP_TEXT);
            g->reg_pending = 0;
        }
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"error\",\"code\":\"%s\",\"message\":", p2c2r_errname(code));
        rc |= gw_put_str(o, text, e.text.len);
        rc |= gw_printf(o, "}");
        if (rc)
            return -1;
        msg_end(o, start, WS_OP_TEXT);
        c->co->n.gw_messages_out++;
    }
    return put_close(o, close_status(code), text, e.text.len);
}

static int tr_rejected(struct conn *c, struct buf *o, const struct frame_hdr *h, const uint8_t *b)
{
    struct gw *g = c->gw;
    struct msg_error e;
    struct gw_tid *t = tid_find(g, h->req_id);
    if (!t || proto_parse_error(b, h->body_len, &e) != 0)
        return 0;
    int rc = 0;
    size_t start = msg_begin(o, &rc);
    rc |= gw_printf(o, "{\"msg_type\":\"%s\",\"%s\":%.*s,\"error\":\"%s\",\"reason\":",
                    t->blob ? "blob_rejected" : "task_rejected", t->blob ? "request_id" : "task_id", t->len,
                    t->text, p2c2r_errname(-(int)e.code));
    rc |= gw_put_str(o, (const char *)e.text.p, e.text.len);
    rc |= gw_printf(o, "}");
    tid_release(g, t);
    if (rc)
        return -1;
    msg_end(o, start, WS_OP_TEXT);
    return 0;
}

static int tr_deliver(struct conn *c, struct buf *o, const struct frame_hdr *h, const uint8_t *b)
{
    struct gw *g = c->gw;
    struct msg_deliver d;
    struct gw_tid *t = tid_find(g, h->req_id);
    if (!t || proto_parse_deliver(b, h->body_len, &d) != 0)
        return 0;
    int status = -(int)d.status, rc = 0;
    uint64_t total_us = c->co->now - t->submit_us;
    uint64_t net_us = total_us > d.exec_us ? total_us - d.exec_us : 0;
    size_t start = msg_begin(o, &rc);
    if (rc)
        return -1;
    int binary = 0;
    if (status == P2C2R_ETIMEDOUT) {
        rc |= gw_printf(o, "{\"msg_type\":\"task_timeout\",\"task_id\":%.*s,\"error\":", t->len, t->text);
        rc |= gw_put_str(o, (const char *)d.output.p, d.output.len);
    } else {
        /* The hot path of every task: appends, no printf. */
        rc |= gw_put_lit(o, "{\"msg_type\":\"result_delivery\",\"task_id\":");
        rc |= buf_append(o, t->text, t->len) ? -1 : 0;
        rc |= gw_put_lit(o, status == 0 ? ",\"success\":true,\"processing_time_ms\":"
                                        : ",\"success\":false,\"processing_time_ms\":");
        rc |= gw_put_ms(o, d.exec_us);
        rc |= gw_put_lit(o, ",\"network_latency_ms\":");
        rc |= gw_put_ms(o, net_us);
        rc |= gw_put_lit(o, d.flags & PROTO_DELIVER_F_CACHED ? ",\"cached\":true" : ",\"cached\":false");
        rc |= gw_put_lit(o, d.flags & PROTO_DELIVER_F_VERIFIED ? ",\"verified\":true,\"attempts\":"
                                                                : ",\"verified\":false,\"attempts\":");
        rc |= gw_put_u64(o, d.attempts);
        rc |= gw_put_lit(o, ",\"peer\":");
        rc |= gw_put_u64(o, d.peer_id);
        rc |= gw_put_lit(o, ",");
        if (status == 0 && g->binary_results) {
            binary = 1;
            rc |= gw_put_lit(o, "\"result_frame\":true,\"error\":null");
        } else if (status == 0) {
            rc |= gw_put_lit(o, "\"result\":");
            rc |= gw_put_b64(o, d.output.p, d.output.len);
            rc |= gw_put_lit(o, ",\"error\":null");
        } else {
            rc |= gw_printf(o, "\"result\":null,\"error_code\":\"%s\",\"error\":", p2c2r_errname(status));
            rc |= gw_put_str(o, (const char *)d.output.p, d.output.len);
        }
    }
    rc |= gw_put_lit(o, "}");
    tid_release(g, t);
    if (rc)
        return -1;
    msg_end(o, start, WS_OP_TEXT);
    return binary ? put_binary(o, d.output.p, d.output.len) : 0;
}

/* params lines "k=v\n" as a JSON object of strings. */
static int put_params(struct buf *o, const uint8_t *p, size_t n)
{
    int rc = gw_printf(o, "{");
    size_t i = 0;
    int first = 1;
    while (i < n && !rc) {
        const uint8_t *nl = memchr(p + i, '\n', n - i);
        size_t e = nl ? (size_t)(nl - p) : n;
        const uint8_t *eq = memchr(p + i, '=', e - i);
        if (eq) {
            size_t k = (size_t)(eq - p);
            rc |= gw_printf(o, "%s", first ? "" : ",");
            rc |= gw_put_str(o, (const char *)p + i, k - i);
            rc |= gw_printf(o, ":");
            rc |= gw_put_str(o, (const char *)p + k + 1, e - k - 1);
            first = 0;
        }
        i = e + 1;
    }
    return rc || gw_printf(o, "}");
}

static int tr_assign(struct conn *c, struct buf *o, const struct frame_hdr *h, const uint8_t *b)
{
    struct msg_task m;
    int binary = c->gw->binary_inputs;
    if (proto_parse_task(b, h->body_len, &m) != 0)
        return 0;
    int rc = 0;
    size_t start = msg_begin(o, &rc);
    rc |= gw_printf(o, "{\"msg_type\":\"task_assign\",\"task_id\":\"%" PRIu64 "\",\"task_type\":", h->req_id);
    rc |= gw_put_str(o, (const char *)m.type.p, m.type.len);
    rc |= gw_printf(o, ",\"priority\":%u,\"deadline_ms\":%u,\"min_version\":%u,%s", m.priority,
                    m.deadline_ms, m.min_version, binary ? "\"data_frame\":true" : "\"data\":");
    if (!binary)
        rc |= gw_put_b64(o, m.input.p, m.input.len);
    rc |= gw_printf(o, ",\"params\":");
    rc |= put_params(o, m.params.p, m.params.len);
    if (m.nblobs) {
        rc |= gw_printf(o, ",\"blobs\":[");
        for (int i = 0; i < m.nblobs; i++) {
            char hx[2 * PROTO_HASH_LEN + 1];
            hex_encode(m.blobs + i * PROTO_HASH_LEN, PROTO_HASH_LEN, hx);
            rc |= gw_printf(o, "%s\"%s\"", i ? "," : "", hx);
        }
        rc |= gw_printf(o, "]");
    }
    rc |= gw_printf(o, "}");
    if (rc)
        return -1;
    msg_end(o, start, WS_OP_TEXT);
    return binary ? put_binary(o, m.input.p, m.input.len) : 0;
}

static int tr_frame(struct conn *c, struct buf *o, const struct frame_hdr *h, const uint8_t *b)
{
    struct gw *g = c->gw;
    struct coord *co = c->co;
    int rc = 0;
    size_t start;
    switch (h->type) {
    case GW_RAW:
        return buf_append(o, b, h->body_len) ? -1 : 0;
    case MSG_HELLO_OK:
        if (c->role != ROLE_RENTER)
            return 0; /* a peer's registration is answered at REGISTER_OK */
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"registration_ack\",\"status\":\"ok\",\"client_id\":");
        rc |= gw_put_str(o, g->name, strlen(g->name));
        rc |= gw_printf(o, ",\"conn_id\":%" PRIu64 ",\"max_inflight\":%u,\"max_message\":%" PRIu64 "}", c->id,
                        co->cfg.renter_max_inflight, co->gw->max_msg);
        g->reg_pending = 0;
        break;
    case MSG_REGISTER_OK:
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"peer_register_response\",\"success\":true,\"peer_id\":");
        rc |= gw_put_str(o, g->name, strlen(g->name));
        rc |= gw_printf(o, ",\"peer_num\":%" PRIu64 "}", h->body_len >= 8 ? rd64(b) : 0);
        g->reg_pending = 0;
        break;
    case MSG_ERROR:
        return tr_error(c, o, h, b);
    case MSG_REJECTED:
        co->n.gw_messages_out++;
        return tr_rejected(c, o, h, b);
    case MSG_DELIVER:
        co->n.gw_messages_out++;
        return tr_deliver(c, o, h, b);
    case MSG_ASSIGN:
        co->n.gw_messages_out++;
        return tr_assign(c, o, h, b);
    case MSG_STATS:
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"stats\",\"stats\":");
        rc |= buf_append(o, b, h->body_len) ? -1 : 0;
        rc |= gw_printf(o, "}");
        break;
    case MSG_CANCEL:
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"task_cancel\",\"task_id\":\"%" PRIu64 "\"}", h->req_id);
        break;
    case MSG_BLOB_OK: {
        struct gw_tid *t = tid_find(g, h->req_id);
        if (!t || h->body_len != PROTO_HASH_LEN)
            return 0;
        char hx[2 * PROTO_HASH_LEN + 1];
        hex_encode(b, PROTO_HASH_LEN, hx);
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"blob_ack\",\"request_id\":%.*s,\"hash\":\"%s\"}", t->len, t->text,
                        hx);
        tid_release(g, t);
        break;
    }
    case MSG_BLOB_DATA: {
        if (h->body_len < PROTO_HASH_LEN)
            return 0;
        char hx[2 * PROTO_HASH_LEN + 1];
        hex_encode(b, PROTO_HASH_LEN, hx);
        start = msg_begin(o, &rc);
        rc |= gw_printf(o, "{\"msg_type\":\"blob\",\"hash\":\"%s\",\"data\":", hx);
        rc |= gw_put_b64(o, b + PROTO_HASH_LEN, h->body_len - PROTO_HASH_LEN);
        rc |= gw_printf(o, "}");
        break;
    }
    case MSG_PING: {
        uint8_t hdr[WS_HDR_MAX];
        size_t hl = ws_put_hdr(hdr, 1, WS_OP_PING, h->body_len, NULL);
        return h->body_len <= WS_CONTROL_MAX && (buf_append(o, hdr, hl) || buf_append(o, b, h->body_len)) ? -1 : 0;
    }
    default:
        return 0; /* ACCEPTED (never asked for), PONG: nothing to say */
    }
    if (rc)
        return -1;
    msg_end(o, start, WS_OP_TEXT);
    co->n.gw_messages_out++;
    return 0;
}

/* Rewrites c's queued frames as WebSocket messages in its output buffer.
 * Returns 0, or -1 when they do not fit (the reader is too slow). */
static int gw_translate(struct conn *c)
{
    struct gw *g = c->gw;
    struct fconn *f = &c->io;
    if (buf_used(&g->pre)) {
        if (buf_append(&g->wire, buf_head(&g->pre), buf_used(&g->pre)) != 0)
            return -1;
        buf_consume(&g->pre, buf_used(&g->pre));
        buf_shrink(&g->pre, 0);
    }
    size_t n = buf_used(&f->out), off = 0;
    const uint8_t *p = n ? buf_head(&f->out) : NULL;
    while (off < n) {
        struct frame_hdr h;
        int64_t fl = proto_decode_hdr(p + off, n - off, UINT32_MAX, &h);
        assert(fl > 0); /* only whole frames are ever queued */
        if (tr_frame(c, &g->wire, &h, p + off + PROTO_HDR_LEN) != 0)
            return -1;
        off += (size_t)fl;
    }
    buf_consume(&f->out, n);
    struct buf t = f->out;
    f->out = g->wire;
    g->wire = t;
    buf_shrink(&g->wire, 64u << 10);
    return 0;
}

void gw_flush_all(struct coord *co)
{
    struct list_node *n;
    while ((n = list_pop_front(&co->gw->dirty)) != NULL) {
        struct fconn *f = list_entry(n, struct fconn, dirty_node);
        struct conn *c = f->tcp.data;
        f->dirty = 0;
        if (!f->open)
            continue;
        if (!f->writing && gw_translate(c) != 0) {
            co->n.limit_cuts++;
            LOG_W("conn_cut", "conn=%" PRIu64 " addr=%s code=ELIMIT reason=\"gateway output over its limit: "
                  "the client does not read\"", c->id, c->addr);
            conn_close(c);
            continue;
        }
        int rc = fconn_flush(f);
        if (rc < 0)
            f->on_error(f, rc);
    }
}

/* ---- input: JSON messages to binary frames -------------------------------- */

/* Gives the frame (type, req_id, body in the scratch buffer) to the native
 * handlers.  Returns 0, or -1 when the connection was cut. */
static int gw_dispatch(struct conn *c, uint8_t type, uint64_t req_id, const uint8_t *body, size_t len)
{
    struct frame_hdr h = {PROTO_VERSION, type, 0, req_id, (uint32_t)len};
    return conn_dispatch(c, &h, body) != 0 || c->state >= CS_DRAINING ? -1 : 0;
}

static int gw_raw(struct conn *c, int op, const uint8_t *p, size_t n)
{
    uint8_t hdr[WS_HDR_MAX];
    size_t hl = ws_put_hdr(hdr, 1, op, n, NULL);
    uint8_t *b = conn_frame(c, GW_RAW, 0, 0, (uint32_t)(hl + n));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "output over limit: read your messages");
        return -1;
    }
    memcpy(b, hdr, hl);
    memcpy(b + hl, p, n);
    return 0;
}

static int hello(struct conn *c, const struct gw_msg *m, uint8_t role)
{
    struct gw *g = c->gw;
    struct msg_hello h = {PROTO_VERSION, PROTO_VERSION, role, {(const uint8_t *)m->token.p, m->token.len},
                          {(const uint8_t *)m->name.p, m->name.len}};
    uint8_t body[8 + PROTO_MAX_TOKEN + PROTO_MAX_NAME + 8];
    size_t n = proto_put_hello(body, &h);
    memcpy(g->name, m->name.p, m->name.len);
    g->name[m->name.len] = '\0';
    g->reg_pending = role;
    return gw_dispatch(c, MSG_HELLO, 0, body, n);
}

static int on_peer_register(struct conn *c, const struct gw_msg *m)
{
    struct gw *g = c->gw;
    /* The key first: the signature of the challenge sent at the upgrade
     * (docs/GATEWAY.md, "Peer identity"), over no registration body. */
    if (ident_verify_challenge(m->key, g->nonce, c->id, NULL, 0, m->sig) != 0) {
        c->co->n.auth_failures++;
        memcpy(g->name, m->name.p, m->name.len);
        g->name[m->name.len] = '\0';
        g->reg_pending = ROLE_PEER;
        conn_fail(c, P2C2R_EAUTH, "peer_register signature does not verify: sign the challenge's nonce and "
                  "conn_id with the key you present (docs/GATEWAY.md, Peer identity)");
        return -1;
    }
    memcpy(g->pk, m->key, IDENT_PK_LEN);
    g->key_ok = 1;
    g->binary_inputs = m->binary_inputs;
    if (hello(c, m, ROLE_PEER) != 0)
        return -1;
    struct msg_register r;
    memset(&r, 0, sizeof(r));
    r.cores = m->cores;
    r.slots = m->slots;
    r.mem_bytes = m->mem_bytes;
    r.gpu = m->gpu;
    r.ntypes = m->ntypes;
    r.gpu_model.p = (const uint8_t *)m->gpu_model.p;
    r.gpu_model.len = m->gpu_model.len;
    for (unsigned i = 0; i < m->ntypes; i++) {
        r.types[i].name.p = (const uint8_t *)m->types[i].name.p;
        r.types[i].name.len = m->types[i].name.len;
        r.types[i].version = m->types[i].version;
        r.types[i].flags = m->types[i].det ? PROTO_TYPE_F_DETERMINISTIC : 0;
    }
    r.pk = g->pk;
    r.sig = NULL;
    struct buf *s = &c->co->gw->scratch;
    buf_consume(s, buf_used(s));
    size_t n = proto_register_size(&r);
    uint8_t *b = buf_reserve(s, n);
    if (!b)
        return -1;
    proto_put_register(b, &r);
    return gw_dispatch(c, MSG_PEER_REGISTER, 0, b, n);
}

/* Exact decoded length of base64 text, -1 when it cannot be base64. */
static long b64_len(const char *s, size_t n)
{
    if (n % 4)
        return -1;
    long l = (long)(n / 4 * 3);
    if (n && s[n - 1] == '=')
        l--;
    if (n > 1 && s[n - 2] == '=')
        l--;
    return l;
}

/* The length of m's input: len when it came as a binary message (in), else
 * its base64 data's.  -1 when m's data is not base64 or the input is over
 * max_body: the connection is cut and the slot released. */
static long input_len(struct conn *c, const struct gw_msg *m, uint32_t slot, const uint8_t *in, size_t len)
{
    struct gw *g = c->gw;
    struct coord *co = c->co;
    long dl = in ? (long)len : b64_len(m->data.p, m->data.len);
    if (dl < 0 || (size_t)dl > co->cfg.max_body) {
        tid_release(g, &g->tids[slot]);
        if (dl < 0) {
            co->n.gw_bad++;
            conn_fail(c, P2C2R_EINVAL, "%s 'data' is not base64 (RFC 4648, with padding)", gw_kind_name(m->kind));
        } else {
            conn_fail(c, P2C2R_ETOOBIG, "%s input of %ld bytes over the limit of %u", gw_kind_name(m->kind), dl,
                      co->cfg.max_body);
        }
        return -1;
    }
    return dl;
}

/* Writes m's input (in[0..len), or its data decoded: dl bytes) at dst.
 * Returns 0, or -1 when the base64 does not decode (cut, slot released). */
static int input_put(struct conn *c, const struct gw_msg *m, uint32_t slot, const uint8_t *in, size_t len,
                     uint8_t *dst, long dl)
{
    if (in) {
        memcpy(dst, in, len);
        return 0;
    }
    if (b64_decode(m->data.p, m->data.len, dst) == dl)
        return 0;
    tid_release(c->gw, &c->gw->tids[slot]);
    c->co->n.gw_bad++;
    conn_fail(c, P2C2R_EINVAL, "%s 'data' is not base64 (RFC 4648, with padding)", gw_kind_name(m->kind));
    return -1;
}

/* Sends the SUBMIT of m (ticket: its task_id slot) with input in[0..len),
 * or with m->data decoded when in is NULL. */
static int submit(struct conn *c, const struct gw_msg *m, uint32_t slot, const uint8_t *in, size_t len)
{
    struct gw *g = c->gw;
    struct coord *co = c->co;
    long dl = input_len(c, m, slot, in, len);
    if (dl < 0)
        return -1;
    size_t tl = m->task_type.len;
    size_t n = proto_task_size_ext(tl, m->params_len, m->nblobs, 0, (size_t)dl);
    if (n > co->cfg.max_body) {
        tid_release(g, &g->tids[slot]);
        conn_fail(c, P2C2R_ETOOBIG, "task input of %ld bytes over the limit of %u", dl, co->cfg.max_body);
        return -1;
    }
    struct buf *s = &co->gw->scratch;
    buf_consume(s, buf_used(s));
    uint8_t *b = buf_reserve(s, n + 3);
    if (!b)
        return -1;
    size_t hl = proto_put_task_head_ext(b, m->task_type.p, tl, m->min_version, m->deadline_ms, m->priority,
                                        m->no_cache ? PROTO_TASK_F_NOCACHE : 0, m->params, m->params_len,
                                        m->nblobs ? m->blobs : NULL, m->nblobs, NULL, (uint32_t)dl);
    if (input_put(c, m, slot, in, len, b + hl, dl) != 0)
        return -1;
    return gw_dispatch(c, MSG_SUBMIT, tid_ticket(g, slot), b, n);
}

/* Sends the BLOB_PUT of m (ticket: its request_id slot): the native
 * handler stores it (the memory budget, the account's blob quota) and
 * answers BLOB_OK or REJECTED, written as blob_ack or blob_rejected. */
static int blob_put(struct conn *c, const struct gw_msg *m, uint32_t slot, const uint8_t *in, size_t len)
{
    long dl = input_len(c, m, slot, in, len);
    if (dl < 0)
        return -1;
    struct buf *s = &c->co->gw->scratch;
    buf_consume(s, buf_used(s));
    uint8_t *b = buf_reserve(s, (size_t)dl + 3);
    if (!b || input_put(c, m, slot, in, len, b, dl) != 0)
        return -1;
    return gw_dispatch(c, MSG_BLOB_PUT, tid_ticket(c->gw, slot), b, (size_t)dl);
}

static int result(struct conn *c, const struct gw_msg *m, const uint8_t *out, size_t len)
{
    struct coord *co = c->co;
    const char *text = m->success ? m->result.p : m->error.p;
    size_t tn = m->success ? m->result.len : m->error.len;
    long dl = m->success && !out ? b64_len(text, tn) : out ? (long)len : (long)tn;
    if (dl < 0 || (size_t)dl > co->cfg.max_body) {
        co->n.gw_bad++;
        conn_fail(c, dl < 0 ? P2C2R_EINVAL : P2C2R_ETOOBIG, "task_result 'result' is %s",
                  dl < 0 ? "not base64 (RFC 4648, with padding)" : "over the size limit");
        return -1;
    }
    struct buf *s = &co->gw->scratch;
    buf_consume(s, buf_used(s));
    uint8_t *b = buf_reserve(s, PROTO_RESULT_PREFIX + (size_t)dl + 3);
    if (!b)
        return -1;
    proto_put_result_head(b, (uint16_t)(m->success ? 0 : -m->error_code), m->exec_us);
    if (out)
        memcpy(b + PROTO_RESULT_PREFIX, out, len);
    else if (!m->success)
        memcpy(b + PROTO_RESULT_PREFIX, text, tn);
    else if (b64_decode(text, tn, b + PROTO_RESULT_PREFIX) != dl) {
        co->n.gw_bad++;
        conn_fail(c, P2C2R_EINVAL, "task_result 'result' is not base64 (RFC 4648, with padding)");
        return -1;
    }
    return gw_dispatch(c, MSG_RESULT, m->tid_num, b, PROTO_RESULT_PREFIX + (size_t)dl);
}

/* Which messages each state and role may send. */
static int kind_allowed(const struct conn *c, int kind)
{
    if (c->state == CS_HELLO)
        return kind == GW_GAMER_REGISTER || kind == GW_PEER_REGISTER;
    if (c->role == ROLE_RENTER)
        return kind == GW_TASK_SUBMIT || kind == GW_TASK_CANCEL || kind == GW_STATS_REQUEST ||
               kind == GW_BLOB_PUT;
    return c->peer && (kind == GW_TASK_RESULT || kind == GW_HEARTBEAT);
}

static int on_text(struct conn *c, const char *p, size_t n)
{
    struct gw *g = c->gw;
    struct coord *co = c->co;
    char err[256];
    struct gw_msg *m = xmalloc(sizeof(*m));
    int rc = gw_decode(p, n, m, err, sizeof(err));
    if (rc != 0) {
        free(m);
        co->n.gw_bad++;
        conn_fail(c, rc, "%s", err);
        return -1;
    }
    if (!kind_allowed(c, m->kind)) {
        co->n.gw_bad++;
        conn_fail(c, P2C2R_EPROTO, "msg_type %s not allowed %s", gw_kind_name(m->kind),
                  c->state == CS_HELLO ? "before gamer_register or peer_register"
                  : c->role == ROLE_RENTER ? "for a renter" : "for a peer");
        rc = -1;
        goto done;
    }
    switch (m->kind) {
    case GW_GAMER_REGISTER:
        g->binary_results = m->binary_results;
        rc = hello(c, m, ROLE_RENTER);
        break;
    case GW_PEER_REGISTER:
        rc = on_peer_register(c, m);
        break;
    case GW_TASK_SUBMIT:
    case GW_BLOB_PUT: {
        uint32_t slot;
        if (tid_alloc(g, m, co->now, &slot) != 0) {
            conn_fail(c, P2C2R_ELIMIT, "more than %u tasks outstanding or refused unread", g->tid_max);
            rc = -1;
            break;
        }
        if (m->data_frame) {
            g->pend = m;
            g->pend_tid = slot;
            return 0;
        }
        rc = m->kind == GW_BLOB_PUT ? blob_put(c, m, slot, NULL, 0) : submit(c, m, slot, NULL, 0);
        break;
    }
    case GW_TASK_CANCEL:
        for (uint32_t i = 0; i < g->ntids; i++) {
            struct gw_tid *t = &g->tids[i];
            if (t->used && !t->blob && t->len == m->tid_len && memcmp(t->text, m->tid, t->len) == 0) {
                rc = gw_dispatch(c, MSG_CANCEL, tid_ticket(g, i), NULL, 0);
                break;
            }
        }
        break;
    case GW_TASK_RESULT:
        if (m->result_frame) {
            g->pend = m;
            return 0;
        }
        rc = result(c, m, NULL, 0);
        break;
    case GW_HEARTBEAT:
        if (m->credit) {
            uint8_t b[4];
            wr32(b, m->credit);
            rc = gw_dispatch(c, MSG_CREDIT, 0, b, 4);
        }
        break;
    case GW_STATS_REQUEST: {
        /* Offset 0, limit 0 (the default page), every_ms (PROTOCOL.md 5.7). */
        uint8_t b[12] = {0};
        wr32(b + 8, m->every_ms);
        rc = gw_dispatch(c, MSG_STATS_REQ, 0, b, m->every_ms ? sizeof(b) : 0);
        break;
    }
    default:
        break;
    }
done:
    gw_msg_free(m);
    free(m);
    return rc;
}

static int on_binary(struct conn *c, const uint8_t *p, size_t n)
{
    struct gw *g = c->gw;
    struct gw_msg *m = g->pend;
    if (!m) {
        c->co->n.gw_bad++;
        conn_fail(c, P2C2R_EPROTO, "binary message without a task_submit or blob_put data_frame or a "
                                   "task_result result_frame before it");
        return -1;
    }
    g->pend = NULL;
    int rc = m->kind == GW_TASK_SUBMIT ? submit(c, m, g->pend_tid, p, n)
             : m->kind == GW_BLOB_PUT  ? blob_put(c, m, g->pend_tid, p, n)
                                       : result(c, m, p, n);
    gw_msg_free(m);
    free(m);
    return rc;
}

static int on_ws_msg(void *arg, int op, uint8_t *p, size_t n)
{
    struct conn *c = arg;
    struct coord *co = c->co;
    int rc = 0;
    co->n.gw_messages_in++;
    if (op != WS_OP_BINARY && op < WS_OP_CLOSE && c->gw->pend) {
        co->n.gw_bad++;
        conn_fail(c, P2C2R_EPROTO, "expected the binary message announced by data_frame or result_frame");
        return 1;
    }
    switch (op) {
    case WS_OP_TEXT:
        rc = on_text(c, (const char *)p, n);
        break;
    case WS_OP_BINARY:
        rc = on_binary(c, p, n);
        break;
    case WS_OP_PING:
        rc = gw_raw(c, WS_OP_PONG, p, n);
        break;
    case WS_OP_PONG:
        /* The answer to a coordinator PING (the peer's round-trip time). */
        if (c->state == CS_READY && c->peer && n == 8)
            rc = gw_dispatch(c, MSG_PONG, 0, p, n);
        break;
    case WS_OP_CLOSE:
        conn_fail(c, P2C2R_ECLOSED, "closed by the client");
        return 1;
    default:
        break;
    }
    return rc != 0 || c->state >= CS_DRAINING;
}

/* Feeds n bytes read from c's socket to its WebSocket reader. */
static void gw_input(struct conn *c, uint8_t *p, size_t n)
{
    struct gw *g = c->gw;
    uint8_t *data = p;
    size_t len = n;
    if (buf_used(&g->in)) {
        if (buf_append(&g->in, p, n) != 0) {
            conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
            return;
        }
        data = buf_head(&g->in);
        len = buf_used(&g->in);
    }
    int stopped;
    long used = ws_reader_feed(&g->rd, data, len, on_ws_msg, c, &stopped);
    if (used < 0) {
        c->co->n.gw_bad++;
        conn_fail(c, (int)used, "%s (limit %" PRIu64 " bytes per message)", g->rd.why, g->rd.max_msg);
        return;
    }
    if (stopped || c->state >= CS_DRAINING) {
        buf_consume(&g->in, buf_used(&g->in));
        return;
    }
    if (data == p) {
        if ((size_t)used < n && buf_append(&g->in, p + used, n - (size_t)used) != 0)
            conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
    } else {
        buf_consume(&g->in, (size_t)used);
        buf_shrink(&g->in, 0);
    }
}

static void gw_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct conn *c = h->data;
    (void)suggested;
    *out = uv_buf_init((char *)c->co->rbuf, READ_CHUNK);
}

static void gw_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    if (nread == 0 || c->state >= CS_DRAINING)
        return;
    struct coord *co = c->co;
    co->n.bytes_in += (uint64_t)nread;
    co->now = now_us();
    c->last_rx_us = co->now;
    if (c->io.tls)
        tlsserve_gw_input(c, (const uint8_t *)b->base, (size_t)nread, gw_input);
    else
        gw_input(c, (uint8_t *)b->base, (size_t)nread);
}

int gw_upgrade(void *arg, int fd, struct tls *tls, const char *accept, const uint8_t *extra,
               size_t extra_len)
{
    struct coord *co = arg;
    struct gateway *G = co->gw;
    struct conn *c = xcalloc(1, sizeof(*c));
    c->co = co;
    uv_tcp_init(&co->loop, &c->io.tcp);
    c->io.tcp.data = c;
    if (uv_tcp_open(&c->io.tcp, fd) != 0) {
        conn_abandon(c);
        return -1;
    }
    struct gw *g = xcalloc(1, sizeof(*g));
    c->gw = g;
    ws_reader_init(&g->rd, G->max_msg, 1);
    size_t out_max = co->cfg.max_output * 2;
    buf_init(&g->in, (size_t)G->max_msg + WS_HDR_MAX + READ_CHUNK);
    buf_init(&g->wire, out_max);
    buf_init(&g->pre, 4096);
    g->free_tid = NO_IDX;
    g->tid_max = co->cfg.renter_max_inflight + GW_TID_SLACK;
    ident_nonce(g->nonce);
    co->n.gw_upgrades++;
    int refused = conn_setup(c, &G->dirty, out_max, 0);
    if (tls)
        tlsserve_adopt(c, tls, out_max);
    c->io.encoded = 1;
    char nb[64];
    size_t nl = b64_encode(g->nonce, sizeof(g->nonce), nb);
    char head[256];
    int hl = snprintf(head, sizeof(head),
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    buf_append(&g->pre, head, (size_t)hl);
    size_t start = buf_used(&g->pre);
    int rc = 0;
    start = msg_begin(&g->pre, &rc);
    gw_printf(&g->pre, "{\"msg_type\":\"challenge\",\"nonce\":\"%.*s\",\"conn_id\":%" PRIu64
              ",\"max_message\":%" PRIu64 "}", (int)nl, nb, c->id, G->max_msg);
    msg_end(&g->pre, start, WS_OP_TEXT);
    fconn_mark_dirty(&c->io);
    uv_read_start((uv_stream_t *)&c->io.tcp, gw_on_alloc, gw_on_read);
    if (!refused && extra_len) {
        buf_append(&g->in, extra, extra_len);
        gw_input(c, (uint8_t *)"", 0);
    }
    LOG_D("gw_upgrade", "conn=%" PRIu64 " addr=%s", c->id, c->addr);
    return 0;
}
