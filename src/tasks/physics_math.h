/* physics_math.h - the small 3-D vector, quaternion and 3x3 matrix helpers
 * used by the physics executor (static inline, no state).
 *
 * Determinism: every helper uses only IEEE-754 double +, -, *, / and sqrt,
 * which are correctly rounded on every conforming platform, and never a libm
 * transcendental (sin, cos, atan2, pow), whose last bit may differ between C
 * libraries.  Each operation is written out term by term in a fixed order so
 * that the compiler has no freedom to reassociate (it has none without
 * -ffast-math, which is refused below). */
#ifndef P2C2R_PHYSICS_MATH_H
#define P2C2R_PHYSICS_MATH_H

#include <float.h>
#include <math.h>

/* Guards for bit-reproducible arithmetic in every file that includes this
 * one (all of the physics code does, before any function): no -ffast-math,
 * doubles evaluated as doubles (SSE2, not x87), and no contraction of a*b+c
 * into a fused multiply-add, which rounds once instead of twice.  GCC does
 * not contract in ISO C mode (-std=c17) but does in GNU mode on a CPU with
 * FMA; clang contracts within expressions unless told not to. */
#if defined(__FAST_MATH__)
#error "the physics executor must not be built with -ffast-math: its output must be bit-reproducible"
#endif
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0
#error "the physics executor needs FLT_EVAL_METHOD == 0 (e.g. -msse2 -mfpmath=sse on 32-bit x86)"
#endif
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

struct phys_vec3 {
    double x, y, z;
};

/* A unit quaternion w + xi + yj + zk (rotation of the body frame into the
 * world frame). */
struct phys_quat {
    double w, x, y, z;
};

/* Row-major 3x3 matrix: m[3 * row + col]. */
struct phys_mat3 {
    double m[9];
};

static inline struct phys_vec3 v3(double x, double y, double z)
{
    return (struct phys_vec3){x, y, z};
}

static inline struct phys_vec3 v3_add(struct phys_vec3 a, struct phys_vec3 b)
{
    return v3(a.x + b.x, a.y + b.y, a.z + b.z);
}

static inline struct phys_vec3 v3_sub(struct phys_vec3 a, struct phys_vec3 b)
{
    return v3(a.x - b.x, a.y - b.y, a.z - b.z);
}

static inline struct phys_vec3 v3_scale(struct phys_vec3 a, double s)
{
    return v3(a.x * s, a.y * s, a.z * s);
}

/* a + b * s */
static inline struct phys_vec3 v3_madd(struct phys_vec3 a, struct phys_vec3 b, double s)
{
    return v3(a.x + b.x * s, a.y + b.y * s, a.z + b.z * s);
}

static inline struct phys_vec3 v3_neg(struct phys_vec3 a)
{
    return v3(-a.x, -a.y, -a.z);
}

static inline double v3_dot(struct phys_vec3 a, struct phys_vec3 b)
{
    return a.x * b.x + a.y * b.y + a.z * b.z;
}

static inline struct phys_vec3 v3_cross(struct phys_vec3 a, struct phys_vec3 b)
{
    return v3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}

static inline double v3_len2(struct phys_vec3 a)
{
    return v3_dot(a, a);
}

static inline double v3_len(struct phys_vec3 a)
{
    return sqrt(v3_dot(a, a));
}

/* Component i (0, 1, 2) of a. */
static inline double v3_get(struct phys_vec3 a, int i)
{
    return i == 0 ? a.x : i == 1 ? a.y : a.z;
}

static inline struct phys_vec3 v3_set(struct phys_vec3 a, int i, double val)
{
    if (i == 0)
        a.x = val;
    else if (i == 1)
        a.y = val;
    else
        a.z = val;
    return a;
}

static inline int v3_isfinite(struct phys_vec3 a)
{
    return isfinite(a.x) && isfinite(a.y) && isfinite(a.z);
}

/* Two unit vectors t1, t2 with (n, t1, t2) orthonormal, chosen from n alone
 * (n must be a unit vector). */
static inline void v3_basis(struct phys_vec3 n, struct phys_vec3 *t1, struct phys_vec3 *t2)
{
    if (fabs(n.x) >= 0.57735026918962573) {
        double inv = 1.0 / sqrt(n.x * n.x + n.y * n.y);
        *t1 = v3(n.y * inv, -n.x * inv, 0.0);
    } else {
        double inv = 1.0 / sqrt(n.y * n.y + n.z * n.z);
        *t1 = v3(0.0, n.z * inv, -n.y * inv);
    }
    *t2 = v3_cross(n, *t1);
}

static inline struct phys_quat quat_mul(struct phys_quat a, struct phys_quat b)
{
    return (struct phys_quat){
        a.w * b.w - a.x * b.x - a.y * b.y - a.z * b.z,
        a.w * b.x + a.x * b.w + a.y * b.z - a.z * b.y,
        a.w * b.y - a.x * b.z + a.y * b.w + a.z * b.x,
        a.w * b.z + a.x * b.y - a.y * b.x + a.z * b.w,
    };
}

static inline double quat_len2(struct phys_quat q)
{
    return q.w * q.w + q.x * q.x + q.y * q.y + q.z * q.z;
}

/* q / |q|; q must not be zero. */
static inline struct phys_quat quat_normalize(struct phys_quat q)
{
    double inv = 1.0 / sqrt(quat_len2(q));
    return (struct phys_quat){q.w * inv, q.x * inv, q.y * inv, q.z * inv};
}

/* The rotation matrix of a unit quaternion; its columns are the body's
 * local x, y, z axes in world coordinates. */
static inline struct phys_mat3 quat_to_mat3(struct phys_quat q)
{
    double xx = q.x * q.x, yy = q.y * q.y, zz = q.z * q.z;
    double xy = q.x * q.y, xz = q.x * q.z, yz = q.y * q.z;
    double wx = q.w * q.x, wy = q.w * q.y, wz = q.w * q.z;
    return (struct phys_mat3){{
        1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
        2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
        2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy),
    }};
}

static inline struct phys_vec3 mat3_mul_v(const struct phys_mat3 *a, struct phys_vec3 v)
{
    const double *m = a->m;
    return v3(m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
              m[6] * v.x + m[7] * v.y + m[8] * v.z);
}

/* a^T v: a vector from world into the frame whose axes are a's columns. */
static inline struct phys_vec3 mat3_tmul_v(const struct phys_mat3 *a, struct phys_vec3 v)
{
    const double *m = a->m;
    return v3(m[0] * v.x + m[3] * v.y + m[6] * v.z, m[1] * v.x + m[4] * v.y + m[7] * v.z,
              m[2] * v.x + m[5] * v.y + m[8] * v.z);
}

/* Column i of a (the body's local axis i in world coordinates). */
static inline struct phys_vec3 mat3_col(const struct phys_mat3 *a, int i)
{
    return v3(a->m[i], a->m[3 + i], a->m[6 + i]);
}

/* r diag(d) r^T: an inertia tensor rotated into the world frame. */
static inline struct phys_mat3 mat3_rotate_diag(const struct phys_mat3 *r, struct phys_vec3 d)
{
    struct phys_mat3 o;
    const double *m = r->m;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            o.m[3 * i + j] = m[3 * i] * d.x * m[3 * j] + m[3 * i + 1] * d.y * m[3 * j + 1] +
                             m[3 * i + 2] * d.z * m[3 * j + 2];
    return o;
}

#endif
