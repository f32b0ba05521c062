/* Evidence verification against a policy; see policy.h. */
#include "attest/policy.h"

#include "attest/hexfile.h"
#include "attest/sim.h"
#include "attest/tdx.h"
#include "base/err.h"
#include "base/hex.h"
#include "base/log.h"

#include <stdlib.h>
#include <string.h>

const char *attest_status_name(attest_status s) {
    switch (s) {
    case ATTEST_OK: return "ok";
    case ATTEST_ERR_MALFORMED: return "malformed evidence";
    case ATTEST_ERR_UNSUPPORTED: return "unsupported evidence";
    case ATTEST_ERR_UNTRUSTED_KEY: return "untrusted platform key";
    case ATTEST_ERR_SIGNATURE: return "forged signature";
    case ATTEST_ERR_REPORT_DATA: return "report_data mismatch";
    case ATTEST_ERR_STALE: return "stale evidence";
    case ATTEST_ERR_MEASUREMENT: return "unknown measurement";
    }
    return "unknown status";
}

void policy_init(attest_policy *p) {
    memset(p, 0, sizeof *p);
    p->max_age_s = POLICY_DEFAULT_MAX_AGE_S;
    p->max_skew_s = POLICY_DEFAULT_MAX_SKEW_S;
}

void policy_free(attest_policy *p) {
    free(p->measurements);
    free(p->sim_keys);
    policy_init(p);
}

static bool in_list(uint8_t (*list)[32], size_t n, const uint8_t v[32]) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(list[i], v, 32) == 0) return true;
    return false;
}

static int add_value(uint8_t (**list)[32], size_t *n, size_t *cap, const uint8_t v[32]) {
    if (in_list(*list, *n, v)) return 0;
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 16;
        uint8_t(*nl)[32] = realloc(*list, nc * sizeof **list);
        if (!nl) return err_set("policy: out of memory");
        *list = nl;
        *cap = nc;
    }
    memcpy((*list)[(*n)++], v, 32);
    return 0;
}

int policy_allow_measurement(attest_policy *p, const uint8_t m[32]) {
    return add_value(&p->measurements, &p->n_measurements, &p->cap_measurements, m);
}

int policy_trust_sim_key(attest_policy *p, const uint8_t pk[32]) {
    return add_value(&p->sim_keys, &p->n_sim_keys, &p->cap_sim_keys, pk);
}

static int add_measurement(void *ctx, const uint8_t v[32]) {
    return policy_allow_measurement(ctx, v);
}

static int add_sim_key(void *ctx, const uint8_t v[32]) { return policy_trust_sim_key(ctx, v); }

int policy_load_measurements(attest_policy *p, const char *path) {
    return hexfile_read(path, add_measurement, p);
}

int policy_load_sim_keys(attest_policy *p, const char *path) {
    return hexfile_read(path, add_sim_key, p);
}

static attest_status check_sim(const attest_policy *p, const evidence *ev) {
    char hex[65];
    if (!in_list(p->sim_keys, p->n_sim_keys, ev->sim_key)) {
        hex_encode(ev->sim_key, 32, hex);
        err_set("sim evidence signed by platform key %s, which this verifier does not trust", hex);
        return ATTEST_ERR_UNTRUSTED_KEY;
    }
    return sim_check(ev) == 0 ? ATTEST_OK : ATTEST_ERR_SIGNATURE;
}

static attest_status check_tdx(const attest_policy *p, const evidence *ev) {
    tdx_quote q;
    uint8_t want[64], m[32];
    if (tdx_quote_parse(ev->quote, ev->quote_len, &q) != 0) return ATTEST_ERR_MALFORMED;
    if (!p->allow_unverified_tdx) {
        err_set("tdx evidence: verifying the quote's signature chain is not implemented yet; "
                "this verifier does not accept unverified TDX quotes");
        return ATTEST_ERR_UNSUPPORTED;
    }
    evidence_tee_report_data(ev, want);
    if (memcmp(q.report_data, want, 64) != 0) {
        err_set("tdx evidence: the quote's REPORTDATA is not this evidence's report_data and "
                "time");
        return ATTEST_ERR_REPORT_DATA;
    }
    tdx_quote_measurement(&q, m);
    if (memcmp(m, ev->measurement, 32) != 0) {
        err_set("tdx evidence: the measurement field is not the quote's MRTD and RTMRs");
        return ATTEST_ERR_MEASUREMENT;
    }
    return ATTEST_OK;
}

attest_status policy_verify(const attest_policy *p, const uint8_t *bytes, size_t len,
                            const uint8_t report_data[32], uint64_t now, evidence *out) {
    evidence ev;
    attest_status s;
    char hex[65];
    if (evidence_parse(bytes, len, &ev) != 0) return ATTEST_ERR_MALFORMED;
    if (ev.tee == EVIDENCE_TEE_SIM)
        s = check_sim(p, &ev);
    else
        s = check_tdx(p, &ev);
    if (s != ATTEST_OK) return s;
    if (memcmp(ev.report_data, report_data, 32) != 0) {
        err_set("%s evidence is bound to other keys: its report_data does not hash the TLS and "
                "E2E keys presented",
                evidence_tee_name(ev.tee));
        return ATTEST_ERR_REPORT_DATA;
    }
    if (ev.issued_at > now + p->max_skew_s) {
        err_set("%s evidence issued %llu s in the future (clock skew allowed: %u s)",
                evidence_tee_name(ev.tee), (unsigned long long)(ev.issued_at - now),
                p->max_skew_s);
        return ATTEST_ERR_STALE;
    }
    if (now > ev.issued_at && now - ev.issued_at > p->max_age_s) {
        err_set("%s evidence issued %llu s ago; this verifier accepts at most %u s",
                evidence_tee_name(ev.tee), (unsigned long long)(now - ev.issued_at),
                p->max_age_s);
        return ATTEST_ERR_STALE;
    }
    if (!in_list(p->measurements, p->n_measurements, ev.measurement)) {
        hex_encode(ev.measurement, 32, hex);
        err_set("%s evidence: measurement %s is not among the %zu allowed",
                evidence_tee_name(ev.tee), hex, p->n_measurements);
        return ATTEST_ERR_MEASUREMENT;
    }
    if (ev.tee == EVIDENCE_TEE_SIM) {
        hex_encode(ev.sim_key, 32, hex);
        log_warn("*** ACCEPTED SIMULATED ATTESTATION: the peer's evidence is signed by sim "
                 "platform key %s, trusted by configuration. It proves nothing about the "
                 "peer's hardware; never use sim keys outside development. ***",
                 hex);
    } else {
        log_warn("*** ACCEPTED AN UNVERIFIED TDX QUOTE: its signature chain was not checked "
                 "(allow_unverified_tdx). Development only. ***");
    }
    if (out) *out = ev;
    return ATTEST_OK;
}
