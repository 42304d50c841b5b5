/* account.h - accounts and tiers at run time: who a connection is (its
 * HELLO's token), what its tier allows, the refusals when it asks for more,
 * the per-address backoff of failed logins, and the reload of the
 * credentials file on SIGHUP.
 *
 * Thread context: the coordinator's loop thread, like everything in
 * src/coord.  Without a credentials file (--accounts or --tokens) there are
 * no accounts: every connection's acct is NULL, nothing is limited beyond
 * the global options and every renter may see everything (an operator), as
 * `make run` always did.
 *
 * Records live as long as the coordinator: a reload updates the account
 * and tier of the same name in place (its connections keep working under
 * the new tier) and marks those no longer in the file removed (their
 * connections are cut); a name that comes back gets its old record, with
 * its counters.  So a struct account * held by a connection or a blob is
 * never dangling, and the records' number is bounded by the names the
 * files ever held.  docs/ACCOUNTS.md has the reasons. */
#ifndef P2C2R_ACCOUNT_H
#define P2C2R_ACCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/proto.h"
#include "coord/acctfile.h"

struct coord;
struct conn;
struct ttype;
struct mem_acct;

/* The limits a refusal can name; each has a counter per account and tier. */
enum acct_limit {
    AL_CONNS, AL_TASKS, AL_RATE, AL_PRIORITY, AL_DEADLINE, AL_INPUT, AL_OUTPUT, AL_BLOB_BYTES, AL_BLOB_COUNT,
    AL_VERIFY, AL_JOBS, AL_N
};

struct acct_counters {
    uint64_t logins, submitted, accepted, blobs_put;
    uint64_t refused[AL_N];
};

/* A tier as the accounts bound to it see it now (the file's values) and
 * what they did under it since the coordinator started. */
struct tier_rec {
    struct tier t;
    uint8_t removed; /* not in the current file */
    struct acct_counters n;
};

struct account {
    char name[ACCT_NAME_MAX + 1]; /* stable across reloads: the key of its share */
    uint8_t role;                 /* enum acct_role */
    uint8_t removed;              /* not in the current file: no login, connections cut */
    uint8_t hash[ACCT_HASH_LEN];
    struct tier_rec *tier;
    struct list_node conns;       /* its connections (conn.anode) */
    uint32_t nconns;
    double bucket;                /* submits available now (token bucket) */
    uint64_t bucket_us;           /* when bucket was last refilled */
    uint64_t blob_bytes;          /* blobs it uploaded that are in the store */
    uint32_t blob_count;
    struct mem_acct *macct;       /* its share of the memory budget, charged by all its connections
                                   * (limits_renter_ready); NULL until its first renter login */
    struct acct_counters n;
};

/* Loads cfg.accounts_file (or cfg.tokens_file) into co->accts.  Returns 0,
 * P2C2R_ENOTFOUND (cannot read it) or P2C2R_EINVAL (bad content), with the
 * reason (path:line) in err.  No file configured: 0 and no accounts. */
int account_init(struct coord *co, char *err, size_t errcap);
void account_fini(struct coord *co);

/* Reads the credentials file again (SIGHUP).  A bad file changes nothing
 * (logged with its path:line); otherwise accounts and tiers are updated in
 * place, new ones added, and the connections of accounts no longer in the
 * file, or whose role changed, are cut with EAUTH. */
void account_reload(struct coord *co);

/* The HELLO of c with role and token: finds the account the token belongs
 * to and checks its role and connection limit, and the backoff of c's
 * address.  Returns 0 with *out set (NULL when no credentials are
 * configured) and c bound to it, or -1 after cutting c with the reason:
 * EAGAIN (its address is backing off after failed logins: retry in N ms),
 * EAUTH (no such token, or not for this role), ELIMIT (the tier's
 * connections).  The account's name and tier weight are what a share is
 * keyed and weighted by. */
int account_login(struct coord *co, struct conn *c, uint8_t role, const struct bytes_view *token,
                  struct account **out);
/* c is closing: unbinds it from its account.  No account: no-op. */
void account_logout(struct conn *c);

/* Whether c may see the whole fabric (peers' names and addresses, every
 * account): an operator account, or any connection without credentials. */
int account_is_operator(const struct coord *co, const struct conn *c);

/* Whether token (len bytes) is an operator account's: the HTTP port's
 * check of /metrics' bearer token (mhttp_auth_fn; arg is the coord). */
int account_http_auth(void *arg, const char *token, size_t len);

/* The tier checks of one task submitted on c (m parsed; body_len its size;
 * dl_ms its deadline as it will be; tt its type, NULL when unknown;
 * verify its type's enum verify_policy).  Returns 0, or the code to refuse
 * it with (the reason, naming the limit and when to retry, in reason),
 * counted against the account and its tier. */
int account_check_submit(struct coord *co, struct conn *c, const struct msg_task *m, size_t body_len,
                         uint32_t dl_ms, int verify, char *reason, size_t cap);
/* The same checks for one entry of a JOB_SUBMIT (a durable job), except
 * that the account's durable jobs without an outcome (pending, this
 * entry's batch included) count against the tier's max_jobs instead of
 * its tasks against max_tasks. */
int account_check_job(struct coord *co, struct conn *c, const struct msg_task *m, size_t body_len, uint32_t dl_ms,
                      int verify, uint32_t pending, char *reason, size_t cap);
/* Gives back n submits to the rate of c's account (a JOB_SUBMIT refused
 * whole after n of its entries passed). */
void account_rate_refund(struct conn *c, uint32_t n);
/* The longest deadline c's tier allows (ms), 0 for no limit. */
uint32_t account_max_deadline(const struct conn *c);
/* A task of c was accepted. */
void account_on_accepted(struct conn *c);
/* Whether a result of len bytes is over the output limit of r's tier; if so
 * the reason (for the DELIVER's ETOOBIG text) is in why. */
int account_output_refused(struct conn *r, size_t len, char *why, size_t cap);

/* Blob quota: whether a new blob of len bytes fits a's (a may be NULL:
 * yes).  0, or P2C2R_ELIMIT with the reason in why. */
int account_blob_admit(struct account *a, uint64_t len, char *why, size_t cap);
/* A blob of a's entered (sign 1) or left (sign -1) the store. */
void account_blob_charge(struct account *a, uint64_t len, int sign);

/* STATS: for an operator the "accounts", "tiers" and "logins" members,
 * for any other account its own "account" member (both start with a
 * comma); nothing without credentials. */
void account_stats_json(struct coord *co, const struct conn *c, struct buf *o);
/* The same figures as Prometheus series (labelled by account and tier). */
void account_metrics(struct coord *co, struct buf *o);

/* The key of a's fair share ("acct:NAME") in key (at least
 * ACCT_NAME_MAX + 6 bytes); returns its length. */
size_t account_share_key(const struct account *a, char *key, size_t cap);

/* The price (millicredits per cost unit) the account called name pays:
 * its tier's price, or --credit-price (no such account, no credentials, a
 * tier without a price of its own).  Linear in the accounts. */
uint64_t account_price(const struct coord *co, const char *name);
/* Who c's work is for, in durable jobs and the ledger: its account's name,
 * or without credentials its HELLO name. */
const char *account_name(const struct conn *c);

/* Sums c's outstanding tasks over the account's connections. */
uint32_t account_tasks(const struct account *a);

#endif
