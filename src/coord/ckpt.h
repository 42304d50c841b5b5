/* ckpt.h - WAL checkpoints off the event loop.  SQLite checkpoints a WAL
 * database from the connection whose commit crosses wal_autocheckpoint,
 * which would be the coordinator's loop, and a checkpoint copies pages back
 * into the database file and (with synchronous=NORMAL) fsyncs it: a stall
 * of milliseconds for every task in flight.  With a checkpointer the
 * loop's connection never checkpoints (wal_autocheckpoint=0); a thread
 * with a connection of its own runs a PASSIVE checkpoint every
 * CKPT_PERIOD_MS, which neither waits for nor blocks the loop's commits.
 *
 * Thread context: ckpt_start and ckpt_stop on the loop thread; the
 * checkpointer's thread touches only its own connection. */
#ifndef P2C2R_COORD_CKPT_H
#define P2C2R_COORD_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_PERIOD_MS 50
#define CKPT_WAL_LIMIT "67108864" /* bytes the log keeps when it is reused (journal_size_limit) */

struct ckpt;
struct sqlite3;

/* Turns the connection db's automatic checkpoints off and starts the
 * thread on a second connection to the same file.  Returns 0 or
 * P2C2R_EIO with the reason in err (db keeps its automatic checkpoints). */
int ckpt_start(struct sqlite3 *db, struct ckpt **out, char *err, size_t errcap);
/* Stops and joins the thread, closes its connection and gives db its
 * automatic checkpoints back.  NULL is a no-op. */
void ckpt_stop(struct ckpt *k, struct sqlite3 *db);
/* Checkpoints run that copied frames. */
uint64_t ckpt_runs(const struct ckpt *k);

#endif
