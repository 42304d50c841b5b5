/* tls.h - TLS 1.3 (OpenSSL) over memory: the record layer of one connection
 * without a socket, so that the caller's own I/O drives it (libuv reads and
 * writes in common/fconn, send/recv in libp2c2r) and nothing ever blocks.
 *
 * Ciphertext in: tls_feed lends bytes just read (valid until tls_read
 * returns 0); tls_in_space / tls_in_commit let a caller read into the
 * connection's own buffer instead.  Plaintext out: tls_read.  Plaintext in:
 * tls_write.  Ciphertext out: tls_out, a buffer the caller sends from and
 * consumes.  The handshake runs inside tls_read and tls_write: whatever it
 * has to send lands in tls_out too.
 *
 * Memory: one SSL object per connection and no buffer while idle.  OpenSSL
 * is told to release its record buffers when they empty
 * (SSL_MODE_RELEASE_BUFFERS), the input goes from the caller's buffer
 * straight into OpenSSL, and the output buffer is freed when it empties.
 * The server keeps no session cache and sends no session tickets.
 *
 * Only TLS 1.3 is offered and accepted.  Not thread-safe per connection; a
 * context may be shared by connections on different threads. */
#ifndef P2C2R_TLS_H
#define P2C2R_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct tls_ctx;
struct tls;

/* The first byte of a TLS handshake record; a p2c2r frame never starts so. */
#define TLS_RECORD_HANDSHAKE 0x16

/* A server context from a certificate chain file and its key file (PEM).
 * With client_ca (PEM file of CAs), a client that presents a certificate
 * must present one those CAs signed; one that presents none is accepted.
 * Returns 0 and *out, or P2C2R_EINVAL with a reason for the operator in err
 * (which file, what is wrong with it). */
int tls_ctx_server_new(const char *cert_file, const char *key_file, const char *client_ca,
                       struct tls_ctx **out, char *err, size_t errcap);

/* A client context.  ca_file (PEM) holds the CAs the server's certificate
 * must chain to; NULL turns verification off (only for a process talking to
 * itself over loopback: p2c2rd's local peers).  cert_file and key_file, both
 * or neither, are a certificate the client presents.  Errors as above. */
int tls_ctx_client_new(const char *ca_file, const char *cert_file, const char *key_file,
                       struct tls_ctx **out, char *err, size_t errcap);

void tls_ctx_free(struct tls_ctx *ctx);

/* A connection on ctx (borrowed: it must outlive the connection).  For a
 * client, host (borrowed likewise) is the name or IP address the server's
 * certificate must carry (also sent as SNI when it is a name); a server
 * passes NULL.  Ciphertext waiting to be sent may grow to out_max bytes.
 * Nothing of OpenSSL's is allocated until the handshake's first step (the
 * first tls_read or tls_write), and it is freed when the handshake ends.
 * Returns NULL when out of memory. */
struct tls *tls_new(struct tls_ctx *ctx, const char *host, size_t out_max);
void tls_free(struct tls *t);

/* For tests and fuzzing: a session past its handshake, without OpenSSL's
 * part, whose record layer uses key (16 bytes) and iv (12 bytes) in both
 * directions from record number 0, so that what one such session writes
 * another reads.  NULL when out of memory. */
struct tls *tls_new_keyed(const uint8_t *key, const uint8_t *iv, size_t out_max);

/* Lends n ciphertext bytes: tls_read consumes them, and they must stay
 * valid until it returns 0 (or an error).  Bytes committed with
 * tls_in_commit are consumed first. */
void tls_feed(struct tls *t, const uint8_t *p, size_t n);

/* Room for at least want ciphertext bytes in t's own input buffer (a
 * caller that reads from a socket itself); NULL when out of memory.  The
 * room is *cap bytes. */
uint8_t *tls_in_space(struct tls *t, size_t want, size_t *cap);
void tls_in_commit(struct tls *t, size_t n);

/* Decrypts into out (cap bytes).  Returns the bytes written (> 0), 0 when it
 * needs more ciphertext (everything fed has been consumed), or
 * P2C2R_ECLOSED (the remote closed the TLS session) or P2C2R_ETLS (the
 * handshake or a record failed: tls_error says why). */
int tls_read(struct tls *t, uint8_t *out, size_t cap);

/* Encrypts up to n bytes into the output.  Returns the bytes taken (0 while
 * the handshake is not done: write them again once tls_read made progress),
 * or P2C2R_ETLS, or P2C2R_ETOOBIG when the output is over out_max. */
long tls_write(struct tls *t, const uint8_t *p, size_t n);

/* Ciphertext to send; the caller consumes what it sent and calls
 * tls_out_done when the buffer is empty. */
struct buf *tls_out(struct tls *t);
void tls_out_done(struct tls *t);

/* 1 once the handshake has completed. */
int tls_ready(const struct tls *t);

/* 1 when input is held inside (ciphertext not yet decrypted, or plaintext
 * not yet read): tls_read has more to give without a new read. */
int tls_buffered(const struct tls *t);

/* 1 once a fatal error happened: nothing more can be written. */
int tls_failed(const struct tls *t);

/* Why the last call failed, for a log line or an error message: OpenSSL's
 * reason, and for a certificate the verifier's ("certificate has expired",
 * "hostname mismatch", ...). */
const char *tls_error(const struct tls *t);

/* The host part of "HOST:PORT" or "[V6]:PORT" into dst (what a client
 * verifies the server's certificate against).  Returns 0, or -1 when addr
 * has no host or it does not fit. */
int tls_host_of(const char *addr, char *dst, size_t cap);

/* The subject of the certificate the remote presented and the verifier
 * accepted, or "" (none). */
void tls_peer_subject(const struct tls *t, char *dst, size_t cap);

#endif
