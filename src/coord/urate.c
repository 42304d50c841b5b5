/* urate.c - time per cost unit, learned robustly (see urate.h): a median over a window of
 * recent samples for a type, a step-clamped log-space average for a peer.
 *
 * Invariant: after any add, med is the median of the min(n, URATE_WINDOW) samples in the
 * ring (the upper median for an even count), and every stored rate is >= URATE_MIN. */
#include <math.h>

#include "coord/urate.h"

double urate_sample(uint32_t exec_us, uint64_t cost)
{
    double r = (double)exec_us / (double)(cost ? cost : 1);
    return r > URATE_MIN ? r : URATE_MIN;
}

void urate_win_add(struct urate_win *w, double rate)
{
    if (!(rate >= URATE_MIN)) /* also NaN */
        rate = URATE_MIN;
    if (rate > 3e38)
        rate = 3e38; /* fits a float */
    w->r[w->pos] = (float)rate;
    w->pos = (w->pos + 1) % URATE_WINDOW;
    if (w->n < UINT32_MAX)
        w->n++;
    uint32_t k = w->n < URATE_WINDOW ? w->n : URATE_WINDOW;
    /* The ring holds the last k samples at indexes 0..k-1 while it fills
     * (pos == k), and all URATE_WINDOW of them after: either way r[0..k). */
    float s[URATE_WINDOW];
    for (uint32_t i = 0; i < k; i++) {
        float x = w->r[i];
        uint32_t j = i;
        for (; j > 0 && s[j - 1] > x; j--)
            s[j] = s[j - 1];
        s[j] = x;
    }
    w->med = s[k / 2];
}

void urate_ewma_add(float *v, double rate)
{
    if (!(rate >= URATE_MIN))
        rate = URATE_MIN;
    if (rate > 3e38)
        rate = 3e38;
    if (!(*v > 0)) {
        *v = (float)rate;
        return;
    }
    double d = log2(rate) - log2((double)*v);
    if (d > URATE_STEP_LOG2)
        d = URATE_STEP_LOG2;
    else if (d < -URATE_STEP_LOG2)
        d = -URATE_STEP_LOG2;
    double nv = (double)*v * exp2(URATE_ALPHA * d);
    *v = (float)(nv > URATE_MIN ? nv : URATE_MIN);
}
