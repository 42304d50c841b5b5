/* cli_util.c - helpers every p2c2r subcommand shares: connecting with a
 * helpful error, whole-file I/O, JSON string escaping, a monotonic clock.
 * Uses only the public API. */
#include "cli/cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_INPUT ((size_t)1 << 30)

uint64_t cli_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const char *cli_default_coordinator(void)
{
    const char *e = getenv("P2C2R_COORDINATOR");
    return e && *e ? e : "127.0.0.1:8765";
}

const char *cli_tls_ca, *cli_tls_name;

void cli_tls_apply(struct p2c2r_client_options *o)
{
    const char *ca = cli_tls_ca ? cli_tls_ca : getenv("P2C2R_TLS_CA");
    o->tls_ca_file = ca && *ca ? ca : NULL;
    o->tls_server_name = cli_tls_name;
}

/* Connects through the non-blocking face, so that a failure's reason
 * (p2c2r_client_last_error) can still be read when it fails. */
int cli_connect_opts(const char *addr, struct p2c2r_client_options *o, p2c2r_client **out)
{
    cli_tls_apply(o);
    if (o->connect_timeout_ms <= 0)
        o->connect_timeout_ms = 5000;
    if (o->tls_server_name && !o->tls_ca_file) {
        fprintf(stderr, "%s: --tls-name needs --tls-ca FILE (the CA that signed the coordinator's "
                        "certificate)\n", PROG);
        return P2C2R_EINVAL;
    }
    p2c2r_client *c = NULL;
    int rc = p2c2r_client_connect_start(addr, o, &c);
    if (rc == 0) {
        while (p2c2r_client_state(c) == P2C2R_STATE_CONNECTING) {
            struct pollfd pfd = {p2c2r_client_fd(c), POLLIN | (p2c2r_client_want_write(c) ? POLLOUT : 0), 0};
            poll(&pfd, 1, p2c2r_client_timeout_ms(c));
            int r = p2c2r_client_process(c);
            if (r < 0) {
                rc = r;
                break;
            }
        }
        if (rc == 0 && p2c2r_client_state(c) != P2C2R_STATE_READY)
            rc = P2C2R_EIO;
    }
    if (rc == 0) {
        *out = c;
        return 0;
    }
    const char *why = rc == P2C2R_ETLS && !c && o->tls_ca_file ? "cannot load the CA file"
                      : c ? p2c2r_client_last_error(c) : "";
    fprintf(stderr, "%s: cannot connect to coordinator %s: %s%s%s\n", PROG, addr, p2c2r_strerror(rc),
            why && *why ? ": " : "", why ? why : "");
    if (rc == P2C2R_ETLS && !c)
        fprintf(stderr, "Check --tls-ca %s: it must be a readable PEM file of CA certificates.\n",
                o->tls_ca_file);
    else if (rc == P2C2R_ETLS && !o->tls_ca_file)
        fprintf(stderr, "This coordinator requires TLS: pass --tls-ca FILE (or set P2C2R_TLS_CA) with "
                        "the CA that signed its certificate.\n");
    else if (rc == P2C2R_ETLS)
        fprintf(stderr, "Pass the CA that signed the coordinator's certificate with --tls-ca, and the "
                        "name it was issued for with --tls-name if that is not the host you connect to.\n");
    else if (rc == P2C2R_EIO || rc == P2C2R_ETIMEDOUT || rc == P2C2R_ECLOSED)
        fprintf(stderr, "Is p2c2rd running there? Start one with 'make run', or pass --coordinator HOST:PORT.\n");
    else if (rc == P2C2R_EAUTH)
        fprintf(stderr, "Pass a valid token with --token or P2C2R_TOKEN.\n");
    p2c2r_client_close(c);
    return rc == P2C2R_ECLOSED ? P2C2R_EIO : rc;
}

int cli_connect_spin(const char *addr, const char *token, uint32_t spin_us, p2c2r_client **c)
{
    return cli_connect_as(addr, token, "p2c2r-cli", spin_us, c);
}

int cli_connect_as(const char *addr, const char *token, const char *name, uint32_t spin_us, p2c2r_client **c)
{
    struct p2c2r_client_options o = P2C2R_CLIENT_OPTIONS_INIT;
    o.token = token;
    o.name = name;
    o.connect_timeout_ms = 5000;
    o.spin_us = spin_us;
    return cli_connect_opts(addr, &o, c);
}

int cli_connect(const char *addr, const char *token, p2c2r_client **c)
{
    return cli_connect_spin(addr, token, 0, c);
}

/* Reads a whole file ("-" = stdin) into a new buffer. */
int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    int err = b ? 0 : ENOMEM;
    while (!err) {
        if (n == cap) {
            uint8_t *nb = cap > max ? NULL : realloc(b, cap * 2);
            if (!nb) {
                err = cap > max ? EFBIG : ENOMEM;
                break;
            }
            b = nb;
            cap *= 2;
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            err = errno;
        else if (r == 0)
            break;
        else
            n += (size_t)r;
    }
    if (!err && n > max)
        err = EFBIG;
    if (fd != STDIN_FILENO)
        close(fd);
    if (err) {
        free(b);
        errno = err;
        return -1;
    }
    *out = b;
    *len = n;
    return 0;
}

int cli_read_all(const char *path, uint8_t **out, size_t *len)
{
    return cli_read_file(path, MAX_INPUT, out, len);
}

int cli_write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

void cli_json_escape(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

