/* urate.h - time per cost unit, learned from completed attempts: how many microseconds a
 * task of one type takes per unit of its cost (tasks_estimate, src/tasks/task_cost.h), for
 * the type as a whole and for each peer.  Admission and placement multiply a task's own
 * cost by it.
 *
 * Both estimators bound the influence of one sample, so that one freak or forged exec_us
 * (already clamped to the attempt time the coordinator measured) cannot swing them:
 * - a type's rate is the median of its last URATE_WINDOW samples: one sample moves it at
 *   most to a neighbouring order statistic, however large;
 * - a peer's rate (one float per peer and type, so that 10,000 peers stay cheap) is an
 *   exponentially weighted average in log space whose step is clamped: one sample moves it
 *   by at most a factor 2^(URATE_ALPHA * URATE_STEP_LOG2) (about 7%), however large.
 *
 * Rates are in us per unit, at least URATE_MIN; 0 means "nothing learned yet".  Pure, no
 * allocation; called on the coordinator's loop thread only. */
#ifndef P2C2R_URATE_H
#define P2C2R_URATE_H

#include <stdint.h>

#define URATE_WINDOW 32       /* samples behind a type's median */
#define URATE_ALPHA 0.1       /* a peer's average: weight of a new sample (in log space) */
#define URATE_STEP_LOG2 1.0   /* ...whose distance is clamped to this many doublings */
#define URATE_MIN 1e-9        /* us per unit: the floor of a sample (exec_us 0 is not "free") */

/* A type's rate: the median of the last URATE_WINDOW samples.  Zero-initialise. */
struct urate_win {
    float r[URATE_WINDOW]; /* ring of samples */
    uint32_t pos;          /* next slot of the ring */
    uint32_t n;            /* samples seen (saturating) */
    float med;             /* median of the ring's samples, refreshed by each add */
};

/* The sample an attempt gives: exec_us / cost, at least URATE_MIN.  cost >= 1. */
double urate_sample(uint32_t exec_us, uint64_t cost);

/* Adds one sample (us per unit) to w and refreshes its median: O(URATE_WINDOW^2) compares
 * at worst, a few hundred. */
void urate_win_add(struct urate_win *w, double rate);

/* w's rate (the median of its samples), 0 with none. */
static inline double urate_win_get(const struct urate_win *w)
{
    return w->n ? (double)w->med : 0;
}

/* Moves a peer's rate *v (0: none yet, set to the sample) towards rate by URATE_ALPHA of
 * their distance in log space, that distance clamped to URATE_STEP_LOG2 doublings. */
void urate_ewma_add(float *v, double rate);

#endif
