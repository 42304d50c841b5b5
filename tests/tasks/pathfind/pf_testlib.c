/* pf_testlib.c - helpers shared by the pathfind tests.  The Dijkstra here is
 * deliberately naive and separate from src/tasks (double costs, its own
 * neighbour rules, its own heap) so that it is an independent oracle. */
#include "pf_testlib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint64_t pft_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

char *pft_random_map(uint32_t w, uint32_t h, double density, int rooms, uint64_t seed, size_t *len)
{
    static const char open[] = ".G.S.";
    static const char wall[] = "@OTW";
    uint64_t st = seed;
    uint8_t *blocked = calloc((size_t)w * h, 1);
    for (size_t i = 0; i < (size_t)w * h; i++)
        blocked[i] = (double)(pft_rand(&st) >> 11) / 9007199254740992.0 < density;
    if (rooms) {
        uint32_t walls = 1 + (w + h) / 16;
        for (uint32_t k = 0; k < walls; k++) {
            int vertical = (int)(pft_rand(&st) & 1);
            uint32_t pos = (uint32_t)(pft_rand(&st) % (vertical ? w : h));
            uint32_t span = vertical ? h : w;
            uint32_t gap = (uint32_t)(pft_rand(&st) % span), gap_len = (uint32_t)(pft_rand(&st) % 3);
            if (pft_rand(&st) % 4 == 0)
                gap_len = 0; /* a closed wall: disconnected regions */
            for (uint32_t i = 0; i < span; i++) {
                if (i >= gap && i < gap + gap_len)
                    continue;
                size_t at = vertical ? (size_t)i * w + pos : (size_t)pos * w + i;
                blocked[at] = 1;
            }
        }
    }
    size_t cap = 64 + (size_t)(w + 1) * h + 1;
    char *s = malloc(cap);
    int n = snprintf(s, cap, "type octile\nheight %u\nwidth %u\nmap\n", h, w);
    size_t o = (size_t)n;
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++) {
            uint64_t r = pft_rand(&st);
            s[o++] = blocked[(size_t)y * w + x] ? wall[r % 4] : open[r % 5];
        }
        s[o++] = '\n';
    }
    s[o] = '\0';
    free(blocked);
    *len = o;
    return s;
}

/* A binary min-heap of (dist, cell) with duplicates (lazy deletion). */
struct dj_ent {
    double d;
    uint32_t cell;
};

static void dj_push(struct dj_ent **h, size_t *n, size_t *cap, double d, uint32_t cell)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        *h = realloc(*h, *cap * sizeof(**h));
    }
    size_t i = (*n)++;
    while (i > 0 && (*h)[(i - 1) / 2].d > d) {
        (*h)[i] = (*h)[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    (*h)[i] = (struct dj_ent){d, cell};
}

static struct dj_ent dj_pop(struct dj_ent *h, size_t *n)
{
    struct dj_ent top = h[0], last = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1].d < h[c].d)
            c++;
        if (h[c].d >= last.d)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n)
        h[i] = last;
    return top;
}

void pft_dijkstra(const struct pf_map *m, uint32_t sx, uint32_t sy, double *dist)
{
    size_t cells = (size_t)m->stride * (m->height + 2);
    for (size_t i = 0; i < cells; i++)
        dist[i] = -1;
    struct dj_ent *h = NULL;
    size_t n = 0, cap = 0;
    uint8_t *done = calloc(cells, 1);
    dist[pf_map_index(m, sx, sy)] = 0;
    dj_push(&h, &n, &cap, 0, pf_map_index(m, sx, sy));
    while (n) {
        struct dj_ent e = dj_pop(h, &n);
        if (done[e.cell])
            continue;
        done[e.cell] = 1;
        int64_t x = (int64_t)(e.cell % m->stride) - 1, y = (int64_t)(e.cell / m->stride) - 1;
        for (int dy = -1; dy <= 1; dy++) {
            for (int dx = -1; dx <= 1; dx++) {
                if (!dx && !dy)
                    continue;
                int64_t nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || !pf_map_passable(m, (uint32_t)nx, (uint32_t)ny))
                    continue;
                if (dx && dy && (!pf_map_passable(m, (uint32_t)nx, (uint32_t)y) ||
                                 !pf_map_passable(m, (uint32_t)x, (uint32_t)ny)))
                    continue;
                double nd = e.d + (dx && dy ? sqrt(2.0) : 1.0);
                uint32_t c = pf_map_index(m, (uint32_t)nx, (uint32_t)ny);
                if (dist[c] < 0 || nd < dist[c]) {
                    dist[c] = nd;
                    dj_push(&h, &n, &cap, nd, c);
                }
            }
        }
    }
    free(h);
    free(done);
}

const char *pft_check_path(const struct pf_map *m, const struct pf_query *q,
                           const struct pf_point *path, size_t n, uint32_t straight,
                           uint32_t diagonal)
{
    if (n == 0)
        return "empty path";
    if (path[0].x != q->sx || path[0].y != q->sy)
        return "path does not begin at the start";
    if (path[n - 1].x != q->gx || path[n - 1].y != q->gy)
        return "path does not end at the goal";
    uint32_t ns = 0, nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (!pf_map_passable(m, path[i].x, path[i].y))
            return "path goes through a blocked cell or leaves the map";
        if (i == 0)
            continue;
        int64_t dx = (int64_t)path[i].x - path[i - 1].x, dy = (int64_t)path[i].y - path[i - 1].y;
        if (dx < -1 || dx > 1 || dy < -1 || dy > 1 || (dx == 0 && dy == 0))
            return "consecutive cells are not neighbours";
        if (dx && dy) {
            if (!pf_map_passable(m, path[i].x, path[i - 1].y) ||
                !pf_map_passable(m, path[i - 1].x, path[i].y))
                return "a diagonal step cuts a corner";
            nd++;
        } else {
            ns++;
        }
    }
    if (ns != straight || nd != diagonal)
        return "the step counts differ from the reported cost";
    return NULL;
}

static int parse_num(const char **p, const char *end, uint32_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (s < end && *s >= '0' && *s <= '9' && x < 100000000)
        x = x * 10 + (uint64_t)(*s++ - '0');
    if (s == *p || x >= 100000000)
        return -1;
    *v = (uint32_t)x;
    *p = s;
    return 0;
}

int pft_parse_line(const char *line, size_t len, int *found, double *cost, struct pf_point *points,
                   size_t cap, size_t *n)
{
    const char *p = line, *end = line + len;
    *n = 0;
    if (len == 4 && memcmp(line, "none", 4) == 0) {
        *found = 0;
        *cost = -1;
        return 0;
    }
    uint32_t ip, fp;
    if (parse_num(&p, end, &ip) != 0 || p == end || *p++ != '.')
        return -1;
    const char *f0 = p;
    if (parse_num(&p, end, &fp) != 0 || p - f0 != 8)
        return -1;
    *found = 1;
    *cost = ip + fp / 1e8;
    while (p < end) {
        uint32_t x, y;
        if (*p++ != ' ' || parse_num(&p, end, &x) != 0 || p == end || *p++ != ',' ||
            parse_num(&p, end, &y) != 0)
            return -1;
        if (*n < cap)
            points[*n] = (struct pf_point){x, y};
        ++*n;
    }
    return 0;
}

static void *harness_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct pft_harness *h = call->opaque;
    h->calls++;
    if (n > h->limit)
        return NULL;
    free(h->out);
    h->out = malloc(n ? n : 1);
    h->out_len = n;
    return h->out;
}

int pft_run(struct pft_harness *h, const void *in, size_t in_len, const char *params,
            const struct p2c2r_blob *blobs, size_t nblobs, char *err, size_t err_cap)
{
    struct p2c2r_exec_call call = {
        .input = in,
        .input_len = in_len,
        .params = params ? params : "",
        .params_len = params ? strlen(params) : 0,
        .alloc_output = harness_alloc,
        .opaque = h,
        .err = err,
        .err_cap = err_cap,
        .blobs = blobs,
        .nblobs = nblobs,
    };
    if (err && err_cap)
        err[0] = '\0';
    if (exec_pathfind.check) {
        int rc = exec_pathfind.check(&call);
        if (rc)
            return rc;
    }
    return exec_pathfind.run(&call);
}

void pft_harness_reset(struct pft_harness *h, size_t limit)
{
    free(h->out);
    *h = (struct pft_harness){limit, 0, NULL, 0};
}

char *pft_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap + 1);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            b = realloc(b, cap + 1);
        }
    }
    fclose(f);
    b[n] = '\0';
    *len = n;
    return b;
}
