/* test_verify.c - results are checked before they count (issue 11: results
 * checked before delivery, trust grown only by verified results).
 *
 * Honest peers are real p2c2r-peers; liars are the harness's fake peers in
 * lie mode (a wrong sha256 digest of the right length, status OK, sent at
 * once).  Every sha256 result a renter receives with status OK is checked
 * against OpenSSL, so "wrong results delivered" is counted, not inferred.
 * Nothing here depends on timing: the tests wait on outcomes and on the
 * coordinator's counters.
 *
 * 1. Two honest peers agree: results come back flagged VERIFIED, the peers'
 *    records (verified, trust) grow; a type with --verify none behaves as
 *    before (no verification runs, no VERIFIED flag, repeats served from the
 *    cache).
 * 2. An always-liar joins them (default policy, adaptive): 0 wrong results
 *    delivered, the liar is quarantined having held at most one window of
 *    tasks, its trust falls below an unknown peer's (0.5).
 * 3. A liar that behaves for its first N tasks (300 x scale), then lies 10%
 *    of the time: under adaptive the number of wrong results delivered is
 *    logged and must be small, and the liar ends quarantined; under quorum2
 *    none is delivered.
 * 4. A cached lie is impossible: a lone liar's answer (delivered, since no
 *    peer could check it, but not flagged VERIFIED) is not cached, so after
 *    it left another renter gets the right digest from an honest peer.
 * 5. An error is not a lie when the other peer's "success" could not be
 *    delivered either: a peer that said ETOOBIG is not struck because a
 *    second peer returned an output over the largest frame.
 * 6. Two connections of one key (one group) failing a task, with no other
 *    peer: the error is delivered, not bounced between them up to
 *    --max-attempts.
 * 7. A copy hangs on one peer and is hedged onto another that fails it at
 *    once: that peer is not given the task again while the hanging copy
 *    stays overdue (it was given it 146 times in 3 s before). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define WINDOW 8

/* Outcomes of a run of sha256 tasks with distinct inputs. */
struct tally {
    uint64_t seed;       /* makes the inputs distinct across runs */
    const char *type;    /* "sha256" or "echo" */
    int ok, wrong, failed, verified, cached;
    char in[64];
};

static size_t input_of(const struct tally *ty, int i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "verify-%llu-%d", (unsigned long long)ty->seed, i);
}

static void tally_task(void *arg, int i, struct p2c2r_task *t)
{
    struct tally *ty = arg;
    size_t n = input_of(ty, i, ty->in, sizeof(ty->in));
    t->type = ty->type;
    t->input = ty->in;
    t->input_len = n;
}

static void tally_judge(void *arg, int i, const struct h_outcome *o)
{
    struct tally *ty = arg;
    if (o->status != 0) {
        ty->failed++;
        h_log("task %d: %s %.*s", i, h_err(o->status), (int)o->len, (const char *)o->out);
        return;
    }
    char in[64];
    size_t n = input_of(ty, i, in, sizeof(in));
    uint8_t md[32];
    const uint8_t *want = (const uint8_t *)in;
    size_t wl = n;
    if (strcmp(ty->type, "sha256") == 0) {
        h_sha256(in, n, md);
        want = md;
        wl = sizeof(md);
    }
    if (o->len != wl || memcmp(o->out, want, wl) != 0)
        ty->wrong++;
    else
        ty->ok++;
    ty->verified += (o->flags & PROTO_DELIVER_F_VERIFIED) != 0;
    ty->cached += (o->flags & PROTO_DELIVER_F_CACHED) != 0;
}

/* Runs n tasks of ty's type through one renter; requires every outcome. */
static void run_tasks(struct tally *ty, int n, const char *name)
{
    struct h_renter r = {.name = name, .tasks = n, .window = WINDOW, .task = tally_task, .judge = tally_judge,
                         .arg = ty};
    H_REQUIRE(h_renter_run(&r) == 0, "%s: %d of %d tasks had their outcome", name, r.done, n);
}

static long long peer_stat(uint32_t id, const char *field)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[id=%u].%s", id, field);
    return h_stat(path);
}

static int peer_state_is(uint32_t id, const char *state)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[id=%u].state", id);
    json_t *s = h_stats(NULL);
    int is = h_json_str_is(s, path, state);
    json_decref(s);
    return is;
}

static double peer_trust_of(uint32_t id)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[id=%u].trust", id);
    json_t *s = h_stats(NULL);
    double v = h_json_real(s, path);
    json_decref(s);
    return v;
}

/* The id of the one peer named name (real peers register with --name). */
static uint32_t peer_id_named(const char *name)
{
    char path[96];
    snprintf(path, sizeof(path), "peers[name=%s].id", name);
    long long id = h_stat(path);
    H_REQUIRE(id > 0, "no peer named %s in STATS", name);
    return (uint32_t)id;
}

static struct h_fake_peer *liar_start(const char *name, int lie_after, int lie_pct, uint64_t seed)
{
    struct h_fake_peer_cfg c = {.name = name, .types = "sha256", .slots = 4, .delay_ms = 0,
                                .lie_after = lie_after, .lie_pct = lie_pct, .lie_seed = seed};
    return h_fake_peer_start(&c);
}

/* ---- 1 and 2: honest peers agree; an always-liar next to them ---------------------- */

static void test_honest_then_liar(void)
{
    h_phase("honest peers agree; echo has --verify none");
    const char *cargs[] = {"--verify", "echo=none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_proc *a = h_peer_start("honest-a", 2, "sha256,echo", NULL);
    struct h_proc *b = h_peer_start("honest-b", 2, "sha256,echo", NULL);
    h_wait_peers(2, NULL);
    uint32_t ida = peer_id_named("honest-a"), idb = peer_id_named("honest-b");

    struct tally sha = {.seed = 1, .type = "sha256"};
    run_tasks(&sha, 40, "honest-sha");
    h_log("honest sha256: ok=%d wrong=%d failed=%d verified=%d", sha.ok, sha.wrong, sha.failed, sha.verified);
    H_CHECK(sha.ok == 40 && sha.wrong == 0 && sha.failed == 0, "40 correct results from honest peers: ok=%d wrong=%d failed=%d",
            sha.ok, sha.wrong, sha.failed);
    /* Unestablished peers (fewer than 10 confirmed results in a row) are
     * always checked, so at least the first ten come back VERIFIED. */
    H_CHECK(sha.verified >= 10, "at least 10 of 40 results flagged VERIFIED, got %d", sha.verified);
    H_CHECK(h_stat("counters.verified") == sha.verified, "counters.verified %lld == VERIFIED deliveries %d",
            h_stat("counters.verified"), sha.verified);
    H_CHECK(h_stat("counters.verify_runs") >= sha.verified, "counters.verify_runs %lld >= %d",
            h_stat("counters.verify_runs"), sha.verified);
    H_CHECK(h_stat("counters.disagreements") == 0 && h_stat("counters.liars") == 0,
            "no disagreement between honest peers: %lld, liars %lld", h_stat("counters.disagreements"),
            h_stat("counters.liars"));
    long long va = peer_stat(ida, "verified"), vb = peer_stat(idb, "verified");
    H_CHECK(va >= 10 && vb >= 10, "both honest peers have >= 10 verified results: %lld, %lld", va, vb);
    H_CHECK(peer_trust_of(ida) > 0.9 && peer_trust_of(idb) > 0.9, "verified results raised trust: %.3f %.3f",
            peer_trust_of(ida), peer_trust_of(idb));

    /* --verify echo=none: one run, no flag, cached as before. */
    struct tally echo = {.seed = 2, .type = "echo"};
    run_tasks(&echo, 20, "echo-none");
    H_CHECK(echo.ok == 20 && echo.verified == 0 && echo.cached == 0,
            "echo (verify none): ok=%d of 20, VERIFIED %d (expected 0), CACHED %d (expected 0)", echo.ok,
            echo.verified, echo.cached);
    json_t *s = h_stats(NULL);
    H_CHECK(h_json_int(s, "types[name=echo].verify_runs") == 0 && h_json_str_is(s, "types[name=echo].verify", "none"),
            "echo has policy none and no verification runs: %s", h_json_text(h_json_at(s, "types[name=echo]")));
    H_CHECK(h_json_str_is(s, "types[name=sha256].verify", "adaptive"), "sha256 has the default policy: %s",
            h_json_text(h_json_at(s, "types[name=sha256]")));
    json_decref(s);
    echo.ok = 0;
    run_tasks(&echo, 20, "echo-none-again");
    H_CHECK(echo.ok == 20 && echo.cached == 20, "echo repeats served from the cache: ok=%d cached=%d of 20", echo.ok,
            echo.cached);

    h_phase("an always-liar joins two honest peers (default policy)");
    struct h_fake_peer *liar = liar_start("always-liar", 0, 100, 7);
    h_wait_peers(3, NULL);
    uint32_t idl = h_fake_peer_id(liar);
    struct tally lie = {.seed = 3, .type = "sha256"};
    int n = (int)(300 * h_scale()) > 60 ? (int)(300 * h_scale()) : 60;
    run_tasks(&lie, n, "liar-sha");
    struct h_fake_counts fc;
    h_fake_peer_counts(liar, &fc);
    h_log("always-liar: %d tasks, wrong delivered %d, liar assigned %ld, lies %ld", n, lie.wrong, fc.assigned,
          fc.lies);
    H_CHECK(lie.wrong == 0, "no wrong result delivered as a success: %d of %d", lie.wrong, n);
    H_CHECK(lie.ok == n, "every task succeeded (settled by the honest peers): ok=%d of %d", lie.ok, n);
    H_CHECK(fc.lies >= 1, "the liar was given work and lied (%ld lies)", fc.lies);
    H_CHECK(peer_state_is(idl, "quarantined"), "the liar is quarantined");
    /* Each of its answers waits for a check, so it never holds more than
     * the renter's window before the first check catches it. */
    H_CHECK(fc.assigned <= WINDOW + 4, "quarantined within a few tasks: it was given %ld (window %d)", fc.assigned,
            WINDOW);
    H_CHECK(peer_stat(idl, "lies") >= 1 && peer_stat(idl, "verified") == 0, "the liar's record: lies %lld, verified %lld",
            peer_stat(idl, "lies"), peer_stat(idl, "verified"));
    H_CHECK(peer_trust_of(idl) < 0.5, "a caught liar's trust is below an unknown peer's: %.3f", peer_trust_of(idl));
    H_CHECK(h_stat("counters.liars") >= 1 && h_stat("counters.disagreements") >= 1,
            "counters: liars %lld, disagreements %lld", h_stat("counters.liars"), h_stat("counters.disagreements"));
    H_CHECK(peer_stat(ida, "lies") == 0 && peer_stat(idb, "lies") == 0, "no honest peer was caught: %lld %lld",
            peer_stat(ida, "lies"), peer_stat(idb, "lies"));

    h_fake_peer_stop(liar);
    h_stop(a);
    h_stop(b);
    h_stop(co);
}

/* ---- 3: behaves for N tasks, then lies 10% ------------------------------------------- */

/* Runs chunks of tasks until the liar is quarantined (or max tasks ran);
 * returns the wrong results delivered. */
static int run_until_caught(const char *policy, int behave, uint64_t seed, int *tasks_out)
{
    const char *cargs[] = {"--verify", policy, NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    char na[32], nb[32];
    snprintf(na, sizeof(na), "honest-%s-a", policy);
    snprintf(nb, sizeof(nb), "honest-%s-b", policy);
    struct h_proc *a = h_peer_start(na, 2, "sha256", NULL);
    struct h_proc *b = h_peer_start(nb, 2, "sha256", NULL);
    h_wait_peers(2, NULL);
    struct h_fake_peer *liar = liar_start("sometimes-liar", behave, 10, seed);
    h_wait_peers(3, NULL);
    uint32_t idl = h_fake_peer_id(liar);
    struct tally ty = {.seed = seed, .type = "sha256"};
    /* Per task it runs after lying starts, the liar is caught with
     * probability >= 10% x the least spot-check rate (15%): 3,000 tasks
     * leave it uncaught with probability far below 1e-6. */
    int chunk = 200, total = 0, max = behave * 4 + 3000, caught = 0;
    while (!caught && total < max) {
        ty.seed = seed * 1000003u + (uint64_t)total; /* distinct inputs per chunk */
        run_tasks(&ty, chunk, policy);
        total += chunk;
        caught = peer_state_is(idl, "quarantined");
    }
    struct h_fake_counts fc;
    h_fake_peer_counts(liar, &fc);
    h_log("policy %s: liar behaved for %d tasks; %d tasks run, liar assigned %ld and lied %ld times; "
          "wrong results delivered: %d; liar quarantined: %s; verify_runs %lld verified %lld unverified %lld",
          policy, behave, total, fc.assigned, fc.lies, ty.wrong, caught ? "yes" : "no", h_stat("counters.verify_runs"),
          h_stat("counters.verified"), h_stat("counters.unverified"));
    H_CHECK(caught, "policy %s: the liar ends quarantined (%d tasks, %ld lies)", policy, total, fc.lies);
    H_CHECK(fc.assigned > behave, "policy %s: the liar got past its honest phase (%ld tasks)", policy, fc.assigned);
    H_CHECK(ty.failed == 0, "policy %s: no task failed (%d)", policy, ty.failed);
    H_CHECK(peer_stat(idl, "lies") >= 1, "policy %s: its record shows the lie", policy);
    *tasks_out = total;
    h_fake_peer_stop(liar);
    h_stop(a);
    h_stop(b);
    h_stop(co);
    return ty.wrong;
}

static void test_behave_then_lie(void)
{
    int behave = (int)(300 * h_scale()) > 60 ? (int)(300 * h_scale()) : 60, tasks;
    h_phase("behaves for %d tasks then lies 10%%: adaptive", behave);
    int wrong = run_until_caught("adaptive", behave, 11, &tasks);
    h_log("RESULT adaptive: %d wrong results delivered in %d tasks", wrong, tasks);
    /* Each lie is caught with the liar's spot-check probability (>= 15%):
     * the count is geometric, mean <= 5.7; 60 is exceeded with p < 1e-4. */
    H_CHECK(wrong <= 60, "adaptive: few wrong results delivered: %d", wrong);

    h_phase("behaves for %d tasks then lies 10%%: quorum2", behave);
    wrong = run_until_caught("quorum2", behave, 12, &tasks);
    h_log("RESULT quorum2: %d wrong results delivered in %d tasks", wrong, tasks);
    H_CHECK(wrong == 0, "quorum2: no wrong result delivered: %d", wrong);
}

/* ---- 4: a cached lie is impossible ---------------------------------------------------- */

static void test_cached_lie(void)
{
    h_phase("a lone liar answers a cacheable task");
    struct h_proc *co = h_coord_start(NULL, NULL);
    struct h_fake_peer *liar = liar_start("lone-liar", 0, 100, 5);
    h_wait_peers(1, NULL);
    static const char in[] = "cache me if you can";
    uint8_t md[32];
    h_sha256(in, sizeof(in) - 1, md);
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "sha256";
    t.input = in;
    t.input_len = sizeof(in) - 1;

    p2c2r_client *c1 = NULL;
    struct p2c2r_client_options o1 = {sizeof o1, NULL, "renter-1", h_bound_ms(5000), 0};
    H_REQUIRE(p2c2r_client_connect(h_addr(), &o1, &c1) == 0, "connect renter-1");
    struct p2c2r_result r = h_wait(c1, h_submit(c1, &t), 30000);
    /* No peer could check it: adaptive delivers it, not flagged VERIFIED. */
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, md, 32) != 0,
            "the liar's answer is what the lone peer gave: %s", h_err(r.status));
    H_CHECK(!(r.flags & P2C2R_RESULT_VERIFIED), "an answer nobody checked is not flagged VERIFIED (flags 0x%x)",
            r.flags);
    p2c2r_result_release(&r);
    H_CHECK(h_stat("cache.entries") == 0, "an unverified result is not cached: %lld entries", h_stat("cache.entries"));
    H_CHECK(h_stat("counters.unverified") == 1, "counted as unverified: %lld", h_stat("counters.unverified"));
    p2c2r_client_close(c1);

    h_phase("the liar leaves, honest peers join, another renter asks the same");
    h_fake_peer_stop(liar);
    h_wait_peers(0, NULL);
    struct h_proc *a = h_peer_start("cache-honest-a", 2, "sha256", NULL);
    struct h_proc *b = h_peer_start("cache-honest-b", 2, "sha256", NULL);
    h_wait_peers(2, NULL);
    p2c2r_client *c2 = NULL;
    struct p2c2r_client_options o2 = {sizeof o2, NULL, "renter-2", h_bound_ms(5000), 0};
    H_REQUIRE(p2c2r_client_connect(h_addr(), &o2, &c2) == 0, "connect renter-2");
    r = h_wait(c2, h_submit(c2, &t), 30000);
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, md, 32) == 0,
            "the second renter gets the right digest, not the liar's: %s", h_err(r.status));
    H_CHECK(!(r.flags & P2C2R_RESULT_CACHED), "and not from the cache (flags 0x%x)", r.flags);
    H_CHECK(r.flags & P2C2R_RESULT_VERIFIED, "two new honest peers verified it (flags 0x%x)", r.flags);
    p2c2r_result_release(&r);
    /* A verified result is cached, and served flagged VERIFIED. */
    r = h_wait(c2, h_submit(c2, &t), 30000);
    H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, md, 32) == 0 &&
                (r.flags & P2C2R_RESULT_CACHED) && (r.flags & P2C2R_RESULT_VERIFIED),
            "a repeat is served from the cache, verified: %s flags 0x%x", h_err(r.status), r.flags);
    p2c2r_result_release(&r);
    p2c2r_client_close(c2);
    h_stop(a);
    h_stop(b);
    h_stop(co);
}

/* ---- 5. ETOOBIG confirmed by an undeliverable success ----------------------------- */

static void test_toobig_agreed(void)
{
    h_phase("one peer says ETOOBIG, another returns an output no frame can carry");
    const char *cargs[] = {"--verify", "echo=none", "--max-frame", "4096", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg ca = {.name = "says-toobig", .types = "echo", .slots = 1, .fail_code = P2C2R_ETOOBIG};
    /* A RESULT of exactly the largest frame: its output is 8 bytes over
     * what a DELIVER (16 bytes before the output) can carry. */
    struct h_fake_peer_cfg cb = {.name = "too-big", .types = "echo", .slots = 1, .out_len = 4096 - 8,
                                 .delay_ms = 30};
    struct h_fake_peer *a = h_fake_peer_start(&ca);
    struct h_fake_peer *b = h_fake_peer_start(&cb);
    h_wait_peers(2, NULL);
    p2c2r_client *c = NULL;
    struct p2c2r_client_options o = {sizeof o, NULL, "toobig-renter", h_bound_ms(5000), 0};
    H_REQUIRE(p2c2r_client_connect(h_addr(), &o, &c) == 0, "connect toobig-renter");
    int toobig = 0;
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    char in[32];
    /* Two at a time: while the slow too-big peer holds one, the other goes
     * to the ETOOBIG peer, whatever their scores. */
    for (int i = 0; i < 12; i += 2) {
        p2c2r_ticket tk[2];
        for (int k = 0; k < 2; k++) {
            t.input = in;
            t.input_len = (size_t)snprintf(in, sizeof(in), "grows-%d", i + k);
            tk[k] = h_submit(c, &t);
        }
        for (int k = 0; k < 2; k++) {
            struct p2c2r_result r = h_wait(c, tk[k], 30000);
            toobig += r.status == P2C2R_ETOOBIG;
            p2c2r_result_release(&r);
        }
    }
    p2c2r_client_close(c);
    H_CHECK(toobig == 12, "every task ends ETOOBIG (the output cannot be delivered): %d of 12", toobig);
    struct h_fake_counts na;
    h_fake_peer_counts(a, &na);
    /* Tasks that reached the ETOOBIG peer first were run again on the other. */
    H_REQUIRE(na.assigned >= 1, "the ETOOBIG peer was given no task: the case is not exercised");
    long long strikes = peer_stat(h_fake_peer_id(a), "strikes");
    H_CHECK(strikes == 0, "the peer whose ETOOBIG was right is not struck: %lld strikes after %ld tasks", strikes,
            na.assigned);
    H_CHECK(peer_state_is(h_fake_peer_id(a), "ok"), "and stays in service");
    struct h_fake_counts nb;
    h_fake_peer_counts(b, &nb);
    H_CHECK(!nb.closed && nb.answered >= na.assigned, "the other peer answered every retry and was not cut: %ld "
            "answers, closed %d", nb.answered, nb.closed);
    h_fake_peer_stop(a);
    h_fake_peer_stop(b);
    h_stop(co);
}

/* ---- 6. one key's connections fail a task: believed, not retried to the limit ------------- */

static void test_one_group_fails(void)
{
    h_phase("two connections of one key fail every task; no other peer");
    const char *cargs[] = {"--verify", "echo=none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct ident k;
    ident_generate(&k);
    struct h_fake_peer_cfg ca = {.name = "one-key-a", .types = "echo", .slots = 2, .fail_code = P2C2R_ETASK,
                                 .key = &k};
    struct h_fake_peer_cfg cb = ca;
    cb.name = "one-key-b";
    struct h_fake_peer *a = h_fake_peer_start(&ca);
    struct h_fake_peer *b = h_fake_peer_start(&cb);
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("one-group-renter");
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    t.input = "bad input";
    t.input_len = 9;
    t.flags = P2C2R_TASK_NOCACHE;
    struct p2c2r_result r = h_wait(c, h_submit(c, &t), 30000);
    /* No peer of another key can try it, so the error stands after the
     * first run (a second run on the same key proves nothing either way). */
    H_CHECK(r.status == P2C2R_ETASK && r.attempts <= 2,
            "one key's error is delivered without bouncing between its connections: %s after %u attempts",
            h_err(r.status), r.attempts);
    p2c2r_result_release(&r);
    struct h_fake_counts na, nb;
    h_fake_peer_counts(a, &na);
    h_fake_peer_counts(b, &nb);
    H_CHECK(na.assigned + nb.assigned <= 2, "the task was run %ld times", na.assigned + nb.assigned);
    p2c2r_client_close(c);
    h_fake_peer_stop(a);
    h_fake_peer_stop(b);
    h_stop(co);
}

/* ---- 7. a peer that failed a task gets no hedge of the copy still running ---------------- */

static void test_no_hedge_back(void)
{
    h_phase("a copy hangs; a hedge fails at once; the hanging copy is not hedged back to the failer");
    const char *cargs[] = {"--verify", "echo=none", NULL};
    struct h_proc *co = h_coord_start(NULL, cargs);
    struct h_fake_peer_cfg cb = {.name = "hangs", .types = "echo", .slots = 1, .delay_ms = H_FAKE_NEVER};
    struct h_fake_peer *b = h_fake_peer_start(&cb);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("no-hedge-back");
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "echo";
    t.input = "stuck";
    t.input_len = 5;
    t.flags = P2C2R_TASK_NOCACHE;
    t.deadline_ms = (uint32_t)h_bound_ms(3000);
    p2c2r_ticket tk = h_submit(c, &t);
    H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
    H_REQUIRE(h_fake_peer_wait_assigned(b, 1, 5000), "the hanging peer got the task");
    /* Now a peer that fails everything: the overdue copy is hedged onto it. */
    struct h_fake_peer_cfg ca = {.name = "fails", .types = "echo", .slots = 1, .fail_code = P2C2R_ETASK};
    struct h_fake_peer *a = h_fake_peer_start(&ca);
    struct p2c2r_result r = h_wait(c, tk, 30000);
    struct h_fake_counts na;
    h_fake_peer_counts(a, &na);
    h_log("no-hedge-back: outcome %s, the failing peer was given the task %ld time(s)", h_err(r.status),
          na.assigned);
    H_CHECK(na.assigned >= 1, "the hanging copy was hedged onto the failing peer");
    H_CHECK(na.assigned == 1, "...once: it failed the task, so later hedges avoid it (given %ld times)",
            na.assigned);
    p2c2r_result_release(&r);
    p2c2r_client_close(c);
    h_fake_peer_stop(a);
    h_fake_peer_stop(b);
    h_stop(co);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "verify");
    test_toobig_agreed();
    test_one_group_fails();
    test_no_hedge_back();
    test_honest_then_liar();
    test_cached_lie();
    test_behave_then_lie();
    return h_finish();
}
