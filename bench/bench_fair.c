/* bench_fair.c - a fair share for every renter (issue 12, "Targets"): renter B's latency behind
 * renter A's realtime flood on one shared peer.
 *
 * Each round starts a fresh p2c2rd (with a tokens file, so that every connection of one token
 * is one share) and one p2c2r-peer (--slots, default 2) that serves echo.  Renter A opens
 * --a-conns connections (default 4) with its token and keeps --flood tasks (default 50,000)
 * outstanding at realtime priority: it submits them at once and tops the flood up as results
 * come back.  Once A's flood is queued, renter B (its own token, one connection) submits one
 * realtime echo task every --interval-ms (default 10) for --seconds (default 5), and this
 * process measures each of B's tasks from submit to result.  Reported per round: B's tasks,
 * how many came back OK, p50 / p99 / max latency, how many took longer than --target-ms (the
 * issue's 250 ms), A's completed tasks per second while B ran, and machine_cpu_pct (the whole
 * machine's CPU during the run, this process and the daemons included, in % of all cores).  The summary gives medians over --rounds.
 *
 * Run it against another build's daemons with --bin-dir (e.g. a build of the previous commit)
 * for the before / after comparison in docs/PERFORMANCE.md, "Fair shares".  The daemons are
 * started through the integration harness (tests/integration/harness.h), whose watchdog bounds
 * the run; nothing is asserted about speed (the exit status is 1 only when one of B's tasks
 * fails).  Usage: bench_fair --help. */
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_harness.h"
#include "procstat.h"

#define TOK_A "bench-renter-a"
#define TOK_B "bench-renter-b"
#define TOK_P "bench-peer"
#define MAX_CONNS 64
#define MAX_ROUNDS 20
#define BATCH 4096

static struct {
    const char *bin_dir;
    int64_t flood, a_conns, slots, interval_ms, seconds, target_ms, rounds;
} opt = {
    .bin_dir = BENCH_BIN_DIR,
    .flood = 50000,
    .a_conns = 4,
    .slots = 2,
    .interval_ms = 10,
    .seconds = 5,
    .target_ms = 250,
    .rounds = 3,
};

struct round {
    int b_sent, b_ok, b_over;
    double p50_ms, p99_ms, max_ms, a_tasks_per_s, machine_cpu_pct;
};

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static p2c2r_client *connect_token(const char *token, const char *name)
{
    struct p2c2r_client_options o = {sizeof o, token, name, 10000, 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "%s: connect: %s", name, h_err(rc));
    return c;
}

/* A's flood: each connection keeps its part of opt.flood outstanding. */
struct flood {
    p2c2r_client *c[MAX_CONNS];
    int64_t outstanding[MAX_CONNS];
    uint64_t next_input, completed;
};

static void flood_top_up(struct flood *f, int i)
{
    static struct p2c2r_task ts[BATCH];
    static uint64_t in[BATCH][2];
    static p2c2r_ticket tk[BATCH];
    int64_t want = opt.flood / opt.a_conns;
    while (f->outstanding[i] < want) {
        int n = (int)(want - f->outstanding[i] < BATCH ? want - f->outstanding[i] : BATCH);
        for (int j = 0; j < n; j++) {
            in[j][0] = ++f->next_input; /* unique: nothing coalesced or cached */
            in[j][1] = 0xa;
            ts[j] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo",
                                        .priority = P2C2R_PRIO_REALTIME, .input = in[j], .input_len = 16};
        }
        int rc = p2c2r_client_submit_batch(f->c[i], ts, (size_t)n, tk);
        H_REQUIRE(rc == 0, "A: submit_batch of %d: %s", n, h_err(rc));
        f->outstanding[i] += n;
    }
}

static void flood_drain(struct flood *f, int i)
{
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    int k;
    while ((k = p2c2r_client_poll(f->c[i], res, 256, 0)) > 0)
        for (int j = 0; j < k; j++) {
            f->completed += res[j].status == 0;
            f->outstanding[i]--;
            p2c2r_result_release(&res[j]);
        }
    H_REQUIRE(k >= 0, "A: poll: %s", h_err(k));
}

/* B's tasks in flight: ticket and submit time. */
struct pending {
    uint64_t id, t0;
};

static void run_round(int r, struct round *out)
{
    h_phase("round %d: p2c2rd and one p2c2r-peer with %" PRId64 " slots", r, opt.slots);
    char tokens[320];
    h_path(tokens, sizeof(tokens), "tokens");
    const char *body = "renter:" TOK_A "\nrenter:" TOK_B "\npeer:" TOK_P "\n";
    H_REQUIRE(h_write_file(tokens, body, strlen(body)) == 0, "cannot write %s", tokens);
    const char *cargs[] = {"--tokens", tokens, "--max-inflight", "1000000", "--log-level", "warn", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    const char *pargs[] = {"--token", TOK_P, "--log-level", "warn", NULL};
    struct h_proc *peer = h_peer_start("shared", (int)opt.slots, "echo", pargs);
    h_wait_peers(1, TOK_B);

    struct flood f;
    memset(&f, 0, sizeof(f));
    for (int i = 0; i < opt.a_conns; i++) {
        f.c[i] = connect_token(TOK_A, "bench-a");
        flood_top_up(&f, i);
        H_REQUIRE(p2c2r_client_flush(f.c[i], 30000) == 0, "A: flush");
    }
    p2c2r_client *b = connect_token(TOK_B, "bench-b");

    h_phase("round %d: B submits a realtime task every %" PRId64 " ms for %" PRId64 " s", r, opt.interval_ms,
            opt.seconds);
    int nmax = (int)(opt.seconds * 1000 / opt.interval_ms) + 1;
    uint64_t *lat = calloc((size_t)nmax, sizeof(*lat));
    struct pending *pend = calloc((size_t)nmax, sizeof(*pend));
    H_REQUIRE(lat && pend, "out of memory");
    int npend = 0, nlat = 0, sent = 0, ok = 0;
    uint64_t t_start = now_us(), next = t_start, end = t_start + (uint64_t)opt.seconds * 1000000;
    uint64_t a_done0 = f.completed, busy0 = machine_busy_us();
    uint64_t last_progress = t_start;
    struct pollfd pfd[MAX_CONNS + 1];
    uint8_t bin[16];
    while (sent < nmax ? 1 : npend > 0) {
        uint64_t now = now_us();
        if (sent < nmax && now >= next && now < end) {
            memset(bin, 0, sizeof(bin));
            memcpy(bin, &sent, sizeof(sent));
            bin[15] = 0xb;
            struct p2c2r_task t = {.size = sizeof t, .type = "echo", .priority = P2C2R_PRIO_REALTIME, .input = bin,
                                   .input_len = 16};
            p2c2r_ticket tk;
            int rc = p2c2r_client_submit(b, &t, &tk);
            H_REQUIRE(rc == 0, "B: submit: %s", h_err(rc));
            pend[npend++] = (struct pending){tk.id, now};
            sent++;
            next += (uint64_t)opt.interval_ms * 1000;
        } else if (now >= end && sent < nmax) {
            nmax = sent; /* the window is over */
        }
        int n = 0;
        for (int i = 0; i < opt.a_conns; i++)
            pfd[n++] = (struct pollfd){p2c2r_client_fd(f.c[i]),
                                       (short)(POLLIN | (p2c2r_client_want_write(f.c[i]) ? POLLOUT : 0)), 0};
        pfd[n++] = (struct pollfd){p2c2r_client_fd(b), (short)(POLLIN | (p2c2r_client_want_write(b) ? POLLOUT : 0)), 0};
        int wait_ms = sent < nmax && next > now ? (int)((next - now) / 1000) : 1;
        poll(pfd, (nfds_t)n, wait_ms > 0 ? wait_ms : 0);
        for (int i = 0; i < opt.a_conns; i++) {
            H_REQUIRE(p2c2r_client_process(f.c[i]) >= 0, "A: connection failed");
            flood_drain(&f, i);
            flood_top_up(&f, i);
        }
        H_REQUIRE(p2c2r_client_process(b) >= 0, "B: connection failed");
        struct p2c2r_result res[64] = {P2C2R_RESULT_INIT};
        int k = p2c2r_client_poll(b, res, 64, 0);
        H_REQUIRE(k >= 0, "B: poll: %s", h_err(k));
        now = now_us();
        if (k > 0)
            last_progress = now;
        for (int j = 0; j < k; j++) {
            for (int q = 0; q < npend; q++)
                if (pend[q].id == res[j].ticket.id) {
                    lat[nlat++] = now - pend[q].t0;
                    pend[q] = pend[--npend];
                    break;
                }
            ok += res[j].status == 0;
            p2c2r_result_release(&res[j]);
        }
        H_REQUIRE(npend == 0 || now - last_progress < 120000000ull, "B: no result for 120 s (%d pending)", npend);
    }
    uint64_t t_end = now_us(), busy1 = machine_busy_us();
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* The whole machine's CPU, this process and the daemons included, in %
     * of all cores: near 100 means the run was CPU-bound or disturbed. */
    double secs = (double)(t_end - t_start) / 1e6;
    out->machine_cpu_pct = 100.0 * ((double)(busy1 - busy0) / 1e6) / (secs * (double)(ncpu > 0 ? ncpu : 1));
    out->a_tasks_per_s = (double)(f.completed - a_done0) / secs;
    qsort(lat, (size_t)nlat, sizeof(*lat), cmp_u64);
    out->b_sent = sent;
    out->b_ok = ok;
    H_CHECK(ok == sent, "B: %d of %d tasks OK", ok, sent);
    out->b_over = 0;
    for (int i = 0; i < nlat; i++)
        out->b_over += lat[i] > (uint64_t)opt.target_ms * 1000;
    out->p50_ms = nlat ? (double)lat[nlat / 2] / 1000 : 0;
    out->p99_ms = nlat ? (double)lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 : nlat - 1] / 1000 : 0;
    out->max_ms = nlat ? (double)lat[nlat - 1] / 1000 : 0;
    printf("{\"round\":%d,\"flood\":%" PRId64 ",\"a_conns\":%" PRId64 ",\"slots\":%" PRId64
           ",\"b_tasks\":%d,\"b_ok\":%d,\"b_p50_ms\":%.2f,\"b_p99_ms\":%.2f,\"b_max_ms\":%.2f,"
           "\"b_over_target\":%d,\"target_ms\":%" PRId64 ",\"a_tasks_per_s\":%.0f,\"machine_cpu_pct\":%.1f}\n",
           r, opt.flood, opt.a_conns, opt.slots, out->b_sent, out->b_ok, out->p50_ms, out->p99_ms, out->max_ms,
           out->b_over, opt.target_ms, out->a_tasks_per_s, out->machine_cpu_pct);
    fflush(stdout);
    free(lat);
    free(pend);
    p2c2r_client_close(b);
    for (int i = 0; i < opt.a_conns; i++)
        p2c2r_client_close(f.c[i]);
    struct h_proc *ps[] = {peer, co};
    h_stop_all(ps, 2);
}

static double median_of(const struct round *rs, int n, size_t off)
{
    double v[MAX_ROUNDS];
    for (int i = 0; i < n; i++)
        v[i] = *(const double *)((const char *)&rs[i] + off);
    qsort(v, (size_t)n, sizeof(v[0]), cmp_dbl);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    const struct cliopt opts[] = {
        {"bin-dir", 0, OPT_STR, "DIR", 0, 0, "where p2c2rd and p2c2r-peer are (default: this build's directory)", &opt.bin_dir},
        {"flood", 0, OPT_INT, "N", 1, 10000000, "realtime tasks renter A keeps outstanding", &opt.flood, CLIOPT_DEFAULT},
        {"a-conns", 0, OPT_INT, "N", 1, MAX_CONNS, "connections renter A spreads its flood over (one token)", &opt.a_conns, CLIOPT_DEFAULT},
        {"slots", 0, OPT_INT, "N", 1, 256, "slots of the shared peer", &opt.slots, CLIOPT_DEFAULT},
        {"interval-ms", 0, OPT_INT, "MS", 1, 10000, "renter B submits one realtime task every MS", &opt.interval_ms, CLIOPT_DEFAULT},
        {"seconds", 0, OPT_INT, "S", 1, 3600, "how long renter B submits", &opt.seconds, CLIOPT_DEFAULT},
        {"target-ms", 0, OPT_INT, "MS", 1, 100000, "latency target B's tasks are counted against", &opt.target_ms, CLIOPT_DEFAULT},
        {"rounds", 0, OPT_INT, "R", 1, MAX_ROUNDS, "fresh coordinator and peer per round; the summary gives medians", &opt.rounds, CLIOPT_DEFAULT},
    };
    int nopts = (int)(sizeof(opts) / sizeof(opts[0]));
    int rc = bench_parse(argc, argv, opts, nopts, "bench_fair",
                         "Renter B's latency behind renter A's realtime flood on one shared peer\n"
                         "(see bench/bench_fair.c). One JSON line per round on stdout, a summary on stderr.");
    if (rc >= 0)
        return rc;
    bench_harness_init(argv[0], opt.bin_dir, "bench-fair", "3600");
    struct round rs[MAX_ROUNDS];
    int n = (int)opt.rounds;
    for (int r = 0; r < n; r++)
        run_round(r, &rs[r]);
    int over = 0, sent = 0, bok = 0;
    for (int r = 0; r < n; r++)
        over += rs[r].b_over, sent += rs[r].b_sent, bok += rs[r].b_ok;
    fprintf(stderr,
            "bench_fair: %s, flood %" PRId64 " realtime tasks on %" PRId64 " connections, peer slots %" PRId64
            ", %d rounds (medians):\n"
            "  B: p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d of %d tasks over %" PRId64 " ms, %d of %d OK\n"
            "  A: %.0f tasks/s completed while B ran; machine_cpu_pct %.1f\n",
            opt.bin_dir, opt.flood, opt.a_conns, opt.slots, n, median_of(rs, n, offsetof(struct round, p50_ms)),
            median_of(rs, n, offsetof(struct round, p99_ms)), median_of(rs, n, offsetof(struct round, max_ms)),
            over, sent, opt.target_ms, bok, sent, median_of(rs, n, offsetof(struct round, a_tasks_per_s)),
            median_of(rs, n, offsetof(struct round, machine_cpu_pct)));
    return h_finish();
}
