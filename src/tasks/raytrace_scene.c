/* raytrace_scene.c - decodes the raytrace executor's JSON scene (with
 * jansson) and its binary mesh blobs into a struct rt_scene, then has the
 * BVH built.
 *
 * The input is untrusted.  Every field is type-checked and range-checked,
 * unknown keys are rejected (keys starting with '_' are comments), and
 * every count is checked against its limit before anything is allocated
 * for it, so a hostile scene costs at most a bounded amount of memory and
 * gets P2C2R_EINVAL with a one-line reason naming the field.  Values are
 * bounded so that no later arithmetic can overflow to infinity or NaN.
 * A scene is immutable once rt_scene_parse returns.  No global state. */
#include "tasks/raytrace_scene.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define NAME_MAX_LEN 64

struct pctx {
    char *err;
    size_t cap;
    const struct p2c2r_blob *blobs;
    size_t nblobs;
    struct rt_scene *s;
    json_t *names; /* material name -> index into s->mats */
};

/* Writes a one-line reason (control characters from the input replaced)
 * and returns P2C2R_EINVAL. */
__attribute__((format(printf, 2, 3))) static int fail(struct pctx *c, const char *fmt, ...)
{
    if (c->err && c->cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->cap, fmt, ap);
        va_end(ap);
        for (char *p = c->err; *p; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = '?';
    }
    return P2C2R_EINVAL;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a real";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    default: return "null";
    }
}

/* Rejects keys not in allowed (a NULL-terminated list). */
static int check_keys(struct pctx *c, json_t *o, const char *path, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        (void)v;
        if (k[0] == '_')
            continue;
        size_t i = 0;
        while (allowed[i] && strcmp(k, allowed[i]) != 0)
            i++;
        if (!allowed[i])
            return fail(c, "%s: unknown key '%.40s'", path, k);
    }
    return 0;
}

static int get_num(struct pctx *c, json_t *o, const char *path, const char *key, int required,
                   double def, double lo, double hi, double *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(c, "%s.%s: missing (a number is required)", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_number(v))
        return fail(c, "%s.%s: expected a number, got %s", path, key, type_name(v));
    double x = json_number_value(v);
    if (!isfinite(x) || x < lo || x > hi)
        return fail(c, "%s.%s: %g is out of range [%g, %g]", path, key, x, lo, hi);
    *out = x;
    return 0;
}

/* Like get_num for a value that must be strictly positive. */
static int get_pos(struct pctx *c, json_t *o, const char *path, const char *key, int required,
                   double def, double hi, double *out)
{
    int rc = get_num(c, o, path, key, required, def, 0.0, hi, out);
    if (rc == 0 && !(*out > 0.0))
        return fail(c, "%s.%s: must be greater than 0", path, key);
    return rc;
}

static int get_int(struct pctx *c, json_t *o, const char *path, const char *key, int required,
                   long long def, long long lo, long long hi, long long *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(c, "%s.%s: missing (an integer is required)", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_integer(v))
        return fail(c, "%s.%s: expected an integer, got %s", path, key, type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return fail(c, "%s.%s: %lld is out of range [%lld, %lld]", path, key, x, lo, hi);
    *out = x;
    return 0;
}

/* A 3-number array, each in [lo, hi]. */
static int get_vec(struct pctx *c, json_t *o, const char *path, const char *key, int required,
                   struct rt_v3 def, double lo, double hi, struct rt_v3 *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        if (required)
            return fail(c, "%s.%s: missing (an array of 3 numbers is required)", path, key);
        *out = def;
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != 3)
        return fail(c, "%s.%s: expected an array of 3 numbers, got %s", path, key,
                    json_is_array(v) ? "an array of another length" : type_name(v));
    double x[3];
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_number(e))
            return fail(c, "%s.%s[%zu]: expected a number, got %s", path, key, i, type_name(e));
        x[i] = json_number_value(e);
        if (!isfinite(x[i]) || x[i] < lo || x[i] > hi)
            return fail(c, "%s.%s[%zu]: %g is out of range [%g, %g]", path, key, i, x[i], lo, hi);
    }
    *out = v3(x[0], x[1], x[2]);
    return 0;
}

/* An optional array member: sets *n to its size (0 when absent). */
static int get_array(struct pctx *c, json_t *o, const char *key, size_t max, json_t **arr, size_t *n)
{
    json_t *v = json_object_get(o, key);
    *arr = v;
    *n = 0;
    if (!v)
        return 0;
    if (!json_is_array(v))
        return fail(c, "scene.%s: expected an array, got %s", key, type_name(v));
    *n = json_array_size(v);
    if (*n > max)
        return fail(c, "scene.%s: %zu entries, over the limit of %zu", key, *n, max);
    return 0;
}

static int get_object_elem(struct pctx *c, json_t *arr, size_t i, const char *key, char *path,
                           size_t path_cap, json_t **out)
{
    snprintf(path, path_cap, "%s[%zu]", key, i);
    *out = json_array_get(arr, i);
    if (!json_is_object(*out))
        return fail(c, "%s: expected an object, got %s", path, type_name(*out));
    return 0;
}

/* ---- materials --------------------------------------------------------------- */

static int parse_material(struct pctx *c, json_t *m, const char *path, struct rt_material *out)
{
    static const char *const diffuse_keys[] = {"type", "albedo", NULL};
    static const char *const metal_keys[] = {"type", "albedo", "fuzz", NULL};
    static const char *const glass_keys[] = {"type", "ior", "tint", NULL};
    static const char *const emissive_keys[] = {"type", "emission", NULL};
    if (!json_is_object(m))
        return fail(c, "%s: expected a material object, got %s", path, type_name(m));
    json_t *t = json_object_get(m, "type");
    if (!t)
        return fail(c, "%s.type: missing (diffuse, metal, glass or emissive)", path);
    if (!json_is_string(t))
        return fail(c, "%s.type: expected a string, got %s", path, type_name(t));
    const char *ts = json_string_value(t);
    struct rt_v3 zero = v3(0, 0, 0), one = v3(1, 1, 1);
    memset(out, 0, sizeof(*out));
    int rc;
    if (strcmp(ts, "diffuse") == 0) {
        out->kind = RT_MAT_DIFFUSE;
        if ((rc = check_keys(c, m, path, diffuse_keys)) != 0 ||
            (rc = get_vec(c, m, path, "albedo", 1, zero, 0.0, 1.0, &out->albedo)) != 0)
            return rc;
    } else if (strcmp(ts, "metal") == 0) {
        out->kind = RT_MAT_METAL;
        if ((rc = check_keys(c, m, path, metal_keys)) != 0 ||
            (rc = get_vec(c, m, path, "albedo", 1, zero, 0.0, 1.0, &out->albedo)) != 0 ||
            (rc = get_num(c, m, path, "fuzz", 0, 0.0, 0.0, 1.0, &out->fuzz)) != 0)
            return rc;
    } else if (strcmp(ts, "glass") == 0) {
        out->kind = RT_MAT_GLASS;
        if ((rc = check_keys(c, m, path, glass_keys)) != 0 ||
            (rc = get_num(c, m, path, "ior", 1, 1.5, 1.0, 4.0, &out->ior)) != 0 ||
            (rc = get_vec(c, m, path, "tint", 0, one, 0.0, 1.0, &out->albedo)) != 0)
            return rc;
    } else if (strcmp(ts, "emissive") == 0) {
        out->kind = RT_MAT_EMISSIVE;
        if ((rc = check_keys(c, m, path, emissive_keys)) != 0 ||
            (rc = get_vec(c, m, path, "emission", 1, zero, 0.0, 1e6, &out->emission)) != 0)
            return rc;
    } else {
        return fail(c, "%s.type: '%.40s' is not diffuse, metal, glass or emissive", path, ts);
    }
    return 0;
}

static int parse_named_materials(struct pctx *c, json_t *root)
{
    json_t *mats = json_object_get(root, "materials");
    if (!mats)
        return 0;
    if (!json_is_object(mats))
        return fail(c, "scene.materials: expected an object of name: material, got %s", type_name(mats));
    const char *name;
    json_t *m;
    json_object_foreach(mats, name, m) {
        char path[NAME_MAX_LEN + 32];
        size_t nl = strlen(name);
        if (nl == 0 || nl > NAME_MAX_LEN)
            return fail(c, "scene.materials: name '%.40s' must be 1..%d bytes", name, NAME_MAX_LEN);
        snprintf(path, sizeof(path), "materials.%s", name);
        struct rt_scene *s = c->s;
        int rc = parse_material(c, m, path, &s->mats[s->nmats]);
        if (rc)
            return rc;
        json_t *ix = json_integer(s->nmats);
        if (!ix || json_object_set_new(c->names, name, ix) != 0)
            return P2C2R_ENOMEM;
        s->nmats++;
    }
    return 0;
}

/* The "material" of an object: a name from scene.materials or an inline
 * material object (appended to s->mats, whose room was reserved). */
static int get_mat(struct pctx *c, json_t *o, const char *path, uint32_t *out)
{
    json_t *v = json_object_get(o, "material");
    if (!v)
        return fail(c, "%s.material: missing (a name from materials, or a material object)", path);
    if (json_is_string(v)) {
        json_t *ix = json_object_get(c->names, json_string_value(v));
        if (!ix)
            return fail(c, "%s.material: no material named '%.40s' in scene.materials", path,
                        json_string_value(v));
        *out = (uint32_t)json_integer_value(ix);
        return 0;
    }
    if (!json_is_object(v))
        return fail(c, "%s.material: expected a material name or object, got %s", path, type_name(v));
    char mpath[96];
    snprintf(mpath, sizeof(mpath), "%s.material", path);
    struct rt_scene *s = c->s;
    int rc = parse_material(c, v, mpath, &s->mats[s->nmats]);
    if (rc)
        return rc;
    *out = s->nmats++;
    return 0;
}

/* ---- camera ------------------------------------------------------------------ */

/* tan(deg degrees) for 0 < deg < 90 from Taylor series: only + - * /, so
 * every peer gets the same bits (libm's tan may differ in the last bit). */
static double tan_deg(double deg)
{
    double x = deg * (3.14159265358979323846 / 180.0), x2 = x * x;
    double s = 0.0, c = 0.0, ts = x, tc = 1.0;
    for (int k = 0; k < 30; k++) {
        s += ts;
        c += tc;
        ts = -ts * x2 / (double)((2 * k + 2) * (2 * k + 3));
        tc = -tc * x2 / (double)((2 * k + 1) * (2 * k + 2));
    }
    return s / c;
}

static int parse_camera(struct pctx *c, json_t *root)
{
    static const char *const keys[] = {"position", "look_at", "up", "fov", NULL};
    json_t *cam = json_object_get(root, "camera");
    if (!cam)
        return fail(c, "scene.camera: missing (an object with position, look_at, up, fov)");
    if (!json_is_object(cam))
        return fail(c, "scene.camera: expected an object, got %s", type_name(cam));
    struct rt_v3 pos, at, up;
    double fov;
    int rc;
    if ((rc = check_keys(c, cam, "camera", keys)) != 0 ||
        (rc = get_vec(c, cam, "camera", "position", 1, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &pos)) != 0 ||
        (rc = get_vec(c, cam, "camera", "look_at", 1, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &at)) != 0 ||
        (rc = get_vec(c, cam, "camera", "up", 0, v3(0, 1, 0), -RT_MAX_COORD, RT_MAX_COORD, &up)) != 0 ||
        (rc = get_num(c, cam, "camera", "fov", 1, 0, 1.0, 179.0, &fov)) != 0)
        return rc;
    struct rt_v3 f = v3_sub(at, pos);
    if (v3_len(f) < 1e-9)
        return fail(c, "camera: look_at must differ from position");
    if (v3_len(up) < 1e-9)
        return fail(c, "camera.up: must not be zero");
    f = v3_norm(f);
    struct rt_v3 r = v3_cross(f, v3_norm(up));
    if (v3_len(r) < 1e-6)
        return fail(c, "camera.up: must not be parallel to the view direction");
    r = v3_norm(r);
    struct rt_camera *k = &c->s->cam;
    k->pos = pos;
    k->fwd = f;
    k->right = r;
    k->up = v3_cross(r, f);
    k->tan_half = tan_deg(fov / 2.0);
    return 0;
}

/* ---- objects and lights ------------------------------------------------------- */

static int parse_spheres(struct pctx *c, json_t *arr, size_t n)
{
    static const char *const keys[] = {"center", "radius", "material", NULL};
    struct rt_scene *s = c->s;
    for (size_t i = 0; i < n; i++) {
        char path[48];
        json_t *o;
        struct rt_sphere *sp = &s->spheres[s->nspheres];
        int rc;
        if ((rc = get_object_elem(c, arr, i, "spheres", path, sizeof(path), &o)) != 0 ||
            (rc = check_keys(c, o, path, keys)) != 0 ||
            (rc = get_vec(c, o, path, "center", 1, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &sp->c)) != 0 ||
            (rc = get_pos(c, o, path, "radius", 1, 0, RT_MAX_COORD, &sp->r)) != 0 ||
            (rc = get_mat(c, o, path, &sp->mat)) != 0)
            return rc;
        sp->light = -1;
        s->nspheres++;
    }
    return 0;
}

static int parse_planes(struct pctx *c, json_t *arr, size_t n)
{
    static const char *const keys[] = {"point", "normal", "material", NULL};
    struct rt_scene *s = c->s;
    for (size_t i = 0; i < n; i++) {
        char path[48];
        json_t *o;
        struct rt_plane *pl = &s->planes[s->nplanes];
        int rc;
        if ((rc = get_object_elem(c, arr, i, "planes", path, sizeof(path), &o)) != 0 ||
            (rc = check_keys(c, o, path, keys)) != 0 ||
            (rc = get_vec(c, o, path, "point", 1, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &pl->p)) != 0 ||
            (rc = get_vec(c, o, path, "normal", 1, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &pl->n)) != 0 ||
            (rc = get_mat(c, o, path, &pl->mat)) != 0)
            return rc;
        if (v3_len(pl->n) < 1e-9)
            return fail(c, "%s.normal: must not be zero", path);
        pl->n = v3_norm(pl->n);
        s->nplanes++;
    }
    return 0;
}

/* Counts the lights whose shape is a sphere and a quad (for allocation),
 * checking only what is needed to count. */
static int count_area_lights(struct pctx *c, json_t *arr, size_t n, size_t *nsph, size_t *nquad)
{
    *nsph = *nquad = 0;
    for (size_t i = 0; i < n; i++) {
        char path[48];
        json_t *o;
        int rc = get_object_elem(c, arr, i, "lights", path, sizeof(path), &o);
        if (rc)
            return rc;
        json_t *t = json_object_get(o, "type");
        if (!t)
            return fail(c, "%s.type: missing (point, rect or sphere)", path);
        if (!json_is_string(t))
            return fail(c, "%s.type: expected a string, got %s", path, type_name(t));
        const char *ts = json_string_value(t);
        if (strcmp(ts, "rect") == 0)
            (*nquad)++;
        else if (strcmp(ts, "sphere") == 0)
            (*nsph)++;
        else if (strcmp(ts, "point") != 0)
            return fail(c, "%s.type: '%.40s' is not point, rect or sphere", path, ts);
    }
    return 0;
}

/* Lights come after the scene's spheres were parsed: sphere lights append
 * spheres, rect lights quads; each area light gets an emissive material. */
static int parse_lights(struct pctx *c, json_t *arr, size_t n)
{
    static const char *const point_keys[] = {"type", "position", "intensity", NULL};
    static const char *const rect_keys[] = {"type", "corner", "edge1", "edge2", "emission", NULL};
    static const char *const sphere_keys[] = {"type", "center", "radius", "emission", NULL};
    struct rt_scene *s = c->s;
    struct rt_v3 z = v3(0, 0, 0);
    for (size_t i = 0; i < n; i++) {
        char path[48];
        json_t *o = json_array_get(arr, i);
        snprintf(path, sizeof(path), "lights[%zu]", i);
        const char *ts = json_string_value(json_object_get(o, "type"));
        struct rt_light *l = &s->lights[s->nlights];
        int rc;
        memset(l, 0, sizeof(*l));
        if (strcmp(ts, "point") == 0) {
            l->kind = RT_LIGHT_POINT;
            if ((rc = check_keys(c, o, path, point_keys)) != 0 ||
                (rc = get_vec(c, o, path, "position", 1, z, -RT_MAX_COORD, RT_MAX_COORD, &l->pos)) != 0 ||
                (rc = get_vec(c, o, path, "intensity", 1, z, 0.0, 1e9, &l->intensity)) != 0)
                return rc;
        } else if (strcmp(ts, "rect") == 0) {
            struct rt_quad *q = &s->quads[s->nquads];
            l->kind = RT_LIGHT_RECT;
            if ((rc = check_keys(c, o, path, rect_keys)) != 0 ||
                (rc = get_vec(c, o, path, "corner", 1, z, -RT_MAX_COORD, RT_MAX_COORD, &q->o)) != 0 ||
                (rc = get_vec(c, o, path, "edge1", 1, z, -RT_MAX_COORD, RT_MAX_COORD, &q->e1)) != 0 ||
                (rc = get_vec(c, o, path, "edge2", 1, z, -RT_MAX_COORD, RT_MAX_COORD, &q->e2)) != 0 ||
                (rc = get_vec(c, o, path, "emission", 1, z, 0.0, 1e6, &l->intensity)) != 0)
                return rc;
            struct rt_v3 nn = v3_cross(q->e1, q->e2);
            l->area = v3_len(nn);
            if (!(l->area > 1e-12))
                return fail(c, "%s: edge1 and edge2 must span a non-empty rectangle", path);
            q->n = v3_scale(nn, 1.0 / l->area);
            q->light = (int32_t)s->nlights;
            q->mat = s->nmats;
            l->shape = s->nquads++;
        } else {
            struct rt_sphere *sp = &s->spheres[s->nspheres];
            l->kind = RT_LIGHT_SPHERE;
            if ((rc = check_keys(c, o, path, sphere_keys)) != 0 ||
                (rc = get_vec(c, o, path, "center", 1, z, -RT_MAX_COORD, RT_MAX_COORD, &sp->c)) != 0 ||
                (rc = get_pos(c, o, path, "radius", 1, 0, RT_MAX_COORD, &sp->r)) != 0 ||
                (rc = get_vec(c, o, path, "emission", 1, z, 0.0, 1e6, &l->intensity)) != 0)
                return rc;
            sp->light = (int32_t)s->nlights;
            sp->mat = s->nmats;
            l->shape = s->nspheres++;
        }
        if (l->kind != RT_LIGHT_POINT) {
            struct rt_material *m = &s->mats[s->nmats++];
            memset(m, 0, sizeof(*m));
            m->kind = RT_MAT_EMISSIVE;
            m->emission = l->intensity;
        }
        s->nlights++;
    }
    return 0;
}

/* ---- meshes ------------------------------------------------------------------ */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

size_t rt_mesh_blob_size(uint32_t nverts, uint32_t ntris)
{
    return RT_MESH_HEADER + (size_t)12 * nverts + (size_t)12 * ntris;
}

int rt_mesh_blob_encode(const float *verts, uint32_t nverts, const uint32_t *idx, uint32_t ntris,
                        uint8_t *out, size_t out_len)
{
    if (out_len != rt_mesh_blob_size(nverts, ntris))
        return P2C2R_EINVAL;
    memcpy(out, RT_MESH_MAGIC, 8);
    wr32(out + 8, nverts);
    wr32(out + 12, ntris);
    uint8_t *p = out + RT_MESH_HEADER;
    for (size_t i = 0; i < (size_t)nverts * 3; i++, p += 4) {
        uint32_t u;
        memcpy(&u, &verts[i], sizeof(u));
        wr32(p, u);
    }
    for (size_t i = 0; i < (size_t)ntris * 3; i++, p += 4)
        wr32(p, idx[i]);
    return 0;
}

static int blob_fail(char *err, size_t cap, const char *msg)
{
    if (err && cap)
        snprintf(err, cap, "mesh blob: %s", msg);
    return P2C2R_EINVAL;
}

int rt_mesh_blob_check(const uint8_t *data, size_t len, uint32_t *nverts, uint32_t *ntris, char *err,
                       size_t err_cap)
{
    if (len < RT_MESH_HEADER || memcmp(data, RT_MESH_MAGIC, 8) != 0)
        return blob_fail(err, err_cap, "does not start with the magic P2RTMSH1");
    uint32_t nv = rd32(data + 8), nt = rd32(data + 12);
    if (nv == 0 || nv > RT_MAX_VERTICES)
        return blob_fail(err, err_cap, "vertex count is 0 or over the limit");
    if (nt == 0 || nt > RT_MAX_TRIANGLES)
        return blob_fail(err, err_cap, "triangle count is 0 or over the limit");
    if (len != rt_mesh_blob_size(nv, nt))
        return blob_fail(err, err_cap, "size does not match 16 + 12 * vertices + 12 * triangles");
    const uint8_t *p = data + RT_MESH_HEADER;
    for (size_t i = 0; i < (size_t)nv * 3; i++, p += 4) {
        float f = rdf32(p);
        if (!isfinite(f) || fabsf(f) > (float)RT_MAX_COORD)
            return blob_fail(err, err_cap, "a vertex coordinate is not finite or out of range");
    }
    for (size_t i = 0; i < (size_t)nt * 3; i++, p += 4)
        if (rd32(p) >= nv)
            return blob_fail(err, err_cap, "a triangle index is not below the vertex count");
    *nverts = nv;
    *ntris = nt;
    return 0;
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Resolves the mesh's "blob" reference to a validated blob. */
static int find_blob(struct pctx *c, json_t *ref, const char *path, const uint8_t **data, size_t *len)
{
    if (!json_is_string(ref))
        return fail(c, "%s.blob: expected a string of 64 hex digits, got %s", path, type_name(ref));
    const char *h = json_string_value(ref);
    uint8_t hash[32];
    if (strlen(h) != 64)
        return fail(c, "%s.blob: expected 64 lowercase hex digits (a SHA-256)", path);
    for (int i = 0; i < 32; i++) {
        int hi = hexval(h[2 * i]), lo = hexval(h[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return fail(c, "%s.blob: expected 64 lowercase hex digits (a SHA-256)", path);
        hash[i] = (uint8_t)(hi << 4 | lo);
    }
    for (size_t i = 0; i < c->nblobs; i++) {
        if (memcmp(c->blobs[i].hash, hash, 32) == 0 && c->blobs[i].data) {
            *data = c->blobs[i].data;
            *len = c->blobs[i].len;
            return 0;
        }
    }
    return fail(c, "%s.blob: blob %.64s was not sent with the task (list it in the task's blobs)",
                path, h);
}

struct mesh_src {
    json_t *verts, *idx;  /* inline arrays, or NULL */
    const uint8_t *blob;  /* or a validated blob */
    size_t blob_len;
    uint32_t nv, nt;
    double scale;
    struct rt_v3 translate;
    uint32_t mat;
};

/* First pass over one mesh: shape and counts, transform, material. */
static int mesh_measure(struct pctx *c, json_t *o, const char *path, struct mesh_src *m)
{
    static const char *const keys[] = {"vertices", "indices", "blob", "material", "translate", "scale", NULL};
    int rc;
    memset(m, 0, sizeof(*m));
    if ((rc = check_keys(c, o, path, keys)) != 0 ||
        (rc = get_pos(c, o, path, "scale", 0, 1.0, RT_MAX_COORD, &m->scale)) != 0 ||
        (rc = get_vec(c, o, path, "translate", 0, v3(0, 0, 0), -RT_MAX_COORD, RT_MAX_COORD, &m->translate)) != 0)
        return rc;
    json_t *b = json_object_get(o, "blob");
    m->verts = json_object_get(o, "vertices");
    m->idx = json_object_get(o, "indices");
    if (b) {
        if (m->verts || m->idx)
            return fail(c, "%s: give either blob or vertices and indices, not both", path);
        char berr[160];
        if ((rc = find_blob(c, b, path, &m->blob, &m->blob_len)) != 0)
            return rc;
        if (rt_mesh_blob_check(m->blob, m->blob_len, &m->nv, &m->nt, berr, sizeof(berr)) != 0)
            return fail(c, "%s.blob: %s", path, berr);
    } else {
        if (!m->verts || !m->idx)
            return fail(c, "%s: needs vertices and indices (inline arrays) or blob", path);
        if (!json_is_array(m->verts) || json_array_size(m->verts) % 3 || json_array_size(m->verts) == 0)
            return fail(c, "%s.vertices: expected a flat array of x, y, z numbers (a multiple of 3)", path);
        if (!json_is_array(m->idx) || json_array_size(m->idx) % 3 || json_array_size(m->idx) == 0)
            return fail(c, "%s.indices: expected a flat array of vertex indices (a multiple of 3)", path);
        if (json_array_size(m->verts) / 3 > RT_MAX_VERTICES || json_array_size(m->idx) / 3 > RT_MAX_TRIANGLES)
            return fail(c, "%s: over the vertex or triangle limit", path);
        m->nv = (uint32_t)(json_array_size(m->verts) / 3);
        m->nt = (uint32_t)(json_array_size(m->idx) / 3);
    }
    return get_mat(c, o, path, &m->mat);
}

/* Second pass: transforms and stores the vertices and triangles. */
static int mesh_fill(struct pctx *c, const struct mesh_src *m, const char *path)
{
    struct rt_scene *s = c->s;
    uint32_t base = s->nverts;
    for (uint32_t i = 0; i < m->nv; i++) {
        double x[3];
        for (int k = 0; k < 3; k++) {
            if (m->blob) {
                x[k] = rdf32(m->blob + RT_MESH_HEADER + ((size_t)i * 3 + (size_t)k) * 4);
            } else {
                json_t *e = json_array_get(m->verts, (size_t)i * 3 + (size_t)k);
                if (!json_is_number(e))
                    return fail(c, "%s.vertices[%zu]: expected a number, got %s", path,
                                (size_t)i * 3 + (size_t)k, type_name(e));
                x[k] = json_number_value(e);
            }
            double t = k == 0 ? m->translate.x : k == 1 ? m->translate.y : m->translate.z;
            x[k] = x[k] * m->scale + t;
            if (!isfinite(x[k]) || fabs(x[k]) > RT_MAX_COORD)
                return fail(c, "%s: vertex %u is out of range [%g, %g] after scale and translate",
                            path, i, -RT_MAX_COORD, RT_MAX_COORD);
            s->verts[(size_t)s->nverts * 3 + (size_t)k] = (float)x[k];
        }
        s->nverts++;
    }
    const uint8_t *ib = m->blob ? m->blob + RT_MESH_HEADER + (size_t)m->nv * 12 : NULL;
    for (uint32_t i = 0; i < m->nt; i++) {
        for (int k = 0; k < 3; k++) {
            size_t j = (size_t)i * 3 + (size_t)k;
            uint32_t v;
            if (ib) {
                v = rd32(ib + j * 4);
            } else {
                json_t *e = json_array_get(m->idx, j);
                if (!json_is_integer(e))
                    return fail(c, "%s.indices[%zu]: expected an integer, got %s", path, j, type_name(e));
                long long li = json_integer_value(e);
                if (li < 0 || li >= (long long)m->nv)
                    return fail(c, "%s.indices[%zu]: %lld is not a vertex index (0..%u)", path, j, li,
                                m->nv - 1);
                v = (uint32_t)li;
            }
            s->tris[(size_t)s->ntris * 3 + (size_t)k] = base + v;
        }
        s->tri_mat[s->ntris++] = m->mat;
    }
    return 0;
}

static int parse_meshes(struct pctx *c, json_t *arr, size_t n)
{
    struct rt_scene *s = c->s;
    struct mesh_src *src = calloc(n ? n : 1, sizeof(*src));
    if (!src)
        return P2C2R_ENOMEM;
    uint64_t nv = 0, nt = 0;
    int rc = 0;
    char path[48];
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *o;
        if ((rc = get_object_elem(c, arr, i, "meshes", path, sizeof(path), &o)) == 0 &&
            (rc = mesh_measure(c, o, path, &src[i])) == 0) {
            nv += src[i].nv;
            nt += src[i].nt;
        }
    }
    if (rc == 0 && (nv > RT_MAX_VERTICES || nt > RT_MAX_TRIANGLES))
        rc = fail(c, "scene.meshes: %llu vertices and %llu triangles in all, over the limits of %u and %u",
                  (unsigned long long)nv, (unsigned long long)nt, RT_MAX_VERTICES, RT_MAX_TRIANGLES);
    if (rc == 0 && nt > 0) {
        s->verts = malloc((size_t)nv * 3 * sizeof(float));
        s->tris = malloc((size_t)nt * 3 * sizeof(uint32_t));
        s->tri_mat = malloc((size_t)nt * sizeof(uint32_t));
        if (!s->verts || !s->tris || !s->tri_mat)
            rc = P2C2R_ENOMEM;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        snprintf(path, sizeof(path), "meshes[%zu]", i);
        rc = mesh_fill(c, &src[i], path);
    }
    free(src);
    return rc;
}

/* ---- the scene --------------------------------------------------------------- */

static int parse_root(struct pctx *c, json_t *root)
{
    static const char *const keys[] = {"version", "width", "height", "seed", "spp", "max_depth",
                                       "background", "exposure", "clamp", "camera", "materials",
                                       "spheres", "planes", "meshes", "lights", NULL};
    struct rt_scene *s = c->s;
    long long version, w, h, seed, spp, depth;
    int rc;
    if (!json_is_object(root))
        return fail(c, "scene: expected a JSON object, got %s", type_name(root));
    if ((rc = check_keys(c, root, "scene", keys)) != 0 ||
        (rc = get_int(c, root, "scene", "version", 0, 1, 1, 1, &version)) != 0 ||
        (rc = get_int(c, root, "scene", "width", 1, 0, 1, RT_MAX_DIM, &w)) != 0 ||
        (rc = get_int(c, root, "scene", "height", 1, 0, 1, RT_MAX_DIM, &h)) != 0 ||
        (rc = get_int(c, root, "scene", "seed", 0, 0, 0, INT64_MAX, &seed)) != 0 ||
        (rc = get_int(c, root, "scene", "spp", 0, 1, 1, RT_MAX_SPP, &spp)) != 0 ||
        (rc = get_int(c, root, "scene", "max_depth", 0, 8, 1, RT_MAX_DEPTH, &depth)) != 0 ||
        (rc = get_vec(c, root, "scene", "background", 0, v3(0, 0, 0), 0.0, 1e6, &s->background)) != 0 ||
        (rc = get_pos(c, root, "scene", "exposure", 0, 1.0, 1e6, &s->exposure)) != 0 ||
        (rc = get_num(c, root, "scene", "clamp", 0, 0.0, 0.0, 1e9, &s->clamp)) != 0)
        return rc;
    s->width = (uint32_t)w;
    s->height = (uint32_t)h;
    s->seed = (uint64_t)seed;
    s->spp = (uint32_t)spp;
    s->max_depth = (uint32_t)depth;
    if ((rc = parse_camera(c, root)) != 0)
        return rc;

    json_t *spheres, *planes, *meshes, *lights, *mats = json_object_get(root, "materials");
    size_t nsph, npl, nmesh, nlight, nlsph, nlquad;
    if ((rc = get_array(c, root, "spheres", RT_MAX_SPHERES, &spheres, &nsph)) != 0 ||
        (rc = get_array(c, root, "planes", RT_MAX_PLANES, &planes, &npl)) != 0 ||
        (rc = get_array(c, root, "meshes", RT_MAX_MESHES, &meshes, &nmesh)) != 0 ||
        (rc = get_array(c, root, "lights", RT_MAX_LIGHTS, &lights, &nlight)) != 0 ||
        (rc = count_area_lights(c, lights, nlight, &nlsph, &nlquad)) != 0)
        return rc;
    size_t nnamed = json_is_object(mats) ? json_object_size(mats) : 0;
    if (nnamed > RT_MAX_MATERIALS)
        return fail(c, "scene.materials: %zu materials, over the limit of %u", nnamed, RT_MAX_MATERIALS);
    /* Room for every named material, one inline material per object and
     * one emissive material per area light: nothing grows later. */
    size_t nmats = nnamed + nsph + npl + nmesh + nlight;
    s->mats = calloc(nmats ? nmats : 1, sizeof(*s->mats));
    s->spheres = calloc(nsph + nlsph ? nsph + nlsph : 1, sizeof(*s->spheres));
    s->quads = calloc(nlquad ? nlquad : 1, sizeof(*s->quads));
    s->planes = calloc(npl ? npl : 1, sizeof(*s->planes));
    s->lights = calloc(nlight ? nlight : 1, sizeof(*s->lights));
    c->names = json_object();
    if (!s->mats || !s->spheres || !s->quads || !s->planes || !s->lights || !c->names)
        return P2C2R_ENOMEM;
    if ((rc = parse_named_materials(c, root)) != 0)
        return rc;
    s->nnamed = s->nmats;
    if ((rc = parse_spheres(c, spheres, nsph)) != 0 || (rc = parse_lights(c, lights, nlight)) != 0 ||
        (rc = parse_planes(c, planes, npl)) != 0 || (rc = parse_meshes(c, meshes, nmesh)) != 0)
        return rc;
    s->nprims = s->nspheres + s->nquads + s->ntris;
    for (uint32_t i = 0; i < s->nlights; i++) {
        struct rt_light *l = &s->lights[i];
        l->prim = l->kind == RT_LIGHT_SPHERE ? l->shape
                : l->kind == RT_LIGHT_RECT   ? s->nspheres + l->shape
                                             : UINT32_MAX;
    }
    return rt_bvh_build(s);
}

int rt_scene_parse(const char *json, size_t len, const struct p2c2r_blob *blobs, size_t nblobs,
                   struct rt_scene **out, char *err, size_t err_cap)
{
    struct pctx c = {err, err_cap, blobs, nblobs, NULL, NULL};
    if (err && err_cap)
        err[0] = '\0';
    c.s = calloc(1, sizeof(*c.s));
    if (!c.s)
        return P2C2R_ENOMEM;
    json_error_t jerr;
    json_t *root = json ? json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
    int rc;
    if (!root)
        rc = json ? fail(&c, "scene JSON: %s (line %d, column %d)", jerr.text, jerr.line, jerr.column)
                  : fail(&c, "scene JSON: no input");
    else
        rc = parse_root(&c, root);
    if (rc == P2C2R_ENOMEM && err && err_cap)
        snprintf(err, err_cap, "out of memory decoding the scene");
    json_decref(root);
    json_decref(c.names);
    if (rc != 0) {
        rt_scene_free(c.s);
        return rc;
    }
    *out = c.s;
    return 0;
}

void rt_scene_free(struct rt_scene *s)
{
    if (!s)
        return;
    rt_bvh_fini(&s->bvh);
    free(s->mats);
    free(s->spheres);
    free(s->quads);
    free(s->planes);
    free(s->verts);
    free(s->tris);
    free(s->tri_mat);
    free(s->lights);
    free(s);
}

size_t rt_scene_bytes(const struct rt_scene *s)
{
    return sizeof(*s) + (size_t)s->nmats * sizeof(*s->mats) +
           (size_t)s->nspheres * sizeof(*s->spheres) + (size_t)s->nquads * sizeof(*s->quads) +
           (size_t)s->nplanes * sizeof(*s->planes) + (size_t)s->nverts * 3 * sizeof(float) +
           (size_t)s->ntris * 4 * sizeof(uint32_t) + (size_t)s->nlights * sizeof(*s->lights) +
           (size_t)s->bvh.nnodes * sizeof(struct rt_bvh_node) +
           (size_t)s->nprims * sizeof(uint32_t);
}

void rt_scene_get_info(const struct rt_scene *s, struct rt_scene_info *info)
{
    memset(info, 0, sizeof(*info));
    info->width = s->width;
    info->height = s->height;
    info->spp = s->spp;
    info->max_depth = s->max_depth;
    info->seed = s->seed;
    info->nspheres = s->nspheres;
    info->nplanes = s->nplanes;
    info->ntriangles = s->ntris;
    info->nlights = s->nlights;
    info->nmaterials = s->nmats;
    info->nprims = s->nprims;
    info->bvh_nodes = s->bvh.nnodes;
    info->bvh_depth = s->bvh.depth;
}
