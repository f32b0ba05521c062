/* Weight matrices rearranged ("packed") for the AVX-512 kernels: 16 rows side by side.
 *
 * In GGUF's layout each row is its own stretch of memory, so a kernel that computes 16 rows at
 * once (one per lane of a 512-bit vector) reads 16 separate streams and must fold each row's
 * partial sums across lanes for every block and token. In a packed matrix, each group of 16
 * consecutive rows is one stretch: for each block, the 16 rows' bytes interleaved 4 at a time,
 * so that one VNNI instruction with a broadcast 4-byte activation gives every row's partial sum
 * in its own lane, and one sequential stream feeds a whole group. The values, and so the
 * products (matmul.h's recurrence), are exactly those of the original matrix.
 *
 * Layout of group g (rows 16g..16g+15) of a matrix with nb blocks per row, at byte
 * g * 16 * row_size, the same size as the original rows:
 *   Q4_0: nb x 256 bytes of quants, then nb x 32 bytes of scales. Block b's quants are 4
 *         chunks of 64 bytes; chunk k holds bytes 4k..4k+3 of the block's 16 nibble bytes of
 *         row 0, then row 1, ... row 15. Block b's scales are the 16 rows' half-precision d.
 *   Q8_0: nb x 512 bytes of quants (8 chunks of 64, as above, bytes 4k..4k+3 of the 32 quants
 *         of each row, each stored as q + 128: unsigned, as VNNI wants them), then nb x 32
 *         bytes of scales.
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
 * Q4_0 and Q8_0, n_out not a multiple of 16, or an odd number of blocks per row (which would
 * leave groups unaligned to 64 bytes). */
uint32_t repack_type_for(uint32_t type, int64_t n_in, int64_t n_out);

/* Packs rows [r0, r1) (multiples of 16) of src, a matrix of `type` with n_in columns, into dst,
 * a buffer laid out for the whole matrix (the same byte offsets: rows r0.. at r0 * row_size). */
void repack_rows(uint32_t type, const void *src, int64_t n_in, void *dst, int64_t r0, int64_t r1);

/* Row r of a matrix of packed type `packed`, in its base type's layout (row_size bytes). */
void repack_unpack_row(uint32_t packed, const void *w, int64_t n_in, int64_t r, void *out);

#endif
