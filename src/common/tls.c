/* tls.c - TLS 1.3 over memory (see tls.h).
 *
 * One BIO method of our own stands between OpenSSL and the caller: its read
 * side hands OpenSSL first the bytes in t->in (committed by a caller that
 * reads into it), then the bytes lent by tls_feed; its write side appends
 * to t->out.  A BIO_s_mem pair would do the same with two more buffers per
 * connection and one more copy each way: this way an idle connection holds
 * no buffer at all, which is what keeps 10,000 idle peers cheap.
 *
 * Invariants: when tls_read returns 0 every lent byte has been consumed (the
 * BIO said "retry" only with nothing left); OpenSSL keeps a partial record
 * in its own read buffer, which it frees when it empties (RELEASE_BUFFERS).
 * The error queue is cleared before each OpenSSL call, so SSL_get_error
 * reads only that call's result. */
#include "common/tls.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "p2c2r/error.h"

struct tls_ctx {
    SSL_CTX *ssl;
    int server;
};

struct tls {
    SSL *ssl;
    struct buf in;        /* ciphertext committed by tls_in_commit */
    const uint8_t *lent;  /* ciphertext lent by tls_feed */
    size_t lent_n;
    struct buf out;       /* ciphertext to send */
    uint8_t failed, closed;
    char err[256];
};

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *b, char *dst, int len)
{
    struct tls *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    size_t want = (size_t)len, got = 0;
    size_t h = buf_used(&t->in);
    if (h) {
        got = h < want ? h : want;
        memcpy(dst, buf_head(&t->in), got);
        buf_consume(&t->in, got);
        if (buf_used(&t->in) == 0)
            buf_shrink(&t->in, 0);
    }
    if (got < want && t->lent_n) {
        size_t k = t->lent_n < want - got ? t->lent_n : want - got;
        memcpy(dst + got, t->lent, k);
        t->lent += k;
        t->lent_n -= k;
        got += k;
    }
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

static int ctx_new(int server, struct tls_ctx **out, char *err, size_t errcap)
{
    pthread_once(&bio_once, bio_method_make);
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

struct tls *tls_new(struct tls_ctx *ctx, const char *host, size_t out_max)
{
    struct tls *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    buf_init(&t->in, 1u << 20);
    buf_init(&t->out, out_max);
    ERR_clear_error();
    BIO *b = NULL;
    if (!(t->ssl = SSL_new(ctx->ssl)) || !(b = BIO_new(bio_method)))
        goto fail;
    BIO_set_data(b, t);
    SSL_set_bio(t->ssl, b, b); /* the SSL owns the one BIO from here */
    if (ctx->server) {
        SSL_set_accept_state(t->ssl);
    } else {
        SSL_set_connect_state(t->ssl);
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
    return t;
fail:
    ERR_clear_error();
    tls_free(t);
    return NULL;
}

void tls_free(struct tls *t)
{
    if (!t)
        return;
    SSL_free(t->ssl);
    buf_fini(&t->in);
    buf_fini(&t->out);
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
    long v = SSL_get_verify_result(t->ssl);
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

int tls_read(struct tls *t, uint8_t *out, size_t cap)
{
    if (t->failed)
        return P2C2R_ETLS;
    if (t->closed)
        return P2C2R_ECLOSED;
    if (cap > INT32_MAX)
        cap = INT32_MAX;
    ERR_clear_error();
    int n = SSL_read(t->ssl, out, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN) {
        t->closed = 1;
        return P2C2R_ECLOSED;
    }
    return fail(t, e);
}

long tls_write(struct tls *t, const uint8_t *p, size_t n)
{
    if (t->failed)
        return P2C2R_ETLS;
    size_t done = 0;
    while (done < n) {
        size_t k = n - done > (1u << 30) ? (1u << 30) : n - done;
        size_t w = 0;
        ERR_clear_error();
        int r = SSL_write_ex(t->ssl, p + done, k, &w);
        if (r == 1) {
            done += w;
            continue;
        }
        int e = SSL_get_error(t->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            break; /* the handshake is not done */
        if (e == SSL_ERROR_SYSCALL && !ERR_peek_error() && buf_used(&t->out) + 65536 > t->out.max) {
            t->failed = 1;
            snprintf(t->err, sizeof(t->err), "TLS output over its limit");
            return P2C2R_ETOOBIG;
        }
        return fail(t, e);
    }
    return (long)done;
}

struct buf *tls_out(struct tls *t) { return &t->out; }

void tls_out_done(struct tls *t)
{
    if (buf_used(&t->out) == 0)
        buf_shrink(&t->out, 0);
}

int tls_ready(const struct tls *t) { return SSL_is_init_finished(t->ssl); }

int tls_buffered(const struct tls *t)
{
    return buf_used(&t->in) > 0 || t->lent_n > 0 || SSL_pending(t->ssl) > 0;
}

int tls_failed(const struct tls *t) { return t->failed; }

const char *tls_error(const struct tls *t) { return t->err[0] ? t->err : "TLS error"; }

void tls_peer_subject(const struct tls *t, char *dst, size_t cap)
{
    dst[0] = '\0';
    X509 *x = SSL_get0_peer_certificate(t->ssl);
    if (x && SSL_get_verify_result(t->ssl) == X509_V_OK)
        X509_NAME_oneline(X509_get_subject_name(x), dst, (int)cap);
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
