/* bench_tls.c - what TLS costs the fabric (docs/PERFORMANCE.md, "TLS").
 *
 *   bench_tls idle  [--peers N] [--idle-ms MS]
 *       Coordinator RSS with N (default 10,000) idle peer connections, each
 *       registered: one p2c2r-peer process with --connections N, with TLS
 *       (--tls-cert; the peers --tls-ca) and then without, on fresh daemons.
 *   bench_tls speed [--rounds R] [--w2-tasks N] [--w1-tasks N]
 *       W2 (500,000 echo tasks of 64 B, 256 in flight) and W1 (20,000, one in
 *       flight) through `p2c2r bench`, TLS on and off alternating for R
 *       rounds (default 5) on fresh daemons, as bench/compare.sh runs W1/W2:
 *       p2c2rd --local-peers 0, one p2c2r-peer with 2 connections of
 *       ceil(inflight / 2) slots.  Prints every run and the medians.
 *
 * The certificate (P-256, self-signed for IP 127.0.0.1) is made with the
 * openssl command in a temporary directory.  Output: one JSON line per run
 * and per summary on stdout; daemons' logs in the temporary directory, which
 * is removed at the end.  Needs the build's p2c2rd, p2c2r-peer and p2c2r
 * (BENCH_BIN_DIR). */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p2c2r/client.h"

static char tmpdir[256], cert[320], key[320];
static pid_t live[8];
static int nlive;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            goto gone;
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
gone:
    for (int i = 0; i < nlive; i++)
        if (live[i] == pid)
            live[i] = live[--nlive];
}

static void cleanup(void)
{
    while (nlive)
        stop(live[nlive - 1]);
    if (tmpdir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_tls: could not remove %s\n", tmpdir);
    }
}

static void on_signal(int sig)
{
    /* Not async-signal-safe, but a benchmark interrupted by the operator
     * must not leave daemons behind. */
    cleanup();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_tls: %s\n", what);
    cleanup();
    exit(1);
}

/* Starts argv with stdout to out (NULL: the log file log) and stderr to log. */
static pid_t spawn(char *const argv[], const char *out, const char *log)
{
    fflush(stdout); /* or the child would write our buffered lines again */
    pid_t pid = fork();
    if (pid < 0)
        die("fork failed");
    if (pid == 0) {
        char lp[400];
        snprintf(lp, sizeof(lp), "%s/%s", tmpdir, log);
        if (!freopen("/dev/null", "r", stdin) || !freopen(lp, "a", stderr) ||
            !freopen(out ? out : lp, out ? "w" : "a", stdout))
            _exit(127);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (nlive < 8)
        live[nlive++] = pid;
    return pid;
}

static int run(char *const argv[], const char *out, const char *log)
{
    pid_t pid = spawn(argv, out, log);
    int st;
    waitpid(pid, &st, 0);
    for (int i = 0; i < nlive; i++)
        if (live[i] == pid)
            live[i] = live[--nlive];
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void make_cert(void)
{
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    char *argv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=bench",
                    "-addext", "subjectAltName=IP:127.0.0.1", NULL};
    if (run(argv, NULL, "openssl.log") != 0)
        die("openssl req failed (is the openssl command installed? scripts/deps.sh)");
}

struct coordp {
    pid_t pid;
    char addr[64];
};

static void coord_start(struct coordp *cp, int tls)
{
    static int n;
    char bin[400], ready[400], log[64];
    snprintf(bin, sizeof(bin), "%s/p2c2rd", BENCH_BIN_DIR);
    snprintf(ready, sizeof(ready), "%s/ready-%d", tmpdir, ++n);
    snprintf(log, sizeof(log), "p2c2rd-%d.log", n);
    char *argv[] = {bin, "--listen", "127.0.0.1:0", "--ready-file", ready, "--local-peers", "0",
                    "--log-level", "warn", tls ? "--tls-cert" : NULL, cert, "--tls-key", key, NULL};
    cp->pid = spawn(argv, NULL, log);
    for (int i = 0; i < 6000; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            int ok = fgets(cp->addr, sizeof(cp->addr), f) != NULL;
            fclose(f);
            cp->addr[strcspn(cp->addr, " \r\n")] = '\0';
            if (ok && cp->addr[0])
                return;
        }
        sleep_ms(10);
    }
    die("p2c2rd not ready after 60 s");
}

static pid_t peers_start(const struct coordp *cp, int tls, long conns, long slots)
{
    char bin[400], c[32], s[32];
    snprintf(bin, sizeof(bin), "%s/p2c2r-peer", BENCH_BIN_DIR);
    snprintf(c, sizeof(c), "%ld", conns);
    snprintf(s, sizeof(s), "%ld", slots);
    char kp[400];
    snprintf(kp, sizeof(kp), "%s/peer.key", tmpdir);
    char *argv[] = {bin, "--coordinator", (char *)cp->addr, "--connections", c, "--slots", s,
                    "--types", "echo", "--key", kp, "--log-level", "warn",
                    tls ? "--tls-ca" : NULL, cert, NULL};
    return spawn(argv, NULL, "peers.log");
}

static long long json_num(const char *js, const char *k)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", k);
    const char *p = js ? strstr(js, pat) : NULL;
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static double json_real(const char *js, const char *k)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", k);
    const char *p = js ? strstr(js, pat) : NULL;
    return p ? strtod(p + strlen(pat), NULL) : -1;
}

static void wait_peers(const struct coordp *cp, int tls, long want)
{
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.tls_ca_file = tls ? cert : NULL;
    long long got = -1;
    for (int i = 0; i < 1200; i++) {
        p2c2r_client *c;
        if (p2c2r_client_connect(cp->addr, &o, &c) == 0) {
            char *js = NULL;
            if (p2c2r_client_stats(c, 5000, &js) == 0)
                got = json_num(js, "peers_connected");
            p2c2r_stats_free(js);
            p2c2r_client_close(c);
        }
        if (got == want)
            return;
        sleep_ms(100);
    }
    fprintf(stderr, "bench_tls: %lld of %ld peers registered after 120 s\n", got, want);
    die("peers did not register");
}

static long proc_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long v = -1;
    size_t fl = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtol(line + fl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* utime + stime of pid, in microseconds. */
static double proc_cpu_us(pid_t pid)
{
    char path[64], b[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(b, 1, sizeof(b) - 1, f) : 0;
    if (f)
        fclose(f);
    b[n] = '\0';
    char *p = strrchr(b, ')');
    unsigned long ut = 0, st = 0;
    /* After the command: state, then fields 4..13, then utime and stime. */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

static long opt_long(int argc, char **argv, const char *name, long def)
{
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return strtol(argv[i + 1], NULL, 10);
    return def;
}

static int bench_idle(long peers, long idle_ms)
{
    for (int tls = 1; tls >= 0; tls--) {
        struct coordp cp;
        coord_start(&cp, tls);
        long rss0 = proc_kib(cp.pid, "VmRSS");
        pid_t pp = peers_start(&cp, tls, peers, 1);
        wait_peers(&cp, tls, peers);
        sleep_ms((int)idle_ms);
        long rss = proc_kib(cp.pid, "VmRSS"), hwm = proc_kib(cp.pid, "VmHWM");
        printf("{\"bench\":\"idle\",\"tls\":%s,\"peers\":%ld,\"coord_rss_start_kib\":%ld,"
               "\"coord_rss_idle_kib\":%ld,\"coord_hwm_kib\":%ld,\"per_conn_bytes\":%.0f}\n",
               tls ? "true" : "false", peers, rss0, rss, hwm,
               (double)(rss - rss0) * 1024.0 / (double)peers);
        fflush(stdout);
        stop(pp);
        stop(cp.pid);
    }
    return 0;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One `p2c2r bench --json` run; returns its JSON line (static). */
static const char *client_run(const struct coordp *cp, int tls, long tasks, long inflight)
{
    static char js[2048];
    char bin[400], out[400], t[32], k[32];
    snprintf(bin, sizeof(bin), "%s/p2c2r", BENCH_BIN_DIR);
    snprintf(out, sizeof(out), "%s/client.json", tmpdir);
    snprintf(t, sizeof(t), "%ld", tasks);
    snprintf(k, sizeof(k), "%ld", inflight);
    char *argv[] = {bin, "bench", "--coordinator", (char *)cp->addr, "--type", "echo", "--tasks", t,
                    "--inflight", k, "--size", "64", "--json", tls ? "--tls-ca" : NULL, cert, NULL};
    if (run(argv, out, "client.log") != 0)
        die("p2c2r bench failed (see client.log)");
    FILE *f = fopen(out, "r");
    js[0] = '\0';
    if (!f || !fgets(js, sizeof(js), f))
        die("no JSON from p2c2r bench");
    fclose(f);
    js[strcspn(js, "\n")] = '\0';
    return js;
}

static int bench_speed(int rounds, long w2_tasks, long w1_tasks)
{
    if (rounds > 32)
        rounds = 32;
    double w2[2][32], w2cpu[2][32], w1p50[2][32], w1p99[2][32];
    for (int r = 0; r < rounds; r++) {
        /* Alternate which mode goes first, so drift hits both alike. */
        for (int j = 0; j < 2; j++) {
            int tls = (r + j) % 2;
            struct coordp cp;
            coord_start(&cp, tls);
            pid_t pp = peers_start(&cp, tls, 2, 128);
            wait_peers(&cp, tls, 2);
            client_run(&cp, tls, 1000, 256); /* warm-up */
            double c0 = proc_cpu_us(cp.pid), p0 = proc_cpu_us(pp);
            const char *js = client_run(&cp, tls, w2_tasks, 256);
            double c1 = proc_cpu_us(cp.pid), p1 = proc_cpu_us(pp);
            w2[tls][r] = json_real(js, "tasks_per_s");
            w2cpu[tls][r] = (c1 - c0) / (double)w2_tasks;
            printf("{\"bench\":\"W2\",\"round\":%d,\"tls\":%s,\"coord_cpu_us_per_task\":%.3f,"
                   "\"peer_cpu_us_per_task\":%.3f,\"client\":%s}\n",
                   r, tls ? "true" : "false", w2cpu[tls][r], (p1 - p0) / (double)w2_tasks, js);
            stop(pp);
            stop(cp.pid);
            /* W1 on fresh daemons with one slot per connection, as compare.sh. */
            coord_start(&cp, tls);
            pp = peers_start(&cp, tls, 2, 1);
            wait_peers(&cp, tls, 2);
            client_run(&cp, tls, 1000, 1);
            js = client_run(&cp, tls, w1_tasks, 1);
            w1p50[tls][r] = json_real(js, "p50_us");
            w1p99[tls][r] = json_real(js, "p99_us");
            printf("{\"bench\":\"W1\",\"round\":%d,\"tls\":%s,\"client\":%s}\n", r, tls ? "true" : "false", js);
            fflush(stdout);
            stop(pp);
            stop(cp.pid);
        }
    }
    double m2[2], mc[2], m50[2], m99[2];
    for (int tls = 0; tls < 2; tls++) {
        m2[tls] = median(w2[tls], rounds);
        mc[tls] = median(w2cpu[tls], rounds);
        m50[tls] = median(w1p50[tls], rounds);
        m99[tls] = median(w1p99[tls], rounds);
    }
    printf("{\"bench\":\"summary\",\"rounds\":%d,\"w2_tasks_per_s_plain\":%.0f,\"w2_tasks_per_s_tls\":%.0f,"
           "\"w2_ratio\":%.3f,\"w2_coord_cpu_us_per_task_plain\":%.3f,\"w2_coord_cpu_us_per_task_tls\":%.3f,"
           "\"w1_p50_us_plain\":%.1f,\"w1_p50_us_tls\":%.1f,\"w1_p50_delta_us\":%.1f,"
           "\"w1_p99_us_plain\":%.1f,\"w1_p99_us_tls\":%.1f}\n",
           rounds, m2[0], m2[1], m2[1] / m2[0], mc[0], mc[1], m50[0], m50[1], m50[1] - m50[0], m99[0], m99[1]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "idle") && strcmp(argv[1], "speed"))) {
        fprintf(stderr, "usage: bench_tls idle [--peers N] [--idle-ms MS]\n"
                        "       bench_tls speed [--rounds R] [--w2-tasks N] [--w1-tasks N]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bench_tls.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        die("cannot make a temporary directory");
    }
    make_cert();
    int rc = !strcmp(argv[1], "idle")
                 ? bench_idle(opt_long(argc, argv, "--peers", 10000), opt_long(argc, argv, "--idle-ms", 2000))
                 : bench_speed((int)opt_long(argc, argv, "--rounds", 5), opt_long(argc, argv, "--w2-tasks", 500000),
                               opt_long(argc, argv, "--w1-tasks", 20000));
    cleanup();
    return rc;
}
