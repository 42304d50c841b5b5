/* harness.h - the integration tests' harness: real daemons on loopback.
 *
 * Each test process owns one harness (a process-wide singleton, because the
 * watchdog's signal handler must reach it).  h_init makes a fresh temporary
 * directory; every daemon started through it listens on 127.0.0.1 port 0,
 * reports its address through a ready file in that directory, and has its
 * stdout and stderr redirected to a log file there; commands run through it
 * (h_run_cmd, h_cli) have their output and exit code captured.  STATS and
 * --json documents are read with jansson (h_stats, h_json_*).  h_finish
 * stops every process still running (SIGTERM, then SIGKILL after a bound),
 * checks that each exited cleanly and that no sanitizer report appeared in
 * any log, prints the logs when anything failed, and removes the directory.
 *
 * Every wait here is bounded.  A watchdog (alarm) fires a little before the
 * ctest TIMEOUT (environment P2C2R_TEST_TIMEOUT, seconds): it kills the
 * daemons, prints their logs and the phase the test was in, and exits, so a
 * hang never leaves stray processes or an unexplained timeout behind.
 *
 * argv of every test: p2c2rd p2c2r-peer [p2c2r [more...]]: the per-executor
 * CLI tests pass their command's driver as the third and their data after
 * it (h_arg).  Every test that starts a daemon links this harness (the
 * p2c2r_testharness library): there is no other launcher. */
#ifndef P2C2R_IT_HARNESS_H
#define P2C2R_IT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/ident.h"
#include "common/proto.h"
#include "p2c2r/client.h"

#define H_MAX_PROCS 64

struct h_proc {
    char name[32];
    char log[512];
    pid_t pid;       /* 0 before start */
    int reaped;      /* waitpid collected status */
    int status;      /* raw waitpid status once reaped */
    int killed;      /* we sent SIGKILL on purpose: any end is accepted */
    int checked;     /* its exit was already judged by the test itself */
    int released;    /* h_release: judged, its slot free for another process */
};

/* ---- checks -----------------------------------------------------------------
 * H_CHECK records a failure (the test goes on; h_finish returns 1 and prints
 * the logs).  H_REQUIRE records it and ends the test at once.  Both take a
 * printf format describing what was expected.  Safe from any thread. */
#define H_CHECK(cond, ...) ((cond) ? 1 : h_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__))
#define H_FAIL(...) ((void)h_fail_at(__FILE__, __LINE__, "", __VA_ARGS__))
#define H_REQUIRE(cond, ...)                                 \
    do {                                                     \
        if (!(cond)) {                                       \
            h_fail_at(__FILE__, __LINE__, #cond, __VA_ARGS__); \
            h_abort();                                       \
        }                                                    \
    } while (0)

/* H_XFAIL marks a known bug in src/ that a test must not hide but may not
 * fix: the violated expectation is printed and not counted as a failure.
 * When the bug is fixed it prints XPASS, the cue to make it an H_CHECK.
 * Returns cond. */
#define H_XFAIL(cond, ...) \
    ((cond) ? h_xpass_at(__FILE__, __LINE__, #cond) : h_xfail_at(__FILE__, __LINE__, #cond, __VA_ARGS__))
int h_xfail_at(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int h_xpass_at(const char *file, int line, const char *expr);

/* Reports a failure; returns 0 (the value of a failed H_CHECK). */
int h_fail_at(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Stops everything, prints logs, removes the directory and exits 1. */
_Noreturn void h_abort(void);
int h_failures(void);

/* Says what the test is doing now; printed with every failure and by the
 * watchdog.  Also logged to stderr.  Call from the main thread. */
void h_phase(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void h_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- set-up and tear-down -------------------------------------------------- */

/* Parses argv (p2c2rd, p2c2r-peer, optional p2c2r CLI or a command's driver,
 * then anything the test wants), creates the temporary directory and arms
 * the watchdog.  Exits 2 on a usage error. */
void h_init(int argc, char **argv, const char *test_name);
/* argv[i] as given to h_init, or NULL when there are fewer arguments. */
const char *h_arg(int i);

/* Stops everything and cleans up; returns the test's exit status (0 when
 * nothing failed).  Use as: return h_finish(); */
int h_finish(void);

const char *h_coord_bin(void);
const char *h_peer_bin(void);
const char *h_cli_bin(void); /* NULL when not given */
const char *h_dir(void);

/* Writes DIR/name into dst; the file is removed at the end. */
void h_path(char *dst, size_t cap, const char *name);

/* P2C2R_TEST_SCALE (default 1.0, or P2C2R_TEST_SCALE_DEFAULT set by CMake
 * for sanitizer builds). */
double h_scale(void);
/* 1 in a sanitizer build (P2C2R_TEST_SANITIZED set by CMake). */
int h_sanitized(void);
/* A time bound, stretched for slow (sanitizer) builds. */
int h_bound_ms(int ms);

uint64_t h_now_ms(void);
void h_sleep_ms(int ms);

/* ---- processes ----------------------------------------------------------- */

/* Starts argv[0] with stdin from /dev/null and stdout+stderr appended to
 * DIR/<name>.log.  The child dies with the test (PR_SET_PDEATHSIG). */
struct h_proc *h_spawn(const char *name, const char *const *argv);

/* Starts p2c2rd listening on listen (NULL = 127.0.0.1:0) with --ready-file,
 * plus the NULL-terminated extra arguments (may be NULL); waits (bounded) for
 * the ready file and stores the address it reports (see h_addr).  Requires
 * success.  The new coordinator becomes the current one. */
struct h_proc *h_coord_start(const char *listen, const char *const *extra);
struct h_proc *h_coord(void);
const char *h_addr(void);

/* Starts a p2c2r-peer connected to the current coordinator.  types may be
 * NULL (all built-in); extra is NULL-terminated or NULL. */
struct h_proc *h_peer_start(const char *name, int slots, const char *types,
                            const char *const *extra);

/* Polls the current coordinator's stats until "peers_connected" equals n
 * (bounded); requires success.  token may be NULL. */
void h_wait_peers(int n, const char *token);

/* Sends sig; SIGKILL marks the process as killed on purpose. */
void h_signal(struct h_proc *p, int sig);
/* Stops p (SIGCONT, SIGTERM, then SIGKILL and a recorded failure after a
 * bound) and reaps it; h_finish judges how it ended.  NULL is a no-op. */
void h_stop(struct h_proc *p);
/* SIGTERM to each non-NULL process of ps[0..n), then a bounded wait for
 * each to exit (a check fails for one that does not); h_finish judges how
 * they ended. */
void h_stop_all(struct h_proc *const *ps, int n);
/* Judges how p (which must have exited: h_stop, or h_wait_exit returned 1)
 * ended and scans its log now, as h_finish would, and frees its slot for a
 * later h_spawn, so a long run can start more than H_MAX_PROCS processes in
 * all.  p must not be used afterwards (the slot is reused); a later failure
 * does not print its log.  NULL is a no-op. */
void h_release(struct h_proc *p);
/* Reaps p if it has exited, waiting up to timeout_ms.  Returns 1 when it has
 * exited (p->status valid), 0 when still running. */
int h_wait_exit(struct h_proc *p, int timeout_ms);
int h_running(struct h_proc *p);
/* Describes a waitpid status ("exit 0", "signal 9") in a static buffer. */
const char *h_status_str(int status);

/* A finished command: what it printed and how it ended. */
struct h_cmd {
    int status;       /* waitpid status, -1 when it was killed for running too long */
    int code;         /* exit code; -1 on a signal or a timeout */
    char *out, *err;  /* all of stdout / stderr, NUL-terminated, never NULL */
    size_t out_len, err_len;
};

/* Runs argv (NULL-terminated) to completion with stdin from in_path (NULL =
 * /dev/null), bounded by h_bound_ms(120000); logs the command line and how it
 * ended.  Release the result with h_cmd_free. */
struct h_cmd h_run_cmd(const char *in_path, const char *const *argv);
void h_cmd_free(struct h_cmd *r);

/* Runs the CLI (h_cli_bin()) with the NULL-terminated arguments and keeps
 * the result, which h_last() shows until the next h_cli; returns its exit
 * code (-1 on a signal or a timeout). */
int h_cli(const char *first, ...) __attribute__((sentinel));
const struct h_cmd *h_last(void);
/* Whether the last h_cli's stdout / stderr contains s. */
int h_out_has(const char *s);
int h_err_has(const char *s);
/* The last h_cli's stdout parsed as one JSON document (h_json_parse); NULL
 * when it is not one.  Release it with json_decref. */
json_t *h_out_json(void);

/* Checks on the last h_cli: its exit code, and what it printed (shown when
 * the check fails). */
#define H_EXPECT_EXIT(code, want, what)                                                              \
    H_CHECK((code) == (want), "%s: exit %d, expected %d\n    stdout: %.2000s\n    stderr: %.2000s", \
            (what), (code), (want), h_last()->out, h_last()->err)
#define H_CHECK_OUT(s) H_CHECK(h_out_has(s), "stdout should contain '%s':\n%.2000s", (s), h_last()->out)
#define H_CHECK_ERR(s) H_CHECK(h_err_has(s), "stderr should contain '%s':\n%.2000s", (s), h_last()->err)

/* The coordinator's HTTP port from its log line "event=metrics_listening
 * addr=HOST:PORT" (--http or --metrics), waited for up to 5 s (scaled): 1
 * with host and port set, 0 when the line did not come. */
int h_http_addr(char *host, size_t cap, int *port);
/* One HTTP/1.0 GET of path with extra header lines (each ending in "\r\n",
 * or NULL); returns the whole response (free it), NULL on failure. */
char *h_http_get(const char *host, int port, const char *path, const char *headers);
/* A TCP connection to host:port (blocking), or -1. */
int h_tcp_connect(const char *host, int port);

/* Reads a whole file into a new NUL-terminated buffer (free it); NULL on error. */
char *h_read_file(const char *path, size_t *len);
/* A w x h octile map in MovingAI text with walls ('@') scattered where
 * (7x + 13y) % 11 == 0, none on the border; free it.  Aborts the test when
 * out of memory. */
char *h_map_text(uint32_t w, uint32_t h);
/* A 128x128 raytrace scene (a glass ball on a fuzzy metal floor, depth 8):
 * 4096 spp is tens of seconds of one core, 1 spp of a small tile well
 * under a millisecond. */
extern const char H_GLASS_SCENE[];
int h_write_file(const char *path, const void *p, size_t n);

/* ---- the client API, checked ---------------------------------------------- */

/* Submits t on c; requires success and returns the ticket. */
p2c2r_ticket h_submit(p2c2r_client *c, const struct p2c2r_task *t);
/* Waits up to timeout_ms (stretched with h_bound_ms) for t's result;
 * requires that one arrives and checks that it is t's.  Release it. */
struct p2c2r_result h_wait(p2c2r_client *c, p2c2r_ticket t, int timeout_ms);
/* The CA file (PEM) every client the harness connects (h_renter, h_stats,
 * the h_renter_* workers) uses from now on, for a coordinator started with
 * --tls-cert; NULL = plaintext (the default).  The string is borrowed. */
void h_set_tls_ca(const char *ca_file);

/* A renter connected to the current coordinator under name (connect timeout
 * 5 s, stretched); ends the test when it cannot connect. */
p2c2r_client *h_renter(const char *name);

/* ---- JSON (jansson) and coordinator stats ----------------------------------
 * Paths name a value inside a document: members joined by '.', an array
 * element by [N] or by [key=value] (the first object in the array whose
 * member key is the string value, or the integer value), e.g.
 * "counters.completed", "types[name=echo].attempt_p95_us", "peers[0].trust".
 * A missing value is never an error here: lookups say "absent" and the
 * test's check decides. */

/* Parses text as one JSON document (a new reference); NULL, with the reason
 * logged, when it is not one. */
json_t *h_json_parse(const char *text);
/* The value at path (borrowed from root), or NULL.  root may be NULL. */
json_t *h_json_at(const json_t *root, const char *path);
/* The integer at path, or -1 when it is absent or not an integer. */
long long h_json_int(const json_t *root, const char *path);
/* The number (integer or real) at path, or NAN. */
double h_json_real(const json_t *root, const char *path);
/* The string at path (borrowed), or NULL. */
const char *h_json_str(const json_t *root, const char *path);
/* Whether the value at path is the string want. */
int h_json_str_is(const json_t *root, const char *path, const char *want);
/* 1 for true, 0 for false, -1 when absent or not a boolean. */
int h_json_bool(const json_t *root, const char *path);
/* Compact text of v (at most about 4 KB) for messages; valid until the next
 * call on the thread.  "(none)" for NULL. */
const char *h_json_text(const json_t *v);

/* Fetches the current coordinator's STATS document, parsed (a new
 * reference: json_decref it); NULL on failure.  token may be NULL. */
json_t *h_stats(const char *token);
/* One integer of the current coordinator's stats (h_json_int on a fresh
 * STATS document), or -1. */
long long h_stat(const char *path);
/* Pushes c's unsent frames out (p2c2r_client_process; c may be NULL) and
 * polls the current coordinator's tasks_live until it is at least n, for up
 * to timeout_ms (stretched).  Returns the last tasks_live seen; requires that
 * processing c does not fail. */
long long h_wait_live(p2c2r_client *c, long long n, int timeout_ms);
/* Polls the current coordinator's stats (bounded) until task type `type`
 * has at least min_samples attempts behind its quantiles (the coordinator
 * refreshes them every 100 ms; hedging and admission need 20), then
 * returns that type's field key; -1 when that did not happen in time. */
long long h_type_stat_sampled(const char *type, const char *key, long long min_samples);

/* ---- data ------------------------------------------------------------------ */

uint64_t h_rand(uint64_t *state); /* splitmix64 */
/* Fills p with a pattern that depends on seed and on every byte position. */
void h_fill(uint8_t *p, size_t n, uint64_t seed);
/* A size in [0, max] whose logarithm is uniform, so small and large sizes
 * are equally represented while the mean stays near max / ln(max). */
size_t h_log_uniform(uint64_t *state, size_t max);
/* Raw SHA-256 (OpenSSL EVP). */
void h_sha256(const void *p, size_t n, uint8_t out[32]);
/* "ETIMEDOUT(-5)"; the string stays valid for the next 7 calls on the thread. */
const char *h_err(int code);

/* ---- raw protocol connections (for bad input and exact frame counting) ---- */

struct h_raw {
    int fd;
    uint8_t *buf;
    size_t off, len, cap;
    /* From the HELLO_OK h_raw_hello read: what a PEER_REGISTER must sign. */
    int have_nonce;
    uint8_t nonce[PROTO_NONCE_LEN];
    uint64_t conn_id;
};

struct h_frame {
    struct frame_hdr hdr;
    const uint8_t *body; /* valid until the next read on the connection */
};

#define H_RAW_EOF 0
#define H_RAW_FRAME 1
#define H_RAW_TIMEOUT (-100)
#define H_RAW_RESET (-101)
#define H_RAW_MALFORMED (-102)

/* Connects (blocking, bounded).  Returns 0 or -1. */
int h_raw_connect(struct h_raw *r, const char *addr);
void h_raw_close(struct h_raw *r);
/* Sends all of p within timeout_ms.  Returns 0, or -1 (error or timeout). */
int h_raw_send(struct h_raw *r, const void *p, size_t n, int timeout_ms);
int h_raw_send_frame(struct h_raw *r, uint8_t type, uint16_t flags, uint64_t req_id,
                     const void *body, size_t len, int timeout_ms);
/* Reads one frame: H_RAW_FRAME, H_RAW_EOF, H_RAW_TIMEOUT, H_RAW_RESET or
 * H_RAW_MALFORMED (bytes that are not a frame). */
int h_raw_read(struct h_raw *r, struct h_frame *f, int timeout_ms);
/* Sends HELLO and reads the reply.  Returns 0 on HELLO_OK, the (negative)
 * code of an ERROR reply, or H_RAW_* on anything else. */
int h_raw_hello(struct h_raw *r, uint8_t role, const char *token, struct msg_hello_ok *ok);
/* A PEER_REGISTER body with identity: caps (caps_len bytes: the fields
 * before the key, as proto_put_register writes them without pk), then
 * claim_pk (NULL: signer's public key), then signer's signature of the
 * challenge for nonce and conn_id over caps (docs/PROTOCOL.md 5.3).  A new
 * buffer (free it); *len set. */
uint8_t *h_register_body(const void *caps, size_t caps_len, const uint8_t nonce[PROTO_NONCE_LEN],
                         uint64_t conn_id, const struct ident *signer, const uint8_t *claim_pk,
                         size_t *len);
/* Writes into b the capabilities of a raw peer serving one type (version
 * 1, deterministic): 1 core, 1 slot, 1 GiB, no GPU, as proto_put_register
 * writes them without identity.  Returns their length (under 128 bytes). */
size_t h_caps_one_type(uint8_t *b, const char *type);
/* Sends PEER_REGISTER (req_id) with caps signed by key for r's HELLO_OK
 * (h_raw_hello must have read one with a nonce); key NULL = a new key made
 * for this call.  Returns 0 or -1. */
int h_raw_send_register(struct h_raw *r, uint64_t req_id, const void *caps, size_t caps_len,
                        const struct ident *key);
/* Reads frames (skipping others) until an ERROR frame and then the close.
 * Returns the (negative) code of the ERROR, or 0 when the connection closed
 * with no ERROR, or H_RAW_TIMEOUT when it was still open after timeout_ms.
 * *closed says whether the close was seen; the ERROR's text goes to text
 * (may be NULL). */
int h_raw_expect_error(struct h_raw *r, int timeout_ms, int *closed, char *text, size_t cap);
/* Builds a task body (type, params, input) into a new buffer; *len set. */
uint8_t *h_task_body(const char *type, uint32_t min_version, uint32_t deadline_ms,
                     const char *params, const void *input, size_t input_len, size_t *len);
/* The same with a priority class, task flags (PROTO_TASK_F_NOCACHE) and a
 * requirements block (reqs may be NULL: none). */
uint8_t *h_task_body_ext(const char *type, uint8_t priority, uint8_t flags,
                         const struct proto_reqs *reqs, uint32_t deadline_ms, const void *input,
                         size_t input_len, size_t *len);

/* A task's outcome as a raw renter sees it: a DELIVER or a REJECTED frame. */
struct h_outcome {
    uint8_t type;       /* MSG_DELIVER or MSG_REJECTED */
    uint64_t ticket;
    int status;         /* 0 or a negative p2c2r_error */
    uint16_t attempts;  /* DELIVER only, else 0 */
    uint32_t exec_us, peer_id, flags; /* DELIVER only (flags: PROTO_DELIVER_F_*), else 0 */
    const uint8_t *out; /* output, or the reason text; valid until the next read */
    size_t len;
};
/* Reads frames until a DELIVER or REJECTED, skipping ACCEPTED, PONG and
 * STATS.  Returns H_RAW_FRAME with *o filled, H_RAW_MALFORMED for any other
 * frame or a body that does not parse (an ERROR frame also fills *o with its
 * code and text), or the other H_RAW_* codes. */
int h_raw_outcome(struct h_raw *r, struct h_outcome *o, int timeout_ms);

/* ---- a renter driver: a window of tasks and the accounting of outcomes ------
 * One renter on the calling thread, through the client library or (raw) a
 * raw protocol connection that sees every DELIVER frame below the library's
 * bookkeeping.  It keeps `window` tasks in flight, hands each task's first
 * outcome to judge, and counts as failures an outcome for a ticket never
 * submitted, a second outcome for a ticket, a connection that ends, and no
 * outcome at all for no_progress_ms (stretched) while tasks are in flight.
 * A raw renter finally checks that no frame follows the last outcome. */
struct h_renter {
    const char *name;
    int raw;            /* a raw connection instead of the client library */
    int tasks;          /* tasks 0 .. tasks-1 */
    int window;         /* at most this many in flight (the API: at most 256) */
    int no_progress_ms; /* 0 = 30000 */
    /* Fills *t (zeroed first) with task i.  The input may live in the
     * caller's scratch: it is copied before the next call.  Raw renters
     * send type, min_version, deadline_ms, priority, flags and input.  It
     * is called again for the same i when the library refused the task
     * with EAGAIN (the in-flight limit), and must then fill the same task. */
    void (*task)(void *arg, int i, struct p2c2r_task *t);
    /* Judges task i's outcome.  Through the library o->type is always
     * MSG_DELIVER (a refusal is a status) and o->flags holds
     * PROTO_DELIVER_F_* as on the wire.  o is valid during the call. */
    void (*judge)(void *arg, int i, const struct h_outcome *o);
    void *arg;
    /* Results. */
    int done;    /* tasks with an outcome */
    int dup;     /* second outcomes */
    int unknown; /* outcomes for tickets never submitted */
};

/* Runs r to the end (or to its first failure of connection or progress).
 * Returns 0 when every task had exactly one outcome. */
int h_renter_run(struct h_renter *r);

/* ---- restarting a process -------------------------------------------------- */

/* Starts p's command again in the same slot (its log continues), so a test
 * can kill and restart a daemon many times without running out of slots.
 * p must have exited (h_wait_exit returned 1).  Returns p. */
struct h_proc *h_respawn(struct h_proc *p);

/* ---- fake peers --------------------------------------------------------------
 * A peer written in the test process: it speaks the raw protocol on its own
 * thread, so a test can make a peer slow or failing on purpose without a
 * hook in p2c2r-peer.  It registers its types (version 1 each), answers
 * every PING with a PONG, and answers each ASSIGN with exactly one RESULT
 * delay_ms after it arrived: either the output the built-in executor gives
 * ("sha256": the raw digest of the input; any other type: the input itself,
 * as "echo" does) or, with fail_code set, that error status with a reason
 * text.  With delay_ms H_FAKE_NEVER it never answers (a hung executor).
 * A CANCEL is counted and otherwise ignored, as by a peer whose task
 * is already running: the RESULT still comes, late.  With lie_pct set it
 * lies the way a peer that wants credit without work would: once it has
 * received lie_after tasks, each further task is answered, with probability
 * lie_pct percent, with status OK and a wrong output of the right length
 * (the correct one with its first and last bytes flipped, the first by
 * lie_mask; an empty output cannot be wrong and is sent as it is).
 * Counters are safe to read from any thread. */
#define H_FAKE_NEVER (-1)
struct h_fake_peer_cfg {
    const char *name;  /* HELLO name, shown in stats (borrowed during start) */
    const char *types; /* comma-separated type names (borrowed during start) */
    int slots;
    int gpu;           /* registers a GPU */
    uint16_t cores;    /* 0 = 1 */
    int delay_ms;      /* how long each task is held before its RESULT, or H_FAKE_NEVER */
    uint32_t us_per_byte; /* ...plus this many us per byte of the task's input (a cost-bound executor) */
    uint32_t out_len;  /* 0, or every successful output is this long (the honest one repeated) */
    int fail_code;     /* 0, or a negative p2c2r_error every RESULT carries */
    /* Claims a liar might make (docs/PROTOCOL.md 5.3): each 0 keeps the
     * honest default. */
    uint64_t mem_bytes;    /* 0 = 1 GiB */
    uint32_t version;      /* executor version of every type; 0 = 1 */
    const char *gpu_model; /* with gpu; NULL = "it-fake-gpu" (borrowed during start) */
    uint32_t exec_us;      /* the exec_us every RESULT reports; 0 = delay_ms as measured */
    int lie_after;     /* tasks answered honestly before lying starts */
    int lie_pct;       /* 0..100: share of the later tasks answered with a wrong output */
    uint64_t lie_seed; /* seeds which tasks it lies on (0: a fixed default) */
    /* XORed into the first byte of each wrong output (0: 0x5a).  Liars with
     * the same mask tell the same lie for a task, as colluding identities
     * would; different masks make independent liars that disagree. */
    uint8_t lie_mask;
    const struct ident *key; /* its identity (copied); NULL = a new key of its own */
    int pool;          /* PROTO_POOL_* it registers in (0: volunteer) */
    uint32_t cost;     /* price per cost unit it declares (0 and volunteer: no pool block) */
};

struct h_fake_counts {
    long assigned;  /* ASSIGNs received */
    long answered;  /* RESULTs sent */
    long cancels;   /* CANCELs received */
    long pings;     /* PINGs answered */
    long lies;      /* RESULTs sent (or due) with a wrong output */
    int closed;     /* the coordinator closed the connection */
};

struct h_fake_peer;

/* Connects to the current coordinator, sends HELLO and PEER_REGISTER, waits
 * (bounded) for REGISTER_OK and starts the peer's thread.  Requires
 * success.  Stop it with h_fake_peer_stop before h_finish. */
struct h_fake_peer *h_fake_peer_start(const struct h_fake_peer_cfg *cfg);
/* Its public key (IDENT_PK_LEN bytes, valid until it is stopped). */
const uint8_t *h_fake_peer_pk(const struct h_fake_peer *fp);
/* The coordinator's id for it (from REGISTER_OK; DELIVER's peer_id). */
uint32_t h_fake_peer_id(const struct h_fake_peer *fp);
void h_fake_peer_counts(struct h_fake_peer *fp, struct h_fake_counts *out);
/* Changes how it answers the tasks that arrive from now on. */
void h_fake_peer_set(struct h_fake_peer *fp, int delay_ms, int fail_code);
/* Waits (up to timeout_ms, stretched) until it has received at least n
 * ASSIGNs; returns 1 when it has. */
int h_fake_peer_wait_assigned(struct h_fake_peer *fp, long n, int timeout_ms);
/* Waits (up to timeout_ms, stretched) until it has answered every task it
 * was given; returns 1 when it has. */
int h_fake_peer_wait_idle(struct h_fake_peer *fp, int timeout_ms);
/* Closes its connection (answers still pending are dropped, as a crashed
 * peer's would be), joins its thread and frees it.  NULL is a no-op. */
void h_fake_peer_stop(struct h_fake_peer *fp);

#endif
