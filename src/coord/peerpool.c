/* peerpool.c - peer pools: each peer is in the pool its operator declared (volunteer or
 * cloud, PEER_REGISTER's pool block) and asks a price per unit of work; a task goes to the
 * cheapest pool whose peers are expected to meet its deadline and moves to a pricier one
 * when the cheap one cannot (docs/ARCHITECTURE.md, "Pools").
 *
 * Invariants:
 * - each type's free set (ttype.free) is partitioned by pool: the free peers of pool k are
 *   free[free_end[k-1] .. free_end[k]) (from 0 for k = 0), so that choosing within one pool
 *   samples its own peers in O(1); free_end[PROTO_POOLS - 1] == nfree;
 * - ttype.npool[k] counts the registered peers of the type in pool k, co->pools[k] the
 *   connected peers of pool k and their summed price;
 * - a type whose peers are all in one pool is scheduled exactly as without pools.
 * Everything runs on the coordinator's loop thread. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coord/coord_int.h"

static const char *const pool_names[PROTO_POOLS] = {"volunteer", "cloud"};

const char *pool_name(int k)
{
    return k >= 0 && k < PROTO_POOLS ? pool_names[k] : "?";
}

int pool_parse(const char *s, size_t n)
{
    for (int k = 0; k < PROTO_POOLS; k++)
        if (strlen(pool_names[k]) == n && memcmp(pool_names[k], s, n) == 0)
            return k;
    return -1;
}

int pools_parse_trust(struct coord *co, const char *spec, char *err, size_t errcap)
{
    const char *s = spec, *it;
    size_t n;
    while (util_list_next(&s, &it, &n)) {
        int k = pool_parse(it, n);
        if (k < 0) {
            snprintf(err, errcap, "bad --trust-pool '%s': expected POOL[,POOL] with POOL volunteer or cloud",
                     spec);
            return P2C2R_EINVAL;
        }
        co->trust_pools |= (uint8_t)(1u << k);
    }
    return 0;
}

static uint32_t free_start(const struct ttype *tt, int k)
{
    return k ? tt->free_end[k - 1] : 0;
}

static void free_put(struct ttype *tt, int ti, uint32_t pos, struct peer_rec *p)
{
    tt->free[pos] = p;
    p->ty[ti].fpos = pos;
}

/* Adds p to its pool's part of tt's free set: the first peer of each later
 * pool moves to the end of its part, opening a hole at the end of p's. */
void pool_free_add(struct ttype *tt, int ti, struct peer_rec *p)
{
    uint32_t hole = tt->nfree++;
    for (int j = PROTO_POOLS - 1; j > p->pool; j--) {
        uint32_t first = free_start(tt, j);
        if (first != hole)
            free_put(tt, ti, hole, tt->free[first]);
        hole = first;
        tt->free_end[j]++;
    }
    free_put(tt, ti, hole, p);
    tt->free_end[p->pool]++;
}

/* Removes p from tt's free set: the last peer of its pool fills its place,
 * and the last peer of each later pool the hole that leaves. */
void pool_free_remove(struct ttype *tt, int ti, struct peer_rec *p)
{
    uint32_t pos = p->ty[ti].fpos;
    assert(pos < tt->nfree && tt->free[pos] == p);
    for (int j = p->pool; j < PROTO_POOLS; j++) {
        uint32_t last = --tt->free_end[j];
        if (last != pos)
            free_put(tt, ti, pos, tt->free[last]);
        pos = last;
    }
    tt->nfree--;
}

void pools_peer_join(struct coord *co, struct peer_rec *p)
{
    co->pools[p->pool].peers++;
    co->pools[p->pool].cost_sum += p->cost;
}

void pools_peer_leave(struct coord *co, struct peer_rec *p)
{
    co->pools[p->pool].peers--;
    co->pools[p->pool].cost_sum -= p->cost;
}

/* Pools by price, cheapest first: the mean price its connected peers ask
 * (ties: volunteer first).  Returns how many pools have peers of tt. */
static int pools_by_price(const struct coord *co, const struct ttype *tt, int order[PROTO_POOLS])
{
    int n = 0;
    for (int k = 0; k < PROTO_POOLS; k++) {
        if (!tt->npool[k])
            continue;
        const struct pool_stat *ps = &co->pools[k];
        double price = ps->peers ? (double)ps->cost_sum / (double)ps->peers : 0;
        int i = n++;
        for (; i > 0; i--) {
            const struct pool_stat *q = &co->pools[order[i - 1]];
            double qp = q->peers ? (double)q->cost_sum / (double)q->peers : 0;
            if (qp <= price)
                break;
            order[i] = order[i - 1];
        }
        order[i] = k;
    }
    return n;
}

/* us per cost unit of tasks of type ti on p: its own rate, else its pool's
 * for the type, else 0 (unknown). */
static double pool_rate_for(const struct ttype *tt, const struct peer_rec *p, int ti)
{
    if (p->ty[ti].rate > 0)
        return p->ty[ti].rate;
    return urate_win_get(&tt->prate[p->pool]);
}

uint64_t pool_expect_us(const struct coord *co, const struct peer_rec *p, const struct task *t)
{
    const struct ttype *tt = &co->types[t->tt];
    double rate = pool_rate_for(tt, p, t->tt);
    if (rate <= 0)
        return 0;
    double us = (double)t->cost * rate + urate_win_get(&tt->disp);
    return us < 1 ? 1 : us < 1e18 ? (uint64_t)us : (uint64_t)1e18;
}

int pools_mixed(const struct ttype *tt)
{
    int n = 0;
    for (int k = 0; k < PROTO_POOLS; k++)
        n += tt->npool[k] != 0;
    return n > 1;
}

struct peer_rec *pools_pick(struct coord *co, const struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    int order[PROTO_POOLS];
    int n = pools_by_price(co, tt, order);
    uint64_t left = t->deadline_us > co->now ? t->deadline_us - co->now : 0;
    struct peer_rec *fallback = NULL;
    uint64_t fallback_us = 0;
    int cheaper_missed = 0;
    for (int i = 0; i < n; i++) {
        int k = order[i];
        uint32_t lo = free_start(tt, k), hi = tt->free_end[k];
        if (lo == hi)
            continue;
        struct peer_rec *p = pick_in(co, t, lo, hi - lo);
        if (!p)
            continue;
        /* Nothing learned yet for this peer or its pool: it is tried, and
         * what it runs teaches the estimate. */
        uint64_t us = pool_expect_us(co, p, t);
        if (us <= left) {
            if (cheaper_missed)
                co->pools[k].spilled++;
            return p;
        }
        cheaper_missed = 1;
        if (!fallback || us < fallback_us)
            fallback = p, fallback_us = us;
    }
    /* No free peer is expected to meet the deadline: the one expected to
     * come closest runs it. */
    return fallback;
}

double pools_type_rate(const struct ttype *tt, int *known)
{
    *known = 0;
    double best = 0;
    for (int k = 0; k < PROTO_POOLS; k++) {
        if (!tt->npool[k])
            continue;
        if (tt->prate[k].n < STAT_MIN_SAMPLES)
            return 0; /* a pool of the type not yet measured: unknown */
        double r = urate_win_get(&tt->prate[k]);
        if (best == 0 || r < best)
            best = r;
    }
    *known = best > 0;
    return best;
}

/* ---- STATS and Prometheus: one table ------------------------------------- */

static const struct pool_def {
    const char *key, *prom, *kind, *help;
    size_t off;
} pool_defs[] = {
    {"peers", "p2c2r_pool_peers", "gauge", "Registered peer connections, by pool.", offsetof(struct pool_stat, peers)},
    {"cost_sum", "p2c2r_pool_cost_sum", "gauge", "Sum of the prices (credits per cost unit) the pool's connected peers ask.", offsetof(struct pool_stat, cost_sum)},
    {"placed", "p2c2r_pool_placed_total", "counter", "Attempts sent to the pool's peers (first runs, retries, hedges, checks).", offsetof(struct pool_stat, placed)},
    {"spilled", "p2c2r_pool_spilled_total", "counter", "Tasks placed in the pool because a cheaper pool's free peers were expected to miss their deadline.", offsetof(struct pool_stat, spilled)},
};

static uint64_t pool_value(const struct pool_stat *ps, const struct pool_def *d)
{
    uint64_t v;
    memcpy(&v, (const char *)ps + d->off, sizeof(v));
    return v;
}

void pools_stats_json(const struct coord *co, struct buf *o)
{
    char tmp[160];
    buf_append(o, "\"pools\":[", 9);
    for (int k = 0; k < PROTO_POOLS; k++) {
        int n = snprintf(tmp, sizeof(tmp), "%s{\"name\":\"%s\",\"trusted\":%s", k ? "," : "", pool_name(k),
                         (co->trust_pools >> k) & 1 ? "true" : "false");
        buf_append(o, tmp, (size_t)n);
        for (size_t i = 0; i < ARRAY_LEN(pool_defs); i++) {
            n = snprintf(tmp, sizeof(tmp), ",\"%s\":%" PRIu64, pool_defs[i].key,
                         pool_value(&co->pools[k], &pool_defs[i]));
            buf_append(o, tmp, (size_t)n);
        }
        buf_append(o, "}", 1);
    }
    buf_append(o, "]", 1);
}

void pools_metrics(const struct coord *co, struct buf *o)
{
    char lb[48];
    for (size_t i = 0; i < ARRAY_LEN(pool_defs); i++) {
        const struct pool_def *d = &pool_defs[i];
        prom_help(o, d->prom, d->kind, d->help);
        for (int k = 0; k < PROTO_POOLS; k++) {
            snprintf(lb, sizeof(lb), "pool=\"%s\"", pool_name(k));
            uint64_t v = pool_value(&co->pools[k], d);
            if (d->kind[0] == 'c')
                prom_counter(o, d->prom, lb, v);
            else
                prom_gauge(o, d->prom, lb, (double)v);
        }
    }
}
