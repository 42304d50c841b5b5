/* verify.c - results are checked before they count.
 *
 * Executors are deterministic (byte-identical output on every peer), so two
 * honest runs of a task give the same bytes and verification is a
 * comparison.  A type's policy (--verify) says how many independent peers
 * must agree before a result is delivered as verified, cached, or counted
 * for anyone's record:
 * - none: the first result counts as it is (the operator trusts every peer
 *   of the type); it is cached, never flagged VERIFIED, and no record moves;
 * - adaptive (the default): two, when the peer that answered has no
 *   established record (fewer than ESTABLISHED results in a row that an
 *   independent peer confirmed); an established peer is spot-checked with
 *   a probability that falls as its record grows (verify_spot_prob), down
 *   to SPOT_FLOOR.  A result no independent peer can check (none is
 *   connected that could run the task) is delivered unverified, because a
 *   game wants an answer; it is not cached and moves no record;
 * - quorum2 / quorum3: that many, always; a task waits (within its
 *   deadline) for the independent peers it needs.
 * Results that differ are settled by more runs on peers independent of
 * every peer that answered; once one result has the support it needs, the
 * peers behind every other result are caught in a lie: struck and
 * quarantined at once, for --liar-quarantine, doubling each time.  A
 * deterministic executor leaves no honest explanation for a wrong output.
 *
 * Independence is by p->group alone (peers of one group never check each
 * other); today each connection is its own group.
 *
 * Invariants: t->vs exists only while t waits for agreement (from its
 * first successful RESULT to its outcome); every candidate's supporters
 * are of distinct groups, and no peer of a supporter's group runs t again
 * (verify_excludes, through task_fits); t->verified is set only when a
 * candidate reached vs->need supporters, and only such results (or those
 * of types whose policy is none) enter the result cache; trust (good)
 * grows only in peer_confirmed. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/coord_int.h"
#include "coord/ledger.h"

#define ESTABLISHED 10  /* confirmed results in a row before spot checks start */
#define SPOT_HALF 8.0   /* confirmed results past ESTABLISHED that halve the spot-check rate */
#define SPOT_FLOOR 0.15 /* the least share of an established peer's results that is checked */

/* Whether p holds tasks and every one of them is past its predicted time
 * (claims.c): a staller, which would hold a check too.  A peer with some
 * overdue tasks among others (slow under load) still counts. */
static int stalling(const struct peer_rec *p)
{
    return p->inflight > 0 && claims_overdue_count(p) >= p->inflight;
}

static const char *const policy_names[VP_COUNT] = {"none", "adaptive", "quorum2", "quorum3"};

const char *verify_policy_name(int policy)
{
    return policy >= 0 && policy < VP_COUNT ? policy_names[policy] : "?";
}

static int policy_parse(const char *s, size_t n)
{
    for (int i = 0; i < VP_COUNT; i++)
        if (strlen(policy_names[i]) == n && memcmp(policy_names[i], s, n) == 0)
            return i;
    return -1;
}

int verify_parse(struct coord *co, const char *spec, char *err, size_t errcap)
{
    co->verify_default = VP_ADAPTIVE;
    co->ntver = 0;
    const char *s = spec, *it;
    size_t n;
    while (util_list_next(&s, &it, &n)) {
        const char *eq = memchr(it, '=', n);
        int pol = eq ? policy_parse(eq + 1, (size_t)(it + n - eq - 1)) : policy_parse(it, n);
        size_t tl = eq ? (size_t)(eq - it) : 0;
        int star = eq && tl == 1 && *it == '*';
        if (pol < 0 || (eq && !star && !type_name_ok((const uint8_t *)it, tl)) || co->ntver == PROTO_MAX_TYPES) {
            snprintf(err, errcap,
                     "bad --verify '%s': expected POLICY or TYPE=POLICY[,TYPE=POLICY...] ('*' for every other "
                     "type), POLICY one of none, adaptive, quorum2, quorum3",
                     spec);
            return P2C2R_EINVAL;
        }
        if (!eq || star) {
            co->verify_default = (uint8_t)pol;
            continue;
        }
        struct type_verify *v = &co->tver[co->ntver++];
        memcpy(v->name, it, tl);
        v->name[tl] = '\0';
        v->policy = (uint8_t)pol;
    }
    return 0;
}

int verify_policy_for(const struct coord *co, const char *name)
{
    for (uint32_t k = 0; k < co->ntver; k++)
        if (strcmp(co->tver[k].name, name) == 0)
            return co->tver[k].policy;
    return co->verify_default;
}

/* 1 below ESTABLISHED; then SPOT_HALF / (SPOT_HALF + confirmed past it):
 * 0.5 eight results later, 0.3 after 19, SPOT_FLOOR from 46 on.  Since
 * only checked results extend the record, a peer needs about 40 tasks
 * past ESTABLISHED before its expected cost falls under 1.3 runs per
 * task, and about 175 to reach the floor (1.15). */
double verify_spot_prob(uint64_t consec)
{
    if (consec < ESTABLISHED)
        return 1.0;
    double p = SPOT_HALF / (SPOT_HALF + (double)(consec - ESTABLISHED));
    return p < SPOT_FLOOR ? SPOT_FLOOR : p;
}

static int cand_has_group(const struct vcand *c, uint32_t group)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->groups[i] == group)
            return 1;
    return 0;
}

int verify_excludes(const struct task *t, const struct peer_rec *p)
{
    const struct vstate *vs = t->vs;
    for (unsigned k = 0; vs && k < vs->ncand; k++)
        if (cand_has_group(&vs->c[k], p->group))
            return 1;
    return 0;
}

void verify_free(struct task *t)
{
    if (!t->vs)
        return;
    for (unsigned k = 0; k < t->vs->ncand; k++)
        free(t->vs->c[k].out);
    free(t->vs);
    t->vs = NULL;
}

/* How many agreeing independent results t needs, its first one from p. */
static int verify_need(struct coord *co, const struct task *t, const struct peer_rec *p)
{
    switch (co->types[t->tt].verify) {
    case VP_NONE: return 1;
    case VP_QUORUM2: return 2;
    case VP_QUORUM3: return 3;
    default: break;
    }
    double prob = verify_spot_prob(p->consec_verified);
    return prob >= 1.0 || (double)(rng_next(&co->rng) >> 11) * 0x1.0p-53 < prob ? 2 : 1;
}

/* Whether p could check t now: connected, outside quarantine, not
 * stalling, established when est, and task_fits (whatever peer the check
 * is reserved for: the caller clears the reservation around the call). */
static int could_check(struct coord *co, struct task *t, struct peer_rec *p, int est)
{
    return p->state != PS_QUARANTINED && p->conn && p->conn->state == CS_READY && !stalling(p) &&
           (!est || verify_established(p)) && task_fits(co, t, p);
}

/* A peer that could check t (could_check), drawn at random among all the
 * type's peers, busy or not (a checker must not be the fastest free peer,
 * or colluders that answer at once would check each other): a few random
 * draws, then a scan from a random place.  NULL when there is none.  The
 * draws keep it O(1) with many peers; the scan runs only when few of them
 * qualify. */
static struct peer_rec *find_checker(struct coord *co, struct task *t, int est, int pick)
{
    const struct ttype *tt = &co->types[t->tt];
    uint32_t n = tt->npeers, reserved = t->vs->checker;
    struct peer_rec *got = NULL;
    if (n == 0)
        return NULL;
    t->vs->checker = 0;
    for (int k = 0; pick && k < 16 && !got; k++) {
        struct peer_rec *p = tt->peers[rng_next(&co->rng) % n];
        if (could_check(co, t, p, est))
            got = p;
    }
    uint32_t start = (uint32_t)(rng_next(&co->rng) % n);
    for (uint32_t i = 0; i < n && !got; i++) {
        struct peer_rec *p = tt->peers[(start + i) % n];
        if (could_check(co, t, p, est))
            got = p;
    }
    t->vs->checker = reserved;
    return got;
}

static int verifier_exists(struct coord *co, struct task *t) { return find_checker(co, t, 0, 0) != NULL; }

/* An independent peer confirmed this peer's result: its record and trust grow. */
static void peer_confirmed(struct coord *co, uint32_t id)
{
    struct peer_rec *p = peer_find(co, id);
    if (!p)
        return;
    p->consec_verified++;
    if (p->key)
        p->key->verified++; /* peer_good syncs the key's connections */
    else
        p->verified++;
    peer_good(co, p);
}

/* A peer behind a result that independent peers outvoted. */
static void peer_caught(struct coord *co, uint32_t id)
{
    co->n.liars++;
    struct peer_rec *p = peer_find(co, id);
    if (!p)
        return;
    if (p->key) {
        p->key->lies++;
        p->key->strikes++;
        peerdb_sync(co, p->key);
        ledger_on_liar(co, p->key->pk);
    } else {
        p->lies++;
        p->strikes++;
    }
    p->consec_strikes++;
    p->consec_verified = 0;
    peer_bad_event(p);
    if (p->state != PS_QUARANTINED)
        peer_quarantine_for(co, p, "returned a result that independent peers contradicted",
                            co->cfg.liar_quarantine_ms);
}

/* A result delivered without a check: not cached, no record moves. */
static void deliver_unverified(struct coord *co, struct task *t, const uint8_t *out, size_t len,
                               uint32_t exec_us, uint32_t peer_id)
{
    co->n.unverified++;
    co->types[t->tt].unverified++;
    task_finish(co, t, 0, out, len, exec_us, peer_id);
}

/* w has the support it needs: it counts for the renter, the cache and
 * the records of everyone who computed it; every other result's peers are
 * caught.  t's outcome is given (t may be freed). */
static void settle(struct coord *co, struct task *t, struct vcand *w, uint32_t version)
{
    struct vstate *vs = t->vs;
    struct ttype *tt = &co->types[t->tt];
    for (unsigned k = 0; k < vs->ncand; k++)
        for (unsigned i = 0; &vs->c[k] != w && i < vs->c[k].n; i++)
            peer_caught(co, vs->c[k].peers[i]);
    for (unsigned i = 0; i < w->n; i++)
        peer_confirmed(co, w->peers[i]);
    ledger_on_verified(co, t, w->peers, w->n);
    t->verified = 1;
    co->n.verified++;
    tt->verified++;
    if (t->cacheable && co->cache)
        (void)rcache_put(co->cache, &t->key, version, w->out, w->len, co->now);
    task_finish(co, t, 0, w->out, w->len, w->exec_us, w->peers[0]);
}

/* No independent peer can check t now (adaptive): one result is delivered
 * unverified; results that disagree fail the task, since nobody can say
 * which is right (and nobody is struck). */
static void settle_without(struct coord *co, struct task *t)
{
    struct vstate *vs = t->vs;
    if (vs->ncand == 1) {
        deliver_unverified(co, t, vs->c[0].out, vs->c[0].len, vs->c[0].exec_us, vs->c[0].peers[0]);
        return;
    }
    const char *msg = "peers disagree on the result and no independent peer is connected to settle it";
    task_finish(co, t, P2C2R_ETASK, (const uint8_t *)msg, strlen(msg), 0, 0);
}

/* Starts the next run of t on a peer independent of every one that
 * answered (avoiding failed_group, when set, like a retry).  A quorum task
 * with no such peer free waits in its queue; an adaptive one settles for
 * what it has when no such peer is connected at all. */
static void verify_next(struct coord *co, struct task *t, uint32_t failed_group)
{
    struct vstate *vs = t->vs;
    struct ttype *tt = &co->types[t->tt];
    if (t->nlive > 0)
        return; /* a run is still out on another peer (a hedge): it is the check */
    if (vs->runs >= VERIFY_MAX_RUNS) {
        char msg[128];
        snprintf(msg, sizeof(msg), "no %u agreeing results from independent peers in %u runs", vs->need,
                 vs->runs + 1u);
        task_finish(co, t, P2C2R_ETASK, (const uint8_t *)msg, strlen(msg), 0, 0);
        return;
    }
    if (failed_group)
        task_exclude(t, failed_group);
    t->tries = 0; /* a check is not a retry: max_attempts counts lost runs from here */
    /* The peers that answered cannot run it, so it waits in the queue kept
     * apart for tasks not every peer can run (as tasks with requirements
     * do): at the front of the ordinary queue, a pile of checks would stand
     * in front of the work those peers can run, since a peer looks past
     * only LOOK_PAST tasks.  pick_peer scans the free set for such tasks. */
    t->kind = 1;
    /* The check is reserved for one peer drawn at random among all that
     * could run it, busy or not: drawn among the free ones, the checkers
     * would mostly be peers that answer at once, which is what colluding
     * liars do.  A busy checker takes it before other work (dispatch_peer). */
    struct peer_rec *ck = find_checker(co, t, vs->want_est, 1);
    vs->checker = ck ? ck->id : 0;
    if (!task_place(co, t)) {
        if (tt->verify == VP_ADAPTIVE && !ck && !verifier_exists(co, t)) {
            settle_without(co, t);
            return;
        }
        task_enqueue(co, t, 1);
        if (ck)
            list_push_back(&ck->checks, &t->cnode);
    }
    vs->runs++;
    co->n.verify_runs++;
    tt->verify_runs++;
}

/* p's result joins candidate c. */
int verify_established(const struct peer_rec *p)
{
    return (p->key && p->key->pinned) || p->pool_trusted || p->consec_verified >= ESTABLISHED;
}

static void cand_add(struct vcand *c, const struct peer_rec *p)
{
    if (c->n < VERIFY_SUPPORT && !cand_has_group(c, p->group)) {
        c->peers[c->n] = p->id;
        c->groups[c->n++] = p->group;
        c->est |= (uint8_t)verify_established(p);
    }
}

/* Whether a connected peer with an established record, independent of
 * every one that answered, could check t (requirements, version). */
static int established_checker_exists(struct coord *co, struct task *t)
{
    return find_checker(co, t, 1, 0) != NULL;
}

/* A disagreement: p's result differs from another peer's.  Every peer
 * involved records it; losing it is what costs (peer_caught). */
/* p returned a result that differed from another peer's: counted on its
 * key's record (which outlives the connection). */
static void peer_disagreed(struct coord *co, struct peer_rec *p)
{
    if (p->key) {
        p->key->disagreements++;
        peerdb_sync(co, p->key);
    } else {
        p->disagreements++;
    }
}

static void note_disagreement(struct coord *co, struct task *t, struct peer_rec *p, const struct vcand *mine,
                              int new_cand)
{
    struct vstate *vs = t->vs;
    peer_disagreed(co, p);
    if (!new_cand)
        return;
    co->n.disagreements++;
    co->types[t->tt].disagreements++;
    for (unsigned k = 0; k < vs->ncand; k++)
        for (unsigned i = 0; &vs->c[k] != mine && i < vs->c[k].n; i++) {
            struct peer_rec *q = peer_find(co, vs->c[k].peers[i]);
            if (q)
                peer_disagreed(co, q);
        }
}

void verify_on_success(struct coord *co, struct task *t, struct peer_rec *p, const uint8_t *out, size_t len,
                       uint32_t exec_us)
{
    struct ttype *tt = &co->types[t->tt];
    if (!t->vs) {
        if (tt->verify == VP_NONE) {
            /* The operator trusts every peer of this type: the result
             * counts as it is, cache included, but moves no record. */
            peer_unverified_ok(co, p);
            if (t->cacheable && co->cache)
                (void)rcache_put(co->cache, &t->key, p->ty[t->tt].version, out, len, co->now);
            task_finish(co, t, 0, out, len, exec_us, p->id);
            return;
        }
        if (tt->verify == VP_ADAPTIVE && ((p->key && p->key->pinned) || p->pool_trusted)) {
            /* The operator vouches for this key (p2c2r peers --pin: its own
             * machines) or for its pool (p2c2rd --trust-pool cloud: machines
             * it runs or rents): its result counts as checked, without a
             * second run, and moves no record. */
            peer_unverified_ok(co, p);
            ledger_on_verified(co, t, &p->id, 1);
            t->verified = 1;
            co->n.verified++;
            tt->verified++;
            if (t->cacheable && co->cache)
                (void)rcache_put(co->cache, &t->key, p->ty[t->tt].version, out, len, co->now);
            task_finish(co, t, 0, out, len, exec_us, p->id);
            return;
        }
        int need = verify_need(co, t, p);
        if (need <= 1) {
            /* A spot check skipped: delivered, unverified. */
            peer_unverified_ok(co, p);
            deliver_unverified(co, t, out, len, exec_us, p->id);
            return;
        }
        t->vs = xcalloc(1, sizeof(*t->vs));
        t->vs->need = (uint8_t)need;
    }
    struct vstate *vs = t->vs;
    struct vcand *c = NULL;
    for (unsigned k = 0; k < vs->ncand && !c; k++)
        if (vs->c[k].len == len && memcmp(vs->c[k].out, out, len) == 0)
            c = &vs->c[k];
    int new_cand = 0;
    if (!c && vs->ncand == ARRAY_LEN(vs->c)) {
        /* Full of different results: drop one that a single peer without
         * a record backs, so liars telling different lies cannot crowd out
         * the result that later, honest peers return. */
        for (unsigned k = 0; k < vs->ncand; k++) {
            if (vs->c[k].n == 1 && !vs->c[k].est) {
                limits_task_ungrow(co, t, vs->c[k].len);
                free(vs->c[k].out);
                vs->c[k] = vs->c[--vs->ncand];
                memset(&vs->c[vs->ncand], 0, sizeof(vs->c[0]));
                break;
            }
        }
    }
    if (!c && vs->ncand < ARRAY_LEN(vs->c)) {
        c = &vs->c[vs->ncand++];
        c->out = xmalloc(len ? len : 1);
        memcpy(c->out, out, len);
        limits_task_grow(co, t, len); /* a peer's output held for the task's renter */
        c->len = (uint32_t)len;
        c->exec_us = exec_us;
        new_cand = vs->ncand > 1;
    }
    if (vs->ncand > 1)
        note_disagreement(co, t, p, c, new_cand);
    if (c) {
        cand_add(c, p);
        if (c->n >= vs->need) {
            /* Agreement among peers without a record does not overrule one
             * with a record, and is not enough while a peer with a record
             * could check it: otherwise fresh keys that tell the same lie
             * would check each other and get honest peers quarantined.  A
             * network with no established peer yet (its first tasks) goes
             * by the majority. */
            if (!c->est && established_checker_exists(co, t)) {
                vs->want_est = 1; /* the next check: a peer with a record */
                verify_next(co, t, 0);
                return;
            }
            if (!c->est && vs->ncand > 1) {
                /* Peers disagree and none with a record can say who is
                 * right (a new network, or fresh keys telling one lie):
                 * nothing is delivered as a result and nobody is struck,
                 * since a majority of new keys proves nothing. */
                const char *msg = "peers disagree on the result and no peer with an established record can settle it";
                /* Records are left as they are: checkers are drawn at
                 * random among all peers, so the side that is the majority
                 * of peers meets agreement, and so an established record,
                 * first; established peers then settle such disagreements
                 * and the other side is caught. */
                task_finish(co, t, P2C2R_ETASK, (const uint8_t *)msg, strlen(msg), 0, 0);
                return;
            }
            settle(co, t, c, p->ty[t->tt].version);
            return;
        }
    }
    /* Else a fourth different result: it is not kept (at most one of four
     * different results can be right), and more runs decide. */
    verify_next(co, t, 0);
}

void verify_on_error(struct coord *co, struct task *t, struct peer_rec *p)
{
    /* A result succeeded already and a deterministic executor gives every
     * honest peer the same, so this error counts against p; another
     * independent peer runs the task instead. */
    peer_bad_event(p);
    verify_next(co, t, p->group);
}

void verify_checker_stalled(struct coord *co, struct task *t)
{
    if (t->vs && co->types[t->tt].verify == VP_ADAPTIVE)
        settle_without(co, t);
}

void verify_sweep(struct coord *co)
{
    uint32_t kick = 0;
    struct list_node *n = co->vwait.next;
    while (n != &co->vwait) {
        struct task *t = list_entry(n, struct task, vnode);
        n = n->next;
        if (co->types[t->tt].verify == VP_ADAPTIVE && !verifier_exists(co, t)) {
            settle_without(co, t); /* dequeues t, which leaves vwait */
            continue;
        }
        /* A check reserved for a peer that left, was quarantined or stalls
         * is reserved again, for another peer drawn the same way. */
        uint32_t id = t->vs->checker;
        struct peer_rec *cp = id ? peer_find(co, id) : NULL;
        if (id && (!cp || cp->state == PS_QUARANTINED || stalling(cp))) {
            list_remove(&t->cnode);
            struct peer_rec *ck = find_checker(co, t, t->vs->want_est, 1);
            t->vs->checker = ck ? ck->id : 0;
            if (ck)
                list_push_back(&ck->checks, &t->cnode);
            kick |= 1u << t->tt;
        }
    }
    /* Outside the walk: dispatching dequeues tasks from vwait. */
    for (uint32_t m = kick; m; m &= m - 1)
        type_kick(co, __builtin_ctz(m));
}
