/* bench_gateway: a WebSocket renter of the JSON gateway (docs/GATEWAY.md),
 * the counterpart of `p2c2r bench` for the native protocol.
 *
 * It connects to p2c2rd's HTTP port, upgrades /ws, registers as a renter,
 * and runs N echo tasks of SIZE bytes (base64 in JSON both ways) keeping K
 * in flight: with K = 1 it reports round-trip percentiles (W1), otherwise
 * throughput (W2).  Every result is checked against its input.  One thread,
 * blocking socket, many messages per write and per read, so the client
 * costs little of the machine it shares with the coordinator and peers.
 *
 * Usage: bench_gateway --http HOST:PORT [--tasks N] [--inflight K] [--size B] [--json]
 * bench/bench_gateway.sh runs it against a fresh coordinator next to the
 * native `p2c2r bench`; figures in docs/PERFORMANCE.md, "The gateway". */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/buf.h"
#include "common/cliopt.h"
#include "common/util.h"
#include "common/ws.h"

static struct {
    const char *http;
    int64_t tasks, inflight, size, warmup;
    int json;
} opt = {"127.0.0.1:9090", 100000, 256, 64, -1, 0};

static int fd = -1;
static struct ws_reader rd;
static uint8_t rbuf[1 << 20];
static size_t rlen;
static uint64_t *sent_ns; /* submit time per task */
static uint64_t *rtt;     /* round trips of the timed tasks */
static uint64_t done, nrtt, bad;
static char **expect;     /* base64 of each task's input */
static size_t expect_len;
static int registered;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_gateway: %s%s%s\n", what, errno ? ": " : "", errno ? strerror(errno) : "");
    exit(1);
}

static void write_all(const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write");
        p += w;
        n -= (size_t)w;
    }
}

/* Appends a masked text frame of p[0..n) to o. */
static void put_text(struct buf *o, const char *p, size_t n)
{
    static const uint8_t mask[4] = {0x5a, 0x13, 0xc7, 0x2e};
    uint8_t *d = buf_reserve(o, WS_HDR_MAX + n);
    if (!d)
        die("out of memory");
    size_t hl = ws_put_hdr(d, 1, WS_OP_TEXT, n, mask);
    memcpy(d + hl, p, n);
    ws_mask(d + hl, n, mask, 0);
    buf_commit(o, hl + n);
}

static void submit(struct buf *o, uint64_t i)
{
    char m[512];
    int n = snprintf(m, sizeof(m), "{\"msg_type\":\"task_submit\",\"task_id\":%" PRIu64
                     ",\"task_type\":\"echo\",\"no_cache\":true,\"data\":\"%.*s\"}",
                     i, (int)expect_len, expect[i]);
    sent_ns[i] = mono_ns();
    put_text(o, m, (size_t)n);
}

static int on_msg(void *arg, int op, uint8_t *p, size_t n)
{
    (void)arg;
    if (op != WS_OP_TEXT)
        return 0;
    if (!registered) {
        if (memmem(p, n, "\"registration_ack\"", 18)) {
            if (!memmem(p, n, "\"status\":\"ok\"", 13))
                die("registration refused");
            registered = 1;
        } else if (memmem(p, n, "\"error\"", 7) && !memmem(p, n, "\"challenge\"", 11)) {
            fprintf(stderr, "%.*s\n", (int)n, (const char *)p);
            die("refused");
        }
        return 0;
    }
    const char *k = memmem(p, n, "\"task_id\":", 10);
    if (!k || !memmem(p, n, "\"result_delivery\"", 17)) {
        fprintf(stderr, "bench_gateway: unexpected message: %.*s\n", (int)(n < 300 ? n : 300), (const char *)p);
        bad++;
        done++;
        return 0;
    }
    uint64_t id = strtoull(k + 10, NULL, 10);
    const char *r = memmem(p, n, "\"result\":\"", 10);
    if (id >= (uint64_t)opt.tasks || !r || (size_t)((const char *)p + n - (r + 10)) < expect_len ||
        memcmp(r + 10, expect[id], expect_len) != 0 || r[10 + expect_len] != '"')
        bad++;
    if (id >= (uint64_t)opt.warmup && id < (uint64_t)opt.tasks)
        rtt[nrtt++] = mono_ns() - sent_ns[id];
    done++;
    return 0;
}

/* Handles every whole message in rbuf and keeps the rest. */
static void handle_buffered(void)
{
    int stopped;
    long used = ws_reader_feed(&rd, rbuf, rlen, on_msg, NULL, &stopped);
    if (used < 0)
        die(rd.why);
    memmove(rbuf, rbuf + used, rlen - (size_t)used);
    rlen -= (size_t)used;
}

/* Reads once (blocking) and handles every whole message. */
static void read_some(void)
{
    ssize_t r = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
    if (r < 0 && errno == EINTR)
        return;
    if (r <= 0)
        die("the coordinator closed the connection");
    rlen += (size_t)r;
    handle_buffered();
}

/* CPU time (user + system) of this process, in microseconds. */
static uint64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_usec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const struct cliopt opts[] = {
        {"http", 0, OPT_STR, "HOST:PORT", 0, 0, "p2c2rd's HTTP port (--http)", &opt.http, CLIOPT_DEFAULT},
        {"tasks", 'n', OPT_INT, "N", 1, 100000000, "tasks to run", &opt.tasks, CLIOPT_DEFAULT},
        {"inflight", 'k', OPT_INT, "K", 1, 1 << 20, "tasks kept in flight; 1 measures latency", &opt.inflight, CLIOPT_DEFAULT},
        {"size", 's', OPT_INT, "BYTES", 0, 1 << 20, "input size per task", &opt.size, CLIOPT_DEFAULT},
        {"warmup", 0, OPT_INT, "N", 0, 100000000, "untimed tasks first (default tasks/20, at most 2000)", &opt.warmup},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print one JSON object", &opt.json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), "bench_gateway", "[OPTIONS]",
                          "Echo tasks through p2c2rd's JSON/WebSocket gateway: latency (K=1) or throughput.", &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (opt.warmup < 0)
        opt.warmup = opt.tasks / 20 < 2000 ? opt.tasks / 20 : 2000;
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_parse(opt.http, &ss, &sl) != 0) {
        fprintf(stderr, "bench_gateway: --http must be HOST:PORT, got '%s'\n", opt.http);
        return 2;
    }
    uint64_t total = (uint64_t)(opt.tasks + opt.warmup);
    opt.tasks = (int64_t)total;
    sent_ns = calloc(total, sizeof(*sent_ns));
    rtt = calloc(total, sizeof(*rtt));
    expect = calloc(total, sizeof(*expect));
    expect_len = b64_enc_len((size_t)opt.size);
    uint8_t *in = malloc((size_t)opt.size + 1);
    for (uint64_t i = 0; i < total; i++) {
        for (int64_t k = 0; k < opt.size; k++)
            in[k] = (uint8_t)(i * 31 + (uint64_t)k * 7);
        expect[i] = malloc(expect_len + 1);
        b64_encode(in, (size_t)opt.size, expect[i]);
    }
    fd = socket(ss.ss_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, sl) != 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", opt.http);
    write_all((const uint8_t *)req, (size_t)n);
    /* The 101 head, then frames. */
    for (;;) {
        ssize_t r = read(fd, rbuf + rlen, sizeof(rbuf) - rlen);
        if (r <= 0)
            die("no upgrade");
        rlen += (size_t)r;
        uint8_t *e = memmem(rbuf, rlen, "\r\n\r\n", 4);
        if (e) {
            if (!memmem(rbuf, (size_t)(e - rbuf), " 101 ", 5) ||
                !memmem(rbuf, (size_t)(e - rbuf), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28))
                die("bad upgrade answer");
            size_t hl = (size_t)(e - rbuf) + 4;
            memmove(rbuf, rbuf + hl, rlen - hl);
            rlen -= hl;
            break;
        }
    }
    ws_reader_init(&rd, 64u << 20, 0);
    struct buf o;
    buf_init(&o, (size_t)1 << 30);
    const char *reg = "{\"msg_type\":\"gamer_register\",\"client_id\":\"bench_gateway\"}";
    put_text(&o, reg, strlen(reg));
    write_all(buf_head(&o), buf_used(&o));
    buf_consume(&o, buf_used(&o));
    handle_buffered();
    while (!registered)
        read_some();

    uint64_t next = 0, t0 = 0, warm_done = 0, cpu0 = 0;
    while (done < total) {
        /* Keep K in flight: submits go out in one write. */
        while (next < total && next - done < (uint64_t)opt.inflight)
            submit(&o, next++);
        if (buf_used(&o)) {
            write_all(buf_head(&o), buf_used(&o));
            buf_consume(&o, buf_used(&o));
        }
        read_some();
        if (!t0 && done >= (uint64_t)opt.warmup) {
            t0 = mono_ns();
            cpu0 = cpu_us();
            warm_done = done;
        }
    }
    uint64_t t1 = mono_ns();
    double cpu_per_task = done > warm_done ? (double)(cpu_us() - cpu0) / (double)(done - warm_done) : 0;
    double secs = (double)(t1 - t0) / 1e9;
    double tps = secs > 0 ? (double)(done - warm_done) / secs : 0;
    qsort(rtt, nrtt, sizeof(*rtt), cmp_u64);
    double p50 = nrtt ? rtt[nrtt / 2] / 1000.0 : 0, p99 = nrtt ? rtt[nrtt * 99 / 100] / 1000.0 : 0;
    if (opt.json)
        printf("{\"tasks\":%" PRIu64 ",\"inflight\":%" PRId64 ",\"size\":%" PRId64 ",\"tasks_per_s\":%.0f,"
               "\"p50_us\":%.1f,\"p99_us\":%.1f,\"client_cpu_us_per_task\":%.3f,\"bad\":%" PRIu64 "}\n",
               done - warm_done, opt.inflight, opt.size, tps, p50, p99, cpu_per_task, bad);
    else
        printf("gateway: %" PRIu64 " tasks, %" PRId64 " in flight, %" PRId64 " B: %.0f tasks/s, p50 %.1f us, "
               "p99 %.1f us, client CPU %.3f us/task, bad %" PRIu64 "\n",
               done - warm_done, opt.inflight, opt.size, tps, p50, p99, cpu_per_task, bad);
    close(fd);
    return bad ? 1 : 0;
}
