/* test_cli.c - the command-line programs as a user runs them.
 *
 * p2c2r (help, version, usage errors, submit through files and pipes, bench,
 * stats, a closed port) against a real coordinator and peer, and the option
 * handling of p2c2rd and p2c2r-peer.  Exit codes: 0 success, 1 failure,
 * 2 usage error; failures must say what went wrong on stderr. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

/* Checks the exit code; on a mismatch shows what the program printed. */
static int expect_exit(const struct h_cmd *r, int code, const char *what)
{
    return H_CHECK(r->code == code, "%s: %s, expected exit %d\n    stdout: %.500s\n    stderr: %.500s",
                   what, r->status == -1 ? "timed out" : h_status_str(r->status), code, r->out, r->err);
}

static void test_cli_basics(void)
{
    const char *cli = h_cli_bin();
    h_phase("p2c2r --help / --version / usage errors");
    struct h_cmd r = h_run_cmd(NULL, (const char *[]){cli, "--help", NULL});
    expect_exit(&r, 0, "p2c2r --help");
    H_CHECK(strstr(r.out, "Usage") && strstr(r.out, "submit") && strstr(r.out, "bench"),
            "p2c2r --help should list the commands: %s", r.out);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "--version", NULL});
    expect_exit(&r, 0, "p2c2r --version");
    H_CHECK(strstr(r.out, p2c2r_version()) != NULL, "p2c2r --version printed '%s', library is %s", r.out,
            p2c2r_version());
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "--bogus", NULL});
    expect_exit(&r, 2, "p2c2r --bogus");
    H_CHECK(strstr(r.err, "--bogus") != NULL, "p2c2r --bogus should name the bad option on stderr: %s",
            r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, NULL});
    expect_exit(&r, 2, "p2c2r without a command");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "echo", "--bogus", NULL});
    expect_exit(&r, 2, "p2c2r submit --bogus");
    H_CHECK(strstr(r.err, "bogus") != NULL, "should name the bad option: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "bench", "--tasks", "zero", NULL});
    expect_exit(&r, 2, "p2c2r bench --tasks zero");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "--help", NULL});
    expect_exit(&r, 0, "p2c2r submit --help");
    H_CHECK(strstr(r.out, "--input") != NULL, "submit --help should document --input: %s", r.out);
    h_cmd_free(&r);
}

static void test_cli_tasks(void)
{
    const char *cli = h_cli_bin(), *addr = h_addr();
    h_phase("p2c2r submit");
    char in[320], outp[320];
    h_path(in, sizeof(in), "input.bin");
    h_path(outp, sizeof(outp), "output.bin");
    size_t n = 200 * 1000 + 17;
    uint8_t *data = malloc(n);
    h_fill(data, n, 31337);
    H_REQUIRE(h_write_file(in, data, n) == 0, "write %s", in);

    struct h_cmd r = h_run_cmd(NULL, (const char *[]){cli, "submit", "echo", "-i", in, "-o", outp, "--coordinator",
                                              addr, NULL});
    expect_exit(&r, 0, "p2c2r submit echo -i FILE -o OUT");
    h_cmd_free(&r);
    size_t got_len = 0;
    char *got = h_read_file(outp, &got_len);
    H_CHECK(got && got_len == n && memcmp(got, data, n) == 0, "submit echo: OUT (%zu bytes) differs from "
                                                              "the %zu-byte input",
            got_len, n);
    free(got);

    /* Input from stdin, output to stdout. */
    r = h_run_cmd(in, (const char *[]){cli, "submit", "echo", "--coordinator", addr, NULL});
    expect_exit(&r, 0, "p2c2r submit echo < FILE");
    H_CHECK(r.out_len == n && memcmp(r.out, data, n) == 0, "submit echo via stdin/stdout: %zu bytes back",
            r.out_len);
    h_cmd_free(&r);

    uint8_t md[32];
    char hex[65];
    h_sha256(data, n, md);
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "sha256", "-p", "format=hex", "-i", in, "--coordinator",
                                   addr, NULL});
    expect_exit(&r, 0, "p2c2r submit sha256 -p format=hex");
    H_CHECK(r.out_len >= 64 && memcmp(r.out, hex, 64) == 0, "sha256 printed '%.80s', expected %s", r.out,
            hex);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "nosuch", "-i", in, "--coordinator", addr, NULL});
    expect_exit(&r, 1, "p2c2r submit nosuch");
    H_CHECK(strstr(r.err, "nosuch") != NULL, "a refused task type should be named on stderr: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "echo", "-i", "/nonexistent/input", "--coordinator", addr,
                                   NULL});
    H_CHECK(r.code == 1 || r.code == 2, "submit with a missing input file: %s",
            h_status_str(r.status));
    H_CHECK(strstr(r.err, "/nonexistent/input") != NULL, "should name the missing file: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "echo", "--json", "-i", in, "-o", outp, "--coordinator",
                                   addr, NULL});
    expect_exit(&r, 0, "p2c2r submit --json");
    json_t *j = h_json_parse(r.out);
    H_CHECK(h_json_str_is(j, "status", "ok"), "submit --json: %s", r.out);
    json_decref(j);
    h_cmd_free(&r);
    free(data);

    h_phase("p2c2r bench");
    r = h_run_cmd(NULL, (const char *[]){cli, "bench", "--tasks", "2000", "--inflight", "16", "--json",
                                   "--coordinator", addr, NULL});
    expect_exit(&r, 0, "p2c2r bench --tasks 2000 --inflight 16 --json");
    j = h_json_parse(r.out);
    H_CHECK(h_json_int(j, "completed") == 2000, "bench JSON lacks \"completed\":2000: %s", r.out);
    H_CHECK(h_json_int(j, "failed") == 0 && h_json_int(j, "mismatched") == 0, "bench JSON reports failures: %s",
            r.out);
    H_CHECK(r.out[0] == '{' && json_is_object(j), "bench --json should print one JSON object: %s", r.out);
    json_decref(j);
    h_cmd_free(&r);

    h_phase("p2c2r stats");
    r = h_run_cmd(NULL, (const char *[]){cli, "stats", "--json", "--coordinator", addr, NULL});
    expect_exit(&r, 0, "p2c2r stats --json");
    j = h_json_parse(r.out);
    H_CHECK(h_json_at(j, "peers_connected") != NULL, "stats --json: %s", r.out);
    H_CHECK(h_json_int(j, "peers_connected") == 1, "stats --json should show 1 peer: %s", r.out);
    json_decref(j);
    h_cmd_free(&r);
    r = h_run_cmd(NULL, (const char *[]){cli, "stats", "--coordinator", addr, NULL});
    expect_exit(&r, 0, "p2c2r stats");
    H_CHECK(strstr(r.out, "peers_connected") != NULL, "stats (text) should show peers_connected: %s", r.out);
    h_cmd_free(&r);
}

static void test_cli_unreachable(void)
{
    const char *cli = h_cli_bin();
    h_phase("p2c2r against a closed port");
    /* A port that was just free: bind, read the number, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    H_REQUIRE(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
                  getsockname(fd, (struct sockaddr *)&sa, &sl) == 0,
              "cannot find a free port");
    close(fd);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    struct h_cmd r = h_run_cmd(NULL, (const char *[]){cli, "stats", "--coordinator", addr, NULL});
    expect_exit(&r, 1, "p2c2r stats against a closed port");
    H_CHECK(strstr(r.err, addr) != NULL, "the error should name the address %s: %s", addr, r.err);
    H_CHECK(strstr(r.err, "p2c2rd") != NULL || strstr(r.err, "--coordinator") != NULL,
            "the error should say what to do (start p2c2rd / pass --coordinator): %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "submit", "echo", "--coordinator", addr, NULL});
    expect_exit(&r, 1, "p2c2r submit against a closed port");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){cli, "stats", "--coordinator", "no-port-here", NULL});
    H_CHECK(r.code == 1 || r.code == 2, "p2c2r stats --coordinator no-port-here: %s",
            h_status_str(r.status));
    H_CHECK(strstr(r.err, "HOST:PORT") != NULL, "a malformed address should be explained: %s", r.err);
    h_cmd_free(&r);
}

static void test_daemon_options(void)
{
    const char *coord = h_coord_bin(), *peer = h_peer_bin();
    h_phase("p2c2rd and p2c2r-peer options");
    struct h_cmd r = h_run_cmd(NULL, (const char *[]){coord, "--help", NULL});
    expect_exit(&r, 0, "p2c2rd --help");
    H_CHECK(strstr(r.out, "--listen") && strstr(r.out, "--ready-file"), "p2c2rd --help: %s", r.out);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){coord, "--bogus", NULL});
    expect_exit(&r, 2, "p2c2rd --bogus");
    H_CHECK(strstr(r.err, "--bogus") != NULL, "p2c2rd --bogus should name the option: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){coord, "--max-frame", "5", NULL});
    expect_exit(&r, 2, "p2c2rd --max-frame 5 (under the minimum)");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){coord, "--log-level", "loud", NULL});
    expect_exit(&r, 2, "p2c2rd --log-level loud");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){coord, "--listen", "127.0.0.1:0", "--tokens", "/nonexistent/tokens", NULL});
    expect_exit(&r, 1, "p2c2rd --tokens /nonexistent/tokens");
    H_CHECK(strstr(r.err, "/nonexistent/tokens") != NULL, "should name the tokens file: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){coord, "--listen", h_addr(), NULL});
    expect_exit(&r, 1, "p2c2rd --listen on a port in use");
    H_CHECK(strstr(r.err, h_addr()) != NULL, "should name the address in use: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){peer, "--help", NULL});
    expect_exit(&r, 0, "p2c2r-peer --help");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){peer, "--types", "nosuch", NULL});
    expect_exit(&r, 2, "p2c2r-peer --types nosuch");
    H_CHECK(strstr(r.err, "nosuch") != NULL && strstr(r.err, "echo") != NULL,
            "should name the bad type and list the built-in ones: %s", r.err);
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){peer, "--slots", "0", NULL});
    expect_exit(&r, 2, "p2c2r-peer --slots 0");
    h_cmd_free(&r);

    r = h_run_cmd(NULL, (const char *[]){peer, "--coordinator", "nonsense", NULL});
    expect_exit(&r, 2, "p2c2r-peer --coordinator nonsense");
    h_cmd_free(&r);
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "cli");
    H_REQUIRE(h_cli_bin() != NULL, "usage: test_cli P2C2RD P2C2R-PEER P2C2R");
    test_cli_basics();
    h_phase("start daemons");
    h_coord_start(NULL, NULL);
    h_peer_start("peer-1", 2, NULL, NULL);
    h_wait_peers(1, NULL);
    test_cli_tasks();
    test_cli_unreachable();
    test_daemon_options();
    return h_finish();
}
