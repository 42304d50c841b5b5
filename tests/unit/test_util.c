/* test_util.c - unit tests for src/common/util.c (addresses, integers, hex,
 * comma lists, clock, PRNG, allocation helpers) and src/common/errors.c (the
 * error code table behind p2c2r_strerror and p2c2r_errname).
 *
 * Address tests resolve only numeric hosts and "localhost", so they need no
 * network. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/util.h"
#include "p2c2r/error.h"

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
    return 0;
}

static int is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohl(((const struct sockaddr_in *)(const void *)ss)->sin_addr.s_addr) == 0x7f000001u;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)(const void *)ss)->sin6_addr);
    return 0;
}

static void check_addr_ok(const char *s, int family, uint16_t port, const char *formatted)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!CHECK(addr_parse(s, &ss, &len) == 0)) {
        fprintf(stderr, "  addr_parse(\"%s\") failed\n", s);
        return;
    }
    if (family)
        CHECK_EQ(ss.ss_family, family);
    CHECK(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
    CHECK_EQU(len, ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                          : sizeof(struct sockaddr_in6));
    CHECK_EQU(port_of(&ss), port);
    if (formatted) {
        char buf[64];
        addr_format((const struct sockaddr *)&ss, buf, sizeof(buf));
        CHECK(strcmp(buf, formatted) == 0);
    }
}

static void check_addr_bad(const char *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0xab, sizeof(ss));
    socklen_t len = 4242;
    int rc = addr_parse(s, &ss, &len);
    CHECK_EQ(rc, P2C2R_EADDR);
    if (rc != P2C2R_EADDR)
        fprintf(stderr, "  addr_parse(\"%s\") accepted\n", s ? s : "(null)");
    CHECK_EQU(len, 4242); /* out-parameters written only on success */
}

static void test_addr(void)
{
    check_addr_ok("127.0.0.1:0", AF_INET, 0, "127.0.0.1:0");
    check_addr_ok("127.0.0.1:65535", AF_INET, 65535, "127.0.0.1:65535");
    check_addr_ok("0.0.0.0:7000", AF_INET, 7000, "0.0.0.0:7000");
    check_addr_ok("[::1]:80", AF_INET6, 80, "[::1]:80");
    check_addr_ok("[::]:0", AF_INET6, 0, "[::]:0");
    check_addr_ok("[fe80::1:2]:443", AF_INET6, 443, "[fe80::1:2]:443");
    check_addr_ok("localhost:1", 0, 1, NULL);
    struct sockaddr_storage ss;
    socklen_t len;
    if (addr_parse("localhost:1", &ss, &len) == 0)
        CHECK(is_loopback(&ss));

    check_addr_bad(NULL);
    check_addr_bad("");
    check_addr_bad(":80");
    check_addr_bad("host");
    check_addr_bad("1.2.3.4:70000");
    check_addr_bad("1.2.3.4:65536");
    check_addr_bad("1.2.3.4:-1");
    check_addr_bad("1.2.3.4:");
    check_addr_bad("1.2.3.4:80x");
    check_addr_bad("1.2.3.4:0x50");
    check_addr_bad("1.2.3.4:99999999999999999999999");
    check_addr_bad("[::1]80");
    check_addr_bad("[::1]");
    check_addr_bad("[::1");
    check_addr_bad("[]:80");
    check_addr_bad("[::1]:");
    check_addr_bad("::1]:80x");
    /* A host name longer than any valid one is refused before resolving. */
    char longname[400];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname + 300, ":80", 4);
    check_addr_bad(longname);
}

static void test_addr_format(void)
{
    struct sockaddr_in a4;
    memset(&a4, 0, sizeof(a4));
    a4.sin_family = AF_INET;
    a4.sin_port = htons(8080);
    a4.sin_addr.s_addr = htonl(0x0a000001u);
    char buf[64];
    addr_format((const struct sockaddr *)&a4, buf, sizeof(buf));
    CHECK(strcmp(buf, "10.0.0.1:8080") == 0);
    /* Truncation to the capacity, NUL-terminated. */
    char small[6];
    addr_format((const struct sockaddr *)&a4, small, sizeof(small));
    CHECK(strcmp(small, "10.0.") == 0);

    struct sockaddr_in6 a6;
    memset(&a6, 0, sizeof(a6));
    a6.sin6_family = AF_INET6;
    a6.sin6_port = htons(1);
    a6.sin6_addr.s6_addr[15] = 1;
    addr_format((const struct sockaddr *)&a6, buf, sizeof(buf));
    CHECK(strcmp(buf, "[::1]:1") == 0);

    struct sockaddr other;
    memset(&other, 0, sizeof(other));
    other.sa_family = AF_UNIX;
    addr_format(&other, buf, sizeof(buf));
    CHECK(strcmp(buf, "?") == 0);
}

static void check_i64(const char *s, int64_t min, int64_t max, int ok, int64_t want)
{
    int64_t v = -4242;
    int rc = parse_i64(s, min, max, &v);
    CHECK_EQ(rc, ok ? 0 : -1);
    if (rc != (ok ? 0 : -1))
        fprintf(stderr, "  parse_i64(\"%s\", %lld, %lld)\n", s ? s : "(null)", (long long)min,
                (long long)max);
    CHECK_EQ(v, ok ? want : -4242);
}

static void test_parse_i64(void)
{
    check_i64("0", 0, 10, 1, 0);
    check_i64("10", 0, 10, 1, 10);
    check_i64("11", 0, 10, 0, 0);
    check_i64("-1", 0, 10, 0, 0);
    check_i64("-5", -5, 5, 1, -5);
    check_i64("-6", -5, 5, 0, 0);
    check_i64("007", 0, 10, 1, 7); /* decimal, not octal */
    check_i64("9223372036854775807", INT64_MIN, INT64_MAX, 1, INT64_MAX);
    check_i64("-9223372036854775808", INT64_MIN, INT64_MAX, 1, INT64_MIN);
    check_i64("9223372036854775808", INT64_MIN, INT64_MAX, 0, 0);
    check_i64("-9223372036854775809", INT64_MIN, INT64_MAX, 0, 0);
    check_i64("99999999999999999999", 0, INT64_MAX, 0, 0);
    check_i64("65535", 0, 65535, 1, 65535);
    check_i64("65536", 0, 65535, 0, 0);
    check_i64(NULL, 0, 10, 0, 0);
    check_i64("", 0, 10, 0, 0);
    check_i64("-", 0, 10, 0, 0);
    check_i64("+", 0, 10, 0, 0);
    check_i64("12a", 0, 100, 0, 0);
    check_i64("1 ", 0, 100, 0, 0);
    check_i64("0x10", 0, 100, 0, 0);
    check_i64("1e3", 0, 10000, 0, 0);
    check_i64("1.0", 0, 10, 0, 0);
    check_i64("5", 6, 10, 0, 0);
}

static void test_errors(void)
{
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        {P2C2R_OK, "OK"},
        {P2C2R_EINVAL, "EINVAL"},
        {P2C2R_ENOMEM, "ENOMEM"},
        {P2C2R_EIO, "EIO"},
        {P2C2R_ECLOSED, "ECLOSED"},
        {P2C2R_ETIMEDOUT, "ETIMEDOUT"},
        {P2C2R_EAGAIN, "EAGAIN"},
        {P2C2R_EPROTO, "EPROTO"},
        {P2C2R_ETOOBIG, "ETOOBIG"},
        {P2C2R_EAUTH, "EAUTH"},
        {P2C2R_EUNSUPPORTED, "EUNSUPPORTED"},
        {P2C2R_EQUEUEFULL, "EQUEUEFULL"},
        {P2C2R_ECANCELLED, "ECANCELLED"},
        {P2C2R_ETASK, "ETASK"},
        {P2C2R_ENOTFOUND, "ENOTFOUND"},
        {P2C2R_EVERSION, "EVERSION"},
        {P2C2R_ELOST, "ELOST"},
        {P2C2R_ESHUTDOWN, "ESHUTDOWN"},
        {P2C2R_ELIMIT, "ELIMIT"},
        {P2C2R_EADDR, "EADDR"},
        {P2C2R_ESTATE, "ESTATE"},
        {P2C2R_ENOBLOB, "ENOBLOB"},
        {P2C2R_EDEADLINE, "EDEADLINE"},
        {P2C2R_ETLS, "ETLS"},
    };
    /* The table covers every code down to P2C2R_ERROR_MIN, in order. */
    CHECK_EQU(ARRAY_LEN(codes), (size_t)(1 - P2C2R_ERROR_MIN));
    for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
        CHECK_EQ(codes[i].code, -(int)i);
        CHECK(strcmp(p2c2r_errname(codes[i].code), codes[i].name) == 0);
    }

    for (int c = 0; c >= P2C2R_ERROR_MIN; c--) {
        const char *name = p2c2r_errname(c), *text = p2c2r_strerror(c);
        if (!CHECK(name != NULL) || !CHECK(text != NULL))
            continue;
        CHECK(name[0] != '\0' && text[0] != '\0');
        CHECK(strcmp(name, "EUNKNOWN") != 0);
        CHECK(strcmp(text, "unknown error") != 0);
        for (int d = 0; d > c; d--) {
            CHECK(strcmp(name, p2c2r_errname(d)) != 0);
            CHECK(strcmp(text, p2c2r_strerror(d)) != 0);
        }
        /* Codes travel on the wire as their absolute value. */
        CHECK(strcmp(p2c2r_errname(-c), name) == 0);
        CHECK(strcmp(p2c2r_strerror(-c), text) == 0);
    }

    static const int unknown[] = {P2C2R_ERROR_MIN - 1, -1000, INT_MIN, INT_MIN + 1, INT_MAX,
                                  1 - P2C2R_ERROR_MIN};
    for (size_t i = 0; i < ARRAY_LEN(unknown); i++) {
        const char *name = p2c2r_errname(unknown[i]), *text = p2c2r_strerror(unknown[i]);
        CHECK(name != NULL && strcmp(name, "EUNKNOWN") == 0);
        CHECK(text != NULL && strcmp(text, "unknown error") == 0);
    }
}

static void test_clock_rng_alloc(void)
{
    uint64_t a = now_ns(), b = now_ns();
    CHECK(b >= a);
    uint64_t u1 = now_us(), u2 = now_us();
    CHECK(u2 >= u1);
    CHECK(a > 0);

    struct rng r1 = {42}, r2 = {42}, r3 = {43};
    int same = 1, differ = 0;
    for (int i = 0; i < 100; i++) {
        uint64_t x = rng_next(&r1), y = rng_next(&r2), z = rng_next(&r3);
        same &= x == y;
        differ |= x != z;
    }
    CHECK(same);
    CHECK(differ);
    struct rng r0 = {0};
    CHECK(rng_next(&r0) != rng_next(&r0));

    void *p = xmalloc(0);
    CHECK(p != NULL);
    free(p);
    unsigned char *z = xcalloc(16, 4);
    int zero = 1;
    for (int i = 0; i < 64; i++)
        zero &= z[i] == 0;
    CHECK(zero);
    z = xrealloc(z, 1000);
    z[999] = 1;
    CHECK(z[0] == 0 && z[63] == 0); /* contents kept */
    free(z);
    char *s = xstrdup("p2c2r");
    CHECK(strcmp(s, "p2c2r") == 0);
    free(s);
    s = xstrdup("");
    CHECK(s[0] == '\0');
    free(s);
}

static void test_hex(void)
{
    char out[2 * 32 + 1];
    memset(out, 'x', sizeof(out));
    hex_encode(NULL, 0, out);
    CHECK(out[0] == '\0' && out[1] == 'x'); /* just the NUL */
    static const uint8_t b[] = {0x00, 0x01, 0x7f, 0x80, 0xab, 0xcd, 0xef, 0xff};
    memset(out, 'x', sizeof(out));
    hex_encode(b, sizeof(b), out);
    CHECK(strcmp(out, "00017f80abcdefff") == 0);
    CHECK(out[17] == 'x'); /* nothing past 2n + 1 */
    uint8_t all[32];
    for (int i = 0; i < 32; i++)
        all[i] = (uint8_t)(i * 37 + 5);
    hex_encode(all, sizeof(all), out);
    CHECK_EQU(strlen(out), 64u);
    for (int i = 0; i < 64; i++)
        CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'));
    /* The same digits the SHA-256 of "abc" prints with: a known vector. */
    static const uint8_t abc[] = {0xba, 0x78, 0x16, 0xbf};
    hex_encode(abc, sizeof(abc), out);
    CHECK(strcmp(out, "ba7816bf") == 0);
}

/* Splits s with util_list_next into "item|item|..." (each item between
 * brackets, so empty ones show) and returns the number of items. */
static int split(const char *s, char *dst, size_t cap)
{
    const char *it, *p = s;
    size_t n, o = 0;
    int count = 0;
    dst[0] = '\0';
    while (util_list_next(&p, &it, &n)) {
        CHECK(it >= s && it + n <= s + strlen(s));
        CHECK(memchr(it, ',', n) == NULL);
        o += (size_t)snprintf(dst + o, cap - o, "[%.*s]", (int)n, it);
        count++;
        if (count > 16)
            break;
    }
    CHECK(*p == '\0'); /* the iterator ends at the end of the string */
    CHECK(util_list_next(&p, &it, &n) == 0); /* and stays there */
    return count;
}

static void test_list_next(void)
{
    char out[256];
    CHECK_EQ(split("", out, sizeof(out)), 0);
    CHECK(strcmp(out, "") == 0);
    CHECK_EQ(split("echo", out, sizeof(out)), 1);
    CHECK(strcmp(out, "[echo]") == 0);
    CHECK_EQ(split("echo,sha256,upscale", out, sizeof(out)), 3);
    CHECK(strcmp(out, "[echo][sha256][upscale]") == 0);
    /* Empty items are passed on for the caller to refuse... */
    CHECK_EQ(split("a,,b", out, sizeof(out)), 3);
    CHECK(strcmp(out, "[a][][b]") == 0);
    CHECK_EQ(split(",a", out, sizeof(out)), 2);
    CHECK(strcmp(out, "[][a]") == 0);
    CHECK_EQ(split(",", out, sizeof(out)), 1);
    CHECK(strcmp(out, "[]") == 0);
    CHECK_EQ(split(",,", out, sizeof(out)), 2);
    CHECK(strcmp(out, "[][]") == 0);
    /* ...except after a trailing comma, which ends the list. */
    CHECK_EQ(split("a,", out, sizeof(out)), 1);
    CHECK(strcmp(out, "[a]") == 0);
    CHECK_EQ(split("a,b,", out, sizeof(out)), 2);
    CHECK(strcmp(out, "[a][b]") == 0);
    /* Spaces are not trimmed: they belong to the items. */
    CHECK_EQ(split(" a , b", out, sizeof(out)), 2);
    CHECK(strcmp(out, "[ a ][ b]") == 0);
    CHECK_EQ(split(" ", out, sizeof(out)), 1);
    CHECK(strcmp(out, "[ ]") == 0);
    /* Other separators are part of the items too. */
    CHECK_EQ(split("upscale=16,pathfind=100", out, sizeof(out)), 2);
    CHECK(strcmp(out, "[upscale=16][pathfind=100]") == 0);
    CHECK_EQ(split("*", out, sizeof(out)), 1);
    CHECK(strcmp(out, "[*]") == 0);
}

int main(void)
{
    test_addr();
    test_addr_format();
    test_parse_i64();
    test_errors();
    test_clock_rng_alloc();
    test_hex();
    test_list_next();
    return check_report("test_util");
}
