/* One veil connection: TCP, mutual RA-TLS 1.3 (ratls.h) on a libevent bufferevent_openssl,
 * the hello exchange, frames in and out, heartbeats, and closing with a logged reason
 * (docs/PROTOCOL.md, section 1).
 *
 * Life: connect or accept -> TLS handshake (the verify callback checks the peer's evidence)
 * -> both send hello -> the peer's hello is checked (role expected, E2E key and evidence the
 * attested ones, a common version) -> on_ready -> messages (on_msg) -> closed, by either
 * side or a failure -> on_close, exactly once, with the reason. After on_close the conn is
 * gone for the owner: it is freed from the loop once its last bytes (an error frame saying
 * why) are flushed, at most a second later.
 *
 * Every frame is checked: decoder limits (garbage, version, size), message layout
 * (proto_decode), who may send what (proto_may_send) and stream 0 rules; a breach closes the
 * connection with error code 1 and a log line, nothing else is affected.
 *
 * Heartbeats: after CONN_PING_S seconds without sending, a ping goes out; a peer silent for
 * CONN_DEAD_S seconds (pongs count; conn_set_peer_timeout changes it) is closed as dead. Pings and pongs are handled here and
 * never reach on_msg. All of it runs on the loop thread. */
#ifndef VEIL_CONN_H
#define VEIL_CONN_H

#include "net/proto.h"
#include "net/ratls.h"

#include <stdbool.h>
#include <stdint.h>

#define CONN_PING_S 2.0
#define CONN_DEAD_S 5.0
#define CONN_DEAD_MIN_S 3.0 /* more than CONN_PING_S: a live idle peer must never look dead */

struct event_base;
typedef struct conn conn;

typedef struct conn_handlers {
    void (*on_ready)(conn *c, void *ud);
    void (*on_msg)(conn *c, const proto_msg *m, void *ud);
    void (*on_close)(conn *c, const char *why, void *ud);
} conn_handlers;

/* Who we are on connections: our role, E2E key and evidence (for hello), the TLS context. A
 * connection copies it when it starts, so a node that renews
 * its identity (changes its conn_self) affects new connections only. */
typedef struct conn_self {
    uint8_t role;                 /* proto_role */
    uint8_t e2e_key[32];
    const uint8_t *evidence;      /* copied by each connection */
    size_t evidence_len;
    SSL_CTX *ctx;
    uint32_t max_frame;           /* 0: FRAME_MAX_PAYLOAD */
} conn_self;

/* Connects to host:port as a TLS client expecting a peer of role peer_role. NULL with
 * err_msg() when it cannot even start; failures after that arrive through on_close. */
conn *conn_connect(struct event_base *base, const conn_self *self, const char *host,
                   uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud);

/* A listening socket whose connections expect peers of one role. Each accepted connection
 * starts with ud = the listener's; the owner may change it with conn_set_ud in on_ready. */
typedef struct conn_listener conn_listener;
conn_listener *conn_listen(struct event_base *base, const conn_self *self, const char *host,
                           uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud);
uint16_t conn_listener_port(const conn_listener *l);
void conn_listener_free(conn_listener *l);

/* Sends a message (stream and fields in m). -1 with err_msg() when m breaks a rule or the
 * connection is closing; the connection itself stays up. */
int conn_send(conn *c, const proto_msg *m);
/* Closes with a reason: logs it, sends error(code, why) on stream 0 first when code is not 0
 * and the hello exchange is done, calls on_close. No-op on a closed conn. */
void conn_close(conn *c, uint16_t code, const char *why);

void conn_set_ud(conn *c, void *ud);
/* Whether the hello exchange completed (on_ready was called). */
bool conn_is_ready(const conn *c);
/* The attested peer (valid until on_close returns) and a short name for logs. */
const ratls_peer *conn_peer(const conn *c);
const char *conn_name(const conn *c);
/* Bytes waiting to be written (for back-pressure decisions). */
size_t conn_pending(const conn *c);
/* Frames in and out on this connection (tests and logs). */
void conn_counts(const conn *c, uint64_t *frames_in, uint64_t *frames_out);

/* A watcher that sees every frame's payload crossing any connection of the process, in and
 * out, after TLS (the canary test inspects what a proxy relays). NULL to stop. */
typedef void (*conn_tap_fn)(const conn *c, bool out, const uint8_t *frame, size_t len, void *ud);
void conn_set_tap(conn_tap_fn fn, void *ud);

/* How long a peer may stay silent before it is closed as dead, for every connection of the
 * process (default CONN_DEAD_S; at least CONN_DEAD_MIN_S, smaller values are raised). Longer
 * suits links with long stalls (a debugger, a core dump, a suspended VM); it also delays
 * failover away from a hung worker by as much. */
void conn_set_peer_timeout(double seconds);

#endif
