/* test_metrics_http.c - unit tests for the metrics HTTP server
 * (src/coord/metrics_http.c).
 *
 * First the request-head parser alone: valid heads at every split point
 * (each strict prefix asks for more, on a buffer of exactly that size, so
 * AddressSanitizer sees any read past it), invalid ones (an error, once
 * reported, stays reported as bytes arrive), the size limit at its exact
 * boundary, and the fields it reports.
 *
 * Then the server on a real libuv loop on 127.0.0.1:0, in the main thread,
 * driven by a client thread with non-blocking sockets and bounded waits:
 * every status the header lists, keep-alive and close for HTTP/1.1 and 1.0,
 * pipelining (a flood of requests sent while the answers are read), HEAD,
 * bodies from empty to over MHTTP_BODY_MAX checked byte for byte against
 * what the render callback produced and against Content-Length, slow
 * readers (nothing more is read while an answer waits), the timeouts, the
 * connection cap, the cap on held answer bytes, and mhttp_stop with
 * connections in every state.  The client reads the server's counters
 * through a uv_async round trip, so only the loop thread touches the
 * server.  Start failures (bad address, port in use) run on a loop of
 * their own, which must close cleanly.
 *
 * P2C2R_TEST_VERBOSE=1 prints the server's debug log and a few figures. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "check.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/util.h"
#include "coord/metrics_http.h"
#include "p2c2r/error.h"

/* Every wait on the network gives up after this long. */
#define WAIT_MS 10000

/* ---- the parser ------------------------------------------------------------ */

/* Parses the first n bytes of s from a heap copy of exactly n bytes. */
static int parse_exact(const char *s, size_t n, struct mhttp_req *r)
{
    char *c = malloc(n ? n : 1);
    if (!c)
        abort();
    memcpy(c, s, n);
    int rc = mhttp_parse_head(c, n, r);
    /* The views point into the copy: rebase them onto s for the caller. */
    if (rc > 0) {
        r->method = s + (r->method - c);
        r->target = s + (r->target - c);
    }
    free(c);
    return rc;
}

struct valid_case {
    const char *head;
    const char *method;
    const char *target;
    int method_id, major, minor;
    unsigned flags;
    uint64_t content_length;
};

static const struct valid_case valid_cases[] = {
    {"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n", "GET", "/metrics",
     MHTTP_METHOD_GET, 1, 1, 0, 0},
    /* What Prometheus sends. */
    {"GET /metrics HTTP/1.1\r\nHost: localhost:9090\r\nUser-Agent: Prometheus/2.45.0\r\n"
     "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
     "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n"
     "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n",
     "GET", "/metrics", MHTTP_METHOD_GET, 1, 1, 0, 0},
    {"HEAD / HTTP/1.0\r\n\r\n", "HEAD", "/", MHTTP_METHOD_HEAD, 1, 0, 0, 0},
    /* Bare LF line ends, leading empty lines, OWS around values. */
    {"\r\n\nGET /metrics?x=1 HTTP/1.1\nConnection:   close  \n\n", "GET", "/metrics?x=1",
     MHTTP_METHOD_GET, 1, 1, MHTTP_REQ_CLOSE, 0},
    {"GET / HTTP/1.0\r\nconnection: Keep-Alive, Upgrade\r\n\r\n", "GET", "/", MHTTP_METHOD_GET,
     1, 0, MHTTP_REQ_KEEP_ALIVE | MHTTP_REQ_UPGRADE, 0},
    {"GET / HTTP/1.1\r\nConnection: keep-alive,CLOSE\r\nConnection: xclose\r\n\r\n", "GET", "/",
     MHTTP_METHOD_GET, 1, 1, MHTTP_REQ_CLOSE | MHTTP_REQ_KEEP_ALIVE, 0},
    {"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 005\r\n\r\n", "POST",
     "/metrics", MHTTP_METHOD_OTHER, 1, 1, MHTTP_REQ_LENGTH, 5},
    {"GET / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\n", "GET", "/",
     MHTTP_METHOD_GET, 1, 1, MHTTP_REQ_LENGTH, UINT64_MAX},
    {"GET / HTTP/1.1\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n", "GET", "/",
     MHTTP_METHOD_GET, 1, 1, MHTTP_REQ_LENGTH | MHTTP_REQ_TE, 0},
    /* Methods are case-sensitive; any token is one. */
    {"get / HTTP/1.1\r\n\r\n", "get", "/", MHTTP_METHOD_OTHER, 1, 1, 0, 0},
    {"M-SEARCH * HTTP/1.1\r\n\r\n", "M-SEARCH", "*", MHTTP_METHOD_OTHER, 1, 1, 0, 0},
    /* Any one-digit version parses (the server answers 505). */
    {"GET / HTTP/2.0\r\n\r\n", "GET", "/", MHTTP_METHOD_GET, 2, 0, 0, 0},
    {"GET / HTTP/0.9\r\n\r\n", "GET", "/", MHTTP_METHOD_GET, 0, 9, 0, 0},
    /* Values: tab, obs-text, empty; names: every tchar. */
    {"GET / HTTP/1.1\r\nX-A: a\tb \xc3\xa9\xff\r\nX-Empty:\r\n!#$%&'*+-.^_`|~09azAZ: v\r\n\r\n",
     "GET", "/", MHTTP_METHOD_GET, 1, 1, 0, 0},
    {"GET http://h/metrics HTTP/1.1\r\n\r\n", "GET", "http://h/metrics", MHTTP_METHOD_GET, 1, 1,
     0, 0},
};

static void test_parse_valid(void)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_cases); i++) {
        const struct valid_case *v = &valid_cases[i];
        size_t len = strlen(v->head);
        struct mhttp_req r;
        memset(&r, 0xa5, sizeof(r));
        int rc = parse_exact(v->head, len, &r);
        if (!CHECK(rc == (int)len)) {
            fprintf(stderr, "  case %zu: rc=%d len=%zu\n", i, rc, len);
            continue;
        }
        CHECK_MEM(r.method, r.method_len, v->method, strlen(v->method));
        CHECK_MEM(r.target, r.target_len, v->target, strlen(v->target));
        CHECK_EQ(r.method_id, v->method_id);
        CHECK_EQ(r.major, v->major);
        CHECK_EQ(r.minor, v->minor);
        CHECK_EQU(r.flags, v->flags);
        CHECK_EQU(r.content_length, v->content_length);

        /* Every split point: a strict prefix asks for more and leaves *out
         * alone. */
        unsigned bad = 0;
        for (size_t k = 0; k < len; k++) {
            struct mhttp_req r2;
            memset(&r2, 0x5a, sizeof(r2));
            struct mhttp_req before = r2;
            if (parse_exact(v->head, k, &r2) != 0 || memcmp(&r2, &before, sizeof(r2)) != 0)
                bad++;
        }
        CHECK_EQU(bad, 0);

        /* Whatever follows (a pipelined request, garbage) does not change
         * where the head ends. */
        char more[2048];
        snprintf(more, sizeof(more), "%s%s", v->head, "GET / HTTP/1.1\r\n\r\n\x01\x02");
        CHECK_EQ(parse_exact(more, strlen(more), &r), (int)len);
    }
}

static const char *const invalid_cases[] = {
    "GET  / HTTP/1.1\r\n\r\n",         /* two spaces */
    " GET / HTTP/1.1\r\n\r\n",         /* leading space */
    "GET / HTTP/1.1 \r\n\r\n",         /* trailing space */
    "GET /a b HTTP/1.1\r\n\r\n",       /* space in the target */
    "GET / HTTP/11\r\n\r\n",           /* no dot */
    "GET / http/1.1\r\n\r\n",          /* lower case */
    "GET / HTTP/1.10\r\n\r\n",         /* two digits */
    "GET / HTTP/1.1\rX\r\n\r\n",       /* CR without LF */
    "GET /\x01 HTTP/1.1\r\n\r\n",      /* control character in the target */
    "GET /\x80 HTTP/1.1\r\n\r\n",      /* non-ASCII in the target */
    "G(T / HTTP/1.1\r\n\r\n",          /* not a token */
    "GET\t/ HTTP/1.1\r\n\r\n",         /* tab for space */
    "\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\n", /* a TLS hello */
    "GET / HTTP/1.1\r\nHost : x\r\n\r\n",          /* space before the colon */
    "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", /* obs-fold */
    "GET / HTTP/1.1\r\n Host: x\r\n\r\n",          /* white space before a name */
    "GET / HTTP/1.1\r\n: x\r\n\r\n",               /* empty name */
    "GET / HTTP/1.1\r\nNoColon\r\n\r\n",
    "GET / HTTP/1.1\r\nX: a\x01\x62\r\n\r\n",      /* control character in a value */
    "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",          /* DEL in a value */
    "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n",           /* CR without LF in a value */
    "GET / HTTP/1.1\r\nHost: x\r\n\r\r\n",         /* CR without LF at the end */
    "GET / HTTP/1.1\r\nContent-Length: \r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: +1\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 0x10\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1,1\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n",
    "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
};

static void test_parse_invalid(void)
{
    for (size_t i = 0; i < ARRAY_LEN(invalid_cases); i++) {
        const char *s = invalid_cases[i];
        size_t len = strlen(s);
        struct mhttp_req r;
        memset(&r, 0x77, sizeof(r));
        struct mhttp_req before = r;
        int rc = parse_exact(s, len, &r);
        if (!CHECK(rc == P2C2R_EPROTO))
            fprintf(stderr, "  invalid case %zu: rc=%d\n", i, rc);
        CHECK(memcmp(&r, &before, sizeof(r)) == 0);
        /* Each prefix is either "more" or the error, and once the error
         * shows, it stays. */
        unsigned bad = 0;
        int seen_error = 0;
        for (size_t k = 0; k <= len; k++) {
            int rk = parse_exact(s, k, &r);
            if (rk == P2C2R_EPROTO)
                seen_error = 1;
            else if (rk != 0 || seen_error)
                bad++;
        }
        if (!CHECK(bad == 0))
            fprintf(stderr, "  invalid case %zu: prefixes disagree\n", i);
    }
}

/* A head of exactly n bytes (n well over 200): lead, a request line, X:
 * fields padding it, the empty line.  Returns a heap string. */
static char *head_of_len(size_t n, const char *lead)
{
    static const char req[] = "GET /metrics HTTP/1.1\r\n";
    char *h = malloc(n + 1);
    if (!h)
        abort();
    size_t o = strlen(lead);
    memcpy(h, lead, o);
    memcpy(h + o, req, sizeof(req) - 1);
    o += sizeof(req) - 1;
    size_t left = n - o - 2;
    while (left > 0) {
        /* Fields of 100 bytes, then one of what is left (over 100). */
        size_t f = left > 200 ? 100 : left;
        memcpy(h + o, "X: ", 3);
        memset(h + o + 3, 'a', f - 5);
        memcpy(h + o + f - 2, "\r\n", 2);
        o += f;
        left -= f;
    }
    memcpy(h + o, "\r\n", 2);
    o += 2;
    h[o] = '\0';
    if (o != n)
        abort();
    return h;
}

static void test_parse_limits(void)
{
    struct mhttp_req r;
    /* The largest head there may be, then one byte more. */
    char *h = head_of_len(MHTTP_HEAD_MAX, "");
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX, &r), (int)MHTTP_HEAD_MAX);
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX - 1, &r), 0);
    free(h);
    h = head_of_len(MHTTP_HEAD_MAX + 1, "");
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX + 1, &r), P2C2R_ETOOBIG);
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX, &r), P2C2R_ETOOBIG);
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX - 1, &r), 0);
    free(h);
    /* Leading empty lines count towards the limit. */
    h = head_of_len(MHTTP_HEAD_MAX + 2, "\r\n");
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX + 2, &r), P2C2R_ETOOBIG);
    free(h);
    h = head_of_len(MHTTP_HEAD_MAX, "\n\n");
    CHECK_EQ(parse_exact(h, MHTTP_HEAD_MAX, &r), (int)MHTTP_HEAD_MAX);
    free(h);
    /* Nothing but empty lines, or a request line that never ends. */
    char *big = malloc(3 * MHTTP_HEAD_MAX);
    if (!big)
        abort();
    for (size_t k = 0; k < 3 * MHTTP_HEAD_MAX; k += 2)
        memcpy(big + k, "\r\n", 2);
    CHECK_EQ(parse_exact(big, 3 * MHTTP_HEAD_MAX, &r), P2C2R_ETOOBIG);
    CHECK_EQ(parse_exact(big, MHTTP_HEAD_MAX - 2, &r), 0);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 3 * MHTTP_HEAD_MAX - 5);
    CHECK_EQ(parse_exact(big, 3 * MHTTP_HEAD_MAX, &r), P2C2R_ETOOBIG);
    CHECK_EQ(parse_exact(big, MHTTP_HEAD_MAX - 1, &r), 0);
    /* An error within the limit is reported as such, not as too big. */
    big[100] = ' ';
    big[101] = ' ';
    CHECK_EQ(parse_exact(big, 3 * MHTTP_HEAD_MAX, &r), P2C2R_EPROTO);
    free(big);
    /* Empty input asks for more. */
    CHECK_EQ(mhttp_parse_head("", 0, &r), 0);
}

/* ---- the server under test --------------------------------------------------- */

/* The render callback writes "seq=NNNNNNNNNN size=NNNNNNNNNN\n" and then
 * `size` filler bytes, a rotation of a fixed pattern that depends on seq,
 * so the client can check every byte it receives.  want_size is set by the
 * client thread before each request whose body matters; SIZE_MAX renders
 * nothing at all. */
#define LINE_LEN 31u
#define PAT_LEN 65521u /* prime, so rotations by seq differ */
#define CHUNK 4096u

static uint8_t pattern[PAT_LEN];
static _Atomic size_t want_size;
static _Atomic unsigned long renders;
/* Set by render (on the loop thread, which must not touch the CHECK
 * counters) when the server broke the callback's contract. */
static _Atomic int render_bad;
/* Loop iterations, counted by a check handle, and the most renders seen in
 * one iteration since the client last reset it: how the server spreads
 * pipelined answers over the loop. */
static uv_check_t iter_check;
static unsigned long iteration, render_iter, renders_in_iter;
static _Atomic unsigned long max_renders_per_iter;

static void on_iter_check(uv_check_t *h)
{
    (void)h;
    iteration++;
}

static void pattern_init(void)
{
    struct rng r = {42};
    for (size_t i = 0; i < PAT_LEN; i++)
        pattern[i] = (uint8_t)rng_next(&r);
}

static size_t filler_start(unsigned long seq) { return (size_t)(seq * 7919u % PAT_LEN); }

static void render(void *arg, struct buf *o)
{
    (void)arg;
    unsigned long seq = ++renders;
    size_t size = atomic_load(&want_size);
    if (render_iter != iteration) {
        render_iter = iteration;
        renders_in_iter = 0;
    }
    if (++renders_in_iter > atomic_load(&max_renders_per_iter))
        atomic_store(&max_renders_per_iter, renders_in_iter);
    if (buf_used(o) != 0)
        atomic_store(&render_bad, 1);
    if (size == SIZE_MAX)
        return;
    char line[64];
    if (snprintf(line, sizeof(line), "seq=%010lu size=%010zu\n", seq, size) != LINE_LEN)
        atomic_store(&render_bad, 1);
    if (buf_append(o, line, LINE_LEN) != 0)
        return;
    size_t p = filler_start(seq), left = size;
    while (left > 0) {
        size_t n = left < CHUNK ? left : CHUNK;
        if (n > PAT_LEN - p)
            n = PAT_LEN - p;
        int rc = buf_append(o, pattern + p, n);
        if (rc != 0) {
            /* Only the cap may refuse, and only past MHTTP_BODY_MAX. */
            if (rc != P2C2R_ETOOBIG || buf_used(o) + n <= MHTTP_BODY_MAX)
                atomic_store(&render_bad, 1);
            return;
        }
        p = (p + n) % PAT_LEN;
        left -= n;
    }
}

/* The loop thread's side: the server, and two async handles through which
 * the client asks for the counters and for the stop. */
static uv_loop_t loop;
static struct mhttp *server;
static uv_async_t stats_async, stop_async;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int stats_wanted, stats_ready, stopped;
static struct mhttp_stats stats_snap;
static int port;

static void on_stats_async(uv_async_t *a)
{
    (void)a;
    pthread_mutex_lock(&mu);
    if (stats_wanted && server) {
        mhttp_stats(server, &stats_snap);
        stats_wanted = 0;
        stats_ready = 1;
        pthread_cond_broadcast(&cv);
    }
    pthread_mutex_unlock(&mu);
}

static void on_stop_async(uv_async_t *a)
{
    (void)a;
    mhttp_stop(server);
    pthread_mutex_lock(&mu);
    server = NULL;
    stopped = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    uv_close((uv_handle_t *)&stats_async, NULL);
    uv_close((uv_handle_t *)&stop_async, NULL);
    uv_close((uv_handle_t *)&iter_check, NULL);
}

/* ---- the client --------------------------------------------------------------- */

static uint64_t ms_now(void) { return now_us() / 1000; }

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Waits on cv for *flag (mu held) until WAIT_MS pass; returns *flag. */
static int wait_flag(int *flag)
{
    struct timespec end;
    clock_gettime(CLOCK_REALTIME, &end);
    end.tv_sec += WAIT_MS / 1000;
    while (!*flag && pthread_cond_timedwait(&cv, &mu, &end) == 0) {
    }
    return *flag;
}

static struct mhttp_stats get_stats(void)
{
    struct mhttp_stats s = {0};
    pthread_mutex_lock(&mu);
    stats_wanted = 1;
    stats_ready = 0;
    uv_async_send(&stats_async);
    if (wait_flag(&stats_ready))
        s = stats_snap;
    else
        CHECK(!"the loop did not answer for its counters");
    pthread_mutex_unlock(&mu);
    return s;
}

/* Polls the counters until ok(s) holds or WAIT_MS pass; returns the last
 * snapshot, and whether ok held, in *held. */
static struct mhttp_stats stats_until(int (*ok)(const struct mhttp_stats *, uint64_t),
                                      uint64_t arg, int *held)
{
    uint64_t end = ms_now() + WAIT_MS;
    struct mhttp_stats s;
    for (;;) {
        s = get_stats();
        if (ok(&s, arg)) {
            *held = 1;
            return s;
        }
        if (ms_now() >= end) {
            *held = 0;
            return s;
        }
        sleep_ms(10);
    }
}

static int conns_are(const struct mhttp_stats *s, uint64_t n) { return s->conns == n; }
static int busy_are(const struct mhttp_stats *s, uint64_t n) { return s->busy == n; }
static int answers_at_least(const struct mhttp_stats *s, uint64_t n) { return s->answers >= n; }
static int held_at_least(const struct mhttp_stats *s, uint64_t n) { return s->held >= n; }
static int held_is(const struct mhttp_stats *s, uint64_t n) { return s->held == n; }

struct cl {
    int fd;
    uint8_t *buf;
    size_t len, cap;
    int closed; /* EOF or a reset was seen */
};

static int cl_open(struct cl *c, int rcvbuf)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return -1;
    if (rcvbuf)
        setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    return 0;
}

static void cl_close(struct cl *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Reads what is there into c->buf (discarding it when keep is 0). */
static void cl_take(struct cl *c, int keep)
{
    for (;;) {
        if (c->cap - c->len < 65536) {
            size_t cap = c->cap ? c->cap * 2 : 1 << 17;
            uint8_t *b = realloc(c->buf, cap);
            if (!b)
                abort();
            c->buf = b;
            c->cap = cap;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
        if (n > 0) {
            if (keep)
                c->len += (size_t)n;
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            c->closed = 1;
        return;
    }
}

/* Waits up to ms for input (or the end); returns 0 when nothing came. */
static int cl_wait(struct cl *c, int ms, int keep)
{
    struct pollfd p = {c->fd, POLLIN, 0};
    if (poll(&p, 1, ms) <= 0)
        return 0;
    size_t before = c->len;
    cl_take(c, keep);
    return c->len > before || c->closed || !keep;
}

/* Sends all of s, reading (and keeping) input meanwhile so that a server
 * that answers while we send cannot deadlock us.  Returns 0, or -1 when the
 * connection ends or WAIT_MS pass first. */
static int cl_send(struct cl *c, const void *s, size_t n)
{
    const uint8_t *p = s;
    uint64_t end = ms_now() + WAIT_MS;
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        uint64_t now = ms_now();
        if (now >= end)
            return -1;
        struct pollfd pf = {c->fd, POLLIN | POLLOUT, 0};
        if (poll(&pf, 1, (int)(end - now)) > 0 && (pf.revents & (POLLIN | POLLHUP | POLLERR)))
            cl_take(c, 1);
        if (c->closed)
            return -1;
    }
    return 0;
}

static int cl_sends(struct cl *c, const char *s) { return cl_send(c, s, strlen(s)); }

struct resp {
    int status;
    long long clen; /* -1 when absent */
    char conn[32], ctype[64], allow[32];
    uint8_t *body;
    size_t body_len;
};

static void resp_free(struct resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void header_value(const char *line, size_t n, char *dst, size_t cap)
{
    const char *colon = memchr(line, ':', n);
    size_t k = (size_t)(colon - line) + 1;
    while (k < n && line[k] == ' ')
        k++;
    size_t v = n - k < cap - 1 ? n - k : cap - 1;
    memcpy(dst, line + k, v);
    dst[v] = '\0';
}

/* Reads one answer (its head only for a HEAD request).  Returns 0, or -1
 * when the connection ends or WAIT_MS pass before it is complete. */
static int cl_response(struct cl *c, int head_only, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    r->clen = -1;
    uint64_t end = ms_now() + WAIT_MS;
    size_t hl = 0;
    for (;;) {
        if (!hl && c->len >= 4) {
            for (size_t k = 0; k + 4 <= c->len; k++)
                if (memcmp(c->buf + k, "\r\n\r\n", 4) == 0) {
                    hl = k + 4;
                    break;
                }
            if (hl) {
                const char *h = (const char *)c->buf;
                if (hl < 13 || memcmp(h, "HTTP/1.1 ", 9) != 0)
                    return -1;
                r->status = atoi(h + 9);
                const char *ln = memchr(h, '\n', hl) + 1;
                while (ln < h + hl - 2) {
                    const char *e = memchr(ln, '\r', (size_t)(h + hl - ln));
                    if (!e)
                        return -1;
                    size_t n = (size_t)(e - ln);
                    char val[64];
                    if (n > 15 && strncasecmp(ln, "Content-Length:", 15) == 0) {
                        header_value(ln, n, val, sizeof(val));
                        r->clen = atoll(val);
                    } else if (n > 11 && strncasecmp(ln, "Connection:", 11) == 0) {
                        header_value(ln, n, r->conn, sizeof(r->conn));
                    } else if (n > 13 && strncasecmp(ln, "Content-Type:", 13) == 0) {
                        header_value(ln, n, r->ctype, sizeof(r->ctype));
                    } else if (n > 6 && strncasecmp(ln, "Allow:", 6) == 0) {
                        header_value(ln, n, r->allow, sizeof(r->allow));
                    }
                    ln = e + 2;
                }
                if (r->clen < 0)
                    return -1;
            }
        }
        if (hl) {
            size_t want = hl + (head_only ? 0 : (size_t)r->clen);
            if (c->len >= want) {
                r->body_len = want - hl;
                r->body = malloc(r->body_len + 1);
                if (!r->body)
                    abort();
                memcpy(r->body, c->buf + hl, r->body_len);
                memmove(c->buf, c->buf + want, c->len - want);
                c->len -= want;
                return 0;
            }
        }
        if (c->closed)
            return -1;
        uint64_t now = ms_now();
        if (now >= end)
            return -1;
        cl_wait(c, (int)(end - now), 1);
    }
}

/* Whether the server ends the connection (EOF or reset) within ms; input
 * meanwhile is read and dropped. */
static int cl_ends_within(struct cl *c, unsigned ms)
{
    uint64_t end = ms_now() + ms;
    c->len = 0;
    while (!c->closed) {
        uint64_t now = ms_now();
        if (now >= end)
            return 0;
        cl_wait(c, (int)(end - now), 0);
    }
    return 1;
}

/* Checks a 200 body: its own line names its seq and size, and every byte
 * is what render wrote.  A body cut by MHTTP_BODY_MAX must be a prefix of
 * what was asked, cut within the last chunk. */
static int body_ok(const struct resp *r, size_t size)
{
    if (r->status != 200 || (long long)r->body_len != r->clen)
        return 0;
    if (size == SIZE_MAX)
        return r->body_len == 0;
    if (r->body_len < LINE_LEN)
        return 0;
    unsigned long seq;
    size_t got_size;
    char line[LINE_LEN + 1];
    memcpy(line, r->body, LINE_LEN);
    line[LINE_LEN] = '\0';
    if (sscanf(line, "seq=%lu size=%zu", &seq, &got_size) != 2 || got_size != size ||
        line[LINE_LEN - 1] != '\n')
        return 0;
    size_t fill = r->body_len - LINE_LEN;
    if (LINE_LEN + size <= MHTTP_BODY_MAX) {
        if (fill != size)
            return 0;
    } else if (r->body_len > MHTTP_BODY_MAX || r->body_len + CHUNK <= MHTTP_BODY_MAX) {
        return 0;
    }
    size_t p = filler_start(seq);
    for (size_t k = 0; k < fill; k++) {
        if (r->body[LINE_LEN + k] != pattern[p])
            return 0;
        if (++p == PAT_LEN)
            p = 0;
    }
    return 1;
}

/* One request on c and its answer; returns the status, or -1. */
static int cl_get(struct cl *c, const char *req, int head_only, struct resp *r)
{
    if (cl_sends(c, req) != 0)
        return -1;
    if (cl_response(c, head_only, r) != 0)
        return -1;
    return r->status;
}

/* ---- the scenarios ----------------------------------------------------------- */

static const char get_req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";

static void test_statuses(void)
{
    struct cl c;
    struct resp r;
    if (!CHECK(cl_open(&c, 0) == 0))
        return;
    atomic_store(&want_size, 1000);
    /* 200 on /metrics and / (query ignored); keep-alive on HTTP/1.1. */
    CHECK_EQ(cl_get(&c, get_req, 0, &r), 200);
    CHECK(body_ok(&r, 1000));
    CHECK(strcmp(r.ctype, "text/plain; version=0.0.4; charset=utf-8") == 0);
    CHECK(r.conn[0] == '\0');
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "GET /?x=1&y HTTP/1.1\r\n\r\n", 0, &r), 200);
    CHECK(body_ok(&r, 1000));
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "GET /metrics?name[]=up HTTP/1.1\r\n\r\n", 0, &r), 200);
    resp_free(&r);
    /* HEAD: the real length, no body (the next answer starts right after
     * the head, or it would not parse). */
    unsigned long before = atomic_load(&renders);
    CHECK_EQ(cl_get(&c, "HEAD /metrics HTTP/1.1\r\n\r\n", 1, &r), 200);
    CHECK_EQ(r.clen, LINE_LEN + 1000);
    CHECK_EQU(atomic_load(&renders), before + 1);
    resp_free(&r);
    /* 404, 405 (with Allow) keep the connection. */
    CHECK_EQ(cl_get(&c, "GET /metricsx HTTP/1.1\r\n\r\n", 0, &r), 404);
    CHECK(r.clen > 0 && (long long)r.body_len == r.clen);
    CHECK(strcmp(r.ctype, "text/plain; charset=utf-8") == 0);
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "GET http://h/metrics HTTP/1.1\r\n\r\n", 0, &r), 404);
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "HEAD /nope HTTP/1.1\r\n\r\n", 1, &r), 404);
    CHECK(r.clen > 0);
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "POST /metrics HTTP/1.1\r\n\r\n", 0, &r), 405);
    CHECK(strcmp(r.allow, "GET, HEAD") == 0);
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "DELETE / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 0, &r), 405);
    resp_free(&r);
    CHECK_EQ(cl_get(&c, "get /metrics HTTP/1.1\r\n\r\n", 0, &r), 405);
    resp_free(&r);
    /* An empty body. */
    atomic_store(&want_size, SIZE_MAX);
    CHECK_EQ(cl_get(&c, get_req, 0, &r), 200);
    CHECK_EQ(r.clen, 0);
    CHECK(body_ok(&r, SIZE_MAX));
    resp_free(&r);
    atomic_store(&want_size, 10);
    CHECK_EQ(cl_get(&c, get_req, 0, &r), 200);
    CHECK(body_ok(&r, 10));
    resp_free(&r);
    /* Connection: close is honoured after the answer. */
    CHECK_EQ(cl_get(&c, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 0, &r), 200);
    CHECK(strcmp(r.conn, "close") == 0);
    CHECK(body_ok(&r, 10));
    resp_free(&r);
    CHECK(cl_ends_within(&c, WAIT_MS));
    cl_close(&c);

    /* Answers that end the connection. */
    uint64_t bad0 = get_stats().bad;
    unsigned nbad = 0;
    static const struct {
        const char *req;
        int status;
    } closing[] = {
        {"GET  / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 400},
        {"HEAD / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405},
        {"GET / HTTP/2.0\r\n\r\n", 505},
        {"GET / HTTP/0.9\r\n\r\n", 505},
        {"\x16\x03\x01\x02\x01\x01\x01\x01\xfc\x03\x03\n", 400},
        {"GET / HTTP/1.0\r\n\r\n", 200},
        {"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", 200},
    };
    for (size_t i = 0; i < ARRAY_LEN(closing); i++) {
        if (!CHECK(cl_open(&c, 0) == 0))
            return;
        /* An answer to HEAD has no body, whatever its status. */
        int head_only = strncmp(closing[i].req, "HEAD ", 5) == 0;
        int st = cl_get(&c, closing[i].req, head_only, &r);
        nbad += closing[i].status == 400 || closing[i].status == 505;
        if (!CHECK(st == closing[i].status))
            fprintf(stderr, "  closing case %zu: status %d\n", i, st);
        CHECK(strcmp(r.conn, "close") == 0);
        CHECK(r.clen > 0 && (long long)r.body_len == (head_only ? 0 : r.clen));
        resp_free(&r);
        /* Nothing more is answered: the connection ends. */
        cl_sends(&c, get_req);
        CHECK(cl_ends_within(&c, WAIT_MS));
        cl_close(&c);
    }

    /* 431: a head over the limit, sent whole or as a trickle of lines. */
    for (int trickle = 0; trickle < 2; trickle++) {
        if (!CHECK(cl_open(&c, 0) == 0))
            return;
        char *h = head_of_len(MHTTP_HEAD_MAX + 1, "");
        if (trickle) {
            /* In pieces of a few bytes, so the server sees it grow. */
            int ok = 1;
            for (size_t k = 0; k < MHTTP_HEAD_MAX + 1 && ok; k += 97)
                ok = cl_send(&c, h + k, MHTTP_HEAD_MAX + 1 - k < 97 ? MHTTP_HEAD_MAX + 1 - k : 97) == 0;
        } else {
            cl_send(&c, h, MHTTP_HEAD_MAX + 1);
        }
        free(h);
        CHECK_EQ(cl_response(&c, 0, &r), 0);
        CHECK_EQ(r.status, 431);
        CHECK(strcmp(r.conn, "close") == 0);
        resp_free(&r);
        CHECK(cl_ends_within(&c, WAIT_MS));
        cl_close(&c);
        nbad++;
    }
    CHECK_EQU(get_stats().bad - bad0, nbad);
    /* The largest head allowed is answered. */
    if (CHECK(cl_open(&c, 0) == 0)) {
        char *h = head_of_len(MHTTP_HEAD_MAX, "");
        atomic_store(&want_size, 5);
        CHECK_EQ(cl_get(&c, h, 0, &r), 200);
        CHECK(body_ok(&r, 5));
        resp_free(&r);
        free(h);
        cl_close(&c);
    }

    /* HTTP/1.0 with keep-alive stays open and says so. */
    if (CHECK(cl_open(&c, 0) == 0)) {
        for (int i = 0; i < 3; i++) {
            CHECK_EQ(cl_get(&c, "GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", 0, &r),
                     200);
            CHECK(strcmp(r.conn, "keep-alive") == 0);
            CHECK(body_ok(&r, 5));
            resp_free(&r);
        }
        cl_close(&c);
    }

    /* A request sent a byte at a time, with leading empty lines and bare
     * LFs, is answered once complete. */
    if (CHECK(cl_open(&c, 0) == 0)) {
        static const char slow[] = "\r\n\nGET /metrics HTTP/1.1\nHost: x\r\nA: b\n\r\n";
        for (size_t k = 0; k < sizeof(slow) - 1; k++) {
            cl_send(&c, slow + k, 1);
            if (k % 8 == 0)
                sleep_ms(1);
        }
        CHECK_EQ(cl_response(&c, 0, &r), 0);
        CHECK_EQ(r.status, 200);
        CHECK(body_ok(&r, 5));
        resp_free(&r);
        cl_close(&c);
    }
}

/* Pipelined requests are answered in order, and a flood of them is answered
 * in full while we keep sending. */
static void test_pipelining(void)
{
    struct cl c;
    struct resp r;
    if (!CHECK(cl_open(&c, 0) == 0))
        return;
    atomic_store(&want_size, 300);
    const char *three = "GET /metrics HTTP/1.1\r\n\r\n"
                        "HEAD / HTTP/1.1\r\n\r\n"
                        "GET /nope HTTP/1.1\r\n\r\n"
                        "GET / HTTP/1.1\r\n\r\n";
    CHECK_EQ(cl_sends(&c, three), 0);
    CHECK_EQ(cl_response(&c, 0, &r), 0);
    CHECK(body_ok(&r, 300));
    resp_free(&r);
    CHECK_EQ(cl_response(&c, 1, &r), 0);
    CHECK_EQ(r.status, 200);
    CHECK_EQ(r.clen, LINE_LEN + 300);
    resp_free(&r);
    CHECK_EQ(cl_response(&c, 0, &r), 0);
    CHECK_EQ(r.status, 404);
    resp_free(&r);
    CHECK_EQ(cl_response(&c, 0, &r), 0);
    CHECK(body_ok(&r, 300));
    resp_free(&r);

    /* A flood: 2000 requests (52 KB, far over the head limit) in one go,
     * answered in full and in order, yet a few per loop iteration at most
     * (one as a read brings them in, one as the previous answer is taken,
     * one from the queue of deferred ones), not a read's worth at once. */
    atomic_store(&max_renders_per_iter, 0);
    enum { N = 2000 };
    size_t one = strlen("GET /metrics HTTP/1.1\r\n\r\n");
    char *flood = malloc(N * one);
    if (!flood)
        abort();
    for (size_t i = 0; i < N; i++)
        memcpy(flood + i * one, "GET /metrics HTTP/1.1\r\n\r\n", one);
    CHECK_EQ(cl_send(&c, flood, N * one), 0);
    free(flood);
    unsigned ok = 0;
    unsigned long last_seq = 0;
    int ordered = 1;
    for (size_t i = 0; i < N; i++) {
        if (cl_response(&c, 0, &r) != 0)
            break;
        if (body_ok(&r, 300)) {
            ok++;
            unsigned long seq = strtoul((const char *)r.body + 4, NULL, 10);
            ordered &= seq > last_seq;
            last_seq = seq;
        }
        resp_free(&r);
    }
    CHECK_EQU(ok, N);
    CHECK(ordered);
    unsigned long most = atomic_load(&max_renders_per_iter);
    /* Typically 1 or 2; reads that happen to end exactly between requests
     * could add a few.  Answering all that one read brought would give
     * hundreds. */
    if (!CHECK(most >= 1 && most <= 8))
        fprintf(stderr, "  %lu answers in one loop iteration\n", most);
    if (getenv("P2C2R_TEST_VERBOSE"))
        fprintf(stderr, "  at most %lu answers in one loop iteration\n", most);
    /* The connection is still good. */
    CHECK_EQ(cl_get(&c, get_req, 0, &r), 200);
    resp_free(&r);
    cl_close(&c);
}

/* Big bodies arrive whole, and one over MHTTP_BODY_MAX is cut at it with a
 * Content-Length that says so.  A reader that does not read makes the
 * server hold one answer and read nothing more; it gets everything once it
 * reads. */
static void test_bodies_and_slow_readers(void)
{
    struct cl c;
    struct resp r;
    if (!CHECK(cl_open(&c, 0) == 0))
        return;
    static const size_t sizes[] = {0, 1, CHUNK - LINE_LEN, 100000, 3u << 20,
                                   MHTTP_BODY_MAX - LINE_LEN, MHTTP_BODY_MAX, 9u << 20};
    for (size_t i = 0; i < ARRAY_LEN(sizes); i++) {
        atomic_store(&want_size, sizes[i]);
        int st = cl_get(&c, get_req, 0, &r);
        CHECK_EQ(st, 200);
        if (!CHECK(body_ok(&r, sizes[i])))
            fprintf(stderr, "  size %zu: got %zu bytes, Content-Length %lld\n", sizes[i],
                    r.body_len, r.clen);
        if (sizes[i] + LINE_LEN >= MHTTP_BODY_MAX)
            CHECK(r.body_len <= MHTTP_BODY_MAX);
        resp_free(&r);
    }
    cl_close(&c);

    /* The slow reader: a small receive window, four pipelined requests for
     * bodies too large for the kernel's buffers, and no reading for a
     * while. */
    if (!CHECK(cl_open(&c, 4096) == 0))
        return;
    struct mhttp_stats s0 = get_stats();
    atomic_store(&want_size, MHTTP_BODY_MAX - LINE_LEN);
    CHECK_EQ(cl_sends(&c, get_req), 0);
    int held;
    struct mhttp_stats s = stats_until(answers_at_least, s0.answers + 1, &held);
    CHECK(held);
    CHECK_EQ(cl_sends(&c, get_req), 0);
    CHECK_EQ(cl_sends(&c, "HEAD / HTTP/1.1\r\n\r\n"), 0);
    CHECK_EQ(cl_sends(&c, get_req), 0);
    sleep_ms(300);
    s = get_stats();
    /* Still one answer: the other requests have not even been read. */
    CHECK_EQU(s.answers, s0.answers + 1);
    CHECK(s.held > 0);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(cl_response(&c, i == 2, &r), 0);
        CHECK_EQ(r.status, 200);
        if (i != 2)
            CHECK(body_ok(&r, MHTTP_BODY_MAX - LINE_LEN));
        else
            CHECK_EQ(r.clen, MHTTP_BODY_MAX);
        resp_free(&r);
    }
    s = get_stats();
    CHECK_EQU(s.answers, s0.answers + 4);
    cl_close(&c);
}

/* Connections opened at the start and left to time out, checked at the
 * end, so the wait overlaps the other scenarios. */
struct timeout_conns {
    struct cl idle, partial, after_answer, slow_reader, slow_close;
    uint64_t opened_ms;
    uint64_t timeouts_before;
};

static void timeouts_start(struct timeout_conns *t)
{
    struct resp r;
    t->timeouts_before = get_stats().timeouts;
    t->opened_ms = ms_now();
    CHECK(cl_open(&t->idle, 0) == 0);
    CHECK(cl_open(&t->partial, 0) == 0);
    cl_sends(&t->partial, "GET /metrics HTTP/1.1\r\nHost: x\r\n");
    CHECK(cl_open(&t->after_answer, 0) == 0);
    atomic_store(&want_size, 10);
    CHECK_EQ(cl_get(&t->after_answer, get_req, 0, &r), 200);
    resp_free(&r);
    /* A reader that never reads its big answer, kept-alive or not. */
    struct mhttp_stats s0 = get_stats();
    atomic_store(&want_size, MHTTP_BODY_MAX - LINE_LEN);
    CHECK(cl_open(&t->slow_reader, 4096) == 0);
    cl_sends(&t->slow_reader, get_req);
    CHECK(cl_open(&t->slow_close, 4096) == 0);
    cl_sends(&t->slow_close, "GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
    int held;
    stats_until(answers_at_least, s0.answers + 2, &held);
    CHECK(held);
}

static int timeouts_at_least(const struct mhttp_stats *s, uint64_t n) { return s->timeouts >= n; }

static void timeouts_finish(struct timeout_conns *t)
{
    /* Nothing is read from them until the server has closed all five (a
     * reader that took its answer would have ended the slow ones early).
     * That takes the timeout plus a sweep period; stats_until allows far
     * more, so a loaded machine cannot fail this.  None may end before its
     * deadline (the server's clock starts after ours). */
    struct cl *all[] = {&t->idle, &t->partial, &t->after_answer, &t->slow_reader, &t->slow_close};
    int held = 0;
    struct mhttp_stats s;
    for (int round = 0; round < 3 && !held; round++)
        s = stats_until(timeouts_at_least, t->timeouts_before + ARRAY_LEN(all), &held);
    if (!CHECK(held))
        fprintf(stderr, "  timeouts %ju -> %ju\n", (uintmax_t)t->timeouts_before,
                (uintmax_t)s.timeouts);
    CHECK(ms_now() - t->opened_ms >= MHTTP_TIMEOUT_MS);
    /* Other tests' connections time out too and count in the same total,
     * so the five may still be closing: their held answers must go soon. */
    s = stats_until(held_is, 0, &held);
    CHECK_EQU(s.held, 0);
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        if (!CHECK(cl_ends_within(all[i], WAIT_MS)))
            fprintf(stderr, "  timeout conn %zu still open\n", i);
        cl_close(all[i]);
    }
}

/* MHTTP_MAX_CONNS are served.  With all of them idle, one more takes the
 * place of the oldest (the issue 12 attack: 64 idle sockets used to lock
 * every scrape out); with all of them in the middle of a request, one more
 * is closed at once. */
static void test_conn_cap(void)
{
    int held;
    struct mhttp_stats s = stats_until(conns_are, 0, &held);
    if (!CHECK(held))
        return;
    uint64_t refused0 = s.refused, evicted0 = s.evicted;
    struct cl *cs = calloc(MHTTP_MAX_CONNS + 1, sizeof(*cs));
    struct resp r;
    atomic_store(&want_size, 20);
    unsigned served = 0;
    for (unsigned i = 0; i < MHTTP_MAX_CONNS; i++) {
        if (cl_open(&cs[i], 0) != 0)
            break;
        if (cl_get(&cs[i], get_req, 0, &r) == 200)
            served++;
        resp_free(&r);
    }
    CHECK_EQU(served, MHTTP_MAX_CONNS);
    /* All idle: a new scrape is answered, the oldest idle one makes room. */
    struct cl extra;
    if (CHECK(cl_open(&extra, 0) == 0)) {
        CHECK_EQ(cl_get(&extra, get_req, 0, &r), 200);
        CHECK(body_ok(&r, 20));
        resp_free(&r);
        cl_close(&extra);
    }
    s = get_stats();
    CHECK_EQU(s.evicted, evicted0 + 1);
    CHECK_EQU(s.refused, refused0);
    CHECK(cl_ends_within(&cs[0], WAIT_MS));
    /* The newer ones still work. */
    CHECK_EQ(cl_get(&cs[MHTTP_MAX_CONNS - 1], get_req, 0, &r), 200);
    resp_free(&r);
    for (unsigned i = 0; i < MHTTP_MAX_CONNS; i++)
        cl_close(&cs[i]);
    stats_until(conns_are, 0, &held);
    CHECK(held);
    /* All busy (a request head started): one more is refused. */
    unsigned busy = 0;
    for (unsigned i = 0; i < MHTTP_MAX_CONNS; i++) {
        if (cl_open(&cs[i], 0) != 0)
            break;
        cl_sends(&cs[i], "GET /metrics HTTP/1.1\r\nHost: x\r\n");
        busy++;
    }
    /* Accepted is not enough: until the server has read each partial head,
     * it counts the connection as idle and may evict it. */
    stats_until(busy_are, busy, &held);
    CHECK(held);
    if (CHECK(cl_open(&extra, 0) == 0)) {
        cl_sends(&extra, get_req);
        CHECK(cl_response(&extra, 0, &r) != 0);
        resp_free(&r);
        CHECK(extra.closed);
        cl_close(&extra);
    }
    s = get_stats();
    CHECK_EQU(s.refused, refused0 + 1);
    for (unsigned i = 0; i < MHTTP_MAX_CONNS; i++)
        cl_close(&cs[i]);
    free(cs);
    stats_until(conns_are, 0, &held);
    CHECK(held);
}

/* Slow readers together cannot make the server hold more than
 * MHTTP_HELD_MAX: the one that would go over is closed. */
static void test_held_cap(void)
{
    enum { N = 24 };
    struct cl cs[N];
    struct mhttp_stats s0 = get_stats(), s = s0;
    atomic_store(&want_size, MHTTP_BODY_MAX - LINE_LEN);
    int over = 0;
    unsigned opened = 0;
    for (unsigned i = 0; i < N; i++) {
        if (!CHECK(cl_open(&cs[i], 4096) == 0))
            break;
        opened++;
        cl_sends(&cs[i], get_req);
        int held;
        s = stats_until(answers_at_least, s0.answers + i + 1, &held);
        CHECK(held);
        CHECK(s.held <= MHTTP_HELD_MAX);
        if (s.overloaded > s0.overloaded) {
            over = 1;
            break;
        }
    }
    CHECK(over);
    CHECK(s.held <= MHTTP_HELD_MAX && s.held > MHTTP_HELD_MAX / 2);
    /* The last one was closed; the others are intact and get everything. */
    if (over) {
        CHECK(cl_ends_within(&cs[opened - 1], WAIT_MS));
        struct resp r;
        CHECK_EQ(cl_response(&cs[0], 0, &r), 0);
        CHECK(body_ok(&r, MHTTP_BODY_MAX - LINE_LEN));
        resp_free(&r);
    }
    for (unsigned i = 0; i < opened; i++)
        cl_close(&cs[i]);
    int held;
    stats_until(conns_are, 0, &held);
    CHECK(held);
    CHECK_EQU(get_stats().held, 0);
}

/* mhttp_stop with connections idle, mid-head, mid-answer and deferred: the
 * loop must come to an end (every handle closed, memory freed, which ASan
 * checks) and every client sees its connection end. */
static void test_stop(void)
{
    struct cl idle, partial, writing, pipelined;
    CHECK(cl_open(&idle, 0) == 0);
    CHECK(cl_open(&partial, 0) == 0);
    cl_sends(&partial, "GET / HTTP/1.1\r\n");
    CHECK(cl_open(&writing, 4096) == 0);
    CHECK(cl_open(&pipelined, 0) == 0);
    struct mhttp_stats s0 = get_stats();
    atomic_store(&want_size, MHTTP_BODY_MAX - LINE_LEN);
    cl_sends(&writing, get_req);
    int held;
    stats_until(held_at_least, 1, &held);
    CHECK(held);
    atomic_store(&want_size, 10);
    for (int i = 0; i < 50; i++)
        cl_sends(&pipelined, get_req);
    stats_until(answers_at_least, s0.answers + 2, &held);
    CHECK(held);

    uv_async_send(&stop_async);
    pthread_mutex_lock(&mu);
    CHECK(wait_flag(&stopped));
    pthread_mutex_unlock(&mu);
    struct cl *all[] = {&idle, &partial, &writing, &pipelined};
    for (size_t i = 0; i < ARRAY_LEN(all); i++) {
        CHECK(cl_ends_within(all[i], WAIT_MS));
        cl_close(all[i]);
    }
}

static void *client_main(void *arg)
{
    (void)arg;
    struct timeout_conns t;
    memset(&t, 0, sizeof(t));
    timeouts_start(&t);
    test_statuses();
    test_pipelining();
    test_bodies_and_slow_readers();
    timeouts_finish(&t);
    test_conn_cap();
    test_held_cap();
    test_stop();
    return NULL;
}

static void test_server(void)
{
    pattern_init();
    CHECK_EQ(uv_loop_init(&loop), 0);
    char err[256] = "";
    if (!CHECK(mhttp_start(&loop, "127.0.0.1:0", render, NULL, &server, err, sizeof(err)) == 0)) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    const char *addr = mhttp_addr(server);
    const char *colon = strrchr(addr, ':');
    CHECK(strncmp(addr, "127.0.0.1:", 10) == 0 && colon);
    port = atoi(colon + 1);
    CHECK(port > 0);
    uv_async_init(&loop, &stats_async, on_stats_async);
    uv_async_init(&loop, &stop_async, on_stop_async);
    uv_check_init(&loop, &iter_check);
    uv_check_start(&iter_check, on_iter_check);
    pthread_t th;
    if (!CHECK(pthread_create(&th, NULL, client_main, NULL) == 0))
        return;
    uv_run(&loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(atomic_load(&render_bad), 0);
}

/* Start failures leave nothing behind once the loop runs. */
static void test_start_errors(void)
{
    uv_loop_t l;
    CHECK_EQ(uv_loop_init(&l), 0);
    static uint64_t sentinel_store[4];
    struct mhttp *const sentinel = (struct mhttp *)(void *)sentinel_store;
    struct mhttp *m = sentinel, *m2 = sentinel;
    char err[256] = "";
    CHECK_EQ(mhttp_start(&l, "not an address", render, NULL, &m, err, sizeof(err)), P2C2R_EADDR);
    CHECK(m == sentinel);
    CHECK(strstr(err, "not an address") && strstr(err, "HOST:PORT"));
    CHECK_EQ(mhttp_start(&l, NULL, render, NULL, &m, NULL, 0), P2C2R_EADDR);
    CHECK_EQ(mhttp_start(&l, "127.0.0.1:0", render, NULL, &m, err, sizeof(err)), 0);
    if (m != sentinel) {
        /* The same port again: in use. */
        char again[64];
        snprintf(again, sizeof(again), "%s", mhttp_addr(m));
        err[0] = '\0';
        CHECK_EQ(mhttp_start(&l, again, render, NULL, &m2, err, sizeof(err)), P2C2R_EADDR);
        CHECK(m2 == sentinel);
        CHECK(strstr(err, again) != NULL);
        mhttp_stop(m);
    }
    mhttp_stop(NULL);
    CHECK_EQ(uv_run(&l, UV_RUN_DEFAULT), 0);
    CHECK_EQ(uv_loop_close(&l), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (getenv("P2C2R_TEST_VERBOSE"))
        log_set_level(LOG_DEBUG);
    test_parse_valid();
    test_parse_invalid();
    test_parse_limits();
    test_start_errors();
    test_server();
    return check_report("test_metrics_http");
}
