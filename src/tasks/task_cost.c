/* task_cost.c - tasks_estimate and the helpers of the executors' estimate
 * callbacks (task_cost.h).  No allocation, no state: the coordinator may
 * call tasks_estimate on its loop thread for every task it admits. */
#include "tasks/task_cost.h"

#include <string.h>

#include "tasks/tasks.h"

uint64_t cost_clamp(uint64_t x)
{
    return x < 1 ? 1 : x > P2C2R_EXEC_COST_MAX ? P2C2R_EXEC_COST_MAX : x;
}

uint64_t cost_mul(uint64_t a, uint64_t b)
{
    if (a && b > P2C2R_EXEC_COST_MAX / a)
        return P2C2R_EXEC_COST_MAX;
    return a * b > P2C2R_EXEC_COST_MAX ? P2C2R_EXEC_COST_MAX : a * b;
}

uint64_t cost_add(uint64_t a, uint64_t b)
{
    if (a > P2C2R_EXEC_COST_MAX || b > P2C2R_EXEC_COST_MAX - a)
        return P2C2R_EXEC_COST_MAX;
    return a + b;
}

uint32_t cost_log2(uint64_t x)
{
    uint32_t n = 0;
    while (n < 64 && ((uint64_t)1 << n) < x)
        n++;
    return n;
}

int cost_peek_uint(const char *text, size_t len, const char *key, uint32_t *out)
{
    size_t kl = strlen(key);
    if (!text || kl == 0 || len < kl)
        return 0;
    const char *p = memmem(text, len, key, kl);
    if (!p)
        return 0;
    const char *end = text + len;
    p += kl;
    while (p < end && (*p == ' ' || *p == '\t' || *p == ':' || *p == '='))
        p++;
    if (p == end || *p < '0' || *p > '9')
        return 0;
    uint64_t v = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++)
        if ((v = v * 10 + (uint64_t)(*p - '0')) > UINT32_MAX)
            v = UINT32_MAX;
    *out = (uint32_t)v;
    return 1;
}

uint64_t cost_count(const char *text, size_t len, const char *key)
{
    size_t kl = strlen(key);
    uint64_t n = 0;
    if (!text || kl == 0)
        return 0;
    const char *p = text, *end = text + len;
    while ((size_t)(end - p) >= kl && (p = memmem(p, (size_t)(end - p), key, kl)) != NULL) {
        n++;
        p += kl;
    }
    return n;
}

uint64_t cost_param(const struct p2c2r_exec_call *call, const char *key, uint64_t dflt, uint64_t max)
{
    const char *v;
    size_t vl;
    if (!p2c2r_param_get(call->params, call->params_len, key, &v, &vl) || vl == 0 || vl > 20)
        return dflt;
    uint64_t x = 0;
    for (size_t i = 0; i < vl; i++) {
        if (v[i] < '0' || v[i] > '9')
            return dflt;
        if (x > max || x > UINT64_MAX / 10 - 1)
            return max;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    return x > max ? max : x;
}

uint64_t tasks_estimate(const char *type, size_t type_len, const char *params, size_t params_len,
                        const uint8_t *input, size_t input_len, const struct p2c2r_blob *blobs,
                        size_t nblobs)
{
    const struct p2c2r_executor *ex = tasks_find(type, type_len);
    const struct p2c2r_exec_call call = {
        .input = input,
        .input_len = input_len,
        .params = params,
        .params_len = params_len,
        .blobs = blobs,
        .nblobs = nblobs,
    };
    uint64_t c = ex && ex->estimate ? ex->estimate(&call) : p2c2r_exec_cost_bytes(&call);
    return cost_clamp(c);
}
