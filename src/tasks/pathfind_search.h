/* pathfind_search.h - shortest paths on an octile grid: A* with a binary heap
 * and jump point search (JPS), 8-connected, no corner cutting.
 *
 * Costs are exact: a path's cost is straight + diagonal * sqrt(2) for two
 * step counts, and every comparison between costs is done on those integers
 * (see pathfind_search.c), so results are the same bytes on every machine.
 *
 * A search workspace belongs to one map and one thread at a time; any number
 * of workspaces may search the same map concurrently (the map is only read). */
#ifndef P2C2R_PATHFIND_SEARCH_H
#define P2C2R_PATHFIND_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#include "tasks/pathfind_map.h"

enum pf_algo { PF_ALGO_ASTAR = 0, PF_ALGO_JPS = 1 };

/* Bytes of working memory per grid cell (map cells plus the border) that a
 * workspace may use, besides its open list and the path. */
#define PF_SEARCH_BYTES_PER_CELL 20u

struct pf_point {
    uint32_t x, y;
};

struct pf_result {
    int found;                   /* 0: no path between the two cells */
    uint32_t straight, diagonal; /* steps of each kind on the path found */
    const struct pf_point *path; /* start .. goal, each step to an adjacent cell; borrowed from
                                    the workspace, valid until its next run */
    size_t path_len;             /* cells on the path (0 unless found and asked for) */
    uint64_t expanded;           /* nodes taken off the open list */
};

struct pf_search;

/* Returns the name of an algorithm ("astar", "jps"). */
const char *pf_algo_name(enum pf_algo algo);

/* Creates a workspace for searches on m (borrowed: m must outlive it and not
 * change).  Allocates the per-cell arrays zeroed (the kernel maps their
 * pages lazily, so the memory touched grows with the area searched).
 * Returns 0 and a new workspace in *out, or P2C2R_ENOMEM. */
int pf_search_new(const struct pf_map *m, struct pf_search **out);

/* Frees a workspace; NULL is a no-op. */
void pf_search_free(struct pf_search *s);

/* Searches of s poll flag (borrowed; NULL: never) every PF_CANCEL_BATCH
 * node expansions and give up with P2C2R_ECANCELLED once it is set. */
#define PF_CANCEL_BATCH 256u
void pf_search_set_cancel(struct pf_search *s, const int *flag);

/* Finds a shortest path for q with algo.  With want_path the cells of the
 * path are returned in out->path (owned by the workspace).  Returns 0 (also
 * when there is no path: out->found is 0), P2C2R_EINVAL when q's ends are
 * outside the map or blocked, P2C2R_ENOMEM, or P2C2R_ECANCELLED (the cancel
 * flag was seen set, before the first expansion or after a batch).  out is
 * written only on success. */
int pf_search_run(struct pf_search *s, enum pf_algo algo, const struct pf_query *q, int want_path,
                  struct pf_result *out);

/* The cost straight + diagonal * sqrt(2) as a double (for callers that
 * compare; output text uses pf_cost_format). */
double pf_cost_value(uint32_t straight, uint32_t diagonal);

/* Writes the cost straight + diagonal * sqrt(2) rounded to 8 decimals, as in
 * MovingAI .scen files ("12.24264069"), computed with integers only so that
 * every machine prints the same digits.  buf needs 24 bytes; returns the
 * length written (no NUL is written). */
size_t pf_cost_format(char *buf, uint32_t straight, uint32_t diagonal);

#endif
