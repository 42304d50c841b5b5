/* test_prepared.c - the peer's prepared-state cache (src/peer/prepared.c)
 * against a simple model, and the executors that use it through the
 * executor ABI (pathfind's parsed map, raytrace's scene), wired the way the
 * peer's pool wires a job: one map parsed once for 100 tasks, eviction by
 * bytes, a corrupt blob never cached, and several threads sharing entries
 * (run under ASan by `make test-asan`). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "check.h"
#include "p2c2r/executor.h"
#include "peer/prepared.h"
#include "tasks/pathfind.h"
#include "tasks/raytrace.h"

/* ---- the cache alone ------------------------------------------------------- */

static int freed;

static void obj_free(void *p)
{
    __atomic_fetch_add(&freed, 1, __ATOMIC_RELAXED);
    free(p);
}

static void key_of(uint8_t k[32], int i)
{
    memset(k, 0, 32);
    k[0] = (uint8_t)i;
    k[31] = (uint8_t)(i >> 8);
}

static void test_cache_model(void)
{
    struct prep_cache *c = prep_cache_new(300);
    struct prep_entry *e, *e2;
    struct prep_stats st;
    uint8_t k[32];
    int scope_a, scope_b;
    freed = 0;
    key_of(k, 1);
    CHECK(prep_get(c, &scope_a, k) == NULL);
    char *o1 = strdup("one");
    CHECK_EQ(prep_put(c, &scope_a, k, o1, 100, obj_free, &e), 0);
    CHECK(prep_entry_obj(e) == o1);
    /* The same key in another scope is another entry. */
    CHECK(prep_get(c, &scope_b, k) == NULL);
    /* A second put of the key keeps the first object and frees the new one. */
    char *dup = strdup("dup");
    CHECK_EQ(prep_put(c, &scope_a, k, dup, 100, obj_free, &e2), 0);
    CHECK(e2 == e && prep_entry_obj(e2) == o1);
    CHECK_EQ(freed, 1);
    prep_release(c, e2);
    prep_release(c, e);
    /* Over the cap: refused, the caller keeps it. */
    char *huge = malloc(1);
    key_of(k, 2);
    CHECK_EQ(prep_put(c, &scope_a, k, huge, 301, obj_free, &e), P2C2R_ETOOBIG);
    free(huge);
    /* Fill: 1 (100) + 3, 4 (100 each) = 300; 5 evicts the least recently
     * used unreferenced one. */
    for (int i = 3; i <= 4; i++) {
        key_of(k, i);
        CHECK_EQ(prep_put(c, &scope_a, k, malloc(8), 100, obj_free, &e), 0);
        prep_release(c, e);
    }
    key_of(k, 1);
    e = prep_get(c, &scope_a, k); /* 1 is now the most recent, and held */
    CHECK(e != NULL);
    key_of(k, 5);
    CHECK_EQ(prep_put(c, &scope_a, k, malloc(8), 100, obj_free, &e2), 0);
    prep_release(c, e2);
    key_of(k, 3);
    CHECK(prep_get(c, &scope_a, k) == NULL); /* 3 was the coldest */
    key_of(k, 4);
    e2 = prep_get(c, &scope_a, k);
    CHECK(e2 != NULL);
    prep_release(c, e2);
    /* Entries in use are never evicted, even over the cap: put 6 and 7
     * while holding 1; then 1's release lets the cache shrink. */
    for (int i = 6; i <= 7; i++) {
        key_of(k, i);
        CHECK_EQ(prep_put(c, &scope_a, k, malloc(8), 100, obj_free, &e2), 0);
        prep_release(c, e2);
    }
    prep_cache_stats(c, &st);
    CHECK(st.bytes <= 300);
    key_of(k, 1);
    CHECK(prep_get(c, &scope_a, k) == e); /* still there: it was held */
    prep_release(c, e);
    prep_release(c, e);
    prep_cache_stats(c, &st);
    CHECK_EQU(st.inserts, 6);
    CHECK_EQU(st.races, 1);
    CHECK_EQU(st.refused, 1);
    CHECK_EQU(st.entries * 100, st.bytes);
    CHECK(st.bytes <= 300);
    CHECK_EQU(st.evictions, 6 - st.entries);
    prep_cache_free(c);
    CHECK_EQ(freed, 1 + 6); /* the duplicate and every cached object */
    /* Cap 0: off. */
    c = prep_cache_new(0);
    char *x = malloc(1);
    CHECK_EQ(prep_put(c, &scope_a, k, x, 1, obj_free, &e), P2C2R_ETOOBIG);
    free(x);
    prep_cache_free(c);
}

/* ---- executors on the cache, wired as the peer's pool does ---------------------- */

struct job {
    struct prep_cache *c;
    const void *scope;
    struct prep_entry *held[8];
    int nheld;
    uint8_t *out;
    size_t out_len;
};

static const void *job_get(struct p2c2r_exec_call *call, const uint8_t key[32])
{
    struct job *j = call->prepared_opaque;
    struct prep_entry *e = prep_get(j->c, j->scope, key);
    if (!e)
        return NULL;
    j->held[j->nheld++] = e;
    return prep_entry_obj(e);
}

static int job_put(struct p2c2r_exec_call *call, const uint8_t key[32], void *obj, size_t bytes,
                   p2c2r_prepared_free_fn free_fn, const void **out)
{
    struct job *j = call->prepared_opaque;
    struct prep_entry *e;
    int rc = prep_put(j->c, j->scope, key, obj, bytes, free_fn, &e);
    if (rc)
        return rc;
    j->held[j->nheld++] = e;
    *out = prep_entry_obj(e);
    return 0;
}

static void *job_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct job *j = call->opaque;
    free(j->out);
    j->out = malloc(n ? n : 1);
    j->out_len = n;
    return j->out;
}

/* Runs e with the cache c (NULL: none); returns the status, output in *j. */
static int run_job(struct prep_cache *c, const struct p2c2r_executor *e, const char *params,
                   const char *in, const struct p2c2r_blob *blobs, size_t nblobs, struct job *j)
{
    char err[200] = "";
    free(j->out);
    *j = (struct job){.c = c, .scope = e};
    struct p2c2r_exec_call call = {
        .input = (const uint8_t *)in,
        .input_len = strlen(in),
        .params = params,
        .params_len = strlen(params),
        .alloc_output = job_alloc,
        .opaque = j,
        .err = err,
        .err_cap = sizeof(err),
        .blobs = blobs,
        .nblobs = nblobs,
        .prepared_get = c ? job_get : NULL,
        .prepared_put = c ? job_put : NULL,
        .prepared_opaque = j,
    };
    int rc = e->run(&call);
    for (int i = 0; i < j->nheld; i++)
        prep_release(c, j->held[i]);
    return rc;
}

static void blob_of(struct p2c2r_blob *b, const char *text)
{
    unsigned int n;
    b->data = (const uint8_t *)text;
    b->len = strlen(text);
    EVP_Digest(b->data, b->len, b->hash, &n, EVP_sha256(), NULL);
}

static char *map_text(uint32_t w, uint32_t h, int seed)
{
    char *m = malloc(64 + (size_t)(w + 1) * h), *p = m;
    p += sprintf(p, "type octile\nheight %u\nwidth %u\nmap\n", h, w);
    for (uint32_t y = 0; y < h; y++) {
        for (uint32_t x = 0; x < w; x++)
            *p++ = (x * 7 + y * 13 + (uint32_t)seed) % 9 == 0 && x && y && x < w - 1 && y < h - 1 ? '@' : '.';
        *p++ = '\n';
    }
    *p = '\0';
    return m;
}

static void map_params(char *params, const struct p2c2r_blob *b)
{
    strcpy(params, "paths=1\nmap=");
    for (int i = 0; i < 32; i++)
        sprintf(params + 12 + 2 * i, "%02x", b->hash[i]);
}

static const char *QUERIES = "queries 2\n0 0 63 63\n63 0 0 63\n";

static void test_pathfind_once(void)
{
    char *m = map_text(64, 64, 0);
    struct p2c2r_blob b;
    char params[160];
    blob_of(&b, m);
    map_params(params, &b);
    struct job ref = {0}, j = {0};
    CHECK_EQ(run_job(NULL, &exec_pathfind, params, QUERIES, &b, 1, &ref), 0);
    struct prep_cache *c = prep_cache_new(1 << 20);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(run_job(c, &exec_pathfind, params, QUERIES, &b, 1, &j), 0);
        CHECK(j.out_len == ref.out_len && memcmp(j.out, ref.out, j.out_len) == 0);
    }
    struct prep_stats st;
    prep_cache_stats(c, &st);
    CHECK_EQU(st.inserts, 1); /* parsed once */
    CHECK_EQU(st.misses, 1);
    CHECK_EQU(st.hits, 99);
    CHECK_EQU(st.entries, 1);
    /* Eviction by bytes: a cache that holds one map and two maps in turn. */
    char *m2 = map_text(64, 64, 1);
    struct p2c2r_blob b2;
    char params2[160];
    blob_of(&b2, m2);
    map_params(params2, &b2);
    prep_cache_free(c);
    c = prep_cache_new(64 * 64 + 1000);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(run_job(c, &exec_pathfind, i % 2 ? params2 : params, QUERIES, i % 2 ? &b2 : &b,
                         1, &j),
                 0);
    }
    prep_cache_stats(c, &st);
    CHECK_EQU(st.inserts, 10);
    CHECK_EQU(st.evictions, 9);
    CHECK_EQU(st.entries, 1);
    CHECK(st.bytes <= st.cap);
    prep_cache_free(c);
    free(ref.out);
    free(j.out);
    free(m);
    free(m2);
}

static void test_corrupt_never_cached(void)
{
    const char *bad = "type octile\nheight 4\nwidth 4\nmap\n....\n..x.\n";
    struct p2c2r_blob b;
    char params[160];
    blob_of(&b, bad);
    map_params(params, &b);
    struct prep_cache *c = prep_cache_new(1 << 20);
    struct job j = {0};
    for (int i = 0; i < 3; i++)
        CHECK_EQ(run_job(c, &exec_pathfind, params, "queries 0\n", &b, 1, &j), P2C2R_EINVAL);
    /* Trailing text after the map: also a parse failure. */
    const char *trail = "type octile\nheight 1\nwidth 1\nmap\n.\nqueries 1\n";
    blob_of(&b, trail);
    map_params(params, &b);
    CHECK_EQ(run_job(c, &exec_pathfind, params, "queries 0\n", &b, 1, &j), P2C2R_EINVAL);
    struct prep_stats st;
    prep_cache_stats(c, &st);
    CHECK_EQU(st.inserts, 0);
    CHECK_EQU(st.entries, 0);
    CHECK_EQU(st.misses, 4);
    prep_cache_free(c);
    free(j.out);
}

/* A raytrace scene with a mesh blob: parsed once, the same pixels. */
static void test_raytrace_scene(void)
{
    static const float verts[] = {-1, 0, -1, 1, 0, -1, 0, 1.5f, 0, 0, 0, 1};
    static const uint32_t idx[] = {0, 1, 2, 1, 3, 2, 3, 0, 2};
    size_t n = rt_mesh_blob_size(4, 3);
    uint8_t *mesh = malloc(n);
    CHECK_EQ(rt_mesh_blob_encode(verts, 4, idx, 3, mesh, n), 0);
    struct p2c2r_blob b = {{0}, mesh, n};
    unsigned int hl;
    EVP_Digest(mesh, n, b.hash, &hl, EVP_sha256(), NULL);
    char scene[1024], hex[65];
    for (int i = 0; i < 32; i++)
        sprintf(hex + 2 * i, "%02x", b.hash[i]);
    snprintf(scene, sizeof(scene),
             "{\"width\": 32, \"height\": 32, \"background\": [0.6, 0.7, 0.9], "
             "\"camera\": {\"position\": [0, 1, 4], \"look_at\": [0, 0.5, 0], \"fov\": 45}, "
             "\"meshes\": [{\"blob\": \"%s\", \"material\": {\"type\": \"diffuse\", "
             "\"albedo\": [0.7, 0.7, 0.7]}}]}",
             hex);
    struct job ref = {0}, j = {0};
    CHECK_EQ(run_job(NULL, &exec_raytrace, "spp=2", scene, &b, 1, &ref), 0);
    struct prep_cache *c = prep_cache_new(1 << 20);
    for (int i = 0; i < 4; i++) {
        char p[64];
        snprintf(p, sizeof(p), "spp=2\nx=0\ny=%d\nh=8", 8 * i);
        CHECK_EQ(run_job(c, &exec_raytrace, p, scene, &b, 1, &j), 0);
        CHECK(j.out_len == 32 * 8 * 4 && memcmp(j.out, ref.out + 32 * 8 * 4 * i, j.out_len) == 0);
    }
    struct prep_stats st;
    prep_cache_stats(c, &st);
    CHECK_EQU(st.inserts, 1);
    CHECK_EQU(st.hits, 3);
    prep_cache_free(c);
    free(ref.out);
    free(j.out);
    free(mesh);
}

/* ---- threads ------------------------------------------------------------------ */

#define NTHREADS 4
#define NMAPS 3

struct shared {
    struct prep_cache *c;
    struct p2c2r_blob b[NMAPS];
    char params[NMAPS][160];
    struct job ref[NMAPS];
    int bad;
};

static void *worker(void *arg)
{
    struct shared *s = ((void **)arg)[0];
    int id = (int)(intptr_t)((void **)arg)[1];
    struct job j = {0};
    for (int i = 0; i < 60; i++) {
        int k = (i + id) % NMAPS;
        if (run_job(s->c, &exec_pathfind, s->params[k], QUERIES, &s->b[k], 1, &j) != 0 ||
            j.out_len != s->ref[k].out_len || memcmp(j.out, s->ref[k].out, j.out_len) != 0)
            __atomic_fetch_add(&s->bad, 1, __ATOMIC_RELAXED);
    }
    free(j.out);
    return NULL;
}

static void test_threads(void)
{
    struct shared s = {0};
    char *maps[NMAPS];
    for (int k = 0; k < NMAPS; k++) {
        maps[k] = map_text(64, 64, k);
        blob_of(&s.b[k], maps[k]);
        map_params(s.params[k], &s.b[k]);
        CHECK_EQ(run_job(NULL, &exec_pathfind, s.params[k], QUERIES, &s.b[k], 1, &s.ref[k]), 0);
    }
    /* Room for two of the three maps: entries are evicted while others are
     * in use on other threads. */
    s.c = prep_cache_new(2 * (64 * 64 + 700));
    pthread_t th[NTHREADS];
    void *args[NTHREADS][2];
    for (int t = 0; t < NTHREADS; t++) {
        args[t][0] = &s;
        args[t][1] = (void *)(intptr_t)t;
        pthread_create(&th[t], NULL, worker, args[t]);
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ(s.bad, 0);
    struct prep_stats st;
    prep_cache_stats(s.c, &st);
    CHECK_EQU(st.hits + st.misses, NTHREADS * 60);
    CHECK(st.entries <= 2 && st.bytes <= st.cap);
    prep_cache_free(s.c);
    for (int k = 0; k < NMAPS; k++) {
        free(s.ref[k].out);
        free(maps[k]);
    }
}

int main(void)
{
    test_cache_model();
    test_pathfind_once();
    test_corrupt_never_cached();
    test_raytrace_scene();
    test_threads();
    return check_report("test_prepared");
}
