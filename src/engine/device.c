/* Devices for the forward pass (device.h): the CPU through forward.c, GPUs through
 * src/cuda/cuda.h (its stub when veil was built without CUDA). */
#include "engine/device.h"

#include "base/err.h"
#include "base/log.h"
#include "cuda/cuda.h"
#include "model/model_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Prompt tokens per forward pass on a GPU: large products keep the tensor cores busy. */
#define GPU_PROMPT_BATCH 512

struct device {
    const model *m;
    model *packed;    /* the CPU's packed copy of m (model_pack.h); NULL: none */
    const model *cpu; /* what the device computes with: on the CPU packed if it could, else m */
    int n_threads;
    cuda_model *cuda; /* NULL: the CPU */
    int gpu;          /* its index */
    char desc[160];
};

/* -1 for "cpu" (or NULL), the GPU index for "cuda[:N]", -2 for anything else. */
static int parse_spec(const char *spec) {
    if (!spec || strcmp(spec, "cpu") == 0) return -1;
    if (strcmp(spec, "cuda") == 0) return 0;
    if (strncmp(spec, "cuda:", 5) != 0 || !spec[5]) return -2;
    int idx = 0;
    for (const char *p = spec + 5; *p; p++) {
        if (*p < '0' || *p > '9' || idx > 999) return -2;
        idx = idx * 10 + (*p - '0');
    }
    return idx;
}

bool device_spec_valid(const char *spec) { return parse_spec(spec) >= -1; }

device *device_open(const char *spec, const model *m, int n_threads) {
    int idx = parse_spec(spec);
    if (idx == -2) {
        err_set("unknown device '%s' (expected cpu, cuda or cuda:N)", spec);
        return NULL;
    }
    device *d = calloc(1, sizeof *d);
    if (!d) {
        err_set("out of memory");
        return NULL;
    }
    d->m = d->cpu = m;
    d->n_threads = n_threads;
    if (idx >= 0) {
        d->gpu = idx;
        d->cuda = cuda_model_new(m, idx);
        if (!d->cuda) {
            free(d);
            return NULL;
        }
        snprintf(d->desc, sizeof d->desc, "%s", cuda_model_describe(d->cuda));
    } else {
        /* packing only makes things faster: without the memory for it, the file's layout */
        if (model_pack(m, n_threads, &d->packed) != 0)
            log_warn("cpu: weights not packed (%s); computing with the file's layout", err_msg());
        if (d->packed) d->cpu = d->packed;
        const char *packed = d->packed ? ", packed weights" : "";
        if (n_threads > 0) snprintf(d->desc, sizeof d->desc, "cpu (%d threads%s)", n_threads, packed);
        else snprintf(d->desc, sizeof d->desc, d->packed ? "cpu (packed weights)" : "cpu");
    }
    return d;
}

void device_close(device *d) {
    if (!d) return;
    cuda_model_free(d->cuda);
    model_free(d->packed);
    free(d);
}

bool device_is_gpu(const device *d) { return d->cuda != NULL; }
const char *device_describe(const device *d) { return d->desc; }
const model *device_model(const device *d) { return d->cpu; }

int32_t device_prompt_batch(const device *d) { return d->cuda ? GPU_PROMPT_BATCH : 64; }

/* Copies of 1 GiB: far beyond the L2 cache, a few milliseconds each on HBM. */
#define COPY_BYTES ((size_t)1 << 30)
#define COPY_REPS 5

double device_gpu_bandwidth(device *d) {
    if (!d->cuda) return err_set("bandwidth: %s is not a GPU", d->desc);
    return cuda_copy_bandwidth(d->gpu, COPY_BYTES, COPY_REPS);
}

double device_copy_bandwidth(const char *spec) {
    int idx = parse_spec(spec);
    if (idx < 0) return err_set("bandwidth: '%s' is not a GPU (cuda or cuda:N)", spec ? spec : "cpu");
    return cuda_copy_bandwidth(idx, COPY_BYTES, COPY_REPS);
}

float *device_logits_alloc(device *d, size_t n) {
    if (d && d->cuda) return cuda_host_alloc(n * sizeof(float));
    float *p = malloc((n ? n : 1) * sizeof *p);
    if (!p) err_set("out of memory for %zu logits", n);
    return p;
}

void device_logits_free(device *d, float *p) {
    if (d && d->cuda) cuda_host_free(p);
    else free(p);
}

model_runner *device_runner_new(device *d, int32_t max_batch) {
    return d->cuda ? cuda_runner_new(d->cuda, max_batch) : model_runner_new(d->cpu, max_batch, d->n_threads);
}

model_kv *device_kv_new(device *d, int32_t n_blocks, model_kv_type type) {
    return d->cuda ? cuda_kv_new(d->cuda, n_blocks) : model_kv_new(d->cpu, n_blocks, type);
}

model_seq *device_seq_new(device *d, int32_t n_ctx, model_kv_type type) {
    if (n_ctx <= 0) n_ctx = d->m->hp.n_ctx_train;
    return model_seq_own(device_kv_new(d, (n_ctx + MODEL_KV_BLOCK - 1) / MODEL_KV_BLOCK, type), n_ctx);
}

model_ctx *device_ctx_new(device *d, int32_t n_ctx) {
    if (!d->cuda) return model_ctx_new_threads(d->cpu, n_ctx, d->n_threads);
    model_seq *seq = device_seq_new(d, n_ctx, MODEL_KV_F32);
    model_runner *r = seq ? device_runner_new(d, GPU_PROMPT_BATCH) : NULL;
    if (!r) {
        model_seq_free(seq);
        return NULL;
    }
    return model_ctx_wrap(seq, r);
}
