/* mem.c - the memory budget and its accounts (see mem.h).
 *
 * Invariants: m->used is the sum of m->by_kind, and equals the sum of every
 * account's used plus the coordinator's own charges (account NULL); an
 * account is freed exactly when its last reference goes. */
#include "coord/mem.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

/* Headroom for what is not charged: an eighth of the budget and 8 MiB. */
uint64_t mem_usable(uint64_t budget_bytes)
{
    uint64_t keep = budget_bytes / 8 + (8u << 20);
    return budget_bytes > keep + (1u << 20) ? budget_bytes - keep : 1u << 20;
}

void mem_init(struct mem_budget *m, uint64_t budget_bytes, uint64_t share_bytes)
{
    m->limit = mem_usable(budget_bytes);
    m->share = share_bytes ? share_bytes : m->limit / 4;
    if (m->share > m->limit)
        m->share = m->limit;
}

struct mem_acct *mem_acct_new(void)
{
    struct mem_acct *a = xcalloc(1, sizeof(*a));
    a->refs = 1;
    return a;
}

void mem_acct_ref(struct mem_acct *a) { a->refs++; }

void mem_acct_unref(struct mem_acct *a)
{
    if (!a)
        return;
    assert(a->refs > 0);
    if (--a->refs == 0) {
        assert(a->used == 0);
        free(a);
    }
}

void mem_charge(struct mem_budget *m, struct mem_acct *a, int k, uint64_t n)
{
    m->used += n;
    m->by_kind[k] += n;
    if (m->used > m->peak)
        m->peak = m->used;
    if (a) {
        a->used += n;
        a->by_kind[k] += n;
    }
}

void mem_release(struct mem_budget *m, struct mem_acct *a, int k, uint64_t n)
{
    assert(m->used >= n && m->by_kind[k] >= n);
    m->used -= n;
    m->by_kind[k] -= n;
    if (a) {
        assert(a->used >= n && a->by_kind[k] >= n);
        a->used -= n;
        a->by_kind[k] -= n;
    }
}

void mem_adjust(struct mem_budget *m, struct mem_acct *a, int k, uint64_t old, uint64_t now)
{
    if (now > old)
        mem_charge(m, a, k, now - old);
    else if (old > now)
        mem_release(m, a, k, old - now);
}

int mem_admit(struct mem_budget *m, const struct mem_acct *a, uint64_t n, char *why, size_t cap)
{
    if (m->used + n > m->limit) {
        m->refused++;
        snprintf(why, cap,
                 "coordinator memory budget full: %" PRIu64 " of %" PRIu64 " bytes in use "
                 "(--mem-budget); retry when tasks finish",
                 m->used, m->limit);
        return MEM_OVER_BUDGET;
    }
    if (a && a->used + n > m->share) {
        m->refused++;
        snprintf(why, cap,
                 "renter memory share full: %" PRIu64 " of %" PRIu64 " bytes held for this "
                 "renter (--mem-share); read results or wait for tasks to finish",
                 a->used, m->share);
        return MEM_OVER_SHARE;
    }
    return MEM_OK;
}
