/* gwjson.h - the gateway's JSON messages (docs/GATEWAY.md): a decoder that
 * checks one text message against the vocabulary and turns it into a typed
 * view, and the JSON text writers the gateway's output uses.
 *
 * The decoder is pure (no coordinator state), so it is unit tested and
 * fuzzed alone (tests/fuzz/fuzz_gwjson.c).  Flat messages (nearly all of
 * them) go through a parser of its own that does not allocate per value;
 * everything else through jansson, which also decides every refusal, so both
 * accept exactly the same texts (the fuzz target compares them).  The views
 * it returns point into memory the message owns, released with
 * gw_msg_free.
 *
 * Thread context: any thread; nothing is shared. */
#ifndef P2C2R_GWJSON_H
#define P2C2R_GWJSON_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/proto.h"

#define GW_MAX_ID 64       /* task_id, client_id, peer_id: characters */
#define GW_MAX_ERROR 1024  /* task_result.error: bytes kept */

enum gw_kind {
    GW_GAMER_REGISTER,
    GW_TASK_SUBMIT,
    GW_TASK_CANCEL,
    GW_PEER_REGISTER,
    GW_TASK_RESULT,
    GW_HEARTBEAT,
    GW_STATS_REQUEST,
    GW_BLOB_PUT,
    GW_KINDS
};

/* A string view into the document. */
struct gw_str {
    const char *p;
    size_t len;
};

struct gw_type {
    struct gw_str name;
    uint32_t version;
    uint8_t det; /* "deterministic": true (default true) */
};

/* One decoded message.  Fields a message kind does not have are zero. */
struct gw_msg {
    int kind;          /* enum gw_kind */
    void *doc;         /* the parsed document (json_t *), owned, or NULL */
    char *text;        /* the fast parser's copy of the text, owned, or NULL */
    void *fast;        /* the fast parser's objects, owned, or NULL */
    /* task_id: as it should be echoed in JSON ("\"a-1\"" with quotes, or
     * "17"), and its numeric value when it is a non-negative integer or a
     * string of decimal digits (tid_is_num). */
    char tid[GW_MAX_ID + 3];
    uint8_t tid_len, tid_is_num;
    uint64_t tid_num;
    struct gw_str name;  /* client_id / peer_id */
    struct gw_str token;
    uint8_t binary_results; /* gamer_register */
    uint8_t binary_inputs;  /* peer_register: task_assign data as binary messages */
    /* task_submit */
    struct gw_str task_type;
    struct gw_str data;     /* base64 text */
    uint8_t data_frame;     /* the input follows as a binary message */
    char params[PROTO_MAX_PARAMS]; /* "key=value\n" lines */
    size_t params_len;
    uint8_t priority, no_cache;
    uint32_t deadline_ms, min_version;
    /* peer_register */
    uint16_t cores, slots;
    uint64_t mem_bytes;
    uint8_t gpu;
    struct gw_str gpu_model;
    struct gw_type types[PROTO_MAX_TYPES];
    uint8_t ntypes;
    uint8_t key[32], sig[64];
    uint8_t has_key;
    /* task_result */
    uint8_t success, result_frame;
    struct gw_str result; /* base64 text */
    struct gw_str error;  /* text */
    int error_code;       /* a p2c2r_error for a failed result (default P2C2R_ETASK) */
    uint32_t exec_us;
    /* heartbeat: new slots (0: unchanged) */
    uint32_t credit;
    /* stats_request: a subscription's period (0: one answer) */
    uint32_t every_ms;
    /* task_submit "blobs": nblobs SHA-256 hashes.  blob_put uses tid (its
     * request_id), data and data_frame. */
    uint8_t blobs[PROTO_MAX_BLOBS * PROTO_HASH_LEN];
    uint8_t nblobs;
};

/* Decodes the text message t[0..n).  Returns 0 with *out filled (release
 * with gw_msg_free), or P2C2R_EPROTO (not JSON, not an object, no or an
 * unknown msg_type) / P2C2R_EINVAL (a field missing, of the wrong type or out
 * of range) with a reason in err; *out is then empty. */
int gw_decode(const char *t, size_t n, struct gw_msg *out, char *err, size_t errcap);

/* The same, with the fast parser allowed (fast 1, as gw_decode) or not
 * (0: jansson only), for tests that compare the two. */
int gw_decode_ex(const char *t, size_t n, int fast, struct gw_msg *out, char *err, size_t errcap);

/* Releases what m owns (NULL or an empty m: no-op). */
void gw_msg_free(struct gw_msg *m);

/* The name ("task_submit") of a kind. */
const char *gw_kind_name(int kind);

/* ---- writers: append JSON text to o; return 0, or -1 when o is full ---- */

/* A JSON string (quotes included) of s[0..n), escaped. */
int gw_put_str(struct buf *o, const char *s, size_t n);
/* printf-style raw text. */
int gw_printf(struct buf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A JSON string of the base64 of p[0..n). */
int gw_put_b64(struct buf *o, const uint8_t *p, size_t n);
/* Raw text s (NUL-terminated), as it is. */
int gw_put_lit(struct buf *o, const char *s);
/* A decimal integer. */
int gw_put_u64(struct buf *o, uint64_t v);
/* Microseconds as milliseconds with three decimals ("12.345"). */
int gw_put_ms(struct buf *o, uint64_t us);

#endif
