/* Ed25519 keys for wallets, proxies and workers: generating them, keeping them in files only
 * their owner can read, and signing cell hashes the way TON's CHKSIGNU checks them.
 *
 * Key file (docs/PAYMENTS.md): three lines of text,
 *     veil-ed25519-key v1
 *     seed <64 hex digits>
 *     public <64 hex digits>
 * created with O_CREAT|O_EXCL and mode 0600 (never overwriting a key). Loading refuses a file
 * that group or others may read or write, one owned by another user, and one whose public key
 * does not match its seed. The seed is what @ton/crypto's keyPairFromSeed takes, so a key made
 * here gives the same public key there. */
#ifndef VEIL_KEYS_H
#define VEIL_KEYS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct keypair {
    uint8_t public_key[32];
    uint8_t secret_key[64]; /* libsodium's form: seed then public key */
} keypair;

int keys_generate(keypair *k);
int keys_from_seed(const uint8_t seed[32], keypair *k);
/* Writes a new key file; fails if the path exists. */
int keys_save(const char *path, const keypair *k);
int keys_load(const char *path, keypair *k);
/* Zeroes the secret (call when done with a loaded key). */
void keys_wipe(keypair *k);

/* Ed25519 over the 32 bytes of a cell hash: exactly what a TON contract verifies. */
int keys_sign(const keypair *k, const uint8_t hash[32], uint8_t sig[64]);
bool keys_verify(const uint8_t public_key[32], const uint8_t hash[32], const uint8_t sig[64]);

#endif
