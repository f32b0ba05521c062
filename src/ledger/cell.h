/* TON cells: immutable nodes of up to 1023 data bits and up to 4 references to other cells,
 * identified by their representation hash (docs/PAYMENTS.md, ../shared/docs/TON.md). Vouchers
 * and receipts are cells so that one Ed25519 signature over a cell hash means the same thing to
 * veil's local ledger and to a TON contract.
 *
 * Only ordinary cells exist here (level 0, never exotic). A cell is built with a cell_builder,
 * which checks every store against the cell's limits, and read with a cell_slice, which checks
 * every load against what is left: no function here reads or writes out of bounds on any
 * input. Cells are reference counted (atomically, so finished cells may be shared by threads);
 * a finished cell never changes. */
#ifndef VEIL_CELL_H
#define VEIL_CELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CELL_MAX_BITS 1023
#define CELL_MAX_REFS 4
/* TON's own limit on depth; also bounds the recursion of every walk over a cell tree. */
#define CELL_MAX_DEPTH 1024

typedef struct cell cell;

/* ---- finished cells ---- */

/* Takes one more reference (returns c); cell_unref drops one and frees the cell, and its
 * children's references, at zero. Both accept NULL. */
cell *cell_ref(cell *c);
void cell_unref(cell *c);

unsigned cell_bits(const cell *c);
unsigned cell_nrefs(const cell *c);
/* The i-th child (i < cell_nrefs), borrowed: valid while c is. */
cell *cell_child(const cell *c, unsigned i);
/* The data bits, MSB-first, ceil(bits/8) bytes; bits past cell_bits() in the last byte are 0. */
const uint8_t *cell_data(const cell *c);
/* Representation hash (SHA-256) and depth, computed once when the cell was finished. */
const uint8_t *cell_hash(const cell *c);
unsigned cell_depth(const cell *c);
bool cell_equal(const cell *a, const cell *b);
/* d1 and d2, the two descriptor bytes that start both the representation and a BOC entry. */
uint8_t cell_d1(const cell *c);
uint8_t cell_d2(const cell *c);

/* ---- building ---- */

/* A cell under construction. The first failing store sets `failed`, and cell_finish then
 * refuses, so a caller may chain stores and check once at the end; each store still returns
 * -1 with err_msg() so a caller can also check as it goes. */
typedef struct cell_builder {
    uint8_t data[(CELL_MAX_BITS + 7) / 8];
    unsigned bits;
    unsigned nrefs;
    cell *refs[CELL_MAX_REFS]; /* owned references */
    bool failed;
} cell_builder;

void cell_build_init(cell_builder *b);
/* Releases the references a builder holds when it will not be finished (after an error). */
void cell_build_abort(cell_builder *b);
unsigned cell_build_bits_left(const cell_builder *b);

/* Stores the low n bits of v (0 <= n <= 64); v must fit in n bits. */
int cell_store_uint(cell_builder *b, uint64_t v, unsigned n);
/* Stores v as an n-bit two's complement integer (1 <= n <= 64); v must fit. */
int cell_store_int(cell_builder *b, int64_t v, unsigned n);
/* Stores the first n bits of src, MSB-first. */
int cell_store_bits(cell_builder *b, const uint8_t *src, unsigned n);
int cell_store_bytes(cell_builder *b, const uint8_t *src, size_t n);
/* TON `Coins` (VarUInteger 16): a 4-bit byte length, then the value big-endian in that many
 * bytes, the fewest that hold it (0 is stored as length 0). */
int cell_store_coins(cell_builder *b, uint64_t v);
/* Adds a reference to child (the builder takes its own reference; the caller keeps its). */
int cell_store_ref(cell_builder *b, cell *child);

/* Turns the builder into a cell (computing its hash and depth) and empties the builder. NULL
 * with err_msg() when a store had failed, the depth would pass CELL_MAX_DEPTH, or memory ran
 * out; the builder's references are released either way. */
cell *cell_finish(cell_builder *b);

/* ---- reading ---- */

/* A read position in a cell: bits and refs are consumed from the front. A load past the end
 * fails with a message naming the position and leaves the slice unchanged. */
typedef struct cell_slice {
    const cell *c;
    unsigned bit;
    unsigned ref;
} cell_slice;

void cell_slice_init(cell_slice *s, const cell *c);
unsigned cell_slice_bits_left(const cell_slice *s);
unsigned cell_slice_refs_left(const cell_slice *s);

int cell_load_uint(cell_slice *s, unsigned n, uint64_t *out);
int cell_load_int(cell_slice *s, unsigned n, int64_t *out);
/* Copies n bits MSB-first into dst (ceil(n/8) bytes; unused low bits of the last byte are 0). */
int cell_load_bits(cell_slice *s, unsigned n, uint8_t *dst);
int cell_load_bytes(cell_slice *s, size_t n, uint8_t *dst);
/* Coins; a value that does not fit 64 bits is an error (veil's amounts are u64). */
int cell_load_coins(cell_slice *s, uint64_t *out);
/* The next child, borrowed (valid while the slice's cell is). */
int cell_load_ref(cell_slice *s, const cell **out);
/* Fails unless every bit and ref has been read: a layout with trailing data is not the layout
 * it claims to be, and strict parsing keeps one meaning per signed cell. `what` names the
 * layout in the message. */
int cell_slice_end(const cell_slice *s, const char *what);

#endif
