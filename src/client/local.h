/* local.h - libp2c2r's local fallback: tasks of the built-in types run in the renter's own
 * process while the coordinator is unreachable or when it refuses them (deadline, no peer,
 * full queues), within a CPU budget per frame
 * (include/p2c2r/client.h, "Local fallback").  Internal to the library; everything runs on
 * the client's thread, inside the public calls that make progress (process, poll, wait,
 * flush): the library stays free of threads. */
#ifndef P2C2R_CLIENT_LOCAL_H
#define P2C2R_CLIENT_LOCAL_H

#include <stddef.h>
#include <stdint.h>

#include "p2c2r/client.h"

struct entry;

/* The bytes of blobs this client uploaded, kept for local runs while the fallback is on:
 * at most LOCAL_BLOB_BYTES, the oldest dropped first. */
#define LOCAL_BLOB_BYTES ((size_t)64 << 20)

/* Keeps a copy of a blob the caller uploads (data, len borrowed), under its SHA-256, when the
 * fallback is on and it fits; silently nothing otherwise (a task that needs it then cannot run
 * locally). */
void local_blob_keep(p2c2r_client *c, const void *data, size_t len);

/* What executors derived from blobs in local runs (a parsed map, a scene's BVH: executor
 * ABI 3's prepared state), kept for later local runs as a peer keeps them: at most
 * LOCAL_PREPARED_BYTES, least recently used out, evicted only between runs. */
#define LOCAL_PREPARED_BYTES ((size_t)64 << 20)

/* Frees every kept blob and prepared object (p2c2r_client_close). */
void local_blobs_free(p2c2r_client *c);

/* Whether the library may run t itself should the coordinator be unreachable: fallback on,
 * a built-in type, every blob it names kept, no requirements. */
int local_capable(const p2c2r_client *c, const struct p2c2r_task *t);

/* Keeps what running t locally needs in e (a copy of its encoded body, body_len bytes
 * written by put, and its cost; its blobs stay in the client's kept blobs).  Returns 0 or ENOMEM (then e keeps nothing). */
int local_keep(p2c2r_client *c, struct entry *e, const struct p2c2r_task *t, size_t body_len,
               void (*put)(uint8_t *b, const struct p2c2r_task *t));

/* Frees what local_keep kept (no-op when nothing). */
void local_drop(struct entry *e);

/* A peer's successful result for e (exec_us as the DELIVER said): teaches e's type its time
 * per cost unit, when e's cost is known. */
void local_learn_delivered(p2c2r_client *c, const struct entry *e, uint32_t exec_us);

/* The connection failed with err, or the coordinator refused e with err (local_takes_refusal):
 * e (incomplete, kept by local_keep) waits to run locally instead of failing now; err is its
 * outcome should it not fit. */
void local_enqueue(p2c2r_client *c, struct entry *e, int err);

/* Whether a task the coordinator refused with status st may run locally instead: it would
 * miss its deadline on the fabric (EDEADLINE), no peer serves its type (EUNSUPPORTED), or the
 * queues are full (EQUEUEFULL). */
int local_takes_refusal(int st);

/* Runs what fits of the waiting tasks in this frame's budget and completes those that will
 * never run (over the budget, past their deadline).  Returns the results completed. */
int local_run(p2c2r_client *c);

/* Monotonic us at which local_run has work to do: now or earlier when a task can run now,
 * the next frame when one waits for budget, UINT64_MAX when none waits. */
uint64_t local_next_us(const p2c2r_client *c);

/* A waiting e was cancelled: it ends ECANCELLED.  Returns 1 when e was waiting. */
int local_cancel(p2c2r_client *c, struct entry *e);

#endif
