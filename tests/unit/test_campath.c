/* test_campath.c - the camera path of animated raytrace scenes
 * (src/cli/campath.c): frame times, the curve through the keys, and the
 * per-frame scene text that `p2c2r render --frames` sends. */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli/campath.h"

static struct campath_key key(double t, double x, double y, double z)
{
    struct campath_key k = {t, {x, y, z}, {0, 0, 0}, {0, 1, 0}, 40};
    return k;
}

static int near(double a, double b)
{
    return fabs(a - b) < 1e-12;
}

static void test_times(void)
{
    struct campath_key k[3] = {key(1, 0, 0, 0), key(2, 1, 0, 0), key(5, 2, 0, 0)};
    CHECK(campath_frame_time(k, 3, 0, 1) == 1.0);
    CHECK(campath_frame_time(k, 3, 0, 5) == 1.0);
    CHECK(campath_frame_time(k, 3, 4, 5) == 5.0);
    CHECK(near(campath_frame_time(k, 3, 2, 5), 3.0));
    CHECK(near(campath_frame_time(k, 3, 1, 5), 2.0));
}

static void test_curve(void)
{
    /* Evenly spaced keys on a line: smooth motion is uniform motion. */
    struct campath_key line[4] = {key(0, 0, 0, 0), key(1, 2, 4, -2), key(2, 4, 8, -4), key(3, 6, 12, -6)};
    struct campath_key c;
    for (int i = 0; i <= 30; i++) {
        double t = i / 10.0;
        campath_eval(line, 4, CAMPATH_SMOOTH, t, &c);
        CHECK(near(c.position[0], 2 * t) && near(c.position[1], 4 * t) && near(c.position[2], -2 * t));
    }
    /* Through every key exactly, both ways; held outside the keys. */
    struct campath_key k[4] = {key(0, 0, 0, 0), key(1, 1, 3, 0), key(3, -2, 1, 5), key(4, 0, 0, 1)};
    k[2].fov = 80;
    k[2].up[0] = 1;
    for (int how = 0; how < 2; how++) {
        for (int i = 0; i < 4; i++) {
            campath_eval(k, 4, (enum campath_interp)how, k[i].t, &c);
            CHECK(memcmp(c.position, k[i].position, sizeof(c.position)) == 0);
            CHECK(c.fov == k[i].fov);
        }
        campath_eval(k, 4, (enum campath_interp)how, -5, &c);
        CHECK(memcmp(c.position, k[0].position, sizeof(c.position)) == 0);
        campath_eval(k, 4, (enum campath_interp)how, 9, &c);
        CHECK(memcmp(c.position, k[3].position, sizeof(c.position)) == 0);
    }
    /* Linear: halfway is the midpoint; fov and up are always linear. */
    campath_eval(k, 4, CAMPATH_LINEAR, 2, &c);
    CHECK(near(c.position[0], -0.5) && near(c.position[1], 2) && near(c.position[2], 2.5));
    CHECK(near(c.fov, 60) && near(c.up[0], 0.5));
    campath_eval(k, 4, CAMPATH_SMOOTH, 2, &c);
    CHECK(near(c.fov, 60) && near(c.up[0], 0.5));
    /* Smooth differs from linear between keys that turn, and is continuous
     * across a key. */
    CHECK(!near(c.position[1], 2));
    struct campath_key l, r;
    campath_eval(k, 4, CAMPATH_SMOOTH, 1 - 1e-9, &l);
    campath_eval(k, 4, CAMPATH_SMOOTH, 1 + 1e-9, &r);
    CHECK(fabs(l.position[1] - r.position[1]) < 1e-6);
    /* One key: every frame is that camera. */
    campath_eval(k, 1, CAMPATH_SMOOTH, 7, &c);
    CHECK(memcmp(c.position, k[0].position, sizeof(c.position)) == 0);
}

static const char SCENE[] =
    "{\"width\": 8, \"height\": 4, \"camera\": {\"position\": [0, 1, 5], \"look_at\": [0, 0, 0], \"fov\": 50},"
    " \"camera_path\": [{\"t\": 0, \"position\": [-4, 1, 3]}, {\"t\": 2, \"position\": [4, 3, 3], \"fov\": 30}],"
    " \"camera_interp\": \"linear\", \"spheres\": []}";

static void test_scene(void)
{
    char *s = NULL, *s2 = NULL, err[200];
    size_t n = 0, n2 = 0;
    CHECK(campath_frame_scene(SCENE, strlen(SCENE), 1, 3, 0, 0, &s, &n, err, sizeof(err)) == 0);
    json_t *j = s ? json_loads(s, 0, NULL) : NULL;
    CHECK(j && !json_object_get(j, "camera_path") && !json_object_get(j, "camera_interp"));
    json_t *cam = json_object_get(j, "camera");
    CHECK(near(json_real_value(json_array_get(json_object_get(cam, "position"), 0)), 0.0));
    CHECK(near(json_real_value(json_array_get(json_object_get(cam, "position"), 1)), 2.0));
    /* Fields a key leaves out come from the scene's camera. */
    CHECK(near(json_real_value(json_array_get(json_object_get(cam, "look_at"), 2)), 0.0));
    CHECK(near(json_real_value(json_object_get(cam, "fov")), 40.0));
    CHECK(json_integer_value(json_object_get(j, "width")) == 8);
    json_decref(j);
    /* The same frame gives the same bytes; --width/--height apply. */
    CHECK(campath_frame_scene(SCENE, strlen(SCENE), 1, 3, 0, 0, &s2, &n2, err, sizeof(err)) == 0);
    CHECK(s && s2 && n == n2 && memcmp(s, s2, n) == 0);
    free(s2);
    CHECK(campath_frame_scene(SCENE, strlen(SCENE), 2, 3, 16, 0, &s2, &n2, err, sizeof(err)) == 0);
    CHECK(s2 && strstr(s2, "\"width\":16") && strstr(s2, "\"fov\":30"));
    free(s2);
    free(s);
    /* A scene without a path is every frame as it is. */
    const char plain[] = "{\"width\": 8, \"camera\": {\"fov\": 50}}";
    CHECK(campath_frame_scene(plain, strlen(plain), 5, 9, 0, 0, &s, &n, err, sizeof(err)) == 0);
    CHECK(s && strcmp(s, "{\"width\":8,\"camera\":{\"fov\":50}}") == 0);
    free(s);
    /* Malformed paths say what is wrong. */
    static const char *const bad[][2] = {
        {"{\"camera_path\": []}", "key frames"},
        {"{\"camera_path\": [{\"position\": [0, 0, 0]}]}", "\"t\""},
        {"{\"camera_path\": [{\"t\": 1}, {\"t\": 1}]}", "greater"},
        {"{\"camera_path\": [{\"t\": 0, \"position\": [0, 0]}]}", "3 numbers"},
        {"{\"camera_path\": [{\"t\": 0, \"fov\": \"wide\"}]}", "fov"},
        {"{\"camera_path\": [{\"t\": 0}], \"camera_interp\": \"cubic\"}", "camera_interp"},
        {"[1, 2]", "object"},
        {"{\"a\": 1, \"a\": 2}", "object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        s = NULL;
        CHECK(campath_frame_scene(bad[i][0], strlen(bad[i][0]), 0, 2, 0, 0, &s, &n, err, sizeof(err)) == -1);
        CHECK(s == NULL && strstr(err, bad[i][1]) != NULL);
        if (!strstr(err, bad[i][1]))
            fprintf(stderr, "case %zu: '%s'\n", i, err);
    }
}

int main(void)
{
    test_times();
    test_curve();
    test_scene();
    return check_report("test_campath");
}
