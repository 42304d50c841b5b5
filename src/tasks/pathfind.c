/* pathfind.c - the "pathfind" executor: decodes a map and a batch of queries
 * (pathfind_map.c), answers each with A* or JPS (pathfind_search.c) and
 * writes one text line per query.
 *
 * Invariants: the output depends only on the input, the params and the map
 * blob (searches are exact-integer, see pathfind_search.c, and lines are
 * written in query order); nothing is global, so any number of threads may
 * run tasks at once; memory is bounded by the map size (one workspace per
 * task, reused by every query) plus the output, which is capped at
 * max_output before it is allocated.  Every failure has a one-line reason. */
#include "tasks/pathfind.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_cost.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t err_cap, const char *fmt,
                                                       ...)
{
    if (err && err_cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_cap, fmt, ap);
        va_end(ap);
    }
    return P2C2R_EINVAL;
}

void pf_options_init(struct pf_options *o)
{
    *o = (struct pf_options){PF_ALGO_JPS, 1, NULL, 0, 0, NULL};
}

static int value_is(const char *v, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(v, word, n) == 0;
}

static int is_hex_ref(const char *v, size_t n)
{
    if (n != 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return 0;
    return 1;
}

int pf_options_parse(const char *params, size_t len, struct pf_options *o, char *err,
                     size_t err_cap)
{
    const char *p = params, *end = params ? params + len : params;
    unsigned seen = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *eq = memchr(p, '=', (size_t)(le - p));
        size_t kl = eq ? (size_t)(eq - p) : (size_t)(le - p);
        const char *v = eq ? eq + 1 : le;
        size_t vl = (size_t)(le - v);
        unsigned bit;
        if (le == p) {
            p = nl ? nl + 1 : end;
            continue;
        }
        if (!eq)
            return fail(err, err_cap, "param '%.*s' has no '=': params are key=value lines",
                        (int)(kl < 32 ? kl : 32), p);
        if (value_is(p, kl, "algo")) {
            bit = 1;
            if (value_is(v, vl, "jps"))
                o->algo = PF_ALGO_JPS;
            else if (value_is(v, vl, "astar"))
                o->algo = PF_ALGO_ASTAR;
            else
                return fail(err, err_cap, "param algo must be jps or astar");
        } else if (value_is(p, kl, "paths")) {
            bit = 2;
            if (value_is(v, vl, "1"))
                o->paths = 1;
            else if (value_is(v, vl, "0"))
                o->paths = 0;
            else
                return fail(err, err_cap, "param paths must be 1 (cells and cost) or 0 (cost only)");
        } else if (value_is(p, kl, "map")) {
            bit = 4;
            if (!is_hex_ref(v, vl))
                return fail(err, err_cap,
                            "param map must be the 64 lowercase hex digits of the map blob's SHA-256");
            o->map_ref = v;
            o->map_ref_len = vl;
        } else {
            return fail(err, err_cap, "unknown param '%.*s' (pathfind takes algo, paths and map)",
                        (int)(kl < 32 ? kl : 32), p);
        }
        if (seen & bit)
            return fail(err, err_cap, "param %.*s is given twice", (int)kl, p);
        seen |= bit;
        p = nl ? nl + 1 : end;
    }
    return 0;
}

/* ---- output ------------------------------------------------------------- */

struct pf_text {
    char *p;
    size_t len, cap, max;
};

/* Makes room for n more bytes.  Returns 0, ETOOBIG (over max) or ENOMEM. */
static int text_reserve(struct pf_text *t, size_t n)
{
    if (n > t->max - t->len)
        return P2C2R_ETOOBIG;
    if (t->len + n <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 4096;
    while (cap < t->len + n)
        cap = cap > t->max / 2 ? t->max : cap * 2;
    char *np = realloc(t->p, cap);
    if (!np)
        return P2C2R_ENOMEM;
    t->p = np;
    t->cap = cap;
    return 0;
}

static size_t digits(uint32_t v)
{
    size_t n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

static size_t put_u32(char *b, uint32_t v)
{
    size_t n = digits(v);
    for (size_t i = n; i-- > 0; v /= 10)
        b[i] = (char)('0' + v % 10);
    return n;
}

/* Appends one result line: "none", "COST" or "COST x,y x,y ...". */
static int put_result(struct pf_text *t, const struct pf_result *r, int paths)
{
    int rc;
    if (!r->found) {
        if ((rc = text_reserve(t, 5)) != 0)
            return rc;
        memcpy(t->p + t->len, "none\n", 5);
        t->len += 5;
        return 0;
    }
    char cost[24];
    size_t n = pf_cost_format(cost, r->straight, r->diagonal);
    size_t need = n + 1;
    if (paths)
        for (size_t i = 0; i < r->path_len; i++)
            need += 2 + digits(r->path[i].x) + digits(r->path[i].y);
    if ((rc = text_reserve(t, need)) != 0)
        return rc;
    char *b = t->p + t->len;
    memcpy(b, cost, n);
    b += n;
    if (paths) {
        for (size_t i = 0; i < r->path_len; i++) {
            *b++ = ' ';
            b += put_u32(b, r->path[i].x);
            *b++ = ',';
            b += put_u32(b, r->path[i].y);
        }
    }
    *b++ = '\n';
    t->len += need;
    return 0;
}

int pf_map_blob_parse(struct pf_map *m, const char *map_text, size_t map_len, char *err,
                      size_t err_cap)
{
    size_t used = 0;
    int rc = pf_map_parse(m, map_text, map_len, &used, err, err_cap);
    if (rc != 0)
        return rc;
    if (!pf_text_blank(map_text + used, map_len - used)) {
        rc = fail(err, err_cap, "map blob: text after the last map row (line %u)",
                  pf_count_lines(map_text, used) + 1);
        pf_map_fini(m);
    }
    return rc;
}

int pf_task_run(const char *map_text, size_t map_len, const char *input, size_t input_len,
                const struct pf_options *o, char **out, size_t *out_len, char *err,
                size_t err_cap)
{
    struct pf_map m;
    uint32_t first_line = 1;
    size_t used = 0;
    int rc;

    if (!input) {
        input = "";
        input_len = 0;
    }
    if (map_text) {
        if ((rc = pf_map_blob_parse(&m, map_text, map_len, err, err_cap)) != 0)
            return rc;
    } else {
        if ((rc = pf_map_parse(&m, input, input_len, &used, err, err_cap)) != 0)
            return rc;
        first_line = pf_count_lines(input, used) + 1;
    }
    rc = pf_task_run_map(&m, input + used, input_len - used, first_line, o, out, out_len, err,
                         err_cap);
    pf_map_fini(&m);
    return rc;
}

int pf_task_run_map(const struct pf_map *m, const char *input, size_t input_len,
                    uint32_t first_line, const struct pf_options *o, char **out, size_t *out_len,
                    char *err, size_t err_cap)
{
    struct pf_query *qs = NULL;
    struct pf_search *s = NULL;
    struct pf_text t = {NULL, 0, 0, o->max_output ? o->max_output : PF_MAX_OUTPUT};
    uint32_t nq = 0;
    int rc;

    if (!input) {
        input = "";
        input_len = 0;
    }
    if ((rc = pf_queries_parse(m, input, input_len, first_line, &qs, &nq, err, err_cap)) != 0)
        return rc;
    if (nq && (rc = pf_search_new(m, &s)) != 0) {
        fail(err, err_cap, "out of memory for the search workspace of a %ux%u map", m->width,
             m->height);
        goto out_queries;
    }
    if (s)
        pf_search_set_cancel(s, o->cancel);
    for (uint32_t i = 0; i < nq; i++) {
        struct pf_result r;
        if ((rc = pf_search_run(s, o->algo, &qs[i], o->paths, &r)) != 0) {
            if (rc == P2C2R_ECANCELLED)
                fail(err, err_cap, "cancelled at query %u of %u", i + 1, nq);
            else
                fail(err, err_cap, "query %u: out of memory", i + 1);
            goto out_text;
        }
        if ((rc = put_result(&t, &r, o->paths)) != 0) {
            if (rc == P2C2R_ETOOBIG)
                fail(err, err_cap,
                     "output over %zu bytes at query %u: ask for paths=0 or split the batch", t.max,
                     i + 1);
            else
                fail(err, err_cap, "out of memory for the output");
            goto out_text;
        }
    }
    *out = t.p;
    *out_len = t.len;
    t.p = NULL;
out_text:
    free(t.p);
    pf_search_free(s);
out_queries:
    free(qs);
    return rc;
}

/* ---- executor ----------------------------------------------------------- */

static int pathfind_check(const struct p2c2r_exec_call *c)
{
    struct pf_options o;
    pf_options_init(&o);
    return pf_options_parse(c->params, c->params_len, &o, c->err, c->err_cap);
}

static void map_free(void *obj)
{
    struct pf_map *m = obj;
    pf_map_fini(m);
    free(m);
}

/* The parsed map blob for key (its SHA-256): from the peer's prepared state,
 * or parsed now and offered to it.  A map that fails to parse is never
 * offered.  On success *m is valid until run returns; *own is what the
 * caller frees (map_free) when the cache did not take the map. */
static int prepared_map(struct p2c2r_exec_call *c, const uint8_t key[32], const uint8_t *text,
                        size_t len, const struct pf_map **m, struct pf_map **own)
{
    *own = NULL;
    if ((*m = p2c2r_exec_prepared_get(c, key)) != NULL)
        return 0;
    struct pf_map *pm = calloc(1, sizeof(*pm));
    if (!pm) {
        fail(c->err, c->err_cap, "out of memory for the map");
        return P2C2R_ENOMEM;
    }
    int rc = pf_map_blob_parse(pm, (const char *)text, len, c->err, c->err_cap);
    if (rc != 0) {
        free(pm);
        return rc;
    }
    size_t bytes = sizeof(*pm) + (size_t)pm->stride * (pm->height + 2);
    const void *cached;
    if (p2c2r_exec_prepared_put(c, key, pm, bytes, map_free, &cached) == 0) {
        *m = cached;
    } else {
        *m = pm;
        *own = pm;
    }
    return 0;
}

static void hex_to_key(const char *hex, uint8_t key[32])
{
    for (int i = 0; i < 32; i++) {
        int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
        int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
        key[i] = (uint8_t)(hi << 4 | lo);
    }
}

static int pathfind_run(struct p2c2r_exec_call *c)
{
    struct pf_options o;
    const uint8_t *map = NULL;
    size_t map_len = 0, out_len = 0;
    char *out = NULL;
    int rc;

    pf_options_init(&o);
    if ((rc = pf_options_parse(c->params, c->params_len, &o, c->err, c->err_cap)) != 0)
        return rc;
    o.cancel = c->cancel;
    if (o.map_ref && !p2c2r_exec_blob(c, o.map_ref, o.map_ref_len, &map, &map_len))
        return fail(c->err, c->err_cap,
                    "param map names blob %.12s... but the task does not reference it", o.map_ref);
    if (o.map_ref && !map)
        map = (const uint8_t *)""; /* an empty blob is an empty map text */
    if (o.map_ref) {
        /* The map blob: parsed once per peer while its prepared state lasts. */
        uint8_t key[32];
        const struct pf_map *m;
        struct pf_map *own;
        hex_to_key(o.map_ref, key);
        if ((rc = prepared_map(c, key, map, map_len, &m, &own)) != 0)
            return rc;
        rc = pf_task_run_map(m, (const char *)c->input, c->input_len, 1, &o, &out, &out_len,
                             c->err, c->err_cap);
        if (own)
            map_free(own);
    } else {
        rc = pf_task_run(NULL, 0, (const char *)c->input, c->input_len, &o, &out, &out_len,
                         c->err, c->err_cap);
    }
    if (rc)
        return rc;
    void *dst = c->alloc_output(c, out_len);
    if (!dst) {
        free(out);
        fail(c->err, c->err_cap, "output of %zu bytes is over the peer's limit: ask for paths=0",
             out_len);
        return P2C2R_ETOOBIG;
    }
    if (out_len)
        memcpy(dst, out, out_len);
    free(out);
    return 0;
}

/* cells + queries * cells / 4: the parse and the workspace grow with the
 * map, and a search may touch any share of it (a quarter on average is the
 * assumption; the coordinator learns the time per unit).  The map's size is
 * read from its header (first PF_PEEK bytes), the query count from the
 * "queries N" line; what cannot be read counts as the text's bytes (a
 * map cell is a byte) and one query. */
#define PF_PEEK 256u

static uint64_t pathfind_estimate(const struct p2c2r_exec_call *c)
{
    struct pf_options o;
    const uint8_t *map = c->input;
    size_t map_len = c->input_len;
    pf_options_init(&o);
    if (pf_options_parse(c->params, c->params_len, &o, NULL, 0) == 0 && o.map_ref &&
        !p2c2r_exec_blob(c, o.map_ref, o.map_ref_len, &map, &map_len)) {
        map = NULL;
        map_len = 0;
    }
    uint32_t w, h, q;
    const char *mt = (const char *)map;
    size_t peek = map_len < PF_PEEK ? map_len : PF_PEEK;
    uint64_t cells = map_len;
    if (cost_peek_uint(mt, peek, "width", &w) && cost_peek_uint(mt, peek, "height", &h))
        cells = (uint64_t)(w < PF_MAX_DIM ? w : PF_MAX_DIM) * (h < PF_MAX_DIM ? h : PF_MAX_DIM);
    uint64_t nq = 1;
    if (cost_peek_uint((const char *)c->input, c->input_len, "queries", &q))
        nq = q < PF_MAX_QUERIES ? q : PF_MAX_QUERIES;
    return cost_clamp(cost_add(cells, cost_mul(nq, cells / 4 + 1)));
}

const struct p2c2r_executor exec_pathfind = {"pathfind", 1, P2C2R_EXEC_DETERMINISTIC, PF_MAX_INPUT,
                                             pathfind_check, pathfind_run, pathfind_estimate};
