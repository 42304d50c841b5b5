/* ident.h - a peer's long-lived identity: an Ed25519 key pair (libsodium) kept
 * in a key file, and the signed challenge that proves it at HELLO
 * (DESIGN.md decision 8: everything known about a peer is keyed by its
 * public key).
 *
 * Key file format (v1): 226 bytes of ASCII text, exactly three lines, each
 * ending in "\n", hex in lowercase when written (either case is read):
 *
 *     p2c2r-peer-key v1
 *     public <64 hex digits: the 32-byte Ed25519 public key>
 *     secret <128 hex digits: libsodium's 64-byte secret key, seed || public key>
 *
 * Text rather than raw bytes so that an operator can read the public key
 * (the peer's name in allow-lists and logs) with `cat`, and a truncated or
 * foreign file is recognised and refused with a reason; the version line
 * leaves room for another format (an encrypted one) later.  The public key
 * is written although it follows from the secret one, so the file says which
 * peer it is and a damaged copy is caught: loading recomputes the key pair
 * from the seed and refuses a file whose two halves disagree.
 *
 * The file must be a regular file (a symbolic link is followed and its
 * target checked, as secret stores present keys through links), owned by
 * the effective user, with no group or other permission bits (mode 0600 or
 * stricter).
 *
 * The HELLO challenge: the coordinator sends a fresh random nonce
 * (IDENT_NONCE_LEN bytes) for each connection; the peer signs
 *
 *     "p2c2r-peer-auth-v1"      18 bytes of ASCII, no NUL (domain separation)
 *     nonce                     32 bytes
 *     conn_id                   8 bytes, unsigned, little-endian
 *     SHA-256(reg_body)         32 bytes
 *
 * (90 bytes) with Ed25519, and the coordinator verifies it with the public
 * key the peer claims.  The signature is thus bound to one connection's
 * fresh nonce and id (it cannot be replayed on another connection) and to
 * the exact registration body it comes with (its capabilities cannot be
 * swapped for others).  It does not bind the transport: without a TLS
 * channel binding, a relay that owns both ends could forward a challenge.
 *
 * Thread context: every function may be called from any thread.  libsodium
 * is initialised once on first use (sodium_init, under pthread_once); a
 * process where it cannot initialise (no randomness source) aborts, as the
 * daemons that use this module do for any resource they cannot run
 * without.  Errors are the project's codes (p2c2r/error.h). */
#ifndef P2C2R_IDENT_H
#define P2C2R_IDENT_H

#include <stddef.h>
#include <stdint.h>

#define IDENT_PK_LEN 32
#define IDENT_SK_LEN 64
#define IDENT_NONCE_LEN 32
#define IDENT_SIG_LEN 64
/* Hex length of a public key, without the terminating NUL. */
#define IDENT_PK_HEX_LEN 64
/* Size of a v1 key file, in bytes. */
#define IDENT_FILE_LEN 226

/* A key pair.  sk is secret: wipe it with ident_fini when done. */
struct ident {
    uint8_t pk[IDENT_PK_LEN];
    uint8_t sk[IDENT_SK_LEN];
};

/* Loads the key pair in the key file at path into *out, or, when nothing
 * exists at path, creates a new one and writes it there: into a temporary
 * file in the same directory (created with O_EXCL, mode exactly 0600
 * whatever the umask), fsynced, then moved to path without replacing a file
 * that appeared meanwhile (a concurrent creator's key wins and is loaded),
 * and the directory fsynced.  *created (may be NULL) is set to 1 when a key
 * was created, else 0.  Borrows path.
 *
 * Returns 0, or:
 *   P2C2R_EINVAL   the file is refused: not a regular file (or a dangling
 *                  link), not owned by this user, group/other permission
 *                  bits set, wrong size or format, or its public key does
 *                  not match its secret key;
 *   P2C2R_EVERSION a key file of a version this build does not read;
 *   P2C2R_EIO      a system call failed (open, read, write, fsync, ...).
 * On failure err (errcap bytes; may be NULL) receives one line naming the
 * file, the problem and the fix (e.g. "chmod 600 FILE"), and *out and
 * *created are not written. */
int ident_load_or_create(const char *path, struct ident *out, int *created, char *err,
                         size_t errcap);

/* Makes a new key pair in memory only (for keys that need not outlive the
 * process: p2c2rd's local peers without --state, tests).  Wipe it with
 * ident_fini. */
void ident_generate(struct ident *out);

/* Wipes the secret key (sodium_memzero).  NULL is a no-op. */
void ident_fini(struct ident *id);

/* Writes pk as 64 lowercase hex digits and a NUL into out. */
void ident_pk_hex(const uint8_t pk[IDENT_PK_LEN], char out[IDENT_PK_HEX_LEN + 1]);

/* Parses exactly len bytes of hex (either case) into pk: len must be 64.
 * Borrows hex, which need not be NUL-terminated.  Returns 0 or P2C2R_EINVAL
 * (pk not written). */
int ident_pk_parse(const char *hex, size_t len, uint8_t pk[IDENT_PK_LEN]);

/* Fills nonce with IDENT_NONCE_LEN bytes from the system's CSPRNG
 * (randombytes_buf).  The coordinator draws a new one for every
 * connection. */
void ident_nonce(uint8_t nonce[IDENT_NONCE_LEN]);

/* Signs the challenge message above (nonce, conn_id, SHA-256 of reg_body)
 * with id's secret key into sig.  Borrows every buffer for the call only;
 * reg_body may be NULL when reg_len is 0. */
void ident_sign_challenge(const struct ident *id, const uint8_t nonce[IDENT_NONCE_LEN],
                          uint64_t conn_id, const uint8_t *reg_body, size_t reg_len,
                          uint8_t sig[IDENT_SIG_LEN]);

/* Verifies that sig is pk's signature of the challenge message for nonce,
 * conn_id and reg_body.  Borrows every buffer for the call only; reg_body
 * may be NULL when reg_len is 0.  Returns 0, or P2C2R_EAUTH for any
 * mismatch (another key, nonce, connection or body, a damaged or
 * non-canonical signature, a public key of small order). */
int ident_verify_challenge(const uint8_t pk[IDENT_PK_LEN], const uint8_t nonce[IDENT_NONCE_LEN],
                           uint64_t conn_id, const uint8_t *reg_body, size_t reg_len,
                           const uint8_t sig[IDENT_SIG_LEN]);

#endif
