/* bench_pathfind.c - queries per second of the pathfind searches, A* against
 * JPS, one thread, through the executor's C API (no fabric).
 *
 * The map is a deterministic 512x512 grid (by default): a fraction of cells
 * blocked at random plus straight walls with gaps, so there are open areas,
 * corridors and detours.  Queries join random cells of the largest connected
 * region (every query has a path, as in a game).  Each run answers the whole
 * batch with paths; the figure is the median of several runs (wall clock,
 * and the thread's CPU time, which a busy machine disturbs less).  The two
 * algorithms must agree on every cost, or the program fails.
 *
 *   bench_pathfind [--size N] [--density D] [--queries Q] [--runs R]
 *                  [--seed S] [--map FILE.map] [--json]
 *
 * Prints a table and then one JSON line (only the JSON line with --json). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p2c2r/error.h"
#include "tasks/pathfind.h"

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* A MovingAI map text: random obstacles at density d, plus n/64 walls
 * across the map with one gap of 2-9 cells each. */
static char *make_map(uint32_t n, double d, uint64_t seed, size_t *len)
{
    uint64_t st = seed;
    uint8_t *blocked = calloc((size_t)n * n, 1);
    char *s = malloc(64 + (size_t)(n + 1) * n);
    if (!blocked || !s)
        return NULL;
    for (size_t i = 0; i < (size_t)n * n; i++)
        blocked[i] = (double)(splitmix(&st) >> 11) / 9007199254740992.0 < d;
    for (uint32_t k = 0; k < n / 64; k++) {
        int vertical = (int)(splitmix(&st) & 1);
        uint32_t pos = (uint32_t)(splitmix(&st) % n), gap = (uint32_t)(splitmix(&st) % n);
        uint32_t gap_len = 2 + (uint32_t)(splitmix(&st) % 8);
        for (uint32_t i = 0; i < n; i++)
            if (i < gap || i >= gap + gap_len)
                blocked[vertical ? (size_t)i * n + pos : (size_t)pos * n + i] = 1;
    }
    size_t o = (size_t)sprintf(s, "type octile\nheight %u\nwidth %u\nmap\n", n, n);
    for (uint32_t y = 0; y < n; y++) {
        for (uint32_t x = 0; x < n; x++)
            s[o++] = blocked[(size_t)y * n + x] ? 'T' : '.';
        s[o++] = '\n';
    }
    free(blocked);
    *len = o;
    return s;
}

/* Labels the 8-connected (no corner cutting) regions; returns the label of
 * the largest one, written per cell index into label (0 = blocked). */
static uint32_t largest_region(const struct pf_map *m, uint32_t *label)
{
    size_t cells = (size_t)m->stride * (m->height + 2);
    uint32_t *stack = malloc(cells * sizeof(uint32_t));
    uint32_t next = 0, best = 0;
    size_t best_size = 0;
    memset(label, 0, cells * sizeof(uint32_t));
    int32_t st = (int32_t)m->stride;
    const int32_t off[8] = {-st, 1, st, -1, -st + 1, st + 1, st - 1, -st - 1};
    for (uint32_t c = 0; c < cells; c++) {
        if (!m->cells[c] || label[c])
            continue;
        size_t sp = 0, size = 0;
        label[c] = ++next;
        stack[sp++] = c;
        while (sp) {
            uint32_t v = stack[--sp];
            size++;
            for (int d = 0; d < 8; d++) {
                uint32_t w = v + (uint32_t)off[d];
                if (!m->cells[w] || label[w])
                    continue;
                if (d >= 4 && (!m->cells[v + (uint32_t)off[(d - 4) == 0 || d == 7 ? 0 : 2]] ||
                               !m->cells[v + (uint32_t)off[d == 4 || d == 5 ? 1 : 3]]))
                    continue;
                label[w] = next;
                stack[sp++] = w;
            }
        }
        if (size > best_size) {
            best_size = size;
            best = next;
        }
    }
    free(stack);
    return best;
}

int main(int argc, char **argv)
{
    uint32_t size = 512, nq = 1000, runs = 5;
    double density = 0.2;
    uint64_t seed = 1;
    const char *map_file = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "usage: %s [--size N] [--density D] [--queries Q] [--runs R] [--seed S] "
                            "[--map FILE.map] [--json]\n", argv[0]);
            return 2;
        }
        i++;
        if (!strcmp(a, "--size"))
            size = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--density"))
            density = strtod(v, NULL);
        else if (!strcmp(a, "--queries"))
            nq = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--runs"))
            runs = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--map"))
            map_file = v;
        else {
            fprintf(stderr, "%s: unknown option %s\n", argv[0], a);
            return 2;
        }
    }
    if (size < 2 || size > PF_MAX_DIM || nq < 1 || runs < 1 || density < 0 || density >= 1) {
        fprintf(stderr, "%s: --size 2..%u, --queries >= 1, --runs >= 1, --density in [0, 1)\n",
                argv[0], PF_MAX_DIM);
        return 2;
    }

    size_t len = 0;
    char *text = NULL;
    if (map_file) {
        FILE *f = fopen(map_file, "rb");
        if (!f) {
            perror(map_file);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        text = malloc(len ? len : 1);
        if (!text || fread(text, 1, len, f) != len) {
            fprintf(stderr, "%s: cannot read %s\n", argv[0], map_file);
            return 1;
        }
        fclose(f);
    } else {
        text = make_map(size, density, seed, &len);
    }
    struct pf_map m;
    char err[256];
    if (!text || pf_map_parse(&m, text, len, NULL, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: bad map: %s\n", argv[0], err);
        return 1;
    }
    uint32_t *label = malloc((size_t)m.stride * (m.height + 2) * sizeof(uint32_t));
    uint32_t region = largest_region(&m, label);
    struct pf_query *qs = malloc(sizeof(*qs) * nq);
    uint64_t st = seed * 7919 + 1;
    for (uint32_t i = 0; i < nq;) {
        uint32_t v[4];
        for (int k = 0; k < 4; k++)
            v[k] = (uint32_t)(splitmix(&st) % (k % 2 ? m.height : m.width));
        if (label[pf_map_index(&m, v[0], v[1])] != region || label[pf_map_index(&m, v[2], v[3])] != region)
            continue;
        qs[i++] = (struct pf_query){v[0], v[1], v[2], v[3]};
    }

    struct pf_search *s;
    if (pf_search_new(&m, &s) != 0) {
        fprintf(stderr, "%s: out of memory\n", argv[0]);
        return 1;
    }
    double med[2], qps[2], cpu_qps[2], expanded[2], path_cells = 0;
    uint32_t *cost_a = malloc(sizeof(uint32_t) * nq), *cost_b = malloc(sizeof(uint32_t) * nq);
    double *t = malloc(sizeof(double) * runs), *cpu = malloc(sizeof(double) * runs);
    for (int a = 0; a < 2; a++) {
        uint64_t exp = 0;
        for (uint32_t r = 0; r < runs; r++) {
            double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
            for (uint32_t i = 0; i < nq; i++) {
                struct pf_result res;
                if (pf_search_run(s, (enum pf_algo)a, &qs[i], 1, &res) != 0 || !res.found) {
                    fprintf(stderr, "%s: query %u failed\n", argv[0], i);
                    return 1;
                }
                if (r == 0) {
                    exp += res.expanded;
                    if (a == 0) {
                        cost_a[i] = res.straight;
                        cost_b[i] = res.diagonal;
                        path_cells += (double)res.path_len;
                    } else if (cost_a[i] != res.straight || cost_b[i] != res.diagonal) {
                        fprintf(stderr, "%s: A* and JPS disagree on query %u\n", argv[0], i);
                        return 1;
                    }
                }
            }
            t[r] = clock_s(CLOCK_MONOTONIC) - t0;
            cpu[r] = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
        }
        qsort(t, runs, sizeof(double), cmp_double);
        qsort(cpu, runs, sizeof(double), cmp_double);
        med[a] = t[runs / 2];
        qps[a] = nq / med[a];
        cpu_qps[a] = nq / cpu[runs / 2];
        expanded[a] = (double)exp / nq;
    }
    const char *name = map_file ? map_file : "generated";
    if (!json) {
        printf("map %s %ux%u%s, %u queries in its largest region (mean path %.0f cells), "
               "median of %u runs\n",
               name, m.width, m.height, map_file ? "" : " (random obstacles + walls)", nq,
               path_cells / nq, runs);
        printf("%-6s %12s %12s %12s %12s %14s\n", "algo", "median_ms", "queries/s", "cpu_q/s",
               "us/query", "expanded/query");
        for (int a = 0; a < 2; a++)
            printf("%-6s %12.2f %12.0f %12.0f %12.2f %14.1f\n", pf_algo_name((enum pf_algo)a),
                   med[a] * 1e3, qps[a], cpu_qps[a], med[a] * 1e6 / nq, expanded[a]);
        printf("jps/astar speed-up: %.2fx (wall), %.2fx (cpu)\n", qps[1] / qps[0],
               cpu_qps[1] / cpu_qps[0]);
    }
    printf("{\"bench\":\"pathfind\",\"map\":\"%s\",\"width\":%u,\"height\":%u,\"density\":%.3f,"
           "\"seed\":%llu,\"queries\":%u,\"runs\":%u,\"mean_path_cells\":%.1f,"
           "\"astar_qps\":%.1f,\"jps_qps\":%.1f,\"astar_cpu_qps\":%.1f,\"jps_cpu_qps\":%.1f,"
           "\"astar_expanded\":%.1f,\"jps_expanded\":%.1f,"
           "\"speedup\":%.3f,\"cpu_speedup\":%.3f}\n",
           name, m.width, m.height, map_file ? 0.0 : density, (unsigned long long)seed, nq, runs,
           path_cells / nq, qps[0], qps[1], cpu_qps[0], cpu_qps[1], expanded[0], expanded[1], qps[1] / qps[0], cpu_qps[1] / cpu_qps[0]);
    free(t);
    free(cpu);
    free(cost_a);
    free(cost_b);
    pf_search_free(s);
    free(qs);
    free(label);
    pf_map_fini(&m);
    free(text);
    return 0;
}
