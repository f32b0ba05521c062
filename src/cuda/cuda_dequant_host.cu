// The device decoders (cuda_dequant.cuh) run on the host, so that tests on machines without
// a GPU check their index math against quant.c's decoding, value for value (cuda.h).
#include "cuda/cuda_dequant.cuh"
#include "cuda/cuda_internal.cuh"

extern "C" int cuda_dequant_row_host(uint32_t type, const void *row, int64_t n, float *out) {
    const qtype_info *info = qtype_get(type);
    if (!info || !qtype_supported(type) || n <= 0 || n % info->block_size)
        return err_set("cuda_dequant_row_host: %lld values of type %u", (long long)n, type);
    if ((uintptr_t)row % CUDA_ALIGN)
        return err_set("cuda_dequant_row_host: the row must start %d-byte aligned, as on the GPU", CUDA_ALIGN);
    const uint8_t *r = (const uint8_t *)row;
    for (int64_t c = 0; c < (n + 31) / 32; c++) {
        const int valid = (int)(n - 32 * c < 32 ? n - 32 * c : 32);
        float v[32];
#define ROW(T) dequant32<T>(r, c, valid, v)
        DQ_DISPATCH(type, ROW)
#undef ROW
        memcpy(out + 32 * c, v, (size_t)valid * sizeof(float));
    }
    return 0;
}
