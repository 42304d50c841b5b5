/* ledger.c - the credit ledger (ledger.h): transactions recorded in
 * memory as results are accepted and liars caught, written inside the
 * durable group commit (jobs_flush), and the check that the books balance.
 *
 * Invariants: a pending record is written by exactly one successful
 * commit (ledger_committed drops them only then; a failed commit keeps
 * them for the next); each work transaction's three entries sum to zero by
 * construction (the coordinator takes the difference), and a reversal is
 * the entry-by-entry negation of one work transaction not reversed yet. */
#include "coord/ledger.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "common/ident.h"
#include "coord/coord_int.h"
#include "coord/jobs.h"

enum lp_kind { LP_WORK, LP_REVERSE };

struct lpend {
    uint8_t kind;
    uint8_t pk[STORE_PK_LEN];
    uint64_t task, job, units, share, ts_ms;
    char type[PROTO_MAX_TYPE_NAME + 1];
    char account[PROTO_MAX_NAME + 1];
};

enum lst { LS_TXN, LS_ENTRY, LS_REV_TXN, LS_REV_ENTRY, LS_REV_MARK, LS_MAXID, LS_N };

static const char *const ledger_sql[LS_N] = {
    [LS_TXN] = "INSERT INTO ledger_txn (ts_ms, kind, task, job, type, peer, account, units)"
               " VALUES (?1, 'work', ?2, ?3, ?4, ?5, ?6, ?7)",
    [LS_ENTRY] = "INSERT INTO ledger_entry (txn, account, amount, task, peer) VALUES (?1, ?2, ?3, ?4, ?5)",
    [LS_REV_TXN] = "INSERT INTO ledger_txn (ts_ms, kind, task, job, type, peer, account, units, reverses)"
                   " SELECT ?1, 'reversal', task, job, type, peer, account, units, id FROM ledger_txn"
                   " WHERE peer = ?2 AND kind = 'work' AND reversed = 0 AND ts_ms >= ?3 ORDER BY id",
    [LS_REV_ENTRY] = "INSERT INTO ledger_entry (txn, account, amount, task, peer)"
                     " SELECT r.id, e.account, -e.amount, e.task, e.peer FROM ledger_txn r"
                     " JOIN ledger_entry e ON e.txn = r.reverses WHERE r.id > ?1 AND r.kind = 'reversal'"
                     " ORDER BY r.id, e.id",
    [LS_REV_MARK] = "UPDATE ledger_txn SET reversed = 1 WHERE kind = 'work' AND reversed = 0 AND id IN"
                    " (SELECT reverses FROM ledger_txn WHERE id > ?1 AND kind = 'reversal')",
    [LS_MAXID] = "SELECT coalesce(max(id), 0) FROM ledger_txn",
};

struct ledger {
    sqlite3 *db;
    sqlite3_stmt *st[LS_N];
    struct lpend *p;
    size_t n, cap;
    uint64_t nrev; /* reversals written by the transaction being committed */
};

int ledger_open(struct coord *co, char *err, size_t errcap)
{
    if (!co->store)
        return 0;
    struct ledger *l = xcalloc(1, sizeof(*l));
    l->db = store_sqlite(co->store);
    co->ledger = l;
    for (int i = 0; i < LS_N; i++)
        if (sqlite3_prepare_v3(l->db, ledger_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &l->st[i], NULL) != SQLITE_OK) {
            snprintf(err, errcap, "ledger: cannot prepare a statement: %s", sqlite3_errmsg(l->db));
            ledger_close(co);
            return P2C2R_EIO;
        }
    return 0;
}

void ledger_close(struct coord *co)
{
    struct ledger *l = co->ledger;
    if (!l)
        return;
    for (int i = 0; i < LS_N; i++)
        sqlite3_finalize(l->st[i]);
    if (l->n)
        LOG_W("ledger_lost", "records=%zu reason=\"the last commit failed\"", l->n);
    free(l->p);
    free(l);
    co->ledger = NULL;
}

int ledger_pending(const struct coord *co) { return co->ledger && co->ledger->n > 0; }

uint64_t ledger_price(const struct coord *co, const char *account, uint64_t units)
{
    return units * account_price(co, account); /* its tier's price, or --credit-price */
}

static struct lpend *lp_add(struct ledger *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->p = xrealloc(l->p, l->cap * sizeof(*l->p));
    }
    struct lpend *e = &l->p[l->n++];
    memset(e, 0, sizeof(*e));
    return e;
}

void ledger_on_verified(struct coord *co, const struct task *t, const uint32_t *peers, unsigned n)
{
    struct ledger *l = co->ledger;
    if (!l || n == 0)
        return;
    const char *account = t->renter ? account_name(t->renter) : t->job ? jobs_account(t->job) : "";
    uint64_t units = t->cost ? t->cost : 1;
    uint64_t price = ledger_price(co, account, units);
    uint64_t now = wall_ms();
    for (unsigned i = 0; i < n; i++) {
        struct peer_rec *p = peer_find(co, peers[i]);
        if (!p || !p->key)
            continue;
        struct lpend *e = lp_add(l);
        e->kind = LP_WORK;
        memcpy(e->pk, p->key->pk, STORE_PK_LEN);
        e->task = t->id;
        e->job = t->job ? jobs_id(t->job) : 0;
        e->units = units;
        /* The price split among the agreeing peers, the first taking what
         * does not divide. */
        e->share = price / n + (i == 0 ? price % n : 0);
        e->ts_ms = now;
        snprintf(e->type, sizeof(e->type), "%s", co->types[t->tt].name);
        snprintf(e->account, sizeof(e->account), "%s", account);
    }
}

void ledger_on_liar(struct coord *co, const uint8_t *pk)
{
    struct ledger *l = co->ledger;
    if (!l)
        return;
    struct lpend *e = lp_add(l);
    e->kind = LP_REVERSE;
    memcpy(e->pk, pk, STORE_PK_LEN);
    e->ts_ms = wall_ms();
}

static int lrun(struct coord *co, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail_note(co->store, rc);
    sqlite3_reset(st);
    return code;
}

static int entry_put(struct coord *co, sqlite3_int64 txn, const char *account, int64_t amount,
                     const struct lpend *e)
{
    sqlite3_stmt *st = co->ledger->st[LS_ENTRY];
    sqlite3_bind_int64(st, 1, txn);
    sqlite3_bind_text(st, 2, account, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, amount);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)e->task);
    sqlite3_bind_blob(st, 5, e->pk, STORE_PK_LEN, SQLITE_STATIC);
    return lrun(co, st);
}

static int write_work(struct coord *co, const struct lpend *e)
{
    struct ledger *l = co->ledger;
    sqlite3_stmt *st = l->st[LS_TXN];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)e->ts_ms);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)e->task);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)e->job);
    sqlite3_bind_text(st, 4, e->type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, e->pk, STORE_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, e->account, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)e->units);
    int rc = lrun(co, st);
    if (rc != 0)
        return rc;
    sqlite3_int64 txn = sqlite3_last_insert_rowid(l->db);
    char peer[5 + IDENT_PK_HEX_LEN + 1], renter[7 + PROTO_MAX_NAME + 1];
    memcpy(peer, "peer:", 5);
    ident_pk_hex(e->pk, peer + 5);
    snprintf(renter, sizeof(renter), "renter:%s", e->account);
    int64_t earn = (int64_t)(e->units * LEDGER_MILLI), pay = (int64_t)e->share;
    rc = entry_put(co, txn, peer, earn, e);
    if (rc == 0)
        rc = entry_put(co, txn, renter, -pay, e);
    if (rc == 0)
        rc = entry_put(co, txn, "coordinator", pay - earn, e);
    return rc;
}

static int write_reverse(struct coord *co, const struct lpend *e)
{
    struct ledger *l = co->ledger;
    sqlite3_stmt *st = l->st[LS_MAXID];
    int rc = sqlite3_step(st);
    sqlite3_int64 before = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW)
        return store_fail_note(co->store, rc);
    uint64_t hold = (uint64_t)co->cfg.credit_hold_s * 1000;
    st = l->st[LS_REV_TXN];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)e->ts_ms);
    sqlite3_bind_blob(st, 2, e->pk, STORE_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)(e->ts_ms > hold ? e->ts_ms - hold : 0));
    if ((rc = lrun(co, st)) != 0)
        return rc;
    int nrev = sqlite3_changes(l->db);
    if (nrev == 0)
        return 0;
    st = l->st[LS_REV_ENTRY];
    sqlite3_bind_int64(st, 1, before);
    if ((rc = lrun(co, st)) != 0)
        return rc;
    st = l->st[LS_REV_MARK];
    sqlite3_bind_int64(st, 1, before);
    if ((rc = lrun(co, st)) != 0)
        return rc;
    l->nrev += (uint64_t)nrev;
    char hex[IDENT_PK_HEX_LEN + 1];
    ident_pk_hex(e->pk, hex);
    LOG_I("ledger_reversed", "peer=%s txns=%d", hex, nrev);
    return 0;
}

int ledger_write(struct coord *co)
{
    struct ledger *l = co->ledger;
    int rc = 0;
    l->nrev = 0;
    for (size_t i = 0; i < l->n && rc == 0; i++)
        rc = l->p[i].kind == LP_WORK ? write_work(co, &l->p[i]) : write_reverse(co, &l->p[i]);
    return rc;
}

void ledger_committed(struct coord *co)
{
    struct ledger *l = co->ledger;
    for (size_t i = 0; i < l->n; i++) {
        const struct lpend *e = &l->p[i];
        if (e->kind != LP_WORK)
            continue;
        co->n.ledger_txns++;
        co->n.credits_earned += e->units * LEDGER_MILLI;
        co->n.credits_spent += e->share;
    }
    co->n.ledger_reversals += l->nrev;
    l->nrev = 0;
    l->n = 0;
    if (l->cap > 4096) {
        free(l->p);
        l->p = NULL;
        l->cap = 0;
    }
}
