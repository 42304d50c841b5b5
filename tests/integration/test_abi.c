/* test_abi.c - libp2c2r's sized structs against a real coordinator.
 *
 * A program built against an older client.h passes structs whose size
 * member is smaller than this library's sizeof.  This test is such a
 * program: it declares its own copies of the first layout of each struct
 * (struct v0_*, the fields up to P2C2R_*_SIZE_MIN) and checks, against
 * p2c2rd --local-peers 1, that the library
 *   - reads only the bytes within the caller's size: each caller struct sits
 *     in a heap block of exactly that size (AddressSanitizer reports a
 *     byte more), and bytes past it hold values the library would refuse
 *     or act on, were it to read them;
 *   - writes only within the caller's size, at the caller's stride: result
 *     arrays of the smallest size are surrounded by guard bytes checked
 *     after each call;
 *   - zeroes what a newer, larger caller struct has past the library's own
 *     sizeof, and refuses a nonzero byte there in a struct it reads;
 *   - answers EINVAL for a size of 0, below the first layout, or over
 *     P2C2R_STRUCT_SIZE_MAX, and for a batch whose elements disagree on
 *     their size, before anything else. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- the first layouts, as an old header declared them ----------------------- */

struct v0_options {
    uint32_t size;
    const char *token;
    const char *name;
    int connect_timeout_ms;
    size_t max_result_bytes;
};

struct v0_task {
    uint32_t size;
    const char *type;
    uint32_t min_version;
    uint32_t deadline_ms;
    uint8_t priority;
    const char *params;
    size_t params_len;
    const void *input;
    size_t input_len;
};

struct v0_result {
    uint32_t size;
    p2c2r_ticket ticket;
    int status;
    void *output;
    size_t output_len;
    uint32_t exec_us;
    uint32_t peer_id;
    uint16_t attempts;
};

/* The copies are prefixes of today's structs, field for field. */
#define SAME_OFFSET(V, T, f) _Static_assert(offsetof(V, f) == offsetof(T, f), #f " moved")
SAME_OFFSET(struct v0_options, struct p2c2r_client_options, max_result_bytes);
SAME_OFFSET(struct v0_task, struct p2c2r_task, priority);
SAME_OFFSET(struct v0_task, struct p2c2r_task, input_len);
SAME_OFFSET(struct v0_result, struct p2c2r_result, output);
SAME_OFFSET(struct v0_result, struct p2c2r_result, attempts);
_Static_assert(sizeof(struct v0_options) == P2C2R_CLIENT_OPTIONS_SIZE_MIN, "v0 options size");
_Static_assert(sizeof(struct v0_task) == P2C2R_TASK_SIZE_MIN, "v0 task size");
_Static_assert(offsetof(struct v0_result, attempts) + sizeof(uint16_t) == P2C2R_RESULT_SIZE_MIN,
               "v0 result size");

#define TASK_MIN ((uint32_t)P2C2R_TASK_SIZE_MIN)
#define RESULT_MIN ((uint32_t)P2C2R_RESULT_SIZE_MIN) /* 50 on LP64: not a multiple of 8 */
#define GUARD 64
#define GUARD_BYTE 0xa5
#define NEWER 16 /* how much larger a "newer header" struct is */

static int all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void release_output(void *output)
{
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    r.output = output;
    p2c2r_result_release(&r);
}

static p2c2r_client *connect_default(void)
{
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect with NULL options (defaults): %s", h_err(rc));
    return c;
}

/* Waits (bounded) until every submitted task's result has been read, so a
 * poll then takes them all at once. */
static void wait_all_arrived(p2c2r_client *c)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT;
    for (;;) {
        int rc = p2c2r_client_process(c);
        H_REQUIRE(rc >= 0, "process: %s", h_err(rc));
        rc = p2c2r_client_pressure(c, &p);
        H_REQUIRE(rc == 0, "pressure: %s", h_err(rc));
        if (p.inflight == 0)
            return;
        H_REQUIRE(h_now_ms() < end, "%u results still missing", p.inflight);
        h_sleep_ms(5);
    }
}

/* ---- options -------------------------------------------------------------------- */

static void test_options(void)
{
    h_phase("options: size checks");
    p2c2r_client *c = NULL;
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.size = 0;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_CHECK(rc == P2C2R_EINVAL && !c, "options size 0: %s, expected EINVAL", h_err(rc));
    o.size = (uint32_t)P2C2R_CLIENT_OPTIONS_SIZE_MIN - 1;
    rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_CHECK(rc == P2C2R_EINVAL && !c, "options size MIN-1: %s, expected EINVAL", h_err(rc));
    o.size = P2C2R_STRUCT_SIZE_MAX + 8;
    rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_CHECK(rc == P2C2R_EINVAL && !c, "options size over the maximum: %s, expected EINVAL", h_err(rc));

    h_phase("options: the first layout, in a block of exactly its size");
    struct v0_options *v0 = malloc(sizeof(*v0));
    H_REQUIRE(v0, "malloc");
    memset(v0, 0, sizeof(*v0));
    v0->size = sizeof(*v0);
    v0->name = "abi-v0";
    v0->connect_timeout_ms = h_bound_ms(5000);
    rc = p2c2r_client_connect(h_addr(), (const struct p2c2r_client_options *)v0, &c);
    H_CHECK(rc == 0, "connect with v0 options: %s", h_err(rc));
    p2c2r_client_close(c);
    c = NULL;
    free(v0);

    h_phase("options: a newer, larger layout");
    uint8_t *nb = calloc(1, sizeof(struct p2c2r_client_options) + NEWER);
    H_REQUIRE(nb, "calloc");
    struct p2c2r_client_options *no = (struct p2c2r_client_options *)nb;
    no->size = (uint32_t)(sizeof(*no) + NEWER);
    no->name = "abi-newer";
    rc = p2c2r_client_connect(h_addr(), no, &c);
    H_CHECK(rc == 0, "connect with newer options, zero tail: %s", h_err(rc));
    p2c2r_client_close(c);
    c = NULL;
    nb[sizeof(*no) + NEWER - 1] = 1; /* a field this library does not know, set */
    rc = p2c2r_client_connect(h_addr(), no, &c);
    H_CHECK(rc == P2C2R_EINVAL && !c, "connect with newer options, nonzero tail: %s, expected EINVAL",
            h_err(rc));
    free(nb);
}

/* ---- one task, one result --------------------------------------------------------- */

static void test_single(p2c2r_client *c)
{
    h_phase("single: a v0 task in a block of exactly its size, its result in a v0 result");
    static const char msg[] = "hello from an older header";
    struct v0_task *t = malloc(sizeof(*t));
    H_REQUIRE(t, "malloc");
    memset(t, 0xff, sizeof(*t)); /* padding too: the library must not care */
    t->size = sizeof(*t);
    t->type = "echo";
    t->min_version = 0;
    t->deadline_ms = 0;
    t->priority = P2C2R_PRIO_INTERACTIVE;
    t->params = NULL;
    t->params_len = 0;
    t->input = msg;
    t->input_len = sizeof(msg) - 1;
    p2c2r_ticket tk = {0};
    int rc = p2c2r_client_submit(c, (const struct p2c2r_task *)t, &tk);
    H_REQUIRE(rc == 0, "submit of a v0 task: %s", h_err(rc));
    free(t);

    /* The result: RESULT_MIN bytes, then guard bytes. */
    uint8_t *rb = malloc(RESULT_MIN + GUARD);
    H_REQUIRE(rb, "malloc");
    memset(rb, GUARD_BYTE, RESULT_MIN + GUARD);
    uint32_t sz = RESULT_MIN;
    memcpy(rb, &sz, sizeof(sz));
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), (struct p2c2r_result *)rb);
    H_REQUIRE(rc == 0, "wait into a v0 result: %s", h_err(rc));
    struct v0_result r;
    memset(&r, 0, sizeof(r));
    memcpy(&r, rb, RESULT_MIN);
    H_CHECK(r.size == RESULT_MIN, "the result's size became %u, expected %u", r.size, RESULT_MIN);
    H_CHECK(r.ticket.id == tk.id, "result for ticket %llu, expected %llu", (unsigned long long)r.ticket.id,
            (unsigned long long)tk.id);
    H_CHECK(r.status == 0 && r.output_len == sizeof(msg) - 1 && r.output &&
                memcmp(r.output, msg, r.output_len) == 0,
            "echo result: status %s, %zu bytes", h_err(r.status), r.output_len);
    H_CHECK(all_bytes(rb + RESULT_MIN, GUARD, GUARD_BYTE), "wait wrote past the caller's result size");
    release_output(r.output);
    free(rb);

    h_phase("single: fields past the caller's size are neither read nor written");
    /* Today's struct, with size cut to the first layout: the later fields
     * hold what the library would refuse (unknown flags, 99 blobs) had it
     * read them. */
    struct p2c2r_task full = {.size = TASK_MIN, .type = "echo", .input = "cut", .input_len = 3,
                              .flags = 0xffffffffu, .nblobs = 99, .min_cores = 7};
    rc = p2c2r_client_submit(c, &full, &tk);
    H_REQUIRE(rc == 0, "submit with size %u and junk past it: %s", TASK_MIN, h_err(rc));
    struct p2c2r_result res = P2C2R_RESULT_INIT;
    res.size = RESULT_MIN;
    res.flags = 0xdeadbeefu;
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), &res);
    H_REQUIRE(rc == 0, "wait: %s", h_err(rc));
    H_CHECK(res.status == 0 && res.output_len == 3 && memcmp(res.output, "cut", 3) == 0,
            "cut-size task: status %s", h_err(res.status));
    H_CHECK(res.flags == 0xdeadbeefu, "flags (past the caller's size) was written: 0x%x", res.flags);
    H_CHECK(res.size == RESULT_MIN, "size became %u", res.size);
    p2c2r_result_release(&res);

    h_phase("single: a newer, larger task and result");
    uint8_t *tb = calloc(1, sizeof(struct p2c2r_task) + NEWER);
    H_REQUIRE(tb, "calloc");
    struct p2c2r_task *nt = (struct p2c2r_task *)tb;
    nt->size = (uint32_t)(sizeof(*nt) + NEWER);
    nt->type = "echo";
    nt->input = "newer";
    nt->input_len = 5;
    rc = p2c2r_client_submit(c, nt, &tk);
    H_REQUIRE(rc == 0, "submit of a newer task with a zero tail: %s", h_err(rc));
    tb[sizeof(*nt) + 3] = 0x40;
    p2c2r_ticket bad;
    size_t pending = p2c2r_client_pending(c);
    rc = p2c2r_client_submit(c, nt, &bad);
    H_CHECK(rc == P2C2R_EINVAL, "newer task with a field this library does not know: %s, expected EINVAL",
            h_err(rc));
    H_CHECK(p2c2r_client_pending(c) == pending, "a refused submit left a task pending");
    free(tb);

    size_t nsize = sizeof(struct p2c2r_result) + NEWER;
    uint8_t *nrb = malloc(nsize + GUARD);
    H_REQUIRE(nrb, "malloc");
    memset(nrb, GUARD_BYTE, nsize + GUARD);
    sz = (uint32_t)nsize;
    memcpy(nrb, &sz, sizeof(sz));
    rc = p2c2r_client_wait(c, tk, h_bound_ms(10000), (struct p2c2r_result *)nrb);
    H_REQUIRE(rc == 0, "wait into a newer result: %s", h_err(rc));
    struct p2c2r_result nr;
    memcpy(&nr, nrb, sizeof(nr));
    H_CHECK(nr.size == nsize && nr.status == 0 && nr.output_len == 5 && memcmp(nr.output, "newer", 5) == 0,
            "newer result: size %u status %s", nr.size, h_err(nr.status));
    H_CHECK(all_bytes(nrb + sizeof(nr), NEWER, 0), "the newer result's unknown tail was not zeroed");
    H_CHECK(all_bytes(nrb + nsize, GUARD, GUARD_BYTE), "wait wrote past the newer result's size");
    p2c2r_result_release(&nr);
    free(nrb);
}

/* ---- arrays ------------------------------------------------------------------------- */

#define K 6

/* Submits K v0 tasks as one batch from a heap block of exactly K elements
 * (plus tail bytes of 0xff when tail is set: read as the last element's
 * later fields they would be refused), and collects them with one poll into
 * a v0 result array at stride RESULT_MIN with two spare elements and guard
 * bytes. */
static void batch_round(p2c2r_client *c, int tail)
{
    h_phase("arrays: batch of %d v0 tasks at stride %u%s, poll at stride %u", K, TASK_MIN,
            tail ? " followed by 0xff bytes" : " in an exact block", RESULT_MIN);
    char in[K][24];
    size_t len[K];
    size_t bytes = (size_t)K * TASK_MIN + (tail ? 64 : 0);
    uint8_t *tb = malloc(bytes);
    H_REQUIRE(tb, "malloc");
    memset(tb, 0xff, bytes);
    struct v0_task *v = (struct v0_task *)tb; /* stride TASK_MIN == sizeof(*v) */
    for (int i = 0; i < K; i++) {
        len[i] = (size_t)snprintf(in[i], sizeof(in[i]), "batch-%d-%d", tail, i);
        v[i].size = TASK_MIN;
        v[i].type = "echo";
        v[i].min_version = 0;
        v[i].deadline_ms = 0;
        v[i].priority = P2C2R_PRIO_INTERACTIVE;
        v[i].params = NULL;
        v[i].params_len = 0;
        v[i].input = in[i];
        v[i].input_len = len[i];
    }
    p2c2r_ticket tk[K];
    int rc = p2c2r_client_submit_batch(c, (const struct p2c2r_task *)tb, K, tk);
    H_REQUIRE(rc == 0, "submit_batch of v0 tasks: %s", h_err(rc));
    free(tb);
    wait_all_arrived(c);

    enum { MAX = K + 2 };
    size_t rbytes = (size_t)MAX * RESULT_MIN + GUARD;
    uint8_t *rb = malloc(rbytes);
    H_REQUIRE(rb, "malloc");
    memset(rb, GUARD_BYTE, rbytes);
    uint32_t sz = RESULT_MIN;
    memcpy(rb, &sz, sizeof(sz)); /* only out[0].size: it sets the stride */
    int n = p2c2r_client_poll(c, (struct p2c2r_result *)rb, MAX, 0);
    H_REQUIRE(n == K, "poll at stride %u returned %s, expected %d results", RESULT_MIN,
              n < 0 ? h_err(n) : "fewer", K);
    H_CHECK(all_bytes(rb + (size_t)K * RESULT_MIN, rbytes - (size_t)K * RESULT_MIN, GUARD_BYTE),
            "poll wrote past its %d results at stride %u", K, RESULT_MIN);
    int seen[K] = {0};
    for (int j = 0; j < n; j++) {
        struct v0_result r;
        memset(&r, 0, sizeof(r));
        memcpy(&r, rb + (size_t)j * RESULT_MIN, RESULT_MIN);
        H_CHECK(r.size == RESULT_MIN, "result %d: size %u, expected %u", j, r.size, RESULT_MIN);
        int i = 0;
        while (i < K && tk[i].id != r.ticket.id)
            i++;
        if (!H_CHECK(i < K, "result %d: ticket %llu is not one of the batch's", j,
                     (unsigned long long)r.ticket.id)) {
            release_output(r.output);
            continue;
        }
        H_CHECK(!seen[i], "ticket %llu twice", (unsigned long long)r.ticket.id);
        seen[i] = 1;
        H_CHECK(r.status == 0 && r.output_len == len[i] && r.output && memcmp(r.output, in[i], len[i]) == 0,
                "result for task %d: status %s, %zu bytes", i, h_err(r.status), r.output_len);
        release_output(r.output);
    }
    free(rb);
}

static void test_arrays(p2c2r_client *c)
{
    batch_round(c, 0);
    batch_round(c, 1);

    h_phase("arrays: elements that disagree on their size");
    struct p2c2r_task ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task), .type = "echo", .input = "x",
                                    .input_len = 1};
    ts[2].size = 0; /* an element left uninitialised */
    p2c2r_ticket tk[3] = {{7}, {7}, {7}};
    size_t pending = p2c2r_client_pending(c);
    int rc = p2c2r_client_submit_batch(c, ts, 3, tk);
    H_CHECK(rc == P2C2R_EINVAL, "batch with one element of size 0: %s, expected EINVAL", h_err(rc));
    H_CHECK(tk[0].id == 7 && tk[2].id == 7, "a refused batch wrote tickets");
    H_CHECK(p2c2r_client_pending(c) == pending, "a refused batch left tasks pending");
    ts[2].size = TASK_MIN;
    rc = p2c2r_client_submit_batch(c, ts, 3, tk);
    H_CHECK(rc == P2C2R_EINVAL, "batch with one element of another size: %s, expected EINVAL", h_err(rc));

    h_phase("arrays: one poll into a single-element array with guard bytes");
    rc = p2c2r_client_submit(c, &ts[0], &tk[0]);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    wait_all_arrived(c);
    _Alignas(struct p2c2r_result) uint8_t one[RESULT_MIN + GUARD];
    memset(one, GUARD_BYTE, sizeof(one));
    uint32_t sz = RESULT_MIN;
    memcpy(one, &sz, sizeof(sz));
    /* A struct p2c2r_result pointer to a smaller object: the library only
     * ever copies bytes through it. */
    int n = p2c2r_client_poll(c, (struct p2c2r_result *)(void *)one, 1, h_bound_ms(10000));
    H_REQUIRE(n == 1, "poll of one: %s", n < 0 ? h_err(n) : "nothing");
    H_CHECK(all_bytes(one + RESULT_MIN, GUARD, GUARD_BYTE), "poll wrote past a single element");
    struct v0_result r;
    memcpy(&r, one, RESULT_MIN);
    H_CHECK(r.ticket.id == tk[0].id && r.status == 0, "single poll: ticket %llu status %s",
            (unsigned long long)r.ticket.id, h_err(r.status));
    release_output(r.output);
}

/* ---- size errors on every call that takes a sized struct ---------------------------- */

static void test_size_errors(p2c2r_client *c)
{
    h_phase("size errors: 0, below the first layout, over the maximum");
    const uint32_t bad_task[] = {0, TASK_MIN - 1, P2C2R_STRUCT_SIZE_MAX + 1};
    const uint32_t bad_result[] = {0, RESULT_MIN - 1, P2C2R_STRUCT_SIZE_MAX + 1};
    p2c2r_ticket tk = {0};
    struct p2c2r_task t = {.size = sizeof t, .type = "echo", .input = "e", .input_len = 1};
    for (int i = 0; i < 3; i++) {
        t.size = bad_task[i];
        int rc = p2c2r_client_submit(c, &t, &tk);
        H_CHECK(rc == P2C2R_EINVAL, "submit with task size %u: %s, expected EINVAL", bad_task[i], h_err(rc));
        rc = p2c2r_client_submit_batch(c, &t, 1, &tk);
        H_CHECK(rc == P2C2R_EINVAL, "batch with task size %u: %s, expected EINVAL", bad_task[i], h_err(rc));
    }
    t.size = sizeof t;
    int rc = p2c2r_client_submit(c, &t, &tk);
    H_REQUIRE(rc == 0, "submit: %s", h_err(rc));
    wait_all_arrived(c);

    struct p2c2r_result r;
    for (int i = 0; i < 3; i++) {
        memset(&r, 0, sizeof(r)); /* the mistake the size check exists for */
        r.size = bad_result[i];
        rc = p2c2r_client_wait(c, tk, 0, &r);
        H_CHECK(rc == P2C2R_EINVAL, "wait with result size %u: %s, expected EINVAL", bad_result[i], h_err(rc));
        rc = p2c2r_client_poll(c, &r, 1, 0);
        H_CHECK(rc == P2C2R_EINVAL, "poll with result size %u: %s, expected EINVAL", bad_result[i], h_err(rc));
    }
    p2c2r_ticket unknown = {tk.id + 1000};
    r.size = 0;
    rc = p2c2r_client_wait(c, unknown, 0, &r);
    H_CHECK(rc == P2C2R_EINVAL, "wait with size 0 on an unknown ticket: %s, expected EINVAL first", h_err(rc));
    /* The refused calls left the result where it was. */
    p2c2r_result_init(&r);
    rc = p2c2r_client_wait(c, tk, 0, &r);
    H_CHECK(rc == 0 && r.status == 0 && r.ticket.id == tk.id, "the result after refused waits: %s",
            h_err(rc));
    p2c2r_result_release(&r);

    h_phase("size errors: pressure");
    struct p2c2r_pressure p;
    memset(&p, 0, sizeof(p));
    rc = p2c2r_client_pressure(c, &p);
    H_CHECK(rc == P2C2R_EINVAL, "pressure with size 0: %s, expected EINVAL", h_err(rc));
    p.size = (uint32_t)P2C2R_PRESSURE_SIZE_MIN - 1;
    rc = p2c2r_client_pressure(c, &p);
    H_CHECK(rc == P2C2R_EINVAL, "pressure with size MIN-1: %s, expected EINVAL", h_err(rc));
    size_t psize = sizeof(struct p2c2r_pressure) + NEWER;
    uint8_t *pb = malloc(psize + GUARD);
    H_REQUIRE(pb, "malloc");
    memset(pb, GUARD_BYTE, psize + GUARD);
    uint32_t sz = (uint32_t)psize;
    memcpy(pb, &sz, sizeof(sz));
    rc = p2c2r_client_pressure(c, (struct p2c2r_pressure *)pb);
    H_CHECK(rc == 0, "pressure into a newer struct: %s", h_err(rc));
    memcpy(&p, pb, sizeof(p));
    H_CHECK(p.size == psize && p.inflight == 0 && p.max_inflight > 0, "pressure: size %u inflight %u max %u",
            p.size, p.inflight, p.max_inflight);
    H_CHECK(all_bytes(pb + sizeof(p), NEWER, 0), "the newer pressure's unknown tail was not zeroed");
    H_CHECK(all_bytes(pb + psize, GUARD, GUARD_BYTE), "pressure wrote past the caller's size");
    free(pb);
}

/* ---- the other kinds of object -------------------------------------------------------- */

static void test_frees(p2c2r_client *c)
{
    h_phase("stats string and its free function; release of an unfilled result");
    char *js = NULL;
    int rc = p2c2r_client_stats(c, h_bound_ms(5000), &js);
    H_CHECK(rc == 0 && js && js[0] == '{', "stats: %s", h_err(rc));
    p2c2r_stats_free(js);
    p2c2r_stats_free(NULL);
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    p2c2r_result_release(&r);
    p2c2r_result_release(NULL);
    H_CHECK(strcmp(p2c2r_client_last_error(NULL), "") == 0, "last_error(NULL) is not \"\"");
    H_CHECK(p2c2r_version() && p2c2r_version()[0], "p2c2r_version");
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "abi");
    const char *cargs[] = {"--local-peers", "1", NULL};
    h_coord_start(NULL, cargs);
    h_wait_peers(1, NULL);

    test_options();
    p2c2r_client *c = connect_default();
    test_single(c);
    test_arrays(c);
    test_size_errors(c);
    test_frees(c);
    H_CHECK(p2c2r_client_pending(c) == 0, "%zu results left uncollected", p2c2r_client_pending(c));
    p2c2r_client_close(c);
    return h_finish();
}
