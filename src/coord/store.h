/* store.h - the coordinator's persistent state: one SQLite database,
 * DIR/p2c2r.db, holding what must survive a restart (DESIGN.md decision 10).
 * Its first tables are peer reputation, keyed by the peer's 32-byte Ed25519
 * public key (decision 8), and each peer's measured speed per task type.
 *
 * Group commit: a put records the change in memory and returns at once;
 * store_flush writes every pending change in one transaction.  The
 * coordinator calls it on a timer (e.g. every 200 ms) and at shutdown, so a
 * put never waits on the disk and a crash loses at most the changes made
 * since the last successful flush.  Reads see pending changes.
 *
 * The store is not the coordinator's source of truth while it runs: the
 * coordinator keeps its own records, loads them with store_peer_each at start
 * and puts a whole record whenever one changes.  A put replaces the record.
 *
 * Timestamps (*_ms) are wall-clock milliseconds since the Unix epoch: a
 * monotonic clock does not survive a restart.  Unsigned 64-bit fields are
 * stored as SQLite's signed INTEGER with the same bits, so every value reads
 * back exactly (values above INT64_MAX look negative to SQL queries).
 *
 * Errors: 0 or a negative P2C2R_E* code.  The store adds no codes of its own:
 *   P2C2R_EPROTO    the file is not a SQLite database or is corrupt
 *   P2C2R_EINVAL    a bad argument, or a SQLite database of another program
 *   P2C2R_EVERSION  a schema newer than this build knows (a downgrade)
 *   P2C2R_EAGAIN    another process holds the database lock: try again
 *   P2C2R_EIO       a disk error: full, read-only, cannot open, I/O error
 *   P2C2R_ENOMEM    SQLite ran out of memory
 * store_last_error says what SQLite said about the last failure.
 *
 * Thread context: a store belongs to one thread (the coordinator's loop) and
 * has no locks.  Other processes may read the database (sqlite3, a backup)
 * while the coordinator runs.  Allocation failure of the store's own
 * memory aborts, as everywhere in the daemon. */
#ifndef P2C2R_STORE_H
#define P2C2R_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_PK_LEN 32u
#define STORE_GROUP_MAX 32u /* bytes of a group name, the NUL not counted */
#define STORE_NAME_MAX 64u  /* bytes of a peer's name (its HELLO name) */
#define STORE_TYPE_MAX 32u  /* bytes of a task type name (PROTO_MAX_TYPE_NAME) */

/* "P2CR", in PRAGMA application_id: marks the file as ours, so the store
 * never mistakes another program's SQLite database for an empty one. */
#define STORE_APPLICATION_ID 0x50324352

/* The schema version this build creates and migrates to (PRAGMA
 * user_version): the number of built-in migration steps. */
#define STORE_SCHEMA_VERSION 4

/* Everything the coordinator remembers about one peer across restarts.
 * group and name are NUL-terminated; a put refuses them otherwise. */
struct store_peer {
    uint8_t pk[STORE_PK_LEN]; /* the peer's Ed25519 public key: the record's key */
    uint64_t first_seen_ms, last_seen_ms;
    uint64_t good;          /* results counted good (not contradicted; verified or not) */
    uint64_t verified;      /* results that verification accepted */
    uint64_t lies;          /* results verification proved wrong */
    uint64_t disagreements; /* results that disagreed with the accepted one */
    uint64_t strikes;       /* circuit-breaker strikes */
    uint64_t quarantines;   /* times the breaker quarantined it */
    uint64_t quarantined_until_ms; /* 0: not quarantined */
    uint8_t banned, pinned; /* 0 or 1: set by the operator */
    char group[STORE_GROUP_MAX + 1]; /* operator-assigned group; "" for none */
    char name[STORE_NAME_MAX + 1];   /* last name it gave at HELLO */
};

/* One step of the schema: SQL that takes version N (its index in the table)
 * to N + 1.  Applied in one transaction with the version bump, so a
 * database is always at a version, never between two.  A step, once
 * released, never changes: a later change is a new step. */
struct store_migration {
    const char *what; /* what it adds, for error messages */
    const char *sql;  /* one or more statements */
};

struct store_stats {
    int version_found; /* the schema version at open (0: a new file) */
    int version;       /* the schema version now */
    uint64_t commits;  /* transactions committed on the connection (SQLite's commit hook) */
    uint64_t flushes;  /* flushes that wrote something; each is one of the commits */
    uint64_t flush_errors; /* flushes that failed (their changes stay pending) */
    uint64_t rows_flushed; /* rows written by flushes */
    uint64_t pending;  /* changes recorded and not yet written */
};

struct store;

/* Opens DIR/p2c2r.db, creating DIR (mode 0700) and the database when they
 * are missing, and brings the schema up to STORE_SCHEMA_VERSION.  Refuses,
 * leaving the file untouched: a file that is not a SQLite database or fails
 * PRAGMA quick_check (EPROTO), a SQLite database with another application_id
 * or, without one, with tables of its own (EINVAL), a schema newer than this
 * build (EVERSION).  On failure writes a sentence saying what was wrong and
 * what to do into err (errcap bytes, NUL-terminated; err may be NULL when
 * errcap is 0).  Borrows dir for the call.  *out is set only on success. */
int store_open(const char *dir, struct store **out, char *err, size_t errcap);

/* store_open with nextra migration steps registered after the built-in
 * ones, so the schema goes up to STORE_SCHEMA_VERSION + nextra.  For tests
 * of the migration mechanism; borrows extra for the call. */
int store_open_ext(const char *dir, const struct store_migration *extra, size_t nextra,
                   struct store **out, char *err, size_t errcap);

/* Takes an exclusive advisory lock (flock) on DIR/p2c2r.lock, creating DIR
 * (0700) and the file (0600) when missing, so that one process at a time
 * owns DIR's records: p2c2rd for as long as it runs, an operator's offline
 * edit (`p2c2r peers --state DIR --ban ...`) for its duration.  Without it
 * the coordinator, which puts whole records from memory, would overwrite
 * an edit made while it runs.  Readers need no lock.  Returns 0 with *fd
 * set (release with store_unlock; the lock also ends with the process),
 * P2C2R_EAGAIN when another process holds it, or P2C2R_EIO; err gets the
 * reason. */
int store_lock(const char *dir, int *fd, char *err, size_t errcap);
/* Releases a lock from store_lock.  A negative fd is a no-op. */
void store_unlock(int fd);

/* Flushes, then closes.  A failed final flush is lost: call store_flush
 * first to see its result.  NULL is a no-op. */
void store_close(struct store *s);

/* Writes every pending change in one transaction.  Returns 0 (also with
 * nothing pending), or an error: then nothing was written, every change
 * stays pending for the next flush, and the caller logs it and carries on
 * (a full disk must not stop the coordinator).  Pending memory is bounded by
 * the number of distinct records changed, not by the number of puts.  With
 * synchronous=NORMAL a commit does not fsync, so a flush costs writes to
 * the page cache, plus an occasional WAL checkpoint. */
int store_flush(struct store *s);

/* Copies the record of pk into *out.  Returns 0, or P2C2R_ENOTFOUND (no
 * such peer), or an error reading the database. */
int store_peer_get(struct store *s, const uint8_t pk[STORE_PK_LEN], struct store_peer *out);

/* Records *p (borrowed for the call) as the whole record of p->pk, written
 * at the next flush.  Returns 0, or P2C2R_EINVAL when group or name are not
 * NUL-terminated within their arrays or banned or pinned is not 0 or 1. */
int store_peer_put(struct store *s, const struct store_peer *p);

/* The operator's edits: read the record (pending changes included), change
 * one field, put it back.  An unknown key gets a new record with every other
 * field zero, so a key can be banned before it ever connects.  group is a
 * NUL-terminated string of at most STORE_GROUP_MAX bytes.  Returns 0 or an
 * error of store_peer_get (other than ENOTFOUND) or of store_peer_put. */
int store_peer_set_banned(struct store *s, const uint8_t pk[STORE_PK_LEN], int banned);
int store_peer_set_pinned(struct store *s, const uint8_t pk[STORE_PK_LEN], int pinned);
int store_peer_set_group(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *group);

/* Calls fn once for every peer, pending changes included: written records
 * in key order, then those only pending.  *p is valid until fn returns; fn
 * may read the store but must not change it (put, flush, close).  A nonzero return of fn stops the walk and
 * is returned; otherwise returns 0 or an error reading the database. */
int store_peer_each(struct store *s, int (*fn)(void *arg, const struct store_peer *p), void *arg);

/* Records exec_us as the measured execution time (an EWMA the caller keeps)
 * of task type `type` (NUL-terminated, 1..STORE_TYPE_MAX bytes) on peer pk,
 * written at the next flush.  Returns 0 or P2C2R_EINVAL for a bad type. */
int store_speed_put(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *type,
                    uint64_t exec_us);

/* Sets *exec_us to the recorded time of `type` on pk.  Returns 0,
 * P2C2R_ENOTFOUND, P2C2R_EINVAL for a bad type, or a read error. */
int store_speed_get(struct store *s, const uint8_t pk[STORE_PK_LEN], const char *type,
                    uint64_t *exec_us);

/* Calls fn(arg, type) for each task type some peer has a recorded time
 * for (at most max of them), until fn returns non-zero.  Returns 0 or a
 * read error. */
int store_speed_types(struct store *s, size_t max, int (*fn)(void *arg, const char *type), void *arg);

/* Flushes, then copies the database to a new file at path with SQLite's
 * online backup, through path.tmp and a link, so path never holds half a
 * copy.  Refuses when path exists (EINVAL): a backup never replaces a file.
 * A failed flush fails the backup.  Copies everything in one step, which
 * takes milliseconds at the size of today's tables; larger tables would
 * want incremental steps between loop iterations.  Writes the reason into
 * err on failure (as store_open). */
int store_backup(struct store *s, const char *path, char *err, size_t errcap);
/* The copy alone, from any open SQLite connection (p2c2r backup reads the
 * database of a running coordinator read-only), in steps of 256 pages. */
struct sqlite3;
int store_backup_db(struct sqlite3 *db, const char *path, char *err, size_t errcap);

/* SQLite's message for the last failure on s ("database or disk is full"),
 * or "" when there was none.  Valid until the next call on s. */
const char *store_last_error(const struct store *s);

void store_stats(const struct store *s, struct store_stats *out);

/* The store's SQLite connection, for the modules that keep tables of their
 * own in the same database (jobs.c, ledger.c): they prepare their own
 * statements on it, run their own transactions between store calls (never
 * while one is open), and finalize their statements before store_close.
 * Same thread as the store. */
struct sqlite3;
struct sqlite3 *store_sqlite(struct store *s);
/* Keeps SQLite's message for a failure (store_last_error) and returns the
 * project's code for the SQLite result rc. */
int store_fail_note(struct store *s, int rc);

/* Opens DIR/p2c2r.db read-only for another process's reader (p2c2r
 * ledger, p2c2r backup, p2c2rd --check-ledger), which may run beside the
 * coordinator: no lock, no migration, nothing written.  Refuses a missing
 * file (ENOTFOUND), one that is not SQLite or not p2c2r's (EPROTO, EINVAL),
 * and a schema older than min_version (EVERSION: start p2c2rd on it once
 * to migrate it).  *out is a connection to close with sqlite3_close; err
 * gets the reason. */
int store_open_readonly(const char *dir, int min_version, struct sqlite3 **out, char *err, size_t errcap);

#endif
