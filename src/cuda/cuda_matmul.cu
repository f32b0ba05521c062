// Matrix products on the GPU: y[n][n_out] = x[n][n_in] . W^T for W in any supported type.
// Small batches (decode) run our matrix-vector kernel, which decodes each weight once per
// group of up to CUDA_MMV_TOKENS tokens straight from its file format; larger batches go
// through cuBLAS with F32 accumulation: F32 weights by SGEMM, F16/BF16 weights directly
// (the input converted to the same type), block types dequantized to F16 a slice of rows at a
// time into a fixed scratch, so no dequantized copy of the model ever exists.
#include "cuda/cuda_dequant.cuh"
#include "cuda/cuda_internal.cuh"

#define WARP 32
#define MMV_WARPS 4 // one output row per warp

__host__ __device__ constexpr bool is_float_type(uint32_t t) { return t == QT_F32 || t == QT_F16 || t == QT_BF16; }

bool mm_uses_mmv(uint32_t type, int n) { return n <= (is_float_type(type) ? CUDA_MMV_TOKENS : CUDA_MMV_MAX); }

// Up to three matrices of one type and width with the same input (Q, K, V; gate, up), run
// as one launch: their rows are numbered one after the other. Unused slots repeat the last
// `end`, so the matrix of a row is the first whose end exceeds it.
struct mmv_rows {
    const uint8_t *w[3];
    float *y[3];
    int64_t n_out[3];
    int64_t end[3]; // rows of matrices 0..k together
};

// Each lane takes every 32nd chunk of 32 values of the row, decodes it once and multiplies it
// with the NT tokens of this block's group (blockIdx.y); the warp then sums its lanes.
template <int TYPE, int NT>
__global__ void __launch_bounds__(MMV_WARPS * WARP)
mmv_kernel(mmv_rows m, size_t row_bytes, int64_t n_in, const float *x, int n_tok) {
    const int lane = threadIdx.x % WARP;
    const int64_t g = (int64_t)blockIdx.x * MMV_WARPS + threadIdx.x / WARP;
    if (g >= m.end[2]) return; // whole warps leave: the shuffles below see every lane
    const int k = g < m.end[0] ? 0 : g < m.end[1] ? 1 : 2;
    const int64_t row = g - (k ? m.end[k - 1] : 0), n_out = m.n_out[k];
    float *y = m.y[k];
    const int t0 = blockIdx.y * NT, nt = n_tok - t0 < NT ? n_tok - t0 : NT;
    const uint8_t *wr = m.w[k] + (size_t)row * row_bytes;
    const int64_t chunks = (n_in + 31) / 32;
    const bool x_vec = (n_in & 3) == 0; // token rows 16-byte aligned: float4 loads
    float acc[NT];
#pragma unroll
    for (int t = 0; t < NT; t++) acc[t] = 0.0f;
    for (int64_t c = lane; c < chunks; c += WARP) {
        // block types fill whole chunks (rows are whole blocks); float rows may end short
        const int valid = !is_float_type(TYPE) ? 32 : (int)(n_in - 32 * c < 32 ? n_in - 32 * c : 32);
        float v[32];
        dequant32<TYPE>(wr, c, valid, v);
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= nt) break;
            const float *xt = x + (size_t)(t0 + t) * n_in + 32 * c;
            float s = 0.0f;
            if (valid == 32 && x_vec) {
#pragma unroll
                for (int q = 0; q < 8; q++) {
                    const float4 f = __ldg((const float4 *)xt + q);
                    s += v[4 * q] * f.x;
                    s += v[4 * q + 1] * f.y;
                    s += v[4 * q + 2] * f.z;
                    s += v[4 * q + 3] * f.w;
                }
            } else {
#pragma unroll
                for (int j = 0; j < 32; j++)
                    if (j < valid) s += v[j] * __ldg(xt + j);
            }
            acc[t] += s;
        }
    }
#pragma unroll
    for (int t = 0; t < NT; t++) {
        float s = acc[t];
#pragma unroll
        for (int o = WARP / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (lane == 0 && t < nt) y[(size_t)(t0 + t) * n_out + row] = s;
    }
}

// Matrices ws[0..count) share type and n_in.
template <int TYPE>
static void launch_mmv(cudaStream_t s, const dmat *const *ws, float *const *ys, int count, const float *x, int n) {
    mmv_rows m = {};
    for (int i = 0; i < 3; i++) {
        const int k = i < count ? i : count - 1;
        m.w[i] = ws[k]->data;
        m.y[i] = ys[k];
        m.n_out[i] = ws[k]->n_out;
        m.end[i] = (i ? m.end[i - 1] : 0) + (i < count ? ws[i]->n_out : 0);
    }
    const unsigned blocks = (unsigned)((m.end[2] + MMV_WARPS - 1) / MMV_WARPS);
    const dmat *w = ws[0];
#define MMV(NT)                                                                                \
    mmv_kernel<TYPE, NT><<<dim3(blocks, (n + NT - 1) / NT), MMV_WARPS * WARP, 0, s>>>(         \
        m, w->row_bytes, w->n_in, x, n)
    if (n == 1) MMV(1);
    else if (n == 2) MMV(2);
    else if (n <= 4) MMV(4);
    else MMV(CUDA_MMV_TOKENS);
#undef MMV
}

template <bool BF16>
__global__ void to_half_kernel(const float *x, void *out, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    if (BF16) ((__nv_bfloat16 *)out)[i] = __float2bfloat16_rn(x[i]);
    else ((__half *)out)[i] = __float2half_rn(x[i]);
}

// Rows r0 .. r0 + n_rows of a block-type matrix, decoded to F16 ([n_rows][n_in]).
template <int TYPE>
__global__ void dequant_f16_kernel(const uint8_t *W, size_t row_bytes, int64_t n_in, int64_t r0,
                                   int64_t n_rows, __half *out) {
    const int64_t chunks = n_in / 32, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_rows * chunks) return;
    const int64_t row = idx / chunks, c = idx % chunks;
    float v[32];
    dequant32<TYPE>(W + (size_t)(r0 + row) * row_bytes, c, 32, v);
    __half2 *o = (__half2 *)(out + (size_t)row * n_in + 32 * c); // n_in % 32 == 0: aligned
#pragma unroll
    for (int j = 0; j < 16; j++) o[j] = __floats2half2_rn(v[2 * j], v[2 * j + 1]);
}

int mm_run_many(mm_ctx *c, const dmat *const *ws, float *const *ys, int count, const float *x, int n) {
    bool one_launch = true;
    for (int i = 0; i < count; i++)
        one_launch &= ws[i]->type == ws[0]->type && (mm_uses_mmv(ws[i]->type, n) || !c->half);
    if (!one_launch) {
        for (int i = 0; i < count; i++)
            if (mm_run(c, ws[i], x, n, ys[i])) return -1;
        return 0;
    }
#define RUN(T) launch_mmv<T>(c->stream, ws, ys, count, x, n)
    DQ_DISPATCH(ws[0]->type, RUN)
#undef RUN
    return cu_check(cudaGetLastError(), "matrix-vector kernel");
}

int mm_run(mm_ctx *c, const dmat *w, const float *x, int n, float *y) {
    cudaStream_t s = c->stream;
    if (mm_uses_mmv(w->type, n) || !c->half) return mm_run_many(c, &w, &y, 1, x, n);
    if (w->type == QT_F32)
        return blas_sgemm_tn(c->blas, (int)w->n_out, n, (int)w->n_in, (const float *)w->data, x, y, (int)w->n_out);
    const uint32_t act = w->type == QT_BF16 ? QT_BF16 : QT_F16;
    const cudaDataType at = act == QT_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    if (c->half_src != x || c->half_type != act) {
        const int64_t count = (int64_t)n * w->n_in;
        const unsigned blocks = (unsigned)((count + 255) / 256);
        if (act == QT_BF16) to_half_kernel<true><<<blocks, 256, 0, s>>>(x, c->half, count);
        else to_half_kernel<false><<<blocks, 256, 0, s>>>(x, c->half, count);
        c->half_src = x;
        c->half_type = act;
    }
    if (is_float_type(w->type))
        return blas_gemm_tn(c->blas, (int)w->n_out, n, (int)w->n_in, w->data, c->half, at, y, (int)w->n_out);
    if (!c->deq) return err_set("cuda: no dequantization scratch for a batch of %d tokens", n);
    const int64_t slice = (int64_t)(CUDA_DEQ_SCRATCH / (2 * (size_t)w->n_in));
    for (int64_t r0 = 0; r0 < w->n_out; r0 += slice) {
        const int64_t nr = w->n_out - r0 < slice ? w->n_out - r0 : slice;
        const unsigned blocks = (unsigned)((nr * (w->n_in / 32) + 127) / 128);
#define DEQ(T) dequant_f16_kernel<T><<<blocks, 128, 0, s>>>(w->data, w->row_bytes, w->n_in, r0, nr, (__half *)c->deq)
        DQ_DISPATCH(w->type, DEQ)
#undef DEQ
        if (blas_gemm_tn(c->blas, (int)nr, n, (int)w->n_in, c->deq, c->half, CUDA_R_16F, y + r0, (int)w->n_out))
            return -1;
    }
    return cu_check(cudaGetLastError(), "dequantize kernel");
}
