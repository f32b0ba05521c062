/* `veil convert`: llama2.c checkpoint + tokenizer.bin -> GGUF. The output appears atomically
 * (the GGUF writer writes a temporary file and renames it), so an interrupted or failed
 * conversion never leaves a partial OUT.gguf. */
#include "cli/commands.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "cli/args.h"
#include "model/gguf.h"
#include "model/llama2c.h"
#include "model/llama2c_gguf.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: veil convert CHECKPOINT.bin TOKENIZER.bin OUT.gguf [--name NAME]\n"
            "\n"
            "Converts a llama2.c model (an fp32 checkpoint from export.py, legacy version 0 or\n"
            "version 1, and its tokenizer.bin) into a GGUF file of architecture \"llama\" with\n"
            "F32 tensors, laid out as llama.cpp's convert-llama2c-to-ggml lays it out.\n"
            "OUT.gguf is written to a temporary file and renamed into place.\n"
            "\n"
            "flags:\n"
            "  --name NAME   general.name stored in the file (default: the checkpoint's file\n"
            "                name without directory and extension)\n"
            "  -h, --help    print this help and exit\n");
}

/* "dir/stories260K.bin" -> "stories260K" (malloc'd). */
static char *default_name(const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t n = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    return strndup(base, n);
}

int cmd_convert(int argc, char **argv) {
    const char *pos[3], *name = NULL;
    char *owned_name = NULL;
    int n_pos = 0, rc = 1;
    llama2c_model model = {0};
    llama2c_vocab vocab = {0};
    gguf_writer *w = NULL;
    bool tty = isatty(STDERR_FILENO);

    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "veil convert: --name needs a value\n");
                return 2;
            }
            name = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "veil convert: unknown flag '%s' (see veil convert --help)\n", argv[i]);
            return 2;
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            fprintf(stderr, "veil convert: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (n_pos != 3) {
        usage(stderr);
        return 2;
    }
    if (name && !*name) {
        fprintf(stderr, "veil convert: --name must not be empty\n");
        return 2;
    }
    if (!name && !(name = owned_name = default_name(pos[0]))) {
        fprintf(stderr, "veil convert: out of memory\n");
        return 1;
    }

    if (llama2c_open(&model, pos[0]) != 0 ||
        llama2c_vocab_load(&vocab, pos[1], model.cfg.vocab_size) != 0)
        goto fail;
    const llama2c_config *c = &model.cfg;
    if (tty)
        fprintf(stderr,
                "veil convert: %s: llama2.c v%u, dim %u, %u layers, %u/%u heads, vocab %u, "
                "context %u; writing %s...\n",
                pos[0], c->version, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
                c->vocab_size, c->seq_len, pos[2]);
    if (!(w = gguf_writer_new())) {
        err_set("out of memory");
        goto fail;
    }
    if (llama2c_gguf_fill(w, &model, &vocab, name) != 0 || gguf_writer_write(w, pos[2]) != 0)
        goto fail;
    if (tty) fprintf(stderr, "veil convert: wrote %s\n", pos[2]);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "veil convert: %s\n", err_msg());
done:
    gguf_writer_free(w);
    llama2c_vocab_free(&vocab);
    llama2c_close(&model);
    free(owned_name);
    return rc;
}
