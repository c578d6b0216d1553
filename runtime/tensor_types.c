#include "tensor_types.h"

#include <stddef.h>

/* Geometry of the ggml types, as published in ggml's type table. Only sizes
 * are needed here: they let the reader validate files holding types the
 * engine does not run, so the model binder can name the type it rejects. */
static const struct bn_type_traits traits[BN_TYPE_COUNT] = {
    [BN_TYPE_F32] = {"f32", 1, 4},
    [BN_TYPE_F16] = {"f16", 1, 2},
    [BN_TYPE_Q4_0] = {"q4_0", 32, 18},
    [BN_TYPE_Q4_1] = {"q4_1", 32, 20},
    [BN_TYPE_Q5_0] = {"q5_0", 32, 22},
    [BN_TYPE_Q5_1] = {"q5_1", 32, 24},
    [BN_TYPE_Q8_0] = {"q8_0", 32, 34},
    [BN_TYPE_Q8_1] = {"q8_1", 32, 36},
    [BN_TYPE_Q2_K] = {"q2_k", 256, 84},
    [BN_TYPE_Q3_K] = {"q3_k", 256, 110},
    [BN_TYPE_Q4_K] = {"q4_k", 256, 144},
    [BN_TYPE_Q5_K] = {"q5_k", 256, 176},
    [BN_TYPE_Q6_K] = {"q6_k", 256, 210},
    [BN_TYPE_Q8_K] = {"q8_k", 256, 292},
    [BN_TYPE_IQ2_XXS] = {"iq2_xxs", 256, 66},
    [BN_TYPE_IQ2_XS] = {"iq2_xs", 256, 74},
    [BN_TYPE_IQ3_XXS] = {"iq3_xxs", 256, 98},
    [BN_TYPE_IQ1_S] = {"iq1_s", 256, 50},
    [BN_TYPE_IQ4_NL] = {"iq4_nl", 32, 18},
    [BN_TYPE_IQ3_S] = {"iq3_s", 256, 110},
    [BN_TYPE_IQ2_S] = {"iq2_s", 256, 82},
    [BN_TYPE_IQ4_XS] = {"iq4_xs", 256, 136},
    [BN_TYPE_I8] = {"i8", 1, 1},
    [BN_TYPE_I16] = {"i16", 1, 2},
    [BN_TYPE_I32] = {"i32", 1, 4},
    [BN_TYPE_I64] = {"i64", 1, 8},
    [BN_TYPE_F64] = {"f64", 1, 8},
    [BN_TYPE_IQ1_M] = {"iq1_m", 256, 56},
    [BN_TYPE_BF16] = {"bf16", 1, 2},
    [BN_TYPE_TQ1_0] = {"tq1_0", BN_TQ_BLOCK, BN_TQ1_0_BYTES},
    [BN_TYPE_TQ2_0] = {"tq2_0", BN_TQ_BLOCK, BN_TQ2_0_BYTES},
    /* I2_S rows are 128-weight blocks of 32 bytes, but the tensor carries a
     * 32-byte tail: bn_type_tensor_bytes special-cases it. */
    [BN_TYPE_I2_S] = {"i2_s", BN_I2S_BLOCK, 32},
};

const struct bn_type_traits *bn_type_traits(uint32_t type)
{
    if (type >= BN_TYPE_COUNT || traits[type].name == NULL) return NULL;
    return &traits[type];
}

const char *bn_type_name(uint32_t type)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    return t ? t->name : "unknown";
}

bool bn_type_is_ternary(uint32_t type)
{
    return type == BN_TYPE_I2_S || type == BN_TYPE_TQ1_0 || type == BN_TYPE_TQ2_0;
}

bool bn_type_tensor_bytes(uint32_t type, const uint64_t *ne, uint32_t n_dims, uint64_t *bytes)
{
    const struct bn_type_traits *t = bn_type_traits(type);
    if (t == NULL || n_dims == 0) return false;
    if (ne[0] % t->block != 0) return false;
    uint64_t rows = 1;
    for (uint32_t i = 1; i < n_dims; i++) {
        if (ne[i] != 0 && rows > UINT64_MAX / ne[i]) return false;
        rows *= ne[i];
    }
    uint64_t blocks_per_row = ne[0] / t->block;
    if (blocks_per_row != 0 && rows > UINT64_MAX / blocks_per_row) return false;
    uint64_t blocks = blocks_per_row * rows;
    if (blocks != 0 && t->block_bytes > UINT64_MAX / blocks) return false;
    uint64_t n = blocks * t->block_bytes;
    if (type == BN_TYPE_I2_S) {
        if (n > UINT64_MAX - BN_I2S_TAIL) return false;
        n += BN_I2S_TAIL;
    }
    *bytes = n;
    return true;
}
