/*
 * vk_push.h - the push constants of every shader family, as C structs.
 *
 * Keep in sync with shaders/common/push.glsl: same members, same order. All
 * members are 32-bit, so the GLSL std430 push block packs them exactly as C
 * does; the sizes below are asserted so a member added on one side only is
 * caught by the compiler, and the dispatch helper checks the size passed
 * against the pipeline record.
 */
#ifndef BN_VK_PUSH_H
#define BN_VK_PUSH_H

#include <stdint.h>

struct bn_pc_embed {
    uint32_t n_rows;    /* tokens                              */
    uint32_t width;     /* row length (elements)               */
    uint32_t row0;      /* first table row of the bound part   */
    uint32_t part_rows; /* rows of the bound part              */
};
_Static_assert(sizeof(struct bn_pc_embed) == 16, "keep in sync with shaders/common/push.glsl");

struct bn_pc_norm {
    uint32_t n_rows;
    uint32_t width;
    uint32_t row0;  /* first input row (rmsnorm); 0 for quantize */
    uint32_t has_w; /* multiply by the norm weight                */
    float eps;
};
_Static_assert(sizeof(struct bn_pc_norm) == 20, "keep in sync with shaders/common/push.glsl");

struct bn_pc_matmul {
    uint32_t n_tok;       /* activation rows                              */
    uint32_t k_words;     /* K / 16                                       */
    uint32_t n_rows;      /* weight rows of the bound part                */
    uint32_t row0;        /* output column of the part's first row        */
    uint32_t out_stride;  /* N of the whole matrix                        */
    uint32_t nb;          /* 256-weight blocks per row                    */
    uint32_t per_block;   /* TQ block scales (1) or one I2_S scale (0)    */
    uint32_t accumulate;  /* out += y                                     */
    float w_scale;        /* I2_S tensor scale                            */
    float lin_scale;      /* per-layer scale tensor, else 1               */
    uint32_t rows_per_wg; /* matvec only                                  */
};
_Static_assert(sizeof(struct bn_pc_matmul) == 44, "keep in sync with shaders/common/push.glsl");

struct bn_pc_rope {
    uint32_t n_rows;
    uint32_t n_head;
    uint32_t head_dim;
    uint32_t n_rot;
    uint32_t pos0;
    uint32_t neox;
};
_Static_assert(sizeof(struct bn_pc_rope) == 24, "keep in sync with shaders/common/push.glsl");

struct bn_pc_kv {
    uint32_t n_rows;
    uint32_t width; /* n_head_kv * head_dim */
    uint32_t pos0;
};
_Static_assert(sizeof(struct bn_pc_kv) == 12, "keep in sync with shaders/common/push.glsl");

struct bn_pc_attn {
    uint32_t n_rows;
    uint32_t pos0;
    uint32_t n_head;
    uint32_t group;    /* query heads per kv head                        */
    uint32_t head_dim;
    uint32_t kv_width; /* cache row length                               */
    uint32_t chunk;    /* decode: positions per split; prefill: keys per tile */
    uint32_t n_split;  /* decode: splits per head                        */
    float scale;       /* 1 / sqrt(head_dim)                             */
};
_Static_assert(sizeof(struct bn_pc_attn) == 36, "keep in sync with shaders/common/push.glsl");

struct bn_pc_act {
    uint32_t width;
    uint32_t n_rows;
    uint32_t act; /* 0: relu^2, 1: silu */
};
_Static_assert(sizeof(struct bn_pc_act) == 12, "keep in sync with shaders/common/push.glsl");

struct bn_pc_head {
    uint32_t n_tok;
    uint32_t k;          /* row length (a multiple of 8)       */
    uint32_t n_rows;     /* table rows of the bound part       */
    uint32_t row0;       /* output column of the part's first row */
    uint32_t out_stride; /* n_vocab                            */
};
_Static_assert(sizeof(struct bn_pc_head) == 20, "keep in sync with shaders/common/push.glsl");

struct bn_pc_argmax {
    uint32_t n_rows;
    uint32_t n_vocab;
};
_Static_assert(sizeof(struct bn_pc_argmax) == 8, "keep in sync with shaders/common/push.glsl");

struct bn_pc_topk {
    uint32_t n_vocab;
    uint32_t k;       /* 1 .. min(BN_VK_TOPK_MAX, n_vocab)        */
    uint32_t chunk;   /* vocabulary entries per pass-0 workgroup */
    uint32_t n_parts; /* pass-0 workgroups                       */
    uint32_t pass;    /* 0: per slice, 1: merge                  */
};
_Static_assert(sizeof(struct bn_pc_topk) == 20, "keep in sync with shaders/common/push.glsl");

struct bn_pc_proj {
    uint32_t width;        /* input row length K                         */
    uint32_t k_words;      /* K / 16                                     */
    uint32_t nb;           /* 256-weight blocks per row                  */
    uint32_t norm;         /* rmsnorm the row first                      */
    float eps;
    uint32_t rows_per_wg;  /* weight rows per workgroup and segment      */
    uint32_t seg_rows[3];  /* rows of each segment's weight              */
    uint32_t per_block;    /* bit s: segment s has TQ block scales       */
    float w_scale[3];      /* I2_S tensor scale per segment              */
    float lin_scale[3];    /* per-layer scale per segment                */
    uint32_t head_dim;     /* qkv                                        */
    uint32_t n_rot;        /* qkv                                        */
    uint32_t pos;          /* qkv: position of the token                 */
    uint32_t neox;         /* qkv                                        */
    uint32_t act;          /* gate_up: 0 relu^2, 1 silu                  */
};
_Static_assert(sizeof(struct bn_pc_proj) == 84, "keep in sync with shaders/common/push.glsl");

#endif
