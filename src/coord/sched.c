/* sched.c - the scheduler: per-share, per-type queues by priority class (EDF heap + FIFO for
 * aging), which queued task a free peer runs next (the fair order between shares is share.c's),
 * which peer a new task goes to (power of d choices over scored peers), admission estimates,
 * retries and hedging. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"

/* Whether t avoids peers of this group (it failed or was lost there). */
static int task_excludes(const struct task *t, uint32_t group)
{
    for (unsigned i = 0; i < t->nexcl; i++)
        if (t->excl[i] == group)
            return 1;
    return 0;
}

static int reqs_met(const struct proto_reqs *r, const struct peer_rec *p)
{
    return (!r->gpu || p->gpu) && p->cores >= r->min_cores && p->mem >= r->min_mem;
}

/* Whether a connected peer of t's type outside the groups t excludes could
 * run it (version, requirements).  The scan stops at the first such peer,
 * usually the first one looked at; it runs only for a retried task and a
 * peer it excludes. */
static int type_has_unexcluded(const struct ttype *tt, int ti, const struct task *t)
{
    for (uint32_t i = 0; i < tt->npeers; i++) {
        const struct peer_rec *q = tt->peers[i];
        if (!task_excludes(t, q->group) && q->ty[ti].version >= t->min_version && reqs_met(&t->reqs, q))
            return 1;
    }
    return 0;
}

int task_other_group_can_run(const struct coord *co, const struct task *t, uint32_t group)
{
    const struct ttype *tt = &co->types[t->tt];
    for (uint32_t i = 0; i < tt->npeers; i++) {
        const struct peer_rec *q = tt->peers[i];
        if (q->group != group && !task_excludes(t, q->group) && q->ty[t->tt].version >= t->min_version &&
            reqs_met(&t->reqs, q))
            return 1;
    }
    return 0;
}

/* Whether p may run t: version, requirements, not a peer that already
 * failed it (unless no other peer of the type that could run it is left),
 * and, while t's result is being verified, not of a group that already
 * returned one. */
int task_fits(const struct coord *co, const struct task *t, const struct peer_rec *p)
{
    if (p->ty[t->tt].version < t->min_version || !reqs_met(&t->reqs, p))
        return 0;
    if (t->nexcl && task_excludes(t, p->group) && type_has_unexcluded(&co->types[t->tt], t->tt, t))
        return 0;
    if (t->vs && (verify_excludes(t, p) || (t->vs->want_est && !verify_established(p)) ||
                  (t->vs->checker && p->id != t->vs->checker)))
        return 0;
    for (int i = 0; i < 2; i++)
        if (t->at[i].peer == p)
            return 0;
    return 1;
}

/* How often p was right: a Laplace estimate over its results that another
 * peer confirmed or contradicted, 0.5 with no history. */
double peer_trust(const struct peer_rec *p)
{
    return (p->good + 1.0) / (p->good + p->strikes + 2.0);
}

/* p's typical execution time for type ti, in us: its own average, else
 * the type's, else 1 ms. */
static double peer_exec(const struct coord *co, const struct peer_rec *p, int ti)
{
    const struct ttype *tt = &co->types[ti];
    return p->ty[ti].exec_ewma > 0 ? p->ty[ti].exec_ewma : tt->exec_ewma > 0 ? tt->exec_ewma : 1000;
}

/* The score of p for a task it would run in own us, behind its load of
 * tasks of typical length exec; lower is better. */
static double score_of(const struct peer_rec *p, double own, double exec)
{
    double load = peer_slots(p) ? (double)p->inflight / peer_slots(p) : 1;
    double trust = peer_trust(p);
    return (p->rtt_us + own + exec * load) * (1 + 4 * p->fail_ewma) * (1.5 - 0.5 * trust);
}

/* Expected time for p to return a task of type ti, in us; lower is better.
 * See docs/ARCHITECTURE.md, "Peer choice". */
double peer_score(const struct coord *co, const struct peer_rec *p, int ti)
{
    double exec = peer_exec(co, p, ti);
    return score_of(p, exec, exec);
}

/* What t itself should take on p, in us: its cost times p's time per cost
 * unit for the type (its own, else its pool's, else the type's median); 0
 * when the cost or every rate is unknown. */
static double task_expected_us(const struct coord *co, const struct peer_rec *p, const struct task *t)
{
    const struct ttype *tt = &co->types[t->tt];
    if (!t->cost)
        return 0;
    double r = p->ty[t->tt].rate;
    if (r <= 0)
        r = urate_win_get(&tt->prate[p->pool]);
    if (r <= 0)
        r = urate_win_get(&tt->rate);
    return r > 0 ? (double)t->cost * r : 0;
}

/* What t itself should take on p, in us (task_expected_us), so a big task
 * goes to the peer fastest per unit, not to the one whose tasks were small;
 * a task of unknown cost or a type with nothing learned: p's typical time. */
static double task_own_us(const struct coord *co, const struct peer_rec *p, const struct task *t, double exec)
{
    double own = task_expected_us(co, p, t);
    return own > 0 ? own : exec;
}

/* p's score for t: as peer_score, with t's own expected time on p (task_own_us)
 * in place of p's average, lowered by up to BLOB_AFFINITY in the share
 * of t's blob bytes p (probably) holds.  A holder skips the transfer, and
 * its executor may keep what it derived from the blob (a parsed map, a
 * mesh's BVH: docs/TASKS.md, "Cost, cancel and prepared state").  Among
 * peers whose scores are within about a quarter the holder wins; a clearly
 * faster or idler peer still does. */
double task_score(const struct coord *co, const struct peer_rec *p, const struct task *t)
{
    double exec = peer_exec(co, p, t->tt);
    double s = score_of(p, task_own_us(co, p, t, exec), exec);
    if (t->nblobs == 0 || !p->has)
        return s;
    size_t held = 0, all = 0;
    for (unsigned i = 0; i < t->nblobs; i++) {
        all += t->blobs[i]->len;
        if (peer_has_blob(p, t->blobs[i]->hash))
            held += t->blobs[i]->len;
    }
    return all ? s * (1 - BLOB_AFFINITY * (double)held / (double)all) : s;
}

/* The best of SAMPLE_D random peers of t's type that can take it now;
 * tasks with requirements fall back to a scan of the free set when the
 * samples miss.  NULL when none can. */
/* A check of t's result (verify.c) goes to a free peer drawn at random
 * among those that may run it, not to the best scored: the fastest peers
 * would otherwise check each other, and peers that answer at once without
 * working (liars who tell one lie) are the fastest.  A random draw makes a
 * colluder meet another colluder only as often as their share of peers. */
static struct peer_rec *pick_checker(struct coord *co, const struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    uint32_t n = tt->nfree;
    for (int k = 0; k < 8; k++) {
        struct peer_rec *p = tt->free[rng_next(&co->rng) % n];
        if (task_fits(co, t, p))
            return p;
    }
    uint32_t start = (uint32_t)(rng_next(&co->rng) % n);
    for (uint32_t i = 0; i < n; i++)
        if (task_fits(co, t, tt->free[(start + i) % n]))
            return tt->free[(start + i) % n];
    return NULL;
}

struct peer_rec *pick_peer(struct coord *co, const struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    if (tt->nfree == 0)
        return NULL;
    if (t->vs)
        return pick_checker(co, t);
    if (pools_mixed(tt))
        return pools_pick(co, t);
    return pick_in(co, t, 0, tt->nfree);
}

struct peer_rec *pick_in(struct coord *co, const struct task *t, uint32_t lo, uint32_t n)
{
    struct peer_rec **fs = co->types[t->tt].free + lo;
    struct peer_rec *best = NULL;
    double best_s = 0;
    if (n <= SAMPLE_D) {
        for (uint32_t i = 0; i < n; i++) {
            struct peer_rec *p = fs[i];
            if (!task_fits(co, t, p))
                continue;
            double s = task_score(co, p, t);
            if (!best || s < best_s)
                best = p, best_s = s;
        }
        return best;
    }
    /* SAMPLE_D distinct peers: drawn with replacement, a slow peer among
     * four free ones would be the only candidate in 1 of 64 picks and get
     * work that its faster rivals then have to hedge. */
    uint32_t seen[SAMPLE_D];
    int ns = 0;
    for (int k = 0; k < SAMPLE_D * 3 && ns < SAMPLE_D; k++) {
        uint32_t i = (uint32_t)(rng_next(&co->rng) % n);
        int dup = 0;
        for (int j = 0; j < ns; j++)
            dup |= seen[j] == i;
        if (dup)
            continue;
        seen[ns++] = i;
        struct peer_rec *p = fs[i];
        if (!task_fits(co, t, p))
            continue;
        double s = task_score(co, p, t);
        if (!best || s < best_s)
            best = p, best_s = s;
    }
    if (best || (!t->kind && !t->nexcl && t->min_version == 0 && !t->vs))
        return best;
    for (uint32_t i = 0; i < n; i++)
        if (task_fits(co, t, fs[i]))
            return fs[i];
    return NULL;
}

/* ---- queues ------------------------------------------------------------------
 * A queued task sits in its share's queues of its type (share.c), in the
 * queue of its kind and class: an EDF heap and a FIFO (for aging). */

/* Queues t.  front: a retry, which has waited longest (its FIFO place). */
void task_enqueue(struct coord *co, struct task *t, int front)
{
    struct ttype *tt = &co->types[t->tt];
    struct share *sh = task_share(co, t);
    struct squeue *sq = share_squeue(co, sh, t->tt);
    struct tqueue *q = &sq->q[t->kind][t->prio];
    if (t->state != TS_QUEUED) /* a task put back after a failed send stays queued */
        task_set_state(t, TS_QUEUED);
    heap_push(&q->h, t, 0);
    q->cost += t->cost;
    if (front)
        list_push_front(&q->fifo, &t->qnode);
    else
        list_push_back(&q->fifo, &t->qnode);
    t->sq = sq;
    if (sq->queued++ == 0)
        share_activate(co, t->tt, sq);
    sh->queued++;
    sh->queued_bytes += t->body_len;
    tt->qn[t->kind][t->prio]++;
    tt->queued++;
    co->queued_total++;
    co->queued_bytes += t->body_len;
    if (t->vs)
        list_push_back(&co->vwait, &t->vnode);
}

void task_dequeue(struct coord *co, struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    struct squeue *sq = t->sq;
    struct tqueue *q = &sq->q[t->kind][t->prio];
    heap_remove(&q->h, t, 0);
    q->cost -= t->cost;
    list_remove(&t->qnode);
    list_remove(&t->vnode);
    list_remove(&t->cnode);
    t->sq = NULL;
    sq->sh->queued--;
    sq->sh->queued_bytes -= t->body_len;
    if (--sq->queued == 0)
        share_deactivate(co, t->tt, sq);
    tt->qn[t->kind][t->prio]--;
    tt->queued--;
    co->queued_total--;
    co->queued_bytes -= t->body_len;
}

/* The level a task competes at: its class (0 realtime .. 2 background),
 * raised one class for each aging_ms it has waited, up to realtime.  Aging
 * thus lets old background work compete with fresh interactive work, and,
 * after twice aging_ms, with realtime work: no class starves. */
int task_level(const struct coord *co, const struct task *t, uint64_t now)
{
    uint64_t waited = now > t->submit_us ? now - t->submit_us : 0;
    uint64_t steps = waited / ((uint64_t)co->cfg.aging_ms * 1000);
    return steps >= t->prio ? 0 : (int)(t->prio - steps);
}

/* Within a level tasks go earliest deadline first.  A task that rose to
 * the level counts as due one aging period after it got there, unless its
 * own deadline is sooner: by its own, often far, deadline it would lose to
 * every later task with a nearer one, and rising would gain it nothing (a
 * lone background task behind a stream of interactive work with shorter
 * deadlines waited until the stream ended or its deadline passed).  A
 * fresh realtime task with a frame-sized deadline still goes before a task
 * that has only just risen. */
uint64_t task_key(const struct coord *co, const struct task *t, int level)
{
    if (level >= t->prio)
        return t->urgent_us;
    uint64_t a = (uint64_t)co->cfg.aging_ms * 1000;
    uint64_t due = t->submit_us + (uint64_t)(t->prio - level + 1) * a;
    return due < t->urgent_us ? due : t->urgent_us;
}

/* Whether a task at (level, key) goes before one at (blevel, bkey). */
static int rank_before(int level, uint64_t key, const struct task *x, int blevel, uint64_t bkey,
                       const struct task *b)
{
    return level < blevel || (level == blevel && (key < bkey || (key == bkey && x->seq < b->seq)));
}

/* A candidate for a peer: a task, where it stands within its share, and its
 * share's place in the fair order of its type. */
struct cand {
    struct task *t;
    int level;
    uint64_t key;
    const struct squeue *sq;
    double lag;
};

/* The task of sq that p should run next: the lowest level (task_level)
 * among its queues, then task_key.  Each queue offers its EDF root at the
 * queue's class, and its FIFO head (the task that waited longest, so the
 * most aged) at that task's level.  When p can run neither (requirements,
 * version, a peer that already failed it), up to LOOK_PAST more tasks of
 * that queue in arrival order are tried, so one GPU task waiting for a GPU
 * peer does not hold back the tasks behind it.  0 when p can run none. */
static int squeue_best(struct coord *co, const struct squeue *sq, struct peer_rec *p, uint64_t now,
                       struct cand *out)
{
    struct task *best = NULL;
    int best_level = PRIO_CLASSES;
    uint64_t best_key = 0;
    for (int k = 0; k < 2; k++) {
        for (int c = 0; c < PRIO_CLASSES; c++) {
            const struct tqueue *q = &sq->q[k][c];
            if (q->h.n == 0)
                continue;
            struct task *root = q->h.a[0];
            const struct list_node *n = q->fifo.next;
            /* A root that is also the FIFO head is offered once, at its
             * own level: at i == 1 it is skipped. */
            int root_level = &root->qnode == n ? task_level(co, root, now) : c;
            int fits = 0;
            for (int i = 0; i < LOOK_PAST + 2 && n != &q->fifo; i++) {
                struct task *x = i == 0 ? root : list_entry(n, struct task, qnode);
                if (i > 0)
                    n = n->next;
                if (i == 1 && x == root)
                    continue;
                if (i > 1 && fits)
                    break; /* look past only queues whose front p cannot run */
                int level = i == 0 ? root_level : task_level(co, x, now);
                if (!task_fits(co, x, p))
                    continue;
                fits = 1;
                uint64_t key = task_key(co, x, level);
                if (best && !rank_before(level, key, x, best_level, best_key, best))
                    continue;
                best = x;
                best_level = level;
                best_key = key;
            }
        }
    }
    if (!best)
        return 0;
    out->t = best;
    out->level = best_level;
    out->key = best_key;
    out->sq = sq;
    return 1;
}

/* Whether candidate a goes before b: a share before another that is
 * further ahead of its type's virtual time (share_lag); within one share,
 * by level and key. */
static int cand_before(const struct cand *a, const struct cand *b)
{
    if (a->sq->sh != b->sq->sh && a->lag != b->lag)
        return a->lag < b->lag;
    return rank_before(a->level, a->key, a->t, b->level, b->key, b->t);
}

/* The task p should run next.  In each of p's types with queued work the
 * share first in the type's fair order (share.c) offers its best task for
 * p (squeue_best); when p can run none of its tasks, the next shares of
 * the type's heap, up to SHARE_LOOK, are tried and the lowest tag among
 * those with a task for p wins.  Across p's types a share behind its
 * type's virtual time goes first (share_lag), and one share's tasks by
 * level and key.  That bounds the work to O(types of p * LOOK_PAST) when
 * the first share has work p can run. */
struct task *next_for_peer(struct coord *co, struct peer_rec *p, uint64_t now)
{
    struct cand best = {NULL, 0, 0, NULL, 0};
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &co->types[__builtin_ctz(m)];
        if (tt->queued == 0)
            continue;
        struct cand tb = {NULL, 0, 0, NULL, 0}, c;
        uint32_t look = tt->nsq < SHARE_LOOK ? tt->nsq : SHARE_LOOK;
        for (uint32_t j = 0; j < look; j++) {
            const struct squeue *sq = tt->sq[j];
            if (tb.t && !(sq->tag < tb.sq->tag))
                continue;
            if (squeue_best(co, sq, p, now, &c))
                tb = c;
            if (j == 0 && tb.t)
                break; /* the root has the lowest tag */
        }
        if (!tb.t)
            continue;
        tb.lag = share_lag(tt, tb.sq);
        if (!best.t || cand_before(&tb, &best))
            best = tb;
    }
    return best.t;
}

/* ---- stats helpers -------------------------------------------------------------- */

void ewma(double *v, double sample)
{
    *v = *v > 0 ? *v * 0.9 + sample * 0.1 : sample;
}

void ewmaf(float *v, double sample)
{
    *v = *v > 0 ? (float)(*v * 0.9 + sample * 0.1) : (float)sample;
}

/* Recomputes a type's attempt-latency quantiles; rotates the windows. */
void type_stats_tick(struct ttype *tt, uint64_t now)
{
    if (now - tt->att_since >= WINDOW_US) {
        tt->att[1] = tt->att[0];
        hist_init(&tt->att[0]);
        tt->att_since = now;
    }
    struct hist m = tt->att[0];
    hist_merge(&m, &tt->att[1]);
    tt->att_n = m.count;
    tt->att_p50 = hist_quantile(&m, 0.50);
    tt->att_p95 = hist_quantile(&m, 0.95);
}

/* ---- task flow ------------------------------------------------------------ */

/* Sends t to p as a new attempt (a hedge when t already runs elsewhere).
 * Returns 0, or -1 when p's connection was cut because its output is full
 * (t is then untouched and still the caller's). */
int task_assign(struct coord *co, struct task *t, struct peer_rec *p, int hedge)
{
    /* Blobs the peer (probably) lacks travel just before the task. */
    for (unsigned i = 0; i < t->nblobs; i++) {
        struct blob *b = t->blobs[i];
        if (peer_has_blob(p, b->hash))
            continue;
        if (conn_send(p->conn, MSG_BLOB_DATA, 0, b->hash, PROTO_HASH_LEN, b->data, b->len) != 0) {
            conn_fail(p->conn, P2C2R_ELIMIT, "peer output over %zu bytes", co->cfg.max_output);
            return -1;
        }
        peer_mark_blob(p, b->hash);
        co->n.blobs_sent++;
    }
    if (conn_send(p->conn, MSG_ASSIGN, t->id, NULL, 0, t->body, t->body_len) != 0) {
        conn_fail(p->conn, P2C2R_ELIMIT, "peer output over %zu bytes", co->cfg.max_output);
        return -1;
    }
    struct ttype *tt = &co->types[t->tt];
    struct attempt *a = t->at[0].peer ? &t->at[1] : &t->at[0];
    assert(!a->peer && t->nlive < 2);
    uint64_t now = co->now;
    if (t->state != TS_RUNNING)
        task_set_state(t, TS_RUNNING);
    a->peer = p;
    a->start_us = now;
    a->cancelled = 0;
    a->overdue = 0;
    a->hedge = (uint8_t)hedge;
    list_push_back(&p->attempts, &a->pnode);
    if (!hedge && co->cfg.hedge)
        list_push_back(&tt->running, &a->hnode);
    t->nlive++;
    t->attempts++;
    if (!hedge)
        t->tries++;
    if (!t->first_assign_us) {
        t->first_assign_us = now;
        hist_add(&tt->h_queue, now - t->submit_us);
    }
    p->inflight++;
    co->pools[p->pool].placed++;
    peer_refresh(co, p);
    return 0;
}

/* Puts t straight on the best peer that can take it.  Returns 1 when
 * placed, 0 when no peer can take it now. */
int task_place(struct coord *co, struct task *t)
{
    struct peer_rec *p;
    while ((p = pick_peer(co, t)) != NULL)
        if (task_assign(co, t, p, 0) == 0)
            return 1;
    return 0;
}

/* Lets free peers of type ti take queued work (after a requeue). */
void type_kick(struct coord *co, int ti)
{
    struct ttype *tt = &co->types[ti];
    for (uint32_t i = tt->nfree; i-- > 0 && tt->queued;)
        if (i < tt->nfree)
            dispatch_peer(co, tt->free[i]);
}

/* t avoids the peers of this group from now on (unless no other peer
 * could run it): every connection of a key, or keys the operator grouped,
 * stand or fall together. */
void task_exclude(struct task *t, uint32_t group)
{
    if (task_excludes(t, group))
        return;
    if (t->nexcl == EXCL_MAX)
        memmove(t->excl, t->excl + 1, (EXCL_MAX - 1) * sizeof(t->excl[0])), t->nexcl--;
    t->excl[t->nexcl++] = group;
}

/* Sends a failed or lost t to a peer outside failed_group (0: any), or back
 * to its queue's front. */
void task_retry(struct coord *co, struct task *t, uint32_t failed_group)
{
    if (failed_group)
        task_exclude(t, failed_group);
    co->n.retries++;
    co->types[t->tt].retries++;
    if (!task_place(co, t))
        task_enqueue(co, t, 1);
}

/* Fills p's free slots from the queues of the types it serves. */
void dispatch_peer(struct coord *co, struct peer_rec *p)
{
    uint64_t now = co->now;
    /* Checks reserved for p first: nobody else may run them. */
    while (peer_can_take(p) && !list_empty(&p->checks)) {
        struct task *t = list_entry(p->checks.next, struct task, cnode);
        list_remove(&t->cnode);
        if (t->state != TS_QUEUED || !task_fits(co, t, p))
            continue;
        task_dequeue(co, t);
        if (task_assign(co, t, p, 0) != 0) {
            task_enqueue(co, t, 1);
            list_push_front(&p->checks, &t->cnode);
            return;
        }
    }
    while (peer_can_take(p)) {
        struct task *t = next_for_peer(co, p, now);
        if (!t)
            return;
        share_charge(co, t);
        task_dequeue(co, t);
        if (task_assign(co, t, p, 0) != 0) {
            task_enqueue(co, t, 1);
            return;
        }
    }
}

/* Whether any registered peer of the type could ever run a task that
 * needs r at version v.  O(peers of the type), only for tasks that name a
 * minimum version or requirements. */
int type_can_meet(const struct ttype *tt, int ti, uint32_t v, const struct proto_reqs *r)
{
    for (uint32_t i = 0; i < tt->npeers; i++)
        if (tt->peers[i]->ty[ti].version >= v && reqs_met(r, tt->peers[i]))
            return 1;
    return 0;
}

/* Expected time in us until a new task of type tt in class prio with this
 * cost, from a share of weight w whose queues of the type are own (NULL:
 * none yet), would have its result, or 0 when too little is known to say.
 * Its own run is cost x the type's time per unit + the type's dispatch
 * time; with no free peer (or requirements a free peer may not meet) it
 * also waits for its share's cost queued ahead of it, served at its share
 * of the type (w over the weights of the shares with work), plus one
 * typical running task, spread over the type's slots.  Other shares'
 * backlogs do not count: the fair order keeps them from delaying it.  See
 * docs/ARCHITECTURE.md, "Admission". */
uint64_t admission_estimate(const struct ttype *tt, const struct squeue *own, double w, int kind, int prio,
                            uint64_t cost, struct admit_est *e)
{
    double rate = urate_win_get(&tt->rate);
    int known = tt->rate.n >= STAT_MIN_SAMPLES && rate > 0;
    if (pools_mixed(tt)) /* the fastest pool's rate: a pricier pool may meet the deadline */
        rate = pools_type_rate(tt, &known);
    e->us = e->run_us = 0;
    e->rate = rate;
    e->ahead = 0;
    if (!known)
        return 0;
    double run = (double)cost * rate + urate_win_get(&tt->disp);
    double est = run;
    if (tt->nfree == 0 || kind != 0) {
        uint64_t ahead_cost = 0;
        for (int k = 0; own && k < 2; k++)
            for (int c = 0; c <= prio; c++) {
                e->ahead += own->q[k][c].h.n;
                ahead_cost += own->q[k][c].cost;
            }
        double wsum = tt->wsum + (own && own->hidx != NO_IDX ? 0 : w);
        double part = w > 0 && wsum > w ? w / wsum : 1;
        double slots = tt->slots_total ? (double)tt->slots_total : 1;
        est += ((double)ahead_cost / part + tt->cost_ewma) * rate / slots;
    }
    /* Saturates far beyond any deadline (at most 2^32 - 1 ms). */
    e->run_us = run < 1e18 ? (uint64_t)run : (uint64_t)1e18;
    e->us = est < 1e18 ? (uint64_t)est : (uint64_t)1e18;
    if (e->us == 0)
        e->us = 1; /* known, and tiny */
    return e->us;
}

int admission_decide(struct ttype *tt, uint64_t est_us, uint64_t dl_us, uint64_t now)
{
    if (est_us <= dl_us) {
        tt->refused_row = 0;
        return 1;
    }
    if (tt->refused_row >= PROBE_AFTER_REFUSALS ||
        (tt->refused_row > 0 && now - tt->refused_since >= PROBE_AFTER_US)) {
        /* Everything was refused for a while: nothing ran, so nothing could
         * show that the estimate is stale.  This one runs and teaches. */
        tt->refused_row = 0;
        tt->probes++;
        return 2;
    }
    if (tt->refused_row++ == 0)
        tt->refused_since = now;
    return 0;
}

/* Starts a second copy of each first attempt that has run past its type's
 * p95 attempt time, on another free peer.  Only spare capacity is used: a
 * type with no free peer hedges nothing.  O(hedged) per sweep: the running
 * list is in start order. */
void sched_sweep_hedges(struct coord *co, uint64_t now)
{
    if (!co->cfg.hedge)
        return;
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        if (tt->att_n < STAT_MIN_SAMPLES || tt->nfree == 0)
            continue;
        uint64_t after = tt->att_p95 > co->cfg.hedge_min_us ? tt->att_p95 : co->cfg.hedge_min_us;
        /* An attempt no free peer can take now (a task with requirements,
         * say) stays where it is and the walk goes on to younger ones, so it
         * cannot hold back the hedging of the rest of its type.  Passing
         * over at most HEDGE_SKIP_MAX of them bounds the sweep's cost. */
        struct list_node *n = tt->running.next;
        uint32_t skipped = 0;
        while (n != &tt->running && tt->nfree && skipped < HEDGE_SKIP_MAX) {
            struct attempt *a = list_entry(n, struct attempt, hnode);
            if (now - a->start_us < after)
                break;
            n = n->next;
            struct task *t = a->t;
            if (t->state != TS_RUNNING || t->nlive != 1 || t->hedged || (!t->renter && !t->job)) {
                list_remove(&a->hnode);
                continue;
            }
            struct peer_rec *p = pick_peer(co, t);
            if (!p) {
                skipped++;
                continue;
            }
            if (task_assign(co, t, p, 1) != 0)
                break;
            list_remove(&a->hnode);
            t->hedged = 1;
            co->n.hedges++;
            tt->hedges++;
        }
    }
}
