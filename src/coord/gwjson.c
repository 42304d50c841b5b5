/* gwjson.c - the gateway's JSON messages (see gwjson.h): one decoder per
 * message kind, chosen from a table by msg_type, each checking every field
 * it reads (type, range, length) so the gateway only ever builds frames from
 * values the binary protocol can carry. */
#include "coord/gwjson.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/util.h"
#include "common/ws.h"
#include "p2c2r/error.h"

static int bad(char *err, size_t cap, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int bad(char *err, size_t cap, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (cap)
        vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return code;
}

#define BAD(...) bad(err, errcap, P2C2R_EINVAL, __VA_ARGS__)

/* ---- values: one view over both parsers ------------------------------------
 * The decoders read fields through struct jv, so the same checks apply
 * whether the document came from the fast parser below (flat objects, the
 * common messages) or from jansson (everything else). */

enum jv_type { JV_NONE, JV_NULL, JV_BOOL, JV_INT, JV_REAL, JV_STR, JV_OBJ, JV_ARR };

#define FAST_PAIRS 16 /* members of one object the fast parser takes */

struct fobj;

struct jv {
    uint8_t t, b;       /* type; JV_BOOL's value */
    long long i;        /* JV_INT */
    double d;           /* JV_INT, JV_REAL: the number */
    const char *s;      /* JV_STR */
    size_t len;
    json_t *j;          /* JV_OBJ, JV_ARR from jansson */
    const struct fobj *f; /* JV_OBJ from the fast parser */
};

struct fkv {
    const char *k;
    size_t kl;
    struct jv v;
};

struct fobj {
    uint32_t n;
    struct fkv kv[FAST_PAIRS];
};

static struct jv jv_of(json_t *v)
{
    struct jv r;
    memset(&r, 0, sizeof(r));
    if (!v)
        return r;
    switch (json_typeof(v)) {
    case JSON_NULL: r.t = JV_NULL; break;
    case JSON_TRUE: r.t = JV_BOOL, r.b = 1; break;
    case JSON_FALSE: r.t = JV_BOOL; break;
    case JSON_INTEGER: r.t = JV_INT, r.i = json_integer_value(v), r.d = (double)r.i; break;
    case JSON_REAL: r.t = JV_REAL, r.d = json_real_value(v); break;
    case JSON_STRING: r.t = JV_STR, r.s = json_string_value(v), r.len = json_string_length(v); break;
    case JSON_OBJECT: r.t = JV_OBJ, r.j = v; break;
    case JSON_ARRAY: r.t = JV_ARR, r.j = v; break;
    }
    return r;
}

/* Member key of object o (JV_NONE when absent or o is not an object). */
static struct jv jv_get(const struct jv *o, const char *key)
{
    struct jv none;
    memset(&none, 0, sizeof(none));
    if (o->t != JV_OBJ)
        return none;
    if (!o->f)
        return jv_of(json_object_get(o->j, key));
    size_t kl = strlen(key);
    for (uint32_t k = 0; k < o->f->n; k++)
        if (o->f->kv[k].kl == kl && memcmp(o->f->kv[k].k, key, kl) == 0)
            return o->f->kv[k].v;
    return none;
}

/* Iterates o's members in document order: 1 with *key (NUL-terminated for
 * jansson; kl bytes in any case) and *val, 0 at the end. */
struct jv_iter {
    void *ji;
    uint32_t k;
};

static int jv_next(const struct jv *o, struct jv_iter *it, const char **key, size_t *kl, struct jv *val)
{
    if (o->f) {
        if (it->k >= o->f->n)
            return 0;
        *key = o->f->kv[it->k].k;
        *kl = o->f->kv[it->k].kl;
        *val = o->f->kv[it->k].v;
        it->k++;
        return 1;
    }
    it->ji = it->k++ ? json_object_iter_next(o->j, it->ji) : json_object_iter(o->j);
    if (!it->ji)
        return 0;
    *key = json_object_iter_key(it->ji);
    *kl = strlen(*key);
    *val = jv_of(json_object_iter_value(it->ji));
    return 1;
}

static int absent(const struct jv *v) { return v->t == JV_NONE || v->t == JV_NULL; }

/* ---- the fast parser ----------------------------------------------------------
 * Takes the shape of nearly every message: one object whose values are
 * strings of printable ASCII without escapes, non-negative numbers without
 * exponent, true, false, null, and at most one nested object of such
 * values (params, capabilities).  Anything else (escapes, other bytes,
 * arrays, deeper nesting, more than FAST_PAIRS members, a repeated key,
 * trailing bytes) is left to jansson, which also decides every error, so
 * both accept and refuse exactly the same texts (fuzz_gwjson checks it). */

struct fast {
    const char *p, *end;
    struct fobj obj[2];
    int nobj;
};

static void fast_ws(struct fast *f)
{
    while (f->p < f->end && (*f->p == ' ' || *f->p == '\t' || *f->p == '\n' || *f->p == '\r'))
        f->p++;
}

static int fast_str(struct fast *f, const char **s, size_t *len)
{
    if (f->p >= f->end || *f->p != '"')
        return 0;
    const char *b = ++f->p;
    while (f->p < f->end && *f->p != '"') {
        unsigned char ch = (unsigned char)*f->p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return 0;
        f->p++;
    }
    if (f->p >= f->end)
        return 0;
    *s = b;
    *len = (size_t)(f->p - b);
    f->p++;
    return 1;
}

static int fast_lit(struct fast *f, const char *lit, size_t n)
{
    if ((size_t)(f->end - f->p) < n || memcmp(f->p, lit, n) != 0)
        return 0;
    f->p += n;
    return 1;
}

static int fast_num(struct fast *f, struct jv *v)
{
    const char *b = f->p;
    while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
        f->p++;
    size_t digits = (size_t)(f->p - b);
    if (digits == 0 || digits > 15 || (digits > 1 && b[0] == '0'))
        return 0;
    int real = 0;
    if (f->p < f->end && *f->p == '.') {
        const char *fb = ++f->p;
        while (f->p < f->end && *f->p >= '0' && *f->p <= '9')
            f->p++;
        if (f->p == fb || f->p - fb > 15)
            return 0;
        real = 1;
    }
    if (f->p < f->end && (*f->p == 'e' || *f->p == 'E'))
        return 0;
    char tmp[40];
    size_t n = (size_t)(f->p - b);
    memcpy(tmp, b, n);
    tmp[n] = '\0';
    if (real) {
        v->t = JV_REAL;
        v->d = strtod(tmp, NULL);
    } else {
        v->t = JV_INT;
        v->i = strtoll(tmp, NULL, 10);
        v->d = (double)v->i;
    }
    return 1;
}

static int fast_obj(struct fast *f, int depth, struct jv *out);

static int fast_value(struct fast *f, int depth, struct jv *v)
{
    memset(v, 0, sizeof(*v));
    if (f->p >= f->end)
        return 0;
    switch (*f->p) {
    case '"':
        v->t = JV_STR;
        return fast_str(f, &v->s, &v->len);
    case 't':
        v->t = JV_BOOL, v->b = 1;
        return fast_lit(f, "true", 4);
    case 'f':
        v->t = JV_BOOL;
        return fast_lit(f, "false", 5);
    case 'n':
        v->t = JV_NULL;
        return fast_lit(f, "null", 4);
    case '{':
        return depth == 0 && fast_obj(f, depth + 1, v);
    default:
        return fast_num(f, v);
    }
}

static int fast_obj(struct fast *f, int depth, struct jv *out)
{
    if (f->p >= f->end || *f->p != '{' || f->nobj >= 2)
        return 0;
    struct fobj *o = &f->obj[f->nobj++];
    o->n = 0;
    f->p++;
    fast_ws(f);
    if (f->p < f->end && *f->p == '}') {
        f->p++;
    } else {
        for (;;) {
            if (o->n >= FAST_PAIRS)
                return 0;
            struct fkv *kv = &o->kv[o->n];
            if (!fast_str(f, &kv->k, &kv->kl))
                return 0;
            for (uint32_t k = 0; k < o->n; k++)
                if (o->kv[k].kl == kv->kl && memcmp(o->kv[k].k, kv->k, kv->kl) == 0)
                    return 0; /* jansson says why */
            fast_ws(f);
            if (f->p >= f->end || *f->p != ':')
                return 0;
            f->p++;
            fast_ws(f);
            if (!fast_value(f, depth, &kv->v))
                return 0;
            o->n++;
            fast_ws(f);
            if (f->p < f->end && *f->p == ',') {
                f->p++;
                fast_ws(f);
                continue;
            }
            if (f->p < f->end && *f->p == '}') {
                f->p++;
                break;
            }
            return 0;
        }
    }
    memset(out, 0, sizeof(*out));
    out->t = JV_OBJ;
    out->f = o;
    return 1;
}

/* ---- fields ---------------------------------------------------------------- */

/* A string field: required or not, 0..max bytes (min 1 when required). */
static int get_str(const struct jv *o, const char *key, int required, size_t max, struct gw_str *out, char *err,
                   size_t errcap)
{
    struct jv v = jv_get(o, key);
    if (absent(&v)) {
        if (required)
            return BAD("field '%s' is missing", key);
        return 0;
    }
    if (v.t != JV_STR)
        return BAD("field '%s' must be a string", key);
    if (v.len > max || (required && v.len == 0))
        return BAD("field '%s' must be %s1..%zu bytes", key, required ? "" : "0 or ", max);
    out->p = v.s;
    out->len = v.len;
    return 0;
}

/* An integer field in [min, max], dflt when absent. */
static int get_uint(const struct jv *o, const char *key, uint64_t min, uint64_t max, uint64_t dflt, uint64_t *out,
                    char *err, size_t errcap)
{
    struct jv v = jv_get(o, key);
    if (absent(&v)) {
        *out = dflt;
        return 0;
    }
    if (v.t != JV_INT || v.i < 0 || (uint64_t)v.i < min || (uint64_t)v.i > max)
        return BAD("field '%s' must be an integer in %llu..%llu", key, (unsigned long long)min,
                   (unsigned long long)max);
    *out = (uint64_t)v.i;
    return 0;
}

/* A number field (integer or real) in [0, max], dflt when absent. */
static int get_num(const struct jv *o, const char *key, double max, double dflt, double *out, char *err,
                   size_t errcap)
{
    struct jv v = jv_get(o, key);
    if (absent(&v)) {
        *out = dflt;
        return 0;
    }
    if ((v.t != JV_INT && v.t != JV_REAL) || v.d < 0 || v.d > max)
        return BAD("field '%s' must be a number in 0..%g", key, max);
    *out = v.d;
    return 0;
}

static int get_bool(const struct jv *o, const char *key, int dflt, uint8_t *out, char *err, size_t errcap)
{
    struct jv v = jv_get(o, key);
    if (absent(&v)) {
        *out = (uint8_t)dflt;
        return 0;
    }
    if (v.t != JV_BOOL)
        return BAD("field '%s' must be true or false", key);
    *out = v.b;
    return 0;
}

/* A fixed-size base64 field (a key, a signature). */
static int get_b64_fixed(const struct jv *o, const char *key, uint8_t *out, size_t want, char *err, size_t errcap)
{
    struct gw_str s = {NULL, 0};
    int rc = get_str(o, key, 1, 128, &s, err, errcap);
    if (rc)
        return rc;
    uint8_t tmp[128];
    if (b64_decode(s.p, s.len, tmp) != (long)want)
        return BAD("field '%s' must be the base64 of %zu bytes", key, want);
    memcpy(out, tmp, want);
    return 0;
}

static int id_char_ok(unsigned char ch) { return ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\'; }

/* An id field (task_id, request_id): a non-negative integer (up to 2^53,
 * exact in every JSON implementation) or a string of 1..GW_MAX_ID printable
 * ASCII characters other than '"' and '\'. */
static int get_id(const struct jv *o, const char *key, struct gw_msg *m, char *err, size_t errcap)
{
    struct jv v = jv_get(o, key);
    if (v.t == JV_NONE)
        return BAD("field '%s' is missing", key);
    if (v.t == JV_INT) {
        if (v.i < 0 || v.i > (long long)1 << 53)
            return BAD("field '%s' must be an integer in 0..2^53 or a string", key);
        m->tid_len = (uint8_t)snprintf(m->tid, sizeof(m->tid), "%lld", v.i);
        m->tid_is_num = 1;
        m->tid_num = (uint64_t)v.i;
        return 0;
    }
    if (v.t != JV_STR)
        return BAD("field '%s' must be a string or an integer", key);
    if (v.len == 0 || v.len > GW_MAX_ID)
        return BAD("field '%s' must be 1..%d characters", key, GW_MAX_ID);
    int digits = v.len <= 20;
    uint64_t num = 0;
    for (size_t k = 0; k < v.len; k++) {
        unsigned char ch = (unsigned char)v.s[k];
        if (!id_char_ok(ch))
            return BAD("field '%s' must be printable ASCII without '\"' or '\\'", key);
        if (ch < '0' || ch > '9' || num > (UINT64_MAX - (ch - '0')) / 10)
            digits = 0;
        else
            num = num * 10 + (uint64_t)(ch - '0');
    }
    m->tid[0] = '"';
    memcpy(m->tid + 1, v.s, v.len);
    m->tid[v.len + 1] = '"';
    m->tid_len = (uint8_t)(v.len + 2);
    m->tid_is_num = (uint8_t)digits;
    m->tid_num = num;
    return 0;
}

static int get_task_id(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    return get_id(o, "task_id", m, err, errcap);
}

static int hex_digit(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* task_submit "blobs": an array of 0..PROTO_MAX_BLOBS SHA-256 hashes, each
 * 64 hex digits.  An array: only from jansson (the fast parser leaves
 * arrays to it). */
static int get_blobs(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    struct jv v = jv_get(o, "blobs");
    if (absent(&v))
        return 0;
    if (v.t != JV_ARR || json_array_size(v.j) > PROTO_MAX_BLOBS)
        return BAD("field 'blobs' must be an array of 0..%d blob hashes (64 hex digits each)", PROTO_MAX_BLOBS);
    for (size_t i = 0; i < json_array_size(v.j); i++) {
        struct jv e = jv_of(json_array_get(v.j, i));
        if (e.t != JV_STR || e.len != 2 * PROTO_HASH_LEN)
            return BAD("'blobs' entries must be SHA-256 hashes of 64 hex digits (blob_ack's 'hash')");
        uint8_t *h = m->blobs + i * PROTO_HASH_LEN;
        for (size_t k = 0; k < PROTO_HASH_LEN; k++) {
            int hi = hex_digit((unsigned char)e.s[2 * k]), lo = hex_digit((unsigned char)e.s[2 * k + 1]);
            if (hi < 0 || lo < 0)
                return BAD("'blobs' entries must be SHA-256 hashes of 64 hex digits (blob_ack's 'hash')");
            h[k] = (uint8_t)(hi << 4 | lo);
        }
    }
    m->nblobs = (uint8_t)json_array_size(v.j);
    return 0;
}

static int params_add(struct gw_msg *m, const char *k, size_t kl, const char *v, size_t vl, char *err,
                      size_t errcap)
{
    if (kl == 0 || memchr(k, '=', kl) || memchr(k, '\n', kl) || memchr(v, '\n', vl))
        return BAD("params keys must be non-empty without '=' or newlines, values without newlines");
    if (m->params_len + kl + vl + 2 > sizeof(m->params))
        return BAD("params are over %d bytes", PROTO_MAX_PARAMS);
    memcpy(m->params + m->params_len, k, kl);
    m->params[m->params_len + kl] = '=';
    memcpy(m->params + m->params_len + kl + 1, v, vl);
    m->params[m->params_len + kl + 1 + vl] = '\n';
    m->params_len += kl + vl + 2;
    return 0;
}

/* params: an object of string, number or boolean values (made into the
 * binary protocol's "key=value\n" lines), or such lines as one string. */
static int get_params(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    struct jv v = jv_get(o, "params");
    if (absent(&v))
        return 0;
    if (v.t == JV_STR) {
        if (v.len > sizeof(m->params))
            return BAD("params are over %d bytes", PROTO_MAX_PARAMS);
        memcpy(m->params, v.s, v.len);
        m->params_len = v.len;
        return 0;
    }
    if (v.t != JV_OBJ)
        return BAD("field 'params' must be an object or a string");
    struct jv_iter it = {NULL, 0};
    const char *k;
    size_t kl;
    struct jv x;
    while (jv_next(&v, &it, &k, &kl, &x)) {
        char num[64];
        const char *s;
        size_t sl;
        if (x.t == JV_STR) {
            s = x.s;
            sl = x.len;
        } else if (x.t == JV_INT) {
            sl = (size_t)snprintf(num, sizeof(num), "%lld", x.i);
            s = num;
        } else if (x.t == JV_REAL) {
            sl = (size_t)snprintf(num, sizeof(num), "%.17g", x.d);
            s = num;
        } else if (x.t == JV_BOOL) {
            s = x.b ? "1" : "0";
            sl = 1;
        } else {
            return BAD("params values must be strings, numbers or booleans");
        }
        int rc = params_add(m, k, kl, s, sl, err, errcap);
        if (rc)
            return rc;
    }
    return 0;
}

static int dec_gamer_register(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    int rc;
    if ((rc = get_str(o, "client_id", 0, PROTO_MAX_NAME, &m->name, err, errcap)) ||
        (rc = get_str(o, "token", 0, PROTO_MAX_TOKEN, &m->token, err, errcap)) ||
        (rc = get_bool(o, "binary_results", 0, &m->binary_results, err, errcap)))
        return rc;
    return 0;
}

static int dec_task_submit(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    int rc;
    uint64_t dl, ver;
    uint8_t verify;
    if ((rc = get_task_id(o, m, err, errcap)) ||
        (rc = get_str(o, "task_type", 1, PROTO_MAX_TYPE_NAME, &m->task_type, err, errcap)) ||
        (rc = get_bool(o, "data_frame", 0, &m->data_frame, err, errcap)) ||
        (rc = get_str(o, "data", 0, SIZE_MAX, &m->data, err, errcap)) ||
        (rc = get_params(o, m, err, errcap)) ||
        (rc = get_uint(o, "deadline_ms", 0, UINT32_MAX, 0, &dl, err, errcap)) ||
        (rc = get_uint(o, "min_version", 0, UINT32_MAX, 0, &ver, err, errcap)) ||
        (rc = get_bool(o, "no_cache", 0, &m->no_cache, err, errcap)) ||
        (rc = get_bool(o, "verify", 1, &verify, err, errcap)) || (rc = get_blobs(o, m, err, errcap)))
        return rc;
    if (m->data_frame && m->data.p)
        return BAD("task_submit carries 'data' or 'data_frame': true, not both");
    if (!m->data_frame && !m->data.p)
        return BAD("task_submit needs 'data' (base64) or 'data_frame': true");
    if (!verify)
        return BAD("'verify': false is not allowed: results are verified by the coordinator's policy");
    m->deadline_ms = (uint32_t)dl;
    m->min_version = (uint32_t)ver;
    struct jv p = jv_get(o, "priority");
    static const char *const names[] = {"realtime", "interactive", "background"};
    m->priority = PRIO_INTERACTIVE;
    if (p.t == JV_STR) {
        int found = 0;
        for (int k = 0; k < PRIO_CLASSES; k++)
            if (p.len == strlen(names[k]) && memcmp(p.s, names[k], p.len) == 0)
                m->priority = (uint8_t)k, found = 1;
        if (!found)
            return BAD("field 'priority' must be 0..2 or realtime, interactive, background");
    } else if (!absent(&p)) {
        uint64_t x;
        if ((rc = get_uint(o, "priority", 0, PRIO_CLASSES - 1, PRIO_INTERACTIVE, &x, err, errcap)))
            return BAD("field 'priority' must be 0..2 or realtime, interactive, background");
        m->priority = (uint8_t)x;
    }
    return 0;
}

static int dec_blob_put(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    int rc;
    if ((rc = get_id(o, "request_id", m, err, errcap)) ||
        (rc = get_bool(o, "data_frame", 0, &m->data_frame, err, errcap)) ||
        (rc = get_str(o, "data", 0, SIZE_MAX, &m->data, err, errcap)))
        return rc;
    if (m->data_frame && m->data.p)
        return BAD("blob_put carries 'data' or 'data_frame': true, not both");
    if (!m->data_frame && !m->data.p)
        return BAD("blob_put needs 'data' (base64) or 'data_frame': true");
    return 0;
}

static int dec_task_cancel(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    return get_task_id(o, m, err, errcap);
}

static int dec_peer_register(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    int rc;
    uint64_t slots;
    if ((rc = get_str(o, "peer_id", 0, PROTO_MAX_NAME, &m->name, err, errcap)) ||
        (rc = get_str(o, "token", 0, PROTO_MAX_TOKEN, &m->token, err, errcap)) ||
        (rc = get_uint(o, "slots", 1, 65535, 1, &slots, err, errcap)) ||
        (rc = get_bool(o, "binary_inputs", 0, &m->binary_inputs, err, errcap)) ||
        (rc = get_b64_fixed(o, "key", m->key, sizeof(m->key), err, errcap)) ||
        (rc = get_b64_fixed(o, "signature", m->sig, sizeof(m->sig), err, errcap)))
        return rc;
    m->slots = (uint16_t)slots;
    m->has_key = 1;
    struct jv cap = jv_get(o, "capabilities");
    if (!absent(&cap)) {
        if (cap.t != JV_OBJ)
            return BAD("field 'capabilities' must be an object");
        uint64_t cores;
        double ram, vram;
        if ((rc = get_uint(&cap, "cpu_cores", 0, 65535, 1, &cores, err, errcap)) ||
            (rc = get_num(&cap, "ram_gb", 1e6, 0, &ram, err, errcap)) ||
            (rc = get_bool(&cap, "gpu", 0, &m->gpu, err, errcap)) ||
            (rc = get_num(&cap, "gpu_vram_gb", 1e6, 0, &vram, err, errcap)) ||
            (rc = get_str(&cap, "gpu_model", 0, PROTO_MAX_NAME, &m->gpu_model, err, errcap)))
            return rc;
        m->cores = (uint16_t)cores;
        m->mem_bytes = (uint64_t)(ram * 1073741824.0);
    } else {
        m->cores = 1;
    }
    /* An array: only from jansson (the fast parser leaves arrays to it). */
    struct jv tt = jv_get(o, "task_types");
    if (tt.t != JV_ARR || json_array_size(tt.j) == 0 || json_array_size(tt.j) > PROTO_MAX_TYPES)
        return BAD("field 'task_types' must be an array of 1..%d {name, version}", PROTO_MAX_TYPES);
    for (size_t i = 0; i < json_array_size(tt.j); i++) {
        struct jv e = jv_of(json_array_get(tt.j, i));
        struct gw_type *t = &m->types[i];
        uint64_t ver;
        if (e.t == JV_STR) {
            t->name.p = e.s;
            t->name.len = e.len;
            t->version = 1;
            t->det = 1;
            if (t->name.len == 0 || t->name.len > PROTO_MAX_TYPE_NAME)
                return BAD("task type names are 1..%d bytes", PROTO_MAX_TYPE_NAME);
            continue;
        }
        if (e.t != JV_OBJ)
            return BAD("task_types entries must be objects {name, version}");
        if ((rc = get_str(&e, "name", 1, PROTO_MAX_TYPE_NAME, &t->name, err, errcap)) ||
            (rc = get_uint(&e, "version", 0, UINT32_MAX, 1, &ver, err, errcap)) ||
            (rc = get_bool(&e, "deterministic", 1, &t->det, err, errcap)))
            return rc;
        t->version = (uint32_t)ver;
    }
    m->ntypes = (uint8_t)json_array_size(tt.j);
    return 0;
}

static int dec_task_result(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    int rc;
    double ms;
    if ((rc = get_task_id(o, m, err, errcap)) || (rc = get_bool(o, "success", 1, &m->success, err, errcap)) ||
        (rc = get_bool(o, "result_frame", 0, &m->result_frame, err, errcap)) ||
        (rc = get_str(o, "result", 0, SIZE_MAX, &m->result, err, errcap)) ||
        (rc = get_str(o, "error", 0, SIZE_MAX, &m->error, err, errcap)) ||
        (rc = get_num(o, "processing_time_ms", 4294967.0, 0, &ms, err, errcap)))
        return rc;
    if (!m->tid_is_num)
        return BAD("task_result 'task_id' must be the task_assign's task_id");
    if (m->success && m->result_frame && m->result.p)
        return BAD("task_result carries 'result' or 'result_frame': true, not both");
    if (m->success && !m->result_frame && !m->result.p)
        return BAD("a successful task_result needs 'result' (base64) or 'result_frame': true");
    if (!m->success && m->result_frame)
        return BAD("a failed task_result carries 'error', not a result");
    if (m->error.len > GW_MAX_ERROR)
        m->error.len = GW_MAX_ERROR;
    m->exec_us = (uint32_t)(ms * 1000.0);
    m->error_code = P2C2R_ETASK;
    struct gw_str code = {NULL, 0};
    if ((rc = get_str(o, "error_code", 0, 32, &code, err, errcap)))
        return rc;
    if (code.p) {
        int found = 0;
        for (int k = -1; k >= P2C2R_ERROR_MIN; k--)
            if (code.len == strlen(p2c2r_errname(k)) && memcmp(code.p, p2c2r_errname(k), code.len) == 0)
                m->error_code = k, found = 1;
        if (!found)
            return BAD("field 'error_code' must be a p2c2r error name such as ETASK");
    }
    return 0;
}

static int dec_heartbeat(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    double x;
    uint64_t slots;
    int rc;
    struct gw_str id;
    if ((rc = get_str(o, "peer_id", 0, PROTO_MAX_NAME, &id, err, errcap)) ||
        (rc = get_num(o, "timestamp", 1e300, 0, &x, err, errcap)) ||
        (rc = get_num(o, "load", 1e300, 0, &x, err, errcap)) ||
        (rc = get_num(o, "tasks_completed", 1e300, 0, &x, err, errcap)) ||
        (rc = get_num(o, "tasks_failed", 1e300, 0, &x, err, errcap)) ||
        (rc = get_uint(o, "slots", 0, 65535, 0, &slots, err, errcap)))
        return rc;
    m->credit = (uint32_t)slots;
    return 0;
}

static int dec_stats_request(const struct jv *o, struct gw_msg *m, char *err, size_t errcap)
{
    uint64_t every;
    int rc = get_uint(o, "every_ms", 0, 60000, 0, &every, err, errcap);
    m->every_ms = (uint32_t)every;
    return rc;
}

static const struct {
    const char *name;
    int (*dec)(const struct jv *o, struct gw_msg *m, char *err, size_t errcap);
} kinds[GW_KINDS] = {
    [GW_GAMER_REGISTER] = {"gamer_register", dec_gamer_register},
    [GW_TASK_SUBMIT] = {"task_submit", dec_task_submit},
    [GW_TASK_CANCEL] = {"task_cancel", dec_task_cancel},
    [GW_PEER_REGISTER] = {"peer_register", dec_peer_register},
    [GW_TASK_RESULT] = {"task_result", dec_task_result},
    [GW_HEARTBEAT] = {"heartbeat", dec_heartbeat},
    [GW_STATS_REQUEST] = {"stats_request", dec_stats_request},
    [GW_BLOB_PUT] = {"blob_put", dec_blob_put},
};

const char *gw_kind_name(int kind) { return kind >= 0 && kind < GW_KINDS ? kinds[kind].name : "?"; }

int gw_decode_ex(const char *t, size_t n, int fast, struct gw_msg *out, char *err, size_t errcap)
{
    memset(out, 0, offsetof(struct gw_msg, params));
    out->params_len = 0;
    memset(&out->priority, 0, sizeof(*out) - offsetof(struct gw_msg, priority));
    struct jv root;
    struct fast *f = NULL;
    int rc;
    if (fast) {
        /* The views must outlive t (a message waiting for its binary
         * message): the fast parser works on a copy the message owns. */
        char *copy = xmalloc(n ? n : 1);
        memcpy(copy, t, n);
        f = xmalloc(sizeof(*f));
        f->p = copy;
        f->end = copy + n;
        f->nobj = 0;
        fast_ws(f);
        if (fast_obj(f, 0, &root) && (fast_ws(f), f->p == f->end)) {
            out->text = copy;
            out->fast = f;
        } else {
            free(copy);
            free(f);
            f = NULL;
        }
    }
    if (!f) {
        json_error_t je;
        json_t *o = json_loadb(t, n, JSON_REJECT_DUPLICATES, &je);
        if (!o)
            return bad(err, errcap, P2C2R_EPROTO, "not JSON: %s at byte %d", je.text, je.position);
        out->doc = o;
        root = jv_of(o);
        if (root.t != JV_OBJ) {
            rc = bad(err, errcap, P2C2R_EPROTO, "a message must be a JSON object");
            goto fail;
        }
    }
    struct jv mt = jv_get(&root, "msg_type");
    if (mt.t != JV_STR) {
        rc = bad(err, errcap, P2C2R_EPROTO, "a message needs a string 'msg_type'");
        goto fail;
    }
    int kind = -1;
    for (int k = 0; k < GW_KINDS; k++)
        if (mt.len == strlen(kinds[k].name) && memcmp(mt.s, kinds[k].name, mt.len) == 0)
            kind = k;
    if (kind < 0) {
        rc = bad(err, errcap, P2C2R_EPROTO, "unknown msg_type '%.*s' (docs/GATEWAY.md lists them)",
                 (int)(mt.len < 40 ? mt.len : 40), mt.s);
        goto fail;
    }
    out->kind = kind;
    if ((rc = kinds[kind].dec(&root, out, err, errcap)) != 0)
        goto fail;
    return 0;
fail:
    gw_msg_free(out);
    return rc;
}

int gw_decode(const char *t, size_t n, struct gw_msg *out, char *err, size_t errcap)
{
    return gw_decode_ex(t, n, 1, out, err, errcap);
}

void gw_msg_free(struct gw_msg *m)
{
    if (!m)
        return;
    if (m->doc) {
        json_decref(m->doc);
        m->doc = NULL;
    }
    free(m->text);
    free(m->fast);
    m->text = NULL;
    m->fast = NULL;
}

/* ---- writers -------------------------------------------------------------- */

int gw_put_str(struct buf *o, const char *s, size_t n)
{
    uint8_t *p = buf_reserve(o, n * 6 + 2);
    if (!p)
        return -1;
    static const char hex[] = "0123456789abcdef";
    /* A WebSocket text message must be UTF-8: text that is not (a peer's
     * error bytes) has its bytes over 0x7f written as U+0080..U+00FF. */
    int utf8 = ws_utf8_ok((const uint8_t *)s, n);
    size_t k = 0;
    p[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            p[k++] = '\\';
            p[k++] = ch;
        } else if (ch < 0x20 || ch == 0x7f || (ch >= 0x80 && !utf8)) {
            memcpy(p + k, "\\u00", 4);
            p[k + 4] = (uint8_t)hex[ch >> 4];
            p[k + 5] = (uint8_t)hex[ch & 15];
            k += 6;
        } else {
            p[k++] = ch;
        }
    }
    p[k++] = '"';
    buf_commit(o, k);
    return 0;
}

int gw_printf(struct buf *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return -1;
    return buf_append(o, tmp, (size_t)n) == 0 ? 0 : -1;
}

int gw_put_b64(struct buf *o, const uint8_t *p, size_t n)
{
    uint8_t *d = buf_reserve(o, b64_enc_len(n) + 2);
    if (!d)
        return -1;
    d[0] = '"';
    size_t l = b64_encode(p, n, (char *)d + 1);
    d[l + 1] = '"';
    buf_commit(o, l + 2);
    return 0;
}

int gw_put_lit(struct buf *o, const char *s) { return buf_append(o, s, strlen(s)) == 0 ? 0 : -1; }

int gw_put_u64(struct buf *o, uint64_t v)
{
    char d[20];
    size_t n = 0;
    do {
        d[sizeof(d) - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return buf_append(o, d + sizeof(d) - n, n) == 0 ? 0 : -1;
}

int gw_put_ms(struct buf *o, uint64_t us)
{
    char f[4] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10), (char)('0' + us % 10)};
    return gw_put_u64(o, us / 1000) || buf_append(o, f, 4) ? -1 : 0;
}
