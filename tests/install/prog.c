/* prog.c - a program built the way a game developer builds one: against the
 * installed headers and libp2c2r only (pkg-config or find_package), never
 * against this source tree.  It calls every family of exported functions
 * against a real coordinator and checks what comes back:
 *   version and its macros; connect with options; submit and submit_batch of
 *   echo and sha256; wait, poll, cancel; the non-blocking face (fd,
 *   want_write, process, flush); pending, max_inflight, pressure, stats;
 *   put_blob and blob_hex; last_error; strerror and errname of a refusal;
 *   the executor ABI helpers; result_release and close.
 *
 * Usage: prog HOST:PORT.  Prints one line per check that failed and exits 1
 * if any did. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p2c2r/client.h>
#include <p2c2r/executor.h>
#include <p2c2r/version.h>

#if !defined(P2C2R_VERSION_NUM) || P2C2R_VERSION_NUM < 0x000200
#error "p2c2r/version.h: P2C2R_VERSION_NUM missing or older than 0.2.0"
#endif

#define WAIT_MS 10000

static int failures;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "prog: FAIL line %d: ", __LINE__);                                     \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* SHA-256("abc"), FIPS 180-2 appendix B.1. */
static const char abc_sha256[] =
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

static void check_version(void)
{
    char want[32];
    snprintf(want, sizeof(want), "%d.%d.%d", P2C2R_VERSION_MAJOR, P2C2R_VERSION_MINOR,
             P2C2R_VERSION_PATCH);
    CHECK(strcmp(want, P2C2R_VERSION_STRING) == 0, "P2C2R_VERSION_STRING %s, macros say %s",
          P2C2R_VERSION_STRING, want);
    CHECK(P2C2R_VERSION_NUM ==
              ((P2C2R_VERSION_MAJOR << 16) | (P2C2R_VERSION_MINOR << 8) | P2C2R_VERSION_PATCH),
          "P2C2R_VERSION_NUM 0x%06x does not match the macros", (unsigned)P2C2R_VERSION_NUM);
    CHECK(strcmp(p2c2r_version(), P2C2R_VERSION_STRING) == 0,
          "p2c2r_version() is %s, the headers %s", p2c2r_version(), P2C2R_VERSION_STRING);
}

static void check_exec_abi(void)
{
    const char params[] = "format=hex\nsteps=12\n";
    const char *v = NULL;
    size_t vl = 0;
    CHECK(p2c2r_param_get(params, sizeof(params) - 1, "steps", &v, &vl) == 1 && vl == 2 &&
              memcmp(v, "12", 2) == 0,
          "p2c2r_param_get did not find steps=12");
    CHECK(p2c2r_param_get(params, sizeof(params) - 1, "dt", &v, &vl) == 0,
          "p2c2r_param_get found a key that is not there");

    struct p2c2r_blob blob = {.data = (const uint8_t *)"abc", .len = 3};
    for (int i = 0; i < 32; i++)
        sscanf(abc_sha256 + 2 * i, "%2hhx", &blob.hash[i]);
    struct p2c2r_exec_call call = {.blobs = &blob, .nblobs = 1};
    const uint8_t *data = NULL;
    size_t len = 0;
    CHECK(p2c2r_exec_blob(&call, abc_sha256, 64, &data, &len) == 1 && len == 3 &&
              memcmp(data, "abc", 3) == 0,
          "p2c2r_exec_blob did not find the blob by its hash");
}

/* Waits for t and checks its result is ok with exactly want[0..len). */
static void expect(p2c2r_client *c, p2c2r_ticket t, const void *want, size_t len, const char *what)
{
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int rc = p2c2r_client_wait(c, t, WAIT_MS, &r);
    CHECK(rc == 0, "%s: wait returned %s", what, p2c2r_errname(rc));
    if (rc != 0)
        return;
    CHECK(r.status == 0, "%s: status %s (%.*s)", what, p2c2r_errname(r.status), (int)r.output_len,
          r.status ? (const char *)r.output : "");
    CHECK(r.status != 0 || (r.output_len == len && memcmp(r.output, want, len) == 0),
          "%s: output of %zu bytes differs from the %zu expected", what, r.output_len, len);
    p2c2r_result_release(&r);
}

static void check_blocking(p2c2r_client *c)
{
    /* One echo and one sha256 (hex) by themselves. */
    p2c2r_ticket t;
    struct p2c2r_task echo = {.size = sizeof echo, .type = "echo", .input = "hello, fabric", .input_len = 13};
    CHECK(p2c2r_client_submit(c, &echo, &t) == 0, "submit echo");
    expect(c, t, "hello, fabric", 13, "echo");

    struct p2c2r_task sha = {.size = sizeof sha, .type = "sha256", .params = "format=hex\n", .params_len = 11,
                             .input = "abc", .input_len = 3, .flags = P2C2R_TASK_NOCACHE};
    CHECK(p2c2r_client_submit(c, &sha, &t) == 0, "submit sha256");
    expect(c, t, abc_sha256, 64, "sha256 of abc");

    /* A batch, collected with poll in completion order. */
    struct p2c2r_task batch[3] = {
        {.size = sizeof batch[0], .type = "echo", .input = "one", .input_len = 3, .priority = P2C2R_PRIO_REALTIME},
        {.size = sizeof batch[0], .type = "echo", .input = "two", .input_len = 3, .deadline_ms = 5000},
        {.size = sizeof batch[0], .type = "sha256", .params = "format=hex\n", .params_len = 11, .input = "abc",
         .input_len = 3},
    };
    p2c2r_ticket bt[3];
    CHECK(p2c2r_client_submit_batch(c, batch, 3, bt) == 0, "submit_batch");
    CHECK(p2c2r_client_flush(c, WAIT_MS) == 0, "flush");
    int got = 0, seen[3] = {0};
    for (int tries = 0; got < 3 && tries < 100; tries++) {
        struct p2c2r_result r[3] = {P2C2R_RESULT_INIT};
        int n = p2c2r_client_poll(c, r, 3, 100);
        CHECK(n >= 0, "poll returned %s", p2c2r_errname(n));
        for (int i = 0; i < n; i++, got++) {
            for (int k = 0; k < 3; k++) {
                if (r[i].ticket.id != bt[k].id)
                    continue;
                const char *want = k == 2 ? abc_sha256 : batch[k].input;
                size_t wl = k == 2 ? 64 : 3;
                seen[k]++;
                CHECK(r[i].status == 0 && r[i].output_len == wl &&
                          memcmp(r[i].output, want, wl) == 0,
                      "batch task %d: status %s", k, p2c2r_errname(r[i].status));
            }
            p2c2r_result_release(&r[i]);
        }
    }
    CHECK(got == 3 && seen[0] == 1 && seen[1] == 1 && seen[2] == 1,
          "poll collected %d of the batch's 3 results", got);

    /* A refusal: no peer runs this type. */
    struct p2c2r_task bad = {.size = sizeof bad, .type = "no_such_type", .input = "x", .input_len = 1};
    CHECK(p2c2r_client_submit(c, &bad, &t) == 0, "submit of an unknown type");
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    if (p2c2r_client_wait(c, t, WAIT_MS, &r) == 0) {
        CHECK(r.status == P2C2R_EUNSUPPORTED, "unknown type: status %s, expected EUNSUPPORTED",
              p2c2r_errname(r.status));
        printf("refusal: %s (%s): %.*s\n", p2c2r_errname(r.status), p2c2r_strerror(r.status),
               (int)r.output_len, (const char *)r.output);
        p2c2r_result_release(&r);
    } else {
        CHECK(0, "no result for the unknown type");
    }
    CHECK(strcmp(p2c2r_errname(P2C2R_ETIMEDOUT), "ETIMEDOUT") == 0, "errname(ETIMEDOUT)");
    CHECK(p2c2r_strerror(P2C2R_ETIMEDOUT)[0] != '\0', "strerror(ETIMEDOUT) is empty");

    /* Cancel: the result still arrives, cancelled or (if it won the race) real. */
    CHECK(p2c2r_client_submit(c, &echo, &t) == 0, "submit to cancel");
    CHECK(p2c2r_client_cancel(c, t) == 0, "cancel");
    if (p2c2r_client_wait(c, t, WAIT_MS, &r) == 0) {
        CHECK(r.status == P2C2R_ECANCELLED || r.status == 0, "cancelled task: status %s",
              p2c2r_errname(r.status));
        p2c2r_result_release(&r);
    } else {
        CHECK(0, "no result for the cancelled task");
    }
    CHECK(p2c2r_client_cancel(c, t) == P2C2R_ENOTFOUND, "cancel of a collected ticket");
}

static void check_nonblocking(p2c2r_client *c)
{
    p2c2r_ticket t;
    struct p2c2r_task echo = {.size = sizeof echo, .type = "echo", .input = "frame loop", .input_len = 10};
    CHECK(p2c2r_client_submit(c, &echo, &t) == 0, "submit (non-blocking face)");
    CHECK(p2c2r_client_pending(c) == 1, "pending %zu, expected 1", p2c2r_client_pending(c));
    int ready = 0;
    for (int frame = 0; !ready && frame < 1000; frame++) {
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN, 0};
        if (p2c2r_client_want_write(c))
            pfd.events |= POLLOUT;
        poll(&pfd, 1, 10);
        int n = p2c2r_client_process(c);
        CHECK(n >= 0, "process returned %s", p2c2r_errname(n));
        if (n < 0)
            return;
        ready = n > 0;
    }
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int n = p2c2r_client_poll(c, &r, 1, 0);
    CHECK(ready && n == 1, "the frame loop collected %d results", n);
    if (n == 1) {
        CHECK(r.ticket.id == t.id && r.status == 0 && r.output_len == 10 &&
                  memcmp(r.output, "frame loop", 10) == 0,
              "non-blocking echo: status %s", p2c2r_errname(r.status));
        p2c2r_result_release(&r);
    }
    CHECK(p2c2r_client_pending(c) == 0, "pending %zu, expected 0", p2c2r_client_pending(c));
}

static void check_introspection(p2c2r_client *c)
{
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT;
    CHECK(p2c2r_client_pressure(c, &p) == 0, "pressure");
    CHECK(p.max_inflight > 0 && p.max_inflight == p2c2r_client_max_inflight(c),
          "pressure says max_inflight %u, max_inflight() %u", p.max_inflight,
          p2c2r_client_max_inflight(c));
    CHECK(p.inflight == 0 && p.rejected_queue_full == 0, "pressure: inflight %u, queue-full %llu",
          p.inflight, (unsigned long long)p.rejected_queue_full);

    char *json = NULL;
    CHECK(p2c2r_client_stats(c, WAIT_MS, &json) == 0 && json && strstr(json, "\"version\""),
          "stats: no JSON document with a version");
    p2c2r_stats_free(json);

    uint8_t hash[32];
    char hex[65];
    CHECK(p2c2r_client_put_blob(c, "abc", 3, WAIT_MS, hash) == 0, "put_blob");
    p2c2r_blob_hex(hash, hex);
    CHECK(strcmp(hex, abc_sha256) == 0, "blob hash %s, expected %s", hex, abc_sha256);

    CHECK(strcmp(p2c2r_client_last_error(c), "") == 0, "last_error: '%s'",
          p2c2r_client_last_error(c));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
        return 2;
    }
    check_version();
    check_exec_abi();

    struct p2c2r_client_options o = {.size = sizeof o, .name = "install-test", .connect_timeout_ms = WAIT_MS};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(argv[1], &o, &c);
    if (rc != 0) {
        fprintf(stderr, "prog: cannot connect to %s: %s\n", argv[1], p2c2r_strerror(rc));
        return 1;
    }
    check_blocking(c);
    check_nonblocking(c);
    check_introspection(c);
    p2c2r_client_close(c);
    p2c2r_client_close(NULL);

    if (failures) {
        fprintf(stderr, "prog: %d checks failed\n", failures);
        return 1;
    }
    printf("prog: libp2c2r %s: all checks passed\n", p2c2r_version());
    return 0;
}
