/* trace.h - libp2c2r's task trace: Chrome trace-event JSON
 * (p2c2r_client_trace_start / _stop).  Internal to the library.
 *
 * The client hands over each traced task once, when it ends; this module
 * only formats and writes.  Thread context: the client's thread. */
#ifndef P2C2R_CLIENT_TRACE_H
#define P2C2R_CLIENT_TRACE_H

#include <stdint.h>

struct trace;

/* How a traced task ended, beyond its status. */
enum trace_end {
    TRACE_RESULT,   /* the coordinator's answer (see status and late) */
    TRACE_LOST,     /* the connection failed first */
    TRACE_UNFINISHED, /* still in flight when the trace stopped */
};

struct trace_task {
    uint64_t ticket, user;
    const char *type; /* "blob" for an upload */
    uint64_t submit_us, end_us;
    int status;
    int late;
    enum trace_end how;
    uint32_t exec_us, peer_id, flags;
    uint16_t attempts;
};

/* Creates (truncates) path and writes the document's head; t0_us is the
 * trace's zero.  Returns 0, P2C2R_EIO or P2C2R_ENOMEM. */
int trace_open(struct trace **out, const char *path, uint64_t t0_us);
/* Writes one task's events. */
void trace_task(struct trace *t, const struct trace_task *tt);
/* Writes the tail and closes; 0, or P2C2R_EIO when any write failed.
 * NULL is a no-op. */
int trace_close(struct trace *t);

#endif
