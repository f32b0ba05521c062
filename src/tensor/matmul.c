/* Matrix products (matmul.h): the process-wide backend choice, the layout of matmul_input in
 * caller scratch, and dispatch to the kernel sets. Which activation form each backend needs for
 * each weight type is decided here and nowhere else. */
#include "tensor/matmul.h"

#include "base/err.h"
#include "tensor/matmul_kernels.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"
#include "tensor/repack.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64

/* -1 until the first use decides the default. */
static _Atomic int current_backend = -1;

bool matmul_backend_supported(enum matmul_backend b) {
    switch (b) {
    case MATMUL_SCALAR: return true;
    case MATMUL_AVX2: return matmul_avx2_usable();
    case MATMUL_AVX512: return matmul_avx512_usable();
    }
    return false;
}

const char *matmul_backend_name(enum matmul_backend b) {
    switch (b) {
    case MATMUL_SCALAR: return "scalar";
    case MATMUL_AVX2: return "avx2";
    case MATMUL_AVX512: return "avx512";
    }
    return "?";
}

int matmul_set_backend(enum matmul_backend b) {
    if (!matmul_backend_supported(b))
        return err_set("matmul backend %s is not supported on this CPU", matmul_backend_name(b));
    atomic_store_explicit(&current_backend, (int)b, memory_order_relaxed);
    return 0;
}

bool matmul_simd(void) { return matmul_backend() != MATMUL_SCALAR && matmul_backend_supported(MATMUL_AVX2); }

enum matmul_backend matmul_backend(void) {
    int b = atomic_load_explicit(&current_backend, memory_order_relaxed);
    if (b < 0) {
        /* deciding twice (two first uses at once) gives the same answer */
        const char *env = getenv("VEIL_KERNELS");
        b = MATMUL_SCALAR;
        for (int i = MATMUL_AVX512; i > MATMUL_SCALAR; i--)
            if (matmul_backend_supported((enum matmul_backend)i)) {
                b = i;
                break;
            }
        for (int i = MATMUL_SCALAR; env && i <= MATMUL_AVX512; i++)
            if (strcmp(env, matmul_backend_name((enum matmul_backend)i)) == 0 &&
                matmul_backend_supported((enum matmul_backend)i))
                b = i;
        atomic_store_explicit(&current_backend, b, memory_order_relaxed);
    }
    return (enum matmul_backend)b;
}

/* The activation form weights of `type` need on backend b: 0 for float activations. */
static unsigned form_for(enum matmul_backend b, uint32_t type) {
    if (b != MATMUL_AVX2 && b != MATMUL_AVX512) return 0;
    switch (repack_base(type)) {
    case QT_Q8_0: case QT_Q4_0: return MATMUL_FORM_Q8_0;
    case QT_Q4_K: case QT_Q6_K: return MATMUL_FORM_Q8_K;
    default: return 0;
    }
}

/* ---- matmul_input layout ---- */

static size_t round_up(size_t n) { return (n + ALIGN - 1) / ALIGN * ALIGN; }

/* Assigns the arrays of the forms that fit n_in, starting at base (ALIGN-aligned), or only
 * counts their bytes when base is NULL. Returns the bytes used. */
static size_t layout(struct matmul_input *in, uint8_t *base) {
    const size_t n_tok = (size_t)in->n_tok, pad = (size_t)in->n_tok_pad, n_in = (size_t)in->n_in;
    size_t off = 0;
#define CARVE(ptr, bytes)                                    \
    do {                                                     \
        if (base) (ptr) = (void *)(base + off);              \
        off += round_up(bytes);                              \
    } while (0)
    if (n_in % MATMUL_Q8_0_BLOCK == 0) {
        const size_t nb = n_in / MATMUL_Q8_0_BLOCK;
        CARVE(in->q8_0.qs, n_tok * n_in);
        CARVE(in->q8_0.d, nb * pad * sizeof(float));
        CARVE(in->q8_0.nsum8, nb * pad * sizeof(int32_t));
        CARVE(in->q8_0.nsum128, nb * pad * sizeof(int32_t));
    }
    if (n_in % MATMUL_Q8_K_BLOCK == 0) {
        const size_t nb = n_in / MATMUL_Q8_K_BLOCK;
        CARVE(in->q8_k.qs, n_tok * n_in);
        CARVE(in->q8_k.d, nb * pad * sizeof(float));
        CARVE(in->q8_k.bsums, n_tok * (n_in / 16) * sizeof(int16_t));
    }
#undef CARVE
    return off;
}

static void input_setup(struct matmul_input *in, const float *x, int64_t n_in, int64_t n_tok,
                        enum matmul_backend b) {
    memset(in, 0, sizeof *in);
    in->x = x;
    in->n_in = n_in > 0 ? n_in : 0;
    in->n_tok = n_tok > 0 ? n_tok : 0;
    in->n_tok_pad = in->n_tok <= 1 ? in->n_tok
                                   : (in->n_tok + MATMUL_TOK_GROUP - 1) / MATMUL_TOK_GROUP * MATMUL_TOK_GROUP;
    in->backend = b;
}

size_t matmul_input_size(int64_t n_in, int64_t n_tok) {
    struct matmul_input in;
    input_setup(&in, NULL, n_in, n_tok, MATMUL_AVX2);
    return round_up(sizeof in) + ALIGN + layout(&in, NULL);
}

matmul_input *matmul_input_init(void *scratch, size_t scratch_size, const float *x, int64_t n_in,
                                int64_t n_tok) {
    const size_t need = matmul_input_size(n_in, n_tok);
    if (scratch_size < need) {
        err_set("matmul input scratch of %zu bytes, %zu needed for %lld x %lld", scratch_size,
                need, (long long)n_tok, (long long)n_in);
        return NULL;
    }
    uint8_t *p = (uint8_t *)(((uintptr_t)scratch + ALIGN - 1) / ALIGN * ALIGN);
    struct matmul_input *in = (struct matmul_input *)p;
    input_setup(in, x, n_in, n_tok, matmul_backend());
    layout(in, p + round_up(sizeof *in));
    return in;
}

void matmul_input_prepare(matmul_input *in, uint32_t type) {
    const unsigned form = form_for(in->backend, type);
    if (!form || (in->ready & form)) return;
    const matmul_q8 *q = form == MATMUL_FORM_Q8_0 ? &in->q8_0 : &in->q8_k;
    if (!q->qs) return; /* n_in does not fit the blocks: matmul_rows reports NaN */
    matmul_avx2_quantize(in, form);
    in->ready |= form;
}

static void fill_nan(float *y, int64_t n_out, int64_t n_tok, int64_t row_begin, int64_t row_end) {
    for (int64_t t = 0; t < n_tok; t++)
        for (int64_t r = row_begin; r < row_end; r++) y[t * n_out + r] = NAN;
}

void matmul_prefetch(uint32_t type, const void *w, int64_t n_in, int64_t n_out, int64_t row,
                     size_t bytes) {
    const bool packed = repack_is_packed(type);
    const size_t rb = packed ? 0 : qtype_row_size(type, (uint64_t)n_in);
    const size_t at = packed ? repack_bytes(type, n_in, row) : rb * (size_t)row;
    const size_t end = packed ? repack_bytes(type, n_in, n_out) : rb * (size_t)n_out;
    if (at >= end) return;
    if (bytes > end - at) bytes = end - at;
    for (size_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char *)w + at + o, 0, 2);
}

void matmul_rows(uint32_t type, const void *w, int64_t n_out, const matmul_input *in, float *y,
                 int64_t row_begin, int64_t row_end) {
    const unsigned form = form_for(in->backend, type);
    if (repack_is_packed(type)) {
        /* only the AVX-512 kernels read packed matrices */
        if (in->backend == MATMUL_AVX512 && (!form || (in->ready & form)) &&
            repack_type_for(repack_base(type), in->n_in, n_out) == type)
            matmul_avx512_rows(type, w, n_out, in, y, row_begin, row_end);
        else
            fill_nan(y, n_out, in->n_tok, row_begin, row_end);
        return;
    }
    const bool usable = qtype_supported(type) && in->n_in > 0 &&
                        qtype_row_size(type, (uint64_t)in->n_in) != 0;
    if (in->backend == MATMUL_SCALAR || !usable) {
        /* the reference kernels also report misuse (NaN outputs) */
        matmul_scalar_rows(type, w, in->n_in, n_out, in->x, in->n_tok, y, row_begin, row_end);
    } else if (form && !(in->ready & form)) {
        fill_nan(y, n_out, in->n_tok, row_begin, row_end); /* not prepared: a caller bug */
    } else if (in->backend == MATMUL_AVX512) {
        matmul_avx512_rows(type, w, n_out, in, y, row_begin, row_end);
    } else {
        matmul_avx2_rows(type, w, n_out, in, y, row_begin, row_end);
    }
}

void matmul_mat_rows(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                     int64_t n_tok, float *y, int64_t row_begin, int64_t row_end) {
    struct matmul_input plain;
    input_setup(&plain, x, n_in, n_tok, matmul_backend());
    if (!form_for(plain.backend, type)) {
        matmul_rows(type, w, n_out, &plain, y, row_begin, row_end);
        return;
    }
    const size_t size = matmul_input_size(n_in, n_tok);
    void *scratch = malloc(size);
    matmul_input *in = scratch ? matmul_input_init(scratch, size, x, n_in, n_tok) : NULL;
    if (in) {
        matmul_input_prepare(in, type);
        matmul_rows(type, w, n_out, in, y, row_begin, row_end);
    } else {
        fill_nan(y, n_out, n_tok, row_begin, row_end);
    }
    free(scratch);
}

void matmul_mat(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                int64_t n_tok, float *y) {
    matmul_mat_rows(type, w, n_in, n_out, x, n_tok, y, 0, n_out);
}

void matmul_vec(uint32_t type, const void *w, int64_t n_in, int64_t n_out, const float *x,
                float *y) {
    matmul_mat_rows(type, w, n_in, n_out, x, 1, y, 0, n_out);
}

void matmul_get_row(uint32_t type, const void *w, int64_t n_in, int64_t row, float *out) {
    const uint8_t *wb = w;
    quant_dequantize_row(type, wb + (size_t)row * qtype_row_size(type, (uint64_t)n_in), out, n_in);
}
