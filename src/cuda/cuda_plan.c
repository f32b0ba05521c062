/* Host-side plans of the CUDA backend (cuda_plan.h). */
#include "cuda/cuda_plan.h"

#include "base/err.h"
#include "tensor/qtype.h"

#include <stdlib.h>
#include <string.h>

static size_t align_up(size_t n) { return (n + CUDA_ALIGN - 1) / CUDA_ALIGN * CUDA_ALIGN; }

/* Adds src unless already planned. */
static int plan_add(cuda_weight_plan *p, const void *src, size_t bytes, int cap) {
    if (!src) return 0;
    if (cuda_plan_offset(p, src) != (size_t)-1) return 0;
    if (p->n >= cap) return err_set("cuda: weight plan overflow (%d arrays)", cap);
    p->items[p->n++] = (cuda_upload){src, bytes, p->total};
    p->total += align_up(bytes);
    return 0;
}

static size_t matrix_bytes(const model_matrix *w) {
    return qtype_row_size(w->type, (uint64_t)w->n_in) * (size_t)w->n_out;
}

int cuda_plan_weights(const model *m, cuda_weight_plan *p) {
    const model_hparams *hp = &m->hp;
    /* per layer: 7 matrices, 2 norms, 2 qk norms, 3 biases; plus embeddings, output, norm */
    int cap = 14 * hp->n_layer + 3;
    size_t d = (size_t)hp->n_embd, hd = (size_t)hp->head_dim, f = sizeof(float);
    size_t q_dim = (size_t)hp->n_head * hd, kv_dim = (size_t)hp->n_head_kv * hd;
    *p = (cuda_weight_plan){calloc((size_t)cap, sizeof *p->items), 0, 0};
    if (!p->items) return err_set("out of memory");
    if (plan_add(p, m->tok_embd.data, matrix_bytes(&m->tok_embd), cap) ||
        plan_add(p, m->output.data, matrix_bytes(&m->output), cap) ||
        plan_add(p, m->output_norm, d * f, cap))
        goto fail;
    for (int il = 0; il < hp->n_layer; il++) {
        const model_layer *l = &m->layers[il];
        const model_matrix *ws[7] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (int i = 0; i < 7; i++)
            if (plan_add(p, ws[i]->data, matrix_bytes(ws[i]), cap)) goto fail;
        if (plan_add(p, l->attn_norm, d * f, cap) || plan_add(p, l->ffn_norm, d * f, cap) ||
            plan_add(p, l->q_norm, hd * f, cap) || plan_add(p, l->k_norm, hd * f, cap) ||
            plan_add(p, l->bq, q_dim * f, cap) || plan_add(p, l->bk, kv_dim * f, cap) ||
            plan_add(p, l->bv, kv_dim * f, cap))
            goto fail;
    }
    return 0;
fail:
    cuda_plan_weights_free(p);
    return -1;
}

size_t cuda_plan_offset(const cuda_weight_plan *p, const void *src) {
    for (int i = 0; i < p->n; i++)
        if (p->items[i].src == src) return p->items[i].offset;
    return (size_t)-1;
}

void cuda_plan_weights_free(cuda_weight_plan *p) {
    free(p->items);
    *p = (cuda_weight_plan){0};
}

static int64_t max3(int64_t a, int64_t b, int64_t c) { return a > b ? (a > c ? a : c) : (b > c ? b : c); }

void cuda_plan_scratch(const model_hparams *hp, int32_t max_batch, cuda_scratch_plan *p) {
    const size_t B = (size_t)max_batch, f = sizeof(float);
    const int64_t q_dim = (int64_t)hp->n_head * hp->head_dim, kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    size_t at = 0;
    *p = (cuda_scratch_plan){0};
    p->logit_rows = max_batch < CUDA_LOGIT_ROWS ? max_batch : CUDA_LOGIT_ROWS;
    p->wide = max3(hp->n_embd, q_dim, hp->n_ff);
    /* cuBLAS takes batches above the matrix-vector kernels' limits (cuda_matmul.cu) */
    p->half_bytes = max_batch > CUDA_MMV_TOKENS ? B * (size_t)p->wide * 2 : 0;
    p->deq_bytes = max_batch > CUDA_MMV_TOKENS ? CUDA_DEQ_SCRATCH : 0;
    p->att_parts = (int64_t)max_batch * hp->n_head > CUDA_ATT_MIN_PARTS ? (int64_t)max_batch * hp->n_head
                                                                         : CUDA_ATT_MIN_PARTS;
#define PLACE(field, bytes) (p->field = at, at += align_up(bytes))
    PLACE(x, B * (size_t)hp->n_embd * f);
    PLACE(xn, B * (size_t)(hp->n_embd > q_dim ? hp->n_embd : q_dim) * f);
    PLACE(q, B * (size_t)q_dim * f);
    PLACE(k, B * (size_t)kv_dim * f);
    PLACE(v, B * (size_t)kv_dim * f);
    PLACE(att, B * (size_t)q_dim * f);
    PLACE(att_part, (size_t)p->att_parts * (size_t)(hp->head_dim + 2) * f);
    PLACE(gate, B * (size_t)hp->n_ff * f);
    PLACE(up, B * (size_t)hp->n_ff * f);
    PLACE(logit_in, (size_t)p->logit_rows * (size_t)hp->n_embd * f);
    PLACE(logits, (size_t)p->logit_rows * (size_t)hp->n_vocab * f);
    PLACE(rope_cs, B * (size_t)hp->rope_dim * f);
    PLACE(rope_freq, (size_t)(hp->rope_dim / 2 + 1) * sizeof(double));
    PLACE(half, p->half_bytes);
    PLACE(deq, p->deq_bytes);
#undef PLACE
    p->total = at;
}

size_t cuda_plan_kv_bytes(const model *m, int32_t n_blocks) {
    return (size_t)n_blocks * model_kv_block_bytes(m, MODEL_KV_F32);
}

/* ---- one batch ---------------------------------------------------------------------------- */

/* End (exclusive) of the run of tokens from i on that belong to batch[i]'s sequence; *len
 * receives the block-table length the run needs (up to its furthest position). */
static int32_t run_end(const model_token *batch, int32_t n, int32_t i, int32_t *len) {
    int32_t max_pos = batch[i].pos, k = i + 1;
    for (; k < n && batch[k].seq == batch[i].seq; k++)
        if (batch[k].pos > max_pos) max_pos = batch[k].pos;
    *len = max_pos / MODEL_KV_BLOCK + 1;
    return k;
}

int32_t cuda_att_splits(int32_t n, int32_t n_head, int32_t n_sm, int64_t parts) {
    const int64_t units = (int64_t)n * n_head;
    int64_t s = units > 0 ? (2 * (int64_t)n_sm + units - 1) / units : 1;
    if (s > CUDA_ATT_SPLIT_MAX) s = CUDA_ATT_SPLIT_MAX;
    if (units > 0 && s * units > parts) s = parts / units;
    return s < 1 ? 1 : (int32_t)s;
}

int32_t cuda_step_bt_need(const model_token *batch, int32_t n) {
    int32_t need = 0;
    for (int32_t i = 0; i < n;) {
        int32_t len;
        i = run_end(batch, n, i, &len);
        need += len;
    }
    return need;
}

int cuda_step_pack(const model_token *batch, int32_t n, int32_t max_batch, int32_t bt_cap,
                   int32_t *ints, cuda_step *st) {
    int32_t *token = ints, *pos = ints + max_batch, *bt_off = ints + 2 * max_batch;
    int32_t *out_tok = ints + 3 * max_batch, *tile_first = ints + 4 * max_batch, *tile_n = ints + 5 * max_batch;
    int32_t *bt = ints + CUDA_STEP_FIXED * max_batch;
    *st = (cuda_step){n, 0, 0, 0, 0, 0};
    if (n > max_batch) return err_set("cuda: batch of %d tokens exceeds %d", n, max_batch);
    for (int32_t i = 0; i < n;) {
        int32_t len, end = run_end(batch, n, i, &len);
        if (st->bt_len + len > bt_cap)
            return err_set("cuda: the batch's block tables need more than %d entries", bt_cap);
        memcpy(bt + st->bt_len, batch[i].seq->blocks, (size_t)len * sizeof *bt);
        for (int32_t k = i; k < end; k++) {
            token[k] = batch[k].token;
            pos[k] = batch[k].pos;
            bt_off[k] = st->bt_len;
            if (batch[k].logits) out_tok[st->n_out++] = k;
            if (batch[k].pos + 1 > st->max_pos) st->max_pos = batch[k].pos + 1;
        }
        for (int32_t k = i; k < end; k += CUDA_FLASH_ROWS) {
            tile_first[st->n_tiles] = k;
            tile_n[st->n_tiles++] = end - k < CUDA_FLASH_ROWS ? end - k : CUDA_FLASH_ROWS;
        }
        if (end - i > st->max_run) st->max_run = end - i;
        st->bt_len += len;
        i = end;
    }
    return 0;
}
