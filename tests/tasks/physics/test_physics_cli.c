/* test_physics_cli.c - `p2c2r physics` (src/cli/cmd_physics.c, through
 * phys_cli_driver): --help exits 0, usage errors and refused scenes or
 * params exit 2 with a reason, an unreadable file exits 1; --local prints a
 * summary, and with --json exactly the executor's output.  Then the same
 * scene through a real p2c2rd with one local peer (port 0, ready file) must
 * give the very bytes --local gave, and an unreachable coordinator exits 1.
 *
 * argv: phys_cli_driver p2c2rd EXAMPLES_DIR.  Every child is bounded in
 * time. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "phys_testlib.h"

static const char *driver, *coord_bin;
static char dir[256], scene_path[512], bad_path[512], out_path[512], err_path[512];
static char *out_text, *err_text;
static size_t out_len;

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
        if (waitpid(pid, &status, WNOHANG) == pid)
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
    out_text = ph_read_file(out_path, &out_len);
    err_text = ph_read_file(err_path, &n);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `driver physics ARGS...` (NULL-terminated). */
static int cli(const char *first, ...)
{
    char *argv[24];
    int n = 0;
    argv[n++] = (char *)driver;
    argv[n++] = "physics";
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && n < 23; a = va_arg(ap, const char *))
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    return run_argv(argv, 120);
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

static void test_usage(void)
{
    EXPECT(cli("--help", NULL), 0, "--help");
    CHECK(out_has("Usage: p2c2r physics SCENE.json"));
    CHECK(out_has("--local"));
    EXPECT(cli(NULL), 2, "no scene");
    CHECK(err_has("expected exactly one SCENE.json"));
    EXPECT(cli(scene_path, scene_path, "--local", NULL), 2, "two scenes");
    EXPECT(cli(scene_path, "--steps", "-1", "--local", NULL), 2, "negative steps");
    EXPECT(cli(scene_path, "--steps", "100001", "--local", NULL), 2, "too many steps");
    EXPECT(cli(scene_path, "--steps", "ten", "--local", NULL), 2, "steps not a number");
    EXPECT(cli(scene_path, "--dt", "nan", "--local", NULL), 2, "dt nan");
    CHECK(err_has("param dt must be a number"));
    EXPECT(cli(scene_path, "--dt", "0", "--local", NULL), 2, "dt 0");
    EXPECT(cli(scene_path, "--bogus", NULL), 2, "unknown option");
    char missing[600];
    snprintf(missing, sizeof(missing), "%s/no-such-scene.json", dir);
    EXPECT(cli(missing, "--local", NULL), 1, "missing file");
    CHECK(err_has("cannot read scene"));
}

static char *local_json;
static size_t local_json_len;

static void test_local(void)
{
    EXPECT(cli(scene_path, "--local", NULL), 0, "local summary");
    CHECK(out_has("240 steps of 0.0166667 s (4 s simulated), 5 bodies"));
    CHECK(out_has("ran locally in"));
    CHECK(out_has("contacts (a-b: points"));
    CHECK(out_has("  1-0: 4,"));
    EXPECT(cli(scene_path, "--local", "--rows", "2", NULL), 0, "local rows");
    CHECK(out_has("(3 more; --rows N or --json for all)"));
    /* --json prints exactly what the executor returns. */
    EXPECT(cli(scene_path, "--local", "--json", NULL), 0, "local json");
    size_t n;
    char *scene = ph_read_file(scene_path, &n), *exp = NULL, err[256];
    size_t exp_len = 0;
    if (CHECK(scene != NULL) && CHECK(ph_exec(scene, n, NULL, SIZE_MAX, &exp, &exp_len, err) == 0)) {
        CHECK_MEM(out_text, out_len, exp, exp_len);
        local_json = exp;
        local_json_len = exp_len;
    }
    free(scene);
    EXPECT(cli(scene_path, "--local", "--json", "--steps", "10", "--dt", "0.01", NULL), 0, "params");
    CHECK(out_has("{\"steps\":10,\"dt\":0.01,\"bodies\":[{\"id\":1,"));
    /* A refused scene: exit 2 with the executor's reason. */
    EXPECT(cli(bad_path, "--local", NULL), 2, "bad scene");
    CHECK(err_has("bodies[0].shape: missing"));
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
        char *r = ph_read_file(ready, &n);
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
        char *l = ph_read_file(log, &n);
        fprintf(stderr, "p2c2rd did not start; its log:\n%s\n", l ? l : "(none)");
        free(l);
        return;
    }
    int rc = cli(scene_path, "--coordinator", addr, "--json", NULL);
    /* The daemons must carry the executor (p2c2r_tasks is linked into them
     * directly; the table in src/tasks/registry.c lists every executor). */
    int unsupported = rc == 1 && (err_has("Unsupported") || err_has("unsupported") || err_has("no connected peer"));
    CHECK(!unsupported);
    if (!unsupported) {
        EXPECT(rc, 0, "fabric json");
        /* The peer's bytes are the bytes --local computed. */
        if (local_json)
            CHECK_MEM(out_text, out_len, local_json, local_json_len);
        EXPECT(cli(scene_path, "-c", addr, NULL), 0, "fabric summary");
        CHECK(out_has("5 bodies") && out_has("peer "));
        /* The executor's refusal travels back: exit 2 with its reason. */
        EXPECT(cli(bad_path, "-c", addr, NULL), 2, "fabric bad scene");
        CHECK(err_has("bodies[0].shape: missing"));
    }
    stop_coordinator();
    /* Nobody listening: a failure (1) that says what to do. */
    EXPECT(cli(scene_path, "-c", addr, "--timeout", "2000", NULL), 1, "no coordinator");
    CHECK(err_has("cannot connect") && err_has("--local"));
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PHYS_CLI_DRIVER P2C2RD EXAMPLES_DIR\n", argv[0]);
        return 2;
    }
    driver = argv[1];
    coord_bin = argv[2];
    snprintf(scene_path, sizeof(scene_path), "%s/stack.json", argv[3]);
    snprintf(dir, sizeof(dir), "%s/phys-cli-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(out_path, sizeof(out_path), "%s/stdout", dir);
    snprintf(err_path, sizeof(err_path), "%s/stderr", dir);
    snprintf(bad_path, sizeof(bad_path), "%s/bad.json", dir);
    FILE *f = fopen(bad_path, "w");
    if (f) {
        fputs("{\"bodies\":[{\"id\":1}]}", f);
        fclose(f);
    }
    test_usage();
    test_local();
    test_coordinator();
    stop_coordinator();
    free(out_text);
    free(err_text);
    free(local_json);
    static const char *const files[] = {"stdout", "stderr", "bad.json", "ready", "p2c2rd.log"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char p[600];
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    rmdir(dir);
    return check_report("test_physics_cli");
}
