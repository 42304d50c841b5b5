/* acctfile.h - the credentials file of p2c2rd (--accounts FILE, and the older
 * --tokens FILE): parsed from text into tiers and accounts, nothing else.
 *
 * The parser never allocates beyond the acct_file it fills, reads lines of
 * any length (a line is whatever lies between two newlines of the buffer
 * given), and refuses a bad file whole with "PATH:LINE: what is wrong, and
 * what to write instead" in err.  It knows nothing of connections: the
 * coordinator applies a parsed file with account.c (account_apply).  It is
 * fuzzed by tests/fuzz/fuzz_acctfile.c.
 *
 * Tokens are never stored: an account holds the BLAKE2b-256 of its token
 * (acct_token_hash).  Tokens are long random strings (p2c2rd --new-token
 * makes 32 random bytes), so a fast unkeyed hash is enough: nobody can
 * invert it or find another token with the same hash, and a slow password
 * hash (Argon2, crypto_pwhash) would only cost every login ~100 ms of the
 * coordinator's single loop thread.  docs/ACCOUNTS.md has the format. */
#ifndef P2C2R_ACCTFILE_H
#define P2C2R_ACCTFILE_H

#include <stddef.h>
#include <stdint.h>

#define ACCT_NAME_MAX 64      /* account and tier names: [A-Za-z0-9._-], 1..64 */
#define ACCT_HASH_LEN 32      /* BLAKE2b-256 */
#define ACCT_MAX_ACCOUNTS 4096
#define ACCT_MAX_TIERS 64
#define ACCT_FILE_MAX (16u << 20) /* a credentials file larger than this is refused */
#define ACCT_HASH_PREFIX "blake2b:"

/* Roles of an account.  A credential has exactly one: a renter's token
 * never registers a peer, and a peer's never submits. An operator logs in
 * with the renter role and may also see every peer in STATS. */
enum acct_role { ACCT_RENTER = 1, ACCT_PEER = 2, ACCT_OPERATOR = 3 };

/* Verification policies a tier allows, one bit per policy in the order of
 * enum verify_policy (none, adaptive, quorum2, quorum3). */
#define ACCT_VERIFY_ALL 0x0fu

/* What a tier allows one account.  0 in max_* means "no limit of its own"
 * (the coordinator's global options still apply); rate 0 means no rate
 * limit. */
struct tier {
    char name[ACCT_NAME_MAX + 1];
    uint32_t max_conns;       /* connections at once, over all its addresses */
    uint32_t max_tasks;       /* tasks in flight and queued together (accepted, no outcome yet) */
    uint32_t rate;            /* submits per second (token bucket refill) */
    uint32_t burst;           /* submits the bucket holds */
    uint8_t max_priority;     /* most urgent class allowed: 0 realtime, 1 interactive, 2 background */
    uint8_t verify;           /* ACCT_VERIFY_* bits: policies its tasks may be verified with */
    uint32_t min_deadline_ms; /* shortest deadline a task may ask for */
    uint32_t max_deadline_ms; /* longest */
    uint64_t max_input;       /* bytes of one task body */
    uint64_t max_output;      /* bytes of one result */
    uint64_t blob_bytes;      /* bytes of blobs it uploaded still in the store */
    uint32_t blob_count;      /* and their count */
    double weight;            /* its share of the fabric against other accounts (> 0) */
    uint32_t max_jobs;        /* durable jobs without an outcome (JOB_SUBMIT), apart from max_tasks */
    uint32_t price;           /* millicredits it pays per cost unit of verified work (0: --credit-price) */
};

struct acct_def {
    char name[ACCT_NAME_MAX + 1];
    uint8_t role;               /* enum acct_role */
    uint8_t hash[ACCT_HASH_LEN];
    uint16_t tier;              /* index in acct_file.tiers */
    uint32_t line;
};

struct acct_file {
    struct tier tiers[ACCT_MAX_TIERS];
    uint32_t ntiers;
    struct acct_def *accts;     /* naccts of them (acct_file_fini frees them) */
    uint32_t naccts, acap;
};

/* Fills in the built-in tiers (bronze, silver, gold, platinum, unlimited)
 * and no account.  Returns 0. */
int acct_file_init(struct acct_file *f);
void acct_file_fini(struct acct_file *f);

/* Parses an accounts file held in text[0..len) (need not be NUL-terminated)
 * into f (fresh from acct_file_init).  path names the file in errors.
 * Returns 0, or P2C2R_EINVAL with "path:line: reason" in err. */
int acct_file_parse(struct acct_file *f, const char *text, size_t len, const char *path, char *err,
                    size_t errcap);

/* Parses the older tokens format (one "renter:TOKEN", "peer:TOKEN" or
 * "operator:TOKEN" per line) into f: each token becomes an account of tier
 * "unlimited" named "token-" and the first 8 hex digits of its hash (stable
 * across reloads).  A token without a role prefix is refused: it used to
 * work for both roles. */
int acct_file_parse_tokens(struct acct_file *f, const char *text, size_t len, const char *path, char *err,
                           size_t errcap);

/* Reads path whole (at most ACCT_FILE_MAX bytes) into a new NUL-terminated
 * buffer (*text, free it) and parses it with the parser for its format
 * (tokens = 1: acct_file_parse_tokens).  P2C2R_ENOTFOUND when it cannot be
 * read, P2C2R_EINVAL when it is bad; err says why. */
int acct_file_load(struct acct_file *f, const char *path, int tokens, char *err, size_t errcap);

/* The BLAKE2b-256 of a token. */
void acct_token_hash(const void *token, size_t len, uint8_t out[ACCT_HASH_LEN]);

/* The index of the tier called name in f, or -1. */
int acct_file_tier(const struct acct_file *f, const char *name);

const char *acct_role_name(int role);
/* "realtime", "interactive", "background". */
const char *acct_prio_name(int prio);

#endif
