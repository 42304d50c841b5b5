/* p2c2r_wasm.c - the built-in executors as a WebAssembly module: what the
 * contribute page's Web Worker (web/worker.js) and the byte-identity test
 * (tests/wasm/) call.  Built by scripts/wasm.sh with Emscripten, never by the
 * native build.
 *
 * The same executors as a native peer's (src/tasks/, registry.c), called the
 * way a peer calls them: check, then run, with the input limit of the type.
 * The module is single-threaded (one call at a time in one worker), so its
 * state is static: the blobs of the next call and the output of the last.
 * JS passes buffers it allocated with p2c2r_wasm_alloc in the module's
 * memory; the module never keeps a pointer into them past the call, except
 * blobs, which it owns from p2c2r_wasm_blob_add until p2c2r_wasm_blobs_clear. */
#include <emscripten.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_sha256.h"
#include "tasks/tasks.h"

/* The largest output a call may allocate: what a native peer accepts. */
#define WASM_OUTPUT_MAX ((size_t)64 << 20)
#define WASM_BLOBS_MAX 64

static struct p2c2r_blob blobs[WASM_BLOBS_MAX];
static size_t nblobs;
static uint8_t *output;
static size_t output_len;
static char err[256];
static char types[512];

/* libsodium's SHA-256 (the only part of libsodium built) wipes its scratch
 * state with sodium_memzero, which lives in a file of libsodium that pulls
 * in its random number generator; this is the same volatile wipe. */
void sodium_memzero(void *const pnt, const size_t len)
{
    volatile unsigned char *p = pnt;
    for (size_t i = 0; i < len; i++)
        p[i] = 0;
}

/* Seeds jansson's hash tables (JS passes 32 random bits: crypto.
 * getRandomValues).  Called once before the first run: otherwise jansson
 * reads /dev/urandom, which the module has no file system for. */
EMSCRIPTEN_KEEPALIVE void p2c2r_wasm_init(uint32_t seed) { json_object_seed(seed ? seed : 1); }

/* "name:version,..." of every built-in type in registration order. */
EMSCRIPTEN_KEEPALIVE const char *p2c2r_wasm_types(void)
{
    size_t n, off = 0;
    const struct p2c2r_executor *const *t = tasks_builtin(&n);
    types[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof(types); i++)
        off += (size_t)snprintf(types + off, sizeof(types) - off, "%s%s:%u", i ? "," : "",
                                t[i]->name, (unsigned)t[i]->version);
    return types;
}

EMSCRIPTEN_KEEPALIVE void *p2c2r_wasm_alloc(size_t n) { return malloc(n ? n : 1); }

EMSCRIPTEN_KEEPALIVE void p2c2r_wasm_free(void *p) { free(p); }

/* Writes SHA-256(data[0..len)) to md.  Returns 0 or P2C2R_ENOMEM. */
EMSCRIPTEN_KEEPALIVE int p2c2r_wasm_sha256(const uint8_t *data, size_t len, uint8_t *md)
{
    struct task_sha256 *h = task_sha256_new();
    if (!h)
        return P2C2R_ENOMEM;
    if (task_sha256_update(h, data, len) != 0) {
        task_sha256_free(h);
        return P2C2R_ENOMEM;
    }
    return task_sha256_final(h, md) == 0 ? 0 : P2C2R_ENOMEM;
}

/* Adds a blob for the next calls (referenced by the SHA-256 of its bytes,
 * which is computed here).  Takes ownership of data (from p2c2r_wasm_alloc)
 * on success.  Returns 0, P2C2R_ELIMIT (too many blobs) or P2C2R_ENOMEM. */
EMSCRIPTEN_KEEPALIVE int p2c2r_wasm_blob_add(uint8_t *data, size_t len)
{
    if (nblobs == WASM_BLOBS_MAX)
        return P2C2R_ELIMIT;
    int rc = p2c2r_wasm_sha256(data, len, blobs[nblobs].hash);
    if (rc != 0)
        return rc;
    blobs[nblobs].data = data;
    blobs[nblobs].len = len;
    nblobs++;
    return 0;
}

EMSCRIPTEN_KEEPALIVE void p2c2r_wasm_blobs_clear(void)
{
    for (size_t i = 0; i < nblobs; i++)
        free((void *)blobs[i].data);
    nblobs = 0;
}

static void *wasm_alloc_output(struct p2c2r_exec_call *call, size_t n)
{
    (void)call;
    if (n > WASM_OUTPUT_MAX || output)
        return NULL;
    output = malloc(n ? n : 1);
    output_len = output ? n : 0;
    return output;
}

/* Runs task type (NUL-terminated) on input with params ("key=value\n"
 * lines) and the blobs added so far.  Returns 0 (the output is then at
 * p2c2r_wasm_output, valid until the next call) or a negative p2c2r_error
 * with a reason at p2c2r_wasm_error: P2C2R_EUNSUPPORTED for an unknown type,
 * P2C2R_ETOOBIG for an input over the type's limit, else the executor's. */
EMSCRIPTEN_KEEPALIVE int p2c2r_wasm_run(const char *type, const char *params, size_t params_len,
                                        const uint8_t *input, size_t input_len)
{
    free(output);
    output = NULL;
    output_len = 0;
    err[0] = '\0';
    const struct p2c2r_executor *e = tasks_find(type, strlen(type));
    if (!e) {
        snprintf(err, sizeof(err), "no executor for task type '%.64s'", type);
        return P2C2R_EUNSUPPORTED;
    }
    if (input_len > e->max_input) {
        snprintf(err, sizeof(err), "input of %zu bytes over the %zu of type %s", input_len,
                 e->max_input, e->name);
        return P2C2R_ETOOBIG;
    }
    struct p2c2r_exec_call call = {
        .input = input,
        .input_len = input_len,
        .params = params,
        .params_len = params_len,
        .alloc_output = wasm_alloc_output,
        .err = err,
        .err_cap = sizeof(err),
        .blobs = blobs,
        .nblobs = nblobs,
    };
    int rc = e->check ? e->check(&call) : 0;
    if (rc == 0)
        rc = e->run(&call);
    if (rc == 0 && !output) {
        snprintf(err, sizeof(err), "executor %s returned no output", e->name);
        rc = P2C2R_ETASK;
    }
    if (rc != 0) {
        free(output);
        output = NULL;
        output_len = 0;
        if (!err[0])
            snprintf(err, sizeof(err), "executor %s failed", e->name);
    }
    return rc;
}

EMSCRIPTEN_KEEPALIVE const uint8_t *p2c2r_wasm_output(void) { return output; }

EMSCRIPTEN_KEEPALIVE size_t p2c2r_wasm_output_len(void) { return output_len; }

EMSCRIPTEN_KEEPALIVE const char *p2c2r_wasm_error(void) { return err; }
