/* libFuzzer target for attestation evidence: arbitrary bytes are parsed as evidence (what
 * re-serializes must be the same bytes), as a TDX quote, and verified against a policy that
 * allows nothing; the RA-TLS verifier runs the same code on what a peer sends. */
#include "attest/evidence.h"
#include "attest/policy.h"
#include "attest/tdx.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    evidence ev;
    tdx_quote q;
    attest_policy p;
    uint8_t rd[32] = {0};
    if (evidence_parse(data, size, &ev) == 0) {
        size_t len;
        uint8_t *back = evidence_serialize(&ev, &len);
        if (!back || len != size || memcmp(back, data, size) != 0) abort();
        free(back);
    }
    if (tdx_quote_parse(data, size, &q) == 0) {
        uint8_t m[32];
        tdx_quote_measurement(&q, m);
        if (q.report_data + 64 > data + size) abort();
    }
    policy_init(&p);
    p.allow_unverified_tdx = true;
    if (policy_verify(&p, data, size, rd, 0, NULL) == ATTEST_OK) abort(); /* nothing allowed */
    policy_free(&p);
    return 0;
}
