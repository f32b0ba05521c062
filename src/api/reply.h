/* Where an API answer goes: a sink for one HTTP-shaped reply (status, content type, body),
 * whatever carries it. The HTTP server writes it to an evhttp request; the network's worker
 * seals it into chunks for the client gateway, which writes it to its own HTTP request. So
 * the code that produces answers (gen.h) never knows which transport it feeds.
 *
 * Order: start once, chunk any number of times, end once; nothing after end. A reply whose
 * content type is text/event-stream is a stream (each chunk goes out as it comes); any other
 * is whole (the transport may buffer it to send one body with a length). */
#ifndef VEIL_REPLY_H
#define VEIL_REPLY_H

#include <stddef.h>

#define API_SSE_TYPE "text/event-stream"
#define API_JSON_TYPE "application/json"

typedef struct api_reply {
    void *ctx;
    void (*start)(void *ctx, int status, const char *content_type);
    void (*chunk)(void *ctx, const char *data, size_t len);
    void (*end)(void *ctx);
} api_reply;

#endif
