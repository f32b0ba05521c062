/* libFuzzer target for the wire protocol: arbitrary bytes go through the incremental frame
 * decoder in pieces of varying size (from the input's first byte), and every frame that
 * decodes as a message must re-encode to exactly the bytes it came from. Nothing may crash,
 * read out of bounds or leak, whatever the bytes. */
#include "net/frame.h"
#include "net/proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    frame_decoder d;
    size_t pos = 1, start = 1, step = 0;
    uint8_t *buf = NULL;
    if (size < 1) return 0;
    frame_decoder_init(&d, 1u << 16, PROTO_VERSION_MIN, PROTO_VERSION_MAX);
    while (pos < size) {
        size_t piece = (size_t)((data[0] + step * 13) % 37), used;
        frame f;
        proto_msg m;
        int r;
        step++;
        if (piece > size - pos) piece = size - pos;
        r = frame_decoder_push(&d, data + pos, piece, &used, &f);
        if (used > piece) abort();
        pos += used;
        if (r < 0) break;
        if (r == 0) {
            if (used != piece) abort(); /* an unfinished frame takes everything offered */
            continue;
        }
        /* the frame is the bytes from start to pos */
        if (pos - start != FRAME_HEADER_LEN + (size_t)f.len) abort();
        if (f.len && memcmp(f.payload, data + start + FRAME_HEADER_LEN, f.len) != 0) abort();
        if (proto_decode(&f, &m) == 0) {
            size_t len;
            buf = realloc(buf, pos - start);
            if (!buf) abort();
            if (proto_encode(&m, f.version, buf, pos - start, &len) != 0) abort();
            if (len != pos - start || memcmp(buf, data + start, len) != 0) abort();
        }
        start = pos;
    }
    free(buf);
    frame_decoder_free(&d);
    return 0;
}
