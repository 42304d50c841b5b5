/* test_pathfind_random.c - A* and JPS against a plain Dijkstra on seeded
 * random maps of many sizes and obstacle densities, with and without walls
 * (corridors, dead ends, closed-off regions).
 *
 * For every query: "no path" exactly when Dijkstra reaches no goal; else the
 * cost equal to Dijkstra's within 1e-9, A* and JPS equal to the step (the
 * optimal cost a + b*sqrt(2) fixes a and b), and each path valid (starts and
 * ends right, steps between neighbours, no blocked cell, no corner cut, step
 * counts matching the cost). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "pf_testlib.h"

static unsigned long queries_checked, unreachable_checked;

static void check_map(uint32_t w, uint32_t h, double density, int rooms, uint64_t seed)
{
    size_t len;
    char *text = pft_random_map(w, h, density, rooms, seed, &len);
    struct pf_map m;
    char err[256];
    if (!CHECK(pf_map_parse(&m, text, len, NULL, err, sizeof(err)) == 0)) {
        fprintf(stderr, "map %ux%u: %s\n", w, h, err);
        free(text);
        return;
    }
    /* Passable cells, to draw ends from. */
    uint32_t *open = malloc(sizeof(uint32_t) * 2 * w * h);
    size_t nopen = 0;
    for (uint32_t y = 0; y < h; y++)
        for (uint32_t x = 0; x < w; x++)
            if (pf_map_passable(&m, x, y)) {
                open[2 * nopen] = x;
                open[2 * nopen + 1] = y;
                nopen++;
            }
    if (nopen == 0) {
        free(open);
        pf_map_fini(&m);
        free(text);
        return;
    }
    struct pf_search *s[2];
    CHECK_EQ(pf_search_new(&m, &s[0]), 0);
    CHECK_EQ(pf_search_new(&m, &s[1]), 0);
    double *dist = malloc(sizeof(double) * m.stride * (m.height + 2));
    uint64_t st = seed ^ 0x5eed;
    int starts = 6;
    for (int si = 0; si < starts; si++) {
        size_t a = pft_rand(&st) % nopen;
        uint32_t sx = open[2 * a], sy = open[2 * a + 1];
        pft_dijkstra(&m, sx, sy, dist);
        /* The farthest reachable cell is a goal too (the longest paths). */
        uint32_t fx = sx, fy = sy;
        for (size_t i = 0; i < nopen; i++) {
            double d = PFT_DIST(&m, dist, open[2 * i], open[2 * i + 1]);
            if (d > PFT_DIST(&m, dist, fx, fy)) {
                fx = open[2 * i];
                fy = open[2 * i + 1];
            }
        }
        for (int gi = 0; gi < 12; gi++) {
            size_t b = pft_rand(&st) % nopen;
            struct pf_query q = {sx, sy, open[2 * b], open[2 * b + 1]};
            if (gi == 0)
                q.gx = fx, q.gy = fy;
            if (gi == 1)
                q.gx = sx, q.gy = sy;
            double want = PFT_DIST(&m, dist, q.gx, q.gy);
            struct pf_result r[2];
            for (int alg = 0; alg < 2; alg++) {
                CHECK_EQ(pf_search_run(s[alg], (enum pf_algo)alg, &q, 1, &r[alg]), 0);
                if (!CHECK(r[alg].found == (want >= 0))) {
                    fprintf(stderr, "%ux%u d=%.2f rooms=%d seed=%llu (%u,%u)->(%u,%u) %s: found=%d, dijkstra %.6f\n",
                            w, h, density, rooms, (unsigned long long)seed, q.sx, q.sy, q.gx, q.gy,
                            pf_algo_name((enum pf_algo)alg), r[alg].found, want);
                    continue;
                }
                if (!r[alg].found) {
                    CHECK_EQU(r[alg].path_len, 0);
                    continue;
                }
                double got = pf_cost_value(r[alg].straight, r[alg].diagonal);
                if (!CHECK(fabs(got - want) < 1e-9))
                    fprintf(stderr, "%ux%u d=%.2f rooms=%d seed=%llu (%u,%u)->(%u,%u) %s: cost %.9f, dijkstra %.9f\n",
                            w, h, density, rooms, (unsigned long long)seed, q.sx, q.sy, q.gx, q.gy,
                            pf_algo_name((enum pf_algo)alg), got, want);
                const char *bad = pft_check_path(&m, &q, r[alg].path, r[alg].path_len,
                                                 r[alg].straight, r[alg].diagonal);
                if (!CHECK(bad == NULL))
                    fprintf(stderr, "%ux%u seed=%llu %s: %s\n", w, h, (unsigned long long)seed,
                            pf_algo_name((enum pf_algo)alg), bad);
            }
            if (r[0].found && r[1].found) {
                CHECK_EQU(r[0].straight, r[1].straight);
                CHECK_EQU(r[0].diagonal, r[1].diagonal);
            }
            queries_checked++;
            unreachable_checked += want < 0;
        }
    }
    free(dist);
    pf_search_free(s[0]);
    pf_search_free(s[1]);
    free(open);
    pf_map_fini(&m);
    free(text);
}

int main(void)
{
    static const uint32_t sizes[][2] = {{1, 1},   {1, 17},  {23, 1},  {2, 2},   {3, 5},
                                        {8, 8},   {16, 9},  {33, 31}, {64, 64}, {100, 70},
                                        {47, 160}, {160, 160}};
    static const double densities[] = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5};
    uint64_t seed = 1;
    for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
        for (size_t di = 0; di < sizeof(densities) / sizeof(densities[0]); di++)
            for (int rooms = 0; rooms < 2; rooms++)
                for (int k = 0; k < 3; k++)
                    check_map(sizes[si][0], sizes[si][1], densities[di], rooms, seed++);
    printf("%lu queries compared with Dijkstra (%lu unreachable)\n", queries_checked,
           unreachable_checked);
    CHECK(unreachable_checked > 100);
    return check_report("test_pathfind_random");
}
