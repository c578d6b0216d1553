/*
 * gguf.h - read-only GGUF v2/v3 reader over an mmap of the file.
 *
 * The reader validates the whole header at open time: every count, string
 * length, array length, dimension product, type id and offset is checked
 * against the file size (overflow-safe) before anything is used. After a
 * successful open, every pointer handed out points inside the mapping and
 * every range fits in it, so callers need no further bounds checks.
 *
 *     bn_gguf *g;
 *     if (bn_gguf_open(path, &g, err, sizeof err) != BN_OK) ...
 *     uint32_t n_layer;
 *     st = bn_gguf_get_u32(g, "bitnet-b1.58.block_count", &n_layer, err, sizeof err);
 *     int64_t t = bn_gguf_find_tensor(g, "token_embd.weight");
 *     const struct bn_gguf_tensor *te = bn_gguf_tensor_at(g, t);
 *     ... te->data, te->nbytes ...
 *     bn_gguf_close(g);
 *
 * Errors name the file (the path given to open), the field and what was
 * expected, e.g. "model.gguf: tensor 'blk.0.attn_q.weight': offset 1234 + 5678
 * bytes runs past the end of the file (4096 bytes)".
 *
 * Ownership: strings and data pointers point into the mapping and stay valid
 * until bn_gguf_close(). Strings are NOT NUL-terminated (GGUF strings are
 * length-prefixed); compare with bn_gguf_str_eq().
 */
#ifndef BN_GGUF_H
#define BN_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

enum bn_gguf_type {
    BN_GGUF_UINT8 = 0,
    BN_GGUF_INT8 = 1,
    BN_GGUF_UINT16 = 2,
    BN_GGUF_INT16 = 3,
    BN_GGUF_UINT32 = 4,
    BN_GGUF_INT32 = 5,
    BN_GGUF_FLOAT32 = 6,
    BN_GGUF_BOOL = 7,
    BN_GGUF_STRING = 8,
    BN_GGUF_ARRAY = 9,
    BN_GGUF_UINT64 = 10,
    BN_GGUF_INT64 = 11,
    BN_GGUF_FLOAT64 = 12,
    BN_GGUF_TYPE_COUNT = 13
};

#define BN_GGUF_MAX_DIMS 4
#define BN_GGUF_DEFAULT_ALIGNMENT 32

struct bn_gguf_str {
    const char *data; /* into the mapping, not NUL-terminated */
    uint64_t len;
};

struct bn_gguf_kv {
    struct bn_gguf_str key;
    uint32_t type;            /* enum bn_gguf_type                          */
    /* Scalars: value points at the little-endian value in the mapping.
     * Strings: str holds the value.
     * Arrays: arr_type / arr_n describe it; for arrays of scalars, value points
     * at the first element (elements are packed, little-endian); for arrays of
     * strings, arr_str[i] holds element i (an index built at open time).
     * Arrays of arrays are rejected at open time. */
    const uint8_t *value;
    struct bn_gguf_str str;
    uint32_t arr_type;
    uint64_t arr_n;
    const struct bn_gguf_str *arr_str;
};

struct bn_gguf_tensor {
    struct bn_gguf_str name;
    uint32_t n_dims;                 /* 1..4                                      */
    uint64_t ne[BN_GGUF_MAX_DIMS];   /* dims, ne[0] fastest; unused dims are 1    */
    uint32_t type;                   /* enum bn_type, always a known id           */
    uint64_t offset;                 /* relative to the start of the data section */
    uint64_t nbytes;                 /* from type and dims                        */
    const uint8_t *data;             /* into the mapping, aligned as the file says */
};

typedef struct bn_gguf bn_gguf;

/* Maps and validates a file. On failure *out is NULL and err holds one line
 * naming the path. Status: BN_ERR_IO (cannot open/map), BN_ERR_MODEL (not a
 * valid GGUF file), BN_ERR_NOMEM. */
enum bn_status bn_gguf_open(const char *path, bn_gguf **out, char *err, size_t errlen);

/* Same checks over a caller's buffer (for tests and fuzzing). The buffer must
 * outlive the returned object; name is used in messages. */
enum bn_status bn_gguf_open_memory(const void *data, size_t size, const char *name,
                                   bn_gguf **out, char *err, size_t errlen);

/* Unmaps and frees; accepts NULL. */
void bn_gguf_close(bn_gguf *g);

const char *bn_gguf_name(const bn_gguf *g);   /* path or name given at open */
uint32_t bn_gguf_version(const bn_gguf *g);
uint64_t bn_gguf_file_size(const bn_gguf *g);
uint32_t bn_gguf_alignment(const bn_gguf *g);
uint64_t bn_gguf_data_offset(const bn_gguf *g); /* file offset of the data section */

int64_t bn_gguf_n_kv(const bn_gguf *g);
const struct bn_gguf_kv *bn_gguf_kv_at(const bn_gguf *g, int64_t i);
int64_t bn_gguf_find_kv(const bn_gguf *g, const char *key); /* -1 when absent */

int64_t bn_gguf_n_tensors(const bn_gguf *g);
const struct bn_gguf_tensor *bn_gguf_tensor_at(const bn_gguf *g, int64_t i);
int64_t bn_gguf_find_tensor(const bn_gguf *g, const char *name); /* -1 when absent */

bool bn_gguf_str_eq(struct bn_gguf_str s, const char *cstr);

/* Name of a GGUF value type ("uint32", "array", ...); "unknown" otherwise. */
const char *bn_gguf_type_name(uint32_t type);

/* Typed getters. A missing key returns BN_ERR_MODEL with "FILE: missing key
 * 'KEY'" unless the _opt variant is used, which returns BN_OK and leaves *out
 * untouched (and sets *found, if given, to false). A key of the wrong type, or
 * an integer out of range of the target, returns BN_ERR_MODEL naming the key,
 * the type found and the type expected. Integer getters accept any integer
 * type whose value fits; float getters accept float32 and float64. */
enum bn_status bn_gguf_get_u32(const bn_gguf *g, const char *key, uint32_t *out, char *err, size_t errlen);
enum bn_status bn_gguf_get_u32_opt(const bn_gguf *g, const char *key, uint32_t *out, bool *found, char *err, size_t errlen);
enum bn_status bn_gguf_get_i32_opt(const bn_gguf *g, const char *key, int32_t *out, bool *found, char *err, size_t errlen);
enum bn_status bn_gguf_get_f32(const bn_gguf *g, const char *key, float *out, char *err, size_t errlen);
enum bn_status bn_gguf_get_f32_opt(const bn_gguf *g, const char *key, float *out, bool *found, char *err, size_t errlen);
enum bn_status bn_gguf_get_bool_opt(const bn_gguf *g, const char *key, bool *out, bool *found, char *err, size_t errlen);
enum bn_status bn_gguf_get_str(const bn_gguf *g, const char *key, struct bn_gguf_str *out, char *err, size_t errlen);
enum bn_status bn_gguf_get_str_opt(const bn_gguf *g, const char *key, struct bn_gguf_str *out, bool *found, char *err, size_t errlen);
/* Array of the given element type (BN_GGUF_STRING for string arrays). */
enum bn_status bn_gguf_get_arr_opt(const bn_gguf *g, const char *key, uint32_t elem_type,
                                   const struct bn_gguf_kv **out, bool *found, char *err, size_t errlen);

#endif
