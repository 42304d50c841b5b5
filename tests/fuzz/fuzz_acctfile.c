/* fuzz_acctfile.c - libFuzzer target: the input is a credentials file
 * (src/coord/acctfile.c), parsed as an accounts file and as a tokens file.
 *
 * Each parse runs on a heap copy of exactly the bytes given (no NUL after
 * them), so AddressSanitizer sees any read past the end.  Every result is
 * checked against the parser's contract: success leaves at least one
 * account, each with one role, a tier that exists and a valid name, no two
 * sharing a name or a hash, and every tier a positive weight and a
 * deadline range in order; failure is P2C2R_EINVAL with a reason that
 * starts with the path. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/acctfile.h"
#include "p2c2r/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK_FUZZ(cond)                                                                \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                    \
        }                                                                               \
    } while (0)

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > ACCT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]))
            return 0;
    return 1;
}

static void check(const char *text, size_t n, int tokens)
{
    struct acct_file f;
    if (acct_file_init(&f) != 0)
        abort();
    char err[512];
    err[0] = '\0';
    int rc = tokens ? acct_file_parse_tokens(&f, text, n, "F", err, sizeof(err))
                    : acct_file_parse(&f, text, n, "F", err, sizeof(err));
    if (rc != 0) {
        CHECK_FUZZ(rc == P2C2R_EINVAL);
        CHECK_FUZZ(strncmp(err, "F", 1) == 0 || strncmp(err, "tokens file F", 13) == 0);
        acct_file_fini(&f);
        return;
    }
    CHECK_FUZZ(f.naccts >= 1 && f.naccts <= ACCT_MAX_ACCOUNTS && f.ntiers <= ACCT_MAX_TIERS);
    for (uint32_t i = 0; i < f.ntiers; i++) {
        const struct tier *t = &f.tiers[i];
        CHECK_FUZZ(name_ok(t->name) && t->weight > 0 && t->weight <= 1000 && t->max_priority < 3);
        CHECK_FUZZ(!t->max_deadline_ms || t->min_deadline_ms <= t->max_deadline_ms);
        CHECK_FUZZ(!t->rate || t->burst >= 1);
        CHECK_FUZZ(t->verify != 0 && (t->verify & ~ACCT_VERIFY_ALL) == 0);
    }
    for (uint32_t i = 0; i < f.naccts; i++) {
        const struct acct_def *a = &f.accts[i];
        CHECK_FUZZ(name_ok(a->name) && a->tier < f.ntiers);
        CHECK_FUZZ(a->role == ACCT_RENTER || a->role == ACCT_PEER || a->role == ACCT_OPERATOR);
        for (uint32_t j = 0; j < i; j++) {
            CHECK_FUZZ(strcmp(a->name, f.accts[j].name) != 0);
            CHECK_FUZZ(memcmp(a->hash, f.accts[j].hash, ACCT_HASH_LEN) != 0);
        }
    }
    acct_file_fini(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = malloc(size ? size : 1);
    if (!copy)
        abort();
    memcpy(copy, data, size);
    check(copy, size, 0);
    check(copy, size, 1);
    free(copy);
    return 0;
}
