/* raytrace_render.c - the path tracer: camera rays, the counter-based
 * random numbers, materials, direct light sampling, tone mapping, and the
 * tile and cost-estimate loops.
 *
 * Invariants that make output deterministic to the byte:
 *   - a pixel's value depends only on (scene, x, y, spp): each sample draws
 *     from its own stream keyed by (frame seed, x, y, sample index) through
 *     a counter-based hash, so no state flows between pixels, tiles or
 *     threads, and a tile renders the same bytes however the frame is split;
 *   - the evaluation order is fixed (samples in index order, lights in scene
 *     order) and the arithmetic is + - * / and sqrt only, which IEEE 754
 *     rounds identically everywhere (contraction into FMA is disabled); the
 *     sRGB curve is a table of constants, not a call to pow;
 *   - no uninitialised memory reaches the output.
 * Work is bounded: at most max_depth segments per sample (fewer on average:
 * Russian roulette ends dim paths early), one shadow ray per light per
 * diffuse hit, and rejection samplers give up after 64 draws.
 * Everything here is reentrant: the scene is read-only, state is on the stack. */
#include "tasks/raytrace_scene.h"
#include "tasks/tasks.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

#define PI 3.14159265358979323846
#define REJECT_TRIES 64
#define RR_DEPTH 3 /* segments before Russian roulette starts */

/* ---- random numbers ------------------------------------------------------------ */

/* The SplitMix64 finaliser: a bijective 64-bit mix with full avalanche. */
static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

#define GOLDEN UINT64_C(0x9e3779b97f4a7c15)

/* A sample's random stream: draw i is mix64(key + i * GOLDEN), with key a
 * hash of (seed, x, y, sample).  No state but the counter. */
struct rng {
    uint64_t key, ctr;
};

static void rng_init(struct rng *g, uint64_t seed, uint32_t x, uint32_t y, uint32_t sample)
{
    uint64_t k = mix64(seed + GOLDEN);
    k = mix64(k ^ ((uint64_t)y << 32 | x));
    k = mix64(k ^ ((uint64_t)sample * GOLDEN));
    g->key = k;
    g->ctr = 0;
}

/* Uniform in [0, 1) with 53 random bits. */
static double rng_u01(struct rng *g)
{
    g->ctr++;
    return (double)(mix64(g->key + g->ctr * GOLDEN) >> 11) * 0x1p-53;
}

/* A uniform point in the unit disk, by rejection from the square. */
static void sample_disk(struct rng *g, double *x, double *y)
{
    for (int i = 0; i < REJECT_TRIES; i++) {
        double a = 2.0 * rng_u01(g) - 1.0, b = 2.0 * rng_u01(g) - 1.0;
        if (a * a + b * b <= 1.0) {
            *x = a;
            *y = b;
            return;
        }
    }
    *x = *y = 0.0;
}

/* A uniform direction in the plane (cos phi, sin phi) without sin/cos. */
static void sample_circle(struct rng *g, double *c, double *s)
{
    for (int i = 0; i < REJECT_TRIES; i++) {
        double a = 2.0 * rng_u01(g) - 1.0, b = 2.0 * rng_u01(g) - 1.0;
        double r2 = a * a + b * b;
        if (r2 <= 1.0 && r2 > 1e-12) {
            double inv = 1.0 / sqrt(r2);
            *c = a * inv;
            *s = b * inv;
            return;
        }
    }
    *c = 1.0;
    *s = 0.0;
}

/* A uniform point in the unit ball. */
static struct rt_v3 sample_ball(struct rng *g)
{
    for (int i = 0; i < REJECT_TRIES; i++) {
        /* One draw per statement: the order in which function arguments
         * are evaluated is unspecified, and compilers differ. */
        double x = 2.0 * rng_u01(g) - 1.0;
        double y = 2.0 * rng_u01(g) - 1.0;
        double z = 2.0 * rng_u01(g) - 1.0;
        struct rt_v3 p = v3(x, y, z);
        if (v3_dot(p, p) <= 1.0)
            return p;
    }
    return v3(0, 0, 0);
}

/* An orthonormal basis (t, b, n) around unit n (Duff et al. 2017). */
static void onb(struct rt_v3 n, struct rt_v3 *t, struct rt_v3 *b)
{
    double sign = n.z >= 0.0 ? 1.0 : -1.0;
    double a = -1.0 / (sign + n.z);
    double bb = n.x * n.y * a;
    *t = v3(1.0 + sign * n.x * n.x * a, sign * bb, -sign * n.x);
    *b = v3(bb, sign + n.y * n.y * a, -n.y);
}

/* ---- tone mapping ------------------------------------------------------------- */

/* SRGB_T[k - 1] is the linear value at which the 8-bit sRGB code reaches k:
 * the sRGB decoding of (k - 0.5) / 255.  A code is the number of thresholds
 * at or below the value, so no pow() is evaluated at run time. */
static const double SRGB_T[255] = {
    0.00015176349177441876, 0.00045529047532325625, 0.0007588174588720937, 0.0010623444424209313,
    0.0013658714259697686, 0.0016693984095186062, 0.0019729253930674436, 0.002276452376616281,
    0.0025799793601651187, 0.0028835063437139563, 0.003188300904430532, 0.00350925934958123,
    0.0038483149330964263, 0.004205748030104947, 0.00458183274052838, 0.004976837250274023,
    0.005391024159806381, 0.005824650784040898, 0.006277969426914108, 0.006751227633498623,
    0.007244668422128921, 0.00775853049866786, 0.00829304845476233, 0.008848452951698497,
    0.00942497089126609, 0.010022825574869039, 0.010642236851973576, 0.011283421258858298,
    0.01194659214852213, 0.012631959812511863, 0.013339731595349034, 0.01407011200216447,
    0.014823302800086416, 0.015599503113873273, 0.016398909516233677, 0.017221716113234104,
    0.018068114625156378, 0.018938294463134074, 0.019832442801866853, 0.02075074464868551,
    0.021693382909216234, 0.022660538449872064, 0.023652390157379497, 0.024669114995532006,
    0.025710888059345766, 0.026777882626779784, 0.02787027020816926, 0.028988220593509972,
    0.030131901897720907, 0.03130148060400286, 0.032497121605402225, 0.033718988244681086,
    0.03496724235258795, 0.03624204428461639, 0.03754355295633311, 0.03887192587735158,
    0.040227319184021844, 0.04160988767090289, 0.04301978482107941, 0.04445716283538092,
    0.04592217266055746, 0.04741496401646282, 0.04893568542229298, 0.05048448422192488,
    0.0520615066083972, 0.053666897647573375, 0.05530080130102386, 0.05696336044816294,
    0.05865471690767354, 0.06037501145825081, 0.062124383858694746, 0.06390297286737924,
    0.0657109162611246, 0.06754835085349804, 0.06941541251256611, 0.07131223617812144,
    0.07323895587840543, 0.07519570474634667, 0.07718261503533434, 0.07919981813454503,
    0.08124744458384041, 0.08332562408825164, 0.08543448553206703, 0.08757415699253683,
    0.08974476575321062, 0.09194643831691977, 0.09417930041841839, 0.09644347703669504,
    0.09873909240696693, 0.1010662700323678, 0.10342513269534023, 0.1058158024687427,
    0.10823840072668099, 0.11069304815507364, 0.11317986476196008, 0.1156989698875601,
    0.11825048221409341, 0.12083451977536606, 0.12345119996613248, 0.12610063955123937,
    0.1287829546745594, 0.13149826086772048, 0.1342466730586372, 0.13702830557985107,
    0.13984327217668513, 0.14269168601521828, 0.1455736596900856, 0.1484893052321087,
    0.15143873411576272, 0.1544220572664832, 0.1574393850678189, 0.1604908273684337,
    0.16357649348896341, 0.1666964922287304, 0.16985093187232053, 0.17303992019602688,
    0.1762635644741625, 0.17952197148524762, 0.18281524751807332, 0.18614349837764563,
    0.1895068293910138, 0.19290534541298454, 0.19633915083172693, 0.1998083495742689,
    0.2033130451118907, 0.206853340465415, 0.21042933821039977, 0.21404114048223255,
    0.21768884898113222, 0.2213725649770588, 0.2250923893145328, 0.22884842241736916,
    0.23264076429332461, 0.23646951453866302, 0.24033477234264017, 0.2442366364919083,
    0.24817520537484558, 0.2521505769858089, 0.2561628489293138, 0.26021211842414343,
    0.2642984823073866, 0.2684220370384083, 0.27258287870275355, 0.27678110301598524,
    0.2810168053274597, 0.28529008062403893, 0.28960102353374223, 0.2939497283293396,
    0.2983362889318845, 0.30276079891419333, 0.3072233515042663, 0.31172403958865513,
    0.3162629557157785, 0.3208401920991837, 0.32545584062075916, 0.33010999283389664,
    0.33480273996660304, 0.33953417292456833, 0.34430438229418264, 0.3491134583455109,
    0.35396149103522073, 0.35884857000946707, 0.3637747846067349, 0.3687402238606382,
    0.3737449765026789, 0.3787891309649659, 0.3838727753828926, 0.3889959975977785,
    0.3941588851594697, 0.3993615253289054, 0.4046040050806454, 0.4098864111053629,
    0.41520882981230195, 0.4205713473317016, 0.425974049517184, 0.4314170219481122,
    0.43690034993191296, 0.4424241185063697, 0.44798841244188325, 0.4535933162437017,
    0.45923891415412094, 0.4649252901546552, 0.4706525279681792, 0.4764207110610409,
    0.4822299226451468, 0.4880802456800205, 0.49397176287483296, 0.49990455669040795,
    0.5058787093411998, 0.5118943027972472, 0.5179514187861014, 0.5240501387947288,
    0.530190544071392, 0.5363727156275037, 0.5425967342394598, 0.5488626804504493,
    0.5551706345722394, 0.5615206766869424, 0.5679128866487574, 0.5743473440856917,
    0.5808241284012621, 0.5873433187761736, 0.5939049941699807, 0.6005092333227251,
    0.6071561147565558, 0.6138457167773311, 0.620578117476199, 0.627353394731159,
    0.6341716262086091, 0.6410328893648692, 0.647937261447692, 0.6548848194977529,
    0.6618756403501225, 0.6689098006357259, 0.6759873767827809, 0.6831084450182222,
    0.6902730813691093, 0.6974813616640164, 0.7047333615344107, 0.7120291564160104,
    0.7193688215501313, 0.7267524319850172, 0.7341800625771542, 0.7416517879925734,
    0.749167682708136, 0.7567278210128072, 0.7643322770089146, 0.7719811246133931,
    0.7796744375590167, 0.7874122893956174, 0.7951947534912903, 0.8030219030335869,
    0.8108938110306934, 0.8188105503125999, 0.8267721935322541, 0.834778813166706,
    0.8428304815182371, 0.8509272707154808, 0.8590692527145302, 0.8672564993000342,
    0.8754890820862818, 0.8837670725182769, 0.892090541872801, 0.9004595612594655,
    0.9088742016217518, 0.9173345337380439, 0.9258406282226491, 0.9343925555268067,
    0.9429903859396902, 0.9516341895893968, 0.9603240364439274, 0.969059996312159,
    0.9778421388448044, 0.986670533535366, 0.9955452497210776,
};

static uint8_t srgb8(double v)
{
    if (!(v > 0.0))
        return 0; /* also NaN */
    int lo = 0, hi = 255;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (SRGB_T[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint8_t)lo;
}

/* ---- shading ------------------------------------------------------------------ */

struct surf {
    struct rt_v3 n; /* unit geometric normal facing the incoming ray */
    int front;      /* the ray hit the side the primitive's normal points to */
    uint32_t mat;
    int32_t light;  /* the light this surface is, or -1 */
};

static void surface(const struct rt_scene *s, uint32_t prim, struct rt_v3 p, struct rt_v3 d,
                    struct surf *out)
{
    struct rt_v3 n;
    out->light = -1;
    if (prim < s->nspheres) {
        const struct rt_sphere *sp = &s->spheres[prim];
        n = v3_scale(v3_sub(p, sp->c), 1.0 / sp->r);
        out->mat = sp->mat;
        out->light = sp->light;
    } else if (prim - s->nspheres < s->nquads) {
        const struct rt_quad *q = &s->quads[prim - s->nspheres];
        n = q->n;
        out->mat = q->mat;
        out->light = q->light;
    } else if (prim < s->nprims) {
        uint32_t tri = prim - s->nspheres - s->nquads;
        const uint32_t *ix = s->tris + (size_t)tri * 3;
        const float *a = s->verts + (size_t)ix[0] * 3, *b = s->verts + (size_t)ix[1] * 3,
                    *c = s->verts + (size_t)ix[2] * 3;
        struct rt_v3 e1 = v3((double)b[0] - a[0], (double)b[1] - a[1], (double)b[2] - a[2]);
        struct rt_v3 e2 = v3((double)c[0] - a[0], (double)c[1] - a[1], (double)c[2] - a[2]);
        n = v3_cross(e1, e2);
        double len = v3_len(n);
        n = len > 0.0 ? v3_scale(n, 1.0 / len) : v3_scale(d, -1.0);
        out->mat = s->tri_mat[tri];
    } else {
        const struct rt_plane *pl = &s->planes[prim - s->nprims];
        n = pl->n;
        out->mat = pl->mat;
    }
    out->front = v3_dot(d, n) < 0.0;
    out->n = out->front ? n : v3_scale(n, -1.0);
}

/* Light arriving at p (normal n) straight from every light, weighted by the
 * cosine at p; the caller multiplies by the BRDF albedo / pi. */
static struct rt_v3 direct_light(const struct rt_scene *s, struct rt_v3 p, struct rt_v3 n,
                                 struct rng *g, uint64_t *work)
{
    struct rt_v3 sum = v3(0, 0, 0);
    for (uint32_t i = 0; i < s->nlights; i++) {
        const struct rt_light *l = &s->lights[i];
        struct rt_ray r;
        if (l->kind == RT_LIGHT_POINT) {
            struct rt_v3 wi = v3_sub(l->pos, p);
            double d2 = v3_dot(wi, wi);
            if (!(d2 > 0.0))
                continue;
            double dist = sqrt(d2);
            wi = v3_scale(wi, 1.0 / dist);
            double cs = v3_dot(n, wi);
            if (cs <= 0.0)
                continue;
            rt_ray_init(&r, p, wi);
            if (rt_trace_occluded(s, &r, dist, UINT32_MAX, work))
                continue;
            sum = v3_madd(sum, l->intensity, cs / d2);
        } else if (l->kind == RT_LIGHT_RECT) {
            const struct rt_quad *q = &s->quads[l->shape];
            double u1 = rng_u01(g), u2 = rng_u01(g);
            struct rt_v3 x = v3_madd(v3_madd(q->o, q->e1, u1), q->e2, u2);
            struct rt_v3 wi = v3_sub(x, p);
            double d2 = v3_dot(wi, wi);
            if (!(d2 > 0.0))
                continue;
            double dist = sqrt(d2);
            wi = v3_scale(wi, 1.0 / dist);
            double cs = v3_dot(n, wi), cl = -v3_dot(q->n, wi);
            if (cs <= 0.0 || cl <= 0.0)
                continue;
            rt_ray_init(&r, p, wi);
            if (rt_trace_occluded(s, &r, dist, l->prim, work))
                continue;
            sum = v3_madd(sum, l->intensity, cs * cl * l->area / d2);
        } else {
            const struct rt_sphere *sp = &s->spheres[l->shape];
            struct rt_v3 oc = v3_sub(sp->c, p);
            double d2 = v3_dot(oc, oc), r2 = sp->r * sp->r;
            if (d2 <= r2)
                continue;
            /* Uniform over the cone the sphere subtends: pdf 1 / (2 pi (1 - cos_max)). */
            double sin2 = r2 / d2, cosmax = sqrt(1.0 - sin2), omc = sin2 / (1.0 + cosmax);
            double u1 = rng_u01(g), cp, spn;
            sample_circle(g, &cp, &spn);
            double k = u1 * omc, cos_t = 1.0 - k, sin_t = sqrt(k * (2.0 - k));
            struct rt_v3 w = v3_scale(oc, 1.0 / sqrt(d2)), tu, tv;
            onb(w, &tu, &tv);
            struct rt_v3 wi = v3_madd(v3_madd(v3_scale(w, cos_t), tu, sin_t * cp), tv, sin_t * spn);
            double cs = v3_dot(n, wi);
            if (cs <= 0.0)
                continue;
            rt_ray_init(&r, p, wi);
            double tl = rt_sphere_hit(sp, &r);
            if (tl == INFINITY || rt_trace_occluded(s, &r, tl, l->prim, work))
                continue;
            sum = v3_madd(sum, l->intensity, cs * 2.0 * PI * omc);
        }
    }
    return sum;
}

/* Offset along the normal that lifts a new ray off its surface. */
static double surface_eps(struct rt_v3 p)
{
    return 1e-7 * (1.0 + v3_maxabs(p));
}

/* Radiance arriving along the unit ray (o, d). */
static struct rt_v3 radiance(const struct rt_scene *s, struct rt_v3 o, struct rt_v3 d, struct rng *g,
                             uint64_t *work)
{
    struct rt_v3 L = v3(0, 0, 0), beta = v3(1, 1, 1);
    int specular = 1; /* camera ray or mirror-like bounce: area lights count when hit */
    for (uint32_t depth = 0; depth < s->max_depth; depth++) {
        struct rt_ray r;
        double t;
        uint32_t prim;
        rt_ray_init(&r, o, d);
        if (!rt_trace_closest(s, &r, INFINITY, &t, &prim, work)) {
            L = v3_add(L, v3_mul(beta, s->background));
            break;
        }
        struct rt_v3 p = v3_madd(o, d, t);
        struct surf sf;
        surface(s, prim, p, d, &sf);
        const struct rt_material *m = &s->mats[sf.mat];
        if (m->kind == RT_MAT_EMISSIVE) {
            /* Lights were already sampled directly at diffuse hits, so a
             * diffuse bounce that finds one adds nothing (no double count).
             * A rect light emits only from its front side. */
            int back_of_rect = sf.light >= 0 && s->lights[sf.light].kind == RT_LIGHT_RECT && !sf.front;
            if ((sf.light < 0 || specular) && !back_of_rect)
                L = v3_add(L, v3_mul(beta, m->emission));
            break;
        }
        double eps = surface_eps(p);
        struct rt_v3 up = v3_madd(p, sf.n, eps);
        if (m->kind == RT_MAT_DIFFUSE) {
            struct rt_v3 e = direct_light(s, up, sf.n, g, work);
            L = v3_add(L, v3_mul(beta, v3_scale(v3_mul(m->albedo, e), 1.0 / PI)));
            /* Cosine-weighted bounce: BRDF * cos / pdf = albedo. */
            double x, y, z;
            struct rt_v3 tu, tv;
            sample_disk(g, &x, &y);
            z = 1.0 - x * x - y * y;
            z = z > 0.0 ? sqrt(z) : 0.0;
            onb(sf.n, &tu, &tv);
            d = v3_norm(v3_madd(v3_madd(v3_scale(sf.n, z), tu, x), tv, y));
            o = up;
            beta = v3_mul(beta, m->albedo);
            specular = 0;
        } else if (m->kind == RT_MAT_METAL) {
            struct rt_v3 rd = v3_madd(d, sf.n, -2.0 * v3_dot(d, sf.n));
            if (m->fuzz > 0.0)
                rd = v3_madd(rd, sample_ball(g), m->fuzz);
            if (v3_dot(rd, sf.n) <= 0.0)
                break; /* scattered below the surface: absorbed */
            d = v3_norm(rd);
            o = up;
            beta = v3_mul(beta, m->albedo);
            specular = 1;
        } else {
            double eta = sf.front ? 1.0 / m->ior : m->ior;
            double cos_i = -v3_dot(d, sf.n);
            cos_i = cos_i > 1.0 ? 1.0 : cos_i;
            double sin2_t = eta * eta * (1.0 - cos_i * cos_i);
            double r0 = (1.0 - m->ior) / (1.0 + m->ior), om = 1.0 - cos_i;
            r0 *= r0;
            double fres = r0 + (1.0 - r0) * om * om * om * om * om; /* Schlick */
            if (sin2_t > 1.0 || rng_u01(g) < fres) {
                d = v3_norm(v3_madd(d, sf.n, 2.0 * cos_i));
                o = up;
            } else {
                d = v3_norm(v3_madd(v3_scale(d, eta), sf.n, eta * cos_i - sqrt(1.0 - sin2_t)));
                o = v3_madd(p, sf.n, -eps);
            }
            beta = v3_mul(beta, m->albedo);
            specular = 1;
        }
        /* Russian roulette from the fourth segment on: a path carrying
         * little goes on with probability keep and is reweighted by 1 / keep,
         * which keeps the estimate unbiased and cuts the cost of deep paths. */
        double pmax = beta.x > beta.y ? beta.x : beta.y;
        pmax = beta.z > pmax ? beta.z : pmax;
        if (!(pmax > 0.0))
            break;
        if (depth + 1 >= RR_DEPTH) {
            double keep = pmax < 0.95 ? pmax : 0.95;
            if (rng_u01(g) >= keep)
                break;
            beta = v3_scale(beta, 1.0 / keep);
        }
    }
    return L;
}

/* The unit direction of the camera ray through frame point (fx, fy). */
static struct rt_v3 camera_dir(const struct rt_scene *s, double fx, double fy)
{
    const struct rt_camera *k = &s->cam;
    double aspect = (double)s->width / (double)s->height;
    double u = (2.0 * fx / (double)s->width - 1.0) * k->tan_half * aspect;
    double v = (1.0 - 2.0 * fy / (double)s->height) * k->tan_half;
    return v3_norm(v3_madd(v3_madd(k->fwd, k->right, u), k->up, v));
}

static double finite_or_zero(double x, double clamp)
{
    if (!isfinite(x) || x < 0.0)
        return 0.0;
    return clamp > 0.0 && x > clamp ? clamp : x;
}

static void render_pixel(const struct rt_scene *s, uint32_t x, uint32_t y, uint32_t spp, uint8_t *px)
{
    struct rt_v3 sum = v3(0, 0, 0);
    uint64_t work = 0;
    for (uint32_t i = 0; i < spp; i++) {
        struct rng g;
        rng_init(&g, s->seed, x, y, i);
        double sx = 0.5, sy = 0.5;
        if (spp > 1) {
            sx = rng_u01(&g);
            sy = rng_u01(&g);
        }
        struct rt_v3 d = camera_dir(s, (double)x + sx, (double)y + sy);
        struct rt_v3 L = radiance(s, s->cam.pos, d, &g, &work);
        sum.x += finite_or_zero(L.x, s->clamp);
        sum.y += finite_or_zero(L.y, s->clamp);
        sum.z += finite_or_zero(L.z, s->clamp);
    }
    double k = s->exposure / (double)spp;
    px[0] = srgb8(sum.x * k);
    px[1] = srgb8(sum.y * k);
    px[2] = srgb8(sum.z * k);
    px[3] = 255;
}

static int render_fail(char *err, size_t cap, const char *msg)
{
    if (err && cap)
        snprintf(err, cap, "%s", msg);
    return P2C2R_EINVAL;
}

int rt_render_tile(const struct rt_scene *s, const struct rt_tile *t, uint32_t spp, uint8_t *rgba,
                   size_t stride, char *err, size_t err_cap)
{
    return rt_render_tile_cancel(s, t, spp, rgba, stride, NULL, err, err_cap);
}

int rt_render_tile_cancel(const struct rt_scene *s, const struct rt_tile *t, uint32_t spp,
                          uint8_t *rgba, size_t stride, const int *cancel, char *err,
                          size_t err_cap)
{
    if (t->w == 0 || t->h == 0)
        return render_fail(err, err_cap, "tile is empty (w and h must be at least 1)");
    if (t->x >= s->width || t->y >= s->height || t->w > s->width - t->x || t->h > s->height - t->y)
        return render_fail(err, err_cap, "tile is not inside the frame");
    if (spp == 0 || spp > RT_MAX_SPP)
        return render_fail(err, err_cap, "spp must be 1..4096");
    if (stride < (size_t)t->w * 4)
        return render_fail(err, err_cap, "row stride is smaller than 4 * tile width");
    for (uint32_t j = 0; j < t->h; j++) {
        uint8_t *row = rgba + (size_t)j * stride;
        for (uint32_t i = 0; i < t->w; i++) {
            if (tasks_cancelled(cancel)) {
                if (err && err_cap)
                    snprintf(err, err_cap, "cancelled at row %u of %u", j, t->h);
                return P2C2R_ECANCELLED;
            }
            render_pixel(s, t->x + i, t->y + j, spp, row + (size_t)i * 4);
        }
    }
    return 0;
}

void rt_estimate_rows(const struct rt_scene *s, uint32_t step, double *row_cost)
{
    step = step < 1 ? 1 : step > 256 ? 256 : step;
    for (uint32_t y0 = 0; y0 < s->height; y0 += step) {
        uint32_t y1 = s->height - y0 > step ? y0 + step : s->height;
        uint32_t sy = y0 + (y1 - y0) / 2;
        double band = 0.0;
        for (uint32_t x0 = 0; x0 < s->width; x0 += step) {
            uint32_t x1 = s->width - x0 > step ? x0 + step : s->width;
            uint32_t sx = x0 + (x1 - x0) / 2;
            struct rng g;
            uint64_t work = 1; /* a path that hits nothing still costs */
            rng_init(&g, s->seed, sx, sy, 0);
            struct rt_v3 d = camera_dir(s, (double)sx + 0.5, (double)sy + 0.5);
            (void)radiance(s, s->cam.pos, d, &g, &work);
            band += (double)work * (double)(x1 - x0); /* the path stands for its block's columns */
        }
        for (uint32_t y = y0; y < y1; y++)
            row_cost[y] = band;
    }
}

int rt_scene_trace(const struct rt_scene *s, const double o[3], const double d[3], int brute_force,
                   double *t, uint32_t *prim)
{
    struct rt_ray r;
    if (d[0] == 0.0 && d[1] == 0.0 && d[2] == 0.0)
        return 0;
    rt_ray_init(&r, v3(o[0], o[1], o[2]), v3(d[0], d[1], d[2]));
    uint64_t work = 0;
    if (brute_force)
        return rt_trace_brute(s, &r, INFINITY, t, prim);
    return rt_trace_closest(s, &r, INFINITY, t, prim, &work);
}
