/* cliopt.c - table-driven option parsing (see cliopt.h). */
#include "common/cliopt.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/version.h"

#define MAX_OPTS 64

void cliopt_help(FILE *f, const struct cliopt *opts, int nopts, const char *prog, const char *usage,
                 const char *about)
{
    fprintf(f, "Usage: %s %s\n\n%s\n\nOptions:\n", prog, usage, about);
    for (int i = 0; i < nopts; i++) {
        char left[64];
        const struct cliopt *o = &opts[i];
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
    fprintf(f, "  %-28s %s\n  %-28s %s\n", "-h, --help", "show this help and exit",
            "-V, --version", "show the version and exit");
}

int cliopt_parse(int argc, char **argv, const struct cliopt *opts, int nopts, const char *prog,
                 const char *usage, const char *about, int *first_pos)
{
    struct option lo[MAX_OPTS + 3];
    char so[MAX_OPTS * 2 + 8];
    size_t sp = 0;
    if (nopts > MAX_OPTS)
        abort();
    so[sp++] = ':';
    for (int i = 0; i < nopts; i++) {
        lo[i].name = opts[i].name;
        lo[i].has_arg = opts[i].kind == OPT_FLAG ? no_argument : required_argument;
        lo[i].flag = NULL;
        lo[i].val = 256 + i;
        if (opts[i].short_name) {
            so[sp++] = opts[i].short_name;
            if (opts[i].kind != OPT_FLAG)
                so[sp++] = ':';
        }
    }
    lo[nopts] = (struct option){"help", no_argument, NULL, 'h'};
    lo[nopts + 1] = (struct option){"version", no_argument, NULL, 'V'};
    lo[nopts + 2] = (struct option){NULL, 0, NULL, 0};
    so[sp++] = 'h';
    so[sp++] = 'V';
    so[sp] = '\0';
    optind = 0; /* 0, not 1: makes glibc reset its state for a fresh argv */
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, so, lo, NULL)) != -1) {
        if (c == 'h') {
            cliopt_help(stdout, opts, nopts, prog, usage, about);
            return 1;
        }
        if (c == 'V') {
            printf("%s %s\n", prog, P2C2R_VERSION_STRING);
            return 1;
        }
        if (c == '?' || c == ':') {
            char shortopt[3] = {'-', (char)optopt, '\0'};
            const char *bad = optopt > 0 && optopt < 256 ? shortopt : argv[optind - 1];
            fprintf(stderr, "%s: %s '%s'\nTry '%s --help' for the list of options.\n", prog,
                    c == ':' ? "missing value for option" : "unknown option", bad, prog);
            return 2;
        }
        int idx = -1;
        if (c >= 256)
            idx = c - 256;
        else
            for (int i = 0; i < nopts; i++)
                if (opts[i].short_name == c)
                    idx = i;
        if (idx < 0)
            return 2;
        const struct cliopt *o = &opts[idx];
        switch (o->kind) {
        case OPT_FLAG:
            *(int *)o->dst = 1;
            break;
        case OPT_STR:
            *(const char **)o->dst = optarg;
            break;
        case OPT_MULTI: {
            struct cliopt_multi *m = o->dst;
            if (m->n >= CLIOPT_MULTI_MAX) {
                fprintf(stderr, "%s: --%s given more than %d times\n", prog, o->name, CLIOPT_MULTI_MAX);
                return 2;
            }
            m->v[m->n++] = optarg;
            break;
        }
        case OPT_INT:
            if (parse_i64(optarg, o->min, o->max, (int64_t *)o->dst) != 0) {
                fprintf(stderr, "%s: --%s expects an integer from %lld to %lld, got '%s'\n", prog,
                        o->name, (long long)o->min, (long long)o->max, optarg);
                return 2;
            }
            break;
        }
    }
    *first_pos = optind;
    return 0;
}
