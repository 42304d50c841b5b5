/* p2c2rd_main.c - the p2c2rd program: options, then the coordinator loop.
 *
 * This file is the composition root: it is the one place that links the
 * coordinator with the peer agent, for --local-peers (peer workers running
 * on threads of this process, connected over loopback like any peer). */
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <malloc.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/cliopt.h"
#include "common/ident.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "common/version.h"
#include "coord/acctfile.h"
#include "coord/coord.h"
#include "coord/ledger.h"
#include "coord/store.h"
#include "peer/peer.h"
#include "p2c2r/error.h"

struct local_peers {
    int64_t n, slots;
    int tls; /* the port requires TLS: the local peers speak it too */
    const char *token;
    const char *state_dir; /* keys under it, or NULL: made in memory */
    struct peer_agent *agent;
    pthread_t thread;
    int started;
};

static void *local_main(void *arg)
{
    peer_agent_run(arg);
    return NULL;
}

static void on_listening(void *arg, const char *addr)
{
    struct local_peers *lp = arg;
    if (lp->n <= 0)
        return;
    struct peer_config pc;
    peer_config_defaults(&pc);
    pc.coordinator = addr;
    pc.connections = (uint32_t)lp->n;
    pc.slots = (uint32_t)lp->slots;
    pc.threads = (uint32_t)lp->n;
    pc.name = "local";
    pc.token = lp->token;
    /* They connect to this very process: TLS because the port requires
     * it, without verification because there is no one to impersonate. */
    pc.tls = lp->tls;
    /* One key per local peer, so that they count as independent peers (the
     * operator's own, in one process): kept in the state directory, so
     * their records carry over a restart, or made in memory for this run. */
    char err[512];
    struct ident *keys = xcalloc((size_t)lp->n, sizeof(*keys));
    int rc = 0;
    for (int64_t i = 0; i < lp->n && rc == 0; i++) {
        if (!lp->state_dir) {
            ident_generate(&keys[i]);
            continue;
        }
        char path[4096];
        snprintf(path, sizeof(path), "%s/local-peer-%lld.key", lp->state_dir, (long long)i);
        rc = ident_load_or_create(path, &keys[i], NULL, err, sizeof(err));
    }
    pc.keys = keys;
    pc.nkeys = (uint32_t)lp->n;
    if (rc == 0)
        rc = peer_agent_new(&pc, &lp->agent, err, sizeof(err));
    for (int64_t i = 0; i < lp->n; i++)
        ident_fini(&keys[i]);
    free(keys);
    if (rc != 0) {
        LOG_E("local_peers_failed", "reason=\"%s\"", err);
        return;
    }
    if (pthread_create(&lp->thread, NULL, local_main, lp->agent) == 0)
        lp->started = 1;
}

static void on_ready(void *arg, const char *addr)
{
    struct local_peers *lp = arg;
    {
        printf("p2c2rd %s listening on %s with %lld local peer%s. Ctrl-C stops it.\n"
               "From another terminal, try:\n"
               "  echo hello | build/p2c2r submit echo --coordinator %s\n"
               "  build/p2c2r bench --coordinator %s --tasks 100000 --inflight 256\n"
               "  build/p2c2r stats --coordinator %s\n"
               "  build/p2c2r render examples/scenes/demo.json -o frame.png --coordinator %s\n",
               P2C2R_VERSION_STRING, addr, (long long)lp->n, lp->n == 1 ? "" : "s", addr, addr, addr,
               addr);
        fflush(stdout);
    }
}

/* --hash-token: the token on stdin's first line (or a new random one with
 * --new-token) becomes the token_hash line of an accounts file. */
static int hash_token(int generate)
{
    char tok[PROTO_MAX_TOKEN + 2];
    size_t n;
    if (generate) {
        uint8_t raw[32];
        randombytes_buf(raw, sizeof(raw));
        hex_encode(raw, sizeof(raw), tok);
        n = 2 * sizeof(raw);
    } else {
        if (!fgets(tok, sizeof(tok), stdin)) {
            fprintf(stderr, "p2c2rd: --hash-token reads the token from standard input: echo TOKEN | p2c2rd "
                            "--hash-token\n");
            return 2;
        }
        n = strcspn(tok, "\r\n");
        if (n == 0 || n > PROTO_MAX_TOKEN) {
            fprintf(stderr, "p2c2rd: the token must be 1..%d bytes on one line\n", PROTO_MAX_TOKEN);
            return 2;
        }
        if (n < 32)
            fprintf(stderr, "p2c2rd: warning: a %zu-byte token can be guessed; use 'p2c2rd --new-token' for 32 "
                            "random bytes\n", n);
    }
    uint8_t h[ACCT_HASH_LEN];
    char hx[2 * ACCT_HASH_LEN + 1];
    acct_token_hash(tok, n, h);
    hex_encode(h, sizeof(h), hx);
    if (generate)
        printf("token = %.*s\n", (int)n, tok);
    printf("token_hash = %s%s\n", ACCT_HASH_PREFIX, hx);
    return 0;
}

/* p2c2rd --check-ledger --state DIR: the books of DIR's database. */
static int check_ledger_main(const char *dir)
{
    if (!dir) {
        fprintf(stderr, "p2c2rd: --check-ledger needs --state DIR, the directory p2c2rd runs with\n");
        return 2;
    }
    char err[600];
    struct sqlite3 *db;
    /* Read-only: it may run beside the p2c2rd that owns DIR. */
    if (store_open_readonly(dir, LEDGER_SCHEMA_VERSION, &db, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2c2rd: %s\n", err);
        return 1;
    }
    struct ledger_totals t;
    int rc = ledger_check(db, &t, err, sizeof(err));
    if (rc == 0)
        printf("ledger balanced: %" PRIu64 " transactions (%" PRIu64 " work, %" PRIu64 " reversals), %" PRIu64
               " entries; peers earned %.3f, renters spent %.3f, reversed %.3f, coordinator %.3f credits\n",
               t.txns, t.work, t.reversals, t.entries, t.earned / 1000.0, t.spent / 1000.0, t.reversed / 1000.0,
               t.coordinator / 1000.0);
    else
        fprintf(stderr, "p2c2rd: %s\n", err);
    sqlite3_close(db);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    /* Frames of tens of KiB are allocated and freed at a high rate; keep
     * glibc from returning that memory to the kernel (and faulting it back
     * in) on every cycle.  Buffers of 4 MiB and more (a large frame) are
     * mapped on their own and returned when freed, so the resident set
     * follows what the memory budget charges (docs/ARCHITECTURE.md,
     * "Memory") instead of keeping every large buffer's peak. */
    mallopt(M_MMAP_THRESHOLD, 4 << 20);
    /* A write to a connection the remote has reset must fail with EPIPE,
     * not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    struct coord_config cfg;
    coord_config_defaults(&cfg);
    const char *listen = cfg.listen, *tokens = NULL, *ready = NULL, *level = "info";
    const char *local_token = NULL, *state_dir = NULL, *accounts = NULL;
    int hash_tok = 0, new_tok = 0;
    int64_t login_failures = cfg.login_failures, login_backoff = cfg.login_backoff_ms;
    const char *tls_cert = NULL, *tls_key = NULL, *tls_client_ca = NULL;
    int64_t max_keys = cfg.max_keys;
    int64_t local = 0, local_slots = 4, max_body = cfg.max_body, max_inflight = cfg.renter_max_inflight;
    int64_t max_output = (int64_t)cfg.max_output, queue_max = cfg.queue_max;
    int64_t attempts = cfg.max_attempts, hello_ms = cfg.hello_timeout_ms;
    int64_t peer_ms = cfg.peer_timeout_ms, deadline_ms = cfg.default_deadline_ms;
    int64_t orphan_ms = cfg.orphan_timeout_ms, max_conns = cfg.max_conns;
    const char *metrics = NULL, *http = NULL, *metrics_token = NULL, *http_root = NULL, *type_deadlines = NULL, *cache_types = cfg.cache_types;
    int64_t cache_bytes = (int64_t)cfg.cache_bytes, cache_ttl = cfg.cache_ttl_ms;
    int64_t hedge_min_us = (int64_t)cfg.hedge_min_us, aging_ms = cfg.aging_ms;
    int64_t strikes = cfg.breaker_strikes, cooldown_ms = cfg.breaker_cooldown_ms, ping_ms = cfg.ping_ms;
    int no_hedge = 0, no_admission = 0, http_plain = 0;
    const char *verify = cfg.verify, *trust_pools = NULL;
    int64_t liar_ms = cfg.liar_quarantine_ms;
    int64_t mem_budget = (int64_t)cfg.mem_budget, mem_share = (int64_t)cfg.mem_share;
    int64_t frame_ms = cfg.frame_timeout_ms, idle_ms = cfg.idle_timeout_ms, max_unauth = cfg.max_unauth;
    int64_t unauth_addr = cfg.max_unauth_per_addr, max_deadline = cfg.max_deadline_ms;
    int64_t new_types = cfg.peer_new_types, stats_ms = cfg.stats_interval_ms;
    int64_t job_retention = cfg.job_retention_s, job_deadline = cfg.job_deadline_s;
    int64_t job_max_pending = cfg.job_max_pending, job_attempts = cfg.job_max_attempts;
    int64_t credit_price = cfg.credit_price_milli, credit_hold = cfg.credit_hold_s;
    int check_ledger = 0;
    const char *job_sync = "normal";
    const struct cliopt opts[] = {
        {"listen", 'l', OPT_STR, "HOST:PORT", 0, 0, "address for renters and peers; port 0 picks a free one", &listen, CLIOPT_DEFAULT},
        {"local-peers", 'p', OPT_INT, "N", 0, 1024, "run N peer workers inside the daemon", &local, CLIOPT_DEFAULT},
        {"accounts", 'a', OPT_STR, "FILE", 0, 0, "accounts and tiers (docs/ACCOUNTS.md): a token of FILE's is needed to connect; SIGHUP reloads it", &accounts},
        {"tokens", 't', OPT_STR, "FILE", 0, 0, "older credentials: one renter:TOKEN, peer:TOKEN or operator:TOKEN per line, each an account of tier unlimited", &tokens},
        {"login-failures", 0, OPT_INT, "N", 0, 1000000, "failed logins from one address before it must wait; 0 = never", &login_failures, CLIOPT_DEFAULT},
        {"login-backoff", 0, OPT_INT, "MS", 1, 3600000, "that wait, doubled for each further failure up to 256x", &login_backoff, CLIOPT_DEFAULT},
        {"hash-token", 0, OPT_FLAG, NULL, 0, 0, "read a token on stdin, print its token_hash line for --accounts, exit", &hash_tok},
        {"new-token", 0, OPT_FLAG, NULL, 0, 0, "print a new random token and its token_hash line, exit", &new_tok},
        {"local-slots", 0, OPT_INT, "N", 1, 65535, "tasks each local peer accepts at once; each has one executor thread", &local_slots, CLIOPT_DEFAULT},
        {"local-token", 0, OPT_STR, "TOKEN", 0, 0, "token the local peers present when --tokens is set", &local_token},
        {"ready-file", 0, OPT_STR, "PATH", 0, 0, "write HOST:PORT to PATH once listening and local peers registered", &ready},
        {"log-level", 0, OPT_STR, "LEVEL", 0, 0, "debug, info, warn, error or off", &level, CLIOPT_DEFAULT},
        {"max-frame", 0, OPT_INT, "BYTES", 1024, 1 << 30, "largest frame body accepted", &max_body, CLIOPT_DEFAULT},
        {"max-inflight", 0, OPT_INT, "N", 1, 1 << 24, "outstanding tasks per renter connection", &max_inflight, CLIOPT_DEFAULT},
        {"max-output", 0, OPT_INT, "BYTES", 65536, (int64_t)1 << 34, "output buffered per connection before it is cut", &max_output, CLIOPT_DEFAULT},
        {"queue-max", 0, OPT_INT, "N", 1, 1 << 28, "queued tasks, all renters", &queue_max, CLIOPT_DEFAULT},
        {"max-attempts", 0, OPT_INT, "N", 1, 100, "assignments before a lost task fails", &attempts, CLIOPT_DEFAULT},
        {"max-conns", 0, OPT_INT, "N", 1, 1000000, "simultaneous connections", &max_conns, CLIOPT_DEFAULT},
        {"hello-timeout", 0, OPT_INT, "MS", 10, 3600000, "time a new connection has to send HELLO", &hello_ms, CLIOPT_DEFAULT},
        {"peer-timeout", 0, OPT_INT, "MS", 100, 3600000, "a peer silent this long is declared dead and its tasks reassigned", &peer_ms, CLIOPT_DEFAULT},
        {"deadline", 0, OPT_INT, "MS", 1, 86400000, "deadline of tasks that name none", &deadline_ms, CLIOPT_DEFAULT},
        {"orphan-timeout", 0, OPT_INT, "MS", 0, 86400000, "queued tasks of a type with no peer (or no peer with a slot) fail after this", &orphan_ms, CLIOPT_DEFAULT},
        {"http", 0, OPT_STR, "HOST:PORT", 0, 0, "serve HTTP on HOST:PORT: Prometheus metrics at /metrics, the JSON/WebSocket gateway at /ws, pages from --http-root (default off)", &http},
        {"metrics-token", 0, OPT_STR, "TOKEN", 0, 0, "require 'Authorization: Bearer TOKEN' for /metrics (with credentials an operator's token is accepted too, and required without this option)", &metrics_token},
        {"http-root", 0, OPT_STR, "DIR", 0, 0, "directory of the pages served at /, /contribute, /demo and /static/NAME (default: " P2C2R_WWW_DIR " when it exists)", &http_root},
        {"http-plain", 0, OPT_FLAG, NULL, 0, 0, "with --tls-cert, keep the HTTP port plaintext (http/ws); only for a loopback --http address", &http_plain},
        {"metrics", 'm', OPT_STR, "HOST:PORT", 0, 0, "deprecated: the same as --http HOST:PORT", &metrics},
        {"type-deadline", 0, OPT_STR, "TYPE=MS,...", 0, 0, "default deadline per task type, e.g. upscale=16,pathfind=100", &type_deadlines},
        {"cache-types", 0, OPT_STR, "TYPE,...", 0, 0, "types whose results may be cached and coalesced, when their peers declare them deterministic; '*' = all, '' = none", &cache_types, CLIOPT_DEFAULT},
        {"cache-bytes", 0, OPT_INT, "BYTES", 0, (int64_t)1 << 40, "result cache size; 0 turns caching and coalescing off", &cache_bytes, CLIOPT_DEFAULT},
        {"cache-ttl", 0, OPT_INT, "MS", 1, 86400000, "how long a cached result is served", &cache_ttl, CLIOPT_DEFAULT},
        {"no-hedge", 0, OPT_FLAG, NULL, 0, 0, "never start a second copy of a slow attempt", &no_hedge},
        {"hedge-min-us", 0, OPT_INT, "US", 0, 3600000000LL, "never hedge an attempt younger than this", &hedge_min_us, CLIOPT_DEFAULT},
        {"aging", 0, OPT_INT, "MS", 1, 3600000, "a queued task rises one priority class per MS waited, so no class starves", &aging_ms, CLIOPT_DEFAULT},
        {"breaker-strikes", 0, OPT_INT, "N", 1, 1000, "results contradicted in a row that quarantine a peer", &strikes, CLIOPT_DEFAULT},
        {"breaker-cooldown", 0, OPT_INT, "MS", 1, 3600000, "first quarantine; doubles on each repeat up to 64x", &cooldown_ms, CLIOPT_DEFAULT},
        {"ping-interval", 0, OPT_INT, "MS", 10, 3600000, "ping a peer that sent nothing for MS", &ping_ms, CLIOPT_DEFAULT},
        {"no-admission", 0, OPT_FLAG, NULL, 0, 0, "accept tasks even when they would miss their deadline", &no_admission},
        {"verify", 0, OPT_STR, "POLICY|TYPE=POLICY,...", 0, 0, "how results are checked by independent peers before they count, per type ('*=' for the rest): none, adaptive (new peers always, established ones spot-checked), quorum2, quorum3", &verify, CLIOPT_DEFAULT},
        {"trust-pool", 0, OPT_STR, "POOL[,POOL]", 0, 0, "pools whose peers the operator runs or rents (volunteer, cloud): their results count as checked under adaptive verification, like pinned keys (default none)", &trust_pools},
        {"liar-quarantine", 0, OPT_INT, "MS", 1, 86400000, "quarantine of a peer caught returning a wrong result; doubles on each repeat up to 64x", &liar_ms, CLIOPT_DEFAULT},
        {"state", 0, OPT_STR, "DIR", 0, 0, "keep peer records (reputation, quarantines, the operator's bans, pins and groups) in DIR/p2c2r.db across restarts, and local peers' keys in DIR; without it they live in memory only", &state_dir},
        {"max-peer-keys", 0, OPT_INT, "N", 1, 100000000, "peer keys remembered; a peer with a new key beyond this is refused", &max_keys, CLIOPT_DEFAULT},
        {"mem-budget", 0, OPT_INT, "BYTES", 16 << 20, (int64_t)1 << 40, "memory the daemon may hold for clients (tasks, blobs, result cache, connection buffers, with its own headroom); over it new work is refused with ELIMIT", &mem_budget, CLIOPT_DEFAULT},
        {"mem-share", 0, OPT_INT, "BYTES", 0, (int64_t)1 << 40, "memory one renter (with credentials: one account, over its connections) may hold (tasks, blobs, unread output); 0 = a quarter of the budget less its headroom", &mem_share, CLIOPT_DEFAULT},
        {"frame-timeout", 0, OPT_INT, "MS", 100, 3600000, "a frame begun must be complete within MS", &frame_ms, CLIOPT_DEFAULT},
        {"idle-timeout", 0, OPT_INT, "MS", 0, 86400000, "close a renter silent for MS with nothing outstanding; 0 = never", &idle_ms, CLIOPT_DEFAULT},
        {"max-unauth", 0, OPT_INT, "N", 1, 1000000, "connections before HELLO, apart from --max-conns; a new one drops the oldest", &max_unauth, CLIOPT_DEFAULT},
        {"max-unauth-per-addr", 0, OPT_INT, "N", 1, 1000000, "of those, from one IP address (a new one drops that address's oldest)", &unauth_addr, CLIOPT_DEFAULT},
        {"max-deadline", 0, OPT_INT, "MS", 1, 86400000, "longer task deadlines are cut to MS", &max_deadline, CLIOPT_DEFAULT},
        {"peer-new-types", 0, OPT_INT, "N", 1, 32, "task types one PEER_REGISTER may add that no peer serves yet", &new_types, CLIOPT_DEFAULT},
        {"stats-interval", 0, OPT_INT, "MS", 0, 3600000, "one STATS answer per connection per MS (later requests wait)", &stats_ms, CLIOPT_DEFAULT},
        {"job-retention", 0, OPT_INT, "SECONDS", 0, 315360000, "how long a durable job's outcome is kept when nobody fetches and releases it; 0 = until fetched", &job_retention, CLIOPT_DEFAULT},
        {"job-deadline", 0, OPT_INT, "SECONDS", 1, 315360000, "deadline of durable jobs that name none, from their submission", &job_deadline, CLIOPT_DEFAULT},
        {"job-max-pending", 0, OPT_INT, "N", 1, 1 << 30, "durable jobs without an outcome per account (renter name); more are refused with EQUEUEFULL", &job_max_pending, CLIOPT_DEFAULT},
        {"job-max-attempts", 0, OPT_INT, "N", 1, 1000, "peers a durable job may lose before it fails with ELOST", &job_attempts, CLIOPT_DEFAULT},
        {"credit-price", 0, OPT_INT, "MILLICREDITS", 0, 1000000000, "what a renter pays per cost unit of verified work unless its tier sets a price (a peer earns 1000 per unit)", &credit_price, CLIOPT_DEFAULT},
        {"credit-hold", 0, OPT_INT, "SECONDS", 0, 315360000, "a peer caught lying loses the credits it earned in this time before", &credit_hold, CLIOPT_DEFAULT},
        {"job-sync", 0, OPT_STR, "normal|full", 0, 0, "normal: an acknowledged durable job survives a crash of p2c2rd (SIGKILL, OOM); full: also a power loss, at an fsync per group commit", &job_sync, CLIOPT_DEFAULT},
        {"check-ledger", 0, OPT_FLAG, NULL, 0, 0, "check that the credit ledger in --state DIR balances, print its totals and exit (0: balanced, 1: not, or unreadable)", &check_ledger},
        {"tls-cert", 0, OPT_STR, "FILE", 0, 0, "certificate chain (PEM): every renter and peer must then connect with TLS 1.3 (default: plaintext)", &tls_cert},
        {"tls-key", 0, OPT_STR, "FILE", 0, 0, "private key (PEM) of --tls-cert", &tls_key},
        {"tls-client-ca", 0, OPT_STR, "FILE", 0, 0, "CAs (PEM) a client certificate must chain to when a peer presents one; a client without one is still accepted", &tls_client_ca},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "p2c2rd",
                          "[OPTIONS]",
                          "The p2c2r coordinator: accepts renters and peers on one TCP port, queues\n"
                          "each task, runs it on a peer that supports its type and returns the result.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc) {
        fprintf(stderr, "p2c2rd: unexpected argument '%s'\nTry 'p2c2rd --help'.\n", argv[pos]);
        return 2;
    }
    if (hash_tok || new_tok) {
        if (sodium_init() < 0) {
            fprintf(stderr, "p2c2rd: libsodium failed to initialise\n");
            return 1;
        }
        return hash_token(new_tok);
    }
    if (accounts && tokens) {
        fprintf(stderr, "p2c2rd: --accounts and --tokens exclude each other: put the tokens in the accounts file\n");
        return 2;
    }
    int lvl;
    if (log_level_parse(level, &lvl) != 0) {
        fprintf(stderr, "p2c2rd: --log-level must be debug, info, warn, error or off, got '%s'\n", level);
        return 2;
    }
    log_set_level(lvl);
    log_set_component("p2c2rd");
    if ((tokens || accounts) && local > 0 && !local_token) {
        fprintf(stderr, "p2c2rd: --local-peers with --tokens or --accounts needs --local-token TOKEN (a peer "
                        "account's token)\n");
        return 2;
    }
    struct local_peers lp = {local, local_slots, tls_cert != NULL, local_token, state_dir, NULL, 0, 0};
    cfg.listen = listen;
    cfg.tokens_file = tokens;
    cfg.accounts_file = accounts;
    cfg.login_failures = (uint32_t)login_failures;
    cfg.login_backoff_ms = (uint32_t)login_backoff;
    cfg.ready_file = ready;
    cfg.max_body = (uint32_t)max_body;
    cfg.renter_max_inflight = (uint32_t)max_inflight;
    cfg.max_output = (size_t)max_output;
    cfg.queue_max = (uint32_t)queue_max;
    cfg.max_attempts = (uint32_t)attempts;
    cfg.max_conns = (uint32_t)max_conns;
    cfg.hello_timeout_ms = (uint32_t)hello_ms;
    cfg.peer_timeout_ms = (uint32_t)peer_ms;
    cfg.default_deadline_ms = (uint32_t)deadline_ms;
    cfg.orphan_timeout_ms = (uint32_t)orphan_ms;
    cfg.ready_peers = (uint32_t)local;
    if (metrics && http) {
        fprintf(stderr, "p2c2rd: --metrics is a deprecated name of --http: give only --http HOST:PORT\n");
        return 2;
    }
    if (metrics)
        LOG_W("deprecated_option", "option=--metrics use=\"--http %s\"", metrics);
    cfg.http_listen = http ? http : metrics;
    cfg.http_token = metrics_token;
    struct stat www;
    if (!http_root && stat(P2C2R_WWW_DIR, &www) == 0 && S_ISDIR(www.st_mode))
        http_root = P2C2R_WWW_DIR;
    cfg.http_root = http_root;
    cfg.type_deadlines = type_deadlines;
    cfg.cache_types = cache_types;
    cfg.cache_bytes = (size_t)cache_bytes;
    cfg.cache_ttl_ms = (uint32_t)cache_ttl;
    cfg.hedge = !no_hedge;
    cfg.http_plain = http_plain;
    cfg.hedge_min_us = (uint64_t)hedge_min_us;
    cfg.aging_ms = (uint32_t)aging_ms;
    cfg.breaker_strikes = (uint32_t)strikes;
    cfg.breaker_cooldown_ms = (uint32_t)cooldown_ms;
    cfg.ping_ms = (uint32_t)ping_ms;
    cfg.admission = !no_admission;
    cfg.verify = verify;
    cfg.trust_pools = trust_pools;
    cfg.liar_quarantine_ms = (uint32_t)liar_ms;
    cfg.state_dir = state_dir;
    cfg.max_keys = (uint32_t)max_keys;
    cfg.mem_budget = (uint64_t)mem_budget;
    cfg.mem_share = (uint64_t)mem_share;
    cfg.frame_timeout_ms = (uint32_t)frame_ms;
    cfg.idle_timeout_ms = (uint32_t)idle_ms;
    cfg.max_unauth = (uint32_t)max_unauth;
    cfg.max_unauth_per_addr = (uint32_t)unauth_addr;
    cfg.max_deadline_ms = (uint32_t)max_deadline;
    cfg.peer_new_types = (uint32_t)new_types;
    cfg.stats_interval_ms = (uint32_t)stats_ms;
    cfg.job_retention_s = (uint32_t)job_retention;
    cfg.job_deadline_s = (uint32_t)job_deadline;
    cfg.job_max_pending = (uint32_t)job_max_pending;
    cfg.job_max_attempts = (uint32_t)job_attempts;
    cfg.credit_price_milli = (uint32_t)credit_price;
    cfg.credit_hold_s = (uint32_t)credit_hold;
    if (strcmp(job_sync, "normal") != 0 && strcmp(job_sync, "full") != 0) {
        fprintf(stderr, "p2c2rd: --job-sync must be normal or full, got '%s'\n", job_sync);
        return 2;
    }
    cfg.job_sync_full = strcmp(job_sync, "full") == 0;
    if (check_ledger)
        return check_ledger_main(state_dir);
    cfg.tls_cert = tls_cert;
    cfg.tls_key = tls_key;
    cfg.tls_client_ca = tls_client_ca;
    cfg.on_listening = on_listening;
    cfg.on_ready = on_ready;
    cfg.arg = &lp;

    /* Every connection is a descriptor (a local peer's are two), and the
     * usual soft limit of 1024 would make accept fail with EMFILE long
     * before --max-conns: raise it, or lower max_conns to what fits, so an
     * excess connection is refused with a clear ELIMIT instead. */
    uint64_t need = (uint64_t)max_conns + (uint64_t)max_unauth + 2 * (uint64_t)local + FD_RESERVE, fds;
    if (fd_limit_raise(need, &fds) != 0) {
        uint64_t fit = fds > 2 * (uint64_t)local + 2 * FD_RESERVE ? fds - 2 * (uint64_t)local - FD_RESERVE : FD_RESERVE;
        /* Losing a few descriptors' worth of the default is not news. */
        LOG(fit < (uint64_t)cfg.max_conns * 9 / 10 ? LOG_WARN : LOG_INFO, "fd_limit",
            "limit=%llu max_conns=%u lowered_to=%llu hint=\"raise the hard limit (ulimit -Hn) to serve "
            "--max-conns\"", (unsigned long long)fds, cfg.max_conns, (unsigned long long)fit);
        /* The unauthenticated pool takes at most a quarter of what fits. */
        if (cfg.max_unauth > fit / 4 + 1)
            cfg.max_unauth = (uint32_t)(fit / 4 + 1);
        cfg.max_conns = fit > cfg.max_unauth ? (uint32_t)(fit - cfg.max_unauth) : 1;
    }

    struct coord *co;
    char err[512];
    if ((rc = coord_new(&cfg, &co, err, sizeof(err))) != 0) {
        fprintf(stderr, "p2c2rd: %s\n", err);
        /* A bad option value (--type-deadline, --cache-types, --verify, a malformed
         * tokens file) is a usage error; a port that cannot be bound or a
         * tokens file that cannot be opened is not. */
        return rc == P2C2R_EINVAL ? 2 : 1;
    }
    coord_run(co);
    if (lp.started) {
        peer_agent_stop(lp.agent);
        pthread_join(lp.thread, NULL);
    }
    peer_agent_free(lp.agent);
    coord_free(co);
    return 0;
}
