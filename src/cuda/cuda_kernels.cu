// The forward pass's elementwise kernels and attention on the GPU (launchers declared in
// cuda_internal.cuh). Each mirrors its step in src/model/forward.c: RMSNorm sums in double,
// RoPE angles in double, multiplies and adds rounded one at a time where the CPU does so.
#include "cuda/cuda_dequant.cuh"
#include "cuda/cuda_internal.cuh"

#include <math.h>

#define WARP 32

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum_d(double v) {
#pragma unroll
    for (int o = WARP / 2; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets it.
__device__ double block_sum_d(double v) {
    __shared__ double part[32];
    const int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = blockDim.x / WARP;
    v = warp_sum_d(v);
    __syncthreads(); // part[] may still be read by a previous call
    if (lane == 0) part[w] = v;
    __syncthreads();
    double t = lane < nw ? part[lane] : 0.0;
    return warp_sum_d(t);
}

static unsigned blocks_for(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

// ---- embeddings -------------------------------------------------------------------------

template <int TYPE>
__global__ void embed_kernel(const uint8_t *data, size_t row_bytes, int64_t n_in, const int32_t *tokens,
                             float *x) {
    const int t = blockIdx.y;
    const int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x, chunks = (n_in + 31) / 32;
    if (c >= chunks) return;
    const int valid = (int)(n_in - 32 * c < 32 ? n_in - 32 * c : 32);
    float v[32];
    dequant32<TYPE>(data + (size_t)tokens[t] * row_bytes, c, valid, v);
    float *out = x + (size_t)t * n_in + 32 * c;
    for (int j = 0; j < valid; j++) out[j] = v[j];
}

void launch_embed(cudaStream_t s, const dmat *emb, const int32_t *tokens, int n, float *x) {
    dim3 grid(blocks_for((emb->n_in + 31) / 32, 64), n);
#define EMBED(T) embed_kernel<T><<<grid, 64, 0, s>>>(emb->data, emb->row_bytes, emb->n_in, tokens, x)
    DQ_DISPATCH(emb->type, EMBED)
#undef EMBED
}

// ---- RMSNorm ------------------------------------------------------------------------------

__global__ void rmsnorm_kernel(float *out, float *x, const float *w, int64_t dim, float eps,
                               const int32_t *gather, const float *add) {
    const int r = blockIdx.x;
    float *xr = x + (size_t)(gather ? gather[r] : r) * dim;
    float *o = out + (size_t)r * dim;
    double ss = 0;
    // each thread reads and writes only its own elements until the block sum: add may be out
    if (add)
        for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) xr[i] = __fadd_rn(xr[i], add[(size_t)r * dim + i]);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss);
    const float scale = 1.0f / sqrtf((float)(ss / dim) + eps);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

void launch_rmsnorm(cudaStream_t s, float *out, float *x, const float *w, int64_t dim, float eps,
                    const int32_t *gather, const float *add, int n_rows) {
    rmsnorm_kernel<<<n_rows, 256, 0, s>>>(out, x, w, dim, eps, gather, add);
}

// ---- RoPE and QK-norm -------------------------------------------------------------------

__global__ void rope_table_kernel(float *cs, const int32_t *pos, const double *freq, int half) {
    const int t = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= half) return;
    const double theta = pos[t] * freq[i]; // double: long contexts stay exact
    cs[((size_t)t * half + i) * 2] = (float)cos(theta);
    cs[((size_t)t * half + i) * 2 + 1] = (float)sin(theta);
}

void launch_rope_table(cudaStream_t s, float *cs, const int32_t *pos, const double *freq, int n, int half) {
    rope_table_kernel<<<dim3(blocks_for(half, 64), n), 64, 0, s>>>(cs, pos, freq, half);
}

__global__ void add_bias_kernel(float *y, const float *b, int64_t width, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) y[i] = __fadd_rn(y[i], b[i % width]);
}

void launch_add_bias(cudaStream_t s, float *y, const float *b, int n, int64_t width) {
    const int64_t count = (int64_t)n * width;
    add_bias_kernel<<<blocks_for(count, 256), 256, 0, s>>>(y, b, width, count);
}

// One block per (token, head): q heads first, then k heads. head_dim <= CUDA_MAX_HEAD_DIM
// (cuda_model_new checks), so a head fits shared memory.
#define CUDA_MAX_HEAD_DIM 256
__global__ void qk_norm_rope_kernel(float *q, float *k, const float *q_norm, const float *k_norm,
                                    const float *cs, int n_head, int hd, int rope_half, bool neox,
                                    float eps) {
    __shared__ float head[CUDA_MAX_HEAD_DIM];
    const int t = blockIdx.x, h = blockIdx.y;
    const bool is_q = h < n_head;
    const int n_heads_here = is_q ? n_head : (int)gridDim.y - n_head;
    float *vec = (is_q ? q : k) + ((size_t)t * n_heads_here + (is_q ? h : h - n_head)) * hd;
    const float *norm = is_q ? q_norm : k_norm;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) head[i] = vec[i];
    if (norm) {
        double ss = 0;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += (double)head[i] * head[i];
        ss = block_sum_d(ss); // synchronizes: head[] is complete
        const float scale = 1.0f / sqrtf((float)(ss / hd) + eps);
        for (int i = threadIdx.x; i < hd; i += blockDim.x) head[i] = __fmul_rn(__fmul_rn(head[i], scale), norm[i]);
    }
    __syncthreads();
    const float *c = cs + (size_t)t * rope_half * 2;
    for (int i = threadIdx.x; i < rope_half; i += blockDim.x) {
        // NORM pairs adjacent elements; NEOX pairs element i with i + rope_dim/2
        const int a = neox ? i : 2 * i, b = neox ? i + rope_half : 2 * i + 1;
        const float x0 = head[a], x1 = head[b], co = c[2 * i], sn = c[2 * i + 1];
        head[a] = __fsub_rn(__fmul_rn(x0, co), __fmul_rn(x1, sn));
        head[b] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, co));
    }
    __syncthreads();
    for (int i = threadIdx.x; i < hd; i += blockDim.x) vec[i] = head[i];
}

void launch_qk_norm_rope(cudaStream_t s, float *q, float *k, const float *q_norm, const float *k_norm,
                         const float *cs, const model_hparams *hp, int n) {
    dim3 grid(n, hp->n_head + hp->n_head_kv);
    const int threads = hp->head_dim >= 128 ? 128 : 64;
    qk_norm_rope_kernel<<<grid, threads, 0, s>>>(q, k, q_norm, k_norm, cs, hp->n_head, hp->head_dim,
                                                  hp->rope_dim / 2, hp->rope_neox, hp->rms_eps);
}

// ---- KV cache -----------------------------------------------------------------------------

// Row (in units of kv_dim floats) of position p of layer il: model_kv's layout
// [block][layer][slot][kv_dim], the block from the sequence's table.
__device__ __forceinline__ int64_t kv_row(const int32_t *table, int32_t p, int il, int n_layer) {
    const int64_t block = table[p / MODEL_KV_BLOCK];
    return (block * n_layer + il) * MODEL_KV_BLOCK + p % MODEL_KV_BLOCK;
}

__global__ void kv_store_kernel(const float *k, const float *v, float *const *kv_ptrs, const int32_t *pos,
                                const int32_t *bt_off, const int32_t *bt, int il, int n_layer,
                                int64_t kv_dim) {
    const int t = blockIdx.y;
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= kv_dim) return;
    const int64_t row = kv_row(bt + bt_off[t], pos[t], il, n_layer);
    kv_ptrs[2 * t][row * kv_dim + i] = k[(size_t)t * kv_dim + i];
    kv_ptrs[2 * t + 1][row * kv_dim + i] = v[(size_t)t * kv_dim + i];
}

void launch_kv_store(cudaStream_t s, const float *k, const float *v, float *const *kv_ptrs,
                     const int32_t *pos, const int32_t *bt_off, const int32_t *bt, int n, int il,
                     int n_layer, int64_t kv_dim) {
    kv_store_kernel<<<dim3(blocks_for(kv_dim, 128), n), 128, 0, s>>>(k, v, kv_ptrs, pos, bt_off, bt, il,
                                                                      n_layer, kv_dim);
}

// ---- attention ----------------------------------------------------------------------------
// One block of ATT_WARPS warps per (token, head). Each warp walks every ATT_WARPS-th position
// with an online softmax (running max, sum and weighted V in registers: lane owns dimensions
// lane, lane + 32, ...), then the warps' partial results are merged through shared memory.
// No buffer of scores, so any context length works.
#define ATT_WARPS 4

template <int EPL> // head dimensions per lane: ceil(head_dim / 32)
__global__ void __launch_bounds__(ATT_WARPS * WARP)
attention_kernel(const float *q, float *const *kv_ptrs, const int32_t *pos, const int32_t *bt_off,
                 const int32_t *bt, float *out, int n_head, int group, int hd, int il, int n_layer,
                 int64_t kv_dim, float scale) {
    __shared__ float s_m[ATT_WARPS], s_l[ATT_WARPS], s_acc[ATT_WARPS][EPL * WARP];
    const int t = blockIdx.x, h = blockIdx.y, lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    const int n_pos = pos[t] + 1;
    const int32_t *table = bt + bt_off[t];
    const float *K = kv_ptrs[2 * t], *V = kv_ptrs[2 * t + 1];
    const float *qh = q + ((size_t)t * n_head + h) * hd;
    const int64_t koff = (int64_t)(h / group) * hd;
    float qr[EPL], acc[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        const int d = lane + WARP * e;
        qr[e] = d < hd ? qh[d] : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int p = w; p < n_pos; p += ATT_WARPS) {
        const int64_t base = kv_row(table, p, il, n_layer) * kv_dim + koff;
        float dot = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            const int d = lane + WARP * e;
            if (d < hd) dot += qr[e] * K[base + d];
        }
        const float sc = warp_sum(dot) * scale;
        const float m_new = fmaxf(m, sc), corr = expf(m - m_new), p_w = expf(sc - m_new);
        l = l * corr + p_w;
#pragma unroll
        for (int e = 0; e < EPL; e++) {
            const int d = lane + WARP * e;
            acc[e] = acc[e] * corr + (d < hd ? p_w * V[base + d] : 0.0f);
        }
        m = m_new;
    }
    if (lane == 0) {
        s_m[w] = m;
        s_l[w] = l;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) s_acc[w][lane + WARP * e] = acc[e];
    __syncthreads();
    if (w != 0) return;
    // warp 0 saw position 0, so the overall max is finite; idle warps have m = -inf, l = 0
    float M = s_m[0];
    for (int i = 1; i < ATT_WARPS; i++) M = fmaxf(M, s_m[i]);
    float L = 0.0f, f[ATT_WARPS];
    for (int i = 0; i < ATT_WARPS; i++) {
        f[i] = s_l[i] > 0.0f ? expf(s_m[i] - M) : 0.0f;
        L += s_l[i] * f[i];
    }
    float *o = out + ((size_t)t * n_head + h) * hd;
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        const int d = lane + WARP * e;
        if (d >= hd) continue;
        float sum = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++) sum += s_acc[i][d] * f[i];
        o[d] = sum / L;
    }
}

void launch_attention(cudaStream_t s, const float *q, float *const *kv_ptrs, const int32_t *pos,
                      const int32_t *bt_off, const int32_t *bt, float *out, const model_hparams *hp,
                      int n, int il) {
    dim3 grid(n, hp->n_head);
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int group = hp->n_head / hp->n_head_kv, epl = (hp->head_dim + WARP - 1) / WARP;
    const float scale = 1.0f / sqrtf((float)hp->head_dim);
#define ATT(E)                                                                                 \
    attention_kernel<E><<<grid, ATT_WARPS * WARP, 0, s>>>(q, kv_ptrs, pos, bt_off, bt, out,   \
                                                          hp->n_head, group, hp->head_dim, il, \
                                                          hp->n_layer, kv_dim, scale)
    if (epl <= 1) ATT(1);
    else if (epl <= 2) ATT(2);
    else if (epl <= 4) ATT(4);
    else ATT(8);
#undef ATT
}

// ---- FFN and residuals --------------------------------------------------------------------

__global__ void swiglu_kernel(float *gate, const float *up, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const float g = gate[i];
    gate[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
}

void launch_swiglu(cudaStream_t s, float *gate, const float *up, int64_t count) {
    swiglu_kernel<<<blocks_for(count, 256), 256, 0, s>>>(gate, up, count);
}

__global__ void add_kernel(float *x, const float *y, int64_t count) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) x[i] = __fadd_rn(x[i], y[i]);
}

void launch_add(cudaStream_t s, float *x, const float *y, int64_t count) {
    add_kernel<<<blocks_for(count, 256), 256, 0, s>>>(x, y, count);
}
