/* p2c2r/client.h - libp2c2r, the renter's API.
 *
 * A client is one TCP connection to a coordinator carrying many tasks in
 * flight, answered out of order.  The library starts no threads.  It has two
 * faces:
 *   - blocking: p2c2r_client_wait / p2c2r_client_poll with a timeout;
 *   - non-blocking, for a frame loop: poll p2c2r_client_fd() yourself
 *     (POLLIN, plus POLLOUT while p2c2r_client_want_write() is true), call
 *     p2c2r_client_process(), then p2c2r_client_poll(c, ..., 0).
 *
 * Thread safety: a client may be used from one thread at a time; distinct
 * clients are independent.  Every function returns 0 (or a count) on success
 * and a negative p2c2r_error on failure; out-parameters are written only on
 * success.  Every submitted task gets exactly one result: its output, an
 * executor error, a timeout, a cancellation, or the connection's failure. */
#ifndef P2C2R_CLIENT_H
#define P2C2R_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct p2c2r_client p2c2r_client;

/* A task's handle, unique within its client.  A struct so it cannot be
 * mixed up with other integers. */
typedef struct {
    uint64_t id;
} p2c2r_ticket;

/* Returns the library version string, e.g. "0.1.0". */
P2C2R_API const char *p2c2r_version(void);

struct p2c2r_client_options {
    const char *token;       /* credential, NULL for none */
    const char *name;        /* shown in coordinator stats, NULL for none */
    int connect_timeout_ms;  /* 0 = 5000 */
    size_t max_result_bytes; /* larger results fail the connection; 0 = 16 MiB, max 1 GiB */
    uint32_t spin_us;        /* blocking waits busy-poll this long before sleeping
                                (0 = never; worth it only with a core to spare) */
};

/* Connects to a coordinator at "HOST:PORT" and completes the HELLO exchange
 * (blocking, up to connect_timeout_ms).  opts may be NULL.  On success *out
 * is a new client the caller owns (release with p2c2r_client_close).
 * Errors: EADDR, EIO, ETIMEDOUT, EAUTH, EVERSION, ENOMEM. */
P2C2R_API int p2c2r_client_connect(const char *addr, const struct p2c2r_client_options *opts,
                         p2c2r_client **out);

/* Closes the connection and frees the client and every result not yet
 * collected.  NULL is a no-op. */
P2C2R_API void p2c2r_client_close(p2c2r_client *c);

/* Priority classes (the scheduler honours them; see docs/PROTOCOL.md).
 * Values above P2C2R_PRIO_BACKGROUND count as background. */
enum p2c2r_priority { P2C2R_PRIO_REALTIME = 0, P2C2R_PRIO_INTERACTIVE = 1, P2C2R_PRIO_BACKGROUND = 2 };

/* p2c2r_task.flags. */
#define P2C2R_TASK_NOCACHE 0x1u /* the coordinator must not answer this task from its result
                                   cache, merge it with an identical task in flight, or cache
                                   its result: for inputs that are never repeated, or when a
                                   fresh run is the point (benchmarks, non-deterministic work) */

/* One task.  Zero every field you do not set (a designated initializer does):
 * a zero field keeps the behaviour the library had before that field
 * existed. */
struct p2c2r_task {
    const char *type;      /* task type, e.g. "echo"; 1..32 bytes */
    uint32_t min_version;  /* 0 = any version of the executor */
    uint32_t deadline_ms;  /* 0 = coordinator default; with a deadline the coordinator may
                              refuse the task at once (EDEADLINE) rather than deliver late */
    uint8_t priority;      /* enum p2c2r_priority */
    const char *params;    /* "key=value\n" lines, may be NULL */
    size_t params_len;
    const void *input;     /* borrowed: copied into the send buffer */
    size_t input_len;
    const uint8_t (*blobs)[32]; /* hashes of uploaded blobs the task uses (see
                                   p2c2r_client_put_blob), may be NULL */
    size_t nblobs;              /* at most 4 */
    uint32_t flags;             /* P2C2R_TASK_*; other bits are EINVAL */
    /* Requirements on the peer that runs the task; all zero = any peer.
     * When no connected peer meets them the task is REJECTED with
     * EUNSUPPORTED (the reason text says which requirement failed). */
    uint8_t need_gpu;       /* nonzero = only a peer that registered a GPU */
    uint16_t min_cores;     /* 0 = any */
    uint64_t min_mem_bytes; /* 0 = any */
};

/* Queues one task for sending without blocking and returns its ticket.
 * The input is copied; the caller keeps ownership of t.  Errors: EINVAL,
 * ETOOBIG (over the coordinator's frame limit), EAGAIN (this client already
 * has as many tasks in flight as the coordinator allows: collect results
 * first), ECLOSED/EIO (connection gone), ENOMEM.
 *
 * EAGAIN is only the local half of backpressure.  The coordinator's half
 * arrives later, as the task's result: status EQUEUEFULL (its queues are
 * full) or EDEADLINE (at the current load the task would miss deadline_ms).
 * Both are counted by p2c2r_client_pressure, which says how a frame loop
 * should react. */
P2C2R_API int p2c2r_client_submit(p2c2r_client *c, const struct p2c2r_task *t, p2c2r_ticket *out);

/* Queues n tasks as one SUBMIT_BATCH frame (several frames if they do not fit
 * in one).  All or nothing: on error no task was queued.  tickets must have
 * room for n. */
P2C2R_API int p2c2r_client_submit_batch(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n,
                              p2c2r_ticket *tickets);

/* p2c2r_result.flags. */
#define P2C2R_RESULT_CACHED 0x1u /* answered from the coordinator's result cache or by an
                                    identical task in flight: no peer ran it for this ticket
                                    (attempts is 0; exec_us and peer_id describe the run that
                                    produced it when that was an identical task in flight, and
                                    are 0 for an answer from the cache) */
#define P2C2R_RESULT_HEDGED 0x2u /* a second copy ran on another peer; the first answer won */

struct p2c2r_result {
    p2c2r_ticket ticket;
    int status;         /* 0 = ok, else a p2c2r_error (ETASK, ETIMEDOUT, ...); a
                           coordinator newer than this library may send a code it does
                           not know: treat it as a generic failure */
    void *output;       /* output bytes, or the error text when status != 0;
                           owned by the result: release with p2c2r_result_release */
    size_t output_len;
    uint32_t exec_us;   /* executor time on the peer */
    uint32_t peer_id;   /* which peer ran it (0 = none) */
    uint16_t attempts;  /* assignments it took (0 = refused or ended before any) */
    uint32_t flags;     /* P2C2R_RESULT_* */
};

/* Frees the memory held by a result (not the struct itself).  Safe on a
 * zeroed struct. */
P2C2R_API void p2c2r_result_release(struct p2c2r_result *r);

/* Waits up to timeout_ms (-1 = forever, 0 = don't block) for ticket t's
 * result and moves it into *out (the caller then owns out->output).  Returns
 * 0, ETIMEDOUT (the task stays in flight; wait again or cancel it), or
 * ENOTFOUND (unknown or already collected ticket).  When the connection
 * fails, every outstanding task completes with status ECLOSED or EIO (or the
 * coordinator's error code), so a wait never hangs on a dead connection. */
P2C2R_API int p2c2r_client_wait(p2c2r_client *c, p2c2r_ticket t, int timeout_ms, struct p2c2r_result *out);

/* Collects up to max finished results in completion order, waiting up to
 * timeout_ms for the first one.  Returns how many were written (0 when the
 * timeout passed or nothing is outstanding) or EINVAL.  The caller owns each
 * result's output. */
P2C2R_API int p2c2r_client_poll(p2c2r_client *c, struct p2c2r_result *out, size_t max, int timeout_ms);

/* Asks the coordinator to cancel a task.  Its result (ECANCELLED, or the
 * real one if it finished first) still arrives.  Errors: ENOTFOUND. */
P2C2R_API int p2c2r_client_cancel(p2c2r_client *c, p2c2r_ticket t);

/* Non-blocking face.  p2c2r_client_fd returns the socket to poll;
 * p2c2r_client_want_write says whether to ask for POLLOUT too;
 * p2c2r_client_process reads and writes what it can without blocking and
 * returns the number of results that became ready, or a connection error. */
P2C2R_API int p2c2r_client_fd(const p2c2r_client *c);
P2C2R_API int p2c2r_client_want_write(const p2c2r_client *c);
P2C2R_API int p2c2r_client_process(p2c2r_client *c);

/* Blocks until everything queued has been written, up to timeout_ms. */
P2C2R_API int p2c2r_client_flush(p2c2r_client *c, int timeout_ms);

/* Number of tasks submitted whose results have not been collected. */
P2C2R_API size_t p2c2r_client_pending(const p2c2r_client *c);

/* Most tasks this client may have in flight (from the coordinator). */
P2C2R_API uint32_t p2c2r_client_max_inflight(const p2c2r_client *c);

/* Backpressure, for a frame loop.
 *
 * A coordinator that cannot do a task in time refuses it instead of queueing
 * it: the result comes back at once with status EQUEUEFULL (its queues are
 * full) or EDEADLINE (at the current load it would miss its deadline_ms).
 * For a game that is the cue to ask for less -- fewer rays per tile, a
 * coarser path grid, the low-resolution frame without the upscale -- and not
 * to resubmit the same work, which only adds to the load that caused the
 * refusal.  Give frame-bound tasks a deadline_ms that matches the frame
 * budget, so the coordinator refuses early rather than delivering late.
 *
 * Once per frame, after p2c2r_client_process (or poll):
 *
 *     struct p2c2r_pressure p;
 *     p2c2r_client_pressure(c, &p);
 *     if (p.last_reject_ms_ago < 250 || p.inflight * 4 >= p.max_inflight * 3)
 *         quality = lower(quality);            // shed load now
 *     else if (p.last_reject_ms_ago > 2000)
 *         quality = raise(quality);            // calm for 2 s: probe upward, one step
 *
 * The gap between the two thresholds keeps quality from flapping; the
 * inflight test catches the client's own limit (where submit would return
 * EAGAIN) before it is hit.  reject_ratio says how hard to cut: about that
 * fraction of recent tasks was refused. */
struct p2c2r_pressure {
    uint32_t inflight;             /* submitted, result not yet arrived */
    uint32_t max_inflight;         /* the coordinator's limit for this connection */
    uint64_t rejected_queue_full;  /* results with status EQUEUEFULL since connect */
    uint64_t rejected_deadline;    /* results with status EDEADLINE since connect */
    uint64_t last_reject_ms_ago;   /* since the latest of those; UINT64_MAX if never */
    double reject_ratio;           /* share of those two among recent results, 0..1: the
                                      mean over the first 16 results, then each new result
                                      weighs 1/16; 0 before any result */
    size_t unsent_bytes;           /* bytes queued for the coordinator (submitted tasks,
                                      uploads, cancels) not yet written to the socket: growing
                                      means the network, not the coordinator, is behind */
};

/* Writes the client's backpressure figures to *out.  Counts only what has
 * been read so far (by process, poll, wait and the other blocking calls),
 * and only results the coordinator sent: the results a failed connection
 * gives every outstanding task (ECLOSED, EIO, ...) are not counted.  Does no
 * I/O and never blocks, so it is cheap enough for every frame.  The counters
 * survive a connection failure.  Errors: EINVAL (c or out NULL). */
P2C2R_API int p2c2r_client_pressure(const p2c2r_client *c, struct p2c2r_pressure *out);

/* Fetches the coordinator's statistics as a JSON document (blocking).  On
 * success *json is a new NUL-terminated string the caller owns: free it with
 * p2c2r_stats_free (not free(), so the library's allocator is used on both
 * sides). */
P2C2R_API int p2c2r_client_stats(p2c2r_client *c, int timeout_ms, char **json);

/* Frees a string from p2c2r_client_stats.  NULL is a no-op.  Any thread. */
P2C2R_API void p2c2r_stats_free(char *json);

/* Uploads a blob (a map, a mesh: bytes many tasks share) to the coordinator
 * and waits up to timeout_ms for its content hash (SHA-256), written to
 * hash.  Tasks then name it in p2c2r_task.blobs, and the executor finds it
 * by the hash's 64-hex form (p2c2r_blob_hex) in its params.  The
 * coordinator forwards a blob to a peer only when that peer lacks it.
 * Uploading the same bytes again is cheap (answered from the store).
 * Errors: ETOOBIG (over the frame or store limit), EQUEUEFULL (store full),
 * ETIMEDOUT, connection errors.  Blocking. */
P2C2R_API int p2c2r_client_put_blob(p2c2r_client *c, const void *data, size_t len, int timeout_ms,
                                    uint8_t hash[32]);

/* Writes the 64 lowercase hex digits of hash and a NUL to out. */
P2C2R_API void p2c2r_blob_hex(const uint8_t hash[32], char out[65]);

/* Text of the last connection-level error the coordinator sent, or "". */
P2C2R_API const char *p2c2r_client_last_error(const p2c2r_client *c);

#ifdef __cplusplus
}
#endif
#endif
