/* CRC-32C, bit at a time: BOCs are small (a voucher is ~150 bytes), so a 1 KiB table or the
 * SSE4.2 instruction would buy nothing measurable; this needs no state and no init. */
#include "base/crc32c.h"

uint32_t crc32c(const void *p, size_t n) {
    const unsigned char *b = p;
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return ~crc;
}
