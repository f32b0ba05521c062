/* One veil connection on a bufferevent_openssl (see conn.h). */
#include "net/conn.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define CONN_FLUSH_S 1 /* how long a closing connection may take to flush its last frame */

struct conn {
    struct event_base *base;
    struct bufferevent *bev;
    SSL *ssl;
    conn_self self;             /* a copy: a renewing node changes its own later */
    uint8_t *evidence;          /* self.evidence's copy: the node frees its old evidence */
    uint8_t peer_role;          /* expected */
    conn_handlers h;
    void *ud;
    frame_decoder dec;
    uint8_t version;            /* negotiated; 0 before the peer's hello */
    bool connected, sent_hello, ready, closed;
    struct event *tick, *reap;
    double last_in, last_out, last_tick;
    uint64_t ping_nonce, frames_in, frames_out;
    char name[80];
};

struct conn_listener {
    struct evconnlistener *l;
    struct event_base *base;
    const conn_self *self;
    uint8_t peer_role;
    conn_handlers h;
    void *ud;
    uint16_t port;
};

#define TICK_S 0.5 /* how often a connection checks its heartbeats */

static conn_tap_fn tap_fn;
static void *tap_ud;
static double dead_s = CONN_DEAD_S;

void conn_set_peer_timeout(double seconds) {
    dead_s = seconds < CONN_DEAD_MIN_S ? CONN_DEAD_MIN_S : seconds;
}

void conn_set_tap(conn_tap_fn fn, void *ud) {
    tap_fn = fn;
    tap_ud = ud;
}

/* ---- closing --------------------------------------------------------------------------- */

static void conn_free(conn *c) {
    if (c->tick) event_free(c->tick);
    if (c->reap) event_free(c->reap);
    if (c->bev) bufferevent_free(c->bev); /* frees the SSL and closes the socket */
    frame_decoder_free(&c->dec);
    free(c->evidence);
    free(c);
}

static void on_reap(evutil_socket_t fd, short what, void *arg) {
    (void)fd;
    (void)what;
    conn_free(arg);
}

static void on_flushed(struct bufferevent *bev, void *arg) {
    conn *c = arg;
    (void)bev;
    event_active(c->reap, EV_TIMEOUT, 0);
}

static void send_raw(conn *c, const proto_msg *m);

void conn_close(conn *c, uint16_t code, const char *why) {
    struct timeval flush = {CONN_FLUSH_S, 0};
    if (c->closed) return;
    c->closed = true;
    log_info("connection %s closed: %s", c->name, why);
    if (code && c->sent_hello && c->bev) {
        proto_msg m = {.type = PROTO_ERROR, .stream = 0};
        m.error.code = code;
        snprintf(m.error.message, sizeof m.error.message, "%s", why);
        send_raw(c, &m);
    }
    if (c->tick) event_del(c->tick);
    if (c->h.on_close) c->h.on_close(c, why, c->ud);
    /* free from the loop: callers up the stack may still hold c */
    if (c->bev) {
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setcb(c->bev, NULL, on_flushed, NULL, c);
    }
    if (!c->bev || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
        event_active(c->reap, EV_TIMEOUT, 0);
    else
        event_add(c->reap, &flush);
}

/* ---- sending --------------------------------------------------------------------------- */

static void send_raw(conn *c, const proto_msg *m) {
    size_t len;
    uint8_t *f = proto_encode_alloc(m, m->type == PROTO_HELLO ? 1 : c->version, &len);
    if (!f) {
        log_error("connection %s: cannot encode %s: %s", c->name, proto_type_name(m->type), err_msg());
        return;
    }
    if (tap_fn) tap_fn(c, true, f, len, tap_ud);
    bufferevent_write(c->bev, f, len);
    free(f);
    c->frames_out++;
    c->last_out = clock_now();
}

int conn_send(conn *c, const proto_msg *m) {
    size_t len;
    uint8_t *f;
    if (c->closed || !c->ready) return err_set("connection %s: not open", c->name);
    if (!(f = proto_encode_alloc(m, c->version, &len))) return -1;
    if (tap_fn) tap_fn(c, true, f, len, tap_ud);
    bufferevent_write(c->bev, f, len);
    free(f);
    c->frames_out++;
    c->last_out = clock_now();
    return 0;
}

/* ---- receiving ------------------------------------------------------------------------- */

static void send_hello(conn *c) {
    proto_msg m = {.type = PROTO_HELLO, .stream = 0};
    m.hello.role = c->self.role;
    m.hello.version_min = PROTO_VERSION_MIN;
    m.hello.version_max = PROTO_VERSION_MAX;
    memcpy(m.hello.e2e_key, c->self.e2e_key, 32);
    m.hello.evidence = (proto_bytes){c->self.evidence, (uint32_t)c->self.evidence_len};
    send_raw(c, &m);
    c->sent_hello = true;
}

static void on_hello(conn *c, const proto_msg *m) {
    char why[300];
    proto_hello mine = {.role = c->self.role, .version_min = PROTO_VERSION_MIN,
                        .version_max = PROTO_VERSION_MAX};
    if (m->type != PROTO_HELLO) {
        snprintf(why, sizeof why, "expected hello, got %s", proto_type_name(m->type));
        conn_close(c, PROTO_ERR_PROTOCOL, why);
        return;
    }
    if (m->hello.role != c->peer_role) {
        snprintf(why, sizeof why, "peer says it is a %s; this port takes %ss",
                 proto_role_name(m->hello.role), proto_role_name(c->peer_role));
        conn_close(c, PROTO_ERR_PROTOCOL, why);
        return;
    }
    if (ratls_check_hello(c->ssl, m->hello.e2e_key, m->hello.evidence.data, m->hello.evidence.len) != 0) {
        snprintf(why, sizeof why, "hello: %s", err_msg());
        conn_close(c, PROTO_ERR_ATTESTATION, why);
        return;
    }
    if (proto_negotiate(&mine, &m->hello, &c->version) != 0) {
        snprintf(why, sizeof why, "%s", err_msg());
        conn_close(c, PROTO_ERR_VERSION, why);
        return;
    }
    frame_decoder_set_version(&c->dec, c->version);
    c->ready = true;
    log_info("connection %s: %s ready (protocol %u)", c->name, proto_role_name(m->hello.role),
             (unsigned)c->version);
    if (c->h.on_ready) c->h.on_ready(c, c->ud);
}

static void on_frame(conn *c, const frame *f) {
    proto_msg m;
    char why[400];
    c->frames_in++;
    if (proto_decode(f, &m) != 0) {
        snprintf(why, sizeof why, "bad message: %s", err_msg());
        conn_close(c, PROTO_ERR_PROTOCOL, why);
        return;
    }
    if (!c->ready) {
        on_hello(c, &m);
        return;
    }
    if (m.type == PROTO_HELLO || !proto_may_send(c->peer_role, m.type)) {
        snprintf(why, sizeof why, "a %s may not send %s", proto_role_name(c->peer_role),
                 proto_type_name(m.type));
        conn_close(c, PROTO_ERR_PROTOCOL, why);
        return;
    }
    if (m.type == PROTO_PING) {
        proto_msg pong = {.type = PROTO_PONG, .stream = 0, .ping = m.ping};
        conn_send(c, &pong);
        return;
    }
    if (m.type == PROTO_PONG) return;
    if (m.type == PROTO_ERROR && m.stream == 0) {
        snprintf(why, sizeof why, "peer closed with error %u: %.300s", (unsigned)m.error.code, m.error.message);
        conn_close(c, 0, why);
        return;
    }
    if (c->h.on_msg) c->h.on_msg(c, &m, c->ud);
}

static void on_read(struct bufferevent *bev, void *arg) {
    conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    c->last_in = clock_now();
    while (!c->closed && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        size_t used = 0;
        frame f;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) break;
        int r = frame_decoder_push(&c->dec, v.iov_base, v.iov_len, &used, &f);
        if (r < 0) {
            char why[300];
            snprintf(why, sizeof why, "%s", err_msg());
            conn_close(c, PROTO_ERR_PROTOCOL, why);
            return;
        }
        if (r == 1 && tap_fn) {
            uint8_t hdr[FRAME_HEADER_LEN];
            frame_put_header(hdr, &f);
            tap_fn(c, false, hdr, sizeof hdr, tap_ud);
            if (f.len) tap_fn(c, false, f.payload, f.len, tap_ud);
        }
        if (r == 1) on_frame(c, &f);
        if (!c->closed) evbuffer_drain(in, used);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    conn *c = arg;
    char why[400];
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        /* both sides: the handshake is done (the peer's certificate passed our check) */
        c->connected = true;
        c->last_in = clock_now();
        send_hello(c);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        snprintf(why, sizeof why, "peer closed the connection");
    } else {
        const char *rej = c->ssl ? ratls_failure(c->ssl) : NULL;
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (rej) snprintf(why, sizeof why, "%s", rej);
        else if (e) snprintf(why, sizeof why, "TLS: %s", ERR_reason_error_string(e) ? ERR_reason_error_string(e) : "error");
        else if (EVUTIL_SOCKET_ERROR()) snprintf(why, sizeof why, "%s", evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        else snprintf(why, sizeof why, "connection failed");
        if (!c->connected && !rej && !e) snprintf(why + strlen(why), sizeof why - strlen(why), " (TLS handshake)");
    }
    conn_close(c, 0, why);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    conn *c = arg;
    double t = clock_now();
    (void)fd;
    (void)what;
    /* A tick far behind its time means this process stood still (starved on a loaded
     * machine, stopped, being dumped); the peer's frames may be waiting unread in the socket,
     * so that stall is not the peer's silence. */
    if (t - c->last_tick > 2 * TICK_S) c->last_in += t - c->last_tick - TICK_S;
    c->last_tick = t;
    if (t - c->last_in >= dead_s) {
        char why[80];
        snprintf(why, sizeof why, "peer silent for %.0f s: dead", dead_s);
        conn_close(c, 0, why);
        return;
    }
    if (c->ready && t - c->last_out >= CONN_PING_S) {
        proto_msg m = {.type = PROTO_PING, .stream = 0, .ping = ++c->ping_nonce};
        conn_send(c, &m);
    }
}

/* ---- making connections ---------------------------------------------------------------- */

/* A numeric IPv4 or IPv6 address and a port (0 allowed: evutil_parse_sockaddr_port refuses
 * it, and listeners want it). Also writes "host:port" or "[host]:port" to name. */
static int make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, int *len,
                     char *name, size_t cap) {
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        *len = sizeof *v4;
        snprintf(name, cap, "%.100s:%u", host, (unsigned)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        *len = sizeof *v6;
        snprintf(name, cap, "[%.100s]:%u", host, (unsigned)port);
        return 0;
    }
    return err_set("'%.100s' is not a numeric IPv4 or IPv6 address", host);
}

static conn *conn_new(struct event_base *base, const conn_self *self, evutil_socket_t fd,
                      uint8_t peer_role, const conn_handlers *h, void *ud, bool server) {
    conn *c = calloc(1, sizeof *c);
    struct timeval sec = {0, (int)(TICK_S * 1e6)};
    if (!c) {
        err_set("out of memory");
        if (fd >= 0) evutil_closesocket(fd);
        return NULL;
    }
    c->base = base;
    c->self = *self;
    c->peer_role = peer_role;
    c->h = *h;
    c->ud = ud;
    c->last_in = c->last_out = c->last_tick = clock_now();
    frame_decoder_init(&c->dec, self->max_frame, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
    /* a hello always travels in a version-1 frame */
    frame_decoder_set_version(&c->dec, 1);
    snprintf(c->name, sizeof c->name, "%s#%p", proto_role_name(peer_role), (void *)c);
    c->ssl = SSL_new(self->ctx); /* holds the context: the node may free its own */
    c->tick = event_new(base, -1, EV_PERSIST, on_tick, c);
    c->reap = event_new(base, -1, 0, on_reap, c);
    if (self->evidence_len && (c->evidence = malloc(self->evidence_len)))
        c->self.evidence = memcpy(c->evidence, self->evidence, self->evidence_len);
    if (!c->ssl || !c->tick || !c->reap || (self->evidence_len && !c->evidence)) goto fail;
    c->bev = bufferevent_openssl_socket_new(base, fd, c->ssl,
                                            server ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    fd = -1;
    if (!c->bev) goto fail;
    bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    event_add(c->tick, &sec);
    return c;
fail:
    err_set("cannot set up a TLS connection");
    if (!c->bev && c->ssl) SSL_free(c->ssl);
    if (fd >= 0) evutil_closesocket(fd);
    conn_free(c);
    return NULL;
}

conn *conn_connect(struct event_base *base, const conn_self *self, const char *host,
                   uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud) {
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char addr[300];
    conn *c;
    if (make_addr(host, port, &ss, &sl, addr, sizeof addr) != 0) return NULL;
    if (!(c = conn_new(base, self, -1, peer_role, h, ud, false))) return NULL;
    snprintf(c->name, sizeof c->name, "%s@%.50s", proto_role_name(peer_role), addr);
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&ss, sl) != 0) {
        err_set("connect to %s failed", addr);
        conn_free(c);
        return NULL;
    }
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    int one = 1;
    if (fd >= 0) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return c;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int sl,
                      void *arg) {
    conn_listener *cl = arg;
    char host[INET6_ADDRSTRLEN] = "?";
    int one = 1;
    uint16_t port = 0;
    conn *c;
    (void)l;
    (void)sl;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)sa)->sin6_port);
    }
    if (!(c = conn_new(cl->base, cl->self, fd, cl->peer_role, &cl->h, cl->ud, true))) {
        log_error("cannot accept a connection: %s", err_msg());
        return;
    }
    snprintf(c->name, sizeof c->name, "%s@%.46s:%u", proto_role_name(cl->peer_role), host, (unsigned)port);
}

conn_listener *conn_listen(struct event_base *base, const conn_self *self, const char *host,
                           uint16_t port, uint8_t peer_role, const conn_handlers *h, void *ud) {
    conn_listener *cl = calloc(1, sizeof *cl);
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    socklen_t got = sizeof ss;
    char addr[300];
    if (!cl) {
        err_set("out of memory");
        return NULL;
    }
    *cl = (conn_listener){.base = base, .self = self, .peer_role = peer_role, .h = *h, .ud = ud};
    if (make_addr(host, port, &ss, &sl, addr, sizeof addr) != 0) goto fail;
    cl->l = evconnlistener_new_bind(base, on_accept, cl, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                    1024, (struct sockaddr *)&ss, sl);
    if (!cl->l) {
        err_errno("cannot listen on %s", addr);
        goto fail;
    }
    if (getsockname(evconnlistener_get_fd(cl->l), (struct sockaddr *)&ss, &got) != 0) {
        err_errno("getsockname");
        goto fail;
    }
    cl->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                              : ((struct sockaddr_in *)&ss)->sin_port);
    return cl;
fail:
    conn_listener_free(cl);
    return NULL;
}

uint16_t conn_listener_port(const conn_listener *l) { return l->port; }

void conn_listener_free(conn_listener *l) {
    if (!l) return;
    if (l->l) evconnlistener_free(l->l);
    free(l);
}

void conn_set_ud(conn *c, void *ud) { c->ud = ud; }
bool conn_is_ready(const conn *c) { return c->ready; }
const ratls_peer *conn_peer(const conn *c) { return c->ssl ? ratls_peer_of(c->ssl) : NULL; }
const char *conn_name(const conn *c) { return c->name; }
size_t conn_pending(const conn *c) { return c->bev ? evbuffer_get_length(bufferevent_get_output(c->bev)) : 0; }

void conn_counts(const conn *c, uint64_t *frames_in, uint64_t *frames_out) {
    *frames_in = c->frames_in;
    *frames_out = c->frames_out;
}
