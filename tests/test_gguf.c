/*
 * test_gguf.c - GGUF reader: real files from shared/testdata, then hostile,
 * truncated and randomly corrupted ones built byte by byte here, so every
 * field is under the test's control.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "gguf.h"
#include "tensor_types.h"
#include "test_util.h"

/* ---- a raw little-endian byte builder ---------------------------------- */

struct bb {
    uint8_t *p;
    size_t n, cap;
};

static void bb_bytes(struct bb *b, const void *data, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "test_gguf: out of memory\n");
            exit(1);
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void bb_u8(struct bb *b, uint8_t v) { bb_bytes(b, &v, 1); }

static void bb_u32(struct bb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    bb_bytes(b, x, 4);
}

static void bb_u64(struct bb *b, uint64_t v)
{
    bb_u32(b, (uint32_t)v);
    bb_u32(b, (uint32_t)(v >> 32));
}

static void bb_str(struct bb *b, const char *s)
{
    bb_u64(b, strlen(s));
    bb_bytes(b, s, strlen(s));
}

static void bb_header(struct bb *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    bb_bytes(b, "GGUF", 4);
    bb_u32(b, version);
    bb_u64(b, n_tensors);
    bb_u64(b, n_kv);
}

static void bb_kv_u32(struct bb *b, const char *key, uint32_t v)
{
    bb_str(b, key);
    bb_u32(b, BN_GGUF_UINT32);
    bb_u32(b, v);
}

static void bb_kv_str(struct bb *b, const char *key, const char *v)
{
    bb_str(b, key);
    bb_u32(b, BN_GGUF_STRING);
    bb_str(b, v);
}

static void bb_tensor(struct bb *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset)
{
    bb_str(b, name);
    bb_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) bb_u64(b, ne[i]);
    bb_u32(b, type);
    bb_u64(b, offset);
}

static void bb_pad(struct bb *b, size_t align)
{
    while (b->n % align) bb_u8(b, 0);
}

static void bb_zeros(struct bb *b, size_t n)
{
    for (size_t i = 0; i < n; i++) bb_u8(b, 0);
}

static void bb_reset(struct bb *b) { b->n = 0; }

/* ---- helpers ----------------------------------------------------------- */

static bool one_line(const char *s) { return strchr(s, '\n') == NULL && strchr(s, '\r') == NULL; }

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Opens a hostile buffer and checks it fails cleanly: BN_ERR_MODEL, *out
 * NULL, one non-empty line that starts with the name and mentions want. The
 * bytes are copied into an exact-size allocation so that ASan flags any read
 * past the end. */
static void expect_bad(const struct bb *b, const char *label, const char *want)
{
    static const char name[] = "hostile.gguf";
    static max_align_t dummy;
    uint8_t *copy = malloc(b->n ? b->n : 1);
    if (b->n) memcpy(copy, b->p, b->n);
    bn_gguf *g = (bn_gguf *)(void *)&dummy;
    char err[512] = "";
    enum bn_status st = bn_gguf_open_memory(copy, b->n, name, &g, err, sizeof err);
    CHECKF(st == BN_ERR_MODEL, "%s: status %d, expected BN_ERR_MODEL (%s)", label, (int)st, err);
    CHECKF(g == NULL, "%s: *out not NULL on failure", label);
    if (getenv("BN_TEST_VERBOSE")) printf("  %-28s %s\n", label, err);
    CHECKF(err[0] != '\0' && one_line(err), "%s: message empty or not one line: '%s'", label, err);
    CHECKF(starts_with(err, "hostile.gguf: "), "%s: message does not start with the name: '%s'", label, err);
    CHECKF(strstr(err, want) != NULL, "%s: message '%s' does not mention '%s'", label, err, want);
    if (st == BN_OK) bn_gguf_close(g);
    free(copy);
}

static bn_gguf *open_good(const struct bb *b, const char *label)
{
    bn_gguf *g = NULL;
    char err[512] = "";
    enum bn_status st = bn_gguf_open_memory(b->p, b->n, "good.gguf", &g, err, sizeof err);
    CHECKF(st == BN_OK && g != NULL, "%s: open failed: %s", label, err);
    return st == BN_OK ? g : NULL;
}

/* A valid small file: kvs of every scalar type, a string, arrays, and two
 * tensors (f32 [4, 2] and q8_0 [32]). */
static void build_valid(struct bb *b, uint32_t version, uint32_t align)
{
    bb_reset(b);
    bb_header(b, version, 2, align ? 19 : 18);
    if (align) bb_kv_u32(b, "general.alignment", align);
    bb_kv_str(b, "general.name", "tiny");
    bb_str(b, "u8"), bb_u32(b, BN_GGUF_UINT8), bb_u8(b, 200);
    bb_str(b, "i8"), bb_u32(b, BN_GGUF_INT8), bb_u8(b, 0xfe); /* -2 */
    bb_str(b, "u16"), bb_u32(b, BN_GGUF_UINT16), bb_u8(b, 0x34), bb_u8(b, 0x12);
    bb_str(b, "i16"), bb_u32(b, BN_GGUF_INT16), bb_u8(b, 0x00), bb_u8(b, 0x80); /* -32768 */
    bb_kv_u32(b, "u32", 4000000000u);
    bb_str(b, "i32"), bb_u32(b, BN_GGUF_INT32), bb_u32(b, (uint32_t)-7);
    bb_str(b, "u64"), bb_u32(b, BN_GGUF_UINT64), bb_u64(b, 1ull << 40);
    bb_str(b, "i64"), bb_u32(b, BN_GGUF_INT64), bb_u64(b, 12345);
    bb_str(b, "i32min"), bb_u32(b, BN_GGUF_INT32), bb_u32(b, 0x80000000u);
    bb_str(b, "i64min"), bb_u32(b, BN_GGUF_INT64), bb_u64(b, 1ull << 63);
    float f = 0.25f;
    uint32_t fu;
    memcpy(&fu, &f, 4);
    bb_str(b, "f32"), bb_u32(b, BN_GGUF_FLOAT32), bb_u32(b, fu);
    double d = 1e-5;
    uint64_t du;
    memcpy(&du, &d, 8);
    bb_str(b, "f64"), bb_u32(b, BN_GGUF_FLOAT64), bb_u64(b, du);
    d = 1e300;
    memcpy(&du, &d, 8);
    bb_str(b, "f64big"), bb_u32(b, BN_GGUF_FLOAT64), bb_u64(b, du);
    bb_str(b, "flag"), bb_u32(b, BN_GGUF_BOOL), bb_u8(b, 1);
    bb_str(b, "arr.u32"), bb_u32(b, BN_GGUF_ARRAY), bb_u32(b, BN_GGUF_UINT32), bb_u64(b, 3);
    bb_u32(b, 10), bb_u32(b, 20), bb_u32(b, 30);
    bb_str(b, "arr.str"), bb_u32(b, BN_GGUF_ARRAY), bb_u32(b, BN_GGUF_STRING), bb_u64(b, 3);
    bb_str(b, "a"), bb_str(b, ""), bb_str(b, "ccc");
    bb_str(b, "arr.empty"), bb_u32(b, BN_GGUF_ARRAY), bb_u32(b, BN_GGUF_STRING), bb_u64(b, 0);
    size_t a = align ? align : BN_GGUF_DEFAULT_ALIGNMENT;
    const uint64_t ne_w[2] = {4, 2}, ne_q[1] = {32};
    bb_tensor(b, "w", 2, ne_w, BN_TYPE_F32, 0);
    bb_tensor(b, "q", 1, ne_q, BN_TYPE_Q8_0, ((32 + a - 1) / a) * a);
    bb_pad(b, a);
    for (int i = 0; i < 8; i++) {
        float v = (float)i;
        uint32_t u;
        memcpy(&u, &v, 4);
        bb_u32(b, u);
    }
    bb_pad(b, a);
    bb_zeros(b, 34);
}

/* ---- synthetic valid files: getters ------------------------------------ */

static void test_valid_synthetic(void)
{
    struct bb b = {0};
    char err[512];
    build_valid(&b, 3, 0);
    bn_gguf *g = open_good(&b, "valid v3");
    if (g) {
        CHECK(bn_gguf_version(g) == 3, "version 3");
        CHECK(strcmp(bn_gguf_name(g), "good.gguf") == 0, "name kept");
        CHECK(bn_gguf_alignment(g) == 32, "default alignment 32");
        CHECK(bn_gguf_data_offset(g) % 32 == 0, "data offset aligned");
        CHECK(bn_gguf_file_size(g) == b.n, "file size");
        CHECK(bn_gguf_n_kv(g) == 18 && bn_gguf_n_tensors(g) == 2, "counts");
        CHECK(bn_gguf_kv_at(g, -1) == NULL && bn_gguf_kv_at(g, 18) == NULL, "kv_at out of range");
        CHECK(bn_gguf_tensor_at(g, 2) == NULL, "tensor_at out of range");
        CHECK(bn_gguf_find_kv(g, "nope") == -1 && bn_gguf_find_tensor(g, "nope") == -1, "absent -> -1");
        CHECK(bn_gguf_find_kv(g, "") == -1, "empty key absent");
        /* Every kv is found at its own index. */
        for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
            const struct bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
            char k[64];
            snprintf(k, sizeof k, "%.*s", (int)kv->key.len, kv->key.data);
            CHECKF(bn_gguf_find_kv(g, k) == i, "find_kv(%s)", k);
        }

        uint32_t u = 0;
        int32_t s = 0;
        float f = 0;
        bool bv = false, found = true;
        struct bn_gguf_str str = {0};
        CHECK(bn_gguf_get_u32(g, "u8", &u, err, sizeof err) == BN_OK && u == 200, "u8 as u32");
        CHECK(bn_gguf_get_u32(g, "u16", &u, err, sizeof err) == BN_OK && u == 0x1234, "u16 as u32");
        CHECK(bn_gguf_get_u32(g, "u32", &u, err, sizeof err) == BN_OK && u == 4000000000u, "u32");
        CHECK(bn_gguf_get_u32(g, "i64", &u, err, sizeof err) == BN_OK && u == 12345, "i64 as u32");
        CHECK(bn_gguf_get_u32(g, "i32", &u, err, sizeof err) == BN_ERR_MODEL && strstr(err, "out of range"),
              "negative i32 as u32 fails");
        CHECKF(starts_with(err, "good.gguf: key 'i32'"), "range message names file and key: %s", err);
        CHECK(bn_gguf_get_u32(g, "u64", &u, err, sizeof err) == BN_ERR_MODEL && strstr(err, "out of range"),
              "2^40 as u32 fails");
        CHECK(bn_gguf_get_i32_opt(g, "i8", &s, &found, err, sizeof err) == BN_OK && found && s == -2, "i8");
        CHECK(bn_gguf_get_i32_opt(g, "i16", &s, &found, err, sizeof err) == BN_OK && s == -32768, "i16");
        CHECK(bn_gguf_get_i32_opt(g, "i32", &s, &found, err, sizeof err) == BN_OK && s == -7, "i32");
        CHECK(bn_gguf_get_i32_opt(g, "u32", &s, &found, err, sizeof err) == BN_ERR_MODEL, "4e9 as i32 fails");
        CHECK(bn_gguf_get_i32_opt(g, "i32min", &s, &found, err, sizeof err) == BN_OK && s == INT32_MIN, "i32 min");
        CHECK(bn_gguf_get_i32_opt(g, "i64min", &s, &found, err, sizeof err) == BN_ERR_MODEL &&
                  strcmp(err, "good.gguf: key 'i64min' value -9223372036854775808 (int64) is out of range of int32") == 0,
              "i64 min as i32 message");
        s = 99;
        CHECK(bn_gguf_get_i32_opt(g, "absent", &s, &found, err, sizeof err) == BN_OK && !found && s == 99,
              "absent optional leaves out untouched");
        CHECK(bn_gguf_get_u32(g, "absent", &u, err, sizeof err) == BN_ERR_MODEL &&
                  strcmp(err, "good.gguf: missing key 'absent'") == 0,
              "missing required key message");
        CHECK(bn_gguf_get_u32(g, "f32", &u, err, sizeof err) == BN_ERR_MODEL &&
                  strcmp(err, "good.gguf: key 'f32' has type float32, expected uint32") == 0,
              "float as u32 message");
        CHECK(bn_gguf_get_f32(g, "f32", &f, err, sizeof err) == BN_OK && f == 0.25f, "f32");
        CHECK(bn_gguf_get_f32_opt(g, "f64", &f, &found, err, sizeof err) == BN_OK && found && f == (float)1e-5,
              "f64 as f32");
        CHECK(bn_gguf_get_f32(g, "f64big", &f, err, sizeof err) == BN_ERR_MODEL, "1e300 as f32 fails");
        CHECK(bn_gguf_get_f32(g, "u32", &f, err, sizeof err) == BN_ERR_MODEL, "int as f32 fails");
        CHECK(bn_gguf_get_bool_opt(g, "flag", &bv, &found, err, sizeof err) == BN_OK && found && bv, "bool");
        CHECK(bn_gguf_get_bool_opt(g, "u8", &bv, &found, err, sizeof err) == BN_ERR_MODEL, "u8 as bool fails");
        CHECK(bn_gguf_get_str(g, "general.name", &str, err, sizeof err) == BN_OK && bn_gguf_str_eq(str, "tiny"),
              "string");
        CHECK(!bn_gguf_str_eq(str, "tin") && !bn_gguf_str_eq(str, "tinyy") && !bn_gguf_str_eq(str, NULL),
              "str_eq compares length");
        CHECK(bn_gguf_get_str_opt(g, "absent", &str, &found, err, sizeof err) == BN_OK && !found, "str opt");
        const struct bn_gguf_kv *arr = NULL;
        CHECK(bn_gguf_get_arr_opt(g, "arr.u32", BN_GGUF_UINT32, &arr, &found, err, sizeof err) == BN_OK &&
                  found && arr && arr->arr_n == 3,
              "u32 array");
        if (arr && arr->arr_n == 3) CHECK(arr->value[4] == 20 && arr->value[8] == 30, "u32 array elements");
        CHECK(bn_gguf_get_arr_opt(g, "arr.u32", BN_GGUF_STRING, &arr, &found, err, sizeof err) ==
                      BN_ERR_MODEL &&
                  strstr(err, "has type array of uint32, expected array of string"),
              "array element type mismatch message");
        CHECK(bn_gguf_get_str(g, "arr.str", &str, err, sizeof err) == BN_ERR_MODEL &&
                  strstr(err, "has type array of string, expected string"),
              "array as string message");
        arr = NULL;
        CHECK(bn_gguf_get_arr_opt(g, "arr.str", BN_GGUF_STRING, &arr, &found, err, sizeof err) == BN_OK && arr &&
                  arr->arr_n == 3,
              "string array");
        if (arr && arr->arr_n == 3)
            CHECK(bn_gguf_str_eq(arr->arr_str[0], "a") && bn_gguf_str_eq(arr->arr_str[1], "") &&
                      bn_gguf_str_eq(arr->arr_str[2], "ccc"),
                  "string array elements");
        CHECK(bn_gguf_get_arr_opt(g, "arr.empty", BN_GGUF_STRING, &arr, &found, err, sizeof err) == BN_OK &&
                  arr->arr_n == 0,
              "empty string array");

        int64_t iw = bn_gguf_find_tensor(g, "w"), iq = bn_gguf_find_tensor(g, "q");
        CHECK(iw == 0 && iq == 1, "find_tensor");
        const struct bn_gguf_tensor *w = bn_gguf_tensor_at(g, 0), *q = bn_gguf_tensor_at(g, 1);
        CHECK(w->n_dims == 2 && w->ne[0] == 4 && w->ne[1] == 2 && w->ne[2] == 1 && w->ne[3] == 1,
              "w dims, unused dims are 1");
        CHECK(w->nbytes == 32 && q->nbytes == 34, "nbytes from type and dims");
        CHECK(w->data == b.p + bn_gguf_data_offset(g) && q->data == w->data + 32, "data pointers");
        float w5;
        memcpy(&w5, w->data + 20, 4);
        CHECK(w5 == 5.0f, "tensor data");
        bn_gguf_close(g);
    }

    /* Version 2 reads the same; a 64-byte alignment moves the data. */
    build_valid(&b, 2, 64);
    g = open_good(&b, "valid v2 align 64");
    if (g) {
        CHECK(bn_gguf_version(g) == 2 && bn_gguf_alignment(g) == 64, "v2, alignment 64");
        CHECK(bn_gguf_data_offset(g) % 64 == 0, "data offset aligned to 64");
        CHECK(bn_gguf_tensor_at(g, 1)->offset == 64, "second tensor at 64");
        bn_gguf_close(g);
    }

    /* A file without tensors need not be padded at its end. */
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_kv_str(&b, "k", "v");
    g = open_good(&b, "no tensors, unpadded");
    if (g) {
        CHECK(bn_gguf_n_tensors(g) == 0 && bn_gguf_find_tensor(g, "x") == -1, "no tensors");
        bn_gguf_close(g);
    }
    bb_reset(&b);
    bb_header(&b, 3, 0, 0);
    g = open_good(&b, "header only");
    if (g) {
        CHECK(bn_gguf_n_kv(g) == 0 && bn_gguf_find_kv(g, "k") == -1, "header only: no keys");
        bn_gguf_close(g);
    }
    bn_gguf_close(NULL);
    free(b.p);
}

/* ---- hostile files ----------------------------------------------------- */

/* Header + one string kv whose key/value length fields are given raw. */
static void build_str_kv(struct bb *b, uint64_t key_len, uint64_t val_len)
{
    bb_reset(b);
    bb_header(b, 3, 0, 1);
    bb_u64(b, key_len);
    bb_bytes(b, "key", 3);
    bb_u32(b, BN_GGUF_STRING);
    bb_u64(b, val_len);
    bb_bytes(b, "value-bytes-and-some-padding....", 32);
}

/* Header + one tensor info with the given fields, then 64 bytes of data. */
static void build_tensor(struct bb *b, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t offset)
{
    bb_reset(b);
    bb_header(b, 3, 1, 0);
    bb_tensor(b, "blk.0.attn_q.weight", n_dims, ne, type, offset);
    bb_pad(b, 32);
    bb_zeros(b, 64);
}

static void test_hostile(void)
{
    struct bb b = {0};

    build_valid(&b, 3, 0);
    memcpy(b.p, "abcd", 4);
    expect_bad(&b, "wrong magic", "not a GGUF file (magic 'abcd'");
    b.p[0] = 0x01;
    b.p[1] = '\n';
    expect_bad(&b, "binary magic", "magic '??cd'");

    build_valid(&b, 1, 0);
    expect_bad(&b, "version 1", "version 1 ");
    build_valid(&b, 4, 0);
    expect_bad(&b, "version 4", "version 4 ");
    build_valid(&b, 0x03000000u, 0);
    expect_bad(&b, "big-endian version", "big-endian");

    bb_reset(&b);
    bb_header(&b, 3, 1ull << 62, 0);
    bb_zeros(&b, 256);
    expect_bad(&b, "n_tensors 2^62", "n_tensors 4611686018427387904");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1ull << 63);
    bb_zeros(&b, 256);
    expect_bad(&b, "n_kv 2^63", "n_kv 9223372036854775808");
    bb_reset(&b);
    bb_header(&b, 3, UINT64_MAX, UINT64_MAX);
    expect_bad(&b, "both counts 2^64-1", "n_kv");

    build_str_kv(&b, 1ull << 63, 5);
    expect_bad(&b, "key length 2^63", "key 0: key length 9223372036854775808 runs past the end of the file");
    build_str_kv(&b, UINT64_MAX, 5);
    expect_bad(&b, "key length 2^64-1", "key length 18446744073709551615");
    build_str_kv(&b, 3, 1ull << 63);
    expect_bad(&b, "value length 2^63", "key 0 ('key'): string length 9223372036854775808 runs past");
    build_str_kv(&b, 3, UINT64_MAX);
    expect_bad(&b, "value length 2^64-1", "string length 18446744073709551615");
    build_str_kv(&b, 0, 5);
    expect_bad(&b, "empty key", "key 0: empty key");

    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "arr"), bb_u32(&b, BN_GGUF_ARRAY), bb_u32(&b, BN_GGUF_UINT32), bb_u64(&b, 1ull << 62);
    bb_zeros(&b, 64);
    expect_bad(&b, "u32 array 2^62", "array of 4611686018427387904 uint32");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "arr"), bb_u32(&b, BN_GGUF_ARRAY), bb_u32(&b, BN_GGUF_STRING), bb_u64(&b, 1ull << 62);
    bb_zeros(&b, 64);
    expect_bad(&b, "string array 2^62", "array of 4611686018427387904 strings");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "arr"), bb_u32(&b, BN_GGUF_ARRAY), bb_u32(&b, BN_GGUF_STRING), bb_u64(&b, 4);
    bb_str(&b, "x"), bb_u64(&b, 1ull << 62), bb_zeros(&b, 40);
    expect_bad(&b, "array element string too long", "array element 1: string length 4611686018427387904");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "arr"), bb_u32(&b, BN_GGUF_ARRAY), bb_u32(&b, BN_GGUF_ARRAY), bb_u64(&b, 1);
    bb_u32(&b, BN_GGUF_UINT8), bb_u64(&b, 1), bb_u8(&b, 0);
    expect_bad(&b, "array of arrays", "arrays of arrays");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "arr"), bb_u32(&b, BN_GGUF_ARRAY), bb_u32(&b, 13), bb_u64(&b, 1), bb_zeros(&b, 16);
    expect_bad(&b, "array element type 13", "unknown array element type 13");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "weird"), bb_u32(&b, 13), bb_zeros(&b, 16);
    expect_bad(&b, "value type 13", "key 0 ('weird'): unknown value type 13");
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_str(&b, "v"), bb_u32(&b, BN_GGUF_UINT64), bb_u32(&b, 0);
    expect_bad(&b, "truncated scalar", "truncated: value ends past the end of the file");

    /* A long key full of control bytes is shortened and made printable. */
    {
        char key[200];
        memset(key, 'k', sizeof key - 1);
        key[sizeof key - 1] = '\0';
        key[1] = '\n';
        key[2] = '\x1b';
        bb_reset(&b);
        bb_header(&b, 3, 0, 1);
        bb_str(&b, key), bb_u32(&b, 99), bb_zeros(&b, 16);
        expect_bad(&b, "nasty key", "key 0 ('k??kkk");
        char err[512];
        bn_gguf *g = NULL;
        bn_gguf_open_memory(b.p, b.n, "n.gguf", &g, err, sizeof err);
        CHECKF(strlen(err) < 160 && strstr(err, "...'): "), "nasty key quoted briefly: %s", err);
    }

    const uint64_t ne2[2] = {384, 384};
    build_tensor(&b, 2, ne2, 99, 0);
    expect_bad(&b, "tensor type 99", "hostile.gguf: tensor 'blk.0.attn_q.weight': unknown type id 99");
    build_tensor(&b, 0, ne2, BN_TYPE_F32, 0);
    expect_bad(&b, "n_dims 0", "n_dims 0");
    const uint64_t ne5[5] = {1, 1, 1, 1, 1};
    build_tensor(&b, 5, ne5, BN_TYPE_F32, 0);
    expect_bad(&b, "n_dims 5", "n_dims 5");
    const uint64_t ne_zero[2] = {4, 0};
    build_tensor(&b, 2, ne_zero, BN_TYPE_F32, 0);
    expect_bad(&b, "dim 0", "dimension 1 (ne[1]) is 0");
    const uint64_t ne_ovf[3] = {1ull << 32, 1ull << 32, 2};
    build_tensor(&b, 3, ne_ovf, BN_TYPE_F32, 0);
    expect_bad(&b, "element count overflow", "element count overflows");
    const uint64_t ne_bovf[2] = {1ull << 61, 2};
    build_tensor(&b, 2, ne_bovf, BN_TYPE_F64, 0);
    expect_bad(&b, "byte size overflow", "overflows 64 bits");
    const uint64_t ne_blk[1] = {33};
    build_tensor(&b, 1, ne_blk, BN_TYPE_Q4_0, 0);
    expect_bad(&b, "row not a block multiple", "not a multiple of the q4_0 block size 32");
    const uint64_t ne16[1] = {16};
    build_tensor(&b, 1, ne16, BN_TYPE_F32, 64);
    expect_bad(&b, "offset past end", "offset 64 + 64 bytes runs past the end of the file");
    build_tensor(&b, 1, ne16, BN_TYPE_F32, 16);
    expect_bad(&b, "offset unaligned", "offset 16 is not a multiple of the alignment 32");
    build_tensor(&b, 1, ne16, BN_TYPE_F32, UINT64_MAX - 31);
    expect_bad(&b, "offset + size overflow", "runs past the end of the file");
    const uint64_t ne_big[1] = {1ull << 40};
    build_tensor(&b, 1, ne_big, BN_TYPE_F32, 0);
    expect_bad(&b, "size past end", "runs past the end of the file");

    bb_reset(&b);
    bb_header(&b, 3, 0, 3);
    bb_kv_u32(&b, "y", 1), bb_kv_u32(&b, "z", 2), bb_kv_str(&b, "y", "again");
    expect_bad(&b, "duplicate key", "duplicate key 'y' (keys 0 and 2)");
    bb_reset(&b);
    bb_header(&b, 3, 2, 0);
    bb_tensor(&b, "x", 1, ne16, BN_TYPE_F32, 0), bb_tensor(&b, "x", 1, ne16, BN_TYPE_F32, 64);
    bb_pad(&b, 32), bb_zeros(&b, 128);
    expect_bad(&b, "duplicate tensor", "duplicate tensor name 'x'");
    bb_reset(&b);
    bb_header(&b, 3, 1, 0);
    bb_tensor(&b, "", 1, ne16, BN_TYPE_F32, 0), bb_pad(&b, 32), bb_zeros(&b, 64);
    expect_bad(&b, "empty tensor name", "tensor 0: empty name");

    build_valid(&b, 3, 0);
    b.p[16] = 20; /* n_kv 18 -> 20: the tensor table is read as keys */
    expect_bad(&b, "n_kv too large", "hostile.gguf: ");

    static const uint32_t bad_align[] = {0, 3, 48};
    for (size_t i = 0; i < sizeof bad_align / sizeof bad_align[0]; i++) {
        bb_reset(&b);
        bb_header(&b, 3, 0, 1);
        bb_kv_u32(&b, "general.alignment", bad_align[i]);
        char label[64];
        snprintf(label, sizeof label, "alignment %u", (unsigned)bad_align[i]);
        expect_bad(&b, label, "expected a nonzero power of two");
    }
    bb_reset(&b);
    bb_header(&b, 3, 0, 1);
    bb_kv_str(&b, "general.alignment", "32");
    expect_bad(&b, "alignment as string", "key 'general.alignment' has type string, expected uint32");

    /* Too small to hold the header. */
    bb_reset(&b);
    expect_bad(&b, "empty buffer", "empty");
    bb_bytes(&b, "GGUF\x03", 5);
    expect_bad(&b, "5 bytes", "truncated");

    free(b.p);
}

/* ---- real files -------------------------------------------------------- */

static void test_vocab(const char *td)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", td);
    bn_gguf *g = NULL;
    enum bn_status st = bn_gguf_open(path, &g, err, sizeof err);
    CHECKF(st == BN_OK && g, "open %s: %s", path, err);
    if (st != BN_OK) return;
    CHECK(bn_gguf_version(g) == 3, "vocab: version 3");
    CHECK(bn_gguf_n_tensors(g) == 0, "vocab: 0 tensors");
    CHECK(strcmp(bn_gguf_name(g), path) == 0, "vocab: name is the path");
    struct bn_gguf_str model = {0};
    CHECK(bn_gguf_get_str(g, "tokenizer.ggml.model", &model, err, sizeof err) == BN_OK &&
              bn_gguf_str_eq(model, "gpt2"),
          "vocab: tokenizer.ggml.model == gpt2");
    const struct bn_gguf_kv *tok = NULL;
    bool found = false;
    st = bn_gguf_get_arr_opt(g, "tokenizer.ggml.tokens", BN_GGUF_STRING, &tok, &found, err, sizeof err);
    CHECKF(st == BN_OK && found && tok, "vocab: tokens array: %s", err);
    if (tok) {
        CHECKF(tok->arr_n == 128256, "vocab: %llu tokens", (unsigned long long)tok->arr_n);
        CHECK(tok->arr_str && bn_gguf_str_eq(tok->arr_str[0], "!"), "vocab: token 0 is '!'");
        CHECK(bn_gguf_str_eq(tok->arr_str[128000], "<|begin_of_text|>"), "vocab: token 128000");
    }
    uint32_t bos = 0;
    CHECK(bn_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &bos, err, sizeof err) == BN_OK && bos == 128000,
          "vocab: bos 128000");
    const struct bn_gguf_kv *merges = NULL;
    CHECK(bn_gguf_get_arr_opt(g, "tokenizer.ggml.merges", BN_GGUF_STRING, &merges, &found, err, sizeof err) ==
                  BN_OK &&
              found && merges->arr_n > 0,
          "vocab: merges");
    bn_gguf_close(g);
}

static void test_golden(const uint8_t *buf, size_t size, const char *path)
{
    char err[512];
    bn_gguf *g = NULL;
    enum bn_status st = bn_gguf_open(path, &g, err, sizeof err);
    CHECKF(st == BN_OK && g, "open %s: %s", path, err);
    if (st != BN_OK) return;
    CHECK(bn_gguf_n_tensors(g) == 35, "golden: 35 tensors");
    CHECK(bn_gguf_file_size(g) == size, "golden: file size");
    int64_t iq = bn_gguf_find_tensor(g, "blk.0.attn_q.weight");
    CHECK(iq >= 0, "golden: attn_q found");
    if (iq >= 0) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, iq);
        CHECK(t->type == BN_TYPE_I2_S && t->type == 36, "golden: attn_q is I2_S");
        CHECK(t->n_dims == 2 && t->ne[0] == 384 && t->ne[1] == 384, "golden: attn_q ne");
        CHECK(t->nbytes == 384 * 384 / 4 + 32, "golden: attn_q nbytes");
        CHECKF(t->offset == 247296, "golden: attn_q offset %llu", (unsigned long long)t->offset);
        /* The mapping holds the same bytes as the file. */
        uint64_t at = bn_gguf_data_offset(g) + t->offset;
        CHECK(at + t->nbytes <= size && memcmp(t->data, buf + at, (size_t)t->nbytes) == 0, "golden: attn_q data");
    }
    int64_t ie = bn_gguf_find_tensor(g, "token_embd.weight");
    if (ie >= 0) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, ie);
        CHECK(t->type == BN_TYPE_F16 && t->n_dims == 2 && t->ne[0] == 384 && t->ne[1] == 320 &&
                  t->nbytes == 384 * 320 * 2,
              "golden: token_embd F16 [384, 320]");
    } else {
        CHECK(0, "golden: token_embd found");
    }
    for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
        const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
        char name[128];
        snprintf(name, sizeof name, "%.*s", (int)t->name.len, t->name.data);
        CHECKF(bn_gguf_find_tensor(g, name) == i, "golden: find_tensor(%s)", name);
        CHECKF(((uintptr_t)t->data % 32) == 0, "golden: %s data aligned", name);
    }
    uint32_t n_layer = 0;
    CHECK(bn_gguf_get_u32(g, "bitnet-b1.58.block_count", &n_layer, err, sizeof err) == BN_OK && n_layer == 3,
          "golden: block_count 3");
    float eps = 0;
    CHECK(bn_gguf_get_f32(g, "bitnet-b1.58.attention.layer_norm_rms_epsilon", &eps, err, sizeof err) == BN_OK &&
              fabsf(eps - 1e-5f) < 1e-9f,
          "golden: rms epsilon 1e-5");
    struct bn_gguf_str s;
    st = bn_gguf_get_str(g, "bitnet-b1.58.block_count", &s, err, sizeof err);
    CHECKF(st == BN_ERR_MODEL && starts_with(err, path) &&
               strstr(err, ": key 'bitnet-b1.58.block_count' has type uint32, expected string"),
           "golden: block_count as string: %s", err);
    bn_gguf_close(g);
}

/* Every prefix up to the data offset, and a spread into the data, must fail
 * cleanly; each prefix is its own exact-size allocation for ASan. */
static void test_truncation(const uint8_t *buf, size_t size)
{
    char err[512];
    bn_gguf *g = NULL;
    if (bn_gguf_open_memory(buf, size, "t.gguf", &g, err, sizeof err) != BN_OK) {
        CHECKF(0, "truncation: full file fails: %s", err);
        return;
    }
    size_t data_off = (size_t)bn_gguf_data_offset(g);
    bn_gguf_close(g);
    int bad = 0;
    for (size_t len = 0; len < size; len += (len < data_off + 64 ? 1 : 4093)) {
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, buf, len);
        g = NULL;
        err[0] = '\0';
        enum bn_status st = bn_gguf_open_memory(copy, len, "t.gguf", &g, err, sizeof err);
        if (st != BN_ERR_MODEL || g != NULL || !starts_with(err, "t.gguf: ") || !one_line(err)) {
            if (bad++ < 5) CHECKF(0, "truncation at %zu: status %d, message '%s'", len, (int)st, err);
        }
        bn_gguf_close(g);
        free(copy);
    }
    CHECKF(bad == 0, "truncation: %d prefixes did not fail cleanly", bad);
    g = NULL;
    CHECK(bn_gguf_open_memory(buf, size, "t.gguf", &g, err, sizeof err) == BN_OK, "truncation: full file opens");
    bn_gguf_close(g);
}

static uint64_t xorshift64(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Random byte flips in the header and tensor table: each open either fails
 * cleanly or yields tensors that all lie inside the buffer. */
static void test_flips(uint8_t *buf, size_t size)
{
    char err[512];
    bn_gguf *g = NULL;
    if (bn_gguf_open_memory(buf, size, "f.gguf", &g, err, sizeof err) != BN_OK) return;
    size_t region = (size_t)bn_gguf_data_offset(g);
    bn_gguf_close(g);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int n_ok = 0, n_fail = 0, bad = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t pos[8];
        uint8_t old[8];
        int n = 1 + (int)(xorshift64(&seed) % 8);
        for (int k = 0; k < n; k++) {
            pos[k] = (size_t)(xorshift64(&seed) % region);
            old[k] = buf[pos[k]];
            buf[pos[k]] ^= (uint8_t)(1 + xorshift64(&seed) % 255);
        }
        g = NULL;
        err[0] = '\0';
        enum bn_status st = bn_gguf_open_memory(buf, size, "f.gguf", &g, err, sizeof err);
        if (st == BN_OK) {
            n_ok++;
            for (int64_t i = 0; i < bn_gguf_n_tensors(g); i++) {
                const struct bn_gguf_tensor *t = bn_gguf_tensor_at(g, i);
                if (t->data < buf || t->nbytes > size || (size_t)(t->data - buf) > size - t->nbytes) bad++;
            }
            for (int64_t i = 0; i < bn_gguf_n_kv(g); i++) {
                const struct bn_gguf_kv *kv = bn_gguf_kv_at(g, i);
                const uint8_t *k = (const uint8_t *)kv->key.data;
                if (k < buf || kv->key.len > size || (size_t)(k - buf) > size - kv->key.len) bad++;
            }
        } else {
            n_fail++;
            if (st != BN_ERR_MODEL || g != NULL || !one_line(err) || !starts_with(err, "f.gguf: ")) {
                if (bad++ < 5) CHECKF(0, "flip %d: status %d, message '%s'", iter, (int)st, err);
            }
        }
        bn_gguf_close(g);
        for (int k = n - 1; k >= 0; k--) buf[pos[k]] = old[k];
    }
    CHECKF(bad == 0, "flips: %d bad outcomes", bad);
    if (getenv("BN_TEST_VERBOSE")) printf("  flips over %zu header bytes: %d opened, %d failed\n", region, n_ok, n_fail);
    CHECKF(n_fail > 0, "flips: %d opened, %d failed", n_ok, n_fail);
}

static void test_paths(void)
{
    char err[512];
    bn_gguf *g = NULL;
    const char *missing = "/nonexistent-dir-bn/missing.gguf";
    enum bn_status st = bn_gguf_open(missing, &g, err, sizeof err);
    CHECKF(st == BN_ERR_IO && g == NULL && starts_with(err, missing) && one_line(err),
           "missing file: status %d, '%s'", (int)st, err);

    st = bn_gguf_open("/", &g, err, sizeof err);
    CHECKF(st == BN_ERR_IO && g == NULL, "directory: status %d, '%s'", (int)st, err);

    const char *tmpdir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/test_gguf_XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemp(path);
    CHECKF(fd >= 0, "mkstemp: %s", strerror(errno));
    if (fd < 0) return;
    st = bn_gguf_open(path, &g, err, sizeof err);
    CHECKF(st == BN_ERR_MODEL && g == NULL && starts_with(err, path) && strstr(err, "empty"),
           "empty file: status %d, '%s'", (int)st, err);
    CHECK(write(fd, "GGUF\x03\0\0\0", 8) == 8, "write short file");
    st = bn_gguf_open(path, &g, err, sizeof err);
    CHECKF(st == BN_ERR_MODEL && g == NULL && starts_with(err, path), "8-byte file: status %d, '%s'", (int)st, err);
    close(fd);
    unlink(path);
}

int main(void)
{
    test_valid_synthetic();
    test_hostile();
    test_paths();

    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("shared test data missing");
    test_vocab(td);
    char path[1024];
    snprintf(path, sizeof path, "%s/golden/i2s_bitnet_b158/model.gguf", td);
    size_t size = 0;
    uint8_t *buf = test_read_file(path, &size);
    CHECKF(buf != NULL, "read %s", path);
    if (buf) {
        test_golden(buf, size, path);
        test_truncation(buf, size);
        test_flips(buf, size);
        free(buf);
    }
    return test_report("test_gguf");
}
