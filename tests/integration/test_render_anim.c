/* test_render_anim.c - `p2c2r render --frames N`: an animation as durable
 * jobs (issue 13 item 2), with real processes.
 *
 * A small scene with a camera path (8 frames x 4 tiles, 96x64) is first
 * rendered in-process (--local): the reference frames.  Then on a p2c2rd
 * with --state and two peers:
 *  a. straight through as durable jobs, and as live tasks (--live): every
 *     frame byte-identical to the reference, every tile counted in the
 *     per-peer figures, no job left at the coordinator;
 *  b. interrupted with SIGINT once its first frame is written, the
 *     coordinator SIGKILLed and restarted on the same --state, then
 *     --resume RUN: the frames written before are kept, all frames are
 *     byte-identical to the reference, and no job is left behind (a resumed
 *     submit named the jobs it had made, by key);
 *  c. one of the two peers SIGKILLed once the first frame is written: the
 *     render still completes with identical frames;
 *  d. the coordinator SIGKILLed and restarted while a render runs: it
 *     reconnects and completes with identical frames.
 * Also: --resume of a run whose scene changed is refused, and an existing
 * run file is not overwritten by a new run.
 *
 * argv: p2c2rd p2c2r-peer p2c2r. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define FRAMES 8
#define TILES "4"

static char g_scene[400], g_state[400], g_listen[64];

static const char SCENE_FMT[] =
    "{\"width\": 96, \"height\": 64, \"max_depth\": 8, \"spp\": %d, \"background\": [0.5, 0.6, 0.7],\n"
    " \"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50},\n"
    " \"camera_path\": [{\"t\": 0, \"position\": [-4, 1.5, 3]}, {\"t\": 1, \"position\": [0, 1, 5]},\n"
    "                 {\"t\": 2.5, \"position\": [4, 2, 3], \"look_at\": [0, 0.2, 0], \"fov\": 40}],\n"
    " \"spheres\": [{\"center\": [0, 0, 0], \"radius\": 1, \"material\": {\"type\": \"glass\", \"ior\": 1.5}},\n"
    "   {\"center\": [0, -101, 0], \"radius\": 100, \"material\": {\"type\": \"metal\", \"albedo\": [0.8, 0.8, 0.8], "
    "\"fuzz\": 0.3}}]}\n";

static void frame_path(char *dst, size_t cap, const char *prefix, int f)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_%04d.png", prefix, f);
    h_path(dst, cap, name);
}

static void pattern(char *dst, size_t cap, const char *prefix)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_%%04d.png", prefix);
    h_path(dst, cap, name);
}

static void run_file(char *dst, size_t cap, const char *prefix)
{
    char name[64];
    snprintf(name, sizeof(name), "%s_p2c2r-run.json", prefix);
    h_path(dst, cap, name);
}

/* How many frames of prefix exist. */
static int frames_written(const char *prefix)
{
    int n = 0;
    for (int f = 0; f < FRAMES; f++) {
        char p[400];
        frame_path(p, sizeof(p), prefix, f);
        n += access(p, F_OK) == 0;
    }
    return n;
}

/* Checks that every frame of prefix has the reference's bytes. */
static void same_frames(const char *prefix)
{
    for (int f = 0; f < FRAMES; f++) {
        char a[400], b[400];
        size_t an = 0, bn = 0;
        frame_path(a, sizeof(a), "ref", f);
        frame_path(b, sizeof(b), prefix, f);
        char *x = h_read_file(a, &an), *y = h_read_file(b, &bn);
        H_CHECK(x && y && an == bn && memcmp(x, y, an) == 0, "frame %d of %s differs from the reference (%zu vs %zu bytes)",
                f, prefix, bn, an);
        free(x);
        free(y);
    }
}

/* Checks that the account has no job left at the coordinator. */
static void no_jobs_left(const char *account)
{
    int rc = h_cli("job", "list", "-c", h_addr(), "--account", account, "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "job list");
    json_t *j = h_out_json();
    H_CHECK(json_is_array(j) && json_array_size(j) == 0, "account %s should have no jobs left: %s", account,
            h_json_text(j));
    json_decref(j);
}

/* Starts a durable render of prefix in the background. */
static struct h_proc *render_bg(const char *name, const char *prefix, const char *account)
{
    char out[400];
    pattern(out, sizeof(out), prefix);
    char frames[16];
    snprintf(frames, sizeof(frames), "%d", FRAMES);
    const char *argv[] = {h_cli_bin(), "render", g_scene, "--frames", frames, "--tiles", TILES, "-o", out, "-c",
                          h_addr(), "--account", account, "--json", NULL};
    return h_spawn(name, argv);
}

/* Waits (bounded) until prefix's first frame is written, or p ended. */
static void wait_first_frame(struct h_proc *p, const char *prefix)
{
    uint64_t end = h_now_ms() + (uint64_t)h_bound_ms(60000);
    while (frames_written(prefix) == 0 && h_running(p) && h_now_ms() < end)
        h_sleep_ms(5);
    H_REQUIRE(frames_written(prefix) > 0, "no frame of %s was written in time", prefix);
}

/* The JSON report the background render printed last (its log). */
static json_t *bg_report(struct h_proc *p)
{
    size_t n;
    char *log = h_read_file(p->log, &n);
    json_t *j = NULL;
    char *line = log ? strstr(log, "{\"status\"") : NULL;
    if (line) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        j = h_json_parse(line);
    }
    free(log);
    return j;
}

/* Waits (bounded) for the background render p of prefix to finish and
 * checks that it succeeded with every frame identical and no job left;
 * returns its report (json_decref it). */
static json_t *finish_bg(struct h_proc *p, const char *prefix, const char *account)
{
    H_REQUIRE(h_wait_exit(p, h_bound_ms(90000)), "the render of %s did not finish", prefix);
    H_CHECK(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0, "render exit: %s", h_status_str(p->status));
    p->checked = 1;
    json_t *rep = bg_report(p);
    H_CHECK(h_json_str_is(rep, "status", "ok") && h_json_int(rep, "frames_written") == FRAMES, "report: %s",
            h_json_text(rep));
    same_frames(prefix);
    no_jobs_left(account);
    return rep;
}

static long long peer_tiles(const json_t *rep)
{
    long long sum = 0;
    json_t *peers = h_json_at(rep, "peers");
    for (size_t i = 0; i < json_array_size(peers); i++)
        sum += h_json_int(json_array_get(peers, i), "tiles");
    return sum;
}

static void test_straight(void)
{
    h_phase("a. straight through, durable and live");
    char out[400], frames[16];
    snprintf(frames, sizeof(frames), "%d", FRAMES);
    pattern(out, sizeof(out), "a");
    int rc = h_cli("render", g_scene, "--frames", frames, "--tiles", TILES, "-o", out, "-c", h_addr(), "--account",
                   "anim-a", "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "durable render");
    json_t *j = h_out_json();
    H_CHECK(h_json_str_is(j, "status", "ok") && h_json_str_is(j, "mode", "durable"), "report: %s", h_json_text(j));
    H_CHECK(h_json_int(j, "frames_written") == FRAMES, "frames written: %s", h_json_text(j));
    H_CHECK(peer_tiles(j) == h_json_int(j, "tiles") && h_json_int(j, "tiles") >= FRAMES * 4,
            "the per-peer figures should count every tile: %s", h_json_text(j));
    json_decref(j);
    same_frames("a");
    no_jobs_left("anim-a");

    h_phase("a. a second run of the same frames is refused while its run file exists");
    rc = h_cli("render", g_scene, "--frames", frames, "--tiles", TILES, "-o", out, "-c", h_addr(), NULL);
    H_EXPECT_EXIT(rc, 2, "render over an earlier run");
    H_CHECK_ERR("--resume");

    h_phase("a. live tasks, frame after frame");
    pattern(out, sizeof(out), "live");
    rc = h_cli("render", g_scene, "--frames", frames, "--tiles", TILES, "-o", out, "-c", h_addr(), "--live", "--json",
               NULL);
    H_EXPECT_EXIT(rc, 0, "live render");
    same_frames("live");
}

static void test_resume(struct h_proc **co)
{
    h_phase("b. interrupted with SIGINT, coordinator SIGKILLed, resumed");
    struct h_proc *p = render_bg("render-b", "b", "anim-b");
    wait_first_frame(p, "b");
    h_signal(p, SIGINT);
    H_REQUIRE(h_wait_exit(p, h_bound_ms(30000)), "the render did not stop on SIGINT");
    H_CHECK(WIFEXITED(p->status) && WEXITSTATUS(p->status) == 1, "an interrupted render exits 1, got %s",
            h_status_str(p->status));
    p->checked = 1;
    int before = frames_written("b");
    h_log("interrupted with %d of %d frames written", before, FRAMES);
    H_CHECK(before < FRAMES, "the render ended before it was interrupted (%d frames): make the frames slower", before);
    json_t *rep = bg_report(p);
    H_CHECK(h_json_str_is(rep, "status", "interrupted"), "report: %s", h_json_text(rep));
    json_decref(rep);

    h_signal(*co, SIGKILL);
    H_REQUIRE(h_wait_exit(*co, h_bound_ms(5000)), "p2c2rd did not die of SIGKILL");
    const char *args[] = {"--state", g_state, "--peer-timeout", "2000", NULL};
    *co = h_coord_start(g_listen, args);
    h_wait_peers(2, NULL);

    char run[400];
    run_file(run, sizeof(run), "b");
    int rc = h_cli("render", "--resume", run, "-c", h_addr(), "--json", NULL);
    H_EXPECT_EXIT(rc, 0, "resumed render");
    json_t *j = h_out_json();
    H_CHECK(h_json_str_is(j, "status", "ok") && h_json_int(j, "frames_skipped") == before &&
                h_json_int(j, "frames_written") == FRAMES - before,
            "the resumed run keeps the %d frames written before: %s", before, h_json_text(j));
    json_decref(j);
    same_frames("b");
    no_jobs_left("anim-b");

}

static void test_coord_kill(struct h_proc **co)
{
    h_phase("d. the coordinator SIGKILLed and restarted under a running render");
    struct h_proc *p = render_bg("render-d", "d", "anim-d");
    wait_first_frame(p, "d");
    h_signal(*co, SIGKILL);
    H_REQUIRE(h_wait_exit(*co, h_bound_ms(5000)), "p2c2rd did not die of SIGKILL");
    const char *args[] = {"--state", g_state, "--peer-timeout", "2000", NULL};
    *co = h_coord_start(g_listen, args);
    json_t *rep = finish_bg(p, "d", "anim-d");
    H_CHECK(h_json_int(rep, "reconnects") >= 1, "the render should have reconnected: %s", h_json_text(rep));
    json_decref(rep);
}

/* Usage errors and bad scenes, and --video with or without ffmpeg. */
static void test_usage(void)
{
    h_phase("usage errors, a bad camera path, --video");
    char out[400], bad[400], run[400];
    h_path(out, sizeof(out), "single.png");
    int rc = h_cli("render", g_scene, "--frames", "2", "-o", out, "-c", h_addr(), NULL);
    H_EXPECT_EXIT(rc, 2, "-o without %d");
    H_CHECK_ERR("%d");
    h_path(run, sizeof(run), "no-such-run.json");
    rc = h_cli("render", "--resume", run, "-c", h_addr(), NULL);
    H_EXPECT_EXIT(rc, 2, "--resume of a missing run file");
    H_CHECK_ERR("run file");
    rc = h_cli("render", g_scene, "--resume", run, NULL);
    H_EXPECT_EXIT(rc, 2, "--resume with a scene");
    static const char path_bad[] = "{\"width\": 8, \"height\": 8, \"camera\": {\"position\": [0, 1, 5], "
                                   "\"look_at\": [0, 0, 0]}, \"camera_path\": [{\"t\": 1}, {\"t\": 0}]}";
    h_path(bad, sizeof(bad), "bad_path.json");
    h_write_file(bad, path_bad, sizeof(path_bad) - 1);
    pattern(out, sizeof(out), "bad");
    rc = h_cli("render", bad, "--frames", "2", "-o", out, "-c", h_addr(), NULL);
    H_EXPECT_EXIT(rc, 1, "a camera path going back in time");
    H_CHECK_ERR("camera_path[1]");
    pattern(out, sizeof(out), "video");
    char video[400];
    h_path(video, sizeof(video), "anim.mp4");
    const char *argv[] = {"sh", "-c", "command -v ffmpeg", NULL};
    struct h_cmd ff = h_run_cmd(NULL, argv);
    int have = ff.code == 0;
    h_cmd_free(&ff);
    rc = h_cli("render", g_scene, "--frames", "2", "--width", "32", "--height", "16", "-o", out, "--local", "--video",
               video, NULL);
    if (have) {
        H_EXPECT_EXIT(rc, 0, "render with --video");
        H_CHECK(access(video, F_OK) == 0, "ffmpeg made no %s", video);
    } else {
        H_EXPECT_EXIT(rc, 2, "--video without ffmpeg");
        H_CHECK_ERR("ffmpeg");
    }
}

/* Last: it changes the scene. */
static void test_changed(void)
{
    char run[400];
    run_file(run, sizeof(run), "b");
    h_phase("b. a run whose scene changed is not resumed");
    size_t n;
    char *s = h_read_file(g_scene, &n);
    H_REQUIRE(s != NULL, "cannot read the scene back");
    char *spp = strstr(s, "\"spp\": ");
    H_REQUIRE(spp != NULL, "the scene has no spp");
    spp[7] = spp[7] == '9' ? '8' : (char)(spp[7] + 1);
    h_write_file(g_scene, s, n);
    free(s);
    int rc = h_cli("render", "--resume", run, "-c", h_addr(), NULL);
    H_EXPECT_EXIT(rc, 1, "resume after the scene changed");
    H_CHECK_ERR("changed");
}

static void test_peer_kill(struct h_proc **peers)
{
    h_phase("c. a peer SIGKILLed mid-animation");
    struct h_proc *p = render_bg("render-c", "c", "anim-c");
    wait_first_frame(p, "c");
    h_signal(peers[0], SIGKILL);
    json_decref(finish_bg(p, "c", "anim-c"));
}

int main(int argc, char **argv)
{
    h_init(argc, argv, "render_anim");
    H_REQUIRE(h_cli_bin() != NULL, "usage: test_render_anim p2c2rd p2c2r-peer p2c2r");
    char text[2048];
    /* Some 30 ms of one core a tile in a normal build: slow enough that the
     * renders are interrupted and a peer dies with frames to go. */
    int n = snprintf(text, sizeof(text), SCENE_FMT, 128);
    h_path(g_scene, sizeof(g_scene), "anim.json");
    H_REQUIRE(h_write_file(g_scene, text, (size_t)n) == 0, "cannot write the scene");
    h_path(g_state, sizeof(g_state), "state");

    h_phase("the reference frames, in-process");
    char out[400], frames[16];
    snprintf(frames, sizeof(frames), "%d", FRAMES);
    pattern(out, sizeof(out), "ref");
    int rc = h_cli("render", g_scene, "--frames", frames, "--tiles", TILES, "-o", out, "--local", NULL);
    H_EXPECT_EXIT(rc, 0, "local render");
    H_REQUIRE(frames_written("ref") == FRAMES, "the reference frames are missing");

    const char *args[] = {"--state", g_state, "--peer-timeout", "2000", NULL};
    struct h_proc *co = h_coord_start(NULL, args);
    snprintf(g_listen, sizeof(g_listen), "%s", h_addr()); /* restarts take the same port */
    struct h_proc *peers[3];
    peers[0] = h_peer_start("peer-0", 1, "raytrace", NULL);
    peers[1] = h_peer_start("peer-1", 1, "raytrace", NULL);
    h_wait_peers(2, NULL);

    test_straight();
    test_resume(&co);
    test_peer_kill(peers);
    test_coord_kill(&co);
    test_usage();
    test_changed();
    peers[2] = co;
    h_stop_all(peers + 1, 2);
    return h_finish();
}
