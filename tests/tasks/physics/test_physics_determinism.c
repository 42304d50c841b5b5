/* test_physics_determinism.c - the physics executor's output is a pure
 * function of its input: byte-identical run after run, from 8 threads at
 * once, and equal to a golden SHA-256 recorded when the solver last changed
 * (the same on every conforming compiler and platform: see the
 * floating-point notes in src/tasks/physics_world.c).  Also checks that the
 * output is well-formed JSON that reads back to the exact doubles.
 *
 * When the simulation changes on purpose, bump exec_physics.version and
 * replace GOLDEN with the hash this test prints. */
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "phys_testlib.h"

#define THREADS 8
#define GOLDEN "7b7615e98a1a6673c5f210606c6878e28a077152416c284c1c27805c2d625b9c"

static double rnd(uint64_t *r)
{
    *r = *r * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*r >> 11) / 9007199254740992.0;
}

/* A seeded scene: spheres and boxes, some turned and moving, over a ground
 * plane and a tilted wall, with a static box in the middle.  Every random
 * number is drawn in its own statement: the order in which a call's
 * arguments are evaluated is unspecified, and the scene must be the same
 * whichever compiler built the test. */
static char *scene_json(unsigned n, uint32_t steps)
{
    size_t cap = 512 + (size_t)n * 400, len = 0;
    char *s = malloc(cap);
    uint64_t r = 0x9e3779b97f4a7c15ull;
    len += (size_t)snprintf(s + len, cap - len,
                            "{\"steps\":%u,\"dt\":0.0166666,\"gravity\":[0,-9.81,0],\"planes\":["
                            "{\"id\":0,\"normal\":[0,1,0],\"offset\":0,\"friction\":0.6},"
                            "{\"id\":1,\"normal\":[-1,0.2,0],\"offset\":-6,\"restitution\":0.5}],\"bodies\":["
                            "{\"id\":2,\"shape\":\"box\",\"mass\":0,\"half_extents\":[1,0.5,1],\"position\":[0,0.5,0]}",
                            steps);
    for (unsigned i = 0; i < n; i++) {
        double v[12];
        for (int k = 0; k < 12; k++)
            v[k] = rnd(&r);
        double x = v[0] * 8 - 4, y = 1.5 + v[1] * 6, z = v[2] * 8 - 4;
        if (i % 2)
            len += (size_t)snprintf(s + len, cap - len,
                                    ",{\"id\":%u,\"shape\":\"sphere\",\"mass\":%.3f,\"radius\":%.3f,"
                                    "\"position\":[%.4f,%.4f,%.4f],\"velocity\":[%.3f,0,%.3f],"
                                    "\"restitution\":%.2f,\"friction\":%.2f}",
                                    10 + i, 0.5 + v[3], 0.2 + 0.2 * v[4], x, y, z, v[5] - 0.5, v[6] - 0.5,
                                    v[7] * 0.5, v[8]);
        else
            len += (size_t)snprintf(s + len, cap - len,
                                    ",{\"id\":%u,\"shape\":\"box\",\"mass\":%.3f,\"half_extents\":[%.3f,%.3f,%.3f],"
                                    "\"position\":[%.4f,%.4f,%.4f],\"orientation\":[%.4f,%.4f,%.4f,%.4f],"
                                    "\"angular_velocity\":[0,%.3f,0]}",
                                    10 + i, 0.5 + v[3], 0.15 + 0.2 * v[4], 0.15 + 0.2 * v[5], 0.15 + 0.2 * v[6],
                                    x, y, z, v[7], v[8] - 0.5, v[9] - 0.5, v[10] - 0.5, v[11] * 2);
    }
    snprintf(s + len, cap - len, "]}");
    return s;
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int ml = 0;
    EVP_Digest(p, n, md, &ml, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

struct job {
    const char *input;
    const char *ref;
    size_t ref_len;
    int same;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    char *out = NULL, err[256];
    size_t len = 0;
    j->same = 1;
    for (int k = 0; k < 2; k++) {
        int rc = ph_exec(j->input, strlen(j->input), "steps=90\n", SIZE_MAX, &out, &len, err);
        if (rc != 0 || len != j->ref_len || memcmp(out, j->ref, len) != 0)
            j->same = 0;
        free(out);
        out = NULL;
    }
    return NULL;
}

/* The output reads back as JSON with every body, and the numbers read back
 * are the very doubles of the world's state. */
static void check_json(const char *out, size_t len, const char *input)
{
    json_error_t je;
    json_t *root = json_loadb(out, len, 0, &je);
    if (!CHECK(root != NULL)) {
        fprintf(stderr, "output is not JSON: %s\n", je.text);
        return;
    }
    struct phys_scene sc;
    char err[256];
    CHECK(phys_scene_parse(input, strlen(input), &sc, err, sizeof(err)) == 0);
    sc.cfg.steps = 90;
    struct phys_world *w;
    CHECK(phys_world_new(&sc.cfg, sc.bodies, sc.nbodies, sc.planes, sc.nplanes, &w, err, sizeof(err)) == 0);
    CHECK(phys_world_run(w, err, sizeof(err)) == 0);
    size_t nb;
    const struct phys_body *b = phys_world_bodies(w, &nb);
    json_t *bodies = json_object_get(root, "bodies");
    CHECK(json_integer_value(json_object_get(root, "steps")) == 90);
    CHECK(json_array_size(bodies) == nb);
    int exact = 1;
    for (size_t i = 0; i < nb && i < json_array_size(bodies); i++) {
        json_t *o = json_array_get(bodies, i);
        json_t *pos = json_object_get(o, "position"), *q = json_object_get(o, "orientation");
        exact &= json_integer_value(json_object_get(o, "id")) == b[i].id;
        exact &= json_number_value(json_array_get(pos, 0)) == b[i].position.x;
        exact &= json_number_value(json_array_get(pos, 1)) == b[i].position.y;
        exact &= json_number_value(json_array_get(pos, 2)) == b[i].position.z;
        exact &= json_number_value(json_array_get(q, 0)) == b[i].orientation.w;
        exact &= json_number_value(json_array_get(q, 3)) == b[i].orientation.z;
    }
    CHECK(exact);
    json_t *contacts = json_object_get(root, "contacts");
    CHECK(json_is_array(contacts) && json_array_size(contacts) > 0);
    phys_world_free(w);
    phys_scene_fini(&sc);
    json_decref(root);
}

int main(void)
{
    char *input = scene_json(200, 90);
    char *ref = NULL, *out = NULL, err[256];
    size_t ref_len = 0, len = 0;
    int rc = ph_exec(input, strlen(input), "steps=90\n", SIZE_MAX, &ref, &ref_len, err);
    if (!CHECK(rc == 0)) {
        fprintf(stderr, "physics failed: %s\n", err);
        return check_report("test_physics_determinism");
    }
    /* Run after run. */
    for (int k = 0; k < 2; k++) {
        CHECK(ph_exec(input, strlen(input), "steps=90\n", SIZE_MAX, &out, &len, err) == 0);
        CHECK_MEM(out, len, ref, ref_len);
        free(out);
    }
    /* Concurrently: every thread's every run gives the same bytes. */
    pthread_t th[THREADS];
    struct job jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (struct job){input, ref, ref_len, 0};
        CHECK(pthread_create(&th[i], NULL, worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].same);
    }
    /* Params change the result; the same params give the same result. */
    CHECK(ph_exec(input, strlen(input), "steps=91\n", SIZE_MAX, &out, &len, err) == 0);
    CHECK(len != ref_len || memcmp(out, ref, len) != 0);
    free(out);
    check_json(ref, ref_len, input);
    char hex[65];
    sha256_hex(ref, ref_len, hex);
    printf("output: %zu bytes, sha256 %s\n", ref_len, hex);
    if (!CHECK(strcmp(hex, GOLDEN) == 0))
        fprintf(stderr, "output differs from the golden hash %s: a change in the simulation (bump "
                        "exec_physics.version and update GOLDEN) or a non-conforming float setup\n", GOLDEN);
    free(ref);
    free(input);
    return check_report("test_physics_determinism");
}
