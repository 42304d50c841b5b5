/* pathfind_map.h - the pathfind decoder: MovingAI octile maps and query
 * batches, parsed from untrusted text into a bordered grid.
 *
 * Coordinates are MovingAI's: x is the column (0 .. width-1), y the row
 * (0 .. height-1), (0,0) the top-left cell.  Inside the grid every cell has
 * an index; the grid carries one blocked cell of border on every side, so a
 * neighbour of any real cell is a valid index and is never passable outside
 * the map.
 *
 * Every function here is reentrant and keeps no global state. */
#ifndef P2C2R_PATHFIND_MAP_H
#define P2C2R_PATHFIND_MAP_H

#include <stddef.h>
#include <stdint.h>

#define PF_MAX_DIM 4096u       /* largest width and height */
#define PF_MAX_QUERIES 65536u  /* most queries in one batch */

struct pf_map {
    uint32_t width, height;
    uint32_t stride;    /* width + 2 */
    uint8_t *cells;     /* stride * (height + 2) bytes: 1 passable, 0 blocked */
};

struct pf_query {
    uint32_t sx, sy, gx, gy;
};

/* Returns 1 for the map characters that are passable in octile maps
 * ('.', 'G', 'S'), 0 for every other byte (blocked or not a map character). */
int pf_map_char_passable(unsigned char ch);

/* Parses a MovingAI map ("type octile", "height H", "width W", "map", then H
 * rows of W characters) from the start of text (len bytes, not
 * NUL-terminated; "\n" or "\r\n" line ends).  Stops after the last row's
 * line end; *consumed (may be NULL) gets the number of bytes used, so that
 * whatever follows can be parsed by the caller.
 *
 * On success fills *m (the caller releases it with pf_map_fini).  Returns 0,
 * P2C2R_EINVAL with a one-line reason in err (a bad header, dimensions over
 * PF_MAX_DIM, a ragged row, an unknown character, fewer rows than declared),
 * or P2C2R_ENOMEM.  Memory is allocated only after the input was seen to be
 * long enough for the declared size.  On failure *m is left empty (safe to
 * pass to pf_map_fini).  err may be NULL. */
int pf_map_parse(struct pf_map *m, const char *text, size_t len, size_t *consumed, char *err,
                 size_t err_cap);

/* Releases the grid of m and empties it.  An empty or zeroed map is a no-op. */
void pf_map_fini(struct pf_map *m);

/* The grid index of cell (x, y); x < width and y < height. */
static inline uint32_t pf_map_index(const struct pf_map *m, uint32_t x, uint32_t y)
{
    return (y + 1) * m->stride + x + 1;
}

/* Whether (x, y) is inside the map and passable. */
int pf_map_passable(const struct pf_map *m, uint32_t x, uint32_t y);

/* Checks one query against m: both ends inside the map and passable.
 * Returns 0 or P2C2R_EINVAL with a reason in err naming query number idx
 * (counted from 1 in the text). */
int pf_query_check(const struct pf_map *m, const struct pf_query *q, size_t idx, char *err,
                   size_t err_cap);

/* Parses a query section from text: blank lines, then "queries N" (0 <= N <=
 * PF_MAX_QUERIES), then exactly N lines "SX SY GX GY" (unsigned decimals
 * separated by spaces or tabs), then nothing but blank lines.  Every query
 * is checked against m (pf_query_check).  first_line is the line number of
 * text's first line, for messages.
 *
 * On success *out is a new array of *n queries that the caller frees with
 * free() (NULL when N is 0).  Returns 0, P2C2R_EINVAL with a reason in err,
 * or P2C2R_ENOMEM; writes nothing on failure. */
int pf_queries_parse(const struct pf_map *m, const char *text, size_t len, uint32_t first_line,
                     struct pf_query **out, uint32_t *n, char *err, size_t err_cap);

/* Number of line ends ('\n') in the first len bytes of text: how a caller
 * turns pf_map_parse's *consumed into the next line number. */
uint32_t pf_count_lines(const char *text, size_t len);

/* Whether text holds nothing but spaces, tabs and line ends. */
int pf_text_blank(const char *text, size_t len);

#endif
