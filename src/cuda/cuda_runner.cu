// The forward pass on the GPU (cuda.h's runner): the same steps as src/model/forward.c, on
// one CUDA stream. Per batch the host packs token ids, positions, block tables, attention
// tiles and the logits rows into one pinned buffer (cuda_plan.c) and copies it over in one
// transfer; the kernels read everything else from device memory, so a decode step of n tokens
// (all wanting logits, as in continuous batching) is the same sequence of launches every time
// and is captured once into a CUDA graph and replayed. A layer is five products and two
// attention kernels when decoding: the norms are computed inside the products that read them,
// the residual additions and SwiGLU in the products that produce them. Logits are computed only
// for the tokens that want them, CUDA_LOGIT_ROWS rows per product, and copied straight into
// page-locked destinations (else through a pinned buffer).
// Profiling (veil bench --profile) launches every kernel instead and records an event after
// each op, so the device's own clock says where a step's time goes. VEIL_CUDA_GRAPHS=0 never
// captures; VEIL_CUDA_SYNC=1 (debugging) waits for and checks every op, naming the one that
// failed.
#include "cuda/cuda_internal.cuh"

extern "C" {
#include "base/clock.h"
#include "base/log.h"
}

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
    float *x, *xn, *q, *k, *v, *att, *att_part, *gate, *up, *logit_in, *logits, *rope_cs;
    double *rope_freq;
    mm_ctx mm;
    // The step: kv pointers [2 * max_batch] (K, V base of each token's sequence), then
    // cuda_step_ints(max_batch, bt_cap) int32s; the same layout on both sides.
    uint8_t *h_step, *d_step;
    int32_t bt_cap;
    float *h_logits; // pinned, sp.logit_rows x n_vocab
    cudaGraphExec_t graph[CUDA_GRAPH_MAX + 1]; // decode steps of n tokens that all want logits
    bool graphs_on;
    bool sync_each; // VEIL_CUDA_SYNC=1: wait for and check every op outside graph capture
    bool capturing;
    // profiling: the step's events so far and the op each one ends
    model_profile *prof;
    cudaEvent_t *ev;
    int *ev_op, n_ev, ev_cap;
};

// ---- profiling ----------------------------------------------------------------------------

// Ends op (-1: starts the step) at this point of the stream.
static void mark(cuda_runner *r, int op) {
    if (!r->prof || r->n_ev == r->ev_cap) return; // a full table charges the rest to the last op
    cudaEventRecord(r->ev[r->n_ev], r->stream);
    r->ev_op[r->n_ev++] = op;
}

// The end of op in the pass: marked for the profile; with VEIL_CUDA_SYNC=1 (outside graph
// capture) the stream is waited for and checked, so a failing kernel is named by its op
// rather than reported at the step's end (launches are asynchronous).
static int op_done(cuda_runner *r, int op) {
    mark(r, op);
    if (!r->sync_each || r->capturing) return 0;
    char what[64];
    snprintf(what, sizeof what, "%s kernels", model_prof_name(op));
    if (cu_check(cudaStreamSynchronize(r->stream), what)) return -1;
    return cu_check(cudaGetLastError(), what);
}

// After the stream is synchronized: each interval to its op.
static void charge_marks(cuda_runner *r) {
    for (int i = 1; i < r->n_ev; i++) {
        float ms = 0;
        if (cudaEventElapsedTime(&ms, r->ev[i - 1], r->ev[i]) == cudaSuccess && r->ev_op[i] >= 0)
            r->prof->seconds[r->ev_op[i]] += ms / 1e3;
    }
    r->n_ev = 0;
}

static void free_events(cuda_runner *r) {
    for (int i = 0; i < r->ev_cap; i++) cudaEventDestroy(r->ev[i]);
    free(r->ev);
    free(r->ev_op);
    r->ev = NULL;
    r->ev_op = NULL;
    r->ev_cap = r->n_ev = 0;
}

// Events for the most marks a step makes: start, upload, embeddings, 8 per layer, the last
// residual, then norm, product and copy per CUDA_LOGIT_ROWS logit rows.
static void runner_set_profile(void *impl, model_profile *p) {
    cuda_runner *r = (cuda_runner *)impl;
    r->prof = NULL;
    if (!p) return;
    if (!r->ev) {
        const int cap = 4 + 8 * r->m->hp.n_layer + 3 * (r->max_batch / CUDA_LOGIT_ROWS + 1);
        r->ev = (cudaEvent_t *)calloc((size_t)cap, sizeof *r->ev);
        r->ev_op = (int *)calloc((size_t)cap, sizeof *r->ev_op);
        if (!r->ev || !r->ev_op) {
            free_events(r);
            return; // no profile rather than no answer
        }
        for (r->ev_cap = 0; r->ev_cap < cap; r->ev_cap++)
            if (cudaSetDevice(r->cm->dev) != cudaSuccess || cudaEventCreate(&r->ev[r->ev_cap]) != cudaSuccess) break;
    }
    r->prof = p;
}

static size_t step_ptr_bytes(const cuda_runner *r) { return 2 * (size_t)r->max_batch * sizeof(float *); }
static int32_t *h_ints(cuda_runner *r) { return (int32_t *)(r->h_step + step_ptr_bytes(r)); }
static int32_t *d_ints(cuda_runner *r) { return (int32_t *)(r->d_step + step_ptr_bytes(r)); }

static void drop_graphs(cuda_runner *r) {
    for (int i = 0; i <= CUDA_GRAPH_MAX; i++) {
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

// n tokens in n_tiles tiles; flash: attention by tiles (cuda_attention.cu).
static int enqueue_layers(cuda_runner *r, int n, int n_tiles, bool flash) {
    const model_hparams *hp = &r->m->hp;
    const cuda_model *cm = r->cm;
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    cudaStream_t s = r->stream;
    const int32_t B = r->max_batch, *ints = d_ints(r);
    const int32_t *token = ints, *pos = ints + B, *bt_off = ints + 2 * B, *bt = ints + CUDA_STEP_FIXED * B;
    float *const *kvp = (float *const *)r->d_step;
    const att_step at = {r->q, kvp, pos, bt_off, bt, ints + 4 * B, ints + 5 * B, r->att, r->att_part, n, n_tiles,
                         cuda_att_splits(n, hp->n_head, cm->n_sm, r->sp.att_parts), flash,
                         cm->layers[0].wq.type == QT_F32};
    launch_embed(s, &cm->tok_embd, token, n, r->x);
    launch_rope_table(s, r->rope_cs, pos, r->rope_freq, n, hp->rope_dim / 2);
    if (op_done(r, PROF_EMBED)) return -1;
    // the residual stream x: each layer's norms read it, its two output products add to it
    for (int il = 0; il < hp->n_layer; il++) {
        const dlayer *l = &cm->layers[il];
        const dmat *qkv[3] = {&l->wq, &l->wk, &l->wv};
        float *const qkv_out[3] = {r->q, r->k, r->v};
        const mm_in attn_in = {r->x, l->attn_norm, hp->rms_eps}, ffn_in = {r->x, l->ffn_norm, hp->rms_eps};
        const mm_in att_in = {r->att, NULL, 0}, act_in = {r->gate, NULL, 0};
        mm_input_changed(&r->mm);
        if (mm_run_many(&r->mm, qkv, qkv_out, 3, &attn_in, n)) return -1;
        if (l->bq) launch_add_bias(s, r->q, l->bq, n, q_dim);
        if (l->bk) launch_add_bias(s, r->k, l->bk, n, kv_dim);
        if (l->bv) launch_add_bias(s, r->v, l->bv, n, kv_dim);
        if (op_done(r, PROF_QKV)) return -1;
        const qkv_finish fin = {r->q, r->k, r->v, l->q_norm, l->k_norm, r->rope_cs, kvp, pos, bt_off, bt};
        launch_qkv_finish(s, &fin, hp, n, il);
        launch_attention(s, &at, hp, il);
        if (op_done(r, PROF_ATTENTION)) return -1;
        mm_input_changed(&r->mm);
        if (mm_run(&r->mm, &l->wo, &att_in, n, r->x, true) || op_done(r, PROF_ATTN_OUT)) return -1;
        mm_input_changed(&r->mm);
        if (mm_run_swiglu(&r->mm, &l->w_gate, &l->w_up, &ffn_in, n, r->gate, r->up) || op_done(r, PROF_FFN_GATE_UP))
            return -1;
        mm_input_changed(&r->mm);
        if (mm_run(&r->mm, &l->w_down, &act_in, n, r->x, true) || op_done(r, PROF_FFN_DOWN)) return -1;
        if (cu_check(cudaGetLastError(), "layer kernels")) return -1;
    }
    return 0;
}

// Logits of the k0..k0+kn-th tokens that want them into r->logits (kn <= sp.logit_rows).
static int enqueue_logits(cuda_runner *r, int k0, int kn) {
    const model_hparams *hp = &r->m->hp;
    const int32_t *out_tok = d_ints(r) + 3 * r->max_batch;
    const mm_in in = {r->logit_in, NULL, 0};
    launch_rmsnorm(r->stream, r->logit_in, r->x, r->cm->output_norm, hp->n_embd, hp->rms_eps, out_tok + k0, kn);
    if (op_done(r, PROF_NORM)) return -1;
    mm_input_changed(&r->mm);
    if (mm_run(&r->mm, &r->cm->output, &in, kn, r->logits, false)) return -1;
    return op_done(r, PROF_OUTPUT);
}

// Records the decode step of n tokens (all wanting logits) as a graph.
static int capture(cuda_runner *r, int n) {
    cudaGraph_t g = NULL;
    if (cu_check(cudaStreamBeginCapture(r->stream, cudaStreamCaptureModeThreadLocal), "start graph capture"))
        return -1;
    r->capturing = true;
    int rc = enqueue_layers(r, n, n, false) || enqueue_logits(r, 0, n) ? -1 : 0;
    r->capturing = false;
    cudaError_t e = cudaStreamEndCapture(r->stream, &g);
    if (rc == 0) rc = cu_check(e, "capture the decode step");
    if (rc == 0 && cu_check(cudaGraphInstantiate(&r->graph[n], g, 0), "instantiate the decode graph")) {
        r->graph[n] = NULL; // nothing to destroy or launch
        rc = -1;
    }
    if (g) cudaGraphDestroy(g);
    return rc;
}

static bool page_locked(const void *p) {
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); // not an error worth keeping: p is simply not the runtime's
        return false;
    }
    return a.type == cudaMemoryTypeHost;
}

// Brings the kn rows of r->logits (the k0..k0+kn-th tokens wanting logits) to their
// destinations and waits for the step: one copy straight into them when they are consecutive
// rows of page-locked memory (cuda_host_alloc: the scheduler's and bench's buffers), else
// through the pinned h_logits and a copy on the host. *host_s gets the host's share.
static int fetch_logits(cuda_runner *r, const model_token *batch, int k0, int kn, double *host_s) {
    const int32_t V = r->m->hp.n_vocab, *out_tok = h_ints(r) + 3 * r->max_batch;
    float *dst = batch[out_tok[k0]].logits;
    bool direct = page_locked(dst);
    for (int j = 1; j < kn && direct; j++) direct = batch[out_tok[k0 + j]].logits == dst + (size_t)j * V;
    if (cu_check(cudaMemcpyAsync(direct ? dst : r->h_logits, r->logits, (size_t)kn * V * sizeof(float),
                                 cudaMemcpyDeviceToHost, r->stream),
                 "copy the logits"))
        return -1;
    mark(r, PROF_TRANSFER);
    if (cu_check(cudaStreamSynchronize(r->stream), "forward pass")) return -1;
    if (direct) return 0;
    const double t1 = r->prof ? clock_now() : 0;
    for (int j = 0; j < kn; j++)
        memcpy(batch[out_tok[k0 + j]].logits, r->h_logits + (size_t)j * V, (size_t)V * sizeof(float));
    if (r->prof) *host_s += clock_now() - t1;
    return 0;
}

// A step that failed after its upload was queued: the upload (from h_step, which the next
// step rewrites) and any kernels queued are waited for before the error goes back.
static int step_failed(cuda_runner *r) {
    (void)cudaStreamSynchronize(r->stream);
    return -1;
}

static int runner_forward(void *impl, const model_token *batch, int32_t n) {
    cuda_runner *r = (cuda_runner *)impl;
    cuda_step st;
    const double t0 = r->prof ? clock_now() : 0;
    if (cu_check(cudaSetDevice(r->cm->dev), "select GPU")) return -1;
    (void)cudaGetLastError(); // an earlier call's error (events, pointer queries) is not this step's
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
    double host_s = r->prof ? clock_now() - t0 : 0; // packing, then copies of logits on the host
    mark(r, -1);
    if (cu_check(cudaMemcpyAsync(r->d_step, r->h_step, bytes, cudaMemcpyHostToDevice, r->stream), "upload the batch"))
        return -1;
    mark(r, PROF_TRANSFER);
    if (r->graphs_on && !r->prof && st.n_out == n && n <= CUDA_GRAPH_MAX) {
        if (!r->graph[n] && capture(r, n)) {
            // the step still runs, kernel by kernel, and so do all later ones: a device or
            // driver that cannot capture this step costs speed, not answers
            (void)cudaGetLastError();
            log_warn("cuda: %s; decode steps run without CUDA graphs from now on", err_msg());
            drop_graphs(r);
            r->graphs_on = false;
        } else {
            if (cu_check(cudaGraphLaunch(r->graph[n], r->stream), "run the decode graph")) return step_failed(r);
            return fetch_logits(r, batch, 0, n, &host_s) ? step_failed(r) : 0;
        }
    }
    if (enqueue_layers(r, n, st.n_tiles, st.max_run >= CUDA_FLASH_MIN_RUN)) return step_failed(r);
    // the step buffer must not change while the upload may still read it: always wait
    if (!st.n_out && cu_check(cudaStreamSynchronize(r->stream), "forward pass")) return -1;
    for (int k0 = 0; k0 < st.n_out; k0 += r->sp.logit_rows) {
        const int kn = st.n_out - k0 < r->sp.logit_rows ? st.n_out - k0 : r->sp.logit_rows;
        if (enqueue_logits(r, k0, kn) || fetch_logits(r, batch, k0, kn, &host_s)) return step_failed(r);
    }
    if (r->prof) {
        charge_marks(r);
        r->prof->seconds[PROF_TRANSFER] += host_s;
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
    free_events(r);
    blas_close(r->blas);
    if (r->stream) cudaStreamDestroy(r->stream);
    cudaFree(r->blas_ws);
    cudaFree(r->scratch);
    cudaFree(r->d_step);
    cudaFreeHost(r->h_step);
    cudaFreeHost(r->h_logits);
    free(r);
}

const model_backend cuda_backend = {"cuda", runner_forward, runner_set_profile, runner_release, cuda_kv_release};

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
    env = getenv("VEIL_CUDA_SYNC");
    r->sync_each = env && strcmp(env, "1") == 0;
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
    r->att_part = (float *)(r->scratch + r->sp.att_part);
    r->gate = (float *)(r->scratch + r->sp.gate);
    r->up = (float *)(r->scratch + r->sp.up);
    r->logit_in = (float *)(r->scratch + r->sp.logit_in);
    r->logits = (float *)(r->scratch + r->sp.logits);
    r->rope_cs = (float *)(r->scratch + r->sp.rope_cs);
    r->rope_freq = (double *)(r->scratch + r->sp.rope_freq);
    r->mm = mm_ctx{r->stream, r->blas, cm->n_sm, r->sp.half_bytes ? r->scratch + r->sp.half : NULL,
                   r->sp.deq_bytes ? r->scratch + r->sp.deq : NULL, r->xn, QT_COUNT, NULL, NULL};
    // the frequencies exactly as forward.c computes them
    freq = (double *)malloc((size_t)(hp->rope_dim / 2 + 1) * sizeof *freq);
    if (!freq) {
        err_set("out of memory");
        goto fail;
    }
    for (int32_t i = 0; i < hp->rope_dim / 2; i++) freq[i] = pow((double)hp->rope_theta, -2.0 * i / hp->rope_dim);
    // a pageable copy may return before it lands, and the runner's stream does not wait for
    // the default one: the device is done with it before the runner exists
    if (cu_check(cudaMemcpy(r->rope_freq, freq, (size_t)(hp->rope_dim / 2) * sizeof *freq, cudaMemcpyHostToDevice),
                 "upload the RoPE frequencies") ||
        cu_check(cudaDeviceSynchronize(), "upload the RoPE frequencies"))
        goto fail;
    free(freq);
    return model_runner_wrap(cm->m, max_batch, &cuda_backend, r);
fail:
    free(freq);
    runner_release(r);
    return NULL;
}
