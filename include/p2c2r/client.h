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
 * Errors.  Every fallible function returns 0 (or a count) on success and a
 * negative p2c2r_error on failure; out-parameters are written only on
 * success.  Each contract below lists every code the function returns.  Two
 * sets recur:
 *   - a *size error* is EINVAL for a sized struct whose size member is out of
 *     range (see "Sized structs" below);
 *   - a *connection error* is the code the client's connection failed with,
 *     which every later call that needs the connection returns again:
 *     ECLOSED (the coordinator closed it), EIO (a socket error), EPROTO (the
 *     coordinator sent something malformed), ETOOBIG (a frame over
 *     max_result_bytes), or the code of an ERROR frame from the coordinator
 *     (EAUTH, EVERSION, ELIMIT, ESHUTDOWN, EPROTO, ETOOBIG, ...; its text is
 *     in p2c2r_client_last_error).
 * Every submitted task gets exactly one result: its output, an executor
 * error, a timeout, a cancellation, or the connection's failure.
 *
 * Threads.  A client may be used from one thread at a time; distinct clients
 * are independent.  Functions that take no client (p2c2r_version,
 * p2c2r_blob_hex, the p2c2r_*_init helpers, p2c2r_result_release,
 * p2c2r_stats_free, and p2c2r_strerror / p2c2r_errname in error.h) may be
 * called from any thread at any time.  The library installs no signal
 * handlers and never raises SIGPIPE.
 *
 * Memory.  The library allocates with its own allocator; whatever it hands
 * over is freed with the one function for that kind of object:
 *   client  p2c2r_client_connect -> p2c2r_client_close
 *   result  output of p2c2r_client_wait / _poll -> p2c2r_result_release
 *   stats   p2c2r_client_stats -> p2c2r_stats_free
 * Never pass these pointers to free().  Every other pointer the library
 * receives is borrowed for the duration of the call (task inputs are copied
 * before submit returns).
 *
 * Sized structs (the ABI rule).  Every struct the library reads or fills
 * begins with `uint32_t size`, which the caller sets to sizeof the struct as
 * the header it was compiled with declares it: use the P2C2R_*_INIT
 * initializers (C), the p2c2r_*_init functions (C and C++), or
 * `.size = sizeof x` in a designated initializer.  New fields are only ever
 * appended, so a program built against an older header keeps working with a
 * newer library:
 *   - in a struct it reads (task, options) the library reads only the
 *     fields that lie wholly within size; every other field counts as zero,
 *     and zero always means the behaviour the library had before the field
 *     existed.  When size is past the library's own sizeof (a newer header),
 *     the bytes past it must be zero (that header's new fields left unset):
 *     a nonzero byte there asks for something this library cannot do, and
 *     is EINVAL;
 *   - in a struct it fills (result, pressure) the library writes only the
 *     fields that lie wholly within size, writes size itself back unchanged,
 *     and sets the bytes past its own sizeof (a newer header's new fields)
 *     to zero;
 *   - a size below the struct's P2C2R_*_SIZE_MIN (0 included) or above
 *     P2C2R_STRUCT_SIZE_MAX is EINVAL: a struct nobody initialised is caught
 *     instead of misread.
 * In an array the size of the first element is also the stride: the library
 * steps through the caller's array by that many bytes, so an array built
 * with an older header is read (p2c2r_client_submit_batch) and filled
 * (p2c2r_client_poll) at the older, smaller element size. */
#ifndef P2C2R_CLIENT_H
#define P2C2R_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "p2c2r/error.h"
#include "p2c2r/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The largest size any sized struct may give (see "Sized structs"). */
#define P2C2R_STRUCT_SIZE_MAX 4096u

/* An initializer that sets only the size member of struct T (the other
 * members are zero).  C only: C++ compilers warn about the members it leaves
 * out, so C++ code uses the p2c2r_*_init functions instead. */
#ifndef __cplusplus
#define P2C2R_SIZED_INIT_(T) {.size = (uint32_t)sizeof(T)}
#endif

typedef struct p2c2r_client p2c2r_client;

/* A task's handle, unique within its client.  A struct so it cannot be
 * mixed up with other integers.  Its layout is fixed for good: it is passed
 * by value. */
typedef struct {
    uint64_t id;
} p2c2r_ticket;

/* Returns the version of the library loaded at run time, e.g. "0.2.0": a
 * static string, valid for as long as the library is loaded; never NULL.
 * The headers compiled against give theirs in P2C2R_VERSION_STRING,
 * P2C2R_VERSION_MAJOR / _MINOR / _PATCH and P2C2R_VERSION_NUM (0xMMmmpp, for
 * #if), from p2c2r/version.h. */
P2C2R_API const char *p2c2r_version(void);

/* ---- connecting ----------------------------------------------------------- */

struct p2c2r_client_options {
    uint32_t size;           /* sizeof(struct p2c2r_client_options): see "Sized structs" */
    const char *token;       /* credential, NULL for none; borrowed for the call */
    const char *name;        /* shown in coordinator stats, NULL for none; borrowed */
    int connect_timeout_ms;  /* 0 (or negative) = 5000 */
    size_t max_result_bytes; /* larger results fail the connection; 0 = 16 MiB, max 1 GiB */
    /* Fields below were added after the first layout (P2C2R_CLIENT_OPTIONS_SIZE_MIN). */
    uint32_t spin_us;        /* blocking waits busy-poll this long before sleeping
                                (0 = never; worth it only with a core to spare; max 1 s) */
    uint32_t reserved_;      /* never read: it lies in the tail padding of the layout
                                that ended with spin_us, where older callers left garbage */
    /* Automatic reconnect (see "Connection state" below).  0 = off: a lost
     * connection fails the client for good, as before these fields. */
    uint32_t reconnect_ms;     /* first delay before reconnecting; doubled after each failed
                                  attempt, with jitter (each delay is drawn from [d/2, d]) */
    uint32_t reconnect_max_ms; /* the delay stops doubling here; 0 = 5000 (at least
                                  reconnect_ms, at most 10 minutes) */
    /* Local fallback (see "Local fallback" below).  0 = off: a task in
     * flight on a lost connection fails, as before these fields. */
    uint32_t local_fallback_us; /* CPU time per frame this process may spend running tasks
                                   of the built-in types itself while the coordinator is
                                   unreachable or refuses them (at most 1 s) */
    uint32_t local_frame_us;    /* the frame that budget renews with; 0 = 16667 (60 Hz) */
    /* TLS 1.3 (docs/PROTOCOL.md, "TLS"), required by a coordinator started
     * with --tls-cert.  tls_ca_file turns it on: a PEM file of the CAs the
     * coordinator's certificate must chain to (for a self-signed one, the
     * certificate itself); read once, at connect.  The certificate must carry
     * tls_server_name, or when that is NULL the host of the address given to
     * connect (a DNS name, or an IP address for an IP SAN such as 127.0.0.1).
     * Both borrowed for the call.  NULL = plaintext, as before these fields. */
    const char *tls_ca_file;
    const char *tls_server_name;
};

/* The smallest size p2c2r_client_connect accepts: the first layout, up to
 * max_result_bytes. */
#define P2C2R_CLIENT_OPTIONS_SIZE_MIN \
    (offsetof(struct p2c2r_client_options, max_result_bytes) + sizeof(size_t))
#define P2C2R_CLIENT_OPTIONS_INIT P2C2R_SIZED_INIT_(struct p2c2r_client_options)

/* Zeroes *o and sets o->size: every option at its default. */
static inline void p2c2r_client_options_init(struct p2c2r_client_options *o)
{
    memset(o, 0, sizeof(*o));
    o->size = (uint32_t)sizeof(*o);
}

/* Connects to a coordinator at "HOST:PORT" and completes the HELLO exchange
 * (blocking, up to connect_timeout_ms).  opts is borrowed for the call; NULL
 * means every option at its default (as p2c2r_client_options_init gives).
 * On success *out is a new client the caller owns: release it with
 * p2c2r_client_close.
 * Errors: EINVAL (out NULL, a size error in opts, max_result_bytes over
 * 1 GiB, token or name too long), EADDR (addr NULL, malformed or not
 * resolvable), EIO (socket or connect failure, or the coordinator closed
 * the connection during HELLO), ETIMEDOUT, ENOMEM, EPROTO, ETOOBIG, or the
 * code of the coordinator's ERROR frame (EAUTH: bad token; EVERSION: no
 * common protocol version; ELIMIT: too many connections; ESHUTDOWN).
 * Thread context: any thread; blocking. */
P2C2R_API int p2c2r_client_connect(const char *addr, const struct p2c2r_client_options *opts,
                                   p2c2r_client **out);

/* Starts connecting to a coordinator at "HOST:PORT" and returns at once: the
 * TCP connect and the HELLO exchange then complete inside
 * p2c2r_client_process, which a frame loop calls when p2c2r_client_fd() is
 * ready (p2c2r_client_want_write() is 1 meanwhile: poll for POLLOUT too) or
 * when p2c2r_client_timeout_ms() has passed.  p2c2r_client_state() says
 * when it is READY; until then submit and put_blob_start return EAGAIN.  A
 * failure to connect (refused, unreachable, no HELLO_OK within
 * connect_timeout_ms, or the coordinator's ERROR) is returned once by the
 * process call that sees it and leaves the client FAILED, or with
 * reconnect_ms set, waiting to try again (BACKOFF).  The address is resolved
 * before the call returns: a numeric address never blocks, a host name may
 * block in the system's resolver.  opts is borrowed for the call (token and
 * name are copied, for reconnecting).  On success *out is a new client the
 * caller owns: release it with p2c2r_client_close.
 * Errors: EINVAL (as p2c2r_client_connect), EADDR, EIO (no socket), ENOMEM.
 * Thread context: any thread; never blocks (but see the resolver above). */
P2C2R_API int p2c2r_client_connect_start(const char *addr, const struct p2c2r_client_options *opts,
                                         p2c2r_client **out);

/* Local fallback.
 *
 * The P2C2R design's order of fallback is first peer, another peer, the
 * operator's own machines, the game itself.  With local_fallback_us set, the
 * last step is the library's: while the coordinator is unreachable, or
 * when it refuses a task that the peers cannot run in time (EDEADLINE), at
 * all (EUNSUPPORTED) or now (EQUEUEFULL), tasks of the built-in types
 * (echo, sha256, pathfind, physics, raytrace, upscale: the executors of
 * include/p2c2r/executor.h, which libp2c2r links) run in this process,
 * synchronously, inside p2c2r_client_process, _poll and _wait, never on a
 * thread of their own.  That covers the tasks outstanding when the
 * connection is lost (instead of failing them), the tasks submitted while
 * there is none (BACKOFF or FAILED, or CONNECTING again after a failure;
 * without the option, submit returns EAGAIN or the failure then), and
 * those refusals (the pressure figures count the refusal as it arrives).  Only tasks whose every input the library
 * holds qualify: a built-in type, no requirements (GPU, cores, memory), and
 * only blobs this client uploaded (put_blob, put_blob_start), whose bytes
 * the library then keeps, up to 64 MiB, the oldest dropped first; a task
 * naming another blob fails as without the option.  The library keeps a
 * copy of such a task's body from its submit until its result.  All this
 * only while the option is set.
 *
 * Each frame (local_frame_us of the monotonic clock) may spend at most
 * local_fallback_us running tasks locally.  What a task will take is its
 * executor's cost estimate times the time per cost unit the library learned
 * for the type, from the exec_us of the type's results that peers returned
 * (for tasks whose cost it knows) and from its own local runs (in bounded
 * steps; a run that derived state from a blob, such as a parsed map, which
 * the library keeps for later local runs as a peer does, teaches nothing).
 * A task whose estimate is over the whole budget does not run locally: it
 * gets the outcome it would have had without the option (the connection's
 * failure, e.g. ECLOSED, or for a task submitted while disconnected, that
 * failure, else ECLOSED; a refused task, its refusal); but once a type's tasks were all over the budget
 * for a second, one estimated at up to 4 budgets runs as a frame's only
 * task (a probe: refusals teach nothing, and the estimate may be stale).  One that fits the budget but not what is left of this
 * frame's waits for the next frame; one whose deadline (deadline_ms, 0 =
 * 60 s) passes, or that would end past it by its estimate, gets ETIMEDOUT;
 * p2c2r_client_cancel gives a waiting one ECANCELLED.  With nothing learned
 * for its type, a task runs only as the first local task of a frame (and
 * teaches the type's time).  Either way each task gets exactly one result.
 * A local result carries P2C2R_RESULT_LOCAL, peer_id 0, attempts 0 and the
 * run's wall time in exec_us; the output is what the built-in executor
 * gives, byte for byte what a peer running the same version returns for a
 * deterministic type.  Local outcomes are not the coordinator's: the
 * pressure figures count them as lost.  p2c2r_client_timeout_ms() is 0
 * while a local task can run now and otherwise counts to the next frame,
 * so a frame loop that follows it neither spins nor sleeps past the work. */

/* Connection state (p2c2r_client_state).
 *
 * A client is CONNECTING (TCP connect or HELLO in progress), READY,
 * BACKOFF (its connection was lost or an attempt failed, and with
 * reconnect_ms set it waits to try again) or FAILED (for good: without
 * reconnect_ms after any connection failure, and with it after EAUTH,
 * EVERSION, EPROTO or ETOOBIG, which a new attempt would only repeat).
 *
 * When a connection is lost, every task and upload in flight on it gets
 * exactly one result carrying the failure (ECLOSED, EIO, ...), once; none
 * is resent, since a frame task is worthless a frame later.  From then on
 * p2c2r_client_fd() no longer reports the dead socket: the descriptor keeps
 * its number for the client's life (a frame loop may keep it in its poll
 * set) but stands for a placeholder that never polls readable, until a new
 * connection takes the number over.  So a loop that polls it does not spin.
 * p2c2r_client_process returns the failure in the call that sees it; later
 * calls return it again when the client is FAILED, and 0 or more while it
 * reconnects (the attempts happen inside process, when
 * p2c2r_client_timeout_ms() says one is due).  Each reconnect sends a new
 * HELLO with the same token and name; tickets stay unique across
 * connections. */
enum p2c2r_state {
    P2C2R_STATE_CONNECTING = 1,
    P2C2R_STATE_READY = 2,
    P2C2R_STATE_BACKOFF = 3,
    P2C2R_STATE_FAILED = 4,
};

/* The client's enum p2c2r_state; 0 for NULL.  No I/O.  Thread context: the
 * client's thread. */
P2C2R_API int p2c2r_client_state(const p2c2r_client *c);

/* Milliseconds until the client needs p2c2r_client_process even if its fd
 * stays quiet (a reconnect attempt due, a connect or HELLO that would time
 * out, local fallback work that can run now or in the next frame): 0 = call it now, -1 = only when the fd is ready (also for NULL).
 * Use it as (an upper bound of) the timeout of the frame loop's own poll, as
 * with curl_multi_timeout.  No I/O.  Thread context: the client's thread. */
P2C2R_API int p2c2r_client_timeout_ms(const p2c2r_client *c);

/* Closes the connection and frees the client and every result not yet
 * collected; results already collected stay valid (release them with
 * p2c2r_result_release, before or after).  Every pointer the client handed
 * out that lives "until p2c2r_client_close" ends here.  NULL is a no-op. */
P2C2R_API void p2c2r_client_close(p2c2r_client *c);

/* ---- submitting ----------------------------------------------------------- */

/* Priority classes (the scheduler honours them; see docs/PROTOCOL.md).
 * Values above P2C2R_PRIO_BACKGROUND count as background. */
enum p2c2r_priority { P2C2R_PRIO_REALTIME = 0, P2C2R_PRIO_INTERACTIVE = 1, P2C2R_PRIO_BACKGROUND = 2 };

/* p2c2r_task.flags. */
#define P2C2R_TASK_NOCACHE 0x1u /* the coordinator must not answer this task from its result
                                   cache, merge it with an identical task in flight, or cache
                                   its result: for inputs that are never repeated, or when a
                                   fresh run is the point (benchmarks, non-deterministic work) */

/* One task.  Start from P2C2R_TASK_INIT (or p2c2r_task_init, or a
 * designated initializer with .size = sizeof): every field you do not set is
 * zero, and a zero field keeps the behaviour the library had before that
 * field existed.  Every pointer in it is borrowed for the call that takes
 * the task. */
struct p2c2r_task {
    uint32_t size;         /* sizeof(struct p2c2r_task): see "Sized structs" */
    const char *type;      /* task type, e.g. "echo"; 1..32 bytes */
    uint32_t min_version;  /* 0 = any version of the executor */
    uint32_t deadline_ms;  /* 0 = coordinator default; with a deadline the coordinator may
                              refuse the task at once (EDEADLINE) rather than deliver late */
    uint8_t priority;      /* enum p2c2r_priority */
    const char *params;    /* "key=value\n" lines, may be NULL */
    size_t params_len;
    const void *input;     /* copied into the send buffer before submit returns */
    size_t input_len;
    /* Fields below were added after the first layout (P2C2R_TASK_SIZE_MIN). */
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
    /* The caller's own value for this task, returned unchanged in
     * p2c2r_result.user: e.g. (frame << 8 | kind), or a pointer through
     * uintptr_t.  Never sent to the coordinator.  A uint64_t rather than a
     * void *: the same size on every platform, it holds a pointer, and it can
     * be packed, compared, printed (the trace shows it) without casts. */
    uint64_t user;
};

/* The smallest size a task may give: the first layout, up to input_len. */
#define P2C2R_TASK_SIZE_MIN (offsetof(struct p2c2r_task, input_len) + sizeof(size_t))
#define P2C2R_TASK_INIT P2C2R_SIZED_INIT_(struct p2c2r_task)

/* Zeroes *t and sets t->size. */
static inline void p2c2r_task_init(struct p2c2r_task *t)
{
    memset(t, 0, sizeof(*t));
    t->size = (uint32_t)sizeof(*t);
}

/* Queues one task for sending without blocking and returns its ticket in
 * *out.  t is borrowed for the call: the input, params and blob hashes are
 * copied, so the caller may reuse them at once.
 * Errors: EINVAL (c, t or out NULL, a size error in t, type NULL or not 1..32
 * bytes, params over the protocol limit, params_len or input_len nonzero with
 * a NULL pointer, more than 4 blobs or blobs NULL with nblobs, unknown flags),
 * ETOOBIG (over the coordinator's frame limit), EAGAIN (this client already
 * has as many tasks in flight as the coordinator allows: collect results
 * first; or the send buffer cannot grow: let it drain; or the client is not
 * READY: connecting or waiting to reconnect), ENOMEM, or the connection
 * error (once the client is FAILED).
 *
 * EAGAIN is only the local half of backpressure.  The coordinator's half
 * arrives later, as the task's result: status EQUEUEFULL (its queues are
 * full) or EDEADLINE (at the current load the task would miss deadline_ms).
 * Both are counted by p2c2r_client_pressure, which says how a frame loop
 * should react.
 * Thread context: the client's thread; never blocks (it may write to the
 * socket what the socket takes at once). */
P2C2R_API int p2c2r_client_submit(p2c2r_client *c, const struct p2c2r_task *t, p2c2r_ticket *out);

/* Queues n tasks as one SUBMIT_BATCH frame (several frames if they do not fit
 * in one) and writes their tickets to tickets[0..n-1].  tasks is an array of
 * n tasks whose stride is tasks[0].size, and every element must carry that
 * same size (so a caller built against an older header passes its own, smaller
 * elements).  All or nothing: on error no task was queued and tickets is
 * untouched.  tasks is borrowed for the call, like p2c2r_client_submit's t.
 * Errors: those of p2c2r_client_submit for any element, EINVAL also for n 0,
 * tickets NULL, or an element whose size differs from tasks[0].size.
 * Thread context: as p2c2r_client_submit. */
P2C2R_API int p2c2r_client_submit_batch(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n,
                                        p2c2r_ticket *tickets);

/* Asks the coordinator to cancel a task.  Its result (ECANCELLED, or the
 * real one if it finished first) still arrives.  Returns 0 as well when
 * there is nothing left to cancel: the result has arrived and waits to be
 * collected, or the connection has failed (the result carries the failure),
 * or t is an upload (p2c2r_client_put_blob_start), which cannot be cancelled.
 * Errors: EINVAL (c NULL), ENOTFOUND (unknown or already collected ticket),
 * ENOMEM (the send buffer cannot grow).
 * Thread context: the client's thread; never blocks. */
P2C2R_API int p2c2r_client_cancel(p2c2r_client *c, p2c2r_ticket t);

/* ---- collecting results --------------------------------------------------- */

/* p2c2r_result.flags. */
#define P2C2R_RESULT_CACHED 0x1u /* answered from the coordinator's result cache or by an
                                    identical task in flight: no peer ran it for this ticket
                                    (attempts is 0; exec_us and peer_id describe the run that
                                    produced it when that was an identical task in flight, and
                                    are 0 for an answer from the cache) */
#define P2C2R_RESULT_HEDGED 0x2u /* a second copy ran on another peer; the first answer won */
#define P2C2R_RESULT_VERIFIED 0x4u /* independent peers returned the same output (the
                                      coordinator's verification policy for the type accepted
                                      it); absent on a result nobody checked */
#define P2C2R_RESULT_LOCAL 0x8u /* run in this process by the local fallback: the
                                   coordinator was unreachable or refused the task (see
                                   "Local fallback") */

/* One task's outcome.  The caller sets size (P2C2R_RESULT_INIT or
 * p2c2r_result_init) before handing the struct to p2c2r_client_wait or
 * p2c2r_client_poll, which fill the rest. */
struct p2c2r_result {
    uint32_t size;      /* sizeof(struct p2c2r_result), set by the caller: see "Sized structs" */
    p2c2r_ticket ticket;
    int status;         /* 0 = ok, else a p2c2r_error (ETASK, ETIMEDOUT, ...); a
                           coordinator newer than this library may send a code it does
                           not know: treat it as a generic failure */
    void *output;       /* output bytes, or the error text when status != 0, followed by
                           a NUL not counted in output_len; may be NULL when output_len
                           is 0.  Owned by the result: release with p2c2r_result_release */
    size_t output_len;
    uint32_t exec_us;   /* executor time on the peer */
    uint32_t peer_id;   /* which peer ran it (0 = none) */
    uint16_t attempts;  /* assignments it took (0 = refused or ended before any) */
    /* Fields below were added after the first layout (P2C2R_RESULT_SIZE_MIN). */
    uint32_t flags;     /* P2C2R_RESULT_* */
    uint64_t user;      /* the task's p2c2r_task.user (put_blob_start's user) */
};

/* The smallest size a result may give: the first layout, up to attempts. */
#define P2C2R_RESULT_SIZE_MIN (offsetof(struct p2c2r_result, attempts) + sizeof(uint16_t))
#define P2C2R_RESULT_INIT P2C2R_SIZED_INIT_(struct p2c2r_result)

/* Zeroes *r and sets r->size. */
static inline void p2c2r_result_init(struct p2c2r_result *r)
{
    memset(r, 0, sizeof(*r));
    r->size = (uint32_t)sizeof(*r);
}

/* Frees the output a result owns (not the struct itself) and sets output to
 * NULL and output_len to 0, so the struct can be filled again.  A collected
 * result does not depend on its client: release it from any thread, before
 * or after p2c2r_client_close.  Safe on NULL and on a struct from
 * P2C2R_RESULT_INIT or p2c2r_result_init that was never filled. */
P2C2R_API void p2c2r_result_release(struct p2c2r_result *r);

/* Waits up to timeout_ms (-1 = forever, 0 = don't block) for ticket t's
 * result and moves it into *out, whose size the caller has set; the caller
 * then owns out->output.  When the connection fails, every outstanding task
 * completes with status ECLOSED or EIO (or the coordinator's error code), so
 * a wait never hangs on a dead connection.
 * Errors: EINVAL (c or out NULL, a size error in out), ENOTFOUND (unknown or
 * already collected ticket), ETIMEDOUT (the task stays in flight: wait again
 * or cancel it).
 * Thread context: the client's thread; blocks up to timeout_ms. */
P2C2R_API int p2c2r_client_wait(p2c2r_client *c, p2c2r_ticket t, int timeout_ms, struct p2c2r_result *out);

/* Collects up to max finished results in completion order, waiting up to
 * timeout_ms (-1 = forever, 0 = don't block) for the first one.  Before it
 * returns it writes what the socket takes of the queued submits, cancels
 * and uploads, so a frame loop that submits and then polls (even with
 * timeout 0) needs no p2c2r_client_flush or process to send its work.  out is an
 * array of max results whose stride is out[0].size, which the caller sets
 * (P2C2R_RESULT_INIT on out[0] is enough); the library fills out[0],
 * out[1], ... at that stride and writes that size into each result it
 * fills, so the same array can be polled again.  Returns how many were
 * written (0 when the timeout passed or nothing is outstanding, at most
 * INT_MAX); the caller owns each result's output.
 * Errors: EINVAL (c or out NULL, max 0, a size error in out[0]).  A failed
 * connection is not an error here: its outstanding tasks come back as
 * results carrying the failure.
 * Thread context: the client's thread; blocks up to timeout_ms. */
P2C2R_API int p2c2r_client_poll(p2c2r_client *c, struct p2c2r_result *out, size_t max, int timeout_ms);

/* ---- non-blocking face ---------------------------------------------------- */

/* The descriptor to poll, valid until p2c2r_client_close (do not read, write
 * or close it yourself); -1 when c is NULL (or, rarely, when the library
 * could not make its placeholder: see below).  Its number stays the same for
 * the client's life.  After a connection failure it no longer stands for the
 * dead socket but for a placeholder that never polls readable (see
 * "Connection state"), so the loop does not spin on it. */
P2C2R_API int p2c2r_client_fd(const p2c2r_client *c);

/* 1 while there is output to write or a connect in progress (ask for
 * POLLOUT too), else 0 (also for NULL and while there is no connection). */
P2C2R_API int p2c2r_client_want_write(const p2c2r_client *c);

/* Reads and writes what it can without blocking and returns the number of
 * results that became ready (0 or more).  It also moves a connect forward
 * and makes the reconnect attempts that are due (see "Connection state"),
 * and runs the local fallback's tasks that fit this frame (see "Local
 * fallback": it blocks for as long as they run, at most about the budget;
 * a FAILED client returns its error even then, the results come through
 * p2c2r_client_poll).
 * Errors: EINVAL (c NULL), or the connection error: when it happened in this
 * call (the outstanding tasks' results then carry it), and on every later
 * call once the client is FAILED; a client that reconnects returns it once.
 * Thread context: the client's thread; never waits for I/O (local fallback
 * runs are the caller's CPU time, within its budget). */
P2C2R_API int p2c2r_client_process(p2c2r_client *c);

/* Blocks until everything queued has been written, up to timeout_ms (-1 =
 * forever).  Reads meanwhile, so results keep arriving.
 * Errors: EINVAL (c NULL), ETIMEDOUT, or the connection error.
 * Thread context: the client's thread; blocks up to timeout_ms. */
P2C2R_API int p2c2r_client_flush(p2c2r_client *c, int timeout_ms);

/* Number of tasks submitted whose results have not been collected (0 for
 * NULL).  No I/O. */
P2C2R_API size_t p2c2r_client_pending(const p2c2r_client *c);

/* Most tasks this client may have in flight (from the coordinator's
 * HELLO_OK; 0 for NULL).  No I/O. */
P2C2R_API uint32_t p2c2r_client_max_inflight(const p2c2r_client *c);

/* ---- backpressure --------------------------------------------------------- */

/* Backpressure, for a frame loop.
 *
 * A coordinator that cannot do a task in time refuses it instead of queueing
 * it: the result comes back at once with status EQUEUEFULL (its queues are
 * full) or EDEADLINE (at the current load it would miss its deadline_ms).  A
 * task it accepted may still miss: ETIMEDOUT, or a result that arrives after
 * the task's deadline_ms (late).  For a game every miss is the cue to ask for
 * less -- fewer rays per tile, a coarser path grid, the low-resolution frame
 * without the upscale -- and not to resubmit the same work, which only adds
 * to the load that caused it.  Give frame-bound tasks a deadline_ms that
 * matches the frame budget, so the coordinator refuses early rather than
 * delivering late.
 *
 * The library keeps these figures per task type and for the whole
 * connection (p2c2r_client_type_pressure, p2c2r_client_pressure), and
 * p2c2r_client_frame_advice turns a type's figures into this frame's
 * decision.  Once per frame, after p2c2r_client_process:
 *
 *     struct p2c2r_frame_advice a = P2C2R_FRAME_ADVICE_INIT;
 *     p2c2r_client_frame_advice(c, "raytrace", now_ms, 16000, &a);
 *     quality += a.quality;                  // -1, 0 or +1: already damped
 *     for (uint32_t i = 0; i < a.fit && i < tiles_wanted; i++)
 *         submit_tile(c, quality, i);        // the rest: last frame's, or local
 *     ...
 *     n = p2c2r_client_poll(c, res, 64, 0);  // also sends what was submitted
 *
 * The helper lowers quality when a tenth or more of the tasks submitted since
 * its last step missed, or when their round trips' p90 is over the budget;
 * it raises quality after 2 s without a miss when the p90 is under half the
 * budget (a step up is assumed to cost at most twice as much).  Steps are at
 * least 1 s apart, and misses of tasks submitted before a step do not count
 * against the next one, so quality never flaps.  fit grows by one per frame
 * while nothing misses and halves when something does, and is at least 1
 * when no task of the type is in flight: a type is never locked out, so the
 * game keeps learning what the lower quality costs. */
struct p2c2r_pressure {
    uint32_t size;                 /* sizeof(struct p2c2r_pressure), set by the caller */
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
    /* Fields below were added after the first layout (P2C2R_PRESSURE_SIZE_MIN). */
    uint64_t timed_out;            /* results with status ETIMEDOUT since connect */
    uint64_t late;                 /* results delivered after their task's deadline_ms, on
                                      the client's clock (submit to arrival) */
    uint64_t last_miss_ms_ago;     /* since the latest refusal, timeout or late result;
                                      UINT64_MAX if never */
    double miss_ratio;             /* as reject_ratio, counting refusals, timeouts and
                                      late results */
};

/* The smallest size p2c2r_client_pressure accepts: the first layout, up to
 * unsent_bytes. */
#define P2C2R_PRESSURE_SIZE_MIN (offsetof(struct p2c2r_pressure, unsent_bytes) + sizeof(size_t))
#define P2C2R_PRESSURE_INIT P2C2R_SIZED_INIT_(struct p2c2r_pressure)

/* Zeroes *p and sets p->size. */
static inline void p2c2r_pressure_init(struct p2c2r_pressure *p)
{
    memset(p, 0, sizeof(*p));
    p->size = (uint32_t)sizeof(*p);
}

/* Writes the client's backpressure figures to *out, whose size the caller
 * has set.  Counts only what has been read so far (by process, poll, wait
 * and the other blocking calls), and only results the coordinator sent: the
 * results a failed connection gives every outstanding task (ECLOSED, EIO,
 * ...) are not counted.  The counters survive a connection failure and a
 * reconnect.  Blob uploads are not tasks and are not counted.
 * Errors: EINVAL (c or out NULL, a size error in out).
 * Thread context: the client's thread; no I/O, never blocks, cheap enough
 * for every frame. */
P2C2R_API int p2c2r_client_pressure(const p2c2r_client *c, struct p2c2r_pressure *out);

/* The same figures for the tasks of one type: inflight, the counters, the
 * times and the ratios count only tasks of that type; max_inflight and
 * unsent_bytes are the connection's.  A type not submitted yet has all of
 * them zero (the times UINT64_MAX).  The library keeps figures for the first
 * 64 distinct types a client submits; later types share those of the whole
 * connection.  type is borrowed for the call.
 * Errors: EINVAL (c, type or out NULL, a size error in out).
 * Thread context: as p2c2r_client_pressure. */
P2C2R_API int p2c2r_client_type_pressure(const p2c2r_client *c, const char *type,
                                         struct p2c2r_pressure *out);

/* One type's advice for this frame (p2c2r_client_frame_advice). */
struct p2c2r_frame_advice {
    uint32_t size;       /* sizeof(struct p2c2r_frame_advice), set by the caller */
    uint32_t fit;        /* tasks of this type to submit now: what its window leaves
                            beside those in flight, within the connection's room; at
                            least 1 when none is in flight and the client is READY */
    int32_t quality;     /* -1 = lower the quality one step, +1 = raise it one step,
                            0 = keep it.  A step is given once: the helper assumes the
                            game takes it, and starts counting afresh */
    uint32_t rtt_p90_us; /* 90th percentile round trip (submit to result) of this type's
                            results since the last step; 0 before any */
    uint32_t inflight;   /* tasks of this type in flight */
    double miss_ratio;   /* share of misses among results since the last step, as
                            p2c2r_pressure.miss_ratio */
};

#define P2C2R_FRAME_ADVICE_SIZE_MIN \
    (offsetof(struct p2c2r_frame_advice, miss_ratio) + sizeof(double))
#define P2C2R_FRAME_ADVICE_INIT P2C2R_SIZED_INIT_(struct p2c2r_frame_advice)

/* Zeroes *a and sets a->size. */
static inline void p2c2r_frame_advice_init(struct p2c2r_frame_advice *a)
{
    memset(a, 0, sizeof(*a));
    a->size = (uint32_t)sizeof(*a);
}

/* The frame-budget helper: how much work of type fits in this frame and
 * whether to change its quality (see "Backpressure" above for the rules).
 * Call it once per frame per type, after p2c2r_client_process, with now_ms
 * from CLOCK_MONOTONIC in milliseconds (the clock the library times results
 * with) and budget_us, the time the game can wait for this type's results
 * (typically what is left of the frame).  It is stateful: each call may
 * start a new quality epoch or move the type's window, so call it once per
 * frame, not once per task.  type is borrowed for the call.
 * Errors: EINVAL (c, type or out NULL, a size error in out, budget_us 0).
 * Thread context: the client's thread; no I/O, never blocks. */
P2C2R_API int p2c2r_client_frame_advice(p2c2r_client *c, const char *type, uint64_t now_ms,
                                        uint32_t budget_us, struct p2c2r_frame_advice *out);

/* ---- tracing -------------------------------------------------------------- */

/* Starts writing a trace to the file at path (created or truncated): for
 * every task submitted from now until p2c2r_client_trace_stop, what it went
 * through, as Chrome trace-event JSON that chrome://tracing and Perfetto
 * (ui.perfetto.dev) open.  Each task is one async slice named by its type on
 * the "tasks" track (from submit to its result; args: ticket, user, status,
 * attempts, peer, exec_us, flags), with two nested slices: "queue+network"
 * and "exec on peer N", and an instant at the result that says how it
 * ended: "delivered", "late", "refused (EDEADLINE)", "timed out
 * (ETIMEDOUT)", "cancelled (ECANCELLED)", "failed (ETASK)", "lost
 * (ECLOSED)" (the connection failed first), ...  Uploads appear as "blob".  The
 * coordinator sends no timestamps, so the split is the client's estimate:
 * the peer's exec_us is placed in the middle of the round trip (marked
 * "estimated" in the slice's args).  Events are written as results arrive,
 * through a stdio buffer.  path is borrowed for the call.
 * Errors: EINVAL (c or path NULL, a trace already running), EIO (the file
 * cannot be opened: errno says why), ENOMEM.
 * Thread context: the client's thread; blocks only on the file system. */
P2C2R_API int p2c2r_client_trace_start(p2c2r_client *c, const char *path);

/* Ends the trace: writes the tasks still in flight (ending at this moment,
 * with the instant "in flight at stop") and the closing bracket, and closes
 * the file.  A no-op (0) when no trace runs.
 * Errors: EINVAL (c NULL), EIO (a write failed at some point: the file is
 * incomplete).
 * Thread context: the client's thread; blocks only on the file system. */
P2C2R_API int p2c2r_client_trace_stop(p2c2r_client *c);

/* ---- statistics and blobs ------------------------------------------------- */

/* Fetches the coordinator's statistics as a JSON document, waiting up to
 * timeout_ms (-1 = forever).  On success *json is a new NUL-terminated
 * string the caller owns: free it with p2c2r_stats_free (not free()).
 * Errors: EINVAL (c or json NULL), ETIMEDOUT (a late answer is dropped),
 * EAGAIN (the client is not READY: connecting or waiting to reconnect),
 * ENOMEM, or the connection error.
 * Thread context: the client's thread; blocks up to timeout_ms. */
P2C2R_API int p2c2r_client_stats(p2c2r_client *c, int timeout_ms, char **json);

/* The same with a page of the peer list: limit peers (0: 100; at most
 * 1000) from the offset'th in registration order.  The document's
 * peers_total and peers_offset say where the page lies; peers are listed
 * to operator credentials only (docs/PROTOCOL.md 5.7).  The coordinator
 * answers one full document per connection per --stats-interval: asking
 * for the pages one after the other is never refused, only paced.
 * Since 1.2 (libp2c2r.map). */
P2C2R_API int p2c2r_client_stats_page(p2c2r_client *c, uint32_t offset, uint32_t limit, int timeout_ms,
                                      char **json);

/* Frees a string from p2c2r_client_stats.  NULL is a no-op.  Any thread. */
P2C2R_API void p2c2r_stats_free(char *json);

/* Uploads a blob (a map, a mesh: bytes many tasks share) to the coordinator
 * and waits up to timeout_ms (-1 = forever) for its content hash (SHA-256),
 * written to hash.  data is borrowed for the call (copied).  Tasks then
 * name it in p2c2r_task.blobs, and the executor finds it by the hash's
 * 64-hex form (p2c2r_blob_hex) in its params.  The coordinator forwards a
 * blob to a peer only when that peer lacks it.  Uploading the same bytes
 * again is cheap (answered from the store).
 * Errors: EINVAL (c or hash NULL, data NULL with len), ETOOBIG (over the
 * coordinator's frame limit, or refused as larger than its blob store),
 * EQUEUEFULL (the store is full of blobs that tasks still use), ENOMEM (the
 * send buffer cannot grow, or the coordinator is out of memory), ETIMEDOUT,
 * EAGAIN (the client is not READY: connecting or waiting to reconnect),
 * any other code the coordinator refuses it with (a newer coordinator may
 * send one this library does not know; the reason text is then in
 * p2c2r_client_last_error), or the connection error.
 * Thread context: the client's thread; blocks up to timeout_ms. */
P2C2R_API int p2c2r_client_put_blob(p2c2r_client *c, const void *data, size_t len, int timeout_ms,
                                    uint8_t hash[32]);

/* The non-blocking face of p2c2r_client_put_blob: queues the upload and
 * returns at once with a ticket in *out.  Its result comes like a task's,
 * through p2c2r_client_poll or p2c2r_client_wait: status 0 with output the
 * 32-byte hash (output_len 32), or the coordinator's refusal code (as
 * p2c2r_client_put_blob's) with its reason as text, or the connection's
 * failure; result.user is user.  Uploads do not count against
 * max_inflight or in the backpressure figures, but they are in
 * p2c2r_client_pending.  The hash is the SHA-256 of data, so a game may
 * also compute it itself and name the blob in tasks submitted right after
 * this call: the coordinator handles a connection's frames in order.  data is
 * borrowed for the call (copied).
 * Errors: EINVAL (c or out NULL, data NULL with len), ETOOBIG (over the
 * coordinator's frame limit), EAGAIN (not READY, or the send buffer cannot
 * grow), ENOMEM, or the connection error (once FAILED).
 * Thread context: the client's thread; never blocks. */
P2C2R_API int p2c2r_client_put_blob_start(p2c2r_client *c, const void *data, size_t len,
                                          uint64_t user, p2c2r_ticket *out);

/* Writes the 64 lowercase hex digits of hash and a NUL to out (neither may
 * be NULL).  Any thread. */
P2C2R_API void p2c2r_blob_hex(const uint8_t hash[32], char out[65]);

/* Text of the last connection-level error (the coordinator's ERROR text, or
 * what the library saw fail) or of the coordinator's reason for refusing the
 * last blob upload; "" when there is none.  The string belongs to c: its
 * text may change with the next call on c that reads from the connection,
 * and the pointer is valid until p2c2r_client_close(c).  For c NULL, a static
 * "". */
P2C2R_API const char *p2c2r_client_last_error(const p2c2r_client *c);

/* ---- durable jobs ----------------------------------------------------------
 * A durable job is a task the coordinator writes to its database (p2c2rd
 * --state DIR) before acknowledging it: it survives a crash of the
 * coordinator and the renter's disconnection, and any connection with the
 * same name (p2c2r_client_options.name: the account) can ask for it later
 * by its id.  Its outcome is kept until fetched with P2C2R_JOB_RELEASE or
 * for the coordinator's --job-retention.  Every acknowledged job gets
 * exactly one outcome; one not acknowledged (no answer, a timeout, a lost
 * connection) may or may not exist: submit it again with the same key and
 * the coordinator answers with the job it has, if any (docs/PROTOCOL.md,
 * "Durable jobs").  Each call below sends one request and blocks until its
 * answer or timeout_ms (-1 = forever); a late answer is dropped.  A
 * coordinator without --state refuses every call with EUNSUPPORTED.
 * Thread context: the client's thread; they block up to timeout_ms.
 * Results completed meanwhile for live tasks stay queued for
 * p2c2r_client_wait / _poll. */

enum p2c2r_job_state { P2C2R_JOB_QUEUED = 1, P2C2R_JOB_RUNNING = 2, P2C2R_JOB_DONE = 3 };

/* p2c2r_job_get flags. */
#define P2C2R_JOB_RELEASE 0x1u /* delete the job once its outcome is fetched */

/* What is known of a job. */
struct p2c2r_job_info {
    uint32_t size;        /* sizeof(struct p2c2r_job_info), set by the caller */
    uint64_t id;          /* the job's id (never reused by one database) */
    uint64_t key;         /* the key it was submitted with, 0 = none */
    int state;            /* enum p2c2r_job_state; an outcome is only reported once it
                             is in the database, so DONE never goes back */
    int status;           /* DONE: 0 or a p2c2r_error (ETASK, ECANCELLED, ELOST, ETIMEDOUT) */
    uint32_t attempts;    /* assignments it took so far */
    uint32_t exec_us, peer_id, flags; /* DONE: as in p2c2r_result */
    uint64_t submit_ms, done_ms;      /* wall clock, ms since the Unix epoch; done_ms 0 until DONE */
    size_t output_len;    /* DONE: bytes of its result (or of its error text) */
    char type[33];        /* its task type, NUL-terminated */
};

#define P2C2R_JOB_INFO_SIZE_MIN sizeof(struct p2c2r_job_info)
#define P2C2R_JOB_INFO_INIT P2C2R_SIZED_INIT_(struct p2c2r_job_info)

/* Zeroes *i and sets i->size. */
static inline void p2c2r_job_info_init(struct p2c2r_job_info *i)
{
    memset(i, 0, sizeof(*i));
    i->size = (uint32_t)sizeof(*i);
}

/* Submits n tasks (1..4096, an array of sized structs as for
 * p2c2r_client_submit_batch; their user fields are not used) as durable
 * jobs and waits for the acknowledgement, which the coordinator sends once
 * they are in its database.  keys (may be NULL) gives each job a key of
 * the caller's choosing (0 = none): a later submit with the same key (and
 * the same account) does not make a second job but answers with the first
 * one's id, so a submit whose answer was lost can be made again safely.
 * On 0 the coordinator answered for each: codes[i] is 0 and ids[i] the
 * job's id, or codes[i] says why it refused that one (EUNSUPPORTED: a type
 * the coordinator does not know, ENOBLOB, EQUEUEFULL: over --queue-max or
 * --job-max-pending, EIO: its database write failed) and ids[i] is 0.  ids
 * and codes hold n elements (borrowed).  Any other return means none of
 * the n is acknowledged: EINVAL (a bad argument or task), ETOOBIG (over the
 * frame limit), EAGAIN (not READY), ETIMEDOUT, EUNSUPPORTED (the
 * coordinator keeps no database; p2c2r_client_last_error says so), or the
 * connection's error. */
P2C2R_API int p2c2r_job_submit(p2c2r_client *c, const struct p2c2r_task *tasks, size_t n,
                               const uint64_t *keys, int timeout_ms, uint64_t *ids, int *codes);

/* Fills *out with what the coordinator knows of job id.  Errors: EINVAL,
 * ENOTFOUND (no such job for this account: never made, released, or past
 * retention), EAGAIN (not READY), ETIMEDOUT, EUNSUPPORTED, the connection's
 * error. */
P2C2R_API int p2c2r_job_status(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out);

/* Waits until job id has its outcome (asking every 10..250 ms), then fills
 * *out as p2c2r_job_status.  Errors as p2c2r_job_status; ETIMEDOUT when
 * timeout_ms passed first (the job goes on). */
P2C2R_API int p2c2r_job_wait(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out);

/* Fetches job id's outcome into *out, as p2c2r_client_wait gives a task's
 * (ticket is the job id; release the output with p2c2r_result_release);
 * with P2C2R_JOB_RELEASE in flags the coordinator then deletes the job.
 * Errors: as p2c2r_job_status, and EAGAIN also when the job has no outcome
 * yet. */
P2C2R_API int p2c2r_job_get(p2c2r_client *c, uint64_t id, uint32_t flags, int timeout_ms,
                            struct p2c2r_result *out);

/* Cancels job id: a job without an outcome ends with ECANCELLED (reported
 * DONE once that is in the database); one with an outcome keeps it.  *out
 * (may be NULL) gets the job's state after the cancel.  Errors as
 * p2c2r_job_status. */
P2C2R_API int p2c2r_job_cancel(p2c2r_client *c, uint64_t id, int timeout_ms, struct p2c2r_job_info *out);

/* Lists this account's jobs with ids above after, in id order: up to max
 * (an array of sized structs, stride out[0].size) into out, their number
 * in *n; *next is the id to pass as after for the next page, 0 when there
 * is no more.  max must be at least 1 (the coordinator sends at most 1000
 * a page).  Errors as p2c2r_job_status. */
P2C2R_API int p2c2r_job_list(p2c2r_client *c, uint64_t after, struct p2c2r_job_info *out, size_t max,
                             size_t *n, uint64_t *next, int timeout_ms);

#ifdef __cplusplus
}
#endif
#endif
