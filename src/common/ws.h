/* ws.h - WebSocket framing (RFC 6455): frame headers, masking, the opening
 * handshake's accept key, and a reader that turns a byte stream into whole
 * messages (fragments joined, control frames passed through) for the
 * coordinator's gateway (src/coord/gateway.c) and for the test and bench
 * clients.
 *
 * The reader is allocation-free except for the one buffer in which it joins
 * the fragments of a fragmented message, capped at max_msg; an unfragmented
 * message is handed over where it lies, unmasked in place.
 *
 * Everything is pure and reentrant: one reader belongs to one connection. */
#ifndef P2C2R_WS_H
#define P2C2R_WS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum ws_op {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

#define WS_HDR_MAX 14          /* 2 + 8 (64-bit length) + 4 (mask) */
#define WS_CONTROL_MAX 125     /* payload of a control frame */
#define WS_ACCEPT_LEN 28       /* base64 of a SHA-1 */

/* Close status codes used by the gateway (RFC 6455 7.4.1). */
enum {
    WS_CLOSE_NORMAL = 1000,
    WS_CLOSE_GOING_AWAY = 1001,
    WS_CLOSE_PROTOCOL = 1002,
    WS_CLOSE_DATA = 1007,   /* text that is not UTF-8 */
    WS_CLOSE_POLICY = 1008,
    WS_CLOSE_TOO_BIG = 1009,
};

struct ws_hdr {
    uint8_t fin, op, masked;
    uint8_t mask[4];
    uint64_t len;    /* payload bytes */
    size_t hdr_len;  /* header bytes, 2..14 */
};

/* Decodes the frame header at p[0..n).  Returns its length (> 0) with *out
 * filled, 0 when more bytes are needed, P2C2R_EPROTO for a header no
 * endpoint may send (reserved bits set, an unknown opcode, a fragmented or
 * over-long control frame, a length not in its shortest form or with the
 * top bit set), or P2C2R_ETOOBIG when the payload is over max_len (*out is
 * filled then, so the caller can say how big). */
int ws_decode_hdr(const uint8_t *p, size_t n, uint64_t max_len, struct ws_hdr *out);

/* Writes a frame header for a payload of len bytes at dst (WS_HDR_MAX bytes
 * of room); mask NULL: unmasked (server to client), else the 4 key bytes.
 * Returns the header length. */
size_t ws_put_hdr(uint8_t *dst, int fin, int op, uint64_t len, const uint8_t *mask);

/* XORs p[0..n) with the mask, starting at key byte (off % 4). */
void ws_mask(uint8_t *p, size_t n, const uint8_t mask[4], size_t off);

/* The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2):
 * base64(SHA-1(key + GUID)), WS_ACCEPT_LEN characters and a NUL at out.
 * Returns 0, or P2C2R_EPROTO when key is not 24 characters of base64 of 16
 * bytes. */
int ws_accept_key(const char *key, size_t n, char out[WS_ACCEPT_LEN + 1]);

/* Whether p[0..n) is valid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF). */
int ws_utf8_ok(const uint8_t *p, size_t n);

/* Called for each whole message (op TEXT or BINARY) and each control frame
 * (CLOSE, PING, PONG), payload unmasked, borrowed for the call.  Returns 0
 * to go on, nonzero to stop reading. */
typedef int (*ws_msg_fn)(void *arg, int op, uint8_t *p, size_t n);

struct ws_reader {
    struct buf frag;  /* the fragments so far of a fragmented message */
    uint8_t frag_op;  /* its opcode; 0: none in progress */
    uint8_t want_mask; /* 1: frames must be masked (a server); 0: must not be */
    uint64_t max_msg;  /* largest message, fragments joined */
    const char *why;   /* after an error: what was wrong, for the close reason */
};

/* Sets up r for messages of up to max_msg bytes.  want_mask: 1 on the
 * server side (clients must mask), 0 on the client side. */
void ws_reader_init(struct ws_reader *r, uint64_t max_msg, int want_mask);
void ws_reader_fini(struct ws_reader *r);

/* Consumes the whole frames at the start of p[0..n), unmasking them in
 * place, and calls fn for each message and control frame.  Returns the
 * bytes consumed (a partial frame at the end is left for the caller to keep
 * and offer again with more bytes), or P2C2R_EPROTO / P2C2R_ETOOBIG with
 * r->why set (the connection must be closed with WS_CLOSE_PROTOCOL or
 * WS_CLOSE_TOO_BIG).  When fn returns nonzero, returns at once the bytes
 * consumed up to and including that frame. */
long ws_reader_feed(struct ws_reader *r, uint8_t *p, size_t n, ws_msg_fn fn, void *arg, int *stopped);

#endif
