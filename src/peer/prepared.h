/* prepared.h - the peer's prepared-state cache: objects that executors
 * derived from blobs (a parsed pathfind map, a raytrace scene with its BVH),
 * kept for later tasks so that repeated tasks over the same blob pay the
 * derivation once per peer (executor ABI 3, p2c2r_exec_prepared_get/_put).
 *
 * Keys are (scope, 32-byte key): the scope is the executor (a pointer the
 * cache only compares), the key what the executor chose (a blob's SHA-256).
 *
 * Thread context: every function is thread-safe (one mutex; nothing is
 * done under it but list and table updates and counting: an object's free
 * function runs outside it).  The executor threads get and put, the loop
 * thread reads the stats.
 *
 * Invariants:
 *   - an object is visible only once it is complete (put takes a finished
 *     object), and never changes while cached: readers share it read-only;
 *   - an entry holds one reference per caller that got or put it and has not
 *     released it; an entry with references is never freed;
 *   - bytes is the sum of the cached entries' sizes; while it is over cap,
 *     unreferenced entries are evicted least recently used first (entries in
 *     use may keep it over cap until they are released);
 *   - an object larger than cap is refused (the caller keeps it), so cap 0
 *     turns the cache off. */
#ifndef P2C2R_PEER_PREPARED_H
#define P2C2R_PEER_PREPARED_H

#include <stddef.h>
#include <stdint.h>

struct prep_cache;
struct prep_entry;

/* What the cache did since it was created (a snapshot: each counter is
 * read under the mutex). */
struct prep_stats {
    uint64_t hits;      /* prep_get found the key */
    uint64_t misses;    /* prep_get did not */
    uint64_t inserts;   /* prep_put cached a new object */
    uint64_t races;     /* prep_put found the key already there (its object was freed) */
    uint64_t refused;   /* prep_put refused an object (over cap): the caller kept it */
    uint64_t evictions; /* entries evicted for bytes */
    uint64_t entries;   /* entries now cached */
    uint64_t bytes;     /* their sizes, summed */
    uint64_t cap;
};

/* Creates a cache of at most cap bytes of unreferenced objects (0: off).
 * Aborts on out of memory (daemon code). */
struct prep_cache *prep_cache_new(size_t cap);
/* Frees every entry (calling its free function).  No entry may still be
 * referenced.  NULL is a no-op. */
void prep_cache_free(struct prep_cache *c);

/* Returns a new reference to the entry under (scope, key) and marks it most
 * recently used, or NULL (a miss).  Release it with prep_release. */
struct prep_entry *prep_get(struct prep_cache *c, const void *scope, const uint8_t key[32]);

/* Caches obj (bytes in size, freed by free_fn) under (scope, key).  Takes
 * ownership on success: returns 0 with *out a new reference to the entry now
 * under the key: obj's, or, when the key was already there (another thread
 * put it first), that entry's, obj being freed.  Evicts down to cap.
 * Returns P2C2R_ETOOBIG when bytes is over cap (the caller keeps obj). */
int prep_put(struct prep_cache *c, const void *scope, const uint8_t key[32], void *obj, size_t bytes,
             void (*free_fn)(void *obj), struct prep_entry **out);

/* The entry's object (valid while the reference is held). */
const void *prep_entry_obj(const struct prep_entry *e);

/* Releases a reference from prep_get or prep_put; the last release of an
 * entry over the cap lets it be evicted.  NULL is a no-op. */
void prep_release(struct prep_cache *c, struct prep_entry *e);

void prep_cache_stats(struct prep_cache *c, struct prep_stats *out);

#endif
