/* Tensor element formats: IEEE half and bfloat16 conversions, and the GGML block formats the
 * engine computes with (Q8_0, Q4_0, Q4_K, Q6_K), decoded bit-exactly as ggml decodes them and
 * encoded by our own quantizers. Byte layouts are read and written byte by byte (little
 * endian), so buffers need no alignment and results do not depend on the host's byte order.
 * Everything here is reentrant: no global state. */
#ifndef VEIL_QUANT_H
#define VEIL_QUANT_H

#include <stdint.h>

/* IEEE 754 binary16 <-> binary32. To half: round to nearest even, overflow to infinity,
 * subnormals kept, NaN stays a (quiet) NaN. To float: exact. */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);

/* bfloat16 (the top half of a binary32). To bf16: round to nearest even (so values near
 * FLT_MAX round to infinity), NaN stays a quiet NaN as in ggml. To float: exact. */
float quant_bf16_to_f32(uint16_t h);
uint16_t quant_f32_to_bf16(float f);

/* Decodes n elements of `type` starting at src (a row, or a part of one that starts on a block
 * boundary) into dst. type must be one qtype_supported() accepts (F32 F16 BF16 Q8_0 Q4_0 Q4_K
 * Q6_K) and n a non-negative multiple of its block size: callers check tensors when they load
 * them. A call that breaks this is a bug in the caller; dst[0..n) is then filled with NaN so
 * the mistake shows instead of passing for data. */
void quant_dequantize_row(uint32_t type, const void *src, float *dst, int64_t n);

/* Encodes n floats as `type` into dst (qtype_row_size(type, n) bytes). Q8_0 and Q4_0 give the
 * same bytes as ggml's reference quantizers; Q4_K and Q6_K search sub-block scales (and
 * minimums) that minimise the squared error of the decoded row. Returns 0, or -1 with err_msg
 * set for an unsupported type, n negative or not a multiple of the block size, a NaN or
 * infinity given to a block format, or a value too large for the format's half-precision
 * scale; dst is then undefined. */
int quant_quantize_row(uint32_t type, const float *src, void *dst, int64_t n);

/* Q4_K's 12 bytes of 6-bit sub-block scales and mins (s): the scale and min of sub-block j
 * (0..7), and the 12 bytes that encode sc[0..8) and m[0..8) (each 0..63). The encoding uses
 * every bit, so any 12 bytes decode to values that encode back to them. */
void quant_q4k_scale_min(const uint8_t *s, int j, int *sc, int *m);
void quant_q4k_scales_set(uint8_t *s, const int *sc, const int *m);

#endif
