/* tlsserve.c - TLS on the coordinator's port (common/tls over common/fconn).
 *
 * With a certificate configured every connection is put under TLS 1.3 as
 * it is accepted, before a byte is read: TLS is required, never offered as
 * an option a client could skip.  A client whose first byte opens no TLS
 * record (a plaintext p2c2r client, say) gets one plaintext ERROR (ETLS)
 * saying TLS is required, is counted in tls_plain_refused, and is cut.  A
 * handshake that fails (no common version, a client certificate that does
 * not chain to --tls-client-ca) is counted in tls_failures and cut with the
 * TLS alert OpenSSL queued.  Nothing here blocks: the handshake advances
 * inside the connection's reads and flushes. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/tls.h"
#include "coord/coord_int.h"
#include "p2c2r/error.h"

/* Whether addr ("HOST:PORT") is a loopback address: 127.0.0.0/8 or ::1. */
static int addr_is_loopback(const char *addr)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    if (addr_parse(addr, &ss, &sl) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&ss)->sin6_addr);
    return 0;
}

int tlsserve_init(struct coord *co, char *err, size_t errcap)
{
    const struct coord_config *cfg = &co->cfg;
    list_init(&co->tls_wait);
    list_init(&co->tls_held);
    const char *http = cfg->http_listen ? cfg->http_listen : cfg->metrics_listen;
    if (cfg->http_plain && http && !addr_is_loopback(http)) {
        snprintf(err, errcap, "--http-plain keeps the HTTP port in clear, so it is only for a loopback "
                              "address (127.0.0.1:PORT or [::1]:PORT), not %s: drop --http-plain to "
                              "serve https and wss with --tls-cert", http);
        return P2C2R_EINVAL;
    }
    if (!cfg->tls_cert && !cfg->tls_key && !cfg->tls_client_ca)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key) {
        snprintf(err, errcap, "TLS needs both --tls-cert FILE and --tls-key FILE%s",
                 cfg->tls_client_ca ? " (--tls-client-ca only adds client certificates)" : "");
        return P2C2R_EINVAL;
    }
    int rc = tls_ctx_server_new(cfg->tls_cert, cfg->tls_key, cfg->tls_client_ca, &co->tls, err, errcap);
    return rc == 0 ? 0 : P2C2R_EINVAL;
}

/* Handshakes in progress at once.  Each costs tens of KB of OpenSSL state
 * until it ends (and the session is then reduced to its keys, common/tls);
 * 10,000 peers connecting at once used to hold 390 MB at the peak, which
 * glibc then kept.  A connection takes a slot only once its whole first
 * record (the ClientHello) is in, so silent sockets and trickled bytes hold
 * none; until then, and while no slot is free, its bytes wait here, reads
 * stop, and the kernel holds the rest.  A slot held HANDSHAKE_MS without the
 * handshake finishing is taken back with the connection, so stalled
 * handshakes cannot keep the slots from everyone for a HELLO timeout. */
#define HANDSHAKES_MAX 128
#define HANDSHAKE_MS 2000
#define STASH_MAX (16u * 1024 + 5) /* one record: a larger ClientHello is refused */

static void slot_take(struct conn *c)
{
    c->tls_slot = 1;
    c->tls_slot_us = now_us(); /* co->now may be from before this read */
    c->co->tls_busy++;
    list_push_back(&c->co->tls_held, &c->tls_wait_node);
}

static void slot_give(struct conn *c)
{
    if (c->tls_slot) {
        c->tls_slot = 0;
        c->co->tls_busy--;
        list_remove(&c->tls_wait_node);
    }
}

/* Whether p[0..n) holds a whole first record. */
static int first_record_in(const uint8_t *p, size_t n)
{
    return n >= 5 && n >= 5 + ((size_t)p[3] << 8 | p[4]);
}

void tlsserve_accept(struct conn *c, int force)
{
    struct coord *co = c->co;
    /* The ciphertext buffer's cap: the plaintext output cap and a record
     * header and tag for every 16 KiB record. */
    size_t out_max = co->cfg.max_output + co->cfg.max_output / 512 + 65536;
    struct tls *t = tls_new(co->tls, NULL, out_max);
    if (!t) {
        /* Out of memory for one session: this connection is refused; the
         * plaintext ERROR is all it can be told. */
        conn_fail(c, P2C2R_ENOMEM, "out of memory for a TLS session");
        return;
    }
    fconn_tls_attach(&c->io, t);
    if (force)
        slot_take(c);
}

int tlsserve_hold(struct conn *c, const uv_buf_t *b, size_t n)
{
    struct coord *co = c->co;
    /* Holding a slot, done, refused in plaintext, or not a handshake (a
     * plaintext client, refused at once by fconn). */
    if (c->tls_slot || c->tls_done || !c->io.tls ||
        (c->io.tls_fresh && !c->tls_stash_len && b->base[0] != TLS_RECORD_HANDSHAKE))
        return 0;
    int whole = c->tls_stash_len ? 0 : first_record_in((const uint8_t *)b->base, n);
    if (whole && co->tls_busy < HANDSHAKES_MAX && list_empty(&co->tls_wait)) {
        slot_take(c);
        return 0;
    }
    if (c->tls_stash_len + n > STASH_MAX) {
        conn_fail(c, P2C2R_ETOOBIG, "TLS ClientHello over %u bytes", STASH_MAX);
        return 1;
    }
    uint8_t *st = xrealloc(c->tls_stash, c->tls_stash_len + n);
    memcpy(st + c->tls_stash_len, b->base, n);
    c->tls_stash = st;
    c->tls_stash_len += (uint32_t)n;
    if (first_record_in(st, c->tls_stash_len)) {
        /* Whole: wait for a slot with reads stopped. */
        uv_read_stop((uv_stream_t *)&c->io.tcp);
        list_push_back(&co->tls_wait, &c->tls_wait_node);
    }
    return 1;
}

void tlsserve_admit(struct coord *co)
{
    struct list_node *n;
    while (!list_empty(&co->tls_held)) {
        struct conn *h = list_entry(co->tls_held.next, struct conn, tls_wait_node);
        if (co->now - h->tls_slot_us < HANDSHAKE_MS * 1000ull)
            break;
        slot_give(h);
        co->n.tls_failures++;
        conn_fail(h, P2C2R_ETIMEDOUT, "TLS handshake not finished within %u ms", HANDSHAKE_MS);
    }
    while (co->tls_busy < HANDSHAKES_MAX && (n = list_pop_front(&co->tls_wait)) != NULL) {
        struct conn *w = list_entry(n, struct conn, tls_wait_node);
        uv_buf_t b = uv_buf_init((char *)w->tls_stash, w->tls_stash_len);
        w->tls_stash = NULL;
        w->tls_stash_len = 0;
        if (w->state >= CS_DRAINING) {
            free(b.base); /* cut while it waited (its HELLO timeout): nothing to start */
            continue;
        }
        slot_take(w);
        conn_start_reading(w);
        conn_input(w, &b, b.len);
        free(b.base);
    }
}

void tlsserve_closed(struct conn *c)
{
    slot_give(c);
    if (list_linked(&c->tls_wait_node))
        list_remove(&c->tls_wait_node);
    free(c->tls_stash);
    c->tls_stash = NULL;
    c->tls_stash_len = 0;
}

int tlsserve_after_read(struct conn *c, int rc)
{
    struct coord *co = c->co;
    if (c->io.tls && !c->tls_done && tls_ready(c->io.tls)) {
        c->tls_done = 1;
        co->n.tls_handshakes++;
        slot_give(c); /* the next waiting handshake starts at the next check */
        char subj[256];
        tls_peer_subject(c->io.tls, subj, sizeof(subj));
        LOG_D("tls_handshake", "conn=%" PRIu64 " addr=%s client_cert=\"%s\"", c->id, c->addr, subj);
    }
    if (rc == FCONN_IN_NOT_TLS || rc == FCONN_IN_TLS)
        slot_give(c); /* no handshake to wait for while the refusal drains */
    switch (rc) {
    case FCONN_IN_NOT_TLS:
        co->n.tls_plain_refused++;
        conn_fail(c, P2C2R_ETLS, "TLS required: this coordinator accepts only TLS 1.3 "
                                 "connections (give the client the CA with --tls-ca)");
        return 1;
    case FCONN_IN_TLS:
        co->n.tls_failures++;
        conn_fail(c, P2C2R_ETLS, "TLS handshake failed: %s", tls_error(c->io.tls));
        return 1;
    case FCONN_IN_EOF:
        conn_close(c);
        return 1;
    default:
        return 0;
    }
}

void tlsserve_adopt(struct conn *c, struct tls *t, size_t out_max)
{
    /* The ciphertext cap of the connection it joins (the HTTP port sized
     * the session for one answer). */
    tls_out(t)->max = out_max + out_max / 512 + 65536;
    fconn_tls_attach(&c->io, t);
    c->io.tls_fresh = 0; /* past its handshake: its next record is data */
    c->tls_done = 1;
}

void tlsserve_gw_input(struct conn *c, const uint8_t *p, size_t n,
                       void (*fn)(struct conn *c, uint8_t *p, size_t n))
{
    static _Thread_local uint8_t plain[16384]; /* one record's plaintext */
    struct tls *t = c->io.tls;
    tls_feed(t, p, n);
    while (c->state < CS_DRAINING) {
        int k = tls_read(t, plain, sizeof(plain));
        if (k == 0)
            break;
        if (k < 0) {
            if (k == P2C2R_ETLS) {
                c->co->n.tls_failures++;
                LOG_D("conn_tls_failed", "conn=%" PRIu64 " addr=%s err=%s", c->id, c->addr, tls_error(t));
            }
            tls_feed(t, NULL, 0);
            conn_close(c);
            return;
        }
        fn(c, plain, (size_t)k);
    }
    tls_feed(t, NULL, 0); /* what a cut left is dropped with the connection */
}
