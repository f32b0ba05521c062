/* Connections on loopback, in one process and one event loop: a "proxy" listens for workers
 * with an honest identity; honest workers get through the RA-TLS handshake and hello and
 * exchange messages; forged evidence, an unknown measurement, garbage bytes, an oversized
 * frame, a wrong version and a missing hello each close that connection with a reason, and
 * the listener keeps serving honest peers afterwards. A process that stood still longer than
 * the dead-peer timeout (a loaded machine, a debugger) does not blame its peers for it. */
#include "../attest/attest_testutil.h"
#include "attest/policy.h"
#include "attest/sim.h"
#include "base/err.h"
#include "net/conn.h"
#include "net/loop.h"
#include "net/proto.h"
#include "net/ratls.h"
#include "test.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct side {
    conn *c;
    int ready, closed, msgs;
    char why[512];
    uint8_t last_type;
} side;

static void s_ready(conn *c, void *ud) {
    ((side *)ud)->c = c;
    ((side *)ud)->ready++;
}
static void s_msg(conn *c, const proto_msg *m, void *ud) {
    (void)c;
    ((side *)ud)->msgs++;
    ((side *)ud)->last_type = m->type;
}
static void s_close(conn *c, const char *why, void *ud) {
    (void)c;
    side *s = ud;
    s->closed++;
    snprintf(s->why, sizeof s->why, "%s", why);
}
static const conn_handlers handlers = {s_ready, s_msg, s_close};

/* How a test node's evidence is made. */
enum how { HONEST, FORGED, UNKNOWN_IMAGE };
typedef struct world {
    keypair platform;
    uint8_t measurement[32];
    attest_policy policy;
} world;
typedef struct maker { const world *w; enum how how; } maker;

static uint8_t *make(void *ctx, const uint8_t *spki, size_t spki_len, const uint8_t rd[32], size_t *len) {
    const maker *mk = ctx;
    evidence ev;
    (void)spki;
    (void)spki_len;
    memset(&ev, 0, sizeof ev);
    ev.issued_at = (uint64_t)time(NULL);
    memcpy(ev.measurement, mk->w->measurement, 32);
    memcpy(ev.report_data, rd, 32);
    if (mk->how == UNKNOWN_IMAGE) ev.measurement[0] ^= 1;
    sim_sign(&mk->w->platform, &ev);
    if (mk->how == FORGED) ev.measurement[5] ^= 0x40; /* altered after signing */
    return evidence_serialize(&ev, len);
}

typedef struct node {
    uint8_t e2e[32];
    ratls_identity *id;
    SSL_CTX *ctx;
    conn_self self;
} node;

static void node_init(node *n, world *w, enum how how, int server, uint8_t role, uint8_t seed) {
    maker mk = {w, how};
    memset(n, 0, sizeof *n);
    memset(n->e2e, seed, 32);
    n->id = ratls_identity_new_with(RATLS_KEY_ED25519, n->e2e, make, &mk, (uint64_t)time(NULL));
    n->ctx = ratls_ctx_new(n->id, &w->policy, server);
    n->self.role = role;
    memcpy(n->self.e2e_key, n->e2e, 32);
    n->self.evidence = ratls_identity_evidence(n->id, &n->self.evidence_len);
    n->self.ctx = n->ctx;
    n->self.max_frame = 1 << 20;
}

static void node_free(node *n) {
    SSL_CTX_free(n->ctx);
    ratls_identity_free(n->id);
}

/* Runs the loop until *flag becomes non-zero, at most 10 s. */
static int run_until(struct event_base *b, const int *flag) {
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (!*flag) {
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) return -1;
    }
    return 0;
}

/* A raw TLS peer that sends exactly the bytes we give it after a proper hello (or none). */
typedef struct raw {
    const uint8_t *bytes;
    size_t len;
    bool hello;
    const conn_self *self;
    int done;
} raw;

static void raw_event(struct bufferevent *bev, short what, void *arg) {
    raw *r = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (r->hello) {
            proto_msg m = {.type = PROTO_HELLO};
            size_t n;
            m.hello.role = PROTO_ROLE_WORKER;
            m.hello.version_min = m.hello.version_max = 1;
            memcpy(m.hello.e2e_key, r->self->e2e_key, 32);
            uint8_t *f = proto_encode_alloc(&m, 1, &n);
            bufferevent_write(bev, f, n);
            free(f);
        }
        bufferevent_write(bev, r->bytes, r->len);
        return;
    }
    r->done = 1;
}

static void raw_read(struct bufferevent *bev, void *arg) {
    (void)arg;
    evbuffer_drain(bufferevent_get_input(bev), evbuffer_get_length(bufferevent_get_input(bev)));
}

static void send_raw(struct event_base *b, node *n, uint16_t port, const uint8_t *bytes, size_t len,
                     bool hello, side *server) {
    raw r = {bytes, len, hello, &n->self, 0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001)};
    SSL *ssl = SSL_new(n->ctx);
    struct bufferevent *bev = bufferevent_openssl_socket_new(b, -1, ssl, BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
    int before = server->closed;
    bufferevent_setcb(bev, raw_read, NULL, raw_event, &r);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    bufferevent_socket_connect(bev, (struct sockaddr *)&sa, sizeof sa);
    int target = before + 1;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (server->closed < target) {
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        clock_gettime(CLOCK_MONOTONIC, &t);
        if (t.tv_sec - t0.tv_sec > 10) break;
    }
    bufferevent_free(bev);
}

/* An honest worker connects, says hello, sends a message; the proxy side sees it. */
static void honest_round(struct event_base *b, world *w, uint16_t port, side *server) {
    node n;
    side cs = {0};
    int msgs = server->msgs;
    node_init(&n, w, HONEST, 0, PROTO_ROLE_WORKER, 7);
    conn *c = conn_connect(b, &n.self, "127.0.0.1", port, PROTO_ROLE_PROXY, &handlers, &cs);
    CHECK(c != NULL);
    CHECK(run_until(b, &cs.ready) == 0);
    proto_msg m = {.type = PROTO_LOAD_REPORT, .stream = 0, .load_report = {1, 2, 3, 4}};
    CHECK(conn_send(c, &m) == 0);
    int t0 = (int)time(NULL);
    while (server->msgs == msgs && (int)time(NULL) - t0 < 10) event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CHECK(server->msgs > msgs);
    CHECK_EQ_INT(server->last_type, PROTO_LOAD_REPORT);
    conn_close(c, PROTO_ERR_SHUTDOWN, "test done");
    int closed = server->closed;
    t0 = (int)time(NULL);
    while (server->closed == closed && (int)time(NULL) - t0 < 10) event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    CHECK(strstr(server->why, "test done") != NULL);
    node_free(&n);
}

TEST(net_conn_bad_peers_are_closed_and_the_listener_keeps_serving) {
    world w;
    log_capture cap;
    side server = {0};
    node proxy;
    struct event_base *b = loop_new();
    CHECK(b != NULL);
    memset(&w, 0, sizeof w);
    CHECK(keys_generate(&w.platform) == 0);
    memset(w.measurement, 0x5a, 32);
    policy_init(&w.policy);
    policy_allow_measurement(&w.policy, w.measurement);
    policy_trust_sim_key(&w.policy, w.platform.public_key);
    capture_start(&cap);
    node_init(&proxy, &w, HONEST, 1, PROTO_ROLE_PROXY, 1);
    conn_listener *l = conn_listen(b, &proxy.self, "127.0.0.1", 0, PROTO_ROLE_WORKER, &handlers, &server);
    CHECK(l != NULL);
    uint16_t port = conn_listener_port(l);

    honest_round(b, &w, port, &server);

    /* forged and unknown evidence: the handshake fails, the reason names it */
    for (int how = FORGED; how <= UNKNOWN_IMAGE; how++) {
        node bad;
        side cs = {0};
        node_init(&bad, &w, (enum how)how, 0, PROTO_ROLE_WORKER, 9);
        int closed = server.closed;
        conn *c = conn_connect(b, &bad.self, "127.0.0.1", port, PROTO_ROLE_PROXY, &handlers, &cs);
        CHECK(c != NULL);
        int t0 = (int)time(NULL);
        while ((server.closed == closed || !cs.closed) && (int)time(NULL) - t0 < 10)
            event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        CHECK(server.closed > closed);
        CHECK_MSG(strstr(server.why, how == FORGED ? "signature" : "measurement") != NULL, "%s", server.why);
        CHECK_EQ_INT(cs.ready, 0);
        node_free(&bad);
    }

    /* bytes that are not frames, after a valid hello and before one */
    node peer;
    node_init(&peer, &w, HONEST, 0, PROTO_ROLE_WORKER, 11);
    static const uint8_t http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    send_raw(b, &peer, port, http, sizeof http - 1, true, &server);
    CHECK_MSG(strstr(server.why, "not a veil frame") != NULL, "%s", server.why);
    uint8_t big[FRAME_HEADER_LEN];
    frame_put_header(big, &(frame){.len = 64u << 20, .version = 1, .type = PROTO_CHUNK, .stream = 1});
    send_raw(b, &peer, port, big, sizeof big, true, &server);
    CHECK_MSG(strstr(server.why, "oversized") != NULL || strstr(server.why, "limit") != NULL, "%s", server.why);
    uint8_t v9[FRAME_HEADER_LEN + 8] = {0};
    frame_put_header(v9, &(frame){.len = 8, .version = 9, .type = PROTO_PING, .stream = 0});
    send_raw(b, &peer, port, v9, sizeof v9, true, &server);
    CHECK_MSG(strstr(server.why, "version") != NULL, "%s", server.why);
    uint8_t ping[FRAME_HEADER_LEN + 8] = {0};
    frame_put_header(ping, &(frame){.len = 8, .version = 1, .type = PROTO_PING, .stream = 0});
    send_raw(b, &peer, port, ping, sizeof ping, false, &server);
    CHECK_MSG(strstr(server.why, "expected hello") != NULL, "%s", server.why);
    node_free(&peer);

    honest_round(b, &w, port, &server);

    conn_listener_free(l);
    /* let closing connections free themselves */
    struct timeval tv = {1, 200000};
    event_base_loopexit(b, &tv);
    event_base_dispatch(b);
    capture_stop(&cap);
    node_free(&proxy);
    policy_free(&w.policy);
    event_base_free(b);
}

/* Both ends live in this loop; it stands still for longer than the dead-peer timeout (the
 * sleep is the stall under test, not a wait). The ticks that come late must not close the
 * connection: frames then flow again both ways and neither side saw a close. */
TEST(net_conn_a_stalled_loop_does_not_declare_its_peers_dead) {
    world w;
    log_capture cap;
    side server = {0}, cs = {0};
    node proxy, worker;
    struct event_base *b = loop_new();
    CHECK(b != NULL);
    memset(&w, 0, sizeof w);
    CHECK(keys_generate(&w.platform) == 0);
    memset(w.measurement, 0x5a, 32);
    policy_init(&w.policy);
    policy_allow_measurement(&w.policy, w.measurement);
    policy_trust_sim_key(&w.policy, w.platform.public_key);
    capture_start(&cap);
    node_init(&proxy, &w, HONEST, 1, PROTO_ROLE_PROXY, 1);
    node_init(&worker, &w, HONEST, 0, PROTO_ROLE_WORKER, 7);
    conn_set_peer_timeout(CONN_DEAD_MIN_S);
    conn_listener *l = conn_listen(b, &proxy.self, "127.0.0.1", 0, PROTO_ROLE_WORKER, &handlers, &server);
    CHECK(l != NULL);
    conn *c = conn_connect(b, &worker.self, "127.0.0.1", conn_listener_port(l), PROTO_ROLE_PROXY, &handlers, &cs);
    CHECK(c != NULL);
    CHECK(run_until(b, &cs.ready) == 0);
    CHECK(run_until(b, &server.ready) == 0);
    uint64_t s_in0, c_in0, s_in, c_in, out;
    conn_counts(server.c, &s_in0, &out);
    conn_counts(c, &c_in0, &out);
    s_in = s_in0;
    c_in = c_in0;
    struct timespec stall = {(time_t)CONN_DEAD_MIN_S, 600000000};
    nanosleep(&stall, NULL);
    int t0 = (int)time(NULL);
    do {
        event_base_loop(b, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        if (server.closed || cs.closed) break;
        conn_counts(server.c, &s_in, &out);
        conn_counts(c, &c_in, &out);
    } while ((s_in == s_in0 || c_in == c_in0) && (int)time(NULL) - t0 < 10);
    CHECK_MSG(server.closed == 0, "the proxy side closed: %s", server.why);
    CHECK_MSG(cs.closed == 0, "the worker side closed: %s", cs.why);
    CHECK(s_in > s_in0 && c_in > c_in0);
    conn_close(c, PROTO_ERR_SHUTDOWN, "test done");
    conn_listener_free(l);
    struct timeval tv = {1, 200000};
    event_base_loopexit(b, &tv);
    event_base_dispatch(b);
    capture_stop(&cap);
    conn_set_peer_timeout(CONN_DEAD_S);
    node_free(&worker);
    node_free(&proxy);
    policy_free(&w.policy);
    event_base_free(b);
}
