// The forward pass on the GPU (cuda.h's runner): the same steps as src/model/forward.c, on
// one CUDA stream. Per batch the host packs token ids, positions, block tables and the
// logits rows into one pinned buffer (cuda_plan.c) and copies it over in one transfer; the
// kernels read everything else from device memory, so a decode step of n tokens (all wanting
// logits, as in continuous batching) is the same sequence of launches every time and is
// captured once into a CUDA graph and replayed. Logits are computed only for the tokens that
// want them, CUDA_LOGIT_ROWS rows per product, and copied back through a pinned buffer.
#include "cuda/cuda_internal.cuh"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLAS_WORKSPACE ((size_t)32 << 20) // set explicitly so that graph capture never allocates

struct cuda_runner {
    cuda_model *cm;
    const model *m;
    int32_t max_batch;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_ws;
    cuda_scratch_plan sp;
    uint8_t *scratch; // sp's buffers
    float *x, *xn, *q, *k, *v, *att, *gate, *up, *logit_in, *logits, *rope_cs;
    double *rope_freq;
    mm_ctx mm;
    // The step: kv pointers [2 * max_batch] (K, V base of each token's sequence), then
    // cuda_step_ints(max_batch, bt_cap) int32s; the same layout on both sides.
    uint8_t *h_step, *d_step;
    int32_t bt_cap;
    float *h_logits; // pinned, sp.logit_rows x n_vocab
    cudaGraphExec_t graph[CUDA_MMV_MAX + 1]; // decode steps of n tokens that all want logits
    bool graphs_on;
};

static size_t step_ptr_bytes(const cuda_runner *r) { return 2 * (size_t)r->max_batch * sizeof(float *); }
static int32_t *h_ints(cuda_runner *r) { return (int32_t *)(r->h_step + step_ptr_bytes(r)); }
static int32_t *d_ints(cuda_runner *r) { return (int32_t *)(r->d_step + step_ptr_bytes(r)); }

static void drop_graphs(cuda_runner *r) {
    for (int i = 0; i <= CUDA_MMV_MAX; i++) {
        if (r->graph[i]) cudaGraphExecDestroy(r->graph[i]);
        r->graph[i] = NULL;
    }
}

// Room for block tables of bt_cap entries. Graphs hold the old buffer's address: dropped.
static int grow_step(cuda_runner *r, int32_t bt_cap) {
    const size_t bytes = step_ptr_bytes(r) + cuda_step_ints(r->max_batch, bt_cap) * sizeof(int32_t);
    drop_graphs(r);
    cudaFreeHost(r->h_step);
    cudaFree(r->d_step);
    r->h_step = r->d_step = NULL;
    r->bt_cap = 0;
    if (cu_check(cudaMallocHost((void **)&r->h_step, bytes), "allocate the step buffer") ||
        cu_check(cudaMalloc((void **)&r->d_step, bytes), "allocate the step buffer"))
        return -1;
    r->bt_cap = bt_cap;
    return 0;
}

// ---- the pass --------------------------------------------------------------------------

static int enqueue_layers(cuda_runner *r, int n) {
    const model_hparams *hp = &r->m->hp;
    const cuda_model *cm = r->cm;
    const int64_t d = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim;
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    cudaStream_t s = r->stream;
    const int32_t B = r->max_batch, *ints = d_ints(r);
    const int32_t *token = ints, *pos = ints + B, *bt_off = ints + 2 * B, *bt = ints + CUDA_STEP_FIXED * B;
    float *const *kvp = (float *const *)r->d_step;
    launch_embed(s, &cm->tok_embd, token, n, r->x);
    launch_rope_table(s, r->rope_cs, pos, r->rope_freq, n, hp->rope_dim / 2);
    for (int il = 0; il < hp->n_layer; il++) {
        const dlayer *l = &cm->layers[il];
        // the previous layer's FFN output (in xn) joins the residual in the norm's launch
        launch_rmsnorm(s, r->xn, r->x, l->attn_norm, d, hp->rms_eps, NULL, il ? r->xn : NULL, n);
        mm_input_changed(&r->mm);
        const dmat *qkv[3] = {&l->wq, &l->wk, &l->wv};
        float *const qkv_out[3] = {r->q, r->k, r->v};
        if (mm_run_many(&r->mm, qkv, qkv_out, 3, r->xn, n)) return -1;
        if (l->bq) launch_add_bias(s, r->q, l->bq, n, q_dim);
        if (l->bk) launch_add_bias(s, r->k, l->bk, n, kv_dim);
        if (l->bv) launch_add_bias(s, r->v, l->bv, n, kv_dim);
        launch_qk_norm_rope(s, r->q, r->k, l->q_norm, l->k_norm, r->rope_cs, hp, n);
        launch_kv_store(s, r->k, r->v, kvp, pos, bt_off, bt, n, il, hp->n_layer, kv_dim);
        launch_attention(s, r->q, kvp, pos, bt_off, bt, r->att, hp, n, il);
        mm_input_changed(&r->mm);
        if (mm_run(&r->mm, &l->wo, r->att, n, r->xn)) return -1;
        launch_rmsnorm(s, r->xn, r->x, l->ffn_norm, d, hp->rms_eps, NULL, r->xn, n);
        mm_input_changed(&r->mm);
        const dmat *gu[2] = {&l->w_gate, &l->w_up};
        float *const gu_out[2] = {r->gate, r->up};
        if (mm_run_many(&r->mm, gu, gu_out, 2, r->xn, n)) return -1;
        launch_swiglu(s, r->gate, r->up, (int64_t)n * hp->n_ff);
        mm_input_changed(&r->mm);
        if (mm_run(&r->mm, &l->w_down, r->gate, n, r->xn)) return -1;
        if (cu_check(cudaGetLastError(), "layer kernels")) return -1;
    }
    launch_add(s, r->x, r->xn, n * d); // the last layer's FFN output
    return cu_check(cudaGetLastError(), "layer kernels");
}

// Logits of the k0..k0+kn-th tokens that want them into h_logits (kn <= sp.logit_rows).
static int enqueue_logits(cuda_runner *r, int k0, int kn) {
    const model_hparams *hp = &r->m->hp;
    const int32_t *out_tok = d_ints(r) + 3 * r->max_batch;
    launch_rmsnorm(r->stream, r->logit_in, r->x, r->cm->output_norm, hp->n_embd, hp->rms_eps, out_tok + k0,
                   NULL, kn);
    mm_input_changed(&r->mm);
    if (mm_run(&r->mm, &r->cm->output, r->logit_in, kn, r->logits)) return -1;
    return cu_check(cudaMemcpyAsync(r->h_logits, r->logits, (size_t)kn * hp->n_vocab * sizeof(float),
                                    cudaMemcpyDeviceToHost, r->stream),
                    "copy the logits");
}

// Records the decode step of n tokens (all wanting logits) as a graph.
static int capture(cuda_runner *r, int n) {
    cudaGraph_t g = NULL;
    if (cu_check(cudaStreamBeginCapture(r->stream, cudaStreamCaptureModeThreadLocal), "start graph capture"))
        return -1;
    int rc = enqueue_layers(r, n) || enqueue_logits(r, 0, n) ? -1 : 0;
    cudaError_t e = cudaStreamEndCapture(r->stream, &g);
    if (rc == 0) rc = cu_check(e, "capture the decode step");
    if (rc == 0) rc = cu_check(cudaGraphInstantiate(&r->graph[n], g, 0), "instantiate the decode graph");
    if (g) cudaGraphDestroy(g);
    return rc;
}

static void scatter_logits(cuda_runner *r, const model_token *batch, int k0, int kn) {
    const int32_t V = r->m->hp.n_vocab, *out_tok = h_ints(r) + 3 * r->max_batch;
    for (int j = 0; j < kn; j++)
        memcpy(batch[out_tok[k0 + j]].logits, r->h_logits + (size_t)j * V, (size_t)V * sizeof(float));
}

static int runner_forward(void *impl, const model_token *batch, int32_t n) {
    cuda_runner *r = (cuda_runner *)impl;
    cuda_step st;
    if (cu_check(cudaSetDevice(r->cm->dev), "select GPU")) return -1;
    const int32_t need = cuda_step_bt_need(batch, n);
    if (need > r->bt_cap && grow_step(r, need > 2 * r->bt_cap ? need : 2 * r->bt_cap)) return -1;
    if (cuda_step_pack(batch, n, r->max_batch, r->bt_cap, h_ints(r), &st)) return -1;
    float **kvp = (float **)r->h_step;
    for (int32_t t = 0; t < n; t++) {
        const cuda_kv *kv = (const cuda_kv *)model_kv_impl(batch[t].seq->kv);
        kvp[2 * t] = kv->k;
        kvp[2 * t + 1] = kv->v;
    }
    const size_t bytes = step_ptr_bytes(r) + cuda_step_ints(r->max_batch, st.bt_len) * sizeof(int32_t);
    if (cu_check(cudaMemcpyAsync(r->d_step, r->h_step, bytes, cudaMemcpyHostToDevice, r->stream), "upload the batch"))
        return -1;
    const bool as_graph = r->graphs_on && st.n_out == n && n <= CUDA_MMV_MAX;
    int k0 = 0;
    if (as_graph) {
        if (!r->graph[n] && capture(r, n)) return -1;
        if (cu_check(cudaGraphLaunch(r->graph[n], r->stream), "run the decode graph")) return -1;
        k0 = st.n_out; // the graph copied them
    } else if (enqueue_layers(r, n)) {
        return -1;
    }
    if (cu_check(cudaStreamSynchronize(r->stream), "forward pass")) return -1;
    if (as_graph) scatter_logits(r, batch, 0, st.n_out);
    for (; k0 < st.n_out; k0 += r->sp.logit_rows) {
        const int kn = st.n_out - k0 < r->sp.logit_rows ? st.n_out - k0 : r->sp.logit_rows;
        if (enqueue_logits(r, k0, kn) || cu_check(cudaStreamSynchronize(r->stream), "logits")) return -1;
        scatter_logits(r, batch, k0, kn);
    }
    return 0;
}

// ---- lifetime -------------------------------------------------------------------------

static void runner_release(void *impl) {
    cuda_runner *r = (cuda_runner *)impl;
    if (!r) return;
    cudaSetDevice(r->cm->dev);
    if (r->stream) cudaStreamSynchronize(r->stream);
    drop_graphs(r);
    blas_close(r->blas);
    if (r->stream) cudaStreamDestroy(r->stream);
    cudaFree(r->blas_ws);
    cudaFree(r->scratch);
    cudaFree(r->d_step);
    cudaFreeHost(r->h_step);
    cudaFreeHost(r->h_logits);
    free(r);
}

const model_backend cuda_backend = {"cuda", runner_forward, runner_release, cuda_kv_release};

extern "C" model_runner *cuda_runner_new(cuda_model *cm, int32_t max_batch) {
    const model_hparams *hp = &cm->m->hp;
    cuda_runner *r = (cuda_runner *)calloc(1, sizeof *r);
    double *freq = NULL;
    char what[96];
    const char *env = getenv("VEIL_CUDA_GRAPHS");
    if (!r) {
        err_set("out of memory");
        return NULL;
    }
    if (max_batch <= 0) max_batch = 1;
    r->cm = cm;
    r->m = cm->m;
    r->max_batch = max_batch;
    r->graphs_on = !(env && strcmp(env, "0") == 0); // VEIL_CUDA_GRAPHS=0: launch every kernel
    cuda_plan_scratch(hp, max_batch, &r->sp);
    snprintf(what, sizeof what, "the buffers for batches of %d tokens", max_batch);
    if (cuda_reserve(cm, r->sp.total + BLAS_WORKSPACE, what) ||
        cu_check(cudaStreamCreateWithFlags(&r->stream, cudaStreamNonBlocking), "create a stream") ||
        cu_check(cudaMalloc(&r->blas_ws, BLAS_WORKSPACE), "allocate the cuBLAS workspace") ||
        blas_open(&r->blas, r->stream, r->blas_ws, BLAS_WORKSPACE) ||
        cu_check(cudaMalloc((void **)&r->scratch, r->sp.total), "allocate the activations") ||
        cu_check(cudaMallocHost((void **)&r->h_logits, (size_t)r->sp.logit_rows * hp->n_vocab * sizeof(float)),
                 "allocate the logits buffer") ||
        grow_step(r, 4 * max_batch))
        goto fail;
    r->x = (float *)(r->scratch + r->sp.x);
    r->xn = (float *)(r->scratch + r->sp.xn);
    r->q = (float *)(r->scratch + r->sp.q);
    r->k = (float *)(r->scratch + r->sp.k);
    r->v = (float *)(r->scratch + r->sp.v);
    r->att = (float *)(r->scratch + r->sp.att);
    r->gate = (float *)(r->scratch + r->sp.gate);
    r->up = (float *)(r->scratch + r->sp.up);
    r->logit_in = (float *)(r->scratch + r->sp.logit_in);
    r->logits = (float *)(r->scratch + r->sp.logits);
    r->rope_cs = (float *)(r->scratch + r->sp.rope_cs);
    r->rope_freq = (double *)(r->scratch + r->sp.rope_freq);
    r->mm = mm_ctx{r->stream, r->blas, r->sp.half_bytes ? r->scratch + r->sp.half : NULL,
                   r->sp.deq_bytes ? r->scratch + r->sp.deq : NULL, QT_COUNT, NULL};
    // the frequencies exactly as forward.c computes them
    freq = (double *)malloc((size_t)(hp->rope_dim / 2 + 1) * sizeof *freq);
    if (!freq) {
        err_set("out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < hp->rope_dim / 2; i++) freq[i] = pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim);
    if (cu_check(cudaMemcpy(r->rope_freq, freq, (size_t)(hp->rope_dim / 2) * sizeof *freq, cudaMemcpyHostToDevice),
                 "upload the RoPE frequencies"))
        goto fail;
    free(freq);
    return model_runner_wrap(cm->m, max_batch, &cuda_backend, r);
fail:
    free(freq);
    runner_release(r);
    return NULL;
}
