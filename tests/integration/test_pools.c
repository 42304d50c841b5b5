/* test_pools.c - peer pools (issue 10, item 5): a task goes to the cheapest pool whose peers
 * are expected to meet its deadline, and to the pricier one when the cheap one cannot.
 *
 * A volunteer peer (price 0) that takes SLOW_MS per echo task (a fake peer in this process,
 * registered in the volunteer pool) and a real p2c2r-peer started with --pool cloud --cost 5,
 * which runs echo in microseconds.  Hedging is off and results are not verified, so every
 * attempt is a placement decision (verification checks and hedges would send work to the
 * other pool on purpose).
 * - loose: tasks with a 10 s deadline all go to the volunteer (cheaper; it meets them), also
 *   once its slowness is learned;
 * - tight: tasks with a deadline the volunteer is expected to miss (TIGHT_MS, a fifth of its
 *   time) all go to the cloud peer; the volunteer gets none of them.  Admission does not
 *   refuse them on the volunteer's figures (the cloud pool is faster);
 * - loose again: back to the volunteer.
 * What is checked is where the work went (the fake peer's own ASSIGN count, DELIVER's peer_id
 * and STATS "pools"), never how fast it ran; a tight task may still time out on a loaded
 * machine, and that is allowed.  Also: with p2c2rd --trust-pool cloud (adaptive verification)
 * a lone cloud peer's results come back VERIFIED without a second run, a lone volunteer's do
 * not (trust is the operator's word for a pool, never the peer's); STATS shows the pools; a bad
 * --pool / --trust-pool is a usage error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define SLOW_MS 150
#define TIGHT_MS 30
#define LOOSE_MS 10000
#define NLOOSE 24
#define NTIGHT 24
#define NBACK 4

/* Submits one echo task with this deadline and waits for its outcome;
 * returns its status and the peer that ran it (0 for none). */
static int run_one(p2c2r_client *c, int i, uint32_t deadline_ms, uint32_t *peer)
{
    char in[32];
    int n = snprintf(in, sizeof(in), "pool-task-%d", i);
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    t.priority = P2C2R_PRIO_REALTIME;
    t.input = in;
    t.input_len = (size_t)n;
    t.deadline_ms = deadline_ms;
    t.flags = P2C2R_TASK_NOCACHE;
    p2c2r_ticket tk = h_submit(c, &t);
    struct p2c2r_result r = h_wait(c, tk, 30000);
    int st = r.status;
    *peer = r.peer_id;
    if (st == 0)
        H_CHECK(r.output_len == (size_t)n && memcmp(r.output, in, (size_t)n) == 0, "task %d: wrong output", i);
    p2c2r_result_release(&r);
    return st;
}

static long long pool_stat(const char *pool, const char *key)
{
    char path[96];
    snprintf(path, sizeof(path), "pools[name=%s].%s", pool, key);
    return h_stat(path);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "pools");

    h_phase("usage: a bad --pool or --trust-pool is refused with exit 2");
    {
        const char *pa[] = {h_peer_bin(), "--pool", "premium", NULL};
        struct h_cmd r = h_run_cmd(NULL, pa);
        H_CHECK(r.code == 2 && strstr(r.err, "--pool must be volunteer or cloud"),
                "p2c2r-peer --pool premium: exit %d, stderr %s", r.code, r.err);
        h_cmd_free(&r);
        const char *ca[] = {h_coord_bin(), "--trust-pool", "friends", NULL};
        r = h_run_cmd(NULL, ca);
        H_CHECK(r.code == 2 && strstr(r.err, "--trust-pool"), "p2c2rd --trust-pool friends: exit %d, stderr %s",
                r.code, r.err);
        h_cmd_free(&r);
    }

    h_phase("setup: a slow volunteer peer and a fast cloud peer");
    const char *cargs[] = {"--no-hedge", "--verify", "none", NULL};
    h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg vc = {.name = "volunteer", .types = "echo", .slots = 4, .delay_ms = SLOW_MS};
    struct h_fake_peer *vol = h_fake_peer_start(&vc);
    uint32_t vol_id = h_fake_peer_id(vol);
    const char *pargs[] = {"--pool", "cloud", "--cost", "5", NULL};
    struct h_proc *cloud = h_peer_start("cloud", 2, "echo", pargs);
    h_wait_peers(2, NULL);
    H_CHECK(pool_stat("volunteer", "peers") == 1 && pool_stat("cloud", "peers") == 1,
            "pools: volunteer %lld peers, cloud %lld", pool_stat("volunteer", "peers"), pool_stat("cloud", "peers"));
    H_CHECK(pool_stat("cloud", "cost_sum") == 5, "cloud cost_sum %lld", pool_stat("cloud", "cost_sum"));
    p2c2r_client *c = h_renter("pools");

    h_phase("loose: %d tasks with a %d ms deadline go to the cheap volunteer pool", NLOOSE, LOOSE_MS);
    int ok = 0, on_vol = 0;
    for (int i = 0; i < NLOOSE; i++) {
        uint32_t peer;
        int st = run_one(c, i, LOOSE_MS, &peer);
        ok += st == 0;
        on_vol += st == 0 && peer == vol_id;
    }
    struct h_fake_counts fc;
    h_fake_peer_counts(vol, &fc);
    h_log("loose: %d ok, %d on the volunteer; volunteer assigned %ld", ok, on_vol, fc.assigned);
    H_CHECK(ok == NLOOSE && on_vol == NLOOSE, "loose tasks: %d ok, %d on the volunteer (want %d)", ok, on_vol,
            NLOOSE);
    H_CHECK(fc.assigned == NLOOSE, "the volunteer was assigned %ld of %d loose tasks", fc.assigned, NLOOSE);
    H_CHECK(pool_stat("cloud", "placed") == 0, "cloud placed %lld during the loose phase",
            pool_stat("cloud", "placed"));

    h_phase("tight: %d tasks with a %d ms deadline (the volunteer takes %d ms) go to the cloud", NTIGHT,
            TIGHT_MS, SLOW_MS);
    int tight_ok = 0, on_cloud = 0, refused = 0, late = 0;
    for (int i = 0; i < NTIGHT; i++) {
        uint32_t peer;
        int st = run_one(c, 1000 + i, TIGHT_MS, &peer);
        tight_ok += st == 0;
        on_cloud += st == 0 && peer != vol_id && peer != 0;
        refused += st == P2C2R_EDEADLINE;
        late += st == P2C2R_ETIMEDOUT;
    }
    h_fake_peer_counts(vol, &fc);
    long long cloud_placed = pool_stat("cloud", "placed"), spilled = pool_stat("cloud", "spilled");
    h_log("tight: %d ok (%d on the cloud), %d refused, %d timed out; volunteer assigned %ld; cloud placed %lld, "
          "spilled %lld",
          tight_ok, on_cloud, refused, late, fc.assigned, cloud_placed, spilled);
    H_CHECK(fc.assigned == NLOOSE, "the volunteer got %ld tight tasks it was expected to miss",
            fc.assigned - NLOOSE);
    H_CHECK(refused == 0, "%d tight tasks refused on the volunteer's figures", refused);
    H_CHECK(cloud_placed == NTIGHT, "cloud placed %lld of %d tight tasks", cloud_placed, NTIGHT);
    H_CHECK(spilled == NTIGHT, "cloud spilled %lld (want %d)", spilled, NTIGHT);
    H_CHECK(tight_ok == on_cloud && tight_ok + late == NTIGHT, "tight: %d ok, %d on the cloud, %d late", tight_ok,
            on_cloud, late);
    H_CHECK(tight_ok > 0, "no tight task delivered");

    h_phase("loose again: %d tasks go back to the volunteer", NBACK);
    for (int i = 0; i < NBACK; i++) {
        uint32_t peer;
        H_CHECK(run_one(c, 2000 + i, LOOSE_MS, &peer) == 0 && peer == vol_id, "loose task %d ran on peer %u", i,
                peer);
    }
    H_CHECK(pool_stat("volunteer", "placed") == NLOOSE + NBACK, "volunteer placed %lld",
            pool_stat("volunteer", "placed"));
    H_CHECK(pool_stat("cloud", "placed") == NTIGHT, "cloud placed %lld after the loose tasks",
            pool_stat("cloud", "placed"));
    p2c2r_client_close(c);
    h_fake_peer_stop(vol);
    h_stop(cloud);
    h_stop(h_coord());

    h_phase("--trust-pool cloud: a cloud peer's results count as checked; a volunteer's do not");
    const char *targs[] = {"--trust-pool", "cloud", NULL}; /* --verify adaptive, the default */
    h_coord_start(NULL, targs);
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_bool(st, "pools[name=cloud].trusted") == 1 && h_json_bool(st, "pools[name=volunteer].trusted") == 0,
            "pools: %s", h_json_text(h_json_at(st, "pools")));
    json_decref(st);
    /* One peer of each pool, each the only peer of its type: a result can
     * only be checked by a second run elsewhere, and there is none. */
    const char *cl_args[] = {"--pool", "cloud", "--cost", "5", NULL};
    struct h_proc *tcloud = h_peer_start("trusted-cloud", 1, "echo", cl_args);
    struct h_proc *tvol = h_peer_start("volunteer", 1, "sha256", NULL);
    h_wait_peers(2, NULL);
    c = h_renter("trust");
    int cloud_verified = 0, vol_verified = 0;
    for (int i = 0; i < 4; i++) {
        char in[16];
        int n = snprintf(in, sizeof(in), "trust-%d", i);
        struct p2c2r_task t = P2C2R_TASK_INIT;
        t.type = i % 2 ? "sha256" : "echo";
        t.input = in;
        t.input_len = (size_t)n;
        t.flags = P2C2R_TASK_NOCACHE;
        struct p2c2r_result r = h_wait(c, h_submit(c, &t), 30000);
        H_CHECK(r.status == 0, "trust task %d: %s", i, h_err(r.status));
        if (i % 2)
            vol_verified += (r.flags & P2C2R_RESULT_VERIFIED) != 0;
        else
            cloud_verified += (r.flags & P2C2R_RESULT_VERIFIED) != 0;
        p2c2r_result_release(&r);
    }
    long long runs = h_stat("counters.verify_runs");
    h_log("trust: cloud results verified %d of 2, volunteer %d of 2; verify_runs %lld", cloud_verified, vol_verified,
          runs);
    H_CHECK(cloud_verified == 2, "the trusted cloud peer's results: %d of 2 VERIFIED", cloud_verified);
    H_CHECK(vol_verified == 0, "a lone volunteer's results were VERIFIED (%d): nobody checked them", vol_verified);
    H_CHECK(runs == 0, "verify_runs %lld: a trusted result needs no second run", runs);
    p2c2r_client_close(c);
    h_stop(tcloud);
    h_stop(tvol);
    return h_finish();
}
