/* durable.c - libp2c2r: durable jobs (p2c2r_job_*).  Each call is one
 * control request (JOB_SUBMIT, JOB_REQ, JOB_LIST) answered by one frame
 * with the request's id; the client keeps at most one in flight (the
 * calls block), and an answer that comes after its call gave up is
 * dropped by id.  Live tasks' results that arrive meanwhile are handled as
 * always (they wait in the ticket table). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "common/util.h"

static const size_t job_info_ends[] = {P2C2R_JOB_INFO_SIZE_MIN};
static const struct layout job_info_layout = {sizeof(struct p2c2r_job_info), job_info_ends, 1};

int ctl_on_reply(p2c2r_client *c, const struct frame_hdr *h, const uint8_t *body, int rejected_code,
                 const struct bytes_view *text)
{
    if (h->req_id != c->ctl_id || c->ctl_done || c->ctl_id == 0)
        return 0;
    c->ctl_done = 1;
    c->ctl_type = h->type;
    if (rejected_code) {
        c->ctl_status = rejected_code;
        snprintf(c->last_error, sizeof(c->last_error), "%.*s", (int)text->len, (const char *)text->p);
        return 1;
    }
    c->ctl_status = 0;
    free(c->ctl_body);
    c->ctl_body = malloc(h->body_len ? h->body_len : 1);
    if (!c->ctl_body) {
        c->ctl_status = P2C2R_ENOMEM;
        return 1;
    }
    memcpy(c->ctl_body, body, h->body_len);
    c->ctl_len = h->body_len;
    return 1;
}

/* Reserves a request frame of body_len bytes with a fresh control id. */
static uint8_t *ctl_begin(p2c2r_client *c, uint8_t type, size_t body_len)
{
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + body_len);
    if (!b)
        return NULL;
    c->ctl_id = ++c->next_ctl | STATS_REQ_BIT;
    c->ctl_done = 0;
    c->ctl_status = 0;
    free(c->ctl_body);
    c->ctl_body = NULL;
    c->ctl_len = 0;
    proto_put_hdr(b, type, 0, c->ctl_id, (uint32_t)body_len);
    return b + PROTO_HDR_LEN;
}

/* Sends the reserved request and waits for its answer of type want.
 * Returns 0 with c->ctl_body holding it, or an error. */
static int ctl_wait(p2c2r_client *c, size_t body_len, uint8_t want, int timeout_ms)
{
    buf_commit(&c->out, PROTO_HDR_LEN + body_len);
    uint64_t deadline = client_deadline_after(timeout_ms);
    while (!c->ctl_done && !c->err) {
        if (timeout_ms >= 0 && now_us() >= deadline) {
            c->ctl_id = 0; /* the answer, if it comes, is dropped */
            return P2C2R_ETIMEDOUT;
        }
        client_wait_io(c, deadline);
    }
    c->ctl_id = 0;
    if (c->err)
        return c->err;
    if (c->ctl_status)
        return c->ctl_status;
    return c->ctl_type == want ? 0 : P2C2R_EPROTO;
}

static int ready(const p2c2r_client *c)
{
    if (c->err)
        return c->err;
    return c->state == S_READY ? 0 : P2C2R_EAGAIN;
}

int p2c2r_job_submit(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n, const uint64_t *keys,
                     int timeout_ms, uint64_t *ids, int *codes)
{
    if (!c || !tasks || !ids || !codes || n == 0 || n > PROTO_MAX_BATCH)
        return P2C2R_EINVAL;
    int rc = ready(c);
    if (rc)
        return rc;
    uint32_t size = sized_size(tasks);
    if (!sized_ok(size, &task_layout))
        return P2C2R_EINVAL;
    size_t total = 4;
    for (size_t k = 0; k < n; k++) {
        struct p2c2r_task t;
        size_t body;
        if ((rc = task_load(c, tasks, size, k, &t, &body)) != 0)
            return rc;
        total += PROTO_BATCH_ENTRY_PREFIX + body;
    }
    if (total > c->max_body)
        return P2C2R_ETOOBIG;
    uint8_t *b = ctl_begin(c, MSG_JOB_SUBMIT, total);
    if (!b)
        return P2C2R_ENOMEM;
    wr32(b, (uint32_t)n);
    size_t o = 4;
    for (size_t k = 0; k < n; k++) {
        struct p2c2r_task t;
        size_t body;
        task_load(c, tasks, size, k, &t, &body);
        wr64(b + o, keys ? keys[k] : 0);
        wr32(b + o + 8, (uint32_t)body);
        put_task(b + o + PROTO_BATCH_ENTRY_PREFIX, &t);
        o += PROTO_BATCH_ENTRY_PREFIX + body;
    }
    if ((rc = ctl_wait(c, total, MSG_JOB_ACK, timeout_ms)) != 0)
        return rc;
    const uint8_t *a = c->ctl_body;
    if (c->ctl_len != 4 + n * PROTO_JOB_ACK_ENTRY || rd32(a) != n)
        return P2C2R_EPROTO;
    for (size_t k = 0; k < n; k++) {
        const uint8_t *e = a + 4 + k * PROTO_JOB_ACK_ENTRY;
        uint16_t code = rd16(e + 16);
        ids[k] = code ? 0 : rd64(e + 8);
        codes[k] = code ? -(int)code : 0;
    }
    return 0;
}

/* Writes a record to the caller's info struct at dst (size checked). */
static void info_out(void *dst, uint32_t size, const struct msg_job_info *m)
{
    struct p2c2r_job_info i;
    p2c2r_job_info_init(&i);
    i.id = m->id;
    i.key = m->key;
    i.state = m->state;
    i.status = m->status ? -(int)m->status : 0;
    i.attempts = m->attempts;
    i.exec_us = m->exec_us;
    i.peer_id = m->peer_id;
    i.flags = m->flags; /* the wire's DELIVER flags are P2C2R_RESULT_*'s values */
    i.submit_ms = m->submit_ms;
    i.done_ms = m->done_ms;
    i.output_len = m->out_len;
    memcpy(i.type, m->type.p, m->type.len);
    sized_out(dst, size, &i, &job_info_layout);
}

/* One JOB_REQ; on 0 the JOB_INFO record is parsed into *m (its output, for
 * a GET, follows at c->ctl_body + *used). */
static int job_req(p2c2r_client *c, uint8_t op, uint8_t flags, uint64_t id, int timeout_ms,
                   struct msg_job_info *m, size_t *used)
{
    int rc = ready(c);
    if (rc)
        return rc;
    uint8_t *b = ctl_begin(c, MSG_JOB_REQ, PROTO_JOB_REQ_LEN);
    if (!b)
        return P2C2R_ENOMEM;
    b[0] = op;
    b[1] = flags;
    wr64(b + 2, id);
    if ((rc = ctl_wait(c, PROTO_JOB_REQ_LEN, MSG_JOB_INFO, timeout_ms)) != 0)
        return rc;
    if (proto_parse_job_info(c->ctl_body, c->ctl_len, m, used) != 0 || m->id != id)
        return P2C2R_EPROTO;
    return 0;
}

static int info_req(p2c2r_client *c, uint8_t op, uint64_t id, int timeout_ms, struct p2c2r_job_info *out)
{
    if (!c || (out && !sized_ok(out->size, &job_info_layout)))
        return P2C2R_EINVAL;
    struct msg_job_info m;
    size_t used;
    int rc = job_req(c, op, 0, id, timeout_ms, &m, &used);
    if (rc == 0 && out)
        info_out(out, out->size, &m);
    return rc;
}

int p2c2r_job_status(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out)
{
    if (!out)
        return P2C2R_EINVAL;
    return info_req(c, PROTO_JOB_STATUS, id, timeout_ms, out);
}

int p2c2r_job_cancel(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out)
{
    return info_req(c, PROTO_JOB_CANCEL, id, timeout_ms, out);
}

int p2c2r_job_wait(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out)
{
    if (!c || !out || !sized_ok(out->size, &job_info_layout))
        return P2C2R_EINVAL;
    uint64_t deadline = client_deadline_after(timeout_ms);
    uint32_t pause_ms = 10;
    for (;;) {
        int left = timeout_ms;
        if (timeout_ms >= 0) {
            uint64_t now = now_us();
            if (now >= deadline)
                return P2C2R_ETIMEDOUT;
            left = (int)((deadline - now + 999) / 1000);
        }
        struct msg_job_info m;
        size_t used;
        int rc = job_req(c, PROTO_JOB_STATUS, 0, id, left, &m, &used);
        if (rc)
            return rc;
        if (m.state == P2C2R_JOB_DONE) {
            info_out(out, out->size, &m);
            return 0;
        }
        /* Sleep on the socket, so that live results keep being read. */
        uint64_t until = now_us() + (uint64_t)pause_ms * 1000;
        if (timeout_ms >= 0 && until > deadline)
            until = deadline;
        while (!c->err && now_us() < until)
            client_wait_io(c, until);
        if (c->err)
            return c->err;
        if (pause_ms < 250)
            pause_ms = pause_ms * 3 / 2 + 1;
    }
}

int p2c2r_job_get(p2c2r_client *c, uint64_t id, uint32_t flags, int timeout_ms, struct p2c2r_result *out)
{
    if (!c || !out || !sized_ok(out->size, &result_layout) || (flags & ~P2C2R_JOB_RELEASE))
        return P2C2R_EINVAL;
    struct msg_job_info m;
    size_t used;
    int rc = job_req(c, PROTO_JOB_GET, (flags & P2C2R_JOB_RELEASE) ? PROTO_JOB_F_RELEASE : 0, id, timeout_ms,
                     &m, &used);
    if (rc)
        return rc;
    if (m.state != P2C2R_JOB_DONE || c->ctl_len - used != m.out_len)
        return P2C2R_EPROTO;
    /* The reply's body becomes the output: moved down over the record,
     * NUL-terminated as every result's output is. */
    uint8_t *buf = c->ctl_body;
    c->ctl_body = NULL;
    memmove(buf, buf + used, m.out_len);
    uint8_t *o = realloc(buf, m.out_len + 1);
    if (!o) {
        free(buf);
        return P2C2R_ENOMEM;
    }
    o[m.out_len] = '\0';
    struct p2c2r_result r;
    p2c2r_result_init(&r);
    r.ticket.id = id;
    r.status = m.status ? -(int)m.status : 0;
    r.output = o;
    r.output_len = m.out_len;
    r.exec_us = m.exec_us;
    r.peer_id = m.peer_id;
    r.attempts = m.attempts;
    r.flags = m.flags;
    sized_out(out, out->size, &r, &result_layout);
    return 0;
}

int p2c2r_job_list(p2c2r_client *c, uint64_t after, struct p2c2r_job_info *out, size_t max, size_t *n,
                   uint64_t *next, int timeout_ms)
{
    if (!c || !n || !next || max == 0 || !out || !sized_ok(out->size, &job_info_layout))
        return P2C2R_EINVAL;
    int rc = ready(c);
    if (rc)
        return rc;
    uint32_t stride = out->size;
    uint8_t *b = ctl_begin(c, MSG_JOB_LIST, PROTO_JOB_LIST_REQ_LEN);
    if (!b)
        return P2C2R_ENOMEM;
    wr64(b, after);
    wr32(b + 8, (uint32_t)(max < 1000 ? max : 1000));
    if ((rc = ctl_wait(c, PROTO_JOB_LIST_REQ_LEN, MSG_JOB_LIST_OK, timeout_ms)) != 0)
        return rc;
    if (c->ctl_len < PROTO_JOB_LIST_HEAD)
        return P2C2R_EPROTO;
    uint32_t count = rd32(c->ctl_body);
    uint64_t nx = rd64(c->ctl_body + 4);
    size_t off = PROTO_JOB_LIST_HEAD, k = 0;
    for (uint32_t i = 0; i < count; i++) {
        struct msg_job_info m;
        size_t used;
        if (proto_parse_job_info(c->ctl_body + off, c->ctl_len - off, &m, &used) != 0)
            return P2C2R_EPROTO;
        off += used;
        if (k == max)
            return P2C2R_EPROTO; /* more than asked for */
        info_out((uint8_t *)out + k * stride, stride, &m);
        k++;
    }
    if (off != c->ctl_len)
        return P2C2R_EPROTO;
    *n = k;
    *next = nx;
    return 0;
}
