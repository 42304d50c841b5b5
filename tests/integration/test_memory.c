/* test_memory.c - memory bounded by configuration, whatever clients do (issue 12, item 4).
 *
 * Each phase starts a coordinator with --mem-budget 64 MiB and --max-frame 8 MiB, runs one
 * attack from the issue on raw sockets, and checks that the attacker gets the documented
 * refusal or cut, that the coordinator's resident memory (VmRSS in /proc/PID/status, skipped
 * under sanitizers whose shadow memory would dominate it) stays under the budget, and that
 * another renter is still served:
 *   big_hello     headers announcing an 8 MiB HELLO: refused at the header (ETOOBIG);
 *   partial       renters leave SUBMITs one byte short: refused at the header past the budget
 *                 (ELIMIT), the rest cut by --frame-timeout (ETIMEDOUT);
 *   tiny_blobs    600,000 8-byte blobs: charged with their overhead, the uploader evicts
 *                 its own, and another renter's blob uploaded before survives;
 *   blob_split    two renters fill the store: the second evicts the first's blobs (over an
 *                 even split), never a third renter's (a rule check: the 512 MiB store of
 *                 a2cd1e8 is not filled at this size);
 *   held          400 tasks of 256 KiB for a peer that holds what it gets and never
 *                 answers: refused past the renter's share (ELIMIT);
 *   non_reader    a renter that never reads its results: cut at its share, counted in
 *                 counters.limit_cuts;
 *   silent        96 silent sockets against --max-conns 8: a renter still gets in;
 *   junk_types    a peer registering 30 made-up types is refused, a real one then registers;
 *   unserved      tasks with a 49-day deadline for a type whose only peer has no slot fail
 *                 after --orphan-timeout, and unpin their blobs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "harness.h"

#define BUDGET (64u << 20)
#define FRAME (8u << 20)

static struct h_proc *g_coord;
static struct h_fake_peer *g_echo;

/* The coordinator's resident set in KiB, or -1. */
static long rss_kib(void)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)g_coord->pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static void check_rss(const char *what)
{
    long kib = rss_kib();
    json_t *st = h_stats(NULL);
    h_log("%s: coordinator VmRSS %ld KiB (budget %u KiB), charged %s", what, kib, BUDGET >> 10,
          h_json_text(h_json_at(st, "mem")));
    json_decref(st);
    if (h_sanitized())
        return;
    H_CHECK(kib > 0 && kib < (long)(BUDGET >> 10), "%s: coordinator VmRSS %ld KiB, budget %u KiB", what, kib,
            BUDGET >> 10);
}

static void stop_coord(void)
{
    h_fake_peer_stop(g_echo);
    g_echo = NULL;
    if (g_coord)
        h_stop(g_coord);
    g_coord = NULL;
}

/* A coordinator with the test's budget and an echo peer; extra: more
 * options, NULL-terminated (may be NULL). */
static void start_coord(const char *const *extra)
{
    stop_coord();
    const char *args[32] = {"--mem-budget", "67108864", "--max-frame", "8388608", "--frame-timeout", "1500",
                            "--log-level", "warn"};
    int n = 8;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    g_coord = h_coord_start(NULL, args);
    struct h_fake_peer_cfg pc = {0};
    pc.name = "echo-peer";
    pc.types = "echo";
    pc.slots = 8;
    g_echo = h_fake_peer_start(&pc);
    h_wait_peers(1, NULL);
}

/* Another renter runs an echo task to its end. */
static void check_serving(const char *what)
{
    p2c2r_client *c = h_renter("bystander");
    uint8_t in[1000];
    h_fill(in, sizeof(in), 7);
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, in, sizeof(in)};
    p2c2r_ticket tk = h_submit(c, &t);
    struct p2c2r_result r = h_wait(c, tk, 10000);
    H_CHECK(r.status == 0 && r.output_len == sizeof(in) && memcmp(r.output, in, sizeof(in)) == 0,
            "%s: the bystander's echo task: %s", what, h_err(r.status));
    p2c2r_result_release(&r);
    p2c2r_client_close(c);
}

static int send_hdr(struct h_raw *r, uint8_t type, uint64_t req_id, uint32_t body_len)
{
    uint8_t hdr[PROTO_HDR_LEN];
    proto_put_hdr(hdr, type, 0, req_id, body_len);
    return h_raw_send(r, hdr, sizeof(hdr), 2000);
}

static void raw_renter(struct h_raw *r)
{
    H_REQUIRE(h_raw_connect(r, h_addr()) == 0, "connect to %s", h_addr());
    int rc = h_raw_hello(r, ROLE_RENTER, NULL, NULL);
    H_REQUIRE(rc == 0, "renter HELLO: %s", h_err(rc));
}

/* ---- a header announcing a large HELLO -------------------------------------------- */

static void attack_big_hello(void)
{
    enum { N = 12 };
    h_phase("big_hello: %d connections announce an %u-byte HELLO", N, FRAME);
    start_coord(NULL);
    static uint8_t junk[FRAME];
    struct h_raw r[N];
    int refused = 0;
    for (int i = 0; i < N; i++) {
        H_REQUIRE(h_raw_connect(&r[i], h_addr()) == 0, "connect");
        send_hdr(&r[i], MSG_HELLO, 1, FRAME);
        h_raw_send(&r[i], junk, 65536, 2000);
        int closed = 0;
        char text[256] = "";
        int code = h_raw_expect_error(&r[i], h_bound_ms(1500), &closed, text, sizeof(text));
        refused += code == P2C2R_ETOOBIG;
        /* The rest of the body: read (and held) by a coordinator that did
         * not refuse the header, refused by one that did. */
        h_raw_send(&r[i], junk, FRAME - 65536 - 1, 3000);
    }
    H_CHECK(refused == N, "%d of %d oversized HELLOs refused at their header with ETOOBIG", refused, N);
    check_rss("big_hello");
    for (int i = 0; i < N; i++)
        h_raw_close(&r[i]);
    check_serving("big_hello");
}

/* ---- renters leave a SUBMIT one byte short ------------------------------------- */

static void attack_partial(void)
{
    enum { N = 12 };
    h_phase("partial: %d renters leave a SUBMIT one byte short of %u bytes", N, FRAME);
    start_coord(NULL);
    static uint8_t junk[FRAME];
    struct h_raw r[N];
    for (int i = 0; i < N; i++) {
        raw_renter(&r[i]);
        send_hdr(&r[i], MSG_SUBMIT, 1, FRAME);
        h_raw_send(&r[i], junk, FRAME - 1, 3000);
    }
    check_rss("partial");
    int limit = 0, timedout = 0;
    for (int i = 0; i < N; i++) {
        int closed = 0;
        char text[256] = "";
        int code = h_raw_expect_error(&r[i], h_bound_ms(5000), &closed, text, sizeof(text));
        limit += code == P2C2R_ELIMIT;
        timedout += code == P2C2R_ETIMEDOUT;
        h_log("partial renter %d: %s %s", i, h_err(code), text);
        h_raw_close(&r[i]);
    }
    H_CHECK(limit > 0, "no partial frame refused at its header for the budget (ELIMIT)");
    H_CHECK(timedout > 0, "no partial frame cut by --frame-timeout (ETIMEDOUT)");
    H_CHECK(limit + timedout == N, "%d of %d partial frames refused or cut", limit + timedout, N);
    H_CHECK(h_stat("counters.frame_timeouts") == timedout, "counters.frame_timeouts %lld, %d seen",
            h_stat("counters.frame_timeouts"), timedout);
    check_serving("partial");
}

/* ---- 600,000 tiny blobs, and another renter's blob ------------------------------------- */

static void attack_tiny_blobs(void)
{
    enum { TOTAL = 600000, BATCH = 2000 };
    h_phase("tiny_blobs: %d blobs of 8 bytes", TOTAL);
    start_coord(NULL);
    /* The bystander's blob, uploaded before the flood and used after it. */
    p2c2r_client *b = h_renter("blob-owner");
    static uint8_t mine[256 << 10];
    h_fill(mine, sizeof(mine), 99);
    uint8_t hash[32];
    int rc = p2c2r_client_put_blob(b, mine, sizeof(mine), h_bound_ms(5000), hash);
    H_REQUIRE(rc == 0, "put the bystander's blob: %s", h_err(rc));

    struct h_raw r;
    raw_renter(&r);
    static uint8_t batch[BATCH * (PROTO_HDR_LEN + 8)];
    long ok = 0, refused = 0;
    for (int k = 0; k < TOTAL; k += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            uint8_t *f = batch + (size_t)i * (PROTO_HDR_LEN + 8);
            proto_put_hdr(f, MSG_BLOB_PUT, 0, (uint64_t)(k + i + 1), 8);
            wr64(f + PROTO_HDR_LEN, (uint64_t)(k + i) * 2654435761u + 1);
        }
        H_REQUIRE(h_raw_send(&r, batch, sizeof(batch), h_bound_ms(10000)) == 0, "send blobs at %d", k);
        for (int i = 0; i < BATCH; i++) {
            struct h_frame f;
            int fr = h_raw_read(&r, &f, h_bound_ms(10000));
            H_REQUIRE(fr == H_RAW_FRAME, "blob answer %d: %d", k + i, fr);
            ok += f.hdr.type == MSG_BLOB_OK;
            refused += f.hdr.type == MSG_REJECTED;
        }
    }
    h_log("tiny_blobs: %ld stored, %ld refused", ok, refused);
    check_rss("tiny_blobs");
    json_t *st = h_stats(NULL);
    long long count = h_json_int(st, "blobs.count"), bytes = h_json_int(st, "blobs.bytes");
    H_CHECK(count > 0 && bytes >= count * 100, "blobs.bytes %lld for %lld blobs: no per-blob overhead counted",
            bytes, count);
    json_decref(st);
    h_raw_close(&r);

    const uint8_t(*hs)[32] = (const uint8_t(*)[32])hash;
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, "x", 1};
    t.blobs = hs;
    t.nblobs = 1;
    p2c2r_ticket tk = h_submit(b, &t);
    struct p2c2r_result res = h_wait(b, tk, 10000);
    H_CHECK(res.status == 0, "the bystander's task on its own blob after the flood: %s (%.*s)", h_err(res.status),
            (int)res.output_len, (const char *)res.output);
    p2c2r_result_release(&res);
    p2c2r_client_close(b);
    check_serving("tiny_blobs");
}

/* ---- two renters fill the blob store: a third's blob stays ------------------------- */

/* Uploads n blobs of len bytes (seeded by seed) on r, pipelined; returns
 * how many were stored. */
static int put_blobs(struct h_raw *r, int n, size_t len, uint64_t seed)
{
    uint8_t *f = malloc(PROTO_HDR_LEN + len);
    H_REQUIRE(f != NULL, "out of memory");
    for (int i = 0; i < n; i++) {
        proto_put_hdr(f, MSG_BLOB_PUT, 0, (uint64_t)i + 1, (uint32_t)len);
        h_fill(f + PROTO_HDR_LEN, len, seed + (uint64_t)i);
        H_REQUIRE(h_raw_send(r, f, PROTO_HDR_LEN + len, h_bound_ms(10000)) == 0, "send blob %d", i);
    }
    free(f);
    int ok = 0;
    for (int i = 0; i < n; i++) {
        struct h_frame fr;
        int rc = h_raw_read(r, &fr, h_bound_ms(10000));
        H_REQUIRE(rc == H_RAW_FRAME, "blob answer %d: %d", i, rc);
        ok += fr.hdr.type == MSG_BLOB_OK;
    }
    return ok;
}

static void attack_blob_split(void)
{
    h_phase("blob_split: two renters fill the blob store, a third used a blob of its own");
    start_coord(NULL);
    p2c2r_client *b = h_renter("blob-owner");
    static uint8_t mine[256 << 10];
    h_fill(mine, sizeof(mine), 4242);
    uint8_t hash[32];
    int rc = p2c2r_client_put_blob(b, mine, sizeof(mine), h_bound_ms(5000), hash);
    H_REQUIRE(rc == 0, "put the bystander's blob: %s", h_err(rc));
    struct h_raw a1, a2;
    raw_renter(&a1);
    raw_renter(&a2);
    /* 11 MiB each, under a renter's share (12 MiB) but together past the
     * store's cap (18 MiB at this budget): the second evicts the first's
     * oldest, the first being over an even split, and not the third's. */
    int ok1 = put_blobs(&a1, 11, 1 << 20, 1), ok2 = put_blobs(&a2, 11, 1 << 20, 100);
    h_log("blob_split: %d and %d of 11 stored", ok1, ok2);
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_int(st, "blobs.bytes") <= h_json_int(st, "blobs.max_bytes"), "blobs.bytes %lld over max_bytes %lld",
            h_json_int(st, "blobs.bytes"), h_json_int(st, "blobs.max_bytes"));
    json_decref(st);
    const uint8_t(*hs)[32] = (const uint8_t(*)[32])hash;
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, 1, NULL, 0, "y", 1};
    t.blobs = hs;
    t.nblobs = 1;
    p2c2r_ticket tk = h_submit(b, &t);
    struct p2c2r_result res = h_wait(b, tk, 10000);
    H_CHECK(res.status == 0, "the bystander's task on its own blob: %s (%.*s)", h_err(res.status),
            (int)res.output_len, (const char *)res.output);
    p2c2r_result_release(&res);
    p2c2r_client_close(b);
    h_raw_close(&a1);
    h_raw_close(&a2);
    check_rss("blob_split");
}

/* ---- tasks held by a peer that never answers, and queued behind it ------------------- */

static void attack_held(void)
{
    enum { N = 400, INPUT = 256 << 10 };
    h_phase("held: %d tasks of %d bytes for a peer that never answers", N, INPUT);
    start_coord(NULL);
    struct h_fake_peer_cfg pc = {0};
    pc.name = "staller";
    pc.types = "hold";
    pc.slots = 1000;
    pc.delay_ms = H_FAKE_NEVER;
    struct h_fake_peer *staller = h_fake_peer_start(&pc);
    h_wait_peers(2, NULL);
    struct h_raw r;
    raw_renter(&r);
    static uint8_t in[INPUT];
    size_t bl;
    uint8_t *body = h_task_body("hold", 0, 600000, NULL, in, sizeof(in), &bl);
    int limit = 0, other = 0;
    for (int i = 0; i < N; i++) {
        wr32(body + bl - 4, (uint32_t)i); /* distinct inputs: nothing coalesces */
        H_REQUIRE(h_raw_send_frame(&r, MSG_SUBMIT, 0, (uint64_t)i + 1, body, bl, h_bound_ms(10000)) == 0,
                  "submit %d", i);
        struct h_outcome o;
        while (h_raw_outcome(&r, &o, 0) == H_RAW_FRAME) {
            if (o.type == MSG_REJECTED && o.status == P2C2R_ELIMIT)
                limit++;
            else
                other++;
        }
    }
    struct h_outcome o;
    while (h_raw_outcome(&r, &o, 300) == H_RAW_FRAME) {
        if (o.type == MSG_REJECTED && o.status == P2C2R_ELIMIT)
            limit++;
        else
            other++;
    }
    free(body);
    h_log("held: %d refused with ELIMIT, %d other outcomes", limit, other);
    H_CHECK(limit > 0, "no task refused for the memory budget");
    check_rss("held");
    check_serving("held");
    h_raw_close(&r);
    h_fake_peer_stop(staller);
}

/* ---- a renter that never reads its results ------------------------------------------ */

static void attack_non_reader(void)
{
    enum { N = 2000, INPUT = 64 << 10 };
    h_phase("non_reader: %d echo tasks of %d bytes, results never read", N, INPUT);
    start_coord(NULL);
    struct h_raw r;
    raw_renter(&r);
    int small = 4096;
    setsockopt(r.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    static uint8_t in[INPUT];
    size_t bl;
    uint8_t *body = h_task_body("echo", 0, 600000, NULL, in, sizeof(in), &bl);
    int sent = 0;
    for (; sent < N; sent++)
        if ((wr32(body + bl - 4, (uint32_t)sent), 1) && h_raw_send_frame(&r, MSG_SUBMIT, 0, (uint64_t)sent + 1, body, bl, 1000) != 0)
            break;
    free(body);
    h_log("non_reader: %d tasks sent before the connection stopped taking them", sent);
    check_rss("non_reader");
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(5000);
    long long cuts = -1;
    while ((cuts = h_stat("counters.limit_cuts")) < 1 && h_now_ms() < end)
        h_sleep_ms(100);
    H_CHECK(cuts >= 1, "counters.limit_cuts %lld after a renter that does not read was cut", cuts);
    h_raw_close(&r);
    check_serving("non_reader");
}

/* ---- silent sockets against --max-conns ------------------------------------------------ */

static void attack_silent(void)
{
    enum { N = 96 };
    h_phase("silent: %d silent sockets, --max-conns 8", N);
    static const char *const extra[] = {"--max-conns", "8", "--max-unauth", "32", "--max-unauth-per-addr", "16",
                                        NULL};
    start_coord(extra);
    static struct h_raw r[N];
    for (int i = 0; i < N; i++)
        H_REQUIRE(h_raw_connect(&r[i], h_addr()) == 0, "connect silent socket %d", i);
    h_sleep_ms(200);
    check_serving("silent");
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_int(st, "counters.unauth_evicted") > 0, "no silent socket was dropped for a new connection");
    /* All from 127.0.0.1: the address's share, not the whole pool. */
    H_CHECK(h_json_int(st, "unauthenticated") <= 16, "%lld connections without HELLO from one address (limit 16)",
            h_json_int(st, "unauthenticated"));
    json_decref(st);
    check_rss("silent");
    for (int i = 0; i < N; i++)
        h_raw_close(&r[i]);
}

/* ---- a peer registering made-up types ------------------------------------------------ */

static void attack_junk_types(void)
{
    h_phase("junk_types: a peer registers 30 made-up task types");
    start_coord(NULL);
    struct msg_register m;
    memset(&m, 0, sizeof(m));
    m.cores = 1;
    m.slots = 1;
    m.mem_bytes = 1u << 30;
    m.ntypes = 30;
    static char names[30][16];
    for (int i = 0; i < 30; i++) {
        snprintf(names[i], sizeof(names[i]), "junk%02d", i);
        m.types[i].name.p = (const uint8_t *)names[i];
        m.types[i].name.len = strlen(names[i]);
        m.types[i].version = 1;
    }
    static uint8_t caps[4096];
    size_t cl = proto_put_register(caps, &m);
    struct h_raw r;
    H_REQUIRE(h_raw_connect(&r, h_addr()) == 0, "connect");
    int rc = h_raw_hello(&r, ROLE_PEER, NULL, NULL);
    H_REQUIRE(rc == 0, "peer HELLO: %s", h_err(rc));
    H_REQUIRE(h_raw_send_register(&r, 1, caps, cl, NULL) == 0, "send PEER_REGISTER");
    int closed = 0;
    char text[256] = "";
    int code = h_raw_expect_error(&r, h_bound_ms(1500), &closed, text, sizeof(text));
    H_CHECK(code == P2C2R_ELIMIT, "30 new types from one peer: %s (%s), expected ELIMIT", h_err(code), text);
    /* A real peer with a few types of its own still registers. */
    struct h_fake_peer_cfg pc = {0};
    pc.name = "real";
    pc.types = "alpha,beta,gamma,delta";
    pc.slots = 4;
    struct h_fake_peer *real = h_fake_peer_start(&pc);
    h_fake_peer_stop(real);
    h_raw_close(&r);
    check_serving("junk_types");
}

/* ---- a type whose peer never has a slot pins blobs ------------------------------------ */

static void attack_unserved(void)
{
    enum { N = 8 };
    h_phase("unserved: %d tasks with a 49-day deadline for a type whose peer has no slot", N);
    static const char *const extra[] = {"--orphan-timeout", "1000", NULL};
    start_coord(extra);
    struct h_fake_peer_cfg pc = {0};
    pc.name = "no-slots";
    pc.types = "stuck";
    pc.slots = 0;
    struct h_fake_peer *np = h_fake_peer_start(&pc);
    h_wait_peers(2, NULL);
    p2c2r_client *c = h_renter("pinner");
    static uint8_t blob[1 << 20];
    p2c2r_ticket tk[N];
    uint8_t hash[N][32];
    for (int i = 0; i < N; i++) {
        h_fill(blob, sizeof(blob), (uint64_t)i + 1000);
        int rc = p2c2r_client_put_blob(c, blob, sizeof(blob), h_bound_ms(5000), hash[i]);
        H_REQUIRE(rc == 0, "put blob %d: %s", i, h_err(rc));
        struct p2c2r_task t = {sizeof t, "stuck", 0, 49u * 86400u * 1000u, 2, NULL, 0, "x", 1};
        t.blobs = (const uint8_t(*)[32])hash[i];
        t.nblobs = 1;
        tk[i] = h_submit(c, &t);
    }
    int unsupported = 0;
    for (int i = 0; i < N; i++) {
        struct p2c2r_result r = h_wait(c, tk[i], 8000);
        unsupported += r.status == P2C2R_EUNSUPPORTED;
        p2c2r_result_release(&r);
    }
    H_CHECK(unsupported == N, "%d of %d tasks nobody could take ended EUNSUPPORTED", unsupported, N);
    p2c2r_client_close(c);
    h_fake_peer_stop(np);
    check_serving("unserved");
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        void (*fn)(void);
    } attacks[] = {
        {"big_hello", attack_big_hello}, {"partial", attack_partial},       {"tiny_blobs", attack_tiny_blobs},
        {"blob_split", attack_blob_split},
        {"held", attack_held},           {"non_reader", attack_non_reader}, {"silent", attack_silent},
        {"junk_types", attack_junk_types}, {"unserved", attack_unserved},
    };
    h_init(argc, argv, "memory");
    /* A fourth argument runs only the attack of that name (by hand). */
    const char *only = h_arg(4);
    for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++)
        if (!only || strcmp(only, attacks[i].name) == 0)
            attacks[i].fn();
    stop_coord();
    return h_finish();
}
