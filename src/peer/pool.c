/* pool.c - running tasks: the executor threads, their jobs, inline runs.
 *
 * An ASSIGN is checked on the loop thread (type, version, input size, blobs,
 * the executor's own check).  A cheap executor on a small input then runs
 * right there, writing its output straight into the link's output buffer;
 * anything else becomes a job: an owned copy of the task body, queued on
 * pending for a worker thread, which runs it into a RESULT frame of its own
 * and moves it to done, waking the loop once per batch.  The loop hands each
 * finished frame to its link (link_job_done) and frees the job.
 *
 * Cancel.  A CANCEL for a queued job marks it (it answers ECANCELLED without
 * running); for a running job it sets the job's cancel flag, which the
 * executor polls (p2c2r_exec_cancelled) and answers ECANCELLED within about
 * a millisecond of work.  Either way the job still answers, as the protocol
 * requires.  The pool counts jobs cancelled while running and the executor
 * time they used after the cancel (pool_stats).
 *
 * Prepared state.  A job's call reaches the peer's prepared-state cache
 * (prepared.h) through its prepared_get/put hooks, scoped to its executor;
 * the entries a call took are released when run returns.
 *
 * Invariants: a job is on exactly one of pending, running, or done; the
 * lists, a job's cancelled and cancel_at_us, and the counters change only
 * under mu; a job pins the blobs it references until it is freed on the loop
 * thread, so a worker reads blob bytes that cannot be evicted; every ASSIGN
 * produces one RESULT (inline, refusal, or job), and a cancelled job still
 * answers (ECANCELLED) so the coordinator's count of the link's tasks stays
 * right. */
#include "peer/peer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "p2c2r/error.h"
#include "peer/prepared.h"

/* Prepared entries one call may hold at once (a map, a scene, ...). */
#define JOB_HELD_MAX 8

struct job {
    struct list_node node;
    struct link *link;
    uint32_t session;
    uint64_t task_id;
    const struct p2c2r_executor *ex;
    uint8_t *body; /* owned copy of the task body */
    struct msg_task task;
    int cancelled;       /* under mu: answer ECANCELLED without running */
    int cancel_flag;     /* the executor's cancel flag (atomic) */
    uint64_t cancel_at_us; /* under mu: when a CANCEL reached it while running, else 0 */
    struct pool *pool;
    uint32_t nheld;      /* prepared entries the running call holds */
    struct prep_entry *held[JOB_HELD_MAX];
    int status;
    uint32_t exec_us;
    uint8_t *frame; /* RESULT frame: header, prefix, output */
    size_t frame_len;
    uint32_t max_output;
    char err[200];
    uint32_t nblobs;
    struct pblob *pb[PROTO_MAX_BLOBS]; /* pinned until the job is freed */
    struct p2c2r_blob blobs[PROTO_MAX_BLOBS];
};

/* ---- jobs (on a worker thread) ---------------------------------------------- */

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

static const void *job_prepared_get(struct p2c2r_exec_call *call, const uint8_t key[32])
{
    struct job *j = call->prepared_opaque;
    if (!j->pool->prep || j->nheld == JOB_HELD_MAX)
        return NULL;
    struct prep_entry *e = prep_get(j->pool->prep, j->ex, key);
    if (!e)
        return NULL;
    j->held[j->nheld++] = e;
    return prep_entry_obj(e);
}

static int job_prepared_put(struct p2c2r_exec_call *call, const uint8_t key[32], void *obj,
                            size_t bytes, p2c2r_prepared_free_fn free_fn, const void **out)
{
    struct job *j = call->prepared_opaque;
    struct prep_entry *e;
    if (!j->pool->prep)
        return P2C2R_EUNSUPPORTED;
    if (j->nheld == JOB_HELD_MAX)
        return P2C2R_ETOOBIG;
    int rc = prep_put(j->pool->prep, j->ex, key, obj, bytes, free_fn, &e);
    if (rc != 0)
        return rc;
    j->held[j->nheld++] = e;
    *out = prep_entry_obj(e);
    return 0;
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
            .cancel = &j->cancel_flag,
            .prepared_get = job_prepared_get,
            .prepared_put = job_prepared_put,
            .prepared_opaque = j,
        };
        uint64_t t0 = now_us();
        int rc = j->ex->run(&call);
        j->exec_us = (uint32_t)(now_us() - t0);
        for (uint32_t i = 0; i < j->nheld; i++)
            prep_release(j->pool->prep, j->held[i]);
        j->nheld = 0;
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
    struct pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (list_empty(&p->pending) && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop)
            break;
        struct job *j = list_entry(list_pop_front(&p->pending), struct job, node);
        list_push_back(&p->running, &j->node);
        pthread_mutex_unlock(&p->mu);
        LOG_D("job_start", "task=%" PRIu64 " type=%s", j->task_id, j->ex->name);
        job_run(j);
        uint64_t end = now_us();
        LOG_D("job_end", "task=%" PRIu64 " type=%s status=%d exec_us=%" PRIu32, j->task_id,
              j->ex->name, j->status, j->exec_us);
        pthread_mutex_lock(&p->mu);
        list_remove(&j->node);
        if (j->cancel_at_us) {
            p->st.cancelled_running++;
            p->st.cancelled_stopped += j->status == P2C2R_ECANCELLED;
            p->st.cancel_wasted_us += end > j->cancel_at_us ? end - j->cancel_at_us : 0;
        }
        int was_empty = list_empty(&p->done);
        list_push_back(&p->done, &j->node);
        pthread_mutex_unlock(&p->mu);
        /* One wake-up per batch: the loop drains the whole list. */
        if (was_empty)
            uv_async_send(&p->wake);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* ---- the loop's side -------------------------------------------------------- */

static void job_free(struct job *j)
{
    for (uint32_t i = 0; i < j->nblobs; i++)
        j->pb[i]->refs--;
    free(j->body);
    free(j->frame);
    free(j);
}

static void on_wake(uv_async_t *h)
{
    struct pool *p = h->data;
    struct list_node done;
    list_init(&done);
    pthread_mutex_lock(&p->mu);
    if (!list_empty(&p->done)) {
        /* Move the whole list in O(1). */
        done.next = p->done.next;
        done.prev = p->done.prev;
        done.next->prev = &done;
        done.prev->next = &done;
        list_init(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    struct list_node *n;
    while ((n = list_pop_front(&done)) != NULL) {
        struct job *j = list_entry(n, struct job, node);
        link_job_done(j->link, j->session, j->status, j->frame, j->frame_len);
        job_free(j);
    }
}

int pool_init(struct pool *p, uv_loop_t *loop, uint32_t nthreads, struct prep_cache *prep)
{
    uv_async_init(loop, &p->wake, on_wake);
    p->wake.data = p;
    p->prep = prep;
    memset(&p->st, 0, sizeof(p->st));
    list_init(&p->pending);
    list_init(&p->running);
    list_init(&p->done);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->stop = 0;
    p->nthreads = 0;
    p->threads = xcalloc(nthreads, sizeof(*p->threads));
    for (uint32_t i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p) != 0)
            break;
        p->nthreads++;
    }
    return p->nthreads ? 0 : P2C2R_ENOMEM;
}

void pool_stop(struct pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (uint32_t i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    p->nthreads = 0;
    uv_close((uv_handle_t *)&p->wake, NULL);
}

void pool_fini(struct pool *p)
{
    struct list_node *n;
    while ((n = list_pop_front(&p->pending)) != NULL)
        job_free(list_entry(n, struct job, node));
    while ((n = list_pop_front(&p->done)) != NULL)
        job_free(list_entry(n, struct job, node));
    free(p->threads);
    p->threads = NULL;
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
}

/* Under mu: cancels job j, queued or running. */
static void job_cancel(struct pool *p, struct job *j, uint64_t now, int running)
{
    if (!running) {
        if (!j->cancelled)
            p->st.cancelled_queued++;
        j->cancelled = 1;
        return;
    }
    if (!j->cancel_at_us) {
        j->cancel_at_us = now ? now : 1;
        __atomic_store_n(&j->cancel_flag, 1, __ATOMIC_RELAXED);
        LOG_D("job_cancel_running", "task=%" PRIu64 " type=%s", j->task_id, j->ex->name);
    }
}

/* Cancels l's jobs (all of them, or only task_id's when one is 1). */
static void cancel_matching(struct pool *p, const struct link *l, int one, uint64_t task_id)
{
    uint64_t now = now_us();
    pthread_mutex_lock(&p->mu);
    for (int running = 0; running < 2; running++) {
        struct list_node *h = running ? &p->running : &p->pending;
        for (struct list_node *n = h->next; n != h; n = n->next) {
            struct job *j = list_entry(n, struct job, node);
            if (j->link == l && (!one || j->task_id == task_id))
                job_cancel(p, j, now, running);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

void pool_cancel(struct pool *p, const struct link *l, uint64_t task_id)
{
    cancel_matching(p, l, 1, task_id);
}

void pool_cancel_link(struct pool *p, const struct link *l) { cancel_matching(p, l, 0, 0); }

void pool_stats(struct pool *p, struct pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    pthread_mutex_unlock(&p->mu);
}

/* ---- ASSIGN ----------------------------------------------------------------- */

/* A cheap executor's run on the loop thread: its output is reserved in the
 * link's output buffer, behind room for the RESULT header. */
struct inline_ctx {
    struct link *l;
    uint64_t task_id;
    uint8_t *frame; /* reserved in l's output */
    size_t out_len;
    uint32_t max_output;
};

static void *inline_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct inline_ctx *c = call->opaque;
    if (c->frame || n > c->max_output)
        return NULL;
    c->frame = link_reserve(c->l, PROTO_HDR_LEN + PROTO_RESULT_PREFIX + n);
    if (!c->frame)
        return NULL;
    c->out_len = n;
    return c->frame + PROTO_HDR_LEN + PROTO_RESULT_PREFIX;
}

static void run_inline(struct link *l, uint64_t task_id, const struct p2c2r_executor *ex,
                       struct p2c2r_exec_call *call)
{
    struct inline_ctx ic = {l, task_id, NULL, 0, l->max_output};
    call->alloc_output = inline_alloc;
    call->opaque = &ic;
    uint64_t t0 = now_us();
    int rc = ex->run(call);
    uint32_t us = (uint32_t)(now_us() - t0);
    if (rc == 0 && ic.frame) {
        proto_put_hdr(ic.frame, MSG_RESULT, 0, task_id, (uint32_t)(PROTO_RESULT_PREFIX + ic.out_len));
        proto_put_result_head(ic.frame + PROTO_HDR_LEN, 0, us);
        link_commit(l, PROTO_HDR_LEN + PROTO_RESULT_PREFIX + ic.out_len);
        l->done++;
    } else {
        link_send_result_text(l, task_id, rc ? rc : P2C2R_ETASK,
                              call->err[0] ? call->err : p2c2r_strerror(rc ? rc : P2C2R_ETASK));
    }
}

int pool_assign(struct link *l, const struct frame_hdr *h, const uint8_t *body)
{
    struct peer_agent *a = l->a;
    struct msg_task t;
    char err[200];
    if (proto_parse_task(body, h->body_len, &t) != 0) {
        link_send_result_text(l, h->req_id, P2C2R_EPROTO, "malformed task body");
        return 0;
    }
    const struct p2c2r_executor *ex = peer_find_executor(a, &t.type);
    if (!ex) {
        snprintf(err, sizeof(err), "task type '%.*s' not served by this peer", (int)t.type.len,
                 (const char *)t.type.p);
        link_send_result_text(l, h->req_id, P2C2R_EUNSUPPORTED, err);
        return 0;
    }
    if (t.min_version > ex->version) {
        snprintf(err, sizeof(err), "task needs %s >= v%u, this peer has v%u", ex->name,
                 t.min_version, ex->version);
        link_send_result_text(l, h->req_id, P2C2R_EUNSUPPORTED, err);
        return 0;
    }
    if (t.input.len > ex->max_input) {
        snprintf(err, sizeof(err), "input of %zu bytes over %s's limit of %zu", t.input.len,
                 ex->name, ex->max_input);
        link_send_result_text(l, h->req_id, P2C2R_ETOOBIG, err);
        return 0;
    }
    struct pblob *pb[PROTO_MAX_BLOBS];
    struct p2c2r_blob blobs[PROTO_MAX_BLOBS];
    if (pblob_resolve(&a->blobs, &t, pb, err, sizeof(err)) != 0) {
        link_send_result_text(l, h->req_id, P2C2R_ENOBLOB, err);
        return 0;
    }
    for (uint32_t i = 0; i < t.nblobs; i++) {
        memcpy(blobs[i].hash, pb[i]->hash, PROTO_HASH_LEN);
        blobs[i].data = pb[i]->data;
        blobs[i].len = pb[i]->len;
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
            link_send_result_text(l, h->req_id, rc, err[0] ? err : p2c2r_strerror(rc));
            return 0;
        }
    }
    if ((ex->flags & P2C2R_EXEC_CHEAP) && t.input.len <= P2C2R_EXEC_INLINE_MAX) {
        run_inline(l, h->req_id, ex, &call);
        return 0;
    }
    struct job *j = calloc(1, sizeof(*j));
    uint8_t *copy = malloc(h->body_len ? h->body_len : 1);
    if (!j || !copy) {
        free(j);
        free(copy);
        link_send_result_text(l, h->req_id, P2C2R_ENOMEM, "peer out of memory");
        return 0;
    }
    memcpy(copy, body, h->body_len);
    j->body = copy;
    proto_parse_task(copy, h->body_len, &j->task);
    j->link = l;
    j->session = l->session;
    j->task_id = h->req_id;
    j->ex = ex;
    j->pool = &a->pool;
    j->max_output = l->max_output;
    j->nblobs = j->task.nblobs;
    for (uint32_t i = 0; i < j->nblobs; i++) {
        j->pb[i] = pb[i];
        j->blobs[i] = blobs[i];
        pb[i]->refs++;
    }
    l->inflight++;
    pthread_mutex_lock(&a->pool.mu);
    list_push_back(&a->pool.pending, &j->node);
    pthread_cond_signal(&a->pool.cv);
    pthread_mutex_unlock(&a->pool.mu);
    return 0;
}
