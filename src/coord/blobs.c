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

/* Takes b's charge off the store, the budget and its owner. */
static void blob_uncharge(struct coord *co, struct blob *b)
{
    struct mem_acct *o = b->owner;
    co->blob_bytes -= b->charge;
    mem_release(&co->mem, o, MEM_BLOBS, b->charge);
    if (o) {
        o->blob_bytes -= b->charge;
        if (o->blob_bytes == 0)
            co->mem.blob_holders--;
        mem_acct_unref(o);
    }
    b->owner = NULL;
}

static void blob_remove(struct coord *co, struct blob *b)
{
    struct blob **pp = &co->blob_tab[rd64(b->hash) % BLOB_BUCKETS];
    while (*pp != b)
        pp = &(*pp)->hnext;
    *pp = b->hnext;
    list_remove(&b->lru);
    blob_uncharge(co, b);
    co->nblob--;
    account_blob_charge(b->uploader, b->len, -1);
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

/* Unreferenced blobs looked at per upload that needs room, so an upload
 * costs O(1) however many blobs the store holds. */
#define BLOB_EVICT_WALK 1024

/* Whether an upload by up may evict b (unreferenced): b's uploader is gone,
 * is up itself (LRU within the renter), or holds more than an even split
 * of the store among the renters holding blobs.  So one renter's uploads
 * push out its own and the largest holders' blobs, never those of a renter
 * within its share (docs/ARCHITECTURE.md, "Memory"). */
static int blob_evictable(const struct coord *co, const struct blob *b, const struct mem_acct *up)
{
    const struct mem_acct *o = b->owner;
    if (!o || o->gone || o == up)
        return 1;
    uint32_t holders = co->mem.blob_holders ? co->mem.blob_holders : 1;
    return o->blob_bytes > co->blob_cap / holders;
}

/* Makes room for charge more bytes: evicts unreferenced blobs up may evict,
 * oldest first, until the store's cap, the budget and up's share take it.
 * Returns 0 or why not: P2C2R_EQUEUEFULL (the store), P2C2R_ELIMIT (the
 * memory budget or up's share). */
static int blob_room(struct coord *co, struct mem_acct *up, size_t charge)
{
    struct list_node *n = co->blob_lru.next;
    for (int walked = 0; walked < BLOB_EVICT_WALK && n != &co->blob_lru; walked++) {
        int store_full = co->blob_bytes + charge > co->blob_cap;
        int budget_full = co->mem.used + charge > co->mem.limit;
        int share_full = up && up->used + charge > co->mem.share;
        if (!store_full && !budget_full && !share_full)
            break;
        struct blob *b = list_entry(n, struct blob, lru);
        n = n->next;
        /* Over its share, an uploader makes room among its own blobs only. */
        if (share_full && !store_full && !budget_full ? b->owner == up : blob_evictable(co, b, up))
            blob_remove(co, b);
    }
    if (co->blob_bytes + charge > co->blob_cap)
        return P2C2R_EQUEUEFULL;
    if (co->mem.used + charge > co->mem.limit || (up && up->used + charge > co->mem.share))
        return P2C2R_ELIMIT;
    return 0;
}

void blobs_shed(struct coord *co, struct mem_acct *a, uint64_t n)
{
    struct list_node *it = co->blob_lru.next;
    for (int walked = 0; walked < BLOB_EVICT_WALK && it != &co->blob_lru && a->used + n > co->mem.share; walked++) {
        struct blob *b = list_entry(it, struct blob, lru);
        it = it->next;
        if (b->owner == a)
            blob_remove(co, b);
    }
}

/* Makes room for a new blob of len bytes in owner's quota by evicting its
 * own blobs that no task references, oldest first, looking at no more than
 * BLOB_OWN_WALK of them.  Returns 0 when it fits, else P2C2R_ELIMIT with the
 * reason in why. */
#define BLOB_OWN_WALK 4096
static int blob_quota_room(struct coord *co, struct account *owner, size_t len, char *why, size_t cap)
{
    struct list_node *n = co->blob_lru.next;
    for (int k = 0; k < BLOB_OWN_WALK && n != &co->blob_lru && account_blob_admit(owner, len, NULL, 0); k++) {
        struct blob *b = list_entry(n, struct blob, lru);
        n = n->next;
        if (b->uploader == owner)
            blob_remove(co, b);
    }
    return account_blob_admit(owner, len, why, cap);
}

/* Stores a copy of data under its SHA-256 (written to hash), charged to up
 * (NULL: nobody's) and uploaded by owner (NULL: no accounts).  Returns 0,
 * P2C2R_ETOOBIG (larger than the whole store), P2C2R_EQUEUEFULL (the store
 * is full of blobs that tasks still reference or that renters within their
 * share uploaded) or P2C2R_ELIMIT (the memory budget or up's share is full,
 * or owner's blob quota: the reason in why). */
static int blob_put(struct coord *co, struct mem_acct *up, struct account *owner, const uint8_t *data,
                    size_t len, uint8_t *hash, char *why, size_t whycap)
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
    size_t charge = len + MEM_BLOB_OVERHEAD;
    if (charge > co->blob_cap)
        return P2C2R_ETOOBIG;
    int rc = blob_quota_room(co, owner, len, why, whycap);
    if (rc)
        return rc;
    rc = blob_room(co, up, charge);
    if (rc != 0) {
        if (rc == P2C2R_ELIMIT) {
            co->mem.refused++;
            co->n.mem_refused++;
            snprintf(why, whycap, "memory budget or this renter's memory share full "
                                  "(--mem-budget, --mem-share): retry when tasks finish");
        }
        return rc;
    }
    b = xcalloc(1, sizeof(*b));
    memcpy(b->hash, hash, PROTO_HASH_LEN);
    b->len = len;
    b->data = xmalloc(len ? len : 1);
    memcpy(b->data, data, len);
    struct blob **head = &co->blob_tab[rd64(hash) % BLOB_BUCKETS];
    b->hnext = *head;
    *head = b;
    list_push_back(&co->blob_lru, &b->lru);
    b->charge = charge;
    b->owner = up;
    if (up) {
        mem_acct_ref(up);
        if (up->blob_bytes == 0)
            co->mem.blob_holders++;
        up->blob_bytes += charge;
    }
    mem_charge(&co->mem, up, MEM_BLOBS, charge);
    co->blob_bytes += charge;
    b->uploader = owner;
    account_blob_charge(owner, len, 1);
    co->nblob++;
    co->n.blobs_put++;
    return 0;
}

int blob_store(struct coord *co, const void *data, size_t len, uint8_t *hash)
{
    char why[200];
    return blob_put(co, NULL, NULL, data, len, hash, why, sizeof(why));
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
    char why[200];
    int rc = blob_put(c->co, c->macct, c->acct, body, h->body_len, hash, why, sizeof(why));
    if (rc != 0) {
        if (rc == P2C2R_ETOOBIG)
            snprintf(why, sizeof(why), "blob larger than the coordinator's blob store");
        else if (rc == P2C2R_EQUEUEFULL)
            snprintf(why, sizeof(why), "blob store full of blobs that tasks use or other renters "
                                       "uploaded within their share");
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
            blob_uncharge(co, b);
            free(b->data);
            free(b);
        }
    }
}
