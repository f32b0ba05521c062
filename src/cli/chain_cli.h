/* Helpers shared by the commands that talk to a ledger node (veil chain, veil channel): the
 * acknowledgement line and a chain result turned into an exit status. */
#ifndef VEIL_CHAIN_CLI_H
#define VEIL_CHAIN_CLI_H

#include "ledger/chain.h"

/* "WHAT: tx HASH in block N" on stdout. */
void chain_cli_print_ack(const char *what, const chain_ack *a);
/* 0 for STATE_OK; otherwise 1, with the status's name added to err_msg(). */
int chain_cli_check(int rc);

#endif
