/* render_int.h - what `p2c2r render` (cmd_render.c, one frame) shares with
 * its animation mode (render_anim.c, --frames): a frame cut into bands and
 * the ways to render them. */
#ifndef P2C2R_CLI_RENDER_INT_H
#define P2C2R_CLI_RENDER_INT_H

#include <stddef.h>
#include <stdint.h>

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

/* Writes the whole buffer to path (created or truncated).  0 or -1 (errno). */
int render_write_file(const char *path, const uint8_t *p, size_t n);
/* Builds r->bands for r->scene (parsed), r->width, r->height, r->spp: n
 * bands by estimated cost (by_cost) or equal rows, cut further to the
 * per-task limits.  Returns 0 or -1 (out of memory). */
int make_bands(struct render *r, uint32_t n, int by_cost);
/* Renders r's bands into r->frame in-process / as one batch of live tasks
 * on the fabric.  Return 0 when every band succeeded, else 1 (render_fabric
 * prints why on stderr). */
int render_local(struct render *r, uint32_t threads);
int render_fabric(struct render *r, const char *addr, const char *token, int64_t timeout_ms);
/* Frees what r owns (not r). */
void render_fini(struct render *r);
/* Reads and hashes the --blob files into r->blobs.  Returns 0, or 1/2 (an
 * exit status) after printing why. */
int load_blobs(struct render *r, const struct cliopt_multi *files);

/* Options of the animation mode (render_anim.c). */
struct anim_opts {
    const char *coord, *token, *account, *out, *scene, *resume, *video;
    const struct cliopt_multi *blobs;
    int64_t frames, tiles, spp, width, height, threads, timeout, fps, window;
    int by_cost, json, local, live;
};

/* `p2c2r render --frames N` / `--resume FILE`: see render_anim.c.  Returns
 * the exit status. */
int render_anim(const struct anim_opts *o);

#endif
