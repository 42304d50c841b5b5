/* p2c2r/executor.h - the executor ABI: how task types plug into p2c2r-peer.
 *
 * An executor is a static table entry: a name, a version, limits, an input
 * check and a run function.  The peer calls check on its I/O thread before
 * queueing a task and run on one of its executor threads (or inline on the
 * I/O thread for executors flagged P2C2R_EXEC_CHEAP with small inputs).
 *
 * Executors are pure computation: no sockets, no global mutable state.  One
 * that is deterministic says so with P2C2R_EXEC_DETERMINISTIC, and the peer
 * advertises that to the coordinator with the type. */
#ifndef P2C2R_EXECUTOR_H
#define P2C2R_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 2: P2C2R_EXEC_DETERMINISTIC. */
#define P2C2R_EXEC_ABI_VERSION 2

/* The executor is so cheap that running it inline on the I/O thread (for
 * inputs under P2C2R_EXEC_INLINE_MAX bytes) beats a thread hand-off. */
#define P2C2R_EXEC_CHEAP 0x1u
#define P2C2R_EXEC_INLINE_MAX 4096

/* The executor is deterministic: the same input, params and blobs give
 * byte-identical output (or the same error) on every peer that runs the
 * same version of it, whatever its CPU, compiler, thread count or the order
 * tasks arrive in.  That is what lets the coordinator answer a repeated task
 * from its result cache, run identical tasks once, and verify an untrusted
 * peer by comparing its output with another peer's.  Set it only when it is
 * true: fixed evaluation order, no uninitialised bytes, no clock, seeded
 * random numbers, no floating-point contraction or -ffast-math, no libm
 * function whose last bit may differ between C libraries.  Bytes that a
 * system library encodes (PNG through zlib, JPEG through libjpeg-turbo) are
 * identical only for the same library version; the built-in upscale and
 * raytrace accept that (docs/TASKS.md).  When the output of a new version
 * differs for the same input, bump version. */
#define P2C2R_EXEC_DETERMINISTIC 0x2u

/* A content-addressed blob (a map, a mesh) that many tasks reference by the
 * SHA-256 of its bytes instead of carrying it in every input. */
struct p2c2r_blob {
    uint8_t hash[32];
    const uint8_t *data;
    size_t len;
};

/* One call of an executor.  Everything here is borrowed and valid until run
 * returns. */
struct p2c2r_exec_call {
    const uint8_t *input;
    size_t input_len;
    const char *params; /* "key=value\n" lines, not NUL-terminated */
    size_t params_len;

    /* Returns a buffer of n bytes for the output (owned by the peer), or NULL
     * when n is over the output limit or memory is short (then run returns
     * P2C2R_ETOOBIG or P2C2R_ENOMEM).  Call at most once per run. */
    void *(*alloc_output)(struct p2c2r_exec_call *call, size_t n);
    void *opaque; /* for alloc_output */

    /* On failure run may write a one-line reason here (NUL-terminated). */
    char *err;
    size_t err_cap;

    /* Blobs the task referenced, resolved by the peer before the call. */
    const struct p2c2r_blob *blobs;
    size_t nblobs;
};

struct p2c2r_executor {
    const char *name;   /* task type, 1..32 bytes of [a-z0-9_.-] */
    uint32_t version;   /* bumped whenever output for the same input changes */
    uint32_t flags;     /* P2C2R_EXEC_* */
    size_t max_input;   /* inputs over this are rejected before run */

    /* Optional: validates params and input size cheaply before queueing.
     * Returns 0 or P2C2R_EINVAL with a reason in err.  Thread-safe. */
    int (*check)(const struct p2c2r_exec_call *call);

    /* Runs the task.  Returns 0 after alloc_output was called and the output
     * fully written, or a negative p2c2r_error with a reason in call->err.
     * Called concurrently from several threads: must be reentrant. */
    int (*run)(struct p2c2r_exec_call *call);
};

/* Finds the value of key in a "key=value\n" params block.  Returns 1 and
 * sets *val / *val_len (borrowed from params) when found, 0 otherwise. */
P2C2R_API int p2c2r_param_get(const char *params, size_t params_len, const char *key,
                    const char **val, size_t *val_len);

/* Finds a blob of the call by its reference: 64 lowercase hex digits of its
 * SHA-256 (ref_len bytes, not NUL-terminated).  Returns 1 and sets *data /
 * *len (borrowed, valid during run) when present, 0 otherwise. */
P2C2R_API int p2c2r_exec_blob(const struct p2c2r_exec_call *call, const char *ref, size_t ref_len,
                              const uint8_t **data, size_t *len);

#ifdef __cplusplus
}
#endif
#endif
