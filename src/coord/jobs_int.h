/* jobs_int.h - what the two halves of the durable jobs module share:
 * jobs.c (records, tasks, the group commit, open and close) and jobs_msg.c
 * (the JOB_* messages of renters).  Not for any other module: they see
 * jobs.h. */
#ifndef P2C2R_JOBS_INT_H
#define P2C2R_JOBS_INT_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "coord/coord_int.h"
#include "coord/jobs.h"

struct ckpt;
struct walsync;

#define JOB_LIST_MAX 1000u

enum { JP_NEW = 1, JP_DONE = 2, JP_DEL = 4 };

struct job {
    uint64_t id, key;
    struct job *hnext, *knext;
    struct list_node node;  /* js->all, in id order */
    struct list_node pnode; /* js->pend while pend != 0 */
    struct task *t;
    uint8_t state, pend, finished; /* finished: it has an outcome (committed or not) */
    uint8_t sync_bits; /* changes committed and waiting for the disk (--job-sync full) */
    uint16_t status, attempts;
    uint32_t exec_us, peer_id, flags, out_len, body_len;
    uint64_t submit_ms, done_ms, deadline_ms;
    uint8_t *out;  /* the outcome until committed */
    uint8_t *body; /* the task body until its insert is committed */
    struct acct *acct;
    char type[PROTO_MAX_TYPE_NAME + 1];
};

/* An account (a renter's HELLO name) and its jobs without an outcome. */
struct acct {
    char name[PROTO_MAX_NAME + 1];
    uint32_t pending;
};

struct ack_ent {
    uint64_t key;
    struct job *j;
    uint16_t code, flags;
};

/* A JOB_SUBMIT waiting for the commit of its jobs. */
struct ack {
    struct list_node node;
    struct conn *c; /* NULL once the connection is gone */
    uint64_t req_id;
    uint32_t n;
    struct ack_ent e[];
};

/* A committed transaction waiting for its fsync (--job-sync full): the
 * changes it wrote, applied once the disk has them, and the acks it
 * answers. */
struct batch {
    struct list_node node;
    uint64_t gen;
    struct list_node acks;
    size_t n;
    struct { struct job *j; uint8_t bits; } e[];
};

enum jst {
    JS_BEGIN,
    JS_COMMIT,
    JS_ROLLBACK,
    JS_INSERT,
    JS_DONE,
    JS_DELETE,
    JS_RESULT,
    JS_BLOB_REF,
    JS_BLOB_ADD,
    JS_BLOB_UNREF,
    JS_BLOB_GC,
    JS_BLOB_GET,
    JS_LOAD,
    JS_N
};

struct jobs {
    sqlite3 *db;
    sqlite3_stmt *st[JS_N];
    struct job **tab, **ktab; /* by id; by (account, key) for keyed jobs */
    size_t nb, n;
    uint64_t seed;
    struct list_node all, pend, acks;
    uint64_t next_id;
    uint64_t npending, ndone;
    struct acct *accts;
    uint32_t nacct, acct_cap;
    uint64_t sweep_at_ms;
    struct ckpt *ckpt; /* WAL checkpoints on a thread of their own */
    struct walsync *ws; /* --job-sync full: fsyncs of the WAL off the loop */
    uint64_t gen;       /* the last generation asked of ws */
    struct list_node syncing; /* batches by generation */
    char wal[4096];     /* the WAL file's path */
};

/* Records (jobs.c).  Whose jobs a connection may name; the job with this
 * id, or this (account, key); an account's record, made on first use
 * (NULL at the cap); a new record, hashed by id (and key); its end;
 * a change to write at the next flush (JP_*); its state as JOB_INFO says. */
const char *jobs_owner(const struct conn *c);
struct job *jobs_find(const struct jobs *js, uint64_t id);
struct job *jobs_find_key(const struct jobs *js, const char *account, uint64_t key);
struct acct *jobs_acct_intern(struct jobs *js, const char *name);
struct job *jobs_job_new(struct jobs *js, uint64_t id, struct acct *a, uint64_t key);
void jobs_job_free(struct jobs *js, struct job *j);
void jobs_mark(struct jobs *js, struct job *j, int bit);
int jobs_job_state(const struct job *j);
/* Tasks (jobs.c): whether every blob a task body names is in the store;
 * starts the job's task, due in dl_us: 0, or P2C2R_ELIMIT (the type table
 * is full) or P2C2R_ENOBLOB. */
int jobs_blobs_present(struct coord *co, const struct msg_task *m);
int jobs_job_start(struct coord *co, struct job *j, const struct msg_task *m, const uint8_t *body,
                   size_t len, uint64_t dl_us);

#endif
