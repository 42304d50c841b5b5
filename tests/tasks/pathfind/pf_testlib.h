/* pf_testlib.h - shared helpers of the pathfind tests: a seeded random map
 * generator, a plain Dijkstra to check costs against, a path checker, a
 * peer-like harness that runs the executor, and file reading. */
#ifndef P2C2R_PF_TESTLIB_H
#define P2C2R_PF_TESTLIB_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"
#include "tasks/pathfind.h"

/* splitmix64: the next number of the sequence in *state. */
uint64_t pft_rand(uint64_t *state);

/* A MovingAI map text of w x h cells: a fraction density of cells blocked
 * at random, plus, when rooms is set, a few walls with gaps (so there are
 * corridors, dead ends and disconnected regions).  Passable cells use '.',
 * 'G' and 'S', blocked ones '@', 'O', 'T' and 'W'.  Returns a new
 * NUL-terminated string (free it) and its length in *len. */
char *pft_random_map(uint32_t w, uint32_t h, double density, int rooms, uint64_t seed, size_t *len);

/* Single-source Dijkstra with double costs (1 and sqrt(2)), no corner
 * cutting, independent of the code under test.  dist must hold
 * m->stride * (m->height + 2) doubles; unreachable cells get -1. */
void pft_dijkstra(const struct pf_map *m, uint32_t sx, uint32_t sy, double *dist);
#define PFT_DIST(m, dist, x, y) ((dist)[pf_map_index((m), (x), (y))])

/* Checks a path: starts at q's start, ends at its goal, each step to one of
 * the 8 neighbours, every cell passable, no corner cut, and exactly
 * `straight` straight and `diagonal` diagonal steps.  Returns NULL when it
 * is valid, else a static description of the first fault. */
const char *pft_check_path(const struct pf_map *m, const struct pf_query *q,
                           const struct pf_point *path, size_t n, uint32_t straight,
                           uint32_t diagonal);

/* Parses one output line (without its "\n") into found / cost / path.
 * points receives at most cap points; *n is the number found.  Returns 0,
 * or -1 when the line is not in the documented format. */
int pft_parse_line(const char *line, size_t len, int *found, double *cost, struct pf_point *points,
                   size_t cap, size_t *n);

/* Plays the peer for one executor run: alloc_output gives a malloc'd buffer
 * of exactly the size asked (so ASan sees any overrun) and refuses more than
 * limit bytes. */
struct pft_harness {
    size_t limit;
    int calls;
    uint8_t *out;
    size_t out_len;
};
int pft_run(struct pft_harness *h, const void *in, size_t in_len, const char *params,
            const struct p2c2r_blob *blobs, size_t nblobs, char *err, size_t err_cap);
void pft_harness_reset(struct pft_harness *h, size_t limit);

/* Reads a whole file into a new NUL-terminated buffer, or NULL. */
char *pft_read_file(const char *path, size_t *len);

#endif
