/* ledger.h - the credit ledger: double-entry accounting in the state
 * database (store.h), written in the same group commits as durable jobs
 * (jobs_flush).
 *
 * Accounts: "peer:<64 hex digits of its key>", "renter:<account name>" (its
 * credential account's, or without credentials its HELLO name) and
 * "coordinator".  Amounts are millicredits.  Each transaction names one
 * task (and its durable job, 0 for a live task), one peer key and the
 * renter's account; its entries sum to zero:
 *   work      peer +units*1000, renter -share of the price, coordinator the
 *             difference (a result that verification accepted: one
 *             transaction per agreeing peer, the price split among them);
 *   reversal  the negation of one work transaction, when its peer's key is
 *             caught in a lie within --credit-hold of it.
 * units come from the executor's cost estimate (t->cost, tasks_estimate),
 * never from what the peer reports; the price is ledger_price.
 *
 * Everything here runs on the coordinator's loop thread, except
 * ledger_check, which reads any database (p2c2rd --check-ledger, p2c2r
 * ledger, tests). */
#ifndef P2C2R_COORD_LEDGER_H
#define P2C2R_COORD_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct coord;
struct task;
struct sqlite3;

#define LEDGER_MILLI 1000u /* millicredits a peer earns per cost unit */
#define LEDGER_SCHEMA_VERSION 4 /* the store's schema version that added the ledger */

int ledger_open(struct coord *co, char *err, size_t errcap);
void ledger_close(struct coord *co);
/* Whether entries wait for the next commit. */
int ledger_pending(const struct coord *co);
/* Writes the pending entries inside the caller's transaction; 0 or a
 * store code.  ledger_committed forgets them once the commit succeeded. */
int ledger_write(struct coord *co);
void ledger_committed(struct coord *co);

/* What a renter's account pays, in millicredits, for work of this many
 * cost units: the one place a price is decided (its tier's price, or
 * --credit-price; account_price). */
uint64_t ledger_price(const struct coord *co, const char *account, uint64_t units);

/* Verification accepted t's result, computed by the peers with these ids
 * (connected peers get credit; one gone meanwhile is not credited). */
void ledger_on_verified(struct coord *co, const struct task *t, const uint32_t *peers, unsigned n);
/* The key pk was caught in a lie: its work transactions younger than
 * --credit-hold are reversed at the next commit. */
void ledger_on_liar(struct coord *co, const uint8_t *pk);

struct ledger_totals {
    uint64_t txns, work, reversals, entries;
    int64_t earned;   /* millicredits credited to peers, reversals included */
    int64_t spent;    /* millicredits debited from renters, reversals included */
    int64_t reversed; /* millicredits taken back from peers by reversals */
    int64_t coordinator;
    int64_t sum;      /* of every entry: 0 when the books balance */
};

/* Checks the books of db: every transaction's entries sum to zero, every
 * transaction has entries, each work transaction is reversed at most once
 * and marked so exactly when a reversal names it, each reversal negates
 * its original account by account.  Fills *out (may be NULL).  Returns 0,
 * P2C2R_EPROTO with what is wrong in err, or P2C2R_EIO when db cannot be
 * read. */
int ledger_check(struct sqlite3 *db, struct ledger_totals *out, char *err, size_t errcap);

#endif
