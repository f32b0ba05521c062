/* veil tokenize MODEL: the token ids of stdin's text under the model's own tokenizer, on one
 * line, so that they can be compared with other tokenizers or fed to `veil eval`. */
#include "base/err.h"
#include "base/slurp.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: veil tokenize MODEL.gguf [--no-bos] [--special] < TEXT\n\n"
               "Reads all of stdin as UTF-8 text and prints its token ids under the tokenizer\n"
               "stored in MODEL.gguf (only the metadata is read), separated by single spaces,\n"
               "on one line. Invalid UTF-8 is not an error (see src/model/tokenizer.h).\n\n"
               "  --no-bos     do not put BOS in front (by default it is added when the\n"
               "               model's metadata says so, e.g. Llama; an EOS the metadata asks\n"
               "               for is still added)\n"
               "  --special    match control tokens written in the text, e.g. <|im_start|>,\n"
               "               as single tokens; without it they are tokenized as plain text\n"
               "               (user-defined tokens such as <think> are matched either way)\n"
               "  -h, --help   show this help\n\n"
               "Exit status: 0 on success, 1 when the model or stdin cannot be read, 2 for bad\n"
               "usage.\n");
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL;
    bool no_bos = false, special = false;
    gguf *g = NULL;
    tokenizer *t = NULL;
    char *text = NULL;
    int32_t *ids = NULL;
    size_t len = 0, n = 0;
    int rc = 1;
    if (args_want_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-bos") == 0) {
            no_bos = true;
        } else if (strcmp(argv[i], "--special") == 0) {
            special = true;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "veil tokenize: unknown option '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        } else if (model) {
            fprintf(stderr, "veil tokenize: more than one model given ('%s', '%s')\n", model,
                    argv[i]);
            usage(stderr);
            return 2;
        } else {
            model = argv[i];
        }
    }
    if (!model) {
        usage(stderr);
        return 2;
    }
    g = gguf_open(model);
    t = g ? tok_load(g) : NULL;
    if (!t) goto fail;
    text = slurp_stream(stdin, "stdin", &len);
    if (!text || tok_encode(t, text, len, true, special, &ids, &n) < 0) goto fail;
    /* With add_special the BOS, when the metadata adds one, is always ids[0]. */
    size_t first = no_bos && tok_adds_bos(t) ? 1 : 0;
    for (size_t i = first; i < n; i++) printf(i > first ? " %d" : "%d", ids[i]);
    putchar('\n');
    if (fflush(stdout) != 0) {
        err_errno("writing stdout");
        goto fail;
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "veil tokenize: %s\n", err_msg());
    free(ids);
    free(text);
    tok_free(t);
    gguf_close(g);
    return rc;
}
