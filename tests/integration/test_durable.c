/* test_durable.c - durable jobs and the credit ledger (issue 13).
 *
 * 1. Without --state a durable submit is refused with EUNSUPPORTED and a
 *    reason naming --state (the connection stays usable).
 * 2. The crash test (--job-sync normal and full in turn): 3 renters (accounts r0, r1, r2) submit 10,000 x scale
 *    durable sha256 jobs with distinct inputs, in batches, each job with a
 *    key; the coordinator is SIGKILLed and restarted (same port, same
 *    --state) 3 times while they submit, and one peer is SIGKILLed and
 *    replaced.  A batch with no answer is unacknowledged: the renter knows
 *    which and submits it again with the same keys (the coordinator answers
 *    with the jobs it has, if the first try was stored).  At the end every
 *    acknowledged job has exactly one outcome, status OK and the right
 *    digest byte for byte; a job seen done before a crash is still done with
 *    the same bytes after it; each account lists exactly one job per key;
 *    released jobs are gone; the ledger balances (p2c2rd --check-ledger).
 * 3. A lying peer that behaves for its first tasks earns credits for them
 *    (verified by honest peers), is then caught: its work transactions are
 *    reversed (visible in p2c2r ledger --json), its balance is 0 and the
 *    books balance.
 * 4. A state database that is not SQLite, and one of another program, are
 *    refused at start with a clear error and left as they were.
 * 5. A peer's measured execution time survives a restart of the
 *    coordinator (issue 13, item 4, with the reputation and quarantines
 *    tests/integration/test_identity.c covers): after the restart the peer,
 *    back with its key, has its time before it ran anything.  After another
 *    restart, before any peer is back, a durable sha256 job is taken (the
 *    type is known from the database) and runs when its peer returns; a
 *    type nobody ran is refused. */
#include <errno.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define NRENTERS 3
#define BATCH 50

static char g_addr[64];

/* ---- 1. no --state ---- */

static void test_no_state(void)
{
    h_phase("durable submit without --state");
    h_coord_start(NULL, NULL);
    struct h_proc *p = h_peer_start("nostate-peer", 2, "sha256", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = h_renter("nostate");
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = "sha256";
    t.input = "x";
    t.input_len = 1;
    uint64_t id = 7;
    int code = 0;
    int rc = p2c2r_job_submit(c, &t, 1, NULL, h_bound_ms(5000), &id, &code);
    H_CHECK(rc == P2C2R_EUNSUPPORTED, "durable submit without --state: %s, expected EUNSUPPORTED", h_err(rc));
    H_CHECK(strstr(p2c2r_client_last_error(c), "--state") != NULL, "the reason should name --state: '%s'",
            p2c2r_client_last_error(c));
    struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
    rc = p2c2r_job_status(c, 1, h_bound_ms(5000), &info);
    H_CHECK(rc == P2C2R_EUNSUPPORTED, "job status without --state: %s", h_err(rc));
    /* The connection still runs live tasks. */
    p2c2r_ticket tk = h_submit(c, &t);
    struct p2c2r_result r = h_wait(c, tk, h_bound_ms(10000));
    H_CHECK(r.status == 0, "a live task after the refusals: %s", h_err(r.status));
    p2c2r_result_release(&r);
    p2c2r_client_close(c);
    struct h_proc *ps[] = {p, h_coord()};
    h_stop_all(ps, 2);
}

/* ---- 2. the crash test ---- */

struct job_rec {
    uint64_t id;      /* 0 until acknowledged */
    uint8_t seen_done; /* its outcome was seen before the end */
    uint8_t digest[32];
};

struct renter {
    int idx, n;
    struct job_rec *jobs;
    atomic_int acked;          /* jobs acknowledged */
    int unacked_batches;       /* submits without an answer (then made again) */
    int known_answers;         /* entries answered as the job the key named (a retried batch) */
    int refused;               /* entries refused with a code */
    int fails;
    pthread_t th;
};

static atomic_int g_acked_total;

static size_t input_of(int r, int i, char *buf, size_t cap)
{
    return (size_t)snprintf(buf, cap, "durable-job-%d-%d-%0200d", r, i, i);
}

static void digest_of(int r, int i, uint8_t out[32])
{
    char in[300];
    size_t n = input_of(r, i, in, sizeof(in));
    unsigned int l = 0;
    EVP_Digest(in, n, out, &l, EVP_sha256(), NULL);
}

static p2c2r_client *connect_retry(const char *name, int bound_ms)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(bound_ms);
    while (h_now_ms() < end) {
        struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
        o.name = name;
        o.connect_timeout_ms = 2000;
        p2c2r_client *c = NULL;
        if (p2c2r_client_connect(g_addr, &o, &c) == 0)
            return c;
        h_sleep_ms(20);
    }
    return NULL;
}

static void *renter_submit(void *arg)
{
    struct renter *rt = arg;
    char name[16];
    snprintf(name, sizeof(name), "r%d", rt->idx);
    p2c2r_client *c = NULL;
    static _Thread_local char in[BATCH][300];
    for (int b = 0; b < rt->n; b += BATCH) {
        int n = rt->n - b < BATCH ? rt->n - b : BATCH;
        struct p2c2r_task t[BATCH];
        uint64_t keys[BATCH], ids[BATCH];
        int codes[BATCH];
        for (int k = 0; k < n; k++) {
            p2c2r_task_init(&t[k]);
            t[k].type = "sha256";
            t[k].priority = P2C2R_PRIO_BACKGROUND;
            t[k].input = in[k];
            t[k].input_len = input_of(rt->idx, b + k, in[k], sizeof(in[k]));
            keys[k] = (uint64_t)(b + k + 1);
        }
        for (int tries = 0;; tries++) {
            if (tries > 400) {
                H_FAIL("renter %d: batch %d never acknowledged", rt->idx, b);
                rt->fails++;
                goto out;
            }
            if (!c && !(c = connect_retry(name, 20000))) {
                H_FAIL("renter %d cannot reconnect", rt->idx);
                rt->fails++;
                goto out;
            }
            int rc = p2c2r_job_submit(c, t, (size_t)n, keys, h_bound_ms(5000), ids, codes);
            if (rc != 0) {
                /* No answer: these n are unacknowledged.  Made again with
                 * the same keys, they cannot become two jobs. */
                rt->unacked_batches++;
                p2c2r_client_close(c);
                c = NULL;
                h_sleep_ms(20);
                continue;
            }
            for (int k = 0; k < n; k++) {
                if (codes[k] != 0) {
                    rt->refused++;
                    H_FAIL("renter %d job key %llu refused: %s", rt->idx, (unsigned long long)keys[k],
                           h_err(codes[k]));
                    continue;
                }
                if (rt->jobs[b + k].id && rt->jobs[b + k].id != ids[k])
                    H_FAIL("renter %d key %llu: job %llu, then %llu", rt->idx, (unsigned long long)keys[k],
                           (unsigned long long)rt->jobs[b + k].id, (unsigned long long)ids[k]);
                if (tries > 0)
                    rt->known_answers++;
                rt->jobs[b + k].id = ids[k];
            }
            atomic_fetch_add(&rt->acked, n);
            atomic_fetch_add(&g_acked_total, n);
            break;
        }
    }
out:
    p2c2r_client_close(c);
    return NULL;
}

/* Fetches job j's outcome through c (reconnecting as needed); checks it
 * against the expected digest and any outcome seen before. */
static int check_job(p2c2r_client **c, const char *name, struct renter *rt, int i, int release)
{
    struct job_rec *j = &rt->jobs[i];
    uint8_t want[32];
    digest_of(rt->idx, i, want);
    for (int tries = 0; tries < 50; tries++) {
        if (!*c && !(*c = connect_retry(name, 20000)))
            return -1;
        struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
        int rc = p2c2r_job_wait(*c, j->id, h_bound_ms(30000), &info);
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        if (rc == 0)
            rc = p2c2r_job_get(*c, j->id, release ? P2C2R_JOB_RELEASE : 0, h_bound_ms(5000), &r);
        if (rc == P2C2R_ENOTFOUND || rc == P2C2R_ETIMEDOUT) {
            H_FAIL("renter %d job %llu (key %d): %s: %s", rt->idx, (unsigned long long)j->id, i + 1, h_err(rc),
                   p2c2r_client_last_error(*c));
            return -1;
        }
        if (rc != 0) {
            p2c2r_client_close(*c);
            *c = NULL;
            h_sleep_ms(20);
            continue;
        }
        int ok = H_CHECK(r.status == 0 && r.output_len == 32 && memcmp(r.output, want, 32) == 0,
                         "renter %d job %llu: status %s, %zu bytes, expected its sha256", rt->idx,
                         (unsigned long long)j->id, h_err(r.status), r.output_len);
        if (ok && j->seen_done)
            ok = H_CHECK(memcmp(j->digest, r.output, 32) == 0,
                         "job %llu changed its outcome after a crash", (unsigned long long)j->id);
        if (ok && r.status == 0) {
            j->seen_done = 1;
            memcpy(j->digest, r.output, 32);
        }
        p2c2r_result_release(&r);
        return ok ? 0 : -1;
    }
    return -1;
}

/* The jobs of the crash test that are done now: recorded, so that after the
 * next crash they must still be done, with the same bytes. */
static int sample_done(struct renter *rt)
{
    char name[16];
    snprintf(name, sizeof(name), "r%d", rt->idx);
    p2c2r_client *c = connect_retry(name, 20000);
    if (!c)
        return 0;
    int done = 0;
    for (int i = 0; i < rt->n; i += 7) {
        struct job_rec *j = &rt->jobs[i];
        struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
        if (!j->id || p2c2r_job_status(c, j->id, h_bound_ms(5000), &info) != 0 || info.state != P2C2R_JOB_DONE)
            continue;
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        if (p2c2r_job_get(c, j->id, 0, h_bound_ms(5000), &r) == 0 && r.status == 0 && r.output_len == 32) {
            j->seen_done = 1;
            memcpy(j->digest, r.output, 32);
            done++;
        }
        p2c2r_result_release(&r);
    }
    p2c2r_client_close(c);
    return done;
}

static struct h_proc *coord_restart(const char *listen, const char *const *args)
{
    struct h_proc *co = h_coord_start(listen, args);
    snprintf(g_addr, sizeof(g_addr), "%s", h_addr());
    return co;
}

static void test_crash(void)
{
    h_phase("durable jobs across 3 coordinator crashes");
    char state[400];
    h_path(state, sizeof(state), "state-crash");
    /* The runs alternate --job-sync normal and full: acks after the commit,
     * and after the commit's fsync on a thread of its own. */
    const char *args[] = {"--state", state, "--job-max-attempts", "100", "--peer-timeout", "2000", "--job-sync",
                          "normal", NULL};
    const char *args_full[] = {"--state", state, "--job-max-attempts", "100", "--peer-timeout", "2000",
                               "--job-sync", "full", NULL};
    struct h_proc *co = coord_restart(NULL, args);
    char listen[64];
    snprintf(listen, sizeof(listen), "%s", g_addr); /* restarts take the same port */
    struct h_proc *peers[4];
    peers[0] = h_peer_start("dpeer-0", 2, "sha256", NULL);
    peers[1] = h_peer_start("dpeer-1", 2, "sha256", NULL);
    peers[2] = h_peer_start("dpeer-2", 2, "sha256", NULL);
    peers[3] = NULL;
    h_wait_peers(3, NULL);

    int total = (int)(10000 * h_scale());
    if (total < 300)
        total = 300;
    struct renter rts[NRENTERS];
    memset(rts, 0, sizeof(rts));
    for (int r = 0; r < NRENTERS; r++) {
        rts[r].idx = r;
        rts[r].n = total / NRENTERS;
        rts[r].jobs = calloc((size_t)rts[r].n, sizeof(*rts[r].jobs));
        pthread_create(&rts[r].th, NULL, renter_submit, &rts[r]);
    }
    int submitted = rts[0].n * NRENTERS;
    for (int crash = 1; crash <= 3; crash++) {
        /* While the renters submit: at a quarter, a half and three quarters. */
        int at = submitted * crash / 4;
        uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(60000);
        while (atomic_load(&g_acked_total) < at && h_now_ms() < end)
            h_sleep_ms(2);
        H_CHECK(atomic_load(&g_acked_total) >= at, "renters stalled at %d acknowledged jobs", atomic_load(&g_acked_total));
        if (crash == 3) {
            int seen = 0;
            for (int r = 0; r < NRENTERS; r++)
                seen += sample_done(&rts[r]);
            h_log("before crash 3: %d jobs seen done (kept to compare)", seen);
        }
        long long pending = h_stat("jobs_pending");
        h_log("crash %d: SIGKILL with %d acknowledged, %lld without an outcome", crash, atomic_load(&g_acked_total), pending);
        h_signal(co, SIGKILL);
        H_REQUIRE(h_wait_exit(co, h_bound_ms(5000)), "p2c2rd did not die of SIGKILL");
        if (crash == 2) {
            /* A peer dies too, and another takes its place. */
            h_signal(peers[0], SIGKILL);
            peers[3] = h_peer_start("dpeer-3", 2, "sha256", NULL);
        }
        h_sleep_ms(50);
        co = coord_restart(listen, crash % 2 ? args_full : args);
    }
    for (int r = 0; r < NRENTERS; r++)
        pthread_join(rts[r].th, NULL);
    h_phase("every acknowledged job has its one outcome");
    int unacked = 0, known = 0;
    for (int r = 0; r < NRENTERS; r++) {
        unacked += rts[r].unacked_batches;
        known += rts[r].known_answers;
        H_CHECK(atomic_load(&rts[r].acked) == rts[r].n, "renter %d: %d of %d jobs acknowledged", r,
                atomic_load(&rts[r].acked), rts[r].n);
    }
    h_log("%d jobs acknowledged; %d submits went unanswered and were made again (%d entries answered as "
          "known jobs)", atomic_load(&g_acked_total), unacked, known);
    for (int r = 0; r < NRENTERS; r++) {
        char name[16];
        snprintf(name, sizeof(name), "r%d", r);
        p2c2r_client *c = NULL;
        int bad = 0;
        for (int i = 0; i < rts[r].n && bad < 5; i++)
            if (rts[r].jobs[i].id && check_job(&c, name, &rts[r], i, i % 2) != 0)
                bad++;
        H_CHECK(bad == 0, "renter %d: %d jobs without their right outcome", r, bad);
        /* One job per key: no unanswered submit became a second job.  The
         * odd keys' jobs were released above, the even ones remain. */
        if (!c)
            c = connect_retry(name, 20000);
        H_REQUIRE(c, "renter %d cannot connect", r);
        uint64_t after = 0, next = 0;
        int listed = 0, dup = 0;
        struct p2c2r_job_info page[128];
        for (;;) {
            for (int k = 0; k < 128; k++)
                p2c2r_job_info_init(&page[k]);
            size_t n = 0;
            int rc = p2c2r_job_list(c, after, page, 128, &n, &next, h_bound_ms(5000));
            if (!H_CHECK(rc == 0, "job list: %s", h_err(rc)))
                break;
            for (size_t k = 0; k < n; k++) {
                listed++;
                uint64_t key = page[k].key;
                if (key == 0 || key > (uint64_t)rts[r].n || rts[r].jobs[key - 1].id != page[k].id)
                    dup++;
                H_CHECK(page[k].state == P2C2R_JOB_DONE && page[k].status == 0, "job %llu listed %d/%d",
                        (unsigned long long)page[k].id, page[k].state, page[k].status);
            }
            if (!next)
                break;
            after = next;
        }
        H_CHECK(dup == 0, "renter %d: %d listed jobs that no acknowledgement named (a second job for a key)", r, dup);
        H_CHECK(listed == (rts[r].n + 1) / 2, "renter %d: %d jobs listed, expected %d (one per key, the released gone)",
                r, listed, (rts[r].n + 1) / 2);
        struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
        if (rts[r].n > 1) {
            int rc = p2c2r_job_status(c, rts[r].jobs[1].id, h_bound_ms(5000), &info);
            H_CHECK(rc == P2C2R_ENOTFOUND, "a released job: %s, expected ENOTFOUND", h_err(rc));
        }
        /* Another account cannot see them. */
        if (r == 0) {
            p2c2r_client *o = connect_retry("someone-else", 5000);
            if (o) {
                int rc = p2c2r_job_status(o, rts[r].jobs[0].id, h_bound_ms(5000), &info);
                H_CHECK(rc == P2C2R_ENOTFOUND, "another account's job: %s, expected ENOTFOUND", h_err(rc));
                p2c2r_client_close(o);
            }
        }
        p2c2r_client_close(c);
        free(rts[r].jobs);
    }
    h_log("jobs finished %lld, acked %lld (this run of p2c2rd)", h_stat("counters.jobs_finished"),
          h_stat("counters.jobs_acked"));
    struct h_proc *all[] = {peers[1], peers[2], peers[3], co};
    h_stop_all(all, 4);
    h_phase("the ledger balances after the crashes");
    const char *chk[] = {h_coord_bin(), "--check-ledger", "--state", state, NULL};
    struct h_cmd r = h_run_cmd(NULL, chk);
    H_CHECK(r.code == 0 && strstr(r.out, "ledger balanced"), "p2c2rd --check-ledger: exit %d\n%s%s", r.code,
            r.out, r.err);
    h_cmd_free(&r);
}

/* ---- 3. a liar's credits reversed ---- */

static void liar_task(void *arg, int i, struct p2c2r_task *t)
{
    static char in[64];
    (void)arg;
    t->type = "sha256";
    t->input = in;
    t->input_len = (size_t)snprintf(in, sizeof(in), "ledger-liar-%d", i);
    t->flags = P2C2R_TASK_NOCACHE;
}

static void liar_judge(void *arg, int i, const struct h_outcome *o)
{
    (void)arg, (void)i, (void)o;
}

static void test_liar(void)
{
    h_phase("a liar's credits are reversed");
    char state[400];
    h_path(state, sizeof(state), "state-liar");
    const char *args[] = {"--state", state, "--liar-quarantine", "600000", NULL};
    struct h_proc *co = h_coord_start(NULL, args);
    struct h_proc *p1 = h_peer_start("honest-1", 2, "sha256", NULL);
    struct h_proc *p2 = h_peer_start("honest-2", 2, "sha256", NULL);
    struct h_fake_peer_cfg fc = {0};
    fc.name = "sleeper";
    fc.types = "sha256";
    fc.slots = 2;
    fc.lie_after = 30;
    fc.lie_pct = 100;
    struct h_fake_peer *liar = h_fake_peer_start(&fc);
    h_wait_peers(3, NULL);
    struct h_renter rr = {.name = "ledger-renter", .tasks = (int)(400 * h_scale()) + 100, .window = 8,
                          .task = liar_task, .judge = liar_judge};
    H_CHECK(h_renter_run(&rr) == 0, "renter run");
    struct h_fake_counts fcnt;
    h_fake_peer_counts(liar, &fcnt);
    long long liars = h_stat("counters.liars");
    h_log("liar: assigned %ld, lies %ld; liars caught %lld", fcnt.assigned, fcnt.lies, liars);
    char hex[IDENT_PK_HEX_LEN + 1];
    ident_pk_hex(h_fake_peer_pk(liar), hex);
    h_fake_peer_stop(liar);
    struct h_proc *ps[] = {p1, p2, co};
    h_stop_all(ps, 3);
    H_CHECK(liars >= 1, "the liar was caught");

    char acct[80];
    snprintf(acct, sizeof(acct), "peer:%s", hex);
    int rc = h_cli("ledger", "--state", state, "--account", acct, "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r ledger --account");
    json_t *doc = h_out_json();
    H_REQUIRE(doc, "p2c2r ledger --json printed no JSON");
    H_CHECK(json_is_true(json_object_get(doc, "balanced")), "the books balance");
    json_t *st = json_object_get(doc, "statement");
    size_t nwork = 0, nrev = 0;
    long long sum = 0;
    for (size_t i = 0; i < json_array_size(st); i++) {
        json_t *e = json_array_get(st, i);
        const char *kind = json_string_value(json_object_get(e, "kind"));
        sum += json_integer_value(json_object_get(e, "millicredits"));
        if (kind && strcmp(kind, "work") == 0)
            nwork++;
        else if (kind && strcmp(kind, "reversal") == 0)
            nrev++;
    }
    h_log("liar's statement: %zu work entries, %zu reversals, balance %lld millicredits", nwork, nrev, sum);
    H_CHECK(nwork > 0, "the liar earned credits for its honest results before it lied");
    H_CHECK(nrev == nwork, "every credit of the liar is reversed: %zu of %zu", nrev, nwork);
    H_CHECK(sum == 0, "the liar's balance is 0, got %lld millicredits", sum);
    json_decref(doc);
    rc = h_cli("ledger", "--state", state, "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r ledger");
    doc = h_out_json();
    if (doc) {
        json_t *tot = json_object_get(doc, "totals");
        H_CHECK(h_json_int(tot, "reversals") == (long long)nrev, "the totals count the reversals");
        H_CHECK(h_json_int(tot, "sum_millicredits") == 0, "entries sum to zero");
        H_CHECK(h_json_int(tot, "work") > (long long)nwork, "honest peers earned too");
        json_decref(doc);
    }
    const char *chk[] = {h_coord_bin(), "--check-ledger", "--state", state, NULL};
    struct h_cmd r = h_run_cmd(NULL, chk);
    H_CHECK(r.code == 0 && strstr(r.out, "ledger balanced"), "p2c2rd --check-ledger: exit %d\n%s%s", r.code,
            r.out, r.err);
    h_cmd_free(&r);
}

/* ---- 4. corrupt and foreign databases ---- */

static void refuse_db(const char *what, const char *content, size_t len, const char *expect)
{
    char dir[400], db[450];
    h_path(dir, sizeof(dir), what);
    mkdir(dir, 0700);
    snprintf(db, sizeof(db), "%s/p2c2r.db", dir);
    FILE *f = fopen(db, "wb");
    H_REQUIRE(f, "cannot write %s", db);
    fwrite(content, 1, len, f);
    fclose(f);
    const char *argv[] = {h_coord_bin(), "--listen", "127.0.0.1:0", "--state", dir, NULL};
    struct h_cmd r = h_run_cmd(NULL, argv);
    H_CHECK(r.code == 1 && strstr(r.err, expect), "p2c2rd on %s: exit %d, stderr should say '%s':\n%s", what,
            r.code, expect, r.err);
    h_cmd_free(&r);
    size_t after = 0;
    char *now = h_read_file(db, &after);
    H_CHECK(now && after == len && memcmp(now, content, len) == 0, "%s was changed", what);
    free(now);
}

static void test_refuse(void)
{
    h_phase("corrupt and foreign state databases are refused");
    char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    refuse_db("state-junk", junk, sizeof(junk), "not a SQLite database");
    /* A SQLite header over garbage pages: a damaged database. */
    memcpy(junk, "SQLite format 3", 16);
    refuse_db("state-damaged", junk, sizeof(junk), "refusing");
}

/* ---- 5. measured speeds ---- */

static void speed_task(void *arg, int i, struct p2c2r_task *t)
{
    static char in[64];
    (void)arg;
    t->type = "sha256";
    t->input = in;
    t->input_len = (size_t)snprintf(in, sizeof(in), "speed-%d", i);
    t->flags = P2C2R_TASK_NOCACHE;
}

static void test_speeds(void)
{
    h_phase("a peer's measured time survives a restart");
    char state[400];
    h_path(state, sizeof(state), "state-speed");
    const char *args[] = {"--state", state, "--verify", "none", NULL};
    struct h_proc *co = h_coord_start(NULL, args);
    struct h_proc *p = h_peer_start("speedy", 2, "sha256", NULL);
    h_wait_peers(1, NULL);
    struct h_renter rr = {.name = "speed-renter", .tasks = 50, .window = 4, .task = speed_task, .judge = liar_judge};
    H_CHECK(h_renter_run(&rr) == 0, "renter run");
    double before = NAN;
    json_t *st = h_stats(NULL);
    before = h_json_real(st, "peers[name=speedy].types[name=sha256].exec_us");
    json_decref(st);
    H_CHECK(before > 0, "the peer's sha256 time is measured: %g", before);
    struct h_proc *ps[] = {p, co};
    h_stop_all(ps, 2);
    h_coord_start(NULL, args);
    struct h_proc *p2 = h_peer_start("speedy", 2, "sha256", NULL); /* its key file: the same key */
    h_wait_peers(1, NULL);
    st = h_stats(NULL);
    double after = h_json_real(st, "peers[name=speedy].types[name=sha256].exec_us");
    json_decref(st);
    h_log("sha256 on the peer: %.0f us measured, %.0f us after the restart", before, after);
    H_CHECK(after > 0 && fabs(after - before) <= 1, "after the restart the peer's time is its record's: %g, was %g",
            after, before);
    struct h_proc *ps2[] = {p2, h_coord()};
    h_stop_all(ps2, 2);

    h_phase("after a restart, durable jobs of known types are taken before their peers are back");
    h_coord_start(NULL, args);
    p2c2r_client *c = h_renter("early-renter");
    struct p2c2r_task jt[2];
    static const char early[] = "submitted before the peers were back";
    for (int k = 0; k < 2; k++) {
        p2c2r_task_init(&jt[k]);
        jt[k].type = k ? "nosuchtype" : "sha256";
        jt[k].input = early;
        jt[k].input_len = sizeof(early) - 1;
    }
    uint64_t ids[2] = {0, 0};
    int codes[2] = {0, 0};
    int rc = p2c2r_job_submit(c, jt, 2, NULL, h_bound_ms(5000), ids, codes);
    H_CHECK(rc == 0 && codes[0] == 0 && ids[0] != 0,
            "a sha256 job before its peers reconnected: %s, code %s (was EUNSUPPORTED)", h_err(rc), h_err(codes[0]));
    H_CHECK(rc == 0 && codes[1] == P2C2R_EUNSUPPORTED, "a job of a type never run: %s", h_err(codes[1]));
    struct h_proc *p3 = h_peer_start("speedy", 2, "sha256", NULL);
    if (ids[0]) {
        struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
        rc = p2c2r_job_wait(c, ids[0], h_bound_ms(20000), &info);
        H_CHECK(rc == 0 && info.state == P2C2R_JOB_DONE && info.status == 0,
                "the early job ran once the peer was back: %s, state %d status %s", h_err(rc), info.state,
                h_err(info.status));
        struct p2c2r_result r = P2C2R_RESULT_INIT;
        rc = p2c2r_job_get(c, ids[0], P2C2R_JOB_RELEASE, h_bound_ms(5000), &r);
        uint8_t md[32];
        h_sha256(early, sizeof(early) - 1, md);
        H_CHECK(rc == 0 && r.status == 0 && r.output_len == 32 && memcmp(r.output, md, 32) == 0,
                "its digest: %s %s, %zu bytes", h_err(rc), h_err(r.status), r.output_len);
        p2c2r_result_release(&r);
    }
    p2c2r_client_close(c);
    struct h_proc *ps3[] = {p3, h_coord()};
    h_stop_all(ps3, 2);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "durable");
    test_no_state();
    test_crash();
    test_liar();
    test_refuse();
    test_speeds();
    return h_finish();
}
