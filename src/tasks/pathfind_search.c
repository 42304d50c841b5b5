/* pathfind_search.c - A* and jump point search on a bordered octile grid.
 *
 * Moves: 8-connected; a straight step costs 1 and a diagonal step sqrt(2);
 * a diagonal step needs both orthogonal neighbours passable (no corner
 * cutting).  The heuristic is the octile distance, which is consistent for
 * these moves, so a node taken off the open list is final and never reopened.
 *
 * Exact costs.  Every cost, g, h and f, is a pair (a, b) meaning
 * a + b*sqrt(2), with a, b < 2^26 (a path has fewer steps than the grid has
 * cells, under 2^25, and h adds at most 4096 to each).  Costs are compared
 * through an integer key, cost_key(a, b) = round(2^30 * (a + b*sqrt(2)))
 * to within 0.51, computed with integers only.  The key orders costs
 * exactly: two different costs differ by at least 1 / (|da| + |db|*sqrt(2))
 * > 6e-9 (|da^2 - 2*db^2| is a nonzero integer, sqrt(2) being irrational),
 * which is over 6 units of the key, more than the rounding of two keys;
 * equal costs have equal pairs and so equal keys.  So there are no rounding
 * ties, nothing depends on how a compiler treats floating point, and the
 * open list pops in the same order on every machine: output is
 * deterministic everywhere.
 *
 * Open list: a binary min-heap of (f key, tie-break) entries with
 * decrease-key; a node records its heap position.  Ties on f go to the
 * smaller h (the node nearer the goal, compared on the h key less its low
 * 12 bits), then to the smaller cell index, so the order is total.
 *
 * Workspace: one pf_node per grid cell, stamped with the search generation
 * so that nothing is cleared between searches; the heap holds at most one
 * entry per cell and the path at most one point per cell, so memory is
 * bounded by the map size (PF_SEARCH_BYTES_PER_CELL per cell plus 16 bytes
 * per cell of heap and 8 of path at the very worst).
 *
 * JPS (Harabor and Grastien), in its no-corner-cutting form: forced
 * neighbours arise only on straight moves (a blocked cell beside the cell
 * we came from and a free one beside the current cell); a diagonal move has
 * none, and a diagonal jump stops where a straight jump from it finds
 * something.  Jump points are joined by straight or diagonal segments, which
 * the path reconstruction walks cell by cell. */
#include "tasks/pathfind_search.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"
#include "tasks/tasks.h"

#define PF_NONE UINT32_MAX   /* no cell */
#define PF_CLOSED UINT32_MAX /* pf_node.heap of a node taken off the open list */

struct pf_node {
    uint32_t stamp;  /* generation of the search that last touched it */
    uint32_t heap;   /* position in the heap, or PF_CLOSED */
    uint32_t ga, gb; /* best cost so far: ga + gb*sqrt(2) */
    uint32_t parent; /* cell it was reached from (itself for the start) */
};

_Static_assert(sizeof(struct pf_node) == PF_SEARCH_BYTES_PER_CELL, "node size drifted from docs");

struct pf_heap_ent {
    uint64_t f;  /* cost_key of g + h */
    uint64_t tb; /* tie-break: (cost_key(h) >> 12) << 32 | cell */
};

struct pf_search {
    const struct pf_map *m;
    struct pf_node *nodes;
    size_t ncells;
    uint32_t gen;
    struct pf_heap_ent *heap;
    size_t heap_len, heap_cap;
    struct pf_point *path;
    size_t path_cap;
    int32_t off[8]; /* cell index offset of each direction */
    uint32_t goal, gx, gy;
    const int *cancel; /* polled every PF_CANCEL_BATCH expansions */
};

/* Directions: 0..3 straight (N, E, S, W), 4..7 diagonal (NE, SE, SW, NW). */
static const int8_t dir_dx[8] = {0, 1, 0, -1, 1, 1, -1, -1};
static const int8_t dir_dy[8] = {-1, 0, 1, 0, -1, 1, 1, -1};
/* The two straight parts of each diagonal (vertical, horizontal). */
static const uint8_t diag_parts[4][2] = {{0, 1}, {2, 1}, {2, 3}, {0, 3}};
/* dir_of[dy + 1][dx + 1]; 8 for (0, 0). */
static const uint8_t dir_of[3][3] = {{7, 0, 4}, {3, 8, 1}, {6, 2, 5}};

const char *pf_algo_name(enum pf_algo algo)
{
    return algo == PF_ALGO_JPS ? "jps" : "astar";
}

/* sqrt(2) * 2^30 = 1518500249.98802484622...: the integer part, and the
 * fraction in 32 bits (its truncation costs under 0.01 for b < 2^26). */
#define SQRT2_S30_INT 1518500249u
#define SQRT2_S30_FRAC32 4243534402u

/* 2^30 * (a + b*sqrt(2)), rounded, to within 0.51; a, b < 2^26, so the
 * key is under 2^58. */
static uint64_t cost_key(uint32_t a, uint32_t b)
{
    assert(a < (1u << 26) && b < (1u << 26));
    return ((uint64_t)a << 30) + (uint64_t)b * SQRT2_S30_INT +
           (((uint64_t)b * SQRT2_S30_FRAC32 + (1u << 31)) >> 32);
}

static int ent_less(const struct pf_heap_ent *x, const struct pf_heap_ent *y)
{
    return x->f < y->f || (x->f == y->f && x->tb < y->tb);
}

static void heap_place(struct pf_search *s, size_t i, const struct pf_heap_ent *e)
{
    s->heap[i] = *e;
    s->nodes[(uint32_t)e->tb].heap = (uint32_t)i;
}

static void heap_up(struct pf_search *s, size_t i)
{
    struct pf_heap_ent e = s->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ent_less(&e, &s->heap[p]))
            break;
        heap_place(s, i, &s->heap[p]);
        i = p;
    }
    heap_place(s, i, &e);
}

static void heap_down(struct pf_search *s, size_t i)
{
    struct pf_heap_ent e = s->heap[i];
    size_t n = s->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && ent_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ent_less(&s->heap[c], &e))
            break;
        heap_place(s, i, &s->heap[c]);
        i = c;
    }
    heap_place(s, i, &e);
}

static uint32_t heap_pop(struct pf_search *s)
{
    uint32_t cell = (uint32_t)s->heap[0].tb;
    s->nodes[cell].heap = PF_CLOSED;
    if (--s->heap_len > 0) {
        s->heap[0] = s->heap[s->heap_len];
        heap_down(s, 0);
    }
    return cell;
}

/* The octile distance from cell to the goal: *ha straight and *hb
 * diagonal steps. */
static void heuristic(const struct pf_search *s, uint32_t cell, uint32_t *ha, uint32_t *hb)
{
    uint32_t x = cell % s->m->stride, y = cell / s->m->stride; /* bordered coordinates */
    uint32_t dx = x > s->gx ? x - s->gx : s->gx - x;
    uint32_t dy = y > s->gy ? y - s->gy : s->gy - y;
    uint32_t lo = dx < dy ? dx : dy, hi = dx < dy ? dy : dx;
    *ha = hi - lo;
    *hb = lo;
}

/* The heap entry of cell with cost g = (ga, gb). */
static struct pf_heap_ent heap_ent(const struct pf_search *s, uint32_t cell, uint32_t ga,
                                   uint32_t gb)
{
    uint32_t ha, hb;
    heuristic(s, cell, &ha, &hb);
    return (struct pf_heap_ent){cost_key(ga + ha, gb + hb), (cost_key(ha, hb) >> 12) << 32 | cell};
}

/* Offers cell the cost (ga, gb) through parent.  Returns 0 or ENOMEM. */
static int relax(struct pf_search *s, uint32_t cell, uint32_t ga, uint32_t gb, uint32_t parent)
{
    struct pf_node *n = &s->nodes[cell];
    if (n->stamp == s->gen) {
        if (n->heap == PF_CLOSED || cost_key(ga, gb) >= cost_key(n->ga, n->gb))
            return 0;
        n->ga = ga;
        n->gb = gb;
        n->parent = parent;
        s->heap[n->heap] = heap_ent(s, cell, ga, gb);
        heap_up(s, n->heap);
        return 0;
    }
    if (s->heap_len == s->heap_cap) {
        size_t cap = s->heap_cap ? s->heap_cap * 2 : 1024;
        if (cap > s->ncells)
            cap = s->ncells;
        assert(cap > s->heap_len); /* each cell is in the heap at most once */
        struct pf_heap_ent *h = realloc(s->heap, cap * sizeof(*h));
        if (!h)
            return P2C2R_ENOMEM;
        s->heap = h;
        s->heap_cap = cap;
    }
    n->stamp = s->gen;
    n->ga = ga;
    n->gb = gb;
    n->parent = parent;
    s->heap[s->heap_len] = heap_ent(s, cell, ga, gb);
    n->heap = (uint32_t)s->heap_len++;
    heap_up(s, n->heap);
    return 0;
}

static int astar_expand(struct pf_search *s, uint32_t c)
{
    const uint8_t *g = s->m->cells;
    const struct pf_node *n = &s->nodes[c];
    uint32_t ga = n->ga, gb = n->gb;
    int rc;
    for (int d = 0; d < 4; d++) {
        uint32_t t = c + (uint32_t)s->off[d];
        if (g[t] && (rc = relax(s, t, ga + 1, gb, c)) != 0)
            return rc;
    }
    for (int d = 4; d < 8; d++) {
        uint32_t t = c + (uint32_t)s->off[d];
        if (g[t] && g[c + (uint32_t)s->off[diag_parts[d - 4][0]]] &&
            g[c + (uint32_t)s->off[diag_parts[d - 4][1]]] && (rc = relax(s, t, ga, gb + 1, c)) != 0)
            return rc;
    }
    return 0;
}

/* The two straight directions perpendicular to straight direction d. */
static void sides(int d, int *s1, int *s2)
{
    *s1 = (d + 1) & 3;
    *s2 = (d + 3) & 3;
}

/* Jumps from c in straight direction d.  Returns the jump point (the goal,
 * or a cell with a forced neighbour) and its distance in *k, or PF_NONE when
 * a blocked cell comes first. */
static uint32_t jump_straight(const struct pf_search *s, uint32_t c, int d, uint32_t *k)
{
    const uint8_t *g = s->m->cells;
    int a, b;
    sides(d, &a, &b);
    uint32_t o = (uint32_t)s->off[d], oa = (uint32_t)s->off[a], ob = (uint32_t)s->off[b];
    uint32_t steps = 0;
    for (;;) {
        uint32_t n = c + o;
        if (!g[n])
            return PF_NONE;
        steps++;
        if (n == s->goal || (!g[c + oa] && g[n + oa]) || (!g[c + ob] && g[n + ob])) {
            *k = steps;
            return n;
        }
        c = n;
    }
}

/* Jumps from c in diagonal direction d (4..7); as jump_straight.  A diagonal
 * step needs both of its straight parts passable. */
static uint32_t jump_diag(const struct pf_search *s, uint32_t c, int d, uint32_t *k)
{
    const uint8_t *g = s->m->cells;
    int dv = diag_parts[d - 4][0], dh = diag_parts[d - 4][1];
    uint32_t ov = (uint32_t)s->off[dv], oh = (uint32_t)s->off[dh];
    uint32_t steps = 0, unused;
    for (;;) {
        uint32_t n = c + ov + oh;
        if (!g[c + ov] || !g[c + oh] || !g[n])
            return PF_NONE;
        steps++;
        if (n == s->goal || jump_straight(s, n, dh, &unused) != PF_NONE ||
            jump_straight(s, n, dv, &unused) != PF_NONE) {
            *k = steps;
            return n;
        }
        c = n;
    }
}

/* The directions worth following from c, reached from its parent. */
static unsigned jps_dirs(const struct pf_search *s, uint32_t c)
{
    uint32_t p = s->nodes[c].parent;
    if (p == c)
        return 0xff; /* the start: everywhere */
    uint32_t st = s->m->stride;
    int64_t dx = (int64_t)(c % st) - (int64_t)(p % st), dy = (int64_t)(c / st) - (int64_t)(p / st);
    int d = dir_of[(dy > 0) - (dy < 0) + 1][(dx > 0) - (dx < 0) + 1];
    assert(d < 8);
    if (d >= 4)
        return 1u << d | 1u << diag_parts[d - 4][0] | 1u << diag_parts[d - 4][1];
    const uint8_t *g = s->m->cells;
    unsigned mask = 1u << d;
    int side[2];
    sides(d, &side[0], &side[1]);
    uint32_t back = c - (uint32_t)s->off[d];
    for (int i = 0; i < 2; i++) {
        uint32_t os = (uint32_t)s->off[side[i]];
        if (!g[back + os] && g[c + os]) {
            mask |= 1u << side[i];
            /* The diagonal between d and this side. */
            int dd = dir_of[dir_dy[d] + dir_dy[side[i]] + 1][dir_dx[d] + dir_dx[side[i]] + 1];
            mask |= 1u << dd;
        }
    }
    return mask;
}

static int jps_expand(struct pf_search *s, uint32_t c)
{
    unsigned mask = jps_dirs(s, c);
    const struct pf_node *n = &s->nodes[c];
    uint32_t ga = n->ga, gb = n->gb;
    int rc;
    for (int d = 0; d < 8; d++) {
        if (!(mask & 1u << d))
            continue;
        uint32_t k = 0;
        uint32_t t = d < 4 ? jump_straight(s, c, d, &k) : jump_diag(s, c, d, &k);
        if (t == PF_NONE)
            continue;
        rc = d < 4 ? relax(s, t, ga + k, gb, c) : relax(s, t, ga, gb + k, c);
        if (rc)
            return rc;
    }
    return 0;
}

int pf_search_new(const struct pf_map *m, struct pf_search **out)
{
    assert(m && m->cells && m->width && m->height);
    struct pf_search *s = calloc(1, sizeof(*s));
    if (!s)
        return P2C2R_ENOMEM;
    s->m = m;
    s->ncells = (size_t)m->stride * (m->height + 2);
    s->nodes = calloc(s->ncells, sizeof(*s->nodes));
    if (!s->nodes) {
        free(s);
        return P2C2R_ENOMEM;
    }
    for (int d = 0; d < 8; d++)
        s->off[d] = dir_dy[d] * (int32_t)m->stride + dir_dx[d];
    *out = s;
    return 0;
}

void pf_search_free(struct pf_search *s)
{
    if (!s)
        return;
    free(s->nodes);
    free(s->heap);
    free(s->path);
    free(s);
}

/* Walks the parents back from the goal, filling s->path start .. goal. */
static int build_path(struct pf_search *s, uint32_t start, size_t len)
{
    if (len > s->path_cap) {
        struct pf_point *p = realloc(s->path, len * sizeof(*p));
        if (!p)
            return P2C2R_ENOMEM;
        s->path = p;
        s->path_cap = len;
    }
    uint32_t st = s->m->stride, c = s->goal;
    size_t i = len;
    s->path[--i] = (struct pf_point){c % st - 1, c / st - 1};
    while (c != start) {
        uint32_t p = s->nodes[c].parent;
        int64_t dx = (int64_t)(p % st) - (int64_t)(c % st), dy = (int64_t)(p / st) - (int64_t)(c / st);
        int d = dir_of[(dy > 0) - (dy < 0) + 1][(dx > 0) - (dx < 0) + 1];
        assert(d < 8);
        while (c != p) {
            c += (uint32_t)s->off[d];
            assert(i > 0);
            s->path[--i] = (struct pf_point){c % st - 1, c / st - 1};
        }
    }
    assert(i == 0);
    return 0;
}

void pf_search_set_cancel(struct pf_search *s, const int *flag) { s->cancel = flag; }

int pf_search_run(struct pf_search *s, enum pf_algo algo, const struct pf_query *q, int want_path,
                  struct pf_result *out)
{
    const struct pf_map *m = s->m;
    if (!pf_map_passable(m, q->sx, q->sy) || !pf_map_passable(m, q->gx, q->gy))
        return P2C2R_EINVAL;
    if (++s->gen == 0) {
        memset(s->nodes, 0, s->ncells * sizeof(*s->nodes));
        s->gen = 1;
    }
    uint32_t start = pf_map_index(m, q->sx, q->sy);
    s->goal = pf_map_index(m, q->gx, q->gy);
    s->gx = q->gx + 1;
    s->gy = q->gy + 1;
    s->heap_len = 0;

    struct pf_result r = {0};
    int rc = relax(s, start, 0, 0, start);
    while (rc == 0 && s->heap_len > 0) {
        if (r.expanded % PF_CANCEL_BATCH == 0 && tasks_cancelled(s->cancel))
            return P2C2R_ECANCELLED;
        uint32_t c = heap_pop(s);
        r.expanded++;
        if (c == s->goal) {
            r.found = 1;
            break;
        }
        rc = algo == PF_ALGO_JPS ? jps_expand(s, c) : astar_expand(s, c);
    }
    if (rc)
        return rc;
    if (r.found) {
        r.straight = s->nodes[s->goal].ga;
        r.diagonal = s->nodes[s->goal].gb;
        if (want_path) {
            r.path_len = (size_t)r.straight + r.diagonal + 1;
            if ((rc = build_path(s, start, r.path_len)) != 0)
                return rc;
            r.path = s->path;
        }
    }
    *out = r;
    return 0;
}

double pf_cost_value(uint32_t straight, uint32_t diagonal)
{
    return (double)straight + (double)diagonal * 1.41421356237309504880;
}

/* Writes v in decimal, at least width digits (zero-padded); returns length. */
static size_t put_u64(char *buf, uint64_t v, int width)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < width);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return (size_t)n;
}

size_t pf_cost_format(char *buf, uint32_t straight, uint32_t diagonal)
{
    /* sqrt(2) * 1e8 = 141421356.237309504 880168872...: the integer part,
     * then the fraction in two 9-digit halves so every product fits in 64
     * bits (diagonal < 2^26). */
    uint64_t b = diagonal;
    uint64_t hi = b * 237309504u;        /* units of 1e-9 (of 1e-8) */
    uint64_t lo = b * 880168872u;        /* units of 1e-18 (of 1e-8) */
    uint64_t frac = (hi + lo / 1000000000u + 500000000u) / 1000000000u;
    uint64_t scaled = (uint64_t)straight * 100000000u + b * 141421356u + frac;
    size_t n = put_u64(buf, scaled / 100000000u, 1);
    buf[n++] = '.';
    n += put_u64(buf + n, scaled % 100000000u, 8);
    return n;
}
