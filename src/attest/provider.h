/* Evidence providers: what a node uses to attest itself, whatever its TEE.
 *
 *   sim  signs with a local platform key (sim.h); the measurement is whatever the operator
 *        configures (devnet: SHA-256 of the veil executable)
 *   tdx  asks the CPU for a quote through configfs-tsm (tdx.h); the measurement comes from
 *        the quote
 *
 * Evidence is made per TLS key: a node calls provider_evidence with the report_data of its
 * fresh TLS key and its E2E key, and again whenever it renews them (verifiers reject evidence
 * older than their max age, an hour by default). A provider is not thread-safe. */
#ifndef VEIL_PROVIDER_H
#define VEIL_PROVIDER_H

#include "attest/sim.h"

#include <stddef.h>
#include <stdint.h>

typedef struct attest_provider attest_provider;

/* A sim provider with this key (copied) claiming this measurement. */
attest_provider *provider_sim_new(const keypair *key, const uint8_t measurement[32]);
/* The same with the key loaded from a key file (ledger/keys.h). */
attest_provider *provider_sim_open(const char *key_path, const uint8_t measurement[32]);
/* A tdx provider on configfs-tsm at tsm_dir (NULL = TDX_TSM_REPORT_DIR); NULL with "TDX
 * attestation unavailable: ..." when it is absent. */
attest_provider *provider_tdx_open(const char *tsm_dir);
void provider_free(attest_provider *p);

int provider_tee(const attest_provider *p);

/* Serialized evidence (malloc'd) binding report_data, issued at now (unix seconds). */
uint8_t *provider_evidence(attest_provider *p, const uint8_t report_data[32], uint64_t now,
                           size_t *len);

#endif
