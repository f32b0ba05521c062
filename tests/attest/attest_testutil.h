/* Helpers for the attestation and RA-TLS tests: a captured log, a synthetic TDX quote. */
#ifndef VEIL_TEST_ATTEST_UTIL_H
#define VEIL_TEST_ATTEST_UTIL_H

#include "attest/evidence.h"
#include "attest/tdx.h"
#include "base/log.h"

#include <stdio.h>
#include <string.h>

/* Warnings logged while a capture is on, one per line. */
typedef struct log_capture {
    char text[8192];
    int warnings;
    log_sink old;
    void *old_ctx;
} log_capture;

static inline void capture_sink(log_level level, const char *line, void *ctx) {
    log_capture *c = ctx;
    size_t n = strlen(c->text);
    if (level == LOG_WARN) c->warnings++;
    snprintf(c->text + n, sizeof c->text - n, "%s\n", line);
}

static inline void capture_start(log_capture *c) {
    memset(c, 0, sizeof *c);
    log_set_sink(capture_sink, c, &c->old, &c->old_ctx);
}

static inline void capture_stop(log_capture *c) { log_set_sink(c->old, c->old_ctx, NULL, NULL); }

/* A structurally valid TDX quote (version 4) over report_data_64, with MRTD and RTMRs filled
 * from seed and sig_len bytes of (unchecked) signature data. Returns its length. */
static inline size_t fake_tdx_quote(uint8_t *q, const uint8_t report_data_64[64], uint8_t seed,
                                    uint32_t sig_len) {
    size_t n = TDX_QUOTE_MIN_LEN + sig_len;
    memset(q, 0, n);
    q[0] = 4;    /* version */
    q[2] = 2;    /* ECDSA P-256 */
    q[4] = 0x81; /* TDX */
    for (int i = 0; i < TDX_MR_LEN; i++) q[TDX_OFF_MRTD + i] = (uint8_t)(seed + i);
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < TDX_MR_LEN; i++)
            q[TDX_OFF_RTMR0 + r * TDX_MR_LEN + i] = (uint8_t)(seed * 3 + r * 50 + i);
    memcpy(q + TDX_OFF_REPORTDATA, report_data_64, 64);
    q[TDX_OFF_SIG_LEN] = (uint8_t)sig_len;
    q[TDX_OFF_SIG_LEN + 1] = (uint8_t)(sig_len >> 8);
    for (uint32_t i = 0; i < sig_len; i++) q[TDX_QUOTE_MIN_LEN + i] = (uint8_t)i;
    return n;
}

#endif
