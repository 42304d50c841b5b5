/* wasm_native_exec.c - runs one built-in executor natively, the way a peer
 * does (check, then run, blobs referenced by their SHA-256), for the
 * byte-identity test and benchmark of the WebAssembly build
 * (test_wasm_exec.js, bench_wasm.js).
 *
 *   wasm_native_exec TYPE PARAMS_FILE INPUT_FILE OUTPUT_FILE [BLOB_FILE...]
 *   wasm_native_exec --repeat N TYPE ...       runs N times, writes the last
 *
 * Prints one JSON line: {"rc":0,"error":"","ms":[...]} with rc the
 * p2c2r_error of the run (0: OUTPUT_FILE holds the output) and each run's
 * wall time in ms.  Exits 0 when the executor ran (whatever it returned), 2
 * on a usage or file error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "tasks/task_sha256.h"
#include "tasks/tasks.h"

#define MAX_BLOBS 16

struct out {
    uint8_t *buf;
    size_t len;
};

static void *alloc_output(struct p2c2r_exec_call *call, size_t n)
{
    struct out *o = call->opaque;
    if (o->buf)
        return NULL;
    o->buf = malloc(n ? n : 1);
    o->len = n;
    return o->buf;
}

static int read_file(const char *path, uint8_t **data, size_t *len)
{
    *data = (uint8_t *)h_read_file(path, len);
    return *data ? 0 : -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int usage(void)
{
    fprintf(stderr, "usage: wasm_native_exec [--repeat N] TYPE PARAMS_FILE INPUT_FILE OUTPUT_FILE "
                    "[BLOB_FILE...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    int a = 1;
    long repeat = 1;
    if (argc > 2 && strcmp(argv[1], "--repeat") == 0) {
        repeat = strtol(argv[2], NULL, 10);
        a = 3;
    }
    if (repeat < 1 || repeat > 100000 || argc - a < 4 || argc - a - 4 > MAX_BLOBS)
        return usage();
    const struct p2c2r_executor *e = tasks_find(argv[a], strlen(argv[a]));
    if (!e) {
        fprintf(stderr, "wasm_native_exec: no built-in task type '%s'\n", argv[a]);
        return 2;
    }
    uint8_t *params, *input;
    size_t params_len, input_len;
    struct p2c2r_blob blobs[MAX_BLOBS];
    size_t nblobs = 0;
    if (read_file(argv[a + 1], &params, &params_len) != 0 ||
        read_file(argv[a + 2], &input, &input_len) != 0) {
        fprintf(stderr, "wasm_native_exec: cannot read %s or %s\n", argv[a + 1], argv[a + 2]);
        return 2;
    }
    for (int i = a + 4; i < argc; i++, nblobs++) {
        uint8_t *d;
        size_t l;
        struct task_sha256 *h = task_sha256_new();
        if (read_file(argv[i], &d, &l) != 0 || !h || task_sha256_update(h, d, l) != 0 ||
            task_sha256_final(h, blobs[nblobs].hash) != 0) {
            fprintf(stderr, "wasm_native_exec: cannot read or hash blob %s\n", argv[i]);
            return 2;
        }
        blobs[nblobs].data = d;
        blobs[nblobs].len = l;
    }

    char err[256] = "";
    struct out o = {0};
    int rc = 0;
    printf("{\"ms\":[");
    for (long r = 0; r < repeat; r++) {
        free(o.buf);
        o.buf = NULL;
        o.len = 0;
        err[0] = '\0';
        struct p2c2r_exec_call call = {
            .input = input,
            .input_len = input_len,
            .params = (const char *)params,
            .params_len = params_len,
            .alloc_output = alloc_output,
            .opaque = &o,
            .err = err,
            .err_cap = sizeof(err),
            .blobs = blobs,
            .nblobs = nblobs,
        };
        double t0 = now_ms();
        rc = input_len > e->max_input ? P2C2R_ETOOBIG : e->check ? e->check(&call) : 0;
        if (rc == 0)
            rc = e->run(&call);
        printf("%s%.3f", r ? "," : "", now_ms() - t0);
    }
    printf("],\"rc\":%d,\"error\":\"", rc);
    for (const char *p = err; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if ((unsigned char)*p < 0x20)
            printf("\\u%04x", (unsigned)(unsigned char)*p);
        else
            putchar(*p);
    }
    printf("\"}\n");
    if (rc == 0) {
        FILE *f = fopen(argv[a + 3], "wb");
        if (!f || fwrite(o.buf, 1, o.len, f) != o.len || fclose(f) != 0) {
            fprintf(stderr, "wasm_native_exec: cannot write %s\n", argv[a + 3]);
            return 2;
        }
    }
    free(o.buf);
    free(params);
    free(input);
    for (size_t i = 0; i < nblobs; i++)
        free((void *)blobs[i].data);
    return 0;
}
