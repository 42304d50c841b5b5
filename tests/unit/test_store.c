/* test_store.c - unit tests for the coordinator's persistent state
 * (src/coord/store.c): creation in a fresh directory, a round trip of every
 * field through flush, close and reopen, reads that see pending changes,
 * group commit (many puts, one transaction, counted by SQLite's commit
 * hook), a flush that fails while another process holds the lock and
 * succeeds later, refusal of a file that is not a database, of another
 * program's database, of a newer schema and of a damaged one (each leaving
 * the file untouched), migration of a version-1 database made by hand with
 * the frozen v1 DDL through a step registered only here, online backup, and
 * a process killed after a flush.  Every test works in its own temporary
 * directory and opens the file with SQLite directly where it checks what is
 * on disk. */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "check.h"
#include "coord/ledger.h"
#include "coord/store.h"
#include "p2c2r/error.h"

/* The schema of version 1 as released.  A database made by a build of that
 * version looks like this, whatever later builds put in their migrations. */
static const char v1_ddl[] =
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
    ") STRICT, WITHOUT ROWID;";

/* Version 2 added these to version 1 (the schema before durable jobs and
 * the ledger, as released). */
static const char v2_ddl[] =
    "ALTER TABLE peers ADD COLUMN good INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE peers ADD COLUMN lies INTEGER NOT NULL DEFAULT 0;";

/* ---- helpers ---- */

static char base_dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* A fresh directory name under the test's base directory (not created). */
static void dir_name(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", base_dir, name);
}

static void db_path(char *dst, size_t cap, const char *dir)
{
    snprintf(dst, cap, "%s/p2c2r.db", dir);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Reads a whole file; returns a malloc'd buffer (caller frees) or NULL. */
static unsigned char *file_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            buf = realloc(buf, cap);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

static void file_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (CHECK(f != NULL)) {
        CHECK_EQU(fwrite(data, 1, len, f), len);
        fclose(f);
    }
}

/* Runs SQL on the file with a connection of the test's own. */
static void sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    CHECK_EQ(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "sql_exec: %s: %s\n", sql, msg ? msg : "?");
    CHECK_EQ(rc, SQLITE_OK);
    sqlite3_free(msg);
    CHECK_EQ(sqlite3_close(db), SQLITE_OK);
}

/* The integer the query returns, or -1 on an error. */
static int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    int64_t v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                v = sqlite3_column_int64(st, 0);
            sqlite3_finalize(st);
        }
    }
    sqlite3_close(db);
    return v;
}

static void make_pk(uint8_t pk[STORE_PK_LEN], uint32_t i)
{
    for (unsigned j = 0; j < STORE_PK_LEN; j++)
        pk[j] = (uint8_t)(i * 131u + j * 7u + (i >> 8));
    memcpy(pk, &i, sizeof(i)); /* distinct for every i */
}

/* A record with every field set and depending on i. */
static struct store_peer make_peer(uint32_t i)
{
    struct store_peer p;
    memset(&p, 0, sizeof(p));
    make_pk(p.pk, i);
    p.first_seen_ms = 1700000000000ull + i;
    p.last_seen_ms = 1700000000000ull + 2ull * i + 1;
    p.verified = 3ull * i;
    p.disagreements = i % 7;
    p.strikes = i % 5;
    p.quarantines = i % 3;
    p.quarantined_until_ms = i % 2 ? 1700000099000ull + i : 0;
    p.banned = i % 2;
    p.pinned = (i / 2) % 2;
    snprintf(p.group, sizeof(p.group), "group-%u", i % 4);
    snprintf(p.name, sizeof(p.name), "peer-%u", i);
    return p;
}

static int peer_same(const struct store_peer *a, const struct store_peer *b)
{
    return memcmp(a->pk, b->pk, STORE_PK_LEN) == 0 && a->first_seen_ms == b->first_seen_ms &&
           a->last_seen_ms == b->last_seen_ms && a->verified == b->verified &&
           a->disagreements == b->disagreements && a->strikes == b->strikes &&
           a->quarantines == b->quarantines &&
           a->quarantined_until_ms == b->quarantined_until_ms && a->banned == b->banned &&
           a->pinned == b->pinned && strcmp(a->group, b->group) == 0 &&
           strcmp(a->name, b->name) == 0;
}

/* Gets pk and checks that it equals *want. */
static void check_get(struct store *s, const struct store_peer *want)
{
    struct store_peer got;
    int rc = store_peer_get(s, want->pk, &got);
    CHECK_EQ(rc, 0);
    if (rc == 0)
        CHECK(peer_same(&got, want));
}

static struct store *open_ok(const char *dir)
{
    char err[512];
    struct store *s = NULL;
    int rc = store_open(dir, &s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "store_open %s: %s\n", dir, err);
    CHECK_EQ(rc, 0);
    return s;
}

/* Collects what store_peer_each reports. */
struct walk {
    struct store_peer seen[64];
    size_t n;
    size_t stop_after; /* 0: never stop */
};

static int walk_fn(void *arg, const struct store_peer *p)
{
    struct walk *w = arg;
    if (w->n < 64)
        w->seen[w->n] = *p;
    w->n++;
    return w->stop_after && w->n == w->stop_after ? 42 : 0;
}

static const struct store_peer *walk_find(const struct walk *w, const uint8_t *pk, size_t *times)
{
    const struct store_peer *found = NULL;
    *times = 0;
    for (size_t i = 0; i < w->n && i < 64; i++)
        if (memcmp(w->seen[i].pk, pk, STORE_PK_LEN) == 0) {
            found = &w->seen[i];
            (*times)++;
        }
    return found;
}

/* ---- tests ---- */

static void test_open_fresh(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "fresh");
    db_path(path, sizeof(path), dir);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode) && (sb.st_mode & 0777) == 0700);
    CHECK(file_exists(path));
    struct store_stats st;
    store_stats(s, &st);
    CHECK_EQ(st.version_found, 0);
    CHECK_EQ(st.version, STORE_SCHEMA_VERSION);
    CHECK_EQU(st.pending, 0);
    uint8_t pk[STORE_PK_LEN];
    make_pk(pk, 1);
    struct store_peer p;
    CHECK_EQ(store_peer_get(s, pk, &p), P2C2R_ENOTFOUND);
    uint64_t us;
    CHECK_EQ(store_speed_get(s, pk, "echo", &us), P2C2R_ENOTFOUND);
    CHECK_EQ(store_flush(s), 0); /* nothing pending */
    CHECK_EQ(strcmp(store_last_error(s), ""), 0);
    store_close(s);
    store_close(NULL);

    CHECK_EQ(sql_int(path, "PRAGMA application_id"), STORE_APPLICATION_ID);
    CHECK_EQ(sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    /* The WAL mode is recorded in the file's header (bytes 18 and 19 are 2). */
    size_t len;
    unsigned char *b = file_read(path, &len);
    if (CHECK(b != NULL && len >= 100))
        CHECK(b[18] == 2 && b[19] == 2);
    free(b);

    /* Reopening an existing store changes nothing. */
    s = open_ok(dir);
    if (s != NULL) {
        store_stats(s, &st);
        CHECK_EQ(st.version_found, STORE_SCHEMA_VERSION);
        store_close(s);
    }

    /* A file where the directory should be is refused. */
    char notdir[300];
    dir_name(notdir, sizeof(notdir), "notdir");
    file_write(notdir, "x", 1);
    char err[512];
    CHECK_EQ(store_open(notdir, &s, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "not a directory") != NULL);
}

static void test_roundtrip(void)
{
    char dir[300];
    dir_name(dir, sizeof(dir), "roundtrip");
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    /* Extremes of every field: u64 above INT64_MAX, full-length strings. */
    struct store_peer a = make_peer(7);
    a.first_seen_ms = 0;
    a.last_seen_ms = UINT64_MAX;
    a.verified = (uint64_t)INT64_MAX + 1;
    a.disagreements = 1;
    a.strikes = UINT64_MAX - 1;
    a.quarantines = 0x0123456789abcdefull;
    a.quarantined_until_ms = 0xfedcba9876543210ull;
    a.banned = 1;
    a.pinned = 1;
    memset(a.group, 'g', STORE_GROUP_MAX);
    a.group[STORE_GROUP_MAX] = '\0';
    memset(a.name, 'n', STORE_NAME_MAX);
    a.name[STORE_NAME_MAX] = '\0';
    a.name[0] = (char)0xc3; /* UTF-8 "é" */
    a.name[1] = (char)0xa9;
    struct store_peer b = make_peer(8); /* empty strings, zeroes */
    b.banned = b.pinned = 0;
    b.group[0] = b.name[0] = '\0';
    b.quarantined_until_ms = 0;

    CHECK_EQ(store_peer_put(s, &a), 0);
    CHECK_EQ(store_peer_put(s, &b), 0);
    CHECK_EQ(store_speed_put(s, a.pk, "raytrace", 123456), 0);
    CHECK_EQ(store_speed_put(s, a.pk, "echo", UINT64_MAX), 0);
    CHECK_EQ(store_speed_put(s, b.pk, "raytrace", 99), 0);
    /* Read before the flush: from the pending changes. */
    check_get(s, &a);
    check_get(s, &b);
    CHECK_EQ(store_flush(s), 0);
    check_get(s, &a);
    store_close(s);

    s = open_ok(dir);
    if (s == NULL)
        return;
    check_get(s, &a);
    check_get(s, &b);
    uint64_t us = 0;
    CHECK_EQ(store_speed_get(s, a.pk, "raytrace", &us), 0);
    CHECK_EQU(us, 123456);
    CHECK_EQ(store_speed_get(s, a.pk, "echo", &us), 0);
    CHECK_EQU(us, UINT64_MAX);
    CHECK_EQ(store_speed_get(s, b.pk, "raytrace", &us), 0);
    CHECK_EQU(us, 99);
    CHECK_EQ(store_speed_get(s, b.pk, "echo", &us), P2C2R_ENOTFOUND);

    /* A put replaces the whole record; the newer speed replaces the older. */
    struct store_peer a2 = make_peer(9);
    memcpy(a2.pk, a.pk, STORE_PK_LEN);
    CHECK_EQ(store_peer_put(s, &a2), 0);
    CHECK_EQ(store_speed_put(s, a.pk, "raytrace", 5), 0);
    store_close(s); /* flushes */
    s = open_ok(dir);
    if (s == NULL)
        return;
    check_get(s, &a2);
    CHECK_EQ(store_speed_get(s, a.pk, "raytrace", &us), 0);
    CHECK_EQU(us, 5);
    store_close(s);
}

static void test_invalid(void)
{
    char dir[300];
    dir_name(dir, sizeof(dir), "invalid");
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_peer p = make_peer(1);
    memset(p.name, 'x', sizeof(p.name)); /* no NUL */
    CHECK_EQ(store_peer_put(s, &p), P2C2R_EINVAL);
    p = make_peer(1);
    memset(p.group, 'x', sizeof(p.group));
    CHECK_EQ(store_peer_put(s, &p), P2C2R_EINVAL);
    p = make_peer(1);
    p.banned = 2;
    CHECK_EQ(store_peer_put(s, &p), P2C2R_EINVAL);
    p = make_peer(1);
    p.pinned = 255;
    CHECK_EQ(store_peer_put(s, &p), P2C2R_EINVAL);
    char long_type[STORE_TYPE_MAX + 2];
    memset(long_type, 't', sizeof(long_type) - 1);
    long_type[sizeof(long_type) - 1] = '\0';
    uint64_t us;
    CHECK_EQ(store_speed_put(s, p.pk, "", 1), P2C2R_EINVAL);
    CHECK_EQ(store_speed_put(s, p.pk, long_type, 1), P2C2R_EINVAL);
    CHECK_EQ(store_speed_get(s, p.pk, long_type, &us), P2C2R_EINVAL);
    long_type[STORE_TYPE_MAX] = '\0'; /* exactly the maximum */
    CHECK_EQ(store_speed_put(s, p.pk, long_type, 1), 0);
    CHECK_EQ(store_peer_set_group(s, p.pk, long_type), 0);
    long_type[STORE_TYPE_MAX] = 't';
    CHECK_EQ(store_peer_set_group(s, p.pk, long_type), P2C2R_EINVAL);
    struct store_stats st;
    store_stats(s, &st);
    CHECK_EQU(st.pending, 2); /* only the valid changes */
    CHECK_EQ(store_flush(s), 0);
    store_close(s);
}

/* Reads see pending changes; store_peer_each reports every peer once. */
static void test_pending_reads(void)
{
    char dir[300];
    dir_name(dir, sizeof(dir), "pending");
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_peer p[6];
    for (uint32_t i = 0; i < 6; i++)
        p[i] = make_peer(100 + i);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(store_peer_put(s, &p[i]), 0);
    CHECK_EQ(store_flush(s), 0);
    /* p[1] changes while pending, p[4] and p[5] exist only pending. */
    p[1].verified += 1000;
    snprintf(p[1].name, sizeof(p[1].name), "renamed");
    CHECK_EQ(store_peer_put(s, &p[1]), 0);
    CHECK_EQ(store_peer_put(s, &p[4]), 0);
    CHECK_EQ(store_peer_put(s, &p[5]), 0);

    struct walk w;
    memset(&w, 0, sizeof(w));
    CHECK_EQ(store_peer_each(s, walk_fn, &w), 0);
    CHECK_EQU(w.n, 6);
    for (int i = 0; i < 6; i++) {
        size_t times;
        const struct store_peer *got = walk_find(&w, p[i].pk, &times);
        CHECK_EQU(times, 1);
        if (got != NULL)
            CHECK(peer_same(got, &p[i]));
    }
    /* A nonzero return stops the walk, in the written rows or after. */
    memset(&w, 0, sizeof(w));
    w.stop_after = 2;
    CHECK_EQ(store_peer_each(s, walk_fn, &w), 42);
    CHECK_EQU(w.n, 2);
    memset(&w, 0, sizeof(w));
    w.stop_after = 5;
    CHECK_EQ(store_peer_each(s, walk_fn, &w), 42);
    CHECK_EQU(w.n, 5);
    /* The walk leaves no statement running: a flush goes through. */
    CHECK_EQ(store_flush(s), 0);
    memset(&w, 0, sizeof(w));
    CHECK_EQ(store_peer_each(s, walk_fn, &w), 0);
    CHECK_EQU(w.n, 6);
    store_close(s);
}

static void test_operator_helpers(void)
{
    char dir[300];
    dir_name(dir, sizeof(dir), "operator");
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_peer known = make_peer(3);
    known.banned = 0;
    known.pinned = 0;
    CHECK_EQ(store_peer_put(s, &known), 0);
    CHECK_EQ(store_flush(s), 0);
    CHECK_EQ(store_peer_set_banned(s, known.pk, 1), 0);
    CHECK_EQ(store_peer_set_pinned(s, known.pk, 1), 0);
    CHECK_EQ(store_peer_set_group(s, known.pk, "gpu-farm"), 0);
    known.banned = 1;
    known.pinned = 1;
    snprintf(known.group, sizeof(known.group), "gpu-farm");
    check_get(s, &known);

    /* A key never seen gets a record of its own. */
    struct store_peer stranger;
    memset(&stranger, 0, sizeof(stranger));
    make_pk(stranger.pk, 4);
    CHECK_EQ(store_peer_set_banned(s, stranger.pk, 1), 0);
    stranger.banned = 1;
    store_close(s);
    s = open_ok(dir);
    if (s == NULL)
        return;
    check_get(s, &known);
    check_get(s, &stranger);
    store_close(s);
}

/* Many puts, one flush, one transaction. */
static void test_group_commit(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "group");
    db_path(path, sizeof(path), dir);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    enum { N = 2000 };
    struct store_stats before, after;
    store_stats(s, &before);
    for (uint32_t i = 0; i < N; i++) {
        struct store_peer p = make_peer(i);
        CHECK(store_peer_put(s, &p) == 0);
        CHECK(store_speed_put(s, p.pk, "sha256", i) == 0);
    }
    /* Puts of keys already pending overwrite them in place. */
    for (uint32_t i = 0; i < N; i += 2) {
        struct store_peer p = make_peer(i);
        p.verified = 1000000 + i;
        CHECK(store_peer_put(s, &p) == 0);
    }
    store_stats(s, &after);
    CHECK_EQU(after.pending, 2 * N);
    CHECK_EQU(after.commits, before.commits); /* nothing written by a put */
    CHECK_EQ(store_flush(s), 0);
    store_stats(s, &after);
    CHECK_EQU(after.commits - before.commits, 1);
    CHECK_EQU(after.flushes - before.flushes, 1);
    CHECK_EQU(after.rows_flushed - before.rows_flushed, 2 * N);
    CHECK_EQU(after.pending, 0);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM peers"), N);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM peer_speed"), N);
    CHECK_EQ(sql_int(path, "SELECT sum(verified >= 1000000) FROM peers"), N / 2);
    /* Reads do not commit anything. */
    struct store_peer got;
    uint8_t pk[STORE_PK_LEN];
    make_pk(pk, 5);
    CHECK_EQ(store_peer_get(s, pk, &got), 0);
    CHECK_EQ(store_flush(s), 0);
    store_stats(s, &before);
    CHECK_EQU(before.commits, after.commits);
    store_close(s);
}

/* A flush that cannot get the lock fails, keeps its changes, and the next
 * one writes them. */
static void test_flush_retry(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "retry");
    db_path(path, sizeof(path), dir);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_peer p = make_peer(11);
    CHECK_EQ(store_peer_put(s, &p), 0);

    sqlite3 *other;
    CHECK_EQ(sqlite3_open(path, &other), SQLITE_OK);
    CHECK_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(store_flush(s), P2C2R_EAGAIN);
    CHECK(strstr(store_last_error(s), "locked") != NULL);
    struct store_stats st;
    store_stats(s, &st);
    CHECK_EQU(st.flush_errors, 1);
    CHECK_EQU(st.pending, 1);
    check_get(s, &p); /* still readable from memory */
    CHECK_EQ(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(sqlite3_close(other), SQLITE_OK);

    CHECK_EQ(sql_int(path, "SELECT count(*) FROM peers"), 0);
    CHECK_EQ(store_flush(s), 0);
    store_stats(s, &st);
    CHECK_EQU(st.pending, 0);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM peers"), 1);
    store_close(s);
}

/* Opening must fail with code, say `why` in its error, and leave the file's
 * bytes as they were. */
static void check_refused(const char *dir, int code, const char *why)
{
    char path[320], err[512];
    db_path(path, sizeof(path), dir);
    size_t len0, len1;
    unsigned char *before = file_read(path, &len0);
    struct store *s = NULL;
    CHECK_EQ(store_open(dir, &s, err, sizeof(err)), code);
    CHECK(s == NULL);
    if (!CHECK(strstr(err, why) != NULL))
        fprintf(stderr, "  error was: %s\n", err);
    CHECK(strstr(err, path) != NULL);
    unsigned char *after = file_read(path, &len1);
    CHECK(before != NULL && after != NULL);
    if (before != NULL && after != NULL)
        CHECK_MEM(before, len0, after, len1);
    free(before);
    free(after);
    /* And no log or lock files were left next to it. */
    char side[340];
    snprintf(side, sizeof(side), "%s-wal", path);
    CHECK(!file_exists(side));
}

static void test_refuse_corrupt(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "corrupt");
    db_path(path, sizeof(path), dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    unsigned char junk[8192];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 2654435761u >> 13);
    file_write(path, junk, sizeof(junk));
    check_refused(dir, P2C2R_EPROTO, "not a SQLite database");
    check_refused(dir, P2C2R_EPROTO, "not a database"); /* SQLite's own words */
    /* A short text file too. */
    file_write(path, "peers: none\n", 12);
    check_refused(dir, P2C2R_EPROTO, "not a SQLite database");
}

static void test_refuse_foreign(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "foreign");
    db_path(path, sizeof(path), dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    sql_exec(path, "PRAGMA application_id = 305419896;"
                   "CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT);"
                   "INSERT INTO accounts VALUES (1, 'alice');");
    check_refused(dir, P2C2R_EINVAL, "another program");
    check_refused(dir, P2C2R_EINVAL, "0x12345678");
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM accounts"), 1);

    /* Without an application_id, a database with tables is someone's too. */
    char dir2[300], path2[320];
    dir_name(dir2, sizeof(dir2), "foreign2");
    db_path(path2, sizeof(path2), dir2);
    CHECK_EQ(mkdir(dir2, 0700), 0);
    sql_exec(path2, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('keep me');");
    check_refused(dir2, P2C2R_EINVAL, "another program");
    CHECK_EQ(sql_int(path2, "SELECT count(*) FROM notes"), 1);

    /* An empty file is a new database. */
    char dir3[300], path3[320];
    dir_name(dir3, sizeof(dir3), "emptyfile");
    db_path(path3, sizeof(path3), dir3);
    CHECK_EQ(mkdir(dir3, 0700), 0);
    file_write(path3, "", 0);
    store_close(open_ok(dir3));
    CHECK_EQ(sql_int(path3, "PRAGMA application_id"), STORE_APPLICATION_ID);
}

static void test_refuse_newer(void)
{
    char dir[300], path[320], sql[128];
    dir_name(dir, sizeof(dir), "newer");
    db_path(path, sizeof(path), dir);
    store_close(open_ok(dir));
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
    sql_exec(path, sql);
    check_refused(dir, P2C2R_EVERSION, "newer than this build");
    CHECK_EQ(sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
}

/* A file whose header is fine but whose table pages are damaged. */
static void test_refuse_damaged(void)
{
    char dir[300], path[320];
    dir_name(dir, sizeof(dir), "damaged");
    db_path(path, sizeof(path), dir);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < 300; i++) {
        struct store_peer p = make_peer(i);
        CHECK(store_peer_put(s, &p) == 0);
    }
    store_close(s); /* checkpoints: everything is in the main file now */
    int64_t page_size = sql_int(path, "PRAGMA page_size");
    int64_t root = sql_int(path, "SELECT rootpage FROM sqlite_schema WHERE name = 'peers'");
    CHECK(page_size >= 512 && root >= 2);
    size_t len;
    unsigned char *b = file_read(path, &len);
    if (b != NULL && root >= 2 && (size_t)(root * page_size) <= len) {
        /* Scribble over the root page of peers, after its type byte. */
        memset(b + (root - 1) * page_size + 1, 0xa5, 64);
        file_write(path, b, len);
        check_refused(dir, P2C2R_EPROTO, "integrity check");
    } else {
        CHECK(!"the peers table's root page is in the file");
    }
    free(b);
}

/* A version-1 file made by hand migrates through a step registered only
 * here; a failing step leaves the file as it was. */
static void test_migration(void)
{
    char dir[300], path[320], sql[512], err[512];
    dir_name(dir, sizeof(dir), "migrate");
    db_path(path, sizeof(path), dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    sql_exec(path, v1_ddl);
    sql_exec(path, "INSERT INTO peers VALUES (zeroblob(32), 1, 2, 3, 4, 5, 6, 7, 1, 0,"
                   " 'old-group', 'old-peer');"
                   "INSERT INTO peer_speed VALUES (zeroblob(32), 'echo', 17);");
    snprintf(sql, sizeof(sql), "PRAGMA user_version = 1; PRAGMA application_id = %d",
             STORE_APPLICATION_ID);
    sql_exec(path, sql);
    struct store_peer old;
    memset(&old, 0, sizeof(old));
    old.first_seen_ms = 1, old.last_seen_ms = 2, old.verified = 3, old.disagreements = 4;
    old.strikes = 5, old.quarantines = 6, old.quarantined_until_ms = 7, old.banned = 1;
    snprintf(old.group, sizeof(old.group), "old-group");
    snprintf(old.name, sizeof(old.name), "old-peer");

    /* This build opens it, migrating it to its own version if newer. */
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_stats st;
    store_stats(s, &st);
    CHECK_EQ(st.version_found, 1);
    CHECK_EQ(st.version, STORE_SCHEMA_VERSION);
    check_get(s, &old);
    store_close(s);

    /* A step that fails half-way: nothing of it stays. */
    const struct store_migration bad[] = {
        {"a probe table", "CREATE TABLE probe (x INTEGER); INSERT INTO probe VALUES (1);"
                          " INSERT INTO no_such_table VALUES (2);"},
    };
    CHECK_EQ(store_open_ext(dir, bad, 1, &s, err, sizeof(err)), P2C2R_EIO);
    CHECK(strstr(err, "a probe table") != NULL && strstr(err, "no_such_table") != NULL);
    CHECK(strstr(err, "unchanged") != NULL);
    CHECK_EQ(sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM sqlite_schema WHERE name = 'probe'"), 0);

    /* A good step: applied once, with the version. */
    const struct store_migration good[] = {
        {"a probe table", "CREATE TABLE probe (x INTEGER) STRICT; INSERT INTO probe VALUES (42);"},
    };
    s = NULL;
    CHECK_EQ(store_open_ext(dir, good, 1, &s, err, sizeof(err)), 0);
    if (s == NULL)
        return;
    store_stats(s, &st);
    CHECK_EQ(st.version_found, STORE_SCHEMA_VERSION);
    CHECK_EQ(st.version, STORE_SCHEMA_VERSION + 1);
    check_get(s, &old);
    uint64_t us;
    CHECK_EQ(store_speed_get(s, old.pk, "echo", &us), 0);
    CHECK_EQU(us, 17);
    struct store_peer p = make_peer(1);
    CHECK_EQ(store_peer_put(s, &p), 0);
    store_close(s);
    CHECK_EQ(sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
    CHECK_EQ(sql_int(path, "SELECT sum(x) FROM probe"), 42);

    /* Opening again with the same step applies nothing. */
    s = NULL;
    CHECK_EQ(store_open_ext(dir, good, 1, &s, err, sizeof(err)), 0);
    if (s != NULL) {
        store_stats(s, &st);
        CHECK_EQ(st.version_found, STORE_SCHEMA_VERSION + 1);
        check_get(s, &p);
        store_close(s);
    }
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM probe"), 1);

    /* And a build without the step refuses the newer file. */
    check_refused(dir, P2C2R_EVERSION, "newer than this build");
}

static void test_backup(void)
{
    char dir[300], copy_dir[300], copy[320], tmp[340], err[512];
    dir_name(dir, sizeof(dir), "backup-src");
    dir_name(copy_dir, sizeof(copy_dir), "backup-copy");
    db_path(copy, sizeof(copy), copy_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", copy);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    enum { N = 40 };
    for (uint32_t i = 0; i < N; i++) {
        struct store_peer p = make_peer(i);
        CHECK(store_peer_put(s, &p) == 0);
        CHECK(store_speed_put(s, p.pk, "physics", 1000 + i) == 0);
    }
    CHECK_EQ(store_flush(s), 0);
    struct store_peer pending = make_peer(N);
    CHECK_EQ(store_peer_put(s, &pending), 0); /* the backup flushes it first */

    CHECK_EQ(mkdir(copy_dir, 0700), 0);
    CHECK_EQ(store_backup(s, copy, err, sizeof(err)), 0);
    CHECK(!file_exists(tmp));
    /* The store carries on after a backup. */
    struct store_peer later = make_peer(N + 1);
    CHECK_EQ(store_peer_put(s, &later), 0);
    CHECK_EQ(store_flush(s), 0);

    /* A second backup to the same path is refused; the first is intact. */
    size_t len0, len1;
    unsigned char *before = file_read(copy, &len0);
    CHECK_EQ(store_backup(s, copy, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "exists") != NULL);
    unsigned char *after = file_read(copy, &len1);
    CHECK(before != NULL && after != NULL);
    if (before != NULL && after != NULL)
        CHECK_MEM(before, len0, after, len1);
    free(before);
    free(after);
    store_close(s);

    struct store *c = open_ok(copy_dir);
    if (c == NULL)
        return;
    for (uint32_t i = 0; i <= N; i++) {
        struct store_peer p = make_peer(i);
        check_get(c, &p);
        uint64_t us = 0;
        if (i < N) {
            CHECK_EQ(store_speed_get(c, p.pk, "physics", &us), 0);
            CHECK_EQU(us, 1000 + i);
        }
    }
    struct store_peer got;
    CHECK_EQ(store_peer_get(c, later.pk, &got), P2C2R_ENOTFOUND); /* after the backup */
    store_close(c);
}

/* A process killed after a flush: the flushed changes are there at the
 * next open, the unflushed ones are not. */
static void test_crash(void)
{
    char dir[300], path[320], wal[340];
    dir_name(dir, sizeof(dir), "crash");
    db_path(path, sizeof(path), dir);
    snprintf(wal, sizeof(wal), "%s-wal", path);
    enum { N = 100 };
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct store *s = NULL;
        if (store_open(dir, &s, NULL, 0) != 0)
            _exit(2);
        for (uint32_t i = 0; i < N; i++) {
            struct store_peer p = make_peer(i);
            if (store_peer_put(s, &p) != 0 || store_speed_put(s, p.pk, "upscale", i) != 0)
                _exit(3);
        }
        if (store_flush(s) != 0)
            _exit(4);
        struct store_peer lost = make_peer(N);
        if (store_peer_put(s, &lost) != 0)
            _exit(5);
        /* No close, no exit handlers: as abrupt as a crash. */
        kill(getpid(), SIGKILL);
        _exit(6);
    }
    CHECK(pid > 0);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)) {
        fprintf(stderr, "  child status %d\n", status);
        return;
    }
    /* The commit is in the log, not yet in the main file. */
    struct stat sb;
    CHECK(stat(wal, &sb) == 0 && sb.st_size > 0);

    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < N; i++) {
        struct store_peer p = make_peer(i);
        check_get(s, &p);
        uint64_t us = 0;
        CHECK(store_speed_get(s, p.pk, "upscale", &us) == 0 && us == i);
    }
    struct store_peer lost = make_peer(N), got;
    CHECK_EQ(store_peer_get(s, lost.pk, &got), P2C2R_ENOTFOUND);
    store_close(s);
}

/* A database of the schema before durable jobs (version 2) with a peer
 * record migrates to this build's: the record is kept, the jobs and ledger
 * tables exist, empty, and the empty ledger balances. */
static void test_migration_v2(void)
{
    char dir[300], path[320], sql[512], err[512];
    dir_name(dir, sizeof(dir), "migrate-v2");
    db_path(path, sizeof(path), dir);
    CHECK_EQ(mkdir(dir, 0700), 0);
    sql_exec(path, v1_ddl);
    sql_exec(path, v2_ddl);
    sql_exec(path, "INSERT INTO peers VALUES (zeroblob(32), 1, 2, 3, 4, 5, 6, 7, 0, 1, 'g', 'p', 8, 9);");
    snprintf(sql, sizeof(sql), "PRAGMA user_version = 2; PRAGMA application_id = %d", STORE_APPLICATION_ID);
    sql_exec(path, sql);
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    struct store_stats st;
    store_stats(s, &st);
    CHECK_EQ(st.version_found, 2);
    CHECK_EQ(st.version, STORE_SCHEMA_VERSION);
    uint8_t pk[STORE_PK_LEN] = {0};
    struct store_peer p;
    CHECK_EQ(store_peer_get(s, pk, &p), 0);
    CHECK_EQU(p.good, 8);
    CHECK_EQU(p.lies, 9);
    CHECK_EQ(ledger_check(store_sqlite(s), NULL, err, sizeof(err)), 0);
    store_close(s);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM jobs"), 0);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM job_blobs"), 0);
    CHECK_EQ(sql_int(path, "SELECT count(*) FROM ledger_txn"), 0);
    CHECK_EQ(sql_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
}

/* ledger_check against books made by hand: balanced ones pass, and each
 * way of breaking them is named. */
static void test_ledger_check(void)
{
    char dir[300], err[512];
    dir_name(dir, sizeof(dir), "ledger");
    struct store *s = open_ok(dir);
    if (s == NULL)
        return;
    sqlite3 *db = store_sqlite(s);
    static const char work[] =
        "INSERT INTO ledger_txn (id, ts_ms, kind, task, job, type, peer, account, units) VALUES"
        " (1, 10, 'work', 5, 0, 'echo', zeroblob(32), 'r', 3);"
        "INSERT INTO ledger_entry (txn, account, amount, task, peer) VALUES"
        " (1, 'peer:00', 3000, 5, zeroblob(32)), (1, 'renter:r', -6000, 5, zeroblob(32)),"
        " (1, 'coordinator', 3000, 5, zeroblob(32));";
    CHECK_EQ(sqlite3_exec(db, work, NULL, NULL, NULL), SQLITE_OK);
    struct ledger_totals t;
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), 0);
    CHECK_EQU(t.txns, 1);
    CHECK_EQ(t.earned, 3000);
    CHECK_EQ(t.spent, 6000);
    /* A proper reversal. */
    static const char rev[] =
        "INSERT INTO ledger_txn (id, ts_ms, kind, task, job, type, peer, account, units, reverses) VALUES"
        " (2, 11, 'reversal', 5, 0, 'echo', zeroblob(32), 'r', 3, 1);"
        "UPDATE ledger_txn SET reversed = 1 WHERE id = 1;"
        "INSERT INTO ledger_entry (txn, account, amount, task, peer) VALUES"
        " (2, 'peer:00', -3000, 5, zeroblob(32)), (2, 'renter:r', 6000, 5, zeroblob(32)),"
        " (2, 'coordinator', -3000, 5, zeroblob(32));";
    CHECK_EQ(sqlite3_exec(db, rev, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), 0);
    CHECK_EQU(t.reversals, 1);
    CHECK_EQ(t.reversed, 3000);
    /* One entry changed: the books no longer balance. */
    CHECK_EQ(sqlite3_exec(db, "UPDATE ledger_entry SET amount = 2999 WHERE txn = 1 AND account = 'peer:00'",
                          NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), P2C2R_EPROTO);
    CHECK(strstr(err, "do not balance") != NULL);
    /* Balanced again, but the reversal pays back another account. */
    CHECK_EQ(sqlite3_exec(db, "UPDATE ledger_entry SET amount = 3000 WHERE txn = 1 AND account = 'peer:00';"
                              "UPDATE ledger_entry SET account = 'renter:other' WHERE txn = 2 AND amount = 6000;",
                          NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), P2C2R_EPROTO);
    CHECK(strstr(err, "negate") != NULL);
    /* Right again; then a work transaction reversed twice. */
    CHECK_EQ(sqlite3_exec(db, "UPDATE ledger_entry SET account = 'renter:r' WHERE txn = 2 AND amount = 6000;",
                          NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), 0);
    static const char twice[] =
        "INSERT INTO ledger_txn (id, ts_ms, kind, task, job, type, peer, account, units, reverses) VALUES"
        " (3, 12, 'reversal', 5, 0, 'echo', zeroblob(32), 'r', 3, 1);"
        "INSERT INTO ledger_entry (txn, account, amount, task, peer) SELECT 3, account, amount, task, peer"
        " FROM ledger_entry WHERE txn = 2;";
    CHECK_EQ(sqlite3_exec(db, twice, NULL, NULL, NULL), SQLITE_OK);
    CHECK_EQ(ledger_check(db, &t, err, sizeof(err)), P2C2R_EPROTO);
    CHECK(strstr(err, "reversed more than once") != NULL);
    store_close(s);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    snprintf(base_dir, sizeof(base_dir), "%s/test_store.XXXXXX", t && *t ? t : "/tmp");
    if (mkdtemp(base_dir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_open_fresh();
    test_roundtrip();
    test_invalid();
    test_pending_reads();
    test_operator_helpers();
    test_group_commit();
    test_flush_retry();
    test_refuse_corrupt();
    test_refuse_foreign();
    test_refuse_newer();
    test_refuse_damaged();
    test_migration();
    test_backup();
    test_crash();
    test_migration_v2();
    test_ledger_check();
    if (check_failed)
        fprintf(stderr, "test_store: files kept in %s\n", base_dir);
    else
        nftw(base_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("test_store");
}
