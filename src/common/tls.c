/* tls.c - TLS 1.3 over memory (see tls.h).
 *
 * Two phases.  The handshake is OpenSSL's: one BIO method of our own stands
 * between OpenSSL and the caller, its read side handing OpenSSL first the
 * bytes in t->in (committed by a caller that reads into it), then the bytes
 * lent by tls_feed, its write side appending to t->out.  Once the handshake
 * is done, the SSL object (9 KB at SSL_new and 14 KB after a handshake in
 * OpenSSL 3.0: 140 MB for 10,000 idle peers) is freed, and the records are
 * sealed and opened here: TLS_AES_128_GCM_SHA256, the one suite offered and
 * accepted (mandatory for every TLS 1.3 implementation, RFC 8446 9.1), with
 * each direction's key and IV derived from the traffic secret OpenSSL hands
 * its key-log callback (HKDF-Expand-Label, RFC 8446 7.1-7.3).  An idle
 * connection then holds ~200 bytes and no buffer.
 *
 * Invariants: the handshake is driven with SSL_do_handshake only, so OpenSSL
 * never reads an application record: every byte after the peer's Finished
 * is still in t->in or lent, and both directions' record numbers start at 0
 * (the server sends no session ticket; a ticket a client receives is
 * skipped).  When tls_read returns 0 every lent byte has been consumed (a
 * partial record is copied to t->in).  The error queue is cleared before
 * each OpenSSL call, so SSL_get_error reads only that call's result. */
#include "common/tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "p2c2r/error.h"

struct tls_ctx {
    SSL_CTX *ssl;
    int server;
};

#define KEY_LEN 16
#define IV_LEN 12
#define TAG_LEN 16
#define SECRET_LEN 32 /* SHA-256 */
#define REC_HDR 5
#define REC_MAX_PLAIN 16384
#define REC_MAX_CIPHER (REC_MAX_PLAIN + 256)
#define CT_ALERT 21
#define CT_HANDSHAKE 22
#define CT_APPDATA 23

/* One direction of the record layer after the handshake. */
struct dir {
    uint8_t key[KEY_LEN];
    uint8_t iv[IV_LEN];
    uint64_t seq;
};

struct tls {
    SSL *ssl;             /* during the handshake (made by its first step); NULL after */
    struct tls_ctx *ctx;  /* borrowed: outlives t */
    const char *host;     /* client: borrowed, what the certificate must name */
    struct buf in;        /* ciphertext committed by tls_in_commit, or a partial record */
    const uint8_t *lent;  /* ciphertext lent by tls_feed */
    size_t lent_n;
    struct buf out;       /* ciphertext to send */
    struct buf pend;      /* plaintext opened and not yet taken (a small tls_read) */
    struct dir rx, tx;
    uint8_t server, failed, closed, ready, secrets; /* secrets: bit 0 rx, bit 1 tx */
    char *subject;        /* verified client certificate's subject, or NULL */
    char err[200];
};

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

/* Takes up to n ciphertext bytes (t->in first, then lent) into dst; an
 * emptied t->in gives its memory back (an idle connection holds none). */
static size_t take(struct tls *t, uint8_t *dst, size_t n)
{
    size_t got = 0, h = buf_used(&t->in);
    if (h) {
        got = h < n ? h : n;
        memcpy(dst, buf_head(&t->in), got);
        buf_consume(&t->in, got);
        if (buf_used(&t->in) == 0)
            buf_shrink(&t->in, 0);
    }
    if (got < n && t->lent_n) {
        size_t k = t->lent_n < n - got ? t->lent_n : n - got;
        memcpy(dst + got, t->lent, k);
        t->lent += k;
        t->lent_n -= k;
        got += k;
    }
    return got;
}

static int bio_read(BIO *b, char *dst, int len)
{
    struct tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t got = take(t, (uint8_t *)dst, (size_t)len);
    if (got == 0) {
        BIO_set_retry_read(b);
        return -1;
    }
    return (int)got;
}

static int bio_write(BIO *b, const char *src, int len)
{
    struct tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (buf_append(&t->out, src, (size_t)len) != 0)
        return -1; /* over out_max: a fatal error for this connection */
    return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b;
    (void)num;
    (void)ptr;
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_make(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "p2c2r-mem");
    if (!m)
        return;
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    bio_method = m;
}

/* OpenSSL's reason for the last failure of the calling thread, or what. */
static void openssl_reason(char *dst, size_t cap, const char *what)
{
    unsigned long e = ERR_peek_last_error();
    char r[200];
    if (e)
        ERR_error_string_n(e, r, sizeof(r));
    /* Truncation only shortens the reason. */
    if (snprintf(dst, cap, "%s%s%s", what, e ? ": " : "", e ? r : "") < 0)
        dst[0] = '\0';
    ERR_clear_error();
}

/* HKDF-Expand-Label(secret, label, "", n) for SHA-256 and n <= 32: one
 * HMAC block (RFC 8446 7.1). */
static int hkdf_label(const uint8_t *secret, const char *label, uint8_t *dst, size_t n)
{
    uint8_t info[2 + 1 + 6 + 32 + 1 + 1], md[32];
    size_t ll = strlen(label), k = 0;
    info[k++] = 0;
    info[k++] = (uint8_t)n;
    info[k++] = (uint8_t)(6 + ll);
    memcpy(info + k, "tls13 ", 6);
    k += 6;
    memcpy(info + k, label, ll);
    k += ll;
    info[k++] = 0; /* empty context */
    info[k++] = 1; /* T(1) */
    unsigned int mdl = 0;
    if (!HMAC(EVP_sha256(), secret, SECRET_LEN, info, k, md, &mdl) || mdl != 32)
        return -1;
    memcpy(dst, md, n);
    OPENSSL_cleanse(md, sizeof(md));
    return 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* OpenSSL hands every secret of a handshake to the key-log callback as a
 * line "LABEL <client random> <secret>": the two application traffic
 * secrets are what the record layer needs after the handshake. */
static void on_keylog(const SSL *ssl, const char *line)
{
    struct tls *t = SSL_get_app_data(ssl);
    int client = !strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24);
    if (!t || (!client && strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24)))
        return;
    const char *h = strchr(line + 24, ' ');
    uint8_t sec[SECRET_LEN];
    if (!h || strlen(h + 1) != 2 * SECRET_LEN)
        return;
    for (int i = 0; i < SECRET_LEN; i++) {
        int a = hexval(h[1 + 2 * i]), b = hexval(h[2 + 2 * i]);
        if (a < 0 || b < 0)
            return;
        sec[i] = (uint8_t)(a << 4 | b);
    }
    /* The client's secret protects what the client sends. */
    int is_rx = client == t->server;
    struct dir *d = is_rx ? &t->rx : &t->tx;
    if (hkdf_label(sec, "key", d->key, KEY_LEN) == 0 && hkdf_label(sec, "iv", d->iv, IV_LEN) == 0) {
        d->seq = 0;
        t->secrets |= (uint8_t)(is_rx ? 1 : 2);
    }
    OPENSSL_cleanse(sec, sizeof(sec));
}

static int ctx_common(SSL_CTX *s)
{
    /* TLS 1.3 only; buffers released when empty; writes may be partial
     * and retried from a moved buffer (ours reallocates). */
    if (!SSL_CTX_set_min_proto_version(s, TLS1_3_VERSION) ||
        !SSL_CTX_set_max_proto_version(s, TLS1_3_VERSION))
        return -1;
    SSL_CTX_set_mode(s, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(s, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    if (!SSL_CTX_set_ciphersuites(s, "TLS_AES_128_GCM_SHA256"))
        return -1;
    SSL_CTX_set_keylog_callback(s, on_keylog);
    return 0;
}

static int load_pair(SSL_CTX *s, const char *cert_file, const char *key_file, char *err,
                     size_t errcap)
{
    char what[512];
    if (SSL_CTX_use_certificate_chain_file(s, cert_file) != 1) {
        snprintf(what, sizeof(what), "cannot load the certificate %s (a PEM certificate chain)",
                 cert_file);
        openssl_reason(err, errcap, what);
        return P2C2R_EINVAL;
    }
    if (SSL_CTX_use_PrivateKey_file(s, key_file, SSL_FILETYPE_PEM) != 1) {
        snprintf(what, sizeof(what), "cannot load the private key %s (a PEM key)", key_file);
        openssl_reason(err, errcap, what);
        return P2C2R_EINVAL;
    }
    if (SSL_CTX_check_private_key(s) != 1) {
        snprintf(what, sizeof(what), "the key %s does not match the certificate %s", key_file,
                 cert_file);
        openssl_reason(err, errcap, what);
        return P2C2R_EINVAL;
    }
    return 0;
}

static int load_ca(SSL_CTX *s, const char *ca_file, char *err, size_t errcap)
{
    char what[512];
    if (SSL_CTX_load_verify_locations(s, ca_file, NULL) != 1) {
        snprintf(what, sizeof(what), "cannot load the CA file %s (PEM certificates)", ca_file);
        openssl_reason(err, errcap, what);
        return P2C2R_EINVAL;
    }
    return 0;
}

static void aead_once(void);
static pthread_once_t aead_init = PTHREAD_ONCE_INIT;
static int fail_text(struct tls *t, const char *why);
static uint64_t key_gen; /* bumped by each handoff: a freed dir's address may be reused */

static int ctx_new(int server, struct tls_ctx **out, char *err, size_t errcap)
{
    pthread_once(&bio_once, bio_method_make);
    pthread_once(&aead_init, aead_once);
    ERR_clear_error();
    struct tls_ctx *c = calloc(1, sizeof(*c));
    if (!c || !bio_method || !(c->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method())) ||
        ctx_common(c->ssl) != 0) {
        openssl_reason(err, errcap, "cannot set up TLS");
        tls_ctx_free(c);
        return P2C2R_ENOMEM;
    }
    c->server = server;
    *out = c;
    return 0;
}

int tls_ctx_server_new(const char *cert_file, const char *key_file, const char *client_ca,
                       struct tls_ctx **out, char *err, size_t errcap)
{
    struct tls_ctx *c;
    int rc = ctx_new(1, &c, err, errcap);
    if (rc != 0)
        return rc;
    SSL_CTX *s = c->ssl;
    /* No session cache and no tickets: each would cost memory per client
     * (and tickets a write after every handshake) for a resumption the
     * long-lived connections of this protocol do not need. */
    SSL_CTX_set_session_cache_mode(s, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(s, 0);
    SSL_CTX_set_options(s, SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if ((rc = load_pair(s, cert_file, key_file, err, errcap)) != 0)
        goto fail;
    if (client_ca) {
        if ((rc = load_ca(s, client_ca, err, errcap)) != 0)
            goto fail;
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (names)
            SSL_CTX_set_client_CA_list(s, names);
        /* Asked for, verified when given, not required: a renter has no
         * certificate, and a peer may have one. */
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    }
    *out = c;
    return 0;
fail:
    tls_ctx_free(c);
    return rc;
}

int tls_ctx_client_new(const char *ca_file, const char *cert_file, const char *key_file,
                       struct tls_ctx **out, char *err, size_t errcap)
{
    if (!cert_file != !key_file) {
        snprintf(err, errcap, "a client certificate needs both its certificate and its key file");
        return P2C2R_EINVAL;
    }
    struct tls_ctx *c;
    int rc = ctx_new(0, &c, err, errcap);
    if (rc != 0)
        return rc;
    SSL_CTX *s = c->ssl;
    if (ca_file) {
        if ((rc = load_ca(s, ca_file, err, errcap)) != 0)
            goto fail;
        SSL_CTX_set_verify(s, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(s, SSL_VERIFY_NONE, NULL);
    }
    if (cert_file && (rc = load_pair(s, cert_file, key_file, err, errcap)) != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    tls_ctx_free(c);
    return rc;
}

void tls_ctx_free(struct tls_ctx *ctx)
{
    if (!ctx)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx);
}

/* A session with its buffers and nothing else set up; NULL without memory. */
static struct tls *tls_alloc(size_t out_max)
{
    struct tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    buf_init(&t->in, 1u << 20);
    buf_init(&t->out, out_max);
    buf_init(&t->pend, REC_MAX_CIPHER);
    return t;
}

struct tls *tls_new(struct tls_ctx *ctx, const char *host, size_t out_max)
{
    struct tls *t = tls_alloc(out_max);
    if (!t)
        return NULL;
    t->server = (uint8_t)ctx->server;
    t->ctx = ctx;
    t->host = host;
    return t;
}

struct tls *tls_new_keyed(const uint8_t *key, const uint8_t *iv, size_t out_max)
{
    pthread_once(&aead_init, aead_once);
    struct tls *t = tls_alloc(out_max);
    if (!t)
        return NULL;
    memcpy(t->rx.key, key, KEY_LEN);
    memcpy(t->rx.iv, iv, IV_LEN);
    t->tx = t->rx;
    t->ready = 1;
    t->secrets = 3;
    __atomic_add_fetch(&key_gen, 1, __ATOMIC_RELAXED);
    return t;
}

/* The SSL object, made at the handshake's first step rather than at
 * tls_new: a connection that waits for its turn to handshake holds only t. */
static int ssl_make(struct tls *t)
{
    ERR_clear_error();
    BIO *b = NULL;
    if (!(t->ssl = SSL_new(t->ctx->ssl)) || !(b = BIO_new(bio_method)))
        goto fail;
    SSL_set_app_data(t->ssl, t);
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b); /* the SSL owns the one BIO from here */
    if (t->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
        const char *host = t->host;
        if (host && *host) {
            unsigned char ip[16];
            int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
            X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
            if (is_ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1)
                    goto fail;
            } else if (SSL_set1_host(t->ssl, host) != 1 ||
                       SSL_set_tlsext_host_name(t->ssl, host) != 1) {
                goto fail;
            }
        }
    }
    return 0;
fail:
    ERR_clear_error();
    if (!t->ssl)
        BIO_free(b);
    return fail_text(t, "cannot set up a TLS session (out of memory, or a bad host name)");
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    buf_fini(&t->in);
    buf_fini(&t->out);
    buf_fini(&t->pend);
    free(t->subject);
    OPENSSL_cleanse(&t->rx, sizeof(t->rx));
    OPENSSL_cleanse(&t->tx, sizeof(t->tx));
    free(t);
}

void tls_feed(struct tls *t, const uint8_t *p, size_t n)
{
    t->lent = p;
    t->lent_n = n;
}

uint8_t *tls_in_space(struct tls *t, size_t want, size_t *cap)
{
    uint8_t *p = buf_reserve(&t->in, want);
    if (p)
        *cap = t->in.cap - t->in.len;
    return p;
}

void tls_in_commit(struct tls *t, size_t n) { buf_commit(&t->in, n); }

/* Records why the last call failed: for a certificate the verifier's
 * reason, else OpenSSL's. */
static int fail(struct tls *t, int ssl_err)
{
    t->failed = 1;
    long v = t->ssl ? SSL_get_verify_result(t->ssl) : X509_V_OK;
    if (v != X509_V_OK) {
        snprintf(t->err, sizeof(t->err), "certificate verify failed: %s",
                 X509_verify_cert_error_string(v));
        ERR_clear_error();
    } else if (ssl_err == SSL_ERROR_SYSCALL && !ERR_peek_error()) {
        snprintf(t->err, sizeof(t->err), "TLS output over its limit");
    } else {
        openssl_reason(t->err, sizeof(t->err), "TLS error");
    }
    return P2C2R_ETLS;
}

static int fail_text(struct tls *t, const char *why)
{
    t->failed = 1;
    snprintf(t->err, sizeof(t->err), "%s", why);
    return P2C2R_ETLS;
}

/* ---- the record layer after the handshake ----------------------------------------- */

/* One AES-128-GCM context per direction per thread: its cipher is fetched
 * once, and a new key is set only when the connection changes. */
struct aead {
    EVP_CIPHER_CTX *enc, *dec;
    const struct dir *enc_key, *dec_key; /* whose key is loaded */
    uint64_t enc_gen, dec_gen;
};
static pthread_key_t aead_key;
static EVP_CIPHER *aes_gcm;

static void aead_free(void *p)
{
    struct aead *a = p;
    EVP_CIPHER_CTX_free(a->enc);
    EVP_CIPHER_CTX_free(a->dec);
    free(a);
}

static void aead_once(void)
{
    aes_gcm = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    pthread_key_create(&aead_key, aead_free);
}

static struct aead *aead_get(void)
{
    struct aead *a = pthread_getspecific(aead_key);
    if (a)
        return a;
    a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    if (!aes_gcm || !(a->enc = EVP_CIPHER_CTX_new()) || !(a->dec = EVP_CIPHER_CTX_new()) ||
        !EVP_EncryptInit_ex(a->enc, aes_gcm, NULL, NULL, NULL) ||
        !EVP_DecryptInit_ex(a->dec, aes_gcm, NULL, NULL, NULL) || pthread_setspecific(aead_key, a)) {
        aead_free(a);
        return NULL;
    }
    return a;
}

/* d's key when the context holds another's (to be loaded with the IV), or
 * NULL when it already holds d's: consecutive records of one connection
 * skip the key schedule. */
static const uint8_t *key_to_load(const struct dir *d, const struct dir **loaded, uint64_t *gen)
{
    uint64_t g = __atomic_load_n(&key_gen, __ATOMIC_RELAXED);
    if (*loaded == d && *gen == g)
        return NULL;
    *loaded = d;
    *gen = g;
    return d->key;
}

static void nonce_of(const struct dir *d, uint8_t *n)
{
    memcpy(n, d->iv, IV_LEN);
    for (int i = 0; i < 8; i++)
        n[IV_LEN - 1 - i] ^= (uint8_t)(d->seq >> (8 * i));
}

/* Seals p[0..n) (n <= REC_MAX_PLAIN) of content type ct as one record at the
 * end of t->out. */
static int seal(struct tls *t, uint8_t ct, const uint8_t *p, size_t n)
{
    struct aead *a = aead_get();
    size_t clen = n + 1 + TAG_LEN;
    uint8_t *r = buf_reserve(&t->out, REC_HDR + clen);
    if (!a || !r)
        return !a ? fail_text(t, "out of memory for TLS") : P2C2R_ETOOBIG;
    r[0] = CT_APPDATA;
    r[1] = 3;
    r[2] = 3;
    r[3] = (uint8_t)(clen >> 8);
    r[4] = (uint8_t)clen;
    uint8_t nonce[IV_LEN];
    nonce_of(&t->tx, nonce);
    int l = 0, ok;
    const uint8_t *key = key_to_load(&t->tx, &a->enc_key, &a->enc_gen);
    ok = EVP_EncryptInit_ex(a->enc, NULL, NULL, key, nonce) &&
         EVP_EncryptUpdate(a->enc, NULL, &l, r, REC_HDR) &&
         (n == 0 || EVP_EncryptUpdate(a->enc, r + REC_HDR, &l, p, (int)n)) &&
         EVP_EncryptUpdate(a->enc, r + REC_HDR + n, &l, &ct, 1) &&
         EVP_EncryptFinal_ex(a->enc, r + REC_HDR + n + 1, &l) &&
         EVP_CIPHER_CTX_ctrl(a->enc, EVP_CTRL_GCM_GET_TAG, TAG_LEN, r + REC_HDR + n + 1);
    if (!ok) {
        a->enc_key = NULL;
        return fail(t, 0);
    }
    t->tx.seq++;
    buf_commit(&t->out, REC_HDR + clen);
    return 0;
}

/* Opens the record rec (header included, len bytes) into dst (room for
 * len - REC_HDR - TAG_LEN bytes).  Returns the content length and *ct, or
 * P2C2R_ETLS. */
static int open_rec(struct tls *t, const uint8_t *rec, size_t len, uint8_t *dst, uint8_t *ct)
{
    struct aead *a = aead_get();
    if (!a)
        return fail_text(t, "out of memory for TLS");
    size_t clen = len - REC_HDR - TAG_LEN;
    uint8_t nonce[IV_LEN];
    nonce_of(&t->rx, nonce);
    const uint8_t *key = key_to_load(&t->rx, &a->dec_key, &a->dec_gen);
    int l = 0;
    int ok = EVP_DecryptInit_ex(a->dec, NULL, NULL, key, nonce) &&
             EVP_DecryptUpdate(a->dec, NULL, &l, rec, REC_HDR) &&
             EVP_DecryptUpdate(a->dec, dst, &l, rec + REC_HDR, (int)clen) &&
             EVP_CIPHER_CTX_ctrl(a->dec, EVP_CTRL_GCM_SET_TAG, TAG_LEN, (void *)(rec + len - TAG_LEN)) &&
             EVP_DecryptFinal_ex(a->dec, dst + clen, &l) > 0;
    ERR_clear_error();
    if (!ok)
        return fail_text(t, "TLS record failed authentication (bad record MAC)");
    t->rx.seq++;
    /* The inner plaintext: content, its type, zero padding. */
    size_t n = clen;
    while (n && dst[n - 1] == 0)
        n--;
    if (n == 0)
        return fail_text(t, "TLS record without a content type");
    *ct = dst[n - 1];
    return (int)(n - 1);
}

/* Handles an opened record that is not application data: an alert (a
 * close_notify ends the stream), or a handshake message after the
 * handshake (a session ticket is skipped).  Returns 0 to go on, or an
 * error. */
static int non_data(struct tls *t, uint8_t ct, const uint8_t *p, size_t n)
{
    if (ct == CT_ALERT && n == 2) {
        if (p[1] == 0) {
            t->closed = 1;
            return P2C2R_ECLOSED;
        }
        char why[64];
        snprintf(why, sizeof(why), "TLS alert %u from the remote", p[1]);
        return fail_text(t, why);
    }
    if (ct == CT_HANDSHAKE && n >= 4 && p[0] == 4 /* NewSessionTicket */)
        return 0;
    if (ct == CT_HANDSHAKE && n >= 4 && p[0] == 24)
        return fail_text(t, "TLS KeyUpdate is not supported: reconnect instead");
    return fail_text(t, "unexpected TLS record after the handshake");
}

/* The next whole record: a pointer to it (in lent, or in scratch when it
 * spans t->in and lent) and its length; 0 when it is not all here, in which
 * case the lent part is moved into t->in. */
static size_t next_record(struct tls *t, const uint8_t **rec, uint8_t *scratch)
{
    size_t have = buf_used(&t->in) + t->lent_n;
    uint8_t h[REC_HDR];
    if (have >= REC_HDR) {
        size_t hi = buf_used(&t->in) < REC_HDR ? buf_used(&t->in) : REC_HDR;
        if (hi)
            memcpy(h, buf_head(&t->in), hi);
        if (hi < REC_HDR)
            memcpy(h + hi, t->lent, REC_HDR - hi);
        size_t len = REC_HDR + ((size_t)h[3] << 8 | h[4]);
        if (h[0] != CT_APPDATA || len > REC_HDR + REC_MAX_CIPHER || len < REC_HDR + TAG_LEN + 1)
            return (size_t)-1;
        if (have >= len) {
            if (buf_used(&t->in) == 0) {
                *rec = t->lent;
                t->lent += len;
                t->lent_n -= len;
            } else {
                take(t, scratch, len);
                *rec = scratch;
            }
            return len;
        }
    }
    if (t->lent_n && buf_append(&t->in, t->lent, t->lent_n) != 0)
        return (size_t)-2;
    t->lent_n = 0;
    return 0;
}

static int rec_read(struct tls *t, uint8_t *out, size_t cap)
{
    static _Thread_local uint8_t scratch[REC_HDR + REC_MAX_CIPHER], plain[REC_MAX_CIPHER];
    for (;;) {
        if (buf_used(&t->pend)) {
            size_t k = buf_used(&t->pend) < cap ? buf_used(&t->pend) : cap;
            memcpy(out, buf_head(&t->pend), k);
            buf_consume(&t->pend, k);
            if (!buf_used(&t->pend))
                buf_shrink(&t->pend, 0);
            return (int)k;
        }
        const uint8_t *rec;
        size_t len = next_record(t, &rec, scratch);
        if (len == 0) {
            if (!buf_used(&t->in))
                buf_shrink(&t->in, 0);
            return 0;
        }
        if (len == (size_t)-1)
            return fail_text(t, "malformed TLS record");
        if (len == (size_t)-2)
            return fail_text(t, "TLS input over its limit");
        size_t clen = len - REC_HDR - TAG_LEN;
        uint8_t ct;
        int n;
        if (cap >= clen) {
            n = open_rec(t, rec, len, out, &ct);
            if (n < 0)
                return n;
            if (ct == CT_APPDATA && n > 0)
                return n;
            if (ct != CT_APPDATA && (n = non_data(t, ct, out, (size_t)n)) != 0)
                return n;
            continue;
        }
        n = open_rec(t, rec, len, plain, &ct);
        if (n < 0)
            return n;
        if (ct != CT_APPDATA) {
            if ((n = non_data(t, ct, plain, (size_t)n)) != 0)
                return n;
            continue;
        }
        if (buf_append(&t->pend, plain, (size_t)n) != 0)
            return fail_text(t, "out of memory for TLS");
    }
}

/* The handshake is done: keep what the record layer needs and free the rest. */
static int handoff(struct tls *t)
{
    const SSL_CIPHER *c = SSL_get_current_cipher(t->ssl);
    if (t->secrets != 3 || !c || SSL_CIPHER_get_id(c) != TLS1_3_CK_AES_128_GCM_SHA256)
        return fail_text(t, "TLS handshake ended without TLS_AES_128_GCM_SHA256 traffic keys");
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (x && t->server && SSL_get_verify_result(t->ssl) == X509_V_OK) {
        char subj[256];
        X509_NAME_oneline(X509_get_subject_name(x), subj, (int)sizeof(subj));
        t->subject = strdup(subj);
    }
    SSL_free(t->ssl);
    t->ssl = NULL;
    t->ready = 1;
    __atomic_add_fetch(&key_gen, 1, __ATOMIC_RELAXED);
    return 0;
}

/* Drives the handshake.  Returns 1 when done (and handed off), 0 while it
 * waits for input, or P2C2R_ETLS. */
static int handshake(struct tls *t)
{
    if (t->ready)
        return 1;
    if (!t->ssl && ssl_make(t) != 0)
        return P2C2R_ETLS;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1)
        return handoff(t) == 0 ? 1 : P2C2R_ETLS;
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return fail(t, e);
}

int tls_read(struct tls *t, uint8_t *out, size_t cap)
{
    if (t->failed)
        return P2C2R_ETLS;
    if (t->closed)
        return P2C2R_ECLOSED;
    int h = handshake(t);
    if (h <= 0)
        return h;
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    return rec_read(t, out, cap);
}

long tls_write(struct tls *t, const uint8_t *p, size_t n)
{
    if (t->failed)
        return P2C2R_ETLS;
    if (t->server && !t->ssl && !t->ready)
        return 0; /* a server's handshake begins with the client's first bytes */
    int h = handshake(t); /* a client's first write sends its ClientHello */
    if (h <= 0)
        return h;
    size_t done = 0;
    while (done < n) {
        size_t k = n - done > REC_MAX_PLAIN ? REC_MAX_PLAIN : n - done;
        int rc = seal(t, CT_APPDATA, p + done, k);
        if (rc != 0) {
            if (rc == P2C2R_ETOOBIG)
                fail_text(t, "TLS output over its limit");
            return rc;
        }
        done += k;
    }
    return (long)done;
}

struct buf *tls_out(struct tls *t) { return &t->out; }

void tls_out_done(struct tls *t)
{
    if (buf_used(&t->out) == 0)
        buf_shrink(&t->out, 0);
}

int tls_ready(const struct tls *t) { return t->ready; }

int tls_buffered(const struct tls *t)
{
    return buf_used(&t->in) > 0 || t->lent_n > 0 || buf_used(&t->pend) > 0;
}

int tls_failed(const struct tls *t) { return t->failed; }

const char *tls_error(const struct tls *t) { return t->err[0] ? t->err : "TLS error"; }

void tls_peer_subject(const struct tls *t, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s", t->subject ? t->subject : "");
}

int tls_host_of(const char *addr, char *dst, size_t cap)
{
    const char *h = addr, *end;
    if (!addr)
        return -1;
    if (*h == '[') {
        h++;
        end = strchr(h, ']');
    } else {
        end = strrchr(h, ':');
    }
    if (!end || end == h || (size_t)(end - h) >= cap)
        return -1;
    memcpy(dst, h, (size_t)(end - h));
    dst[end - h] = '\0';
    return 0;
}
