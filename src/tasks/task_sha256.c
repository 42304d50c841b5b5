/* task_sha256.c - SHA-256 over OpenSSL's EVP natively, over libsodium's
 * crypto_hash_sha256 under Emscripten (see task_sha256.h). */
#include "tasks/task_sha256.h"

#include <stdlib.h>

#ifdef __EMSCRIPTEN__

#include <sodium/crypto_hash_sha256.h>

struct task_sha256 {
    crypto_hash_sha256_state st;
};

struct task_sha256 *task_sha256_new(void)
{
    struct task_sha256 *h = malloc(sizeof(*h));
    if (h && crypto_hash_sha256_init(&h->st) != 0) {
        free(h);
        return NULL;
    }
    return h;
}

int task_sha256_update(struct task_sha256 *h, const void *data, size_t n)
{
    return crypto_hash_sha256_update(&h->st, data, n) == 0 ? 0 : -1;
}

int task_sha256_final(struct task_sha256 *h, uint8_t md[32])
{
    int rc = crypto_hash_sha256_final(&h->st, md) == 0 ? 0 : -1;
    free(h);
    return rc;
}

void task_sha256_free(struct task_sha256 *h) { free(h); }

#else

#include <openssl/evp.h>

/* The struct is only a name for the EVP context. */
struct task_sha256 *task_sha256_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx && !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return (struct task_sha256 *)ctx;
}

int task_sha256_update(struct task_sha256 *h, const void *data, size_t n)
{
    return EVP_DigestUpdate((EVP_MD_CTX *)h, data, n) ? 0 : -1;
}

int task_sha256_final(struct task_sha256 *h, uint8_t md[32])
{
    unsigned int n = 0;
    int ok = EVP_DigestFinal_ex((EVP_MD_CTX *)h, md, &n) && n == 32;
    EVP_MD_CTX_free((EVP_MD_CTX *)h);
    return ok ? 0 : -1;
}

void task_sha256_free(struct task_sha256 *h) { EVP_MD_CTX_free((EVP_MD_CTX *)h); }

#endif
