/* The forward pass on NVIDIA GPUs, as plain C: nothing here includes a CUDA header, so the
 * engine (src/engine/device.c) calls it whether or not veil was built with CUDA. Built with
 * nvcc, the functions are the cuda_*.cu files; built without, cuda_stub.c answers every call
 * with "veil was built without CUDA".
 *
 * A cuda_model is one model's weights on one GPU, uploaded once, in their file formats (block
 * types stay quantized). KV stores and runners made from it are model_kv / model_runner
 * objects (forward.h's device hook), so the engine drives them like the CPU's. The cuda_model
 * must outlive them. */
#ifndef VEIL_CUDA_H
#define VEIL_CUDA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/forward.h"

typedef struct cuda_model cuda_model;

/* True when this binary has the CUDA backend compiled in. */
bool cuda_built(void);
/* GPUs visible: >= 1, or -1 with err_msg() (built without CUDA, no driver, no device). */
int cuda_device_count(void);

/* Uploads m's weights to GPU `device` (0-based). NULL + err_msg(): no such GPU, or the weights
 * do not fit its free memory (the message says how much is needed and free). */
cuda_model *cuda_model_new(const model *m, int device);
void cuda_model_free(cuda_model *cm);
/* "cuda:0 (NVIDIA H200, 139.8 GiB)" */
const char *cuda_model_describe(const cuda_model *cm);
/* Device memory free now, in bytes (0 when unknown). */
size_t cuda_model_free_bytes(const cuda_model *cm);

/* KV store of n_blocks MODEL_KV_BLOCK-position blocks in device memory; NULL + err_msg() when
 * it does not fit. */
model_kv *cuda_kv_new(cuda_model *cm, int32_t n_blocks);
/* Runner for batches of up to max_batch tokens; NULL + err_msg(). */
model_runner *cuda_runner_new(cuda_model *cm, int32_t max_batch);

/* Page-locked host memory (the GPU copies logits straight into it), or NULL + err_msg();
 * freed by cuda_host_free. */
void *cuda_host_alloc(size_t bytes);
void cuda_host_free(void *p);

/* Device-to-device copy bandwidth of GPU `device` in GB/s (1e9 bytes/s; bytes read + bytes
 * written, per second), best of `reps` copies of `bytes`. -1 with err_msg(). */
double cuda_copy_bandwidth(int device, size_t bytes, int reps);

/* The GPU's decoding of n values of a row (`row` CUDA_ALIGN-aligned, as rows are on the GPU),
 * run on the host: lets tests check the device decoders against quant.c without a GPU.
 * 0, or -1 + err_msg(). */
int cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out);

#endif
