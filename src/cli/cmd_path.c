/* cmd_path.c - `p2c2r path`: one shortest-path query on a MovingAI map, run
 * as a "pathfind" task on the fabric (through the public client API) or,
 * with --local, in this process through the executor's own C API.
 *
 * Both ways produce the executor's text output, which is parsed here the same
 * way, so --local shows exactly what a peer would return.  Output: the cost,
 * the move counts and the cells (human), or one JSON object (--json); --draw
 * adds the map with the path on it.  Exit status: 0 a path was found, 1 no
 * path or a failure (connection, timeout, task error), 2 a usage error or an
 * input the executor refused (bad map, coordinates outside the map or on a
 * blocked cell). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cliopt.h"
#include "p2c2r/client.h"
#include "tasks/pathfind.h"

#define PROG "p2c2r path"
#include "cli/cli_util.h"

int cmd_path(int argc, char **argv);

/* Parses "X,Y" (whole numbers).  Returns 0 or -1. */
static int parse_xy(const char *s, uint32_t *x, uint32_t *y)
{
    char *end;
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long a = strtoul(s, &end, 10);
    if (errno || *end != ',' || end[1] < '0' || end[1] > '9' || a > UINT32_MAX)
        return -1;
    unsigned long b = strtoul(end + 1, &end, 10);
    if (errno || *end || b > UINT32_MAX)
        return -1;
    *x = (uint32_t)a;
    *y = (uint32_t)b;
    return 0;
}

/* Where and how the task ran, for the report. */
struct path_run {
    int local;
    uint32_t exec_us, peer;
    uint64_t round_trip_us;
};

/* What to run: params, the map (sent as a blob when blob is set, else at
 * the start of the input) and the query section. */
struct path_task {
    char params[128];
    const char *map;
    size_t map_len;
    const char *queries;
    size_t queries_len;
    int blob;
};

/* Runs the task in this process.  Returns 0 with the output in *out (free
 * it), or a p2c2r error with the reason in err. */
static int run_local(const struct path_task *t, const char *input, size_t input_len, char **out,
                     size_t *out_len, char *err, size_t err_cap)
{
    struct pf_options o;
    pf_options_init(&o);
    int rc = pf_options_parse(t->params, strlen(t->params), &o, err, err_cap);
    if (rc != 0)
        return rc;
    /* With --blob the map travels apart from the input, as a peer gets it. */
    o.map_ref = NULL;
    if (t->blob)
        return pf_task_run(t->map, t->map_len, t->queries, t->queries_len, &o, out, out_len, err,
                           err_cap);
    return pf_task_run(NULL, 0, input, input_len, &o, out, out_len, err, err_cap);
}

/* Runs the task on the fabric; as run_local, plus connection errors. */
static int run_remote(const char *coord, const char *token, int timeout_ms, struct path_task *pt,
                      const char *input, size_t input_len, char **out, size_t *out_len,
                      struct path_run *info, char *err, size_t err_cap)
{
    struct p2c2r_client_options co = {.size = sizeof co, .token = token, .name = "p2c2r-cli",
                                      .connect_timeout_ms = 5000};
    p2c2r_client *c;
    cli_tls_apply(&co);
    int rc = p2c2r_client_connect(coord, &co, &c);
    if (rc != 0) {
        snprintf(err, err_cap, "cannot connect to coordinator %s: %s%s", coord, p2c2r_strerror(rc),
                 rc == P2C2R_EIO || rc == P2C2R_ETIMEDOUT
                     ? " (is p2c2rd running there? start one with 'make run', pass "
                       "--coordinator HOST:PORT, or use --local)"
                     : rc == P2C2R_EAUTH ? " (pass a valid token with --token or P2C2R_TOKEN)" : "");
        return rc;
    }
    uint8_t hash[1][32];
    uint64_t t0 = cli_now_us();
    struct p2c2r_task t = {.size = sizeof t,
                           .type = "pathfind", .min_version = 1, .priority = P2C2R_PRIO_INTERACTIVE,
                           .input = input, .input_len = input_len};
    if (pt->blob) {
        /* Upload the map once; the task names it by hash and carries only
         * the query. */
        rc = p2c2r_client_put_blob(c, pt->map, pt->map_len, timeout_ms, hash[0]);
        if (rc != 0) {
            snprintf(err, err_cap, "uploading the map as a blob failed: %s", p2c2r_strerror(rc));
            p2c2r_client_close(c);
            return rc == P2C2R_EINVAL ? P2C2R_ETASK : rc;
        }
        char hex[65];
        p2c2r_blob_hex(hash[0], hex);
        size_t pl = strlen(pt->params);
        snprintf(pt->params + pl, sizeof(pt->params) - pl, "map=%s\n", hex);
        t.blobs = (const uint8_t(*)[32])hash;
        t.nblobs = 1;
        t.input = pt->queries;
        t.input_len = pt->queries_len;
    }
    t.params = pt->params;
    t.params_len = strlen(pt->params);
    p2c2r_ticket tk;
    rc = p2c2r_client_submit(c, &t, &tk);
    if (rc != 0) {
        snprintf(err, err_cap, "submit failed: %s", p2c2r_strerror(rc));
        p2c2r_client_close(c);
        return rc == P2C2R_EINVAL ? P2C2R_ETASK : rc; /* not the map's fault */
    }
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk, timeout_ms, &r);
    info->round_trip_us = cli_now_us() - t0;
    if (rc != 0) {
        snprintf(err, err_cap, "no result within %d ms (%s)", timeout_ms, p2c2r_strerror(rc));
        p2c2r_client_close(c);
        return rc == P2C2R_EINVAL ? P2C2R_ETASK : rc;
    }
    rc = r.status;
    if (rc != 0) {
        snprintf(err, err_cap, "%s: %.*s", p2c2r_strerror(rc), (int)(r.output_len < 400 ? r.output_len : 400),
                 r.output ? (const char *)r.output : "");
    } else if ((*out = malloc(r.output_len + 1)) == NULL) {
        snprintf(err, err_cap, "out of memory for a %zu-byte result", r.output_len);
        rc = P2C2R_ENOMEM;
    } else {
        /* A copy: the result's buffer is released the library's way. */
        if (r.output_len)
            memcpy(*out, r.output, r.output_len);
        *out_len = r.output_len;
        info->exec_us = r.exec_us;
        info->peer = r.peer_id;
    }
    p2c2r_result_release(&r);
    p2c2r_client_close(c);
    return rc;
}

/* The one result line, parsed: "none" or "COST x,y x,y ...". */
struct path_line {
    int found;
    const char *cost; /* the cost text, as the executor wrote it */
    size_t cost_len;
    struct pf_point *cells;
    size_t n;
    uint32_t straight, diagonal;
};

static int parse_line(const char *s, size_t len, struct path_line *pl)
{
    const char *end = s + len;
    if (len && end[-1] == '\n')
        end--;
    memset(pl, 0, sizeof(*pl));
    if (end - s == 4 && memcmp(s, "none", 4) == 0)
        return 0;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    pl->found = 1;
    pl->cost = s;
    pl->cost_len = (size_t)((sp ? sp : end) - s);
    if (pl->cost_len == 0 || pl->cost_len > 20 || memchr(s, '\n', (size_t)(end - s)))
        return -1;
    for (size_t i = 0; i < pl->cost_len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || s[i] == '.'))
            return -1;
    size_t cap = 0;
    for (const char *p = sp; p && p < end; p++)
        cap += *p == ' ';
    pl->cells = malloc((cap ? cap : 1) * sizeof(*pl->cells));
    if (!pl->cells)
        return -1;
    for (const char *p = sp; p && p < end;) {
        char *e;
        unsigned long x = strtoul(p + 1, &e, 10);
        if (*e != ',')
            return -1;
        unsigned long y = strtoul(e + 1, &e, 10);
        if (e > end || (e < end && *e != ' ') || x > UINT32_MAX || y > UINT32_MAX)
            return -1;
        pl->cells[pl->n++] = (struct pf_point){(uint32_t)x, (uint32_t)y};
        p = e;
    }
    for (size_t i = 1; i < pl->n; i++) {
        if (pl->cells[i].x != pl->cells[i - 1].x && pl->cells[i].y != pl->cells[i - 1].y)
            pl->diagonal++;
        else
            pl->straight++;
    }
    return 0;
}

/* Prints the map with the path on it: '#' blocked, '.' open, '*' path,
 * 's' start, 'g' goal. */
static void draw(const char *map_text, size_t map_len, const struct path_line *pl, uint32_t sx,
                 uint32_t sy, uint32_t gx, uint32_t gy)
{
    struct pf_map m;
    if (pf_map_parse(&m, map_text, map_len, NULL, NULL, 0) != 0)
        return;
    char *canvas = malloc((size_t)(m.width + 1) * m.height);
    if (canvas) {
        for (uint32_t y = 0; y < m.height; y++) {
            for (uint32_t x = 0; x < m.width; x++)
                canvas[(size_t)y * (m.width + 1) + x] = pf_map_passable(&m, x, y) ? '.' : '#';
            canvas[(size_t)y * (m.width + 1) + m.width] = '\n';
        }
        for (size_t i = 0; i < pl->n; i++)
            if (pl->cells[i].x < m.width && pl->cells[i].y < m.height)
                canvas[(size_t)pl->cells[i].y * (m.width + 1) + pl->cells[i].x] = '*';
        canvas[(size_t)sy * (m.width + 1) + sx] = 's';
        canvas[(size_t)gy * (m.width + 1) + gx] = 'g';
        fwrite(canvas, 1, (size_t)(m.width + 1) * m.height, stdout);
        free(canvas);
    }
    pf_map_fini(&m);
}

static void print_json(const struct path_line *pl, const char *algo, uint32_t sx, uint32_t sy,
                       uint32_t gx, uint32_t gy, const struct path_run *info)
{
    printf("{\"from\":[%u,%u],\"to\":[%u,%u],\"algo\":\"%s\",\"mode\":\"%s\",\"found\":%s", sx, sy,
           gx, gy, algo, info->local ? "local" : "coordinator", pl->found ? "true" : "false");
    if (pl->found) {
        printf(",\"cost\":%.*s,\"moves\":%zu,\"straight\":%u,\"diagonal\":%u,\"path\":[",
               (int)pl->cost_len, pl->cost, pl->n ? pl->n - 1 : 0, pl->straight, pl->diagonal);
        for (size_t i = 0; i < pl->n; i++)
            printf("%s[%u,%u]", i ? "," : "", pl->cells[i].x, pl->cells[i].y);
        putchar(']');
    }
    if (!info->local)
        printf(",\"exec_us\":%u,\"round_trip_us\":%" PRIu64 ",\"peer\":%u", info->exec_us,
               info->round_trip_us, info->peer);
    printf("}\n");
}

static void print_human(const struct path_line *pl, const char *algo, uint32_t sx, uint32_t sy,
                        uint32_t gx, uint32_t gy, const struct path_run *info)
{
    if (!pl->found) {
        printf("no path from %u,%u to %u,%u (%s)\n", sx, sy, gx, gy, algo);
        return;
    }
    printf("path from %u,%u to %u,%u: cost %.*s, %zu moves (%u straight, %u diagonal)\n", sx, sy, gx,
           gy, (int)pl->cost_len, pl->cost, pl->n ? pl->n - 1 : 0, pl->straight, pl->diagonal);
    for (size_t i = 0; i < pl->n; i++)
        printf("%s%u,%u", i ? " " : "", pl->cells[i].x, pl->cells[i].y);
    putchar('\n');
    if (info->local)
        printf("%s, in this process (--local)\n", algo);
    else
        printf("%s, on peer %u: %.3f ms on the peer, %.3f ms round trip\n", algo, info->peer,
               info->exec_us / 1000.0, info->round_trip_us / 1000.0);
}

int cmd_path(int argc, char **argv)
{
    const char *coord = getenv("P2C2R_COORDINATOR"), *token = getenv("P2C2R_TOKEN");
    const char *from = NULL, *to = NULL, *algo = "jps";
    int64_t timeout = 30000;
    int json = 0, local = 0, want_draw = 0, blob = 0;
    if (!coord || !*coord)
        coord = "127.0.0.1:8765";
    const struct cliopt opts[] = {
        {"from", 'f', OPT_STR, "X,Y", 0, 0, "start cell: column X, row Y, from 0 at the top left (required)", &from},
        {"to", 't', OPT_STR, "X,Y", 0, 0, "goal cell (required)", &to},
        {"algo", 'a', OPT_STR, "ALGO", 0, 0, "jps (default) or astar", &algo},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print one JSON object", &json},
        {"draw", 'd', OPT_FLAG, NULL, 0, 0, "also draw the map with the path ('*'), start 's' and goal 'g'", &want_draw},
        {"local", 'l', OPT_FLAG, NULL, 0, 0, "run in this process, without a coordinator", &local},
        {"blob", 0, OPT_FLAG, NULL, 0, 0, "upload the map as a blob and send only the query (as a game does)", &blob},
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up waiting after MS (default 30000)", &timeout},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG,
                          "MAP --from X,Y --to X,Y [OPTIONS]",
                          "Finds a shortest path on a MovingAI octile map (.map file, - for stdin):\n"
                          "8-connected, diagonal moves cost sqrt(2) and may not cut corners.\n"
                          "Exit status: 0 path found, 1 no path or failure, 2 usage error or bad map.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1) {
        fprintf(stderr, "%s: expected exactly one MAP file (e.g. 'p2c2r path examples/maps/arena.map "
                        "--from 19,26 --to 19,29')\n", PROG);
        return 2;
    }
    uint32_t sx, sy, gx, gy;
    if (!from || !to) {
        fprintf(stderr, "%s: both --from X,Y and --to X,Y are required\n", PROG);
        return 2;
    }
    if (parse_xy(from, &sx, &sy) != 0 || parse_xy(to, &gx, &gy) != 0) {
        fprintf(stderr, "%s: --from and --to take X,Y with whole numbers, e.g. 19,26; got '%s'\n",
                PROG, parse_xy(from, &sx, &sy) != 0 ? from : to);
        return 2;
    }
    if (strcmp(algo, "jps") != 0 && strcmp(algo, "astar") != 0) {
        fprintf(stderr, "%s: --algo takes jps or astar, got '%s'\n", PROG, algo);
        return 2;
    }

    const char *map_name = argv[pos];
    char *map_text = NULL;
    size_t map_len = 0;
    uint8_t *map_bytes = NULL;
    if (cli_read_file(map_name, PF_MAX_INPUT - 64, &map_bytes, &map_len) != 0) {
        fprintf(stderr, "%s: cannot read map %s: %s\n", PROG, map_name, strerror(errno));
        return errno == EFBIG ? 2 : 1;
    }
    map_text = (char *)map_bytes;
    /* The input: the map as it is (plus a line end if it lacks one), then
     * the one query. */
    size_t cap = map_len + 64;
    char *input = malloc(cap);
    if (!input) {
        fprintf(stderr, "%s: out of memory\n", PROG);
        free(map_text);
        return 1;
    }
    memcpy(input, map_text, map_len);
    size_t len = map_len;
    if (len && input[len - 1] != '\n')
        input[len++] = '\n';
    size_t qoff = len;
    len += (size_t)snprintf(input + len, cap - len, "queries 1\n%u %u %u %u\n", sx, sy, gx, gy);
    struct path_task pt = {.map = map_text, .map_len = map_len, .queries = input + qoff,
                           .queries_len = len - qoff, .blob = blob};
    snprintf(pt.params, sizeof(pt.params), "algo=%s\n", algo);

    char err[512] = "";
    char *out = NULL;
    size_t out_len = 0;
    struct path_run info = {local, 0, 0, 0};
    rc = local ? run_local(&pt, input, len, &out, &out_len, err, sizeof(err))
               : run_remote(coord, token, (int)timeout, &pt, input, len, &out, &out_len, &info,
                            err, sizeof(err));
    int status;
    struct path_line pl = {0};
    if (rc != 0) {
        if (local)
            fprintf(stderr, "%s: %s: %s\n", PROG, map_name, err[0] ? err : p2c2r_strerror(rc));
        else
            fprintf(stderr, "%s: %s%s%s\n", PROG, rc == P2C2R_EINVAL ? map_name : "",
                    rc == P2C2R_EINVAL ? ": " : "", err);
        status = rc == P2C2R_EINVAL ? 2 : 1;
    } else if (parse_line(out ? out : "", out_len, &pl) != 0) {
        fprintf(stderr, "%s: the result is not a pathfind output line: '%.*s'\n", PROG,
                (int)(out_len < 80 ? out_len : 80), out ? out : "");
        status = 1;
    } else {
        if (json)
            print_json(&pl, algo, sx, sy, gx, gy, &info);
        else
            print_human(&pl, algo, sx, sy, gx, gy, &info);
        if (want_draw && !json)
            draw(map_text, map_len, &pl, sx, sy, gx, gy);
        status = pl.found ? 0 : 1;
    }
    free(pl.cells);
    free(out);
    free(input);
    free(map_text);
    return status;
}
