/* acctfile.c - the credentials file parser (acctfile.h): INI-like sections of
 * tiers and accounts, or the older one-token-a-line format, from a buffer,
 * with lines of any length and a "path:line:" on every error.
 *
 * Invariants: on success every account names a tier that exists, has
 * exactly one role and a hash, and no two accounts share a name or a hash;
 * on failure f holds nothing the caller may use (it frees it). */
#include <errno.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/acctfile.h"
#include "p2c2r/error.h"

/* The built-in tiers, in the spirit of AIVillage's Bronze / Silver / Gold /
 * Platinum (5/20/50/500 concurrent jobs, latency SLA 1000/500/200/25 ms,
 * priority weight 0.8/1.0/1.2/2.0): tasks in flight are ten times the
 * concurrent jobs (a p2c2r task is a frame-sized piece of work), the SLA is
 * the shortest deadline a task may ask for, the weight is the share weight;
 * durable jobs waiting for an outcome are ten times the tasks in flight, and
 * every tier pays --credit-price (price 0).
 * "unlimited" is what --tokens accounts get: today's behaviour, bounded by
 * the global options only. */
static const struct tier builtin[] = {
    {"bronze", 4, 50, 100, 200, 1, 0x3, 1000, 600000, 1u << 20, 4u << 20, 16u << 20, 256, 0.8, 500, 0},
    {"silver", 8, 200, 500, 1000, 1, 0x7, 500, 600000, 4u << 20, 16u << 20, 64u << 20, 1024, 1.0, 2000, 0},
    {"gold", 32, 500, 2000, 4000, 0, ACCT_VERIFY_ALL, 200, 3600000, 16u << 20, 64u << 20, 256u << 20, 4096, 1.2, 5000, 0},
    {"platinum", 128, 5000, 20000, 40000, 0, ACCT_VERIFY_ALL, 25, 3600000, 64u << 20, 64u << 20, 512u << 20, 16384, 2.0,
     50000, 0},
    {"unlimited", 0, 0, 0, 0, 0, ACCT_VERIFY_ALL, 0, 0, 0, 0, 0, 0, 1.0, 0, 0},
};

static const char *const verify_names[] = {"none", "adaptive", "quorum2", "quorum3"};
static const char *const prio_names[] = {"realtime", "interactive", "background"};

const char *acct_role_name(int role)
{
    return role == ACCT_RENTER ? "renter" : role == ACCT_PEER ? "peer" : role == ACCT_OPERATOR ? "operator" : "?";
}

const char *acct_prio_name(int prio) { return prio >= 0 && prio < 3 ? prio_names[prio] : "?"; }

void acct_token_hash(const void *token, size_t len, uint8_t out[ACCT_HASH_LEN])
{
    crypto_generichash(out, ACCT_HASH_LEN, token, len, NULL, 0);
}

int acct_file_init(struct acct_file *f)
{
    memset(f, 0, sizeof(*f));
    for (size_t i = 0; i < sizeof(builtin) / sizeof(builtin[0]); i++)
        f->tiers[f->ntiers++] = builtin[i];
    return 0;
}

void acct_file_fini(struct acct_file *f)
{
    free(f->accts);
    f->accts = NULL;
}

int acct_file_tier(const struct acct_file *f, const char *name)
{
    for (uint32_t i = 0; i < f->ntiers; i++)
        if (strcmp(f->tiers[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* ---- the parser's state --------------------------------------------------- */

enum { SEC_NONE, SEC_TIER, SEC_ACCOUNT };

struct pstate {
    struct acct_file *f;
    const char *path;
    char *err;
    size_t errcap;
    uint32_t line;
    int sec;
    uint32_t cur;      /* tier or account index */
    uint32_t seen;     /* keys given in the current section (bit per key) */
    char tier_of[ACCT_NAME_MAX + 1]; /* the current account's tier name */
    char (*acct_tier)[ACCT_NAME_MAX + 1]; /* per account (f->acap of them), resolved at the end */
    uint32_t *tier_line;
};

static int perr(struct pstate *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct pstate *s, const char *fmt, ...)
{
    int n = snprintf(s->err, s->errcap, "%s:%u: ", s->path, s->line);
    if (n < 0 || (size_t)n >= s->errcap)
        return P2C2R_EINVAL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err + n, s->errcap - (size_t)n, fmt, ap);
    va_end(ap);
    return P2C2R_EINVAL;
}

/* Adds an account (zeroed, at line s->line) to the file: its index in *idx.
 * what names the items in the error ("accounts", "tokens"). */
static int acct_add(struct pstate *s, const char *what, uint32_t *idx)
{
    struct acct_file *f = s->f;
    if (f->naccts == ACCT_MAX_ACCOUNTS)
        return perr(s, "more than %d %s", ACCT_MAX_ACCOUNTS, what);
    if (f->naccts == f->acap) {
        uint32_t cap = f->acap ? 2 * f->acap : 16;
        struct acct_def *a = realloc(f->accts, cap * sizeof(*a));
        if (a)
            f->accts = a;
        char(*t)[ACCT_NAME_MAX + 1] = a ? realloc(s->acct_tier, cap * sizeof(*t)) : NULL;
        if (!t) {
            perr(s, "out of memory");
            return P2C2R_ENOMEM;
        }
        s->acct_tier = t;
        f->acap = cap;
    }
    *idx = f->naccts++;
    memset(&f->accts[*idx], 0, sizeof(f->accts[*idx]));
    f->accts[*idx].line = s->line;
    return 0;
}

/* A view of part of the buffer. */
struct sv {
    const char *p;
    size_t n;
};

static struct sv sv_trim(struct sv v)
{
    while (v.n && (*v.p == ' ' || *v.p == '\t'))
        v.p++, v.n--;
    while (v.n && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t' || v.p[v.n - 1] == '\r'))
        v.n--;
    return v;
}

static int sv_is(struct sv v, const char *s) { return strlen(s) == v.n && memcmp(v.p, s, v.n) == 0; }

static int name_ok(struct sv v)
{
    if (v.n == 0 || v.n > ACCT_NAME_MAX)
        return 0;
    for (size_t i = 0; i < v.n; i++) {
        char ch = v.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
              ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

/* A whole number, with an optional k, M or G suffix (powers of 1024) when
 * sized, or "unlimited" (0). */
static int parse_num(struct sv v, int sized, uint64_t max, uint64_t *out)
{
    if (sv_is(v, "unlimited")) {
        *out = 0;
        return 0;
    }
    uint64_t x = 0, mul = 1;
    size_t n = v.n;
    if (sized && n > 1) {
        char u = v.p[n - 1];
        mul = u == 'k' || u == 'K' ? 1ull << 10 : u == 'm' || u == 'M' ? 1ull << 20 : u == 'g' || u == 'G' ? 1ull << 30 : 1;
        if (mul != 1)
            n--;
    }
    if (n == 0 || n > 12)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (v.p[i] < '0' || v.p[i] > '9')
            return -1;
        x = x * 10 + (uint64_t)(v.p[i] - '0');
    }
    if (x > max / mul)
        return -1;
    x *= mul;
    *out = x;
    return 0;
}

/* ---- tiers ------------------------------------------------------------------ */

enum { K_U32, K_U64, K_PRIO, K_VERIFY, K_WEIGHT, K_BASE };

#define T(f) offsetof(struct tier, f)
static const struct tkey {
    const char *key;
    uint8_t kind, sized;
    size_t off;
    uint64_t max;
    const char *want; /* for the error */
} tier_keys[] = {
    {"base", K_BASE, 0, 0, 0, "the name of a tier defined above (or built in), as the first key"},
    {"max_conns", K_U32, 0, T(max_conns), 1000000, "a number of connections (0 or unlimited: none)"},
    {"max_tasks", K_U32, 0, T(max_tasks), 1u << 28, "a number of tasks in flight and queued"},
    {"rate", K_U32, 0, T(rate), 100000000, "submits per second (0 or unlimited: no rate limit)"},
    {"burst", K_U32, 0, T(burst), 100000000, "submits the rate's bucket holds"},
    {"max_priority", K_PRIO, 0, T(max_priority), 0, "realtime, interactive or background"},
    {"min_deadline_ms", K_U32, 0, T(min_deadline_ms), 86400000, "milliseconds, 0..86400000"},
    {"max_deadline_ms", K_U32, 0, T(max_deadline_ms), 86400000, "milliseconds, 0..86400000 (0: no limit)"},
    {"max_input", K_U64, 1, T(max_input), 1ull << 40, "bytes, e.g. 4M"},
    {"max_output", K_U64, 1, T(max_output), 1ull << 40, "bytes, e.g. 16M"},
    {"blob_bytes", K_U64, 1, T(blob_bytes), 1ull << 44, "bytes, e.g. 64M"},
    {"blob_count", K_U32, 0, T(blob_count), 100000000, "a number of blobs"},
    {"weight", K_WEIGHT, 0, T(weight), 0, "a number over 0 and at most 1000, e.g. 1.2"},
    {"verify", K_VERIFY, 0, T(verify), 0, "a comma list of none, adaptive, quorum2, quorum3, or all"},
    {"max_jobs", K_U32, 0, T(max_jobs), 1u << 28, "a number of durable jobs without an outcome (0 or unlimited: none)"},
    {"price", K_U32, 0, T(price), 1000000000, "millicredits per cost unit (0: p2c2rd --credit-price)"},
};
#undef T

static int tier_set(struct pstate *s, struct sv key, struct sv val)
{
    struct tier *t = &s->f->tiers[s->cur];
    size_t i;
    for (i = 0; i < sizeof(tier_keys) / sizeof(tier_keys[0]); i++)
        if (sv_is(key, tier_keys[i].key))
            break;
    if (i == sizeof(tier_keys) / sizeof(tier_keys[0]))
        return perr(s, "unknown tier key '%.*s': expected max_conns, max_tasks, rate, burst, max_priority, "
                       "min_deadline_ms, max_deadline_ms, max_input, max_output, blob_bytes, blob_count, weight, "
                       "verify, max_jobs, price or base", (int)(key.n > 64 ? 64 : key.n), key.p);
    const struct tkey *k = &tier_keys[i];
    if (s->seen & (1u << i))
        return perr(s, "tier key '%s' given twice in [tier %s]", k->key, t->name);
    if (k->kind == K_BASE && s->seen)
        return perr(s, "'base' must be the first key of [tier %s]", t->name);
    s->seen |= 1u << i;
    char *dst = (char *)t + k->off;
    uint64_t x;
    switch (k->kind) {
    case K_BASE: {
        char nm[ACCT_NAME_MAX + 1];
        int bi = -1;
        if (name_ok(val)) {
            memcpy(nm, val.p, val.n);
            nm[val.n] = '\0';
            bi = acct_file_tier(s->f, nm);
        }
        if (bi < 0 || (uint32_t)bi == s->cur)
            return perr(s, "bad base '%.*s' for [tier %s]: expected %s", (int)(val.n > 64 ? 64 : val.n), val.p,
                        t->name, k->want);
        char keep[ACCT_NAME_MAX + 1];
        memcpy(keep, t->name, sizeof(keep));
        *t = s->f->tiers[bi];
        memcpy(t->name, keep, sizeof(keep));
        return 0;
    }
    case K_U32:
    case K_U64:
        if (parse_num(val, k->sized, k->max, &x) != 0)
            break;
        if (k->kind == K_U32) {
            uint32_t v32 = (uint32_t)x;
            memcpy(dst, &v32, sizeof(v32));
        } else {
            memcpy(dst, &x, sizeof(x));
        }
        return 0;
    case K_PRIO:
        for (uint8_t p = 0; p < 3; p++)
            if (sv_is(val, prio_names[p])) {
                t->max_priority = p;
                return 0;
            }
        break;
    case K_VERIFY: {
        uint8_t m = 0;
        struct sv rest = val;
        if (sv_is(val, "all")) {
            t->verify = ACCT_VERIFY_ALL;
            return 0;
        }
        while (rest.n) {
            const char *comma = memchr(rest.p, ',', rest.n);
            struct sv it = {rest.p, comma ? (size_t)(comma - rest.p) : rest.n};
            rest.p += it.n + (comma ? 1 : 0);
            rest.n -= it.n + (comma ? 1 : 0);
            it = sv_trim(it);
            size_t j;
            for (j = 0; j < 4; j++)
                if (sv_is(it, verify_names[j]))
                    break;
            if (j == 4) {
                m = 0;
                break;
            }
            m |= (uint8_t)(1u << j);
        }
        if (!m)
            break;
        t->verify = m;
        return 0;
    }
    case K_WEIGHT: {
        char tmp[32];
        char *end;
        if (val.n == 0 || val.n >= sizeof(tmp))
            break;
        memcpy(tmp, val.p, val.n);
        tmp[val.n] = '\0';
        errno = 0;
        double w = strtod(tmp, &end);
        if (errno || *end || !isfinite(w) || !(w > 0) || w > 1000)
            break;
        t->weight = w;
        return 0;
    }
    }
    return perr(s, "bad value '%.*s' for %s in [tier %s]: expected %s", (int)(val.n > 64 ? 64 : val.n), val.p,
                k->key, t->name, k->want);
}

static int tier_check(struct pstate *s)
{
    const struct tier *t = &s->f->tiers[s->cur];
    if (t->max_deadline_ms && t->min_deadline_ms > t->max_deadline_ms)
        return perr(s, "[tier %s]: min_deadline_ms %u is over max_deadline_ms %u", t->name, t->min_deadline_ms,
                    t->max_deadline_ms);
    if (t->rate && t->burst == 0)
        return perr(s, "[tier %s]: a rate needs a burst of at least 1", t->name);
    return 0;
}

/* ---- accounts --------------------------------------------------------------- */

enum { A_ROLE = 1, A_HASH = 2, A_TIER = 4 };

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static int acct_set(struct pstate *s, struct sv key, struct sv val)
{
    struct acct_def *a = &s->f->accts[s->cur];
    int bit = sv_is(key, "role") ? A_ROLE : sv_is(key, "token_hash") ? A_HASH : sv_is(key, "tier") ? A_TIER : 0;
    if (!bit)
        return perr(s, "unknown account key '%.*s': expected role, token_hash or tier",
                    (int)(key.n > 64 ? 64 : key.n), key.p);
    if (s->seen & (uint32_t)bit)
        return perr(s, "account key '%.*s' given twice in [account %s]", (int)key.n, key.p, a->name);
    s->seen |= (uint32_t)bit;
    if (bit == A_ROLE) {
        a->role = sv_is(val, "renter") ? ACCT_RENTER : sv_is(val, "peer") ? ACCT_PEER
                : sv_is(val, "operator") ? ACCT_OPERATOR : 0;
        if (!a->role)
            return perr(s, "bad role '%.*s' for [account %s]: expected renter, peer or operator (exactly one)",
                        (int)(val.n > 64 ? 64 : val.n), val.p, a->name);
    } else if (bit == A_HASH) {
        size_t pl = strlen(ACCT_HASH_PREFIX);
        int ok = val.n == pl + 2 * ACCT_HASH_LEN && memcmp(val.p, ACCT_HASH_PREFIX, pl) == 0;
        for (size_t i = 0; ok && i < ACCT_HASH_LEN; i++) {
            int hi = hexval(val.p[pl + 2 * i]), lo = hexval(val.p[pl + 2 * i + 1]);
            if (hi < 0 || lo < 0)
                ok = 0;
            else
                a->hash[i] = (uint8_t)(hi << 4 | lo);
        }
        if (!ok)
            return perr(s, "bad token_hash for [account %s]: expected %s and 64 hex digits, as printed by "
                           "'p2c2rd --hash-token' (never the token itself)", a->name, ACCT_HASH_PREFIX);
    } else {
        if (!name_ok(val))
            return perr(s, "bad tier name '%.*s' for [account %s]: expected 1..64 of A-Z a-z 0-9 . _ -",
                        (int)(val.n > 64 ? 64 : val.n), val.p, a->name);
        memcpy(s->acct_tier[s->cur], val.p, val.n);
        s->acct_tier[s->cur][val.n] = '\0';
    }
    return 0;
}

static int acct_check(struct pstate *s)
{
    const struct acct_def *a = &s->f->accts[s->cur];
    if (!(s->seen & A_ROLE))
        return perr(s, "[account %s] has no role: add 'role = renter', 'peer' or 'operator'", a->name);
    if (!(s->seen & A_HASH))
        return perr(s, "[account %s] has no token_hash: add 'token_hash = %s...' from 'p2c2rd --hash-token'",
                    a->name, ACCT_HASH_PREFIX);
    return 0;
}

/* Ends the current section (at a new header, or at the end of the file). */
static int section_end(struct pstate *s)
{
    if (s->sec == SEC_TIER)
        return tier_check(s);
    if (s->sec == SEC_ACCOUNT)
        return acct_check(s);
    return 0;
}

static int section_begin(struct pstate *s, struct sv v)
{
    int rc = section_end(s);
    if (rc)
        return rc;
    /* v is what lies between the brackets: "tier NAME" or "account NAME". */
    v = sv_trim(v);
    const char *sp = memchr(v.p, ' ', v.n);
    const char *tab = memchr(v.p, '\t', v.n);
    if (!sp || (tab && tab < sp))
        sp = tab;
    struct sv kind = {v.p, sp ? (size_t)(sp - v.p) : v.n};
    struct sv name = sp ? sv_trim((struct sv){sp + 1, v.n - kind.n - 1}) : (struct sv){"", 0};
    int is_tier = sv_is(kind, "tier"), is_acct = sv_is(kind, "account");
    if ((!is_tier && !is_acct) || !name_ok(name))
        return perr(s, "bad section header: expected [tier NAME] or [account NAME], NAME 1..64 of A-Z a-z 0-9 . _ -");
    char nm[ACCT_NAME_MAX + 1];
    memcpy(nm, name.p, name.n);
    nm[name.n] = '\0';
    s->seen = 0;
    if (is_tier) {
        int ti = acct_file_tier(s->f, nm);
        if (ti >= 0 && s->tier_line[ti])
            return perr(s, "[tier %s] defined twice (first at line %u)", nm, s->tier_line[ti]);
        if (ti < 0) {
            if (s->f->ntiers == ACCT_MAX_TIERS)
                return perr(s, "more than %d tiers", ACCT_MAX_TIERS);
            ti = (int)s->f->ntiers++;
            /* A new tier starts from bronze, the most restrictive built-in
             * one, unless its first key is 'base'. */
            s->f->tiers[ti] = builtin[0];
            memcpy(s->f->tiers[ti].name, nm, name.n + 1);
        }
        s->tier_line[ti] = s->line;
        s->sec = SEC_TIER;
        s->cur = (uint32_t)ti;
        return 0;
    }
    for (uint32_t i = 0; i < s->f->naccts; i++)
        if (strcmp(s->f->accts[i].name, nm) == 0)
            return perr(s, "[account %s] defined twice (first at line %u)", nm, s->f->accts[i].line);
    if ((rc = acct_add(s, "accounts", &s->cur)) != 0)
        return rc;
    struct acct_def *a = &s->f->accts[s->cur];
    memcpy(a->name, nm, name.n + 1);
    memcpy(s->acct_tier[s->cur], "bronze", 7);
    s->sec = SEC_ACCOUNT;
    return 0;
}

static int parse_line(struct pstate *s, struct sv v)
{
    v = sv_trim(v);
    if (v.n == 0 || v.p[0] == '#' || v.p[0] == ';')
        return 0;
    if (memchr(v.p, '\0', v.n))
        return perr(s, "line holds a NUL byte: the file must be text");
    if (v.p[0] == '[') {
        if (v.p[v.n - 1] != ']')
            return perr(s, "section header without its closing ']'");
        return section_begin(s, (struct sv){v.p + 1, v.n - 2});
    }
    const char *eq = memchr(v.p, '=', v.n);
    if (!eq)
        return perr(s, "expected KEY = VALUE, a [section] or a # comment");
    struct sv key = sv_trim((struct sv){v.p, (size_t)(eq - v.p)});
    struct sv val = sv_trim((struct sv){eq + 1, v.n - (size_t)(eq - v.p) - 1});
    if (s->sec == SEC_NONE)
        return perr(s, "KEY = VALUE before any [tier NAME] or [account NAME] section");
    return s->sec == SEC_TIER ? tier_set(s, key, val) : acct_set(s, key, val);
}

/* Calls fn on each line of text[0..len), numbering them from 1. */
static int each_line(struct pstate *s, const char *text, size_t len, int (*fn)(struct pstate *, struct sv))
{
    size_t at = 0;
    s->line = 0;
    while (at < len) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (text + at)) : len - at;
        s->line++;
        int rc = fn(s, (struct sv){text + at, n});
        if (rc)
            return rc;
        at += n + (nl ? 1 : 0);
    }
    return 0;
}

static int hashes_unique(struct pstate *s)
{
    struct acct_file *f = s->f;
    for (uint32_t i = 0; i < f->naccts; i++)
        for (uint32_t j = 0; j < i; j++)
            if (memcmp(f->accts[i].hash, f->accts[j].hash, ACCT_HASH_LEN) == 0) {
                s->line = f->accts[i].line;
                return perr(s, "[account %s] has the same token as [account %s] (line %u): a token names "
                               "exactly one account", f->accts[i].name, f->accts[j].name, f->accts[j].line);
            }
    return 0;
}

int acct_file_parse(struct acct_file *f, const char *text, size_t len, const char *path, char *err, size_t errcap)
{
    struct pstate s = {f, path, err, errcap, 0, SEC_NONE, 0, 0, {0}, NULL, NULL};
    s.tier_line = calloc(ACCT_MAX_TIERS, sizeof(*s.tier_line));
    int rc = P2C2R_ENOMEM;
    if (!s.tier_line) {
        snprintf(err, errcap, "%s: out of memory", path);
        goto out;
    }
    if ((rc = each_line(&s, text, len, parse_line)) != 0 || (rc = section_end(&s)) != 0)
        goto out;
    for (uint32_t i = 0; i < f->naccts; i++) {
        int ti = acct_file_tier(f, s.acct_tier[i]);
        if (ti < 0) {
            s.line = f->accts[i].line;
            rc = perr(&s, "[account %s] names tier '%s', which is neither built in (bronze, silver, gold, "
                          "platinum, unlimited) nor defined in the file", f->accts[i].name, s.acct_tier[i]);
            goto out;
        }
        f->accts[i].tier = (uint16_t)ti;
    }
    if (f->naccts == 0) {
        snprintf(err, errcap, "%s: no [account NAME] section: the file must define at least one account", path);
        rc = P2C2R_EINVAL;
        goto out;
    }
    rc = hashes_unique(&s);
out:
    free(s.acct_tier);
    free(s.tier_line);
    return rc;
}

/* ---- the older tokens format ------------------------------------------------ */

static int token_line(struct pstate *s, struct sv v)
{
    v = sv_trim(v);
    if (v.n == 0 || v.p[0] == '#')
        return 0;
    static const struct {
        const char *prefix;
        uint8_t role;
    } pre[] = {{"renter:", ACCT_RENTER}, {"peer:", ACCT_PEER}, {"operator:", ACCT_OPERATOR}};
    size_t i;
    for (i = 0; i < 3; i++)
        if (v.n >= strlen(pre[i].prefix) && memcmp(v.p, pre[i].prefix, strlen(pre[i].prefix)) == 0)
            break;
    if (i == 3)
        return perr(s, "token without a role: write renter:TOKEN, peer:TOKEN or operator:TOKEN (a token has "
                       "exactly one role)");
    struct sv tok = sv_trim((struct sv){v.p + strlen(pre[i].prefix), v.n - strlen(pre[i].prefix)});
    if (tok.n == 0 || tok.n > 256)
        return perr(s, "token empty or longer than 256 bytes");
    uint32_t idx;
    int rc = acct_add(s, "tokens", &idx);
    if (rc)
        return rc;
    struct acct_def *a = &s->f->accts[idx];
    a->role = pre[i].role;
    a->tier = (uint16_t)acct_file_tier(s->f, "unlimited");
    acct_token_hash(tok.p, tok.n, a->hash);
    char hx[17];
    for (int k = 0; k < 8; k++)
        snprintf(hx + 2 * k, 3, "%02x", a->hash[k]);
    snprintf(a->name, sizeof(a->name), "token-%s", hx);
    return 0;
}

int acct_file_parse_tokens(struct acct_file *f, const char *text, size_t len, const char *path, char *err,
                           size_t errcap)
{
    struct pstate s = {f, path, err, errcap, 0, SEC_NONE, 0, 0, {0}, NULL, NULL};
    int rc = each_line(&s, text, len, token_line);
    if (rc == 0 && f->naccts == 0) {
        snprintf(err, errcap, "tokens file %s holds no token (one per line: renter:TOKEN, peer:TOKEN or "
                              "operator:TOKEN)", path);
        rc = P2C2R_EINVAL;
    }
    if (rc == 0)
        rc = hashes_unique(&s);
    free(s.acct_tier);
    return rc;
}

int acct_file_load(struct acct_file *f, const char *path, int tokens, char *err, size_t errcap)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errcap, "cannot open %s file %s: %s", tokens ? "tokens" : "accounts", path, strerror(errno));
        return P2C2R_ENOTFOUND; /* the file, not its content: a runtime error */
    }
    char *text = malloc(ACCT_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, ACCT_FILE_MAX + 1, fp) : 0;
    int bad = !text || ferror(fp);
    fclose(fp);
    int rc;
    if (bad) {
        snprintf(err, errcap, "cannot read %s", path);
        rc = P2C2R_ENOTFOUND;
    } else if (n > ACCT_FILE_MAX) {
        snprintf(err, errcap, "%s is larger than %u bytes", path, ACCT_FILE_MAX);
        rc = P2C2R_EINVAL;
    } else {
        rc = tokens ? acct_file_parse_tokens(f, text, n, path, err, errcap)
                    : acct_file_parse(f, text, n, path, err, errcap);
    }
    free(text);
    return rc;
}
