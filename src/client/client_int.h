/* client_int.h - libp2c2r's internal header: the client and its ticket
 * table, shared by client.c (connection, I/O, frames, the ticket table),
 * submit.c (submitting tasks) and results.c (collecting results and the
 * other public calls).  Internal to the library. */
#ifndef P2C2R_CLIENT_INT_H
#define P2C2R_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/fadv.h"
#include "client/sized.h"
#include "client/trace.h"
#include "common/buf.h"
#include "common/list.h"
#include "common/proto.h"
#include "common/tls.h"
#include "p2c2r/client.h"

#define READ_CHUNK (256u * 1024)
#define STATS_REQ_BIT (1ull << 63)

enum entry_kind { ENTRY_TASK, ENTRY_BLOB };

struct lblob;
struct lprep;

struct entry {
    uint64_t ticket;
    struct entry *hnext;
    struct list_node node; /* done list */
    int done;
    uint64_t submit_us;
    uint32_t deadline_ms;
    uint32_t epoch;   /* its type's fadv epoch at submit */
    int16_t ctype_ix;  /* in c->types, -1 = untracked */
    uint8_t kind;     /* enum entry_kind */
    uint8_t traced;   /* submitted while a trace ran */
    uint8_t lwait;    /* on c->localq, waiting to run locally (local.c) */
    uint8_t counted;  /* its outcome is in the pressure figures already (a refusal it ran past) */
    int lerr;         /* while lwait: its outcome should it never run */
    /* Local fallback (local_keep): its encoded task body and cost, NULL/0
     * when it cannot run locally. */
    uint8_t *lbody;
    uint32_t lbody_len;
    uint64_t cost;
    struct list_node lnode; /* c->localq */
    struct p2c2r_result res;
};

enum conn_state { S_TCP, S_HELLO, S_READY, S_BACKOFF, S_FAILED };

/* Task types with their own figures (p2c2r_client_type_pressure). */
#define MAX_TYPES 64
struct ctype {
    char name[PROTO_MAX_TYPE_NAME + 1];
    struct fadv adv;
    double local_rate; /* us per cost unit to run it locally, 0 = not known (local.c) */
    uint64_t local_refused_since; /* us: its tasks are over the budget since, 0 = not */
};

struct p2c2r_client {
    int fd;
    int err; /* 0 while there is a connection (S_TCP, S_HELLO, S_READY) */
    enum conn_state state;
    int report; /* a failure p2c2r_client_process has yet to return once */
    int failing; /* conn_failed is ending the outstanding tasks */

    /* What a (re)connect needs. */
    struct sockaddr_storage ss;
    socklen_t sl;
    char *token, *name;
    int connect_timeout_ms;
    uint32_t reconnect_ms, reconnect_max_ms;
    uint32_t attempts;     /* failed attempts since the last READY */
    uint64_t retry_at_us;  /* S_BACKOFF: when to try again */
    uint64_t attempt_deadline_us; /* S_TCP, S_HELLO: when the attempt times out */
    uint64_t rng;
    struct buf in, out;
    uint64_t next_ticket;
    uint64_t next_ctl;
    uint32_t max_inflight, max_body;
    size_t max_result;
    uint32_t spin_us;

    struct entry **buckets;
    size_t nbuckets, nentries, ninflight;
    struct entry *free_entries;
    struct list_node done;

    uint64_t stats_id;
    char *stats_json;
    int stats_done;

    /* A large DELIVER being read straight into its result's own buffer. */
    struct {
        uint8_t *buf;
        size_t len, have;
        uint64_t ticket;
        struct msg_deliver m;
    } big;

    uint64_t blob_id;  /* outstanding BLOB_PUT, 0 = none */
    int blob_status;   /* 1 = waiting, 0 = stored, < 0 = refused */
    uint8_t blob_hash[PROTO_HASH_LEN];
    char last_error[256];

    /* Backpressure (p2c2r_client_pressure, _type_pressure, _frame_advice):
     * the whole connection's figures and each type's (fadv.h).  The ratios
     * weigh the first 16 outcomes plainly, then each new one 1/16: quick
     * enough to react within a few frames, slow enough that one refusal
     * does not halve a game's quality. */
    struct fadv all;
    struct ctype types[MAX_TYPES];
    int ntypes;
    size_t nblob_open; /* uploads in flight (in ninflight, not tasks) */

    struct trace *trace; /* p2c2r_client_trace_start, NULL = off */

    /* Local fallback (local.c): the budget per frame (0 = off), the
     * frame's start and what it spent, the tasks waiting to run. */
    uint32_t local_us, local_frame_us;
    uint64_t local_frame_start, local_spent;
    struct list_node localq;
    size_t nlocal;
    int local_blocked;     /* what waits cannot start before local_wake_us */
    uint64_t local_wake_us; /* the next frame, or a waiting task's deadline if sooner */
    struct lblob *lblobs; /* kept blob copies, newest first (local.c) */
    size_t lblob_bytes;
    struct lprep *lpreps; /* prepared state of local runs, most recently used first */
    size_t lprep_bytes;
    const void *lrun_scope; /* the executor of the local run in progress */
    int lrun_derived;       /* that run put prepared state */
    /* The one blocking control request in flight (durable jobs,
     * durable.c): its id, whether it was answered, and how: ctl_status 0
     * with the reply's type and a copy of its body, or REJECTED's code. */
    uint64_t ctl_id;
    int ctl_done, ctl_status;
    uint8_t ctl_type;
    uint8_t *ctl_body;
    size_t ctl_len;
    /* TLS (common/tls.h): the context made at connect from tls_ca_file, the
     * name the coordinator's certificate must carry, and the session of the
     * current attempt (a new one, with a new handshake, per attempt). */
    struct tls_ctx *tls_ctx;
    struct tls *tls;
    char tls_host[256];
    int tls_fresh; /* nothing received yet on this attempt's session */
};

/* A reply to the control request (JOB_ACK, JOB_INFO, JOB_LIST_OK, or a
 * REJECTED of its id): kept for the caller.  Returns 1 when it was the
 * awaited one, 0 when it was not (a late answer: dropped). */
int ctl_on_reply(p2c2r_client *c, const struct frame_hdr *h, const uint8_t *body, int rejected_code,
                 const struct bytes_view *text);
/* Submit helpers shared with durable.c (submit.c). */
int task_load(const p2c2r_client *c, const struct p2c2r_task *tasks, uint32_t size, size_t k,
              struct p2c2r_task *t, size_t *body);
void put_task(uint8_t *b, const struct p2c2r_task *t);

#define TASK_FLAGS_KNOWN P2C2R_TASK_NOCACHE /* p2c2r_task.flags this library sends */

/* The ticket table (client.c). */
struct entry **ticket_slot(p2c2r_client *c, uint64_t ticket);
struct entry *ticket_new(p2c2r_client *c, uint64_t ticket);
void ticket_drop(p2c2r_client *c, struct entry *e);
/* Per-type figures: the index of a type's row, -1 (ctype_find) or a new
 * row (ctype_ix, -1 when the table is full). */
int ctype_find(const p2c2r_client *c, const char *name);
int ctype_ix(p2c2r_client *c, const char *name);
/* Fills e's result (its output already in place), counts and traces it,
 * and puts it on the done list (client.c). */
void entry_finish(p2c2r_client *c, struct entry *e, int status, uint32_t exec_us, uint32_t peer_id,
                  uint16_t attempts, uint32_t flags);
/* Completes e with this outcome (out copied), counts and traces it, and
 * puts it on the done list; no-op when e is done (client.c). */
void entry_complete(p2c2r_client *c, struct entry *e, int status, const void *out, size_t len,
                    uint32_t exec_us, uint32_t peer_id, uint16_t attempts, uint32_t flags);
/* I/O (client.c): one write of what is queued; a blocking wait for
 * progress until deadline_us (monotonic); a deadline from a timeout. */
int client_write(p2c2r_client *c);
/* Bytes not yet written (plaintext queued, and under TLS ciphertext too). */
size_t client_unsent(const p2c2r_client *c);
/* 1 when a write could make progress now (under TLS, plaintext waits for
 * the handshake: until then only the handshake's own bytes count). */
int client_want_out(const p2c2r_client *c);
int client_wait_io(p2c2r_client *c, uint64_t deadline_us);
uint64_t client_deadline_after(int timeout_ms);

#endif
