/* Shared helpers of the ledger commands; see chain_cli.h. */
#include "cli/chain_cli.h"

#include <inttypes.h>
#include <stdio.h>

#include "base/err.h"
#include "base/hex.h"

void chain_cli_print_ack(const char *what, const chain_ack *a) {
    char h[65];
    hex_encode(a->hash, 32, h);
    printf("%s: tx %s in block %" PRIu64 "\n", what, h, a->height);
}

int chain_cli_check(int rc) {
    if (rc == STATE_OK) return 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", err_msg());
    err_set("%s (%s)", msg, state_status_name(rc));
    return 1;
}
