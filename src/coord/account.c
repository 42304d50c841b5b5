/* account.c - accounts and tiers at run time (account.h): logins with hashed
 * tokens, one role per credential, the backoff of failed logins per source
 * address, every tier limit with a refusal that names it, per-account and
 * per-tier figures for STATS and Prometheus, and the SIGHUP reload.
 *
 * Invariants: a connection is on the conns list of exactly the account its
 * acct names (or of none, acct NULL); an account's nconns is that list's
 * length; an account's blob_bytes and blob_count are the sizes and number
 * of the blobs in the store whose owner it is.  Records are never freed
 * before the coordinator (account.h says why). */
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"

_Static_assert(VP_COUNT == 4, "a tier's verify bits follow enum verify_policy");

/* Failed logins are remembered per source address in a bounded table: sets
 * of LOGIN_WAYS slots, the least recently failed slot of a set giving way
 * to a new address.  An address forgets its failures LOGIN_FORGET_US after
 * the last one. */
#define LOGIN_SETS 1024u
#define LOGIN_WAYS 4u
#define LOGIN_FORGET_US (600ull * 1000000)
#define LOGIN_MAX_SHIFT 8u /* backoff grows up to 256 times --login-backoff */

struct login_slot {
    char ip[48];
    uint32_t fails;
    uint64_t last_us, until_us;
};

struct acct_table {
    struct tier_rec **tiers;
    uint32_t ntiers;
    struct account **accts;
    uint32_t naccts;
    /* The accounts in the file now, by their hash: open addressing on the
     * hash's first 8 bytes, at most half full. */
    struct account **by_hash;
    uint32_t hash_mask;
    struct login_slot *slots; /* LOGIN_SETS * LOGIN_WAYS */
    uint64_t failures, backoffs, reloads, reload_errors;
};

static const char *const limit_name[AL_N] = {"conns", "tasks", "rate", "priority", "deadline",
                                             "input", "output", "blob_bytes", "blob_count", "verify", "jobs"};

/* ---- applying a parsed file ------------------------------------------------- */

static struct tier_rec *tier_get(struct acct_table *tab, const char *name)
{
    for (uint32_t i = 0; i < tab->ntiers; i++)
        if (strcmp(tab->tiers[i]->t.name, name) == 0)
            return tab->tiers[i];
    tab->tiers = xrealloc(tab->tiers, (tab->ntiers + 1) * sizeof(*tab->tiers));
    struct tier_rec *r = xcalloc(1, sizeof(*r));
    tab->tiers[tab->ntiers++] = r;
    return r;
}

static struct account *acct_get(struct acct_table *tab, const char *name)
{
    for (uint32_t i = 0; i < tab->naccts; i++)
        if (strcmp(tab->accts[i]->name, name) == 0)
            return tab->accts[i];
    tab->accts = xrealloc(tab->accts, (tab->naccts + 1) * sizeof(*tab->accts));
    struct account *a = xcalloc(1, sizeof(*a));
    memcpy(a->name, name, sizeof(a->name));
    list_init(&a->conns);
    a->bucket = -1; /* full at the first submit */
    tab->accts[tab->naccts++] = a;
    return a;
}

/* Whether a connection that said HELLO with hello_role may belong to an
 * account with role. */
static int role_fits(int role, uint8_t hello_role)
{
    return hello_role == ROLE_PEER ? role == ACCT_PEER : role == ACCT_RENTER || role == ACCT_OPERATOR;
}

/* Cuts every connection of a that may no longer be its (a removed, or its
 * role changed); returns how many. */
static uint32_t acct_cut_misfits(struct account *a)
{
    uint32_t n = 0;
    for (struct list_node *it = a->conns.next; it != &a->conns; it = it->next) {
        struct conn *c = list_entry(it, struct conn, anode);
        if (c->state >= CS_DRAINING)
            continue;
        if (a->removed)
            conn_fail(c, P2C2R_EAUTH, "account %s was removed from the credentials file", a->name);
        else if (!role_fits(a->role, c->role))
            conn_fail(c, P2C2R_EAUTH, "account %s is now a %s account", a->name, acct_role_name(a->role));
        else
            continue;
        n++;
    }
    return n;
}

static uint32_t hash_slot(const uint8_t *h, uint32_t mask)
{
    uint64_t k;
    memcpy(&k, h, sizeof(k));
    return (uint32_t)(k & mask);
}

/* Indexes the accounts of the current file by hash. */
static void index_hashes(struct acct_table *tab, uint32_t n)
{
    uint32_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    free(tab->by_hash);
    tab->by_hash = xcalloc(cap, sizeof(*tab->by_hash));
    tab->hash_mask = cap - 1;
    for (uint32_t i = 0; i < tab->naccts; i++) {
        struct account *a = tab->accts[i];
        if (a->removed)
            continue;
        uint32_t s = hash_slot(a->hash, tab->hash_mask);
        while (tab->by_hash[s])
            s = (s + 1) & tab->hash_mask;
        tab->by_hash[s] = a;
    }
}

/* The account whose token hashes to h, or NULL.  Where the probe starts
 * depends on h, which the guesser knows anyway (it is the hash of his own
 * guess): the time it takes says nothing of the stored hashes beyond
 * whether one shares h's first bytes, and the full comparison is constant
 * time (sodium_memcmp). */
static struct account *find_by_hash(const struct acct_table *tab, const uint8_t *h)
{
    for (uint32_t s = hash_slot(h, tab->hash_mask); tab->by_hash[s]; s = (s + 1) & tab->hash_mask)
        if (sodium_memcmp(tab->by_hash[s]->hash, h, ACCT_HASH_LEN) == 0)
            return tab->by_hash[s];
    return NULL;
}

static void apply(struct coord *co, const struct acct_file *f)
{
    struct acct_table *tab = co->accts;
    for (uint32_t i = 0; i < tab->ntiers; i++)
        tab->tiers[i]->removed = 1;
    for (uint32_t i = 0; i < tab->naccts; i++)
        tab->accts[i]->removed = 1;
    for (uint32_t i = 0; i < f->ntiers; i++) {
        struct tier_rec *r = tier_get(tab, f->tiers[i].name);
        r->t = f->tiers[i];
        r->removed = 0;
    }
    uint32_t cut = 0;
    for (uint32_t i = 0; i < f->naccts; i++) {
        const struct acct_def *d = &f->accts[i];
        struct account *a = acct_get(tab, d->name);
        a->role = d->role;
        memcpy(a->hash, d->hash, ACCT_HASH_LEN);
        a->tier = tier_get(tab, f->tiers[d->tier].name);
        a->removed = 0;
        if (a->tier->t.rate && a->bucket > a->tier->t.burst)
            a->bucket = a->tier->t.burst;
    }
    index_hashes(tab, f->naccts);
    for (uint32_t i = 0; i < tab->naccts; i++) {
        cut += acct_cut_misfits(tab->accts[i]);
        /* A tier's new weight applies to the share its accounts already
         * have, not only from their next login. */
        char key[ACCT_NAME_MAX + 8];
        size_t kl = account_share_key(tab->accts[i], key, sizeof(key));
        if (!tab->accts[i]->removed)
            share_reweight(co, key, kl, tab->accts[i]->tier->t.weight);
    }
    LOG_I("accounts_loaded", "path=%s accounts=%u tiers=%u cut=%u",
          co->cfg.accounts_file ? co->cfg.accounts_file : co->cfg.tokens_file, f->naccts, f->ntiers, cut);
}

static int load(struct coord *co, struct acct_file *f, char *err, size_t errcap)
{
    if (acct_file_init(f) != 0) {
        snprintf(err, errcap, "out of memory");
        return P2C2R_ENOMEM;
    }
    int rc = co->cfg.accounts_file ? acct_file_load(f, co->cfg.accounts_file, 0, err, errcap)
                                   : acct_file_load(f, co->cfg.tokens_file, 1, err, errcap);
    if (rc)
        acct_file_fini(f);
    return rc;
}

int account_init(struct coord *co, char *err, size_t errcap)
{
    if (!co->cfg.accounts_file && !co->cfg.tokens_file)
        return 0;
    if (sodium_init() < 0) {
        snprintf(err, errcap, "libsodium failed to initialise");
        return P2C2R_EINVAL;
    }
    struct acct_file f;
    int rc = load(co, &f, err, errcap);
    if (rc)
        return rc;
    co->accts = xcalloc(1, sizeof(*co->accts));
    co->accts->slots = xcalloc(LOGIN_SETS * LOGIN_WAYS, sizeof(*co->accts->slots));
    apply(co, &f);
    acct_file_fini(&f);
    return 0;
}

void account_fini(struct coord *co)
{
    struct acct_table *tab = co->accts;
    if (!tab)
        return;
    for (uint32_t i = 0; i < tab->naccts; i++) {
        mem_acct_unref(tab->accts[i]->macct); /* after every task, blob and connection let go */
        free(tab->accts[i]);
    }
    for (uint32_t i = 0; i < tab->ntiers; i++)
        free(tab->tiers[i]);
    free(tab->accts);
    free(tab->tiers);
    free(tab->slots);
    free(tab->by_hash);
    free(tab);
    co->accts = NULL;
}

void account_reload(struct coord *co)
{
    if (!co->accts) {
        LOG_I("accounts_reload_skipped", "reason=\"no --accounts or --tokens file\"");
        return;
    }
    struct acct_file f;
    char err[512];
    co->accts->reloads++;
    if (load(co, &f, err, sizeof(err)) != 0) {
        co->accts->reload_errors++;
        char esc[4 * sizeof(err)];
        LOG_E("accounts_reload_failed", "reason=\"%s\" kept=previous", log_esc(esc, sizeof(esc), err, strlen(err)));
        return;
    }
    apply(co, &f);
    acct_file_fini(&f);
}

/* ---- logins ------------------------------------------------------------------- */

/* The address part of "IP:PORT" (or "[IP6]:PORT"). */
static void addr_ip(const char *addr, char *ip, size_t cap)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon ? (size_t)(colon - addr) : strlen(addr);
    if (n >= cap)
        n = cap - 1;
    memcpy(ip, addr, n);
    ip[n] = '\0';
}

static struct login_slot *login_set(struct acct_table *tab, const char *ip)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = ip; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    return &tab->slots[(h % LOGIN_SETS) * LOGIN_WAYS];
}

static struct login_slot *login_find(struct acct_table *tab, const char *ip)
{
    struct login_slot *set = login_set(tab, ip);
    for (uint32_t w = 0; w < LOGIN_WAYS; w++)
        if (set[w].fails && strcmp(set[w].ip, ip) == 0)
            return &set[w];
    return NULL;
}

/* Counts a failed login from ip; from the --login-failures'th on, the
 * address must wait --login-backoff, doubled for each further failure. */
static void login_failed(struct coord *co, const char *ip)
{
    struct acct_table *tab = co->accts;
    struct login_slot *s = login_find(tab, ip);
    if (!s) {
        struct login_slot *set = login_set(tab, ip);
        s = &set[0];
        for (uint32_t w = 1; w < LOGIN_WAYS; w++)
            if (set[w].last_us < s->last_us)
                s = &set[w];
        memset(s, 0, sizeof(*s));
        snprintf(s->ip, sizeof(s->ip), "%s", ip);
    }
    if (co->now - s->last_us > LOGIN_FORGET_US)
        s->fails = 0;
    s->fails++;
    s->last_us = co->now;
    tab->failures++;
    uint32_t limit = co->cfg.login_failures;
    if (limit && s->fails >= limit) {
        uint32_t shift = s->fails - limit < LOGIN_MAX_SHIFT ? s->fails - limit : LOGIN_MAX_SHIFT;
        uint64_t wait_ms = (uint64_t)co->cfg.login_backoff_ms << shift;
        s->until_us = co->now + wait_ms * 1000;
        LOG_W("login_backoff", "ip=%s failures=%u wait_ms=%" PRIu64, ip, s->fails, wait_ms);
    }
}

int account_login(struct coord *co, struct conn *c, uint8_t role, const struct bytes_view *token,
                  struct account **out)
{
    struct acct_table *tab = co->accts;
    if (!tab) {
        *out = NULL;
        return 0;
    }
    char ip[48];
    addr_ip(c->addr, ip, sizeof(ip));
    struct login_slot *s = login_find(tab, ip);
    if (s && s->until_us > co->now) {
        tab->backoffs++;
        conn_fail(c, P2C2R_EAGAIN, "%u failed logins from %s: retry in %" PRIu64 " ms", s->fails, ip,
                  (s->until_us - co->now + 999) / 1000);
        return -1;
    }
    uint8_t h[ACCT_HASH_LEN];
    acct_token_hash(token->p, token->len, h);
    struct account *a = find_by_hash(tab, h);
    if (!a || !role_fits(a->role, role)) {
        co->n.auth_failures++;
        login_failed(co, ip);
        conn_fail(c, P2C2R_EAUTH, "invalid or missing token for role %s", role == ROLE_PEER ? "peer" : "renter");
        return -1;
    }
    const struct tier *t = &a->tier->t;
    if (t->max_conns && a->nconns >= t->max_conns) {
        a->n.refused[AL_CONNS]++;
        a->tier->n.refused[AL_CONNS]++;
        conn_fail(c, P2C2R_ELIMIT, "account %s has %u connections open, tier %s allows %u (max_conns): close "
                  "one and retry", a->name, a->nconns, t->name, t->max_conns);
        return -1;
    }
    c->acct = a;
    list_push_back(&a->conns, &c->anode);
    a->nconns++;
    a->n.logins++;
    a->tier->n.logins++;
    *out = a;
    return 0;
}

void account_logout(struct conn *c)
{
    struct account *a = c->acct;
    if (!a)
        return;
    list_remove(&c->anode);
    a->nconns--;
    c->acct = NULL;
}

int account_is_operator(const struct coord *co, const struct conn *c)
{
    return !co->accts || (c->acct && c->acct->role == ACCT_OPERATOR);
}

int account_http_auth(void *arg, const char *token, size_t len)
{
    const struct coord *co = arg;
    if (!co->accts || len == 0)
        return 0;
    uint8_t h[ACCT_HASH_LEN];
    acct_token_hash(token, len, h);
    const struct account *a = find_by_hash(co->accts, h);
    return a && a->role == ACCT_OPERATOR;
}

/* ---- limits ------------------------------------------------------------------- */

size_t account_share_key(const struct account *a, char *key, size_t cap)
{
    int n = snprintf(key, cap, "acct:%s", a->name);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

uint32_t account_tasks(const struct account *a)
{
    uint32_t n = 0;
    for (const struct list_node *it = a->conns.next; it != &a->conns; it = it->next)
        n += list_entry(it, const struct conn, anode)->inflight;
    return n;
}

static int refuse(struct account *a, int lim, int code)
{
    a->n.refused[lim]++;
    a->tier->n.refused[lim]++;
    return code;
}

/* The tier checks of a SUBMIT (jobs < 0) or of a durable job (jobs: the
 * account's pending jobs, this one not counted). */
static int check_task(struct coord *co, struct conn *c, const struct msg_task *m, size_t body_len, uint32_t dl_ms,
                      int verify, int64_t jobs, char *reason, size_t cap)
{
    struct account *a = c->acct;
    if (!a)
        return 0;
    const struct tier *t = &a->tier->t;
    a->n.submitted++;
    a->tier->n.submitted++;
    int prio = m->priority < PRIO_CLASSES ? m->priority : PRIO_BACKGROUND;
    if (prio < t->max_priority) {
        snprintf(reason, cap, "priority %s is above tier %s's highest class %s (max_priority): submit at %s or "
                 "below", acct_prio_name(prio), t->name, acct_prio_name(t->max_priority),
                 acct_prio_name(t->max_priority));
        return refuse(a, AL_PRIORITY, P2C2R_ELIMIT);
    }
    if (dl_ms < t->min_deadline_ms || (t->max_deadline_ms && dl_ms > t->max_deadline_ms)) {
        snprintf(reason, cap, "deadline %u ms is outside tier %s's range %u..%u ms (min_deadline_ms, "
                 "max_deadline_ms): ask for a deadline in it", dl_ms, t->name, t->min_deadline_ms,
                 t->max_deadline_ms ? t->max_deadline_ms : 86400000u);
        return refuse(a, AL_DEADLINE, P2C2R_ELIMIT);
    }
    if (t->max_input && body_len > t->max_input) {
        snprintf(reason, cap, "task of %zu bytes is over tier %s's max_input of %" PRIu64 " bytes: send less, or "
                 "put the data in a blob", body_len, t->name, t->max_input);
        return refuse(a, AL_INPUT, P2C2R_ETOOBIG);
    }
    if (verify >= 0 && !(t->verify & (1u << verify))) {
        snprintf(reason, cap, "type '%.*s' is verified with %s, which tier %s does not allow (verify): use "
                 "another type or tier", (int)m->type.len, (const char *)m->type.p,
                 verify_policy_name(verify), t->name);
        return refuse(a, AL_VERIFY, P2C2R_ELIMIT);
    }
    uint32_t n;
    if (jobs >= 0 && t->max_jobs && (uint64_t)jobs >= t->max_jobs) {
        snprintf(reason, cap, "account %s has %" PRId64 " durable jobs without an outcome, tier %s allows %u "
                 "(max_jobs): retry when one of them ends", a->name, jobs, t->name, t->max_jobs);
        return refuse(a, AL_JOBS, P2C2R_EQUEUEFULL);
    }
    if (jobs < 0 && t->max_tasks && (n = account_tasks(a)) >= t->max_tasks) {
        snprintf(reason, cap, "account %s has %u tasks in flight and queued, tier %s allows %u (max_tasks): "
                 "retry when one of its outcomes arrives", a->name, n, t->name, t->max_tasks);
        return refuse(a, AL_TASKS, P2C2R_EQUEUEFULL);
    }
    if (t->rate) {
        /* A token bucket: rate submits a second, up to burst at once. */
        if (a->bucket < 0)
            a->bucket = t->burst;
        else
            a->bucket += (double)(co->now - a->bucket_us) * t->rate / 1e6;
        if (a->bucket > t->burst)
            a->bucket = t->burst;
        a->bucket_us = co->now;
        if (a->bucket < 1) {
            uint64_t wait_ms = (uint64_t)ceil((1 - a->bucket) * 1000.0 / t->rate);
            snprintf(reason, cap, "account %s is over tier %s's submit rate of %u/s with a burst of %u (rate): "
                     "retry in %" PRIu64 " ms", a->name, t->name, t->rate, t->burst, wait_ms ? wait_ms : 1);
            return refuse(a, AL_RATE, P2C2R_EAGAIN);
        }
        a->bucket -= 1;
    }
    return 0;
}

int account_check_submit(struct coord *co, struct conn *c, const struct msg_task *m, size_t body_len,
                         uint32_t dl_ms, int verify, char *reason, size_t cap)
{
    return check_task(co, c, m, body_len, dl_ms, verify, -1, reason, cap);
}

int account_check_job(struct coord *co, struct conn *c, const struct msg_task *m, size_t body_len, uint32_t dl_ms,
                      int verify, uint32_t pending, char *reason, size_t cap)
{
    return check_task(co, c, m, body_len, dl_ms, verify, pending, reason, cap);
}

void account_rate_refund(struct conn *c, uint32_t n)
{
    struct account *a = c->acct;
    if (!a || !a->tier->t.rate || a->bucket < 0)
        return;
    a->bucket += n;
    if (a->bucket > a->tier->t.burst)
        a->bucket = a->tier->t.burst;
}

uint32_t account_max_deadline(const struct conn *c)
{
    return c->acct ? c->acct->tier->t.max_deadline_ms : 0;
}

void account_on_accepted(struct conn *c)
{
    if (!c->acct)
        return;
    c->acct->n.accepted++;
    c->acct->tier->n.accepted++;
}

int account_output_refused(struct conn *r, size_t len, char *why, size_t cap)
{
    struct account *a = r->acct;
    if (!a || !a->tier->t.max_output || len <= a->tier->t.max_output)
        return 0;
    snprintf(why, cap, "result of %zu bytes is over tier %s's max_output of %" PRIu64 " bytes: ask for less "
             "(smaller tiles, fewer steps)", len, a->tier->t.name, a->tier->t.max_output);
    refuse(a, AL_OUTPUT, 0);
    return 1;
}

int account_blob_admit(struct account *a, uint64_t len, char *why, size_t cap)
{
    if (!a)
        return 0;
    const struct tier *t = &a->tier->t;
    if (t->blob_bytes && a->blob_bytes + len > t->blob_bytes) {
        if (why) {
            snprintf(why, cap, "account %s's blobs hold %" PRIu64 " bytes, tier %s allows %" PRIu64
                     " (blob_bytes): retry when tasks using them are done", a->name, a->blob_bytes, t->name,
                     t->blob_bytes);
            refuse(a, AL_BLOB_BYTES, 0);
        }
        return P2C2R_ELIMIT;
    }
    if (t->blob_count && a->blob_count + 1 > t->blob_count) {
        if (why) {
            snprintf(why, cap, "account %s has %u blobs stored, tier %s allows %u (blob_count): retry when "
                     "tasks using them are done", a->name, a->blob_count, t->name, t->blob_count);
            refuse(a, AL_BLOB_COUNT, 0);
        }
        return P2C2R_ELIMIT;
    }
    return 0;
}

void account_blob_charge(struct account *a, uint64_t len, int sign)
{
    if (!a)
        return;
    if (sign > 0) {
        a->blob_bytes += len;
        a->blob_count++;
        a->n.blobs_put++;
        a->tier->n.blobs_put++;
    } else {
        a->blob_bytes -= len;
        a->blob_count--;
    }
}

/* ---- prices ---------------------------------------------------------------------- */

static uint64_t tier_price(const struct coord *co, const struct tier *t)
{
    return t->price ? t->price : co->cfg.credit_price_milli;
}

uint64_t account_price(const struct coord *co, const char *name)
{
    const struct acct_table *tab = co->accts;
    if (tab && name)
        for (uint32_t i = 0; i < tab->naccts; i++)
            if (strcmp(tab->accts[i]->name, name) == 0)
                return tier_price(co, &tab->accts[i]->tier->t);
    return co->cfg.credit_price_milli;
}

const char *account_name(const struct conn *c) { return c->acct ? c->acct->name : c->name; }

/* ---- figures -------------------------------------------------------------------- */

/* The figures of an account or a tier: one table for STATS and Prometheus
 * (p2c2r_account_KEY and p2c2r_tier_KEY, counters with _total). */
enum { F_CONNS, F_TASKS, F_BLOB_BYTES, F_BLOB_COUNT, F_MEM, F_LOGINS, F_SUBMITTED, F_ACCEPTED, F_BLOBS_PUT, F_N };
static const struct afig {
    const char *key;
    uint8_t counter;
    const char *help;
} afigs[F_N] = {
    {"conns", 0, "Open connections"},
    {"tasks", 0, "Tasks in flight and queued"},
    {"blob_bytes", 0, "Bytes of the blobs it uploaded that are in the store"},
    {"blob_count", 0, "Blobs it uploaded that are in the store"},
    {"mem_bytes", 0, "Bytes charged to its share of the memory budget (all its connections)"},
    {"logins", 1, "Successful logins (HELLO)"},
    {"submitted", 1, "Tasks submitted"},
    {"accepted", 1, "Tasks accepted"},
    {"blobs_put", 1, "Blobs it stored"},
};

static void acct_values(const struct account *a, uint64_t v[F_N])
{
    v[F_CONNS] = a->nconns;
    v[F_TASKS] = account_tasks(a);
    v[F_BLOB_BYTES] = a->blob_bytes;
    v[F_BLOB_COUNT] = a->blob_count;
    v[F_MEM] = a->macct ? a->macct->used : 0;
    v[F_LOGINS] = a->n.logins;
    v[F_SUBMITTED] = a->n.submitted;
    v[F_ACCEPTED] = a->n.accepted;
    v[F_BLOBS_PUT] = a->n.blobs_put;
}

/* A tier's gauges are the sums over its accounts; its counters its own. */
static void tier_values(const struct acct_table *tab, const struct tier_rec *r, uint64_t v[F_N], uint32_t *naccts)
{
    memset(v, 0, F_N * sizeof(*v));
    *naccts = 0;
    for (uint32_t i = 0; i < tab->naccts; i++) {
        const struct account *a = tab->accts[i];
        if (a->tier != r || a->removed)
            continue;
        uint64_t av[F_N];
        acct_values(a, av);
        for (int k = 0; k < F_LOGINS; k++)
            v[k] += av[k];
        (*naccts)++;
    }
    v[F_LOGINS] = r->n.logins;
    v[F_SUBMITTED] = r->n.submitted;
    v[F_ACCEPTED] = r->n.accepted;
    v[F_BLOBS_PUT] = r->n.blobs_put;
}

static void json_figs(struct buf *o, const uint64_t v[F_N], const struct acct_counters *n)
{
    char tmp[96];
    for (int k = 0; k < F_N; k++) {
        int l = snprintf(tmp, sizeof(tmp), ",\"%s\":%" PRIu64, afigs[k].key, v[k]);
        buf_append(o, tmp, (size_t)l);
    }
    buf_append(o, ",\"refused\":{", 12);
    for (int k = 0; k < AL_N; k++) {
        int l = snprintf(tmp, sizeof(tmp), "%s\"%s\":%" PRIu64, k ? "," : "", limit_name[k], n->refused[k]);
        buf_append(o, tmp, (size_t)l);
    }
    buf_append(o, "}", 1);
}

static void json_limits(const struct coord *co, struct buf *o, const struct tier *t)
{
    char tmp[512];
    int l = snprintf(tmp, sizeof(tmp),
                     ",\"limits\":{\"max_conns\":%u,\"max_tasks\":%u,\"rate\":%u,\"burst\":%u,"
                     "\"max_priority\":\"%s\",\"min_deadline_ms\":%u,\"max_deadline_ms\":%u,\"max_input\":%" PRIu64
                     ",\"max_output\":%" PRIu64 ",\"blob_bytes\":%" PRIu64 ",\"blob_count\":%u,\"weight\":%.6g,"
                     "\"max_jobs\":%u,\"price\":%" PRIu64 ",\"verify\":[",
                     t->max_conns, t->max_tasks, t->rate, t->burst, acct_prio_name(t->max_priority),
                     t->min_deadline_ms, t->max_deadline_ms, t->max_input, t->max_output, t->blob_bytes,
                     t->blob_count, t->weight, t->max_jobs, tier_price(co, t));
    buf_append(o, tmp, (size_t)l);
    int first = 1;
    for (int k = 0; k < VP_COUNT; k++)
        if (t->verify & (1u << k)) {
            l = snprintf(tmp, sizeof(tmp), "%s\"%s\"", first ? "" : ",", verify_policy_name(k));
            buf_append(o, tmp, (size_t)l);
            first = 0;
        }
    buf_append(o, "]}", 2);
}

/* Account and tier names are [A-Za-z0-9._-] (acctfile.c): no escaping. */
static void json_account(const struct coord *co, struct buf *o, const struct account *a, int limits)
{
    char tmp[256];
    uint64_t v[F_N];
    acct_values(a, v);
    int l = snprintf(tmp, sizeof(tmp), "{\"name\":\"%s\",\"role\":\"%s\",\"tier\":\"%s\",\"removed\":%s", a->name,
                     acct_role_name(a->role), a->tier->t.name, a->removed ? "true" : "false");
    buf_append(o, tmp, (size_t)l);
    json_figs(o, v, &a->n);
    if (limits)
        json_limits(co, o, &a->tier->t);
    buf_append(o, "}", 1);
}

void account_stats_json(struct coord *co, const struct conn *c, struct buf *o)
{
    const struct acct_table *tab = co->accts;
    if (!tab)
        return;
    char tmp[256];
    if (!account_is_operator(co, c)) {
        buf_append(o, ",\"account\":", 11);
        json_account(co, o, c->acct, 1);
        return;
    }
    buf_append(o, ",\"accounts\":[", 13);
    for (uint32_t i = 0; i < tab->naccts; i++) {
        if (i)
            buf_append(o, ",", 1);
        json_account(co, o, tab->accts[i], 0);
    }
    buf_append(o, "],\"tiers\":[", 11);
    int first = 1;
    for (uint32_t i = 0; i < tab->ntiers; i++) {
        const struct tier_rec *r = tab->tiers[i];
        if (r->removed)
            continue;
        uint64_t v[F_N];
        uint32_t na;
        tier_values(tab, r, v, &na);
        int l = snprintf(tmp, sizeof(tmp), "%s{\"name\":\"%s\",\"accounts\":%u", first ? "" : ",", r->t.name, na);
        buf_append(o, tmp, (size_t)l);
        json_figs(o, v, &r->n);
        json_limits(co, o, &r->t);
        buf_append(o, "}", 1);
        first = 0;
    }
    int l = snprintf(tmp, sizeof(tmp),
                     "],\"logins\":{\"failures\":%" PRIu64 ",\"backoffs\":%" PRIu64 ",\"reloads\":%" PRIu64
                     ",\"reload_errors\":%" PRIu64 "}",
                     tab->failures, tab->backoffs, tab->reloads, tab->reload_errors);
    buf_append(o, tmp, (size_t)l);
}

void account_metrics(struct coord *co, struct buf *o)
{
    const struct acct_table *tab = co->accts;
    if (!tab)
        return;
    char name[96], help[160], lb[200];
    for (int k = 0; k < F_N; k++) {
        for (int tier = 0; tier < 2; tier++) {
            snprintf(name, sizeof(name), "p2c2r_%s_%s%s", tier ? "tier" : "account", afigs[k].key,
                     afigs[k].counter ? "_total" : "");
            snprintf(help, sizeof(help), "%s, by %s.", afigs[k].help, tier ? "tier (over its accounts)" : "account");
            prom_help(o, name, afigs[k].counter ? "counter" : "gauge", help);
            for (uint32_t i = 0; i < (tier ? tab->ntiers : tab->naccts); i++) {
                uint64_t v[F_N];
                uint32_t na;
                if (tier) {
                    if (tab->tiers[i]->removed)
                        continue;
                    tier_values(tab, tab->tiers[i], v, &na);
                    snprintf(lb, sizeof(lb), "tier=\"%s\"", tab->tiers[i]->t.name);
                } else {
                    if (tab->accts[i]->removed)
                        continue;
                    acct_values(tab->accts[i], v);
                    snprintf(lb, sizeof(lb), "account=\"%s\",tier=\"%s\"", tab->accts[i]->name,
                             tab->accts[i]->tier->t.name);
                }
                if (afigs[k].counter)
                    prom_counter(o, name, lb, v[k]);
                else
                    prom_gauge(o, name, lb, (double)v[k]);
            }
        }
    }
    prom_help(o, "p2c2r_tier_accounts", "gauge", "Accounts of the tier in the credentials file.");
    for (uint32_t i = 0; i < tab->ntiers; i++) {
        uint64_t v[F_N];
        uint32_t na;
        if (tab->tiers[i]->removed)
            continue;
        tier_values(tab, tab->tiers[i], v, &na);
        snprintf(lb, sizeof(lb), "tier=\"%s\"", tab->tiers[i]->t.name);
        prom_gauge(o, "p2c2r_tier_accounts", lb, (double)na);
    }
    prom_help(o, "p2c2r_tier_weight", "gauge", "The tier's share weight (its accounts' weight against others).");
    for (uint32_t i = 0; i < tab->ntiers; i++) {
        if (tab->tiers[i]->removed)
            continue;
        snprintf(lb, sizeof(lb), "tier=\"%s\"", tab->tiers[i]->t.name);
        prom_gauge(o, "p2c2r_tier_weight", lb, tab->tiers[i]->t.weight);
    }
    prom_help(o, "p2c2r_account_refused_total", "counter", "Requests refused for a tier limit, by account and limit.");
    for (uint32_t i = 0; i < tab->naccts; i++)
        for (int k = 0; k < AL_N; k++)
            if (tab->accts[i]->n.refused[k]) {
                snprintf(lb, sizeof(lb), "account=\"%s\",limit=\"%s\"", tab->accts[i]->name, limit_name[k]);
                prom_counter(o, "p2c2r_account_refused_total", lb, tab->accts[i]->n.refused[k]);
            }
    prom_help(o, "p2c2r_tier_refused_total", "counter", "Requests refused for a tier limit, by tier and limit.");
    for (uint32_t i = 0; i < tab->ntiers; i++)
        for (int k = 0; k < AL_N && !tab->tiers[i]->removed; k++) {
            snprintf(lb, sizeof(lb), "tier=\"%s\",limit=\"%s\"", tab->tiers[i]->t.name, limit_name[k]);
            prom_counter(o, "p2c2r_tier_refused_total", lb, tab->tiers[i]->n.refused[k]);
        }
    static const struct {
        const char *name, *help;
        size_t off;
    } lg[] = {
        {"p2c2r_login_failures_total", "HELLOs refused for their token (each counts against its address).",
         offsetof(struct acct_table, failures)},
        {"p2c2r_login_backoffs_total", "HELLOs refused unchecked because their address was backing off.",
         offsetof(struct acct_table, backoffs)},
        {"p2c2r_accounts_reloads_total", "Reloads of the credentials file (SIGHUP).", offsetof(struct acct_table, reloads)},
        {"p2c2r_accounts_reload_errors_total", "Reloads refused for a bad file (the previous one stays).",
         offsetof(struct acct_table, reload_errors)},
    };
    for (size_t i = 0; i < ARRAY_LEN(lg); i++) {
        uint64_t v;
        memcpy(&v, (const char *)tab + lg[i].off, sizeof(v));
        prom_help(o, lg[i].name, "counter", lg[i].help);
        prom_counter(o, lg[i].name, "", v);
    }
}
