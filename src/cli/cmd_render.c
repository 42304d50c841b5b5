/* cmd_render.c - `p2c2r render`: renders a raytrace scene across the fabric
 * (or in-process with --local) and writes the frame as a PNG.
 *
 * The frame is cut into horizontal bands ("tiles") of roughly equal
 * estimated cost: a cheap pass traces one path per block of pixels and
 * counts BVH nodes visited and primitives tested per row
 * (rt_estimate_rows), and the cuts fall where the running cost crosses
 * k/N of the total.  Every band is one `raytrace` task with params
 * x, y, w, h, spp and format=raw; all of them go out as ONE batch
 * (p2c2r_client_submit_batch) and come back through p2c2r_client_poll in
 * any order.  Because a pixel does not depend on the band it was rendered
 * in, the reassembled frame is byte-identical to a single full render and
 * to --local.  A band's raw output is kept under 12 MiB (the results
 * limit is 16 MiB), so large frames get more bands than asked for.
 *
 * Uses the public client API and the subcommands' helpers (cli_util.h),
 * plus the raytrace C API (tasks/raytrace.h) for the scene check, the cost
 * estimate, --local and PNG encoding.
 * Exit status: 0 success, 1 failure (bad scene, task failed, connection
 * refused), 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "common/cliopt.h"
#include "p2c2r/client.h"
#include "tasks/raytrace.h"

#define RPROG "p2c2r render"
#define RENDER_MAX_TILES 4096
#define RENDER_TILE_BYTES (12u << 20)
#define RENDER_MAX_BLOBS 4
#define RENDER_ERR_LEN 200

/* `p2c2r render`: argv[0] is the subcommand's name ("render"), the options
 * and the scene follow.  Returns the exit status (0, 1 or 2, see above).
 * Blocking; prints its report on stdout and errors on stderr. */
int cmd_render(int argc, char **argv);

struct band {
    uint32_t y, h;
    double est;          /* estimated share of the frame's cost, 0..1 */
    int status;          /* 0 ok, else a p2c2r error */
    int done;
    uint32_t peer;       /* peer id, or for --local the worker thread + 1 */
    uint32_t exec_us;    /* executor time */
    uint64_t done_us;    /* from submit (or start) to the result */
    uint16_t attempts;
    char err[RENDER_ERR_LEN];
};

struct render {
    const char *scene_path;
    char *json;          /* the scene as sent (after --width/--height) */
    size_t json_len;
    struct p2c2r_blob blobs[RENDER_MAX_BLOBS];
    uint8_t *blob_data[RENDER_MAX_BLOBS];
    size_t nblobs;
    struct rt_scene *scene;
    uint32_t width, height, spp;
    struct band *bands;
    uint32_t nbands, asked;
    uint8_t *frame;      /* width * height * 4 */
    uint64_t t_start, t_submit, t_end, est_us;
};

/* Writes the whole buffer to path (created or truncated). */
static int render_write_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    int rc = cli_write_all(fd, p, n);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* Rewrites the scene's width and height (0 = keep) with jansson.  Returns
 * 0, or -1 when out of memory. */
static int override_size(struct render *r, int64_t w, int64_t h)
{
    json_error_t jerr;
    json_t *root = json_loadb(r->json, r->json_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return 0; /* left as it is: the scene check reports what is wrong */
    }
    if ((w && json_object_set_new(root, "width", json_integer(w)) != 0) ||
        (h && json_object_set_new(root, "height", json_integer(h)) != 0)) {
        json_decref(root);
        return -1;
    }
    /* Reals are printed with 17 significant digits: they read back exactly. */
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s)
        return -1;
    free(r->json);
    r->json = s;
    r->json_len = strlen(s);
    return 0;
}

/* ---- splitting ----------------------------------------------------------------- */

/* Cuts rows [0, h) into n bands: at the rows where the running estimated
 * cost is nearest to k/n of the total (split "cost"), or at k*h/n ("rows").
 * Each band gets at least one row.  start has n + 1 entries. */
static void split_bands(const double *cost, uint32_t h, uint32_t n, uint32_t *start)
{
    double *pre = malloc(((size_t)h + 1) * sizeof(double));
    start[0] = 0;
    start[n] = h;
    if (!pre || !cost) {
        for (uint32_t k = 1; k < n; k++)
            start[k] = (uint32_t)((uint64_t)h * k / n);
        free(pre);
        return;
    }
    pre[0] = 0.0;
    for (uint32_t y = 0; y < h; y++)
        pre[y + 1] = pre[y] + cost[y];
    for (uint32_t k = 1; k < n; k++) {
        double target = pre[h] * (double)k / (double)n;
        uint32_t lo = start[k - 1] + 1, hi = h - (n - k), y = lo;
        while (y < hi && pre[y] < target)
            y++;
        if (y > lo && target - pre[y - 1] < pre[y] - target)
            y--;
        start[k] = y;
    }
    free(pre);
}

/* Builds r->bands: n bands by cost (or rows), then any band over the
 * per-task output or work limit cut into equal parts. */
static int make_bands(struct render *r, uint32_t n, int by_cost)
{
    uint32_t h = r->height;
    uint64_t row_bytes = (uint64_t)r->width * 4, row_samples = (uint64_t)r->width * r->spp;
    uint64_t max_rows = RENDER_TILE_BYTES / row_bytes;
    if (RT_MAX_TASK_SAMPLES / row_samples < max_rows)
        max_rows = RT_MAX_TASK_SAMPLES / row_samples;
    if (max_rows == 0)
        max_rows = 1;
    if (n > h)
        n = h;
    double *cost = malloc((size_t)h * sizeof(double));
    uint32_t *start = malloc(((size_t)n + 1) * sizeof(uint32_t));
    if (!start) {
        free(cost);
        return -1;
    }
    uint64_t t0 = cli_now_us();
    if (cost && by_cost) {
        /* About 16k sampled paths, whatever the frame size. */
        uint64_t px = (uint64_t)r->width * h;
        uint32_t step = 1;
        while ((uint64_t)step * step * 16384 < px)
            step++;
        rt_estimate_rows(r->scene, step, cost);
    } else if (cost) {
        for (uint32_t y = 0; y < h; y++)
            cost[y] = 1.0;
    }
    r->est_us = cli_now_us() - t0;
    split_bands(cost, h, n, start);
    uint32_t total = 0;
    for (uint32_t k = 0; k < n; k++)
        total += (uint32_t)((start[k + 1] - start[k] + max_rows - 1) / max_rows);
    r->bands = calloc(total, sizeof(*r->bands));
    if (!r->bands) {
        free(cost);
        free(start);
        return -1;
    }
    double all = 0.0;
    for (uint32_t y = 0; cost && y < h; y++)
        all += cost[y];
    for (uint32_t k = 0; k < n; k++) {
        uint32_t bh = start[k + 1] - start[k];
        uint32_t parts = (uint32_t)((bh + max_rows - 1) / max_rows);
        for (uint32_t p = 0; p < parts; p++) {
            struct band *b = &r->bands[r->nbands++];
            b->y = start[k] + (uint32_t)((uint64_t)bh * p / parts);
            b->h = start[k] + (uint32_t)((uint64_t)bh * (p + 1) / parts) - b->y;
            double c = 0.0;
            for (uint32_t y = b->y; cost && y < b->y + b->h; y++)
                c += cost[y];
            b->est = all > 0.0 ? c / all : (double)b->h / h;
        }
    }
    free(cost);
    free(start);
    return 0;
}

/* ---- rendering ----------------------------------------------------------------- */

struct local_pool {
    struct render *r;
    pthread_mutex_t mu;
    uint32_t next;
};

struct local_worker {
    struct local_pool *pool;
    uint32_t id;
};

static void *local_worker_main(void *arg)
{
    struct local_worker *w = arg;
    struct local_pool *pl = w->pool;
    struct render *r = pl->r;
    for (;;) {
        pthread_mutex_lock(&pl->mu);
        uint32_t i = pl->next < r->nbands ? pl->next++ : UINT32_MAX;
        pthread_mutex_unlock(&pl->mu);
        if (i == UINT32_MAX)
            return NULL;
        struct band *b = &r->bands[i];
        struct rt_tile t = {0, b->y, r->width, b->h};
        uint64_t t0 = cli_now_us();
        b->status = rt_render_tile(r->scene, &t, r->spp, r->frame + (size_t)b->y * r->width * 4,
                                   (size_t)r->width * 4, b->err, sizeof(b->err));
        uint64_t t1 = cli_now_us();
        b->exec_us = t1 - t0 > UINT32_MAX ? UINT32_MAX : (uint32_t)(t1 - t0);
        b->done_us = t1 - r->t_submit;
        b->peer = w->id + 1;
        b->attempts = 1;
        b->done = 1;
    }
}

static int render_local(struct render *r, uint32_t threads)
{
    struct local_pool pool = {r, PTHREAD_MUTEX_INITIALIZER, 0};
    if (threads > r->nbands)
        threads = r->nbands;
    struct local_worker *w = calloc(threads, sizeof(*w));
    pthread_t *th = calloc(threads, sizeof(*th));
    if (!w || !th) {
        free(w);
        free(th);
        fprintf(stderr, "%s: out of memory\n", RPROG);
        return 1;
    }
    r->t_submit = cli_now_us();
    uint32_t started = 0;
    for (uint32_t i = 0; i < threads; i++) {
        w[i] = (struct local_worker){&pool, i};
        /* The calling thread is worker 0. */
        if (i > 0 && pthread_create(&th[i], NULL, local_worker_main, &w[i]) != 0)
            break;
        started++;
    }
    local_worker_main(&w[0]);
    for (uint32_t i = 1; i < started; i++)
        pthread_join(th[i], NULL);
    r->t_end = cli_now_us();
    free(w);
    free(th);
    int failed = 0;
    for (uint32_t i = 0; i < r->nbands; i++)
        failed |= r->bands[i].status != 0;
    return failed;
}

static int render_fabric(struct render *r, const char *addr, const char *token, int64_t timeout_ms)
{
    p2c2r_client *c = NULL;
    struct p2c2r_task *tasks = calloc(r->nbands, sizeof(*tasks));
    p2c2r_ticket *tickets = calloc(r->nbands, sizeof(*tickets));
    char *params = calloc(r->nbands, 96);
    uint8_t hashes[RENDER_MAX_BLOBS][32];
    int rc, status = 1;
    if (!tasks || !tickets || !params) {
        fprintf(stderr, "%s: out of memory\n", RPROG);
        goto out;
    }
    if (r->json_len > RT_MAX_INPUT) {
        fprintf(stderr, "%s: the scene is %zu bytes, over the raytrace executor's input limit of %u: "
                        "move large meshes into --blob files\n", RPROG, r->json_len, RT_MAX_INPUT);
        goto out;
    }
    if (cli_connect(addr, token, &c) != 0) {
        fprintf(stderr, "Or render in-process with --local.\n");
        goto out;
    }
    if (r->nbands > p2c2r_client_max_inflight(c)) {
        fprintf(stderr, "%s: %u tiles is over the coordinator's limit of %u tasks in flight: use fewer --tiles\n",
                RPROG, r->nbands, p2c2r_client_max_inflight(c));
        goto out;
    }
    for (size_t i = 0; i < r->nblobs; i++) {
        if ((rc = p2c2r_client_put_blob(c, r->blobs[i].data, r->blobs[i].len, (int)timeout_ms, hashes[i])) != 0) {
            fprintf(stderr, "%s: uploading blob %zu failed: %s\n", RPROG, i + 1, p2c2r_strerror(rc));
            goto out;
        }
    }
    for (uint32_t i = 0; i < r->nbands; i++) {
        char *p = params + (size_t)i * 96;
        int pl = snprintf(p, 96, "x=0\ny=%u\nw=%u\nh=%u\nspp=%u\nformat=raw\n", r->bands[i].y, r->width,
                          r->bands[i].h, r->spp);
        tasks[i] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task),
                                       .type = "raytrace",
                                       .min_version = 1,
                                       .deadline_ms = (uint32_t)timeout_ms,
                                       .priority = P2C2R_PRIO_INTERACTIVE,
                                       .params = p,
                                       .params_len = (size_t)pl,
                                       .input = r->json,
                                       .input_len = r->json_len,
                                       .blobs = r->nblobs ? (const uint8_t (*)[32])hashes : NULL,
                                       .nblobs = r->nblobs};
    }
    r->t_submit = cli_now_us();
    if ((rc = p2c2r_client_submit_batch(c, tasks, r->nbands, tickets)) != 0) {
        fprintf(stderr, "%s: submitting %u tiles failed: %s\n", RPROG, r->nbands, p2c2r_strerror(rc));
        goto out;
    }
    uint32_t left = r->nbands;
    struct p2c2r_result res[64] = {P2C2R_RESULT_INIT};
    while (left > 0) {
        uint64_t now = cli_now_us();
        if (now - r->t_submit > (uint64_t)timeout_ms * 1000) {
            fprintf(stderr, "%s: %u of %u tiles missing after %lld ms\n", RPROG, left, r->nbands,
                    (long long)timeout_ms);
            goto out;
        }
        int n = p2c2r_client_poll(c, res, 64, 1000);
        if (n < 0) {
            fprintf(stderr, "%s: %s\n", RPROG, p2c2r_strerror(n));
            goto out;
        }
        now = cli_now_us();
        for (int k = 0; k < n; k++) {
            struct p2c2r_result *x = &res[k];
            uint32_t i = 0;
            while (i < r->nbands && tickets[i].id != x->ticket.id)
                i++;
            if (i < r->nbands && !r->bands[i].done) {
                struct band *b = &r->bands[i];
                size_t want = (size_t)r->width * b->h * 4;
                b->done = 1;
                left--;
                b->status = x->status;
                b->peer = x->peer_id;
                b->exec_us = x->exec_us;
                b->attempts = x->attempts;
                b->done_us = now - r->t_submit;
                if (x->status == 0 && x->output_len == want) {
                    memcpy(r->frame + (size_t)b->y * r->width * 4, x->output, want);
                } else if (x->status == 0) {
                    b->status = P2C2R_EPROTO;
                    snprintf(b->err, sizeof(b->err), "output of %zu bytes, expected %zu", x->output_len, want);
                } else {
                    snprintf(b->err, sizeof(b->err), "%.*s", (int)(x->output_len < 190 ? x->output_len : 190),
                             x->output ? (const char *)x->output : "");
                }
            }
            p2c2r_result_release(x);
        }
    }
    r->t_end = cli_now_us();
    status = 0;
    for (uint32_t i = 0; i < r->nbands; i++)
        status |= r->bands[i].status != 0;
out:
    p2c2r_client_close(c);
    free(tasks);
    free(tickets);
    free(params);
    return status;
}

/* ---- report -------------------------------------------------------------------- */

struct peer_sum {
    uint32_t peer, tiles;
    uint64_t exec_us;
};

/* Per-peer totals in order of first appearance by tile index.  Returns
 * how many peers. */
static uint32_t peer_sums(const struct render *r, struct peer_sum *ps)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < r->nbands; i++) {
        const struct band *b = &r->bands[i];
        if (!b->done)
            continue;
        uint32_t k = 0;
        while (k < n && ps[k].peer != b->peer)
            k++;
        if (k == n)
            ps[n++] = (struct peer_sum){b->peer, 0, 0};
        ps[k].tiles++;
        ps[k].exec_us += b->exec_us;
    }
    return n;
}

static void report_text(const struct render *r, int local, const char *out, size_t png_len, const char *split)
{
    printf("%s: %ux%u, %u spp, %u tiles (split by %s%s), %s\n", r->scene_path, r->width, r->height, r->spp,
           r->nbands, split, r->nbands != r->asked ? ", raised to fit the per-task limits" : "",
           local ? "rendered in-process" : "rendered on the fabric");
    printf("%5s %11s %6s %6s %10s %10s %4s\n", "tile", "rows", "est%", local ? "thread" : "peer", "exec_ms",
           "done_ms", "try");
    for (uint32_t i = 0; i < r->nbands; i++) {
        const struct band *b = &r->bands[i];
        char rows[32];
        snprintf(rows, sizeof(rows), "%u-%u", b->y, b->y + b->h - 1);
        printf("%5u %11s %6.1f %6u %10.1f %10.1f %4u%s%s\n", i, rows, 100.0 * b->est, b->peer,
               b->exec_us / 1000.0, b->done_us / 1000.0, b->attempts, b->status ? "  FAILED: " : "",
               b->status ? (b->err[0] ? b->err : p2c2r_strerror(b->status)) : "");
    }
    struct peer_sum *ps = calloc(r->nbands ? r->nbands : 1, sizeof(*ps));
    uint32_t np = ps ? peer_sums(r, ps) : 0;
    uint64_t all = 0;
    for (uint32_t k = 0; k < np; k++)
        all += ps[k].exec_us;
    for (uint32_t k = 0; k < np; k++)
        printf("%s %u: %u tiles, %.1f ms executing (%.1f%% of all)\n", local ? "thread" : "peer", ps[k].peer,
               ps[k].tiles, ps[k].exec_us / 1000.0, all ? 100.0 * (double)ps[k].exec_us / (double)all : 0.0);
    free(ps);
    printf("wall %.3f s from submit to last tile (estimate %.1f ms, total %.3f s); ",
           (r->t_end - r->t_submit) / 1e6, r->est_us / 1000.0, (r->t_end - r->t_start) / 1e6);
    if (out)
        printf("wrote %s (%zu bytes)\n", out, png_len);
    else
        printf("no image written\n");
}

static int report_json(const struct render *r, int local, const char *coord, const char *out, size_t png_len,
                       const char *split)
{
    json_t *j = json_object(), *tiles = json_array(), *peers = json_array();
    struct peer_sum *ps = calloc(r->nbands ? r->nbands : 1, sizeof(*ps));
    int rc = -1;
    if (!j || !tiles || !peers || !ps)
        goto out;
    int ok = 1;
    for (uint32_t i = 0; i < r->nbands; i++) {
        const struct band *b = &r->bands[i];
        json_t *t = json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:I,s:I,s:I,s:I,s:s}", "index", (json_int_t)i, "x",
                              (json_int_t)0, "y", (json_int_t)b->y, "w", (json_int_t)r->width, "h",
                              (json_int_t)b->h, "est_share", b->est, "peer", (json_int_t)b->peer, "exec_us",
                              (json_int_t)b->exec_us, "done_us", (json_int_t)b->done_us, "attempts",
                              (json_int_t)b->attempts, "status",
                              b->status ? p2c2r_errname(b->status) : b->done ? "ok" : "missing");
        if (!t || json_array_append_new(tiles, t) != 0)
            goto out;
        if (b->status && b->err[0])
            json_object_set_new(t, "error", json_string(b->err));
        ok &= b->status == 0 && b->done;
    }
    uint32_t np = peer_sums(r, ps);
    for (uint32_t k = 0; k < np; k++) {
        json_t *p = json_pack("{s:I,s:I,s:I}", "peer", (json_int_t)ps[k].peer, "tiles", (json_int_t)ps[k].tiles,
                              "exec_us", (json_int_t)ps[k].exec_us);
        if (!p || json_array_append_new(peers, p) != 0)
            goto out;
    }
    json_object_set_new(j, "scene", json_string(r->scene_path));
    json_object_set_new(j, "status", json_string(ok && out ? "ok" : "failed"));
    json_object_set_new(j, "mode", json_string(local ? "local" : "fabric"));
    if (!local)
        json_object_set_new(j, "coordinator", json_string(coord));
    json_object_set_new(j, "width", json_integer(r->width));
    json_object_set_new(j, "height", json_integer(r->height));
    json_object_set_new(j, "spp", json_integer(r->spp));
    json_object_set_new(j, "split", json_string(split));
    json_object_set_new(j, "tiles_asked", json_integer(r->asked));
    json_object_set_new(j, "ntiles", json_integer(r->nbands));
    json_object_set_new(j, "estimate_us", json_integer((json_int_t)r->est_us));
    json_object_set_new(j, "wall_us", json_integer((json_int_t)(r->t_submit ? r->t_end - r->t_submit : 0)));
    json_object_set_new(j, "total_us", json_integer((json_int_t)(r->t_end - r->t_start)));
    if (out) {
        json_object_set_new(j, "output", json_string(out));
        json_object_set_new(j, "png_bytes", json_integer((json_int_t)png_len));
    }
    json_object_set_new(j, "tiles", tiles);
    json_object_set_new(j, "peers", peers);
    tiles = peers = NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    if (s) {
        printf("%s\n", s);
        free(s);
        rc = 0;
    }
out:
    json_decref(j);
    json_decref(tiles);
    json_decref(peers);
    free(ps);
    return rc;
}

/* ---- the command --------------------------------------------------------------- */

static void render_fini(struct render *r)
{
    free(r->json);
    for (size_t i = 0; i < r->nblobs; i++)
        free(r->blob_data[i]);
    rt_scene_free(r->scene);
    free(r->bands);
    free(r->frame);
}

static int load_blobs(struct render *r, const struct cliopt_multi *files)
{
    if (files->n > RENDER_MAX_BLOBS) {
        fprintf(stderr, "%s: at most %d --blob files (a task carries at most 4 blobs)\n", RPROG, RENDER_MAX_BLOBS);
        return 2;
    }
    for (int i = 0; i < files->n; i++) {
        uint8_t *d;
        size_t n;
        unsigned int ml = 0;
        if (cli_read_all(files->v[i], &d, &n) != 0) {
            fprintf(stderr, "%s: cannot read blob %s: %s\n", RPROG, files->v[i], strerror(errno));
            return 1;
        }
        r->blob_data[r->nblobs] = d;
        if (!EVP_Digest(d, n, r->blobs[r->nblobs].hash, &ml, EVP_sha256(), NULL) || ml != 32) {
            fprintf(stderr, "%s: cannot hash blob %s\n", RPROG, files->v[i]);
            free(d);
            return 1;
        }
        r->blobs[r->nblobs].data = d;
        r->blobs[r->nblobs].len = n;
        r->nblobs++;
    }
    return 0;
}

int cmd_render(int argc, char **argv)
{
    const char *coord = cli_default_coordinator(), *token = getenv("P2C2R_TOKEN"), *out = NULL;
    const char *split = "cost";
    struct cliopt_multi blob_files = {{0}, 0};
    int64_t tiles = 16, spp = 0, width = 0, height = 0, threads = 0, timeout = 600000;
    int json = 0, local = 0;
    const struct cliopt opts[] = {
        {"output", 'o', OPT_STR, "FILE", 0, 0, "write the frame here as PNG (required)", &out},
        {"tiles", 'n', OPT_INT, "N", 1, RENDER_MAX_TILES, "split the frame into N bands of about equal cost (default 16)", &tiles},
        {"spp", 's', OPT_INT, "N", 1, RT_MAX_SPP, "samples per pixel (default: the scene's spp)", &spp},
        {"width", 0, OPT_INT, "W", 1, RT_MAX_DIM, "frame width, overriding the scene's", &width},
        {"height", 0, OPT_INT, "H", 1, RT_MAX_DIM, "frame height, overriding the scene's", &height},
        {"blob", 'b', OPT_MULTI, "FILE", 0, 0, "a mesh blob the scene names by SHA-256, repeatable (at most 4)", &blob_files},
        {"split", 0, OPT_STR, "HOW", 0, 0, "cost (estimated by a sparse pass, default) or rows (equal heights)", &split},
        {"coordinator", 'c', OPT_STR, "HOST:PORT", 0, 0, "coordinator (default $P2C2R_COORDINATOR or 127.0.0.1:8765)", &coord},
        {"token", 0, OPT_STR, "TOKEN", 0, 0, "credential (default $P2C2R_TOKEN)", &token},
        CLI_TLS_OPTS,
        {"timeout", 0, OPT_INT, "MS", 1, 86400000, "give up when the frame is not done after MS (default 600000)", &timeout},
        {"local", 0, OPT_FLAG, NULL, 0, 0, "render in this process instead of on the fabric", &local},
        {"threads", 0, OPT_INT, "N", 0, 1024, "with --local: worker threads (default: one per core)", &threads},
        {"json", 0, OPT_FLAG, NULL, 0, 0, "print the report as one JSON object", &json},
    };
    int pos;
    int rc = cliopt_parse(argc, argv, opts, (int)(sizeof(opts) / sizeof(opts[0])), RPROG,
                          "SCENE.json -o FRAME.png [OPTIONS]",
                          "Renders a raytrace scene (docs/tasks/raytrace.md) split into tiles that run as\n"
                          "one batch on the fabric's peers (or in-process with --local), writes the frame\n"
                          "as PNG and reports which peer rendered which tile and how long it took.",
                          &pos);
    if (rc)
        return rc == 1 ? 0 : 2;
    if (pos != argc - 1) {
        fprintf(stderr, "%s: expected exactly one SCENE.json (e.g. 'p2c2r render examples/scenes/demo.json -o demo.png')\n",
                RPROG);
        return 2;
    }
    if (!out) {
        fprintf(stderr, "%s: -o FRAME.png is required\n", RPROG);
        return 2;
    }
    int by_cost = strcmp(split, "cost") == 0;
    if (!by_cost && strcmp(split, "rows") != 0) {
        fprintf(stderr, "%s: --split must be cost or rows, got '%s'\n", RPROG, split);
        return 2;
    }
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    struct render r;
    memset(&r, 0, sizeof(r));
    r.scene_path = argv[pos];
    r.t_start = cli_now_us();
    uint8_t *raw;
    if (cli_read_all(r.scene_path, &raw, &r.json_len) != 0) {
        fprintf(stderr, "%s: cannot read %s: %s\n", RPROG, r.scene_path, strerror(errno));
        return 1;
    }
    r.json = (char *)raw;
    int status = 1;
    char err[256];
    uint8_t *png = NULL;
    size_t png_len = 0;
    if ((rc = load_blobs(&r, &blob_files)) != 0) {
        status = rc;
        goto out;
    }
    if ((width || height) && override_size(&r, width, height) != 0)
        goto out;
    if ((rc = rt_scene_parse(r.json, r.json_len, r.blobs, r.nblobs, &r.scene, err, sizeof(err))) != 0) {
        fprintf(stderr, "%s: %s: %s\n", RPROG, r.scene_path, rc == P2C2R_EINVAL ? err : p2c2r_strerror(rc));
        goto out;
    }
    struct rt_scene_info si;
    rt_scene_get_info(r.scene, &si);
    r.width = si.width;
    r.height = si.height;
    r.spp = spp ? (uint32_t)spp : si.spp;
    r.asked = (uint32_t)tiles;
    r.frame = calloc((size_t)r.width * r.height, 4);
    if (!r.frame || make_bands(&r, (uint32_t)tiles, by_cost) != 0) {
        fprintf(stderr, "%s: out of memory for a %ux%u frame\n", RPROG, r.width, r.height);
        goto out;
    }
    int failed = local ? render_local(&r, (uint32_t)threads) : render_fabric(&r, coord, token, timeout);
    const char *written = NULL;
    if (!failed) {
        if ((rc = rt_png_encode(r.frame, r.width, r.height, (size_t)r.width * 4, &png, &png_len)) != 0)
            fprintf(stderr, "%s: PNG encoding failed: %s\n", RPROG, p2c2r_strerror(rc));
        else if (render_write_file(out, png, png_len) != 0)
            fprintf(stderr, "%s: cannot write %s: %s\n", RPROG, out, strerror(errno));
        else
            written = out;
    }
    if (r.t_end == 0)
        r.t_end = cli_now_us();
    if (json)
        report_json(&r, local, coord, written, png_len, by_cost ? "cost" : "rows");
    else if (r.t_submit)
        report_text(&r, local, written, png_len, by_cost ? "cost" : "rows");
    status = written ? 0 : 1;
out:
    free(png);
    render_fini(&r);
    return status;
}
