/* bench_frame: a game's 60 Hz frame loop offloading work (issue 10, item 6).
 *
 * Each frame (16.67 ms) the "game" submits, with 16 ms deadlines and
 * realtime priority: 8 pathfind queries (one task each, over one 64 KB map
 * uploaded once as a blob), one physics step of a small scene, every tenth
 * frame a 64x64 ray-traced tile whose samples per pixel follow the frame
 * helper (p2c2r_client_frame_advice: halve on -1, double on +1, 1..64), and
 * every sixth frame an upscale of a 64x64 RGB frame to 128x128.  It uses
 * only the non-blocking face: submit, poll(2) on the client's fd until the
 * frame ends, process, poll with timeout 0.
 *
 * Per type it reports the share of tasks whose result arrived in the frame
 * they were submitted in, in the next one, later, or never (refused, timed
 * out, failed, or no result at all), the round trip p50/p99 of delivered
 * results, the library time per frame (p50/p99, the time spent inside p2c2r calls, not waiting),
 * the raytrace quality steps, and the peer time spent on work past its
 * deadline: the peers' own cancel_wasted_us (time an executor ran after its
 * task was cancelled, logged when the peer stops) plus the exec_us of
 * results that arrived late, against all execution time.
 *
 * Scenarios: local2 (2 peers of 1 slot on this machine), peers4 (4 peers of
 * 1 slot), kill4 (as peers4, one peer SIGKILLed half way through), coordkill2
 * (as local2 with the client's local fallback on, 6 ms per frame, and the
 * coordinator SIGKILLed half way through: the second half runs in the game's
 * process, and "local" counts those results).  On a
 * 2-core machine the peers and the game share the cores, so the figures are
 * the fabric's overhead under contention, not a deployment's; --pin keeps
 * the game's thread on CPU 0 and the coordinator and peers on the others,
 * as on a game's machine that does not host the peers.  By default the game
 * waits in poll(2) and wakes for every result; --checkpoints N plays a game
 * busy with its own work, which calls process and poll right after its
 * submits and then at N points of the frame, the last 0.3 ms before its end
 * (a result counts as "same frame" when that look collects it).
 * Figures in docs/PERFORMANCE.md, "The 16 ms frame". */
#include <inttypes.h>
#include <math.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cliopt.h"
#include "harness.h"

#define FRAME_US 16667u
#define DEADLINE_MS 16u
#define MAX_PEERS 4

enum kind { K_PATH, K_PHYS, K_RAY, K_UP, NKIND };
static const char *const kind_name[NKIND] = {"pathfind", "physics", "raytrace", "upscale"};

static struct {
    const char *bin_dir;
    const char *scenarios;
    int64_t seconds;
    int quick, json, pin;
    int64_t checkpoints;
    const char *trace;
} opt = {BENCH_BIN_DIR, "local2,peers4,kill4,coordkill2", 20, 0, 0, 0, 0, NULL};

/* With --checkpoints, the last look of a frame is this long before its end. */
#define LAST_LOOK_US 300u

#define COORDKILL_LOCAL_US 6000 /* coordkill2's local fallback budget per frame */

/* What happened to the tasks of one kind. */
struct kstat {
    uint64_t sent, same, next, later, never, not_sent;
    uint64_t refused, timed_out; /* of never: EDEADLINE or EQUEUEFULL; ETIMEDOUT */
    uint64_t settled_sent, settled_same; /* submitted after the first second */
    uint64_t local; /* delivered results the client ran itself (P2C2R_RESULT_LOCAL) */
    int first_err;
    uint64_t lost, extra; /* tasks without any result after the drain; results beyond the tasks */
    uint64_t exec_us, late_exec_us;
    uint32_t *rtt; /* us of delivered results */
    size_t nrtt, caprtt;
};

struct scen {
    const char *name;
    int peers;
    int kill;       /* SIGKILL one peer half way */
    int kill_coord; /* SIGKILL the coordinator half way; the client's local fallback on */
};

static const struct scen scens[] = {
    {"local2", 2, 0, 0}, {"peers4", 4, 0, 0}, {"kill4", 4, 1, 0}, {"coordkill2", 2, 0, 1}};
#define NSCENS (sizeof(scens) / sizeof(scens[0]))

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* CPU time of this thread: the library's own cost, without the time the
 * scheduler gave the peers' processes meanwhile (2 cores, shared). */
static uint64_t cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(uint32_t *v, size_t n, double q)
{
    if (n == 0)
        return NAN;
    qsort(v, n, sizeof(*v), cmp_u32);
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return v[i];
}

static void push(uint32_t **v, size_t *n, size_t *cap, uint32_t x)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 1024;
        *v = realloc(*v, *cap * sizeof(**v));
        H_REQUIRE(*v != NULL, "out of memory");
    }
    (*v)[(*n)++] = x;
}

static const char SCENE[] =
    "{\"width\": 64, \"height\": 64, \"max_depth\": 4, \"background\": [0.5, 0.6, 0.7], "
    "\"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50}, "
    "\"spheres\": [{\"center\": [0, 0, 0], \"radius\": 1, \"material\": {\"type\": \"glass\", "
    "\"ior\": 1.5}}, {\"center\": [0, -101, 0], \"radius\": 100, \"material\": "
    "{\"type\": \"metal\", \"albedo\": [0.8, 0.8, 0.8], \"fuzz\": 0.3}}]}";

/* Twelve bodies falling on a floor. */
static char *physics_scene(void)
{
    char *s = malloc(4096), *p = s;
    H_REQUIRE(s != NULL, "out of memory");
    p += sprintf(p, "{\"gravity\": [0, -9.81, 0], \"dt\": 0.016, \"steps\": 1, \"planes\": [{\"id\": 0, "
                    "\"normal\": [0, 1, 0], \"offset\": 0}], \"bodies\": [");
    for (int i = 0; i < 12; i++)
        p += sprintf(p, "%s{\"id\": %d, \"shape\": \"%s\", \"mass\": 1, %s, \"position\": [%d, %d.5, %d]}",
                     i ? ", " : "", i + 1, i % 2 ? "box" : "sphere",
                     i % 2 ? "\"half_extents\": [0.4, 0.4, 0.4]" : "\"radius\": 0.4", i % 4, 1 + i / 4, i % 3);
    sprintf(p, "]}");
    return s;
}

static struct p2c2r_task task_of(enum kind k, const char *params, const void *in, size_t n,
                                 const uint8_t (*blobs)[32], size_t nblobs, uint64_t frame)
{
    struct p2c2r_task t;
    p2c2r_task_init(&t);
    t.type = kind_name[k];
    t.priority = P2C2R_PRIO_REALTIME;
    t.deadline_ms = DEADLINE_MS;
    t.params = params;
    t.params_len = params ? strlen(params) : 0;
    t.input = in;
    t.input_len = n;
    t.blobs = blobs;
    t.nblobs = nblobs;
    t.flags = P2C2R_TASK_NOCACHE; /* every frame's work is fresh */
    t.user = frame << 4 | (uint64_t)k;
    return t;
}

/* cancel_wasted_us from a stopped peer's log. */
static uint64_t peer_wasted_us(const struct h_proc *p)
{
    size_t len;
    char *log = h_read_file(p->log, &len);
    const char *line = log ? strstr(log, "peer_exec_stats") : NULL;
    const char *v = line ? strstr(line, " cancel_wasted_us=") : NULL;
    uint64_t us = v ? strtoull(v + 18, NULL, 10) : 0;
    free(log);
    return us;
}

struct outcome {
    struct kstat k[NKIND];
    uint32_t *lib, *libcpu; /* per frame: wall time in p2c2r calls, and this thread's CPU time */
    size_t nlib, caplib, nlibcpu, caplibcpu;
    uint64_t frames, wasted_us, steps_down, steps_up, max_steps_per_s;
    int spp_final;
};

/* Binds the calling thread (and what it forks from now on) to the CPUs
 * [lo, hi) that this process may use. */
static void pin_to(int lo, int hi)
{
    static cpu_set_t all; /* the process's CPUs, read once, before any pinning */
    static int have_all;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (!have_all) {
        H_REQUIRE(sched_getaffinity(0, sizeof(all), &all) == 0, "sched_getaffinity failed");
        have_all = 1;
    }
    for (int i = lo; i < hi && i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &all))
            CPU_SET(i, &set);
    H_REQUIRE(CPU_COUNT(&set) > 0, "--pin: no CPU in [%d, %d) (it needs at least 2)", lo, hi);
    H_REQUIRE(sched_setaffinity(0, sizeof(set), &set) == 0, "sched_setaffinity failed");
}

static void run(const struct scen *sc, struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    h_phase("scenario %s: %d peers%s, %" PRId64 " s at 60 Hz", sc->name, sc->peers,
            sc->kill ? ", one killed half way" : sc->kill_coord ? ", the coordinator killed half way" : "",
            opt.seconds);
    const char *cargs[] = {"--log-level", "warn", NULL};
    if (opt.pin)
        pin_to(1, CPU_SETSIZE); /* the daemons inherit it */
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *peers[MAX_PEERS];
    for (int i = 0; i < sc->peers; i++) {
        char name[32];
        snprintf(name, sizeof(name), "%s-peer-%d", sc->name, i);
        peers[i] = h_peer_start(name, 1, "pathfind,physics,raytrace,upscale", NULL);
    }
    if (opt.pin)
        pin_to(0, 1);
    h_wait_peers(sc->peers, NULL);
    p2c2r_client *c = NULL;
    int rc;
    if (sc->kill_coord) {
        struct p2c2r_client_options co_opts;
        p2c2r_client_options_init(&co_opts);
        co_opts.name = "bench-frame";
        co_opts.connect_timeout_ms = h_bound_ms(5000);
        co_opts.local_fallback_us = COORDKILL_LOCAL_US;
        rc = p2c2r_client_connect(h_addr(), &co_opts, &c);
        H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    } else {
        c = h_renter("bench-frame");
    }
    if (opt.trace) {
        rc = p2c2r_client_trace_start(c, opt.trace);
        H_REQUIRE(rc == 0, "trace to %s: %s", opt.trace, h_err(rc));
    }

    char *map = h_map_text(256, 255); /* 64 KB */
    uint8_t map_hash[32];
    rc = p2c2r_client_put_blob(c, map, strlen(map), h_bound_ms(10000), map_hash);
    H_REQUIRE(rc == 0, "put the map: %s", h_err(rc));
    char path_params[128], hex[65];
    p2c2r_blob_hex(map_hash, hex);
    snprintf(path_params, sizeof(path_params), "paths=1\nmap=%s", hex);
    char *phys = physics_scene();
    static uint8_t rgb[64 * 64 * 3];
    for (size_t i = 0; i < sizeof(rgb); i++)
        rgb[i] = (uint8_t)(i * 31 + i / 192);
    const char *up_params = "in_width=64\nin_height=64\nin_channels=3\nscale=2\nfilter=bilinear\nformat=raw";

    uint64_t frames = (uint64_t)opt.seconds * 60, rng = 0x6672616d65ull;
    uint64_t *sub_us = calloc(frames * 16 + 16, sizeof(uint64_t)); /* by frame << 4 | k: first submit */
    H_REQUIRE(sub_us != NULL, "out of memory");
    int spp = 16;
    uint64_t last_step_s = UINT64_MAX, steps_this_s = 0;
    uint64_t t_start = now_us();
    struct p2c2r_result res[64];
    for (int i = 0; i < 64; i++)
        p2c2r_result_init(&res[i]);

    /* Classifies one result by the frame it arrived in. */
#define TAKE(r, arrive)                                                                       \
    do {                                                                                      \
        uint64_t f_ = (r).user >> 4;                                                          \
        enum kind k_ = (enum kind)((r).user & 15);                                            \
        struct kstat *ks_ = &o->k[k_];                                                        \
        uint64_t fend_ = t_start + (f_ + 1) * FRAME_US;                                       \
        if ((r).status != 0) {                                                                \
            ks_->never++;                                                                     \
            ks_->refused += (r).status == P2C2R_EDEADLINE || (r).status == P2C2R_EQUEUEFULL;   \
            ks_->timed_out += (r).status == P2C2R_ETIMEDOUT;                                  \
            if (!ks_->first_err)                                                              \
                ks_->first_err = (r).status, h_log("%s: first failure %s: %.*s", kind_name[k_],  \
                                                   h_err((r).status), (int)(r).output_len,         \
                                                   (const char *)(r).output);                      \
        }                                                                                     \
        else {                                                                                \
            ks_->local += ((r).flags & P2C2R_RESULT_LOCAL) != 0;                              \
            if ((arrive) <= fend_)                                                            \
                ks_->same++, ks_->settled_same += f_ >= 60;                                   \
            else if ((arrive) <= fend_ + FRAME_US)                                            \
                ks_->next++;                                                                  \
            else                                                                              \
                ks_->later++;                                                                 \
            ks_->exec_us += (r).exec_us;                                                      \
            if ((arrive) > sub_us[(r).user] + DEADLINE_MS * 1000u)                            \
                ks_->late_exec_us += (r).exec_us;                                             \
            push(&ks_->rtt, &ks_->nrtt, &ks_->caprtt, (uint32_t)((arrive) - sub_us[(r).user])); \
        }                                                                                     \
        p2c2r_result_release(&(r));                                                           \
    } while (0)

    for (uint64_t f = 0; f < frames; f++) {
        uint64_t fstart = t_start + f * FRAME_US, fend = fstart + FRAME_US;
        if (sc->kill && f == frames / 2) {
            h_signal(peers[0], SIGKILL);
            h_phase("%s: SIGKILLed %s at frame %" PRIu64, sc->name, peers[0]->name, f);
        }
        if (sc->kill_coord && f == frames / 2) {
            h_signal(co, SIGKILL);
            h_phase("%s: SIGKILLed the coordinator at frame %" PRIu64, sc->name, f);
        }
        uint64_t lib = 0, libcpu = 0, t0 = now_us(), c0 = cpu_us();
        /* Pathfind: 8 one-query tasks from a corner to random cells. */
        for (int q = 0; q < 8; q++) {
            uint32_t gx, gy;
            do { /* a passable goal: h_map_text's walls are where (7x + 13y) % 11 == 0 */
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                gx = (uint32_t)(rng >> 33) % 250 + 3;
                gy = (uint32_t)(rng >> 45) % 250 + 2;
            } while ((gx * 7 + gy * 13) % 11 == 0);
            char in[64];
            snprintf(in, sizeof(in), "queries 1\n1 1 %u %u\n", gx, gy);
            struct p2c2r_task t = task_of(K_PATH, path_params, in, strlen(in), &map_hash, 1, f);
            p2c2r_ticket tk;
            o->k[K_PATH].sent++;
            if (p2c2r_client_submit(c, &t, &tk) != 0)
                o->k[K_PATH].not_sent++, o->k[K_PATH].sent--;
        }
        struct p2c2r_task pt = task_of(K_PHYS, NULL, phys, strlen(phys), NULL, 0, f);
        p2c2r_ticket tk;
        if (p2c2r_client_submit(c, &pt, &tk) == 0)
            o->k[K_PHYS].sent++;
        else
            o->k[K_PHYS].not_sent++;
        struct p2c2r_frame_advice adv;
        p2c2r_frame_advice_init(&adv);
        if (p2c2r_client_frame_advice(c, "raytrace", fstart / 1000, FRAME_US, &adv) == 0 && adv.quality) {
            int before = spp;
            spp = adv.quality < 0 ? (spp > 1 ? spp / 2 : 1) : (spp < 64 ? spp * 2 : 64);
            if (spp != before) {
                adv.quality < 0 ? o->steps_down++ : o->steps_up++;
                uint64_t s = (fstart - t_start) / 1000000u;
                steps_this_s = s == last_step_s ? steps_this_s + 1 : 1;
                last_step_s = s;
                if (steps_this_s > o->max_steps_per_s)
                    o->max_steps_per_s = steps_this_s;
            }
        }
        if (f % 10 == 0) {
            if (adv.fit >= 1) {
                char rp[64];
                snprintf(rp, sizeof(rp), "x=0\ny=0\nw=64\nh=64\nspp=%d", spp);
                struct p2c2r_task rt = task_of(K_RAY, rp, SCENE, strlen(SCENE), NULL, 0, f);
                if (p2c2r_client_submit(c, &rt, &tk) == 0)
                    o->k[K_RAY].sent++, o->k[K_RAY].settled_sent += f >= 60;
                else
                    o->k[K_RAY].not_sent++;
            } else
                o->k[K_RAY].not_sent++;
        }
        if (f % 6 == 0) {
            struct p2c2r_task ut = task_of(K_UP, up_params, rgb, sizeof(rgb), NULL, 0, f);
            if (p2c2r_client_submit(c, &ut, &tk) == 0)
                o->k[K_UP].sent++;
            else
                o->k[K_UP].not_sent++;
        }
        for (int k = 0; k < NKIND; k++)
            sub_us[f << 4 | (uint64_t)k] = t0;
        if (opt.checkpoints) {
            /* A game busy with its own work looks at the fabric only at a
             * few points of the frame; the first look, right after the
             * submits, sends them (p2c2r_client_poll flushes). */
            rc = p2c2r_client_process(c);
            int n = p2c2r_client_poll(c, res, 64, 0);
            uint64_t arrive = now_us();
            for (int i = 0; i < n; i++)
                TAKE(res[i], arrive);
        }
        lib += now_us() - t0;
        libcpu += cpu_us() - c0;
        for (int64_t k = 1; k <= opt.checkpoints; k++) {
            uint64_t at = fstart + FRAME_US * (uint64_t)k / (uint64_t)opt.checkpoints;
            at -= k == opt.checkpoints ? LAST_LOOK_US : 0;
            uint64_t now = now_us();
            if (at > now) {
                struct timespec ts = {0, (long)(at - now) * 1000};
                nanosleep(&ts, NULL);
            }
            t0 = now_us();
            c0 = cpu_us();
            rc = p2c2r_client_process(c);
            H_REQUIRE(rc >= 0 || (sc->kill_coord && f >= frames / 2), "process: %s", h_err(rc));
            int n;
            do {
                n = rc >= 0 || sc->kill_coord ? p2c2r_client_poll(c, res, 64, 0) : 0;
                uint64_t arrive = now_us();
                for (int i = 0; i < n; i++)
                    TAKE(res[i], arrive);
            } while (n == 64);
            lib += now_us() - t0;
            libcpu += cpu_us() - c0;
        }
        /* Wait for results until the frame ends, woken by each. */
        for (; !opt.checkpoints;) {
            uint64_t now = now_us();
            if (now >= fend)
                break;
            struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
            if (pfd.fd < 0)
                break;
            int ms = (int)((fend - now + 999) / 1000);
            /* The library's own timer (local fallback work, a reconnect):
             * -1 while connected with nothing of the kind to do. */
            int due = p2c2r_client_timeout_ms(c);
            if (due >= 0 && due < ms)
                ms = due;
            if (poll(&pfd, 1, ms) <= 0 && due < 0)
                continue;
            t0 = now_us();
            c0 = cpu_us();
            rc = p2c2r_client_process(c);
            /* Once the coordinator is gone process reports it, and the
             * local fallback's results still come through poll. */
            int n = rc >= 0 || sc->kill_coord ? p2c2r_client_poll(c, res, 64, 0) : 0;
            uint64_t arrive = now_us();
            lib += arrive - t0;
            libcpu += cpu_us() - c0;
            H_REQUIRE(rc >= 0 || (sc->kill_coord && f >= frames / 2), "process: %s", h_err(rc));
            for (int i = 0; i < n; i++)
                TAKE(res[i], arrive);
        }
        push(&o->lib, &o->nlib, &o->caplib, (uint32_t)lib);
        push(&o->libcpu, &o->nlibcpu, &o->caplibcpu, (uint32_t)libcpu);
        o->frames++;
    }
    /* Stragglers: a bounded drain; what does not come is "never". */
    uint64_t end = now_us() + 2000000u;
    while (p2c2r_client_pending(c) > 0 && now_us() < end) {
        int n = p2c2r_client_poll(c, res, 64, 50);
        uint64_t arrive = now_us();
        for (int i = 0; i < n; i++)
            TAKE(res[i], arrive);
    }
#undef TAKE
    for (int k = 0; k < NKIND; k++) {
        struct kstat *ks = &o->k[k];
        uint64_t got = ks->same + ks->next + ks->later + ks->never;
        ks->lost = got < ks->sent ? ks->sent - got : 0; /* no result at all: counted as never too */
        ks->extra = got > ks->sent ? got - ks->sent : 0;
    }
    o->spp_final = spp;
    if (opt.trace)
        p2c2r_client_trace_stop(c);
    p2c2r_client_close(c);
    for (int i = 0; i < sc->peers; i++) {
        if (!(sc->kill && i == 0)) {
            h_stop(peers[i]);
            o->wasted_us += peer_wasted_us(peers[i]);
        } else
            h_stop(peers[i]);
    }
    h_stop(co);
    free(sub_us);
    free(phys);
    free(map);
}

static double share(uint64_t a, uint64_t n) { return n ? 100.0 * (double)a / (double)n : NAN; }

static void report(const struct scen *sc, struct outcome *o)
{
    uint64_t exec = 0, late = 0;
    for (int k = 0; k < NKIND; k++)
        exec += o->k[k].exec_us, late += o->k[k].late_exec_us;
    double lib50 = pct(o->lib, o->nlib, 0.5), lib99 = pct(o->lib, o->nlib, 0.99);
    double cpu50 = pct(o->libcpu, o->nlibcpu, 0.5), cpu99 = pct(o->libcpu, o->nlibcpu, 0.99);
    double waste = share(late + o->wasted_us, exec + o->wasted_us);
    if (opt.json) {
        printf("{\"scenario\":\"%s\",\"frames\":%" PRIu64 ",\"lib_us_p50\":%.0f,\"lib_us_p99\":%.0f,"
               "\"lib_cpu_us_p50\":%.0f,\"lib_cpu_us_p99\":%.0f,"
               "\"wasted_pct\":%.2f,\"raytrace_same_after_1s\":%.2f,\"spp_final\":%d,\"quality_down\":%" PRIu64 ",\"quality_up\":%" PRIu64
               ",\"max_steps_per_s\":%" PRIu64 ",\"types\":{",
               sc->name, o->frames, lib50, lib99, cpu50, cpu99, waste,
               share(o->k[K_RAY].settled_same, o->k[K_RAY].settled_sent), o->spp_final, o->steps_down, o->steps_up, o->max_steps_per_s);
        for (int k = 0; k < NKIND; k++) {
            struct kstat *ks = &o->k[k];
            printf("%s\"%s\":{\"sent\":%" PRIu64 ",\"not_sent\":%" PRIu64 ",\"same\":%.2f,\"next\":%.2f,\"later\":%.2f,"
                   "\"never\":%.2f,\"refused\":%" PRIu64 ",\"timed_out\":%" PRIu64 ",\"local\":%" PRIu64
                   ",\"rtt_us_p50\":%.0f,\"rtt_us_p99\":%.0f}",
                   k ? "," : "", kind_name[k], ks->sent, ks->not_sent, share(ks->same, ks->sent),
                   share(ks->next, ks->sent), share(ks->later, ks->sent), share(ks->never + ks->lost, ks->sent), ks->refused,
                   ks->timed_out, ks->local, pct(ks->rtt, ks->nrtt, 0.5), pct(ks->rtt, ks->nrtt, 0.99));
        }
        printf("}}\n");
        fflush(stdout);
    }
    FILE *out = opt.json ? stderr : stdout;
    fprintf(out, "\n%s: %" PRIu64 " frames; library time per frame p50 %.0f us, p99 %.0f us (CPU p50 %.0f us, "
                 "p99 %.0f us); peer time past "
                 "deadlines %.2f%% (%.1f ms of %.1f ms)\n",
            sc->name, o->frames, lib50, lib99, cpu50, cpu99, waste, (double)(late + o->wasted_us) / 1000.0,
            (double)(exec + o->wasted_us) / 1000.0);
    fprintf(out, "  raytrace: %.2f%% in the same frame after the first second; spp final %d, %" PRIu64
                 " steps down, %" PRIu64 " up, at most %" PRIu64 " step(s) in one second\n",
            share(o->k[K_RAY].settled_same, o->k[K_RAY].settled_sent), o->spp_final, o->steps_down, o->steps_up, o->max_steps_per_s);
    fprintf(out, "  %-9s %7s %8s %8s %8s %8s %8s %8s %8s %9s %9s\n", "type", "sent", "skipped", "same%", "next%",
            "later%", "never%", "refused", "timeout", "rtt p50", "rtt p99");
    for (int k = 0; k < NKIND; k++) {
        struct kstat *ks = &o->k[k];
        fprintf(out, "  %-9s %7" PRIu64 " %8" PRIu64 " %8.2f %8.2f %8.2f %8.2f %8" PRIu64 " %8" PRIu64 " %7.0fus %7.0fus\n",
                kind_name[k], ks->sent, ks->not_sent, share(ks->same, ks->sent), share(ks->next, ks->sent),
                share(ks->later, ks->sent), share(ks->never + ks->lost, ks->sent), ks->refused, ks->timed_out,
                pct(ks->rtt, ks->nrtt, 0.5), pct(ks->rtt, ks->nrtt, 0.99));
    }
    if (sc->kill_coord)
        for (int k = 0; k < NKIND; k++)
            fprintf(out, "  %-9s %" PRIu64 " of %" PRIu64 " run in the game's process (local fallback, %d us per frame)\n",
                    kind_name[k], o->k[k].local, o->k[k].sent, COORDKILL_LOCAL_US);
}

int main(int argc, char **argv)
{
    const struct cliopt opts[] = {
        {"bin-dir", 0, OPT_STR, "DIR", 0, 0, "where p2c2rd and p2c2r-peer are", &opt.bin_dir, CLIOPT_DEFAULT},
        {"scenario", 0, OPT_STR, "LIST", 0, 0, "comma list of scenarios: local2, peers4, kill4, coordkill2", &opt.scenarios,
         CLIOPT_DEFAULT},
        {"seconds", 0, OPT_INT, "S", 1, 3600, "seconds of frames per scenario (--quick: 3)", &opt.seconds,
         CLIOPT_DEFAULT},
        {"quick", 0, OPT_FLAG, NULL, 0, 0, "smoke run: 3 s per scenario unless --seconds is given", &opt.quick},
        {"trace", 0, OPT_STR, "FILE", 0, 0, "write a Chrome trace of every task (the last scenario's)", &opt.trace},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "one JSON line per scenario on stdout (the tables go to stderr)", &opt.json},
        {"pin", 0, OPT_FLAG, NULL, 0, 0, "the game on CPU 0, the coordinator and peers on the other CPUs", &opt.pin},
        {"checkpoints", 0, OPT_INT, "N", 0, 16, "look at the fabric N times a frame (the last 0.3 ms before its end) "
         "instead of waking for every result (0)", &opt.checkpoints, CLIOPT_DEFAULT},
    };
    int nopts = (int)(sizeof(opts) / sizeof(opts[0]));
    int64_t seconds_default = opt.seconds;
    int pos;
    int rc = cliopt_parse(argc, argv, opts, nopts, "bench_frame", "[OPTIONS]",
                          "A game's 60 Hz frame loop offloading pathfind, physics, ray-traced tiles and upscales\n"
                          "with 16 ms deadlines (see bench/bench_frame.c).",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc) {
        fprintf(stderr, "bench_frame: unexpected argument '%s'\n", argv[pos]);
        return 2;
    }
    const struct scen *list[NSCENS];
    int nlist = 0;
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", opt.scenarios);
    for (char *s = buf, *tok; (tok = strsep(&s, ",")) != NULL;) {
        if (!*tok)
            continue;
        const struct scen *found = NULL;
        for (size_t i = 0; i < NSCENS; i++)
            if (strcmp(scens[i].name, tok) == 0)
                found = &scens[i];
        if (!found || nlist == (int)NSCENS) {
            fprintf(stderr, "bench_frame: unknown scenario '%s': use local2, peers4, kill4 or coordkill2\n", tok);
            return 2;
        }
        list[nlist++] = found;
    }
    if (opt.quick && opt.seconds == seconds_default)
        opt.seconds = 3;
    char coord[1024], peer[1024];
    snprintf(coord, sizeof(coord), "%s/p2c2rd", opt.bin_dir);
    snprintf(peer, sizeof(peer), "%s/p2c2r-peer", opt.bin_dir);
    setenv("P2C2R_TEST_TIMEOUT", opt.quick ? "300" : "7200", 0);
    char *hargv[] = {argv[0], coord, peer, NULL};
    h_init(3, hargv, "bench-frame");
    for (int i = 0; i < nlist; i++) {
        struct outcome o;
        run(list[i], &o);
        report(list[i], &o);
        /* The smoke run judges only that every task had one outcome and
         * something came back: the figures are for docs/PERFORMANCE.md. */
        for (int k = 0; k < NKIND; k++) {
            struct kstat *ks = &o.k[k];
            H_CHECK(ks->lost == 0 && ks->extra == 0,
                    "%s %s: %" PRIu64 " tasks got no result, %" PRIu64 " results too many (of %" PRIu64 ")",
                    list[i]->name, kind_name[k], ks->lost, ks->extra, ks->sent);
            /* Tiles may all miss their frame; so may a sanitizer build's
             * upscale, several times slower than its frame deadline under
             * ASan on a busy machine. */
            int may_be_none = k == K_RAY || (k == K_UP && h_sanitized());
            H_CHECK(may_be_none || ks->same + ks->next + ks->later > 0, "%s %s: nothing delivered", list[i]->name,
                    kind_name[k]);
            free(ks->rtt);
        }
        free(o.lib);
        free(o.libcpu);
    }
    return h_finish();
}
