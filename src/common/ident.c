/* ident.c - a peer's Ed25519 identity: its key file and the HELLO challenge
 * (see ident.h for the file format and the signed message).
 *
 * Invariants: a key file is only ever created whole (a temporary file in the
 * same directory, fsynced, then moved into place without replacing
 * anything), never written in place, so a crash leaves either no key or a
 * complete one.  Every check on an existing file is made on the descriptor
 * that is then read (fstat, not stat), so the file checked is the file read.
 * A loaded key pair has been recomputed from its seed, so a file whose halves
 * disagree is refused rather than signing with a key nobody expects.  Secret
 * bytes that pass through a local buffer are wiped before returning. */
#include "common/ident.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "p2c2r/error.h"

#define IDENT_CONTEXT "p2c2r-peer-auth-v1"
#define IDENT_CONTEXT_LEN 18
/* context || nonce || conn_id (u64 LE) || SHA-256(registration body) */
#define IDENT_MSG_LEN (IDENT_CONTEXT_LEN + IDENT_NONCE_LEN + 8 + crypto_hash_sha256_BYTES)

#define IDENT_MAGIC "p2c2r-peer-key "
#define IDENT_LINE1 IDENT_MAGIC "v1\n"
#define IDENT_PUBLIC "public "
#define IDENT_SECRET "secret "
#define IDENT_SK_HEX_LEN (2 * IDENT_SK_LEN)

/* ident_create's answer when another process created the file first. */
#define IDENT_RACED 1

_Static_assert(sizeof(IDENT_CONTEXT) - 1 == IDENT_CONTEXT_LEN, "context is 18 bytes, no NUL");
_Static_assert(IDENT_MSG_LEN == 90, "the signed message is 90 bytes");
_Static_assert(crypto_sign_PUBLICKEYBYTES == IDENT_PK_LEN, "Ed25519 public key size");
_Static_assert(crypto_sign_SECRETKEYBYTES == IDENT_SK_LEN, "Ed25519 secret key size");
_Static_assert(crypto_sign_SEEDBYTES == 32, "Ed25519 seed size");
_Static_assert(crypto_sign_BYTES == IDENT_SIG_LEN, "Ed25519 signature size");
_Static_assert(IDENT_FILE_LEN == sizeof(IDENT_LINE1) - 1 + sizeof(IDENT_PUBLIC) - 1 +
                                     IDENT_PK_HEX_LEN + 1 + sizeof(IDENT_SECRET) - 1 +
                                     IDENT_SK_HEX_LEN + 1,
               "IDENT_FILE_LEN matches the v1 layout");

static pthread_once_t ident_sodium_once = PTHREAD_ONCE_INIT;

static void ident_sodium_init_once(void)
{
    /* Without libsodium there is no randomness for keys or nonces: nothing
     * safe is left to do. */
    if (sodium_init() < 0) {
        fprintf(stderr, "p2c2r: libsodium failed to initialise (no randomness source?)\n");
        abort();
    }
}

static void ident_sodium(void)
{
    int rc = pthread_once(&ident_sodium_once, ident_sodium_init_once);
    assert(rc == 0);
    (void)rc;
}

static int ident_fail(char *err, size_t errcap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ident_fail(char *err, size_t errcap, int code, const char *fmt, ...)
{
    if (err && errcap > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Decodes exactly hex_len hex digits into exactly bin_len bytes, in constant
 * time (sodium_hex2bin), so a secret key's digits leak nothing through
 * timing.  Returns 0 or -1. */
static int ident_hex_decode(uint8_t *bin, size_t bin_len, const char *hex, size_t hex_len)
{
    size_t got = 0;
    const char *end = NULL;
    if (hex_len != 2 * bin_len)
        return -1;
    if (sodium_hex2bin(bin, bin_len, hex, hex_len, NULL, &got, &end) != 0)
        return -1;
    return got == bin_len && end == hex + hex_len ? 0 : -1;
}

/* Formats id as a v1 key file: exactly IDENT_FILE_LEN bytes, plus a NUL. */
static void ident_format(const struct ident *id, char text[IDENT_FILE_LEN + 1])
{
    char *p = text;
    memcpy(p, IDENT_LINE1, sizeof(IDENT_LINE1) - 1);
    p += sizeof(IDENT_LINE1) - 1;
    memcpy(p, IDENT_PUBLIC, sizeof(IDENT_PUBLIC) - 1);
    p += sizeof(IDENT_PUBLIC) - 1;
    sodium_bin2hex(p, IDENT_PK_HEX_LEN + 1, id->pk, IDENT_PK_LEN);
    p += IDENT_PK_HEX_LEN;
    *p++ = '\n';
    memcpy(p, IDENT_SECRET, sizeof(IDENT_SECRET) - 1);
    p += sizeof(IDENT_SECRET) - 1;
    sodium_bin2hex(p, IDENT_SK_HEX_LEN + 1, id->sk, IDENT_SK_LEN);
    p += IDENT_SK_HEX_LEN;
    *p++ = '\n';
    *p = '\0';
    assert(p == text + IDENT_FILE_LEN);
}

/* Parses a v1 key file's text (n bytes) into *out and checks that its
 * public key and secret key belong together. */
static int ident_parse(const char *path, const char *text, size_t n, struct ident *out,
                       char *err, size_t errcap)
{
    struct ident id;
    uint8_t pk2[IDENT_PK_LEN], sk2[IDENT_SK_LEN];
    const char *p = text;
    const char *nl;
    int rc = 0;

    /* Another version only when a whole first line says so, so that a file
     * cut inside its first line reads as truncated. */
    nl = memchr(text, '\n', n < 32 ? n : 32);
    if (nl && n >= sizeof(IDENT_MAGIC) - 1 &&
        memcmp(text, IDENT_MAGIC, sizeof(IDENT_MAGIC) - 1) == 0 &&
        ((size_t)(nl - text) + 1 != sizeof(IDENT_LINE1) - 1 ||
         memcmp(text, IDENT_LINE1, sizeof(IDENT_LINE1) - 1) != 0))
        return ident_fail(err, errcap, P2C2R_EVERSION,
                          "%s: a p2c2r peer key file of another version than v1, which is the "
                          "only one this build reads: use the p2c2r-peer version that wrote it",
                          path);
    if (memcmp(text, IDENT_LINE1, n < sizeof(IDENT_LINE1) - 1 ? n : sizeof(IDENT_LINE1) - 1) != 0)
        return ident_fail(err, errcap, P2C2R_EINVAL,
                          "%s: not a p2c2r peer key file (its first line is not "
                          "'p2c2r-peer-key v1'): check the key file path",
                          path);
    if (n != IDENT_FILE_LEN)
        return ident_fail(err, errcap, P2C2R_EINVAL,
                          "%s: %s than the %d bytes of a v1 key file (truncated or "
                          "edited): restore it from a backup",
                          path, n < IDENT_FILE_LEN ? "shorter" : "longer", IDENT_FILE_LEN);

    p += sizeof(IDENT_LINE1) - 1;
    if (memcmp(p, IDENT_PUBLIC, sizeof(IDENT_PUBLIC) - 1) != 0 ||
        ident_hex_decode(id.pk, IDENT_PK_LEN, p + sizeof(IDENT_PUBLIC) - 1, IDENT_PK_HEX_LEN) != 0 ||
        p[sizeof(IDENT_PUBLIC) - 1 + IDENT_PK_HEX_LEN] != '\n') {
        rc = ident_fail(err, errcap, P2C2R_EINVAL,
                        "%s: line 2 is not 'public' and 64 hex digits (damaged or edited): "
                        "restore it from a backup",
                        path);
        goto wipe;
    }
    p += sizeof(IDENT_PUBLIC) - 1 + IDENT_PK_HEX_LEN + 1;
    if (memcmp(p, IDENT_SECRET, sizeof(IDENT_SECRET) - 1) != 0 ||
        ident_hex_decode(id.sk, IDENT_SK_LEN, p + sizeof(IDENT_SECRET) - 1, IDENT_SK_HEX_LEN) != 0 ||
        p[sizeof(IDENT_SECRET) - 1 + IDENT_SK_HEX_LEN] != '\n') {
        rc = ident_fail(err, errcap, P2C2R_EINVAL,
                        "%s: line 3 is not 'secret' and 128 hex digits (damaged or edited): "
                        "restore it from a backup",
                        path);
        goto wipe;
    }

    /* libsodium's secret key is seed || public key and signing trusts the
     * copy of the public key inside it: recompute both from the seed. */
    crypto_sign_seed_keypair(pk2, sk2, id.sk);
    if (sodium_memcmp(sk2, id.sk, IDENT_SK_LEN) != 0 || sodium_memcmp(pk2, id.pk, IDENT_PK_LEN) != 0) {
        rc = ident_fail(err, errcap, P2C2R_EINVAL,
                        "%s: its public key does not match its secret key (damaged or edited): "
                        "restore it from a backup (removing it makes a new key, which is a new "
                        "peer identity)",
                        path);
        goto wipe;
    }
    *out = id;
wipe:
    sodium_memzero(&id, sizeof(id));
    sodium_memzero(sk2, sizeof(sk2));
    return rc;
}

/* Checks and reads the key file open on fd. */
static int ident_load_fd(const char *path, int fd, struct ident *out, char *err, size_t errcap)
{
    struct stat st;
    char text[IDENT_FILE_LEN + 1];
    size_t n = 0;
    int rc;

    if (fstat(fd, &st) != 0)
        return ident_fail(err, errcap, P2C2R_EIO, "%s: cannot stat: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return ident_fail(err, errcap, P2C2R_EINVAL,
                          "%s: not a regular file (%s): give the path of a key file, or a "
                          "path where none exists to create one",
                          path, S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
    if (st.st_uid != geteuid())
        return ident_fail(err, errcap, P2C2R_EINVAL,
                          "%s: owned by uid %lu, not by this user (uid %lu), who alone may "
                          "control the key: chown %lu %s",
                          path, (unsigned long)st.st_uid, (unsigned long)geteuid(),
                          (unsigned long)geteuid(), path);
    if (st.st_mode & 077)
        return ident_fail(err, errcap, P2C2R_EINVAL,
                          "%s: mode %04o gives the group or others access to the secret key: "
                          "chmod 600 %s",
                          path, (unsigned)(st.st_mode & 07777), path);

    /* One byte more than a v1 file, so a longer one is seen as longer. */
    while (n < sizeof(text)) {
        ssize_t r = read(fd, text + n, sizeof(text) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ident_fail(err, errcap, P2C2R_EIO, "%s: cannot read: %s", path, strerror(errno));
            goto wipe;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    rc = ident_parse(path, text, n, out, err, errcap);
wipe:
    sodium_memzero(text, sizeof(text));
    return rc;
}

static int ident_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Makes the new directory entry durable.  A file system that cannot sync a
 * directory (EINVAL) has nothing more to do. */
static int ident_sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int fd, rc = 0;

    if (!slash)
        dir = strdup(".");
    else if (slash == path)
        dir = strdup("/");
    else
        dir = strndup(path, (size_t)(slash - path));
    if (!dir) {
        errno = ENOMEM;
        return -1;
    }
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (fd < 0)
        return -1;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = -1;
    close(fd);
    return rc;
}

/* Moves tmp to path unless path exists.  Returns 0, IDENT_RACED when path
 * exists, or -1 with errno set. */
static int ident_move_noreplace(const char *tmp, const char *path)
{
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno == EEXIST)
        return IDENT_RACED;
    if (errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
        return -1;
    /* A file system without RENAME_NOREPLACE: link() never replaces either. */
    if (link(tmp, path) != 0)
        return errno == EEXIST ? IDENT_RACED : -1;
    unlink(tmp);
    return 0;
}

/* Creates a new key pair and writes it to path.  Returns 0 (*out set),
 * IDENT_RACED when another process created path first, or an error. */
static int ident_create(const char *path, struct ident *out, char *err, size_t errcap)
{
    struct ident id;
    char text[IDENT_FILE_LEN + 1];
    char suffix[2 * 8 + 1];
    uint8_t rnd[8];
    size_t plen = strlen(path);
    char *tmp;
    int fd, rc;

    tmp = malloc(plen + sizeof(".tmp.") + sizeof(suffix));
    if (!tmp)
        return ident_fail(err, errcap, P2C2R_ENOMEM, "%s: out of memory", path);
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(suffix, sizeof(suffix), rnd, sizeof(rnd));
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp.", sizeof(".tmp.") - 1);
    memcpy(tmp + plen + sizeof(".tmp.") - 1, suffix, sizeof(suffix));

    /* O_EXCL and O_NOFOLLOW: the file is new and ours, not something planted
     * at that name.  fchmod sets 0600 whatever the umask took away. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = ident_fail(err, errcap, P2C2R_EIO,
                        "%s: cannot create a new key file (%s): the directory must exist and "
                        "be writable by this user",
                        path, strerror(errno));
        goto free_tmp;
    }
    crypto_sign_keypair(id.pk, id.sk);
    ident_format(&id, text);
    if (fchmod(fd, 0600) != 0 || ident_write_all(fd, text, IDENT_FILE_LEN) != 0 || fsync(fd) != 0) {
        rc = ident_fail(err, errcap, P2C2R_EIO, "%s: cannot write the new key file %s: %s",
                        path, tmp, strerror(errno));
        close(fd);
        goto unlink_tmp;
    }
    if (close(fd) != 0) {
        rc = ident_fail(err, errcap, P2C2R_EIO, "%s: cannot write the new key file %s: %s",
                        path, tmp, strerror(errno));
        goto unlink_tmp;
    }
    rc = ident_move_noreplace(tmp, path);
    if (rc == IDENT_RACED)
        goto unlink_tmp;
    if (rc != 0) {
        rc = ident_fail(err, errcap, P2C2R_EIO, "%s: cannot move the new key file %s into place: %s",
                        path, tmp, strerror(errno));
        goto unlink_tmp;
    }
    if (ident_sync_dir(path) != 0) {
        /* The key is in place but may not survive a crash; the next start
         * loads it or, if it was lost, creates another. */
        rc = ident_fail(err, errcap, P2C2R_EIO,
                        "%s: the new key file was written but its directory could not be "
                        "synced: %s",
                        path, strerror(errno));
        goto wipe;
    }
    *out = id;
    rc = 0;
    goto wipe;

unlink_tmp:
    unlink(tmp);
wipe:
    sodium_memzero(&id, sizeof(id));
    sodium_memzero(text, sizeof(text));
free_tmp:
    free(tmp);
    return rc;
}

int ident_load_or_create(const char *path, struct ident *out, int *created, char *err,
                         size_t errcap)
{
    struct stat lst;
    int attempt;

    assert(path && out);
    ident_sodium();
    if (!*path)
        return ident_fail(err, errcap, P2C2R_EINVAL, "empty key file path: give one");
    /* Two rounds: when a concurrent creator wins the race, load its key. */
    for (attempt = 0; attempt < 2; attempt++) {
        /* O_NONBLOCK so that a FIFO at path does not block the open; it is
         * refused as not a regular file. */
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        int rc;
        if (fd >= 0) {
            rc = ident_load_fd(path, fd, out, err, errcap);
            close(fd);
            if (rc == 0 && created)
                *created = 0;
            return rc;
        }
        if (errno != ENOENT)
            return ident_fail(err, errcap, P2C2R_EIO, "%s: cannot open: %s", path,
                              strerror(errno));
        if (lstat(path, &lst) == 0)
            return ident_fail(err, errcap, P2C2R_EINVAL,
                              "%s: a symbolic link to a file that does not exist: point it at "
                              "the key file, or remove it to create a new key there",
                              path);
        rc = ident_create(path, out, err, errcap);
        if (rc == 0 && created)
            *created = 1;
        if (rc != IDENT_RACED)
            return rc;
    }
    return ident_fail(err, errcap, P2C2R_EIO,
                      "%s: the key file appeared and vanished again while being created: is "
                      "another program removing it?",
                      path);
}

void ident_generate(struct ident *out)
{
    ident_sodium();
    crypto_sign_keypair(out->pk, out->sk);
}

void ident_fini(struct ident *id)
{
    if (id)
        sodium_memzero(id, sizeof(*id));
}

void ident_pk_hex(const uint8_t pk[IDENT_PK_LEN], char out[IDENT_PK_HEX_LEN + 1])
{
    sodium_bin2hex(out, IDENT_PK_HEX_LEN + 1, pk, IDENT_PK_LEN);
}

int ident_pk_parse(const char *hex, size_t len, uint8_t pk[IDENT_PK_LEN])
{
    uint8_t tmp[IDENT_PK_LEN];
    if (!hex || len != IDENT_PK_HEX_LEN || ident_hex_decode(tmp, sizeof(tmp), hex, len) != 0)
        return P2C2R_EINVAL;
    memcpy(pk, tmp, sizeof(tmp));
    return 0;
}

void ident_nonce(uint8_t nonce[IDENT_NONCE_LEN])
{
    ident_sodium();
    randombytes_buf(nonce, IDENT_NONCE_LEN);
}

static void ident_message(uint8_t msg[IDENT_MSG_LEN], const uint8_t nonce[IDENT_NONCE_LEN],
                          uint64_t conn_id, const uint8_t *reg_body, size_t reg_len)
{
    static const uint8_t empty[1];
    uint8_t *p = msg;
    int i;

    assert(reg_body || reg_len == 0);
    memcpy(p, IDENT_CONTEXT, IDENT_CONTEXT_LEN);
    p += IDENT_CONTEXT_LEN;
    memcpy(p, nonce, IDENT_NONCE_LEN);
    p += IDENT_NONCE_LEN;
    for (i = 0; i < 8; i++)
        *p++ = (uint8_t)(conn_id >> (8 * i));
    crypto_hash_sha256(p, reg_body ? reg_body : empty, (unsigned long long)reg_len);
    assert(p + crypto_hash_sha256_BYTES == msg + IDENT_MSG_LEN);
}

void ident_sign_challenge(const struct ident *id, const uint8_t nonce[IDENT_NONCE_LEN],
                          uint64_t conn_id, const uint8_t *reg_body, size_t reg_len,
                          uint8_t sig[IDENT_SIG_LEN])
{
    uint8_t msg[IDENT_MSG_LEN];
    int rc;

    ident_sodium();
    ident_message(msg, nonce, conn_id, reg_body, reg_len);
    rc = crypto_sign_detached(sig, NULL, msg, sizeof(msg), id->sk);
    assert(rc == 0);
    (void)rc;
}

int ident_verify_challenge(const uint8_t pk[IDENT_PK_LEN], const uint8_t nonce[IDENT_NONCE_LEN],
                           uint64_t conn_id, const uint8_t *reg_body, size_t reg_len,
                           const uint8_t sig[IDENT_SIG_LEN])
{
    uint8_t msg[IDENT_MSG_LEN];

    ident_sodium();
    ident_message(msg, nonce, conn_id, reg_body, reg_len);
    return crypto_sign_verify_detached(sig, msg, sizeof(msg), pk) == 0 ? 0 : P2C2R_EAUTH;
}
