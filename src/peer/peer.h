/* peer.h - the peer agent: connections to a coordinator plus a pool of
 * executor threads.  One libuv loop does all I/O; executor threads only run
 * executors and post finished results back through a uv_async. */
#ifndef P2C2R_PEER_H
#define P2C2R_PEER_H

#include <stddef.h>
#include <stdint.h>

#include "common/ident.h"

struct peer_agent;

struct peer_config {
    const char *coordinator; /* HOST:PORT */
    const char *token;       /* NULL = none */
    const char *name;        /* shown in coordinator stats */
    const char *types;       /* comma-separated list, NULL = every built-in */
    uint32_t slots;          /* credits advertised per connection */
    uint32_t threads;        /* executor threads shared by all connections */
    uint32_t connections;    /* coordinator connections (each a peer) */
    uint32_t max_output;     /* largest result accepted from an executor */
    uint32_t backoff_min_ms, backoff_max_ms;
    size_t blob_cache_bytes; /* cap on cached blobs (referenced ones stay) */
    size_t prepared_cache_bytes; /* cap on executors' prepared state (0 = none kept) */
    int handle_signals;      /* stop on SIGINT/SIGTERM */
    /* What the peer offers, as registered with the coordinator (tasks may
     * require a GPU, a number of cores, an amount of memory).  GPUs are not
     * detected: an operator who offers one names it. */
    const char *gpu_model;   /* NULL = no GPU offered; else its name, 1..64 bytes */
    uint32_t cores;          /* 0 = the machine's online cores */
    uint64_t mem_bytes;      /* 0 = the machine's physical memory */
    /* The pool the operator declares this peer in (PROTO_POOL_*: volunteer
     * or cloud) and the price it asks per unit of work (a cost unit of
     * tasks_estimate, in the fabric's credits; compared between pools by the
     * coordinator, docs/ARCHITECTURE.md "Pools").  Volunteer at 0 sends no
     * pool block, so such a peer registers with any coordinator. */
    uint8_t pool;
    uint32_t cost;
    /* The identities the links sign their PEER_REGISTER with (common/ident.h):
     * link i uses keys[i % nkeys].  Copied by peer_agent_new (and wiped by
     * peer_agent_free); nkeys 0 = one key made in memory for this run, so
     * the coordinator sees a new peer at every start. */
    const struct ident *keys;
    uint32_t nkeys;
    /* TLS to the coordinator (common/tls.h).  tls_ca: the CAs its
     * certificate must chain to, verified against tls_name (NULL = the host
     * of coordinator).  tls_cert and tls_key: a client certificate to
     * present (optional).  tls set with tls_ca NULL skips verification: only
     * for p2c2rd's own local peers, which connect to the process they run in. */
    int tls;
    const char *tls_ca, *tls_cert, *tls_key, *tls_name;
};

/* Fills cfg with defaults (slots and threads = number of cores). */
void peer_config_defaults(struct peer_config *cfg);

/* Validates cfg and creates an agent (nothing connects yet).  Returns 0 or a
 * negative p2c2r_error with a reason in err. */
int peer_agent_new(const struct peer_config *cfg, struct peer_agent **out, char *err, size_t errcap);

/* Replaces the agent's keys with copies of keys[0 .. nkeys) (nkeys >= 1),
 * as if they had been in the configuration.  Call before peer_agent_run:
 * a program can then check its options (peer_agent_new) before it creates
 * a key file. */
void peer_agent_set_keys(struct peer_agent *a, const struct ident *keys, uint32_t nkeys);

/* Connects, registers and serves until peer_agent_stop.  Reconnects with
 * exponential backoff and jitter when the coordinator goes away.  Blocks the
 * calling thread.  Returns 0. */
int peer_agent_run(struct peer_agent *a);

/* Asks the agent to stop.  Thread-safe. */
void peer_agent_stop(struct peer_agent *a);

void peer_agent_free(struct peer_agent *a);

/* What the agent's executors did with cancels and prepared state. */
struct peer_stats {
    uint64_t cancelled_queued;   /* jobs cancelled before they started */
    uint64_t cancelled_running;  /* jobs a CANCEL reached while they ran */
    uint64_t cancelled_stopped;  /* of those, the ones whose executor stopped early */
    uint64_t cancel_wasted_us;   /* executor time used after those CANCELs */
    uint64_t prepared_hits, prepared_misses, prepared_inserts, prepared_races;
    uint64_t prepared_refused, prepared_evictions, prepared_entries, prepared_bytes;
};

/* Fills *out with the agent's counters (a snapshot).  Thread-safe. */
void peer_agent_stats(struct peer_agent *a, struct peer_stats *out);

#endif
