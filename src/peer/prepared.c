/* prepared.c - the peer's prepared-state cache (prepared.h).
 *
 * A chained hash table over (scope, key) for lookups and one intrusive list
 * in least recently used order for eviction, both under one mutex.  Free
 * functions run after the mutex is released: an executor's free may take
 * its time (a large BVH), and must not stall the other threads' lookups.
 * Eviction walks the LRU list from its cold end and skips referenced
 * entries, so its cost is bounded by the entries in use plus those evicted. */
#include "peer/prepared.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/list.h"
#include "common/util.h"
#include "p2c2r/error.h"

#define PREP_BUCKETS 256u

struct prep_entry {
    const void *scope;
    uint8_t key[32];
    void *obj;
    size_t bytes;
    void (*free_fn)(void *obj);
    uint32_t refs;
    struct prep_entry *chain; /* next in its bucket */
    struct list_node lru;     /* least recently used first */
};

struct prep_cache {
    pthread_mutex_t mu;
    struct prep_entry *buckets[PREP_BUCKETS];
    struct list_node lru;
    size_t bytes, cap;
    struct prep_stats st;
};

static uint32_t bucket_of(const void *scope, const uint8_t key[32])
{
    /* Keys are hashes already: a few of their bytes spread well. */
    uintptr_t s = (uintptr_t)scope;
    return (uint32_t)((key[0] ^ key[7] ^ (s >> 4) ^ (s >> 12)) % PREP_BUCKETS);
}

struct prep_cache *prep_cache_new(size_t cap)
{
    struct prep_cache *c = xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->mu, NULL);
    list_init(&c->lru);
    c->cap = cap;
    return c;
}

static void entry_destroy(struct prep_entry *e)
{
    if (e->free_fn)
        e->free_fn(e->obj);
    free(e);
}

void prep_cache_free(struct prep_cache *c)
{
    if (!c)
        return;
    struct list_node *n;
    while ((n = list_pop_front(&c->lru)) != NULL) {
        struct prep_entry *e = list_entry(n, struct prep_entry, lru);
        assert(e->refs == 0);
        entry_destroy(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Under mu. */
static struct prep_entry **find_slot(struct prep_cache *c, const void *scope, const uint8_t key[32])
{
    struct prep_entry **pp = &c->buckets[bucket_of(scope, key)];
    while (*pp && !((*pp)->scope == scope && memcmp((*pp)->key, key, 32) == 0))
        pp = &(*pp)->chain;
    return pp;
}

/* Under mu: unlinks unreferenced entries, coldest first, while over cap,
 * and chains them on *dead for the caller to destroy outside the mutex. */
static void evict(struct prep_cache *c, struct prep_entry **dead)
{
    struct list_node *n = c->lru.next;
    while (c->bytes > c->cap && n != &c->lru) {
        struct prep_entry *e = list_entry(n, struct prep_entry, lru);
        n = n->next;
        if (e->refs)
            continue;
        struct prep_entry **pp = find_slot(c, e->scope, e->key);
        assert(*pp == e);
        *pp = e->chain;
        list_remove(&e->lru);
        c->bytes -= e->bytes;
        c->st.evictions++;
        c->st.entries--;
        e->chain = *dead;
        *dead = e;
    }
}

static void destroy_chain(struct prep_entry *dead)
{
    while (dead) {
        struct prep_entry *next = dead->chain;
        entry_destroy(dead);
        dead = next;
    }
}

struct prep_entry *prep_get(struct prep_cache *c, const void *scope, const uint8_t key[32])
{
    pthread_mutex_lock(&c->mu);
    struct prep_entry *e = *find_slot(c, scope, key);
    if (e) {
        e->refs++;
        list_remove(&e->lru);
        list_push_back(&c->lru, &e->lru);
        c->st.hits++;
    } else {
        c->st.misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

int prep_put(struct prep_cache *c, const void *scope, const uint8_t key[32], void *obj, size_t bytes,
             void (*free_fn)(void *obj), struct prep_entry **out)
{
    struct prep_entry *dead = NULL, *ne = NULL;
    pthread_mutex_lock(&c->mu);
    if (bytes > c->cap) {
        c->st.refused++;
        pthread_mutex_unlock(&c->mu);
        return P2C2R_ETOOBIG;
    }
    pthread_mutex_unlock(&c->mu);
    /* Allocated outside the mutex; a daemon aborts on out of memory. */
    ne = xcalloc(1, sizeof(*ne));
    ne->scope = scope;
    memcpy(ne->key, key, 32);
    ne->obj = obj;
    ne->bytes = bytes;
    ne->free_fn = free_fn;
    list_init(&ne->lru);
    pthread_mutex_lock(&c->mu);
    struct prep_entry **pp = find_slot(c, scope, key), *e = *pp;
    if (e) {
        /* Another thread derived the same object first: keep its copy
         * (the two are equal, both being derived from the same bytes). */
        c->st.races++;
        ne->chain = dead;
        dead = ne;
    } else {
        e = ne;
        *pp = e;
        c->bytes += bytes;
        c->st.inserts++;
        c->st.entries++;
        list_push_back(&c->lru, &e->lru);
    }
    e->refs++;
    list_remove(&e->lru);
    list_push_back(&c->lru, &e->lru);
    evict(c, &dead);
    pthread_mutex_unlock(&c->mu);
    destroy_chain(dead);
    *out = e;
    return 0;
}

const void *prep_entry_obj(const struct prep_entry *e) { return e->obj; }

void prep_release(struct prep_cache *c, struct prep_entry *e)
{
    if (!e)
        return;
    struct prep_entry *dead = NULL;
    pthread_mutex_lock(&c->mu);
    assert(e->refs > 0);
    if (--e->refs == 0)
        evict(c, &dead);
    pthread_mutex_unlock(&c->mu);
    destroy_chain(dead);
}

void prep_cache_stats(struct prep_cache *c, struct prep_stats *out)
{
    pthread_mutex_lock(&c->mu);
    *out = c->st;
    out->bytes = c->bytes;
    out->cap = c->cap;
    pthread_mutex_unlock(&c->mu);
}
