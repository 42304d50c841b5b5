/* test_client_sched.c - the renter's side of the scheduler: task flags and
 * peer requirements on the wire, result flags, backpressure figures, and the
 * CLI options and stats that expose them.
 *
 * Part 1 talks to a scripted fake coordinator (a thread in this process), so
 * that what the library encodes and how it counts outcomes can be checked
 * exactly: the fake decodes every task the client sends and answers as the
 * task's input says ("ok", "cached", "reject:11", "big", "hold", "close").
 * The large result is sent in two parts, the second only once the client has
 * read the first, so the library's large-result path (big_begin/big_finish)
 * runs every time rather than by chance.
 *
 * Part 2 runs the real p2c2rd and p2c2r-peer: tasks needing a GPU or more
 * cores or memory than any peer has are refused with EUNSUPPORTED and a
 * reason naming what is missing; a repeated sha256 comes back CACHED with
 * the same bytes, and with P2C2R_TASK_NOCACHE runs again; EDEADLINE after the
 * coordinator has its 20 samples of sha256's attempt time (4 MB inputs take
 * milliseconds, the deadline is 1 ms); EQUEUEFULL from a coordinator with
 * --queue-max 1 and one batch frame (its entries are processed in one go, so
 * no peer can drain the queue in between); p2c2r_client_pressure counts both.
 * Then the CLI: --need-gpu refused (exit 1, the reason and what to do on
 * stderr), --priority names, --json saying "cached", and `p2c2r stats` in
 * both forms. */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "harness.h"

/* ---- the fake coordinator ----------------------------------------------------- */

#define FAKE_MAX_INFLIGHT 64
#define FAKE_MAX_RECS 256
#define BIG_LEN (300u * 1000 + 7) /* over the library's 64 KiB large-result threshold */
#define BIG_FIRST 1000            /* output bytes sent before the pause */

struct rec {
    uint64_t ticket;
    uint8_t priority, flags;
    uint32_t deadline_ms;
    struct proto_reqs reqs;
};

static struct {
    int lfd;
    char addr[64];
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rec recs[FAKE_MAX_RECS];
    int nrec;
    int big_stage; /* 1 = first part of "big" sent, 2 = the test says go on */
    int stop;
} F = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static int send_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_frame(int fd, uint8_t type, uint64_t req_id, const void *body, size_t len)
{
    uint8_t h[PROTO_HDR_LEN];
    proto_put_hdr(h, type, 0, req_id, (uint32_t)len);
    return send_all(fd, h, sizeof(h)) || (len && send_all(fd, body, len)) ? -1 : 0;
}

static int send_deliver(int fd, uint64_t ticket, uint16_t attempts, uint32_t peer, uint32_t flags,
                        const void *out, size_t len)
{
    uint8_t b[PROTO_DELIVER_PREFIX + 64];
    proto_put_deliver_head(b, 0, attempts, 5, peer, flags);
    memcpy(b + PROTO_DELIVER_PREFIX, out, len);
    return send_frame(fd, MSG_DELIVER, ticket, b, PROTO_DELIVER_PREFIX + len);
}

static uint8_t big_byte(size_t i) { return (uint8_t)(i * 7 + (i >> 9)); }

/* The large result: header, prefix and BIG_FIRST bytes; then, once the test
 * has seen the client read them, the rest. */
static int send_big(int fd, uint64_t ticket)
{
    uint8_t *b = malloc(PROTO_HDR_LEN + PROTO_DELIVER_PREFIX + BIG_LEN);
    if (!b)
        return -1;
    proto_put_hdr(b, MSG_DELIVER, 0, ticket, PROTO_DELIVER_PREFIX + BIG_LEN);
    proto_put_deliver_head(b + PROTO_HDR_LEN, 0, 1, 9, 3,
                           PROTO_DELIVER_F_CACHED | PROTO_DELIVER_F_HEDGED | 0x80u);
    for (size_t i = 0; i < BIG_LEN; i++)
        b[PROTO_HDR_LEN + PROTO_DELIVER_PREFIX + i] = big_byte(i);
    size_t first = PROTO_HDR_LEN + PROTO_DELIVER_PREFIX + BIG_FIRST;
    int rc = send_all(fd, b, first);
    pthread_mutex_lock(&F.mu);
    F.big_stage = 1;
    pthread_cond_broadcast(&F.cv);
    while (F.big_stage != 2 && !F.stop && rc == 0)
        pthread_cond_wait(&F.cv, &F.mu);
    pthread_mutex_unlock(&F.mu);
    if (rc == 0)
        rc = send_all(fd, b + first, PROTO_HDR_LEN + PROTO_DELIVER_PREFIX + BIG_LEN - first);
    free(b);
    return rc;
}

/* Records the task and answers it as its input says.  Returns -1 to end the
 * connection. */
static int fake_task(int fd, uint64_t ticket, const uint8_t *body, size_t len)
{
    struct msg_task m;
    if (proto_parse_task(body, len, &m) != 0) {
        H_FAIL("fake coordinator: the client sent a malformed task (ticket %llu, %zu bytes)",
               (unsigned long long)ticket, len);
        return -1;
    }
    pthread_mutex_lock(&F.mu);
    if (F.nrec < FAKE_MAX_RECS)
        F.recs[F.nrec++] = (struct rec){ticket, m.priority, m.flags, m.deadline_ms, m.reqs};
    pthread_mutex_unlock(&F.mu);
    char in[32];
    snprintf(in, sizeof(in), "%.*s", (int)(m.input.len < 31 ? m.input.len : 31), (const char *)m.input.p);
    if (!strcmp(in, "ok"))
        return send_deliver(fd, ticket, 1, 7, 0, "ok", 2);
    if (!strcmp(in, "cached"))
        return send_deliver(fd, ticket, 0, 0, PROTO_DELIVER_F_CACHED, "from cache", 10);
    if (!strcmp(in, "hedged")) /* 0x100: a flag this library does not know */
        return send_deliver(fd, ticket, 2, 7, PROTO_DELIVER_F_HEDGED | 0x100u, "raced", 5);
    if (!strncmp(in, "reject:", 7)) {
        char text[64];
        int n = snprintf(text, sizeof(text), "fake refusal %s", in + 7);
        uint8_t b[128];
        size_t bl = proto_put_error(b, (uint16_t)atoi(in + 7), text, (size_t)n);
        return send_frame(fd, MSG_REJECTED, ticket, b, bl);
    }
    if (!strcmp(in, "big"))
        return send_big(fd, ticket);
    if (!strcmp(in, "hold"))
        return 0;
    if (!strcmp(in, "close"))
        return -1;
    H_FAIL("fake coordinator: unexpected task input '%s'", in);
    return -1;
}

/* Serves one renter connection until it closes or a task says "close". */
static void fake_serve(int fd)
{
    size_t cap = 1u << 20, len = 0;
    uint8_t *buf = malloc(cap);
    for (int done = 0; buf && !done;) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        pthread_mutex_lock(&F.mu);
        int stop = F.stop;
        pthread_mutex_unlock(&F.mu);
        if (stop)
            break;
        if (r <= 0)
            continue;
        ssize_t n = recv(fd, buf + len, cap - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        for (;;) {
            struct frame_hdr h;
            int64_t fl = proto_decode_hdr(buf, len, (uint32_t)(cap - PROTO_HDR_LEN), &h);
            if (fl == 0)
                break;
            if (fl < 0) {
                H_FAIL("fake coordinator: bad frame from the client (%lld)", (long long)fl);
                done = 1;
                break;
            }
            const uint8_t *body = buf + PROTO_HDR_LEN;
            if (h.type == MSG_HELLO) {
                uint8_t ok[PROTO_HELLO_OK_LEN];
                struct msg_hello_ok m = {PROTO_VERSION, PROTO_MAX_BODY_DEFAULT, FAKE_MAX_INFLIGHT, 1};
                proto_put_hello_ok(ok, &m);
                done = send_frame(fd, MSG_HELLO_OK, h.req_id, ok, sizeof(ok)) != 0;
            } else if (h.type == MSG_SUBMIT) {
                done = fake_task(fd, h.req_id, body, h.body_len) != 0;
            } else if (h.type == MSG_SUBMIT_BATCH) {
                struct proto_batch_iter it;
                uint32_t count;
                uint64_t id;
                const uint8_t *tb;
                size_t tl;
                if (proto_batch_begin(body, h.body_len, &it, &count) != 0) {
                    H_FAIL("fake coordinator: malformed SUBMIT_BATCH");
                    done = 1;
                }
                while (!done && proto_batch_next(&it, &id, &tb, &tl) == 1)
                    done = fake_task(fd, id, tb, tl) != 0;
            }
            memmove(buf, buf + fl, len - (size_t)fl);
            len -= (size_t)fl;
            if (done)
                break;
        }
    }
    free(buf);
    close(fd);
}

static void *fake_main(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&F.mu);
        int stop = F.stop;
        pthread_mutex_unlock(&F.mu);
        if (stop)
            break;
        struct pollfd p = {F.lfd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        int fd = accept(F.lfd, NULL, NULL);
        if (fd >= 0) {
            /* Header and body go in separate writes: without this, Nagle's
             * algorithm holds the body back for a delayed ACK. */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            fake_serve(fd);
        }
    }
    return NULL;
}

static void fake_start(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    F.lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    H_REQUIRE(F.lfd >= 0 && bind(F.lfd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                  listen(F.lfd, 4) == 0 && getsockname(F.lfd, (struct sockaddr *)&sa, &sl) == 0,
              "fake coordinator: cannot listen on 127.0.0.1: %s", strerror(errno));
    snprintf(F.addr, sizeof(F.addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    H_REQUIRE(pthread_create(&F.th, NULL, fake_main, NULL) == 0, "fake coordinator thread");
}

static void fake_stop(void)
{
    pthread_mutex_lock(&F.mu);
    F.stop = 1;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    pthread_join(F.th, NULL);
    close(F.lfd);
}

/* The recorded task with this ticket; requires that the fake saw it. */
static struct rec fake_rec(p2c2r_ticket t)
{
    struct rec r = {0};
    int found = 0;
    pthread_mutex_lock(&F.mu);
    for (int i = 0; i < F.nrec; i++)
        if (F.recs[i].ticket == t.id) {
            r = F.recs[i];
            found = 1;
        }
    pthread_mutex_unlock(&F.mu);
    H_REQUIRE(found, "the fake coordinator never received ticket %llu", (unsigned long long)t.id);
    return r;
}

static int fake_nrec(void)
{
    pthread_mutex_lock(&F.mu);
    int n = F.nrec;
    pthread_mutex_unlock(&F.mu);
    return n;
}

/* ---- helpers -------------------------------------------------------------------- */

static struct p2c2r_task task(const char *type, const void *in, size_t n)
{
    struct p2c2r_task t = {.size = sizeof t, .type = type, .priority = P2C2R_PRIO_INTERACTIVE, .input = in, .input_len = n};
    return t;
}

static struct p2c2r_task text_task(const char *in) { return task("echo", in, strlen(in)); }

static struct p2c2r_result run(p2c2r_client *c, const struct p2c2r_task *t)
{
    return h_wait(c, h_submit(c, t), 20000);
}

static struct p2c2r_pressure pressure(p2c2r_client *c)
{
    struct p2c2r_pressure p = P2C2R_PRESSURE_INIT;
    memset(&p, 0xa5, sizeof(p));
    p.size = sizeof(p);
    int rc = p2c2r_client_pressure(c, &p);
    H_REQUIRE(rc == 0, "p2c2r_client_pressure returned %s", h_err(rc));
    return p;
}

static p2c2r_client *connect_to(const char *addr, const char *name)
{
    p2c2r_client *c = NULL;
    struct p2c2r_client_options o = {.size = sizeof o, .name = name, .connect_timeout_ms = h_bound_ms(5000)};
    int rc = p2c2r_client_connect(addr, &o, &c);
    H_REQUIRE(rc == 0, "connect to %s: %s", addr, h_err(rc));
    return c;
}

/* ---- part 1: against the fake -------------------------------------------------- */

static void check_rec(p2c2r_ticket t, uint8_t prio, uint8_t flags, uint32_t deadline, uint8_t gpu,
                      uint16_t cores, uint64_t mem, const char *what)
{
    struct rec r = fake_rec(t);
    H_CHECK(r.priority == prio, "%s: priority %u on the wire, expected %u", what, r.priority, prio);
    H_CHECK(r.flags == flags, "%s: task flags 0x%02x on the wire, expected 0x%02x", what, r.flags, flags);
    H_CHECK(r.deadline_ms == deadline, "%s: deadline %u on the wire, expected %u", what, r.deadline_ms,
            deadline);
    H_CHECK(r.reqs.gpu == gpu && r.reqs.min_cores == cores && r.reqs.min_mem == mem,
            "%s: requirements gpu=%u cores=%u mem=%llu on the wire, expected gpu=%u cores=%u mem=%llu", what,
            r.reqs.gpu, r.reqs.min_cores, (unsigned long long)r.reqs.min_mem, gpu, cores,
            (unsigned long long)mem);
}

static void test_encoding(p2c2r_client *c)
{
    h_phase("fake: task flags and requirements on the wire (SUBMIT and SUBMIT_BATCH)");
    struct p2c2r_task t = text_task("ok");
    t.priority = P2C2R_PRIO_REALTIME;
    t.deadline_ms = 16;
    t.flags = P2C2R_TASK_NOCACHE;
    t.need_gpu = 5; /* any nonzero value means "needs a GPU" */
    t.min_cores = 3;
    t.min_mem_bytes = (uint64_t)1 << 33;
    struct p2c2r_result r = run(c, &t);
    H_CHECK(r.status == 0 && r.output_len == 2, "fake 'ok' task: status %s", h_err(r.status));
    check_rec(r.ticket, 0, PROTO_TASK_F_NOCACHE | PROTO_TASK_F_REQS, 16, 1, 3, (uint64_t)1 << 33,
              "nocache + gpu + cores + memory");
    p2c2r_result_release(&r);

    t = text_task("ok");
    r = run(c, &t);
    check_rec(r.ticket, P2C2R_PRIO_INTERACTIVE, 0, 0, 0, 0, 0, "a task with every new field zero");
    p2c2r_result_release(&r);

    t = text_task("ok");
    t.priority = P2C2R_PRIO_BACKGROUND;
    t.min_mem_bytes = 1;
    r = run(c, &t);
    check_rec(r.ticket, P2C2R_PRIO_BACKGROUND, PROTO_TASK_F_REQS, 0, 0, 0, 1, "memory only");
    p2c2r_result_release(&r);

    struct p2c2r_task b[3] = {text_task("ok"), text_task("ok"), text_task("ok")};
    b[0].flags = P2C2R_TASK_NOCACHE;
    b[1].need_gpu = 1;
    b[2].min_cores = 65535;
    b[2].flags = P2C2R_TASK_NOCACHE;
    p2c2r_ticket tk[3];
    int rc = p2c2r_client_submit_batch(c, b, 3, tk);
    H_REQUIRE(rc == 0, "submit_batch of 3: %s", h_err(rc));
    for (int i = 0; i < 3; i++) {
        r = h_wait(c, tk[i], 20000);
        H_CHECK(r.status == 0, "batch entry %d: %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    check_rec(tk[0], 1, PROTO_TASK_F_NOCACHE, 0, 0, 0, 0, "batch entry: nocache");
    check_rec(tk[1], 1, PROTO_TASK_F_REQS, 0, 1, 0, 0, "batch entry: gpu");
    check_rec(tk[2], 1, PROTO_TASK_F_NOCACHE | PROTO_TASK_F_REQS, 0, 0, 65535, 0,
              "batch entry: nocache + cores");

    h_phase("fake: unknown task flag bits are EINVAL, before anything is sent");
    size_t pending = p2c2r_client_pending(c);
    int before = fake_nrec();
    static const uint32_t bad[] = {0x2u, 0x100u, 0x80000000u, P2C2R_TASK_NOCACHE | 0x40u};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t = text_task("ok");
        t.flags = bad[i];
        p2c2r_ticket x = {0};
        rc = p2c2r_client_submit(c, &t, &x);
        H_CHECK(rc == P2C2R_EINVAL, "submit with flags 0x%x returned %s, expected EINVAL", bad[i], h_err(rc));
    }
    b[1].flags = 0x4u;
    rc = p2c2r_client_submit_batch(c, b, 3, tk);
    H_CHECK(rc == P2C2R_EINVAL, "submit_batch with one entry's flags 0x4 returned %s, expected EINVAL",
            h_err(rc));
    H_CHECK(p2c2r_client_pending(c) == pending, "a refused submit left %zu tasks pending (was %zu)",
            p2c2r_client_pending(c), pending);
    t = text_task("ok");
    r = run(c, &t);
    p2c2r_result_release(&r);
    H_CHECK(fake_nrec() == before + 1, "after refused submits and one good one the coordinator saw %d "
                                       "tasks, expected 1 (a refused batch must send nothing)",
            fake_nrec() - before);
}

static void test_result_flags(p2c2r_client *c)
{
    h_phase("fake: DELIVER flags become p2c2r_result.flags");
    struct p2c2r_task t = text_task("ok");
    struct p2c2r_result r = run(c, &t);
    H_CHECK(r.flags == 0, "plain result: flags 0x%x, expected 0", r.flags);
    p2c2r_result_release(&r);

    t = text_task("cached");
    r = run(c, &t);
    H_CHECK(r.status == 0 && r.flags == P2C2R_RESULT_CACHED, "cached result: status %s flags 0x%x",
            h_err(r.status), r.flags);
    H_CHECK(r.output_len == 10 && memcmp(r.output, "from cache", 10) == 0, "cached result's bytes");
    p2c2r_result_release(&r);

    t = text_task("hedged");
    r = run(c, &t);
    H_CHECK(r.flags == P2C2R_RESULT_HEDGED,
            "hedged result (plus an unknown wire bit): flags 0x%x, expected only HEDGED 0x%x", r.flags,
            P2C2R_RESULT_HEDGED);
    H_CHECK(r.attempts == 2 && r.peer_id == 7, "hedged result: attempts %u peer %u", r.attempts, r.peer_id);
    p2c2r_result_release(&r);

    h_phase("fake: flags of a large result (read straight into its own buffer)");
    t = text_task("big");
    p2c2r_ticket tk = h_submit(c, &t);
    H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
    pthread_mutex_lock(&F.mu);
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (F.big_stage != 1 && h_now_ms() < end) {
        pthread_mutex_unlock(&F.mu);
        h_sleep_ms(2);
        pthread_mutex_lock(&F.mu);
    }
    int stage = F.big_stage;
    pthread_mutex_unlock(&F.mu);
    H_REQUIRE(stage == 1, "the fake never started the large result");
    /* Let the client read everything that has arrived: the start of the
     * frame, with BIG_FIRST bytes of its output. */
    int fd = p2c2r_client_fd(c), avail = 1;
    end = h_now_ms() + (uint64_t)h_bound_ms(10000);
    while (h_now_ms() < end) {
        int n = p2c2r_client_process(c);
        H_REQUIRE(n >= 0, "process: %s", h_err(n));
        H_REQUIRE(n == 0, "the large result completed before its second part was sent");
        if (ioctl(fd, FIONREAD, &avail) == 0 && avail == 0)
            break;
        h_sleep_ms(1);
    }
    H_REQUIRE(avail == 0, "the client did not read the first part of the large result");
    pthread_mutex_lock(&F.mu);
    F.big_stage = 2;
    pthread_cond_broadcast(&F.cv);
    pthread_mutex_unlock(&F.mu);
    r = h_wait(c, tk, 20000);
    H_CHECK(r.status == 0 && r.flags == (P2C2R_RESULT_CACHED | P2C2R_RESULT_HEDGED),
            "large result: status %s flags 0x%x, expected CACHED|HEDGED", h_err(r.status), r.flags);
    H_CHECK(r.attempts == 1 && r.peer_id == 3 && r.exec_us == 9, "large result: attempts %u peer %u exec %u",
            r.attempts, r.peer_id, r.exec_us);
    int same = r.output_len == BIG_LEN;
    for (size_t i = 0; same && i < BIG_LEN; i++)
        same = ((const uint8_t *)r.output)[i] == big_byte(i);
    H_CHECK(same, "large result: %zu bytes, expected %u of the pattern", r.output_len, BIG_LEN);
    p2c2r_result_release(&r);
}

static void test_pressure_exact(const char *addr)
{
    h_phase("fake: p2c2r_client_pressure on a fresh connection");
    p2c2r_client *c = connect_to(addr, "pressure");
    struct p2c2r_pressure p = pressure(c);
    H_CHECK(p.inflight == 0 && p.max_inflight == FAKE_MAX_INFLIGHT && p.rejected_queue_full == 0 &&
                p.rejected_deadline == 0 && p.last_reject_ms_ago == UINT64_MAX && p.reject_ratio == 0 &&
                p.unsent_bytes == 0,
            "fresh client: inflight %u max %u queue_full %llu deadline %llu ago %llu ratio %g unsent %zu",
            p.inflight, p.max_inflight, (unsigned long long)p.rejected_queue_full,
            (unsigned long long)p.rejected_deadline, (unsigned long long)p.last_reject_ms_ago,
            p.reject_ratio, p.unsent_bytes);
    H_CHECK(p2c2r_client_pressure(NULL, &p) == P2C2R_EINVAL, "pressure(NULL, ...) should be EINVAL");
    H_CHECK(p2c2r_client_pressure(c, NULL) == P2C2R_EINVAL, "pressure(c, NULL) should be EINVAL");

    h_phase("fake: reject_ratio, counters and last_reject over 24 outcomes");
    /* Outcome i: EQUEUEFULL when i % 4 == 1, EDEADLINE when i % 4 == 3,
     * EUNSUPPORTED (a refusal, but not for load) when i == 6, else success. */
    double want = 0;
    int refused = 0, qf = 0, dl = 0;
    for (int i = 0; i < 24; i++) {
        const char *in = i % 4 == 1 ? "reject:11" : i % 4 == 3 ? "reject:22" : i == 6 ? "reject:10" : "ok";
        struct p2c2r_task t = text_task(in);
        struct p2c2r_result r = run(c, &t);
        int x = i % 4 == 1 || i % 4 == 3;
        int want_status = i % 4 == 1 ? P2C2R_EQUEUEFULL : i % 4 == 3 ? P2C2R_EDEADLINE
                          : i == 6   ? P2C2R_EUNSUPPORTED : 0;
        H_CHECK(r.status == want_status, "outcome %d: status %s, expected %s", i, h_err(r.status),
                h_err(want_status));
        if (want_status && want_status != P2C2R_EUNSUPPORTED)
            H_CHECK(r.output_len > 0 && strstr(r.output, "fake refusal") != NULL,
                    "a REJECTED result should carry the reason text: '%.*s'", (int)r.output_len,
                    r.output ? (const char *)r.output : "");
        p2c2r_result_release(&r);
        refused += x;
        qf += i % 4 == 1;
        dl += i % 4 == 3;
        /* The contract: the plain mean over the first 16, then weight 1/16. */
        want = i < 16 ? (double)refused / (i + 1) : want + (x - want) / 16;
        p = pressure(c);
        H_CHECK(fabs(p.reject_ratio - want) < 1e-9, "after outcome %d: reject_ratio %.6f, expected %.6f", i,
                p.reject_ratio, want);
        H_CHECK(p.rejected_queue_full == (uint64_t)qf && p.rejected_deadline == (uint64_t)dl,
                "after outcome %d: queue_full %llu deadline %llu, expected %d and %d", i,
                (unsigned long long)p.rejected_queue_full, (unsigned long long)p.rejected_deadline, qf, dl);
        if (refused == 0)
            H_CHECK(p.last_reject_ms_ago == UINT64_MAX, "before any refusal last_reject_ms_ago is %llu",
                    (unsigned long long)p.last_reject_ms_ago);
        else
            H_CHECK(p.last_reject_ms_ago <= (uint64_t)h_bound_ms(20000),
                    "after a refusal last_reject_ms_ago is %llu", (unsigned long long)p.last_reject_ms_ago);
        H_CHECK(p.inflight == 0, "after outcome %d: inflight %u", i, p.inflight);
    }

    h_phase("fake: inflight and unsent_bytes");
    struct p2c2r_task hold = text_task("hold");
    p2c2r_ticket held[3];
    for (int i = 0; i < 3; i++)
        held[i] = h_submit(c, &hold);
    p = pressure(c);
    H_CHECK(p.inflight == 3, "3 tasks submitted: inflight %u", p.inflight);
    /* submit only appends to the output buffer (it writes when 256 KiB are
     * queued), so the three frames are all still unsent. */
    H_CHECK(p.unsent_bytes >= 3 * (PROTO_HDR_LEN + PROTO_TASK_FIXED + 4 + 4),
            "3 tasks submitted, not flushed: unsent_bytes %zu", p.unsent_bytes);
    H_REQUIRE(p2c2r_client_flush(c, h_bound_ms(5000)) == 0, "flush");
    p = pressure(c);
    H_CHECK(p.unsent_bytes == 0 && p.inflight == 3, "after flush: unsent_bytes %zu inflight %u", p.unsent_bytes,
            p.inflight);

    h_phase("fake: a failed connection's results are not counted as refusals");
    double ratio = p.reject_ratio;
    struct p2c2r_task cl = text_task("close");
    p2c2r_ticket last = h_submit(c, &cl);
    for (int i = 0; i < 4; i++) {
        struct p2c2r_result r = h_wait(c, i < 3 ? held[i] : last, 20000);
        H_CHECK(r.status == P2C2R_ECLOSED || r.status == P2C2R_EIO, "task %d on a closed connection: %s", i,
                h_err(r.status));
        p2c2r_result_release(&r);
    }
    p = pressure(c);
    H_CHECK(p.inflight == 0 && p.rejected_queue_full == (uint64_t)qf && p.rejected_deadline == (uint64_t)dl &&
                p.reject_ratio == ratio && p.last_reject_ms_ago != UINT64_MAX,
            "after the connection failed: inflight %u queue_full %llu deadline %llu ratio %g (was %g)",
            p.inflight, (unsigned long long)p.rejected_queue_full, (unsigned long long)p.rejected_deadline,
            p.reject_ratio, ratio);
    p2c2r_client_close(c);
}

static void part_fake(void)
{
    fake_start();
    p2c2r_client *c = connect_to(F.addr, "flags");
    test_encoding(c);
    test_result_flags(c);
    p2c2r_client_close(c);
    test_pressure_exact(F.addr);
    fake_stop();
}

/* ---- part 2: the real coordinator ------------------------------------------------ */

static void check_refused(p2c2r_client *c, struct p2c2r_task t, const char *needle, const char *what)
{
    struct p2c2r_result r = run(c, &t);
    H_CHECK(r.status == P2C2R_EUNSUPPORTED, "%s: status %s, expected EUNSUPPORTED (%.*s)", what,
            h_err(r.status), (int)r.output_len, r.output ? (const char *)r.output : "");
    H_CHECK(r.output && strstr(r.output, needle) != NULL, "%s: the reason '%.*s' should name %s", what,
            (int)r.output_len, r.output ? (const char *)r.output : "", needle);
    H_CHECK(r.attempts == 0 && r.peer_id == 0, "%s: attempts %u peer %u on a refusal", what, r.attempts,
            r.peer_id);
    p2c2r_result_release(&r);
}

static void test_capabilities(p2c2r_client *c)
{
    h_phase("real: requirements no peer meets are refused with EUNSUPPORTED");
    struct p2c2r_task t = task("sha256", "abc", 3);
    t.need_gpu = 1;
    check_refused(c, t, "GPU", "need_gpu with no GPU peer");
    t = task("sha256", "abc", 3);
    t.min_cores = 65535;
    check_refused(c, t, "cores", "min_cores 65535");
    t = task("echo", "abc", 3);
    t.min_mem_bytes = (uint64_t)1 << 62;
    check_refused(c, t, "memory", "min_mem_bytes 2^62");

    h_phase("real: requirements a peer meets run normally");
    t = task("echo", "abc", 3);
    t.min_cores = 1;
    t.min_mem_bytes = 1;
    struct p2c2r_result r = run(c, &t);
    H_CHECK(r.status == 0 && r.output_len == 3 && memcmp(r.output, "abc", 3) == 0,
            "echo with min_cores 1, min_mem 1: status %s", h_err(r.status));
    p2c2r_result_release(&r);
}

static void test_cache(p2c2r_client *c)
{
    h_phase("real: a repeated sha256 comes from the result cache; NOCACHE runs it again");
    size_t n = 100 * 1000 + 3;
    uint8_t *in = malloc(n), md[32];
    h_fill(in, n, 0x5ced);
    h_sha256(in, n, md);
    struct p2c2r_task t = task("sha256", in, n);
    struct p2c2r_result a = run(c, &t);
    H_CHECK(a.status == 0 && a.output_len == 32 && memcmp(a.output, md, 32) == 0, "first sha256: %s",
            h_err(a.status));
    H_CHECK(!(a.flags & P2C2R_RESULT_CACHED) && a.attempts >= 1 && a.peer_id != 0,
            "first sha256 of new input: flags 0x%x attempts %u peer %u, expected a run on a peer", a.flags,
            a.attempts, a.peer_id);
    struct p2c2r_result b = run(c, &t);
    H_CHECK(b.status == 0 && (b.flags & P2C2R_RESULT_CACHED), "repeated sha256: status %s flags 0x%x, "
                                                              "expected CACHED",
            h_err(b.status), b.flags);
    H_CHECK(b.output_len == a.output_len && memcmp(b.output, a.output, a.output_len) == 0,
            "the cached result differs from the first");
    H_CHECK(b.attempts == 0, "a cached result has attempts %u, expected 0", b.attempts);
    t.flags = P2C2R_TASK_NOCACHE;
    struct p2c2r_result d = run(c, &t);
    H_CHECK(d.status == 0 && !(d.flags & P2C2R_RESULT_CACHED) && d.attempts >= 1 && d.peer_id != 0,
            "sha256 with NOCACHE: status %s flags 0x%x attempts %u peer %u, expected a fresh run",
            h_err(d.status), d.flags, d.attempts, d.peer_id);
    H_CHECK(d.output_len == 32 && memcmp(d.output, md, 32) == 0, "NOCACHE sha256: wrong digest");
    p2c2r_result_release(&a);
    p2c2r_result_release(&b);
    p2c2r_result_release(&d);
    free(in);
}

#define WARM_TASKS 30           /* the coordinator estimates from 20 samples on */
#define WARM_SIZE (4u << 20)    /* sha256 of 4 MB plus its transfer: milliseconds */

static void test_deadline(p2c2r_client *c)
{
    h_phase("real: EDEADLINE once sha256's attempt time is known");
    uint8_t *in = malloc(WARM_SIZE);
    h_fill(in, WARM_SIZE, 99);
    struct p2c2r_task warm = task("sha256", in, WARM_SIZE);
    warm.flags = P2C2R_TASK_NOCACHE; /* every one must run: cache hits are not attempts */
    struct p2c2r_task late = warm;
    late.deadline_ms = 1;
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    /* The coordinator keeps attempt times for 10 to 20 s (two rotating
     * windows).  A round of WARM_TASKS takes far less, so the first round
     * normally suffices; the further rounds only cover a round that
     * straddled a machine stall. */
    for (int round = 0; round < 3; round++) {
        uint64_t t0 = h_now_ms();
        for (int i = 0; i < WARM_TASKS; i += 2) {
            p2c2r_ticket a = h_submit(c, &warm), b = h_submit(c, &warm);
            struct p2c2r_result ra = h_wait(c, a, 20000), rb = h_wait(c, b, 20000);
            H_REQUIRE(ra.status == 0 && rb.status == 0, "warm-up sha256: %s / %s", h_err(ra.status),
                      h_err(rb.status));
            p2c2r_result_release(&ra);
            p2c2r_result_release(&rb);
        }
        /* Admission needs 20 samples behind the quantiles, refreshed every 100 ms. */
        long long p50 = h_type_stat_sampled("sha256", "attempt_p50_us", 20);
        h_log("round %d: %d warm-up tasks in %llu ms, sha256 attempt_p50_us %lld", round, WARM_TASKS,
              (unsigned long long)(h_now_ms() - t0), p50);
        H_REQUIRE(p50 > 1000, "sha256 of %u bytes: attempt_p50_us %lld; the test needs more than 1 ms "
                              "(a bigger WARM_SIZE)",
                  WARM_SIZE, p50);
        p2c2r_result_release(&r);
        r = run(c, &late);
        if (r.status == P2C2R_EDEADLINE)
            break;
    }
    H_CHECK(r.status == P2C2R_EDEADLINE, "sha256 of 4 MB with a 1 ms deadline: status %s, expected EDEADLINE",
            h_err(r.status));
    H_CHECK(r.output && strstr(r.output, "deadline") != NULL, "EDEADLINE reason: '%.*s'", (int)r.output_len,
            r.output ? (const char *)r.output : "");
    H_CHECK(r.attempts == 0 && r.peer_id == 0, "a refused task: attempts %u peer %u", r.attempts, r.peer_id);
    p2c2r_result_release(&r);
    struct p2c2r_pressure p = pressure(c);
    H_CHECK(p.rejected_deadline == 1 && p.rejected_queue_full == 0, "pressure: deadline %llu queue_full %llu, "
                                                                     "expected 1 and 0",
            (unsigned long long)p.rejected_deadline, (unsigned long long)p.rejected_queue_full);
    H_CHECK(p.reject_ratio > 0 && p.reject_ratio <= 1.0 / 16 + 1e-9,
            "one refusal after many successes: reject_ratio %g, expected (0, 1/16]", p.reject_ratio);
    H_CHECK(p.last_reject_ms_ago <= (uint64_t)h_bound_ms(20000), "last_reject_ms_ago %llu",
            (unsigned long long)p.last_reject_ms_ago);
    json_t *js = h_stats(NULL);
    H_CHECK(js && h_json_int(js, "counters.rejected_deadline") >= 1, "stats counters.rejected_deadline: %s",
            h_json_text(js));
    json_decref(js);
    free(in);
}

static void test_queue_full(void)
{
    h_phase("real: EQUEUEFULL from a coordinator with --queue-max 1");
    const char *cargs[] = {"--queue-max", "1", NULL};
    h_coord_start(NULL, cargs);
    h_peer_start("qpeer", 1, "echo", NULL);
    h_wait_peers(1, NULL);
    p2c2r_client *c = connect_to(h_addr(), "queue-full");
    enum { N = 6 };
    struct p2c2r_task t[N];
    for (int i = 0; i < N; i++) {
        t[i] = task("echo", "x", 1);
        t[i].flags = P2C2R_TASK_NOCACHE; /* six runs, not one coalesced run (echo is cacheable) */
    }
    p2c2r_ticket tk[N];
    /* One SUBMIT_BATCH frame: the coordinator processes its entries in one
     * go, so at most one runs on the peer and one waits in the queue. */
    int rc = p2c2r_client_submit_batch(c, t, N, tk);
    H_REQUIRE(rc == 0, "submit_batch: %s", h_err(rc));
    int ok = 0, full = 0;
    for (int i = 0; i < N; i++) {
        struct p2c2r_result r = h_wait(c, tk[i], 20000);
        if (r.status == 0)
            ok++;
        else if (H_CHECK(r.status == P2C2R_EQUEUEFULL, "batch entry %d: %s", i, h_err(r.status)))
            full++;
        p2c2r_result_release(&r);
    }
    H_CHECK(full >= N - 2 && ok >= 1, "%d of %d refused with EQUEUEFULL (%d ran), expected at least %d", full, N,
            ok, N - 2);
    struct p2c2r_pressure p = pressure(c);
    H_CHECK(p.rejected_queue_full == (uint64_t)full && p.rejected_deadline == 0,
            "pressure: queue_full %llu deadline %llu, expected %d and 0", (unsigned long long)p.rejected_queue_full,
            (unsigned long long)p.rejected_deadline, full);
    H_CHECK(fabs(p.reject_ratio - (double)full / N) < 1e-9, "reject_ratio %g after %d of %d refused",
            p.reject_ratio, full, N);
    H_CHECK(p.inflight == 0 && p.max_inflight > 0, "inflight %u max_inflight %u", p.inflight, p.max_inflight);
    p2c2r_client_close(c);
}

/* ---- the CLI --------------------------------------------------------------------- */

static void test_cli(const char *addr)
{
    const char *bin = h_cli_bin();
    if (!bin) {
        h_log("no p2c2r binary given: CLI checks skipped");
        return;
    }
    h_phase("CLI: submit --need-gpu is refused, exit 1, reason and advice on stderr");
    char in[320];
    h_path(in, sizeof(in), "cli-input.bin");
    uint8_t data[1000];
    h_fill(data, sizeof(data), 77);
    H_REQUIRE(h_write_file(in, data, sizeof(data)) == 0, "write %s", in);
    struct h_cmd r = h_run_cmd(NULL, (const char *[]){bin, "submit", "sha256", "--need-gpu", "-i", in, "-c", addr, NULL});
    H_CHECK(r.code == 1, "submit --need-gpu: exit %d, expected 1; stderr: %s", r.code, r.err);
    H_CHECK(strstr(r.err, "EUNSUPPORTED") && strstr(r.err, "GPU") && strstr(r.err, "--need-gpu"),
            "submit --need-gpu: stderr should give the code, name the GPU and the option: %s", r.err);
    H_CHECK(r.out[0] == '\0', "a refused task printed on stdout: %s", r.out);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){bin, "submit", "sha256", "--min-cores", "65535", "--json", "-i", in, "-c",
                                   addr, NULL});
    json_t *j = h_json_parse(r.out);
    const char *why = h_json_str(j, "error");
    H_CHECK(r.code == 1 && h_json_str_is(j, "status", "EUNSUPPORTED") && why && strstr(why, "cores"),
            "submit --min-cores 65535 --json: exit %d, stdout %s", r.code, r.out);
    json_decref(j);
    h_cmd_free(&r);

    h_phase("CLI: bad --priority / --min-mem are usage errors");
    r = h_run_cmd(NULL, (const char *[]){bin, "submit", "echo", "--priority", "urgent", "-i", in, "-c", addr, NULL});
    H_CHECK(r.code == 2 && strstr(r.err, "urgent") && strstr(r.err, "realtime"),
            "submit --priority urgent: exit %d, stderr %s", r.code, r.err);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, (const char *[]){bin, "submit", "echo", "--min-mem", "lots", "-i", in, "-c", addr, NULL});
    H_CHECK(r.code == 2 && strstr(r.err, "lots"), "submit --min-mem lots: exit %d, stderr %s", r.code, r.err);
    h_cmd_free(&r);

    h_phase("CLI: submit --json says cached; --no-cache runs it");
    const char *sub[] = {bin, "submit", "sha256", "--priority", "realtime", "--min-mem", "1K", "--json", "-i",
                         in, "-c", addr, NULL};
    r = h_run_cmd(NULL, sub);
    j = h_json_parse(r.out);
    H_CHECK(r.code == 0 && h_json_bool(j, "cached") == 0 && h_json_bool(j, "hedged") == 0,
            "first submit --json: exit %d, stdout %s, stderr %s", r.code, r.out, r.err);
    json_decref(j);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, sub);
    j = h_json_parse(r.out);
    H_CHECK(r.code == 0 && h_json_bool(j, "cached") == 1, "repeated submit --json: exit %d, stdout %s", r.code,
            r.out);
    json_decref(j);
    h_cmd_free(&r);
    char outp[320];
    h_path(outp, sizeof(outp), "cli-result.bin");
    r = h_run_cmd(NULL, (const char *[]){bin, "submit", "sha256", "-i", in, "-o", outp, "-c", addr, NULL});
    H_CHECK(r.code == 0 && strstr(r.err, "cached"), "repeated submit -o: exit %d, stderr should say cached: %s",
            r.code, r.err);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, (const char *[]){bin, "submit", "sha256", "--no-cache", "--json", "-i", in, "-c", addr, NULL});
    j = h_json_parse(r.out);
    H_CHECK(r.code == 0 && h_json_bool(j, "cached") == 0, "submit --no-cache --json: exit %d, stdout %s", r.code,
            r.out);
    json_decref(j);
    h_cmd_free(&r);

    h_phase("CLI: stats --json parses; stats shows the scheduler's figures");
    r = h_run_cmd(NULL, (const char *[]){bin, "stats", "--json", "-c", addr, NULL});
    H_CHECK(r.code == 0, "stats --json: exit %d, stderr %s", r.code, r.err);
    j = h_json_parse(r.out);
    H_CHECK(j != NULL, "stats --json is not one JSON document: %.800s", r.out);
    H_CHECK(h_json_int(j, "counters.hedge_wins") >= 0 && h_json_int(j, "counters.cache_hits") >= 2 &&
                h_json_int(j, "counters.rejected_capability") >= 3,
            "stats --json counters: %.800s", r.out);
    H_CHECK(json_is_array(h_json_at(j, "types[0].queued_by_class")) && h_json_at(j, "peers[0].trust") != NULL,
            "stats --json is not the expected JSON (types[0].queued_by_class a list, peers[0].trust): %.800s",
            r.out);
    json_decref(j);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, (const char *[]){bin, "stats", "-c", addr, NULL});
    H_CHECK(r.code == 0, "stats: exit %d, stderr %s", r.code, r.err);
    static const char *const want[] = {"peers_connected", "hedge_wins", "quarantines", "cache_hits",
                                       "coalesced", "rejected_deadline", "rejected_capability", "retries",
                                       "attempt_p50", "attempt_p95", "rt/int/bg", "cacheable", "trust",
                                       "fail_rate", "rtt", "sha256"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        H_CHECK(strstr(r.out, want[i]) != NULL, "stats (text) should show %s:\n%s", want[i], r.out);
    H_CHECK(r.out[0] != '{', "stats (text) printed JSON: %.200s", r.out);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, (const char *[]){bin, "stats", "extra", "-c", addr, NULL});
    H_CHECK(r.code == 2 && strstr(r.err, "extra"), "stats extra: exit %d, stderr %s", r.code, r.err);
    h_cmd_free(&r);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "client_sched");
    part_fake();

    h_phase("start p2c2rd and a peer (echo, sha256; no GPU)");
    /* --verify none: with one peer nothing can be verified, and the cache
     * (tested here through the API and the CLI) holds verified results
     * only under the other policies (test_verify.c). */
    const char *cargs[] = {"--verify", "none", NULL};
    h_coord_start(NULL, cargs);
    h_peer_start("peer", 2, "echo,sha256", NULL);
    h_wait_peers(1, NULL);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    p2c2r_client *c = connect_to(addr, "client_sched");
    test_capabilities(c);
    test_cache(c);
    test_deadline(c);
    p2c2r_client_close(c);
    test_cli(addr);
    test_queue_full();
    return h_finish();
}
