/* veil: one binary, subcommands like git. This file only dispatches. */
#include "cli/commands.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

static const command commands[] = {
    {"run", "generate text from a model", cmd_run},
    {"info", "print a GGUF file's metadata and tensor table", cmd_info},
    {"tokenize", "print the token ids of stdin's text", cmd_tokenize},
    {"eval", "print the logits of a token sequence", cmd_eval},
    {"convert", "convert a llama2.c checkpoint to GGUF", cmd_convert},
    {"serve", "serve a model over an OpenAI-compatible HTTP API", cmd_serve},
    {"worker", "serve a model to a veil network through a proxy", cmd_worker},
    {"proxy", "route requests between client gateways and workers", cmd_proxy},
    {"client", "a local OpenAI API answered by a veil network", cmd_client},
    {"devnet", "a whole network on this machine: proxy, two workers, a gateway", cmd_devnet},
    {"wallet", "make a wallet key, show its address or its balance", cmd_wallet},
    {"chain", "run the local ledger node, verify it, change its registry", cmd_chain},
    {"channel", "open, pay through and close payment channels", cmd_channel},
    {"quantize", "convert a model's weight matrices to another type", cmd_quantize},
    {"bench", "measure engine speed; make random-weight models", cmd_bench},
};

static void usage(FILE *f) {
    fprintf(f, "usage: veil COMMAND [ARGS...]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n'veil COMMAND --help' describes a command's flags.\n");
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].main(argc - 1, argv + 1);
    fprintf(stderr, "veil: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
