/* test_raytrace_scene.c - the scene decoder and the mesh blob codec.
 *
 * Valid scenes decode to what they say; every malformed scene (bad JSON,
 * missing or mistyped fields, NaN and overflowing numbers, values out of
 * range, frames and counts over the limits, unknown keys, bad or missing
 * blobs) gives P2C2R_EINVAL with a non-empty one-line reason, and never
 * crashes or leaks (run under ASan).  The blob decoder is tried at every
 * truncation of a valid blob. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "tasks/raytrace.h"

#define CAM "\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"up\":[0,1,0],\"fov\":40}"
#define DIFF "{\"type\":\"diffuse\",\"albedo\":[0.5,0.5,0.5]}"

/* Parses json; returns the status, frees the scene. */
static int parse(const char *json, char *err, size_t cap)
{
    struct rt_scene *s = NULL;
    int rc = rt_scene_parse(json, strlen(json), NULL, 0, &s, err, cap);
    if (rc == 0)
        CHECK(s != NULL);
    rt_scene_free(s);
    return rc;
}

/* json must be rejected with EINVAL, a one-line reason, and (when want is
 * not NULL) a reason that mentions want. */
static void expect_invalid(const char *json, const char *want, int line)
{
    char err[256];
    memset(err, 'x', sizeof(err));
    int rc = parse(json, err, sizeof(err));
    int ok = rc == P2C2R_EINVAL && err[0] != '\0' && strlen(err) < sizeof(err) && !strchr(err, '\n') &&
             (!want || strstr(err, want));
    if (!ok)
        fprintf(stderr, "line %d: rc=%d err='%.200s' (wanted EINVAL mentioning '%s') for: %.160s\n", line, rc,
                rc ? err : "", want ? want : "", json);
    CHECK(ok);
}

#define BAD(json, want) expect_invalid(json, want, __LINE__)

static void test_valid(void)
{
    char err[256];
    const char *min = "{\"width\":4,\"height\":3," CAM "}";
    struct rt_scene *s = NULL;
    CHECK_EQ(rt_scene_parse(min, strlen(min), NULL, 0, &s, err, sizeof(err)), 0);
    if (CHECK(s != NULL)) {
        struct rt_scene_info si;
        rt_scene_get_info(s, &si);
        CHECK_EQU(si.width, 4);
        CHECK_EQU(si.height, 3);
        CHECK_EQU(si.spp, 1);
        CHECK_EQU(si.max_depth, 8);
        CHECK_EQU(si.seed, 0);
        CHECK_EQU(si.nprims, 0);
        /* An empty scene renders as its background. */
        uint8_t px[4 * 3 * 4];
        struct rt_tile t = {0, 0, 4, 3};
        CHECK_EQ(rt_render_tile(s, &t, 1, px, 16, err, sizeof(err)), 0);
        for (int i = 0; i < 12; i++)
            CHECK(px[i * 4] == 0 && px[i * 4 + 1] == 0 && px[i * 4 + 2] == 0 && px[i * 4 + 3] == 255);
    }
    rt_scene_free(s);
    s = NULL;

    const char *full =
        "{\"_comment\":\"keys starting with _ are ignored\",\"version\":1,\"width\":16,\"height\":9,\"seed\":99,"
        "\"spp\":3,\"max_depth\":5,\"background\":[0.1,0.2,0.3],\"exposure\":2,\"clamp\":10," CAM ","
        "\"materials\":{\"a\":" DIFF ",\"m\":{\"type\":\"metal\",\"albedo\":[1,1,1],\"fuzz\":0.5},"
        "\"g\":{\"type\":\"glass\",\"ior\":1.33,\"tint\":[1,0.9,0.9]},\"e\":{\"type\":\"emissive\",\"emission\":[5,5,5]}},"
        "\"spheres\":[{\"center\":[0,0,0],\"radius\":1,\"material\":\"a\"},{\"center\":[2,0,0],\"radius\":0.5,"
        "\"material\":{\"type\":\"metal\",\"albedo\":[0.5,0.5,0.5]},\"_note\":1}],"
        "\"planes\":[{\"point\":[0,-1,0],\"normal\":[0,2,0],\"material\":\"m\"}],"
        "\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0,1,1,0],\"indices\":[0,1,2,1,3,2],\"material\":\"g\","
        "\"translate\":[1,1,1],\"scale\":2}],"
        "\"lights\":[{\"type\":\"point\",\"position\":[0,5,0],\"intensity\":[1,1,1]},"
        "{\"type\":\"rect\",\"corner\":[0,3,0],\"edge1\":[1,0,0],\"edge2\":[0,0,1],\"emission\":[2,2,2]},"
        "{\"type\":\"sphere\",\"center\":[3,3,3],\"radius\":0.25,\"emission\":[3,3,3]}]}";
    int rc = rt_scene_parse(full, strlen(full), NULL, 0, &s, err, sizeof(err));
    if (rc)
        fprintf(stderr, "full scene: %s\n", err);
    CHECK_EQ(rc, 0);
    if (s) {
        struct rt_scene_info si;
        rt_scene_get_info(s, &si);
        CHECK_EQU(si.width, 16);
        CHECK_EQU(si.spp, 3);
        CHECK_EQU(si.max_depth, 5);
        CHECK_EQU(si.seed, 99);
        CHECK_EQU(si.nspheres, 3); /* two spheres and the sphere light */
        CHECK_EQU(si.nplanes, 1);
        CHECK_EQU(si.ntriangles, 2);
        CHECK_EQU(si.nlights, 3);
        CHECK_EQU(si.nprims, 3 + 1 + 2);
        CHECK_EQU(si.nmaterials, 4 + 1 + 2); /* named, one inline, two area lights */
    }
    rt_scene_free(s);
}

static void test_malformed(void)
{
    /* Not JSON, or not an object. */
    BAD("", "JSON");
    BAD("not json", "JSON");
    BAD("{", "JSON");
    BAD("[]", "object");
    BAD("null", NULL);
    BAD("{\"width\":4,\"height\":4," CAM "} trailing", "JSON");
    BAD("{\"width\":4,\"width\":4,\"height\":4," CAM "}", "duplicate");
    /* NaN, infinities and overflow cannot be written in JSON: rejected. */
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[NaN,0,5],\"look_at\":[0,0,0],\"fov\":40}}", "JSON");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[Infinity,0,5],\"look_at\":[0,0,0],\"fov\":40}}", "JSON");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[1e400,0,5],\"look_at\":[0,0,0],\"fov\":40}}", NULL);
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[1e300,0,5],\"look_at\":[0,0,0],\"fov\":40}}", "position");
    BAD("{\"width\":99999999999999999999999,\"height\":4," CAM "}", NULL);

    /* The frame. */
    BAD("{\"height\":4," CAM "}", "width");
    BAD("{\"width\":4," CAM "}", "height");
    BAD("{\"width\":\"4\",\"height\":4," CAM "}", "width");
    BAD("{\"width\":4.0,\"height\":4," CAM "}", "width");
    BAD("{\"width\":-1,\"height\":4," CAM "}", "width");
    BAD("{\"width\":0,\"height\":4," CAM "}", "width");
    BAD("{\"width\":100000,\"height\":100000," CAM "}", "width");
    BAD("{\"width\":16384,\"height\":16385," CAM "}", "height");
    BAD("{\"width\":4,\"height\":4,\"spp\":0," CAM "}", "spp");
    BAD("{\"width\":4,\"height\":4,\"spp\":4097," CAM "}", "spp");
    BAD("{\"width\":4,\"height\":4,\"max_depth\":0," CAM "}", "max_depth");
    BAD("{\"width\":4,\"height\":4,\"max_depth\":65," CAM "}", "max_depth");
    BAD("{\"width\":4,\"height\":4,\"seed\":-1," CAM "}", "seed");
    BAD("{\"width\":4,\"height\":4,\"seed\":\"x\"," CAM "}", "seed");
    BAD("{\"width\":4,\"height\":4,\"version\":2," CAM "}", "version");
    BAD("{\"width\":4,\"height\":4,\"background\":[0,0]," CAM "}", "background");
    BAD("{\"width\":4,\"height\":4,\"background\":[0,0,-1]," CAM "}", "background");
    BAD("{\"width\":4,\"height\":4,\"background\":\"black\"," CAM "}", "background");
    BAD("{\"width\":4,\"height\":4,\"exposure\":0," CAM "}", "exposure");
    BAD("{\"width\":4,\"height\":4,\"clamp\":true," CAM "}", "clamp");
    BAD("{\"width\":4,\"height\":4,\"colour\":[1,1,1]," CAM "}", "colour");

    /* The camera. */
    BAD("{\"width\":4,\"height\":4}", "camera");
    BAD("{\"width\":4,\"height\":4,\"camera\":[0,0,5]}", "camera");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"look_at\":[0,0,0],\"fov\":40}}", "position");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"fov\":40}}", "look_at");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0]}}", "fov");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0],\"look_at\":[0,0,0],\"fov\":40}}", "position");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,\"0\",5],\"look_at\":[0,0,0],\"fov\":40}}", "position");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,5],\"fov\":40}}", "look_at");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"up\":[0,0,1],\"fov\":40}}", "parallel");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"up\":[0,0,0],\"fov\":40}}", "up");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":0}}", "fov");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":180}}", "fov");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":\"wide\"}}", "fov");
    BAD("{\"width\":4,\"height\":4,\"camera\":{\"position\":[0,0,5],\"look_at\":[0,0,0],\"fov\":40,\"zoom\":2}}", "zoom");

    /* Materials. */
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":[]}", "materials");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"albedo\":[1,1,1]}}}", "type");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"velvet\"}}}", "velvet");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":1}}}", "type");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"diffuse\"}}}", "albedo");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"diffuse\",\"albedo\":[1.5,0,0]}}}", "albedo");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"diffuse\",\"albedo\":[1,1,1],\"ior\":1.5}}}", "ior");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"metal\",\"albedo\":[1,1,1],\"fuzz\":2}}}", "fuzz");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"glass\",\"ior\":0.5}}}", "ior");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"glass\"}}}", "ior");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":{\"type\":\"emissive\",\"emission\":[-1,0,0]}}}", "emission");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"\":" DIFF "}}", "name");
    BAD("{\"width\":4,\"height\":4," CAM ",\"materials\":{\"a\":\"diffuse\"}}", "materials.a");

    /* Spheres and planes. */
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":{}}", "spheres");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[1]}", "spheres[0]");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":0,\"material\":" DIFF "}]}", "radius");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":-1,\"material\":" DIFF "}]}", "radius");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":\"1\",\"material\":" DIFF "}]}", "radius");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":1}]}", "material");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":1,\"material\":\"nope\"}]}", "nope");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"center\":[0,0,0],\"radius\":1,\"material\":7}]}", "material");
    BAD("{\"width\":4,\"height\":4," CAM ",\"spheres\":[{\"centre\":[0,0,0],\"radius\":1,\"material\":" DIFF "}]}", "centre");
    BAD("{\"width\":4,\"height\":4," CAM ",\"planes\":[{\"point\":[0,0,0],\"normal\":[0,0,0],\"material\":" DIFF "}]}", "normal");
    BAD("{\"width\":4,\"height\":4," CAM ",\"planes\":[{\"point\":[0,0,0],\"material\":" DIFF "}]}", "normal");

    /* Meshes. */
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1],\"indices\":[0,1,2],\"material\":" DIFF "}]}", "vertices");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0],\"indices\":[0,1,3],\"material\":" DIFF "}]}", "indices[2]");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0],\"indices\":[0,1,-1],\"material\":" DIFF "}]}", "indices[2]");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0],\"indices\":[0,1.5,2],\"material\":" DIFF "}]}", "indices[1]");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,\"1\",0],\"indices\":[0,1,2],\"material\":" DIFF "}]}", "vertices[7]");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":\"abc\",\"indices\":[0,1,2],\"material\":" DIFF "}]}", "vertices");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"indices\":[0,1,2],\"material\":" DIFF "}]}", "vertices");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0],\"indices\":[0,1,2],\"scale\":0,\"material\":" DIFF "}]}", "scale");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"vertices\":[0,0,0,1,0,0,0,1,0],\"indices\":[0,1,2],\"scale\":1000000,\"translate\":[10,0,0],\"material\":" DIFF "}]}", "range");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"blob\":\"zz\",\"material\":" DIFF "}]}", "blob");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"blob\":42,\"material\":" DIFF "}]}", "blob");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"blob\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF\",\"material\":" DIFF "}]}", "hex");
    BAD("{\"width\":4,\"height\":4," CAM ",\"meshes\":[{\"blob\":\"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\"material\":" DIFF "}]}", "not sent");

    /* Lights. */
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"position\":[0,0,0],\"intensity\":[1,1,1]}]}", "type");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"spot\",\"position\":[0,0,0]}]}", "spot");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"point\",\"position\":[0,0,0],\"intensity\":[-1,1,1]}]}", "intensity");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"point\",\"position\":[0,0,0]}]}", "intensity");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"rect\",\"corner\":[0,0,0],\"edge1\":[1,0,0],\"edge2\":[2,0,0],\"emission\":[1,1,1]}]}", "edge");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"sphere\",\"center\":[0,0,0],\"radius\":0,\"emission\":[1,1,1]}]}", "radius");
    BAD("{\"width\":4,\"height\":4," CAM ",\"lights\":[{\"type\":\"point\",\"position\":[0,0,0],\"intensity\":[1,1,1],\"radius\":1}]}", "radius");

    /* Control characters in names are not echoed into the one-line reason. */
    BAD("{\"width\":4,\"height\":4," CAM ",\"bad\\nkey\":1}", "bad?key");
}

/* Over the count limits, without building anything big. */
static void test_limits(void)
{
    size_t cap = 1 << 16;
    char *j = malloc(cap);
    size_t n = (size_t)snprintf(j, cap, "{\"width\":4,\"height\":4," CAM ",\"planes\":[");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"point\":[0,0,0],\"normal\":[0,1,0],\"material\":" DIFF "}",
                              i ? "," : "");
    snprintf(j + n, cap - n, "]}");
    BAD(j, "limit");
    n = (size_t)snprintf(j, cap, "{\"width\":4,\"height\":4," CAM ",\"lights\":[");
    for (int i = 0; i < 65; i++)
        n += (size_t)snprintf(j + n, cap - n, "%s{\"type\":\"point\",\"position\":[0,0,0],\"intensity\":[1,1,1]}",
                              i ? "," : "");
    snprintf(j + n, cap - n, "]}");
    BAD(j, "limit");
    free(j);
}

static const char BLOB_HEX[] = "abababababababababababababababababababababababababababababababab";

static int parse_with_blob(const uint8_t *blob, size_t len, int uses, char *err, size_t cap)
{
    char json[2048];
    size_t n = (size_t)snprintf(json, sizeof(json), "{\"width\":4,\"height\":4," CAM ",\"meshes\":[");
    for (int i = 0; i < uses; i++)
        n += (size_t)snprintf(json + n, sizeof(json) - n, "%s{\"blob\":\"%s\",\"material\":" DIFF "}", i ? "," : "",
                              BLOB_HEX);
    snprintf(json + n, sizeof(json) - n, "]}");
    struct p2c2r_blob b;
    memset(b.hash, 0xab, sizeof(b.hash));
    b.data = blob;
    b.len = len;
    struct rt_scene *s = NULL;
    int rc = rt_scene_parse(json, strlen(json), &b, 1, &s, err, cap);
    rt_scene_free(s);
    return rc;
}

static void test_blob(void)
{
    static const float v[12] = {0, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 0};
    static const uint32_t ix[6] = {0, 1, 2, 1, 3, 2};
    size_t len = rt_mesh_blob_size(4, 2);
    CHECK_EQU(len, 16 + 48 + 24);
    uint8_t *b = malloc(len);
    char err[256];
    CHECK_EQ(rt_mesh_blob_encode(v, 4, ix, 2, b, len - 1), P2C2R_EINVAL);
    CHECK_EQ(rt_mesh_blob_encode(v, 4, ix, 2, b, len), 0);
    CHECK(memcmp(b, "P2RTMSH1", 8) == 0);
    CHECK(b[8] == 4 && b[9] == 0 && b[12] == 2); /* little-endian counts */
    uint32_t nv = 0, nt = 0;
    CHECK_EQ(rt_mesh_blob_check(b, len, &nv, &nt, err, sizeof(err)), 0);
    CHECK_EQU(nv, 4);
    CHECK_EQU(nt, 2);
    CHECK_EQ(parse_with_blob(b, len, 1, err, sizeof(err)), 0);
    CHECK_EQ(parse_with_blob(b, len, 3, err, sizeof(err)), 0); /* instanced */

    /* Every truncation, and one byte too many. */
    for (size_t k = 0; k < len; k++) {
        uint8_t *t = malloc(k ? k : 1);
        memcpy(t, b, k);
        CHECK_EQ(rt_mesh_blob_check(t, k, &nv, &nt, err, sizeof(err)), P2C2R_EINVAL);
        free(t);
    }
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, b, len);
    longer[len] = 0;
    CHECK_EQ(rt_mesh_blob_check(longer, len + 1, &nv, &nt, err, sizeof(err)), P2C2R_EINVAL);
    free(longer);

    /* Bad contents. */
    uint8_t *bad = malloc(len);
    memcpy(bad, b, len);
    bad[0] = 'X';
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "magic") != NULL);
    memcpy(bad, b, len);
    float nan = NAN;
    memcpy(bad + 16 + 4, &nan, 4);
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "finite") != NULL);
    memcpy(bad, b, len);
    float big = 2e6f;
    memcpy(bad + 16, &big, 4);
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    memcpy(bad, b, len);
    bad[16 + 48 + 20] = 4; /* last index = vertex count */
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "index") != NULL);
    memcpy(bad, b, len);
    bad[8] = 0; /* zero vertices */
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    memcpy(bad, b, len);
    bad[15] = 0x7f; /* a huge triangle count */
    CHECK_EQ(parse_with_blob(bad, len, 1, err, sizeof(err)), P2C2R_EINVAL);
    CHECK(strstr(err, "limit") != NULL);
    free(bad);
    free(b);

    /* A blob of 1M triangles is fine alone, but three instances of it are
     * over the 2M-triangle limit: rejected before anything is allocated. */
    uint32_t big_nt = 1u << 20;
    size_t big_len = rt_mesh_blob_size(3, big_nt);
    uint8_t *bb = calloc(1, big_len);
    if (CHECK(bb != NULL)) {
        float tri[9] = {0, 0, 0, 1, 0, 0, 0, 1, 0};
        uint32_t *bi = malloc((size_t)big_nt * 3 * sizeof(uint32_t));
        for (uint32_t i = 0; i < big_nt * 3; i++)
            bi[i] = i % 3;
        CHECK_EQ(rt_mesh_blob_encode(tri, 3, bi, big_nt, bb, big_len), 0);
        free(bi);
        CHECK_EQ(rt_mesh_blob_check(bb, big_len, &nv, &nt, err, sizeof(err)), 0);
        CHECK_EQ(parse_with_blob(bb, big_len, 3, err, sizeof(err)), P2C2R_EINVAL);
        CHECK(strstr(err, "limit") != NULL);
    }
    free(bb);
}

static void test_render_args(void)
{
    const char *json = "{\"width\":8,\"height\":6," CAM "}";
    struct rt_scene *s = NULL;
    char err[256];
    uint8_t px[8 * 6 * 4];
    CHECK_EQ(rt_scene_parse(json, strlen(json), NULL, 0, &s, err, sizeof(err)), 0);
    if (!s)
        return;
    struct rt_tile t = {0, 0, 8, 6};
    CHECK_EQ(rt_render_tile(s, &t, 0, px, 32, err, sizeof(err)), P2C2R_EINVAL);
    CHECK_EQ(rt_render_tile(s, &t, 4097, px, 32, err, sizeof(err)), P2C2R_EINVAL);
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 31, err, sizeof(err)), P2C2R_EINVAL);
    t = (struct rt_tile){0, 0, 9, 6};
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 36, err, sizeof(err)), P2C2R_EINVAL);
    t = (struct rt_tile){8, 0, 1, 1};
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 4, err, sizeof(err)), P2C2R_EINVAL);
    t = (struct rt_tile){2, 2, 0, 1};
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 4, err, sizeof(err)), P2C2R_EINVAL);
    t = (struct rt_tile){UINT32_MAX, 0, 2, 1};
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 8, err, sizeof(err)), P2C2R_EINVAL);
    t = (struct rt_tile){7, 5, 1, 1};
    CHECK_EQ(rt_render_tile(s, &t, 1, px, 4, err, sizeof(err)), 0);
    double cost[6];
    rt_estimate_rows(s, 0, cost);
    for (int i = 0; i < 6; i++)
        CHECK(cost[i] > 0.0);
    rt_scene_free(s);
    rt_scene_free(NULL);
}

int main(void)
{
    test_valid();
    test_malformed();
    test_limits();
    test_blob();
    test_render_args();
    return check_report("test_raytrace_scene");
}
