/* pathfind.h - the pathfind task: a batch of shortest-path queries on one
 * MovingAI octile map, as a pure C API (for tests, the benchmark and the
 * CLI's --local mode) and as the executor "pathfind".
 *
 * Formats (docs/tasks/pathfind.md has the full grammar and an example):
 *   input   the map ("type octile", "height H", "width W", "map", H rows),
 *           unless params name it as a blob, then "queries N" and N lines
 *           "SX SY GX GY";
 *   params  algo=jps|astar (default jps), paths=1|0 (default 1),
 *           map=<64 hex digits: SHA-256 of a map blob>;
 *   output  one line per query, in input order: "COST x,y x,y ..." (the
 *           cells from start to goal; just "COST" with paths=0), or "none"
 *           when the goal cannot be reached.  COST has 8 decimals.
 *
 * Everything here is reentrant: no global state, safe on several threads
 * at once, and the output is a function of the input and params alone. */
#ifndef P2C2R_PATHFIND_H
#define P2C2R_PATHFIND_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/executor.h"
#include "tasks/pathfind_map.h"
#include "tasks/pathfind_search.h"

#define PF_MAX_INPUT ((size_t)32 << 20)  /* largest task input */
#define PF_MAX_OUTPUT ((size_t)16 << 20) /* largest task output */

struct pf_options {
    enum pf_algo algo;   /* default PF_ALGO_JPS */
    int paths;           /* 1 (default): output each path's cells; 0: costs only */
    const char *map_ref; /* the map blob's 64 hex digits (borrowed from params), or NULL: the
                            map is at the start of the input */
    size_t map_ref_len;
    size_t max_output;   /* 0 = PF_MAX_OUTPUT */
    const int *cancel;   /* cancel flag (borrowed), polled between queries and every
                            PF_CANCEL_BATCH expansions; NULL: never cancelled */
};

/* The executor (name "pathfind", version 1, flags 0).  It keeps a parsed
 * map blob as prepared state (keyed by the blob's SHA-256) and costs a task
 * as cells + queries * cells / 4 (docs/tasks/pathfind.md). */
extern const struct p2c2r_executor exec_pathfind;

/* Fills o with the defaults. */
void pf_options_init(struct pf_options *o);

/* Parses a params block ("key=value\n" lines, len bytes, not NUL-terminated)
 * into *o, which should hold the defaults.  Keys: algo, paths, map; any
 * other key, a repeated key or a bad value is P2C2R_EINVAL with a reason in
 * err (may be NULL).  o->map_ref borrows from params. */
int pf_options_parse(const char *params, size_t len, struct pf_options *o, char *err,
                     size_t err_cap);

/* Runs a whole task.  map_text (map_len bytes) is the map when it came as a
 * blob, or NULL when the map is at the start of input (then input holds the
 * map and the query section, else only the query section).  On success *out
 * is a new buffer of *out_len bytes (free it with free(); NULL when empty).
 * Returns 0, P2C2R_EINVAL (bad map, bad query, a query end blocked or
 * outside the map; reason in err), P2C2R_ETOOBIG (output over
 * o->max_output) or P2C2R_ENOMEM. */
int pf_task_run(const char *map_text, size_t map_len, const char *input, size_t input_len,
                const struct pf_options *o, char **out, size_t *out_len, char *err,
                size_t err_cap);

/* Parses a map blob: a whole map text with nothing but blank space after
 * its last row.  Fills *m (release with pf_map_fini).  Errors as
 * pf_map_parse, with "map blob: " reasons for trailing text. */
int pf_map_blob_parse(struct pf_map *m, const char *map_text, size_t map_len, char *err,
                      size_t err_cap);

/* Answers the query section input (first_line: its first line's number,
 * for messages) on the parsed map m (borrowed, only read: a map shared by
 * several threads is fine).  Output and errors as pf_task_run, plus
 * P2C2R_ECANCELLED when o->cancel was seen set. */
int pf_task_run_map(const struct pf_map *m, const char *input, size_t input_len,
                    uint32_t first_line, const struct pf_options *o, char **out, size_t *out_len,
                    char *err, size_t err_cap);

#endif
