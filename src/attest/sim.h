/* The sim TEE: a software stand-in for attestation hardware, for development and tests.
 *
 * Its "hardware key" is an Ed25519 key in a local file that signs evidence the way a CPU would
 * sign a quote. It proves nothing about the machine: whoever holds the file can sign any
 * measurement. Verifiers therefore accept sim evidence only from platform keys they were
 * explicitly told to trust (policy.h), and log a loud warning each time they do.
 *
 * The key file is the ledger's Ed25519 key file (ledger/keys.h, docs/PAYMENTS.md): mode 0600,
 * created with O_EXCL, refused when others may read it. */
#ifndef VEIL_SIM_H
#define VEIL_SIM_H

#include "attest/evidence.h"
#include "ledger/keys.h"

#include <stdint.h>

/* Loads the platform key at path, or makes and saves a new one when there is no file (a
 * devnet's first start). */
int sim_key_load_or_create(const char *path, keypair *k);

/* Signs ev (its issued_at, measurement and report_data set by the caller) as sim evidence:
 * sets tee, sim_key and sim_sig. */
void sim_sign(const keypair *k, evidence *ev);
/* 0 when ev's signature verifies under the platform key it names; -1 with err_msg(). */
int sim_check(const evidence *ev);

/* SHA-256 of a file: the sim measurement of an image (devnet uses the veil executable). */
int sim_measure_file(const char *path, uint8_t out[32]);

#endif
