/* cliopt.c - table-driven option parsing (see cliopt.h). */
#include "common/cliopt.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "common/version.h"

#define MAX_OPTS 64

/* An option's value as --help shows it: taken before parsing. */
struct dflt {
    int64_t i;
    const char *s;
};

static void dflt_take(const struct cliopt *opts, int nopts, struct dflt *d)
{
    for (int i = 0; i < nopts; i++) {
        d[i].i = opts[i].kind == OPT_INT && opts[i].dst ? *(const int64_t *)opts[i].dst : 0;
        d[i].s = opts[i].kind == OPT_STR && opts[i].dst ? *(const char *const *)opts[i].dst : NULL;
    }
}

/* Writes " (default: V)" for o into dst, or "" when o shows no default. */
static void dflt_format(const struct cliopt *o, const struct dflt *d, char *dst, size_t cap)
{
    dst[0] = '\0';
    if (!(o->flags & CLIOPT_DEFAULT))
        return;
    if (o->kind == OPT_STR && d->s) {
        snprintf(dst, cap, " (default: %s)", d->s);
    } else if (o->kind == OPT_INT) {
        static const char *const units[] = {"GiB", "MiB", "KiB"};
        int64_t v = d->i;
        if (o->metavar && strcmp(o->metavar, "BYTES") == 0 && v > 0) {
            for (int u = 0; u < 3; u++) {
                int64_t m = (int64_t)1 << (10 * (3 - u));
                if (v % m == 0) {
                    snprintf(dst, cap, " (default: %lld %s)", (long long)(v / m), units[u]);
                    return;
                }
            }
        }
        snprintf(dst, cap, " (default: %lld)", (long long)v);
    }
}

static void help_write(FILE *f, const struct cliopt *opts, int nopts, const struct dflt *d,
                       const char *prog, const char *usage, const char *about)
{
    fprintf(f, "Usage: %s %s\n\n%s\n\nOptions:\n", prog, usage, about);
    for (int i = 0; i < nopts; i++) {
        char left[64], def[256];
        const struct cliopt *o = &opts[i];
        if (o->short_name)
            snprintf(left, sizeof(left), "-%c, --%s%s%s", o->short_name, o->name,
                     o->metavar ? " " : "", o->metavar ? o->metavar : "");
        else
            snprintf(left, sizeof(left), "    --%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
        dflt_format(o, &d[i], def, sizeof(def));
        fprintf(f, "  %-28s %s%s\n", left, o->help, def);
    }
    fprintf(f, "  %-28s %s\n  %-28s %s\n", "-h, --help", "show this help and exit",
            "-V, --version", "show the version and exit");
}

void cliopt_help(FILE *f, const struct cliopt *opts, int nopts, const char *prog, const char *usage,
                 const char *about)
{
    struct dflt d[MAX_OPTS];
    if (nopts > MAX_OPTS)
        abort();
    dflt_take(opts, nopts, d);
    help_write(f, opts, nopts, d, prog, usage, about);
}

int cliopt_parse(int argc, char **argv, const struct cliopt *opts, int nopts, const char *prog,
                 const char *usage, const char *about, int *first_pos)
{
    struct option lo[MAX_OPTS + 3];
    char so[MAX_OPTS * 2 + 8];
    struct dflt dflt[MAX_OPTS];
    size_t sp = 0;
    if (nopts > MAX_OPTS)
        abort();
    dflt_take(opts, nopts, dflt);
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
            help_write(stdout, opts, nopts, dflt, prog, usage, about);
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
