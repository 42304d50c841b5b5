/* test_physics_input.c - malformed scenes and params are refused with
 * P2C2R_EINVAL and a one-line reason naming the field, never a crash: wrong
 * types, missing fields, unknown fields, out-of-range and non-finite
 * numbers, too many bodies or steps, duplicate ids.  Also the other limits:
 * an input over PHYS_MAX_INPUT, an output over the peer's limit, and a
 * scene so dense that a step would blow its work budget. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "phys_testlib.h"

#define S1 "{\"id\":1,\"shape\":\"sphere\",\"mass\":1,\"radius\":0.5,\"position\":[0,1,0]"
#define B1 "{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[0.5,0.5,0.5],\"position\":[0,1,0]"

struct bad_case {
    const char *input;
    const char *params;
    int rc;
    const char *reason; /* a substring of the reason */
};

static const struct bad_case cases[] = {
    {"", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[]", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"[]", NULL, P2C2R_EINVAL, "must be a JSON object"},
    {"{}", NULL, P2C2R_EINVAL, "scene.bodies: missing"},
    {"{\"bodies\":{}}", NULL, P2C2R_EINVAL, "scene.bodies: must be an array"},
    {"{\"bodies\":[],\"gravty\":[0,0,0]}", NULL, P2C2R_EINVAL, "unknown field 'gravty'"},
    {"{\"bodies\":[],\"bodies\":[]}", NULL, P2C2R_EINVAL, "duplicate"},
    {"{\"bodies\":[1]}", NULL, P2C2R_EINVAL, "bodies[0]: must be an object"},
    {"{\"bodies\":[{\"shape\":\"sphere\"}]}", NULL, P2C2R_EINVAL, "bodies[0].id: missing"},
    {"{\"bodies\":[{\"id\":\"1\"}]}", NULL, P2C2R_EINVAL, "bodies[0].id: must be an integer"},
    {"{\"bodies\":[{\"id\":1.5}]}", NULL, P2C2R_EINVAL, "bodies[0].id: must be an integer"},
    {"{\"bodies\":[{\"id\":-3}]}", NULL, P2C2R_EINVAL, "bodies[0].id: must be an integer"},
    {"{\"bodies\":[{\"id\":9007199254740992}]}", NULL, P2C2R_EINVAL, "bodies[0].id"},
    {"{\"bodies\":[{\"id\":1}]}", NULL, P2C2R_EINVAL, "bodies[0].shape: missing"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"cone\"}]}", NULL, P2C2R_EINVAL, "bodies[0].shape: must be"},
    {"{\"bodies\":[{\"id\":1,\"shape\":3}]}", NULL, P2C2R_EINVAL, "bodies[0].shape: must be"},
    {"{\"bodies\":[" S1 "," S1 "}]}", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[" S1 "}," S1 "}]}", NULL, P2C2R_EINVAL, "id 1 is used twice"},
    {"{\"bodies\":[" S1 "}],\"planes\":[{\"id\":1,\"normal\":[0,1,0]}]}", NULL, P2C2R_EINVAL, "id 1 is used twice"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"radius\":1,\"position\":[0,0,0]}]}", NULL, P2C2R_EINVAL,
     "bodies[0].mass: missing"},
    {"{\"bodies\":[" S1 ",\"mass\":\"1\"}]}", NULL, P2C2R_EINVAL, "not valid JSON"}, /* duplicate key */
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":\"1\",\"radius\":1,\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "bodies[0].mass: must be a number"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":-1,\"radius\":1,\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "mass must be 0 (static) or"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":1,\"radius\":-0.5,\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "radius must be"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":1,\"radius\":0,\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "radius must be"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":1,\"radius\":null,\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "bodies[0].radius: must be a number"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"sphere\",\"mass\":1,\"position\":[0,0,0]}]}", NULL, P2C2R_EINVAL,
     "bodies[0].radius: missing"},
    {"{\"bodies\":[" S1 ",\"half_extents\":[1,1,1]}]}", NULL, P2C2R_EINVAL, "unknown field 'half_extents'"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"position\":[0,0,0]}]}", NULL, P2C2R_EINVAL,
     "bodies[0].half_extents: missing"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,2],\"position\":[0,0,0]}]}", NULL,
     P2C2R_EINVAL, "half_extents: must be an array of 3 numbers"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,\"2\",1],\"position\":[0,0,0]}]}",
     NULL, P2C2R_EINVAL, "half_extents: must be an array of 3 numbers"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,-2,1],\"position\":[0,0,0]}]}",
     NULL, P2C2R_EINVAL, "half_extents components must be"},
    {"{\"bodies\":[" B1 ",\"radius\":1}]}", NULL, P2C2R_EINVAL, "unknown field 'radius' (a box has half_extents"},
    {"{\"bodies\":[" B1 ",\"velocty\":[1,0,0]}]}", NULL, P2C2R_EINVAL, "bodies[0]: unknown field 'velocty'"},
    /* Reasons stay one printable line whatever the input holds. */
    {"{\"bodies\":[" B1 ",\"a\\nb\":1}]}", NULL, P2C2R_EINVAL, "unknown field 'a?b'"},
    {"{\"bodies\":[]}\n\x01", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[" B1 "}]}", "steps=1\r\n", P2C2R_EINVAL, "got '1?'"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,1,1]}]}", NULL, P2C2R_EINVAL,
     "bodies[0].position: missing"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,1,1],\"position\":[0,0]}]}", NULL,
     P2C2R_EINVAL, "position: must be an array of 3"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":1,\"half_extents\":[1,1,1],\"position\":[1e7,0,0]}]}",
     NULL, P2C2R_EINVAL, "position components must be"},
    {"{\"bodies\":[" B1 ",\"orientation\":[0,0,0,0]}]}", NULL, P2C2R_EINVAL, "orientation must be a non-zero"},
    {"{\"bodies\":[" B1 ",\"orientation\":[1,0,0]}]}", NULL, P2C2R_EINVAL, "orientation: must be an array of 4"},
    {"{\"bodies\":[" B1 ",\"velocity\":[1e5,0,0]}]}", NULL, P2C2R_EINVAL, "velocity components must be"},
    {"{\"bodies\":[" B1 ",\"angular_velocity\":[0,0,\"fast\"]}]}", NULL, P2C2R_EINVAL, "angular_velocity: must be"},
    {"{\"bodies\":[" B1 ",\"restitution\":1.5}]}", NULL, P2C2R_EINVAL, "restitution must be from 0 to 1"},
    {"{\"bodies\":[" B1 ",\"friction\":-0.1}]}", NULL, P2C2R_EINVAL, "friction must be from 0"},
    {"{\"bodies\":[{\"id\":1,\"shape\":\"box\",\"mass\":0,\"half_extents\":[1,1,1],\"position\":[0,0,0],"
     "\"velocity\":[0,1,0]}]}", NULL, P2C2R_EINVAL, "static body (mass 0) cannot have a velocity"},
    {"{\"bodies\":[" B1 "}],\"planes\":[{\"id\":2,\"normal\":[0,0,0]}]}", NULL, P2C2R_EINVAL,
     "planes[0] (id 2): normal must be a non-zero"},
    {"{\"bodies\":[],\"planes\":[{\"id\":2}]}", NULL, P2C2R_EINVAL, "planes[0].normal: missing"},
    {"{\"bodies\":[],\"planes\":[{\"id\":2,\"normal\":[0,1,0],\"offset\":\"0\"}]}", NULL, P2C2R_EINVAL,
     "planes[0].offset: must be a number"},
    {"{\"bodies\":[],\"planes\":[{\"id\":2,\"normal\":[0,1,0],\"d\":0}]}", NULL, P2C2R_EINVAL, "unknown field 'd'"},
    {"{\"bodies\":[],\"planes\":{}}", NULL, P2C2R_EINVAL, "scene.planes: must be an array"},
    {"{\"bodies\":[],\"steps\":1e9}", NULL, P2C2R_EINVAL, "scene.steps: must be an integer from 0 to 100000"},
    {"{\"bodies\":[],\"steps\":1000000000}", NULL, P2C2R_EINVAL, "scene.steps: must be an integer"},
    {"{\"bodies\":[],\"steps\":-1}", NULL, P2C2R_EINVAL, "scene.steps"},
    {"{\"bodies\":[],\"dt\":0}", NULL, P2C2R_EINVAL, "dt must be a number in (0, 1]"},
    {"{\"bodies\":[],\"dt\":-0.01}", NULL, P2C2R_EINVAL, "dt must be"},
    {"{\"bodies\":[],\"dt\":2}", NULL, P2C2R_EINVAL, "dt must be"},
    {"{\"bodies\":[],\"dt\":\"0.01\"}", NULL, P2C2R_EINVAL, "scene.dt: must be a number"},
    {"{\"bodies\":[],\"iterations\":0}", NULL, P2C2R_EINVAL, "scene.iterations"},
    {"{\"bodies\":[],\"iterations\":101}", NULL, P2C2R_EINVAL, "scene.iterations"},
    {"{\"bodies\":[],\"gravity\":[0,-1e5,0]}", NULL, P2C2R_EINVAL, "gravity components"},
    {"{\"bodies\":[],\"gravity\":[0,1e999,0]}", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[],\"gravity\":[0,NaN,0]}", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[],\"gravity\":[0,Infinity,0]}", NULL, P2C2R_EINVAL, "not valid JSON"},
    {"{\"bodies\":[" B1 "}]}", "steps=abc\n", P2C2R_EINVAL, "param steps must be an integer"},
    {"{\"bodies\":[" B1 "}]}", "steps=-1\n", P2C2R_EINVAL, "param steps"},
    {"{\"bodies\":[" B1 "}]}", "steps=100001\n", P2C2R_EINVAL, "param steps"},
    {"{\"bodies\":[" B1 "}]}", "steps=1000000000\n", P2C2R_EINVAL, "param steps"},
    {"{\"bodies\":[" B1 "}]}", "steps=\n", P2C2R_EINVAL, "param steps"},
    {"{\"bodies\":[" B1 "}]}", "dt=nan\n", P2C2R_EINVAL, "param dt must be a number"},
    {"{\"bodies\":[" B1 "}]}", "dt=inf\n", P2C2R_EINVAL, "param dt"},
    {"{\"bodies\":[" B1 "}]}", "dt=0\n", P2C2R_EINVAL, "param dt"},
    {"{\"bodies\":[" B1 "}]}", "dt=1e999\n", P2C2R_EINVAL, "param dt"},
    {"{\"bodies\":[" B1 "}]}", "dt=0x1p-4\n", P2C2R_EINVAL, "param dt"},
    {"{\"bodies\":[" B1 "}]}", "dt=0.01 \n", P2C2R_EINVAL, "param dt"},
    {"{\"bodies\":[" B1 "}]}", "steps=10\ndt=\n", P2C2R_EINVAL, "param dt"},
};

static int one_line(const char *s)
{
    return s[0] != '\0' && strchr(s, '\n') == NULL;
}

static void run_cases(void)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_case *c = &cases[i];
        char *out = NULL, err[256];
        size_t len = 0;
        int rc = ph_exec(c->input, strlen(c->input), c->params, SIZE_MAX, &out, &len, err);
        if (!CHECK(rc == c->rc && strstr(err, c->reason) != NULL && one_line(err)))
            fprintf(stderr, "  case %zu: %s | %s\n    got %d '%s', want %d '...%s...'\n", i, c->input,
                    c->params ? c->params : "", rc, err, c->rc, c->reason);
        if (rc == 0)
            free(out);
    }
}

/* Builds "{"bodies":[...n copies of item...]<tail>}". */
static char *repeat(const char *item, size_t n, const char *tail)
{
    size_t il = strlen(item), cap = 32 + n * (il + 1) + strlen(tail);
    char *s = malloc(cap), *p = s;
    p += sprintf(p, "{\"bodies\":[");
    for (size_t i = 0; i < n; i++) {
        memcpy(p, item, il);
        p += il;
        *p++ = ',';
    }
    if (n)
        p--;
    sprintf(p, "]%s}", tail);
    return s;
}

static void limits(void)
{
    char *out = NULL, err[256];
    size_t len = 0;
    /* One body too many (the count is checked before anything is built). */
    char *s = repeat("0", PHYS_MAX_BODIES + 1, "");
    CHECK(ph_exec(s, strlen(s), NULL, SIZE_MAX, &out, &len, err) == P2C2R_EINVAL);
    CHECK(strstr(err, "scene.bodies: 100001 entries, at most 100000") != NULL);
    free(s);
    /* Planes too. */
    s = repeat("0", 0, ",\"planes\":[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,"
                       "0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]");
    CHECK(ph_exec(s, strlen(s), NULL, SIZE_MAX, &out, &len, err) == P2C2R_EINVAL);
    CHECK(strstr(err, "scene.planes: 65 entries, at most 64") != NULL);
    free(s);
    /* steps x bodies over the work limit: 1000 bodies, 100000 steps. */
    char body[160];
    size_t n = 1000, cap = n * 160 + 64, l = 0;
    s = malloc(cap);
    l += (size_t)snprintf(s + l, cap - l, "{\"bodies\":[");
    for (size_t i = 0; i < n; i++) {
        snprintf(body, sizeof(body),
                 "%s{\"id\":%zu,\"shape\":\"sphere\",\"mass\":1,\"radius\":0.1,\"position\":[%zu,0,0]}",
                 i ? "," : "", i, i);
        l += (size_t)snprintf(s + l, cap - l, "%s", body);
    }
    snprintf(s + l, cap - l, "]}");
    CHECK(ph_exec(s, strlen(s), "steps=100000\n", SIZE_MAX, &out, &len, err) == P2C2R_EINVAL);
    CHECK(strstr(err, "steps x bodies = 100000000 is over the work limit") != NULL);
    /* The same scene with few steps runs, and its output over the peer's
     * limit is ETOOBIG with a reason. */
    CHECK(ph_exec(s, strlen(s), "steps=2\n", 1000, &out, &len, err) == P2C2R_ETOOBIG);
    CHECK(strstr(err, "over the output limit") != NULL && one_line(err));
    free(s);
    /* 5000 spheres piled on one spot: the first step is over its budget. */
    struct phys_scene sc;
    struct phys_config cfg;
    phys_config_init(&cfg);
    struct phys_body *pile = malloc(5000 * sizeof(*pile));
    for (int i = 0; i < 5000; i++)
        pile[i] = ph_sphere(i, 0.5, 1.0, 0.0, 0.0, 0.0);
    struct phys_world *w;
    if (CHECK(phys_world_new(&cfg, pile, 5000, NULL, 0, &w, err, sizeof(err)) == 0)) {
        CHECK(phys_world_step(w, err, sizeof(err)) == P2C2R_ETOOBIG);
        CHECK(strstr(err, "scene too dense in step 1") != NULL && one_line(err));
        phys_world_free(w);
    }
    free(pile);
    /* An input over PHYS_MAX_INPUT. */
    size_t big = (size_t)PHYS_MAX_INPUT + 1;
    s = malloc(big);
    memset(s, ' ', big);
    CHECK(phys_scene_parse(s, big, &sc, err, sizeof(err)) == P2C2R_ETOOBIG);
    CHECK(exec_physics.max_input == PHYS_MAX_INPUT);
    free(s);
    /* Deep nesting: refused by the JSON reader, not a stack overflow. */
    size_t depth = 100000;
    s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    CHECK(ph_exec(s, 2 * depth, NULL, SIZE_MAX, &out, &len, err) == P2C2R_EINVAL);
    free(s);
}

/* The C API checks what the JSON decoder would, including what JSON cannot
 * even express (NaN, infinities). */
static void c_api(void)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    struct phys_body b = ph_sphere(1, 0.5, 1.0, 0, 0, 0);
    struct phys_world *w = NULL;
    char err[256];
    b.mass = NAN;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL && w == NULL);
    CHECK(strstr(err, "bodies[0]: mass must be") != NULL);
    b.mass = 1.0;
    b.position.y = INFINITY;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL);
    b.position.y = 0.0;
    b.orientation.x = NAN;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL);
    b.orientation.x = 0.0;
    b.shape = (enum phys_shape)7;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL);
    b.shape = PHYS_SPHERE;
    cfg.dt = NAN;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(strstr(err, "dt must be") != NULL);
    cfg.dt = 0.01;
    cfg.gravity.z = -INFINITY;
    CHECK(phys_world_new(&cfg, &b, 1, NULL, 0, &w, err, sizeof(err)) == P2C2R_EINVAL);
    cfg.gravity.z = 0.0;
    struct phys_plane p = ph_ground(2);
    p.offset = NAN;
    CHECK(phys_world_new(&cfg, &b, 1, &p, 1, &w, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(strstr(err, "planes[0]: offset") != NULL);
    p.offset = 0.0;
    CHECK(phys_world_new(&cfg, &b, 1, &p, 1, &w, NULL, 0) == 0);
    phys_world_free(w);
    phys_world_free(NULL);
    struct phys_scene z = {0};
    phys_scene_fini(&z);
}

/* Good inputs at the edges: an empty scene, defaults, and the params. */
static void good(void)
{
    char *out = NULL, err[256];
    size_t len = 0;
    const char *empty = "{\"bodies\":[]}";
    if (CHECK(ph_exec(empty, strlen(empty), NULL, SIZE_MAX, &out, &len, err) == 0)) {
        CHECK(strcmp(out, "{\"steps\":60,\"dt\":0.016666666666666666,\"bodies\":[],\"contacts\":[]}\n") == 0);
        free(out);
    }
    const char *one = "{\"bodies\":[" S1 "}]}";
    if (CHECK(ph_exec(one, strlen(one), "steps=0\ndt=0.5\n", SIZE_MAX, &out, &len, err) == 0)) {
        CHECK(strstr(out, "\"steps\":0,\"dt\":0.5,") != NULL);
        CHECK(strstr(out, "\"position\":[0,1,0]") != NULL);
        free(out);
    }
    if (CHECK(ph_exec(one, strlen(one), "format=x\nsteps=1\n", SIZE_MAX, &out, &len, err) == 0)) {
        CHECK(strstr(out, "\"velocity\":[0,-0.16350000000000001,0]") != NULL);
        free(out);
    }
    CHECK(strcmp(exec_physics.name, "physics") == 0 && exec_physics.version == 1 && exec_physics.flags == P2C2R_EXEC_DETERMINISTIC);
}

int main(void)
{
    run_cases();
    limits();
    c_api();
    good();
    return check_report("test_physics_input");
}
