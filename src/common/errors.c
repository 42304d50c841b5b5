/* errors.c - p2c2r_strerror and p2c2r_errname: one table for every code. */
#include <stddef.h>

#include "p2c2r/error.h"

struct errinfo {
    const char *name;
    const char *text;
};

static const struct errinfo table[] = {
    {"OK", "success"},
    {"EINVAL", "invalid argument or request field"},
    {"ENOMEM", "out of memory"},
    {"EIO", "connection failed (socket error)"},
    {"ECLOSED", "connection closed"},
    {"ETIMEDOUT", "timed out"},
    {"EAGAIN", "would block: too much in flight, try again later"},
    {"EPROTO", "protocol error: malformed frame or unexpected message"},
    {"ETOOBIG", "over a size limit"},
    {"EAUTH", "authentication failed: missing or invalid token"},
    {"EUNSUPPORTED", "no connected peer supports this task type"},
    {"EQUEUEFULL", "queue full"},
    {"ECANCELLED", "cancelled"},
    {"ETASK", "the executor rejected the task or failed"},
    {"ENOTFOUND", "not found"},
    {"EVERSION", "no protocol version in common"},
    {"ELOST", "task lost with its peers too many times"},
    {"ESHUTDOWN", "coordinator shutting down"},
    {"ELIMIT", "connection limit exceeded"},
    {"EADDR", "bad address: expected HOST:PORT"},
    {"ESTATE", "not valid in the current state"},
    {"ENOBLOB", "a referenced blob is not present: upload it first"},
    {"EDEADLINE", "would miss its deadline at the current load: lower the quality or allow more time"},
    {"ETLS", "TLS failed (certificate not trusted or not for this host, or TLS required by one side and not spoken by the other)"},
};

static const struct errinfo *lookup(int code)
{
    if (code > 0)
        code = -code;
    if (code < P2C2R_ERROR_MIN)
        return NULL;
    return &table[-code];
}

const char *p2c2r_strerror(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->text : "unknown error";
}

const char *p2c2r_errname(int code)
{
    const struct errinfo *e = lookup(code);
    return e ? e->name : "EUNKNOWN";
}
