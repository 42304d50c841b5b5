/* cmd_physics.c - `p2c2r physics`: simulates a JSON scene (rigid spheres and
 * boxes over static planes) as a "physics" task on the fabric, through the
 * public client API, or with --local in this process through the executor's
 * own C API (src/tasks/physics.h).
 *
 * Both ways yield the executor's JSON output byte for byte; --json prints it
 * unchanged, otherwise it is read back here into a summary: the run, each
 * body's final position and speed, and the contact pairs of the last step.
 * Exit status: 0 success; 1 a failure (connection, timeout, task error, a
 * scene too dense to simulate); 2 a usage error or a scene or parameter the
 * executor refused (P2C2R_EINVAL, its reason on stderr). */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cliopt.h"
#include "p2c2r/client.h"
#include "tasks/physics.h"

#define PROG "p2c2r physics"
#include "cli/cli_util.h"

int cmd_physics(int argc, char **argv);

static double num_at(json_t *arr, size_t i)
{
    return json_number_value(json_array_get(arr, i));
}

/* Prints the summary of an output document.  Returns 0, or -1 when it is
 * not the executor's format. */
static int print_summary(const char *out, size_t len, const char *where, int64_t max_rows)
{
    json_error_t je;
    json_t *root = json_loadb(out, len, 0, &je);
    json_t *bodies = root ? json_object_get(root, "bodies") : NULL;
    json_t *contacts = root ? json_object_get(root, "contacts") : NULL;
    if (!json_is_array(bodies) || !json_is_array(contacts)) {
        json_decref(root);
        return -1;
    }
    json_int_t steps = json_integer_value(json_object_get(root, "steps"));
    double dt = json_number_value(json_object_get(root, "dt"));
    size_t nb = json_array_size(bodies), nc = json_array_size(contacts);
    printf("%lld steps of %g s (%g s simulated), %zu bodies, %zu contact pairs in the last step; %s\n",
           (long long)steps, dt, (double)steps * dt, nb, nc, where);
    if (nb) {
        printf("\n%12s %12s %12s %12s %10s %10s\n", "id", "x", "y", "z", "speed", "spin");
        for (size_t i = 0; i < nb && (int64_t)i < max_rows; i++) {
            json_t *b = json_array_get(bodies, i);
            json_t *p = json_object_get(b, "position"), *v = json_object_get(b, "velocity");
            json_t *w = json_object_get(b, "angular_velocity");
            double vx = num_at(v, 0), vy = num_at(v, 1), vz = num_at(v, 2);
            double wx = num_at(w, 0), wy = num_at(w, 1), wz = num_at(w, 2);
            printf("%12lld %12.4f %12.4f %12.4f %10.4f %10.4f\n",
                   (long long)json_integer_value(json_object_get(b, "id")), num_at(p, 0), num_at(p, 1),
                   num_at(p, 2), sqrt(vx * vx + vy * vy + vz * vz), sqrt(wx * wx + wy * wy + wz * wz));
        }
        if ((int64_t)nb > max_rows)
            printf("%12s (%zu more; --rows N or --json for all)\n", "...", nb - (size_t)max_rows);
    }
    if (nc) {
        printf("\ncontacts (a-b: points, deepest overlap in m):\n");
        for (size_t i = 0; i < nc && (int64_t)i < max_rows; i++) {
            json_t *c = json_array_get(contacts, i);
            printf("  %lld-%lld: %lld, %.4f\n", (long long)json_integer_value(json_object_get(c, "a")),
                   (long long)json_integer_value(json_object_get(c, "b")),
                   (long long)json_integer_value(json_object_get(c, "points")),
                   json_number_value(json_object_get(c, "depth")));
        }
        if ((int64_t)nc > max_rows)
            printf("  ... (%zu more)\n", nc - (size_t)max_rows);
    }
    json_decref(root);
    return 0;
}

/* Prints the output (raw with --json, else the summary).  Returns the exit
 * status. */
static int show(const char *out, size_t len, int json, const char *where, int64_t rows)
{
    if (json) {
        if (fwrite(out, 1, len, stdout) != len || fflush(stdout) != 0) {
            fprintf(stderr, "%s: cannot write the result: %s\n", PROG, strerror(errno));
            return 1;
        }
        return 0;
    }
    if (print_summary(out, len, where, rows) != 0) {
        fprintf(stderr, "%s: the result is not the physics executor's JSON (%zu bytes)\n", PROG, len);
        return 1;
    }
    return 0;
}

static int run_local(const char *scene, size_t scene_len, const char *params, size_t params_len, int json,
                     int64_t rows)
{
    char *out = NULL, err[256] = "";
    size_t len = 0;
    uint64_t t0 = cli_now_us();
    int rc = phys_run_json(scene, scene_len, params, params_len, &out, &len, err, sizeof(err));
    uint64_t us = cli_now_us() - t0;
    if (rc != 0) {
        fprintf(stderr, "%s: %s: %s\n", PROG, p2c2r_strerror(rc), err[0] ? err : "failed");
        return rc == P2C2R_EINVAL ? 2 : 1;
    }
    char where[64];
    snprintf(where, sizeof(where), "ran locally in %.3f ms", us / 1000.0);
    int status = show(out, len, json, where, rows);
    free(out);
    return status;
}

static int run_remote(const char *coord, const char *token, int64_t timeout, const char *scene,
                      size_t scene_len, const char *params, size_t params_len, int json, int64_t rows)
{
    p2c2r_client *c;
    struct p2c2r_client_options o = {.size = sizeof o, .token = token, .name = "p2c2r-physics",
                                     .connect_timeout_ms = 5000};
    cli_tls_apply(&o);
    int rc = p2c2r_client_connect(coord, &o, &c);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot connect to coordinator %s: %s\n", PROG, coord, p2c2r_strerror(rc));
        if (rc == P2C2R_EIO || rc == P2C2R_ETIMEDOUT)
            fprintf(stderr, "Is p2c2rd running there? Start one with 'make run', pass --coordinator "
                            "HOST:PORT, or simulate in this process with --local.\n");
        return 1;
    }
    struct p2c2r_task t = {.size = sizeof t,
                           .type = "physics",
                           .min_version = 1,
                           .priority = P2C2R_PRIO_INTERACTIVE,
                           .params = params,
                           .params_len = params_len,
                           .input = scene,
                           .input_len = scene_len};
    p2c2r_ticket tk;
    uint64_t t0 = cli_now_us();
    rc = p2c2r_client_submit(c, &t, &tk);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot submit: %s%s%s\n", PROG, p2c2r_strerror(rc),
                *p2c2r_client_last_error(c) ? ": " : "", p2c2r_client_last_error(c));
        p2c2r_client_close(c);
        return rc == P2C2R_ETOOBIG ? 2 : 1;
    }
    struct p2c2r_result r = P2C2R_RESULT_INIT;
    rc = p2c2r_client_wait(c, tk, (int)timeout, &r);
    uint64_t us = cli_now_us() - t0;
    int status;
    if (rc != 0) {
        fprintf(stderr, "%s: no result within %lld ms (%s)\n", PROG, (long long)timeout, p2c2r_strerror(rc));
        status = 1;
    } else if (r.status != 0) {
        fprintf(stderr, "%s: task failed: %s: %.*s\n", PROG, p2c2r_strerror(r.status), (int)r.output_len,
                r.output ? (const char *)r.output : "");
        if (r.status == P2C2R_EUNSUPPORTED)
            fprintf(stderr, "No peer offers the physics executor; try --local.\n");
        status = r.status == P2C2R_EINVAL ? 2 : 1;
    } else {
        char where[96];
        snprintf(where, sizeof(where), "peer %u ran it in %.3f ms (round trip %.3f ms)", r.peer_id,
                 r.exec_us / 1000.0, us / 1000.0);
        status = show(r.output, r.output_len, json, where, rows);
    }
    if (rc == 0)
        p2c2r_result_release(&r);
    p2c2r_client_close(c);
    return status;
}

int cmd_physics(int argc, char **argv)
{
    const char *env = getenv("P2C2R_COORDINATOR");
    const char *coord = env && *env ? env : "127.0.0.1:8765", *token = getenv("P2C2R_TOKEN");
    const char *dt = NULL;
    int64_t steps = -1, timeout = 60000, rows = 20;
    int json = 0, local = 0;
    const struct cliopt opts[] = {
        {"steps", 'n', OPT_INT, "N", 0, PHYS_MAX_STEPS, "steps to simulate (default: the scene's \"steps\", else 60)", &steps},
        {"dt", 0, OPT_STR, "SECONDS", 0, 0, "time step, in (0, 1] (default: the scene's \"dt\", else 1/60)", &dt},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the executor's JSON output instead of a summary", &json},
        {"local", 0, OPT_FLAG, NULL, 0, 0, "simulate in this process instead of on the fabric", &local},
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up waiting after MS (default 60000)", &timeout},
        {"rows", 0, OPT_INT, "N", 0, 1000000, "bodies and contacts listed in the summary (default 20)", &rows},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), PROG,
                          "SCENE.json [OPTIONS]",
                          "Simulates rigid spheres and boxes falling and colliding over static planes and\n"
                          "prints where every body ends up and which pairs touch (docs/tasks/physics.md\n"
                          "describes the scene format).  SCENE.json may be - for stdin.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1) {
        fprintf(stderr, "%s: expected exactly one SCENE.json (e.g. 'p2c2r physics examples/physics/stack.json "
                        "--local')\nTry '%s --help' for the options.\n", PROG, PROG);
        return 2;
    }
    char params[128];
    size_t pl = 0;
    if (steps >= 0)
        pl += (size_t)snprintf(params + pl, sizeof(params) - pl, "steps=%lld\n", (long long)steps);
    if (dt) {
        if (strlen(dt) > 64 || strchr(dt, '\n')) {
            fprintf(stderr, "%s: --dt expects a number of seconds in (0, 1], got '%.64s'\n", PROG, dt);
            return 2;
        }
        pl += (size_t)snprintf(params + pl, sizeof(params) - pl, "dt=%s\n", dt);
    }
    /* The params are checked here as the executor would, so a bad --dt is
     * a usage error before anything is read or sent. */
    struct phys_config cfg;
    char err[256];
    phys_config_init(&cfg);
    if (phys_params_apply(params, pl, &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return 2;
    }
    uint8_t *scene_bytes = NULL;
    size_t scene_len = 0;
    if (cli_read_file(argv[pos], PHYS_MAX_INPUT, &scene_bytes, &scene_len) != 0) {
        int e = errno;
        fprintf(stderr, "%s: cannot read scene %s: %s\n", PROG, argv[pos],
                e == EFBIG ? "larger than the 16 MiB limit" : strerror(e));
        return e == EFBIG ? 2 : 1;
    }
    char *scene = (char *)scene_bytes;
    int status = local ? run_local(scene, scene_len, params, pl, json, rows)
                       : run_remote(coord, token, timeout, scene, scene_len, params, pl, json, rows);
    free(scene);
    return status;
}
