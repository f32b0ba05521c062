// cuBLAS, loaded the first time a runner needs it. Linking it would make every veil process
// (a `veil info`, each CLI test) spend over a second mapping its ~700 MB of libraries, while
// only --device cuda uses it; the CUDA runtime itself is linked statically and costs nothing
// until called. The library is found like any other (the binary's run path points at the
// toolkit it was built with, then the system's paths).
#include "cuda/cuda_internal.cuh"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define STR2(x) #x
#define STR(x) STR2(x)

static struct {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_workspace)(cublasHandle_t, void *, size_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                            const float *, const float *, int, const float *, int, const float *,
                            float *, int);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                              const void *, const void *, cudaDataType, int, const void *,
                              cudaDataType, int, const void *, void *, cudaDataType, int,
                              cublasComputeType_t, cublasGemmAlgo_t);
} api;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    static const char *names[] = {"libcublas.so." STR(CUBLAS_VER_MAJOR), "libcublas.so"};
    void *h = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "cannot load cuBLAS (%s): %s", names[0], dlerror());
        return;
    }
    const struct { void **fn; const char *sym; } syms[] = {
        {(void **)&api.create, "cublasCreate_v2"},       {(void **)&api.destroy, "cublasDestroy_v2"},
        {(void **)&api.set_stream, "cublasSetStream_v2"}, {(void **)&api.set_workspace, "cublasSetWorkspace_v2"},
        {(void **)&api.sgemm, "cublasSgemm_v2"},          {(void **)&api.gemm_ex, "cublasGemmEx"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        *syms[i].fn = dlsym(h, syms[i].sym);
        if (!*syms[i].fn) {
            snprintf(load_error, sizeof load_error, "cuBLAS (%s) lacks %s", names[0], syms[i].sym);
            api.create = NULL;
            return;
        }
    }
}

int blas_open(cublasHandle_t *h, cudaStream_t s, void *workspace, size_t ws_bytes) {
    pthread_once(&once, load);
    if (!api.create) return err_set("cuda: %s", load_error);
    if (blas_check(api.create(h), "start cuBLAS")) return -1;
    return blas_check(api.set_stream(*h, s), "cuBLAS stream") ||
                   blas_check(api.set_workspace(*h, workspace, ws_bytes), "cuBLAS workspace")
               ? -1
               : 0;
}

void blas_close(cublasHandle_t h) {
    if (h) api.destroy(h);
}

int blas_sgemm_tn(cublasHandle_t h, int m, int n, int k, const float *A, const float *B, float *C, int ldc, bool add) {
    const float one = 1.0f, beta = add ? 1.0f : 0.0f;
    return blas_check(api.sgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, k, B, k, &beta, C, ldc), "sgemm");
}

int blas_gemm_tn(cublasHandle_t h, int m, int n, int k, const void *A, const void *B, cudaDataType t,
                 float *C, int ldc, bool add) {
    const float one = 1.0f, beta = add ? 1.0f : 0.0f;
    return blas_check(api.gemm_ex(h, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &one, A, t, k, B, t, k, &beta, C,
                                  CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                      "gemm");
}
