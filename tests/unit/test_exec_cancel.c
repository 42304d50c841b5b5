/* test_exec_cancel.c - the cooperative cancel flag of executor ABI 3: every
 * built-in executor returns P2C2R_ECANCELLED, with a bounded amount of work
 * done, when its flag is set.
 *
 * Three kinds of check, none of them on wall-clock time:
 *   - the flag set before run: nothing is done (no output row written, no
 *     step taken, no node expanded);
 *   - the flag inside the output: the flag is a word of the output buffer
 *     itself, which becomes nonzero when the executor writes that word, so
 *     the executor is cancelled by its own progress at a known point and
 *     must stop within its grain (a pixel, an output row) of it;
 *   - the flag set by another thread while a run that would take far longer
 *     is going on: the run ends with ECANCELLED, short of its full work. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "p2c2r/executor.h"
#include "tasks/pathfind.h"
#include "tasks/physics.h"
#include "tasks/raytrace.h"
#include "tasks/tasks.h"
#include "tasks/upscale.h"

struct out {
    uint8_t *p;
    size_t n;
    uint8_t fill;
    int *flag_at; /* when set: points into p after alloc (offset flag_off) */
    size_t flag_off;
};

static void *alloc_out(struct p2c2r_exec_call *call, size_t n)
{
    struct out *o = call->opaque;
    free(o->p);
    o->p = malloc(n ? n : 1);
    o->n = n;
    memset(o->p, o->fill, n);
    if (o->flag_at) {
        /* The flag is a word of the output: set when the executor writes it. */
        call->cancel = (const int *)(void *)(o->p + o->flag_off);
    }
    return o->p;
}

static int run(const struct p2c2r_executor *e, const char *params, const void *in, size_t len,
               const int *flag, struct out *o)
{
    char err[200] = "";
    struct p2c2r_exec_call call = {
        .input = in,
        .input_len = len,
        .params = params,
        .params_len = params ? strlen(params) : 0,
        .alloc_output = alloc_out,
        .opaque = o,
        .err = err,
        .err_cap = sizeof(err),
        .cancel = flag,
    };
    return e->run(&call);
}

/* ---- a flag set from another thread ---------------------------------------- */

struct setter {
    pthread_t th;
    int flag;
    int delay_ms;
};

static void *setter_main(void *arg)
{
    struct setter *s = arg;
    struct timespec ts = {0, (long)s->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    __atomic_store_n(&s->flag, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void setter_start(struct setter *s, int delay_ms)
{
    s->flag = 0;
    s->delay_ms = delay_ms;
    pthread_create(&s->th, NULL, setter_main, s);
}

static void setter_join(struct setter *s) { pthread_join(s->th, NULL); }

/* ---- echo, sha256 ---------------------------------------------------------- */

static void test_bytes(void)
{
    size_t n = 4u << 20;
    uint8_t *in = calloc(1, n);
    int set = 1;
    struct out o = {0};
    CHECK_EQ(run(&exec_echo, NULL, in, n, &set, &o), P2C2R_ECANCELLED);
    CHECK_EQ(run(&exec_sha256, NULL, in, n, &set, &o), P2C2R_ECANCELLED);
    int clear = 0;
    CHECK_EQ(run(&exec_sha256, NULL, in, n, &clear, &o), 0);
    CHECK_EQ(run(&exec_echo, NULL, in, n, &clear, &o), 0);
    CHECK(o.n == n && memcmp(o.p, in, n) == 0);
    free(o.p);
    free(in);
}

/* ---- raytrace --------------------------------------------------------------- */

static const char SCENE[] =
    "{\"width\": 64, \"height\": 64, \"max_depth\": 4, \"background\": [0.5, 0.6, 0.7], "
    "\"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50}, "
    "\"spheres\": [{\"center\": [0, 0, 0], \"radius\": 1, \"material\": {\"type\": \"diffuse\", "
    "\"albedo\": [0.8, 0.3, 0.3]}}, {\"center\": [0, -101, 0], \"radius\": 100, \"material\": "
    "{\"type\": \"metal\", \"albedo\": [0.8, 0.8, 0.8], \"fuzz\": 0.3}}]}";

static size_t pixels_done(const struct out *o)
{
    size_t k = 0;
    for (size_t i = 0; i + 4 <= o->n; i += 4)
        k += o->p[i + 3] == 255; /* alpha: written with the pixel */
    return k;
}

static void test_raytrace(void)
{
    size_t len = strlen(SCENE);
    int set = 1, clear = 0;
    struct out o = {0};
    /* Set before: not one pixel. */
    CHECK_EQ(run(&exec_raytrace, "spp=4", SCENE, len, &set, &o), P2C2R_ECANCELLED);
    CHECK_EQU(pixels_done(&o), 0);
    /* Clear: the whole frame, as without a flag. */
    struct out ref = {0};
    CHECK_EQ(run(&exec_raytrace, "spp=4", SCENE, len, NULL, &ref), 0);
    CHECK_EQ(run(&exec_raytrace, "spp=4", SCENE, len, &clear, &o), 0);
    CHECK(o.n == ref.n && memcmp(o.p, ref.p, o.n) == 0);
    /* Cancelled by its own progress: the flag is pixel (0, 10), which
     * becomes nonzero when rendered; the next pixel must not be. */
    o.flag_at = &set;
    o.flag_off = (size_t)10 * 64 * 4;
    CHECK_EQ(run(&exec_raytrace, "spp=4", SCENE, len, &clear, &o), P2C2R_ECANCELLED);
    CHECK_EQU(pixels_done(&o), 10 * 64 + 1);
    CHECK(memcmp(o.p, ref.p, (size_t)(10 * 64 + 1) * 4) == 0);
    o.flag_at = NULL;
    /* From another thread, on a run of many seconds (512 spp over the
     * frame): stops short. */
    struct setter s;
    setter_start(&s, 20);
    CHECK_EQ(run(&exec_raytrace, "spp=4096", SCENE, len, &s.flag, &o), P2C2R_ECANCELLED);
    setter_join(&s);
    CHECK(pixels_done(&o) < 64 * 64);
    free(o.p);
    free(ref.p);
}

/* ---- upscale ----------------------------------------------------------------- */

static void test_upscale(void)
{
    static uint8_t raw[32 * 32 * 4];
    for (size_t i = 0; i < sizeof(raw); i++)
        raw[i] = (uint8_t)(i * 7 | 1);
    const char *p = "in_width=32\nin_height=32\nformat=raw\nwidth=256\nheight=256\nfilter=lanczos3";
    int set = 1, clear = 0;
    struct out o = {0}, ref = {0};
    CHECK_EQ(run(&exec_upscale, p, raw, sizeof(raw), NULL, &ref), 0);
    /* Set before: no output row. */
    CHECK_EQ(run(&exec_upscale, p, raw, sizeof(raw), &set, &o), P2C2R_ECANCELLED);
    size_t row = 256 * 4, untouched = 0;
    for (size_t i = 0; i < o.n; i++)
        untouched += o.p[i] == 0;
    CHECK_EQU(untouched, o.n);
    /* Cancelled by row 100's first word (every source byte is odd, so every
     * output word is nonzero): rows after 100 stay unwritten.  The
     * resampler directly, whose output buffer is the caller's. */
    uint8_t *dst = calloc(1, ref.n);
    CHECK_EQ(resample_image_cancel(raw, 32, 32, dst, 256, 256, 4, RESAMPLE_LANCZOS3,
                                   (const int *)(void *)(dst + 100 * row)),
             P2C2R_ECANCELLED);
    CHECK(memcmp(dst, ref.p, 101 * row) == 0);
    for (size_t i = 101 * row; i < ref.n; i++)
        if (dst[i] != 0) {
            CHECK(!"a row after the cancel was written");
            break;
        }
    free(dst);
    /* Nearest has its own loop. */
    (void)clear;
    const char *pn = "in_width=32\nin_height=32\nformat=raw\nwidth=256\nheight=256\nfilter=nearest";
    CHECK_EQ(run(&exec_upscale, pn, raw, sizeof(raw), &set, &o), P2C2R_ECANCELLED);
    /* From another thread, on a large resize. */
    const char *big = "in_width=32\nin_height=32\nformat=raw\nwidth=4096\nheight=4096\nfilter=lanczos3";
    struct setter s;
    setter_start(&s, 20);
    int rc = run(&exec_upscale, big, raw, sizeof(raw), &s.flag, &o);
    setter_join(&s);
    CHECK(rc == P2C2R_ECANCELLED || rc == P2C2R_ENOMEM);
    free(o.p);
    free(ref.p);
}

/* ---- pathfind ---------------------------------------------------------------- */

static char *open_map(uint32_t w, uint32_t h, uint32_t queries)
{
    char *m = malloc(64 + (size_t)(w + 1) * h + 32 + (size_t)queries * 32), *p = m;
    p += sprintf(p, "type octile\nheight %u\nwidth %u\nmap\n", h, w);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            /* Scattered walls make A* expand much of the map. */
            *p++ = (x * 7 + y * 13) % 11 == 0 && x && y && x + 2 < w && y + 1 < h ? '@' : '.';
        *p++ = '\n';
    }
    p += sprintf(p, "queries %u\n", queries);
    for (uint32_t i = 0; i < queries; i++)
        p += sprintf(p, "0 0 %u %u\n", w - 1 - i % 2, h - 1);
    *p = '\0';
    return m;
}

static void test_pathfind(void)
{
    char *m = open_map(512, 512, 1);
    int set = 1;
    struct out o = {0};
    CHECK_EQ(run(&exec_pathfind, "algo=astar", m, strlen(m), &set, &o), P2C2R_ECANCELLED);
    /* One search: the flag is polled before the first expansion. */
    struct pf_map pm;
    size_t used;
    struct pf_search *s;
    struct pf_result r = {0};
    r.expanded = 12345;
    CHECK_EQ(pf_map_parse(&pm, m, strlen(m), &used, NULL, 0), 0);
    CHECK_EQ(pf_search_new(&pm, &s), 0);
    struct pf_query q = {0, 0, 511, 511};
    CHECK_EQ(pf_search_run(s, PF_ALGO_ASTAR, &q, 1, &r), 0);
    uint64_t full = r.expanded;
    CHECK(full > 10 * PF_CANCEL_BATCH);
    pf_search_set_cancel(s, &set);
    r.expanded = 12345;
    CHECK_EQ(pf_search_run(s, PF_ALGO_ASTAR, &q, 1, &r), P2C2R_ECANCELLED);
    CHECK_EQU(r.expanded, 12345); /* not written */
    pf_search_free(s);
    pf_map_fini(&pm);
    free(m);
    /* From another thread: thousands of queries over a big map. */
    m = open_map(2048, 2048, 4000);
    struct setter st;
    setter_start(&st, 20);
    CHECK_EQ(run(&exec_pathfind, "algo=astar\npaths=0", m, strlen(m), &st.flag, &o),
             P2C2R_ECANCELLED);
    setter_join(&st);
    free(m);
    free(o.p);
}

/* ---- physics ----------------------------------------------------------------- */

static char *pile(int n, int steps)
{
    char *s = malloc(256 + (size_t)n * 160), *p = s;
    p += sprintf(p, "{\"steps\": %d, \"planes\": [{\"id\": 0, \"normal\": [0, 1, 0]}], \"bodies\": [",
                 steps);
    for (int i = 0; i < n; i++)
        p += sprintf(p, "%s{\"id\": %d, \"shape\": \"box\", \"mass\": 1, \"half_extents\": [0.5, 0.5, 0.5], "
                        "\"position\": [%d, %d.5, %d]}",
                     i ? ", " : "", i + 1, (i % 20) * 2, 1 + 2 * (i / 400), ((i / 20) % 20) * 2);
    sprintf(p, "]}");
    return s;
}

static void test_physics(void)
{
    char *sc = pile(400, 100000);
    int set = 1;
    struct out o = {0};
    char err[200];
    CHECK_EQ(run(&exec_physics, NULL, sc, strlen(sc), &set, &o), P2C2R_ECANCELLED);
    /* Set before: no step taken. */
    struct phys_scene ps;
    struct phys_world *w;
    CHECK_EQ(phys_scene_parse(sc, strlen(sc), &ps, err, sizeof(err)), 0);
    CHECK_EQ(phys_world_new(&ps.cfg, ps.bodies, ps.nbodies, ps.planes, ps.nplanes, &w, err,
                            sizeof(err)), 0);
    phys_world_set_cancel(w, &set);
    CHECK_EQ(phys_world_run(w, err, sizeof(err)), P2C2R_ECANCELLED);
    CHECK_EQU(phys_world_steps_done(w), 0);
    phys_world_free(w);
    /* From another thread, 100000 steps of 400 boxes: stops short. */
    CHECK_EQ(phys_world_new(&ps.cfg, ps.bodies, ps.nbodies, ps.planes, ps.nplanes, &w, err,
                            sizeof(err)), 0);
    struct setter st;
    setter_start(&st, 20);
    phys_world_set_cancel(w, &st.flag);
    CHECK_EQ(phys_world_run(w, err, sizeof(err)), P2C2R_ECANCELLED);
    setter_join(&st);
    CHECK(phys_world_steps_done(w) < 100000);
    phys_world_free(w);
    phys_scene_fini(&ps);
    free(sc);
    free(o.p);
}

int main(void)
{
    test_bytes();
    test_raytrace();
    test_upscale();
    test_pathfind();
    test_physics();
    return check_report("test_exec_cancel");
}
