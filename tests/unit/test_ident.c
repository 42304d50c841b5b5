/* test_ident.c - unit tests for src/common/ident.c: the peer key file
 * (creation, mode, refusals of unsafe or damaged files), the HELLO challenge
 * (what a signature is bound to) and the public key's hex form.
 *
 * Every file test works in a fresh temporary directory, removed at the end.
 * The owner check is exercised only when the test runs as root (it needs a
 * file owned by someone else). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "check.h"
#include "common/ident.h"
#include "p2c2r/error.h"

static char dir[256];

static const char *path_in(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
    return buf;
}

static int write_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    if (write(fd, data, n) != (ssize_t)n || fchmod(fd, mode) != 0) {
        close(fd);
        return -1;
    }
    return close(fd);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;
    if (fd < 0)
        return 0;
    n = read(fd, buf, cap);
    close(fd);
    return n < 0 ? 0 : (size_t)n;
}

/* Number of entries in dir other than "." and "..". */
static int count_entries(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void remove_all(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        path_in(p, sizeof(p), e->d_name);
        if (unlink(p) != 0)
            rmdir(p);
    }
    closedir(d);
}

/* Loads path expecting refusal with code, and the error text to contain
 * want (NULL: anything). */
static void check_refused(const char *path, int code, const char *want)
{
    struct ident id;
    int created = 7;
    char err[512] = "";
    int rc = ident_load_or_create(path, &id, &created, err, sizeof(err));
    CHECK_EQ(rc, code);
    CHECK_EQ(created, 7);
    CHECK(err[0] != '\0');
    CHECK(strstr(err, path) != NULL);
    if (want && !CHECK(strstr(err, want) != NULL))
        fprintf(stderr, "  error text: %s\n", err);
}

static void test_create_and_load(void)
{
    char p[512], text[512];
    struct ident a, b;
    struct stat st;
    int created = -1;
    char err[256] = "";
    mode_t old;

    remove_all();
    path_in(p, sizeof(p), "peer.key");
    /* A umask that would strip the owner's write bit, or leave the file
     * world-readable, must change nothing: the mode is exactly 0600. */
    old = umask(0277);
    CHECK_EQ(ident_load_or_create(p, &a, &created, err, sizeof(err)), 0);
    umask(old);
    CHECK_EQ(created, 1);
    if (CHECK(stat(p, &st) == 0)) {
        CHECK(S_ISREG(st.st_mode));
        CHECK_EQU(st.st_mode & 07777, 0600);
        CHECK_EQ(st.st_size, IDENT_FILE_LEN);
    }
    /* No temporary file is left behind. */
    CHECK_EQ(count_entries(), 1);

    /* The text is the documented format. */
    CHECK_EQU(read_file(p, text, sizeof(text)), IDENT_FILE_LEN);
    {
        char hex[IDENT_PK_HEX_LEN + 1];
        ident_pk_hex(a.pk, hex);
        CHECK(memcmp(text, "p2c2r-peer-key v1\npublic ", 25) == 0);
        CHECK(memcmp(text + 25, hex, 64) == 0);
        CHECK(memcmp(text + 89, "\nsecret ", 8) == 0);
        CHECK(text[IDENT_FILE_LEN - 1] == '\n');
    }

    created = -1;
    CHECK_EQ(ident_load_or_create(p, &b, &created, err, sizeof(err)), 0);
    CHECK_EQ(created, 0);
    CHECK(memcmp(a.pk, b.pk, sizeof(a.pk)) == 0);
    CHECK(memcmp(a.sk, b.sk, sizeof(a.sk)) == 0);

    /* created may be NULL; umask 0 gives 0600 too. */
    remove_all();
    old = umask(0);
    CHECK_EQ(ident_load_or_create(p, &b, NULL, NULL, 0), 0);
    umask(old);
    if (CHECK(stat(p, &st) == 0))
        CHECK_EQU(st.st_mode & 07777, 0600);
    /* A second creation is a new identity. */
    CHECK(memcmp(a.pk, b.pk, sizeof(a.pk)) != 0);

    /* ident_fini wipes the secret; NULL is a no-op. */
    ident_fini(&b);
    {
        static const uint8_t zero[IDENT_SK_LEN];
        CHECK(memcmp(b.sk, zero, sizeof(zero)) == 0);
    }
    ident_fini(NULL);
    ident_fini(&a);
}

static void test_refuse_modes(void)
{
    char p[512];
    struct ident id;
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0620, 0602, 0610, 0666, 0700 | 0004};
    size_t i;

    remove_all();
    path_in(p, sizeof(p), "peer.key");
    CHECK_EQ(ident_load_or_create(p, &id, NULL, NULL, 0), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[600];
        CHECK(chmod(p, bad[i]) == 0);
        snprintf(want, sizeof(want), "chmod 600 %s", p);
        check_refused(p, P2C2R_EINVAL, want);
    }
    /* Stricter than 0600 is fine: only the owner can read it. */
    CHECK(chmod(p, 0400) == 0);
    CHECK_EQ(ident_load_or_create(p, &id, NULL, NULL, 0), 0);
    CHECK(chmod(p, 0600) == 0);
    CHECK_EQ(ident_load_or_create(p, &id, NULL, NULL, 0), 0);
    ident_fini(&id);
}

static void test_refuse_owner(void)
{
    char p[512];
    struct ident id;

    if (geteuid() != 0)
        return;
    remove_all();
    path_in(p, sizeof(p), "peer.key");
    CHECK_EQ(ident_load_or_create(p, &id, NULL, NULL, 0), 0);
    if (CHECK(chown(p, 65534, 65534) == 0))
        check_refused(p, P2C2R_EINVAL, "chown 0 ");
    ident_fini(&id);
}

static void test_refuse_content(void)
{
    char p[512], good[IDENT_FILE_LEN + 1], bad[IDENT_FILE_LEN + 64];
    struct ident id, other;
    size_t i;

    remove_all();
    path_in(p, sizeof(p), "peer.key");
    CHECK_EQ(ident_load_or_create(p, &id, NULL, NULL, 0), 0);
    CHECK_EQU(read_file(p, good, sizeof(good)), IDENT_FILE_LEN);

    /* Truncated at every length, and empty: never taken for another
     * version. */
    for (i = 0; i < IDENT_FILE_LEN; i++) {
        CHECK(write_file(p, good, i, 0600) == 0);
        check_refused(p, P2C2R_EINVAL, "shorter");
    }
    /* One byte more. */
    memcpy(bad, good, IDENT_FILE_LEN);
    bad[IDENT_FILE_LEN] = '\n';
    CHECK(write_file(p, bad, IDENT_FILE_LEN + 1, 0600) == 0);
    check_refused(p, P2C2R_EINVAL, "longer");
    /* Garbled: each structural byte and a hex digit in each line. */
    {
        static const size_t at[] = {0, 5, 14, 17, 18, 24, 25, 88, 89, 90, 96, 97, 224, 225};
        for (i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
            memcpy(bad, good, IDENT_FILE_LEN);
            bad[at[i]] = 'x';
            CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
            check_refused(p, P2C2R_EINVAL, NULL);
        }
    }
    /* Not a key file at all. */
    memset(bad, 'A', IDENT_FILE_LEN);
    CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
    check_refused(p, P2C2R_EINVAL, "not a p2c2r peer key file");
    /* Another version, whatever its length. */
    memcpy(bad, good, IDENT_FILE_LEN);
    bad[16] = '2';
    CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
    check_refused(p, P2C2R_EVERSION, "v1");
    memcpy(bad, "p2c2r-peer-key v10\nwhatever\n", 28);
    CHECK(write_file(p, bad, 28, 0600) == 0);
    check_refused(p, P2C2R_EVERSION, "v1");
    memcpy(bad, "p2c2r-peer-key vx\n", 18);
    CHECK(write_file(p, bad, 18, 0600) == 0);
    check_refused(p, P2C2R_EVERSION, "v1");

    /* A public key that is not the secret key's: another pair's public line. */
    remove_all();
    {
        char q[512], ogood[IDENT_FILE_LEN + 1];
        path_in(q, sizeof(q), "other.key");
        CHECK_EQ(ident_load_or_create(q, &other, NULL, NULL, 0), 0);
        CHECK_EQU(read_file(q, ogood, sizeof(ogood)), IDENT_FILE_LEN);
        memcpy(bad, good, IDENT_FILE_LEN);
        memcpy(bad + 25, ogood + 25, 64);
        CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
        check_refused(p, P2C2R_EINVAL, "does not match");
        /* The secret key's embedded copy of the public key changed (the
         * last 64 hex digits): also a mismatch. */
        memcpy(bad, good, IDENT_FILE_LEN);
        memcpy(bad + 97 + 64, ogood + 97 + 64, 64);
        CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
        check_refused(p, P2C2R_EINVAL, "does not match");
        /* Both public copies from the other key, seed from this one. */
        memcpy(bad, ogood, IDENT_FILE_LEN);
        memcpy(bad + 97, good + 97, 64);
        CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
        check_refused(p, P2C2R_EINVAL, "does not match");
    }
    /* Upper-case hex is read. */
    memcpy(bad, good, IDENT_FILE_LEN);
    for (i = 25; i < IDENT_FILE_LEN; i++)
        if ((i < 89 || i >= 97) && bad[i] >= 'a' && bad[i] <= 'f')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    CHECK(write_file(p, bad, IDENT_FILE_LEN, 0600) == 0);
    {
        struct ident back;
        if (CHECK(ident_load_or_create(p, &back, NULL, NULL, 0) == 0))
            CHECK(memcmp(back.sk, id.sk, sizeof(id.sk)) == 0);
    }
    ident_fini(&id);
    ident_fini(&other);
}

static void test_refuse_kinds(void)
{
    char p[512], q[512];
    struct ident id, back;
    int created = -1;

    remove_all();
    /* A directory. */
    path_in(p, sizeof(p), "adir");
    CHECK(mkdir(p, 0700) == 0);
    check_refused(p, P2C2R_EINVAL, "not a regular file");
    /* A FIFO: refused at once, not waited on. */
    path_in(p, sizeof(p), "afifo");
    if (CHECK(mkfifo(p, 0600) == 0))
        check_refused(p, P2C2R_EINVAL, "not a regular file");
    /* A dangling symbolic link is refused, not replaced by a new key. */
    path_in(p, sizeof(p), "dangling");
    CHECK(symlink("nowhere", p) == 0);
    check_refused(p, P2C2R_EINVAL, "symbolic link");
    CHECK_EQ(count_entries(), 3);

    /* A symbolic link to a valid key elsewhere is followed (secret stores
     * present keys through links) and its target is checked. */
    path_in(q, sizeof(q), "real.key");
    CHECK_EQ(ident_load_or_create(q, &id, NULL, NULL, 0), 0);
    path_in(p, sizeof(p), "link.key");
    CHECK(symlink("real.key", p) == 0);
    CHECK_EQ(ident_load_or_create(p, &back, &created, NULL, 0), 0);
    CHECK_EQ(created, 0);
    CHECK(memcmp(back.pk, id.pk, sizeof(id.pk)) == 0);
    CHECK(chmod(q, 0644) == 0);
    check_refused(p, P2C2R_EINVAL, "chmod 600");

    /* A directory that does not exist: an I/O error saying so. */
    path_in(p, sizeof(p), "missing/peer.key");
    check_refused(p, P2C2R_EIO, "directory");
    /* Empty path. */
    {
        char err[128] = "";
        CHECK_EQ(ident_load_or_create("", &back, NULL, err, sizeof(err)), P2C2R_EINVAL);
        CHECK(err[0] != '\0');
    }
    ident_fini(&id);
    ident_fini(&back);
}

static void test_challenge(void)
{
    struct ident a, b;
    char p[512];
    uint8_t nonce[IDENT_NONCE_LEN], nonce2[IDENT_NONCE_LEN], sig[IDENT_SIG_LEN],
        bad[IDENT_SIG_LEN];
    uint8_t body[100];
    const uint64_t conn = 0x0102030405060708ull;
    size_t i;

    remove_all();
    CHECK_EQ(ident_load_or_create(path_in(p, sizeof(p), "a.key"), &a, NULL, NULL, 0), 0);
    CHECK_EQ(ident_load_or_create(path_in(p, sizeof(p), "b.key"), &b, NULL, NULL, 0), 0);
    for (i = 0; i < sizeof(body); i++)
        body[i] = (uint8_t)(i * 7 + 1);

    ident_nonce(nonce);
    ident_nonce(nonce2);
    CHECK(memcmp(nonce, nonce2, sizeof(nonce)) != 0);

    ident_sign_challenge(&a, nonce, conn, body, sizeof(body), sig);
    CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn, body, sizeof(body), sig), 0);
    /* Ed25519 is deterministic: the same challenge gives the same bytes. */
    ident_sign_challenge(&a, nonce, conn, body, sizeof(body), bad);
    CHECK(memcmp(sig, bad, sizeof(sig)) == 0);

    /* Another nonce, connection, key. */
    CHECK_EQ(ident_verify_challenge(a.pk, nonce2, conn, body, sizeof(body), sig), P2C2R_EAUTH);
    CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn + 1, body, sizeof(body), sig), P2C2R_EAUTH);
    CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn ^ (1ull << 63), body, sizeof(body), sig),
             P2C2R_EAUTH);
    CHECK_EQ(ident_verify_challenge(b.pk, nonce, conn, body, sizeof(body), sig), P2C2R_EAUTH);
    /* Every byte of the body flipped in turn, a shorter body, no body. */
    for (i = 0; i < sizeof(body); i++) {
        body[i] ^= 0x01;
        CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn, body, sizeof(body), sig), P2C2R_EAUTH);
        body[i] ^= 0x01;
    }
    CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn, body, sizeof(body) - 1, sig), P2C2R_EAUTH);
    CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn, NULL, 0, sig), P2C2R_EAUTH);
    /* Every bit of the signature flipped in turn. */
    for (i = 0; i < 8 * IDENT_SIG_LEN; i++) {
        memcpy(bad, sig, sizeof(bad));
        bad[i / 8] ^= (uint8_t)(1u << (i % 8));
        CHECK_EQ(ident_verify_challenge(a.pk, nonce, conn, body, sizeof(body), bad), P2C2R_EAUTH);
    }
    /* An empty registration body is allowed (NULL with length 0). */
    ident_sign_challenge(&b, nonce, 0, NULL, 0, sig);
    CHECK_EQ(ident_verify_challenge(b.pk, nonce, 0, NULL, 0, sig), 0);
    CHECK_EQ(ident_verify_challenge(b.pk, nonce, 0, body, 0, sig), 0);
    /* An all-zero public key (small order) never verifies. */
    {
        static const uint8_t zero_pk[IDENT_PK_LEN];
        CHECK_EQ(ident_verify_challenge(zero_pk, nonce, 0, NULL, 0, sig), P2C2R_EAUTH);
    }
    ident_fini(&a);
    ident_fini(&b);
}

/* The signed message is fixed by ident.h: an independent check that the
 * signature is over exactly context || nonce || conn_id LE || SHA-256(body),
 * built here by hand with libsodium. */
static void test_message_layout(void)
{
    struct ident a;
    char p[512];
    uint8_t nonce[IDENT_NONCE_LEN], sig[IDENT_SIG_LEN], msg[90];
    static const uint8_t body[] = "caps";
    const uint64_t conn = 0x1122334455667788ull;
    size_t i;

    remove_all();
    CHECK_EQ(ident_load_or_create(path_in(p, sizeof(p), "a.key"), &a, NULL, NULL, 0), 0);
    for (i = 0; i < sizeof(nonce); i++)
        nonce[i] = (uint8_t)(0xa0 + i);
    memcpy(msg, "p2c2r-peer-auth-v1", 18);
    memcpy(msg + 18, nonce, 32);
    for (i = 0; i < 8; i++)
        msg[50 + i] = (uint8_t)(conn >> (8 * i));
    CHECK_EQ(msg[50], 0x88);
    crypto_hash_sha256(msg + 58, body, sizeof(body) - 1);
    ident_sign_challenge(&a, nonce, conn, body, sizeof(body) - 1, sig);
    CHECK_EQ(crypto_sign_verify_detached(sig, msg, sizeof(msg), a.pk), 0);
    ident_fini(&a);
}

static void test_pk_hex(void)
{
    uint8_t pk[IDENT_PK_LEN], back[IDENT_PK_LEN];
    char hex[IDENT_PK_HEX_LEN + 1], bad[IDENT_PK_HEX_LEN + 2];
    size_t i;

    for (i = 0; i < sizeof(pk); i++)
        pk[i] = (uint8_t)(i * 37 + 0xab);
    ident_pk_hex(pk, hex);
    CHECK_EQU(strlen(hex), IDENT_PK_HEX_LEN);
    CHECK(memcmp(hex, "ab", 2) == 0);
    for (i = 0; i < IDENT_PK_HEX_LEN; i++)
        CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
    memset(back, 0, sizeof(back));
    CHECK_EQ(ident_pk_parse(hex, IDENT_PK_HEX_LEN, back), 0);
    CHECK(memcmp(pk, back, sizeof(pk)) == 0);

    /* Upper case reads the same; the input needs no NUL. */
    memcpy(bad, hex, IDENT_PK_HEX_LEN);
    for (i = 0; i < IDENT_PK_HEX_LEN; i++)
        if (bad[i] >= 'a')
            bad[i] = (char)(bad[i] - 'a' + 'A');
    bad[IDENT_PK_HEX_LEN] = 'z';
    memset(back, 0, sizeof(back));
    CHECK_EQ(ident_pk_parse(bad, IDENT_PK_HEX_LEN, back), 0);
    CHECK(memcmp(pk, back, sizeof(pk)) == 0);

    /* Wrong lengths, a non-hex digit anywhere, a NUL inside: refused, and
     * the output untouched. */
    memset(back, 0x5a, sizeof(back));
    CHECK_EQ(ident_pk_parse(hex, 0, back), P2C2R_EINVAL);
    CHECK_EQ(ident_pk_parse(hex, 63, back), P2C2R_EINVAL);
    CHECK_EQ(ident_pk_parse(hex, 62, back), P2C2R_EINVAL);
    memcpy(bad, hex, IDENT_PK_HEX_LEN);
    bad[IDENT_PK_HEX_LEN] = '0';
    CHECK_EQ(ident_pk_parse(bad, IDENT_PK_HEX_LEN + 1, back), P2C2R_EINVAL);
    CHECK_EQ(ident_pk_parse(NULL, IDENT_PK_HEX_LEN, back), P2C2R_EINVAL);
    for (i = 0; i < IDENT_PK_HEX_LEN; i++) {
        static const char junk[] = {'g', ' ', ':', '\0', 'x'};
        memcpy(bad, hex, IDENT_PK_HEX_LEN);
        bad[i] = junk[i % sizeof(junk)];
        CHECK_EQ(ident_pk_parse(bad, IDENT_PK_HEX_LEN, back), P2C2R_EINVAL);
    }
    for (i = 0; i < sizeof(back); i++)
        CHECK_EQ(back[i], 0x5a);
}

int main(void)
{
    const char *tmpdir = getenv("TMPDIR");
    snprintf(dir, sizeof(dir), "%s/test_ident.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "test_ident: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_create_and_load();
    test_refuse_modes();
    test_refuse_owner();
    test_refuse_content();
    test_refuse_kinds();
    test_challenge();
    test_message_layout();
    test_pk_hex();
    remove_all();
    rmdir(dir);
    return check_report("test_ident");
}
