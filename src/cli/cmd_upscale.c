/* cmd_upscale.c - `p2c2r upscale IN OUT`: resizes an image on the fabric.
 *
 * Reads IN (PNG, JPEG, or raw RGB/RGBA given --in-width/--in-height),
 * submits one `upscale` task through the public client API (or, with
 * --local, runs the executor in this process), writes the result to OUT and
 * prints a one-line summary or a JSON object.  The parameters are checked
 * here with the executor's own parser before anything is sent, so a typo is
 * a usage error rather than a round trip.  Exit status: 0 success, 1 failure
 * (task failed, connection refused, I/O error), 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "common/cliopt.h"
#include "p2c2r/client.h"
#include "p2c2r/executor.h"
#include "tasks/tasks.h"
#include "tasks/upscale.h"

#define UP_PROG PROG " upscale"
#define UP_MAX_FILE ((size_t)1 << 30)

int cmd_upscale(int argc, char **argv);

/* Writes the whole buffer to path ("-" = stdout); -1 with errno set. */
static int up_write_file(const char *path, const void *p, size_t n)
{
    if (strcmp(path, "-") == 0)
        return cli_write_all(STDOUT_FILENO, p, n);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = cli_write_all(fd, p, n);
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

/* The format a file name implies, from its extension; -1 when none does. */
static int format_from_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot || strchr(dot, '/'))
        return -1;
    dot++;
    if (!strcasecmp(dot, "png"))
        return IMAGEIO_PNG;
    if (!strcasecmp(dot, "jpg") || !strcasecmp(dot, "jpeg"))
        return IMAGEIO_JPEG;
    if (!strcasecmp(dot, "raw") || !strcasecmp(dot, "rgb") || !strcasecmp(dot, "rgba"))
        return IMAGEIO_RAW;
    return -1;
}

/* Appends "key=value\n" to the params buffer; -1 when it does not fit. */
static int param_add(char *buf, size_t cap, size_t *len, const char *key, const char *val)
{
    int n = snprintf(buf + *len, cap - *len, "%s=%s\n", key, val);
    if (n < 0 || (size_t)n >= cap - *len)
        return -1;
    *len += (size_t)n;
    return 0;
}


int cmd_upscale(int argc, char **argv)
{
    const char *coord = cli_default_coordinator(), *token = getenv("P2C2R_TOKEN");
    const char *scale = NULL, *filter = "bicubic", *format = NULL;
    int64_t width = 0, height = 0, quality = -1, compression = -1, in_w = 0, in_h = 0, in_ch = 0;
    int64_t timeout = 60000;
    int json = 0, local = 0;
    const struct cliopt opts[] = {
        {"scale", 's', OPT_STR, "S", 0, 0, "scale factor, e.g. 2 or 1.5 (or give --width/--height)", &scale},
        {"width", 'W', OPT_INT, "W", 1, IMAGE_MAX_SIDE, "output width (alone: height keeps the aspect ratio)", &width},
        {"height", 'H', OPT_INT, "H", 1, IMAGE_MAX_SIDE, "output height (alone: width keeps the aspect ratio)", &height},
        {"filter", 'f', OPT_STR, "NAME", 0, 0, "nearest, bilinear, bicubic or lanczos3 (default bicubic)", &filter},
        {"format", 0, OPT_STR, "FMT", 0, 0, "png, jpeg or raw (default: OUT's extension, else IN's format)", &format},
        {"quality", 'q', OPT_INT, "Q", 1, 100, "JPEG quality (default 90)", &quality},
        {"compression", 0, OPT_INT, "N", 0, 9, "PNG zlib level (default 6)", &compression},
        {"in-width", 0, OPT_INT, "W", 1, IMAGE_MAX_SIDE, "IN is raw pixels this wide (needs --in-height)", &in_w},
        {"in-height", 0, OPT_INT, "H", 1, IMAGE_MAX_SIDE, "IN is raw pixels this tall", &in_h},
        {"in-channels", 0, OPT_INT, "C", 3, 4, "channels of raw IN: 3 (RGB) or 4 (RGBA, default)", &in_ch},
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up waiting after MS (default 60000)", &timeout},
        {"local", 0, OPT_FLAG, NULL, 0, 0, "run the executor in this process instead of on the fabric", &local},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the outcome as one JSON object", &json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), UP_PROG, "IN OUT [OPTIONS]",
                          "Resizes the image IN (PNG, JPEG, or raw RGB/RGBA with --in-width/--in-height)\n"
                          "with a Pillow-compatible filter on the fabric, and writes OUT.  '-' is stdin/stdout.\n"
                          "Example: p2c2r upscale frame.png frame2x.png --scale 2 --filter lanczos3",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (argc - pos != 2) {
        fprintf(stderr, "%s: expected IN and OUT (e.g. '%s in.png out.png --scale 2')\n", UP_PROG, UP_PROG);
        return 2;
    }
    const char *inp = argv[pos], *outp = argv[pos + 1];

    /* Build the params block, then check it with the executor's parser. */
    char params[512];
    size_t pl = 0;
    char num[32];
    int bad = param_add(params, sizeof(params), &pl, "filter", filter);
    if (scale)
        bad |= param_add(params, sizeof(params), &pl, "scale", scale);
    if (width) {
        snprintf(num, sizeof(num), "%lld", (long long)width);
        bad |= param_add(params, sizeof(params), &pl, "width", num);
    }
    if (height) {
        snprintf(num, sizeof(num), "%lld", (long long)height);
        bad |= param_add(params, sizeof(params), &pl, "height", num);
    }
    int out_fmt = format ? -2 : format_from_name(outp);
    if (format)
        bad |= param_add(params, sizeof(params), &pl, "format", format);
    else if (out_fmt >= 0)
        bad |= param_add(params, sizeof(params), &pl, "format", imageio_format_name((enum imageio_format)out_fmt));
    if (quality >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)quality);
        bad |= param_add(params, sizeof(params), &pl, "quality", num);
    }
    if (compression >= 0) {
        snprintf(num, sizeof(num), "%lld", (long long)compression);
        bad |= param_add(params, sizeof(params), &pl, "compression", num);
    }
    if (!in_w && (in_h || in_ch)) {
        fprintf(stderr, "%s: --in-height and --in-channels describe raw input: give --in-width too\n", UP_PROG);
        return 2;
    }
    if (in_w) {
        snprintf(num, sizeof(num), "%lld", (long long)in_w);
        bad |= param_add(params, sizeof(params), &pl, "in_width", num);
        snprintf(num, sizeof(num), "%lld", (long long)in_h);
        bad |= in_h ? param_add(params, sizeof(params), &pl, "in_height", num) : 0;
        if (in_ch) {
            snprintf(num, sizeof(num), "%lld", (long long)in_ch);
            bad |= param_add(params, sizeof(params), &pl, "in_channels", num);
        }
    } else if (format_from_name(inp) == IMAGEIO_RAW) {
        fprintf(stderr, "%s: %s looks like raw pixels: give its size with --in-width and --in-height\n", UP_PROG, inp);
        return 2;
    }
    struct upscale_params up;
    char err[256] = "";
    if (bad || upscale_params_parse(params, pl, &up, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", UP_PROG, bad ? "options too long" : err, UP_PROG);
        return 2;
    }

    uint8_t *input = NULL;
    size_t ilen = 0;
    if (cli_read_all(inp, &input, &ilen) != 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", UP_PROG, inp, strerror(errno));
        return 1;
    }
    /* The sizes for the summary: from the flags or the file's header. */
    uint32_t iw = 0, ih = 0, ich = 0, ow = 0, oh = 0;
    enum imageio_format in_fmt = up.in_width ? IMAGEIO_RAW : imageio_sniff(input, ilen);
    if (up.in_width) {
        iw = up.in_width;
        ih = up.in_height;
        ich = up.in_channels;
    } else if (imageio_probe(input, ilen, &iw, &ih, &ich) != 0) {
        iw = ih = 0;
    }
    if (iw && upscale_output_size(&up, iw, ih, &ow, &oh, NULL, 0) != 0)
        ow = oh = 0;
    enum imageio_format res_fmt = up.has_format ? up.format : in_fmt;

    struct p2c2r_result r;
    p2c2r_result_init(&r);
    uint64_t t0 = cli_now_us(), us;
    int status = 0;
    p2c2r_client *c = NULL;
    if (local) {
        char xerr[256] = "";
        struct tasks_out lo = {NULL, 0, UP_MAX_FILE};
        struct p2c2r_exec_call call = {input, ilen, params, pl, tasks_out_alloc, &lo, xerr, sizeof(xerr), NULL, 0};
        int xrc = exec_upscale.check(&call);
        if (xrc == 0)
            xrc = exec_upscale.run(&call);
        us = cli_now_us() - t0;
        r.status = xrc;
        r.exec_us = (uint32_t)(us > UINT32_MAX ? UINT32_MAX : us);
        if (xrc == 0) {
            r.output = lo.p;
            r.output_len = lo.n;
        } else {
            free(lo.p);
            size_t el = strlen(xerr);
            r.output = malloc(el + 1);
            if (r.output) {
                memcpy(r.output, xerr, el + 1);
                r.output_len = el;
            }
        }
    } else {
        /* Not cli_connect: an upscaled frame may be over the client's
         * default 16 MiB result limit. */
        struct p2c2r_client_options o = {.size = sizeof o, .token = token, .name = "p2c2r-upscale",
                                         .connect_timeout_ms = 5000, .max_result_bytes = UP_MAX_FILE};
        cli_tls_apply(&o);
        rc = p2c2r_client_connect(coord, &o, &c);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot connect to coordinator %s: %s\n", UP_PROG, coord, p2c2r_strerror(rc));
            if (rc == P2C2R_EIO || rc == P2C2R_ETIMEDOUT)
                fprintf(stderr, "Is p2c2rd running there? Start one with 'make run', pass --coordinator "
                                "HOST:PORT, or use --local.\n");
            else if (rc == P2C2R_EAUTH)
                fprintf(stderr, "Pass a valid token with --token or P2C2R_TOKEN.\n");
            free(input);
            return 1;
        }
        struct p2c2r_task t = {.size = sizeof t,
                               .type = "upscale",
                               .priority = P2C2R_PRIO_INTERACTIVE,
                               .params = params,
                               .params_len = pl,
                               .input = input,
                               .input_len = ilen};
        p2c2r_ticket tk;
        rc = p2c2r_client_submit(c, &t, &tk);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot submit: %s%s\n", UP_PROG, p2c2r_strerror(rc),
                    rc == P2C2R_ETOOBIG ? " (the input is over the coordinator's frame limit, p2c2rd --max-frame)"
                                        : "");
            p2c2r_client_close(c);
            free(input);
            return 1;
        }
        rc = p2c2r_client_wait(c, tk, (int)timeout, &r);
        us = cli_now_us() - t0;
        if (rc != 0) {
            fprintf(stderr, "%s: no result within %lld ms (%s)\n", UP_PROG, (long long)timeout, p2c2r_strerror(rc));
            p2c2r_client_close(c);
            free(input);
            return 1;
        }
    }

    if (r.status == 0 && up_write_file(outp, r.output, r.output_len) != 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", UP_PROG, outp, strerror(errno));
        status = 1;
    }
    FILE *sf = strcmp(outp, "-") == 0 ? stderr : stdout;
    if (json) {
        fprintf(sf, "{\"status\":\"%s\",\"code\":%d,\"input\":", r.status ? p2c2r_errname(r.status) : "ok",
                r.status);
        cli_json_escape(sf, inp, strlen(inp));
        fprintf(sf, ",\"output\":");
        cli_json_escape(sf, outp, strlen(outp));
        fprintf(sf,
                ",\"in_width\":%u,\"in_height\":%u,\"in_format\":\"%s\",\"out_width\":%u,\"out_height\":%u,"
                "\"format\":\"%s\",\"filter\":\"%s\",\"output_bytes\":%zu,\"exec_us\":%u,\"round_trip_us\":%" PRIu64
                ",\"peer\":%u,\"attempts\":%u,\"local\":%s",
                iw, ih, imageio_format_name(in_fmt), ow, oh, imageio_format_name(res_fmt),
                resample_filter_name(up.filter), r.status ? (size_t)0 : r.output_len, r.exec_us, us, r.peer_id,
                r.attempts, local ? "true" : "false");
        if (r.status) {
            fprintf(sf, ",\"error\":");
            cli_json_escape(sf, r.output ? r.output : "", r.output ? r.output_len : 0);
        }
        fprintf(sf, "}\n");
    } else if (r.status != 0) {
        fprintf(stderr, "%s: task failed: %s: %.*s\n", UP_PROG, p2c2r_strerror(r.status), (int)r.output_len,
                r.output ? (char *)r.output : "");
    } else if (status == 0) {
        char where[64];
        if (local)
            snprintf(where, sizeof(where), "locally");
        else
            snprintf(where, sizeof(where), "on peer %u", r.peer_id);
        fprintf(sf, "%s %ux%u %s -> %s %ux%u %s (%s): %zu bytes, %s in %.1f ms (exec %.1f ms)\n", inp, iw, ih,
                imageio_format_name(in_fmt), outp, ow, oh, imageio_format_name(res_fmt),
                resample_filter_name(up.filter), r.output_len, where, (double)us / 1000.0, r.exec_us / 1000.0);
    }
    if (r.status)
        status = 1;
    if (local) {
        free(r.output);
    } else {
        p2c2r_result_release(&r);
        p2c2r_client_close(c);
    }
    free(input);
    return status;
}
