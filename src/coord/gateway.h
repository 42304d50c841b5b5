/* gateway.h - the JSON/WebSocket gateway (docs/GATEWAY.md): a WebSocket
 * connection handed over by the HTTP port (/ws) becomes a coordinator
 * connection (struct conn) like any other.  Its JSON messages are decoded
 * (gwjson.h) and turned into the binary protocol's frames, which go through
 * the same handler table (conn_dispatch) as a native connection's; the
 * frames the coordinator queues for it (HELLO_OK, DELIVER, ASSIGN, ...) are
 * turned into JSON when its output is flushed.  Renters and peers over the
 * gateway are thus scheduled, limited, authenticated and verified by the
 * same code as native ones.
 *
 * Everything runs on the coordinator's loop thread. */
#ifndef P2C2R_GATEWAY_H
#define P2C2R_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

struct coord;
struct conn;
struct gw;

/* The coordinator's gateway state: set up with the coordinator (gw_init),
 * freed with it (gw_fini). */
void gw_init(struct coord *co);
void gw_fini(struct coord *co);

/* mhttp_upgrade_fn for the HTTP port: makes the socket fd (taken) a
 * gateway connection of the coordinator arg, sends the 101 answer with
 * accept and the challenge, and feeds it extra (the bytes after the request
 * head).  Returns 0 (fd taken, even when the connection is then refused with
 * an error message, e.g. over --max-conns), or -1 when fd could not be
 * opened (fd still the caller's).  tls (taken with fd; NULL: plaintext) is
 * the wss connection's session: the connection goes on under it. */
struct tls;
int gw_upgrade(void *arg, int fd, struct tls *tls, const char *accept, const uint8_t *extra,
               size_t extra_len);

/* Translates the queued frames of every gateway connection with output into
 * WebSocket messages and writes them (each loop iteration, with the native
 * connections' flush). */
void gw_flush_all(struct coord *co);

/* Whether pk is the key c's peer_register proved (the signature over the
 * gateway's challenge, docs/GATEWAY.md "Peer identity").  0 yes, else
 * P2C2R_EAUTH. */
int gw_peer_key_ok(const struct conn *c, const uint8_t *pk);

/* Frees c's gateway state (NULL: no-op); with the connection. */
void gw_free(struct gw *g);

#endif
