/*
 * vk_weights.h - the model's tensors on the device, in the layouts the
 * shaders read, split into row ranges ("parts") that each fit one
 * storage-buffer binding.
 *
 *     struct bn_vk_weights ws;
 *     bn_vk_weights_upload(&ws, model, alloc, transfer, err, len);
 *     const struct bn_vk_weight *w = bn_vk_weights_get(&ws, tensor);  // by bn_tensor.index
 *     for (uint32_t p = 0; p < w->n_parts; p++) ... w->parts[p].data ...
 *     bn_vk_weights_free(&ws, alloc);
 *
 * Ternary matrices (I2_S, TQ1_0, TQ2_0) become one layout: 2-bit codes, 16
 * per uint32, rows contiguous (see shaders/common/ternary.glsl for the bit
 * order), with their scales: the I2_S tensor scale as a float, or the TQ
 * per-256-block d widened to float [rows][blocks]. Float tables (embedding,
 * head) stay F16, or become F32 (F32 as is; BF16, Q8_0 and Q6_K widened
 * exactly, row by row, by the scalar reference's own conversion). Norm
 * weights are F32 vectors.
 */
#ifndef BN_VK_WEIGHTS_H
#define BN_VK_WEIGHTS_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"
#include "vk_memory.h"

enum bn_vk_weight_kind {
    BN_VK_W_NONE = 0,
    BN_VK_W_TERNARY,
    BN_VK_W_F16, /* table rows of halves */
    BN_VK_W_F32, /* table rows or a vector of floats */
    BN_VK_W_Q8,  /* int8 table rows, a float scale per row (--head q8) */
};

/* One row range of a tensor, bound as one descriptor each. */
struct bn_vk_part {
    uint32_t row0, n_rows;
    struct bn_vk_region data;   /* codes, or table rows                      */
    struct bn_vk_region scales; /* TQ block scales, Q8 row scales; else empty */
};

struct bn_vk_weight {
    enum bn_vk_weight_kind kind;
    uint32_t k;        /* row length (ne0)                        */
    uint32_t n;        /* rows (ne1; 1 for vectors)               */
    uint32_t k_words;  /* ternary: K / 16                         */
    uint32_t nb;       /* ternary: 256-weight blocks per row      */
    bool per_block;    /* ternary: TQ block scales                */
    float w_scale;     /* ternary: the I2_S tensor scale          */
    uint32_t n_parts;
    struct bn_vk_part *parts;
};

struct bn_vk_weights {
    uint32_t n;               /* model tensors                    */
    struct bn_vk_weight *w;   /* [n], kind NONE for unused ones   */
    uint64_t bytes;           /* device bytes of all parts        */
    /* --head q8: an int8 copy of the head (kind Q8; NONE without it) and
     * the tensor it stands for. */
    struct bn_vk_weight head_q8;
    const struct bn_tensor *head_q8_of;
};

/* Limits of one part, from the device: bytes per binding and rows per
 * dispatch. */
struct bn_vk_part_limits {
    uint64_t max_bytes;
    uint32_t max_rows;
};

/* Repacks and uploads every tensor the forward pass reads; with head_q8
 * the head as its int8 copy (ws->head_q8) instead of its table, which is
 * uploaded only when it is also the embedding. BN_ERR_MODEL for a tensor
 * the device layouts cannot hold (e.g. one row bigger than a binding),
 * BN_ERR_DEVICE / BN_ERR_NOMEM for memory. On failure what was uploaded is
 * freed. */
enum bn_status bn_vk_weights_upload(struct bn_vk_weights *ws, const struct bn_model *m, bool head_q8,
                                    bn_vk_allocator *a, bn_vk_transfer *t, const struct bn_vk_part_limits *lim,
                                    char *err, size_t errlen);
void bn_vk_weights_free(struct bn_vk_weights *ws, bn_vk_allocator *a);


/* The device copy of a model tensor, or NULL when it was not uploaded. */
const struct bn_vk_weight *bn_vk_weights_get(const struct bn_vk_weights *ws, const struct bn_tensor *t);

/* Device bytes the model's tensors will take (before block rounding), as
 * bn_vk_weights_upload with head_q8 uploads them. */
uint64_t bn_vk_weights_estimate(const struct bn_model *m, bool head_q8);

/* The GPU code word layout, for tests: packs 16 codes (0..3) of weights
 * 16w .. 16w + 15 into word w. */
uint32_t bn_vk_pack_codes16(const uint8_t codes[16]);

#endif
