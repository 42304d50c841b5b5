/* test_http.c - p2c2rd --http: the HTTP port's routes, its bearer token for
 * /metrics, and scrapes while idle sockets hold connections.
 *
 * Issue 12's attack: "the metrics port answered 0 of 75 scrapes while 64
 * idle sockets were open" (the server refused every connection past 64).
 * Here more idle sockets than the server keeps (MHTTP_MAX_CONNS, 256) are
 * opened and never written to; every one of 75 scrapes must still be
 * answered, the oldest idle sockets making room. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define IDLE 300    /* idle sockets: more than the server keeps */
#define SCRAPES 75
#define SERVER_CONNS 256 /* MHTTP_MAX_CONNS */

static int status_is(const char *resp, int code)
{
    char want[16];
    snprintf(want, sizeof(want), " %d ", code);
    return resp && strncmp(resp, "HTTP/1.1", 8) == 0 && strncmp(resp + 8, want, strlen(want)) == 0;
}

static void write_page(const char *dir, const char *name, const char *text)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    H_REQUIRE(h_write_file(path, text, strlen(text)) == 0, "cannot write %s", path);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "http");
    /* IDLE sockets in this process, plus the harness's own. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < IDLE + 256) {
        rl.rlim_cur = rl.rlim_max < IDLE + 256 ? rl.rlim_max : IDLE + 256;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char root[1024];
    h_path(root, sizeof(root), "www");
    H_REQUIRE(mkdir(root, 0755) == 0, "mkdir %s", root);
    write_page(root, "index.html", "<!doctype html><title>dash</title>\n");
    write_page(root, "contribute.html", "<!doctype html><title>contribute</title>\n");
    write_page(root, "app.js", "console.log('p2c2r');\n");
    write_page(root, ".secret", "not for the web\n");

    h_phase("--metrics and --http together are refused");
    {
        const char *args[] = {h_coord_bin(), "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--http",
                              "127.0.0.1:0", NULL};
        struct h_cmd r = h_run_cmd(NULL, args);
        H_CHECK(r.code == 2 && strstr(r.err, "--http"), "exit %d, stderr: %s", r.code, r.err);
        h_cmd_free(&r);
    }

    const char *cargs[] = {"--http", "127.0.0.1:0", "--metrics-token", "sekrit", "--http-root", root, NULL};
    h_coord_start(NULL, cargs);
    char host[64];
    int port = 0;
    H_REQUIRE(h_http_addr(host, sizeof(host), &port), "no event=metrics_listening line in the coordinator's log");
    const char *auth = "Authorization: Bearer sekrit\r\n";

    h_phase("bearer token on /metrics");
    char *r = h_http_get(host, port, "/metrics", NULL);
    H_CHECK(status_is(r, 401) && strstr(r, "WWW-Authenticate: Bearer"), "no token: %.60s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/metrics", "Authorization: Bearer sekrix\r\n");
    H_CHECK(status_is(r, 401), "wrong token: %.60s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/metrics", "Authorization: Bearer sekrit-and-more\r\n");
    H_CHECK(status_is(r, 401), "longer token: %.60s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/metrics", auth);
    H_CHECK(status_is(r, 200) && strstr(r, "p2c2r_connections "), "with the token: %.60s", r ? r : "(failed)");
    free(r);

    h_phase("static pages");
    r = h_http_get(host, port, "/", NULL);
    H_CHECK(status_is(r, 200) && strstr(r, "<title>dash</title>") && strstr(r, "text/html"), "/: %.80s",
            r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/contribute?x=1", NULL);
    H_CHECK(status_is(r, 200) && strstr(r, "<title>contribute</title>"), "/contribute: %.80s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/demo", NULL);
    H_CHECK(status_is(r, 404), "/demo without demo.html: %.60s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/static/app.js", NULL);
    H_CHECK(status_is(r, 200) && strstr(r, "text/javascript") && strstr(r, "console.log('p2c2r');"),
            "/static/app.js: %.80s", r ? r : "(failed)");
    free(r);
    /* /static/chart.js is Debian's libjs-chart.js where the package put it
     * (the dashboard's plots), whatever the root holds. */
    r = h_http_get(host, port, "/static/chart.js", NULL);
    if (access("/usr/share/javascript/chart.js/chart.min.js", R_OK) == 0)
        H_CHECK(status_is(r, 200) && strstr(r, "text/javascript") && strstr(r, "Chart.js v"),
                "/static/chart.js: %.80s", r ? r : "(failed)");
    else
        H_CHECK(status_is(r, 404), "/static/chart.js without libjs-chart.js: %.60s", r ? r : "(failed)");
    free(r);
    static const char *const refused[] = {"/static/.secret", "/static/../www/app.js", "/static/", "/static/a/b",
                                          "/static/%2e%2e"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        r = h_http_get(host, port, refused[i], NULL);
        H_CHECK(status_is(r, 404), "%s: %.60s", refused[i], r ? r : "(failed)");
        free(r);
    }

    h_phase("/ws without an upgrade");
    r = h_http_get(host, port, "/ws", NULL);
    H_CHECK(status_is(r, 426) && strstr(r, "Upgrade: websocket"), "/ws: %.80s", r ? r : "(failed)");
    free(r);
    r = h_http_get(host, port, "/ws",
                   "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Key: not-base64-at-all-x\r\n");
    H_CHECK(status_is(r, 400), "/ws with a bad key: %.80s", r ? r : "(failed)");
    free(r);

    h_phase("%d scrapes while %d idle sockets are open", SCRAPES, IDLE);
    int idle[IDLE], nidle = 0;
    for (int i = 0; i < IDLE; i++)
        if ((idle[nidle] = h_tcp_connect(host, port)) >= 0)
            nidle++;
    H_CHECK(nidle == IDLE, "opened %d of %d idle sockets", nidle, IDLE);
    h_sleep_ms(200); /* let the server accept them all */
    int answered = 0;
    for (int i = 0; i < SCRAPES; i++) {
        r = h_http_get(host, port, "/metrics", auth);
        answered += status_is(r, 200) && strstr(r, "p2c2r_connections ") != NULL;
        free(r);
    }
    H_CHECK(answered == SCRAPES, "answered %d of %d scrapes while %d idle sockets were open", answered, SCRAPES,
            nidle);
    for (int i = 0; i < nidle; i++)
        close(idle[i]);
    /* Counted in STATS (and the same table's Prometheus text). */
    json_t *st = h_stats(NULL);
    H_CHECK(h_json_int(st, "counters.http_evicted") >= IDLE - SERVER_CONNS, "http_evicted %lld",
            h_json_int(st, "counters.http_evicted"));
    H_CHECK(h_json_int(st, "counters.http_unauthorized") == 3, "http_unauthorized %lld",
            h_json_int(st, "counters.http_unauthorized"));
    H_CHECK(h_json_int(st, "counters.http_refused") == 0, "http_refused %lld", h_json_int(st, "counters.http_refused"));
    json_decref(st);
    return h_finish();
}
