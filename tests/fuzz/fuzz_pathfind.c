/* fuzz_pathfind.c - libFuzzer target: the pathfind decoder (MovingAI map
 * text and query section) and the searches behind it.
 *
 * Input: one flags byte, then the task.  Flags: bit 0 selects JPS (else
 * A*), bit 1 costs only (paths=0), bit 2 "map as a blob": the bytes before
 * the first 0x01 are the map blob and the rest the query section (without
 * the bit the map is at the start of the input, as when sent inline).
 *
 * Invariants checked (abort on violation):
 *   - the result is 0, EINVAL or ETOOBIG, and a failure has a one-line reason;
 *   - on success the output has one line per query, running the same task
 *     again gives the same bytes, and A* and JPS give the same costs;
 *   - every path either algorithm returns is valid (pft_check_path) and A*
 *     and JPS agree on whether a path exists and on its step counts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pf_testlib.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_searches(const char *map, size_t map_len, const char *in, size_t in_len)
{
    struct pf_map m;
    struct pf_query *qs = NULL;
    uint32_t nq = 0;
    size_t used = 0;
    uint32_t first = 1;
    if (map) {
        if (pf_map_parse(&m, map, map_len, &used, NULL, 0) != 0)
            abort(); /* pf_task_run accepted it */
        used = 0;
    } else {
        if (pf_map_parse(&m, in, in_len, &used, NULL, 0) != 0)
            abort();
        first = pf_count_lines(in, used) + 1;
    }
    if (pf_queries_parse(&m, in + used, in_len - used, first, &qs, &nq, NULL, 0) != 0)
        abort();
    struct pf_search *s[2] = {NULL, NULL};
    if (nq && (pf_search_new(&m, &s[0]) != 0 || pf_search_new(&m, &s[1]) != 0))
        abort();
    for (uint32_t i = 0; i < nq; i++) {
        struct pf_result r[2];
        for (int a = 0; a < 2; a++) {
            if (pf_search_run(s[a], (enum pf_algo)a, &qs[i], 1, &r[a]) != 0)
                abort();
            if (r[a].found && pft_check_path(&m, &qs[i], r[a].path, r[a].path_len, r[a].straight,
                                             r[a].diagonal) != NULL)
                abort();
        }
        if (r[0].found != r[1].found ||
            (r[0].found && (r[0].straight != r[1].straight || r[0].diagonal != r[1].diagonal)))
            abort();
    }
    pf_search_free(s[0]);
    pf_search_free(s[1]);
    free(qs);
    pf_map_fini(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t flags = data[0];
    const char *in = (const char *)data + 1, *map = NULL;
    size_t in_len = size - 1, map_len = 0;
    if (flags & 4) {
        const char *sep = memchr(in, 1, in_len);
        if (!sep)
            return 0;
        map = in;
        map_len = (size_t)(sep - in);
        in_len -= map_len + 1;
        in = sep + 1;
    }
    struct pf_options o;
    pf_options_init(&o);
    o.algo = flags & 1 ? PF_ALGO_JPS : PF_ALGO_ASTAR;
    o.paths = !(flags & 2);
    o.max_output = 1 << 20;
    char err[256] = "";
    char *out = NULL, *again = NULL, *costs[2] = {NULL, NULL};
    size_t out_len = 0, again_len = 0, costs_len[2] = {0, 0};
    int rc = pf_task_run(map, map_len, in, in_len, &o, &out, &out_len, err, sizeof(err));
    if (rc != 0) {
        if ((rc != P2C2R_EINVAL && rc != P2C2R_ETOOBIG) || !err[0] || strchr(err, '\n'))
            abort();
        return 0;
    }
    if (pf_task_run(map, map_len, in, in_len, &o, &again, &again_len, err, sizeof(err)) != 0 ||
        again_len != out_len || (out_len && memcmp(out, again, out_len) != 0))
        abort();
    for (int a = 0; a < 2; a++) {
        struct pf_options c = o;
        c.algo = (enum pf_algo)a;
        c.paths = 0;
        if (pf_task_run(map, map_len, in, in_len, &c, &costs[a], &costs_len[a], err, sizeof(err)) != 0)
            abort();
    }
    if (costs_len[0] != costs_len[1] || (costs_len[0] && memcmp(costs[0], costs[1], costs_len[0]) != 0))
        abort();
    size_t lines = 0;
    for (size_t i = 0; i < out_len; i++)
        lines += out[i] == '\n';
    size_t cost_lines = 0;
    for (size_t i = 0; i < costs_len[0]; i++)
        cost_lines += costs[0][i] == '\n';
    if (lines != cost_lines || (out_len && out[out_len - 1] != '\n'))
        abort();
    check_searches(map, map_len, in, in_len);
    free(out);
    free(again);
    free(costs[0]);
    free(costs[1]);
    return 0;
}
