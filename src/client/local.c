/* local.c - libp2c2r's local fallback: the game itself is the last step of the fallback
 * order (first peer, another peer, the operator's machines, the game).  While the
 * coordinator is unreachable, or when it refuses a task it cannot run in time (EDEADLINE),
 * at all (EUNSUPPORTED) or now (EQUEUEFULL), tasks of the built-in types run here, in the caller's thread,
 * inside the calls that make progress, within local_us of wall time per frame of
 * local_frame_us (include/p2c2r/client.h, "Local fallback").
 *
 * Invariants:
 * - an entry is on c->localq exactly while lwait is set; it is incomplete then, counted in
 *   ninflight and nlocal, and it leaves the queue exactly once, completed: by its run (OK
 *   or the executor's error), ETIMEDOUT, ECANCELLED, or lerr when it never fits;
 * - only entries with a kept body (local_keep) are ever queued, so a local run needs no
 *   state of the caller's: the body is the task as encoded for SUBMIT;
 * - local_blocked is set after a local_run that left tasks waiting (none of them can start
 *   in this frame) and cleared by a new one; local_wake_us is then the next frame or the
 *   first waiting task's end by its deadline, so local_next_us needs no scan;
 * - a frame never starts a task whose estimate is over what is left of its budget (a task
 *   with no estimate, or a probe of up to LOCAL_PROBE_MULT budgets, only as a frame's first,
 *   and a probe as its only one): the budget is exceeded only by as much as an estimate was
 *   wrong, or once a second per refused type by a probe. */
#include "client/local.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "client/client_int.h"
#include "common/util.h"
#include "tasks/task_cost.h"
#include "tasks/tasks.h"

#define LOCAL_DEFAULT_DEADLINE_MS 60000u /* the coordinator's default (docs/PROTOCOL.md 12) */
/* A type whose every task was over the budget by its estimate for this long
 * runs one whose estimate is at most LOCAL_PROBE_MULT budgets, as a frame's
 * only task: refusals teach nothing, so a stale estimate (learned under a
 * load spike) would otherwise keep the type out for good. */
#define LOCAL_PROBE_AFTER_US 1000000u
#define LOCAL_PROBE_MULT 4

/* A blob's bytes, kept (local_blob_keep). */
struct lblob {
    uint8_t hash[PROTO_HASH_LEN];
    uint8_t *data;
    size_t len;
    struct lblob *next; /* older */
};

static const struct lblob *lblob_find(const p2c2r_client *c, const uint8_t *hash)
{
    for (const struct lblob *b = c->lblobs; b; b = b->next)
        if (memcmp(b->hash, hash, PROTO_HASH_LEN) == 0)
            return b;
    return NULL;
}

void local_blob_keep(p2c2r_client *c, const void *data, size_t len)
{
    uint8_t h[PROTO_HASH_LEN];
    unsigned hl = 0;
    if (!c->local_us || len > LOCAL_BLOB_BYTES ||
        EVP_Digest(len ? data : "", len, h, &hl, EVP_sha256(), NULL) != 1 || lblob_find(c, h))
        return;
    struct lblob *b = malloc(sizeof(*b));
    if (!b || !(b->data = malloc(len ? len : 1))) {
        free(b);
        return;
    }
    memcpy(b->hash, h, PROTO_HASH_LEN);
    if (len)
        memcpy(b->data, data, len);
    b->len = len;
    b->next = c->lblobs;
    c->lblobs = b;
    c->lblob_bytes += len;
    /* Over the cap: the oldest go (a task that needs one then fails as
     * without the fallback, or is refused at submit). */
    while (c->lblob_bytes > LOCAL_BLOB_BYTES) {
        struct lblob **pp = &c->lblobs;
        while ((*pp)->next)
            pp = &(*pp)->next;
        c->lblob_bytes -= (*pp)->len;
        free((*pp)->data);
        free(*pp);
        *pp = NULL;
    }
}

/* A prepared object of a local run (p2c2r_exec_prepared_put). */
struct lprep {
    const void *scope; /* its executor */
    uint8_t key[32];
    void *obj;
    size_t bytes;
    p2c2r_prepared_free_fn free_fn;
    struct lprep *next; /* less recently used */
};

/* Finds (scope, key) and makes it the most recently used. */
static struct lprep *lprep_find(p2c2r_client *c, const void *scope, const uint8_t key[32])
{
    for (struct lprep **pp = &c->lpreps; *pp; pp = &(*pp)->next) {
        struct lprep *p = *pp;
        if (p->scope == scope && memcmp(p->key, key, 32) == 0) {
            *pp = p->next;
            p->next = c->lpreps;
            c->lpreps = p;
            return p;
        }
    }
    return NULL;
}

static const void *lprep_get(struct p2c2r_exec_call *call, const uint8_t key[32])
{
    p2c2r_client *c = call->prepared_opaque;
    struct lprep *p = lprep_find(c, c->lrun_scope, key);
    return p ? p->obj : NULL;
}

/* Single-threaded: no other put can race this one, and nothing is evicted
 * while the run that may hold objects goes on (lprep_trim runs after it). */
static int lprep_put(struct p2c2r_exec_call *call, const uint8_t key[32], void *obj, size_t bytes,
                     p2c2r_prepared_free_fn free_fn, const void **out)
{
    p2c2r_client *c = call->prepared_opaque;
    if (bytes > LOCAL_PREPARED_BYTES)
        return P2C2R_ETOOBIG;
    struct lprep *p = lprep_find(c, c->lrun_scope, key);
    if (p) {
        free_fn(obj);
        *out = p->obj;
        return 0;
    }
    if (!(p = malloc(sizeof(*p))))
        return P2C2R_ENOMEM;
    p->scope = c->lrun_scope;
    memcpy(p->key, key, 32);
    p->obj = obj;
    p->bytes = bytes;
    p->free_fn = free_fn;
    p->next = c->lpreps;
    c->lpreps = p;
    c->lprep_bytes += bytes;
    c->lrun_derived = 1;
    *out = obj;
    return 0;
}

/* Evicts the least recently used prepared objects down to limit bytes. */
static void lprep_trim(p2c2r_client *c, size_t limit)
{
    while (c->lprep_bytes > limit && c->lpreps) {
        struct lprep **pp = &c->lpreps;
        while ((*pp)->next)
            pp = &(*pp)->next;
        struct lprep *p = *pp;
        *pp = NULL;
        c->lprep_bytes -= p->bytes;
        p->free_fn(p->obj);
        free(p);
    }
}

void local_blobs_free(p2c2r_client *c)
{
    lprep_trim(c, 0);
    while (c->lblobs) {
        struct lblob *n = c->lblobs->next;
        free(c->lblobs->data);
        free(c->lblobs);
        c->lblobs = n;
    }
    c->lblob_bytes = 0;
}

/* Resolves the nblobs hashes at h (PROTO_HASH_LEN each) into out; 0, or -1
 * when one is not kept. */
static int blobs_resolve(const p2c2r_client *c, const uint8_t *h, size_t nblobs, struct p2c2r_blob *out)
{
    for (size_t i = 0; i < nblobs; i++) {
        const struct lblob *b = lblob_find(c, h + i * PROTO_HASH_LEN);
        if (!b)
            return -1;
        memcpy(out[i].hash, b->hash, PROTO_HASH_LEN);
        out[i].data = b->data;
        out[i].len = b->len;
    }
    return 0;
}

int local_capable(const p2c2r_client *c, const struct p2c2r_task *t)
{
    struct p2c2r_blob bl[PROTO_MAX_BLOBS];
    return c->local_us && t->nblobs <= PROTO_MAX_BLOBS && !t->need_gpu && !t->min_cores &&
           !t->min_mem_bytes && tasks_find(t->type, strlen(t->type)) != NULL &&
           blobs_resolve(c, (const uint8_t *)t->blobs, t->nblobs, bl) == 0;
}

int local_keep(p2c2r_client *c, struct entry *e, const struct p2c2r_task *t, size_t body_len,
               void (*put)(uint8_t *b, const struct p2c2r_task *t))
{
    e->lbody = malloc(body_len ? body_len : 1);
    if (!e->lbody)
        return P2C2R_ENOMEM;
    put(e->lbody, t);
    e->lbody_len = (uint32_t)body_len;
    struct p2c2r_blob bl[PROTO_MAX_BLOBS];
    int held = blobs_resolve(c, (const uint8_t *)t->blobs, t->nblobs, bl) == 0; /* local_capable said so */
    e->cost = tasks_estimate(t->type, strlen(t->type), t->params, t->params_len, t->input, t->input_len,
                             held ? bl : NULL, held ? t->nblobs : 0);
    return 0;
}

void local_drop(struct entry *e)
{
    free(e->lbody);
    e->lbody = NULL;
    e->lbody_len = 0;
}

/* Moves a type's time per cost unit towards a sample: the first sets it, then each moves it
 * a quarter of the way in log space, the ratio clamped to 1/2..2: quick to follow a change of
 * machine (from the peers' to this one's, about 19% a sample), while one freak run (a
 * preempted thread, a peer's forged exec_us) cannot push a type over the budget at once. */
static void rate_add(double *rate, uint64_t us, uint64_t cost)
{
    double r = (double)(us ? us : 1) / (double)(cost ? cost : 1);
    if (*rate <= 0) {
        *rate = r;
        return;
    }
    double q = r / *rate;
    q = q < 0.5 ? 0.5 : q > 2 ? 2 : q;
    *rate *= pow(q, 0.25);
}

void local_learn_delivered(p2c2r_client *c, const struct entry *e, uint32_t exec_us)
{
    if (e->lbody && e->ctype_ix >= 0)
        rate_add(&c->types[e->ctype_ix].local_rate, exec_us, e->cost);
}

int local_takes_refusal(int st)
{
    return st == P2C2R_EDEADLINE || st == P2C2R_EUNSUPPORTED || st == P2C2R_EQUEUEFULL;
}

/* Why e waits to run here, for the texts of its outcome when it does not. */
static const char *local_why(const struct entry *e)
{
    switch (e->lerr) {
    case P2C2R_EDEADLINE: return "the coordinator refused it (it would miss its deadline on the peers)";
    case P2C2R_EUNSUPPORTED: return "the coordinator refused it (no peer runs its type)";
    case P2C2R_EQUEUEFULL: return "the coordinator refused it (its queues are full)";
    default: return "the coordinator is unreachable";
    }
}

void local_enqueue(p2c2r_client *c, struct entry *e, int err)
{
    e->lwait = 1;
    e->lerr = err;
    list_push_back(&c->localq, &e->lnode);
    c->nlocal++;
    c->local_blocked = 0;
}

/* Takes e off the queue and completes it with status and an error text: why it waited
 * (local_why), then text. */
static void local_end(p2c2r_client *c, struct entry *e, int status, const char *text)
{
    char msg[256];
    snprintf(msg, sizeof(msg), "%s%s", local_why(e), text);
    text = msg;
    list_remove(&e->lnode);
    e->lwait = 0;
    c->nlocal--;
    c->failing = 1; /* not the coordinator's outcome: counted as lost, not as its answer */
    entry_complete(c, e, status, text, strlen(text), 0, 0, 0, 0); /* it did not run here */
    c->failing = 0;
}

int local_cancel(p2c2r_client *c, struct entry *e)
{
    if (!e->lwait)
        return 0;
    local_end(c, e, P2C2R_ECANCELLED, ", and it was cancelled while waiting to run locally");
    return 1;
}

/* Runs e now; completes it with the executor's outcome. */
static void local_exec(p2c2r_client *c, struct entry *e, const struct p2c2r_executor *ex,
                       const struct msg_task *m)
{
    char err[256] = "";
    struct p2c2r_blob bl[PROTO_MAX_BLOBS];
    if (blobs_resolve(c, m->blobs, m->nblobs, bl) != 0) {
        local_end(c, e, e->lerr, ", and a blob of the task is no longer kept for local runs");
        return;
    }
    struct tasks_out o = {NULL, 0, c->max_result};
    struct p2c2r_exec_call call = {
        .input = m->input.p,
        .input_len = m->input.len,
        .params = (const char *)m->params.p,
        .params_len = m->params.len,
        .alloc_output = tasks_out_alloc,
        .opaque = &o,
        .err = err,
        .err_cap = sizeof(err),
        .blobs = bl,
        .nblobs = m->nblobs,
        .prepared_get = lprep_get,
        .prepared_put = lprep_put,
        .prepared_opaque = c,
    };
    c->lrun_scope = ex;
    c->lrun_derived = 0;
    uint64_t t0 = now_us();
    int rc = m->input.len > ex->max_input ? P2C2R_ETOOBIG : 0;
    if (rc == 0 && ex->check)
        rc = ex->check(&call);
    if (rc == 0)
        rc = ex->run(&call);
    if (rc == 0 && !o.p)
        rc = P2C2R_ENOMEM;
    uint64_t t1 = now_us(), us = t1 - t0;
    lprep_trim(c, LOCAL_PREPARED_BYTES);
    c->local_spent += us;
    /* A run that derived prepared state (parsed a map once) is not what the
     * next runs of the type will take: it teaches nothing. */
    if (rc == 0 && e->ctype_ix >= 0 && !c->lrun_derived)
        rate_add(&c->types[e->ctype_ix].local_rate, us, e->cost);
    uint32_t exec_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    list_remove(&e->lnode);
    e->lwait = 0;
    c->nlocal--;
    c->failing = 1;
    if (rc == 0) {
        o.p[o.n] = '\0';
        e->res.output = o.p;
        e->res.output_len = o.n;
        entry_finish(c, e, 0, exec_us, 0, 0, P2C2R_RESULT_LOCAL);
    } else {
        free(o.p);
        if (!err[0])
            snprintf(err, sizeof(err), "%s", p2c2r_strerror(rc));
        entry_complete(c, e, rc, err, strlen(err), exec_us, 0, 0, P2C2R_RESULT_LOCAL);
    }
    c->failing = 0;
}

int local_run(p2c2r_client *c)
{
    if (!c->nlocal)
        return 0;
    int done = 0;
    uint64_t now = now_us();
    if (now - c->local_frame_start >= c->local_frame_us) {
        c->local_frame_start = now;
        c->local_spent = 0;
    }
    uint64_t wake = c->local_frame_start + c->local_frame_us;
    struct list_node *n = c->localq.next;
    while (n != &c->localq) {
        struct entry *e = list_entry(n, struct entry, lnode);
        n = n->next;
        double rate = e->ctype_ix >= 0 ? c->types[e->ctype_ix].local_rate : 0;
        double est = rate > 0 ? (double)e->cost * rate : 0;
        uint64_t dl = e->submit_us + (uint64_t)(e->deadline_ms ? e->deadline_ms : LOCAL_DEFAULT_DEADLINE_MS) * 1000;
        uint64_t *refused = e->ctype_ix >= 0 ? &c->types[e->ctype_ix].local_refused_since : NULL;
        int probe = est > (double)c->local_us && refused && *refused && now - *refused >= LOCAL_PROBE_AFTER_US &&
                    est <= (double)c->local_us * LOCAL_PROBE_MULT && c->local_spent == 0 && now + est <= dl;
        if (est > (double)c->local_us && !probe) {
            if (refused && !*refused)
                *refused = now;
            local_end(c, e, e->lerr, ", and the task does not fit the local fallback's budget per frame");
            done++;
            continue;
        }
        if (now >= dl || (double)now + est > (double)dl) {
            local_end(c, e, P2C2R_ETIMEDOUT, ", and its deadline passed (or would, by its estimate) before it "
                                             "could run locally");
            done++;
            continue;
        }
        int fits = probe || (rate > 0 ? (double)c->local_spent + est <= (double)c->local_us : c->local_spent == 0);
        if (!fits) {
            /* A later, smaller task may still fit this frame; this one waits
             * for the next, or ends at its deadline (or when its estimate
             * would pass it), whichever comes first. */
            uint64_t end = dl - (uint64_t)(est < (double)(dl - now) ? est : 0);
            if (end < wake)
                wake = end;
            continue;
        }
        /* Parsed only now: a task that waits costs no parse per call. */
        struct msg_task m;
        const struct p2c2r_executor *ex = NULL;
        if (proto_parse_task(e->lbody, e->lbody_len, &m) == 0)
            ex = tasks_find((const char *)m.type.p, m.type.len);
        if (!ex) { /* cannot happen: local_keep kept a built-in task it encoded itself */
            local_end(c, e, e->lerr, ", and it cannot run locally");
            done++;
            continue;
        }
        if (refused)
            *refused = 0; /* it runs: what it takes teaches the type again */
        local_exec(c, e, ex, &m);
        done++;
        now = now_us();
        if (probe)
            c->local_spent = c->local_us; /* a probe is the frame's only task */
    }
    /* What is left cannot start before wake (the next frame, or a deadline
     * to report), so a loop that follows timeout_ms sleeps until then. */
    c->local_blocked = c->nlocal > 0;
    c->local_wake_us = wake;
    return done;
}

uint64_t local_next_us(const p2c2r_client *c)
{
    if (!c->nlocal)
        return UINT64_MAX;
    return c->local_blocked ? c->local_wake_us : 0;
}
