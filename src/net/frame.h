/* Frames: the unit of the veil wire protocol on a TLS stream (docs/PROTOCOL.md, "Frames").
 *
 *   offset 0  u32  payload length (big-endian), at most the connection's limit
 *          4  u8   protocol version
 *          5  u8   message type (never 0)
 *          6  u16  flags (none defined in version 1: must be 0)
 *          8  u32  stream id (0 = the connection itself, else one request)
 *         12  payload
 *
 * The incremental decoder takes bytes as they arrive, in pieces of any size, and hands back
 * whole frames one at a time. It checks each header as soon as its 12 bytes are in, before
 * buffering any payload, so an oversized or garbage frame costs no memory; it never holds
 * more than one frame. After an error it stays failed: the stream cannot be resynchronised
 * and the connection must be closed. */
#ifndef VEIL_FRAME_H
#define VEIL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_LEN 12
/* Ceiling for any connection; a decoder may be configured lower. A request's sealed prompt
 * travels in one frame, so this bounds the prompt size too. */
#define FRAME_MAX_PAYLOAD (16u << 20)

typedef struct frame {
    uint8_t version, type;
    uint16_t flags;
    uint32_t stream;
    uint32_t len;            /* payload bytes */
    const uint8_t *payload;  /* NULL when len is 0 */
} frame;

typedef enum frame_error {
    FRAME_OK,
    FRAME_ERR_OVERSIZED, /* length above the limit */
    FRAME_ERR_VERSION,   /* a version this connection does not speak */
    FRAME_ERR_GARBAGE,   /* type 0 or undefined flags: not a veil frame */
    FRAME_ERR_NOMEM,
} frame_error;

typedef struct frame_decoder {
    uint8_t *buf;
    size_t have, cap;
    uint32_t max_payload;
    uint8_t version_min, version_max;
    int delivered;       /* the buffer holds a frame handed out by the last call */
    uint64_t offset;     /* stream offset of the frame being read (for messages) */
    frame_error error;
} frame_decoder;

/* Writes f's header (its len, version, type, flags and stream) to out. */
void frame_put_header(uint8_t out[FRAME_HEADER_LEN], const frame *f);
/* Reads a header from 12 bytes; f->payload is left NULL. No checks. */
void frame_get_header(const uint8_t in[FRAME_HEADER_LEN], frame *f);

/* max_payload 0 or above FRAME_MAX_PAYLOAD means FRAME_MAX_PAYLOAD. Frames must carry a version
 * in [version_min, version_max]. */
void frame_decoder_init(frame_decoder *d, uint32_t max_payload, uint8_t version_min,
                        uint8_t version_max);
/* Narrows the accepted versions to one (after the hello exchange negotiated it). */
void frame_decoder_set_version(frame_decoder *d, uint8_t version);
void frame_decoder_free(frame_decoder *d);

/* Consumes bytes from data (n of them) until a frame completes or the input runs out; *used
 * says how many were consumed. Returns 1 with *out set when a frame completed (its payload is
 * valid until the next call on d), 0 when all n bytes were consumed without completing one,
 * -1 with err_msg() and d->error set on a bad frame (then and on every later call). Callers
 * loop: `while (n) { r = push(...); data += used; n -= used; ... }`. */
int frame_decoder_push(frame_decoder *d, const uint8_t *data, size_t n, size_t *used,
                       frame *out);

#endif
