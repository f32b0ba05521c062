/* Evidence providers (sim, tdx) behind one interface; see provider.h. */
#include "attest/provider.h"

#include "attest/tdx.h"
#include "base/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct attest_provider {
    int tee;
    keypair key;           /* sim */
    uint8_t measurement[32];
    char *tsm_dir;         /* tdx */
};

attest_provider *provider_sim_new(const keypair *key, const uint8_t measurement[32]) {
    attest_provider *p;
    if (sodium_init() < 0) {
        err_set("libsodium failed to initialise");
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        err_set("attestation provider: out of memory");
        return NULL;
    }
    p->tee = EVIDENCE_TEE_SIM;
    p->key = *key;
    memcpy(p->measurement, measurement, 32);
    return p;
}

attest_provider *provider_sim_open(const char *key_path, const uint8_t measurement[32]) {
    keypair k;
    attest_provider *p;
    if (keys_load(key_path, &k) != 0) return NULL;
    p = provider_sim_new(&k, measurement);
    keys_wipe(&k);
    return p;
}

attest_provider *provider_tdx_open(const char *tsm_dir) {
    struct stat st;
    attest_provider *p;
    if (!tsm_dir) tsm_dir = TDX_TSM_REPORT_DIR;
    if (stat(tsm_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        err_set("TDX attestation unavailable: %s not present (not a TDX guest, or a kernel "
                "without configfs-tsm)",
                tsm_dir);
        return NULL;
    }
    p = calloc(1, sizeof *p);
    if (!p || !(p->tsm_dir = strdup(tsm_dir))) {
        free(p);
        err_set("attestation provider: out of memory");
        return NULL;
    }
    p->tee = EVIDENCE_TEE_TDX;
    return p;
}

void provider_free(attest_provider *p) {
    if (!p) return;
    sodium_memzero(&p->key, sizeof p->key);
    free(p->tsm_dir);
    free(p);
}

int provider_tee(const attest_provider *p) { return p->tee; }

static uint8_t *tdx_evidence(attest_provider *p, evidence *ev, size_t *len) {
    uint8_t inblob[64], *quote, *out;
    size_t qlen;
    tdx_quote q;
    evidence_tee_report_data(ev, inblob);
    if (tdx_get_quote(p->tsm_dir, inblob, &quote, &qlen) != 0) return NULL;
    out = NULL;
    if (tdx_quote_parse(quote, qlen, &q) != 0) goto out;
    if (memcmp(q.report_data, inblob, 64) != 0) {
        err_set("tdx: the quote's REPORTDATA is not what was asked for");
        goto out;
    }
    tdx_quote_measurement(&q, ev->measurement);
    ev->quote = quote;
    ev->quote_len = (uint32_t)qlen;
    out = evidence_serialize(ev, len);
out:
    free(quote);
    return out;
}

uint8_t *provider_evidence(attest_provider *p, const uint8_t report_data[32], uint64_t now,
                           size_t *len) {
    evidence ev;
    memset(&ev, 0, sizeof ev);
    ev.tee = (uint8_t)p->tee;
    ev.issued_at = now;
    memcpy(ev.report_data, report_data, 32);
    if (p->tee == EVIDENCE_TEE_TDX) return tdx_evidence(p, &ev, len);
    memcpy(ev.measurement, p->measurement, 32);
    sim_sign(&p->key, &ev);
    return evidence_serialize(&ev, len);
}
