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
#include <inttypes.h>
#include <stdio.h>

#include "common/tls.h"
#include "coord/coord_int.h"
#include "p2c2r/error.h"

int tlsserve_init(struct coord *co, char *err, size_t errcap)
{
    const struct coord_config *cfg = &co->cfg;
    list_init(&co->tls_wait);
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
 * glibc then kept.  The rest wait in the kernel, unread, for their turn:
 * they hold only their connection and an empty session. */
#define HANDSHAKES_MAX 64

static void slot_take(struct conn *c)
{
    c->tls_slot = 1;
    c->co->tls_busy++;
}

/* A slot came free: the oldest waiting connection starts its handshake. */
static void slot_give(struct coord *co)
{
    co->tls_busy--;
    struct list_node *n = list_pop_front(&co->tls_wait);
    if (n) {
        struct conn *w = list_entry(n, struct conn, tls_wait_node);
        list_init(&w->tls_wait_node);
        slot_take(w);
        conn_read_start(w);
    }
}

int tlsserve_accept(struct conn *c, int force)
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
        return 1;
    }
    fconn_tls_attach(&c->io, t);
    if (force || co->tls_busy < HANDSHAKES_MAX) {
        slot_take(c);
        return 1;
    }
    list_push_back(&co->tls_wait, &c->tls_wait_node);
    return 0;
}

void tlsserve_closed(struct conn *c)
{
    if (list_linked(&c->tls_wait_node))
        list_remove(&c->tls_wait_node);
    if (c->tls_slot) {
        c->tls_slot = 0;
        slot_give(c->co);
    }
}

int tlsserve_after_read(struct conn *c, int rc)
{
    struct coord *co = c->co;
    if (c->io.tls && !c->tls_done && tls_ready(c->io.tls)) {
        c->tls_done = 1;
        co->n.tls_handshakes++;
        if (c->tls_slot) {
            c->tls_slot = 0;
            slot_give(co);
        }
        char subj[256];
        tls_peer_subject(c->io.tls, subj, sizeof(subj));
        LOG_D("tls_handshake", "conn=%" PRIu64 " addr=%s client_cert=\"%s\"", c->id, c->addr, subj);
    }
    if ((rc == FCONN_IN_NOT_TLS || rc == FCONN_IN_TLS) && c->tls_slot) {
        c->tls_slot = 0; /* no handshake to wait for while the refusal drains */
        slot_give(co);
    }
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
