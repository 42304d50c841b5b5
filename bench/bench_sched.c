/* bench_sched.c - the scheduler's benchmarks: what placing a task costs the
 * coordinator with many peer connections, what those connections cost in
 * memory, the latency tail while peers are killed, and while one peer
 * answers slowly.
 *
 * The program starts its own p2c2rd and p2c2r-peer processes (from the build
 * directory), drives the load from this process with libp2c2r, reads CPU and
 * memory from /proc, and prints one JSON line per measured run and a summary
 * (medians over rounds; ratios between two runs of the same round, which ran
 * back to back on the same machine state).  Nothing here asserts on speed.
 *
 *   scale  For each peer count (default 100 and 10,000), in each round: a
 *          fresh p2c2rd, one p2c2r-peer process holding N connections (each
 *          registers as one peer; --slots ceil(inflight / N) as in
 *          bench/compare.sh, or --slots), a 2 s idle sample, a warm-up, then
 *          W2: 500,000 echo tasks of 64 B with 256 in flight.  Reported:
 *          coordinator CPU per task (utime+stime of all its threads, from
 *          /proc/PID/task/TID/schedstat, over the measured run / completed
 *          tasks), its CPU and RSS while idle, its peak RSS, throughput,
 *          latency, and the share of the machine other processes used.
 *          Readiness is read from /proc/net/tcp and the coordinator's STATS
 *          only after the memory figures (see wait_conns).
 *   churn  In each round: a fresh p2c2rd and 4 p2c2r-peer processes (one
 *          connection each, --slots 64), then W2-like load (256 in flight,
 *          64 B echo) with a deadline on every task, for --seconds without
 *          kills ("steady") and then for --seconds while one peer is killed
 *          with SIGKILL every --kill-ms and replaced at once ("churn"; with
 *          --hang the victim is stopped with SIGSTOP instead, connection
 *          open, and killed a turn later).  The peers belong to a separate
 *          killer process, so starting and reaping them never stalls the
 *          load.  Reported per phase: tasks/s, latency percentiles of every
 *          task (submit to result, measured here), tasks that came back ok
 *          but after their deadline, tasks that failed (by status), and the
 *          coordinator's retry and hedge counters.
 *   slow   In each round, three runs back to back, each with a fresh
 *          p2c2rd and fresh peers: "fast_only" (--peers p2c2r-peer
 *          processes, default 3, one connection and --slots
 *          ceil(inflight / peers) each), "hedge" (the same plus one slow
 *          peer with as many slots: a thread of this process that answers
 *          every task, correctly, --slow-ms after it arrived) and
 *          "no_hedge" (the same with p2c2rd --no-hedge).  Load: echo tasks
 *          of 64 B, 64 in flight, NOCACHE, no deadline; 1 s untimed, then
 *          --seconds (default 5) measured.  Reported per run: tasks/s,
 *          latency percentiles (submit to result), the coordinator's
 *          hedges, hedge wins and late results and its CPU per task, the
 *          tasks assigned to the slow peer, the results it produced and
 *          its thread's CPU; per round, p99 and p99.9 of "hedge" over those
 *          of the other two runs.
 *
 * --profile-cmd runs a profiler (perf, strace -c) on the coordinator for
 * each measured run.  Raises its own RLIMIT_NOFILE soft limit to the hard
 * limit; the daemons it starts inherit it.  Every wait is bounded, and every
 * process it starts dies with it.  Usage: bench_sched --help. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "procstat.h"
#include "common/cliopt.h"
#include "common/proto.h"
#include "p2c2r/client.h"

#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "."
#endif

#define MAX_CHILDREN 64
#define MAX_COUNTS 8
#define MAX_ROUNDS 20
#define POLL_BATCH 256
#define STALL_MS 30000 /* a run with no result for this long has failed */

/* ---- options ------------------------------------------------------------- */

static struct {
    const char *bin_dir;
    const char *peers;
    const char *profile_cmd;
    int64_t rounds, tasks, inflight, size, slots, warmup, idle_ms;
    int64_t seconds, kill_ms, deadline_ms, churn_peers, slow_ms;
    int keep_logs, hang;
    struct cliopt_multi coord_args;
} opt = {
    .bin_dir = BENCH_BIN_DIR,
    .rounds = 3,
    .tasks = 500000,
    .inflight = -1, /* 256; slow: 64 (set after parsing) */
    .size = 64,
    .warmup = 2000,
    .idle_ms = 2000,
    .seconds = -1, /* 10; slow: 5 */
    .kill_ms = 1000,
    .deadline_ms = 100,
    .churn_peers = 4,
    .slow_ms = 20,
};

/* ---- children ------------------------------------------------------------ */

static char tmpdir[256];
static pid_t children[MAX_CHILDREN];
static int nchildren;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void child_forget(pid_t pid)
{
    for (int i = 0; i < nchildren; i++)
        if (children[i] == pid) {
            children[i] = children[--nchildren];
            return;
        }
}

/* Stops one child: SIGTERM, up to 5 s for it to exit, then SIGKILL. */
static void child_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    for (int i = 0; i < 500; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            child_forget(pid);
            return;
        }
        sleep_ms(10);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    child_forget(pid);
}

/* Kills a child at once, as a crash would, and reaps it. */
static void child_kill(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    child_forget(pid);
}

static void rm_tmpdir(void)
{
    if (!tmpdir[0])
        return;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *e;
        char p[600];
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.')
                continue;
            snprintf(p, sizeof(p), "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    tmpdir[0] = '\0';
}

static void cleanup(void)
{
    while (nchildren > 0) {
        pid_t pid = children[nchildren - 1];
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        nchildren--;
    }
    if (opt.keep_logs && tmpdir[0])
        fprintf(stderr, "bench_sched: logs kept in %s\n", tmpdir);
    else
        rm_tmpdir();
}

static void on_signal(int sig)
{
    /* Only async-signal-safe calls: the daemons must not outlive us. */
    for (int i = 0; i < nchildren; i++)
        kill(children[i], SIGKILL);
    _exit(128 + sig);
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench_sched: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (tmpdir[0]) {
        fprintf(stderr, "bench_sched: daemon logs are in %s\n", tmpdir);
        opt.keep_logs = 1;
    }
    cleanup();
    exit(1);
}

/* Starts argv[0] with stdout and stderr appended to log (in tmpdir). */
static pid_t child_start(char *const argv[], const char *log)
{
    if (nchildren == MAX_CHILDREN)
        die("too many child processes");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, log);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        /* Dies with us, however we end. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], argv);
        dprintf(fd, "bench_sched: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    children[nchildren++] = pid;
    return pid;
}

/* ---- /proc --------------------------------------------------------------- */

/* CPU time of every thread of pid, in microseconds (schedstat gives
 * nanoseconds on CPU, the same quantity as utime+stime). */
static uint64_t proc_cpu_us(pid_t pid)
{
    char path[128];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t ns = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[320];
        snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(p, "r");
        unsigned long long v = 0;
        if (f) {
            if (fscanf(f, "%llu", &v) == 1)
                ns += v;
            fclose(f);
        }
    }
    closedir(d);
    return ns / 1000;
}

/* A "Vm...:" field of /proc/PID/status in KiB, 0 when absent. */
static uint64_t proc_vm_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    uint64_t v = 0;
    if (!f)
        return 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtoull(line + fl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* utime + stime (and, with reaped, cutime + cstime: the children it has
 * waited for) of pid from /proc/PID/stat, in microseconds; 0 when gone.
 * *ppid gets its parent's pid. */
static uint64_t proc_stat_cpu_us(pid_t pid, int reaped, pid_t *ppid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char *ok = fgets(line, sizeof(line), f);
    fclose(f);
    char *p = ok ? strrchr(line, ')') : NULL;
    int par = 0;
    unsigned long long ut = 0, st = 0;
    long long cut = 0, cst = 0;
    /* After "pid (comm)": state ppid pgrp session tty tpgid flags minflt
     * cminflt majflt cmajflt utime stime cutime cstime. */
    if (!p || sscanf(p + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %lld %lld", &par,
                     &ut, &st, &cut, &cst) != 5)
        return 0;
    if (ppid)
        *ppid = par;
    long tck = sysconf(_SC_CLK_TCK);
    unsigned long long ticks = ut + st + (reaped ? (unsigned long long)(cut + cst) : 0);
    return (uint64_t)(ticks * 1000000ull / (unsigned long long)(tck > 0 ? tck : 100));
}

/* CPU of pid, of the children it reaped, and of its live children. */
static uint64_t tree_cpu_us(pid_t pid)
{
    uint64_t us = proc_stat_cpu_us(pid, 1, NULL);
    DIR *d = opendir("/proc");
    if (!d)
        return us;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] < '1' || e->d_name[0] > '9')
            continue;
        pid_t par = 0, child = (pid_t)atoi(e->d_name);
        uint64_t c = proc_stat_cpu_us(child, 0, &par);
        if (par == pid)
            us += c;
    }
    closedir(d);
    return us;
}

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* Starts `--profile-cmd` with the coordinator's pid appended (e.g. "perf
 * record -g -o FILE -p" or "strace -c -f -o FILE -p") for the measured run
 * only; 0 when none is asked for. */
static pid_t profiler_start(pid_t coord)
{
    if (!opt.profile_cmd)
        return 0;
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "exec %s %d", opt.profile_cmd, (int)coord);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    pid_t pid = child_start(argv, "profiler.log");
    sleep_ms(500); /* let it attach before the load starts */
    return pid;
}

/* Stops the profiler as Ctrl-C would, so that it writes its report. */
static void profiler_stop(pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGINT);
    for (int i = 0; i < 3000; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            child_forget(pid);
            return;
        }
        sleep_ms(10);
    }
    child_kill(pid);
}

/* ---- the coordinator ------------------------------------------------------- */

struct coord_proc {
    pid_t pid;
    char addr[64];
};

/* Starts p2c2rd with the --coord-arg arguments and, when extra is not NULL,
 * that one argument after them. */
static void coord_start(struct coord_proc *cp, const char *tag, const char *extra)
{
    char bin[512], ready[512], log[64];
    snprintf(bin, sizeof(bin), "%s/p2c2rd", opt.bin_dir);
    snprintf(ready, sizeof(ready), "%s/%s.addr", tmpdir, tag);
    snprintf(log, sizeof(log), "%s.p2c2rd.log", tag);
    unlink(ready);
    char *argv[17 + CLIOPT_MULTI_MAX];
    int n = 0;
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    argv[n++] = "--local-peers";
    argv[n++] = "0";
    argv[n++] = "--log-level";
    argv[n++] = "warn";
    for (int i = 0; i < opt.coord_args.n; i++)
        argv[n++] = (char *)opt.coord_args.v[i];
    if (extra)
        argv[n++] = (char *)extra;
    argv[n] = NULL;
    cp->pid = child_start(argv, log);
    for (int i = 0; i < 1000; i++) {
        FILE *f = fopen(ready, "r");
        if (f) {
            int ok = fgets(cp->addr, sizeof(cp->addr), f) != NULL;
            fclose(f);
            if (ok) {
                cp->addr[strcspn(cp->addr, " \r\n")] = '\0';
                if (cp->addr[0])
                    return;
            }
        }
        if (waitpid(cp->pid, NULL, WNOHANG) == cp->pid) {
            child_forget(cp->pid);
            die("p2c2rd exited before it was ready (see %s)", log);
        }
        sleep_ms(10);
    }
    die("p2c2rd not ready after 10 s");
}

static pid_t peer_start(const struct coord_proc *cp, int64_t conns, int64_t slots, const char *tag)
{
    char bin[512], s_conns[32], s_slots[32], log[64];
    snprintf(bin, sizeof(bin), "%s/p2c2r-peer", opt.bin_dir);
    snprintf(s_conns, sizeof(s_conns), "%" PRId64, conns);
    snprintf(s_slots, sizeof(s_slots), "%" PRId64, slots);
    snprintf(log, sizeof(log), "%s.peers.log", tag);
    char *argv[] = {bin, "--coordinator", (char *)cp->addr, "--slots", s_slots, "--types", "echo",
                    "--connections", s_conns, "--log-level", "warn", NULL};
    return child_start(argv, log);
}

/* Number following "key": in a JSON document, -1 when absent. */
static int64_t json_int(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = strstr(json, pat);
    return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

/* The coordinator's STATS document; free it with p2c2r_stats_free. */
static char *coord_stats(p2c2r_client *c)
{
    char *json = NULL;
    int rc = p2c2r_client_stats(c, 10000, &json);
    if (rc != 0)
        die("stats: %s", p2c2r_strerror(rc));
    return json;
}

/* Established TCP connections whose local port is port (IPv4): the
 * coordinator's side of each of its connections. */
static int64_t tcp_established_on(unsigned port)
{
    FILE *f = fopen("/proc/net/tcp", "r");
    if (!f)
        return -1;
    char line[512];
    int64_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned lport, st;
        if (sscanf(line, " %*d: %*8[0-9A-Fa-f]:%4X %*8[0-9A-Fa-f]:%*4X %2X", &lport, &st) == 2 &&
            lport == port && st == 1)
            n++;
    }
    fclose(f);
    return n;
}

/* Waits (up to 60 s) until want connections (peers and this client) are
 * established to the coordinator.  Counted from /proc/net/tcp rather than
 * with STATS: with 10,000 peers a STATS document is megabytes, which the
 * coordinator's heap would keep and count in the RSS being measured.
 * Registration is checked with STATS after the measurement. */
static void wait_conns(const struct coord_proc *cp, int64_t want)
{
    const char *colon = strrchr(cp->addr, ':');
    unsigned port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    int64_t have = 0;
    for (int i = 0; i < 600; i++) {
        have = tcp_established_on(port);
        if (have < 0)
            die("cannot read /proc/net/tcp");
        if (have >= want)
            return;
        sleep_ms(100);
    }
    die("only %" PRId64 " of %" PRId64 " connections established after 60 s", have, want);
}

/* Waits (up to 60 s) until the coordinator has want peers registered. */
static void wait_peers(p2c2r_client *c, int64_t want)
{
    int64_t have = 0;
    for (int i = 0; i < 600; i++) {
        char *json = coord_stats(c);
        have = json_int(json, "peers_connected");
        p2c2r_stats_free(json);
        if (have >= want)
            return;
        sleep_ms(100);
    }
    die("only %" PRId64 " of %" PRId64 " peers registered after 60 s", have, want);
}

/* Coordinator counters that explain a run, from its STATS document:
 * after[i] = counter keys[i] now; out = JSON members "key":(after - before). */
static const char *const counter_keys[] = {"requeued", "retries", "hedges", "hedge_wins", "lost",
                                           "timed_out", "rejected_deadline", "late_results",
                                           "pings"};
#define NCOUNTERS (sizeof(counter_keys) / sizeof(counter_keys[0]))

static void coord_counters(p2c2r_client *c, const int64_t *before, int64_t *after, char *out,
                           size_t cap)
{
    char *json = coord_stats(c);
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < NCOUNTERS; i++) {
        after[i] = json_int(json, counter_keys[i]);
        int w = snprintf(out + used, cap - used, "%s\"%s\":%" PRId64, i ? "," : "", counter_keys[i],
                         after[i] - (before ? before[i] : 0));
        if (w < 0 || (size_t)w >= cap - used)
            break;
        used += (size_t)w;
    }
    p2c2r_stats_free(json);
}

static p2c2r_client *client_connect(const struct coord_proc *cp)
{
    p2c2r_client *c = NULL;
    struct p2c2r_client_options o = {.size = sizeof o, .name = "bench_sched"};
    int rc = p2c2r_client_connect(cp->addr, &o, &c);
    if (rc != 0)
        die("connect to %s: %s", cp->addr, p2c2r_strerror(rc));
    if ((uint64_t)opt.inflight > p2c2r_client_max_inflight(c))
        die("--inflight %" PRId64 " is over the coordinator's limit of %u", opt.inflight,
            p2c2r_client_max_inflight(c));
    return c;
}

/* ---- load ------------------------------------------------------------------ */

/* Outcomes of one measured run. */
struct tally {
    uint64_t ok, late, mismatched, failed;
    uint64_t by_status[64]; /* failed, by -status (0 = an unknown code) */
    uint32_t *lat;          /* submit-to-result latency of every task, us */
    size_t nlat, lat_cap;
    uint64_t t0, t1;
    uint64_t hedged;     /* results flagged P2C2R_RESULT_HEDGED */
    uint32_t watch_peer; /* when not 0: count the results this peer produced */
    uint64_t watched;
};

static void tally_add(struct tally *t, const struct p2c2r_result *r, uint64_t lat_us,
                      const uint8_t *input, uint64_t deadline_us)
{
    if (t->nlat == t->lat_cap) {
        t->lat_cap = t->lat_cap ? t->lat_cap * 2 : 1u << 16;
        t->lat = realloc(t->lat, t->lat_cap * sizeof(*t->lat));
        if (!t->lat)
            die("out of memory for latencies");
    }
    t->lat[t->nlat++] = lat_us > UINT32_MAX ? UINT32_MAX : (uint32_t)lat_us;
    if (r->flags & P2C2R_RESULT_HEDGED)
        t->hedged++;
    if (t->watch_peer && r->peer_id == t->watch_peer)
        t->watched++;
    if (r->status == 0) {
        if (r->output_len != (size_t)opt.size || (opt.size && memcmp(r->output, input, (size_t)opt.size)))
            t->mismatched++;
        else if (deadline_us && lat_us > deadline_us)
            t->late++;
        else
            t->ok++;
    } else {
        t->failed++;
        int k = -r->status;
        t->by_status[k > 0 && k < 64 ? k : 0]++;
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void tally_sort(struct tally *t) { qsort(t->lat, t->nlat, sizeof(*t->lat), cmp_u32); }

static uint32_t tally_pct(const struct tally *t, double q)
{
    if (t->nlat == 0)
        return 0;
    size_t i = (size_t)(q * (double)t->nlat + 0.999999);
    if (i == 0)
        i = 1;
    if (i > t->nlat)
        i = t->nlat;
    return t->lat[i - 1];
}

/* Submit times by ticket id, grown as tickets are issued. */
struct sent_log {
    uint64_t first, *at;
    size_t cap;
};

static void sent_put(struct sent_log *s, uint64_t id, uint64_t us)
{
    if (!s->first)
        s->first = id;
    uint64_t i = id - s->first;
    if (i >= s->cap) {
        size_t nc = s->cap ? s->cap : 1u << 16;
        while (nc <= i)
            nc *= 2;
        s->at = realloc(s->at, nc * sizeof(*s->at));
        if (!s->at)
            die("out of memory for submit times");
        s->cap = nc;
    }
    s->at[i] = us;
}

static uint64_t sent_get(const struct sent_log *s, uint64_t id) { return s->at[id - s->first]; }

/* Runs tasks through c, inflight at a time, until `tasks` results arrived
 * (tasks > 0) or `run_us` passed and every outstanding result arrived.
 * flags: P2C2R_TASK_* of every task.  Results are recorded in *t when t is
 * not NULL. */
static void drive(p2c2r_client *c, uint64_t tasks, uint64_t run_us, uint32_t deadline_ms,
                  uint32_t flags, struct tally *t)
{
    static uint8_t input[1 << 16];
    if ((size_t)opt.size > sizeof(input))
        die("--size is at most %zu", sizeof(input));
    for (int64_t i = 0; i < opt.size; i++)
        input[i] = (uint8_t)(i * 131 + 7);
    /* Priority interactive and (with flags 0) no flags: the task `p2c2r
     * bench` sends. */
    struct p2c2r_task task = {.size = sizeof task, .type = "echo", .priority = P2C2R_PRIO_INTERACTIVE, .input = input,
                              .input_len = (size_t)opt.size, .deadline_ms = deadline_ms,
                              .flags = flags};
    struct sent_log sl = {0};
    struct p2c2r_result res[POLL_BATCH] = {P2C2R_RESULT_INIT};
    uint64_t submitted = 0, finished = 0, start = now_us(), last_rx = start;
    if (t)
        t->t0 = start;
    for (;;) {
        uint64_t now = now_us();
        int more = tasks ? submitted < tasks : now - start < run_us;
        if (!more && finished == submitted)
            break;
        while (more && submitted - finished < (uint64_t)opt.inflight) {
            p2c2r_ticket tk;
            int rc = p2c2r_client_submit(c, &task, &tk);
            if (rc == P2C2R_EAGAIN)
                break;
            if (rc != 0)
                die("submit: %s %s", p2c2r_strerror(rc), p2c2r_client_last_error(c));
            sent_put(&sl, tk.id, now);
            submitted++;
            more = tasks ? submitted < tasks : 1;
        }
        int n = p2c2r_client_poll(c, res, POLL_BATCH, 100);
        if (n < 0)
            die("poll: %s", p2c2r_strerror(n));
        now = now_us();
        if (n > 0)
            last_rx = now;
        else if (now - last_rx > STALL_MS * 1000ull)
            die("no result for %d s with %" PRIu64 " tasks outstanding", STALL_MS / 1000,
                submitted - finished);
        for (int i = 0; i < n; i++) {
            if (t)
                tally_add(t, &res[i], now - sent_get(&sl, res[i].ticket.id), input,
                          deadline_ms * 1000ull);
            p2c2r_result_release(&res[i]);
        }
        finished += (uint64_t)n;
    }
    if (t)
        t->t1 = now_us();
    free(sl.at);
}

/* ---- statistics -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double s[MAX_ROUNDS];
    memcpy(s, v, (size_t)n * sizeof(*v));
    qsort(s, (size_t)n, sizeof(*s), cmp_double);
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double range_lo(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] < m ? v[i] : m;
    return m;
}

static double range_hi(const double *v, int n)
{
    double m = v[0];
    for (int i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

/* ---- scale ------------------------------------------------------------------- */

struct scale_run {
    double tps, coord_us, peer_us, client_us, p50, p99;
    double idle_cpu_pct, idle_rss, run_hwm, run_rss, other_pct;
    int64_t slots;
};

static void scale_one(int64_t npeers, int round, struct scale_run *out)
{
    char tag[64];
    snprintf(tag, sizeof(tag), "scale-%" PRId64 "-r%d", npeers, round);
    int64_t slots = opt.slots ? opt.slots : (opt.inflight + npeers - 1) / npeers;
    struct coord_proc cp;
    coord_start(&cp, tag, NULL);
    p2c2r_client *c = client_connect(&cp);
    pid_t pp = peer_start(&cp, npeers, slots, tag);
    wait_conns(&cp, npeers + 1);

    /* Idle: what npeers registered connections cost with no task running
     * (sweeps, pings, memory). */
    sleep_ms(500);
    uint64_t i0 = proc_cpu_us(cp.pid), w0 = now_us();
    sleep_ms((int)opt.idle_ms);
    uint64_t i1 = proc_cpu_us(cp.pid), w1 = now_us();
    out->idle_cpu_pct = (double)(i1 - i0) * 100.0 / (double)(w1 - w0);
    out->idle_rss = (double)proc_vm_kib(cp.pid, "VmRSS");

    drive(c, (uint64_t)opt.warmup, 0, 0, 0, NULL);

    struct tally t = {0};
    pid_t prof = profiler_start(cp.pid);
    uint64_t c0 = proc_cpu_us(cp.pid), p0 = proc_cpu_us(pp), s0 = self_cpu_us(),
             b0 = machine_busy_us();
    drive(c, (uint64_t)opt.tasks, 0, 0, 0, &t);
    uint64_t c1 = proc_cpu_us(cp.pid), p1 = proc_cpu_us(pp), s1 = self_cpu_us(),
             b1 = machine_busy_us();
    profiler_stop(prof);
    out->run_hwm = (double)proc_vm_kib(cp.pid, "VmHWM");
    out->run_rss = (double)proc_vm_kib(cp.pid, "VmRSS");
    /* Only now, with the memory figures taken: every peer was registered
     * through the run, and the counters since the coordinator started. */
    int64_t k[NCOUNTERS];
    char counters[512];
    coord_counters(c, NULL, k, counters, sizeof(counters));
    char *json = coord_stats(c);
    int64_t registered = json_int(json, "peers_connected");
    p2c2r_stats_free(json);
    if (registered != npeers)
        die("%s: %" PRId64 " of %" PRId64 " peers registered at the end of the run", tag, registered,
            npeers);
    if (t.failed || t.mismatched || t.ok + t.late != (uint64_t)opt.tasks)
        die("%s: %" PRIu64 " ok, %" PRIu64 " failed, %" PRIu64 " mismatched of %" PRId64, tag,
            t.ok + t.late, t.failed, t.mismatched, opt.tasks);
    double secs = (double)(t.t1 - t.t0) / 1e6, n = (double)opt.tasks;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double ours = (double)((c1 - c0) + (p1 - p0) + (s1 - s0));
    out->slots = slots;
    out->tps = n / secs;
    out->coord_us = (double)(c1 - c0) / n;
    out->peer_us = (double)(p1 - p0) / n;
    out->client_us = (double)(s1 - s0) / n;
    out->other_pct = ((double)(b1 - b0) - ours) * 100.0 /
                     ((double)(t.t1 - t.t0) * (double)(ncpu > 0 ? ncpu : 1));
    if (out->other_pct < 0)
        out->other_pct = 0;
    tally_sort(&t);
    out->p50 = tally_pct(&t, 0.50);
    out->p99 = tally_pct(&t, 0.99);
    free(t.lat);
    p2c2r_client_close(c);
    child_stop(pp);
    child_stop(cp.pid);
    printf("{\"bench\":\"scale\",\"round\":%d,\"peers\":%" PRId64 ",\"slots\":%" PRId64
           ",\"tasks\":%" PRId64 ",\"inflight\":%" PRId64 ",\"size\":%" PRId64
           ",\"tasks_per_s\":%.0f,\"coord_cpu_us_per_task\":%.3f,\"peer_cpu_us_per_task\":%.3f"
           ",\"client_cpu_us_per_task\":%.3f,\"p50_us\":%.0f,\"p99_us\":%.0f"
           ",\"coord_idle_cpu_pct\":%.2f,\"coord_idle_rss_kib\":%.0f,\"coord_hwm_kib\":%.0f"
           ",\"coord_rss_after_kib\":%.0f,\"other_cpu_pct\":%.1f,\"coord_since_start\":{%s}}\n",
           round, npeers, slots, opt.tasks, opt.inflight, opt.size, out->tps, out->coord_us,
           out->peer_us, out->client_us, out->p50, out->p99, out->idle_cpu_pct, out->idle_rss,
           out->run_hwm, out->run_rss, out->other_pct, counters);
    fflush(stdout);
}

static int parse_counts(const char *s, int64_t *v)
{
    int n = 0;
    while (*s && n < MAX_COUNTS) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || x < 1 || x > 10000 || (*end && *end != ','))
            return -1;
        v[n++] = x;
        s = *end ? end + 1 : end;
    }
    return *s ? -1 : n;
}

static int bench_scale(void)
{
    int64_t counts[MAX_COUNTS];
    int nc = parse_counts(opt.peers ? opt.peers : "100,10000", counts);
    if (nc <= 0)
        die("--peers wants a comma-separated list of 1..10000 (one p2c2r-peer process holds them)");
    static struct scale_run r[MAX_COUNTS][MAX_ROUNDS];
    for (int round = 0; round < opt.rounds; round++)
        for (int i = 0; i < nc; i++) {
            fprintf(stderr, "bench_sched: scale round %d/%" PRId64 ", %" PRId64 " peers\n", round + 1,
                    opt.rounds, counts[i]);
            scale_one(counts[i], round + 1, &r[i][round]);
        }
    int R = (int)opt.rounds;
    printf("\nscale: W2 (%" PRId64 " echo tasks of %" PRId64 " B, %" PRId64
           " in flight), medians of %d rounds [min..max]\n",
           opt.tasks, opt.size, opt.inflight, R);
    printf("%7s %5s %18s %22s %9s %9s %9s %8s %12s %14s %14s\n", "peers", "slots", "tasks/s",
           "coord CPU us/task", "peer us", "client us", "p99 us", "idle %", "idle RSS KiB",
           "peak RSS KiB", "other cpu %");
    for (int i = 0; i < nc; i++) {
        double tps[MAX_ROUNDS], cu[MAX_ROUNDS], pu[MAX_ROUNDS], cl[MAX_ROUNDS], p99[MAX_ROUNDS],
            ip[MAX_ROUNDS], ir[MAX_ROUNDS], hw[MAX_ROUNDS], oc[MAX_ROUNDS];
        for (int k = 0; k < R; k++) {
            tps[k] = r[i][k].tps, cu[k] = r[i][k].coord_us, pu[k] = r[i][k].peer_us;
            cl[k] = r[i][k].client_us, p99[k] = r[i][k].p99, ip[k] = r[i][k].idle_cpu_pct;
            ir[k] = r[i][k].idle_rss, hw[k] = r[i][k].run_hwm, oc[k] = r[i][k].other_pct;
        }
        char a[64], b[64];
        snprintf(a, sizeof(a), "%.0f [%.0f..%.0f]", median(tps, R), range_lo(tps, R), range_hi(tps, R));
        snprintf(b, sizeof(b), "%.3f [%.3f..%.3f]", median(cu, R), range_lo(cu, R), range_hi(cu, R));
        printf("%7" PRId64 " %5" PRId64 " %18s %22s %9.3f %9.3f %9.0f %8.2f %12.0f %14.0f %14.1f\n",
               counts[i], r[i][0].slots, a, b, median(pu, R), median(cl, R), median(p99, R),
               median(ip, R), median(ir, R), median(hw, R), median(oc, R));
    }
    for (int i = 1; i < nc; i++) {
        double rc[MAX_ROUNDS], rt[MAX_ROUNDS];
        printf("ratio %" PRId64 " / %" PRId64 " peers, per round:", counts[i], counts[0]);
        for (int k = 0; k < R; k++) {
            rc[k] = r[i][k].coord_us / r[0][k].coord_us;
            rt[k] = r[i][k].tps / r[0][k].tps;
            printf(" [cpu %.3f, tps %.3f]", rc[k], rt[k]);
        }
        printf("\n  median: coordinator CPU per task %.3fx, throughput %.3fx\n", median(rc, R),
               median(rt, R));
        printf("{\"bench\":\"scale_ratio\",\"peers\":%" PRId64 ",\"base_peers\":%" PRId64
               ",\"coord_cpu_ratio\":%.3f,\"tps_ratio\":%.3f,\"rounds\":%d}\n",
               counts[i], counts[0], median(rc, R), median(rt, R), R);
    }
    return 0;
}

/* ---- churn ------------------------------------------------------------------- */

/* The killer: a child process that owns the churn phase's peers, so that
 * killing and starting them (fork, exec, reaping) never stalls the load
 * loop.  It starts its peers at once; after 'k' on its control pipe it kills
 * one of them (round robin) with SIGKILL every --kill-ms and starts a
 * replacement at once (--hang: it stops the victim with SIGSTOP instead,
 * which keeps its connection open, and kills it at the next turn); on 'q'
 * or EOF it stops its peers, writes how many it killed to its report pipe
 * and exits. */
struct killer {
    pid_t pid;
    int ctl, report; /* our ends */
};

static void killer_main(const struct coord_proc *cp, int64_t slots, const char *tag, int ctl,
                        int report)
{
    nchildren = 0; /* the parent's children are not ours to stop */
    pid_t pids[MAX_CHILDREN / 2];
    int n = (int)opt.churn_peers, next = 0, active = 0;
    uint64_t kills = 0, next_us = 0;
    pid_t hung = 0;
    for (int i = 0; i < n; i++)
        pids[i] = peer_start(cp, 1, slots, tag);
    for (;;) {
        int timeout = -1;
        uint64_t now = now_us();
        if (active)
            timeout = next_us > now ? (int)((next_us - now + 999) / 1000) : 0;
        struct pollfd pf = {ctl, POLLIN, 0};
        if (poll(&pf, 1, timeout) > 0) {
            char ch = 'q';
            if (read(ctl, &ch, 1) != 1 || ch == 'q')
                break;
            if (ch == 'k' && !active) {
                active = 1;
                next_us = now_us() + (uint64_t)opt.kill_ms * 1000;
            }
            continue;
        }
        if (active && now_us() >= next_us) {
            if (opt.hang) {
                /* The victim hangs with its connection open; the one hung
                 * since the last turn dies now. */
                if (hung > 0)
                    child_kill(hung);
                kill(pids[next], SIGSTOP);
                hung = pids[next];
            } else {
                child_kill(pids[next]);
            }
            pids[next] = peer_start(cp, 1, slots, tag);
            next = (next + 1) % n;
            kills++;
            next_us += (uint64_t)opt.kill_ms * 1000;
        }
    }
    if (hung > 0)
        child_kill(hung);
    for (int i = 0; i < n; i++)
        child_stop(pids[i]);
    if (write(report, &kills, sizeof(kills)) != (ssize_t)sizeof(kills))
        _exit(1);
    _exit(0);
}

static void killer_start(struct killer *k, const struct coord_proc *cp, int64_t slots, const char *tag)
{
    int ctl[2], rep[2];
    if (pipe(ctl) != 0 || pipe(rep) != 0)
        die("pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        close(ctl[1]);
        close(rep[0]);
        killer_main(cp, slots, tag, ctl[0], rep[1]);
    }
    close(ctl[0]);
    close(rep[1]);
    children[nchildren++] = pid;
    k->pid = pid;
    k->ctl = ctl[1];
    k->report = rep[0];
}

static void killer_send(const struct killer *k, char ch)
{
    if (write(k->ctl, &ch, 1) != 1)
        die("killer: %s", strerror(errno));
}

/* Stops the killer and its peers; returns how many peers it killed. */
static uint64_t killer_stop(struct killer *k)
{
    killer_send(k, 'q');
    uint64_t kills = 0;
    struct pollfd pf = {k->report, POLLIN, 0};
    if (poll(&pf, 1, 30000) <= 0 || read(k->report, &kills, sizeof(kills)) != (ssize_t)sizeof(kills))
        die("the killer process did not report");
    waitpid(k->pid, NULL, 0);
    child_forget(k->pid);
    close(k->ctl);
    close(k->report);
    return kills;
}

struct churn_phase {
    double tps, p50, p90, p99, p999, max, ok, late, failed, total, miss_pct, other_pct;
    uint64_t by_status[64];
};

static void phase_summarize(struct tally *t, struct churn_phase *ph)
{
    tally_sort(t);
    double secs = (double)(t->t1 - t->t0) / 1e6;
    ph->total = (double)t->nlat;
    ph->ok = (double)t->ok;
    ph->late = (double)t->late;
    ph->failed = (double)(t->failed + t->mismatched);
    ph->tps = (double)(t->ok + t->late) / secs; /* completed tasks */
    ph->p50 = tally_pct(t, 0.50);
    ph->p90 = tally_pct(t, 0.90);
    ph->p99 = tally_pct(t, 0.99);
    ph->p999 = tally_pct(t, 0.999);
    ph->max = t->nlat ? t->lat[t->nlat - 1] : 0;
    ph->miss_pct = ph->total > 0 ? (ph->late + ph->failed) * 100.0 / ph->total : 0;
    memcpy(ph->by_status, t->by_status, sizeof(ph->by_status));
}

/* CPU of everything this benchmark runs, and of the whole machine, at one
 * moment: other_pct() of two samples is the share of all cores that other
 * processes used in between, the run's noise gauge. */
struct ours {
    uint64_t wall, ours, machine;
};

static struct ours ours_sample(pid_t coord, pid_t killer)
{
    struct ours o;
    o.wall = now_us();
    o.ours = proc_cpu_us(coord) + self_cpu_us() + tree_cpu_us(killer);
    o.machine = machine_busy_us();
    return o;
}

static double other_pct(const struct ours *a, const struct ours *b)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double x = ((double)(b->machine - a->machine) - (double)(b->ours - a->ours)) * 100.0 /
               ((double)(b->wall - a->wall) * (double)(ncpu > 0 ? ncpu : 1));
    return x < 0 ? 0 : x;
}

static void print_phase_json(const char *name, int round, const struct churn_phase *ph,
                             uint64_t kills, const char *counters)
{
    printf("{\"bench\":\"churn\",\"phase\":\"%s\",\"hang\":%s,\"round\":%d,\"peers\":%" PRId64
           ",\"inflight\":%" PRId64 ",\"size\":%" PRId64 ",\"deadline_ms\":%" PRId64
           ",\"seconds\":%" PRId64 ",\"tasks\":%.0f,\"ok\":%.0f,\"late\":%.0f,\"failed\":%.0f"
           ",\"missed_pct\":%.4f,\"tasks_per_s\":%.0f,\"p50_us\":%.0f,\"p90_us\":%.0f,\"p99_us\":%.0f"
           ",\"p999_us\":%.0f,\"max_us\":%.0f,\"other_cpu_pct\":%.1f,\"kills\":%" PRIu64
           ",\"failed_by_status\":{",
           name, opt.hang ? "true" : "false", round, opt.churn_peers, opt.inflight, opt.size,
           opt.deadline_ms, opt.seconds, ph->total, ph->ok, ph->late, ph->failed, ph->miss_pct,
           ph->tps, ph->p50, ph->p90, ph->p99,
           ph->p999, ph->max, ph->other_pct, kills);
    int first = 1;
    for (int s = 0; s < 64; s++)
        if (ph->by_status[s]) {
            printf("%s\"%s\":%" PRIu64, first ? "" : ",", s ? p2c2r_errname(-s) : "other",
                   ph->by_status[s]);
            first = 0;
        }
    printf("},\"coord\":{%s}}\n", counters);
    fflush(stdout);
}

static int bench_churn(void)
{
    if (opt.churn_peers < 2 || opt.churn_peers > MAX_CHILDREN / 2)
        die("--peers for churn is 2..%d", MAX_CHILDREN / 2);
    int64_t slots = opt.slots ? opt.slots : (opt.inflight + opt.churn_peers - 1) / opt.churn_peers;
    static struct churn_phase ph[2][MAX_ROUNDS];
    uint64_t kills[MAX_ROUNDS];
    for (int round = 0; round < opt.rounds; round++) {
        fprintf(stderr, "bench_sched: churn round %d/%" PRId64 "\n", round + 1, opt.rounds);
        char tag[64];
        snprintf(tag, sizeof(tag), "churn-r%d", round + 1);
        struct coord_proc cp;
        coord_start(&cp, tag, NULL);
        struct killer k;
        killer_start(&k, &cp, slots, tag);
        p2c2r_client *c = client_connect(&cp);
        wait_peers(c, opt.churn_peers);
        /* Warm-up with the deadline, so the coordinator's admission and
         * hedging estimates are trained as they would be in a game. */
        drive(c, (uint64_t)opt.warmup * 5, 0, (uint32_t)opt.deadline_ms, 0, NULL);

        int64_t c0[NCOUNTERS], c1[NCOUNTERS], c2[NCOUNTERS];
        char counters[512];
        coord_counters(c, NULL, c0, counters, sizeof(counters));
        struct tally t = {0};
        pid_t prof = profiler_start(cp.pid);
        struct ours o0 = ours_sample(cp.pid, k.pid);
        drive(c, 0, (uint64_t)opt.seconds * 1000000, (uint32_t)opt.deadline_ms, 0, &t);
        struct ours o1 = ours_sample(cp.pid, k.pid);
        profiler_stop(prof);
        phase_summarize(&t, &ph[0][round]);
        ph[0][round].other_pct = other_pct(&o0, &o1);
        coord_counters(c, c0, c1, counters, sizeof(counters));
        print_phase_json("steady", round + 1, &ph[0][round], 0, counters);
        free(t.lat);

        memset(&t, 0, sizeof(t));
        killer_send(&k, 'k');
        o0 = ours_sample(cp.pid, k.pid);
        drive(c, 0, (uint64_t)opt.seconds * 1000000, (uint32_t)opt.deadline_ms, 0, &t);
        o1 = ours_sample(cp.pid, k.pid);
        kills[round] = killer_stop(&k);
        phase_summarize(&t, &ph[1][round]);
        ph[1][round].other_pct = other_pct(&o0, &o1);
        coord_counters(c, c1, c2, counters, sizeof(counters));
        print_phase_json("churn", round + 1, &ph[1][round], kills[round], counters);
        free(t.lat);
        p2c2r_client_close(c);
        child_stop(cp.pid);
    }
    int R = (int)opt.rounds;
    printf("\nchurn: %" PRId64 " peers (--slots %" PRId64 "), %" PRId64 " echo tasks of %" PRId64
           " B in flight, deadline %" PRId64 " ms, %" PRId64 " s per phase; medians of %d rounds\n",
           opt.churn_peers, slots, opt.inflight, opt.size, opt.deadline_ms, opt.seconds, R);
    printf("%-7s %8s %10s %8s %8s %8s %9s %9s %9s %9s %10s %8s\n", "phase", "kills", "tasks/s",
           "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "late", "failed", "missed %",
           "other %");
    for (int p = 0; p < 2; p++) {
        double v[11][MAX_ROUNDS];
        for (int k = 0; k < R; k++) {
            const struct churn_phase *x = &ph[p][k];
            double row[11] = {p ? (double)kills[k] : 0, x->tps, x->p50, x->p90, x->p99, x->p999,
                              x->max, x->late, x->failed, x->miss_pct, x->other_pct};
            for (int j = 0; j < 11; j++)
                v[j][k] = row[j];
        }
        printf("%-7s %8.0f %10.0f %8.0f %8.0f %8.0f %9.0f %9.0f %9.0f %9.0f %10.4f %8.1f\n",
               p ? "churn" : "steady", median(v[0], R), median(v[1], R), median(v[2], R),
               median(v[3], R), median(v[4], R), median(v[5], R), median(v[6], R), median(v[7], R),
               median(v[8], R), median(v[9], R), median(v[10], R));
    }
    printf("per round (churn phase): ");
    for (int k = 0; k < R; k++)
        printf("%s[p99 %.0f us, late %.0f, failed %.0f of %.0f]", k ? " " : "", ph[1][k].p99,
               ph[1][k].late, ph[1][k].failed, ph[1][k].total);
    printf("\n");
    return 0;
}

/* ---- slow -------------------------------------------------------------------- */

/* The slow peer: a peer written here, speaking the raw protocol
 * (docs/PROTOCOL.md) on its own thread, so that its answers can be held
 * back without a hook in p2c2r-peer.  It registers "echo" with the slots a
 * fast peer has, answers every PING with a PONG, and answers every ASSIGN
 * with one RESULT (status 0, the input echoed, exec_us = the time it held
 * the task) --slow-ms after the ASSIGN arrived, as a peer on a slow machine
 * would.  A CANCEL (its attempt lost to a hedge) is counted and otherwise
 * ignored, as by a peer whose task is already running: the answer still
 * comes, and the slot stays taken until it does.  One delay for every task,
 * so answers fall due in arrival order and wait in a FIFO. */
struct slow_reply {
    uint64_t task_id, arrived_us;
    uint8_t *body; /* the RESULT body, head written when it is sent */
    size_t len;
};

struct slow_peer {
    int fd;
    pthread_t thread;
    uint32_t id; /* the coordinator's peer id: DELIVER's peer_id */
    uint64_t delay_us;
    atomic_int stop, failed;
    atomic_uint_fast64_t assigned, answered, cancels, pings;
    char failure[200]; /* why it ended, once failed is set */
    struct slow_reply *q; /* FIFO: q[qhead..qn) */
    size_t qhead, qn, qcap;
    uint8_t *rx, *tx;
    size_t rx_len, rx_cap, tx_len, tx_cap;
};

static int slow_fail(struct slow_peer *sp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int slow_fail(struct slow_peer *sp, const char *fmt, ...)
{
    if (!atomic_load(&sp->failed)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sp->failure, sizeof(sp->failure), fmt, ap);
        va_end(ap);
        atomic_store(&sp->failed, 1);
    }
    return -1;
}

/* Room for `need` more bytes at buf[*len]. */
static void slow_reserve(uint8_t **buf, size_t *cap, size_t len, size_t need)
{
    if (len + need <= *cap)
        return;
    size_t nc = *cap ? *cap : 1u << 16;
    while (nc < len + need)
        nc *= 2;
    uint8_t *b = realloc(*buf, nc);
    if (!b)
        die("out of memory in the slow peer");
    *buf = b;
    *cap = nc;
}

/* Appends a frame with body_len bytes of body to the send buffer and
 * returns where the body goes. */
static uint8_t *slow_frame(struct slow_peer *sp, uint8_t type, uint64_t req_id, size_t body_len)
{
    slow_reserve(&sp->tx, &sp->tx_cap, sp->tx_len, PROTO_HDR_LEN + body_len);
    uint8_t *f = sp->tx + sp->tx_len;
    proto_put_hdr(f, type, 0, req_id, (uint32_t)body_len);
    sp->tx_len += PROTO_HDR_LEN + body_len;
    return f + PROTO_HDR_LEN;
}

/* Writes the send buffer out.  The socket blocks, with a 5 s send timeout
 * (SO_SNDTIMEO) as the bound. */
static int slow_flush(struct slow_peer *sp)
{
    size_t off = 0;
    while (off < sp->tx_len) {
        ssize_t w = write(sp->fd, sp->tx + off, sp->tx_len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return slow_fail(sp, "write: %s", w < 0 ? strerror(errno) : "nothing written");
        off += (size_t)w;
    }
    sp->tx_len = 0;
    return 0;
}

static void slow_assign(struct slow_peer *sp, const struct frame_hdr *h, const uint8_t *body)
{
    struct msg_task m;
    if (proto_parse_task(body, h->body_len, &m) != 0) {
        slow_fail(sp, "ASSIGN %" PRIx64 " does not parse", h->req_id);
        return;
    }
    if (sp->qn == sp->qcap) {
        if (sp->qhead > 0) {
            memmove(sp->q, sp->q + sp->qhead, (sp->qn - sp->qhead) * sizeof(*sp->q));
            sp->qn -= sp->qhead;
            sp->qhead = 0;
        } else {
            size_t nc = sp->qcap ? sp->qcap * 2 : 64;
            struct slow_reply *q = realloc(sp->q, nc * sizeof(*q));
            if (!q)
                die("out of memory in the slow peer");
            sp->q = q;
            sp->qcap = nc;
        }
    }
    struct slow_reply *x = &sp->q[sp->qn++];
    x->task_id = h->req_id;
    x->arrived_us = now_us();
    x->len = PROTO_RESULT_PREFIX + m.input.len;
    x->body = malloc(x->len);
    if (!x->body)
        die("out of memory in the slow peer");
    if (m.input.len)
        memcpy(x->body + PROTO_RESULT_PREFIX, m.input.p, m.input.len);
    atomic_fetch_add(&sp->assigned, 1);
}

/* Handles every whole frame in the receive buffer; -1 when the connection
 * must end. */
static int slow_frames(struct slow_peer *sp)
{
    size_t off = 0;
    int rc = 0;
    while (rc == 0) {
        struct frame_hdr h;
        int64_t n = proto_decode_hdr(sp->rx + off, sp->rx_len - off, PROTO_MAX_BODY_DEFAULT, &h);
        if (n < 0) {
            rc = slow_fail(sp, "malformed frame from the coordinator");
            break;
        }
        if (n == 0) {
            /* A frame larger than the buffer: make room for all of it. */
            if (sp->rx_len - off >= PROTO_HDR_LEN)
                slow_reserve(&sp->rx, &sp->rx_cap, sp->rx_len, PROTO_HDR_LEN + h.body_len);
            break;
        }
        const uint8_t *body = sp->rx + off + PROTO_HDR_LEN;
        switch (h.type) {
        case MSG_REGISTER_OK: {
            uint64_t id = 0;
            if (proto_parse_u64(body, h.body_len, &id) != 0)
                rc = slow_fail(sp, "malformed REGISTER_OK");
            sp->id = (uint32_t)id;
            break;
        }
        case MSG_ASSIGN:
            slow_assign(sp, &h, body);
            rc = atomic_load(&sp->failed) ? -1 : 0;
            break;
        case MSG_PING:
            memcpy(slow_frame(sp, MSG_PONG, h.req_id, h.body_len), body, h.body_len);
            atomic_fetch_add(&sp->pings, 1);
            break;
        case MSG_CANCEL:
            atomic_fetch_add(&sp->cancels, 1);
            break;
        case MSG_ERROR: {
            struct msg_error e;
            int ok = proto_parse_error(body, h.body_len, &e) == 0;
            rc = slow_fail(sp, "the coordinator sent ERROR %u: %.*s", ok ? e.code : 0,
                           ok ? (int)e.text.len : 0, ok ? (const char *)e.text.p : "");
            break;
        }
        default: /* HELLO_OK, PONG, BLOB_DATA: nothing to do */
            break;
        }
        off += (size_t)n;
    }
    memmove(sp->rx, sp->rx + off, sp->rx_len - off);
    sp->rx_len -= off;
    return rc;
}

/* Waits up to wait_us for input and handles it; -1 when the connection
 * ended. */
static int slow_read(struct slow_peer *sp, uint64_t wait_us)
{
    struct pollfd pf = {sp->fd, POLLIN, 0};
    struct timespec ts = {(time_t)(wait_us / 1000000), (long)(wait_us % 1000000) * 1000L};
    int n = ppoll(&pf, 1, &ts, NULL);
    if (n < 0)
        return errno == EINTR ? 0 : slow_fail(sp, "poll: %s", strerror(errno));
    if (n == 0)
        return 0;
    slow_reserve(&sp->rx, &sp->rx_cap, sp->rx_len, 1u << 16);
    ssize_t r = read(sp->fd, sp->rx + sp->rx_len, sp->rx_cap - sp->rx_len);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (r <= 0)
        return slow_fail(sp, "%s", r < 0 ? strerror(errno) : "the coordinator closed the connection");
    sp->rx_len += (size_t)r;
    return slow_frames(sp);
}

static void *slow_main(void *arg)
{
    struct slow_peer *sp = arg;
    while (!atomic_load(&sp->stop)) {
        uint64_t now = now_us();
        while (sp->qhead < sp->qn && sp->q[sp->qhead].arrived_us + sp->delay_us <= now) {
            struct slow_reply *x = &sp->q[sp->qhead++];
            uint64_t held = now - x->arrived_us;
            proto_put_result_head(x->body, 0, held > UINT32_MAX ? UINT32_MAX : (uint32_t)held);
            memcpy(slow_frame(sp, MSG_RESULT, x->task_id, x->len), x->body, x->len);
            free(x->body);
            atomic_fetch_add(&sp->answered, 1);
        }
        if (sp->qhead == sp->qn)
            sp->qhead = sp->qn = 0;
        if (sp->tx_len && slow_flush(sp) != 0)
            break;
        /* At most 20 ms, so that a stop is seen soon. */
        uint64_t wait = 20000;
        if (sp->qhead < sp->qn) {
            uint64_t due = sp->q[sp->qhead].arrived_us + sp->delay_us;
            wait = due <= now ? 0 : due - now < wait ? due - now : wait;
        }
        if (slow_read(sp, wait) != 0)
            break;
    }
    /* A peer that stopped answering must not hold its tasks until the
     * coordinator's peer timeout: its end shows at once, the tasks are
     * requeued, and the run's end reports the failure. */
    if (atomic_load(&sp->failed))
        shutdown(sp->fd, SHUT_RDWR);
    return NULL;
}

/* Connects to the coordinator, registers (waiting up to 5 s for
 * REGISTER_OK) and starts the peer's thread. */
static struct slow_peer *slow_peer_start(const struct coord_proc *cp, int64_t slots)
{
    struct slow_peer *sp = calloc(1, sizeof(*sp));
    if (!sp)
        die("out of memory");
    sp->delay_us = (uint64_t)opt.slow_ms * 1000;
    char host[64];
    snprintf(host, sizeof(host), "%s", cp->addr);
    char *colon = strrchr(host, ':');
    if (!colon)
        die("coordinator address %s has no port", cp->addr);
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("slow peer: %s is not an IPv4 address", host);
    sp->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sp->fd < 0 || connect(sp->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("slow peer: connect to %s: %s", cp->addr, strerror(errno));
    /* Each answer goes at once, as p2c2r-peer's do; a write that cannot
     * proceed for 5 s fails rather than hanging the benchmark. */
    int one = 1;
    struct timeval tv = {5, 0};
    setsockopt(sp->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(sp->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

    static const char name[] = "bench-slow-peer";
    struct msg_hello hello = {PROTO_VERSION, PROTO_VERSION, ROLE_PEER, {NULL, 0},
                              {(const uint8_t *)name, sizeof(name) - 1}};
    proto_put_hello(slow_frame(sp, MSG_HELLO, 1, proto_hello_size(&hello)), &hello);
    struct msg_register reg;
    memset(&reg, 0, sizeof(reg));
    reg.cores = 1;
    reg.slots = (uint16_t)slots;
    reg.mem_bytes = 1ull << 30;
    reg.ntypes = 1;
    reg.types[0].name.p = (const uint8_t *)"echo";
    reg.types[0].name.len = 4;
    reg.types[0].version = 1;
    reg.types[0].flags = PROTO_TYPE_F_DETERMINISTIC;
    proto_put_register(slow_frame(sp, MSG_PEER_REGISTER, 2, proto_register_size(&reg)), &reg);
    if (slow_flush(sp) != 0)
        die("slow peer: %s", sp->failure);
    /* HELLO_OK, then REGISTER_OK; ASSIGNs that come with it are queued. */
    uint64_t end = now_us() + 5000000;
    while (sp->id == 0) {
        uint64_t now = now_us();
        if (now >= end)
            die("slow peer: no REGISTER_OK within 5 s");
        if (slow_read(sp, end - now) != 0)
            die("slow peer: %s", sp->failure);
    }
    if (pthread_create(&sp->thread, NULL, slow_main, sp) != 0)
        die("pthread_create failed");
    return sp;
}

/* Stops the thread (within about 20 ms), closes the connection (answers
 * not sent yet are dropped) and frees the peer.  NULL is a no-op. */
static void slow_peer_stop(struct slow_peer *sp)
{
    if (!sp)
        return;
    atomic_store(&sp->stop, 1);
    pthread_join(sp->thread, NULL);
    close(sp->fd);
    for (size_t i = sp->qhead; i < sp->qn; i++)
        free(sp->q[i].body);
    free(sp->q);
    free(sp->rx);
    free(sp->tx);
    free(sp);
}

enum { SLOW_FAST_ONLY, SLOW_HEDGE, SLOW_NO_HEDGE, SLOW_RUNS };
static const char *const slow_run_name[SLOW_RUNS] = {"fast_only", "hedge", "no_hedge"};

struct slow_run {
    double tps, p50, p90, p99, p999, max, tasks;
    double hedges, hedge_wins, late_results, hedged;
    double on_slow, slow_won, slow_cancels, other_pct;
    double coord_us, slow_cpu_pct; /* coordinator CPU per task; the slow peer thread's CPU */
};

/* CPU time the slow peer's thread has used, microseconds. */
static uint64_t slow_peer_cpu_us(const struct slow_peer *sp)
{
    clockid_t id;
    struct timespec ts;
    if (!sp || pthread_getcpuclockid(sp->thread, &id) != 0 || clock_gettime(id, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* CPU of this process (every thread, the slow peer's too) and of all its
 * children (coordinator, peers), and of the machine. */
static struct ours ours_tree_sample(void)
{
    struct ours o;
    o.wall = now_us();
    o.ours = tree_cpu_us(getpid());
    o.machine = machine_busy_us();
    return o;
}

/* One run: a fresh p2c2rd (with --no-hedge for SLOW_NO_HEDGE), the fast
 * p2c2r-peer processes and, except for SLOW_FAST_ONLY, the slow peer; 1 s
 * of untimed load, so that the coordinator knows each peer's speed and the
 * type's attempt times (hedging waits for 20 samples), then --seconds of
 * measured load. */
static void slow_one(int kind, int round, int64_t slots, struct slow_run *out)
{
    char tag[64];
    snprintf(tag, sizeof(tag), "slow-%s-r%d", slow_run_name[kind], round);
    struct coord_proc cp;
    coord_start(&cp, tag, kind == SLOW_NO_HEDGE ? "--no-hedge" : NULL);
    pid_t pids[MAX_CHILDREN / 2];
    int nfast = (int)opt.churn_peers;
    for (int i = 0; i < nfast; i++)
        pids[i] = peer_start(&cp, 1, slots, tag);
    struct slow_peer *sp = kind == SLOW_FAST_ONLY ? NULL : slow_peer_start(&cp, slots);
    p2c2r_client *c = client_connect(&cp);
    wait_peers(c, nfast + (sp != NULL));
    drive(c, 0, 1000000, 0, P2C2R_TASK_NOCACHE, NULL);

    int64_t k0[NCOUNTERS], k1[NCOUNTERS];
    char counters[512];
    coord_counters(c, NULL, k0, counters, sizeof(counters));
    uint64_t a0 = sp ? atomic_load(&sp->assigned) : 0, x0 = sp ? atomic_load(&sp->cancels) : 0;
    struct tally t = {.watch_peer = sp ? sp->id : 0};
    pid_t prof = profiler_start(cp.pid);
    struct ours o0 = ours_tree_sample();
    uint64_t cc0 = proc_cpu_us(cp.pid), sc0 = slow_peer_cpu_us(sp);
    drive(c, 0, (uint64_t)opt.seconds * 1000000, 0, P2C2R_TASK_NOCACHE, &t);
    uint64_t cc1 = proc_cpu_us(cp.pid), sc1 = slow_peer_cpu_us(sp);
    struct ours o1 = ours_tree_sample();
    profiler_stop(prof);
    uint64_t a1 = sp ? atomic_load(&sp->assigned) : 0, x1 = sp ? atomic_load(&sp->cancels) : 0;
    coord_counters(c, k0, k1, counters, sizeof(counters));
    if (sp && atomic_load(&sp->failed))
        die("%s: the slow peer failed: %s", tag, sp->failure);
    if (t.failed || t.mismatched)
        die("%s: %" PRIu64 " tasks failed, %" PRIu64 " came back with the wrong output", tag, t.failed,
            t.mismatched);

    tally_sort(&t);
    out->tasks = (double)t.nlat;
    out->tps = (double)t.nlat / ((double)(t.t1 - t.t0) / 1e6);
    out->p50 = tally_pct(&t, 0.50);
    out->p90 = tally_pct(&t, 0.90);
    out->p99 = tally_pct(&t, 0.99);
    out->p999 = tally_pct(&t, 0.999);
    out->max = t.nlat ? t.lat[t.nlat - 1] : 0;
    out->hedges = (double)(k1[2] - k0[2]);
    out->hedge_wins = (double)(k1[3] - k0[3]);
    out->late_results = (double)(k1[7] - k0[7]);
    out->hedged = (double)t.hedged;
    out->on_slow = (double)(a1 - a0);
    out->slow_won = (double)t.watched;
    out->slow_cancels = (double)(x1 - x0);
    out->other_pct = other_pct(&o0, &o1);
    out->coord_us = t.nlat ? (double)(cc1 - cc0) / (double)t.nlat : 0;
    out->slow_cpu_pct = (double)(sc1 - sc0) * 100.0 / (double)(t.t1 - t.t0);
    free(t.lat);

    p2c2r_client_close(c);
    slow_peer_stop(sp);
    for (int i = 0; i < nfast; i++)
        child_stop(pids[i]);
    child_stop(cp.pid);
    printf("{\"bench\":\"slow\",\"run\":\"%s\",\"round\":%d,\"fast_peers\":%d,\"slow_peer\":%s"
           ",\"slots\":%" PRId64 ",\"slow_ms\":%" PRId64 ",\"inflight\":%" PRId64 ",\"size\":%" PRId64
           ",\"seconds\":%" PRId64 ",\"tasks\":%.0f,\"tasks_per_s\":%.0f,\"p50_us\":%.0f"
           ",\"p90_us\":%.0f,\"p99_us\":%.0f,\"p999_us\":%.0f,\"max_us\":%.0f,\"hedged_results\":%.0f"
           ",\"slow_assigned\":%.0f,\"slow_won\":%.0f,\"slow_cancels\":%.0f"
           ",\"coord_cpu_us_per_task\":%.3f,\"slow_peer_cpu_pct\":%.1f,\"other_cpu_pct\":%.1f"
           ",\"coord\":{%s}}\n",
           slow_run_name[kind], round, nfast, sp ? "true" : "false", slots, opt.slow_ms, opt.inflight,
           opt.size, opt.seconds, out->tasks, out->tps, out->p50, out->p90, out->p99, out->p999,
           out->max, out->hedged, out->on_slow, out->slow_won, out->slow_cancels, out->coord_us,
           out->slow_cpu_pct, out->other_pct, counters);
    fflush(stdout);
}

/* Per-round ratios a[k].field / b[k].field and their median. */
static double slow_ratio(const char *what, const struct slow_run *a, const struct slow_run *b,
                         size_t field, int R)
{
    double v[MAX_ROUNDS];
    printf("  %-30s", what);
    for (int k = 0; k < R; k++) {
        double x = *(const double *)((const char *)&a[k] + field);
        double y = *(const double *)((const char *)&b[k] + field);
        v[k] = y > 0 ? x / y : 0;
        printf(" %7.3f", v[k]);
    }
    double m = median(v, R);
    printf("   median %.3f\n", m);
    return m;
}

static int bench_slow(void)
{
    if (opt.churn_peers < 1 || opt.churn_peers > MAX_CHILDREN / 2 - 2)
        die("--peers for slow is 1..%d", MAX_CHILDREN / 2 - 2);
    int64_t slots = opt.slots ? opt.slots : (opt.inflight + opt.churn_peers - 1) / opt.churn_peers;
    static struct slow_run r[SLOW_RUNS][MAX_ROUNDS];
    for (int round = 0; round < opt.rounds; round++)
        for (int kind = 0; kind < SLOW_RUNS; kind++) {
            fprintf(stderr, "bench_sched: slow round %d/%" PRId64 ", %s\n", round + 1, opt.rounds,
                    slow_run_name[kind]);
            slow_one(kind, round + 1, slots, &r[kind][round]);
        }
    int R = (int)opt.rounds;
    printf("\nslow: %" PRId64 " p2c2r-peer (--slots %" PRId64 ") + 1 slow peer (%" PRId64
           " slots, answers after %" PRId64 " ms), %" PRId64 " echo tasks of %" PRId64
           " B in flight (NOCACHE), %" PRId64 " s per run; medians of %d rounds\n",
           opt.churn_peers, slots, slots, opt.slow_ms, opt.inflight, opt.size, opt.seconds, R);
    printf("%-9s %9s %7s %7s %8s %9s %8s %7s %6s %6s %7s %8s %9s %6s %7s\n", "run", "tasks/s",
           "p50 us", "p90 us", "p99 us", "p99.9 us", "max us", "hedges", "wins", "late", "on slow",
           "slow won", "coord us", "slow %", "other %");
    for (int kind = 0; kind < SLOW_RUNS; kind++) {
        double v[14][MAX_ROUNDS];
        for (int k = 0; k < R; k++) {
            const struct slow_run *x = &r[kind][k];
            double row[14] = {x->tps, x->p50, x->p90, x->p99, x->p999, x->max, x->hedges,
                              x->hedge_wins, x->late_results, x->on_slow, x->slow_won,
                              x->coord_us, x->slow_cpu_pct, x->other_pct};
            for (int j = 0; j < 14; j++)
                v[j][k] = row[j];
        }
        printf("%-9s %9.0f %7.0f %7.0f %8.0f %9.0f %8.0f %7.0f %6.0f %6.0f %7.0f %8.0f %9.3f %6.1f "
               "%7.1f\n",
               slow_run_name[kind], median(v[0], R), median(v[1], R), median(v[2], R),
               median(v[3], R), median(v[4], R), median(v[5], R), median(v[6], R), median(v[7], R),
               median(v[8], R), median(v[9], R), median(v[10], R), median(v[11], R),
               median(v[12], R), median(v[13], R));
    }
    printf("per round [p99 / p99.9 us]:");
    for (int k = 0; k < R; k++)
        printf(" r%d fast_only %.0f/%.0f, hedge %.0f/%.0f, no_hedge %.0f/%.0f;", k + 1,
               r[SLOW_FAST_ONLY][k].p99, r[SLOW_FAST_ONLY][k].p999, r[SLOW_HEDGE][k].p99,
               r[SLOW_HEDGE][k].p999, r[SLOW_NO_HEDGE][k].p99, r[SLOW_NO_HEDGE][k].p999);
    printf("\nratios in each round:\n");
    const struct slow_run *h = r[SLOW_HEDGE], *f = r[SLOW_FAST_ONLY], *nh = r[SLOW_NO_HEDGE];
    double q1 = slow_ratio("p99 hedge / fast_only", h, f, offsetof(struct slow_run, p99), R);
    double q2 = slow_ratio("p99 hedge / no_hedge", h, nh, offsetof(struct slow_run, p99), R);
    double q3 = slow_ratio("p99.9 hedge / fast_only", h, f, offsetof(struct slow_run, p999), R);
    double q4 = slow_ratio("p99.9 hedge / no_hedge", h, nh, offsetof(struct slow_run, p999), R);
    double q5 = slow_ratio("tasks/s hedge / fast_only", h, f, offsetof(struct slow_run, tps), R);
    printf("{\"bench\":\"slow_ratio\",\"rounds\":%d,\"slow_ms\":%" PRId64
           ",\"p99_hedge_over_fast\":%.3f,\"p99_hedge_over_no_hedge\":%.3f"
           ",\"p999_hedge_over_fast\":%.3f,\"p999_hedge_over_no_hedge\":%.3f"
           ",\"tps_hedge_over_fast\":%.3f}\n",
           R, opt.slow_ms, q1, q2, q3, q4, q5);
    return 0;
}

/* ---- main -------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const struct cliopt opts[] = {
        {"bin-dir", 0, OPT_STR, "DIR", 0, 0, "where p2c2rd and p2c2r-peer are (default: this build's directory)", &opt.bin_dir},
        {"peers", 0, OPT_STR, "LIST", 0, 0, "scale: peer connections, comma list (default 100,10000); churn: peer processes (default 4); slow: fast peer processes (default 3)", &opt.peers},
        {"rounds", 0, OPT_INT, "R", 1, MAX_ROUNDS, "rounds; every round measures every case once (default 3)", &opt.rounds},
        {"tasks", 0, OPT_INT, "N", 1, 100000000, "scale: measured tasks per run (default 500000)", &opt.tasks},
        {"inflight", 0, OPT_INT, "K", 1, 1 << 20, "tasks kept in flight (default 256; slow: 64)", &opt.inflight},
        {"size", 0, OPT_INT, "BYTES", 0, 1 << 16, "input bytes per echo task (default 64)", &opt.size},
        {"slots", 0, OPT_INT, "N", 0, 65535, "--slots of each peer connection (default ceil(inflight / peers); slow: the slow peer has as many)", &opt.slots},
        {"warmup", 0, OPT_INT, "N", 0, 10000000, "untimed tasks before each run (default 2000; churn: 5x)", &opt.warmup},
        {"idle-ms", 0, OPT_INT, "MS", 100, 60000, "scale: idle sample before the load (default 2000)", &opt.idle_ms},
        {"seconds", 0, OPT_INT, "S", 1, 300, "churn: length of each phase (default 10); slow: of each measured run (default 5)", &opt.seconds},
        {"kill-ms", 0, OPT_INT, "MS", 10, 60000, "churn: one peer is killed this often (default 1000)", &opt.kill_ms},
        {"hang", 0, OPT_FLAG, NULL, 0, 0, "churn: SIGSTOP the victim (it hangs, connection open) and SIGKILL it one --kill-ms later", &opt.hang},
        {"deadline-ms", 0, OPT_INT, "MS", 1, 3600000, "churn: deadline_ms of every task (default 100)", &opt.deadline_ms},
        {"slow-ms", 0, OPT_INT, "MS", 0, 60000, "slow: how long the slow peer holds each task (default 20)", &opt.slow_ms},
        {"coord-arg", 0, OPT_MULTI, "ARG", 0, 0, "one more argument for p2c2rd (repeat for several)", &opt.coord_args},
        {"profile-cmd", 0, OPT_STR, "CMD", 0, 0, "run CMD PID (PID: p2c2rd's) during each measured run (scale, slow; churn: steady phase), stopped with SIGINT", &opt.profile_cmd},
        {"keep-logs", 0, OPT_FLAG, NULL, 0, 0, "keep the daemons' logs (their directory is printed)", &opt.keep_logs},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "bench_sched",
                          "[OPTIONS] scale|churn|slow",
                          "The scheduler's benchmarks (see the comment at the top of bench/bench_sched.c):\n"
                          "  scale  coordinator CPU per task, RSS and W2 throughput with 100 and 10,000 peers\n"
                          "  churn  latency tail of W2-like load with deadlines while peers are killed\n"
                          "  slow   latency tail with one peer that answers late, hedging on and off",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1 ||
        (strcmp(argv[pos], "scale") && strcmp(argv[pos], "churn") && strcmp(argv[pos], "slow"))) {
        fprintf(stderr, "bench_sched: say 'scale', 'churn' or 'slow'\nTry 'bench_sched --help'.\n");
        return 2;
    }
    int churn = strcmp(argv[pos], "churn") == 0, slow = strcmp(argv[pos], "slow") == 0;
    if (opt.inflight < 0)
        opt.inflight = slow ? 64 : 256;
    if (opt.seconds < 0)
        opt.seconds = slow ? 5 : 10;
    if (slow && !opt.peers)
        opt.churn_peers = 3;
    if ((churn || slow) && opt.peers) {
        char *end;
        opt.churn_peers = strtoll(opt.peers, &end, 10);
        if (*end) {
            fprintf(stderr, "bench_sched: %s --peers is one number\n", argv[pos]);
            return 2;
        }
    }

    /* 10,000 peer connections need as many descriptors in the coordinator
     * and in the peer process: take the whole hard limit, which they
     * inherit. */
    struct rlimit rl = {RLIM_INFINITY, RLIM_INFINITY};
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (!churn && !slow) {
        int64_t counts[MAX_COUNTS];
        int nc = parse_counts(opt.peers ? opt.peers : "100,10000", counts);
        for (int i = 0; i < nc; i++)
            if ((rlim_t)counts[i] + 64 > rl.rlim_cur) {
                fprintf(stderr,
                        "bench_sched: %" PRId64 " peer connections need about %" PRId64
                        " file descriptors; the limit is %llu (raise the hard limit: ulimit -Hn)\n",
                        counts[i], counts[i] + 64, (unsigned long long)rl.rlim_cur);
                return 2;
            }
    }

    snprintf(tmpdir, sizeof(tmpdir), "%s/bench_sched.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        tmpdir[0] = '\0';
        die("mkdtemp: %s", strerror(errno));
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGHUP, on_signal);
    signal(SIGPIPE, SIG_IGN);
    fprintf(stderr, "bench_sched: daemons from %s; p2c2rd options:", opt.bin_dir);
    for (int i = 0; i < opt.coord_args.n; i++)
        fprintf(stderr, " %s", opt.coord_args.v[i]);
    fprintf(stderr, "%s\n", opt.coord_args.n ? "" : " defaults (result cache, hedging, admission on)");
    rc = churn ? bench_churn() : slow ? bench_slow() : bench_scale();
    cleanup();
    return rc;
}
