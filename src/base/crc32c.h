/* CRC-32C (Castagnoli), the checksum that TON's bag-of-cells format appends. */
#ifndef VEIL_CRC32C_H
#define VEIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of n bytes (reflected polynomial 0x82F63B78, initial and final xor 0xFFFFFFFF);
 * crc32c("123456789") == 0xE3069283. */
uint32_t crc32c(const void *p, size_t n);

#endif
