/* TON ordinary cells: builder, slice reader, representation hash and depth; see cell.h. */
#include "ledger/cell.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

struct cell {
    atomic_uint refcount;
    uint16_t bits;
    uint16_t depth;
    uint8_t nrefs;
    uint8_t hash[32];
    uint8_t data[(CELL_MAX_BITS + 7) / 8];
    cell *refs[CELL_MAX_REFS];
};

cell *cell_ref(cell *c) {
    if (c) atomic_fetch_add_explicit(&c->refcount, 1, memory_order_relaxed);
    return c;
}

/* Recursion is bounded by CELL_MAX_DEPTH, which cell_finish enforces. */
void cell_unref(cell *c) {
    if (!c || atomic_fetch_sub_explicit(&c->refcount, 1, memory_order_acq_rel) != 1) return;
    for (unsigned i = 0; i < c->nrefs; i++) cell_unref(c->refs[i]);
    free(c);
}

unsigned cell_bits(const cell *c) { return c->bits; }
unsigned cell_nrefs(const cell *c) { return c->nrefs; }
cell *cell_child(const cell *c, unsigned i) { return i < c->nrefs ? c->refs[i] : NULL; }
const uint8_t *cell_data(const cell *c) { return c->data; }
const uint8_t *cell_hash(const cell *c) { return c->hash; }
unsigned cell_depth(const cell *c) { return c->depth; }
bool cell_equal(const cell *a, const cell *b) { return memcmp(a->hash, b->hash, 32) == 0; }

/* Ordinary level-0 cells only, so d1 is just the number of refs (no exotic flag, no level). */
uint8_t cell_d1(const cell *c) { return c->nrefs; }
uint8_t cell_d2(const cell *c) { return (uint8_t)((c->bits + 7) / 8 + c->bits / 8); }

/* ---- building ---- */

void cell_build_init(cell_builder *b) { memset(b, 0, sizeof *b); }

void cell_build_abort(cell_builder *b) {
    for (unsigned i = 0; i < b->nrefs; i++) cell_unref(b->refs[i]);
    b->nrefs = 0;
    b->bits = 0;
}

unsigned cell_build_bits_left(const cell_builder *b) { return CELL_MAX_BITS - b->bits; }

static int build_fail(cell_builder *b) {
    b->failed = true;
    return -1;
}

static int need_room(cell_builder *b, unsigned n) {
    if (n > CELL_MAX_BITS - b->bits) {
        err_set("cell builder: storing %u bits at bit %u passes the %u-bit limit", n, b->bits, CELL_MAX_BITS);
        return build_fail(b);
    }
    return 0;
}

/* The data array starts zeroed and only ever gains bits, so setting is an OR. */
static void put_bit(uint8_t *data, unsigned pos, unsigned bit) {
    if (bit) data[pos >> 3] |= (uint8_t)(0x80u >> (pos & 7));
}

static unsigned get_bit(const uint8_t *data, unsigned pos) { return (data[pos >> 3] >> (7 - (pos & 7))) & 1u; }

static void put_uint(cell_builder *b, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) put_bit(b->data, b->bits + i, (unsigned)(v >> (n - 1 - i)) & 1u);
    b->bits += n;
}

int cell_store_uint(cell_builder *b, uint64_t v, unsigned n) {
    if (n > 64) {
        err_set("cell builder: uint of %u bits (at most 64)", n);
        return build_fail(b);
    }
    if (n < 64 && v >> n) {
        err_set("cell builder: value %llu does not fit in %u bits", (unsigned long long)v, n);
        return build_fail(b);
    }
    if (need_room(b, n)) return -1;
    put_uint(b, v, n);
    return 0;
}

int cell_store_int(cell_builder *b, int64_t v, unsigned n) {
    if (n < 1 || n > 64) {
        err_set("cell builder: int of %u bits (1 to 64)", n);
        return build_fail(b);
    }
    if (n < 64) {
        int64_t lo = -((int64_t)1 << (n - 1)), hi = ((int64_t)1 << (n - 1)) - 1;
        if (v < lo || v > hi) {
            err_set("cell builder: value %lld does not fit in a %u-bit signed int", (long long)v, n);
            return build_fail(b);
        }
    }
    if (need_room(b, n)) return -1;
    put_uint(b, n < 64 ? (uint64_t)v & ((UINT64_C(1) << n) - 1) : (uint64_t)v, n);
    return 0;
}

int cell_store_bits(cell_builder *b, const uint8_t *src, unsigned n) {
    if (need_room(b, n)) return -1;
    for (unsigned i = 0; i < n; i++) put_bit(b->data, b->bits + i, get_bit(src, i));
    b->bits += n;
    return 0;
}

int cell_store_bytes(cell_builder *b, const uint8_t *src, size_t n) {
    if (n > CELL_MAX_BITS / 8) {
        err_set("cell builder: %zu bytes do not fit in a cell", n);
        return build_fail(b);
    }
    return cell_store_bits(b, src, (unsigned)n * 8);
}

int cell_store_coins(cell_builder *b, uint64_t v) {
    unsigned len = 0;
    while (len < 8 && v >> (8 * len)) len++;
    if (need_room(b, 4 + 8 * len)) return -1;
    put_uint(b, len, 4);
    put_uint(b, v, 8 * len);
    return 0;
}

int cell_store_ref(cell_builder *b, cell *child) {
    if (!child) {
        err_set("cell builder: NULL reference");
        return build_fail(b);
    }
    if (b->nrefs == CELL_MAX_REFS) {
        err_set("cell builder: a cell holds at most %d references", CELL_MAX_REFS);
        return build_fail(b);
    }
    b->refs[b->nrefs++] = cell_ref(child);
    return 0;
}

/* Representation (TON.md "Cells"): d1 d2, data with the completion tag when not byte-aligned,
 * each child's depth as u16 big-endian, each child's hash. */
static void compute_hash(cell *c) {
    uint8_t repr[2 + sizeof c->data + CELL_MAX_REFS * (2 + 32)];
    size_t n = 0, nbytes = (c->bits + 7u) / 8u;
    repr[n++] = cell_d1(c);
    repr[n++] = cell_d2(c);
    memcpy(repr + n, c->data, nbytes);
    if (c->bits % 8) repr[n + nbytes - 1] |= (uint8_t)(0x80u >> (c->bits % 8));
    n += nbytes;
    for (unsigned i = 0; i < c->nrefs; i++) {
        repr[n++] = (uint8_t)(c->refs[i]->depth >> 8);
        repr[n++] = (uint8_t)c->refs[i]->depth;
    }
    for (unsigned i = 0; i < c->nrefs; i++) {
        memcpy(repr + n, c->refs[i]->hash, 32);
        n += 32;
    }
    /* libsodium's SHA-256 has no CPU dispatch, so it is safe before sodium_init(). */
    crypto_hash_sha256(c->hash, repr, n);
}

cell *cell_finish(cell_builder *b) {
    cell *c = NULL;
    unsigned depth = 0;
    if (b->failed) {
        err_set("cell builder: not finished because an earlier store failed");
        goto fail;
    }
    for (unsigned i = 0; i < b->nrefs; i++)
        if (b->refs[i]->depth + 1u > depth) depth = b->refs[i]->depth + 1u;
    if (depth > CELL_MAX_DEPTH) {
        err_set("cell builder: depth %u passes the limit of %d", depth, CELL_MAX_DEPTH);
        goto fail;
    }
    c = malloc(sizeof *c);
    if (!c) {
        err_set("cell builder: out of memory");
        goto fail;
    }
    atomic_init(&c->refcount, 1);
    c->bits = (uint16_t)b->bits;
    c->depth = (uint16_t)depth;
    c->nrefs = (uint8_t)b->nrefs;
    memcpy(c->data, b->data, sizeof c->data);
    memcpy(c->refs, b->refs, sizeof c->refs);
    compute_hash(c);
    cell_build_init(b);
    return c;
fail:
    cell_build_abort(b);
    cell_build_init(b);
    return NULL;
}

/* ---- reading ---- */

void cell_slice_init(cell_slice *s, const cell *c) {
    s->c = c;
    s->bit = 0;
    s->ref = 0;
}

unsigned cell_slice_bits_left(const cell_slice *s) { return s->c->bits - s->bit; }
unsigned cell_slice_refs_left(const cell_slice *s) { return s->c->nrefs - s->ref; }

static int need_bits(const cell_slice *s, unsigned n) {
    if (n > cell_slice_bits_left(s))
        return err_set("cell: reading %u bits at bit %u of a %u-bit cell", n, s->bit, (unsigned)s->c->bits);
    return 0;
}

static uint64_t take_uint(cell_slice *s, unsigned n) {
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++) v = v << 1 | get_bit(s->c->data, s->bit + i);
    s->bit += n;
    return v;
}

int cell_load_uint(cell_slice *s, unsigned n, uint64_t *out) {
    if (n > 64) return err_set("cell: uint of %u bits (at most 64)", n);
    if (need_bits(s, n)) return -1;
    *out = take_uint(s, n);
    return 0;
}

int cell_load_int(cell_slice *s, unsigned n, int64_t *out) {
    if (n < 1 || n > 64) return err_set("cell: int of %u bits (1 to 64)", n);
    if (need_bits(s, n)) return -1;
    uint64_t v = take_uint(s, n);
    if (n < 64 && (v >> (n - 1)) & 1u) v |= ~((UINT64_C(1) << n) - 1);
    *out = (int64_t)v;
    return 0;
}

int cell_load_bits(cell_slice *s, unsigned n, uint8_t *dst) {
    if (need_bits(s, n)) return -1;
    memset(dst, 0, (n + 7u) / 8u);
    for (unsigned i = 0; i < n; i++) put_bit(dst, i, get_bit(s->c->data, s->bit + i));
    s->bit += n;
    return 0;
}

int cell_load_bytes(cell_slice *s, size_t n, uint8_t *dst) {
    if (n > CELL_MAX_BITS / 8) return err_set("cell: reading %zu bytes, more than a cell holds", n);
    return cell_load_bits(s, (unsigned)n * 8, dst);
}

int cell_load_coins(cell_slice *s, uint64_t *out) {
    cell_slice save = *s;
    uint64_t len, v = 0;
    if (cell_load_uint(s, 4, &len) || need_bits(s, (unsigned)len * 8)) goto fail;
    for (uint64_t i = 0; i < len; i++) {
        uint64_t byte = take_uint(s, 8);
        if (v >> 56) {
            err_set("cell: coins value at bit %u does not fit in 64 bits", save.bit);
            goto fail;
        }
        v = v << 8 | byte;
    }
    *out = v;
    return 0;
fail:
    *s = save;
    return -1;
}

int cell_load_ref(cell_slice *s, const cell **out) {
    if (s->ref >= s->c->nrefs) return err_set("cell: reading reference %u of a cell with %u", s->ref, (unsigned)s->c->nrefs);
    *out = s->c->refs[s->ref++];
    return 0;
}

int cell_slice_end(const cell_slice *s, const char *what) {
    if (cell_slice_bits_left(s) || cell_slice_refs_left(s))
        return err_set("%s: %u bits and %u references left over after the layout", what, cell_slice_bits_left(s),
                       cell_slice_refs_left(s));
    return 0;
}
