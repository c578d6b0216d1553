#include "gguf_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../runtime/tensor_types.h"

/* GGUF value type ids (the same numbers as enum bn_gguf_type in
 * runtime/gguf.h; repeated here so the tools do not depend on the reader). */
enum {
    GT_UINT8 = 0,
    GT_INT8 = 1,
    GT_UINT16 = 2,
    GT_INT16 = 3,
    GT_UINT32 = 4,
    GT_INT32 = 5,
    GT_FLOAT32 = 6,
    GT_BOOL = 7,
    GT_STRING = 8,
    GT_ARRAY = 9,
    GT_UINT64 = 10,
    GT_INT64 = 11,
    GT_FLOAT64 = 12,
};

#define WRITER_MAX_DIMS 4 /* GGUF's (and ggml's) limit */
#define DEFAULT_ALIGNMENT 32

struct wtensor {
    char *name;
    uint32_t n_dims;
    uint64_t ne[WRITER_MAX_DIMS];
    uint32_t type;
    uint64_t offset; /* within the data section */
    uint64_t nbytes;
    uint8_t *data;
};

/* Key/value pairs are serialised as they are added: the header is then a
 * plain concatenation and needs no per-type code at write time. */
struct bytebuf {
    uint8_t *p;
    size_t len, cap;
};

struct bn_gguf_writer {
    uint32_t alignment;
    uint64_t n_kv;
    struct bytebuf kv;
    struct wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint64_t data_size; /* data section bytes so far, every tensor padded */
    /* Sticky failure: an add that failed leaves a builder whose file would
     * silently lack something, so every later write must fail too. */
    enum bn_status failed;
    char failed_msg[160];
};

static bool buf_reserve(struct bytebuf *b, size_t extra)
{
    if (extra <= b->cap - b->len) return true;
    if (extra > SIZE_MAX / 2 - b->len) return false;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return false;
    b->p = p;
    b->cap = cap;
    return true;
}

static bool buf_put(struct bytebuf *b, const void *src, size_t n)
{
    if (!buf_reserve(b, n)) return false;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return true;
}

/* Explicit little-endian encoding: the file format is LE whatever the host. */
static bool buf_u32(struct bytebuf *b, uint32_t v)
{
    uint8_t x[4];
    for (unsigned i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    return buf_put(b, x, 4);
}

static bool buf_u64(struct bytebuf *b, uint64_t v)
{
    uint8_t x[8];
    for (unsigned i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    return buf_put(b, x, 8);
}

static bool buf_str(struct bytebuf *b, const char *s)
{
    size_t n = strlen(s);
    return buf_u64(b, (uint64_t)n) && buf_put(b, s, n);
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GT_UINT8: case GT_INT8: case GT_BOOL: return 1;
    case GT_UINT16: case GT_INT16: return 2;
    case GT_UINT32: case GT_INT32: case GT_FLOAT32: return 4;
    case GT_UINT64: case GT_INT64: case GT_FLOAT64: return 8;
    default: return 0;
    }
}

static bool fail(bn_gguf_writer *w, enum bn_status st, const char *msg, const char *what)
{
    if (w->failed == BN_OK) {
        w->failed = st;
        snprintf(w->failed_msg, sizeof w->failed_msg, "%s '%s'", msg, what);
    }
    return false;
}

static bool fail_nomem(bn_gguf_writer *w, const char *what)
{
    return fail(w, BN_ERR_NOMEM, "gguf writer: out of memory adding", what);
}

bn_gguf_writer *bn_gguf_writer_create(uint32_t alignment)
{
    if (alignment == 0) alignment = DEFAULT_ALIGNMENT;
    if ((alignment & (alignment - 1)) != 0) return NULL; /* readers reject it */
    bn_gguf_writer *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->alignment = alignment;
    /* Readers need the alignment before they can place the data section. */
    if (alignment != DEFAULT_ALIGNMENT && !bn_gguf_writer_add_u32(w, "general.alignment", alignment)) {
        bn_gguf_writer_destroy(w);
        return NULL;
    }
    return w;
}

void bn_gguf_writer_destroy(bn_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) {
        free(w->tensors[i].name);
        free(w->tensors[i].data);
    }
    free(w->tensors);
    free(w->kv.p);
    free(w);
}

/* Appends key and type; on failure the partial pair is cut off again so
 * the buffer never holds half a pair. */
static bool kv_begin(bn_gguf_writer *w, const char *key, uint32_t type, size_t *mark)
{
    *mark = w->kv.len;
    if (w->failed != BN_OK) return false;
    if (buf_str(&w->kv, key) && buf_u32(&w->kv, type)) return true;
    w->kv.len = *mark;
    return fail_nomem(w, key);
}

static bool kv_end(bn_gguf_writer *w, const char *key, size_t mark, bool ok)
{
    if (!ok) {
        w->kv.len = mark;
        return fail_nomem(w, key);
    }
    w->n_kv++;
    return true;
}

static bool add_scalar(bn_gguf_writer *w, const char *key, uint32_t type, const uint8_t *le, size_t n)
{
    size_t mark;
    if (!w || !key) return false;
    if (!kv_begin(w, key, type, &mark)) return false;
    return kv_end(w, key, mark, buf_put(&w->kv, le, n));
}

bool bn_gguf_writer_add_u32(bn_gguf_writer *w, const char *key, uint32_t v)
{
    uint8_t x[4];
    for (unsigned i = 0; i < 4; i++) x[i] = (uint8_t)(v >> (8 * i));
    return add_scalar(w, key, GT_UINT32, x, 4);
}

bool bn_gguf_writer_add_i32(bn_gguf_writer *w, const char *key, int32_t v)
{
    uint32_t u = (uint32_t)v; /* two's complement by definition of the conversion */
    uint8_t x[4];
    for (unsigned i = 0; i < 4; i++) x[i] = (uint8_t)(u >> (8 * i));
    return add_scalar(w, key, GT_INT32, x, 4);
}

bool bn_gguf_writer_add_u64(bn_gguf_writer *w, const char *key, uint64_t v)
{
    uint8_t x[8];
    for (unsigned i = 0; i < 8; i++) x[i] = (uint8_t)(v >> (8 * i));
    return add_scalar(w, key, GT_UINT64, x, 8);
}

bool bn_gguf_writer_add_f32(bn_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    uint8_t x[4];
    for (unsigned i = 0; i < 4; i++) x[i] = (uint8_t)(u >> (8 * i));
    return add_scalar(w, key, GT_FLOAT32, x, 4);
}

bool bn_gguf_writer_add_bool(bn_gguf_writer *w, const char *key, bool v)
{
    uint8_t x = v ? 1 : 0;
    return add_scalar(w, key, GT_BOOL, &x, 1);
}

bool bn_gguf_writer_add_str(bn_gguf_writer *w, const char *key, const char *v)
{
    size_t mark;
    if (!w || !key || !v) return false;
    if (!kv_begin(w, key, GT_STRING, &mark)) return false;
    return kv_end(w, key, mark, buf_str(&w->kv, v));
}

bool bn_gguf_writer_add_arr(bn_gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n)
{
    size_t mark;
    if (!w || !key) return false;
    size_t es = scalar_size(elem_type);
    if (es == 0) return fail(w, BN_ERR_USAGE, "gguf writer: array element type is not a scalar in", key);
    if (n > SIZE_MAX / es) return fail_nomem(w, key);
    if (n && !data) return fail(w, BN_ERR_USAGE, "gguf writer: no data for array", key);
    if (!kv_begin(w, key, GT_ARRAY, &mark)) return false;
    /* Elements are already packed little-endian by the caller (as documented),
     * so they go in verbatim. */
    bool ok = buf_u32(&w->kv, elem_type) && buf_u64(&w->kv, n) && buf_put(&w->kv, data, (size_t)n * es);
    return kv_end(w, key, mark, ok);
}

bool bn_gguf_writer_add_arr_str(bn_gguf_writer *w, const char *key, const char *const *v, uint64_t n)
{
    size_t mark;
    if (!w || !key) return false;
    if (n && !v) return fail(w, BN_ERR_USAGE, "gguf writer: no data for array", key);
    if (!kv_begin(w, key, GT_ARRAY, &mark)) return false;
    bool ok = buf_u32(&w->kv, GT_STRING) && buf_u64(&w->kv, n);
    for (uint64_t i = 0; ok && i < n; i++) ok = v[i] != NULL && buf_str(&w->kv, v[i]);
    return kv_end(w, key, mark, ok);
}

bool bn_gguf_writer_add_tensor(bn_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                               const uint64_t *ne, const void *data, uint64_t nbytes)
{
    if (!w || !name) return false;
    if (w->failed != BN_OK) return false;
    if (n_dims == 0 || n_dims > WRITER_MAX_DIMS || !ne)
        return fail(w, BN_ERR_USAGE, "gguf writer: bad dimension count for tensor", name);
    uint64_t want;
    if (!bn_type_tensor_bytes(type, ne, n_dims, &want)) {
        /* A file missing a tensor is worse than no file: poison the builder. */
        return fail(w, BN_ERR_USAGE, "gguf writer: unknown type or bad shape for tensor", name);
    }
    if (want != nbytes) {
        if (w->failed == BN_OK) {
            w->failed = BN_ERR_USAGE;
            snprintf(w->failed_msg, sizeof w->failed_msg, "gguf writer: tensor '%s': %llu bytes given, %s needs %llu",
                     name, (unsigned long long)nbytes, bn_type_name(type), (unsigned long long)want);
        }
        return false;
    }
    if (nbytes && !data) return fail(w, BN_ERR_USAGE, "gguf writer: no data for tensor", name);
    if (nbytes > SIZE_MAX || nbytes > UINT64_MAX - w->alignment || w->data_size > UINT64_MAX - w->alignment - nbytes)
        return fail_nomem(w, name);

    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        struct wtensor *t = realloc(w->tensors, cap * sizeof *t);
        if (!t) return fail_nomem(w, name);
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct wtensor t = {0};
    size_t name_len = strlen(name);
    t.name = malloc(name_len + 1);
    t.data = malloc(nbytes ? (size_t)nbytes : 1);
    if (!t.name || !t.data) {
        free(t.name);
        free(t.data);
        return fail_nomem(w, name);
    }
    memcpy(t.name, name, name_len + 1);
    if (nbytes) memcpy(t.data, data, (size_t)nbytes);
    t.n_dims = n_dims;
    for (uint32_t i = 0; i < n_dims; i++) t.ne[i] = ne[i];
    t.type = type;
    t.offset = w->data_size;
    t.nbytes = nbytes;
    w->data_size += align_up(nbytes, w->alignment);
    w->tensors[w->n_tensors++] = t;
    return true;
}

/* ---- serialisation --------------------------------------------------------- */

/* Header (everything before the data section, padding included). Small even
 * for a 128k vocabulary, so it is built in memory; only the tensor data is
 * streamed. */
static enum bn_status build_header(const bn_gguf_writer *w, struct bytebuf *h, char *err, size_t errlen)
{
    bool ok = buf_put(h, "GGUF", 4) && buf_u32(h, 3) && buf_u64(h, (uint64_t)w->n_tensors) &&
              buf_u64(h, w->n_kv) && buf_put(h, w->kv.p, w->kv.len);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        ok = buf_str(h, t->name) && buf_u32(h, t->n_dims);
        for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = buf_u64(h, t->ne[d]);
        ok = ok && buf_u32(h, t->type) && buf_u64(h, t->offset);
    }
    if (ok) {
        size_t pad = (size_t)(align_up(h->len, w->alignment) - h->len);
        ok = buf_reserve(h, pad);
        if (ok) {
            memset(h->p + h->len, 0, pad);
            h->len += pad;
        }
    }
    if (!ok) {
        free(h->p);
        h->p = NULL;
        return bn_errf(err, errlen, BN_ERR_NOMEM, "gguf writer: out of memory building the header");
    }
    return BN_OK;
}

static enum bn_status check_usable(const bn_gguf_writer *w, char *err, size_t errlen)
{
    if (!w) return bn_errf(err, errlen, BN_ERR_USAGE, "gguf writer: no writer");
    if (w->failed != BN_OK) return bn_errf(err, errlen, w->failed, "%s", w->failed_msg);
    return BN_OK;
}

enum bn_status bn_gguf_writer_to_memory(const bn_gguf_writer *w, uint8_t **out, size_t *size, char *err, size_t errlen)
{
    enum bn_status st = check_usable(w, err, errlen);
    if (st != BN_OK) return st;
    struct bytebuf h = {0};
    st = build_header(w, &h, err, errlen);
    if (st != BN_OK) return st;
    if (w->data_size > SIZE_MAX - h.len) {
        free(h.p);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "gguf writer: file too large for memory");
    }
    size_t total = h.len + (size_t)w->data_size;
    uint8_t *p = realloc(h.p, total ? total : 1);
    if (!p) {
        free(h.p);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "gguf writer: out of memory (%zu bytes)", total);
    }
    uint8_t *data = p + h.len;
    memset(data, 0, (size_t)w->data_size); /* the padding */
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        if (t->nbytes) memcpy(data + t->offset, t->data, (size_t)t->nbytes);
    }
    *out = p;
    *size = total;
    return BN_OK;
}

static bool write_all(FILE *f, const void *p, size_t n)
{
    return n == 0 || fwrite(p, 1, n, f) == n;
}

enum bn_status bn_gguf_writer_write_file(const bn_gguf_writer *w, const char *path, char *err, size_t errlen)
{
    enum bn_status st = check_usable(w, err, errlen);
    if (st != BN_OK) return st;
    if (!path) return bn_errf(err, errlen, BN_ERR_USAGE, "gguf writer: no output path");

    struct bytebuf h = {0};
    st = build_header(w, &h, err, errlen);
    if (st != BN_OK) return st;

    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) {
        free(h.p);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "gguf writer: out of memory");
    }
    /* A regular file is written under a temporary name and renamed over
     * the path once whole; anything else there (/dev/null, a pipe) is
     * written in place, since a rename would replace it with a plain file. */
    struct stat sb;
    const bool in_place = stat(path, &sb) == 0 && !S_ISREG(sb.st_mode);
    memcpy(tmp, path, plen + 1);
    if (!in_place) memcpy(tmp + plen, ".tmp", 5);

    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = bn_errf(err, errlen, BN_ERR_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        free(h.p);
        return st;
    }

    static const uint8_t zeros[256];
    bool ok = write_all(f, h.p, h.len);
    for (size_t i = 0; ok && i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        ok = write_all(f, t->data, (size_t)t->nbytes);
        /* alignment is a power of two, but it may exceed the zero block. */
        uint64_t pad = align_up(t->nbytes, w->alignment) - t->nbytes;
        while (ok && pad > 0) {
            size_t k = pad < sizeof zeros ? (size_t)pad : sizeof zeros;
            ok = write_all(f, zeros, k);
            pad -= k;
        }
    }
    int saved = errno;
    if (ok) {
        /* fclose reports the final flush, where a full disk often shows up. */
        ok = fflush(f) == 0;
        saved = errno;
    }
    if (fclose(f) != 0 && ok) {
        ok = false;
        saved = errno;
    }
    free(h.p);
    if (!ok) {
        st = bn_errf(err, errlen, BN_ERR_IO, "%s: write failed: %s", tmp, strerror(saved));
        if (!in_place) remove(tmp);
        free(tmp);
        return st;
    }
    if (!in_place && rename(tmp, path) != 0) {
        st = bn_errf(err, errlen, BN_ERR_IO, "%s: cannot rename to %s: %s", tmp, path, strerror(errno));
        remove(tmp);
        free(tmp);
        return st;
    }
    free(tmp);
    return BN_OK;
}
