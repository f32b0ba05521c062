/* Bag of cells (BOC): the standard byte form of a cell tree, magic b5ee9c72, as TON nodes and
 * @ton/core read and write it (docs/PAYMENTS.md describes every field).
 *
 * The writer lists each distinct cell once (cells with equal hashes are shared), parents before
 * children, in the same order as @ton/core, so equal trees give equal bytes. The reader accepts
 * any single-root standard BOC of ordinary cells, with or without an index and CRC-32C (checked
 * when present), and rejects everything else with a message naming the field and offset: it
 * never reads outside the input, and its allocations are bounded by the input's length. */
#ifndef VEIL_BOC_H
#define VEIL_BOC_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/cell.h"

enum {
    BOC_CRC32C = 1, /* append a CRC-32C of everything before it */
    BOC_INDEX = 2,  /* write the table of cell end offsets */
};

/* Serializes the tree under root into a malloc'd buffer (*out, *len). flags: BOC_* bits. */
int boc_serialize(const cell *root, unsigned flags, uint8_t **out, size_t *len);

/* Parses a BOC with exactly one root; the caller owns the returned cell. NULL + err_msg(). */
cell *boc_parse(const uint8_t *data, size_t len);

#endif
