/* Evidence format, sim platform keys and the TDX quote reader. */
#include "attest/evidence.h"
#include "attest/hexfile.h"
#include "attest/provider.h"
#include "attest/sim.h"
#include "attest/tdx.h"
#include "attest_testutil.h"
#include "base/err.h"
#include "base/hex.h"
#include "test.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_text(const char *path, const char *text, int mode) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
    chmod(path, (mode_t)mode);
}

static void sample_evidence(evidence *ev, const keypair *k) {
    memset(ev, 0, sizeof *ev);
    ev->issued_at = 1700000000;
    for (int i = 0; i < 32; i++) {
        ev->measurement[i] = (uint8_t)i;
        ev->report_data[i] = (uint8_t)(200 - i);
    }
    sim_sign(k, ev);
}

TEST(evidence_sim_round_trip) {
    keypair k;
    evidence ev, back;
    size_t len;
    uint8_t *p, *p2;
    CHECK(keys_generate(&k) == 0);
    sample_evidence(&ev, &k);
    p = evidence_serialize(&ev, &len);
    CHECK(p && len == EVIDENCE_SIM_LEN);
    CHECK(p && evidence_parse(p, len, &back) == 0);
    CHECK_EQ_INT(back.tee, EVIDENCE_TEE_SIM);
    CHECK(back.issued_at == 1700000000);
    CHECK(memcmp(back.measurement, ev.measurement, 32) == 0);
    CHECK(memcmp(back.report_data, ev.report_data, 32) == 0);
    CHECK(memcmp(back.sim_key, k.public_key, 32) == 0);
    CHECK(sim_check(&back) == 0);
    p2 = evidence_serialize(&back, &len);
    CHECK(p && p2 && memcmp(p, p2, len) == 0);
    /* the layout of evidence.h: format, tee, reserved, big-endian time */
    CHECK(p && p[0] == 1 && p[1] == EVIDENCE_TEE_SIM && p[2] == 0 && p[3] == 0);
    CHECK(p && p[8] == 0x65 && p[9] == 0x53 && p[10] == 0xf1 && p[11] == 0x00);
    free(p);
    free(p2);
}

TEST(evidence_parse_is_strict) {
    keypair k;
    evidence ev, back;
    size_t len;
    uint8_t *p, *q;
    CHECK(keys_generate(&k) == 0);
    sample_evidence(&ev, &k);
    p = evidence_serialize(&ev, &len);
    if (!p) return;
    q = malloc(len + 1);
    memcpy(q, p, len);
    q[len] = 0;
    CHECK(evidence_parse(q, len + 1, &back) == -1);
    for (size_t cut = 0; cut < len; cut++) CHECK(evidence_parse(q, cut, &back) == -1);
    q[0] = 2;
    CHECK(evidence_parse(q, len, &back) == -1);
    CHECK(strstr(err_msg(), "format") != NULL);
    q[0] = 1;
    q[3] = 1;
    CHECK(evidence_parse(q, len, &back) == -1);
    q[3] = 0;
    q[1] = 9;
    CHECK(evidence_parse(q, len, &back) == -1);
    CHECK(strstr(err_msg(), "tee type 9") != NULL);
    q[1] = EVIDENCE_TEE_SIM;
    CHECK(evidence_parse(q, len, &back) == 0);
    free(p);
    free(q);
}

TEST(evidence_tdx_layout) {
    static uint8_t quote[TDX_QUOTE_MIN_LEN + 100], rd[64];
    evidence ev = {0}, back;
    size_t len, qlen = fake_tdx_quote(quote, rd, 1, 100);
    uint8_t *p;
    ev.tee = EVIDENCE_TEE_TDX;
    ev.quote = quote;
    ev.quote_len = (uint32_t)qlen;
    p = evidence_serialize(&ev, &len);
    CHECK(p && len == EVIDENCE_HEADER_LEN + 4 + qlen);
    CHECK(p && evidence_parse(p, len, &back) == 0);
    CHECK(back.quote_len == qlen && back.quote == p + EVIDENCE_HEADER_LEN + 4);
    /* quote length disagreeing with the bytes that follow */
    if (p) {
        p[EVIDENCE_HEADER_LEN + 3]++;
        CHECK(evidence_parse(p, len, &back) == -1);
        memset(p + EVIDENCE_HEADER_LEN, 0, 4);
        CHECK(evidence_parse(p, EVIDENCE_HEADER_LEN + 4, &back) == -1);
    }
    free(p);
    ev.quote_len = EVIDENCE_QUOTE_MAX + 1;
    CHECK(evidence_size(&ev) == 0);
    CHECK(evidence_serialize(&ev, &len) == NULL);
}

TEST(evidence_bind_hashes_both_keys) {
    uint8_t spki[44], e2e[32], a[32], b[32], want[32], cat[76];
    memset(spki, 7, sizeof spki);
    memset(e2e, 9, sizeof e2e);
    evidence_bind(spki, sizeof spki, e2e, a);
    memcpy(cat, spki, 44);
    memcpy(cat + 44, e2e, 32);
    crypto_hash_sha256(want, cat, sizeof cat);
    CHECK(memcmp(a, want, 32) == 0);
    e2e[31] ^= 1;
    evidence_bind(spki, sizeof spki, e2e, b);
    CHECK(memcmp(a, b, 32) != 0);
}

TEST(sim_platform_key_load_or_create) {
    keypair k, k2;
    struct stat st;
    const char *path = test_tmp_path("platform.key");
    /* the first start makes the key (mode 0600), later ones load the same key */
    CHECK(sim_key_load_or_create(path, &k) == 0);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(sim_key_load_or_create(path, &k2) == 0);
    CHECK(memcmp(k.public_key, k2.public_key, 32) == 0);
    CHECK(memcmp(k.secret_key, k2.secret_key, 64) == 0);
    /* a key others can read is refused, not replaced */
    chmod(path, 0644);
    CHECK(sim_key_load_or_create(path, &k2) == -1);
    CHECK(strstr(err_msg(), "chmod 600") != NULL);
    chmod(path, 0600);
    /* anything but a key file is an error, never overwritten */
    write_text(test_tmp_path("not-a.key"), "hello\n", 0600);
    CHECK(sim_key_load_or_create(test_tmp_path("not-a.key"), &k2) == -1);
    CHECK(sim_key_load_or_create(test_tmp_path("no-such-dir/x.key"), &k2) == -1);
    keys_wipe(&k);
    keys_wipe(&k2);
}

TEST(sim_signature_covers_every_field) {
    keypair k;
    evidence ev;
    CHECK(keys_generate(&k) == 0);
    sample_evidence(&ev, &k);
    CHECK(sim_check(&ev) == 0);
    ev.issued_at++;
    CHECK(sim_check(&ev) == -1);
    sample_evidence(&ev, &k);
    ev.measurement[5] ^= 1;
    CHECK(sim_check(&ev) == -1);
    sample_evidence(&ev, &k);
    ev.report_data[31] ^= 0x80;
    CHECK(sim_check(&ev) == -1);
    sample_evidence(&ev, &k);
    ev.sim_sig[0] ^= 1;
    CHECK(sim_check(&ev) == -1);
    CHECK(strstr(err_msg(), "forged") != NULL);
}

TEST(sim_measure_file_is_sha256) {
    const char *path = test_tmp_path("image.bin");
    uint8_t m[32], want[32];
    write_text(path, "abc", 0644);
    CHECK(sim_measure_file(path, m) == 0);
    crypto_hash_sha256(want, (const uint8_t *)"abc", 3);
    CHECK(memcmp(m, want, 32) == 0);
    CHECK(sim_measure_file(test_tmp_path("no-such-image"), m) == -1);
}

struct collected {
    uint8_t v[4][32];
    int n;
};

static int collect(void *ctx, const uint8_t value[32]) {
    struct collected *c = ctx;
    if (c->n == 4) return err_set("too many");
    memcpy(c->v[c->n++], value, 32);
    return 0;
}

TEST(hexfile_comments_and_errors) {
    const char *path = test_tmp_path("list.txt");
    struct collected c = {.n = 0};
    uint8_t want[32];
    char hex[65];
    for (int i = 0; i < 32; i++) want[i] = (uint8_t)(0xa0 + i % 16);
    write_text(path,
               "# allowed images\n"
               "\n"
               "  A0A1A2A3A4A5A6A7A8A9AAABACADAEAFA0A1A2A3A4A5A6A7A8A9AAABACADAEAF  # v1\r\n"
               "\ta0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
               0644);
    CHECK(hexfile_read(path, collect, &c) == 0);
    CHECK_EQ_INT(c.n, 2);
    CHECK(memcmp(c.v[0], want, 32) == 0 && memcmp(c.v[1], want, 32) == 0);
    hex_encode(want, 32, hex);
    CHECK_EQ_STR(hex, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf");
    /* short, long, non-hex, and an error from the callback: each names the line */
    write_text(path, "# x\na0a1\n", 0644);
    CHECK(hexfile_read(path, collect, &c) == -1);
    CHECK(strstr(err_msg(), "list.txt:2:") != NULL);
    write_text(path, "a0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf0\n", 0644);
    CHECK(hexfile_read(path, collect, &c) == -1);
    write_text(path, "g0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n", 0644);
    CHECK(hexfile_read(path, collect, &c) == -1);
    c.n = 4;
    write_text(path, "\n\na0a1a2a3a4a5a6a7a8a9aaabacadaeafa0a1a2a3a4a5a6a7a8a9aaabacadaeaf\n", 0644);
    CHECK(hexfile_read(path, collect, &c) == -1);
    CHECK(strstr(err_msg(), "list.txt:3: too many") != NULL);
    CHECK(hexfile_read(test_tmp_path("absent.txt"), collect, &c) == -1);
}

TEST(tdx_quote_fields) {
    static uint8_t quote[TDX_QUOTE_MIN_LEN + 10];
    uint8_t rd[64], m[32], want[32], cat[5 * TDX_MR_LEN];
    tdx_quote q;
    size_t n;
    for (int i = 0; i < 64; i++) rd[i] = (uint8_t)(i * 3);
    n = fake_tdx_quote(quote, rd, 5, 10);
    CHECK(tdx_quote_parse(quote, n, &q) == 0);
    CHECK_EQ_INT(q.version, 4);
    CHECK_EQ_INT(q.tee_type, 0x81);
    CHECK_EQ_INT(q.att_key_type, 2);
    CHECK(q.mrtd == quote + 184);
    CHECK(q.rtmr[0] == quote + 376 && q.rtmr[3] == quote + 520);
    CHECK(q.report_data == quote + 568);
    CHECK(memcmp(q.report_data, rd, 64) == 0);
    CHECK_EQ_INT(q.signature_len, 10);
    memcpy(cat, q.mrtd, TDX_MR_LEN);
    for (int r = 0; r < 4; r++) memcpy(cat + (r + 1) * TDX_MR_LEN, q.rtmr[r], TDX_MR_LEN);
    crypto_hash_sha256(want, cat, sizeof cat);
    tdx_quote_measurement(&q, m);
    CHECK(memcmp(m, want, 32) == 0);
    /* strictness */
    CHECK(tdx_quote_parse(quote, n - 1, &q) == -1);
    CHECK(tdx_quote_parse(quote, TDX_QUOTE_MIN_LEN - 1, &q) == -1);
    quote[0] = 3;
    CHECK(tdx_quote_parse(quote, n, &q) == -1);
    CHECK(strstr(err_msg(), "version 3") != NULL);
    quote[0] = 4;
    quote[4] = 0;
    CHECK(tdx_quote_parse(quote, n, &q) == -1);
    CHECK(strstr(err_msg(), "not TDX") != NULL);
}

TEST(tdx_unavailable_is_a_clear_error) {
    uint8_t inblob[64] = {0}, *quote = NULL;
    size_t len;
    const char *missing = test_tmp_path("no-tsm/report");
    CHECK(provider_tdx_open(missing) == NULL);
    CHECK(strstr(err_msg(), "TDX attestation unavailable") != NULL);
    CHECK(strstr(err_msg(), "not present") != NULL);
    CHECK(tdx_get_quote(missing, inblob, &quote, &len) == -1);
    CHECK(strstr(err_msg(), "TDX attestation unavailable") != NULL);
    CHECK(quote == NULL);
    if (access(TDX_TSM_REPORT_DIR, F_OK) != 0) {
        CHECK(provider_tdx_open(NULL) == NULL);
        CHECK(strstr(err_msg(), "TDX attestation unavailable: /sys/kernel/config/tsm/report not "
                                "present") != NULL);
    }
}

TEST(tdx_get_quote_checks_the_provider) {
    /* an ordinary directory stands in for configfs: the entry has no provider attribute, so
     * nothing is written and the entry is removed again */
    uint8_t inblob[64] = {0}, *quote = NULL;
    size_t len;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/fake-tsm", test_tmpdir());
    mkdir(dir, 0700);
    CHECK(tdx_get_quote(dir, inblob, &quote, &len) == -1);
    CHECK(strstr(err_msg(), "provider") != NULL);
    CHECK(rmdir(dir) == 0); /* empty again */
}
