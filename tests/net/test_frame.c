/* Incremental frame decoder: the same frames come out whether bytes arrive one at a time, all
 * at once or in arbitrary pieces; bad headers (garbage, oversized, wrong version) fail at once
 * and for good. */
#include "base/err.h"
#include "net/frame.h"
#include "net/proto.h"
#include "proto_samples.h"
#include "test.h"

#include <stdlib.h>
#include <string.h>

/* Every sample message, encoded back to back: a stream of PROTO_TYPE_LAST frames. */
static uint8_t *sample_stream(size_t *len, size_t *ends) {
    uint8_t *all = NULL;
    *len = 0;
    for (int t = 1; t <= PROTO_TYPE_LAST; t++) {
        proto_msg m;
        size_t n;
        uint8_t *p;
        sample_msg(t, &m);
        p = proto_encode_alloc(&m, 1, &n);
        if (!p) abort();
        all = realloc(all, *len + n);
        if (!all) abort();
        memcpy(all + *len, p, n);
        *len += n;
        ends[t - 1] = *len;
        free(p);
    }
    return all;
}

/* Feeds the stream in pieces whose sizes come from step(i); checks each frame against the
 * bytes it came from. Returns the number of frames seen. */
static int feed_in_pieces(const uint8_t *all, size_t len, const size_t *ends,
                          size_t (*step)(size_t)) {
    frame_decoder d;
    size_t pos = 0, i = 0;
    int seen = 0;
    frame_decoder_init(&d, 0, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
    while (pos < len) {
        size_t piece = step(i++), used;
        if (piece > len - pos) piece = len - pos;
        while (piece) {
            frame f;
            int r = frame_decoder_push(&d, all + pos, piece, &used, &f);
            CHECK_MSG(r >= 0, "push: %s", err_msg());
            if (r < 0) goto out;
            pos += used;
            piece -= used;
            if (r == 1) {
                size_t start = seen ? ends[seen - 1] : 0;
                proto_msg m;
                CHECK_EQ_INT(pos, ends[seen]);
                CHECK_EQ_INT(f.type, seen + 1);
                CHECK_EQ_INT(FRAME_HEADER_LEN + f.len, ends[seen] - start);
                CHECK(f.len == 0 || memcmp(f.payload, all + start + FRAME_HEADER_LEN, f.len) == 0);
                CHECK_MSG(proto_decode(&f, &m) == 0, "%s", err_msg());
                seen++;
            }
        }
    }
out:
    frame_decoder_free(&d);
    return seen;
}

static size_t step_one(size_t i) { (void)i; return 1; }
static size_t step_all(size_t i) { (void)i; return (size_t)-1; }
static size_t step_odd(size_t i) { return (i * 7919 + 3) % 23; } /* includes empty pieces */
static size_t step_header_split(size_t i) { return i % 2 ? 5 : 11; }

TEST(frame_partial_and_batched_input) {
    size_t ends[PROTO_TYPE_LAST], len;
    uint8_t *all = sample_stream(&len, ends);
    CHECK_EQ_INT(feed_in_pieces(all, len, ends, step_one), PROTO_TYPE_LAST);
    CHECK_EQ_INT(feed_in_pieces(all, len, ends, step_all), PROTO_TYPE_LAST);
    CHECK_EQ_INT(feed_in_pieces(all, len, ends, step_odd), PROTO_TYPE_LAST);
    CHECK_EQ_INT(feed_in_pieces(all, len, ends, step_header_split), PROTO_TYPE_LAST);
    free(all);
}

TEST(frame_many_frames_in_one_read) {
    /* a push stops at the end of each frame; the caller comes back for the rest */
    uint8_t buf[FRAME_HEADER_LEN * 3];
    frame hdr = {1, PROTO_CANCEL, 0, 1, 0, NULL}, f;
    frame_decoder d;
    size_t used, pos = 0;
    int n = 0;
    for (int i = 0; i < 3; i++) {
        hdr.stream = (uint32_t)(i + 1);
        frame_put_header(buf + i * FRAME_HEADER_LEN, &hdr);
    }
    frame_decoder_init(&d, 0, 1, 1);
    while (pos < sizeof buf) {
        int r = frame_decoder_push(&d, buf + pos, sizeof buf - pos, &used, &f);
        CHECK_EQ_INT(r, 1);
        if (r != 1) break;
        CHECK_EQ_INT(used, FRAME_HEADER_LEN);
        CHECK_EQ_INT(f.stream, n + 1);
        CHECK(f.payload == NULL && f.len == 0);
        pos += used;
        n++;
    }
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_INT(frame_decoder_push(&d, NULL, 0, &used, &f), 0);
    frame_decoder_free(&d);
}

static frame_error push_header(uint32_t max, uint8_t vmin, uint8_t vmax, frame hdr, int *ret) {
    uint8_t buf[FRAME_HEADER_LEN];
    frame_decoder d;
    frame f;
    size_t used;
    frame_error e;
    frame_put_header(buf, &hdr);
    frame_decoder_init(&d, max, vmin, vmax);
    *ret = frame_decoder_push(&d, buf, sizeof buf, &used, &f);
    e = d.error;
    frame_decoder_free(&d);
    return e;
}

TEST(frame_length_limit) {
    frame hdr = {1, PROTO_CHUNK, 0, 1, 1000, NULL};
    int r;
    /* at the limit: the header is fine and the decoder waits for the payload */
    CHECK_EQ_INT(push_header(1000, 1, 1, hdr, &r), FRAME_OK);
    CHECK_EQ_INT(r, 0);
    hdr.len = 1001;
    CHECK_EQ_INT(push_header(1000, 1, 1, hdr, &r), FRAME_ERR_OVERSIZED);
    CHECK_EQ_INT(r, -1);
    CHECK(strstr(err_msg(), "1001") != NULL && strstr(err_msg(), "1000") != NULL);
    /* 0 and anything above the ceiling mean the ceiling */
    hdr.len = FRAME_MAX_PAYLOAD;
    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_OK);
    hdr.len = FRAME_MAX_PAYLOAD + 1;
    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_ERR_OVERSIZED);
    CHECK_EQ_INT(push_header(UINT32_MAX, 1, 1, hdr, &r), FRAME_ERR_OVERSIZED);
    hdr.len = UINT32_MAX;
    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_ERR_OVERSIZED);
}

TEST(frame_wrong_version) {
    frame hdr = {2, PROTO_PING, 0, 0, 8, NULL};
    int r;
    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_ERR_VERSION);
    CHECK(strstr(err_msg(), "version 2") != NULL);
    CHECK_EQ_INT(push_header(0, 1, 3, hdr, &r), FRAME_OK);
    hdr.version = 0;
    CHECK_EQ_INT(push_header(0, 1, 3, hdr, &r), FRAME_ERR_VERSION);
    /* after negotiation only the agreed version passes */
    {
        frame_decoder d;
        uint8_t buf[FRAME_HEADER_LEN];
        size_t used;
        frame f;
        frame_decoder_init(&d, 0, 1, 3);
        frame_decoder_set_version(&d, 3);
        hdr.version = 1;
        frame_put_header(buf, &hdr);
        CHECK_EQ_INT(frame_decoder_push(&d, buf, sizeof buf, &used, &f), -1);
        CHECK_EQ_INT(d.error, FRAME_ERR_VERSION);
        frame_decoder_free(&d);
    }
}

TEST(frame_garbage) {
    static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    frame_decoder d;
    frame f;
    size_t used;
    frame hdr = {1, 0, 0, 0, 0, NULL};
    int r;
    frame_decoder_init(&d, 0, 1, 1);
    CHECK_EQ_INT(frame_decoder_push(&d, (const uint8_t *)http, sizeof http - 1, &used, &f), -1);
    CHECK_EQ_INT(d.error, FRAME_ERR_GARBAGE);
    CHECK(strstr(err_msg(), "not a veil frame") != NULL);
    /* the stream cannot be resynchronised: every later push fails */
    CHECK_EQ_INT(frame_decoder_push(&d, (const uint8_t *)"x", 1, &used, &f), -1);
    frame_decoder_free(&d);

    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_ERR_GARBAGE); /* type 0 */
    hdr.type = PROTO_PING;
    hdr.flags = 0x8000;
    CHECK_EQ_INT(push_header(0, 1, 1, hdr, &r), FRAME_ERR_GARBAGE);
}

TEST(frame_error_after_good_frames_names_offset) {
    /* two good frames, then a bad header: the error names where the bad frame starts */
    uint8_t buf[FRAME_HEADER_LEN * 3];
    frame hdr = {1, PROTO_CANCEL, 0, 1, 0, NULL}, f;
    frame_decoder d;
    size_t used, pos = 0;
    int r;
    frame_put_header(buf, &hdr);
    frame_put_header(buf + FRAME_HEADER_LEN, &hdr);
    hdr.version = 9;
    frame_put_header(buf + 2 * FRAME_HEADER_LEN, &hdr);
    frame_decoder_init(&d, 0, 1, 1);
    do {
        r = frame_decoder_push(&d, buf + pos, sizeof buf - pos, &used, &f);
        pos += used;
    } while (r == 1);
    CHECK_EQ_INT(r, -1);
    CHECK(strstr(err_msg(), "offset 24") != NULL);
    frame_decoder_free(&d);
}

TEST(frame_large_buffer_released) {
    size_t n = FRAME_HEADER_LEN + 200000, used;
    uint8_t *buf = calloc(1, n), small[FRAME_HEADER_LEN];
    frame hdr = {1, PROTO_CHUNK, 0, 1, 200000, NULL}, f;
    frame_decoder d;
    frame_put_header(buf, &hdr);
    frame_decoder_init(&d, 0, 1, 1);
    CHECK_EQ_INT(frame_decoder_push(&d, buf, n, &used, &f), 1);
    CHECK_EQ_INT(f.len, 200000);
    hdr = (frame){1, PROTO_CANCEL, 0, 1, 0, NULL};
    frame_put_header(small, &hdr);
    CHECK_EQ_INT(frame_decoder_push(&d, small, sizeof small, &used, &f), 1);
    CHECK(d.cap < 1000);
    frame_decoder_free(&d);
    free(buf);
}
