/* harness.c - see harness.h.
 *
 * One process-wide harness: the temporary directory, the processes started
 * (coordinators, peers), the current coordinator's address and the failure
 * count.  Only the main thread starts or stops processes; checks may fail
 * from any thread (the count is atomic and each report is one write).
 *
 * The watchdog runs in a signal handler, so it uses only async-signal-safe
 * calls (kill, open, read, write, unlink, rmdir, _exit) on data that the main
 * thread wrote before arming it or only appends to. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define MAX_PATHS 256
#define LOG_TAIL (256u * 1024)
#define RAW_MAX_FRAME ((size_t)64 << 20)

static struct {
    char dir[256];
    char test[64];
    int argc;
    char **argv;
    const char *coord_bin, *peer_bin, *cli_bin;
    struct h_cmd last; /* the last h_cli */
    struct h_proc procs[H_MAX_PROCS];
    int nprocs;
    struct h_proc *coord;
    char addr[64];
    char paths[MAX_PATHS][320];
    int npaths;
    atomic_int failures;
    char phase[256];
    uint64_t t0_ms;
    double scale;
    int sanitized;
    int ncoords;
    int finished;
    const char *tls_ca; /* h_set_tls_ca */
} H;

void h_set_tls_ca(const char *ca_file) { H.tls_ca = ca_file; }

/* Each process's command line, kept for h_respawn. */
static char **saved_argv[H_MAX_PROCS];

static void save_argv(int i, const char *const *argv)
{
    for (int k = 0; saved_argv[i] && saved_argv[i][k]; k++)
        free(saved_argv[i][k]);
    free(saved_argv[i]);
    int n = 0;
    while (argv[n])
        n++;
    char **v = calloc((size_t)n + 1, sizeof(*v));
    H_REQUIRE(v, "out of memory");
    for (int k = 0; k < n; k++) {
        v[k] = strdup(argv[k]);
        H_REQUIRE(v[k], "out of memory");
    }
    saved_argv[i] = v;
}

static void free_saved_argv(void)
{
    for (int i = 0; i < H_MAX_PROCS; i++) {
        for (int k = 0; saved_argv[i] && saved_argv[i][k]; k++)
            free(saved_argv[i][k]);
        free(saved_argv[i]);
        saved_argv[i] = NULL;
    }
}

/* ---- small utilities -------------------------------------------------------- */

uint64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void h_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void sig_write(const char *s)
{
    size_t n = strlen(s);
    while (n) {
        ssize_t w = write(STDERR_FILENO, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

void h_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char line[1200];
    snprintf(line, sizeof(line), "[%s +%.3fs] %s\n", H.test,
             (double)(h_now_ms() - H.t0_ms) / 1000.0, msg);
    sig_write(line);
}

void h_phase(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(H.phase, sizeof(H.phase), fmt, ap);
    va_end(ap);
    h_log("phase: %s", H.phase);
}

int h_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    atomic_fetch_add(&H.failures, 1);
    char out[2048];
    snprintf(out, sizeof(out), "[%s +%.3fs] FAIL %s:%d: %s\n    check: %s\n    phase: %s\n", H.test,
             (double)(h_now_ms() - H.t0_ms) / 1000.0, file, line, msg, expr, H.phase);
    sig_write(out);
    return 0;
}

int h_failures(void) { return atomic_load(&H.failures); }

int h_xfail_at(const char *file, int line, const char *expr, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    h_log("XFAIL known bug %s:%d: %s\n    check: %s", file, line, msg, expr);
    return 0;
}

int h_xpass_at(const char *file, int line, const char *expr)
{
    h_log("XPASS %s:%d: known bug fixed? make it an H_CHECK: %s", file, line, expr);
    return 1;
}

double h_scale(void) { return H.scale; }
int h_sanitized(void) { return H.sanitized; }
int h_bound_ms(int ms) { return H.sanitized ? ms * 4 : ms; }

const char *h_coord_bin(void) { return H.coord_bin; }
const char *h_peer_bin(void) { return H.peer_bin; }
const char *h_cli_bin(void) { return H.cli_bin; }
const char *h_dir(void) { return H.dir; }
const char *h_arg(int i) { return i >= 0 && i < H.argc ? H.argv[i] : NULL; }
struct h_proc *h_coord(void) { return H.coord; }
const char *h_addr(void) { return H.addr; }

void h_path(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", H.dir, name);
    for (int i = 0; i < H.npaths; i++) {
        if (strcmp(H.paths[i], dst) == 0)
            return;
    }
    if (H.npaths < MAX_PATHS)
        snprintf(H.paths[H.npaths++], sizeof(H.paths[0]), "%s", dst);
}

const char *h_status_str(int status)
{
    static char b[64];
    if (status == -1)
        snprintf(b, sizeof(b), "still running");
    else if (WIFEXITED(status))
        snprintf(b, sizeof(b), "exit %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(b, sizeof(b), "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(b, sizeof(b), "status 0x%x", status);
    return b;
}

const char *h_err(int code)
{
    static _Thread_local char b[8][48];
    static _Thread_local unsigned i;
    char *s = b[i++ % 8];
    snprintf(s, sizeof(b[0]), "%s(%d)", p2c2r_errname(code), code);
    return s;
}

p2c2r_client *h_renter(const char *name)
{
    struct p2c2r_client_options o = {sizeof o, NULL, name, h_bound_ms(5000), 0, 0};
    o.tls_ca_file = H.tls_ca;
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "%s: connect to %s: %s", name, h_addr(), h_err(rc));
    return c;
}

void h_stop_all(struct h_proc *const *ps, int n)
{
    for (int i = 0; i < n; i++)
        if (ps[i])
            h_signal(ps[i], SIGTERM);
    for (int i = 0; i < n; i++)
        if (ps[i])
            H_CHECK(h_wait_exit(ps[i], h_bound_ms(10000)), "%s did not stop after SIGTERM", ps[i]->name);
}

const char H_GLASS_SCENE[] =
    "{\"width\": 128, \"height\": 128, \"max_depth\": 8, \"background\": [0.5, 0.6, 0.7], "
    "\"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50}, "
    "\"spheres\": [{\"center\": [0, 0, 0], \"radius\": 1, \"material\": {\"type\": \"glass\", "
    "\"ior\": 1.5}}, {\"center\": [0, -101, 0], \"radius\": 100, \"material\": "
    "{\"type\": \"metal\", \"albedo\": [0.8, 0.8, 0.8], \"fuzz\": 0.3}}]}";

char *h_map_text(uint32_t w, uint32_t h)
{
    char *m = malloc(64 + (size_t)(w + 1) * h), *p = m;
    H_REQUIRE(m != NULL, "out of memory for a %ux%u map", w, h);
    p += sprintf(p, "type octile\nheight %u\nwidth %u\nmap\n", h, w);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            *p++ = (x * 7 + y * 13) % 11 == 0 && x && y && x + 1 < w && y + 1 < h ? '@' : '.';
        *p++ = '\n';
    }
    *p = '\0';
    return m;
}

char *h_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap + 1);
    for (;;) {
        if (!b)
            break;
        if (n == cap) {
            char *nb = realloc(b, cap * 2 + 1);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(b);
            b = NULL;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    if (!b)
        return NULL;
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}

int h_write_file(const char *path, const void *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return close(fd);
}

/* ---- logs -------------------------------------------------------------------- */

/* Async-signal-safe: prints the last LOG_TAIL bytes of one log. */
static void dump_log(const struct h_proc *p)
{
    /* snprintf is not async-signal-safe in theory: write the pieces. */
    sig_write("\n======== log of ");
    sig_write(p->name);
    sig_write(" (");
    sig_write(p->log);
    sig_write(") ========\n");
    int fd = open(p->log, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        sig_write("(cannot open)\n");
        return;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (uint64_t)st.st_size > LOG_TAIL) {
        lseek(fd, st.st_size - (off_t)LOG_TAIL, SEEK_SET);
        sig_write("(... earlier lines cut ...)\n");
    }
    char b[8192];
    ssize_t r;
    while ((r = read(fd, b, sizeof(b))) > 0) {
        ssize_t o = 0;
        while (o < r) {
            ssize_t w = write(STDERR_FILENO, b + o, (size_t)(r - o));
            if (w <= 0)
                break;
            o += w;
        }
    }
    close(fd);
    sig_write("======== end of log ========\n");
}

static void dump_logs(void)
{
    for (int i = 0; i < H.nprocs; i++)
        dump_log(&H.procs[i]);
}

/* Looks for sanitizer reports and fatal log events in p's log. */
static void scan_log(const struct h_proc *p)
{
    static const char *const bad[] = {
        "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
        "WARNING: ThreadSanitizer", "task_bad_transition", "Assertion",
    };
    char *s = h_read_file(p->log, NULL);
    if (!s)
        return;
    for (size_t k = 0; k < ARRAY_LEN(bad); k++) {
        const char *m = strstr(s, bad[k]);
        if (m) {
            const char *eol = strchr(m, '\n');
            int len = eol ? (int)(eol - m) : (int)strlen(m);
            h_fail_at(__FILE__, __LINE__, "no sanitizer report in logs", "%s log contains: %.*s", p->name,
                      len > 300 ? 300 : len, m);
        }
    }
    free(s);
}

static void scan_logs(void)
{
    for (int i = 0; i < H.nprocs; i++)
        scan_log(&H.procs[i]);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* ---- watchdog ----------------------------------------------------------------- */

static void on_fatal_signal(int sig)
{
    sig_write(sig == SIGALRM ? "\n*** WATCHDOG: the test ran past its time bound; killing daemons.\n"
                             : "\n*** interrupted; killing daemons.\n");
    sig_write("*** phase: ");
    sig_write(H.phase);
    sig_write("\n");
    for (int i = 0; i < H.nprocs; i++) {
        if (H.procs[i].pid > 0 && !H.procs[i].reaped)
            kill(H.procs[i].pid, SIGKILL);
    }
    dump_logs();
    if (!getenv("P2C2R_TEST_KEEP")) {
        for (int i = 0; i < H.npaths; i++)
            unlink(H.paths[i]);
        rmdir(H.dir);
    }
    _exit(1);
}

/* ---- set-up / tear-down ------------------------------------------------------- */

void h_init(int argc, char **argv, const char *test_name)
{
    snprintf(H.test, sizeof(H.test), "%s", test_name);
    H.t0_ms = h_now_ms();
    snprintf(H.phase, sizeof(H.phase), "start");
    if (argc < 3) {
        fprintf(stderr, "usage: %s P2C2RD P2C2R-PEER [P2C2R-CLI [MORE...]]\n", argv[0]);
        exit(2);
    }
    H.argc = argc;
    H.argv = argv;
    H.coord_bin = argv[1];
    H.peer_bin = argv[2];
    H.cli_bin = argc > 3 ? argv[3] : NULL;
    const char *s = getenv("P2C2R_TEST_SCALE");
    if (!s || !*s)
        s = getenv("P2C2R_TEST_SCALE_DEFAULT");
    H.scale = s && *s ? strtod(s, NULL) : 1.0;
    if (!(H.scale > 0))
        H.scale = 1.0;
    s = getenv("P2C2R_TEST_SANITIZED");
    H.sanitized = s && *s && strcmp(s, "0") != 0;

    const char *tmp = getenv("TMPDIR");
    snprintf(H.dir, sizeof(H.dir), "%s/p2c2r-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", test_name);
    if (!mkdtemp(H.dir)) {
        fprintf(stderr, "%s: mkdtemp %s: %s\n", test_name, H.dir, strerror(errno));
        exit(2);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* Fire before ctest's TIMEOUT so the logs get printed. */
    s = getenv("P2C2R_TEST_TIMEOUT");
    long limit = s && *s ? strtol(s, NULL, 10) : 900;
    long wd = limit > 30 ? limit - 10 : (limit > 5 ? limit - 2 : limit);
    alarm((unsigned)(wd > 0 ? wd : 1));
    h_log("dir=%s scale=%.2f sanitized=%d watchdog=%lds", H.dir, H.scale, H.sanitized, wd);
}

void h_stop(struct h_proc *p)
{
    if (!p || p->pid <= 0 || p->reaped)
        return;
    kill(p->pid, SIGCONT);
    kill(p->pid, SIGTERM);
    if (!h_wait_exit(p, h_bound_ms(10000))) {
        h_fail_at(__FILE__, __LINE__, "exit after SIGTERM", "%s (pid %d) still running %d ms after SIGTERM",
                  p->name, (int)p->pid, h_bound_ms(10000));
        kill(p->pid, SIGKILL);
        p->killed = 1;
        h_wait_exit(p, 5000);
    }
}

int h_finish(void)
{
    if (H.finished)
        return h_failures() ? 1 : 0;
    H.finished = 1;
    snprintf(H.phase, sizeof(H.phase), "finish: stopping processes");
    /* Peers first, so the coordinators see them go and exit with no peer
     * traffic in flight. */
    for (int i = 0; i < H.nprocs; i++) {
        if (strncmp(H.procs[i].name, "p2c2rd", 6) != 0)
            h_stop(&H.procs[i]);
    }
    for (int i = 0; i < H.nprocs; i++)
        h_stop(&H.procs[i]);
    for (int i = 0; i < H.nprocs; i++) {
        struct h_proc *p = &H.procs[i];
        if (p->killed || p->checked || !p->reaped)
            continue;
        if (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0)
            h_fail_at(__FILE__, __LINE__, "clean exit", "%s (pid %d) ended with %s", p->name,
                      (int)p->pid, h_status_str(p->status));
    }
    scan_logs();
    int failed = h_failures() != 0;
    if (failed || getenv("P2C2R_TEST_VERBOSE"))
        dump_logs();
    if (getenv("P2C2R_TEST_KEEP"))
        h_log("kept %s", H.dir);
    else
        nftw(H.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    alarm(0);
    free_saved_argv();
    h_cmd_free(&H.last);
    h_log("%s after %.3fs", failed ? "FAILED" : "passed", (double)(h_now_ms() - H.t0_ms) / 1000.0);
    return failed ? 1 : 0;
}

_Noreturn void h_abort(void)
{
    h_log("aborting the test");
    h_finish();
    exit(1);
}

/* ---- processes ------------------------------------------------------------------ */

static pid_t fork_exec(const char *const *argv, const char *in, const char *out, const char *err,
                       int append)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Child: only async-signal-safe calls until exec. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int flags = O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC);
    int fi = open(in ? in : "/dev/null", O_RDONLY);
    int fo = open(out, flags, 0644);
    int fe = err == out ? fo : open(err, flags, 0644);
    if (fi < 0 || fo < 0 || fe < 0)
        _exit(127);
    dup2(fi, STDIN_FILENO);
    dup2(fo, STDOUT_FILENO);
    dup2(fe, STDERR_FILENO);
    if (fi > STDERR_FILENO)
        close(fi);
    if (fo > STDERR_FILENO)
        close(fo);
    if (fe > STDERR_FILENO && fe != fo)
        close(fe);
    /* Ignored signals stay ignored across exec: give the daemons the
     * default dispositions a shell would. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGALRM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execv(argv[0], (char *const *)argv);
    static const char msg[] = "harness: exec failed\n";
    if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        /* nothing more to do */
    }
    _exit(127);
}

void h_release(struct h_proc *p)
{
    if (!p)
        return;
    H_REQUIRE(p->reaped || p->pid <= 0, "h_release: %s (pid %d) has not exited", p->name, (int)p->pid);
    if (p->pid > 0 && !p->killed && !p->checked && (!WIFEXITED(p->status) || WEXITSTATUS(p->status) != 0))
        h_fail_at(__FILE__, __LINE__, "clean exit", "%s (pid %d) ended with %s", p->name, (int)p->pid,
                  h_status_str(p->status));
    scan_log(p);
    p->checked = 1;
    p->released = 1;
}

struct h_proc *h_spawn(const char *name, const char *const *argv)
{
    /* A released slot first (h_release), so that a long run can start
     * processes without end; its log was judged when it was released. */
    int slot = H.nprocs;
    for (int i = 0; i < H.nprocs && slot == H.nprocs; i++)
        if (H.procs[i].released)
            slot = i;
    H_REQUIRE(slot < H_MAX_PROCS, "too many processes");
    struct h_proc *p = &H.procs[slot];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    char file[64];
    snprintf(file, sizeof(file), "%s.log", name);
    h_path(p->log, sizeof(p->log), file);
    char cmd[1024] = "";
    for (int i = 0; argv[i]; i++) {
        strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
        strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
    }
    /* The command line heads the log, for whoever reads it after a failure. */
    FILE *f = fopen(p->log, "a");
    if (f) {
        fprintf(f, "# %s\n", cmd);
        fclose(f);
    }
    pid_t pid = fork_exec(argv, NULL, p->log, p->log, 1);
    H_REQUIRE(pid > 0, "fork: %s", strerror(errno));
    p->pid = pid;
    save_argv(slot, argv);
    if (slot == H.nprocs)
        H.nprocs++;
    h_log("started %s pid=%d: %s", name, (int)pid, cmd);
    return p;
}

int h_wait_exit(struct h_proc *p, int timeout_ms)
{
    if (p->pid <= 0)
        return 1;
    uint64_t end = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        if (p->reaped)
            return 1;
        int st;
        pid_t r = waitpid(p->pid, &st, WNOHANG);
        if (r == p->pid) {
            p->reaped = 1;
            p->status = st;
            h_log("%s pid=%d ended: %s", p->name, (int)p->pid, h_status_str(st));
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            p->reaped = 1;
            p->status = -1;
            return 1;
        }
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(5);
    }
}

int h_running(struct h_proc *p) { return p->pid > 0 && !h_wait_exit(p, 0); }

void h_signal(struct h_proc *p, int sig)
{
    if (p->pid <= 0 || p->reaped)
        return;
    if (sig == SIGKILL)
        p->killed = 1;
    kill(p->pid, sig);
}

struct h_proc *h_coord_start(const char *listen, const char *const *extra)
{
    char ready[320], rname[32], name[32];
    H.ncoords++;
    snprintf(rname, sizeof(rname), "ready-%d", H.ncoords);
    if (H.ncoords == 1)
        snprintf(name, sizeof(name), "p2c2rd");
    else
        snprintf(name, sizeof(name), "p2c2rd-%d", H.ncoords);
    h_path(ready, sizeof(ready), rname);
    char tmpready[320], tname[40];
    snprintf(tname, sizeof(tname), "%s.tmp", rname);
    h_path(tmpready, sizeof(tmpready), tname); /* the daemon writes it, then renames it */
    unlink(ready);
    const char *argv[64];
    int n = 0;
    argv[n++] = H.coord_bin;
    argv[n++] = "--listen";
    argv[n++] = listen ? listen : "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    struct h_proc *p = h_spawn(name, argv);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    char *s = NULL;
    while (h_now_ms() < end) {
        s = h_read_file(ready, NULL);
        if (s && strchr(s, '\n'))
            break;
        free(s);
        s = NULL;
        if (!h_running(p))
            break;
        h_sleep_ms(5);
    }
    H_REQUIRE(s, "%s wrote no ready file within %d ms (%s)", name, h_bound_ms(10000),
              h_running(p) ? "still running" : h_status_str(p->status));
    s[strcspn(s, "\r\n")] = '\0';
    H_REQUIRE(strncmp(s, "127.0.0.1:", 10) == 0 && strlen(s) < sizeof(H.addr),
              "ready file holds '%s', expected 127.0.0.1:PORT", s);
    snprintf(H.addr, sizeof(H.addr), "%s", s);
    free(s);
    H.coord = p;
    h_log("%s ready at %s", name, H.addr);
    return p;
}

struct h_proc *h_peer_start(const char *name, int slots, const char *types, const char *const *extra)
{
    char sl[16];
    snprintf(sl, sizeof(sl), "%d", slots);
    const char *argv[64];
    int n = 0;
    argv[n++] = H.peer_bin;
    argv[n++] = "--coordinator";
    argv[n++] = H.addr;
    argv[n++] = "--slots";
    argv[n++] = sl;
    argv[n++] = "--name";
    argv[n++] = name;
    if (types) {
        argv[n++] = "--types";
        argv[n++] = types;
    }
    /* Each peer its own identity, kept in the test's directory under its
     * name (so a peer restarted under its name keeps its key), unless the
     * test gives one. */
    int has_key = 0;
    for (int i = 0; extra && extra[i]; i++)
        has_key |= strcmp(extra[i], "--key") == 0;
    char key[400];
    if (!has_key) {
        char kn[64];
        snprintf(kn, sizeof(kn), "%s.key", name);
        h_path(key, sizeof(key), kn);
        argv[n++] = "--key";
        argv[n++] = key;
    }
    for (int i = 0; extra && extra[i] && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    return h_spawn(name, argv);
}

json_t *h_json_parse(const char *text)
{
    json_error_t e;
    json_t *v = text ? json_loads(text, 0, &e) : NULL;
    if (!v && text)
        h_log("not one JSON document (line %d column %d: %s): %.300s", e.line, e.column, e.text, text);
    return v;
}

/* One step of a path: a member name, [N], or [key=value]. */
static json_t *json_step(json_t *v, const char **pp)
{
    const char *p = *pp;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (!close || !json_is_array(v))
            return NULL;
        *pp = close + 1;
        const char *eq = memchr(p + 1, '=', (size_t)(close - p - 1));
        if (!eq) {
            char *end;
            unsigned long long i = strtoull(p + 1, &end, 10);
            return end == close ? json_array_get(v, (size_t)i) : NULL;
        }
        char key[64], val[128];
        snprintf(key, sizeof(key), "%.*s", (int)(eq - p - 1), p + 1);
        snprintf(val, sizeof(val), "%.*s", (int)(close - eq - 1), eq + 1);
        size_t i;
        json_t *el;
        json_array_foreach(v, i, el) {
            json_t *m = json_object_get(el, key);
            if (json_is_string(m) && strcmp(json_string_value(m), val) == 0)
                return el;
            char num[32];
            if (json_is_integer(m)) {
                snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(m));
                if (strcmp(num, val) == 0)
                    return el;
            }
        }
        return NULL;
    }
    size_t n = strcspn(p, ".[");
    char key[128];
    if (n >= sizeof(key) || !json_is_object(v))
        return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    *pp = p + n;
    return json_object_get(v, key);
}

json_t *h_json_at(const json_t *root, const char *path)
{
    json_t *v = (json_t *)root;
    const char *p = path;
    while (v && *p) {
        if (*p == '.')
            p++;
        v = json_step(v, &p);
    }
    return v;
}

long long h_json_int(const json_t *root, const char *path)
{
    json_t *v = h_json_at(root, path);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

double h_json_real(const json_t *root, const char *path)
{
    json_t *v = h_json_at(root, path);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

const char *h_json_str(const json_t *root, const char *path)
{
    return json_string_value(h_json_at(root, path));
}

int h_json_str_is(const json_t *root, const char *path, const char *want)
{
    const char *v = h_json_str(root, path);
    return v && strcmp(v, want) == 0;
}

int h_json_bool(const json_t *root, const char *path)
{
    json_t *v = h_json_at(root, path);
    return json_is_boolean(v) ? json_is_true(v) : -1;
}

const char *h_json_text(const json_t *v)
{
    static _Thread_local char b[4096];
    if (!v)
        return "(none)";
    size_t n = json_dumpb(v, b, sizeof(b) - 1, JSON_COMPACT | JSON_ENCODE_ANY);
    if (n >= sizeof(b) - 1)
        snprintf(b + sizeof(b) - 8, 8, "...");
    else
        b[n] = '\0';
    return b;
}

json_t *h_stats(const char *token)
{
    struct p2c2r_client_options o = {sizeof o, token, "it-stats", h_bound_ms(5000), 0};
    o.tls_ca_file = H.tls_ca;
    p2c2r_client *c;
    if (p2c2r_client_connect(H.addr, &o, &c) != 0)
        return NULL;
    char *lib = NULL, *js = NULL;
    if (p2c2r_client_stats(c, h_bound_ms(5000), &lib) == 0)
        js = strdup(lib); /* the caller frees with free() */
    p2c2r_stats_free(lib);
    p2c2r_client_close(c);
    json_t *v = h_json_parse(js);
    free(js);
    return v;
}

long long h_stat(const char *path)
{
    json_t *js = h_stats(NULL);
    long long v = h_json_int(js, path);
    json_decref(js);
    return v;
}

p2c2r_ticket h_submit(p2c2r_client *c, const struct p2c2r_task *t)
{
    p2c2r_ticket tk = {0};
    int rc = p2c2r_client_submit(c, t, &tk);
    H_REQUIRE(rc == 0, "submit %s (%zu bytes) returned %s", t->type, t->input_len, h_err(rc));
    return tk;
}

struct p2c2r_result h_wait(p2c2r_client *c, p2c2r_ticket t, int timeout_ms)
{
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int rc = p2c2r_client_wait(c, t, h_bound_ms(timeout_ms), &r);
    H_REQUIRE(rc == 0, "no result for ticket %llu within %d ms: %s", (unsigned long long)t.id,
              h_bound_ms(timeout_ms), h_err(rc));
    H_CHECK(r.ticket.id == t.id, "result ticket %llu, waited for %llu", (unsigned long long)r.ticket.id,
            (unsigned long long)t.id);
    return r;
}

long long h_wait_live(p2c2r_client *c, long long n, int timeout_ms)
{
    long long live = -1;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(timeout_ms);
    for (;;) {
        if (c) {
            int rc = p2c2r_client_process(c);
            H_REQUIRE(rc >= 0, "process: %s", h_err(rc));
        }
        live = h_stat("tasks_live");
        if (live >= n || h_now_ms() >= end)
            return live;
        h_sleep_ms(10);
    }
}

long long h_type_stat_sampled(const char *type, const char *key, long long min_samples)
{
    char np[96], vp[160];
    snprintf(np, sizeof(np), "types[name=%s].attempt_samples", type);
    snprintf(vp, sizeof(vp), "types[name=%s].%s", type, key);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    do {
        json_t *js = h_stats(NULL);
        long long n = h_json_int(js, np), v = h_json_int(js, vp);
        json_decref(js);
        if (n >= min_samples)
            return v;
        h_sleep_ms(20);
    } while (h_now_ms() < end);
    return -1;
}

void h_wait_peers(int n, const char *token)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(15000);
    long long got = -1;
    while (h_now_ms() < end) {
        json_t *js = h_stats(token);
        got = h_json_int(js, "peers_connected");
        json_decref(js);
        if (got == n)
            return;
        if (H.coord && !h_running(H.coord))
            break;
        h_sleep_ms(20);
    }
    H_REQUIRE(0, "expected %d peers registered within %d ms, last saw %lld", n, h_bound_ms(15000), got);
}

/* Runs argv to completion with stdin from in_path (NULL = /dev/null) and
 * stdout/stderr to the given files; kills it after timeout_ms.  Returns the
 * waitpid status, or -1 on timeout. */
static int run_to_files(const char *const *argv, const char *in_path, const char *out_path,
                        const char *err_path, int timeout_ms)
{
    pid_t pid = fork_exec(argv, in_path, out_path, err_path, 0);
    H_REQUIRE(pid > 0, "fork: %s", strerror(errno));
    uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (h_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        h_sleep_ms(5);
    }
}

struct h_cmd h_run_cmd(const char *in_path, const char *const *argv)
{
    static int runs;
    char out[320], err[320], name[32];
    snprintf(name, sizeof(name), "cmd-%d.out", ++runs);
    h_path(out, sizeof(out), name);
    snprintf(name, sizeof(name), "cmd-%d.err", runs);
    h_path(err, sizeof(err), name);
    char cmd[768] = "";
    for (int i = 0; argv[i]; i++) {
        strncat(cmd, argv[i], sizeof(cmd) - strlen(cmd) - 2);
        strncat(cmd, " ", sizeof(cmd) - strlen(cmd) - 1);
    }
    struct h_cmd r;
    memset(&r, 0, sizeof(r));
    r.status = run_to_files(argv, in_path, out, err, h_bound_ms(120000));
    r.code = r.status != -1 && WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
    r.out = h_read_file(out, &r.out_len);
    r.err = h_read_file(err, &r.err_len);
    if (!r.out)
        r.out = calloc(1, 1), r.out_len = 0;
    if (!r.err)
        r.err = calloc(1, 1), r.err_len = 0;
    H_REQUIRE(r.out && r.err, "out of memory");
    h_log("$ %s%s -> %s", cmd, in_path ? "< input" : "", r.status == -1 ? "timeout" : h_status_str(r.status));
    return r;
}

void h_cmd_free(struct h_cmd *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

int h_cli(const char *first, ...)
{
    H_REQUIRE(H.cli_bin, "h_cli: no CLI given on the command line");
    const char *argv[64];
    int n = 0;
    argv[n++] = H.cli_bin;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) {
        H_REQUIRE(n < 63, "h_cli: too many arguments");
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    h_cmd_free(&H.last);
    H.last = h_run_cmd(NULL, argv);
    return H.last.code;
}

const struct h_cmd *h_last(void)
{
    static const struct h_cmd none = {-1, -1, "", "", 0, 0};
    return H.last.out ? &H.last : &none;
}

int h_out_has(const char *s) { return strstr(h_last()->out, s) != NULL; }
int h_err_has(const char *s) { return strstr(h_last()->err, s) != NULL; }
json_t *h_out_json(void) { return h_json_parse(h_last()->out); }

/* ---- data ------------------------------------------------------------------------ */

uint64_t h_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void h_fill(uint8_t *p, size_t n, uint64_t seed)
{
    uint64_t st = seed * 0x2545f4914f6cdd1dull + 1;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v = h_rand(&st);
        memcpy(p + i, &v, 8);
    }
    if (i < n) {
        uint64_t v = h_rand(&st);
        memcpy(p + i, &v, n - i);
    }
}

size_t h_log_uniform(uint64_t *state, size_t max)
{
    /* exp(U * ln(max + 2)) - 1 is in [0, max] with a uniform logarithm. */
    double u = (double)(h_rand(state) >> 11) / 9007199254740992.0;
    double v = exp(u * log((double)max + 2.0)) - 1.0;
    size_t s = (size_t)v;
    return s > max ? max : s;
}

void h_sha256(const void *p, size_t n, uint8_t out[32])
{
    unsigned int len = 0;
    EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

/* ---- raw connections ------------------------------------------------------------ */

int h_raw_connect(struct h_raw *r, const char *addr)
{
    memset(r, 0, sizeof(*r));
    r->fd = -1;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_parse(addr, &ss, &sl) != 0)
        return -1;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd pfd = {fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t el = sizeof(soerr);
        if (poll(&pfd, 1, h_bound_ms(5000)) != 1 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) != 0 || soerr) {
            close(fd);
            return -1;
        }
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    r->fd = fd;
    return 0;
}

void h_raw_close(struct h_raw *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->buf);
    r->buf = NULL;
    r->off = r->len = r->cap = 0;
}

int h_raw_send(struct h_raw *r, const void *p, size_t n, int timeout_ms)
{
    const uint8_t *b = p;
    uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
    while (n) {
        ssize_t w = send(r->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            uint64_t now = h_now_ms();
            if (now >= end)
                return -1;
            struct pollfd pfd = {r->fd, POLLOUT, 0};
            poll(&pfd, 1, (int)(end - now));
            continue;
        }
        return -1;
    }
    return 0;
}

int h_raw_send_frame(struct h_raw *r, uint8_t type, uint16_t flags, uint64_t req_id, const void *body,
                     size_t len, int timeout_ms)
{
    uint8_t hdr[PROTO_HDR_LEN];
    proto_put_hdr(hdr, type, flags, req_id, (uint32_t)len);
    if (h_raw_send(r, hdr, sizeof(hdr), timeout_ms) != 0)
        return -1;
    return len ? h_raw_send(r, body, len, timeout_ms) : 0;
}

int h_raw_read(struct h_raw *r, struct h_frame *f, int timeout_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    /* The previous frame's body may be referenced until now: compact only
     * here, before reading more. */
    if (r->off) {
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
    }
    for (;;) {
        size_t have = r->len - r->off;
        if (have > 0) {
            int64_t n = proto_decode_hdr(r->buf + r->off, have, (uint32_t)RAW_MAX_FRAME, &f->hdr);
            if (n < 0)
                return H_RAW_MALFORMED;
            if (n > 0) {
                f->body = r->buf + r->off + PROTO_HDR_LEN;
                r->off += (size_t)n;
                return H_RAW_FRAME;
            }
        }
        if (r->cap - r->len < 65536) {
            size_t nc = r->cap ? r->cap * 2 : 262144;
            if (nc > RAW_MAX_FRAME + 65536 + PROTO_HDR_LEN)
                return H_RAW_MALFORMED;
            uint8_t *nb = realloc(r->buf, nc);
            if (!nb)
                return H_RAW_MALFORMED;
            r->buf = nb;
            r->cap = nc;
        }
        ssize_t n = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return H_RAW_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return H_RAW_RESET;
        uint64_t now = h_now_ms();
        if (now >= end)
            return H_RAW_TIMEOUT;
        struct pollfd pfd = {r->fd, POLLIN, 0};
        poll(&pfd, 1, (int)(end - now));
    }
}

int h_raw_hello(struct h_raw *r, uint8_t role, const char *token, struct msg_hello_ok *ok)
{
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, role, {NULL, 0}, {(const uint8_t *)"it-raw", 6}};
    if (token) {
        m.token.p = (const uint8_t *)token;
        m.token.len = strlen(token);
    }
    uint8_t body[512];
    size_t n = proto_put_hello(body, &m);
    if (h_raw_send_frame(r, MSG_HELLO, 0, 0, body, n, h_bound_ms(5000)) != 0)
        return H_RAW_RESET;
    struct h_frame f;
    int rc = h_raw_read(r, &f, h_bound_ms(5000));
    if (rc != H_RAW_FRAME)
        return rc;
    if (f.hdr.type == MSG_ERROR) {
        struct msg_error e;
        if (proto_parse_error(f.body, f.hdr.body_len, &e) != 0)
            return H_RAW_MALFORMED;
        return -(int)e.code;
    }
    struct msg_hello_ok tmp;
    if (f.hdr.type != MSG_HELLO_OK || proto_parse_hello_ok(f.body, f.hdr.body_len, &tmp) != 0)
        return H_RAW_MALFORMED;
    r->have_nonce = tmp.has_nonce;
    memcpy(r->nonce, tmp.nonce, PROTO_NONCE_LEN);
    r->conn_id = tmp.conn_id;
    if (ok)
        *ok = tmp;
    return 0;
}

uint8_t *h_register_body(const void *caps, size_t caps_len, const uint8_t nonce[PROTO_NONCE_LEN],
                         uint64_t conn_id, const struct ident *signer, const uint8_t *claim_pk,
                         size_t *len)
{
    uint8_t *b = malloc(caps_len + PROTO_REGISTER_AUTH_LEN);
    H_REQUIRE(b, "out of memory");
    memcpy(b, caps, caps_len);
    memcpy(b + caps_len, claim_pk ? claim_pk : signer->pk, PROTO_PK_LEN);
    ident_sign_challenge(signer, nonce, conn_id, b, caps_len, b + caps_len + PROTO_PK_LEN);
    *len = caps_len + PROTO_REGISTER_AUTH_LEN;
    return b;
}

size_t h_caps_one_type(uint8_t *b, const char *type)
{
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 1;
    m.slots = 1;
    m.mem_bytes = 1u << 30;
    m.ntypes = 1;
    m.types[0].name.p = (const uint8_t *)type;
    m.types[0].name.len = strlen(type);
    m.types[0].version = 1;
    m.types[0].flags = PROTO_TYPE_F_DETERMINISTIC;
    return proto_put_register(b, &m);
}

int h_raw_send_register(struct h_raw *r, uint64_t req_id, const void *caps, size_t caps_len,
                        const struct ident *key)
{
    H_REQUIRE(r->have_nonce, "PEER_REGISTER on a connection whose HELLO_OK carried no nonce");
    struct ident fresh;
    if (!key) {
        ident_generate(&fresh);
        key = &fresh;
    }
    size_t n;
    uint8_t *b = h_register_body(caps, caps_len, r->nonce, r->conn_id, key, NULL, &n);
    int rc = h_raw_send_frame(r, MSG_PEER_REGISTER, 0, req_id, b, n, h_bound_ms(5000));
    free(b);
    if (key == &fresh)
        ident_fini(&fresh);
    return rc;
}

int h_raw_expect_error(struct h_raw *r, int timeout_ms, int *closed, char *text, size_t cap)
{
    uint64_t end = h_now_ms() + (uint64_t)timeout_ms;
    int code = 0;
    *closed = 0;
    if (text && cap)
        text[0] = '\0';
    for (;;) {
        uint64_t now = h_now_ms();
        int left = now >= end ? 0 : (int)(end - now);
        struct h_frame f;
        int rc = h_raw_read(r, &f, left);
        if (rc == H_RAW_FRAME) {
            if (f.hdr.type == MSG_ERROR && code == 0) {
                struct msg_error e;
                if (proto_parse_error(f.body, f.hdr.body_len, &e) == 0) {
                    code = -(int)e.code;
                    if (text && cap)
                        snprintf(text, cap, "%.*s", (int)e.text.len, (const char *)e.text.p);
                }
            }
            continue;
        }
        if (rc == H_RAW_MALFORMED) {
            /* Not frames (e.g. a stream cut mid-frame): drop and keep
             * reading until the close. */
            r->off = r->len;
            char junk[65536];
            for (;;) {
                ssize_t n = recv(r->fd, junk, sizeof(junk), 0);
                if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
                    *closed = 1;
                    return code;
                }
                now = h_now_ms();
                if (now >= end)
                    return code ? code : H_RAW_TIMEOUT;
                if (n < 0) {
                    struct pollfd pfd = {r->fd, POLLIN, 0};
                    poll(&pfd, 1, (int)(end - now));
                }
            }
        }
        if (rc == H_RAW_EOF || rc == H_RAW_RESET) {
            *closed = 1;
            return code;
        }
        return code ? code : H_RAW_TIMEOUT;
    }
}

uint8_t *h_task_body(const char *type, uint32_t min_version, uint32_t deadline_ms, const char *params,
                     const void *input, size_t input_len, size_t *len)
{
    size_t tl = strlen(type), pl = params ? strlen(params) : 0;
    size_t n = proto_task_size(tl, pl, 0, input_len);
    uint8_t *b = malloc(n ? n : 1);
    if (!b)
        return NULL;
    size_t o = proto_put_task_head(b, type, tl, min_version, deadline_ms, 1, params, pl, NULL, 0,
                                   (uint32_t)input_len);
    if (input_len)
        memcpy(b + o, input, input_len);
    *len = n;
    return b;
}

uint8_t *h_task_body_ext(const char *type, uint8_t priority, uint8_t flags,
                         const struct proto_reqs *reqs, uint32_t deadline_ms, const void *input,
                         size_t input_len, size_t *len)
{
    size_t tl = strlen(type);
    size_t n = proto_task_size_ext(tl, 0, 0, reqs != NULL, input_len);
    uint8_t *b = malloc(n);
    if (!b)
        return NULL;
    size_t o = proto_put_task_head_ext(b, type, tl, 0, deadline_ms, priority, flags, NULL, 0, NULL, 0,
                                       reqs, (uint32_t)input_len);
    if (input_len)
        memcpy(b + o, input, input_len);
    *len = n;
    return b;
}

int h_raw_outcome(struct h_raw *r, struct h_outcome *o, int timeout_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        uint64_t now = h_now_ms();
        struct h_frame f;
        int rc = h_raw_read(r, &f, now >= end ? 0 : (int)(end - now));
        if (rc != H_RAW_FRAME)
            return rc;
        memset(o, 0, sizeof(*o));
        o->type = f.hdr.type;
        o->ticket = f.hdr.req_id;
        switch (f.hdr.type) {
        case MSG_DELIVER: {
            struct msg_deliver d;
            if (proto_parse_deliver(f.body, f.hdr.body_len, &d) != 0)
                return H_RAW_MALFORMED;
            o->status = d.status ? -(int)d.status : 0;
            o->attempts = d.attempts;
            o->exec_us = d.exec_us;
            o->peer_id = d.peer_id;
            o->flags = d.flags;
            o->out = d.output.p;
            o->len = d.output.len;
            return H_RAW_FRAME;
        }
        case MSG_REJECTED:
        case MSG_ERROR: {
            struct msg_error e;
            if (proto_parse_error(f.body, f.hdr.body_len, &e) != 0)
                return H_RAW_MALFORMED;
            o->status = e.code ? -(int)e.code : P2C2R_EINVAL;
            o->out = e.text.p;
            o->len = e.text.len;
            /* An ERROR is the connection's end, not a task's outcome. */
            return f.hdr.type == MSG_REJECTED ? H_RAW_FRAME : H_RAW_MALFORMED;
        }
        case MSG_ACCEPTED:
        case MSG_PONG:
        case MSG_STATS:
            continue;
        default:
            return H_RAW_MALFORMED;
        }
    }
}

/* ---- the renter driver ------------------------------------------------------------ */

#define RENTER_MAX_WINDOW 256

/* Maps an outcome to its task: counts the unknown and the repeated, judges
 * the first.  seen has one counter per task. */
static void renter_outcome(struct h_renter *r, int *seen, long long i, const struct h_outcome *o)
{
    if (i < 0 || i >= r->tasks) {
        r->unknown++;
        H_FAIL("%s: %s for ticket %llu which is not in flight", r->name, proto_type_name(o->type),
               (unsigned long long)o->ticket);
        return;
    }
    if (seen[i]++) {
        r->dup++;
        H_FAIL("%s: a second %s for task %lld (ticket %llu)", r->name, proto_type_name(o->type), i,
               (unsigned long long)o->ticket);
        return;
    }
    r->judge(r->arg, (int)i, o);
    r->done++;
}

/* Whether no outcome for that long is a hang; records the failure. */
static int renter_stalled(const struct h_renter *r, uint64_t last)
{
    int limit = h_bound_ms(r->no_progress_ms ? r->no_progress_ms : 30000);
    return !H_CHECK(h_now_ms() - last < (uint64_t)limit, "%s: no outcome for %d ms (%d of %d done): a renter hangs",
                    r->name, limit, r->done, r->tasks);
}

static void renter_api(struct h_renter *r, int *seen)
{
    struct p2c2r_client_options o = {sizeof o, NULL, r->name, h_bound_ms(5000), 0};
    o.tls_ca_file = H.tls_ca;
    p2c2r_client *c = NULL;
    int window = r->window < RENTER_MAX_WINDOW ? r->window : RENTER_MAX_WINDOW;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    if (!H_CHECK(rc == 0, "%s: connect: %s", r->name, h_err(rc)))
        return;
    struct {
        int task;
        p2c2r_ticket tk;
    } slot[RENTER_MAX_WINDOW];
    for (int k = 0; k < window; k++)
        slot[k].task = -1;
    struct p2c2r_result res[RENTER_MAX_WINDOW] = {P2C2R_RESULT_INIT};
    int next = 0;
    uint64_t last = h_now_ms();
    while (r->done < r->tasks) {
        for (int k = 0; k < window && next < r->tasks; k++) {
            if (slot[k].task >= 0)
                continue;
            struct p2c2r_task t;
            p2c2r_task_init(&t);
            r->task(r->arg, next, &t);
            rc = p2c2r_client_submit(c, &t, &slot[k].tk);
            if (rc == P2C2R_EAGAIN) /* the coordinator's in-flight limit: collect first */
                break;
            if (!H_CHECK(rc == 0, "%s: submit task %d: %s", r->name, next, h_err(rc)))
                goto close_client;
            slot[k].task = next++;
        }
        int n = p2c2r_client_poll(c, res, window, 500);
        if (!H_CHECK(n >= 0, "%s: poll: %s (%s)", r->name, h_err(n), p2c2r_client_last_error(c)))
            goto close_client;
        if (n > 0)
            last = h_now_ms();
        else if (renter_stalled(r, last))
            goto close_client;
        for (int j = 0; j < n; j++) {
            const struct p2c2r_result *x = &res[j];
            long long i = -1;
            for (int k = 0; k < window; k++)
                if (slot[k].task >= 0 && slot[k].tk.id == x->ticket.id) {
                    i = slot[k].task;
                    slot[k].task = -1;
                }
            struct h_outcome oc = {.type = MSG_DELIVER,
                                   .ticket = x->ticket.id,
                                   .status = x->status,
                                   .attempts = x->attempts,
                                   .exec_us = x->exec_us,
                                   .peer_id = x->peer_id,
                                   .flags = ((x->flags & P2C2R_RESULT_CACHED) ? PROTO_DELIVER_F_CACHED : 0) |
                                            ((x->flags & P2C2R_RESULT_HEDGED) ? PROTO_DELIVER_F_HEDGED : 0) |
                                            ((x->flags & P2C2R_RESULT_VERIFIED) ? PROTO_DELIVER_F_VERIFIED : 0),
                                   .out = x->output,
                                   .len = x->output_len};
            renter_outcome(r, seen, i, &oc);
            p2c2r_result_release(&res[j]);
        }
    }
close_client:
    p2c2r_client_close(c);
}

static void renter_raw(struct h_renter *r, int *seen)
{
    struct h_raw conn;
    if (!H_CHECK(h_raw_connect(&conn, h_addr()) == 0, "%s: connect to %s", r->name, h_addr()))
        return;
    int rc = h_raw_hello(&conn, ROLE_RENTER, NULL, NULL);
    if (!H_CHECK(rc == 0, "%s: HELLO answered with %d", r->name, rc))
        goto close_conn;
    int next = 0, inflight = 0;
    uint64_t last = h_now_ms();
    while (r->done < r->tasks) {
        while (inflight < r->window && next < r->tasks) {
            struct p2c2r_task t;
            memset(&t, 0, sizeof(t));
            r->task(r->arg, next, &t);
            H_REQUIRE(t.params == NULL && t.nblobs == 0, "%s: raw renters send no params or blobs", r->name);
            size_t tl = strlen(t.type), bl = proto_task_size_ext(tl, 0, 0, 0, t.input_len);
            uint8_t *body = malloc(bl);
            H_REQUIRE(body, "out of memory");
            size_t o = proto_put_task_head_ext(body, t.type, tl, t.min_version, t.deadline_ms, t.priority,
                                               (t.flags & P2C2R_TASK_NOCACHE) ? PROTO_TASK_F_NOCACHE : 0,
                                               NULL, 0, NULL, 0, NULL, (uint32_t)t.input_len);
            if (t.input_len)
                memcpy(body + o, t.input, t.input_len);
            /* ticket = task index + 1 */
            rc = h_raw_send_frame(&conn, MSG_SUBMIT, 0, (uint64_t)next + 1, body, bl, h_bound_ms(10000));
            free(body);
            if (!H_CHECK(rc == 0, "%s: sending SUBMIT %d failed", r->name, next))
                goto close_conn;
            next++;
            inflight++;
        }
        struct h_outcome o;
        rc = h_raw_outcome(&conn, &o, 500);
        if (rc == H_RAW_TIMEOUT) {
            if (renter_stalled(r, last))
                goto close_conn;
            continue;
        }
        if (!H_CHECK(rc == H_RAW_FRAME, "%s: connection ended (%d) with %d of %d done", r->name, rc, r->done,
                     r->tasks))
            goto close_conn;
        last = h_now_ms();
        int before = r->done;
        renter_outcome(r, seen, o.ticket >= 1 && o.ticket <= (uint64_t)next ? (long long)o.ticket - 1 : -1, &o);
        inflight -= r->done - before;
    }
    /* Anything more for these tickets would be a second outcome. */
    struct h_frame f;
    rc = h_raw_read(&conn, &f, 300);
    H_CHECK(rc == H_RAW_TIMEOUT, "%s: a frame (%s) arrived after every ticket had its outcome", r->name,
            rc == H_RAW_FRAME ? proto_type_name(f.hdr.type) : "none");
close_conn:
    h_raw_close(&conn);
}

int h_renter_run(struct h_renter *r)
{
    H_REQUIRE(r->task && r->judge && r->window > 0 && r->tasks >= 0, "h_renter_run: bad renter");
    r->done = r->dup = r->unknown = 0;
    int *seen = calloc((size_t)r->tasks + 1, sizeof(int));
    H_REQUIRE(seen, "out of memory");
    if (r->raw)
        renter_raw(r, seen);
    else
        renter_api(r, seen);
    free(seen);
    return r->done == r->tasks && r->dup == 0 && r->unknown == 0 ? 0 : -1;
}

/* ---- restarting a process ----------------------------------------------------------- */

struct h_proc *h_respawn(struct h_proc *p)
{
    int i = (int)(p - H.procs);
    H_REQUIRE(i >= 0 && i < H.nprocs && saved_argv[i], "h_respawn: not a process of the harness");
    H_REQUIRE(p->reaped, "h_respawn: %s (pid %d) has not exited", p->name, (int)p->pid);
    FILE *f = fopen(p->log, "a");
    if (f) {
        fprintf(f, "# restarted after %s\n", h_status_str(p->status));
        fclose(f);
    }
    pid_t pid = fork_exec((const char *const *)saved_argv[i], NULL, p->log, p->log, 1);
    H_REQUIRE(pid > 0, "fork: %s", strerror(errno));
    p->pid = pid;
    p->reaped = 0;
    p->status = 0;
    p->killed = 0;
    p->checked = 0;
    h_log("restarted %s pid=%d", p->name, (int)pid);
    return p;
}

/* ---- fake peers ------------------------------------------------------------------------ */

/* A RESULT waiting for its time. */
struct fake_reply {
    uint64_t task_id, due_ms;
    uint8_t *body; /* the whole RESULT body */
    size_t len;
};

struct h_fake_peer {
    struct h_raw r; /* the thread's alone once it runs */
    pthread_t thread;
    char name[PROTO_MAX_NAME + 1];
    atomic_int delay_ms, fail_code;
    uint32_t exec_us; /* 0: report the delay */
    uint32_t us_per_byte; /* delay grows with the input */
    uint32_t out_len;     /* 0, or the length every successful output is stretched to */
    uint32_t peer_id;
    struct ident key;
    atomic_int stop, closed;
    atomic_long assigned, answered, cancels, pings, lies;
    int lie_after, lie_pct; /* the thread's alone once it runs */
    uint8_t lie_mask;
    uint64_t lie_rng;
    /* Replies not sent yet, in arrival order. */
    struct fake_reply *q;
    size_t nq, capq;
};

/* Sends every reply that is due; returns -1 when the connection failed. */
static int fake_flush(struct h_fake_peer *fp, uint64_t now)
{
    size_t keep = 0;
    int rc = 0;
    for (size_t k = 0; k < fp->nq; k++) {
        struct fake_reply *x = &fp->q[k];
        if (rc != 0 || x->due_ms > now) {
            fp->q[keep++] = *x;
            continue;
        }
        rc = h_raw_send_frame(&fp->r, MSG_RESULT, 0, x->task_id, x->body, x->len, h_bound_ms(5000));
        free(x->body);
        if (rc == 0)
            atomic_fetch_add(&fp->answered, 1);
    }
    fp->nq = keep;
    return rc;
}

/* Milliseconds until the next reply is due, at most cap. */
static int fake_wait(const struct h_fake_peer *fp, uint64_t now, int cap)
{
    for (size_t k = 0; k < fp->nq; k++) {
        uint64_t d = fp->q[k].due_ms;
        if (d <= now)
            return 0;
        if (d - now < (uint64_t)cap)
            cap = (int)(d - now);
    }
    return cap;
}

static void fake_assign(struct h_fake_peer *fp, const struct h_frame *f)
{
    struct msg_task m;
    atomic_fetch_add(&fp->assigned, 1);
    if (proto_parse_task(f->body, f->hdr.body_len, &m) != 0) {
        H_FAIL("%s: ASSIGN %llx does not parse", fp->name, (unsigned long long)f->hdr.req_id);
        return;
    }
    char text[128];
    const uint8_t *out = m.input.p;
    size_t olen = m.input.len;
    uint8_t md[32];
    uint16_t status = 0;
    int fail = atomic_load(&fp->fail_code), delay = atomic_load(&fp->delay_ms);
    /* The draw is made for every task past lie_after, so which tasks it
     * lies on depends only on the seed and the order of arrival. */
    int lie = fp->lie_pct > 0 && atomic_load(&fp->assigned) > fp->lie_after &&
              (int)(h_rand(&fp->lie_rng) % 100) < fp->lie_pct;
    if (delay == H_FAKE_NEVER)
        return;
    if (fail) {
        status = (uint16_t)-fail;
        olen = (size_t)snprintf(text, sizeof(text), "%s: injected failure", fp->name);
        out = (const uint8_t *)text;
    } else if (m.type.len == 6 && memcmp(m.type.p, "sha256", 6) == 0) {
        h_sha256(m.input.p, m.input.len, md);
        out = md;
        olen = sizeof(md);
    }
    delay += (int)((uint64_t)m.input.len * fp->us_per_byte / 1000);
    if (fp->nq == fp->capq) {
        size_t nc = fp->capq ? fp->capq * 2 : 16;
        struct fake_reply *nq = realloc(fp->q, nc * sizeof(*nq));
        H_REQUIRE(nq, "out of memory");
        fp->q = nq;
        fp->capq = nc;
    }
    struct fake_reply *x = &fp->q[fp->nq];
    x->task_id = f->hdr.req_id;
    x->due_ms = h_now_ms() + (uint64_t)delay;
    size_t honest = olen;
    if (fp->out_len && !fail)
        olen = fp->out_len;
    x->len = PROTO_RESULT_PREFIX + olen;
    x->body = malloc(x->len);
    H_REQUIRE(x->body, "out of memory");
    proto_put_result_head(x->body, status, fp->exec_us ? fp->exec_us : (uint32_t)delay * 1000u);
    /* The honest output, repeated to fill out_len (zeros when it is empty). */
    uint8_t *o = x->body + PROTO_RESULT_PREFIX;
    if (!honest)
        memset(o, 0, olen);
    for (size_t at = 0; honest && at < olen; at += honest)
        memcpy(o + at, out, honest < olen - at ? honest : olen - at);
    if (lie && !fail && olen) {
        x->body[PROTO_RESULT_PREFIX] ^= fp->lie_mask;
        x->body[PROTO_RESULT_PREFIX + olen - 1] ^= 0xa5;
        atomic_fetch_add(&fp->lies, 1);
    }
    fp->nq++;
}

static void *fake_main(void *arg)
{
    struct h_fake_peer *fp = arg;
    while (!atomic_load(&fp->stop)) {
        uint64_t now = h_now_ms();
        if (fake_flush(fp, now) != 0)
            break;
        struct h_frame f;
        int rc = h_raw_read(&fp->r, &f, fake_wait(fp, now, 20)); /* 20 ms: how soon a stop is seen */
        if (rc == H_RAW_TIMEOUT)
            continue;
        if (rc != H_RAW_FRAME)
            break;
        if (f.hdr.type == MSG_ASSIGN) {
            fake_assign(fp, &f);
        } else if (f.hdr.type == MSG_PING) {
            if (h_raw_send_frame(&fp->r, MSG_PONG, 0, f.hdr.req_id, f.body, f.hdr.body_len,
                                 h_bound_ms(5000)) != 0)
                break;
            atomic_fetch_add(&fp->pings, 1);
        } else if (f.hdr.type == MSG_CANCEL) {
            atomic_fetch_add(&fp->cancels, 1);
        } else if (f.hdr.type == MSG_ERROR) {
            struct msg_error e;
            if (proto_parse_error(f.body, f.hdr.body_len, &e) == 0)
                h_log("%s: coordinator sent ERROR %u: %.*s", fp->name, e.code, (int)e.text.len,
                      (const char *)e.text.p);
            break;
        }
        /* BLOB_DATA and PONG need nothing. */
    }
    if (!atomic_load(&fp->stop))
        atomic_store(&fp->closed, 1);
    return NULL;
}

struct h_fake_peer *h_fake_peer_start(const struct h_fake_peer_cfg *cfg)
{
    struct h_fake_peer *fp = calloc(1, sizeof(*fp));
    H_REQUIRE(fp, "out of memory");
    snprintf(fp->name, sizeof(fp->name), "%s", cfg->name ? cfg->name : "fake-peer");
    atomic_store(&fp->delay_ms, cfg->delay_ms);
    fp->us_per_byte = cfg->us_per_byte;
    fp->out_len = cfg->out_len;
    atomic_store(&fp->fail_code, cfg->fail_code);
    fp->exec_us = cfg->exec_us;
    fp->lie_after = cfg->lie_after;
    fp->lie_pct = cfg->lie_pct;
    fp->lie_mask = cfg->lie_mask ? cfg->lie_mask : 0x5a;
    fp->lie_rng = cfg->lie_seed ? cfg->lie_seed : 0x6c696172u;
    H_REQUIRE(h_raw_connect(&fp->r, H.addr) == 0, "%s: cannot connect to %s", fp->name, H.addr);

    if (cfg->key)
        fp->key = *cfg->key;
    else
        ident_generate(&fp->key);
    struct msg_hello hello = {PROTO_VERSION, PROTO_VERSION, ROLE_PEER, {NULL, 0},
                              {(const uint8_t *)fp->name, strlen(fp->name)}};
    uint8_t hb[PROTO_MAX_NAME + 16];
    size_t n = proto_put_hello(hb, &hello);
    H_REQUIRE(h_raw_send_frame(&fp->r, MSG_HELLO, 0, 1, hb, n, h_bound_ms(5000)) == 0,
              "%s: sending HELLO failed", fp->name);
    /* PEER_REGISTER signs the HELLO_OK's challenge: it cannot be pipelined. */
    struct h_frame hf;
    int hrc = h_raw_read(&fp->r, &hf, h_bound_ms(5000));
    struct msg_hello_ok hok;
    if (hrc == H_RAW_FRAME && hf.hdr.type == MSG_ERROR) {
        struct msg_error e;
        int ok = proto_parse_error(hf.body, hf.hdr.body_len, &e) == 0;
        H_REQUIRE(0, "%s: HELLO refused: %.*s", fp->name, ok ? (int)e.text.len : 0,
                  ok ? (const char *)e.text.p : "");
    }
    H_REQUIRE(hrc == H_RAW_FRAME && hf.hdr.type == MSG_HELLO_OK &&
                  proto_parse_hello_ok(hf.body, hf.hdr.body_len, &hok) == 0 && hok.has_nonce,
              "%s: no HELLO_OK with a nonce (read returned %d)", fp->name, hrc);
    fp->r.have_nonce = 1;
    memcpy(fp->r.nonce, hok.nonce, PROTO_NONCE_LEN);
    fp->r.conn_id = hok.conn_id;

    struct msg_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.cores = cfg->cores ? cfg->cores : 1;
    reg.slots = (uint16_t)cfg->slots;
    reg.mem_bytes = cfg->mem_bytes ? cfg->mem_bytes : 1ull << 30;
    reg.gpu = cfg->gpu ? 1 : 0;
    if (cfg->gpu) {
        const char *model = cfg->gpu_model ? cfg->gpu_model : "it-fake-gpu";
        reg.gpu_model.p = (const uint8_t *)model;
        reg.gpu_model.len = strlen(model);
    }
    char types[PROTO_MAX_TYPES * (PROTO_MAX_TYPE_NAME + 1) + 1];
    snprintf(types, sizeof(types), "%s", cfg->types ? cfg->types : "echo");
    for (char *s = types, *tok; (tok = strsep(&s, ",")) != NULL;) {
        if (!*tok)
            continue;
        H_REQUIRE(reg.ntypes < PROTO_MAX_TYPES, "%s: too many types", fp->name);
        reg.types[reg.ntypes].name.p = (const uint8_t *)tok;
        reg.types[reg.ntypes].name.len = strlen(tok);
        reg.types[reg.ntypes].version = cfg->version ? cfg->version : 1;
        reg.types[reg.ntypes].flags = PROTO_TYPE_F_DETERMINISTIC; /* as a real peer's built-ins */
        reg.ntypes++;
    }
    /* The pool block only when asked for, as the reference peer does. */
    reg.has_pool = cfg->pool != PROTO_POOL_VOLUNTEER || cfg->cost != 0;
    reg.pool = (uint8_t)cfg->pool;
    reg.cost = cfg->cost;
    size_t rl = proto_register_size(&reg);
    uint8_t *rb = malloc(rl);
    H_REQUIRE(rb, "out of memory");
    proto_put_register(rb, &reg);
    int rc = h_raw_send_register(&fp->r, 2, rb, rl, &fp->key);
    free(rb);
    H_REQUIRE(rc == 0, "%s: sending PEER_REGISTER failed", fp->name);

    /* HELLO_OK, then REGISTER_OK; ASSIGNs may follow at once and stay
     * buffered in r for the thread. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    for (;;) {
        uint64_t now = h_now_ms();
        struct h_frame f;
        rc = h_raw_read(&fp->r, &f, now >= end ? 0 : (int)(end - now));
        H_REQUIRE(rc == H_RAW_FRAME, "%s: no REGISTER_OK (read returned %d)", fp->name, rc);
        if (f.hdr.type == MSG_ERROR) {
            struct msg_error e;
            int ok = proto_parse_error(f.body, f.hdr.body_len, &e) == 0;
            H_REQUIRE(0, "%s: registration refused: %.*s", fp->name, ok ? (int)e.text.len : 0,
                      ok ? (const char *)e.text.p : "");
        }
        if (f.hdr.type == MSG_HELLO_OK)
            continue;
        H_REQUIRE(f.hdr.type == MSG_REGISTER_OK && f.hdr.body_len == 8, "%s: expected REGISTER_OK, got %s",
                  fp->name, proto_type_name(f.hdr.type));
        fp->peer_id = (uint32_t)rd64(f.body);
        break;
    }
    H_REQUIRE(pthread_create(&fp->thread, NULL, fake_main, fp) == 0, "pthread_create");
    h_log("fake peer %s registered as peer %u (types %s, %d slots, delay %d ms%s%s, lies %d%% after %d tasks)",
          fp->name, fp->peer_id, cfg->types ? cfg->types : "echo", cfg->slots, cfg->delay_ms,
          cfg->fail_code ? ", failing with " : "", cfg->fail_code ? h_err(cfg->fail_code) : "", cfg->lie_pct,
          cfg->lie_after);
    return fp;
}

uint32_t h_fake_peer_id(const struct h_fake_peer *fp) { return fp->peer_id; }

const uint8_t *h_fake_peer_pk(const struct h_fake_peer *fp) { return fp->key.pk; }

void h_fake_peer_set(struct h_fake_peer *fp, int delay_ms, int fail_code)
{
    atomic_store(&fp->delay_ms, delay_ms);
    atomic_store(&fp->fail_code, fail_code);
}

int h_fake_peer_wait_assigned(struct h_fake_peer *fp, long n, int timeout_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(timeout_ms);
    while (atomic_load(&fp->assigned) < n && h_now_ms() < end)
        h_sleep_ms(2);
    return atomic_load(&fp->assigned) >= n;
}

int h_fake_peer_wait_idle(struct h_fake_peer *fp, int timeout_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(timeout_ms);
    while (atomic_load(&fp->answered) < atomic_load(&fp->assigned) && h_now_ms() < end)
        h_sleep_ms(10);
    return atomic_load(&fp->answered) >= atomic_load(&fp->assigned);
}

void h_fake_peer_counts(struct h_fake_peer *fp, struct h_fake_counts *out)
{
    out->assigned = atomic_load(&fp->assigned);
    out->answered = atomic_load(&fp->answered);
    out->cancels = atomic_load(&fp->cancels);
    out->pings = atomic_load(&fp->pings);
    out->lies = atomic_load(&fp->lies);
    out->closed = atomic_load(&fp->closed);
}

void h_fake_peer_stop(struct h_fake_peer *fp)
{
    if (!fp)
        return;
    atomic_store(&fp->stop, 1);
    pthread_join(fp->thread, NULL);
    h_raw_close(&fp->r);
    for (size_t i = 0; i < fp->nq; i++)
        free(fp->q[i].body);
    free(fp->q);
    ident_fini(&fp->key);
    free(fp);
}

/* ---- HTTP --------------------------------------------------------------- */

static int http_addr_now(char *host, size_t cap, int *port)
{
    char *log = h_read_file(h_coord()->log, NULL);
    const char *p = log ? strstr(log, "event=metrics_listening addr=") : NULL;
    int ok = 0;
    if (p) {
        p += strlen("event=metrics_listening addr=");
        const char *end = p + strcspn(p, " \n");
        const char *colon = memchr(p, ':', (size_t)(end - p));
        if (colon && (size_t)(colon - p) < cap) {
            memcpy(host, p, (size_t)(colon - p));
            host[colon - p] = '\0';
            *port = atoi(colon + 1);
            ok = *port > 0;
        }
    }
    free(log);
    return ok;
}

int h_http_addr(char *host, size_t cap, int *port)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    while (!http_addr_now(host, cap, port)) {
        if (h_now_ms() >= end)
            return 0;
        h_sleep_ms(20);
    }
    return 1;
}

int h_tcp_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

char *h_http_get(const char *host, int port, const char *path, const char *headers)
{
    int fd = h_tcp_connect(host, port);
    if (fd < 0)
        return NULL;
    char req[1024];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n%s\r\n", path, host,
                     headers ? headers : "");
    if (n < 0 || (size_t)n >= sizeof(req) || write(fd, req, (size_t)n) != n) {
        close(fd);
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    for (;;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int left = (int)(end - h_now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            break;
        if (len + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) {
            close(fd);
            buf[len] = '\0';
            return buf; /* HTTP/1.0: the close ends the answer */
        }
        len += (size_t)r;
    }
    close(fd);
    free(buf);
    return NULL;
}
