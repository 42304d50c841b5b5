/* task_sha256.h - SHA-256 for the executors: the sha256 type and raytrace's
 * prepared-state key.  One interface over OpenSSL's EVP (the native build)
 * and libsodium's crypto_hash_sha256 (the WebAssembly build, where OpenSSL
 * is not compiled: scripts/wasm.sh); both are FIPS 180-4 SHA-256, so the
 * digests are the same bytes. */
#ifndef P2C2R_TASK_SHA256_H
#define P2C2R_TASK_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct task_sha256;

/* Returns a new hash state, or NULL when memory is short. */
struct task_sha256 *task_sha256_new(void);

/* Hashes n more bytes of data (borrowed).  Returns 0 or -1 (then the state
 * is only good for task_sha256_free). */
int task_sha256_update(struct task_sha256 *h, const void *data, size_t n);

/* Writes the digest of everything hashed to md.  Returns 0 or -1.  The
 * state is freed either way. */
int task_sha256_final(struct task_sha256 *h, uint8_t md[32]);

/* Frees h (NULL: no-op). */
void task_sha256_free(struct task_sha256 *h);

#endif
