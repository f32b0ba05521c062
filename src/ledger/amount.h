/* Amounts of money: u64 nano-units (1e-9 of a coin, like nanoTON), combined only with checked
 * arithmetic, so an overflow is an error the caller sees rather than a wrapped balance. */
#ifndef VEIL_AMOUNT_H
#define VEIL_AMOUNT_H

#include <stdint.h>

/* Each returns 0 and sets *out, or -1 with err_msg() naming `what` and the operands, leaving
 * *out unchanged. */
int amount_add(uint64_t a, uint64_t b, uint64_t *out, const char *what);
int amount_sub(uint64_t a, uint64_t b, uint64_t *out, const char *what);
int amount_mul(uint64_t a, uint64_t b, uint64_t *out, const char *what);

#endif
