/* Packing of Q4_0, Q8_0, Q4_K, Q6_K, F16 and BF16 matrices into 16-row groups (see repack.h for
 * the layouts). Q4_0 and Q8_0 are a half-precision scale then `qbytes` quant bytes per 32-value
 * block; they differ only in qbytes and in Q8_0's quants being stored offset by 128. The K
 * types' packed super-blocks are laid out each their own way. */
#include "tensor/repack.h"

#include "tensor/qtype.h"
#include "tensor/quant.h"

#include <string.h>

/* Bytes of one group's super-block of packed Q4_K and Q6_K, and where their parts start
 * (repack.h). */
enum { Q4K_PACKED = 2368, Q4K_DMIN = 32, Q4K_SC = 64, Q4K_M = 192, Q4K_Q = 320 };
enum { Q6K_PACKED = 3392, Q6K_SC = 64, Q6K_QL = 320, Q6K_QH = 2368 };

/* Quant bytes per block and the byte XORed into each when packed; 0 bytes: not Q4_0 or Q8_0. */
static int quant_bytes(uint32_t type, uint8_t *flip) {
    *flip = type == QT_Q8_0 ? 0x80 : 0;
    return type == QT_Q4_0 ? 16 : type == QT_Q8_0 ? 32 : 0;
}

uint32_t repack_type_for(uint32_t type, int64_t n_in, int64_t n_out) {
    uint8_t flip;
    if (n_in <= 0 || n_out <= 0 || n_out % REPACK_ROWS != 0) return 0;
    if (type == QT_F16 || type == QT_BF16) return n_in % 8 == 0 ? REPACK_FLAG | type : 0;
    if (type == QT_Q4_K || type == QT_Q6_K) return n_in % 256 == 0 ? REPACK_FLAG | type : 0;
    if (!quant_bytes(type, &flip) || n_in % 64 != 0) return 0;
    return REPACK_FLAG | type;
}

size_t repack_bytes(uint32_t type, int64_t n_in, int64_t n_out) {
    const uint32_t base = repack_base(type);
    if (base == QT_Q4_K || base == QT_Q6_K)
        return (size_t)(n_out / REPACK_ROWS) * (size_t)(n_in / 256) * (base == QT_Q4_K ? Q4K_PACKED : Q6K_PACKED);
    return qtype_row_size(base, (uint64_t)n_in) * (size_t)n_out;
}

/* Offsets of block b's quants and scales in group g, for nb blocks per row. */
static size_t quants_at(size_t row_size, int64_t g, int64_t b, int qbytes) {
    const size_t pair = 64 + 2 * REPACK_ROWS * (size_t)qbytes;
    return (size_t)g * REPACK_ROWS * row_size + (size_t)(b / 2) * pair + 64 + (size_t)(b % 2) * REPACK_ROWS * (size_t)qbytes;
}
static size_t scales_at(size_t row_size, int64_t g, int64_t b, int qbytes) {
    const size_t pair = 64 + 2 * REPACK_ROWS * (size_t)qbytes;
    return (size_t)g * REPACK_ROWS * row_size + (size_t)(b / 2) * pair + (size_t)(b % 2) * 32;
}

/* Moves one 4-byte chunk between the layouts, XORing each byte with flip. */
static void chunk4(uint8_t *dst, const uint8_t *src, uint8_t flip) {
    uint32_t v;
    memcpy(&v, src, 4);
    v ^= flip * 0x01010101u;
    memcpy(dst, &v, 4);
}

/* Row i's 144-byte Q4_K super-block blk into the group's packed super-block p, or back. */
static void q4k_pack(const uint8_t *blk, uint8_t *p, int i) {
    memcpy(p + 2 * i, blk, 2);
    memcpy(p + Q4K_DMIN + 2 * i, blk + 2, 2);
    for (int j = 0; j < 8; j++) {
        int sc, m;
        quant_q4k_scale_min(blk + 4, j, &sc, &m);
        p[Q4K_SC + 16 * j + i] = (uint8_t)sc;
        p[Q4K_M + 16 * j + i] = (uint8_t)m;
    }
    for (int k = 0; k < 32; k++) memcpy(p + Q4K_Q + (size_t)(k * REPACK_ROWS + i) * 4, blk + 16 + 4 * k, 4);
}
static void q4k_unpack(const uint8_t *p, int i, uint8_t *blk) {
    memcpy(blk, p + 2 * i, 2);
    memcpy(blk + 2, p + Q4K_DMIN + 2 * i, 2);
    int sc[8], m[8];
    for (int j = 0; j < 8; j++) {
        sc[j] = p[Q4K_SC + 16 * j + i];
        m[j] = p[Q4K_M + 16 * j + i];
    }
    quant_q4k_scales_set(blk + 4, sc, m);
    for (int k = 0; k < 32; k++) memcpy(blk + 16 + 4 * k, p + Q4K_Q + (size_t)(k * REPACK_ROWS + i) * 4, 4);
}

/* Row i's 210-byte Q6_K super-block blk into the group's packed super-block p (whose padding
 * after d is zeroed by row 0), or back. */
static void q6k_pack(const uint8_t *blk, uint8_t *p, int i) {
    memcpy(p + 2 * i, blk + 208, 2);
    if (i == 0) memset(p + 32, 0, Q6K_SC - 32);
    for (int s = 0; s < 16; s++) p[Q6K_SC + 32 * (s / 2) + 2 * i + s % 2] = blk[192 + s];
    for (int k = 0; k < 32; k++) memcpy(p + Q6K_QL + (size_t)(k * REPACK_ROWS + i) * 4, blk + 4 * k, 4);
    for (int k = 0; k < 16; k++) memcpy(p + Q6K_QH + (size_t)(k * REPACK_ROWS + i) * 4, blk + 128 + 4 * k, 4);
}
static void q6k_unpack(const uint8_t *p, int i, uint8_t *blk) {
    memcpy(blk + 208, p + 2 * i, 2);
    for (int s = 0; s < 16; s++) blk[192 + s] = p[Q6K_SC + 32 * (s / 2) + 2 * i + s % 2];
    for (int k = 0; k < 32; k++) memcpy(blk + 4 * k, p + Q6K_QL + (size_t)(k * REPACK_ROWS + i) * 4, 4);
    for (int k = 0; k < 16; k++) memcpy(blk + 128 + 4 * k, p + Q6K_QH + (size_t)(k * REPACK_ROWS + i) * 4, 4);
}

/* Offset of row r's 8 values from element c (a multiple of 8) in a packed F16/BF16 matrix. */
static size_t half_at(int64_t n_in, int64_t r, int64_t c) {
    return (size_t)(r / REPACK_ROWS) * REPACK_ROWS * (size_t)n_in * 2 + (size_t)c * REPACK_ROWS * 2 +
           (size_t)(r % REPACK_ROWS) * 16;
}

void repack_rows(uint32_t type, const void *src, int64_t n_in, void *dst, int64_t r0, int64_t r1) {
    const size_t rs = qtype_row_size(type, (uint64_t)n_in);
    if (type == QT_F16 || type == QT_BF16) {
        for (int64_t r = r0; r < r1; r++)
            for (int64_t c = 0; c < n_in; c += 8)
                memcpy((uint8_t *)dst + half_at(n_in, r, c), (const uint8_t *)src + (size_t)r * rs + 2 * (size_t)c, 16);
        return;
    }
    if (type == QT_Q4_K || type == QT_Q6_K) {
        const size_t sb = type == QT_Q4_K ? 144 : 210, pb = type == QT_Q4_K ? Q4K_PACKED : Q6K_PACKED;
        for (int64_t r = r0; r < r1; r++)
            for (int64_t b = 0; b < n_in / 256; b++) {
                const uint8_t *blk = (const uint8_t *)src + (size_t)r * rs + (size_t)b * sb;
                uint8_t *p = (uint8_t *)dst + repack_bytes(type, n_in, r / REPACK_ROWS * REPACK_ROWS) + (size_t)b * pb;
                if (type == QT_Q4_K) q4k_pack(blk, p, (int)(r % REPACK_ROWS));
                else q6k_pack(blk, p, (int)(r % REPACK_ROWS));
            }
        return;
    }
    uint8_t flip;
    const int qb = quant_bytes(type, &flip);
    const int64_t nb = n_in / 32;
    const size_t bs = (size_t)qb + 2;
    for (int64_t g = r0 / REPACK_ROWS; g < r1 / REPACK_ROWS; g++)
        for (int i = 0; i < REPACK_ROWS; i++) {
            const uint8_t *blk = (const uint8_t *)src + (size_t)(g * REPACK_ROWS + i) * rs;
            for (int64_t b = 0; b < nb; b++, blk += bs) {
                uint8_t *q = (uint8_t *)dst + quants_at(rs, g, b, qb) + (size_t)i * 4;
                memcpy((uint8_t *)dst + scales_at(rs, g, b, qb) + 2 * i, blk, 2);
                for (int k = 0; k < qb / 4; k++) chunk4(q + (size_t)k * REPACK_ROWS * 4, blk + 2 + 4 * k, flip);
            }
        }
}

void repack_unpack_row(uint32_t packed, const void *w, int64_t n_in, int64_t r, void *out) {
    const uint32_t type = repack_base(packed);
    const int64_t g = r / REPACK_ROWS, i = r % REPACK_ROWS;
    if (type == QT_F16 || type == QT_BF16) {
        for (int64_t c = 0; c < n_in; c += 8)
            memcpy((uint8_t *)out + 2 * (size_t)c, (const uint8_t *)w + half_at(n_in, r, c), 16);
        return;
    }
    if (type == QT_Q4_K || type == QT_Q6_K) {
        const uint8_t *p = (const uint8_t *)w + repack_bytes(type, n_in, g * REPACK_ROWS);
        for (int64_t b = 0; b < n_in / 256; b++)
            if (type == QT_Q4_K) q4k_unpack(p + (size_t)b * Q4K_PACKED, (int)i, (uint8_t *)out + (size_t)b * 144);
            else q6k_unpack(p + (size_t)b * Q6K_PACKED, (int)i, (uint8_t *)out + (size_t)b * 210);
        return;
    }
    uint8_t flip;
    const int qb = quant_bytes(type, &flip);
    const int64_t nb = n_in / 32;
    const size_t rs = qtype_row_size(type, (uint64_t)n_in), bs = (size_t)qb + 2;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *q = (const uint8_t *)w + quants_at(rs, g, b, qb) + (size_t)i * 4;
        uint8_t *blk = (uint8_t *)out + (size_t)b * bs;
        memcpy(blk, (const uint8_t *)w + scales_at(rs, g, b, qb) + 2 * i, 2);
        for (int k = 0; k < qb / 4; k++) chunk4(blk + 2 + 4 * k, q + (size_t)k * REPACK_ROWS * 4, flip);
    }
}
