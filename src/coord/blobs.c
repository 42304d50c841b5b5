/* blobs.c - the blob store: content-addressed uploads (SHA-256), referenced by tasks, LRU by
 * bytes for the unreferenced ones; and the per-peer hint of which blobs a peer holds. */
#include <assert.h>
#include <openssl/evp.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"

/* ---- blobs ---------------------------------------------------------------- */

static uint64_t hash_key(const uint8_t *h) { return rd64(h) | 1; /* never 0 */ }

struct blob *blob_find(struct coord *co, const uint8_t *h)
{
    struct blob *b = co->blob_tab[rd64(h) % BLOB_BUCKETS];
    while (b && memcmp(b->hash, h, PROTO_HASH_LEN) != 0)
        b = b->hnext;
    return b;
}

static void blob_remove(struct coord *co, struct blob *b)
{
    struct blob **pp = &co->blob_tab[rd64(b->hash) % BLOB_BUCKETS];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    list_remove(&b->lru);
    co->blob_bytes -= b->len;
    co->nblob--;
    free(b->data);
    free(b);
}

void blob_ref(struct blob *b)
{
    if (b->refs++ == 0)
        list_remove(&b->lru);
}

void blob_unref(struct coord *co, struct blob *b)
{
    assert(b->refs > 0);
    if (--b->refs == 0)
        list_push_back(&co->blob_lru, &b->lru);
}

/* Stores a copy of data under its SHA-256 (written to hash).  Returns 0,
 * P2C2R_ETOOBIG (larger than the whole store) or P2C2R_EQUEUEFULL (the
 * store is full of blobs that queued or running tasks still reference). */
static int blob_put(struct coord *co, const uint8_t *data, size_t len, uint8_t *hash)
{
    unsigned int hl = 0;
    if (!EVP_Digest(data, len, hash, &hl, EVP_sha256(), NULL) || hl != PROTO_HASH_LEN)
        return P2C2R_ENOMEM;
    struct blob *b = blob_find(co, hash);
    if (b) {
        if (b->refs == 0) { /* touch */
            list_remove(&b->lru);
            list_push_back(&co->blob_lru, &b->lru);
        }
        return 0;
    }
    if (len > co->cfg.blob_store_bytes)
        return P2C2R_ETOOBIG;
    while (co->blob_bytes + len > co->cfg.blob_store_bytes && !list_empty(&co->blob_lru))
        blob_remove(co, list_entry(co->blob_lru.next, struct blob, lru));
    if (co->blob_bytes + len > co->cfg.blob_store_bytes)
        return P2C2R_EQUEUEFULL;
    b = xcalloc(1, sizeof(*b));
    memcpy(b->hash, hash, PROTO_HASH_LEN);
    b->len = len;
    b->data = xmalloc(len);
    memcpy(b->data, data, len);
    struct blob **head = &co->blob_tab[rd64(hash) % BLOB_BUCKETS];
    b->hnext = *head;
    *head = b;
    list_push_back(&co->blob_lru, &b->lru);
    co->blob_bytes += len;
    co->nblob++;
    co->n.blobs_put++;
    return 0;
}

int blob_store(struct coord *co, const void *data, size_t len, uint8_t *hash)
{
    return blob_put(co, data, len, hash);
}

int peer_has_blob(const struct peer_rec *p, const uint8_t *h)
{
    if (!p->has)
        return 0;
    uint64_t k = hash_key(h);
    for (uint32_t i = (uint32_t)(k % PEER_HAS_CAP);; i = (i + 1) % PEER_HAS_CAP) {
        if (p->has[i] == k)
            return 1;
        if (p->has[i] == 0)
            return 0;
    }
}

void peer_mark_blob(struct peer_rec *p, const uint8_t *h)
{
    if (!p->has)
        p->has = xcalloc(PEER_HAS_CAP, sizeof(*p->has));
    if (p->has_n >= PEER_HAS_CAP / 2) {
        memset(p->has, 0, PEER_HAS_CAP * sizeof(*p->has));
        p->has_n = 0;
    }
    uint64_t k = hash_key(h);
    uint32_t i = (uint32_t)(k % PEER_HAS_CAP);
    while (p->has[i] != 0 && p->has[i] != k)
        i = (i + 1) % PEER_HAS_CAP;
    if (p->has[i] == 0)
        p->has_n++;
    p->has[i] = k;
}


int blob_on_put(struct conn *c, const struct frame_hdr *h, const uint8_t *body)
{
    uint8_t hash[PROTO_HASH_LEN];
    int rc = blob_put(c->co, body, h->body_len, hash);
    if (rc != 0) {
        const char *why = rc == P2C2R_ETOOBIG ? "blob larger than the coordinator's blob store"
                                              : "blob store full of blobs that tasks still use";
        size_t wl = strlen(why);
        uint8_t *b = conn_frame(c, MSG_REJECTED, 0, h->req_id, (uint32_t)proto_error_size(wl));
        if (!b) {
            conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
            return -1;
        }
        proto_put_error(b, (uint16_t)-rc, why, wl);
        return 0;
    }
    uint8_t *b = conn_frame(c, MSG_BLOB_OK, 0, h->req_id, PROTO_HASH_LEN);
    if (!b) {
        conn_fail(c, P2C2R_ELIMIT, "renter output over limit");
        return -1;
    }
    memcpy(b, hash, PROTO_HASH_LEN);
    return 0;
}

/* Frees every blob (the coordinator is going away). */
void blobs_free(struct coord *co)
{
    for (uint32_t i = 0; i < BLOB_BUCKETS; i++) {
        while (co->blob_tab[i]) {
            struct blob *b = co->blob_tab[i];
            co->blob_tab[i] = b->hnext;
            free(b->data);
            free(b);
        }
    }
}
