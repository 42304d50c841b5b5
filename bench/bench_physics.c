/* bench_physics.c - steps per second of the physics executor's simulation
 * (src/tasks/physics_world.c), one thread.
 *
 * Scene: N bodies, alternately spheres (radius 0.3) and boxes (half extent
 * 0.25, turned a little), in a square lattice of 10 layers a few centimetres
 * apart just above a ground plane, so that they land, pile up and collide
 * for most of the measured steps: the busy case, not free fall.  Each run
 * builds a fresh world and times `--steps` steps of 1/60 s with the default
 * 20 solver iterations; the table shows the median of `--runs` runs, and a
 * hash of the final state shows that every run computed the same thing.
 *
 * Usage: bench_physics [--runs R] [--steps S] [--bodies N[,N...]]
 * Prints a table, then one JSON line. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tasks/physics.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The lattice of n bodies described above. */
static struct phys_body *make_scene(size_t n)
{
    struct phys_body *b = calloc(n, sizeof(*b));
    if (!b)
        return NULL;
    size_t layers = 10, per_layer = (n + layers - 1) / layers;
    size_t side = (size_t)ceil(sqrt((double)per_layer));
    double pitch = 0.75;
    for (size_t i = 0; i < n; i++) {
        size_t layer = i / per_layer, k = i % per_layer;
        double x = ((double)(k % side) - side / 2.0) * pitch + 0.05 * (double)(layer % 2);
        double z = ((double)(k / side) - side / 2.0) * pitch;
        struct phys_body *p = &b[i];
        p->id = (int64_t)i + 1;
        p->mass = 1.0 + 0.25 * (double)(i % 3);
        p->position = v3(x, 0.35 + 0.7 * (double)layer, z);
        p->orientation = (struct phys_quat){1.0, 0.0, 0.0, 0.0};
        p->friction = 0.5;
        p->restitution = 0.1;
        if (i % 2) {
            p->shape = PHYS_SPHERE;
            p->size = v3(0.3, 0.3, 0.3);
        } else {
            p->shape = PHYS_BOX;
            p->size = v3(0.25, 0.25, 0.25);
            p->orientation = (struct phys_quat){0.9961947, 0.0, 0.0871557, 0.0}; /* 10 degrees about y */
        }
    }
    return b;
}

/* FNV-1a over the final positions' bits. */
static uint64_t state_hash(const struct phys_world *w)
{
    size_t n;
    const struct phys_body *b = phys_world_bodies(w, &n);
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)&b[i].position;
        for (size_t k = 0; k < sizeof(b[i].position); k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

struct result {
    size_t bodies;
    uint32_t steps;
    double median_s, min_s, max_s;
    size_t contacts;
    int same;
};

static int bench(size_t n, uint32_t steps, int runs, struct result *r)
{
    struct phys_body *bodies = make_scene(n);
    struct phys_plane ground = {0, {0.0, 1.0, 0.0}, 0.0, 0.1, 0.5};
    ground.id = (int64_t)n + 1;
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.steps = steps;
    double *t = calloc((size_t)runs, sizeof(double));
    if (!bodies || !t)
        return -1;
    uint64_t first = 0;
    r->same = 1;
    for (int k = 0; k < runs; k++) {
        struct phys_world *w;
        char err[256];
        if (phys_world_new(&cfg, bodies, n, &ground, 1, &w, err, sizeof(err)) != 0) {
            fprintf(stderr, "bench_physics: %s\n", err);
            return -1;
        }
        double t0 = now_s();
        int rc = phys_world_run(w, err, sizeof(err));
        t[k] = now_s() - t0;
        if (rc != 0) {
            fprintf(stderr, "bench_physics: %s\n", err);
            phys_world_free(w);
            return -1;
        }
        uint64_t h = state_hash(w);
        if (k == 0)
            first = h;
        r->same &= h == first;
        const struct phys_contact *c;
        size_t nc = 0;
        if (phys_world_contacts(w, &c, &nc) == 0)
            r->contacts = nc;
        phys_world_free(w);
    }
    qsort(t, (size_t)runs, sizeof(double), cmp_double);
    r->bodies = n;
    r->steps = steps;
    r->median_s = runs % 2 ? t[runs / 2] : 0.5 * (t[runs / 2 - 1] + t[runs / 2]);
    r->min_s = t[0];
    r->max_s = t[runs - 1];
    free(t);
    free(bodies);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 5;
    uint32_t steps = 120;
    size_t sizes[8] = {1000, 10000};
    int nsizes = 2;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--steps") && i + 1 < argc) {
            steps = (uint32_t)atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--bodies") && i + 1 < argc) {
            nsizes = 0;
            for (char *s = strtok(argv[++i], ","); s && nsizes < 8; s = strtok(NULL, ","))
                sizes[nsizes++] = (size_t)atol(s);
        } else {
            fprintf(stderr, "usage: %s [--runs R] [--steps S] [--bodies N[,N...]]\n", argv[0]);
            return 2;
        }
    }
    if (runs < 1 || runs > 1000 || steps < 1 || steps > PHYS_MAX_STEPS) {
        fprintf(stderr, "bench_physics: --runs must be 1..1000 and --steps 1..%d\n", PHYS_MAX_STEPS);
        return 2;
    }
    struct result res[8];
    printf("physics: %u steps of 1/60 s, %d solver iterations, median of %d runs, one thread\n\n", steps,
           PHYS_DEFAULT_ITERATIONS, runs);
    printf("%8s %10s %12s %16s %10s %10s %9s\n", "bodies", "steps/s", "ms/step", "body-steps/s", "min ms/st",
           "max ms/st", "contacts");
    for (int i = 0; i < nsizes; i++) {
        if (bench(sizes[i], steps, runs, &res[i]) != 0)
            return 1;
        const struct result *r = &res[i];
        printf("%8zu %10.1f %12.3f %16.0f %10.3f %10.3f %9zu%s\n", r->bodies, r->steps / r->median_s,
               1e3 * r->median_s / r->steps, r->bodies * (double)r->steps / r->median_s,
               1e3 * r->min_s / r->steps, 1e3 * r->max_s / r->steps, r->contacts,
               r->same ? "" : "  (runs differ!)");
        fflush(stdout);
    }
    printf("\n{\"bench\":\"physics\",\"steps\":%u,\"iterations\":%d,\"runs\":%d,\"results\":[", steps,
           PHYS_DEFAULT_ITERATIONS, runs);
    for (int i = 0; i < nsizes; i++) {
        const struct result *r = &res[i];
        printf("%s{\"bodies\":%zu,\"steps_per_s\":%.2f,\"ms_per_step\":%.4f,\"body_steps_per_s\":%.0f,"
               "\"contacts\":%zu,\"deterministic\":%s}",
               i ? "," : "", r->bodies, r->steps / r->median_s, 1e3 * r->median_s / r->steps,
               r->bodies * (double)r->steps / r->median_s, r->contacts, r->same ? "true" : "false");
    }
    printf("]}\n");
    return 0;
}
