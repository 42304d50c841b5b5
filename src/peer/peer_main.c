/* peer_main.c - the p2c2r-peer program: options, then the peer agent. */
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cliopt.h"
#include "common/ident.h"
#include "common/log.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/executor.h"
#include "peer/peer.h"
#include "tasks/tasks.h"

int main(int argc, char **argv)
{
    /* Frames of tens of KiB are allocated and freed at a high rate; keep
     * glibc from returning that memory to the kernel (and faulting it back
     * in) on every cycle. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    /* A write to a connection the remote has reset must fail with EPIPE,
     * not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    struct peer_config cfg;
    peer_config_defaults(&cfg);
    const char *coordinator = getenv("P2C2R_COORDINATOR");
    if (!coordinator)
        coordinator = cfg.coordinator;
    /* Every built-in type, the default of --types, spelled from the table
     * that peer_agent_new picks them from, so --help cannot name others. */
    char all_types[PROTO_MAX_TYPES * (PROTO_MAX_TYPE_NAME + 1) + 1] = "";
    size_t nb;
    const struct p2c2r_executor *const *builtin = tasks_builtin(&nb);
    for (size_t i = 0, o = 0; i < nb && o < sizeof(all_types); i++)
        o += (size_t)snprintf(all_types + o, sizeof(all_types) - o, "%s%s", i ? "," : "", builtin[i]->name);
    const char *types = all_types, *token = getenv("P2C2R_TOKEN"), *name = NULL, *level = "info";
    int64_t slots = cfg.slots, threads = 0, conns = 1, cores = 0, mem = 0;
    int64_t prepared = (int64_t)cfg.prepared_cache_bytes;
    const char *gpu = NULL, *key_file = "p2c2r-peer.key", *pool = "volunteer";
    int64_t cost = 0;
    const char *tls_ca = getenv("P2C2R_TLS_CA"), *tls_cert = NULL, *tls_key = NULL, *tls_name = NULL;
    const struct cliopt opts[] = {
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator address; $P2C2R_COORDINATOR when set", &coordinator, CLIOPT_DEFAULT},
        {"slots", 's', OPT_INT, "N", 1, 65535, "tasks run at once per connection; one per online core", &slots, CLIOPT_DEFAULT},
        {"threads", 0, OPT_INT, "N", 1, 1024, "executor threads (default: --slots)", &threads},
        {"types", 'T', OPT_STR, "LIST", 0, 0, "comma-separated task types to serve; every built-in one", &types, CLIOPT_DEFAULT},
        {"connections", 0, OPT_INT, "N", 1, 10000, "coordinator connections, each registered as a peer", &conns, CLIOPT_DEFAULT},
        {"gpu", 0, OPT_STR, "MODEL", 0, 0, "offer a GPU named MODEL to tasks that require one (not detected; default none)", &gpu},
        {"cores", 0, OPT_INT, "N", 1, 65535, "cores to offer (default: the machine's online cores)", &cores},
        {"memory", 0, OPT_INT, "BYTES", 1, INT64_MAX, "memory to offer (default: the machine's physical memory)", &mem},
        {"pool", 0, OPT_STR, "POOL", 0, 0, "the pool this peer is in, as its operator declares: volunteer or cloud (the coordinator puts a task on the cheapest pool that meets its deadline)", &pool, CLIOPT_DEFAULT},
        {"cost", 0, OPT_INT, "N", 0, UINT32_MAX, "the price asked per unit of work, in credits (compared between pools)", &cost, CLIOPT_DEFAULT},
        {"prepared-cache", 0, OPT_INT, "BYTES", 0, INT64_MAX, "bytes of state executors keep from blobs (parsed maps, scenes); 0 keeps none", &prepared, CLIOPT_DEFAULT},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        {"name", 'n', OPT_STR, "NAME", 0, 0, "name shown in coordinator stats", &name},
        {"key", 'k', OPT_STR, "FILE", 0, 0, "this peer's identity (Ed25519 key pair); created 0600 on first start, relative to the working directory; keep it: the coordinator's record of this peer follows it", &key_file, CLIOPT_DEFAULT},
        {"log-level", 0, OPT_STR, "LEVEL", 0, 0, "debug, info, warn, error or off", &level, CLIOPT_DEFAULT},
        {"tls-ca", 0, OPT_STR, "FILE", 0, 0, "connect with TLS 1.3 and trust the coordinator's certificate only if it chains to a CA in FILE (PEM; default $P2C2R_TLS_CA)", &tls_ca},
        {"tls-name", 0, OPT_STR, "NAME", 0, 0, "name or IP address the coordinator's certificate must carry (default: the host of --coordinator)", &tls_name},
        {"tls-cert", 0, OPT_STR, "FILE", 0, 0, "client certificate (PEM) to present to a coordinator that checks them (--tls-client-ca); needs --tls-key", &tls_cert},
        {"tls-key", 0, OPT_STR, "FILE", 0, 0, "private key (PEM) of --tls-cert", &tls_key},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "p2c2r-peer",
                          "[OPTIONS]",
                          "A p2c2r peer: registers with a coordinator, runs the tasks it is given on a\n"
                          "pool of executor threads, and reconnects when the coordinator goes away.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc) {
        fprintf(stderr, "p2c2r-peer: unexpected argument '%s'\nTry 'p2c2r-peer --help'.\n", argv[pos]);
        return 2;
    }
    int lvl;
    if (log_level_parse(level, &lvl) != 0) {
        fprintf(stderr, "p2c2r-peer: --log-level must be debug, info, warn, error or off\n");
        return 2;
    }
    uint64_t fds;
    if (fd_limit_raise((uint64_t)conns + FD_RESERVE, &fds) != 0) {
        fprintf(stderr,
                "p2c2r-peer: --connections %lld needs %llu file descriptors, but the limit is %llu: "
                "raise the hard limit (ulimit -Hn, or LimitNOFILE= in a systemd unit) or use fewer "
                "connections\n",
                (long long)conns, (unsigned long long)conns + FD_RESERVE, (unsigned long long)fds);
        return 2;
    }
    log_set_level(lvl);
    log_set_component("p2c2r-peer");
    cfg.coordinator = coordinator;
    cfg.types = types == all_types ? NULL : types; /* NULL: every built-in */
    cfg.token = token;
    cfg.name = name;
    cfg.slots = (uint32_t)slots;
    cfg.threads = (uint32_t)(threads ? threads : slots);
    cfg.connections = (uint32_t)conns;
    cfg.cores = (uint32_t)cores;
    cfg.mem_bytes = (uint64_t)mem;
    cfg.prepared_cache_bytes = (size_t)prepared;
    if (gpu && (gpu[0] == '\0' || strlen(gpu) > PROTO_MAX_NAME)) {
        fprintf(stderr, "p2c2r-peer: --gpu needs a model name of 1..%d bytes, e.g. --gpu 'RTX 4070'\n",
                PROTO_MAX_NAME);
        return 2;
    }
    cfg.gpu_model = gpu;
    if (strcmp(pool, "volunteer") == 0) {
        cfg.pool = PROTO_POOL_VOLUNTEER;
    } else if (strcmp(pool, "cloud") == 0) {
        cfg.pool = PROTO_POOL_CLOUD;
    } else {
        fprintf(stderr, "p2c2r-peer: --pool must be volunteer or cloud, not '%s'\n", pool);
        return 2;
    }
    cfg.cost = (uint32_t)cost;
    if (tls_ca && !*tls_ca)
        tls_ca = NULL; /* P2C2R_TLS_CA= turns it off */
    if ((tls_cert || tls_key || tls_name) && !tls_ca) {
        fprintf(stderr, "p2c2r-peer: --tls-cert, --tls-key and --tls-name need --tls-ca FILE (the CA "
                        "that signed the coordinator's certificate)\n");
        return 2;
    }
    if (!tls_cert != !tls_key) {
        fprintf(stderr, "p2c2r-peer: a client certificate needs both --tls-cert FILE and --tls-key FILE\n");
        return 2;
    }
    cfg.tls = tls_ca != NULL;
    cfg.tls_ca = tls_ca;
    cfg.tls_cert = tls_cert;
    cfg.tls_key = tls_key;
    cfg.tls_name = tls_name;
    cfg.handle_signals = 1;
    char err[512];
    struct peer_agent *a;
    if (peer_agent_new(&cfg, &a, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2c2r-peer: %s\n", err);
        return 2;
    }
    /* The key only once the options are known to be good, so that a
     * mistyped command line leaves no key file behind. */
    struct ident key;
    int created = 0;
    if (ident_load_or_create(key_file, &key, &created, err, sizeof(err)) != 0) {
        fprintf(stderr, "p2c2r-peer: %s\n", err);
        peer_agent_free(a);
        return 1;
    }
    char hex[IDENT_PK_HEX_LEN + 1];
    ident_pk_hex(key.pk, hex);
    LOG_I("peer_key", "file=%s public=%s created=%d", key_file, hex, created);
    peer_agent_set_keys(a, &key, 1);
    ident_fini(&key); /* the agent keeps its own copy */
    peer_agent_run(a);
    peer_agent_free(a);
    return 0;
}
