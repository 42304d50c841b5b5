/* test_upscale_cli.c - `p2c2r upscale` (src/cli/cmd_upscale.c) end to end.
 *
 * Runs the command (built into upscale_cli_driver) as a child process:
 * --local, --json, usage errors (exit 2), unreadable and corrupt input
 * (exit 1 with a reason), then against a real coordinator with one local
 * peer (p2c2rd --listen 127.0.0.1:0 --local-peers 1 --ready-file), where the
 * fabric's output must be byte-identical to the local run's.  Every wait is
 * bounded; the daemon is stopped with SIGTERM (SIGKILL after 10 s) and its
 * log is printed when something failed.
 *
 * Usage: test_upscale_cli DRIVER P2C2RD */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "p2c2r/error.h"
#include "tasks/upscale.h"

static char dir[256];
static const char *driver;

static void path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static int read_file(const char *p, uint8_t **out, size_t *len)
{
    FILE *f = fopen(p, "rb");
    if (!f)
        return -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!b || (n > 0 && fread(b, 1, (size_t)n, f) != (size_t)n)) {
        free(b);
        fclose(f);
        return -1;
    }
    b[n > 0 ? n : 0] = 0;
    fclose(f);
    *out = b;
    *len = (size_t)(n > 0 ? n : 0);
    return 0;
}

static int write_file(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    if (!f)
        return -1;
    int rc = fwrite(data, 1, n, f) == n ? 0 : -1;
    return fclose(f) == 0 ? rc : -1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs argv with stdout and stderr captured (NUL-terminated, caller frees);
 * returns the exit status, or -1 if it did not exit normally within 60 s. */
static int run(char *const argv[], char **out, char **errs)
{
    char op[300], ep[300];
    path(op, sizeof(op), "stdout.txt");
    path(ep, sizeof(ep), "stderr.txt");
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(op, O_WRONLY | O_CREAT | O_TRUNC, 0644), e = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (o < 0 || e < 0)
            _exit(127);
        dup2(o, 1);
        dup2(e, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    int status = 0, rc = -1;
    uint64_t t0 = now_ms();
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid) {
            rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            break;
        }
        if (now_ms() - t0 > 60000) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            break;
        }
        usleep(2000);
    }
    size_t n;
    uint8_t *b;
    *out = read_file(op, &b, &n) == 0 ? (char *)b : strdup("");
    *errs = read_file(ep, &b, &n) == 0 ? (char *)b : strdup("");
    return rc;
}

/* Runs the driver with up to 16 arguments (NULL-terminated list). */
static int cli(char **out, char **errs, ...) __attribute__((sentinel));

static int cli(char **out, char **errs, ...)
{
    char *argv[20];
    int n = 0;
    argv[n++] = (char *)driver;
    va_list ap;
    va_start(ap, errs);
    char *a;
    while (n < 19 && (a = va_arg(ap, char *)) != NULL)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return run(argv, out, errs);
}

static void make_input(const char *png_path, const char *raw_path)
{
    struct image im;
    if (!CHECK(image_init(&im, 48, 27, 3, NULL) == 0))
        return;
    for (uint32_t i = 0; i < 48 * 27 * 3; i++)
        im.px[i] = (uint8_t)(i * 7 + (i / 144) * 13);
    uint8_t *png;
    size_t len;
    char err[256];
    CHECK(imageio_encode_png(&im, 6, &png, &len, err, sizeof(err)) == 0);
    CHECK(write_file(png_path, png, len) == 0);
    CHECK(write_file(raw_path, im.px, 48 * 27 * 3) == 0);
    free(png);
    image_fini(&im);
}

/* The pixels our resampler gives for the test input. */
static uint8_t *expected(uint32_t dw, uint32_t dh, enum resample_filter f, const char *raw_path)
{
    uint8_t *src, *out = malloc((size_t)dw * dh * 3);
    size_t n;
    if (!out || read_file(raw_path, &src, &n) != 0)
        return out;
    resample_image(src, 48, 27, out, dw, dh, 3, f);
    free(src);
    return out;
}

static int decoded_equals(const char *p, const uint8_t *want, uint32_t w, uint32_t h)
{
    uint8_t *data;
    size_t n;
    struct image im = {0};
    char err[256];
    if (read_file(p, &data, &n) != 0)
        return 0;
    int ok = imageio_decode(data, n, NULL, &im, err, sizeof(err)) == 0 && im.width == w && im.height == h &&
             im.channels == 3 && memcmp(im.px, want, (size_t)w * h * 3) == 0;
    image_fini(&im);
    free(data);
    return ok;
}

static void test_local(const char *in_png, const char *in_raw)
{
    char outp[300], outraw[300], *o, *e;
    path(outp, sizeof(outp), "local.png");
    path(outraw, sizeof(outraw), "local.raw");
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--scale", "2", "--filter", "lanczos3", "--local", NULL), 0);
    CHECK(strstr(o, "48x27 png") && strstr(o, "96x54 png") && strstr(o, "lanczos3") && strstr(o, "locally"));
    uint8_t *want = expected(96, 54, RESAMPLE_LANCZOS3, in_raw);
    CHECK(decoded_equals(outp, want, 96, 54));
    free(want);
    free(o);
    free(e);

    /* Raw in, raw out, JSON summary. */
    CHECK_EQ(cli(&o, &e, (char *)in_raw, outraw, "--in-width", "48", "--in-height", "27", "--in-channels", "3",
                 "--width", "100", "--filter", "bilinear", "--local", "--json", NULL),
             0);
    CHECK(strstr(o, "\"status\":\"ok\"") && strstr(o, "\"out_width\":100") && strstr(o, "\"out_height\":56") &&
          strstr(o, "\"format\":\"raw\"") && strstr(o, "\"local\":true"));
    uint8_t *got;
    size_t n;
    want = expected(100, 56, RESAMPLE_BILINEAR, in_raw);
    CHECK(read_file(outraw, &got, &n) == 0 && n == 100 * 56 * 3 && memcmp(got, want, n) == 0);
    free(got);
    free(want);
    free(o);
    free(e);

    /* JPEG by extension. */
    char outj[300];
    path(outj, sizeof(outj), "local.jpg");
    CHECK_EQ(cli(&o, &e, (char *)in_png, outj, "--height", "54", "--quality", "70", "--local", NULL), 0);
    CHECK(read_file(outj, &got, &n) == 0 && imageio_sniff(got, n) == IMAGEIO_JPEG);
    free(got);
    free(o);
    free(e);
}

static void test_errors(const char *in_png, const char *in_raw)
{
    char outp[300], bad[300], *o, *e;
    path(outp, sizeof(outp), "err.png");
    path(bad, sizeof(bad), "corrupt.png");
    /* Usage errors: exit 2 with a message. */
    CHECK_EQ(cli(&o, &e, NULL), 2);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_png, NULL), 2);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--scale", "2", "--width", "9", "--local", NULL), 2);
    CHECK(strstr(e, "not both") != NULL);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--scale", "2", "--filter", "sinc", "--local", NULL), 2);
    CHECK(strstr(e, "filter") != NULL);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--local", NULL), 2);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_raw, outp, "--scale", "2", "--local", NULL), 2);
    CHECK(strstr(e, "--in-width") != NULL);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--scale", "2", "--quality", "0", NULL), 2);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, "--help", NULL), 0);
    CHECK(strstr(o, "Usage:") != NULL);
    free(o), free(e);
    /* Runtime failures: exit 1 with the reason. */
    CHECK_EQ(cli(&o, &e, "/nonexistent/in.png", outp, "--scale", "2", "--local", NULL), 1);
    CHECK(strstr(e, "cannot read") != NULL);
    free(o), free(e);
    uint8_t *png;
    size_t n;
    if (CHECK(read_file(in_png, &png, &n) == 0)) {
        CHECK(write_file(bad, png, n / 2) == 0);
        free(png);
    }
    CHECK_EQ(cli(&o, &e, bad, outp, "--scale", "2", "--local", NULL), 1);
    CHECK(strstr(e, "PNG") != NULL);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, bad, outp, "--scale", "2", "--local", "--json", NULL), 1);
    CHECK(strstr(o, "\"status\":\"EINVAL\"") && strstr(o, "\"error\":"));
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, (char *)in_raw, outp, "--in-width", "48", "--in-height", "28", "--in-channels", "3",
                 "--scale", "2", "--local", NULL),
             1);
    CHECK(strstr(e, "raw input") != NULL);
    free(o), free(e);
    /* No coordinator listening. */
    CHECK_EQ(cli(&o, &e, (char *)in_png, outp, "--scale", "2", "-c", "127.0.0.1:1", NULL), 1);
    CHECK(strstr(e, "cannot connect") != NULL);
    free(o), free(e);
}

static pid_t daemon_pid;
static char daemon_log[300];

static int start_daemon(const char *bin, char *addr, size_t cap)
{
    char ready[300];
    path(ready, sizeof(ready), "ready");
    path(daemon_log, sizeof(daemon_log), "p2c2rd.log");
    unlink(ready);
    daemon_pid = fork();
    if (daemon_pid == 0) {
        int fd = open(daemon_log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl(bin, bin, "--listen", "127.0.0.1:0", "--local-peers", "1", "--ready-file", ready, "--log-level",
              "warn", (char *)NULL);
        _exit(127);
    }
    uint64_t t0 = now_ms();
    while (now_ms() - t0 < 20000) {
        uint8_t *b;
        size_t n;
        if (read_file(ready, &b, &n) == 0 && n > 0) {
            size_t l = strcspn((char *)b, "\r\n");
            snprintf(addr, cap, "%.*s", (int)l, (char *)b);
            free(b);
            return 0;
        }
        if (waitpid(daemon_pid, NULL, WNOHANG) == daemon_pid) {
            daemon_pid = 0;
            return -1;
        }
        usleep(10000);
    }
    return -1;
}

static int stop_daemon(void)
{
    if (daemon_pid <= 0)
        return -1;
    kill(daemon_pid, SIGTERM);
    int status = 0;
    uint64_t t0 = now_ms();
    while (waitpid(daemon_pid, &status, WNOHANG) != daemon_pid) {
        if (now_ms() - t0 > 10000) {
            kill(daemon_pid, SIGKILL);
            waitpid(daemon_pid, &status, 0);
            daemon_pid = 0;
            return -1;
        }
        usleep(10000);
    }
    daemon_pid = 0;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_fabric(const char *p2c2rd, const char *in_png, const char *in_raw)
{
    char addr[128], *o, *e;
    if (!CHECK(start_daemon(p2c2rd, addr, sizeof(addr)) == 0)) {
        stop_daemon();
        return;
    }
    char outp[300], outl[300], outraw[300], bad[300];
    path(outp, sizeof(outp), "fabric.png");
    path(outl, sizeof(outl), "local.png"); /* from test_local: same params */
    path(outraw, sizeof(outraw), "fabric.raw");
    path(bad, sizeof(bad), "corrupt.png");
    int rc = cli(&o, &e, (char *)in_png, outp, "--scale", "2", "--filter", "lanczos3", "-c", addr, NULL);
    if (!CHECK(rc == 0))
        fprintf(stderr, "  fabric run: %s%s", o, e);
    CHECK(strstr(o, "96x54 png") && strstr(o, "on peer"));
    uint8_t *a, *b;
    size_t an, bn;
    /* The fabric's bytes are the local run's bytes. */
    if (CHECK(read_file(outp, &a, &an) == 0)) {
        if (CHECK(read_file(outl, &b, &bn) == 0)) {
            CHECK_MEM(a, an, b, bn);
            free(b);
        }
        free(a);
    }
    free(o), free(e);

    CHECK_EQ(cli(&o, &e, (char *)in_raw, outraw, "--in-width", "48", "--in-height", "27", "--in-channels", "3",
                 "--scale", "1.5", "--filter", "bicubic", "-c", addr, "--json", NULL),
             0);
    CHECK(strstr(o, "\"status\":\"ok\"") && strstr(o, "\"out_width\":72") && strstr(o, "\"local\":false"));
    uint8_t *want = expected(72, 41, RESAMPLE_BICUBIC, in_raw);
    CHECK(read_file(outraw, &a, &an) == 0 && an == 72 * 41 * 3 && memcmp(a, want, an) == 0);
    free(a);
    free(want);
    free(o), free(e);

    /* A corrupt input fails on the peer with the executor's reason. */
    CHECK_EQ(cli(&o, &e, bad, outp, "--scale", "2", "-c", addr, NULL), 1);
    CHECK(strstr(e, "PNG") != NULL);
    free(o), free(e);
    CHECK_EQ(cli(&o, &e, bad, outp, "--scale", "2", "-c", addr, "--json", NULL), 1);
    CHECK(strstr(o, "\"status\":\"EINVAL\"") != NULL);
    free(o), free(e);

    CHECK(stop_daemon() == 0);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s DRIVER P2C2RD\n", argv[0]);
        return 2;
    }
    driver = argv[1];
    snprintf(dir, sizeof(dir), "%s/p2c2r-upscale-cli.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char in_png[300], in_raw[300];
    path(in_png, sizeof(in_png), "in.png");
    path(in_raw, sizeof(in_raw), "in.rgb");
    make_input(in_png, in_raw);
    test_local(in_png, in_raw);
    test_errors(in_png, in_raw);
    test_fabric(argv[2], in_png, in_raw);
    int rc = check_report("test_upscale_cli");
    if (rc != 0) {
        uint8_t *log;
        size_t n;
        if (read_file(daemon_log, &log, &n) == 0) {
            fprintf(stderr, "---- p2c2rd log ----\n%s---- end ----\n", (char *)log);
            free(log);
        }
        fprintf(stderr, "files kept in %s\n", dir);
    } else {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    return rc;
}
