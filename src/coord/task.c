/* task.c - the task slab, the task state machine, the two task heaps, coalescing of identical
 * tasks, and how a task ends: one outcome per task, delivered once. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"
#include "coord/jobs.h"

static void coalesce_remove(struct coord *co, struct task *t);

const char *task_state_name(int s)
{
    static const char *const n[] = {"free", "queued", "running", "follower", "orphan"};
    return s >= 0 && s <= TS_ORPHAN ? n[s] : "?";
}

/* Legal task transitions: free->queued|running|follower (placed, queued or
 * coalesced at submit), queued->running, running->queued (every attempt
 * lost or failed, retried), running->orphan (outcome given while a peer
 * still holds an attempt), any->free. */
int task_transition_ok(int from, int to)
{
    switch (to) {
    case TS_FREE: return from != TS_FREE;
    case TS_QUEUED: return from == TS_FREE || from == TS_RUNNING;
    case TS_RUNNING: return from == TS_FREE || from == TS_QUEUED;
    case TS_FOLLOWER: return from == TS_FREE;
    case TS_ORPHAN: return from == TS_RUNNING;
    default: return 0;
    }
}

/* ---- task slab ------------------------------------------------------------- */

static struct task *task_at(struct coord *co, uint32_t idx)
{
    return &co->chunks[idx / TASK_CHUNK][idx % TASK_CHUNK];
}

/* An illegal transition is a bug in this file, never a remote's doing. */
void task_set_state(struct task *t, int to)
{
    if (!task_transition_ok(t->state, to)) {
        LOG_E("task_bad_transition", "task=%" PRIx64 " from=%s to=%s", t->id,
              task_state_name(t->state), task_state_name(to));
        abort();
    }
    t->state = (uint8_t)to;
}

struct task *task_alloc(struct coord *co)
{
    if (co->free_head == NO_FREE) {
        uint32_t base = co->nchunks * TASK_CHUNK;
        co->chunks = xrealloc(co->chunks, (co->nchunks + 1) * sizeof(*co->chunks));
        struct task *ch = xcalloc(TASK_CHUNK, sizeof(struct task));
        co->chunks[co->nchunks++] = ch;
        for (uint32_t i = 0; i < TASK_CHUNK; i++)
            ch[i].next_free = i + 1 < TASK_CHUNK ? base + i + 1 : NO_FREE;
        co->free_head = base;
    }
    uint32_t idx = co->free_head;
    struct task *t = task_at(co, idx);
    co->free_head = t->next_free;
    uint32_t gen = ++co->gen;
    if (gen == 0)
        gen = ++co->gen;
    memset(t, 0, offsetof(struct task, small));
    t->id = (uint64_t)gen << 32 | idx;
    t->qidx = t->dlidx = NO_IDX;
    list_init(&t->rnode);
    list_init(&t->qnode);
    list_init(&t->followers);
    list_init(&t->vnode);
    list_init(&t->cnode);
    for (int i = 0; i < 2; i++) {
        t->at[i].t = t;
        list_init(&t->at[i].pnode);
        list_init(&t->at[i].hnode);
    }
    co->tasks_live++;
    return t;
}

void task_free(struct coord *co, struct task *t)
{
    assert(t->nlive == 0 && t->qidx == NO_IDX && t->dlidx == NO_IDX && !t->renter);
    assert(list_empty(&t->followers));
    task_set_state(t, TS_FREE);
    coalesce_remove(co, t);
    for (unsigned i = 0; i < t->nblobs; i++)
        blob_unref(co, t->blobs[i]);
    t->nblobs = 0;
    list_remove(&t->rnode);
    list_remove(&t->qnode);
    if (t->body != t->small)
        free(t->body);
    t->body = NULL;
    verify_free(t);
    share_put(co, t->share);
    t->share = NULL;
    limits_task_release(co, t);
    uint32_t idx = (uint32_t)t->id;
    t->id = 0;
    t->next_free = co->free_head;
    co->free_head = idx;
    co->tasks_live--;
}

struct task *task_lookup(struct coord *co, uint64_t id)
{
    uint32_t idx = (uint32_t)id;
    if (idx >= co->nchunks * TASK_CHUNK)
        return NULL;
    struct task *t = task_at(co, idx);
    return t->id == id && t->state != TS_FREE ? t : NULL;
}

/* ---- heaps ------------------------------------------------------------------
 * Two heaps hold tasks: a queue's EDF heap (position in qidx), ordered by
 * (urgent_us, seq), and the global deadline heap (dlidx), ordered by
 * (deadline_us, seq). */

/* Queue order: whether a should run before b. */
int task_before(const struct task *a, const struct task *b)
{
    return a->urgent_us < b->urgent_us || (a->urgent_us == b->urgent_us && a->seq < b->seq);
}

/* Deadline-heap order: whether a times out before b. */
static int task_due_before(const struct task *a, const struct task *b)
{
    return a->deadline_us < b->deadline_us || (a->deadline_us == b->deadline_us && a->seq < b->seq);
}

static int heap_before(const struct task *a, const struct task *b, int dl)
{
    return dl ? task_due_before(a, b) : task_before(a, b);
}

static uint32_t *heap_pos(struct task *t, int dl) { return dl ? &t->dlidx : &t->qidx; }

static void heap_place(struct theap *h, uint32_t i, struct task *t, int dl)
{
    h->a[i] = t;
    *heap_pos(t, dl) = i;
}

static void heap_sift(struct theap *h, uint32_t i, int dl)
{
    struct task *t = h->a[i];
    while (i > 0 && heap_before(t, h->a[(i - 1) / 2], dl)) {
        heap_place(h, i, h->a[(i - 1) / 2], dl);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_before(h->a[c + 1], h->a[c], dl))
            c++;
        if (!heap_before(h->a[c], t, dl))
            break;
        heap_place(h, i, h->a[c], dl);
        i = c;
    }
    heap_place(h, i, t, dl);
}

void heap_push(struct theap *h, struct task *t, int dl)
{
    assert(*heap_pos(t, dl) == NO_IDX);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = xrealloc(h->a, h->cap * sizeof(*h->a));
    }
    heap_place(h, h->n++, t, dl);
    heap_sift(h, h->n - 1, dl);
}

void heap_remove(struct theap *h, struct task *t, int dl)
{
    uint32_t i = *heap_pos(t, dl);
    assert(i < h->n && h->a[i] == t);
    *heap_pos(t, dl) = NO_IDX;
    struct task *last = h->a[--h->n];
    if (i < h->n) {
        heap_place(h, i, last, dl);
        heap_sift(h, i, dl);
    }
}

static void dl_remove(struct coord *co, struct task *t)
{
    if (t->dlidx != NO_IDX)
        heap_remove(&co->dl, t, 1);
}

/* ---- result cache and coalescing ---------------------------------------------- */

static uint32_t coalesce_bucket(const struct rcache_key *k) { return (uint32_t)(k->lo % COALESCE_BUCKETS); }

/* A task in flight with the same key whose peer will satisfy min_version. */
struct task *coalesce_find(struct coord *co, const struct rcache_key *k, uint32_t min_version)
{
    for (struct task *t = co->coalesce[coalesce_bucket(k)]; t; t = t->cnext)
        if (t->key.lo == k->lo && t->key.hi == k->hi && t->min_version >= min_version &&
            t->renter && (t->state == TS_QUEUED || t->state == TS_RUNNING))
            return t;
    return NULL;
}

void coalesce_add(struct coord *co, struct task *t)
{
    struct task **head = &co->coalesce[coalesce_bucket(&t->key)];
    t->cnext = *head;
    *head = t;
    t->keyed = 1;
}

static void coalesce_remove(struct coord *co, struct task *t)
{
    if (!t->keyed)
        return;
    struct task **pp = &co->coalesce[coalesce_bucket(&t->key)];
    while (*pp != t)
        pp = &(*pp)->cnext;
    *pp = t->cnext;
    t->cnext = NULL;
    t->keyed = 0;
}

/* Ends attempt a (its RESULT came, or its peer is gone). */
void attempt_end(struct coord *co, struct attempt *a)
{
    struct peer_rec *p = a->peer;
    assert(p && a->t->nlive > 0);
    list_remove(&a->pnode);
    list_remove(&a->hnode);
    a->peer = NULL;
    a->t->nlive--;
    p->inflight--;
    peer_refresh(co, p);
}

/* t's outcome was given while peers still hold it: nothing will run it
 * again, so its body and blob pins go now, and only its slot stays charged
 * (a stalled peer holding many orphans holds little memory). */
static void task_orphan(struct coord *co, struct task *t)
{
    task_set_state(t, TS_ORPHAN);
    for (unsigned i = 0; i < t->nblobs; i++)
        blob_unref(co, t->blobs[i]);
    t->nblobs = 0;
    limits_task_shrink(co, t);
    if (t->body != t->small)
        free(t->body);
    t->body = NULL;
    t->body_len = 0;
}

/* Tells every peer still running t to stop (advisory: the attempt ends
 * with the peer's RESULT, which is then discarded). */
static void task_cancel_attempts(struct task *t)
{
    for (int i = 0; i < 2; i++) {
        struct attempt *a = &t->at[i];
        if (!a->peer || a->cancelled)
            continue;
        a->cancelled = 1;
        list_remove(&a->hnode);
        /* Best effort: with its output full the peer just runs it. */
        (void)conn_frame(a->peer->conn, MSG_CANCEL, 0, t->id, 0);
    }
}

int send_deliver(struct coord *co, struct conn *r, uint64_t ticket, int status,
                        uint16_t attempts, uint32_t exec_us, uint32_t peer_id, uint32_t flags,
                        const uint8_t *out, size_t len)
{
    char why[200];
    if (status == 0 && account_output_refused(r, len, why, sizeof(why))) {
        status = P2C2R_ETOOBIG;
        out = (const uint8_t *)why;
        len = strlen(why);
    }
    if (status == 0)
        co->n.delivered_ok++;
    else
        co->n.delivered_err++;
    uint8_t head[PROTO_DELIVER_PREFIX];
    proto_put_deliver_head(head, (uint16_t)(status < 0 ? -status : status), attempts, exec_us,
                           peer_id, flags);
    if (conn_send(r, MSG_DELIVER, ticket, head, sizeof(head), out, len) != 0 &&
        r->state < CS_DRAINING) {
        conn_fail(r, P2C2R_ELIMIT, "renter output over %zu bytes: read your results",
                  co->cfg.max_output);
        return -1;
    }
    return 0;
}

/* Gives t its final outcome: a DELIVER frame to its renter (if still there).
 * Detaches t from the renter and the deadline heap; the caller frees t or
 * keeps it as an orphan. */
static void task_deliver(struct coord *co, struct task *t, int status, const uint8_t *out,
                         size_t len, uint32_t exec_us, uint32_t peer_id, uint32_t flags)
{
    struct conn *r = t->renter;
    dl_remove(co, t);
    if (t->job)
        jobs_on_outcome(co, t, status, out, len, exec_us, peer_id, flags);
    if (!r)
        return;
    t->renter = NULL;
    list_remove(&t->rnode);
    r->inflight--;
    struct ttype *tt = &co->types[t->tt];
    tt->outcomes[status < 0 ? -status : 0]++;
    hist_add(&tt->h_total, co->now - t->submit_us);
    send_deliver(co, r, t->ticket, status, t->attempts, exec_us, peer_id, flags, out, len);
}

static void deliver_text(struct coord *co, struct task *t, int status, const char *text)
{
    task_deliver(co, t, status, (const uint8_t *)text, strlen(text), 0, 0,
                 t->hedged ? PROTO_DELIVER_F_HEDGED : 0);
}

/* The final outcome of t's computation: t and every task coalesced onto it
 * get it.  t is freed, or kept as an orphan while peers still hold it. */
void task_finish(struct coord *co, struct task *t, int status, const uint8_t *out,
                        size_t len, uint32_t exec_us, uint32_t peer_id)
{
    uint32_t fl = (t->hedged ? PROTO_DELIVER_F_HEDGED : 0) | (t->verified ? PROTO_DELIVER_F_VERIFIED : 0);
    task_deliver(co, t, status, out, len, exec_us, peer_id, fl);
    coalesce_remove(co, t);
    struct list_node *n;
    while ((n = list_pop_front(&t->followers)) != NULL) {
        struct task *f = list_entry(n, struct task, qnode);
        f->leader = NULL;
        task_deliver(co, f, status, out, len, exec_us, peer_id, fl | PROTO_DELIVER_F_CACHED);
        task_free(co, f);
    }
    if (t->state == TS_QUEUED)
        task_dequeue(co, t);
    if (t->nlive) {
        task_cancel_attempts(t);
        task_orphan(co, t);
    } else {
        task_free(co, t);
    }
}

/* t's renter is done with it (outcome given early, or gone) but tasks are
 * coalesced onto it: the first follower takes t's place, so the work goes
 * on for the others.  Returns the follower, which now stands for t's old
 * renter and ticket; the caller gives it its outcome and frees it. */
static struct task *task_handoff(struct coord *co, struct task *t)
{
    struct task *f = list_entry(list_pop_front(&t->followers), struct task, qnode);
    f->leader = NULL;
    struct conn *rt = t->renter, *rf = f->renter;
    list_remove(&t->rnode);
    list_remove(&f->rnode);
    t->renter = rf;
    f->renter = rt;
    uint64_t x = t->ticket;
    t->ticket = f->ticket;
    f->ticket = x;
    if (rf)
        list_push_back(&rf->tasks, &t->rnode);
    if (rt)
        list_push_back(&rt->tasks, &f->rnode);
    dl_remove(co, t);
    dl_remove(co, f);
    x = t->deadline_us;
    t->deadline_us = f->deadline_us;
    f->deadline_us = x;
    x = t->submit_us;
    t->submit_us = f->submit_us;
    f->submit_us = x;
    x = t->seq;
    t->seq = f->seq;
    f->seq = x;
    struct share *sh = t->share; /* the work now runs in its new renter's share */
    t->share = f->share;
    f->share = sh;
    int queued = t->state == TS_QUEUED;
    if (queued)
        task_dequeue(co, t);
    t->prio = f->prio;
    if (queued)
        task_enqueue(co, t, 0);
    if (t->renter)
        heap_push(&co->dl, t, 1);
    return f;
}

/* Ends t now with status (timeout, cancel, shutdown, renter gone): a queued
 * task is freed, a running one becomes an orphan until its peers answer or
 * go, and they are told to cancel.  A task others are coalesced onto hands
 * its work over to them instead. */
void task_end_early(struct coord *co, struct task *t, int status, const char *text)
{
    switch (t->state) {
    case TS_FOLLOWER:
        list_remove(&t->qnode);
        t->leader = NULL;
        deliver_text(co, t, status, text);
        task_free(co, t);
        return;
    case TS_QUEUED:
    case TS_RUNNING:
        if (!list_empty(&t->followers)) {
            struct task *f = task_handoff(co, t);
            deliver_text(co, f, status, text);
            task_free(co, f);
            return;
        }
        deliver_text(co, t, status, text);
        coalesce_remove(co, t);
        if (t->state == TS_QUEUED) {
            task_dequeue(co, t);
            task_free(co, t);
        } else {
            task_cancel_attempts(t);
            task_orphan(co, t);
        }
        return;
    default:
        return; /* orphan: its outcome was given */
    }
}

/* ---- periodic work -------------------------------------------------------- */

/* Ends every task whose deadline passed: O(expired * log n) from the
 * deadline heap. */
void task_sweep_deadlines(struct coord *co, uint64_t now)
{
    while (co->dl.n && co->dl.a[0]->deadline_us <= now) {
        struct task *t = co->dl.a[0];
        co->n.timed_out++;
        const char *why = t->state == TS_QUEUED     ? "deadline passed while queued"
                          : t->state == TS_FOLLOWER ? "deadline passed while an identical task ran"
                                                    : "deadline passed while running";
        /* A peer that let a deadline pass is counted slower, not broken. */
        for (int i = 0; i < 2; i++)
            if (t->at[i].peer)
                peer_bad_event(t->at[i].peer);
        task_end_early(co, t, P2C2R_ETIMEDOUT, why);
    }
}
