/* test_acctfile.c - the credentials file parser (src/coord/acctfile.c): the
 * shipped example, every error with its line, lines of any length, the
 * older tokens format, and every prefix of a good file. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "coord/acctfile.h"
#include "p2c2r/error.h"

#ifndef EXAMPLE_ACCOUNTS
#error "EXAMPLE_ACCOUNTS must name examples/accounts.conf"
#endif

#define H1 "token_hash = blake2b:0000000000000000000000000000000000000000000000000000000000000001\n"
#define H2 "token_hash = blake2b:0000000000000000000000000000000000000000000000000000000000000002\n"

static int parse(const char *text, struct acct_file *f, char *err, size_t cap)
{
    CHECK(acct_file_init(f) == 0);
    err[0] = '\0';
    return acct_file_parse(f, text, strlen(text), "f.conf", err, cap);
}

static void test_example(void)
{
    struct acct_file f;
    char err[512];
    CHECK(acct_file_init(&f) == 0);
    int rc = acct_file_load(&f, EXAMPLE_ACCOUNTS, 0, err, sizeof(err));
    if (!CHECK(rc == 0))
        fprintf(stderr, "%s\n", err);
    CHECK_EQ(f.naccts, 4);
    int st = acct_file_tier(&f, "studio"), br = acct_file_tier(&f, "bronze");
    if (CHECK(st >= 0 && br >= 0)) {
        CHECK(f.tiers[st].weight == 1.5);
        CHECK_EQ(f.tiers[st].max_conns, 32); /* from its base, gold */
        CHECK_EQ(f.tiers[st].max_tasks, 2000);
        CHECK_EQ(f.tiers[st].max_input, 32u << 20);
        CHECK_EQ(f.tiers[br].blob_bytes, 8u << 20);
        CHECK_EQ(f.tiers[br].max_tasks, 50); /* the rest is bronze's */
        CHECK(f.tiers[br].weight == 0.8);
        CHECK_EQ(f.tiers[st].max_jobs, 20000);
        CHECK_EQ(f.tiers[st].price, 1500);
        CHECK_EQ(f.tiers[br].max_jobs, 500); /* ten times its max_tasks */
        CHECK_EQ(f.tiers[br].price, 0);      /* --credit-price */
    }
    uint8_t h[ACCT_HASH_LEN];
    acct_token_hash("game-studio-token-change-me", 27, h);
    CHECK(strcmp(f.accts[0].name, "game-studio") == 0 && memcmp(f.accts[0].hash, h, ACCT_HASH_LEN) == 0);
    CHECK(f.accts[0].role == ACCT_RENTER && f.accts[0].tier == st);
    CHECK(f.accts[2].role == ACCT_PEER && f.accts[3].role == ACCT_OPERATOR);
    acct_file_fini(&f);
}

static void test_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[account a]\nrole = renter\n" H1 "tier = nosuch\n", "f.conf:1: [account a] names tier 'nosuch'"},
        {"[account a]\nrole = both\n", "f.conf:2: bad role 'both'"},
        {"[account a]\nrole = renter\n", "f.conf:2: [account a] has no token_hash"},
        {"[account a]\n" H1, "has no role"},
        {"[account a]\nrole = peer\ntoken_hash = secret\n", "f.conf:3: bad token_hash"},
        {"[account a]\nrole = peer\nrole = peer\n", "f.conf:3: account key 'role' given twice"},
        {"[account a]\nrole = peer\n" H1 "[account a]\n", "f.conf:4: [account a] defined twice (first at line 1)"},
        {"[account a]\nrole = peer\n" H1 "[account b]\nrole = renter\n" H1, "f.conf:4: [account b] has the same token"},
        {"role = renter\n", "f.conf:1: KEY = VALUE before any"},
        {"# c\n\n[tier x]\nrate = fast\n", "f.conf:4: bad value 'fast' for rate"},
        {"[tier x]\nmax_conns = 1\nbase = gold\n", "f.conf:3: 'base' must be the first key"},
        {"[tier x]\nbase = x\n", "f.conf:2: bad base 'x'"},
        {"[tier x]\nweight = 0\n", "f.conf:2: bad value '0' for weight"},
        {"[tier x]\nweight = nan\n", "bad value 'nan' for weight"},
        {"[tier x]\nverify = quorum9\n", "bad value 'quorum9' for verify"},
        {"[tier x]\nmax_priority = urgent\n", "bad value 'urgent' for max_priority"},
        {"[tier x]\nmin_deadline_ms = 500\nmax_deadline_ms = 100\n", "f.conf:3: [tier x]: min_deadline_ms 500"},
        {"[tier x]\nrate = 5\nburst = 0\n", "a rate needs a burst"},
        {"[tier x]\nfrobnicate = 1\n", "f.conf:2: unknown tier key 'frobnicate'"},
        {"[tier x]\n[tier x]\n", "f.conf:2: [tier x] defined twice"},
        {"[tier bad name]\n", "f.conf:1: bad section header"},
        {"[tier x\n", "f.conf:1: section header without its closing"},
        {"[tier x]\nmax_input = 99999999999999999999\n", "bad value"},
        {"[tier x]\nmax_input = 999999999999G\n", "bad value '999999999999G' for max_input"},
        {"[tier x]\nblob_count = 4294967296\n", "bad value"},
        {"just words\n", "f.conf:1: expected KEY = VALUE"},
        {"", "no [account NAME] section"},
        {"[tier x]\n", "no [account NAME] section"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct acct_file f;
        char err[512];
        int rc = parse(cases[i].text, &f, err, sizeof(err));
        if (!CHECK(rc == P2C2R_EINVAL && strstr(err, cases[i].want) != NULL))
            fprintf(stderr, "  case %zu: rc %d err '%s', want '%s'\n", i, rc, err, cases[i].want);
        acct_file_fini(&f);
    }
}

static void test_lines(void)
{
    /* A comment of any length stays a comment; CRLF and a last line
     * without its newline are fine; sizes take suffixes. */
    size_t big = 100000;
    char *text = malloc(big + 400);
    text[0] = '#';
    memset(text + 1, 'x', big);
    strcpy(text + 1 + big, "role = renter\r\n[tier t]\r\nmax_output = 2k\r\nverify = none , quorum3\r\n"
                           "[account a]\r\nrole = renter\r\n" H1 "tier = t");
    struct acct_file f;
    char err[512];
    int rc = parse(text, &f, err, sizeof(err));
    if (!CHECK(rc == 0))
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ(f.naccts, 1);
    int t = acct_file_tier(&f, "t");
    if (CHECK(t >= 0)) {
        CHECK_EQ(f.tiers[t].max_output, 2048);
        CHECK_EQ(f.tiers[t].verify, 0x9);
    }
    acct_file_fini(&f);
    free(text);
}

static void test_tokens(void)
{
    struct acct_file f;
    char err[512];
    CHECK(acct_file_init(&f) == 0);
    char text[2200];
    int n = snprintf(text, sizeof(text), "renter:abc\n  peer: def  \n# ");
    memset(text + n, 'y', 1100);
    strcpy(text + n + 1100, "renter:tail\noperator:ops");
    int rc = acct_file_parse_tokens(&f, text, strlen(text), "t", err, sizeof(err));
    if (!CHECK(rc == 0))
        fprintf(stderr, "  %s\n", err);
    CHECK_EQ(f.naccts, 3); /* abc, def, ops: the comment's tail is no token */
    uint8_t h[ACCT_HASH_LEN];
    acct_token_hash("def", 3, h);
    CHECK(f.accts[1].role == ACCT_PEER && memcmp(f.accts[1].hash, h, ACCT_HASH_LEN) == 0);
    CHECK(strncmp(f.accts[1].name, "token-", 6) == 0 && strlen(f.accts[1].name) == 22);
    CHECK(f.accts[2].role == ACCT_OPERATOR);
    CHECK(strcmp(f.tiers[f.accts[0].tier].name, "unlimited") == 0);
    acct_file_fini(&f);

    CHECK(acct_file_init(&f) == 0);
    rc = acct_file_parse_tokens(&f, "renter:a\nboth\n", 15, "t", err, sizeof(err));
    CHECK(rc == P2C2R_EINVAL && strstr(err, "t:2: token without a role") != NULL);
    acct_file_fini(&f);
    CHECK(acct_file_init(&f) == 0);
    rc = acct_file_parse_tokens(&f, "renter:a\npeer:a\n", 16, "t", err, sizeof(err));
    CHECK(rc == P2C2R_EINVAL && strstr(err, "the same token") != NULL);
    acct_file_fini(&f);
}

/* Every prefix of a good file parses or fails with a reason; none crashes. */
static void test_prefixes(void)
{
    const char *text = "[tier t]\nbase = gold\nrate = 10\nburst = 20\n[account a]\nrole = renter\n" H1
                       "tier = t\n[account b]\nrole = peer\n" H2;
    size_t len = strlen(text);
    int ok = 0;
    for (size_t n = 0; n <= len; n++) {
        struct acct_file f;
        char err[512];
        CHECK(acct_file_init(&f) == 0);
        char *copy = malloc(n ? n : 1);
        memcpy(copy, text, n);
        err[0] = '\0';
        int rc = acct_file_parse(&f, copy, n, "p", err, sizeof(err));
        CHECK(rc == 0 || (rc == P2C2R_EINVAL && strncmp(err, "p:", 2) == 0));
        ok += rc == 0;
        free(copy);
        acct_file_fini(&f);
    }
    CHECK(ok >= 2);
}

/* The account array grows to ACCT_MAX_ACCOUNTS and no further. */
static void test_many(void)
{
    size_t cap = (ACCT_MAX_ACCOUNTS + 1) * 140 + 1, n = 0;
    char *text = malloc(cap);
    for (int i = 0; i <= ACCT_MAX_ACCOUNTS; i++)
        n += (size_t)snprintf(text + n, cap - n, "[account a%d]\nrole = renter\ntoken_hash = blake2b:%064x\n", i, i);
    struct acct_file f;
    char err[512];
    CHECK(acct_file_init(&f) == 0);
    int rc = acct_file_parse(&f, text, n, "m", err, sizeof(err));
    CHECK(rc == P2C2R_EINVAL && strstr(err, "more than 4096 accounts") != NULL);
    acct_file_fini(&f);
    /* Without the last one: all 4096 load, each with its own hash. */
    n = (size_t)(strstr(text, "[account a4096]") - text);
    CHECK(acct_file_init(&f) == 0);
    rc = acct_file_parse(&f, text, n, "m", err, sizeof(err));
    CHECK(rc == 0 && f.naccts == ACCT_MAX_ACCOUNTS);
    CHECK(rc == 0 && strcmp(f.accts[4095].name, "a4095") == 0 && f.accts[4095].hash[31] == 0xff &&
          f.accts[4095].hash[30] == 0x0f);
    acct_file_fini(&f);
    free(text);
}

int main(void)
{
    test_many();
    test_example();
    test_errors();
    test_lines();
    test_tokens();
    test_prefixes();
    return check_report("test_acctfile");
}
