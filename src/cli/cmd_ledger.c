/* cmd_ledger.c - `p2c2r ledger --state DIR` (the credit ledger's balances,
 * a statement of one account, the check that the books balance) and
 * `p2c2r backup --state DIR --to FILE` (an online copy of the state
 * database).
 *
 * Like `p2c2r peers`, these read the coordinator's database itself, not
 * the wire: SQLite's WAL lets them read while p2c2rd runs (what they show
 * is at most one commit old), and neither takes the state directory's
 * lock.  The ledger is opened read-only; the backup uses SQLite's online
 * backup API from a read-only connection, so it never blocks the
 * coordinator's writes for longer than a page copy step.  Exit status: 0
 * success, 1 failure (no database, unreadable, the books do not balance),
 * 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/cliopt.h"
#include "coord/ledger.h"
#include "coord/store.h"
#include "p2c2r/error.h"

int cmd_ledger(int argc, char **argv);
int cmd_backup(int argc, char **argv);

/* The database read-only, at a schema with the ledger (store.h);
 * NULL with the reason printed. */
static sqlite3 *open_ro(const char *prog, const char *dir)
{
    sqlite3 *h = NULL;
    char err[600];
    if (store_open_readonly(dir, LEDGER_SCHEMA_VERSION, &h, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return NULL;
    }
    return h;
}

static void print_balances(sqlite3 *h, int json, json_t *doc)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT account, sum(amount), count(*) FROM ledger_entry GROUP BY account ORDER BY account";
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-72s %16s %8s\n", "account", "balance", "entries");
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *acct = (const char *)sqlite3_column_text(st, 0);
        int64_t bal = sqlite3_column_int64(st, 1);
        int64_t n = sqlite3_column_int64(st, 2);
        if (json)
            json_array_append_new(arr, json_pack("{s:s, s:I, s:f, s:I}", "account", acct, "millicredits",
                                                 (json_int_t)bal, "credits", bal / 1000.0, "entries",
                                                 (json_int_t)n));
        else
            printf("%-72s %16.3f %8" PRId64 "\n", acct, bal / 1000.0, n);
    }
    sqlite3_finalize(st);
    if (json)
        json_object_set_new(doc, "balances", arr);
}

static void print_statement(sqlite3 *h, const char *account, int json, json_t *doc)
{
    sqlite3_stmt *st;
    const char *sql = "SELECT t.id, t.ts_ms, t.kind, t.task, t.job, t.type, hex(t.peer), t.account, t.units,"
                      " e.amount, coalesce(t.reverses, 0), t.reversed FROM ledger_entry e"
                      " JOIN ledger_txn t ON t.id = e.txn WHERE e.account = ?1 ORDER BY e.id";
    if (sqlite3_prepare_v2(h, sql, -1, &st, NULL) != SQLITE_OK)
        return;
    sqlite3_bind_text(st, 1, account, -1, SQLITE_STATIC);
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-8s %-9s %-18s %-8s %-10s %-16.16s %-12s %8s %14s %s\n", "txn", "kind", "task", "job", "type",
               "peer", "renter", "units", "amount", "");
    while (sqlite3_step(st) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(st, 0), ts = sqlite3_column_int64(st, 1);
        const char *kind = (const char *)sqlite3_column_text(st, 2);
        uint64_t task = (uint64_t)sqlite3_column_int64(st, 3);
        int64_t job = sqlite3_column_int64(st, 4);
        const char *type = (const char *)sqlite3_column_text(st, 5);
        const char *peer = (const char *)sqlite3_column_text(st, 6);
        const char *renter = (const char *)sqlite3_column_text(st, 7);
        int64_t units = sqlite3_column_int64(st, 8), amount = sqlite3_column_int64(st, 9);
        int64_t reverses = sqlite3_column_int64(st, 10), reversed = sqlite3_column_int64(st, 11);
        if (json) {
            json_array_append_new(arr, json_pack("{s:I, s:I, s:s, s:I, s:I, s:s, s:s, s:s, s:I, s:I, s:I, s:b}",
                                                 "txn", (json_int_t)id, "ts_ms", (json_int_t)ts, "kind", kind,
                                                 "task", (json_int_t)task, "job", (json_int_t)job, "type", type,
                                                 "peer", peer, "renter", renter, "units", (json_int_t)units,
                                                 "millicredits", (json_int_t)amount, "reverses",
                                                 (json_int_t)reverses, "reversed", (int)reversed));
        } else {
            char note[40] = "";
            if (reverses)
                snprintf(note, sizeof(note), "reverses %" PRId64, reverses);
            else if (reversed)
                snprintf(note, sizeof(note), "reversed");
            printf("%-8" PRId64 " %-9s %-18" PRIx64 " %-8" PRId64 " %-10s %-16.16s %-12s %8" PRId64 " %14.3f %s\n",
                   id, kind, task, job, type, peer, renter, units, amount / 1000.0, note);
        }
    }
    sqlite3_finalize(st);
    if (json)
        json_object_set_new(doc, "statement", arr);
}

int cmd_ledger(int argc, char **argv)
{
    const char *dir = NULL, *account = NULL;
    int json = 0;
    const struct cliopt opts[] = {
        {"state", 's', OPT_STR, "DIR", 0, 0, "the coordinator's state directory (p2c2rd --state DIR); required", &dir},
        {"account", 'a', OPT_STR, "ACCOUNT", 0, 0, "print this account's statement (peer:KEY, renter:NAME or coordinator) instead of every balance", &account},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print one JSON document", &json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "p2c2r ledger",
                          "--state DIR [OPTIONS]",
                          "The credit ledger of a coordinator: balances of peers (credits earned for\n"
                          "verified work), renters (credits spent) and the coordinator, or one account's\n"
                          "statement, after checking that the books balance.  Amounts are credits (a peer\n"
                          "earns 1 per cost unit of work verification accepted).  Works while p2c2rd runs.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc || !dir) {
        fprintf(stderr, "p2c2r ledger: %s\nTry 'p2c2r ledger --help'.\n",
                !dir ? "--state DIR is required: the directory p2c2rd runs with" : "unexpected argument");
        return 2;
    }
    sqlite3 *h = open_ro("p2c2r ledger", dir);
    if (!h)
        return 1;
    char err[512] = "";
    struct ledger_totals t;
    int crc = ledger_check(h, &t, err, sizeof(err));
    if (crc == P2C2R_EIO) {
        fprintf(stderr, "p2c2r ledger: %s\n", err);
        sqlite3_close(h);
        return 1;
    }
    json_t *doc = json ? json_object() : NULL;
    if (json) {
        json_object_set_new(doc, "balanced", json_boolean(crc == 0));
        if (crc)
            json_object_set_new(doc, "error", json_string(err));
        json_object_set_new(doc, "totals",
                            json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "txns", (json_int_t)t.txns,
                                      "work", (json_int_t)t.work, "reversals", (json_int_t)t.reversals, "entries",
                                      (json_int_t)t.entries, "earned_millicredits", (json_int_t)t.earned,
                                      "spent_millicredits", (json_int_t)t.spent, "reversed_millicredits",
                                      (json_int_t)t.reversed, "coordinator_millicredits", (json_int_t)t.coordinator,
                                      "sum_millicredits", (json_int_t)t.sum));
    } else {
        printf("%s: %" PRIu64 " transactions (%" PRIu64 " work, %" PRIu64 " reversals); peers earned %.3f, "
               "renters spent %.3f, reversed %.3f credits\n",
               crc == 0 ? "balanced" : "NOT BALANCED", t.txns, t.work, t.reversals, t.earned / 1000.0,
               t.spent / 1000.0, t.reversed / 1000.0);
    }
    if (account)
        print_statement(h, account, json, doc);
    else
        print_balances(h, json, doc);
    if (json) {
        char *text = json_dumps(doc, JSON_INDENT(2));
        if (text)
            printf("%s\n", text);
        free(text);
        json_decref(doc);
    }
    if (crc)
        fprintf(stderr, "p2c2r ledger: %s\n", err);
    sqlite3_close(h);
    return crc ? 1 : 0;
}

int cmd_backup(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL;
    const struct cliopt opts[] = {
        {"state", 's', OPT_STR, "DIR", 0, 0, "the coordinator's state directory (p2c2rd --state DIR); required", &dir},
        {"to", 'o', OPT_STR, "FILE", 0, 0, "where to write the copy (must not exist); required", &to},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "p2c2r backup",
                          "--state DIR --to FILE",
                          "Copies the coordinator's state database (jobs, ledger, peer records) to FILE\n"
                          "with SQLite's online backup, while p2c2rd runs: the copy is one consistent\n"
                          "commit.  Restore by stopping p2c2rd and putting FILE at DIR/p2c2r.db.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc || !dir || !to) {
        fprintf(stderr, "p2c2r backup: --state DIR and --to FILE are required\nTry 'p2c2r backup --help'.\n");
        return 2;
    }
    sqlite3 *h = open_ro("p2c2r backup", dir);
    if (!h)
        return 1;
    char err[512];
    rc = store_backup_db(h, to, err, sizeof(err));
    sqlite3_close(h);
    if (rc != 0) {
        fprintf(stderr, "p2c2r backup: %s\n", err);
        return 1;
    }
    printf("backed up %s/p2c2r.db to %s\n", dir, to);
    return 0;
}
