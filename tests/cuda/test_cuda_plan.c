/* The CUDA backend's host-side plans (src/cuda/cuda_plan.h), which run on every machine: the
 * weight layout (every array planned once, aligned, without overlap, tied embeddings shared),
 * the scratch buffers, and the packing of a batch (block tables shared within a run of one
 * sequence, logits rows in batch order). Also what --device cuda answers without a GPU. */
#include "test.h"

#include "base/err.h"
#include "cuda/cuda.h"
#include "cuda/cuda_plan.h"
#include "engine/device.h"
#include "model/randmodel.h"
#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/quant.h"

#include <stdio.h>
#include <stdlib.h>

static model *made(const char *shape, uint32_t type) {
    const char *path = test_tmp_path("cuda-plan.gguf");
    const randmodel_shape *s = randmodel_find(shape);
    CHECK_MSG(s && randmodel_write(s, type, path, 2, 7, NULL, NULL) == 0, "%s", err_msg());
    model *m = model_load(path);
    CHECK_MSG(m != NULL, "%s", err_msg());
    return m;
}

static size_t mat_bytes(const model_matrix *w) {
    return qtype_row_size(w->type, (uint64_t)w->n_in) * (size_t)w->n_out;
}

/* Every planned array lies inside the allocation, aligned, disjoint from the others. */
static void check_layout(const cuda_weight_plan *p) {
    for (int i = 0; i < p->n; i++) {
        const cuda_upload *a = &p->items[i];
        CHECK_EQ_INT(a->offset % CUDA_ALIGN, 0);
        CHECK(a->offset + a->bytes <= p->total);
        for (int j = i + 1; j < p->n; j++) {
            const cuda_upload *b = &p->items[j];
            CHECK_MSG(a->offset + a->bytes <= b->offset || b->offset + b->bytes <= a->offset,
                      "arrays %d and %d overlap", i, j);
            CHECK(a->src != b->src);
        }
    }
}

static void check_weights(const char *shape, uint32_t type) {
    model *m = made(shape, type);
    if (!m) return;
    cuda_weight_plan p;
    CHECK_MSG(cuda_plan_weights(m, &p) == 0, "%s", err_msg());
    check_layout(&p);
    size_t want = 0;
    int arrays = 0;
    /* every role is planned, with its own bytes */
    CHECK(cuda_plan_offset(&p, m->tok_embd.data) != (size_t)-1);
    CHECK(cuda_plan_offset(&p, m->output.data) != (size_t)-1);
    for (int il = 0; il < m->hp.n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_matrix *ws[7] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (int i = 0; i < 7; i++) {
            CHECK(cuda_plan_offset(&p, ws[i]->data) != (size_t)-1);
            want += mat_bytes(ws[i]);
            arrays++;
        }
        CHECK(cuda_plan_offset(&p, l->attn_norm) != (size_t)-1);
        if (l->q_norm) CHECK(cuda_plan_offset(&p, l->q_norm) != (size_t)-1);
    }
    size_t sum = 0;
    for (int i = 0; i < p.n; i++) sum += p.items[i].bytes;
    /* tied embeddings: one array for both roles */
    bool tied = m->output.data == m->tok_embd.data;
    want += mat_bytes(&m->tok_embd) + (tied ? 0 : mat_bytes(&m->output));
    arrays += tied ? 1 : 2;
    CHECK(sum >= want && p.n > arrays);
    CHECK(p.total >= sum && p.total < sum + (size_t)p.n * CUDA_ALIGN);
    CHECK_EQ_INT(cuda_plan_offset(&p, &p), (size_t)-1);
    cuda_plan_weights_free(&p);
    model_free(m);
}

TEST(cuda_plan_weights_llama_q4_k) { check_weights("test-llama", QT_Q4_K); }
TEST(cuda_plan_weights_qwen3_tied_bf16) { check_weights("test-qwen3", QT_BF16); }

TEST(cuda_plan_scratch_buffers) {
    const randmodel_shape *s = randmodel_find("qwen3-0.6b");
    model_hparams hp = {.arch = ARCH_QWEN3, .n_vocab = s->n_vocab, .n_embd = s->n_embd,
                        .n_layer = s->n_layer, .n_head = s->n_head, .n_head_kv = s->n_head_kv,
                        .head_dim = s->head_dim, .n_ff = s->n_ff, .rope_dim = s->head_dim};
    cuda_scratch_plan small, mid, big;
    cuda_plan_scratch(&hp, 1, &small);
    cuda_plan_scratch(&hp, 32, &mid);
    cuda_plan_scratch(&hp, 512, &big);
    /* runners whose batches stay in the matrix-vector kernels never reach cuBLAS: no
     * conversion or dequantization scratch */
    CHECK_EQ_INT(small.half_bytes, 0);
    CHECK_EQ_INT(small.deq_bytes, 0);
    CHECK_EQ_INT(mid.half_bytes, 32 * 3072 * 2);
    CHECK_EQ_INT(mid.deq_bytes, CUDA_DEQ_SCRATCH);
    CHECK_EQ_INT(big.deq_bytes, CUDA_DEQ_SCRATCH);
    /* attention's partial results: at least CUDA_ATT_MIN_PARTS, else one per (token, head) */
    CHECK_EQ_INT(small.att_parts, CUDA_ATT_MIN_PARTS);
    CHECK_EQ_INT(big.att_parts, 512 * 16);
    CHECK_EQ_INT(small.logit_rows, 1);
    CHECK_EQ_INT(big.logit_rows, CUDA_LOGIT_ROWS);
    CHECK_EQ_INT(big.wide, 3072);
    /* buffers in order, aligned, each big enough for its rows */
    const cuda_scratch_plan *p = &big;
    size_t offs[] = {p->x,      p->xn,     p->q,      p->k,         p->v,         p->att,
                     p->att_part, p->gate, p->up,     p->logit_in,  p->logits,    p->rope_cs,
                     p->rope_freq, p->half, p->deq,   p->total};
    size_t need[] = {512 * 1024 * 4, 512 * 2048 * 4, 512 * 2048 * 4, 512 * 1024 * 4, 512 * 1024 * 4,
                     512 * 2048 * 4, (size_t)512 * 16 * 130 * 4, 512 * 3072 * 4, 512 * 3072 * 4, 64 * 1024 * 4,
                     (size_t)64 * 151936 * 4, 512 * 128 * 4, 65 * 8, 512 * 3072 * 2, CUDA_DEQ_SCRATCH};
    for (size_t i = 0; i + 1 < sizeof offs / sizeof offs[0]; i++) {
        CHECK_EQ_INT(offs[i] % CUDA_ALIGN, 0);
        CHECK_MSG(offs[i + 1] - offs[i] >= need[i], "buffer %zu: %zu bytes, needs %zu", i,
                  offs[i + 1] - offs[i], need[i]);
    }
}

TEST(cuda_step_packs_block_tables) {
    int32_t blocks_a[4] = {7, 3, 9, 1}, blocks_b[2] = {5, 6};
    model_seq a = {.blocks = blocks_a, .n_ctx = 64}, b = {.blocks = blocks_b, .n_ctx = 32};
    float la[1], lb[1];
    /* a prefill run of a (positions 14..17: blocks 0 and 1), b decoding at 20, a again at 33 */
    model_token batch[6] = {{&a, 10, 14, NULL}, {&a, 11, 15, NULL}, {&a, 12, 16, NULL},
                            {&a, 13, 17, la},   {&b, 20, 20, lb},   {&a, 21, 33, NULL}};
    enum { B = 8 };
    int32_t ints[CUDA_STEP_FIXED * B + 16];
    cuda_step st;
    CHECK_EQ_INT(cuda_step_bt_need(batch, 6), 2 + 2 + 3);
    CHECK(cuda_step_pack(batch, 6, B, 6, ints, &st) == -1);
    CHECK(strstr(err_msg(), "block tables") != NULL);
    CHECK(cuda_step_pack(batch, 6, B, 16, ints, &st) == 0);
    CHECK_EQ_INT(st.n, 6);
    CHECK_EQ_INT(st.n_out, 2);
    CHECK_EQ_INT(st.bt_len, 7);
    CHECK_EQ_INT(st.max_pos, 34);
    const int32_t *token = ints, *pos = ints + B, *bt_off = ints + 2 * B, *out = ints + 3 * B;
    const int32_t *bt = ints + CUDA_STEP_FIXED * B;
    int32_t want_off[6] = {0, 0, 0, 0, 2, 4}, want_bt[7] = {7, 3, 5, 6, 7, 3, 9};
    for (int t = 0; t < 6; t++) {
        CHECK_EQ_INT(token[t], batch[t].token);
        CHECK_EQ_INT(pos[t], batch[t].pos);
        CHECK_EQ_INT(bt_off[t], want_off[t]);
        /* the block a kernel looks up is the sequence's own */
        CHECK_EQ_INT(bt[bt_off[t] + pos[t] / MODEL_KV_BLOCK], batch[t].seq->blocks[pos[t] / MODEL_KV_BLOCK]);
    }
    for (int i = 0; i < 7; i++) CHECK_EQ_INT(bt[i], want_bt[i]);
    CHECK_EQ_INT(out[0], 3);
    CHECK_EQ_INT(out[1], 4);
    /* tiles: one per run here (a's 4 tokens, b's, a's last) */
    const int32_t *tile_first = ints + 4 * B, *tile_n = ints + 5 * B;
    CHECK_EQ_INT(st.n_tiles, 3);
    CHECK_EQ_INT(st.max_run, 4);
    CHECK_EQ_INT(tile_first[0], 0);
    CHECK_EQ_INT(tile_n[0], 4);
    CHECK_EQ_INT(tile_first[1], 4);
    CHECK_EQ_INT(tile_n[1], 1);
    CHECK_EQ_INT(tile_first[2], 5);
    CHECK_EQ_INT(tile_n[2], 1);
    CHECK(cuda_step_pack(batch, 6, 4, 16, ints, &st) == -1);
}

/* A long run is cut into tiles of CUDA_FLASH_ROWS tokens, the last one shorter. */
TEST(cuda_step_tiles_long_runs) {
    enum { N = 2 * CUDA_FLASH_ROWS + 5 };
    int32_t blocks[N / MODEL_KV_BLOCK + 1];
    for (int i = 0; i < N / MODEL_KV_BLOCK + 1; i++) blocks[i] = i;
    model_seq a = {.blocks = blocks, .n_ctx = N};
    model_token batch[N];
    for (int t = 0; t < N; t++) batch[t] = (model_token){&a, t, t, NULL};
    int32_t ints[CUDA_STEP_FIXED * N + N / MODEL_KV_BLOCK + 1];
    cuda_step st;
    CHECK(cuda_step_pack(batch, N, N, N / MODEL_KV_BLOCK + 1, ints, &st) == 0);
    CHECK_EQ_INT(st.n_tiles, 3);
    CHECK_EQ_INT(st.max_run, N);
    const int32_t *tile_first = ints + 4 * N, *tile_n = ints + 5 * N;
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(tile_first[i], i * CUDA_FLASH_ROWS);
        CHECK_EQ_INT(tile_n[i], i < 2 ? CUDA_FLASH_ROWS : 5);
    }
}

/* Decode attention splits positions until about two blocks per multiprocessor. */
TEST(cuda_att_splits_fill_the_gpu) {
    CHECK_EQ_INT(cuda_att_splits(1, 16, 132, 1024), 17);    /* 272 blocks */
    CHECK_EQ_INT(cuda_att_splits(1, 2, 132, 1024), CUDA_ATT_SPLIT_MAX);
    CHECK_EQ_INT(cuda_att_splits(1, 2, 132, 40), 20);       /* bounded by the scratch */
    CHECK_EQ_INT(cuda_att_splits(64, 16, 132, 1024), 1);    /* enough blocks already */
    CHECK_EQ_INT(cuda_att_splits(2048, 16, 132, 32768), 1);
}

TEST(cuda_device_specs) {
    CHECK(device_spec_valid(NULL) && device_spec_valid("cpu") && device_spec_valid("cuda") &&
          device_spec_valid("cuda:0") && device_spec_valid("cuda:12"));
    CHECK(!device_spec_valid("gpu") && !device_spec_valid("cuda:") && !device_spec_valid("cuda:x") &&
          !device_spec_valid("cuda:1:2") && !device_spec_valid("CPU") && !device_spec_valid(""));
}

/* Without a GPU (or without CUDA compiled in) --device cuda fails with a message that says
 * which; with one it opens, and the CPU device always does. */
TEST(cuda_device_open_answers_clearly) {
    model *m = made("test-llama", QT_Q8_0);
    if (!m) return;
    device *cpu = device_open("cpu", m, 2);
    /* the CPU computes with m, or with its packed copy on AVX-512 (Q8_0 matrices) */
    CHECK(cpu && !device_is_gpu(cpu) &&
          (device_model(cpu) == m || (device_model(cpu)->base == m && matmul_backend() == MATMUL_AVX512)));
    CHECK(device_gpu_bandwidth(cpu) < 0);
    CHECK(device_open("tpu", m, 0) == NULL && strstr(err_msg(), "unknown device") != NULL);
    device *gpu = device_open("cuda", m, 0);
    char msg[512];
    snprintf(msg, sizeof msg, "%s", err_msg());
    if (cuda_device_count() < 1) {
        CHECK(gpu == NULL);
        CHECK_MSG(cuda_built() ? strstr(msg, "GPU") != NULL : strstr(msg, "built without CUDA") != NULL,
                  "message: %s", msg);
    } else {
        CHECK_MSG(gpu && device_is_gpu(gpu), "%s", msg);
        CHECK(device_open("cuda:999", m, 0) == NULL && strstr(err_msg(), "no such GPU"));
    }
    device_close(gpu);
    device_close(cpu);
    model_free(m);
}

/* The CPU device makes the same objects forward.c does: identical logits. */
TEST(cuda_cpu_device_matches_forward) {
    model *m = made("test-qwen3", QT_Q4_0);
    if (!m) return;
    device *d = device_open(NULL, m, 2);
    int32_t ids[5] = {1, 7, 300, 42, 5}, V = m->hp.n_vocab;
    float *a = malloc(5 * (size_t)V * sizeof(float)), *b = malloc(5 * (size_t)V * sizeof(float));
    model_ctx *ca = d ? device_ctx_new(d, 32) : NULL, *cb = model_ctx_new_threads(m, 32, 2);
    CHECK(ca && cb && a && b);
    if (ca && cb && a && b) {
        CHECK(model_forward(ca, ids, 5, 0, a, true) == 0 && model_forward(cb, ids, 5, 0, b, true) == 0);
        CHECK(memcmp(a, b, 5 * (size_t)V * sizeof(float)) == 0);
        model_seq *s = device_seq_new(d, 20, MODEL_KV_F32);
        CHECK(s && model_seq_capacity(s) == 20 && model_kv_n_blocks(s->kv) == 2);
        model_seq_free(s);
    }
    /* a sequence longer than its store is refused, and the store freed */
    CHECK(model_seq_own(model_kv_new(m, 1, MODEL_KV_F32), MODEL_KV_BLOCK + 1) == NULL);
    model_ctx_free(ca);
    model_ctx_free(cb);
    device_close(d);
    free(a);
    free(b);
    model_free(m);
}

/* The GPU's decoders, run on the host, against quant.c: every type, rows of several blocks
 * of random codes (any bit pattern, scales kept finite), float rows of odd lengths and at
 * unaligned chunk starts (the F16/BF16 path without vector loads). */
TEST(cuda_dequant_matches_quant_c) {
    if (!cuda_built()) SKIP("veil was built without CUDA");
    static const uint32_t types[] = {QT_F32, QT_F16, QT_BF16, QT_Q8_0, QT_Q4_0, QT_Q4_K, QT_Q6_K};
    uint64_t seed = 88172645463325252ull;
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t t = types[ti];
        const qtype_info *info = qtype_get(t);
        const bool block = info->block_size > 1;
        const int64_t lens[2] = {block ? 4 * (int64_t)info->block_size : 1000, block ? 256 : 37};
        for (int li = 0; li < 2; li++) {
            const int64_t n = lens[li];
            const size_t bytes = qtype_row_size(t, (uint64_t)n);
            uint8_t *row = aligned_alloc(CUDA_ALIGN, (bytes + CUDA_ALIGN) / CUDA_ALIGN * CUDA_ALIGN);
            float *want = malloc((size_t)n * sizeof(float)), *got = malloc((size_t)n * sizeof(float));
            if (!row || !want || !got) goto next;
            for (size_t i = 0; i < bytes; i++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                row[i] = (uint8_t)(seed >> 24);
            }
            if (block) {
                /* small finite half scales where the layout keeps them: no NaN or inf noise */
                const size_t bs = info->type_size;
                for (size_t b = 0; b < bytes / bs; b++) {
                    uint8_t *p = row + b * bs;
                    const size_t at[2] = {t == QT_Q6_K ? 208 : 0, t == QT_Q4_K ? 2 : (size_t)-1};
                    for (int k = 0; k < 2; k++)
                        if (at[k] != (size_t)-1) p[at[k] + 1] &= 0x3b; /* exponent <= 14: |x| < 2 */
                }
            } else if (t != QT_F32) {
                for (size_t i = 1; i < bytes; i += 2) row[i] &= 0x3f; /* finite: no inf/NaN bits */
            } else {
                for (size_t i = 3; i < bytes; i += 4) row[i] &= 0x3f;
            }
            quant_dequantize_row(t, row, want, n);
            CHECK_MSG(cuda_dequant_row_host(t, row, n, got) == 0, "%s", err_msg());
            int64_t bad = -1;
            for (int64_t i = 0; i < n && bad < 0; i++)
                if (memcmp(&want[i], &got[i], sizeof(float)) != 0) bad = i;
            CHECK_MSG(bad < 0, "%s, %lld values: value %lld is %g, quant.c says %g", info->name,
                      (long long)n, (long long)bad, bad < 0 ? 0.0 : (double)got[bad],
                      bad < 0 ? 0.0 : (double)want[bad]);
            /* a row that does not start aligned is refused, not misread */
            CHECK(cuda_dequant_row_host(t, row + 2, n, got) == -1);
        next:
            free(row);
            free(want);
            free(got);
        }
    }
}
