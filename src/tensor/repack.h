/* Weight matrices rearranged ("packed") for the AVX-512 kernels: 16 rows side by side.
 *
 * In GGUF's layout each row is its own stretch of memory, so a kernel that computes 16 rows at
 * once (one per lane of a 512-bit vector) reads 16 separate streams and must fold each row's
 * partial sums across lanes for every block and token. In a packed matrix, each group of 16
 * consecutive rows is one stretch: for each block, the 16 rows' bytes interleaved 4 at a time,
 * so that one VNNI instruction with a broadcast 4-byte activation gives every row's partial sum
 * in its own lane, and one sequential stream feeds a whole group. The values, and so the
 * products (matmul.h's recurrence), are exactly those of the original matrix. F16 and BF16
 * rows are interleaved 8 values at a time instead (one row pair per 512-bit vector).
 *
 * Layout of group g (rows 16g..16g+15) of a matrix with nb blocks per row, at byte
 * repack_bytes(type, n_in, 16g):
 *   Q4_0: nb / 2 block pairs of 64 + 2 x 256 bytes: blocks 2p and 2p + 1's scales (each the
 *         16 rows' half-precision d, 32 bytes), then block 2p's quants, then block 2p + 1's.
 *         A block's quants are 4 chunks of 64 bytes; chunk k holds bytes 4k..4k+3 of the
 *         block's 16 nibble bytes of row 0, then row 1, ... row 15.
 *   Q8_0: likewise with 2 x 512 bytes of quants per pair (8 chunks of 64, bytes 4k..4k+3 of
 *         the 32 quants of each row, each stored as q + 128: unsigned, as VNNI wants them).
 *         Both take the rows' own size (16 x row size per group), in one stream: scales
 *         and quants of a block side by side (a separate stream of scales at the group's end
 *         made one-token Q4_0 products 13-20 % slower on tinyllama-1.1b).
 *   Q4_K: nb super-blocks of 2368 bytes (37 x 64, so every one starts 64-byte aligned), each:
 *           0  the 16 rows' half d           (32 bytes)
 *          32  the 16 rows' half dmin        (32 bytes)
 *          64  the 6-bit scales as bytes, sub-block j's at 64 + 16j + row   (128 bytes)
 *         192  the 6-bit mins, likewise at 192 + 16j + row                  (128 bytes)
 *         320  the 128 nibble bytes in 32 chunks of 64 as for Q4_0: chunk k holds bytes
 *              4k..4k+3 of each row (so chunks 8c..8c+7 are the rows' 32-byte chunk c, whose
 *              low nibbles are sub-block 2c and high ones 2c + 1)
 *         64 bytes more than the 16 rows' 2304: the scales and mins unpacked once here, not
 *         per product and token.
 *   Q6_K: nb super-blocks of 3392 bytes (53 x 64), each:
 *           0  the 16 rows' half d           (32 bytes, then 32 bytes of zeros)
 *          64  the 16 signed 8-bit scales, sub-blocks 2k and 2k + 1 of row r at
 *              64 + 32k + 2r and 64 + 32k + 2r + 1 (256 bytes)
 *         320  ql, 32 chunks of 64 (chunk k: bytes 4k..4k+3 of each row's 128)
 *        2368  qh, 16 chunks of 64 (chunk k: bytes 4k..4k+3 of each row's 64)
 *         32 bytes more than the 16 rows' 3360, to keep 64-byte alignment.
 *   F16, BF16: n_in / 8 chunks of 256 bytes: chunk c holds values 8c..8c+7 of row 0 (16
 *         bytes), then of row 1, ... row 15, so one 32-byte load brings a row pair's 8 values,
 *         a 512-bit vector after conversion (rows 2j and 2j + 1 in its halves). The rows' own
 *         size. Needs n_in % 8 == 0.
 * Packed types are numbered REPACK_FLAG | (the GGUF type); they never appear in files, and only
 * the AVX-512 backend computes with them (matmul.h). */
#ifndef VEIL_REPACK_H
#define VEIL_REPACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPACK_ROWS 16
#define REPACK_FLAG 0x100u

static inline bool repack_is_packed(uint32_t type) { return (type & REPACK_FLAG) != 0; }
/* The GGUF type whose values a packed type holds (type itself when not packed). */
static inline uint32_t repack_base(uint32_t type) { return type & ~REPACK_FLAG; }

/* The packed type for an n_out x n_in matrix of `type`, or 0 when it has none: types other than
 * Q4_0, Q8_0, Q4_K, Q6_K, F16 and BF16, n_out not a multiple of 16, n_in not a multiple of 8
 * (F16, BF16), or (Q4_0, Q8_0) an odd number of blocks per row (which would leave groups
 * unaligned to 64 bytes). */
uint32_t repack_type_for(uint32_t type, int64_t n_in, int64_t n_out);

/* Bytes of the packed form of rows [0, n_out) of an n_in-column matrix of `type` (a base type
 * or its packed type; n_out a multiple of 16, the matrix one repack_type_for() packs): the
 * size of the whole packed matrix, or with n_out = 16g the offset of group g. */
size_t repack_bytes(uint32_t type, int64_t n_in, int64_t n_out);

/* Packs rows [r0, r1) (multiples of 16) of src, a matrix of `type` with n_in columns, into dst,
 * a buffer of repack_bytes() for the whole matrix (rows r0.. at repack_bytes(type, n_in, r0)). */
void repack_rows(uint32_t type, const void *src, int64_t n_in, void *dst, int64_t r0, int64_t r1);

/* Row r of a matrix of packed type `packed`, in its base type's layout (row_size bytes). */
void repack_unpack_row(uint32_t packed, const void *w, int64_t n_in, int64_t r, void *out);

#endif
