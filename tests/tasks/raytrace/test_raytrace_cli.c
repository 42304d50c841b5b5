/* test_raytrace_cli.c - `p2c2r render` (src/cli/cmd_render.c, through
 * rt_render_cli) end to end.
 *
 * Renders a small version of the demo scene in-process with one thread and
 * with three, then on a real p2c2rd (port 0, two local peers) as one batch
 * of 7 tiles split by cost and as 5 split by rows, and a scene with mesh
 * blobs both ways, and checks that every PNG is byte-identical, that the JSON
 * report names a peer and a time for every tile, and that a malformed scene
 * and bad usage fail cleanly.
 *
 * argv: p2c2rd p2c2r-peer rt_render_cli SOURCE_DIR.  Runs on the integration
 * harness (tests/integration/harness.h): every child is bounded in time, the
 * daemon must exit cleanly and its log is printed when a check fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static char paths[8][320];

/* DIR/name, kept in one of a few static slots (the test names 8 files). */
static const char *file(int slot, const char *name)
{
    h_path(paths[slot], sizeof(paths[slot]), name);
    return paths[slot];
}

/* Whether files a and b hold the same bytes (and exist). */
static int same_file(const char *a, const char *b)
{
    size_t an, bn;
    char *x = h_read_file(a, &an), *y = h_read_file(b, &bn);
    int same = x && y && an == bn && memcmp(x, y, an) == 0;
    free(x);
    free(y);
    return same;
}

#define COMMON "--width", "64", "--height", "36", "--spp", "2"
#define TSIZE "--width", "48", "--height", "27", "--spp", "1"

int main(int argc, char **argv)
{
    h_init(argc, argv, "raytrace_cli");
    H_REQUIRE(h_cli_bin() && h_arg(4), "usage: %s P2C2RD P2C2R-PEER RT_RENDER_CLI SOURCE_DIR", argv[0]);
    char scene[512], torus[512], mesh[512];
    snprintf(scene, sizeof(scene), "%s/examples/scenes/demo.json", h_arg(4));
    snprintf(torus, sizeof(torus), "%s/examples/scenes/torus.json", h_arg(4));
    snprintf(mesh, sizeof(mesh), "%s/examples/scenes/torus.mesh", h_arg(4));
    const char *local1 = file(0, "local1.png"), *local3 = file(1, "local3.png");

    h_phase("render in this process with 1 and 3 threads");
    H_EXPECT_EXIT(h_cli(scene, "-o", local1, COMMON, "--local", "--threads", "1", "--tiles", "3", NULL), 0,
                  "local render (1 thread)");
    H_EXPECT_EXIT(h_cli(scene, "-o", local3, COMMON, "--local", "--threads", "3", "--tiles", "9", "--json", NULL),
                  0, "local render (3 threads)");
    json_t *j = h_out_json();
    H_CHECK(h_json_str_is(j, "mode", "local"), "local JSON report: %s", h_last()->out);
    json_decref(j);
    H_CHECK(same_file(local1, local3), "local renders with 1 and 3 threads differ");
    char *png = h_read_file(local1, NULL);
    H_CHECK(png && memcmp(png + 1, "PNG", 3) == 0, "output is not a PNG");
    free(png);

    h_phase("render on p2c2rd with two local peers");
    const char *cargs[] = {"--local-peers", "2", "--log-level", "warn", NULL};
    struct h_proc *coord = h_coord_start(NULL, cargs);
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", h_addr());
    const char *fabric = file(2, "fabric.png");
    H_EXPECT_EXIT(h_cli(scene, "-o", fabric, COMMON, "--tiles", "7", "--coordinator", addr, "--json", NULL), 0,
                  "fabric render");
    H_CHECK(same_file(local1, fabric), "fabric and local renders differ");
    j = h_out_json();
    H_CHECK(h_json_str_is(j, "status", "ok"), "fabric JSON report: %s", h_last()->out);
    H_CHECK(h_json_int(j, "ntiles") == 7, "fabric JSON report has not 7 tiles: %s", h_last()->out);
    /* Every one of the 7 tiles names the peer that ran it and its time. */
    json_t *tiles = h_json_at(j, "tiles");
    int named = 0;
    for (size_t i = 0; i < json_array_size(tiles); i++) {
        json_t *t = json_array_get(tiles, i);
        named += h_json_int(t, "peer") >= 1 && h_json_int(t, "exec_us") >= 0;
    }
    H_CHECK(named == 7, "not every tile names its peer: %s", h_last()->out);
    json_decref(j);

    const char *rows = file(3, "rows.png");
    H_EXPECT_EXIT(h_cli(scene, "-o", rows, COMMON, "--tiles", "5", "--split", "rows", "--coordinator", addr, NULL),
                  0, "fabric render by rows");
    H_CHECK(same_file(local1, rows), "render split by rows differs");
    H_CHECK_OUT("rendered on the fabric");

    /* Mesh blobs: uploaded once with p2c2r_client_put_blob and named in
     * every task; the peers resolve them by hash. */
    h_phase("a scene with a mesh blob, here and on the fabric");
    const char *tl = file(4, "torus_local.png"), *tf = file(5, "torus_fabric.png");
    H_EXPECT_EXIT(h_cli(torus, "--blob", mesh, "-o", tl, TSIZE, "--local", "--threads", "1", NULL), 0,
                  "local render with a mesh blob");
    H_EXPECT_EXIT(h_cli(torus, "--blob", mesh, "-o", tf, TSIZE, "--tiles", "3", "--coordinator", addr, NULL), 0,
                  "fabric render with a mesh blob");
    H_CHECK(same_file(tl, tf), "blob scene: fabric and local renders differ");
    int rc = h_cli(torus, "-o", file(6, "torus_none.png"), TSIZE, "--local", NULL);
    H_CHECK(rc != 0, "a scene naming a blob rendered without it");
    H_CHECK_ERR("not sent");

    /* A malformed scene is refused before anything is sent, with the reason. */
    h_phase("a malformed scene and usage errors");
    char bad[320], bad_png[320];
    h_path(bad, sizeof(bad), "bad.json");
    h_path(bad_png, sizeof(bad_png), "bad.png");
    static const char bad_scene[] =
        "{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,1],\"look_at\":[0,0,0],\"fov\":\"wide\"}}\n";
    H_REQUIRE(h_write_file(bad, bad_scene, strlen(bad_scene)) == 0, "cannot write %s", bad);
    rc = h_cli(bad, "-o", bad_png, "--coordinator", addr, NULL);
    H_CHECK(rc != 0, "a malformed scene was accepted");
    H_CHECK_ERR("camera.fov");
    char *img = h_read_file(bad_png, NULL);
    H_CHECK(img == NULL, "an image was written for a malformed scene");
    free(img);
    H_EXPECT_EXIT(h_cli(scene, NULL), 2, "missing -o");
    H_EXPECT_EXIT(h_cli(scene, "-o", file(7, "x.png"), "--split", "zigzag", NULL), 2, "bad --split");
    h_stop(coord);
    return h_finish();
}
