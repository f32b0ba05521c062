/* Verification policy: what evidence a node accepts from its peers, and the check itself.
 *
 * Checked in this order, each failure with its own status and a message that says what:
 *   1. the evidence parses (MALFORMED)
 *   2. its proof: sim, a platform key this policy trusts (UNTRUSTED_KEY) whose signature
 *      verifies (SIGNATURE); tdx, a well-formed quote, accepted only with
 *      allow_unverified_tdx (UNSUPPORTED), whose REPORTDATA carries the evidence's
 *      report_data and time (REPORT_DATA) and whose MRTD/RTMRs give its measurement
 *      (MEASUREMENT)
 *   3. report_data binds the keys the caller saw (REPORT_DATA)
 *   4. it is fresh: issued at most max_age_s ago and at most max_skew_s ahead (STALE)
 *   5. its measurement is allowed (MEASUREMENT)
 * Accepting sim evidence (or an unverified TDX quote) logs a loud warning every time.
 *
 * Allowed-measurement and trusted-key files hold one 64-hex-digit value per line with '#'
 * comments (hexfile.h). A policy is read-only while verifying, so threads may share one. */
#ifndef VEIL_POLICY_H
#define VEIL_POLICY_H

#include "attest/evidence.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define POLICY_DEFAULT_MAX_AGE_S 3600
#define POLICY_DEFAULT_MAX_SKEW_S 60

typedef enum attest_status {
    ATTEST_OK = 0,
    ATTEST_ERR_MALFORMED,     /* not evidence at all */
    ATTEST_ERR_UNSUPPORTED,   /* a TEE type or proof this verifier cannot check */
    ATTEST_ERR_UNTRUSTED_KEY, /* sim evidence from a platform key nobody trusts */
    ATTEST_ERR_SIGNATURE,     /* the proof does not verify: forged or altered */
    ATTEST_ERR_REPORT_DATA,   /* bound to other keys than the ones presented */
    ATTEST_ERR_STALE,         /* too old, or from the future */
    ATTEST_ERR_MEASUREMENT,   /* software not in the allowed list */
} attest_status;

typedef struct attest_policy {
    uint8_t (*measurements)[32];
    size_t n_measurements, cap_measurements;
    uint8_t (*sim_keys)[32];
    size_t n_sim_keys, cap_sim_keys;
    uint32_t max_age_s, max_skew_s;
    bool allow_unverified_tdx; /* development only: TDX signature chains are not checked yet */
} attest_policy;

const char *attest_status_name(attest_status s);

void policy_init(attest_policy *p);
void policy_free(attest_policy *p);
int policy_allow_measurement(attest_policy *p, const uint8_t m[32]);
int policy_trust_sim_key(attest_policy *p, const uint8_t pk[32]);
int policy_load_measurements(attest_policy *p, const char *path);
int policy_load_sim_keys(attest_policy *p, const char *path);

/* Verifies len bytes of serialized evidence against the report_data the caller computed from
 * the keys it saw, at time now (unix seconds). ATTEST_OK, or a status with err_msg(). *out
 * (may be NULL) receives the parsed evidence; its quote points into bytes. */
attest_status policy_verify(const attest_policy *p, const uint8_t *bytes, size_t len,
                            const uint8_t report_data[32], uint64_t now, evidence *out);

#endif
