/* bench_byzantine.c - what untrusted peers cost (issue 11, "Benchmarks"):
 * wrong results delivered, tasks until each liar is quarantined, coordinator
 * and peer CPU per task, throughput and the latency of realtime tasks, with
 * none, 10% and 30% of the peers lying, against an all-honest run of the
 * same machine in the same minute.
 *
 * Each scenario starts a fresh p2c2rd (--verify POLICY, on 127.0.0.1 port 0)
 * and --peers peers: the honest ones are real p2c2r-peer processes (one
 * connection, its own key, --slots each), the liars are the integration
 * harness's fake peers (a thread of this process each, with its own signed
 * identity) in lie mode: "always" lies on every task from the first, "btl"
 * (behave then lie) answers its first --behave tasks honestly and then lies
 * on 10% of them.  A liar answers at once with a wrong digest of the right
 * length and status OK.  Liars are independent (each tells its own lie, so
 * two liars disagree) except in the "-collude" scenarios, where every liar
 * tells the same lie for a task, as identities of one attacker that the
 * operator has not grouped would.  Every peer serves sha256 only.
 *
 * Load, from this process on one thread: two renters (client connections)
 * submit --tasks sha256 tasks of 64 distinct bytes each, NOCACHE:
 *   bulk      priority interactive, --window in flight;
 *   realtime  priority realtime, --rt-window in flight, --rt-pct of the
 *             tasks, paced with the bulk renter's submissions so both end
 *             together; its submit-to-result latency is measured here.
 * Every result with status OK is checked against OpenSSL's digest of its
 * input: "wrong" counts wrong results delivered as successes, each also
 * charged to the liar that produced it (DELIVER's peer_id).
 *
 * Measured per scenario:
 *   - coordinator CPU (utime + stime of every thread, from
 *     /proc/PID/task/TID/schedstat) and peers' CPU (the p2c2r-peer
 *     processes, plus the fake liars' threads of this process) per task,
 *     over the whole run and over its "steady" part (after the first 20% of
 *     the tasks, when every honest peer has a record: it is spot-checked at
 *     the floor rate by then);
 *   - runs per task (RESULTs with status OK that all peers sent, from STATS
 *     peers[].done, over the tasks), the coordinator's verify counters, and
 *     the honest peers quarantined at the end (outvoted by colluders);
 *   - for each liar: the tasks it was given (it gets none once quarantined,
 *     which STATS confirms at the end), its lies, the wrong results of its
 *     delivered, and the renter outcomes counted when it was given its last
 *     task (read from its counters on every turn of the load loop: the
 *     moment of its quarantine, to within a window);
 *   - throughput (first submit to last result), realtime p50 / p99;
 *   - other_cpu_pct: CPU used on the machine by anything else during the
 *     run, in % of all cores (as bench/compare.sh), to judge the noise.
 * --rounds runs every scenario that many times, in order, round after
 * round; the tables give medians over rounds, and each ratio is the median
 * of the ratios within a round against that round's all-honest runs, which
 * ran seconds before: "none" (--verify none: what checking costs) and
 * "honest" (adaptive).
 *
 * Checks (the exit status is 1 when one fails, as in a test): every task
 * gets exactly one outcome; no wrong result is delivered where none may be
 * (all-honest runs, independent always-liars under adaptive, anything
 * under quorum2 without collusion); every independent always-liar ends
 * quarantined.  Colluding liars are measured, not judged: adaptive's single
 * check can go to a co-liar.  Tasks that fail (ETASK) are counted, not
 * judged.  Nothing is asserted about speed.
 *
 * Every wait is bounded (the harness's watchdog, and STALL_MS without an
 * outcome), and every process started dies with this one.  Usage:
 * bench_byzantine --help.  Figures: docs/PERFORMANCE.md, "Untrusted
 * peers". */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_harness.h"
#include "procstat.h"

#ifndef BENCH_BIN_DIR
#define BENCH_BIN_DIR "."
#endif

#define MAX_PEERS 64
#define MAX_SCEN 16
#define MAX_ROUNDS 20
#define INPUT_LEN 64
#define POLL_BATCH 256
#define STALL_MS 30000
#define KIND_RT (1ull << 32) /* p2c2r_task.user: kind, then the task's index */

/* ---- options --------------------------------------------------------------- */

static struct {
    const char *bin_dir, *scenarios;
    int64_t tasks, peers, slots, window, rt_window, rt_pct, behave, rounds;
    int quick, json;
} opt = {
    .bin_dir = BENCH_BIN_DIR,
    .scenarios = "none,honest,always-10,always-30,always-30-collude,btl-10,btl-30,btl-30-quorum2",
    .tasks = 100000,
    .peers = 10,
    .slots = 4,
    .window = 64,
    .rt_window = 4,
    .rt_pct = 10,
    .behave = 1000,
    .rounds = 1,
};

/* ---- scenarios --------------------------------------------------------------- */

struct scen_def {
    const char *name;
    const char *verify; /* p2c2rd --verify */
    int liar_pct;       /* share of --peers that lie */
    int always;         /* 1: lies on every task; 0: behaves for --behave, then lies 10% */
    int collude;        /* every liar tells the same lie */
};

static const struct scen_def scen_defs[] = {
    {"none", "none", 0, 0, 0},
    {"honest", "adaptive", 0, 0, 0},
    {"always-10", "adaptive", 10, 1, 0},
    {"always-30", "adaptive", 30, 1, 0},
    {"always-30-collude", "adaptive", 30, 1, 1},
    {"btl-10", "adaptive", 10, 0, 0},
    {"btl-30", "adaptive", 30, 0, 0},
    {"btl-30-collude", "adaptive", 30, 0, 1},
    {"btl-10-quorum2", "quorum2", 10, 0, 0},
    {"btl-30-quorum2", "quorum2", 30, 0, 0},
    {"honest-quorum2", "quorum2", 0, 0, 0},
};
#define NSCEN_DEFS ((int)(sizeof(scen_defs) / sizeof(scen_defs[0])))

struct liar {
    struct h_fake_peer *fp;
    uint32_t id;
    int tid;
    long wrong;            /* its wrong results delivered as successes */
    long last_assigned;    /* its ASSIGN count as last read */
    long long last_at;     /* renter outcomes when that count last grew */
    struct h_fake_counts fc;
    int quarantined;       /* at the end, from STATS */
};

struct result {
    const struct scen_def *def;
    int nliars;
    struct liar liars[MAX_PEERS];
    long long tasks, done, ok, wrong, wrong_verified, failed, verified_flag, dup;
    double secs, tasks_per_s;
    double coord_us, peer_us, coord_us_steady, peer_us_steady, liar_us; /* per task */
    double rt_p50_us, rt_p99_us, bulk_p50_us, bulk_p99_us;
    double runs_per_task, other_cpu_pct;
    long long verify_runs, verified, unverified, disagreements, liars_caught, quarantines;
    int honest_quarantined; /* honest peers in state quarantined at the end */
};

static struct result results[MAX_ROUNDS][MAX_SCEN];

/* ---- /proc ------------------------------------------------------------------ */

/* CPU of one thread (schedstat: ns on CPU), microseconds; 0 when gone. */
static uint64_t thread_cpu_us(int pid, const char *tid)
{
    char p[128];
    snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid, tid);
    FILE *f = fopen(p, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v / 1000;
}

/* CPU time of every thread of pid, microseconds. */
static uint64_t proc_cpu_us(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return 0;
    uint64_t us = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            us += thread_cpu_us(pid, e->d_name);
    closedir(d);
    return us;
}

/* The thread ids of this process, into tids (at most cap); returns how many. */
static int self_tids(int *tids, int cap)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < cap)
        if (e->d_name[0] != '.')
            tids[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    return n;
}

static uint64_t self_cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* CPU of the daemons and of the liars' threads, sampled together. */
struct cpu_sample {
    uint64_t t_us, coord, peers, liars, self, machine;
};

static void cpu_sample(struct cpu_sample *s, const struct h_proc *co, struct h_proc *const *honest, int nhonest,
                       const struct result *r)
{
    s->t_us = now_us();
    s->coord = proc_cpu_us(co->pid);
    s->peers = 0;
    for (int i = 0; i < nhonest; i++)
        s->peers += proc_cpu_us(honest[i]->pid);
    s->liars = 0;
    for (int i = 0; i < r->nliars; i++) {
        char tid[16];
        snprintf(tid, sizeof(tid), "%d", r->liars[i].tid);
        s->liars += thread_cpu_us((int)getpid(), tid);
    }
    s->self = self_cpu_us();
    s->machine = machine_busy_us();
}

/* ---- tasks ------------------------------------------------------------------ */

static uint64_t scen_seed;

/* Task (kind, i)'s 64 input bytes: its index first (so inputs are
 * distinct), then a pattern of the scenario and the index. */
static void task_input(uint64_t kind, uint32_t i, uint8_t in[INPUT_LEN])
{
    h_fill(in, INPUT_LEN, scen_seed * 1000003u + kind + i);
    memcpy(in, &i, sizeof(i));
    in[4] = kind ? 'r' : 'b';
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_of(uint32_t *v, long long n, double q)
{
    if (n <= 0)
        return NAN;
    long long k = (long long)ceil(q * (double)n) - 1;
    if (k < 0)
        k = 0;
    return v[k];
}

/* ---- STATS ------------------------------------------------------------------- */

static json_t *stats_of(p2c2r_client *c)
{
    char *lib = NULL;
    if (p2c2r_client_stats(c, h_bound_ms(10000), &lib) != 0)
        return NULL;
    json_t *v = h_json_parse(lib);
    p2c2r_stats_free(lib);
    return v;
}

static int peer_quarantined(const json_t *s, uint32_t id)
{
    char path[64];
    snprintf(path, sizeof(path), "peers[id=%u].state", id);
    return h_json_str_is(s, path, "quarantined");
}

/* ---- one scenario ---------------------------------------------------------------- */

/* The load: both renters to the end; fills r's outcome counts and
 * latencies, and takes the steady-state CPU sample once warm outcomes are
 * in. */
struct load {
    p2c2r_client *bulk, *rt, *stats;
    long long n_bulk, n_rt, warm;
    uint64_t *rt_sent, *bulk_sent; /* submit times, us */
    uint32_t *rt_lat, *bulk_lat;
    uint8_t *seen_rt, *seen_bulk;
    long long nrt_lat, nbulk_lat;
};

static int submit_one(p2c2r_client *c, uint64_t kind, uint32_t i)
{
    uint8_t in[INPUT_LEN];
    task_input(kind, i, in);
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "sha256";
    t.input = in;
    t.input_len = sizeof(in);
    t.priority = kind ? P2C2R_PRIO_REALTIME : P2C2R_PRIO_INTERACTIVE;
    t.flags = P2C2R_TASK_NOCACHE;
    t.user = kind | i;
    p2c2r_ticket tk;
    return p2c2r_client_submit(c, &t, &tk);
}

static void judge(struct load *ld, struct result *r, const struct p2c2r_result *res, uint64_t now)
{
    uint64_t kind = res->user & KIND_RT;
    uint32_t i = (uint32_t)res->user;
    long long n = kind ? ld->n_rt : ld->n_bulk;
    uint8_t *seen = kind ? ld->seen_rt : ld->seen_bulk;
    if ((long long)i >= n) {
        H_FAIL("a result for a task never submitted (user %" PRIx64 ")", res->user);
        return;
    }
    if (seen[i]++) {
        r->dup++;
        H_FAIL("a second outcome for %s task %u", kind ? "realtime" : "bulk", i);
        return;
    }
    r->done++;
    if (kind)
        ld->rt_lat[ld->nrt_lat++] = (uint32_t)(now - ld->rt_sent[i]);
    else
        ld->bulk_lat[ld->nbulk_lat++] = (uint32_t)(now - ld->bulk_sent[i]);
    if (res->status != 0) {
        if (r->failed++ < 5)
            h_log("%s task %u: %s %.*s", kind ? "realtime" : "bulk", i, h_err(res->status),
                  (int)res->output_len, res->output ? (const char *)res->output : "");
        return;
    }
    uint8_t in[INPUT_LEN], md[32];
    task_input(kind, i, in);
    h_sha256(in, sizeof(in), md);
    r->verified_flag += (res->flags & P2C2R_RESULT_VERIFIED) != 0;
    if (res->output_len == sizeof(md) && memcmp(res->output, md, sizeof(md)) == 0) {
        r->ok++;
        return;
    }
    r->wrong++;
    r->wrong_verified += (res->flags & P2C2R_RESULT_VERIFIED) != 0;
    for (int k = 0; k < r->nliars; k++)
        if (r->liars[k].id == res->peer_id)
            r->liars[k].wrong++;
}

static void drain(struct load *ld, struct result *r, p2c2r_client *c, long long *inflight)
{
    int rc = p2c2r_client_process(c);
    H_REQUIRE(rc >= 0, "renter connection failed: %s", h_err(rc));
    static struct p2c2r_result out[POLL_BATCH];
    out[0].size = sizeof(out[0]);
    int n;
    while ((n = p2c2r_client_poll(c, out, POLL_BATCH, 0)) > 0) {
        uint64_t now = now_us();
        for (int k = 0; k < n; k++) {
            judge(ld, r, &out[k], now);
            p2c2r_result_release(&out[k]);
        }
        *inflight -= n;
    }
    H_REQUIRE(n >= 0, "poll: %s", h_err(n));
}

static void run_load(struct load *ld, struct result *r, struct h_proc *co, struct h_proc *const *honest, int nhonest,
                     struct cpu_sample *steady)
{
    long long bulk_sub = 0, rt_sub = 0, bulk_in = 0, rt_in = 0;
    long long total = ld->n_bulk + ld->n_rt, last_done = 0;
    uint64_t last_progress = now_us();
    int steady_taken = 0;
    while (r->done + r->dup < total) {
        while (bulk_sub < ld->n_bulk && bulk_in < opt.window) {
            int rc = submit_one(ld->bulk, 0, (uint32_t)bulk_sub);
            if (rc == P2C2R_EAGAIN)
                break;
            H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
            ld->bulk_sent[bulk_sub++] = now_us();
            bulk_in++;
        }
        /* Realtime work keeps pace with the bulk renter's submissions. */
        while (rt_sub < ld->n_rt && rt_in < opt.rt_window && rt_sub * ld->n_bulk <= bulk_sub * ld->n_rt) {
            int rc = submit_one(ld->rt, KIND_RT, (uint32_t)rt_sub);
            if (rc == P2C2R_EAGAIN)
                break;
            H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
            ld->rt_sent[rt_sub++] = now_us();
            rt_in++;
        }
        struct pollfd pf[2] = {
            {p2c2r_client_fd(ld->bulk), (short)(POLLIN | (p2c2r_client_want_write(ld->bulk) ? POLLOUT : 0)), 0},
            {p2c2r_client_fd(ld->rt), (short)(POLLIN | (p2c2r_client_want_write(ld->rt) ? POLLOUT : 0)), 0},
        };
        if (poll(pf, 2, 20) < 0 && errno != EINTR)
            H_REQUIRE(0, "poll: %s", strerror(errno));
        drain(ld, r, ld->bulk, &bulk_in);
        drain(ld, r, ld->rt, &rt_in);
        uint64_t now = now_us();
        if (r->done != last_done) {
            last_done = r->done;
            last_progress = now;
        } else if (now - last_progress > (uint64_t)h_bound_ms(STALL_MS) * 1000u) {
            H_REQUIRE(0, "no outcome for %d ms: %lld of %lld done, %lld + %lld in flight", h_bound_ms(STALL_MS),
                      r->done, total, bulk_in, rt_in);
        }
        if (!steady_taken && r->done >= ld->warm) {
            cpu_sample(steady, co, honest, nhonest, r);
            steady_taken = 1;
        }
        for (int i = 0; i < r->nliars; i++) {
            struct liar *l = &r->liars[i];
            struct h_fake_counts fc;
            h_fake_peer_counts(l->fp, &fc);
            if (fc.assigned > l->last_assigned) {
                l->last_assigned = fc.assigned;
                l->last_at = r->done;
            }
        }
    }
    if (!steady_taken)
        cpu_sample(steady, co, honest, nhonest, r);
}

static int liars_of(const struct scen_def *d)
{
    if (d->liar_pct == 0)
        return 0;
    int n = (int)((opt.peers * d->liar_pct + 50) / 100);
    return n < 1 ? 1 : n;
}

static void run_scenario(const struct scen_def *d, int index, int round, struct result *r)
{
    memset(r, 0, sizeof(*r));
    r->def = d;
    r->nliars = liars_of(d);
    int nhonest = (int)opt.peers - r->nliars;
    H_REQUIRE(nhonest >= 2, "%s: %d liars of %lld peers leave fewer than 2 honest", d->name, r->nliars, (long long)opt.peers);
    scen_seed = 0x62797a00u + (uint64_t)index * 131u + (uint64_t)round;
    h_phase("round %d, scenario %s: %d honest peers, %d liars, --verify %s", round + 1, d->name, nhonest, r->nliars,
            d->verify);

    const char *cargs[] = {"--verify", d->verify, "--log-level", "warn", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *honest[MAX_PEERS];
    const char *pargs[] = {"--log-level", "warn", NULL};
    for (int i = 0; i < nhonest; i++) {
        char name[48];
        snprintf(name, sizeof(name), "%s-honest-%d", d->name, i); /* the log and key of every round */
        honest[i] = h_peer_start(name, (int)opt.slots, "sha256", pargs);
    }
    for (int i = 0; i < r->nliars; i++) {
        struct liar *l = &r->liars[i];
        char name[48];
        snprintf(name, sizeof(name), "%s-liar-%d", d->name, i);
        /* Independent liars flip the first byte by masks of their own. */
        struct h_fake_peer_cfg c = {.name = name, .types = "sha256", .slots = (int)opt.slots, .delay_ms = 0,
                                    .lie_after = d->always ? 0 : (int)opt.behave, .lie_pct = d->always ? 100 : 10,
                                    .lie_seed = scen_seed * 31u + (uint64_t)i + 1,
                                    .lie_mask = d->collude ? 0x5a : (uint8_t)(0x11 * (i + 1))};
        int before[256], nb = self_tids(before, 256);
        l->fp = h_fake_peer_start(&c);
        l->id = h_fake_peer_id(l->fp);
        int after[256], na = self_tids(after, 256);
        l->tid = 0;
        for (int a = 0; a < na && !l->tid; a++) {
            int known = 0;
            for (int b = 0; b < nb; b++)
                known |= after[a] == before[b];
            if (!known)
                l->tid = after[a];
        }
        H_REQUIRE(l->tid > 0, "%s: the fake peer's thread was not found", name);
        l->last_at = -1;
    }
    h_wait_peers((int)opt.peers, NULL);

    struct load ld = {0};
    ld.n_rt = opt.tasks * opt.rt_pct / 100;
    ld.n_bulk = opt.tasks - ld.n_rt;
    ld.warm = opt.tasks / 5;
    ld.rt_sent = calloc((size_t)ld.n_rt + 1, sizeof(uint64_t));
    ld.bulk_sent = calloc((size_t)ld.n_bulk + 1, sizeof(uint64_t));
    ld.rt_lat = calloc((size_t)ld.n_rt + 1, sizeof(uint32_t));
    ld.bulk_lat = calloc((size_t)ld.n_bulk + 1, sizeof(uint32_t));
    ld.seen_rt = calloc((size_t)ld.n_rt + 1, 1);
    ld.seen_bulk = calloc((size_t)ld.n_bulk + 1, 1);
    H_REQUIRE(ld.rt_sent && ld.bulk_sent && ld.rt_lat && ld.bulk_lat && ld.seen_rt && ld.seen_bulk, "out of memory");
    ld.bulk = h_renter("byz-bulk");
    ld.rt = h_renter("byz-realtime");
    ld.stats = h_renter("byz-stats");
    r->tasks = opt.tasks;

    struct cpu_sample s0, s1, s2;
    cpu_sample(&s0, co, honest, nhonest, r);
    run_load(&ld, r, co, honest, nhonest, &s1);
    cpu_sample(&s2, co, honest, nhonest, r);

    /* Figures. */
    double n = (double)r->done, nsteady = (double)(r->done - ld.warm);
    r->secs = (double)(s2.t_us - s0.t_us) / 1e6;
    r->tasks_per_s = n / r->secs;
    r->coord_us = (double)(s2.coord - s0.coord) / n;
    r->peer_us = (double)(s2.peers - s0.peers + s2.liars - s0.liars) / n;
    r->liar_us = (double)(s2.liars - s0.liars) / n;
    if (nsteady > 0) {
        r->coord_us_steady = (double)(s2.coord - s1.coord) / nsteady;
        r->peer_us_steady = (double)(s2.peers - s1.peers + s2.liars - s1.liars) / nsteady;
    } else {
        r->coord_us_steady = r->coord_us;
        r->peer_us_steady = r->peer_us;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    double ours = (double)(s2.coord - s0.coord) + (double)(s2.peers - s0.peers) + (double)(s2.self - s0.self);
    double other = (double)(s2.machine - s0.machine) - ours;
    r->other_cpu_pct = other > 0 ? 100.0 * other / ((double)(s2.t_us - s0.t_us) * (double)(ncpu > 0 ? ncpu : 1)) : 0;
    qsort(ld.rt_lat, (size_t)ld.nrt_lat, sizeof(uint32_t), cmp_u32);
    qsort(ld.bulk_lat, (size_t)ld.nbulk_lat, sizeof(uint32_t), cmp_u32);
    r->rt_p50_us = pct_of(ld.rt_lat, ld.nrt_lat, 0.50);
    r->rt_p99_us = pct_of(ld.rt_lat, ld.nrt_lat, 0.99);
    r->bulk_p50_us = pct_of(ld.bulk_lat, ld.nbulk_lat, 0.50);
    r->bulk_p99_us = pct_of(ld.bulk_lat, ld.nbulk_lat, 0.99);

    json_t *s = stats_of(ld.stats);
    H_CHECK(s != NULL, "%s: STATS at the end", d->name);
    r->verify_runs = h_json_int(s, "counters.verify_runs");
    r->verified = h_json_int(s, "counters.verified");
    r->unverified = h_json_int(s, "counters.unverified");
    r->disagreements = h_json_int(s, "counters.disagreements");
    r->liars_caught = h_json_int(s, "counters.liars");
    r->quarantines = h_json_int(s, "counters.quarantines");
    long long runs = 0;
    json_t *peers = h_json_at(s, "peers");
    for (size_t k = 0; peers && k < json_array_size(peers); k++) {
        json_t *pk = json_array_get(peers, k);
        runs += h_json_int(pk, "done");
        int liar = 0;
        for (int i = 0; i < r->nliars; i++)
            liar |= h_json_int(pk, "id") == (long long)r->liars[i].id;
        r->honest_quarantined += !liar && h_json_str_is(pk, "state", "quarantined");
    }
    r->runs_per_task = (double)runs / n;
    for (int i = 0; i < r->nliars; i++) {
        struct liar *l = &r->liars[i];
        l->quarantined = s && peer_quarantined(s, l->id);
        h_fake_peer_counts(l->fp, &l->fc);
    }
    json_decref(s);

    /* Checks: behaviour, never speed. */
    H_CHECK(r->done == r->tasks && r->dup == 0, "%s: %lld outcomes for %lld tasks, %lld second outcomes", d->name,
            r->done, r->tasks, r->dup);
    if (r->nliars == 0 || (!d->collude && (d->always || strcmp(d->verify, "quorum2") == 0)))
        H_CHECK(r->wrong == 0, "%s: no wrong result delivered as a success: %lld", d->name, r->wrong);
    for (int i = 0; d->always && !d->collude && i < r->nliars; i++)
        H_CHECK(r->liars[i].quarantined, "%s: always-liar %u ends quarantined", d->name, r->liars[i].id);
    h_log("%s: %lld tasks in %.2f s, ok %lld wrong %lld failed %lld, runs/task %.3f, coord %.2f us/task, peers %.2f "
          "us/task, other cpu %.1f%%",
          d->name, r->done, r->secs, r->ok, r->wrong, r->failed, r->runs_per_task, r->coord_us, r->peer_us,
          r->other_cpu_pct);

    p2c2r_client_close(ld.bulk);
    p2c2r_client_close(ld.rt);
    p2c2r_client_close(ld.stats);
    for (int i = 0; i < r->nliars; i++) {
        h_fake_peer_stop(r->liars[i].fp);
        r->liars[i].fp = NULL;
    }
    /* Each judged now and its slot freed: the rounds start more processes
     * than the harness keeps. */
    for (int i = 0; i < nhonest; i++) {
        h_stop(honest[i]);
        h_release(honest[i]);
    }
    h_stop(co);
    h_release(co);
    free(ld.rt_sent);
    free(ld.bulk_sent);
    free(ld.rt_lat);
    free(ld.bulk_lat);
    free(ld.seen_rt);
    free(ld.seen_bulk);
}

/* ---- output ------------------------------------------------------------------- */

static const struct scen_def *run_list[MAX_SCEN];
static int nrun, rounds_done;

static const struct result *result_named(int round, const char *name)
{
    for (int i = 0; i < nrun; i++)
        if (strcmp(run_list[i]->name, name) == 0)
            return &results[round][i];
    return NULL;
}

static double ratio(double a, double b) { return b > 0 && !isnan(a) && !isnan(b) ? a / b : NAN; }

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (!isnan(v[i]))
            v[k++] = v[i];
    if (k == 0)
        return NAN;
    qsort(v, (size_t)k, sizeof(double), cmp_dbl);
    return k % 2 ? v[k / 2] : (v[k / 2 - 1] + v[k / 2]) / 2;
}

/* A figure of a result, or its ratio to a baseline result. */
enum fig { F_TPS, F_RUNS, F_COORD, F_COORD_ST, F_PEER, F_PEER_ST, F_P50, F_P99, F_OTHER, F_COUNT };

static double fig_of(const struct result *r, enum fig f)
{
    switch (f) {
    case F_TPS: return r->tasks_per_s;
    case F_RUNS: return r->runs_per_task;
    case F_COORD: return r->coord_us;
    case F_COORD_ST: return r->coord_us_steady;
    case F_PEER: return r->peer_us;
    case F_PEER_ST: return r->peer_us_steady;
    case F_P50: return r->rt_p50_us;
    case F_P99: return r->rt_p99_us;
    case F_OTHER: return r->other_cpu_pct;
    default: return NAN;
    }
}

/* Median over rounds of scenario i's figure f, or (base not NULL) of its
 * ratio to base's within each round. */
static double med_fig(int i, enum fig f, const char *base)
{
    double v[MAX_ROUNDS];
    for (int rd = 0; rd < rounds_done; rd++) {
        const struct result *b = base ? result_named(rd, base) : NULL;
        v[rd] = base ? (b ? ratio(fig_of(&results[rd][i], f), fig_of(b, f)) : NAN) : fig_of(&results[rd][i], f);
    }
    return median(v, rounds_done);
}

static void print_json(int round, const struct result *r)
{
    printf("{\"bench\":\"byzantine\",\"round\":%d,\"scenario\":\"%s\",\"verify\":\"%s\",\"peers\":%lld,\"liars\":%d,"
           "\"liar_kind\":\"%s\",\"collude\":%s,\"behave\":%lld,\"tasks\":%lld,\"ok\":%lld,\"wrong\":%lld,"
           "\"wrong_verified\":%lld,\"failed\":%lld,"
           "\"verified_flag\":%lld,\"secs\":%.3f,\"tasks_per_s\":%.0f,\"coord_cpu_us_per_task\":%.3f,"
           "\"peer_cpu_us_per_task\":%.3f,\"coord_cpu_us_per_task_steady\":%.3f,"
           "\"peer_cpu_us_per_task_steady\":%.3f,\"liar_cpu_us_per_task\":%.3f,\"runs_per_task\":%.4f,"
           "\"rt_p50_us\":%.0f,\"rt_p99_us\":%.0f,\"bulk_p50_us\":%.0f,\"bulk_p99_us\":%.0f,"
           "\"verify_runs\":%lld,\"verified\":%lld,\"unverified\":%lld,\"disagreements\":%lld,"
           "\"liars_caught\":%lld,\"honest_quarantined\":%d,\"other_cpu_pct\":%.1f",
           round + 1, r->def->name, r->def->verify, (long long)opt.peers, r->nliars,
           r->nliars == 0 ? "none" : (r->def->always ? "always" : "behave-then-lie"),
           r->def->collude ? "true" : "false", (long long)opt.behave, r->tasks, r->ok, r->wrong, r->wrong_verified,
           r->failed, r->verified_flag, r->secs, r->tasks_per_s, r->coord_us, r->peer_us, r->coord_us_steady,
           r->peer_us_steady, r->liar_us, r->runs_per_task, r->rt_p50_us, r->rt_p99_us, r->bulk_p50_us,
           r->bulk_p99_us, r->verify_runs, r->verified, r->unverified, r->disagreements, r->liars_caught,
           r->honest_quarantined, r->other_cpu_pct);
    static const char *const bases[2] = {"none", "honest"};
    for (int b = 0; b < 2; b++) {
        const struct result *br = result_named(round, bases[b]);
        if (!br || br->tasks == 0)
            continue;
        printf(",\"vs_%s\":{\"coord_cpu\":%.3f,\"peer_cpu\":%.3f,\"coord_cpu_steady\":%.3f,\"peer_cpu_steady\":%.3f,"
               "\"tasks_per_s\":%.3f,\"rt_p50\":%.3f,\"rt_p99\":%.3f}",
               bases[b], ratio(r->coord_us, br->coord_us), ratio(r->peer_us, br->peer_us),
               ratio(r->coord_us_steady, br->coord_us_steady), ratio(r->peer_us_steady, br->peer_us_steady),
               ratio(r->tasks_per_s, br->tasks_per_s), ratio(r->rt_p50_us, br->rt_p50_us),
               ratio(r->rt_p99_us, br->rt_p99_us));
    }
    printf(",\"liar_detail\":[");
    for (int i = 0; i < r->nliars; i++) {
        const struct liar *l = &r->liars[i];
        printf("%s{\"peer_id\":%u,\"given\":%ld,\"lies\":%ld,\"wrong_delivered\":%ld,\"quarantined\":%s,"
               "\"outcomes_at_last_task\":%lld}",
               i ? "," : "", l->id, l->fc.assigned, l->fc.lies, l->wrong, l->quarantined ? "true" : "false",
               l->last_at);
    }
    printf("]}\n");
}

static void print_table(FILE *f)
{
    fprintf(f, "\nbyzantine bench: %lld peers, %lld sha256 tasks of %d B per scenario (%lld%% realtime), window %lld + "
           "%lld, --slots %lld, behave %lld, %d round%s (medians; wrong, failed, hq = honest peers\n"
           "quarantined at the end: sums over rounds)\n",
           (long long)opt.peers, (long long)opt.tasks, INPUT_LEN, (long long)opt.rt_pct, (long long)opt.window,
           (long long)opt.rt_window, (long long)opt.slots, (long long)opt.behave, rounds_done,
           rounds_done == 1 ? "" : "s");
    fprintf(f, "%-18s %-8s %5s %6s %6s %4s %9s %6s %8s %8s %8s %8s %7s %7s %6s\n", "scenario", "verify", "liars", "wrong",
           "failed", "hq", "tasks/s", "runs", "coord", "coord-st", "peers", "peers-st", "rt-p50", "rt-p99", "other");
    fprintf(f, "%-18s %-8s %5s %6s %6s %4s %9s %6s %8s %8s %8s %8s %7s %7s %6s\n", "", "", "", "", "", "", "", "/task",
           "us/task", "us/task", "us/task", "us/task", "us", "us", "cpu%");
    for (int i = 0; i < nrun; i++) {
        long long wrong = 0, failed = 0, hq = 0;
        for (int rd = 0; rd < rounds_done; rd++) {
            wrong += results[rd][i].wrong;
            failed += results[rd][i].failed;
            hq += results[rd][i].honest_quarantined;
        }
        fprintf(f, "%-18s %-8s %5d %6lld %6lld %4lld %9.0f %6.3f %8.2f %8.2f %8.2f %8.2f %7.0f %7.0f %6.1f\n",
               run_list[i]->name, run_list[i]->verify, results[0][i].nliars, wrong, failed, hq, med_fig(i, F_TPS, NULL),
               med_fig(i, F_RUNS, NULL), med_fig(i, F_COORD, NULL), med_fig(i, F_COORD_ST, NULL),
               med_fig(i, F_PEER, NULL), med_fig(i, F_PEER_ST, NULL), med_fig(i, F_P50, NULL),
               med_fig(i, F_P99, NULL), med_fig(i, F_OTHER, NULL));
    }
    static const char *const bases[2] = {"none", "honest"};
    static const char *const bnames[2] = {"none (all honest, --verify none)", "honest (all honest, adaptive)"};
    for (int b = 0; b < 2; b++) {
        if (!result_named(0, bases[b]))
            continue;
        fprintf(f, "\nratios against %s, median of the rounds' ratios:\n", bnames[b]);
        fprintf(f, "%-18s %8s %8s %8s %8s %8s %8s %8s\n", "scenario", "coord", "coord-st", "peers", "peers-st",
               "tasks/s", "rt-p50", "rt-p99");
        for (int i = 0; i < nrun; i++)
            fprintf(f, "%-18s %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f %8.2f\n", run_list[i]->name,
                   med_fig(i, F_COORD, bases[b]), med_fig(i, F_COORD_ST, bases[b]), med_fig(i, F_PEER, bases[b]),
                   med_fig(i, F_PEER_ST, bases[b]), med_fig(i, F_TPS, bases[b]), med_fig(i, F_P50, bases[b]),
                   med_fig(i, F_P99, bases[b]));
    }
    int any = 0;
    for (int i = 0; i < nrun; i++) {
        for (int rd = 0; rd < rounds_done; rd++) {
            const struct result *r = &results[rd][i];
            if (r->nliars == 0)
                continue;
            if (!any++)
                fprintf(f, "\nliars, per round: given/lies/wrong delivered/renter outcomes when it was given its last "
                       "task (q = quarantined at the end)\n");
            fprintf(f, "%-18s round %d:", run_list[i]->name, rd + 1);
            for (int k = 0; k < r->nliars; k++) {
                const struct liar *l = &r->liars[k];
                fprintf(f, "  %ld/%ld/%ld/%lld%s", l->fc.assigned, l->fc.lies, l->wrong, l->last_at,
                       l->quarantined ? " q" : " FREE");
            }
            fprintf(f, "\n");
        }
    }
    fflush(f);
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    const struct cliopt opts[] = {
        {"bin-dir", 0, OPT_STR, "DIR", 0, 0, "where p2c2rd and p2c2r-peer are (default: this build's directory)", &opt.bin_dir},
        {"scenario", 0, OPT_STR, "LIST", 0, 0, "comma list of scenarios to run, in order (none, honest, always-10, always-30, btl-10, btl-30, btl-10-quorum2, btl-30-quorum2, honest-quorum2)", &opt.scenarios, CLIOPT_DEFAULT},
        {"tasks", 0, OPT_INT, "N", 100, 10000000, "tasks per scenario (--quick: 5000)", &opt.tasks, CLIOPT_DEFAULT},
        {"peers", 0, OPT_INT, "N", 3, MAX_PEERS, "peers per scenario, liars included", &opt.peers, CLIOPT_DEFAULT},
        {"slots", 0, OPT_INT, "N", 1, 256, "slots of every peer", &opt.slots, CLIOPT_DEFAULT},
        {"window", 0, OPT_INT, "N", 1, 4096, "bulk tasks in flight", &opt.window, CLIOPT_DEFAULT},
        {"rt-window", 0, OPT_INT, "N", 1, 256, "realtime tasks in flight", &opt.rt_window, CLIOPT_DEFAULT},
        {"rt-pct", 0, OPT_INT, "PCT", 1, 50, "share of the tasks that are realtime", &opt.rt_pct, CLIOPT_DEFAULT},
        {"behave", 0, OPT_INT, "N", 0, 10000000, "tasks a behave-then-lie liar answers honestly first (--quick: 100)", &opt.behave, CLIOPT_DEFAULT},
        {"quick", 0, OPT_FLAG, NULL, 0, 0, "smoke run: 5000 tasks (x P2C2R_TEST_SCALE), behave 100, unless given", &opt.quick},
        {"rounds", 0, OPT_INT, "R", 1, MAX_ROUNDS, "times every scenario runs (round after round)", &opt.rounds, CLIOPT_DEFAULT},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print one JSON line per scenario and round (the tables go to stderr)", &opt.json},
    };
    int nopts = (int)(sizeof(opts) / sizeof(opts[0]));
    int64_t tasks_default = opt.tasks, behave_default = opt.behave;
    int rc = bench_parse(argc, argv, opts, nopts, "bench_byzantine",
                         "Byzantine peers: wrong results delivered, tasks until each liar is quarantined, CPU per\n"
                         "task and realtime latency against an all-honest run (see bench/bench_byzantine.c).");
    if (rc >= 0)
        return rc;
    char list[512];
    snprintf(list, sizeof(list), "%s", opt.scenarios);
    for (char *s = list, *tok; (tok = strsep(&s, ",")) != NULL;) {
        if (!*tok)
            continue;
        int found = -1;
        for (int i = 0; i < NSCEN_DEFS; i++)
            if (strcmp(scen_defs[i].name, tok) == 0)
                found = i;
        if (found < 0 || nrun == MAX_SCEN) {
            fprintf(stderr, "bench_byzantine: unknown scenario '%s' (see --help)\n", tok);
            return 2;
        }
        run_list[nrun++] = &scen_defs[found];
    }

    bench_harness_init(argv[0], opt.bin_dir, "bench-byzantine", opt.quick ? "300" : "3600");
    if (opt.quick) {
        if (opt.tasks == tasks_default) {
            opt.tasks = (int64_t)(5000 * h_scale());
            if (opt.tasks < 500)
                opt.tasks = 500;
        }
        if (opt.behave == behave_default)
            opt.behave = 100;
    }
    for (int rd = 0; rd < opt.rounds; rd++) {
        for (int i = 0; i < nrun; i++) {
            run_scenario(run_list[i], (int)(run_list[i] - scen_defs), rd, &results[rd][i]);
            if (opt.json) {
                print_json(rd, &results[rd][i]);
                fflush(stdout);
            }
        }
        rounds_done = rd + 1;
    }
    print_table(opt.json ? stderr : stdout);
    return h_finish();
}
