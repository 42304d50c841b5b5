/* stats.c - statistics: the STATS document and the Prometheus text, both rendered from one
 * table of counters. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/version.h"
#include "coord/coord_int.h"

const char *const prio_name[PRIO_CLASSES] = {"realtime", "interactive", "background"};

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

int stats_on_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
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

void stats_metrics_render(void *arg, struct buf *o)
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
