/* peers.c - peers and task types: the peer registry, its state machine and circuit breaker,
 * credits, pings, PEER_REGISTER / CREDIT / RESULT / PONG, and the type table. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ident.h"
#include "coord/coord_int.h"

_Static_assert(PROTO_NONCE_LEN == IDENT_NONCE_LEN && PROTO_PK_LEN == IDENT_PK_LEN &&
                   PROTO_SIG_LEN == IDENT_SIG_LEN && STORE_PK_LEN == IDENT_PK_LEN,
               "the wire carries ident.h's key, nonce and signature");

const char *peer_state_name(int s)
{
    static const char *const n[] = {"ok", "quarantined", "probing"};
    return s >= 0 && s <= PS_PROBING ? n[s] : "?";
}

/* Legal peer transitions: ok->quarantined (circuit opens), quarantined->
 * probing (cool-down over: one task may test it), probing->ok|quarantined. */
int peer_transition_ok(int from, int to)
{
    switch (to) {
    case PS_QUARANTINED: return from == PS_OK || from == PS_PROBING;
    case PS_PROBING: return from == PS_QUARANTINED;
    case PS_OK: return from == PS_PROBING;
    default: return 0;
    }
}

/* ---- peers and types -------------------------------------------------------- */

void peer_set_state(struct peer_rec *p, int to)
{
    if (!peer_transition_ok(p->state, to)) {
        LOG_E("peer_bad_transition", "peer=%u from=%s to=%s", p->id, peer_state_name(p->state),
              peer_state_name(to));
        abort();
    }
    p->state = (uint8_t)to;
}

/* Whether p can take one more task now. */
int peer_can_take(const struct peer_rec *p)
{
    if (!p->conn || p->conn->state != CS_READY || p->inflight >= peer_slots(p))
        return 0;
    return p->state == PS_OK || (p->state == PS_PROBING && p->inflight == 0);
}

/* Brings p's membership of its types' free sets in line with peer_can_take.
 * Called after every change of slots, in-flight count, state or connection
 * state: O(types of p). */
void peer_refresh(struct coord *co, struct peer_rec *p)
{
    uint8_t want = (uint8_t)peer_can_take(p);
    if (want == p->eligible)
        return;
    p->eligible = want;
    for (uint32_t m = p->types; m; m &= m - 1) {
        int ti = __builtin_ctz(m);
        struct ttype *tt = &co->types[ti];
        if (want) {
            if (tt->nfree == tt->free_cap) {
                tt->free_cap = tt->free_cap ? tt->free_cap * 2 : 8;
                tt->free = xrealloc(tt->free, tt->free_cap * sizeof(*tt->free));
            }
            pool_free_add(tt, ti, p);
        } else {
            pool_free_remove(tt, ti, p);
        }
    }
}

/* The connected peer with this id, or NULL (gone).  O(1): peer ids are
 * sequential, so id modulo the table size spreads them evenly. */
struct peer_rec *peer_find(struct coord *co, uint32_t id)
{
    struct peer_rec *p = co->peer_tab[id % PEER_BUCKETS];
    while (p && p->id != id)
        p = p->hnext;
    return p;
}

void peer_unlink(struct coord *co, struct peer_rec *p)
{
    struct peer_rec **pp = &co->peer_tab[p->id % PEER_BUCKETS];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    if (co->stall_walk == &p->node)
        co->stall_walk = p->node.next;
    list_remove(&p->node);
    list_remove(&p->qnode);
}

static void peer_enter_quarantine(struct coord *co, struct peer_rec *p, uint64_t until_us)
{
    peer_set_state(p, PS_QUARANTINED);
    list_push_back(&co->quarantined, &p->qnode);
    p->state_until_us = until_us;
    peer_refresh(co, p);
}

/* Quarantines p for base_ms, doubled for each earlier quarantine of its key
 * (up to 64x), and, since a key is one peer, every other connection of its
 * key; the key's record keeps the end of the quarantine, so that
 * reconnecting (or a restart of the coordinator) does not end it. */
void peer_quarantine_for(struct coord *co, struct peer_rec *p, const char *why, uint64_t base_ms)
{
    uint64_t ms = base_ms << (p->quarantines < 6 ? p->quarantines : 6);
    uint64_t until = co->now + ms * 1000;
    peer_enter_quarantine(co, p, until);
    co->n.quarantines++;
    LOG_W("peer_quarantined", "peer=%u reason=\"%s\" strikes=%u lies=%" PRIu64 " cooldown_ms=%" PRIu64, p->id,
          why, p->consec_strikes, p->lies, ms);
    struct ident_rec *k = p->key;
    if (!k) {
        p->quarantines++;
        return;
    }
    k->quarantines++;
    k->quarantined_until_ms = wall_ms() + ms;
    for (struct list_node *n = k->peers.next; n != &k->peers; n = n->next) {
        struct peer_rec *q = list_entry(n, struct peer_rec, knode);
        if (q != p && q->state != PS_QUARANTINED) {
            peer_enter_quarantine(co, q, until);
            LOG_W("peer_quarantined", "peer=%u reason=\"another connection of its key (peer %u) was "
                  "quarantined\" cooldown_ms=%" PRIu64, q->id, p->id, ms);
        }
    }
    peerdb_sync(co, k);
}

static void peer_quarantine(struct coord *co, struct peer_rec *p, const char *why)
{
    peer_quarantine_for(co, p, why, co->cfg.breaker_cooldown_ms);
}

/* Moves p's failure rate (a moving average over its events, weight 0.1)
 * toward 1 for a bad event: a contradicted result, a deadline that passed
 * while it held the task, a result sent twice. */
void peer_bad_event(struct peer_rec *p) { p->fail_ewma = p->fail_ewma * 0.9f + 0.1f; }

/* p returned a result another peer contradicted (or it failed a probe). */
static void peer_strike(struct coord *co, struct peer_rec *p, const char *why)
{
    if (p->key) {
        p->key->strikes++;
        peerdb_sync(co, p->key);
    } else {
        p->strikes++;
    }
    p->consec_strikes++;
    peer_bad_event(p);
    if (p->state == PS_PROBING ||
        (p->state == PS_OK && p->consec_strikes >= co->cfg.breaker_strikes))
        peer_quarantine(co, p, why);
}

void peer_unverified_ok(struct coord *co, struct peer_rec *p)
{
    p->consec_strikes = 0;
    p->fail_ewma *= 0.9f;
    if (p->state == PS_PROBING) {
        peer_set_state(p, PS_OK);
        LOG_I("peer_restored", "peer=%u", p->id);
        peer_refresh(co, p);
    }
}

void peer_good(struct coord *co, struct peer_rec *p)
{
    if (p->key) {
        p->key->good++;
        peerdb_sync(co, p->key);
    } else {
        p->good++;
    }
    peer_unverified_ok(co, p);
}

int type_find(struct coord *co, const uint8_t *name, size_t len)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        if (co->types[i].name_len == len && memcmp(co->types[i].name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Type names are 1..32 bytes of [a-z0-9_.-]: they appear in logs, JSON
 * and metrics without escaping. */
int type_name_ok(const uint8_t *name, size_t len)
{
    if (len == 0 || len > PROTO_MAX_TYPE_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

/* A type with no peer and nothing queued references nothing (a task of a
 * type is queued, following a queued or running task, or on a peer of that
 * type), so its slot can be given to a new name: peers cannot fill the
 * table for good. */
static int type_slot_free(const struct ttype *tt) { return tt->npeers == 0 && tt->queued == 0; }

/* The index of the type called name, created (or a free slot recycled) if
 * it is new; -1 when the table is full of types still in use. */
int type_intern(struct coord *co, const uint8_t *name, size_t len)
{
    int i = type_find(co, name, len);
    if (i >= 0)
        return i;
    struct ttype *tt = NULL;
    if (co->ntypes < PROTO_MAX_TYPES) {
        tt = &co->types[co->ntypes++];
    } else {
        for (uint32_t k = 0; k < co->ntypes && !tt; k++)
            if (type_slot_free(&co->types[k]))
                tt = &co->types[k];
        if (!tt)
            return -1;
    }
    /* Keep the arrays a recycled slot already owns. */
    struct peer_rec **peers = tt->peers, **fr = tt->free;
    uint32_t pcap = tt->peers_cap, fcap = tt->free_cap;
    struct squeue **sq = tt->sq;
    uint32_t sqcap = tt->sq_cap, epoch = tt->fair_epoch;
    memset(tt, 0, sizeof(*tt));
    tt->peers = peers;
    tt->peers_cap = pcap;
    tt->free = fr;
    tt->free_cap = fcap;
    tt->sq = sq;
    tt->sq_cap = sqcap;
    tt->fair_epoch = epoch + 1; /* shares' tags from the slot's last type mean nothing */
    memcpy(tt->name, name, len);
    tt->name[len] = '\0';
    tt->name_len = (uint8_t)len;
    list_init(&tt->running);
    tt->no_peer_since = co->now;
    for (uint32_t k = 0; k < co->ntdl; k++)
        if (strcmp(co->tdl[k].name, tt->name) == 0)
            tt->deadline_ms = co->tdl[k].ms;
    for (uint32_t k = 0; k < co->ncache_types; k++)
        if (strcmp(co->cache_types[k], tt->name) == 0 || strcmp(co->cache_types[k], "*") == 0)
            tt->cache_ok = 1;
    tt->verify = (uint8_t)verify_policy_for(co, tt->name);
    hist_init(&tt->att[0]);
    hist_init(&tt->att[1]);
    hist_init(&tt->h_queue);
    hist_init(&tt->h_dispatch);
    hist_init(&tt->h_exec);
    hist_init(&tt->h_total);
    tt->att_since = co->now;
    return (int)(tt - co->types);
}

/* Makes p a peer of type ti at version (a type it lists twice counts
 * once): it joins the type's peers and its slots count toward the type's.
 * The free set is the caller's: peer_refresh once all types are joined. */
void peer_join_type(struct coord *co, struct peer_rec *p, int ti, uint32_t version, uint8_t flags)
{
    if (p->types & (1u << ti))
        return;
    struct ttype *tt = &co->types[ti];
    p->types |= 1u << ti;
    p->ty[ti].version = version;
    p->ty[ti].det = (flags & PROTO_TYPE_F_DETERMINISTIC) != 0;
    if (!p->ty[ti].det)
        tt->nnondet++;
    if (tt->npeers == tt->peers_cap) {
        tt->peers_cap = tt->peers_cap ? tt->peers_cap * 2 : 8;
        tt->peers = xrealloc(tt->peers, tt->peers_cap * sizeof(*tt->peers));
    }
    p->ty[ti].pos = tt->npeers;
    tt->peers[tt->npeers++] = p;
    tt->npool[p->pool]++;
    tt->slots_total += peer_slots(p);
}

int peer_on_register(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_register m;
    if (c->peer) {
        conn_fail(c, P2C2R_EPROTO, "PEER_REGISTER sent twice");
        return -1;
    }
    if (h->body_len > 13 && body[13] > PROTO_MAX_TYPES) {
        conn_fail(c, P2C2R_ELIMIT, "PEER_REGISTER lists %u task types (max %d)", body[13], PROTO_MAX_TYPES);
        return -1;
    }
    if (proto_parse_register(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed PEER_REGISTER (docs/PROTOCOL.md 5.3)");
        return -1;
    }
    /* Who it is, before anything it says is believed. */
    char hex[IDENT_PK_HEX_LEN + 1];
    if (!m.pk) {
        co->n.auth_failures++;
        conn_fail(c, P2C2R_EAUTH, "PEER_REGISTER carries no identity (public key and signature, "
                                  "docs/PROTOCOL.md 5.3): upgrade the peer");
        return -1;
    }
    ident_pk_hex(m.pk, hex);
    /* A gateway peer proved its key over the gateway's own challenge
     * (gateway.c, docs/GATEWAY.md "Peer identity"). */
    if (c->gw ? gw_peer_key_ok(c, m.pk) != 0
              : ident_verify_challenge(m.pk, c->nonce, c->id, body, m.signed_len, m.sig) != 0) {
        co->n.auth_failures++;
        conn_fail(c, P2C2R_EAUTH, "PEER_REGISTER signature does not verify for key %.16s...: it must "
                  "sign this connection's nonce and conn_id (HELLO_OK) with the key it presents", hex);
        return -1;
    }
    struct ident_rec *key = peerdb_find(co, m.pk);
    if (key && key->banned) {
        co->n.auth_failures++;
        conn_fail(c, P2C2R_EAUTH, "key %.16s... banned by the operator", hex);
        return -1;
    }
    if (!key && !peerdb_has_room(co)) {
        conn_fail(c, P2C2R_ELIMIT, "the coordinator knows %u peer keys, its limit (--max-peer-keys)",
                  co->nkeys);
        return -1;
    }
    if (m.ntypes == 0) {
        conn_fail(c, P2C2R_EINVAL, "PEER_REGISTER lists no task types");
        return -1;
    }
    if (m.pool >= PROTO_POOLS) {
        conn_fail(c, P2C2R_EINVAL, "PEER_REGISTER names pool %u: the pools are 0 (volunteer) and 1 (cloud)",
                  m.pool);
        return -1;
    }
    /* Check every name and that the table can take the new ones before
     * touching any shared state, so a refusal leaves nothing behind. */
    uint32_t fresh = 0, recyclable = PROTO_MAX_TYPES - co->ntypes;
    for (uint32_t k = 0; k < co->ntypes; k++)
        recyclable += type_slot_free(&co->types[k]);
    for (unsigned i = 0; i < m.ntypes; i++) {
        if (!type_name_ok(m.types[i].name.p, m.types[i].name.len)) {
            conn_fail(c, P2C2R_EINVAL, "task type names are 1..32 bytes of a-z 0-9 _ . -");
            return -1;
        }
        int dup = 0;
        for (unsigned k = 0; k < i; k++)
            dup |= m.types[k].name.len == m.types[i].name.len &&
                   memcmp(m.types[k].name.p, m.types[i].name.p, m.types[i].name.len) == 0;
        if (!dup && type_find(co, m.types[i].name.p, m.types[i].name.len) < 0)
            fresh++;
    }
    if (co->cfg.peer_new_types && fresh > co->cfg.peer_new_types) {
        /* Names no other peer serves take table slots everybody shares:
         * one peer may add only a few (the executors it really has). */
        co->n.types_refused++;
        conn_fail(c, P2C2R_ELIMIT, "PEER_REGISTER adds %u task types no peer serves yet (limit %u per peer, "
                  "--peer-new-types)", fresh, co->cfg.peer_new_types);
        return -1;
    }
    if (fresh > recyclable) {
        conn_fail(c, P2C2R_ELIMIT, "too many distinct task types (max %d)", PROTO_MAX_TYPES);
        return -1;
    }
    unsigned clamped = claims_clamp_register(&m);
    if (clamped) {
        co->n.claims_clamped++;
        LOG_W("peer_claims_clamped", "conn=%" PRIu64 " cores=%u mem=%u version=%u", c->id,
              (clamped & CLAIM_CORES) != 0, (clamped & CLAIM_MEM) != 0, (clamped & CLAIM_VERSION) != 0);
    }
    struct peer_rec *p = xcalloc(1, sizeof(*p));
    p->id = ++co->next_peer_id;
    p->group = p->id;
    p->conn = c;
    p->cores = m.cores;
    p->mem = m.mem_bytes;
    p->gpu = m.gpu ? 1 : 0;
    p->pool = m.pool;
    p->cost = m.cost;
    p->pool_trusted = (co->trust_pools >> m.pool) & 1;
    pools_peer_join(co, p);
    p->state = PS_OK;
    memcpy(p->gpu_model, m.gpu_model.p, m.gpu_model.len);
    list_init(&p->attempts);
    list_init(&p->checks);
    list_init(&p->qnode);
    list_init(&p->knode);
    list_push_back(&co->peers, &p->node);
    p->hnext = co->peer_tab[p->id % PEER_BUCKETS];
    co->peer_tab[p->id % PEER_BUCKETS] = p;
    p->slots = m.slots;
    p->held_limit = HELD_START; /* slots are earned: claims.c */
    p->last_answer_us = co->now;
    for (unsigned i = 0; i < m.ntypes; i++) {
        int ti = type_intern(co, m.types[i].name.p, m.types[i].name.len);
        assert(ti >= 0); /* capacity was checked above */
        peer_join_type(co, p, ti, m.types[i].version, m.types[i].flags);
    }
    c->peer = p;
    co->npeers++;
    key = peerdb_get(co, m.pk);
    peerdb_attach(co, p, key, c->name);
    peer_refresh(co, p);
    uint8_t *b = conn_frame(c, MSG_REGISTER_OK, 0, h->req_id, 8);
    if (b)
        wr64(b, p->id);
    char esc[4 * sizeof(c->name)];
    LOG_I("peer_registered", "peer=%u conn=%" PRIu64 " name=\"%s\" key=%s key_id=%u group=%u state=%s "
          "cores=%u slots=%u gpu=%u types=%u pool=%s cost=%u",
          p->id, c->id, log_esc(esc, sizeof(esc), c->name, strlen(c->name)), hex, key->id, p->group,
          peer_state_name(p->state), p->cores, p->slots, p->gpu, m.ntypes, pool_name(p->pool), p->cost);
    dispatch_peer(co, p);
    coord_maybe_ready(co);
    return 0;
}

int peer_on_credit(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint32_t slots;
    if (!c->peer) {
        conn_fail(c, P2C2R_EPROTO, "CREDIT before PEER_REGISTER");
        return -1;
    }
    if (proto_parse_u32(body, h->body_len, &slots) != 0 || slots > 65535) {
        conn_fail(c, P2C2R_EPROTO, "malformed CREDIT: the body is a u32 of 0..65535");
        return -1;
    }
    struct peer_rec *p = c->peer;
    uint32_t before = peer_slots(p);
    p->slots = slots;
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &c->co->types[__builtin_ctz(m)];
        tt->slots_total = tt->slots_total - before + peer_slots(p);
    }
    peer_refresh(c->co, p);
    dispatch_peer(c->co, p);
    return 0;
}


/* Whether RESULT id is one p answered lately (a duplicate, not an invention). */
static int peer_answered(const struct peer_rec *p, uint64_t id)
{
    for (unsigned i = 0; i < DUP_RING; i++)
        if (p->recent[i] == id)
            return 1;
    return 0;
}

int peer_on_result(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_result m;
    struct peer_rec *p = c->peer;
    if (!p) {
        conn_fail(c, P2C2R_EPROTO, "RESULT before PEER_REGISTER");
        return -1;
    }
    if (proto_parse_result(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed RESULT: shorter than its 8-byte prefix");
        return -1;
    }
    struct task *t = task_lookup(co, h->req_id);
    struct attempt *a = NULL;
    if (t && (t->state == TS_RUNNING || t->state == TS_ORPHAN))
        for (int i = 0; i < 2; i++)
            if (t->at[i].peer == p)
                a = &t->at[i];
    if (!a) {
        if (peer_answered(p, h->req_id)) {
            /* Answered twice: dropped, counted, and it costs the peer trust. */
            co->n.duplicate_results++;
            peer_bad_event(p);
            return 0;
        }
        /* Never ours: a peer inventing results is misbehaving. */
        co->n.late_results++;
        conn_fail(c, P2C2R_EPROTO, "RESULT for task %" PRIx64 " that was not assigned to this peer",
                  h->req_id);
        return -1;
    }
    p->recent[p->recent_pos++ % DUP_RING] = h->req_id;
    struct ttype *tt = &co->types[t->tt];
    uint64_t now = co->now, dur = now - a->start_us;
    m.exec_us = claims_on_answer(co, p, m.exec_us, dur); /* never more than we measured */
    int hedge = a->hedge;
    attempt_end(co, a);
    int status = m.status ? -(int)m.status : 0;
    if (status < P2C2R_ERROR_MIN)
        status = P2C2R_ETASK;
    if (status == 0)
        p->done++;
    else if (status != P2C2R_ECANCELLED)
        p->failed++;
    if (status == 0) {
        hist_add(&tt->h_exec, m.exec_us);
        hist_add(&tt->h_dispatch, dur > m.exec_us ? dur - m.exec_us : 0);
        ewmaf(&p->ty[t->tt].exec_ewma, m.exec_us);
        ewmaf(&p->rtt_us, (double)(dur > m.exec_us ? dur - m.exec_us : 0));
        if (!hedge || t->state == TS_RUNNING)
            hist_add(&tt->att[0], dur);
        ewma(&tt->exec_ewma, m.exec_us);
        /* Time per cost unit: the sample is bounded by the measured
         * duration (claims_on_answer) and its influence by the estimators
         * (urate.h).  A peer's first sample moves it from its pool's rate
         * for the type (with one pool: the type's), so one forged answer
         * cannot set it anywhere either; only the first peer of a pool
         * starts from its own first sample (peerpool.c). */
        double r = urate_sample(m.exec_us, t->cost);
        struct peer_type *pt = &p->ty[t->tt];
        if (pt->rate <= 0 && tt->prate[p->pool].n)
            pt->rate = (float)urate_win_get(&tt->prate[p->pool]);
        urate_ewma_add(&pt->rate, r);
        urate_win_add(&tt->rate, r);
        urate_win_add(&tt->prate[p->pool], r);
        urate_win_add(&tt->disp, (double)(dur > m.exec_us ? dur - m.exec_us : 0));
    }

    if (t->state == TS_ORPHAN) {
        /* Cancelled, timed out or beaten by its hedge: dropped and counted. */
        co->n.late_results++;
        if (t->nlive == 0)
            task_free(co, t);
    } else if (status == P2C2R_ENOBLOB && t->blob_retries < 3) {
        /* The peer evicted a blob we thought it had: forget what we knew,
         * and run the task again (it resends the blobs) at no attempt's cost. */
        co->n.blob_misses++;
        free(p->has);
        p->has = NULL;
        p->has_n = 0;
        t->blob_retries++;
        t->attempts--;
        if (!hedge)
            t->tries--;
        if (t->nlive == 0)
            task_enqueue(co, t, 1);
    } else if (t->vs && status != 0 && status != P2C2R_ECANCELLED) {
        verify_on_error(co, t, p);
    } else if (status == 0) {
        /* A DELIVER carries 16 bytes before the output and no frame may
         * pass max_body: an output over that cannot reach the renter. */
        int undeliverable = m.output.len > co->cfg.max_body - PROTO_DELIVER_PREFIX;
        if (t->err_status && t->err_peer != p->id) {
            struct peer_rec *first = peer_find(co, t->err_peer);
            /* An output too big to deliver confirms an ETOOBIG; any other
             * success contradicts the first peer's error. */
            if (first && undeliverable && t->err_status == (uint16_t)-P2C2R_ETOOBIG)
                peer_good(co, first);
            else if (first)
                peer_strike(co, first, "an error another peer's success contradicted");
        }
        if (hedge && !t->vs) { /* answered first (a later answer is a check) */
            co->n.hedge_wins++;
            tt->hedge_wins++;
        }
        if (undeliverable) {
            /* The executor is deterministic, so another run would not help. */
            char msg[160];
            snprintf(msg, sizeof(msg), "result of %zu bytes over the largest deliverable (%u bytes: max_body - 16)",
                     m.output.len, co->cfg.max_body - PROTO_DELIVER_PREFIX);
            task_finish(co, t, P2C2R_ETOOBIG, (const uint8_t *)msg, strlen(msg), m.exec_us, p->id);
        } else {
            verify_on_success(co, t, p, m.output.p, m.output.len, m.exec_us);
        }
    } else {
        /* An error.  It is believed when a second peer says the same; until
         * then it may be this peer's fault, so the task runs elsewhere, and
         * the peer is judged by what the other run shows: a success there
         * is a strike against it (a failed probe reopens its breaker), the
         * same error clears it, since the task itself was at fault. */
        if (t->nlive > 0) {
            if (!t->err_status) {
                t->err_status = m.status;
                t->err_peer = p->id;
                t->err_group = p->group;
            }
            /* Another copy still runs: a hedge of it must not go back to a
             * group that already failed the task (it would only fail it
             * again, one attempt each time the other copy looks slow). */
            task_exclude(t, p->group);
        } else if (t->err_status == m.status && t->err_group != p->group) {
            /* Confirmed by an independent peer: two connections of one key
             * (or of one operator's group) cannot vouch for each other. */
            struct peer_rec *first = peer_find(co, t->err_peer);
            if (first)
                peer_good(co, first);
            peer_good(co, p);
            task_finish(co, t, status, m.output.p, m.output.len, m.exec_us, p->id);
        } else if (t->tries < co->cfg.max_attempts && task_other_group_can_run(co, t, p->group)) {
            /* Only a peer of another group can show whether the task or
             * this peer is at fault; with none, the error stands. */
            t->err_status = m.status;
            t->err_peer = p->id;
            t->err_group = p->group;
            task_retry(co, t, p->group);
        } else {
            task_finish(co, t, status, m.output.p, m.output.len, m.exec_us, p->id);
        }
    }
    if (c->state == CS_READY)
        dispatch_peer(co, p);
    return 0;
}

/* A peer's PONG to our PING carries our clock: a round-trip sample. */
int peer_on_pong(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct peer_rec *p = c->peer;
    if (p && h->body_len == 8 && p->ping_sent_us && rd64(body) == p->ping_sent_us) {
        ewmaf(&p->rtt_us, (double)(c->co->now - p->ping_sent_us));
        p->ping_sent_us = 0;
    }
    return 0;
}

/* p's connection is gone: it leaves its types, its attempts end, and tasks
 * left with no attempt are retried at once (or fail after max_attempts). */
void peer_detach(struct coord *co, struct peer_rec *p)
{
    co->npeers--;
    pools_peer_leave(co, p);
    peer_unlink(co, p);
    for (uint32_t m = p->types; m; m &= m - 1) {
        int ti = __builtin_ctz(m);
        struct ttype *tt = &co->types[ti];
        uint32_t pos = p->ty[ti].pos;
        tt->peers[pos] = tt->peers[--tt->npeers];
        tt->peers[pos]->ty[ti].pos = pos;
        tt->slots_total -= peer_slots(p);
        tt->npool[p->pool]--;
        if (!p->ty[ti].det)
            tt->nnondet--;
        if (tt->npeers == 0)
            tt->no_peer_since = co->now;
    }
    p->slots = 0; /* no new work */
    peer_refresh(co, p);
    uint32_t types = p->types;
    struct list_node *n;
    while ((n = p->attempts.next) != &p->attempts) {
        struct attempt *a = list_entry(n, struct attempt, pnode);
        struct task *t = a->t;
        attempt_end(co, a);
        if (t->state == TS_ORPHAN) {
            if (t->nlive == 0)
                task_free(co, t);
        } else if (t->nlive > 0) {
            continue; /* its other attempt goes on */
        } else if (t->tries >= (t->job ? co->cfg.job_max_attempts : co->cfg.max_attempts)) {
            co->n.lost++;
            char msg[128];
            snprintf(msg, sizeof(msg), "task lost with %u peers in a row", t->tries);
            task_finish(co, t, P2C2R_ELOST, (const uint8_t *)msg, strlen(msg), 0, 0);
        } else {
            co->n.requeued++;
            task_retry(co, t, p->group);
        }
    }
    /* Checks reserved for p may go to any peer that may run them now. */
    while (!list_empty(&p->checks)) {
        struct task *t = list_entry(list_pop_front(&p->checks), struct task, cnode);
        if (t->vs)
            t->vs->checker = 0;
    }
    p->types = 0;
    /* Other peers may be able to take the requeued work now; work that was
     * waiting for p to check it may have no checker left. */
    for (uint32_t m = types; m; m &= m - 1)
        type_kick(co, __builtin_ctz(m));
    verify_sweep(co);
    LOG_I("peer_gone", "peer=%u conn=%" PRIu64 " done=%" PRIu64 " failed=%" PRIu64, p->id,
          p->conn->id, p->done, p->failed);
    peerdb_detach(co, p);
}

/* Pings p when it has been silent for ping_ms and no ping is outstanding
 * for as long: the PONG is a round-trip sample and proof of life. */
void peer_maybe_ping(struct coord *co, struct peer_rec *p, uint64_t now)
{
    struct conn *c = p->conn;
    if (now - c->last_rx_us < co->cfg.ping_ms * 1000ull ||
        (p->ping_sent_us && now - p->ping_sent_us < co->cfg.ping_ms * 1000ull))
        return;
    uint8_t *b = conn_frame(c, MSG_PING, 0, 0, 8);
    if (b) {
        p->ping_sent_us = now;
        wr64(b, now);
        co->n.pings++;
    }
}

/* Lets quarantined peers whose cool-down ended take one probe task. */
void peer_sweep_quarantined(struct coord *co, uint64_t now)
{
    struct list_node *n = co->quarantined.next;
    while (n != &co->quarantined) {
        struct peer_rec *p = list_entry(n, struct peer_rec, qnode);
        n = n->next;
        if (now >= p->state_until_us && p->conn->state == CS_READY) {
            list_remove(&p->qnode);
            peer_set_state(p, PS_PROBING);
            LOG_I("peer_probing", "peer=%u", p->id);
            peer_refresh(co, p);
            dispatch_peer(co, p);
        }
    }
}
