/* log.c - key=value line logger (see log.h).  Each line is written with a
 * single write so lines from different threads do not interleave. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_level_cur = LOG_INFO;
static const char *component = "p2c2r";
static const char *const names[] = {"debug", "info", "warn", "error", "off"};

int log_level_parse(const char *name, int *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

void log_set_level(int level) { log_level_cur = level; }
void log_set_component(const char *name) { component = name; }

void log_write(int level, const char *event, const char *fmt, ...)
{
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s comp=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
                     names[level < 0 ? 0 : level > 3 ? 3 : level], component, event);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line)) {
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
