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

/* Option flags (struct cliopt.flags). */
/* --help ends the option's line with "(default: V)", V being the value in
 * *dst before parsing: the number of an OPT_INT (in KiB, MiB or GiB when the
 * metavar is BYTES and the value a whole multiple), the string of an
 * OPT_STR (nothing when it is NULL).  So the default shown is the default
 * used, and help text never repeats it by hand.  Leave it off for a secret
 * (a token from the environment) and for a sentinel that means "computed
 * later" (then the help text says what is computed). */
#define CLIOPT_DEFAULT 0x1u

struct cliopt {
    const char *name;    /* long name without "--" */
    char short_name;     /* 0 = none */
    enum cliopt_kind kind;
    const char *metavar; /* for --help */
    int64_t min, max;    /* OPT_INT bounds */
    const char *help;    /* one line; without CLIOPT_DEFAULT, mention the default */
    void *dst; /* int * (FLAG), const char ** (STR), int64_t * (INT), cliopt_multi * */
    unsigned flags; /* CLIOPT_* */
};

/* Parses argv against the table (plus --help and --version).  Positional
 * arguments are left in argv[*first_pos .. argc).  Returns 0 to continue,
 * 1 when --help or --version was handled (exit 0), 2 on a usage error
 * (message already printed on stderr).  --help shows the defaults as they
 * were when the call began, whatever options came before it. */
int cliopt_parse(int argc, char **argv, const struct cliopt *opts, int nopts, const char *prog,
                 const char *usage, const char *about, int *first_pos);

/* Writes the --help text to f; CLIOPT_DEFAULT options show their current
 * value as the default (call it before parsing). */
void cliopt_help(FILE *f, const struct cliopt *opts, int nopts, const char *prog, const char *usage,
                 const char *about);

#endif
