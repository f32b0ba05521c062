/* Frame header coding and the incremental frame decoder; see frame.h. */
#include "net/frame.h"

#include "base/err.h"

#include <stdlib.h>
#include <string.h>

/* A buffer grown for one large frame is released afterwards, so thousands of idle
 * connections do not each keep the largest frame they ever saw. */
#define FRAME_KEEP_BUFFER (64u << 10)

static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void frame_put_header(uint8_t out[FRAME_HEADER_LEN], const frame *f) {
    put_u32(out, f->len);
    out[4] = f->version;
    out[5] = f->type;
    out[6] = (uint8_t)(f->flags >> 8);
    out[7] = (uint8_t)f->flags;
    put_u32(out + 8, f->stream);
}

void frame_get_header(const uint8_t in[FRAME_HEADER_LEN], frame *f) {
    f->len = get_u32(in);
    f->version = in[4];
    f->type = in[5];
    f->flags = (uint16_t)(in[6] << 8 | in[7]);
    f->stream = get_u32(in + 8);
    f->payload = NULL;
}

void frame_decoder_init(frame_decoder *d, uint32_t max_payload, uint8_t version_min,
                        uint8_t version_max) {
    memset(d, 0, sizeof *d);
    d->max_payload = max_payload == 0 || max_payload > FRAME_MAX_PAYLOAD ? FRAME_MAX_PAYLOAD
                                                                         : max_payload;
    d->version_min = version_min;
    d->version_max = version_max;
}

void frame_decoder_set_version(frame_decoder *d, uint8_t version) {
    d->version_min = d->version_max = version;
}

void frame_decoder_free(frame_decoder *d) {
    free(d->buf);
    d->buf = NULL;
    d->have = d->cap = 0;
}

static int decoder_fail(frame_decoder *d, frame_error e) {
    d->error = e;
    return -1;
}

static int reserve(frame_decoder *d, size_t need) {
    uint8_t *nb;
    if (need <= d->cap) return 0;
    nb = realloc(d->buf, need);
    if (!nb) {
        err_set("frame at stream offset %llu: out of memory for %zu bytes",
                (unsigned long long)d->offset, need);
        return decoder_fail(d, FRAME_ERR_NOMEM);
    }
    d->buf = nb;
    d->cap = need;
    return 0;
}

/* Checks a complete header; on success makes room for the whole frame. Garbage is checked
 * first: text such as an HTTP request is then reported as not a veil frame. */
static int check_header(frame_decoder *d, const frame *h) {
    if (h->type == 0 || h->flags != 0) {
        err_set("frame at stream offset %llu: not a veil frame (type %u, flags 0x%04x; type 0 and "
                "flags are undefined)",
                (unsigned long long)d->offset, h->type, h->flags);
        return decoder_fail(d, FRAME_ERR_GARBAGE);
    }
    if (h->version < d->version_min || h->version > d->version_max) {
        err_set("frame at stream offset %llu: protocol version %u not spoken here (%u..%u)",
                (unsigned long long)d->offset, h->version, d->version_min, d->version_max);
        return decoder_fail(d, FRAME_ERR_VERSION);
    }
    if (h->len > d->max_payload) {
        err_set("frame at stream offset %llu: payload of %u bytes exceeds the limit of %u",
                (unsigned long long)d->offset, h->len, d->max_payload);
        return decoder_fail(d, FRAME_ERR_OVERSIZED);
    }
    return reserve(d, FRAME_HEADER_LEN + (size_t)h->len);
}

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

int frame_decoder_push(frame_decoder *d, const uint8_t *data, size_t n, size_t *used,
                       frame *out) {
    size_t pos = 0, want, take;
    frame h;
    *used = 0;
    if (d->error != FRAME_OK) return err_set("frame decoder: the stream already failed");
    if (d->delivered) {
        d->offset += d->have;
        d->have = 0;
        d->delivered = 0;
        if (d->cap > FRAME_KEEP_BUFFER) frame_decoder_free(d);
    }
    if (d->have < FRAME_HEADER_LEN) {
        /* the payload's room is made only once the header's length has been checked */
        if (reserve(d, FRAME_HEADER_LEN) != 0) return -1;
        take = min_size(FRAME_HEADER_LEN - d->have, n);
        if (take) memcpy(d->buf + d->have, data, take);
        d->have += take;
        pos = take;
        *used = pos;
        if (d->have < FRAME_HEADER_LEN) return 0;
        frame_get_header(d->buf, &h);
        if (check_header(d, &h) != 0) return -1;
    }
    frame_get_header(d->buf, &h);
    want = FRAME_HEADER_LEN + (size_t)h.len - d->have;
    take = min_size(want, n - pos);
    if (take) memcpy(d->buf + d->have, data + pos, take);
    d->have += take;
    *used = pos + take;
    if (take < want) return 0;
    h.payload = h.len ? d->buf + FRAME_HEADER_LEN : NULL;
    *out = h;
    d->delivered = 1;
    return 1;
}
