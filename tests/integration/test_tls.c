/* test_tls.c - TLS 1.3 on the coordinator's port, both hops: renter <->
 * coordinator <-> peer.
 *
 * Certificates are made at run time with the openssl command: a CA and a
 * server certificate it signed for IP 127.0.0.1; a second CA for peers'
 * client certificates and one peer certificate it signed; a rogue CA with a
 * peer certificate of its own, and an unrelated self-signed certificate.
 *
 * Checks: the round trip (echo, sha256) with a peer without a client
 * certificate and one with; a relay between a renter and the coordinator
 * sees neither the token nor a task's input in clear (and, as a control,
 * sees both against a plaintext coordinator); a plaintext client is refused
 * with a plaintext ERROR ETLS naming the fix, counted in STATS and
 * Prometheus; a TLS client of a plaintext coordinator gets ETLS; the wrong
 * CA and the wrong name are refused with the verifier's reason; a peer whose
 * client certificate another CA signed is cut and never registers; the
 * non-blocking face (connect_start, poll on fd and want_write, process)
 * over TLS; reconnect_ms redoes the handshake with a restarted coordinator;
 * the CLI's --tls-ca and its error without it. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

static char ca[320], srv_cert[320], srv_key[320], cca[320], peer_cert[320], peer_key[320];
static char rogue_cert[320], rogue_key[320], other_ca[320];

static void openssl_run(const char *const *argv)
{
    struct h_cmd r = h_run_cmd(NULL, argv);
    H_REQUIRE(r.code == 0, "%s %s failed: %s", argv[0], argv[1], r.err);
    h_cmd_free(&r);
}

/* A P-256 key and a certificate: self-signed CA (issuer NULL), or signed by
 * issuer with the extensions in ext (a file's text). */
static void make_cert(const char *name, const char *subject, const char *issuer, const char *ext,
                      char *cert, char *key)
{
    char csr[320], extf[320], fn[64], ikey[320];
    /* "cert-": the harness names peers' identity keys DIR/<peer>.key. */
    snprintf(fn, sizeof(fn), "cert-%s.pem", name);
    h_path(cert, 320, fn);
    snprintf(fn, sizeof(fn), "cert-%s.key", name);
    h_path(key, 320, fn);
    if (!issuer) {
        const char *argv[] = {OPENSSL_BIN, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                              "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                              "-days", "2", "-subj", subject, NULL};
        openssl_run(argv);
        return;
    }
    snprintf(fn, sizeof(fn), "cert-%s.csr", name);
    h_path(csr, sizeof(csr), fn);
    snprintf(fn, sizeof(fn), "cert-%s.ext", name);
    h_path(extf, sizeof(extf), fn);
    H_REQUIRE(h_write_file(extf, ext, strlen(ext)) == 0, "write %s", extf);
    const char *req[] = {OPENSSL_BIN, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                         "-nodes", "-keyout", key, "-out", csr, "-subj", subject, NULL};
    openssl_run(req);
    snprintf(ikey, sizeof(ikey), "%.*s.key", (int)(strlen(issuer) - 4), issuer);
    const char *sign[] = {OPENSSL_BIN, "x509", "-req", "-in", csr, "-CA", issuer, "-CAkey", ikey,
                          "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", extf, NULL};
    openssl_run(sign);
}

static void make_certs(void)
{
    h_phase("certificates (openssl)");
    char k[320];
    make_cert("ca", "/CN=p2c2r test CA", NULL, NULL, ca, k);
    make_cert("srv", "/CN=p2c2rd", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n", srv_cert, srv_key);
    make_cert("cca", "/CN=p2c2r peer CA", NULL, NULL, cca, k);
    make_cert("peer", "/CN=volunteer-1", cca, "extendedKeyUsage=clientAuth\n", peer_cert, peer_key);
    char rca[320];
    make_cert("rca", "/CN=rogue CA", NULL, NULL, rca, k);
    make_cert("rogue", "/CN=volunteer-1", rca, "extendedKeyUsage=clientAuth\n", rogue_cert, rogue_key);
    make_cert("other", "/CN=p2c2rd", NULL, NULL, other_ca, k);
}

static p2c2r_client *connect_tls(const char *addr, const char *ca_file, const char *name, int *rc_out,
                                 char *why, size_t why_cap)
{
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.name = "tls-test";
    o.token = "tok-5ecret-4b1d";
    o.connect_timeout_ms = h_bound_ms(5000);
    o.tls_ca_file = ca_file;
    o.tls_server_name = name;
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect_start(addr, &o, &c);
    if (rc == 0) {
        while (p2c2r_client_state(c) == P2C2R_STATE_CONNECTING) {
            struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
            poll(&pfd, 1, p2c2r_client_timeout_ms(c));
            int r = p2c2r_client_process(c);
            if (r < 0) {
                rc = r;
                break;
            }
        }
        if (rc == 0 && p2c2r_client_state(c) != P2C2R_STATE_READY)
            rc = P2C2R_EIO;
    }
    *rc_out = rc;
    if (why)
        snprintf(why, why_cap, "%s", c ? p2c2r_client_last_error(c) : "");
    if (rc != 0) {
        p2c2r_client_close(c);
        return NULL;
    }
    return c;
}

static void echo_ok(p2c2r_client *c, const char *what, const char *msg)
{
    struct p2c2r_task t = {sizeof t, "echo", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, msg, strlen(msg)};
    t.flags = P2C2R_TASK_NOCACHE;
    struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
    H_CHECK(r.status == 0 && r.output_len == strlen(msg) && !memcmp(r.output, msg, r.output_len),
            "%s: echo status %s, %zu bytes", what, h_err(r.status), r.output_len);
    p2c2r_result_release(&r);
}

/* ---- a relay that keeps what the client sent ------------------------------------ */

struct relay {
    int lfd;
    char target[64];
    char addr[64];
    pthread_t th;
    uint8_t *seen;  /* client -> server bytes */
    size_t nseen, cap;
};

static int tcp_to(const char *addr)
{
    char host[64];
    snprintf(host, sizeof(host), "%s", addr);
    char *colon = strrchr(host, ':');
    *colon = '\0';
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    inet_pton(AF_INET, host, &sa.sin_addr);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* One connection, both ways, until either side closes. */
static void *relay_main(void *arg)
{
    struct relay *r = arg;
    int a = accept(r->lfd, NULL, NULL);
    int b = a >= 0 ? tcp_to(r->target) : -1;
    uint8_t buf[65536];
    while (a >= 0 && b >= 0) {
        struct pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
        if (poll(p, 2, 10000) <= 0)
            break;
        if (p[0].revents) {
            ssize_t n = read(a, buf, sizeof(buf));
            if (n <= 0)
                break;
            if (r->nseen + (size_t)n > r->cap) {
                r->cap = (r->nseen + (size_t)n) * 2;
                r->seen = realloc(r->seen, r->cap);
            }
            memcpy(r->seen + r->nseen, buf, (size_t)n);
            r->nseen += (size_t)n;
            if (write(b, buf, (size_t)n) != n)
                break;
        }
        if (p[1].revents) {
            ssize_t n = read(b, buf, sizeof(buf));
            if (n <= 0 || write(a, buf, (size_t)n) != n)
                break;
        }
    }
    if (a >= 0)
        close(a);
    if (b >= 0)
        close(b);
    return NULL;
}

static void relay_start(struct relay *r, const char *target)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->target, sizeof(r->target), "%s", target);
    r->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof(sa);
    H_REQUIRE(r->lfd >= 0 && bind(r->lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                  listen(r->lfd, 4) == 0 && getsockname(r->lfd, (struct sockaddr *)&sa, &sl) == 0,
              "relay socket: %s", strerror(errno));
    snprintf(r->addr, sizeof(r->addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    H_REQUIRE(pthread_create(&r->th, NULL, relay_main, r) == 0, "relay thread");
}

static void relay_stop(struct relay *r)
{
    pthread_join(r->th, NULL);
    close(r->lfd);
}

static int seen_has(const struct relay *r, const char *s)
{
    return memmem(r->seen, r->nseen, s, strlen(s)) != NULL;
}

/* The token and an input through a relay; returns what it saw in the relay. */
static void through_relay(struct relay *r, const char *ca_file, const char *input)
{
    relay_start(r, h_addr());
    int rc;
    char why[256];
    p2c2r_client *c = connect_tls(r->addr, ca_file, "127.0.0.1", &rc, why, sizeof(why));
    H_REQUIRE(c, "connect through the relay: %s (%s)", h_err(rc), why);
    echo_ok(c, "through the relay", input);
    p2c2r_client_close(c);
    relay_stop(r);
}

static void test_relay(void)
{
    h_phase("a relay sees no token and no input in clear");
    struct relay r;
    through_relay(&r, ca, "input-s3cret-9d1e");
    H_CHECK(r.nseen > 100, "relay saw only %zu bytes", r.nseen);
    H_CHECK(!seen_has(&r, "tok-5ecret-4b1d"), "the token crossed the relay in clear");
    H_CHECK(!seen_has(&r, "input-s3cret-9d1e"), "the task input crossed the relay in clear");
    H_CHECK(r.nseen > 0 && r.seen[0] == 0x16, "the first byte is not a TLS handshake record: 0x%02x",
            r.nseen ? r.seen[0] : 0);
    free(r.seen);
}

static void test_relay_control(void)
{
    h_phase("control: the relay sees both in clear without TLS");
    struct relay r;
    through_relay(&r, NULL, "input-s3cret-9d1e");
    H_CHECK(seen_has(&r, "tok-5ecret-4b1d"), "the relay should see a plaintext token");
    H_CHECK(seen_has(&r, "input-s3cret-9d1e"), "the relay should see a plaintext input");
    free(r.seen);
}

/* ---- refusals --------------------------------------------------------------------- */

static void test_plaintext_refused(void)
{
    h_phase("a plaintext client is refused");
    long long before = h_stat("counters.tls_plain_refused");
    struct h_raw raw;
    H_REQUIRE(h_raw_connect(&raw, h_addr()) == 0, "raw connect");
    struct msg_hello m = {PROTO_VERSION, PROTO_VERSION, ROLE_RENTER, {NULL, 0}, {NULL, 0}};
    uint8_t body[64];
    proto_put_hello(body, &m);
    H_CHECK(h_raw_send_frame(&raw, MSG_HELLO, 0, 0, body, proto_hello_size(&m), 2000) == 0, "send HELLO");
    int closed = 0;
    char text[256] = "";
    int code = h_raw_expect_error(&raw, h_bound_ms(5000), &closed, text, sizeof(text));
    H_CHECK(code == P2C2R_ETLS, "plaintext HELLO: got %s, expected ETLS", h_err(code));
    H_CHECK(strstr(text, "TLS required") != NULL, "the refusal should say TLS is required: '%s'", text);
    H_CHECK(closed, "the connection should be closed");
    h_raw_close(&raw);

    /* The library without a CA: the same refusal, as its error. */
    int rc;
    char why[256];
    p2c2r_client *c = connect_tls(h_addr(), NULL, NULL, &rc, why, sizeof(why));
    H_CHECK(!c && rc == P2C2R_ETLS, "plaintext library client: %s, expected ETLS", h_err(rc));
    H_CHECK(strstr(why, "TLS required") != NULL, "library's reason: '%s'", why);
    p2c2r_client_close(c);
    long long after = h_stat("counters.tls_plain_refused");
    H_CHECK(after >= before + 2, "tls_plain_refused %lld -> %lld, expected +2", before, after);
}

static void test_wrong_ca(void)
{
    h_phase("the wrong CA and the wrong name are refused");
    int rc;
    char why[256];
    p2c2r_client *c = connect_tls(h_addr(), other_ca, NULL, &rc, why, sizeof(why));
    H_CHECK(!c && rc == P2C2R_ETLS, "wrong CA: %s, expected ETLS", h_err(rc));
    H_CHECK(strstr(why, "certificate verify failed") != NULL, "wrong CA reason: '%s'", why);
    c = connect_tls(h_addr(), ca, "wrong.example", &rc, why, sizeof(why));
    H_CHECK(!c && rc == P2C2R_ETLS, "wrong name: %s, expected ETLS", h_err(rc));
    H_CHECK(strstr(why, "hostname mismatch") != NULL, "wrong name reason: '%s'", why);
    c = connect_tls(h_addr(), ca, "localhost", &rc, why, sizeof(why));
    H_CHECK(c != NULL, "the certificate's DNS name: %s (%s)", h_err(rc), why);
    p2c2r_client_close(c);
    /* A CA file that is not one. */
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.tls_ca_file = srv_key;
    rc = p2c2r_client_connect_start(h_addr(), &o, &c);
    H_CHECK(rc == P2C2R_ETLS, "a key as the CA file: %s, expected ETLS", h_err(rc));
}

static void test_rogue_peer(void)
{
    h_phase("a peer whose certificate another CA signed is cut");
    long long before = h_stat("counters.tls_failures");
    const char *x[] = {"--tls-ca", ca, "--tls-cert", rogue_cert, "--tls-key", rogue_key, NULL};
    struct h_proc *p = h_peer_start("rogue", 1, "echo", x);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    long long fails = before;
    while (h_now_ms() < end && fails <= before) {
        h_sleep_ms(50);
        fails = h_stat("counters.tls_failures");
    }
    H_CHECK(fails > before, "tls_failures stayed %lld with a rogue client certificate", fails);
    H_CHECK(h_stat("peers_connected") == 2, "the rogue peer registered");
    h_stop(p);
}

static void test_silent_sockets(void)
{
    h_phase("silent sockets, trickled and stalled handshakes do not block a TLS client");
    enum { N = 150, STALL = 300 }; /* 600 descriptors in all: under a soft limit of 1024 */
    static struct h_raw raw[2 * N];
    int open = 0;
    for (int i = 0; i < 2 * N; i++) {
        if (h_raw_connect(&raw[i], h_addr()) != 0)
            break;
        open++;
        /* The second half send the start of a handshake record and stall:
         * no slot is taken before a whole first record. */
        if (i >= N) {
            static const uint8_t start[] = {0x16, 0x03, 0x01, 0x01, 0x00, 0x01};
            h_raw_send(&raw[i], start, sizeof(start), 1000);
        }
    }
    H_CHECK(open == 2 * N, "only %d of %d sockets opened", open, 2 * N);
    /* And 300 clients that send a whole ClientHello and then stall: they
     * take every handshake slot (128) until the slot's 2 s deadline. */
    static p2c2r_client *stall[STALL];
    long long fails0 = h_stat("counters.tls_failures");
    int nstall = 0;
    for (int i = 0; i < STALL; i++) {
        struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
        o.tls_ca_file = ca;
        o.connect_timeout_ms = 60000;
        stall[i] = NULL;
        if (p2c2r_client_connect_start(h_addr(), &o, &stall[i]) != 0)
            break;
        nstall++;
        for (int k = 0; k < 50 && p2c2r_client_want_write(stall[i]); k++) {
            struct pollfd pfd = {p2c2r_client_fd(stall[i]), POLLOUT, 0};
            poll(&pfd, 1, 10);
            p2c2r_client_process(stall[i]);
        }
    }
    H_CHECK(nstall == STALL, "only %d of %d stalling clients started", nstall, STALL);
    long long busy = -1;
    for (int k = 0; k < 40 && busy < 128; k++) {
        busy = h_stat("tls_handshaking");
        h_sleep_ms(busy < 128 ? 25 : 0);
    }
    int ww = 0;
    for (int i = 0; i < nstall; i++)
        ww += p2c2r_client_want_write(stall[i]);
    h_log("handshakes in progress: %lld (at most 128), connections %lld, stallers with output left %d", busy,
          h_stat("connections"), ww);
    int rc;
    char why[256];
    uint64_t t0 = h_now_ms();
    p2c2r_client *c = connect_tls(h_addr(), ca, NULL, &rc, why, sizeof(why));
    H_CHECK(c != NULL, "TLS client behind %d idle sockets and %d stalled handshakes: %s (%s) after %llu ms",
            open, nstall, h_err(rc), why,
            (unsigned long long)(h_now_ms() - t0));
    if (c)
        echo_ok(c, "behind silent sockets", "still served");
    p2c2r_client_close(c);
    /* The stalled handshakes are cut when their slots' 2 s run out. */
    long long fails = fails0;
    for (uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000); fails <= fails0 && h_now_ms() < end;) {
        h_sleep_ms(50);
        fails = h_stat("counters.tls_failures");
    }
    H_CHECK(fails > fails0, "no stalled handshake was cut at its deadline");
    for (int i = 0; i < nstall; i++)
        p2c2r_client_close(stall[i]);
    for (int i = 0; i < open; i++)
        h_raw_close(&raw[i]);
}

/* ---- the non-blocking face and reconnect ----------------------------------------- */

static void test_nonblocking(void)
{
    h_phase("non-blocking face over TLS");
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.tls_ca_file = ca;
    o.connect_timeout_ms = h_bound_ms(5000);
    p2c2r_client *c;
    H_REQUIRE(p2c2r_client_connect_start(h_addr(), &o, &c) == 0, "connect_start");
    H_CHECK(p2c2r_client_want_write(c) == 1, "want_write during the TCP connect");
    enum { N = 200 };
    char in[N][16];
    p2c2r_ticket tk[N];
    int submitted = 0, done = 0, loops = 0;
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(20000);
    while (done < N && h_now_ms() < end) {
        loops++;
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
        int to = p2c2r_client_timeout_ms(c);
        poll(&pfd, 1, to < 0 || to > 100 ? 100 : to);
        int r = p2c2r_client_process(c);
        H_REQUIRE(r >= 0, "process: %s (%s)", h_err(r), p2c2r_client_last_error(c));
        if (p2c2r_client_state(c) != P2C2R_STATE_READY)
            continue;
        while (submitted < N) {
            snprintf(in[submitted], sizeof(in[0]), "nb-%d", submitted);
            struct p2c2r_task t = {sizeof t, "echo", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0,
                                   in[submitted], strlen(in[submitted])};
            t.flags = P2C2R_TASK_NOCACHE;
            if (p2c2r_client_submit(c, &t, &tk[submitted]) != 0)
                break;
            submitted++;
        }
        struct p2c2r_result res[32];
        for (int k = 0; k < 32; k++)
            p2c2r_result_init(&res[k]);
        int n = p2c2r_client_poll(c, res, 32, 0);
        for (int k = 0; k < n; k++) {
            int i = -1;
            for (int j = 0; j < submitted; j++)
                if (tk[j].id == res[k].ticket.id)
                    i = j;
            H_CHECK(i >= 0 && res[k].status == 0 && res[k].output_len == strlen(in[i]) &&
                        !memcmp(res[k].output, in[i], res[k].output_len),
                    "non-blocking result %d: status %s", i, h_err(res[k].status));
            p2c2r_result_release(&res[k]);
        }
        done += n > 0 ? n : 0;
    }
    H_CHECK(done == N, "non-blocking: %d of %d results (%d loops)", done, N, loops);
    p2c2r_client_close(c);
}

static void test_reconnect(struct h_proc **coord, const char *coord_args[])
{
    h_phase("reconnect over TLS to a restarted coordinator");
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.tls_ca_file = ca;
    o.connect_timeout_ms = h_bound_ms(5000);
    o.reconnect_ms = 50;
    o.reconnect_max_ms = 200;
    p2c2r_client *c;
    H_REQUIRE(p2c2r_client_connect(h_addr(), &o, &c) == 0, "connect with reconnect_ms");
    echo_ok(c, "before the restart", "before");
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    h_stop(*coord);
    *coord = h_coord_start(addr, coord_args);
    h_wait_peers(2, NULL);
    /* First the loss of the old connection, then a new one. */
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    int lost = 0;
    while ((!lost || p2c2r_client_state(c) != P2C2R_STATE_READY) && h_now_ms() < end) {
        struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
        int to = p2c2r_client_timeout_ms(c);
        poll(&pfd, 1, to < 0 || to > 50 ? 50 : to);
        p2c2r_client_process(c);
        lost |= p2c2r_client_state(c) != P2C2R_STATE_READY;
    }
    H_CHECK(lost, "the client never noticed the restart");
    H_REQUIRE(p2c2r_client_state(c) == P2C2R_STATE_READY, "not READY again after the restart: %s",
              p2c2r_client_last_error(c));
    echo_ok(c, "after the restart", "after");
    /* Two peers and this client, each with a handshake of its own. */
    H_CHECK(h_stat("counters.tls_handshakes") >= 3, "handshakes on the new coordinator: %lld",
            h_stat("counters.tls_handshakes"));
    p2c2r_client_close(c);
}

static void test_cli(void)
{
    h_phase("the CLI with and without --tls-ca");
    char in[320];
    h_path(in, sizeof(in), "cli-in.txt");
    h_write_file(in, "cli over tls", 12);
    const char *argv[] = {h_cli_bin(), "submit", "echo", "--coordinator", h_addr(), "--tls-ca", ca, NULL};
    struct h_cmd r = h_run_cmd(in, argv);
    H_CHECK(r.code == 0 && strstr(r.out, "cli over tls"), "p2c2r submit --tls-ca: exit %d\n%s\n%s",
            r.code, r.out, r.err);
    h_cmd_free(&r);
    const char *argv2[] = {h_cli_bin(), "submit", "echo", "--coordinator", h_addr(), NULL};
    r = h_run_cmd(in, argv2);
    H_CHECK(r.code == 1 && strstr(r.err, "TLS required") && strstr(r.err, "--tls-ca"),
            "p2c2r submit without --tls-ca: exit %d\n%s", r.code, r.err);
    h_cmd_free(&r);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "tls");
    make_certs();

    h_phase("plaintext coordinator: TLS client gets ETLS; relay control");
    h_coord_start(NULL, NULL);
    {
        int rc;
        char why[256];
        p2c2r_client *c = connect_tls(h_addr(), ca, NULL, &rc, why, sizeof(why));
        H_CHECK(!c && rc == P2C2R_ETLS && strstr(why, "without TLS"),
                "TLS client of a plaintext coordinator: %s (%s)", h_err(rc), why);
        p2c2r_client_close(c);
    }
    {
        struct h_proc *pa = h_peer_start("plain-echo", 2, "echo", NULL);
        h_wait_peers(1, NULL);
        test_relay_control();
        h_stop(pa);
        h_stop(h_coord());
    }

    h_phase("TLS coordinator, peers with and without a client certificate");
    const char *cargs[] = {"--tls-cert", srv_cert, "--tls-key", srv_key, "--tls-client-ca", cca, NULL};
    struct h_proc *coord = h_coord_start(NULL, cargs);
    h_set_tls_ca(ca);
    const char *xa[] = {"--tls-ca", ca, NULL};
    const char *xb[] = {"--tls-ca", ca, "--tls-cert", peer_cert, "--tls-key", peer_key, NULL};
    struct h_proc *pa = h_peer_start("echo-nocert", 4, "echo", xa);
    struct h_proc *pb = h_peer_start("sha-cert", 1, "sha256", xb);
    h_wait_peers(2, NULL);

    h_phase("round trip over TLS");
    p2c2r_client *c = h_renter("tls-renter");
    echo_ok(c, "echo over TLS", "hello over tls");
    {
        struct p2c2r_task t = {sizeof t, "sha256", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, "abc", 3};
        t.flags = P2C2R_TASK_NOCACHE;
        struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
        uint8_t want[32];
        h_sha256("abc", 3, want);
        H_CHECK(r.status == 0 && r.output_len == 32 && !memcmp(r.output, want, 32),
                "sha256 over TLS (the peer with a client certificate): %s", h_err(r.status));
        p2c2r_result_release(&r);
        /* A large input and output: many records each way. */
        size_t n = 3u << 20;
        uint8_t *big = malloc(n);
        h_fill(big, n, 7);
        struct p2c2r_task e = {sizeof e, "echo", 0, 0, P2C2R_PRIO_INTERACTIVE, NULL, 0, big, n};
        e.flags = P2C2R_TASK_NOCACHE;
        r = h_wait(c, h_submit(c, &e), 20000);
        H_CHECK(r.status == 0 && r.output_len == n && !memcmp(r.output, big, n),
                "3 MiB echo over TLS: %s, %zu bytes", h_err(r.status), r.output_len);
        p2c2r_result_release(&r);
        free(big);
    }
    p2c2r_client_close(c);
    H_CHECK(h_stat("counters.tls_handshakes") >= 3, "tls_handshakes %lld", h_stat("counters.tls_handshakes"));

    test_relay();
    test_plaintext_refused();
    test_wrong_ca();
    test_rogue_peer();
    test_silent_sockets();
    test_nonblocking();
    test_cli();
    test_reconnect(&coord, cargs);

    struct h_proc *all[] = {pa, pb, coord};
    h_stop_all(all, 3);
    return h_finish();
}
