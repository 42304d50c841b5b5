/* p2c2r/error.h - the one set of error codes shared by every p2c2r API.
 *
 * Every fallible p2c2r function returns 0 on success or one of these negative
 * codes.  On the wire the same codes travel as their absolute value (u16). */
#ifndef P2C2R_ERROR_H
#define P2C2R_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the symbols libp2c2r exports; everything else is hidden. */
#if defined(__GNUC__)
#define P2C2R_API __attribute__((visibility("default")))
#else
#define P2C2R_API
#endif

enum p2c2r_error {
    P2C2R_OK = 0,
    P2C2R_EINVAL = -1,       /* an argument or a request field is invalid */
    P2C2R_ENOMEM = -2,       /* out of memory */
    P2C2R_EIO = -3,          /* socket error: the connection failed */
    P2C2R_ECLOSED = -4,      /* the connection was closed */
    P2C2R_ETIMEDOUT = -5,    /* a timeout or a deadline passed */
    P2C2R_EAGAIN = -6,       /* would block / backpressure: try again later */
    P2C2R_EPROTO = -7,       /* malformed frame or protocol violation */
    P2C2R_ETOOBIG = -8,      /* a frame, input or output is over its limit */
    P2C2R_EAUTH = -9,        /* missing or invalid credential */
    P2C2R_EUNSUPPORTED = -10,/* no connected peer supports this task type */
    P2C2R_EQUEUEFULL = -11,  /* the queue for this renter or the coordinator is full */
    P2C2R_ECANCELLED = -12,  /* the task was cancelled */
    P2C2R_ETASK = -13,       /* the executor reported an error for this input */
    P2C2R_ENOTFOUND = -14,   /* unknown ticket, task type or resource */
    P2C2R_EVERSION = -15,    /* no protocol version in common */
    P2C2R_ELOST = -16,       /* the task was lost with its peers too many times */
    P2C2R_ESHUTDOWN = -17,   /* the coordinator is shutting down */
    P2C2R_ELIMIT = -18,      /* a per-connection limit was exceeded */
    P2C2R_EADDR = -19,       /* cannot parse or resolve an address */
    P2C2R_ESTATE = -20,      /* call not valid in the current state */
    P2C2R_ENOBLOB = -21,     /* a blob the task references is not present */
    P2C2R_EDEADLINE = -22,   /* rejected at admission: the task would miss its deadline */
    P2C2R_ETLS = -23,        /* TLS failed: handshake, certificate, or TLS required/not offered */
};

#define P2C2R_ERROR_MIN (-23)

/* Returns a human-readable description of an error code: a static string,
 * never NULL, valid for as long as the library is loaded; the caller must
 * not free it.  A positive code is read as its negative (the wire form);
 * a code this library does not know gives "unknown error".  Any thread. */
P2C2R_API const char *p2c2r_strerror(int code);

/* Returns the short symbolic name of an error code, e.g. "ETIMEDOUT", or
 * "EUNKNOWN" for a code this library does not know.  Static, as
 * p2c2r_strerror's.  Any thread. */
P2C2R_API const char *p2c2r_errname(int code);

#ifdef __cplusplus
}
#endif
#endif
