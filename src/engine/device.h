/* Where the forward pass runs: the CPU (forward.c on a thread pool) or a GPU (src/cuda). A
 * device is opened for one model (a GPU gets the weights uploaded once) and then makes the
 * runners, KV stores, sequences and single-sequence contexts the engine works with; they are
 * ordinary forward.h objects, so generation, the scheduler, bench and the worker use any
 * device through the same calls. No CUDA header is needed here: src/cuda/cuda.h is plain C.
 *
 * The device must outlive everything made from it; the model must outlive the device. */
#ifndef VEIL_DEVICE_H
#define VEIL_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/forward.h"

typedef struct device device;

/* spec: "cpu", "cuda" (= "cuda:0") or "cuda:N"; NULL = "cpu". n_threads is the CPU's thread
 * count (<= 0: one per CPU; a GPU device ignores it). NULL + err_msg(): unknown spec, veil
 * built without CUDA, no GPU, the model does not fit. */
device *device_open(const char *spec, const model *m, int n_threads);
void device_close(device *d);

/* True for a spec device_open understands (the CLI checks flags before loading a model). */
bool device_spec_valid(const char *spec);
bool device_is_gpu(const device *d);
/* "cpu (8 threads)", "cuda:0 (NVIDIA H200, 139.8 GiB)". */
const char *device_describe(const device *d);
/* The model the device computes with: on the CPU, its packed copy when device_open made one
 * (model_pack.h: Q4_0, Q8_0, Q4_K, Q6_K, F16 and BF16 matrices for the AVX-512 kernels), else the
 * model given. */
const model *device_model(const device *d);

/* Tokens per batch of one prompt that suit the device (64 on the CPU, more on a GPU). */
int32_t device_prompt_batch(const device *d);

/* A GPU's device-to-device copy bandwidth in GB/s (bytes read plus written per second: the
 * rate decode can read weights at), best of a few 1 GiB copies; -1 + err_msg() on the CPU.
 * The _copy_ form takes a spec ("cuda:1") and needs no model. */
double device_gpu_bandwidth(device *d);
double device_copy_bandwidth(const char *spec);

/* Host memory for n logits, which d's runners fill fastest (page-locked for a GPU, which then
 * copies rows straight in; plain on the CPU or with d NULL). NULL + err_msg(). Freed by
 * device_logits_free with the same d. */
float *device_logits_alloc(device *d, size_t n);
void device_logits_free(device *d, float *p);

model_runner *device_runner_new(device *d, int32_t max_batch);
/* KV storage of `type` on the CPU; a GPU keeps its own element type for now (src/cuda). */
model_kv *device_kv_new(device *d, int32_t n_blocks, model_kv_type type);
/* A sequence with private storage for n_ctx positions (0 = the model's training context). */
model_seq *device_seq_new(device *d, int32_t n_ctx, model_kv_type type);
/* A single-sequence context (model_forward) of n_ctx positions. */
model_ctx *device_ctx_new(device *d, int32_t n_ctx);

#endif
