/* test_log.c - the logger keeps remote text from forging log lines: log_esc
 * escapes quotes, backslashes and every byte outside printable ASCII, cuts
 * with "..." at its capacity, and log_write escapes control bytes that a
 * caller passed unescaped, so one event is always one line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/log.h"

static void test_esc(void)
{
    char out[64];
    CHECK(strcmp(log_esc(out, sizeof(out), "plain name", 10), "plain name") == 0);
    CHECK(strcmp(log_esc(out, sizeof(out), "a\"b\\c", 5), "a\\\"b\\\\c") == 0);
    CHECK(strcmp(log_esc(out, sizeof(out), "x\ny\r", 4), "x\\x0ay\\x0d") == 0);
    CHECK(strcmp(log_esc(out, sizeof(out), "\x7f\xff", 2), "\\x7f\\xff") == 0);
    const char nul[] = {'a', 0, 'b'};
    CHECK(strcmp(log_esc(out, sizeof(out), nul, 3), "a\\x00b") == 0);
    CHECK(strcmp(log_esc(out, sizeof(out), "", 0), "") == 0);
    /* Cut at the capacity, with "..." saying so, never past it. */
    char small[12];
    memset(small, 'Z', sizeof(small));
    log_esc(small, sizeof(small), "0123456789abcdef", 16);
    CHECK(strlen(small) < sizeof(small));
    CHECK(strcmp(small, "01234567...") == 0);
    /* An escape is never split by the cut. */
    log_esc(small, sizeof(small), "\n\n\n\n\n", 5);
    CHECK(strcmp(small, "\\x0a\\x0a...") == 0);
    /* Exactly fitting text is not cut. */
    char fit[6];
    CHECK(strcmp(log_esc(fit, sizeof(fit), "abcde", 5), "abcde") == 0);
}

/* Everything log_write writes to stderr while fn runs. */
static size_t capture(void (*fn)(void), char *out, size_t cap)
{
    char path[] = "/tmp/p2c2r-test-log-XXXXXX";
    int fd = mkstemp(path);
    if (!CHECK(fd >= 0))
        return 0;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    ssize_t n = pread(fd, out, cap - 1, 0);
    close(fd);
    unlink(path);
    out[n > 0 ? n : 0] = '\0';
    return n > 0 ? (size_t)n : 0;
}

static void log_forged(void)
{
    /* A caller that forgot log_esc: the name holds a newline and a fake
     * second event. */
    LOG_I("conn_hello", "name=\"%s\"", "evil\nts=0 level=error event=forged");
}

static void log_escaped(void)
{
    char esc[256];
    const char *name = "a\"b";
    LOG_I("conn_hello", "name=\"%s\"", log_esc(esc, sizeof(esc), name, strlen(name)));
}

static void test_write(void)
{
    char out[2048];
    log_set_level(LOG_INFO);
    size_t n = capture(log_forged, out, sizeof(out));
    CHECK(n > 0);
    CHECK(strchr(out, '\n') == out + n - 1); /* one line */
    CHECK(strstr(out, "evil\\x0ats=0") != NULL);
    n = capture(log_escaped, out, sizeof(out));
    CHECK(strstr(out, "name=\"a\\\"b\"") != NULL);
}

int main(void)
{
    test_esc();
    test_write();
    return check_report("test_log");
}
