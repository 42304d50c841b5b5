/* peerdb.c - what the coordinator knows about each peer key (DESIGN.md
 * decision 8): a table of records (struct ident_rec) keyed by the Ed25519
 * public key a peer proved at PEER_REGISTER, the operator's groups, and the
 * persistence of both in the store (decision 10).
 *
 * Invariants:
 * - One record per key; every connected peer_rec registered with a key is
 *   on that key's peers list, and its good, strikes, quarantines and group
 *   equal the record's (peerdb_sync is the one place that copies them).
 * - A record changed since the last flush is on co->key_dirty exactly once.
 *   peerdb_flush puts each as a whole record and flushes the store in one
 *   transaction; a failed flush keeps the changes pending in the store, to
 *   be written by the next one.
 * - With a store, the coordinator holds DIR/p2c2r.lock from open to close,
 *   so no other process (the operator's `p2c2r peers --state DIR` edits)
 *   writes records it would overwrite with its own.
 * - Ids: keys and named groups draw from one counter, so a key's own group
 *   id never equals a named group's.
 *
 * The table is bounded by cfg.max_keys: a key beyond it is refused at
 * registration (ELIMIT), since every record is kept (and persisted) for good
 * and a remote could otherwise make keys without end. */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <xxhash.h>

#include "coord/coord_int.h"

/* An operator group: the name given with `p2c2r peers --group KEY=NAME`. */
struct key_group {
    char name[STORE_GROUP_MAX + 1];
    uint32_t id;
};

uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t key_slot(const struct coord *co, const uint8_t *pk)
{
    /* Seeded, so a peer cannot pick keys that share a chain. */
    return (uint32_t)(XXH3_64bits_withSeed(pk, STORE_PK_LEN, co->key_seed) & (co->key_buckets - 1));
}

struct ident_rec *peerdb_find(struct coord *co, const uint8_t *pk)
{
    if (!co->key_tab)
        return NULL;
    struct ident_rec *k = co->key_tab[key_slot(co, pk)];
    while (k && memcmp(k->pk, pk, STORE_PK_LEN) != 0)
        k = k->hnext;
    return k;
}

int peerdb_has_room(const struct coord *co) { return co->nkeys < co->cfg.max_keys; }

static void key_table_grow(struct coord *co)
{
    uint32_t nb = co->key_buckets ? co->key_buckets * 2 : 256;
    struct ident_rec **tab = xcalloc(nb, sizeof(*tab));
    uint32_t old = co->key_buckets;
    struct ident_rec **otab = co->key_tab;
    co->key_tab = tab;
    co->key_buckets = nb;
    for (uint32_t i = 0; i < old; i++) {
        struct ident_rec *k = otab[i];
        while (k) {
            struct ident_rec *next = k->hnext;
            uint32_t s = key_slot(co, k->pk);
            k->hnext = tab[s];
            tab[s] = k;
            k = next;
        }
    }
    free(otab);
}

/* The id of the operator group called name, created when new. */
static uint32_t group_id(struct coord *co, const char *name)
{
    for (uint32_t i = 0; i < co->ngroups; i++)
        if (strcmp(co->groups[i].name, name) == 0)
            return co->groups[i].id;
    if (co->ngroups == co->groups_cap) {
        co->groups_cap = co->groups_cap ? co->groups_cap * 2 : 16;
        co->groups = xrealloc(co->groups, co->groups_cap * sizeof(*co->groups));
    }
    struct key_group *g = &co->groups[co->ngroups++];
    snprintf(g->name, sizeof(g->name), "%s", name);
    g->id = ++co->next_key_id;
    return g->id;
}

/* A new record for pk (not in the table), linked in. */
static struct ident_rec *key_new(struct coord *co, const uint8_t *pk)
{
    if (co->nkeys + 1 > co->key_buckets)
        key_table_grow(co);
    struct ident_rec *k = xcalloc(1, sizeof(*k));
    memcpy(k->pk, pk, STORE_PK_LEN);
    list_init(&k->peers);
    list_init(&k->dnode);
    k->id = ++co->next_key_id;
    k->group = k->id;
    uint32_t s = key_slot(co, pk);
    k->hnext = co->key_tab[s];
    co->key_tab[s] = k;
    co->nkeys++;
    return k;
}

static void key_dirty(struct coord *co, struct ident_rec *k)
{
    if (k->dirty)
        return;
    k->dirty = 1;
    list_push_back(&co->key_dirty, &k->dnode);
}

void peerdb_sync(struct coord *co, struct ident_rec *k)
{
    for (struct list_node *n = k->peers.next; n != &k->peers; n = n->next) {
        struct peer_rec *p = list_entry(n, struct peer_rec, knode);
        p->good = k->good;
        p->strikes = k->strikes;
        p->verified = k->verified;
        p->disagreements = k->disagreements;
        p->lies = k->lies;
        p->quarantines = (uint32_t)(k->quarantines < UINT32_MAX ? k->quarantines : UINT32_MAX);
        p->group = k->group;
    }
    key_dirty(co, k);
}

struct ident_rec *peerdb_get(struct coord *co, const uint8_t *pk)
{
    struct ident_rec *k = peerdb_find(co, pk);
    if (k)
        return k;
    k = key_new(co, pk);
    k->first_seen_ms = wall_ms();
    key_dirty(co, k);
    return k;
}

/* The measured execution time of each type p runs, as its key last had it
 * (issue 13, item 4): a restart or a reconnect does not make a peer look
 * as fast as an unknown one, nor a slow key's new connection fast. */
static void speeds_restore(struct coord *co, struct peer_rec *p, const struct ident_rec *k)
{
    if (!co->store)
        return;
    for (uint32_t m = p->types; m; m &= m - 1) {
        int ti = __builtin_ctz(m);
        uint64_t us;
        if (p->ty[ti].exec_ewma <= 0 && store_speed_get(co->store, k->pk, co->types[ti].name, &us) == 0 && us > 0)
            p->ty[ti].exec_ewma = (float)us;
    }
}

/* Puts p's measured times (types it has run) for the next flush. */
static void speeds_save(struct coord *co, const struct peer_rec *p, const struct ident_rec *k)
{
    if (!co->store)
        return;
    for (uint32_t ti = 0; ti < co->ntypes; ti++)
        if (p->ty[ti].exec_ewma > 0)
            (void)store_speed_put(co->store, k->pk, co->types[ti].name, (uint64_t)(p->ty[ti].exec_ewma + 0.5f));
}

int peerdb_attach(struct coord *co, struct peer_rec *p, struct ident_rec *k, const char *name)
{
    speeds_restore(co, p, k);
    p->key = k;
    list_push_back(&k->peers, &p->knode);
    k->nconns++;
    k->last_seen_ms = wall_ms();
    snprintf(k->name, sizeof(k->name), "%s", name);
    peerdb_sync(co, k);
    if (k->quarantined_until_ms <= k->last_seen_ms)
        return 0;
    /* A quarantine outlives the connection, and the process: a peer cannot
     * shed it by reconnecting. */
    uint64_t left_ms = k->quarantined_until_ms - k->last_seen_ms;
    peer_set_state(p, PS_QUARANTINED);
    list_push_back(&co->quarantined, &p->qnode);
    p->state_until_us = co->now + left_ms * 1000;
    char hex[2 * STORE_PK_LEN + 1];
    for (unsigned i = 0; i < STORE_PK_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", k->pk[i]);
    LOG_W("peer_quarantine_restored", "peer=%u key=%s left_ms=%" PRIu64 " quarantines=%" PRIu64,
          p->id, hex, left_ms, k->quarantines);
    return 1;
}

void peerdb_detach(struct coord *co, struct peer_rec *p)
{
    struct ident_rec *k = p->key;
    if (!k)
        return;
    list_remove(&p->knode);
    k->nconns--;
    k->last_seen_ms = wall_ms();
    speeds_save(co, p, k);
    key_dirty(co, k);
    p->key = NULL;
}

/* ---- persistence ------------------------------------------------------------ */

static void key_to_store(const struct ident_rec *k, struct store_peer *sp)
{
    memset(sp, 0, sizeof(*sp));
    memcpy(sp->pk, k->pk, STORE_PK_LEN);
    sp->first_seen_ms = k->first_seen_ms;
    sp->last_seen_ms = k->last_seen_ms;
    sp->good = k->good;
    sp->verified = k->verified;
    sp->lies = k->lies;
    sp->disagreements = k->disagreements;
    sp->strikes = k->strikes;
    sp->quarantines = k->quarantines;
    sp->quarantined_until_ms = k->quarantined_until_ms;
    sp->banned = k->banned;
    sp->pinned = k->pinned;
    memcpy(sp->group, k->group_name, sizeof(sp->group));
    memcpy(sp->name, k->name, sizeof(sp->name));
}

static int key_load_one(void *arg, const struct store_peer *sp)
{
    struct coord *co = arg;
    if (peerdb_find(co, sp->pk))
        return 0;
    struct ident_rec *k = key_new(co, sp->pk);
    k->first_seen_ms = sp->first_seen_ms;
    k->last_seen_ms = sp->last_seen_ms;
    k->good = sp->good;
    k->verified = sp->verified;
    k->lies = sp->lies;
    k->disagreements = sp->disagreements;
    k->strikes = sp->strikes;
    k->quarantines = sp->quarantines;
    k->quarantined_until_ms = sp->quarantined_until_ms;
    k->banned = sp->banned;
    k->pinned = sp->pinned;
    memcpy(k->group_name, sp->group, sizeof(k->group_name));
    memcpy(k->name, sp->name, sizeof(k->name));
    if (k->group_name[0])
        k->group = group_id(co, k->group_name);
    return 0;
}

/* A type peers ran before a restart is known again at once, so durable
 * jobs of it are taken while its peers reconnect (instead of EUNSUPPORTED);
 * a type with no peer and no queue yields its slot to a new one. */
static int type_known(void *arg, const char *type)
{
    struct coord *co = arg;
    size_t len = strlen(type);
    if (type_name_ok((const uint8_t *)type, len))
        (void)type_intern(co, (const uint8_t *)type, len);
    return 0;
}

int peerdb_open(struct coord *co, char *err, size_t errcap)
{
    list_init(&co->key_dirty);
    co->store_lock_fd = -1;
    if (getrandom(&co->key_seed, sizeof(co->key_seed), GRND_NONBLOCK) != (ssize_t)sizeof(co->key_seed))
        co->key_seed = now_ns();
    key_table_grow(co);
    if (!co->cfg.state_dir)
        return 0;
    int rc = store_lock(co->cfg.state_dir, &co->store_lock_fd, err, errcap);
    if (rc == 0)
        rc = store_open(co->cfg.state_dir, &co->store, err, errcap);
    if (rc == 0 && (rc = store_peer_each(co->store, key_load_one, co)) != 0)
        snprintf(err, errcap, "store: cannot read the peer records of %s/p2c2r.db: %s",
                 co->cfg.state_dir, store_last_error(co->store));
    if (rc == 0 && (rc = store_speed_types(co->store, PROTO_MAX_TYPES, type_known, co)) != 0)
        snprintf(err, errcap, "store: cannot read the task types of %s/p2c2r.db: %s", co->cfg.state_dir,
                 store_last_error(co->store));
    if (rc != 0) {
        peerdb_close(co);
        return rc;
    }
    uint64_t now = wall_ms(), quarantined = 0, banned = 0;
    for (uint32_t i = 0; i < co->key_buckets; i++)
        for (struct ident_rec *k = co->key_tab[i]; k; k = k->hnext) {
            quarantined += k->quarantined_until_ms > now;
            banned += k->banned;
        }
    LOG_I("state_opened", "dir=%s keys=%u quarantined=%" PRIu64 " banned=%" PRIu64 " groups=%u",
          co->cfg.state_dir, co->nkeys, quarantined, banned, co->ngroups);
    return 0;
}

void peerdb_flush(struct coord *co)
{
    struct list_node *n;
    while ((n = co->key_dirty.next) != &co->key_dirty) {
        struct ident_rec *k = list_entry(n, struct ident_rec, dnode);
        list_remove(&k->dnode);
        k->dirty = 0;
        for (struct list_node *pn = k->peers.next; pn != &k->peers; pn = pn->next)
            speeds_save(co, list_entry(pn, struct peer_rec, knode), k);
        if (co->store) {
            struct store_peer sp;
            key_to_store(k, &sp);
            int rc = store_peer_put(co->store, &sp);
            assert(rc == 0); /* the record's strings are bounded by construction */
            (void)rc;
        }
    }
    if (!co->store)
        return;
    int rc = store_flush(co->store);
    if (rc != 0)
        LOG_W("state_flush_failed", "dir=%s code=%s err=\"%s\"", co->cfg.state_dir, p2c2r_errname(rc),
              store_last_error(co->store));
}

void peerdb_close(struct coord *co)
{
    if (co->key_tab && co->store) {
        peerdb_flush(co);
        LOG_I("state_closed", "dir=%s keys=%u", co->cfg.state_dir, co->nkeys);
    }
    store_close(co->store);
    co->store = NULL;
    store_unlock(co->store_lock_fd);
    co->store_lock_fd = -1;
    for (uint32_t i = 0; i < co->key_buckets; i++) {
        struct ident_rec *k = co->key_tab[i];
        while (k) {
            struct ident_rec *next = k->hnext;
            free(k);
            k = next;
        }
    }
    free(co->key_tab);
    co->key_tab = NULL;
    co->key_buckets = co->nkeys = 0;
    free(co->groups);
    co->groups = NULL;
    co->ngroups = co->groups_cap = 0;
    list_init(&co->key_dirty);
}
