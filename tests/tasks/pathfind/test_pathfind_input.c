/* test_pathfind_input.c - the pathfind decoder and executor on good and bad
 * input: accepted variants (CRLF, no final newline, blank lines, tabs, zero
 * queries, the map as a blob, the largest map), every malformed case giving
 * P2C2R_EINVAL with a one-line reason and no output, output limits giving
 * P2C2R_ETOOBIG, and every prefix and many one-byte mutations of a valid
 * task never crashing. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "pf_testlib.h"

#define MAP4x3 "type octile\nheight 3\nwidth 4\nmap\n....\n..T.\n....\n"
#define GOOD MAP4x3 "queries 2\n0 0 3 2\n0 1 3 1\n"
#define GOOD_OUT_JPS "4.41421356 0,0 1,1 1,2 2,2 3,2\n4.41421356 0,1 1,0 2,0 3,0 3,1\n"

static struct pft_harness h;
static char err[512];

static int run(const char *in, size_t len, const char *params)
{
    pft_harness_reset(&h, SIZE_MAX);
    return pft_run(&h, in, len, params, NULL, 0, err, sizeof(err));
}

/* Expects EINVAL with a reason that contains want (and is one line), and
 * that no output was asked for. */
static void bad_case(const char *in, size_t len, const char *params, const char *want, int line)
{
    int rc = run(in, len, params);
    if (rc != P2C2R_EINVAL || h.calls != 0 || !err[0] || strchr(err, '\n') ||
        (want && !strstr(err, want))) {
        check_true(0, __FILE__, line, "bad input refused with the expected reason");
        fprintf(stderr, "  rc=%d calls=%d err='%s' (wanted '%s')\n", rc, h.calls, err,
                want ? want : "");
    } else {
        check_true(1, __FILE__, line, "");
    }
}
#define BAD(in, want) bad_case((in), sizeof(in) - 1, NULL, (want), __LINE__)
#define BADP(in, params, want) bad_case((in), sizeof(in) - 1, (params), (want), __LINE__)

static void good_case(const char *in, size_t len, const char *params, const char *want, int line)
{
    int rc = run(in, len, params);
    if (rc != 0 || (want && (h.out_len != strlen(want) || memcmp(h.out, want, h.out_len) != 0))) {
        check_true(0, __FILE__, line, "good input gives the expected output");
        fprintf(stderr, "  rc=%d err='%s' output='%.*s'\n", rc, err, (int)h.out_len,
                h.out ? (const char *)h.out : "");
    } else {
        check_true(1, __FILE__, line, "");
    }
}
#define GOODC(in, params, want) good_case((in), sizeof(in) - 1, (params), (want), __LINE__)

static void test_good(void)
{
    GOODC(GOOD, NULL, GOOD_OUT_JPS);
    GOODC(GOOD, "algo=jps", GOOD_OUT_JPS);
    GOODC(GOOD, "paths=0\n", "4.41421356\n4.41421356\n");
    GOODC(GOOD, "algo=astar\npaths=0\n", "4.41421356\n4.41421356\n");
    GOODC(GOOD, "algo=astar\n", NULL);
    GOODC(GOOD, "\n\nalgo=astar\n\n", NULL);
    /* CRLF everywhere, no final newline, blank lines, tabs and runs of
     * spaces, trailing blank lines, header fields spaced out. */
    GOODC("type octile\r\nheight 3\r\nwidth 4\r\nmap\r\n....\r\n..T.\r\n....\r\nqueries 2\r\n"
          "0 0 3 2\r\n0 1 3 1\r\n", NULL, GOOD_OUT_JPS);
    GOODC(MAP4x3 "queries 2\n0 0 3 2\n0 1 3 1", NULL, GOOD_OUT_JPS);
    GOODC(MAP4x3 "\n\n  \nqueries 2\n0\t0 3   2\n 0 1 3 1 \n\n\n", NULL, GOOD_OUT_JPS);
    GOODC("type  octile\nheight\t3\nwidth 4 \nmap\n....\n..T.\n....\nqueries 2\n0 0 3 2\n0 1 3 1\n",
          NULL, GOOD_OUT_JPS);
    /* Zero queries: empty output.  Start == goal: cost 0, one cell. */
    GOODC(MAP4x3 "queries 0\n", NULL, "");
    GOODC(MAP4x3 "queries 1\n2 2 2 2\n", NULL, "0.00000000 2,2\n");
    /* Every passable character, and no path. */
    GOODC("type octile\nheight 1\nwidth 7\nmap\n.GS@.OW\nqueries 3\n0 0 2 0\n0 0 4 0\n4 0 4 0\n",
          "algo=astar", "2.00000000 0,0 1,0 2,0\nnone\n0.00000000 4,0\n");
    /* No corner cutting: the only way round is the long one. */
    GOODC("type octile\nheight 2\nwidth 2\nmap\n.T\nT.\nqueries 1\n0 0 1 1\n", NULL, "none\n");
    GOODC("type octile\nheight 3\nwidth 3\nmap\n.T.\n...\n...\nqueries 1\n0 0 2 0\n", "algo=astar",
          "4.00000000 0,0 0,1 1,1 2,1 2,0\n");
}

static void test_bad_map(void)
{
    BAD("", "empty");
    BAD("\n", "type octile");
    BAD("type octil\nheight 3\nwidth 4\nmap\n....\n..T.\n....\nqueries 0\n", "octile");
    BAD("type grid\nheight 3\nwidth 4\nmap\n....\n..T.\n....\nqueries 0\n", "grid");
    BAD("height 3\nwidth 4\nmap\n....\n..T.\n....\nqueries 0\n", "type octile");
    BAD("type octile extra\nheight 3\nwidth 4\nmap\n....\n", "type octile");
    BAD("type octile\nwidth 4\nheight 3\nmap\n....\n..T.\n....\nqueries 0\n", "height");
    BAD("type octile\nheight x\nwidth 4\nmap\n....\n", "whole number");
    BAD("type octile\nheight -3\nwidth 4\nmap\n....\n", "whole number");
    BAD("type octile\nheight 3.0\nwidth 4\nmap\n....\n", "whole number");
    BAD("type octile\nheight 0\nwidth 4\nmap\n", "at least 1");
    BAD("type octile\nheight 3\nwidth 0\nmap\n\n\n\n", "at least 1");
    BAD("type octile\nheight 100000\nwidth 100000\nmap\n....\n", "over the limit");
    BAD("type octile\nheight 3\nwidth 100000\nmap\n....\n", "over the limit");
    BAD("type octile\nheight 4097\nwidth 4\nmap\n....\n", "over the limit");
    BAD("type octile\nheight 99999999999999999999\nwidth 4\nmap\n", "over the limit");
    BAD("type octile\nheight 3\nwidth\nmap\n", "width N");
    BAD("type octile\nheight 3\nwidth 4\n", "map");
    BAD("type octile\nheight 3\nwidth 4\nmaps\n....\n..T.\n....\nqueries 0\n", "map");
    /* Declared far bigger than the input: refused before allocating. */
    BAD("type octile\nheight 4096\nwidth 4096\nmap\n....\n", "only");
    /* Ragged rows, missing rows, unknown characters. */
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n.TT\n.....\nqueries 0\n", "row 1 has 3");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n..T..\n...\nqueries 0\n", "row 1 has 5");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n..T.\nqueries 0\n", "row 2 has 9");
    BAD("type octile\nheight 3\nwidth 4\nmap\n...................\n", "row 0 has 19");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n.Tx.\n....\nqueries 0\n", "unknown map character");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n.T#.\n....\nqueries 0\n", "column 2");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n.T\0.\n....\nqueries 0\n", "0x00");
    BAD("type octile\nheight 3\nwidth 4\nmap\n....\n.T .\n....\nqueries 0\n", "0x20");
}

static void test_bad_queries(void)
{
    BAD(MAP4x3, "queries N");
    BAD(MAP4x3 "\n\n", "queries N");
    BAD(MAP4x3 "0 0 3 2\n", "queries N");
    BAD(MAP4x3 "queries\n", "queries N");
    BAD(MAP4x3 "queries abc\n", "whole number");
    BAD(MAP4x3 "queries -1\n", "whole number");
    BAD(MAP4x3 "queries 65537\n", "65536");
    BAD(MAP4x3 "queries 3\n0 0 3 2\n0 1 3 1\n", "too short");
    BAD(MAP4x3 "queries 3\n0    0    3    2\n0 1 3 1\n", "only 2");
    BAD(MAP4x3 "queries 3\n0 0 3 2\n0 1 3 1\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n",
        "query 3");
    BAD(MAP4x3 "queries 1\n0 0 3 2\n0 1 3 1\n", "more query lines");
    BAD(MAP4x3 "queries 1\n0  0  3\n", "query 1 must be");
    BAD(MAP4x3 "queries 1\n0 0 3 2 1\n", "query 1 must be");
    BAD(MAP4x3 "queries 1\na 0 3 2\n", "'a' is not a coordinate");
    BAD(MAP4x3 "queries 1\n0,0 3,2\n", "query 1 must be");
    BAD(MAP4x3 "queries 1\n-1 0 3 2\n", "not a coordinate");
    BAD(MAP4x3 "queries 1\n0 0 3 2.5\n", "not a coordinate");
    BAD(MAP4x3 "queries 1\n99999999999 0 3 2\n", "not a coordinate");
    BAD(MAP4x3 "queries 1\n4 0 3 2\n", "start (4,0) is outside");
    BAD(MAP4x3 "queries 1\n0 3 3 2\n", "start (0,3) is outside");
    BAD(MAP4x3 "queries 1\n0 0 3 3\n", "goal (3,3) is outside");
    BAD(MAP4x3 "queries 2\n0 0 3 2\n0 0 4 0\n", "query 2: goal (4,0) is outside");
    BAD(MAP4x3 "queries 1\n2 1 3 2\n", "start (2,1) is on a blocked cell");
    BAD(MAP4x3 "queries 1\n0 0 2 1\n", "goal (2,1) is on a blocked cell");
    /* Line numbers count from the start of the input. */
    BAD(MAP4x3 "queries 2\n0 0 3 2\nx x x x x\n", "line 10");
}

static void test_bad_params(void)
{
    BADP(GOOD, "algo=dijkstra", "algo");
    BADP(GOOD, "algo=JPS", "algo");
    BADP(GOOD, "algo=", "algo");
    BADP(GOOD, "algo=jps ", "algo");
    BADP(GOOD, "paths=yes", "paths");
    BADP(GOOD, "paths=2", "paths");
    BADP(GOOD, "map=abc", "map");
    BADP(GOOD, "map=ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789", "map");
    BADP(GOOD, "format=hex", "unknown param 'format'");
    BADP(GOOD, "algo", "no '='");
    BADP(GOOD, "algo=jps\nalgo=astar\n", "twice");
    /* check refuses them before run, too, and takes the good ones. */
    static const char *const good[] = {"", "algo=jps", "algo=astar\npaths=0\n", "\npaths=1\n",
                                       "map=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        struct p2c2r_exec_call c = {.params = good[i], .params_len = strlen(good[i])};
        CHECK_EQ(exec_pathfind.check(&c), 0);
    }
    struct p2c2r_exec_call c = {.params = "algo=x", .params_len = 6};
    CHECK_EQ(exec_pathfind.check(&c), P2C2R_EINVAL); /* no err buffer: fine */
}

static void sha256_hex(const void *p, size_t n, uint8_t raw[32], char hex[65])
{
    unsigned int len = 0;
    EVP_Digest(p, n, raw, &len, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
}

static void test_blob(void)
{
    static const char map[] = MAP4x3 "\n\n";
    static const char junk[] = MAP4x3 "queries 0\n";
    struct p2c2r_blob b[2];
    char ref[65], ref_junk[65], params[160];
    sha256_hex(map, sizeof(map) - 1, b[0].hash, ref);
    b[0].data = (const uint8_t *)map;
    b[0].len = sizeof(map) - 1;
    sha256_hex(junk, sizeof(junk) - 1, b[1].hash, ref_junk);
    b[1].data = (const uint8_t *)junk;
    b[1].len = sizeof(junk) - 1;

    static const char q[] = "queries 2\n0 0 3 2\n0 1 3 1\n";
    snprintf(params, sizeof(params), "map=%s\n", ref);
    pft_harness_reset(&h, SIZE_MAX);
    CHECK_EQ(pft_run(&h, q, sizeof(q) - 1, params, b, 2, err, sizeof(err)), 0);
    CHECK_MEM(h.out, h.out_len, GOOD_OUT_JPS, strlen(GOOD_OUT_JPS));

    /* The blob is not among the task's: EINVAL naming it. */
    pft_harness_reset(&h, SIZE_MAX);
    CHECK_EQ(pft_run(&h, q, sizeof(q) - 1, params, b + 1, 1, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "does not reference") != NULL);
    /* The input must then hold only queries, not a map too. */
    pft_harness_reset(&h, SIZE_MAX);
    CHECK_EQ(pft_run(&h, GOOD, strlen(GOOD), params, b, 2, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "queries N") != NULL);
    /* A blob with more than a map in it. */
    snprintf(params, sizeof(params), "map=%s\n", ref_junk);
    pft_harness_reset(&h, SIZE_MAX);
    CHECK_EQ(pft_run(&h, q, sizeof(q) - 1, params, b, 2, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "map blob") != NULL);
}

static void test_limits(void)
{
    /* The peer refuses the output size: ETOOBIG with a reason. */
    pft_harness_reset(&h, 10);
    CHECK_EQ(pft_run(&h, GOOD, strlen(GOOD), NULL, NULL, 0, err, sizeof(err)), P2C2R_ETOOBIG);
    CHECK(err[0] != '\0');
    pft_harness_reset(&h, 10);
    CHECK_EQ(pft_run(&h, GOOD, strlen(GOOD), NULL, NULL, 0, NULL, 0), P2C2R_ETOOBIG);
    /* The executor's own cap, before any output is allocated. */
    struct pf_options o;
    pf_options_init(&o);
    o.max_output = 40;
    char *out = (char *)0x1;
    size_t out_len = 7;
    CHECK_EQ(pf_task_run(NULL, 0, GOOD, strlen(GOOD), &o, &out, &out_len, err, sizeof(err)),
             P2C2R_ETOOBIG);
    CHECK(strstr(err, "query 2") != NULL);
    CHECK(out == (char *)0x1 && out_len == 7);
    o.max_output = strlen(GOOD_OUT_JPS);
    if (CHECK(pf_task_run(NULL, 0, GOOD, strlen(GOOD), &o, &out, &out_len, err, sizeof(err)) == 0)) {
        CHECK_MEM(out, out_len, GOOD_OUT_JPS, strlen(GOOD_OUT_JPS));
        free(out);
    }

    /* The largest map, 4096 x 4096, open but for one wall: accepted and
     * searched corner to corner. */
    uint32_t n = PF_MAX_DIM;
    size_t cap = 64 + (size_t)(n + 1) * n + 64, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big, cap, "type octile\nheight %u\nwidth %u\nmap\n", n, n);
    for (uint32_t y = 0; y < n; y++) {
        memset(big + len, '.', n);
        if (y == n / 2)
            memset(big + len, 'T', n - 1);
        len += n;
        big[len++] = '\n';
    }
    len += (size_t)snprintf(big + len, cap - len, "queries 2\n0 0 %u %u\n5 5 5 5\n", n - 1, n - 1);
    for (int a = 0; a < 2; a++) {
        pft_harness_reset(&h, SIZE_MAX);
        int rc = pft_run(&h, big, len, a ? "algo=astar\npaths=0" : "paths=0", NULL, 0, err, sizeof(err));
        if (CHECK(rc == 0)) {
            /* To (4095,2047) above the gap in the last column: 2047
             * diagonal and 2048 straight steps; then 2048 straight steps
             * down the last column (no diagonal can enter or leave the
             * gap).  4096 + 2047 * sqrt(2) = 6990.89516218. */
            CHECK_MEM(h.out, h.out_len, "6990.89516218\n0.00000000\n", 25);
            if (h.out_len != 25 || memcmp(h.out, "6990.89516218", 13) != 0)
                fprintf(stderr, "got '%.*s'\n", (int)h.out_len, (const char *)h.out);
        }
    }
    /* One more column is over the limit. */
    memcpy(big + 12, "height 4097", 11);
    pft_harness_reset(&h, SIZE_MAX);
    CHECK_EQ(pft_run(&h, big, len, NULL, NULL, 0, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "over the limit of 4096") != NULL);
    free(big);
}

/* Every prefix and a few one-byte changes at every position: a result or
 * EINVAL, never anything else (and ASan sees every read). */
static void test_robust(void)
{
    static const char in[] = GOOD;
    size_t n = sizeof(in) - 1;
    unsigned ok = 0, einval = 0;
    for (size_t i = 0; i <= n; i++) {
        char *p = malloc(i ? i : 1); /* exact size: an overread is an ASan report */
        memcpy(p, in, i);
        int rc = run(p, i, NULL);
        CHECK(rc == 0 || rc == P2C2R_EINVAL);
        rc == 0 ? ok++ : einval++;
        CHECK(rc != P2C2R_EINVAL || (err[0] && !strchr(err, '\n')));
        free(p);
    }
    CHECK(ok >= 2 && einval > n / 2);
    static const char subst[] = {'x', '\n', ' ', '9', '0', '\0', 'T', '.', '\r', '-'};
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < sizeof(subst); k++) {
            char *p = malloc(n);
            memcpy(p, in, n);
            p[i] = subst[k];
            int rc = run(p, n, NULL);
            CHECK(rc == 0 || rc == P2C2R_EINVAL);
            free(p);
        }
    }
}

int main(void)
{
    test_good();
    test_bad_map();
    test_bad_queries();
    test_bad_params();
    test_blob();
    test_limits();
    test_robust();
    pft_harness_reset(&h, 0);
    return check_report("test_pathfind_input");
}
