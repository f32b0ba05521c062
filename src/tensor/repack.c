/* Packing of Q4_0 and Q8_0 matrices into 16-row groups (see repack.h for the layout). Both
 * types are a half-precision scale then `qbytes` quant bytes per 32-value block; they differ
 * only in qbytes and in Q8_0's quants being stored offset by 128. */
#include "tensor/repack.h"

#include "tensor/qtype.h"

#include <string.h>

/* Quant bytes per block and the byte XORed into each when packed; 0 bytes: no packed form. */
static int quant_bytes(uint32_t type, uint8_t *flip) {
    *flip = type == QT_Q8_0 ? 0x80 : 0;
    return type == QT_Q4_0 ? 16 : type == QT_Q8_0 ? 32 : 0;
}

uint32_t repack_type_for(uint32_t type, int64_t n_in, int64_t n_out) {
    uint8_t flip;
    if (!quant_bytes(type, &flip) || n_in <= 0 || n_in % 64 != 0 || n_out <= 0 ||
        n_out % REPACK_ROWS != 0)
        return 0;
    return REPACK_FLAG | type;
}

/* Offsets of block b's quants and scales in group g, for nb blocks per row. */
static size_t quants_at(size_t row_size, int64_t g, int64_t b, int qbytes) {
    return (size_t)g * REPACK_ROWS * row_size + (size_t)b * REPACK_ROWS * (size_t)qbytes;
}
static size_t scales_at(size_t row_size, int64_t g, int64_t nb, int64_t b, int qbytes) {
    return quants_at(row_size, g, nb, qbytes) + (size_t)b * REPACK_ROWS * 2;
}

/* Moves one 4-byte chunk between the layouts, XORing each byte with flip. */
static void chunk4(uint8_t *dst, const uint8_t *src, uint8_t flip) {
    uint32_t v;
    memcpy(&v, src, 4);
    v ^= flip * 0x01010101u;
    memcpy(dst, &v, 4);
}

void repack_rows(uint32_t type, const void *src, int64_t n_in, void *dst, int64_t r0, int64_t r1) {
    uint8_t flip;
    const int qb = quant_bytes(type, &flip);
    const int64_t nb = n_in / 32;
    const size_t rs = qtype_row_size(type, (uint64_t)n_in), bs = (size_t)qb + 2;
    for (int64_t g = r0 / REPACK_ROWS; g < r1 / REPACK_ROWS; g++)
        for (int i = 0; i < REPACK_ROWS; i++) {
            const uint8_t *blk = (const uint8_t *)src + (size_t)(g * REPACK_ROWS + i) * rs;
            for (int64_t b = 0; b < nb; b++, blk += bs) {
                uint8_t *q = (uint8_t *)dst + quants_at(rs, g, b, qb) + (size_t)i * 4;
                memcpy((uint8_t *)dst + scales_at(rs, g, nb, b, qb) + 2 * i, blk, 2);
                for (int k = 0; k < qb / 4; k++) chunk4(q + (size_t)k * REPACK_ROWS * 4, blk + 2 + 4 * k, flip);
            }
        }
}

void repack_unpack_row(uint32_t packed, const void *w, int64_t n_in, int64_t r, void *out) {
    const uint32_t type = repack_base(packed);
    uint8_t flip;
    const int qb = quant_bytes(type, &flip);
    const int64_t nb = n_in / 32, g = r / REPACK_ROWS, i = r % REPACK_ROWS;
    const size_t rs = qtype_row_size(type, (uint64_t)n_in), bs = (size_t)qb + 2;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = (const uint8_t *)w + quants_at(rs, g, b, qb) + (size_t)i * 4;
        uint8_t *blk = (uint8_t *)out + (size_t)b * bs;
        memcpy(blk, (const uint8_t *)w + scales_at(rs, g, nb, b, qb) + 2 * i, 2);
        for (int k = 0; k < qb / 4; k++) chunk4(blk + 2 + 4 * k, q + (size_t)k * REPACK_ROWS * 4, flip);
    }
}
