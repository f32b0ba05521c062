// The forward pass's elementwise kernels on the GPU (launchers declared in cuda_internal.cuh;
// attention has its own file, cuda_attention.cu). Each mirrors its step in
// src/model/forward.c: RMSNorm sums in double, RoPE angles in double, multiplies and adds
// rounded one at a time where the CPU does so.
#include "cuda/cuda_dequant.cuh"
#include "cuda/cuda_internal.cuh"

#include <math.h>

static unsigned blocks_for(int64_t n, int per) { return (unsigned)((n + per - 1) / per); }

// ---- embeddings -------------------------------------------------------------------------

template <int TYPE>
__global__ void embed_kernel(const uint8_t *data, size_t row_bytes, int64_t n_in, const int32_t *tokens,
                             float *x) {
    pdl_begin();
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
#define EMBED(T) launch(s, grid, 64, embed_kernel<T>, emb->data, emb->row_bytes, emb->n_in, tokens, x)
    DQ_DISPATCH(emb->type, EMBED)
#undef EMBED
}

// ---- RMSNorm ------------------------------------------------------------------------------

__global__ void rmsnorm_kernel(float *out, const float *x, const float *w, int64_t dim, float eps,
                               const int32_t *gather) {
    pdl_begin();
    const int r = blockIdx.x;
    const float *xr = x + (size_t)(gather ? gather[r] : r) * dim;
    float *o = out + (size_t)r * dim;
    double ss = 0;
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += (double)xr[i] * xr[i];
    ss = block_sum_d(ss);
    const float scale = 1.0f / sqrtf((float)(ss / dim) + eps);
    for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = __fmul_rn(__fmul_rn(xr[i], scale), w[i]);
}

void launch_rmsnorm(cudaStream_t s, float *out, const float *x, const float *w, int64_t dim, float eps,
                    const int32_t *gather, int n_rows) {
    launch(s, n_rows, 256, rmsnorm_kernel, out, x, w, dim, eps, gather);
}

// ---- RoPE and QK-norm -------------------------------------------------------------------

__global__ void rope_table_kernel(float *cs, const int32_t *pos, const double *freq, int half) {
    pdl_begin();
    const int t = blockIdx.y, i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= half) return;
    const double theta = pos[t] * freq[i]; // double: long contexts stay exact
    cs[((size_t)t * half + i) * 2] = (float)cos(theta);
    cs[((size_t)t * half + i) * 2 + 1] = (float)sin(theta);
}

void launch_rope_table(cudaStream_t s, float *cs, const int32_t *pos, const double *freq, int n, int half) {
    launch(s, dim3(blocks_for(half, 64), n), 64, rope_table_kernel, cs, pos, freq, half);
}

__global__ void add_bias_kernel(float *y, const float *b, int64_t width, int64_t count) {
    pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) y[i] = __fadd_rn(y[i], b[i % width]);
}

void launch_add_bias(cudaStream_t s, float *y, const float *b, int n, int64_t width) {
    const int64_t count = (int64_t)n * width;
    launch(s, blocks_for(count, 256), 256, add_bias_kernel, y, b, width, count);
}

// One block per (token, head): q heads first, then k heads, then v heads. Q and K heads get
// their RMSNorm (when the model has one) and RoPE; Q goes back in place, K and V go straight
// to their sequence's KV block for layer il. head_dim <= CUDA_MAX_HEAD_DIM (cuda_model_new
// checks), so a head fits shared memory.
#define CUDA_MAX_HEAD_DIM 256
__global__ void qkv_finish_kernel(qkv_finish a, int n_head, int n_kv, int hd, int rope_half, bool neox, float eps,
                                  int il, int n_layer) {
    pdl_begin();
    __shared__ float head[CUDA_MAX_HEAD_DIM];
    const int t = blockIdx.x, h = blockIdx.y;
    const int64_t kv_dim = (int64_t)n_kv * hd;
    if (h >= n_head + n_kv) { // a V head: only stored
        const int hv = h - n_head - n_kv;
        float *dst = a.kv[2 * t + 1] + kv_row(a.bt + a.bt_off[t], a.pos[t], il, n_layer) * kv_dim + (int64_t)hv * hd;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) dst[i] = a.v[(size_t)t * kv_dim + (size_t)hv * hd + i];
        return;
    }
    const bool is_q = h < n_head;
    float *qh = a.q + ((size_t)t * n_head + h) * hd;
    const float *src = is_q ? qh : a.k + (size_t)t * kv_dim + (size_t)(h - n_head) * hd;
    const float *norm = is_q ? a.q_norm : a.k_norm;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) head[i] = src[i];
    if (norm) {
        double ss = 0;
        for (int i = threadIdx.x; i < hd; i += blockDim.x) ss += (double)head[i] * head[i];
        ss = block_sum_d(ss); // synchronizes: head[] is complete
        const float scale = 1.0f / sqrtf((float)(ss / hd) + eps);
        for (int i = threadIdx.x; i < hd; i += blockDim.x) head[i] = __fmul_rn(__fmul_rn(head[i], scale), norm[i]);
    }
    __syncthreads();
    const float *c = a.cs + (size_t)t * rope_half * 2;
    for (int i = threadIdx.x; i < rope_half; i += blockDim.x) {
        // NORM pairs adjacent elements; NEOX pairs element i with i + rope_dim/2
        const int x = neox ? i : 2 * i, y = neox ? i + rope_half : 2 * i + 1;
        const float x0 = head[x], x1 = head[y], co = c[2 * i], sn = c[2 * i + 1];
        head[x] = __fsub_rn(__fmul_rn(x0, co), __fmul_rn(x1, sn));
        head[y] = __fadd_rn(__fmul_rn(x0, sn), __fmul_rn(x1, co));
    }
    __syncthreads();
    float *dst = is_q ? qh
                      : a.kv[2 * t] + kv_row(a.bt + a.bt_off[t], a.pos[t], il, n_layer) * kv_dim +
                            (int64_t)(h - n_head) * hd;
    for (int i = threadIdx.x; i < hd; i += blockDim.x) dst[i] = head[i];
}

void launch_qkv_finish(cudaStream_t s, const qkv_finish *a, const model_hparams *hp, int n, int il) {
    dim3 grid(n, hp->n_head + 2 * hp->n_head_kv);
    const int threads = hp->head_dim >= 128 ? 128 : 64;
    launch(s, grid, threads, qkv_finish_kernel, *a, hp->n_head, hp->n_head_kv, hp->head_dim, hp->rope_dim / 2,
                                                hp->rope_neox, hp->rms_eps, il, hp->n_layer);
}

// ---- FFN and residuals --------------------------------------------------------------------

__global__ void swiglu_kernel(float *gate, const float *up, int64_t count) {
    pdl_begin();
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= count) return;
    const float g = gate[i];
    gate[i] = __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), up[i]);
}

void launch_swiglu(cudaStream_t s, float *gate, const float *up, int64_t count) {
    launch(s, blocks_for(count, 256), 256, swiglu_kernel, gate, up, count);
}
