/* submit.c - libp2c2r: submitting tasks.  A task is read from the
 * caller's struct through the sized-struct layer (sized.c), checked, and
 * written as a SUBMIT (or entries of a SUBMIT_BATCH) into the output buffer,
 * which process, poll or the blocking calls send; its ticket enters the
 * table at once, so every submitted task gets exactly one result. */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "client/local.h"
#include "common/util.h"

static int task_has_reqs(const struct p2c2r_task *t)
{
    return t->need_gpu || t->min_cores || t->min_mem_bytes;
}

static int task_check(const p2c2r_client *c, const struct p2c2r_task *t, size_t *size)
{
    if (!t->type)
        return P2C2R_EINVAL;
    size_t tl = strlen(t->type);
    if (tl == 0 || tl > PROTO_MAX_TYPE_NAME || t->params_len > PROTO_MAX_PARAMS ||
        (t->params_len && !t->params) || (t->input_len && !t->input) ||
        t->nblobs > PROTO_MAX_BLOBS || (t->nblobs && !t->blobs) || (t->flags & ~TASK_FLAGS_KNOWN))
        return P2C2R_EINVAL;
    size_t n = proto_task_size_ext(tl, t->params_len, t->nblobs, task_has_reqs(t), t->input_len);
    /* Before any HELLO_OK (a task for the local fallback), the default. */
    size_t max_body = c->max_body ? c->max_body : PROTO_MAX_BODY_DEFAULT;
    if (t->input_len > UINT32_MAX || n + PROTO_BATCH_ENTRY_PREFIX + 4 > max_body)
        return P2C2R_ETOOBIG;
    *size = n;
    return 0;
}

/* Reads element k of the caller's task array (stride size, checked by
 * sized_ok) into *t, checks it and sizes its body. */
int task_load(const p2c2r_client *c, const struct p2c2r_task *tasks, uint32_t size, size_t k,
                     struct p2c2r_task *t, size_t *body)
{
    const uint8_t *src = (const uint8_t *)tasks + k * size;
    if (sized_size(src) != size || sized_in(t, src, size, &task_layout))
        return P2C2R_EINVAL;
    return task_check(c, t, body);
}

/* Writes t's task body; task_check has vetted t and sized the room. */
void put_task(uint8_t *b, const struct p2c2r_task *t)
{
    struct proto_reqs reqs = {t->need_gpu ? 1 : 0, t->min_cores, t->min_mem_bytes};
    uint8_t flags = (t->flags & P2C2R_TASK_NOCACHE) ? PROTO_TASK_F_NOCACHE : 0;
    size_t o = proto_put_task_head_ext(b, t->type, strlen(t->type), t->min_version, t->deadline_ms,
                                       t->priority, flags, t->params, t->params_len,
                                       (const uint8_t *)t->blobs, t->nblobs,
                                       task_has_reqs(t) ? &reqs : NULL, (uint32_t)t->input_len);
    if (t->input_len)
        memcpy(b + o, t->input, t->input_len);
}

/* Sets up e, just made for task t (checked), submitted at now. */
static void entry_task(p2c2r_client *c, struct entry *e, const struct p2c2r_task *t, uint64_t now)
{
    int ix = ctype_ix(c, t->type);
    e->kind = ENTRY_TASK;
    e->submit_us = now;
    e->deadline_ms = t->deadline_ms;
    e->ctype_ix = (int16_t)ix;
    e->epoch = ix >= 0 ? fadv_submit(&c->types[ix].adv) : 0;
    fadv_submit(&c->all);
    e->traced = c->trace != NULL;
    e->res.user = t->user;
}

/* Sets up e for task t (checked, its body sz bytes), submitted at now;
 * with the local fallback on, keeps what running it here needs.  Returns 0
 * or ENOMEM (e is then the caller's to drop). */
static int entry_setup(p2c2r_client *c, struct entry *e, const struct p2c2r_task *t, size_t sz, uint64_t now)
{
    entry_task(c, e, t, now);
    return local_capable(c, t) ? local_keep(c, e, t, sz, put_task) : 0;
}

/* Whether submits go to the local fallback: it is on and the coordinator
 * is unreachable (the connection failed, and no new one is READY yet). */
static int local_only(const p2c2r_client *c)
{
    return c->local_us && (c->state == S_BACKOFF || c->state == S_FAILED ||
                           (c->state != S_READY && c->attempts > 0));
}

/* Submits while the coordinator is unreachable: every task must be one the
 * local fallback may run (else the call fails as without it: the failure,
 * or EAGAIN); each waits to run here and gets one result. */
static int submit_local(p2c2r_client *c, const struct p2c2r_task *tasks, uint32_t tsize, size_t n,
                        p2c2r_ticket *tickets)
{
    int unfit = c->state == S_FAILED ? c->err : P2C2R_EAGAIN;
    struct p2c2r_task t;
    for (size_t k = 0; k < n; k++) {
        size_t sz;
        int rc = task_load(c, tasks, tsize, k, &t, &sz);
        if (rc)
            return rc;
        if (!local_capable(c, &t))
            return unfit;
    }
    uint64_t now = now_us(), first = c->next_ticket + 1;
    int err = c->err ? c->err : P2C2R_ECLOSED;
    for (size_t k = 0; k < n; k++) {
        size_t sz;
        task_load(c, tasks, tsize, k, &t, &sz);
        struct entry *e = ticket_new(c, first + k);
        if (!e || entry_setup(c, e, &t, sz, now) != 0) {
            if (e)
                ticket_drop(c, e);
            for (size_t r = 0; r < k; r++)
                ticket_drop(c, *ticket_slot(c, first + r));
            return P2C2R_ENOMEM;
        }
    }
    for (size_t k = 0; k < n; k++) {
        local_enqueue(c, *ticket_slot(c, first + k), err);
        tickets[k].id = first + k;
    }
    c->next_ticket = first + n - 1;
    return 0;
}

int p2c2r_client_submit(p2c2r_client *c, const struct p2c2r_task *t, p2c2r_ticket *out)
{
    return p2c2r_client_submit_batch(c, t, 1, out);
}

/* The caller's tasks are read through task_load at their own stride, once to
 * check them and size the frames, once per frame to pack it, once to write
 * each: a copy of at most sizeof(struct p2c2r_task) bytes each time, which
 * keeps the call free of allocation whatever n is. */
int p2c2r_client_submit_batch(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n,
                              p2c2r_ticket *tickets)
{
    if (!c || !tasks || !tickets || n == 0)
        return P2C2R_EINVAL;
    uint32_t tsize = sized_size(tasks);
    if (!sized_ok(tsize, &task_layout))
        return P2C2R_EINVAL;
    if (local_only(c)) {
        /* The coordinator's cap, or its default before any HELLO_OK. */
        uint32_t cap = c->max_inflight ? c->max_inflight : 8192;
        if (n > cap || c->ninflight - c->nblob_open + n > cap)
            return P2C2R_EAGAIN;
        return submit_local(c, tasks, tsize, n, tickets);
    }
    if (c->state == S_FAILED)
        return c->err;
    if (c->state != S_READY)
        return P2C2R_EAGAIN;
    size_t ntasks = c->ninflight - c->nblob_open;
    if (n > c->max_inflight || ntasks + n > c->max_inflight)
        return P2C2R_EAGAIN;
    struct p2c2r_task t;
    uint64_t now = now_us();
    if (n == 1) {
        /* The frame loop's common case: one task, read and checked once. */
        size_t sz;
        int rc = task_load(c, tasks, tsize, 0, &t, &sz);
        if (rc)
            return rc;
        uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + sz);
        if (!b)
            return P2C2R_EAGAIN;
        uint64_t ticket = c->next_ticket + 1;
        struct entry *e = ticket_new(c, ticket);
        if (!e)
            return P2C2R_ENOMEM;
        if (entry_setup(c, e, &t, sz, now) != 0) {
            ticket_drop(c, e);
            return P2C2R_ENOMEM;
        }
        c->next_ticket = ticket;
        proto_put_hdr(b, MSG_SUBMIT, 0, ticket, (uint32_t)sz);
        put_task(b + PROTO_HDR_LEN, &t);
        buf_commit(&c->out, PROTO_HDR_LEN + sz);
        tickets[0].id = ticket;
        if (buf_used(&c->out) >= 256u * 1024)
            client_write(c);
        return 0;
    }
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t sz;
        int rc = task_load(c, tasks, tsize, i, &t, &sz);
        if (rc)
            return rc;
        total += PROTO_HDR_LEN + PROTO_BATCH_ENTRY_PREFIX + 4 + sz;
    }
    if (!buf_reserve(&c->out, total))
        return P2C2R_EAGAIN;
    size_t mark = c->out.len;
    uint64_t first = c->next_ticket + 1;
    size_t i = 0;
    while (i < n) {
        /* Pack as many tasks as fit in one frame; a lone task goes as SUBMIT. */
        size_t body = 4, j = i;
        while (j < n && j - i < PROTO_MAX_BATCH) {
            size_t sz;
            task_load(c, tasks, tsize, j, &t, &sz);
            if (body + PROTO_BATCH_ENTRY_PREFIX + sz > c->max_body)
                break;
            body += PROTO_BATCH_ENTRY_PREFIX + sz;
            j++;
        }
        if (j - i == 1) {
            size_t sz;
            task_load(c, tasks, tsize, i, &t, &sz);
            uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + sz);
            proto_put_hdr(b, MSG_SUBMIT, 0, ++c->next_ticket, (uint32_t)sz);
            put_task(b + PROTO_HDR_LEN, &t);
            buf_commit(&c->out, PROTO_HDR_LEN + sz);
        } else {
            uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + body);
            proto_put_hdr(b, MSG_SUBMIT_BATCH, 0, ++c->next_ctl | STATS_REQ_BIT, (uint32_t)body);
            wr32(b + PROTO_HDR_LEN, (uint32_t)(j - i));
            size_t o = PROTO_HDR_LEN + 4;
            for (size_t k = i; k < j; k++) {
                size_t sz;
                task_load(c, tasks, tsize, k, &t, &sz);
                wr64(b + o, ++c->next_ticket);
                wr32(b + o + 8, (uint32_t)sz);
                put_task(b + o + PROTO_BATCH_ENTRY_PREFIX, &t);
                o += PROTO_BATCH_ENTRY_PREFIX + sz;
            }
            buf_commit(&c->out, o);
        }
        i = j;
    }
    for (size_t k = 0; k < n; k++) {
        if (!ticket_new(c, first + k)) {
            /* Roll back: nothing of this call is sent. */
            for (size_t r = 0; r < k; r++)
                ticket_drop(c, *ticket_slot(c, first + r));
            c->out.len = mark;
            c->next_ticket = first - 1;
            return P2C2R_ENOMEM;
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t sz;
        task_load(c, tasks, tsize, k, &t, &sz);
        if (entry_setup(c, *ticket_slot(c, first + k), &t, sz, now) != 0) {
            for (size_t r = 0; r < n; r++)
                ticket_drop(c, *ticket_slot(c, first + r));
            c->out.len = mark;
            c->next_ticket = first - 1;
            return P2C2R_ENOMEM;
        }
        tickets[k].id = first + k;
    }
    /* Keep the kernel busy when a lot is queued, without a syscall per task. */
    if (buf_used(&c->out) >= 256u * 1024)
        client_write(c);
    return 0;
}
