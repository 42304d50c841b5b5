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

/* 2: P2C2R_EXEC_DETERMINISTIC.  3: estimate, cancel, prepared state. */
#define P2C2R_EXEC_ABI_VERSION 3

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

/* The largest cost an estimate returns; every estimate is in
 * 1..P2C2R_EXEC_COST_MAX, whatever the input (so sums of a few thousand
 * estimates cannot overflow 64 bits). */
#define P2C2R_EXEC_COST_MAX ((uint64_t)1 << 48)

/* Frees a prepared object (see p2c2r_exec_prepared_put). */
typedef void (*p2c2r_prepared_free_fn)(void *obj);

/* One call of an executor.  Everything here is borrowed and valid until run
 * returns.  Whoever builds a call zero-initialises the members it does not
 * set (a designated initializer does): NULL cancel and prepared_* mean "never
 * cancelled" and "no prepared-state cache". */
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

    /* ---- ABI 3 ---- */

    /* The cancel flag: nonzero once the task stopped mattering (its renter
     * cancelled it, its deadline passed, its hedge lost).  Written by another
     * thread at any time; read it only through p2c2r_exec_cancelled.  NULL:
     * the call cannot be cancelled. */
    const int *cancel;

    /* The peer's prepared-state cache; use p2c2r_exec_prepared_get / _put,
     * which also handle a call without one (both NULL). */
    const void *(*prepared_get)(struct p2c2r_exec_call *call, const uint8_t key[32]);
    int (*prepared_put)(struct p2c2r_exec_call *call, const uint8_t key[32], void *obj,
                        size_t bytes, p2c2r_prepared_free_fn free_fn, const void **out);
    void *prepared_opaque; /* for prepared_get / prepared_put */
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
     * Called concurrently from several threads: must be reentrant.  Should
     * poll p2c2r_exec_cancelled often enough that a cancelled call returns
     * P2C2R_ECANCELLED within about a millisecond of work. */
    int (*run)(struct p2c2r_exec_call *call);

    /* Optional (ABI 3): the cost of running this call, a dimensionless
     * number in 1..P2C2R_EXEC_COST_MAX meant to be proportional to the
     * executor's run time for this type (the coordinator learns the time
     * per unit per type and per peer).  Reads params, input_len, the blobs'
     * lengths and at most a fixed-size header of input or a blob (input or a
     * blob's data may be NULL when only sizes are known: then it assumes
     * what the sizes allow).  Must be cheap (no allocation, no parsing of
     * the whole input), never fail, and stay bounded for malformed input:
     * a value it cannot read counts at its default or its limit.  Pure and
     * thread-safe.  NULL: the cost is p2c2r_exec_cost_bytes(call). */
    uint64_t (*estimate)(const struct p2c2r_exec_call *call);
};

/* Whether call was cancelled (its cancel flag is set).  An executor checks
 * it between units of work (rows, steps, batches of expansions) and then
 * returns P2C2R_ECANCELLED with nothing written.  A relaxed atomic load: a
 * few nanoseconds.  Thread-safe. */
static inline int p2c2r_exec_cancelled(const struct p2c2r_exec_call *call)
{
    return call->cancel && __atomic_load_n(call->cancel, __ATOMIC_RELAXED) != 0;
}

/* The default cost of a call, and the estimate of echo and sha256:
 * input_len plus every blob's length, plus 1, clamped to
 * P2C2R_EXEC_COST_MAX. */
static inline uint64_t p2c2r_exec_cost_bytes(const struct p2c2r_exec_call *call)
{
    const uint64_t m = P2C2R_EXEC_COST_MAX;
    uint64_t c = 1 + ((uint64_t)call->input_len < m ? (uint64_t)call->input_len : m);
    for (size_t i = 0; i < call->nblobs && c <= m; i++)
        c += (uint64_t)call->blobs[i].len < m ? (uint64_t)call->blobs[i].len : m;
    return c > P2C2R_EXEC_COST_MAX ? P2C2R_EXEC_COST_MAX : c;
}

/* Prepared state: what run derived from a blob (a parsed map, a scene's
 * BVH, a decoded image), kept in the peer's cache for later calls of the
 * same executor.  key is 32 bytes the executor chooses: the blob's SHA-256,
 * or a SHA-256 over everything the object depends on.  Entries are scoped
 * to the executor (two executors never see each other's objects).
 *
 * p2c2r_exec_prepared_get returns the object cached under key (borrowed,
 * valid until run returns, never written again: share it read-only), or
 * NULL when there is none or no cache.  A hit or a miss, never a half-built
 * object.
 *
 * p2c2r_exec_prepared_put offers obj (bytes: what it holds in memory,
 * counted against the cache's cap; free_fn frees it).  Takes ownership on
 * success: returns 0 with *out the cached object under key, valid until run
 * returns, which is obj or, when another thread put one first, that one
 * (obj is then freed).  On failure (no cache, obj larger than the cache,
 * out of memory, more than a few objects held by this call) returns a
 * negative p2c2r_error and the caller keeps obj.  Put only what was derived
 * successfully: a parse failure caches nothing.  Thread-safe. */
static inline const void *p2c2r_exec_prepared_get(struct p2c2r_exec_call *call, const uint8_t key[32])
{
    return call->prepared_get ? call->prepared_get(call, key) : NULL;
}

static inline int p2c2r_exec_prepared_put(struct p2c2r_exec_call *call, const uint8_t key[32],
                                          void *obj, size_t bytes, p2c2r_prepared_free_fn free_fn,
                                          const void **out)
{
    if (!call->prepared_put)
        return P2C2R_EUNSUPPORTED;
    return call->prepared_put(call, key, obj, bytes, free_fn, out);
}

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
