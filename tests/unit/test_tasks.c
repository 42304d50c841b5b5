/* test_tasks.c - unit tests for the built-in executors (src/tasks/tasks.c),
 * their table (src/tasks/registry.c) and p2c2r_param_get.
 *
 * Executors are run through a harness that plays the peer: alloc_output
 * hands out a malloc'd buffer of exactly the size asked for (so ASan catches
 * a write past it) and can refuse sizes over a limit. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "p2c2r/error.h"
#include "p2c2r/executor.h"
#include "tasks/tasks.h"

struct harness {
    size_t limit; /* alloc_output refuses more than this */
    int calls;
    uint8_t *out;
    size_t out_len;
};

static void *harness_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct harness *h = call->opaque;
    h->calls++;
    if (n > h->limit)
        return NULL;
    free(h->out);
    h->out = malloc(n ? n : 1);
    h->out_len = n;
    return h->out;
}

/* Runs an executor; returns its status.  The output stays in *h. */
static int run_exec(const struct p2c2r_executor *e, struct harness *h, const void *in,
                    size_t in_len, const char *params, char *err, size_t err_cap)
{
    struct p2c2r_exec_call call = {
        .input = in,
        .input_len = in_len,
        .params = params ? params : "",
        .params_len = params ? strlen(params) : 0,
        .alloc_output = harness_alloc,
        .opaque = h,
        .err = err,
        .err_cap = err_cap,
    };
    if (err && err_cap)
        err[0] = '\0';
    return e->run(&call);
}

static void harness_reset(struct harness *h, size_t limit)
{
    free(h->out);
    *h = (struct harness){limit, 0, NULL, 0};
}

static int is_type_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

static void test_table(void)
{
    size_t n = 0;
    const struct p2c2r_executor *const *t = tasks_builtin(&n);
    CHECK(t != NULL);
    /* Every built-in type, each the executor object itself (the table lists
     * them explicitly: none can go missing from a program). */
    static const char *const names[] = {"echo", "sha256", "upscale", "raytrace", "physics", "pathfind"};
    CHECK_EQ(n, sizeof(names) / sizeof(names[0]));
    for (size_t i = 0; i < n && i < sizeof(names) / sizeof(names[0]); i++)
        CHECK(strcmp(t[i]->name, names[i]) == 0);
    CHECK(tasks_find("echo", 4) == &exec_echo);
    CHECK(tasks_find("sha256", 6) == &exec_sha256);
    for (size_t i = 0; i < n; i++) {
        CHECK(is_type_name(t[i]->name));
        CHECK(t[i]->version >= 1);
        CHECK(t[i]->run != NULL);
        CHECK(t[i]->max_input > 0);
        /* Every built-in is deterministic (its page in docs/tasks says why);
         * peers advertise this and the coordinator caches by it. */
        CHECK(t[i]->flags & P2C2R_EXEC_DETERMINISTIC);
        CHECK((t[i]->flags & ~(P2C2R_EXEC_CHEAP | P2C2R_EXEC_DETERMINISTIC)) == 0);
        CHECK(tasks_find(t[i]->name, strlen(t[i]->name)) == t[i]);
        for (size_t j = 0; j < i; j++)
            CHECK(strcmp(t[i]->name, t[j]->name) != 0);
    }
    CHECK(tasks_find("echo", 4) != NULL);
    CHECK(tasks_find("sha256", 6) != NULL);
    CHECK(tasks_find("sha25", 5) == NULL);
    CHECK(tasks_find("sha2567", 7) == NULL);
    CHECK(tasks_find("ech", 3) == NULL);
    CHECK(tasks_find("ECHO", 4) == NULL);
    CHECK(tasks_find("echo\0", 5) == NULL);
    CHECK(tasks_find("", 0) == NULL);
    /* The name is length-delimited, not NUL-terminated: a prefix of a
     * longer string is found. */
    CHECK(tasks_find("echoes", 4) == tasks_find("echo", 4));
}

static void test_echo(void)
{
    const struct p2c2r_executor *e = tasks_find("echo", 4);
    if (!CHECK(e != NULL))
        return;
    struct harness h = {0};
    char err[128];

    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, "hello", 5, NULL, err, sizeof(err)), 0);
    CHECK_EQ(h.calls, 1);
    CHECK_MEM(h.out, h.out_len, "hello", 5);

    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, "", 0, NULL, err, sizeof(err)), 0);
    CHECK_EQ(h.calls, 1);
    CHECK_EQU(h.out_len, 0);

    /* Params are ignored. */
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, "x\0y", 3, "format=hex\n", err, sizeof(err)), 0);
    CHECK_MEM(h.out, h.out_len, "x\0y", 3);

    size_t big_len = 1u << 20;
    uint8_t *big = malloc(big_len);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (uint8_t)(i * 2654435761u >> 13);
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, big, big_len, NULL, err, sizeof(err)), 0);
    CHECK_MEM(h.out, h.out_len, big, big_len);

    /* Output over the limit: refused with a reason; also without an err
     * buffer. */
    harness_reset(&h, 4);
    CHECK_EQ(run_exec(e, &h, "hello", 5, NULL, err, sizeof(err)), P2C2R_ETOOBIG);
    CHECK(err[0] != '\0');
    CHECK(h.out == NULL);
    harness_reset(&h, 4);
    CHECK_EQ(run_exec(e, &h, "hello", 5, NULL, NULL, 0), P2C2R_ETOOBIG);
    harness_reset(&h, 4);
    CHECK_EQ(run_exec(e, &h, "hello", 5, NULL, err, 1), P2C2R_ETOOBIG);
    CHECK(err[0] == '\0');
    free(big);
    harness_reset(&h, 0);
}

static void hex(const uint8_t *p, size_t n, char *dst)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        dst[2 * i] = digits[p[i] >> 4];
        dst[2 * i + 1] = digits[p[i] & 15];
    }
    dst[2 * n] = '\0';
}

static void test_sha256(void)
{
    static const struct {
        const char *in;
        const char *digest;
    } vectors[] = {
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
    };
    const struct p2c2r_executor *e = tasks_find("sha256", 6);
    if (!CHECK(e != NULL))
        return;
    struct harness h = {0};
    char err[128], got[65];

    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *in = vectors[i].in;
        /* Raw by default and with format=raw; hex with format=hex. */
        static const char *const raw_params[] = {NULL, "format=raw", "format=raw\n",
                                                 "a=1\nformat=raw\nb=2\n"};
        for (size_t p = 0; p < sizeof(raw_params) / sizeof(raw_params[0]); p++) {
            harness_reset(&h, SIZE_MAX);
            CHECK_EQ(run_exec(e, &h, in, strlen(in), raw_params[p], err, sizeof(err)), 0);
            if (CHECK(h.out_len == 32)) {
                hex(h.out, 32, got);
                CHECK(strcmp(got, vectors[i].digest) == 0);
            }
        }
        static const char *const hex_params[] = {"format=hex", "format=hex\n",
                                                 "x=format=raw\nformat=hex\n"};
        for (size_t p = 0; p < sizeof(hex_params) / sizeof(hex_params[0]); p++) {
            harness_reset(&h, SIZE_MAX);
            CHECK_EQ(run_exec(e, &h, in, strlen(in), hex_params[p], err, sizeof(err)), 0);
            CHECK_MEM(h.out, h.out_len, vectors[i].digest, 64);
        }
    }

    /* One million 'a' (FIPS 180-2 appendix B.3). */
    size_t mlen = 1000000;
    char *million = malloc(mlen);
    memset(million, 'a', mlen);
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, million, mlen, "format=hex", err, sizeof(err)), 0);
    CHECK_MEM(h.out, h.out_len,
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0", 64);
    free(million);

    /* A bad format is refused by check and by run, with a reason and
     * without asking for output. */
    static const char *const bad[] = {"format=HEX", "format=", "format=hexx", "format=he",
                                      "format=raw ", "format=hex\r\n", "format=base64"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        harness_reset(&h, SIZE_MAX);
        CHECK_EQ(run_exec(e, &h, "abc", 3, bad[i], err, sizeof(err)), P2C2R_EINVAL);
        CHECK(strstr(err, "format") != NULL);
        CHECK_EQ(h.calls, 0);
        if (CHECK(e->check != NULL)) {
            struct p2c2r_exec_call call = {.input = (const uint8_t *)"abc",
                                           .input_len = 3,
                                           .params = bad[i],
                                           .params_len = strlen(bad[i]),
                                           .err = err,
                                           .err_cap = sizeof(err)};
            err[0] = '\0';
            CHECK_EQ(e->check(&call), P2C2R_EINVAL);
            CHECK(strstr(err, "format") != NULL);
            call.err = NULL;
            call.err_cap = 0;
            CHECK_EQ(e->check(&call), P2C2R_EINVAL);
        }
        harness_reset(&h, SIZE_MAX);
        CHECK_EQ(run_exec(e, &h, "abc", 3, bad[i], NULL, 0), P2C2R_EINVAL);
    }
    if (e->check) {
        static const char *const good[] = {"", "format=raw", "format=hex\n", "other=1\n",
                                           "formats=HEX\n"};
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
            struct p2c2r_exec_call call = {.params = good[i], .params_len = strlen(good[i])};
            CHECK_EQ(e->check(&call), 0);
        }
    }

    /* The output allocation refused: an error, never a write through NULL. */
    harness_reset(&h, 31);
    int rc = run_exec(e, &h, "abc", 3, NULL, err, sizeof(err));
    CHECK(rc == P2C2R_ETOOBIG || rc == P2C2R_ENOMEM);
    CHECK(err[0] != '\0');
    harness_reset(&h, 63);
    rc = run_exec(e, &h, "abc", 3, "format=hex", NULL, 0);
    CHECK(rc == P2C2R_ETOOBIG || rc == P2C2R_ENOMEM);

    /* Deterministic: the same input gives the same bytes. */
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, "abc", 3, NULL, err, sizeof(err)), 0);
    uint8_t first[32];
    memcpy(first, h.out, 32);
    harness_reset(&h, SIZE_MAX);
    CHECK_EQ(run_exec(e, &h, "abc", 3, NULL, err, sizeof(err)), 0);
    CHECK_MEM(h.out, h.out_len, first, 32);
    harness_reset(&h, 0);
}

/* Looks key up in params (not NUL-terminated: copied to an exact-size
 * buffer) and compares with want (NULL = not found). */
static void check_param(const char *params, size_t len, const char *key, const char *want)
{
    char *p = malloc(len ? len : 1);
    if (len)
        memcpy(p, params, len);
    const char *v = (const char *)0x1;
    size_t vl = 12345;
    int found = p2c2r_param_get(p, len, key, &v, &vl);
    if (!want) {
        CHECK_EQ(found, 0);
        CHECK(v == (const char *)0x1 && vl == 12345); /* untouched */
    } else if (CHECK(found == 1)) {
        CHECK_MEM(v, vl, want, strlen(want));
        CHECK(v >= p && v + vl <= p + len);
    }
    free(p);
}

#define PARAM(s, key, want) check_param(s, sizeof(s) - 1, key, want)

static void test_param_get(void)
{
    PARAM("", "format", NULL);
    PARAM("format=hex", "format", "hex");
    PARAM("format=hex\n", "format", "hex");
    PARAM("a=1\nformat=hex\nb=2\n", "format", "hex");
    PARAM("a=1\nformat=hex\nb=2\n", "a", "1");
    PARAM("a=1\nformat=hex\nb=2\n", "b", "2");
    PARAM("a=1\nformat=hex\nb=2\n", "c", NULL);
    PARAM("format=\n", "format", "");
    PARAM("format=", "format", "");
    PARAM("format\nformat=raw", "format", "raw");  /* a bare key is no match */
    PARAM("format", "format", NULL);
    PARAM("formatx=1\nformat=raw", "format", "raw"); /* longer key is no match */
    PARAM("form=1\n", "format", NULL);                /* neither is a shorter one */
    PARAM("xformat=1\n", "format", NULL);
    PARAM(" format=1\n", "format", NULL);
    PARAM("format=a\nformat=b\n", "format", "a"); /* the first wins */
    PARAM("k=a=b\n", "k", "a=b");
    PARAM("\n\n\nk=v\n\n", "k", "v");
    PARAM("k=v\r\n", "k", "v\r"); /* values are raw bytes up to the newline */
    PARAM("k", "k", NULL);
    PARAM("=x\n", "k", NULL);

    /* Values may hold any byte but a newline, NUL included. */
    const char *v = NULL;
    size_t vl = 0;
    CHECK_EQ(p2c2r_param_get("k=\0v\n", 5, "k", &v, &vl), 1);
    CHECK_MEM(v, vl, "\0v", 2);

    /* params_len, not a NUL, ends the block: a value cut at the end. */
    check_param("format=hexadecimal", 10, "format", "hex");
    check_param("format=hex", 6, "format", NULL);
    check_param("format=hex", 7, "format", "");
}

int main(void)
{
    test_table();
    test_echo();
    test_sha256();
    test_param_get();
    return check_report("test_tasks");
}
