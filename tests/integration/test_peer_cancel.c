/* test_peer_cancel.c - work stops on the peer when it stops mattering, and
 * repeated tasks over one blob pay its parse once per peer (issue 10, items
 * 2 and 3, the peer's side).
 *
 * One peer with one slot serves raytrace and pathfind.  A raytrace tile and
 * a pathfind batch that would each run for tens of seconds are cancelled by
 * their renter once running (the peer's debug log says it started them),
 * and the tile once more with a deadline that passes while it runs;
 * 102 pathfind tasks then share one map blob, and
 * a corrupt map blob is sent twice.  The peer is stopped and its own
 * counters, logged at exit (peer_exec_stats), say what happened: the three
 * cancelled jobs were running and their executors stopped early
 * (cancelled_stopped), the good map was parsed once (one insert for it, 99
 * hits) and the corrupt one never cached.  Nothing is judged by wall-clock
 * time: the slot coming back, the stop finishing and the counters are what
 * show that the executors stopped. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static struct p2c2r_task task_of(const char *type, const char *params, const void *in, size_t n,
                                 const uint8_t (*blobs)[32], size_t nblobs)
{
    struct p2c2r_task t;
    p2c2r_task_init(&t);
    t.type = type;
    t.priority = P2C2R_PRIO_INTERACTIVE;
    t.params = params;
    t.params_len = params ? strlen(params) : 0;
    t.input = in;
    t.input_len = n;
    t.blobs = blobs;
    t.nblobs = nblobs;
    t.flags = P2C2R_TASK_NOCACHE;
    return t;
}

static char *queries(uint32_t n, uint32_t w, uint32_t h)
{
    char *q = malloc(32 + (size_t)n * 32), *p = q;
    p += sprintf(p, "queries %u\n", n);
    for (uint32_t i = 0; i < n; i++)
        p += sprintf(p, "0 0 %u %u\n", w - 1, h - 1 - i % 2);
    return q;
}

static struct h_proc *peer;

/* Waits (bounded) until the peer's debug log shows n jobs of type started. */
static void wait_started(const char *type, int n)
{
    char needle[64];
    snprintf(needle, sizeof(needle), "event=job_start task=");
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    for (;;) {
        size_t len;
        char *log = h_read_file(peer->log, &len);
        int k = 0;
        for (const char *p = log; p && (p = strstr(p, needle)) != NULL; p++) {
            const char *eol = strchr(p, '\n'), *t = strstr(p, " type=");
            k += t && (!eol || t < eol) && strncmp(t + 6, type, strlen(type)) == 0;
        }
        free(log);
        if (k >= n)
            return;
        H_REQUIRE(h_now_ms() < end, "the peer did not start job %d of type %s", n, type);
        h_sleep_ms(10);
    }
}

/* Submits t, waits until the peer runs it (its debug log), cancels it: the
 * renter gets ECANCELLED at once.  Then a small task needs the peer's only
 * slot, which comes back only when the peer answers the cancelled job. */
static void cancel_running(p2c2r_client *c, const struct p2c2r_task *t, const char *what,
                           const struct p2c2r_task *small, int nth)
{
    h_phase("cancel a running %s", what);
    p2c2r_ticket k = h_submit(c, t);
    int rc = p2c2r_client_flush(c, h_bound_ms(10000)); /* submit only queues it */
    H_REQUIRE(rc == 0, "flush the %s: %s", what, h_err(rc));
    wait_started(t->type, nth);
    rc = p2c2r_client_cancel(c, k);
    H_CHECK(rc == 0, "cancel of the running %s: %s", what, h_err(rc));
    struct p2c2r_result r = h_wait(c, k, 10000);
    H_CHECK(r.status == P2C2R_ECANCELLED, "cancelled %s: status %s", what, h_err(r.status));
    p2c2r_result_release(&r);
    r = h_wait(c, h_submit(c, small), 30000);
    H_CHECK(r.status == 0, "small task after the cancelled %s: status %s", what, h_err(r.status));
    p2c2r_result_release(&r);
}

static uint64_t stat_of(const char *log, const char *key)
{
    const char *line = strstr(log, "peer_exec_stats");
    char k[64];
    snprintf(k, sizeof(k), " %s=", key);
    const char *p = line ? strstr(line, k) : NULL;
    if (!H_CHECK(p != NULL, "peer_exec_stats with %s in the peer's log", key))
        return UINT64_MAX;
    return strtoull(p + strlen(k), NULL, 10);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "peer_cancel");
    h_phase("start daemons");
    h_coord_start(NULL, NULL);
    const char *pargs[] = {"--log-level", "debug", NULL};
    peer = h_peer_start("peer", 1, "raytrace,pathfind", pargs);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("peer_cancel");
    int rc;

    /* The map of the 100 small tasks, and a big one for the long batch. */
    char *small_map = h_map_text(64, 64), *big_map = h_map_text(1024, 1024);
    uint8_t small_hash[32], big_hash[32], bad_hash[32];
    rc = p2c2r_client_put_blob(c, small_map, strlen(small_map), h_bound_ms(10000), small_hash);
    H_REQUIRE(rc == 0, "put the small map: %s", h_err(rc));
    rc = p2c2r_client_put_blob(c, big_map, strlen(big_map), h_bound_ms(10000), big_hash);
    H_REQUIRE(rc == 0, "put the big map: %s", h_err(rc));
    const char *bad_map = "type octile\nheight 2\nwidth 2\nmap\n..\n.x\n";
    rc = p2c2r_client_put_blob(c, bad_map, strlen(bad_map), h_bound_ms(10000), bad_hash);
    H_REQUIRE(rc == 0, "put the corrupt map: %s", h_err(rc));
    char small_params[128], big_params[128], bad_params[128], hex[65];
    p2c2r_blob_hex(small_hash, hex);
    snprintf(small_params, sizeof(small_params), "map=%s", hex);
    p2c2r_blob_hex(big_hash, hex);
    snprintf(big_params, sizeof(big_params), "algo=astar\npaths=0\nmap=%s", hex);
    p2c2r_blob_hex(bad_hash, hex);
    snprintf(bad_params, sizeof(bad_params), "map=%s", hex);
    char *q1 = queries(1, 64, 64), *qbig = queries(2000, 1024, 1024);
    struct p2c2r_task small = task_of("pathfind", small_params, q1, strlen(q1), &small_hash, 1);

    /* 128x128 pixels at 4096 spp: tens of seconds of one core. */
    struct p2c2r_task tile = task_of("raytrace", "spp=4096", H_GLASS_SCENE, strlen(H_GLASS_SCENE), NULL, 0);
    cancel_running(c, &tile, "raytrace tile", &small, 1);
    /* 2000 A* searches across a 1024x1024 map: minutes. */
    struct p2c2r_task batch = task_of("pathfind", big_params, qbig, strlen(qbig), &big_hash, 1);
    cancel_running(c, &batch, "pathfind batch", &small, 2);

    /* The same tile with a 1 s deadline: the coordinator times it out
     * (ETIMEDOUT to the renter) and cancels it on the peer, which must stop
     * the running executor: the slot comes back for the small task. */
    h_phase("a running tile past its deadline");
    struct p2c2r_task late = tile;
    late.deadline_ms = 1000;
    p2c2r_ticket lk = h_submit(c, &late);
    rc = p2c2r_client_flush(c, h_bound_ms(10000));
    H_REQUIRE(rc == 0, "flush the tile with a deadline: %s", h_err(rc));
    wait_started("raytrace", 2);
    struct p2c2r_result lr = h_wait(c, lk, 10000);
    H_CHECK(lr.status == P2C2R_ETIMEDOUT, "tile past its deadline: status %s", h_err(lr.status));
    p2c2r_result_release(&lr);
    lr = h_wait(c, h_submit(c, &small), 30000);
    H_CHECK(lr.status == 0, "small task after the timed-out tile: status %s", h_err(lr.status));
    p2c2r_result_release(&lr);

    h_phase("100 tasks over one map");
    p2c2r_ticket k[99];
    for (int i = 0; i < 99; i++)
        k[i] = h_submit(c, &small);
    struct p2c2r_result first = {0};
    for (int i = 0; i < 99; i++) {
        struct p2c2r_result r = h_wait(c, k[i], 30000);
        H_CHECK(r.status == 0, "pathfind %d over the shared map: %s", i, h_err(r.status));
        if (i == 0)
            first = r;
        else {
            H_CHECK(r.output_len == first.output_len &&
                        memcmp(r.output, first.output, r.output_len) == 0,
                    "pathfind %d: a different answer over the shared map", i);
            p2c2r_result_release(&r);
        }
    }
    p2c2r_result_release(&first);

    h_phase("a corrupt map blob, twice");
    struct p2c2r_task bad = task_of("pathfind", bad_params, q1, strlen(q1), &bad_hash, 1);
    for (int i = 0; i < 2; i++) {
        struct p2c2r_result r = h_wait(c, h_submit(c, &bad), 10000);
        H_CHECK(r.status == P2C2R_EINVAL, "pathfind over a corrupt map: %s", h_err(r.status));
        p2c2r_result_release(&r);
    }
    p2c2r_client_close(c);

    h_phase("the peer's counters");
    h_stop(peer);
    size_t len;
    char *log = h_read_file(peer->log, &len);
    H_REQUIRE(log != NULL, "read %s", peer->log);
    H_CHECK(stat_of(log, "cancelled_running") == 3, "the two cancelled jobs and the timed-out one were running");
    H_CHECK(stat_of(log, "cancelled_stopped") == 3,
            "all three executors stopped early (ECANCELLED), not ran to completion");
    /* Maps parsed and cached: the small one once (the three small tasks
     * after the cancels and the 99 of the batch: 101 hits and one miss), the big
     * one once; the corrupt one never (two misses, no insert). */
    H_CHECK(stat_of(log, "prepared_inserts") == 2, "each good map parsed and cached once");
    H_CHECK(stat_of(log, "prepared_hits") == 101, "102 tasks over the small map, 1 parse");
    H_CHECK(stat_of(log, "prepared_misses") == 4, "misses: 2 first parses, 2 corrupt blobs");
    H_CHECK(stat_of(log, "prepared_entries") == 2, "two maps cached, not the corrupt one");
    free(log);
    free(small_map);
    free(big_map);
    free(q1);
    free(qbig);
    return h_finish();
}
