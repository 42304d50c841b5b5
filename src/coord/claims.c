/* claims.c - claims are measured, not believed (docs/ARCHITECTURE.md, "Measured claims"):
 * what a peer declares or reports is bounded by what the coordinator can check.
 *
 * - Capabilities in PEER_REGISTER are clamped to named ranges (claims_clamp_register); the
 *   scheduler only ever sees the clamped values, so a task needing more than a clamp is
 *   unmeetable (EUNSUPPORTED at submit) like any other.
 * - Slots are earned: a peer may hold at most peer_slots(p) = min(declared slots, held_limit)
 *   tasks.  held_limit starts at HELD_START, grows by one per answered task (so it doubles
 *   each time the peer answers a full window) up to the declared slots, and is halved (down
 *   to 1) each time the peer is found holding tasks past what its record predicts.  Every
 *   use of a peer's slots (free sets, type slot totals, admission, scores) reads peer_slots.
 * - A RESULT's exec_us can never exceed the attempt's duration as the coordinator measured it
 *   (assign to RESULT): claims_on_answer clamps it before anything else reads it.
 * - Stallers lose work: claims_sweep looks at a slice of the peers every 5 ms sweep; a held
 *   attempt older than claims_overdue_after is overdue: its task gets a second copy on a
 *   free peer (a stall hedge), and the peer's limit is halved once per sweep that finds new
 *   overdue attempts.  A peer whose every held task is overdue, that has held them and not
 *   answered anything for half the peer timeout, is cut (ETIMEDOUT), pings or no pings.
 *
 * Invariant: a type's slots_total is the sum of peer_slots over its peers; held_limit only
 * changes through claims_set_limit, which keeps it so. */
#include <inttypes.h>
#include <stdio.h>

#include "coord/coord_int.h"

unsigned claims_clamp_register(struct msg_register *m)
{
    unsigned what = 0;
    if (m->cores > CLAIM_MAX_CORES) {
        m->cores = CLAIM_MAX_CORES;
        what |= CLAIM_CORES;
    }
    if (m->mem_bytes > CLAIM_MAX_MEM) {
        m->mem_bytes = CLAIM_MAX_MEM;
        what |= CLAIM_MEM;
    }
    for (unsigned i = 0; i < m->ntypes; i++)
        if (m->types[i].version > CLAIM_MAX_VERSION) {
            m->types[i].version = CLAIM_MAX_VERSION;
            what |= CLAIM_VERSION;
        }
    return what;
}

void claims_set_limit(struct coord *co, struct peer_rec *p, uint32_t limit)
{
    uint32_t before = peer_slots(p);
    p->held_limit = limit;
    uint32_t after = peer_slots(p);
    if (after == before)
        return;
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &co->types[__builtin_ctz(m)];
        tt->slots_total = tt->slots_total - before + after;
    }
    peer_refresh(co, p);
}

uint32_t claims_on_answer(struct coord *co, struct peer_rec *p, uint32_t exec_us, uint64_t dur_us)
{
    p->last_answer_us = co->now;
    if (p->held_limit < p->slots)
        claims_set_limit(co, p, p->held_limit + 1);
    if (exec_us > dur_us) {
        co->n.exec_us_clamped++;
        return (uint32_t)dur_us; /* < exec_us, so it fits */
    }
    return exec_us;
}

uint64_t claims_overdue_after(const struct coord *co, const struct peer_rec *p, const struct task *t,
                              uint64_t start_us)
{
    const struct ttype *tt = &co->types[t->tt];
    uint64_t budget = t->deadline_us > start_us ? t->deadline_us - start_us : 0;
    uint64_t floor = budget / 4 < STALL_FLOOR_US ? budget / 4 : STALL_FLOOR_US;
    if (floor < STALL_MIN_US)
        floor = STALL_MIN_US;
    double exec = p->ty[t->tt].exec_ewma > 0 ? p->ty[t->tt].exec_ewma : tt->exec_ewma;
    if (exec <= 0) {
        /* Nothing measured for the type yet: half of the task's time. */
        uint64_t half = budget / 2;
        return half > floor ? half : floor;
    }
    double after = STALL_MULT * (exec + p->rtt_us);
    return after > (double)floor ? (uint64_t)after : floor;
}

/* Starts a second copy of a's task on another free peer, when the task
 * still waits for its outcome and has no other copy running. */
static void stall_hedge(struct coord *co, struct attempt *a)
{
    struct task *t = a->t;
    if (!co->cfg.hedge || a->cancelled || t->state != TS_RUNNING || t->nlive != 1 || (!t->renter && !t->job) ||
        co->now >= t->deadline_us || co->now - a->start_us < co->cfg.hedge_min_us)
        return; /* --hedge-min-us holds for these hedges too */
    struct peer_rec *q = pick_peer(co, t);
    if (!q) {
        /* The overdue attempt may be the check of a result t already has,
         * with no other independent peer free to take it over. */
        verify_checker_stalled(co, t);
        return;
    }
    if (task_assign(co, t, q, 1) != 0)
        return;
    list_remove(&a->hnode); /* the p95 hedge need not look at it again */
    t->hedged = 1;
    co->n.hedges++;
    co->n.stall_hedges++;
    co->types[t->tt].hedges++;
}

/* Judges one peer: its attempts oldest first, up to the first that is not
 * overdue.  Attempts of other types or deadlines behind a younger one that
 * is not overdue wait for a later look; a staller's are all overdue. */
static void claims_judge(struct coord *co, struct peer_rec *p, uint64_t now)
{
    if (p->inflight == 0 || p->conn->state != CS_READY)
        return;
    uint32_t fresh = 0, all = 1;
    uint64_t youngest = 0;
    for (struct list_node *n = p->attempts.next; n != &p->attempts; n = n->next) {
        struct attempt *a = list_entry(n, struct attempt, pnode);
        if (now - a->start_us < claims_overdue_after(co, p, a->t, a->start_us)) {
            all = 0;
            break;
        }
        youngest = a->start_us;
        if (!a->overdue) {
            a->overdue = 1;
            fresh++;
        }
        stall_hedge(co, a);
    }
    if (fresh) {
        uint32_t lim = peer_slots(p) / 2;
        p->stalls++;
        claims_set_limit(co, p, lim ? lim : 1);
        LOG_I("peer_stalled", "peer=%u overdue=%u held=%u held_limit=%u", p->id, fresh, p->inflight,
              peer_slots(p));
    }
    uint64_t cut_us = (uint64_t)co->cfg.peer_timeout_ms * 1000 / 2;
    if (all && now - youngest >= cut_us && now - p->last_answer_us >= cut_us) {
        co->n.staller_cuts++;
        conn_fail(p->conn, P2C2R_ETIMEDOUT, "peer holds %u tasks without answering for %" PRIu64 " ms",
                  p->inflight, cut_us / 1000);
    }
}

void claims_sweep(struct coord *co, uint64_t now)
{
    uint32_t quota = co->npeers < STALL_WALK ? co->npeers : STALL_WALK;
    for (uint32_t k = 0; k < quota; k++) {
        if (!co->stall_walk || co->stall_walk == &co->peers)
            co->stall_walk = co->peers.next;
        if (co->stall_walk == &co->peers)
            return;
        struct peer_rec *p = list_entry(co->stall_walk, struct peer_rec, node);
        co->stall_walk = co->stall_walk->next;
        claims_judge(co, p, now);
    }
}

uint32_t claims_overdue_count(const struct peer_rec *p)
{
    uint32_t n = 0;
    for (const struct list_node *x = p->attempts.next; x != &p->attempts; x = x->next)
        n += list_entry(x, struct attempt, pnode)->overdue;
    return n;
}
