/* Evidence format: serialize, strict parse, the bytes that bind keys and freshness; see
 * evidence.h. */
#include "attest/evidence.h"

#include "base/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static const char sim_domain[] = "veil sim evidence v1";

const char *evidence_tee_name(int tee) {
    switch (tee) {
    case EVIDENCE_TEE_SIM: return "sim";
    case EVIDENCE_TEE_TDX: return "tdx";
    }
    return "unknown";
}

static void put_be(uint8_t *p, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v = v << 8 | p[i];
    return v;
}

void evidence_bind(const uint8_t *tls_spki, size_t spki_len, const uint8_t e2e_key[32],
                   uint8_t report_data[32]) {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, tls_spki, spki_len);
    crypto_hash_sha256_update(&st, e2e_key, 32);
    crypto_hash_sha256_final(&st, report_data);
}

void evidence_tee_report_data(const evidence *ev, uint8_t out[64]) {
    memset(out, 0, 64);
    memcpy(out, ev->report_data, 32);
    put_be(out + 32, ev->issued_at, 8);
}

static void write_header(const evidence *ev, uint8_t *p) {
    p[0] = EVIDENCE_FORMAT;
    p[1] = ev->tee;
    p[2] = p[3] = 0;
    put_be(p + 4, ev->issued_at, 8);
    memcpy(p + 12, ev->measurement, 32);
    memcpy(p + 44, ev->report_data, 32);
}

size_t evidence_sim_signed_bytes(const evidence *ev, uint8_t out[EVIDENCE_SIM_SIGNED_MAX]) {
    size_t n = sizeof sim_domain; /* the NUL ends the tag */
    memcpy(out, sim_domain, n);
    write_header(ev, out + n);
    n += EVIDENCE_HEADER_LEN;
    memcpy(out + n, ev->sim_key, 32);
    return n + 32;
}

size_t evidence_size(const evidence *ev) {
    switch (ev->tee) {
    case EVIDENCE_TEE_SIM: return EVIDENCE_SIM_LEN;
    case EVIDENCE_TEE_TDX:
        if (ev->quote_len == 0 || ev->quote_len > EVIDENCE_QUOTE_MAX || !ev->quote) return 0;
        return EVIDENCE_HEADER_LEN + 4 + ev->quote_len;
    }
    return 0;
}

uint8_t *evidence_serialize(const evidence *ev, size_t *len) {
    size_t n = evidence_size(ev);
    uint8_t *p;
    if (n == 0) {
        err_set("evidence: cannot serialize (tee %u, quote of %u bytes)", ev->tee, ev->quote_len);
        return NULL;
    }
    p = malloc(n);
    if (!p) {
        err_set("evidence: out of memory");
        return NULL;
    }
    write_header(ev, p);
    if (ev->tee == EVIDENCE_TEE_SIM) {
        memcpy(p + EVIDENCE_HEADER_LEN, ev->sim_key, 32);
        memcpy(p + EVIDENCE_HEADER_LEN + 32, ev->sim_sig, 64);
    } else {
        put_be(p + EVIDENCE_HEADER_LEN, ev->quote_len, 4);
        memcpy(p + EVIDENCE_HEADER_LEN + 4, ev->quote, ev->quote_len);
    }
    *len = n;
    return p;
}

int evidence_parse(const uint8_t *p, size_t n, evidence *ev) {
    memset(ev, 0, sizeof *ev);
    if (n < EVIDENCE_HEADER_LEN)
        return err_set("evidence: %zu bytes, shorter than its %d-byte header", n,
                       EVIDENCE_HEADER_LEN);
    if (p[0] != EVIDENCE_FORMAT)
        return err_set("evidence: format %u at offset 0, expected %d", p[0], EVIDENCE_FORMAT);
    if (p[2] != 0 || p[3] != 0) return err_set("evidence: reserved bytes 2..3 are not zero");
    ev->tee = p[1];
    ev->issued_at = get_be(p + 4, 8);
    memcpy(ev->measurement, p + 12, 32);
    memcpy(ev->report_data, p + 44, 32);
    switch (ev->tee) {
    case EVIDENCE_TEE_SIM:
        if (n != EVIDENCE_SIM_LEN)
            return err_set("evidence: sim evidence is %d bytes, got %zu", EVIDENCE_SIM_LEN, n);
        memcpy(ev->sim_key, p + EVIDENCE_HEADER_LEN, 32);
        memcpy(ev->sim_sig, p + EVIDENCE_HEADER_LEN + 32, 64);
        return 0;
    case EVIDENCE_TEE_TDX:
        if (n < EVIDENCE_HEADER_LEN + 4)
            return err_set("evidence: tdx evidence of %zu bytes has no quote length", n);
        ev->quote_len = (uint32_t)get_be(p + EVIDENCE_HEADER_LEN, 4);
        if (ev->quote_len == 0 || ev->quote_len > EVIDENCE_QUOTE_MAX)
            return err_set("evidence: quote length %u at offset %d outside 1..%u", ev->quote_len,
                           EVIDENCE_HEADER_LEN, EVIDENCE_QUOTE_MAX);
        if (n - (EVIDENCE_HEADER_LEN + 4) != ev->quote_len)
            return err_set("evidence: quote length %u but %zu bytes follow", ev->quote_len,
                           n - (EVIDENCE_HEADER_LEN + 4));
        ev->quote = p + EVIDENCE_HEADER_LEN + 4;
        return 0;
    }
    return err_set("evidence: unknown tee type %u at offset 1", ev->tee);
}
