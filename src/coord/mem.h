/* mem.h - the coordinator's memory budget: what clients can make p2c2rd hold
 * (task bodies and slots, blobs with their headers, connection buffers:
 * partial input frames and output not yet sent) is charged here, against one
 * global limit and against the share of the renter it is held for, so that
 * no client, and no set of clients, can grow the daemon past --mem-budget.
 *
 * What is charged, and when:
 *   MEM_TASKS   a task's slot and its body, from accept to task_free
 *               (a task a stalled peer still holds stays charged to its
 *               renter's account after the renter's outcome or departure);
 *   MEM_BLOBS   a blob's bytes plus MEM_BLOB_OVERHEAD, while it is stored;
 *   MEM_BUFFERS a connection's input and output buffers (their capacity),
 *               synced after each read and each frame queued.
 * A charge may pass the limits (an outcome must be delivered, a result
 * read): the limits are enforced where new work comes in, through
 * mem_admit, which refuses, and for output by cutting the renter that does
 * not read.
 *
 * The account (struct mem_acct) is one share of the budget: with
 * credentials every connection of one credential account charges the same
 * mem_acct (limits_renter_ready), so opening more connections buys no more
 * memory; without, each renter connection has its own.  An account is
 * reference counted: its connections, its credential account record and
 * every task and blob charged to it hold one, so a task that outlives its
 * renter keeps counting against the account it came from.
 *
 * Thread context: the coordinator's loop only; nothing is locked. */
#ifndef P2C2R_MEM_H
#define P2C2R_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "common/list.h"

enum mem_kind { MEM_TASKS, MEM_BLOBS, MEM_BUFFERS, MEM_KINDS };

/* Bytes charged per blob on top of its data: its header (struct blob), two
 * allocator headers and its hash-table link, measured with 8-byte blobs
 * (1.75M of them cost 229 MiB of RSS, about 137 bytes each). */
#define MEM_BLOB_OVERHEAD 144u

/* One account's (without credentials: one renter connection's) share of
 * the budget. */
struct mem_acct {
    uint64_t used;           /* bytes charged to it, all kinds */
    uint64_t by_kind[MEM_KINDS];
    uint64_t blob_bytes;     /* of its MEM_BLOBS charge: its stored blobs */
    uint32_t refs;           /* its connection(s), and each task and blob charged to it */
    uint32_t conns;          /* renter connections charging it now */
    uint8_t gone;            /* no connection holds it any more (conns fell to 0) */
};

struct mem_budget {
    uint64_t limit;          /* bytes new work may take the charged total to */
    uint64_t share;          /* bytes one account may hold */
    uint64_t used;
    uint64_t by_kind[MEM_KINDS];
    uint64_t peak;
    uint64_t refused;        /* new work refused for the budget or a share */
    uint32_t blob_holders;   /* accounts with blob_bytes > 0 */
};

/* The part of budget_bytes that charges may use: the rest is the daemon's
 * own (code, libraries, the task slab's free slots, the store, allocator
 * slack).  Never 0. */
uint64_t mem_usable(uint64_t budget_bytes);

/* Sets the limits (share 0: a quarter of the usable budget). */
void mem_init(struct mem_budget *m, uint64_t budget_bytes, uint64_t share_bytes);

/* A new account with one reference (its connection's). */
struct mem_acct *mem_acct_new(void);
void mem_acct_ref(struct mem_acct *a);
/* Drops one reference; frees the account at 0.  NULL is a no-op. */
void mem_acct_unref(struct mem_acct *a);

/* Charges (n > 0) or releases n bytes of kind k, to the budget and to a
 * (NULL: the coordinator's own, e.g. a peer's buffers). */
void mem_charge(struct mem_budget *m, struct mem_acct *a, int k, uint64_t n);
void mem_release(struct mem_budget *m, struct mem_acct *a, int k, uint64_t n);

/* Moves a charge from old to now (a buffer that grew or shrank). */
void mem_adjust(struct mem_budget *m, struct mem_acct *a, int k, uint64_t old, uint64_t now);

enum { MEM_OK = 0, MEM_OVER_BUDGET = 1, MEM_OVER_SHARE = 2 };

/* Whether new work of n bytes for a may be taken: MEM_OK, or which limit it
 * would pass (counted in refused).  Writes a reason naming the limit and
 * what to do into why. */
int mem_admit(struct mem_budget *m, const struct mem_acct *a, uint64_t n, char *why, size_t cap);

#endif
