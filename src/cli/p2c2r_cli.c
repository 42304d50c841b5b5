/* p2c2r_cli.c - the p2c2r command-line tool: dispatch, submit and bench (the
 * other commands are in cmd_*.c).
 *
 * Uses only the public API (p2c2r/client.h) plus the shared option-table
 * helper.  Exit status: 0 success, 1 failure (task failed, connection
 * refused), 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "common/cliopt.h"
#include "p2c2r/client.h"


/* ---- submit ------------------------------------------------------------------ */

/* "realtime", "interactive", "background", or their numbers 0..2 (what
 * --priority took before it had names).  Returns the class or -1. */
static int parse_priority(const char *s)
{
    static const char *const names[] = {"realtime", "interactive", "background"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i]) || (s[0] == '0' + i && !s[1]))
            return i;
    return -1;
}

/* A byte count with an optional binary suffix: 512, 64K, 8M, 2G, 1T
 * (K = 1024).  Returns 0 or -1 (not a count, or over 2^63). */
static int parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || *s == '-')
        return -1;
    int shift = 0;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': shift = 10; break;
    case 'm': case 'M': shift = 20; break;
    case 'g': case 'G': shift = 30; break;
    case 't': case 'T': shift = 40; break;
    default: return -1;
    }
    if (*end && end[1] && strcmp(end + 1, "iB") && strcmp(end + 1, "B"))
        return -1;
    if (v > (UINT64_C(1) << 63) >> shift)
        return -1;
    *out = (uint64_t)v << shift;
    return 0;
}

/* One line for stderr that says where a result came from. */
static void print_origin(const struct p2c2r_result *r, uint64_t us)
{
    if ((r->flags & P2C2R_RESULT_CACHED) && r->peer_id == 0)
        fprintf(stderr, "%zu bytes from the coordinator's result cache in %.3f ms (cached)\n",
                r->output_len, us / 1000.0);
    else if (r->flags & P2C2R_RESULT_CACHED)
        fprintf(stderr, "%zu bytes from peer %u in %.3f ms (cached: shared with an identical task)\n",
                r->output_len, r->peer_id, us / 1000.0);
    else
        fprintf(stderr, "%zu bytes from peer %u in %.3f ms%s\n", r->output_len, r->peer_id, us / 1000.0,
                (r->flags & P2C2R_RESULT_HEDGED) ? " (hedged: a second copy ran on another peer)" : "");
}

static int cmd_submit(int argc, char **argv)
{
    const char *coord = cli_default_coordinator(), *in = NULL, *outp = NULL;
    const char *token = getenv("P2C2R_TOKEN"), *prio_s = "interactive", *min_mem_s = NULL;
    struct cliopt_multi params = {{0}, 0}, blobs = {{0}, 0};
    int64_t timeout = 30000, deadline = 0, minver = 0, min_cores = 0;
    int json = 0, need_gpu = 0, no_cache = 0;
    const struct cliopt opts[] = {
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"param", 'p', OPT_MULTI, "K=V", 0, 0, "task parameter, repeatable", &params},
        {"blob", 'b', OPT_MULTI, "K=FILE", 0, 0, "upload FILE as a blob and pass its hash as param K (at most 4)", &blobs},
        {"input", 'i', OPT_STR, "FILE", 0, 0, "input file, - for stdin (default: stdin unless it is a terminal)", &in},
        {"output", 'o', OPT_STR, "FILE", 0, 0, "write the result here (default stdout)", &outp},
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up waiting after MS (default 30000)", &timeout},
        {"deadline", 0, OPT_INT, "MS", 0, 86400000, "task deadline at the coordinator (default: its default)", &deadline},
        {"min-version", 0, OPT_INT, "N", 0, UINT32_MAX, "lowest executor version accepted (default any)", &minver},
        {"priority", 0, OPT_STR, "CLASS", 0, 0, "realtime, interactive or background (default interactive)", &prio_s},
        {"need-gpu", 0, OPT_FLAG, NULL, 0, 0, "run only on a peer that registered a GPU", &need_gpu},
        {"min-cores", 0, OPT_INT, "N", 0, 65535, "run only on a peer with at least N cores (default any)", &min_cores},
        {"min-mem", 0, OPT_STR, "BYTES", 0, 0, "run only on a peer with at least BYTES of memory (K/M/G/T suffixes; default any)", &min_mem_s},
        {"no-cache", 0, OPT_FLAG, NULL, 0, 0, "make a peer run it: no answer from the coordinator's result cache", &no_cache},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the outcome as JSON (the output goes to --output only)", &json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG " submit",
                          "TYPE [OPTIONS]",
                          "Runs one task of type TYPE (echo, sha256, ...) on the fabric and prints its result.\n"
                          "With --output, a line on stderr says where the result came from (a peer, the\n"
                          "result cache, a hedged run); --json says it in \"cached\" and \"hedged\".",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1) {
        fprintf(stderr, "%s submit: expected exactly one TYPE (e.g. 'p2c2r submit echo -i file')\n", PROG);
        return 2;
    }
    int prio = parse_priority(prio_s);
    if (prio < 0) {
        fprintf(stderr, "%s submit: --priority expects realtime, interactive or background, got '%s'\n", PROG,
                prio_s);
        return 2;
    }
    uint64_t min_mem = 0;
    if (min_mem_s && parse_bytes(min_mem_s, &min_mem) != 0) {
        fprintf(stderr, "%s submit: --min-mem expects a byte count such as 4294967296 or 4G, got '%s'\n", PROG,
                min_mem_s);
        return 2;
    }
    const char *type = argv[pos];
    char pbuf[4096];
    size_t pl = 0;
    for (int i = 0; i < params.n; i++) {
        const char *eq = strchr(params.v[i], '=');
        size_t l = strlen(params.v[i]);
        if (!eq || eq == params.v[i] || strchr(params.v[i], '\n') || pl + l + 1 > sizeof(pbuf)) {
            fprintf(stderr, "%s submit: --param expects KEY=VALUE without newlines, got '%s'\n", PROG, params.v[i]);
            return 2;
        }
        memcpy(pbuf + pl, params.v[i], l);
        pl += l;
        pbuf[pl++] = '\n';
    }
    uint8_t *input = NULL;
    size_t ilen = 0;
    if (!in && !isatty(STDIN_FILENO))
        in = "-";
    if (in && cli_read_all(in, &input, &ilen) != 0) {
        fprintf(stderr, "%s submit: cannot read input %s: %s\n", PROG, in, strerror(errno));
        return 1;
    }
    if (blobs.n > 4) {
        fprintf(stderr, "%s submit: at most 4 --blob options\n", PROG);
        free(input);
        return 2;
    }
    p2c2r_client *c;
    if (cli_connect(coord, token, &c) != 0) {
        free(input);
        return 1;
    }
    uint8_t hashes[4][32];
    for (int i = 0; i < blobs.n; i++) {
        const char *eq = strchr(blobs.v[i], '=');
        uint8_t *bd = NULL;
        size_t bl = 0;
        char hx[65];
        if (!eq || eq == blobs.v[i] || (size_t)(eq - blobs.v[i]) > 64) {
            fprintf(stderr, "%s submit: --blob expects KEY=FILE, got '%s'\n", PROG, blobs.v[i]);
            rc = 2;
        } else if (cli_read_all(eq + 1, &bd, &bl) != 0) {
            fprintf(stderr, "%s submit: cannot read blob %s: %s\n", PROG, eq + 1, strerror(errno));
            rc = 1;
        } else if ((rc = p2c2r_client_put_blob(c, bd, bl, (int)timeout, hashes[i])) != 0) {
            fprintf(stderr, "%s submit: uploading %s failed: %s\n", PROG, eq + 1, p2c2r_strerror(rc));
            rc = 1;
        } else if (pl + (size_t)(eq - blobs.v[i]) + 66 > sizeof(pbuf)) {
            fprintf(stderr, "%s submit: parameters too long\n", PROG);
            rc = 2;
        } else {
            p2c2r_blob_hex(hashes[i], hx);
            pl += (size_t)snprintf(pbuf + pl, sizeof(pbuf) - pl, "%.*s=%s\n", (int)(eq - blobs.v[i]),
                                   blobs.v[i], hx);
        }
        free(bd);
        if (rc) {
            p2c2r_client_close(c);
            free(input);
            return rc;
        }
    }
    struct p2c2r_task t = {.size = sizeof t,
                           .type = type,
                           .min_version = (uint32_t)minver,
                           .deadline_ms = (uint32_t)deadline,
                           .priority = (uint8_t)prio,
                           .params = pbuf,
                           .params_len = pl,
                           .input = input,
                           .input_len = ilen,
                           .blobs = (const uint8_t (*)[32])hashes,
                           .nblobs = (size_t)blobs.n,
                           .flags = no_cache ? P2C2R_TASK_NOCACHE : 0,
                           .need_gpu = (uint8_t)need_gpu,
                           .min_cores = (uint16_t)min_cores,
                           .min_mem_bytes = min_mem};
    p2c2r_ticket tk;
    uint64_t t0 = cli_now_us();
    rc = p2c2r_client_submit(c, &t, &tk);
    if (rc != 0) {
        fprintf(stderr, "%s submit: %s\n", PROG, p2c2r_strerror(rc));
        p2c2r_client_close(c);
        free(input);
        return rc == P2C2R_EINVAL || rc == P2C2R_ETOOBIG ? 2 : 1;
    }
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk, (int)timeout, &r);
    uint64_t us = cli_now_us() - t0;
    int status = 0;
    if (rc != 0) {
        fprintf(stderr, "%s submit: no result within %lld ms (%s)\n", PROG, (long long)timeout, p2c2r_strerror(rc));
        status = 1;
    } else if (json) {
        printf("{\"status\":\"%s\",\"code\":%d,\"output_bytes\":%zu,\"exec_us\":%u,\"round_trip_us\":%" PRIu64
               ",\"peer\":%u,\"attempts\":%u,\"cached\":%s,\"hedged\":%s",
               r.status ? p2c2r_errname(r.status) : "ok", r.status, r.output_len, r.exec_us, us, r.peer_id,
               r.attempts, (r.flags & P2C2R_RESULT_CACHED) ? "true" : "false",
               (r.flags & P2C2R_RESULT_HEDGED) ? "true" : "false");
        if (r.status) {
            printf(",\"error\":");
            cli_json_escape(stdout, r.output ? r.output : "", r.output_len);
        }
        printf("}\n");
        if (r.status == 0 && outp) {
            int fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || cli_write_all(fd, r.output, r.output_len) != 0) {
                fprintf(stderr, "%s submit: cannot write %s: %s\n", PROG, outp, strerror(errno));
                status = 1;
            }
            if (fd >= 0)
                close(fd);
        }
        status = status || r.status != 0;
    } else if (r.status != 0) {
        /* The reason text says more than the code's generic description
         * (which GPU or core count was missing, how late it would be). */
        if (r.output_len)
            fprintf(stderr, "%s submit: task failed (%s): %.*s\n", PROG, p2c2r_errname(r.status),
                    (int)r.output_len, (char *)r.output);
        else
            fprintf(stderr, "%s submit: task failed: %s\n", PROG, p2c2r_strerror(r.status));
        if (r.status == P2C2R_EUNSUPPORTED && (need_gpu || min_cores || min_mem))
            fprintf(stderr, "No connected peer meets --need-gpu/--min-cores/--min-mem: relax them, or start a "
                            "peer that has what the task needs ('p2c2r stats' lists the peers).\n");
        else if (r.status == P2C2R_EQUEUEFULL || r.status == P2C2R_EDEADLINE)
            fprintf(stderr, "The coordinator refused it at its current load: try again later%s.\n",
                    r.status == P2C2R_EDEADLINE ? ", or give a longer --deadline" : "");
        status = 1;
    } else {
        int fd = outp ? open(outp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : STDOUT_FILENO;
        if (fd < 0 || cli_write_all(fd, r.output, r.output_len) != 0) {
            fprintf(stderr, "%s submit: cannot write %s: %s\n", PROG, outp ? outp : "stdout", strerror(errno));
            status = 1;
        }
        if (outp && fd >= 0)
            close(fd);
        if (outp)
            print_origin(&r, us);
    }
    if (rc == 0)
        p2c2r_result_release(&r);
    p2c2r_client_close(c);
    free(input);
    return status;
}

/* ---- bench ------------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(const uint32_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)ceil(p * (double)n) - 1;
    if (i >= n)
        i = n - 1;
    return v[i];
}

static void progress(uint64_t done, uint64_t total, uint64_t t0)
{
    int width = 40;
    int fill = total ? (int)(done * (uint64_t)width / total) : width;
    double el = (cli_now_us() - t0) / 1e6;
    fprintf(stderr, "\r[%.*s%*s] %" PRIu64 "/%" PRIu64 " %.0f tasks/s ", fill,
            "########################################", width - fill, "", done, total,
            el > 0 ? done / el : 0.0);
}

static int cmd_bench(int argc, char **argv)
{
    const char *coord = cli_default_coordinator(), *type = "echo", *token = getenv("P2C2R_TOKEN");
    const char *trace = NULL;
    int64_t tasks = 10000, inflight = 1, size = 64, timeout = 60000, warmup = -1, spin = 0;
    int json = 0, noverify = 0;
    const struct cliopt opts[] = {
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"tasks", 'n', OPT_INT, "N", 1, 1000000000, "tasks to run (default 10000)", &tasks},
        {"inflight", 'k', OPT_INT, "K", 1, 1 << 20, "tasks kept in flight; 1 measures latency (default 1)", &inflight},
        {"size", 's', OPT_INT, "BYTES", 0, 1 << 28, "input size per task (default 64)", &size},
        {"type", 't', OPT_STR, "TYPE", 0, 0, "task type (default echo; echo results are verified; each task runs on a peer, never from the result cache)", &type},
        {"warmup", 0, OPT_INT, "N", 0, 1000000000, "untimed tasks first (default: tasks/20, at most 2000)", &warmup},
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up when no result arrives for MS (default 60000)", &timeout},
        {"no-verify", 0, OPT_FLAG, NULL, 0, 0, "do not check echo outputs", &noverify},
        {"spin-us", 0, OPT_INT, "US", 0, 1000000, "busy-poll this long before sleeping in a wait (default 0)", &spin},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print one JSON object instead of text", &json},
        {"trace", 0, OPT_STR, "FILE", 0, 0, "write what each task went through (warm-up included) to FILE as Chrome trace-event JSON, for chrome://tracing or ui.perfetto.dev", &trace},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG " bench",
                          "[OPTIONS]",
                          "Runs N tasks keeping K in flight and reports latency percentiles (K=1) or\n"
                          "throughput, with completed / failed / timed-out counts.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc) {
        fprintf(stderr, "%s bench: unexpected argument '%s'\n", PROG, argv[pos]);
        return 2;
    }
    if (warmup < 0)
        warmup = tasks / 20 < 2000 ? tasks / 20 : 2000;
    p2c2r_client *c;
    if (cli_connect_spin(coord, token, (uint32_t)spin, &c) != 0)
        return 1;
    if ((uint64_t)inflight > p2c2r_client_max_inflight(c)) {
        fprintf(stderr, "%s bench: --inflight %lld is over the coordinator's limit of %u per connection\n",
                PROG, (long long)inflight, p2c2r_client_max_inflight(c));
        p2c2r_client_close(c);
        return 2;
    }
    if (trace && (rc = p2c2r_client_trace_start(c, trace)) != 0) {
        fprintf(stderr, "%s bench: cannot write the trace to %s: %s\n", PROG, trace,
                rc == P2C2R_EIO ? strerror(errno) : p2c2r_strerror(rc));
        p2c2r_client_close(c);
        return 1;
    }
    uint8_t *input = malloc(size ? (size_t)size : 1);
    uint32_t *lat = malloc(sizeof(uint32_t) * (size_t)tasks);
    uint64_t *sent_at = calloc((size_t)(tasks + warmup) + 1, sizeof(uint64_t));
    if (!input || !lat || !sent_at) {
        fprintf(stderr, "%s bench: out of memory for %lld tasks\n", PROG, (long long)tasks);
        return 1;
    }
    for (int64_t i = 0; i < size; i++)
        input[i] = (uint8_t)(i * 131 + 7);
    int verify = strcmp(type, "echo") == 0 && !noverify;
    /* Every task has the same input: without NOCACHE a cacheable type would
     * measure the coordinator's result cache, not the peers. */
    struct p2c2r_task t = {.size = sizeof t,
                           .type = type,
                           .priority = P2C2R_PRIO_INTERACTIVE,
                           .input = input,
                           .input_len = (size_t)size,
                           .flags = P2C2R_TASK_NOCACHE};
    uint64_t total = (uint64_t)(tasks + warmup), submitted = 0, finished = 0;
    uint64_t completed = 0, failed = 0, timed_out = 0, mismatched = 0, nlat = 0, bytes = 0;
    uint64_t first_ticket = 0, t0 = 0, last_progress = 0;
    int tty = isatty(STDERR_FILENO) && !json;
    int last_err = 0;
    struct rusage ru0, ru1;
    struct p2c2r_result res[256] = {P2C2R_RESULT_INIT};
    uint64_t last_result_us = cli_now_us();
    while (finished < total) {
        while (submitted < total && submitted - finished < (uint64_t)inflight) {
            p2c2r_ticket tk;
            rc = p2c2r_client_submit(c, &t, &tk);
            if (rc == P2C2R_EAGAIN)
                break;
            if (rc != 0) {
                last_err = rc;
                goto out;
            }
            if (!first_ticket)
                first_ticket = tk.id;
            if (submitted == (uint64_t)warmup) {
                t0 = cli_now_us();
                getrusage(RUSAGE_SELF, &ru0);
            }
            sent_at[tk.id - first_ticket] = cli_now_us();
            submitted++;
        }
        int n = p2c2r_client_poll(c, res, 256, 100);
        if (n < 0) {
            last_err = n;
            break;
        }
        uint64_t now = cli_now_us();
        if (n == 0 && now - last_result_us > (uint64_t)timeout * 1000) {
            timed_out += submitted - finished;
            break;
        }
        for (int i = 0; i < n; i++) {
            struct p2c2r_result *r = &res[i];
            uint64_t idx = r->ticket.id - first_ticket;
            last_result_us = now;
            finished++;
            if (idx >= (uint64_t)warmup) {
                if (r->status == 0) {
                    if (verify && (r->output_len != (size_t)size ||
                                   (size && memcmp(r->output, input, (size_t)size) != 0))) {
                        mismatched++;
                        failed++;
                    } else {
                        completed++;
                        bytes += r->output_len;
                    }
                } else if (r->status == P2C2R_ETIMEDOUT) {
                    timed_out++;
                } else {
                    failed++;
                    last_err = r->status;
                }
                if (nlat < (uint64_t)tasks)
                    lat[nlat++] = (uint32_t)((now - sent_at[idx]) > UINT32_MAX ? UINT32_MAX : now - sent_at[idx]);
            }
            p2c2r_result_release(r);
        }
        if (tty && now - last_progress > 100000) {
            progress(finished, total, t0 ? t0 : now);
            last_progress = now;
        }
    }
out:
    ;
    uint64_t t1 = cli_now_us();
    getrusage(RUSAGE_SELF, &ru1);
    if (tty)
        fprintf(stderr, "\r%*s\r", 70, "");
    if (!t0)
        t0 = t1;
    double secs = (t1 - t0) / 1e6;
    qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
    double cpu = (ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double tps = secs > 0 ? completed / secs : 0, mbps = secs > 0 ? bytes / secs / 1e6 : 0;
    double mean = 0;
    for (uint64_t i = 0; i < nlat; i++)
        mean += lat[i];
    mean = nlat ? mean / (double)nlat : 0;
    if (json) {
        printf("{\"type\":\"%s\",\"tasks\":%lld,\"inflight\":%lld,\"size\":%lld,\"completed\":%" PRIu64
               ",\"failed\":%" PRIu64 ",\"timed_out\":%" PRIu64 ",\"mismatched\":%" PRIu64
               ",\"seconds\":%.6f,\"tasks_per_s\":%.1f,\"mb_per_s\":%.2f,\"mean_us\":%.1f,\"p50_us\":%u,"
               "\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u,\"client_cpu_us_per_task\":%.3f}\n",
               type, (long long)tasks, (long long)inflight, (long long)size, completed, failed, timed_out,
               mismatched, secs, tps, mbps, mean, pct(lat, nlat, 0.5), pct(lat, nlat, 0.9),
               pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0, completed ? cpu * 1e6 / completed : 0.0);
    } else {
        printf("%s: %" PRIu64 " completed, %" PRIu64 " failed, %" PRIu64 " timed out in %.3f s "
               "(%lld in flight, %lld-byte inputs)\n",
               type, completed, failed, timed_out, secs, (long long)inflight, (long long)size);
        printf("throughput: %.0f tasks/s, %.2f MB/s\n", tps, mbps);
        printf("latency us: p50 %u  p90 %u  p99 %u  max %u  mean %.1f\n", pct(lat, nlat, 0.5),
               pct(lat, nlat, 0.9), pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0, mean);
        if (mismatched)
            printf("WARNING: %" PRIu64 " echo results differed from their input\n", mismatched);
    }
    if (last_err)
        fprintf(stderr, "%s bench: %s%s%s\n", PROG, p2c2r_strerror(last_err),
                *p2c2r_client_last_error(c) ? ": " : "", p2c2r_client_last_error(c));
    int trace_rc = trace ? p2c2r_client_trace_stop(c) : 0;
    if (trace_rc)
        fprintf(stderr, "%s bench: the trace %s is incomplete: %s\n", PROG, trace,
                p2c2r_strerror(trace_rc));
    p2c2r_client_close(c);
    free(input);
    free(lat);
    free(sent_at);
    return (failed || timed_out || completed < (uint64_t)tasks || trace_rc) ? 1 : 0;
}

int cmd_backup(int argc, char **argv);
int cmd_job(int argc, char **argv);
int cmd_ledger(int argc, char **argv);
int cmd_path(int argc, char **argv);
int cmd_peers(int argc, char **argv);
int cmd_physics(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_upscale(int argc, char **argv);

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: p2c2r COMMAND [OPTIONS]\n\n"
            "Commands:\n"
            "  submit TYPE   run one task (input from -i FILE or stdin) and print its result\n"
            "  bench         measure latency (--inflight 1) or throughput (--inflight K)\n"
            "  stats         show peers, queues and counters of a coordinator\n"
            "  peers         list the peer keys a coordinator knows (--state DIR); ban, pin, group them\n"
            "  job CMD       durable jobs: submit TYPE, status ID, wait ID, get ID, cancel ID, list\n"
            "  ledger        credit balances and statements of a coordinator (--state DIR)\n"
            "  backup        copy a coordinator's state database while it runs (--state DIR --to FILE)\n"
            "  path MAP      shortest path on a MovingAI grid map (A* or jump point search)\n"
            "  physics SCENE step a rigid-body scene (JSON) and print the final states\n"
            "  render SCENE  render a raytrace scene across peers into a PNG\n"
            "  upscale IN OUT resize a PNG/JPEG/raw image on a peer (nearest..lanczos3)\n\n"
            "Every command takes --coordinator HOST:PORT (default $P2C2R_COORDINATOR or 127.0.0.1:8765)\n"
            "and --help.  'p2c2r --version' prints the version.\n");
}

int main(int argc, char **argv)
{
    /* Frames of tens of KiB are allocated and freed at a high rate; keep
     * glibc from returning that memory to the kernel (and faulting it back
     * in) on every cycle. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
        printf("p2c2r %s\n", p2c2r_version());
        return 0;
    }
    if (!strcmp(cmd, "submit"))
        return cmd_submit(argc - 1, argv + 1);
    if (!strcmp(cmd, "bench"))
        return cmd_bench(argc - 1, argv + 1);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(argc - 1, argv + 1);
    if (!strcmp(cmd, "peers"))
        return cmd_peers(argc - 1, argv + 1);
    if (!strcmp(cmd, "job"))
        return cmd_job(argc - 1, argv + 1);
    if (!strcmp(cmd, "ledger"))
        return cmd_ledger(argc - 1, argv + 1);
    if (!strcmp(cmd, "backup"))
        return cmd_backup(argc - 1, argv + 1);
    if (!strcmp(cmd, "path"))
        return cmd_path(argc - 1, argv + 1);
    if (!strcmp(cmd, "physics"))
        return cmd_physics(argc - 1, argv + 1);
    if (!strcmp(cmd, "render"))
        return cmd_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "upscale"))
        return cmd_upscale(argc - 1, argv + 1);
    fprintf(stderr, "p2c2r: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
