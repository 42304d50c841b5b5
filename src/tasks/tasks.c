/* tasks.c - the built-in executors echo (returns its input) and sha256
 * (the SHA-256 digest of its input, 32 raw bytes, or 64 hex characters with
 * params "format=hex"), and helpers every executor uses.  Pure computation,
 * no I/O, no global state.  The table of executors is in registry.c.
 *
 * Both cost their input bytes (p2c2r_exec_cost_bytes) and work through
 * their input in chunks of TASK_CANCEL_CHUNK bytes, polling the cancel flag
 * between chunks (a chunk is well under a millisecond of copying or
 * hashing). */
#include "tasks/tasks.h"

#include "tasks/task_sha256.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TASK_MAX_INPUT (8u << 20)
#define TASK_CANCEL_CHUNK ((size_t)256 << 10)

void *tasks_out_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct tasks_out *o = call->opaque;
    if (o->p || (o->max && n > o->max))
        return NULL; /* at most once per run, and within the limit */
    o->p = malloc(n + 1);
    o->n = n;
    return o->p;
}

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

static int cancelled(struct p2c2r_exec_call *c)
{
    set_err(c, "cancelled while running");
    return P2C2R_ECANCELLED;
}

static int echo_run(struct p2c2r_exec_call *c)
{
    if (p2c2r_exec_cancelled(c))
        return cancelled(c);
    uint8_t *out = c->alloc_output(c, c->input_len);
    if (!out) {
        set_err(c, "output over limit");
        return P2C2R_ETOOBIG;
    }
    for (size_t off = 0; off < c->input_len; off += TASK_CANCEL_CHUNK) {
        if (off && p2c2r_exec_cancelled(c))
            return cancelled(c);
        size_t n = c->input_len - off < TASK_CANCEL_CHUNK ? c->input_len - off : TASK_CANCEL_CHUNK;
        memcpy(out + off, c->input + off, n);
    }
    return 0;
}

static uint64_t bytes_estimate(const struct p2c2r_exec_call *c) { return p2c2r_exec_cost_bytes(c); }

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
    uint8_t md[32];
    if (sha256_hex(c, &hex) != 0) {
        set_err(c, "param format must be raw or hex");
        return P2C2R_EINVAL;
    }
    struct task_sha256 *h = task_sha256_new();
    int ok = h != NULL;
    for (size_t off = 0; ok && off < c->input_len; off += TASK_CANCEL_CHUNK) {
        if (p2c2r_exec_cancelled(c)) {
            task_sha256_free(h);
            return cancelled(c);
        }
        size_t n = c->input_len - off < TASK_CANCEL_CHUNK ? c->input_len - off : TASK_CANCEL_CHUNK;
        ok = task_sha256_update(h, c->input + off, n) == 0;
    }
    if (ok)
        ok = task_sha256_final(h, md) == 0;
    else
        task_sha256_free(h);
    if (!ok) {
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
                                         TASK_MAX_INPUT, NULL, echo_run, bytes_estimate};
const struct p2c2r_executor exec_sha256 = {"sha256", 1, P2C2R_EXEC_CHEAP | P2C2R_EXEC_DETERMINISTIC,
                                           TASK_MAX_INPUT, sha256_check, sha256_run, bytes_estimate};
