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
#include "coord/jobs.h"

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
        n += peer_slots(tt->free[i]) - tt->free[i]->inflight;
    return n;
}

/* Every figure the table below can name, read once per render so that one
 * document is consistent with itself. */
struct snap {
    struct counters n;
    struct rcache_stats cs;
    uint64_t connections, renters, peers, tasks_live, queued, queued_bytes, keys_known, shares;
    uint64_t tls_handshaking;
    uint64_t blob_count, blob_bytes, blob_max, cache_max;
    uint64_t mem_used, mem_limit, mem_share, mem_peak, mem_tasks, mem_blobs, mem_buffers, unauth;
    uint64_t http_answers, http_refused, http_evicted, http_unauthorized, http_timeouts; /* the HTTP port */
    uint64_t http_tls_plain_refused, http_tls_failures; /* the HTTP port under TLS */
    struct jobs_stats js;
};

static void snap_take(const struct coord *co, struct snap *s)
{
    memset(s, 0, sizeof(*s));
    s->n = co->n;
    if (co->cache)
        rcache_stats(co->cache, &s->cs);
    s->connections = co->nconns;
    s->tls_handshaking = co->tls_busy;
    s->renters = co->nrenters;
    s->peers = co->npeers;
    s->keys_known = co->nkeys;
    s->tasks_live = co->tasks_live;
    s->queued = co->queued_total;
    s->queued_bytes = co->queued_bytes;
    s->shares = co->nshares;
    s->blob_count = co->nblob;
    s->blob_bytes = co->blob_bytes;
    s->blob_max = co->blob_cap;
    s->cache_max = limits_cache_bytes(co);
    s->mem_used = co->mem.used;
    s->mem_limit = co->mem.limit;
    s->mem_share = co->mem.share;
    s->mem_peak = co->mem.peak;
    s->mem_tasks = co->mem.by_kind[MEM_TASKS];
    s->mem_blobs = co->mem.by_kind[MEM_BLOBS];
    s->mem_buffers = co->mem.by_kind[MEM_BUFFERS];
    s->unauth = co->nhello;
    if (co->metrics) {
        struct mhttp_stats h;
        mhttp_stats(co->metrics, &h);
        s->http_answers = h.answers;
        s->http_refused = h.refused;
        s->http_evicted = h.evicted;
        s->http_unauthorized = h.unauthorized;
        s->http_timeouts = h.timeouts;
        s->http_tls_plain_refused = h.tls_plain_refused;
        s->http_tls_failures = h.tls_failures;
    }
    jobs_stats(co, &s->js);
}

enum { G_TOP, G_COUNTERS, G_BLOBS, G_CACHE, G_MEM, G_N };
enum { K_GAUGE, K_COUNTER };

#define N(f) offsetof(struct snap, n.f)
#define C(f) offsetof(struct snap, cs.f)
#define S(f) offsetof(struct snap, f)

/* The coordinator's figures: each is a key of the STATS document (in its
 * group: the top level, "counters", "blobs" or "cache") and, where it has a
 * Prometheus name, a metric of the same value.  Adding a figure here adds it
 * to both.  Per-type and per-peer figures (with labels) follow the table. */
static const struct stat_def {
    uint8_t group, kind;
    const char *key;  /* in the STATS document */
    const char *prom; /* NULL: exported under another name, or with labels */
    const char *help;
    size_t off;       /* of a uint64_t in struct snap */
} stat_defs[] = {
    {G_TOP, K_GAUGE, "connections", "p2c2r_connections", "Open connections.", S(connections)},
    {G_TOP, K_GAUGE, "renters", "p2c2r_renters", "Renter connections.", S(renters)},
    {G_TOP, K_GAUGE, "peers_connected", "p2c2r_peers_connected", "Registered peer connections.", S(peers)},
    {G_TOP, K_GAUGE, "tls_handshaking", "p2c2r_tls_handshaking", "TLS handshakes in progress (at most 128; more wait their turn).", S(tls_handshaking)},
    {G_TOP, K_GAUGE, "keys_known", "p2c2r_peer_keys_known", "Peer keys the coordinator keeps a record of (connected or not).", S(keys_known)},
    {G_TOP, K_GAUGE, "tasks_live", "p2c2r_tasks_live", "Accepted tasks not yet freed.", S(tasks_live)},
    {G_TOP, K_GAUGE, "queued", "p2c2r_queued", "Tasks waiting in queues.", S(queued)},
    {G_TOP, K_GAUGE, "queued_bytes", "p2c2r_queued_bytes", "Input bytes of the tasks waiting in queues.", S(queued_bytes)},
    {G_TOP, K_GAUGE, "shares", "p2c2r_shares", "Renter shares the scheduler is fair between (one per account in use, or per connection without a credentials file).", S(shares)},
    {G_TOP, K_GAUGE, "jobs_pending", "p2c2r_jobs_pending", "Durable jobs without a committed outcome.", S(js.pending)},
    {G_TOP, K_GAUGE, "jobs_done", "p2c2r_jobs_done", "Durable jobs with a committed outcome kept for fetching.", S(js.done)},
    {G_COUNTERS, K_COUNTER, "submitted", "p2c2r_submitted_total", "Tasks received.", N(submitted)},
    {G_COUNTERS, K_COUNTER, "accepted", "p2c2r_accepted_total", "Tasks accepted.", N(accepted)},
    {G_COUNTERS, K_COUNTER, "rejected", "p2c2r_refused_total", "Tasks refused at submit, all reasons and types (p2c2r_rejected_total has them by type and reason).", N(rejected)},
    {G_COUNTERS, K_COUNTER, "completed", "p2c2r_completed_total", "Outcomes delivered with status OK.", N(delivered_ok)},
    {G_COUNTERS, K_COUNTER, "failed", "p2c2r_failed_total", "Outcomes delivered with an error status.", N(delivered_err)},
    {G_COUNTERS, K_COUNTER, "requeued", "p2c2r_requeued_total", "Tasks put back after their peer was lost.", N(requeued)},
    {G_COUNTERS, K_COUNTER, "lost", "p2c2r_lost_total", "Tasks that failed after losing max-attempts peers, or whose type lost every peer.", N(lost)},
    {G_COUNTERS, K_COUNTER, "timed_out", "p2c2r_timed_out_total", "Tasks whose deadline passed.", N(timed_out)},
    {G_COUNTERS, K_COUNTER, "cancelled", "p2c2r_cancelled_total", "Tasks cancelled by their renter.", N(cancelled)},
    {G_COUNTERS, K_COUNTER, "late_results", "p2c2r_late_results_total", "Results dropped because the task had its outcome.", N(late_results)},
    {G_COUNTERS, K_COUNTER, "duplicate_results", "p2c2r_duplicate_results_total", "Results a peer sent twice (dropped).", N(duplicate_results)},
    {G_COUNTERS, K_COUNTER, "retries", "p2c2r_retries_total", "Attempts started again after a failure or a lost peer.", N(retries)},
    {G_COUNTERS, K_COUNTER, "hedges", "p2c2r_hedges_total", "Second copies started for slow attempts.", N(hedges)},
    {G_COUNTERS, K_COUNTER, "hedge_wins", "p2c2r_hedge_wins_total", "Hedged copies that answered first.", N(hedge_wins)},
    {G_COUNTERS, K_COUNTER, "quarantines", "p2c2r_quarantines_total", "Times a peer's circuit breaker opened.", N(quarantines)},
    {G_COUNTERS, K_COUNTER, "cache_hits", "p2c2r_cache_hits_total", "Tasks answered from the result cache.", C(hits)},
    {G_COUNTERS, K_COUNTER, "cache_misses", "p2c2r_cache_misses_total", "Cacheable tasks not in the cache.", C(misses)},
    {G_COUNTERS, K_COUNTER, "coalesced", "p2c2r_coalesced_total", "Tasks answered by an identical task in flight.", N(coalesced)},
    {G_COUNTERS, K_COUNTER, "rejected_deadline", "p2c2r_rejected_deadline_total", "Tasks refused because they would miss their deadline.", N(rejected_deadline)},
    {G_COUNTERS, K_COUNTER, "rejected_share_queue", "p2c2r_rejected_share_queue_total", "Tasks refused because their renter's share held its part of the queue (half of what the others leave free).", N(rejected_share_queue)},
    {G_COUNTERS, K_COUNTER, "admission_probes", "p2c2r_admission_probes_total", "Tasks admitted whatever their estimate because their type had refused everything for a while (so no type is locked out).", N(admission_probes)},
    {G_COUNTERS, K_COUNTER, "rejected_capability", "p2c2r_rejected_capability_total", "Tasks refused because no peer meets their requirements.", N(rejected_capability)},
    {G_COUNTERS, K_COUNTER, "pings", "p2c2r_pings_total", "PINGs sent to silent peers.", N(pings)},
    {G_COUNTERS, K_COUNTER, "claims_clamped", "p2c2r_claims_clamped_total", "PEER_REGISTERs with cores, memory or an executor version clamped to the coordinator's limits.", N(claims_clamped)},
    {G_COUNTERS, K_COUNTER, "exec_us_clamped", "p2c2r_exec_us_clamped_total", "RESULTs whose exec_us was over the attempt's measured duration (clamped to it).", N(exec_us_clamped)},
    {G_COUNTERS, K_COUNTER, "stall_hedges", "p2c2r_stall_hedges_total", "Second copies started for tasks a peer held past its predicted time (also counted in hedges).", N(stall_hedges)},
    {G_COUNTERS, K_COUNTER, "staller_cuts", "p2c2r_staller_cuts_total", "Peers cut for holding only overdue tasks without answering for half the peer timeout.", N(staller_cuts)},
    {G_COUNTERS, K_COUNTER, "jobs_submitted", "p2c2r_jobs_submitted_total", "Durable jobs received (entries of JOB_SUBMIT).", N(jobs_submitted)},
    {G_COUNTERS, K_COUNTER, "jobs_acked", "p2c2r_jobs_acked_total", "Durable jobs committed to the database and acknowledged.", N(jobs_acked)},
    {G_COUNTERS, K_COUNTER, "jobs_refused", "p2c2r_jobs_refused_total", "Durable jobs refused at submit (type, blob, limits, a failed commit).", N(jobs_refused)},
    {G_COUNTERS, K_COUNTER, "jobs_finished", "p2c2r_jobs_finished_total", "Durable jobs whose outcome was committed.", N(jobs_finished)},
    {G_COUNTERS, K_COUNTER, "jobs_deleted", "p2c2r_jobs_deleted_total", "Finished durable jobs released by their renter or past --job-retention.", N(jobs_deleted)},
    {G_COUNTERS, K_COUNTER, "job_commits", "p2c2r_job_commits_total", "Group commits of durable jobs and ledger entries.", N(job_commits)},
    {G_COUNTERS, K_COUNTER, "job_commit_errors", "p2c2r_job_commit_errors_total", "Group commits that failed (their new jobs refused with EIO).", N(job_commit_errors)},
    {G_COUNTERS, K_COUNTER, "ledger_txns", "p2c2r_ledger_work_txns_total", "Work transactions committed to the credit ledger (one per agreeing peer of a verified result).", N(ledger_txns)},
    {G_COUNTERS, K_COUNTER, "ledger_reversals", "p2c2r_ledger_reversals_total", "Work transactions reversed because their peer was caught lying.", N(ledger_reversals)},
    {G_COUNTERS, K_COUNTER, "credits_earned", "p2c2r_credits_earned_millicredits_total", "Millicredits credited to peers for verified work (before reversals).", N(credits_earned)},
    {G_COUNTERS, K_COUNTER, "credits_spent", "p2c2r_credits_spent_millicredits_total", "Millicredits debited from renters for verified work (before reversals).", N(credits_spent)},
    {G_COUNTERS, K_COUNTER, "connections_total", "p2c2r_connections_total", "Connections accepted.", N(conns_total)},
    {G_COUNTERS, K_COUNTER, "protocol_errors", "p2c2r_protocol_errors_total", "Connections cut for protocol errors.", N(proto_errors)},
    {G_COUNTERS, K_COUNTER, "auth_failures", "p2c2r_auth_failures_total", "Connections refused for their token (HELLO) or their identity (PEER_REGISTER: no key, a bad signature, a banned key).", N(auth_failures)},
    {G_COUNTERS, K_COUNTER, "limit_cuts", "p2c2r_limit_cuts_total", "Connections cut for going over a limit (output buffered, connections, types).", N(limit_cuts)},
    {G_COUNTERS, K_COUNTER, "tls_handshakes", "p2c2r_tls_handshakes_total", "TLS handshakes completed (--tls-cert).", N(tls_handshakes)},
    {G_COUNTERS, K_COUNTER, "tls_failures", "p2c2r_tls_failures_total", "Connections cut for a failed TLS handshake or record (bad client certificate, no TLS 1.3, corrupt record).", N(tls_failures)},
    {G_COUNTERS, K_COUNTER, "tls_plain_refused", "p2c2r_tls_plain_refused_total", "Connections refused for not speaking TLS while TLS is required.", N(tls_plain_refused)},
    {G_COUNTERS, K_COUNTER, "bytes_in", "p2c2r_bytes_in_total", "Bytes read.", N(bytes_in)},
    {G_COUNTERS, K_COUNTER, "bytes_out", "p2c2r_bytes_out_total", "Bytes queued for sending.", N(bytes_out)},
    {G_COUNTERS, K_COUNTER, "blobs_put", "p2c2r_blobs_put_total", "Blobs stored (new uploads).", N(blobs_put)},
    {G_COUNTERS, K_COUNTER, "blobs_sent", "p2c2r_blobs_sent_total", "Blobs sent to peers.", N(blobs_sent)},
    {G_COUNTERS, K_COUNTER, "verify_runs", "p2c2r_verify_runs_total", "Runs started to check a result on an independent peer.", N(verify_runs)},
    {G_COUNTERS, K_COUNTER, "verified", "p2c2r_verified_total", "Results delivered after independent peers agreed.", N(verified)},
    {G_COUNTERS, K_COUNTER, "unverified", "p2c2r_unverified_total", "Results delivered unchecked under a verifying policy (a spot check skipped, or no independent peer).", N(unverified)},
    {G_COUNTERS, K_COUNTER, "disagreements", "p2c2r_disagreements_total", "Tasks whose peers returned different results.", N(disagreements)},
    {G_COUNTERS, K_COUNTER, "liars", "p2c2r_liars_total", "Results outvoted by independent peers (each strikes and quarantines its peer).", N(liars)},
    {G_COUNTERS, K_COUNTER, "http_answers", "p2c2r_http_answers_total", "Answers of the HTTP port (--http), any status.", S(http_answers)},
    {G_COUNTERS, K_COUNTER, "http_refused", "p2c2r_http_refused_total", "HTTP connections closed at accept: the port was full and none was idle.", S(http_refused)},
    {G_COUNTERS, K_COUNTER, "http_evicted", "p2c2r_http_evicted_total", "Idle HTTP connections closed to make room for a new one.", S(http_evicted)},
    {G_COUNTERS, K_COUNTER, "http_unauthorized", "p2c2r_http_unauthorized_total", "HTTP 401 answers (/metrics without the bearer token).", S(http_unauthorized)},
    {G_COUNTERS, K_COUNTER, "http_timeouts", "p2c2r_http_timeouts_total", "HTTP connections closed for missing a deadline (head or answer).", S(http_timeouts)},
    {G_COUNTERS, K_COUNTER, "http_tls_plain_refused", "p2c2r_http_tls_plain_refused_total", "Plaintext HTTP requests answered 400 TLS required (the HTTP port under --tls-cert).", S(http_tls_plain_refused)},
    {G_COUNTERS, K_COUNTER, "http_tls_failures", "p2c2r_http_tls_failures_total", "Failed TLS handshakes and records on the HTTP port.", S(http_tls_failures)},
    {G_COUNTERS, K_COUNTER, "gateway_upgrades", "p2c2r_gateway_upgrades_total", "WebSocket connections the HTTP port handed to the gateway (/ws).", N(gw_upgrades)},
    {G_COUNTERS, K_COUNTER, "gateway_messages_in", "p2c2r_gateway_messages_in_total", "WebSocket messages and control frames read by the gateway.", N(gw_messages_in)},
    {G_COUNTERS, K_COUNTER, "gateway_messages_out", "p2c2r_gateway_messages_out_total", "JSON messages the gateway sent.", N(gw_messages_out)},
    {G_COUNTERS, K_COUNTER, "gateway_refused", "p2c2r_gateway_refused_total", "Gateway connections cut for a malformed message: bad framing, not JSON, a wrong msg_type, field or type, over the size limit, out of order.", N(gw_bad)},
    {G_COUNTERS, K_COUNTER, "blob_misses", "p2c2r_blob_misses_total", "ENOBLOB answers from peers (blob resent).", N(blob_misses)},
    {G_BLOBS, K_GAUGE, "count", "p2c2r_blobs", "Blobs in the store.", S(blob_count)},
    {G_BLOBS, K_GAUGE, "bytes", "p2c2r_blob_bytes", "Bytes of the blobs in the store.", S(blob_bytes)},
    {G_BLOBS, K_GAUGE, "max_bytes", "p2c2r_blob_max_bytes", "The blob store's byte cap.", S(blob_max)},
    {G_CACHE, K_GAUGE, "entries", "p2c2r_cache_entries", "Entries in the result cache.", C(entries)},
    {G_CACHE, K_GAUGE, "bytes", "p2c2r_cache_bytes", "Bytes held by the result cache.", C(bytes)},
    {G_CACHE, K_GAUGE, "max_bytes", "p2c2r_cache_max_bytes", "The result cache's byte cap.", S(cache_max)},
    {G_CACHE, K_COUNTER, "hits", NULL, NULL, C(hits)},
    {G_CACHE, K_COUNTER, "misses", NULL, NULL, C(misses)},
    {G_CACHE, K_COUNTER, "evictions", "p2c2r_cache_evictions_total", "Cache entries evicted for space.", C(evictions)},
    {G_CACHE, K_COUNTER, "expired", "p2c2r_cache_expired_total", "Cache entries dropped at the end of their TTL.", C(expired)},
    {G_TOP, K_GAUGE, "unauthenticated", "p2c2r_unauthenticated_connections", "Connections that have not completed HELLO.", S(unauth)},
    {G_MEM, K_GAUGE, "used", "p2c2r_mem_used_bytes", "Bytes charged to the memory budget (tasks, blobs, connection buffers).", S(mem_used)},
    {G_MEM, K_GAUGE, "limit", "p2c2r_mem_limit_bytes", "Bytes new work may take the charged total to (--mem-budget less headroom and the result cache).", S(mem_limit)},
    {G_MEM, K_GAUGE, "share", "p2c2r_mem_share_bytes", "Bytes one renter (with credentials: one account, over its connections) may hold (--mem-share).", S(mem_share)},
    {G_MEM, K_GAUGE, "peak", "p2c2r_mem_peak_bytes", "Highest charged total since start.", S(mem_peak)},
    {G_MEM, K_GAUGE, "tasks", "p2c2r_mem_tasks_bytes", "Charged for tasks (slot and body) until they are freed.", S(mem_tasks)},
    {G_MEM, K_GAUGE, "blobs", "p2c2r_mem_blobs_bytes", "Charged for stored blobs (bytes plus per-blob overhead).", S(mem_blobs)},
    {G_MEM, K_GAUGE, "buffers", "p2c2r_mem_buffers_bytes", "Charged for connection buffers (partial input frames, unsent output).", S(mem_buffers)},
    {G_COUNTERS, K_COUNTER, "mem_refused", "p2c2r_mem_refused_total", "Tasks, blobs and frames refused for the memory budget or a renter's share.", N(mem_refused)},
    {G_COUNTERS, K_COUNTER, "frame_timeouts", "p2c2r_frame_timeouts_total", "Connections cut for a partial frame not completed within --frame-timeout.", N(frame_timeouts)},
    {G_COUNTERS, K_COUNTER, "idle_timeouts", "p2c2r_idle_timeouts_total", "Renters closed after --idle-timeout with nothing outstanding.", N(idle_timeouts)},
    {G_COUNTERS, K_COUNTER, "unauth_evicted", "p2c2r_unauth_evicted_total", "Connections without HELLO dropped to make room for a new one.", N(unauth_evicted)},
    {G_COUNTERS, K_COUNTER, "stats_delayed", "p2c2r_stats_delayed_total", "STATS answers held back by the per-connection rate limit (--stats-interval).", N(stats_delayed)},
    {G_COUNTERS, K_COUNTER, "stats_limited", "p2c2r_stats_limited_total", "STATS requests answered with a small rate_limited document (another was already held back).", N(stats_limited)},
    {G_COUNTERS, K_COUNTER, "types_refused", "p2c2r_types_refused_total", "PEER_REGISTERs refused for adding more new task types than --peer-new-types.", N(types_refused)},
    {G_COUNTERS, K_COUNTER, "unserved_failed", "p2c2r_unserved_failed_total", "Queued tasks failed because their type's peers had no slot for --orphan-timeout (also in lost).", N(unserved_failed)},
};

#undef N
#undef C
#undef S

static uint64_t stat_value(const struct snap *s, const struct stat_def *d)
{
    uint64_t v;
    memcpy(&v, (const char *)s + d->off, sizeof(v));
    return v;
}

/* Appends the figures of one group as "key":value pairs. */
static void stats_group(struct buf *o, const struct snap *s, int group)
{
    int first = 1;
    for (size_t i = 0; i < ARRAY_LEN(stat_defs); i++) {
        if (stat_defs[i].group != group)
            continue;
        jprintf(o, "%s\"%s\":%" PRIu64, first ? "" : ",", stat_defs[i].key, stat_value(s, &stat_defs[i]));
        first = 0;
    }
}

/* The one place that decides which peers a STATS answer lists: a page of
 * the registered peers (ready connections, in registration order) from
 * offset, at most limit of them; *total gets how many there are.  asker
 * is the connection asking (for a visibility rule by role or account). */
static void stats_peer_page(struct coord *co, const struct conn *asker, struct buf *o, uint32_t offset,
                            uint32_t limit, uint32_t *total)
{
    (void)asker;
    int first = 1;
    uint32_t seen = 0, shown = 0;
    for (struct list_node *n = co->peers.next; n != &co->peers; n = n->next) {
        struct peer_rec *p = list_entry(n, struct peer_rec, node);
        struct conn *pc = p->conn;
        if (pc->state != CS_READY)
            continue;
        if (seen++ < offset || shown >= limit)
            continue;
        shown++;
        jprintf(o, "%s{\"id\":%u,\"name\":", first ? "" : ",", p->id);
        first = 0;
        json_str(o, pc->name);
        buf_append(o, ",\"addr\":", 8);
        json_str(o, pc->addr);
        jprintf(o, ",\"transport\":\"%s\"", pc->gw ? "ws" : "tcp");
        jprintf(o, ",\"state\":\"%s\",\"cores\":%u,\"slots\":%u,\"held_limit\":%u,\"inflight\":%u"
                   ",\"overdue\":%u,\"stalls\":%u,\"mem_bytes\":%" PRIu64 ",\"gpu\":%s,\"gpu_model\":",
                peer_state_name(p->state), p->cores, p->slots, peer_slots(p), p->inflight,
                claims_overdue_count(p), p->stalls, p->mem, p->gpu ? "true" : "false");
        json_str(o, p->gpu_model);
        jprintf(o, ",\"done\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"strikes\":%" PRIu64
                   ",\"rtt_us\":%.0f,\"fail_rate\":%.3f,\"trust\":%.3f,\"pool\":\"%s\",\"cost\":%u",
                p->done, p->failed, p->strikes, (double)p->rtt_us, (double)p->fail_ewma,
                peer_trust(p), pool_name(p->pool), p->cost);
        const struct ident_rec *k = p->key;
        if (k) {
            /* Its key's record: the same for every connection of the key,
             * and across reconnects. */
            char hex[2 * STORE_PK_LEN + 1];
            for (unsigned i = 0; i < STORE_PK_LEN; i++)
                snprintf(hex + 2 * i, 3, "%02x", k->pk[i]);
            jprintf(o, ",\"key\":\"%s\",\"key_id\":%u,\"group\":%u,\"group_name\":", hex, k->id,
                    p->group);
            json_str(o, k->group_name);
            jprintf(o, ",\"key_conns\":%u,\"good\":%" PRIu64 ",\"verified\":%" PRIu64
                       ",\"disagreements\":%" PRIu64 ",\"lies\":%" PRIu64 ",\"quarantines\":%" PRIu64
                       ",\"pinned\":%s",
                    k->nconns, k->good, k->verified, k->disagreements, k->lies, k->quarantines,
                    k->pinned ? "true" : "false");
        }
        buf_append(o, ",\"types\":[", 10);
        int ft = 1;
        for (uint32_t m = p->types; m; m &= m - 1) {
            int ti = __builtin_ctz(m);
            jprintf(o, "%s{\"name\":", ft ? "" : ",");
            json_str(o, co->types[ti].name);
            jprintf(o, ",\"version\":%u,\"exec_us\":%.0f,\"us_per_unit\":%.6g}", p->ty[ti].version,
                    (double)p->ty[ti].exec_ewma, (double)p->ty[ti].rate);
            ft = 0;
        }
        buf_append(o, "]}", 2);
    }
    *total = seen;
}

/* The rest of a type's STATS object: its latency by stage (the histograms
 * of p2c2r_stage_seconds, as count and sum, so that a client can take the
 * mean between two readings, and quantiles since start) and its refusals and
 * failed outcomes by error name (non-zero ones), then the closing brace. */
static void type_stages_json(struct buf *o, const struct ttype *tt)
{
    static const char *const stage[] = {"queue", "dispatch", "exec", "total"};
    const struct hist *hs[] = {&tt->h_queue, &tt->h_dispatch, &tt->h_exec, &tt->h_total};
    buf_append(o, ",\"stages\":{", 11);
    for (int k = 0; k < 4; k++)
        jprintf(o, "%s\"%s\":{\"count\":%" PRIu64 ",\"sum_us\":%" PRIu64 ",\"p50_us\":%" PRIu64
                   ",\"p95_us\":%" PRIu64 ",\"max_us\":%" PRIu64 "}",
                k ? "," : "", stage[k], hs[k]->count, hs[k]->sum_us, hist_quantile(hs[k], 0.5),
                hist_quantile(hs[k], 0.95), hs[k]->max_us);
    const char *key[] = {"},\"rejected_by\":{", "},\"failed_by\":{"};
    const uint64_t *v[] = {tt->rejected, tt->outcomes};
    for (int k = 0; k < 2; k++) {
        buf_append(o, key[k], strlen(key[k]));
        int first = 1;
        for (int s = 1; s < NCODES; s++)
            if (v[k][s]) {
                jprintf(o, "%s\"%s\":%" PRIu64, first ? "" : ",", p2c2r_errname(-s), v[k][s]);
                first = 0;
            }
    }
    buf_append(o, "}}", 2);
}

/* The STATS document (docs/PROTOCOL.md 5.7) with a page of the peer list,
 * appended to o. */
static void stats_json(struct coord *co, const struct conn *asker, struct buf *o, uint32_t offset,
                       uint32_t limit)
{
    struct snap s;
    snap_take(co, &s);
    jprintf(o, "{\"version\":\"%s\",\"address\":", P2C2R_VERSION_STRING);
    json_str(o, co->addr);
    buf_append(o, ",", 1);
    stats_group(o, &s, G_TOP);
    buf_append(o, ",\"counters\":{", 13);
    stats_group(o, &s, G_COUNTERS);
    buf_append(o, "},\"blobs\":{", 11);
    stats_group(o, &s, G_BLOBS);
    buf_append(o, "},\"cache\":{", 11);
    stats_group(o, &s, G_CACHE);
    buf_append(o, "},\"mem\":{", 9);
    stats_group(o, &s, G_MEM);
    buf_append(o, "},", 2);
    pools_stats_json(co, o);
    buf_append(o, ",\"types\":[", 10);
    for (uint32_t i = 0; i < co->ntypes; i++) {
        const struct ttype *tt = &co->types[i];
        uint32_t byc[PRIO_CLASSES] = {0};
        for (int kk = 0; kk < 2; kk++)
            for (int c = 0; c < PRIO_CLASSES; c++)
                byc[c] += tt->qn[kk][c];
        jprintf(o, "%s{\"name\":", i ? "," : "");
        json_str(o, tt->name);
        jprintf(o, ",\"peers\":%u,\"queued\":%u,\"queued_by_class\":[%u,%u,%u],\"free_slots\":%" PRIu64
                   ",\"slots\":%" PRIu64 ",\"cacheable\":%s,\"deadline_ms\":%u,\"exec_p95_us\":%" PRIu64
                   ",\"attempt_samples\":%" PRIu64 ",\"attempt_p50_us\":%" PRIu64 ",\"attempt_p95_us\":%" PRIu64
                   ",\"hedges\":%" PRIu64 ",\"retries\":%" PRIu64 ",\"verify\":\"%s\",\"verify_runs\":%" PRIu64
                   ",\"verified\":%" PRIu64 ",\"unverified\":%" PRIu64 ",\"disagreements\":%" PRIu64
                   ",\"rate_samples\":%" PRIu32 ",\"us_per_unit\":%.6g,\"admission_probes\":%" PRIu64,
                tt->npeers, tt->queued, byc[0], byc[1], byc[2], type_free_slots(tt), tt->slots_total,
                type_cacheable(tt) ? "true" : "false",
                tt->deadline_ms ? tt->deadline_ms : co->cfg.default_deadline_ms,
                hist_quantile(&tt->h_exec, 0.95), tt->att_n, tt->att_p50, tt->att_p95, tt->hedges,
                tt->retries, verify_policy_name(tt->verify), tt->verify_runs, tt->verified, tt->unverified,
                tt->disagreements, tt->rate.n, urate_win_get(&tt->rate), tt->probes);
        type_stages_json(o, tt);
    }
    buf_append(o, "]", 1);
    account_stats_json(co, asker, o);
    /* Peers' names, addresses and machines are for operators only: a renter
     * sees the fabric's aggregate (peers_connected, types, pools) and its own
     * account. */
    if (!account_is_operator(co, asker)) {
        buf_append(o, "}", 1);
        return;
    }
    uint32_t total = 0;
    buf_append(o, ",\"peers\":[", 10);
    stats_peer_page(co, asker, o, offset, limit, &total);
    jprintf(o, "],\"peers_total\":%u,\"peers_offset\":%u}", total, offset);
}

/* Sends the STATS answer c is owed (c->stats_req_id and its page); with a
 * subscription, c waits on co->stats_wait for the next one. */
static int stats_answer(struct conn *c)
{
    struct coord *co = c->co;
    struct buf o;
    buf_init(&o, 8u << 20);
    stats_json(co, c, &o, c->stats_offset, c->stats_limit);
    c->stats_next_us = co->now + co->cfg.stats_interval_ms * 1000ull;
    if (c->stats_every_ms) {
        c->stats_next_us = co->now + c->stats_every_ms * 1000ull;
        if (!list_linked(&c->stats_node))
            list_push_back(&co->stats_wait, &c->stats_node);
    }
    uint8_t *b = conn_frame(c, MSG_STATS, 0, c->stats_req_id, (uint32_t)buf_used(&o));
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

/* Takes the request's id and page as what c's next answer carries. */
static void stats_set_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    c->stats_req_id = h->req_id;
    c->stats_offset = 0;
    c->stats_limit = STATS_PEERS_DEFAULT;
    if (h->body_len >= 8) {
        c->stats_offset = rd32(body);
        c->stats_limit = rd32(body + 4);
        if (c->stats_limit == 0)
            c->stats_limit = STATS_PEERS_DEFAULT;
        if (c->stats_limit > STATS_PEERS_MAX)
            c->stats_limit = STATS_PEERS_MAX;
    }
}

/* The period a subscription asks for, within the rate limit's bounds. */
static uint32_t stats_period(const struct coord *co, uint32_t every_ms)
{
    if (every_ms == 0)
        return 0;
    if (every_ms < co->cfg.stats_interval_ms)
        every_ms = co->cfg.stats_interval_ms;
    return every_ms < STATS_EVERY_MIN_MS ? STATS_EVERY_MIN_MS
           : every_ms > STATS_EVERY_MAX_MS ? STATS_EVERY_MAX_MS : every_ms;
}

int stats_on_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    struct coord *co = c->co;
    /* Optional body: u32 offset, u32 limit of the peer page, u32 every_ms
     * (5.7).  A request while a subscription runs replaces it, and is
     * answered at the subscription's next turn. */
    uint32_t every = h->body_len >= 12 ? stats_period(co, rd32(body + 8)) : 0;
    if (c->stats_every_ms && list_linked(&c->stats_node)) {
        c->stats_every_ms = every;
        stats_set_request(c, h, body);
        return 0;
    }
    c->stats_every_ms = every;
    /* One full answer per connection per --stats-interval.  A request
     * that comes sooner waits for its turn; one more while it waits is
     * answered at once with a small document saying so, so a client
     * asking in a loop is slowed down, gets one answer per request, and
     * costs the loop little. */
    if (co->now < c->stats_next_us) {
        if (list_linked(&c->stats_node)) {
            co->n.stats_limited++;
            char doc[96];
            int n = snprintf(doc, sizeof(doc), "{\"rate_limited\":true,\"retry_after_ms\":%" PRIu64 "}",
                             (c->stats_next_us - co->now + 999) / 1000);
            uint8_t *b = conn_frame(c, MSG_STATS, 0, h->req_id, (uint32_t)n);
            if (!b) {
                conn_fail(c, P2C2R_ELIMIT, "output over limit");
                return -1;
            }
            memcpy(b, doc, (size_t)n);
            return 0;
        }
        co->n.stats_delayed++;
        list_push_back(&co->stats_wait, &c->stats_node);
    }
    stats_set_request(c, h, body);
    return list_linked(&c->stats_node) ? 0 : stats_answer(c);
}

void stats_sweep(struct coord *co, uint64_t now)
{
    struct list_node *n = co->stats_wait.next;
    while (n != &co->stats_wait) {
        struct conn *c = list_entry(n, struct conn, stats_node);
        n = n->next;
        if (now < c->stats_next_us)
            continue;
        /* A subscriber whose output the kernel is not taking (a slow or
         * stopped reader) gets its next answer only when it does: answers
         * never pile up.  A busy one (output in flight, being taken) is
         * not held back. */
        if (c->stats_every_ms && conn_out_pending(c) >= STATS_HOLD_BYTES)
            continue;
        list_remove(&c->stats_node);
        if (c->state == CS_READY)
            stats_answer(c);
    }
}

/* ---- metrics (Prometheus text, GET /metrics on --metrics) ------------------- */

void stats_metrics_render(void *arg, struct buf *o)
{
    struct coord *co = arg;
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
                       (double)(co->types[i].qn[0][c] + co->types[i].qn[1][c]));
        }
    prom_help(o, "p2c2r_type_events_total", "counter", "Scheduler events by task type.");
    for (uint32_t i = 0; i < co->ntypes; i++) {
        const struct ttype *tt = &co->types[i];
        const char *ev[] = {"retry",     "hedge",      "hedge_win", "cache_hit",  "cache_miss",
                            "coalesced", "verify_run", "verified",  "unverified", "disagreement",
                            "admission_probe"};
        uint64_t v[] = {tt->retries,   tt->hedges,      tt->hedge_wins, tt->cache_hits, tt->cache_misses,
                        tt->coalesced, tt->verify_runs, tt->verified,   tt->unverified, tt->disagreements,
                        tt->probes};
        for (size_t e = 0; e < ARRAY_LEN(ev); e++) {
            snprintf(lb, sizeof(lb), "type=\"%s\",event=\"%s\"", tt->name, ev[e]);
            prom_counter(o, "p2c2r_type_events_total", lb, v[e]);
        }
    }
    uint32_t bystate[3] = {0};
    for (struct list_node *n = co->peers.next; n != &co->peers; n = n->next)
        bystate[list_entry(n, struct peer_rec, node)->state]++;
    prom_help(o, "p2c2r_peers", "gauge", "Registered peers by state.");
    for (int st = 0; st < 3; st++) {
        snprintf(lb, sizeof(lb), "state=\"%s\"", peer_state_name(st));
        prom_gauge(o, "p2c2r_peers", lb, (double)bystate[st]);
    }
    /* Each peer's verification record, labelled by its id (the peer_id of
     * DELIVER and STATS): one series per connected peer and figure. */
    static const struct {
        const char *name, *type, *help;
    } pm[] = {
        {"p2c2r_peer_verified_total", "counter", "Results of the peer that an independent peer confirmed."},
        {"p2c2r_peer_disagreements_total", "counter", "Results of the peer that differed from another peer's."},
        {"p2c2r_peer_lies_total", "counter", "Results of the peer that independent peers outvoted."},
        {"p2c2r_peer_trust", "gauge", "Trust the scheduler derives from verified results and strikes (0..1)."},
    };
    for (size_t k = 0; k < ARRAY_LEN(pm); k++) {
        prom_help(o, pm[k].name, pm[k].type, pm[k].help);
        for (struct list_node *n = co->peers.next; n != &co->peers; n = n->next) {
            const struct peer_rec *p = list_entry(n, struct peer_rec, node);
            snprintf(lb, sizeof(lb), "peer=\"%u\"", p->id);
            if (k == 0)
                prom_counter(o, pm[k].name, lb, p->verified);
            else if (k == 1)
                prom_counter(o, pm[k].name, lb, p->disagreements);
            else if (k == 2)
                prom_counter(o, pm[k].name, lb, p->lies);
            else
                prom_gauge(o, pm[k].name, lb, peer_trust(p));
        }
    }
    pools_metrics(co, o);
    struct snap s;
    snap_take(co, &s);
    for (size_t i = 0; i < ARRAY_LEN(stat_defs); i++) {
        const struct stat_def *d = &stat_defs[i];
        if (!d->prom)
            continue;
        prom_help(o, d->prom, d->kind == K_COUNTER ? "counter" : "gauge", d->help);
        if (d->kind == K_COUNTER)
            prom_counter(o, d->prom, "", stat_value(&s, d));
        else
            prom_gauge(o, d->prom, "", (double)stat_value(&s, d));
    }
    account_metrics(co, o);
}
