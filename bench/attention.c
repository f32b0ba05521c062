/* Attention micro-benchmark: one query per head (decode) over a cache the forward pass's
 * shape, on one thread, with the kernel attention_head picks on this CPU.
 *
 *   build/bench-attention [-p POSITIONS] [-l LAYERS] [-H HEADS] [-d HEAD_DIM] [-f] [-e] [-r REPS]
 *
 * The cache holds LAYERS x HEADS heads (default 16 x 16, head_dim 64: d1024-l16's) of
 * POSITIONS rows (default 128) each, F32 or with -f F16, on huge pages as the engine's is, each
 * head's blocks consecutive; with -e as the engine lays them out, a storage block holding
 * every head's piece of its 16 positions (one head's pieces then lie a block apart). One pass
 * runs every head's attention once; it is timed twice: "hot", right after another pass (the
 * cache in L2/L3 as far as it fits), and "cold", after reading 512 MiB of other memory (the
 * cache in DRAM, as in decode, where the weights stream through between a head's uses). Prints
 * the fastest of REPS passes (default 10) of each, in microseconds and in GB/s of K and V
 * read. */
#include "base/clock.h"
#include "base/hugemem.h"
#include "model/attention.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct cache {
    void *k, *v;
    enum attn_type type;
    int32_t *blocks;
    int32_t n_pos, n_heads, hd;
    size_t head_elems; /* elements of one head's rows */
    size_t block_elems; /* elements from one storage block to the next */
    bool engine;        /* -e: the engine's layout (a block holds every head's piece) */
} cache;

static void pass(const cache *c, const float *q, float *scores, float *out) {
    for (int32_t h = 0; h < c->n_heads; h++) {
        const size_t piece = (size_t)ATTN_BLOCK * (size_t)c->hd;
        const attn_kv kv = {c->k, c->v, c->type, c->blocks, c->engine ? c->block_elems : piece,
                            (size_t)h * (c->engine ? piece : c->head_elems)};
        attention_head(&kv, c->hd, q, c->n_pos, 0.125f, scores, out);
    }
}

int main(int argc, char **argv) {
    int32_t n_pos = 128, layers = 16, heads = 16, hd = 64, reps = 10;
    bool f16 = false, engine = false;
    for (int o; (o = getopt(argc, argv, "p:l:H:d:fer:")) != -1;) {
        switch (o) {
        case 'p': n_pos = atoi(optarg); break;
        case 'l': layers = atoi(optarg); break;
        case 'H': heads = atoi(optarg); break;
        case 'd': hd = atoi(optarg); break;
        case 'f': f16 = true; break;
        case 'e': engine = true; break;
        case 'r': reps = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: bench-attention [-p POSITIONS] [-l LAYERS] [-H HEADS] [-d HEAD_DIM] [-f] [-e] [-r REPS]\n");
            return 2;
        }
    }
    if (n_pos < 1 || layers < 1 || heads < 1 || hd < 8 || hd % 8 || reps < 1) {
        fprintf(stderr, "bench-attention: positions, layers, heads, reps >= 1; head_dim a multiple of 8\n");
        return 2;
    }
    const int32_t n_blocks = (n_pos + ATTN_BLOCK - 1) / ATTN_BLOCK;
    cache c = {.type = f16 ? ATTN_F16 : ATTN_F32, .n_pos = n_pos, .n_heads = layers * heads, .hd = hd,
               .head_elems = (size_t)n_blocks * ATTN_BLOCK * (size_t)hd, .engine = engine};
    c.block_elems = (size_t)ATTN_BLOCK * (size_t)hd * (size_t)c.n_heads;
    const size_t elems = c.head_elems * (size_t)c.n_heads, esize = f16 ? 2 : 4;
    const size_t flush_bytes = (size_t)512 << 20;
    c.k = hugemem_alloc(elems * esize);
    c.v = hugemem_alloc(elems * esize);
    c.blocks = malloc((size_t)n_blocks * sizeof *c.blocks);
    float *q = malloc((size_t)hd * sizeof *q), *out = malloc((size_t)hd * sizeof *out);
    float *scores = malloc(attention_scratch(n_pos) * sizeof *scores);
    unsigned char *flush = malloc(flush_bytes);
    if (!c.k || !c.v || !c.blocks || !q || !out || !scores || !flush) {
        fprintf(stderr, "bench-attention: out of memory\n");
        return 1;
    }
    for (int32_t i = 0; i < n_blocks; i++) c.blocks[i] = i;
    for (size_t e = 0; e < elems; e += (size_t)hd) {
        for (int32_t i = 0; i < hd; i++) out[i] = (float)((e + (size_t)i) % 97) / 97.0f - 0.5f;
        attention_store((char *)c.k + e * esize, c.type, out, hd);
        for (int32_t i = 0; i < hd; i++) out[i] = (float)((e + (size_t)i) % 89) / 89.0f;
        attention_store((char *)c.v + e * esize, c.type, out, hd);
    }
    for (int32_t i = 0; i < hd; i++) q[i] = 0.01f * (float)i;
    memset(flush, 1, flush_bytes);
    double best[2] = {1e9, 1e9};
    for (int32_t r = 0; r < reps; r++) {
        for (int cold = 0; cold < 2; cold++) {
            if (cold) {
                volatile unsigned sink = 0;
                for (size_t i = 0; i < flush_bytes; i += 64) sink += flush[i];
            } else {
                pass(&c, q, scores, out);
            }
            const double t = clock_now();
            pass(&c, q, scores, out);
            const double dt = clock_now() - t;
            if (dt < best[cold]) best[cold] = dt;
        }
    }
    const double bytes = 2.0 * (double)c.n_heads * (double)n_pos * (double)hd * (double)esize;
    printf("%d heads x %d positions, head_dim %d, %s cache, %.1f MB of K and V, one thread\n",
           c.n_heads, n_pos, hd, f16 ? "F16" : "F32", bytes / 1e6);
    for (int cold = 0; cold < 2; cold++)
        printf("%-4s %10.1f us  %6.2f GB/s\n", cold ? "cold" : "hot", best[cold] * 1e6,
               bytes / best[cold] / 1e9);
    return 0;
}
