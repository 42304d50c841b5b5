/* coord.c - the coordinator's life cycle: creating it, the loop's periodic sweep,
 * shutdown.  The rest of p2c2rd's core is in the modules coord_int.h lists.
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
 * - A peer is never sent more tasks than it advertised slots (credits), nor
 *   more than it earned by answering (peer_slots; claims.c).
 * - A peer is in its types' free sets exactly when it can take a task now
 *   (connection ready, a free slot, not quarantined).
 * - Output to a connection goes through conn_frame into its out buffer and is
 *   flushed once per loop iteration (uv_check), so many frames share one
 *   write.  A connection whose buffered output would pass max_output is cut.
 * - A connection closed inside a callback is detached from all scheduling
 *   state at once and freed only from its uv_close callback. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tls.h"
#include "coord/coord_int.h"
#include "coord/jobs.h"

static void finish_shutdown(struct coord *co);


void coord_maybe_ready(struct coord *co)
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

/* Ends the live queued tasks of type ti (every share's queues); durable
 * jobs wait for peers to come back (after a restart, none is connected
 * yet).  Collected first: ending a task changes the queues. */
static void end_live_queued(struct coord *co, int ti, const char *msg, int unserved)
{
    struct ttype *tt = &co->types[ti];
    uint32_t n = 0, cap = 0;
    struct task **live = NULL;
    for (uint32_t s = 0; s < tt->nsq; s++)
        for (int k = 0; k < 2; k++)
            for (int c = 0; c < PRIO_CLASSES; c++) {
                const struct theap *h = &tt->sq[s]->q[k][c].h;
                for (uint32_t i = 0; i < h->n; i++) {
                    if (h->a[i]->job)
                        continue;
                    if (n == cap) {
                        cap = cap ? 2 * cap : 64;
                        live = xrealloc(live, cap * sizeof(*live));
                    }
                    live[n++] = h->a[i];
                }
            }
    for (uint32_t i = 0; i < n; i++) {
        co->n.lost++;
        if (unserved)
            co->n.unserved_failed++;
        task_end_early(co, live[i], P2C2R_EUNSUPPORTED, msg);
    }
    free(live);
}

/* Queued tasks of a type that no peer can take (none connected, or none
 * with a slot) for orphan_timeout fail, and their blob pins with them: a
 * type nobody serves cannot hold memory for the length of its deadlines. */
static void sweep_orphaned_types(struct coord *co, uint64_t now)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        if (!tt->queued || (tt->npeers && tt->slots_total)) {
            tt->unserved_since = 0;
            continue;
        }
        uint64_t since = tt->npeers ? tt->unserved_since : tt->no_peer_since;
        if (!tt->unserved_since)
            tt->unserved_since = now;
        if (!since || now - since <= co->cfg.orphan_timeout_ms * 1000ull)
            continue;
        char msg[128];
        snprintf(msg, sizeof(msg), "no peer %s type '%s' for %u ms", tt->npeers ? "with a free slot runs" :
                 "running", tt->name, co->cfg.orphan_timeout_ms);
        end_live_queued(co, (int)i, msg, tt->npeers != 0);
    }
}

static void on_sweep(uv_timer_t *h)
{
    struct coord *co = h->data;
    uint64_t now = co->now = now_us();
    conn_reap(co);
    if (++co->ticks % CONN_SWEEP_TICKS == 0) {
        /* Every 100 ms. */
        conn_sweep(co, now);
        peer_sweep_quarantined(co, now);
        verify_sweep(co);
        sweep_orphaned_types(co, now);
        for (uint32_t i = 0; i < co->ntypes; i++)
            type_stats_tick(&co->types[i], now);
        if (co->cache)
            rcache_expire(co->cache, now, 4096);
    }
    if (co->ticks % KEY_FLUSH_TICKS == 0) {
        peerdb_flush(co);
        jobs_flush(co, 1); /* ledger entries of live tasks */
        jobs_sweep(co);
    }
    task_sweep_deadlines(co, now);
    stats_sweep(co, now);
    sched_sweep_hedges(co, now);
    claims_sweep(co, now);
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
    jobs_stop_sync(co); /* its handle must not keep the loop alive */
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
    uv_close((uv_handle_t *)&co->sighup, NULL);
    uv_close((uv_handle_t *)&co->stopper, NULL);
    mhttp_stop(co->metrics);
    co->metrics = NULL;
}

static void on_signal(uv_signal_t *h, int sig)
{
    LOG_I("signal", "sig=%d", sig);
    begin_shutdown(h->data);
}

/* SIGHUP: the credentials file is read again (account_reload). */
static void on_sighup(uv_signal_t *h, int sig)
{
    struct coord *co = h->data;
    co->now = now_us();
    LOG_I("signal", "sig=%d action=reload_accounts", sig);
    account_reload(co);
}

static void on_stop(uv_async_t *h) { begin_shutdown(h->data); }

int coord_new(const struct coord_config *cfg, struct coord **out, char *err, size_t errcap)
{
    struct coord *co = xcalloc(1, sizeof(*co));
    co->cfg = *cfg;
    co->free_head = NO_FREE;
    co->rng.s = now_ns();
    co->now = now_us();
    co->rbuf = xmalloc(READ_CHUNK);
    coord_state_init(co);
    int rc;
    if ((cfg->type_deadlines && (rc = config_type_deadlines(co, cfg->type_deadlines, err, errcap)) != 0) ||
        (cfg->cache_types && (rc = config_cache_types(co, cfg->cache_types, err, errcap)) != 0) ||
        (rc = verify_parse(co, cfg->verify ? cfg->verify : "adaptive", err, errcap)) != 0 ||
        (cfg->trust_pools && (rc = pools_parse_trust(co, cfg->trust_pools, err, errcap)) != 0) ||
        (rc = account_init(co, err, errcap)) != 0 ||
        (rc = tlsserve_init(co, err, errcap)) != 0) {
        tls_ctx_free(co->tls);
        account_fini(co);
        free(co->rbuf);
        free(co);
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_parse(cfg->listen, &ss, &sl) != 0) {
        snprintf(err, errcap, "cannot parse listen address '%s': expected HOST:PORT", cfg->listen);
        tls_ctx_free(co->tls);
        account_fini(co);
        free(co->rbuf);
        free(co);
        return P2C2R_EADDR;
    }
    /* The state before the socket: a coordinator that cannot keep what it
     * knows about peers does not start. */
    if (peerdb_open(co, err, errcap) != 0) {
        tls_ctx_free(co->tls);
        account_fini(co);
        free(co->rbuf);
        free(co);
        return P2C2R_EIO; /* not a usage error, whatever the store's code: err says why */
    }
    uv_loop_init(&co->loop);
    uv_tcp_init(&co->loop, &co->listener);
    co->listener.data = co;
    if ((rc = uv_tcp_bind(&co->listener, (struct sockaddr *)&ss, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&co->listener, 1024, conn_on_connection)) != 0) {
        snprintf(err, errcap, "cannot listen on %s: %s (is another p2c2rd running? try --listen 127.0.0.1:0)",
                 cfg->listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&co->listener, NULL);
        uv_run(&co->loop, UV_RUN_DEFAULT);
        uv_loop_close(&co->loop);
        peerdb_close(co);
        tls_ctx_free(co->tls);
        account_fini(co);
        free(co->rbuf);
        free(co);
        return P2C2R_EADDR;
    }
    int nl = sizeof(ss);
    uv_tcp_getsockname(&co->listener, (struct sockaddr *)&ss, &nl);
    addr_format((struct sockaddr *)&ss, co->addr, sizeof(co->addr));

    uv_check_init(&co->loop, &co->flusher);
    co->flusher.data = co;
    uv_check_start(&co->flusher, conn_on_check);
    uv_timer_init(&co->loop, &co->sweeper);
    co->sweeper.data = co;
    uv_timer_start(&co->sweeper, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_signal_init(&co->loop, &co->sigint);
    co->sigint.data = co;
    uv_signal_start(&co->sigint, on_signal, SIGINT);
    uv_signal_init(&co->loop, &co->sigterm);
    co->sigterm.data = co;
    uv_signal_start(&co->sigterm, on_signal, SIGTERM);
    uv_signal_init(&co->loop, &co->sighup);
    co->sighup.data = co;
    uv_signal_start(&co->sighup, on_sighup, SIGHUP);
    uv_async_init(&co->loop, &co->stopper, on_stop);
    co->stopper.data = co;
    gw_init(co);
    const char *http = cfg->http_listen ? cfg->http_listen : cfg->metrics_listen;
    /* Durable jobs last: loading them queues tasks, which only a running
     * coordinator frees. */
    if ((http && (rc = mhttp_start(&co->loop, http, stats_metrics_render, co, &co->metrics, err, errcap)) != 0) ||
        (rc = jobs_open(co, err, errcap)) != 0) {
        gw_fini(co);
        co->stopping = 1;
        uv_close((uv_handle_t *)&co->listener, NULL);
        finish_shutdown(co);
        uv_run(&co->loop, UV_RUN_DEFAULT);
        uv_loop_close(&co->loop);
        jobs_close(co);
        peerdb_close(co);
        tls_ctx_free(co->tls);
        coord_state_free(co);
        blobs_free(co);
        account_fini(co);
        free(co->rbuf);
        free(co);
        return rc;
    }
    if (co->metrics) {
        mhttp_set_token(co->metrics, cfg->http_token);
        /* With credentials, an operator's token opens /metrics too, and
         * /metrics is closed without one (docs/ACCOUNTS.md). */
        if (co->accts)
            mhttp_set_auth(co->metrics, account_http_auth, co);
        mhttp_set_root(co->metrics, cfg->http_root);
        mhttp_set_upgrade(co->metrics, gw_upgrade, co);
        if (co->tls && !cfg->http_plain)
            mhttp_set_tls(co->metrics, co->tls); /* https and wss, same certificate */
    }
    if (cfg->cache_bytes)
        co->cache = rcache_new(limits_cache_bytes(co), (uint64_t)cfg->cache_ttl_ms * 1000);
    *out = co;
    return 0;
}

int coord_run(struct coord *co)
{
    LOG_I("listening", "addr=%s", co->addr);
    if (co->metrics) {
        LOG_I("http_listening", "addr=%s metrics=/metrics gateway=/ws root=%s tls=%d", mhttp_addr(co->metrics),
              co->cfg.http_root ? co->cfg.http_root : "-", co->tls && !co->cfg.http_plain);
        LOG_I("metrics_listening", "addr=%s", mhttp_addr(co->metrics));
    }
    if (co->cfg.on_listening)
        co->cfg.on_listening(co->cfg.arg, co->addr);
    coord_maybe_ready(co);
    uv_run(&co->loop, UV_RUN_DEFAULT);
    return 0;
}

void coord_stop(struct coord *co) { uv_async_send(&co->stopper); }

void coord_state_init(struct coord *co)
{
    co->free_head = NO_FREE;
    shares_init(co);
    list_init(&co->conns);
    list_init(&co->dirty);
    list_init(&co->reap);
    list_init(&co->blob_lru);
    list_init(&co->peers);
    list_init(&co->draining);
    list_init(&co->quarantined);
    list_init(&co->vwait);
    co->walk = &co->conns;
    limits_init(co);
}

void coord_state_free(struct coord *co)
{
    for (uint32_t i = 0; i < co->ntypes; i++) {
        struct ttype *tt = &co->types[i];
        free(tt->peers);
        free(tt->free);
    }
    shares_free(co);
    free(co->dl.a);
    for (uint32_t i = 0; i < co->nchunks; i++) {
        for (uint32_t j = 0; j < TASK_CHUNK; j++) {
            struct task *t = &co->chunks[i][j];
            if (t->state != TS_FREE && t->body != t->small)
                free(t->body);
            if (t->state != TS_FREE) {
                verify_free(t);
                limits_task_release(co, t);
            }
        }
        free(co->chunks[i]);
    }
    free(co->chunks);
}

void coord_free(struct coord *co)
{
    if (!co)
        return;
    if (!co->stopping) {
        begin_shutdown(co);
        uv_run(&co->loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&co->loop);
    jobs_close(co);   /* before the store closes: the last commit */
    peerdb_close(co); /* every peer has left: their records are final */
    coord_state_free(co);
    rcache_free(co->cache);
    blobs_free(co);
        tls_ctx_free(co->tls);
    gw_fini(co);
    account_fini(co);
    free(co->rbuf);
    free(co);
}
