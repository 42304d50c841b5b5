/* walsync.h - fsync of the WAL off the event loop (p2c2rd --job-sync full).
 * The loop commits with synchronous=NORMAL (the commit reaches the OS, not
 * the disk) and asks for generation g to be made durable; a thread of its
 * own fsyncs the WAL file (an fsync covers every commit appended before
 * it, so one fsync serves every generation asked for meanwhile) and tells
 * the loop through a uv_async which generation is now on the disk.  What
 * waits for the disk (acknowledgements, outcomes becoming visible) waits
 * without stopping the loop, so live tasks do not pay for the fsync.
 *
 * Thread context: every function on the loop thread; done is called on
 * the loop thread. */
#ifndef P2C2R_COORD_WALSYNC_H
#define P2C2R_COORD_WALSYNC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct walsync;

/* Opens path (the database's -wal file, created by SQLite by now) and
 * starts the thread; done(arg, gen) reports each generation made durable
 * (at least the highest asked for, in increasing order).  0 or P2C2R_EIO
 * with the reason in err. */
int walsync_start(uv_loop_t *loop, const char *path, void (*done)(void *arg, uint64_t gen), void *arg,
                  struct walsync **out, char *err, size_t errcap);
/* Asks for every commit so far to be made durable as generation gen
 * (increasing). */
void walsync_request(struct walsync *w, uint64_t gen);
/* Stops the thread and closes the handle (while the loop runs: the handle
 * must not keep it alive); a request not done yet is done here, on this
 * thread, and reported.  NULL is a no-op. */
void walsync_stop(struct walsync *w);
/* fsyncs now on the calling thread (after the loop ended). */
int walsync_now(const char *path);

#endif
