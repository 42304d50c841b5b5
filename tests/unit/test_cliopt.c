/* test_cliopt.c - unit tests for the table-driven option parser
 * (src/common/cliopt.c): every option kind in its short, long and --opt=v
 * spellings, bounds on integers, the OPT_MULTI limit, positional arguments,
 * --help/--version, and the usage errors with their messages.
 *
 * --help shows defaults taken from the option variables (CLIOPT_DEFAULT);
 * and p2c2r-peer --help (the binary named by $P2C2R_PEER_BIN, which ctest
 * sets) must offer every built-in task type as the default of --types.
 *
 * cliopt_parse prints on stdout/stderr; the tests capture both in a
 * temporary file to check the text.  getopt keeps hidden state between
 * calls, so each parse starts from a fully reset getopt (see getopt_reset)
 * except the one probe that shows cliopt_parse does not reset it itself. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "common/cliopt.h"
#include "tasks/tasks.h"

static int o_verbose;
static const char *o_str;
static int64_t o_num;
static struct cliopt_multi o_multi;

static const struct cliopt opts[] = {
    {"verbose", 'v', OPT_FLAG, NULL, 0, 0, "say more", &o_verbose},
    {"str", 's', OPT_STR, "TEXT", 0, 0, "a string (default: none)", &o_str},
    {"num", 'n', OPT_INT, "N", -5, 10, "a number from -5 to 10 (default: 0)", &o_num},
    {"multi", 'm', OPT_MULTI, "X", 0, 0, "may repeat", &o_multi},
    {"long-only", 0, OPT_FLAG, NULL, 0, 0, "no short name", &o_verbose},
};
#define NOPTS ((int)(sizeof(opts) / sizeof(opts[0])))

static char out[8192]; /* what the last parse printed */

/* Forgets getopt's position in the previous argv (glibc re-initialises
 * when optind is 0). */
static void getopt_reset(void)
{
    char *argv[] = {"reset", NULL};
    optind = 0;
    opterr = 0;
    while (getopt(1, argv, "") != -1)
        ;
}

static void reset_dst(void)
{
    o_verbose = 0;
    o_str = NULL;
    o_num = 0;
    memset(&o_multi, 0, sizeof(o_multi));
}

/* Parses a NULL-terminated argv, capturing stdout and stderr into out. */
static int parse_raw(char **argv, int *first_pos)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    fflush(stderr);
    FILE *tmp = tmpfile();
    if (!tmp) {
        perror("tmpfile");
        exit(2);
    }
    int so = dup(1), se = dup(2);
    dup2(fileno(tmp), 1);
    dup2(fileno(tmp), 2);
    int rc = cliopt_parse(argc, argv, opts, NOPTS, "prog", "[OPTIONS] ARGS", "Does things.",
                          first_pos);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return rc;
}

static int parse(char **argv, int *first_pos)
{
    reset_dst();
    getopt_reset();
    return parse_raw(argv, first_pos);
}

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})

static void test_kinds(void)
{
    int fp = -1;
    CHECK_EQ(parse(ARGV("-v"), &fp), 0);
    CHECK_EQ(o_verbose, 1);
    CHECK_EQ(fp, 2);
    CHECK(out[0] == '\0'); /* silent on success */

    CHECK_EQ(parse(ARGV("--verbose", "--str", "hello", "--num", "-5"), &fp), 0);
    CHECK_EQ(o_verbose, 1);
    CHECK(o_str && strcmp(o_str, "hello") == 0);
    CHECK_EQ(o_num, -5);

    CHECK_EQ(parse(ARGV("--str=a=b", "--num=10", "--long-only"), &fp), 0);
    CHECK(o_str && strcmp(o_str, "a=b") == 0);
    CHECK_EQ(o_num, 10);
    CHECK_EQ(o_verbose, 1);

    CHECK_EQ(parse(ARGV("-sxyz", "-n3", "-vm", "one"), &fp), 0);
    CHECK(o_str && strcmp(o_str, "xyz") == 0);
    CHECK_EQ(o_num, 3);
    CHECK_EQ(o_verbose, 1);
    CHECK(o_multi.n == 1 && strcmp(o_multi.v[0], "one") == 0);

    /* The last occurrence of a single-valued option wins. */
    CHECK_EQ(parse(ARGV("-n", "1", "--num", "2", "-s", "a", "-s", "b"), &fp), 0);
    CHECK_EQ(o_num, 2);
    CHECK(o_str && strcmp(o_str, "b") == 0);

    /* OPT_MULTI keeps every occurrence in order. */
    CHECK_EQ(parse(ARGV("-m", "a", "--multi=b", "--multi", "c", "-md"), &fp), 0);
    if (CHECK(o_multi.n == 4)) {
        CHECK(strcmp(o_multi.v[0], "a") == 0);
        CHECK(strcmp(o_multi.v[1], "b") == 0);
        CHECK(strcmp(o_multi.v[2], "c") == 0);
        CHECK(strcmp(o_multi.v[3], "d") == 0);
    }
}

static void test_multi_limit(void)
{
    char *argv[2 * CLIOPT_MULTI_MAX + 4];
    int argc = 0, fp;
    argv[argc++] = "prog";
    for (int i = 0; i < CLIOPT_MULTI_MAX; i++) {
        argv[argc++] = "-m";
        argv[argc++] = "x";
    }
    argv[argc] = NULL;
    CHECK_EQ(parse(argv, &fp), 0);
    CHECK_EQ(o_multi.n, CLIOPT_MULTI_MAX);
    argv[argc++] = "--multi=y";
    argv[argc] = NULL;
    fp = -7;
    CHECK_EQ(parse(argv, &fp), 2);
    CHECK(strstr(out, "--multi") != NULL && strstr(out, "64") != NULL);
    CHECK_EQ(fp, -7);
}

static void test_positional(void)
{
    int fp = -1;
    char **argv = ARGV("a", "-v", "b", "--num=4", "c");
    CHECK_EQ(parse(argv, &fp), 0);
    CHECK_EQ(o_verbose, 1);
    CHECK_EQ(o_num, 4);
    /* Options are permuted to the front; positionals keep their order. */
    if (CHECK(fp == 3)) {
        CHECK(strcmp(argv[3], "a") == 0);
        CHECK(strcmp(argv[4], "b") == 0);
        CHECK(strcmp(argv[5], "c") == 0);
    }

    argv = ARGV("-v", "--", "-n", "x");
    CHECK_EQ(parse(argv, &fp), 0);
    CHECK_EQ(o_num, 0);
    if (CHECK(fp == 3)) {
        CHECK(strcmp(argv[3], "-n") == 0);
        CHECK(strcmp(argv[4], "x") == 0);
    }

    char *none[] = {"prog", NULL};
    CHECK_EQ(parse(none, &fp), 0);
    CHECK_EQ(fp, 1);

    CHECK_EQ(parse(ARGV("-"), &fp), 0); /* "-" is a positional (stdin) */
    CHECK_EQ(fp, 1);
}

static void test_errors(void)
{
    int fp = -7;
    CHECK_EQ(parse(ARGV("--bogus"), &fp), 2);
    CHECK(strstr(out, "unknown option '--bogus'") != NULL);
    CHECK(strstr(out, "--help") != NULL); /* says what to do */
    CHECK_EQ(fp, -7);

    CHECK_EQ(parse(ARGV("-x"), &fp), 2);
    CHECK(strstr(out, "unknown option '-x'") != NULL);

    CHECK_EQ(parse(ARGV("--str"), &fp), 2);
    CHECK(strstr(out, "missing value for option '--str'") != NULL);
    CHECK_EQ(parse(ARGV("-v", "-n"), &fp), 2);
    CHECK(strstr(out, "missing value") != NULL);

    static const char *const bad_num[] = {"11", "-6", "abc", "", "3x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++) {
        char arg[64];
        snprintf(arg, sizeof(arg), "--num=%s", bad_num[i]);
        CHECK_EQ(parse(ARGV(arg), &fp), 2);
        CHECK(strstr(out, "--num expects an integer from -5 to 10") != NULL);
        CHECK(strstr(out, bad_num[i]) != NULL);
    }
    CHECK_EQ(parse(ARGV("--verbose=1"), &fp), 2); /* a flag takes no value */
    CHECK_EQ(fp, -7);
}

static void test_help_version(void)
{
    int fp = -7;
    CHECK_EQ(parse(ARGV("--help"), &fp), 1);
    CHECK(strstr(out, "Usage: prog [OPTIONS] ARGS") != NULL);
    CHECK(strstr(out, "Does things.") != NULL);
    for (int i = 0; i < NOPTS; i++) {
        CHECK(strstr(out, opts[i].name) != NULL);
        CHECK(strstr(out, opts[i].help) != NULL);
    }
    CHECK(strstr(out, "-s, --str TEXT") != NULL);
    CHECK(strstr(out, "    --long-only") != NULL);
    CHECK(strstr(out, "-h, --help") != NULL);
    CHECK(strstr(out, "-V, --version") != NULL);
    CHECK_EQ(parse(ARGV("-h"), &fp), 1);
    CHECK(strstr(out, "Usage:") != NULL);

    CHECK_EQ(parse(ARGV("--version"), &fp), 1);
    CHECK(strncmp(out, "prog ", 5) == 0);
    CHECK(strchr(out, '.') != NULL);
    CHECK_EQ(parse(ARGV("-V", "--bogus"), &fp), 1); /* handled before later errors */

    /* cliopt_help writes to any stream. */
    FILE *tmp = tmpfile();
    if (CHECK(tmp != NULL)) {
        cliopt_help(tmp, opts, NOPTS, "p", "U", "A");
        rewind(tmp);
        size_t n = fread(out, 1, sizeof(out) - 1, tmp);
        out[n] = '\0';
        fclose(tmp);
        CHECK(strncmp(out, "Usage: p U\n\nA\n", 14) == 0);
    }
}

/* Known bugs, both from an unknown short option inside a cluster ("-xv"):
 * the message names argv[optind - 1], which is still the previous argument
 * ("prog"), not "-x"; and the parse returns with getopt still pointing into
 * the cluster, so the next cliopt_parse in the same process (cliopt_parse
 * sets optind = 1, which glibc does not treat as a reset) resumes at the
 * stale "v" of the old argv and sets --verbose. */
static void test_cluster_bugs(void)
{
    int fp;
    static char *first[] = {"prog", "-xv", NULL};
    CHECK_EQ(parse(first, &fp), 2);
    CHECK(strstr(out, "'-x'") != NULL);
    static char *second[] = {"prog", "positional", NULL};
    reset_dst();
    CHECK_EQ(parse_raw(second, &fp), 0); /* deliberately no getopt_reset */
    CHECK(o_verbose == 0);
    getopt_reset();
}

/* ---- defaults in --help -------------------------------------------------- */

static int64_t d_num, d_bytes, d_odd, d_neg;
static const char *d_str, *d_null, *d_secret;
static int d_flag;

static const struct cliopt dopts[] = {
    {"num", 'n', OPT_INT, "N", 0, 100, "a number", &d_num, CLIOPT_DEFAULT},
    {"bytes", 0, OPT_INT, "BYTES", 0, INT64_MAX, "a size", &d_bytes, CLIOPT_DEFAULT},
    {"odd", 0, OPT_INT, "BYTES", 0, INT64_MAX, "an odd size", &d_odd, CLIOPT_DEFAULT},
    {"neg", 0, OPT_INT, "N", -10, 10, "a negative number", &d_neg, CLIOPT_DEFAULT},
    {"str", 's', OPT_STR, "S", 0, 0, "a string", &d_str, CLIOPT_DEFAULT},
    {"null", 0, OPT_STR, "S", 0, 0, "unset by default", &d_null, CLIOPT_DEFAULT},
    {"secret", 0, OPT_STR, "S", 0, 0, "not shown", &d_secret},
    {"flag", 0, OPT_FLAG, NULL, 0, 0, "a flag", &d_flag, CLIOPT_DEFAULT},
};
#define NDOPTS ((int)(sizeof(dopts) / sizeof(dopts[0])))

/* The --help line of option name in out, copied to line (or ""). */
static void help_line(const char *name, char *line, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "--%s ", name);
    line[0] = '\0';
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        const char *k = strstr(p, key);
        if (k && k < p + n) {
            snprintf(line, cap, "%.*s", (int)n, p);
            return;
        }
        p += n + (nl ? 1 : 0);
    }
}

static int dparse(char **argv)
{
    d_num = 42;
    d_bytes = 16 << 20;
    d_odd = 1500;
    d_neg = -3;
    d_str = "abc,def";
    d_null = NULL;
    d_secret = "hunter2";
    d_flag = 0;
    getopt_reset();
    int argc = 0;
    while (argv[argc])
        argc++;
    fflush(stdout);
    FILE *tmp = tmpfile();
    if (!tmp)
        exit(2);
    int so = dup(1);
    dup2(fileno(tmp), 1);
    int fp, rc = cliopt_parse(argc, argv, dopts, NDOPTS, "prog", "", "About.", &fp);
    fflush(stdout);
    dup2(so, 1);
    close(so);
    rewind(tmp);
    size_t n = fread(out, 1, sizeof(out) - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return rc;
}

static void test_help_defaults(void)
{
    char line[512];
    /* Options given before --help change the values, not the defaults. */
    static const char *const runs[][4] = {
        {"prog", "--help", NULL, NULL},
        {"prog", "-n", "7", "--help"},
        {"prog", "--str=zzz", "--flag", "--help"},
    };
    for (size_t r = 0; r < sizeof(runs) / sizeof(runs[0]); r++) {
        char *argv[5] = {NULL};
        for (int i = 0; i < 4 && runs[r][i]; i++)
            argv[i] = (char *)runs[r][i];
        CHECK_EQ(dparse(argv), 1);
        help_line("num", line, sizeof(line));
        CHECK(strstr(line, "a number (default: 42)") != NULL);
        help_line("bytes", line, sizeof(line));
        CHECK(strstr(line, "a size (default: 16 MiB)") != NULL);
        help_line("odd", line, sizeof(line));
        CHECK(strstr(line, "an odd size (default: 1500)") != NULL);
        help_line("neg", line, sizeof(line));
        CHECK(strstr(line, "(default: -3)") != NULL);
        help_line("str", line, sizeof(line));
        CHECK(strstr(line, "a string (default: abc,def)") != NULL);
        help_line("null", line, sizeof(line));
        CHECK(line[0] && strstr(line, "default:") == NULL);
        help_line("secret", line, sizeof(line));
        CHECK(line[0] && strstr(line, "hunter2") == NULL && strstr(line, "default") == NULL);
        CHECK(strstr(out, "--flag") != NULL && strstr(out, "a flag (default") == NULL);
    }
    /* cliopt_help shows the values as they are now. */
    d_bytes = 3ll << 30;
    d_str = "now";
    FILE *tmp = tmpfile();
    if (CHECK(tmp != NULL)) {
        cliopt_help(tmp, dopts, NDOPTS, "p", "U", "A");
        rewind(tmp);
        size_t n = fread(out, 1, sizeof(out) - 1, tmp);
        out[n] = '\0';
        fclose(tmp);
        CHECK(strstr(out, "a size (default: 3 GiB)") != NULL);
        CHECK(strstr(out, "a string (default: now)") != NULL);
        d_bytes = 5 << 10;
        tmp = tmpfile();
        if (CHECK(tmp != NULL)) {
            cliopt_help(tmp, dopts, NDOPTS, "p", "U", "A");
            rewind(tmp);
            n = fread(out, 1, sizeof(out) - 1, tmp);
            out[n] = '\0';
            fclose(tmp);
            CHECK(strstr(out, "a size (default: 5 KiB)") != NULL);
        }
    }
}

/* p2c2r-peer --help: the default of --types is the executor table, every
 * type in table order (what the peer registers when --types is not given). */
static void test_peer_help(void)
{
    const char *bin = getenv("P2C2R_PEER_BIN");
    if (!CHECK(bin && *bin)) {
        fprintf(stderr, "test_cliopt: set P2C2R_PEER_BIN to the p2c2r-peer binary (ctest does)\n");
        return;
    }
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "'%s' --help 2>&1", bin);
    FILE *p = popen(cmd, "r");
    if (!CHECK(p != NULL))
        return;
    size_t n = fread(out, 1, sizeof(out) - 1, p);
    out[n] = '\0';
    CHECK_EQ(pclose(p), 0);
    char line[1024], want[1024];
    help_line("types", line, sizeof(line));
    size_t nb, o = 0;
    const struct p2c2r_executor *const *t = tasks_builtin(&nb);
    CHECK(nb == 6);
    for (size_t i = 0; i < nb; i++) {
        o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", i ? "," : "(default: ", t[i]->name);
        char word[64];
        snprintf(word, sizeof(word), "%s", t[i]->name);
        CHECK(strstr(line, word) != NULL);
    }
    snprintf(want + o, sizeof(want) - o, ")");
    if (!CHECK(strstr(line, want) != NULL))
        fprintf(stderr, "p2c2r-peer --help says:\n%s\nwanted %s\n", line, want);
}

int main(void)
{
    test_kinds();
    test_multi_limit();
    test_positional();
    test_errors();
    test_help_version();
    test_cluster_bugs();
    test_help_defaults();
    test_peer_help();
    return check_report("test_cliopt");
}
