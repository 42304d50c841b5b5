/* cmd_peers.c - `p2c2r peers --state DIR`: the peer keys a coordinator knows
 * (the records p2c2rd --state DIR keeps, keyed by each peer's public key),
 * and the operator's edits of them: ban, unban, pin, unpin, group.
 *
 * It works on the state database itself, not over the wire: the records are
 * the coordinator's, and no renter API should carry operator edits.  That
 * makes this the one command that reaches past the public headers, into the
 * coordinator's store module (src/coord/store.h) and the key helpers
 * (src/common/ident.h).
 *
 * Safety: listing only reads (SQLite's WAL lets it read while p2c2rd runs;
 * what it shows is at most one flush, 200 ms, old).  An edit takes the state
 * directory's lock (store_lock), which a running p2c2rd holds, so an edit is
 * refused while the coordinator runs, instead of being overwritten by the
 * coordinator's next flush of its own copy of the record.  Edits take effect
 * when p2c2rd starts.  Exit status: 0 success, 1 failure (no database, a
 * locked or unusable one), 2 usage error. */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/cliopt.h"
#include "common/ident.h"
#include "coord/store.h"
#include "p2c2r/error.h"

#define PROG "p2c2r peers"

int cmd_peers(int argc, char **argv);

static uint64_t now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

struct listing {
    int json;
    uint64_t now_ms;
    json_t *arr;
    unsigned n;
};

static void state_text(const struct store_peer *p, uint64_t now_ms, char *out, size_t cap)
{
    if (p->banned)
        snprintf(out, cap, "banned");
    else if (p->quarantined_until_ms > now_ms)
        snprintf(out, cap, "quarantined %" PRIu64 "s", (p->quarantined_until_ms - now_ms + 999) / 1000);
    else
        snprintf(out, cap, "ok");
}

static int list_one(void *arg, const struct store_peer *p)
{
    struct listing *l = arg;
    char hex[IDENT_PK_HEX_LEN + 1], st[48];
    ident_pk_hex(p->pk, hex);
    state_text(p, l->now_ms, st, sizeof(st));
    l->n++;
    if (l->json) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
                              "key", hex, "name", p->name, "group", p->group, "state", st,
                              "banned", p->banned, "pinned", p->pinned,
                              "good", (json_int_t)p->good, "verified", (json_int_t)p->verified,
                              "disagreements", (json_int_t)p->disagreements,
                              "strikes", (json_int_t)p->strikes, "lies", (json_int_t)p->lies,
                              "quarantines", (json_int_t)p->quarantines,
                              "quarantined_until_ms", (json_int_t)p->quarantined_until_ms,
                              "first_seen_ms", (json_int_t)p->first_seen_ms,
                              "last_seen_ms", (json_int_t)p->last_seen_ms,
                              "last_seen_ago_s", (json_int_t)(p->last_seen_ms && l->now_ms > p->last_seen_ms
                                                                 ? (l->now_ms - p->last_seen_ms) / 1000 : 0));
        if (o)
            json_array_append_new(l->arr, o);
        return 0;
    }
    printf("%-64s  %-16.16s %-16s %-14s %6s %8" PRIu64 " %8" PRIu64 " %6" PRIu64 " %7" PRIu64 " %4" PRIu64
           " %5" PRIu64 "\n",
           hex, p->name[0] ? p->name : "-", p->group[0] ? p->group : "-", st, p->pinned ? "yes" : "-",
           p->good, p->verified, p->disagreements, p->strikes, p->lies, p->quarantines);
    return 0;
}

/* One edit: op is "ban", "unban", "pin", "unpin" or "group"; arg is KEY, or
 * KEY=NAME for group (NAME empty: no group). */
static int edit_one(struct store *s, const char *op, const char *arg)
{
    const char *eq = strcmp(op, "group") == 0 ? strchr(arg, '=') : NULL;
    size_t kl = eq ? (size_t)(eq - arg) : strlen(arg);
    uint8_t pk[IDENT_PK_LEN];
    if ((strcmp(op, "group") == 0 && !eq) || ident_pk_parse(arg, kl, pk) != 0) {
        fprintf(stderr, PROG ": --%s needs %s, KEY being the peer's public key in 64 hex digits "
                        "(p2c2r-peer logs it at start; 'p2c2r peers' lists them), got '%s'\n",
                op, eq || strcmp(op, "group") == 0 ? "KEY=NAME" : "KEY", arg);
        return 2;
    }
    int rc;
    if (strcmp(op, "ban") == 0 || strcmp(op, "unban") == 0) {
        rc = store_peer_set_banned(s, pk, op[0] == 'b');
    } else if (strcmp(op, "pin") == 0 || strcmp(op, "unpin") == 0) {
        rc = store_peer_set_pinned(s, pk, op[0] == 'p');
    } else {
        if (strlen(eq + 1) > STORE_GROUP_MAX) {
            fprintf(stderr, PROG ": a group name is at most %u bytes, got '%s'\n", STORE_GROUP_MAX, eq + 1);
            return 2;
        }
        rc = store_peer_set_group(s, pk, eq + 1);
    }
    if (rc != 0) {
        fprintf(stderr, PROG ": --%s %s: %s (%s)\n", op, arg, p2c2r_strerror(rc), store_last_error(s));
        return 1;
    }
    static const char *const done[][2] = {{"ban", "banned"}, {"unban", "unbanned"}, {"pin", "pinned"},
                                          {"unpin", "unpinned"}, {"group", "grouped"}};
    const char *what = op;
    for (size_t i = 0; i < sizeof(done) / sizeof(done[0]); i++)
        if (strcmp(op, done[i][0]) == 0)
            what = done[i][1];
    printf("%s %.*s%s%s\n", what, (int)kl, arg, eq ? " as " : "", eq ? (eq[1] ? eq + 1 : "(no group)") : "");
    return 0;
}

int cmd_peers(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    struct cliopt_multi ban = {0}, unban = {0}, pin = {0}, unpin = {0}, group = {0};
    const struct cliopt opts[] = {
        {"state", 's', OPT_STR, "DIR", 0, 0, "the coordinator's state directory (p2c2rd --state DIR); required", &dir},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the records as one JSON array", &json},
        {"ban", 0, OPT_MULTI, "KEY", 0, 0, "refuse this key at registration from the next start of p2c2rd (a key never seen can be banned); repeatable", &ban},
        {"unban", 0, OPT_MULTI, "KEY", 0, 0, "lift a ban; repeatable", &unban},
        {"pin", 0, OPT_MULTI, "KEY", 0, 0, "mark a key as the operator's own: its results count as checked under the adaptive policy; repeatable", &pin},
        {"unpin", 0, OPT_MULTI, "KEY", 0, 0, "unmark it; repeatable", &unpin},
        {"group", 0, OPT_MULTI, "KEY=NAME", 0, 0, "put keys that belong together (one operator) in one group: one peer for quorum purposes; KEY= clears; repeatable", &group},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG, "--state DIR [OPTIONS]",
                          "Lists the peer keys a coordinator keeps records of (reputation, quarantine,\n"
                          "the operator's ban, pin and group), or edits them.  Listing works while p2c2rd\n"
                          "runs; an edit needs it stopped (the state directory is locked while it runs)\n"
                          "and takes effect at its next start.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc) {
        fprintf(stderr, PROG ": unexpected argument '%s'\nTry '" PROG " --help'.\n", argv[pos]);
        return 2;
    }
    if (!dir) {
        fprintf(stderr, PROG ": --state DIR is required: the directory p2c2rd runs with (p2c2rd --state DIR)\n");
        return 2;
    }
    int edits = ban.n + unban.n + pin.n + unpin.n + group.n;
    char err[512] = "", db[4096];
    snprintf(db, sizeof(db), "%s/p2c2r.db", dir);
    struct stat sb;
    if (!edits && stat(db, &sb) != 0) {
        fprintf(stderr, PROG ": no state database at %s: is DIR the one p2c2rd runs with --state?\n", db);
        return 1;
    }
    int lock = -1;
    if (edits && (rc = store_lock(dir, &lock, err, sizeof(err))) != 0) {
        fprintf(stderr, PROG ": %s%s\n", err,
                rc == P2C2R_EAGAIN ? " (edits are refused while p2c2rd runs: its next flush would undo them)" : "");
        return 1;
    }
    struct store *s;
    if ((rc = store_open(dir, &s, err, sizeof(err))) != 0) {
        fprintf(stderr, PROG ": %s\n", err);
        store_unlock(lock);
        return 1;
    }
    int status = 0;
    struct { const char *op; const struct cliopt_multi *m; } const ed[] = {
        {"ban", &ban}, {"unban", &unban}, {"pin", &pin}, {"unpin", &unpin}, {"group", &group},
    };
    for (size_t e = 0; e < sizeof(ed) / sizeof(ed[0]) && status == 0; e++)
        for (int i = 0; i < ed[e].m->n && status == 0; i++)
            status = edit_one(s, ed[e].op, ed[e].m->v[i]);
    if (edits) {
        if (status == 0 && (rc = store_flush(s)) != 0) {
            fprintf(stderr, PROG ": cannot write %s: %s (%s)\n", db, p2c2r_strerror(rc), store_last_error(s));
            status = 1;
        }
        store_close(s);
        store_unlock(lock);
        return status;
    }
    struct listing l = {json, now_wall_ms(), json ? json_array() : NULL, 0};
    if (!json)
        printf("%-64s  %-16s %-16s %-14s %6s %8s %8s %6s %7s %4s %5s\n", "key", "name", "group", "state",
               "pinned", "good", "verified", "disagr", "strikes", "lies", "quar");
    rc = store_peer_each(s, list_one, &l);
    if (rc != 0) {
        fprintf(stderr, PROG ": cannot read %s: %s (%s)\n", db, p2c2r_strerror(rc), store_last_error(s));
        status = 1;
    }
    if (json && status == 0) {
        char *text = json_dumps(l.arr, JSON_INDENT(2));
        if (text)
            printf("%s\n", text);
        free(text);
    } else if (!json && status == 0) {
        printf("%u key%s\n", l.n, l.n == 1 ? "" : "s");
    }
    json_decref(l.arr);
    store_close(s);
    return status;
}
