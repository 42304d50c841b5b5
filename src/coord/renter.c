/* renter.c - renters: HELLO (credentials: account.c), SUBMIT / SUBMIT_BATCH (acceptance checks, cache
 * answers, coalescing, admission) and CANCEL. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ident.h"
#include "coord/coord_int.h"
#include "tasks/task_cost.h"

static int send_accepted(struct conn *c, uint64_t req_id, uint32_t count);
static void renter_join_share(struct conn *c, const struct bytes_view *tok);

/* ---- handlers --------------------------------------------------------------- */

int renter_on_hello(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_hello m;
    if (proto_parse_hello(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed HELLO");
        return -1;
    }
    if (m.ver_min > PROTO_VERSION || m.ver_max < PROTO_VERSION) {
        conn_fail(c, P2C2R_EVERSION, "no common protocol version: client speaks %u..%u, server %u",
                  m.ver_min, m.ver_max, PROTO_VERSION);
        return -1;
    }
    if (m.role != ROLE_RENTER && m.role != ROLE_PEER) {
        conn_fail(c, P2C2R_EPROTO, "HELLO role must be 1 (renter) or 2 (peer), got %u", m.role);
        return -1;
    }
    struct account *acct;
    if (account_login(co, c, m.role, &m.token, &acct) != 0)
        return -1;
    if (limits_conn_hello(c) != 0)
        return -1;
    c->role = m.role;
    memcpy(c->name, m.name.p, m.name.len);
    c->name[m.name.len] = '\0';
    c->state = CS_READY;
    if (c->role == ROLE_RENTER) {
        co->nrenters++;
        renter_join_share(c, &m.token);
        limits_renter_ready(c);
    }
    struct msg_hello_ok ok = {PROTO_VERSION, co->cfg.max_body, co->cfg.renter_max_inflight, c->id, 0, {0}};
    if (c->role == ROLE_PEER) {
        /* The challenge the peer signs in PEER_REGISTER: fresh for each
         * connection, so a signature made for one is worth nothing on
         * another (docs/PROTOCOL.md 5.3). */
        ident_nonce(c->nonce);
        memcpy(ok.nonce, c->nonce, PROTO_NONCE_LEN);
        ok.has_nonce = 1;
    }
    uint8_t *b = conn_frame(c, MSG_HELLO_OK, 0, h->req_id, (uint32_t)proto_hello_ok_size(&ok));
    if (!b)
        return -1;
    proto_put_hello_ok(b, &ok);
    char esc[4 * sizeof(c->name)];
    LOG_I("conn_hello", "conn=%" PRIu64 " addr=%s role=%s name=\"%s\" account=%s", c->id, c->addr,
          c->role == ROLE_RENTER ? "renter" : "peer", log_esc(esc, sizeof(esc), c->name, strlen(c->name)),
          acct ? acct->name : "-");
    return 0;
}

/* c's share (docs/ARCHITECTURE.md, "Fair shares"): with tokens, every
 * connection of one token shares one, so opening more connections buys no
 * larger part of the fabric; without, each connection is a share.  The
 * token itself is the key (kept in memory only, as the tokens file is);
 * shares are never named in STATS. */
static void renter_join_share(struct conn *c, const struct bytes_view *tok)
{
    struct coord *co = c->co;
    char key[SHARE_KEY_MAX + 1];
    size_t len;
    double weight = 1.0;
    (void)tok;
    if (c->acct) { /* every connection of an account is one share, weighted by its tier */
        len = account_share_key(c->acct, key, sizeof(key));
        weight = c->acct->tier->t.weight;
    } else {
        len = (size_t)snprintf(key, sizeof(key), "conn:%" PRIu64, c->id);
    }
    c->share = share_get(co, key, len, weight);
}

static int first_missing_blob(struct coord *co, const struct msg_task *m)
{
    for (int i = 0; i < m->nblobs; i++)
        if (!blob_find(co, m->blobs + i * PROTO_HASH_LEN))
            return i;
    return -1;
}

static void reqs_describe(const struct proto_reqs *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s", r->gpu ? "a GPU" : "");
    if (r->min_cores)
        n += snprintf(out + n, cap - (size_t)n, "%s%u cores", n ? ", " : "", r->min_cores);
    if (r->min_mem)
        snprintf(out + n, cap - (size_t)n, "%s%" PRIu64 " MiB of memory", n ? ", " : "",
                 r->min_mem >> 20);
}

/* The task's cost by its executor's estimate (src/tasks/task_cost.h): its
 * type, params, input and the blobs it names (all in the store by now). */
uint64_t task_submit_cost(struct coord *co, const struct msg_task *m)
{
    struct p2c2r_blob bl[PROTO_MAX_BLOBS];
    size_t nb = 0;
    for (int i = 0; i < m->nblobs && nb < PROTO_MAX_BLOBS; i++) {
        const struct blob *b = blob_find(co, m->blobs + i * PROTO_HASH_LEN);
        if (!b)
            continue;
        memcpy(bl[nb].hash, b->hash, sizeof(bl[nb].hash));
        bl[nb].data = b->data;
        bl[nb].len = b->len;
        nb++;
    }
    return tasks_estimate((const char *)m->type.p, m->type.len, (const char *)m->params.p, m->params.len,
                          m->input.p, m->input.len, bl, nb);
}

static int send_rejected(struct conn *c, uint64_t ticket, int code, const char *reason)
{
    size_t rl = strlen(reason);
    uint8_t *b = conn_frame(c, MSG_REJECTED, 0, ticket, (uint32_t)proto_error_size(rl));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    proto_put_error(b, (uint16_t)-code, reason, rl);
    return 0;
}

/* Accepts one task from a renter.  Returns 0 (accepted or rejected) or -1
 * when the connection was cut.  ack: a single SUBMIT that wants ACCEPTED,
 * sent here before a DELIVER from the cache (*accepted tells the caller). */
static int submit_one(struct conn *c, uint64_t ticket, const uint8_t *body, size_t len, int ack,
                      int *accepted, int *acked)
{
    struct coord *co = c->co;
    struct msg_task m;
    co->n.submitted++;
    if (proto_parse_task(body, len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed task in SUBMIT (ticket %" PRIu64 ")", ticket);
        return -1;
    }
    static const struct proto_reqs no_reqs = {0, 0, 0};
    int code = 0, missing;
    char reason[200];
    int ti = type_find(co, m.type.p, m.type.len);
    struct ttype *tt = ti >= 0 ? &co->types[ti] : NULL;
    int kind = (m.flags & PROTO_TASK_F_REQS) ? 1 : 0;
    int prio = m.priority < PRIO_CLASSES ? m.priority : PRIO_BACKGROUND;
    uint32_t dl_ms = m.deadline_ms ? m.deadline_ms
                                   : tt && tt->deadline_ms ? tt->deadline_ms : co->cfg.default_deadline_ms;
    if (co->cfg.max_deadline_ms && dl_ms > co->cfg.max_deadline_ms)
        dl_ms = co->cfg.max_deadline_ms; /* nothing holds memory for longer (--max-deadline) */
    if ((code = account_check_submit(co, c, &m, len, dl_ms, tt ? tt->verify : -1, reason, sizeof(reason))) != 0) {
        /* a tier limit: reason names it */
    } else if (c->inflight >= co->cfg.renter_max_inflight) {
        code = P2C2R_EQUEUEFULL;
        snprintf(reason, sizeof(reason), "renter has %u tasks outstanding (limit %u)", c->inflight,
                 co->cfg.renter_max_inflight);
    } else if (!tt || tt->npeers == 0) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs task type '%.*s'",
                 (int)m.type.len, (const char *)m.type.p);
    } else if (m.min_version && !type_can_meet(tt, ti, m.min_version, &no_reqs)) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs '%.*s' at version %u or later",
                 (int)m.type.len, (const char *)m.type.p, m.min_version);
    } else if (kind && !type_can_meet(tt, ti, m.min_version, &m.reqs)) {
        char need[96];
        reqs_describe(&m.reqs, need, sizeof(need));
        code = P2C2R_EUNSUPPORTED;
        co->n.rejected_capability++;
        snprintf(reason, sizeof(reason), "no connected peer of type '%s' has %s", tt->name, need);
    } else if ((missing = first_missing_blob(co, &m)) >= 0) {
        char hx[65];
        hex_encode(m.blobs + missing * PROTO_HASH_LEN, PROTO_HASH_LEN, hx);
        code = P2C2R_ENOBLOB;
        snprintf(reason, sizeof(reason), "blob %s is not in the coordinator's store: upload it with BLOB_PUT", hx);
    } else if (co->queued_total >= co->cfg.queue_max ||
               co->queued_bytes + len > co->cfg.queue_max_bytes) {
        code = P2C2R_EQUEUEFULL;
        snprintf(reason, sizeof(reason), "coordinator queue full (%u tasks, %" PRIu64 " bytes)",
                 co->queued_total, co->queued_bytes);
    } else if (c->share && share_queue_full(co, c->share, len)) {
        code = P2C2R_EQUEUEFULL;
        co->n.rejected_share_queue++;
        snprintf(reason, sizeof(reason),
                 "this renter's part of the queue is full (%u tasks, %" PRIu64 " bytes queued; a renter "
                 "may fill half of what the others leave free): retry as results come back",
                 c->share->queued, c->share->queued_bytes);
    } else if (limits_task_admit(c, (uint32_t)len, reason, sizeof(reason)) != MEM_OK) {
        code = P2C2R_ELIMIT;
        co->n.mem_refused++;
    }
    if (code) {
        co->n.rejected++;
        if (tt)
            tt->rejected[-code]++;
        return send_rejected(c, ticket, code, reason);
    }

    /* A repeat of deterministic work: answered from the cache, or attached
     * to an identical task in flight. */
    int cacheable = type_cacheable(tt) && !(m.flags & PROTO_TASK_F_NOCACHE) && co->cache;
    struct rcache_key key = {0, 0};
    struct task *leader = NULL;
    if (cacheable) {
        rcache_key(&key, m.type.p, m.type.len, m.params.p, m.params.len, m.blobs, m.nblobs,
                   m.input.p, m.input.len);
        const uint8_t *out;
        size_t olen;
        uint32_t ver;
        if (rcache_get(co->cache, &key, m.min_version, co->now, &out, &olen, &ver)) {
            tt->cache_hits++;
            co->n.accepted++;
            account_on_accepted(c);
            (*accepted)++;
            tt->outcomes[0]++;
            hist_add(&tt->h_total, 0);
            if (ack) {
                *acked = 1;
                if (send_accepted(c, ticket, 1) != 0)
                    return -1;
            }
            /* The cache holds verified results only, except for types
             * whose policy is none. */
            uint32_t fl = PROTO_DELIVER_F_CACHED | (tt->verify != VP_NONE ? PROTO_DELIVER_F_VERIFIED : 0);
            return send_deliver(co, c, ticket, 0, 0, 0, 0, fl, out, olen);
        }
        tt->cache_misses++;
        leader = coalesce_find(co, &key, m.min_version);
    }
    /* Admission by this task's own cost: what it is expected to take at the
     * type's learned time per unit, against its deadline. */
    uint64_t cost = task_submit_cost(co, &m);
    struct admit_est est = {0, 0, 0, 0};
    int admit = 1;
    if (!leader && co->cfg.admission) {
        struct share *sh = c->share ? c->share : co->share_default;
        admission_estimate(tt, sh->sq[ti], sh->weight, kind, prio, cost, &est);
        admit = admission_decide(tt, est.us, (uint64_t)dl_ms * 1000, co->now);
    }
    if (!admit) {
        co->n.rejected++;
        co->n.rejected_deadline++;
        tt->rejected[-P2C2R_EDEADLINE]++;
        snprintf(reason, sizeof(reason),
                 "would miss its deadline: about %" PRIu64 " ms expected for this task (cost %" PRIu64
                 " at %.3g us/unit, %u tasks ahead, %" PRIu64 " slots for '%s'), deadline %u ms",
                 (est.us + 999) / 1000, cost, est.rate, est.ahead, tt->slots_total, tt->name, dl_ms);
        return send_rejected(c, ticket, P2C2R_EDEADLINE, reason);
    }
    if (admit == 2) {
        co->n.admission_probes++;
        LOG_D("admission_probe", "type=%s cost=%" PRIu64 " est_us=%" PRIu64 " deadline_ms=%u", tt->name,
              cost, est.us, dl_ms);
    }
    if (!leader)
        ewma(&tt->cost_ewma, (double)cost);

    struct task *t = task_alloc(co);
    t->renter = c;
    t->share = share_ref(c->share);
    t->ticket = ticket;
    t->tt = (uint8_t)ti;
    t->prio = (uint8_t)prio;
    t->kind = (uint8_t)kind;
    t->flags = m.flags;
    t->min_version = m.min_version;
    t->reqs = m.reqs;
    t->seq = ++co->seq;
    t->cost = cost;
    t->submit_us = co->now;
    t->deadline_us = t->submit_us + (uint64_t)dl_ms * 1000;
    t->urgent_us = t->deadline_us;
    t->cacheable = (uint8_t)cacheable;
    t->key = key;
    t->body_len = (uint32_t)len;
    t->nblobs = m.nblobs;
    for (unsigned i = 0; i < m.nblobs; i++) {
        t->blobs[i] = blob_find(co, m.blobs + i * PROTO_HASH_LEN);
        blob_ref(t->blobs[i]);
    }
    list_push_back(&c->tasks, &t->rnode);
    c->inflight++;
    co->n.accepted++;
    account_on_accepted(c);
    (*accepted)++;
    heap_push(&co->dl, t, 1);
    if (leader) {
        /* Runs once: this task waits for the leader's result. */
        task_set_state(t, TS_FOLLOWER);
        t->leader = leader;
        list_push_back(&leader->followers, &t->qnode);
        co->n.coalesced++;
        tt->coalesced++;
        /* The shared run is as urgent as its most urgent waiter: a realtime
         * task must not wait in the background queue behind its leader, nor
         * behind tasks due later than itself. */
        if (leader->state == TS_QUEUED && (prio < leader->prio || t->deadline_us < leader->urgent_us)) {
            task_dequeue(co, leader);
            if (prio < leader->prio)
                leader->prio = (uint8_t)prio;
            if (t->deadline_us < leader->urgent_us)
                leader->urgent_us = t->deadline_us;
            task_enqueue(co, leader, 1);
        }
        t->body = NULL;
        t->body_len = 0;
        limits_task_charge(co, c, t);
        return 0;
    }
    t->body = len <= TASK_INLINE ? t->small : xmalloc(len);
    memcpy(t->body, body, len);
    limits_task_charge(co, c, t);
    if (cacheable)
        coalesce_add(co, t);
    if (!task_place(co, t))
        task_enqueue(co, t, 0);
    return 0;
}

static int send_accepted(struct conn *c, uint64_t req_id, uint32_t count)
{
    uint8_t *b = conn_frame(c, MSG_ACCEPTED, 0, req_id, 4);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    wr32(b, count);
    return 0;
}

int renter_on_submit(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    int accepted = 0, acked = 0, ack = (h->flags & PROTO_F_WANT_ACK) != 0;
    if (submit_one(c, h->req_id, body, h->body_len, ack, &accepted, &acked) != 0)
        return -1;
    if (ack && accepted && !acked)
        return send_accepted(c, h->req_id, 1);
    return 0;
}

int renter_on_submit_batch(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct proto_batch_iter it;
    uint32_t count;
    if (proto_batch_begin(body, h->body_len, &it, &count) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed SUBMIT_BATCH header");
        return -1;
    }
    /* Validate the framing of every entry first so a malformed batch is
     * refused whole rather than half-accepted. */
    struct proto_batch_iter chk = it;
    uint64_t id;
    const uint8_t *tb;
    size_t tl;
    int r;
    struct msg_task mt;
    while ((r = proto_batch_next(&chk, &id, &tb, &tl)) == 1) {
        if (proto_parse_task(tb, tl, &mt) != 0) {
            r = P2C2R_EPROTO;
            break;
        }
    }
    if (r != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed SUBMIT_BATCH entries");
        return -1;
    }
    int accepted = 0;
    while (proto_batch_next(&it, &id, &tb, &tl) == 1) {
        int acked = 0;
        if (submit_one(c, id, tb, tl, 0, &accepted, &acked) != 0)
            return -1;
    }
    if (h->flags & PROTO_F_WANT_ACK)
        return send_accepted(c, h->req_id, (uint32_t)accepted);
    return 0;
}

int renter_on_cancel(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    (void)body;
    if (h->body_len != 0) {
        conn_fail(c, P2C2R_EPROTO, "CANCEL carries no body");
        return -1;
    }
    struct list_node *n;
    for (n = c->tasks.next; n != &c->tasks; n = n->next) {
        struct task *t = list_entry(n, struct task, rnode);
        if (t->ticket == h->req_id) {
            c->co->n.cancelled++;
            task_end_early(c->co, t, P2C2R_ECANCELLED, "cancelled by renter");
            return 0;
        }
    }
    return 0; /* already finished: its outcome is on the way */
}

/* A renter's connection is gone: its queued tasks are dropped and its
 * running ones orphaned (or handed to tasks coalesced onto them). */
void renter_detach(struct conn *c)
{
    struct coord *co = c->co;
    co->nrenters--;
    struct list_node *n;
    while ((n = list_pop_front(&c->tasks)) != NULL) {
        struct task *t = list_entry(n, struct task, rnode);
        t->renter = NULL;
        c->inflight--;
        task_end_early(co, t, P2C2R_ECLOSED, "renter gone");
    }
    share_put(co, c->share);
    c->share = NULL;
}
