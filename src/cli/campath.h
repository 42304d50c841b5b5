/* campath.h - the camera path of an animated raytrace scene (`p2c2r render
 * --frames N`): key frames in the scene's "camera_path" member, one camera
 * per frame interpolated between them, and the scene text each frame is
 * rendered from.  Format: docs/tasks/raytrace.md, "Animations". */
#ifndef P2C2R_CLI_CAMPATH_H
#define P2C2R_CLI_CAMPATH_H

#include <stddef.h>
#include <stdint.h>

#define CAMPATH_MAX_KEYS 4096

/* One key frame: the camera at time t. */
struct campath_key {
    double t;
    double position[3], look_at[3], up[3];
    double fov;
};

/* Interpolation between key frames. */
enum campath_interp { CAMPATH_SMOOTH = 0, CAMPATH_LINEAR = 1 };

/* The time of frame i of n: the path's first time to its last in n - 1
 * equal steps (n = 1: the first time).  keys[0..nkeys) have increasing t. */
double campath_frame_time(const struct campath_key *keys, size_t nkeys, uint32_t i, uint32_t n);

/* The camera at time t into *out.  position and look_at follow a cubic
 * Hermite curve through the keys (CAMPATH_SMOOTH: tangents by central
 * differences over time, one-sided at the ends, so the curve passes through
 * every key and evenly spaced keys on a line give uniform motion) or
 * straight lines (CAMPATH_LINEAR); up and fov are interpolated linearly.
 * Outside the keys' times the nearest end key holds.  Pure and
 * deterministic: the same arguments give the same bits. */
void campath_eval(const struct campath_key *keys, size_t nkeys, enum campath_interp how, double t,
                  struct campath_key *out);

/* The scene text of frame i of n, as a new NUL-terminated buffer (*out,
 * free it; *out_len its length): the scene json[0..len) with its "camera"
 * set to the path's camera at frame i and "camera_path" and
 * "camera_interp" removed, "width" and "height" replaced when non-zero,
 * printed compactly (reals with 17 significant digits, members in their
 * order: the same input gives the same bytes).  A scene without
 * "camera_path" is every frame's scene as it is.  Returns 0, -1 with a
 * message in err when the scene or its path is malformed, or -2 when out
 * of memory. */
int campath_frame_scene(const char *json, size_t len, uint32_t i, uint32_t n, int64_t width, int64_t height,
                        char **out, size_t *out_len, char *err, size_t err_cap);

#endif
