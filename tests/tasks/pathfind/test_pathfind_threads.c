/* test_pathfind_threads.c - determinism: the executor's output for one task
 * is the same bytes run after run, and when 8 threads run tasks on their own
 * inputs at the same time (the peer's executor pool).  With paths=0 A* and
 * JPS give identical bytes too (an optimal cost is unique). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pf_testlib.h"

#define NTHREADS 8
#define ROUNDS 3

static const char *const params[] = {"algo=jps\n", "algo=astar\n", "algo=jps\npaths=0\n",
                                     "algo=astar\npaths=0\n"};
#define NPARAMS (sizeof(params) / sizeof(params[0]))

struct job {
    const char *in;
    size_t len;
    uint8_t *ref[NPARAMS];
    size_t ref_len[NPARAMS];
    int mismatches, failures;
};

/* Builds a task: a 256x256 walled map and 300 queries between passable cells
 * (some unreachable), deterministic in seed. */
static char *make_task(uint64_t seed, size_t *len)
{
    size_t ml;
    char *map = pft_random_map(256, 256, 0.25, 1, seed, &ml);
    struct pf_map m;
    if (pf_map_parse(&m, map, ml, NULL, NULL, 0) != 0)
        abort();
    size_t cap = ml + 64 + 300 * 32;
    char *t = malloc(cap);
    memcpy(t, map, ml);
    size_t n = ml + (size_t)snprintf(t + ml, cap - ml, "queries 300\n");
    uint64_t st = seed;
    for (int i = 0; i < 300;) {
        uint32_t v[4];
        for (int k = 0; k < 4; k++)
            v[k] = (uint32_t)(pft_rand(&st) % 256);
        if (!pf_map_passable(&m, v[0], v[1]) || !pf_map_passable(&m, v[2], v[3]))
            continue;
        n += (size_t)snprintf(t + n, cap - n, "%u %u %u %u\n", v[0], v[1], v[2], v[3]);
        i++;
    }
    pf_map_fini(&m);
    free(map);
    *len = n;
    return t;
}

static void *worker(void *arg)
{
    struct job *j = arg;
    struct pft_harness h = {0};
    char err[256];
    for (int r = 0; r < ROUNDS; r++) {
        for (size_t p = 0; p < NPARAMS; p++) {
            pft_harness_reset(&h, SIZE_MAX);
            if (pft_run(&h, j->in, j->len, params[p], NULL, 0, err, sizeof(err)) != 0)
                j->failures++;
            else if (h.out_len != j->ref_len[p] || memcmp(h.out, j->ref[p], h.out_len) != 0)
                j->mismatches++;
        }
    }
    pft_harness_reset(&h, 0);
    return NULL;
}

int main(void)
{
    static struct job jobs[NTHREADS];
    char err[256];
    for (int i = 0; i < NTHREADS; i++) {
        /* Two threads share each input, so equal tasks also run at once. */
        jobs[i].in = i % 2 ? jobs[i - 1].in : make_task(100 + (uint64_t)i, &jobs[i].len);
        if (i % 2)
            jobs[i].len = jobs[i - 1].len;
        for (size_t p = 0; p < NPARAMS; p++) {
            struct pft_harness h = {SIZE_MAX, 0, NULL, 0};
            CHECK_EQ(pft_run(&h, jobs[i].in, jobs[i].len, params[p], NULL, 0, err, sizeof(err)), 0);
            jobs[i].ref[p] = h.out;
            jobs[i].ref_len[p] = h.out_len;
            CHECK(h.out_len > 0);
        }
        /* Costs only: A* and JPS agree to the byte. */
        CHECK_MEM(jobs[i].ref[2], jobs[i].ref_len[2], jobs[i].ref[3], jobs[i].ref_len[3]);
        /* Paths: the two algorithms may choose different paths of one cost. */
        CHECK(jobs[i].ref_len[0] > jobs[i].ref_len[2]);
    }

    /* Sequential repeats. */
    worker(&jobs[0]);
    CHECK_EQ(jobs[0].failures, 0);
    CHECK_EQ(jobs[0].mismatches, 0);

    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, worker, &jobs[i]), 0);
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ(jobs[i].failures, 0);
        CHECK_EQ(jobs[i].mismatches, 0);
    }
    for (int i = 0; i < NTHREADS; i++) {
        for (size_t p = 0; p < NPARAMS; p++)
            free(jobs[i].ref[p]);
        if (i % 2 == 0)
            free((char *)jobs[i].in);
    }
    return check_report("test_pathfind_threads");
}
