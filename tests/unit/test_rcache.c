/* test_rcache.c - unit tests for the result cache (src/coord/rcache.c): key
 * framing, hit and miss counting, the min_version rule, TTL expiry at its
 * exact boundary, LRU eviction under a byte cap, replacement, the oversize
 * rule, growth to 100k entries, the disabled cache, the bounded expiry sweep,
 * and a randomized check of every operation against a simple model. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/util.h"
#include "coord/rcache.h"
#include "p2c2r/error.h"

#define CHARGE(len) ((size_t)(len) + RCACHE_ENTRY_OVERHEAD)

static int key_eq(const struct rcache_key *a, const struct rcache_key *b)
{
    return a->lo == b->lo && a->hi == b->hi;
}

/* The key of a task whose four fields are C strings (blobs: none). */
static struct rcache_key key_str(const char *type, const char *params, const char *input)
{
    struct rcache_key k;
    rcache_key(&k, type, strlen(type), params, strlen(params), NULL, 0, input, strlen(input));
    return k;
}

/* A key for test entry i, built through the real key function. */
static struct rcache_key key_n(uint64_t i)
{
    uint8_t in[8];
    memcpy(in, &i, sizeof(in));
    struct rcache_key k;
    rcache_key(&k, "t", 1, NULL, 0, NULL, 0, in, sizeof(in));
    return k;
}

static void check_stats(const struct rcache *rc, uint64_t hits, uint64_t misses, uint64_t entries,
                        uint64_t bytes)
{
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.hits, hits);
    CHECK_EQU(s.misses, misses);
    CHECK_EQU(s.entries, entries);
    CHECK_EQU(s.bytes, bytes);
}

static int get_hit(struct rcache *rc, const struct rcache_key *k, uint32_t min_version,
                   uint64_t now)
{
    const uint8_t *out;
    size_t len;
    uint32_t ver;
    return rcache_get(rc, k, min_version, now, &out, &len, &ver);
}

static void test_key_framing(void)
{
    struct rcache_key a = key_str("ab", "c", "x"), b = key_str("a", "bc", "x");
    CHECK(!key_eq(&a, &b));
    a = key_str("t", "ab", "c");
    b = key_str("t", "a", "bc");
    CHECK(!key_eq(&a, &b));
    a = key_str("", "x", "");
    b = key_str("x", "", "");
    struct rcache_key c = key_str("", "", "x");
    CHECK(!key_eq(&a, &b) && !key_eq(&a, &c) && !key_eq(&b, &c));

    /* Equal inputs give equal keys, whether passed as NULL or as an empty
     * buffer, and from different copies of the same bytes. */
    char t1[] = "upscale", t2[] = "upscale";
    struct rcache_key k1, k2;
    rcache_key(&k1, t1, 7, "p", 1, NULL, 0, "in", 2);
    rcache_key(&k2, t2, 7, "p", 1, (const uint8_t *)"", 0, "in", 2);
    CHECK(key_eq(&k1, &k2));
    rcache_key(&k2, t2, 7, "p", 1, NULL, 0, "in", 2);
    CHECK(key_eq(&k1, &k2));
    rcache_key(&k1, NULL, 0, NULL, 0, NULL, 0, NULL, 0);
    rcache_key(&k2, "", 0, "", 0, NULL, 0, "", 0);
    CHECK(key_eq(&k1, &k2));

    /* Blob hashes: their number and their order are part of the key, and so
     * is the boundary between the last hash and the input. */
    uint8_t h[3 * RCACHE_BLOB_HASH_LEN];
    for (size_t i = 0; i < sizeof(h); i++)
        h[i] = (uint8_t)(i * 7 + 1);
    uint8_t swapped[2 * RCACHE_BLOB_HASH_LEN];
    memcpy(swapped, h + RCACHE_BLOB_HASH_LEN, RCACHE_BLOB_HASH_LEN);
    memcpy(swapped + RCACHE_BLOB_HASH_LEN, h, RCACHE_BLOB_HASH_LEN);
    struct rcache_key one, two, two_swapped, two_again, moved;
    rcache_key(&one, "t", 1, "p", 1, h, 1, "in", 2);
    rcache_key(&two, "t", 1, "p", 1, h, 2, "in", 2);
    rcache_key(&two_swapped, "t", 1, "p", 1, swapped, 2, "in", 2);
    rcache_key(&two_again, "t", 1, "p", 1, h, 2, "in", 2);
    CHECK(!key_eq(&one, &two));
    CHECK(!key_eq(&two, &two_swapped));
    CHECK(key_eq(&two, &two_again));
    /* The second hash moved from the blob list into the input. */
    uint8_t in[RCACHE_BLOB_HASH_LEN + 2];
    memcpy(in, h + RCACHE_BLOB_HASH_LEN, RCACHE_BLOB_HASH_LEN);
    memcpy(in + RCACHE_BLOB_HASH_LEN, "in", 2);
    rcache_key(&moved, "t", 1, "p", 1, h, 1, in, sizeof(in));
    CHECK(!key_eq(&two, &moved));

    /* Any one byte changed in any field changes the key. */
    uint8_t buf[4][16];
    memset(buf, 'a', sizeof(buf));
    uint8_t hb[2 * RCACHE_BLOB_HASH_LEN] = {0};
    struct rcache_key base;
    rcache_key(&base, buf[0], 16, buf[1], 16, hb, 2, buf[3], 16);
    int all_differ = 1;
    for (int f = 0; f < 4; f++) {
        for (size_t i = 0; i < 16; i++) {
            struct rcache_key k;
            if (f == 2) {
                hb[i * 4] ^= 1;
                rcache_key(&k, buf[0], 16, buf[1], 16, hb, 2, buf[3], 16);
                hb[i * 4] ^= 1;
            } else {
                buf[f][i] ^= 1;
                rcache_key(&k, buf[0], 16, buf[1], 16, hb, 2, buf[3], 16);
                buf[f][i] ^= 1;
            }
            all_differ &= !key_eq(&k, &base);
        }
    }
    CHECK(all_differ);
}

static void test_hit_miss(void)
{
    struct rcache *rc = rcache_new(1 << 20, 0);
    struct rcache_key k = key_str("t", "p", "input"), other = key_str("t", "p", "other");
    const uint8_t *out = (const uint8_t *)"untouched";
    size_t len = 12345;
    uint32_t ver = 777;
    CHECK_EQ(rcache_get(rc, &k, 0, 0, &out, &len, &ver), 0);
    /* A miss leaves the out-parameters alone. */
    CHECK(memcmp(out, "untouched", 9) == 0);
    CHECK_EQU(len, 12345);
    CHECK_EQU(ver, 777);
    check_stats(rc, 0, 1, 0, 0);

    CHECK_EQ(rcache_put(rc, &k, 3, "result", 6, 10), 0);
    check_stats(rc, 0, 1, 1, CHARGE(6));
    CHECK_EQ(rcache_get(rc, &k, 0, 20, &out, &len, &ver), 1);
    CHECK_MEM(out, len, "result", 6);
    CHECK_EQU(ver, 3);
    CHECK_EQ(rcache_get(rc, &other, 0, 20, &out, &len, &ver), 0);
    CHECK_EQ(rcache_get(rc, &k, 0, 30, &out, &len, &ver), 1);
    check_stats(rc, 2, 2, 1, CHARGE(6));

    /* The stored copy is private: changing the caller's buffer after the
     * put does not change the entry. */
    char data[4] = "abcd";
    CHECK_EQ(rcache_put(rc, &other, 1, data, 4, 40), 0);
    data[0] = 'z';
    if (CHECK(rcache_get(rc, &other, 0, 40, &out, &len, &ver) == 1))
        CHECK_MEM(out, len, "abcd", 4);

    /* An empty output is a result like any other. */
    struct rcache_key empty = key_str("t", "", "");
    CHECK_EQ(rcache_put(rc, &empty, 1, NULL, 0, 50), 0);
    if (CHECK(rcache_get(rc, &empty, 0, 50, &out, &len, &ver) == 1))
        CHECK_EQU(len, 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.inserts, 3);
    CHECK_EQU(s.entries, 3);
    CHECK_EQU(s.bytes, CHARGE(6) + CHARGE(4) + CHARGE(0));
    CHECK_EQU(s.evictions + s.expired + s.skipped, 0);
    rcache_free(rc);
    rcache_free(NULL);
}

static void test_min_version(void)
{
    struct rcache *rc = rcache_new(1 << 20, 0);
    struct rcache_key k = key_str("t", "p", "i");
    CHECK_EQ(rcache_put(rc, &k, 5, "v5", 2, 0), 0);
    CHECK_EQ(get_hit(rc, &k, 0, 1), 1);
    CHECK_EQ(get_hit(rc, &k, 4, 1), 1);
    CHECK_EQ(get_hit(rc, &k, 5, 1), 1);
    CHECK_EQ(get_hit(rc, &k, 6, 1), 0);
    CHECK_EQ(get_hit(rc, &k, UINT32_MAX, 1), 0);
    /* A too-old entry is a miss but stays for an older caller, and a put of
     * the newer result replaces it. */
    check_stats(rc, 3, 2, 1, CHARGE(2));
    CHECK_EQ(get_hit(rc, &k, 5, 1), 1);
    CHECK_EQ(rcache_put(rc, &k, 6, "six", 3, 2), 0);
    const uint8_t *out;
    size_t len;
    uint32_t ver;
    if (CHECK(rcache_get(rc, &k, 6, 3, &out, &len, &ver) == 1)) {
        CHECK_MEM(out, len, "six", 3);
        CHECK_EQU(ver, 6);
    }
    check_stats(rc, 5, 2, 1, CHARGE(3));
    rcache_free(rc);
}

static void test_ttl(void)
{
    struct rcache *rc = rcache_new(1 << 20, 500);
    struct rcache_key k = key_str("t", "p", "i");
    CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, 1000), 0);
    /* Hits refresh the LRU position but not the age. */
    CHECK_EQ(get_hit(rc, &k, 0, 1000), 1);
    CHECK_EQ(get_hit(rc, &k, 0, 1499), 1);
    CHECK_EQ(get_hit(rc, &k, 0, 1500), 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.expired, 1);
    CHECK_EQU(s.entries, 0);
    CHECK_EQU(s.bytes, 0);
    CHECK_EQU(s.misses, 1);
    /* Removed, not merely hidden: going back in time does not revive it. */
    CHECK_EQ(get_hit(rc, &k, 0, 1200), 0);
    rcache_stats(rc, &s);
    CHECK_EQU(s.expired, 1);

    /* A clock reading before the insertion counts as age 0. */
    CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, 5000), 0);
    CHECK_EQ(get_hit(rc, &k, 0, 10), 1);
    /* A put renews the age. */
    CHECK_EQ(rcache_put(rc, &k, 1, "y", 1, 5400), 0);
    CHECK_EQ(get_hit(rc, &k, 0, 5899), 1);
    CHECK_EQ(get_hit(rc, &k, 0, 5900), 0);
    rcache_free(rc);

    /* ttl 0: entries never expire. */
    rc = rcache_new(1 << 20, 0);
    CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, 0), 0);
    CHECK_EQ(get_hit(rc, &k, 0, UINT64_MAX), 1);
    CHECK_EQU(rcache_expire(rc, UINT64_MAX, 100), 0);
    rcache_free(rc);

    /* A huge TTL does not overflow the deadline. */
    rc = rcache_new(1 << 20, UINT64_MAX - 10);
    CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, 100), 0);
    CHECK_EQ(get_hit(rc, &k, 0, UINT64_MAX - 1), 1);
    rcache_free(rc);
}

static void test_lru_eviction(void)
{
    /* Room for exactly 8 entries of 100 bytes, the largest allowed size. */
    struct rcache *rc = rcache_new(8 * CHARGE(100), 0);
    uint8_t data[100];
    for (uint64_t i = 0; i < 8; i++) {
        memset(data, (int)i, sizeof(data));
        struct rcache_key k = key_n(i);
        CHECK_EQ(rcache_put(rc, &k, 1, data, sizeof(data), i), 0);
    }
    check_stats(rc, 0, 0, 8, 8 * CHARGE(100));
    /* Touch 0 and 2: the cold end is now 1, 3, 4, ... */
    struct rcache_key k0 = key_n(0), k2 = key_n(2);
    CHECK_EQ(get_hit(rc, &k0, 0, 10), 1);
    CHECK_EQ(get_hit(rc, &k2, 0, 10), 1);
    struct rcache_key k8 = key_n(8), k9 = key_n(9);
    CHECK_EQ(rcache_put(rc, &k8, 1, data, sizeof(data), 11), 0);
    /* A smaller entry after a larger eviction still costs one eviction. */
    CHECK_EQ(rcache_put(rc, &k9, 1, data, 50, 12), 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.evictions, 2);
    CHECK_EQU(s.entries, 8);
    CHECK_EQU(s.bytes, 7 * CHARGE(100) + CHARGE(50));
    static const int present[10] = {1, 0, 1, 0, 1, 1, 1, 1, 1, 1};
    for (uint64_t i = 0; i < 10; i++) {
        struct rcache_key k = key_n(i);
        const uint8_t *out;
        size_t len;
        uint32_t ver;
        int hit = rcache_get(rc, &k, 0, 20, &out, &len, &ver);
        CHECK_EQ(hit, present[i]);
        if (hit && i < 8)
            CHECK(len == 100 && out[0] == i && out[99] == i);
    }
    /* The loop hit every present entry in key order, so 0 is now the
     * coldest and 9 the hottest. */
    uint8_t big[100] = {0};
    CHECK_EQ(rcache_put(rc, &k8, 1, big, sizeof(big), 21), 0); /* replaces, evicts nothing */
    rcache_stats(rc, &s);
    CHECK_EQU(s.evictions, 2);
    struct rcache_key k10 = key_n(10);
    CHECK_EQ(rcache_put(rc, &k10, 1, big, 51, 22), 0); /* 50 free, 51 + overhead: one eviction */
    CHECK_EQ(get_hit(rc, &k0, 0, 23), 0);
    CHECK_EQ(get_hit(rc, &k2, 0, 23), 1);
    CHECK_EQ(get_hit(rc, &k10, 0, 23), 1);
    rcache_stats(rc, &s);
    CHECK_EQU(s.evictions, 3);
    CHECK(s.bytes <= 8 * CHARGE(100));
    rcache_free(rc);
}

static void test_replace(void)
{
    struct rcache *rc = rcache_new(1 << 20, 0);
    struct rcache_key k = key_str("t", "p", "i");
    CHECK_EQ(rcache_put(rc, &k, 2, "first result", 12, 0), 0);
    CHECK_EQ(rcache_put(rc, &k, 1, "second", 6, 1), 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.entries, 1);
    CHECK_EQU(s.bytes, CHARGE(6));
    CHECK_EQU(s.inserts, 2);
    CHECK_EQU(s.evictions, 0);
    const uint8_t *out;
    size_t len;
    uint32_t ver;
    /* Replaced whatever the versions: the last put wins. */
    if (CHECK(rcache_get(rc, &k, 0, 2, &out, &len, &ver) == 1)) {
        CHECK_MEM(out, len, "second", 6);
        CHECK_EQU(ver, 1);
        /* Putting the entry's own output back under its own key is safe (the
         * copy is made before the old entry is freed), as under another key. */
        struct rcache_key other = key_str("t", "p", "j");
        CHECK_EQ(rcache_put(rc, &k, 3, out, len, 3), 0);
        if (CHECK(rcache_get(rc, &k, 0, 3, &out, &len, &ver) == 1)) {
            CHECK_EQ(rcache_put(rc, &other, 3, out, len, 3), 0);
            CHECK_EQ(get_hit(rc, &other, 3, 3), 1);
        }
    }
    if (CHECK(rcache_get(rc, &k, 0, 4, &out, &len, &ver) == 1)) {
        CHECK_MEM(out, len, "second", 6);
        CHECK_EQU(ver, 3);
    }
    rcache_stats(rc, &s);
    CHECK_EQU(s.entries, 2);
    CHECK_EQU(s.bytes, 2 * CHARGE(6));
    rcache_free(rc);

    /* In a full cache, a replacement makes its own room first. */
    rc = rcache_new(8 * CHARGE(10), 0);
    uint8_t d[10] = {0};
    for (uint64_t i = 0; i < 8; i++) {
        struct rcache_key ki = key_n(i);
        CHECK_EQ(rcache_put(rc, &ki, 1, d, sizeof(d), 0), 0);
    }
    struct rcache_key k7 = key_n(7);
    CHECK_EQ(rcache_put(rc, &k7, 2, d, sizeof(d), 1), 0);
    rcache_stats(rc, &s);
    CHECK_EQU(s.evictions, 0);
    CHECK_EQU(s.entries, 8);
    rcache_free(rc);
}

static void test_oversize(void)
{
    size_t max = 8 * CHARGE(1000);
    struct rcache *rc = rcache_new(max, 0);
    uint8_t *data = calloc(1, 2000);
    if (!CHECK(data != NULL))
        return;
    struct rcache_key k = key_str("t", "p", "i"), k2 = key_str("t", "p", "i2");
    CHECK_EQ(rcache_put(rc, &k, 1, data, 1000, 0), 0);
    CHECK_EQ(rcache_put(rc, &k2, 1, data, 1001, 0), P2C2R_ETOOBIG);
    CHECK_EQ(get_hit(rc, &k2, 0, 0), 0);
    /* A refused replacement leaves the old entry in place. */
    CHECK_EQ(rcache_put(rc, &k, 2, data, 2000, 0), P2C2R_ETOOBIG);
    const uint8_t *out;
    size_t len;
    uint32_t ver;
    if (CHECK(rcache_get(rc, &k, 0, 0, &out, &len, &ver) == 1)) {
        CHECK_EQU(len, 1000);
        CHECK_EQU(ver, 1);
    }
    CHECK_EQ(rcache_put(rc, &k2, 1, data, SIZE_MAX, 0), P2C2R_ETOOBIG); /* no overflow */
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.skipped, 3);
    CHECK_EQU(s.inserts, 1);
    CHECK_EQU(s.entries, 1);
    CHECK_EQU(s.bytes, CHARGE(1000));
    rcache_free(rc);

    /* A cap too small for even an empty entry stores nothing. */
    rc = rcache_new(8 * RCACHE_ENTRY_OVERHEAD - 1, 0);
    CHECK_EQ(rcache_put(rc, &k, 1, NULL, 0, 0), P2C2R_ETOOBIG);
    CHECK_EQ(get_hit(rc, &k, 0, 0), 0);
    rcache_free(rc);
    free(data);
}

static void test_growth(void)
{
    enum { N = 100000 };
    struct rcache *rc = rcache_new((size_t)N * CHARGE(8) * 2, 0);
    for (uint64_t i = 0; i < N; i++) {
        struct rcache_key k = key_n(i);
        uint64_t v = i * 0x9e3779b97f4a7c15ull;
        if (rcache_put(rc, &k, (uint32_t)i, &v, sizeof(v), i) != 0) {
            CHECK(!"put failed");
            break;
        }
    }
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.entries, N);
    CHECK_EQU(s.bytes, (uint64_t)N * CHARGE(8));
    CHECK_EQU(s.evictions, 0);
    unsigned long bad = 0;
    for (uint64_t i = 0; i < N; i++) {
        struct rcache_key k = key_n(i);
        const uint8_t *out;
        size_t len;
        uint32_t ver;
        uint64_t v = i * 0x9e3779b97f4a7c15ull;
        if (rcache_get(rc, &k, 0, N, &out, &len, &ver) != 1 || len != 8 ||
            memcmp(out, &v, 8) != 0 || ver != (uint32_t)i)
            bad++;
    }
    CHECK_EQU(bad, 0);
    /* Keys that were never put still miss in the grown table. */
    unsigned long false_hits = 0;
    for (uint64_t i = N; i < N + 1000; i++) {
        struct rcache_key k = key_n(i);
        false_hits += (unsigned long)get_hit(rc, &k, 0, N);
    }
    CHECK_EQU(false_hits, 0);
    rcache_stats(rc, &s);
    CHECK_EQU(s.hits, N);
    CHECK_EQU(s.misses, 1000);
    rcache_free(rc);
}

static void test_disabled(void)
{
    struct rcache *rc = rcache_new(0, 1000);
    struct rcache_key k = key_str("t", "p", "i");
    CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, 0), 0);
    CHECK_EQ(rcache_put(rc, &k, 1, NULL, 0, 0), 0);
    CHECK_EQ(get_hit(rc, &k, 0, 0), 0);
    CHECK_EQU(rcache_expire(rc, 5000, 10), 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.misses, 1);
    CHECK_EQU(s.hits + s.inserts + s.evictions + s.expired + s.skipped, 0);
    CHECK_EQU(s.entries, 0);
    CHECK_EQU(s.bytes, 0);
    rcache_free(rc);
}

static void test_expire_sweep(void)
{
    struct rcache *rc = rcache_new(1 << 20, 100);
    for (uint64_t i = 0; i < 10; i++) {
        struct rcache_key k = key_n(i);
        CHECK_EQ(rcache_put(rc, &k, 1, "x", 1, i), 0);
    }
    /* At 105 entries 0..5 have expired; the sweep takes at most max_n. */
    CHECK_EQU(rcache_expire(rc, 105, 0), 0);
    CHECK_EQU(rcache_expire(rc, 105, 4), 4);
    CHECK_EQU(rcache_expire(rc, 105, 4), 2); /* stops at the first live entry, 6 */
    CHECK_EQU(rcache_expire(rc, 105, 4), 0);
    struct rcache_stats s;
    rcache_stats(rc, &s);
    CHECK_EQU(s.expired, 6);
    CHECK_EQU(s.entries, 4);
    CHECK_EQU(s.bytes, 4 * CHARGE(1));
    struct rcache_key k5 = key_n(5), k6 = key_n(6);
    CHECK_EQ(get_hit(rc, &k5, 0, 105), 0);
    CHECK_EQ(get_hit(rc, &k6, 0, 105), 1);
    CHECK_EQU(rcache_expire(rc, 1000, 100), 4);
    rcache_stats(rc, &s);
    CHECK_EQU(s.entries, 0);
    CHECK_EQU(s.bytes, 0);
    CHECK_EQU(s.expired, 10);
    rcache_free(rc);

    /* An expired entry behind a live one (it was hit, so it is hotter)
     * waits: a lookup removes it, or a sweep once the live one expires. */
    rc = rcache_new(1 << 20, 100);
    struct rcache_key a = key_n(1), b = key_n(2), c = key_n(3);
    CHECK_EQ(rcache_put(rc, &a, 1, "a", 1, 0), 0);
    CHECK_EQ(rcache_put(rc, &b, 1, "b", 1, 10), 0);
    CHECK_EQ(rcache_put(rc, &c, 1, "c", 1, 11), 0);
    CHECK_EQ(get_hit(rc, &a, 0, 20), 1);
    CHECK_EQ(get_hit(rc, &c, 0, 21), 1);
    CHECK_EQU(rcache_expire(rc, 105, 10), 0);
    CHECK_EQU(rcache_expire(rc, 110, 10), 2); /* b, then a; c is live */
    CHECK_EQ(get_hit(rc, &c, 0, 110), 1);
    CHECK_EQ(get_hit(rc, &a, 0, 110), 0);
    rcache_stats(rc, &s);
    CHECK_EQU(s.expired, 2);
    CHECK_EQU(s.entries, 1);
    rcache_free(rc);

    /* Evicting an expired entry for room counts it as expired. */
    rc = rcache_new(8 * CHARGE(10), 100);
    uint8_t d[10] = {0};
    for (uint64_t i = 0; i < 8; i++) {
        struct rcache_key k = key_n(i);
        CHECK_EQ(rcache_put(rc, &k, 1, d, sizeof(d), i * 20), 0);
    }
    struct rcache_key k8 = key_n(8), k9 = key_n(9);
    CHECK_EQ(rcache_put(rc, &k8, 1, d, sizeof(d), 100), 0); /* 0 expired at 100 */
    CHECK_EQ(rcache_put(rc, &k9, 1, d, sizeof(d), 100), 0); /* 1 (at 20) is live */
    rcache_stats(rc, &s);
    CHECK_EQU(s.expired, 1);
    CHECK_EQU(s.evictions, 1);
    rcache_free(rc);
}

/* ---- randomized check against a model ------------------------------------- */

#define MODEL_KEYS 64

/* The model keeps at most one entry per key id in a plain array and finds
 * the LRU victim by scanning for the oldest use stamp. */
struct model_entry {
    int present;
    uint32_t version;
    size_t len;
    uint64_t gen; /* the output is fill_output(gen, len) */
    uint64_t inserted_us, used;
};

struct model {
    size_t max_bytes;
    uint64_t ttl_us;
    struct model_entry e[MODEL_KEYS];
    uint64_t tick;
    struct rcache_stats n;
};

static void fill_output(uint8_t *dst, uint64_t gen, size_t len)
{
    struct rng r = {gen};
    for (size_t i = 0; i < len; i++)
        dst[i] = (uint8_t)rng_next(&r);
}

static int model_expired(const struct model *m, const struct model_entry *e, uint64_t now)
{
    return m->ttl_us != 0 && now >= e->inserted_us && now - e->inserted_us >= m->ttl_us;
}

static void model_remove(struct model *m, int id)
{
    m->e[id].present = 0;
    m->n.entries--;
    m->n.bytes -= CHARGE(m->e[id].len);
}

static int model_coldest(const struct model *m)
{
    int best = -1;
    for (int i = 0; i < MODEL_KEYS; i++)
        if (m->e[i].present && (best < 0 || m->e[i].used < m->e[best].used))
            best = i;
    return best;
}

static int model_get(struct model *m, int id, uint32_t min_version, uint64_t now)
{
    struct model_entry *e = &m->e[id];
    if (!e->present) {
        m->n.misses++;
        return 0;
    }
    if (model_expired(m, e, now)) {
        model_remove(m, id);
        m->n.expired++;
        m->n.misses++;
        return 0;
    }
    if (e->version < min_version) {
        m->n.misses++;
        return 0;
    }
    e->used = ++m->tick;
    m->n.hits++;
    return 1;
}

static int model_put(struct model *m, int id, uint32_t version, uint64_t gen, size_t len,
                     uint64_t now)
{
    if (m->max_bytes == 0)
        return 0;
    if (CHARGE(len) > m->max_bytes / 8) {
        m->n.skipped++;
        return P2C2R_ETOOBIG;
    }
    if (m->e[id].present)
        model_remove(m, id);
    while (m->n.bytes + CHARGE(len) > m->max_bytes) {
        int v = model_coldest(m);
        if (model_expired(m, &m->e[v], now))
            m->n.expired++;
        else
            m->n.evictions++;
        model_remove(m, v);
    }
    m->e[id] = (struct model_entry){1, version, len, gen, now, ++m->tick};
    m->n.entries++;
    m->n.bytes += CHARGE(len);
    m->n.inserts++;
    return 0;
}

static size_t model_expire(struct model *m, uint64_t now, size_t max_n)
{
    size_t removed = 0;
    int v;
    while (removed < max_n && (v = model_coldest(m)) >= 0 && model_expired(m, &m->e[v], now)) {
        model_remove(m, v);
        m->n.expired++;
        removed++;
    }
    return removed;
}

static int stats_equal(const struct rcache_stats *a, const struct rcache_stats *b)
{
    return a->hits == b->hits && a->misses == b->misses && a->inserts == b->inserts &&
           a->evictions == b->evictions && a->expired == b->expired &&
           a->skipped == b->skipped && a->entries == b->entries && a->bytes == b->bytes;
}

/* Runs nops random operations on a cache and on the model side by side and
 * stops at the first divergence, naming the operation. */
static void model_run(uint64_t seed, size_t max_bytes, uint64_t ttl_us, long nops)
{
    struct rcache *rc = rcache_new(max_bytes, ttl_us);
    struct model *m = calloc(1, sizeof(*m));
    size_t cap = max_bytes / 8 + 64; /* lengths reach past the oversize limit */
    uint8_t *buf = malloc(cap), *want = malloc(cap);
    if (!CHECK(m && buf && want))
        goto out;
    m->max_bytes = max_bytes;
    m->ttl_us = ttl_us;
    struct rcache_key keys[MODEL_KEYS];
    for (int i = 0; i < MODEL_KEYS; i++)
        keys[i] = key_n((uint64_t)i);
    struct rng r = {seed};
    uint64_t now = 1000;
    long op;
    for (op = 0; op < nops; op++) {
        uint64_t x = rng_next(&r);
        int id = (int)(x % MODEL_KEYS);
        unsigned kind = (unsigned)(x >> 8) % 100;
        uint32_t ver = (uint32_t)((x >> 16) % 4);
        int ok = 1;
        if (kind < 45) {
            const uint8_t *out = NULL;
            size_t len = 0;
            uint32_t got_ver = 0;
            int hit = rcache_get(rc, &keys[id], ver, now, &out, &len, &got_ver);
            int want_hit = model_get(m, id, ver, now);
            ok = hit == want_hit;
            if (ok && hit) {
                const struct model_entry *e = &m->e[id];
                fill_output(want, e->gen, e->len);
                ok = got_ver == e->version && len == e->len && (len == 0 || memcmp(out, want, len) == 0);
            }
        } else if (kind < 85) {
            size_t len = (size_t)(rng_next(&r) % cap);
            if (kind < 50)
                len = 0;
            uint64_t gen = rng_next(&r);
            fill_output(buf, gen, len);
            int rv = rcache_put(rc, &keys[id], ver, buf, len, now);
            ok = rv == model_put(m, id, ver, gen, len, now);
        } else if (kind < 90) {
            size_t max_n = (size_t)((x >> 24) % 8);
            ok = rcache_expire(rc, now, max_n) == model_expire(m, now, max_n);
        } else {
            /* Time moves in steps of up to a fifth of the TTL, sometimes not
             * at all, so entries hit the exact expiry instant now and then. */
            now += ttl_us ? (x >> 24) % (ttl_us / 5 + 1) : (x >> 24) % 100;
        }
        struct rcache_stats s;
        rcache_stats(rc, &s);
        if (!ok || !stats_equal(&s, &m->n) || s.bytes > max_bytes) {
            fprintf(stderr, "model diverged: seed=%ju op=%ld kind=%u key=%d\n", (uintmax_t)seed,
                    op, kind, id);
            break;
        }
    }
    CHECK_EQ(op, nops);
    /* The run must have exercised what it is meant to check. */
    if (max_bytes) {
        CHECK(m->n.hits > 0 && m->n.evictions > 0 && m->n.skipped > 0);
        if (ttl_us)
            CHECK(m->n.expired > 0);
    }
out:
    rcache_free(rc);
    free(m);
    free(buf);
    free(want);
}

static void test_model(void)
{
    model_run(1, 8 * CHARGE(300), 2000, 100000);
    model_run(2, 8 * CHARGE(300), 0, 100000);
    model_run(3, 64 * CHARGE(40), 500, 100000);
    model_run(4, 0, 100, 10000);
}

int main(void)
{
    test_key_framing();
    test_hit_miss();
    test_min_version();
    test_ttl();
    test_lru_eviction();
    test_replace();
    test_oversize();
    test_growth();
    test_disabled();
    test_expire_sweep();
    test_model();
    return check_report("test_rcache");
}
