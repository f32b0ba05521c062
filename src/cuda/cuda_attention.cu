// Attention on the GPU, two kernels over the same paged F32 KV cache (layout: kv_row).
//
// Decode (the split kernel): each (token, head) walks its positions with an online softmax,
// its positions divided among `splits` blocks of ATT_WARPS warps so that even a single token
// fills the GPU; each warp loads ATT_UNROLL positions at once to hide memory latency, and the
// blocks' partial results (max, sum, weighted values) are merged by a second kernel.
//
// Prompts (the flash kernel): a block takes a tile of up to CUDA_FLASH_ROWS consecutive tokens
// of one sequence and one head, and streams the sequence's keys and values through shared
// memory FLASH_KEYS at a time; each warp multiplies 16 query rows on the tensor cores
// (mma.sync m16n8k16, F16 in, F32 accumulate) with an online softmax in registers. Queries,
// keys, softmax weights and values are rounded to F16, as the products of models in F16, BF16
// or block types already round their inputs (cuda_matmul.cu). Models in F32 get the precise
// form, which keeps the CPU engine's precision (tests compare logits to 2e-4): every operand
// is a pair hi + lo (hi = x rounded to F16, lo = the rest rounded to F16) and each product the
// three terms hi*hi + hi*lo + lo*hi, about 21 bits of each operand for three times the tensor
// work. Operands must lie within F16's range (|x| < 65504).
#include "cuda/cuda_internal.cuh"

#include <cuda_fp16.h>
#include <math.h>

#define ATT_WARPS 4
#define ATT_UNROLL 4
#define FLASH_WARPS (CUDA_FLASH_ROWS / 16)
#define FLASH_KEYS 32

// ---- decode: split over positions -----------------------------------------------------

// Block (t, h, z) of the split kernel: positions [z * per, (z + 1) * per) of token t's
// sequence, per = ceil((pos[t] + 1) / splits). With one split the block writes the output;
// else its partial result part[(t * n_head + h) * splits + z] = {max, sum, values[hd]}.
template <int EPL> // head dimensions per lane: ceil(head_dim / 32)
__global__ void __launch_bounds__(ATT_WARPS * WARP)
split_kernel(att_step a, int n_head, int group, int hd, int il, int n_layer, int64_t kv_dim, float scale) {
    pdl_begin();
    __shared__ float s_m[ATT_WARPS], s_l[ATT_WARPS], s_acc[ATT_WARPS][EPL * WARP];
    const int t = blockIdx.x, h = blockIdx.y, z = blockIdx.z, lane = threadIdx.x % WARP, w = threadIdx.x / WARP;
    const int n_pos = a.pos[t] + 1, per = (n_pos + a.splits - 1) / a.splits;
    const int lo = z * per, hi = lo + per < n_pos ? lo + per : n_pos;
    const int32_t *table = a.bt + a.bt_off[t];
    const float *K = a.kv[2 * t], *V = a.kv[2 * t + 1];
    const float *qh = a.q + ((size_t)t * n_head + h) * hd;
    const int64_t koff = (int64_t)(h / group) * hd;
    float qr[EPL], acc[EPL];
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        const int d = lane + WARP * e;
        qr[e] = d < hd ? qh[d] : 0.0f;
        acc[e] = 0.0f;
    }
    float m = -INFINITY, l = 0.0f;
    for (int p0 = lo + w * ATT_UNROLL; p0 < hi; p0 += ATT_WARPS * ATT_UNROLL) {
        // all loads first: ATT_UNROLL positions' keys and values in flight together
        float kk[ATT_UNROLL][EPL], vv[ATT_UNROLL][EPL];
#pragma unroll
        for (int u = 0; u < ATT_UNROLL; u++) {
            const bool ok = p0 + u < hi;
            const int64_t base = ok ? kv_row(table, p0 + u, il, n_layer) * kv_dim + koff : 0;
#pragma unroll
            for (int e = 0; e < EPL; e++) {
                const int d = lane + WARP * e;
                kk[u][e] = ok && d < hd ? K[base + d] : 0.0f;
                vv[u][e] = ok && d < hd ? V[base + d] : 0.0f;
            }
        }
        float sc[ATT_UNROLL], m_new = m;
#pragma unroll
        for (int u = 0; u < ATT_UNROLL; u++) {
            float dot = 0.0f;
#pragma unroll
            for (int e = 0; e < EPL; e++) dot += qr[e] * kk[u][e];
            sc[u] = p0 + u < hi ? warp_sum(dot) * scale : -INFINITY;
            m_new = fmaxf(m_new, sc[u]);
        }
        // position p0 < hi is real, so m_new is finite
        const float corr = expf(m - m_new);
        l *= corr;
#pragma unroll
        for (int e = 0; e < EPL; e++) acc[e] *= corr;
#pragma unroll
        for (int u = 0; u < ATT_UNROLL; u++) {
            const float p = expf(sc[u] - m_new); // 0 for the positions past hi
            l += p;
#pragma unroll
            for (int e = 0; e < EPL; e++) acc[e] += p * vv[u][e];
        }
        m = m_new;
    }
    if (lane == 0) {
        s_m[w] = m;
        s_l[w] = l;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) s_acc[w][lane + WARP * e] = acc[e];
    __syncthreads();
    if (w != 0) return;
    // idle warps (and whole blocks past the last position) have m = -inf, l = 0
    float M = -INFINITY;
    for (int i = 0; i < ATT_WARPS; i++)
        if (s_l[i] > 0.0f) M = fmaxf(M, s_m[i]);
    float L = 0.0f, f[ATT_WARPS];
    for (int i = 0; i < ATT_WARPS; i++) {
        f[i] = s_l[i] > 0.0f ? expf(s_m[i] - M) : 0.0f;
        L += s_l[i] * f[i];
    }
    const size_t unit = (size_t)t * n_head + h;
    float *part = a.part + (unit * a.splits + z) * (size_t)(hd + 2);
    if (a.splits > 1 && lane == 0) {
        part[0] = M;
        part[1] = L;
    }
#pragma unroll
    for (int e = 0; e < EPL; e++) {
        const int d = lane + WARP * e;
        if (d >= hd) continue;
        float sum = 0.0f;
        for (int i = 0; i < ATT_WARPS; i++) sum += s_acc[i][d] * f[i];
        if (a.splits > 1) part[2 + d] = sum;
        else a.out[unit * hd + d] = sum / L; // one split: positions 0..pos, L > 0
    }
}

// Merges the splits of each (token, head): one block of 128 threads per unit.
__global__ void split_merge_kernel(att_step a, int n_head, int hd) {
    pdl_begin();
    const size_t unit = (size_t)blockIdx.x * n_head + blockIdx.y;
    const float *part = a.part + unit * a.splits * (size_t)(hd + 2);
    float M = -INFINITY, L = 0.0f;
    for (int z = 0; z < a.splits; z++)
        if (part[z * (hd + 2) + 1] > 0.0f) M = fmaxf(M, part[z * (hd + 2)]);
    for (int z = 0; z < a.splits; z++) {
        const float *pz = part + z * (hd + 2);
        if (pz[1] > 0.0f) L += pz[1] * expf(pz[0] - M);
    }
    for (int d = threadIdx.x; d < hd; d += blockDim.x) {
        float sum = 0.0f;
        for (int z = 0; z < a.splits; z++) {
            const float *pz = part + z * (hd + 2);
            if (pz[1] > 0.0f) sum += pz[2 + d] * expf(pz[0] - M);
        }
        a.out[unit * hd + d] = sum / L;
    }
}

// ---- prompts: tiles on the tensor cores -------------------------------------------------

// F16 pair of two floats in one register (the first in the low half, as mma expects).
__device__ __forceinline__ uint32_t h2_bits(__half2 h) { return *reinterpret_cast<uint32_t *>(&h); }

// hi and lo parts of (x0, x1): hi = F16(x), lo = F16(x - hi).
__device__ __forceinline__ void split2(float x0, float x1, uint32_t &hi, uint32_t &lo) {
    const __half2 h = __floats2half2_rn(x0, x1);
    const float2 f = __half22float2(h);
    hi = h2_bits(h);
    lo = h2_bits(__floats2half2_rn(x0 - f.x, x1 - f.y));
}

// c += a . b for a 16x16 F16 tile a (row-major fragment) and a 16x8 F16 tile b (column-major).
__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                 "{%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// The three-term product of split operands: c += ah.bh + ah.bl + al.bh.
__device__ __forceinline__ void mma3(float c[4], const uint32_t ah[4], const uint32_t al[4], uint32_t bh0,
                                     uint32_t bh1, uint32_t bl0, uint32_t bl1) {
    mma16816(c, al, bh0, bh1);
    mma16816(c, ah, bl0, bl1);
    mma16816(c, ah, bh0, bh1);
}

// Block (tile, head). Fragment layouts of m16n8k16 (PTX ISA): lane = 4 g + i; an A register
// holds row g or g + 8, columns 2i, 2i + 1 (+ 8); B registers column g, rows 2i, 2i + 1 (+ 8);
// C row g or g + 8, columns 2i, 2i + 1. Keys sit in shared memory row-major (a B fragment's
// pairs are adjacent), values transposed (likewise); rows are padded by 8 halves so that the
// 32 lanes' loads hit 32 different banks.
template <int HD, bool PRECISE>
__global__ void __launch_bounds__(FLASH_WARPS * WARP)
flash_kernel(att_step a, int n_head, int group, int il, int n_layer, int64_t kv_dim, float scale_log2) {
    pdl_begin();
    constexpr int KS = HD + 8, VS = FLASH_KEYS + 8, KSTEPS = HD / 16, DTILES = HD / 8, NTILES = FLASH_KEYS / 8;
    // the lo halves exist only in the precise form (a token array otherwise); every array
    // 16-byte aligned, as the 4-byte fragment loads need
    __shared__ __align__(16) __half k_hi[FLASH_KEYS * KS], v_hi[HD * VS];
    __shared__ __align__(16) __half k_lo[PRECISE ? FLASH_KEYS * KS : 8], v_lo[PRECISE ? HD * VS : 8];
    __shared__ int s_kmax;
    const int tile = a.n_tiles - 1 - blockIdx.x; // the last tiles see the most keys: start them first
    const int h = blockIdx.y, lane = threadIdx.x % WARP, w = threadIdx.x / WARP, g = lane / 4, i4 = lane % 4;
    const int t0 = a.tile_first[tile], tn = a.tile_n[tile];
    const float *K = a.kv[2 * t0], *V = a.kv[2 * t0 + 1];
    const int32_t *table = a.bt + a.bt_off[t0];
    const int64_t koff = (int64_t)(h / group) * HD;
    if (threadIdx.x == 0) s_kmax = 0;
    __syncthreads();
    if (threadIdx.x < tn) atomicMax(&s_kmax, a.pos[t0 + threadIdx.x] + 1);
    // this thread's two query rows; rows past the tile repeat its last token and are not written
    const int ra = 16 * w + g, rb = ra + 8;
    const int ta = t0 + (ra < tn ? ra : tn - 1), tb = t0 + (rb < tn ? rb : tn - 1);
    const int pa = a.pos[ta], pb = a.pos[tb];
    uint32_t qh[KSTEPS][4], ql[PRECISE ? KSTEPS : 1][4];
    {
        const float *qa = a.q + ((size_t)ta * n_head + h) * HD, *qb = a.q + ((size_t)tb * n_head + h) * HD;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; kk++) {
            const int c = 16 * kk + 2 * i4, kl = PRECISE ? kk : 0;
            split2(qa[c] * scale_log2, qa[c + 1] * scale_log2, qh[kk][0], ql[kl][0]);
            split2(qb[c] * scale_log2, qb[c + 1] * scale_log2, qh[kk][1], ql[kl][1]);
            split2(qa[c + 8] * scale_log2, qa[c + 9] * scale_log2, qh[kk][2], ql[kl][2]);
            split2(qb[c + 8] * scale_log2, qb[c + 9] * scale_log2, qh[kk][3], ql[kl][3]);
        }
    }
    float o[DTILES][4];
#pragma unroll
    for (int d = 0; d < DTILES; d++) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
    float ma = -INFINITY, mb = -INFINITY, la = 0.0f, lb = 0.0f; // la, lb: this lane's share
    __syncthreads();
    const int kmax = s_kmax;
    for (int kb = 0; kb < kmax; kb += FLASH_KEYS) {
        __syncthreads(); // the previous keys are no longer read
        // 8 lanes take 8 keys at the same 4 dimensions: 64 contiguous bytes of each key per
        // warp, and the transposed stores of values fall on different banks
        for (int idx = threadIdx.x; idx < FLASH_KEYS * HD / 4; idx += FLASH_WARPS * WARP) {
            const int rest = idx / 8, j = 8 * (rest / (HD / 4)) + idx % 8, d = 4 * (rest % (HD / 4)), p = kb + j;
            float4 kv4 = make_float4(0, 0, 0, 0), vv4 = kv4; // past the last key: zeros, masked below
            if (p < kmax) {
                const int64_t base = kv_row(table, p, il, n_layer) * kv_dim + koff + d;
                kv4 = *(const float4 *)(K + base);
                vv4 = *(const float4 *)(V + base);
            }
            uint32_t hi, lo;
            split2(kv4.x, kv4.y, hi, lo);
            *(uint32_t *)&k_hi[j * KS + d] = hi;
            if constexpr (PRECISE) *(uint32_t *)&k_lo[j * KS + d] = lo;
            split2(kv4.z, kv4.w, hi, lo);
            *(uint32_t *)&k_hi[j * KS + d + 2] = hi;
            if constexpr (PRECISE) *(uint32_t *)&k_lo[j * KS + d + 2] = lo;
            const float vs[4] = {vv4.x, vv4.y, vv4.z, vv4.w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const __half vh = __float2half_rn(vs[e]);
                v_hi[(d + e) * VS + j] = vh;
                if constexpr (PRECISE) v_lo[(d + e) * VS + j] = __float2half_rn(vs[e] - __half2float(vh));
            }
        }
        __syncthreads();
        // scores (log2 units) of the two rows against FLASH_KEYS keys
        float sc[NTILES][4];
#pragma unroll
        for (int j = 0; j < NTILES; j++) {
            sc[j][0] = sc[j][1] = sc[j][2] = sc[j][3] = 0.0f;
            const int kr = (8 * j + g) * KS + 2 * i4;
#pragma unroll
            for (int kk = 0; kk < KSTEPS; kk++) {
                const uint32_t b0 = *(const uint32_t *)&k_hi[kr + 16 * kk], b1 = *(const uint32_t *)&k_hi[kr + 16 * kk + 8];
                if constexpr (PRECISE)
                    mma3(sc[j], qh[kk], ql[kk], b0, b1, *(const uint32_t *)&k_lo[kr + 16 * kk],
                         *(const uint32_t *)&k_lo[kr + 16 * kk + 8]);
                else
                    mma16816(sc[j], qh[kk], b0, b1);
            }
        }
        float xa = -INFINITY, xb = -INFINITY;
#pragma unroll
        for (int j = 0; j < NTILES; j++) {
            const int key = kb + 8 * j + 2 * i4;
            if (key > pa) sc[j][0] = -INFINITY;
            if (key + 1 > pa) sc[j][1] = -INFINITY;
            if (key > pb) sc[j][2] = -INFINITY;
            if (key + 1 > pb) sc[j][3] = -INFINITY;
            xa = fmaxf(xa, fmaxf(sc[j][0], sc[j][1]));
            xb = fmaxf(xb, fmaxf(sc[j][2], sc[j][3]));
        }
        // the four lanes of a row share its max
        xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 1));
        xa = fmaxf(xa, __shfl_xor_sync(0xffffffffu, xa, 2));
        xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 1));
        xb = fmaxf(xb, __shfl_xor_sync(0xffffffffu, xb, 2));
        // key 0 is in every row's range and comes first, so the running max is finite from here
        const float na = fmaxf(ma, xa), nb = fmaxf(mb, xb);
        const float ca = exp2f(ma - na), cb = exp2f(mb - nb);
        ma = na;
        mb = nb;
        la *= ca;
        lb *= cb;
#pragma unroll
        for (int d = 0; d < DTILES; d++) {
            o[d][0] *= ca;
            o[d][1] *= ca;
            o[d][2] *= cb;
            o[d][3] *= cb;
        }
#pragma unroll
        for (int j = 0; j < NTILES; j++) {
            sc[j][0] = exp2f(sc[j][0] - ma);
            sc[j][1] = exp2f(sc[j][1] - ma);
            sc[j][2] = exp2f(sc[j][2] - mb);
            sc[j][3] = exp2f(sc[j][3] - mb);
            la += sc[j][0] + sc[j][1];
            lb += sc[j][2] + sc[j][3];
        }
        // weights times values: the score tiles 2s, 2s + 1 are the A fragment of keys 16s..16s+15
#pragma unroll
        for (int s2 = 0; s2 < NTILES / 2; s2++) {
            uint32_t ph[4], pl[4];
            split2(sc[2 * s2][0], sc[2 * s2][1], ph[0], pl[0]);
            split2(sc[2 * s2][2], sc[2 * s2][3], ph[1], pl[1]);
            split2(sc[2 * s2 + 1][0], sc[2 * s2 + 1][1], ph[2], pl[2]);
            split2(sc[2 * s2 + 1][2], sc[2 * s2 + 1][3], ph[3], pl[3]);
#pragma unroll
            for (int d = 0; d < DTILES; d++) {
                const int vr = (8 * d + g) * VS + 16 * s2 + 2 * i4;
                const uint32_t b0 = *(const uint32_t *)&v_hi[vr], b1 = *(const uint32_t *)&v_hi[vr + 8];
                if constexpr (PRECISE)
                    mma3(o[d], ph, pl, b0, b1, *(const uint32_t *)&v_lo[vr], *(const uint32_t *)&v_lo[vr + 8]);
                else
                    mma16816(o[d], ph, b0, b1);
            }
        }
    }
    la += __shfl_xor_sync(0xffffffffu, la, 1);
    la += __shfl_xor_sync(0xffffffffu, la, 2);
    lb += __shfl_xor_sync(0xffffffffu, lb, 1);
    lb += __shfl_xor_sync(0xffffffffu, lb, 2);
    float *oa = a.out + ((size_t)ta * n_head + h) * HD, *ob = a.out + ((size_t)tb * n_head + h) * HD;
#pragma unroll
    for (int d = 0; d < DTILES; d++) {
        const int c = 8 * d + 2 * i4;
        if (ra < tn) *(float2 *)(oa + c) = make_float2(o[d][0] / la, o[d][1] / la);
        if (rb < tn) *(float2 *)(ob + c) = make_float2(o[d][2] / lb, o[d][3] / lb);
    }
}

// ---- launch -------------------------------------------------------------------------------

void launch_attention(cudaStream_t s, const att_step *a, const model_hparams *hp, int il) {
    const int64_t kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    const int group = hp->n_head / hp->n_head_kv, hd = hp->head_dim;
    const float scale = 1.0f / sqrtf((float)hd);
    if (a->flash && (hd == 32 || hd == 64 || hd == 128)) {
        const dim3 grid(a->n_tiles, hp->n_head);
        const float scale_log2 = scale * 1.4426950408889634f; // exp(x) = exp2(x log2 e)
#define FLASH(D, P) launch(s, grid, FLASH_WARPS * WARP, flash_kernel<D, P>, *a, hp->n_head, group, il, hp->n_layer, kv_dim, scale_log2)
#define FLASH_HD(P) if (hd == 32) FLASH(32, P); else if (hd == 64) FLASH(64, P); else FLASH(128, P)
        if (a->precise) FLASH_HD(true);
        else FLASH_HD(false);
#undef FLASH_HD
#undef FLASH
        return;
    }
    const dim3 grid(a->n, hp->n_head, a->splits);
    const int epl = (hd + WARP - 1) / WARP;
#define SPLIT(E) launch(s, grid, ATT_WARPS * WARP, split_kernel<E>, *a, hp->n_head, group, hd, il, hp->n_layer, kv_dim, scale)
    if (epl <= 1) SPLIT(1);
    else if (epl <= 2) SPLIT(2);
    else if (epl <= 4) SPLIT(4);
    else SPLIT(8);
#undef SPLIT
    if (a->splits > 1) launch(s, dim3(a->n, hp->n_head), 128, split_merge_kernel, *a, hp->n_head, hd);
}
