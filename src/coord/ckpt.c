/* ckpt.c - the WAL checkpointer thread (ckpt.h).
 *
 * Invariants: the thread owns its connection alone; stop is the only
 * state shared with the loop, under mu; a checkpoint is PASSIVE, so a
 * commit of the loop never waits for it (SQLite lets a writer append to
 * the WAL while a checkpoint copies the frames before it). */
#include "coord/ckpt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "common/util.h"
#include "p2c2r/error.h"

struct ckpt {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    sqlite3 *db;
    atomic_uint_fast64_t runs;
};

static void *ckpt_main(void *arg)
{
    struct ckpt *k = arg;
    pthread_mutex_lock(&k->mu);
    while (!k->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += CKPT_PERIOD_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&k->cv, &k->mu, &ts);
        if (k->stop)
            break;
        pthread_mutex_unlock(&k->mu);
        int log = 0, done = 0;
        if (sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done) == SQLITE_OK &&
            done > 0) {
            atomic_fetch_add(&k->runs, 1);
        }
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

int ckpt_start(sqlite3 *db, struct ckpt **out, char *err, size_t errcap)
{
    const char *path = sqlite3_db_filename(db, "main");
    if (!path || !*path) {
        snprintf(err, errcap, "checkpointer: the database has no file name");
        return P2C2R_EIO;
    }
    struct ckpt *k = xcalloc(1, sizeof(*k));
    if (sqlite3_open_v2(path, &k->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errcap, "checkpointer: cannot open %s: %s", path, k->db ? sqlite3_errmsg(k->db) : "out of memory");
        sqlite3_close(k->db);
        free(k);
        return P2C2R_EIO;
    }
    sqlite3_busy_timeout(k->db, 1000);
    /* A connection learns that the file is in WAL mode when it first reads
     * it; until then a checkpoint does nothing. */
    if (sqlite3_exec(k->db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(err, errcap, "checkpointer: cannot read %s: %s", path, sqlite3_errmsg(k->db));
        sqlite3_close(k->db);
        free(k);
        return P2C2R_EIO;
    }
    pthread_mutex_init(&k->mu, NULL);
    pthread_cond_init(&k->cv, NULL);
    int e = pthread_create(&k->th, NULL, ckpt_main, k);
    if (e != 0) {
        snprintf(err, errcap, "checkpointer: cannot start its thread: %s", strerror(e));
        sqlite3_close(k->db);
        pthread_mutex_destroy(&k->mu);
        pthread_cond_destroy(&k->cv);
        free(k);
        return P2C2R_EIO;
    }
    sqlite3_wal_autocheckpoint(db, 0);
    /* The log is reused from its start once a checkpoint caught up; this
     * truncates it then, so the file does not keep the size of the busiest
     * minute.  (A TRUNCATE checkpoint would take the write lock and could
     * make the loop's commit wait or fail.) */
    (void)sqlite3_exec(db, "PRAGMA journal_size_limit = " CKPT_WAL_LIMIT, NULL, NULL, NULL);
    *out = k;
    return 0;
}

void ckpt_stop(struct ckpt *k, sqlite3 *db)
{
    if (!k)
        return;
    pthread_mutex_lock(&k->mu);
    k->stop = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->th, NULL);
    sqlite3_close(k->db);
    pthread_mutex_destroy(&k->mu);
    pthread_cond_destroy(&k->cv);
    free(k);
    if (db)
        sqlite3_wal_autocheckpoint(db, 1000); /* SQLite's default */
}

uint64_t ckpt_runs(const struct ckpt *k) { return k ? atomic_load(&((struct ckpt *)k)->runs) : 0; }
