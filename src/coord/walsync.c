/* walsync.c - the WAL fsync thread (walsync.h).
 *
 * Invariants: want and done are under mu; done <= want; the thread fsyncs
 * only when want > done, and sets done to the want it read before the
 * fsync began (a commit made after that read may not be covered).  The
 * struct is freed in the handle's close callback, after the thread was
 * joined. */
#include "coord/walsync.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "p2c2r/error.h"

struct walsync {
    uv_async_t async;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t want, done, reported;
    int fd, stop, failed;
    void (*cb)(void *arg, uint64_t gen);
    void *arg;
};

static void *walsync_main(void *arg)
{
    struct walsync *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (!w->stop && w->want == w->done)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->stop)
            break;
        uint64_t g = w->want;
        pthread_mutex_unlock(&w->mu);
        int rc = fdatasync(w->fd);
        pthread_mutex_lock(&w->mu);
        if (rc != 0)
            w->failed = errno;
        w->done = g;
        uv_async_send(&w->async);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void walsync_report(struct walsync *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t g = w->done;
    int failed = w->failed;
    w->failed = 0;
    pthread_mutex_unlock(&w->mu);
    if (failed)
        /* Nothing to undo: the data is in the OS and will reach the disk
         * with the next writeback; only power-loss safety is in doubt. */
        fprintf(stderr, "p2c2rd: fdatasync of the WAL failed: %s\n", strerror(failed));
    if (g > w->reported) {
        w->reported = g;
        w->cb(w->arg, g);
    }
}

static void on_async(uv_async_t *h) { walsync_report(h->data); }

static void on_closed(uv_handle_t *h);

int walsync_start(uv_loop_t *loop, const char *path, void (*done)(void *arg, uint64_t gen), void *arg,
                  struct walsync **out, char *err, size_t errcap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "walsync: cannot open %s: %s", path, strerror(errno));
        return P2C2R_EIO;
    }
    struct walsync *w = xcalloc(1, sizeof(*w));
    w->fd = fd;
    w->cb = done;
    w->arg = arg;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    uv_async_init(loop, &w->async, on_async);
    w->async.data = w;
    int e = pthread_create(&w->th, NULL, walsync_main, w);
    if (e != 0) {
        snprintf(err, errcap, "walsync: cannot start its thread: %s", strerror(e));
        close(fd);
        w->fd = -1;
        uv_close((uv_handle_t *)&w->async, on_closed);
        return P2C2R_EIO;
    }
    *out = w;
    return 0;
}

void walsync_request(struct walsync *w, uint64_t gen)
{
    pthread_mutex_lock(&w->mu);
    if (gen > w->want)
        w->want = gen;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static void on_closed(uv_handle_t *h)
{
    struct walsync *w = h->data;
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void walsync_stop(struct walsync *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->th, NULL);
    if (w->want > w->done) {
        if (fdatasync(w->fd) != 0)
            w->failed = errno;
        w->done = w->want;
    }
    walsync_report(w);
    close(w->fd);
    uv_close((uv_handle_t *)&w->async, on_closed);
}

int walsync_now(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return P2C2R_EIO;
    int rc = fdatasync(fd) == 0 ? 0 : P2C2R_EIO;
    close(fd);
    return rc;
}
