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
// C[n][m] (ldc) = B[n][k] . A[m][k]^T for row-major A (weights) and B (inputs), F32 out.
int blas_sgemm_tn(cublasHandle_t h, int m, int n, int k, const float *A, const float *B, float *C, int ldc);
int blas_gemm_tn(cublasHandle_t h, int m, int n, int k, const void *A, const void *B, cudaDataType t,
                 float *C, int ldc);

// ---- kernels (cuda_kernels.cu) ---------------------------------------------------------
// All act on [n][width] F32 rows unless said otherwise and are enqueued on stream s.

// x[t] = row tokens[t] of the embedding matrix, decoded to F32.
void launch_embed(cudaStream_t s, const dmat *emb, const int32_t *tokens, int n, float *x);
// out[r] = rmsnorm(x[gather ? gather[r] : r]) * w, sum of squares in double. With add (no
// gather), first x[r] += add[r]: the residual of the previous step in the same launch (add
// may be out).
void launch_rmsnorm(cudaStream_t s, float *out, float *x, const float *w, int64_t dim, float eps,
                    const int32_t *gather, const float *add, int n_rows);
// cos, sin of pos[t] * freq[i] (computed in double): cs[t][i][2].
void launch_rope_table(cudaStream_t s, float *cs, const int32_t *pos, const double *freq, int n, int half);
// y[t][i] += b[i]
void launch_add_bias(cudaStream_t s, float *y, const float *b, int n, int64_t width);
// Per head of q and k: optional RMSNorm (q_norm / k_norm), then RoPE from cs.
void launch_qk_norm_rope(cudaStream_t s, float *q, float *k, const float *q_norm, const float *k_norm,
                         const float *cs, const model_hparams *hp, int n);
// Writes k and v rows of the batch into their sequences' KV blocks for layer il.
void launch_kv_store(cudaStream_t s, const float *k, const float *v, float *const *kv_ptrs,
                     const int32_t *pos, const int32_t *bt_off, const int32_t *bt, int n, int il,
                     int n_layer, int64_t kv_dim);
// Causal attention of each (token, head) over its sequence's positions 0..pos.
void launch_attention(cudaStream_t s, const float *q, float *const *kv_ptrs, const int32_t *pos,
                      const int32_t *bt_off, const int32_t *bt, float *out, const model_hparams *hp,
                      int n, int il);
// gate = silu(gate) * up
void launch_swiglu(cudaStream_t s, float *gate, const float *up, int64_t count);
// x += y
void launch_add(cudaStream_t s, float *x, const float *y, int64_t count);

// ---- products (cuda_matmul.cu) ---------------------------------------------------------
// The per-runner state products need for cuBLAS.
struct mm_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    void *half;       // F16/BF16 copy of an input: max_batch x widest input (NULL: no cuBLAS)
    void *deq;        // CUDA_DEQ_SCRATCH bytes of dequantized F16 rows (NULL: none)
    uint32_t half_type; // what `half` holds now for half_src (QT_COUNT = nothing)
    const float *half_src;
};
// True when a product of n tokens with a `type` matrix runs our matrix-vector kernel.
bool mm_uses_mmv(uint32_t type, int n);
// y[n][w->n_out] = x[n][w->n_in] . w^T. The input is converted for cuBLAS at most once while
// c->half_src stays x (callers reset it when x changes: mm_input_changed).
int mm_run(mm_ctx *c, const dmat *w, const float *x, int n, float *y);
static inline void mm_input_changed(mm_ctx *c) { c->half_src = NULL; }
// The products of count <= 3 matrices with the same input (one launch when they share a type
// and all take the matrix-vector kernel, as Q/K/V and gate/up of a decode step do).
int mm_run_many(mm_ctx *c, const dmat *const *ws, float *const *ys, int count, const float *x, int n);

#endif
