/* fadv.c - outcome bookkeeping and the frame-budget helper (see fadv.h).
 *
 * Invariants: inflight is the number of fadv_submit calls not yet matched by
 * fadv_outcome or fadv_lost; the epoch figures (ep_*, rtt_us) count only
 * outcomes of tasks submitted in the current epoch, and are cleared when a
 * quality step starts a new one; step_ms is the time of the last step (or of
 * the first advice), so two steps are never less than FADV_STEP_MS apart. */
#include "client/fadv.h"

#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

void fadv_init(struct fadv *f)
{
    memset(f, 0, sizeof(*f));
    f->window = FADV_WINDOW_START;
}

uint32_t fadv_submit(struct fadv *f)
{
    f->inflight++;
    return f->epoch;
}

enum fadv_kind fadv_classify(int status, uint64_t rtt_us, uint32_t deadline_ms)
{
    switch (status) {
    case 0:
        return deadline_ms && rtt_us > (uint64_t)deadline_ms * 1000 ? FADV_LATE : FADV_OK;
    case P2C2R_ETIMEDOUT:
        return FADV_TIMEOUT;
    case P2C2R_EQUEUEFULL:
        return FADV_QUEUE_FULL;
    case P2C2R_EDEADLINE:
        return FADV_DEADLINE;
    default:
        return FADV_OTHER;
    }
}

/* A running share: the plain mean over the first FADV_WINDOW values, then an
 * exponential average in which each new value weighs 1/FADV_WINDOW. */
static void ratio_add(double *r, uint32_t *n, int hit)
{
    if (*n < FADV_WINDOW)
        (*n)++;
    *r += ((hit ? 1.0 : 0.0) - *r) / (double)*n;
}

void fadv_outcome(struct fadv *f, uint64_t now_ms, uint32_t epoch, enum fadv_kind k, uint32_t rtt_us)
{
    if (f->inflight)
        f->inflight--;
    int refused = k == FADV_QUEUE_FULL || k == FADV_DEADLINE;
    int miss = refused || k == FADV_TIMEOUT || k == FADV_LATE;
    if (k == FADV_QUEUE_FULL)
        f->rej_queue_full++;
    else if (k == FADV_DEADLINE)
        f->rej_deadline++;
    else if (k == FADV_TIMEOUT)
        f->timed_out++;
    else if (k == FADV_LATE)
        f->late++;
    if (refused)
        f->last_reject_ms = now_ms;
    if (miss) {
        f->last_miss_ms = now_ms;
        f->misses++;
    }
    uint32_t n = f->outcomes;
    ratio_add(&f->reject_ratio, &n, refused);
    ratio_add(&f->miss_ratio, &f->outcomes, miss);

    if (epoch != f->epoch)
        return; /* submitted at another quality: says nothing about this one */
    uint32_t en = f->ep_outcomes < FADV_WINDOW ? f->ep_outcomes : FADV_WINDOW;
    ratio_add(&f->ep_miss_ratio, &en, miss);
    f->ep_outcomes++;
    if (miss) {
        f->ep_misses++;
        f->ep_last_miss_ms = now_ms;
    }
    if (k == FADV_OK || k == FADV_LATE) {
        f->rtt_us[f->rtt_next] = rtt_us;
        f->rtt_next = (f->rtt_next + 1) % FADV_RTT_N;
        if (f->nrtt < FADV_RTT_N)
            f->nrtt++;
    }
}

void fadv_lost(struct fadv *f)
{
    if (f->inflight)
        f->inflight--;
}

static uint64_t ago(uint64_t now, uint64_t then) { return now > then ? now - then : 0; }

void fadv_pressure(const struct fadv *f, uint64_t now_ms, struct p2c2r_pressure *p)
{
    p->inflight = f->inflight;
    p->rejected_queue_full = f->rej_queue_full;
    p->rejected_deadline = f->rej_deadline;
    p->last_reject_ms_ago =
        f->rej_queue_full || f->rej_deadline ? ago(now_ms, f->last_reject_ms) : UINT64_MAX;
    p->reject_ratio = f->reject_ratio;
    p->timed_out = f->timed_out;
    p->late = f->late;
    p->last_miss_ms_ago = f->misses ? ago(now_ms, f->last_miss_ms) : UINT64_MAX;
    p->miss_ratio = f->miss_ratio;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

uint32_t fadv_rtt_p90(const struct fadv *f)
{
    if (!f->nrtt)
        return 0;
    uint32_t v[FADV_RTT_N];
    memcpy(v, f->rtt_us, f->nrtt * sizeof(v[0]));
    qsort(v, f->nrtt, sizeof(v[0]), cmp_u32);
    return v[(f->nrtt * 9 + 9) / 10 - 1];
}

/* A quality step: a new epoch whose figures start from nothing. */
static void new_epoch(struct fadv *f, uint64_t now_ms)
{
    f->epoch++;
    f->step_ms = now_ms;
    f->ep_outcomes = f->ep_misses = 0;
    f->ep_last_miss_ms = 0;
    f->ep_miss_ratio = 0;
    f->nrtt = f->rtt_next = 0;
}

/* Round trips needed before the p90 may move quality: down on 4 (a slow
 * type shows it quickly), up on 8. */
#define FADV_P90_DOWN_N 4
#define FADV_P90_UP_N 8

void fadv_advise(struct fadv *f, uint64_t now_ms, uint32_t budget_us, uint32_t room,
                 struct p2c2r_frame_advice *out)
{
    if (!f->started) {
        f->started = 1;
        f->step_ms = now_ms;
    }
    uint32_t p90 = fadv_rtt_p90(f);
    uint64_t since_step = ago(now_ms, f->step_ms);
    int quality = 0;
    if (since_step >= FADV_STEP_MS) {
        int missing = f->ep_misses > 0 && f->ep_miss_ratio >= 0.1;
        int slow = f->nrtt >= FADV_P90_DOWN_N && p90 > budget_us;
        int calm = ago(now_ms, f->ep_misses ? f->ep_last_miss_ms : f->step_ms) >= FADV_CALM_MS &&
                   since_step >= FADV_CALM_MS;
        int headroom = f->nrtt >= FADV_P90_UP_N && (uint64_t)p90 * 2 <= budget_us &&
                       f->ep_miss_ratio < 0.02;
        if (missing || slow)
            quality = -1;
        else if (calm && headroom)
            quality = 1;
    }
    /* The window: AIMD on misses seen since the last advice. */
    if (f->misses > f->misses_seen)
        f->window = f->window / 2 < 1 ? 1 : f->window / 2;
    else if (f->window < 65536)
        f->window += 1;
    f->misses_seen = f->misses;
    uint32_t w = (uint32_t)f->window;
    uint32_t fit = w > f->inflight ? w - f->inflight : 0;
    if (fit == 0 && f->inflight == 0)
        fit = 1; /* never locked out: one probe */
    if (fit > room)
        fit = room;

    out->fit = fit;
    out->quality = quality;
    out->rtt_p90_us = p90;
    out->inflight = f->inflight;
    out->miss_ratio = f->ep_miss_ratio;
    if (quality)
        new_epoch(f, now_ms);
}
