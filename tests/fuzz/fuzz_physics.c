/* fuzz_physics.c - libFuzzer target for the physics executor's scene
 * decoder (src/tasks/physics.c), and behind it a few steps of the
 * simulation and the encoder.
 *
 * Input: an optional first line "#PARAMS" whose rest, with '\t' standing
 * for '\n', is the task's params block (e.g. "#steps=3\tdt=0.01"), then the
 * JSON scene.  Invariants checked (abort on violation): a refusal comes with
 * a one-line reason; an accepted scene builds a world or is refused with a
 * reason; the encoded output is valid JSON with one entry per body; the
 * same input simulated twice gives the same bytes.  Steps are capped at 3
 * so that each input runs in milliseconds. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/physics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void need(int cond)
{
    if (!cond)
        abort();
}

static int reason_ok(const char *err)
{
    return err[0] != '\0' && strchr(err, '\n') == NULL;
}

/* Simulates the scene; returns the encoded output (malloc'd) or NULL. */
static char *simulate(const struct phys_scene *s, size_t *len)
{
    struct phys_world *w;
    char err[256] = "";
    int rc = phys_world_new(&s->cfg, s->bodies, s->nbodies, s->planes, s->nplanes, &w, err, sizeof(err));
    if (rc != 0) {
        need(reason_ok(err));
        return NULL;
    }
    char *out = NULL;
    rc = phys_world_run(w, err, sizeof(err));
    if (rc == 0)
        need(phys_world_to_json(w, &out, len) == 0);
    else
        need(reason_ok(err) && (rc == P2C2R_ETOOBIG || rc == P2C2R_ETASK || rc == P2C2R_ENOMEM));
    phys_world_free(w);
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char params[256];
    size_t pl = 0;
    const char *in = (const char *)data;
    if (size > 0 && in[0] == '#') {
        const char *nl = memchr(in, '\n', size);
        size_t l = nl ? (size_t)(nl - in) : size;
        for (size_t i = 1; i < l && pl < sizeof(params); i++)
            params[pl++] = in[i] == '\t' ? '\n' : in[i];
        in += nl ? l + 1 : l;
        size -= nl ? l + 1 : l;
    }
    struct phys_scene s;
    char err[256] = "";
    if (phys_scene_parse(in, size, &s, err, sizeof(err)) != 0) {
        need(reason_ok(err));
        return 0;
    }
    err[0] = '\0';
    if (phys_params_apply(params, pl, &s.cfg, err, sizeof(err)) != 0) {
        need(reason_ok(err));
        phys_scene_fini(&s);
        return 0;
    }
    if (s.cfg.steps > 3)
        s.cfg.steps = 3;
    size_t len = 0, len2 = 0;
    char *out = simulate(&s, &len);
    if (out) {
        json_error_t je;
        json_t *root = json_loadb(out, len, 0, &je);
        need(root != NULL);
        need(json_array_size(json_object_get(root, "bodies")) == s.nbodies);
        json_decref(root);
        char *again = simulate(&s, &len2);
        need(again && len2 == len && memcmp(again, out, len) == 0);
        free(again);
        free(out);
    }
    phys_scene_fini(&s);
    return 0;
}
