/* test_hedge_cancel.c - the copy of a task that lost its hedge stops on its
 * peer (issue 10, item 2: "cancel of running work ... on a lost hedge").
 *
 * Two peers of one slot serve raytrace; the coordinator verifies nothing
 * (--verify none), so each task runs once unless hedged.  40 tiny tiles
 * teach the coordinator the type's attempt p95 (a few ms); then one tile
 * that runs for seconds outlives it and --hedge-min-us (200 ms), is hedged
 * onto the other, idle peer, and both copies run.  The first to finish is delivered (flag HEDGED) and
 * the coordinator cancels the other.  The peers' own counters, logged when
 * they stop, say that exactly one job was cancelled while running and that
 * its executor stopped early (cancelled_stopped), not ran to the end.  No
 * wall-clock figure is judged. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static uint64_t stat_of(const struct h_proc *p, const char *key)
{
    char *log = h_read_file(p->log, NULL);
    const char *line = log ? strstr(log, "peer_exec_stats") : NULL;
    char k[64];
    snprintf(k, sizeof(k), " %s=", key);
    const char *v = line ? strstr(line, k) : NULL;
    uint64_t n = v ? strtoull(v + strlen(k), NULL, 10) : UINT64_MAX;
    free(log);
    H_CHECK(v != NULL, "peer_exec_stats with %s in %s's log", key, p->name);
    return n;
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "hedge_cancel");
    h_phase("start daemons");
    /* The long tile runs for seconds (tens of them under a sanitizer on a
     * busy machine): a peer timeout of 120 s keeps the coordinator from
     * cutting its peer as a staller (half the peer timeout) meanwhile. */
    /* --hedge-min-us: the copies start 200 ms apart, so the first is done
     * well before the second (two copies started together on a loaded
     * machine could finish within the cancel's way to the peer, and then
     * neither is cancelled while running). */
    const char *cargs[] = {"--verify", "none", "--peer-timeout", "120000", "--hedge-min-us", "200000", NULL};
    h_coord_start(NULL, cargs);
    struct h_proc *a = h_peer_start("peer-a", 1, "raytrace", NULL);
    struct h_proc *b = h_peer_start("peer-b", 1, "raytrace", NULL);
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("hedge_cancel");

    struct p2c2r_task t;
    p2c2r_task_init(&t);
    t.type = "raytrace";
    t.input = H_GLASS_SCENE;
    t.input_len = strlen(H_GLASS_SCENE);
    t.flags = P2C2R_TASK_NOCACHE;

    h_phase("40 tiny tiles: the type's attempt p95");
    t.params = "x=0\ny=0\nw=4\nh=4\nspp=1";
    t.params_len = strlen(t.params);
    for (int i = 0; i < 40; i++) {
        struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
        H_CHECK(r.status == 0, "tiny tile %d: %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }

    /* 128x128 at 1024 spp (256 under a sanitizer): about 1.5 s of one core
     * here, several times --hedge-min-us on a much faster machine. */
    h_phase("a long tile, hedged");
    t.params = h_sanitized() ? "spp=256" : "spp=1024";
    t.params_len = strlen(t.params);
    struct p2c2r_result r = h_wait(c, h_submit(c, &t), 120000);
    H_CHECK(r.status == 0, "the long tile: %s", h_err(r.status));
    H_CHECK(r.flags & P2C2R_RESULT_HEDGED, "the long tile was hedged (flags 0x%x)", r.flags);
    p2c2r_result_release(&r);
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_int(st, "counters.hedges") >= 1, "the coordinator counts the hedge: %s",
            h_json_text(h_json_at(st, "counters")));
    json_decref(st);
    p2c2r_client_close(c);

    h_phase("the peers' counters");
    h_stop(a);
    h_stop(b);
    uint64_t running = stat_of(a, "cancelled_running") + stat_of(b, "cancelled_running");
    uint64_t stopped = stat_of(a, "cancelled_stopped") + stat_of(b, "cancelled_stopped");
    H_CHECK(running == 1, "one job (the losing copy) was cancelled while running: %llu", (unsigned long long)running);
    H_CHECK(stopped == 1, "its executor stopped early: %llu", (unsigned long long)stopped);
    return h_finish();
}
