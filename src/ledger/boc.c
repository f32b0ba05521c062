/* BOC writer and reader; see boc.h. Layout (all integers big-endian):
 *   magic b5ee9c72 | flags: has_idx:1 has_crc32c:1 has_cache_bits:1 reserved:2 size:3 |
 *   off_bytes:u8 | cells, roots, absent: `size` bytes each | tot_cells_size: off_bytes |
 *   root indices: roots x size | [index: cells x off_bytes, cell end offsets] |
 *   cell data: tot_cells_size bytes | [crc32c: 4 bytes little-endian]
 * and each cell: d1 d2 [hash:32 depth:2 when d1 & 16] data:ceil(d2/2) refs: nrefs x size. */
#include "ledger/boc.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "base/err.h"

#define BOC_MAGIC 0xb5ee9c72u

/* ---- writing ---- */

/* Distinct cells by hash, with their position in DFS post-order. Open addressing over a
 * power-of-two table; cells are few (a voucher has two), so growth is rare. */
typedef struct cell_set {
    const cell **slot;
    size_t *post;
    size_t cap, count;
    const cell **order; /* post-order list, `count` long */
} cell_set;

static size_t slot_of(const cell_set *s, const cell *c) {
    const uint8_t *h = cell_hash(c);
    uint64_t k;
    memcpy(&k, h, sizeof k);
    size_t i = (size_t)k & (s->cap - 1);
    while (s->slot[i] && !cell_equal(s->slot[i], c)) i = (i + 1) & (s->cap - 1);
    return i;
}

static int set_grow(cell_set *s) {
    size_t cap = s->cap ? s->cap * 2 : 16;
    cell_set n = {calloc(cap, sizeof *n.slot), calloc(cap, sizeof *n.post), cap, 0,
                  realloc(s->order, cap * sizeof *s->order)};
    if (!n.slot || !n.post || !n.order) {
        free(n.slot);
        free(n.post);
        if (n.order) s->order = n.order;
        return err_set("boc: out of memory for %zu cells", cap);
    }
    for (size_t i = 0; i < s->cap; i++)
        if (s->slot[i]) {
            size_t j = slot_of(&n, s->slot[i]);
            n.slot[j] = s->slot[i];
            n.post[j] = s->post[i];
        }
    n.count = s->count;
    free(s->slot);
    free(s->post);
    *s = n;
    return 0;
}

/* Post-order over children from last to first, each distinct cell once; reversed, this is the
 * order @ton/core writes (root first, every parent before its children). Recursion depth is
 * at most CELL_MAX_DEPTH. */
static int collect(cell_set *s, const cell *c) {
    if (s->cap && s->slot[slot_of(s, c)]) return 0;
    for (unsigned i = cell_nrefs(c); i-- > 0;)
        if (collect(s, cell_child(c, i))) return -1;
    if ((s->count + 1) * 2 > s->cap && set_grow(s)) return -1;
    size_t j = slot_of(s, c);
    s->slot[j] = c;
    s->post[j] = s->count;
    s->order[s->count++] = c;
    return 0;
}

static size_t index_of(const cell_set *s, const cell *c) { return s->count - 1 - s->post[slot_of(s, c)]; }

static unsigned bytes_for(uint64_t v) {
    unsigned n = 1;
    while (n < 8 && v >> (8 * n)) n++;
    return n;
}

static uint8_t *put_be(uint8_t *p, uint64_t v, unsigned n) {
    for (unsigned i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
    return p + n;
}

static size_t cell_size(const cell *c, unsigned ref_bytes) {
    return 2 + (cell_bits(c) + 7u) / 8u + cell_nrefs(c) * (size_t)ref_bytes;
}

int boc_serialize(const cell *root, unsigned flags, uint8_t **out, size_t *len) {
    cell_set s = {0};
    uint8_t *buf = NULL;
    *out = NULL;
    *len = 0;
    if (collect(&s, root)) goto fail;
    unsigned size = bytes_for(s.count);
    if (size > 4) {
        err_set("boc: %zu distinct cells are more than a BOC can index", s.count);
        goto fail;
    }
    size_t total = 0;
    for (size_t i = 0; i < s.count; i++) total += cell_size(s.order[i], size);
    unsigned off = bytes_for(total);
    bool idx = flags & BOC_INDEX, crc = flags & BOC_CRC32C;
    size_t n = 4 + 1 + 1 + 3 * (size_t)size + off + size + (idx ? s.count * off : 0) + total + (crc ? 4 : 0);
    buf = malloc(n);
    if (!buf) {
        err_set("boc: out of memory for %zu bytes", n);
        goto fail;
    }
    uint8_t *p = put_be(buf, BOC_MAGIC, 4);
    *p++ = (uint8_t)((idx ? 0x80 : 0) | (crc ? 0x40 : 0) | size);
    *p++ = (uint8_t)off;
    p = put_be(p, s.count, size);
    p = put_be(p, 1, size);
    p = put_be(p, 0, size);
    p = put_be(p, total, off);
    p = put_be(p, 0, size); /* the root is first */
    if (idx) {
        size_t end = 0;
        for (size_t i = s.count; i-- > 0;) {
            end += cell_size(s.order[i], size);
            p = put_be(p, end, off);
        }
    }
    for (size_t i = s.count; i-- > 0;) {
        const cell *c = s.order[i];
        size_t nbytes = (cell_bits(c) + 7u) / 8u;
        *p++ = cell_d1(c);
        *p++ = cell_d2(c);
        memcpy(p, cell_data(c), nbytes);
        if (cell_bits(c) % 8) p[nbytes - 1] |= (uint8_t)(0x80u >> (cell_bits(c) % 8));
        p += nbytes;
        for (unsigned r = 0; r < cell_nrefs(c); r++) p = put_be(p, index_of(&s, cell_child(c, r)), size);
    }
    if (crc) {
        uint32_t sum = crc32c(buf, (size_t)(p - buf));
        for (int i = 0; i < 4; i++) *p++ = (uint8_t)(sum >> (8 * i));
    }
    *out = buf;
    *len = n;
    free(s.slot);
    free(s.post);
    free(s.order);
    return 0;
fail:
    free(buf);
    free(s.slot);
    free(s.post);
    free(s.order);
    return -1;
}

/* ---- reading ---- */

typedef struct reader {
    const uint8_t *p;
    size_t len, pos;
} reader;

static int read_be(reader *r, unsigned n, uint64_t *v, const char *field) {
    *v = 0;
    if (n > r->len - r->pos) return err_set("boc: truncated at offset %zu reading %s (%u bytes)", r->pos, field, n);
    uint64_t x = 0;
    for (unsigned i = 0; i < n; i++) x = x << 8 | r->p[r->pos + i];
    r->pos += n;
    *v = x;
    return 0;
}

/* Where one cell lies in the input, found by the first pass. */
typedef struct cell_span {
    size_t pos;      /* offset of d1 */
    size_t data;     /* offset of the data bytes */
    size_t refs;     /* offset of the ref indices */
    size_t end;      /* offset just past the cell */
} cell_span;

typedef struct boc_head {
    bool has_idx, has_crc, has_cache;
    unsigned size, off;
    uint64_t cells, roots, absent, total, root;
    size_t index, data; /* offsets of the index and of the cell data */
} boc_head;

static int parse_head(reader *r, boc_head *h) {
    uint64_t magic, flags, off;
    if (read_be(r, 4, &magic, "magic")) return -1;
    if (magic != BOC_MAGIC)
        return err_set("boc: magic %08llx is not the standard b5ee9c72", (unsigned long long)magic);
    if (read_be(r, 1, &flags, "flags") || read_be(r, 1, &off, "offset size")) return -1;
    h->has_idx = flags & 0x80;
    h->has_crc = flags & 0x40;
    h->has_cache = flags & 0x20;
    h->size = flags & 7;
    h->off = (unsigned)off;
    if (flags & 0x18) return err_set("boc: reserved flag bits set (flags byte 0x%02x at offset 4)", (unsigned)flags);
    if (h->has_cache && !h->has_idx) return err_set("boc: cache bits without an index (flags byte 0x%02x)", (unsigned)flags);
    if (h->size < 1 || h->size > 4) return err_set("boc: cell reference size %u (1 to 4) at offset 4", h->size);
    if (h->off < 1 || h->off > 8) return err_set("boc: offset size %u (1 to 8) at offset 5", h->off);
    if (h->has_crc) {
        if (r->len < r->pos + 4) return err_set("boc: too short for its CRC-32C (%zu bytes)", r->len);
        r->len -= 4;
        uint32_t want = (uint32_t)r->p[r->len] | (uint32_t)r->p[r->len + 1] << 8 | (uint32_t)r->p[r->len + 2] << 16 |
                        (uint32_t)r->p[r->len + 3] << 24;
        uint32_t got = crc32c(r->p, r->len);
        if (got != want) return err_set("boc: CRC-32C mismatch (stored %08x, computed %08x)", want, got);
    }
    if (read_be(r, h->size, &h->cells, "cell count") || read_be(r, h->size, &h->roots, "root count") ||
        read_be(r, h->size, &h->absent, "absent count") || read_be(r, h->off, &h->total, "total cell size"))
        return -1;
    if (h->roots != 1) return err_set("boc: %llu roots; veil reads single-root BOCs", (unsigned long long)h->roots);
    if (h->absent != 0) return err_set("boc: %llu absent cells are not supported", (unsigned long long)h->absent);
    if (h->cells == 0) return err_set("boc: no cells");
    if (read_be(r, h->size, &h->root, "root index")) return -1;
    if (h->root >= h->cells)
        return err_set("boc: root index %llu out of %llu cells", (unsigned long long)h->root, (unsigned long long)h->cells);
    /* Each count is checked against the bytes really present before anything is allocated. */
    size_t left = r->len - r->pos;
    uint64_t index_bytes = h->has_idx ? h->cells * h->off : 0;
    if (index_bytes > left || h->total > left - index_bytes)
        return err_set("boc: %llu cells with %llu bytes of cell data need more than the %zu bytes left at offset %zu",
                       (unsigned long long)h->cells, (unsigned long long)h->total, left, r->pos);
    if (h->cells > h->total / 2)
        return err_set("boc: %llu cells cannot fit in %llu bytes of cell data (2 bytes at least each)",
                       (unsigned long long)h->cells, (unsigned long long)h->total);
    if (index_bytes + h->total != left)
        return err_set("boc: %zu bytes of trailing data after the cells (at offset %zu)",
                       (size_t)(left - index_bytes - h->total), (size_t)(r->pos + index_bytes + h->total));
    h->index = r->pos;
    h->data = r->pos + (size_t)index_bytes;
    return 0;
}

/* First pass: the extent of cell i at r->pos, checked against the header's rules. */
static int scan_cell(reader *r, const boc_head *h, uint64_t i, cell_span *sp) {
    uint64_t d1, d2, ref;
    sp->pos = r->pos;
    if (read_be(r, 1, &d1, "cell d1") || read_be(r, 1, &d2, "cell d2")) return -1;
    if (d1 & 8) return err_set("boc: cell %llu at offset %zu is exotic (d1 0x%02x); only ordinary cells are supported",
                               (unsigned long long)i, sp->pos, (unsigned)d1);
    if (d1 >> 5) return err_set("boc: cell %llu at offset %zu has level mask %u; ordinary cells here have level 0",
                                (unsigned long long)i, sp->pos, (unsigned)(d1 >> 5));
    if ((d1 & 7) > CELL_MAX_REFS) return err_set("boc: cell %llu at offset %zu has %u references (at most 4)",
                                                 (unsigned long long)i, sp->pos, (unsigned)(d1 & 7));
    size_t extra = (d1 & 16) ? 32 + 2 : 0, nbytes = (d2 + 1) / 2;
    if (extra + nbytes > r->len - r->pos)
        return err_set("boc: cell %llu at offset %zu runs past the end of the data", (unsigned long long)i, sp->pos);
    sp->data = r->pos + extra;
    r->pos = sp->data + nbytes;
    if ((d2 & 1) && (r->p[r->pos - 1] & 0x7f) == 0)
        return err_set("boc: cell %llu at offset %zu has a bad completion tag (last data byte 0x%02x)",
                       (unsigned long long)i, sp->pos, r->p[r->pos - 1]);
    sp->refs = r->pos;
    for (unsigned k = 0; k < (d1 & 7); k++) {
        if (read_be(r, h->size, &ref, "cell reference")) return -1;
        if (ref <= i)
            return err_set("boc: cell %llu at offset %zu refers to cell %llu; references must point to later cells "
                           "(a cycle or a misordered bag)", (unsigned long long)i, sp->pos, (unsigned long long)ref);
        if (ref >= h->cells)
            return err_set("boc: cell %llu at offset %zu refers to cell %llu of %llu", (unsigned long long)i, sp->pos,
                           (unsigned long long)ref, (unsigned long long)h->cells);
    }
    sp->end = r->pos;
    return 0;
}

static int check_index(const reader *r, const boc_head *h, uint64_t i, const cell_span *sp) {
    reader ix = {r->p, h->data, h->index + (size_t)i * h->off};
    uint64_t v;
    if (read_be(&ix, h->off, &v, "index entry")) return -1;
    if (h->has_cache) v >>= 1;
    if (v != sp->end - h->data)
        return err_set("boc: index entry %llu says cell ends at %llu, it ends at %zu", (unsigned long long)i,
                       (unsigned long long)v, sp->end - h->data);
    return 0;
}

/* Second pass: cell i from its span; its children (later cells) are already built. */
static cell *build_cell(const reader *r, const boc_head *h, uint64_t i, const cell_span *sp, cell **built) {
    cell_builder b;
    uint8_t d1 = r->p[sp->pos], d2 = r->p[sp->pos + 1];
    unsigned nbytes = (d2 + 1u) / 2u, bits = nbytes * 8;
    if (d2 & 1) {
        uint8_t last = r->p[sp->data + nbytes - 1];
        unsigned tz = 0;
        while (!((last >> tz) & 1u)) tz++;
        bits -= tz + 1;
    }
    cell_build_init(&b);
    cell_store_bits(&b, r->p + sp->data, bits);
    reader refs = {r->p, sp->end, sp->refs};
    for (unsigned k = 0; k < (d1 & 7u); k++) {
        uint64_t ref;
        read_be(&refs, h->size, &ref, "cell reference"); /* scan_cell checked it */
        cell_store_ref(&b, built[ref]);
    }
    cell *c = cell_finish(&b);
    if (!c) {
        err_prefix("boc: cell %llu at offset %zu", (unsigned long long)i, sp->pos);
        return NULL;
    }
    if (d1 & 16) {
        const uint8_t *stored = r->p + sp->pos + 2;
        unsigned depth = (unsigned)stored[32] << 8 | stored[33];
        if (memcmp(stored, cell_hash(c), 32) != 0 || depth != cell_depth(c)) {
            err_set("boc: cell %llu at offset %zu stores a hash or depth that is not its own", (unsigned long long)i, sp->pos);
            cell_unref(c);
            return NULL;
        }
    }
    return c;
}

cell *boc_parse(const uint8_t *data, size_t len) {
    reader r = {data, len, 0};
    boc_head h;
    cell_span *spans = NULL;
    cell **built = NULL, *root = NULL;
    if (parse_head(&r, &h)) goto done;
    spans = malloc((size_t)h.cells * sizeof *spans);
    built = calloc((size_t)h.cells, sizeof *built);
    if (!spans || !built) {
        err_set("boc: out of memory for %llu cells", (unsigned long long)h.cells);
        goto done;
    }
    r.pos = h.data;
    for (uint64_t i = 0; i < h.cells; i++) {
        if (scan_cell(&r, &h, i, &spans[i])) goto done;
        if (h.has_idx && check_index(&r, &h, i, &spans[i])) goto done;
    }
    if (r.pos != r.len) {
        err_set("boc: cells end at offset %zu but the cell data runs to %zu", r.pos, r.len);
        goto done;
    }
    for (uint64_t i = h.cells; i-- > 0;)
        if (!(built[i] = build_cell(&r, &h, i, &spans[i], built))) goto done;
    root = cell_ref(built[h.root]);
done:
    if (built)
        for (uint64_t i = 0; i < h.cells; i++) cell_unref(built[i]);
    free(built);
    free(spans);
    return root;
}
