/* share.c - shares: what the scheduler is fair between, and the fair order between them.
 *
 * A share is a renter's part of the fabric: every renter connection with the same key (its
 * token, or its account once accounts exist; "conn:<id>" when the coordinator runs without
 * tokens, so each connection is a share of its own) queues its tasks in the share's queues,
 * one struct squeue per task type, each holding the classes and kinds sched.c orders.
 *
 * Between shares each type is served by start-time fair queueing on the tasks' estimated cost
 * (docs/ARCHITECTURE.md, "Fair shares"): a share's queues of a type carry a tag, the virtual
 * start of its next task; a free peer takes work from the share with the lowest tag, and that
 * tag then moves on by the task's cost over the share's weight.  A share that gets work after
 * being idle starts at the type's virtual time (the tag of the last task dispatched), never
 * below its own earlier tag, so idling earns no credit and a new share waits for no backlog
 * that was queued before it.  The shares with work of a type sit in a min-heap by tag
 * (ttype.sq), so a dispatch costs O(log shares) and nothing when one share has work.
 *
 * Invariants: an squeue is in its type's heap (hidx != NO_IDX) exactly while it holds queued
 * tasks; ttype.wsum is the sum of the weights of the shares in the heap; every queued task
 * holds a reference to its share, so a share with queued tasks is never freed. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"

/* ---- the heap of shares with work, per type ------------------------------------ */

static int sq_before(const struct squeue *a, const struct squeue *b)
{
    return a->tag < b->tag || (a->tag == b->tag && a->sh->id < b->sh->id);
}

static void sq_place(struct ttype *tt, uint32_t i, struct squeue *sq)
{
    tt->sq[i] = sq;
    sq->hidx = i;
}

static void sq_sift(struct ttype *tt, uint32_t i)
{
    struct squeue *sq = tt->sq[i];
    while (i > 0 && sq_before(sq, tt->sq[(i - 1) / 2])) {
        sq_place(tt, i, tt->sq[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= tt->nsq)
            break;
        if (c + 1 < tt->nsq && sq_before(tt->sq[c + 1], tt->sq[c]))
            c++;
        if (!sq_before(tt->sq[c], sq))
            break;
        sq_place(tt, i, tt->sq[c]);
        i = c;
    }
    sq_place(tt, i, sq);
}

void share_activate(struct coord *co, int ti, struct squeue *sq)
{
    struct ttype *tt = &co->types[ti];
    assert(sq->hidx == NO_IDX && sq->queued > 0);
    /* A tag from an earlier busy period of the type means nothing now. */
    if (sq->epoch != tt->fair_epoch || sq->tag < tt->vtime)
        sq->tag = tt->vtime;
    sq->epoch = tt->fair_epoch;
    if (tt->nsq == tt->sq_cap) {
        tt->sq_cap = tt->sq_cap ? tt->sq_cap * 2 : 8;
        tt->sq = xrealloc(tt->sq, tt->sq_cap * sizeof(*tt->sq));
    }
    sq_place(tt, tt->nsq++, sq);
    sq_sift(tt, tt->nsq - 1);
    tt->wsum += sq->sh->weight;
}

void share_deactivate(struct coord *co, int ti, struct squeue *sq)
{
    struct ttype *tt = &co->types[ti];
    uint32_t i = sq->hidx;
    assert(i < tt->nsq && tt->sq[i] == sq && sq->queued == 0);
    sq->hidx = NO_IDX;
    struct squeue *last = tt->sq[--tt->nsq];
    if (i < tt->nsq) {
        sq_place(tt, i, last);
        sq_sift(tt, i);
    }
    tt->wsum -= sq->sh->weight;
    if (tt->nsq == 0) {
        /* Idle: the next busy period starts a new virtual clock at 0, so
         * tags stay small numbers (a double keeps its precision). */
        tt->wsum = 0;
        tt->vtime = 0;
        tt->fair_epoch++;
    }
}

void share_charge(struct coord *co, struct task *t)
{
    struct squeue *sq = t->sq;
    struct ttype *tt = &co->types[t->tt];
    assert(sq && sq->hidx != NO_IDX);
    if (sq->tag > tt->vtime)
        tt->vtime = sq->tag;
    sq->tag += (double)t->cost / sq->sh->weight;
    sq_sift(tt, sq->hidx);
}

double share_lag(const struct ttype *tt, const struct squeue *sq)
{
    double unit = tt->cost_ewma >= 1 ? tt->cost_ewma : 1;
    return (sq->tag - tt->vtime) / unit;
}

/* ---- shares by key --------------------------------------------------------------- */

static uint32_t key_bucket(const char *key, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a: keys are the coordinator's own tokens and names */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)key[i]) * 16777619u;
    return h % SHARE_BUCKETS;
}

static void share_init(struct share *sh, uint32_t id, const char *key, size_t len, double weight)
{
    memset(sh, 0, sizeof(*sh));
    sh->id = id;
    sh->weight = weight > 0 ? weight : 1;
    sh->key_len = (uint16_t)len;
    memcpy(sh->key, key, len);
    sh->key[len] = '\0';
}

static struct share *share_find(struct coord *co, const char *key, size_t len)
{
    for (struct share *sh = co->share_tab[key_bucket(key, len)]; sh; sh = sh->hnext)
        if (sh->key_len == len && memcmp(sh->key, key, len) == 0)
            return sh;
    return NULL;
}

/* A new weight applies from the next charge; the sums of the types the
 * share has work in follow. */
static void share_set_weight(struct coord *co, struct share *sh, double weight)
{
    if (weight > 0 && weight != sh->weight) {
        for (uint32_t i = 0; i < PROTO_MAX_TYPES; i++)
            if (sh->sq[i] && sh->sq[i]->hidx != NO_IDX)
                co->types[i].wsum += weight - sh->weight;
        sh->weight = weight;
    }
}

void share_reweight(struct coord *co, const char *key, size_t len, double weight)
{
    struct share *sh = share_find(co, key, len);
    if (sh)
        share_set_weight(co, sh, weight);
}

struct share *share_get(struct coord *co, const char *key, size_t len, double weight)
{
    assert(len <= SHARE_KEY_MAX);
    uint32_t b = key_bucket(key, len);
    struct share *sh = share_find(co, key, len);
    if (sh) {
        share_set_weight(co, sh, weight);
        sh->refs++;
        return sh;
    }
    sh = xmalloc(sizeof(*sh));
    share_init(sh, ++co->next_share_id, key, len, weight);
    sh->refs = 1;
    sh->hnext = co->share_tab[b];
    co->share_tab[b] = sh;
    co->nshares++;
    return sh;
}

struct share *share_ref(struct share *sh)
{
    if (sh)
        sh->refs++;
    return sh;
}

static void share_free_queues(struct share *sh)
{
    for (uint32_t i = 0; i < PROTO_MAX_TYPES; i++) {
        struct squeue *sq = sh->sq[i];
        if (!sq)
            continue;
        for (int k = 0; k < 2; k++)
            for (int c = 0; c < PRIO_CLASSES; c++)
                free(sq->q[k][c].h.a);
        free(sq);
        sh->sq[i] = NULL;
    }
}

void share_put(struct coord *co, struct share *sh)
{
    if (!sh || --sh->refs > 0 || sh == co->share_default)
        return;
    assert(sh->queued == 0);
    struct share **pp = &co->share_tab[key_bucket(sh->key, sh->key_len)];
    while (*pp != sh)
        pp = &(*pp)->hnext;
    *pp = sh->hnext;
    co->nshares--;
    share_free_queues(sh);
    free(sh);
}

struct squeue *share_squeue(struct coord *co, struct share *sh, int ti)
{
    (void)co;
    struct squeue *sq = sh->sq[ti];
    if (sq)
        return sq;
    sq = xcalloc(1, sizeof(*sq));
    sq->sh = sh;
    sq->hidx = NO_IDX;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < PRIO_CLASSES; c++) {
            sq->q[k][c].h.a = NULL;
            list_init(&sq->q[k][c].fifo);
        }
    sh->sq[ti] = sq;
    return sq;
}

int share_queue_full(const struct coord *co, const struct share *sh, size_t len)
{
    uint64_t others = co->queued_total - sh->queued;
    uint64_t room = co->cfg.queue_max > others ? co->cfg.queue_max - others : 0;
    uint64_t part = room / 2 ? room / 2 : room; /* a queue of one task is all its first share's */
    if (sh->queued + 1 > part)
        return 1;
    uint64_t ob = co->queued_bytes - sh->queued_bytes;
    uint64_t broom = co->cfg.queue_max_bytes > ob ? co->cfg.queue_max_bytes - ob : 0;
    return sh->queued_bytes + len > broom / 2;
}

void shares_init(struct coord *co)
{
    share_init(&co->share0, 0, "", 0, 1);
    co->share0.refs = 1;
    co->share_default = &co->share0;
}

void shares_free(struct coord *co)
{
    for (uint32_t b = 0; b < SHARE_BUCKETS; b++) {
        struct share *sh;
        while ((sh = co->share_tab[b]) != NULL) {
            co->share_tab[b] = sh->hnext;
            share_free_queues(sh);
            free(sh);
        }
    }
    co->nshares = 0;
    share_free_queues(&co->share0);
    for (uint32_t i = 0; i < PROTO_MAX_TYPES; i++) {
        free(co->types[i].sq);
        co->types[i].sq = NULL;
        co->types[i].nsq = co->types[i].sq_cap = 0;
    }
}

struct task *type_first_queued(struct coord *co, int ti)
{
    struct ttype *tt = &co->types[ti];
    if (tt->nsq == 0)
        return NULL;
    struct squeue *sq = tt->sq[0];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < PRIO_CLASSES; c++)
            if (sq->q[k][c].h.n)
                return sq->q[k][c].h.a[0];
    return NULL;
}
