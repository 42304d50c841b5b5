/* raytrace_vec.h - three-component double vectors for the ray tracer.
 *
 * Internal to src/tasks/raytrace*.c.  Only +, -, *, / and sqrt are used:
 * IEEE 754 rounds them exactly the same way on every machine, which is what
 * keeps rendered bytes identical across peers (raytrace.c turns off
 * floating-point contraction for the same reason). */
#ifndef P2C2R_RAYTRACE_VEC_H
#define P2C2R_RAYTRACE_VEC_H

#include <math.h>

struct rt_v3 {
    double x, y, z;
};

static inline struct rt_v3 v3(double x, double y, double z)
{
    struct rt_v3 r = {x, y, z};
    return r;
}

static inline struct rt_v3 v3_add(struct rt_v3 a, struct rt_v3 b)
{
    return v3(a.x + b.x, a.y + b.y, a.z + b.z);
}

static inline struct rt_v3 v3_sub(struct rt_v3 a, struct rt_v3 b)
{
    return v3(a.x - b.x, a.y - b.y, a.z - b.z);
}

static inline struct rt_v3 v3_mul(struct rt_v3 a, struct rt_v3 b)
{
    return v3(a.x * b.x, a.y * b.y, a.z * b.z);
}

static inline struct rt_v3 v3_scale(struct rt_v3 a, double k)
{
    return v3(a.x * k, a.y * k, a.z * k);
}

/* a + b * k */
static inline struct rt_v3 v3_madd(struct rt_v3 a, struct rt_v3 b, double k)
{
    return v3(a.x + b.x * k, a.y + b.y * k, a.z + b.z * k);
}

static inline double v3_dot(struct rt_v3 a, struct rt_v3 b)
{
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

static inline struct rt_v3 v3_cross(struct rt_v3 a, struct rt_v3 b)
{
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}

static inline double v3_len(struct rt_v3 a)
{
    return sqrt(v3_dot(a, a));
}

/* Unit vector along a; a must not be zero. */
static inline struct rt_v3 v3_norm(struct rt_v3 a)
{
    return v3_scale(a, 1.0 / v3_len(a));
}

static inline double v3_maxabs(struct rt_v3 a)
{
    double m = fabs(a.x);
    if (fabs(a.y) > m)
        m = fabs(a.y);
    if (fabs(a.z) > m)
        m = fabs(a.z);
    return m;
}

static inline double v3_get(struct rt_v3 a, int axis)
{
    return axis == 0 ? a.x : axis == 1 ? a.y : a.z;
}

#endif
