/* Attestation evidence: what a node presents so a peer can tell which software it runs and
 * that the keys it uses were made inside that software.
 *
 *   tee type     sim (software stand-in) or tdx (Intel TDX quote)
 *   issued_at    unix seconds when it was made (freshness)
 *   measurement  32-byte image hash (sim: as configured, e.g. SHA-256 of the executable;
 *                tdx: SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3) of the quote)
 *   report_data  SHA-256(TLS public key as DER SubjectPublicKeyInfo ‖ 32-byte E2E public key)
 *   proof        sim: platform public key + Ed25519 signature; tdx: the quote
 *
 * Serialized form (big-endian; docs/PROTOCOL.md, "Evidence"):
 *   0 u8 format (1) | 1 u8 tee | 2 u16 reserved (0) | 4 u64 issued_at | 12 measurement[32] |
 *   44 report_data[32] | 76 sim: platform_key[32] signature[64]  (172 bytes in all)
 *                         76 tdx: u32 quote_len (1..EVIDENCE_QUOTE_MAX), quote
 * Parsing is strict (no trailing bytes, reserved fields zero), so a parsed evidence
 * re-serializes to the same bytes. This file only codes the format; trust decisions are in
 * policy.c. */
#ifndef VEIL_EVIDENCE_H
#define VEIL_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#define EVIDENCE_FORMAT 1
#define EVIDENCE_HEADER_LEN 76
#define EVIDENCE_SIM_LEN (EVIDENCE_HEADER_LEN + 32 + 64)
/* Linux caps a configfs-tsm report at 32 KiB (TSM_REPORT_OUTBLOB_MAX). */
#define EVIDENCE_QUOTE_MAX (32u << 10)
#define EVIDENCE_MAX_LEN (EVIDENCE_HEADER_LEN + 4 + EVIDENCE_QUOTE_MAX)

typedef enum evidence_tee { EVIDENCE_TEE_SIM = 1, EVIDENCE_TEE_TDX = 2 } evidence_tee;

typedef struct evidence {
    uint8_t tee;                 /* evidence_tee */
    uint64_t issued_at;
    uint8_t measurement[32];
    uint8_t report_data[32];
    uint8_t sim_key[32];         /* sim only */
    uint8_t sim_sig[64];         /* sim only */
    const uint8_t *quote;        /* tdx only: points into the parsed bytes or the maker's buffer */
    uint32_t quote_len;
} evidence;

const char *evidence_tee_name(int tee);

/* report_data for a TLS key (DER SubjectPublicKeyInfo) and an E2E key. */
void evidence_bind(const uint8_t *tls_spki, size_t spki_len, const uint8_t e2e_key[32],
                   uint8_t report_data[32]);

/* The 64 bytes a TEE signs into its report: report_data ‖ issued_at (u64 BE) ‖ 24 zero bytes,
 * so the hardware signature covers the freshness too. */
void evidence_tee_report_data(const evidence *ev, uint8_t out[64]);

/* The bytes the sim platform key signs: a domain tag, the header (bytes 0..75) and the
 * platform key. Returns the length written to out. */
#define EVIDENCE_SIM_SIGNED_MAX 160
size_t evidence_sim_signed_bytes(const evidence *ev, uint8_t out[EVIDENCE_SIM_SIGNED_MAX]);

/* Strict parse of n bytes; ev->quote points into p. -1 with err_msg() naming the field. */
int evidence_parse(const uint8_t *p, size_t n, evidence *ev);
/* Serialized size, or 0 when ev cannot be serialized (unknown tee, bad quote length). */
size_t evidence_size(const evidence *ev);
/* malloc'd serialized form; NULL with err_msg(). */
uint8_t *evidence_serialize(const evidence *ev, size_t *len);

#endif
