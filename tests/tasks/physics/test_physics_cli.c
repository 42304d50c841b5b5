/* test_physics_cli.c - `p2c2r physics` (src/cli/cmd_physics.c, through
 * phys_cli_driver): --help exits 0, usage errors and refused scenes or
 * params exit 2 with a reason, an unreadable file exits 1; --local prints a
 * summary, and with --json exactly the executor's output.  Then the same
 * scene through a real p2c2rd with one local peer (port 0, ready file) must
 * give the very bytes --local gave, and an unreachable coordinator exits 1.
 *
 * argv: p2c2rd p2c2r-peer phys_cli_driver EXAMPLES_DIR.  Runs on the
 * integration harness (tests/integration/harness.h): every child is bounded
 * in time, the daemon's log is printed when a check fails. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "phys_testlib.h"

static char scene_path[512], bad_path[512];

/* Runs `phys_cli_driver physics ARGS...` (NULL-terminated); returns the exit code. */
#define cli(...) h_cli("physics", __VA_ARGS__)

/* Whether the last run's stdout is exactly the n bytes at p. */
static int out_is(const char *p, size_t n)
{
    return h_last()->out_len == n && memcmp(h_last()->out, p, n) == 0;
}

static void test_usage(void)
{
    h_phase("p2c2r physics: usage errors and --help");
    H_EXPECT_EXIT(cli("--help", NULL), 0, "--help");
    H_CHECK_OUT("Usage: p2c2r physics SCENE.json");
    H_CHECK_OUT("--local");
    H_EXPECT_EXIT(cli(NULL), 2, "no scene");
    H_CHECK_ERR("expected exactly one SCENE.json");
    H_EXPECT_EXIT(cli(scene_path, scene_path, "--local", NULL), 2, "two scenes");
    H_EXPECT_EXIT(cli(scene_path, "--steps", "-1", "--local", NULL), 2, "negative steps");
    H_EXPECT_EXIT(cli(scene_path, "--steps", "100001", "--local", NULL), 2, "too many steps");
    H_EXPECT_EXIT(cli(scene_path, "--steps", "ten", "--local", NULL), 2, "steps not a number");
    H_EXPECT_EXIT(cli(scene_path, "--dt", "nan", "--local", NULL), 2, "dt nan");
    H_CHECK_ERR("param dt must be a number");
    H_EXPECT_EXIT(cli(scene_path, "--dt", "0", "--local", NULL), 2, "dt 0");
    H_EXPECT_EXIT(cli(scene_path, "--bogus", NULL), 2, "unknown option");
    char missing[600];
    h_path(missing, sizeof(missing), "no-such-scene.json");
    H_EXPECT_EXIT(cli(missing, "--local", NULL), 1, "missing file");
    H_CHECK_ERR("cannot read scene");
}

static char *local_json;
static size_t local_json_len;

static void test_local(void)
{
    h_phase("p2c2r physics: --local");
    H_EXPECT_EXIT(cli(scene_path, "--local", NULL), 0, "local summary");
    H_CHECK_OUT("240 steps of 0.0166667 s (4 s simulated), 5 bodies");
    H_CHECK_OUT("ran locally in");
    H_CHECK_OUT("contacts (a-b: points");
    H_CHECK_OUT("  1-0: 4,");
    H_EXPECT_EXIT(cli(scene_path, "--local", "--rows", "2", NULL), 0, "local rows");
    H_CHECK_OUT("(3 more; --rows N or --json for all)");
    /* --json prints exactly what the executor returns. */
    H_EXPECT_EXIT(cli(scene_path, "--local", "--json", NULL), 0, "local json");
    size_t n;
    char *scene = h_read_file(scene_path, &n), *exp = NULL, err[256];
    size_t exp_len = 0;
    if (H_CHECK(scene != NULL, "cannot read %s", scene_path) &&
        H_CHECK(ph_exec(scene, n, NULL, SIZE_MAX, &exp, &exp_len, err) == 0, "the executor refused %s: %s",
                scene_path, err)) {
        H_CHECK(out_is(exp, exp_len), "--local --json printed other bytes than the executor's output:\n%.2000s",
                h_last()->out);
        local_json = exp;
        local_json_len = exp_len;
    }
    free(scene);
    H_EXPECT_EXIT(cli(scene_path, "--local", "--json", "--steps", "10", "--dt", "0.01", NULL), 0, "params");
    json_t *j = h_out_json();
    H_CHECK(h_json_int(j, "steps") == 10 && h_json_real(j, "dt") == 0.01 && h_json_int(j, "bodies[0].id") == 1,
            "--steps 10 --dt 0.01 --json: steps 10, dt 0.01, bodies[0].id 1: %.2000s", h_last()->out);
    json_decref(j);
    /* A refused scene: exit 2 with the executor's reason. */
    H_EXPECT_EXIT(cli(bad_path, "--local", NULL), 2, "bad scene");
    H_CHECK_ERR("bodies[0].shape: missing");
}

static void test_coordinator(void)
{
    h_phase("p2c2r physics: through p2c2rd with one local peer");
    const char *cargs[] = {"--local-peers", "1", "--log-level", "warn", NULL};
    struct h_proc *coord = h_coord_start(NULL, cargs);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    int rc = cli(scene_path, "--coordinator", addr, "--json", NULL);
    /* The daemons must carry the executor (p2c2r_tasks is linked into them
     * directly; the table in src/tasks/registry.c lists every executor). */
    int unsupported = rc == 1 && (h_err_has("Unsupported") || h_err_has("unsupported") ||
                                  h_err_has("no connected peer"));
    H_CHECK(!unsupported, "p2c2rd's local peer does not run physics: %s", h_last()->err);
    if (!unsupported) {
        H_EXPECT_EXIT(rc, 0, "fabric json");
        /* The peer's bytes are the bytes --local computed. */
        if (local_json)
            H_CHECK(out_is(local_json, local_json_len), "the fabric's --json differs from --local's:\n%.2000s",
                    h_last()->out);
        H_EXPECT_EXIT(cli(scene_path, "-c", addr, NULL), 0, "fabric summary");
        H_CHECK_OUT("5 bodies");
        H_CHECK_OUT("peer ");
        /* The executor's refusal travels back: exit 2 with its reason. */
        H_EXPECT_EXIT(cli(bad_path, "-c", addr, NULL), 2, "fabric bad scene");
        H_CHECK_ERR("bodies[0].shape: missing");
    }
    h_stop(coord);
    /* Nobody listening: a failure (1) that says what to do. */
    H_EXPECT_EXIT(cli(scene_path, "-c", addr, "--timeout", "2000", NULL), 1, "no coordinator");
    H_CHECK_ERR("cannot connect");
    H_CHECK_ERR("--local");
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "physics_cli");
    H_REQUIRE(h_cli_bin() && h_arg(4), "usage: %s P2C2RD P2C2R-PEER PHYS_CLI_DRIVER EXAMPLES_DIR", argv[0]);
    snprintf(scene_path, sizeof(scene_path), "%s/stack.json", h_arg(4));
    h_path(bad_path, sizeof(bad_path), "bad.json");
    static const char bad[] = "{\"bodies\":[{\"id\":1}]}";
    H_REQUIRE(h_write_file(bad_path, bad, strlen(bad)) == 0, "cannot write %s", bad_path);
    test_usage();
    test_local();
    test_coordinator();
    free(local_json);
    return h_finish();
}
