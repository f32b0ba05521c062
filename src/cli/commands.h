/* The subcommands of the veil binary. Each takes the arguments after its own name
 * (argv[0] is the subcommand) and returns the process exit status. */
#ifndef VEIL_COMMANDS_H
#define VEIL_COMMANDS_H

typedef struct command {
    const char *name;
    const char *summary;
    int (*main)(int argc, char **argv);
} command;

int cmd_run(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_wallet(int argc, char **argv);
int cmd_chain(int argc, char **argv);
int cmd_channel(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_worker(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_client(int argc, char **argv);
int cmd_devnet(int argc, char **argv);

#endif
