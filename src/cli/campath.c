/* campath.c - camera paths of animated raytrace scenes (see campath.h).
 *
 * The path is read with jansson from the scene's "camera_path" array; a key
 * that leaves out a field keeps the previous key's value (the first key:
 * the scene's "camera").  Interpolation is plain double arithmetic in a
 * fixed order, so a frame's scene text, and with it the frame's pixels and
 * the durable jobs' keys, are the same on every run: a resumed animation
 * asks for exactly the tiles it asked for before. */
#include "cli/campath.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

double campath_frame_time(const struct campath_key *keys, size_t nkeys, uint32_t i, uint32_t n)
{
    double t0 = keys[0].t, t1 = keys[nkeys - 1].t;
    if (n <= 1 || i == 0)
        return t0;
    if (i >= n - 1)
        return t1;
    return t0 + (t1 - t0) * (double)i / (double)(n - 1);
}

/* The tangent (per unit of time) of component c of field off at key k. */
static double tangent(const struct campath_key *keys, size_t n, size_t k, size_t off, int c)
{
    size_t a = k > 0 ? k - 1 : k, b = k + 1 < n ? k + 1 : k;
    if (a == b)
        return 0.0;
    const double *pa = (const double *)((const char *)&keys[a] + off);
    const double *pb = (const double *)((const char *)&keys[b] + off);
    return (pb[c] - pa[c]) / (keys[b].t - keys[a].t);
}

static void hermite3(const struct campath_key *keys, size_t n, size_t k, double u, enum campath_interp how,
                     size_t off, double *out)
{
    const double *p0 = (const double *)((const char *)&keys[k] + off);
    const double *p1 = (const double *)((const char *)&keys[k + 1] + off);
    double dt = keys[k + 1].t - keys[k].t;
    double u2 = u * u, u3 = u2 * u;
    double h00 = 2 * u3 - 3 * u2 + 1, h10 = u3 - 2 * u2 + u, h01 = -2 * u3 + 3 * u2, h11 = u3 - u2;
    for (int c = 0; c < 3; c++) {
        if (how == CAMPATH_LINEAR) {
            out[c] = p0[c] + (p1[c] - p0[c]) * u;
            continue;
        }
        out[c] = h00 * p0[c] + h10 * dt * tangent(keys, n, k, off, c) + h01 * p1[c] +
                 h11 * dt * tangent(keys, n, k + 1, off, c);
    }
}

void campath_eval(const struct campath_key *keys, size_t nkeys, enum campath_interp how, double t,
                  struct campath_key *out)
{
    if (nkeys == 1 || t <= keys[0].t) {
        *out = keys[0];
        out->t = t;
        return;
    }
    if (t >= keys[nkeys - 1].t) {
        *out = keys[nkeys - 1];
        out->t = t;
        return;
    }
    size_t k = 0;
    while (k + 2 < nkeys && t >= keys[k + 1].t)
        k++;
    double u = (t - keys[k].t) / (keys[k + 1].t - keys[k].t);
    if (u == 0.0) {
        *out = keys[k];
        return;
    }
    out->t = t;
    hermite3(keys, nkeys, k, u, how, offsetof(struct campath_key, position), out->position);
    hermite3(keys, nkeys, k, u, how, offsetof(struct campath_key, look_at), out->look_at);
    hermite3(keys, nkeys, k, u, CAMPATH_LINEAR, offsetof(struct campath_key, up), out->up);
    out->fov = keys[k].fov + (keys[k + 1].fov - keys[k].fov) * u;
}

/* ---- the scene text --------------------------------------------------------- */

/* Reads member name of o as a vec3 into v when present.  Returns 0, or -1
 * with a message. */
static int read_vec3(const json_t *o, const char *name, const char *where, double *v, char *err, size_t cap)
{
    json_t *a = json_object_get(o, name);
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) != 3) {
        snprintf(err, cap, "%s: \"%s\" must be an array of 3 numbers", where, name);
        return -1;
    }
    for (size_t c = 0; c < 3; c++) {
        json_t *x = json_array_get(a, c);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) {
            snprintf(err, cap, "%s: \"%s\"[%zu] must be a finite number", where, name, c);
            return -1;
        }
        v[c] = json_number_value(x);
    }
    return 0;
}

static int read_cam(const json_t *o, const char *where, struct campath_key *k, char *err, size_t cap)
{
    if (read_vec3(o, "position", where, k->position, err, cap) || read_vec3(o, "look_at", where, k->look_at, err, cap) ||
        read_vec3(o, "up", where, k->up, err, cap))
        return -1;
    json_t *f = json_object_get(o, "fov");
    if (f && (!json_is_number(f) || !isfinite(json_number_value(f)))) {
        snprintf(err, cap, "%s: \"fov\" must be a number", where);
        return -1;
    }
    if (f)
        k->fov = json_number_value(f);
    return 0;
}

static json_t *vec3_json(const double *v)
{
    return json_pack("[f,f,f]", v[0], v[1], v[2]);
}

/* Parses root's camera path into a new array (*keys, *n) and *how.
 * Returns 0, -1 (message in err) or -2 (out of memory). */
static int parse_path(json_t *root, struct campath_key **keys, size_t *n, enum campath_interp *how, char *err,
                      size_t cap)
{
    json_t *path = json_object_get(root, "camera_path"), *cam = json_object_get(root, "camera");
    json_t *interp = json_object_get(root, "camera_interp");
    *how = CAMPATH_SMOOTH;
    if (interp && json_is_string(interp) && strcmp(json_string_value(interp), "linear") == 0)
        *how = CAMPATH_LINEAR;
    else if (interp && !(json_is_string(interp) && strcmp(json_string_value(interp), "smooth") == 0)) {
        snprintf(err, cap, "\"camera_interp\" must be \"smooth\" or \"linear\"");
        return -1;
    }
    if (!json_is_array(path) || json_array_size(path) == 0 || json_array_size(path) > CAMPATH_MAX_KEYS) {
        snprintf(err, cap, "\"camera_path\" must be an array of 1..%d key frames", CAMPATH_MAX_KEYS);
        return -1;
    }
    struct campath_key prev = {0, {0, 0, 0}, {0, 0, -1}, {0, 1, 0}, 40};
    if (json_is_object(cam) && read_cam(cam, "camera", &prev, err, cap) != 0)
        return -1;
    size_t cnt = json_array_size(path);
    struct campath_key *k = calloc(cnt, sizeof(*k));
    if (!k)
        return -2;
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(path, i), *t = json_object_get(o, "t");
        char where[48];
        snprintf(where, sizeof(where), "camera_path[%zu]", i);
        if (!json_is_object(o) || !json_is_number(t) || !isfinite(json_number_value(t))) {
            snprintf(err, cap, "%s must be an object with a number \"t\"", where);
            free(k);
            return -1;
        }
        k[i] = prev;
        k[i].t = json_number_value(t);
        if (read_cam(o, where, &k[i], err, cap) != 0) {
            free(k);
            return -1;
        }
        if (i > 0 && !(k[i].t > k[i - 1].t)) {
            snprintf(err, cap, "%s: \"t\" must be greater than the previous key's (%g)", where, k[i - 1].t);
            free(k);
            return -1;
        }
        prev = k[i];
    }
    *keys = k;
    *n = cnt;
    return 0;
}

int campath_frame_scene(const char *json, size_t len, uint32_t i, uint32_t n, int64_t width, int64_t height,
                        char **out, size_t *out_len, char *err, size_t err_cap)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = -1;
    if (!root || !json_is_object(root)) {
        snprintf(err, err_cap, "not a JSON object%s%s", root ? "" : ": ", root ? "" : jerr.text);
        json_decref(root);
        return -1;
    }
    if (json_object_get(root, "camera_path")) {
        struct campath_key *keys = NULL, cam;
        size_t nk = 0;
        enum campath_interp how;
        if ((rc = parse_path(root, &keys, &nk, &how, err, err_cap)) != 0)
            goto out;
        campath_eval(keys, nk, how, campath_frame_time(keys, nk, i, n), &cam);
        free(keys);
        rc = -2;
        json_t *c = json_object();
        if (!c || json_object_set_new(c, "position", vec3_json(cam.position)) ||
            json_object_set_new(c, "look_at", vec3_json(cam.look_at)) || json_object_set_new(c, "up", vec3_json(cam.up)) ||
            json_object_set_new(c, "fov", json_real(cam.fov)) || json_object_set_new(root, "camera", c))
            goto out;
        json_object_del(root, "camera_path");
    }
    json_object_del(root, "camera_interp"); /* alone it means nothing: the executor would refuse it */
    rc = -2;
    if ((width && json_object_set_new(root, "width", json_integer(width)) != 0) ||
        (height && json_object_set_new(root, "height", json_integer(height)) != 0))
        goto out;
    char *s = json_dumps(root, JSON_COMPACT);
    if (!s)
        goto out;
    *out = s;
    *out_len = strlen(s);
    rc = 0;
out:
    json_decref(root);
    return rc;
}
