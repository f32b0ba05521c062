/* Intel TDX: quotes from Linux configfs-tsm, and the fields of a quote that veil checks.
 *
 * Getting a quote: mkdir an entry under /sys/kernel/config/tsm/report, write 64 bytes to its
 * inblob (they land in the quote's REPORTDATA), read outblob (the quote), check that the
 * entry's generation says nobody else wrote to it meanwhile, rmdir the entry.
 *
 * Reading a quote (Intel TDX DCAP quote format version 4, little-endian):
 *   header (48 bytes): u16 version (4) | u16 attestation key type (2 = ECDSA P-256) |
 *     u32 TEE type (0x81 = TDX) | u16 reserved | u16 reserved | QE vendor id[16] |
 *     user data[20]
 *   TD report body (584 bytes, at 48): TEE_TCB_SVN[16] MRSEAM[48] MRSIGNERSEAM[48]
 *     SEAMATTRIBUTES[8] TDATTRIBUTES[8] XFAM[8] MRTD[48] MRCONFIGID[48] MROWNER[48]
 *     MROWNERCONFIG[48] RTMR0..3[48 each] REPORTDATA[64]
 *   u32 signature data length (at 632), then that many bytes of signature data (ECDSA
 *   signature, attestation key, QE report and certification data: PCK chain to Intel's root)
 *
 * NOT DONE YET: verifying the signature chain (QE report signature, PCK certificates up to
 * Intel's root, TCB status and collateral). Until then a quote proves nothing by itself, and
 * policy.c accepts TDX evidence only when told to (allow_unverified_tdx, development only). */
#ifndef VEIL_TDX_H
#define VEIL_TDX_H

#include <stddef.h>
#include <stdint.h>

#define TDX_TSM_REPORT_DIR "/sys/kernel/config/tsm/report"
#define TDX_QUOTE_HEADER_LEN 48
#define TDX_QUOTE_BODY_LEN 584
#define TDX_QUOTE_MIN_LEN (TDX_QUOTE_HEADER_LEN + TDX_QUOTE_BODY_LEN + 4)
#define TDX_QUOTE_VERSION 4
#define TDX_TEE_TYPE 0x81
#define TDX_MR_LEN 48

/* Offsets of the body's fields from the start of the quote. */
#define TDX_OFF_MRTD (TDX_QUOTE_HEADER_LEN + 136)
#define TDX_OFF_RTMR0 (TDX_QUOTE_HEADER_LEN + 328)
#define TDX_OFF_REPORTDATA (TDX_QUOTE_HEADER_LEN + 520)
#define TDX_OFF_SIG_LEN (TDX_QUOTE_HEADER_LEN + TDX_QUOTE_BODY_LEN)

typedef struct tdx_quote {
    uint16_t version, att_key_type;
    uint32_t tee_type;
    const uint8_t *mrtd;          /* 48 bytes */
    const uint8_t *rtmr[4];       /* 48 bytes each */
    const uint8_t *report_data;   /* 64 bytes */
    const uint8_t *signature;     /* signature data, not checked yet */
    uint32_t signature_len;
} tdx_quote;

/* Strict structural parse (version 4, TDX, signature length matching the rest); pointers go
 * into q. -1 with err_msg() naming the field. */
int tdx_quote_parse(const uint8_t *q, size_t n, tdx_quote *out);

/* veil's 32-byte image measurement of a TD: SHA-256(MRTD ‖ RTMR0 ‖ RTMR1 ‖ RTMR2 ‖ RTMR3). */
void tdx_quote_measurement(const tdx_quote *q, uint8_t out[32]);

/* Asks configfs-tsm (tsm_dir, NULL = TDX_TSM_REPORT_DIR) for a quote over inblob. *quote is
 * malloc'd. Where the directory is absent: "TDX attestation unavailable: ... not present". */
int tdx_get_quote(const char *tsm_dir, const uint8_t inblob[64], uint8_t **quote, size_t *len);

#endif
