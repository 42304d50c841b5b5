/* rcache.h - the coordinator's result cache: outputs of deterministic tasks,
 * keyed by a content hash of everything that determines them, so a repeat is
 * answered without running it.  Bounded by bytes (LRU) and by age (TTL).
 *
 * Thread context: a cache belongs to one thread (the coordinator's loop) and
 * has no locks.  Allocation failure aborts, as everywhere in the daemon. */
#ifndef P2C2R_RCACHE_H
#define P2C2R_RCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes charged per entry on top of its output: the entry's header, which
 * shares one allocation with the output.  The hash table's bucket array is
 * not charged: one pointer per bucket, doubled to keep the load <= 0.75 and
 * never shrunk, so at most about 22 bytes per entry held at the peak. */
#define RCACHE_ENTRY_OVERHEAD 64u

/* Length of each referenced blob hash given to rcache_key (SHA-256). */
#define RCACHE_BLOB_HASH_LEN 32u

/* XXH3-128 of a task's type name, params, blob hashes and input. */
struct rcache_key {
    uint64_t lo, hi;
};

struct rcache_stats {
    uint64_t hits, misses;
    uint64_t inserts;   /* successful puts, replacements included */
    uint64_t evictions; /* live entries dropped to make room */
    uint64_t expired;   /* entries dropped because their TTL passed */
    uint64_t skipped;   /* puts refused as over max_bytes / 8 */
    uint64_t entries;   /* entries held now */
    uint64_t bytes;     /* bytes charged now: sum of output len + RCACHE_ENTRY_OVERHEAD */
};

struct rcache;

/* Creates a cache holding at most max_bytes charged bytes, whose entries
 * expire ttl_us after their insertion (ttl_us 0: they never expire).
 * max_bytes 0 disables it: every get misses and every put stores nothing.
 * Never returns NULL. */
struct rcache *rcache_new(size_t max_bytes, uint64_t ttl_us);

/* Frees the cache and every entry.  NULL is a no-op. */
void rcache_free(struct rcache *rc);

/* Computes the key of a task.  Borrows every buffer for the call only; a
 * buffer may be NULL when its length is 0.  blob_hashes holds nblobs hashes
 * of RCACHE_BLOB_HASH_LEN bytes, in the task's order.  Each field is
 * length-prefixed, so moving bytes across a field boundary changes the key;
 * equal inputs give equal keys. */
void rcache_key(struct rcache_key *k, const void *type, size_t type_len, const void *params,
                size_t params_len, const uint8_t *blob_hashes, size_t nblobs, const void *input,
                size_t input_len);

/* Looks up k.  An entry counts only if its version >= min_version and it has
 * not expired at now_us (it expires at insertion + ttl_us exactly); an expired
 * entry is removed, an older-version one is left for a put to replace.
 * Returns 1 on a hit, moving the entry to the hot end of the LRU and setting
 * *out, *len and *version (*out returns a pointer valid until the next rcache
 * call on rc); returns 0 on a miss, leaving them unwritten.  Counts one hit or
 * one miss. */
int rcache_get(struct rcache *rc, const struct rcache_key *k, uint32_t min_version,
               uint64_t now_us, const uint8_t **out, size_t *len, uint32_t *version);

/* Stores a private copy of the len bytes at data (borrows data for the call;
 * it may be an output rcache_get returned) as the result of k produced by
 * executor version, inserted at now_us, replacing any entry with the same key
 * whatever its version.  Evicts from the cold end of the LRU to stay within
 * max_bytes.  Returns 0 (also when the cache is disabled, storing nothing),
 * or P2C2R_ETOOBIG when len + RCACHE_ENTRY_OVERHEAD is over max_bytes / 8:
 * then nothing is stored or removed, and the put counts as skipped. */
int rcache_put(struct rcache *rc, const struct rcache_key *k, uint32_t version, const void *data,
               size_t len, uint64_t now_us);

/* Removes up to max_n entries expired at now_us, walking from the cold end of
 * the LRU and stopping at the first live entry, so a call costs O(max_n).
 * Meant for a periodic sweep.  An expired entry behind a live one waits for a
 * lookup, an eviction or a later sweep.  That wait is short: every entry
 * colder than it was last used, hence inserted, before its own last use,
 * which came before its expiry; so all of them have expired one TTL after it
 * did, and sweeps that remove enough per call reach it by then.  Returns how
 * many it removed. */
size_t rcache_expire(struct rcache *rc, uint64_t now_us, size_t max_n);

/* Copies the counters into *out. */
void rcache_stats(const struct rcache *rc, struct rcache_stats *out);

#endif
