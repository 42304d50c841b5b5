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

/* How many bytes ch takes once escaped; the escape itself goes to e. */
static size_t esc_one(unsigned char ch, char *e)
{
    static const char hex[] = "0123456789abcdef";
    if (ch == '"' || ch == '\\') {
        e[0] = '\\';
        e[1] = (char)ch;
        return 2;
    }
    if (ch < 0x20 || ch >= 0x7f) {
        e[0] = '\\';
        e[1] = 'x';
        e[2] = hex[ch >> 4];
        e[3] = hex[ch & 15];
        return 4;
    }
    e[0] = (char)ch;
    return 1;
}

const char *log_esc(char *dst, size_t cap, const void *s, size_t n)
{
    const unsigned char *p = s;
    char e[4];
    if (cap == 0)
        return dst;
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += esc_one(p[i], e);
    /* When it does not all fit, stop where "..." and the NUL still do. */
    size_t room = total < cap ? cap - 1 : cap > 4 ? cap - 4 : 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t el = esc_one(p[i], e);
        if (o + el > room)
            break;
        memcpy(dst + o, e, el);
        o += el;
    }
    if (total >= cap && cap > 4) {
        memcpy(dst + o, "...", 3);
        o += 3;
    }
    dst[o] = '\0';
    return dst;
}

void log_write(int level, const char *event, const char *fmt, ...)
{
    char line[1024], raw[1024];
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
        int m = vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        if (m > 0) {
            /* Whatever a caller forgot to pass through log_esc, no field can
             * start a new line. */
            size_t rl = (size_t)m < sizeof(raw) ? (size_t)m : sizeof(raw) - 1;
            for (size_t i = 0; i < rl && (size_t)n < sizeof(line) - 5; i++) {
                unsigned char ch = (unsigned char)raw[i];
                if (ch < 0x20 || ch == 0x7f) {
                    n += snprintf(line + n, sizeof(line) - (size_t)n, "\\x%02x", ch);
                } else {
                    line[n++] = (char)ch;
                }
            }
            line[n] = '\0';
        }
    }
    if ((size_t)n >= sizeof(line) - 1)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
