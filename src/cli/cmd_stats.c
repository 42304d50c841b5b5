/* cmd_stats.c - `p2c2r stats`: the coordinator's STATS document
 * (docs/PROTOCOL.md 5.7) as tables a person can read, or as JSON with
 * --json.  The coordinator lists peers a page at a time (to operator
 * credentials only): this program asks for the pages one after the other
 * (--page-peers each) and shows every peer, the document's peers[]
 * holding them all.
 *
 * The text form names every figure by its JSON key (peers_connected,
 * hedge_wins, fail_rate, ...), so what is read on screen can be found in the
 * JSON, the Prometheus metrics and the docs.  A counter this program does not
 * know (a newer coordinator) is still shown, under "other"; a field that is
 * missing (an older one) reads as 0.  Exit status: 0 success, 1 failure
 * (connection, timeout, a document that is not JSON), 2 usage error. */
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cliopt.h"
#include "p2c2r/client.h"

#define PROG "p2c2r stats"
#include "cli/cli_util.h"

int cmd_stats(int argc, char **argv);

/* ---- a table of text cells, columns sized to their widest cell ------------- */

#define TBL_MAX_COLS 16
#define TBL_CELL 64

struct tbl {
    int ncols;
    size_t nrows, cap;
    char (*cells)[TBL_MAX_COLS][TBL_CELL]; /* row 0 is the header */
    int right[TBL_MAX_COLS];               /* 1 = right-aligned (numbers) */
};

/* Starts a table from its header; a name starting with '>' is a right-aligned
 * column (the '>' is not printed).  Returns 0 or -1 (out of memory). */
static int tbl_init(struct tbl *t, int ncols, const char *const *names)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    t->cap = 16;
    t->cells = calloc(t->cap, sizeof(*t->cells));
    if (!t->cells)
        return -1;
    for (int i = 0; i < ncols; i++) {
        t->right[i] = names[i][0] == '>';
        snprintf(t->cells[0][i], TBL_CELL, "%s", names[i] + t->right[i]);
    }
    t->nrows = 1;
    return 0;
}

/* Adds an empty row and returns it, or NULL when out of memory. */
static char (*tbl_row(struct tbl *t))[TBL_CELL]
{
    if (t->nrows == t->cap) {
        void *n = realloc(t->cells, t->cap * 2 * sizeof(*t->cells));
        if (!n)
            return NULL;
        t->cells = n;
        t->cap *= 2;
    }
    memset(t->cells[t->nrows], 0, sizeof(t->cells[0]));
    return t->cells[t->nrows++];
}

static void cell(char (*row)[TBL_CELL], int col, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void cell(char (*row)[TBL_CELL], int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(row[col], TBL_CELL, fmt, ap);
    va_end(ap);
}

static void tbl_print(const struct tbl *t)
{
    int w[TBL_MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++) {
            int l = (int)strlen(t->cells[r][c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        printf(" ");
        for (int c = 0; c < t->ncols; c++) {
            int last = c == t->ncols - 1;
            if (t->right[c])
                printf(" %*s", w[c], t->cells[r][c]);
            else
                printf(" %-*s", last ? 0 : w[c], t->cells[r][c]);
        }
        printf("\n");
    }
}

static void tbl_fini(struct tbl *t) { free(t->cells); }

/* ---- reading the document --------------------------------------------------- */

static double num(json_t *o, const char *key) { return json_number_value(json_object_get(o, key)); }

static uint64_t u64(json_t *o, const char *key)
{
    double v = num(o, key);
    return v > 0 ? (uint64_t)v : 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* 1536 -> "1.5 KiB"; exact below 1 KiB. */
static const char *human_bytes(uint64_t b, char *out, size_t cap)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(out, cap, "%" PRIu64 " B", b);
    else
        snprintf(out, cap, "%.1f %s", v, unit[u]);
    return out;
}

/* Microseconds as "850 us", "12.3 ms" or "2.50 s"; "-" for 0 (no samples). */
static const char *human_us(double us, char *out, size_t cap)
{
    if (us <= 0)
        snprintf(out, cap, "-");
    else if (us < 1000)
        snprintf(out, cap, "%.0f us", us);
    else if (us < 1e6)
        snprintf(out, cap, "%.1f ms", us / 1000);
    else
        snprintf(out, cap, "%.2f s", us / 1e6);
    return out;
}

/* Counters printed by name below; any other key is shown under "other". */
static const char *const known_counters[] = {
    "submitted", "accepted", "rejected", "rejected_deadline", "rejected_capability", "completed",
    "failed", "timed_out", "cancelled", "lost", "requeued", "retries", "hedges", "hedge_wins",
    "quarantines", "late_results", "duplicate_results", "cache_hits", "cache_misses", "coalesced",
    "pings", "connections_total", "protocol_errors", "auth_failures", "limit_cuts", "bytes_in",
    "bytes_out", "blobs_put", "blobs_sent", "blob_misses"};

static int counter_known(const char *key)
{
    for (size_t i = 0; i < sizeof(known_counters) / sizeof(known_counters[0]); i++)
        if (!strcmp(key, known_counters[i]))
            return 1;
    return 0;
}

/* One line of "key value" pairs for the given counters, under a label. */
static void counter_line(json_t *k, const char *label, const char *const *keys, size_t n)
{
    printf("  %-10s", label);
    for (size_t i = 0; i < n; i++)
        printf("  %s %" PRIu64, keys[i], u64(k, keys[i]));
    printf("\n");
}

#define LINE(k, label, ...)                                                     \
    do {                                                                        \
        static const char *const keys_[] = {__VA_ARGS__};                       \
        counter_line(k, label, keys_, sizeof(keys_) / sizeof(keys_[0]));       \
    } while (0)

static void print_counters(json_t *root)
{
    json_t *k = json_object_get(root, "counters");
    char b1[32], b2[32], b3[32];
    printf("counters\n");
    LINE(k, "tasks", "submitted", "accepted", "completed", "failed", "timed_out", "cancelled", "lost");
    LINE(k, "refused", "rejected", "rejected_deadline", "rejected_capability");
    LINE(k, "scheduler", "retries", "requeued", "hedges", "hedge_wins", "quarantines", "late_results",
         "duplicate_results");
    uint64_t hits = u64(k, "cache_hits"), misses = u64(k, "cache_misses");
    LINE(k, "cache", "cache_hits", "cache_misses", "coalesced");
    if (hits + misses)
        printf("  %-10s  hit rate %.1f%%\n", "", 100.0 * (double)hits / (double)(hits + misses));
    json_t *cache = json_object_get(root, "cache");
    if (cache)
        printf("  %-10s  entries %" PRIu64 ", %s of %s, evictions %" PRIu64 ", expired %" PRIu64 "\n", "",
               u64(cache, "entries"), human_bytes(u64(cache, "bytes"), b1, sizeof(b1)),
               human_bytes(u64(cache, "max_bytes"), b2, sizeof(b2)), u64(cache, "evictions"),
               u64(cache, "expired"));
    LINE(k, "network", "connections_total", "protocol_errors", "auth_failures", "limit_cuts", "pings");
    printf("  %-10s  bytes_in %s  bytes_out %s\n", "", human_bytes(u64(k, "bytes_in"), b1, sizeof(b1)),
           human_bytes(u64(k, "bytes_out"), b2, sizeof(b2)));
    LINE(k, "blobs", "blobs_put", "blobs_sent", "blob_misses");
    json_t *blobs = json_object_get(root, "blobs");
    if (blobs)
        printf("  %-10s  stored %" PRIu64 ", %s of %s\n", "", u64(blobs, "count"),
               human_bytes(u64(blobs, "bytes"), b1, sizeof(b1)),
               human_bytes(u64(blobs, "max_bytes"), b3, sizeof(b3)));
    const char *key;
    json_t *v;
    int other = 0;
    json_object_foreach(k, key, v) {
        if (counter_known(key) || !json_is_number(v))
            continue;
        if (!other++)
            printf("  %-10s", "other");
        printf("  %s %.0f", key, json_number_value(v));
    }
    if (other)
        printf("\n");
}

static int print_types(json_t *root)
{
    json_t *types = json_object_get(root, "types");
    if (!json_array_size(types))
        return 0;
    static const char *const head[] = {"type", ">peers", ">free/slots", ">queued", "rt/int/bg",
                                       ">deadline_ms", ">attempt_p50", ">attempt_p95", ">exec_p95",
                                       ">hedges", ">retries", "cacheable"};
    struct tbl t;
    if (tbl_init(&t, 12, head) != 0)
        return -1;
    size_t i;
    json_t *ty;
    json_array_foreach(types, i, ty) {
        char (*r)[TBL_CELL] = tbl_row(&t);
        if (!r) {
            tbl_fini(&t);
            return -1;
        }
        json_t *byc = json_object_get(ty, "queued_by_class");
        cell(r, 0, "%s", str(ty, "name"));
        cell(r, 1, "%" PRIu64, u64(ty, "peers"));
        cell(r, 2, "%" PRIu64 "/%" PRIu64, u64(ty, "free_slots"), u64(ty, "slots"));
        cell(r, 3, "%" PRIu64, u64(ty, "queued"));
        cell(r, 4, "%.0f/%.0f/%.0f", json_number_value(json_array_get(byc, 0)),
             json_number_value(json_array_get(byc, 1)), json_number_value(json_array_get(byc, 2)));
        cell(r, 5, "%" PRIu64, u64(ty, "deadline_ms"));
        human_us(num(ty, "attempt_p50_us"), r[6], TBL_CELL);
        human_us(num(ty, "attempt_p95_us"), r[7], TBL_CELL);
        human_us(num(ty, "exec_p95_us"), r[8], TBL_CELL);
        cell(r, 9, "%" PRIu64, u64(ty, "hedges"));
        cell(r, 10, "%" PRIu64, u64(ty, "retries"));
        cell(r, 11, "%s", json_is_true(json_object_get(ty, "cacheable")) ? "yes" : "no");
    }
    printf("\ntypes (queued by class: realtime/interactive/background; '-' = too few samples)\n");
    tbl_print(&t);
    tbl_fini(&t);
    return 0;
}

/* A renter's own account (STATS "account", with credentials): its tier,
 * what it uses of the tier's limits and what was refused. */
static void print_account(json_t *a)
{
    if (!a)
        return;
    json_t *lim = json_object_get(a, "limits"), *ref = json_object_get(a, "refused");
    char b[32], q[32];
    printf("account %s (role %s, tier %s, weight %.3g)\n", str(a, "name"), str(a, "role"), str(a, "tier"),
           num(lim, "weight"));
    printf("  conns %" PRIu64 "/%" PRIu64 "  tasks %" PRIu64 "/%" PRIu64 "  blobs %" PRIu64 "/%" PRIu64 " (%s of %s)"
           "  rate %" PRIu64 "/s burst %" PRIu64 "  (0 = no limit)\n",
           u64(a, "conns"), u64(lim, "max_conns"), u64(a, "tasks"), u64(lim, "max_tasks"), u64(a, "blob_count"),
           u64(lim, "blob_count"), human_bytes(u64(a, "blob_bytes"), b, sizeof(b)),
           human_bytes(u64(lim, "blob_bytes"), q, sizeof(q)), u64(lim, "rate"), u64(lim, "burst"));
    printf("  submitted %" PRIu64 "  accepted %" PRIu64 "  refused:", u64(a, "submitted"), u64(a, "accepted"));
    const char *k;
    json_t *v;
    json_object_foreach(ref, k, v) printf(" %s %" PRIu64, k, (uint64_t)json_integer_value(v));
    printf("\n\n");
}

static int print_peers(json_t *root)
{
    json_t *peers = json_object_get(root, "peers");
    if (!peers) {
        /* The coordinator lists peers to operator credentials only. */
        printf("\npeers: %" PRIu64 " connected; names and addresses are shown to operator accounts only\n",
               u64(root, "peers_connected"));
        return 0;
    }
    if (!json_array_size(peers)) {
        printf("\npeers: none connected (start one with 'p2c2r-peer --coordinator HOST:PORT')\n");
        return 0;
    }
    static const char *const head[] = {">id", "name", "addr", "state", ">cores", ">inflight/slots",
                                       ">mem", "gpu", ">done", ">failed", ">fail_rate", ">strikes",
                                       ">trust", ">rtt", "types"};
    struct tbl t;
    if (tbl_init(&t, 15, head) != 0)
        return -1;
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p) {
        char (*r)[TBL_CELL] = tbl_row(&t);
        if (!r) {
            tbl_fini(&t);
            return -1;
        }
        cell(r, 0, "%" PRIu64, u64(p, "id"));
        cell(r, 1, "%s", *str(p, "name") ? str(p, "name") : "-");
        cell(r, 2, "%s", str(p, "addr"));
        cell(r, 3, "%s", str(p, "state"));
        cell(r, 4, "%" PRIu64, u64(p, "cores"));
        cell(r, 5, "%" PRIu64 "/%" PRIu64, u64(p, "inflight"), u64(p, "slots"));
        human_bytes(u64(p, "mem_bytes"), r[6], TBL_CELL);
        if (json_is_true(json_object_get(p, "gpu")))
            cell(r, 7, "%s", *str(p, "gpu_model") ? str(p, "gpu_model") : "yes");
        else
            cell(r, 7, "no");
        cell(r, 8, "%" PRIu64, u64(p, "done"));
        cell(r, 9, "%" PRIu64, u64(p, "failed"));
        cell(r, 10, "%.1f%%", 100 * num(p, "fail_rate"));
        cell(r, 11, "%" PRIu64, u64(p, "strikes"));
        cell(r, 12, "%.3f", num(p, "trust"));
        human_us(num(p, "rtt_us"), r[13], TBL_CELL);
        size_t j, o = 0;
        json_t *ty;
        json_array_foreach(json_object_get(p, "types"), j, ty) {
            int n = snprintf(r[14] + o, TBL_CELL - o, "%s%s", j ? "," : "", str(ty, "name"));
            if (n < 0 || (size_t)n >= TBL_CELL - o) {
                /* Too many to list: end with an ellipsis. */
                memcpy(r[14] + TBL_CELL - 4, "...", 4);
                break;
            }
            o += (size_t)n;
        }
    }
    printf("\npeers (state: ok, probing or quarantined; trust = confirmed results, 0..1)\n");
    tbl_print(&t);
    tbl_fini(&t);
    return 0;
}

/* Prints the whole document as text.  Returns 0, or -1 when it is not a
 * STATS document (the reason on stderr). */
static int print_human(const char *js)
{
    json_error_t je;
    json_t *root = json_loads(js, 0, &je);
    if (!json_is_object(root)) {
        fprintf(stderr, "%s: the coordinator's statistics are not a JSON object (%s, line %d); "
                        "'p2c2r stats --json' shows them as sent\n",
                PROG, root ? "wrong type" : je.text, je.line);
        json_decref(root);
        return -1;
    }
    char b[32];
    printf("coordinator %s (p2c2rd %s)\n", str(root, "address"), str(root, "version"));
    printf("  connections %" PRIu64 "  renters %" PRIu64 "  peers_connected %" PRIu64
           "  tasks_live %" PRIu64 "  queued %" PRIu64 " (%s)\n\n",
           u64(root, "connections"), u64(root, "renters"), u64(root, "peers_connected"),
           u64(root, "tasks_live"), u64(root, "queued"), human_bytes(u64(root, "queued_bytes"), b, sizeof(b)));
    print_counters(root);
    print_account(json_object_get(root, "account"));
    int rc = print_types(root) || print_peers(root) ? -1 : 0;
    if (rc)
        fprintf(stderr, "%s: out of memory while formatting the tables\n", PROG);
    json_decref(root);
    return rc;
}

/* Fetches the STATS document with every peer: its first page, then the
 * next ones (each a full answer, paced by the coordinator's
 * --stats-interval) appended to its peers[], until peers_total are listed
 * or a page comes back empty (peers left meanwhile).  Peers that register
 * or leave while the pages are read may be missed or listed twice.
 * Returns 0 with *out a new JSON text (free it), or the error's code. */
static int fetch_all(p2c2r_client *c, uint32_t page, int timeout_ms, char **out)
{
    char *js = NULL;
    int rc = p2c2r_client_stats_page(c, 0, page, timeout_ms, &js);
    if (rc)
        return rc;
    json_t *root = json_loads(js, 0, NULL);
    json_t *peers = json_object_get(root, "peers");
    uint64_t total = u64(root, "peers_total");
    if (!json_is_array(peers) || json_array_size(peers) >= total) {
        /* One page holds it all (or a renter's document: no peers). */
        json_decref(root);
        *out = strdup(js);
        p2c2r_stats_free(js);
        return *out ? 0 : P2C2R_ENOMEM;
    }
    p2c2r_stats_free(js);
    while (json_array_size(peers) < total) {
        rc = p2c2r_client_stats_page(c, (uint32_t)json_array_size(peers), page, timeout_ms, &js);
        if (rc) {
            json_decref(root);
            return rc;
        }
        json_t *pg = json_loads(js, 0, NULL);
        p2c2r_stats_free(js);
        json_t *more = json_object_get(pg, "peers");
        size_t n = json_array_size(more);
        json_array_extend(peers, more);
        json_decref(pg);
        if (n == 0)
            break;
    }
    json_object_set_new(root, "peers_offset", json_integer(0));
    char *txt = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!txt)
        return P2C2R_ENOMEM;
    *out = txt;
    return 0;
}

int cmd_stats(int argc, char **argv)
{
    const char *coord = cli_default_coordinator(), *token = getenv("P2C2R_TOKEN");
    int json = 0;
    int64_t timeout = 5000, page = 1000;
    const struct cliopt opts[] = {
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up waiting for the answer after MS (default 5000)", &timeout},
        {"page-peers", 0, OPT_INT, "N", 1, 1000, "peers asked for per STATS request (default 1000, the coordinator's most)", &page},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the coordinator's JSON document (every page of peers in peers[])", &json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG, "[OPTIONS]",
                          "Shows the coordinator's counters (tasks, refusals, retries, hedges, cache),\n"
                          "its task types (queues by priority class, attempt-time percentiles) and\n"
                          "its peers (state, load, failure rate, trust, round trip).  Field names are\n"
                          "those of the JSON document (docs/PROTOCOL.md, STATS).  With an operator\n"
                          "token (or a coordinator without credentials) every peer is listed: the\n"
                          "coordinator sends a page (--page-peers) per --stats-interval.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", PROG, argv[pos]);
        return 2;
    }
    p2c2r_client *c;
    if (cli_connect(coord, token, &c) != 0)
        return 1;
    char *js = NULL;
    rc = fetch_all(c, (uint32_t)page, (int)timeout, &js);
    if (rc != 0) {
        fprintf(stderr, "%s: no statistics from %s: %s%s%s\n", PROG, coord, p2c2r_strerror(rc),
                *p2c2r_client_last_error(c) ? ": " : "", p2c2r_client_last_error(c));
        p2c2r_client_close(c);
        return 1;
    }
    p2c2r_client_close(c);
    if (json)
        rc = printf("%s\n", js) < 0 ? -1 : 0;
    else
        rc = print_human(js);
    free(js);
    return rc ? 1 : 0;
}
