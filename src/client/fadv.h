/* fadv.h - libp2c2r's outcome bookkeeping and frame advice, one instance
 * per task type (and one for the whole connection).
 *
 * Pure: no I/O, no clock.  Every function takes the time as an argument, so
 * tests/unit/test_fadv.c checks the decisions on a fake clock.  The client
 * feeds it (client.c): fadv_submit when a task is queued, fadv_outcome when
 * the coordinator's answer arrives, fadv_lost when a dead connection ends a
 * task without one; p2c2r_client_pressure reads it through fadv_pressure and
 * p2c2r_client_frame_advice through fadv_advise.
 *
 * What counts as a miss: a refusal (EQUEUEFULL, EDEADLINE), a timeout
 * (ETIMEDOUT) and a late delivery (a result that came back after the task's
 * own deadline_ms, on the client's clock).  Other failures (ETASK,
 * ECANCELLED, EUNSUPPORTED, ...) count as outcomes that are not misses: they
 * say nothing about load.
 *
 * The advice's quality rule works in epochs: a quality step starts a new
 * epoch, and only outcomes of tasks submitted within the current epoch
 * (the epoch number travels with the task) decide the next step, so the
 * timeouts of work submitted at the old quality never cause a second step
 * down.  Steps are at least FADV_STEP_MS apart, and a step up also needs
 * FADV_CALM_MS without a miss: quality never moves more than one step per
 * second. */
#ifndef P2C2R_CLIENT_FADV_H
#define P2C2R_CLIENT_FADV_H

#include <stdint.h>

#include "p2c2r/client.h"

#define FADV_RTT_N 32         /* round trips kept for the p90 */
#define FADV_WINDOW 16        /* ratios: the mean over the first 16, then 1/16 each */
#define FADV_STEP_MS 1000     /* at least this long between two quality steps */
#define FADV_CALM_MS 2000     /* no miss for this long before a step up */
#define FADV_WINDOW_START 16  /* tasks of a type in flight before the first miss */

enum fadv_kind {
    FADV_OK,          /* delivered within its deadline (or it had none) */
    FADV_LATE,        /* delivered after its deadline */
    FADV_TIMEOUT,     /* ETIMEDOUT */
    FADV_QUEUE_FULL,  /* refused: EQUEUEFULL */
    FADV_DEADLINE,    /* refused: EDEADLINE */
    FADV_OTHER,       /* any other failure: not a miss */
};

struct fadv {
    /* Since connect (p2c2r_pressure). */
    uint32_t inflight;
    uint64_t rej_queue_full, rej_deadline, timed_out, late;
    uint64_t last_reject_ms, last_miss_ms; /* meaningful once the counts are nonzero */
    uint64_t misses;                       /* all of the above */
    uint32_t outcomes;                     /* up to FADV_WINDOW, the ratios' warm-up */
    double reject_ratio, miss_ratio;

    /* The current epoch (see above). */
    uint32_t epoch;
    int started;                 /* fadv_advise has been called: step_ms is set */
    uint64_t step_ms;            /* when the epoch began */
    uint32_t ep_outcomes, ep_misses;
    uint64_t ep_last_miss_ms;
    double ep_miss_ratio;
    uint32_t rtt_us[FADV_RTT_N]; /* this epoch's round trips of delivered results */
    uint32_t nrtt, rtt_next;

    /* The in-flight window behind advice.fit: +1 per advice without a new
     * miss, halved on new misses. */
    double window;
    uint64_t misses_seen;
};

void fadv_init(struct fadv *f);
/* A task was queued; returns the epoch to hand back to fadv_outcome. */
uint32_t fadv_submit(struct fadv *f);
/* The outcome of a task submitted in epoch `epoch`, at now_ms; rtt_us is its
 * round trip (used for FADV_OK and FADV_LATE). */
void fadv_outcome(struct fadv *f, uint64_t now_ms, uint32_t epoch, enum fadv_kind k, uint32_t rtt_us);
/* A task ended without an outcome from the coordinator (lost connection). */
void fadv_lost(struct fadv *f);
/* The figures of struct p2c2r_pressure this module keeps, at now_ms (the
 * caller fills max_inflight and unsent_bytes). */
void fadv_pressure(const struct fadv *f, uint64_t now_ms, struct p2c2r_pressure *p);
/* This frame's advice for a budget of budget_us, when room more tasks fit
 * in the connection's in-flight limit.  Records a quality step it gives. */
void fadv_advise(struct fadv *f, uint64_t now_ms, uint32_t budget_us, uint32_t room,
                 struct p2c2r_frame_advice *out);
/* The 90th percentile of this epoch's round trips (0 without any). */
uint32_t fadv_rtt_p90(const struct fadv *f);

/* How a task's status and round trip classify (deadline_ms 0 = none). */
enum fadv_kind fadv_classify(int status, uint64_t rtt_us, uint32_t deadline_ms);

#endif
