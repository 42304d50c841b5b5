/* physics.c - the `physics` executor: decodes a JSON scene (jansson),
 * simulates it with physics_world.c, and encodes the final state as JSON.
 * The formats are specified in docs/tasks/physics.md.
 *
 * Invariants: the decoder checks the type and range of every field and
 * rejects unknown or duplicate fields, so whatever reaches the simulation is
 * finite and within the documented limits; a bad scene is P2C2R_EINVAL with
 * a reason naming the field, never a crash.  The encoder prints numbers with
 * "%.17g" (round-trip exact) and forces '.' as the decimal point, so the
 * output does not depend on the process locale; together with the
 * simulation's determinism the output bytes are a pure function of the
 * input and params.  No globals: every call is reentrant. */
#include "tasks/physics.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task_cost.h"
#include "tasks/tasks.h"


/* Reasons quote parts of the input (a field name, a param value, the JSON
 * reader's "near '...'"): keep them one printable line. */
static void err_printable(char *err, size_t cap)
{
    if (!err || !cap)
        return;
    for (size_t i = 0; i < cap && err[i]; i++)
        if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] == 0x7f)
            err[i] = '?';
}

/* ---- decoding ---------------------------------------------------------------- */

/* Where a field lives, for error messages: "bodies[3]" or "scene". */
struct ctx {
    char where[48];
    char *err;
    size_t err_cap;
};

static int bad(struct ctx *c, const char *key, const char *what)
{
    tasks_errf(c->err, c->err_cap, "%s.%s: %s", c->where, key, what);
    return P2C2R_EINVAL;
}

/* Rejects keys of obj not in allowed (NULL-terminated).  hint is added to
 * the message when the stray key is the other shape's size field. */
static int only_keys(struct ctx *c, json_t *obj, const char *const *allowed, const char *hint)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            int size_key = strcmp(key, "radius") == 0 || strcmp(key, "half_extents") == 0;
            tasks_errf(c->err, c->err_cap, "%s: unknown field '%.40s'%s", c->where, key,
                    hint && size_key ? hint : "");
            return P2C2R_EINVAL;
        }
    }
    return 0;
}

/* A number field.  Missing: *out = def when optional, else an error. */
static int get_num(struct ctx *c, json_t *obj, const char *key, int required, double def, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return bad(c, key, "missing (a number is required)");
        *out = def;
        return 0;
    }
    if (!json_is_number(v))
        return bad(c, key, "must be a number");
    *out = json_number_value(v);
    return 0;
}

/* An array of n numbers. */
static int get_nums(struct ctx *c, json_t *obj, const char *key, int required, size_t n, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required) {
            char msg[64];
            snprintf(msg, sizeof(msg), "missing (an array of %zu numbers is required)", n);
            return bad(c, key, msg);
        }
        return 0;
    }
    if (!json_is_array(v) || json_array_size(v) != n) {
        char msg[64];
        snprintf(msg, sizeof(msg), "must be an array of %zu numbers", n);
        return bad(c, key, msg);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_number(e)) {
            char msg[64];
            snprintf(msg, sizeof(msg), "must be an array of %zu numbers", n);
            return bad(c, key, msg);
        }
        out[i] = json_number_value(e);
    }
    return 0;
}

static int get_vec(struct ctx *c, json_t *obj, const char *key, int required, struct phys_vec3 *out)
{
    double v[3] = {out->x, out->y, out->z};
    int rc = get_nums(c, obj, key, required, 3, v);
    if (rc == 0)
        *out = v3(v[0], v[1], v[2]);
    return rc;
}

/* An integer field in [lo, hi]. */
static int get_int(struct ctx *c, json_t *obj, const char *key, int required, json_int_t def,
                   json_int_t lo, json_int_t hi, json_int_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return bad(c, key, "missing (an integer is required)");
        *out = def;
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
        char msg[96];
        snprintf(msg, sizeof(msg), "must be an integer from %lld to %lld", (long long)lo, (long long)hi);
        return bad(c, key, msg);
    }
    *out = json_integer_value(v);
    return 0;
}

static const char *const body_keys_sphere[] = {"id", "shape", "mass", "radius", "position",
                                               "orientation", "velocity", "angular_velocity",
                                               "restitution", "friction", NULL};
static const char *const body_keys_box[] = {"id", "shape", "mass", "half_extents", "position",
                                            "orientation", "velocity", "angular_velocity",
                                            "restitution", "friction", NULL};
static const char *const plane_keys[] = {"id", "normal", "offset", "restitution", "friction", NULL};
static const char *const scene_keys[] = {"gravity", "dt", "steps", "iterations", "bodies", "planes", NULL};

static int parse_body(struct ctx *c, json_t *o, struct phys_body *b)
{
    if (!json_is_object(o)) {
        tasks_errf(c->err, c->err_cap, "%s: must be an object", c->where);
        return P2C2R_EINVAL;
    }
    json_int_t id;
    int rc = get_int(c, o, "id", 1, 0, 0, PHYS_MAX_ID, &id);
    if (rc)
        return rc;
    json_t *sh = json_object_get(o, "shape");
    if (!sh)
        return bad(c, "shape", "missing (\"sphere\" or \"box\" is required)");
    const char *s = json_is_string(sh) ? json_string_value(sh) : "";
    memset(b, 0, sizeof(*b));
    b->id = id;
    if (strcmp(s, "sphere") == 0)
        b->shape = PHYS_SPHERE;
    else if (strcmp(s, "box") == 0)
        b->shape = PHYS_BOX;
    else
        return bad(c, "shape", "must be \"sphere\" or \"box\"");
    int sphere = b->shape == PHYS_SPHERE;
    rc = only_keys(c, o, sphere ? body_keys_sphere : body_keys_box,
                   sphere ? " (a sphere has radius, not half_extents)" : " (a box has half_extents, not radius)");
    if (rc)
        return rc;
    if ((rc = get_num(c, o, "mass", 1, 0.0, &b->mass)) != 0)
        return rc;
    if (sphere) {
        if ((rc = get_num(c, o, "radius", 1, 0.0, &b->size.x)) != 0)
            return rc;
        b->size.y = b->size.z = b->size.x;
    } else if ((rc = get_vec(c, o, "half_extents", 1, &b->size)) != 0) {
        return rc;
    }
    if ((rc = get_vec(c, o, "position", 1, &b->position)) != 0)
        return rc;
    double q[4] = {1.0, 0.0, 0.0, 0.0};
    if ((rc = get_nums(c, o, "orientation", 0, 4, q)) != 0)
        return rc;
    b->orientation = (struct phys_quat){q[0], q[1], q[2], q[3]};
    if ((rc = get_vec(c, o, "velocity", 0, &b->velocity)) != 0 ||
        (rc = get_vec(c, o, "angular_velocity", 0, &b->angular_velocity)) != 0 ||
        (rc = get_num(c, o, "restitution", 0, PHYS_DEFAULT_RESTITUTION, &b->restitution)) != 0 ||
        (rc = get_num(c, o, "friction", 0, PHYS_DEFAULT_FRICTION, &b->friction)) != 0)
        return rc;
    char why[160];
    if (phys_body_check(b, why, sizeof(why)) != 0) {
        tasks_errf(c->err, c->err_cap, "%s (id %lld): %s", c->where, (long long)b->id, why);
        return P2C2R_EINVAL;
    }
    return 0;
}

static int parse_plane(struct ctx *c, json_t *o, struct phys_plane *p)
{
    if (!json_is_object(o)) {
        tasks_errf(c->err, c->err_cap, "%s: must be an object", c->where);
        return P2C2R_EINVAL;
    }
    int rc = only_keys(c, o, plane_keys, NULL);
    if (rc)
        return rc;
    json_int_t id;
    memset(p, 0, sizeof(*p));
    if ((rc = get_int(c, o, "id", 1, 0, 0, PHYS_MAX_ID, &id)) != 0 ||
        (rc = get_vec(c, o, "normal", 1, &p->normal)) != 0 ||
        (rc = get_num(c, o, "offset", 0, 0.0, &p->offset)) != 0 ||
        (rc = get_num(c, o, "restitution", 0, PHYS_DEFAULT_RESTITUTION, &p->restitution)) != 0 ||
        (rc = get_num(c, o, "friction", 0, PHYS_DEFAULT_FRICTION, &p->friction)) != 0)
        return rc;
    p->id = id;
    char why[160];
    if (phys_plane_check(p, why, sizeof(why)) != 0) {
        tasks_errf(c->err, c->err_cap, "%s (id %lld): %s", c->where, (long long)p->id, why);
        return P2C2R_EINVAL;
    }
    return 0;
}

/* Returns the array under key (NULL when absent) or an error. */
static int get_array(struct ctx *c, json_t *root, const char *key, size_t max, json_t **out)
{
    json_t *a = json_object_get(root, key);
    *out = NULL;
    if (!a)
        return 0;
    if (!json_is_array(a))
        return bad(c, key, "must be an array");
    if (json_array_size(a) > max) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%zu entries, at most %zu allowed", json_array_size(a), max);
        return bad(c, key, msg);
    }
    *out = a;
    return 0;
}

int phys_scene_parse(const void *json, size_t len, struct phys_scene *out, char *err, size_t err_cap)
{
    if (len > PHYS_MAX_INPUT) {
        tasks_errf(err, err_cap, "scene is %zu bytes, at most %u allowed", len, PHYS_MAX_INPUT);
        return P2C2R_ETOOBIG;
    }
    json_error_t je;
    json_t *root = json_loadb(json ? json : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        tasks_errf(err, err_cap, "scene is not valid JSON: %s (line %d, column %d)", je.text, je.line,
                je.column);
        err_printable(err, err_cap);
        return P2C2R_EINVAL;
    }
    struct ctx c = {"scene", err, err_cap};
    struct phys_scene s;
    memset(&s, 0, sizeof(s));
    phys_config_init(&s.cfg);
    int rc;
    json_t *bodies = NULL, *planes = NULL;
    json_int_t steps, iters;
    if (!json_is_object(root)) {
        tasks_errf(err, err_cap, "scene must be a JSON object");
        rc = P2C2R_EINVAL;
        goto fail;
    }
    if ((rc = only_keys(&c, root, scene_keys, NULL)) != 0 ||
        (rc = get_vec(&c, root, "gravity", 0, &s.cfg.gravity)) != 0 ||
        (rc = get_num(&c, root, "dt", 0, PHYS_DEFAULT_DT, &s.cfg.dt)) != 0 ||
        (rc = get_int(&c, root, "steps", 0, PHYS_DEFAULT_STEPS, 0, PHYS_MAX_STEPS, &steps)) != 0 ||
        (rc = get_int(&c, root, "iterations", 0, PHYS_DEFAULT_ITERATIONS, 1, PHYS_MAX_ITERATIONS, &iters)) != 0)
        goto fail;
    s.cfg.steps = (uint32_t)steps;
    s.cfg.iterations = (uint32_t)iters;
    if (!json_object_get(root, "bodies")) {
        rc = bad(&c, "bodies", "missing (an array of bodies is required, it may be empty)");
        goto fail;
    }
    if ((rc = get_array(&c, root, "bodies", PHYS_MAX_BODIES, &bodies)) != 0 ||
        (rc = get_array(&c, root, "planes", PHYS_MAX_PLANES, &planes)) != 0)
        goto fail;
    s.nbodies = json_array_size(bodies);
    s.nplanes = planes ? json_array_size(planes) : 0;
    s.bodies = calloc(s.nbodies ? s.nbodies : 1, sizeof(*s.bodies));
    s.planes = calloc(s.nplanes ? s.nplanes : 1, sizeof(*s.planes));
    if (!s.bodies || !s.planes) {
        tasks_errf(err, err_cap, "out of memory for %zu bodies", s.nbodies);
        rc = P2C2R_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < s.nbodies; i++) {
        snprintf(c.where, sizeof(c.where), "bodies[%zu]", i);
        if ((rc = parse_body(&c, json_array_get(bodies, i), &s.bodies[i])) != 0)
            goto fail;
    }
    for (size_t i = 0; i < s.nplanes; i++) {
        snprintf(c.where, sizeof(c.where), "planes[%zu]", i);
        if ((rc = parse_plane(&c, json_array_get(planes, i), &s.planes[i])) != 0)
            goto fail;
    }
    /* The config's own limits (and steps x bodies) are checked once params
     * have had their say: see phys_run_json. */
    char why[160];
    if (phys_config_check(&s.cfg, 0, why, sizeof(why)) != 0) {
        tasks_errf(err, err_cap, "scene: %s", why);
        rc = P2C2R_EINVAL;
        goto fail;
    }
    json_decref(root);
    *out = s;
    return 0;

fail:
    phys_scene_fini(&s);
    json_decref(root);
    err_printable(err, err_cap);
    return rc;
}

void phys_scene_fini(struct phys_scene *s)
{
    free(s->bodies);
    free(s->planes);
    s->bodies = NULL;
    s->planes = NULL;
    s->nbodies = s->nplanes = 0;
}

int phys_params_apply(const char *params, size_t params_len, struct phys_config *cfg, char *err,
                      size_t err_cap)
{
    struct phys_config c = *cfg;
    const char *v;
    size_t vl;
    if (p2c2r_param_get(params, params_len, "steps", &v, &vl)) {
        uint64_t n = 0;
        int ok = vl > 0 && vl <= 6;
        for (size_t i = 0; ok && i < vl; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            n = n * 10 + (uint64_t)(v[i] - '0');
        }
        if (!ok || n > PHYS_MAX_STEPS) {
            tasks_errf(err, err_cap, "param steps must be an integer from 0 to %d, got '%.*s'", PHYS_MAX_STEPS,
                    (int)(vl > 32 ? 32 : vl), v);
            err_printable(err, err_cap);
            return P2C2R_EINVAL;
        }
        c.steps = (uint32_t)n;
    }
    if (p2c2r_param_get(params, params_len, "dt", &v, &vl)) {
        /* Digits and the number's punctuation only, read by jansson, whose
         * number grammar is strict (no "nan", "inf", hex) and independent
         * of the locale. */
        int plain = vl > 0 && vl <= 64;
        for (size_t i = 0; plain && i < vl; i++)
            plain = (v[i] >= '0' && v[i] <= '9') || v[i] == '.' || v[i] == 'e' || v[i] == 'E' ||
                    v[i] == '+' || v[i] == '-';
        json_error_t je;
        json_t *num = plain ? json_loadb(v, vl, JSON_DECODE_ANY, &je) : NULL;
        double dt = num && json_is_number(num) ? json_number_value(num) : -1.0;
        json_decref(num);
        if (!(isfinite(dt) && dt > 0.0 && dt <= PHYS_MAX_DT)) {
            tasks_errf(err, err_cap, "param dt must be a number in (0, %g], got '%.*s'", PHYS_MAX_DT,
                    (int)(vl > 32 ? 32 : vl), v);
            err_printable(err, err_cap);
            return P2C2R_EINVAL;
        }
        c.dt = dt;
    }
    *cfg = c;
    return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

struct out {
    char *p;
    size_t len, cap;
    int oom;
};

static void out_raw(struct out *o, const char *s, size_t n)
{
    if (o->oom)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t nc = o->cap ? o->cap : 4096;
        while (nc < o->len + n + 1)
            nc *= 2;
        char *np = realloc(o->p, nc);
        if (!np) {
            o->oom = 1;
            return;
        }
        o->p = np;
        o->cap = nc;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void out_str(struct out *o, const char *s)
{
    out_raw(o, s, strlen(s));
}

static void out_int(struct out *o, long long v)
{
    char b[32];
    int n = snprintf(b, sizeof(b), "%lld", v);
    out_raw(o, b, (size_t)n);
}

/* A finite double, shortest form that reads back exactly is not needed:
 * 17 significant digits always do.  A locale may have put ',' for the
 * decimal point; JSON wants '.'. */
static void out_num(struct out *o, double v)
{
    char b[40];
    int n = snprintf(b, sizeof(b), "%.17g", v);
    for (int i = 0; i < n; i++)
        if (b[i] == ',')
            b[i] = '.';
    out_raw(o, b, (size_t)n);
}

static void out_vec(struct out *o, const char *key, struct phys_vec3 v)
{
    out_str(o, key);
    out_raw(o, "[", 1);
    out_num(o, v.x);
    out_raw(o, ",", 1);
    out_num(o, v.y);
    out_raw(o, ",", 1);
    out_num(o, v.z);
    out_raw(o, "]", 1);
}

int phys_world_to_json(struct phys_world *w, char **out, size_t *len)
{
    struct out o = {NULL, 0, 0, 0};
    size_t nb, nc;
    const struct phys_body *b = phys_world_bodies(w, &nb);
    const struct phys_contact *ct;
    if (phys_world_contacts(w, &ct, &nc) != 0)
        return P2C2R_ENOMEM;
    out_str(&o, "{\"steps\":");
    out_int(&o, (long long)phys_world_steps_done(w));
    out_str(&o, ",\"dt\":");
    out_num(&o, phys_world_config(w)->dt);
    out_str(&o, ",\"bodies\":[");
    for (size_t i = 0; i < nb; i++) {
        const struct phys_body *p = &b[i];
        out_str(&o, i ? ",{\"id\":" : "{\"id\":");
        out_int(&o, (long long)p->id);
        out_vec(&o, ",\"position\":", p->position);
        out_str(&o, ",\"orientation\":[");
        out_num(&o, p->orientation.w);
        out_raw(&o, ",", 1);
        out_num(&o, p->orientation.x);
        out_raw(&o, ",", 1);
        out_num(&o, p->orientation.y);
        out_raw(&o, ",", 1);
        out_num(&o, p->orientation.z);
        out_raw(&o, "]", 1);
        out_vec(&o, ",\"velocity\":", p->velocity);
        out_vec(&o, ",\"angular_velocity\":", p->angular_velocity);
        out_raw(&o, "}", 1);
    }
    out_str(&o, "],\"contacts\":[");
    for (size_t i = 0; i < nc; i++) {
        out_str(&o, i ? ",{\"a\":" : "{\"a\":");
        out_int(&o, (long long)ct[i].a);
        out_str(&o, ",\"b\":");
        out_int(&o, (long long)ct[i].b);
        out_str(&o, ",\"points\":");
        out_int(&o, (long long)ct[i].points);
        out_str(&o, ",\"depth\":");
        out_num(&o, ct[i].depth);
        out_raw(&o, "}", 1);
    }
    out_str(&o, "]}\n");
    if (o.oom) {
        free(o.p);
        return P2C2R_ENOMEM;
    }
    *out = o.p;
    *len = o.len;
    return 0;
}

/* ---- the task -------------------------------------------------------------------- */

int phys_run_json(const void *input, size_t input_len, const char *params, size_t params_len,
                  char **out, size_t *out_len, char *err, size_t err_cap)
{
    return phys_run_json_cancel(input, input_len, params, params_len, NULL, out, out_len, err,
                                err_cap);
}

int phys_run_json_cancel(const void *input, size_t input_len, const char *params,
                         size_t params_len, const int *cancel, char **out, size_t *out_len,
                         char *err, size_t err_cap)
{
    struct phys_scene s;
    struct phys_world *w = NULL;
    int rc = phys_scene_parse(input, input_len, &s, err, err_cap);
    if (rc)
        return rc;
    if ((rc = phys_params_apply(params, params_len, &s.cfg, err, err_cap)) != 0)
        goto done;
    if ((rc = phys_world_new(&s.cfg, s.bodies, s.nbodies, s.planes, s.nplanes, &w, err, err_cap)) != 0)
        goto done;
    phys_world_set_cancel(w, cancel);
    if ((rc = phys_world_run(w, err, err_cap)) != 0)
        goto done;
    rc = phys_world_to_json(w, out, out_len);
    if (rc)
        tasks_errf(err, err_cap, "out of memory encoding the result");
done:
    phys_world_free(w);
    phys_scene_fini(&s);
    return rc;
}

static int physics_check(const struct p2c2r_exec_call *call)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    return phys_params_apply(call->params, call->params_len, &cfg, call->err, call->err_cap);
}

static int physics_run(struct p2c2r_exec_call *call)
{
    char *res = NULL;
    size_t n = 0;
    int rc = phys_run_json_cancel(call->input, call->input_len, call->params, call->params_len,
                                  call->cancel, &res, &n, call->err, call->err_cap);
    if (rc)
        return rc;
    void *dst = call->alloc_output(call, n);
    if (!dst) {
        free(res);
        tasks_errf(call->err, call->err_cap, "result of %zu bytes is over the output limit (fewer bodies?)", n);
        return P2C2R_ETOOBIG;
    }
    memcpy(dst, res, n);
    free(res);
    return 0;
}

/* (1 + bodies) * (1 + steps * (4 + iterations)): each step integrates and
 * collides every body (the 4) and runs the solver's iterations over the
 * contacts, about one per body.  Bodies are counted as the "shape" keys of
 * the scene text (every body has one, planes none); steps come from the
 * params, else the scene's "steps", else 60; iterations from the scene's
 * "iterations", else 20.  All clamped to the executor's limits. */
static uint64_t physics_estimate(const struct p2c2r_exec_call *call)
{
    const char *js = (const char *)call->input;
    uint64_t bodies = js ? cost_count(js, call->input_len, "\"shape\"") : call->input_len / 100;
    uint32_t ss = PHYS_DEFAULT_STEPS, it = PHYS_DEFAULT_ITERATIONS;
    if (!cost_peek_uint(js, call->input_len, "\"steps\"", &ss) || ss > PHYS_MAX_STEPS)
        ss = ss > PHYS_MAX_STEPS ? PHYS_MAX_STEPS : PHYS_DEFAULT_STEPS;
    if (!cost_peek_uint(js, call->input_len, "\"iterations\"", &it) || it < 1 ||
        it > PHYS_MAX_ITERATIONS)
        it = it > PHYS_MAX_ITERATIONS ? PHYS_MAX_ITERATIONS : PHYS_DEFAULT_ITERATIONS;
    uint64_t steps = cost_param(call, "steps", ss, PHYS_MAX_STEPS);
    if (bodies > PHYS_MAX_BODIES)
        bodies = PHYS_MAX_BODIES;
    return cost_clamp(cost_mul(1 + bodies, 1 + steps * (4 + (uint64_t)it)));
}

const struct p2c2r_executor exec_physics = {
    "physics", 1, P2C2R_EXEC_DETERMINISTIC, PHYS_MAX_INPUT, physics_check, physics_run,
    physics_estimate,
};
