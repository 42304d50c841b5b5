/* ledger_check.c - the invariant check of the credit ledger (ledger.h):
 * the books balance.  Pure SQL over any database with the ledger's tables,
 * so that p2c2rd --check-ledger, p2c2r ledger and the tests share it; it
 * needs nothing of the running coordinator (it is in the store's library,
 * which the CLI links). */
#include "coord/ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "p2c2r/error.h"

static int q_int(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        snprintf(err, errcap, "ledger: cannot read the ledger: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : P2C2R_EIO;
}

int ledger_check(struct sqlite3 *db, struct ledger_totals *out, char *err, size_t errcap)
{
    static const struct {
        const char *sql, *what;
    } rules[] = {
        {"SELECT count(*) FROM (SELECT txn FROM ledger_entry GROUP BY txn HAVING sum(amount) != 0)",
         "transactions whose entries do not sum to zero"},
        {"SELECT count(*) FROM ledger_txn t WHERE NOT EXISTS (SELECT 1 FROM ledger_entry e WHERE e.txn = t.id)",
         "transactions without entries"},
        {"SELECT count(*) FROM ledger_entry e WHERE NOT EXISTS (SELECT 1 FROM ledger_txn t WHERE t.id = e.txn)",
         "entries of no transaction"},
        {"SELECT count(*) FROM ledger_txn w WHERE w.kind = 'work' AND w.reversed !="
         " (SELECT count(*) FROM ledger_txn r WHERE r.kind = 'reversal' AND r.reverses = w.id)",
         "work transactions reversed more than once, or marked reversed without a reversal (or the opposite)"},
        {"SELECT count(*) FROM ledger_txn r WHERE r.kind = 'reversal' AND NOT EXISTS"
         " (SELECT 1 FROM ledger_txn w WHERE w.id = r.reverses AND w.kind = 'work')",
         "reversals of no work transaction"},
        {"SELECT count(*) FROM (SELECT r.id, e.account FROM ledger_txn r JOIN ledger_entry e"
         " ON e.txn = r.id OR e.txn = r.reverses WHERE r.kind = 'reversal' GROUP BY r.id, e.account"
         " HAVING sum(e.amount) != 0)",
         "reversals that do not negate their work transaction account by account"},
    };
    struct ledger_totals t;
    memset(&t, 0, sizeof(t));
    int64_t v;
    int rc;
    if ((rc = q_int(db, "SELECT count(*) FROM ledger_txn", &v, err, errcap)) != 0)
        return rc;
    t.txns = (uint64_t)v;
    if ((rc = q_int(db, "SELECT count(*) FROM ledger_txn WHERE kind = 'reversal'", &v, err, errcap)) != 0)
        return rc;
    t.reversals = (uint64_t)v;
    t.work = t.txns - t.reversals;
    if ((rc = q_int(db, "SELECT count(*) FROM ledger_entry", &v, err, errcap)) != 0)
        return rc;
    t.entries = (uint64_t)v;
    if ((rc = q_int(db, "SELECT coalesce(sum(amount), 0) FROM ledger_entry", &t.sum, err, errcap)) != 0 ||
        (rc = q_int(db, "SELECT coalesce(sum(amount), 0) FROM ledger_entry WHERE account LIKE 'peer:%'",
                    &t.earned, err, errcap)) != 0 ||
        (rc = q_int(db, "SELECT coalesce(-sum(amount), 0) FROM ledger_entry WHERE account LIKE 'renter:%'",
                    &t.spent, err, errcap)) != 0 ||
        (rc = q_int(db, "SELECT coalesce(-sum(e.amount), 0) FROM ledger_entry e JOIN ledger_txn r ON r.id = e.txn"
                        " WHERE r.kind = 'reversal' AND e.account LIKE 'peer:%'",
                    &t.reversed, err, errcap)) != 0 ||
        (rc = q_int(db, "SELECT coalesce(sum(amount), 0) FROM ledger_entry WHERE account = 'coordinator'",
                    &t.coordinator, err, errcap)) != 0)
        return rc;
    if (out)
        *out = t;
    if (t.sum != 0) {
        snprintf(err, errcap, "ledger: the books do not balance: the entries sum to %" PRId64 " millicredits",
                 t.sum);
        return P2C2R_EPROTO;
    }
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        if ((rc = q_int(db, rules[i].sql, &v, err, errcap)) != 0)
            return rc;
        if (v != 0) {
            snprintf(err, errcap, "ledger: %" PRId64 " %s", v, rules[i].what);
            return P2C2R_EPROTO;
        }
    }
    return 0;
}
