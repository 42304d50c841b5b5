/* util.h - small helpers shared by the daemons and the library: monotonic
 * time, HOST:PORT parsing, a fast seeded PRNG, abort-on-OOM allocation
 * (daemons only; the library handles allocation failure itself), hex
 * encoding and comma-separated option lists. */
#ifndef P2C2R_UTIL_H
#define P2C2R_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CONTAINER_OF(p, type, member) ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* Monotonic clock in microseconds / nanoseconds. */
uint64_t now_us(void);
uint64_t now_ns(void);

/* Parses "HOST:PORT" or "[V6]:PORT" (numeric or resolvable host, port
 * 0..65535) into *out.  Returns 0 or P2C2R_EADDR. */
int addr_parse(const char *s, struct sockaddr_storage *out, socklen_t *outlen);

/* Formats a socket address as "HOST:PORT" ("[::1]:PORT" for IPv6). */
void addr_format(const struct sockaddr *sa, char *dst, size_t cap);

/* xoshiro-style 64-bit PRNG, deterministic for a given seed. */
struct rng {
    uint64_t s;
};
static inline uint64_t rng_next(struct rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Descriptors a daemon needs besides one per connection: stdio, the loop's
 * epoll and wake-up descriptors, signal pipes, log files, some slack. */
#define FD_RESERVE 64

/* Raises the soft RLIMIT_NOFILE to at least want descriptors, as far as the
 * hard limit allows.  Without this, connections past the usual soft limit
 * of 1024 fail with EMFILE.  Returns 0 when the limit is now >= want, else
 * P2C2R_ELIMIT; *got (may be NULL) receives the limit in force afterwards
 * either way (UINT64_MAX for unlimited). */
int fd_limit_raise(uint64_t want, uint64_t *got);

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

/* Parses a decimal integer in [min, max]; returns 0 or -1. */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);

/* Writes the n bytes of in as 2n lowercase hex digits and a NUL at out
 * (which must have room for 2n + 1 bytes). */
void hex_encode(const uint8_t *in, size_t n, char *out);

/* Iterates over the items of a comma-separated option value ("a,b,c"):
 * returns 1 with the next item at [*item, *item + *len) (borrowed from the
 * string, not NUL-terminated) and advances *s past it and its comma, or 0
 * at the end.  Nothing is trimmed: spaces belong to the items.  Empty items
 * ("a,,b", a leading comma) are passed on for the caller to refuse, except
 * after a trailing comma, which just ends the list: "" has no item, "a,"
 * one, "," one empty item, ",," two. */
int util_list_next(const char **s, const char **item, size_t *len);

#endif
