/* test_pathfind_scen.c - the MovingAI arena benchmark: every one of the 130
 * scenarios of arena.map.scen must come out at its published optimal cost
 * (within 1e-6) with A* and with JPS, through the C API and through the
 * executor's text output, with a valid path each time.
 *
 * argv[1]: the directory holding arena.map and arena.map.scen (a copy of
 * shared/data/movingai, so the test does not depend on the shared tree). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pf_testlib.h"

struct scen {
    struct pf_query q;
    double optimal;
};

/* Parses the .scen file: "version 1", then tab-separated lines. */
static size_t load_scen(const char *text, const struct pf_map *m, struct scen *out, size_t cap)
{
    size_t n = 0;
    const char *p = strchr(text, '\n');
    while (p && *++p && n < cap) {
        unsigned bucket, w, h, sx, sy, gx, gy;
        char map[64];
        double opt;
        if (sscanf(p, "%u\t%63s\t%u\t%u\t%u\t%u\t%u\t%u\t%lf", &bucket, map, &w, &h, &sx, &sy, &gx,
                   &gy, &opt) == 9) {
            CHECK(w == m->width && h == m->height);
            out[n++] = (struct scen){{sx, sy, gx, gy}, opt};
        }
        p = strchr(p, '\n');
    }
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DATA_DIR\n", argv[0]);
        return 2;
    }
    char path[4096];
    size_t map_len, scen_len;
    snprintf(path, sizeof(path), "%s/arena.map", argv[1]);
    char *map_text = pft_read_file(path, &map_len);
    snprintf(path, sizeof(path), "%s/arena.map.scen", argv[1]);
    char *scen_text = pft_read_file(path, &scen_len);
    if (!CHECK(map_text && scen_text))
        return check_report("test_pathfind_scen");

    struct pf_map m;
    char err[256];
    size_t used;
    CHECK_EQ(pf_map_parse(&m, map_text, map_len, &used, err, sizeof(err)), 0);
    CHECK_EQU(m.width, 49);
    CHECK_EQU(m.height, 49);
    CHECK(pf_text_blank(map_text + used, map_len - used));

    static struct scen sc[256];
    size_t n = load_scen(scen_text, &m, sc, 256);
    CHECK_EQU(n, 130);

    /* The C API, both algorithms, against the published costs and our own
     * Dijkstra. */
    struct pf_search *s;
    CHECK_EQ(pf_search_new(&m, &s), 0);
    double *dist = malloc(sizeof(double) * m.stride * (m.height + 2));
    for (size_t i = 0; i < n; i++) {
        pft_dijkstra(&m, sc[i].q.sx, sc[i].q.sy, dist);
        CHECK(fabs(PFT_DIST(&m, dist, sc[i].q.gx, sc[i].q.gy) - sc[i].optimal) < 1e-6);
        for (int a = 0; a < 2; a++) {
            struct pf_result r;
            CHECK_EQ(pf_search_run(s, (enum pf_algo)a, &sc[i].q, 1, &r), 0);
            if (!CHECK(r.found))
                continue;
            double c = pf_cost_value(r.straight, r.diagonal);
            if (!CHECK(fabs(c - sc[i].optimal) < 1e-6))
                fprintf(stderr, "scenario %zu (%s): cost %.8f, optimal %.8f\n", i,
                        pf_algo_name((enum pf_algo)a), c, sc[i].optimal);
            const char *bad = pft_check_path(&m, &sc[i].q, r.path, r.path_len, r.straight,
                                             r.diagonal);
            if (!CHECK(bad == NULL))
                fprintf(stderr, "scenario %zu (%s): %s\n", i, pf_algo_name((enum pf_algo)a), bad);
        }
    }
    free(dist);

    /* The executor: the whole benchmark as one batch, map inline. */
    size_t cap = map_len + 32 + n * 32, len = 0;
    char *in = malloc(cap);
    memcpy(in, map_text, map_len);
    len = map_len;
    len += (size_t)snprintf(in + len, cap - len, "queries %zu\n", n);
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(in + len, cap - len, "%u %u %u %u\n", sc[i].q.sx, sc[i].q.sy,
                                sc[i].q.gx, sc[i].q.gy);
    static const char *const params[] = {"algo=astar\n", "algo=jps\n", "", "algo=jps\npaths=0\n",
                                         "paths=0\nalgo=astar"};
    struct pft_harness h = {0};
    static struct pf_point pts[4096];
    for (size_t p = 0; p < sizeof(params) / sizeof(params[0]); p++) {
        pft_harness_reset(&h, SIZE_MAX);
        int rc = pft_run(&h, in, len, params[p], NULL, 0, err, sizeof(err));
        if (!CHECK(rc == 0)) {
            fprintf(stderr, "params '%s': %s\n", params[p], err);
            continue;
        }
        const char *o = (const char *)h.out, *end = o + h.out_len;
        size_t i = 0;
        int paths = strstr(params[p], "paths=0") == NULL;
        while (o < end) {
            const char *nl = memchr(o, '\n', (size_t)(end - o));
            if (!CHECK(nl != NULL) || !CHECK(i < n))
                break;
            int found;
            double cost;
            size_t np;
            CHECK_EQ(pft_parse_line(o, (size_t)(nl - o), &found, &cost, pts, 4096, &np), 0);
            CHECK(found);
            CHECK(fabs(cost - sc[i].optimal) < 1e-6);
            if (paths) {
                uint32_t st = 0, dg = 0;
                for (size_t k = 1; k < np; k++)
                    (pts[k].x != pts[k - 1].x && pts[k].y != pts[k - 1].y) ? dg++ : st++;
                CHECK(fabs(pf_cost_value(st, dg) - sc[i].optimal) < 1e-6);
                CHECK(pft_check_path(&m, &sc[i].q, pts, np, st, dg) == NULL);
            } else {
                CHECK_EQU(np, 0);
            }
            i++;
            o = nl + 1;
        }
        CHECK_EQU(i, n);
    }
    pft_harness_reset(&h, 0);
    free(in);
    pf_search_free(s);
    pf_map_fini(&m);
    free(map_text);
    free(scen_text);
    return check_report("test_pathfind_scen");
}
