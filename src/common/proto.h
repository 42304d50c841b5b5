/* proto.h - the p2c2r wire protocol: frame header, message types, and
 * allocation-free encoders and decoders for every message body.
 *
 * docs/PROTOCOL.md is the normative description; this header mirrors it.
 * All integers are little-endian.  Decoders return views that point into the
 * caller's buffer (valid as long as that buffer is), never allocate and never
 * read past the length they were given. */
#ifndef P2C2R_PROTO_H
#define P2C2R_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x52433250u /* "P2CR" in memory order */
#define PROTO_VERSION 1
#define PROTO_HDR_LEN 20
#define PROTO_MAX_BODY_DEFAULT (16u << 20)  /* 16 MiB */
#define PROTO_MAX_TOKEN 256
#define PROTO_MAX_NAME 64
#define PROTO_MAX_TYPE_NAME 32
#define PROTO_MAX_TYPES 32
#define PROTO_MAX_PARAMS 4096
#define PROTO_MAX_BATCH 4096

enum proto_type {
    MSG_HELLO = 0x01,
    MSG_HELLO_OK = 0x02,
    MSG_ERROR = 0x03,
    MSG_PING = 0x04,
    MSG_PONG = 0x05,
    MSG_PEER_REGISTER = 0x10,
    MSG_REGISTER_OK = 0x11,
    MSG_CREDIT = 0x12,
    MSG_SUBMIT = 0x20,
    MSG_SUBMIT_BATCH = 0x21,
    MSG_ACCEPTED = 0x22,
    MSG_REJECTED = 0x23,
    MSG_CANCEL = 0x24,
    MSG_ASSIGN = 0x30,
    MSG_RESULT = 0x31,
    MSG_DELIVER = 0x40,
    MSG_STATS_REQ = 0x50,
    MSG_STATS = 0x51,
    MSG_BLOB_PUT = 0x60,
    MSG_BLOB_OK = 0x61,
    MSG_BLOB_DATA = 0x62,
    /* Durable jobs (docs/PROTOCOL.md, "Durable jobs"). */
    MSG_JOB_SUBMIT = 0x70,
    MSG_JOB_ACK = 0x71,
    MSG_JOB_REQ = 0x72,
    MSG_JOB_INFO = 0x73,
    MSG_JOB_LIST = 0x74,
    MSG_JOB_LIST_OK = 0x75,
};

#define PROTO_MAX_BLOBS 4 /* blobs one task may reference */
#define PROTO_HASH_LEN 32 /* SHA-256 */

enum proto_role { ROLE_NONE = 0, ROLE_RENTER = 1, ROLE_PEER = 2 };

/* Flags in the frame header. */
#define PROTO_F_WANT_ACK 0x0001u /* SUBMIT/SUBMIT_BATCH: send ACCEPTED */

struct frame_hdr {
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint64_t req_id;
    uint32_t body_len;
};

/* Decodes a frame header from buf[0..len).  Returns the total frame length
 * (header + body, > 0) when a whole frame is present, 0 when more bytes are
 * needed, or P2C2R_EPROTO (bad magic or version) / P2C2R_ETOOBIG (body over
 * max_body).  *out is written whenever the header itself is complete (so a
 * caller can see the announced size while waiting for the body). */
int64_t proto_decode_hdr(const uint8_t *buf, size_t len, uint32_t max_body,
                         struct frame_hdr *out);

/* Writes a 20-byte header at dst. */
void proto_put_hdr(uint8_t *dst, uint8_t type, uint16_t flags, uint64_t req_id,
                   uint32_t body_len);

/* Returns a static name for a message type ("SUBMIT"), or "UNKNOWN". */
const char *proto_type_name(uint8_t type);

/* ---- message bodies: views ---------------------------------------------- */

struct bytes_view {
    const uint8_t *p;
    size_t len;
};

struct msg_hello {
    uint16_t ver_min, ver_max;
    uint8_t role;
    struct bytes_view token; /* <= PROTO_MAX_TOKEN */
    struct bytes_view name;  /* <= PROTO_MAX_NAME */
};

/* The challenge a peer-role connection gets in its HELLO_OK
 * (docs/PROTOCOL.md 5.1): 32 random bytes, fresh for each connection, that
 * the peer signs in its PEER_REGISTER (common/ident.h). */
#define PROTO_NONCE_LEN 32

struct msg_hello_ok {
    uint16_t version;
    uint32_t max_body;
    uint32_t max_inflight; /* tasks a renter may have outstanding */
    uint64_t conn_id;
    uint8_t has_nonce;     /* 1: the body carries a nonce (to a peer); 0: it does not (to a renter) */
    uint8_t nonce[PROTO_NONCE_LEN]; /* copied, so it outlives the frame; valid when has_nonce */
};

struct msg_error {
    uint16_t code; /* absolute value of a p2c2r_error */
    struct bytes_view text;
};

/* Flags of a type a peer registers (the byte after each type's version).
 * Unknown bits are reserved: a sender sets them to 0 and a receiver ignores
 * them (proto_parse_register clears them), so a later flag can be added
 * without a protocol version as long as a coordinator that ignores it still
 * behaves correctly; a flag that must not be ignored needs a new version. */
/* The type's output is byte-identical on every peer for the same input,
 * params and blobs (its executor sets P2C2R_EXEC_DETERMINISTIC). */
#define PROTO_TYPE_F_DETERMINISTIC 0x01u
#define PROTO_TYPE_FLAGS_KNOWN PROTO_TYPE_F_DETERMINISTIC
#define PROTO_TYPE_ENTRY_FIXED 6 /* a type entry without its name: name_len, version, flags */

struct proto_tasktype {
    struct bytes_view name;
    uint32_t version;
    uint8_t flags; /* PROTO_TYPE_F_*: cleared of unknown bits by the parser, sent as given */
};

/* The peer's identity at the end of PEER_REGISTER: its Ed25519 public key,
 * then its signature of the challenge (common/ident.h) over the nonce and
 * conn_id of its HELLO_OK and the register body before the key. */
#define PROTO_PK_LEN 32
#define PROTO_SIG_LEN 64
#define PROTO_REGISTER_AUTH_LEN (PROTO_PK_LEN + PROTO_SIG_LEN)

/* The optional pool block of PEER_REGISTER (docs/PROTOCOL.md 5.3), between
 * the types and the identity: u8 pool, u8 + u16 reserved, u32 cost.  A body
 * without it registers the peer in the volunteer pool at cost 0, so peers
 * that predate it register as before; the reference peer sends it only when
 * its pool or cost differ from that. */
#define PROTO_POOL_BLOCK_LEN 8
enum { PROTO_POOL_VOLUNTEER = 0, PROTO_POOL_CLOUD = 1, PROTO_POOLS = 2 };

struct msg_register {
    uint16_t cores;
    uint16_t slots;
    uint64_t mem_bytes;
    uint8_t gpu;
    uint8_t ntypes;
    struct bytes_view gpu_model;
    struct proto_tasktype types[PROTO_MAX_TYPES];
    /* The pool block: has_pool 0 when absent (pool and cost then read 0).
     * pool is as sent (the coordinator refuses values >= PROTO_POOLS). */
    uint8_t has_pool;
    uint8_t pool;
    uint32_t cost;
    /* The identity: pk and sig point into the body (PROTO_PK_LEN and
     * PROTO_SIG_LEN bytes), or are both NULL when the body ends after its
     * types (a peer without identity: the coordinator refuses it with
     * EAUTH, not EPROTO, so it can say why).  signed_len is the length of
     * the body before pk: the bytes the signature covers.  To encode, set pk
     * and sig (sig may be NULL: zeros are written, for signing in place). */
    const uint8_t *pk, *sig;
    size_t signed_len;
};

/* A task as carried by SUBMIT, each SUBMIT_BATCH entry, and ASSIGN. */
/* The byte after priority: bits 0..2 hold nblobs, the top bits are flags. */
#define PROTO_TASK_NBLOBS_MASK 0x07u
#define PROTO_TASK_F_NOCACHE 0x40u /* never answer from, coalesce or fill the result cache */
#define PROTO_TASK_F_REQS 0x80u    /* a requirements block follows the blob hashes */
#define PROTO_TASK_FLAGS_KNOWN (PROTO_TASK_NBLOBS_MASK | PROTO_TASK_F_NOCACHE | PROTO_TASK_F_REQS)
#define PROTO_REQS_LEN 12

/* What a task needs of the peer that runs it (PROTO_TASK_F_REQS). */
struct proto_reqs {
    uint8_t gpu;        /* 1 = only a peer that registered a GPU */
    uint16_t min_cores; /* 0 = any */
    uint64_t min_mem;   /* bytes, 0 = any */
};

/* Priority classes (the priority byte); larger values count as background. */
enum proto_prio { PRIO_REALTIME = 0, PRIO_INTERACTIVE = 1, PRIO_BACKGROUND = 2, PRIO_CLASSES = 3 };

struct msg_task {
    struct bytes_view type;  /* 1..PROTO_MAX_TYPE_NAME */
    uint32_t min_version;
    uint32_t deadline_ms;    /* 0 = coordinator default */
    uint8_t priority;
    uint8_t flags;            /* PROTO_TASK_F_* (nblobs bits masked off) */
    uint8_t nblobs;           /* <= PROTO_MAX_BLOBS */
    struct proto_reqs reqs;   /* zero unless PROTO_TASK_F_REQS */
    struct bytes_view params; /* <= PROTO_MAX_PARAMS, "key=value\n" lines */
    const uint8_t *blobs;     /* nblobs SHA-256 hashes, 32 bytes each */
    struct bytes_view input;
};

struct msg_result {
    uint16_t status; /* 0 = ok, else abs(p2c2r_error) and output is text */
    uint32_t exec_us;
    struct bytes_view output;
};

/* DELIVER flags (the u32 at offset 12). */
#define PROTO_DELIVER_F_CACHED 0x1u /* answered from the result cache or by an identical task */
#define PROTO_DELIVER_F_HEDGED 0x2u /* a second copy ran on another peer */
#define PROTO_DELIVER_F_VERIFIED 0x4u /* independent peers returned the same result */

struct msg_deliver {
    uint16_t status;
    uint16_t attempts;
    uint32_t exec_us;
    uint32_t peer_id;
    uint32_t flags; /* PROTO_DELIVER_F_* */
    struct bytes_view output;
};

#define PROTO_TASK_FIXED 17 /* task body without its three strings */
#define PROTO_RESULT_PREFIX 8
#define PROTO_DELIVER_PREFIX 16
#define PROTO_BATCH_ENTRY_PREFIX 12

/* Each parser returns 0 or P2C2R_EPROTO; on failure *out is unspecified. */
int proto_parse_hello(const uint8_t *b, size_t n, struct msg_hello *out);
int proto_parse_hello_ok(const uint8_t *b, size_t n, struct msg_hello_ok *out);
int proto_parse_error(const uint8_t *b, size_t n, struct msg_error *out);
int proto_parse_register(const uint8_t *b, size_t n, struct msg_register *out);
int proto_parse_task(const uint8_t *b, size_t n, struct msg_task *out);
int proto_parse_result(const uint8_t *b, size_t n, struct msg_result *out);
int proto_parse_deliver(const uint8_t *b, size_t n, struct msg_deliver *out);
int proto_parse_u32(const uint8_t *b, size_t n, uint32_t *out);
int proto_parse_u64(const uint8_t *b, size_t n, uint64_t *out);

/* Batch iteration: proto_batch_begin checks the count; proto_batch_next
 * returns 1 with the next entry, 0 at a clean end, P2C2R_EPROTO when the
 * entries do not exactly fill the body. */
struct proto_batch_iter {
    const uint8_t *p, *end;
    uint32_t left;
};
int proto_batch_begin(const uint8_t *b, size_t n, struct proto_batch_iter *it,
                      uint32_t *count);
int proto_batch_next(struct proto_batch_iter *it, uint64_t *req_id,
                     const uint8_t **task, size_t *task_len);
/* proto_batch_begin, then a check that the entries exactly fill the body
 * and each is a well-formed task (proto_parse_task), so that a batch is
 * refused whole rather than half-accepted: 0 with *it at the first entry,
 * or P2C2R_EPROTO. */
int proto_batch_check(const uint8_t *b, size_t n, struct proto_batch_iter *it, uint32_t *count);

/* ---- encoders -------------------------------------------------------------
 * Each *_size function returns the body length; each put function writes the
 * body at dst (which must have that much room) and returns the bytes written. */
size_t proto_hello_size(const struct msg_hello *m);
size_t proto_put_hello(uint8_t *dst, const struct msg_hello *m);
#define PROTO_HELLO_OK_LEN 20 /* to a renter; a peer's carries the nonce too */
#define PROTO_HELLO_OK_PEER_LEN (PROTO_HELLO_OK_LEN + PROTO_NONCE_LEN)
size_t proto_hello_ok_size(const struct msg_hello_ok *m);
size_t proto_put_hello_ok(uint8_t *dst, const struct msg_hello_ok *m);
size_t proto_error_size(size_t text_len);
size_t proto_put_error(uint8_t *dst, uint16_t code, const char *text, size_t text_len);
/* The whole body: the signed part, plus PROTO_REGISTER_AUTH_LEN when m->pk
 * is set. */
size_t proto_register_size(const struct msg_register *m);
/* The signed part alone (everything before the public key). */
size_t proto_register_signed_size(const struct msg_register *m);
size_t proto_put_register(uint8_t *dst, const struct msg_register *m);
size_t proto_task_size(size_t type_len, size_t params_len, size_t nblobs, size_t input_len);
/* Writes the task fields except the input bytes; returns the bytes written.
 * The input (input_len bytes) must follow immediately.  blobs holds nblobs
 * 32-byte hashes (may be NULL when nblobs is 0). */
size_t proto_put_task_head(uint8_t *dst, const char *type, size_t type_len,
                           uint32_t min_version, uint32_t deadline_ms,
                           uint8_t priority, const char *params,
                           size_t params_len, const uint8_t *blobs, size_t nblobs,
                           uint32_t input_len);
/* The same with flags (PROTO_TASK_F_NOCACHE; F_REQS is set by the encoder
 * when reqs is not NULL) and a requirements block. */
size_t proto_task_size_ext(size_t type_len, size_t params_len, size_t nblobs, int has_reqs,
                           size_t input_len);
size_t proto_put_task_head_ext(uint8_t *dst, const char *type, size_t type_len,
                               uint32_t min_version, uint32_t deadline_ms, uint8_t priority,
                               uint8_t flags, const char *params, size_t params_len,
                               const uint8_t *blobs, size_t nblobs, const struct proto_reqs *reqs,
                               uint32_t input_len);
size_t proto_put_result_head(uint8_t *dst, uint16_t status, uint32_t exec_us);
size_t proto_put_deliver_head(uint8_t *dst, uint16_t status, uint16_t attempts,
                              uint32_t exec_us, uint32_t peer_id, uint32_t flags);

/* ---- durable jobs -------------------------------------------------------
 * JOB_SUBMIT has SUBMIT_BATCH's body (each entry's u64 is the renter's key
 * for the job, 0 = none); JOB_ACK: u32 count, then count entries of
 * PROTO_JOB_ACK_ENTRY bytes (u64 key, u64 job id, u16 code, u16 flags). */
#define PROTO_JOB_ACK_ENTRY 20
#define PROTO_JOB_ACK_F_KNOWN 0x1u /* the key named a job submitted earlier: its id */
/* JOB_REQ: u8 op, u8 flags, u64 job id. */
enum proto_job_op { PROTO_JOB_STATUS = 1, PROTO_JOB_GET = 2, PROTO_JOB_CANCEL = 3, PROTO_JOB_RELEASE = 4 };
#define PROTO_JOB_REQ_LEN 10
#define PROTO_JOB_F_RELEASE 0x1u /* GET: the job is deleted once this reply is sent */
/* JOB_LIST: u64 after (ids above it), u32 max; JOB_LIST_OK: u32 count,
 * u64 next (0 = no more), then count job records. */
#define PROTO_JOB_LIST_REQ_LEN 12
#define PROTO_JOB_LIST_HEAD 12

/* One job record (JOB_INFO, each entry of JOB_LIST_OK).  In JOB_INFO for
 * a GET the output (out_len bytes) follows the record. */
struct msg_job_info {
    uint64_t id, key, submit_ms, done_ms; /* wall-clock ms */
    uint32_t exec_us, peer_id, flags;     /* flags: PROTO_DELIVER_F_* */
    uint32_t out_len;                     /* the outcome's bytes (result or error text) */
    uint16_t status;                      /* abs(p2c2r_error), when state is done */
    uint16_t attempts;
    uint8_t state;                        /* 1 queued, 2 running, 3 done */
    struct bytes_view type;
};
#define PROTO_JOB_INFO_FIXED 54
size_t proto_job_info_size(size_t type_len);
size_t proto_put_job_info(uint8_t *dst, const struct msg_job_info *m);
/* Parses one record at the start of b[0..n) and sets *used to its length.
 * 0 or P2C2R_EPROTO (short, bad state, bad type length). */
int proto_parse_job_info(const uint8_t *b, size_t n, struct msg_job_info *out, size_t *used);

/* Little-endian helpers. */
static inline uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static inline void wr16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void wr32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void wr64(uint8_t *p, uint64_t v) { wr32(p, (uint32_t)v); wr32(p + 4, (uint32_t)(v >> 32)); }

#endif
