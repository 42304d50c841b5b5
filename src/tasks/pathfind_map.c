/* pathfind_map.c - the pathfind decoder: MovingAI octile map text and query
 * batches into a bordered grid and an array of checked queries.
 *
 * The input is untrusted.  The decoder reads only inside [text, text + len)
 * (lines are found with memchr, never by looking for a NUL), checks every
 * number for overflow before it is used, refuses dimensions over PF_MAX_DIM
 * and, before allocating the grid, checks that the input is long enough to
 * hold the rows it declares, so a short input can never make it allocate
 * much.  Each failure is P2C2R_EINVAL with one line saying what was wrong and
 * where (line number); nothing is written to the caller's outputs then.
 *
 * Passable characters follow the MovingAI benchmark definition for octile
 * maps: '.' (ground), 'G' (ground) and 'S' (swamp, passable from ground)
 * are passable; '@' and 'O' (out of bounds), 'T' (trees) and 'W' (water,
 * which the benchmarks only connect to other water, so no ground path ever
 * enters it) are blocked.  Any other byte in a row is an error. */
#include "tasks/pathfind_map.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

/* A cursor over lines; line is the number of the line about to be read. */
struct pf_lines {
    const char *p, *end;
    uint32_t line;
};

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

/* Returns the next line (without its "\n" or "\r\n") or 0 at the end. */
static int lines_next(struct pf_lines *l, const char **s, size_t *n)
{
    if (l->p >= l->end)
        return 0;
    const char *nl = memchr(l->p, '\n', (size_t)(l->end - l->p));
    const char *le = nl ? nl : l->end;
    *s = l->p;
    *n = (size_t)(le - l->p);
    if (*n && (*s)[*n - 1] == '\r')
        (*n)--;
    l->p = nl ? nl + 1 : l->end;
    l->line++;
    return 1;
}

static int is_space(char ch)
{
    return ch == ' ' || ch == '\t';
}

static int line_blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_space(s[i]) && s[i] != '\r')
            return 0;
    return 1;
}

int pf_text_blank(const char *text, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_space(text[i]) && text[i] != '\r' && text[i] != '\n')
            return 0;
    return 1;
}

uint32_t pf_count_lines(const char *text, size_t len)
{
    uint32_t n = 0;
    const char *p = text, *end = text + len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        n++;
        p++;
    }
    return n;
}

/* Splits a line into at most max tokens separated by runs of spaces and
 * tabs.  Returns the number of tokens, or max + 1 when there are more. */
static size_t split(const char *s, size_t n, const char **tok, size_t *tok_len, size_t max)
{
    size_t k = 0, i = 0;
    for (;;) {
        while (i < n && is_space(s[i]))
            i++;
        if (i == n)
            return k;
        if (k == max)
            return max + 1;
        size_t start = i;
        while (i < n && !is_space(s[i]))
            i++;
        tok[k] = s + start;
        tok_len[k] = i - start;
        k++;
    }
}

/* Parses an unsigned decimal of at most 9 digits (no sign, no spaces). */
static int parse_u32(const char *s, size_t n, uint32_t *out)
{
    if (n == 0 || n > 9)
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

static int token_is(const char *t, size_t n, const char *word)
{
    return strlen(word) == n && memcmp(t, word, n) == 0;
}

/* Shows at most 24 bytes of a token, non-printable bytes as '?'. */
static const char *show(const char *t, size_t n, char buf[32])
{
    size_t k = n < 24 ? n : 24;
    for (size_t i = 0; i < k; i++)
        buf[i] = t[i] >= 0x20 && t[i] < 0x7f ? t[i] : '?';
    if (n > k) {
        memcpy(buf + k, "...", 3);
        k += 3;
    }
    buf[k] = '\0';
    return buf;
}

/* Reads a header line "key value" where value is a number in [1, max]. */
static int header_dim(struct pf_lines *l, const char *key, uint32_t max, uint32_t *out, char *err,
                      size_t err_cap)
{
    const char *s, *tok[2];
    size_t n, tl[2];
    char b[32];
    if (!lines_next(l, &s, &n))
        return fail(err, err_cap, "line %u: map header ends before '%s N'", l->line + 1, key);
    size_t k = split(s, n, tok, tl, 2);
    if (k != 2 || !token_is(tok[0], tl[0], key))
        return fail(err, err_cap, "line %u: expected '%s N' in the map header, got '%s'", l->line,
                    key, show(s, n, b));
    uint32_t v;
    if (parse_u32(tok[1], tl[1], &v) != 0) {
        int digits = tl[1] > 0;
        for (size_t i = 0; i < tl[1]; i++)
            digits = digits && tok[1][i] >= '0' && tok[1][i] <= '9';
        if (digits)
            return fail(err, err_cap, "line %u: %s %s is over the limit of %u", l->line, key,
                        show(tok[1], tl[1], b), max);
        return fail(err, err_cap, "line %u: %s must be a whole number, got '%s'", l->line, key,
                    show(tok[1], tl[1], b));
    }
    if (v == 0)
        return fail(err, err_cap, "line %u: %s must be at least 1", l->line, key);
    if (v > max)
        return fail(err, err_cap, "line %u: %s %u is over the limit of %u", l->line, key, v, max);
    *out = v;
    return 0;
}

int pf_map_char_passable(unsigned char ch)
{
    return ch == '.' || ch == 'G' || ch == 'S';
}

static int map_char_known(unsigned char ch)
{
    return pf_map_char_passable(ch) || ch == '@' || ch == 'O' || ch == 'T' || ch == 'W';
}

void pf_map_fini(struct pf_map *m)
{
    if (!m)
        return;
    free(m->cells);
    *m = (struct pf_map){0};
}

int pf_map_parse(struct pf_map *m, const char *text, size_t len, size_t *consumed, char *err,
                 size_t err_cap)
{
    struct pf_lines l = {text, text + len, 0};
    const char *s, *tok[3];
    size_t n, tl[3];
    char b[32];
    uint32_t h, w;
    int rc;

    *m = (struct pf_map){0};
    if (len == 0)
        return fail(err, err_cap, "empty input: expected a MovingAI map starting 'type octile'");
    if (!lines_next(&l, &s, &n) || split(s, n, tok, tl, 2) != 2 || !token_is(tok[0], tl[0], "type"))
        return fail(err, err_cap, "line 1: expected 'type octile' (a MovingAI .map header), got '%s'",
                    show(s, n, b));
    if (!token_is(tok[1], tl[1], "octile"))
        return fail(err, err_cap, "line 1: map type '%s' is not supported: only 'type octile'",
                    show(tok[1], tl[1], b));
    if ((rc = header_dim(&l, "height", PF_MAX_DIM, &h, err, err_cap)) != 0)
        return rc;
    if ((rc = header_dim(&l, "width", PF_MAX_DIM, &w, err, err_cap)) != 0)
        return rc;
    if (!lines_next(&l, &s, &n) || split(s, n, tok, tl, 1) != 1 || !token_is(tok[0], tl[0], "map"))
        return fail(err, err_cap, "line %u: expected 'map' after the header", l.line);

    /* Every row needs w bytes and all but maybe the last a line end: refuse
     * a size the input cannot hold before allocating for it. */
    size_t left = (size_t)(l.end - l.p);
    if (left < (size_t)h * (w + 1) - 1)
        return fail(err, err_cap,
                    "the header declares %u rows of %u cells but only %zu bytes follow it", h, w,
                    left);

    uint32_t stride = w + 2;
    uint8_t *cells = calloc((size_t)stride * (h + 2), 1);
    if (!cells) {
        fail(err, err_cap, "out of memory for a %ux%u map", w, h);
        return P2C2R_ENOMEM;
    }
    for (uint32_t y = 0; y < h; y++) {
        if (!lines_next(&l, &s, &n)) {
            rc = fail(err, err_cap, "the map has %u rows, the header declares %u", y, h);
            goto fail_cells;
        }
        if (n != w) {
            rc = fail(err, err_cap, "line %u: map row %u has %zu cells, expected %u (the width)",
                      l.line, y, n, w);
            goto fail_cells;
        }
        uint8_t *row = cells + (size_t)(y + 1) * stride + 1;
        for (uint32_t x = 0; x < w; x++) {
            unsigned char ch = (unsigned char)s[x];
            if (!map_char_known(ch)) {
                rc = fail(err, err_cap,
                          "line %u: map row %u column %u: unknown map character 0x%02x "
                          "(expected one of . G S @ O T W)",
                          l.line, y, x, ch);
                goto fail_cells;
            }
            row[x] = (uint8_t)pf_map_char_passable(ch);
        }
    }
    m->width = w;
    m->height = h;
    m->stride = stride;
    m->cells = cells;
    if (consumed)
        *consumed = (size_t)(l.p - text);
    return 0;

fail_cells:
    free(cells);
    return rc;
}

int pf_map_passable(const struct pf_map *m, uint32_t x, uint32_t y)
{
    return x < m->width && y < m->height && m->cells[pf_map_index(m, x, y)];
}

int pf_query_check(const struct pf_map *m, const struct pf_query *q, size_t idx, char *err,
                   size_t err_cap)
{
    static const char *const what[2] = {"start", "goal"};
    uint32_t xs[2] = {q->sx, q->gx}, ys[2] = {q->sy, q->gy};
    for (int i = 0; i < 2; i++) {
        if (xs[i] >= m->width || ys[i] >= m->height)
            return fail(err, err_cap, "query %zu: %s (%u,%u) is outside the %ux%u map", idx, what[i],
                        xs[i], ys[i], m->width, m->height);
        if (!m->cells[pf_map_index(m, xs[i], ys[i])])
            return fail(err, err_cap, "query %zu: %s (%u,%u) is on a blocked cell", idx, what[i],
                        xs[i], ys[i]);
    }
    return 0;
}

int pf_queries_parse(const struct pf_map *m, const char *text, size_t len, uint32_t first_line,
                     struct pf_query **out, uint32_t *n_out, char *err, size_t err_cap)
{
    struct pf_lines l = {text, text + len, first_line ? first_line - 1 : 0};
    const char *s, *tok[4];
    size_t n, tl[4];
    char b[32];
    uint32_t count;

    do {
        if (!lines_next(&l, &s, &n))
            return fail(err, err_cap, "no query section: expected 'queries N' after the map");
    } while (line_blank(s, n));
    if (split(s, n, tok, tl, 2) != 2 || !token_is(tok[0], tl[0], "queries"))
        return fail(err, err_cap, "line %u: expected 'queries N', got '%s'", l.line, show(s, n, b));
    if (parse_u32(tok[1], tl[1], &count) != 0 || count > PF_MAX_QUERIES)
        return fail(err, err_cap, "line %u: the query count must be a whole number from 0 to %u, got '%s'",
                    l.line, PF_MAX_QUERIES, show(tok[1], tl[1], b));
    /* Each query line takes at least 8 bytes ("0 0 0 0" and a line end, which
     * the last may lack): refuse a count the input cannot hold before
     * allocating for it. */
    if (count && (size_t)count * 8 - 1 > (size_t)(l.end - l.p))
        return fail(err, err_cap, "line %u: %u queries declared but the input is too short to hold them",
                    l.line, count);

    struct pf_query *qs = NULL;
    if (count) {
        qs = malloc(sizeof(*qs) * count);
        if (!qs)
            return P2C2R_ENOMEM;
    }
    int rc;
    for (uint32_t i = 0; i < count; i++) {
        if (!lines_next(&l, &s, &n)) {
            rc = fail(err, err_cap, "%u queries declared but only %u given", count, i);
            goto fail_qs;
        }
        uint32_t v[4];
        if (split(s, n, tok, tl, 4) != 4) {
            rc = fail(err, err_cap, "line %u: query %u must be 'SX SY GX GY', got '%s'", l.line, i + 1,
                      show(s, n, b));
            goto fail_qs;
        }
        for (int k = 0; k < 4; k++) {
            if (parse_u32(tok[k], tl[k], &v[k]) != 0) {
                rc = fail(err, err_cap, "line %u: query %u: '%s' is not a coordinate (a whole number)",
                          l.line, i + 1, show(tok[k], tl[k], b));
                goto fail_qs;
            }
        }
        qs[i] = (struct pf_query){v[0], v[1], v[2], v[3]};
        if ((rc = pf_query_check(m, &qs[i], i + 1, err, err_cap)) != 0)
            goto fail_qs;
    }
    while (lines_next(&l, &s, &n)) {
        if (!line_blank(s, n)) {
            rc = fail(err, err_cap, "line %u: more query lines than the %u declared", l.line, count);
            goto fail_qs;
        }
    }
    *out = qs;
    *n_out = count;
    return 0;

fail_qs:
    free(qs);
    return rc;
}
