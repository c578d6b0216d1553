/*
 * tensor_types.h - ggml tensor type ids as they appear in GGUF files, with
 * their block geometry, so the reader can size every tensor it meets (even one
 * the engine cannot run) and the model binder can name unsupported types.
 *
 * Sizes: a row of ne0 elements of a block type takes ne0/block * block_bytes
 * bytes (ne0 must be a multiple of block). I2_S is the exception: the whole
 * tensor is one stream of 2-bit codes plus a 32-byte tail holding the float
 * scale, n/4 + 32 bytes (bitnet.cpp's layout).
 */
#ifndef BN_TENSOR_TYPES_H
#define BN_TENSOR_TYPES_H

#include <stdbool.h>
#include <stdint.h>

enum bn_type {
    BN_TYPE_F32 = 0,
    BN_TYPE_F16 = 1,
    BN_TYPE_Q4_0 = 2,
    BN_TYPE_Q4_1 = 3,
    BN_TYPE_Q5_0 = 6,
    BN_TYPE_Q5_1 = 7,
    BN_TYPE_Q8_0 = 8,
    BN_TYPE_Q8_1 = 9,
    BN_TYPE_Q2_K = 10,
    BN_TYPE_Q3_K = 11,
    BN_TYPE_Q4_K = 12,
    BN_TYPE_Q5_K = 13,
    BN_TYPE_Q6_K = 14,
    BN_TYPE_Q8_K = 15,
    BN_TYPE_IQ2_XXS = 16,
    BN_TYPE_IQ2_XS = 17,
    BN_TYPE_IQ3_XXS = 18,
    BN_TYPE_IQ1_S = 19,
    BN_TYPE_IQ4_NL = 20,
    BN_TYPE_IQ3_S = 21,
    BN_TYPE_IQ2_S = 22,
    BN_TYPE_IQ4_XS = 23,
    BN_TYPE_I8 = 24,
    BN_TYPE_I16 = 25,
    BN_TYPE_I32 = 26,
    BN_TYPE_I64 = 27,
    BN_TYPE_F64 = 28,
    BN_TYPE_IQ1_M = 29,
    BN_TYPE_BF16 = 30,
    BN_TYPE_TQ1_0 = 34,
    BN_TYPE_TQ2_0 = 35,
    BN_TYPE_I2_S = 36,
    BN_TYPE_COUNT = 40 /* ids >= this are unknown */
};

/* Block sizes of the ternary formats (see kernels_cpu/formats.h). */
#define BN_I2S_BLOCK 128   /* weights per I2_S block (32 bytes)      */
#define BN_I2S_TAIL 32     /* bytes after the codes; first 4: scale  */
#define BN_TQ_BLOCK 256    /* weights per TQ1_0 / TQ2_0 block         */
#define BN_TQ1_0_BYTES 54
#define BN_TQ2_0_BYTES 66

struct bn_type_traits {
    const char *name;     /* "f16", "tq2_0", ...; NULL for unknown ids */
    uint32_t block;       /* elements per block                        */
    uint32_t block_bytes; /* bytes per block                           */
};

/* Traits of a type id; returns NULL for an id that is not a known type. */
const struct bn_type_traits *bn_type_traits(uint32_t type);

/* Name of a type id, or "unknown" (never NULL). */
const char *bn_type_name(uint32_t type);

/* True for I2_S, TQ1_0, TQ2_0. */
bool bn_type_is_ternary(uint32_t type);

/* Bytes of a tensor with n_dims dims ne[0..n_dims-1] (ne[0] fastest).
 * Returns false when the type is unknown, ne[0] is not a multiple of the
 * block size, or the size overflows 64 bits. */
bool bn_type_tensor_bytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *bytes);

#endif
