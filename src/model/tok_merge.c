/* The merge loop shared by SentencePiece BPE and byte-level BPE: symbols in a linked list, a
 * min-heap of candidate pairs keyed by (priority, left index), merge the best pair, queue the
 * two new pairs it creates, repeat. Stale heap entries are skipped lazily: a pair is still
 * current exactly when both symbols are alive and their lengths still add up to the length it
 * was queued with, since a symbol only ever grows or dies. This is the order llama.cpp's and
 * Hugging Face's BPE use, O(n log n) per word. */
#include <stdlib.h>

#include "base/err.h"
#include "base/grow.h"
#include "model/tok_impl.h"

typedef struct tok_bigram {
    int64_t prio;
    int32_t left, right;
    uint32_t size;
    int32_t id;
} tok_bigram;

static bool before(const tok_bigram *a, const tok_bigram *b) {
    return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static int heap_push(tok_work *w, tok_bigram b) {
    if (grow(&w->heap, &w->cap_heap, w->n_heap + 1, sizeof *w->heap, 64, "the merge queue") < 0)
        return -1;
    size_t i = w->n_heap++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&b, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = b;
    return 0;
}

static tok_bigram heap_pop(tok_work *w) {
    tok_bigram top = w->heap[0], last = w->heap[--w->n_heap];
    size_t i = 0, n = w->n_heap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

int tok_work_add(tok_work *w, uint32_t off, uint32_t n, int32_t id) {
    if (grow(&w->syms, &w->cap_syms, w->n_syms + 1, sizeof *w->syms, 64, "the symbol list") < 0)
        return -1;
    int32_t i = (int32_t)w->n_syms++;
    w->syms[i] = (tok_sym){i - 1, -1, off, n, id};
    if (i > 0) w->syms[i - 1].next = i;
    return 0;
}

static int try_pair(tok_work *w, const tokenizer *t, const char *text, tok_pair_fn pair, int32_t l,
                    int32_t r) {
    int64_t prio;
    int32_t id;
    if (l < 0 || r < 0) return 0;
    const tok_sym *ls = &w->syms[l], *rs = &w->syms[r];
    if (!pair(t, text, ls, rs, &prio, &id)) return 0;
    return heap_push(w, (tok_bigram){prio, l, r, ls->n + rs->n, id});
}

int tok_merge_run(tok_work *w, const tokenizer *t, const char *text, tok_pair_fn pair) {
    w->n_heap = 0;
    for (size_t i = 1; i < w->n_syms; i++)
        if (try_pair(w, t, text, pair, (int32_t)i - 1, (int32_t)i) < 0) return -1;
    while (w->n_heap) {
        tok_bigram b = heap_pop(w);
        tok_sym *l = &w->syms[b.left], *r = &w->syms[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        l->id = b.id;
        l->next = r->next;
        r->n = 0;
        if (l->next >= 0) w->syms[l->next].prev = b.left;
        if (try_pair(w, t, text, pair, l->prev, b.left) < 0) return -1;
        if (try_pair(w, t, text, pair, b.left, l->next) < 0) return -1;
    }
    return 0;
}

void tok_work_free(tok_work *w) {
    free(w->syms);
    free(w->heap);
    free(w->buf);
    *w = (tok_work){0};
}
