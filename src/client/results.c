/* results.c - libp2c2r: collecting results (wait, poll), cancel, the
 * non-blocking face's small calls, backpressure figures and frame advice,
 * the trace, STATS and blob uploads.  Results are moved into the caller's
 * struct through the sized-struct layer (sized.c). */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "client/local.h"
#include "common/util.h"

void p2c2r_result_release(struct p2c2r_result *r)
{
    if (!r)
        return;
    free(r->output);
    r->output = NULL;
    r->output_len = 0;
}

/* Moves e's result into the caller's struct at dst (size bytes, checked by
 * sized_ok) and recycles e. */
static void take_result(p2c2r_client *c, struct entry *e, void *dst, uint32_t size)
{
    sized_out(dst, size, &e->res, &result_layout);
    e->res.output = NULL;
    ticket_drop(c, e);
}

int p2c2r_client_wait(p2c2r_client *c, p2c2r_ticket t, int timeout_ms, struct p2c2r_result *out)
{
    if (!c || !out || !sized_ok(sized_size(out), &result_layout))
        return P2C2R_EINVAL;
    struct entry *e = c->nbuckets ? *ticket_slot(c, t.id) : NULL;
    if (!e)
        return P2C2R_ENOTFOUND;
    uint64_t deadline = client_deadline_after(timeout_ms);
    for (;;) {
        if (e->done) {
            take_result(c, e, out, sized_size(out));
            return 0;
        }
        if (now_us() >= deadline && timeout_ms >= 0) {
            if (!c->err)
                p2c2r_client_process(c);
            else
                local_run(c);
            if (e->done)
                continue;
            return P2C2R_ETIMEDOUT;
        }
        client_wait_io(c, timeout_ms == 0 ? 0 : deadline);
    }
}

int p2c2r_client_poll(p2c2r_client *c, struct p2c2r_result *out, size_t max, int timeout_ms)
{
    uint32_t rsize = out ? sized_size(out) : 0;
    if (!c || max == 0 || !sized_ok(rsize, &result_layout))
        return P2C2R_EINVAL;
    if (max > INT_MAX)
        max = INT_MAX;
    uint64_t deadline = client_deadline_after(timeout_ms);
    local_run(c);
    while (list_empty(&c->done) && c->ninflight && (!c->err || c->nlocal)) {
        if (timeout_ms >= 0 && now_us() >= deadline)
            break;
        client_wait_io(c, timeout_ms == 0 ? 0 : deadline);
        if (timeout_ms == 0)
            break;
    }
    size_t n = 0;
    while (n < max && !list_empty(&c->done)) {
        struct entry *e = list_entry(c->done.next, struct entry, node);
        take_result(c, e, (uint8_t *)out + n * rsize, rsize);
        n++;
    }
    if (!c->err && client_want_out(c))
        client_write(c);
    return (int)n;
}

int p2c2r_client_cancel(p2c2r_client *c, p2c2r_ticket t)
{
    if (!c)
        return P2C2R_EINVAL;
    struct entry *e = c->nbuckets ? *ticket_slot(c, t.id) : NULL;
    if (!e)
        return P2C2R_ENOTFOUND;
    if (local_cancel(c, e) || e->done || c->err || e->kind == ENTRY_BLOB)
        return 0;
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN);
    if (!b)
        return P2C2R_ENOMEM;
    proto_put_hdr(b, MSG_CANCEL, 0, t.id, 0);
    buf_commit(&c->out, PROTO_HDR_LEN);
    return 0;
}

int p2c2r_client_fd(const p2c2r_client *c) { return c ? c->fd : -1; }

int p2c2r_client_want_write(const p2c2r_client *c)
{
    if (!c)
        return 0;
    return c->state == S_TCP || ((c->state == S_HELLO || c->state == S_READY) && client_want_out(c));
}

int p2c2r_client_flush(p2c2r_client *c, int timeout_ms)
{
    if (!c)
        return P2C2R_EINVAL;
    uint64_t deadline = client_deadline_after(timeout_ms);
    for (;;) {
        client_write(c);
        if (!client_unsent(c) || c->err)
            return c->err;
        if (timeout_ms >= 0 && now_us() >= deadline)
            return P2C2R_ETIMEDOUT;
        client_wait_io(c, deadline); /* returns once writable (or readable: reading
                                 keeps the coordinator from stalling on us) */
    }
}

size_t p2c2r_client_pending(const p2c2r_client *c) { return c ? c->nentries : 0; }

uint32_t p2c2r_client_max_inflight(const p2c2r_client *c) { return c ? c->max_inflight : 0; }

/* Writes f's figures, with the connection's max_inflight and unsent_bytes,
 * to the caller's struct out (size checked). */
static void pressure_out(const p2c2r_client *c, const struct fadv *f, struct p2c2r_pressure *out)
{
    struct p2c2r_pressure p;
    p2c2r_pressure_init(&p);
    fadv_pressure(f, now_us() / 1000, &p);
    p.max_inflight = c->max_inflight;
    p.unsent_bytes = client_unsent(c);
    sized_out(out, sized_size(out), &p, &pressure_layout);
}

int p2c2r_client_pressure(const p2c2r_client *c, struct p2c2r_pressure *out)
{
    if (!c || !out || !sized_ok(sized_size(out), &pressure_layout))
        return P2C2R_EINVAL;
    pressure_out(c, &c->all, out);
    return 0;
}

int p2c2r_client_type_pressure(const p2c2r_client *c, const char *type, struct p2c2r_pressure *out)
{
    if (!c || !type || !out || !sized_ok(sized_size(out), &pressure_layout))
        return P2C2R_EINVAL;
    int ix = ctype_find(c, type);
    struct fadv none;
    fadv_init(&none);
    pressure_out(c, ix >= 0 ? &c->types[ix].adv : c->ntypes == MAX_TYPES ? &c->all : &none, out);
    return 0;
}

int p2c2r_client_frame_advice(p2c2r_client *c, const char *type, uint64_t now_ms,
                              uint32_t budget_us, struct p2c2r_frame_advice *out)
{
    if (!c || !type || !out || budget_us == 0 || !sized_ok(sized_size(out), &advice_layout))
        return P2C2R_EINVAL;
    size_t tl = strlen(type);
    if (tl == 0 || tl > PROTO_MAX_TYPE_NAME)
        return P2C2R_EINVAL;
    int ix = ctype_ix(c, type);
    struct p2c2r_frame_advice a;
    p2c2r_frame_advice_init(&a);
    size_t ntasks = c->ninflight - c->nblob_open;
    uint32_t room = c->state == S_READY && c->max_inflight > ntasks
                        ? (uint32_t)(c->max_inflight - ntasks) : 0;
    fadv_advise(ix >= 0 ? &c->types[ix].adv : &c->all, now_ms, budget_us, room, &a);
    sized_out(out, sized_size(out), &a, &advice_layout);
    return 0;
}

int p2c2r_client_state(const p2c2r_client *c)
{
    if (!c)
        return 0;
    switch (c->state) {
    case S_TCP:
    case S_HELLO:
        return P2C2R_STATE_CONNECTING;
    case S_READY:
        return P2C2R_STATE_READY;
    case S_BACKOFF:
        return P2C2R_STATE_BACKOFF;
    default:
        return P2C2R_STATE_FAILED;
    }
}

int p2c2r_client_timeout_ms(const p2c2r_client *c)
{
    if (!c)
        return -1;
    uint64_t at = local_next_us(c); /* UINT64_MAX when no local work waits */
    if (c->state == S_BACKOFF && c->retry_at_us < at)
        at = c->retry_at_us;
    else if ((c->state == S_TCP || c->state == S_HELLO) && c->attempt_deadline_us < at)
        at = c->attempt_deadline_us;
    if (at == UINT64_MAX)
        return -1;
    uint64_t now = now_us();
    if (at <= now)
        return 0;
    uint64_t ms = (at - now + 999) / 1000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

int p2c2r_client_trace_start(p2c2r_client *c, const char *path)
{
    if (!c || !path || c->trace)
        return P2C2R_EINVAL;
    return trace_open(&c->trace, path, now_us());
}

int p2c2r_client_trace_stop(p2c2r_client *c)
{
    if (!c)
        return P2C2R_EINVAL;
    if (!c->trace)
        return 0;
    uint64_t now = now_us();
    for (size_t i = 0; i < c->nbuckets; i++) {
        for (struct entry *e = c->buckets[i]; e; e = e->hnext) {
            if (e->traced && !e->done) {
                struct trace_task tt = {
                    .ticket = e->ticket,
                    .user = e->res.user,
                    .type = e->kind == ENTRY_BLOB ? "blob"
                            : e->ctype_ix >= 0     ? c->types[e->ctype_ix].name
                                                  : "task",
                    .submit_us = e->submit_us,
                    .end_us = now,
                    .how = TRACE_UNFINISHED,
                };
                trace_task(c->trace, &tt);
            }
            e->traced = 0;
        }
    }
    int rc = trace_close(c->trace);
    c->trace = NULL;
    return rc;
}

/* Sends STATS_REQ (with the page offset, limit when page is nonzero) and
 * waits for its answer. */
static int stats_request(p2c2r_client *c, int page, uint32_t offset, uint32_t limit, int timeout_ms, char **json)
{
    if (!c || !json)
        return P2C2R_EINVAL;
    if (c->err)
        return c->err;
    if (c->state != S_READY)
        return P2C2R_EAGAIN;
    uint32_t body = page ? 8 : 0;
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + body);
    if (!b)
        return P2C2R_ENOMEM;
    c->stats_id = ++c->next_ctl | STATS_REQ_BIT;
    c->stats_done = 0;
    free(c->stats_json);
    c->stats_json = NULL;
    proto_put_hdr(b, MSG_STATS_REQ, 0, c->stats_id, body);
    if (page) {
        wr32(b + PROTO_HDR_LEN, offset);
        wr32(b + PROTO_HDR_LEN + 4, limit);
    }
    buf_commit(&c->out, PROTO_HDR_LEN + body);
    uint64_t deadline = client_deadline_after(timeout_ms);
    while (!c->stats_done && !c->err) {
        if (timeout_ms >= 0 && now_us() >= deadline)
            return P2C2R_ETIMEDOUT;
        client_wait_io(c, deadline);
    }
    if (!c->stats_json)
        return c->err ? c->err : P2C2R_ENOMEM;
    *json = c->stats_json;
    c->stats_json = NULL;
    return 0;
}

int p2c2r_client_stats(p2c2r_client *c, int timeout_ms, char **json)
{
    return stats_request(c, 0, 0, 0, timeout_ms, json);
}

int p2c2r_client_stats_page(p2c2r_client *c, uint32_t offset, uint32_t limit, int timeout_ms, char **json)
{
    return stats_request(c, 1, offset, limit, timeout_ms, json);
}

void p2c2r_stats_free(char *json) { free(json); }

const char *p2c2r_client_last_error(const p2c2r_client *c) { return c ? c->last_error : ""; }

/* Writes a BLOB_PUT of id into b (PROTO_HDR_LEN + len reserved in c->out)
 * and commits it. */
static void blob_put_commit(p2c2r_client *c, uint8_t *b, uint64_t id, const void *data, size_t len)
{
    proto_put_hdr(b, MSG_BLOB_PUT, 0, id, (uint32_t)len);
    if (len)
        memcpy(b + PROTO_HDR_LEN, data, len);
    buf_commit(&c->out, PROTO_HDR_LEN + len);
    local_blob_keep(c, data, len); /* for the local fallback, when on */
}

int p2c2r_client_put_blob(p2c2r_client *c, const void *data, size_t len, int timeout_ms,
                          uint8_t hash[32])
{
    if (!c || !hash || (len && !data))
        return P2C2R_EINVAL;
    if (c->err)
        return c->err;
    if (c->state != S_READY)
        return P2C2R_EAGAIN;
    if (len > c->max_body)
        return P2C2R_ETOOBIG;
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + len);
    if (!b)
        return P2C2R_ENOMEM;
    c->blob_id = ++c->next_ctl | STATS_REQ_BIT;
    c->blob_status = 1;
    blob_put_commit(c, b, c->blob_id, data, len);
    uint64_t deadline = client_deadline_after(timeout_ms);
    while (c->blob_status == 1 && !c->err) {
        if (timeout_ms >= 0 && now_us() >= deadline)
            return P2C2R_ETIMEDOUT;
        client_wait_io(c, deadline);
    }
    if (c->err)
        return c->err;
    if (c->blob_status < 0)
        return c->blob_status;
    memcpy(hash, c->blob_hash, PROTO_HASH_LEN);
    return 0;
}

int p2c2r_client_put_blob_start(p2c2r_client *c, const void *data, size_t len, uint64_t user,
                                p2c2r_ticket *out)
{
    if (!c || !out || (len && !data))
        return P2C2R_EINVAL;
    if (c->state == S_FAILED)
        return c->err;
    if (c->state != S_READY)
        return P2C2R_EAGAIN;
    if (len > c->max_body)
        return P2C2R_ETOOBIG;
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + len);
    if (!b)
        return P2C2R_EAGAIN;
    uint64_t ticket = c->next_ticket + 1;
    struct entry *e = ticket_new(c, ticket);
    if (!e)
        return P2C2R_ENOMEM;
    c->next_ticket = ticket;
    e->kind = ENTRY_BLOB;
    e->ctype_ix = -1;
    e->submit_us = now_us();
    e->traced = c->trace != NULL;
    e->res.user = user;
    c->nblob_open++;
    /* The ticket is the request id: BLOB_OK and REJECTED name it. */
    blob_put_commit(c, b, ticket, data, len);
    out->id = ticket;
    if (buf_used(&c->out) >= 256u * 1024)
        client_write(c);
    return 0;
}

void p2c2r_blob_hex(const uint8_t hash[32], char out[65])
{
    hex_encode(hash, 32, out);
}
