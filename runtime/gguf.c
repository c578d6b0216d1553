#include "gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor_types.h"

/* magic + version + n_tensors + n_kv */
#define BN_GGUF_HEADER_BYTES 24u
/* The least a key/value pair can take: key length, one key byte (empty keys
 * are rejected), value type, one value byte (uint8/int8/bool). Bounding n_kv
 * by this keeps the kv table proportional to the file size. */
#define BN_GGUF_MIN_KV_BYTES (8u + 1u + 4u + 1u)
/* The least a tensor info can take: name length, one name byte, n_dims, one
 * dimension, type, offset. */
#define BN_GGUF_MIN_TENSOR_BYTES (8u + 1u + 4u + 8u + 4u + 8u)
/* How much of a name taken from the file goes into a message. */
#define BN_GGUF_QUOTE_MAX 64u

struct bn_gguf {
    const uint8_t *buf;
    uint64_t size;
    void *map; /* NULL for open_memory */
    size_t map_size;
    uint32_t version;
    uint32_t alignment;
    uint64_t data_offset;
    int64_t n_kv;
    int64_t n_tensors;
    struct bn_gguf_kv *kvs;
    struct bn_gguf_tensor *tensors;
    /* Pointers into kvs / tensors sorted by name: lookups are binary searches,
     * and duplicates end up adjacent. */
    const struct bn_gguf_kv **kv_index;
    const struct bn_gguf_tensor **tensor_index;
    char name[]; /* path or name given at open */
};

/* Parser state: a cursor over the buffer plus what is being read, so that
 * every message can say where the problem is ("key 3 ('general.name')"). */
struct bn_gguf_rd {
    const uint8_t *buf;
    uint64_t size;
    uint64_t pos;
    const char *name;
    char where[128];
    char *err;
    size_t errlen;
};

/* Sizes of the scalar value types; 0 for string and array. */
static const uint8_t bn_gguf_scalar_size[BN_GGUF_TYPE_COUNT] = {
    [BN_GGUF_UINT8] = 1,  [BN_GGUF_INT8] = 1,    [BN_GGUF_UINT16] = 2,  [BN_GGUF_INT16] = 2,
    [BN_GGUF_UINT32] = 4, [BN_GGUF_INT32] = 4,   [BN_GGUF_FLOAT32] = 4, [BN_GGUF_BOOL] = 1,
    [BN_GGUF_STRING] = 0, [BN_GGUF_ARRAY] = 0,   [BN_GGUF_UINT64] = 8,  [BN_GGUF_INT64] = 8,
    [BN_GGUF_FLOAT64] = 8,
};

static const char *const bn_gguf_type_names[BN_GGUF_TYPE_COUNT] = {
    [BN_GGUF_UINT8] = "uint8",     [BN_GGUF_INT8] = "int8",       [BN_GGUF_UINT16] = "uint16",
    [BN_GGUF_INT16] = "int16",     [BN_GGUF_UINT32] = "uint32",   [BN_GGUF_INT32] = "int32",
    [BN_GGUF_FLOAT32] = "float32", [BN_GGUF_BOOL] = "bool",       [BN_GGUF_STRING] = "string",
    [BN_GGUF_ARRAY] = "array",     [BN_GGUF_UINT64] = "uint64",   [BN_GGUF_INT64] = "int64",
    [BN_GGUF_FLOAT64] = "float64",
};

const char *bn_gguf_type_name(uint32_t type)
{
    return type < BN_GGUF_TYPE_COUNT ? bn_gguf_type_names[type] : "unknown";
}

/* Byte-wise little-endian loads: no alignment assumption, no host-endian
 * assumption. */
static uint32_t bn_gguf_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t bn_gguf_le64(const uint8_t *p)
{
    return (uint64_t)bn_gguf_le32(p) | (uint64_t)bn_gguf_le32(p + 4) << 32;
}

/* Copies at most BN_GGUF_QUOTE_MAX bytes of a file string into dst for a
 * message; anything outside printable ASCII becomes '?', so a hostile name
 * cannot inject newlines or terminal escapes. */
static void bn_gguf_quote(char *dst, size_t dstlen, const char *s, uint64_t len)
{
    size_t n = 0;
    uint64_t i;
    for (i = 0; i < len && i < BN_GGUF_QUOTE_MAX && n + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[n++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (i < len && n + 3 < dstlen) {
        memcpy(dst + n, "...", 3);
        n += 3;
    }
    dst[n] = '\0';
}

/* ---- parser primitives ------------------------------------------------- */

static enum bn_status bn_gguf_fail(struct bn_gguf_rd *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static enum bn_status bn_gguf_fail(struct bn_gguf_rd *r, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (r->where[0])
        return bn_errf(r->err, r->errlen, BN_ERR_MODEL, "%s: %s: %s", r->name, r->where, msg);
    return bn_errf(r->err, r->errlen, BN_ERR_MODEL, "%s: %s", r->name, msg);
}

static enum bn_status bn_gguf_nomem(struct bn_gguf_rd *r, const char *what, uint64_t bytes)
{
    return bn_errf(r->err, r->errlen, BN_ERR_NOMEM, "%s: out of memory (%" PRIu64 " bytes for %s)",
                   r->name, bytes, what);
}

static uint64_t bn_gguf_left(const struct bn_gguf_rd *r)
{
    return r->size - r->pos;
}

static enum bn_status bn_gguf_need(struct bn_gguf_rd *r, uint64_t n, const char *what)
{
    if (n > bn_gguf_left(r))
        return bn_gguf_fail(r, "truncated: %s ends past the end of the file (%" PRIu64 " bytes)", what,
                            r->size);
    return BN_OK;
}

static enum bn_status bn_gguf_rd_u32(struct bn_gguf_rd *r, const char *what, uint32_t *v)
{
    enum bn_status st = bn_gguf_need(r, 4, what);
    if (st != BN_OK) return st;
    *v = bn_gguf_le32(r->buf + r->pos);
    r->pos += 4;
    return BN_OK;
}

static enum bn_status bn_gguf_rd_u64(struct bn_gguf_rd *r, const char *what, uint64_t *v)
{
    enum bn_status st = bn_gguf_need(r, 8, what);
    if (st != BN_OK) return st;
    *v = bn_gguf_le64(r->buf + r->pos);
    r->pos += 8;
    return BN_OK;
}

/* A GGUF string: uint64 length, then that many bytes (no terminator). */
static enum bn_status bn_gguf_rd_str(struct bn_gguf_rd *r, const char *what, struct bn_gguf_str *s)
{
    uint64_t len;
    enum bn_status st = bn_gguf_rd_u64(r, what, &len);
    if (st != BN_OK) return st;
    if (len > bn_gguf_left(r))
        return bn_gguf_fail(r, "%s length %" PRIu64 " runs past the end of the file (%" PRIu64 " bytes)",
                            what, len, r->size);
    s->data = (const char *)r->buf + r->pos;
    s->len = len;
    r->pos += len;
    return BN_OK;
}

/* ---- sorted name index ------------------------------------------------- */

/* Order by length, then bytes: cheaper than lexical order and enough for
 * binary search and for finding duplicates. */
static int bn_gguf_str_cmp(struct bn_gguf_str a, const char *b, uint64_t blen)
{
    if (a.len != blen) return a.len < blen ? -1 : 1;
    if (a.len == 0) return 0;
    return memcmp(a.data, b, (size_t)a.len);
}

/* Ties broken by address, so equal names sort in file order and a duplicate
 * message can name the earlier entry first. */
static int bn_gguf_kv_ptr_cmp(const void *pa, const void *pb)
{
    const struct bn_gguf_kv *a = *(const struct bn_gguf_kv *const *)pa;
    const struct bn_gguf_kv *b = *(const struct bn_gguf_kv *const *)pb;
    int c = bn_gguf_str_cmp(a->key, b->key.data, b->key.len);
    if (c != 0) return c;
    return (a > b) - (a < b);
}

static int bn_gguf_tensor_ptr_cmp(const void *pa, const void *pb)
{
    const struct bn_gguf_tensor *a = *(const struct bn_gguf_tensor *const *)pa;
    const struct bn_gguf_tensor *b = *(const struct bn_gguf_tensor *const *)pb;
    int c = bn_gguf_str_cmp(a->name, b->name.data, b->name.len);
    if (c != 0) return c;
    return (a > b) - (a < b);
}

static enum bn_status bn_gguf_index_kvs(bn_gguf *g, struct bn_gguf_rd *r)
{
    if (g->n_kv == 0) return BN_OK;
    uint64_t n = (uint64_t)g->n_kv;
    g->kv_index = calloc((size_t)n, sizeof *g->kv_index);
    if (!g->kv_index) return bn_gguf_nomem(r, "the key index", n * sizeof *g->kv_index);
    for (uint64_t i = 0; i < n; i++) g->kv_index[i] = &g->kvs[i];
    qsort(g->kv_index, (size_t)n, sizeof *g->kv_index, bn_gguf_kv_ptr_cmp);
    for (uint64_t i = 1; i < n; i++) {
        const struct bn_gguf_kv *a = g->kv_index[i - 1], *b = g->kv_index[i];
        if (bn_gguf_str_cmp(a->key, b->key.data, b->key.len) == 0) {
            char q[BN_GGUF_QUOTE_MAX + 4];
            bn_gguf_quote(q, sizeof q, b->key.data, b->key.len);
            r->where[0] = '\0';
            return bn_gguf_fail(r, "duplicate key '%s' (keys %td and %td)", q, a - g->kvs, b - g->kvs);
        }
    }
    return BN_OK;
}

static enum bn_status bn_gguf_index_tensors(bn_gguf *g, struct bn_gguf_rd *r)
{
    if (g->n_tensors == 0) return BN_OK;
    uint64_t n = (uint64_t)g->n_tensors;
    g->tensor_index = calloc((size_t)n, sizeof *g->tensor_index);
    if (!g->tensor_index) return bn_gguf_nomem(r, "the tensor index", n * sizeof *g->tensor_index);
    for (uint64_t i = 0; i < n; i++) g->tensor_index[i] = &g->tensors[i];
    qsort(g->tensor_index, (size_t)n, sizeof *g->tensor_index, bn_gguf_tensor_ptr_cmp);
    for (uint64_t i = 1; i < n; i++) {
        const struct bn_gguf_tensor *a = g->tensor_index[i - 1], *b = g->tensor_index[i];
        if (bn_gguf_str_cmp(a->name, b->name.data, b->name.len) == 0) {
            char q[BN_GGUF_QUOTE_MAX + 4];
            bn_gguf_quote(q, sizeof q, b->name.data, b->name.len);
            r->where[0] = '\0';
            return bn_gguf_fail(r, "duplicate tensor name '%s' (tensors %td and %td)", q, a - g->tensors,
                                b - g->tensors);
        }
    }
    return BN_OK;
}

/* ---- header, key/value pairs, tensor infos ----------------------------- */

static enum bn_status bn_gguf_read_header(bn_gguf *g, struct bn_gguf_rd *r, uint64_t *n_tensors,
                                          uint64_t *n_kv)
{
    if (r->size == 0) return bn_gguf_fail(r, "empty file (0 bytes), expected a GGUF file");
    if (r->size < 4)
        return bn_gguf_fail(r, "not a GGUF file (%" PRIu64 " bytes, too small to hold the magic)", r->size);
    if (memcmp(r->buf, "GGUF", 4) != 0) {
        char q[8];
        bn_gguf_quote(q, sizeof q, (const char *)r->buf, 4);
        return bn_gguf_fail(r, "not a GGUF file (magic '%s', expected 'GGUF')", q);
    }
    r->pos = 4;
    if (r->size < BN_GGUF_HEADER_BYTES)
        return bn_gguf_fail(r, "truncated: the %u-byte header ends past the end of the file (%" PRIu64 " bytes)",
                            BN_GGUF_HEADER_BYTES, r->size);
    uint32_t version;
    enum bn_status st = bn_gguf_rd_u32(r, "version", &version);
    if (st != BN_OK) return st;
    if (version != 2 && version != 3) {
        /* A big-endian GGUF has its version byte-swapped; say so. */
        uint32_t swapped = (version >> 24) | ((version >> 8) & 0xff00u) | ((version << 8) & 0xff0000u) |
                           (version << 24);
        return bn_gguf_fail(r, "unsupported GGUF version %" PRIu32 " (expected 2 or 3)%s", version,
                            (swapped == 2 || swapped == 3) ? "; a big-endian file?" : "");
    }
    g->version = version;
    if ((st = bn_gguf_rd_u64(r, "n_tensors", n_tensors)) != BN_OK) return st;
    if ((st = bn_gguf_rd_u64(r, "n_kv", n_kv)) != BN_OK) return st;

    /* Bound both counts by what the rest of the file could hold before
     * allocating anything proportional to them. */
    uint64_t left = bn_gguf_left(r);
    if (*n_kv > left / BN_GGUF_MIN_KV_BYTES)
        return bn_gguf_fail(r, "n_kv %" PRIu64 " is more than the file could hold (%" PRIu64
                               " bytes; each key/value pair takes at least %u)",
                            *n_kv, r->size, BN_GGUF_MIN_KV_BYTES);
    left -= *n_kv * BN_GGUF_MIN_KV_BYTES;
    if (*n_tensors > left / BN_GGUF_MIN_TENSOR_BYTES)
        return bn_gguf_fail(r, "n_tensors %" PRIu64 " is more than the file could hold (%" PRIu64
                               " bytes; each tensor info takes at least %u)",
                            *n_tensors, r->size, BN_GGUF_MIN_TENSOR_BYTES);
    return BN_OK;
}

/* Array value: element type, count, elements. Arrays of arrays are refused,
 * so reading never recurses on file data. */
static enum bn_status bn_gguf_read_array(struct bn_gguf_rd *r, struct bn_gguf_kv *kv)
{
    enum bn_status st = bn_gguf_rd_u32(r, "array element type", &kv->arr_type);
    if (st != BN_OK) return st;
    if (kv->arr_type == BN_GGUF_ARRAY) return bn_gguf_fail(r, "arrays of arrays are not supported");
    if (kv->arr_type >= BN_GGUF_TYPE_COUNT)
        return bn_gguf_fail(r, "unknown array element type %" PRIu32 " (expected 0..%d)", kv->arr_type,
                            BN_GGUF_TYPE_COUNT - 1);
    if ((st = bn_gguf_rd_u64(r, "array length", &kv->arr_n)) != BN_OK) return st;
    kv->value = r->buf + r->pos;

    if (kv->arr_type != BN_GGUF_STRING) {
        uint64_t esize = bn_gguf_scalar_size[kv->arr_type];
        if (kv->arr_n > bn_gguf_left(r) / esize)
            return bn_gguf_fail(r, "array of %" PRIu64 " %s runs past the end of the file (%" PRIu64 " bytes)",
                                kv->arr_n, bn_gguf_type_name(kv->arr_type), r->size);
        r->pos += kv->arr_n * esize;
        return BN_OK;
    }

    /* Each string takes at least its 8-byte length, which bounds the index
     * allocation by twice the bytes left. */
    if (kv->arr_n > bn_gguf_left(r) / 8)
        return bn_gguf_fail(r, "array of %" PRIu64 " strings runs past the end of the file (%" PRIu64 " bytes)",
                            kv->arr_n, r->size);
    if (kv->arr_n == 0) return BN_OK;
    struct bn_gguf_str *strs = calloc((size_t)kv->arr_n, sizeof *strs);
    if (!strs) return bn_gguf_nomem(r, "a string array", kv->arr_n * sizeof *strs);
    kv->arr_str = strs;
    for (uint64_t i = 0; i < kv->arr_n; i++) {
        if (bn_gguf_left(r) < 8)
            return bn_gguf_fail(r, "truncated: array element %" PRIu64 " ends past the end of the file (%" PRIu64
                                   " bytes)",
                                i, r->size);
        uint64_t len = bn_gguf_le64(r->buf + r->pos);
        r->pos += 8;
        if (len > bn_gguf_left(r))
            return bn_gguf_fail(r, "array element %" PRIu64 ": string length %" PRIu64
                                   " runs past the end of the file (%" PRIu64 " bytes)",
                                i, len, r->size);
        strs[i].data = (const char *)r->buf + r->pos;
        strs[i].len = len;
        r->pos += len;
    }
    return BN_OK;
}

static enum bn_status bn_gguf_read_kv(struct bn_gguf_rd *r, int64_t i, struct bn_gguf_kv *kv)
{
    snprintf(r->where, sizeof r->where, "key %" PRId64, i);
    enum bn_status st = bn_gguf_rd_str(r, "key", &kv->key);
    if (st != BN_OK) return st;
    if (kv->key.len == 0) return bn_gguf_fail(r, "empty key");
    char q[BN_GGUF_QUOTE_MAX + 4];
    bn_gguf_quote(q, sizeof q, kv->key.data, kv->key.len);
    snprintf(r->where, sizeof r->where, "key %" PRId64 " ('%s')", i, q);

    if ((st = bn_gguf_rd_u32(r, "value type", &kv->type)) != BN_OK) return st;
    if (kv->type >= BN_GGUF_TYPE_COUNT)
        return bn_gguf_fail(r, "unknown value type %" PRIu32 " (expected 0..%d)", kv->type,
                            BN_GGUF_TYPE_COUNT - 1);
    if (kv->type == BN_GGUF_ARRAY) return bn_gguf_read_array(r, kv);
    if (kv->type == BN_GGUF_STRING) {
        if ((st = bn_gguf_rd_str(r, "string", &kv->str)) != BN_OK) return st;
        kv->value = (const uint8_t *)kv->str.data;
        return BN_OK;
    }
    uint64_t size = bn_gguf_scalar_size[kv->type];
    if ((st = bn_gguf_need(r, size, "value")) != BN_OK) return st;
    kv->value = r->buf + r->pos;
    r->pos += size;
    return BN_OK;
}

static void bn_gguf_format_ne(char *dst, size_t len, const struct bn_gguf_tensor *t)
{
    size_t n = 0;
    for (uint32_t d = 0; d < t->n_dims && n < len; d++) {
        int w = snprintf(dst + n, len - n, "%s%" PRIu64, d ? ", " : "[", t->ne[d]);
        if (w < 0) break;
        n += (size_t)w;
    }
    if (n < len) snprintf(dst + n, len - n, "]");
}

/* Shape and type: every dimension positive, the element count fits int64
 * (callers multiply dims freely), and the byte size fits 64 bits. */
static enum bn_status bn_gguf_check_shape(struct bn_gguf_rd *r, struct bn_gguf_tensor *t)
{
    char ne[128];
    uint64_t elems = 1;
    bn_gguf_format_ne(ne, sizeof ne, t);
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (t->ne[d] == 0)
            return bn_gguf_fail(r, "dimension %" PRIu32 " (ne[%" PRIu32 "]) is 0, expected >= 1 (ne = %s)", d, d, ne);
        if (elems > (uint64_t)INT64_MAX / t->ne[d])
            return bn_gguf_fail(r, "element count overflows (ne = %s)", ne);
        elems *= t->ne[d];
    }
    const struct bn_type_traits *tr = bn_type_traits(t->type);
    if (!tr) return bn_gguf_fail(r, "unknown type id %" PRIu32, t->type);
    if (!bn_type_tensor_bytes(t->type, t->ne, t->n_dims, &t->nbytes)) {
        if (t->ne[0] % tr->block != 0)
            return bn_gguf_fail(r, "row length ne[0] = %" PRIu64 " is not a multiple of the %s block size %" PRIu32,
                                t->ne[0], tr->name, tr->block);
        return bn_gguf_fail(r, "size in bytes of %s %s overflows 64 bits", tr->name, ne);
    }
    return BN_OK;
}

static enum bn_status bn_gguf_read_tensor(struct bn_gguf_rd *r, int64_t i, uint32_t alignment,
                                          struct bn_gguf_tensor *t)
{
    snprintf(r->where, sizeof r->where, "tensor %" PRId64, i);
    enum bn_status st = bn_gguf_rd_str(r, "name", &t->name);
    if (st != BN_OK) return st;
    if (t->name.len == 0) return bn_gguf_fail(r, "empty name");
    char q[BN_GGUF_QUOTE_MAX + 4];
    bn_gguf_quote(q, sizeof q, t->name.data, t->name.len);
    snprintf(r->where, sizeof r->where, "tensor '%s'", q);

    if ((st = bn_gguf_rd_u32(r, "n_dims", &t->n_dims)) != BN_OK) return st;
    if (t->n_dims == 0 || t->n_dims > BN_GGUF_MAX_DIMS)
        return bn_gguf_fail(r, "n_dims %" PRIu32 " (expected 1..%d)", t->n_dims, BN_GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < BN_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++)
        if ((st = bn_gguf_rd_u64(r, "dimensions", &t->ne[d])) != BN_OK) return st;
    if ((st = bn_gguf_rd_u32(r, "type", &t->type)) != BN_OK) return st;
    if ((st = bn_gguf_rd_u64(r, "offset", &t->offset)) != BN_OK) return st;
    if ((st = bn_gguf_check_shape(r, t)) != BN_OK) return st;
    if (t->offset % alignment != 0)
        return bn_gguf_fail(r, "offset %" PRIu64 " is not a multiple of the alignment %" PRIu32, t->offset,
                            alignment);
    return BN_OK;
}

/* Looks up general.alignment through the typed getter, so a wrong type gets
 * the same message as any other key. */
static enum bn_status bn_gguf_read_alignment(bn_gguf *g, struct bn_gguf_rd *r)
{
    uint32_t align = BN_GGUF_DEFAULT_ALIGNMENT;
    enum bn_status st = bn_gguf_get_u32_opt(g, "general.alignment", &align, NULL, r->err, r->errlen);
    if (st != BN_OK) return st;
    if (align == 0 || (align & (align - 1)) != 0) {
        r->where[0] = '\0';
        return bn_gguf_fail(r, "key 'general.alignment' is %" PRIu32 ", expected a nonzero power of two", align);
    }
    g->alignment = align;
    return BN_OK;
}

/* The data section starts at the end of the tensor table rounded up to the
 * alignment; each tensor's range must lie inside the file. */
static enum bn_status bn_gguf_place_data(bn_gguf *g, struct bn_gguf_rd *r)
{
    uint64_t rem = r->pos % g->alignment;
    uint64_t pad = rem ? g->alignment - rem : 0;
    if (r->pos > UINT64_MAX - pad) {
        r->where[0] = '\0';
        return bn_gguf_fail(r, "data section offset overflows");
    }
    g->data_offset = r->pos + pad;
    for (int64_t i = 0; i < g->n_tensors; i++) {
        struct bn_gguf_tensor *t = &g->tensors[i];
        if (g->data_offset > g->size || t->offset > g->size - g->data_offset ||
            t->nbytes > g->size - g->data_offset - t->offset) {
            char q[BN_GGUF_QUOTE_MAX + 4];
            bn_gguf_quote(q, sizeof q, t->name.data, t->name.len);
            snprintf(r->where, sizeof r->where, "tensor '%s'", q);
            return bn_gguf_fail(r, "offset %" PRIu64 " + %" PRIu64 " bytes runs past the end of the file (%" PRIu64
                                   " bytes; data section at %" PRIu64 ")",
                                t->offset, t->nbytes, g->size, g->data_offset);
        }
        t->data = g->buf + g->data_offset + t->offset;
    }
    return BN_OK;
}

static enum bn_status bn_gguf_parse(bn_gguf *g, char *err, size_t errlen)
{
    struct bn_gguf_rd r = {.buf = g->buf, .size = g->size, .name = g->name, .err = err, .errlen = errlen};
    uint64_t n_tensors, n_kv;
    enum bn_status st = bn_gguf_read_header(g, &r, &n_tensors, &n_kv);
    if (st != BN_OK) return st;

    /* The header check bounded both counts by the file size, so these
     * allocations are too (and the products cannot overflow). */
    if (n_kv > 0) {
        g->kvs = calloc((size_t)n_kv, sizeof *g->kvs);
        if (!g->kvs) return bn_gguf_nomem(&r, "the key table", n_kv * sizeof *g->kvs);
    }
    g->n_kv = (int64_t)n_kv;
    for (int64_t i = 0; i < g->n_kv; i++)
        if ((st = bn_gguf_read_kv(&r, i, &g->kvs[i])) != BN_OK) return st;
    r.where[0] = '\0';
    if ((st = bn_gguf_index_kvs(g, &r)) != BN_OK) return st;
    if ((st = bn_gguf_read_alignment(g, &r)) != BN_OK) return st;

    if (n_tensors > 0) {
        g->tensors = calloc((size_t)n_tensors, sizeof *g->tensors);
        if (!g->tensors) return bn_gguf_nomem(&r, "the tensor table", n_tensors * sizeof *g->tensors);
    }
    g->n_tensors = (int64_t)n_tensors;
    for (int64_t i = 0; i < g->n_tensors; i++)
        if ((st = bn_gguf_read_tensor(&r, i, g->alignment, &g->tensors[i])) != BN_OK) return st;
    r.where[0] = '\0';
    if ((st = bn_gguf_index_tensors(g, &r)) != BN_OK) return st;
    return bn_gguf_place_data(g, &r);
}

/* ---- open / close ------------------------------------------------------ */

static bn_gguf *bn_gguf_alloc(const char *name)
{
    size_t len = strlen(name);
    bn_gguf *g = calloc(1, sizeof *g + len + 1);
    if (g) memcpy(g->name, name, len + 1);
    return g;
}

static enum bn_status bn_gguf_finish_open(bn_gguf *g, bn_gguf **out, char *err, size_t errlen)
{
    enum bn_status st = bn_gguf_parse(g, err, errlen);
    if (st != BN_OK) {
        bn_gguf_close(g);
        return st;
    }
    *out = g;
    return BN_OK;
}

enum bn_status bn_gguf_open_memory(const void *data, size_t size, const char *name, bn_gguf **out, char *err,
                                   size_t errlen)
{
    if (!name) name = "<memory>";
    if (!out) return bn_errf(err, errlen, BN_ERR_USAGE, "%s: bn_gguf_open_memory: out is NULL", name);
    *out = NULL;
    if (!data && size > 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "%s: bn_gguf_open_memory: data is NULL", name);
    bn_gguf *g = bn_gguf_alloc(name);
    if (!g) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", name);
    g->buf = data;
    g->size = size;
    return bn_gguf_finish_open(g, out, err, errlen);
}

enum bn_status bn_gguf_open(const char *path, bn_gguf **out, char *err, size_t errlen)
{
    if (!out) return bn_errf(err, errlen, BN_ERR_USAGE, "bn_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return bn_errf(err, errlen, BN_ERR_USAGE, "bn_gguf_open: path is NULL");

    /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is then
     * refused below as not a regular file. No effect on a regular file. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return bn_errf(err, errlen, BN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return bn_errf(err, errlen, BN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return bn_errf(err, errlen, BN_ERR_IO, "%s: not a regular file", path);
    }
    /* mmap of length 0 fails (EINVAL); report an empty file as a bad model
     * instead, like any other file too small to be GGUF. */
    if (sb.st_size < (off_t)BN_GGUF_HEADER_BYTES) {
        close(fd);
        return bn_errf(err, errlen, BN_ERR_MODEL,
                       "%s: %s (%lld bytes), expected a GGUF file of at least %u bytes", path,
                       sb.st_size == 0 ? "empty file" : "truncated: too small", (long long)sb.st_size,
                       BN_GGUF_HEADER_BYTES);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX) {
        close(fd);
        return bn_errf(err, errlen, BN_ERR_IO, "%s: file too large to map (%lld bytes)", path,
                       (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd); /* the mapping keeps the file referenced */
    if (map == MAP_FAILED) return bn_errf(err, errlen, BN_ERR_IO, "%s: cannot mmap: %s", path, strerror(e));

    bn_gguf *g = bn_gguf_alloc(path);
    if (!g) {
        munmap(map, size);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", path);
    }
    g->map = map;
    g->map_size = size;
    g->buf = map;
    g->size = size;
    return bn_gguf_finish_open(g, out, err, errlen);
}

void bn_gguf_close(bn_gguf *g)
{
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) free((void *)g->kvs[i].arr_str);
    free(g->kvs);
    free(g->tensors);
    free(g->kv_index);
    free(g->tensor_index);
    if (g->map) munmap(g->map, g->map_size);
    free(g);
}

/* ---- accessors --------------------------------------------------------- */

const char *bn_gguf_name(const bn_gguf *g) { return g->name; }
uint32_t bn_gguf_version(const bn_gguf *g) { return g->version; }
uint64_t bn_gguf_file_size(const bn_gguf *g) { return g->size; }
uint32_t bn_gguf_alignment(const bn_gguf *g) { return g->alignment; }
uint64_t bn_gguf_data_offset(const bn_gguf *g) { return g->data_offset; }
int64_t bn_gguf_n_kv(const bn_gguf *g) { return g->n_kv; }
int64_t bn_gguf_n_tensors(const bn_gguf *g) { return g->n_tensors; }

const struct bn_gguf_kv *bn_gguf_kv_at(const bn_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_kv) ? &g->kvs[i] : NULL;
}

const struct bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int64_t i)
{
    return (i >= 0 && i < g->n_tensors) ? &g->tensors[i] : NULL;
}

bool bn_gguf_str_eq(struct bn_gguf_str s, const char *cstr)
{
    if (!cstr) return false;
    size_t n = strlen(cstr);
    return s.len == n && (n == 0 || memcmp(s.data, cstr, n) == 0);
}

int64_t bn_gguf_find_kv(const bn_gguf *g, const char *key)
{
    if (!g || !key) return -1;
    uint64_t klen = strlen(key);
    size_t lo = 0, hi = (size_t)g->n_kv;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bn_gguf_str_cmp(g->kv_index[mid]->key, key, klen);
        if (c == 0) return g->kv_index[mid] - g->kvs;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

int64_t bn_gguf_find_tensor(const bn_gguf *g, const char *name)
{
    if (!g || !name) return -1;
    uint64_t nlen = strlen(name);
    size_t lo = 0, hi = (size_t)g->n_tensors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = bn_gguf_str_cmp(g->tensor_index[mid]->name, name, nlen);
        if (c == 0) return g->tensor_index[mid] - g->tensors;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

/* ---- typed getters ----------------------------------------------------- */

/* Finds key for a getter. Returns BN_OK with *kv NULL when absent and
 * optional; a missing required key is an error. */
static enum bn_status bn_gguf_lookup(const bn_gguf *g, const char *key, bool required,
                                     const struct bn_gguf_kv **kv, bool *found, char *err, size_t errlen)
{
    *kv = NULL;
    if (found) *found = false;
    if (!g || !key) return bn_errf(err, errlen, BN_ERR_USAGE, "bn_gguf getter: NULL file or key");
    int64_t i = bn_gguf_find_kv(g, key);
    if (i < 0) {
        if (required) return bn_errf(err, errlen, BN_ERR_MODEL, "%s: missing key '%s'", g->name, key);
        return BN_OK;
    }
    *kv = &g->kvs[i];
    return BN_OK;
}

static enum bn_status bn_gguf_wrong_type(const bn_gguf *g, const char *key, const struct bn_gguf_kv *kv,
                                         const char *expected, char *err, size_t errlen)
{
    if (kv->type == BN_GGUF_ARRAY)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' has type array of %s, expected %s", g->name, key,
                       bn_gguf_type_name(kv->arr_type), expected);
    return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' has type %s, expected %s", g->name, key,
                   bn_gguf_type_name(kv->type), expected);
}

/* An integer value of any width as sign and magnitude, so range checks need
 * no implementation-defined signed conversions. */
struct bn_gguf_int {
    bool neg;
    uint64_t mag;
};

/* False when kv is not an integer type. */
static bool bn_gguf_int_value(const struct bn_gguf_kv *kv, struct bn_gguf_int *v)
{
    const uint8_t *p = kv->value;
    uint64_t u;
    unsigned bits;
    bool is_signed = false;
    switch (kv->type) {
    case BN_GGUF_INT8: is_signed = true; /* fall through */
    case BN_GGUF_UINT8: u = p[0], bits = 8; break;
    case BN_GGUF_INT16: is_signed = true; /* fall through */
    case BN_GGUF_UINT16: u = (uint64_t)p[0] | (uint64_t)p[1] << 8, bits = 16; break;
    case BN_GGUF_INT32: is_signed = true; /* fall through */
    case BN_GGUF_UINT32: u = bn_gguf_le32(p), bits = 32; break;
    case BN_GGUF_INT64: is_signed = true; /* fall through */
    case BN_GGUF_UINT64: u = bn_gguf_le64(p), bits = 64; break;
    default: return false;
    }
    v->neg = is_signed && ((u >> (bits - 1)) & 1);
    if (v->neg && bits < 64) u |= ~(uint64_t)0 << bits; /* sign-extend */
    v->mag = v->neg ? 0 - u : u;                         /* two's complement magnitude */
    return true;
}

/* Fetches an integer key into *v and checks it lies in [-neg_max, pos_max].
 * Returns BN_OK with *found false when optional and absent. */
static enum bn_status bn_gguf_get_int(const bn_gguf *g, const char *key, bool required, uint64_t neg_max,
                                      uint64_t pos_max, const char *tname, struct bn_gguf_int *v, bool *found,
                                      char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv;
    enum bn_status st = bn_gguf_lookup(g, key, required, &kv, found, err, errlen);
    if (st != BN_OK || !kv) return st;
    if (!bn_gguf_int_value(kv, v)) return bn_gguf_wrong_type(g, key, kv, tname, err, errlen);
    if (v->mag > (v->neg ? neg_max : pos_max))
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' value %s%" PRIu64 " (%s) is out of range of %s",
                       g->name, key, v->neg ? "-" : "", v->mag, bn_gguf_type_name(kv->type), tname);
    if (found) *found = true;
    return BN_OK;
}

static enum bn_status bn_gguf_u32(const bn_gguf *g, const char *key, bool required, uint32_t *out, bool *found,
                                  char *err, size_t errlen)
{
    struct bn_gguf_int v = {false, 0};
    bool f = false;
    enum bn_status st = bn_gguf_get_int(g, key, required, 0, UINT32_MAX, "uint32", &v, &f, err, errlen);
    if (found) *found = f;
    if (st == BN_OK && f) *out = (uint32_t)v.mag;
    return st;
}

enum bn_status bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen)
{
    return bn_gguf_u32(g, key, true, out, NULL, err, errlen);
}

enum bn_status bn_gguf_get_u32_opt(const bn_gguf *g, const char *key, uint32_t *out, bool *found, char *err,
                                   size_t errlen)
{
    return bn_gguf_u32(g, key, false, out, found, err, errlen);
}

enum bn_status bn_gguf_get_i32_opt(const bn_gguf *g, const char *key, int32_t *out, bool *found, char *err,
                                   size_t errlen)
{
    struct bn_gguf_int v = {false, 0};
    bool f = false;
    enum bn_status st =
        bn_gguf_get_int(g, key, false, (uint64_t)INT32_MAX + 1, INT32_MAX, "int32", &v, &f, err, errlen);
    if (found) *found = f;
    if (st == BN_OK && f) *out = (int32_t)(v.neg ? -(int64_t)v.mag : (int64_t)v.mag);
    return st;
}

static enum bn_status bn_gguf_f32(const bn_gguf *g, const char *key, bool required, float *out, bool *found,
                                  char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv;
    enum bn_status st = bn_gguf_lookup(g, key, required, &kv, found, err, errlen);
    if (st != BN_OK || !kv) return st;
    if (kv->type == BN_GGUF_FLOAT32) {
        uint32_t u = bn_gguf_le32(kv->value);
        memcpy(out, &u, sizeof *out);
    } else if (kv->type == BN_GGUF_FLOAT64) {
        uint64_t u = bn_gguf_le64(kv->value);
        double d;
        memcpy(&d, &u, sizeof d);
        /* Converting a finite double beyond float range is undefined
         * (d - d == 0 holds for finite d only). */
        if (d - d == 0 && (d > FLT_MAX || d < -FLT_MAX))
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: key '%s' value %g (float64) is out of range of float32",
                           g->name, key, d);
        *out = (float)d;
    } else {
        return bn_gguf_wrong_type(g, key, kv, "float32", err, errlen);
    }
    if (found) *found = true;
    return BN_OK;
}

enum bn_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out, char *err, size_t errlen)
{
    return bn_gguf_f32(g, key, true, out, NULL, err, errlen);
}

enum bn_status bn_gguf_get_f32_opt(const bn_gguf *g, const char *key, float *out, bool *found, char *err,
                                   size_t errlen)
{
    return bn_gguf_f32(g, key, false, out, found, err, errlen);
}

enum bn_status bn_gguf_get_bool_opt(const bn_gguf *g, const char *key, bool *out, bool *found, char *err,
                                    size_t errlen)
{
    const struct bn_gguf_kv *kv;
    enum bn_status st = bn_gguf_lookup(g, key, false, &kv, found, err, errlen);
    if (st != BN_OK || !kv) return st;
    if (kv->type != BN_GGUF_BOOL) return bn_gguf_wrong_type(g, key, kv, "bool", err, errlen);
    *out = kv->value[0] != 0;
    if (found) *found = true;
    return BN_OK;
}

static enum bn_status bn_gguf_str(const bn_gguf *g, const char *key, bool required, struct bn_gguf_str *out,
                                  bool *found, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv;
    enum bn_status st = bn_gguf_lookup(g, key, required, &kv, found, err, errlen);
    if (st != BN_OK || !kv) return st;
    if (kv->type != BN_GGUF_STRING) return bn_gguf_wrong_type(g, key, kv, "string", err, errlen);
    *out = kv->str;
    if (found) *found = true;
    return BN_OK;
}

enum bn_status bn_gguf_get_str(const bn_gguf *g, const char *key, struct bn_gguf_str *out, char *err,
                               size_t errlen)
{
    return bn_gguf_str(g, key, true, out, NULL, err, errlen);
}

enum bn_status bn_gguf_get_str_opt(const bn_gguf *g, const char *key, struct bn_gguf_str *out, bool *found,
                                   char *err, size_t errlen)
{
    return bn_gguf_str(g, key, false, out, found, err, errlen);
}

enum bn_status bn_gguf_get_arr_opt(const bn_gguf *g, const char *key, uint32_t elem_type,
                                   const struct bn_gguf_kv **out, bool *found, char *err, size_t errlen)
{
    const struct bn_gguf_kv *kv;
    enum bn_status st = bn_gguf_lookup(g, key, false, &kv, found, err, errlen);
    if (st != BN_OK || !kv) return st;
    if (kv->type != BN_GGUF_ARRAY || kv->arr_type != elem_type) {
        char expected[32];
        snprintf(expected, sizeof expected, "array of %s", bn_gguf_type_name(elem_type));
        return bn_gguf_wrong_type(g, key, kv, expected, err, errlen);
    }
    *out = kv;
    if (found) *found = true;
    return BN_OK;
}
