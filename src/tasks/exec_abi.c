/* exec_abi.c - the two helpers of the executor ABI (p2c2r/executor.h):
 * p2c2r_param_get and p2c2r_exec_blob.  Pure functions of their arguments,
 * no allocation, no dependency beyond libc, so both the executors and
 * libp2c2r compile this file: an executor plugin built against the installed
 * headers finds them in the library. */
#include "p2c2r/executor.h"

#include <string.h>

int p2c2r_param_get(const char *params, size_t params_len, const char *key,
                    const char **val, size_t *val_len)
{
    if (!params || params_len == 0)
        return 0;
    size_t kl = strlen(key);
    const char *p = params, *end = params + params_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if ((size_t)(le - p) > kl && memcmp(p, key, kl) == 0 && p[kl] == '=') {
            *val = p + kl + 1;
            *val_len = (size_t)(le - (p + kl + 1));
            return 1;
        }
        p = nl ? nl + 1 : end;
    }
    return 0;
}

int p2c2r_exec_blob(const struct p2c2r_exec_call *call, const char *ref, size_t ref_len,
                    const uint8_t **data, size_t *len)
{
    uint8_t h[32];
    if (ref_len != 64)
        return 0;
    for (int i = 0; i < 64; i++) {
        char ch = ref[i];
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        if (v < 0)
            return 0;
        if (i % 2 == 0)
            h[i / 2] = (uint8_t)(v << 4);
        else
            h[i / 2] |= (uint8_t)v;
    }
    for (size_t i = 0; i < call->nblobs; i++) {
        if (memcmp(call->blobs[i].hash, h, 32) == 0) {
            *data = call->blobs[i].data;
            *len = call->blobs[i].len;
            return 1;
        }
    }
    return 0;
}
