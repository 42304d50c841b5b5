/* limits.c - what keeps p2c2rd's memory and connection table bounded whatever clients do
 * (docs/ARCHITECTURE.md, "Memory"): the unauthenticated pool (a bounded set of connections
 * before HELLO, oldest dropped first, a per-address share), the frame-size limit of each
 * connection state, partial-frame and idle timeouts, and the charges of tasks and connection
 * buffers to the memory budget (mem.h) with the cut of a renter whose unread output passes
 * its share.
 *
 * Invariants: a connection is on co->hello_conns exactly while it is open and has not
 * completed HELLO (co->nhello counts them); c->buf_charged is what its buffers are charged
 * for now (to c->macct when it is a renter); a task's mcharge is charged to its macct from
 * limits_task_charge to limits_task_release. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coord/coord_int.h"

/* The largest frame a connection may send before HELLO: a HELLO is at
 * most about 330 bytes, an ERROR 1028. */
#define HELLO_MAX_BODY 2048u
/* A renter whose output passes this while the whole budget is full is cut
 * even under its share: it is the one not reading. */
#define OUTPUT_CUT_FLOOR (4u << 20)

/* Bytes one task costs in the daemon beyond its body: its slot, its place
 * in a queue heap and the deadline heap. */
static uint64_t task_overhead(void) { return sizeof(struct task) + 2 * sizeof(struct task *); }

uint64_t limits_task_cost(uint32_t body_len)
{
    return task_overhead() + (body_len > TASK_INLINE ? (uint64_t)body_len + 16 : 0);
}

/* The IP part of "HOST:PORT" ("[v6]:PORT" included): its length in addr. */
static size_t addr_host_len(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    return colon ? (size_t)(colon - addr) : strlen(addr);
}

void limits_conn_accepted(struct conn *c)
{
    struct coord *co = c->co;
    c->io.max_body = HELLO_MAX_BODY;
    /* The pool of connections that have not said who they are is bounded
     * apart from --max-conns, and a new one pushes out the oldest (of its
     * own address first, when that address holds its share): silent
     * sockets cannot keep anybody out, as a client that says HELLO at
     * once is authenticated long before it would be the oldest. */
    size_t hl = addr_host_len(c->addr);
    struct conn *victim = NULL;
    uint32_t same = 0;
    for (struct list_node *n = co->hello_conns.next; n != &co->hello_conns; n = n->next) {
        struct conn *o = list_entry(n, struct conn, hello_node);
        if (addr_host_len(o->addr) == hl && memcmp(o->addr, c->addr, hl) == 0 && same++ == 0)
            victim = o;
    }
    if (same < co->cfg.max_unauth_per_addr)
        victim = NULL;
    if (!victim && co->nhello >= co->cfg.max_unauth && !list_empty(&co->hello_conns))
        victim = list_entry(co->hello_conns.next, struct conn, hello_node);
    if (victim) {
        /* Closed now, not after the usual drain: a flood of new sockets
         * must not fill the table with draining ones.  The ERROR goes out
         * if the kernel takes it at once. */
        co->n.unauth_evicted++;
        conn_fail(victim, P2C2R_ELIMIT, "no HELLO yet and %u unauthenticated connections are open (limit %u, %u "
                  "per address): the oldest is dropped", co->nhello, co->cfg.max_unauth,
                  co->cfg.max_unauth_per_addr);
        (void)fconn_flush(&victim->io);
        conn_close(victim);
    }
    list_push_back(&co->hello_conns, &c->hello_node);
    co->nhello++;
}

void limits_conn_left_pool(struct conn *c)
{
    if (list_linked(&c->hello_node)) {
        list_remove(&c->hello_node);
        c->co->nhello--;
    }
}

int limits_conn_hello(struct conn *c)
{
    struct coord *co = c->co;
    limits_conn_left_pool(c);
    /* --max-conns counts connections that said HELLO: the unauthenticated
     * pool has its own bound. */
    if (co->nauth >= co->cfg.max_conns) {
        conn_fail(c, P2C2R_ELIMIT, "too many connections (limit %u)", co->cfg.max_conns);
        return -1;
    }
    co->nauth++;
    c->authed = 1;
    c->io.max_body = co->cfg.max_body;
    return 0;
}

void limits_renter_ready(struct conn *c)
{
    struct account *a = c->acct;
    if (a) {
        /* Every connection of a credential account charges its one share;
         * the record holds a reference of its own, so the share (and what
         * its tasks and blobs hold) outlives a reconnection. */
        if (!a->macct)
            a->macct = mem_acct_new();
        c->macct = a->macct;
        mem_acct_ref(c->macct);
    } else {
        c->macct = mem_acct_new();
    }
    c->macct->conns++;
    c->macct->gone = 0;
    /* Its buffers were the coordinator's until now. */
    mem_release(&c->co->mem, NULL, MEM_BUFFERS, c->buf_charged);
    mem_charge(&c->co->mem, c->macct, MEM_BUFFERS, c->buf_charged);
}

void limits_conn_closed(struct conn *c)
{
    limits_conn_left_pool(c);
    if (c->authed)
        c->co->nauth--;
    c->authed = 0;
    list_remove(&c->stats_node);
    mem_release(&c->co->mem, c->macct, MEM_BUFFERS, c->buf_charged);
    c->buf_charged = 0;
    if (c->macct) {
        if (--c->macct->conns == 0)
            c->macct->gone = 1;
        mem_acct_unref(c->macct);
        c->macct = NULL;
    }
}

/* What c's buffers hold from the heap now. */
static uint64_t conn_buffers(const struct conn *c)
{
    return (uint64_t)c->io.in.cap + c->io.out.cap + c->io.sending.cap;
}

void limits_charge_buffers(struct conn *c)
{
    uint64_t now = c->state >= CS_CLOSED ? 0 : conn_buffers(c);
    if (now != c->buf_charged) {
        mem_adjust(&c->co->mem, c->macct, MEM_BUFFERS, c->buf_charged, now);
        c->buf_charged = now;
    }
}

int limits_sync_buffers(struct conn *c)
{
    struct coord *co = c->co;
    limits_charge_buffers(c);
    /* A renter that does not read its results is cut once its buffers
     * pass its share, or the budget while it holds more than a little;
     * only while the kernel refuses more (a write is pending), so a burst
     * of outcomes to a renter that reads is never mistaken for it. */
    if (c->macct && c->state == CS_READY && c->io.writing) {
        uint64_t bufs = c->macct->by_kind[MEM_BUFFERS];
        if (bufs > co->mem.share || (co->mem.used > co->mem.limit && bufs > OUTPUT_CUT_FLOOR)) {
            conn_fail(c, P2C2R_ELIMIT, "renter output of %" PRIu64 " bytes unread over its memory share of %"
                      PRIu64 " bytes (--mem-share, --mem-budget): read your results", bufs, co->mem.share);
            return -1;
        }
    }
    return 0;
}

/* c was cut: its partial frame is dropped at once.  A draining
 * connection's reads are discarded, but with a partial frame buffered they
 * would still land in a buffer grown to the whole frame (fconn_alloc);
 * empty, they land in the shared read buffer.  Never called under a frame
 * handler (the buffer may be the one being split). */
static void drop_input(struct conn *c)
{
    buf_consume(&c->io.in, buf_used(&c->io.in));
    buf_shrink(&c->io.in, 0);
    c->partial_since_us = 0;
    limits_charge_buffers(c);
}

int limits_after_read(struct conn *c)
{
    struct coord *co = c->co;
    size_t have = buf_used(&c->io.in);
    if (have == 0) {
        c->partial_since_us = 0;
        return limits_sync_buffers(c);
    }
    if (!c->partial_since_us)
        c->partial_since_us = co->now;
    /* A partial frame announces its size: one that the budget or the
     * renter's share cannot take is refused now, before its body is read. */
    struct frame_hdr h;
    if (have >= PROTO_HDR_LEN && proto_decode_hdr(buf_head(&c->io.in), have, c->io.max_body, &h) == 0 &&
        (uint64_t)PROTO_HDR_LEN + h.body_len > c->io.in.cap) {
        char why[200];
        /* The input buffer doubles until the frame fits (buf_reserve):
         * what it will take is that, not just the frame. */
        uint64_t want = c->io.in.cap ? c->io.in.cap : 256, need = (uint64_t)PROTO_HDR_LEN + h.body_len;
        while (want < need)
            want *= 2;
        if (want > c->io.in.max)
            want = c->io.in.max;
        uint64_t more = want - c->io.in.cap;
        if (c->macct && c->macct->used + more > co->mem.share)
            blobs_shed(co, c->macct, more); /* the account's other connections' blobs too */
        if (mem_admit(&co->mem, c->macct, more, why, sizeof(why)) != MEM_OK) {
            co->n.mem_refused++;
            conn_fail(c, P2C2R_ELIMIT, "frame of %u bytes refused: %s", h.body_len, why);
            drop_input(c);
            return -1;
        }
        /* Admitted: the buffer takes its final size now, in one step, and
         * is charged for it before the next frame is judged (growing by
         * doublings left each step's old buffer behind in the heap). */
        (void)buf_reserve(&c->io.in, (size_t)(need - have));
    }
    return limits_sync_buffers(c);
}

int limits_check_conn(struct conn *c, uint64_t now)
{
    struct coord *co = c->co;
    limits_sync_buffers(c);
    if (c->state != CS_READY)
        return 0;
    if (c->partial_since_us && now - c->partial_since_us > co->cfg.frame_timeout_ms * 1000ull) {
        co->n.frame_timeouts++;
        conn_fail(c, P2C2R_ETIMEDOUT, "partial frame not completed within %u ms (--frame-timeout)",
                  co->cfg.frame_timeout_ms);
        drop_input(c);
        return -1;
    }
    if (c->role == ROLE_RENTER && co->cfg.idle_timeout_ms && c->inflight == 0 &&
        now - c->last_rx_us > co->cfg.idle_timeout_ms * 1000ull) {
        co->n.idle_timeouts++;
        conn_fail(c, P2C2R_ETIMEDOUT, "renter idle for %u ms with nothing outstanding (--idle-timeout)",
                  co->cfg.idle_timeout_ms);
        return -1;
    }
    return 0;
}

int limits_task_admit(struct conn *c, uint32_t body_len, char *why, size_t cap)
{
    return mem_admit(&c->co->mem, c->macct, limits_task_cost(body_len), why, cap);
}

void limits_task_charge(struct coord *co, struct conn *c, struct task *t)
{
    t->macct = c->macct;
    t->mcharge = limits_task_cost(t->body_len);
    if (t->macct)
        mem_acct_ref(t->macct);
    mem_charge(&co->mem, t->macct, MEM_TASKS, t->mcharge);
}

void limits_task_release(struct coord *co, struct task *t)
{
    mem_release(&co->mem, t->macct, MEM_TASKS, t->mcharge);
    t->mcharge = 0;
    mem_acct_unref(t->macct);
    t->macct = NULL;
}

void limits_task_shrink(struct coord *co, struct task *t)
{
    uint64_t body = limits_task_cost(t->body_len) - task_overhead();
    if (body > t->mcharge)
        body = t->mcharge;
    mem_release(&co->mem, t->macct, MEM_TASKS, body);
    t->mcharge -= body;
}

void limits_task_grow(struct coord *co, struct task *t, size_t len)
{
    mem_charge(&co->mem, t->macct, MEM_TASKS, len);
    t->mcharge += len;
}

void limits_task_ungrow(struct coord *co, struct task *t, size_t len)
{
    if (len > t->mcharge)
        len = (size_t)t->mcharge;
    mem_release(&co->mem, t->macct, MEM_TASKS, len);
    t->mcharge -= len;
}

size_t limits_cache_bytes(const struct coord *co)
{
    uint64_t cap = mem_usable(co->cfg.mem_budget ? co->cfg.mem_budget : 256ull << 20) / 4;
    return co->cfg.cache_bytes < cap ? co->cfg.cache_bytes : (size_t)cap;
}

void limits_init(struct coord *co)
{
    list_init(&co->hello_conns);
    list_init(&co->stats_wait);
    mem_init(&co->mem, co->cfg.mem_budget ? co->cfg.mem_budget : 256ull << 20, co->cfg.mem_share);
    /* The result cache lives inside the budget, at most a quarter of it,
     * and what it may take is set aside from the rest. */
    uint64_t cache = limits_cache_bytes(co);
    co->mem.limit -= cache;
    if (co->mem.share > co->mem.limit)
        co->mem.share = co->mem.limit;
    /* The blob store lives inside the budget: at most half of it. */
    co->blob_cap = co->cfg.blob_store_bytes;
    if (co->blob_cap > co->mem.limit / 2)
        co->blob_cap = (size_t)(co->mem.limit / 2);
}
