/* rcache.c - the result cache: task outputs keyed by XXH3-128 of what
 * determines them, bounded by bytes (LRU) and by age (TTL).
 *
 * Each entry is one allocation, header then output, and sits on two
 * intrusive containers: a bucket chain of a hash table and the LRU list
 * (front = cold, back = hot).  Keys are hashes already, but they are mixed
 * once more before choosing a bucket, so keys built by hand (as the unit
 * test does) spread as well as real ones.
 *
 * Invariants:
 * - Every entry is on exactly one chain and on the LRU list; no two entries
 *   have the same key.
 * - n.bytes is the sum of (len + RCACHE_ENTRY_OVERHEAD) over the entries and
 *   never exceeds max_bytes; n.entries is their number.
 * - The bucket count is a power of two and entries <= 0.75 * buckets.
 * - A disabled cache (max_bytes 0) holds no entry. */
#include "coord/rcache.h"

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no allocation per key */
#include <xxhash.h>

#include "common/list.h"
#include "common/proto.h"
#include "common/util.h"
#include "p2c2r/error.h"

#define RCACHE_MIN_SHIFT 60 /* 16 buckets to start with */

struct rcache_entry {
    struct rcache_key key;
    struct list_node lru;
    struct rcache_entry *hnext;
    size_t len;
    uint64_t inserted_us;
    uint32_t version;
    uint8_t data[]; /* len bytes of output */
};

static_assert(sizeof(struct rcache_entry) <= RCACHE_ENTRY_OVERHEAD,
              "RCACHE_ENTRY_OVERHEAD must cover the entry header");
static_assert(RCACHE_BLOB_HASH_LEN == PROTO_HASH_LEN, "blob hashes are the protocol's");

struct rcache {
    size_t max_bytes;
    uint64_t ttl_us;
    struct rcache_entry **tab;
    unsigned shift; /* buckets = 2^(64 - shift) */
    struct list_node lru;
    struct rcache_stats n;
};

static size_t rcache_nbuckets(const struct rcache *rc) { return (size_t)1 << (64 - rc->shift); }

/* Fibonacci hashing of both halves: the top bits of the product depend on
 * every bit of the key. */
static size_t rcache_slot(const struct rcache *rc, const struct rcache_key *k)
{
    uint64_t h = (k->lo ^ (k->hi * 0xc2b2ae3d27d4eb4full)) * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> rc->shift);
}

static size_t entry_charge(size_t len) { return len + RCACHE_ENTRY_OVERHEAD; }

/* Expiry is measured from insertion; a now_us before the insertion (a caller
 * whose clock is not monotonic) counts as age 0 rather than wrapping. */
static int rcache_entry_expired(const struct rcache *rc, const struct rcache_entry *e,
                                uint64_t now_us)
{
    return rc->ttl_us != 0 && now_us >= e->inserted_us && now_us - e->inserted_us >= rc->ttl_us;
}

/* Returns the link that points at the entry with key k, or the NULL link
 * that ends its chain. */
static struct rcache_entry **rcache_link_find(struct rcache *rc, const struct rcache_key *k)
{
    struct rcache_entry **pp = &rc->tab[rcache_slot(rc, k)];
    while (*pp && ((*pp)->key.lo != k->lo || (*pp)->key.hi != k->hi))
        pp = &(*pp)->hnext;
    return pp;
}

/* Unlinks and frees the entry *pp points at. */
static void rcache_entry_remove(struct rcache *rc, struct rcache_entry **pp)
{
    struct rcache_entry *e = *pp;
    *pp = e->hnext;
    list_remove(&e->lru);
    assert(rc->n.bytes >= entry_charge(e->len) && rc->n.entries > 0);
    rc->n.bytes -= entry_charge(e->len);
    rc->n.entries--;
    free(e);
}

/* Doubles the bucket array.  Walking the LRU list visits every entry once
 * without touching the old chains. */
static void rcache_grow(struct rcache *rc)
{
    assert(rc->shift > 1);
    free(rc->tab);
    rc->shift--;
    rc->tab = xcalloc(rcache_nbuckets(rc), sizeof(*rc->tab));
    for (struct list_node *p = rc->lru.next; p != &rc->lru; p = p->next) {
        struct rcache_entry *e = list_entry(p, struct rcache_entry, lru);
        struct rcache_entry **head = &rc->tab[rcache_slot(rc, &e->key)];
        e->hnext = *head;
        *head = e;
    }
}

struct rcache *rcache_new(size_t max_bytes, uint64_t ttl_us)
{
    struct rcache *rc = xcalloc(1, sizeof(*rc));
    rc->max_bytes = max_bytes;
    rc->ttl_us = ttl_us;
    rc->shift = RCACHE_MIN_SHIFT;
    rc->tab = xcalloc(rcache_nbuckets(rc), sizeof(*rc->tab));
    list_init(&rc->lru);
    return rc;
}

void rcache_free(struct rcache *rc)
{
    if (!rc)
        return;
    struct list_node *p;
    while ((p = list_pop_front(&rc->lru)) != NULL)
        free(list_entry(p, struct rcache_entry, lru));
    free(rc->tab);
    free(rc);
}

/* Hashes a length (8 bytes, little-endian, so keys do not depend on the
 * host) and then the bytes: the prefix is what keeps ("ab","c") and
 * ("a","bc") apart. */
static void rcache_key_field(XXH3_state_t *st, const void *p, size_t len)
{
    uint8_t pre[8];
    wr64(pre, (uint64_t)len);
    (void)XXH3_128bits_update(st, pre, sizeof(pre));
    if (len)
        (void)XXH3_128bits_update(st, p, len);
}

void rcache_key(struct rcache_key *k, const void *type, size_t type_len, const void *params,
                size_t params_len, const uint8_t *blob_hashes, size_t nblobs, const void *input,
                size_t input_len)
{
    assert(nblobs <= SIZE_MAX / RCACHE_BLOB_HASH_LEN);
    XXH3_state_t st;
    (void)XXH3_128bits_reset(&st);
    rcache_key_field(&st, type, type_len);
    rcache_key_field(&st, params, params_len);
    rcache_key_field(&st, blob_hashes, nblobs * RCACHE_BLOB_HASH_LEN);
    rcache_key_field(&st, input, input_len);
    XXH128_hash_t h = XXH3_128bits_digest(&st);
    k->lo = h.low64;
    k->hi = h.high64;
}

int rcache_get(struct rcache *rc, const struct rcache_key *k, uint32_t min_version,
               uint64_t now_us, const uint8_t **out, size_t *len, uint32_t *version)
{
    assert(rc && k && out && len && version);
    struct rcache_entry **pp = rcache_link_find(rc, k);
    struct rcache_entry *e = *pp;
    if (!e) {
        rc->n.misses++;
        return 0;
    }
    if (rcache_entry_expired(rc, e, now_us)) {
        rcache_entry_remove(rc, pp);
        rc->n.expired++;
        rc->n.misses++;
        return 0;
    }
    if (e->version < min_version) {
        /* Kept: the newer executor's result will replace it through a put. */
        rc->n.misses++;
        return 0;
    }
    list_remove(&e->lru);
    list_push_back(&rc->lru, &e->lru);
    rc->n.hits++;
    *out = e->data;
    *len = e->len;
    *version = e->version;
    return 1;
}

int rcache_put(struct rcache *rc, const struct rcache_key *k, uint32_t version, const void *data,
               size_t len, uint64_t now_us)
{
    assert(rc && k && (data || len == 0));
    if (rc->max_bytes == 0)
        return 0;
    size_t limit = rc->max_bytes / 8;
    if (len > limit || entry_charge(len) > limit) {
        rc->n.skipped++;
        return P2C2R_ETOOBIG;
    }
    /* Copy before removing anything: data may be the output of the entry
     * this put replaces or of one it evicts. */
    struct rcache_entry *e = xmalloc(sizeof(*e) + len);
    e->key = *k;
    e->len = len;
    e->inserted_us = now_us;
    e->version = version;
    if (len)
        memcpy(e->data, data, len);

    struct rcache_entry **pp = rcache_link_find(rc, k);
    if (*pp)
        rcache_entry_remove(rc, pp);
    while (rc->n.bytes + entry_charge(len) > rc->max_bytes) {
        assert(!list_empty(&rc->lru)); /* the entry fits in an empty cache */
        struct rcache_entry *cold = list_entry(rc->lru.next, struct rcache_entry, lru);
        /* A dead entry evicted for room is counted as what it is, so
         * evictions measure only the pressure on live results. */
        if (rcache_entry_expired(rc, cold, now_us))
            rc->n.expired++;
        else
            rc->n.evictions++;
        rcache_entry_remove(rc, rcache_link_find(rc, &cold->key));
    }

    struct rcache_entry **head = &rc->tab[rcache_slot(rc, k)];
    e->hnext = *head;
    *head = e;
    list_push_back(&rc->lru, &e->lru);
    rc->n.bytes += entry_charge(len);
    rc->n.entries++;
    rc->n.inserts++;
    if (rc->n.entries * 4 > (uint64_t)rcache_nbuckets(rc) * 3)
        rcache_grow(rc);
    return 0;
}

size_t rcache_expire(struct rcache *rc, uint64_t now_us, size_t max_n)
{
    assert(rc);
    size_t removed = 0;
    while (removed < max_n && !list_empty(&rc->lru)) {
        struct rcache_entry *cold = list_entry(rc->lru.next, struct rcache_entry, lru);
        if (!rcache_entry_expired(rc, cold, now_us))
            break;
        rcache_entry_remove(rc, rcache_link_find(rc, &cold->key));
        rc->n.expired++;
        removed++;
    }
    return removed;
}

void rcache_stats(const struct rcache *rc, struct rcache_stats *out)
{
    assert(rc && out);
    *out = rc->n;
}
