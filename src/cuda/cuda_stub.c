/* The CUDA backend's stand-in (cuda.h) for binaries built without nvcc (and for the sanitizer
 * and fuzz builds, which never link CUDA): every call fails with one clear message. */
#include "cuda/cuda.h"

#include "base/err.h"

static const char *why = "veil was built without CUDA (no nvcc at build time, make CUDA=0, or a "
                         "sanitizer build; see README 'GPU')";

bool cuda_built(void) { return false; }

int cuda_device_count(void) { return err_set("%s", why); }

cuda_model *cuda_model_new(const model *m, int device) {
    (void)m;
    (void)device;
    err_set("%s", why);
    return NULL;
}

void cuda_model_free(cuda_model *cm) { (void)cm; }

const char *cuda_model_describe(const cuda_model *cm) {
    (void)cm;
    return "cuda (not built)";
}

size_t cuda_model_free_bytes(const cuda_model *cm) {
    (void)cm;
    return 0;
}

model_kv *cuda_kv_new(cuda_model *cm, int32_t n_blocks) {
    (void)cm;
    (void)n_blocks;
    err_set("%s", why);
    return NULL;
}

model_runner *cuda_runner_new(cuda_model *cm, int32_t max_batch) {
    (void)cm;
    (void)max_batch;
    err_set("%s", why);
    return NULL;
}

int cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out) {
    (void)type;
    (void)row;
    (void)n;
    (void)out;
    return err_set("%s", why);
}

double cuda_copy_bandwidth(int device, size_t bytes, int reps) {
    (void)device;
    (void)bytes;
    (void)reps;
    return err_set("%s", why);
}

void *cuda_host_alloc(size_t bytes) {
    (void)bytes;
    err_set("%s", why);
    return NULL;
}

void cuda_host_free(void *p) { (void)p; }
