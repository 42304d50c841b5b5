/* fuzz_msg.c - body checks shared by the fuzz targets (see fuzz_msg.h).
 *
 * For every body a parser accepts: every view lies inside the body, every
 * length is within its protocol limit, the fields fill the body exactly (or
 * up to the free-length tail of RESULT/DELIVER), and re-encoding with the
 * proto_put_* functions reproduces the body byte for byte except reserved
 * fields.  Parsed tasks of a cheap built-in type (P2C2R_EXEC_CHEAP: echo,
 * sha256) are also run through that executor's check and run, as a peer
 * would; the compute executors have fuzz targets of their own, which bound
 * the work one input may ask for. */
#include "fuzz_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "p2c2r/error.h"
#include "p2c2r/executor.h"
#include "tasks/tasks.h"

_Noreturn void fuzz_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: fuzz invariant violated: %s\n", file, line, expr);
    abort();
}

static uint8_t *dup_exact(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    if (!c)
        abort();
    if (n)
        memcpy(c, p, n);
    return c;
}

static int inside(struct bytes_view v, const uint8_t *b, size_t n)
{
    if (v.len == 0)
        return 1;
    return v.p >= b && v.len <= n && (size_t)(v.p - b) <= n - v.len;
}

/* a and b agree everywhere except the skip_len bytes at skip_off. */
static int same_except(const uint8_t *a, const uint8_t *b, size_t n, size_t skip_off,
                       size_t skip_len)
{
    for (size_t i = 0; i < n; i++)
        if ((i < skip_off || i >= skip_off + skip_len) && a[i] != b[i])
            return 0;
    return 1;
}

static void check_hello(const uint8_t *b, size_t n)
{
    struct msg_hello m;
    if (proto_parse_hello(b, n, &m) != 0)
        return;
    FUZZ_ASSERT(m.token.len <= PROTO_MAX_TOKEN && m.name.len <= PROTO_MAX_NAME);
    FUZZ_ASSERT(m.ver_min <= m.ver_max);
    FUZZ_ASSERT(inside(m.token, b, n) && inside(m.name, b, n));
    FUZZ_ASSERT(proto_hello_size(&m) == n);
    uint8_t *e = dup_exact(b, n);
    FUZZ_ASSERT(proto_put_hello(e, &m) == n);
    FUZZ_ASSERT(same_except(e, b, n, 5, 1));
    free(e);
}

static void check_hello_ok(const uint8_t *b, size_t n)
{
    struct msg_hello_ok m;
    if (proto_parse_hello_ok(b, n, &m) != 0)
        return;
    FUZZ_ASSERT(n == (m.has_nonce ? PROTO_HELLO_OK_PEER_LEN : PROTO_HELLO_OK_LEN));
    FUZZ_ASSERT(proto_hello_ok_size(&m) == n);
    uint8_t e[PROTO_HELLO_OK_PEER_LEN];
    FUZZ_ASSERT(proto_put_hello_ok(e, &m) == n);
    FUZZ_ASSERT(same_except(e, b, n, 2, 2));
}

static void check_error(const uint8_t *b, size_t n)
{
    struct msg_error m;
    if (proto_parse_error(b, n, &m) != 0)
        return;
    FUZZ_ASSERT(inside(m.text, b, n));
    FUZZ_ASSERT(4 + m.text.len == n);
    if (m.text.len > 1024) {
        FUZZ_ASSERT(proto_error_size(m.text.len) == 4 + 1024);
        return;
    }
    FUZZ_ASSERT(proto_error_size(m.text.len) == n);
    uint8_t *e = dup_exact(b, n);
    FUZZ_ASSERT(proto_put_error(e, m.code, (const char *)m.text.p, m.text.len) == n);
    FUZZ_ASSERT(memcmp(e, b, n) == 0);
    free(e);
}

static void check_register(const uint8_t *b, size_t n)
{
    struct msg_register m;
    if (proto_parse_register(b, n, &m) != 0)
        return;
    FUZZ_ASSERT(m.ntypes <= PROTO_MAX_TYPES);
    FUZZ_ASSERT(m.gpu_model.len <= PROTO_MAX_NAME && inside(m.gpu_model, b, n));
    for (unsigned i = 0; i < m.ntypes; i++) {
        FUZZ_ASSERT(m.types[i].name.len >= 1 && m.types[i].name.len <= PROTO_MAX_TYPE_NAME);
        FUZZ_ASSERT(inside(m.types[i].name, b, n));
        FUZZ_ASSERT((m.types[i].flags & ~PROTO_TYPE_FLAGS_KNOWN) == 0);
    }
    /* The identity, when present, fills the body after the signed part. */
    FUZZ_ASSERT((m.pk == NULL) == (m.sig == NULL));
    FUZZ_ASSERT(m.signed_len == (m.pk ? n - PROTO_REGISTER_AUTH_LEN : n));
    FUZZ_ASSERT(!m.pk || (m.pk == b + m.signed_len && m.sig == m.pk + PROTO_PK_LEN));
    FUZZ_ASSERT(proto_register_signed_size(&m) == m.signed_len);
    FUZZ_ASSERT(proto_register_size(&m) == n);
    uint8_t *e = dup_exact(b, n);
    FUZZ_ASSERT(proto_put_register(e, &m) == n);
    /* Re-encoding gives the same bytes but for the unknown bits of each
     * type's flags byte (after its name and version), which the parser
     * clears. */
    for (unsigned i = 0; i < m.ntypes; i++) {
        size_t off = (size_t)(m.types[i].name.p - b) + m.types[i].name.len + 4;
        FUZZ_ASSERT(off < n && e[off] == (b[off] & PROTO_TYPE_FLAGS_KNOWN));
        e[off] = b[off];
    }
    /* ...and for the pool block's reserved bytes, which are ignored and
     * written as 0. */
    if (m.has_pool) {
        size_t pb = m.signed_len - PROTO_POOL_BLOCK_LEN;
        FUZZ_ASSERT(e[pb + 1] == 0 && e[pb + 2] == 0 && e[pb + 3] == 0);
        memcpy(e + pb + 1, b + pb + 1, 3);
    }
    FUZZ_ASSERT(memcmp(e, b, n) == 0);
    free(e);
}

/* Plays the peer's output allocator, with a cap. */
struct exec_out {
    size_t limit;
    void *p;
    size_t len;
    int calls;
};

static void *exec_alloc(struct p2c2r_exec_call *call, size_t n)
{
    struct exec_out *o = call->opaque;
    o->calls++;
    FUZZ_ASSERT(o->calls == 1); /* at most once per run */
    if (n > o->limit)
        return NULL;
    o->p = malloc(n ? n : 1);
    o->len = n;
    return o->p;
}

static void run_executor(const struct msg_task *t)
{
    const struct p2c2r_executor *ex = tasks_find((const char *)t->type.p, t->type.len);
    if (!ex || !(ex->flags & P2C2R_EXEC_CHEAP) || t->input.len > ex->max_input)
        return;
    /* The peer passes the views straight through; copy them to exact-size
     * buffers so an executor reading past its params or input is caught. */
    uint8_t *in = dup_exact(t->input.p, t->input.len);
    char *params = (char *)dup_exact(t->params.p, t->params.len);
    char err[256];
    struct exec_out out = {t->input.len / 2 + 16, NULL, 0, 0};
    struct p2c2r_exec_call call = {
        .input = in,
        .input_len = t->input.len,
        .params = params,
        .params_len = t->params.len,
        .alloc_output = exec_alloc,
        .opaque = &out,
        .err = err,
        .err_cap = sizeof(err),
    };
    if (ex->check) {
        int rc = ex->check(&call);
        FUZZ_ASSERT(rc == 0 || rc == P2C2R_EINVAL);
        if (rc != 0)
            goto done;
    }
    err[0] = '\0';
    int rc = ex->run(&call);
    FUZZ_ASSERT(rc <= 0 && rc >= P2C2R_ERROR_MIN);
    if (rc == 0) {
        FUZZ_ASSERT(out.calls == 1 && out.p != NULL);
        if (strcmp(ex->name, "echo") == 0)
            FUZZ_ASSERT(out.len == t->input.len &&
                        (out.len == 0 || memcmp(out.p, in, out.len) == 0));
        if (strcmp(ex->name, "sha256") == 0)
            FUZZ_ASSERT(out.len == 32 || out.len == 64);
    } else {
        FUZZ_ASSERT(memchr(err, '\0', sizeof(err)) != NULL);
    }
done:
    free(out.p);
    free(params);
    free(in);
}

static void check_params(const struct msg_task *t)
{
    static const char *const keys[] = {"format", "a", "k"};
    char *params = (char *)dup_exact(t->params.p, t->params.len);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *v;
        size_t vl;
        if (p2c2r_param_get(params, t->params.len, keys[i], &v, &vl)) {
            FUZZ_ASSERT(v > params && vl <= t->params.len);
            FUZZ_ASSERT((size_t)(v - params) <= t->params.len - vl);
            FUZZ_ASSERT(memchr(v, '\n', vl) == NULL);
            FUZZ_ASSERT(v[-1] == '=');
        }
    }
    free(params);
}

static void check_task(const uint8_t *b, size_t n)
{
    struct msg_task m;
    if (proto_parse_task(b, n, &m) != 0)
        return;
    FUZZ_ASSERT(m.type.len >= 1 && m.type.len <= PROTO_MAX_TYPE_NAME);
    FUZZ_ASSERT(m.params.len <= PROTO_MAX_PARAMS);
    FUZZ_ASSERT(inside(m.type, b, n) && inside(m.params, b, n) && inside(m.input, b, n));
    FUZZ_ASSERT(m.nblobs <= PROTO_MAX_BLOBS);
    int has_reqs = (m.flags & PROTO_TASK_F_REQS) != 0;
    FUZZ_ASSERT(proto_task_size_ext(m.type.len, m.params.len, m.nblobs, has_reqs, m.input.len) == n);
    uint8_t *e = dup_exact(b, n);
    size_t h = proto_put_task_head_ext(e, (const char *)m.type.p, m.type.len, m.min_version,
                                       m.deadline_ms, m.priority, m.flags, (const char *)m.params.p,
                                       m.params.len, m.blobs, m.nblobs, has_reqs ? &m.reqs : NULL,
                                       (uint32_t)m.input.len);
    FUZZ_ASSERT(h + m.input.len == n);
    /* Re-encoding gives the same bytes but for the reserved byte of the
     * requirements block. */
    size_t rsv = has_reqs ? h - 4 - PROTO_REQS_LEN + 1 : 0;
    FUZZ_ASSERT(same_except(e, b, h, has_reqs ? rsv : 0, has_reqs ? 1 : 0));
    free(e);
    check_params(&m);
    run_executor(&m);
}

static void check_result(const uint8_t *b, size_t n)
{
    struct msg_result m;
    if (proto_parse_result(b, n, &m) != 0) {
        FUZZ_ASSERT(n < PROTO_RESULT_PREFIX);
        return;
    }
    FUZZ_ASSERT(n >= PROTO_RESULT_PREFIX && m.output.len == n - PROTO_RESULT_PREFIX);
    FUZZ_ASSERT(m.output.len == 0 || m.output.p == b + PROTO_RESULT_PREFIX);
    uint8_t e[PROTO_RESULT_PREFIX];
    FUZZ_ASSERT(proto_put_result_head(e, m.status, m.exec_us) == PROTO_RESULT_PREFIX);
    FUZZ_ASSERT(same_except(e, b, PROTO_RESULT_PREFIX, 2, 2));
}

static void check_deliver(const uint8_t *b, size_t n)
{
    struct msg_deliver m;
    if (proto_parse_deliver(b, n, &m) != 0) {
        FUZZ_ASSERT(n < PROTO_DELIVER_PREFIX);
        return;
    }
    FUZZ_ASSERT(n >= PROTO_DELIVER_PREFIX && m.output.len == n - PROTO_DELIVER_PREFIX);
    FUZZ_ASSERT(m.output.len == 0 || m.output.p == b + PROTO_DELIVER_PREFIX);
    uint8_t e[PROTO_DELIVER_PREFIX];
    FUZZ_ASSERT(proto_put_deliver_head(e, m.status, m.attempts, m.exec_us, m.peer_id, m.flags) ==
                PROTO_DELIVER_PREFIX);
    FUZZ_ASSERT(same_except(e, b, PROTO_DELIVER_PREFIX, 12, 4));
}

static void check_ints(const uint8_t *b, size_t n)
{
    uint32_t v32;
    uint64_t v64;
    FUZZ_ASSERT((proto_parse_u32(b, n, &v32) == 0) == (n == 4));
    FUZZ_ASSERT((proto_parse_u64(b, n, &v64) == 0) == (n == 8));
}

/* Walks a batch the way the coordinator does: a validation pass over a
 * copy of the iterator, then the real pass, parsing each entry's task. */
static void check_batch(const uint8_t *b, size_t n)
{
    struct proto_batch_iter it;
    uint32_t count;
    if (proto_batch_begin(b, n, &it, &count) != 0)
        return;
    FUZZ_ASSERT(count >= 1 && count <= PROTO_MAX_BATCH);
    FUZZ_ASSERT((uint64_t)count * (PROTO_BATCH_ENTRY_PREFIX + PROTO_TASK_FIXED + 1) <= n - 4);
    struct proto_batch_iter chk = it;
    uint64_t id;
    const uint8_t *t;
    size_t tl;
    uint32_t seen = 0;
    int rc;
    while ((rc = proto_batch_next(&chk, &id, &t, &tl)) == 1) {
        FUZZ_ASSERT(t >= b && tl <= n && (size_t)(t - b) <= n - tl);
        seen++;
        FUZZ_ASSERT(seen <= count);
    }
    FUZZ_ASSERT(rc == 0 || rc == P2C2R_EPROTO);
    if (rc != 0)
        return;
    FUZZ_ASSERT(seen == count);
    FUZZ_ASSERT(proto_batch_next(&chk, &id, &t, &tl) == 0);
    uint32_t again = 0;
    while (proto_batch_next(&it, &id, &t, &tl) == 1) {
        again++;
        uint8_t *c = dup_exact(t, tl);
        check_task(c, tl);
        free(c);
    }
    FUZZ_ASSERT(again == count);
}

/* A job record (JOB_INFO, JOB_LIST_OK entries): what it accepts lies
 * within the body and re-encodes to the same bytes. */
static void check_job_info(const uint8_t *b, size_t n)
{
    struct msg_job_info m;
    size_t used = 0;
    if (proto_parse_job_info(b, n, &m, &used) != 0)
        return;
    FUZZ_ASSERT(used >= PROTO_JOB_INFO_FIXED && used <= n && m.type.len <= PROTO_MAX_TYPE_NAME);
    FUZZ_ASSERT(m.state >= 1 && m.state <= 3);
    FUZZ_ASSERT(m.type.len == 0 || (m.type.p == b + PROTO_JOB_INFO_FIXED && used == PROTO_JOB_INFO_FIXED + m.type.len));
    uint8_t e[PROTO_JOB_INFO_FIXED + PROTO_MAX_TYPE_NAME];
    FUZZ_ASSERT(proto_put_job_info(e, &m) == used);
    FUZZ_ASSERT(memcmp(e, b, used) == 0);
}

void fuzz_check_parser(enum fuzz_parser p, const uint8_t *body, size_t n)
{
    uint8_t *b = dup_exact(body, n);
    switch (p) {
    case FUZZ_P_HELLO: check_hello(b, n); break;
    case FUZZ_P_HELLO_OK: check_hello_ok(b, n); break;
    case FUZZ_P_ERROR: check_error(b, n); break;
    case FUZZ_P_REGISTER: check_register(b, n); break;
    case FUZZ_P_TASK: check_task(b, n); break;
    case FUZZ_P_RESULT: check_result(b, n); break;
    case FUZZ_P_DELIVER: check_deliver(b, n); break;
    case FUZZ_P_U32:
    case FUZZ_P_U64: check_ints(b, n); break;
    case FUZZ_P_BATCH: check_batch(b, n); break;
    case FUZZ_P_JOB_INFO: check_job_info(b, n); break;
    case FUZZ_P_COUNT: break;
    }
    free(b);
}

void fuzz_check_all(const uint8_t *b, size_t n)
{
    for (int p = 0; p < FUZZ_P_COUNT; p++)
        if (p != FUZZ_P_U64) /* checked together with FUZZ_P_U32 */
            fuzz_check_parser((enum fuzz_parser)p, b, n);
}
