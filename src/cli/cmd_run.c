/* veil run MODEL: generate text from a prompt and stream it to stdout. */
#include "base/err.h"
#include "base/slurp.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "engine/device.h"
#include "engine/generate.h"
#include "model/sampler.h"
#include "model/stopstr.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil run MODEL.gguf [-p PROMPT] [-n N] [options]\n\n"
            "Generates text from PROMPT and streams it to stdout: the prompt, then the generated\n"
            "text, then a newline. Sampling is greedy with --temp 0.\n\n"
            "  -p, --prompt TEXT          prompt text (default: empty, which starts from BOS)\n"
            "  -f, --file PATH            read the prompt from a file instead\n"
            "  -n, --n-predict N          tokens to generate, -1 = until end of text (default 256)\n"
            "      --temp T               temperature, 0 = greedy (default 0.8)\n"
            "      --top-k K              keep the K most likely tokens, 0 = off (default 40)\n"
            "      --top-p P              nucleus sampling mass in (0, 1] (default 0.95)\n"
            "      --min-p P              drop tokens below P x the top probability (default 0.05)\n"
            "      --seed S               random seed (default: a random one); the same seed and\n"
            "                             prompt give the same output\n"
            "      --repeat-penalty R     penalize recent tokens, 1 = off (default 1)\n"
            "      --repeat-last-n N      window of the penalties, -1 = all (default 64)\n"
            "      --frequency-penalty F  subtract F x count of each recent token (default 0)\n"
            "      --presence-penalty F   subtract F from each recent token (default 0)\n"
            "      --stop TEXT            stop before TEXT (repeatable, up to %d)\n"
            "      --ctx N                context length in tokens (default: the model's, at\n"
            "                             most %d)\n"
            "      --special              parse special tokens in the prompt and print generated\n"
            "                             special tokens\n"
            "      --no-bos               do not add BOS/EOS around the prompt\n"
            "  -t, --threads N            threads (default: one per CPU)\n"
            "  -d, --device DEV           cpu (default), cuda or cuda:N\n"
            "  -v, --verbose              print token counts and speed to stderr\n"
            "  -h, --help                 show this help\n",
            STOPSTR_MAX, GEN_DEFAULT_CTX);
}

static int emit_stdout(void *ud, const char *text, size_t len) {
    (void)ud;
    fwrite(text, 1, len, stdout);
    fflush(stdout);
    return ferror(stdout) ? 1 : 0;
}

enum { O_TEMP = 256, O_TOPK, O_TOPP, O_MINP, O_SEED, O_REP, O_REPN, O_FREQ, O_PRES, O_STOP,
       O_CTX, O_SPECIAL, O_NOBOS };


int cmd_run(int argc, char **argv) {
    static const struct option opts[] = {
        {"prompt", required_argument, 0, 'p'}, {"file", required_argument, 0, 'f'},
        {"n-predict", required_argument, 0, 'n'}, {"temp", required_argument, 0, O_TEMP},
        {"top-k", required_argument, 0, O_TOPK}, {"top-p", required_argument, 0, O_TOPP},
        {"min-p", required_argument, 0, O_MINP}, {"seed", required_argument, 0, O_SEED},
        {"repeat-penalty", required_argument, 0, O_REP},
        {"repeat-last-n", required_argument, 0, O_REPN},
        {"frequency-penalty", required_argument, 0, O_FREQ},
        {"presence-penalty", required_argument, 0, O_PRES},
        {"stop", required_argument, 0, O_STOP}, {"ctx", required_argument, 0, O_CTX},
        {"special", no_argument, 0, O_SPECIAL}, {"no-bos", no_argument, 0, O_NOBOS},
        {"threads", required_argument, 0, 't'}, {"verbose", no_argument, 0, 'v'},
        {"device", required_argument, 0, 'd'},
        {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    gen_params gp;
    const char *stops[STOPSTR_MAX];
    const char *prompt = "", *prompt_file = NULL, *dev_spec = NULL;
    bool verbose = false, seed_given = false;
    long long v;
    int c;
    gen_params_default(&gp);
    gp.n_predict = 256;
    gp.stop = stops;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "p:f:n:t:d:vh", opts, NULL)) != -1) {
        sampler_params *sp = &gp.sampling;
        bool ok = true;
        switch (c) {
        case 'p': prompt = optarg; break;
        case 'f': prompt_file = optarg; break;
        case 'n': ok = args_long("--n-predict", optarg, -1, 1 << 30, &v); gp.n_predict = (int32_t)v; break;
        case O_TEMP: ok = args_float("--temp", optarg, 0, 1e6, &sp->temperature); break;
        case O_TOPK: ok = args_long("--top-k", optarg, 0, 1 << 30, &v); sp->top_k = (int32_t)v; break;
        case O_TOPP: ok = args_float("--top-p", optarg, 1e-9, 1, &sp->top_p); break;
        case O_MINP: ok = args_float("--min-p", optarg, 0, 1, &sp->min_p); break;
        case O_SEED: ok = args_u64("--seed", optarg, &sp->seed); seed_given = true; break;
        case O_REP: ok = args_float("--repeat-penalty", optarg, 1e-6, 1e6, &sp->repeat_penalty); break;
        case O_REPN: ok = args_long("--repeat-last-n", optarg, -1, 1 << 30, &v); sp->repeat_last_n = (int32_t)v; break;
        case O_FREQ: ok = args_float("--frequency-penalty", optarg, -1e6, 1e6, &sp->frequency_penalty); break;
        case O_PRES: ok = args_float("--presence-penalty", optarg, -1e6, 1e6, &sp->presence_penalty); break;
        case O_STOP:
            if (gp.n_stop == STOPSTR_MAX || !*optarg || strlen(optarg) > STOPSTR_MAX_LEN) {
                fprintf(stderr, "veil run: --stop takes up to %d non-empty strings of at most %d bytes\n",
                        STOPSTR_MAX, STOPSTR_MAX_LEN);
                return 2;
            }
            stops[gp.n_stop++] = optarg;
            break;
        case O_CTX: ok = args_long("--ctx", optarg, 1, 1 << 24, &v); gp.n_ctx = (int32_t)v; break;
        case O_SPECIAL: gp.parse_special = gp.render_special = true; break;
        case O_NOBOS: gp.add_special = false; break;
        case 't': ok = args_long("--threads", optarg, 1, 512, &v); gp.n_threads = (int)v; break;
        case 'v': verbose = true; break;
        case 'd':
            ok = args_device(optarg);
            dev_spec = optarg;
            break;
        default: usage(stderr); return 2;
        }
        if (!ok) return 2;
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (!seed_given && getrandom(&gp.sampling.seed, sizeof gp.sampling.seed, 0) < 0)
        gp.sampling.seed = SAMPLER_DEFAULT_SEED;
    if (sampler_params_check(&gp.sampling)) {
        fprintf(stderr, "veil run: %s\n", err_msg());
        return 2;
    }

    int rc = 1;
    char *file_prompt = NULL;
    size_t prompt_len = strlen(prompt);
    tokenizer *tok = NULL;
    device *dev = NULL;
    gen_result res;
    model *m = model_load(argv[optind]);
    if (!m) goto fail;
    if (prompt_file && !(file_prompt = slurp_file(prompt_file, &prompt_len))) goto fail;
    if (file_prompt) prompt = file_prompt;
    tok = tok_load(m->file);
    if (!tok) goto fail;
    if (!(dev = device_open(dev_spec, m, gp.n_threads))) goto fail;
    gp.device = dev;
    fwrite(prompt, 1, prompt_len, stdout);
    if (generate(m, tok, prompt, prompt_len, &gp, emit_stdout, NULL, &res)) {
        putchar('\n');
        goto fail;
    }
    putchar('\n');
    if (fflush(stdout) != 0) {
        err_errno("stdout");
        goto fail;
    }
    if (verbose)
        fprintf(stderr, "prompt: %d tokens, %.1f tok/s; generated: %d tokens, %.1f tok/s (%s)\n",
                res.n_prompt, res.n_prompt / (res.prompt_seconds + 1e-9), res.n_generated,
                res.n_generated / (res.gen_seconds + 1e-9),
                res.finish == GEN_STOP ? "stop" : res.finish == GEN_LENGTH ? "length" : "context full");
    else if (res.finish == GEN_CONTEXT)
        fprintf(stderr, "veil run: stopped at the end of the context (--ctx)\n");
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "veil run: %s\n", err_msg());
out:
    device_close(dev);
    tok_free(tok);
    free(file_prompt);
    model_free(m);
    return rc;
}
