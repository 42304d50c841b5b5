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

/* Priority classes (the scheduler honours them; see docs/PROTOCOL.md). */
enum p2c2r_priority { P2C2R_PRIO_REALTIME = 0, P2C2R_PRIO_INTERACTIVE = 1, P2C2R_PRIO_BACKGROUND = 2 };

struct p2c2r_task {
    const char *type;      /* task type, e.g. "echo"; 1..32 bytes */
    uint32_t min_version;  /* 0 = any version of the executor */
    uint32_t deadline_ms;  /* 0 = coordinator default */
    uint8_t priority;      /* enum p2c2r_priority */
    const char *params;    /* "key=value\n" lines, may be NULL */
    size_t params_len;
    const void *input;     /* borrowed: copied into the send buffer */
    size_t input_len;
    const uint8_t (*blobs)[32]; /* hashes of uploaded blobs the task uses (see
                                   p2c2r_client_put_blob), may be NULL */
    size_t nblobs;              /* at most 4 */
};

/* Queues one task for sending without blocking and returns its ticket.
 * The input is copied; the caller keeps ownership of t.  Errors: EINVAL,
 * ETOOBIG (over the coordinator's frame limit), EAGAIN (as many tasks in
 * flight as the coordinator allows: collect results first; this is the
 * backpressure signal), ECLOSED/EIO (connection gone), ENOMEM. */
P2C2R_API int p2c2r_client_submit(p2c2r_client *c, const struct p2c2r_task *t, p2c2r_ticket *out);

/* Queues n tasks as one SUBMIT_BATCH frame (several frames if they do not fit
 * in one).  All or nothing: on error no task was queued.  tickets must have
 * room for n. */
P2C2R_API int p2c2r_client_submit_batch(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n,
                              p2c2r_ticket *tickets);

struct p2c2r_result {
    p2c2r_ticket ticket;
    int status;         /* 0 = ok, else a p2c2r_error (ETASK, ETIMEDOUT, ...) */
    void *output;       /* output bytes, or the error text when status != 0;
                           owned by the result: release with p2c2r_result_release */
    size_t output_len;
    uint32_t exec_us;   /* executor time on the peer */
    uint32_t peer_id;   /* which peer ran it (0 = none) */
    uint16_t attempts;  /* assignments it took */
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

/* Fetches the coordinator's statistics as a JSON document (blocking).  On
 * success *json is a NUL-terminated string the caller frees with free(). */
P2C2R_API int p2c2r_client_stats(p2c2r_client *c, int timeout_ms, char **json);

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
