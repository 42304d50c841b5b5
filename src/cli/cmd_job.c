/* cmd_job.c - `p2c2r job submit|status|wait|get|cancel|list`: durable jobs
 * through the public API (p2c2r_job_*).  A job belongs to an account, the
 * HELLO name the client connects with (--account, default
 * $P2C2R_ACCOUNT or "p2c2r-cli"), so another process with the same account
 * can name it later.  Exit status: 0 success (for get and wait: the job
 * succeeded), 1 failure (the job failed, the coordinator refused, no
 * connection), 2 usage error. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PROG "p2c2r job"
#include "cli/cli_util.h"
#include "common/cliopt.h"
#include "p2c2r/client.h"

int cmd_job(int argc, char **argv);

struct jopts {
    const char *coord, *token, *account, *in, *out, *prio;
    struct cliopt_multi params;
    int64_t timeout, deadline, key;
    int json, release;
};

static const char *state_name(int s)
{
    return s == P2C2R_JOB_QUEUED ? "queued" : s == P2C2R_JOB_RUNNING ? "running" : s == P2C2R_JOB_DONE ? "done" : "?";
}

static void print_info(const struct p2c2r_job_info *i, int json)
{
    if (json) {
        printf("{\"id\": %" PRIu64 ", \"key\": %" PRIu64 ", \"type\": ", i->id, i->key);
        cli_json_escape(stdout, i->type, strlen(i->type));
        printf(", \"state\": \"%s\", \"status\": \"%s\", \"attempts\": %u, \"exec_us\": %u, \"peer_id\": %u,"
               " \"verified\": %s, \"submit_ms\": %" PRIu64 ", \"done_ms\": %" PRIu64 ", \"output_len\": %zu}",
               state_name(i->state), i->state == P2C2R_JOB_DONE ? (i->status ? p2c2r_errname(i->status) : "OK") : "",
               i->attempts, i->exec_us, i->peer_id, (i->flags & P2C2R_RESULT_VERIFIED) ? "true" : "false",
               i->submit_ms, i->done_ms, i->output_len);
        return;
    }
    printf("%-10" PRIu64 " %-12s %-8s %-12s %8u %10zu\n", i->id, i->type, state_name(i->state),
           i->state == P2C2R_JOB_DONE ? (i->status ? p2c2r_errname(i->status) : "OK") : "-", i->attempts,
           i->output_len);
}

static int parse_id(const char *s, uint64_t *id)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || v == 0 || *s == '-')
        return -1;
    *id = v;
    return 0;
}

static int fail(p2c2r_client *c, const char *what, int rc)
{
    const char *why = p2c2r_client_last_error(c);
    fprintf(stderr, PROG " %s: %s%s%s\n", what, p2c2r_strerror(rc), why[0] ? ": " : "", why);
    if (rc == P2C2R_EUNSUPPORTED && strstr(why, "--state"))
        fprintf(stderr, "Durable jobs need a coordinator with a database: p2c2rd --state DIR.\n");
    else if (rc == P2C2R_ENOTFOUND)
        fprintf(stderr, "Jobs belong to the account that submitted them: pass the same --account.\n");
    return 1;
}

static int do_submit(p2c2r_client *c, struct jopts *o, const char *type)
{
    char pbuf[4096];
    size_t pl = 0;
    for (int i = 0; i < o->params.n; i++) {
        const char *eq = strchr(o->params.v[i], '=');
        size_t l = strlen(o->params.v[i]);
        if (!eq || eq == o->params.v[i] || strchr(o->params.v[i], '\n') || pl + l + 1 > sizeof(pbuf)) {
            fprintf(stderr, PROG " submit: --param expects KEY=VALUE without newlines, got '%s'\n", o->params.v[i]);
            return 2;
        }
        memcpy(pbuf + pl, o->params.v[i], l);
        pl += l;
        pbuf[pl++] = '\n';
    }
    uint8_t *input = NULL;
    size_t ilen = 0;
    if (o->in && cli_read_all(o->in, &input, &ilen) != 0) {
        fprintf(stderr, PROG " submit: cannot read input %s: %s\n", o->in, strerror(errno));
        return 1;
    }
    struct p2c2r_task t = P2C2R_TASK_INIT;
    t.type = type;
    t.deadline_ms = (uint32_t)o->deadline;
    t.priority = P2C2R_PRIO_BACKGROUND;
    t.params = pbuf;
    t.params_len = pl;
    t.input = input;
    t.input_len = ilen;
    uint64_t key = (uint64_t)o->key, id = 0;
    int code = 0;
    int rc = p2c2r_job_submit(c, &t, 1, &key, (int)o->timeout, &id, &code);
    free(input);
    if (rc)
        return fail(c, "submit", rc);
    if (code) {
        fprintf(stderr, PROG " submit: the coordinator refused the job: %s\n", p2c2r_strerror(code));
        return 1;
    }
    if (o->json)
        printf("{\"id\": %" PRIu64 ", \"key\": %" PRIu64 "}\n", id, key);
    else
        printf("%" PRIu64 "\n", id);
    return 0;
}

static int do_get(p2c2r_client *c, struct jopts *o, uint64_t id)
{
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    int rc = p2c2r_job_get(c, id, o->release ? P2C2R_JOB_RELEASE : 0, (int)o->timeout, &r);
    if (rc)
        return fail(c, "get", rc);
    int status = 0;
    if (r.status) {
        fprintf(stderr, PROG " get: job %" PRIu64 " failed: %s: %.*s\n", id, p2c2r_strerror(r.status),
                (int)r.output_len, (const char *)r.output);
        status = 1;
    } else if (o->out) {
        FILE *f = fopen(o->out, "wb");
        if (!f || fwrite(r.output, 1, r.output_len, f) != r.output_len || fclose(f) != 0) {
            fprintf(stderr, PROG " get: cannot write %s: %s\n", o->out, strerror(errno));
            status = 1;
        }
    } else if (!o->json && cli_write_all(STDOUT_FILENO, r.output, r.output_len) != 0) {
        status = 1;
    }
    if (o->json) {
        printf("{\"id\": %" PRIu64 ", \"status\": \"%s\", \"output_len\": %zu, \"peer_id\": %u, \"attempts\": %u,"
               " \"released\": %s, \"output\": ",
               id, r.status ? p2c2r_errname(r.status) : "OK", r.output_len, r.peer_id, r.attempts,
               o->release ? "true" : "false");
        if (o->out && !r.status)
            printf("null");
        else
            cli_json_escape(stdout, r.output, r.output_len);
        printf("}\n");
    }
    p2c2r_result_release(&r);
    return status;
}

static int do_list(p2c2r_client *c, struct jopts *o)
{
    struct p2c2r_job_info page[256];
    for (size_t i = 0; i < 256; i++)
        p2c2r_job_info_init(&page[i]);
    uint64_t after = 0;
    size_t total = 0;
    if (o->json)
        printf("[");
    else
        printf("%-10s %-12s %-8s %-12s %8s %10s\n", "id", "type", "state", "status", "attempts", "output");
    for (;;) {
        size_t n;
        uint64_t next;
        int rc = p2c2r_job_list(c, after, page, 256, &n, &next, (int)o->timeout);
        if (rc)
            return fail(c, "list", rc);
        for (size_t i = 0; i < n; i++) {
            if (o->json)
                printf("%s\n  ", total + i ? "," : "");
            print_info(&page[i], o->json);
        }
        total += n;
        if (!next)
            break;
        after = next;
    }
    if (o->json)
        printf("%s]\n", total ? "\n" : "");
    else
        printf("%zu job%s\n", total, total == 1 ? "" : "s");
    return 0;
}

int cmd_job(int argc, char **argv)
{
    static const char *const cmds[] = {"submit", "status", "wait", "get", "cancel", "list"};
    const char *env = getenv("P2C2R_ACCOUNT");
    struct jopts o = {cli_default_coordinator(), getenv("P2C2R_TOKEN"), env && *env ? env : "p2c2r-cli",
                      NULL, NULL, NULL, {{0}, 0}, 30000, 0, 0, 0, 0};
    const struct cliopt opts[] = {
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &o.coord},
        {"account", 'a', OPT_STR, "NAME", 0, 0, "the account jobs belong to: the name this client gives the coordinator (default $P2C2R_ACCOUNT or p2c2r-cli)", &o.account},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &o.token},
        {"param", 'p', OPT_MULTI, "K=V", 0, 0, "submit: task parameter, repeatable", &o.params},
        {"input", 'i', OPT_STR, "FILE", 0, 0, "submit: input file, - for stdin (default none)", &o.in},
        {"key", 'k', OPT_INT, "N", 0, INT64_MAX, "submit: the job's key: submitting the same key again gives the same job (default none)", &o.key},
        {"deadline", 0, OPT_INT, "MS", 0, UINT32_MAX, "submit: the job's deadline from now (default the coordinator's --job-deadline)", &o.deadline},
        {"output", 'o', OPT_STR, "FILE", 0, 0, "get: write the result here (default stdout)", &o.out},
        {"release", 0, OPT_FLAG, NULL, 0, 0, "get: delete the job at the coordinator once fetched", &o.release},
        {"timeout", 0, OPT_INT, "MS", 1, INT32_MAX, "give up waiting after MS (default 30000; wait: how long to wait for the outcome)", &o.timeout},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print JSON", &o.json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG,
                          "submit TYPE | status ID | wait ID | get ID | cancel ID | list [OPTIONS]",
                          "Durable jobs: tasks the coordinator keeps in its database (p2c2rd --state DIR)\n"
                          "until their outcome is fetched, across its restarts and this client's exit.\n"
                          "submit prints the job's id once the coordinator has stored it.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    int cmd = -1;
    for (int i = 0; pos < argc && i < (int)(sizeof(cmds) / sizeof(cmds[0])); i++)
        if (strcmp(argv[pos], cmds[i]) == 0)
            cmd = i;
    int want = cmd == 5 ? 1 : 2;
    if (cmd < 0 || argc - pos != want) {
        fprintf(stderr, PROG ": expected one of: submit TYPE, status ID, wait ID, get ID, cancel ID, list\n"
                        "Try '" PROG " --help'.\n");
        return 2;
    }
    uint64_t id = 0;
    if (cmd >= 1 && cmd <= 4 && parse_id(argv[pos + 1], &id) != 0) {
        fprintf(stderr, PROG " %s: ID must be a job id (a positive integer from 'p2c2r job submit'), got '%s'\n",
                cmds[cmd], argv[pos + 1]);
        return 2;
    }
    p2c2r_client *c;
    if (cli_connect_as(o.coord, o.token, o.account, 0, &c) != 0)
        return 1;
    struct p2c2r_job_info info = P2C2R_JOB_INFO_INIT;
    switch (cmd) {
    case 0:
        rc = do_submit(c, &o, argv[pos + 1]);
        break;
    case 1:
    case 2:
    case 4:
        rc = cmd == 1 ? p2c2r_job_status(c, id, (int)o.timeout, &info)
           : cmd == 2 ? p2c2r_job_wait(c, id, (int)o.timeout, &info)
                      : p2c2r_job_cancel(c, id, (int)o.timeout, &info);
        if (rc) {
            rc = fail(c, cmds[cmd], rc);
            break;
        }
        print_info(&info, o.json);
        if (o.json)
            printf("\n");
        rc = cmd == 2 && info.status != 0 ? 1 : 0;
        break;
    case 3:
        rc = do_get(c, &o, id);
        break;
    default:
        rc = do_list(c, &o);
        break;
    }
    p2c2r_client_close(c);
    return rc;
}
