/* jobs_msg.c - the JOB_* messages of renters (docs/PROTOCOL.md 5.9):
 * JOB_SUBMIT with the tier checks of SUBMIT, JOB_REQ (status, get, cancel,
 * release) and JOB_LIST.  The records and the group commit that answers a
 * JOB_SUBMIT are jobs.c's (jobs_int.h). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "coord/jobs_int.h"
#include "coord/ledger.h"

/* ---- messages ---- */

static int reject(struct conn *c, uint64_t req_id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int reject(struct conn *c, uint64_t req_id, int code, const char *fmt, ...)
{
    char text[600];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(text) ? (size_t)n : sizeof(text) - 1;
    uint8_t *b = conn_frame(c, MSG_REJECTED, 0, req_id, (uint32_t)proto_error_size(len));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    proto_put_error(b, (uint16_t)-code, text, len);
    return 0;
}

static const char no_state[] =
    "durable jobs need a coordinator that keeps a database: start p2c2rd with --state DIR";

/* A durable job's deadline (ms from its submission): its own, or
 * --job-deadline cut to the longest c's tier allows. */
static uint64_t job_deadline_ms(const struct conn *c, const struct msg_task *m)
{
    if (m->deadline_ms)
        return m->deadline_ms;
    uint64_t d = (uint64_t)c->co->cfg.job_deadline_s * 1000;
    uint32_t max = account_max_deadline(c);
    return max && d > max ? max : d;
}

/* The tier checks of SUBMIT (account_check_job) on every new entry of a
 * JOB_SUBMIT: 0, or the code of the first refusal with its reason, which
 * names the entry and the limit, in why.  A refused batch stores nothing
 * and spends none of the account's rate. */
static int tier_checks(struct conn *c, struct acct *a, struct proto_batch_iter it, char *why, size_t cap)
{
    struct coord *co = c->co;
    uint64_t key;
    const uint8_t *tb;
    size_t tl;
    uint32_t passed = 0, pending = a->pending;
    if (!c->acct)
        return 0;
    for (uint32_t i = 0; proto_batch_next(&it, &key, &tb, &tl) == 1; i++) {
        struct msg_task m;
        (void)proto_parse_task(tb, tl, &m); /* checked with the whole batch */
        if (key && jobs_find_key(co->jobs, a->name, key))
            continue; /* answered with the job it names */
        int ti = type_find(co, m.type.p, m.type.len);
        uint64_t dl = job_deadline_ms(c, &m);
        char r[400];
        int code = account_check_job(co, c, &m, tl, dl > UINT32_MAX ? UINT32_MAX : (uint32_t)dl,
                                     ti >= 0 ? co->types[ti].verify : -1, pending, r, sizeof(r));
        if (code) {
            account_rate_refund(c, passed);
            snprintf(why, cap, "job %u of the batch: %s", i, r);
            return code;
        }
        passed++;
        pending++;
    }
    return 0;
}

/* One entry of a JOB_SUBMIT: the job it names (new or known), or a code. */
static void submit_entry(struct conn *c, struct acct *a, uint64_t key, const uint8_t *tb, size_t tl,
                         struct ack_ent *e)
{
    struct coord *co = c->co;
    struct jobs *js = co->jobs;
    struct msg_task m;
    e->key = key;
    co->n.jobs_submitted++;
    (void)proto_parse_task(tb, tl, &m); /* checked with the whole batch */
    struct job *known = key ? jobs_find_key(js, a->name, key) : NULL;
    if (known) {
        e->j = known;
        e->flags = PROTO_JOB_ACK_F_KNOWN;
        return;
    }
    int code = 0;
    int ti = type_find(co, m.type.p, m.type.len);
    if (ti < 0)
        code = P2C2R_EUNSUPPORTED;
    else if (!jobs_blobs_present(co, &m))
        code = P2C2R_ENOBLOB;
    else if (a->pending >= co->cfg.job_max_pending || co->queued_total >= co->cfg.queue_max ||
             co->queued_bytes + tl > co->cfg.queue_max_bytes)
        code = P2C2R_EQUEUEFULL;
    if (code) {
        e->code = (uint16_t)-code;
        co->n.jobs_refused++;
        return;
    }
    struct job *j = jobs_job_new(js, js->next_id, a, key);
    memcpy(j->type, m.type.p, m.type.len);
    j->type[m.type.len] = '\0';
    j->submit_ms = wall_ms();
    uint64_t dl_ms = job_deadline_ms(c, &m);
    j->deadline_ms = j->submit_ms + dl_ms;
    j->body = xmalloc(tl);
    memcpy(j->body, tb, tl);
    j->body_len = (uint32_t)tl;
    code = jobs_job_start(co, j, &m, tb, tl, dl_ms * 1000);
    if (code) {
        e->code = (uint16_t)-code;
        co->n.jobs_refused++;
        jobs_job_free(js, j);
        return;
    }
    a->pending++;
    js->npending++;
    account_on_accepted(c);
    jobs_mark(js, j, JP_NEW);
    e->j = j;
}

int jobs_on_submit(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct jobs *js = co->jobs;
    struct proto_batch_iter it;
    uint32_t count;
    if (proto_batch_check(body, h->body_len, &it, &count) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed JOB_SUBMIT (expected SUBMIT_BATCH's body)");
        return -1;
    }
    if (!js)
        return reject(c, h->req_id, P2C2R_EUNSUPPORTED, "%s", no_state);
    struct acct *a = jobs_acct_intern(js, jobs_owner(c));
    if (!a)
        return reject(c, h->req_id, P2C2R_ELIMIT, "too many accounts with durable jobs (%u)", js->acct_cap);
    char why[500];
    int code = tier_checks(c, a, it, why, sizeof(why));
    if (code) {
        co->n.jobs_submitted += count;
        co->n.jobs_refused += count;
        return reject(c, h->req_id, code, "%s", why);
    }
    struct ack *ack = xcalloc(1, sizeof(*ack) + (size_t)count * sizeof(ack->e[0]));
    ack->c = c;
    ack->req_id = h->req_id;
    ack->n = count;
    uint64_t key;
    const uint8_t *tb;
    size_t tl;
    for (uint32_t i = 0; proto_batch_next(&it, &key, &tb, &tl) == 1; i++)
        submit_entry(c, a, key, tb, tl, &ack->e[i]);
    list_push_back(&js->acks, &ack->node);
    return 0;
}

static void info_of(const struct job *j, struct msg_job_info *m)
{
    memset(m, 0, sizeof(*m));
    m->id = j->id;
    m->key = j->key;
    m->submit_ms = j->submit_ms;
    m->state = (uint8_t)jobs_job_state(j);
    if (m->state == JOB_DONE) {
        m->done_ms = j->done_ms;
        m->exec_us = j->exec_us;
        m->peer_id = j->peer_id;
        m->flags = j->flags;
        m->out_len = j->out_len;
        m->status = j->status;
        m->attempts = j->attempts;
    } else if (j->t) {
        m->attempts = j->t->attempts;
    }
    m->type.p = (const uint8_t *)j->type;
    m->type.len = strlen(j->type);
}

static int send_info(struct conn *c, uint64_t req_id, const struct job *j, const void *out, size_t len)
{
    struct msg_job_info m;
    info_of(j, &m);
    size_t il = proto_job_info_size(m.type.len);
    uint8_t *b = conn_frame(c, MSG_JOB_INFO, 0, req_id, (uint32_t)(il + len));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit: read your results");
        return -1;
    }
    proto_put_job_info(b, &m);
    if (len)
        memcpy(b + il, out, len);
    return 0;
}

static int send_result(struct conn *c, uint64_t req_id, struct job *j)
{
    struct coord *co = c->co;
    sqlite3_stmt *st = co->jobs->st[JS_RESULT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
    int rc = sqlite3_step(st);
    int r;
    if (rc == SQLITE_ROW) {
        r = send_info(c, req_id, j, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    } else {
        int code = store_fail_note(co->store, rc);
        r = reject(c, req_id, code ? code : P2C2R_EIO, "cannot read job %" PRIu64 "'s result: %s", j->id,
                   store_last_error(co->store));
    }
    sqlite3_reset(st);
    return r;
}

int jobs_on_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct jobs *js = co->jobs;
    if (h->body_len != PROTO_JOB_REQ_LEN) {
        conn_fail(c, P2C2R_EPROTO, "JOB_REQ body must be %u bytes, got %u", PROTO_JOB_REQ_LEN, h->body_len);
        return -1;
    }
    uint8_t op = body[0], flags = body[1];
    uint64_t id = rd64(body + 2);
    if (op < PROTO_JOB_STATUS || op > PROTO_JOB_RELEASE) {
        conn_fail(c, P2C2R_EPROTO, "unknown JOB_REQ operation %u", op);
        return -1;
    }
    if (!js)
        return reject(c, h->req_id, P2C2R_EUNSUPPORTED, "%s", no_state);
    struct job *j = jobs_find(js, id);
    if (!j || strcmp(j->acct->name, jobs_owner(c)) != 0 || ((j->pend | j->sync_bits) & (JP_NEW | JP_DEL)))
        return reject(c, h->req_id, P2C2R_ENOTFOUND,
                      "no job %" PRIu64 " for account '%s' (jobs belong to the HELLO name that submitted "
                      "them; a fetched-and-released job, or one past --job-retention, is gone)",
                      id, jobs_owner(c));
    switch (op) {
    case PROTO_JOB_GET:
        if (j->state != JOB_DONE)
            return reject(c, h->req_id, P2C2R_EAGAIN, "job %" PRIu64 " has no outcome yet (%s): wait for it",
                          id, jobs_job_state(j) == JOB_QUEUED ? "queued" : "running");
        if (send_result(c, h->req_id, j) != 0)
            return -1;
        if (flags & PROTO_JOB_F_RELEASE)
            jobs_mark(js, j, JP_DEL);
        return 0;
    case PROTO_JOB_CANCEL:
        if (j->t) {
            co->n.cancelled++;
            task_end_early(co, j->t, P2C2R_ECANCELLED, "cancelled by renter");
        }
        return send_info(c, h->req_id, j, NULL, 0);
    case PROTO_JOB_RELEASE:
        if (j->state != JOB_DONE)
            return reject(c, h->req_id, P2C2R_ESTATE,
                          "job %" PRIu64 " has no outcome yet: cancel it, then release it", id);
        if (send_info(c, h->req_id, j, NULL, 0) != 0)
            return -1;
        jobs_mark(js, j, JP_DEL);
        return 0;
    default:
        return send_info(c, h->req_id, j, NULL, 0);
    }
}

int jobs_on_list(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct jobs *js = co->jobs;
    if (h->body_len != PROTO_JOB_LIST_REQ_LEN) {
        conn_fail(c, P2C2R_EPROTO, "JOB_LIST body must be %u bytes, got %u", PROTO_JOB_LIST_REQ_LEN,
                  h->body_len);
        return -1;
    }
    if (!js)
        return reject(c, h->req_id, P2C2R_EUNSUPPORTED, "%s", no_state);
    uint64_t after = rd64(body);
    uint32_t max = rd32(body + 8);
    if (max == 0 || max > JOB_LIST_MAX)
        max = JOB_LIST_MAX;
    size_t room = co->cfg.max_body - PROTO_JOB_LIST_HEAD, used = 0;
    uint32_t count = 0;
    uint64_t next = 0, last = 0;
    /* A page starts after the last job of the one before (its id is the
     * cursor), found by id: listing n jobs costs O(n), not O(n^2 / page). */
    struct job *from = after ? jobs_find(js, after) : NULL;
    struct list_node *n, *first = NULL;
    for (n = from ? from->node.next : js->all.next; n != &js->all; n = n->next) {
        struct job *j = list_entry(n, struct job, node);
        if (j->id <= after || strcmp(j->acct->name, jobs_owner(c)) != 0 || ((j->pend | j->sync_bits) & (JP_NEW | JP_DEL)))
            continue;
        size_t sz = proto_job_info_size(strlen(j->type));
        if (count == max || used + sz > room) {
            next = last;
            break;
        }
        if (!first)
            first = n;
        last = j->id;
        used += sz;
        count++;
    }
    uint8_t *b = conn_frame(c, MSG_JOB_LIST_OK, 0, h->req_id, (uint32_t)(PROTO_JOB_LIST_HEAD + used));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    wr32(b, count);
    wr64(b + 4, next);
    b += PROTO_JOB_LIST_HEAD;
    for (n = first; count && n != &js->all; n = n->next) {
        struct job *j = list_entry(n, struct job, node);
        if (j->id <= after || strcmp(j->acct->name, jobs_owner(c)) != 0 || ((j->pend | j->sync_bits) & (JP_NEW | JP_DEL)))
            continue;
        struct msg_job_info m;
        info_of(j, &m);
        b += proto_put_job_info(b, &m);
        count--;
    }
    return 0;
}

