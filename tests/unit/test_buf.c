/* test_buf.c - unit tests for the capped byte buffer (src/common/buf.c):
 * reserve/commit, append, consume, the slide-down compaction, growth, the
 * hard cap (NULL from reserve, P2C2R_ETOOBIG from append, nothing changed)
 * and shrink. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "common/buf.h"
#include "p2c2r/error.h"

static uint8_t pattern[1u << 16];

static void fill_pattern(void)
{
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (uint8_t)(i * 131 + (i >> 9));
}

static void test_init_fini(void)
{
    struct buf b;
    memset(&b, 0xee, sizeof(b));
    buf_init(&b, 1000);
    CHECK(b.data == NULL);
    CHECK_EQU(b.off, 0);
    CHECK_EQU(b.len, 0);
    CHECK_EQU(b.cap, 0);
    CHECK_EQU(b.max, 1000);
    CHECK_EQU(buf_used(&b), 0);
    buf_fini(&b);
    buf_fini(&b); /* idempotent */
    CHECK(b.data == NULL);

    CHECK_EQ(buf_append(&b, "abc", 3), 0);
    buf_fini(&b);
    CHECK(b.data == NULL);
    CHECK_EQU(buf_used(&b), 0);
    CHECK_EQU(b.cap, 0);
    /* A finalised buffer keeps its limit and can be used again. */
    CHECK_EQ(buf_append(&b, "abc", 3), 0);
    CHECK_EQU(buf_used(&b), 3);
    buf_fini(&b);
}

static void test_reserve_commit_consume(void)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    uint8_t *p = buf_reserve(&b, 10);
    if (!CHECK(p != NULL))
        return;
    CHECK_EQU(buf_used(&b), 0); /* reserving is not committing */
    CHECK(b.cap >= 10);
    memcpy(p, "0123456789", 10);
    buf_commit(&b, 10);
    CHECK_EQU(buf_used(&b), 10);
    CHECK(memcmp(buf_head(&b), "0123456789", 10) == 0);

    /* Commit less than was reserved. */
    p = buf_reserve(&b, 100);
    CHECK(p == b.data + b.len);
    memcpy(p, "ab", 2);
    buf_commit(&b, 2);
    CHECK_EQU(buf_used(&b), 12);

    buf_consume(&b, 4);
    CHECK_EQU(buf_used(&b), 8);
    CHECK(memcmp(buf_head(&b), "456789ab", 8) == 0);
    buf_consume(&b, 0);
    CHECK_EQU(buf_used(&b), 8);
    buf_consume(&b, 8);
    CHECK_EQU(buf_used(&b), 0);
    CHECK_EQU(b.off, 0);
    CHECK_EQU(b.len, 0);
    CHECK(b.data != NULL); /* kept for reuse */

    /* Consuming past the end empties the buffer rather than underflowing. */
    CHECK_EQ(buf_append(&b, "xyz", 3), 0);
    buf_consume(&b, 5);
    CHECK_EQU(buf_used(&b), 0);
    CHECK_EQU(b.off, 0);
    CHECK_EQU(b.len, 0);

    /* Zero-length appends to a buffer with storage are no-ops. */
    CHECK_EQ(buf_append(&b, "", 0), 0);
    CHECK_EQU(buf_used(&b), 0);
    CHECK_EQ(buf_append(&b, "q", 1), 0);
    CHECK_EQ(buf_append(&b, "", 0), 0);
    CHECK_EQU(buf_used(&b), 1);
    buf_fini(&b);
}

static void test_growth(void)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    CHECK_EQ(buf_append(&b, pattern, 5000), 0);
    CHECK(b.cap >= 5000);
    size_t cap1 = b.cap;
    CHECK_EQ(buf_append(&b, pattern + 5000, 10000), 0);
    CHECK(b.cap >= 15000);
    CHECK(b.cap > cap1);
    CHECK_EQU(buf_used(&b), 15000);
    CHECK(memcmp(buf_head(&b), pattern, 15000) == 0);

    /* Growth after a partial consume keeps exactly the unconsumed bytes. */
    buf_consume(&b, 1234);
    CHECK_EQ(buf_append(&b, pattern + 15000, 40000), 0);
    CHECK_EQU(buf_used(&b), 15000 - 1234 + 40000);
    CHECK(memcmp(buf_head(&b), pattern + 1234, buf_used(&b)) == 0);
    buf_fini(&b);
}

static void test_compaction(void)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    CHECK_EQ(buf_append(&b, pattern, 4096), 0);
    size_t cap = b.cap;
    uint8_t *data = b.data;
    /* Fill to the brim, then drop most of it: the next reserve that fits
     * after sliding the remainder down must not reallocate. */
    size_t room = cap - b.len;
    if (room)
        CHECK_EQ(buf_append(&b, pattern + 4096, room), 0);
    CHECK_EQU(b.len, cap);
    buf_consume(&b, cap - 1000);
    uint8_t *p = buf_reserve(&b, 2000);
    if (CHECK(p != NULL)) {
        CHECK_EQU(b.off, 0);
        CHECK_EQU(b.cap, cap);
        CHECK(b.data == data);
        CHECK(p == b.data + 1000);
        CHECK_EQU(buf_used(&b), 1000);
        CHECK(memcmp(buf_head(&b), pattern + cap - 1000, 1000) == 0);
    }

    /* When sliding alone cannot make the room, the buffer grows, and still
     * keeps exactly the unconsumed bytes. */
    buf_fini(&b);
    buf_init(&b, 1u << 20);
    CHECK_EQ(buf_append(&b, pattern, 4096), 0);
    cap = b.cap;
    room = cap - b.len;
    if (room)
        CHECK_EQ(buf_append(&b, pattern + 4096, room), 0);
    buf_consume(&b, 1000);
    p = buf_reserve(&b, 2000);
    if (CHECK(p != NULL)) {
        CHECK_EQU(b.off, 0);
        CHECK(b.cap >= cap - 1000 + 2000);
        CHECK(b.cap > cap);
        CHECK(p == b.data + b.len);
        CHECK_EQU(buf_used(&b), cap - 1000);
        CHECK(memcmp(buf_head(&b), pattern + 1000, cap - 1000) == 0);
    }
    buf_fini(&b);
}

static void test_cap(void)
{
    struct buf b;
    buf_init(&b, 100);
    CHECK(buf_reserve(&b, 101) == NULL);
    CHECK(b.data == NULL); /* a refused reserve allocates nothing */
    uint8_t *p = buf_reserve(&b, 100);
    CHECK(p != NULL);
    CHECK(b.cap <= 100); /* growth is clamped to the cap */
    CHECK(buf_reserve(&b, SIZE_MAX) == NULL);
    CHECK(buf_reserve(&b, SIZE_MAX - 10) == NULL);

    CHECK_EQ(buf_append(&b, pattern, 60), 0);
    CHECK_EQ(buf_append(&b, pattern + 60, 41), P2C2R_ETOOBIG);
    CHECK_EQU(buf_used(&b), 60); /* nothing changed */
    CHECK(memcmp(buf_head(&b), pattern, 60) == 0);
    CHECK(buf_reserve(&b, 41) == NULL);
    CHECK_EQ(buf_append(&b, pattern + 60, 40), 0);
    CHECK_EQU(buf_used(&b), 100);
    CHECK_EQ(buf_append(&b, pattern, 1), P2C2R_ETOOBIG);
    CHECK_EQ(buf_append(&b, pattern, SIZE_MAX), P2C2R_ETOOBIG);
    CHECK(memcmp(buf_head(&b), pattern, 100) == 0);

    /* Consumed space is reusable up to the cap. */
    buf_consume(&b, 50);
    CHECK_EQ(buf_append(&b, pattern + 100, 50), 0);
    CHECK_EQU(buf_used(&b), 100);
    CHECK(memcmp(buf_head(&b), pattern + 50, 100) == 0);
    CHECK(b.cap <= 100);
    CHECK_EQ(buf_append(&b, pattern, 1), P2C2R_ETOOBIG);
    buf_fini(&b);

    /* A cap that is not a power of two is reached exactly while growing. */
    buf_init(&b, 10000);
    CHECK_EQ(buf_append(&b, pattern, 5000), 0);
    CHECK_EQ(buf_append(&b, pattern + 5000, 5000), 0);
    CHECK_EQU(buf_used(&b), 10000);
    CHECK_EQU(b.cap, 10000);
    CHECK_EQ(buf_append(&b, pattern, 1), P2C2R_ETOOBIG);
    CHECK(memcmp(buf_head(&b), pattern, 10000) == 0);
    buf_fini(&b);

    /* A zero cap refuses everything but allocates nothing. */
    buf_init(&b, 0);
    CHECK(buf_reserve(&b, 1) == NULL);
    CHECK_EQ(buf_append(&b, "x", 1), P2C2R_ETOOBIG);
    CHECK(b.data == NULL);
    buf_fini(&b);
}

static void test_shrink(void)
{
    struct buf b;
    buf_init(&b, 1u << 20);
    buf_shrink(&b, 0); /* nothing to free */
    CHECK(b.data == NULL);

    CHECK_EQ(buf_append(&b, pattern, 20000), 0);
    size_t cap = b.cap;
    buf_shrink(&b, 0); /* not empty: kept */
    CHECK(b.data != NULL);
    CHECK_EQU(buf_used(&b), 20000);
    CHECK(memcmp(buf_head(&b), pattern, 20000) == 0);

    buf_consume(&b, 20000);
    buf_shrink(&b, cap); /* within what may be kept */
    CHECK(b.data != NULL);
    CHECK_EQU(b.cap, cap);
    buf_shrink(&b, cap - 1);
    CHECK(b.data == NULL);
    CHECK_EQU(b.cap, 0);
    CHECK_EQU(buf_used(&b), 0);
    CHECK_EQU(b.max, 1u << 20);

    /* Usable again after shrinking. */
    CHECK_EQ(buf_append(&b, pattern, 10), 0);
    CHECK(memcmp(buf_head(&b), pattern, 10) == 0);
    buf_consume(&b, 3);
    buf_shrink(&b, 0); /* partially consumed is not empty */
    CHECK_EQU(buf_used(&b), 7);
    buf_fini(&b);
}

/* Zero-length operations on a buffer with no storage yet must succeed
 * (and must not compute NULL + 0). */
static void test_zero_length_on_empty(void)
{
    struct buf b;
    buf_init(&b, 100);
    CHECK(buf_append(&b, "", 0) == 0);
    CHECK(buf_reserve(&b, 0) != NULL);
    buf_fini(&b);
}

int main(void)
{
    fill_pattern();
    test_init_fini();
    test_reserve_commit_consume();
    test_growth();
    test_compaction();
    test_cap();
    test_shrink();
    test_zero_length_on_empty();
    return check_report("test_buf");
}
