/* test_pathfind_cli.c - `p2c2r path` (src/cli/cmd_path.c, through
 * pf_cli_driver): usage errors exit 2, --help exits 0, --local finds the
 * MovingAI arena's published optimal cost in text and JSON, with A* and JPS,
 * inline and as a blob; bad maps and blocked or outside cells exit 2 with the
 * executor's reason; "no path" exits 1.  Then the same through a real p2c2rd
 * with one local peer (port 0, ready file), and an unreachable coordinator.
 *
 * argv: pf_cli_driver p2c2rd DATA_DIR.  Every child is bounded in time. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "pf_testlib.h"

static const char *driver, *coord_bin;
static char dir[256], map_path[512], out_path[512], err_path[512];
static char *out_text, *err_text;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs argv (NULL-terminated) with stdout and stderr to files; returns the
 * exit status, or -1 if it did not exit normally within timeout_s. */
static int run_argv(char *const *argv, int timeout_s)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (!freopen(out_path, "w", stdout) || !freopen(err_path, "w", stderr))
            _exit(127);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0;
    for (int waited = 0;; waited += 10) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (waited > timeout_s * 1000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_ms(10);
    }
    size_t n;
    free(out_text);
    free(err_text);
    out_text = pft_read_file(out_path, &n);
    err_text = pft_read_file(err_path, &n);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `driver path ARGS...` (up to 15 arguments, NULL-terminated). */
static int cli(const char *first, ...)
{
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)driver;
    argv[n++] = "path";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 19; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return run_argv(argv, 60);
}

static int out_has(const char *s)
{
    return out_text && strstr(out_text, s) != NULL;
}

static int err_has(const char *s)
{
    return err_text && strstr(err_text, s) != NULL;
}

#define EXPECT(rc, want, what)                                                                  \
    do {                                                                                        \
        int got_ = (rc);                                                                        \
        if (!CHECK(got_ == (want)))                                                             \
            fprintf(stderr, "  %s: exit %d, want %d\n  stdout: %s\n  stderr: %s\n", what, got_, \
                    want, out_text ? out_text : "", err_text ? err_text : "");                  \
    } while (0)

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    if (f) {
        fputs(s, f);
        fclose(f);
    }
}

static void test_usage(void)
{
    EXPECT(cli("--help", NULL), 0, "--help");
    CHECK(out_has("Usage: p2c2r path MAP --from X,Y --to X,Y"));
    EXPECT(cli(NULL), 2, "no arguments");
    EXPECT(cli(map_path, "--from", "3,45", NULL), 2, "no --to");
    CHECK(err_has("--to"));
    EXPECT(cli(map_path, "--from", "3;45", "--to", "39,11", NULL), 2, "bad --from");
    CHECK(err_has("X,Y"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "-1,11", NULL), 2, "negative --to");
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--algo", "bfs", NULL), 2, "bad --algo");
    CHECK(err_has("jps or astar"));
    EXPECT(cli(map_path, map_path, "--from", "3,45", "--to", "39,11", NULL), 2, "two maps");
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--bogus", NULL), 2, "unknown option");
    EXPECT(cli("/nonexistent/x.map", "--from", "3,45", "--to", "39,11", "--local", NULL), 1,
           "missing map file");
    CHECK(err_has("cannot read map"));
}

static void test_local(void)
{
    /* Scenario "3 45 39 11 51.84062043" of arena.map.scen. */
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", NULL), 0, "local jps");
    CHECK(out_has("path from 3,45 to 39,11: cost 51.84062043"));
    CHECK(out_has("\n3,45 "));
    CHECK(out_has(" 39,11\n"));
    EXPECT(cli(map_path, "-f", "3,45", "-t", "39,11", "--local", "--algo", "astar", NULL), 0,
           "local astar");
    CHECK(out_has("cost 51.84062043"));
    CHECK(out_has("astar, in this process"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--json", NULL), 0,
           "local json");
    CHECK(out_has("{\"from\":[3,45],\"to\":[39,11],\"algo\":\"jps\",\"mode\":\"local\",\"found\":true,"
                  "\"cost\":51.84062043,"));
    CHECK(out_has("\"path\":[[3,45],"));
    CHECK(out_has(",[39,11]]}\n"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--blob", "--json", NULL), 0,
           "local blob");
    CHECK(out_has("\"cost\":51.84062043"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "3,45", "--local", NULL), 0, "start is goal");
    CHECK(out_has("cost 0.00000000, 0 moves"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "--local", "--draw", NULL), 0, "draw");
    CHECK(out_has("#########"));
    CHECK(out_has("s") && out_has("g") && out_has("*"));

    /* Refused inputs: exit 2 with the executor's reason. */
    EXPECT(cli(map_path, "--from", "0,0", "--to", "39,11", "--local", NULL), 2, "blocked start");
    CHECK(err_has("start (0,0) is on a blocked cell"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "49,11", "--local", NULL), 2, "outside");
    CHECK(err_has("goal (49,11) is outside the 49x49 map"));
    char bad[600];
    snprintf(bad, sizeof(bad), "%s/ragged.map", dir);
    write_file(bad, "type octile\nheight 2\nwidth 3\nmap\n...\n..\n");
    EXPECT(cli(bad, "--from", "0,0", "--to", "1,0", "--local", NULL), 2, "ragged map");
    CHECK(err_has("row 1 has 2 cells, expected 3"));
    /* No path: exit 1 and says so; in JSON found is false. */
    snprintf(bad, sizeof(bad), "%s/split.map", dir);
    write_file(bad, "type octile\nheight 2\nwidth 3\nmap\n.T.\n.T.");
    EXPECT(cli(bad, "--from", "0,0", "--to", "2,1", "--local", NULL), 1, "no path");
    CHECK(out_has("no path from 0,0 to 2,1"));
    EXPECT(cli(bad, "--from", "0,0", "--to", "2,1", "--local", "--json", NULL), 1, "no path json");
    CHECK(out_has("\"found\":false"));
}

static pid_t coord_pid;

/* Starts p2c2rd on port 0 with one local peer; returns its address. */
static int start_coordinator(char *addr, size_t cap)
{
    char ready[600], log[600];
    snprintf(ready, sizeof(ready), "%s/ready", dir);
    snprintf(log, sizeof(log), "%s/p2c2rd.log", dir);
    coord_pid = fork();
    if (coord_pid == 0) {
        if (!freopen(log, "w", stdout) || !freopen(log, "a", stderr))
            _exit(127);
        execl(coord_bin, coord_bin, "--listen", "127.0.0.1:0", "--local-peers", "1", "--ready-file",
              ready, "--log-level", "warn", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) { /* 30 s, for sanitizer builds */
        size_t n;
        char *r = pft_read_file(ready, &n);
        if (r && n > 0 && memchr(r, '\n', n)) {
            *strchr(r, '\n') = '\0';
            snprintf(addr, cap, "%s", r);
            free(r);
            return 0;
        }
        free(r);
        if (waitpid(coord_pid, NULL, WNOHANG) == coord_pid) {
            coord_pid = 0;
            return -1;
        }
        sleep_ms(10);
    }
    return -1;
}

static void stop_coordinator(void)
{
    if (coord_pid <= 0)
        return;
    kill(coord_pid, SIGTERM);
    int status = 0;
    for (int i = 0; i < 1000; i++) {
        if (waitpid(coord_pid, &status, WNOHANG) == coord_pid) {
            coord_pid = 0;
            return;
        }
        sleep_ms(10);
    }
    kill(coord_pid, SIGKILL);
    waitpid(coord_pid, &status, 0);
    coord_pid = 0;
}

static void test_coordinator(void)
{
    char addr[256];
    if (!CHECK(start_coordinator(addr, sizeof(addr)) == 0)) {
        char log[600];
        size_t n;
        snprintf(log, sizeof(log), "%s/p2c2rd.log", dir);
        char *l = pft_read_file(log, &n);
        fprintf(stderr, "p2c2rd did not start; its log:\n%s\n", l ? l : "(none)");
        free(l);
        return;
    }
    int rc = cli(map_path, "--from", "3,45", "--to", "39,11", "--coordinator", addr, NULL);
    /* The daemons must carry the executor (p2c2r_tasks is linked into them
     * directly; the table in src/tasks/registry.c lists every executor). */
    int unsupported = rc == 1 && err_has("no connected peer runs task type 'pathfind'");
    CHECK(!unsupported);
    if (unsupported) {
        stop_coordinator();
        return;
    }
    EXPECT(rc, 0, "fabric jps");
    CHECK(out_has("path from 3,45 to 39,11: cost 51.84062043"));
    CHECK(out_has("jps, on peer"));
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "-c", addr, "--algo", "astar", "--blob",
               "--json", NULL),
           0, "fabric astar blob json");
    CHECK(out_has("\"mode\":\"coordinator\",\"found\":true,\"cost\":51.84062043,"));
    CHECK(out_has("\"peer\":"));
    /* The executor's refusal travels back: exit 2 with its reason. */
    EXPECT(cli(map_path, "--from", "0,0", "--to", "39,11", "-c", addr, NULL), 2, "fabric blocked");
    CHECK(err_has("start (0,0) is on a blocked cell"));
    stop_coordinator();
    /* Nobody listening: a failure (1) that says what to do. */
    EXPECT(cli(map_path, "--from", "3,45", "--to", "39,11", "-c", addr, "--timeout", "2000", NULL), 1,
           "no coordinator");
    CHECK(err_has("cannot connect"));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PF_CLI_DRIVER P2C2RD DATA_DIR\n", argv[0]);
        return 2;
    }
    driver = argv[1];
    coord_bin = argv[2];
    snprintf(map_path, sizeof(map_path), "%s/arena.map", argv[3]);
    snprintf(dir, sizeof(dir), "%s/pf-cli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
    test_usage();
    test_local();
    test_coordinator();
    stop_coordinator();
    free(out_text);
    free(err_text);
    /* Clean up the scratch directory (only files we made). */
    static const char *const files[] = {"stdout", "stderr", "ragged.map", "split.map", "ready",
                                        "p2c2rd.log"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return check_report("test_pathfind_cli");
}
