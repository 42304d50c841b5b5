/* test_tls_layer.c - common/tls: a handshake over memory, then the record layer
 * (ours after the hand-off) at every split point of its input and with
 * every small read size.
 *
 * The certificate is made here with OpenSSL's C API (P-256, self-signed,
 * IP 127.0.0.1 and DNS localhost). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "common/tls.h"
#include "p2c2r/error.h"

static char cert_path[64] = "/tmp/p2c2r-ut-tls-XXXXXX", key_path[80], pem_path[80];

static void make_cert(void)
{
    if (!mkdtemp(cert_path))
        abort();
    snprintf(key_path, sizeof(key_path), "%s/key.pem", cert_path);
    snprintf(pem_path, sizeof(pem_path), "%s/cert.pem", cert_path);
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"p2c2rd", -1, -1, 0);
    X509_set_issuer_name(x, n);
    X509V3_CTX v;
    X509V3_set_ctx(&v, x, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
    X509_sign(x, k, EVP_sha256());
    FILE *f = fopen(key_path, "w");
    PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    f = fopen(pem_path, "w");
    PEM_write_X509(f, x);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(k);
}

/* Moves what a has to send into b, reading b's plaintext into got. */
static int pump(struct tls *a, struct tls *b, uint8_t *got, size_t cap, size_t *n)
{
    struct buf *o = tls_out(a);
    if (!buf_used(o))
        return 0;
    tls_feed(b, buf_head(o), buf_used(o));
    int k;
    while ((k = tls_read(b, got + *n, cap - *n)) > 0)
        *n += (size_t)k;
    tls_feed(b, NULL, 0);
    buf_consume(o, buf_used(o));
    tls_out_done(a);
    return k < 0 ? k : 1;
}

static void handshake(struct tls *s, struct tls *c)
{
    uint8_t tmp[64];
    size_t n = 0;
    CHECK_EQ(tls_write(c, (const uint8_t *)"", 0), 0); /* ClientHello */
    for (int i = 0; i < 8 && !(tls_ready(s) && tls_ready(c)); i++) {
        pump(c, s, tmp, sizeof(tmp), &n);
        pump(s, c, tmp, sizeof(tmp), &n);
    }
    CHECK(tls_ready(s) && tls_ready(c));
}

/* A stream of records the client sends, fed to the server at split point
 * sp and read with reads of at most rd bytes: the plaintext must come out
 * whole and in order.  One session pair throughout: each round's records
 * continue the record numbers of the last. */
static void splits(struct tls_ctx *sc, struct tls_ctx *cc)
{
    static uint8_t msg[17500], got[sizeof(msg) + 64];
    for (size_t i = 0; i < sizeof(msg); i++)
        msg[i] = (uint8_t)(i * 7 + 3);
    /* One empty write, small records, one write over a record's 16384. */
    const size_t parts[] = {1, 0, 100, 300, 17099};
    struct tls *s = tls_new(sc, NULL, 1u << 20), *c = tls_new(cc, "127.0.0.1", 1u << 20);
    handshake(s, c);
    const size_t reads[] = {1, 7, 4096, 16384, sizeof(got)};
    int bad = 0;
    for (size_t ri = 0; ri < sizeof(reads) / sizeof(reads[0]); ri++) {
        size_t step = reads[ri] == 1 ? 97 : reads[ri] == 7 ? 13 : 1;
        for (size_t sp = 0, wire = SIZE_MAX; !bad && sp <= wire; sp += step) {
            size_t total = 0;
            for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
                if (tls_write(c, msg + total, parts[i]) != (long)parts[i])
                    bad = 1;
                total += parts[i];
            }
            struct buf *o = tls_out(c);
            wire = buf_used(o); /* the same every round */
            size_t n = 0;
            const size_t cut[2][2] = {{0, sp}, {sp, wire - sp}};
            for (int h = 0; h < 2; h++) {
                tls_feed(s, buf_head(o) + cut[h][0], cut[h][1]);
                int k;
                while ((k = tls_read(s, got + n, reads[ri] < sizeof(got) - n ? reads[ri] : sizeof(got) - n)) > 0)
                    n += (size_t)k;
                if (k < 0)
                    bad = 1;
                tls_feed(s, NULL, 0);
            }
            buf_consume(o, wire);
            if (n != total || memcmp(got, msg, total) != 0 || tls_buffered(s)) {
                fprintf(stderr, "read %zu split %zu of %zu: %zu of %zu bytes, buffered %d: %s\n", reads[ri], sp,
                        wire, n, total, tls_buffered(s), tls_failed(s) ? tls_error(s) : "ok");
                bad = 1;
            }
        }
        CHECK(!bad);
    }
    tls_free(s);
    tls_free(c);
}

static void tampered(struct tls_ctx *sc, struct tls_ctx *cc)
{
    struct tls *s = tls_new(sc, NULL, 1u << 20), *c = tls_new(cc, "127.0.0.1", 1u << 20);
    handshake(s, c);
    tls_write(c, (const uint8_t *)"hello", 5);
    struct buf *o = tls_out(c);
    buf_head(o)[8] ^= 1;
    uint8_t got[64];
    tls_feed(s, buf_head(o), buf_used(o));
    CHECK_EQ(tls_read(s, got, sizeof(got)), P2C2R_ETLS);
    CHECK(strstr(tls_error(s), "bad record MAC") != NULL);
    CHECK(tls_failed(s));
    tls_free(s);
    tls_free(c);
}

/* The server's answer comes back the other way; the client's name check. */
static void both_ways(struct tls_ctx *sc, struct tls_ctx *cc)
{
    struct tls *s = tls_new(sc, NULL, 1u << 20), *c = tls_new(cc, "127.0.0.1", 1u << 20);
    handshake(s, c);
    uint8_t got[64];
    size_t n = 0;
    CHECK_EQ(tls_write(s, (const uint8_t *)"pong", 4), 4);
    CHECK_EQ(pump(s, c, got, sizeof(got), &n), 1);
    CHECK(n == 4 && !memcmp(got, "pong", 4));
    tls_free(s);
    tls_free(c);

    s = tls_new(sc, NULL, 1u << 20);
    c = tls_new(cc, "wrong.example", 1u << 20);
    tls_write(c, (const uint8_t *)"", 0);
    n = 0;
    pump(c, s, got, sizeof(got), &n);
    CHECK(pump(s, c, got, sizeof(got), &n) == P2C2R_ETLS);
    CHECK(strstr(tls_error(c), "hostname mismatch") != NULL);
    tls_free(s);
    tls_free(c);
}

static void host_of(void)
{
    char h[64];
    CHECK(tls_host_of("127.0.0.1:8765", h, sizeof(h)) == 0 && !strcmp(h, "127.0.0.1"));
    CHECK(tls_host_of("[::1]:8765", h, sizeof(h)) == 0 && !strcmp(h, "::1"));
    CHECK(tls_host_of("coord.example:1", h, sizeof(h)) == 0 && !strcmp(h, "coord.example"));
    CHECK(tls_host_of(":8765", h, sizeof(h)) != 0);
    CHECK(tls_host_of("nohostport", h, sizeof(h)) != 0);
}

int main(void)
{
    make_cert();
    char err[256];
    struct tls_ctx *sc = NULL, *cc = NULL;
    CHECK(tls_ctx_server_new(pem_path, key_path, NULL, &sc, err, sizeof(err)) == 0);
    CHECK(tls_ctx_client_new(pem_path, NULL, NULL, &cc, err, sizeof(err)) == 0);
    struct tls_ctx *bad = NULL;
    CHECK(tls_ctx_server_new(pem_path, pem_path, NULL, &bad, err, sizeof(err)) == P2C2R_EINVAL);
    CHECK(strstr(err, "private key") != NULL);
    if (sc && cc) {
        splits(sc, cc);
        tampered(sc, cc);
        both_ways(sc, cc);
    }
    host_of();
    tls_ctx_free(sc);
    tls_ctx_free(cc);
    unlink(key_path);
    unlink(pem_path);
    rmdir(cert_path);
    return check_report("test_tls_layer");
}
