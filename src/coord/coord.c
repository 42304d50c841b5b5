/* coord.c - the coordinator (p2c2rd's core).
 *
 * One libuv loop owns every connection, peer record and task; nothing here is
 * locked.  A connection is either a renter (submits tasks, receives outcomes)
 * or a peer (receives assignments, returns results), fixed by its HELLO.
 *
 * Invariants:
 * - Every accepted task ends with exactly one outcome frame (DELIVER or
 *   REJECTED) to its renter, unless the renter went away first.  After that
 *   the task is detached from the renter (t->renter == NULL).
 * - Every ASSIGN sent to a peer is answered by exactly one RESULT or by the
 *   peer's disconnection; a task stays on its peer's list until then, so a
 *   peer's in-flight count always equals the length of that list.
 * - A peer never holds more tasks than it advertised slots (credits).
 * - Output to a connection goes through conn_frame into its out buffer and is
 *   flushed once per loop iteration (uv_check), so many frames share one
 *   write.  A connection whose buffered output would pass max_output is cut.
 * - A connection closed inside a callback is detached from all scheduling
 *   state at once and freed only from its uv_close callback. */
#include "coord/coord.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "common/version.h"
#include "p2c2r/error.h"

#define READ_CHUNK (256u * 1024)
#define SWEEP_MS 20
#define DRAIN_MS 200
#define TASK_CHUNK 1024
#define TASK_INLINE 112
#define MAX_TOKENS 1024
#define BLOB_BUCKETS 4096
#define PEER_HAS_CAP 1024

enum conn_state { CS_HELLO, CS_READY, CS_DRAINING, CS_CLOSED };
enum task_state { TS_FREE, TS_QUEUED, TS_ASSIGNED, TS_ORPHAN };

static const char *conn_state_name(int s)
{
    static const char *const n[] = {"hello", "ready", "draining", "closed"};
    return s >= 0 && s <= CS_CLOSED ? n[s] : "?";
}

static const char *task_state_name(int s)
{
    static const char *const n[] = {"free", "queued", "assigned", "orphan"};
    return s >= 0 && s <= TS_ORPHAN ? n[s] : "?";
}

/* Legal task transitions: free->queued, queued->assigned, assigned->queued
 * (lost with its peer), assigned->orphan (outcome given before the peer
 * answered), any->free. */
static int task_transition_ok(int from, int to)
{
    switch (to) {
    case TS_FREE: return from != TS_FREE;
    case TS_QUEUED: return from == TS_FREE || from == TS_ASSIGNED;
    case TS_ASSIGNED: return from == TS_QUEUED;
    case TS_ORPHAN: return from == TS_ASSIGNED;
    default: return 0;
    }
}

struct conn;
struct peer_rec;

struct ttype {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint8_t name_len;
    struct list_node queue; /* QUEUED tasks, oldest first */
    uint32_t queued;
    struct peer_rec **peers;
    uint32_t npeers, peers_cap;
    uint64_t free_slots;    /* sum of free slots over peers */
    uint64_t no_peer_since; /* when npeers became 0 (us) */
};

struct peer_rec {
    uint32_t id;
    struct conn *conn;
    uint16_t cores;
    uint32_t slots, inflight;
    uint64_t mem;
    uint8_t gpu;
    char gpu_model[PROTO_MAX_NAME + 1];
    uint32_t types; /* bitmask of ttype indexes */
    uint32_t versions[PROTO_MAX_TYPES];
    uint32_t pos[PROTO_MAX_TYPES]; /* index in ttype.peers */
    struct list_node tasks;        /* ASSIGNED and ORPHAN tasks */
    uint64_t done, failed;
    /* Blobs this peer was sent (first 8 hash bytes, 0 = empty slot).  Only a
     * hint: cleared when half full, and a peer that lost a blob answers
     * ENOBLOB, which clears it too and resends. */
    uint64_t *has; /* PEER_HAS_CAP entries, allocated with the first blob */
    uint32_t has_n;
};

struct task {
    uint64_t id; /* generation << 32 | slab index */
    struct conn *renter;
    uint64_t ticket;
    struct list_node rnode; /* renter's tasks */
    struct list_node qnode; /* type queue or peer's tasks */
    struct peer_rec *peer;
    uint8_t state, tt, priority;
    uint16_t attempts;
    uint32_t body_len;
    uint8_t *body; /* the task body exactly as submitted; forwarded as ASSIGN */
    uint64_t seq;  /* submit order, for fairness across types */
    uint64_t submit_us, deadline_us;
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
    struct list_node dirty_node, all_node, reap_node;
    uint64_t created_us, last_rx_us, drain_until_us;
    uint32_t inflight;      /* renter: outstanding tasks */
    struct list_node tasks; /* renter: its outstanding tasks */
    struct peer_rec *peer;  /* peer: after PEER_REGISTER */
};

struct counters {
    uint64_t submitted, accepted, rejected, delivered_ok, delivered_err;
    uint64_t requeued, lost, timed_out, cancelled, late_results;
    uint64_t blobs_put, blobs_sent, blob_misses;
    uint64_t conns_total, proto_errors, auth_failures, limit_cuts;
    uint64_t bytes_in, bytes_out;
};

struct token {
    uint8_t roles; /* bit (1 << role) */
    uint16_t len;
    char tok[PROTO_MAX_TOKEN];
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

    struct list_node conns, dirty, reap;
    uint32_t nconns, nrenters, npeers;
    uint64_t next_conn_id;
    uint32_t next_peer_id;

    struct ttype types[PROTO_MAX_TYPES];
    uint32_t ntypes;

    struct task **chunks;
    uint32_t nchunks, free_head, tasks_live;
    uint32_t gen;
    uint64_t seq;
    uint32_t queued_total;
    uint64_t queued_bytes;

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
static void task_deliver(struct coord *co, struct task *t, int status,
                         const uint8_t *out, size_t len, uint32_t exec_us);

/* ---- tasks ---------------------------------------------------------------- */

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
    list_init(&t->rnode);
    list_init(&t->qnode);
    co->tasks_live++;
    return t;
}

static void blob_unref(struct coord *co, struct blob *b);

static void task_free(struct coord *co, struct task *t)
{
    task_set_state(t, TS_FREE);
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

static void on_check(uv_check_t *h)
{
    struct coord *co = h->data;
    struct list_node *n;
    conn_reap(co);
    while ((n = list_pop_front(&co->dirty)) != NULL) {
        struct conn *c = list_entry(n, struct conn, dirty_node);
        c->dirty = 0;
        conn_flush(c);
    }
}

/* ---- peers and types -------------------------------------------------------- */

static uint32_t peer_free(const struct peer_rec *p)
{
    return p->slots > p->inflight ? p->slots - p->inflight : 0;
}

/* Applies a change of p's free slots to every type p serves. */
static void peer_free_changed(struct coord *co, struct peer_rec *p, uint32_t before)
{
    uint32_t after = peer_free(p);
    if (after == before)
        return;
    for (uint32_t m = p->types; m; m &= m - 1) {
        struct ttype *tt = &co->types[__builtin_ctz(m)];
        tt->free_slots = tt->free_slots + after - before;
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
 * type is either queued or on a peer of that type), so its slot can be
 * given to a new name: peers cannot fill the table for good. */
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
    memcpy(tt->name, name, len);
    tt->name[len] = '\0';
    tt->name_len = (uint8_t)len;
    list_init(&tt->queue);
    tt->no_peer_since = now_us();
    return (int)(tt - co->types);
}

static struct peer_rec *pick_peer(struct coord *co, struct ttype *tt, uint32_t min_version, int ti)
{
    if (tt->free_slots == 0 || tt->npeers == 0)
        return NULL;
    uint32_t n = tt->npeers;
    struct peer_rec *best = NULL;
    if (n <= 4) {
        for (uint32_t i = 0; i < n; i++) {
            struct peer_rec *p = tt->peers[i];
            if (p->versions[ti] >= min_version && peer_free(p) &&
                (!best || peer_free(p) > peer_free(best)))
                best = p;
        }
        return best;
    }
    /* Power of two choices: O(1) in the number of peers. */
    for (int k = 0; k < 2; k++) {
        struct peer_rec *p = tt->peers[rng_next(&co->rng) % n];
        if (p->versions[ti] >= min_version && peer_free(p) &&
            (!best || peer_free(p) > peer_free(best)))
            best = p;
    }
    if (best)
        return best;
    uint32_t start = (uint32_t)(rng_next(&co->rng) % n);
    for (uint32_t i = 0; i < n; i++) {
        struct peer_rec *p = tt->peers[(start + i) % n];
        if (p->versions[ti] >= min_version && peer_free(p))
            return p;
    }
    return NULL;
}

/* ---- task flow ------------------------------------------------------------ */

static void task_enqueue(struct coord *co, struct task *t, int front)
{
    struct ttype *tt = &co->types[t->tt];
    task_set_state(t, TS_QUEUED);
    t->peer = NULL;
    if (front)
        list_push_front(&tt->queue, &t->qnode);
    else
        list_push_back(&tt->queue, &t->qnode);
    tt->queued++;
    co->queued_total++;
    co->queued_bytes += t->body_len;
}

static void task_dequeue(struct coord *co, struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    list_remove(&t->qnode);
    tt->queued--;
    co->queued_total--;
    co->queued_bytes -= t->body_len;
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

/* Sends t to p.  Returns 0, or -1 when p's connection was cut because its
 * output is full (t is then untouched and still the caller's). */
static int task_assign(struct coord *co, struct task *t, struct peer_rec *p)
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
    task_set_state(t, TS_ASSIGNED);
    t->peer = p;
    t->attempts++;
    list_push_back(&p->tasks, &t->qnode);
    uint32_t before = peer_free(p);
    p->inflight++;
    peer_free_changed(co, p, before);
    return 0;
}

static uint32_t task_min_version(const struct task *t)
{
    /* min_version sits after the type name, priority and a reserved byte. */
    return rd32(t->body + 1 + t->body[0] + 2);
}

/* Places a fresh task on a peer or in its type's queue. */
static void task_schedule(struct coord *co, struct task *t)
{
    struct ttype *tt = &co->types[t->tt];
    if (tt->queued == 0) {
        struct peer_rec *p;
        while ((p = pick_peer(co, tt, task_min_version(t), t->tt)) != NULL) {
            t->state = TS_QUEUED; /* assign expects queued */
            if (task_assign(co, t, p) == 0)
                return;
        }
        t->state = TS_FREE;
    }
    task_enqueue(co, t, 0);
}

/* Fills p's free slots from the queues of the types it serves, oldest first. */
static void dispatch_peer(struct coord *co, struct peer_rec *p)
{
    while (peer_free(p) && p->conn->state == CS_READY) {
        struct task *best = NULL;
        for (uint32_t m = p->types; m; m &= m - 1) {
            struct ttype *tt = &co->types[__builtin_ctz(m)];
            if (list_empty(&tt->queue))
                continue;
            struct task *t = list_entry(tt->queue.next, struct task, qnode);
            if ((!best || t->seq < best->seq) && p->versions[t->tt] >= task_min_version(t))
                best = t;
        }
        if (!best)
            return;
        task_dequeue(co, best);
        if (task_assign(co, best, p) != 0) {
            task_enqueue(co, best, 1);
            return;
        }
    }
}

/* Gives t its final outcome: a DELIVER frame to its renter (if still there).
 * Detaches t from the renter; the caller frees t or keeps it as an orphan. */
static void task_deliver(struct coord *co, struct task *t, int status,
                         const uint8_t *out, size_t len, uint32_t exec_us)
{
    struct conn *r = t->renter;
    if (!r)
        return;
    t->renter = NULL;
    list_remove(&t->rnode);
    r->inflight--;
    if (status == 0)
        co->n.delivered_ok++;
    else
        co->n.delivered_err++;
    uint8_t head[PROTO_DELIVER_PREFIX];
    proto_put_deliver_head(head, (uint16_t)(status < 0 ? -status : status), t->attempts, exec_us,
                           t->peer ? t->peer->id : 0, 0);
    if (conn_send(r, MSG_DELIVER, t->ticket, head, sizeof(head), out, len) != 0 &&
        r->state < CS_DRAINING) {
        co->n.limit_cuts++;
        conn_fail(r, P2C2R_ELIMIT,
                  "renter output over %zu bytes: read your results", co->cfg.max_output);
    }
}

static void deliver_text(struct coord *co, struct task *t, int status, const char *text)
{
    task_deliver(co, t, status, (const uint8_t *)text, strlen(text), 0);
}

/* Ends t now with status (timeout, cancel, shutdown): a queued task is freed,
 * an assigned one becomes an orphan until its peer answers or goes, and the
 * peer is told to cancel. */
static void task_end_early(struct coord *co, struct task *t, int status, const char *text)
{
    deliver_text(co, t, status, text);
    if (t->state == TS_QUEUED) {
        task_dequeue(co, t);
        task_free(co, t);
    } else if (t->state == TS_ASSIGNED) {
        task_set_state(t, TS_ORPHAN);
        /* Best effort: with its output full the peer just runs it. */
        (void)conn_frame(t->peer->conn, MSG_CANCEL, 0, t->id, 0);
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
 * and its running ones orphaned; a peer's tasks go back to the queue. */
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
            if (t->state == TS_QUEUED) {
                task_dequeue(co, t);
                task_free(co, t);
            } else if (t->state == TS_ASSIGNED) {
                task_set_state(t, TS_ORPHAN);
                (void)conn_frame(t->peer->conn, MSG_CANCEL, 0, t->id, 0);
            }
        }
    }
    struct peer_rec *p = c->peer;
    if (p) {
        co->npeers--;
        uint32_t before = peer_free(p);
        p->slots = 0; /* no new work */
        peer_free_changed(co, p, before);
        for (uint32_t m = p->types; m; m &= m - 1) {
            int ti = __builtin_ctz(m);
            struct ttype *tt = &co->types[ti];
            uint32_t pos = p->pos[ti];
            tt->peers[pos] = tt->peers[--tt->npeers];
            tt->peers[pos]->pos[ti] = pos;
            if (tt->npeers == 0)
                tt->no_peer_since = now_us();
        }
        uint32_t types = p->types;
        p->types = 0;
        struct list_node *n;
        while ((n = list_pop_front(&p->tasks)) != NULL) {
            struct task *t = list_entry(n, struct task, qnode);
            p->inflight--;
            if (t->state == TS_ORPHAN) {
                task_free(co, t);
            } else if (t->attempts >= co->cfg.max_attempts) {
                co->n.lost++;
                char msg[128];
                snprintf(msg, sizeof(msg), "task lost with %u peers in a row", t->attempts);
                t->peer = NULL;
                deliver_text(co, t, P2C2R_ELOST, msg);
                t->state = TS_ORPHAN;
                task_free(co, t);
            } else {
                co->n.requeued++;
                task_enqueue(co, t, 1);
            }
        }
        /* Other peers may be able to take the requeued work now. */
        for (uint32_t m = types; m; m &= m - 1) {
            struct ttype *tt = &co->types[__builtin_ctz(m)];
            for (uint32_t i = 0; i < tt->npeers && tt->queued; i++)
                dispatch_peer(co, tt->peers[i]);
        }
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
    list_remove(&c->all_node);
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
    c->drain_until_us = now_us() + DRAIN_MS * 1000;
    if (c->peer) {
        uint32_t before = peer_free(c->peer);
        c->peer->slots = 0;
        peer_free_changed(c->co, c->peer, before);
    }
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
    p->gpu = m.gpu;
    memcpy(p->gpu_model, m.gpu_model.p, m.gpu_model.len);
    list_init(&p->tasks);
    for (unsigned i = 0; i < m.ntypes; i++) {
        int ti = type_intern(co, m.types[i].name.p, m.types[i].name.len);
        assert(ti >= 0); /* capacity was checked above */
        if (p->types & (1u << ti))
            continue;
        struct ttype *tt = &co->types[ti];
        p->types |= 1u << ti;
        p->versions[ti] = m.types[i].version;
        if (tt->npeers == tt->peers_cap) {
            tt->peers_cap = tt->peers_cap ? tt->peers_cap * 2 : 8;
            tt->peers = xrealloc(tt->peers, tt->peers_cap * sizeof(*tt->peers));
        }
        p->pos[ti] = tt->npeers;
        tt->peers[tt->npeers++] = p;
    }
    c->peer = p;
    co->npeers++;
    p->slots = m.slots;
    peer_free_changed(co, p, 0);
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
    uint32_t before = peer_free(c->peer);
    c->peer->slots = slots;
    peer_free_changed(c->co, c->peer, before);
    dispatch_peer(c->co, c->peer);
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
    if (!t || t->peer != p || (t->state != TS_ASSIGNED && t->state != TS_ORPHAN)) {
        /* Not ours: a peer inventing results is misbehaving. */
        co->n.late_results++;
        conn_fail(c, P2C2R_EPROTO, "RESULT for task %" PRIx64 " that was not assigned to this peer",
                  h->req_id);
        return -1;
    }
    list_remove(&t->qnode);
    uint32_t before = peer_free(p);
    p->inflight--;
    peer_free_changed(co, p, before);
    if (m.status == 0)
        p->done++;
    else if (m.status != (uint16_t)-P2C2R_ECANCELLED)
        p->failed++;
    if (m.status == (uint16_t)-P2C2R_ENOBLOB && t->state == TS_ASSIGNED && t->blob_retries < 3) {
        /* The peer evicted a blob we thought it had: forget what we knew,
         * and run the task again (it resends the blobs) at no attempt's cost. */
        co->n.blob_misses++;
        free(p->has);
        p->has = NULL;
        p->has_n = 0;
        t->blob_retries++;
        t->attempts--;
        task_enqueue(co, t, 1);
        if (c->state == CS_READY)
            dispatch_peer(co, p);
        return 0;
    }
    if (t->state == TS_ORPHAN) {
        co->n.late_results++;
    } else {
        int status = m.status ? -(int)m.status : 0;
        if (status < P2C2R_ERROR_MIN)
            status = P2C2R_ETASK;
        t->state = TS_ORPHAN;
        task_deliver(co, t, status, m.output.p, m.output.len, m.exec_us);
    }
    task_free(co, t);
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

static int type_has_version(const struct ttype *tt, int ti, uint32_t v)
{
    for (uint32_t i = 0; i < tt->npeers; i++)
        if (tt->peers[i]->versions[ti] >= v)
            return 1;
    return 0;
}

/* Accepts one task from a renter.  Returns 0 (accepted or rejected) or -1
 * when the connection was cut. */
static int submit_one(struct conn *c, uint64_t ticket, const uint8_t *body, size_t len, int *accepted)
{
    struct coord *co = c->co;
    struct msg_task m;
    co->n.submitted++;
    if (proto_parse_task(body, len, &m) != 0) {
        conn_fail(c, P2C2R_EPROTO, "malformed task in SUBMIT (ticket %" PRIu64 ")", ticket);
        return -1;
    }
    int code = 0, missing;
    char reason[200];
    int ti = type_find(co, m.type.p, m.type.len);
    if (c->inflight >= co->cfg.renter_max_inflight) {
        code = P2C2R_EQUEUEFULL;
        snprintf(reason, sizeof(reason), "renter has %u tasks outstanding (limit %u)", c->inflight,
                 co->cfg.renter_max_inflight);
    } else if (ti < 0 || co->types[ti].npeers == 0) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs task type '%.*s'",
                 (int)m.type.len, (const char *)m.type.p);
    } else if (m.min_version && !type_has_version(&co->types[ti], ti, m.min_version)) {
        code = P2C2R_EUNSUPPORTED;
        snprintf(reason, sizeof(reason), "no connected peer runs '%.*s' at version %u or later",
                 (int)m.type.len, (const char *)m.type.p, m.min_version);
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
        size_t rl = strlen(reason);
        uint8_t *b = conn_frame(c, MSG_REJECTED, 0, ticket, (uint32_t)proto_error_size(rl));
        if (!b) {
            conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
            return -1;
        }
        proto_put_error(b, (uint16_t)-code, reason, rl);
        return 0;
    }
    struct task *t = task_alloc(co);
    t->renter = c;
    t->ticket = ticket;
    t->tt = (uint8_t)ti;
    t->priority = m.priority;
    t->seq = ++co->seq;
    t->submit_us = now_us();
    t->deadline_us = t->submit_us +
                     (uint64_t)(m.deadline_ms ? m.deadline_ms : co->cfg.default_deadline_ms) * 1000;
    t->body_len = (uint32_t)len;
    t->nblobs = m.nblobs;
    for (unsigned i = 0; i < m.nblobs; i++) {
        t->blobs[i] = blob_find(co, m.blobs + i * PROTO_HASH_LEN);
        blob_ref(t->blobs[i]);
    }
    t->body = len <= TASK_INLINE ? t->small : xmalloc(len);
    memcpy(t->body, body, len);
    list_push_back(&c->tasks, &t->rnode);
    c->inflight++;
    co->n.accepted++;
    (*accepted)++;
    task_schedule(co, t);
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
    int accepted = 0;
    if (submit_one(c, h->req_id, body, h->body_len, &accepted) != 0)
        return -1;
    if ((h->flags & PROTO_F_WANT_ACK) && accepted)
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
        if (submit_one(c, id, tb, tl, &accepted) != 0)
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

static int on_pong(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    (void)c, (void)h, (void)body;
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

static int on_stats(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    (void)body;
    struct coord *co = c->co;
    struct buf o;
    buf_init(&o, 8u << 20);
    const struct counters *k = &co->n;
    jprintf(&o, "{\"version\":\"%s\",\"address\":", P2C2R_VERSION_STRING);
    json_str(&o, co->addr);
    jprintf(&o, ",\"connections\":%u,\"renters\":%u,\"peers_connected\":%u,\"tasks_live\":%u,"
                "\"queued\":%u,\"queued_bytes\":%" PRIu64 ",",
            co->nconns, co->nrenters, co->npeers, co->tasks_live, co->queued_total, co->queued_bytes);
    jprintf(&o, "\"counters\":{\"submitted\":%" PRIu64 ",\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
                ",\"completed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"requeued\":%" PRIu64
                ",\"lost\":%" PRIu64 ",\"timed_out\":%" PRIu64 ",\"cancelled\":%" PRIu64
                ",\"late_results\":%" PRIu64 ",\"connections_total\":%" PRIu64
                ",\"protocol_errors\":%" PRIu64 ",\"auth_failures\":%" PRIu64
                ",\"limit_cuts\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                ",\"blobs_put\":%" PRIu64 ",\"blobs_sent\":%" PRIu64 ",\"blob_misses\":%" PRIu64 "},"
                "\"blobs\":{\"count\":%u,\"bytes\":%zu,\"max_bytes\":%zu},",
            k->submitted, k->accepted, k->rejected, k->delivered_ok, k->delivered_err, k->requeued,
            k->lost, k->timed_out, k->cancelled, k->late_results, k->conns_total, k->proto_errors,
            k->auth_failures, k->limit_cuts, k->bytes_in, k->bytes_out, k->blobs_put, k->blobs_sent,
            k->blob_misses, co->nblob, co->blob_bytes, co->cfg.blob_store_bytes);
    buf_append(&o, "\"types\":[", 9);
    for (uint32_t i = 0; i < co->ntypes; i++) {
        jprintf(&o, "%s{\"name\":", i ? "," : "");
        json_str(&o, co->types[i].name);
        jprintf(&o, ",\"peers\":%u,\"queued\":%u,\"free_slots\":%" PRIu64 "}", co->types[i].npeers,
                co->types[i].queued, co->types[i].free_slots);
    }
    buf_append(&o, "],\"peers\":[", 11);
    int first = 1;
    for (struct list_node *n = co->conns.next; n != &co->conns; n = n->next) {
        struct conn *pc = list_entry(n, struct conn, all_node);
        struct peer_rec *p = pc->peer;
        if (!p || pc->state != CS_READY || o.len > (7u << 20))
            continue;
        jprintf(&o, "%s{\"id\":%u,\"name\":", first ? "" : ",", p->id);
        first = 0;
        json_str(&o, pc->name);
        buf_append(&o, ",\"addr\":", 8);
        json_str(&o, pc->addr);
        jprintf(&o, ",\"cores\":%u,\"slots\":%u,\"inflight\":%u,\"mem_bytes\":%" PRIu64
                    ",\"gpu\":%s,\"gpu_model\":",
                p->cores, p->slots, p->inflight, p->mem, p->gpu ? "true" : "false");
        json_str(&o, p->gpu_model);
        jprintf(&o, ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"types\":[", p->done, p->failed);
        int ft = 1;
        for (uint32_t m = p->types; m; m &= m - 1) {
            int ti = __builtin_ctz(m);
            jprintf(&o, "%s{\"name\":", ft ? "" : ",");
            json_str(&o, co->types[ti].name);
            jprintf(&o, ",\"version\":%u}", p->versions[ti]);
            ft = 0;
        }
        buf_append(&o, "]}", 2);
    }
    buf_append(&o, "]}", 2);
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
    c->last_rx_us = now_us();
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
    c->created_us = c->last_rx_us = now_us();
    buf_init(&c->in, (size_t)co->cfg.max_body + PROTO_HDR_LEN + READ_CHUNK);
    buf_init(&c->out, co->cfg.max_output);
    buf_init(&c->sending, co->cfg.max_output);
    list_init(&c->dirty_node);
    list_init(&c->reap_node);
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

static void sweep_deadlines(struct coord *co, uint64_t now)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        int orphaned = tt->npeers == 0 && now - tt->no_peer_since > co->cfg.orphan_timeout_ms * 1000ull;
        struct list_node *n = tt->queue.next;
        while (n != &tt->queue) {
            struct task *t = list_entry(n, struct task, qnode);
            n = n->next;
            if (orphaned) {
                char msg[128];
                snprintf(msg, sizeof(msg), "no peer running type '%s' connected for %u ms",
                         tt->name, co->cfg.orphan_timeout_ms);
                co->n.lost++;
                task_end_early(co, t, P2C2R_EUNSUPPORTED, msg);
            } else if (now >= t->deadline_us) {
                co->n.timed_out++;
                task_end_early(co, t, P2C2R_ETIMEDOUT, "deadline passed while queued");
            }
        }
    }
    for (struct list_node *cn = co->conns.next; cn != &co->conns; cn = cn->next) {
        struct conn *c = list_entry(cn, struct conn, all_node);
        if (!c->peer)
            continue;
        for (struct list_node *n = c->peer->tasks.next; n != &c->peer->tasks; n = n->next) {
            struct task *t = list_entry(n, struct task, qnode);
            if (t->state == TS_ASSIGNED && now >= t->deadline_us) {
                co->n.timed_out++;
                task_end_early(co, t, P2C2R_ETIMEDOUT, "deadline passed while running");
            }
        }
    }
}

static void finish_shutdown(struct coord *co);

static void on_sweep(uv_timer_t *h)
{
    struct coord *co = h->data;
    uint64_t now = now_us();
    conn_reap(co);
    struct list_node *n = co->conns.next;
    while (n != &co->conns) {
        struct conn *c = list_entry(n, struct conn, all_node);
        n = n->next;
        if (c->state == CS_HELLO && now - c->created_us > co->cfg.hello_timeout_ms * 1000ull)
            conn_fail(c, P2C2R_ETIMEDOUT, "no HELLO within %u ms", co->cfg.hello_timeout_ms);
        else if (c->state == CS_READY && c->role == ROLE_PEER &&
                 now - c->last_rx_us > co->cfg.peer_timeout_ms * 1000ull)
            conn_fail(c, P2C2R_ETIMEDOUT, "peer silent for %u ms", co->cfg.peer_timeout_ms);
        else if (c->state == CS_DRAINING && (now >= c->drain_until_us ||
                                             (!c->writing && buf_used(&c->out) == 0 &&
                                              now + DRAIN_MS * 500 >= c->drain_until_us)))
            conn_close(c);
    }
    sweep_deadlines(co, now);
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
    co->stop_deadline_us = now_us() + 2 * DRAIN_MS * 1000;
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
}

static int load_tokens(struct coord *co, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot open tokens file %s: %s", path, strerror(errno));
        return P2C2R_EINVAL;
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
    co->rbuf = xmalloc(READ_CHUNK);
    list_init(&co->conns);
    list_init(&co->dirty);
    list_init(&co->reap);
    list_init(&co->blob_lru);
    int rc;
    if (cfg->tokens_file && (rc = load_tokens(co, cfg->tokens_file, err, errcap)) != 0) {
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
    *out = co;
    return 0;
}

int coord_run(struct coord *co)
{
    LOG_I("listening", "addr=%s", co->addr);
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
    for (uint32_t i = 0; i < co->ntypes; i++)
        free(co->types[i].peers);
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
