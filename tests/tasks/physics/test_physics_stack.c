/* test_physics_stack.c - a stack of boxes dropped onto the ground comes to
 * rest: after a few seconds every velocity is below a threshold, no two
 * boxes (or a box and the ground) overlap by more than the solver's slop
 * plus a small tolerance, and the stack still stands (each box above the
 * one below, upright, not slid off). */
#include <math.h>
#include <stdio.h>

#include "check.h"
#include "phys_testlib.h"

#define LEVELS 6

/* Runs a stack of LEVELS boxes of half extent h, each dropped from a small
 * gap above the one below (with a slight sideways offset when jitter, each
 * heavier than the one below by dmass), and checks it at rest after steps
 * steps.  With on_base the stack stands on a wide static box (mass 0), which
 * the broadphase keeps out of its grid, instead of the ground plane. */
static void stack(double h, double gap, double jitter, double dmass, uint32_t steps, int on_base)
{
    struct phys_config cfg;
    phys_config_init(&cfg);
    cfg.steps = steps;
    struct phys_body b[LEVELS + 1];
    size_t n = 0;
    double base = on_base ? 1.0 : 0.0; /* top of the base box */
    for (int i = 0; i < LEVELS; i++) {
        double off = jitter * ((i % 3) - 1);
        b[n++] = ph_box(i + 1, h, h, h, 1.0 + i * dmass, off, base + h + i * (2 * h + gap), -off);
    }
    if (on_base)
        b[n++] = ph_box(100, 5.0, 0.5, 5.0, 0.0, 0.0, 0.5, 0.0);
    struct phys_plane g = ph_ground(0);
    struct phys_world *w;
    char err[256];
    int rc = phys_world_new(&cfg, b, n, &g, on_base ? 0 : 1, &w, err, sizeof(err));
    if (!CHECK(rc == 0)) {
        fprintf(stderr, "world: %s\n", err);
        return;
    }
    rc = phys_world_run(w, err, sizeof(err));
    CHECK(rc == 0);
    size_t nb;
    const struct phys_body *s = phys_world_bodies(w, &nb);
    double vmax = 0, wmax = 0, pen = 0;
    for (size_t i = 0; i < nb; i++) {
        vmax = fmax(vmax, v3_len(s[i].velocity));
        wmax = fmax(wmax, v3_len(s[i].angular_velocity));
    }
    /* Overlap between neighbours: the boxes stay axis-aligned, so the
     * vertical gap of their centres tells it. */
    pen = fmax(pen, base + h - s[0].position.y);
    for (int i = 1; i < LEVELS; i++) {
        double p = 2 * h - (s[i].position.y - s[i - 1].position.y);
        pen = fmax(pen, p);
        CHECK(s[i].position.y > s[i - 1].position.y + 1.9 * h);
        CHECK(fabs(s[i].position.x - s[i - 1].position.x) < 0.5 * h);
        CHECK(fabs(s[i].position.z - s[i - 1].position.z) < 0.5 * h);
    }
    for (int i = 0; i < LEVELS; i++)
        CHECK(fabs(s[i].orientation.w) > 0.999); /* upright: less than ~5 degrees */
    if (on_base)
        CHECK(s[LEVELS].position.y == 0.5 && s[LEVELS].orientation.w == 1.0); /* static */
    printf("stack h=%g gap=%g jitter=%g dmass=%g steps=%u base=%d: max |v| %.3g, max |w| %.3g, "
           "max overlap %.4g\n", h, gap, jitter, dmass, steps, on_base, vmax, wmax, pen);
    CHECK(vmax < 0.02);
    CHECK(wmax < 0.05);
    CHECK(pen < PHYS_SLOP + 0.01);
    /* The last step found the whole column in contact: ground (or base)
     * and box, and each pair of neighbours.  A box may rest tilted within
     * the slop, so a corner can be just clear of the one below. */
    const struct phys_contact *ct;
    size_t nc;
    if (CHECK(phys_world_contacts(w, &ct, &nc) == 0) && CHECK(nc == LEVELS)) {
        for (size_t i = 0; i < nc; i++)
            if (!CHECK(ct[i].points >= 1 && ct[i].points <= 4))
                fprintf(stderr, "pair %lld-%lld: %u points, depth %g\n", (long long)ct[i].a, (long long)ct[i].b, ct[i].points, ct[i].depth);
    }
    phys_world_free(w);
}

int main(void)
{
    stack(0.5, 0.0, 0.0, 0.0, 300, 0);   /* touching, equal masses */
    stack(0.5, 0.05, 0.0, 0.5, 600, 0);  /* dropped, heavier on top */
    stack(0.25, 0.01, 0.02, 0.25, 900, 0); /* small, staggered, heavier on top */
    stack(0.5, 0.02, 0.03, 0.0, 360, 1); /* on a static box */
    return check_report("test_physics_stack");
}
