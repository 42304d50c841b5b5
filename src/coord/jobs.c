/* jobs.c - durable jobs (jobs.h): the JOB_* messages, the job records, and
 * the group commit that makes an acknowledged job survive a crash.
 *
 * A job is a record (struct job) plus, until its outcome, a task in the
 * slab like any other, with t->job pointing back and no renter: it belongs
 * to no connection, so a renter that leaves does not end it, and any
 * connection of the same account (its credentials account, or its HELLO
 * name without a credentials file) can name it later.
 *
 * Invariants:
 * - A job is on js->pend exactly while it has a change (pend bits) not yet
 *   in the database; jobs_flush writes them all in one transaction, then
 *   sends the JOB_ACKs of the submits it wrote, in the same loop iteration
 *   as the submits arrived (so the connection pointers of acks are live).
 * - j->state is JOB_DONE only once the outcome is committed; before that a
 *   finished job reads as running, so nobody sees an outcome that a crash
 *   could take back and the job could change on its rerun.
 * - j->t is the job's task while it has no outcome and t->job == j; the
 *   outcome (jobs_on_outcome, through task_deliver) clears both.
 * - A job's blobs are in job_blobs (refs counting pending jobs) from its
 *   insert to its outcome, in the same transactions. */
#include "coord/jobs.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>
#include <xxhash.h>

#include "coord/ckpt.h"
#include "coord/coord_int.h"
#include "coord/jobs_int.h"
#include "coord/ledger.h"
#include "coord/walsync.h"

#define JOB_BUCKETS_MIN 1024u
#define RETENTION_SWEEP_MS 1000u

static const char *const jobs_sql[JS_N] = {
    [JS_BEGIN] = "BEGIN IMMEDIATE",
    [JS_COMMIT] = "COMMIT",
    [JS_ROLLBACK] = "ROLLBACK",
    [JS_INSERT] = "INSERT INTO jobs (id, account, ckey, type, body, submit_ms, deadline_ms, state, status,"
                  " attempts, exec_us, peer_id, flags, done_ms, result)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 0, 0, 0, 0, 0, 0, 0, NULL)",
    [JS_DONE] = "UPDATE jobs SET state = 1, status = ?2, attempts = ?3, exec_us = ?4, peer_id = ?5,"
                " flags = ?6, done_ms = ?7, result = ?8 WHERE id = ?1",
    [JS_DELETE] = "DELETE FROM jobs WHERE id = ?1",
    [JS_RESULT] = "SELECT result FROM jobs WHERE id = ?1",
    [JS_BLOB_REF] = "UPDATE job_blobs SET refs = refs + 1 WHERE hash = ?1",
    [JS_BLOB_ADD] = "INSERT INTO job_blobs (hash, data, refs) VALUES (?1, ?2, 1)",
    [JS_BLOB_UNREF] = "UPDATE job_blobs SET refs = refs - 1 WHERE hash = ?1",
    [JS_BLOB_GC] = "DELETE FROM job_blobs WHERE hash = ?1 AND refs <= 0",
    [JS_BLOB_GET] = "SELECT data FROM job_blobs WHERE hash = ?1",
    [JS_LOAD] = "SELECT id, account, ckey, type, body, submit_ms, deadline_ms, state, status, attempts,"
                " exec_us, peer_id, flags, done_ms, length(result) FROM jobs ORDER BY id",
};

/* ---- records ---- */

static size_t id_slot(const struct jobs *js, uint64_t id)
{
    return (size_t)(XXH3_64bits_withSeed(&id, sizeof(id), js->seed) & (js->nb - 1));
}

/* Whose jobs a connection may submit and name: its account with a
 * credentials file (so no connection can claim another's jobs), else its
 * HELLO name (without credentials every connection is an operator). */
const char *jobs_owner(const struct conn *c)
{
    return account_name(c);
}

static size_t key_slot(const struct jobs *js, const char *account, uint64_t key)
{
    return (size_t)((XXH3_64bits_withSeed(account, strlen(account), js->seed) ^ key * 0x9e3779b97f4a7c15ull) &
                    (js->nb - 1));
}

struct job *jobs_find(const struct jobs *js, uint64_t id)
{
    for (struct job *j = js->tab[id_slot(js, id)]; j; j = j->hnext)
        if (j->id == id)
            return j;
    return NULL;
}

struct job *jobs_find_key(const struct jobs *js, const char *account, uint64_t key)
{
    for (struct job *j = js->ktab[key_slot(js, account, key)]; j; j = j->knext)
        if (j->key == key && strcmp(j->acct->name, account) == 0)
            return j;
    return NULL;
}

static void job_hash(struct jobs *js, struct job *j)
{
    size_t s = id_slot(js, j->id);
    j->hnext = js->tab[s];
    js->tab[s] = j;
    if (j->key) {
        s = key_slot(js, j->acct->name, j->key);
        j->knext = js->ktab[s];
        js->ktab[s] = j;
    }
}

static void jobs_grow(struct jobs *js)
{
    size_t nb = js->nb;
    struct job **old = js->tab;
    free(js->ktab);
    js->nb = nb * 2;
    js->tab = xcalloc(js->nb, sizeof(*js->tab));
    js->ktab = xcalloc(js->nb, sizeof(*js->ktab));
    for (size_t i = 0; i < nb; i++) {
        struct job *j = old[i];
        while (j) {
            struct job *next = j->hnext;
            job_hash(js, j);
            j = next;
        }
    }
    free(old);
}

static struct acct *acct_get(struct jobs *js, const char *name)
{
    for (uint32_t i = 0; i < js->nacct; i++)
        if (strcmp(js->accts[i].name, name) == 0)
            return &js->accts[i];
    return NULL;
}

/* Accounts are few (one per renter name), and never removed: a linear
 * table whose entries do not move (jobs point at them) once it is sized. */
struct acct *jobs_acct_intern(struct jobs *js, const char *name)
{
    struct acct *a = acct_get(js, name);
    if (a)
        return a;
    if (js->nacct == js->acct_cap)
        return NULL;
    a = &js->accts[js->nacct++];
    snprintf(a->name, sizeof(a->name), "%s", name);
    return a;
}

struct job *jobs_job_new(struct jobs *js, uint64_t id, struct acct *a, uint64_t key)
{
    if ((js->n + 1) * 4 > js->nb * 3)
        jobs_grow(js);
    struct job *j = xcalloc(1, sizeof(*j));
    j->id = id;
    j->key = key;
    j->acct = a;
    list_init(&j->pnode);
    list_push_back(&js->all, &j->node);
    job_hash(js, j);
    js->n++;
    if (id >= js->next_id)
        js->next_id = id + 1;
    return j;
}

static void job_unhash(struct jobs *js, struct job *j)
{
    struct job **pp = &js->tab[id_slot(js, j->id)];
    while (*pp != j)
        pp = &(*pp)->hnext;
    *pp = j->hnext;
    if (j->key) {
        pp = &js->ktab[key_slot(js, j->acct->name, j->key)];
        while (*pp != j)
            pp = &(*pp)->knext;
        *pp = j->knext;
    }
}

void jobs_job_free(struct jobs *js, struct job *j)
{
    job_unhash(js, j);
    list_remove(&j->node);
    list_remove(&j->pnode);
    js->n--;
    free(j->out);
    free(j->body);
    free(j);
}

void jobs_mark(struct jobs *js, struct job *j, int bit)
{
    if (!j->pend)
        list_push_back(&js->pend, &j->pnode);
    j->pend |= (uint8_t)bit;
}

/* The state a renter sees. */
int jobs_job_state(const struct job *j)
{
    if (j->state == JOB_DONE)
        return JOB_DONE;
    return j->t && j->t->state == TS_QUEUED ? JOB_QUEUED : JOB_RUNNING;
}

/* ---- tasks ---- */

int jobs_blobs_present(struct coord *co, const struct msg_task *m)
{
    for (unsigned i = 0; i < m->nblobs; i++)
        if (!blob_find(co, m->blobs + i * PROTO_HASH_LEN))
            return 0;
    return 1;
}

/* Starts j's task from its body (parsed into m), due in dl_us. */
int jobs_job_start(struct coord *co, struct job *j, const struct msg_task *m, const uint8_t *body,
                   size_t len, uint64_t dl_us)
{
    int ti = type_intern(co, m->type.p, m->type.len);
    if (ti < 0)
        return P2C2R_ELIMIT;
    if (!jobs_blobs_present(co, m))
        return P2C2R_ENOBLOB;
    struct task *t = task_alloc(co);
    t->ticket = j->id;
    t->tt = (uint8_t)ti;
    t->prio = (uint8_t)(m->priority < PRIO_CLASSES ? m->priority : PRIO_BACKGROUND);
    t->kind = (m->flags & PROTO_TASK_F_REQS) ? 1 : 0;
    t->flags = m->flags;
    t->min_version = m->min_version;
    t->reqs = m->reqs;
    t->seq = ++co->seq;
    t->cost = task_submit_cost(co, m);
    t->submit_us = co->now;
    t->deadline_us = co->now + dl_us;
    t->urgent_us = t->deadline_us;
    t->body_len = (uint32_t)len;
    t->body = len <= TASK_INLINE ? t->small : xmalloc(len);
    memcpy(t->body, body, len);
    t->nblobs = m->nblobs;
    for (unsigned i = 0; i < m->nblobs; i++) {
        t->blobs[i] = blob_find(co, m->blobs + i * PROTO_HASH_LEN);
        blob_ref(t->blobs[i]);
    }
    t->job = j;
    j->t = t;
    heap_push(&co->dl, t, 1);
    if (!task_place(co, t))
        task_enqueue(co, t, 0);
    return 0;
}

void jobs_on_outcome(struct coord *co, struct task *t, int status, const uint8_t *out, size_t len,
                     uint32_t exec_us, uint32_t peer_id, uint32_t flags)
{
    struct job *j = t->job;
    assert(j && j->t == t && !j->finished);
    t->job = NULL;
    j->t = NULL;
    j->finished = 1;
    j->status = (uint16_t)(status < 0 ? -status : status);
    j->attempts = t->attempts;
    j->exec_us = exec_us;
    j->peer_id = peer_id;
    j->flags = flags;
    j->done_ms = wall_ms();
    j->out_len = (uint32_t)len;
    j->out = xmalloc(len ? len : 1);
    if (len)
        memcpy(j->out, out, len);
    jobs_mark(co->jobs, j, JP_DONE);
}

/* ---- group commit ---- */

static int jrun(struct coord *co, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : store_fail_note(co->store, rc);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return code;
}

/* The blob hashes of a stored body (checked when it was accepted). */
static int body_blobs(const uint8_t *body, size_t len, struct msg_task *m)
{
    return proto_parse_task(body, len, m);
}

static int write_new(struct coord *co, struct job *j)
{
    struct jobs *js = co->jobs;
    sqlite3_stmt *st = js->st[JS_INSERT];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
    sqlite3_bind_text(st, 2, j->acct->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)j->key);
    sqlite3_bind_text(st, 4, j->type, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 5, j->body, (int)j->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)j->submit_ms);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)j->deadline_ms);
    int rc = jrun(co, st);
    struct msg_task m;
    if (rc != 0 || body_blobs(j->body, j->body_len, &m) != 0)
        return rc ? rc : P2C2R_EPROTO;
    for (unsigned i = 0; i < m.nblobs && rc == 0; i++) {
        const uint8_t *h = m.blobs + i * PROTO_HASH_LEN;
        st = js->st[JS_BLOB_REF];
        sqlite3_bind_blob(st, 1, h, PROTO_HASH_LEN, SQLITE_STATIC);
        rc = jrun(co, st);
        if (rc != 0 || sqlite3_changes(js->db) > 0)
            continue;
        const struct blob *b = blob_find(co, h);
        if (!b)
            return P2C2R_ENOBLOB; /* referenced by a live task: cannot be evicted */
        st = js->st[JS_BLOB_ADD];
        sqlite3_bind_blob(st, 1, h, PROTO_HASH_LEN, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, b->data, (int)b->len, SQLITE_STATIC);
        rc = jrun(co, st);
    }
    return rc;
}

/* The outcome, and the job's blobs released (its body says which). */
static int write_done(struct coord *co, struct job *j)
{
    struct jobs *js = co->jobs;
    sqlite3_stmt *st = js->st[JS_DONE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
    sqlite3_bind_int(st, 2, j->status);
    sqlite3_bind_int(st, 3, j->attempts);
    sqlite3_bind_int64(st, 4, j->exec_us);
    sqlite3_bind_int64(st, 5, j->peer_id);
    sqlite3_bind_int64(st, 6, j->flags);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)j->done_ms);
    sqlite3_bind_blob(st, 8, j->out, (int)j->out_len, SQLITE_STATIC);
    int rc = jrun(co, st);
    /* The body: still in memory when the insert is in this transaction too. */
    const uint8_t *body = j->body;
    size_t blen = j->body_len;
    sqlite3_stmt *q = NULL;
    if (rc == 0 && !body) {
        if (sqlite3_prepare_v2(js->db, "SELECT body FROM jobs WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
            return store_fail_note(co->store, sqlite3_errcode(js->db));
        sqlite3_bind_int64(q, 1, (sqlite3_int64)j->id);
        if (sqlite3_step(q) == SQLITE_ROW) {
            body = sqlite3_column_blob(q, 0);
            blen = (size_t)sqlite3_column_bytes(q, 0);
        }
    }
    struct msg_task m;
    if (rc == 0 && body && body_blobs(body, blen, &m) == 0) {
        for (unsigned i = 0; i < m.nblobs && rc == 0; i++) {
            const uint8_t *h = m.blobs + i * PROTO_HASH_LEN;
            st = js->st[JS_BLOB_UNREF];
            sqlite3_bind_blob(st, 1, h, PROTO_HASH_LEN, SQLITE_TRANSIENT);
            rc = jrun(co, st);
            st = js->st[JS_BLOB_GC];
            sqlite3_bind_blob(st, 1, h, PROTO_HASH_LEN, SQLITE_TRANSIENT);
            if (rc == 0)
                rc = jrun(co, st);
        }
    }
    sqlite3_finalize(q);
    return rc;
}

static int write_del(struct coord *co, struct job *j)
{
    sqlite3_stmt *st = co->jobs->st[JS_DELETE];
    sqlite3_bind_int64(st, 1, (sqlite3_int64)j->id);
    return jrun(co, st);
}

static void ack_send(struct coord *co, struct ack *a)
{
    (void)co;
    uint8_t *b = conn_frame(a->c, MSG_JOB_ACK, 0, a->req_id, 4 + a->n * PROTO_JOB_ACK_ENTRY);
    if (!b) {
        if (a->c->state < CS_DRAINING)
            conn_fail(a->c, P2C2R_ELIMIT, "renter output over limit");
        return;
    }
    wr32(b, a->n);
    b += 4;
    for (uint32_t i = 0; i < a->n; i++, b += PROTO_JOB_ACK_ENTRY) {
        const struct ack_ent *e = &a->e[i];
        wr64(b, e->key);
        wr64(b + 8, e->j ? e->j->id : 0);
        wr16(b + 16, e->code);
        wr16(b + 18, e->flags);
    }
}

static void acks_send_list(struct coord *co, struct list_node *acks)
{
    struct list_node *n;
    while ((n = list_pop_front(acks)) != NULL) {
        struct ack *a = list_entry(n, struct ack, node);
        if (a->c)
            ack_send(co, a);
        free(a);
    }
}

static void acks_send(struct coord *co) { acks_send_list(co, &co->jobs->acks); }

static void acks_move(struct list_node *to, struct list_node *from)
{
    struct list_node *n;
    while ((n = list_pop_front(from)) != NULL)
        list_push_back(to, n);
}

void jobs_conn_gone(struct conn *c)
{
    struct jobs *js = c->co->jobs;
    if (!js)
        return;
    for (struct list_node *n = js->acks.next; n != &js->acks; n = n->next)
        if (list_entry(n, struct ack, node)->c == c)
            list_entry(n, struct ack, node)->c = NULL;
    for (struct list_node *bn = js->syncing.next; bn != &js->syncing; bn = bn->next) {
        struct batch *b = list_entry(bn, struct batch, node);
        for (struct list_node *n = b->acks.next; n != &b->acks; n = n->next)
            if (list_entry(n, struct ack, node)->c == c)
                list_entry(n, struct ack, node)->c = NULL;
    }
}

/* What a committed (and, with --job-sync full, synced) change makes true. */
static void job_apply(struct coord *co, struct job *j, int bits)
{
    struct jobs *js = co->jobs;
    if (bits & JP_NEW) {
        free(j->body);
        j->body = NULL;
        co->n.jobs_acked++;
    }
    if (bits & JP_DONE) {
        j->state = JOB_DONE;
        free(j->out);
        j->out = NULL;
        j->acct->pending--;
        js->npending--;
        js->ndone++;
        co->n.jobs_finished++;
    }
    if (bits & JP_DEL) {
        js->ndone--;
        co->n.jobs_deleted++;
        jobs_job_free(js, j);
    }
}

/* The disk has every commit up to generation gen: their changes apply and
 * their acks go, in commit order. */
static void on_synced(void *arg, uint64_t gen)
{
    struct coord *co = arg;
    struct jobs *js = co->jobs;
    while (!list_empty(&js->syncing)) {
        struct batch *b = list_entry(js->syncing.next, struct batch, node);
        if (b->gen > gen)
            break;
        list_remove(&b->node);
        for (size_t i = 0; i < b->n; i++) {
            b->e[i].j->sync_bits &= (uint8_t)~b->e[i].bits;
            job_apply(co, b->e[i].j, b->e[i].bits);
        }
        acks_send_list(co, &b->acks);
        free(b);
    }
}

/* Hands the changes just committed, and the acks, to the next fsync. */
static void batch_queue(struct coord *co)
{
    struct jobs *js = co->jobs;
    size_t n = 0;
    for (struct list_node *p = js->pend.next; p != &js->pend; p = p->next)
        n++;
    struct batch *b = xcalloc(1, sizeof(*b) + n * sizeof(b->e[0]));
    list_init(&b->acks);
    struct list_node *p;
    while ((p = list_pop_front(&js->pend)) != NULL) {
        struct job *j = list_entry(p, struct job, pnode);
        list_init(&j->pnode);
        b->e[b->n].j = j;
        b->e[b->n++].bits = j->pend;
        j->sync_bits |= j->pend;
        j->pend = 0;
    }
    acks_move(&b->acks, &js->acks);
    if (n)
        b->gen = ++js->gen;
    else
        b->gen = js->gen; /* acks only (refusals, known jobs): behind what is syncing */
    list_push_back(&js->syncing, &b->node);
    if (n)
        walsync_request(js->ws, b->gen);
}

void jobs_stop_sync(struct coord *co)
{
    struct jobs *js = co->jobs;
    if (!js || !js->ws)
        return;
    walsync_stop(js->ws); /* reports the last generation: every batch applies */
    js->ws = NULL;
}

/* The transaction failed: the jobs it would have inserted are refused
 * (their acks say EIO) and their tasks end without an outcome; outcomes
 * and deletions stay pending for the next flush. */
static void fail_new(struct coord *co)
{
    struct jobs *js = co->jobs;
    struct list_node *n = js->pend.next;
    while (n != &js->pend) {
        struct job *j = list_entry(n, struct job, pnode);
        n = n->next;
        if (!(j->pend & JP_NEW))
            continue;
        for (struct list_node *an = js->acks.next; an != &js->acks; an = an->next) {
            struct ack *a = list_entry(an, struct ack, node);
            for (uint32_t i = 0; i < a->n; i++)
                if (a->e[i].j == j) {
                    a->e[i].j = NULL;
                    a->e[i].code = (uint16_t)-P2C2R_EIO;
                    a->e[i].flags = 0;
                }
        }
        struct task *t = j->t;
        if (t) {
            t->job = NULL;
            j->t = NULL;
            task_end_early(co, t, P2C2R_EIO, "not stored");
        }
        if (!j->finished)
            j->acct->pending--;
        js->npending--;
        co->n.jobs_refused++;
        jobs_job_free(js, j);
    }
}

void jobs_flush(struct coord *co, int all)
{
    struct jobs *js = co->jobs;
    if (!js)
        return;
    int ledger = ledger_pending(co) && (all || !list_empty(&js->pend));
    if (list_empty(&js->pend) && !ledger) {
        if (list_empty(&js->acks))
            return;
        if (list_empty(&js->syncing))
            acks_send(co);
        else
            batch_queue(co); /* answers may name jobs whose insert waits for the disk */
        return;
    }
    int rc = jrun(co, js->st[JS_BEGIN]);
    for (struct list_node *n = js->pend.next; rc == 0 && n != &js->pend; n = n->next) {
        struct job *j = list_entry(n, struct job, pnode);
        if (rc == 0 && (j->pend & JP_NEW))
            rc = write_new(co, j);
        if (rc == 0 && (j->pend & JP_DONE))
            rc = write_done(co, j);
        if (rc == 0 && (j->pend & JP_DEL))
            rc = write_del(co, j);
    }
    if (rc == 0 && ledger)
        rc = ledger_write(co);
    if (rc == 0)
        rc = jrun(co, js->st[JS_COMMIT]);
    if (rc != 0) {
        if (!sqlite3_get_autocommit(js->db))
            (void)jrun(co, js->st[JS_ROLLBACK]);
        co->n.job_commit_errors++;
        LOG_W("jobs_commit_failed", "err=%s reason=\"%s\"", p2c2r_errname(rc), store_last_error(co->store));
        fail_new(co);
        acks_send(co);
        return;
    }
    co->n.job_commits++;
    if (ledger)
        ledger_committed(co);
    if (js->ws) {
        batch_queue(co);
        return;
    }
    struct list_node *n;
    while ((n = list_pop_front(&js->pend)) != NULL) {
        struct job *j = list_entry(n, struct job, pnode);
        list_init(&j->pnode);
        int bits = j->pend;
        j->pend = 0;
        job_apply(co, j, bits);
    }
    if (!list_empty(&js->syncing))
        on_synced(co, UINT64_MAX); /* the thread was stopped: its batches were synced */
    acks_send(co);
    if (co->cfg.job_sync_full && js->wal[0])
        (void)walsync_now(js->wal); /* after the loop: synced here */
}

void jobs_sweep(struct coord *co)
{
    struct jobs *js = co->jobs;
    if (!js || co->cfg.job_retention_s == 0)
        return;
    uint64_t now = wall_ms();
    if (now < js->sweep_at_ms)
        return;
    js->sweep_at_ms = now + RETENTION_SWEEP_MS;
    uint64_t keep = (uint64_t)co->cfg.job_retention_s * 1000;
    for (struct list_node *n = js->all.next; n != &js->all; n = n->next) {
        struct job *j = list_entry(n, struct job, node);
        if (j->state == JOB_DONE && !((j->pend | j->sync_bits) & JP_DEL) && j->done_ms + keep <= now)
            jobs_mark(js, j, JP_DEL);
    }
}

/* ---- open and close ---- */

/* Puts a stored blob into the blob store for a job loaded at start. */
static int load_blob(struct coord *co, const uint8_t *h)
{
    if (blob_find(co, h))
        return 0;
    sqlite3_stmt *st = co->jobs->st[JS_BLOB_GET];
    sqlite3_bind_blob(st, 1, h, PROTO_HASH_LEN, SQLITE_STATIC);
    int rc = P2C2R_ENOBLOB;
    if (sqlite3_step(st) == SQLITE_ROW) {
        uint8_t got[PROTO_HASH_LEN];
        rc = blob_store(co, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), got);
        if (rc == 0 && memcmp(got, h, PROTO_HASH_LEN) != 0)
            rc = P2C2R_EPROTO; /* the file was changed behind our back */
    }
    sqlite3_reset(st);
    return rc;
}

/* A job read at start: done ones are records; the others run again, due at
 * their deadline (wall clock); one whose task cannot be rebuilt gets that
 * as its outcome, committed at the first flush. */
static void load_row(struct coord *co, sqlite3_stmt *st, uint64_t now_ms)
{
    struct jobs *js = co->jobs;
    const char *account = (const char *)sqlite3_column_text(st, 1);
    struct acct *a = jobs_acct_intern(js, account ? account : "");
    if (!a)
        a = &js->accts[js->nacct - 1]; /* full: counted with the last one */
    struct job *j = jobs_job_new(js, (uint64_t)sqlite3_column_int64(st, 0), a, (uint64_t)sqlite3_column_int64(st, 2));
    snprintf(j->type, sizeof(j->type), "%s", (const char *)sqlite3_column_text(st, 3));
    j->submit_ms = (uint64_t)sqlite3_column_int64(st, 5);
    j->deadline_ms = (uint64_t)sqlite3_column_int64(st, 6);
    if (sqlite3_column_int(st, 7) == 1) {
        j->state = JOB_DONE;
        j->finished = 1;
        j->status = (uint16_t)sqlite3_column_int(st, 8);
        j->attempts = (uint16_t)sqlite3_column_int(st, 9);
        j->exec_us = (uint32_t)sqlite3_column_int64(st, 10);
        j->peer_id = (uint32_t)sqlite3_column_int64(st, 11);
        j->flags = (uint32_t)sqlite3_column_int64(st, 12);
        j->done_ms = (uint64_t)sqlite3_column_int64(st, 13);
        j->out_len = (uint32_t)sqlite3_column_int64(st, 14);
        js->ndone++;
        return;
    }
    a->pending++;
    js->npending++;
    const uint8_t *body = sqlite3_column_blob(st, 4);
    size_t len = (size_t)sqlite3_column_bytes(st, 4);
    struct msg_task m;
    int rc = body && proto_parse_task(body, len, &m) == 0 ? 0 : P2C2R_EPROTO;
    for (unsigned i = 0; rc == 0 && i < m.nblobs; i++)
        rc = load_blob(co, m.blobs + i * PROTO_HASH_LEN);
    uint64_t left_ms = j->deadline_ms > now_ms ? j->deadline_ms - now_ms : 1;
    if (rc == 0)
        rc = jobs_job_start(co, j, &m, body, len, left_ms * 1000);
    if (rc != 0) {
        char why[160];
        snprintf(why, sizeof(why), "job could not be restarted after the coordinator restarted: %s",
                 p2c2r_strerror(rc));
        struct task dummy;
        memset(&dummy, 0, sizeof(dummy));
        dummy.job = j;
        j->t = &dummy;
        jobs_on_outcome(co, &dummy, rc, (const uint8_t *)why, strlen(why), 0, 0, 0);
        LOG_W("job_restart_failed", "job=%" PRIu64 " err=%s", j->id, p2c2r_errname(rc));
    }
}

int jobs_open(struct coord *co, char *err, size_t errcap)
{
    if (!co->store)
        return 0;
    struct jobs *js = xcalloc(1, sizeof(*js));
    js->db = store_sqlite(co->store);
    js->nb = JOB_BUCKETS_MIN;
    js->tab = xcalloc(js->nb, sizeof(*js->tab));
    js->ktab = xcalloc(js->nb, sizeof(*js->ktab));
    js->seed = rng_next(&co->rng);
    js->next_id = 1;
    js->acct_cap = co->cfg.job_max_accounts;
    js->accts = xcalloc(js->acct_cap, sizeof(*js->accts));
    list_init(&js->all);
    list_init(&js->pend);
    list_init(&js->acks);
    list_init(&js->syncing);
    co->jobs = js;
    for (int i = 0; i < JS_N; i++) {
        int rc = sqlite3_prepare_v3(js->db, jobs_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &js->st[i], NULL);
        if (rc != SQLITE_OK) {
            snprintf(err, errcap, "jobs: cannot prepare a statement: %s", sqlite3_errmsg(js->db));
            jobs_close(co);
            return P2C2R_EIO;
        }
    }
    if (ckpt_start(js->db, &js->ckpt, err, errcap) != 0) {
        jobs_close(co);
        return P2C2R_EIO;
    }
    /* The store's synchronous=NORMAL keeps every commit across a crash of
     * the process; across a power loss it takes an fsync of the WAL, which
     * --job-sync full has a thread do before anything that depends on the
     * commit is answered (walsync.h). */
    snprintf(js->wal, sizeof(js->wal), "%s-wal", sqlite3_db_filename(js->db, "main"));
    if (co->cfg.job_sync_full && walsync_start(&co->loop, js->wal, on_synced, co, &js->ws, err, errcap) != 0) {
        jobs_close(co);
        return P2C2R_EIO;
    }
    uint64_t now_ms = wall_ms();
    sqlite3_stmt *st = js->st[JS_LOAD];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        load_row(co, st, now_ms);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        snprintf(err, errcap, "jobs: cannot read the jobs table: %s", sqlite3_errmsg(js->db));
        jobs_close(co);
        return P2C2R_EIO;
    }
    /* Ids are never reused, even those of jobs deleted since. */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(js->db, "SELECT max(id) FROM jobs", -1, &q, NULL) == SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(q, 0) >= js->next_id)
            js->next_id = (uint64_t)sqlite3_column_int64(q, 0) + 1;
        sqlite3_finalize(q);
    }
    if (js->n)
        LOG_I("jobs_loaded", "jobs=%zu pending=%" PRIu64 " done=%" PRIu64, js->n, js->npending, js->ndone);
    return ledger_open(co, err, errcap);
}

void jobs_close(struct coord *co)
{
    struct jobs *js = co->jobs;
    if (!js)
        return;
    /* The loop has ended and with it every connection: acks cannot go. */
    struct list_node *n;
    while ((n = list_pop_front(&js->acks)) != NULL)
        free(list_entry(n, struct ack, node));
    jobs_stop_sync(co); /* normally done by the shutdown, while the loop ran */
    jobs_flush(co, 1);
    ckpt_stop(js->ckpt, js->db);
    ledger_close(co);
    for (int i = 0; i < JS_N; i++)
        sqlite3_finalize(js->st[i]);
    while ((n = list_pop_front(&js->all)) != NULL) {
        struct job *j = list_entry(n, struct job, node);
        if (j->t)
            j->t->job = NULL;
        list_init(&j->node);
        free(j->out);
        free(j->body);
        free(j);
    }
    free(js->tab);
    free(js->ktab);
    free(js->accts);
    free(js);
    co->jobs = NULL;
}

void jobs_stats(const struct coord *co, struct jobs_stats *out)
{
    memset(out, 0, sizeof(*out));
    if (co->jobs) {
        out->pending = co->jobs->npending;
        out->done = co->jobs->ndone;
    }
}

uint64_t jobs_id(const struct job *j) { return j->id; }

const char *jobs_account(const struct job *j) { return j->acct->name; }
