/* coord.c - the coordinator (p2c2rd's core): connections and the scheduler.
 *
 * One libuv loop owns every connection, peer record and task; nothing here is
 * locked.  A connection is either a renter (submits tasks, receives outcomes)
 * or a peer (receives assignments, returns results), fixed by its HELLO.
 *
 * Scheduling in one paragraph (docs/ARCHITECTURE.md has the reasons): a
 * task waits in its type's queue for its priority class (realtime,
 * interactive, background), earliest deadline first, with aging so that no
 * class starves; a peer with a free slot takes the most urgent task it can
 * run; a fresh task goes straight to the best of a few sampled peers with a
 * free slot (power of d choices over a per-type set of free peers, scored by
 * load, round trip, execution time, failure rate and trust).  A task may hold
 * two attempts at once (a hedge); a failed or lost attempt is retried on
 * another peer; repeated work is answered from a result cache or coalesced
 * onto an identical task in flight.
 *
 * Invariants:
 * - Every accepted task ends with exactly one outcome frame (DELIVER) to its
 *   renter, unless the renter went away first.  After that the task is
 *   detached from the renter (t->renter == NULL) and out of the deadline heap.
 * - Every ASSIGN sent to a peer is one attempt, answered by exactly one
 *   RESULT or by the peer's disconnection; the attempt stays on its peer's
 *   list until then, so a peer's in-flight count equals that list's length.
 * - A peer never holds more tasks than it advertised slots (credits).
 * - A peer is in its types' free sets exactly when it can take a task now
 *   (connection ready, a free slot, not quarantined).
 * - Output to a connection goes through conn_frame into its out buffer and is
 *   flushed once per loop iteration (uv_check), so many frames share one
 *   write.  A connection whose buffered output would pass max_output is cut.
 * - A connection closed inside a callback is detached from all scheduling
 *   state at once and freed only from its uv_close callback. */
#include "coord/coord.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/hist.h"
#include "common/list.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "common/version.h"
#include "coord/metrics_http.h"
#include "coord/rcache.h"
#include "p2c2r/error.h"

#define READ_CHUNK (256u * 1024)
#define SWEEP_MS 5          /* deadlines and hedges */
#define CONN_SWEEP_TICKS 20 /* housekeeping every 100 ms */
#define DRAIN_MS 200
#define TASK_CHUNK 1024
#define TASK_INLINE 112
#define MAX_TOKENS 1024
#define BLOB_BUCKETS 4096
#define PEER_BUCKETS 4096 /* peers by id, for judging a peer by a result it gave earlier */
#define PEER_HAS_CAP 1024
#define EXCL_MAX 4               /* peers a retried task remembers to avoid */
#define COALESCE_BUCKETS 16384
#define DUP_RING 16              /* task ids a peer answered lately */
#define SAMPLE_D 3               /* power of d choices */
#define STAT_MIN_SAMPLES 20      /* before hedging or admission estimates */
#define HEDGE_SKIP_MAX 64        /* unhedgeable attempts one sweep passes over, per type */
#define LOOK_PAST 16             /* queued tasks a peer looks past when it cannot run the front */
#define WINDOW_US 10000000ull    /* latency windows for p50/p95 rotate every 10 s */
#define NO_IDX UINT32_MAX
#define NCODES (1 - P2C2R_ERROR_MIN)

enum conn_state { CS_HELLO, CS_READY, CS_DRAINING, CS_CLOSED };
enum task_state { TS_FREE, TS_QUEUED, TS_RUNNING, TS_FOLLOWER, TS_ORPHAN };
enum peer_state { PS_OK, PS_QUARANTINED, PS_PROBING };

static const char *conn_state_name(int s)
{
    static const char *const n[] = {"hello", "ready", "draining", "closed"};
    return s >= 0 && s <= CS_CLOSED ? n[s] : "?";
}

static const char *task_state_name(int s)
{
    static const char *const n[] = {"free", "queued", "running", "follower", "orphan"};
    return s >= 0 && s <= TS_ORPHAN ? n[s] : "?";
}

static const char *peer_state_name(int s)
{
    static const char *const n[] = {"ok", "quarantined", "probing"};
    return s >= 0 && s <= PS_PROBING ? n[s] : "?";
}

static const char *const prio_name[PRIO_CLASSES] = {"realtime", "interactive", "background"};

/* Legal task transitions: free->queued|running|follower (placed, queued or
 * coalesced at submit), queued->running, running->queued (every attempt
 * lost or failed, retried), running->orphan (outcome given while a peer
 * still holds an attempt), any->free. */
static int task_transition_ok(int from, int to)
{
    switch (to) {
    case TS_FREE: return from != TS_FREE;
    case TS_QUEUED: return from == TS_FREE || from == TS_RUNNING;
    case TS_RUNNING: return from == TS_FREE || from == TS_QUEUED;
    case TS_FOLLOWER: return from == TS_FREE;
    case TS_ORPHAN: return from == TS_RUNNING;
    default: return 0;
    }
}

/* Legal peer transitions: ok->quarantined (circuit opens), quarantined->
 * probing (cool-down over: one task may test it), probing->ok|quarantined. */
static int peer_transition_ok(int from, int to)
{
    switch (to) {
    case PS_QUARANTINED: return from == PS_OK || from == PS_PROBING;
    case PS_PROBING: return from == PS_QUARANTINED;
    case PS_OK: return from == PS_PROBING;
    default: return 0;
    }
}

struct conn;
struct peer_rec;
struct task;

/* A binary min-heap of tasks ordered by (deadline, submit order); each task
 * remembers its position so removal is O(log n). */
struct theap {
    struct task **a;
    uint32_t n, cap;
};

/* One priority class of one type: EDF heap plus FIFO (for aging). */
struct tqueue {
    struct theap h;
    struct list_node fifo;
};

struct ttype {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint8_t name_len, cacheable;
    /* [0]: tasks any peer of the type may run; [1]: tasks with requirements
     * (GPU, cores, memory), kept apart so they never block the others. */
    struct tqueue q[2][PRIO_CLASSES];
    uint32_t queued;
    struct peer_rec **peers;
    uint32_t npeers, peers_cap;
    struct peer_rec **free; /* peers that can take a task now */
    uint32_t nfree, free_cap;
    uint64_t slots_total;   /* over registered peers */
    uint64_t no_peer_since; /* when npeers became 0 (us) */
    uint32_t deadline_ms;   /* default deadline for the type, 0 = global */
    struct list_node running; /* first attempts by start time: hedge candidates */
    /* Latency of whole attempts (assign to result) in two rotating windows,
     * and the quantiles derived from them each 100 ms. */
    struct hist att[2];
    uint64_t att_since;
    uint64_t att_p50, att_p95, att_n;
    double exec_ewma; /* us */
    struct hist h_queue, h_dispatch, h_exec, h_total;
    uint64_t outcomes[NCODES]; /* DELIVERs by status */
    uint64_t rejected[NCODES]; /* REJECTEDs by code */
    uint64_t retries, hedges, hedge_wins, cache_hits, cache_misses, coalesced;
};

/* What a peer has for one task type; versions and execution times sit
 * together so that judging a peer for a type touches one cache line. */
struct peer_type {
    uint32_t version;
    float exec_ewma; /* us */
    uint32_t pos;    /* index in ttype.peers */
    uint32_t fpos;   /* index in ttype.free */
};

/* The fields pick_peer reads of every sampled peer come first, so that
 * choosing among 10,000 peers costs about two cache misses per sample. */
struct peer_rec {
    uint32_t id;
    uint32_t slots, inflight;
    uint16_t cores;
    uint8_t gpu, state, eligible;
    uint64_t mem;
    float fail_ewma, rtt_us;
    uint64_t strikes, good; /* strikes: results another peer contradicted */
    uint32_t types;         /* bitmask of ttype indexes */
    struct conn *conn;
    struct peer_type ty[PROTO_MAX_TYPES];
    char gpu_model[PROTO_MAX_NAME + 1];
    struct list_node attempts; /* live attempts */
    struct list_node node;     /* co->peers */
    struct peer_rec *hnext;    /* co->peer_tab chain */
    struct list_node qnode;    /* co->quarantined, while quarantined */
    uint64_t done, failed;
    uint32_t consec_strikes, quarantines;
    uint64_t state_until_us;
    uint64_t ping_sent_us;
    uint64_t recent[DUP_RING];
    uint32_t recent_pos;
    /* Blobs this peer was sent (first 8 hash bytes, 0 = empty slot).  Only a
     * hint: cleared when half full, and a peer that lost a blob answers
     * ENOBLOB, which clears it too and resends. */
    uint64_t *has; /* PEER_HAS_CAP entries, allocated with the first blob */
    uint32_t has_n;
};

/* One ASSIGN of a task to a peer.  A task holds at most two (a hedge). */
struct attempt {
    struct task *t;
    struct peer_rec *peer; /* NULL: slot unused */
    struct list_node pnode; /* peer's attempts */
    struct list_node hnode; /* type's running list (first attempts only) */
    uint64_t start_us;
    uint8_t cancelled, hedge;
};

struct task {
    uint64_t id; /* generation << 32 | slab index */
    struct conn *renter;
    uint64_t ticket;
    struct list_node rnode;     /* renter's tasks */
    struct list_node qnode;     /* queue FIFO, or the leader's followers */
    struct list_node followers; /* leader: identical tasks waiting on it */
    struct task *leader;        /* follower: the task it waits on */
    struct task *cnext;         /* coalescing bucket chain */
    struct rcache_key key;
    struct attempt at[2];
    uint8_t state, tt, prio, kind, flags, nlive, keyed, cacheable, hedged;
    uint16_t attempts, tries, err_status;
    uint32_t err_peer;
    uint32_t excl[EXCL_MAX];
    uint8_t nexcl;
    uint32_t qidx, dlidx;
    uint32_t body_len;
    uint8_t *body; /* the task body exactly as submitted; forwarded as ASSIGN */
    uint32_t min_version;
    struct proto_reqs reqs;
    uint64_t seq; /* submit order: ties in deadline go first come first served */
    uint64_t submit_us, deadline_us, first_assign_us;
    /* Its place in an EDF queue: its deadline, or the earlier deadline of a
     * task coalesced onto it (which waits for this run). */
    uint64_t urgent_us;
    uint32_t next_free;
    uint8_t nblobs, blob_retries;
    struct blob *blobs[PROTO_MAX_BLOBS]; /* referenced, so never evicted meanwhile */
    uint8_t small[TASK_INLINE];
};

/* A content-addressed blob uploaded by a renter.  Blobs no task references
 * sit on an LRU list and are evicted when the store passes its byte cap. */
struct blob {
    uint8_t hash[PROTO_HASH_LEN];
    uint32_t refs;
    size_t len;
    uint8_t *data;
    struct list_node lru;
    struct blob *hnext;
};

struct conn {
    uv_tcp_t tcp;
    struct coord *co;
    uint64_t id;
    uint8_t role, state, writing, dirty, detached;
    char addr[64];
    char name[PROTO_MAX_NAME + 1];
    struct buf in, out, sending;
    uv_write_t wreq;
    struct list_node dirty_node, all_node, reap_node, drain_node;
    uint64_t created_us, last_rx_us, drain_until_us;
    uint32_t inflight;      /* renter: outstanding tasks */
    struct list_node tasks; /* renter: its outstanding tasks */
    struct peer_rec *peer;  /* peer: after PEER_REGISTER */
};

struct counters {
    uint64_t submitted, accepted, rejected, delivered_ok, delivered_err;
    uint64_t requeued, lost, timed_out, cancelled, late_results, duplicate_results;
    uint64_t retries, hedges, hedge_wins, quarantines, coalesced; /* cache hits/misses: rcache_stats */
    uint64_t rejected_deadline, rejected_capability, pings;
    uint64_t blobs_put, blobs_sent, blob_misses;
    uint64_t conns_total, proto_errors, auth_failures, limit_cuts;
    uint64_t bytes_in, bytes_out;
};

struct token {
    uint8_t roles; /* bit (1 << role) */
    uint16_t len;
    char tok[PROTO_MAX_TOKEN];
};

/* A per-type default deadline from --type-deadline. */
struct type_deadline {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint32_t ms;
};

struct coord {
    struct coord_config cfg;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_check_t flusher;
    uv_timer_t sweeper;
    uv_signal_t sigint, sigterm;
    uv_async_t stopper;
    char addr[64];
    int stopping, ready_sent;
    uint64_t stop_deadline_us;
    uint32_t ticks;
    /* The clock, read once at the top of each loop callback: every event a
     * callback handles shares it (a read costs ~45 ns on a VM, and a task
     * used to read it five times).  Never decreases. */
    uint64_t now;

    struct list_node conns, dirty, reap, peers;
    struct peer_rec *peer_tab[PEER_BUCKETS];
    /* Connection housekeeping looks at every connection once per walk
     * period (timeouts, pings) a slice per 100 ms, from this cursor into
     * conns; draining connections and quarantined peers, which need it
     * sooner, have lists of their own. */
    struct list_node *walk;
    struct list_node draining, quarantined;
    uint32_t nconns, nrenters, npeers;
    uint64_t next_conn_id;
    uint32_t next_peer_id;

    struct ttype types[PROTO_MAX_TYPES];
    uint32_t ntypes;
    struct type_deadline tdl[PROTO_MAX_TYPES];
    uint32_t ntdl;
    char cache_types[PROTO_MAX_TYPES][PROTO_MAX_TYPE_NAME + 1];
    uint32_t ncache_types;

    struct task **chunks;
    uint32_t nchunks, free_head, tasks_live;
    uint32_t gen;
    uint64_t seq;
    uint32_t queued_total;
    uint64_t queued_bytes;
    struct theap dl; /* every task whose outcome is pending, by deadline */
    struct task *coalesce[COALESCE_BUCKETS];
    struct rcache *cache;
    struct mhttp *metrics;

    uint8_t *rbuf; /* shared read buffer: a connection keeps its own only for a partial frame */
    struct blob *blob_tab[BLOB_BUCKETS];
    struct list_node blob_lru;
    size_t blob_bytes;
    uint32_t nblob;
    struct rng rng;
    struct counters n;
    struct token *tokens;
    uint32_t ntokens;
};

#define NO_FREE UINT32_MAX

static void conn_close(struct conn *c);
static void conn_fail(struct conn *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void dispatch_peer(struct coord *co, struct peer_rec *p);
static void blob_unref(struct coord *co, struct blob *b);

/* ---- task slab ------------------------------------------------------------- */

static struct task *task_at(struct coord *co, uint32_t idx)
{
    return &co->chunks[idx / TASK_CHUNK][idx % TASK_CHUNK];
}

/* An illegal transition is a bug in this file, never a remote's doing. */
static void task_set_state(struct task *t, int to)
{
    if (!task_transition_ok(t->state, to)) {
        LOG_E("task_bad_transition", "task=%" PRIx64 " from=%s to=%s", t->id,
              task_state_name(t->state), task_state_name(to));
        abort();
    }
    t->state = (uint8_t)to;
}

static struct task *task_alloc(struct coord *co)
{
    if (co->free_head == NO_FREE) {
        uint32_t base = co->nchunks * TASK_CHUNK;
        co->chunks = xrealloc(co->chunks, (co->nchunks + 1) * sizeof(*co->chunks));
        struct task *ch = xcalloc(TASK_CHUNK, sizeof(struct task));
        co->chunks[co->nchunks++] = ch;
        for (uint32_t i = 0; i < TASK_CHUNK; i++)
            ch[i].next_free = i + 1 < TASK_CHUNK ? base + i + 1 : NO_FREE;
        co->free_head = base;
    }
    uint32_t idx = co->free_head;
    struct task *t = task_at(co, idx);
    co->free_head = t->next_free;
    uint32_t gen = ++co->gen;
    if (gen == 0)
        gen = ++co->gen;
    memset(t, 0, offsetof(struct task, small));
    t->id = (uint64_t)gen << 32 | idx;
    t->qidx = t->dlidx = NO_IDX;
    list_init(&t->rnode);
    list_init(&t->qnode);
    list_init(&t->followers);
    for (int i = 0; i < 2; i++) {
        t->at[i].t = t;
        list_init(&t->at[i].pnode);
        list_init(&t->at[i].hnode);
    }
    co->tasks_live++;
    return t;
}

static void coalesce_remove(struct coord *co, struct task *t);

static void task_free(struct coord *co, struct task *t)
{
    assert(t->nlive == 0 && t->qidx == NO_IDX && t->dlidx == NO_IDX && !t->renter);
    assert(list_empty(&t->followers));
    task_set_state(t, TS_FREE);
    coalesce_remove(co, t);
    for (unsigned i = 0; i < t->nblobs; i++)
        blob_unref(co, t->blobs[i]);
    t->nblobs = 0;
    list_remove(&t->rnode);
    list_remove(&t->qnode);
    if (t->body != t->small)
        free(t->body);
    t->body = NULL;
    uint32_t idx = (uint32_t)t->id;
    t->id = 0;
    t->next_free = co->free_head;
    co->free_head = idx;
    co->tasks_live--;
}

static struct task *task_lookup(struct coord *co, uint64_t id)
{
    uint32_t idx = (uint32_t)id;
    if (idx >= co->nchunks * TASK_CHUNK)
        return NULL;
    struct task *t = task_at(co, idx);
    return t->id == id && t->state != TS_FREE ? t : NULL;
}

/* ---- heaps ------------------------------------------------------------------
 * Two heaps hold tasks: a queue's EDF heap (position in qidx), ordered by
 * (urgent_us, seq), and the global deadline heap (dlidx), ordered by
 * (deadline_us, seq). */

/* Queue order: whether a should run before b. */
static int task_before(const struct task *a, const struct task *b)
{
    return a->urgent_us < b->urgent_us || (a->urgent_us == b->urgent_us && a->seq < b->seq);
}

/* Deadline-heap order: whether a times out before b. */
static int task_due_before(const struct task *a, const struct task *b)
{
    return a->deadline_us < b->deadline_us || (a->deadline_us == b->deadline_us && a->seq < b->seq);
}

static int heap_before(const struct task *a, const struct task *b, int dl)
{
    return dl ? task_due_before(a, b) : task_before(a, b);
}

static uint32_t *heap_pos(struct task *t, int dl) { return dl ? &t->dlidx : &t->qidx; }

static void heap_place(struct theap *h, uint32_t i, struct task *t, int dl)
{
    h->a[i] = t;
    *heap_pos(t, dl) = i;
}

static void heap_sift(struct theap *h, uint32_t i, int dl)
{
    struct task *t = h->a[i];
    while (i > 0 && heap_before(t, h->a[(i - 1) / 2], dl)) {
        heap_place(h, i, h->a[(i - 1) / 2], dl);
        i = (i - 1) / 2;
    }
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && heap_before(h->a[c + 1], h->a[c], dl))
            c++;
        if (!heap_before(h->a[c], t, dl))
            break;
        heap_place(h, i, h->a[c], dl);
        i = c;
    }
    heap_place(h, i, t, dl);
}

static void heap_push(struct theap *h, struct task *t, int dl)
{
    assert(*heap_pos(t, dl) == NO_IDX);
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->a = xrealloc(h->a, h->cap * sizeof(*h->a));
    }
    heap_place(h, h->n++, t, dl);
    heap_sift(h, h->n - 1, dl);
}

static void heap_remove(struct theap *h, struct task *t, int dl)
{
    uint32_t i = *heap_pos(t, dl);
    assert(i < h->n && h->a[i] == t);
    *heap_pos(t, dl) = NO_IDX;
    struct task *last = h->a[--h->n];
    if (i < h->n) {
        heap_place(h, i, last, dl);
        heap_sift(h, i, dl);
    }
}

static void dl_remove(struct coord *co, struct task *t)
{
    if (t->dlidx != NO_IDX)
        heap_remove(&co->dl, t, 1);
}

/* ---- result cache and coalescing ---------------------------------------------- */

static uint32_t coalesce_bucket(const struct rcache_key *k) { return (uint32_t)(k->lo % COALESCE_BUCKETS); }

/* A task in flight with the same key whose peer will satisfy min_version. */
static struct task *coalesce_find(struct coord *co, const struct rcache_key *k, uint32_t min_version)
{
    for (struct task *t = co->coalesce[coalesce_bucket(k)]; t; t = t->cnext)
        if (t->key.lo == k->lo && t->key.hi == k->hi && t->min_version >= min_version &&
            t->renter && (t->state == TS_QUEUED || t->state == TS_RUNNING))
            return t;
    return NULL;
}

static void coalesce_add(struct coord *co, struct task *t)
{
    struct task **head = &co->coalesce[coalesce_bucket(&t->key)];
    t->cnext = *head;
    *head = t;
    t->keyed = 1;
}

static void coalesce_remove(struct coord *co, struct task *t)
{
    if (!t->keyed)
        return;
    struct task **pp = &co->coalesce[coalesce_bucket(&t->key)];
    while (*pp != t)
        pp = &(*pp)->cnext;
    *pp = t->cnext;
    t->cnext = NULL;
    t->keyed = 0;
}

/* ---- output --------------------------------------------------------------- */

static void conn_mark_dirty(struct conn *c)
{
    if (!c->dirty) {
        c->dirty = 1;
        list_push_back(&c->co->dirty, &c->dirty_node);
    }
}

/* Reserves a whole frame in c's output and writes its header.  Returns the
 * body pointer (body_len bytes to fill now), or NULL when the connection's
 * output would pass its cap: the caller must then cut the connection. */
static uint8_t *conn_frame(struct conn *c, uint8_t type, uint16_t flags,
                           uint64_t req_id, uint32_t body_len)
{
    if (c->state >= CS_DRAINING)
        return NULL;
    uint8_t *p = buf_reserve(&c->out, PROTO_HDR_LEN + (size_t)body_len);
    if (!p)
        return NULL;
    proto_put_hdr(p, type, flags, req_id, body_len);
    buf_commit(&c->out, PROTO_HDR_LEN + (size_t)body_len);
    c->co->n.bytes_out += PROTO_HDR_LEN + (size_t)body_len;
    conn_mark_dirty(c);
    return p + PROTO_HDR_LEN;
}

#define DIRECT_MIN (16u * 1024)

/* Sends a frame whose body is prefix + payload.  A large payload going to a
 * connection with nothing else queued is written straight from where it
 * lies (no copy into the output buffer); whatever the kernel does not take
 * is appended, so frame order is kept.  Returns 0, or -1 when the output
 * would pass its cap (the caller cuts the connection). */
static int conn_send(struct conn *c, uint8_t type, uint64_t req_id, const uint8_t *prefix,
                     size_t prefix_len, const uint8_t *payload, size_t payload_len)
{
    if (c->state >= CS_DRAINING)
        return -1;
    uint8_t head[PROTO_HDR_LEN + 32];
    size_t body = prefix_len + payload_len, total = PROTO_HDR_LEN + body, done = 0;
    assert(prefix_len <= 32);
    proto_put_hdr(head, type, 0, req_id, (uint32_t)body);
    if (prefix_len)
        memcpy(head + PROTO_HDR_LEN, prefix, prefix_len);
    size_t hl = PROTO_HDR_LEN + prefix_len;
    if (payload_len >= DIRECT_MIN && !c->writing && buf_used(&c->out) == 0) {
        uv_buf_t v[2] = {uv_buf_init((char *)head, (unsigned)hl),
                         uv_buf_init((char *)payload, (unsigned)payload_len)};
        int n = uv_try_write((uv_stream_t *)&c->tcp, v, 2);
        done = n > 0 ? (size_t)n : 0;
        c->co->n.bytes_out += done;
        if (done == total)
            return 0;
    }
    uint8_t *p = buf_reserve(&c->out, total - done);
    if (!p)
        return -1;
    if (done < hl) {
        memcpy(p, head + done, hl - done);
        if (payload_len)
            memcpy(p + hl - done, payload, payload_len);
    } else {
        memcpy(p, payload + (done - hl), total - done);
    }
    buf_commit(&c->out, total - done);
    c->co->n.bytes_out += total - done;
    conn_mark_dirty(c);
    return 0;
}

static void on_write(uv_write_t *req, int status);

static void conn_flush(struct conn *c)
{
    if (c->writing || c->state >= CS_CLOSED || buf_used(&c->out) == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)buf_head(&c->out), (unsigned)buf_used(&c->out));
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        LOG_D("conn_write_error", "conn=%" PRIu64 " err=%s", c->id, uv_strerror(n));
        conn_close(c);
        return;
    }
    buf_consume(&c->out, (size_t)n);
    if (buf_used(&c->out) == 0) {
        buf_shrink(&c->out, 64u << 10);
        return;
    }
    /* The kernel took only part: hand the rest to libuv and keep collecting
     * new frames in the other buffer. */
    struct buf t = c->sending;
    c->sending = c->out;
    c->out = t;
    b = uv_buf_init((char *)buf_head(&c->sending), (unsigned)buf_used(&c->sending));
    c->writing = 1;
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc < 0) {
        c->writing = 0;
        conn_close(c);
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->co->now = now_us();
    c->writing = 0;
    buf_consume(&c->sending, buf_used(&c->sending));
    buf_shrink(&c->sending, 64u << 10);
    if (status < 0) {
        if (c->state < CS_CLOSED)
            conn_close(c);
        return;
    }
    if (buf_used(&c->out))
        conn_mark_dirty(c);
}

static void conn_detach(struct conn *c);

/* Detaches the connections cut since the last call (see conn_fail). */
static void conn_reap(struct coord *co)
{
    struct list_node *n;
    while ((n = list_pop_front(&co->reap)) != NULL)
        conn_detach(list_entry(n, struct conn, reap_node));
}

static void sweep_hedges(struct coord *co, uint64_t now);

static void on_check(uv_check_t *h)
{
    struct coord *co = h->data;
    struct list_node *n;
    co->now = now_us();
    conn_reap(co);
    /* Hedges are due at a type's p95, often a few hundred microseconds:
     * looking at each type's oldest attempt after every loop iteration
     * costs O(types) and starts a copy as soon as one is due, instead of
     * at the next 5 ms sweep (which still covers an idle loop). */
    sweep_hedges(co, co->now);
    while ((n = list_pop_front(&co->dirty)) != NULL) {
        struct conn *c = list_entry(n, struct conn, dirty_node);
        c->dirty = 0;
        conn_flush(c);
    }
}

/* ---- peers and types -------------------------------------------------------- */

static void peer_set_state(struct peer_rec *p, int to)
{
    if (!peer_transition_ok(p->state, to)) {
        LOG_E("peer_bad_transition", "peer=%u from=%s to=%s", p->id, peer_state_name(p->state),
              peer_state_name(to));
        abort();
    }
    p->state = (uint8_t)to;
}

/* Whether p can take one more task now. */
static int peer_can_take(const struct peer_rec *p)
{
    if (!p->conn || p->conn->state != CS_READY || p->inflight >= p->slots)
        return 0;
    return p->state == PS_OK || (p->state == PS_PROBING && p->inflight == 0);
}

/* Brings p's membership of its types' free sets in line with peer_can_take.
 * Called after every change of slots, in-flight count, state or connection
 * state: O(types of p). */
static void peer_refresh(struct coord *co, struct peer_rec *p)
{
    uint8_t want = (uint8_t)peer_can_take(p);
    if (want == p->eligible)
        return;
    p->eligible = want;
    for (uint32_t m = p->types; m; m &= m - 1) {
        int ti = __builtin_ctz(m);
        struct ttype *tt = &co->types[ti];
        if (want) {
            if (tt->nfree == tt->free_cap) {
                tt->free_cap = tt->free_cap ? tt->free_cap * 2 : 8;
                tt->free = xrealloc(tt->free, tt->free_cap * sizeof(*tt->free));
            }
            p->ty[ti].fpos = tt->nfree;
            tt->free[tt->nfree++] = p;
        } else {
            uint32_t pos = p->ty[ti].fpos;
            assert(pos < tt->nfree && tt->free[pos] == p);
            tt->free[pos] = tt->free[--tt->nfree];
            tt->free[pos]->ty[ti].fpos = pos;
        }
    }
}

/* The connected peer with this id, or NULL (gone).  O(1): peer ids are
 * sequential, so id modulo the table size spreads them evenly. */
static struct peer_rec *peer_find(struct coord *co, uint32_t id)
{
    struct peer_rec *p = co->peer_tab[id % PEER_BUCKETS];
    while (p && p->id != id)
        p = p->hnext;
    return p;
}

static void peer_unlink(struct coord *co, struct peer_rec *p)
{
    struct peer_rec **pp = &co->peer_tab[p->id % PEER_BUCKETS];
    while (*pp != p)
        pp = &(*pp)->hnext;
    *pp = p->hnext;
    list_remove(&p->node);
    list_remove(&p->qnode);
}

static void peer_quarantine(struct coord *co, struct peer_rec *p, const char *why)
{
    uint64_t ms = (uint64_t)co->cfg.breaker_cooldown_ms << (p->quarantines < 6 ? p->quarantines : 6);
    peer_set_state(p, PS_QUARANTINED);
    list_push_back(&co->quarantined, &p->qnode);
    p->quarantines++;
    p->state_until_us = co->now + ms * 1000;
    co->n.quarantines++;
    LOG_W("peer_quarantined", "peer=%u reason=\"%s\" strikes=%u cooldown_ms=%" PRIu64, p->id, why,
          p->consec_strikes, ms);
    peer_refresh(co, p);
}

/* Moves p's failure rate (a moving average over its events, weight 0.1)
 * toward 1 for a bad event: a contradicted result, a deadline that passed
 * while it held the task, a result sent twice. */
static void peer_bad_event(struct peer_rec *p) { p->fail_ewma = p->fail_ewma * 0.9f + 0.1f; }

/* p returned a result another peer contradicted (or it failed a probe). */
static void peer_strike(struct coord *co, struct peer_rec *p, const char *why)
{
    p->strikes++;
    p->consec_strikes++;
    peer_bad_event(p);
    if (p->state == PS_PROBING ||
        (p->state == PS_OK && p->consec_strikes >= co->cfg.breaker_strikes))
        peer_quarantine(co, p, why);
}

static void peer_good(struct coord *co, struct peer_rec *p)
{
    p->good++;
    p->consec_strikes = 0;
    p->fail_ewma *= 0.9f;
    if (p->state == PS_PROBING) {
        peer_set_state(p, PS_OK);
        LOG_I("peer_restored", "peer=%u", p->id);
        peer_refresh(co, p);
    }
}

static int type_find(struct coord *co, const uint8_t *name, size_t len)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        if (co->types[i].name_len == len && memcmp(co->types[i].name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

/* Type names are 1..32 bytes of [a-z0-9_.-]: they appear in logs, JSON
 * and metrics without escaping. */
static int type_name_ok(const uint8_t *name, size_t len)
{
    if (len == 0 || len > PROTO_MAX_TYPE_NAME)
        return 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

/* A type with no peer and nothing queued references nothing (a task of a
 * type is queued, following a queued or running task, or on a peer of that
 * type), so its slot can be given to a new name: peers cannot fill the
 * table for good. */
static int type_slot_free(const struct ttype *tt) { return tt->npeers == 0 && tt->queued == 0; }

static int type_intern(struct coord *co, const uint8_t *name, size_t len)
{
    int i = type_find(co, name, len);
    if (i >= 0)
        return i;
    struct ttype *tt = NULL;
    if (co->ntypes < PROTO_MAX_TYPES) {
        tt = &co->types[co->ntypes++];
    } else {
        for (uint32_t k = 0; k < co->ntypes && !tt; k++)
            if (type_slot_free(&co->types[k]))
                tt = &co->types[k];
        if (!tt)
            return -1;
    }
    /* Keep the arrays a recycled slot already owns. */
    struct peer_rec **peers = tt->peers, **fr = tt->free;
    uint32_t pcap = tt->peers_cap, fcap = tt->free_cap;
    struct theap hq[2][PRIO_CLASSES];
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < PRIO_CLASSES; c++)
            hq[k][c] = tt->q[k][c].h;
    memset(tt, 0, sizeof(*tt));
    tt->peers = peers;
    tt->peers_cap = pcap;
    tt->free = fr;
    tt->free_cap = fcap;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c < PRIO_CLASSES; c++) {
            tt->q[k][c].h = hq[k][c];
            tt->q[k][c].h.n = 0;
            list_init(&tt->q[k][c].fifo);
        }
    memcpy(tt->name, name, len);
    tt->name[len] = '\0';
    tt->name_len = (uint8_t)len;
    list_init(&tt->running);
    tt->no_peer_since = co->now;
    for (uint32_t k = 0; k < co->ntdl; k++)
        if (strcmp(co->tdl[k].name, tt->name) == 0)
            tt->deadline_ms = co->tdl[k].ms;
    for (uint32_t k = 0; k < co->ncache_types; k++)
        if (strcmp(co->cache_types[k], tt->name) == 0 || strcmp(co->cache_types[k], "*") == 0)
            tt->cacheable = 1;
    hist_init(&tt->att[0]);
    hist_init(&tt->att[1]);
    hist_init(&tt->h_queue);
    hist_init(&tt->h_dispatch);
    hist_init(&tt->h_exec);
    hist_init(&tt->h_total);
    tt->att_since = co->now;
    return (int)(tt - co->types);
}

static int task_excludes(const struct task *t, uint32_t peer_id)
{
    for (unsigned i = 0; i < t->nexcl; i++)
        if (t->excl[i] == peer_id)
            return 1;
    return 0;
}

static int reqs_met(const struct proto_reqs *r, const struct peer_rec *p)
{
    return (!r->gpu || p->gpu) && p->cores >= r->min_cores && p->mem >= r->min_mem;
}

/* Whether p may run t: version, requirements, and not a peer that already
 * failed it (unless no other peer of the type is left). */
static int task_fits(const struct coord *co, const struct task *t, const struct peer_rec *p)
{
    if (p->ty[t->tt].version < t->min_version || !reqs_met(&t->reqs, p))
        return 0;
    if (t->nexcl && task_excludes(t, p->id) && co->types[t->tt].npeers > t->nexcl)
        return 0;
    for (int i = 0; i < 2; i++)
        if (t->at[i].peer == p)
            return 0;
    return 1;
}

/* How often p was right: a Laplace estimate over its results that another
 * peer confirmed or contradicted, 0.5 with no history. */
static double peer_trust(const struct peer_rec *p)
{
    return (p->good + 1.0) / (p->good + p->strikes + 2.0);
}

/* Expected time for p to return a task of type ti, in us; lower is better.
 * See docs/ARCHITECTURE.md, "Peer choice". */
static double peer_score(const struct coord *co, const struct peer_rec *p, int ti)
{
    const struct ttype *tt = &co->types[ti];
    double exec = p->ty[ti].exec_ewma > 0 ? p->ty[ti].exec_ewma : tt->exec_ewma > 0 ? tt->exec_ewma : 1000;
    double load = p->slots ? (double)p->inflight / p->slots : 1;
    double trust = peer_trust(p);
    return (p->rtt_us + exec * (1 + load)) * (1 + 4 * p->fail_ewma) * (1.5 - 0.5 * trust);
}

/* The best of SAMPLE_D random peers of t's type that can take it now;
 * tasks with requirements fall back to a scan of the free set when the
 * samples miss.  NULL when none can. */
static struct peer_rec *pick_peer(struct coord *co, const struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    uint32_t n = tt->nfree;
    if (n == 0)
        return NULL;
    struct peer_rec *best = NULL;
    double best_s = 0;
    if (n <= SAMPLE_D) {
        for (uint32_t i = 0; i < n; i++) {
            struct peer_rec *p = tt->free[i];
            if (!task_fits(co, t, p))
                continue;
            double s = peer_score(co, p, t->tt);
            if (!best || s < best_s)
                best = p, best_s = s;
        }
        return best;
    }
    /* SAMPLE_D distinct peers: drawn with replacement, a slow peer among
     * four free ones would be the only candidate in 1 of 64 picks and get
     * work that its faster rivals then have to hedge. */
    uint32_t seen[SAMPLE_D];
    int ns = 0;
    for (int k = 0; k < SAMPLE_D * 3 && ns < SAMPLE_D; k++) {
        uint32_t i = (uint32_t)(rng_next(&co->rng) % n);
        int dup = 0;
        for (int j = 0; j < ns; j++)
            dup |= seen[j] == i;
        if (dup)
            continue;
        seen[ns++] = i;
        struct peer_rec *p = tt->free[i];
        if (!task_fits(co, t, p))
            continue;
        double s = peer_score(co, p, t->tt);
        if (!best || s < best_s)
            best = p, best_s = s;
    }
    if (best || (!t->kind && !t->nexcl && t->min_version == 0))
        return best;
    for (uint32_t i = 0; i < n; i++)
        if (task_fits(co, t, tt->free[i]))
            return tt->free[i];
    return NULL;
}

/* ---- queues ------------------------------------------------------------------ */

static struct tqueue *task_queue(struct coord *co, const struct task *t)
{
    return &co->types[t->tt].q[t->kind][t->prio];
}

/* Queues t.  front: a retry, which has waited longest (its FIFO place). */
static void task_enqueue(struct coord *co, struct task *t, int front)
{
    struct ttype *tt = &co->types[t->tt];
    struct tqueue *q = task_queue(co, t);
    if (t->state != TS_QUEUED) /* a task put back after a failed send stays queued */
        task_set_state(t, TS_QUEUED);
    heap_push(&q->h, t, 0);
    if (front)
        list_push_front(&q->fifo, &t->qnode);
    else
        list_push_back(&q->fifo, &t->qnode);
    tt->queued++;
    co->queued_total++;
    co->queued_bytes += t->body_len;
}

static void task_dequeue(struct coord *co, struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    heap_remove(&task_queue(co, t)->h, t, 0);
    list_remove(&t->qnode);
    tt->queued--;
    co->queued_total--;
    co->queued_bytes -= t->body_len;
}

/* The level a task competes at: its class (0 realtime .. 2 background),
 * raised one class for each aging_ms it has waited, up to realtime.  Aging
 * thus lets old background work compete with fresh interactive work, and,
 * after twice aging_ms, with realtime work by deadline: no class starves,
 * yet a realtime task with a frame-sized deadline still goes before old
 * background tasks (their deadlines are later). */
static int task_level(const struct coord *co, const struct task *t, uint64_t now)
{
    uint64_t waited = now > t->submit_us ? now - t->submit_us : 0;
    uint64_t steps = waited / ((uint64_t)co->cfg.aging_ms * 1000);
    return steps >= t->prio ? 0 : (int)(t->prio - steps);
}

/* The task p should run next: the lowest level (task_level) among the
 * queues of its types, earliest deadline first within a level.  Each queue
 * offers its EDF root at the queue's class, and its FIFO head (the task
 * that waited longest, so the most aged) at that task's level.  When p can
 * run neither (requirements, version, a peer that already failed it), up
 * to LOOK_PAST more tasks of that queue in arrival order are tried, so one
 * GPU task waiting for a GPU peer does not hold back the tasks behind it.
 * That bounds the work to O(types of p * LOOK_PAST). */
static struct task *next_for_peer(struct coord *co, struct peer_rec *p, uint64_t now)
{
    struct task *best = NULL;
    int best_level = PRIO_CLASSES;
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &co->types[__builtin_ctz(m)];
        if (tt->queued == 0)
            continue;
        for (int k = 0; k < 2; k++) {
            for (int c = 0; c < PRIO_CLASSES; c++) {
                struct tqueue *q = &tt->q[k][c];
                if (q->h.n == 0)
                    continue;
                struct task *root = q->h.a[0];
                struct list_node *n = q->fifo.next;
                int fits = 0;
                for (int i = 0; i < LOOK_PAST + 2 && n != &q->fifo; i++) {
                    struct task *x = i == 0 ? root : list_entry(n, struct task, qnode);
                    if (i > 0)
                        n = n->next;
                    if (i == 1 && x == root)
                        continue;
                    if (i > 1 && fits)
                        break; /* look past only queues whose front p cannot run */
                    int level = i == 0 ? c : task_level(co, x, now);
                    if (!task_fits(co, x, p))
                        continue;
                    fits = 1;
                    if (best && (level > best_level || (level == best_level && !task_before(x, best))))
                        continue;
                    best = x;
                    best_level = level;
                }
            }
        }
    }
    return best;
}

/* ---- stats helpers -------------------------------------------------------------- */

static void ewma(double *v, double sample)
{
    *v = *v > 0 ? *v * 0.9 + sample * 0.1 : sample;
}

static void ewmaf(float *v, double sample)
{
    *v = *v > 0 ? (float)(*v * 0.9 + sample * 0.1) : (float)sample;
}

/* Recomputes a type's attempt-latency quantiles; rotates the windows. */
static void type_stats_tick(struct ttype *tt, uint64_t now)
{
    if (now - tt->att_since >= WINDOW_US) {
        tt->att[1] = tt->att[0];
        hist_init(&tt->att[0]);
        tt->att_since = now;
    }
    struct hist m = tt->att[0];
    hist_merge(&m, &tt->att[1]);
    tt->att_n = m.count;
    tt->att_p50 = hist_quantile(&m, 0.50);
    tt->att_p95 = hist_quantile(&m, 0.95);
}

/* ---- blobs ---------------------------------------------------------------- */

static uint64_t hash_key(const uint8_t *h) { return rd64(h) | 1; /* never 0 */ }

static struct blob *blob_find(struct coord *co, const uint8_t *h)
{
    struct blob *b = co->blob_tab[rd64(h) % BLOB_BUCKETS];
    while (b && memcmp(b->hash, h, PROTO_HASH_LEN) != 0)
        b = b->hnext;
    return b;
}

static void blob_remove(struct coord *co, struct blob *b)
{
    struct blob **pp = &co->blob_tab[rd64(b->hash) % BLOB_BUCKETS];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    list_remove(&b->lru);
    co->blob_bytes -= b->len;
    co->nblob--;
    free(b->data);
    free(b);
}

static void blob_ref(struct blob *b)
{
    if (b->refs++ == 0)
        list_remove(&b->lru);
}

static void blob_unref(struct coord *co, struct blob *b)
{
    assert(b->refs > 0);
    if (--b->refs == 0)
        list_push_back(&co->blob_lru, &b->lru);
}

/* Stores a copy of data under its SHA-256 (written to hash).  Returns 0,
 * P2C2R_ETOOBIG (larger than the whole store) or P2C2R_EQUEUEFULL (the
 * store is full of blobs that queued or running tasks still reference). */
static int blob_put(struct coord *co, const uint8_t *data, size_t len, uint8_t *hash)
{
    unsigned int hl = 0;
    if (!EVP_Digest(data, len, hash, &hl, EVP_sha256(), NULL) || hl != PROTO_HASH_LEN)
        return P2C2R_ENOMEM;
    struct blob *b = blob_find(co, hash);
    if (b) {
        if (b->refs == 0) { /* touch */
            list_remove(&b->lru);
            list_push_back(&co->blob_lru, &b->lru);
        }
        return 0;
    }
    if (len > co->cfg.blob_store_bytes)
        return P2C2R_ETOOBIG;
    while (co->blob_bytes + len > co->cfg.blob_store_bytes && !list_empty(&co->blob_lru))
        blob_remove(co, list_entry(co->blob_lru.next, struct blob, lru));
    if (co->blob_bytes + len > co->cfg.blob_store_bytes)
        return P2C2R_EQUEUEFULL;
    b = xcalloc(1, sizeof(*b));
    memcpy(b->hash, hash, PROTO_HASH_LEN);
    b->len = len;
    b->data = xmalloc(len);
    memcpy(b->data, data, len);
    struct blob **head = &co->blob_tab[rd64(hash) % BLOB_BUCKETS];
    b->hnext = *head;
    *head = b;
    list_push_back(&co->blob_lru, &b->lru);
    co->blob_bytes += len;
    co->nblob++;
    co->n.blobs_put++;
    return 0;
}

static int peer_has_blob(const struct peer_rec *p, const uint8_t *h)
{
    if (!p->has)
        return 0;
    uint64_t k = hash_key(h);
    for (uint32_t i = (uint32_t)(k % PEER_HAS_CAP);; i = (i + 1) % PEER_HAS_CAP) {
        if (p->has[i] == k)
            return 1;
        if (p->has[i] == 0)
            return 0;
    }
}

static void peer_mark_blob(struct peer_rec *p, const uint8_t *h)
{
    if (!p->has)
        p->has = xcalloc(PEER_HAS_CAP, sizeof(*p->has));
    if (p->has_n >= PEER_HAS_CAP / 2) {
        memset(p->has, 0, PEER_HAS_CAP * sizeof(*p->has));
        p->has_n = 0;
    }
    uint64_t k = hash_key(h);
    uint32_t i = (uint32_t)(k % PEER_HAS_CAP);
    while (p->has[i] != 0 && p->has[i] != k)
        i = (i + 1) % PEER_HAS_CAP;
    if (p->has[i] == 0)
        p->has_n++;
    p->has[i] = k;
}

static void hex32(const uint8_t *h, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < PROTO_HASH_LEN; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[64] = '\0';
}

/* ---- task flow ------------------------------------------------------------ */

/* Sends t to p as a new attempt (a hedge when t already runs elsewhere).
 * Returns 0, or -1 when p's connection was cut because its output is full
 * (t is then untouched and still the caller's). */
static int task_assign(struct coord *co, struct task *t, struct peer_rec *p, int hedge)
{
    /* Blobs the peer (probably) lacks travel just before the task. */
    for (unsigned i = 0; i < t->nblobs; i++) {
        struct blob *b = t->blobs[i];
        if (peer_has_blob(p, b->hash))
            continue;
        if (conn_send(p->conn, MSG_BLOB_DATA, 0, b->hash, PROTO_HASH_LEN, b->data, b->len) != 0) {
            co->n.limit_cuts++;
            conn_fail(p->conn, P2C2R_ELIMIT, "peer output over %zu bytes", co->cfg.max_output);
            return -1;
        }
        peer_mark_blob(p, b->hash);
        co->n.blobs_sent++;
    }
    if (conn_send(p->conn, MSG_ASSIGN, t->id, NULL, 0, t->body, t->body_len) != 0) {
        co->n.limit_cuts++;
        conn_fail(p->conn, P2C2R_ELIMIT, "peer output over %zu bytes", co->cfg.max_output);
        return -1;
    }
    struct ttype *tt = &co->types[t->tt];
    struct attempt *a = t->at[0].peer ? &t->at[1] : &t->at[0];
    assert(!a->peer && t->nlive < 2);
    uint64_t now = co->now;
    if (t->state != TS_RUNNING)
        task_set_state(t, TS_RUNNING);
    a->peer = p;
    a->start_us = now;
    a->cancelled = 0;
    a->hedge = (uint8_t)hedge;
    list_push_back(&p->attempts, &a->pnode);
    if (!hedge && co->cfg.hedge)
        list_push_back(&tt->running, &a->hnode);
    t->nlive++;
    t->attempts++;
    if (!hedge)
        t->tries++;
    if (!t->first_assign_us) {
        t->first_assign_us = now;
        hist_add(&tt->h_queue, now - t->submit_us);
    }
    p->inflight++;
    peer_refresh(co, p);
    return 0;
}

/* Ends attempt a (its RESULT came, or its peer is gone). */
static void attempt_end(struct coord *co, struct attempt *a)
{
    struct peer_rec *p = a->peer;
    assert(p && a->t->nlive > 0);
    list_remove(&a->pnode);
    list_remove(&a->hnode);
    a->peer = NULL;
    a->t->nlive--;
    p->inflight--;
    peer_refresh(co, p);
}

/* Tells every peer still running t to stop (advisory: the attempt ends
 * with the peer's RESULT, which is then discarded). */
static void task_cancel_attempts(struct task *t)
{
    for (int i = 0; i < 2; i++) {
        struct attempt *a = &t->at[i];
        if (!a->peer || a->cancelled)
            continue;
        a->cancelled = 1;
        list_remove(&a->hnode);
        /* Best effort: with its output full the peer just runs it. */
        (void)conn_frame(a->peer->conn, MSG_CANCEL, 0, t->id, 0);
    }
}

static int send_deliver(struct coord *co, struct conn *r, uint64_t ticket, int status,
                        uint16_t attempts, uint32_t exec_us, uint32_t peer_id, uint32_t flags,
                        const uint8_t *out, size_t len)
{
    if (status == 0)
        co->n.delivered_ok++;
    else
        co->n.delivered_err++;
    uint8_t head[PROTO_DELIVER_PREFIX];
    proto_put_deliver_head(head, (uint16_t)(status < 0 ? -status : status), attempts, exec_us,
                           peer_id, flags);
    if (conn_send(r, MSG_DELIVER, ticket, head, sizeof(head), out, len) != 0 &&
        r->state < CS_DRAINING) {
        co->n.limit_cuts++;
        conn_fail(r, P2C2R_ELIMIT, "renter output over %zu bytes: read your results",
                  co->cfg.max_output);
        return -1;
    }
    return 0;
}

/* Gives t its final outcome: a DELIVER frame to its renter (if still there).
 * Detaches t from the renter and the deadline heap; the caller frees t or
 * keeps it as an orphan. */
static void task_deliver(struct coord *co, struct task *t, int status, const uint8_t *out,
                         size_t len, uint32_t exec_us, uint32_t peer_id, uint32_t flags)
{
    struct conn *r = t->renter;
    dl_remove(co, t);
    if (!r)
        return;
    t->renter = NULL;
    list_remove(&t->rnode);
    r->inflight--;
    struct ttype *tt = &co->types[t->tt];
    tt->outcomes[status < 0 ? -status : 0]++;
    hist_add(&tt->h_total, co->now - t->submit_us);
    send_deliver(co, r, t->ticket, status, t->attempts, exec_us, peer_id, flags, out, len);
}

static void deliver_text(struct coord *co, struct task *t, int status, const char *text)
{
    task_deliver(co, t, status, (const uint8_t *)text, strlen(text), 0, 0,
                 t->hedged ? PROTO_DELIVER_F_HEDGED : 0);
}

/* The final outcome of t's computation: t and every task coalesced onto it
 * get it.  t is freed, or kept as an orphan while peers still hold it. */
static void task_finish(struct coord *co, struct task *t, int status, const uint8_t *out,
                        size_t len, uint32_t exec_us, uint32_t peer_id)
{
    uint32_t fl = t->hedged ? PROTO_DELIVER_F_HEDGED : 0;
    task_deliver(co, t, status, out, len, exec_us, peer_id, fl);
    coalesce_remove(co, t);
    struct list_node *n;
    while ((n = list_pop_front(&t->followers)) != NULL) {
        struct task *f = list_entry(n, struct task, qnode);
        f->leader = NULL;
        task_deliver(co, f, status, out, len, exec_us, peer_id, fl | PROTO_DELIVER_F_CACHED);
        task_free(co, f);
    }
    if (t->state == TS_QUEUED)
        task_dequeue(co, t);
    if (t->nlive) {
        task_cancel_attempts(t);
        task_set_state(t, TS_ORPHAN);
    } else {
        task_free(co, t);
    }
}

/* t's renter is done with it (outcome given early, or gone) but tasks are
 * coalesced onto it: the first follower takes t's place, so the work goes
 * on for the others.  Returns the follower, which now stands for t's old
 * renter and ticket; the caller gives it its outcome and frees it. */
static struct task *task_handoff(struct coord *co, struct task *t)
{
    struct task *f = list_entry(list_pop_front(&t->followers), struct task, qnode);
    f->leader = NULL;
    struct conn *rt = t->renter, *rf = f->renter;
    list_remove(&t->rnode);
    list_remove(&f->rnode);
    t->renter = rf;
    f->renter = rt;
    uint64_t x = t->ticket;
    t->ticket = f->ticket;
    f->ticket = x;
    if (rf)
        list_push_back(&rf->tasks, &t->rnode);
    if (rt)
        list_push_back(&rt->tasks, &f->rnode);
    dl_remove(co, t);
    dl_remove(co, f);
    x = t->deadline_us;
    t->deadline_us = f->deadline_us;
    f->deadline_us = x;
    x = t->submit_us;
    t->submit_us = f->submit_us;
    f->submit_us = x;
    x = t->seq;
    t->seq = f->seq;
    f->seq = x;
    int queued = t->state == TS_QUEUED;
    if (queued)
        task_dequeue(co, t);
    t->prio = f->prio;
    if (queued)
        task_enqueue(co, t, 0);
    if (t->renter)
        heap_push(&co->dl, t, 1);
    return f;
}

/* Ends t now with status (timeout, cancel, shutdown, renter gone): a queued
 * task is freed, a running one becomes an orphan until its peers answer or
 * go, and they are told to cancel.  A task others are coalesced onto hands
 * its work over to them instead. */
static void task_end_early(struct coord *co, struct task *t, int status, const char *text)
{
    switch (t->state) {
    case TS_FOLLOWER:
        list_remove(&t->qnode);
        t->leader = NULL;
        deliver_text(co, t, status, text);
        task_free(co, t);
        return;
    case TS_QUEUED:
    case TS_RUNNING:
        if (!list_empty(&t->followers)) {
            struct task *f = task_handoff(co, t);
            deliver_text(co, f, status, text);
            task_free(co, f);
            return;
        }
        deliver_text(co, t, status, text);
        coalesce_remove(co, t);
        if (t->state == TS_QUEUED) {
            task_dequeue(co, t);
            task_free(co, t);
        } else {
            task_cancel_attempts(t);
            task_set_state(t, TS_ORPHAN);
        }
        return;
    default:
        return; /* orphan: its outcome was given */
    }
}

/* Puts t straight on the best peer that can take it.  Returns 1 when
 * placed, 0 when no peer can take it now. */
static int task_place(struct coord *co, struct task *t)
{
    struct peer_rec *p;
    while ((p = pick_peer(co, t)) != NULL)
        if (task_assign(co, t, p, 0) == 0)
            return 1;
    return 0;
}

/* Lets free peers of type ti take queued work (after a requeue). */
static void type_kick(struct coord *co, int ti)
{
    struct ttype *tt = &co->types[ti];
    for (uint32_t i = tt->nfree; i-- > 0 && tt->queued;)
        if (i < tt->nfree)
            dispatch_peer(co, tt->free[i]);
}

/* Sends a failed or lost t to another peer, or back to its queue's front. */
static void task_retry(struct coord *co, struct task *t, uint32_t failed_peer)
{
    if (failed_peer && !task_excludes(t, failed_peer)) {
        if (t->nexcl == EXCL_MAX)
            memmove(t->excl, t->excl + 1, (EXCL_MAX - 1) * sizeof(t->excl[0])), t->nexcl--;
        t->excl[t->nexcl++] = failed_peer;
    }
    co->n.retries++;
    co->types[t->tt].retries++;
    if (!task_place(co, t))
        task_enqueue(co, t, 1);
}

/* Fills p's free slots from the queues of the types it serves. */
static void dispatch_peer(struct coord *co, struct peer_rec *p)
{
    uint64_t now = co->now;
    while (peer_can_take(p)) {
        struct task *t = next_for_peer(co, p, now);
        if (!t)
            return;
        task_dequeue(co, t);
        if (task_assign(co, t, p, 0) != 0) {
            task_enqueue(co, t, 1);
            return;
        }
    }
}

/* ---- connections ------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    buf_fini(&c->in);
    buf_fini(&c->out);
    buf_fini(&c->sending);
    if (c->peer)
        free(c->peer->has);
    free(c->peer);
    free(c);
}

/* Removes c from all scheduling state: a renter's queued tasks are dropped
 * and its running ones orphaned (or handed to tasks coalesced onto them); a
 * peer's attempts end, and tasks left with none are retried at once. */
static void conn_detach(struct conn *c)
{
    struct coord *co = c->co;
    if (c->detached)
        return;
    c->detached = 1;
    list_remove(&c->reap_node);
    if (c->role == ROLE_RENTER && c->state != CS_HELLO) {
        co->nrenters--;
        struct list_node *n;
        while ((n = list_pop_front(&c->tasks)) != NULL) {
            struct task *t = list_entry(n, struct task, rnode);
            t->renter = NULL;
            c->inflight--;
            task_end_early(co, t, P2C2R_ECLOSED, "renter gone");
        }
    }
    struct peer_rec *p = c->peer;
    if (p) {
        co->npeers--;
        peer_unlink(co, p);
        for (uint32_t m = p->types; m; m &= m - 1) {
            int ti = __builtin_ctz(m);
            struct ttype *tt = &co->types[ti];
            uint32_t pos = p->ty[ti].pos;
            tt->peers[pos] = tt->peers[--tt->npeers];
            tt->peers[pos]->ty[ti].pos = pos;
            tt->slots_total -= p->slots;
            if (tt->npeers == 0)
                tt->no_peer_since = co->now;
        }
        p->slots = 0; /* no new work */
        peer_refresh(co, p);
        uint32_t types = p->types;
        struct list_node *n;
        while ((n = p->attempts.next) != &p->attempts) {
            struct attempt *a = list_entry(n, struct attempt, pnode);
            struct task *t = a->t;
            attempt_end(co, a);
            if (t->state == TS_ORPHAN) {
                if (t->nlive == 0)
                    task_free(co, t);
            } else if (t->nlive > 0) {
                continue; /* its other attempt goes on */
            } else if (t->tries >= co->cfg.max_attempts) {
                co->n.lost++;
                char msg[128];
                snprintf(msg, sizeof(msg), "task lost with %u peers in a row", t->tries);
                task_finish(co, t, P2C2R_ELOST, (const uint8_t *)msg, strlen(msg), 0, 0);
            } else {
                co->n.requeued++;
                task_retry(co, t, p->id);
            }
        }
        p->types = 0;
        /* Other peers may be able to take the requeued work now. */
        for (uint32_t m = types; m; m &= m - 1)
            type_kick(co, __builtin_ctz(m));
        LOG_I("peer_gone", "peer=%u conn=%" PRIu64 " done=%" PRIu64 " failed=%" PRIu64, p->id,
              c->id, p->done, p->failed);
    }
}

static void conn_close(struct conn *c)
{
    if (c->state >= CS_CLOSED)
        return;
    struct coord *co = c->co;
    conn_detach(c);
    c->state = CS_CLOSED;
    if (c->dirty) {
        list_remove(&c->dirty_node);
        c->dirty = 0;
    }
    if (co->walk == &c->all_node)
        co->walk = c->all_node.next;
    list_remove(&c->all_node);
    list_remove(&c->drain_node);
    co->nconns--;
    LOG_D("conn_closed", "conn=%" PRIu64 " addr=%s", c->id, c->addr);
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

/* Cuts a misbehaving or failed connection: sends ERROR(code, reason), stops
 * using it for anything, and closes it once the error had a moment to leave
 * (reads are discarded meanwhile so the kernel does not reset it early). */
static void conn_fail(struct conn *c, int code, const char *fmt, ...)
{
    if (c->state >= CS_DRAINING)
        return;
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(text))
        n = sizeof(text) - 1;
    LOG(code == P2C2R_ESHUTDOWN ? LOG_INFO : LOG_WARN, "conn_cut",
        "conn=%" PRIu64 " addr=%s role=%u state=%s code=%s reason=\"%s\"", c->id, c->addr, c->role,
        conn_state_name(c->state), p2c2r_errname(code), text);
    if (code == P2C2R_EPROTO || code == P2C2R_ETOOBIG)
        c->co->n.proto_errors++;
    /* Detaching requeues or frees tasks, which must not happen under a
     * caller that is walking a task list: it is deferred to conn_reap, at
     * the top of the next check or sweep.  Until then the connection takes
     * no new work: it is draining, and a peer's slots drop to zero. */
    c->state = CS_DRAINING;
    c->drain_until_us = c->co->now + DRAIN_MS * 1000;
    list_push_back(&c->co->draining, &c->drain_node);
    if (c->peer)
        peer_refresh(c->co, c->peer); /* draining: no new work */
    if (!c->detached && !list_linked(&c->reap_node))
        list_push_back(&c->co->reap, &c->reap_node);
    /* A connection cut for not reading loses what was queued for it: the
     * error should not wait behind megabytes nobody reads.  Otherwise what
     * was queued (outcomes, at shutdown) goes out before the error. */
    if (code == P2C2R_ELIMIT)
        buf_consume(&c->out, buf_used(&c->out));
    size_t bl = proto_error_size((size_t)n);
    uint8_t *b = buf_reserve(&c->out, PROTO_HDR_LEN + bl);
    if (b) {
        proto_put_hdr(b, MSG_ERROR, 0, 0, (uint32_t)bl);
        proto_put_error(b + PROTO_HDR_LEN, (uint16_t)-code, text, (size_t)n);
        buf_commit(&c->out, PROTO_HDR_LEN + bl);
        conn_mark_dirty(c);
    }
}

/* ---- handlers --------------------------------------------------------------- */

static int check_token(struct coord *co, uint8_t role, const struct bytes_view *tok)
{
    if (!co->cfg.tokens_file)
        return 0;
    for (uint32_t i = 0; i < co->ntokens; i++) {
        const struct token *t = &co->tokens[i];
        if (t->len == tok->len && CRYPTO_memcmp(t->tok, tok->p, t->len) == 0 &&
            (t->roles & (1u << role)))
            return 0;
    }
    return P2C2R_EAUTH;
}

static int on_hello(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_hello m;
    if (proto_parse_hello(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed HELLO");
        return -1;
    }
    if (m.ver_min > PROTO_VERSION || m.ver_max < PROTO_VERSION) {
        conn_fail(c, P2C2R_EVERSION, "no common protocol version: client speaks %u..%u, server %u",
                  m.ver_min, m.ver_max, PROTO_VERSION);
        return -1;
    }
    if (m.role != ROLE_RENTER && m.role != ROLE_PEER) {
        conn_fail(c, P2C2R_EPROTO, "HELLO role must be 1 (renter) or 2 (peer), got %u", m.role);
        return -1;
    }
    if (check_token(co, m.role, &m.token) != 0) {
        co->n.auth_failures++;
        conn_fail(c, P2C2R_EAUTH, "invalid or missing token for role %s",
                  m.role == ROLE_RENTER ? "renter" : "peer");
        return -1;
    }
    c->role = m.role;
    memcpy(c->name, m.name.p, m.name.len);
    c->name[m.name.len] = '\0';
    c->state = CS_READY;
    if (c->role == ROLE_RENTER)
        co->nrenters++;
    struct msg_hello_ok ok = {PROTO_VERSION, co->cfg.max_body, co->cfg.renter_max_inflight, c->id};
    uint8_t *b = conn_frame(c, MSG_HELLO_OK, 0, h->req_id, PROTO_HELLO_OK_LEN);
    if (!b)
        return -1;
    proto_put_hello_ok(b, &ok);
    LOG_I("conn_hello", "conn=%" PRIu64 " addr=%s role=%s name=\"%s\"", c->id, c->addr,
          c->role == ROLE_RENTER ? "renter" : "peer", c->name);
    return 0;
}

static void maybe_ready(struct coord *co)
{
    if (!co->ready_sent && co->npeers >= co->cfg.ready_peers) {
        co->ready_sent = 1;
        if (co->cfg.ready_file) {
            char tmp[4096];
            snprintf(tmp, sizeof(tmp), "%s.tmp", co->cfg.ready_file);
            FILE *f = fopen(tmp, "w");
            if (!f || fprintf(f, "%s\n", co->addr) < 0 || fclose(f) != 0 ||
                rename(tmp, co->cfg.ready_file) != 0)
                LOG_E("ready_file_failed", "path=%s err=\"%s\"", co->cfg.ready_file, strerror(errno));
        }
        if (co->cfg.on_ready)
            co->cfg.on_ready(co->cfg.arg, co->addr);
    }
}

static int on_register(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_register m;
    if (c->peer) {
        conn_fail(c, P2C2R_EPROTO, "PEER_REGISTER sent twice");
        return -1;
    }
    if (proto_parse_register(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed PEER_REGISTER");
        return -1;
    }
    if (m.ntypes == 0) {
        conn_fail(c, P2C2R_EINVAL, "PEER_REGISTER lists no task types");
        return -1;
    }
    /* Check every name and that the table can take the new ones before
     * touching any shared state, so a refusal leaves nothing behind. */
    uint32_t fresh = 0, recyclable = PROTO_MAX_TYPES - co->ntypes;
    for (uint32_t k = 0; k < co->ntypes; k++)
        recyclable += type_slot_free(&co->types[k]);
    for (unsigned i = 0; i < m.ntypes; i++) {
        if (!type_name_ok(m.types[i].name.p, m.types[i].name.len)) {
            conn_fail(c, P2C2R_EINVAL, "task type names are 1..32 bytes of a-z 0-9 _ . -");
            return -1;
        }
        int dup = 0;
        for (unsigned k = 0; k < i; k++)
            dup |= m.types[k].name.len == m.types[i].name.len &&
                   memcmp(m.types[k].name.p, m.types[i].name.p, m.types[i].name.len) == 0;
        if (!dup && type_find(co, m.types[i].name.p, m.types[i].name.len) < 0)
            fresh++;
    }
    if (fresh > recyclable) {
        conn_fail(c, P2C2R_ELIMIT, "too many distinct task types (max %d)", PROTO_MAX_TYPES);
        return -1;
    }
    struct peer_rec *p = xcalloc(1, sizeof(*p));
    p->id = ++co->next_peer_id;
    p->conn = c;
    p->cores = m.cores;
    p->mem = m.mem_bytes;
    p->gpu = m.gpu ? 1 : 0;
    p->state = PS_OK;
    memcpy(p->gpu_model, m.gpu_model.p, m.gpu_model.len);
    list_init(&p->attempts);
    list_init(&p->qnode);
    list_push_back(&co->peers, &p->node);
    p->hnext = co->peer_tab[p->id % PEER_BUCKETS];
    co->peer_tab[p->id % PEER_BUCKETS] = p;
    for (unsigned i = 0; i < m.ntypes; i++) {
        int ti = type_intern(co, m.types[i].name.p, m.types[i].name.len);
        assert(ti >= 0); /* capacity was checked above */
        if (p->types & (1u << ti))
            continue;
        struct ttype *tt = &co->types[ti];
        p->types |= 1u << ti;
        p->ty[ti].version = m.types[i].version;
        if (tt->npeers == tt->peers_cap) {
            tt->peers_cap = tt->peers_cap ? tt->peers_cap * 2 : 8;
            tt->peers = xrealloc(tt->peers, tt->peers_cap * sizeof(*tt->peers));
        }
        p->ty[ti].pos = tt->npeers;
        tt->peers[tt->npeers++] = p;
        tt->slots_total += m.slots;
    }
    c->peer = p;
    co->npeers++;
    p->slots = m.slots;
    peer_refresh(co, p);
    uint8_t *b = conn_frame(c, MSG_REGISTER_OK, 0, h->req_id, 8);
    if (b)
        wr64(b, p->id);
    LOG_I("peer_registered", "peer=%u conn=%" PRIu64 " name=\"%s\" cores=%u slots=%u gpu=%u types=%u",
          p->id, c->id, c->name, p->cores, p->slots, p->gpu, m.ntypes);
    dispatch_peer(co, p);
    maybe_ready(co);
    return 0;
}

static int on_credit(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint32_t slots;
    if (!c->peer || proto_parse_u32(body, h->body_len, &slots) != 0 || slots > 65535) {
        conn_fail(c, P2C2R_EPROTO, "CREDIT before PEER_REGISTER or malformed");
        return -1;
    }
    struct peer_rec *p = c->peer;
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &c->co->types[__builtin_ctz(m)];
        tt->slots_total = tt->slots_total - p->slots + slots;
    }
    p->slots = slots;
    peer_refresh(c->co, p);
    dispatch_peer(c->co, p);
    return 0;
}


/* Whether RESULT id is one p answered lately (a duplicate, not an invention). */
static int peer_answered(const struct peer_rec *p, uint64_t id)
{
    for (unsigned i = 0; i < DUP_RING; i++)
        if (p->recent[i] == id)
            return 1;
    return 0;
}

static int on_result(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    struct msg_result m;
    struct peer_rec *p = c->peer;
    if (!p || proto_parse_result(body, h->body_len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "RESULT before PEER_REGISTER or malformed");
        return -1;
    }
    struct task *t = task_lookup(co, h->req_id);
    struct attempt *a = NULL;
    if (t && (t->state == TS_RUNNING || t->state == TS_ORPHAN))
        for (int i = 0; i < 2; i++)
            if (t->at[i].peer == p)
                a = &t->at[i];
    if (!a) {
        if (peer_answered(p, h->req_id)) {
            /* Answered twice: dropped, counted, and it costs the peer trust. */
            co->n.duplicate_results++;
            peer_bad_event(p);
            return 0;
        }
        /* Never ours: a peer inventing results is misbehaving. */
        co->n.late_results++;
        conn_fail(c, P2C2R_EPROTO, "RESULT for task %" PRIx64 " that was not assigned to this peer",
                  h->req_id);
        return -1;
    }
    p->recent[p->recent_pos++ % DUP_RING] = h->req_id;
    struct ttype *tt = &co->types[t->tt];
    uint64_t now = co->now, dur = now - a->start_us;
    int hedge = a->hedge;
    attempt_end(co, a);
    int status = m.status ? -(int)m.status : 0;
    if (status < P2C2R_ERROR_MIN)
        status = P2C2R_ETASK;
    if (status == 0)
        p->done++;
    else if (status != P2C2R_ECANCELLED)
        p->failed++;
    if (status == 0) {
        hist_add(&tt->h_exec, m.exec_us);
        hist_add(&tt->h_dispatch, dur > m.exec_us ? dur - m.exec_us : 0);
        ewmaf(&p->ty[t->tt].exec_ewma, m.exec_us);
        ewmaf(&p->rtt_us, (double)(dur > m.exec_us ? dur - m.exec_us : 0));
        if (!hedge || t->state == TS_RUNNING)
            hist_add(&tt->att[0], dur);
        ewma(&tt->exec_ewma, m.exec_us);
    }

    if (t->state == TS_ORPHAN) {
        /* Cancelled, timed out or beaten by its hedge: dropped and counted. */
        co->n.late_results++;
        if (t->nlive == 0)
            task_free(co, t);
    } else if (status == P2C2R_ENOBLOB && t->blob_retries < 3) {
        /* The peer evicted a blob we thought it had: forget what we knew,
         * and run the task again (it resends the blobs) at no attempt's cost. */
        co->n.blob_misses++;
        free(p->has);
        p->has = NULL;
        p->has_n = 0;
        t->blob_retries++;
        t->attempts--;
        if (!hedge)
            t->tries--;
        if (t->nlive == 0)
            task_enqueue(co, t, 1);
    } else if (status == 0) {
        peer_good(co, p);
        if (t->err_status && t->err_peer != p->id) {
            struct peer_rec *bad = peer_find(co, t->err_peer);
            if (bad)
                peer_strike(co, bad, "an error another peer's success contradicted");
        }
        if (hedge) {
            co->n.hedge_wins++;
            tt->hedge_wins++;
        }
        if (t->cacheable && co->cache)
            (void)rcache_put(co->cache, &t->key, p->ty[t->tt].version, m.output.p, m.output.len, now);
        task_finish(co, t, 0, m.output.p, m.output.len, m.exec_us, p->id);
    } else {
        /* An error.  It is believed when a second peer says the same; until
         * then it may be this peer's fault, so the task runs elsewhere, and
         * the peer is judged by what the other run shows: a success there
         * is a strike against it (a failed probe reopens its breaker), the
         * same error clears it, since the task itself was at fault. */
        if (t->nlive > 0) {
            if (!t->err_status) {
                t->err_status = m.status;
                t->err_peer = p->id;
            }
        } else if (t->err_status == m.status && t->err_peer != p->id) {
            struct peer_rec *first = peer_find(co, t->err_peer);
            if (first)
                peer_good(co, first);
            peer_good(co, p);
            task_finish(co, t, status, m.output.p, m.output.len, m.exec_us, p->id);
        } else if (t->tries < co->cfg.max_attempts && tt->npeers > 1) {
            t->err_status = m.status;
            t->err_peer = p->id;
            task_retry(co, t, p->id);
        } else {
            task_finish(co, t, status, m.output.p, m.output.len, m.exec_us, p->id);
        }
    }
    if (c->state == CS_READY)
        dispatch_peer(co, p);
    return 0;
}

static int first_missing_blob(struct coord *co, const struct msg_task *m)
{
    for (int i = 0; i < m->nblobs; i++)
        if (!blob_find(co, m->blobs + i * PROTO_HASH_LEN))
            return i;
    return -1;
}

/* Whether any registered peer of the type could ever run a task that
 * needs r at version v.  O(peers of the type), only for tasks that name a
 * minimum version or requirements. */
static int type_can_meet(const struct ttype *tt, int ti, uint32_t v, const struct proto_reqs *r)
{
    for (uint32_t i = 0; i < tt->npeers; i++)
        if (tt->peers[i]->ty[ti].version >= v && reqs_met(r, tt->peers[i]))
            return 1;
    return 0;
}

static void reqs_describe(const struct proto_reqs *r, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s", r->gpu ? "a GPU" : "");
    if (r->min_cores)
        n += snprintf(out + n, cap - (size_t)n, "%s%u cores", n ? ", " : "", r->min_cores);
    if (r->min_mem)
        snprintf(out + n, cap - (size_t)n, "%s%" PRIu64 " MiB of memory", n ? ", " : "",
                 r->min_mem >> 20);
}

/* Expected time in us until a new task of type tt in class prio would have
 * its result, or 0 when too little is known to say.  See
 * docs/ARCHITECTURE.md, "Admission". */
static uint64_t admission_estimate(const struct ttype *tt, int kind, int prio, uint32_t *ahead_out)
{
    if (tt->att_n < STAT_MIN_SAMPLES || tt->att_p50 == 0)
        return 0;
    double run = (double)tt->att_p50;
    if (tt->nfree > 0 && kind == 0)
        return (uint64_t)run;
    uint32_t ahead = 0;
    for (int k = 0; k < 2; k++)
        for (int c = 0; c <= prio; c++)
            ahead += tt->q[k][c].h.n;
    *ahead_out = ahead;
    double per = tt->exec_ewma > 0 ? tt->exec_ewma : run;
    double slots = tt->slots_total ? (double)tt->slots_total : 1;
    return (uint64_t)(run + (ahead + 1) * per / slots);
}

static int send_rejected(struct conn *c, uint64_t ticket, int code, const char *reason)
{
    size_t rl = strlen(reason);
    uint8_t *b = conn_frame(c, MSG_REJECTED, 0, ticket, (uint32_t)proto_error_size(rl));
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    proto_put_error(b, (uint16_t)-code, reason, rl);
    return 0;
}

static int send_accepted(struct conn *c, uint64_t req_id, uint32_t count);

/* Accepts one task from a renter.  Returns 0 (accepted or rejected) or -1
 * when the connection was cut.  ack: a single SUBMIT that wants ACCEPTED,
 * sent here before a DELIVER from the cache (*accepted tells the caller). */
static int submit_one(struct conn *c, uint64_t ticket, const uint8_t *body, size_t len, int ack,
                      int *accepted, int *acked)
{
    struct coord *co = c->co;
    struct msg_task m;
    co->n.submitted++;
    if (proto_parse_task(body, len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed task in SUBMIT (ticket %" PRIu64 ")", ticket);
        return -1;
    }
    static const struct proto_reqs no_reqs = {0, 0, 0};
    int code = 0, missing;
    char reason[200];
    int ti = type_find(co, m.type.p, m.type.len);
    struct ttype *tt = ti >= 0 ? &co->types[ti] : NULL;
    int kind = (m.flags & PROTO_TASK_F_REQS) ? 1 : 0;
    int prio = m.priority < PRIO_CLASSES ? m.priority : PRIO_BACKGROUND;
    uint32_t dl_ms = m.deadline_ms ? m.deadline_ms
                                   : tt && tt->deadline_ms ? tt->deadline_ms : co->cfg.default_deadline_ms;
    if (c->inflight >= co->cfg.renter_max_inflight) {
        code = P2C2R_EQUEUEFULL;
        snprintf(reason, sizeof(reason), "renter has %u tasks outstanding (limit %u)", c->inflight,
                 co->cfg.renter_max_inflight);
    } else if (!tt || tt->npeers == 0) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs task type '%.*s'",
                 (int)m.type.len, (const char *)m.type.p);
    } else if (m.min_version && !type_can_meet(tt, ti, m.min_version, &no_reqs)) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs '%.*s' at version %u or later",
                 (int)m.type.len, (const char *)m.type.p, m.min_version);
    } else if (kind && !type_can_meet(tt, ti, m.min_version, &m.reqs)) {
        char need[96];
        reqs_describe(&m.reqs, need, sizeof(need));
        code = P2C2R_EUNSUPPORTED;
        co->n.rejected_capability++;
        snprintf(reason, sizeof(reason), "no connected peer of type '%s' has %s", tt->name, need);
    } else if ((missing = first_missing_blob(co, &m)) >= 0) {
        char hx[65];
        hex32(m.blobs + missing * PROTO_HASH_LEN, hx);
        code = P2C2R_ENOBLOB;
        snprintf(reason, sizeof(reason), "blob %s is not in the coordinator's store: upload it with BLOB_PUT", hx);
    } else if (co->queued_total >= co->cfg.queue_max ||
               co->queued_bytes + len > co->cfg.queue_max_bytes) {
        code = P2C2R_EQUEUEFULL;
        snprintf(reason, sizeof(reason), "coordinator queue full (%u tasks, %" PRIu64 " bytes)",
                 co->queued_total, co->queued_bytes);
    }
    if (code) {
        co->n.rejected++;
        if (tt)
            tt->rejected[-code]++;
        return send_rejected(c, ticket, code, reason);
    }

    /* A repeat of deterministic work: answered from the cache, or attached
     * to an identical task in flight. */
    int cacheable = tt->cacheable && !(m.flags & PROTO_TASK_F_NOCACHE) && co->cache;
    struct rcache_key key = {0, 0};
    struct task *leader = NULL;
    if (cacheable) {
        rcache_key(&key, m.type.p, m.type.len, m.params.p, m.params.len, m.blobs, m.nblobs,
                   m.input.p, m.input.len);
        const uint8_t *out;
        size_t olen;
        uint32_t ver;
        if (rcache_get(co->cache, &key, m.min_version, co->now, &out, &olen, &ver)) {
            tt->cache_hits++;
            co->n.accepted++;
            (*accepted)++;
            tt->outcomes[0]++;
            hist_add(&tt->h_total, 0);
            if (ack) {
                *acked = 1;
                if (send_accepted(c, ticket, 1) != 0)
                    return -1;
            }
            return send_deliver(co, c, ticket, 0, 0, 0, 0, PROTO_DELIVER_F_CACHED, out, olen);
        }
        tt->cache_misses++;
        leader = coalesce_find(co, &key, m.min_version);
    }
    uint32_t ahead = 0;
    uint64_t est = leader || !co->cfg.admission ? 0 : admission_estimate(tt, kind, prio, &ahead);
    if (est > (uint64_t)dl_ms * 1000) {
        co->n.rejected++;
        co->n.rejected_deadline++;
        tt->rejected[-P2C2R_EDEADLINE]++;
        snprintf(reason, sizeof(reason),
                 "would miss its %u ms deadline: about %" PRIu64 " ms expected (%u tasks ahead, %" PRIu64
                 " slots for '%s')", dl_ms, (est + 999) / 1000, ahead, tt->slots_total, tt->name);
        return send_rejected(c, ticket, P2C2R_EDEADLINE, reason);
    }

    struct task *t = task_alloc(co);
    t->renter = c;
    t->ticket = ticket;
    t->tt = (uint8_t)ti;
    t->prio = (uint8_t)prio;
    t->kind = (uint8_t)kind;
    t->flags = m.flags;
    t->min_version = m.min_version;
    t->reqs = m.reqs;
    t->seq = ++co->seq;
    t->submit_us = co->now;
    t->deadline_us = t->submit_us + (uint64_t)dl_ms * 1000;
    t->urgent_us = t->deadline_us;
    t->cacheable = (uint8_t)cacheable;
    t->key = key;
    t->body_len = (uint32_t)len;
    t->nblobs = m.nblobs;
    for (unsigned i = 0; i < m.nblobs; i++) {
        t->blobs[i] = blob_find(co, m.blobs + i * PROTO_HASH_LEN);
        blob_ref(t->blobs[i]);
    }
    list_push_back(&c->tasks, &t->rnode);
    c->inflight++;
    co->n.accepted++;
    (*accepted)++;
    heap_push(&co->dl, t, 1);
    if (leader) {
        /* Runs once: this task waits for the leader's result. */
        task_set_state(t, TS_FOLLOWER);
        t->leader = leader;
        list_push_back(&leader->followers, &t->qnode);
        co->n.coalesced++;
        tt->coalesced++;
        /* The shared run is as urgent as its most urgent waiter: a realtime
         * task must not wait in the background queue behind its leader, nor
         * behind tasks due later than itself. */
        if (leader->state == TS_QUEUED && (prio < leader->prio || t->deadline_us < leader->urgent_us)) {
            task_dequeue(co, leader);
            if (prio < leader->prio)
                leader->prio = (uint8_t)prio;
            if (t->deadline_us < leader->urgent_us)
                leader->urgent_us = t->deadline_us;
            task_enqueue(co, leader, 1);
        }
        t->body = NULL;
        t->body_len = 0;
        return 0;
    }
    t->body = len <= TASK_INLINE ? t->small : xmalloc(len);
    memcpy(t->body, body, len);
    if (cacheable)
        coalesce_add(co, t);
    if (!task_place(co, t))
        task_enqueue(co, t, 0);
    return 0;
}

static int send_accepted(struct conn *c, uint64_t req_id, uint32_t count)
{
    uint8_t *b = conn_frame(c, MSG_ACCEPTED, 0, req_id, 4);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    wr32(b, count);
    return 0;
}

static int on_submit(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    int accepted = 0, acked = 0, ack = (h->flags & PROTO_F_WANT_ACK) != 0;
    if (submit_one(c, h->req_id, body, h->body_len, ack, &accepted, &acked) != 0)
        return -1;
    if (ack && accepted && !acked)
        return send_accepted(c, h->req_id, 1);
    return 0;
}

static int on_submit_batch(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct proto_batch_iter it;
    uint32_t count;
    if (proto_batch_begin(body, h->body_len, &it, &count) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed SUBMIT_BATCH header");
        return -1;
    }
    /* Validate the framing of every entry first so a malformed batch is
     * refused whole rather than half-accepted. */
    struct proto_batch_iter chk = it;
    uint64_t id;
    const uint8_t *tb;
    size_t tl;
    int r;
    struct msg_task mt;
    while ((r = proto_batch_next(&chk, &id, &tb, &tl)) == 1) {
        if (proto_parse_task(tb, tl, &mt) != 0) {
            r = P2C2R_EPROTO;
            break;
        }
    }
    if (r != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed SUBMIT_BATCH entries");
        return -1;
    }
    int accepted = 0;
    while (proto_batch_next(&it, &id, &tb, &tl) == 1) {
        int acked = 0;
        if (submit_one(c, id, tb, tl, 0, &accepted, &acked) != 0)
            return -1;
    }
    if (h->flags & PROTO_F_WANT_ACK)
        return send_accepted(c, h->req_id, (uint32_t)accepted);
    return 0;
}

static int on_cancel(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    (void)body;
    if (h->body_len != 0) {
        conn_fail(c, P2C2R_EPROTO, "CANCEL carries no body");
        return -1;
    }
    struct list_node *n;
    for (n = c->tasks.next; n != &c->tasks; n = n->next) {
        struct task *t = list_entry(n, struct task, rnode);
        if (t->ticket == h->req_id) {
            c->co->n.cancelled++;
            task_end_early(c->co, t, P2C2R_ECANCELLED, "cancelled by renter");
            return 0;
        }
    }
    return 0; /* already finished: its outcome is on the way */
}

static int on_ping(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint8_t *b = conn_frame(c, MSG_PONG, 0, h->req_id, h->body_len);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "output over limit");
        return -1;
    }
    memcpy(b, body, h->body_len);
    return 0;
}

/* A peer's PONG to our PING carries our clock: a round-trip sample. */
static int on_pong(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct peer_rec *p = c->peer;
    if (p && h->body_len == 8 && p->ping_sent_us && rd64(body) == p->ping_sent_us) {
        ewmaf(&p->rtt_us, (double)(c->co->now - p->ping_sent_us));
        p->ping_sent_us = 0;
    }
    return 0;
}

static int on_remote_error(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct msg_error m;
    if (proto_parse_error(body, h->body_len, &m) == 0)
        LOG_W("remote_error", "conn=%" PRIu64 " code=%u text=\"%.*s\"", c->id, m.code,
              (int)m.text.len, (const char *)m.text.p);
    conn_close(c);
    return -1;
}

static void json_str(struct buf *o, const char *s)
{
    buf_append(o, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            buf_append(o, e, 2);
        } else if (ch < 0x20 || ch >= 0x7f) {
            char e[8];
            snprintf(e, sizeof(e), "\\u%04x", ch);
            buf_append(o, e, 6);
        } else {
            buf_append(o, s, 1);
        }
    }
    buf_append(o, "\"", 1);
}

static void jprintf(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jprintf(struct buf *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        buf_append(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static int on_blob_put(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint8_t hash[PROTO_HASH_LEN];
    int rc = blob_put(c->co, body, h->body_len, hash);
    if (rc != 0) {
        const char *why = rc == P2C2R_ETOOBIG ? "blob larger than the coordinator's blob store"
                                              : "blob store full of blobs that tasks still use";
        size_t wl = strlen(why);
        uint8_t *b = conn_frame(c, MSG_REJECTED, 0, h->req_id, (uint32_t)proto_error_size(wl));
        if (!b) {
            conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
            return -1;
        }
        proto_put_error(b, (uint16_t)-rc, why, wl);
        return 0;
    }
    uint8_t *b = conn_frame(c, MSG_BLOB_OK, 0, h->req_id, PROTO_HASH_LEN);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    memcpy(b, hash, PROTO_HASH_LEN);
    return 0;
}

static uint64_t type_free_slots(const struct ttype *tt)
{
    uint64_t n = 0;
    for (uint32_t i = 0; i < tt->nfree; i++)
        n += tt->free[i]->slots - tt->free[i]->inflight;
    return n;
}

/* The STATS document (docs/PROTOCOL.md 5.7), appended to o. */
static void stats_json(struct coord *co, struct buf *o)
{
    const struct counters *k = &co->n;
    struct rcache_stats cs = {0};
    if (co->cache)
        rcache_stats(co->cache, &cs);
    jprintf(o, "{\"version\":\"%s\",\"address\":", P2C2R_VERSION_STRING);
    json_str(o, co->addr);
    jprintf(o, ",\"connections\":%u,\"renters\":%u,\"peers_connected\":%u,\"tasks_live\":%u,"
               "\"queued\":%u,\"queued_bytes\":%" PRIu64 ",",
            co->nconns, co->nrenters, co->npeers, co->tasks_live, co->queued_total, co->queued_bytes);
    jprintf(o, "\"counters\":{\"submitted\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
               ",\"completed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"requeued\":%" PRIu64
               ",\"lost\":%" PRIu64 ",\"timed_out\":%" PRIu64 ",\"cancelled\":%" PRIu64
               ",\"late_results\":%" PRIu64 ",\"duplicate_results\":%" PRIu64,
            k->submitted, k->accepted, k->rejected, k->delivered_ok, k->delivered_err, k->requeued,
            k->lost, k->timed_out, k->cancelled, k->late_results, k->duplicate_results);
    jprintf(o, ",\"retries\":%" PRIu64 ",\"hedges\":%" PRIu64 ",\"hedge_wins\":%" PRIu64
               ",\"quarantines\":%" PRIu64 ",\"cache_hits\":%" PRIu64 ",\"cache_misses\":%" PRIu64
               ",\"coalesced\":%" PRIu64 ",\"rejected_deadline\":%" PRIu64
               ",\"rejected_capability\":%" PRIu64 ",\"pings\":%" PRIu64,
            k->retries, k->hedges, k->hedge_wins, k->quarantines, cs.hits, cs.misses,
            k->coalesced, k->rejected_deadline, k->rejected_capability, k->pings);
    jprintf(o, ",\"connections_total\":%" PRIu64 ",\"protocol_errors\":%" PRIu64
               ",\"auth_failures\":%" PRIu64 ",\"limit_cuts\":%" PRIu64 ",\"bytes_in\":%" PRIu64
               ",\"bytes_out\":%" PRIu64 ",\"blobs_put\":%" PRIu64 ",\"blobs_sent\":%" PRIu64
               ",\"blob_misses\":%" PRIu64 "},",
            k->conns_total, k->proto_errors, k->auth_failures, k->limit_cuts, k->bytes_in,
            k->bytes_out, k->blobs_put, k->blobs_sent, k->blob_misses);
    jprintf(o, "\"blobs\":{\"count\":%u,\"bytes\":%zu,\"max_bytes\":%zu},", co->nblob,
            co->blob_bytes, co->cfg.blob_store_bytes);
    jprintf(o, "\"cache\":{\"entries\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"max_bytes\":%zu"
               ",\"hits\":%" PRIu64 ",\"misses\":%" PRIu64 ",\"evictions\":%" PRIu64
               ",\"expired\":%" PRIu64 "},",
            cs.entries, cs.bytes, co->cfg.cache_bytes, cs.hits, cs.misses, cs.evictions, cs.expired);
    buf_append(o, "\"types\":[", 9);
    for (uint32_t i = 0; i < co->ntypes; i++) {
        const struct ttype *tt = &co->types[i];
        uint32_t byc[PRIO_CLASSES] = {0};
        for (int kk = 0; kk < 2; kk++)
            for (int c = 0; c < PRIO_CLASSES; c++)
                byc[c] += tt->q[kk][c].h.n;
        jprintf(o, "%s{\"name\":", i ? "," : "");
        json_str(o, tt->name);
        jprintf(o, ",\"peers\":%u,\"queued\":%u,\"queued_by_class\":[%u,%u,%u],\"free_slots\":%" PRIu64
                   ",\"slots\":%" PRIu64 ",\"cacheable\":%s,\"deadline_ms\":%u,\"exec_p95_us\":%" PRIu64
                   ",\"attempt_samples\":%" PRIu64 ",\"attempt_p50_us\":%" PRIu64 ",\"attempt_p95_us\":%" PRIu64
                   ",\"hedges\":%" PRIu64 ",\"retries\":%" PRIu64 "}",
                tt->npeers, tt->queued, byc[0], byc[1], byc[2], type_free_slots(tt), tt->slots_total,
                tt->cacheable ? "true" : "false",
                tt->deadline_ms ? tt->deadline_ms : co->cfg.default_deadline_ms,
                hist_quantile(&tt->h_exec, 0.95), tt->att_n, tt->att_p50, tt->att_p95, tt->hedges,
                tt->retries);
    }
    buf_append(o, "],\"peers\":[", 11);
    int first = 1;
    for (struct list_node *n = co->peers.next; n != &co->peers; n = n->next) {
        struct peer_rec *p = list_entry(n, struct peer_rec, node);
        struct conn *pc = p->conn;
        if (pc->state != CS_READY || o->len > (7u << 20))
            continue;
        jprintf(o, "%s{\"id\":%u,\"name\":", first ? "" : ",", p->id);
        first = 0;
        json_str(o, pc->name);
        buf_append(o, ",\"addr\":", 8);
        json_str(o, pc->addr);
        jprintf(o, ",\"state\":\"%s\",\"cores\":%u,\"slots\":%u,\"inflight\":%u,\"mem_bytes\":%" PRIu64
                   ",\"gpu\":%s,\"gpu_model\":",
                peer_state_name(p->state), p->cores, p->slots, p->inflight, p->mem,
                p->gpu ? "true" : "false");
        json_str(o, p->gpu_model);
        jprintf(o, ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"strikes\":%" PRIu64
                   ",\"rtt_us\":%.0f,\"fail_rate\":%.3f,\"trust\":%.3f,\"types\":[",
                p->done, p->failed, p->strikes, (double)p->rtt_us, (double)p->fail_ewma,
                peer_trust(p));
        int ft = 1;
        for (uint32_t m = p->types; m; m &= m - 1) {
            int ti = __builtin_ctz(m);
            jprintf(o, "%s{\"name\":", ft ? "" : ",");
            json_str(o, co->types[ti].name);
            jprintf(o, ",\"version\":%u,\"exec_us\":%.0f}", p->ty[ti].version, (double)p->ty[ti].exec_ewma);
            ft = 0;
        }
        buf_append(o, "]}", 2);
    }
    buf_append(o, "]}", 2);
}

static int on_stats(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    (void)body;
    struct coord *co = c->co;
    struct buf o;
    buf_init(&o, 8u << 20);
    stats_json(co, &o);
    uint8_t *b = conn_frame(c, MSG_STATS, 0, h->req_id, (uint32_t)buf_used(&o));
    int rc = 0;
    if (b) {
        memcpy(b, buf_head(&o), buf_used(&o));
    } else {
        conn_fail(c, P2C2R_ELIMIT, "output over limit");
        rc = -1;
    }
    buf_fini(&o);
    return rc;
}

/* ---- metrics (Prometheus text, GET /metrics on --metrics) ------------------- */

static void metrics_render(void *arg, struct buf *o)
{
    struct coord *co = arg;
    const struct counters *k = &co->n;
    char lb[160];
    prom_help(o, "p2c2r_tasks_total", "counter", "Outcomes delivered, by task type and status.");
    for (uint32_t i = 0; i < co->ntypes; i++)
        for (int s = 0; s < NCODES; s++)
            if (co->types[i].outcomes[s]) {
                snprintf(lb, sizeof(lb), "type=\"%s\",outcome=\"%s\"", co->types[i].name,
                         p2c2r_errname(-s));
                prom_counter(o, "p2c2r_tasks_total", lb, co->types[i].outcomes[s]);
            }
    prom_help(o, "p2c2r_rejected_total", "counter", "Tasks refused at submit, by task type and reason.");
    for (uint32_t i = 0; i < co->ntypes; i++)
        for (int s = 0; s < NCODES; s++)
            if (co->types[i].rejected[s]) {
                snprintf(lb, sizeof(lb), "type=\"%s\",reason=\"%s\"", co->types[i].name,
                         p2c2r_errname(-s));
                prom_counter(o, "p2c2r_rejected_total", lb, co->types[i].rejected[s]);
            }
    prom_help(o, "p2c2r_stage_seconds", "histogram",
              "Latency by stage: queue (accept to first assign), dispatch (attempt time not spent "
              "executing), exec (as the peer measured it), total (accept to outcome).");
    for (uint32_t i = 0; i < co->ntypes; i++) {
        const struct ttype *tt = &co->types[i];
        static const char *const stage[] = {"queue", "dispatch", "exec", "total"};
        const struct hist *hs[] = {&tt->h_queue, &tt->h_dispatch, &tt->h_exec, &tt->h_total};
        for (int s = 0; s < 4; s++) {
            snprintf(lb, sizeof(lb), "type=\"%s\",stage=\"%s\"", tt->name, stage[s]);
            hist_prom(o, "p2c2r_stage_seconds", lb, hs[s]);
        }
    }
    prom_help(o, "p2c2r_queue_depth", "gauge", "Tasks waiting, by task type and priority class.");
    for (uint32_t i = 0; i < co->ntypes; i++)
        for (int c = 0; c < PRIO_CLASSES; c++) {
            snprintf(lb, sizeof(lb), "type=\"%s\",class=\"%s\"", co->types[i].name, prio_name[c]);
            prom_gauge(o, "p2c2r_queue_depth", lb,
                       (double)(co->types[i].q[0][c].h.n + co->types[i].q[1][c].h.n));
        }
    prom_help(o, "p2c2r_type_events_total", "counter", "Scheduler events by task type.");
    for (uint32_t i = 0; i < co->ntypes; i++) {
        const struct ttype *tt = &co->types[i];
        const char *ev[] = {"retry", "hedge", "hedge_win", "cache_hit", "cache_miss", "coalesced"};
        uint64_t v[] = {tt->retries, tt->hedges, tt->hedge_wins, tt->cache_hits, tt->cache_misses,
                        tt->coalesced};
        for (int e = 0; e < 6; e++) {
            snprintf(lb, sizeof(lb), "type=\"%s\",event=\"%s\"", tt->name, ev[e]);
            prom_counter(o, "p2c2r_type_events_total", lb, v[e]);
        }
    }
    uint32_t bystate[3] = {0};
    for (struct list_node *n = co->peers.next; n != &co->peers; n = n->next)
        bystate[list_entry(n, struct peer_rec, node)->state]++;
    prom_help(o, "p2c2r_peers", "gauge", "Registered peers by state.");
    for (int s = 0; s < 3; s++) {
        snprintf(lb, sizeof(lb), "state=\"%s\"", peer_state_name(s));
        prom_gauge(o, "p2c2r_peers", lb, (double)bystate[s]);
    }
    struct rcache_stats cs = {0};
    if (co->cache)
        rcache_stats(co->cache, &cs);
    const struct {
        const char *name, *type, *help;
        double v;
    } flat[] = {
        {"p2c2r_connections", "gauge", "Open connections.", co->nconns},
        {"p2c2r_renters", "gauge", "Renter connections.", co->nrenters},
        {"p2c2r_tasks_live", "gauge", "Accepted tasks not yet freed.", co->tasks_live},
        {"p2c2r_queued", "gauge", "Tasks waiting in queues.", co->queued_total},
        {"p2c2r_submitted_total", "counter", "Tasks received.", (double)k->submitted},
        {"p2c2r_accepted_total", "counter", "Tasks accepted.", (double)k->accepted},
        {"p2c2r_retries_total", "counter", "Attempts started again after a failure or a lost peer.", (double)k->retries},
        {"p2c2r_hedges_total", "counter", "Second copies started for slow attempts.", (double)k->hedges},
        {"p2c2r_hedge_wins_total", "counter", "Hedged copies that answered first.", (double)k->hedge_wins},
        {"p2c2r_quarantines_total", "counter", "Times a peer's circuit breaker opened.", (double)k->quarantines},
        {"p2c2r_late_results_total", "counter", "Results dropped because the task had its outcome.", (double)k->late_results},
        {"p2c2r_duplicate_results_total", "counter", "Results a peer sent twice (dropped).", (double)k->duplicate_results},
        {"p2c2r_requeued_total", "counter", "Tasks put back after their peer was lost.", (double)k->requeued},
        {"p2c2r_cache_hits_total", "counter", "Tasks answered from the result cache.", (double)cs.hits},
        {"p2c2r_cache_misses_total", "counter", "Cacheable tasks not in the cache.", (double)cs.misses},
        {"p2c2r_cache_evictions_total", "counter", "Cache entries evicted for space.", (double)cs.evictions},
        {"p2c2r_cache_bytes", "gauge", "Bytes held by the result cache.", (double)cs.bytes},
        {"p2c2r_coalesced_total", "counter", "Tasks answered by an identical task in flight.", (double)k->coalesced},
        {"p2c2r_protocol_errors_total", "counter", "Connections cut for protocol errors.", (double)k->proto_errors},
        {"p2c2r_bytes_in_total", "counter", "Bytes read.", (double)k->bytes_in},
        {"p2c2r_bytes_out_total", "counter", "Bytes queued for sending.", (double)k->bytes_out},
    };
    for (size_t i = 0; i < ARRAY_LEN(flat); i++) {
        prom_help(o, flat[i].name, flat[i].type, flat[i].help);
        if (strcmp(flat[i].type, "counter") == 0)
            prom_counter(o, flat[i].name, "", (uint64_t)flat[i].v);
        else
            prom_gauge(o, flat[i].name, "", flat[i].v);
    }
}

#define R_NONE (1u << ROLE_NONE)
#define R_RENTER (1u << ROLE_RENTER)
#define R_PEER (1u << ROLE_PEER)

/* What each role may send; anything else closes the connection. */
static const struct handler {
    uint8_t type;
    uint8_t roles;
    int (*fn)(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
} handlers[] = {
    {MSG_HELLO, R_NONE, on_hello},
    {MSG_ERROR, R_NONE | R_RENTER | R_PEER, on_remote_error},
    {MSG_PING, R_RENTER | R_PEER, on_ping},
    {MSG_PONG, R_RENTER | R_PEER, on_pong},
    {MSG_PEER_REGISTER, R_PEER, on_register},
    {MSG_CREDIT, R_PEER, on_credit},
    {MSG_RESULT, R_PEER, on_result},
    {MSG_SUBMIT, R_RENTER, on_submit},
    {MSG_SUBMIT_BATCH, R_RENTER, on_submit_batch},
    {MSG_CANCEL, R_RENTER, on_cancel},
    {MSG_STATS_REQ, R_RENTER, on_stats},
    {MSG_BLOB_PUT, R_RENTER, on_blob_put},
};

static const struct handler *handler_for(uint8_t type)
{
    static const struct handler *by_type[256];
    static int init;
    if (!init) {
        for (size_t i = 0; i < ARRAY_LEN(handlers); i++)
            by_type[handlers[i].type] = &handlers[i];
        init = 1;
    }
    return by_type[type];
}

static int conn_dispatch(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    const struct handler *hd = handler_for(h->type);
    uint8_t role = c->state == CS_HELLO ? ROLE_NONE : c->role;
    if (!hd) {
        conn_fail(c, P2C2R_EPROTO, "unknown message type 0x%02x", h->type);
        return -1;
    }
    if (!(hd->roles & (1u << role))) {
        conn_fail(c, P2C2R_EPROTO, "message %s not allowed for %s in state %s",
                  proto_type_name(h->type),
                  role == ROLE_RENTER ? "renter" : role == ROLE_PEER ? "peer" : "connection",
                  conn_state_name(c->state));
        return -1;
    }
    if (h->type == MSG_PEER_REGISTER || h->type == MSG_RESULT || h->type == MSG_CREDIT) {
        /* fine */
    } else if (role == ROLE_PEER && !c->peer && h->type != MSG_ERROR && h->type != MSG_PING &&
               h->type != MSG_PONG) {
        conn_fail(c, P2C2R_EPROTO, "peer must send PEER_REGISTER first");
        return -1;
    }
    return hd->fn(c, h, body);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct conn *c = h->data;
    (void)suggested;
    /* With nothing pending, read into the loop's shared buffer: an idle
     * connection then holds no input memory at all, which is what keeps
     * 10,000 peer connections cheap. */
    if (buf_used(&c->in) == 0) {
        *out = uv_buf_init((char *)c->co->rbuf, READ_CHUNK);
        return;
    }
    size_t want = READ_CHUNK;
    struct frame_hdr fh;
    if (c->state < CS_DRAINING && buf_used(&c->in) >= PROTO_HDR_LEN &&
        proto_decode_hdr(buf_head(&c->in), buf_used(&c->in), c->co->cfg.max_body, &fh) == 0) {
        size_t need = PROTO_HDR_LEN + fh.body_len - buf_used(&c->in);
        if (need > want)
            want = need;
    }
    uint8_t *p = buf_reserve(&c->in, want);
    if (!p) {
        *out = uv_buf_init(NULL, 0);
        return;
    }
    *out = uv_buf_init((char *)p, (unsigned)(c->in.cap - c->in.len));
}

/* Handles every whole frame in p[0..n) and returns the bytes consumed. */
static size_t conn_process(struct conn *c, const uint8_t *p, size_t n)
{
    size_t off = 0;
    while (c->state < CS_DRAINING) {
        struct frame_hdr h;
        int64_t fl = proto_decode_hdr(p + off, n - off, c->co->cfg.max_body, &h);
        if (fl == 0)
            break;
        if (fl < 0) {
            if (fl == P2C2R_ETOOBIG)
                conn_fail(c, P2C2R_ETOOBIG, "frame body of %u bytes over the limit of %u", h.body_len,
                          c->co->cfg.max_body);
            else
                conn_fail(c, P2C2R_EPROTO, "bad frame header (magic or version)");
            break;
        }
        if (conn_dispatch(c, &h, p + off + PROTO_HDR_LEN) != 0)
            break;
        off += (size_t)fl;
    }
    return off;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct conn *c = s->data;
    if (nread < 0) {
        if (nread == UV_ENOBUFS)
            conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
        else
            conn_close(c);
        return;
    }
    if (nread == 0 || c->state >= CS_DRAINING)
        return; /* nothing, or discarding while the error leaves */
    c->co->n.bytes_in += (uint64_t)nread;
    c->co->now = now_us();
    c->last_rx_us = c->co->now;
    if ((uint8_t *)b->base == c->co->rbuf) {
        size_t used = conn_process(c, c->co->rbuf, (size_t)nread);
        if (c->state < CS_DRAINING && used < (size_t)nread &&
            buf_append(&c->in, c->co->rbuf + used, (size_t)nread - used) != 0)
            conn_fail(c, P2C2R_ETOOBIG, "input buffer limit reached");
        return;
    }
    buf_commit(&c->in, (size_t)nread);
    buf_consume(&c->in, conn_process(c, buf_head(&c->in), buf_used(&c->in)));
    if (c->state >= CS_DRAINING)
        buf_consume(&c->in, buf_used(&c->in));
    buf_shrink(&c->in, 0);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct coord *co = server->data;
    if (status < 0) {
        LOG_W("accept_error", "err=%s", uv_strerror(status));
        return;
    }
    struct conn *c = xcalloc(1, sizeof(*c));
    c->co = co;
    uv_tcp_init(&co->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    c->id = ++co->next_conn_id;
    c->state = CS_HELLO;
    co->now = now_us();
    c->created_us = c->last_rx_us = co->now;
    buf_init(&c->in, (size_t)co->cfg.max_body + PROTO_HDR_LEN + READ_CHUNK);
    buf_init(&c->out, co->cfg.max_output);
    buf_init(&c->sending, co->cfg.max_output);
    list_init(&c->dirty_node);
    list_init(&c->reap_node);
    list_init(&c->drain_node);
    list_init(&c->tasks);
    list_push_back(&co->conns, &c->all_node);
    co->nconns++;
    co->n.conns_total++;
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        addr_format((struct sockaddr *)&ss, c->addr, sizeof(c->addr));
    uv_tcp_nodelay(&c->tcp, 1);
    if (co->stopping) {
        conn_fail(c, P2C2R_ESHUTDOWN, "coordinator shutting down");
        return;
    }
    if (co->nconns > co->cfg.max_conns) {
        conn_fail(c, P2C2R_ELIMIT, "too many connections (limit %u)", co->cfg.max_conns);
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* ---- periodic work -------------------------------------------------------- */

/* Ends every task whose deadline passed: O(expired * log n) from the
 * deadline heap. */
static void sweep_deadlines(struct coord *co, uint64_t now)
{
    while (co->dl.n && co->dl.a[0]->deadline_us <= now) {
        struct task *t = co->dl.a[0];
        co->n.timed_out++;
        const char *why = t->state == TS_QUEUED     ? "deadline passed while queued"
                          : t->state == TS_FOLLOWER ? "deadline passed while an identical task ran"
                                                    : "deadline passed while running";
        /* A peer that let a deadline pass is counted slower, not broken. */
        for (int i = 0; i < 2; i++)
            if (t->at[i].peer)
                peer_bad_event(t->at[i].peer);
        task_end_early(co, t, P2C2R_ETIMEDOUT, why);
    }
}

/* Queued tasks of a type that has had no peer for orphan_timeout fail. */
static void sweep_orphaned_types(struct coord *co, uint64_t now)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        if (tt->npeers || !tt->queued || now - tt->no_peer_since <= co->cfg.orphan_timeout_ms * 1000ull)
            continue;
        char msg[128];
        snprintf(msg, sizeof(msg), "no peer running type '%s' connected for %u ms", tt->name,
                 co->cfg.orphan_timeout_ms);
        for (int k = 0; k < 2; k++)
            for (int c = 0; c < PRIO_CLASSES; c++)
                while (tt->q[k][c].h.n) {
                    co->n.lost++;
                    task_end_early(co, tt->q[k][c].h.a[0], P2C2R_EUNSUPPORTED, msg);
                }
    }
}

/* Starts a second copy of each first attempt that has run past its type's
 * p95 attempt time, on another free peer.  Only spare capacity is used: a
 * type with no free peer hedges nothing.  O(hedged) per sweep: the running
 * list is in start order. */
static void sweep_hedges(struct coord *co, uint64_t now)
{
    if (!co->cfg.hedge)
        return;
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        if (tt->att_n < STAT_MIN_SAMPLES || tt->nfree == 0)
            continue;
        uint64_t after = tt->att_p95 > co->cfg.hedge_min_us ? tt->att_p95 : co->cfg.hedge_min_us;
        /* An attempt no free peer can take now (a task with requirements,
         * say) stays where it is and the walk goes on to younger ones, so it
         * cannot hold back the hedging of the rest of its type.  Passing
         * over at most HEDGE_SKIP_MAX of them bounds the sweep's cost. */
        struct list_node *n = tt->running.next;
        uint32_t skipped = 0;
        while (n != &tt->running && tt->nfree && skipped < HEDGE_SKIP_MAX) {
            struct attempt *a = list_entry(n, struct attempt, hnode);
            if (now - a->start_us < after)
                break;
            n = n->next;
            struct task *t = a->t;
            if (t->state != TS_RUNNING || t->nlive != 1 || t->hedged || !t->renter) {
                list_remove(&a->hnode);
                continue;
            }
            struct peer_rec *p = pick_peer(co, t);
            if (!p) {
                skipped++;
                continue;
            }
            if (task_assign(co, t, p, 1) != 0)
                break;
            list_remove(&a->hnode);
            t->hedged = 1;
            co->n.hedges++;
            tt->hedges++;
        }
    }
}

/* The timeout and ping checks of one connection. */
static void conn_check(struct coord *co, struct conn *c, uint64_t now)
{
    struct peer_rec *p = c->peer;
    if (c->state == CS_HELLO && now - c->created_us > co->cfg.hello_timeout_ms * 1000ull) {
        conn_fail(c, P2C2R_ETIMEDOUT, "no HELLO within %u ms", co->cfg.hello_timeout_ms);
    } else if (c->state == CS_READY && c->role == ROLE_PEER &&
               now - c->last_rx_us > co->cfg.peer_timeout_ms * 1000ull) {
        conn_fail(c, P2C2R_ETIMEDOUT, "peer silent for %u ms", co->cfg.peer_timeout_ms);
    } else if (c->state == CS_READY && p && now - c->last_rx_us >= co->cfg.ping_ms * 1000ull &&
               (!p->ping_sent_us || now - p->ping_sent_us >= co->cfg.ping_ms * 1000ull)) {
        uint8_t *b = conn_frame(c, MSG_PING, 0, 0, 8);
        if (b) {
            p->ping_sent_us = now;
            wr64(b, now);
            co->n.pings++;
        }
    }
}

/* Every 100 ms: closes connections done draining, lets quarantined peers
 * whose cool-down ended probe, and checks a slice of all connections for
 * HELLO and silence timeouts and pings, such that each is checked once per
 * walk period: a quarter of the shortest of those timeouts, between 100 ms
 * and 1 s.  At 10,000 peers a full walk every 100 ms cost ~0.25 us of CPU
 * per task; a slice keeps the cost per second flat while every timeout
 * still fires within a quarter of its length. */
static void sweep_conns(struct coord *co, uint64_t now)
{
    struct list_node *n = co->draining.next;
    while (n != &co->draining) {
        struct conn *c = list_entry(n, struct conn, drain_node);
        n = n->next;
        if (now >= c->drain_until_us ||
            (!c->writing && buf_used(&c->out) == 0 && now + DRAIN_MS * 500 >= c->drain_until_us))
            conn_close(c);
    }
    n = co->quarantined.next;
    while (n != &co->quarantined) {
        struct peer_rec *p = list_entry(n, struct peer_rec, qnode);
        n = n->next;
        if (now >= p->state_until_us && p->conn->state == CS_READY) {
            list_remove(&p->qnode);
            peer_set_state(p, PS_PROBING);
            LOG_I("peer_probing", "peer=%u", p->id);
            peer_refresh(co, p);
            dispatch_peer(co, p);
        }
    }
    uint32_t period = co->cfg.hello_timeout_ms;
    if (co->cfg.peer_timeout_ms < period)
        period = co->cfg.peer_timeout_ms;
    if (co->cfg.ping_ms < period)
        period = co->cfg.ping_ms;
    period /= 4;
    period = period < CONN_SWEEP_TICKS * SWEEP_MS ? CONN_SWEEP_TICKS * SWEEP_MS : period > 1000 ? 1000 : period;
    uint32_t slices = period / (CONN_SWEEP_TICKS * SWEEP_MS);
    uint32_t quota = (co->nconns + slices - 1) / slices;
    for (uint32_t k = 0; k < quota && co->nconns; k++) {
        if (co->walk == &co->conns)
            co->walk = co->conns.next;
        struct conn *c = list_entry(co->walk, struct conn, all_node);
        co->walk = co->walk->next;
        conn_check(co, c, now);
    }
    for (uint32_t i = 0; i < co->ntypes; i++)
        type_stats_tick(&co->types[i], now);
    if (co->cache)
        rcache_expire(co->cache, now, 4096);
}

static void finish_shutdown(struct coord *co);

static void on_sweep(uv_timer_t *h)
{
    struct coord *co = h->data;
    uint64_t now = co->now = now_us();
    conn_reap(co);
    if (++co->ticks % CONN_SWEEP_TICKS == 0) {
        sweep_conns(co, now);
        sweep_orphaned_types(co, now);
    }
    sweep_deadlines(co, now);
    sweep_hedges(co, now);
    if (co->stopping && (co->nconns == 0 || now >= co->stop_deadline_us))
        finish_shutdown(co);
}

/* ---- lifecycle ------------------------------------------------------------ */

static void begin_shutdown(struct coord *co)
{
    if (co->stopping)
        return;
    co->stopping = 1;
    LOG_I("shutdown", "conns=%u tasks=%u", co->nconns, co->tasks_live);
    uv_close((uv_handle_t *)&co->listener, NULL);
    /* Every renter's outstanding task gets its one outcome before we go. */
    for (struct list_node *n = co->conns.next; n != &co->conns; n = n->next) {
        struct conn *c = list_entry(n, struct conn, all_node);
        if (c->role != ROLE_RENTER || c->state != CS_READY)
            continue;
        while (!list_empty(&c->tasks)) {
            struct task *t = list_entry(c->tasks.next, struct task, rnode);
            task_end_early(co, t, P2C2R_ESHUTDOWN, "coordinator shutting down");
        }
    }
    /* The outcomes and then an ERROR go out like any cut connection's; the
     * sweep closes each one once its output left (or after DRAIN_MS), and
     * finish_shutdown closes the loop's own handles when none is left. */
    struct list_node *n = co->conns.next;
    while (n != &co->conns) {
        struct conn *c = list_entry(n, struct conn, all_node);
        n = n->next;
        conn_fail(c, P2C2R_ESHUTDOWN, "coordinator shutting down");
    }
    co->now = now_us();
    co->stop_deadline_us = co->now + 2 * DRAIN_MS * 1000;
}

static void finish_shutdown(struct coord *co)
{
    struct list_node *n = co->conns.next;
    while (n != &co->conns) {
        struct conn *c = list_entry(n, struct conn, all_node);
        n = n->next;
        conn_close(c);
    }
    uv_close((uv_handle_t *)&co->flusher, NULL);
    uv_close((uv_handle_t *)&co->sweeper, NULL);
    uv_close((uv_handle_t *)&co->sigint, NULL);
    uv_close((uv_handle_t *)&co->sigterm, NULL);
    uv_close((uv_handle_t *)&co->stopper, NULL);
    mhttp_stop(co->metrics);
    co->metrics = NULL;
}

static void on_signal(uv_signal_t *h, int sig)
{
    LOG_I("signal", "sig=%d", sig);
    begin_shutdown(h->data);
}

static void on_stop(uv_async_t *h) { begin_shutdown(h->data); }

void coord_config_defaults(struct coord_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "127.0.0.1:8765";
    cfg->max_body = PROTO_MAX_BODY_DEFAULT;
    cfg->renter_max_inflight = 8192;
    cfg->max_output = 64u << 20;
    cfg->queue_max = 1000000;
    cfg->queue_max_bytes = 1ull << 30;
    cfg->max_attempts = 3;
    cfg->max_conns = 20000;
    cfg->hello_timeout_ms = 5000;
    cfg->peer_timeout_ms = 30000;
    cfg->default_deadline_ms = 60000;
    cfg->orphan_timeout_ms = 10000;
    cfg->blob_store_bytes = 512u << 20;
    cfg->cache_types = "sha256,pathfind,physics,raytrace,upscale";
    cfg->cache_bytes = 64u << 20;
    cfg->cache_ttl_ms = 300000;
    cfg->hedge = 1;
    cfg->hedge_min_us = 2000;
    cfg->aging_ms = 500;
    cfg->breaker_strikes = 5;
    cfg->breaker_cooldown_ms = 2000;
    cfg->ping_ms = 5000;
    cfg->admission = 1;
}

/* The next item of a comma-separated option value: 1 with [*item, +*len),
 * 0 at the end.  Empty items are passed on for the caller to refuse. */
static int spec_next(const char **s, const char **item, size_t *len)
{
    if (!**s)
        return 0;
    const char *end = strchr(*s, ',');
    if (!end)
        end = *s + strlen(*s);
    *item = *s;
    *len = (size_t)(end - *s);
    *s = *end ? end + 1 : end;
    return 1;
}

/* Parses "TYPE=MS,TYPE=MS" (--type-deadline). */
static int parse_type_deadlines(struct coord *co, const char *spec, char *err, size_t errcap)
{
    const char *s = spec, *it;
    size_t n;
    while (spec_next(&s, &it, &n)) {
        const char *eq = memchr(it, '=', n), *end = it + n;
        char *stop = NULL;
        unsigned long ms = eq ? strtoul(eq + 1, &stop, 10) : 0;
        if (!eq || !type_name_ok((const uint8_t *)it, (size_t)(eq - it)) || stop != end || ms == 0 ||
            ms > 86400000 || co->ntdl == PROTO_MAX_TYPES) {
            snprintf(err, errcap, "bad --type-deadline '%s': expected TYPE=MS[,TYPE=MS...] with MS in 1..86400000",
                     spec);
            return P2C2R_EINVAL;
        }
        struct type_deadline *d = &co->tdl[co->ntdl++];
        memcpy(d->name, it, (size_t)(eq - it));
        d->name[eq - it] = '\0';
        d->ms = (uint32_t)ms;
    }
    return 0;
}

/* Parses "TYPE,TYPE" or "*" (--cache-types); "" caches nothing. */
static int parse_cache_types(struct coord *co, const char *spec, char *err, size_t errcap)
{
    const char *s = spec, *it;
    size_t n;
    while (spec_next(&s, &it, &n)) {
        int star = n == 1 && *it == '*';
        if ((!star && !type_name_ok((const uint8_t *)it, n)) || co->ncache_types == PROTO_MAX_TYPES) {
            snprintf(err, errcap, "bad --cache-types '%s': expected TYPE[,TYPE...] or '*'", spec);
            return P2C2R_EINVAL;
        }
        memcpy(co->cache_types[co->ncache_types], it, n);
        co->cache_types[co->ncache_types++][n] = '\0';
    }
    return 0;
}

static int load_tokens(struct coord *co, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot open tokens file %s: %s", path, strerror(errno));
        return P2C2R_ENOTFOUND; /* the file, not its content: a runtime error */
    }
    char line[1024];
    int lineno = 0;
    co->tokens = xcalloc(MAX_TOKENS, sizeof(*co->tokens));
    while (fgets(line, sizeof(line), f)) {
        lineno++;
        size_t l = strcspn(line, "\r\n");
        line[l] = '\0';
        char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (!*s || *s == '#')
            continue;
        uint8_t roles = (1u << ROLE_RENTER) | (1u << ROLE_PEER);
        if (strncmp(s, "renter:", 7) == 0) {
            roles = 1u << ROLE_RENTER;
            s += 7;
        } else if (strncmp(s, "peer:", 5) == 0) {
            roles = 1u << ROLE_PEER;
            s += 5;
        }
        while (*s == ' ' || *s == '\t')
            s++;
        size_t tl = strlen(s);
        while (tl && (s[tl - 1] == ' ' || s[tl - 1] == '\t'))
            s[--tl] = '\0';
        if (tl == 0 || tl > PROTO_MAX_TOKEN || co->ntokens >= MAX_TOKENS) {
            snprintf(err, errcap, "%s:%d: token empty, longer than %d bytes, or over %d tokens",
                     path, lineno, PROTO_MAX_TOKEN, MAX_TOKENS);
            fclose(f);
            return P2C2R_EINVAL;
        }
        struct token *t = &co->tokens[co->ntokens++];
        t->roles = roles;
        t->len = (uint16_t)tl;
        memcpy(t->tok, s, tl);
    }
    fclose(f);
    if (co->ntokens == 0) {
        snprintf(err, errcap, "tokens file %s holds no token (one per line, optional renter:/peer: prefix)", path);
        return P2C2R_EINVAL;
    }
    return 0;
}

int coord_new(const struct coord_config *cfg, struct coord **out, char *err, size_t errcap)
{
    struct coord *co = xcalloc(1, sizeof(*co));
    co->cfg = *cfg;
    co->free_head = NO_FREE;
    co->rng.s = now_ns();
    co->now = now_us();
    co->rbuf = xmalloc(READ_CHUNK);
    list_init(&co->conns);
    list_init(&co->dirty);
    list_init(&co->reap);
    list_init(&co->blob_lru);
    list_init(&co->peers);
    list_init(&co->draining);
    list_init(&co->quarantined);
    co->walk = &co->conns;
    int rc;
    if ((cfg->type_deadlines && (rc = parse_type_deadlines(co, cfg->type_deadlines, err, errcap)) != 0) ||
        (cfg->cache_types && (rc = parse_cache_types(co, cfg->cache_types, err, errcap)) != 0) ||
        (cfg->tokens_file && (rc = load_tokens(co, cfg->tokens_file, err, errcap)) != 0)) {
        free(co->tokens);
        free(co->rbuf);
        free(co);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_parse(cfg->listen, &ss, &sl) != 0) {
        snprintf(err, errcap, "cannot parse listen address '%s': expected HOST:PORT", cfg->listen);
        free(co->tokens);
        free(co->rbuf);
        free(co);
        return P2C2R_EADDR;
    }
    uv_loop_init(&co->loop);
    uv_tcp_init(&co->loop, &co->listener);
    co->listener.data = co;
    if ((rc = uv_tcp_bind(&co->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&co->listener, 1024, on_connection)) != 0) {
        snprintf(err, errcap, "cannot listen on %s: %s (is another p2c2rd running? try --listen 127.0.0.1:0)",
                 cfg->listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&co->listener, NULL);
        uv_run(&co->loop, UV_RUN_DEFAULT);
        uv_loop_close(&co->loop);
        free(co->tokens);
        free(co->rbuf);
        free(co);
        return P2C2R_EADDR;
    }
    int nl = sizeof(ss);
    uv_tcp_getsockname(&co->listener, (struct sockaddr *)&ss, &nl);
    addr_format((struct sockaddr *)&ss, co->addr, sizeof(co->addr));

    uv_check_init(&co->loop, &co->flusher);
    co->flusher.data = co;
    uv_check_start(&co->flusher, on_check);
    uv_timer_init(&co->loop, &co->sweeper);
    co->sweeper.data = co;
    uv_timer_start(&co->sweeper, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_signal_init(&co->loop, &co->sigint);
    co->sigint.data = co;
    uv_signal_start(&co->sigint, on_signal, SIGINT);
    uv_signal_init(&co->loop, &co->sigterm);
    co->sigterm.data = co;
    uv_signal_start(&co->sigterm, on_signal, SIGTERM);
    uv_async_init(&co->loop, &co->stopper, on_stop);
    co->stopper.data = co;
    if (cfg->metrics_listen &&
        (rc = mhttp_start(&co->loop, cfg->metrics_listen, metrics_render, co, &co->metrics, err,
                          errcap)) != 0) {
        co->stopping = 1;
        uv_close((uv_handle_t *)&co->listener, NULL);
        finish_shutdown(co);
        uv_run(&co->loop, UV_RUN_DEFAULT);
        uv_loop_close(&co->loop);
        free(co->tokens);
        free(co->rbuf);
        free(co);
        return rc;
    }
    if (cfg->cache_bytes)
        co->cache = rcache_new(cfg->cache_bytes, (uint64_t)cfg->cache_ttl_ms * 1000);
    *out = co;
    return 0;
}

int coord_run(struct coord *co)
{
    LOG_I("listening", "addr=%s", co->addr);
    if (co->metrics)
        LOG_I("metrics_listening", "addr=%s", mhttp_addr(co->metrics));
    if (co->cfg.on_listening)
        co->cfg.on_listening(co->cfg.arg, co->addr);
    maybe_ready(co);
    uv_run(&co->loop, UV_RUN_DEFAULT);
    return 0;
}

void coord_stop(struct coord *co) { uv_async_send(&co->stopper); }

void coord_free(struct coord *co)
{
    if (!co)
        return;
    if (!co->stopping) {
        begin_shutdown(co);
        uv_run(&co->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&co->loop);
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        free(tt->peers);
        free(tt->free);
        for (int k = 0; k < 2; k++)
            for (int c = 0; c < PRIO_CLASSES; c++)
                free(tt->q[k][c].h.a);
    }
    free(co->dl.a);
    rcache_free(co->cache);
    for (uint32_t i = 0; i < co->nchunks; i++) {
        for (uint32_t j = 0; j < TASK_CHUNK; j++) {
            struct task *t = &co->chunks[i][j];
            if (t->state != TS_FREE && t->body != t->small)
                free(t->body);
        }
        free(co->chunks[i]);
    }
    free(co->chunks);
    for (uint32_t i = 0; i < BLOB_BUCKETS; i++) {
        while (co->blob_tab[i]) {
            struct blob *b = co->blob_tab[i];
            co->blob_tab[i] = b->hnext;
            free(b->data);
            free(b);
        }
    }
    free(co->tokens);
    free(co->rbuf);
    free(co);
}

