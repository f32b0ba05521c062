/* The sim TEE: a software stand-in for attestation hardware, for development and tests.
 *
 * Its "hardware key" is an Ed25519 key in a local file (mode 0600) that signs evidence the way
 * a CPU would sign a quote. It proves nothing about the machine: whoever holds the file can
 * sign any measurement. Verifiers therefore accept sim evidence only from platform keys they
 * were explicitly told to trust (policy.h), and log a loud warning each time they do.
 *
 * Key file: text, '#' comments, one line of 64 hex digits = the 32-byte Ed25519 seed. */
#ifndef VEIL_SIM_H
#define VEIL_SIM_H

#include "attest/evidence.h"

#include <stdint.h>

typedef struct sim_key {
    uint8_t pk[32];
    uint8_t sk[64]; /* libsodium's form: seed ‖ public key */
} sim_key;

/* Makes a new key and writes it to path with mode 0600; fails if path exists. */
int sim_key_create(const char *path, sim_key *k);
/* Loads a key; refuses a file that group or others may read or write. */
int sim_key_load(const char *path, sim_key *k);
/* Loads path, or creates it when it does not exist (devnet's first start). */
int sim_key_load_or_create(const char *path, sim_key *k);
void sim_key_wipe(sim_key *k);

/* Signs ev (its issued_at, measurement and report_data set by the caller) as sim evidence:
 * sets tee, sim_key and sim_sig. */
void sim_sign(const sim_key *k, evidence *ev);
/* 0 when ev's signature verifies under the platform key it names; -1 with err_msg(). */
int sim_check(const evidence *ev);

/* SHA-256 of a file: the sim measurement of an image (devnet uses the veil executable). */
int sim_measure_file(const char *path, uint8_t out[32]);

#endif
