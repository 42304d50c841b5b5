/* pblob.c - the peer's blob cache.
 *
 * Blobs (maps, meshes) arrive in BLOB_DATA ahead of the tasks that name them
 * by SHA-256, and stay for later tasks.  The cache is one list in least
 * recently used order; a blob is used when it arrives again or a task names
 * it.  Invariants: every cached blob's bytes hash to its key (checked on the
 * way in); bytes is the sum of the cached lengths; a blob pinned by a job
 * (refs > 0) is never evicted, so the cache may sit over its cap while jobs
 * hold large blobs, and shrinks at the next put.  A linear search is enough:
 * a peer holds a handful of blobs, not thousands. */
#include "peer/peer_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p2c2r/error.h"

void pblob_cache_init(struct pblob_cache *c, size_t cap)
{
    list_init(&c->lru);
    c->bytes = 0;
    c->cap = cap;
}

void pblob_cache_fini(struct pblob_cache *c)
{
    struct list_node *n;
    while ((n = list_pop_front(&c->lru)) != NULL) {
        struct pblob *b = list_entry(n, struct pblob, node);
        free(b->data);
        free(b);
    }
    c->bytes = 0;
}

struct pblob *pblob_find(struct pblob_cache *c, const uint8_t *hash)
{
    for (struct list_node *n = c->lru.next; n != &c->lru; n = n->next) {
        struct pblob *b = list_entry(n, struct pblob, node);
        if (memcmp(b->hash, hash, PROTO_HASH_LEN) == 0)
            return b;
    }
    return NULL;
}

static void pblob_touch(struct pblob_cache *c, struct pblob *b)
{
    list_remove(&b->node);
    list_push_back(&c->lru, &b->node);
}

static void pblob_evict(struct pblob_cache *c)
{
    struct list_node *n = c->lru.next;
    while (c->bytes > c->cap && n != &c->lru) {
        struct pblob *b = list_entry(n, struct pblob, node);
        n = n->next;
        if (b->refs)
            continue;
        list_remove(&b->node);
        c->bytes -= b->len;
        free(b->data);
        free(b);
    }
}

int pblob_put(struct pblob_cache *c, const uint8_t *hash, const uint8_t *data, size_t len)
{
    struct pblob *b = pblob_find(c, hash);
    if (b) {
        pblob_touch(c, b);
        return 0;
    }
    uint8_t md[PROTO_HASH_LEN];
    unsigned int ml = 0;
    if (!EVP_Digest(data, len, md, &ml, EVP_sha256(), NULL) || memcmp(md, hash, PROTO_HASH_LEN) != 0)
        return P2C2R_EPROTO;
    b = calloc(1, sizeof(*b));
    uint8_t *copy = malloc(len ? len : 1);
    if (!b || !copy) {
        free(b);
        free(copy);
        return 0;
    }
    memcpy(b->hash, hash, PROTO_HASH_LEN);
    if (len)
        memcpy(copy, data, len);
    b->data = copy;
    b->len = len;
    list_push_back(&c->lru, &b->node);
    c->bytes += len;
    pblob_evict(c);
    return 0;
}

int pblob_resolve(struct pblob_cache *c, const struct msg_task *t, struct pblob **out, char *err,
                  size_t errcap)
{
    for (uint32_t i = 0; i < t->nblobs; i++) {
        out[i] = pblob_find(c, t->blobs + i * PROTO_HASH_LEN);
        if (!out[i]) {
            char hx[2 * PROTO_HASH_LEN + 1];
            hex_encode(t->blobs + i * PROTO_HASH_LEN, PROTO_HASH_LEN, hx);
            snprintf(err, errcap, "blob %s not in this peer's cache", hx);
            return P2C2R_ENOBLOB;
        }
    }
    for (uint32_t i = 0; i < t->nblobs; i++)
        pblob_touch(c, out[i]);
    return 0;
}
