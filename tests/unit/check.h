/* check.h - the unit tests' assertion helper.
 *
 * CHECK records a failure (file:line and the expression) and carries on, so
 * one run shows every broken expectation rather than the first.  Every test
 * program ends with `return check_report("test_x");`, which prints one
 * summary line and turns any failure into a nonzero exit status for ctest.
 *
 * XFAIL marks a known bug in src/ that the tests must not hide but may not
 * fix: it prints the expectation that is violated today and does not count
 * as a failure.  When the bug is fixed it prints XPASS, the cue to turn it
 * into a CHECK. */
#ifndef P2C2R_TEST_CHECK_H
#define P2C2R_TEST_CHECK_H

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static unsigned long check_count;
static unsigned long check_failed;
static unsigned long check_xfailed;

/* Returns whether cond held, so a test can skip what depends on it:
 * `if (CHECK(p != NULL)) use(p);`. */
static inline int check_true(int cond, const char *file, int line, const char *expr)
{
    check_count++;
    if (cond)
        return 1;
    check_failed++;
    fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    return 0;
}

#define CHECK(cond) check_true((cond) ? 1 : 0, __FILE__, __LINE__, #cond)

/* Integer equality that prints both values when it fails. */
#define CHECK_EQ(a, b)                                                                  \
    do {                                                                                \
        intmax_t check_a_ = (intmax_t)(a), check_b_ = (intmax_t)(b);                    \
        check_count++;                                                                  \
        if (check_a_ != check_b_) {                                                     \
            check_failed++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%jd != %jd)\n", __FILE__,   \
                    __LINE__, #a, #b, check_a_, check_b_);                              \
        }                                                                               \
    } while (0)

#define CHECK_EQU(a, b)                                                                 \
    do {                                                                                \
        uintmax_t check_a_ = (uintmax_t)(a), check_b_ = (uintmax_t)(b);                 \
        check_count++;                                                                  \
        if (check_a_ != check_b_) {                                                     \
            check_failed++;                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%ju != %ju)\n", __FILE__,   \
                    __LINE__, #a, #b, check_a_, check_b_);                              \
        }                                                                               \
    } while (0)

/* A view (pointer, length) equals the n bytes at q. */
#define CHECK_MEM(p, plen, q, qlen)                                                     \
    CHECK((size_t)(plen) == (size_t)(qlen) &&                                           \
          ((size_t)(qlen) == 0 || memcmp((p), (q), (size_t)(qlen)) == 0))

#define XFAIL(cond, why)                                                                \
    do {                                                                                \
        if (cond) {                                                                     \
            fprintf(stderr, "%s:%d: XPASS (known bug fixed? make it a CHECK): %s\n",    \
                    __FILE__, __LINE__, #cond);                                         \
        } else {                                                                        \
            check_xfailed++;                                                            \
            fprintf(stderr, "%s:%d: XFAIL known bug: %s: %s\n", __FILE__, __LINE__,     \
                    #cond, why);                                                        \
        }                                                                               \
    } while (0)

static inline int check_report(const char *name)
{
    if (check_failed) {
        printf("%s: %lu of %lu checks FAILED\n", name, check_failed, check_count);
        return 1;
    }
    if (check_xfailed)
        printf("%s: %lu checks passed, %lu known bugs (XFAIL)\n", name, check_count,
               check_xfailed);
    else
        printf("%s: %lu checks passed\n", name, check_count);
    return 0;
}

#endif
