/* config.c - configuration: defaults and the comma-list options (the credentials file is
 * acctfile.c's and account.c's). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"

void coord_config_defaults(struct coord_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = "127.0.0.1:8765";
    cfg->max_body = PROTO_MAX_BODY_DEFAULT;
    cfg->renter_max_inflight = 8192;
    cfg->max_output = 64u << 20;
    cfg->queue_max = 1000000;
    cfg->queue_max_bytes = 1ull << 30;
    cfg->max_attempts = 3;
    cfg->max_conns = 20000;
    cfg->hello_timeout_ms = 5000;
    cfg->peer_timeout_ms = 30000;
    cfg->default_deadline_ms = 60000;
    cfg->orphan_timeout_ms = 10000;
    cfg->blob_store_bytes = 512u << 20;
    cfg->cache_types = "*"; /* every type whose peers declare it deterministic */
    cfg->cache_bytes = 64u << 20;
    cfg->cache_ttl_ms = 300000;
    cfg->hedge = 1;
    cfg->hedge_min_us = 2000;
    cfg->aging_ms = 500;
    cfg->breaker_strikes = 5;
    cfg->breaker_cooldown_ms = 2000;
    cfg->ping_ms = 5000;
    cfg->admission = 1;
    cfg->verify = "adaptive";
    cfg->liar_quarantine_ms = 600000;
    cfg->max_keys = 100000;
    cfg->mem_budget = 256ull << 20;
    cfg->frame_timeout_ms = 30000;
    cfg->idle_timeout_ms = 600000;
    cfg->max_unauth = 1024;
    cfg->max_unauth_per_addr = 64;
    cfg->max_deadline_ms = 3600000;
    cfg->peer_new_types = 8;
    cfg->stats_interval_ms = 100;
    cfg->login_failures = 10;
    cfg->login_backoff_ms = 1000;
    cfg->job_retention_s = 7 * 86400;
    cfg->job_deadline_s = 7 * 86400;
    cfg->job_max_pending = 1000000;
    cfg->job_max_accounts = 4096;
    cfg->job_max_attempts = 20;
    cfg->credit_price_milli = 2000;
    cfg->credit_hold_s = 86400;
}

/* Parses "TYPE=MS,TYPE=MS" (--type-deadline). */
int config_type_deadlines(struct coord *co, const char *spec, char *err, size_t errcap)
{
    const char *s = spec, *it;
    size_t n;
    while (util_list_next(&s, &it, &n)) {
        const char *eq = memchr(it, '=', n), *end = it + n;
        char *stop = NULL;
        unsigned long ms = eq ? strtoul(eq + 1, &stop, 10) : 0;
        if (!eq || !type_name_ok((const uint8_t *)it, (size_t)(eq - it)) || stop != end || ms == 0 ||
            ms > 86400000 || co->ntdl == PROTO_MAX_TYPES) {
            snprintf(err, errcap, "bad --type-deadline '%s': expected TYPE=MS[,TYPE=MS...] with MS in 1..86400000",
                     spec);
            return P2C2R_EINVAL;
        }
        struct type_deadline *d = &co->tdl[co->ntdl++];
        memcpy(d->name, it, (size_t)(eq - it));
        d->name[eq - it] = '\0';
        d->ms = (uint32_t)ms;
    }
    return 0;
}

/* Parses "TYPE,TYPE" or "*" (--cache-types); "" caches nothing. */
int config_cache_types(struct coord *co, const char *spec, char *err, size_t errcap)
{
    const char *s = spec, *it;
    size_t n;
    while (util_list_next(&s, &it, &n)) {
        int star = n == 1 && *it == '*';
        if ((!star && !type_name_ok((const uint8_t *)it, n)) || co->ncache_types == PROTO_MAX_TYPES) {
            snprintf(err, errcap, "bad --cache-types '%s': expected TYPE[,TYPE...] or '*'", spec);
            return P2C2R_EINVAL;
        }
        memcpy(co->cache_types[co->ncache_types], it, n);
        co->cache_types[co->ncache_types++][n] = '\0';
    }
    return 0;
}
