// Matrix products on the GPU: y[n][n_out] = x[n][n_in] . W^T for W in any supported type.
// Small batches (decode) run our matrix-vector kernel, which decodes each weight once for
// up to CUDA_MMV_TOKENS tokens straight from its file format; larger batches go
// through cuBLAS with F32 accumulation: F32 weights by SGEMM, F16/BF16 weights directly
// (the input converted to the same type), block types dequantized to F16 a slice of rows at a
// time into a fixed scratch, so no dequantized copy of the model ever exists.
#include "cuda/cuda_dequant.cuh"
#include "cuda/cuda_internal.cuh"

#define MMV_WARPS 4          // per block
#define MMV_BLOCKS_PER_SM 4  // blocks resident per multiprocessor (at most 128 registers a thread): the grid
#define MMV_SEG 1024         // values of a row staged at once
#define MMV_SEG_BYTES 4096   // the largest segment: 1024 F32 values
#define MMV_STAGE 4          // loads per lane in flight while staging (2 KB per warp in 16-byte loads)

__host__ __device__ constexpr bool is_float_type(uint32_t t) { return t == QT_F32 || t == QT_F16 || t == QT_BF16; }

bool mm_uses_mmv(int n) { return n <= CUDA_MMV_TOKENS; }

// Up to three matrices of one type and width with the same input (Q, K, V), run as one
// launch: their rows are numbered one after the other, and the matrix of a row is the first
// whose end exceeds it (unused slots repeat the last end). In the SwiGLU form, matrices 0
// and 1 are gate and up, and output row r combines row r of both.
struct mmv_args {
    const uint8_t *w[3];
    float *y[3];
    int64_t n_out[3];
    int64_t end[3];     // rows of matrices 0..k together
    int64_t rows;       // output rows: end[2], or n_out[0] for SwiGLU
    size_t row_bytes;
    int64_t n_in;
    const float *x;     // [n_tok][n_in]
    const float *norm;  // RMSNorm weights applied to x on the fly (NULL: x as it is)
    float eps;
    int n_tok;
    int mode;           // MM_SET, MM_ADD or MM_SWIGLU
    int copy_width;     // bytes per load when staging: the largest of 16, 8, 4, 2 dividing the sizes
    size_t seg_bytes;   // bytes of MMV_SEG values
};
enum { MM_SET, MM_ADD, MM_SWIGLU };

// Copies n words of T (one warp) from global to shared memory: up to MMV_STAGE loads per
// lane in flight before the stores. Weights are read once per step: streamed past the caches.
template <typename T>
__device__ __forceinline__ void stage(uint8_t *dst, const uint8_t *src, int n, int lane) {
    for (int base = 0; base < n; base += MMV_STAGE * WARP) {
        T buf[MMV_STAGE];
#pragma unroll
        for (int k = 0; k < MMV_STAGE; k++)
            if (base + lane + WARP * k < n) buf[k] = __ldcs((const T *)src + base + lane + WARP * k);
#pragma unroll
        for (int k = 0; k < MMV_STAGE; k++)
            if (base + lane + WARP * k < n) ((T *)dst)[base + lane + WARP * k] = buf[k];
    }
}

// Four floats from p (valid of them, the rest 0): one 16-byte load when all four are there
// and p is aligned.
__device__ __forceinline__ float4 load4(const float *p, int valid, bool aligned) {
    if (valid == 4 && aligned) return __ldg((const float4 *)p);
    return make_float4(__ldg(p), valid > 1 ? __ldg(p + 1) : 0.0f, valid > 2 ? __ldg(p + 2) : 0.0f,
                       valid > 3 ? __ldg(p + 3) : 0.0f);
}

// Row g of the product's rows: of matrix mi (gate 0, up 1) in the SwiGLU form, else of the
// matrix whose rows it falls in.
__device__ __forceinline__ const uint8_t *row_of(const mmv_args &a, int64_t g, int mi) {
    if (a.mode == MM_SWIGLU) return a.w[mi] + (size_t)g * a.row_bytes;
    const int k = g < a.end[0] ? 0 : g < a.end[1] ? 1 : 2;
    return a.w[k] + (size_t)(g - (k ? a.end[k - 1] : 0)) * a.row_bytes;
}

// Segment sg of row wr into the warp's shared buffer. copy_width divides the row's and the
// segment's sizes: whole words, none past the row.
__device__ __forceinline__ void stage_segment(const mmv_args &a, uint8_t *dst, const uint8_t *wr, int64_t sg,
                                              int lane) {
    const size_t off = (size_t)sg * a.seg_bytes;
    const int bytes = (int)(a.row_bytes - off < a.seg_bytes ? a.row_bytes - off : a.seg_bytes);
    const int words = bytes / a.copy_width;
    switch (a.copy_width) {
    case 16: stage<uint4>(dst, wr + off, words, lane); break;
    case 8: stage<uint2>(dst, wr + off, words, lane); break;
    case 4: stage<unsigned>(dst, wr + off, words, lane); break;
    default: stage<unsigned short>(dst, wr + off, words, lane); break;
    }
}

// Each warp takes rows in turn (the grid is sized to the GPU, not the matrix). A row is read
// MMV_SEG values at a time: the warp copies the segment's bytes to shared memory with wide
// coalesced loads, then each lane decodes interleaved groups of four values from there
// (dequant4) and multiplies them with the n_tok <= NT tokens, whose values it reads as
// coalesced float4s; the warp sums its lanes and lane 0 writes (or adds, or combines gate and
// up). With a norm, every block first computes each token's RMS scale, and x is normalized as
// it is read: the same roundings as rmsnorm_kernel, but for the order of the sum of squares in
// double (this block's threads against rmsnorm_kernel's), which the float scale rarely sees.
// Each warp fetches its first segment before waiting for the previous kernel (pdl_begin).
template <int TYPE, int NT>
__global__ void __launch_bounds__(MMV_WARPS * WARP, MMV_BLOCKS_PER_SM) mmv_kernel(mmv_args a) {
    __shared__ __align__(16) uint8_t seg[MMV_WARPS][MMV_SEG_BYTES];
    __shared__ float s_scale[NT];
    const int lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    const bool swiglu = a.mode == MM_SWIGLU;
    const int64_t segs = (a.n_in + MMV_SEG - 1) / MMV_SEG;
    const bool x_vec = (a.n_in & 3) == 0; // token rows (and the norm) 16-byte aligned: float4 loads
    uint8_t *mine = seg[w];
    int64_t g = (int64_t)blockIdx.x * MMV_WARPS + w;
    // the first segment's weights do not depend on the previous kernel: fetched before waiting
    if (g < a.rows) stage_segment(a, mine, row_of(a, g, 0), 0, lane);
    pdl_begin();
    if (a.norm) {
        for (int t = 0; t < a.n_tok; t++) {
            double ss = 0;
            for (int64_t i = threadIdx.x; i < a.n_in; i += blockDim.x) {
                const float v = a.x[(size_t)t * a.n_in + i];
                ss += (double)v * v;
            }
            ss = block_sum_d(ss);
            if (threadIdx.x == 0) s_scale[t] = 1.0f / sqrtf((float)(ss / a.n_in) + a.eps);
        }
        __syncthreads();
    }
    for (bool staged = true; g < a.rows; g += (int64_t)gridDim.x * MMV_WARPS) {
        // gate[] (or the plain product) and up[]: indexed by constants only once the token loops
        // unroll, so they stay in registers (one array indexed by the matrix put 8 tokens' sums
        // on the stack)
        float gate[NT], up[NT];
#pragma unroll
        for (int t = 0; t < NT; t++) gate[t] = up[t] = 0.0f;
        for (int mi = 0; mi < (swiglu ? 2 : 1); mi++) {
            const uint8_t *wr = row_of(a, g, mi);
            float acc[NT];
#pragma unroll
            for (int t = 0; t < NT; t++) acc[t] = 0.0f;
            for (int64_t sg = 0; sg < segs; sg++) {
                if (!staged) {
                    __syncwarp(); // the previous segment is no longer read
                    stage_segment(a, mine, wr, sg, lane);
                }
                staged = false;
                __syncwarp();
                // lane l takes values 128 q + 4 l of the segment (q < 8): x is read coalesced
#pragma unroll 2
                for (int q = 0; q < MMV_SEG / 128; q++) {
                    const int64_t el = 128 * q + 4 * lane, e = (int64_t)sg * MMV_SEG + el;
                    if (e >= a.n_in) break;
                    const int valid = a.n_in - e < 4 ? (int)(a.n_in - e) : 4; // short only for float rows
                    float v[4];
                    dequant4<TYPE>(mine, el, valid, v);
                    const float4 nw = a.norm ? load4(a.norm + e, valid, x_vec) : make_float4(1, 1, 1, 1);
#pragma unroll
                    for (int t = 0; t < NT; t++) {
                        if (t >= a.n_tok) break;
                        const float *xt = a.x + (size_t)t * a.n_in + e;
                        float4 f = load4(xt, valid, x_vec);
                        if (a.norm) {
                            const float sc = s_scale[t];
                            f = make_float4(__fmul_rn(__fmul_rn(f.x, sc), nw.x), __fmul_rn(__fmul_rn(f.y, sc), nw.y),
                                            __fmul_rn(__fmul_rn(f.z, sc), nw.z), __fmul_rn(__fmul_rn(f.w, sc), nw.w));
                        }
                        acc[t] += v[0] * f.x + v[1] * f.y + v[2] * f.z + v[3] * f.w;
                    }
                }
            }
#pragma unroll
            for (int t = 0; t < NT; t++) {
                if (mi == 0) gate[t] = acc[t];
                else up[t] = acc[t];
            }
        }
#pragma unroll
        for (int t = 0; t < NT; t++) {
            if (t >= a.n_tok) break;
            const float s0 = warp_sum(gate[t]), s1 = swiglu ? warp_sum(up[t]) : 0.0f;
            if (lane != 0) continue;
            if (swiglu) {
                // the CPU's SwiGLU: silu(gate) * up, rounded step by step
                a.y[0][(size_t)t * a.n_out[0] + g] = __fmul_rn(__fdiv_rn(s0, __fadd_rn(1.0f, expf(-s0))), s1);
            } else {
                const int k = g < a.end[0] ? 0 : g < a.end[1] ? 1 : 2;
                float *y = a.y[k] + (size_t)t * a.n_out[k] + (g - (k ? a.end[k - 1] : 0));
                *y = a.mode == MM_ADD ? __fadd_rn(*y, s0) : s0;
            }
        }
    }
}

// Matrices ws[0..count) share type and n_in.
template <int TYPE>
static void launch_mmv(const mm_ctx *c, mmv_args *a, const dmat *const *ws, float *const *ys, int count, int n) {
    for (int i = 0; i < 3; i++) {
        const int k = i < count ? i : count - 1;
        a->w[i] = ws[k]->data;
        a->y[i] = ys[k];
        a->n_out[i] = ws[k]->n_out;
        a->end[i] = (i ? a->end[i - 1] : 0) + (i < count ? ws[i]->n_out : 0);
    }
    const dmat *w = ws[0];
    a->rows = a->mode == MM_SWIGLU ? w->n_out : a->end[2];
    a->row_bytes = w->row_bytes;
    a->n_in = w->n_in;
    a->n_tok = n;
    a->seg_bytes = qtype_row_size(TYPE, MMV_SEG);
    a->copy_width = 16;
    while (w->row_bytes % a->copy_width || a->seg_bytes % a->copy_width) a->copy_width /= 2;
    const int64_t want = (a->rows + MMV_WARPS - 1) / MMV_WARPS, most = (int64_t)c->n_sm * MMV_BLOCKS_PER_SM;
    const unsigned blocks = (unsigned)(want < most ? want : most);
#define MMV(NT) launch(c->stream, blocks, MMV_WARPS * WARP, mmv_kernel<TYPE, NT>, *a)
    if (n == 1) MMV(1);
    else if (n == 2) MMV(2);
    else if (n <= 4) MMV(4);
    else MMV(CUDA_MMV_TOKENS);
#undef MMV
}

template <bool BF16>
__global__ void to_half_kernel(const float *x, void *out, int64_t count) {
    pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    if (BF16) ((__nv_bfloat16 *)out)[i] = __float2bfloat16_rn(x[i]);
    else ((__half *)out)[i] = __float2half_rn(x[i]);
}

// Rows r0 .. r0 + n_rows of a block-type matrix, decoded to F16 ([n_rows][n_in]): a thread
// per four values, consecutive threads on consecutive values (coalesced stores).
template <int TYPE>
__global__ void dequant_f16_kernel(const uint8_t *W, size_t row_bytes, int64_t n_in, int64_t r0,
                                   int64_t n_rows, __half *out) {
    pdl_begin();
    const int64_t groups = n_in / 4, idx = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= n_rows * groups) return;
    const int64_t row = idx / groups, e = 4 * (idx % groups);
    float v[4];
    dequant4<TYPE>(W + (size_t)(r0 + row) * row_bytes, e, 4, v);
    __half2 *o = (__half2 *)(out + (size_t)row * n_in + e); // n_in % 32 == 0: aligned
    o[0] = __floats2half2_rn(v[0], v[1]);
    o[1] = __floats2half2_rn(v[2], v[3]);
}

// The input of a cuBLAS product: in->x, or its normalization in c->xn.
static const float *gemm_input(mm_ctx *c, const mm_in *in, int64_t n_in, int n) {
    if (!in->norm) return in->x;
    if (c->xn_src != in->x) {
        launch_rmsnorm(c->stream, c->xn, in->x, in->norm, n_in, in->eps, NULL, n);
        c->xn_src = in->x;
        if (c->half_src == c->xn) c->half_src = NULL; // its F16/BF16 copy is stale
    }
    return c->xn;
}

// y (+)= x . w^T through cuBLAS: input converted to w's half type once per input.
static int gemm(mm_ctx *c, const dmat *w, const float *x, int n, float *y, bool add) {
    cudaStream_t s = c->stream;
    if (w->type == QT_F32)
        return blas_sgemm_tn(c->blas, (int)w->n_out, n, (int)w->n_in, (const float *)w->data, x, y, (int)w->n_out, add);
    const uint32_t act = w->type == QT_BF16 ? QT_BF16 : QT_F16;
    const cudaDataType at = act == QT_BF16 ? CUDA_R_16BF : CUDA_R_16F;
    if (c->half_src != x || c->half_type != act) {
        const int64_t count = (int64_t)n * w->n_in;
        const unsigned blocks = (unsigned)((count + 255) / 256);
        if (act == QT_BF16) launch(s, blocks, 256, to_half_kernel<true>, x, c->half, count);
        else launch(s, blocks, 256, to_half_kernel<false>, x, c->half, count);
        c->half_src = x;
        c->half_type = act;
    }
    if (is_float_type(w->type))
        return blas_gemm_tn(c->blas, (int)w->n_out, n, (int)w->n_in, w->data, c->half, at, y, (int)w->n_out, add);
    if (!c->deq) return err_set("cuda: no dequantization scratch for a batch of %d tokens", n);
    // slices of a multiple of 256 rows where the scratch allows, so that y + r0 stays aligned
    // as cuBLAS's fast paths want it
    int64_t slice = (int64_t)(CUDA_DEQ_SCRATCH / (2 * (size_t)w->n_in));
    if (slice > 256) slice -= slice % 256;
    for (int64_t r0 = 0; r0 < w->n_out; r0 += slice) {
        const int64_t nr = w->n_out - r0 < slice ? w->n_out - r0 : slice;
        const unsigned blocks = (unsigned)((nr * (w->n_in / 4) + 255) / 256);
#define DEQ(T) launch(s, blocks, 256, dequant_f16_kernel<T>, w->data, w->row_bytes, w->n_in, r0, nr, (__half *)c->deq)
        DQ_DISPATCH(w->type, DEQ)
#undef DEQ
        if (blas_gemm_tn(c->blas, (int)nr, n, (int)w->n_in, c->deq, c->half, CUDA_R_16F, y + r0, (int)w->n_out, add))
            return -1;
    }
    return cu_check(cudaGetLastError(), "dequantize kernel");
}

static bool one_type(const dmat *const *ws, int count) {
    for (int i = 1; i < count; i++)
        if (ws[i]->type != ws[0]->type) return false;
    return true;
}

static int mmv(mm_ctx *c, int mode, const dmat *const *ws, float *const *ys, int count, const mm_in *in, int n) {
    mmv_args a = {};
    a.x = in->x;
    a.norm = in->norm;
    a.eps = in->eps;
    a.mode = mode;
#define RUN(T) launch_mmv<T>(c, &a, ws, ys, count, n)
    DQ_DISPATCH(ws[0]->type, RUN)
#undef RUN
    return cu_check(cudaGetLastError(), "matrix-vector kernel");
}

int mm_run_many(mm_ctx *c, const dmat *const *ws, float *const *ys, int count, const mm_in *in, int n) {
    if (mm_uses_mmv(n) && one_type(ws, count)) return mmv(c, MM_SET, ws, ys, count, in, n);
    for (int i = 0; i < count; i++) {
        if (mm_uses_mmv(n)) {
            if (mmv(c, MM_SET, &ws[i], &ys[i], 1, in, n)) return -1;
        } else if (gemm(c, ws[i], gemm_input(c, in, ws[i]->n_in, n), n, ys[i], false)) {
            return -1;
        }
    }
    return 0;
}

int mm_run(mm_ctx *c, const dmat *w, const mm_in *in, int n, float *y, bool add) {
    if (mm_uses_mmv(n)) return mmv(c, add ? MM_ADD : MM_SET, &w, &y, 1, in, n);
    return gemm(c, w, gemm_input(c, in, w->n_in, n), n, y, add);
}

int mm_run_swiglu(mm_ctx *c, const dmat *gate, const dmat *up, const mm_in *in, int n, float *act, float *up_out) {
    const dmat *ws[2] = {gate, up};
    float *ys[2] = {act, up_out};
    if (mm_uses_mmv(n) && one_type(ws, 2)) return mmv(c, MM_SWIGLU, ws, ys, 2, in, n);
    if (mm_run_many(c, ws, ys, 2, in, n)) return -1;
    launch_swiglu(c->stream, act, up_out, (int64_t)n * gate->n_out);
    return cu_check(cudaGetLastError(), "SwiGLU");
}
