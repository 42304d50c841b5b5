/* test_local_fallback.c - the client library's local fallback (issue 10, item 5): when the
 * coordinator dies mid-frame, the frame's tasks of built-in types run in the renter's own
 * process within its local budget, with the same bytes a peer returned, one outcome each.
 *
 * - teach:  a real p2c2r-peer runs 8 pathfind tasks (a 64x64 map, inline in 4, as a blob the
 *           renter uploaded in 4: the library keeps a blob's bytes), a physics step and a
 *           small ray-traced tile (16x16, 1 spp), each twice: the renter keeps the peer's
 *           bytes, and the library learns each type's time per cost unit from the results;
 * - hold:   the real peer leaves and a fake peer that never answers takes its place, so the
 *           next frame's tasks stay in flight (held, or queued behind): the same 10 tasks plus a big tile (128x128 at
 *           64 spp, thousands of times the small one's cost: over any frame's budget), from a
 *           renter with local_fallback_us set, and 2 pathfind tasks from a renter without it;
 * - kill:   SIGKILL to the coordinator; a frame loop (poll the fd with timeout_ms, process,
 *           poll results) collects every result: the 10 fitting tasks come back status 0,
 *           flagged P2C2R_RESULT_LOCAL, peer 0, byte for byte the peer's output; the big tile
 *           gets the connection's failure (not LOCAL: it never ran); each ticket exactly one
 *           result, and nothing more arrives afterwards; the renter without the fallback gets
 *           ECLOSED (or EIO) once per task, never a local run;
 * - after:  while disconnected (FAILED), a new pathfind task runs locally with the peer's
 *           bytes, a task naming a blob the library does not hold is refused at submit, and
 *           one cancelled before it ran ends ECANCELLED, not run.
 * - budget: a renter whose frame is a minute long and whose budget is 2 ms submits 1000
 *           small tiles (300 ms deadline) while no coordinator is reachable: some run, the
 *           rest wait for the next frame and time out; one result each.
 * - refused: a new coordinator whose only peer serves physics slowly (a fake peer, 60 ms a
 *           step, taught by a renter without the fallback) refuses the game's physics step
 *           with a 30 ms deadline (EDEADLINE) and a sha256 task no peer serves
 *           (EUNSUPPORTED): both run in the game's process, LOCAL, with the right bytes; a
 *           step 10,000 times as costly is refused and over the local budget: its outcome is
 *           the refusal, not run; a renter without the fallback gets the refusals.
 * Nothing is judged by wall-clock speed: which tasks fit follows from the costs (the big tile
 * costs 4096 times a small one), the rest are outcomes and bytes. */
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define NPATH 8
#define NFIT (NPATH + 2) /* pathfind, physics, the small tile */
#define BIG NFIT         /* user value of the big tile */
#define BUDGET_US 8000
#define DEADLINE_MS 20000
#define NBUDGET 1000
#define SMALL_BUDGET_US 2000

static const char SCENE[] =
    "{\"width\": 128, \"height\": 128, \"max_depth\": 4, \"background\": [0.5, 0.6, 0.7], "
    "\"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50}, "
    "\"spheres\": [{\"center\": [0, 0, 0], \"radius\": 1, \"material\": {\"type\": \"glass\", "
    "\"ior\": 1.5}}, {\"center\": [0, -101, 0], \"radius\": 100, \"material\": "
    "{\"type\": \"metal\", \"albedo\": [0.8, 0.8, 0.8], \"fuzz\": 0.3}}]}";
static const char PHYSICS[] =
    "{\"gravity\": [0, -9.81, 0], \"dt\": 0.016, \"steps\": 4, \"planes\": [{\"id\": 0, \"normal\": [0, 1, 0], "
    "\"offset\": 0}], \"bodies\": [{\"id\": 1, \"shape\": \"sphere\", \"mass\": 1, \"radius\": 0.4, "
    "\"position\": [0, 1.5, 0]}, {\"id\": 2, \"shape\": \"box\", \"mass\": 1, \"half_extents\": [0.4, 0.4, 0.4], "
    "\"position\": [1, 2.5, 0]}]}";

/* The tasks of one frame, by user value: 0..3 pathfind with the map inline, 4..7 with the
 * map as a blob, 8 physics, 9 small tile, 10 big. */
struct frame_tasks {
    char *path_in[NPATH];
    char map_params[80];
    uint8_t map_hash[1][32];
    struct p2c2r_task t[NFIT + 1];
};

static void frame_init(struct frame_tasks *ft, const char *map, const uint8_t hash[32])
{
    size_t ml = strlen(map);
    memcpy(ft->map_hash[0], hash, 32);
    char hex[65];
    p2c2r_blob_hex(hash, hex);
    snprintf(ft->map_params, sizeof(ft->map_params), "map=%s", hex);
    for (int q = 0; q < NPATH; q++) {
        uint32_t gx = 60, gy = 10 + (uint32_t)q * 6;
        while ((gx * 7 + gy * 13) % 11 == 0) /* h_map_text's walls */
            gx--;
        char *in = malloc(ml + 64);
        H_REQUIRE(in != NULL, "out of memory");
        snprintf(in, ml + 64, "%squeries 1\n1 1 %u %u\n", q < NPATH / 2 ? map : "", gx, gy);
        ft->path_in[q] = in;
    }
    for (int i = 0; i <= NFIT; i++) {
        struct p2c2r_task *t = &ft->t[i];
        p2c2r_task_init(t);
        t->priority = P2C2R_PRIO_REALTIME;
        t->deadline_ms = DEADLINE_MS;
        t->flags = P2C2R_TASK_NOCACHE; /* every run is a peer's run */
        t->user = (uint64_t)i;
        if (i < NPATH) {
            t->type = "pathfind";
            t->input = ft->path_in[i];
            t->input_len = strlen(ft->path_in[i]);
            if (i >= NPATH / 2) {
                t->params = ft->map_params;
                t->params_len = strlen(ft->map_params);
                t->blobs = (const uint8_t(*)[32])ft->map_hash;
                t->nblobs = 1;
            }
        } else if (i == NPATH) {
            t->type = "physics";
            t->input = PHYSICS;
            t->input_len = strlen(PHYSICS);
        } else {
            t->type = "raytrace";
            t->input = SCENE;
            t->input_len = strlen(SCENE);
            t->params = i == BIG ? "x=0\ny=0\nw=128\nh=128\nspp=64" : "x=0\ny=0\nw=16\nh=16\nspp=1";
            t->params_len = strlen(t->params);
        }
    }
}

static void frame_fini(struct frame_tasks *ft)
{
    for (int q = 0; q < NPATH; q++)
        free(ft->path_in[q]);
}

struct tally {
    int n[NFIT + 1];
    struct p2c2r_result r[NFIT + 1]; /* the first result of each */
    int extra;                       /* results with an unknown user value */
};

/* A frame loop: poll the fd (for at most timeout_ms, and at most 20 ms), process, collect.
 * Runs until want results arrived or bound_ms passed; returns the loop's iterations. */
static int frame_loop(p2c2r_client *c, struct tally *ty, int want, int bound_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(bound_ms);
    int got = 0, iters = 0;
    for (int i = 0; i <= NFIT; i++)
        got += ty->n[i];
    while (got < want && h_now_ms() < end) {
        iters++;
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN, 0};
        int to = p2c2r_client_timeout_ms(c);
        poll(&pfd, 1, to < 0 || to > 20 ? 20 : to);
        p2c2r_client_process(c);
        struct p2c2r_result rs[16];
        for (int k = 0; k < 16; k++)
            p2c2r_result_init(&rs[k]);
        int n = p2c2r_client_poll(c, rs, 16, 0);
        for (int k = 0; k < n; k++) {
            uint64_t u = rs[k].user;
            if (u > NFIT) {
                ty->extra++;
                p2c2r_result_release(&rs[k]);
                continue;
            }
            if (ty->n[u]++ == 0)
                ty->r[u] = rs[k];
            else
                p2c2r_result_release(&rs[k]);
            got++;
        }
    }
    return iters;
}

/* A renter that never reached a coordinator (the address refuses) submits NBUDGET copies of
 * the small tile (256 samples of a glass ball: tens of us at the very least) with a short
 * deadline; its frame is a minute long, so what does not fit the first frame's
 * SMALL_BUDGET_US waits past its deadline.  NBUDGET tiles take far more than the budget, so
 * some run locally (the first always may: nothing is known of the type yet) and some do
 * not; each gets one result. */
static void budget_check(const struct p2c2r_task *proto, const uint8_t *want, size_t want_len,
                         uint32_t tile_us)
{
    struct p2c2r_client_options o;
    p2c2r_client_options_init(&o);
    o.connect_timeout_ms = h_bound_ms(5000);
    /* SMALL_BUDGET_US, or 32 tiles' time on the peer when that is more (a
     * sanitizer build, a busy machine; a first local run is slower still):
     * a budget one tile overruns would refuse every later tile as over the
     * whole budget. */
    uint64_t budget = (uint64_t)tile_us * 32 > SMALL_BUDGET_US ? (uint64_t)tile_us * 32 : SMALL_BUDGET_US;
    o.local_fallback_us = (uint32_t)(budget < 1000000 ? budget : 1000000);
    h_log("budget: %u us a frame (the tile took up to %u us on the peer)", o.local_fallback_us, tile_us);
    o.local_frame_us = 60000000;
    p2c2r_client *d;
    int rc = p2c2r_client_connect_start(h_addr(), &o, &d);
    H_REQUIRE(rc == 0, "connect_start: %s", h_err(rc));
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (p2c2r_client_state(d) != P2C2R_STATE_FAILED && h_now_ms() < end) {
        struct pollfd pfd = {p2c2r_client_fd(d), POLLIN | POLLOUT, 0};
        poll(&pfd, 1, 20);
        p2c2r_client_process(d);
    }
    H_REQUIRE(p2c2r_client_state(d) == P2C2R_STATE_FAILED, "state %d", p2c2r_client_state(d));
    static p2c2r_ticket tk[NBUDGET];
    struct p2c2r_task t = *proto;
    t.deadline_ms = 300;
    for (int i = 0; i < NBUDGET; i++) {
        t.user = (uint64_t)i;
        rc = p2c2r_client_submit(d, &t, &tk[i]);
        H_REQUIRE(rc == 0, "submit %d while disconnected: %s", i, h_err(rc));
    }
    static int seen[NBUDGET];
    int results = 0, local = 0, timed_out = 0, other = 0;
    uint64_t local_us = 0;
    end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    int n = 0;
    while (results < NBUDGET && h_now_ms() < end) {
        int to = p2c2r_client_timeout_ms(d);
        if (n < 16) /* a full poll: more may be ready at once */
            poll(NULL, 0, to < 0 || to > 20 ? 20 : to);
        struct p2c2r_result rs[16];
        for (int k = 0; k < 16; k++)
            p2c2r_result_init(&rs[k]);
        n = p2c2r_client_poll(d, rs, 16, 0);
        for (int k = 0; k < n; k++) {
            uint64_t u = rs[k].user;
            H_CHECK(u < NBUDGET && seen[u]++ == 0, "a second result for task %llu", (unsigned long long)u);
            results++;
            if (rs[k].status == 0 && (rs[k].flags & P2C2R_RESULT_LOCAL) && rs[k].output_len == want_len &&
                memcmp(rs[k].output, want, want_len) == 0) {
                local++;
                local_us += rs[k].exec_us;
            }
            else if (rs[k].status == P2C2R_ETIMEDOUT && !(rs[k].flags & P2C2R_RESULT_LOCAL))
                timed_out++;
            else
                other++;
            p2c2r_result_release(&rs[k]);
        }
    }
    h_log("budget: %d results: %d run locally (%llu us in all), %d timed out waiting, %d other", results, local,
          (unsigned long long)local_us, timed_out, other);
    H_CHECK(results == NBUDGET && other == 0, "%d results, %d other", results, other);
    H_CHECK(local >= 1 && local < NBUDGET && local + timed_out == NBUDGET,
            "%d ran locally, %d timed out: the budget should run some and not all", local, timed_out);
    p2c2r_client_close(d);
}

/* A physics scene of PHYSICS's two bodies for n steps (its cost: bodies x steps). */
static char *physics_steps(int n)
{
    char *p = strdup(PHYSICS);
    H_REQUIRE(p != NULL, "out of memory");
    char *at = strstr(p, "\"steps\": 4");
    H_REQUIRE(at != NULL, "PHYSICS has no steps");
    char *out = malloc(strlen(p) + 16);
    H_REQUIRE(out != NULL, "out of memory");
    snprintf(out, strlen(p) + 16, "%.*s\"steps\": %d%s", (int)(at - p), p, n, at + strlen("\"steps\": 4"));
    free(p);
    return out;
}

/* The coordinator is up but refuses: the game runs what fits itself (want: the physics step's
 * bytes from a real peer). */
static void refused_check(const uint8_t *want, size_t want_len)
{
    const char *cargs[] = {"--verify", "none", "--no-hedge", NULL};
    h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg fc = {.name = "slow-physics", .types = "physics", .slots = 4, .delay_ms = 60};
    struct h_fake_peer *slow = h_fake_peer_start(&fc);
    h_wait_peers(1, NULL);
    /* Another renter teaches the coordinator the fake's 60 ms a step. */
    p2c2r_client *teacher = h_renter("teacher");
    struct p2c2r_task t;
    p2c2r_task_init(&t);
    t.type = "physics";
    t.input = PHYSICS;
    t.input_len = strlen(PHYSICS);
    t.flags = P2C2R_TASK_NOCACHE;
    t.deadline_ms = DEADLINE_MS;
    for (int i = 0; i < 24; i++) {
        struct p2c2r_result r = h_wait(teacher, h_submit(teacher, &t), 30000);
        H_REQUIRE(r.status == 0, "teaching step %d: %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    struct p2c2r_client_options o;
    p2c2r_client_options_init(&o);
    o.name = "game-refused";
    o.connect_timeout_ms = h_bound_ms(5000);
    o.local_fallback_us = BUDGET_US;
    p2c2r_client *g;
    int rc = p2c2r_client_connect(h_addr(), &o, &g);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    /* 30 ms: the peers would take 60 ms, the game's own run about a millisecond. */
    t.deadline_ms = 30;
    t.priority = P2C2R_PRIO_REALTIME;
    struct p2c2r_result r = h_wait(g, h_submit(g, &t), 10000);
    H_CHECK(r.status == 0 && (r.flags & P2C2R_RESULT_LOCAL) && r.peer_id == 0 && r.output_len == want_len &&
                memcmp(r.output, want, want_len) == 0,
            "a step the coordinator refused (EDEADLINE) ran locally with a peer's bytes: %s flags %#x %.200s",
            h_err(r.status), r.flags, r.status && r.output ? (const char *)r.output : "");
    h_log("refused: the step ran locally in %u us", r.exec_us);
    p2c2r_result_release(&r);
    /* 10,000 times the step's cost (40,000 steps): refused, and over the local budget (8 ms)
     * by the time per unit the game's own run taught (a 4-step run takes far more than 1 us).
     * Sent right after the first refusal: a second later the coordinator would admit a
     * physics task as a probe (admission_decide). */
    char *huge = physics_steps(40000);
    struct p2c2r_task ht = t;
    ht.input = huge;
    ht.input_len = strlen(huge);
    r = h_wait(g, h_submit(g, &ht), 10000);
    H_CHECK(r.status == P2C2R_EDEADLINE && !(r.flags & P2C2R_RESULT_LOCAL),
            "a refused step over the local budget keeps its refusal: %s flags %#x", h_err(r.status), r.flags);
    if (r.output)
        h_log("its reason: %.*s", (int)r.output_len, (const char *)r.output);
    p2c2r_result_release(&r);
    /* The same step from a renter without the fallback: the refusal (or, on a machine so
     * loaded that a second passed since the first refusal, a probe the fake peer runs). */
    r = h_wait(teacher, h_submit(teacher, &t), 10000);
    H_CHECK(r.status == P2C2R_EDEADLINE || (r.status == 0 && h_stat("counters.admission_probes") >= 1),
            "without the fallback: %s (want EDEADLINE)", h_err(r.status));
    p2c2r_result_release(&r);
    /* No peer serves sha256. */
    static const char text[] = "run me where you can";
    struct p2c2r_task st;
    p2c2r_task_init(&st);
    st.type = "sha256";
    st.input = text;
    st.input_len = sizeof(text) - 1;
    uint8_t md[32];
    h_sha256(text, sizeof(text) - 1, md);
    r = h_wait(g, h_submit(g, &st), 10000);
    H_CHECK(r.status == 0 && (r.flags & P2C2R_RESULT_LOCAL) && r.output_len == 32 && memcmp(r.output, md, 32) == 0,
            "a type no peer serves (EUNSUPPORTED) ran locally: %s flags %#x", h_err(r.status), r.flags);
    p2c2r_result_release(&r);
    r = h_wait(teacher, h_submit(teacher, &st), 10000);
    H_CHECK(r.status == P2C2R_EUNSUPPORTED, "without the fallback: %s (want EUNSUPPORTED)", h_err(r.status));
    p2c2r_result_release(&r);
    struct p2c2r_pressure pr;
    p2c2r_pressure_init(&pr);
    rc = p2c2r_client_type_pressure(g, "physics", &pr);
    H_CHECK(rc == 0 && pr.rejected_deadline == 2, "the frame helper counts both refusals: %s, %llu",
            h_err(rc), (unsigned long long)pr.rejected_deadline);
    H_CHECK(p2c2r_client_pending(g) == 0, "%zu pending", p2c2r_client_pending(g));
    free(huge);
    p2c2r_client_close(g);
    p2c2r_client_close(teacher);
    h_fake_peer_stop(slow);
}

static void tally_fini(struct tally *ty)
{
    for (int i = 0; i <= NFIT; i++)
        if (ty->n[i])
            p2c2r_result_release(&ty->r[i]);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "local_fallback");
    h_phase("setup: a coordinator and a real peer");
    const char *cargs[] = {"--verify", "none", "--no-hedge", NULL};
    h_coord_start(NULL, cargs);
    struct h_proc *worker = h_peer_start("worker", 2, "pathfind,physics,raytrace", NULL);
    h_wait_peers(1, NULL);
    char *map = h_map_text(64, 64);

    struct p2c2r_client_options o;
    p2c2r_client_options_init(&o);
    o.name = "game";
    o.connect_timeout_ms = h_bound_ms(5000);
    o.local_fallback_us = BUDGET_US;
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    p2c2r_client *plain = h_renter("plain");
    /* The map as a blob too: the library keeps its bytes for local runs. */
    uint8_t hash[32];
    rc = p2c2r_client_put_blob(c, map, strlen(map), h_bound_ms(10000), hash);
    H_REQUIRE(rc == 0, "put_blob: %s", h_err(rc));
    struct frame_tasks ft;
    frame_init(&ft, map, hash);

    h_phase("teach: each fitting task twice on the real peer; keep its bytes");
    uint8_t *ref[NFIT] = {0};
    size_t ref_len[NFIT] = {0};
    uint32_t tile_us = 0; /* the small tile's longest run on the peer */
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < NFIT; i++) {
            struct p2c2r_result r = h_wait(c, h_submit(c, &ft.t[i]), 30000);
            H_REQUIRE(r.status == 0, "task %d on the peer: %s %.200s", i, h_err(r.status),
                      r.output ? (const char *)r.output : "");
            H_CHECK(!(r.flags & P2C2R_RESULT_LOCAL) && r.peer_id != 0, "task %d: flags %#x peer %u", i, r.flags,
                    r.peer_id);
            if (i == NPATH + 1 && r.exec_us > tile_us)
                tile_us = r.exec_us;
            if (!ref[i]) {
                ref[i] = malloc(r.output_len + 1);
                H_REQUIRE(ref[i] != NULL, "out of memory");
                memcpy(ref[i], r.output, r.output_len);
                ref_len[i] = r.output_len;
            } else {
                H_CHECK(r.output_len == ref_len[i] && memcmp(r.output, ref[i], ref_len[i]) == 0,
                        "task %d: two peer runs differ", i);
            }
            p2c2r_result_release(&r);
        }

    h_phase("hold: a peer that never answers; a frame's tasks in flight");
    h_stop(worker);
    h_wait_peers(0, NULL);
    struct h_fake_peer_cfg fc = {.name = "holder", .types = "pathfind,physics,raytrace", .slots = 64,
                                 .delay_ms = H_FAKE_NEVER};
    struct h_fake_peer *fp = h_fake_peer_start(&fc);
    h_wait_peers(1, NULL);
    p2c2r_ticket tk[NFIT + 1], ptk[2];
    for (int i = 0; i <= NFIT; i++)
        tk[i] = h_submit(c, &ft.t[i]);
    for (int i = 0; i < 2; i++)
        ptk[i] = h_submit(plain, &ft.t[i]);
    H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0 && p2c2r_client_flush(plain, h_bound_ms(5000)) == 0,
              "flush");
    /* Accepted: held by the peer (it may hold 8 at first) or queued behind. */
    long long live = h_wait_live(NULL, NFIT + 1 + 2, 10000);
    H_REQUIRE(live >= NFIT + 1 + 2, "the coordinator has %lld tasks live", live);
    H_REQUIRE(h_fake_peer_wait_assigned(fp, 4, 10000), "the holder got no task");

    h_phase("kill: SIGKILL to the coordinator with %d tasks in flight", NFIT + 1);
    h_signal(h_coord(), SIGKILL);
    struct tally ty;
    memset(&ty, 0, sizeof(ty));
    int iters = frame_loop(c, &ty, NFIT + 1, 20000);
    h_log("kill: all results after %d loop iterations", iters);
    for (int i = 0; i < NFIT; i++) {
        H_CHECK(ty.n[i] == 1, "task %d: %d results", i, ty.n[i]);
        if (!ty.n[i])
            continue;
        struct p2c2r_result *r = &ty.r[i];
        H_CHECK(r->status == 0, "task %d: %s %.200s", i, h_err(r->status), r->output ? (const char *)r->output : "");
        H_CHECK((r->flags & P2C2R_RESULT_LOCAL) && r->peer_id == 0 && r->attempts == 0,
                "task %d: flags %#x peer %u attempts %u", i, r->flags, r->peer_id, r->attempts);
        H_CHECK(r->ticket.id == tk[i].id, "task %d: ticket %llu, want %llu", i, (unsigned long long)r->ticket.id,
                (unsigned long long)tk[i].id);
        H_CHECK(r->output_len == ref_len[i] && memcmp(r->output, ref[i], ref_len[i]) == 0,
                "task %d: the local bytes (%zu) differ from the peer's (%zu)", i, r->output_len, ref_len[i]);
    }
    H_CHECK(ty.n[BIG] == 1, "big tile: %d results", ty.n[BIG]);
    if (ty.n[BIG])
        H_CHECK((ty.r[BIG].status == P2C2R_ECLOSED || ty.r[BIG].status == P2C2R_EIO) &&
                    !(ty.r[BIG].flags & P2C2R_RESULT_LOCAL),
                "big tile: %s, flags %#x (want the connection's failure, not run)", h_err(ty.r[BIG].status),
                ty.r[BIG].flags);
    /* Nothing more: a few more frames of the loop bring no result. */
    struct tally more;
    memset(&more, 0, sizeof(more));
    frame_loop(c, &more, 1, 300);
    int nmore = more.extra;
    for (int i = 0; i <= NFIT; i++)
        nmore += more.n[i];
    H_CHECK(nmore == 0 && ty.extra == 0 && p2c2r_client_pending(c) == 0, "%d more results, %d unknown, %zu pending",
            nmore, ty.extra, p2c2r_client_pending(c));
    tally_fini(&more);
    tally_fini(&ty);
    /* Without the fallback: the connection's failure, once per task. */
    for (int i = 0; i < 2; i++) {
        struct p2c2r_result r = h_wait(plain, ptk[i], 10000);
        H_CHECK((r.status == P2C2R_ECLOSED || r.status == P2C2R_EIO) && !(r.flags & P2C2R_RESULT_LOCAL),
                "plain renter task %d: %s flags %#x", i, h_err(r.status), r.flags);
        p2c2r_result_release(&r);
    }
    H_CHECK(p2c2r_client_pending(plain) == 0, "plain renter: %zu pending", p2c2r_client_pending(plain));

    h_phase("after: submits while the coordinator is gone");
    H_CHECK(p2c2r_client_state(c) == P2C2R_STATE_FAILED, "state %d", p2c2r_client_state(c));
    struct p2c2r_result r = h_wait(c, h_submit(c, &ft.t[3]), 10000);
    H_CHECK(r.status == 0 && (r.flags & P2C2R_RESULT_LOCAL) && r.output_len == ref_len[3] &&
                memcmp(r.output, ref[3], ref_len[3]) == 0,
            "a task submitted while disconnected: %s flags %#x", h_err(r.status), r.flags);
    p2c2r_result_release(&r);
    /* A blob the library does not hold (another renter uploaded it, say):
     * refused at submit, as without the fallback. */
    static const uint8_t other[1][32] = {{1, 2, 3}};
    struct p2c2r_task bt = ft.t[NPATH - 1];
    bt.blobs = other;
    bt.nblobs = 1;
    p2c2r_ticket btk;
    rc = p2c2r_client_submit(c, &bt, &btk);
    H_CHECK(rc != 0 && rc != P2C2R_EAGAIN, "a task with a blob while disconnected: %s", h_err(rc));
    /* Cancelled before it ran: ECANCELLED, and it does not run. */
    p2c2r_ticket ctk = h_submit(c, &ft.t[NPATH]);
    H_CHECK(p2c2r_client_cancel(c, ctk) == 0, "cancel");
    r = h_wait(c, ctk, 10000);
    H_CHECK(r.status == P2C2R_ECANCELLED && !(r.flags & P2C2R_RESULT_LOCAL), "cancelled: %s flags %#x",
            h_err(r.status), r.flags);
    p2c2r_result_release(&r);

    h_phase("budget: %d tasks while disconnected, one long frame of %d us", NBUDGET, SMALL_BUDGET_US);
    budget_check(&ft.t[NPATH + 1], ref[NPATH + 1], ref_len[NPATH + 1], tile_us);

    p2c2r_client_close(c);
    p2c2r_client_close(plain);
    h_fake_peer_stop(fp);

    refused_check(ref[NPATH], ref_len[NPATH]);

    for (int i = 0; i < NFIT; i++)
        free(ref[i]);
    frame_fini(&ft);
    free(map);
    return h_finish();
}
