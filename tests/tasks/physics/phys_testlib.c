/* phys_testlib.c - helpers for the physics tests (see phys_testlib.h).
 *
 * The executor harness plays the peer: alloc_output hands out a malloc'd
 * buffer of exactly the size asked for (so ASan catches a write past it),
 * refuses sizes over the caller's limit and a second call, and the check
 * function runs before run, as on a peer's I/O thread. */
#include "phys_testlib.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct phys_body ph_sphere(int64_t id, double radius, double mass, double x, double y, double z)
{
    struct phys_body b;
    memset(&b, 0, sizeof(b));
    b.id = id;
    b.shape = PHYS_SPHERE;
    b.mass = mass;
    b.size = v3(radius, radius, radius);
    b.position = v3(x, y, z);
    b.orientation = (struct phys_quat){1.0, 0.0, 0.0, 0.0};
    b.restitution = 0.0;
    b.friction = 0.5;
    return b;
}

struct phys_body ph_box(int64_t id, double hx, double hy, double hz, double mass, double x, double y,
                        double z)
{
    struct phys_body b = ph_sphere(id, 1.0, mass, x, y, z);
    b.shape = PHYS_BOX;
    b.size = v3(hx, hy, hz);
    return b;
}

struct phys_plane ph_ground(int64_t id)
{
    struct phys_plane p;
    memset(&p, 0, sizeof(p));
    p.id = id;
    p.normal = v3(0.0, 1.0, 0.0);
    p.offset = 0.0;
    p.restitution = 0.0;
    p.friction = 0.5;
    return p;
}

struct harness {
    size_t limit;
    int calls;
    void *buf;
    size_t len;
};

static void *harness_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct harness *h = call->opaque;
    h->calls++;
    if (n > h->limit || h->calls > 1)
        return NULL;
    h->buf = malloc(n ? n : 1);
    h->len = n;
    return h->buf;
}

int ph_exec(const char *input, size_t input_len, const char *params, size_t out_limit, char **out,
            size_t *out_len, char err[256])
{
    struct harness h = {out_limit, 0, NULL, 0};
    struct p2c2r_exec_call call = {
        .input = (const uint8_t *)input,
        .input_len = input_len,
        .params = params ? params : "",
        .params_len = params ? strlen(params) : 0,
        .alloc_output = harness_alloc,
        .opaque = &h,
        .err = err,
        .err_cap = 256,
    };
    err[0] = '\0';
    if (input_len > exec_physics.max_input)
        return P2C2R_ETOOBIG;
    int rc = exec_physics.check ? exec_physics.check(&call) : 0;
    if (rc == 0)
        rc = exec_physics.run(&call);
    if (rc != 0) {
        free(h.buf);
        return rc;
    }
    char *s = malloc(h.len + 1);
    if (!s) {
        free(h.buf);
        return P2C2R_ENOMEM;
    }
    memcpy(s, h.buf, h.len);
    s[h.len] = '\0';
    free(h.buf);
    *out = s;
    *out_len = h.len;
    return 0;
}

char *ph_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    while (b) {
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    if (!b)
        return NULL;
    b[n] = '\0';
    if (len)
        *len = n;
    return b;
}
