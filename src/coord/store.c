/* store.c - the coordinator's persistent state over SQLite's C API: one
 * connection to DIR/p2c2r.db in WAL mode, a versioned schema brought up to
 * date at open by a table of migration steps, and group commit: puts land
 * in a table of pending changes in memory, and store_flush writes them all
 * in one transaction with statements prepared once at open.
 *
 * Invariants:
 * - A pending change is on exactly one hash chain and on the dirty list,
 *   and there is at most one per key (kind, public key, task type): a second
 *   put of the same key overwrites the first in place.  The dirty list keeps
 *   the order of first puts.
 * - A failed flush rolls back and leaves every pending change in place; a
 *   successful one frees them all.  So the database only ever holds whole
 *   flushes, and memory holds what is not in it yet.
 * - The connection is in autocommit mode between calls (no transaction is
 *   left open), and every statement is reset before a call returns, so no
 *   read transaction holds back WAL checkpoints.
 * - After a successful open the file's application_id is STORE_APPLICATION_ID
 *   and its user_version the number of migration steps. */
#include "coord/store.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "common/list.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/error.h"

static_assert(STORE_TYPE_MAX == PROTO_MAX_TYPE_NAME, "a stored type name is a protocol type name");

#define STORE_FILE "p2c2r.db"

/* How long a statement waits for a lock another process holds (a backup by
 * the sqlite3 tool, a reader) before failing with EAGAIN.  Short, because
 * the caller is the coordinator's event loop: a flush that cannot get the
 * lock fails and its changes go out with the next one. */
#define STORE_BUSY_MS 100

#define STORE_MIN_BUCKETS 64u

/* The built-in schema: step i takes version i to i + 1.  Released steps
 * never change (a database made by an older build must migrate the same
 * way).
 * Tables are STRICT, so a column holds only its declared type, and WITHOUT
 * ROWID, since every lookup is by the primary key. */
static const struct store_migration store_builtin[] = {
    {"peer reputation and per-type speed",
     "CREATE TABLE peers ("
     " pk BLOB NOT NULL PRIMARY KEY CHECK (length(pk) = 32),"
     " first_seen_ms INTEGER NOT NULL,"
     " last_seen_ms INTEGER NOT NULL,"
     " verified INTEGER NOT NULL,"
     " disagreements INTEGER NOT NULL,"
     " strikes INTEGER NOT NULL,"
     " quarantines INTEGER NOT NULL,"
     " quarantined_until_ms INTEGER NOT NULL,"
     " banned INTEGER NOT NULL CHECK (banned IN (0, 1)),"
     " pinned INTEGER NOT NULL CHECK (pinned IN (0, 1)),"
     " peer_group TEXT NOT NULL CHECK (length(CAST(peer_group AS BLOB)) <= 32),"
     " name TEXT NOT NULL CHECK (length(CAST(name AS BLOB)) <= 64)"
     ") STRICT, WITHOUT ROWID;"
     "CREATE TABLE peer_speed ("
     " pk BLOB NOT NULL CHECK (length(pk) = 32),"
     " type TEXT NOT NULL CHECK (length(CAST(type AS BLOB)) BETWEEN 1 AND 32),"
     " exec_us_ewma INTEGER NOT NULL,"
     " PRIMARY KEY (pk, type)"
     ") STRICT, WITHOUT ROWID;"},
    {"results counted good and lies caught per peer",
     "ALTER TABLE peers ADD COLUMN good INTEGER NOT NULL DEFAULT 0;"
     "ALTER TABLE peers ADD COLUMN lies INTEGER NOT NULL DEFAULT 0;"},
    /* Durable jobs (jobs.c): a job's task body as submitted, its outcome
     * once committed, and the blobs pending jobs reference (refs counts
     * them; a blob leaves with the last job that needs it). */
    {"durable jobs and their blobs",
     "CREATE TABLE jobs ("
     " id INTEGER PRIMARY KEY,"
     " account TEXT NOT NULL CHECK (length(CAST(account AS BLOB)) <= 64),"
     " ckey INTEGER NOT NULL,"
     " type TEXT NOT NULL CHECK (length(CAST(type AS BLOB)) BETWEEN 1 AND 32),"
     " body BLOB NOT NULL,"
     " submit_ms INTEGER NOT NULL,"
     " deadline_ms INTEGER NOT NULL,"
     " state INTEGER NOT NULL CHECK (state IN (0, 1)),"
     " status INTEGER NOT NULL,"
     " attempts INTEGER NOT NULL,"
     " exec_us INTEGER NOT NULL,"
     " peer_id INTEGER NOT NULL,"
     " flags INTEGER NOT NULL,"
     " done_ms INTEGER NOT NULL,"
     " result BLOB"
     ") STRICT;"
     "CREATE UNIQUE INDEX jobs_by_key ON jobs (account, ckey) WHERE ckey != 0;"
     "CREATE TABLE job_blobs ("
     " hash BLOB NOT NULL PRIMARY KEY CHECK (length(hash) = 32),"
     " data BLOB NOT NULL,"
     " refs INTEGER NOT NULL"
     ") STRICT, WITHOUT ROWID;"},
    /* The credit ledger (ledger.c): double entry, each transaction's
     * entries sum to zero; a reversal negates a work transaction. */
    {"the credit ledger",
     "CREATE TABLE ledger_txn ("
     " id INTEGER PRIMARY KEY,"
     " ts_ms INTEGER NOT NULL,"
     " kind TEXT NOT NULL CHECK (kind IN ('work', 'reversal')),"
     " task INTEGER NOT NULL,"
     " job INTEGER NOT NULL,"
     " type TEXT NOT NULL,"
     " peer BLOB NOT NULL CHECK (length(peer) = 32),"
     " account TEXT NOT NULL,"
     " units INTEGER NOT NULL,"
     " reverses INTEGER,"
     " reversed INTEGER NOT NULL DEFAULT 0"
     ") STRICT;"
     "CREATE INDEX ledger_txn_by_peer ON ledger_txn (peer, kind, reversed, ts_ms);"
     "CREATE TABLE ledger_entry ("
     " id INTEGER PRIMARY KEY,"
     " txn INTEGER NOT NULL,"
     " account TEXT NOT NULL,"
     " amount INTEGER NOT NULL,"
     " task INTEGER NOT NULL,"
     " peer BLOB NOT NULL CHECK (length(peer) = 32)"
     ") STRICT;"
     "CREATE INDEX ledger_entry_by_txn ON ledger_entry (txn);"
     "CREATE INDEX ledger_entry_by_account ON ledger_entry (account);"},
};

static_assert(ARRAY_LEN(store_builtin) == STORE_SCHEMA_VERSION,
              "STORE_SCHEMA_VERSION is the number of built-in migration steps");

#define PEER_COLS                                                                             \
    "pk, first_seen_ms, last_seen_ms, verified, disagreements, strikes, quarantines, "       \
    "quarantined_until_ms, banned, pinned, peer_group, name, good, lies"

enum store_stmt {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_PEER_PUT,
    ST_PEER_GET,
    ST_PEER_ALL,
    ST_SPEED_PUT,
    ST_SPEED_GET,
    ST_N
};

static const char *const store_sql[ST_N] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_PEER_PUT] = "INSERT INTO peers (" PEER_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
                    " ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT (pk) DO UPDATE SET"
                    " first_seen_ms = ?2, last_seen_ms = ?3, verified = ?4, disagreements = ?5,"
                    " strikes = ?6, quarantines = ?7, quarantined_until_ms = ?8, banned = ?9,"
                    " pinned = ?10, peer_group = ?11, name = ?12, good = ?13, lies = ?14",
    [ST_PEER_GET] = "SELECT " PEER_COLS " FROM peers WHERE pk = ?1",
    [ST_PEER_ALL] = "SELECT " PEER_COLS " FROM peers ORDER BY pk",
    [ST_SPEED_PUT] = ("INSERT INTO peer_speed (pk, type, exec_us_ewma) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (pk, type) DO UPDATE SET exec_us_ewma = ?3"),
    [ST_SPEED_GET] = "SELECT exec_us_ewma FROM peer_speed WHERE pk = ?1 AND type = ?2",
};

enum pend_kind { PEND_PEER, PEND_SPEED };

struct pend_speed {
    uint8_t pk[STORE_PK_LEN];
    char type[STORE_TYPE_MAX + 1];
    uint64_t exec_us;
};

/* One pending change. */
struct pend {
    struct pend *hnext;
    struct list_node dirty;
    uint64_t hash;
    uint64_t walk; /* store_peer_each: the walk that met its written row */
    enum pend_kind kind;
    union {
        struct store_peer peer;
        struct pend_speed speed;
    } u;
};

struct store {
    sqlite3 *db;
    sqlite3_stmt *st[ST_N];
    struct pend **tab; /* nbuckets chains of pending changes */
    size_t nbuckets;   /* a power of two */
    size_t npend;
    struct list_node dirty;
    uint64_t seed; /* of the bucket hash: a peer cannot choose keys that collide */
    uint64_t walk;
    int walking; /* inside store_peer_each: changes are a programmer error */
    struct store_stats n;
    char errmsg[256];
};

static void errf(char *err, size_t errcap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errcap, const char *fmt, ...)
{
    if (err == NULL || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

/* The project's code for a SQLite result. */
static int store_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_NOMEM:
        return P2C2R_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return P2C2R_EAGAIN;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return P2C2R_EPROTO;
    default:
        return P2C2R_EIO;
    }
}

/* Keeps SQLite's message for a failure and returns the project's code. */
static int store_fail(struct store *s, int rc)
{
    snprintf(s->errmsg, sizeof(s->errmsg), "%s", sqlite3_errmsg(s->db));
    return store_code(rc);
}

/* Runs a statement that returns no row, then resets it. */
static int store_run(struct store *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : store_fail(s, rc);
    sqlite3_reset(st);
    return code;
}

static int store_exec(struct store *s, const char *sql)
{
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : store_fail(s, rc);
}

/* Reads the integer a one-row statement (a PRAGMA, a count) returns. */
static int store_query_int(struct store *s, const char *sql, int64_t *out)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        code = rc == SQLITE_DONE ? P2C2R_EPROTO : store_fail(s, rc);
    sqlite3_finalize(st);
    return code;
}

static int store_on_commit(void *arg)
{
    struct store *s = arg;
    s->n.commits++;
    return 0; /* 0: let the commit go ahead */
}

/* ---- pending changes ---- */

static uint64_t pend_hash(const struct store *s, enum pend_kind kind, const uint8_t *pk,
                          const char *type, size_t tlen)
{
    uint8_t key[STORE_PK_LEN + STORE_TYPE_MAX];
    assert(tlen <= STORE_TYPE_MAX);
    memcpy(key, pk, STORE_PK_LEN);
    if (tlen)
        memcpy(key + STORE_PK_LEN, type, tlen);
    return XXH3_64bits_withSeed(key, STORE_PK_LEN + tlen, s->seed + (uint64_t)kind);
}

static const uint8_t *pend_pk(const struct pend *e)
{
    return e->kind == PEND_PEER ? e->u.peer.pk : e->u.speed.pk;
}

static size_t pend_slot(const struct store *s, uint64_t hash)
{
    return (size_t)(hash & (s->nbuckets - 1));
}

static struct pend *pend_find(const struct store *s, enum pend_kind kind, const uint8_t *pk,
                              const char *type, size_t tlen, uint64_t hash)
{
    for (struct pend *e = s->tab[pend_slot(s, hash)]; e != NULL; e = e->hnext) {
        if (e->hash != hash || e->kind != kind || memcmp(pend_pk(e), pk, STORE_PK_LEN) != 0)
            continue;
        if (kind == PEND_SPEED &&
            (strlen(e->u.speed.type) != tlen || memcmp(e->u.speed.type, type, tlen) != 0))
            continue;
        return e;
    }
    return NULL;
}

/* Doubles the bucket array, keeping the load at most 3/4. */
static void pend_grow(struct store *s)
{
    size_t nb = s->nbuckets * 2;
    struct pend **tab = xcalloc(nb, sizeof(*tab));
    for (size_t i = 0; i < s->nbuckets; i++) {
        struct pend *e = s->tab[i];
        while (e != NULL) {
            struct pend *next = e->hnext;
            size_t j = (size_t)(e->hash & (nb - 1));
            e->hnext = tab[j];
            tab[j] = e;
            e = next;
        }
    }
    free(s->tab);
    s->tab = tab;
    s->nbuckets = nb;
}

/* Returns the pending change of this key, adding an empty one if none. */
static struct pend *pend_get(struct store *s, enum pend_kind kind, const uint8_t *pk,
                             const char *type, size_t tlen)
{
    assert(!s->walking);
    uint64_t hash = pend_hash(s, kind, pk, type, tlen);
    struct pend *e = pend_find(s, kind, pk, type, tlen, hash);
    if (e != NULL)
        return e;
    if ((s->npend + 1) * 4 > s->nbuckets * 3)
        pend_grow(s);
    e = xcalloc(1, sizeof(*e));
    e->kind = kind;
    e->hash = hash;
    if (kind == PEND_PEER) {
        memcpy(e->u.peer.pk, pk, STORE_PK_LEN);
    } else {
        memcpy(e->u.speed.pk, pk, STORE_PK_LEN);
        memcpy(e->u.speed.type, type, tlen); /* NUL-terminated by xcalloc */
    }
    size_t slot = pend_slot(s, hash);
    e->hnext = s->tab[slot];
    s->tab[slot] = e;
    list_push_back(&s->dirty, &e->dirty);
    s->npend++;
    return e;
}

static void pend_clear(struct store *s)
{
    struct list_node *n;
    while ((n = list_pop_front(&s->dirty)) != NULL)
        free(list_entry(n, struct pend, dirty));
    memset(s->tab, 0, s->nbuckets * sizeof(*s->tab));
    s->npend = 0;
}

/* ---- rows ---- */

/* u64 fields travel as int64 with the same bits (see store.h). */
static void bind_u64(sqlite3_stmt *st, int i, uint64_t v) { sqlite3_bind_int64(st, i, (sqlite3_int64)v); }
static uint64_t col_u64(sqlite3_stmt *st, int i) { return (uint64_t)sqlite3_column_int64(st, i); }

/* Copies a TEXT column into dst (cap bytes, NUL-terminated).  The schema's
 * CHECK constraints keep stored values within cap - 1 bytes; the cut only
 * guards the array. */
static void col_text(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    size_t len = t != NULL ? (size_t)sqlite3_column_bytes(st, i) : 0;
    if (len > cap - 1)
        len = cap - 1;
    if (len)
        memcpy(dst, t, len);
    dst[len] = '\0';
}

static int peer_bind_run(struct store *s, const struct store_peer *p)
{
    sqlite3_stmt *st = s->st[ST_PEER_PUT];
    sqlite3_bind_blob(st, 1, p->pk, STORE_PK_LEN, SQLITE_STATIC);
    bind_u64(st, 2, p->first_seen_ms);
    bind_u64(st, 3, p->last_seen_ms);
    bind_u64(st, 4, p->verified);
    bind_u64(st, 5, p->disagreements);
    bind_u64(st, 6, p->strikes);
    bind_u64(st, 7, p->quarantines);
    bind_u64(st, 8, p->quarantined_until_ms);
    sqlite3_bind_int(st, 9, p->banned);
    sqlite3_bind_int(st, 10, p->pinned);
    sqlite3_bind_text(st, 11, p->group, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 12, p->name, -1, SQLITE_STATIC);
    bind_u64(st, 13, p->good);
    bind_u64(st, 14, p->lies);
    return store_run(s, st);
}

/* Reads a row of PEER_COLS into *out.  EPROTO for a key of the wrong size,
 * which the schema's CHECK forbids: only damage could store one. */
static int peer_read(struct store *s, sqlite3_stmt *st, struct store_peer *out)
{
    if (sqlite3_column_bytes(st, 0) != (int)STORE_PK_LEN) {
        snprintf(s->errmsg, sizeof(s->errmsg), "a peers row has a key of %d bytes",
                 sqlite3_column_bytes(st, 0));
        return P2C2R_EPROTO;
    }
    memset(out, 0, sizeof(*out));
    memcpy(out->pk, sqlite3_column_blob(st, 0), STORE_PK_LEN);
    out->first_seen_ms = col_u64(st, 1);
    out->last_seen_ms = col_u64(st, 2);
    out->verified = col_u64(st, 3);
    out->disagreements = col_u64(st, 4);
    out->strikes = col_u64(st, 5);
    out->quarantines = col_u64(st, 6);
    out->quarantined_until_ms = col_u64(st, 7);
    out->banned = sqlite3_column_int(st, 8) != 0;
    out->pinned = sqlite3_column_int(st, 9) != 0;
    col_text(st, 10, out->group, sizeof(out->group));
    col_text(st, 11, out->name, sizeof(out->name));
    out->good = col_u64(st, 12);
    out->lies = col_u64(st, 13);
    return 0;
}

static int speed_bind_run(struct store *s, const struct pend_speed *sp)
{
    sqlite3_stmt *st = s->st[ST_SPEED_PUT];
    sqlite3_bind_blob(st, 1, sp->pk, STORE_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, sp->type, -1, SQLITE_STATIC);
    bind_u64(st, 3, sp->exec_us);
    return store_run(s, st);
}

/* ---- open and close ---- */

static int store_mkdir(const char *dir, char *err, size_t errcap)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    int e = errno;
    struct stat sb;
    if (e == EEXIST && stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))
        return 0;
    if (e == EEXIST) {
        errf(err, errcap, "store: %s exists and is not a directory: give a directory for the state",
             dir);
        return P2C2R_EINVAL;
    }
    errf(err, errcap, "store: cannot create the state directory %s: %s", dir, strerror(e));
    return P2C2R_EIO;
}

/* Decides, without writing anything, whether the file is ours (at a version
 * this build knows), new, or one to refuse. */
static int store_check_identity(struct store *s, const char *path, int nsteps, char *err,
                                size_t errcap)
{
    int64_t appid, version, nobjects;
    int rc = store_query_int(s, "PRAGMA application_id", &appid);
    if (rc == 0)
        rc = store_query_int(s, "PRAGMA user_version", &version);
    if (rc == 0)
        rc = store_query_int(s, "SELECT count(*) FROM sqlite_schema", &nobjects);
    if (rc == P2C2R_EPROTO) {
        errf(err, errcap,
             "store: %s is not a SQLite database or is damaged (%s): refusing to open or replace "
             "it; move it aside or restore a backup",
             path, s->errmsg);
        return rc;
    }
    if (rc != 0) {
        errf(err, errcap, "store: cannot read %s: %s", path, s->errmsg);
        return rc;
    }
    if (appid == 0 && version == 0 && nobjects == 0) {
        s->n.version_found = 0; /* a new file (or an empty one): ours to create */
        return 0;
    }
    if (appid != STORE_APPLICATION_ID) {
        errf(err, errcap,
             "store: %s is a SQLite database of another program (application_id 0x%08" PRIx32
             ", %" PRId64 " schema objects, not p2c2r's 0x%08x): refusing to touch it; give "
             "the coordinator a state directory of its own",
             path, (uint32_t)appid, nobjects, STORE_APPLICATION_ID);
        return P2C2R_EINVAL;
    }
    if (version > nsteps) {
        errf(err, errcap,
             "store: %s has schema version %" PRId64 ", newer than this build's %d (a newer "
             "p2c2r wrote it): refusing to open it; run that p2c2r, or restore a backup made by "
             "this one",
             path, version, nsteps);
        return P2C2R_EVERSION;
    }
    if (version < 0) {
        errf(err, errcap, "store: %s has a negative schema version %" PRId64
                          ": refusing to open it; restore a backup", path, version);
        return P2C2R_EPROTO;
    }
    s->n.version_found = (int)version;
    return 0;
}

/* PRAGMA quick_check: the b-tree checks of integrity_check without the
 * index-to-table cross-checks; O(size of the file). */
static int store_quick_check(struct store *s, const char *path, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (r == NULL || strcmp(r, "ok") != 0) {
            snprintf(s->errmsg, sizeof(s->errmsg), "%s", r != NULL ? r : "no result");
            code = P2C2R_EPROTO;
        }
    } else {
        code = store_fail(s, rc);
    }
    sqlite3_finalize(st);
    if (code == P2C2R_EPROTO)
        errf(err, errcap,
             "store: %s failed its integrity check (%s): refusing to open it; move it aside or "
             "restore a backup",
             path, s->errmsg);
    else if (code != 0)
        errf(err, errcap, "store: cannot check %s: %s", path, s->errmsg);
    return code;
}

/* Applies the steps from the file's version up to nsteps in one transaction
 * with the new version and the application_id, so a failed step leaves the
 * file as it was. */
static int store_migrate(struct store *s, const struct store_migration *extra, size_t nextra,
                         int nsteps, const char *path, char *err, size_t errcap)
{
    if (s->n.version_found == nsteps)
        return 0;
    int rc = store_exec(s, "BEGIN IMMEDIATE");
    if (rc != 0) {
        errf(err, errcap, "store: cannot migrate %s: %s", path, s->errmsg);
        return rc;
    }
    /* Another process may have migrated it since the check. */
    int64_t version;
    rc = store_query_int(s, "PRAGMA user_version", &version);
    if (rc != 0) {
        errf(err, errcap, "store: cannot read %s: %s", path, s->errmsg);
        goto rollback;
    }
    if (version < 0 || version > nsteps) {
        errf(err, errcap, "store: %s changed to schema version %" PRId64 " while opening it",
             path, version);
        rc = P2C2R_EVERSION;
        goto rollback;
    }
    for (int v = (int)version; v < nsteps; v++) {
        size_t nb = ARRAY_LEN(store_builtin);
        const struct store_migration *m =
            (size_t)v < nb ? &store_builtin[v] : &extra[(size_t)v - nb];
        rc = store_exec(s, m->sql);
        if (rc != 0) {
            errf(err, errcap,
                 "store: migrating %s from schema version %d to %d (%s) failed: %s; the file "
                 "is unchanged",
                 path, v, v + 1, m->what, s->errmsg);
            goto rollback;
        }
    }
    assert((size_t)nsteps == ARRAY_LEN(store_builtin) + nextra);
    (void)nextra;
    char sql[96];
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d", nsteps,
             STORE_APPLICATION_ID);
    rc = store_exec(s, sql);
    if (rc == 0)
        rc = store_exec(s, "COMMIT");
    if (rc != 0) {
        errf(err, errcap, "store: cannot migrate %s: %s", path, s->errmsg);
        goto rollback;
    }
    return 0;
rollback:
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/* Finalizes the statements and closes the connection, without flushing. */
static void store_free(struct store *s)
{
    for (size_t i = 0; i < ST_N; i++)
        sqlite3_finalize(s->st[i]);
    if (s->db != NULL) {
        int rc = sqlite3_close(s->db);
        assert(rc == SQLITE_OK); /* every statement is finalized */
        (void)rc;
    }
    if (s->tab != NULL)
        pend_clear(s);
    free(s->tab);
    free(s);
}

int store_open_ext(const char *dir, const struct store_migration *extra, size_t nextra,
                   struct store **out, char *err, size_t errcap)
{
    assert(dir != NULL && out != NULL && (extra != NULL || nextra == 0));
    errf(err, errcap, "%s", "");
    if (nextra > (size_t)(INT_MAX - STORE_SCHEMA_VERSION))
        return P2C2R_EINVAL;
    int nsteps = STORE_SCHEMA_VERSION + (int)nextra;
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE) >= (int)sizeof(path)) {
        errf(err, errcap, "store: the state directory's path is too long: %s", dir);
        return P2C2R_EINVAL;
    }
    int rc = store_mkdir(dir, err, errcap);
    if (rc != 0)
        return rc;

    struct store *s = xcalloc(1, sizeof(*s));
    list_init(&s->dirty);
    s->nbuckets = STORE_MIN_BUCKETS;
    s->tab = xcalloc(s->nbuckets, sizeof(*s->tab));
    if (getrandom(&s->seed, sizeof(s->seed), GRND_NONBLOCK) != (ssize_t)sizeof(s->seed))
        s->seed = now_ns() ^ (uint64_t)(uintptr_t)s;

    int src = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src != SQLITE_OK) {
        rc = s->db != NULL ? store_fail(s, src) : P2C2R_ENOMEM;
        errf(err, errcap, "store: cannot open %s: %s", path,
             s->db != NULL ? s->errmsg : "out of memory");
        if (rc == P2C2R_EAGAIN || rc == P2C2R_EPROTO)
            rc = P2C2R_EIO;
        goto fail;
    }
    /* SQLite opens a write-protected file read-only without a word; every
     * flush would then fail. */
    if (sqlite3_db_readonly(s->db, "main") == 1) {
        errf(err, errcap, "store: %s is read-only: give the coordinator write access to it",
             path);
        rc = P2C2R_EIO;
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, STORE_BUSY_MS);
    sqlite3_commit_hook(s->db, store_on_commit, s);

    /* Nothing is written before the file is known to be ours or new. */
    rc = store_check_identity(s, path, nsteps, err, errcap);
    if (rc == 0)
        rc = store_quick_check(s, path, err, errcap);
    if (rc != 0)
        goto fail;

    /* WAL: readers (a backup, the sqlite3 tool) do not block the writer, and
     * a commit appends to the log instead of rewriting pages in place.
     * synchronous=NORMAL: a commit is not fsynced, only checkpoints are.  In
     * WAL mode this is still durable across a crash of the process (the log
     * is in the OS's page cache and is replayed at the next open) and never
     * corrupts the file; a power loss or a kernel crash can lose the last
     * commits before a checkpoint, which for state written every 200 ms
     * anyway costs about as much as the unflushed changes do.  FULL would put
     * an fsync on the event loop at every flush. */
    sqlite3_stmt *st;
    src = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (src == SQLITE_OK)
        src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp(mode, "wal") != 0) {
            errf(err, errcap, "store: %s cannot use WAL mode (journal_mode %s): put the state "
                              "directory on a local file system", path, mode ? mode : "?");
            rc = P2C2R_EIO;
        }
    } else {
        rc = store_fail(s, src);
        errf(err, errcap, "store: cannot switch %s to WAL mode: %s", path, s->errmsg);
    }
    sqlite3_finalize(st);
    if (rc == 0 && (rc = store_exec(s, "PRAGMA synchronous = NORMAL")) != 0)
        errf(err, errcap, "store: cannot set synchronous on %s: %s", path, s->errmsg);
    if (rc != 0)
        goto fail;

    rc = store_migrate(s, extra, nextra, nsteps, path, err, errcap);
    if (rc != 0)
        goto fail;
    s->n.version = nsteps;

    for (size_t i = 0; i < ST_N; i++) {
        src = sqlite3_prepare_v3(s->db, store_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                 NULL);
        if (src != SQLITE_OK) {
            rc = store_fail(s, src);
            errf(err, errcap, "store: %s: cannot prepare a statement: %s", path, s->errmsg);
            goto fail;
        }
    }
    s->errmsg[0] = '\0';
    *out = s;
    return 0;
fail:
    store_free(s);
    return rc;
}

int store_lock(const char *dir, int *fd, char *err, size_t errcap)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/p2c2r.lock", dir) >= (int)sizeof(path)) {
        errf(err, errcap, "store: the state directory's path is too long: %s", dir);
        return P2C2R_EINVAL;
    }
    int rc = store_mkdir(dir, err, errcap);
    if (rc != 0)
        return rc;
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0) {
        errf(err, errcap, "store: cannot open %s: %s", path, strerror(errno));
        return P2C2R_EIO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK) {
            errf(err, errcap, "store: %s is locked: a p2c2rd (or an edit) is using the state "
                              "directory %s; stop it first", path, dir);
            return P2C2R_EAGAIN;
        }
        errf(err, errcap, "store: cannot lock %s: %s", path, strerror(e));
        return P2C2R_EIO;
    }
    *fd = f;
    return 0;
}

void store_unlock(int fd)
{
    if (fd >= 0)
        close(fd);
}

int store_open(const char *dir, struct store **out, char *err, size_t errcap)
{
    return store_open_ext(dir, NULL, 0, out, err, errcap);
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    assert(!s->walking);
    (void)store_flush(s);
    store_free(s);
}

/* ---- flush ---- */

int store_flush(struct store *s)
{
    assert(!s->walking);
    if (list_empty(&s->dirty))
        return 0;
    uint64_t rows = 0;
    int rc = store_run(s, s->st[ST_BEGIN]);
    for (struct list_node *n = s->dirty.next; rc == 0 && n != &s->dirty; n = n->next) {
        const struct pend *e = list_entry(n, struct pend, dirty);
        rc = e->kind == PEND_PEER ? peer_bind_run(s, &e->u.peer) : speed_bind_run(s, &e->u.speed);
        rows++;
    }
    if (rc == 0)
        rc = store_run(s, s->st[ST_COMMIT]);
    if (rc != 0) {
        /* A failed COMMIT may leave the transaction open (SQLITE_BUSY) or
         * have rolled it back already (SQLITE_FULL). */
        if (!sqlite3_get_autocommit(s->db)) {
            sqlite3_step(s->st[ST_ROLLBACK]);
            sqlite3_reset(s->st[ST_ROLLBACK]);
        }
        s->n.flush_errors++;
        return rc;
    }
    s->n.flushes++;
    s->n.rows_flushed += rows;
    pend_clear(s);
    return 0;
}

/* ---- peers ---- */

static int peer_valid(const struct store_peer *p)
{
    return memchr(p->group, '\0', sizeof(p->group)) != NULL &&
           memchr(p->name, '\0', sizeof(p->name)) != NULL && p->banned <= 1 && p->pinned <= 1;
}

int store_peer_put(struct store *s, const struct store_peer *p)
{
    if (!peer_valid(p))
        return P2C2R_EINVAL;
    pend_get(s, PEND_PEER, p->pk, NULL, 0)->u.peer = *p;
    return 0;
}

int store_peer_get(struct store *s, const uint8_t pk[STORE_PK_LEN], struct store_peer *out)
{
    const struct pend *e = pend_find(s, PEND_PEER, pk, NULL, 0, pend_hash(s, PEND_PEER, pk, NULL, 0));
    if (e != NULL) {
        *out = e->u.peer;
        return 0;
    }
    sqlite3_stmt *st = s->st[ST_PEER_GET];
    sqlite3_bind_blob(st, 1, pk, STORE_PK_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int code;
    struct store_peer p;
    if (rc == SQLITE_ROW)
        code = peer_read(s, st, &p);
    else
        code = rc == SQLITE_DONE ? P2C2R_ENOTFOUND : store_fail(s, rc);
    sqlite3_reset(st);
    if (code == 0)
        *out = p;
    return code;
}

/* Reads pk's record for an operator's edit; an unknown key starts empty. */
static int peer_get_or_new(struct store *s, const uint8_t pk[STORE_PK_LEN], struct store_peer *p)
{
    int rc = store_peer_get(s, pk, p);
    if (rc == P2C2R_ENOTFOUND) {
        memset(p, 0, sizeof(*p));
        memcpy(p->pk, pk, STORE_PK_LEN);
        rc = 0;
    }
    return rc;
}

int store_peer_set_banned(struct store *s, const uint8_t pk[STORE_PK_LEN], int banned)
{
    struct store_peer p;
    int rc = peer_get_or_new(s, pk, &p);
    if (rc != 0)
        return rc;
    p.banned = banned != 0;
    return store_peer_put(s, &p);
}

int store_peer_set_pinned(struct store *s, const uint8_t pk[STORE_PK_LEN], int pinned)
{
    struct store_peer p;
    int rc = peer_get_or_new(s, pk, &p);
    if (rc != 0)
        return rc;
    p.pinned = pinned != 0;
    return store_peer_put(s, &p);
}

int store_peer_set_group(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *group)
{
    size_t len = strnlen(group, STORE_GROUP_MAX + 1);
    if (len > STORE_GROUP_MAX)
        return P2C2R_EINVAL;
    struct store_peer p;
    int rc = peer_get_or_new(s, pk, &p);
    if (rc != 0)
        return rc;
    memset(p.group, 0, sizeof(p.group));
    memcpy(p.group, group, len);
    return store_peer_put(s, &p);
}

int store_peer_each(struct store *s, int (*fn)(void *arg, const struct store_peer *p), void *arg)
{
    assert(!s->walking);
    uint64_t walk = ++s->walk;
    sqlite3_stmt *st = s->st[ST_PEER_ALL];
    int r = 0, rc;
    s->walking = 1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct store_peer p;
        r = peer_read(s, st, &p);
        if (r != 0)
            break;
        struct pend *e = pend_find(s, PEND_PEER, p.pk, NULL, 0, pend_hash(s, PEND_PEER, p.pk, NULL, 0));
        if (e != NULL)
            e->walk = walk;
        r = fn(arg, e != NULL ? &e->u.peer : &p);
        if (r != 0)
            break;
    }
    if (r == 0 && rc != SQLITE_DONE)
        r = store_fail(s, rc);
    sqlite3_reset(st);
    for (struct list_node *n = s->dirty.next; r == 0 && n != &s->dirty; n = n->next) {
        const struct pend *e = list_entry(n, struct pend, dirty);
        if (e->kind == PEND_PEER && e->walk != walk)
            r = fn(arg, &e->u.peer);
    }
    s->walking = 0;
    return r;
}

/* ---- speeds ---- */

static int type_len(const char *type, size_t *len)
{
    if (type == NULL)
        return P2C2R_EINVAL;
    *len = strnlen(type, STORE_TYPE_MAX + 1);
    return *len >= 1 && *len <= STORE_TYPE_MAX ? 0 : P2C2R_EINVAL;
}

int store_speed_put(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *type,
                    uint64_t exec_us)
{
    size_t tlen;
    if (type_len(type, &tlen) != 0)
        return P2C2R_EINVAL;
    pend_get(s, PEND_SPEED, pk, type, tlen)->u.speed.exec_us = exec_us;
    return 0;
}

int store_speed_types(struct store *s, size_t max, int (*fn)(void *arg, const char *type), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT DISTINCT type FROM peer_speed LIMIT ?1", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return store_fail(s, rc);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
    int code = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        if (type && fn(arg, type) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = store_fail(s, rc);
    sqlite3_finalize(st);
    return code;
}

int store_speed_get(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *type,
                    uint64_t *exec_us)
{
    size_t tlen;
    if (type_len(type, &tlen) != 0)
        return P2C2R_EINVAL;
    const struct pend *e =
        pend_find(s, PEND_SPEED, pk, type, tlen, pend_hash(s, PEND_SPEED, pk, type, tlen));
    if (e != NULL) {
        *exec_us = e->u.speed.exec_us;
        return 0;
    }
    sqlite3_stmt *st = s->st[ST_SPEED_GET];
    sqlite3_bind_blob(st, 1, pk, STORE_PK_LEN, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, type, (int)tlen, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int code = 0;
    if (rc == SQLITE_ROW)
        *exec_us = col_u64(st, 0);
    else
        code = rc == SQLITE_DONE ? P2C2R_ENOTFOUND : store_fail(s, rc);
    sqlite3_reset(st);
    return code;
}

/* ---- backup ---- */

/* Makes a new directory entry durable: fsync of the directory holding path. */
static void fsync_parent(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int store_backup(struct store *s, const char *path, char *err, size_t errcap)
{
    errf(err, errcap, "%s", "");
    int rc = store_flush(s);
    if (rc != 0) {
        errf(err, errcap, "store: backup not made: writing the pending changes failed: %s",
             s->errmsg);
        return rc;
    }
    return store_backup_db(s->db, path, err, errcap);
}

int store_backup_db(sqlite3 *db, const char *path, char *err, size_t errcap)
{
    errf(err, errcap, "%s", "");
    struct stat sb;
    if (lstat(path, &sb) == 0) {
        errf(err, errcap, "store: %s exists: a backup never replaces a file; remove it or give "
                          "another path", path);
        return P2C2R_EINVAL;
    }
    if (errno != ENOENT) {
        errf(err, errcap, "store: cannot write a backup to %s: %s", path, strerror(errno));
        return P2C2R_EIO;
    }
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errf(err, errcap, "store: the backup path is too long: %s", path);
        return P2C2R_EINVAL;
    }
    /* A stale copy from a backup that died half-way. */
    (void)unlink(tmp);

    int rc = 0;
    char msg[256] = "";
    sqlite3 *dst = NULL;
    int src = sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (src == SQLITE_OK) {
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", db, "main");
        if (b != NULL) {
            /* Steps of 256 pages: another process's copy (p2c2r backup)
             * does not hold one read snapshot for the whole of a large
             * file; a write meanwhile restarts the copy, so it is one
             * consistent commit. */
            while ((src = sqlite3_backup_step(b, 256)) == SQLITE_OK || src == SQLITE_BUSY ||
                   src == SQLITE_LOCKED)
                if (src != SQLITE_OK)
                    sqlite3_sleep(1);
            int fin = sqlite3_backup_finish(b);
            if (src == SQLITE_DONE)
                src = fin;
        } else {
            src = sqlite3_errcode(dst);
        }
    }
    if (src != SQLITE_OK) {
        snprintf(msg, sizeof(msg), "%s", dst != NULL ? sqlite3_errmsg(dst) : "out of memory");
        rc = store_code(src);
    }
    if (dst != NULL && sqlite3_close(dst) != SQLITE_OK && rc == 0) {
        snprintf(msg, sizeof(msg), "%s", sqlite3_errmsg(dst));
        rc = P2C2R_EIO;
    }
    if (rc != 0) {
        errf(err, errcap, "store: backup to %s failed: %s", tmp, msg);
        (void)unlink(tmp);
        return rc;
    }
    /* link, unlike rename, refuses to replace a file created meanwhile. */
    if (link(tmp, path) != 0) {
        int e = errno;
        (void)unlink(tmp);
        errf(err, errcap, "store: cannot put the backup at %s: %s", path, strerror(e));
        return e == EEXIST ? P2C2R_EINVAL : P2C2R_EIO;
    }
    (void)unlink(tmp);
    fsync_parent(path);
    return 0;
}

const char *store_last_error(const struct store *s) { return s->errmsg; }

sqlite3 *store_sqlite(struct store *s) { return s->db; }

int store_open_readonly(const char *dir, int min_version, sqlite3 **out, char *err, size_t errcap)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof(path), "%s/%s", dir, STORE_FILE) >= (int)sizeof(path)) {
        errf(err, errcap, "store: the state directory's path is too long: %s", dir);
        return P2C2R_EINVAL;
    }
    struct stat sb;
    if (stat(path, &sb) != 0) {
        errf(err, errcap, "no state database at %s: is DIR the one p2c2rd runs with --state?", path);
        return P2C2R_ENOTFOUND;
    }
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        errf(err, errcap, "cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return P2C2R_EIO;
    }
    sqlite3_busy_timeout(db, 2000);
    int64_t appid = -1, version = -1;
    int rc = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA application_id", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        appid = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (appid < 0 || version < 0) {
        errf(err, errcap, "%s is not a SQLite database or is damaged (%s): refusing to read it", path,
             sqlite3_errmsg(db));
        rc = P2C2R_EPROTO;
    } else if (appid != STORE_APPLICATION_ID) {
        errf(err, errcap, "%s is not a p2c2r state database (application_id 0x%08" PRIx32 "): refusing to read it",
             path, (uint32_t)appid);
        rc = P2C2R_EINVAL;
    } else if (version < min_version) {
        errf(err, errcap, "%s has schema version %" PRId64 ", older than the %d this needs: start p2c2rd on it once "
                          "to migrate it", path, version, min_version);
        rc = P2C2R_EVERSION;
    }
    if (rc != 0) {
        sqlite3_close(db);
        return rc;
    }
    *out = db;
    return 0;
}

int store_fail_note(struct store *s, int rc)
{
    return store_fail(s, rc);
}

void store_stats(const struct store *s, struct store_stats *out)
{
    *out = s->n;
    out->pending = s->npend;
}
