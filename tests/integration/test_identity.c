/* test_identity.c - peer identity (docs/PROTOCOL.md 5.1, 5.3) and what the
 * coordinator remembers about each key (docs/ARCHITECTURE.md "Peer
 * identity", "Persistent state"), attacked as a raw-protocol peer would:
 *
 * - a PEER_REGISTER without identity, one presenting key A signed by key B,
 *   and one replaying a signature made for another connection (its nonce
 *   and conn_id) are cut with EAUTH and counted in auth_failures; the same
 *   signed body on its own connection is accepted;
 * - a key's record follows it across reconnects (same key_id, its good
 *   results carried), and two connections with one key are one group while
 *   another key is another;
 * - a key quarantined by the breaker is still quarantined when it
 *   reconnects, and after a restart of the coordinator with the same
 *   --state;
 * - a key banned with `p2c2r peers --state DIR --ban KEY` (refused while
 *   p2c2rd runs) is refused at registration with EAUTH, and `p2c2r peers`
 *   lists it.
 *
 * Each attack passes on a coordinator that does not check identity, which
 * is what these checks are for. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char g_state[400];

static const char *const *coord_args(void)
{
    /* One strike quarantines, for an hour: a probe never ends it during the
     * test. */
    static const char *args[] = {"--state", g_state, "--breaker-strikes", "1", "--breaker-cooldown",
                                 "3600000", "--no-hedge", NULL};
    return args;
}

static struct h_raw raw_peer_hello(void)
{
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "connect to %s", h_addr());
    int rc = h_raw_hello(&r, ROLE_PEER, NULL, NULL);
    H_REQUIRE(rc == 0, "peer HELLO: %s", h_err(rc));
    H_CHECK(r.have_nonce, "HELLO_OK to a peer carries no nonce");
    return r;
}

/* Sends body as PEER_REGISTER on r and expects EAUTH with want in the
 * reason. */
static void expect_eauth(struct h_raw *r, const void *body, size_t n, const char *what, const char *want)
{
    H_REQUIRE(h_raw_send_frame(r, MSG_PEER_REGISTER, 0, 2, body, n, 2000) == 0, "%s: send", what);
    int closed = 0;
    char text[256] = "";
    int got = h_raw_expect_error(r, h_bound_ms(5000), &closed, text, sizeof(text));
    H_CHECK(got == P2C2R_EAUTH && closed, "%s: expected EAUTH and a close, got %s", what, h_err(got));
    H_CHECK(strstr(text, want) != NULL, "%s: reason \"%s\" does not say \"%s\"", what, text, want);
    h_log("  %s: %s \"%s\"", what, h_err(got), text);
}

static void case_auth(void)
{
    h_phase("PEER_REGISTER without identity, with another key's signature, and replayed");
    long long fails0 = h_stat("counters.auth_failures");
    uint8_t caps[256];
    size_t cl = h_caps_one_type(caps, "id_auth");
    struct ident a, b;
    ident_generate(&a);
    ident_generate(&b);

    struct h_raw r = raw_peer_hello();
    expect_eauth(&r, caps, cl, "no identity", "no identity");
    h_raw_close(&r);

    /* Key A presented, signed by key B: a peer claiming someone's key. */
    r = raw_peer_hello();
    size_t n;
    uint8_t *body = h_register_body(caps, cl, r.nonce, r.conn_id, &b, a.pk, &n);
    expect_eauth(&r, body, n, "key A signed by key B", "signature does not verify");
    free(body);
    h_raw_close(&r);

    /* A signature made for connection 1, replayed on connection 2 (the
     * attacker saw it on the wire, or relays it): refused.  The same body
     * on its own connection is accepted. */
    struct h_raw r1 = raw_peer_hello();
    struct h_raw r2 = raw_peer_hello();
    body = h_register_body(caps, cl, r1.nonce, r1.conn_id, &a, NULL, &n);
    expect_eauth(&r2, body, n, "signature replayed on another connection", "signature does not verify");
    h_raw_close(&r2);
    /* Another nonce with the right conn_id is refused too. */
    struct h_raw r3 = raw_peer_hello();
    uint8_t *body3 = h_register_body(caps, cl, r1.nonce, r3.conn_id, &a, NULL, &n);
    expect_eauth(&r3, body3, n, "signature over another connection's nonce", "signature does not verify");
    free(body3);
    h_raw_close(&r3);
    H_REQUIRE(h_raw_send_frame(&r1, MSG_PEER_REGISTER, 0, 2, body, n, 2000) == 0, "send");
    struct h_frame f;
    int rc = h_raw_read(&r1, &f, h_bound_ms(5000));
    H_CHECK(rc == H_RAW_FRAME && f.hdr.type == MSG_REGISTER_OK,
            "a correctly signed PEER_REGISTER was not answered REGISTER_OK (%d, %s)", rc,
            rc == H_RAW_FRAME ? proto_type_name(f.hdr.type) : "-");
    free(body);
    h_raw_close(&r1);
    long long fails = h_stat("counters.auth_failures");
    H_CHECK(fails - fails0 == 4, "auth_failures went from %lld to %lld, expected 4 more", fails0, fails);
    ident_fini(&a);
    ident_fini(&b);
}

static void hex_of(const uint8_t *pk, char out[IDENT_PK_HEX_LEN + 1]) { ident_pk_hex(pk, out); }

/* The STATS entry of the connected peer with this peer id. */
static long long peer_field(uint32_t id, const char *field)
{
    char path[128];
    snprintf(path, sizeof(path), "peers[id=%u].%s", id, field);
    return h_stat(path);
}

/* Runs one echo task on a coordinator where only fp serves "id_echo". */
static void run_one(p2c2r_client *c, const char *type)
{
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = type;
    t.input = "hi";
    t.input_len = 2;
    t.flags = P2C2R_TASK_NOCACHE;
    struct p2c2r_result res = h_wait(c, h_submit(c, &t), 10000);
    H_CHECK(res.status == 0, "task on %s failed: %s", type, h_err(res.status));
    p2c2r_result_release(&res);
}

static void case_record_follows_key(p2c2r_client *c)
{
    h_phase("a key's record follows it across reconnects; one key is one group");
    struct ident k, other;
    ident_generate(&k);
    ident_generate(&other);
    struct h_fake_peer_cfg cfg = {.name = "id-a", .types = "id_echo", .slots = 1, .key = &k};
    /* A record grows only with results an independent peer confirmed
     * (verification, adaptive by default): a second key checks them, so
     * each task counts for both. */
    struct h_fake_peer_cfg wcfg = {.name = "id-w", .types = "id_echo", .slots = 1};
    struct h_fake_peer *w = h_fake_peer_start(&wcfg);
    struct h_fake_peer *p1 = h_fake_peer_start(&cfg);
    uint32_t id1 = h_fake_peer_id(p1);
    run_one(c, "id_echo");
    run_one(c, "id_echo");
    long long key_id = peer_field(id1, "key_id"), good = peer_field(id1, "good");
    char hex[IDENT_PK_HEX_LEN + 1];
    hex_of(k.pk, hex);
    json_t *js = h_stats(NULL);
    char path[160];
    snprintf(path, sizeof(path), "peers[id=%u].key", id1);
    H_CHECK(h_json_str_is(js, path, hex), "STATS key of peer %u is not %s", id1, hex);
    json_decref(js);
    H_CHECK(good == 2, "good results of the key: %lld, expected 2", good);
    h_fake_peer_stop(p1);
    h_fake_peer_stop(w);
    h_wait_peers(0, NULL);

    struct h_fake_peer *p2 = h_fake_peer_start(&cfg);
    uint32_t id2 = h_fake_peer_id(p2);
    H_CHECK(id2 != id1, "a new connection got the old peer id %u", id1);
    H_CHECK(peer_field(id2, "key_id") == key_id, "key_id %lld after a reconnect, was %lld",
            peer_field(id2, "key_id"), key_id);
    H_CHECK(peer_field(id2, "good") == 2, "the record's good results did not follow the key: %lld",
            peer_field(id2, "good"));

    /* A second connection with the same key: one peer for quorum purposes. */
    cfg.name = "id-a2";
    struct h_fake_peer *p3 = h_fake_peer_start(&cfg);
    uint32_t id3 = h_fake_peer_id(p3);
    long long g2 = peer_field(id2, "group"), g3 = peer_field(id3, "group");
    H_CHECK(g2 > 0 && g2 == g3, "two connections of one key are in groups %lld and %lld", g2, g3);
    H_CHECK(peer_field(id3, "key_conns") == 2, "key_conns %lld, expected 2", peer_field(id3, "key_conns"));
    struct h_fake_peer_cfg ocfg = {.name = "id-b", .types = "id_echo", .slots = 1, .key = &other};
    struct h_fake_peer *p4 = h_fake_peer_start(&ocfg);
    long long g4 = peer_field(h_fake_peer_id(p4), "group");
    H_CHECK(g4 > 0 && g4 != g2, "another key shares group %lld", g4);
    h_fake_peer_stop(p2);
    h_fake_peer_stop(p3);
    h_fake_peer_stop(p4);
    h_wait_peers(0, NULL);
    ident_fini(&k);
    ident_fini(&other);
}

/* Two connections of one key fail every task with a false ETASK next to an
 * honest peer: an error counts only when a peer of another group says the
 * same, so the two cannot vouch for each other and every task ends with
 * the honest peer's success. */
static void case_errors_of_one_key(void)
{
    h_phase("two connections of one key cannot confirm each other's false errors");
    /* A coordinator of its own, with the default breaker (5 contradicted
     * errors in a row before a quarantine): the window in which the attack
     * worked. */
    const char *args[] = {"--no-hedge", NULL};
    h_coord_start(NULL, args);
    struct p2c2r_client_options o = {sizeof o, NULL, "it-identity-err", h_bound_ms(5000), 0, 0};
    p2c2r_client *c;
    H_REQUIRE(p2c2r_client_connect(h_addr(), &o, &c) == 0, "connect to %s", h_addr());
    struct ident k;
    ident_generate(&k);
    struct h_fake_peer_cfg lcfg = {.name = "id-err-a", .types = "id_err", .slots = 1, .fail_code = P2C2R_ETASK,
                                   .key = &k};
    struct h_fake_peer *l1 = h_fake_peer_start(&lcfg);
    lcfg.name = "id-err-b";
    struct h_fake_peer *l2 = h_fake_peer_start(&lcfg);
    struct h_fake_peer_cfg hcfg = {.name = "id-err-honest", .types = "id_err", .slots = 1};
    struct h_fake_peer *hp = h_fake_peer_start(&hcfg);
    int ok = 0, etask = 0, other = 0;
    /* All at once, so every peer holds one (serially, the honest peer,
     * fastest once measured, would take them all). */
    enum { N = 300 };
    p2c2r_ticket tk[N];
    char in[N][16];
    for (int i = 0; i < N; i++) {
        struct p2c2r_task t = P2C2R_TASK_INIT;
        snprintf(in[i], sizeof(in[i]), "e%d", i);
        t.type = "id_err";
        t.input = in[i];
        t.input_len = strlen(in[i]);
        t.flags = P2C2R_TASK_NOCACHE;
        tk[i] = h_submit(c, &t);
    }
    for (int i = 0; i < N; i++) {
        struct p2c2r_result res = h_wait(c, tk[i], 10000);
        if (res.status == 0)
            ok++;
        else if (res.status == P2C2R_ETASK)
            etask++;
        else
            other++;
        p2c2r_result_release(&res);
    }
    h_log("  one key's false errors: %d ok, %d ETASK delivered, %d other", ok, etask, other);
    H_CHECK(etask == 0 && other == 0, "%d false ETASK (and %d other) delivered: the key's two connections "
            "confirmed each other", etask, other);
    /* Whether the key ends quarantined depends on the order of events (an
     * error against a success still waiting for its check strikes nobody
     * when no third, independent peer exists to settle it): not asserted. */
    H_CHECK(ok == N, "%d of %d tasks succeeded", ok, N);
    h_fake_peer_stop(l1);
    h_fake_peer_stop(l2);
    h_fake_peer_stop(hp);
    p2c2r_client_close(c);
    ident_fini(&k);
}

/* Quarantines the key of a failing fake peer: its error is contradicted by
 * an honest peer's success (one strike quarantines here). */
static void quarantine(p2c2r_client *c, struct h_fake_peer *liar, uint32_t liar_id)
{
    for (int i = 0; i < 50; i++) {
        run_one(c, "id_q");
        char path[64];
        snprintf(path, sizeof(path), "peers[id=%u].state", liar_id);
        json_t *js = h_stats(NULL);
        int q = h_json_str_is(js, path, "quarantined");
        json_decref(js);
        if (q)
            return;
    }
    struct h_fake_counts n;
    h_fake_peer_counts(liar, &n);
    H_REQUIRE(0, "the failing peer was not quarantined (it was given %ld tasks)", n.assigned);
}

static int state_is(uint32_t id, const char *want)
{
    char path[64];
    snprintf(path, sizeof(path), "peers[id=%u].state", id);
    json_t *js = h_stats(NULL);
    int ok = h_json_str_is(js, path, want);
    if (!ok)
        h_log("peer %u: state %s, expected %s", id, h_json_str(js, path) ? h_json_str(js, path) : "(none)", want);
    json_decref(js);
    return ok;
}

static struct h_proc *restart_coord(struct h_proc *co)
{
    h_stop(co);
    return h_coord_start(NULL, coord_args());
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "identity");
    h_path(g_state, sizeof(g_state), "state");
    struct h_proc *co = h_coord_start(NULL, coord_args());
    case_auth();

    struct p2c2r_client_options o = {sizeof o, NULL, "it-identity", h_bound_ms(5000), 0, 0};
    p2c2r_client *c;
    int crc = p2c2r_client_connect(h_addr(), &o, &c);
    H_REQUIRE(crc == 0, "connect to %s: %s", h_addr(), h_err(crc));
    case_record_follows_key(c);

    h_phase("a quarantined key that reconnects is still quarantined, also after a restart");
    struct ident lk;
    ident_generate(&lk);
    struct h_fake_peer_cfg lcfg = {.name = "id-liar", .types = "id_q", .slots = 1, .fail_code = P2C2R_ETASK,
                                   .key = &lk};
    struct h_fake_peer_cfg hcfg = {.name = "id-honest", .types = "id_q", .slots = 1};
    struct h_fake_peer *liar = h_fake_peer_start(&lcfg);
    struct h_fake_peer *honest = h_fake_peer_start(&hcfg);
    quarantine(c, liar, h_fake_peer_id(liar));
    h_fake_peer_stop(liar);
    liar = h_fake_peer_start(&lcfg);
    H_CHECK(state_is(h_fake_peer_id(liar), "quarantined"), "a quarantined key reconnected as a clean peer");
    h_fake_peer_stop(liar);
    h_fake_peer_stop(honest);
    p2c2r_client_close(c);
    co = restart_coord(co);
    liar = h_fake_peer_start(&lcfg);
    H_CHECK(state_is(h_fake_peer_id(liar), "quarantined"),
            "a quarantined key got a clean record after a coordinator restart");
    H_CHECK(peer_field(h_fake_peer_id(liar), "quarantines") >= 1, "its quarantines were not kept");
    h_fake_peer_stop(liar);

    h_phase("a key banned with p2c2r peers --ban is refused with EAUTH");
    char hex[IDENT_PK_HEX_LEN + 1];
    hex_of(lk.pk, hex);
    int rc = h_cli("peers", "--state", g_state, "--ban", hex, (char *)NULL);
    H_EXPECT_EXIT(rc, 1, "p2c2r peers --ban while p2c2rd runs");
    H_CHECK_ERR("locked");
    h_stop(co);
    rc = h_cli("peers", "--state", g_state, "--ban", hex, (char *)NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r peers --ban with p2c2rd stopped");
    /* And a key the operator vouches for (its own machine). */
    struct ident pk;
    ident_generate(&pk);
    char phex[IDENT_PK_HEX_LEN + 1];
    hex_of(pk.pk, phex);
    rc = h_cli("peers", "--state", g_state, "--pin", phex, (char *)NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r peers --pin with p2c2rd stopped");
    /* And two keys the operator knows are one party's. */
    struct ident ga, gb;
    ident_generate(&ga);
    ident_generate(&gb);
    char gahex[IDENT_PK_HEX_LEN + 1], gbhex[IDENT_PK_HEX_LEN + 1], garg[IDENT_PK_HEX_LEN + 16],
        gbarg[IDENT_PK_HEX_LEN + 16];
    hex_of(ga.pk, gahex);
    hex_of(gb.pk, gbhex);
    snprintf(garg, sizeof(garg), "%s=acme", gahex);
    snprintf(gbarg, sizeof(gbarg), "%s=acme", gbhex);
    rc = h_cli("peers", "--state", g_state, "--group", garg, "--group", gbarg, (char *)NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r peers --group with p2c2rd stopped");
    rc = h_cli("peers", "--state", g_state, "--json", (char *)NULL);
    H_EXPECT_EXIT(rc, 0, "p2c2r peers --json");
    json_t *list = h_out_json();
    char path[128];
    snprintf(path, sizeof(path), "[key=%s].banned", hex);
    H_CHECK(h_json_bool(list, path) == 1, "the banned key is not listed as banned: %s", h_json_text(list));
    snprintf(path, sizeof(path), "[key=%s].quarantines", hex);
    H_CHECK(h_json_int(list, path) >= 1, "its quarantines are not listed: %s", h_json_text(list));
    json_decref(list);
    co = h_coord_start(NULL, coord_args());
    struct h_raw r = raw_peer_hello();
    uint8_t caps[256];
    size_t cl = h_caps_one_type(caps, "id_q"), n;
    uint8_t *body = h_register_body(caps, cl, r.nonce, r.conn_id, &lk, NULL, &n);
    expect_eauth(&r, body, n, "a banned key", "banned by the operator");
    free(body);
    h_raw_close(&r);

    h_phase("a pinned key's result counts as checked, with no second peer");
    struct h_fake_peer_cfg pcfg = {.name = "id-pinned", .types = "id_pin", .slots = 1, .key = &pk};
    struct h_fake_peer *pinned = h_fake_peer_start(&pcfg);
    struct p2c2r_client_options po = {sizeof po, NULL, "it-identity-pin", h_bound_ms(5000), 0, 0};
    p2c2r_client *pc;
    H_REQUIRE(p2c2r_client_connect(h_addr(), &po, &pc) == 0, "connect to %s", h_addr());
    struct p2c2r_task pt = P2C2R_TASK_INIT;
    pt.type = "id_pin";
    pt.input = "pin";
    pt.input_len = 3;
    pt.flags = P2C2R_TASK_NOCACHE;
    struct p2c2r_result pres = h_wait(pc, h_submit(pc, &pt), 10000);
    H_CHECK(pres.status == 0 && (pres.flags & P2C2R_RESULT_VERIFIED),
            "a pinned key's result: status %s flags 0x%x, expected OK and VERIFIED", h_err(pres.status), pres.flags);
    p2c2r_result_release(&pres);
    p2c2r_client_close(pc);
    h_fake_peer_stop(pinned);
    ident_fini(&pk);

    h_phase("two keys the operator grouped are one peer: no quorum between them");
    struct h_fake_peer_cfg gacfg = {.name = "id-grp-a", .types = "id_grp", .slots = 1, .key = &ga};
    struct h_fake_peer_cfg gbcfg = {.name = "id-grp-b", .types = "id_grp", .slots = 1, .key = &gb};
    struct h_fake_peer *pa = h_fake_peer_start(&gacfg), *pb = h_fake_peer_start(&gbcfg);
    long long grp_a = peer_field(h_fake_peer_id(pa), "group"), grp_b = peer_field(h_fake_peer_id(pb), "group");
    H_CHECK(grp_a > 0 && grp_a == grp_b, "grouped keys are in groups %lld and %lld", grp_a, grp_b);
    H_REQUIRE(p2c2r_client_connect(h_addr(), &po, &pc) == 0, "connect to %s", h_addr());
    long long verified0 = h_stat("counters.verified");
    for (int i = 0; i < 4; i++) {
        struct p2c2r_task gt = P2C2R_TASK_INIT;
        char gin[8];
        snprintf(gin, sizeof(gin), "g%d", i);
        gt.type = "id_grp";
        gt.input = gin;
        gt.input_len = strlen(gin);
        gt.flags = P2C2R_TASK_NOCACHE;
        struct p2c2r_result gres = h_wait(pc, h_submit(pc, &gt), 10000);
        H_CHECK(gres.status == 0 && !(gres.flags & P2C2R_RESULT_VERIFIED),
                "a result only grouped keys could check: status %s flags 0x%x, expected OK, not VERIFIED",
                h_err(gres.status), gres.flags);
        p2c2r_result_release(&gres);
    }
    H_CHECK(h_stat("counters.verified") == verified0, "grouped keys verified each other");
    p2c2r_client_close(pc);
    h_fake_peer_stop(pa);
    h_fake_peer_stop(pb);
    ident_fini(&ga);
    ident_fini(&gb);
    ident_fini(&lk);
    (void)co;
    case_errors_of_one_key();
    return h_finish();
}
