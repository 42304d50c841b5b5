/* cli_util.h - helpers shared by the p2c2r subcommands (src/cli/cmd_*.c). */
#ifndef P2C2R_CLI_UTIL_H
#define P2C2R_CLI_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "p2c2r/client.h"

#ifndef PROG
#define PROG "p2c2r" /* a subcommand may name itself before including this */
#endif

/* Monotonic clock in microseconds. */
uint64_t cli_now_us(void);

/* $P2C2R_COORDINATOR, else "127.0.0.1:8765". */
const char *cli_default_coordinator(void);

/* TLS for every subcommand that connects: CLI_TLS_OPTS in its option table
 * (--tls-ca FILE, default $P2C2R_TLS_CA; --tls-name NAME), and
 * cli_tls_apply on its client options (cli_connect does it). */
extern const char *cli_tls_ca, *cli_tls_name;
#define CLI_TLS_OPTS                                                                               \
    {"tls-ca", 0, OPT_STR, "FILE", 0, 0,                                                           \
     "connect with TLS 1.3, trusting the coordinator's certificate only if it chains to a CA in "  \
     "FILE (PEM; default $P2C2R_TLS_CA)", &cli_tls_ca},                                            \
    {"tls-name", 0, OPT_STR, "NAME", 0, 0,                                                          \
     "name or IP address the coordinator's certificate must carry (default: the host of "          \
     "--coordinator)", &cli_tls_name}
void cli_tls_apply(struct p2c2r_client_options *o);

/* Connects with o (5 s timeout unless o says otherwise; TLS options
 * applied) and on failure prints on stderr what went wrong (the
 * library's reason) and what to do.  Returns 0 or the p2c2r error. */
int cli_connect_opts(const char *addr, struct p2c2r_client_options *o, p2c2r_client **c);

/* Connects (5 s timeout) and on failure prints on stderr what went wrong and
 * what to do.  Returns 0 or the p2c2r error. */
int cli_connect(const char *addr, const char *token, p2c2r_client **c);
int cli_connect_spin(const char *addr, const char *token, uint32_t spin_us, p2c2r_client **c);
/* The same with the HELLO name given (the account of durable jobs). */
int cli_connect_as(const char *addr, const char *token, const char *name, uint32_t spin_us, p2c2r_client **c);

/* Reads a whole file ("-" = stdin, at most 1 GiB) into a new malloc'd
 * buffer.  Returns 0 or -1 with errno set. */
int cli_read_all(const char *path, uint8_t **out, size_t *len);

/* The same with a limit: more than max bytes fails with errno EFBIG. */
int cli_read_file(const char *path, size_t max, uint8_t **out, size_t *len);

/* Writes all n bytes to fd.  Returns 0 or -1 with errno set. */
int cli_write_all(int fd, const void *p, size_t n);

/* Prints s[0..n) as a JSON string literal. */
void cli_json_escape(FILE *f, const char *s, size_t n);

#endif
