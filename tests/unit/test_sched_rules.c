/* test_sched_rules.c - unit tests of the scheduler's rules (src/coord/sched.c), the task and peer
 * state machines (task.c, peers.c) and the task heaps (task.c), on a struct coord built in
 * memory: no loop, no socket, no thread.  The clock is fake: every function under test takes
 * `now` or reads co->now, and the tests set it; nothing sleeps or reads the real time.
 *
 * Covered: which task a free peer runs next (class order, EDF within a class and its tie by
 * submit order, aging at its exact boundaries and a risen task's place in EDF order, the fair
 * order between shares (weights 1:2, cost, a flood against a newcomer, no credit for idling,
 * the next share when a peer can run nothing of the first, across types), each share's part of
 * the queue, looking past tasks the peer cannot run and how
 * deep, peers a retried task avoids); peer trust and score for hand-computed inputs; which peer
 * a new task goes to (the best of three or fewer, distinct sampling among more, the fallback
 * scan for tasks with requirements); admission by the task's own cost (the estimate, robust time
 * per unit, probes after refusals); every pair of task and peer
 * states; both heaps against a sorted model under random inserts and removals; and measured
 * claims (claims.c): capability clamps, exec_us bounded by the measured duration, the earned
 * tasks-held limit (growth per answer, halving per stall, down to 1), when an attempt is
 * overdue, and the stall sweep on the fake clock. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/util.h"
#include "coord/coord_int.h"

#define T0 1000000000ull /* the fake clock's start: 1000 s, in us */
#define MS 1000ull
#define MAX_FX_PEERS 64

/* ---- fixture ------------------------------------------------------------------ */

/* A coordinator as coord_new leaves it, minus the loop, sockets and cache;
 * the peers it makes are remembered so fx_fini can free them. */
struct fx {
    struct coord *co;
    struct peer_rec *peers[MAX_FX_PEERS];
    uint32_t np;
};

static void fx_init(struct fx *f)
{
    memset(f, 0, sizeof(*f));
    struct coord *co = f->co = xcalloc(1, sizeof(*co));
    coord_config_defaults(&co->cfg);
    co->cfg.aging_ms = 500;
    co->rng.s = 0x5eed; /* fixed: pick_peer's samples are the same every run */
    co->now = T0;
    coord_state_init(co);
}

static int fx_type(struct fx *f, const char *name)
{
    int ti = type_intern(f->co, (const uint8_t *)name, strlen(name));
    CHECK(ti >= 0);
    return ti;
}

/* A registered peer of the types in mask (all at version), ready and with
 * slots free: its connection is a bare struct conn in CS_READY.  In pool at
 * price cost, as peer_on_register sets them before the peer joins its types. */
static struct peer_rec *fx_peer_in(struct fx *f, uint32_t mask, uint32_t version, uint32_t slots, int pool,
                                   uint32_t cost)
{
    struct coord *co = f->co;
    if (f->np == MAX_FX_PEERS)
        abort();
    struct conn *c = xcalloc(1, sizeof(*c));
    c->co = co;
    c->state = CS_READY;
    struct peer_rec *p = xcalloc(1, sizeof(*p));
    p->id = ++co->next_peer_id;
    p->group = p->id; /* one peer, one group, as a key of its own */
    p->conn = c;
    p->cores = 4;
    p->mem = 1ull << 30;
    p->state = PS_OK;
    p->slots = slots;
    p->held_limit = slots; /* as if it had earned them all: see test_held_limit */
    p->pool = (uint8_t)pool;
    p->cost = cost;
    list_init(&p->attempts);
    list_init(&p->checks);
    list_init(&p->qnode);
    list_push_back(&co->peers, &p->node);
    co->npeers++;
    c->peer = p;
    pools_peer_join(co, p);
    for (uint32_t m = mask; m; m &= m - 1)
        peer_join_type(co, p, __builtin_ctz(m), version, PROTO_TYPE_F_DETERMINISTIC);
    peer_refresh(co, p);
    f->peers[f->np++] = p;
    return p;
}

/* The default share's queues of type ti (NULL before its first task), and
 * one queue of them. */
static const struct squeue *fx_own(struct fx *f, int ti)
{
    return f->co->share_default->sq[ti];
}

static struct tqueue *fx_q(struct fx *f, int ti, int kind, int prio)
{
    return &share_squeue(f->co, f->co->share_default, ti)->q[kind][prio];
}

static struct peer_rec *fx_peer(struct fx *f, uint32_t mask, uint32_t version, uint32_t slots)
{
    return fx_peer_in(f, mask, version, slots, PROTO_POOL_VOLUNTEER, 0);
}

/* Sets p's in-flight count and brings the free sets in line. */
static void fx_inflight(struct fx *f, struct peer_rec *p, uint32_t n)
{
    p->inflight = n;
    peer_refresh(f->co, p);
}

/* A task of type ti submitted now (co->now) with a deadline dl_ms later,
 * not yet queued. */
static struct task *fx_task(struct fx *f, int ti, int prio, int kind, uint64_t dl_ms)
{
    struct coord *co = f->co;
    struct task *t = task_alloc(co);
    t->tt = (uint8_t)ti;
    t->prio = (uint8_t)prio;
    t->kind = (uint8_t)kind;
    t->seq = ++co->seq;
    t->submit_us = co->now;
    t->deadline_us = co->now + dl_ms * MS;
    t->urgent_us = t->deadline_us;
    return t;
}

static struct task *fx_queued(struct fx *f, int ti, int prio, int kind, uint64_t dl_ms)
{
    struct task *t = fx_task(f, ti, prio, kind, dl_ms);
    task_enqueue(f->co, t, 0);
    return t;
}

/* What dispatch does with the task a peer was given, minus the ASSIGN. */
static void fx_take(struct fx *f, struct task *t)
{
    task_dequeue(f->co, t);
    task_free(f->co, t);
}

/* Frees everything: queued tasks through task_free, then what coord_free
 * frees (type arrays, heaps, the slab), then the fake peers. */
static void fx_fini(struct fx *f)
{
    struct coord *co = f->co;
    struct task *t;
    for (uint32_t i = 0; i < co->ntypes; i++)
        while ((t = type_first_queued(co, (int)i)) != NULL)
            fx_take(f, t);
    CHECK_EQU(co->queued_total, 0);
    CHECK_EQU(co->queued_bytes, 0);
    coord_state_free(co);
    for (uint32_t i = 0; i < f->np; i++) {
        free(f->peers[i]->conn);
        free(f->peers[i]->has);
        free(f->peers[i]);
    }
    free(co);
}

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b); }

#define CHECK_NEAR(a, b)                                                                    \
    do {                                                                                    \
        double cn_a_ = (a), cn_b_ = (b);                                                    \
        if (!CHECK(near(cn_a_, cn_b_)))                                                     \
            fprintf(stderr, "  %s = %.17g, expected %.17g\n", #a, cn_a_, cn_b_);            \
    } while (0)

/* ---- 1. next_for_peer ------------------------------------------------------------ */

/* Fresh tasks go by class, whatever their deadlines; the queue of tasks
 * with requirements competes by the same rule. */
static void test_class_order(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);
    uint64_t now = f.co->now;
    CHECK(next_for_peer(f.co, p, now) == NULL);
    struct task *bg = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 10);
    struct task *ia = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 50);
    struct task *rt = fx_queued(&f, ti, PRIO_REALTIME, 0, 100);
    struct task *rq = fx_task(&f, ti, PRIO_INTERACTIVE, 1, 20);
    rq->reqs.min_cores = 2; /* p has 4 */
    task_enqueue(f.co, rq, 0);
    CHECK_EQU(f.co->types[ti].queued, 4);
    CHECK(next_for_peer(f.co, p, now) == rt);
    fx_take(&f, rt);
    /* Two interactive tasks, one in each kind's queue: EDF across them. */
    CHECK(next_for_peer(f.co, p, now) == rq);
    fx_take(&f, rq);
    CHECK(next_for_peer(f.co, p, now) == ia);
    fx_take(&f, ia);
    CHECK(next_for_peer(f.co, p, now) == bg);
    fx_take(&f, bg);
    CHECK(next_for_peer(f.co, p, now) == NULL);
    CHECK_EQU(f.co->types[ti].queued, 0);
    CHECK_EQU(f.co->tasks_live, 0);

    /* A peer of two types sees both types' queues. */
    int tu = fx_type(&f, "u");
    struct peer_rec *both = fx_peer(&f, 1u << ti | 1u << tu, 1, 4);
    struct task *a = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 5);
    struct task *b = fx_queued(&f, tu, PRIO_INTERACTIVE, 0, 500);
    CHECK(next_for_peer(f.co, both, now) == b);
    CHECK(next_for_peer(f.co, p, now) == a); /* p does not run type u */
    fx_fini(&f);
}

/* Within a class: earliest urgent_us first, ties by submit order (seq),
 * whatever the order of arrival. */
static void test_edf(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);
    uint64_t now = f.co->now;
    struct task *a = fx_queued(&f, ti, PRIO_REALTIME, 0, 30);
    struct task *b = fx_queued(&f, ti, PRIO_REALTIME, 0, 10);
    struct task *c = fx_queued(&f, ti, PRIO_REALTIME, 0, 20);
    CHECK(next_for_peer(f.co, p, now) == b);
    fx_take(&f, b);
    CHECK(next_for_peer(f.co, p, now) == c);
    fx_take(&f, c);
    CHECK(next_for_peer(f.co, p, now) == a);
    fx_take(&f, a);

    /* Equal deadlines: the lower seq first, though it arrived second. */
    struct task *x = fx_task(&f, ti, PRIO_INTERACTIVE, 0, 40);
    struct task *y = fx_task(&f, ti, PRIO_INTERACTIVE, 0, 40);
    x->seq = 7;
    y->seq = 3;
    task_enqueue(f.co, x, 0);
    task_enqueue(f.co, y, 0);
    CHECK(next_for_peer(f.co, p, now) == y);
    fx_take(&f, y);
    CHECK(next_for_peer(f.co, p, now) == x);
    fx_take(&f, x);

    /* The queue orders by urgent_us (lowered by a coalesced task), not by
     * the task's own deadline. */
    struct task *own = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 10);
    struct task *lifted = fx_task(&f, ti, PRIO_INTERACTIVE, 0, 90);
    lifted->urgent_us = now + 5 * MS;
    task_enqueue(f.co, lifted, 0);
    CHECK(next_for_peer(f.co, p, now) == lifted);
    fx_take(&f, lifted);
    CHECK(next_for_peer(f.co, p, now) == own);
    fx_fini(&f);
}

/* A task rises one class per aging_ms waited (500 ms here): a background
 * task competes at interactive level after 500 ms and at realtime level,
 * by deadline, after 1000 ms. */
static void test_aging(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);

    struct task *bg = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 60000); /* due T0 + 60 s */
    CHECK_EQ(task_level(co, bg, T0), 2);
    CHECK_EQ(task_level(co, bg, T0 - 1), 2); /* a clock before its submit: no wait */
    CHECK_EQ(task_level(co, bg, T0 + 500 * MS - 1), 2);
    CHECK_EQ(task_level(co, bg, T0 + 500 * MS), 1);
    CHECK_EQ(task_level(co, bg, T0 + 1000 * MS - 1), 1);
    CHECK_EQ(task_level(co, bg, T0 + 1000 * MS), 0);
    CHECK_EQ(task_level(co, bg, T0 + 3600000 * MS), 0);

    /* Interactive level at 500 ms: ties in level go by deadline. */
    co->now = T0 + 400 * MS;
    struct task *ia_late = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 120000);
    CHECK_EQ(task_level(co, ia_late, T0 + 500 * MS), 1);
    CHECK(next_for_peer(co, p, T0 + 500 * MS - 1) == ia_late);
    CHECK(next_for_peer(co, p, T0 + 500 * MS) == bg); /* due before ia_late */
    co->now = T0 + 500 * MS;
    struct task *ia_early = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 100);
    CHECK(next_for_peer(co, p, T0 + 500 * MS) == ia_early);
    fx_take(&f, ia_early);
    fx_take(&f, ia_late);

    /* Realtime level at 1000 ms, by deadline: a fresh realtime task due
     * after bg goes after it, one with a frame-sized deadline before. */
    co->now = T0 + 900 * MS;
    struct task *rt_late = fx_queued(&f, ti, PRIO_REALTIME, 0, 120000);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS - 1) == rt_late);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS) == bg);
    co->now = T0 + 1000 * MS;
    struct task *rt_frame = fx_queued(&f, ti, PRIO_REALTIME, 0, 16);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS) == rt_frame);
    fx_take(&f, rt_frame);

    /* The FIFO head carries the aging: a fresh background task with an
     * earlier deadline is the queue's EDF root, offered at class 2 only,
     * while bg behind it still competes at level 0. */
    struct task *bg_new = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 1000);
    CHECK(fx_q(&f, ti, 0, PRIO_BACKGROUND)->h.a[0] == bg_new);
    CHECK_EQ(task_level(co, bg_new, T0 + 1000 * MS), 2);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS) == bg);
    fx_take(&f, bg);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS) == rt_late);
    fx_take(&f, rt_late);
    CHECK(next_for_peer(co, p, T0 + 1000 * MS) == bg_new);

    /* An interactive task reaches realtime level after one step. */
    struct task *ia = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 100);
    CHECK_EQ(task_level(co, ia, co->now + 500 * MS - 1), 1);
    CHECK_EQ(task_level(co, ia, co->now + 500 * MS), 0);
    struct task *rt = fx_queued(&f, ti, PRIO_REALTIME, 0, 100);
    CHECK_EQ(task_level(co, rt, co->now + 3600000 * MS), 0);

    fx_take(&f, bg_new);
    fx_take(&f, ia);
    fx_take(&f, rt);

    /* A risen task really rises: a background task with the default 60 s
     * deadline, then a stream of interactive tasks with 5 s deadlines
     * arriving after it.  Once it has risen it goes before every task
     * that arrived more than one aging period after it, though their
     * deadlines are nearer (by its own deadline it would wait for the
     * stream, and did: the lone background task). */
    uint64_t t1 = co->now = T0 + 10000 * MS;
    struct task *lone = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 60000);
    struct task *stream[8];
    for (int i = 0; i < 8; i++) {
        co->now = t1 + 600 * MS + (uint64_t)i * 100 * MS;
        stream[i] = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 5000);
    }
    /* At t1 + 1000 ms lone reached level 0, the first stream tasks level
     * 0 too (by 500 ms of waiting): lone counts as due at t1 + 1500 ms,
     * stream[0] at t1 + 600 + 1000 ms. */
    CHECK_EQ(task_level(co, lone, t1 + 1000 * MS), 0);
    CHECK_EQU(task_key(co, lone, 0), t1 + 1500 * MS);
    CHECK_EQU(task_key(co, stream[0], 0), t1 + 1600 * MS);
    CHECK_EQU(task_key(co, stream[0], 1), stream[0]->deadline_us); /* at its class: its deadline */
    /* One step up (level 1) it already goes before them: due one aging
     * period after it rose (t1 + 1000 ms), not at its own deadline. */
    CHECK_EQ(task_level(co, lone, t1 + 1000 * MS - 1), 1);
    CHECK_EQU(task_key(co, lone, 1), t1 + 1000 * MS);
    CHECK(next_for_peer(co, p, t1 + 1000 * MS - 1) == lone);
    CHECK(next_for_peer(co, p, t1 + 1400 * MS) == lone);
    fx_take(&f, lone);
    /* A fresh realtime task with a frame-sized deadline (due t1 + 1716 ms)
     * goes after the tasks that rose long enough ago (stream[i] is due
     * t1 + 1600 + 100 i ms at level 0) and before those that rose since. */
    co->now = t1 + 1700 * MS;
    struct task *frame = fx_queued(&f, ti, PRIO_REALTIME, 0, 16);
    struct task *want[] = {stream[0], stream[1], frame, stream[2]};
    for (int i = 0; i < 4; i++) {
        CHECK(next_for_peer(co, p, t1 + 1700 * MS) == want[i]);
        fx_take(&f, want[i]);
    }
    for (int i = 3; i < 8; i++)
        fx_take(&f, stream[i]);

    /* --aging 1: the level falls every millisecond. */
    co->cfg.aging_ms = 1;
    struct task *bg1 = fx_queued(&f, ti, PRIO_BACKGROUND, 0, 100);
    CHECK_EQ(task_level(co, bg1, co->now + 999), 2);
    CHECK_EQ(task_level(co, bg1, co->now + 1000), 1);
    CHECK_EQ(task_level(co, bg1, co->now + 2000), 0);
    fx_fini(&f);
}

/* ---- 1b. fair shares (share.c) ------------------------------------------------------ */

/* A task of share sh (a reference is taken), queued now. */
static struct task *fx_queued_in(struct fx *f, struct share *sh, int ti, int prio, uint64_t dl_ms, uint64_t cost)
{
    struct task *t = fx_task(f, ti, prio, 0, dl_ms);
    t->share = share_ref(sh);
    t->cost = cost;
    task_enqueue(f->co, t, 0);
    return t;
}

/* What dispatch_peer does with the task p runs next: charge its share,
 * dequeue it (here: free it).  Returns its share, NULL when none. */
static struct share *fx_dispatch(struct fx *f, struct peer_rec *p)
{
    struct task *t = next_for_peer(f->co, p, f->co->now);
    if (!t)
        return NULL;
    struct share *sh = task_share(f->co, t);
    share_charge(f->co, t);
    fx_take(f, t);
    return sh;
}

/* Runs n dispatches to p: how many went to a's tasks and how many to b's. */
static void fx_dispatch_count(struct fx *f, struct peer_rec *p, int n, const struct share *a, const struct share *b,
                              int *na, int *nb)
{
    *na = *nb = 0;
    for (int i = 0; i < n; i++) {
        struct share *sh = fx_dispatch(f, p);
        *na += sh == a;
        *nb += sh == b;
    }
}

/* Two shares with weights 1 and 2, both backlogged with tasks of equal
 * cost: B gets two dispatches for each of A's, in every prefix of the
 * order (within one task of the exact ratio), whatever the classes (A's
 * are realtime, B's background); by cost, not by count, when costs differ. */
static void test_fair_weights(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 1);
    struct share *a = share_get(co, "tok:a", 5, 1.0);
    struct share *b = share_get(co, "tok:b", 5, 2.0);
    CHECK_EQU(co->nshares, 2);
    for (int i = 0; i < 60; i++)
        fx_queued_in(&f, a, ti, PRIO_REALTIME, 100, 10);
    for (int i = 0; i < 60; i++)
        fx_queued_in(&f, b, ti, PRIO_BACKGROUND, 60000, 10);
    CHECK_EQU(a->queued, 60);
    CHECK_EQU(co->types[ti].nsq, 2);
    CHECK_NEAR(co->types[ti].wsum, 3.0);
    int na = 0, nb = 0, worst = 0;
    for (int i = 0; i < 60; i++) {
        struct share *sh = fx_dispatch(&f, p);
        na += sh == a;
        nb += sh == b;
        int d = nb - 2 * na;
        d = d < 0 ? -d : d;
        worst = d > worst ? d : worst;
    }
    CHECK_EQ(na, 20);
    CHECK_EQ(nb, 40);
    CHECK(worst <= 2);
    fx_fini(&f);
    fx_init(&f);
    co = f.co;
    ti = fx_type(&f, "t");
    p = fx_peer(&f, 1u << ti, 1, 1);
    a = share_get(co, "tok:a", 5, 1.0);
    b = share_get(co, "tok:b", 5, 1.0);
    /* Equal weights, A's tasks cost 3 times B's: B runs 3 tasks per A's. */
    for (int i = 0; i < 40; i++) {
        fx_queued_in(&f, a, ti, PRIO_INTERACTIVE, 100, 30);
        fx_queued_in(&f, b, ti, PRIO_INTERACTIVE, 100, 10);
    }
    fx_dispatch_count(&f, p, 40, a, b, &na, &nb);
    CHECK_EQ(na, 10);
    CHECK_EQ(nb, 30);
    share_put(co, a);
    share_put(co, b);
    CHECK_EQU(co->nshares, 2); /* their queued tasks still hold them */
    fx_fini(&f);
}

/* Writes an accounts file at path: account "alpha" (token "alpha-token")
 * in tier "w" of weight w. */
static void write_weight_file(const char *path, double w)
{
    uint8_t h[ACCT_HASH_LEN];
    char hx[2 * ACCT_HASH_LEN + 1];
    acct_token_hash("alpha-token", 11, h);
    hex_encode(h, ACCT_HASH_LEN, hx);
    FILE *fp = fopen(path, "w");
    CHECK(fp != NULL);
    if (!fp)
        return;
    fprintf(fp, "[tier w]\nbase = unlimited\nweight = %g\n\n[account alpha]\nrole = renter\n"
                "token_hash = blake2b:%s\ntier = w\n", w, hx);
    fclose(fp);
}

/* A SIGHUP that changes a tier's weight changes the weight of the share
 * its accounts already have (and the type's sum of weights), not only at
 * their next login: the order between shares follows at once. */
static void test_reload_weight(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    char path[] = "/tmp/p2c2r-weight-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    write_weight_file(path, 1.0);
    co->cfg.accounts_file = path;
    char err[256];
    CHECK_EQ(account_init(co, err, sizeof(err)), 0);
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 1);
    struct share *a = share_get(co, "acct:alpha", 10, 1.0);
    struct share *b = share_get(co, "conn:2", 6, 1.0);
    for (int i = 0; i < 40; i++) {
        fx_queued_in(&f, a, ti, PRIO_INTERACTIVE, 100, 10);
        fx_queued_in(&f, b, ti, PRIO_INTERACTIVE, 100, 10);
    }
    CHECK_NEAR(co->types[ti].wsum, 2.0);
    write_weight_file(path, 3.0);
    account_reload(co);
    CHECK_NEAR(a->weight, 3.0);
    CHECK_NEAR(b->weight, 1.0);
    CHECK_NEAR(co->types[ti].wsum, 4.0);
    int na, nb;
    fx_dispatch_count(&f, p, 40, a, b, &na, &nb);
    CHECK_EQ(na, 30);
    CHECK_EQ(nb, 10);
    share_put(co, a);
    share_put(co, b);
    account_fini(co);
    unlink(path);
    fx_fini(&f);
}

/* A flood cannot delay another share beyond the task running: share A
 * has 1,000 realtime tasks queued and has been served for a while; share B
 * submits a background task and then a realtime one.  B's realtime task
 * runs next and its background task right after one more of A's (the
 * class order holds within B).  A share does not save up by idling: after
 * B was idle, its tag starts at the type's virtual time, not below. */
static void test_fair_flood(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct ttype *tt = &co->types[ti];
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 1);
    struct share *a = share_get(co, "tok:a", 5, 1.0);
    struct share *b = share_get(co, "tok:b", 5, 1.0);
    for (int i = 0; i < 1000; i++)
        fx_queued_in(&f, a, ti, PRIO_REALTIME, 16, 10);
    for (int i = 0; i < 100; i++)
        CHECK(fx_dispatch(&f, p) == a);
    CHECK_NEAR(tt->vtime, 990.0);
    CHECK_NEAR(a->sq[ti]->tag, 1000.0);
    co->now += 5 * MS;
    struct task *bbg = fx_queued_in(&f, b, ti, PRIO_BACKGROUND, 60000, 10);
    struct task *brt = fx_queued_in(&f, b, ti, PRIO_REALTIME, 60000, 10);
    CHECK_NEAR(b->sq[ti]->tag, 990.0); /* the type's virtual time */
    CHECK(next_for_peer(co, p, co->now) == brt);
    CHECK(fx_dispatch(&f, p) == b);
    CHECK(fx_dispatch(&f, p) == a); /* tags 1000 and 1000: A is the older share */
    CHECK(next_for_peer(co, p, co->now) == bbg);
    CHECK(fx_dispatch(&f, p) == b);
    CHECK_EQU(b->sq[ti]->hidx, NO_IDX);
    CHECK_EQU(tt->nsq, 1);
    CHECK_NEAR(tt->wsum, 1.0);
    /* B idle while A runs 50 more: B comes back at the virtual time. */
    for (int i = 0; i < 50; i++)
        CHECK(fx_dispatch(&f, p) == a);
    fx_queued_in(&f, b, ti, PRIO_BACKGROUND, 60000, 10);
    CHECK_NEAR(b->sq[ti]->tag, tt->vtime);
    CHECK(fx_dispatch(&f, p) == b);
    CHECK(fx_dispatch(&f, p) == a);
    /* Everything drained: a new busy period starts the clock at 0. */
    while (fx_dispatch(&f, p))
        ;
    CHECK_EQU(tt->nsq, 0);
    CHECK_NEAR(tt->vtime, 0.0);
    CHECK_EQU(a->queued + b->queued, 0);
    share_put(co, a);
    share_put(co, b);
    CHECK_EQU(co->nshares, 0);
    fx_fini(&f);
}

/* When the first share's tasks are all for other peers (a GPU, here), a
 * peer takes the next share's work; across types the share behind its
 * type's virtual time goes first, and within one share the class. */
static void test_fair_look(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t"), tu = fx_type(&f, "u");
    struct peer_rec *p = fx_peer(&f, 1u << ti | 1u << tu, 1, 1);
    struct share *a = share_get(co, "tok:a", 5, 1.0);
    struct share *b = share_get(co, "tok:b", 5, 1.0);
    struct task *g = fx_task(&f, ti, PRIO_REALTIME, 1, 100);
    g->reqs.gpu = 1;
    g->share = share_ref(a);
    task_enqueue(co, g, 0);
    struct task *bt = fx_queued_in(&f, b, ti, PRIO_BACKGROUND, 100, 10);
    CHECK(co->types[ti].sq[0]->sh == a);
    CHECK(next_for_peer(co, p, co->now) == bt);
    fx_take(&f, bt);
    fx_take(&f, g);
    /* One share, two types: its realtime task of u before its background
     * task of t, though t's tag is lower. */
    struct task *x = fx_queued_in(&f, a, ti, PRIO_BACKGROUND, 100, 10);
    struct task *y = fx_queued_in(&f, a, tu, PRIO_REALTIME, 100, 10);
    a->sq[tu]->tag = 50;
    CHECK(next_for_peer(co, p, co->now) == y);
    fx_take(&f, y);
    /* Two shares, two types: the one further behind its type's clock. */
    struct task *z = fx_queued_in(&f, b, tu, PRIO_REALTIME, 100, 10);
    b->sq[tu]->tag = 50;
    co->types[tu].vtime = 0;
    CHECK(next_for_peer(co, p, co->now) == x);
    b->sq[tu]->tag = 0;
    a->sq[ti]->tag = 30;
    co->types[ti].vtime = 0;
    CHECK(next_for_peer(co, p, co->now) == z);
    share_put(co, a);
    share_put(co, b);
    fx_fini(&f);
}

/* Shares by key, refcounted; one share's part of the queue is half of what
 * the others leave free of --queue-max and of the byte cap. */
static void test_share_queue(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    co->cfg.queue_max = 100;
    co->cfg.queue_max_bytes = 1000;
    int ti = fx_type(&f, "t");
    struct share *a = share_get(co, "tok:a", 5, 1.0);
    CHECK(share_get(co, "tok:a", 5, 1.0) == a);
    CHECK_EQU(a->refs, 2);
    share_put(co, a);
    struct share *b = share_get(co, "tok:b", 5, 2.0);
    CHECK(a != b && b->weight == 2.0);
    CHECK_EQU(co->nshares, 2);
    int n = 0;
    while (!share_queue_full(co, a, 1) && n < 1000) {
        struct task *t = fx_task(&f, ti, PRIO_BACKGROUND, 0, 100);
        t->share = share_ref(a);
        t->body_len = 1;
        task_enqueue(co, t, 0);
        n++;
    }
    CHECK_EQ(n, 50); /* half of 100 */
    n = 0;
    while (!share_queue_full(co, b, 1) && n < 1000) {
        fx_queued_in(&f, b, ti, PRIO_BACKGROUND, 100, 1);
        n++;
    }
    CHECK_EQ(n, 25); /* half of the 50 A leaves */
    CHECK(co->queued_total < co->cfg.queue_max);
    CHECK_EQU(a->queued_bytes, 50);
    /* Bytes: A holds 50 of 1000, so B may add up to 475. */
    co->cfg.queue_max = 1000;
    CHECK(!share_queue_full(co, b, 475));
    CHECK(share_queue_full(co, b, 476));
    /* A queue of one task is its first share's. */
    struct fx g;
    fx_init(&g);
    g.co->cfg.queue_max = 1;
    struct share *c = share_get(g.co, "conn:1", 6, 1.0);
    CHECK(!share_queue_full(g.co, c, 10));
    share_put(g.co, c);
    CHECK_EQU(g.co->nshares, 0);
    fx_fini(&g);
    share_put(co, a);
    share_put(co, b);
    fx_fini(&f);
}

/* Queues n tasks of type ti that p cannot run (needing a GPU), then one it
 * can (needing 2 cores), all interactive with requirements, due in order of
 * arrival; returns the runnable one. */
static struct task *queue_behind_gpu(struct fx *f, int ti, int n)
{
    for (int i = 0; i < n; i++) {
        struct task *g = fx_task(f, ti, PRIO_INTERACTIVE, 1, 100 + (uint64_t)i);
        g->reqs.gpu = 1;
        task_enqueue(f->co, g, 0);
    }
    struct task *c = fx_task(f, ti, PRIO_INTERACTIVE, 1, 100 + (uint64_t)n);
    c->reqs.min_cores = 2;
    task_enqueue(f->co, c, 0);
    return c;
}

/* A peer that cannot run the front of a queue gets a task behind it, up to
 * LOOK_PAST (16) tasks past the front, and no deeper. */
static void test_look_past(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *cpu = fx_peer(&f, 1u << ti, 2, 4);
    uint64_t now = co->now;
    CHECK_EQ(LOOK_PAST, 16);

    /* 16 GPU tasks in front: the 17th task is the last one looked at. */
    struct task *c = queue_behind_gpu(&f, ti, LOOK_PAST);
    struct task *front = fx_q(&f, ti, 1, PRIO_INTERACTIVE)->h.a[0];
    CHECK(front->reqs.gpu && front != c);
    CHECK(next_for_peer(co, cpu, now) == c);
    struct peer_rec *gpu = fx_peer(&f, 1u << ti, 2, 4);
    gpu->gpu = 1;
    CHECK(next_for_peer(co, gpu, now) == front);
    fx_fini(&f);

    /* 17 in front: out of reach. */
    fx_init(&f);
    co = f.co;
    ti = fx_type(&f, "t");
    cpu = fx_peer(&f, 1u << ti, 2, 4);
    c = queue_behind_gpu(&f, ti, LOOK_PAST + 1);
    CHECK(next_for_peer(co, cpu, now) == NULL);
    /* A runnable task anywhere in the queue is seen once it is the EDF root. */
    task_dequeue(co, c);
    c->urgent_us = now;
    task_enqueue(co, c, 0);
    CHECK(next_for_peer(co, cpu, now) == c);
    fx_fini(&f);

    /* min_version: a peer at version 2 passes over a task that needs 3. */
    fx_init(&f);
    co = f.co;
    ti = fx_type(&f, "t");
    struct peer_rec *v2 = fx_peer(&f, 1u << ti, 2, 4);
    struct peer_rec *v3 = fx_peer(&f, 1u << ti, 3, 4);
    struct task *need3 = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    need3->min_version = 3;
    task_enqueue(co, need3, 0);
    struct task *any = fx_queued(&f, ti, PRIO_REALTIME, 0, 20);
    struct task *need2 = fx_task(&f, ti, PRIO_REALTIME, 0, 30);
    need2->min_version = 2;
    task_enqueue(co, need2, 0);
    CHECK(!task_fits(co, need3, v2) && task_fits(co, need3, v3) && task_fits(co, need2, v2));
    CHECK(next_for_peer(co, v2, now) == any);
    CHECK(next_for_peer(co, v3, now) == need3);

    /* Looking past is only for queues whose front the peer cannot run:
     * when the EDF root does not fit but the FIFO head does, that is the
     * candidate, though a runnable task behind it is due earlier. */
    fx_take(&f, any);
    fx_take(&f, need2);
    fx_take(&f, need3);
    struct task *head = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 50);
    struct task *sooner = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 40);
    struct task *root = fx_task(&f, ti, PRIO_INTERACTIVE, 0, 30);
    root->min_version = 3;
    task_enqueue(co, root, 0);
    CHECK(fx_q(&f, ti, 0, PRIO_INTERACTIVE)->h.a[0] == root);
    CHECK(next_for_peer(co, v2, now) == head);
    CHECK(sooner != head);
    fx_fini(&f);
}

/* A retried task avoids the peers that failed it (t->excl) while another
 * peer of its type is there. */
static void test_excluded(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t"), tsolo = fx_type(&f, "solo");
    struct peer_rec *a = fx_peer(&f, 1u << ti | 1u << tsolo, 1, 4);
    struct peer_rec *b = fx_peer(&f, 1u << ti, 1, 4);
    uint64_t now = co->now;
    struct task *t = fx_queued(&f, ti, PRIO_REALTIME, 0, 10);
    t->excl[t->nexcl++] = a->group;
    CHECK(!task_fits(co, t, a));
    CHECK(task_fits(co, t, b));
    CHECK(next_for_peer(co, a, now) == NULL);
    CHECK(next_for_peer(co, b, now) == t);
    unsigned other = 0;
    for (int i = 0; i < 100; i++)
        other += pick_peer(co, t) != b;
    CHECK_EQU(other, 0);
    /* Behind it, a task a may run is looked past to. */
    struct task *u = fx_queued(&f, ti, PRIO_REALTIME, 0, 20);
    CHECK(next_for_peer(co, a, now) == u);

    /* The only peer of its type runs it again. */
    struct task *s = fx_queued(&f, tsolo, PRIO_REALTIME, 0, 10);
    s->excl[s->nexcl++] = a->group;
    CHECK(task_fits(co, s, a));
    CHECK(pick_peer(co, s) == a);
    fx_take(&f, u);
    CHECK(next_for_peer(co, a, now) == s);
    fx_take(&f, s);

    /* A peer holding an attempt of the task never gets a second one. */
    fx_take(&f, t);
    struct task *h = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    h->at[0].peer = b;
    CHECK(!task_fits(co, h, b));
    CHECK(task_fits(co, h, a));
    CHECK(pick_peer(co, h) == a);
    h->at[0].peer = NULL;
    task_set_state(h, TS_QUEUED); /* never queued: freed like a dequeued task */
    task_free(co, h);

    /* Excluded peers that left the type do not count as peers left: with
     * a and c connected and t excluding a and a departed peer, c is
     * there to try, so a is still avoided. */
    int tv = fx_type(&f, "v");
    struct peer_rec *va = fx_peer(&f, 1u << tv, 1, 4);
    struct peer_rec *vc = fx_peer(&f, 1u << tv, 1, 4);
    struct task *r = fx_queued(&f, tv, PRIO_REALTIME, 0, 10);
    r->excl[r->nexcl++] = va->group;
    r->excl[r->nexcl++] = 999; /* failed it, then disconnected */
    CHECK_EQU(co->types[tv].npeers, r->nexcl);
    CHECK(!task_fits(co, r, va));
    CHECK(task_fits(co, r, vc));
    CHECK(next_for_peer(co, va, now) == NULL);
    other = 0;
    for (int i = 0; i < 100; i++)
        other += pick_peer(co, r) != vc;
    CHECK_EQU(other, 0);
    /* Once c has failed it too, nobody else is left: a may try again. */
    r->excl[r->nexcl++] = vc->group;
    CHECK(task_fits(co, r, va));
    CHECK(task_fits(co, r, vc));
    fx_fini(&f);
}

/* A retried task that only the peer which failed it can run (it needs a
 * GPU and that is the type's only GPU peer) runs there again rather than
 * waiting in its queue for its deadline: a peer of the type that lacks what
 * the task needs does not count as "another peer left". */
static void test_excluded_only_capable(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *g = fx_peer(&f, 1u << ti, 1, 4);
    g->gpu = 1;
    struct peer_rec *cpu = fx_peer(&f, 1u << ti, 1, 4);
    struct task *t = fx_task(&f, ti, PRIO_REALTIME, 1, 10);
    t->reqs.gpu = 1;
    t->excl[t->nexcl++] = g->group;
    task_enqueue(co, t, 1);
    CHECK(!task_fits(co, t, cpu));
    CHECK(next_for_peer(co, cpu, co->now) == NULL);
    CHECK(next_for_peer(co, g, co->now) == t);
    CHECK(pick_peer(co, t) == g);
    fx_fini(&f);
}

/* ---- 2. trust and score --------------------------------------------------------- */

static void test_trust_score(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);

    CHECK_NEAR(peer_trust(p), 0.5);
    p->good = 3, p->strikes = 1;
    CHECK_NEAR(peer_trust(p), 4.0 / 6.0);
    p->good = 0, p->strikes = 4;
    CHECK_NEAR(peer_trust(p), 1.0 / 6.0);
    p->good = 98, p->strikes = 0;
    CHECK_NEAR(peer_trust(p), 0.99);
    p->good = 0;

    /* score = (rtt + exec * (1 + inflight / slots)) * (1 + 4 fail) * (1.5 - 0.5 trust) */
    p->rtt_us = 100;
    p->ty[ti].exec_ewma = 1000;
    fx_inflight(&f, p, 1);
    double base = peer_score(co, p, ti);
    CHECK_NEAR(base, (100 + 1000 * 1.25) * 1.25); /* 1687.5 */
    p->fail_ewma = 0.25f;
    CHECK_NEAR(peer_score(co, p, ti), 1687.5 * 2);
    p->fail_ewma = 0;
    p->good = 8;
    CHECK_NEAR(peer_score(co, p, ti), 1350 * (1.5 - 0.5 * 0.9)); /* 1417.5 */
    p->good = 0, p->strikes = 8;
    CHECK_NEAR(peer_score(co, p, ti), 1350 * (1.5 - 0.5 * 0.1)); /* 1957.5 */
    p->strikes = 0;

    /* exec: the peer's for the type, else the type's, else 1 ms. */
    p->rtt_us = 0;
    fx_inflight(&f, p, 0);
    p->ty[ti].exec_ewma = 0;
    co->types[ti].exec_ewma = 2000;
    CHECK_NEAR(peer_score(co, p, ti), 2000 * 1.25);
    co->types[ti].exec_ewma = 0;
    CHECK_NEAR(peer_score(co, p, ti), 1000 * 1.25);
    /* No slots counts as full load. */
    p->slots = 0;
    CHECK_NEAR(peer_score(co, p, ti), 1000 * 2 * 1.25);
    p->slots = 4;

    /* Orderings: the same peer loaded, failing or distrusted scores worse. */
    p->rtt_us = 200;
    p->ty[ti].exec_ewma = 800;
    double idle = peer_score(co, p, ti);
    fx_inflight(&f, p, 3);
    double loaded = peer_score(co, p, ti);
    CHECK(loaded > idle);
    CHECK_NEAR(loaded, (200 + 800 * 1.75) * 1.25);
    fx_inflight(&f, p, 0);
    p->fail_ewma = 0.1f;
    CHECK(peer_score(co, p, ti) > idle);
    p->fail_ewma = 0;
    p->strikes = 1;
    double struck = peer_score(co, p, ti);
    CHECK(struck > idle);
    p->good = 10;
    CHECK(peer_score(co, p, ti) < struck); /* good results win trust back */
    fx_fini(&f);
}

/* ---- 3. pick_peer --------------------------------------------------------------- */

static void test_pick_few(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct task *t = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    CHECK(pick_peer(co, t) == NULL); /* no peer */
    struct peer_rec *slow = fx_peer(&f, 1u << ti, 1, 4);
    struct peer_rec *fast = fx_peer(&f, 1u << ti, 1, 4);
    struct peer_rec *mid = fx_peer(&f, 1u << ti, 1, 4);
    slow->ty[ti].exec_ewma = 2000;
    fast->ty[ti].exec_ewma = 500;
    mid->ty[ti].exec_ewma = 1000;
    CHECK_EQU(co->types[ti].nfree, 3);
    unsigned other = 0;
    for (int i = 0; i < 50; i++)
        other += pick_peer(co, t) != fast;
    CHECK_EQU(other, 0);
    /* Loaded to 3 of 4 it still beats mid: 500 * 1.75 < 1000. */
    fx_inflight(&f, fast, 3);
    CHECK(pick_peer(co, t) == fast);
    fast->fail_ewma = 0.5f;
    CHECK(pick_peer(co, t) == mid);
    /* A full peer leaves the free set; the failing, loaded fast peer
     * (3281.25) now loses to the idle slow one (2500). */
    fx_inflight(&f, mid, 4);
    CHECK_EQU(co->types[ti].nfree, 2);
    CHECK_NEAR(peer_score(co, fast, ti), 500 * 1.75 * 3 * 1.25);
    CHECK(pick_peer(co, t) == slow);
    /* Nothing fits: NULL. */
    t->min_version = 2;
    CHECK(pick_peer(co, t) == NULL);
    t->min_version = 0;
    task_set_state(t, TS_QUEUED);
    task_free(co, t);
    fx_fini(&f);
}

/* A task is placed on its own estimate: its cost times each peer's time per
 * cost unit.  A peer whose past tasks were small has the lower average
 * time, but the peer that is faster per unit wins a big task (issue 10,
 * item 1: placement on this task's estimate); with no cost known, or no
 * rate learned, the average decides as before. */
static void test_pick_by_rate(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "raytrace");
    struct peer_rec *steady = fx_peer(&f, 1u << ti, 1, 4);
    struct peer_rec *small = fx_peer(&f, 1u << ti, 1, 4);
    steady->ty[ti].exec_ewma = 1000; /* tiles of 1000 units at 1 us a unit */
    steady->ty[ti].rate = 1.0f;
    small->ty[ti].exec_ewma = 500; /* tiles of 250 units at 2 us a unit */
    small->ty[ti].rate = 2.0f;
    struct task *t = fx_task(&f, ti, PRIO_REALTIME, 0, 100);
    t->cost = 0; /* unknown: the averages decide, the small-task peer looks faster */
    CHECK(pick_peer(co, t) == small);
    t->cost = 2000; /* 2 ms on the steady peer, 4 ms on the other */
    unsigned missed = 0;
    for (int i = 0; i < 50; i++)
        missed += pick_peer(co, t) != steady;
    CHECK_EQU(missed, 0);
    CHECK_NEAR(task_score(co, steady, t), (steady->rtt_us + 2000.0) * 1.25);
    CHECK_NEAR(task_score(co, small, t), (small->rtt_us + 4000.0) * 1.25);
    /* A small task goes to the peer whose rate makes it quickest too. */
    t->cost = 100;
    CHECK(pick_peer(co, t) == steady);
    /* A peer with no rate of its own is judged at the type's (median) rate. */
    small->ty[ti].rate = 0;
    for (int i = 0; i < 8; i++)
        urate_win_add(&co->types[ti].rate, 0.5);
    t->cost = 2000;
    CHECK(pick_peer(co, t) == small);
    CHECK_NEAR(task_score(co, small, t), (small->rtt_us + 1000.0) * 1.25);
    /* Load still counts, at the typical task length: the steady peer with 3
     * of 4 slots busy adds 0.75 x 1000 us. */
    small->ty[ti].rate = 2.0f;
    steady->inflight = 3;
    CHECK_NEAR(task_score(co, steady, t), (steady->rtt_us + 2000.0 + 750.0) * 1.25);
    steady->inflight = 0;
    task_set_state(t, TS_QUEUED);
    task_free(co, t);
    fx_fini(&f);
}

/* A task goes to a peer that already holds its blobs when the scores are
 * otherwise close (within BLOB_AFFINITY), never when the holder is clearly
 * slower; a partial holder gets a partial discount. */
static void test_pick_blob_holder(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "pathfind");
    struct peer_rec *other = fx_peer(&f, 1u << ti, 1, 4);
    struct peer_rec *holder = fx_peer(&f, 1u << ti, 1, 4);
    other->ty[ti].exec_ewma = 1000;
    holder->ty[ti].exec_ewma = 1000;
    struct blob map = {.len = 3 * 65536}, mesh = {.len = 65536};
    memset(map.hash, 0x11, sizeof(map.hash));
    memset(mesh.hash, 0x22, sizeof(mesh.hash));
    struct task *t = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    t->blobs[0] = &map;
    t->nblobs = 1;
    /* Equal scores, nothing held: the first of the free set. */
    CHECK(pick_peer(co, t) == other);
    peer_mark_blob(holder, map.hash);
    CHECK(peer_has_blob(holder, map.hash) && !peer_has_blob(other, map.hash));
    unsigned missed = 0;
    for (int i = 0; i < 50; i++)
        missed += pick_peer(co, t) != holder;
    CHECK_EQU(missed, 0);
    CHECK_NEAR(task_score(co, holder, t), peer_score(co, holder, ti) * (1 - BLOB_AFFINITY));
    /* Holding one blob of two: the share of bytes held. */
    t->blobs[1] = &mesh;
    t->nblobs = 2;
    CHECK_NEAR(task_score(co, holder, t), peer_score(co, holder, ti) * (1 - BLOB_AFFINITY * 0.75));
    CHECK_NEAR(task_score(co, other, t), peer_score(co, other, ti));
    /* Busier by a fifth (score 1.2x): the holder still wins. */
    t->nblobs = 1;
    holder->ty[ti].exec_ewma = 1200;
    CHECK(pick_peer(co, t) == holder);
    /* Half again slower: the faster peer wins despite the transfer. */
    holder->ty[ti].exec_ewma = 1500;
    CHECK(pick_peer(co, t) == other);
    t->nblobs = 0; /* the blobs are on the stack, not the coordinator's */
    task_set_state(t, TS_QUEUED);
    task_free(co, t);
    fx_fini(&f);
}

static void test_pick_sampled(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");

    /* Four peers, one slow: three distinct samples always include a fast
     * one, so the slow peer is (almost) never chosen. */
    struct peer_rec *p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = fx_peer(&f, 1u << ti, 1, 8);
        p[i]->ty[ti].exec_ewma = i == 2 ? 50000 : 1000;
    }
    struct task *t = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    unsigned n[4] = {0, 0, 0, 0};
    for (int k = 0; k < 10000; k++) {
        struct peer_rec *q = pick_peer(co, t);
        for (int i = 0; i < 4; i++)
            n[i] += q == p[i];
    }
    CHECK_EQU(n[0] + n[1] + n[2] + n[3], 10000);
    CHECK(n[2] < 100);
    CHECK(n[0] > 2500 && n[1] > 2500 && n[3] > 2500);
    task_set_state(t, TS_QUEUED);
    task_free(co, t);
    fx_fini(&f);

    /* 20 peers, half at version 1: a task that needs version 2 never goes
     * to one of them (by sample or by the fallback scan). */
    fx_init(&f);
    co = f.co;
    ti = fx_type(&f, "t");
    for (int i = 0; i < 20; i++)
        fx_peer(&f, 1u << ti, i % 2 ? 2 : 1, 4);
    t = fx_task(&f, ti, PRIO_REALTIME, 0, 10);
    t->min_version = 2;
    unsigned bad = 0, none = 0, hits[20] = {0};
    for (int k = 0; k < 10000; k++) {
        struct peer_rec *q = pick_peer(co, t);
        if (!q) {
            none++;
            continue;
        }
        bad += !task_fits(co, t, q) || q->ty[ti].version != 2;
        hits[q->id - 1]++;
    }
    CHECK_EQU(bad, 0);
    CHECK_EQU(none, 0);
    for (int i = 1; i < 20; i += 2)
        CHECK(hits[i] > 0);
    task_set_state(t, TS_QUEUED);
    task_free(co, t);

    /* 40 free peers, one with a GPU: samples almost always miss it, and
     * the fallback scan finds it. */
    int tg = fx_type(&f, "g");
    struct peer_rec *gpu = NULL;
    for (int i = 0; i < 40; i++) {
        struct peer_rec *q = fx_peer(&f, 1u << tg, 1, 4);
        if (i == 27)
            q->gpu = 1, gpu = q;
    }
    CHECK_EQU(co->types[tg].nfree, 40);
    t = fx_task(&f, tg, PRIO_REALTIME, 1, 10);
    t->reqs.gpu = 1;
    unsigned missed = 0;
    for (int k = 0; k < 1000; k++)
        missed += pick_peer(co, t) != gpu;
    CHECK_EQU(missed, 0);
    /* Busy, it leaves the free set and nobody can take the task. */
    fx_inflight(&f, gpu, 4);
    CHECK(pick_peer(co, t) == NULL);
    task_set_state(t, TS_QUEUED);
    task_free(co, t);
    CHECK_EQU(co->tasks_live, 0);
    fx_fini(&f);
}

/* ---- 4. admission_estimate ------------------------------------------------------ */

/* Teaches type tt n samples of rate us per cost unit and attempts that
 * spend disp_us beyond their execution, as peer_on_result does. */
static void fx_learn(struct ttype *tt, uint32_t n, double rate, double disp_us)
{
    for (uint32_t i = 0; i < n; i++) {
        urate_win_add(&tt->rate, rate);
        urate_win_add(&tt->disp, disp_us);
    }
}

/* A queued task of this cost with a deadline dl_ms away. */
static struct task *fx_queued_cost_dl(struct fx *f, int ti, int prio, int kind, uint64_t cost, uint64_t dl_ms)
{
    struct task *t = fx_task(f, ti, prio, kind, dl_ms);
    t->cost = cost;
    task_enqueue(f->co, t, 0);
    return t;
}

static struct task *fx_queued_cost(struct fx *f, int ti, int prio, int kind, uint64_t cost)
{
    return fx_queued_cost_dl(f, ti, prio, kind, cost, 100);
}

/* The estimate is this task's cost x the type's time per unit + the type's
 * dispatch time; with no free peer, the cost queued ahead (plus one
 * typical task) spread over the slots.  Whatever the type's history, a
 * cheap task fits a deadline a heavy one misses: the 1-spp tiles
 * after 16-spp ones. */
static void test_admission(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct ttype *tt = &f.co->types[ti];
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);
    CHECK_EQU(tt->slots_total, 4);
    struct admit_est e;

    /* Too few samples: no estimate (admitted by any deadline). */
    fx_learn(tt, STAT_MIN_SAMPLES - 1, 10.0, 500);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 1000000, &e), 0);
    CHECK_EQU(e.us, 0);
    CHECK_EQU(admission_decide(tt, e.us, 1000, f.co->now), 1);
    fx_learn(tt, 1, 10.0, 500);
    CHECK_NEAR(urate_win_get(&tt->rate), 10.0);

    /* A free peer, a plain task: cost x rate + dispatch. */
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_BACKGROUND, 1000, &e), 10 * 1000 + 500);
    CHECK_EQU(e.run_us, 10500);
    CHECK_NEAR(e.rate, 10.0);
    CHECK_EQU(e.ahead, 0);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_BACKGROUND, 10, &e), 10 * 10 + 500);
    /* The case: after heavy tasks taught the type, a heavy task
     * misses a 16 ms deadline and a cheap one of the same type fits it. */
    uint64_t heavy = admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 100000, &e); /* about 1 s */
    CHECK_EQU(admission_decide(tt, heavy, 16 * MS, f.co->now), 0);
    uint64_t cheap = admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 250, &e); /* 3 ms */
    CHECK_EQU(cheap, 3000);
    CHECK_EQU(admission_decide(tt, cheap, 16 * MS, f.co->now), 1);
    CHECK_EQU(tt->refused_row, 0);

    /* A task with requirements may not fit the free peer: it counts the
     * queue (empty) plus one typical task over the slots. */
    tt->cost_ewma = 400;
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 1, PRIO_REALTIME, 1000, &e), 10500 + 400 * 10 / 4);
    CHECK_EQU(e.ahead, 0);

    /* No free peer: + (cost ahead in its class or above, both kinds, + one
     * typical task) x rate / slots. */
    fx_inflight(&f, p, 4);
    CHECK_EQU(tt->nfree, 0);
    fx_queued_cost(&f, ti, PRIO_REALTIME, 0, 100);
    fx_queued_cost(&f, ti, PRIO_REALTIME, 1, 200);
    fx_queued_cost(&f, ti, PRIO_INTERACTIVE, 0, 400);
    struct task *bg = fx_queued_cost(&f, ti, PRIO_BACKGROUND, 0, 800);
    fx_queued_cost(&f, ti, PRIO_BACKGROUND, 1, 1600);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 1000, &e), 10500 + (300 + 400) * 10 / 4);
    CHECK_EQU(e.ahead, 2);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_INTERACTIVE, 1000, &e), 10500 + (700 + 400) * 10 / 4);
    CHECK_EQU(e.ahead, 3);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 1, PRIO_BACKGROUND, 1000, &e), 10500 + (3100 + 400) * 10 / 4);
    CHECK_EQU(e.ahead, 5);
    /* Queue costs follow dequeues. */
    task_dequeue(f.co, bg);
    task_free(f.co, bg);
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 1, PRIO_BACKGROUND, 1000, &e), 10500 + (2300 + 400) * 10 / 4);
    /* No slots: one. */
    tt->slots_total = 0;
    CHECK_EQU(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 1000, &e), 10500 + (300 + 400) * 10);
    tt->slots_total = 4;
    /* An absurd cost saturates instead of wrapping. */
    CHECK(admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 1ull << 62, &e) >= (uint64_t)UINT32_MAX * MS);

    /* Other shares' queues do not count: the default share holds 300 of
     * realtime cost (and more below), a share with nothing queued waits
     * for one typical task only, as with an empty queue.  A share with its
     * own queue waits for it at its part of the type: weight 1 of 1 + 1
     * while both have work, so twice its own cost ahead. */
    struct share *b = share_get(f.co, "tok:b", 5, 1.0);
    CHECK_EQU(admission_estimate(tt, b->sq[ti], b->weight, 0, PRIO_REALTIME, 1000, &e), 10500 + 400 * 10 / 4);
    CHECK_EQU(e.ahead, 0);
    struct task *bt = fx_task(&f, ti, PRIO_REALTIME, 0, 100);
    bt->share = share_ref(b);
    bt->cost = 200;
    task_enqueue(f.co, bt, 0);
    CHECK_NEAR(tt->wsum, 2.0);
    CHECK_EQU(admission_estimate(tt, b->sq[ti], b->weight, 0, PRIO_REALTIME, 1000, &e),
              10500 + (200 * 2 + 400) * 10 / 4);
    CHECK_EQU(e.ahead, 1);
    /* Weight 3 against the default share's 1: its part is 3/4. */
    CHECK(share_get(f.co, "tok:b", 5, 3.0) == b);
    CHECK_NEAR(tt->wsum, 4.0);
    CHECK_EQU(admission_estimate(tt, b->sq[ti], b->weight, 0, PRIO_REALTIME, 1000, &e),
              10500 + (uint64_t)((200 * 4.0 / 3 + 400) * 10 / 4));
    share_put(f.co, b);
    share_put(f.co, b);
    fx_fini(&f);
}

/* ---- pools -------------------------------------------------------------------- */

/* Whether tt's free set is partitioned by pool, each peer's fpos right. */
static int free_sets_valid(const struct ttype *tt, int ti)
{
    if (tt->free_end[PROTO_POOLS - 1] != tt->nfree)
        return 0;
    for (uint32_t i = 0, k = 0; i < tt->nfree; i++) {
        while (k < PROTO_POOLS && i >= tt->free_end[k])
            k++;
        if (k == PROTO_POOLS || tt->free[i]->pool != k || tt->free[i]->ty[ti].fpos != i)
            return 0;
    }
    return 1;
}

/* The free set stays partitioned by pool through any order of peers
 * becoming free and busy (a model: the set of free peers). */
static void test_pool_free_sets(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct ttype *tt = &f.co->types[ti];
    struct peer_rec *ps[24];
    for (int i = 0; i < 24; i++)
        ps[i] = fx_peer_in(&f, 1u << ti, 1, 1, i % 3 == 0 ? PROTO_POOL_CLOUD : PROTO_POOL_VOLUNTEER, 0);
    CHECK(free_sets_valid(tt, ti));
    CHECK_EQU(tt->npool[PROTO_POOL_CLOUD], 8);
    CHECK_EQU(tt->npool[PROTO_POOL_VOLUNTEER], 16);
    CHECK_EQU(tt->free_end[PROTO_POOL_VOLUNTEER], 16);
    uint64_t r = 42;
    int ok = 1;
    for (int step = 0; step < 2000 && ok; step++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        struct peer_rec *p = ps[(r >> 33) % 24];
        fx_inflight(&f, p, p->inflight ? 0 : 1);
        uint32_t nfree = 0;
        for (int i = 0; i < 24; i++)
            nfree += ps[i]->inflight == 0;
        ok = free_sets_valid(tt, ti) && tt->nfree == nfree;
    }
    CHECK(ok);
    fx_fini(&f);
}

/* A task goes to the cheapest pool whose peers are expected to meet its
 * deadline, and to the pricier one when the cheap one would miss it. */
static void test_pool_choice(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct ttype *tt = &f.co->types[ti];
    /* The cloud peer registers first: order must not decide. */
    struct peer_rec *cloud = fx_peer_in(&f, 1u << ti, 1, 4, PROTO_POOL_CLOUD, 50);
    struct peer_rec *vol = fx_peer_in(&f, 1u << ti, 1, 4, PROTO_POOL_VOLUNTEER, 0);
    CHECK(pools_mixed(tt));

    /* Nothing learned: the cheap pool is tried (and would teach). */
    struct task *t = fx_queued_cost_dl(&f, ti, PRIO_REALTIME, 0, 1000, 16);
    CHECK(pick_peer(f.co, t) == vol);

    /* The volunteer takes 50 us per unit (50 ms for this task), the cloud
     * 2 us per unit (2 ms), both with 300 us of dispatch. */
    for (int i = 0; i < STAT_MIN_SAMPLES; i++) {
        urate_win_add(&tt->prate[PROTO_POOL_VOLUNTEER], 50.0);
        urate_win_add(&tt->prate[PROTO_POOL_CLOUD], 2.0);
        urate_win_add(&tt->rate, 50.0);
        urate_win_add(&tt->disp, 300);
    }
    vol->ty[ti].rate = 50.0f;
    cloud->ty[ti].rate = 2.0f;
    CHECK_EQU(pool_expect_us(f.co, vol, t), 50300);
    CHECK_EQU(pool_expect_us(f.co, cloud, t), 2300);
    /* 16 ms: the volunteer would miss it, the cloud meets it. */
    uint64_t spilled = f.co->pools[PROTO_POOL_CLOUD].spilled;
    CHECK(pick_peer(f.co, t) == cloud);
    CHECK_EQU(f.co->pools[PROTO_POOL_CLOUD].spilled, spilled + 1);
    /* A loose deadline: the volunteer meets it, and it is cheaper. */
    struct task *loose = fx_queued_cost_dl(&f, ti, PRIO_REALTIME, 0, 1000, 1000);
    CHECK(pick_peer(f.co, loose) == vol);
    /* A cheap task of the same type meets 16 ms on the volunteer. */
    struct task *small = fx_queued_cost_dl(&f, ti, PRIO_REALTIME, 0, 100, 16); /* 5.3 ms */
    CHECK(pick_peer(f.co, small) == vol);
    /* The cloud busy: nothing meets 16 ms; the volunteer comes closest. */
    fx_inflight(&f, cloud, 4);
    CHECK(pick_peer(f.co, t) == vol);
    fx_inflight(&f, cloud, 0);
    /* Price decides the order, not the pool's name: a volunteer pool that
     * asks more than the cloud goes second. */
    vol->cost = 100;
    f.co->pools[PROTO_POOL_VOLUNTEER].cost_sum = 100;
    CHECK(pick_peer(f.co, loose) == cloud);
    vol->cost = 0;
    f.co->pools[PROTO_POOL_VOLUNTEER].cost_sum = 0;

    /* Admission uses the fastest pool's rate: the task is admitted for the
     * cloud although the type's median (the volunteer's) would refuse it. */
    struct admit_est e;
    CHECK_EQU(admission_estimate(tt, NULL, 1.0, 0, PRIO_REALTIME, 1000, &e), 2300);
    CHECK_NEAR(e.rate, 2.0);
    /* A pool not yet measured: no estimate, so nothing is refused on the
     * other pool's figures. */
    int ti2 = fx_type(&f, "u");
    struct ttype *tt2 = &f.co->types[ti2];
    fx_peer_in(&f, 1u << ti2, 1, 1, PROTO_POOL_VOLUNTEER, 0);
    fx_peer_in(&f, 1u << ti2, 1, 1, PROTO_POOL_CLOUD, 10);
    for (int i = 0; i < STAT_MIN_SAMPLES; i++) {
        urate_win_add(&tt2->prate[PROTO_POOL_VOLUNTEER], 50.0);
        urate_win_add(&tt2->rate, 50.0);
    }
    CHECK_EQU(admission_estimate(tt2, NULL, 1.0, 0, PRIO_REALTIME, 1000, &e), 0);

    /* One pool only: exactly the single-pool path (the type's median). */
    int ti3 = fx_type(&f, "w");
    struct ttype *tt3 = &f.co->types[ti3];
    fx_peer_in(&f, 1u << ti3, 1, 1, PROTO_POOL_CLOUD, 10);
    CHECK(!pools_mixed(tt3));
    for (int i = 0; i < STAT_MIN_SAMPLES; i++)
        urate_win_add(&tt3->rate, 7.0);
    CHECK_EQU(admission_estimate(tt3, NULL, 1.0, 0, PRIO_REALTIME, 1000, &e), 7000);
    fx_fini(&f);
}

/* One freak or forged exec_us barely moves either estimate: 20 normal
 * samples, then one of 2^32-1 us for a task of cost 1 (as reported; the
 * clamp to the measured duration comes first in peer_on_result and is not
 * even assumed here).  A real change still wins within a window. */
static void test_rate_outliers(void)
{
    struct urate_win w;
    memset(&w, 0, sizeof(w));
    float pr = 0;
    for (int i = 0; i < 20; i++) {
        double r = urate_sample(1000 + (uint32_t)(i % 5) * 10, 100); /* 10.0 .. 10.4 us/unit */
        urate_win_add(&w, r);
        urate_ewma_add(&pr, r);
    }
    double wb = urate_win_get(&w), pb = pr;
    CHECK(wb >= 10.0 && wb <= 10.4);
    CHECK(pb >= 10.0 && pb <= 10.4);
    double freak = urate_sample(UINT32_MAX, 1);
    CHECK_NEAR(freak, (double)UINT32_MAX);
    urate_win_add(&w, freak);
    urate_ewma_add(&pr, freak);
    CHECK(urate_win_get(&w) <= wb * 1.01 + 0.1); /* a neighbouring order statistic */
    CHECK(pr <= pb * 1.075);                      /* at most 2^(0.1) */
    CHECK(pr >= pb);
    /* A forged zero: floored, and again at most one bounded step. */
    CHECK_NEAR(urate_sample(0, 1000), URATE_MIN);
    float pz = (float)pb;
    urate_ewma_add(&pz, urate_sample(0, 1000));
    CHECK(pz >= pb / 1.075 && pz < pb);
    /* The clamp that comes first: exec_us over the measured duration. */
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);
    CHECK_EQU(claims_on_answer(f.co, p, UINT32_MAX, 5000), 5000);
    fx_fini(&f);

    /* A real change (the peers got twice as slow) takes over the median
     * once it is the majority of the window, and the peer's average
     * follows, a bounded step at a time. */
    memset(&w, 0, sizeof(w));
    for (int i = 0; i < URATE_WINDOW; i++)
        urate_win_add(&w, 10.0);
    for (int i = 0; i < URATE_WINDOW / 2; i++)
        urate_win_add(&w, 20.0);
    CHECK_NEAR(urate_win_get(&w), 20.0); /* the upper median of 16 and 16 */
    pr = 10;
    for (int i = 0; i < 50; i++)
        urate_ewma_add(&pr, 20.0);
    CHECK(pr > 19.0 && pr <= 20.0);
}

/* Refusals teach nothing, so a type that refused everything admits one
 * task as a probe after PROBE_AFTER_REFUSALS refusals in a row or
 * PROBE_AFTER_US since the first; any admitted task ends the run. */
static void test_admission_probe(void)
{
    struct fx f;
    fx_init(&f);
    int ti = fx_type(&f, "t");
    struct ttype *tt = &f.co->types[ti];
    fx_peer(&f, 1u << ti, 1, 4);
    fx_learn(tt, STAT_MIN_SAMPLES, 10.0, 0);
    struct admit_est e;
    uint64_t heavy = admission_estimate(tt, fx_own(&f, ti), 1.0, 0, PRIO_REALTIME, 100000, &e), dl = 16 * MS;
    CHECK(heavy > dl);

    /* By count: 16 refusals, then a probe, then refusals again. */
    for (uint32_t i = 0; i < PROBE_AFTER_REFUSALS; i++)
        CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0);
    CHECK_EQU(tt->refused_row, PROBE_AFTER_REFUSALS);
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 2);
    CHECK_EQU(tt->probes, 1);
    CHECK_EQU(tt->refused_row, 0);
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0);

    /* By time, on the fake clock: 1 s after the run's first refusal. */
    f.co->now += 1;
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0);
    f.co->now += PROBE_AFTER_US - 2;
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0);
    f.co->now += 1;
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 2);
    CHECK_EQU(tt->probes, 2);

    /* A task that fits ends the run: no probe is due after it. */
    for (int i = 0; i < 5; i++)
        CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0);
    CHECK_EQU(admission_decide(tt, 1000, dl, f.co->now), 1);
    CHECK_EQU(tt->refused_row, 0);
    f.co->now += 10 * PROBE_AFTER_US;
    CHECK_EQU(admission_decide(tt, heavy, dl, f.co->now), 0); /* the first of a new run */
    CHECK_EQU(tt->probes, 2);
    fx_fini(&f);
}

/* ---- 5. state machines -------------------------------------------------------- */

static void test_states(void)
{
    /* From the comment on task_transition_ok: free->queued|running|
     * follower, queued->running, running->queued|orphan, any->free. */
    static const int task_ok[5][5] = {
        /* to:     free queued running follower orphan */
        /* free */ {0, 1, 1, 1, 0},
        /* queued */ {1, 0, 1, 0, 0},
        /* running */ {1, 1, 0, 0, 1},
        /* follower */ {1, 0, 0, 0, 0},
        /* orphan */ {1, 0, 0, 0, 0},
    };
    for (int from = TS_FREE; from <= TS_ORPHAN; from++) {
        for (int to = TS_FREE; to <= TS_ORPHAN; to++)
            if (!CHECK(task_transition_ok(from, to) == task_ok[from][to]))
                fprintf(stderr, "  task %s -> %s\n", task_state_name(from), task_state_name(to));
        CHECK(!task_transition_ok(from, TS_ORPHAN + 1));
        CHECK(!task_transition_ok(from, -1));
    }
    CHECK(strcmp(task_state_name(TS_FREE), "free") == 0);
    CHECK(strcmp(task_state_name(TS_QUEUED), "queued") == 0);
    CHECK(strcmp(task_state_name(TS_RUNNING), "running") == 0);
    CHECK(strcmp(task_state_name(TS_FOLLOWER), "follower") == 0);
    CHECK(strcmp(task_state_name(TS_ORPHAN), "orphan") == 0);
    CHECK(strcmp(task_state_name(TS_ORPHAN + 1), "?") == 0);
    CHECK(strcmp(task_state_name(-1), "?") == 0);

    /* From the comment on peer_transition_ok: ok->quarantined,
     * quarantined->probing, probing->ok|quarantined. */
    static const int peer_ok[3][3] = {
        /* to:           ok quarantined probing */
        /* ok */ {0, 1, 0},
        /* quarantined */ {0, 0, 1},
        /* probing */ {1, 1, 0},
    };
    for (int from = PS_OK; from <= PS_PROBING; from++) {
        for (int to = PS_OK; to <= PS_PROBING; to++)
            if (!CHECK(peer_transition_ok(from, to) == peer_ok[from][to]))
                fprintf(stderr, "  peer %s -> %s\n", peer_state_name(from), peer_state_name(to));
        CHECK(!peer_transition_ok(from, PS_PROBING + 1));
        CHECK(!peer_transition_ok(from, -1));
    }
    CHECK(strcmp(peer_state_name(PS_OK), "ok") == 0);
    CHECK(strcmp(peer_state_name(PS_QUARANTINED), "quarantined") == 0);
    CHECK(strcmp(peer_state_name(PS_PROBING), "probing") == 0);
    CHECK(strcmp(peer_state_name(PS_PROBING + 1), "?") == 0);
    CHECK(strcmp(peer_state_name(-1), "?") == 0);

    CHECK(strcmp(conn_state_name(CS_HELLO), "hello") == 0);
    CHECK(strcmp(conn_state_name(CS_READY), "ready") == 0);
    CHECK(strcmp(conn_state_name(CS_DRAINING), "draining") == 0);
    CHECK(strcmp(conn_state_name(CS_CLOSED), "closed") == 0);
    CHECK(strcmp(conn_state_name(CS_CLOSED + 1), "?") == 0);
    CHECK(strcmp(prio_name[PRIO_REALTIME], "realtime") == 0);
    CHECK(strcmp(prio_name[PRIO_INTERACTIVE], "interactive") == 0);
    CHECK(strcmp(prio_name[PRIO_BACKGROUND], "background") == 0);

    /* task_set_state walks a task through a legal life. */
    struct fx f;
    fx_init(&f);
    struct task *t = task_alloc(f.co);
    CHECK_EQ(t->state, TS_FREE);
    task_set_state(t, TS_QUEUED);
    task_set_state(t, TS_RUNNING);
    task_set_state(t, TS_QUEUED);
    task_set_state(t, TS_RUNNING);
    task_set_state(t, TS_ORPHAN);
    CHECK_EQ(t->state, TS_ORPHAN);
    task_free(f.co, t);
    CHECK_EQ(t->state, TS_FREE);
    CHECK_EQU(f.co->tasks_live, 0);
    fx_fini(&f);
}

/* ---- 6. heaps ------------------------------------------------------------------- */

#define HEAP_POOL 300

static uint64_t heap_key(const struct task *t, int dl) { return dl ? t->deadline_us : t->urgent_us; }

/* The model's order, written apart from task.c's. */
static int model_before(const struct task *a, const struct task *b, int dl)
{
    uint64_t ka = heap_key(a, dl), kb = heap_key(b, dl);
    return ka != kb ? ka < kb : a->seq < b->seq;
}

static int model_cmp_dl;
static int model_cmp(const void *x, const void *y)
{
    const struct task *a = *(struct task *const *)x, *b = *(struct task *const *)y;
    return model_before(a, b, model_cmp_dl) ? -1 : model_before(b, a, model_cmp_dl) ? 1 : 0;
}

/* Heap shape: every task's index field names its slot, no child goes
 * before its parent, and the root is the model's first. */
static int heap_valid(const struct theap *h, int dl, struct task **model, uint32_t n)
{
    if (h->n != n)
        return 0;
    for (uint32_t i = 0; i < h->n; i++) {
        const struct task *t = h->a[i];
        if ((dl ? t->dlidx : t->qidx) != i)
            return 0;
        if (i > 0 && model_before(t, h->a[(i - 1) / 2], dl))
            return 0;
    }
    if (n == 0)
        return 1;
    struct task *min = model[0];
    for (uint32_t i = 1; i < n; i++)
        if (model_before(model[i], min, dl))
            min = model[i];
    return h->a[0] == min;
}

static void heap_random(int dl)
{
    struct fx f;
    fx_init(&f);
    struct rng r = {dl ? 17u : 4u};
    struct task *pool[HEAP_POOL], *model[HEAP_POOL];
    uint32_t nm = 0;
    uint64_t seq = 0;
    for (int i = 0; i < HEAP_POOL; i++)
        pool[i] = task_alloc(f.co);
    struct theap h = {NULL, 0, 0};
    int bad = 0;
    for (int op = 0; op < 20000 && !bad; op++) {
        uint64_t x = rng_next(&r);
        int push = nm == 0 || (nm < HEAP_POOL && x % 100 < 55);
        if (push) {
            struct task *t = NULL;
            for (uint32_t k = (uint32_t)(x >> 8) % HEAP_POOL;; k = (k + 1) % HEAP_POOL)
                if ((dl ? pool[k]->dlidx : pool[k]->qidx) == NO_IDX) {
                    t = pool[k];
                    break;
                }
            /* Few distinct keys, so ties in the key are common; the other
             * heap's key is scrambled to show it is ignored. */
            uint64_t key = (x >> 20) % 32, other = x >> 40;
            t->urgent_us = dl ? other : key;
            t->deadline_us = dl ? key : other;
            t->seq = ++seq;
            heap_push(&h, t, dl);
            model[nm++] = t;
        } else {
            /* A quarter of removals take the root, the rest any task. */
            struct task *t = x % 4 == 0 ? h.a[0] : model[(x >> 8) % nm];
            heap_remove(&h, t, dl);
            CHECK_EQU(dl ? t->dlidx : t->qidx, NO_IDX);
            for (uint32_t j = 0; j < nm; j++)
                if (model[j] == t) {
                    model[j] = model[--nm];
                    break;
                }
        }
        if (!heap_valid(&h, dl, model, nm))
            bad = op + 1;
    }
    CHECK_EQ(bad, 0);
    /* Draining the root gives the model's sorted order. */
    model_cmp_dl = dl;
    qsort(model, nm, sizeof(model[0]), model_cmp);
    for (uint32_t i = 0; i < nm; i++) {
        if (!CHECK(h.n > 0 && h.a[0] == model[i]))
            break;
        heap_remove(&h, h.a[0], dl);
    }
    CHECK_EQU(h.n, 0);
    free(h.a);
    fx_fini(&f);
}

static void test_heaps(void)
{
    heap_random(0);
    heap_random(1);

    /* task_before is the queue order: urgent_us, then seq. */
    struct fx f;
    fx_init(&f);
    struct task *a = task_alloc(f.co), *b = task_alloc(f.co);
    a->urgent_us = 5, a->seq = 2, a->deadline_us = 1;
    b->urgent_us = 5, b->seq = 1, b->deadline_us = 9;
    CHECK(task_before(b, a) && !task_before(a, b) && !task_before(a, a));
    b->urgent_us = 6;
    CHECK(task_before(a, b) && !task_before(b, a));
    fx_fini(&f);
}

/* ---- 6. measured claims (claims.c) ------------------------------------------------- */

/* Capabilities over their ranges are clamped, each field on its own; values
 * within them are left alone. */
static void test_claims_clamp(void)
{
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 65535;
    m.mem_bytes = UINT64_MAX;
    m.ntypes = 2;
    m.types[0].version = UINT32_MAX;
    m.types[1].version = 7;
    CHECK_EQU(claims_clamp_register(&m), CLAIM_CORES | CLAIM_MEM | CLAIM_VERSION);
    CHECK_EQU(m.cores, CLAIM_MAX_CORES);
    CHECK_EQU(m.mem_bytes, CLAIM_MAX_MEM);
    CHECK_EQU(m.types[0].version, CLAIM_MAX_VERSION);
    CHECK_EQU(m.types[1].version, 7);
    /* At the limits: nothing to clamp. */
    CHECK_EQU(claims_clamp_register(&m), 0);
    CHECK_EQU(m.cores, 1024);
    CHECK_EQU(m.mem_bytes, 16ull << 40);
    CHECK_EQU(m.types[0].version, 1000000);
    m.cores = 1025;
    CHECK_EQU(claims_clamp_register(&m), CLAIM_CORES);
    m.mem_bytes = CLAIM_MAX_MEM + 1;
    CHECK_EQU(claims_clamp_register(&m), CLAIM_MEM);
    m.types[1].version = CLAIM_MAX_VERSION + 1;
    CHECK_EQU(claims_clamp_register(&m), CLAIM_VERSION);
    CHECK_EQU(m.types[1].version, CLAIM_MAX_VERSION);
}

/* exec_us is bounded by the attempt's measured duration; every answer
 * earns one more task held, up to the declared slots, and the type's slot
 * total and free set follow the effective limit. */
static void test_held_limit(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct ttype *tt = &co->types[ti];
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 20);
    CHECK_EQU(tt->slots_total, 20);
    claims_set_limit(co, p, HELD_START); /* as PEER_REGISTER leaves it */
    CHECK_EQU(peer_slots(p), 8);
    CHECK_EQU(tt->slots_total, 8);
    fx_inflight(&f, p, 8);
    CHECK_EQU(tt->nfree, 0);
    CHECK(!peer_can_take(p));

    co->now += 5 * MS;
    CHECK_EQU(claims_on_answer(co, p, UINT32_MAX, 1500), 1500);
    CHECK_EQU(co->n.exec_us_clamped, 1);
    CHECK_EQU(p->last_answer_us, co->now);
    CHECK_EQU(peer_slots(p), 9);
    CHECK_EQU(tt->slots_total, 9);
    CHECK_EQU(tt->nfree, 1); /* 9 > 8 held */
    CHECK_EQU(claims_on_answer(co, p, 1500, 1500), 1500);
    CHECK_EQU(claims_on_answer(co, p, 0, 1500), 0);
    CHECK_EQU(co->n.exec_us_clamped, 1);
    for (int i = 0; i < 100; i++)
        (void)claims_on_answer(co, p, 10, 20);
    CHECK_EQU(peer_slots(p), 20); /* never past the declared slots */
    CHECK_EQU(p->held_limit, 20);
    CHECK_EQU(tt->slots_total, 20);
    /* CREDIT lowering the declared slots caps the effective limit. */
    p->slots = 5;
    CHECK_EQU(peer_slots(p), 5);
    p->slots = 20;
    fx_inflight(&f, p, 0);
    fx_fini(&f);
}

/* When an attempt is overdue: STALL_MULT x (exec + rtt), at least
 * min(50 ms, a quarter of the time to the deadline) and 1 ms; with nothing
 * measured, half the time to the deadline. */
static void test_overdue_after(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    int ti = fx_type(&f, "t");
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 4);
    uint64_t s = co->now;
    struct task *t = fx_queued(&f, ti, PRIO_INTERACTIVE, 0, 2000);
    CHECK_EQU(claims_overdue_after(co, p, t, s), 1000 * MS); /* nothing measured */
    co->types[ti].exec_ewma = 1000;                          /* the type's, 1 ms */
    CHECK_EQU(claims_overdue_after(co, p, t, s), 50 * MS);   /* 4 ms < the 50 ms floor */
    p->ty[ti].exec_ewma = 20000;                             /* its own, 20 ms */
    p->rtt_us = 1000;
    CHECK_EQU(claims_overdue_after(co, p, t, s), 84 * MS);
    /* Judged from the attempt's start: a retry has less time left. */
    CHECK_EQU(claims_overdue_after(co, p, t, s + 1900 * MS), 84 * MS);
    p->ty[ti].exec_ewma = 1000, p->rtt_us = 500;
    CHECK_EQU(claims_overdue_after(co, p, t, s + 1900 * MS), 25 * MS); /* a quarter of 100 ms */
    fx_take(&f, t);
    /* Frame work: a 40 ms realtime task is overdue after 10 ms. */
    t = fx_queued(&f, ti, PRIO_REALTIME, 0, 40);
    CHECK_EQU(claims_overdue_after(co, p, t, s), 10 * MS);
    p->ty[ti].exec_ewma = 4000;
    CHECK_EQU(claims_overdue_after(co, p, t, s), 18 * MS); /* 4 x 4.5 ms */
    fx_take(&f, t);
    /* Never under 1 ms, even with no time at all. */
    t = fx_queued(&f, ti, PRIO_REALTIME, 0, 2);
    p->ty[ti].exec_ewma = 10, p->rtt_us = 0;
    CHECK_EQU(claims_overdue_after(co, p, t, s), 1 * MS);
    CHECK_EQU(claims_overdue_after(co, p, t, s + 5 * MS), 1 * MS);
    co->types[ti].exec_ewma = 0, p->ty[ti].exec_ewma = 0;
    CHECK_EQU(claims_overdue_after(co, p, t, s), 1 * MS);
    fx_take(&f, t);
    fx_fini(&f);
}

/* t held by p since now, as task_assign leaves it minus the ASSIGN.  t has
 * no renter, so the sweep hedges nothing and sends nothing. */
static struct attempt *fx_hold(struct fx *f, struct peer_rec *p, struct task *t)
{
    struct attempt *a = &t->at[0];
    task_set_state(t, TS_RUNNING);
    a->peer = p;
    a->start_us = f->co->now;
    list_push_back(&p->attempts, &a->pnode);
    t->nlive = 1;
    p->inflight++;
    peer_refresh(f->co, p);
    return a;
}

static void fx_release(struct fx *f, struct attempt *a)
{
    struct task *t = a->t;
    attempt_end(f->co, a);
    task_free(f->co, t);
}

/* The sweep with a fake clock: attempts become overdue at their time, each
 * sweep that finds new ones halves the peer's limit once (down to 1), an
 * attempt not yet overdue ends the look at a peer, and answering earns
 * tasks back. */
static void test_stall_sweep(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    co->cfg.peer_timeout_ms = 3600000; /* no cut here: that is the integration test's */
    int ti = fx_type(&f, "t");
    struct ttype *tt = &co->types[ti];
    struct peer_rec *p = fx_peer(&f, 1u << ti, 1, 100);
    struct peer_rec *q = fx_peer(&f, 1u << ti, 1, 4);
    claims_set_limit(co, p, HELD_START);
    tt->exec_ewma = 1000; /* overdue after the 50 ms floor */
    uint64_t t0 = co->now;
    struct attempt *a[5];
    for (int i = 0; i < 3; i++)
        a[i] = fx_hold(&f, p, fx_task(&f, ti, PRIO_INTERACTIVE, 0, 2000));
    claims_sweep(co, t0 + 49 * MS);
    CHECK_EQU(p->stalls, 0);
    CHECK_EQU(claims_overdue_count(p), 0);
    CHECK_EQU(peer_slots(p), 8);
    claims_sweep(co, t0 + 50 * MS);
    CHECK_EQU(p->stalls, 1);
    CHECK_EQU(claims_overdue_count(p), 3);
    CHECK_EQU(peer_slots(p), 4);
    CHECK_EQU(tt->slots_total, 4 + 4);
    CHECK_EQU(q->stalls, 0);
    claims_sweep(co, t0 + 60 * MS); /* nothing new: no second cut */
    CHECK_EQU(p->stalls, 1);
    CHECK_EQU(peer_slots(p), 4);
    /* Full: out of the free set. */
    co->now = t0 + 60 * MS;
    a[3] = fx_hold(&f, p, fx_task(&f, ti, PRIO_INTERACTIVE, 0, 2000));
    CHECK_EQU(p->inflight, 4);
    CHECK(!peer_can_take(p));
    claims_sweep(co, t0 + 109 * MS);
    CHECK_EQU(claims_overdue_count(p), 3);
    claims_sweep(co, t0 + 110 * MS);
    CHECK_EQU(claims_overdue_count(p), 4);
    CHECK_EQU(p->stalls, 2);
    CHECK_EQU(peer_slots(p), 2);
    /* A young attempt is not overdue yet: the look at p stops there (its
     * attempts are held oldest first) and the older ones stay judged. */
    co->now = t0 + 200 * MS;
    a[4] = fx_hold(&f, p, fx_task(&f, ti, PRIO_INTERACTIVE, 0, 2000));
    claims_sweep(co, t0 + 210 * MS);
    CHECK_EQU(claims_overdue_count(p), 4);
    CHECK_EQU(p->stalls, 2);
    claims_sweep(co, t0 + 250 * MS);
    CHECK_EQU(p->stalls, 3);
    CHECK_EQU(peer_slots(p), 1);
    claims_sweep(co, t0 + 1000 * MS);
    CHECK_EQU(peer_slots(p), 1); /* never under 1 */
    /* Answers earn it back, one per answer. */
    co->now = t0 + 1000 * MS;
    fx_release(&f, a[0]);
    CHECK_EQU(claims_on_answer(co, p, 100, 1000), 100);
    fx_release(&f, a[1]);
    CHECK_EQU(claims_on_answer(co, p, 100, 1000), 100);
    CHECK_EQU(peer_slots(p), 3);
    CHECK_EQU(claims_overdue_count(p), 3);
    for (int i = 2; i < 5; i++)
        fx_release(&f, a[i]);
    CHECK_EQU(p->inflight, 0);
    CHECK_EQU(claims_overdue_count(p), 0);
    CHECK_EQU(co->n.staller_cuts, 0);
    fx_fini(&f);
}

/* ---- 7. verification rules (verify.c) ------------------------------------------ */

static void test_verify_rules(void)
{
    struct fx f;
    fx_init(&f);
    struct coord *co = f.co;
    char err[256];

    /* --verify: one policy, or per type with '*' for the rest. */
    CHECK_EQ(verify_parse(co, "adaptive", err, sizeof(err)), 0);
    CHECK_EQ(verify_policy_for(co, "sha256"), VP_ADAPTIVE);
    CHECK_EQ(verify_parse(co, "sha256=quorum2,echo=none,*=quorum3", err, sizeof(err)), 0);
    CHECK_EQ(verify_policy_for(co, "sha256"), VP_QUORUM2);
    CHECK_EQ(verify_policy_for(co, "echo"), VP_NONE);
    CHECK_EQ(verify_policy_for(co, "upscale"), VP_QUORUM3);
    static const char *const bad[] = {"bogus", "sha256=", "=none", "SHA=none", "sha256=quorum4"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (!CHECK(verify_parse(co, bad[i], err, sizeof(err)) == P2C2R_EINVAL))
            fprintf(stderr, "  --verify '%s' accepted\n", bad[i]);
    CHECK(strstr(err, "--verify") != NULL);
    CHECK(strcmp(verify_policy_name(VP_QUORUM3), "quorum3") == 0 && strcmp(verify_policy_name(VP_COUNT), "?") == 0);

    /* Spot checks: always below 10 confirmed in a row, then falling, never
     * under the floor. */
    for (uint64_t c = 0; c < 10; c++)
        CHECK(verify_spot_prob(c) == 1.0);
    CHECK(verify_spot_prob(18) == 0.5);
    double prev = 1.0;
    for (uint64_t c = 10; c < 2000; c++) {
        double p = verify_spot_prob(c);
        CHECK(p <= prev && p >= 0.15);
        prev = p;
    }
    CHECK(verify_spot_prob(1000000) == 0.15);

    /* The cost model: a peer's record grows only when a result is checked.
     * Averaged over 200 simulated honest peers, the expected runs per task
     * (1 + p) stay under 1.3 from the 60th task on and reach the floor's
     * 1.15 within 200. */
    enum { NPEERS = 200, NTASKS = 400 };
    double cost[NTASKS] = {0};
    struct rng r = {99};
    for (int k = 0; k < NPEERS; k++) {
        uint64_t consec = 0;
        for (int i = 0; i < NTASKS; i++) {
            double p = verify_spot_prob(consec);
            cost[i] += (1.0 + p) / NPEERS;
            if ((double)(rng_next(&r) >> 11) * 0x1.0p-53 < p)
                consec++;
        }
    }
    for (int i = 60; i < NTASKS; i++)
        if (!CHECK(cost[i] < 1.3))
            fprintf(stderr, "  expected cost %.3f at task %d\n", cost[i], i);
    CHECK(cost[NTASKS - 1] < 1.16);

    /* Independence goes through the group: while a task's result is being
     * verified, no peer of a group that returned one may run it. */
    int ti = fx_type(&f, "sha256");
    struct peer_rec *a = fx_peer(&f, 1u << ti, 1, 4), *b = fx_peer(&f, 1u << ti, 1, 4);
    a->group = a->id;
    b->group = b->id;
    struct task *t = fx_task(&f, ti, PRIO_INTERACTIVE, 0, 1000);
    t->vs = xcalloc(1, sizeof(*t->vs));
    t->vs->ncand = 1;
    t->vs->c[0].n = 1;
    t->vs->c[0].peers[0] = a->id;
    t->vs->c[0].groups[0] = a->group;
    t->vs->c[0].out = xmalloc(1);
    CHECK(!task_fits(co, t, a) && task_fits(co, t, b));
    CHECK(pick_peer(co, t) == b);
    b->group = a->group; /* one operator's two connections */
    CHECK(!task_fits(co, t, b) && pick_peer(co, t) == NULL);
    task_set_state(t, TS_QUEUED);
    task_free(co, t); /* frees the verification state */
    fx_fini(&f);
}

int main(void)
{
    test_class_order();
    test_edf();
    test_aging();
    test_fair_weights();
    test_fair_flood();
    test_reload_weight();
    test_fair_look();
    test_share_queue();
    test_look_past();
    test_excluded();
    test_excluded_only_capable();
    test_trust_score();
    test_pick_few();
    test_pick_sampled();
    test_pick_blob_holder();
    test_pick_by_rate();
    test_admission();
    test_rate_outliers();
    test_admission_probe();
    test_pool_free_sets();
    test_pool_choice();
    test_states();
    test_heaps();
    test_claims_clamp();
    test_held_limit();
    test_overdue_after();
    test_stall_sweep();
    test_verify_rules();
    return check_report("test_sched_rules");
}
