/* Tensor element types, numbered as GGML/GGUF number them, with their block geometry.
 * A row of n elements of a block type takes n / block_size * type_size bytes, n a multiple of
 * block_size. Which of them the engine can compute with is qtype_supported(). */
#ifndef VEIL_QTYPE_H
#define VEIL_QTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum qtype {
    QT_F32 = 0,
    QT_F16 = 1,
    QT_Q4_0 = 2,
    QT_Q4_1 = 3,
    QT_Q5_0 = 6,
    QT_Q5_1 = 7,
    QT_Q8_0 = 8,
    QT_Q8_1 = 9,
    QT_Q2_K = 10,
    QT_Q3_K = 11,
    QT_Q4_K = 12,
    QT_Q5_K = 13,
    QT_Q6_K = 14,
    QT_Q8_K = 15,
    QT_IQ2_XXS = 16,
    QT_IQ2_XS = 17,
    QT_IQ3_XXS = 18,
    QT_IQ1_S = 19,
    QT_IQ4_NL = 20,
    QT_IQ3_S = 21,
    QT_IQ2_S = 22,
    QT_IQ4_XS = 23,
    QT_I8 = 24,
    QT_I16 = 25,
    QT_I32 = 26,
    QT_I64 = 27,
    QT_F64 = 28,
    QT_IQ1_M = 29,
    QT_BF16 = 30,
    QT_TQ1_0 = 34,
    QT_TQ2_0 = 35,
    QT_MXFP4 = 39,
    QT_COUNT = 40
};

typedef struct qtype_info {
    const char *name;   /* "Q4_K"; NULL for numbers GGML does not (or no longer) define */
    uint32_t block_size;  /* elements per block */
    uint32_t type_size;   /* bytes per block */
} qtype_info;

/* NULL for an unknown type number. */
const qtype_info *qtype_get(uint32_t type);
/* True for the types the engine computes with: F32 F16 BF16 Q8_0 Q4_0 Q4_K Q6_K. */
bool qtype_supported(uint32_t type);
/* Bytes of a row of n elements; 0 when n is not a multiple of the block size or type unknown. */
size_t qtype_row_size(uint32_t type, uint64_t n);
/* Type by name ("q4_k" or "Q4_K"); -1 when unknown. */
int qtype_from_name(const char *name);

#endif
