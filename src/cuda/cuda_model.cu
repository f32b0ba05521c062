// GPUs and the models on them (cuda.h): discovery, the one-time upload of a model's weights
// (one allocation, laid out by cuda_plan_weights, every matrix in its file type), KV stores,
// and the device's copy bandwidth for bench. Plain device allocations only (no managed
// memory), each checked against the free memory first so that a model that does not fit
// fails with numbers rather than an allocation error.
#include "cuda/cuda_internal.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Left free after each allocation we check: cuBLAS workspaces, graph and driver memory.
#define MARGIN ((size_t)256 << 20)
#define MAX_HEAD_DIM 256 // the attention and QK-norm kernels keep a head in shared memory

static double gib(size_t b) { return (double)b / (double)(1u << 30); }

extern "C" bool cuda_built(void) { return true; }

extern "C" int cuda_device_count(void) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return err_set("cuda: no usable GPU (%s)", cudaGetErrorString(e));
    if (n == 0) return err_set("cuda: no GPU found");
    return n;
}

int cuda_reserve(const cuda_model *cm, size_t bytes, const char *what) {
    size_t free_b = 0, total_b = 0;
    if (cu_check(cudaSetDevice(cm->dev), "select GPU") ||
        cu_check(cudaMemGetInfo(&free_b, &total_b), "query memory"))
        return -1;
    if (bytes + MARGIN > free_b)
        return err_set("%s needs %.2f GiB on %s but only %.2f GiB of its %.2f GiB are free", what,
                       gib(bytes), cm->desc, gib(free_b), gib(total_b));
    return 0;
}

static dmat view(const cuda_model *cm, const cuda_weight_plan *p, const model_matrix *w) {
    return dmat{w->type, w->n_in, w->n_out, qtype_row_size(w->type, (uint64_t)w->n_in),
                cm->weights + cuda_plan_offset(p, w->data)};
}

static const float *vec(const cuda_model *cm, const cuda_weight_plan *p, const float *v) {
    return v ? (const float *)(cm->weights + cuda_plan_offset(p, v)) : NULL;
}

extern "C" cuda_model *cuda_model_new(const model *m, int dev) {
    const model_hparams *hp = &m->hp;
    cuda_weight_plan plan = {};
    cudaDeviceProp prop;
    cuda_model *cm = NULL;
    int count = cuda_device_count();
    if (count < 0) return NULL;
    if (dev >= count) {
        err_set("cuda:%d: no such GPU (%d found)", dev, count);
        return NULL;
    }
    if (hp->head_dim > MAX_HEAD_DIM) {
        err_set("cuda: head size %d is larger than the GPU kernels support (%d)", hp->head_dim, MAX_HEAD_DIM);
        return NULL;
    }
    if (cu_check(cudaSetDevice(dev), "select GPU") || cu_check(cudaGetDeviceProperties(&prop, dev), "query GPU") ||
        cuda_plan_weights(m, &plan))
        return NULL;
    cm = (cuda_model *)calloc(1, sizeof *cm);
    if (!cm || !(cm->layers = (dlayer *)calloc((size_t)hp->n_layer, sizeof *cm->layers))) {
        err_set("out of memory");
        goto fail;
    }
    cm->m = m;
    cm->dev = dev;
    snprintf(cm->desc, sizeof cm->desc, "cuda:%d (%.100s, %.1f GiB)", dev, prop.name, gib(prop.totalGlobalMem));
    cm->n_sm = prop.multiProcessorCount;
    if (cuda_reserve(cm, plan.total, "the model's weights") ||
        cu_check(cudaMalloc((void **)&cm->weights, plan.total), "allocate the weights"))
        goto fail;
    for (int i = 0; i < plan.n; i++)
        if (cu_check(cudaMemcpy(cm->weights + plan.items[i].offset, plan.items[i].src, plan.items[i].bytes,
                                cudaMemcpyHostToDevice),
                     "upload the weights"))
            goto fail;
    // copies from pageable memory may return before they land, and runners work on streams
    // that do not wait for the default one
    if (cu_check(cudaDeviceSynchronize(), "upload the weights")) goto fail;
    cm->tok_embd = view(cm, &plan, &m->tok_embd);
    cm->output = view(cm, &plan, &m->output);
    cm->output_norm = vec(cm, &plan, m->output_norm);
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        cm->layers[il] = dlayer{vec(cm, &plan, l->attn_norm), vec(cm, &plan, l->ffn_norm),
                                vec(cm, &plan, l->q_norm),    vec(cm, &plan, l->k_norm),
                                vec(cm, &plan, l->bq),        vec(cm, &plan, l->bk),
                                vec(cm, &plan, l->bv),        view(cm, &plan, &l->wq),
                                view(cm, &plan, &l->wk),      view(cm, &plan, &l->wv),
                                view(cm, &plan, &l->wo),      view(cm, &plan, &l->w_gate),
                                view(cm, &plan, &l->w_up),    view(cm, &plan, &l->w_down)};
    }
    cuda_plan_weights_free(&plan);
    return cm;
fail:
    cuda_plan_weights_free(&plan);
    cuda_model_free(cm);
    return NULL;
}

extern "C" void cuda_model_free(cuda_model *cm) {
    if (!cm) return;
    if (cm->weights) {
        cudaSetDevice(cm->dev);
        cudaFree(cm->weights);
    }
    free(cm->layers);
    free(cm);
}

extern "C" const char *cuda_model_describe(const cuda_model *cm) { return cm->desc; }

extern "C" size_t cuda_model_free_bytes(const cuda_model *cm) {
    size_t free_b = 0, total_b = 0;
    if (cudaSetDevice(cm->dev) != cudaSuccess || cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
    return free_b;
}

// ---- KV stores -----------------------------------------------------------------------------

void cuda_kv_release(void *impl) {
    cuda_kv *kv = (cuda_kv *)impl;
    if (!kv) return;
    cudaFree(kv->k);
    cudaFree(kv->v);
    free(kv);
}

extern "C" model_kv *cuda_kv_new(cuda_model *cm, int32_t n_blocks) {
    const size_t half = cuda_plan_kv_bytes(cm->m, n_blocks) / 2; // K, then V
    char what[96];
    cuda_kv *kv = NULL;
    if (n_blocks <= 0) {
        err_set("cuda: a KV store needs at least one block");
        return NULL;
    }
    snprintf(what, sizeof what, "a KV cache of %d positions", n_blocks * MODEL_KV_BLOCK);
    if (cuda_reserve(cm, 2 * half, what)) return NULL;
    kv = (cuda_kv *)calloc(1, sizeof *kv);
    if (!kv) {
        err_set("out of memory");
        return NULL;
    }
    kv->n_blocks = n_blocks;
    // zeroed: a position is always written before it is read, but stale memory would make a
    // bug in that look like plausible numbers
    if (cu_check(cudaMalloc((void **)&kv->k, half), "allocate the KV cache") ||
        cu_check(cudaMalloc((void **)&kv->v, half), "allocate the KV cache") ||
        cu_check(cudaMemset(kv->k, 0, half), "clear the KV cache") ||
        cu_check(cudaMemset(kv->v, 0, half), "clear the KV cache") ||
        // the clears run on the default stream, which runners' streams do not wait for
        cu_check(cudaDeviceSynchronize(), "clear the KV cache")) {
        cuda_kv_release(kv);
        return NULL;
    }
    return model_kv_wrap(cm->m, n_blocks, &cuda_backend, kv);
}

// ---- bandwidth -----------------------------------------------------------------------------

bool pdl_enabled(void) {
    static const bool on = [] { // initialized once, thread-safely
        const char *env = getenv("VEIL_CUDA_PDL");
        return !(env && strcmp(env, "0") == 0);
    }();
    return on;
}

extern "C" void *cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    if (cu_check(cudaMallocHost(&p, bytes ? bytes : 1), "allocate page-locked host memory")) return NULL;
    return p;
}

extern "C" void cuda_host_free(void *p) {
    if (p) cudaFreeHost(p);
}

extern "C" double cuda_copy_bandwidth(int dev, size_t bytes, int reps) {
    void *a = NULL, *b = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL;
    double best = -1;
    int count = cuda_device_count();
    if (count < 0) return -1;
    if (dev >= count) return err_set("cuda:%d: no such GPU (%d found)", dev, count);
    if (cu_check(cudaSetDevice(dev), "select GPU") || cu_check(cudaMalloc(&a, bytes), "allocate") ||
        cu_check(cudaMalloc(&b, bytes), "allocate") || cu_check(cudaMemset(a, 1, bytes), "fill") ||
        cu_check(cudaEventCreate(&e0), "event") || cu_check(cudaEventCreate(&e1), "event") ||
        cu_check(cudaMemcpy(b, a, bytes, cudaMemcpyDeviceToDevice), "copy"))
        goto out;
    best = 0;
    for (int i = 0; i < reps; i++) {
        float ms = 0;
        if (cu_check(cudaEventRecord(e0), "event") ||
            cu_check(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice), "copy") ||
            cu_check(cudaEventRecord(e1), "event") || cu_check(cudaEventSynchronize(e1), "copy") ||
            cu_check(cudaEventElapsedTime(&ms, e0, e1), "event")) {
            best = -1;
            goto out;
        }
        const double gbs = 2.0 * (double)bytes / (ms * 1e-3) / 1e9; // read + written
        if (gbs > best) best = gbs;
    }
out:
    if (e0) cudaEventDestroy(e0);
    if (e1) cudaEventDestroy(e1);
    cudaFree(a);
    cudaFree(b);
    return best;
}
