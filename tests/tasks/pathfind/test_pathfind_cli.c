/* test_pathfind_cli.c - `p2c2r path` (src/cli/cmd_path.c, through
 * pf_cli_driver): usage errors exit 2, --help exits 0, --local finds the
 * MovingAI arena's published optimal cost in text and JSON, with A* and JPS,
 * inline and as a blob; bad maps and blocked or outside cells exit 2 with the
 * executor's reason; "no path" exits 1.  Then the same through a real p2c2rd
 * with one local peer (port 0, ready file), and an unreachable coordinator.
 *
 * argv: p2c2rd p2c2r-peer pf_cli_driver DATA_DIR.  Runs on the integration
 * harness (tests/integration/harness.h): every child is bounded in time, the
 * daemon's log is printed when a check fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char map_path[512];

/* Runs `pf_cli_driver path ARGS...` (NULL-terminated); returns the exit code. */
#define cli(...) h_cli("path", __VA_ARGS__)

static void write_file(const char *path, const char *s)
{
    H_REQUIRE(h_write_file(path, s, strlen(s)) == 0, "cannot write %s", path);
}

/* Checks the --json line of a found path from 3,45 to 39,11 of cost
 * 51.84062043: the document, its endpoints, algorithm, mode and cost, and a
 * path that runs from the start to the goal. */
static void check_json_path(const char *algo, const char *mode)
{
    json_t *j = h_out_json();
    const char *out = h_last()->out;
    size_t n = h_last()->out_len;
    H_CHECK(j != NULL && n > 0 && out[n - 1] == '\n', "--json: one JSON document on one line: %s", out);
    H_CHECK(h_json_int(j, "from[0]") == 3 && h_json_int(j, "from[1]") == 45 && h_json_int(j, "to[0]") == 39 &&
                h_json_int(j, "to[1]") == 11,
            "--json: from/to: %s", out);
    H_CHECK(h_json_str_is(j, "algo", algo) && h_json_str_is(j, "mode", mode) && h_json_bool(j, "found") == 1,
            "--json: algo %s, mode %s, found: %s", algo, mode, out);
    H_CHECK(fabs(h_json_real(j, "cost") - 51.84062043) < 1e-9, "--json: cost 51.84062043: %s", out);
    json_t *path = h_json_at(j, "path");
    size_t len = json_array_size(path);
    H_CHECK(len >= 2 && h_json_int(path, "[0][0]") == 3 && h_json_int(path, "[0][1]") == 45 &&
                json_integer_value(json_array_get(json_array_get(path, len - 1), 0)) == 39 &&
                json_integer_value(json_array_get(json_array_get(path, len - 1), 1)) == 11,
            "--json: the path should run from [3,45] to [39,11]: %s", out);
    json_decref(j);
}

static void test_usage(void)
{
    h_phase("p2c2r path: usage errors and --help");
    H_EXPECT_EXIT(cli("--help", NULL), 0, "--help");
    H_CHECK_OUT("Usage: p2c2r path MAP --from X,Y --to X,Y");
    H_EXPECT_EXIT(cli(NULL), 2, "no arguments");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", NULL), 2, "no --to");
    H_CHECK_ERR("--to");
    H_EXPECT_EXIT(cli(map_path, "--from", "3;45", "--to", "39,11", NULL), 2, "bad --from");
    H_CHECK_ERR("X,Y");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "-1,11", NULL), 2, "negative --to");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--algo", "bfs", NULL), 2, "bad --algo");
    H_CHECK_ERR("jps or astar");
    H_EXPECT_EXIT(cli(map_path, map_path, "--from", "3,45", "--to", "39,11", NULL), 2, "two maps");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--bogus", NULL), 2, "unknown option");
    H_EXPECT_EXIT(cli("/nonexistent/x.map", "--from", "3,45", "--to", "39,11", "--local", NULL), 1,
                  "missing map file");
    H_CHECK_ERR("cannot read map");
}

static void test_local(void)
{
    h_phase("p2c2r path: --local");
    /* Scenario "3 45 39 11 51.84062043" of arena.map.scen. */
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", NULL), 0, "local jps");
    H_CHECK_OUT("path from 3,45 to 39,11: cost 51.84062043");
    H_CHECK_OUT("\n3,45 ");
    H_CHECK_OUT(" 39,11\n");
    H_EXPECT_EXIT(cli(map_path, "-f", "3,45", "-t", "39,11", "--local", "--algo", "astar", NULL), 0,
                  "local astar");
    H_CHECK_OUT("cost 51.84062043");
    H_CHECK_OUT("astar, in this process");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--json", NULL), 0,
                  "local json");
    check_json_path("jps", "local");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--blob", "--json", NULL), 0,
                  "local blob");
    check_json_path("jps", "local");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "3,45", "--local", NULL), 0, "start is goal");
    H_CHECK_OUT("cost 0.00000000, 0 moves");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--draw", NULL), 0, "draw");
    H_CHECK_OUT("#########");
    H_CHECK_OUT("s");
    H_CHECK_OUT("g");
    H_CHECK_OUT("*");

    /* Refused inputs: exit 2 with the executor's reason. */
    H_EXPECT_EXIT(cli(map_path, "--from", "0,0", "--to", "39,11", "--local", NULL), 2, "blocked start");
    H_CHECK_ERR("start (0,0) is on a blocked cell");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "49,11", "--local", NULL), 2, "outside");
    H_CHECK_ERR("goal (49,11) is outside the 49x49 map");
    char bad[600];
    h_path(bad, sizeof(bad), "ragged.map");
    write_file(bad, "type octile\nheight 2\nwidth 3\nmap\n...\n..\n");
    H_EXPECT_EXIT(cli(bad, "--from", "0,0", "--to", "1,0", "--local", NULL), 2, "ragged map");
    H_CHECK_ERR("row 1 has 2 cells, expected 3");
    /* No path: exit 1 and says so; in JSON found is false. */
    h_path(bad, sizeof(bad), "split.map");
    write_file(bad, "type octile\nheight 2\nwidth 3\nmap\n.T.\n.T.");
    H_EXPECT_EXIT(cli(bad, "--from", "0,0", "--to", "2,1", "--local", NULL), 1, "no path");
    H_CHECK_OUT("no path from 0,0 to 2,1");
    H_EXPECT_EXIT(cli(bad, "--from", "0,0", "--to", "2,1", "--local", "--json", NULL), 1, "no path json");
    json_t *j = h_out_json();
    H_CHECK(h_json_bool(j, "found") == 0, "no path --json: found should be false: %s", h_last()->out);
    json_decref(j);
}

static void test_coordinator(void)
{
    h_phase("p2c2r path: through p2c2rd with one local peer");
    const char *cargs[] = {"--local-peers", "1", "--log-level", "warn", NULL};
    struct h_proc *coord = h_coord_start(NULL, cargs);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    int rc = cli(map_path, "--from", "3,45", "--to", "39,11", "--coordinator", addr, NULL);
    /* The daemons must carry the executor (p2c2r_tasks is linked into them
     * directly; the table in src/tasks/registry.c lists every executor). */
    int unsupported = rc == 1 && h_err_has("no connected peer runs task type 'pathfind'");
    H_CHECK(!unsupported, "p2c2rd's local peer does not run pathfind: %s", h_last()->err);
    if (unsupported) {
        h_stop(coord);
        return;
    }
    H_EXPECT_EXIT(rc, 0, "fabric jps");
    H_CHECK_OUT("path from 3,45 to 39,11: cost 51.84062043");
    H_CHECK_OUT("jps, on peer");
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "-c", addr, "--algo", "astar", "--blob",
                      "--json", NULL),
                  0, "fabric astar blob json");
    check_json_path("astar", "coordinator");
    json_t *j = h_out_json();
    H_CHECK(h_json_at(j, "peer") != NULL, "fabric --json should name the peer: %s", h_last()->out);
    json_decref(j);
    /* The executor's refusal travels back: exit 2 with its reason. */
    H_EXPECT_EXIT(cli(map_path, "--from", "0,0", "--to", "39,11", "-c", addr, NULL), 2, "fabric blocked");
    H_CHECK_ERR("start (0,0) is on a blocked cell");
    h_stop(coord);
    /* Nobody listening: a failure (1) that says what to do. */
    H_EXPECT_EXIT(cli(map_path, "--from", "3,45", "--to", "39,11", "-c", addr, "--timeout", "2000", NULL), 1,
                  "no coordinator");
    H_CHECK_ERR("cannot connect");
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "pathfind_cli");
    H_REQUIRE(h_cli_bin() && h_arg(4), "usage: %s P2C2RD P2C2R-PEER PF_CLI_DRIVER DATA_DIR", argv[0]);
    snprintf(map_path, sizeof(map_path), "%s/arena.map", h_arg(4));
    test_usage();
    test_local();
    test_coordinator();
    return h_finish();
}
