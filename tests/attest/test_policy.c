/* Evidence verification: each way evidence can be wrong gets its own status and message, and
 * accepting sim (or unverified TDX) evidence always logs a loud warning. */
#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/provider.h"
#include "attest/sim.h"
#include "attest_testutil.h"
#include "base/err.h"
#include "base/hex.h"
#include "test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOW 1750000000ull

typedef struct fixture {
    keypair key, other;
    uint8_t measurement[32], report_data[32];
    attest_policy policy;
} fixture;

static void fixture_init(fixture *f) {
    memset(f, 0, sizeof *f);
    if (keys_generate(&f->key) != 0 || keys_generate(&f->other) != 0) abort();
    memset(f->measurement, 0x11, 32);
    memset(f->report_data, 0x22, 32);
    policy_init(&f->policy);
    policy_allow_measurement(&f->policy, f->measurement);
    policy_trust_sim_key(&f->policy, f->key.public_key);
}

/* Serialized sim evidence with these fields, signed by k. */
static uint8_t *make_evidence(const keypair *k, const uint8_t m[32], const uint8_t rd[32],
                              uint64_t issued_at, size_t *len) {
    evidence ev;
    memset(&ev, 0, sizeof ev);
    ev.issued_at = issued_at;
    memcpy(ev.measurement, m, 32);
    memcpy(ev.report_data, rd, 32);
    sim_sign(k, &ev);
    return evidence_serialize(&ev, len);
}

/* Verifies with the log captured, so accepted sim evidence does not fill the test output. */
static attest_status verify(fixture *f, const uint8_t *ev, size_t len) {
    log_capture cap;
    attest_status s;
    capture_start(&cap);
    s = policy_verify(&f->policy, ev, len, f->report_data, NOW, NULL);
    capture_stop(&cap);
    return s;
}

TEST(policy_accepts_good_sim_evidence_loudly) {
    fixture f;
    log_capture cap;
    evidence out;
    size_t len;
    uint8_t *ev;
    fixture_init(&f);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW - 10, &len);
    capture_start(&cap);
    CHECK_EQ_INT(policy_verify(&f.policy, ev, len, f.report_data, NOW, &out), ATTEST_OK);
    capture_stop(&cap);
    CHECK_EQ_INT(out.tee, EVIDENCE_TEE_SIM);
    CHECK(memcmp(out.measurement, f.measurement, 32) == 0);
    CHECK_EQ_INT(cap.warnings, 1);
    CHECK(strstr(cap.text, "SIMULATED ATTESTATION") != NULL);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_rejects_untrusted_sim_key) {
    fixture f;
    size_t len;
    uint8_t *ev;
    fixture_init(&f);
    ev = make_evidence(&f.other, f.measurement, f.report_data, NOW, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_UNTRUSTED_KEY);
    CHECK(strstr(err_msg(), "does not trust") != NULL);
    /* trusting it afterwards is what makes it pass */
    policy_trust_sim_key(&f.policy, f.other.public_key);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_OK);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_rejects_forged_signature) {
    fixture f;
    size_t len;
    uint8_t *ev;
    fixture_init(&f);
    /* an allowed measurement written over a signed one */
    uint8_t bad_m[32];
    memset(bad_m, 0x33, 32);
    ev = make_evidence(&f.key, bad_m, f.report_data, NOW, &len);
    memcpy(ev + 12, f.measurement, 32);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_SIGNATURE);
    CHECK(strstr(err_msg(), "forged") != NULL);
    free(ev);
    /* signed by another key, claiming the trusted one */
    ev = make_evidence(&f.other, f.measurement, f.report_data, NOW, &len);
    memcpy(ev + EVIDENCE_HEADER_LEN, f.key.public_key, 32);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_SIGNATURE);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_rejects_report_data_mismatch) {
    fixture f;
    size_t len;
    uint8_t *ev, other_rd[32];
    fixture_init(&f);
    memset(other_rd, 0x44, 32);
    ev = make_evidence(&f.key, f.measurement, other_rd, NOW, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_REPORT_DATA);
    CHECK(strstr(err_msg(), "bound to other keys") != NULL);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_rejects_unknown_measurement) {
    fixture f;
    size_t len;
    uint8_t *ev, m[32];
    fixture_init(&f);
    memset(m, 0x55, 32);
    ev = make_evidence(&f.key, m, f.report_data, NOW, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_MEASUREMENT);
    CHECK(strstr(err_msg(), "5555555555555555555555555555555555555555555555555555555555555555") !=
          NULL);
    free(ev);
    /* an empty policy allows nothing */
    policy_free(&f.policy);
    policy_trust_sim_key(&f.policy, f.key.public_key);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_MEASUREMENT);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_freshness) {
    fixture f;
    size_t len;
    uint8_t *ev;
    fixture_init(&f);
    f.policy.max_age_s = 600;
    f.policy.max_skew_s = 30;
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW - 600, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_OK);
    free(ev);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW - 601, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_STALE);
    CHECK(strstr(err_msg(), "601 s ago") != NULL);
    free(ev);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW + 30, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_OK);
    free(ev);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW + 31, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_STALE);
    CHECK(strstr(err_msg(), "future") != NULL);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_rejects_malformed) {
    fixture f;
    static const uint8_t junk[] = "certainly not evidence";
    fixture_init(&f);
    CHECK_EQ_INT(verify(&f, junk, sizeof junk), ATTEST_ERR_MALFORMED);
    CHECK_EQ_INT(verify(&f, NULL, 0), ATTEST_ERR_MALFORMED);
    CHECK_EQ_STR(attest_status_name(ATTEST_ERR_SIGNATURE), "forged signature");
    CHECK_EQ_STR(attest_status_name(ATTEST_ERR_STALE), "stale evidence");
    policy_free(&f.policy);
}

TEST(policy_files) {
    attest_policy p;
    char mpath[512], kpath[512];
    FILE *fp;
    fixture f;
    size_t len;
    uint8_t *ev;
    char hex[65];
    fixture_init(&f);
    snprintf(mpath, sizeof mpath, "%s/allowed.txt", test_tmpdir());
    snprintf(kpath, sizeof kpath, "%s/trusted-sim-keys.txt", test_tmpdir());
    fp = fopen(mpath, "w");
    hex_encode(f.measurement, 32, hex);
    fprintf(fp, "# veil images allowed on this network\n%s  # devnet build\n", hex);
    fclose(fp);
    fp = fopen(kpath, "w");
    hex_encode(f.key.public_key, 32, hex);
    fprintf(fp, "%s\n", hex);
    fclose(fp);
    policy_init(&p);
    CHECK(policy_load_measurements(&p, mpath) == 0);
    CHECK(policy_load_sim_keys(&p, kpath) == 0);
    CHECK_EQ_INT(p.n_measurements, 1);
    CHECK_EQ_INT(p.n_sim_keys, 1);
    /* loading twice does not duplicate */
    CHECK(policy_load_measurements(&p, mpath) == 0);
    CHECK_EQ_INT(p.n_measurements, 1);
    ev = make_evidence(&f.key, f.measurement, f.report_data, NOW, &len);
    policy_free(&f.policy);
    f.policy = p;
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_OK);
    free(ev);
    policy_free(&p);
}

TEST(policy_sim_provider_end_to_end) {
    fixture f;
    attest_provider *prov;
    size_t len;
    uint8_t *ev;
    fixture_init(&f);
    prov = provider_sim_new(&f.key, f.measurement);
    CHECK(prov && provider_tee(prov) == EVIDENCE_TEE_SIM);
    ev = prov ? provider_evidence(prov, f.report_data, NOW, &len) : NULL;
    CHECK(ev != NULL);
    if (ev) CHECK_EQ_INT(verify(&f, ev, len), ATTEST_OK);
    free(ev);
    provider_free(prov);
    policy_free(&f.policy);
}

/* ---- TDX evidence (synthetic quotes: the structure is real, the signature is not) ---- */

static uint8_t *tdx_evidence_bytes(const uint8_t rd[32], uint64_t issued_at, uint8_t seed,
                                   int corrupt, uint8_t measurement[32], size_t *len) {
    static uint8_t quote[TDX_QUOTE_MIN_LEN + 64];
    evidence ev;
    uint8_t tee_rd[64];
    tdx_quote q;
    memset(&ev, 0, sizeof ev);
    ev.tee = EVIDENCE_TEE_TDX;
    ev.issued_at = issued_at;
    memcpy(ev.report_data, rd, 32);
    evidence_tee_report_data(&ev, tee_rd);
    if (corrupt == 1) tee_rd[40] ^= 1; /* a quote over another time */
    ev.quote_len = (uint32_t)fake_tdx_quote(quote, tee_rd, seed, 64);
    ev.quote = quote;
    tdx_quote_parse(quote, ev.quote_len, &q);
    tdx_quote_measurement(&q, ev.measurement);
    if (corrupt == 2) ev.measurement[0] ^= 1; /* claims another image than the quote's */
    memcpy(measurement, ev.measurement, 32);
    return evidence_serialize(&ev, len);
}

TEST(policy_tdx_needs_explicit_opt_in) {
    fixture f;
    log_capture cap;
    uint8_t m[32], *ev;
    size_t len;
    fixture_init(&f);
    ev = tdx_evidence_bytes(f.report_data, NOW, 3, 0, m, &len);
    policy_allow_measurement(&f.policy, m);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_UNSUPPORTED);
    CHECK(strstr(err_msg(), "not implemented") != NULL);
    f.policy.allow_unverified_tdx = true;
    capture_start(&cap);
    CHECK_EQ_INT(policy_verify(&f.policy, ev, len, f.report_data, NOW, NULL), ATTEST_OK);
    capture_stop(&cap);
    CHECK_EQ_INT(cap.warnings, 1);
    CHECK(strstr(cap.text, "UNVERIFIED TDX") != NULL);
    free(ev);
    policy_free(&f.policy);
}

TEST(policy_tdx_checks_quote_against_evidence) {
    fixture f;
    uint8_t m[32], *ev, rd[32];
    size_t len;
    fixture_init(&f);
    f.policy.allow_unverified_tdx = true;
    /* REPORTDATA in the quote over another time than the evidence says */
    ev = tdx_evidence_bytes(f.report_data, NOW, 3, 1, m, &len);
    policy_allow_measurement(&f.policy, m);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_REPORT_DATA);
    CHECK(strstr(err_msg(), "REPORTDATA") != NULL);
    free(ev);
    /* measurement field disagreeing with MRTD/RTMRs */
    ev = tdx_evidence_bytes(f.report_data, NOW, 3, 2, m, &len);
    policy_allow_measurement(&f.policy, m);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_MEASUREMENT);
    free(ev);
    /* another image than allowed */
    ev = tdx_evidence_bytes(f.report_data, NOW, 4, 0, m, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_MEASUREMENT);
    free(ev);
    /* bound to other keys, and stale */
    memset(rd, 0x66, 32);
    ev = tdx_evidence_bytes(rd, NOW, 3, 0, m, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_REPORT_DATA);
    free(ev);
    ev = tdx_evidence_bytes(f.report_data, NOW - 7200, 3, 0, m, &len);
    CHECK_EQ_INT(verify(&f, ev, len), ATTEST_ERR_STALE);
    free(ev);
    policy_free(&f.policy);
}
