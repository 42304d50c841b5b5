/* trace.c - Chrome trace-event JSON for libp2c2r's traced tasks.
 *
 * The document is {"displayTimeUnit":"ms","traceEvents":[...]} (the JSON
 * Object Format of the Trace Event Format, which chrome://tracing and
 * Perfetto import).  Each task is a nestable async slice (ph "b" / "e",
 * category "task", id = its ticket) so that tasks overlapping in time each
 * get their own row; within it "queue+network" and "exec on peer N" nest,
 * and an async instant (ph "n") names how it ended.  Times are microseconds
 * since the trace began.  Invariant: trace_open writes the first element (a
 * metadata event) and every later event is preceded by a comma, so the
 * array stays valid JSON whatever is written; trace_close closes it. */
#include "client/trace.h"

#include <stdio.h>
#include <stdlib.h>

#include "p2c2r/error.h"

struct trace {
    FILE *f;
    uint64_t t0;
};

int trace_open(struct trace **out, const char *path, uint64_t t0_us)
{
    struct trace *t = calloc(1, sizeof(*t));
    if (!t)
        return P2C2R_ENOMEM;
    t->f = fopen(path, "we");
    if (!t->f) {
        free(t);
        return P2C2R_EIO;
    }
    t->t0 = t0_us;
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n"
          "{\"ph\":\"M\",\"pid\":1,\"tid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"p2c2r client\"}}",
          t->f);
    *out = t;
    return 0;
}

/* A JSON string: the type name may hold any byte. */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static double rel(const struct trace *t, uint64_t us) { return us > t->t0 ? (double)(us - t->t0) : 0.0; }

/* One async event of task tt; args (may be NULL) is a JSON object's text. */
static void event(struct trace *t, const struct trace_task *tt, char ph, const char *name,
                  uint64_t ts, const char *args)
{
    fprintf(t->f, ",\n{\"ph\":\"%c\",\"cat\":\"task\",\"id\":\"0x%llx\",\"pid\":1,\"tid\":1,\"ts\":%.0f,\"name\":",
            ph, (unsigned long long)tt->ticket, rel(t, ts));
    put_str(t->f, name);
    if (ph == 'n')
        fputs(",\"s\":\"t\"", t->f);
    if (args)
        fprintf(t->f, ",\"args\":%s", args);
    fputc('}', t->f);
}

/* The instant that names a failed task's end, e.g. "refused (EDEADLINE)". */
static void failure_name(char *dst, size_t cap, int status, int lost)
{
    const char *what;
    switch (status) {
    case P2C2R_EDEADLINE:
    case P2C2R_EQUEUEFULL:
    case P2C2R_EUNSUPPORTED:
    case P2C2R_ENOBLOB:
        what = "refused";
        break;
    case P2C2R_ETIMEDOUT:
        what = "timed out";
        break;
    case P2C2R_ECANCELLED:
        what = "cancelled";
        break;
    default:
        what = "failed";
    }
    snprintf(dst, cap, "%s (%s)", lost ? "lost" : what, p2c2r_errname(status));
}

void trace_task(struct trace *t, const struct trace_task *tt)
{
    char args[320], name[48], fail[64];
    uint64_t end = tt->end_us > tt->submit_us ? tt->end_us : tt->submit_us;
    event(t, tt, 'b', tt->type, tt->submit_us, NULL);
    const char *what;
    if (tt->how == TRACE_UNFINISHED) {
        what = "in flight at stop";
    } else if (tt->status == 0) {
        what = tt->late ? "late" : "delivered";
    } else {
        failure_name(fail, sizeof(fail), tt->status, tt->how == TRACE_LOST);
        what = fail;
    }
    if (tt->how == TRACE_RESULT && tt->attempts) {
        /* The peer's run, placed in the middle of the round trip: the
         * coordinator reports how long it ran, not when. */
        uint64_t rtt = end - tt->submit_us;
        uint64_t ex = tt->exec_us < rtt ? tt->exec_us : rtt;
        uint64_t ex0 = tt->submit_us + (rtt - ex) / 2;
        event(t, tt, 'b', "queue+network", tt->submit_us, NULL);
        event(t, tt, 'e', "queue+network", ex0, NULL);
        snprintf(name, sizeof(name), "exec on peer %u", tt->peer_id);
        snprintf(args, sizeof(args), "{\"peer\":%u,\"exec_us\":%u,\"estimated\":true}", tt->peer_id,
                 tt->exec_us);
        event(t, tt, 'b', name, ex0, args);
        event(t, tt, 'e', name, ex0 + ex, NULL);
    }
    event(t, tt, 'n', what, end, NULL);
    snprintf(args, sizeof(args),
             "{\"ticket\":%llu,\"user\":%llu,\"status\":%d,\"outcome\":\"%s\",\"attempts\":%u,"
             "\"peer\":%u,\"exec_us\":%u,\"flags\":%u,\"rtt_us\":%llu}",
             (unsigned long long)tt->ticket, (unsigned long long)tt->user, tt->status, what,
             tt->attempts, tt->peer_id, tt->exec_us, tt->flags,
             (unsigned long long)(end - tt->submit_us));
    event(t, tt, 'e', tt->type, end, args);
}

int trace_close(struct trace *t)
{
    if (!t)
        return 0;
    fputs("\n]}\n", t->f);
    int bad = ferror(t->f);
    if (fclose(t->f) != 0)
        bad = 1;
    free(t);
    return bad ? P2C2R_EIO : 0;
}
