/* TDX quotes through configfs-tsm and their structural parse; see tdx.h. */
#include "attest/tdx.h"

#include "attest/evidence.h"
#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t get_le(const uint8_t *p, int bytes) {
    uint32_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

int tdx_quote_parse(const uint8_t *q, size_t n, tdx_quote *out) {
    memset(out, 0, sizeof *out);
    if (n < TDX_QUOTE_MIN_LEN)
        return err_set("tdx quote: %zu bytes, shorter than header, TD report and signature "
                       "length (%d)",
                       n, TDX_QUOTE_MIN_LEN);
    out->version = (uint16_t)get_le(q, 2);
    out->att_key_type = (uint16_t)get_le(q + 2, 2);
    out->tee_type = get_le(q + 4, 4);
    if (out->version != TDX_QUOTE_VERSION)
        return err_set("tdx quote: version %u at offset 0, only version %d is read",
                       out->version, TDX_QUOTE_VERSION);
    if (out->tee_type != TDX_TEE_TYPE)
        return err_set("tdx quote: TEE type 0x%x at offset 4 is not TDX (0x%x)", out->tee_type,
                       TDX_TEE_TYPE);
    out->mrtd = q + TDX_OFF_MRTD;
    for (int i = 0; i < 4; i++) out->rtmr[i] = q + TDX_OFF_RTMR0 + i * TDX_MR_LEN;
    out->report_data = q + TDX_OFF_REPORTDATA;
    out->signature_len = get_le(q + TDX_OFF_SIG_LEN, 4);
    if (out->signature_len != n - TDX_QUOTE_MIN_LEN)
        return err_set("tdx quote: signature data length %u at offset %d, but %zu bytes follow",
                       out->signature_len, TDX_OFF_SIG_LEN, n - TDX_QUOTE_MIN_LEN);
    out->signature = out->signature_len ? q + TDX_QUOTE_MIN_LEN : NULL;
    return 0;
}

void tdx_quote_measurement(const tdx_quote *q, uint8_t out[32]) {
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, q->mrtd, TDX_MR_LEN);
    for (int i = 0; i < 4; i++) crypto_hash_sha256_update(&st, q->rtmr[i], TDX_MR_LEN);
    crypto_hash_sha256_final(&st, out);
}

/* Reads a whole configfs attribute (at most max bytes) into a malloc'd buffer. */
static int read_attr(const char *path, size_t max, uint8_t **out, size_t *len) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf = NULL;
    size_t n = 0;
    if (fd < 0) return err_errno("%s", path);
    buf = malloc(max + 1);
    if (!buf) {
        err_set("%s: out of memory", path);
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, max + 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            err_errno("%s: read", path);
            goto fail;
        }
        if (r == 0) break;
        n += (size_t)r;
        if (n > max) {
            err_set("%s: more than %zu bytes", path, max);
            goto fail;
        }
    }
    close(fd);
    *out = buf;
    *len = n;
    return 0;
fail:
    free(buf);
    close(fd);
    return -1;
}

static int write_attr(const char *path, const uint8_t *data, size_t n) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    ssize_t w;
    if (fd < 0) return err_errno("%s", path);
    w = write(fd, data, n);
    if (w < 0) err_errno("%s: write", path);
    else if ((size_t)w != n) err_set("%s: wrote %zd of %zu bytes", path, w, n);
    close(fd);
    return w >= 0 && (size_t)w == n ? 0 : -1;
}

/* An attribute holding a short line of text (provider, generation), newline removed. */
static int read_text_attr(const char *path, char *out, size_t cap) {
    uint8_t *buf;
    size_t n;
    if (read_attr(path, cap - 1, &buf, &n) != 0) return -1;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == 0)) n--;
    memcpy(out, buf, n);
    out[n] = 0;
    free(buf);
    return 0;
}

int tdx_get_quote(const char *tsm_dir, const uint8_t inblob[64], uint8_t **quote, size_t *len) {
    char entry[512], path[600], text[64];
    uint8_t tag[8];
    struct stat st;
    int made = 0, ret = -1;
    *quote = NULL;
    if (!tsm_dir) tsm_dir = TDX_TSM_REPORT_DIR;
    if (stat(tsm_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return err_set("TDX attestation unavailable: %s not present (not a TDX guest, or a kernel "
                       "without configfs-tsm)",
                       tsm_dir);
    if (sodium_init() < 0) return err_set("libsodium failed to initialise");
    /* a fresh entry per quote, so concurrent callers never share an inblob */
    randombytes_buf(tag, sizeof tag);
    snprintf(entry, sizeof entry, "%s/veil-%02x%02x%02x%02x%02x%02x%02x%02x", tsm_dir, tag[0],
             tag[1], tag[2], tag[3], tag[4], tag[5], tag[6], tag[7]);
    if (mkdir(entry, 0700) != 0) return err_errno("%s: mkdir", entry);
    made = 1;
    snprintf(path, sizeof path, "%s/provider", entry);
    if (read_text_attr(path, text, sizeof text) != 0) goto out;
    if (strcmp(text, "tdx_guest") != 0) {
        err_set("TDX attestation unavailable: the configfs-tsm provider is '%s', not tdx_guest",
                text);
        goto out;
    }
    snprintf(path, sizeof path, "%s/inblob", entry);
    if (write_attr(path, inblob, 64) != 0) goto out;
    snprintf(path, sizeof path, "%s/outblob", entry);
    if (read_attr(path, EVIDENCE_QUOTE_MAX, quote, len) != 0) goto out;
    /* generation counts writes to the entry: 1 means the quote is over our inblob */
    snprintf(path, sizeof path, "%s/generation", entry);
    if (read_text_attr(path, text, sizeof text) != 0) goto out;
    if (strcmp(text, "1") != 0) {
        err_set("%s: generation %s: another writer changed the request; try again", entry, text);
        goto out;
    }
    ret = 0;
out:
    if (made && rmdir(entry) != 0 && ret == 0) ret = err_errno("%s: rmdir", entry);
    if (ret != 0) {
        free(*quote);
        *quote = NULL;
    }
    return ret;
}
