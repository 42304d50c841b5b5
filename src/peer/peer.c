/* peer.c - the peer agent: configuration, the loop, start and stop.
 *
 * One libuv loop owns everything but the executor threads: the coordinator
 * links (link.c), the blob cache (pblob.c) and the loop's side of the
 * executor pool (pool.c).  This file validates the configuration, picks the
 * executors the peer serves from the built-in table, sets the loop's
 * handles up, and tears them down in an order that keeps every callback
 * safe: the executor threads are joined before anything they could touch
 * (the pool's wake handle, a link) is closed, and memory is freed only after
 * the loop has run every close callback. */
#include "peer/peer_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/tls.h"
#include "p2c2r/error.h"
#include "peer/prepared.h"
#include "tasks/tasks.h"

#define TICK_MS 1000

const struct p2c2r_executor *peer_find_executor(const struct peer_agent *a,
                                                const struct bytes_view *name)
{
    for (uint32_t i = 0; i < a->nex; i++) {
        if (strlen(a->ex[i]->name) == name->len && memcmp(a->ex[i]->name, name->p, name->len) == 0)
            return a->ex[i];
    }
    return NULL;
}

static void on_tick(uv_timer_t *t)
{
    struct peer_agent *a = t->data;
    uint64_t now = now_us();
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        link_tick(&a->links[i], now);
}

static void begin_stop(struct peer_agent *a)
{
    if (a->stopping)
        return;
    a->stopping = 1;
    LOG_I("peer_stopping", "links=%u", a->cfg.connections);
    /* Join the executors first: after that nobody can touch the wake handle,
     * so it can be closed with the rest.  Running jobs are bounded. */
    pool_stop(&a->pool);
    struct peer_stats st;
    peer_agent_stats(a, &st);
    LOG_I("peer_exec_stats",
          "cancelled_queued=%" PRIu64 " cancelled_running=%" PRIu64 " cancelled_stopped=%" PRIu64
          " cancel_wasted_us=%" PRIu64 " prepared_hits=%" PRIu64 " prepared_misses=%" PRIu64
          " prepared_inserts=%" PRIu64 " prepared_races=%" PRIu64 " prepared_refused=%" PRIu64
          " prepared_evictions=%" PRIu64 " prepared_entries=%" PRIu64 " prepared_bytes=%" PRIu64,
          st.cancelled_queued, st.cancelled_running, st.cancelled_stopped, st.cancel_wasted_us,
          st.prepared_hits, st.prepared_misses, st.prepared_inserts, st.prepared_races,
          st.prepared_refused, st.prepared_evictions, st.prepared_entries, st.prepared_bytes);
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        link_stop(&a->links[i]);
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

/* Fills a->ex from a --types list (NULL = every built-in, in table order).
 * Returns 0, or P2C2R_EINVAL with a reason naming the built-in types. */
static int select_types(struct peer_agent *a, const char *types, char *err, size_t errcap)
{
    size_t nb;
    const struct p2c2r_executor *const *all = tasks_builtin(&nb);
    if (!types) {
        for (size_t i = 0; i < nb && a->nex < PROTO_MAX_TYPES; i++)
            a->ex[a->nex++] = all[i];
        return 0;
    }
    const char *p = types, *item;
    size_t len;
    while (util_list_next(&p, &item, &len)) {
        const struct p2c2r_executor *ex = tasks_find(item, len);
        if (!ex) {
            snprintf(err, errcap, "unknown task type '%.*s' in --types (built in:", (int)len, item);
            for (size_t i = 0; i < nb; i++) {
                size_t used = strlen(err);
                snprintf(err + used, errcap - used, " %s", all[i]->name);
            }
            size_t used = strlen(err);
            snprintf(err + used, errcap - used, ")");
            return P2C2R_EINVAL;
        }
        int dup = 0;
        for (uint32_t i = 0; i < a->nex; i++)
            dup |= a->ex[i] == ex;
        if (!dup && a->nex < PROTO_MAX_TYPES)
            a->ex[a->nex++] = ex;
    }
    if (a->nex == 0) {
        snprintf(err, errcap, "--types lists no task type");
        return P2C2R_EINVAL;
    }
    return 0;
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
    cfg->prepared_cache_bytes = 256u << 20;
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
    if (select_types(a, cfg->types, err, errcap) != 0) {
        free(a);
        return P2C2R_EINVAL;
    }
    if (cfg->tls) {
        const char *host = cfg->tls_name;
        if (!host && tls_host_of(cfg->coordinator, a->tls_host, sizeof(a->tls_host)) == 0)
            host = a->tls_host;
        int rc = host && strlen(host) < sizeof(a->tls_host)
                     ? tls_ctx_client_new(cfg->tls_ca, cfg->tls_cert, cfg->tls_key, &a->tls, err, errcap)
                     : P2C2R_EINVAL;
        if (rc != 0) {
            if (!host || strlen(host) >= sizeof(a->tls_host))
                snprintf(err, errcap, "no host name to verify the coordinator's certificate against");
            free(a);
            return rc;
        }
        if (host != a->tls_host)
            snprintf(a->tls_host, sizeof(a->tls_host), "%s", host);
    }
    a->nkeys = cfg->nkeys ? cfg->nkeys : 1;
    a->keys = xcalloc(a->nkeys, sizeof(*a->keys));
    if (cfg->nkeys)
        memcpy(a->keys, cfg->keys, cfg->nkeys * sizeof(*a->keys));
    else
        ident_generate(&a->keys[0]);
    a->cfg.keys = NULL; /* the caller's copy is not ours to keep */
    a->rng.s = now_ns() ^ (uint64_t)getpid() << 32;
    uv_loop_init(&a->loop);
    uv_async_init(&a->loop, &a->stopper, on_stop);
    a->stopper.data = a;
    link_flusher_start(a);
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
    pblob_cache_init(&a->blobs, cfg->blob_cache_bytes);
    a->links = xcalloc(cfg->connections, sizeof(*a->links));
    for (uint32_t i = 0; i < cfg->connections; i++) {
        link_init(&a->links[i], a, i);
        a->links[i].key = &a->keys[i % a->nkeys];
    }
    a->prep = prep_cache_new(cfg->prepared_cache_bytes);
    if (pool_init(&a->pool, &a->loop, cfg->threads, a->prep) != 0) {
        snprintf(err, errcap, "cannot start executor threads");
        peer_agent_free(a);
        return P2C2R_ENOMEM;
    }
    *out = a;
    return 0;
}

void peer_agent_set_keys(struct peer_agent *a, const struct ident *keys, uint32_t nkeys)
{
    for (uint32_t i = 0; i < a->nkeys; i++)
        ident_fini(&a->keys[i]);
    free(a->keys);
    a->nkeys = nkeys;
    a->keys = xcalloc(nkeys, sizeof(*a->keys));
    memcpy(a->keys, keys, nkeys * sizeof(*a->keys));
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        a->links[i].key = &a->keys[i % nkeys];
}

int peer_agent_run(struct peer_agent *a)
{
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        link_connect(&a->links[i]);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    return 0;
}

void peer_agent_stop(struct peer_agent *a) { uv_async_send(&a->stopper); }

void peer_agent_stats(struct peer_agent *a, struct peer_stats *out)
{
    struct pool_stats ps;
    struct prep_stats pr;
    pool_stats(&a->pool, &ps);
    prep_cache_stats(a->prep, &pr);
    *out = (struct peer_stats){
        .cancelled_queued = ps.cancelled_queued,
        .cancelled_running = ps.cancelled_running,
        .cancelled_stopped = ps.cancelled_stopped,
        .cancel_wasted_us = ps.cancel_wasted_us,
        .prepared_hits = pr.hits,
        .prepared_misses = pr.misses,
        .prepared_inserts = pr.inserts,
        .prepared_races = pr.races,
        .prepared_refused = pr.refused,
        .prepared_evictions = pr.evictions,
        .prepared_entries = pr.entries,
        .prepared_bytes = pr.bytes,
    };
}

void peer_agent_free(struct peer_agent *a)
{
    if (!a)
        return;
    if (!a->stopping)
        begin_stop(a);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    uv_loop_close(&a->loop);
    pool_fini(&a->pool);
    for (uint32_t i = 0; i < a->cfg.connections; i++)
        link_fini(&a->links[i]);
    pblob_cache_fini(&a->blobs);
    prep_cache_free(a->prep);
    free(a->links);
    free(a->rbuf);
    for (uint32_t i = 0; i < a->nkeys; i++)
        ident_fini(&a->keys[i]);
    free(a->keys);
    tls_ctx_free(a->tls);
    free(a);
}
