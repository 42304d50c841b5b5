/* log.h - one line per event, key=value fields, on stderr.
 *
 * The level is checked before any formatting happens.  Daemons call
 * log_set_level once at start-up; the client library never logs. */
#ifndef P2C2R_LOG_H
#define P2C2R_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

extern int log_level_cur;

/* Returns 0 or -1 when name is not a level name. */
int log_level_parse(const char *name, int *out);
void log_set_level(int level);
void log_set_component(const char *name);

/* Text that came from a remote (a HELLO name, an ERROR's text) must go
 * through log_esc before it reaches a log line: it writes s[0..n) to dst
 * (cap bytes, NUL-terminated, cut with "..." when it does not fit) with '"'
 * and '\\' escaped by a backslash and every byte outside printable ASCII as
 * \xNN, so a remote can neither start a new line nor end a quoted field.
 * Returns dst.  As a second line of defence log_write escapes any control
 * byte left in a formatted line the same way. */
const char *log_esc(char *dst, size_t cap, const void *s, size_t n);

void log_write(int level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG(level, event, ...)                                    \
    do {                                                          \
        if ((level) >= log_level_cur)                             \
            log_write((level), (event), __VA_ARGS__);             \
    } while (0)
#define LOG_D(event, ...) LOG(LOG_DEBUG, event, __VA_ARGS__)
#define LOG_I(event, ...) LOG(LOG_INFO, event, __VA_ARGS__)
#define LOG_W(event, ...) LOG(LOG_WARN, event, __VA_ARGS__)
#define LOG_E(event, ...) LOG(LOG_ERROR, event, __VA_ARGS__)

#endif
