// Shared by the CUDA backend's .cu files (never included from C): the device copy of a model,
// the kernels' launchers, and error helpers. The public C interface is cuda.h.
#ifndef VEIL_CUDA_INTERNAL_CUH
#define VEIL_CUDA_INTERNAL_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "base/err.h"
#include "cuda/cuda.h"
#include "cuda/cuda_plan.h"
#include "tensor/qtype.h"
}

// A weight matrix in device memory: n_out rows of n_in elements of `type`, row_bytes apart.
struct dmat {
    uint32_t type;
    int64_t n_in, n_out;
    size_t row_bytes;
    const uint8_t *data;
};

struct dlayer {
    const float *attn_norm, *ffn_norm, *q_norm, *k_norm, *bq, *bk, *bv; // F32; NULL when absent
    dmat wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct cuda_model {
    const model *m;
    int dev;
    int n_sm; // multiprocessors
    char desc[160];
    uint8_t *weights; // one allocation, laid out by cuda_plan_weights
    dmat tok_embd, output;
    const float *output_norm;
    dlayer *layers; // host array of device views
};

// The KV store behind a model_kv on the GPU, F32 in its own layout ([block][layer][slot][kv_dim]);
// the CPU store is laid out by (layer, KV head) since the F16 KV work, the GPU one is not.
struct cuda_kv {
    float *k, *v;
    int32_t n_blocks;
};

#define WARP 32

// ---- programmatic dependent launch ---------------------------------------------------------
// Every kernel of ours is launched with launch() and begins with pdl_begin(). On Hopper a
// kernel so launched may start while the one before it in the stream is still finishing (once
// all of that one's blocks have begun): its blocks can fetch what does not depend on the
// previous kernel (weights) before pdl_wait() blocks until the previous kernel is complete and
// its writes are visible. Kernels without independent work call pdl_begin() first thing, which
// waits at once and lets the next kernel launch. VEIL_CUDA_PDL=0 launches plainly.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_release() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
__device__ __forceinline__ void pdl_begin() {
    pdl_wait();
    pdl_release();
}

bool pdl_enabled(void); // cuda_model.cu: VEIL_CUDA_PDL, read once

template <typename... Params, typename... Args>
static inline void launch(cudaStream_t s, dim3 grid, dim3 block, void (*kernel)(Params...), Args... args) {
    cudaLaunchConfig_t cfg = {};
    cudaLaunchAttribute attr[1];
    cfg.gridDim = grid;
    cfg.blockDim = block;
    cfg.stream = s;
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    cfg.attrs = attr;
    cfg.numAttrs = pdl_enabled() ? 1 : 0;
    cudaLaunchKernelEx(&cfg, kernel, static_cast<Params>(args)...);
}

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
__device__ __forceinline__ double block_sum_d(double v) {
    __shared__ double part[32];
    const int lane = threadIdx.x % WARP, w = threadIdx.x / WARP, nw = blockDim.x / WARP;
    v = warp_sum_d(v);
    __syncthreads(); // part[] may still be read by a previous call
    if (lane == 0) part[w] = v;
    __syncthreads();
    double t = lane < nw ? part[lane] : 0.0;
    return warp_sum_d(t);
}

// Row (in units of kv_dim floats) of position p of layer il: model_kv's layout
// [block][layer][slot][kv_dim], the block from the sequence's table.
__device__ __forceinline__ int64_t kv_row(const int32_t *table, int32_t p, int il, int n_layer) {
    const int64_t block = table[p / MODEL_KV_BLOCK];
    return (block * n_layer + il) * MODEL_KV_BLOCK + p % MODEL_KV_BLOCK;
}

// The device hook (forward.h) every CUDA runner and KV store is wrapped with (cuda_runner.cu).
extern const model_backend cuda_backend;
// Frees a cuda_kv (cuda_model.cu): cuda_backend's kv_free.
void cuda_kv_release(void *impl);
// Selects cm's GPU for this thread and checks that `bytes` more fit its free memory, leaving
// a margin for cuBLAS and the driver; -1 + err_msg() naming `what`, the need and what is free.
int cuda_reserve(const cuda_model *cm, size_t bytes, const char *what);

// -1 with err_msg() "cuda: WHAT: reason" when e is an error, else 0.
static inline int cu_check(cudaError_t e, const char *what) {
    if (e == cudaSuccess) return 0;
    return err_set("cuda: %s: %s", what, cudaGetErrorString(e));
}
static inline int blas_check(cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return 0;
    return err_set("cuda: %s: cuBLAS status %d", what, (int)s);
}

// ---- cuBLAS, loaded on first use (cuda_blas.cu) ---------------------------------------
// A handle on stream s with the given workspace (so that graph capture never allocates).
int blas_open(cublasHandle_t *h, cudaStream_t s, void *workspace, size_t ws_bytes);
void blas_close(cublasHandle_t h);
// C[n][m] (ldc) = B[n][k] . A[m][k]^T for row-major A (weights) and B (inputs), F32 out;
// with add, C += that.
int blas_sgemm_tn(cublasHandle_t h, int m, int n, int k, const float *A, const float *B, float *C, int ldc, bool add);
int blas_gemm_tn(cublasHandle_t h, int m, int n, int k, const void *A, const void *B, cudaDataType t,
                 float *C, int ldc, bool add);

// ---- kernels (cuda_kernels.cu) ---------------------------------------------------------
// All act on [n][width] F32 rows unless said otherwise and are enqueued on stream s.

// x[t] = row tokens[t] of the embedding matrix, decoded to F32.
void launch_embed(cudaStream_t s, const dmat *emb, const int32_t *tokens, int n, float *x);
// out[r] = rmsnorm(x[gather ? gather[r] : r]) * w, sum of squares in double.
void launch_rmsnorm(cudaStream_t s, float *out, const float *x, const float *w, int64_t dim, float eps,
                    const int32_t *gather, int n_rows);
// cos, sin of pos[t] * freq[i] (computed in double): cs[t][i][2].
void launch_rope_table(cudaStream_t s, float *cs, const int32_t *pos, const double *freq, int n, int half);
// y[t][i] += b[i]
void launch_add_bias(cudaStream_t s, float *y, const float *b, int n, int64_t width);
// The step from Q/K/V products to attention: per head of q and k the optional RMSNorm
// (q_norm / k_norm) and RoPE from cs; q stays in place, k and v go to their sequence's KV
// block (the step's arrays, cuda_plan.h) for layer il.
struct qkv_finish {
    float *q;
    const float *k, *v, *q_norm, *k_norm, *cs;
    float *const *kv;
    const int32_t *pos, *bt_off, *bt;
};
void launch_qkv_finish(cudaStream_t s, const qkv_finish *a, const model_hparams *hp, int n, int il);
// ---- attention (cuda_attention.cu) -----------------------------------------------------
// One step's attention: the step's device arrays (cuda_plan.h) and how to run it.
struct att_step {
    const float *q;             // [n][n_head][head_dim]
    float *const *kv;           // K, V base of each token's sequence
    const int32_t *pos, *bt_off, *bt, *tile_first, *tile_n;
    float *out;                 // [n][n_head][head_dim]
    float *part;                // the split kernel's partial results (cuda_scratch_plan.att_part)
    int n, n_tiles;
    int splits;                 // blocks per (token, head) of the split kernel
    bool flash;                 // tiles through the tensor-core kernel (when head_dim allows)
    bool precise;               // ... keeping F32 precision (F32 models), else F16 operands
};
// Causal attention of each (token, head) over its sequence's positions 0..pos, layer il.
void launch_attention(cudaStream_t s, const att_step *a, const model_hparams *hp, int il);

// gate = silu(gate) * up
void launch_swiglu(cudaStream_t s, float *gate, const float *up, int64_t count);

// ---- products (cuda_matmul.cu) ---------------------------------------------------------
// The per-runner state products need for cuBLAS.
struct mm_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    int n_sm;         // multiprocessors: the matrix-vector kernel's grid
    void *half;       // F16/BF16 copy of an input: max_batch x widest input (NULL: no cuBLAS)
    void *deq;        // CUDA_DEQ_SCRATCH bytes of dequantized F16 rows (NULL: none)
    float *xn;        // a normalized input for cuBLAS: max_batch x n_embd
    uint32_t half_type; // what `half` holds now for half_src (QT_COUNT = nothing)
    const float *half_src;
    const float *xn_src; // the input whose normalization xn holds (NULL: none)
};
// A product's input: x, or with norm, RMSNorm(x) * norm (computed as rmsnorm_kernel does).
struct mm_in {
    const float *x;
    const float *norm;
    float eps;
};
// True when a product of n tokens runs our matrix-vector kernel (else cuBLAS).
bool mm_uses_mmv(int n);
// y[n][w->n_out] = in[n][w->n_in] . w^T, or with add, y += that. The input is converted for
// cuBLAS (and normalized) at most once while it stays the same: callers say when it changes
// (mm_input_changed).
int mm_run(mm_ctx *c, const dmat *w, const mm_in *in, int n, float *y, bool add);
static inline void mm_input_changed(mm_ctx *c) { c->half_src = c->xn_src = NULL; }
// The products of count <= 3 matrices with the same input (one launch when they share a type
// and take the matrix-vector kernel, as Q/K/V of a decode step do).
int mm_run_many(mm_ctx *c, const dmat *const *ws, float *const *ys, int count, const mm_in *in, int n);
// act = silu(in . gate^T) * (in . up^T): one launch in the matrix-vector kernel; through
// cuBLAS, up's product goes to up_out first.
int mm_run_swiglu(mm_ctx *c, const dmat *gate, const dmat *up, const mm_in *in, int n, float *act, float *up_out);

#endif
