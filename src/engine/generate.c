/* The generation loop behind `veil run` (generate.h). */
#include "engine/generate.h"

#include "base/clock.h"
#include "base/err.h"
#include "model/forward.h"
#include "model/stopstr.h"

#include <stdlib.h>
#include <string.h>

void gen_params_default(gen_params *p) {
    *p = (gen_params){0};
    p->n_predict = -1;
    sampler_params_default(&p->sampling);
    p->add_special = true;
}

int generate(const model *m, const tokenizer *tok, const char *prompt, size_t prompt_len,
             const gen_params *p, gen_emit_fn emit, void *ud, gen_result *res) {
    int32_t *ids = NULL;
    size_t n_ids = 0, n_alloc;
    model_ctx *ctx = NULL;
    sampler *smp = NULL;
    stopstr *stop = NULL;
    float *logits = NULL;
    char *piece = NULL;
    int rc = -1;
    *res = (gen_result){0};
    int32_t n_ctx = p->n_ctx > 0 ? p->n_ctx : m->hp.n_ctx_train;
    if (p->n_ctx <= 0 && n_ctx > GEN_DEFAULT_CTX) n_ctx = GEN_DEFAULT_CTX;

    if (tok_encode(tok, prompt, prompt_len, p->add_special, p->parse_special, &ids, &n_ids))
        goto out;
    if (n_ids == 0) {
        err_set("the prompt is empty and the model adds no BOS token: give a prompt");
        goto out;
    }
    if (n_ids >= (size_t)n_ctx) {
        err_set("the prompt has %zu tokens; the context holds %d", n_ids, n_ctx);
        goto out;
    }
    n_alloc = (size_t)n_ctx;
    int32_t *grown = realloc(ids, n_alloc * sizeof *ids);
    if (!grown) {
        err_set("out of memory");
        goto out;
    }
    ids = grown;
    ctx = p->device ? device_ctx_new(p->device, n_ctx) : model_ctx_new_threads(m, n_ctx, p->n_threads);
    smp = sampler_new(&p->sampling, m->hp.n_vocab);
    stop = stopstr_new();
    logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    piece = malloc(tok_max_piece(tok) + 1);
    if (!ctx || !smp || !stop || !logits || !piece) {
        if (!(ctx && smp)) goto out; /* they set their own message */
        err_set("out of memory");
        goto out;
    }
    for (int i = 0; i < p->n_stop; i++)
        if (stopstr_add(stop, p->stop[i], strlen(p->stop[i]))) {
            err_set("stop string %d is empty or too long", i + 1);
            goto out;
        }

    res->n_prompt = (int32_t)n_ids;
    double t0 = clock_now();
    if (model_forward(ctx, ids, (int32_t)n_ids, 0, logits, false)) goto out;
    double t1 = clock_now();
    res->prompt_seconds = t1 - t0;
    res->finish = GEN_LENGTH;
    const char *out_text;
    size_t out_len;
    for (;;) {
        if (p->n_predict >= 0 && res->n_generated >= p->n_predict) break;
        int32_t next = sampler_sample(smp, logits, ids, n_ids);
        if (next < 0) goto out;
        res->n_generated++;
        if (tok_is_eog(tok, next)) {
            res->finish = GEN_STOP;
            break;
        }
        int len = tok_decode(tok, ids[n_ids - 1], next, p->render_special, piece, tok_max_piece(tok));
        if (len < 0) goto out;
        ids[n_ids++] = next;
        int hit = stopstr_feed(stop, piece, (size_t)len, &out_text, &out_len);
        if (hit < 0) goto out;
        if (out_len && emit(ud, out_text, out_len)) break;
        if (hit == 1) {
            res->finish = GEN_STOP;
            break;
        }
        if (n_ids >= (size_t)n_ctx) {
            res->finish = GEN_CONTEXT;
            break;
        }
        if (model_forward(ctx, &next, 1, (int32_t)n_ids - 1, logits, false)) goto out;
    }
    stopstr_flush(stop, &out_text, &out_len);
    if (out_len) emit(ud, out_text, out_len);
    res->gen_seconds = clock_now() - t1;
    rc = 0;
out:
    free(piece);
    free(logits);
    stopstr_free(stop);
    sampler_free(smp);
    model_ctx_free(ctx);
    free(ids);
    return rc;
}
