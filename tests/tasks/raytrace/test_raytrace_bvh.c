/* test_raytrace_bvh.c - the BVH returns exactly what brute force returns.
 *
 * Random triangle soups (with and without spheres, lights and planes),
 * degenerate soups (every triangle the same, all in one axis-aligned plane)
 * and a grid of triangles sharing edges, hit by random rays, axis-parallel
 * rays (zero direction components) and rays aimed exactly at shared edges
 * and vertices (ties between triangles at the same t).  For every ray the
 * BVH and the brute-force scan must agree on hit or miss, on t to the bit,
 * and on the primitive. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tasks/raytrace.h"

static uint64_t rng_state = 0x243f6a8885a308d3u;

static uint64_t rnd64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Uniform in [lo, hi). */
static double rnd(double lo, double hi)
{
    return lo + (hi - lo) * (double)(rnd64() >> 11) * 0x1p-53;
}

static const char HASH_HEX[] = "4242424242424242424242424242424242424242424242424242424242424242";

/* Parses a scene whose only mesh is the blob (verts, idx), plus extra JSON
 * members (may be ""). */
static struct rt_scene *soup_scene(const float *verts, uint32_t nv, const uint32_t *idx, uint32_t nt,
                                   const char *extra)
{
    size_t bl = rt_mesh_blob_size(nv, nt);
    uint8_t *blob = malloc(bl);
    char *json = malloc(4096);
    struct rt_scene *s = NULL;
    if (!CHECK(blob && json))
        goto out;
    CHECK_EQ(rt_mesh_blob_encode(verts, nv, idx, nt, blob, bl), 0);
    snprintf(json, 4096,
             "{\"width\":8,\"height\":8,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":40},"
             "\"meshes\":[{\"blob\":\"%s\",\"material\":{\"type\":\"diffuse\",\"albedo\":[0.5,0.5,0.5]}}]%s}",
             HASH_HEX, extra);
    struct p2c2r_blob b;
    memset(b.hash, 0x42, sizeof(b.hash));
    b.data = blob;
    b.len = bl;
    char err[256];
    int rc = rt_scene_parse(json, strlen(json), &b, 1, &s, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "soup scene: %s\n", err);
    CHECK_EQ(rc, 0);
out:
    free(blob);
    free(json);
    return s;
}

static unsigned long rays_hit, rays_total, mismatches;

static void compare_ray(const struct rt_scene *s, const double o[3], const double d[3])
{
    double tb = -1, tf = -1;
    uint32_t pb = 7, pf = 9;
    int hb = rt_scene_trace(s, o, d, 0, &tb, &pb);
    int hf = rt_scene_trace(s, o, d, 1, &tf, &pf);
    rays_total++;
    if (hb != hf || (hb && (memcmp(&tb, &tf, sizeof(double)) != 0 || pb != pf))) {
        if (mismatches++ < 5)
            fprintf(stderr, "mismatch: o=(%g %g %g) d=(%g %g %g) bvh=%d t=%.17g p=%u brute=%d t=%.17g p=%u\n",
                    o[0], o[1], o[2], d[0], d[1], d[2], hb, tb, pb, hf, tf, pf);
        CHECK(0);
    }
    rays_hit += hb != 0;
}

static void random_rays(const struct rt_scene *s, int n, double box)
{
    for (int i = 0; i < n; i++) {
        double o[3], d[3];
        for (int k = 0; k < 3; k++) {
            o[k] = rnd(-box, box);
            d[k] = rnd(-1, 1);
        }
        if (i % 4 == 0) {
            /* From outside towards a random point inside. */
            double tgt[3];
            for (int k = 0; k < 3; k++) {
                o[k] = rnd(-3 * box, 3 * box);
                tgt[k] = rnd(-box, box);
                d[k] = tgt[k] - o[k];
            }
        }
        if (i % 5 == 0) {
            /* Axis-parallel: two zero components. */
            int a = (int)(rnd64() % 3);
            d[0] = d[1] = d[2] = 0.0;
            d[a] = rnd64() & 1 ? 1.0 : -1.0;
        } else if (i % 7 == 0) {
            d[rnd64() % 3] = 0.0;
        }
        if (d[0] == 0 && d[1] == 0 && d[2] == 0)
            d[2] = 1;
        compare_ray(s, o, d);
    }
}

static void test_soup(uint32_t nt, const char *extra, double spread, double size)
{
    uint32_t nv = nt * 3;
    float *v = malloc((size_t)nv * 3 * sizeof(float));
    uint32_t *ix = malloc((size_t)nt * 3 * sizeof(uint32_t));
    if (!CHECK(v && ix)) {
        free(v);
        free(ix);
        return;
    }
    for (uint32_t t = 0; t < nt; t++) {
        double c[3] = {rnd(-spread, spread), rnd(-spread, spread), rnd(-spread, spread)};
        for (int k = 0; k < 3; k++) {
            for (int a = 0; a < 3; a++)
                v[((size_t)t * 3 + (size_t)k) * 3 + (size_t)a] = (float)(c[a] + rnd(-size, size));
            ix[(size_t)t * 3 + (size_t)k] = t * 3 + (uint32_t)k;
        }
    }
    struct rt_scene *s = soup_scene(v, nv, ix, nt, extra);
    if (s) {
        struct rt_scene_info si;
        rt_scene_get_info(s, &si);
        CHECK_EQU(si.ntriangles, nt);
        CHECK(si.bvh_depth <= 63);
        CHECK(si.bvh_nodes >= 1 && si.bvh_nodes <= 2 * si.nprims - 1);
        random_rays(s, 3000, spread + size);
        /* Rays aimed exactly at vertices and edge midpoints. */
        for (uint32_t i = 0; i < 300; i++) {
            uint32_t t = (uint32_t)(rnd64() % nt);
            const float *a = v + (size_t)t * 9, *b = a + 3;
            double o[3], d[3];
            for (int k = 0; k < 3; k++)
                o[k] = rnd(-3, 3) * (spread + 1);
            for (int k = 0; k < 3; k++)
                d[k] = (i & 1 ? (double)a[k] : 0.5 * ((double)a[k] + b[k])) - o[k];
            compare_ray(s, o, d);
        }
    }
    rt_scene_free(s);
    free(v);
    free(ix);
}

/* Every triangle identical: all centroids coincide, every hit ties. */
static void test_coincident(void)
{
    enum { N = 300 };
    float *v = malloc(N * 9 * sizeof(float));
    uint32_t *ix = malloc(N * 3 * sizeof(uint32_t));
    static const float tri[9] = {-1, -1, 0, 1, -1, 0, 0, 1, 0};
    for (int t = 0; t < N; t++) {
        memcpy(v + t * 9, tri, sizeof(tri));
        for (int k = 0; k < 3; k++)
            ix[t * 3 + k] = (uint32_t)(t * 3 + k);
    }
    struct rt_scene *s = soup_scene(v, N * 3, ix, N, "");
    if (s) {
        for (int i = 0; i < 200; i++) {
            double o[3] = {rnd(-1, 1), rnd(-1, 1), 3}, d[3] = {rnd(-0.2, 0.2), rnd(-0.2, 0.2), -1};
            compare_ray(s, o, d);
        }
        double o[3] = {0, 0, 3}, d[3] = {0, 0, -1}, t;
        uint32_t p;
        if (CHECK(rt_scene_trace(s, o, d, 0, &t, &p)))
            CHECK_EQU(p, 0); /* the lowest index wins the tie */
    }
    rt_scene_free(s);
    free(v);
    free(ix);
}

/* A G x G grid of unit squares in the z = 0 plane, two triangles each:
 * rays through grid lines and corners hit two to six triangles at one t. */
static void test_grid(void)
{
    enum { G = 24 };
    uint32_t nv = (G + 1) * (G + 1), nt = G * G * 2;
    float *v = malloc((size_t)nv * 3 * sizeof(float));
    uint32_t *ix = malloc((size_t)nt * 3 * sizeof(uint32_t));
    for (uint32_t j = 0; j <= G; j++)
        for (uint32_t i = 0; i <= G; i++) {
            float *p = v + ((size_t)j * (G + 1) + i) * 3;
            p[0] = (float)i - G / 2;
            p[1] = (float)j - G / 2;
            p[2] = 0;
        }
    uint32_t *q = ix;
    for (uint32_t j = 0; j < G; j++)
        for (uint32_t i = 0; i < G; i++) {
            uint32_t a = j * (G + 1) + i, b = a + 1, c = a + G + 1, d = c + 1;
            *q++ = a, *q++ = b, *q++ = d;
            *q++ = a, *q++ = d, *q++ = c;
        }
    struct rt_scene *s = soup_scene(v, nv, ix, nt, "");
    if (s) {
        for (int i = 0; i < 2000; i++) {
            double o[3], d[3];
            o[0] = (double)((int)(rnd64() % (G + 1)) - G / 2);
            o[1] = i % 3 == 0 ? rnd(-G / 2, G / 2) : (double)((int)(rnd64() % (G + 1)) - G / 2);
            o[2] = i % 2 ? 5.0 : -5.0;
            d[0] = 0;
            d[1] = 0;
            d[2] = i % 2 ? -1.0 : 1.0;
            if (i % 4 == 1) {
                /* Slanted, landing on a grid line. */
                d[0] = rnd(-0.5, 0.5);
                o[0] -= d[0] * 5.0 / fabs(d[2]);
            }
            compare_ray(s, o, d);
        }
        random_rays(s, 1000, G / 2);
    }
    rt_scene_free(s);
    free(v);
    free(ix);
}

int main(void)
{
    static const char extras[] =
        ",\"spheres\":[{\"center\":[0.5,0.2,0],\"radius\":0.7,\"material\":{\"type\":\"metal\",\"albedo\":[1,1,1]}},"
        "{\"center\":[-1,-1,-1],\"radius\":0.3,\"material\":{\"type\":\"glass\",\"ior\":1.5}}],"
        "\"planes\":[{\"point\":[0,-2.5,0],\"normal\":[0,1,0],\"material\":{\"type\":\"diffuse\",\"albedo\":[1,1,1]}}],"
        "\"lights\":[{\"type\":\"rect\",\"corner\":[-1,2,-1],\"edge1\":[2,0,0],\"edge2\":[0,0,2],\"emission\":[1,1,1]},"
        "{\"type\":\"sphere\",\"center\":[2,2,2],\"radius\":0.5,\"emission\":[1,1,1]}]";
    test_soup(1, "", 1, 1);
    test_soup(7, "", 1, 1);
    test_soup(200, "", 2, 0.5);
    test_soup(2000, "", 2, 0.3);
    test_soup(5000, extras, 2, 0.1);
    test_soup(3000, "", 50, 40); /* long overlapping triangles */
    test_coincident();
    test_grid();
    CHECK_EQU(mismatches, 0);
    CHECK(rays_hit > rays_total / 10);
    printf("bvh: %lu rays, %lu hits, %lu mismatches\n", rays_total, rays_hit, mismatches);
    return check_report("test_raytrace_bvh");
}
