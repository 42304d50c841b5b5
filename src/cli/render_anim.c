/* render_anim.c - `p2c2r render --frames N`: an animation rendered as
 * durable jobs (docs/tasks/raytrace.md, "Animations").
 *
 * Every frame's scene text comes from the scene's camera path (campath.c)
 * or from one scene file per frame (SCENE is a pattern such as
 * scene_%04d.json); every frame is cut into bands as a single `render`
 * cuts it, and every band of every frame is one durable job
 * (p2c2r_job_submit) of the account --account.  Each job has a key derived
 * from the run's random nonce, the digest of all frames' scene texts and
 * the band, so submitting it again (after a lost answer, a reconnect, or
 * --resume) names the same job instead of making a second one.
 *
 * Before the first submit the run file (RUN, "<output prefix>p2c2r-run.json"
 * next to the frames) records the nonce and the options; it is rewritten
 * (atomically) as frames are written, so --resume RUN knows what is left.
 * Jobs are asked about in pages (p2c2r_job_list); once every band of a
 * frame is done the bands are fetched and released, the frame is written
 * as PNG (to a temporary name, then renamed: a frame file is whole or
 * absent) and recorded in RUN.  A frame is byte-identical however its
 * bands were computed (docs/tasks/raytrace.md, "Determinism"), so a
 * resumed, failed-over or reconnected run writes the same bytes as an
 * uninterrupted one.
 *
 * The coordinator going away (a crash, a restart) is a reconnect with
 * backoff, bounded by --timeout without progress; what it acknowledged is
 * in its database.  Ctrl-C stops between steps and leaves the jobs at the
 * coordinator (a second Ctrl-C ends the program at once).
 *
 * --local and --live render the same frames one after another in-process
 * or as live tasks (cmd_render.c's paths), for comparison. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/campath.h"
#include "cli/cli_util.h"
#include "cli/render_int.h"

#define ANIM_RUN_VERSION 1
#define ANIM_BATCH_MAX 256
#define ANIM_BATCH_BYTES (8u << 20)
#define ANIM_LIST_PAGE 1000
#define ANIM_PATH 4096

enum tile_state { T_UNSENT, T_ACKED, T_DONE, T_FETCHED };

struct atile {
    uint32_t frame, y, h;
    uint64_t key, id;
    int state, status;
    uint32_t peer, exec_us;
};

struct aframe {
    char *json;          /* its scene text; NULL once every band is acknowledged */
    size_t json_len;
    uint32_t width, height, spp;
    uint32_t first, n;   /* its tiles: t[first .. first + n) */
    uint8_t *rgba;       /* while its bands are fetched */
    int written, failed;
};

/* An output or scene-file pattern: prefix, a number of width digits, suffix. */
struct pattern {
    char prefix[ANIM_PATH];
    const char *suffix;
    int width;
};

struct anim {
    const struct anim_opts *o;
    char run_path[ANIM_PATH], scene[ANIM_PATH], out[ANIM_PATH], video[ANIM_PATH];
    const char *coord, *account;
    char account_buf[256], coord_buf[256];
    struct pattern out_pat, scene_pat;
    int scene_is_pattern;
    char *base_json;     /* the one scene (not a pattern) */
    size_t base_len;
    uint64_t nonce;
    uint8_t digest[32];
    uint32_t nframes, tiles;
    int64_t spp, width, height, fps;
    int by_cost;
    struct cliopt_multi blob_files;
    char blob_paths[RENDER_MAX_BLOBS][ANIM_PATH];
    struct render base;  /* holds the blobs */
    struct aframe *fr;
    struct atile *t;
    uint32_t nt;
    uint32_t *by_id;     /* indexes of acknowledged tiles, sorted by job id */
    uint32_t nby_id;
    p2c2r_client *c;
    uint32_t frames_skipped, frames_written, frames_failed, tiles_done, tiles_todo, reconnects;
    uint64_t t_start, t_last_progress;
    int tty;
};

static volatile sig_atomic_t g_stop;

static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- patterns and paths ---------------------------------------------------------- */

/* Parses s with exactly one %d, %Nd or %0Nd (N 1..9) and no other '%'.
 * Returns 0 or -1. */
static int pattern_parse(const char *s, struct pattern *p)
{
    const char *pc = strchr(s, '%');
    if (!pc || (size_t)(pc - s) >= sizeof(p->prefix))
        return -1;
    const char *q = pc + 1;
    if (*q == '0')
        q++;
    int w = 0;
    if (*q >= '1' && *q <= '9')
        w = *q++ - '0';
    if (*q != 'd' || strchr(q + 1, '%'))
        return -1;
    memcpy(p->prefix, s, (size_t)(pc - s));
    p->prefix[pc - s] = '\0';
    p->suffix = q + 1;
    p->width = w;
    return 0;
}

static void pattern_name(const struct pattern *p, uint32_t n, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s%0*u%s", p->prefix, p->width, n, p->suffix);
}

/* An absolute form of path (its directory resolved); path itself when that
 * fails. */
static void abs_path(const char *path, char *dst, size_t cap)
{
    char tmp[ANIM_PATH], dir[PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *base = strrchr(tmp, '/');
    const char *d = base ? (base == tmp ? "/" : tmp) : ".";
    if (base)
        *base++ = '\0';
    else
        base = tmp;
    if (!realpath(d, dir) || snprintf(dst, cap, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) >= (int)cap)
        snprintf(dst, cap, "%s", path);
}

/* Writes p[0..n) to path through path.tmp and a rename. */
static int write_atomic(const char *path, const void *p, size_t n)
{
    char tmp[ANIM_PATH + 8];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (render_write_file(tmp, p, n) != 0)
        return -1;
    return rename(tmp, path);
}

static void hex(const uint8_t *p, size_t n, char *dst)
{
    for (size_t i = 0; i < n; i++)
        sprintf(dst + 2 * i, "%02x", p[i]);
}

/* ---- frames ------------------------------------------------------------------------ */

/* Makes frame f's scene text into *json.  Returns 0, or 1 after printing why. */
static int frame_scene(struct anim *a, uint32_t f, char **json, size_t *len)
{
    char err[256], name[ANIM_PATH + 16];
    const char *src = a->base_json;
    size_t slen = a->base_len;
    uint8_t *file = NULL;
    if (a->scene_is_pattern) {
        pattern_name(&a->scene_pat, f, name, sizeof(name));
        if (cli_read_file(name, RT_MAX_INPUT, &file, &slen) != 0) {
            fprintf(stderr, "%s: cannot read frame %u's scene %s: %s\n", RPROG, f, name, strerror(errno));
            return 1;
        }
        src = (const char *)file;
    }
    int rc = campath_frame_scene(src, slen, f, a->nframes, a->width, a->height, json, len, err, sizeof(err));
    free(file);
    if (rc == -2)
        fprintf(stderr, "%s: out of memory\n", RPROG);
    else if (rc)
        fprintf(stderr, "%s: %s: %s\n", RPROG, a->scene_is_pattern ? name : a->scene, err);
    return rc ? 1 : 0;
}

/* Fills r for frame f: its scene text (r->json, owned), the parsed scene,
 * its bands and a frame buffer.  Returns 0, or 1 after printing why. */
static int frame_plan(struct anim *a, uint32_t f, struct render *r)
{
    char err[256];
    memset(r, 0, sizeof(*r));
    r->scene_path = a->scene;
    r->t_start = cli_now_us();
    memcpy(r->blobs, a->base.blobs, sizeof(r->blobs));
    r->nblobs = a->base.nblobs;
    if (frame_scene(a, f, &r->json, &r->json_len) != 0)
        return 1;
    int rc = rt_scene_parse(r->json, r->json_len, r->blobs, r->nblobs, &r->scene, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: frame %u of %s: %s\n", RPROG, f, a->scene, rc == P2C2R_EINVAL ? err : p2c2r_strerror(rc));
        return 1;
    }
    struct rt_scene_info si;
    rt_scene_get_info(r->scene, &si);
    r->width = si.width;
    r->height = si.height;
    r->spp = a->spp ? (uint32_t)a->spp : si.spp;
    r->asked = a->tiles;
    r->frame = calloc((size_t)r->width * r->height, 4);
    if (!r->frame || make_bands(r, a->tiles, a->by_cost) != 0) {
        fprintf(stderr, "%s: out of memory for a %ux%u frame\n", RPROG, r->width, r->height);
        return 1;
    }
    return 0;
}

/* Encodes and writes frame f; records it.  Returns 0 or 1 (printed). */
static int frame_write(struct anim *a, uint32_t f, const uint8_t *rgba, uint32_t w, uint32_t h)
{
    uint8_t *png = NULL;
    size_t len = 0;
    char name[ANIM_PATH + 16];
    pattern_name(&a->out_pat, f, name, sizeof(name));
    int rc = rt_png_encode(rgba, w, h, (size_t)w * 4, &png, &len);
    if (rc) {
        fprintf(stderr, "%s: PNG encoding of frame %u failed: %s\n", RPROG, f, p2c2r_strerror(rc));
        return 1;
    }
    rc = write_atomic(name, png, len);
    free(png);
    if (rc) {
        fprintf(stderr, "%s: cannot write %s: %s\n", RPROG, name, strerror(errno));
        return 1;
    }
    a->fr[f].written = 1;
    a->frames_written++;
    if (!a->o->json && !a->tty)
        printf("frame %u written: %s (%zu bytes)\n", f, name, len);
    return 0;
}

/* ---- the run file ------------------------------------------------------------------ */

static int run_save(struct anim *a)
{
    char nonce[17], dig[65];
    uint8_t nb[8];
    for (int i = 0; i < 8; i++)
        nb[i] = (uint8_t)(a->nonce >> (8 * i));
    hex(nb, 8, nonce);
    hex(a->digest, 32, dig);
    json_t *j = json_object(), *done = json_array(), *blobs = json_array();
    int rc = -1;
    if (!j || !done || !blobs)
        goto out;
    for (uint32_t f = 0; f < a->nframes; f++)
        if (a->fr && a->fr[f].written)
            json_array_append_new(done, json_integer(f));
    for (size_t i = 0; i < a->base.nblobs; i++)
        json_array_append_new(blobs, json_string(a->blob_paths[i]));
    json_object_set_new(j, "p2c2r_render_run", json_integer(ANIM_RUN_VERSION));
    json_object_set_new(j, "nonce", json_string(nonce));
    json_object_set_new(j, "digest", json_string(dig));
    json_object_set_new(j, "scene", json_string(a->scene));
    json_object_set_new(j, "output", json_string(a->out));
    json_object_set_new(j, "frames", json_integer(a->nframes));
    json_object_set_new(j, "tiles", json_integer(a->tiles));
    json_object_set_new(j, "spp", json_integer(a->spp));
    json_object_set_new(j, "width", json_integer(a->width));
    json_object_set_new(j, "height", json_integer(a->height));
    json_object_set_new(j, "split", json_string(a->by_cost ? "cost" : "rows"));
    json_object_set_new(j, "account", json_string(a->account));
    json_object_set_new(j, "coordinator", json_string(a->coord));
    json_object_set_new(j, "video", a->video[0] ? json_string(a->video) : json_null());
    json_object_set_new(j, "fps", json_integer(a->fps));
    json_object_set_new(j, "blobs", blobs);
    json_object_set_new(j, "frames_written", done);
    blobs = done = NULL;
    char *s = json_dumps(j, JSON_INDENT(1));
    if (s) {
        size_t n = strlen(s);
        s[n] = '\n';
        rc = write_atomic(a->run_path, s, n + 1);
        free(s);
    }
out:
    json_decref(j);
    json_decref(done);
    json_decref(blobs);
    if (rc)
        fprintf(stderr, "%s: cannot write the run file %s: %s\n", RPROG, a->run_path, strerror(errno));
    return rc ? 1 : 0;
}

static const char *jstr(json_t *j, const char *k)
{
    const char *s = json_string_value(json_object_get(j, k));
    return s ? s : "";
}

static const char *jstr_at(json_t *a, size_t i)
{
    const char *s = json_string_value(json_array_get(a, i));
    return s ? s : "";
}

/* Reads RUN into a: options, nonce, digest (kept to compare) and the
 * frames written.  Returns 0 or an exit status after printing why. */
static int run_load(struct anim *a, const char *path, uint8_t want_digest[32], json_t **done)
{
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j || json_integer_value(json_object_get(j, "p2c2r_render_run")) != ANIM_RUN_VERSION) {
        fprintf(stderr, "%s: %s is not a run file of p2c2r render%s%s (it is written next to the frames when an "
                        "animation starts, e.g. frame_p2c2r-run.json)\n",
                RPROG, path, j ? "" : ": ", j ? "" : jerr.text);
        json_decref(j);
        return errno == ENOENT ? 2 : 1;
    }
    snprintf(a->run_path, sizeof(a->run_path), "%s", path);
    snprintf(a->scene, sizeof(a->scene), "%s", jstr(j, "scene"));
    snprintf(a->out, sizeof(a->out), "%s", jstr(j, "output"));
    snprintf(a->video, sizeof(a->video), "%s", jstr(j, "video"));
    snprintf(a->account_buf, sizeof(a->account_buf), "%s", jstr(j, "account"));
    snprintf(a->coord_buf, sizeof(a->coord_buf), "%s", jstr(j, "coordinator"));
    a->nframes = (uint32_t)json_integer_value(json_object_get(j, "frames"));
    a->tiles = (uint32_t)json_integer_value(json_object_get(j, "tiles"));
    a->spp = json_integer_value(json_object_get(j, "spp"));
    a->width = json_integer_value(json_object_get(j, "width"));
    a->height = json_integer_value(json_object_get(j, "height"));
    a->fps = json_integer_value(json_object_get(j, "fps"));
    a->by_cost = strcmp(jstr(j, "split"), "rows") != 0;
    const char *nonce = jstr(j, "nonce"), *dig = jstr(j, "digest");
    json_t *blobs = json_object_get(j, "blobs");
    int bad = strlen(nonce) != 16 || strlen(dig) != 64 || a->nframes == 0 || a->tiles == 0 ||
              a->tiles > RENDER_MAX_TILES || !a->scene[0] || !a->out[0] || !json_is_array(blobs) ||
              json_array_size(blobs) > RENDER_MAX_BLOBS;
    a->nonce = 0;
    for (int i = 0; !bad && i < 8; i++) {
        unsigned v;
        bad |= sscanf(nonce + 2 * i, "%2x", &v) != 1;
        a->nonce |= (uint64_t)v << (8 * i);
    }
    for (int i = 0; !bad && i < 32; i++) {
        unsigned v;
        bad |= sscanf(dig + 2 * i, "%2x", &v) != 1;
        want_digest[i] = (uint8_t)v;
    }
    for (size_t i = 0; !bad && i < json_array_size(blobs); i++) {
        snprintf(a->blob_paths[i], sizeof(a->blob_paths[i]), "%s", jstr_at(blobs, i));
        a->blob_files.v[a->blob_files.n++] = a->blob_paths[i];
    }
    if (bad) {
        fprintf(stderr, "%s: the run file %s is damaged: start the animation again without --resume\n", RPROG, path);
        json_decref(j);
        return 1;
    }
    *done = json_incref(json_object_get(j, "frames_written"));
    json_decref(j);
    return 0;
}

/* ---- durable jobs ------------------------------------------------------------------ */

static uint64_t tile_key(const struct anim *a, const struct atile *t)
{
    uint8_t in[8 + 32 + 12], md[32];
    unsigned ml = 0;
    for (int i = 0; i < 8; i++)
        in[i] = (uint8_t)(a->nonce >> (8 * i));
    memcpy(in + 8, a->digest, 32);
    uint32_t v[3] = {t->frame, t->y, t->h};
    memcpy(in + 40, v, sizeof(v));
    EVP_Digest(in, sizeof(in), md, &ml, EVP_sha256(), NULL);
    uint64_t k = 0;
    for (int i = 0; i < 8; i++)
        k |= (uint64_t)md[i] << (8 * i);
    k &= INT64_MAX;
    return k ? k : 1;
}

static int is_conn_error(int rc)
{
    return rc == P2C2R_EIO || rc == P2C2R_ECLOSED || rc == P2C2R_ETIMEDOUT || rc == P2C2R_EAGAIN ||
           rc == P2C2R_EPROTO || rc == P2C2R_ESHUTDOWN || rc == P2C2R_ESTATE;
}

static const struct atile *g_sort_tiles; /* qsort has no argument */

static int cmp_id(const void *x, const void *y)
{
    const struct atile *t = g_sort_tiles;
    uint64_t a = t[*(const uint32_t *)x].id, b = t[*(const uint32_t *)y].id;
    return a < b ? -1 : a > b;
}

static void index_ids(struct anim *a)
{
    a->nby_id = 0;
    for (uint32_t i = 0; i < a->nt; i++)
        if (a->t[i].state == T_ACKED)
            a->by_id[a->nby_id++] = i;
    g_sort_tiles = a->t;
    qsort(a->by_id, a->nby_id, sizeof(uint32_t), cmp_id);
}

static struct atile *tile_by_id(struct anim *a, uint64_t id)
{
    size_t lo = 0, hi = a->nby_id;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        uint64_t m = a->t[a->by_id[mid]].id;
        if (m == id)
            return &a->t[a->by_id[mid]];
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int upload_blobs(struct anim *a)
{
    uint8_t h[32];
    for (size_t i = 0; i < a->base.nblobs; i++) {
        int rc = p2c2r_client_put_blob(a->c, a->base.blobs[i].data, a->base.blobs[i].len, 30000, h);
        if (rc)
            return rc;
    }
    return 0;
}

static void frame_fail(struct anim *a, uint32_t f, const char *why, int code)
{
    if (!a->fr[f].failed && !a->fr[f].written) {
        a->fr[f].failed = 1;
        a->frames_failed++;
        fprintf(stderr, "%s: frame %u failed: %s%s%s\n", RPROG, f, p2c2r_strerror(code), why[0] ? ": " : "", why);
    }
}

/* Submits unsent tiles of unfinished frames, in frame order, while fewer
 * than --window are outstanding.  Returns 0, 1 (fatal, printed) or a
 * connection error; *progress set when any was acknowledged. */
static int submit_some(struct anim *a, int *progress)
{
    uint32_t outstanding = 0;
    for (uint32_t i = 0; i < a->nt; i++)
        outstanding += a->t[i].state == T_ACKED || a->t[i].state == T_DONE;
    struct p2c2r_task tasks[ANIM_BATCH_MAX];
    uint64_t keys[ANIM_BATCH_MAX], ids[ANIM_BATCH_MAX];
    int codes[ANIM_BATCH_MAX];
    uint32_t which[ANIM_BATCH_MAX];
    char params[ANIM_BATCH_MAX][96];
    uint8_t hashes[RENDER_MAX_BLOBS][32];
    for (size_t i = 0; i < a->base.nblobs; i++)
        memcpy(hashes[i], a->base.blobs[i].hash, 32);
    uint32_t i = 0;
    int any = 0;
    while (i < a->nt && outstanding < (uint32_t)a->o->window) {
        size_t n = 0, bytes = 0;
        for (; i < a->nt && n < ANIM_BATCH_MAX && outstanding + n < (uint32_t)a->o->window; i++) {
            struct atile *t = &a->t[i];
            struct aframe *fr = &a->fr[t->frame];
            if (t->state != T_UNSENT || fr->failed || fr->written)
                continue;
            if (!fr->json && frame_scene(a, t->frame, &fr->json, &fr->json_len) != 0)
                return 1;
            if (n > 0 && bytes + fr->json_len + 256 > ANIM_BATCH_BYTES)
                break;
            int pl = snprintf(params[n], sizeof(params[n]), "x=0\ny=%u\nw=%u\nh=%u\nspp=%u\nformat=raw\n", t->y,
                              fr->width, t->h, fr->spp);
            tasks[n] = (struct p2c2r_task){.size = sizeof(struct p2c2r_task),
                                           .type = "raytrace",
                                           .min_version = 1,
                                           .priority = P2C2R_PRIO_BACKGROUND,
                                           .params = params[n],
                                           .params_len = (size_t)pl,
                                           .input = fr->json,
                                           .input_len = fr->json_len,
                                           .blobs = a->base.nblobs ? (const uint8_t (*)[32])hashes : NULL,
                                           .nblobs = a->base.nblobs};
            keys[n] = t->key;
            which[n++] = i;
            bytes += fr->json_len + 256;
        }
        if (n == 0)
            break;
        int rc = p2c2r_job_submit(a->c, tasks, n, keys, 30000, ids, codes);
        if (rc == P2C2R_EUNSUPPORTED || rc == P2C2R_EINVAL || rc == P2C2R_ETOOBIG || rc == P2C2R_EAUTH) {
            const char *why = p2c2r_client_last_error(a->c);
            fprintf(stderr, "%s: submitting %zu tiles failed: %s%s%s\n", RPROG, n, p2c2r_strerror(rc),
                    why[0] ? ": " : "", why);
            if (rc == P2C2R_EUNSUPPORTED)
                fprintf(stderr, "Durable jobs need a coordinator with a database (p2c2rd --state DIR), or render "
                                "frame after frame with --live.\n");
            return 1;
        }
        if (rc)
            return rc;
        int full = 0, noblob = 0;
        for (size_t k = 0; k < n; k++) {
            struct atile *t = &a->t[which[k]];
            if (codes[k] == 0) {
                t->id = ids[k];
                t->state = T_ACKED;
                outstanding++;
                any = 1;
            } else if (codes[k] == P2C2R_EQUEUEFULL || codes[k] == P2C2R_ENOBLOB) {
                full = 1; /* again later */
                noblob |= codes[k] == P2C2R_ENOBLOB;
            } else {
                frame_fail(a, t->frame, "the coordinator refused a tile", codes[k]);
            }
        }
        if (noblob && (rc = upload_blobs(a)) != 0)
            return rc;
        if (full)
            break;
    }
    /* A frame whose bands are all acknowledged no longer needs its text. */
    for (uint32_t f = 0; f < a->nframes; f++) {
        struct aframe *fr = &a->fr[f];
        int all = 1;
        for (uint32_t k = 0; all && k < fr->n; k++)
            all = a->t[fr->first + k].state != T_UNSENT;
        if (all && fr->json) {
            free(fr->json);
            fr->json = NULL;
        }
    }
    if (any)
        index_ids(a);
    *progress |= any;
    return 0;
}

/* Learns which acknowledged jobs are done, a page of the account's jobs at
 * a time.  Returns 0 or a connection error. */
static int poll_states(struct anim *a, int *progress)
{
    if (a->nby_id == 0)
        return 0;
    static struct p2c2r_job_info page[ANIM_LIST_PAGE];
    for (size_t i = 0; i < ANIM_LIST_PAGE; i++)
        p2c2r_job_info_init(&page[i]);
    uint64_t after = a->t[a->by_id[0]].id - 1, last = a->t[a->by_id[a->nby_id - 1]].id;
    int changed = 0;
    while (after < last) {
        size_t n = 0;
        uint64_t next = 0;
        int rc = p2c2r_job_list(a->c, after, page, ANIM_LIST_PAGE, &n, &next, 30000);
        if (rc)
            return rc;
        for (size_t i = 0; i < n; i++) {
            struct atile *t = page[i].state == P2C2R_JOB_DONE ? tile_by_id(a, page[i].id) : NULL;
            if (!t || t->state != T_ACKED)
                continue;
            t->state = T_DONE;
            t->status = page[i].status;
            t->peer = page[i].peer_id;
            t->exec_us = page[i].exec_us;
            a->tiles_done++;
            changed = 1;
        }
        if (!next)
            break;
        after = next;
    }
    if (changed)
        index_ids(a);
    *progress |= changed;
    return 0;
}

/* Fetches (and releases) the bands of every frame whose bands are all
 * done, and writes those frames.  Returns 0, 1 (fatal) or a connection
 * error. */
static int fetch_frames(struct anim *a, int *progress)
{
    for (uint32_t f = 0; f < a->nframes; f++) {
        struct aframe *fr = &a->fr[f];
        if (fr->written || fr->failed || fr->n == 0)
            continue;
        int ready = 1;
        for (uint32_t k = 0; ready && k < fr->n; k++)
            ready = a->t[fr->first + k].state >= T_DONE;
        if (!ready)
            continue;
        if (!fr->rgba && !(fr->rgba = calloc((size_t)fr->width * fr->height, 4))) {
            fprintf(stderr, "%s: out of memory for frame %u\n", RPROG, f);
            return 1;
        }
        int complete = 1;
        for (uint32_t k = 0; k < fr->n && !fr->failed; k++) {
            struct atile *t = &a->t[fr->first + k];
            if (t->state == T_FETCHED)
                continue;
            struct p2c2r_result r = P2C2R_RESULT_INIT;
            int rc = p2c2r_job_get(a->c, t->id, P2C2R_JOB_RELEASE, 30000, &r);
            if (rc == P2C2R_ENOTFOUND) {
                /* Released with its answer lost, or past retention: again. */
                t->state = T_UNSENT;
                a->tiles_done--;
                complete = 0;
                continue;
            }
            if (rc)
                return rc;
            size_t want = (size_t)fr->width * t->h * 4;
            if (r.status == 0 && r.output_len == want) {
                memcpy(fr->rgba + (size_t)t->y * fr->width * 4, r.output, want);
                t->state = T_FETCHED;
            } else {
                char why[RENDER_ERR_LEN];
                snprintf(why, sizeof(why), "rows %u-%u: %.*s", t->y, t->y + t->h - 1,
                         r.status ? (int)(r.output_len < 150 ? r.output_len : 150) : 0,
                         r.output ? (const char *)r.output : "");
                frame_fail(a, f, why, r.status ? r.status : P2C2R_EPROTO);
            }
            p2c2r_result_release(&r);
        }
        if (complete && !fr->failed) {
            if (frame_write(a, f, fr->rgba, fr->width, fr->height) != 0 || run_save(a) != 0)
                return 1;
            *progress = 1;
        }
        if (fr->written || fr->failed) {
            free(fr->rgba);
            fr->rgba = NULL;
        }
    }
    return 0;
}

/* ---- progress and report --------------------------------------------------------- */

struct peer_count {
    uint32_t peer, tiles;
    uint64_t exec_us;
};

static uint32_t peer_counts(const struct anim *a, struct peer_count *pc, uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->nt; i++) {
        const struct atile *t = &a->t[i];
        if (t->state < T_DONE || t->status)
            continue;
        uint32_t k = 0;
        while (k < n && pc[k].peer != t->peer)
            k++;
        if (k == n) {
            if (n == cap)
                continue;
            pc[n++] = (struct peer_count){t->peer, 0, 0};
        }
        pc[k].tiles++;
        pc[k].exec_us += t->exec_us;
    }
    return n;
}

static void draw_progress(const struct anim *a)
{
    enum { WIDTH = 30 };
    uint32_t fdone = a->frames_written + a->frames_skipped, ftotal = a->nframes;
    int fill = a->tiles_todo ? (int)((uint64_t)a->tiles_done * WIDTH / a->tiles_todo) : WIDTH;
    if (fill > WIDTH)
        fill = WIDTH;
    double el = (cli_now_us() - a->t_start) / 1e6;
    fprintf(stderr, "\r[%.*s%*s] %u/%u tiles %u/%u frames %.2f frames/s", fill,
            "##############################", WIDTH - fill, "", a->tiles_done, a->tiles_todo, fdone, ftotal,
            el > 0 ? a->frames_written / el : 0.0);
    struct peer_count pc[8];
    uint32_t np = peer_counts(a, pc, 8);
    if (np)
        fprintf(stderr, " peers");
    for (uint32_t k = 0; k < np; k++)
        fprintf(stderr, " %u:%u", pc[k].peer, pc[k].tiles);
    fprintf(stderr, "\033[K");
}

static int report(const struct anim *a, const char *status, int mode_durable)
{
    uint64_t wall = cli_now_us() - a->t_start;
    double fps = wall ? a->frames_written / (wall / 1e6) : 0.0;
    struct peer_count *pc = calloc(a->nt ? a->nt : 1, sizeof(*pc));
    uint32_t np = pc ? peer_counts(a, pc, a->nt) : 0;
    const char *mode = mode_durable ? "durable" : a->o->local ? "local" : "live";
    if (a->o->json) {
        json_t *j = json_object(), *peers = json_array();
        for (uint32_t k = 0; j && peers && k < np; k++)
            json_array_append_new(peers, json_pack("{s:I,s:I,s:I}", "peer", (json_int_t)pc[k].peer, "tiles",
                                                   (json_int_t)pc[k].tiles, "exec_us", (json_int_t)pc[k].exec_us));
        if (!j || !peers) {
            json_decref(j);
            json_decref(peers);
            free(pc);
            return -1;
        }
        json_object_set_new(j, "status", json_string(status));
        json_object_set_new(j, "mode", json_string(mode));
        json_object_set_new(j, "scene", json_string(a->scene));
        json_object_set_new(j, "output", json_string(a->out));
        if (mode_durable) {
            json_object_set_new(j, "run", json_string(a->run_path));
            json_object_set_new(j, "account", json_string(a->account));
            json_object_set_new(j, "reconnects", json_integer(a->reconnects));
        }
        json_object_set_new(j, "frames", json_integer(a->nframes));
        json_object_set_new(j, "frames_written", json_integer(a->frames_written));
        json_object_set_new(j, "frames_skipped", json_integer(a->frames_skipped));
        json_object_set_new(j, "frames_failed", json_integer(a->frames_failed));
        json_object_set_new(j, "tiles", json_integer(a->nt));
        json_object_set_new(j, "tiles_done", json_integer(a->tiles_done));
        json_object_set_new(j, "wall_us", json_integer((json_int_t)wall));
        json_object_set_new(j, "frames_per_s", json_real(fps));
        json_object_set_new(j, "video", a->video[0] && strcmp(status, "ok") == 0 ? json_string(a->video) : json_null());
        json_object_set_new(j, "peers", peers);
        char *s = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (s)
            printf("%s\n", s);
        free(s);
    } else {
        printf("%s: %u frames (%u written, %u already done, %u failed), %u tiles, %s, %.3f s, %.2f frames/s\n",
               a->scene, a->nframes, a->frames_written, a->frames_skipped, a->frames_failed, a->nt, mode, wall / 1e6,
               fps);
        uint64_t all = 0;
        for (uint32_t k = 0; k < np; k++)
            all += pc[k].exec_us;
        for (uint32_t k = 0; k < np; k++)
            printf("%s %u: %u tiles, %.1f ms executing (%.1f%% of all)\n", a->o->local ? "thread" : "peer", pc[k].peer,
                   pc[k].tiles, pc[k].exec_us / 1000.0, all ? 100.0 * (double)pc[k].exec_us / (double)all : 0.0);
        if (mode_durable)
            printf("run file: %s\n", a->run_path);
    }
    free(pc);
    return 0;
}

/* ---- modes --------------------------------------------------------------------------- */

/* Reconnects with backoff until --timeout without progress passed or
 * Ctrl-C.  Returns 0 or 1 (printed). */
static int reconnect(struct anim *a, int why)
{
    p2c2r_client_close(a->c);
    a->c = NULL;
    if (!a->o->json && a->tty)
        fprintf(stderr, "\n");
    fprintf(stderr, "%s: lost the coordinator %s (%s); reconnecting\n", RPROG, a->coord, p2c2r_strerror(why));
    uint32_t delay = 100;
    while (!g_stop) {
        if (cli_now_us() - a->t_last_progress > (uint64_t)a->o->timeout * 1000) {
            fprintf(stderr, "%s: no progress for %lld ms: giving up; the jobs stay at the coordinator, resume "
                            "with '%s --resume %s'\n",
                    RPROG, (long long)a->o->timeout, RPROG, a->run_path);
            return 1;
        }
        struct timespec ts = {0, (long)delay * 1000000L};
        nanosleep(&ts, NULL);
        if (cli_connect_try(a->coord, a->o->token, a->account, 0, &a->c) == 0 && upload_blobs(a) == 0) {
            a->reconnects++;
            return 0;
        }
        p2c2r_client_close(a->c);
        a->c = NULL;
        delay = delay * 2 > 2000 ? 2000 : delay * 2;
    }
    return 0;
}

static int run_durable(struct anim *a)
{
    if (cli_connect_as(a->coord, a->o->token, a->account, 0, &a->c) != 0)
        return 1;
    int rc = upload_blobs(a);
    if (rc) {
        fprintf(stderr, "%s: uploading the blobs failed: %s\n", RPROG, p2c2r_strerror(rc));
        return 1;
    }
    if (!a->o->json)
        fprintf(stderr, "%s: run file %s (interrupt with Ctrl-C, continue with --resume %s)\n", RPROG, a->run_path,
                a->run_path);
    a->t_last_progress = cli_now_us();
    uint64_t last_draw = 0;
    while (!g_stop && a->frames_written + a->frames_skipped + a->frames_failed < a->nframes) {
        int progress = 0;
        rc = submit_some(a, &progress);
        if (rc == 0)
            rc = poll_states(a, &progress);
        if (rc == 0)
            rc = fetch_frames(a, &progress);
        if (rc == 1)
            return 1;
        uint64_t now = cli_now_us();
        if (progress)
            a->t_last_progress = now;
        if (rc && g_stop)
            break; /* a call cut short by Ctrl-C: nothing to reconnect for */
        if (rc) {
            if (!is_conn_error(rc)) {
                fprintf(stderr, "%s: %s\n", RPROG, p2c2r_strerror(rc));
                return 1;
            }
            if (reconnect(a, rc) != 0)
                return 1;
            continue;
        }
        if (a->tty && !a->o->json && (progress || now - last_draw > 500000)) {
            draw_progress(a);
            last_draw = now;
        }
        if (now - a->t_last_progress > (uint64_t)a->o->timeout * 1000) {
            fprintf(stderr, "%s: no progress for %lld ms: giving up; the jobs stay at the coordinator, resume with "
                            "'%s --resume %s'\n",
                    RPROG, (long long)a->o->timeout, RPROG, a->run_path);
            return 1;
        }
        /* Asking about every outstanding job costs the coordinator a walk
         * of them: a pause between rounds keeps that small beside the
         * rendering (a frame's latency grows by at most the pause). */
        struct timespec ts = {0, (progress ? 20 : 50) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (a->tty && !a->o->json) {
        draw_progress(a);
        fprintf(stderr, "\n");
    }
    return 0;
}

/* --local / --live: frame after frame. */
static int run_sequential(struct anim *a)
{
    int bad = 0;
    for (uint32_t f = 0; f < a->nframes && !g_stop; f++) {
        if (a->fr[f].written)
            continue;
        struct render r;
        int failed = frame_plan(a, f, &r);
        if (!failed)
            failed = a->o->local ? render_local(&r, (uint32_t)a->o->threads)
                                 : render_fabric(&r, a->coord, a->o->token, a->o->timeout);
        for (uint32_t i = 0; !failed && i < r.nbands; i++) {
            struct atile *t = &a->t[a->fr[f].first + i];
            t->state = T_FETCHED;
            t->peer = r.bands[i].peer;
            t->exec_us = r.bands[i].exec_us;
            a->tiles_done++;
        }
        if (!failed)
            failed = frame_write(a, f, r.frame, r.width, r.height);
        if (failed) {
            a->frames_failed++;
            bad = 1;
        }
        render_fini(&r);
        if (a->tty && !a->o->json)
            draw_progress(a);
    }
    if (a->tty && !a->o->json)
        fprintf(stderr, "\n");
    return bad;
}

/* Looks for ffmpeg on $PATH. */
static int have_ffmpeg(void)
{
    const char *p = getenv("PATH");
    char dir[ANIM_PATH + 16];
    while (p && *p) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        snprintf(dir, sizeof(dir), "%.*s/ffmpeg", (int)(n < ANIM_PATH ? n : ANIM_PATH), p);
        if (n && access(dir, X_OK) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

static int make_video(struct anim *a)
{
    char fps[16];
    snprintf(fps, sizeof(fps), "%lld", (long long)a->fps);
    const char *argv[] = {"ffmpeg", "-y", "-loglevel", "error", "-framerate", fps, "-start_number", "0", "-i",
                          a->out, "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", a->video, NULL};
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        execvp("ffmpeg", (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "%s: ffmpeg could not make %s from %s (see its message above)\n", RPROG, a->video, a->out);
        return 1;
    }
    if (!a->o->json)
        printf("video: %s\n", a->video);
    return 0;
}

/* Plans every frame's tiles; sets the digest of all frames' scene texts. */
static int plan_all(struct anim *a)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned ml = 0;
    uint32_t cap = 0;
    int rc = 1;
    a->fr = calloc(a->nframes, sizeof(*a->fr));
    if (!md || !a->fr || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
        goto out;
    uint32_t hdr[4] = {a->nframes, a->tiles, (uint32_t)a->spp, (uint32_t)a->by_cost};
    EVP_DigestUpdate(md, hdr, sizeof(hdr));
    for (size_t i = 0; i < a->base.nblobs; i++)
        EVP_DigestUpdate(md, a->base.blobs[i].hash, 32);
    for (uint32_t f = 0; f < a->nframes; f++) {
        struct render r;
        if (frame_plan(a, f, &r) != 0) {
            render_fini(&r);
            goto out;
        }
        EVP_DigestUpdate(md, r.json, r.json_len + 1);
        struct aframe *fr = &a->fr[f];
        fr->width = r.width;
        fr->height = r.height;
        fr->spp = r.spp;
        fr->first = a->nt;
        fr->n = r.nbands;
        if (a->nt + r.nbands > cap) {
            uint32_t nc = cap ? cap * 2 : 1024;
            while (nc < a->nt + r.nbands)
                nc *= 2;
            struct atile *nt = realloc(a->t, (size_t)nc * sizeof(*nt));
            if (!nt) {
                render_fini(&r);
                goto out;
            }
            a->t = nt;
            cap = nc;
        }
        for (uint32_t i = 0; i < r.nbands; i++)
            a->t[a->nt++] = (struct atile){.frame = f, .y = r.bands[i].y, .h = r.bands[i].h};
        render_fini(&r);
    }
    if (!EVP_DigestFinal_ex(md, a->digest, &ml) || !(a->by_id = calloc(a->nt ? a->nt : 1, sizeof(uint32_t))))
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    if (rc)
        fprintf(stderr, "%s: cannot plan the animation (see above, or out of memory)\n", RPROG);
    return rc;
}

static void anim_fini(struct anim *a)
{
    p2c2r_client_close(a->c);
    for (uint32_t f = 0; a->fr && f < a->nframes; f++) {
        free(a->fr[f].json);
        free(a->fr[f].rgba);
    }
    free(a->fr);
    free(a->t);
    free(a->by_id);
    free(a->base_json);
    render_fini(&a->base);
}

int render_anim(const struct anim_opts *o)
{
    struct anim *a = calloc(1, sizeof(*a));
    json_t *done = NULL;
    uint8_t want[32];
    int status = 1, rc;
    if (!a) {
        fprintf(stderr, "%s: out of memory\n", RPROG);
        return 1;
    }
    a->o = o;
    a->tty = isatty(STDERR_FILENO) && !o->json;
    if (o->resume) {
        if (o->scene || o->frames) {
            fprintf(stderr, "%s: --resume RUN takes the scene and the frames from RUN: give neither\n", RPROG);
            status = 2;
            goto out;
        }
        if ((rc = run_load(a, o->resume, want, &done)) != 0) {
            status = rc;
            goto out;
        }
        a->account = a->account_buf;
        /* A coordinator named on the command line (it may have moved) wins. */
        a->coord = strcmp(o->coord, cli_default_coordinator()) != 0 || !a->coord_buf[0] ? o->coord : a->coord_buf;
    } else {
        if (!o->scene || !o->out) {
            fprintf(stderr, "%s: --frames N needs a SCENE and -o FRAME_%%04d.png\n", RPROG);
            status = 2;
            goto out;
        }
        abs_path(o->scene, a->scene, sizeof(a->scene));
        abs_path(o->out, a->out, sizeof(a->out));
        if (o->video)
            abs_path(o->video, a->video, sizeof(a->video));
        a->nframes = (uint32_t)o->frames;
        a->tiles = (uint32_t)o->tiles;
        a->spp = o->spp;
        a->width = o->width;
        a->height = o->height;
        a->fps = o->fps;
        a->by_cost = o->by_cost;
        a->account = o->account;
        a->coord = o->coord;
        for (int i = 0; i < o->blobs->n && i < RENDER_MAX_BLOBS; i++) {
            abs_path(o->blobs->v[i], a->blob_paths[i], sizeof(a->blob_paths[i]));
            a->blob_files.v[a->blob_files.n++] = a->blob_paths[i];
        }
        if (o->blobs->n > RENDER_MAX_BLOBS)
            a->blob_files.n = o->blobs->n; /* load_blobs says why */
        uint8_t nb[8];
        if (RAND_bytes(nb, sizeof(nb)) != 1) {
            fprintf(stderr, "%s: no random bytes for the run's nonce\n", RPROG);
            goto out;
        }
        for (int i = 0; i < 8; i++)
            a->nonce |= (uint64_t)nb[i] << (8 * i);
    }
    if (pattern_parse(a->out, &a->out_pat) != 0) {
        fprintf(stderr, "%s: -o must name the frames with one %%d, e.g. frame_%%04d.png, got '%s'\n", RPROG, a->out);
        status = 2;
        goto out;
    }
    {
        /* The frames' directory (one level, as `-o out/f_%04d.png` suggests). */
        char dir[ANIM_PATH];
        snprintf(dir, sizeof(dir), "%s", a->out_pat.prefix);
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
            *slash = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
                fprintf(stderr, "%s: cannot make the directory %s for the frames: %s\n", RPROG, dir, strerror(errno));
                goto out;
            }
        }
        /* Now that it exists, the run file can name it absolutely. */
        if (!o->resume) {
            abs_path(o->out, a->out, sizeof(a->out));
            pattern_parse(a->out, &a->out_pat);
        }
    }
    a->scene_is_pattern = strchr(a->scene, '%') != NULL;
    if (a->scene_is_pattern && pattern_parse(a->scene, &a->scene_pat) != 0) {
        fprintf(stderr, "%s: a scene pattern names the files with one %%d, e.g. scene_%%04d.json, got '%s'\n", RPROG,
                a->scene);
        status = 2;
        goto out;
    }
    if (a->video[0] && !have_ffmpeg()) {
        fprintf(stderr, "%s: --video needs ffmpeg on $PATH (apt-get install ffmpeg), or leave --video out\n", RPROG);
        status = 2;
        goto out;
    }
    if (!a->run_path[0]) {
        snprintf(a->run_path, sizeof(a->run_path), "%sp2c2r-run.json", a->out_pat.prefix);
        if (!o->local && !o->live && access(a->run_path, F_OK) == 0) {
            fprintf(stderr, "%s: %s names an earlier run of these frames: continue it with '--resume %s', or "
                            "remove it to start over\n", RPROG, a->run_path, a->run_path);
            status = 2;
            goto out;
        }
    }
    if ((rc = load_blobs(&a->base, &a->blob_files)) != 0) {
        status = rc;
        goto out;
    }
    if (!a->scene_is_pattern) {
        uint8_t *raw;
        if (cli_read_all(a->scene, &raw, &a->base_len) != 0) {
            fprintf(stderr, "%s: cannot read %s: %s\n", RPROG, a->scene, strerror(errno));
            goto out;
        }
        a->base_json = (char *)raw;
    }
    if (plan_all(a) != 0)
        goto out;
    if (o->resume && memcmp(want, a->digest, 32) != 0) {
        fprintf(stderr, "%s: the scene, its blobs or the options changed since the run %s began: start a new run "
                        "(remove %s)\n", RPROG, a->run_path, a->run_path);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(done); i++) {
        json_int_t f = json_integer_value(json_array_get(done, i));
        char name[ANIM_PATH + 16];
        if (f < 0 || f >= a->nframes)
            continue;
        pattern_name(&a->out_pat, (uint32_t)f, name, sizeof(name));
        if (access(name, F_OK) == 0 && !a->fr[f].written) {
            a->fr[f].written = 1;
            a->frames_skipped++;
        }
    }
    for (uint32_t i = 0; i < a->nt; i++) {
        a->t[i].key = tile_key(a, &a->t[i]);
        a->tiles_todo += !a->fr[a->t[i].frame].written;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    a->t_start = cli_now_us();
    int durable = !o->local && !o->live;
    if (durable && run_save(a) != 0)
        goto out;
    int failed = durable ? run_durable(a) : run_sequential(a);
    const char *st = g_stop ? "interrupted" : failed || a->frames_failed ? "failed" : "ok";
    if (!g_stop && !failed && !a->frames_failed && a->video[0] && make_video(a) != 0)
        st = "failed";
    report(a, st, durable);
    if (g_stop && durable)
        fprintf(stderr, "%s: interrupted: %u of %u frames written; the jobs go on at the coordinator, continue "
                        "with '%s --resume %s'\n", RPROG, a->frames_written + a->frames_skipped, a->nframes, RPROG,
                a->run_path);
    else if (g_stop)
        fprintf(stderr, "%s: interrupted: %u of %u frames written\n", RPROG, a->frames_written + a->frames_skipped,
                a->nframes);
    status = strcmp(st, "ok") == 0 ? 0 : 1;
out:
    json_decref(done);
    anim_fini(a);
    free(a);
    return status;
}
