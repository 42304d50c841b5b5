/* bench_harness.h - what the benchmarks that run on the integration harness
 * (bench_byzantine, bench_fair) share: parsing their options, and starting
 * the harness on the daemons of a build directory. */
#ifndef P2C2R_BENCH_HARNESS_H
#define P2C2R_BENCH_HARNESS_H

#include <stdio.h>
#include <stdlib.h>

#include "common/cliopt.h"
#include "harness.h"

/* Parses argv with opts (no positional arguments).  Returns -1 to go on,
 * else the exit status: 0 after --help or --version, 2 on a usage error
 * (the message is on stderr). */
static inline int bench_parse(int argc, char **argv, const struct cliopt *opts, int nopts, const char *prog,
                              const char *about)
{
    int pos;
    int rc = cliopt_parse(argc, argv, opts, nopts, prog, "[OPTIONS]", about, &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[pos]);
        return 2;
    }
    return -1;
}

/* Starts the harness on bin_dir's p2c2rd and p2c2r-peer.  Its watchdog
 * bounds the whole run: P2C2R_TEST_TIMEOUT when set (as under ctest), else
 * timeout_s. */
static inline void bench_harness_init(const char *argv0, const char *bin_dir, const char *name,
                                      const char *timeout_s)
{
    static char coord[1024], peer[1024];
    snprintf(coord, sizeof(coord), "%s/p2c2rd", bin_dir);
    snprintf(peer, sizeof(peer), "%s/p2c2r-peer", bin_dir);
    setenv("P2C2R_TEST_TIMEOUT", timeout_s, 0);
    char *hargv[] = {(char *)argv0, coord, peer, NULL};
    h_init(3, hargv, name);
}

#endif
