/* test_metrics.c - p2c2rd --metrics as Prometheus scrapes it.
 *
 * A coordinator with the metrics endpoint on 127.0.0.1 port 0 (the bound
 * address is read from its log) and one sha256 peer runs a known mix of
 * work: tasks that run, a repeat the cache answers, a task refused for a
 * GPU no peer has, a task that fails on the peer.  The scrape must be valid
 * text format (every sample line "name{labels} value" of a metric announced
 * by # TYPE) and its figures must equal that mix and the STATS document. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define RUN 12 /* distinct tasks that run on the peer */

/* The value of the sample whose "name{labels}" (or bare name) is exactly
 * key, or -1 when there is none. */
static double sample(const char *body, const char *key)
{
    size_t kl = strlen(key);
    for (const char *p = body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ')
            return strtod(p + kl + 1, NULL);
    }
    return -1;
}

/* Every line is a comment (# HELP / # TYPE) or a sample of a metric whose
 * # TYPE came before it; returns the number of bad lines. */
static int check_format(const char *body)
{
    int bad = 0;
    char typed[256][96];
    int ntyped = 0;
    const char *p = body;
    while (*p) {
        const char *e = strchr(p, '\n');
        if (!e) {
            H_FAIL("the last line has no newline: '%.60s'", p);
            return bad + 1;
        }
        size_t n = (size_t)(e - p);
        if (n > 7 && strncmp(p, "# TYPE ", 7) == 0) {
            size_t nl = strcspn(p + 7, " ");
            if (ntyped < 256 && nl < sizeof(typed[0])) {
                memcpy(typed[ntyped], p + 7, nl);
                typed[ntyped++][nl] = '\0';
            }
        } else if (n && p[0] != '#') {
            size_t nl = strcspn(p, "{ ");
            int known = 0;
            for (int i = 0; i < ntyped && !known; i++) {
                size_t tl = strlen(typed[i]);
                /* A histogram's samples carry _bucket, _sum and _count. */
                known = nl >= tl && strncmp(p, typed[i], tl) == 0 &&
                        (nl == tl || strncmp(p + tl, "_bucket", nl - tl) == 0 ||
                         strncmp(p + tl, "_sum", nl - tl) == 0 || strncmp(p + tl, "_count", nl - tl) == 0);
            }
            const char *sp = memchr(p, ' ', n);
            char *end = NULL;
            if (sp)
                strtod(sp + 1, &end);
            if (!known || !sp || end != e) {
                if (bad < 5)
                    H_FAIL("not a sample of an announced metric: '%.*s'", (int)(n < 120 ? n : 120), p);
                bad++;
            }
        }
        p = e + 1;
    }
    return bad;
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "metrics");
    /* --verify none: the exact counts below (runs, cache hits) are of a
     * coordinator that runs each task once; test_verify.c counts checks. */
    const char *cargs[] = {"--metrics", "127.0.0.1:0", "--verify", "none", NULL};
    h_coord_start(NULL, cargs);
    h_peer_start("peer-1", 2, "sha256", NULL);
    h_wait_peers(1, NULL);

    char host[64];
    int port = 0;
    H_REQUIRE(h_http_addr(host, sizeof(host), &port), "no event=metrics_listening line in the coordinator's log");

    h_phase("a known mix of work");
    p2c2r_client *c;
    int rc = p2c2r_client_connect(h_addr(), NULL, &c);
    H_REQUIRE(rc == 0, "connect: %s", h_err(rc));
    char in[32];
    for (int i = 0; i < RUN; i++) {
        int n = snprintf(in, sizeof(in), "metrics-%d", i);
        struct p2c2r_task t = {.size = sizeof t, .type = "sha256", .input = in, .input_len = (size_t)n};
        struct p2c2r_result r = h_wait(c, h_submit(c, &t), 10000);
        H_CHECK(r.status == 0 && !(r.flags & P2C2R_RESULT_CACHED), "task %d: %s", i, h_err(r.status));
        p2c2r_result_release(&r);
    }
    /* The same bytes again: the cache answers. */
    struct p2c2r_task again = {.size = sizeof again, .type = "sha256", .input = "metrics-0", .input_len = 9};
    struct p2c2r_result r = h_wait(c, h_submit(c, &again), 10000);
    H_CHECK(r.status == 0 && (r.flags & P2C2R_RESULT_CACHED), "repeat: status %s flags %u",
            h_err(r.status), r.flags);
    p2c2r_result_release(&r);
    /* A GPU no peer has: refused. */
    struct p2c2r_task gpu = {.size = sizeof gpu, .type = "sha256", .input = "g", .input_len = 1, .need_gpu = 1};
    r = h_wait(c, h_submit(c, &gpu), 10000);
    H_CHECK(r.status == P2C2R_EUNSUPPORTED, "GPU task: %s, expected EUNSUPPORTED", h_err(r.status));
    p2c2r_result_release(&r);
    /* Bad params: the peer fails it (one peer of the type, so no retry). */
    struct p2c2r_task bad = {.size = sizeof bad, .type = "sha256", .params = "format=bogus\n", .params_len = 13,
                             .input = "b", .input_len = 1};
    r = h_wait(c, h_submit(c, &bad), 10000);
    H_CHECK(r.status == P2C2R_EINVAL, "bad params: %s, expected EINVAL", h_err(r.status));
    p2c2r_result_release(&r);

    h_phase("scrape");
    char *resp = h_http_get(host, port, "/metrics", NULL);
    H_REQUIRE(resp, "GET http://%s:%d/metrics failed", host, port);
    H_CHECK(strncmp(resp, "HTTP/1.", 7) == 0 && strstr(resp, " 200 "), "status line: %.40s", resp);
    H_CHECK(strstr(resp, "text/plain; version=0.0.4") != NULL, "Content-Type of the text format");
    const char *body = strstr(resp, "\r\n\r\n");
    H_REQUIRE(body, "no end of the response head");
    body += 4;
    H_CHECK(check_format(body) == 0, "the scrape is not valid text format");

    double ok = sample(body, "p2c2r_tasks_total{type=\"sha256\",outcome=\"OK\"}");
    H_CHECK(ok == RUN + 1, "sha256 OK outcomes %g, expected %d (%d runs + 1 cache hit)", ok, RUN + 1, RUN);
    double einval = sample(body, "p2c2r_tasks_total{type=\"sha256\",outcome=\"EINVAL\"}");
    H_CHECK(einval == 1, "sha256 EINVAL outcomes %g, expected 1", einval);
    double rej = sample(body, "p2c2r_rejected_total{type=\"sha256\",reason=\"EUNSUPPORTED\"}");
    H_CHECK(rej == 1, "sha256 EUNSUPPORTED rejections %g, expected 1", rej);
    double hits = sample(body, "p2c2r_cache_hits_total");
    H_CHECK(hits == 1, "cache hits %g, expected 1", hits);
    double total_n = sample(body, "p2c2r_stage_seconds_count{type=\"sha256\",stage=\"total\"}");
    H_CHECK(total_n == RUN + 2, "total-latency samples %g, expected %d (every outcome)", total_n, RUN + 2);
    double exec_n = sample(body, "p2c2r_stage_seconds_count{type=\"sha256\",stage=\"exec\"}");
    H_CHECK(exec_n == RUN, "exec-latency samples %g, expected %d (the successful runs)", exec_n, RUN);
    double inf = sample(body, "p2c2r_stage_seconds_bucket{type=\"sha256\",stage=\"total\",le=\"+Inf\"}");
    H_CHECK(inf == total_n, "+Inf bucket %g differs from _count %g", inf, total_n);
    double peers_ok = sample(body, "p2c2r_peers{state=\"ok\"}");
    H_CHECK(peers_ok == 1, "peers in state ok %g, expected 1", peers_ok);
    double depth = sample(body, "p2c2r_queue_depth{type=\"sha256\",class=\"realtime\"}");
    H_CHECK(depth == 0, "realtime queue depth %g, expected 0", depth);

    /* The same figures through STATS. */
    json_t *js = h_stats(NULL);
    H_CHECK(h_json_int(js, "counters.cache_hits") == (long long)hits, "STATS cache_hits %lld vs metrics %g",
            h_json_int(js, "counters.cache_hits"), hits);
    H_CHECK(h_json_int(js, "counters.rejected_capability") == 1, "STATS rejected_capability");
    json_decref(js);

    h_phase("other paths");
    char *nf = h_http_get(host, port, "/nothing", NULL);
    H_CHECK(nf && strstr(nf, " 404 "), "GET /nothing: %.40s", nf ? nf : "(failed)");
    free(nf);
    free(resp);
    p2c2r_client_close(c);
    return h_finish();
}
