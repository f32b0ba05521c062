/* A self-restoring connection (see dialer.h). */
#include "net/dialer.h"

#include "base/err.h"
#include "base/log.h"

#include <event2/event.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct dialer {
    struct event_base *base;
    const conn_self *self;
    char host[256];
    uint16_t port;
    uint8_t peer_role;
    conn_handlers user;
    void *ud;
    conn *c;          /* the current attempt or connection */
    bool ready, stopping;
    double backoff;
    struct event *retry;
};

static void dial(dialer *d);

static void d_ready(conn *c, void *ud) {
    dialer *d = ud;
    d->ready = true;
    d->backoff = DIALER_BACKOFF_MIN_S;
    if (d->user.on_ready) d->user.on_ready(c, d->ud);
}

static void d_msg(conn *c, const proto_msg *m, void *ud) {
    dialer *d = ud;
    if (d->user.on_msg) d->user.on_msg(c, m, d->ud);
}

static void d_close(conn *c, const char *why, void *ud) {
    dialer *d = ud;
    d->c = NULL;
    d->ready = false;
    if (d->user.on_close) d->user.on_close(c, why, d->ud);
    if (d->stopping) return;
    /* jitter in [0.5, 1.5) x backoff, so a restarted proxy is not hit by every node at once */
    double wait = d->backoff * (0.5 + randombytes_uniform(1000) / 1000.0);
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    log_info("reconnecting to %s:%u in %.2f s", d->host, (unsigned)d->port, wait);
    d->backoff = d->backoff * 2 > DIALER_BACKOFF_MAX_S ? DIALER_BACKOFF_MAX_S : d->backoff * 2;
    event_add(d->retry, &tv);
}

static void dial(dialer *d) {
    static const conn_handlers h = {d_ready, d_msg, d_close};
    if (!(d->c = conn_connect(d->base, d->self, d->host, d->port, d->peer_role, &h, d))) {
        log_warn("cannot connect to %s:%u: %s", d->host, (unsigned)d->port, err_msg());
        d_close(NULL, err_msg(), d);
    }
}

static void on_retry(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    dial(arg);
}

dialer *dialer_new(struct event_base *base, const conn_self *self, const char *host,
                   uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud) {
    dialer *d = calloc(1, sizeof *d);
    if (!d || strlen(host) >= sizeof d->host) {
        free(d);
        err_set(d ? "host name too long" : "out of memory");
        return NULL;
    }
    *d = (dialer){.base = base, .self = self, .port = port, .peer_role = peer_role, .user = *h,
                  .ud = ud, .backoff = DIALER_BACKOFF_MIN_S};
    strcpy(d->host, host);
    if (!(d->retry = evtimer_new(base, on_retry, d))) {
        free(d);
        err_set("cannot set up a timer");
        return NULL;
    }
    dial(d);
    return d;
}

conn *dialer_conn(const dialer *d) { return d->ready ? d->c : NULL; }

void dialer_free(dialer *d, uint16_t code, const char *why) {
    if (!d) return;
    d->stopping = true;
    if (d->c) conn_close(d->c, code, why);
    event_free(d->retry);
    free(d);
}
