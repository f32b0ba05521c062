/* A connection that keeps itself up: connects to one peer and, whenever the connection
 * fails or closes, connects again after a backoff (DIALER_BACKOFF_MIN_S doubling up to
 * DIALER_BACKOFF_MAX_S, with jitter; back to the minimum once a connection got ready).
 * Workers and client gateways hold their proxy connection with one. */
#ifndef VEIL_DIALER_H
#define VEIL_DIALER_H

#include "net/conn.h"

#define DIALER_BACKOFF_MIN_S 0.2
#define DIALER_BACKOFF_MAX_S 5.0

typedef struct dialer dialer;

/* Starts connecting at once. The handlers are the connection's (on_close is called for
 * every connection that ends, ready or not). NULL with err_msg(). */
dialer *dialer_new(struct event_base *base, const conn_self *self, const char *host,
                   uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud);
/* The connection when it is ready, else NULL. */
conn *dialer_conn(const dialer *d);
/* Closes the connection (with code and reason, see conn_close) and stops reconnecting. */
void dialer_free(dialer *d, uint16_t code, const char *why);

#endif
