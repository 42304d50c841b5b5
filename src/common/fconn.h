/* fconn.h - a framed protocol connection on a libuv TCP handle: the output
 * queue, read sizing and frame splitting that the coordinator's connections
 * and the peer's coordinator links share.
 *
 * Output: frames are built in place in the out buffer (fconn_frame) or, for
 * a large payload, written straight from where it lies (fconn_send).  A
 * connection with queued output is put once on its owner's dirty list, and
 * the owner flushes the whole list once per loop iteration (uv_check), so
 * many frames share one write.  What the kernel does not take at once goes
 * to uv_write from a second buffer while new frames collect in the first.
 *
 * Input: with nothing buffered, a read lands in a buffer shared by all the
 * owner's connections, so an idle connection holds no input memory; only a
 * partial frame is copied into the connection's own buffer, which is sized
 * to take the whole frame in one more read.
 *
 * TLS (common/tls): with a session attached (fconn_tls_attach), frames are
 * still built in plaintext in out; the flush encrypts them into the
 * session's ciphertext buffer and writes from there, and reads are
 * decrypted in place in the shared buffer before they are split.  Nothing
 * else changes for the owner, and a plaintext connection pays one test.
 *
 * Every buffer has a hard cap given at fconn_init: a remote can never make
 * one grow past it.  Everything runs on the loop's thread. */
#ifndef P2C2R_FCONN_H
#define P2C2R_FCONN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/buf.h"
#include "common/list.h"
#include "common/proto.h"

struct fconn;
struct tls;

/* Handles one whole frame (body borrowed for the call).  Returns 0 to go
 * on, nonzero to stop: the rest of the input is then dropped (the owner has
 * cut or closed the connection). */
typedef int (*fconn_frame_fn)(struct fconn *f, const struct frame_hdr *h, const uint8_t *body);

/* Called when a write fails or libuv reports a failed write: the owner
 * closes the connection.  status is a libuv error. */
typedef void (*fconn_error_fn)(struct fconn *f, int status);

struct fconn {
    uv_tcp_t tcp;            /* tcp.data is the owner's */
    struct buf in, out, sending;
    uv_write_t wreq;
    uint8_t open;            /* set by the owner: writes allowed (connected, not closing) */
    uint8_t writing, dirty;
    uint8_t encoded;         /* the owner rewrites the output before each flush: never write it directly */
    uint8_t tls_fresh;       /* TLS attached and no byte read yet (see FCONN_IN_NOT_TLS) */
    uint32_t max_body;       /* frames with longer bodies are refused at their header */
    size_t keep_in, keep_out; /* buffers over these are freed when they empty */
    struct list_node dirty_node;
    struct list_node *dirty_list; /* the owner's list of connections to flush */
    fconn_error_fn on_error;
    struct tls *tls;         /* NULL = plaintext */
};

/* Sets up f's buffers and list links (not the TCP handle, which the owner
 * initialises): input up to in_max bytes, output up to out_max bytes in each
 * of the two output buffers; an emptied input (output) buffer larger than
 * keep_in (keep_out) bytes is freed. */
void fconn_init(struct fconn *f, struct list_node *dirty_list, size_t in_max, size_t out_max,
                size_t keep_in, size_t keep_out, fconn_error_fn on_error);

/* Frees the buffers (and the TLS session).  Call after the handle is closed. */
void fconn_fini(struct fconn *f);

/* Drops queued output and takes f off the dirty list (the connection is
 * closing). */
void fconn_stop(struct fconn *f);

/* Bytes queued and not yet handed to libuv (plaintext and ciphertext). */
size_t fconn_queued(const struct fconn *f);

/* Puts the connection under TLS: takes ownership of t (common/tls.h), which
 * the caller made with tls_new before anything was sent or read.  A client
 * session starts its handshake at the next flush. */
void fconn_tls_attach(struct fconn *f, struct tls *t);

/* Frees the TLS session, if any (a link that reconnects gets a new one). */
void fconn_tls_detach(struct fconn *f);

/* Reserves a whole frame in f's output and writes its header.  Returns the
 * body pointer (body_len bytes for the caller to fill now), or NULL when the
 * output would pass its cap. */
uint8_t *fconn_frame(struct fconn *f, uint8_t type, uint16_t flags, uint64_t req_id,
                     uint32_t body_len);

/* Sends a frame whose body is prefix (at most 32 bytes) + payload.  A large
 * payload going to a connection with nothing queued is written from where
 * it lies, without a copy; what the kernel does not take is queued, so
 * frame order is kept.  Returns 0, or -1 when the output would pass its
 * cap (nothing was written then). */
int fconn_send(struct fconn *f, uint8_t type, uint64_t req_id, const uint8_t *prefix,
                   size_t prefix_len, const uint8_t *payload, size_t payload_len);

/* Sends n bytes that already form whole frames (a result built by an
 * executor thread, say): written from where they lie when they are large
 * and nothing is queued, else queued.  Returns 0, or -1 when the output
 * would pass its cap. */
int fconn_send_bytes(struct fconn *f, const uint8_t *bytes, size_t n);

/* Puts f on its dirty list (once) so the next fconn_flush_all writes it. */
void fconn_mark_dirty(struct fconn *f);

/* Writes what f has queued.  Returns 0, or a libuv error after which the
 * owner must close the connection. */
int fconn_flush(struct fconn *f);

/* Flushes every connection on a dirty list; a failure calls its on_error. */
void fconn_flush_all(struct list_node *dirty_list);

/* The alloc callback's half: where the next read should land.  shared
 * (shared_len bytes) is used when nothing is buffered; otherwise f's input
 * buffer grows to take the rest of the pending frame. */
void fconn_alloc(struct fconn *f, uint8_t *shared, size_t shared_len, uv_buf_t *out);

/* Result of fconn_input. */
enum fconn_in {
    FCONN_IN_OK = 0,
    FCONN_IN_STOPPED = 1,
    FCONN_IN_BAD_HEADER = 2,
    FCONN_IN_FULL = 3,
    FCONN_IN_TLS = 4,     /* the TLS session failed: tls_error(f->tls) says why */
    FCONN_IN_NOT_TLS = 5, /* TLS attached, but the remote's first byte opens no TLS
                             record: the session is detached, so the owner may
                             answer in plaintext */
    FCONN_IN_EOF = 6,     /* the remote closed its TLS session */
};

/* The read callback's half: hands every whole frame of the nread bytes just
 * read into b (from fconn_alloc) to fn and keeps a partial frame's bytes.
 * Returns FCONN_IN_OK, FCONN_IN_STOPPED (fn returned nonzero; the rest is
 * dropped), FCONN_IN_BAD_HEADER (*bad has the header and *bad_code the
 * decoder's error: P2C2R_ETOOBIG for a body over max_body, else
 * P2C2R_EPROTO), FCONN_IN_FULL (a partial frame would pass the input
 * cap), or under TLS FCONN_IN_TLS, FCONN_IN_NOT_TLS or FCONN_IN_EOF.
 * After anything but OK the owner cuts the connection. */
int fconn_input(struct fconn *f, const uv_buf_t *b, size_t nread, const uint8_t *shared,
                fconn_frame_fn fn, struct frame_hdr *bad, int *bad_code);

#endif
