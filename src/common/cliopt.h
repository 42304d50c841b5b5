/* cliopt.h - command-line options from one static table, so that parsing,
 * validation and --help text cannot drift apart.  Used by every program. */
#ifndef P2C2R_CLIOPT_H
#define P2C2R_CLIOPT_H

#include <stdint.h>
#include <stdio.h>

enum cliopt_kind { OPT_FLAG, OPT_STR, OPT_INT, OPT_MULTI };

/* Destination of an OPT_MULTI option: every occurrence is kept. */
#define CLIOPT_MULTI_MAX 64
struct cliopt_multi {
    const char *v[CLIOPT_MULTI_MAX];
    int n;
};

struct cliopt {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0 = none */
    enum cliopt_kind kind;
    const char *metavar; /* for --help */
    int64_t min, max;    /* OPT_INT bounds */
    const char *help;    /* one line; mention the default */
    void *dst; /* int * (FLAG), const char ** (STR), int64_t * (INT), cliopt_multi * */
};

/* Parses argv against the table (plus --help and --version).  Positional
 * arguments are left in argv[*first_pos .. argc).  Returns 0 to continue,
 * 1 when --help or --version was handled (exit 0), 2 on a usage error
 * (message already printed on stderr). */
int cliopt_parse(int argc, char **argv, const struct cliopt *opts, int nopts, const char *prog,
                 const char *usage, const char *about, int *first_pos);

void cliopt_help(FILE *f, const struct cliopt *opts, int nopts, const char *prog, const char *usage,
                 const char *about);

#endif
