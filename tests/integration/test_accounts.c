/* test_accounts.c - accounts and tiers (issue 12, item 2), as an attacker and
 * as an operator would try them:
 *
 * - a tokens-file token without a role prefix worked for both roles: now
 *   p2c2rd refuses the file, naming its line;
 * - a comment line over 1,023 bytes had its tail read as a token: lines of
 *   any length are read whole;
 * - token guesses from one address had no backoff: after --login-failures
 *   failures the address is refused unchecked (EAGAIN, "retry in N ms");
 * - any renter's STATS listed every peer's name and address: a renter sees
 *   its own account and the fabric's aggregate, an operator everything;
 * - each tier limit is refused with a reason naming it, and counted per
 *   account and tier;
 * - SIGHUP reloads the accounts file during traffic: nobody's work is lost,
 *   a removed account is cut, a new one can log in, a changed tier applies,
 *   and a bad file changes nothing;
 * - /metrics answered anybody with credentials configured: now only an
 *   operator's bearer token (or --metrics-token);
 * - four connections of one account held four memory shares of blobs: now
 *   one, and another account is still served;
 * - JOB_SUBMIT skipped every tier limit: now priority, deadline, input,
 *   verify, max_jobs and rate refuse the batch whole with SUBMIT's texts;
 * - every tier paid --credit-price: two tiers priced 1000 and 5000 pay 1:5
 *   for the same work and the ledger balances. */
#include <signal.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define PEER_NAME "secret-volunteer-name"
#define TOK_PEER "peer-token-5b1e0c7e9f0a4d2a8c3b6e1f7d9a2c4e"
#define TOK_OPS "operator-token-0d4f8a2c6e1b3d5f7a9c0e2b4d6f8a1c"
#define TOK_OTHER "other-renter-token-8e2a4c6b0d1f3e5a7c9b2d4f6a8c0e1b"
#define TOK_TIGHT "tight-renter-token-3c5e7a9b1d0f2e4a6c8b0d2f4a6c8e0b"
#define TOK_SLOW "slow-renter-token-7a9c1e3b5d0f2a4c6e8b1d3f5a7c9e0b"
#define TOK_STEADY "steady-renter-token-1f3a5c7e9b0d2f4a6c8e0b1d3f5a7c9e"
#define TOK_NEWBIE "newbie-renter-token-9e7c5a3f1d0b2e4c6a8f0d1b3e5c7a9f"

/* The token_hash line p2c2rd --hash-token prints for token. */
static void hash_line(const char *token, char *out, size_t cap)
{
    char in[320];
    h_path(in, sizeof(in), "token-in");
    H_REQUIRE(h_write_file(in, token, strlen(token)) == 0, "cannot write %s", in);
    struct h_cmd r = h_run_cmd(in, (const char *[]){h_coord_bin(), "--hash-token", NULL});
    H_REQUIRE(r.code == 0 && strncmp(r.out, "token_hash = blake2b:", 21) == 0, "p2c2rd --hash-token: %s %s", r.out,
              r.err);
    snprintf(out, cap, "%.*s", (int)strcspn(r.out, "\n"), r.out);
    h_cmd_free(&r);
}

/* HELLO with role and token: 0 on HELLO_OK, else the ERROR's code with its
 * text in text. */
static int hello(struct h_raw *r, uint8_t role, const char *token, char *text, size_t cap)
{
    text[0] = '\0';
    if (h_raw_connect(r, h_addr()) != 0)
        return H_RAW_RESET;
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, role, {(const uint8_t *)token, token ? strlen(token) : 0},
                          {(const uint8_t *)"it-acct", 7}};
    uint8_t body[400];
    size_t n = proto_put_hello(body, &m);
    if (h_raw_send_frame(r, MSG_HELLO, 0, 1, body, n, h_bound_ms(5000)) != 0)
        return H_RAW_RESET;
    struct h_frame f;
    int rc = h_raw_read(r, &f, h_bound_ms(5000));
    if (rc != H_RAW_FRAME)
        return rc;
    if (f.hdr.type == MSG_HELLO_OK)
        return 0;
    struct msg_error e;
    if (f.hdr.type != MSG_ERROR || proto_parse_error(f.body, f.hdr.body_len, &e) != 0)
        return H_RAW_MALFORMED;
    snprintf(text, cap, "%.*s", (int)e.text.len, (const char *)e.text.p);
    return -(int)e.code;
}

static int hello_once(uint8_t role, const char *token, char *text, size_t cap)
{
    struct h_raw r;
    int rc = hello(&r, role, token, text, cap);
    h_raw_close(&r);
    return rc;
}

/* ---- the tokens file -------------------------------------------------------- */

static void tokens_file_attacks(void)
{
    h_phase("a tokens-file token without a role is refused, naming its line");
    char path[320];
    h_path(path, sizeof(path), "tokens-unprefixed");
    const char *unpref = "# shared\nshared-token-for-both-roles\n";
    H_REQUIRE(h_write_file(path, unpref, strlen(unpref)) == 0, "cannot write %s", path);
    struct h_proc *p = h_spawn("coord-unprefixed", (const char *[]){h_coord_bin(), "--listen", "127.0.0.1:0", "--tokens",
                                                                    path, NULL});
    if (H_CHECK(h_wait_exit(p, h_bound_ms(5000)), "p2c2rd accepted a token without a role (it works for both roles)")) {
        p->checked = 1; /* exit 2 is what this phase wants */
        H_CHECK(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 2, "p2c2rd ended with %s, expected exit 2",
                h_status_str(p->status));
        char log[320];
        snprintf(log, sizeof(log), "%s/coord-unprefixed.log", h_dir());
        char *text = h_read_file(log, NULL);
        H_CHECK(text && strstr(text, ":2: token without a role"), "stderr should name line 2: %s", text ? text : "");
        free(text);
    } else {
        h_stop(p);
    }
    h_release(p);

    h_path(path, sizeof(path), "tokens-long-comment");
    size_t cap = 4096, n = 0;
    char *file = malloc(cap);
    n += (size_t)snprintf(file + n, cap - n, "renter:%s\npeer:%s\noperator:%s\n# ", TOK_OTHER, TOK_PEER, TOK_OPS);
    memset(file + n, 'x', 1021);
    n += 1021;
    n += (size_t)snprintf(file + n, cap - n, "renter:tail-token\n");
    H_REQUIRE(h_write_file(path, file, n) == 0, "cannot write %s", path);
    free(file);
}

/* Starts the coordinator of the tokens file tokens_file_attacks wrote. */
static struct h_proc *tokens_coord(void)
{
    h_phase("a comment line over 1,023 bytes does not turn its tail into a token");
    char path[320];
    h_path(path, sizeof(path), "tokens-long-comment");
    struct h_proc *co = h_coord_start(NULL, (const char *[]){"--tokens", path, NULL});
    char text[300];
    int rc = hello_once(ROLE_RENTER, "tail-token", text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH, "the tail of a long comment logged in: %s %s", h_err(rc), text);
    rc = hello_once(ROLE_RENTER, TOK_OTHER, text, sizeof(text));
    H_CHECK(rc == 0, "the renter token was refused: %s %s", h_err(rc), text);
    return co;
}

/* ---- the accounts file ------------------------------------------------------- */

static const char TIERS[] =
    "# tiers for the test\n"
    "[tier tight]\n"
    "base = unlimited\n"
    "max_conns = 3\n"
    "max_tasks = 3\n"
    "max_priority = interactive\n"
    "min_deadline_ms = 100\n"
    "max_deadline_ms = 60000\n"
    "max_input = 4k\n"
    "max_output = 1k\n"
    "blob_bytes = 16k\n"
    "blob_count = 2\n"
    "verify = none, adaptive\n"
    "weight = 0.5\n"
    "\n"
    "[tier slow]\n"
    "base = unlimited\n"
    "rate = 5\n"
    "burst = 5\n";

/* Writes the accounts file: the tiers, then the accounts of names[] with
 * their roles, tokens and tiers. */
static void write_accounts(const char *path, const char *const (*accts)[4], int n, const char *extra)
{
    size_t cap = 16384, len = 0;
    char *s = malloc(cap);
    len += (size_t)snprintf(s + len, cap - len, "%s", TIERS);
    for (int i = 0; i < n; i++) {
        char hl[200];
        hash_line(accts[i][2], hl, sizeof(hl));
        len += (size_t)snprintf(s + len, cap - len, "\n[account %s]\nrole = %s\n%s\ntier = %s\n", accts[i][0],
                                accts[i][1], hl, accts[i][3]);
    }
    if (extra)
        len += (size_t)snprintf(s + len, cap - len, "%s", extra);
    H_REQUIRE(h_write_file(path, s, len) == 0, "cannot write %s", path);
    free(s);
}

static const char *const ACCTS[][4] = {
    {"volunteers", "peer", TOK_PEER, "unlimited"},  {"ops", "operator", TOK_OPS, "unlimited"},
    {"other", "renter", TOK_OTHER, "silver"},       {"tight", "renter", TOK_TIGHT, "tight"},
    {"slowpoke", "renter", TOK_SLOW, "slow"},       {"steady", "renter", TOK_STEADY, "unlimited"},
};

static void roles_and_backoff(void)
{
    char text[300];
    h_phase("a credential has exactly one role");
    int rc = hello_once(ROLE_RENTER, TOK_PEER, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH, "peer token as renter: %s", h_err(rc));
    rc = hello_once(ROLE_PEER, TOK_OTHER, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH, "renter token as peer: %s", h_err(rc));
    rc = hello_once(ROLE_PEER, TOK_OPS, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH, "operator token as peer: %s", h_err(rc));

    h_phase("token guesses from one address back off");
    int eauth = 0, eagain = 0, other = 0;
    char last[300] = "";
    for (int i = 0; i < 40; i++) {
        char guess[64];
        snprintf(guess, sizeof(guess), "guess-%d", i);
        rc = hello_once(ROLE_RENTER, guess, text, sizeof(text));
        if (rc == P2C2R_EAUTH)
            eauth++;
        else if (rc == P2C2R_EAGAIN) {
            eagain++;
            snprintf(last, sizeof(last), "%s", text);
        } else
            other++;
    }
    h_log("40 guesses: %d checked (EAUTH), %d refused unchecked (EAGAIN), %d other", eauth, eagain, other);
    /* 4 failures above, --login-failures 10 (the default): six more are
     * checked before the first wait (1 s, the default --login-backoff). */
    H_CHECK(eauth <= 7, "%d of 40 guesses were checked: no backoff", eauth);
    H_CHECK(eagain >= 30 && other == 0, "%d guesses refused unchecked, %d other outcomes", eagain, other);
    H_CHECK(strstr(last, "failed logins from 127.0.0.1: retry in ") != NULL, "backoff text: '%s'", last);
    /* Even a good token waits: the address is refused unchecked. */
    rc = hello_once(ROLE_RENTER, TOK_OTHER, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAGAIN, "a good token during the backoff: %s", h_err(rc));
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    while ((rc = hello_once(ROLE_RENTER, TOK_OTHER, text, sizeof(text))) == P2C2R_EAGAIN && h_now_ms() < end)
        h_sleep_ms(100);
    H_CHECK(rc == 0, "the good token after the backoff: %s %s", h_err(rc), text);
}

static void stats_visibility(void)
{
    h_phase("a renter's STATS: its own account and the aggregate, no peer");
    json_t *js = h_stats(TOK_OTHER);
    H_REQUIRE(js, "STATS for the renter failed");
    const char *txt = h_json_text(js);
    H_CHECK(h_json_at(js, "peers") == NULL, "a renter sees peers: %s", h_json_text(h_json_at(js, "peers")));
    H_CHECK(h_json_at(js, "accounts") == NULL, "a renter sees every account");
    H_CHECK(strstr(txt, PEER_NAME) == NULL, "a renter sees the peer's name: %s", txt);
    H_CHECK(h_json_int(js, "peers_connected") == 1, "the aggregate: peers_connected %lld",
            h_json_int(js, "peers_connected"));
    H_CHECK(h_json_str_is(js, "account.role", "renter") && h_json_str_is(js, "account.tier", "unlimited"),
            "its account: %s", h_json_text(h_json_at(js, "account")));
    H_CHECK(h_json_real(js, "account.limits.weight") == 1.0, "its weight: %s",
            h_json_text(h_json_at(js, "account.limits")));
    json_decref(js);

    h_phase("an operator's STATS: every peer and account");
    js = h_stats(TOK_OPS);
    H_REQUIRE(js, "STATS for the operator failed");
    H_CHECK(h_json_str_is(js, "peers[0].name", PEER_NAME), "operator: peers %s", h_json_text(h_json_at(js, "peers")));
    H_CHECK(json_array_size(h_json_at(js, "accounts")) == 3, "operator: accounts %s",
            h_json_text(h_json_at(js, "accounts")));
    json_decref(js);

    h_phase("p2c2r stats with a renter token");
    int code = h_cli("stats", "--coordinator", h_addr(), "--token", TOK_OTHER, NULL);
    H_EXPECT_EXIT(code, 0, "p2c2r stats as a renter");
    H_CHECK_OUT("operator");
    H_CHECK(!h_out_has(PEER_NAME), "p2c2r stats shows the peer to a renter");
    code = h_cli("stats", "--coordinator", h_addr(), "--token", TOK_OPS, NULL);
    H_EXPECT_EXIT(code, 0, "p2c2r stats as the operator");
    H_CHECK_OUT(PEER_NAME);
}

/* Submits one task on a raw renter and returns its outcome's status (the
 * reason in text). */
static int submit_raw(struct h_raw *r, uint64_t ticket, const char *type, uint8_t prio, uint32_t dl_ms, size_t in_len,
                      char *text, size_t cap)
{
    uint8_t *in = calloc(1, in_len ? in_len : 1);
    memset(in, 'a', in_len);
    size_t len;
    uint8_t *body = h_task_body_ext(type, prio, PROTO_TASK_F_NOCACHE, NULL, dl_ms, in, in_len, &len);
    int rc = h_raw_send_frame(r, MSG_SUBMIT, 0, ticket, body, len, h_bound_ms(5000));
    free(body);
    free(in);
    if (rc != 0)
        return H_RAW_RESET;
    struct h_outcome o;
    rc = h_raw_outcome(r, &o, h_bound_ms(10000));
    if (rc != H_RAW_FRAME)
        return rc;
    snprintf(text, cap, "%.*s", (int)(o.status ? o.len : 0), (const char *)o.out);
    return o.status;
}

static int blob_put_raw(struct h_raw *r, uint64_t req, size_t len, uint8_t fill, char *text, size_t cap)
{
    uint8_t *b = malloc(len);
    memset(b, fill, len);
    int rc = h_raw_send_frame(r, MSG_BLOB_PUT, 0, req, b, len, h_bound_ms(5000));
    free(b);
    struct h_frame f;
    if (rc != 0 || (rc = h_raw_read(r, &f, h_bound_ms(5000))) != H_RAW_FRAME)
        return H_RAW_RESET;
    if (f.hdr.type == MSG_BLOB_OK)
        return 0;
    struct msg_error e;
    if (f.hdr.type != MSG_REJECTED || proto_parse_error(f.body, f.hdr.body_len, &e) != 0)
        return H_RAW_MALFORMED;
    snprintf(text, cap, "%.*s", (int)e.text.len, (const char *)e.text.p);
    return -(int)e.code;
}

/* The status code of an HTTP answer ("HTTP/1.x NNN ..."), 0 for none. */
static int http_status(const char *r) { return r && strlen(r) > 12 ? atoi(r + 9) : 0; }

#define EXPECT_REFUSAL(rc, code, what, text)                                                                    \
    H_CHECK((rc) == (code) && strstr((text), (what)) != NULL, "%s: got %s '%s', expected %s naming %s", (what), \
            h_err(rc), (text), h_err(code), (what))

static void tier_limits(struct h_proc *peer)
{
    char text[300];
    struct h_raw r;
    h_phase("every tier limit is refused with its name");
    int rc = hello(&r, ROLE_RENTER, TOK_TIGHT, text, sizeof(text));
    H_REQUIRE(rc == 0, "tight: HELLO %s %s", h_err(rc), text);
    rc = submit_raw(&r, 1, "echo", PRIO_REALTIME, 0, 10, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "max_priority", text);
    rc = submit_raw(&r, 2, "echo", PRIO_INTERACTIVE, 10, 10, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "min_deadline_ms", text);
    rc = submit_raw(&r, 3, "echo", PRIO_INTERACTIVE, 4000000000u, 10, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "max_deadline_ms", text);
    rc = submit_raw(&r, 4, "echo", PRIO_INTERACTIVE, 0, 5000, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ETOOBIG, "max_input", text);
    rc = submit_raw(&r, 5, "echo", PRIO_INTERACTIVE, 0, 2000, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ETOOBIG, "max_output", text);
    rc = submit_raw(&r, 6, "pathfind", PRIO_INTERACTIVE, 0, 10, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "verify", text);
    rc = submit_raw(&r, 7, "echo", PRIO_BACKGROUND, 30000, 100, text, sizeof(text));
    H_CHECK(rc == 0, "a task within every limit: %s %s", h_err(rc), text);

    h_phase("blob quota: bytes refused, count makes room from the account's own blobs");
    rc = blob_put_raw(&r, 20, 20000, 'z', text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "blob_bytes", text);
    for (int i = 0; i < 3; i++) {
        rc = blob_put_raw(&r, 21 + (uint64_t)i, 1000, (uint8_t)('a' + i), text, sizeof(text));
        H_CHECK(rc == 0, "blob %d: %s %s", i, h_err(rc), text);
    }

    h_phase("max_tasks: tasks in flight and queued");
    h_signal(peer, SIGSTOP);
    for (int i = 0; i < 3; i++) {
        size_t len;
        uint8_t *body = h_task_body_ext("echo", PRIO_INTERACTIVE, PROTO_TASK_F_NOCACHE, NULL, 30000, "x", 1, &len);
        H_CHECK(h_raw_send_frame(&r, MSG_SUBMIT, 0, 100 + (uint64_t)i, body, len, h_bound_ms(5000)) == 0, "send");
        free(body);
    }
    rc = submit_raw(&r, 103, "echo", PRIO_INTERACTIVE, 30000, 1, text, sizeof(text));
    EXPECT_REFUSAL(rc, P2C2R_EQUEUEFULL, "max_tasks", text);
    h_signal(peer, SIGCONT);
    for (int i = 0; i < 3; i++) {
        struct h_outcome o;
        rc = h_raw_outcome(&r, &o, h_bound_ms(10000));
        H_CHECK(rc == H_RAW_FRAME && o.type == MSG_DELIVER && o.status == 0, "held task %d: %d %s", i, rc,
                h_err(o.status));
    }

    h_phase("max_conns");
    struct h_raw more[3];
    for (int i = 0; i < 3; i++) {
        rc = hello(&more[i], ROLE_RENTER, TOK_TIGHT, text, sizeof(text));
        if (i < 2)
            H_CHECK(rc == 0, "tight connection %d: %s %s", i + 2, h_err(rc), text);
        else
            EXPECT_REFUSAL(rc, P2C2R_ELIMIT, "max_conns", text);
    }
    for (int i = 0; i < 3; i++)
        h_raw_close(&more[i]);

    h_phase("rate: a token bucket");
    struct h_raw s;
    rc = hello(&s, ROLE_RENTER, TOK_SLOW, text, sizeof(text));
    H_REQUIRE(rc == 0, "slowpoke: HELLO %s", h_err(rc));
    int ok = 0, again = 0;
    char last[300] = "";
    for (int i = 0; i < 20; i++) {
        size_t len;
        uint8_t *body = h_task_body_ext("echo", PRIO_INTERACTIVE, PROTO_TASK_F_NOCACHE, NULL, 0, "x", 1, &len);
        H_CHECK(h_raw_send_frame(&s, MSG_SUBMIT, 0, 200 + (uint64_t)i, body, len, h_bound_ms(5000)) == 0, "send");
        free(body);
    }
    for (int i = 0; i < 20; i++) {
        struct h_outcome o;
        if (h_raw_outcome(&s, &o, h_bound_ms(10000)) != H_RAW_FRAME)
            break;
        if (o.status == 0)
            ok++;
        else if (o.status == P2C2R_EAGAIN) {
            again++;
            snprintf(last, sizeof(last), "%.*s", (int)o.len, (const char *)o.out);
        }
    }
    h_log("20 submits at once, rate 5/s burst 5: %d accepted, %d refused", ok, again);
    H_CHECK(ok >= 5 && ok <= 7 && again == 20 - ok, "rate: %d ok, %d EAGAIN", ok, again);
    H_CHECK(strstr(last, "(rate): retry in ") != NULL, "rate text: '%s'", last);
    h_raw_close(&s);

    h_phase("the refusals are counted per account and per tier");
    json_t *js = h_stats(TOK_OPS);
    H_CHECK(h_json_str_is(js, "accounts[name=tight].tier", "tight"), "operator: accounts %s",
            h_json_text(h_json_at(js, "accounts")));
    H_CHECK(h_json_real(js, "tiers[name=tight].limits.weight") == 0.5, "tight's weight");
    static const char *const lims[] = {"priority", "deadline", "input", "output", "verify", "blob_bytes", "tasks",
                                       "conns"};
    for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
        char path[96];
        snprintf(path, sizeof(path), "accounts[name=tight].refused.%s", lims[i]);
        H_CHECK(h_json_int(js, path) >= 1, "%s = %lld", path, h_json_int(js, path));
        snprintf(path, sizeof(path), "tiers[name=tight].refused.%s", lims[i]);
        H_CHECK(h_json_int(js, path) >= 1, "%s = %lld", path, h_json_int(js, path));
    }
    H_CHECK(h_json_int(js, "accounts[name=tight].refused.deadline") == 2, "deadline refusals");
    H_CHECK(h_json_int(js, "accounts[name=tight].blob_count") == 2, "tight's blobs: %lld (quota 2)",
            h_json_int(js, "accounts[name=tight].blob_count"));
    H_CHECK(h_json_int(js, "accounts[name=slowpoke].refused.rate") == again, "slowpoke's rate refusals");
    json_decref(js);

    h_phase("the same figures in Prometheus");
    char host[64];
    int port = 0;
    H_REQUIRE(h_http_addr(host, sizeof(host), &port), "no metrics address in the coordinator's log");
    /* With credentials and no --metrics-token, /metrics wants an operator's
     * token: anybody else would read every account's figures. */
    static const char *const refused[] = {NULL, "Authorization: Bearer " TOK_OTHER "\r\n",
                                          "Authorization: Bearer " TOK_PEER "\r\n",
                                          "Authorization: Bearer " TOK_OPS "x\r\n"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        char *a = h_http_get(host, port, "/metrics", refused[i]);
        H_CHECK(http_status(a) == 401, "GET /metrics with %s: %.40s", refused[i] ? refused[i] : "no token",
                a ? a : "(failed)");
        free(a);
    }
    char *m = h_http_get(host, port, "/metrics", "Authorization: Bearer " TOK_OPS "\r\n");
    H_REQUIRE(m, "GET /metrics failed");
    H_CHECK(http_status(m) == 200, "GET /metrics with the operator's token: %.40s", m);
    static const char *const series[] = {
        "p2c2r_account_refused_total{account=\"tight\",limit=\"priority\"} 1\n",
        "p2c2r_account_refused_total{account=\"tight\",limit=\"deadline\"} 2\n",
        "p2c2r_tier_refused_total{tier=\"tight\",limit=\"conns\"} 1\n",
        "p2c2r_account_conns{account=\"tight\",tier=\"tight\"} 1\n",
        "p2c2r_account_blob_count{account=\"tight\",tier=\"tight\"} 2\n",
        "p2c2r_tier_accounts{tier=\"tight\"} 1\n",
        "p2c2r_tier_weight{tier=\"tight\"} 0.5\n",
        "# TYPE p2c2r_account_submitted_total counter\n",
        "p2c2r_login_failures_total 0\n",
    };
    for (size_t i = 0; i < sizeof(series) / sizeof(series[0]); i++)
        H_CHECK(strstr(m, series[i]) != NULL, "metrics should hold %s", series[i]);
    free(m);
    h_raw_close(&r);
}

static void reload_during_traffic(const char *path, struct h_proc *co)
{
    h_phase("SIGHUP during traffic");
    struct p2c2r_client_options o = {sizeof o, TOK_STEADY, "steady", h_bound_ms(5000), 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "steady: connect %s", h_err(rc));
    struct h_raw other;
    char text[300];
    rc = hello(&other, ROLE_RENTER, TOK_OTHER, text, sizeof(text));
    H_REQUIRE(rc == 0, "other: HELLO %s", h_err(rc));
    json_t *js = h_stats(TOK_OPS);
    long long peer_id = h_json_int(js, "peers[0].id");
    json_decref(js);

    enum { N = 300 };
    p2c2r_ticket tk[2 * N];
    char in[32];
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, in, 0, NULL, 0, 0, 0, 0, 0, 0};
    for (int i = 0; i < N; i++) {
        t.input_len = (size_t)snprintf(in, sizeof(in), "task %d", i);
        tk[i] = h_submit(c, &t);
    }
    H_CHECK(p2c2r_client_process(c) >= 0, "process");
    /* The new file: "other" is gone, "newbie" is new, "steady" is gold. */
    const char *const next[][4] = {
        {"volunteers", "peer", TOK_PEER, "unlimited"}, {"ops", "operator", TOK_OPS, "unlimited"},
        {"tight", "renter", TOK_TIGHT, "tight"},       {"slowpoke", "renter", TOK_SLOW, "slow"},
        {"steady", "renter", TOK_STEADY, "gold"},      {"newbie", "renter", TOK_NEWBIE, "bronze"},
    };
    write_accounts(path, next, 6, NULL);
    h_signal(co, SIGHUP);
    for (int i = N; i < 2 * N; i++) {
        t.input_len = (size_t)snprintf(in, sizeof(in), "task %d", i);
        tk[i] = h_submit(c, &t);
    }
    int good = 0;
    for (int i = 0; i < 2 * N; i++) {
        struct p2c2r_result res = h_wait(c, tk[i], 20000);
        char want[32];
        int wl = snprintf(want, sizeof(want), "task %d", i);
        if (res.status == 0 && res.output_len == (size_t)wl && memcmp(res.output, want, (size_t)wl) == 0)
            good++;
        p2c2r_result_release(&res);
    }
    H_CHECK(good == 2 * N, "steady: %d of %d tasks came back right across the reload", good, 2 * N);

    int closed = 0;
    rc = h_raw_expect_error(&other, h_bound_ms(5000), &closed, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH && strstr(text, "removed"), "the removed account's connection: %s '%s'", h_err(rc), text);
    h_raw_close(&other);
    rc = hello_once(ROLE_RENTER, TOK_NEWBIE, text, sizeof(text));
    H_CHECK(rc == 0, "the new account: %s %s", h_err(rc), text);
    js = h_stats(TOK_STEADY);
    H_CHECK(h_json_str_is(js, "account.tier", "gold"), "steady's tier after the reload: %s",
            h_json_text(h_json_at(js, "account")));
    json_decref(js);
    js = h_stats(TOK_OPS);
    H_CHECK(h_json_int(js, "peers[0].id") == peer_id && h_json_int(js, "peers_connected") == 1,
            "the peer was reconnected or lost: id %lld -> %lld", peer_id, h_json_int(js, "peers[0].id"));
    H_CHECK(h_json_int(js, "logins.reloads") == 1, "reloads %lld", h_json_int(js, "logins.reloads"));
    json_decref(js);

    h_phase("a bad file on SIGHUP changes nothing");
    write_accounts(path, next, 6, "\n[account broken]\nrole = both\n");
    h_signal(co, SIGHUP);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    long long errs = 0;
    while ((errs = h_json_int(js = h_stats(TOK_OPS), "logins.reload_errors")) < 1 && h_now_ms() < end) {
        json_decref(js);
        h_sleep_ms(50);
    }
    json_decref(js);
    H_CHECK(errs == 1, "reload_errors %lld", errs);
    t.input_len = (size_t)snprintf(in, sizeof(in), "after");
    p2c2r_ticket last = h_submit(c, &t);
    struct p2c2r_result res = h_wait(c, last, 20000);
    H_CHECK(res.status == 0, "steady after the bad reload: %s", h_err(res.status));
    p2c2r_result_release(&res);
    rc = hello_once(ROLE_RENTER, TOK_NEWBIE, text, sizeof(text));
    H_CHECK(rc == 0, "newbie after the bad reload: %s %s", h_err(rc), text);
    /* Last: a refused login counts against the test's address. */
    rc = hello_once(ROLE_RENTER, TOK_OTHER, text, sizeof(text));
    H_CHECK(rc == P2C2R_EAUTH, "the removed account logged in again: %s", h_err(rc));
    p2c2r_client_close(c);
}

/* ---- the seams between accounts and the other limits ------------------------- */

#define TOK_GREEDY "greedy-renter-token-2b4d6f8a0c1e3a5c7e9b1d3f5a7c9e0b"
#define TOK_BYSTANDER "bystander-token-6c8e0a2b4d6f8a1c3e5b7d9f0a2c4e6b"
#define TOK_JOBBER "jobber-renter-token-4e6a8c0b2d4f6a8c1e3b5d7f9a0c2e4d"
#define TOK_CHEAP "cheap-renter-token-8a0c2e4b6d8f0a2c4e6b8d0f1a3c5e7b"
#define TOK_DEAR "dear-renter-token-0c2e4a6b8d0f2a4c6e8b0d1f3a5c7e9b"
#define TOK_JOBRUSH "jobrush-renter-token-5d7f9b1c3e5a7c9e0b2d4f6a8c1e3b5d"

static const char SEAM_TIERS[] =
    "\n[tier jobby]\nbase = unlimited\nmax_priority = interactive\nmax_deadline_ms = 60000\nmax_input = 4k\n"
    "verify = none, adaptive\nmax_jobs = 4\n"
    "\n[tier jobrate]\nbase = unlimited\nrate = 1\nburst = 2\n"
    "\n[tier cheap]\nbase = unlimited\nprice = 1000\n"
    "\n[tier dear]\nbase = unlimited\nprice = 5000\n";

static const char *const SEAM_ACCTS[][4] = {
    {"volunteers", "peer", TOK_PEER, "unlimited"}, {"ops", "operator", TOK_OPS, "unlimited"},
    {"greedy", "renter", TOK_GREEDY, "unlimited"}, {"bystander", "renter", TOK_BYSTANDER, "unlimited"},
    {"jobber", "renter", TOK_JOBBER, "jobby"},     {"cheapo", "renter", TOK_CHEAP, "cheap"},
    {"rich", "renter", TOK_DEAR, "dear"},          {"jobrush", "renter", TOK_JOBRUSH, "jobrate"},
};

/* Memory shares are per account: one account's connections charge one
 * share, so four connections hold no more than one could. */
static void mem_share_per_account(void)
{
    enum { CONNS = 4, BLOBS = 64, LEN = 64 << 10 };
    h_phase("%d connections of one account share one memory share", CONNS);
    struct h_raw r[CONNS];
    char text[300];
    int ok = 0, refused = 0, other = 0;
    for (int i = 0; i < CONNS; i++) {
        int rc = hello(&r[i], ROLE_RENTER, TOK_GREEDY, text, sizeof(text));
        H_REQUIRE(rc == 0, "greedy's connection %d: %s %s", i, h_err(rc), text);
    }
    /* Each connection alone uploads more than the share (distinct
     * blobs: the fill byte and the connection make them so). */
    for (int b = 0; b < BLOBS; b++)
        for (int i = 0; i < CONNS; i++) {
            int rc = blob_put_raw(&r[i], (uint64_t)b + 1, LEN - (size_t)i, (uint8_t)b, text, sizeof(text));
            ok += rc == 0;
            refused += rc == P2C2R_ELIMIT;
            if (rc != 0 && rc != P2C2R_ELIMIT && other++ == 0)
                h_log("blob %d on connection %d: %s %s", b, i, h_err(rc), text);
        }
    h_log("greedy: %d blobs stored, %d refused (ELIMIT), %d other", ok, refused, other);
    json_t *js = h_stats(TOK_OPS);
    H_REQUIRE(js, "STATS for the operator failed");
    long long share = h_json_int(js, "mem.share"), blobs = h_json_int(js, "mem.blobs");
    long long held = h_json_int(js, "accounts[name=greedy].mem_bytes");
    h_log("mem.share %lld, mem.blobs %lld, greedy's mem_bytes %lld", share, blobs, held);
    H_CHECK(share > 0 && (long long)CONNS * BLOBS * LEN > 2 * share, "the uploads (%d bytes) should be over the share",
            CONNS * BLOBS * LEN);
    H_CHECK(blobs <= share, "mem.blobs %lld: one account's %d connections hold more than its share %lld", blobs,
            CONNS, share);
    H_CHECK(held > 0 && held <= share, "greedy's mem_bytes %lld, share %lld", held, share);
    H_CHECK(h_json_int(js, "accounts[name=bystander].mem_bytes") == 0, "the bystander was charged for greedy");
    json_decref(js);
    for (int i = 0; i < CONNS; i++)
        h_raw_close(&r[i]);

    h_phase("another account is still served");
    struct h_raw by;
    int rc = hello(&by, ROLE_RENTER, TOK_BYSTANDER, text, sizeof(text));
    H_REQUIRE(rc == 0, "bystander: HELLO %s %s", h_err(rc), text);
    rc = blob_put_raw(&by, 1, LEN, 0xee, text, sizeof(text));
    H_CHECK(rc == 0, "bystander's blob: %s %s", h_err(rc), text);
    rc = submit_raw(&by, 2, "echo", PRIO_INTERACTIVE, 10000, 100, text, sizeof(text));
    H_CHECK(rc == 0, "bystander's task: %s %s", h_err(rc), text);
    h_raw_close(&by);
}

/* Submits n durable echo jobs of input_len bytes with priority, deadline
 * and type; returns p2c2r_job_submit's code (each job's in codes). */
static int job_submit(p2c2r_client *c, const char *type, uint8_t prio, uint32_t dl_ms, size_t input_len, size_t n,
                      int *codes)
{
    static char in[8192];
    memset(in, 'j', sizeof(in));
    struct p2c2r_task t[8];
    uint64_t ids[8];
    for (size_t i = 0; i < n; i++) {
        struct p2c2r_task x = {sizeof x, type, 0, dl_ms, prio, NULL, 0, in, input_len, NULL, 0, 0, 0, 0, 0, 0};
        t[i] = x;
    }
    return p2c2r_job_submit(c, t, n, NULL, h_bound_ms(5000), ids, codes);
}

/* Durable jobs pass every check of the tenant's tier, with SUBMIT's texts. */
static void jobs_respect_tier(void)
{
    h_phase("JOB_SUBMIT goes through the tier's checks");
    struct p2c2r_client_options o = {sizeof o, TOK_JOBBER, "jobber", h_bound_ms(5000), 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "jobber: connect %s", h_err(rc));
    int codes[8];
    static const struct {
        const char *type;
        uint8_t prio;
        uint32_t dl_ms;
        size_t len, n;
        int code;
        const char *names;
    } cases[] = {
        {"echo", PRIO_REALTIME, 0, 10, 1, P2C2R_ELIMIT, "(max_priority)"},
        {"echo", PRIO_INTERACTIVE, 120000, 10, 1, P2C2R_ELIMIT, "(min_deadline_ms, max_deadline_ms)"},
        {"echo", PRIO_BACKGROUND, 0, 8192, 1, P2C2R_ETOOBIG, "max_input"},
        {"sha256", PRIO_BACKGROUND, 0, 10, 1, P2C2R_ELIMIT, "(verify)"},
        {"echo", PRIO_BACKGROUND, 0, 10, 5, P2C2R_EQUEUEFULL, "(max_jobs)"},
        {"echo", PRIO_BACKGROUND, 0, 10, 3, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = job_submit(c, cases[i].type, cases[i].prio, cases[i].dl_ms, cases[i].len, cases[i].n, codes);
        const char *why = p2c2r_client_last_error(c);
        if (cases[i].names) {
            EXPECT_REFUSAL(rc, cases[i].code, cases[i].names, why);
        } else {
            H_CHECK(rc == 0, "jobs within the tier: %s %s", h_err(rc), why);
            for (size_t k = 0; rc == 0 && k < cases[i].n; k++)
                H_CHECK(codes[k] == 0, "job %zu within the tier: %s", k, h_err(codes[k]));
        }
    }
    json_t *js = h_stats(TOK_OPS);
    static const char *const lims[] = {"priority", "deadline", "input", "verify", "jobs"};
    for (size_t i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
        char path[80];
        snprintf(path, sizeof(path), "accounts[name=jobber].refused.%s", lims[i]);
        H_CHECK(h_json_int(js, path) == 1, "%s = %lld", path, h_json_int(js, path));
    }
    H_CHECK(h_json_int(js, "accounts[name=jobber].accepted") == 3, "jobber accepted %lld",
            h_json_int(js, "accounts[name=jobber].accepted"));
    json_decref(js);
    p2c2r_client_close(c);

    h_phase("JOB_SUBMIT spends the tier's rate: a batch over the burst is refused whole");
    o.token = TOK_JOBRUSH;
    o.name = "jobrush";
    rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "jobrush: connect %s", h_err(rc));
    rc = job_submit(c, "echo", PRIO_BACKGROUND, 0, 10, 3, codes);
    EXPECT_REFUSAL(rc, P2C2R_EAGAIN, "(rate)", p2c2r_client_last_error(c));
    /* Nothing of the refused batch was spent: the burst is still there. */
    rc = job_submit(c, "echo", PRIO_BACKGROUND, 0, 10, 2, codes);
    H_CHECK(rc == 0 && codes[0] == 0 && codes[1] == 0, "a batch within the burst after a refused one: %s %s",
            h_err(rc), p2c2r_client_last_error(c));
    p2c2r_client_close(c);
}

/* Runs n verified echo tasks of one size as token's account. */
static void run_paid(const char *token, const char *name, int n)
{
    struct p2c2r_client_options o = {sizeof o, token, name, h_bound_ms(5000), 0, 0};
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(rc == 0, "%s: connect %s", name, h_err(rc));
    int good = 0;
    for (int i = 0; i < n; i++) {
        char in[64];
        struct p2c2r_task t = {sizeof t, "sha256", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, in, 0, NULL, 0,
                               P2C2R_TASK_NOCACHE, 0, 0, 0, 0};
        t.input_len = (size_t)snprintf(in, sizeof(in), "%c-task-%08d", name[0], i); /* one size: one cost */
        struct p2c2r_result res = h_wait(c, h_submit(c, &t), 20000);
        good += res.status == 0;
        p2c2r_result_release(&res);
    }
    H_CHECK(good == n, "%s: %d of %d tasks done", name, good, n);
    p2c2r_client_close(c);
}

/* The renter:NAME balance and entry count in p2c2r ledger --json. */
static void balance_of(json_t *doc, const char *acct, long long *bal, long long *entries)
{
    *bal = *entries = 0;
    json_t *arr = json_object_get(doc, "balances");
    for (size_t i = 0; i < json_array_size(arr); i++) {
        json_t *e = json_array_get(arr, i);
        const char *a = json_string_value(json_object_get(e, "account"));
        if (a && strcmp(a, acct) == 0) {
            *bal = json_integer_value(json_object_get(e, "millicredits"));
            *entries = json_integer_value(json_object_get(e, "entries"));
        }
    }
}

static void tenant_seams(void)
{
    char path[320], state[320];
    h_path(path, sizeof(path), "accounts-seams");
    h_path(state, sizeof(state), "state-seams");
    write_accounts(path, SEAM_ACCTS, 8, SEAM_TIERS);
    struct h_proc *co = h_coord_start(
        NULL, (const char *[]){"--accounts", path, "--state", state, "--verify", "echo=none,sha256=quorum2",
                               "--mem-budget", "67108864", "--mem-share", "3145728", NULL});
    struct h_proc *p1 = h_peer_start("seam-peer-1", 4, NULL, (const char *[]){"--token", TOK_PEER, NULL});
    struct h_proc *p2 = h_peer_start("seam-peer-2", 4, NULL, (const char *[]){"--token", TOK_PEER, NULL});
    h_wait_peers(2, TOK_OPS);
    mem_share_per_account();
    jobs_respect_tier();

    h_phase("two tiers pay their own prices in the ledger");
    int n = (int)(20 * h_scale()) + 5;
    run_paid(TOK_CHEAP, "cheapo", n);
    run_paid(TOK_DEAR, "rich", n);
    h_stop_all((struct h_proc *const[]){p1, p2, co}, 3);
    int rc = h_cli("ledger", "--state", state, "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r ledger");
    json_t *doc = h_out_json();
    H_REQUIRE(doc, "p2c2r ledger --json printed no JSON");
    long long cb, ce, rb, re;
    balance_of(doc, "renter:cheapo", &cb, &ce);
    balance_of(doc, "renter:rich", &rb, &re);
    h_log("renter:cheapo %lld millicredits in %lld entries, renter:rich %lld in %lld", cb, ce, rb, re);
    H_CHECK(cb < 0 && rb < 0 && ce > 0 && re > 0, "both renters paid");
    /* The same work per entry (one size of task, split among two peers):
     * the dear tier pays five times the cheap one for each. */
    H_CHECK(rb * ce == 5 * cb * re, "price per entry: rich %lld/%lld, cheapo %lld/%lld, expected 5:1", rb, re, cb,
            ce);
    H_CHECK(h_json_int(json_object_get(doc, "totals"), "sum_millicredits") == 0, "the books do not balance");
    json_decref(doc);
    const char *chk[] = {h_coord_bin(), "--check-ledger", "--state", state, NULL};
    struct h_cmd r = h_run_cmd(NULL, chk);
    H_CHECK(r.code == 0 && strstr(r.out, "ledger balanced"), "p2c2rd --check-ledger: exit %d\n%s%s", r.code, r.out,
            r.err);
    h_cmd_free(&r);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "accounts");
    tokens_file_attacks();
    struct h_proc *tco = tokens_coord();
    struct h_proc *tpeer = h_peer_start("tokens-peer", 2, NULL, (const char *[]){"--token", TOK_PEER, "--name", PEER_NAME, NULL});
    h_wait_peers(1, TOK_OTHER);
    roles_and_backoff();
    stats_visibility();
    json_t *js = h_stats(TOK_OPS);
    H_CHECK(h_json_int(js, "logins.backoffs") >= 30, "logins.backoffs %lld", h_json_int(js, "logins.backoffs"));
    json_decref(js);
    h_stop_all((struct h_proc *const[]){tpeer, tco}, 2);

    char path[320];
    h_path(path, sizeof(path), "accounts");
    write_accounts(path, ACCTS, 6, NULL);
    struct h_proc *co = h_coord_start(NULL, (const char *[]){"--accounts", path, "--verify", "echo=none,*=quorum2",
                                                             "--metrics", "127.0.0.1:0", NULL});
    struct h_proc *peer = h_peer_start("peer", 4, NULL, (const char *[]){"--token", TOK_PEER, "--name", PEER_NAME, NULL});
    h_wait_peers(1, TOK_OPS);
    tier_limits(peer);
    reload_during_traffic(path, co);
    h_stop_all((struct h_proc *const[]){peer, co}, 2);
    tenant_seams();
    return h_finish();
}
