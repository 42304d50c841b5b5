/* physics_collide.h - narrowphase of the physics executor: contact points
 * between two shapes (sphere, box) or a shape and a static plane.
 *
 * Internal to src/tasks/physics*.c.  Pure functions of their arguments:
 * no allocation, no state, reentrant. */
#ifndef P2C2R_PHYSICS_COLLIDE_H
#define P2C2R_PHYSICS_COLLIDE_H

#include "tasks/physics_math.h"

/* Most contact points reported for one pair (a face-to-face box contact is
 * reduced to the 4 points that span the largest area). */
#define PHYS_MAX_POINTS 4

enum phys_shape { PHYS_SPHERE = 0, PHYS_BOX = 1 };

/* A shape placed in the world. */
struct phys_geom {
    enum phys_shape shape;
    struct phys_vec3 c;   /* centre */
    struct phys_mat3 r;   /* orientation: columns are the local axes */
    struct phys_vec3 e;   /* sphere: radius in e.x; box: half extents */
};

/* One contact point: p lies midway between the two surfaces; depth is how
 * far they overlap along the pair's normal (negative: the gap between them,
 * for points closer than the margin). */
struct phys_cp {
    struct phys_vec3 p;
    double depth;
};

/* Finds where a and b overlap or come within margin (>= 0) of each other.
 * Returns the number of points (0 when they are further apart, at most
 * PHYS_MAX_POINTS) written to pts, and on a nonzero return the unit normal
 * pointing from a towards b in *n.  Only points with depth > -margin are
 * reported.  Box-box uses the separating axis test
 * over the 15 candidate axes, then clips the incident face against the
 * reference face (face contacts) or takes the closest points of the two
 * edges (edge contacts). */
int phys_collide(const struct phys_geom *a, const struct phys_geom *b, double margin, struct phys_vec3 *n,
                 struct phys_cp pts[PHYS_MAX_POINTS]);

/* The same against the static half-space {x : dot(pn, x) < offset} (pn is
 * the plane's unit normal, pointing out of the solid side).  *n is set to
 * -pn, the direction from the shape into the plane. */
int phys_collide_plane(const struct phys_geom *a, struct phys_vec3 pn, double offset, double margin,
                       struct phys_vec3 *n, struct phys_cp pts[PHYS_MAX_POINTS]);

#endif
