/* test_fadv.c - the frame-budget helper's decisions (src/client/fadv.c) on a
 * fake clock: no sleeps, no sockets.
 *
 * A simulated game runs a 60 Hz loop against a simulated fabric in which a
 * task of quality q takes base_us << q to come back, and one whose round
 * trip is over its 16 ms deadline times out at the deadline.  The helper
 * must bring an over-ambitious quality down one step per second to the
 * highest level that fits, never flap, raise quality again when the fabric
 * gets faster, and never lock the type out (fit >= 1 with nothing in
 * flight).  Then the pieces: classification, counting of each kind of miss,
 * epochs (timeouts of work submitted before a step do not cause a second
 * step), the AIMD window and the connection's room. */
#include <stdlib.h>

#include "check.h"
#include "client/fadv.h"
#include "p2c2r/error.h"

#define FRAME_MS 16
#define BUDGET_US 16000u
#define DEADLINE_MS 16

struct sim_task {
    uint64_t done_ms;
    uint32_t epoch, rtt_us;
    enum fadv_kind kind;
};

struct sim {
    struct fadv f;
    uint64_t now;
    int quality;
    uint32_t base_us;
    struct sim_task q[4096];
    int nq;
    /* Quality steps taken: when and which way. */
    uint64_t step_at[64];
    int step_dir[64];
    int nsteps;
    uint64_t delivered, missed;
};

static void sim_submit(struct sim *s)
{
    if (s->nq == (int)(sizeof(s->q) / sizeof(s->q[0])))
        return;
    uint32_t rtt = s->base_us << s->quality;
    struct sim_task *t = &s->q[s->nq++];
    t->epoch = fadv_submit(&s->f);
    if (rtt > DEADLINE_MS * 1000u) {
        t->done_ms = s->now + DEADLINE_MS;
        t->kind = FADV_TIMEOUT;
    } else {
        t->done_ms = s->now + (rtt + 999) / 1000;
        t->kind = FADV_OK;
    }
    t->rtt_us = rtt;
}

/* Delivers what is due by now, in any order. */
static void sim_deliver(struct sim *s)
{
    for (int i = 0; i < s->nq;) {
        if (s->q[i].done_ms <= s->now) {
            fadv_outcome(&s->f, s->now, s->q[i].epoch, s->q[i].kind, s->q[i].rtt_us);
            if (s->q[i].kind == FADV_OK)
                s->delivered++;
            else
                s->missed++;
            s->q[i] = s->q[--s->nq];
        } else {
            i++;
        }
    }
}

/* One frame: results in, advice, the game follows it and submits up to
 * `want` tasks. */
static void sim_frame(struct sim *s, uint32_t want)
{
    sim_deliver(s);
    struct p2c2r_frame_advice a;
    p2c2r_frame_advice_init(&a);
    fadv_advise(&s->f, s->now, BUDGET_US, 256, &a);
    CHECK(a.quality >= -1 && a.quality <= 1);
    if (a.quality) {
        if (s->nsteps < 64) {
            s->step_at[s->nsteps] = s->now;
            s->step_dir[s->nsteps] = a.quality;
            s->nsteps++;
        }
        s->quality += a.quality;
        if (s->quality < 0)
            s->quality = 0;
    }
    if (s->f.inflight == 0)
        CHECK(a.fit >= 1); /* never locked out */
    for (uint32_t i = 0; i < a.fit && i < want; i++)
        sim_submit(s);
    s->now += FRAME_MS;
}

static void sim_init(struct sim *s, int quality, uint32_t base_us)
{
    memset(s, 0, sizeof(*s));
    fadv_init(&s->f);
    s->now = 1000000; /* an arbitrary monotonic time */
    s->quality = quality;
    s->base_us = base_us;
}

/* No two steps less than a second apart. */
static void check_no_flapping(const struct sim *s)
{
    for (int i = 1; i < s->nsteps; i++)
        CHECK(s->step_at[i] - s->step_at[i - 1] >= FADV_STEP_MS);
}

static void test_settles_down(void)
{
    /* The tiles: quality 4 costs 40 ms, 3 costs 20 ms, 2 costs 10 ms. */
    static struct sim s;
    sim_init(&s, 4, 2500);
    for (int i = 0; i < 60 * 10; i++)
        sim_frame(&s, 1);
    CHECK_EQ(s.quality, 2);
    CHECK_EQ(s.nsteps, 2);
    for (int i = 0; i < s.nsteps; i++)
        CHECK_EQ(s.step_dir[i], -1);
    check_no_flapping(&s);
    /* Settled within about a second per step. */
    CHECK(s.nsteps == 2 && s.step_at[1] - s.step_at[0] < 1500);
    uint64_t settled = s.nsteps ? s.step_at[s.nsteps - 1] : s.now;
    /* After settling everything in this run arrives (10 ms < 16 ms). */
    uint64_t missed_before = s.missed;
    for (int i = 0; i < 60 * 10; i++)
        sim_frame(&s, 1);
    CHECK_EQ(s.missed, missed_before);
    CHECK_EQ(s.quality, 2); /* 2 * 10 ms > 16 ms: no headroom for a step up */
    CHECK_EQ(s.nsteps, 2);
    (void)settled;
}

static void test_raises_when_faster(void)
{
    static struct sim s;
    /* 1.1 ms at quality 0: quality 2 costs 4.4 ms, 3 costs 8.8 ms, just over
     * half the budget, so 3 is as high as it goes. */
    sim_init(&s, 0, 1100);
    for (int i = 0; i < 60 * 20; i++)
        sim_frame(&s, 2);
    CHECK_EQ(s.quality, 3);
    CHECK_EQ(s.missed, 0);
    for (int i = 0; i < s.nsteps; i++)
        CHECK_EQ(s.step_dir[i], 1);
    /* A step up needs 2 s of calm after the previous step. */
    for (int i = 1; i < s.nsteps; i++)
        CHECK(s.step_at[i] - s.step_at[i - 1] >= FADV_CALM_MS);
    check_no_flapping(&s);
    /* The fabric slows down 4x: quality comes down, one step at a time. */
    s.base_us = 4400;
    int q0 = s.quality, n0 = s.nsteps;
    for (int i = 0; i < 60 * 10; i++)
        sim_frame(&s, 2);
    CHECK(s.quality < q0);
    CHECK_EQ(s.quality, 1); /* 35.2 ms at 3 and 17.6 ms at 2 time out; 8.8 ms at 1 fits
                               but is over half the budget: no step back up */
    for (int i = n0; i < s.nsteps; i++)
        CHECK_EQ(s.step_dir[i], -1);
    check_no_flapping(&s);
}

static void test_classify(void)
{
    CHECK_EQ(fadv_classify(0, 5000, 16), FADV_OK);
    CHECK_EQ(fadv_classify(0, 16000, 16), FADV_OK);
    CHECK_EQ(fadv_classify(0, 16001, 16), FADV_LATE);
    CHECK_EQ(fadv_classify(0, 1000000, 0), FADV_OK); /* no deadline, never late */
    CHECK_EQ(fadv_classify(P2C2R_ETIMEDOUT, 0, 16), FADV_TIMEOUT);
    CHECK_EQ(fadv_classify(P2C2R_EQUEUEFULL, 0, 16), FADV_QUEUE_FULL);
    CHECK_EQ(fadv_classify(P2C2R_EDEADLINE, 0, 16), FADV_DEADLINE);
    CHECK_EQ(fadv_classify(P2C2R_ETASK, 0, 16), FADV_OTHER);
    CHECK_EQ(fadv_classify(P2C2R_ECANCELLED, 0, 16), FADV_OTHER);
}

static void test_counts(void)
{
    struct fadv f;
    fadv_init(&f);
    struct p2c2r_pressure p;
    p2c2r_pressure_init(&p);
    fadv_pressure(&f, 100, &p);
    CHECK_EQU(p.last_miss_ms_ago, UINT64_MAX);
    CHECK_EQU(p.last_reject_ms_ago, UINT64_MAX);
    enum fadv_kind kinds[] = {FADV_OK, FADV_LATE, FADV_TIMEOUT, FADV_QUEUE_FULL, FADV_DEADLINE,
                              FADV_OTHER};
    for (int i = 0; i < 6; i++)
        fadv_submit(&f);
    fadv_submit(&f);
    CHECK_EQU(f.inflight, 7);
    for (int i = 0; i < 6; i++)
        fadv_outcome(&f, 1000 + (uint64_t)i, 0, kinds[i], 100);
    fadv_lost(&f);
    fadv_pressure(&f, 2000, &p);
    CHECK_EQU(p.inflight, 0);
    CHECK_EQU(p.late, 1);
    CHECK_EQU(p.timed_out, 1);
    CHECK_EQU(p.rejected_queue_full, 1);
    CHECK_EQU(p.rejected_deadline, 1);
    CHECK_EQU(p.last_miss_ms_ago, 2000 - 1004);
    CHECK_EQU(p.last_reject_ms_ago, 2000 - 1004);
    /* 4 misses and 2 refusals among 6 outcomes (the plain mean while warm). */
    CHECK(p.miss_ratio > 4.0 / 6 - 1e-9 && p.miss_ratio < 4.0 / 6 + 1e-9);
    CHECK(p.reject_ratio > 2.0 / 6 - 1e-9 && p.reject_ratio < 2.0 / 6 + 1e-9);
}

static void test_epochs(void)
{
    /* A step down at t=1000 while 30 tasks of the old quality are still out:
     * their timeouts must not cause a second step a second later. */
    struct fadv f;
    fadv_init(&f);
    struct p2c2r_frame_advice a;
    p2c2r_frame_advice_init(&a);
    uint64_t t = 0;
    fadv_advise(&f, t, BUDGET_US, 256, &a);
    uint32_t old[40];
    for (int i = 0; i < 40; i++)
        old[i] = fadv_submit(&f);
    for (int i = 0; i < 10; i++)
        fadv_outcome(&f, 500, old[i], FADV_TIMEOUT, 0);
    t = 1000;
    fadv_advise(&f, t, BUDGET_US, 256, &a);
    CHECK_EQ(a.quality, -1);
    CHECK_EQ(a.miss_ratio, 1.0); /* the epoch that ended */
    /* New-quality work is fine; old work keeps timing out. */
    for (t = 1016; t < 3000; t += 16) {
        uint32_t ep = fadv_submit(&f);
        fadv_outcome(&f, t, ep, FADV_OK, 5000);
        if (t < 1500)
            fadv_outcome(&f, t, old[10 + (t - 1016) / 16 % 30], FADV_TIMEOUT, 0);
        fadv_advise(&f, t, BUDGET_US, 256, &a);
        CHECK_EQ(a.quality, 0);
        if (t >= 1000 + FADV_CALM_MS - 16)
            break;
    }
    CHECK(f.timed_out >= 30);
    /* Calm for 2 s with 5 ms round trips, under half of 16 ms: up one step. */
    for (; t < 4000 && !a.quality; t += 16) {
        uint32_t ep = fadv_submit(&f);
        fadv_outcome(&f, t, ep, FADV_OK, 5000);
        fadv_advise(&f, t, BUDGET_US, 256, &a);
    }
    CHECK_EQ(a.quality, 1);
    CHECK(t - 16 >= 1000 + FADV_CALM_MS);
    CHECK_EQU(a.rtt_p90_us, 5000);
}

static void test_window(void)
{
    struct fadv f;
    fadv_init(&f);
    struct p2c2r_frame_advice a;
    p2c2r_frame_advice_init(&a);
    fadv_advise(&f, 0, BUDGET_US, 256, &a);
    CHECK_EQU(a.fit, FADV_WINDOW_START + 1);
    /* The connection's room caps it; no room, no fit (even with none in flight). */
    fadv_advise(&f, 16, BUDGET_US, 3, &a);
    CHECK_EQU(a.fit, 3);
    fadv_advise(&f, 32, BUDGET_US, 0, &a);
    CHECK_EQU(a.fit, 0);
    /* In flight counts against the window. */
    uint32_t ep[64];
    for (int i = 0; i < 19; i++)
        ep[i] = fadv_submit(&f);
    fadv_advise(&f, 48, BUDGET_US, 256, &a); /* window 20, 19 out */
    CHECK_EQU(a.fit, 1);
    CHECK_EQU(a.inflight, 19);
    /* A miss halves it: 21 / 2 = 10 (< 19 out: nothing fits). */
    fadv_outcome(&f, 50, ep[0], FADV_DEADLINE, 0);
    fadv_advise(&f, 64, BUDGET_US, 256, &a);
    CHECK_EQU(a.fit, 0);
    /* Every miss halves again, down to 1; with nothing in flight one probe
     * still fits. */
    for (int i = 1; i < 19; i++) {
        fadv_outcome(&f, 80, ep[i], FADV_TIMEOUT, 0);
        fadv_advise(&f, 80 + (uint64_t)i, BUDGET_US, 256, &a);
    }
    CHECK_EQU(f.inflight, 0);
    CHECK(f.window >= 1 && f.window < 2);
    CHECK_EQU(a.fit, 1);
    /* Calm frames grow it by one each. */
    fadv_advise(&f, 200, BUDGET_US, 256, &a);
    CHECK_EQU(a.fit, 2);
    fadv_advise(&f, 216, BUDGET_US, 256, &a);
    CHECK_EQU(a.fit, 3);
}

static void test_p90(void)
{
    struct fadv f;
    fadv_init(&f);
    CHECK_EQU(fadv_rtt_p90(&f), 0);
    for (uint32_t i = 1; i <= 10; i++)
        fadv_outcome(&f, 0, fadv_submit(&f), FADV_OK, i * 1000);
    CHECK_EQU(fadv_rtt_p90(&f), 9000);
    /* Only the last FADV_RTT_N are kept. */
    for (uint32_t i = 0; i < FADV_RTT_N; i++)
        fadv_outcome(&f, 0, fadv_submit(&f), FADV_OK, 500);
    CHECK_EQU(fadv_rtt_p90(&f), 500);
    /* Refusals and timeouts have no round trip; late results do. */
    fadv_outcome(&f, 0, fadv_submit(&f), FADV_TIMEOUT, 99999);
    CHECK_EQU(fadv_rtt_p90(&f), 500);
    for (int i = 0; i < 8; i++)
        fadv_outcome(&f, 0, fadv_submit(&f), FADV_LATE, 40000);
    CHECK_EQU(fadv_rtt_p90(&f), 40000);
}

int main(void)
{
    test_classify();
    test_counts();
    test_p90();
    test_window();
    test_epochs();
    test_settles_down();
    test_raises_when_faster();
    return check_report("test_fadv");
}
