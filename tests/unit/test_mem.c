/* test_mem.c - the coordinator's memory budget (src/coord/mem.c) against a simple model:
 * random charges and releases over a few accounts keep every total equal to the model's
 * sums, mem_admit refuses exactly what would pass the limit or a share and counts it, and an
 * account lives until its last reference goes. */
#include "check.h"

#include <stdlib.h>

#include "coord/mem.h"

#define ACCTS 4

static uint64_t rnd(uint64_t *s)
{
    *s += 0x9e3779b97f4a7c15ull;
    uint64_t z = *s;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_usable(void)
{
    CHECK_EQ(mem_usable(256ull << 20), (256ull << 20) - (32ull << 20) - (8ull << 20));
    CHECK_EQ(mem_usable(64ull << 20), (64ull << 20) - (8ull << 20) - (8ull << 20));
    CHECK(mem_usable(1u << 20) > 0); /* never 0, whatever the budget */
    struct mem_budget m = {0};
    mem_init(&m, 64ull << 20, 0);
    CHECK_EQ(m.share, m.limit / 4);
    mem_init(&m, 64ull << 20, 1ull << 40);
    CHECK_EQ(m.share, m.limit); /* a share never passes the whole */
}

static void test_model(void)
{
    struct mem_budget m = {0};
    mem_init(&m, 64ull << 20, 4u << 20);
    struct mem_acct *a[ACCTS];
    uint64_t used[ACCTS + 1][MEM_KINDS] = {{0}}; /* [ACCTS]: the coordinator's own */
    for (int i = 0; i < ACCTS; i++)
        a[i] = mem_acct_new();
    uint64_t s = 42, refused = 0;
    for (int step = 0; step < 100000; step++) {
        int i = (int)(rnd(&s) % (ACCTS + 1)), k = (int)(rnd(&s) % MEM_KINDS);
        struct mem_acct *acct = i < ACCTS ? a[i] : NULL;
        uint64_t n = rnd(&s) % (1u << 20);
        switch (rnd(&s) % 3) {
        case 0: { /* new work: admitted exactly when it fits */
            uint64_t total = 0, mine = 0;
            for (int j = 0; j <= ACCTS; j++)
                for (int kk = 0; kk < MEM_KINDS; kk++) {
                    total += used[j][kk];
                    if (j == i)
                        mine += used[j][kk];
                }
            char why[200];
            int want = total + n > m.limit ? MEM_OVER_BUDGET
                       : acct && mine + n > m.share ? MEM_OVER_SHARE : MEM_OK;
            int got = mem_admit(&m, acct, n, why, sizeof(why));
            CHECK_EQ(got, want);
            refused += got != MEM_OK;
            if (got == MEM_OK) {
                mem_charge(&m, acct, k, n);
                used[i][k] += n;
            }
            break;
        }
        case 1: /* a release of part of what was charged */
            n = used[i][k] ? n % (used[i][k] + 1) : 0;
            mem_release(&m, acct, k, n);
            used[i][k] -= n;
            break;
        default: /* a buffer that grew or shrank */
            mem_adjust(&m, acct, k, used[i][k], n);
            used[i][k] = n;
            break;
        }
    }
    uint64_t total = 0;
    for (int j = 0; j <= ACCTS; j++) {
        uint64_t mine = 0;
        for (int k = 0; k < MEM_KINDS; k++) {
            mine += used[j][k];
            if (j < ACCTS)
                CHECK_EQ(a[j]->by_kind[k], used[j][k]);
        }
        if (j < ACCTS)
            CHECK_EQ(a[j]->used, mine);
        total += mine;
    }
    CHECK_EQ(m.used, total);
    CHECK_EQ(m.refused, refused);
    CHECK(m.peak >= m.used);
    for (int j = 0; j <= ACCTS; j++)
        for (int k = 0; k < MEM_KINDS; k++)
            mem_release(&m, j < ACCTS ? a[j] : NULL, k, used[j][k]);
    CHECK_EQ(m.used, 0);
    for (int i = 0; i < ACCTS; i++)
        mem_acct_unref(a[i]); /* freed: ASan reports a leak otherwise */
}

static void test_refs(void)
{
    struct mem_budget m = {0};
    mem_init(&m, 64ull << 20, 0);
    struct mem_acct *a = mem_acct_new();
    mem_acct_ref(a); /* a task charged to it */
    mem_charge(&m, a, MEM_TASKS, 1000);
    a->gone = 1;
    mem_acct_unref(a); /* its connection left: the task still counts */
    CHECK_EQ(a->used, 1000);
    CHECK_EQ(m.used, 1000);
    mem_release(&m, a, MEM_TASKS, 1000);
    mem_acct_unref(a);
    CHECK_EQ(m.used, 0);
    mem_acct_unref(NULL);
}

int main(void)
{
    test_usable();
    test_model();
    test_refs();
    return check_report("test_mem");
}
