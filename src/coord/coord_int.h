/* coord_int.h - the coordinator's internal header: the structures every
 * module of p2c2rd's core shares, and the functions they call across
 * modules (in the spirit of redis's server.h).  Nothing outside src/coord
 * includes it; the public face of the coordinator is coord.h.
 *
 * Modules (docs/ARCHITECTURE.md, "The coordinator's modules"):
 *   coord.c   lifecycle: new / run / stop / free, the periodic sweep, shutdown
 *   config.c  defaults, option lists
 *   account.c accounts and tiers: logins, tier limits, the credentials file (acctfile.c)
 *   conn.c    connections: accept, framing (common/fconn), handler table, cuts, timeouts
 *   renter.c  HELLO, SUBMIT / SUBMIT_BATCH acceptance, CANCEL
 *   peers.c   peer registry, breaker, credits, pings, RESULT, the type table
 *   sched.c   queues, next task for a peer, peer choice, admission, retries, hedges
 *   share.c   shares: what the scheduler is fair between (a renter's token or
 *             account), their weights and per-type queues, the fair order
 *   urate.c   time per cost unit, learned robustly per type and per peer (urate.h)
 *   task.c    task slab and state machine, heaps, coalescing, outcomes
 *   verify.c  verification: results checked by independent peers before they count
 *   blobs.c   the blob store and per-peer blob hints
 *   claims.c  measured claims: capability clamps, earned slots, stallers, exec_us bounds
 *   stats.c   one counter table rendered as STATS JSON and Prometheus text
 *   tlsserve.c TLS on the coordinator's port: the context, each connection's session, refusals
 *   peerdb.c  what is known about each peer key (reputation, quarantine, the
 *             operator's ban, pin and group), loaded from and flushed to the store
 *
 * Everything here runs on the coordinator's loop thread; nothing is locked. */
#ifndef P2C2R_COORD_INT_H
#define P2C2R_COORD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/fconn.h"
#include "common/hist.h"
#include "common/list.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "coord/account.h"
#include "coord/coord.h"
#include "coord/mem.h"
#include "coord/gateway.h"
#include "coord/metrics_http.h"
#include "coord/rcache.h"
#include "coord/store.h"
#include "coord/urate.h"
#include "p2c2r/error.h"

#define READ_CHUNK (256u * 1024)
#define SWEEP_MS 5          /* deadlines and hedges */
#define CONN_SWEEP_TICKS 20 /* housekeeping every 100 ms */
#define DRAIN_MS 200
#define TASK_CHUNK 1024
#define TASK_INLINE 112
#define BLOB_BUCKETS 4096
#define PEER_BUCKETS 4096 /* peers by id, for judging a peer by a result it gave earlier */
#define PEER_HAS_CAP 1024
#define EXCL_MAX 4               /* peers a retried task remembers to avoid */
#define COALESCE_BUCKETS 16384
#define DUP_RING 16              /* task ids a peer answered lately */
#define KEY_FLUSH_TICKS 40       /* peer records go to the store every 200 ms */
#define SAMPLE_D 3               /* power of d choices */
/* A peer that holds all of a task's blob bytes scores up to this much
 * lower for it (sched.c, task_score): close scores go to the holder. */
#define BLOB_AFFINITY 0.25
#define STAT_MIN_SAMPLES 20      /* before hedging or admission estimates */
/* A type that refused every task for this long, or this many times in a
 * row, admits the next one whatever its estimate (docs/ARCHITECTURE.md,
 * "Admission"): refusals teach nothing, so no type is locked out. */
#define PROBE_AFTER_US 1000000ull
#define PROBE_AFTER_REFUSALS 16u
#define HEDGE_SKIP_MAX 64        /* unhedgeable attempts one sweep passes over, per type */
#define LOOK_PAST 16             /* queued tasks a peer looks past when it cannot run the front */
#define SHARE_LOOK 16            /* shares a peer looks at when it can run nothing of the first */
#define SHARE_BUCKETS 4096
#define SHARE_KEY_MAX (PROTO_MAX_TOKEN + 8) /* bytes of a share's key ("tok:" and a token, an account name) */
#define WINDOW_US 10000000ull    /* latency windows for p50/p95 rotate every 10 s */
#define NO_IDX UINT32_MAX
/* Measured claims (claims.c; docs/ARCHITECTURE.md, "Measured claims"). */
#define CLAIM_MAX_CORES 1024u
#define CLAIM_MAX_MEM (16ull << 40) /* 16 TiB */
#define CLAIM_MAX_VERSION 1000000u
#define HELD_START 8u          /* tasks a new peer may hold, whatever slots it declares */
#define STALL_MULT 4           /* overdue past this multiple of its predicted time... */
#define STALL_FLOOR_US 50000u  /* ...and past this, or a quarter of the task's time if less... */
#define STALL_MIN_US 1000u     /* ...but never under this */
#define STALL_WALK 256u        /* peers judged per 5 ms sweep */
#define VERIFY_MAX_RUNS 6        /* further runs of one task while its result is being verified */
#define VERIFY_SUPPORT 4         /* peers remembered per candidate result */
#define NCODES (1 - P2C2R_ERROR_MIN)

enum conn_state { CS_HELLO, CS_READY, CS_DRAINING, CS_CLOSED };
enum task_state { TS_FREE, TS_QUEUED, TS_RUNNING, TS_FOLLOWER, TS_ORPHAN };
enum peer_state { PS_OK, PS_QUARANTINED, PS_PROBING };

/* How a task's result is checked before it counts (docs/ARCHITECTURE.md,
 * "Verification"): not at all; adaptively (always for peers without an
 * established record, spot checks for the others); or N agreeing results
 * from independent peers. */
enum verify_policy { VP_NONE, VP_ADAPTIVE, VP_QUORUM2, VP_QUORUM3, VP_COUNT };

const char *conn_state_name(int s);
const char *task_state_name(int s);
const char *peer_state_name(int s);
extern const char *const prio_name[PRIO_CLASSES];

struct task;

/* A binary min-heap of tasks ordered by (deadline, submit order); each task
 * remembers its position so removal is O(log n). */
struct theap {
    struct task **a;
    uint32_t n, cap;
};

/* One priority class of one type in one share: EDF heap plus FIFO (for aging). */
struct tqueue {
    struct theap h;
    struct list_node fifo;
    uint64_t cost; /* sum of its tasks' costs (tasks_estimate) */
};

/* One share's queues of one type (share.c): its tasks by kind and class,
 * and its place in the type's fair order. */
struct squeue {
    struct share *sh;
    struct tqueue q[2][PRIO_CLASSES];
    uint32_t queued;
    uint32_t hidx;  /* in its type's heap of shares with work (ttype.sq), NO_IDX when idle */
    uint32_t epoch; /* the type's fair_epoch when its tag was last set */
    double tag;     /* start-time fair queueing: the virtual start of its next task */
};

/* What the scheduler is fair between (share.c): every renter connection
 * with the same key (its token or account; "conn:<id>" without tokens)
 * shares one.  Refcounted: each connection and each task holds a
 * reference. */
struct share {
    struct share *hnext;
    uint32_t refs, id;
    double weight;           /* > 0: its part of a contended type is weight / sum of weights */
    uint32_t queued;         /* over its squeues */
    uint64_t queued_bytes;
    struct squeue *sq[PROTO_MAX_TYPES]; /* by type index, made on first use */
    uint16_t key_len;
    char key[SHARE_KEY_MAX + 1];
};

struct ttype {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint8_t name_len;
    /* Results are cached and identical tasks coalesced when the operator
     * allows it for this type (--cache-types) and every registered peer of
     * it declared its executor deterministic (PEER_REGISTER): see
     * type_cacheable. */
    uint8_t cache_ok;
    uint32_t nnondet; /* registered peers that did not declare it deterministic */
    /* Queued tasks by kind ([0]: tasks any peer of the type may run; [1]:
     * tasks with requirements (GPU, cores, memory), queued apart so they
     * never block the others) and class, over every share. */
    uint32_t qn[2][PRIO_CLASSES];
    uint32_t queued;
    /* Fair order between shares (share.c): a min-heap by tag of the shares
     * with queued tasks of this type, the type's virtual time (the tag of
     * the last task dispatched from a queue), the sum of those shares'
     * weights, and an epoch that ends when no share has work left. */
    struct squeue **sq;
    uint32_t nsq, sq_cap, fair_epoch;
    double vtime, wsum;
    struct peer_rec **peers;
    uint32_t npeers, peers_cap;
    struct peer_rec **free; /* peers that can take a task now, by pool (peerpool.c) */
    uint32_t nfree, free_cap;
    uint32_t free_end[PROTO_POOLS]; /* pool k's free peers: free[free_end[k-1] .. free_end[k]) */
    uint32_t npool[PROTO_POOLS];    /* registered peers of the type in each pool */
    uint64_t slots_total;   /* over registered peers */
    uint64_t no_peer_since; /* when npeers became 0 (us) */
    uint32_t deadline_ms;   /* default deadline for the type, 0 = global */
    struct list_node running; /* first attempts by start time: hedge candidates */
    /* Latency of whole attempts (assign to result) in two rotating windows,
     * and the quantiles derived from them each 100 ms. */
    struct hist att[2];
    uint64_t att_since;
    uint64_t att_p50, att_p95, att_n;
    double exec_ewma; /* us */
    /* Admission by cost: time per cost unit (median of recent attempts'
     * exec_us / cost), the time an attempt takes beyond its execution
     * (dispatch, transfer; a median too, as a peer that reports exec_us 0
     * and holds a task makes that large), the mean cost of admitted tasks (a running
     * task's share of a queue wait), and the run of refusals that decides
     * a probe (sched.c, admission_decide). */
    struct urate_win rate;
    struct urate_win disp; /* us per attempt (a median, like rate) */
    struct urate_win prate[PROTO_POOLS]; /* rate, learned per pool (peerpool.c) */
    double cost_ewma;
    uint32_t refused_row;
    uint64_t refused_since; /* us: the first refusal of the run */
    uint64_t probes;        /* tasks admitted as probes */
    struct hist h_queue, h_dispatch, h_exec, h_total;
    uint64_t outcomes[NCODES]; /* DELIVERs by status */
    uint64_t rejected[NCODES]; /* REJECTEDs by code */
    uint64_t retries, hedges, hedge_wins, cache_hits, cache_misses, coalesced;
    uint8_t verify; /* enum verify_policy of its tasks (--verify) */
    uint64_t unserved_since; /* tasks queued and no peer with a slot for it since (us), 0: served */
    uint64_t verify_runs, verified, unverified, disagreements;
};

/* What a peer has for one task type; versions and execution times sit
 * together so that judging a peer for a type touches one cache line. */
struct peer_type {
    uint32_t version;
    uint8_t det; /* declared deterministic (PROTO_TYPE_F_DETERMINISTIC) */
    float exec_ewma; /* us */
    float rate;      /* us per cost unit (urate_ewma_add), 0 = none yet */
    uint32_t pos;    /* index in ttype.peers */
    uint32_t fpos;   /* index in ttype.free */
};

/* What the coordinator knows about one peer key (DESIGN.md decision 8):
 * one record per Ed25519 public key, shared by every connection that
 * registers with the key, kept across reconnects and (with --state) across
 * restarts.  The record is the truth for reputation; each connected
 * peer_rec mirrors good, strikes and quarantines (peerdb_sync) so the
 * scheduler's hot path reads its own cache line. */
struct ident_rec {
    uint8_t pk[STORE_PK_LEN];
    struct ident_rec *hnext;   /* co->key_tab chain */
    struct list_node peers;    /* connected peer_recs with this key (peer_rec.knode) */
    struct list_node dnode;    /* co->key_dirty while changed and not yet put */
    uint32_t id;               /* 1, 2, ... in this process: STATS peers[].key_id */
    uint32_t group;            /* quorum group: its operator group's id, else its own id */
    uint32_t nconns;           /* connected peers with this key */
    uint8_t banned, pinned, dirty;
    uint64_t good, verified, disagreements, strikes, lies, quarantines;
    uint64_t quarantined_until_ms; /* wall clock; 0 or past: not quarantined */
    uint64_t first_seen_ms, last_seen_ms; /* wall clock */
    char group_name[STORE_GROUP_MAX + 1]; /* the operator's group, "" for none */
    char name[STORE_NAME_MAX + 1];        /* the name of its last HELLO */
};

/* The fields pick_peer reads of every sampled peer come first, so that
 * choosing among 10,000 peers costs about two cache misses per sample. */
struct peer_rec {
    uint32_t id;
    uint32_t slots, inflight; /* slots: declared (PEER_REGISTER, CREDIT); see peer_slots */
    uint16_t cores;
    uint8_t gpu, state, eligible;
    uint8_t pool;         /* PROTO_POOL_*, as its operator declared (peerpool.c) */
    uint8_t pool_trusted; /* its pool is one the operator trusts (--trust-pool) */
    uint64_t mem;
    float fail_ewma, rtt_us;
    uint64_t strikes, good; /* its key's: results contradicted / counted good (peerdb_sync) */
    /* Verification record of this connection: results an independent
     * peer confirmed (in all, and in a row since the last disagreement),
     * results that disagreed with another peer's, and of those the ones on
     * the losing side (lies).  The totals are its key's (peerdb_sync); the
     * run in a row starts again with each connection. */
    uint64_t verified, consec_verified, disagreements, lies;
    uint32_t types;         /* bitmask of ttype indexes */
    uint32_t cost;          /* price asked per cost unit (PEER_REGISTER pool block) */
    /* Peers of one group are one peer for quorum purposes: every
     * connection of a key, and every key the operator grouped together,
     * share it (ident_rec.group).  Results are independent only when their
     * peers' groups differ. */
    uint32_t group;
    struct conn *conn;
    struct ident_rec *key;  /* its key's record (NULL only in unit tests) */
    struct list_node knode; /* key->peers */
    struct peer_type ty[PROTO_MAX_TYPES];
    char gpu_model[PROTO_MAX_NAME + 1];
    struct list_node attempts; /* live attempts */
    struct list_node checks;   /* queued checks reserved for this peer (task.cnode) */
    struct list_node node;     /* co->peers */
    struct peer_rec *hnext;    /* co->peer_tab chain */
    struct list_node qnode;    /* co->quarantined, while quarantined */
    uint64_t done, failed;
    uint32_t consec_strikes, quarantines;
    uint32_t held_limit, stalls; /* earned tasks-held limit; times found holding overdue tasks */
    uint64_t last_answer_us;     /* its last RESULT, or its registration */
    uint64_t state_until_us;
    uint64_t ping_sent_us;
    uint64_t recent[DUP_RING];
    uint32_t recent_pos;
    /* Blobs this peer was sent (first 8 hash bytes, 0 = empty slot).  Only a
     * hint: cleared when half full, and a peer that lost a blob answers
     * ENOBLOB, which clears it too and resends. */
    uint64_t *has; /* PEER_HAS_CAP entries, allocated with the first blob */
    uint32_t has_n;
};

/* One ASSIGN of a task to a peer.  A task holds at most two (a hedge). */
struct attempt {
    struct task *t;
    struct peer_rec *peer; /* NULL: slot unused */
    struct list_node pnode; /* peer's attempts */
    struct list_node hnode; /* type's running list (first attempts only) */
    uint64_t start_us;
    uint8_t cancelled, hedge, overdue;
};

/* One result being verified and the peers (of distinct groups) that
 * returned it. */
struct vcand {
    uint8_t *out; /* owned copy */
    uint32_t len, exec_us;
    uint32_t peers[VERIFY_SUPPORT], groups[VERIFY_SUPPORT];
    uint8_t n;
    uint8_t est; /* a supporter had an established record (verify_established) */
};

/* A task whose result is being verified: up to three different results
 * so far (two liars that lie differently cannot crowd out the honest one). */
struct vstate {
    struct vcand c[3];
    uint8_t ncand, need, runs;
    uint8_t want_est; /* the next check must run on an established peer */
    uint32_t checker; /* the peer the next check is reserved for (0: any) */
};

struct task {
    uint64_t id; /* generation << 32 | slab index */
    struct conn *renter;
    uint64_t ticket;
    struct list_node rnode;     /* renter's tasks */
    struct list_node qnode;     /* queue FIFO, or the leader's followers */
    struct list_node followers; /* leader: identical tasks waiting on it */
    struct task *leader;        /* follower: the task it waits on */
    struct task *cnext;         /* coalescing bucket chain */
    struct rcache_key key;
    struct share *share; /* a reference: whose part of the fabric it runs in; NULL: the default */
    struct squeue *sq;   /* while queued: the queues it is in */
    struct attempt at[2];
    uint8_t state, tt, prio, kind, flags, nlive, keyed, cacheable, hedged, verified;
    struct vstate *vs; /* while its result is being verified, else NULL */
    struct list_node vnode; /* co->vwait while queued with vs */
    struct list_node cnode; /* its checker's peer_rec.checks while queued for it */
    uint16_t attempts, tries, err_status;
    uint32_t err_peer, err_group; /* the peer (and its group) whose error awaits a second opinion */
    uint32_t excl[EXCL_MAX];
    uint8_t nexcl;
    uint32_t qidx, dlidx;
    uint32_t body_len;
    uint8_t *body; /* the task body exactly as submitted; forwarded as ASSIGN */
    uint32_t min_version;
    struct proto_reqs reqs;
    uint64_t seq; /* submit order: ties in deadline go first come first served */
    uint64_t cost; /* tasks_estimate of its type, params, input and blobs; >= 1 */
    uint64_t submit_us, deadline_us, first_assign_us;
    /* Its place in an EDF queue: its deadline, or the earlier deadline of a
     * task coalesced onto it (which waits for this run). */
    uint64_t urgent_us;
    uint32_t next_free;
    uint8_t nblobs, blob_retries;
    struct blob *blobs[PROTO_MAX_BLOBS]; /* referenced, so never evicted meanwhile */
    /* Its memory charge (mem.h): to the account of the renter it came
     * from, held until task_free, whoever holds the task by then. */
    struct mem_acct *macct;
    uint64_t mcharge; /* its slot and body, and copies of results being verified */
    struct job *job; /* a durable job's task (jobs.c), NULL for a live task */
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
    struct mem_acct *owner; /* the account charged for it (its first uploader) */
    size_t charge;          /* len + MEM_BLOB_OVERHEAD */
    struct account *uploader; /* who uploaded it (its blob quota), NULL without accounts */
};

struct conn {
    struct fconn io; /* io.tcp.data points back here */
    struct coord *co;
    uint64_t id;
    uint8_t role, state, detached;
    char addr[64];
    char name[PROTO_MAX_NAME + 1];
    struct list_node all_node, reap_node, drain_node;
    uint64_t created_us, last_rx_us, drain_until_us;
    uint32_t inflight;      /* renter: outstanding tasks */
    struct list_node tasks; /* renter: its outstanding tasks */
    struct peer_rec *peer;  /* peer: after PEER_REGISTER */
    struct share *share;    /* renter: after HELLO (a reference) */
    uint8_t nonce[PROTO_NONCE_LEN]; /* peer: the challenge its HELLO_OK carried */
    /* Memory (limits.c): the renter's account, NULL for peers and before
     * HELLO; the buffer bytes charged for it; since when a partial frame
     * has been waiting for its end (0: none). */
    struct mem_acct *macct;
    uint64_t buf_charged, partial_since_us;
    struct list_node hello_node; /* co->hello_conns while unauthenticated */
    uint8_t authed;              /* counted in co->nauth */
    /* STATS rate limit: the next time an answer may go out, and a request
     * waiting for it (co->stats_wait). */
    struct list_node stats_node;
    uint64_t stats_next_us, stats_req_id;
    uint32_t stats_offset, stats_limit;
    uint32_t stats_every_ms; /* a subscription: an answer every so often, 0 = none */
    struct account *acct;   /* after HELLO, with a credentials file: whose it is (account.h) */
    struct list_node anode; /* its account's conns */
    struct gw *gw;          /* a WebSocket gateway connection (gateway.c), else NULL */
    uint8_t tls_done;       /* its TLS handshake completed (tlsserve.c) */
    uint8_t tls_slot;       /* it holds one of the handshake slots (tlsserve.c) */
    struct list_node tls_wait_node; /* on co->tls_wait or co->tls_held (tlsserve.c) */
    uint8_t *tls_stash;     /* its first bytes, read while it waits (tlsserve.c) */
    uint32_t tls_stash_len;
    uint64_t tls_slot_us;   /* when it took its handshake slot */
};

struct counters {
    uint64_t submitted, accepted, rejected, delivered_ok, delivered_err;
    uint64_t requeued, lost, timed_out, cancelled, late_results, duplicate_results;
    uint64_t retries, hedges, hedge_wins, quarantines, coalesced; /* cache hits/misses: rcache_stats */
    uint64_t rejected_deadline, admission_probes, rejected_capability, pings, rejected_share_queue;
    uint64_t claims_clamped, exec_us_clamped, stall_hedges, staller_cuts;
    uint64_t blobs_put, blobs_sent, blob_misses;
    uint64_t conns_total, proto_errors, auth_failures, limit_cuts;
    uint64_t verify_runs, verified, unverified, disagreements, liars;
    uint64_t bytes_in, bytes_out;
    uint64_t mem_refused, frame_timeouts, idle_timeouts, unauth_evicted, stats_delayed, stats_limited;
    uint64_t types_refused, unserved_failed;
    uint64_t gw_upgrades, gw_messages_in, gw_messages_out, gw_bad; /* gateway.c */
    /* Durable jobs and the ledger (jobs.c, ledger.c). */
    uint64_t jobs_submitted, jobs_acked, jobs_refused, jobs_finished, jobs_deleted;
    uint64_t job_commits, job_commit_errors;
    uint64_t ledger_txns, ledger_reversals, credits_earned, credits_spent;
    uint64_t tls_handshakes, tls_failures, tls_plain_refused; /* tlsserve.c */
};

/* One pool's figures (STATS "pools", p2c2r_pool_*): uint64_t only, read
 * by offset from one table (peerpool.c). */
struct pool_stat {
    uint64_t peers, cost_sum, placed, spilled;
};

/* A per-type default deadline from --type-deadline. */
struct type_deadline {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint32_t ms;
};

/* A per-type verification policy from --verify. */
struct type_verify {
    char name[PROTO_MAX_TYPE_NAME + 1];
    uint8_t policy; /* enum verify_policy */
};

struct coord {
    struct coord_config cfg;
    struct tls_ctx *tls; /* NULL = plaintext (tlsserve.c) */
    uint32_t tls_busy;   /* handshakes in progress (slots taken) */
    struct list_node tls_wait; /* connections waiting to begin theirs */
    struct list_node tls_held; /* connections holding a slot, oldest first */
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_check_t flusher;
    uv_timer_t sweeper;
    uv_signal_t sigint, sigterm, sighup;
    uv_async_t stopper;
    char addr[64];
    int stopping, ready_sent;
    uint64_t stop_deadline_us;
    uint32_t ticks;
    /* The clock, read once at the top of each loop callback: every event a
     * callback handles shares it (a read costs ~45 ns on a VM, and a task
     * used to read it five times).  Never decreases. */
    uint64_t now;

    struct list_node conns, dirty, reap, peers;
    struct peer_rec *peer_tab[PEER_BUCKETS];
    /* Connection housekeeping looks at every connection once per walk
     * period (timeouts, pings) a slice per 100 ms, from this cursor into
     * conns; draining connections and quarantined peers, which need it
     * sooner, have lists of their own. */
    struct list_node *walk;
    struct list_node *stall_walk; /* claims_sweep's cursor into peers (NULL: from the start) */
    struct list_node draining, quarantined;
    /* Queued tasks whose result is being verified: an adaptive one settles
     * for what it has once no independent peer is connected (verify_sweep). */
    struct list_node vwait;
    uint32_t nconns, nrenters, npeers;
    uint64_t next_conn_id;
    uint32_t next_peer_id;

    struct ttype types[PROTO_MAX_TYPES];
    uint32_t ntypes;
    struct type_deadline tdl[PROTO_MAX_TYPES];
    uint32_t ntdl;
    char cache_types[PROTO_MAX_TYPES][PROTO_MAX_TYPE_NAME + 1];
    uint32_t ncache_types;
    struct type_verify tver[PROTO_MAX_TYPES];
    uint32_t ntver;
    uint8_t verify_default; /* enum verify_policy of types --verify does not name */
    struct pool_stat pools[PROTO_POOLS];
    uint8_t trust_pools; /* bit k: pool k is trusted for verification (--trust-pool) */

    struct task **chunks;
    uint32_t nchunks, free_head, tasks_live;
    uint32_t gen;
    uint64_t seq;
    uint32_t queued_total;
    uint64_t queued_bytes;
    struct theap dl; /* every task whose outcome is pending, by deadline */
    struct task *coalesce[COALESCE_BUCKETS];
    struct rcache *cache;
    struct mhttp *metrics;
    struct gateway *gw; /* gateway.c: the WebSocket connections' output list */

    uint8_t *rbuf; /* shared read buffer: a connection keeps its own only for a partial frame */
    struct blob *blob_tab[BLOB_BUCKETS];
    struct list_node blob_lru;
    size_t blob_bytes;
    uint32_t nblob;
    struct rng rng;
    struct counters n;
    /* Shares by key (share.c); the default share (share0, never freed)
     * holds tasks without one. */
    struct share *share_tab[SHARE_BUCKETS];
    struct share *share_default;
    struct share share0;
    uint32_t nshares, next_share_id;
    struct acct_table *accts; /* accounts and tiers (account.c); NULL: no credentials file */

    /* Peer keys (peerdb.c): records by public key, the operator's groups,
     * the store they persist in (NULL without --state). */
    struct ident_rec **key_tab;
    uint32_t key_buckets, nkeys, next_key_id;
    uint64_t key_seed;
    struct list_node key_dirty;
    struct key_group *groups;
    uint32_t ngroups, groups_cap;
    struct store *store;
    int store_lock_fd;

    /* Memory and connection limits (limits.c). */
    struct mem_budget mem;
    size_t blob_cap;                /* the blob store's effective cap */
    struct list_node hello_conns;   /* unauthenticated connections, oldest first */
    uint32_t nhello, nauth;         /* ...and connections past HELLO (--max-conns) */
    struct list_node stats_wait;    /* connections with a STATS answer held back */
    struct jobs *jobs;     /* durable jobs (jobs.c), NULL without --state */
    struct ledger *ledger; /* the credit ledger (ledger.c), NULL without --state */
};

#define NO_FREE UINT32_MAX


/* ---- task.c: slab, state machine, heaps, coalescing, outcomes ----------- */

/* Whether a task (peer) may go from state from to state to.  Setting an
 * illegal one is a bug in the coordinator, never a remote's doing: abort. */
int task_transition_ok(int from, int to);
void task_set_state(struct task *t, int to);
struct task *task_alloc(struct coord *co);
void task_free(struct coord *co, struct task *t);
/* The live task with this id (generation << 32 | slab index), or NULL. */
struct task *task_lookup(struct coord *co, uint64_t id);
/* Queue order: whether a runs before b (urgent_us, then submit order). */
int task_before(const struct task *a, const struct task *b);
/* dl = 0: a queue's EDF heap (qidx); dl = 1: the deadline heap (dlidx). */
void heap_push(struct theap *h, struct task *t, int dl);
void heap_remove(struct theap *h, struct task *t, int dl);
struct task *coalesce_find(struct coord *co, const struct rcache_key *k, uint32_t min_version);
void coalesce_add(struct coord *co, struct task *t);
/* Ends attempt a (its RESULT came, or its peer is gone). */
void attempt_end(struct coord *co, struct attempt *a);
/* Sends one DELIVER; -1 when r was cut for its full output. */
int send_deliver(struct coord *co, struct conn *r, uint64_t ticket, int status, uint16_t attempts,
                 uint32_t exec_us, uint32_t peer_id, uint32_t flags, const uint8_t *out, size_t len);
/* The outcome of t's computation, for t and every task coalesced onto it. */
void task_finish(struct coord *co, struct task *t, int status, const uint8_t *out, size_t len,
                 uint32_t exec_us, uint32_t peer_id);
/* Ends t now (timeout, cancel, shutdown, renter gone) with a text outcome. */
void task_end_early(struct coord *co, struct task *t, int status, const char *text);
void task_sweep_deadlines(struct coord *co, uint64_t now);

/* ---- sched.c: queues, choice of task and peer, admission, retries, hedges */

int task_fits(const struct coord *co, const struct task *t, const struct peer_rec *p);
/* Whether a connected peer outside group, and outside the groups t excludes, could run t
 * (version, requirements): whether another run could judge an error of group's. */
int task_other_group_can_run(const struct coord *co, const struct task *t, uint32_t group);
double peer_trust(const struct peer_rec *p);
double peer_score(const struct coord *co, const struct peer_rec *p, int ti);
double task_score(const struct coord *co, const struct peer_rec *p, const struct task *t);
struct peer_rec *pick_peer(struct coord *co, const struct task *t);
/* The best of SAMPLE_D peers drawn from tt->free[lo .. lo + n) that can
 * take t (the whole free set, or one pool's part of it); NULL when none. */
struct peer_rec *pick_in(struct coord *co, const struct task *t, uint32_t lo, uint32_t n);
void task_enqueue(struct coord *co, struct task *t, int front);
void task_dequeue(struct coord *co, struct task *t);
int task_level(const struct coord *co, const struct task *t, uint64_t now);
/* Where a task at this level stands in EDF order: its urgent_us, or, once
 * it has risen above its class, no later than one aging period after it
 * reached the level (docs/ARCHITECTURE.md, "Priority classes and aging"). */
uint64_t task_key(const struct coord *co, const struct task *t, int level);
struct task *next_for_peer(struct coord *co, struct peer_rec *p, uint64_t now);
void ewma(double *v, double sample);
void ewmaf(float *v, double sample);
void type_stats_tick(struct ttype *tt, uint64_t now);
/* Sends t to p as a new attempt; -1 when p was cut for its full output. */
int task_assign(struct coord *co, struct task *t, struct peer_rec *p, int hedge);
/* Puts t on the best peer that can take it now: 1 when placed, else 0. */
int task_place(struct coord *co, struct task *t);
void type_kick(struct coord *co, int ti);
void task_retry(struct coord *co, struct task *t, uint32_t failed_group);
/* Makes t avoid peer_id (it failed t), remembering the last EXCL_MAX. */
void task_exclude(struct task *t, uint32_t group);
/* Fills p's free slots from the queues of its types. */
void dispatch_peer(struct coord *co, struct peer_rec *p);
int type_can_meet(const struct ttype *tt, int ti, uint32_t v, const struct proto_reqs *r);
/* How admission saw a task: the parts of its expected time. */
struct admit_est {
    uint64_t us;       /* expected time until its result; 0: too little known to say */
    uint64_t run_us;   /* its own run: cost x rate + the type's dispatch time */
    double rate;       /* us per cost unit used */
    uint32_t ahead;    /* tasks queued in its class or above (when no peer is free) */
};
/* The expected time of a task of type tt, class prio, with this cost, from
 * a share of weight w whose queues of the type are own (NULL: none yet)
 * (docs/ARCHITECTURE.md, "Admission"); fills *e and returns e->us, 0 with
 * fewer than STAT_MIN_SAMPLES rate samples. */
uint64_t admission_estimate(const struct ttype *tt, const struct squeue *own, double w, int kind, int prio,
                            uint64_t cost, struct admit_est *e);
/* Whether a task expected to take est_us with dl_us to its deadline is
 * admitted at now: 1 admitted, 2 admitted as a probe (the type refused
 * everything for PROBE_AFTER_US or PROBE_AFTER_REFUSALS in a row), 0
 * refused (counted in the type's run of refusals). */
int admission_decide(struct ttype *tt, uint64_t est_us, uint64_t dl_us, uint64_t now);
void sched_sweep_hedges(struct coord *co, uint64_t now);

/* ---- share.c: shares and the fair order between them ---------------------- */

/* The share called key (len bytes, at most SHARE_KEY_MAX), created with
 * weight if new (an existing share takes the new weight): returns a new
 * reference. */
struct share *share_get(struct coord *co, const char *key, size_t len, double weight);
/* Gives the share called key, if it exists, a new weight (a reloaded
 * tier's); no reference taken. */
void share_reweight(struct coord *co, const char *key, size_t len, double weight);
/* Takes one more reference to sh (NULL: none) and returns sh. */
struct share *share_ref(struct share *sh);
/* Drops a reference; the last one frees sh and its queues (which are
 * empty by then: every queued task holds a reference).  NULL is a no-op. */
void share_put(struct coord *co, struct share *sh);
/* t's share (the default one for a task without). */
static inline struct share *task_share(const struct coord *co, const struct task *t)
{
    return t->share ? t->share : co->share_default;
}
/* sh's queues of type ti, made on first use. */
struct squeue *share_squeue(struct coord *co, struct share *sh, int ti);
/* sq got its first queued task (it joins its type's fair order), or lost
 * its last one (it leaves it). */
void share_activate(struct coord *co, int ti, struct squeue *sq);
void share_deactivate(struct coord *co, int ti, struct squeue *sq);
/* t, queued in sq, is about to be dispatched: its share's tag moves on by
 * t's cost over its weight, and the type's virtual time to its start. */
void share_charge(struct coord *co, struct task *t);
/* How far sq is ahead of its type's virtual time, in typical tasks of the
 * type: shares are compared across types by it. */
double share_lag(const struct ttype *tt, const struct squeue *sq);
/* Whether one more task of len bytes would take sh past its part of the
 * queue: half of what the other shares leave free of --queue-max (and of
 * the byte cap), so no share can fill the queue for the others. */
int share_queue_full(const struct coord *co, const struct share *sh, size_t len);
/* Sets up the default share (coord_state_init: allocates nothing) / frees
 * every share's queues and every share (coord_state_free). */
void shares_init(struct coord *co);
void shares_free(struct coord *co);
/* The first queued task of type ti in any share, or NULL (for sweeps that
 * end every queued task of a type). */
struct task *type_first_queued(struct coord *co, int ti);

/* ---- peerpool.c: peer pools (volunteer, cloud) --------------------------- */

const char *pool_name(int k);
/* The pool called s (n bytes), or -1. */
int pool_parse(const char *s, size_t n);
/* Parses --trust-pool "POOL[,POOL]" into co->trust_pools; EINVAL with a
 * reason in err. */
int pools_parse_trust(struct coord *co, const char *spec, char *err, size_t errcap);
/* Adds p to / removes p from its pool's part of tt's free set (room for
 * one more is the caller's: peer_refresh). */
void pool_free_add(struct ttype *tt, int ti, struct peer_rec *p);
void pool_free_remove(struct ttype *tt, int ti, struct peer_rec *p);
/* A registered peer joins / leaves its pool's figures. */
void pools_peer_join(struct coord *co, struct peer_rec *p);
void pools_peer_leave(struct coord *co, struct peer_rec *p);
/* Whether tt has registered peers in more than one pool. */
int pools_mixed(const struct ttype *tt);
/* t's expected time on p in us (t's cost x p's rate, else its pool's, plus
 * the type's dispatch time); 0 when nothing is known. */
uint64_t pool_expect_us(const struct coord *co, const struct peer_rec *p, const struct task *t);
/* For a type with peers in several pools: the best free peer of the
 * cheapest pool whose choice is expected to meet t's deadline (or not yet
 * measured); when none is, the one expected to come closest.  NULL when no
 * free peer can take t. */
struct peer_rec *pools_pick(struct coord *co, const struct task *t);
/* Admission's rate for a type with peers in several pools: the fastest
 * pool's; *known 0 (and 0 returned) while a pool of the type has fewer
 * than STAT_MIN_SAMPLES samples. */
double pools_type_rate(const struct ttype *tt, int *known);
/* STATS "pools":[...] and the p2c2r_pool_* metrics, from one table. */
void pools_stats_json(const struct coord *co, struct buf *o);
void pools_metrics(const struct coord *co, struct buf *o);

/* ---- peers.c: registry, breaker, credits, results, the type table -------- */

int peer_transition_ok(int from, int to);
void peer_set_state(struct peer_rec *p, int to);
int peer_can_take(const struct peer_rec *p);
/* The tasks p may hold at once: its declared slots, capped by what it earned. */
static inline uint32_t peer_slots(const struct peer_rec *p)
{
    return p->slots < p->held_limit ? p->slots : p->held_limit;
}
/* Brings p's membership of its types' free sets in line with peer_can_take. */
void peer_refresh(struct coord *co, struct peer_rec *p);
void peer_unlink(struct coord *co, struct peer_rec *p);
void peer_bad_event(struct peer_rec *p);
/* The connected peer with this id, or NULL (gone). */
struct peer_rec *peer_find(struct coord *co, uint32_t id);
/* Opens p's circuit for base_ms, doubled for each earlier quarantine (up
 * to 64x); then one probe task may test it. */
void peer_quarantine_for(struct coord *co, struct peer_rec *p, const char *why, uint64_t base_ms);
/* An independent peer confirmed p's result (or its error): the only way
 * trust grows.  Also ends a run of strikes and passes a probe. */
void peer_good(struct coord *co, struct peer_rec *p);
/* A success nobody checked: ends a run of strikes and passes a probe, but
 * trust does not grow. */
void peer_unverified_ok(struct coord *co, struct peer_rec *p);
/* p's connection is gone: its attempts end and their tasks are retried. */
void peer_detach(struct coord *co, struct peer_rec *p);
void peer_maybe_ping(struct coord *co, struct peer_rec *p, uint64_t now);
void peer_sweep_quarantined(struct coord *co, uint64_t now);
int type_find(struct coord *co, const uint8_t *name, size_t len);
int type_name_ok(const uint8_t *name, size_t len);
/* The index of the type called name, created if new; -1 when the table is
 * full.  Exposed for tests/unit/test_sched_rules.c, as is peer_join_type. */
int type_intern(struct coord *co, const uint8_t *name, size_t len);
void peer_join_type(struct coord *co, struct peer_rec *p, int ti, uint32_t version, uint8_t flags);
/* Whether results of the type may be cached and identical tasks coalesced. */
static inline int type_cacheable(const struct ttype *tt)
{
    return tt->cache_ok && tt->npeers > 0 && tt->nnondet == 0;
}
int peer_on_register(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int peer_on_credit(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int peer_on_result(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int peer_on_pong(struct conn *c, const struct frame_hdr *h, const uint8_t *body);

/* ---- claims.c: measured claims ------------------------------------------ */

enum { CLAIM_CORES = 1, CLAIM_MEM = 2, CLAIM_VERSION = 4 };
/* Clamps m's cores, memory and executor versions to CLAIM_MAX_*; returns
 * which were clamped (CLAIM_* bits), 0 when none. */
unsigned claims_clamp_register(struct msg_register *m);
/* Sets p's earned tasks-held limit, keeping its types' slots_total and its
 * free sets in line. */
void claims_set_limit(struct coord *co, struct peer_rec *p, uint32_t limit);
/* p answered an attempt that ran dur_us as the coordinator measured it:
 * its limit grows by one (up to its declared slots), and the exec_us it
 * reported comes back clamped to dur_us (counted when it was over). */
uint32_t claims_on_answer(struct coord *co, struct peer_rec *p, uint32_t exec_us, uint64_t dur_us);
/* How long after start_us an attempt of t on p is overdue: STALL_MULT times
 * p's predicted time (its exec EWMA for the type, else the type's, plus its
 * RTT), at least min(STALL_FLOOR_US, a quarter of the time from start_us to
 * t's deadline) and STALL_MIN_US; with nothing measured for the type, half
 * of that time to the deadline. */
uint64_t claims_overdue_after(const struct coord *co, const struct peer_rec *p, const struct task *t,
                              uint64_t start_us);
/* Judges a slice of the peers (STALL_WALK): overdue tasks are hedged, the
 * limit halved, a peer holding only overdue tasks for long cut. */
void claims_sweep(struct coord *co, uint64_t now);
/* Attempts p holds that were found overdue. */
uint32_t claims_overdue_count(const struct peer_rec *p);

/* ---- renter.c: HELLO, submits, cancels ---------------------------------- */

int renter_on_hello(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int renter_on_submit(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int renter_on_submit_batch(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
int renter_on_cancel(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
/* A task's cost by its executor's estimate (tasks_estimate) from its type,
 * params, input and the blobs it names (those in the store). */
uint64_t task_submit_cost(struct coord *co, const struct msg_task *m);
/* A renter's connection is gone: its tasks end with ECLOSED (unsent). */
void renter_detach(struct conn *c);

/* ---- blobs.c: the blob store -------------------------------------------- */

struct blob *blob_find(struct coord *co, const uint8_t *h);
/* Stores a copy of data (blob_put's codes: ETOOBIG, EQUEUEFULL). */
int blob_store(struct coord *co, const void *data, size_t len, uint8_t *hash);
void blob_ref(struct blob *b);
void blob_unref(struct coord *co, struct blob *b);
int peer_has_blob(const struct peer_rec *p, const uint8_t *h);
void peer_mark_blob(struct peer_rec *p, const uint8_t *h);
int blob_on_put(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
void blobs_free(struct coord *co);
/* Evicts a's own blobs that no task references, oldest first, until a's
 * share of the memory budget takes n more bytes (or none is left to
 * evict): a frame of its renter must not be refused for blobs it could
 * upload again. */
void blobs_shed(struct coord *co, struct mem_acct *a, uint64_t n);

/* ---- conn.c: connections -------------------------------------------------- */

/* Reserves a frame in c's output (NULL: draining, or over its cap). */
/* Bytes c has queued that the kernel has not taken yet. */
size_t conn_out_pending(const struct conn *c);
uint8_t *conn_frame(struct conn *c, uint8_t type, uint16_t flags, uint64_t req_id, uint32_t body_len);
/* Sends prefix + payload as one frame; -1 when over the output cap. */
int conn_send(struct conn *c, uint8_t type, uint64_t req_id, const uint8_t *prefix, size_t prefix_len,
              const uint8_t *payload, size_t payload_len);
/* Closes c now (detached from everything; freed after uv_close). */
void conn_close(struct conn *c);
/* Cuts c: ERROR(code, reason) goes out, then c closes; detaching is
 * deferred to conn_reap so no caller's task list changes under it. */
void conn_fail(struct conn *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void conn_reap(struct coord *co);
/* Gives one frame to the handler table (role and state checked), as a
 * frame read from c would be; the gateway's decoded messages go here.
 * Returns nonzero when c was cut or closed. */
int conn_dispatch(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
/* Sets up a connection whose TCP handle is open (accepted, or handed over
 * by the gateway): id, buffers (output up to out_max, flushed from
 * dirty_list), lists, counters; tls: an accepted connection on the
 * coordinator's port, which speaks TLS when the coordinator requires it.
 * Returns 0, or 1 when it was refused (the coordinator is stopping or at
 * --max-conns: conn_fail was called). */
int conn_setup(struct conn *c, struct list_node *dirty_list, size_t out_max, int tls);
/* Frees a connection whose handle was initialised but never set up. */
void conn_abandon(struct conn *c);
void conn_on_check(uv_check_t *h);
void conn_on_connection(uv_stream_t *server, int status);
void conn_sweep(struct coord *co, uint64_t now);

/* ---- limits.c: memory budget charges, connection pool and timeouts ------- */

void limits_init(struct coord *co);
/* The result cache's size: --cache-bytes, at most a quarter of the budget. */
size_t limits_cache_bytes(const struct coord *co);
/* Bytes a task with a body of body_len bytes is charged (slot + body). */
uint64_t limits_task_cost(uint32_t body_len);
/* A new connection: HELLO's frame limit; joins the unauthenticated pool,
 * pushing out its oldest member (of its address first) when full. */
void limits_conn_accepted(struct conn *c);
void limits_conn_left_pool(struct conn *c);
/* HELLO accepted: leaves the pool, --max-conns, the full frame limit.
 * Returns -1 when c was cut. */
int limits_conn_hello(struct conn *c);
/* A renter's HELLO: its memory account. */
void limits_renter_ready(struct conn *c);
void limits_conn_closed(struct conn *c);
/* Brings c's buffer charge up to date. */
void limits_charge_buffers(struct conn *c);
/* The same, and cuts a renter whose unread output
 * passed its share (-1). */
int limits_sync_buffers(struct conn *c);
/* After a read: the partial frame's clock, and its announced size against
 * the budget (-1: c was cut). */
int limits_after_read(struct conn *c);
/* Partial-frame and idle timeouts (-1: c was cut). */
int limits_check_conn(struct conn *c, uint64_t now);
/* Whether a task of body_len bytes from renter c fits the budget and its
 * share: MEM_OK, or MEM_OVER_* with a reason in why. */
int limits_task_admit(struct conn *c, uint32_t body_len, char *why, size_t cap);
void limits_task_charge(struct coord *co, struct conn *c, struct task *t);
void limits_task_release(struct coord *co, struct task *t);
/* t drops its body (an orphan; call before body_len changes). */
void limits_task_shrink(struct coord *co, struct task *t);
/* t holds len more bytes (grow) or fewer (shrink): a copy of a result
 * being verified. */
void limits_task_grow(struct coord *co, struct task *t, size_t len);
void limits_task_ungrow(struct coord *co, struct task *t, size_t len);

/* ---- stats.c: STATS and Prometheus from one counter table ----------------- */

#define STATS_PEERS_DEFAULT 100u /* peers in a STATS answer that names no page */
#define STATS_PEERS_MAX 1000u
#define STATS_EVERY_MIN_MS 100u   /* a subscription's period (STATS_REQ every_ms), at least */
#define STATS_EVERY_MAX_MS 60000u /* ...and at most */
#define STATS_HOLD_BYTES (256u << 10) /* a subscriber with this much unsent output waits */
int stats_on_request(struct conn *c, const struct frame_hdr *h, const uint8_t *body);
/* Sends the STATS answers held back by the rate limit whose turn came. */
void stats_sweep(struct coord *co, uint64_t now);
void stats_metrics_render(void *arg, struct buf *o);

/* ---- peerdb.c: peer keys and what is known about them ---------------------- */

/* Opens co->cfg.state_dir (lock, store, records) when set.  Returns 0 or the
 * store's code with its reason in err. */
int peerdb_open(struct coord *co, char *err, size_t errcap);
/* Writes every changed record and closes the store; frees every record. */
void peerdb_close(struct coord *co);
/* Puts every changed record and flushes the store (group commit). */
void peerdb_flush(struct coord *co);
/* The record of pk, or NULL. */
struct ident_rec *peerdb_find(struct coord *co, const uint8_t *pk);
/* Whether a record for one more key fits (cfg.max_keys). */
int peerdb_has_room(const struct coord *co);
/* The record of pk, created (first seen now) when new. */
struct ident_rec *peerdb_get(struct coord *co, const uint8_t *pk);
/* Makes p a connection of key k: mirrors its reputation, sets p->group,
 * restores a quarantine that has not run out (p must be PS_OK and not yet
 * dispatched), records name.  Returns 1 when p starts quarantined. */
int peerdb_attach(struct coord *co, struct peer_rec *p, struct ident_rec *k, const char *name);
/* p's connection is gone (p->key may be NULL). */
void peerdb_detach(struct coord *co, struct peer_rec *p);
/* The record changed: mirrors it into its peers and marks it for the store. */
void peerdb_sync(struct coord *co, struct ident_rec *k);
/* Wall-clock milliseconds (the store's timestamps survive a restart). */
uint64_t wall_ms(void);

/* ---- config.c -------------------------------------------------------------- */

int config_type_deadlines(struct coord *co, const char *spec, char *err, size_t errcap);
int config_cache_types(struct coord *co, const char *spec, char *err, size_t errcap);

/* ---- verify.c: results are checked before they count -------------------- */

/* Parses --verify: "POLICY" or "TYPE=POLICY,...", where TYPE may be "*"
 * (every type not named).  P2C2R_EINVAL with a reason in err. */
int verify_parse(struct coord *co, const char *spec, char *err, size_t errcap);
/* The policy (enum verify_policy) for tasks of the type called name. */
int verify_policy_for(const struct coord *co, const char *name);
const char *verify_policy_name(int policy);
/* The probability that an adaptive task's first result from a peer with
 * consec confirmed results in a row is checked by a second run. */
double verify_spot_prob(uint64_t consec);
/* Whether p may not run t because a peer of its group already returned a
 * result of t that is being verified (a peer never checks its own group). */
int verify_excludes(const struct task *t, const struct peer_rec *p);
/* Whether p has an established record: a key the operator pinned, or
 * ESTABLISHED results in a row that independent peers confirmed. */
int verify_established(const struct peer_rec *p);
/* A successful RESULT of t from p (p's attempt has ended): delivered now,
 * or held until enough independent peers agree; further runs start here.
 * out is borrowed for the call. */
void verify_on_success(struct coord *co, struct task *t, struct peer_rec *p, const uint8_t *out,
                       size_t len, uint32_t exec_us);
/* An error RESULT from p while t's result is being verified: another
 * independent peer runs it. */
void verify_on_error(struct coord *co, struct task *t, struct peer_rec *p);
/* Frees t's verification state, if any. */
void verify_free(struct task *t);
/* The peer running t's check is overdue and no other independent peer can
 * take it: an adaptive task settles for the result it has, unverified. */
void verify_checker_stalled(struct coord *co, struct task *t);
/* Queued adaptive tasks whose every possible checker left or was
 * quarantined get their outcome now (after a peer leaves, and each 100 ms). */
void verify_sweep(struct coord *co);

/* ---- coord.c ------------------------------------------------------------- */

/* Sets up the empty scheduling state of a zeroed coordinator (lists, the
 * free slab): for coord_new, and for unit tests that build a coordinator in
 * memory. */
/* tlsserve.c: TLS on the coordinator's port. */
/* Loads cfg.tls_cert / tls_key / tls_client_ca into co->tls (none: plaintext).
 * Returns 0 or P2C2R_EINVAL with the reason in err. */
int tlsserve_init(struct coord *co, char *err, size_t errcap);
/* Puts a new connection under TLS when the port requires it.  force: a
 * connection being refused takes a handshake slot at once, so that its
 * ERROR can follow a handshake. */
void tlsserve_accept(struct conn *c, int force);
/* Before c's bytes are handled: returns 1 when they open a handshake and
 * no handshake slot is free: they are kept and reads stop until
 * tlsserve_admit gives c a slot.  A connection that sends nothing never
 * takes a slot. */
int tlsserve_hold(struct conn *c, const uv_buf_t *b, size_t n);
/* At the top of a loop iteration: cuts handshakes that held their slot
 * too long, gives free slots to waiting connections and handles the bytes
 * they had sent. */
void tlsserve_admit(struct coord *co);
/* A connection closes: gives back its slot or its place in the queue. */
void tlsserve_closed(struct conn *c);
/* Starts reading on c; handles n bytes read for c (conn.c). */
void conn_start_reading(struct conn *c);
void conn_input(struct conn *c, const uv_buf_t *b, size_t n);
/* After a read: counts a completed handshake, and for an fconn_input
 * result of TLS (FCONN_IN_TLS, _NOT_TLS, _EOF) cuts or closes c.  Returns 1
 * when it handled rc. */
int tlsserve_after_read(struct conn *c, int rc);
/* wss (gateway.c): c, a gateway connection made from an HTTP port
 * connection, goes on under t (taken), past its handshake, with out_max
 * bytes of output. */
void tlsserve_adopt(struct conn *c, struct tls *t, size_t out_max);
/* Decrypts the n ciphertext bytes a gateway connection read and hands the
 * plaintext to fn; a failed session (counted in tls_failures) or the
 * remote's close_notify closes c. */
void tlsserve_gw_input(struct conn *c, const uint8_t *p, size_t n,
                       void (*fn)(struct conn *c, uint8_t *p, size_t n));

void coord_state_init(struct coord *co);
/* Frees the scheduling state (type arrays, the heaps, the task slab and
 * the bodies of live tasks): for coord_free, and for unit tests that build a
 * coordinator in memory. */
void coord_state_free(struct coord *co);
/* Writes the ready file and calls on_ready once enough peers registered. */
void coord_maybe_ready(struct coord *co);

#endif
