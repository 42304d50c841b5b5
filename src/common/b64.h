/* b64.h - standard base64 (RFC 4648 section 4, with padding), as the
 * WebSocket gateway carries task inputs and results in JSON.
 *
 * Both functions are pure, never allocate and never read or write past the
 * lengths they are given.  Thread-safe. */
#ifndef P2C2R_B64_H
#define P2C2R_B64_H

#include <stddef.h>
#include <stdint.h>

/* Length of the encoding of n bytes (a multiple of 4, no terminating NUL). */
static inline size_t b64_enc_len(size_t n) { return (n + 2) / 3 * 4; }

/* Largest decoded length of n characters of base64. */
static inline size_t b64_dec_max(size_t n) { return n / 4 * 3 + 3; }

/* Writes the encoding of in[0..n) at out (b64_enc_len(n) bytes); returns
 * that length. */
size_t b64_encode(const uint8_t *in, size_t n, char *out);

/* Decodes s[0..n) into out (room for b64_dec_max(n) bytes).  The input must
 * be whole 4-character groups of the standard alphabet, '=' padding only at
 * the end (no white space, no URL-safe alphabet).  Returns the decoded
 * length, or -1 when s is not such base64. */
long b64_decode(const char *s, size_t n, uint8_t *out);

#endif
