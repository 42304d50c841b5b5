/* proto.c - encoders and decoders for the p2c2r wire protocol.
 *
 * Invariants: no function here allocates; every read is bounds-checked
 * against the length passed in; a parser either accepts a body whose fields
 * exactly fill it or returns P2C2R_EPROTO. */
#include "common/proto.h"

#include <assert.h>

#include <string.h>

#include "p2c2r/error.h"

int64_t proto_decode_hdr(const uint8_t *buf, size_t len, uint32_t max_body,
                         struct frame_hdr *out)
{
    /* Check the magic as soon as its bytes arrive so that garbage is
     * rejected early instead of waiting for 20 bytes. */
    static const uint8_t magic[4] = {'P', '2', 'C', 'R'};
    if (len == 0)
        return 0;
    size_t m = len < 4 ? len : 4;
    if (memcmp(buf, magic, m) != 0)
        return P2C2R_EPROTO;
    if (len >= 5 && buf[4] != PROTO_VERSION)
        return P2C2R_EPROTO;
    if (len < PROTO_HDR_LEN)
        return 0;
    out->version = buf[4];
    out->type = buf[5];
    out->flags = rd16(buf + 6);
    out->req_id = rd64(buf + 8);
    out->body_len = rd32(buf + 16);
    if (out->body_len > max_body)
        return P2C2R_ETOOBIG;
    if (len - PROTO_HDR_LEN < out->body_len)
        return 0;
    return (int64_t)PROTO_HDR_LEN + out->body_len;
}

void proto_put_hdr(uint8_t *dst, uint8_t type, uint16_t flags, uint64_t req_id,
                   uint32_t body_len)
{
    dst[0] = 'P';
    dst[1] = '2';
    dst[2] = 'C';
    dst[3] = 'R';
    dst[4] = PROTO_VERSION;
    dst[5] = type;
    wr16(dst + 6, flags);
    wr64(dst + 8, req_id);
    wr32(dst + 16, body_len);
}

const char *proto_type_name(uint8_t type)
{
    switch (type) {
    case MSG_HELLO: return "HELLO";
    case MSG_HELLO_OK: return "HELLO_OK";
    case MSG_ERROR: return "ERROR";
    case MSG_PING: return "PING";
    case MSG_PONG: return "PONG";
    case MSG_PEER_REGISTER: return "PEER_REGISTER";
    case MSG_REGISTER_OK: return "REGISTER_OK";
    case MSG_CREDIT: return "CREDIT";
    case MSG_SUBMIT: return "SUBMIT";
    case MSG_SUBMIT_BATCH: return "SUBMIT_BATCH";
    case MSG_ACCEPTED: return "ACCEPTED";
    case MSG_REJECTED: return "REJECTED";
    case MSG_CANCEL: return "CANCEL";
    case MSG_ASSIGN: return "ASSIGN";
    case MSG_RESULT: return "RESULT";
    case MSG_DELIVER: return "DELIVER";
    case MSG_STATS_REQ: return "STATS_REQ";
    case MSG_STATS: return "STATS";
    case MSG_BLOB_PUT: return "BLOB_PUT";
    case MSG_BLOB_OK: return "BLOB_OK";
    case MSG_BLOB_DATA: return "BLOB_DATA";
    case MSG_JOB_SUBMIT: return "JOB_SUBMIT";
    case MSG_JOB_ACK: return "JOB_ACK";
    case MSG_JOB_REQ: return "JOB_REQ";
    case MSG_JOB_INFO: return "JOB_INFO";
    case MSG_JOB_LIST: return "JOB_LIST";
    case MSG_JOB_LIST_OK: return "JOB_LIST_OK";
    default: return "UNKNOWN";
    }
}

/* A bounds-checked cursor over a body. */
struct rd {
    const uint8_t *p, *end;
    int bad;
};

static int rd_need(struct rd *r, size_t n)
{
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    return 1;
}

static uint8_t rd_u8(struct rd *r)
{
    if (!rd_need(r, 1))
        return 0;
    return *r->p++;
}

static uint16_t rd_u16(struct rd *r)
{
    if (!rd_need(r, 2))
        return 0;
    uint16_t v = rd16(r->p);
    r->p += 2;
    return v;
}

static uint32_t rd_u32(struct rd *r)
{
    if (!rd_need(r, 4))
        return 0;
    uint32_t v = rd32(r->p);
    r->p += 4;
    return v;
}

static uint64_t rd_u64(struct rd *r)
{
    if (!rd_need(r, 8))
        return 0;
    uint64_t v = rd64(r->p);
    r->p += 8;
    return v;
}

static struct bytes_view rd_bytes(struct rd *r, size_t n)
{
    struct bytes_view v = {NULL, 0};
    if (!rd_need(r, n))
        return v;
    v.p = r->p;
    v.len = n;
    r->p += n;
    return v;
}

static int rd_done(const struct rd *r)
{
    return r->bad || r->p != r->end ? P2C2R_EPROTO : 0;
}

int proto_parse_hello(const uint8_t *b, size_t n, struct msg_hello *out)
{
    struct rd r = {b, b + n, 0};
    out->ver_min = rd_u16(&r);
    out->ver_max = rd_u16(&r);
    out->role = rd_u8(&r);
    (void)rd_u8(&r);
    uint16_t tl = rd_u16(&r);
    if (tl > PROTO_MAX_TOKEN)
        return P2C2R_EPROTO;
    out->token = rd_bytes(&r, tl);
    uint8_t nl = rd_u8(&r);
    if (nl > PROTO_MAX_NAME)
        return P2C2R_EPROTO;
    out->name = rd_bytes(&r, nl);
    if (out->ver_min > out->ver_max)
        return P2C2R_EPROTO;
    return rd_done(&r);
}

int proto_parse_hello_ok(const uint8_t *b, size_t n, struct msg_hello_ok *out)
{
    struct rd r = {b, b + n, 0};
    out->version = rd_u16(&r);
    (void)rd_u16(&r);
    out->max_body = rd_u32(&r);
    out->max_inflight = rd_u32(&r);
    out->conn_id = rd_u64(&r);
    /* 20 bytes to a renter; 52 to a peer, the last 32 its challenge. */
    out->has_nonce = 0;
    if (!r.bad && r.end - r.p == PROTO_NONCE_LEN) {
        memcpy(out->nonce, r.p, PROTO_NONCE_LEN);
        out->has_nonce = 1;
        r.p += PROTO_NONCE_LEN;
    }
    return rd_done(&r);
}

int proto_parse_error(const uint8_t *b, size_t n, struct msg_error *out)
{
    struct rd r = {b, b + n, 0};
    out->code = rd_u16(&r);
    uint16_t tl = rd_u16(&r);
    out->text = rd_bytes(&r, tl);
    return rd_done(&r);
}

int proto_parse_register(const uint8_t *b, size_t n, struct msg_register *out)
{
    struct rd r = {b, b + n, 0};
    out->cores = rd_u16(&r);
    out->slots = rd_u16(&r);
    out->mem_bytes = rd_u64(&r);
    out->gpu = rd_u8(&r);
    out->ntypes = rd_u8(&r);
    uint16_t gl = rd_u16(&r);
    if (gl > PROTO_MAX_NAME || out->ntypes > PROTO_MAX_TYPES)
        return P2C2R_EPROTO;
    out->gpu_model = rd_bytes(&r, gl);
    for (unsigned i = 0; i < out->ntypes; i++) {
        uint8_t tl = rd_u8(&r);
        if (tl == 0 || tl > PROTO_MAX_TYPE_NAME)
            return P2C2R_EPROTO;
        out->types[i].name = rd_bytes(&r, tl);
        out->types[i].version = rd_u32(&r);
        out->types[i].flags = rd_u8(&r) & PROTO_TYPE_FLAGS_KNOWN;
    }
    /* Then the pool block and the identity, each optional: the length of
     * the rest says which are there. */
    out->has_pool = 0;
    out->pool = 0;
    out->cost = 0;
    size_t rest = r.bad ? 0 : (size_t)(r.end - r.p);
    if (rest == PROTO_POOL_BLOCK_LEN || rest == PROTO_POOL_BLOCK_LEN + PROTO_REGISTER_AUTH_LEN) {
        out->has_pool = 1;
        out->pool = rd_u8(&r);
        (void)rd_u8(&r);
        (void)rd_u16(&r);
        out->cost = rd_u32(&r);
    }
    out->pk = out->sig = NULL;
    out->signed_len = (size_t)(r.p - b);
    if (!r.bad && r.end - r.p == PROTO_REGISTER_AUTH_LEN) {
        out->pk = r.p;
        out->sig = r.p + PROTO_PK_LEN;
        r.p += PROTO_REGISTER_AUTH_LEN;
    }
    return rd_done(&r);
}

int proto_parse_task(const uint8_t *b, size_t n, struct msg_task *out)
{
    struct rd r = {b, b + n, 0};
    uint8_t tl = rd_u8(&r);
    if (tl == 0 || tl > PROTO_MAX_TYPE_NAME)
        return P2C2R_EPROTO;
    out->type = rd_bytes(&r, tl);
    out->priority = rd_u8(&r);
    uint8_t fb = rd_u8(&r);
    out->nblobs = fb & PROTO_TASK_NBLOBS_MASK;
    out->flags = fb & (uint8_t)~PROTO_TASK_NBLOBS_MASK;
    if (out->nblobs > PROTO_MAX_BLOBS || (fb & ~PROTO_TASK_FLAGS_KNOWN))
        return P2C2R_EPROTO;
    out->min_version = rd_u32(&r);
    out->deadline_ms = rd_u32(&r);
    uint16_t pl = rd_u16(&r);
    if (pl > PROTO_MAX_PARAMS)
        return P2C2R_EPROTO;
    out->params = rd_bytes(&r, pl);
    out->blobs = rd_bytes(&r, (size_t)out->nblobs * PROTO_HASH_LEN).p;
    memset(&out->reqs, 0, sizeof(out->reqs));
    if (out->flags & PROTO_TASK_F_REQS) {
        out->reqs.gpu = rd_u8(&r);
        (void)rd_u8(&r);
        out->reqs.min_cores = rd_u16(&r);
        out->reqs.min_mem = rd_u64(&r);
        if (out->reqs.gpu > 1)
            return P2C2R_EPROTO;
    }
    uint32_t il = rd_u32(&r);
    out->input = rd_bytes(&r, il);
    return rd_done(&r);
}

int proto_parse_result(const uint8_t *b, size_t n, struct msg_result *out)
{
    struct rd r = {b, b + n, 0};
    out->status = rd_u16(&r);
    (void)rd_u16(&r);
    out->exec_us = rd_u32(&r);
    if (r.bad)
        return P2C2R_EPROTO;
    out->output.p = r.p;
    out->output.len = (size_t)(r.end - r.p);
    return 0;
}

int proto_parse_deliver(const uint8_t *b, size_t n, struct msg_deliver *out)
{
    struct rd r = {b, b + n, 0};
    out->status = rd_u16(&r);
    out->attempts = rd_u16(&r);
    out->exec_us = rd_u32(&r);
    out->peer_id = rd_u32(&r);
    out->flags = rd_u32(&r);
    if (r.bad)
        return P2C2R_EPROTO;
    out->output.p = r.p;
    out->output.len = (size_t)(r.end - r.p);
    return 0;
}

int proto_parse_u32(const uint8_t *b, size_t n, uint32_t *out)
{
    if (n != 4)
        return P2C2R_EPROTO;
    *out = rd32(b);
    return 0;
}

int proto_parse_u64(const uint8_t *b, size_t n, uint64_t *out)
{
    if (n != 8)
        return P2C2R_EPROTO;
    *out = rd64(b);
    return 0;
}

int proto_batch_begin(const uint8_t *b, size_t n, struct proto_batch_iter *it,
                      uint32_t *count)
{
    if (n < 4)
        return P2C2R_EPROTO;
    uint32_t c = rd32(b);
    if (c == 0 || c > PROTO_MAX_BATCH)
        return P2C2R_EPROTO;
    /* Every entry needs at least its prefix and a minimal task. */
    if ((uint64_t)c * (PROTO_BATCH_ENTRY_PREFIX + PROTO_TASK_FIXED + 1) > n - 4)
        return P2C2R_EPROTO;
    it->p = b + 4;
    it->end = b + n;
    it->left = c;
    *count = c;
    return 0;
}

int proto_batch_next(struct proto_batch_iter *it, uint64_t *req_id,
                     const uint8_t **task, size_t *task_len)
{
    if (it->left == 0)
        return it->p == it->end ? 0 : P2C2R_EPROTO;
    size_t avail = (size_t)(it->end - it->p);
    if (avail < PROTO_BATCH_ENTRY_PREFIX)
        return P2C2R_EPROTO;
    uint64_t id = rd64(it->p);
    uint32_t tl = rd32(it->p + 8);
    if (tl > avail - PROTO_BATCH_ENTRY_PREFIX)
        return P2C2R_EPROTO;
    *req_id = id;
    *task = it->p + PROTO_BATCH_ENTRY_PREFIX;
    *task_len = tl;
    it->p += PROTO_BATCH_ENTRY_PREFIX + tl;
    it->left--;
    return 1;
}

size_t proto_hello_size(const struct msg_hello *m)
{
    return 9 + m->token.len + m->name.len;
}

size_t proto_put_hello(uint8_t *d, const struct msg_hello *m)
{
    wr16(d, m->ver_min);
    wr16(d + 2, m->ver_max);
    d[4] = m->role;
    d[5] = 0;
    wr16(d + 6, (uint16_t)m->token.len);
    if (m->token.len)
        memcpy(d + 8, m->token.p, m->token.len);
    size_t o = 8 + m->token.len;
    d[o++] = (uint8_t)m->name.len;
    if (m->name.len)
        memcpy(d + o, m->name.p, m->name.len);
    return o + m->name.len;
}

size_t proto_hello_ok_size(const struct msg_hello_ok *m)
{
    return m->has_nonce ? PROTO_HELLO_OK_PEER_LEN : PROTO_HELLO_OK_LEN;
}

size_t proto_put_hello_ok(uint8_t *d, const struct msg_hello_ok *m)
{
    wr16(d, m->version);
    wr16(d + 2, 0);
    wr32(d + 4, m->max_body);
    wr32(d + 8, m->max_inflight);
    wr64(d + 12, m->conn_id);
    if (!m->has_nonce)
        return PROTO_HELLO_OK_LEN;
    memcpy(d + PROTO_HELLO_OK_LEN, m->nonce, PROTO_NONCE_LEN);
    return PROTO_HELLO_OK_PEER_LEN;
}

size_t proto_error_size(size_t text_len)
{
    return 4 + (text_len > 1024 ? 1024 : text_len);
}

size_t proto_put_error(uint8_t *d, uint16_t code, const char *text, size_t text_len)
{
    if (text_len > 1024)
        text_len = 1024;
    wr16(d, code);
    wr16(d + 2, (uint16_t)text_len);
    if (text_len)
        memcpy(d + 4, text, text_len);
    return 4 + text_len;
}

size_t proto_register_signed_size(const struct msg_register *m)
{
    size_t n = 16 + m->gpu_model.len;
    for (unsigned i = 0; i < m->ntypes; i++)
        n += PROTO_TYPE_ENTRY_FIXED + m->types[i].name.len;
    return n + (m->has_pool ? PROTO_POOL_BLOCK_LEN : 0);
}

size_t proto_register_size(const struct msg_register *m)
{
    return proto_register_signed_size(m) + (m->pk ? PROTO_REGISTER_AUTH_LEN : 0);
}

size_t proto_put_register(uint8_t *d, const struct msg_register *m)
{
    wr16(d, m->cores);
    wr16(d + 2, m->slots);
    wr64(d + 4, m->mem_bytes);
    d[12] = m->gpu;
    d[13] = m->ntypes;
    wr16(d + 14, (uint16_t)m->gpu_model.len);
    size_t o = 16;
    if (m->gpu_model.len)
        memcpy(d + o, m->gpu_model.p, m->gpu_model.len);
    o += m->gpu_model.len;
    for (unsigned i = 0; i < m->ntypes; i++) {
        d[o++] = (uint8_t)m->types[i].name.len;
        memcpy(d + o, m->types[i].name.p, m->types[i].name.len);
        o += m->types[i].name.len;
        wr32(d + o, m->types[i].version);
        o += 4;
        d[o++] = m->types[i].flags;
    }
    if (m->has_pool) {
        d[o] = m->pool;
        d[o + 1] = 0;
        wr16(d + o + 2, 0);
        wr32(d + o + 4, m->cost);
        o += PROTO_POOL_BLOCK_LEN;
    }
    if (m->pk) {
        memcpy(d + o, m->pk, PROTO_PK_LEN);
        o += PROTO_PK_LEN;
        if (m->sig)
            memcpy(d + o, m->sig, PROTO_SIG_LEN);
        else
            memset(d + o, 0, PROTO_SIG_LEN);
        o += PROTO_SIG_LEN;
    }
    return o;
}

size_t proto_task_size(size_t type_len, size_t params_len, size_t nblobs, size_t input_len)
{
    return PROTO_TASK_FIXED + type_len + params_len + nblobs * PROTO_HASH_LEN + input_len;
}

size_t proto_put_task_head(uint8_t *d, const char *type, size_t type_len,
                           uint32_t min_version, uint32_t deadline_ms,
                           uint8_t priority, const char *params,
                           size_t params_len, const uint8_t *blobs, size_t nblobs,
                           uint32_t input_len)
{
    return proto_put_task_head_ext(d, type, type_len, min_version, deadline_ms, priority, 0, params,
                                   params_len, blobs, nblobs, NULL, input_len);
}

size_t proto_task_size_ext(size_t type_len, size_t params_len, size_t nblobs, int has_reqs,
                           size_t input_len)
{
    return proto_task_size(type_len, params_len, nblobs, input_len) +
           (has_reqs ? PROTO_REQS_LEN : 0);
}

size_t proto_put_task_head_ext(uint8_t *d, const char *type, size_t type_len,
                               uint32_t min_version, uint32_t deadline_ms, uint8_t priority,
                               uint8_t flags, const char *params, size_t params_len,
                               const uint8_t *blobs, size_t nblobs, const struct proto_reqs *reqs,
                               uint32_t input_len)
{
    size_t o = 0;
    assert(nblobs <= PROTO_MAX_BLOBS);
    flags &= PROTO_TASK_F_NOCACHE;
    if (reqs)
        flags |= PROTO_TASK_F_REQS;
    d[o++] = (uint8_t)type_len;
    memcpy(d + o, type, type_len);
    o += type_len;
    d[o++] = priority;
    d[o++] = (uint8_t)(nblobs | flags);
    wr32(d + o, min_version);
    o += 4;
    wr32(d + o, deadline_ms);
    o += 4;
    wr16(d + o, (uint16_t)params_len);
    o += 2;
    if (params_len)
        memcpy(d + o, params, params_len);
    o += params_len;
    if (nblobs)
        memcpy(d + o, blobs, nblobs * PROTO_HASH_LEN);
    o += nblobs * PROTO_HASH_LEN;
    if (reqs) {
        d[o] = reqs->gpu ? 1 : 0;
        d[o + 1] = 0;
        wr16(d + o + 2, reqs->min_cores);
        wr64(d + o + 4, reqs->min_mem);
        o += PROTO_REQS_LEN;
    }
    wr32(d + o, input_len);
    return o + 4;
}

size_t proto_put_result_head(uint8_t *d, uint16_t status, uint32_t exec_us)
{
    wr16(d, status);
    wr16(d + 2, 0);
    wr32(d + 4, exec_us);
    return PROTO_RESULT_PREFIX;
}

size_t proto_put_deliver_head(uint8_t *d, uint16_t status, uint16_t attempts,
                              uint32_t exec_us, uint32_t peer_id, uint32_t flags)
{
    wr16(d, status);
    wr16(d + 2, attempts);
    wr32(d + 4, exec_us);
    wr32(d + 8, peer_id);
    wr32(d + 12, flags);
    return PROTO_DELIVER_PREFIX;
}

int proto_batch_check(const uint8_t *b, size_t n, struct proto_batch_iter *it, uint32_t *count)
{
    if (proto_batch_begin(b, n, it, count) != 0)
        return P2C2R_EPROTO;
    struct proto_batch_iter chk = *it;
    uint64_t id;
    const uint8_t *tb;
    size_t tl;
    struct msg_task m;
    int r;
    while ((r = proto_batch_next(&chk, &id, &tb, &tl)) == 1)
        if (proto_parse_task(tb, tl, &m) != 0)
            return P2C2R_EPROTO;
    return r == 0 ? 0 : P2C2R_EPROTO;
}

/* ---- durable jobs ---- */

size_t proto_job_info_size(size_t type_len) { return PROTO_JOB_INFO_FIXED + type_len; }

size_t proto_put_job_info(uint8_t *dst, const struct msg_job_info *m)
{
    wr64(dst, m->id);
    wr64(dst + 8, m->key);
    wr64(dst + 16, m->submit_ms);
    wr64(dst + 24, m->done_ms);
    wr32(dst + 32, m->exec_us);
    wr32(dst + 36, m->peer_id);
    wr32(dst + 40, m->flags);
    wr32(dst + 44, m->out_len);
    wr16(dst + 48, m->status);
    wr16(dst + 50, m->attempts);
    dst[52] = m->state;
    dst[53] = (uint8_t)m->type.len;
    if (m->type.len)
        memcpy(dst + PROTO_JOB_INFO_FIXED, m->type.p, m->type.len);
    return PROTO_JOB_INFO_FIXED + m->type.len;
}

int proto_parse_job_info(const uint8_t *b, size_t n, struct msg_job_info *out, size_t *used)
{
    if (n < PROTO_JOB_INFO_FIXED)
        return P2C2R_EPROTO;
    size_t tl = b[53];
    if (tl > PROTO_MAX_TYPE_NAME || n - PROTO_JOB_INFO_FIXED < tl || b[52] < 1 || b[52] > 3)
        return P2C2R_EPROTO;
    out->id = rd64(b);
    out->key = rd64(b + 8);
    out->submit_ms = rd64(b + 16);
    out->done_ms = rd64(b + 24);
    out->exec_us = rd32(b + 32);
    out->peer_id = rd32(b + 36);
    out->flags = rd32(b + 40);
    out->out_len = rd32(b + 44);
    out->status = rd16(b + 48);
    out->attempts = rd16(b + 50);
    out->state = b[52];
    out->type.p = b + PROTO_JOB_INFO_FIXED;
    out->type.len = tl;
    *used = PROTO_JOB_INFO_FIXED + tl;
    return 0;
}
