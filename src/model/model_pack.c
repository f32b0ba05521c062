/* model_pack.h: a view of a model whose Q4_0, Q8_0, Q4_K and Q6_K matrices are packed
 * (tensor/repack.h) into one huge-page buffer, each matrix packed a slice of rows at a time and
 * the slice's file pages dropped from resident memory right after. */
#include "model/model_pack.h"

#include "base/err.h"
#include "base/hugemem.h"
#include "base/mapfile.h"
#include "tensor/matmul.h"
#include "tensor/qtype.h"
#include "tensor/repack.h"
#include "tensor/threadpool.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Rows packed between two drops of their file pages: a few MB, so that the resident size never
 * holds much of a matrix twice. */
#define SLICE_ROWS 1024

/* The matrices of v that may be packed (the layers' and the output), into list; returns how
 * many. list has room for 7 per layer plus 1. */
static int packable(model *v, model_matrix **list) {
    int n = 0;
    for (int il = 0; il < v->hp.n_layer; il++) {
        model_layer *l = &v->layers[il];
        model_matrix *ms[] = {&l->wq, &l->wk, &l->wv, &l->wo, &l->w_gate, &l->w_up, &l->w_down};
        for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) list[n++] = ms[i];
    }
    list[n++] = &v->output;
    return n;
}

static size_t round64(size_t n) { return (n + 63) / 64 * 64; }

/* Bytes of mx packed. */
static size_t matrix_bytes(const model_matrix *mx) {
    return repack_bytes(mx->type, mx->n_in, mx->n_out);
}

/* The packing of the matrices list[i] (NULL: one without a packed form) into dst[i], in slices of
 * SLICE_ROWS rows that the threads take in turn. */
typedef struct pack_job {
    model_matrix **list;
    uint8_t **dst;
    int64_t slices;
    _Atomic int64_t next;
} pack_job;

static void pack_slices(void *arg, int ith, int nth) {
    (void)ith, (void)nth;
    pack_job *j = arg;
    for (int64_t k; (k = atomic_fetch_add(&j->next, 1)) < j->slices;) {
        int i = 0;
        for (;; i++) { /* slice k's matrix */
            if (!j->list[i]) continue;
            const int64_t here = (j->list[i]->n_out + SLICE_ROWS - 1) / SLICE_ROWS;
            if (k < here) break;
            k -= here;
        }
        const model_matrix *mx = j->list[i];
        const size_t rs = qtype_row_size(mx->type, (uint64_t)mx->n_in);
        const int64_t r = k * SLICE_ROWS, end = r + SLICE_ROWS < mx->n_out ? r + SLICE_ROWS : mx->n_out;
        repack_rows(mx->type, mx->data, mx->n_in, j->dst[i], r, end);
        mapfile_drop((const uint8_t *)mx->data + (size_t)r * rs, (size_t)(end - r) * rs);
    }
}

int model_pack(const model *m, int n_threads, model **out) {
    *out = NULL;
    const char *env = getenv("VEIL_REPACK");
    if (matmul_backend() != MATMUL_AVX512 || (env && strcmp(env, "0") == 0)) return 0;
    model_matrix **list = NULL;
    uint8_t **dsts = NULL;
    model *v = malloc(sizeof *v);
    if (!v) goto oom;
    *v = *m; /* from here on model_free(v) frees only what v owns */
    v->base = m;
    v->owned = NULL;
    v->n_owned = 0;
    v->pack = NULL;
    v->pack_bytes = 0;
    v->layers = malloc((size_t)m->hp.n_layer * sizeof *v->layers);
    list = malloc(((size_t)m->hp.n_layer * 7 + 1) * sizeof *list);
    dsts = malloc(((size_t)m->hp.n_layer * 7 + 1) * sizeof *dsts);
    if (!v->layers || !list || !dsts) goto oom;
    memcpy(v->layers, m->layers, (size_t)m->hp.n_layer * sizeof *v->layers);
    const int n = packable(v, list);
    for (int i = 0; i < n; i++) {
        if (!repack_type_for(list[i]->type, list[i]->n_in, list[i]->n_out)) list[i] = NULL;
        else v->pack_bytes += round64(matrix_bytes(list[i]));
    }
    if (!v->pack_bytes) {
        model_free(v);
        free(list);
        free(dsts);
        return 0;
    }
    if (!(v->pack = hugemem_alloc(v->pack_bytes))) goto fail;
    pack_job job = {.list = list, .dst = dsts};
    uint8_t *dst = v->pack;
    for (int i = 0; i < n; i++) {
        if (!list[i]) continue;
        job.dst[i] = dst;
        dst += round64(matrix_bytes(list[i]));
        job.slices += (list[i]->n_out + SLICE_ROWS - 1) / SLICE_ROWS;
    }
    tpool *pool = n_threads == 1 ? NULL : tpool_new(n_threads);
    if (pool) tpool_run(pool, pack_slices, &job);
    else pack_slices(&job, 0, 1); /* one thread, or no pool to be had: the same work here */
    tpool_free(pool);
    for (int i = 0; i < n; i++)
        if (list[i]) {
            list[i]->type = repack_type_for(list[i]->type, list[i]->n_in, list[i]->n_out);
            list[i]->data = job.dst[i];
        }
    free(list);
    free(dsts);
    *out = v;
    return 0;
oom:
    err_set("out of memory");
fail:
    model_free(v);
    free(list);
    free(dsts);
    return -1;
}
