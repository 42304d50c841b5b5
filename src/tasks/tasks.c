/* tasks.c - the built-in executors echo (returns its input) and sha256
 * (the SHA-256 digest of its input, 32 raw bytes, or 64 hex characters with
 * params "format=hex"), and helpers every executor uses.  Pure computation,
 * no I/O, no global state.  The table of executors is in registry.c. */
#include "tasks/tasks.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define TASK_MAX_INPUT (8u << 20)

void tasks_errf(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

static void set_err(struct p2c2r_exec_call *c, const char *msg)
{
    if (c->err && c->err_cap)
        snprintf(c->err, c->err_cap, "%s", msg);
}

static int echo_run(struct p2c2r_exec_call *c)
{
    void *out = c->alloc_output(c, c->input_len);
    if (!out) {
        set_err(c, "output over limit");
        return P2C2R_ETOOBIG;
    }
    if (c->input_len)
        memcpy(out, c->input, c->input_len);
    return 0;
}

static int sha256_hex(const struct p2c2r_exec_call *c, int *hex)
{
    const char *v;
    size_t vl;
    *hex = 0;
    if (!p2c2r_param_get(c->params, c->params_len, "format", &v, &vl))
        return 0;
    if (vl == 3 && memcmp(v, "hex", 3) == 0) {
        *hex = 1;
        return 0;
    }
    if (vl == 3 && memcmp(v, "raw", 3) == 0)
        return 0;
    return P2C2R_EINVAL;
}

static int sha256_check(const struct p2c2r_exec_call *c)
{
    int hex;
    if (sha256_hex(c, &hex) != 0) {
        if (c->err && c->err_cap)
            snprintf(c->err, c->err_cap, "param format must be raw or hex");
        return P2C2R_EINVAL;
    }
    return 0;
}

static int sha256_run(struct p2c2r_exec_call *c)
{
    int hex;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (sha256_hex(c, &hex) != 0) {
        set_err(c, "param format must be raw or hex");
        return P2C2R_EINVAL;
    }
    if (!EVP_Digest(c->input, c->input_len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        set_err(c, "sha256 failed");
        return P2C2R_ETASK;
    }
    uint8_t *out = c->alloc_output(c, hex ? 64 : 32);
    if (!out) {
        set_err(c, "output over limit");
        return P2C2R_ETOOBIG;
    }
    if (hex) {
        static const char digits[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
            out[2 * i] = (uint8_t)digits[md[i] >> 4];
            out[2 * i + 1] = (uint8_t)digits[md[i] & 15];
        }
    } else {
        memcpy(out, md, 32);
    }
    return 0;
}

const struct p2c2r_executor exec_echo = {"echo", 1, P2C2R_EXEC_CHEAP | P2C2R_EXEC_DETERMINISTIC,
                                         TASK_MAX_INPUT, NULL, echo_run};
const struct p2c2r_executor exec_sha256 = {"sha256", 1, P2C2R_EXEC_CHEAP | P2C2R_EXEC_DETERMINISTIC,
                                           TASK_MAX_INPUT, sha256_check, sha256_run};
