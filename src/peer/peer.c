/* peer.c - the peer agent.
 *
 * One libuv loop owns the coordinator links; executor threads take jobs from
 * a mutex-protected list and put finished ones on another, then wake the loop
 * with a uv_async.  Cheap executors on small inputs run inline on the loop
 * thread, writing their output straight into the link's output buffer.
 *
 * Invariants: every ASSIGN received in a session is answered by exactly one
 * RESULT in that session (success, executor error, or cancellation); a job
 * finishing after its link reconnected carries an old session number and is
 * dropped, because the coordinator has already requeued that task. */
#include "peer/peer.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/error.h"
#include "p2c2r/executor.h"
#include "tasks/tasks.h"

#define READ_CHUNK (64u * 1024)
/* A link that sent nothing for this long sends a PING (docs/PROTOCOL.md
 * 5.7), so that the coordinator hears from an idle peer before its
 * --peer-timeout.  The coordinator pings peers it has not heard from for its
 * --ping-interval, and the PONG counts as sending, so this fires only when
 * the coordinator pings less often than this.  At 1 s it made every idle
 * peer ping every second whatever --ping-interval said: with 10,000 idle
 * peers that kept the coordinator at ~7% of a core where 5 s costs ~2%. */
#define PING_IDLE_MS 5000
#define TICK_MS 1000

enum link_state { LS_IDLE, LS_CONNECTING, LS_HELLO, LS_READY, LS_CLOSING };

static const char *link_state_name(int s)
{
    static const char *const n[] = {"idle", "connecting", "hello", "ready", "closing"};
    return s >= 0 && s <= LS_CLOSING ? n[s] : "?";
}

struct link {
    struct peer_agent *a;
    uint32_t index;
    uint8_t state, writing, dirty, tcp_open;
    uint32_t session;
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_timer_t retry;
    uv_write_t wreq;
    struct buf in, out, sending;
    struct list_node dirty_node;
    uint32_t backoff_ms;
    uint64_t last_tx_us;
    uint32_t inflight;
    uint32_t max_body;   /* from HELLO_OK: largest frame body either way */
    uint32_t max_output; /* largest result this link may send */
    uint64_t done, failed;
};

struct job {
    struct list_node node;
    struct link *link;
    uint32_t session;
    uint64_t task_id;
    const struct p2c2r_executor *ex;
    uint8_t *body; /* owned copy of the task body */
    struct msg_task task;
    int cancelled;
    int status;
    uint32_t exec_us;
    uint8_t *frame; /* RESULT frame: header, prefix, output */
    size_t frame_len;
    uint32_t max_output;
    char err[200];
    uint32_t nblobs;
    struct pblob *pb[PROTO_MAX_BLOBS]; /* referenced until the job is freed */
    struct p2c2r_blob blobs[PROTO_MAX_BLOBS];
};

/* A blob cached on this peer.  Referenced blobs are never evicted; the rest
 * sit in LRU order and go when the cache passes its byte cap.  Only the loop
 * thread touches refs and the list; executor threads only read data. */
struct pblob {
    uint8_t hash[PROTO_HASH_LEN];
    uint8_t *data;
    size_t len;
    uint32_t refs;
    struct list_node node; /* all blobs, least recently used first */
};

struct peer_agent {
    struct peer_config cfg;
    uv_loop_t loop;
    uv_async_t wake, stopper;
    uv_check_t flusher;
    uv_timer_t ticker;
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    int stopping;
    struct rng rng;

    const struct p2c2r_executor *ex[PROTO_MAX_TYPES];
    uint32_t nex;

    struct link *links;
    struct list_node dirty;
    struct list_node blobs;
    size_t blob_bytes;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct list_node pending, done;
    int pool_stop;
    pthread_t *threads;
    uint32_t nthreads;
};

static void link_close(struct link *l, const char *why);

/* ---- executor pool ---------------------------------------------------------- */

static void *job_alloc_output(struct p2c2r_exec_call *call, size_t n)
{
    struct job *j = call->opaque;
    if (j->frame || n > j->max_output)
        return NULL;
    j->frame = malloc(PROTO_HDR_LEN + PROTO_RESULT_PREFIX + n);
    if (!j->frame)
        return NULL;
    j->frame_len = PROTO_HDR_LEN + PROTO_RESULT_PREFIX + n;
    return j->frame + PROTO_HDR_LEN + PROTO_RESULT_PREFIX;
}

/* Builds the RESULT frame for a job that failed or was cancelled: the body
 * is the reason text. */
static void job_error_frame(struct job *j, int status, const char *text)
{
    free(j->frame);
    size_t tl = strlen(text);
    j->frame = malloc(PROTO_HDR_LEN + PROTO_RESULT_PREFIX + tl);
    if (!j->frame) {
        tl = 0;
        j->frame = xmalloc(PROTO_HDR_LEN + PROTO_RESULT_PREFIX);
    }
    memcpy(j->frame + PROTO_HDR_LEN + PROTO_RESULT_PREFIX, text, tl);
    j->frame_len = PROTO_HDR_LEN + PROTO_RESULT_PREFIX + tl;
    j->status = status;
}

static void job_run(struct job *j)
{
    if (j->cancelled) {
        job_error_frame(j, P2C2R_ECANCELLED, "cancelled before start");
    } else {
        struct p2c2r_exec_call call = {
            .input = j->task.input.p,
            .input_len = j->task.input.len,
            .params = (const char *)j->task.params.p,
            .params_len = j->task.params.len,
            .alloc_output = job_alloc_output,
            .opaque = j,
            .err = j->err,
            .err_cap = sizeof(j->err),
            .blobs = j->blobs,
            .nblobs = j->nblobs,
        };
        uint64_t t0 = now_us();
        int rc = j->ex->run(&call);
        j->exec_us = (uint32_t)(now_us() - t0);
        if (rc == 0 && !j->frame)
            rc = P2C2R_ETASK, snprintf(j->err, sizeof(j->err), "executor produced no output");
        if (rc != 0)
            job_error_frame(j, rc, j->err[0] ? j->err : p2c2r_strerror(rc));
        else
            j->status = 0;
    }
    proto_put_hdr(j->frame, MSG_RESULT, 0, j->task_id,
                  (uint32_t)(j->frame_len - PROTO_HDR_LEN));
    proto_put_result_head(j->frame + PROTO_HDR_LEN, (uint16_t)(j->status < 0 ? -j->status : 0),
                          j->exec_us);
}

static void *pool_main(void *arg)
{
    struct peer_agent *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        while (list_empty(&a->pending) && !a->pool_stop)
            pthread_cond_wait(&a->cv, &a->mu);
        if (a->pool_stop)
            break;
        struct job *j = list_entry(list_pop_front(&a->pending), struct job, node);
        pthread_mutex_unlock(&a->mu);
        job_run(j);
        pthread_mutex_lock(&a->mu);
        int was_empty = list_empty(&a->done);
        list_push_back(&a->done, &j->node);
        pthread_mutex_unlock(&a->mu);
        /* One wake-up per batch: the loop drains the whole list. */
        if (was_empty)
            uv_async_send(&a->wake);
        pthread_mutex_lock(&a->mu);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void job_free(struct job *j)
{
    for (uint32_t i = 0; i < j->nblobs; i++)
        j->pb[i]->refs--;
    free(j->body);
    free(j->frame);
    free(j);
}

/* ---- output ----------------------------------------------------------------- */

static void link_mark_dirty(struct link *l)
{
    if (!l->dirty) {
        l->dirty = 1;
        list_push_back(&l->a->dirty, &l->dirty_node);
    }
}

static uint8_t *link_frame(struct link *l, uint8_t type, uint64_t req_id, uint32_t body_len)
{
    uint8_t *p = buf_reserve(&l->out, PROTO_HDR_LEN + (size_t)body_len);
    if (!p)
        return NULL;
    proto_put_hdr(p, type, 0, req_id, body_len);
    buf_commit(&l->out, PROTO_HDR_LEN + (size_t)body_len);
    link_mark_dirty(l);
    return p + PROTO_HDR_LEN;
}

static void on_write(uv_write_t *req, int status);

static void link_flush(struct link *l)
{
    if (l->writing || l->state < LS_HELLO || l->state == LS_CLOSING || buf_used(&l->out) == 0)
        return;
    uv_buf_t b = uv_buf_init((char *)buf_head(&l->out), (unsigned)buf_used(&l->out));
    int n = uv_try_write((uv_stream_t *)&l->tcp, &b, 1);
    if (n == UV_EAGAIN)
        n = 0;
    if (n < 0) {
        link_close(l, uv_strerror(n));
        return;
    }
    l->last_tx_us = now_us();
    buf_consume(&l->out, (size_t)n);
    if (buf_used(&l->out) == 0) {
        buf_shrink(&l->out, 1u << 20);
        return;
    }
    struct buf t = l->sending;
    l->sending = l->out;
    l->out = t;
    b = uv_buf_init((char *)buf_head(&l->sending), (unsigned)buf_used(&l->sending));
    l->writing = 1;
    l->wreq.data = l;
    if (uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &b, 1, on_write) < 0) {
        l->writing = 0;
        link_close(l, "write failed");
    }
}

static void on_write(uv_write_t *req, int status)
{
    struct link *l = req->data;
    l->writing = 0;
    buf_consume(&l->sending, buf_used(&l->sending));
    buf_shrink(&l->sending, 1u << 20);
    if (status < 0) {
        link_close(l, uv_strerror(status));
        return;
    }
    if (buf_used(&l->out))
        link_mark_dirty(l);
}

static void on_flush(uv_check_t *h)
{
    struct peer_agent *a = h->data;
    struct list_node *n;
    while ((n = list_pop_front(&a->dirty)) != NULL) {
        struct link *l = list_entry(n, struct link, dirty_node);
        l->dirty = 0;
        link_flush(l);
    }
}

/* ---- finished jobs ----------------------------------------------------------- */

static void on_wake(uv_async_t *h)
{
    struct peer_agent *a = h->data;
    struct list_node done;
    list_init(&done);
    pthread_mutex_lock(&a->mu);
    if (!list_empty(&a->done)) {
        /* Move the whole list in O(1). */
        done.next = a->done.next;
        done.prev = a->done.prev;
        done.next->prev = &done;
        done.prev->next = &done;
        list_init(&a->done);
    }
    pthread_mutex_unlock(&a->mu);
    struct list_node *n;
    while ((n = list_pop_front(&done)) != NULL) {
        struct job *j = list_entry(n, struct job, node);
        struct link *l = j->link;
        if (l->session == j->session && l->state == LS_READY) {
            l->inflight--;
            if (j->status == 0)
                l->done++;
            else
                l->failed++;
            /* A large result going to an idle link is written from the
             * job's own buffer; only what the kernel leaves is copied. */
            size_t sent = 0;
            if (j->frame_len >= 16384 && !l->writing && buf_used(&l->out) == 0) {
                uv_buf_t v = uv_buf_init((char *)j->frame, (unsigned)j->frame_len);
                int w = uv_try_write((uv_stream_t *)&l->tcp, &v, 1);
                sent = w > 0 ? (size_t)w : 0;
                l->last_tx_us = now_us();
            }
            if (sent < j->frame_len &&
                buf_append(&l->out, j->frame + sent, j->frame_len - sent) != 0)
                link_close(l, "output buffer full");
            else if (sent < j->frame_len)
                link_mark_dirty(l);
        }
        job_free(j);
    }
}

/* ---- inbound ----------------------------------------------------------------- */

struct inline_ctx {
    struct link *l;
    uint64_t task_id;
    uint8_t *frame; /* reserved in l->out */
    size_t out_len;
    uint32_t max_output;
};

static void *inline_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct inline_ctx *c = call->opaque;
    if (c->frame || n > c->max_output)
        return NULL;
    c->frame = buf_reserve(&c->l->out, PROTO_HDR_LEN + PROTO_RESULT_PREFIX + n);
    if (!c->frame)
        return NULL;
    c->out_len = n;
    return c->frame + PROTO_HDR_LEN + PROTO_RESULT_PREFIX;
}

static void send_result_text(struct link *l, uint64_t task_id, int status, const char *text)
{
    size_t tl = strlen(text);
    uint8_t *b = link_frame(l, MSG_RESULT, task_id, (uint32_t)(PROTO_RESULT_PREFIX + tl));
    if (!b) {
        link_close(l, "output buffer full");
        return;
    }
    proto_put_result_head(b, (uint16_t)(status < 0 ? -status : status), 0);
    memcpy(b + PROTO_RESULT_PREFIX, text, tl);
    if (status == 0)
        l->done++;
    else
        l->failed++;
}

static struct pblob *blob_find(struct peer_agent *a, const uint8_t *h)
{
    for (struct list_node *n = a->blobs.next; n != &a->blobs; n = n->next) {
        struct pblob *b = list_entry(n, struct pblob, node);
        if (memcmp(b->hash, h, PROTO_HASH_LEN) == 0)
            return b;
    }
    return NULL;
}

static void blob_evict(struct peer_agent *a)
{
    struct list_node *n = a->blobs.next;
    while (a->blob_bytes > a->cfg.blob_cache_bytes && n != &a->blobs) {
        struct pblob *b = list_entry(n, struct pblob, node);
        n = n->next;
        if (b->refs)
            continue;
        list_remove(&b->node);
        a->blob_bytes -= b->len;
        free(b->data);
        free(b);
    }
}

/* BLOB_DATA: 32-byte SHA-256, then the bytes.  The hash is checked: a
 * cache keyed by content must never hold anything else. */
static int on_blob_data(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    struct peer_agent *a = l->a;
    if (h->body_len < PROTO_HASH_LEN)
        return P2C2R_EPROTO;
    const uint8_t *data = body + PROTO_HASH_LEN;
    size_t len = h->body_len - PROTO_HASH_LEN;
    struct pblob *b = blob_find(a, body);
    if (b) {
        list_remove(&b->node);
        list_push_back(&a->blobs, &b->node);
        return 0;
    }
    uint8_t md[PROTO_HASH_LEN];
    unsigned int ml = 0;
    if (!EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL) || memcmp(md, body, PROTO_HASH_LEN) != 0) {
        LOG_W("blob_hash_mismatch", "link=%u len=%zu", l->index, len);
        return P2C2R_EPROTO;
    }
    b = calloc(1, sizeof(*b));
    uint8_t *copy = malloc(len ? len : 1);
    if (!b || !copy) {
        free(b);
        free(copy);
        return 0; /* the task that needs it will answer ENOBLOB */
    }
    memcpy(b->hash, body, PROTO_HASH_LEN);
    memcpy(copy, data, len);
    b->data = copy;
    b->len = len;
    list_push_back(&a->blobs, &b->node);
    a->blob_bytes += len;
    blob_evict(a);
    return 0;
}

/* Finds every blob a task names.  Returns 0, or P2C2R_ENOBLOB with the
 * first missing hash in err. */
static int blobs_resolve(struct peer_agent *a, const struct msg_task *t, struct pblob **out,
                         char *err, size_t errcap)
{
    for (uint32_t i = 0; i < t->nblobs; i++) {
        out[i] = blob_find(a, t->blobs + i * PROTO_HASH_LEN);
        if (!out[i]) {
            static const char d[] = "0123456789abcdef";
            char hx[65];
            for (int k = 0; k < 32; k++) {
                hx[2 * k] = d[t->blobs[i * PROTO_HASH_LEN + k] >> 4];
                hx[2 * k + 1] = d[t->blobs[i * PROTO_HASH_LEN + k] & 15];
            }
            hx[64] = '\0';
            snprintf(err, errcap, "blob %s not in this peer's cache", hx);
            return P2C2R_ENOBLOB;
        }
    }
    return 0;
}

static const struct p2c2r_executor *find_ex(struct peer_agent *a, const struct bytes_view *name)
{
    for (uint32_t i = 0; i < a->nex; i++) {
        if (strlen(a->ex[i]->name) == name->len && memcmp(a->ex[i]->name, name->p, name->len) == 0)
            return a->ex[i];
    }
    return NULL;
}

static int on_assign(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    struct peer_agent *a = l->a;
    struct msg_task t;
    char err[200];
    if (proto_parse_task(body, h->body_len, &t) != 0) {
        send_result_text(l, h->req_id, P2C2R_EPROTO, "malformed task body");
        return 0;
    }
    const struct p2c2r_executor *ex = find_ex(a, &t.type);
    if (!ex) {
        snprintf(err, sizeof(err), "task type '%.*s' not served by this peer", (int)t.type.len,
                 (const char *)t.type.p);
        send_result_text(l, h->req_id, P2C2R_EUNSUPPORTED, err);
        return 0;
    }
    if (t.min_version > ex->version) {
        snprintf(err, sizeof(err), "task needs %s >= v%u, this peer has v%u", ex->name,
                 t.min_version, ex->version);
        send_result_text(l, h->req_id, P2C2R_EUNSUPPORTED, err);
        return 0;
    }
    if (t.input.len > ex->max_input) {
        snprintf(err, sizeof(err), "input of %zu bytes over %s's limit of %zu", t.input.len,
                 ex->name, ex->max_input);
        send_result_text(l, h->req_id, P2C2R_ETOOBIG, err);
        return 0;
    }
    struct pblob *pb[PROTO_MAX_BLOBS];
    struct p2c2r_blob blobs[PROTO_MAX_BLOBS];
    if (blobs_resolve(a, &t, pb, err, sizeof(err)) != 0) {
        send_result_text(l, h->req_id, P2C2R_ENOBLOB, err);
        return 0;
    }
    for (uint32_t i = 0; i < t.nblobs; i++) {
        memcpy(blobs[i].hash, pb[i]->hash, PROTO_HASH_LEN);
        blobs[i].data = pb[i]->data;
        blobs[i].len = pb[i]->len;
        list_remove(&pb[i]->node); /* recently used */
        list_push_back(&a->blobs, &pb[i]->node);
    }
    struct p2c2r_exec_call call = {
        .input = t.input.p,
        .input_len = t.input.len,
        .params = (const char *)t.params.p,
        .params_len = t.params.len,
        .err = err,
        .err_cap = sizeof(err),
        .blobs = blobs,
        .nblobs = t.nblobs,
    };
    err[0] = '\0';
    if (ex->check) {
        int rc = ex->check(&call);
        if (rc != 0) {
            send_result_text(l, h->req_id, rc, err[0] ? err : p2c2r_strerror(rc));
            return 0;
        }
    }
    if ((ex->flags & P2C2R_EXEC_CHEAP) && t.input.len <= P2C2R_EXEC_INLINE_MAX) {
        struct inline_ctx ic = {l, h->req_id, NULL, 0, l->max_output};
        call.alloc_output = inline_alloc;
        call.opaque = &ic;
        uint64_t t0 = now_us();
        int rc = ex->run(&call);
        uint32_t us = (uint32_t)(now_us() - t0);
        if (rc == 0 && ic.frame) {
            proto_put_hdr(ic.frame, MSG_RESULT, 0, h->req_id,
                          (uint32_t)(PROTO_RESULT_PREFIX + ic.out_len));
            proto_put_result_head(ic.frame + PROTO_HDR_LEN, 0, us);
            buf_commit(&l->out, PROTO_HDR_LEN + PROTO_RESULT_PREFIX + ic.out_len);
            link_mark_dirty(l);
            l->done++;
        } else {
            send_result_text(l, h->req_id, rc ? rc : P2C2R_ETASK,
                             err[0] ? err : p2c2r_strerror(rc ? rc : P2C2R_ETASK));
        }
        return 0;
    }
    struct job *j = calloc(1, sizeof(*j));
    uint8_t *copy = malloc(h->body_len ? h->body_len : 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        send_result_text(l, h->req_id, P2C2R_ENOMEM, "peer out of memory");
        return 0;
    }
    memcpy(copy, body, h->body_len);
    j->body = copy;
    proto_parse_task(copy, h->body_len, &j->task);
    j->link = l;
    j->session = l->session;
    j->task_id = h->req_id;
    j->ex = ex;
    j->max_output = l->max_output;
    j->nblobs = j->task.nblobs;
    for (uint32_t i = 0; i < j->nblobs; i++) {
        j->pb[i] = pb[i];
        j->blobs[i] = blobs[i];
        pb[i]->refs++;
    }
    l->inflight++;
    pthread_mutex_lock(&a->mu);
    list_push_back(&a->pending, &j->node);
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static int on_cancel(struct link *l, const struct frame_hdr *h)
{
    struct peer_agent *a = l->a;
    pthread_mutex_lock(&a->mu);
    for (struct list_node *n = a->pending.next; n != &a->pending; n = n->next) {
        struct job *j = list_entry(n, struct job, node);
        if (j->link == l && j->task_id == h->req_id)
            j->cancelled = 1;
    }
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static void send_register(struct link *l)
{
    struct peer_agent *a = l->a;
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    m.cores = (uint16_t)(a->cfg.cores ? a->cfg.cores : cores > 0 ? cores : 1);
    m.slots = (uint16_t)a->cfg.slots;
    m.mem_bytes = a->cfg.mem_bytes ? a->cfg.mem_bytes
                  : pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
    m.gpu = a->cfg.gpu_model ? 1 : 0;
    if (a->cfg.gpu_model) {
        m.gpu_model.p = (const uint8_t *)a->cfg.gpu_model;
        m.gpu_model.len = strlen(a->cfg.gpu_model);
    }
    m.ntypes = (uint8_t)a->nex;
    for (uint32_t i = 0; i < a->nex; i++) {
        m.types[i].name.p = (const uint8_t *)a->ex[i]->name;
        m.types[i].name.len = strlen(a->ex[i]->name);
        m.types[i].version = a->ex[i]->version;
    }
    size_t n = proto_register_size(&m);
    uint8_t *b = link_frame(l, MSG_PEER_REGISTER, 2, (uint32_t)n);
    if (b)
        proto_put_register(b, &m);
}

static int link_dispatch(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    switch (h->type) {
    case MSG_HELLO_OK: {
        struct msg_hello_ok ok;
        if (l->state != LS_HELLO || proto_parse_hello_ok(body, h->body_len, &ok) != 0 ||
            ok.max_body < 1024)
            return P2C2R_EPROTO;
        /* A result must fit in a DELIVER frame within the coordinator's
         * limit, which is what the renter was promised. */
        l->max_body = ok.max_body;
        l->max_output = ok.max_body - PROTO_DELIVER_PREFIX;
        if (l->max_output > l->a->cfg.max_output)
            l->max_output = l->a->cfg.max_output;
        l->in.max = (size_t)ok.max_body + PROTO_HDR_LEN + READ_CHUNK;
        send_register(l);
        return 0;
    }
    case MSG_REGISTER_OK:
        if (l->state != LS_HELLO)
            return P2C2R_EPROTO;
        l->state = LS_READY;
        l->backoff_ms = l->a->cfg.backoff_min_ms;
        LOG_I("registered", "link=%u coordinator=%s slots=%u", l->index, l->a->cfg.coordinator,
              l->a->cfg.slots);
        return 0;
    case MSG_ASSIGN:
        if (l->state != LS_READY)
            return P2C2R_EPROTO;
        return on_assign(l, h, body);
    case MSG_CANCEL:
        return l->state == LS_READY ? on_cancel(l, h) : P2C2R_EPROTO;
    case MSG_PING: {
        uint8_t *b = link_frame(l, MSG_PONG, h->req_id, h->body_len);
        if (b)
            memcpy(b, body, h->body_len);
        return 0;
    }
    case MSG_PONG:
        return 0;
    case MSG_BLOB_DATA:
        return l->state == LS_READY ? on_blob_data(l, h, body) : P2C2R_EPROTO;
    case MSG_ERROR: {
        struct msg_error e;
        if (proto_parse_error(body, h->body_len, &e) == 0)
            LOG(e.code == (uint16_t)-P2C2R_ESHUTDOWN ? LOG_INFO : LOG_WARN, "coordinator_error", "link=%u code=%s text=\"%.*s\"", l->index,
                  p2c2r_errname(-(int)e.code), (int)e.text.len, (const char *)e.text.p);
        return P2C2R_ECLOSED;
    }
    default:
        return P2C2R_EPROTO;
    }
}

/* ---- link lifecycle ------------------------------------------------------------ */

static void link_connect(struct link *l);

static void on_retry(uv_timer_t *t)
{
    struct link *l = t->data;
    link_connect(l);
}

static void schedule_retry(struct link *l)
{
    struct peer_agent *a = l->a;
    if (a->stopping)
        return;
    /* Exponential backoff with +-50% jitter so a fleet of peers does not
     * reconnect in lock-step after a coordinator restart. */
    uint32_t base = l->backoff_ms;
    uint32_t jitter = (uint32_t)(rng_next(&a->rng) % (base + 1));
    uint32_t delay = base / 2 + jitter;
    l->backoff_ms = base * 2 > a->cfg.backoff_max_ms ? a->cfg.backoff_max_ms : base * 2;
    LOG_I("reconnect_scheduled", "link=%u delay_ms=%u", l->index, delay);
    uv_timer_start(&l->retry, on_retry, delay, 0);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct link *l = h->data;
    l->tcp_open = 0;
    l->state = LS_IDLE;
    buf_consume(&l->in, buf_used(&l->in));
    buf_consume(&l->out, buf_used(&l->out));
    buf_consume(&l->sending, buf_used(&l->sending));
    schedule_retry(l);
}

static void link_close(struct link *l, const char *why)
{
    if (l->state == LS_CLOSING || l->state == LS_IDLE)
        return;
    struct peer_agent *a = l->a;
    LOG_I("link_closed", "link=%u state=%s why=\"%s\" done=%" PRIu64 " failed=%" PRIu64, l->index,
          link_state_name(l->state), why, l->done, l->failed);
    l->state = LS_CLOSING;
    l->session++;
    l->inflight = 0;
    if (l->dirty) {
        list_remove(&l->dirty_node);
        l->dirty = 0;
    }
    /* Jobs not started for this link are useless now: the coordinator has
     * put them back in its queue. */
    pthread_mutex_lock(&a->mu);
    for (struct list_node *n = a->pending.next; n != &a->pending; n = n->next) {
        struct job *j = list_entry(n, struct job, node);
        if (j->link == l)
            j->cancelled = 1;
    }
    pthread_mutex_unlock(&a->mu);
    uv_close((uv_handle_t *)&l->tcp, on_tcp_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    struct link *l = h->data;
    (void)suggested;
    size_t want = READ_CHUNK;
    struct frame_hdr fh;
    if (buf_used(&l->in) >= PROTO_HDR_LEN &&
        proto_decode_hdr(buf_head(&l->in), buf_used(&l->in), l->max_body, &fh) == 0) {
        size_t need = PROTO_HDR_LEN + fh.body_len - buf_used(&l->in);
        if (need > want)
            want = need;
    }
    uint8_t *p = buf_reserve(&l->in, want);
    *out = p ? uv_buf_init((char *)p, (unsigned)(l->in.cap - l->in.len)) : uv_buf_init(NULL, 0);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct link *l = s->data;
    (void)b;
    if (nread < 0) {
        link_close(l, nread == UV_EOF ? "coordinator closed the connection" : uv_strerror((int)nread));
        return;
    }
    if (l->state == LS_CLOSING)
        return;
    buf_commit(&l->in, (size_t)nread);
    while (l->state == LS_HELLO || l->state == LS_READY) {
        struct frame_hdr h;
        int64_t n = proto_decode_hdr(buf_head(&l->in), buf_used(&l->in), l->max_body, &h);
        if (n == 0)
            break;
        if (n < 0) {
            link_close(l, "malformed frame from coordinator");
            return;
        }
        int rc = link_dispatch(l, &h, buf_head(&l->in) + PROTO_HDR_LEN);
        if (rc != 0) {
            if (rc == P2C2R_EPROTO)
                LOG_W("protocol_error", "link=%u type=%s", l->index, proto_type_name(h.type));
            link_close(l, rc == P2C2R_ECLOSED ? "coordinator sent ERROR" : "unexpected message");
            return;
        }
        buf_consume(&l->in, (size_t)n);
    }
    buf_shrink(&l->in, 1u << 20);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct link *l = req->data;
    struct peer_agent *a = l->a;
    if (status < 0 || a->stopping) {
        if (status < 0)
            LOG_W("connect_failed", "link=%u coordinator=%s err=%s", l->index, a->cfg.coordinator,
                  uv_strerror(status));
        l->state = LS_HELLO; /* so link_close proceeds */
        link_close(l, status < 0 ? uv_strerror(status) : "stopping");
        return;
    }
    l->state = LS_HELLO;
    l->max_body = PROTO_MAX_BODY_DEFAULT;
    l->max_output = a->cfg.max_output;
    uv_tcp_nodelay(&l->tcp, 1);
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, ROLE_PEER, {NULL, 0}, {NULL, 0}};
    if (a->cfg.token) {
        m.token.p = (const uint8_t *)a->cfg.token;
        m.token.len = strlen(a->cfg.token);
    }
    if (a->cfg.name) {
        m.name.p = (const uint8_t *)a->cfg.name;
        m.name.len = strlen(a->cfg.name);
    }
    uint8_t *b = link_frame(l, MSG_HELLO, 1, (uint32_t)proto_hello_size(&m));
    if (b)
        proto_put_hello(b, &m);
    uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read);
}

static void link_connect(struct link *l)
{
    struct peer_agent *a = l->a;
    if (a->stopping || l->state != LS_IDLE)
        return;
    uv_tcp_init(&a->loop, &l->tcp);
    l->tcp.data = l;
    l->tcp_open = 1;
    l->state = LS_CONNECTING;
    l->creq.data = l;
    int rc = uv_tcp_connect(&l->creq, &l->tcp, (struct sockaddr *)&a->addr, on_connect);
    if (rc < 0) {
        l->state = LS_HELLO;
        link_close(l, uv_strerror(rc));
    }
}

static void on_tick(uv_timer_t *t)
{
    struct peer_agent *a = t->data;
    uint64_t now = now_us();
    for (uint32_t i = 0; i < a->cfg.connections; i++) {
        struct link *l = &a->links[i];
        if (l->state == LS_READY && now - l->last_tx_us > PING_IDLE_MS * 1000ull) {
            uint8_t *b = link_frame(l, MSG_PING, 0, 8);
            if (b)
                wr64(b, now);
            l->last_tx_us = now;
        }
    }
}

static void begin_stop(struct peer_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    LOG_I("peer_stopping", "links=%u", a->cfg.connections);
    /* Join the executors first: after that nobody can touch the wake handle,
     * so it can be closed with the rest.  Running jobs are bounded. */
    pthread_mutex_lock(&a->mu);
    a->pool_stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    for (uint32_t i = 0; i < a->nthreads; i++)
        pthread_join(a->threads[i], NULL);
    a->nthreads = 0;
    uv_close((uv_handle_t *)&a->wake, NULL);
    for (uint32_t i = 0; i < a->cfg.connections; i++) {
        struct link *l = &a->links[i];
        uv_timer_stop(&l->retry);
        uv_close((uv_handle_t *)&l->retry, NULL);
        if (l->state != LS_IDLE && l->state != LS_CLOSING)
            link_close(l, "stopping");
    }
    uv_close((uv_handle_t *)&a->ticker, NULL);
    uv_close((uv_handle_t *)&a->stopper, NULL);
    uv_close((uv_handle_t *)&a->flusher, NULL);
    if (a->cfg.handle_signals) {
        uv_close((uv_handle_t *)&a->sigint, NULL);
        uv_close((uv_handle_t *)&a->sigterm, NULL);
    }
}

static void on_stop(uv_async_t *h) { begin_stop(h->data); }
static void on_signal(uv_signal_t *h, int sig)
{
    LOG_I("signal", "sig=%d", sig);
    begin_stop(h->data);
}

/* ---- public ------------------------------------------------------------------ */

void peer_config_defaults(struct peer_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cfg->coordinator = "127.0.0.1:8765";
    cfg->slots = cores > 0 ? (uint32_t)cores : 1;
    cfg->threads = cfg->slots;
    cfg->connections = 1;
    cfg->max_output = PROTO_MAX_BODY_DEFAULT - PROTO_DELIVER_PREFIX;
    cfg->backoff_min_ms = 100;
    cfg->blob_cache_bytes = 256u << 20;
    cfg->backoff_max_ms = 5000;
}

int peer_agent_new(const struct peer_config *cfg, struct peer_agent **out, char *err, size_t errcap)
{
    struct peer_agent *a = xcalloc(1, sizeof(*a));
    a->cfg = *cfg;
    if (addr_parse(cfg->coordinator, &a->addr, &a->addrlen) != 0) {
        snprintf(err, errcap, "cannot parse coordinator address '%s': expected HOST:PORT",
                 cfg->coordinator);
        free(a);
        return P2C2R_EADDR;
    }
    if ((cfg->name && strlen(cfg->name) > PROTO_MAX_NAME) ||
        (cfg->token && strlen(cfg->token) > PROTO_MAX_TOKEN)) {
        snprintf(err, errcap, "name must be at most %d bytes and token at most %d", PROTO_MAX_NAME,
                 PROTO_MAX_TOKEN);
        free(a);
        return P2C2R_EINVAL;
    }
    if (cfg->slots == 0 || cfg->slots > 65535 || cfg->threads == 0 || cfg->threads > 1024 ||
        cfg->connections == 0 || cfg->connections > 10000) {
        snprintf(err, errcap, "slots must be 1..65535, threads 1..1024, connections 1..10000");
        free(a);
        return P2C2R_EINVAL;
    }
    size_t nb;
    const struct p2c2r_executor *const *all = tasks_builtin(&nb);
    if (!cfg->types) {
        for (size_t i = 0; i < nb && a->nex < PROTO_MAX_TYPES; i++)
            a->ex[a->nex++] = all[i];
    } else {
        const char *p = cfg->types;
        while (*p) {
            size_t l = strcspn(p, ",");
            const struct p2c2r_executor *ex = tasks_find(p, l);
            if (!ex) {
                snprintf(err, errcap, "unknown task type '%.*s' in --types (built in:", (int)l, p);
                for (size_t i = 0; i < nb; i++) {
                    size_t used = strlen(err);
                    snprintf(err + used, errcap - used, " %s", all[i]->name);
                }
                size_t used = strlen(err);
                snprintf(err + used, errcap - used, ")");
                free(a);
                return P2C2R_EINVAL;
            }
            int dup = 0;
            for (uint32_t i = 0; i < a->nex; i++)
                dup |= a->ex[i] == ex;
            if (!dup && a->nex < PROTO_MAX_TYPES)
                a->ex[a->nex++] = ex;
            p += l;
            if (*p == ',')
                p++;
        }
        if (a->nex == 0) {
            snprintf(err, errcap, "--types lists no task type");
            free(a);
            return P2C2R_EINVAL;
        }
    }
    a->rng.s = now_ns() ^ (uint64_t)getpid() << 32;
    uv_loop_init(&a->loop);
    uv_async_init(&a->loop, &a->wake, on_wake);
    a->wake.data = a;
    uv_async_init(&a->loop, &a->stopper, on_stop);
    a->stopper.data = a;
    uv_check_init(&a->loop, &a->flusher);
    a->flusher.data = a;
    uv_check_start(&a->flusher, on_flush);
    uv_timer_init(&a->loop, &a->ticker);
    a->ticker.data = a;
    uv_timer_start(&a->ticker, on_tick, TICK_MS, TICK_MS);
    if (cfg->handle_signals) {
        uv_signal_init(&a->loop, &a->sigint);
        a->sigint.data = a;
        uv_signal_start(&a->sigint, on_signal, SIGINT);
        uv_signal_init(&a->loop, &a->sigterm);
        a->sigterm.data = a;
        uv_signal_start(&a->sigterm, on_signal, SIGTERM);
    }
    list_init(&a->dirty);
    list_init(&a->blobs);
    list_init(&a->pending);
    list_init(&a->done);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->links = xcalloc(cfg->connections, sizeof(*a->links));
    for (uint32_t i = 0; i < cfg->connections; i++) {
        struct link *l = &a->links[i];
        l->a = a;
        l->index = i;
        l->backoff_ms = cfg->backoff_min_ms;
        buf_init(&l->in, PROTO_MAX_BODY_DEFAULT + PROTO_HDR_LEN + READ_CHUNK);
        buf_init(&l->out, 256u << 20);
        buf_init(&l->sending, 256u << 20);
        list_init(&l->dirty_node);
        uv_timer_init(&a->loop, &l->retry);
        l->retry.data = l;
    }
    a->threads = xcalloc(cfg->threads, sizeof(*a->threads));
    for (uint32_t i = 0; i < cfg->threads; i++) {
        if (pthread_create(&a->threads[i], NULL, pool_main, a) != 0)
            break;
        a->nthreads++;
    }
    if (a->nthreads == 0) {
        snprintf(err, errcap, "cannot start executor threads");
        peer_agent_free(a);
        return P2C2R_ENOMEM;
    }
    *out = a;
    return 0;
}

int peer_agent_run(struct peer_agent *a)
{
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        link_connect(&a->links[i]);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    return 0;
}

void peer_agent_stop(struct peer_agent *a) { uv_async_send(&a->stopper); }

void peer_agent_free(struct peer_agent *a)
{
    if (!a)
        return;
    if (!a->stopping)
        begin_stop(a);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    struct list_node *n;
    while ((n = list_pop_front(&a->pending)) != NULL)
        job_free(list_entry(n, struct job, node));
    while ((n = list_pop_front(&a->done)) != NULL)
        job_free(list_entry(n, struct job, node));
    for (uint32_t i = 0; i < a->cfg.connections; i++) {
        buf_fini(&a->links[i].in);
        buf_fini(&a->links[i].out);
        buf_fini(&a->links[i].sending);
    }
    while ((n = list_pop_front(&a->blobs)) != NULL) {
        struct pblob *b = list_entry(n, struct pblob, node);
        free(b->data);
        free(b);
    }
    free(a->links);
    free(a->threads);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cv);
    free(a);
}
