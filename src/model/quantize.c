/* Model conversion between tensor types (quantize.h). Each output tensor is produced by the
 * GGUF writer's fill callback when its turn to be written comes, so only one converted tensor
 * is in memory at a time; the input stays mmapped. */
#include "model/quantize.h"

#include "base/err.h"
#include "model/gguf.h"
#include "tensor/quant.h"
#include "tensor/qtype.h"

#include <stdlib.h>
#include <string.h>

int quantize_ftype(uint32_t type) {
    switch (type) {
    case QT_F16: return 1;
    case QT_Q4_0: return 2;
    case QT_Q8_0: return 7;
    case QT_Q4_K: return 14;
    case QT_Q6_K: return 18;
    case QT_BF16: return 32;
    default: return -1;
    }
}

static const char WHY_NOT_MATRIX[] = "not a 2-D .weight matrix";
static const char WHY_ODD_ROW[] = "row length not a multiple of the block size";
static const char WHY_FALLBACK[] = "row length not a multiple of 256";
static const char WHY_UNDECODABLE[] = "source type cannot be decoded";
static const char WHY_NOT_TARGET[] = "not a type veil converts to";

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

uint32_t quantize_choose(uint32_t target, const char *name, uint32_t n_dims, const uint64_t *ne,
                         uint32_t src_type, const char **why) {
    const char *reason = NULL;
    uint32_t to = target;
    if (quantize_ftype(target) < 0) reason = WHY_NOT_TARGET;
    else if (n_dims != 2 || !ends_with(name, ".weight")) reason = WHY_NOT_MATRIX;
    else if (ne[0] % qtype_get(target)->block_size == 0) reason = NULL;
    else if (qtype_get(target)->block_size == 256 && ne[0] % 32 == 0) {
        to = QT_Q8_0;
        reason = WHY_FALLBACK;
    } else reason = WHY_ODD_ROW;
    if (reason != WHY_FALLBACK && reason) to = src_type;
    if (to != src_type && !qtype_supported(src_type)) {
        to = src_type;
        reason = WHY_UNDECODABLE;
    }
    if (why) *why = reason;
    return to;
}

/* ---- the threaded row converter ------------------------------------------------------ */

typedef struct rows_job {
    uint32_t type;
    int64_t n_in, n_rows;
    size_t row_bytes;
    quantize_row_src src;
    void *ud;
    unsigned char *dst;
    float *scratch;     /* n_in floats per thread */
    int64_t *bad_row;   /* per thread: first row that failed to encode, or -1 */
} rows_job;

static void rows_worker(void *arg, int ith, int nth) {
    rows_job *j = arg;
    float *x = j->scratch + (size_t)ith * (size_t)j->n_in;
    j->bad_row[ith] = -1;
    for (int64_t r = j->n_rows * ith / nth; r < j->n_rows * (ith + 1) / nth; r++) {
        j->src(j->ud, r, x);
        if (quant_quantize_row(j->type, x, j->dst + (size_t)r * j->row_bytes, j->n_in)) {
            j->bad_row[ith] = r;
            return;
        }
    }
}

int quantize_rows(tpool *pool, uint32_t type, int64_t n_in, int64_t n_rows, quantize_row_src src,
                  void *ud, void *dst) {
    int nth = tpool_size(pool);
    rows_job j = {type, n_in, n_rows, qtype_row_size(type, (uint64_t)n_in), src, ud, dst, NULL, NULL};
    if (n_in <= 0 || j.row_bytes == 0)
        return err_set("quantize: rows of %lld values cannot be %s", (long long)n_in,
                       qtype_get(type) ? qtype_get(type)->name : "?");
    j.scratch = malloc((size_t)nth * (size_t)n_in * sizeof(float));
    j.bad_row = malloc((size_t)nth * sizeof(int64_t));
    int rc = -1;
    if (!j.scratch || !j.bad_row) {
        err_set("out of memory for %d rows of %lld floats", nth, (long long)n_in);
        goto out;
    }
    tpool_run(pool, rows_worker, &j);
    int64_t bad = -1;
    for (int i = 0; i < nth; i++)
        if (j.bad_row[i] >= 0 && (bad < 0 || j.bad_row[i] < bad)) bad = j.bad_row[i];
    if (bad >= 0) {
        /* The failing thread's message is in its own thread-local slot; encoding the row again
         * here (sources are deterministic) reproduces it on this thread. */
        src(ud, bad, j.scratch);
        quant_quantize_row(type, j.scratch, j.dst + (size_t)bad * j.row_bytes, n_in);
        err_prefix("row %lld", (long long)bad);
        goto out;
    }
    rc = 0;
out:
    free(j.scratch);
    free(j.bad_row);
    return rc;
}

/* ---- file conversion ---------------------------------------------------------------- */

typedef struct qz_tensor {
    struct qz *q;
    const gguf_tensor *t;
    char *name;
    uint32_t to;
    const char *why;
    uint64_t nbytes;
} qz_tensor;

typedef struct qz {
    const quantize_params *p;
    tpool *pool;
    qz_tensor *tensors;
    size_t n, done;
    uint64_t bytes_done, bytes_total;
} qz;

static void dequant_src(void *ud, int64_t row, float *out) {
    const gguf_tensor *t = ud;
    size_t row_bytes = qtype_row_size(t->type, t->ne[0]);
    quant_dequantize_row(t->type, (const unsigned char *)t->data + (size_t)row * row_bytes, out,
                         (int64_t)t->ne[0]);
}

static int fill_tensor(void *ud, void *dst, uint64_t nbytes) {
    qz_tensor *qt = ud;
    const gguf_tensor *t = qt->t;
    qz *q = qt->q;
    if (qt->to == t->type) memcpy(dst, t->data, nbytes);
    else if (quantize_rows(q->pool, qt->to, (int64_t)t->ne[0], (int64_t)(t->ne[1] * t->ne[2] * t->ne[3]),
                           dequant_src, (void *)t, dst))
        return -1;
    q->done++;
    q->bytes_done += nbytes;
    if (q->p->notify) {
        quantize_tensor info = {qt->name, t->type, qt->to, qt->why, q->done, q->n,
                                q->bytes_done, q->bytes_total};
        q->p->notify(q->p->ud, &info);
    }
    return 0;
}

int quantize_file(const char *in, const char *out, const quantize_params *p) {
    qz q = {p, NULL, NULL, 0, 0, 0, 0};
    gguf_writer *w = NULL;
    int rc = -1, ftype = quantize_ftype(p->type);
    gguf *g = gguf_open(in);
    if (!g) return -1;
    if (ftype < 0) {
        err_set("quantize: cannot convert to type %s (Q8_0, Q4_0, Q4_K, Q6_K, F16, BF16)",
                qtype_get(p->type) ? qtype_get(p->type)->name : "?");
        goto out;
    }
    q.n = gguf_n_tensors(g);
    q.tensors = calloc(q.n ? q.n : 1, sizeof *q.tensors);
    w = gguf_writer_new();
    q.pool = tpool_new(p->n_threads);
    if (!q.tensors || !w || !q.pool) {
        if (q.pool) err_set("out of memory");
        goto out;
    }
    gguf_writer_copy_kvs(w, g);
    gguf_writer_set_u32(w, "general.file_type", (uint32_t)ftype);
    gguf_writer_set_u32(w, "general.quantization_version", 2);
    for (size_t i = 0; i < q.n; i++) {
        qz_tensor *qt = &q.tensors[i];
        qt->q = &q;
        qt->t = gguf_tensor_at(g, i);
        qt->name = gguf_str_dup(qt->t->name);
        if (!qt->name) {
            err_set("out of memory");
            goto out;
        }
        qt->to = quantize_choose(p->type, qt->name, qt->t->n_dims, qt->t->ne, qt->t->type, &qt->why);
        qt->nbytes = qtype_row_size(qt->to, qt->t->ne[0]) * qt->t->ne[1] * qt->t->ne[2] * qt->t->ne[3];
        q.bytes_total += qt->nbytes;
        if (gguf_writer_add_tensor_fill(w, qt->name, qt->to, qt->t->n_dims, qt->t->ne, fill_tensor, qt))
            goto out;
    }
    if (gguf_writer_write(w, out)) goto out;
    rc = 0;
out:
    for (size_t i = 0; q.tensors && i < q.n; i++) free(q.tensors[i].name);
    free(q.tensors);
    if (q.pool) tpool_free(q.pool);
    gguf_writer_free(w);
    gguf_close(g);
    return rc;
}
