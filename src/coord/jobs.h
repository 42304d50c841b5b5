/* jobs.h - durable jobs: tasks a renter submits as durable are written to
 * the state database (store.h) before the coordinator acknowledges them,
 * run like any task, and keep their outcome in the database until the
 * renter fetches it or --job-retention passes (docs/ARCHITECTURE.md,
 * "Durable jobs"; wire: docs/PROTOCOL.md, JOB_SUBMIT ... JOB_LIST).
 *
 * Group commit: a submit and an outcome are changes in memory; jobs_flush,
 * called once per loop iteration (conn_on_check, before connection output
 * goes out), writes every change in one transaction and only then sends
 * the JOB_ACKs, so an acknowledged job is in the database.  An iteration
 * with no durable change costs one test of a list.
 *
 * Exactly one outcome: a job's outcome is visible (status, get, list) only
 * once committed.  After a crash every job without a committed outcome is
 * loaded at start and runs again; one with a committed outcome never runs
 * again.
 *
 * Everything here runs on the coordinator's loop thread. */
#ifndef P2C2R_COORD_JOBS_H
#define P2C2R_COORD_JOBS_H

#include <stddef.h>
#include <stdint.h>

struct coord;
struct conn;
struct task;
struct frame_hdr;

/* The wire states of a job (JOB_INFO's state byte). */
enum job_state { JOB_QUEUED = 1, JOB_RUNNING = 2, JOB_DONE = 3 };

struct jobs_stats {
    uint64_t pending;   /* jobs without a committed outcome */
    uint64_t done;      /* jobs with a committed outcome kept for fetching */
};

/* Loads the jobs of co->store (when --state is set): finished ones as
 * records, the others as tasks queued again, with their blobs.  Returns 0
 * or a store error with the reason in err. */
int jobs_open(struct coord *co, char *err, size_t errcap);
/* Commits what is pending and frees every job record (tasks belong to the
 * task slab).  Finalizes the statements: call before store_close. */
void jobs_close(struct coord *co);
/* The group commit.  all = 0: only when a job changed (each loop
 * iteration); all = 1: ledger entries too (every 200 ms). */
void jobs_flush(struct coord *co, int all);
/* Drops finished jobs past --job-retention (each second). */
void jobs_sweep(struct coord *co);
/* t, a durable job's task, has its outcome (task_deliver): recorded, and
 * committed at the next flush.  out is borrowed for the call. */
void jobs_on_outcome(struct coord *co, struct task *t, int status, const uint8_t *out, size_t len,
                     uint32_t exec_us, uint32_t peer_id, uint32_t flags);
void jobs_stats(const struct coord *co, struct jobs_stats *out);
/* c is closing: acks waiting for the disk will not be sent to it. */
void jobs_conn_gone(struct conn *c);
/* Stops the fsync thread of --job-sync full (applying what it synced);
 * called by the shutdown while the loop still runs. */
void jobs_stop_sync(struct coord *co);
struct job;
/* A job's id and its account (the HELLO name that submitted it). */
uint64_t jobs_id(const struct job *j);
const char *jobs_account(const struct job *j);

int jobs_on_submit(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int jobs_on_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int jobs_on_list(struct conn *c, const struct frame_hdr *h, const uint8_t *body);

#endif
