/* On a GPU (skipped without one): `veil run --device cuda` generates exactly what the CPU
 * engine does with greedy sampling, on the bundled model, and the scheduler serves on it. */
#include "test.h"

#include "base/buf.h"
#include "base/err.h"
#include "cuda/cuda_testutil.h"
#include "engine/device.h"
#include "engine/generate.h"
#include "engine/sched.h"

#include <stdio.h>
#include <stdlib.h>

static int collect(void *ud, const char *text, size_t len) {
    buf_append(ud, text, len);
    return 0;
}

/* Greedy text of 200 tokens after prompt on device d (NULL = the CPU). */
static char *greedy_text(const model *m, const tokenizer *tok, device *d, const char *prompt) {
    gen_params p;
    gen_result res;
    buf out = {0};
    gen_params_default(&p);
    p.n_predict = 200;
    p.sampling.temperature = 0;
    p.n_threads = 2;
    p.device = d;
    CHECK_MSG(generate(m, tok, prompt, strlen(prompt), &p, collect, &out, &res) == 0, "%s", err_msg());
    CHECK(!buf_failed(&out));
    buf_append(&out, "", 1);
    return buf_take(&out, NULL);
}

TEST(cuda_generate_greedy_equals_cpu) {
    NEED_SHARED();
    NEED_GPU();
    model *m = model_load(test_shared_path("models/stories260K.gguf"));
    tokenizer *tok = m ? tok_load(m->file) : NULL;
    device *d = m ? device_open("cuda", m, 0) : NULL;
    CHECK_MSG(m && tok && d, "%s", err_msg());
    if (m && tok && d) {
        const char *prompts[] = {"Once upon a time", "The little dog", "Lily and Ben went to the park"};
        for (size_t i = 0; i < sizeof prompts / sizeof prompts[0]; i++) {
            char *cpu = greedy_text(m, tok, NULL, prompts[i]), *gpu = greedy_text(m, tok, d, prompts[i]);
            CHECK_MSG(cpu && gpu && strcmp(cpu, gpu) == 0, "prompt '%s':\n cpu: %s\n gpu: %s", prompts[i],
                      cpu ? cpu : "?", gpu ? gpu : "?");
            free(cpu);
            free(gpu);
        }
    }
    device_close(d);
    tok_free(tok);
    model_free(m);
}

/* Continuous batching on the GPU: 8 greedy requests at once give each what it gives alone. */
typedef struct job {
    buf text;
    int done;
} job;

static void on_event(void *ud, const sched_event *ev) {
    job *j = ud;
    if (ev->kind == SCHED_TEXT) buf_append(&j->text, ev->text, ev->text_len);
    else j->done = ev->kind == SCHED_DONE ? 1 : -1;
}

static void run_jobs(const model *m, const tokenizer *tok, device *d, int n, job *jobs) {
    sched_config cfg;
    sched_config_default(&cfg);
    cfg.device = d;
    cfg.n_threads = 2;
    cfg.n_ctx = 256;
    sched *s = sched_new(m, tok, &cfg);
    CHECK_MSG(s != NULL, "%s", err_msg());
    if (!s) return;
    for (int i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0;
        char prompt[64];
        snprintf(prompt, sizeof prompt, "Once upon a time there was a %s", i % 2 ? "cat" : "boy named Tim");
        sched_params p = {.max_tokens = 60, .top_logprobs = -1};
        sampler_params_default(&p.sampling);
        p.sampling.temperature = 0;
        CHECK(tok_encode(tok, prompt, strlen(prompt), true, false, &ids, &n_ids) == 0);
        CHECK(sched_submit(s, ids, (int32_t)n_ids, &p, on_event, &jobs[i]) > 0);
        free(ids);
    }
    sched_drain(s, 60); /* waits for all of them; a timeout would cancel and show below */
    sched_free(s);
}

TEST(cuda_sched_batch_equals_cpu) {
    NEED_SHARED();
    NEED_GPU();
    enum { N = 8 };
    model *m = model_load(test_shared_path("models/stories260K.gguf"));
    tokenizer *tok = m ? tok_load(m->file) : NULL;
    device *d = m ? device_open("cuda", m, 0) : NULL;
    CHECK_MSG(m && tok && d, "%s", err_msg());
    if (m && tok && d) {
        job cpu[N] = {0}, gpu[N] = {0};
        run_jobs(m, tok, NULL, N, cpu);
        run_jobs(m, tok, d, N, gpu);
        for (int i = 0; i < N; i++) {
            CHECK(cpu[i].done == 1 && gpu[i].done == 1);
            CHECK_MSG(cpu[i].text.len == gpu[i].text.len &&
                          memcmp(cpu[i].text.data, gpu[i].text.data, cpu[i].text.len) == 0,
                      "request %d differs on the GPU", i);
            buf_free(&cpu[i].text);
            buf_free(&gpu[i].text);
        }
    }
    device_close(d);
    tok_free(tok);
    model_free(m);
}
