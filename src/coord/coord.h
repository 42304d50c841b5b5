/* coord.h - the coordinator: one libuv loop that owns every connection,
 * task and peer record.  No locks: nothing here is touched from another
 * thread except through coord_stop (a uv_async). */
#ifndef P2C2R_COORD_H
#define P2C2R_COORD_H

#include <stddef.h>
#include <stdint.h>

struct coord;

struct coord_config {
    const char *listen;           /* HOST:PORT, port 0 = any */
    const char *tokens_file;      /* NULL = no authentication (older format: acctfile.h) */
    const char *accounts_file;    /* accounts and tiers (docs/ACCOUNTS.md); wins over tokens_file */
    uint32_t login_failures;      /* failed logins from one address before it backs off; 0 = never */
    uint32_t login_backoff_ms;    /* its first wait; doubles with each further failure, up to 256x */
    const char *ready_file;       /* written with HOST:PORT once ready */
    uint32_t max_body;            /* largest frame body accepted */
    uint32_t renter_max_inflight; /* outstanding tasks per renter connection */
    size_t max_output;            /* bytes buffered for one connection */
    uint32_t queue_max;           /* queued tasks, all renters */
    uint64_t queue_max_bytes;     /* queued input bytes, all renters */
    uint32_t max_attempts;        /* tries before a lost task fails */
    uint32_t max_conns;
    uint32_t hello_timeout_ms;    /* a connection must say HELLO within this */
    uint32_t peer_timeout_ms;     /* a peer silent this long is dropped */
    uint32_t default_deadline_ms; /* tasks that name no deadline */
    uint32_t orphan_timeout_ms;   /* queued task whose type lost every peer */
    uint32_t ready_peers;         /* ready once this many peers registered */
    size_t blob_store_bytes;      /* cap on uploaded blobs kept */
    const char *metrics_listen;   /* deprecated alias of http_listen (used when that is NULL) */
    const char *http_listen;      /* HOST:PORT of the HTTP port (/metrics, /ws, pages), NULL = none */
    const char *http_token;       /* bearer token /metrics requires, NULL = none */
    const char *http_root;        /* directory of the static pages, NULL = none */
    int http_plain;               /* HTTP port in plaintext despite tls_cert (loopback only) */
    const char *type_deadlines;   /* "TYPE=MS,..." default deadlines per type, NULL = none */
    const char *cache_types;      /* "TYPE,..." or "*": deterministic types whose results are cached */
    size_t cache_bytes;           /* result cache size, 0 = no cache (and no coalescing) */
    uint32_t cache_ttl_ms;        /* result cache entry lifetime */
    int hedge;                    /* start a second copy of attempts past their type's p95 */
    uint64_t hedge_min_us;        /* never hedge an attempt younger than this */
    uint32_t aging_ms;            /* a queued task rises one priority class per aging_ms waited */
    uint32_t breaker_strikes;     /* contradicted results in a row that quarantine a peer */
    uint32_t breaker_cooldown_ms; /* first quarantine; doubles each time, up to 64x */
    uint32_t ping_ms;             /* ping a peer silent this long */
    int admission;                /* reject tasks that would miss their deadline */
    const char *verify;           /* "POLICY" or "TYPE=POLICY,...[,*=POLICY]" with POLICY none,
                                     adaptive, quorum2 or quorum3 (NULL: adaptive) */
    uint32_t liar_quarantine_ms;  /* a peer caught in a lie; doubles each time, up to 64x */
    const char *trust_pools;      /* "POOL[,POOL]": pools whose peers' results count as checked
                                     under adaptive verification (NULL: none) */
    /* Directory of the persistent state (store.h: DIR/p2c2r.db, locked by
     * DIR/p2c2r.lock while the coordinator runs); NULL = peer records live
     * in memory only and are lost at exit. */
    const char *state_dir;
    uint32_t max_keys;            /* peer keys remembered; a new key beyond is refused */
    /* Memory and connection limits (docs/ARCHITECTURE.md, "Memory"). */
    uint64_t mem_budget;          /* bytes the daemon may hold for clients (with its own headroom) */
    uint64_t mem_share;           /* bytes one renter may hold; 0 = a quarter of the budget less headroom */
    uint32_t frame_timeout_ms;    /* a partial frame must be complete within this */
    uint32_t idle_timeout_ms;     /* a renter with nothing outstanding silent this long is closed; 0 = never */
    uint32_t max_unauth;          /* connections before HELLO; the oldest is dropped for a new one */
    uint32_t max_unauth_per_addr; /* of those, from one IP address */
    uint32_t max_deadline_ms;     /* longer task deadlines are cut to this */
    uint32_t peer_new_types;      /* task types one PEER_REGISTER may add to the table */
    uint32_t stats_interval_ms;   /* one STATS answer per connection per interval */
    /* Durable jobs (jobs.h) and the credit ledger (ledger.h); need state_dir. */
    uint32_t job_retention_s;     /* a finished job's outcome is kept this long; 0 = until fetched */
    uint32_t job_deadline_s;      /* deadline of durable jobs that name none */
    uint32_t job_max_pending;     /* jobs without an outcome, per account */
    uint32_t job_max_accounts;    /* accounts (renter names) with durable jobs */
    uint32_t job_max_attempts;    /* peers a durable job may lose before it fails (ELOST) */
    uint32_t credit_price_milli;  /* millicredits a renter pays per cost unit (ledger_price) */
    uint32_t credit_hold_s;       /* a liar's work credits younger than this are reversed */
    int job_sync_full;            /* fsync every commit (synchronous=FULL): acknowledged jobs
                                     survive a power loss, not only a crash of the process */
    /* TLS (tlsserve.c): with a certificate and its key (PEM files), every
     * connection must speak TLS 1.3; with client_ca too, a client
     * certificate, when one is presented, must chain to those CAs. */
    const char *tls_cert, *tls_key, *tls_client_ca;

    /* Called once on the loop thread after the socket is bound, with the
     * bound address ("HOST:PORT"); may start local peers. */
    void (*on_listening)(void *arg, const char *addr);
    /* Called once when ready_peers peers have registered. */
    void (*on_ready)(void *arg, const char *addr);
    void *arg;
};

/* Fills cfg with the defaults documented in p2c2rd --help. */
void coord_config_defaults(struct coord_config *cfg);

/* Creates a coordinator, opens its state (cfg->state_dir) and binds its
 * listening socket.  Returns 0 or a negative p2c2r_error: P2C2R_EINVAL for a
 * malformed setting (type deadlines, cache types, verification policies,
 * tokens file content), P2C2R_ENOTFOUND for a tokens file that cannot be
 * opened, P2C2R_EADDR for an address that cannot be parsed or bound,
 * P2C2R_EIO for a state directory that cannot be used (corrupt, foreign,
 * newer, locked by another p2c2rd: errmsg has the store's reason); errmsg
 * gets a reason for the operator. */
int coord_new(const struct coord_config *cfg, struct coord **out, char *errmsg, size_t errcap);

/* Runs the loop until coord_stop or SIGINT/SIGTERM.  Returns 0. */
int coord_run(struct coord *co);

/* Asks the loop to shut down.  Thread-safe and async-signal-safe. */
void coord_stop(struct coord *co);

void coord_free(struct coord *co);

#endif
