/* peer_int.h - internals of the peer agent, shared by its four files:
 *
 *   peer.c   the agent: configuration, the loop and its handles, start/stop
 *   link.c   one coordinator connection: connect, HELLO/REGISTER, framing
 *            in and out, dispatch of what the coordinator sends, reconnect
 *   pool.c   running tasks: executor threads, the job lists, inline runs
 *   pblob.c  the blob cache: content-addressed, LRU by bytes, pinned blobs
 *   prepared.c  what executors derived from blobs (its own header,
 *            prepared.h: thread-safe, used by the executor threads)
 *
 * Thread context: everything here runs on the agent's loop thread, except
 * the pool's worker threads, which touch only a job, the pool's lists and
 * counters (under the pool's mutex) and the prepared-state cache (its own
 * mutex), and read pinned blobs' bytes.  Nothing
 * outside src/peer includes this header. */
#ifndef P2C2R_PEER_INT_H
#define P2C2R_PEER_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "common/buf.h"
#include "common/fconn.h"
#include "common/list.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/executor.h"
#include "peer/peer.h"

/* ---- blob cache (pblob.c) ---------------------------------------------------- */

/* A blob cached on this peer.  Pinned blobs (refs > 0, held by queued or
 * running jobs) are never evicted; the rest go least recently used first
 * when the cache passes its byte cap.  Only the loop thread touches refs
 * and the list; executor threads only read data. */
struct pblob {
    uint8_t hash[PROTO_HASH_LEN];
    uint8_t *data;
    size_t len;
    uint32_t refs;
    struct list_node node; /* in the cache, least recently used first */
};

struct pblob_cache {
    struct list_node lru;
    size_t bytes; /* sum of len over every cached blob, pinned ones included */
    size_t cap;   /* unpinned blobs are evicted while bytes is over this */
};

void pblob_cache_init(struct pblob_cache *c, size_t cap);
/* Frees every blob, pinned or not (the jobs that pinned them are gone). */
void pblob_cache_fini(struct pblob_cache *c);

/* Returns the cached blob with this SHA-256 (borrowed), or NULL. */
struct pblob *pblob_find(struct pblob_cache *c, const uint8_t *hash);

/* Caches len bytes of data (copied) under hash, after checking that hash is
 * their SHA-256, then evicts down to the cap.  A blob already cached only
 * becomes the most recently used.  Returns 0, or P2C2R_EPROTO when the hash
 * does not match (a cache keyed by content must never hold anything else).
 * Out of memory is not an error: the blob is just not cached, and the task
 * that needs it answers ENOBLOB. */
int pblob_put(struct pblob_cache *c, const uint8_t *hash, const uint8_t *data, size_t len);

/* Finds every blob task t names and marks each most recently used.  Returns
 * 0 with out[0 .. t->nblobs) set (borrowed, not pinned), or P2C2R_ENOBLOB
 * with the first missing hash in err. */
int pblob_resolve(struct pblob_cache *c, const struct msg_task *t, struct pblob **out, char *err,
                  size_t errcap);

/* ---- executor pool (pool.c) -------------------------------------------------- */

struct link;

struct prep_cache;

/* What the pool did with cancels since it started. */
struct pool_stats {
    uint64_t cancelled_queued;  /* jobs cancelled before they started (never ran) */
    uint64_t cancelled_running; /* jobs a CANCEL reached while they ran */
    uint64_t cancelled_stopped; /* of those, the ones whose executor stopped (ECANCELLED) */
    uint64_t cancel_wasted_us;  /* executor time those jobs used after their CANCEL */
};

/* The executor threads and their three job lists: pending (queued, not
 * started), running (on a worker) and done (finished, waiting for the
 * loop).  A worker that makes done non-empty wakes the loop once; the loop
 * drains the whole list. */
struct pool {
    uv_async_t wake;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list_node pending, running, done;
    int stop;
    pthread_t *threads;
    uint32_t nthreads;
    struct prep_cache *prep; /* borrowed from the agent; NULL: no prepared state */
    struct pool_stats st;    /* under mu */
};

/* Sets the pool up on loop and starts up to nthreads workers; their jobs
 * use prep (borrowed, may be NULL) for prepared state.  Returns 0, or
 * P2C2R_ENOMEM when not one thread started (pool_stop and pool_fini must
 * still be called). */
int pool_init(struct pool *p, uv_loop_t *loop, uint32_t nthreads, struct prep_cache *prep);
/* Joins the workers (a running job finishes first) and closes the wake
 * handle; after this no thread touches the pool. */
void pool_stop(struct pool *p);
/* Frees the jobs left on either list.  Call after the loop has run the
 * close callbacks that pool_stop started. */
void pool_fini(struct pool *p);

/* Handles an ASSIGN on link l: checks the task against the executor, then
 * runs it inline (a cheap executor on a small input) or queues a job.
 * Every outcome, refusals included, becomes exactly one RESULT on l (in this
 * session).  Returns 0 (a bad task is a RESULT, not a cut). */
int pool_assign(struct link *l, const struct frame_hdr *h, const uint8_t *body);
/* Cancels l's job for task_id: a queued one answers ECANCELLED instead of
 * running; a running one has its executor's cancel flag set, and answers
 * ECANCELLED as soon as the executor notices (or its result, when it
 * finished first).  An unknown task is ignored. */
void pool_cancel(struct pool *p, const struct link *l, uint64_t task_id);
/* Cancels every job of l, queued or running (l is closing: the coordinator
 * requeues those tasks itself, and their results would be dropped). */
void pool_cancel_link(struct pool *p, const struct link *l);
/* Copies the cancel counters.  Thread-safe. */
void pool_stats(struct pool *p, struct pool_stats *out);

/* ---- coordinator link (link.c) ----------------------------------------------- */

enum link_state { LS_IDLE, LS_CONNECTING, LS_HELLO, LS_READY, LS_CLOSING };

struct link {
    struct peer_agent *a;
    uint32_t index;
    uint8_t state, tcp_open;
    uint32_t session; /* bumped on every close: results of older sessions are dropped */
    struct fconn io;  /* io.tcp.data points back here */
    uv_connect_t creq;
    uv_timer_t retry;
    uint32_t backoff_ms;
    uint64_t last_tx_us;          /* as of the last tick that saw frames sent */
    uint64_t tx_frames, tx_seen;  /* frames queued; their count at that tick */
    uint32_t inflight;
    uint32_t max_body;   /* from HELLO_OK: largest frame body either way */
    uint32_t max_output; /* largest result this link may send */
    uint64_t done, failed;
    const struct ident *key; /* the agent's key this link registers with */
};

void link_init(struct link *l, struct peer_agent *a, uint32_t index);
void link_fini(struct link *l);
/* Starts connecting an idle link (no-op when stopping or not idle). */
void link_connect(struct link *l);
/* For begin_stop: closes the retry timer and the connection. */
void link_stop(struct link *l);
/* Closes the connection with a reason (logged); reconnects after a backoff
 * unless the agent is stopping.  Safe to call twice. */
void link_close(struct link *l, const char *why);
/* Once a second: pings the coordinator over a link idle for a while. */
void link_tick(struct link *l, uint64_t now);
/* Starts the check handle that writes every link's pending output once per
 * loop iteration. */
void link_flusher_start(struct peer_agent *a);

/* Room for n bytes at the end of l's output (NULL when over its cap), for a
 * frame built in place; link_commit then appends them and schedules the
 * write. */
uint8_t *link_reserve(struct link *l, size_t n);
void link_commit(struct link *l, size_t n);
/* Queues a RESULT whose body is text (a refusal or an error) and counts it. */
void link_send_result_text(struct link *l, uint64_t task_id, int status, const char *text);
/* A job of session finished with status and this whole RESULT frame
 * (borrowed): sends it when l is still in that session, else drops it. */
void link_job_done(struct link *l, uint32_t session, int status, const uint8_t *frame,
                   size_t frame_len);

/* ---- the agent (peer.c) ------------------------------------------------------ */

struct peer_agent {
    struct peer_config cfg;
    uv_loop_t loop;
    uv_async_t stopper;
    uv_check_t flusher;
    uv_timer_t ticker;
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int stopping;
    struct rng rng;

    /* The types this peer serves, in the order it registers them. */
    const struct p2c2r_executor *ex[PROTO_MAX_TYPES];
    uint32_t nex;

    struct ident *keys; /* nkeys: the agent's own copies, wiped at free */
    uint32_t nkeys;
    struct link *links;
    struct list_node dirty; /* links with output to write this iteration */
    uint8_t *rbuf;          /* shared read buffer (common/fconn) */
    struct pblob_cache blobs;
    struct prep_cache *prep; /* NULL when --prepared-cache is 0 */
    struct pool pool;
    struct tls_ctx *tls;    /* NULL = plaintext */
    char tls_host[256];     /* what the coordinator's certificate must name */
};

/* The executor this peer serves for a type name, or NULL. */
const struct p2c2r_executor *peer_find_executor(const struct peer_agent *a,
                                                const struct bytes_view *name);

#endif
