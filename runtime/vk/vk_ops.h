/*
 * vk_ops.h - op encoders: each op of runtime/backend.h as one or more
 * dispatches recorded into the stream, with its push constants, grid and
 * shader variant chosen here. Buffers come as device regions, weights as
 * their device copies (vk_weights.h).
 *
 *     struct bn_vk_ops o;
 *     bn_vk_ops_init(&o, dev, alloc, stream, err, len);
 *     bn_vk_op_quantize(&o, &x, n, width, norm_w, eps, &q, &qs);
 *     bn_vk_op_matmul(&o, w, 1.0f, &q, &qs, n, &out, false);
 *     ... bn_vk_stream_finish(stream, ...) ...
 *     bn_vk_ops_free(&o);
 *
 * Pipelines are created on first use (from the embedded SPIR-V, once).
 * Failures latch in the stream. Sizes and variants follow the device's
 * tuning (vk_tuning.h, BN_VK_TUNE). Environment: BN_VK_DISABLE_INTDOT=1
 * uses the plain-integer ternary shaders even where the device has the
 * packed integer dot product.
 */
#ifndef BN_VK_OPS_H
#define BN_VK_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "vk_memory.h"
#include "vk_pipeline.h"
#include "vk_stream.h"
#include "vk_tuning.h"
#include "vk_weights.h"

enum bn_vk_pipe {
    BN_VK_PIPE_EMBED_F16,
    BN_VK_PIPE_EMBED_F32,
    BN_VK_PIPE_RMSNORM,
    BN_VK_PIPE_QUANTIZE,
    BN_VK_PIPE_QUANTIZE_NORM,
    BN_VK_PIPE_MATVEC,
    BN_VK_PIPE_MATVEC_DOT,
    BN_VK_PIPE_MATMUL,
    BN_VK_PIPE_MATMUL_DOT,
    BN_VK_PIPE_ROPE,
    BN_VK_PIPE_KV_F16,
    BN_VK_PIPE_KV_F32,
    BN_VK_PIPE_ATTN_DECODE_F16,
    BN_VK_PIPE_ATTN_DECODE_F32,
    BN_VK_PIPE_ATTN_REDUCE,
    BN_VK_PIPE_ATTN_PREFILL_F16,
    BN_VK_PIPE_ATTN_PREFILL_F32,
    BN_VK_PIPE_FFN_ACT,
    BN_VK_PIPE_HEAD_F16,
    BN_VK_PIPE_HEAD_F32,
    BN_VK_PIPE_QUANTIZE_I16,
    BN_VK_PIPE_HEAD_Q8,
    BN_VK_PIPE_ARGMAX,
    BN_VK_PIPE_TOPK,
    BN_VK_PIPE_PROJ,
    BN_VK_PIPE_PROJ_DOT,
    BN_VK_PIPE_PROJ_GATE_UP,
    BN_VK_PIPE_PROJ_GATE_UP_DOT,
    BN_VK_PIPE_PROJ_QKV_F16,
    BN_VK_PIPE_PROJ_QKV_F16_DOT,
    BN_VK_PIPE_PROJ_QKV_F32,
    BN_VK_PIPE_PROJ_QKV_F32_DOT,
    BN_VK_PIPE_COUNT
};

/* RoPE frequencies for one (base, n_rot, freq_factors), on the device. */
struct bn_vk_rope_table {
    float base;
    uint32_t n_rot;
    const void *freq_factors;
    struct bn_vk_region r;
};

struct bn_vk_ops {
    const struct bn_vk_device *dev;
    bn_vk_allocator *alloc;
    bn_vk_stream *stream;
    struct bn_vk_pipeline pipes[BN_VK_PIPE_COUNT];
    struct bn_vk_tuning tune; /* the device's tuning (vk_tuning.h)              */
    uint32_t wg;             /* workgroup size of the specialized shaders        */
    uint32_t attn_tile;      /* floats per K/V tile of attn_prefill              */
    bool use_dot;            /* packed int8 dot product for the ternary shaders  */
    bool use_subgroup;       /* subgroup-arithmetic variants of the reductions   */
    uint32_t subgroup_size;  /* the size those run at (pinned); 0: not pinned    */
    uint32_t max_bindings;   /* storage buffers a shader may bind (both per-stage
                                and per-set limits); the fused qkv needs 12      */
    uint32_t group_seq;      /* hazard groups of multi-dispatch ops              */
    struct bn_vk_region dummy;   /* bound where an optional input is absent      */
    struct bn_vk_region scratch; /* decode attention splits                      */
    struct bn_vk_region topk_part; /* top-k partial results (pass 0 -> pass 1)   */
    struct bn_vk_region head_x16;  /* int8 head: int16 activations and scales    */
    struct bn_vk_rope_table *ropes;
    uint32_t n_ropes;
};

enum bn_status bn_vk_ops_init(struct bn_vk_ops *o, const struct bn_vk_device *dev, bn_vk_allocator *alloc,
                              bn_vk_stream *stream, char *err, size_t errlen);
/* Destroys pipelines and frees the ops' own buffers; the stream must be idle. */
void bn_vk_ops_free(struct bn_vk_ops *o);
/* Drops the tables made for a model (RoPE frequencies, keyed by its
 * freq_factors pointer): call when the model changes. */
void bn_vk_ops_forget_model(struct bn_vk_ops *o);

void bn_vk_op_embed(struct bn_vk_ops *o, const struct bn_vk_weight *table, const struct bn_vk_region *tokens,
                    uint32_t n_rows, const struct bn_vk_region *out);
void bn_vk_op_rmsnorm(struct bn_vk_ops *o, const struct bn_vk_region *x, uint32_t row0, uint32_t n_rows,
                      uint32_t width, const struct bn_vk_weight *w, float eps, const struct bn_vk_region *out);
void bn_vk_op_quantize(struct bn_vk_ops *o, const struct bn_vk_region *x, uint32_t n_rows, uint32_t width,
                       const struct bn_vk_weight *w, float eps, const struct bn_vk_region *q,
                       const struct bn_vk_region *q_scale);
void bn_vk_op_matmul(struct bn_vk_ops *o, const struct bn_vk_weight *w, float lin_scale, const struct bn_vk_region *q,
                     const struct bn_vk_region *q_scale, uint32_t n_rows, const struct bn_vk_region *out,
                     bool accumulate);
void bn_vk_op_rope(struct bn_vk_ops *o, const struct bn_vk_region *x, const struct bn_rope_args *a);
void bn_vk_op_kv_store(struct bn_vk_ops *o, const struct bn_vk_region *k, const struct bn_vk_region *v,
                       const struct bn_attn_args *a, const struct bn_vk_region *cache_k,
                       const struct bn_vk_region *cache_v);
void bn_vk_op_attention(struct bn_vk_ops *o, const struct bn_vk_region *q, const struct bn_vk_region *cache_k,
                        const struct bn_vk_region *cache_v, const struct bn_attn_args *a,
                        const struct bn_vk_region *out);
void bn_vk_op_ffn_act(struct bn_vk_ops *o, const struct bn_vk_region *gate, const struct bn_vk_region *up,
                      uint32_t n_rows, uint32_t width, enum bn_ffn_act act, const struct bn_vk_region *out);
void bn_vk_op_head(struct bn_vk_ops *o, const struct bn_vk_weight *w, const struct bn_vk_region *x, uint32_t n_rows,
                   const struct bn_vk_region *logits);
/* The int8 head (--head q8, a BN_VK_W_Q8 weight): the rows of x quantized
 * to int16, then the exact integer products scaled as the CPU's
 * bn_head_q8 does. bn_vk_head_q8_fits says whether rows of length k (a
 * multiple of 16) can run: a thread's int32 partial must not overflow. */
void bn_vk_op_head_q8(struct bn_vk_ops *o, const struct bn_vk_weight *w, const struct bn_vk_region *x,
                      uint32_t n_rows, const struct bn_vk_region *logits);
bool bn_vk_head_q8_fits(const struct bn_vk_ops *o, uint32_t k);
void bn_vk_op_argmax(struct bn_vk_ops *o, const struct bn_vk_region *logits, uint32_t n_rows, uint32_t n_vocab,
                     const struct bn_vk_region *ids);
/* Fused projections for decode, one dispatch each
 * (shaders/proj_t2_f32_f32.comp): the row x (n_rows 1, width = K of the
 * weights) rmsnorm'd with norm (NULL: none) and quantized in every
 * workgroup's prologue, then
 *   proj_residual: out += lin_scale * W x'
 *   proj_gate_up:  out = act(W_gate x') * (W_up x')
 *   proj_qkv:      q = rope(Wq x'); cache rows attn->pos0 <- rope(Wk x'), Wv x'
 * with the results of quantize + matmul (+ rope + kv_store, + ffn_act) bit
 * for bit. Each returns false, recording nothing, when the shapes are
 * outside what the fused shader holds (K above 8192, a weight split into
 * parts, mixed shapes) or the tuning turns fusion off: the caller then runs
 * the unfused ops. A failure (pipeline creation) latches and returns true. */
struct bn_vk_proj_in {
    const struct bn_vk_region *x;
    uint32_t width;
    const struct bn_vk_weight *norm; /* F32 vector or NULL */
    float eps;
};
bool bn_vk_op_proj_residual(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *w,
                            float lin_scale, const struct bn_vk_region *out);
bool bn_vk_op_proj_gate_up(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *w_gate,
                           float gate_scale, const struct bn_vk_weight *w_up, float up_scale, enum bn_ffn_act act,
                           const struct bn_vk_region *out);
bool bn_vk_op_proj_qkv(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *const w[3],
                       const float lin_scale[3], const struct bn_rope_args *rope, const struct bn_attn_args *attn,
                       const struct bn_vk_region *q, const struct bn_vk_region *cache_k,
                       const struct bn_vk_region *cache_v);

/* The k largest of the n_vocab logits of the one row at `logits`, best first
 * (see the backend's topk op); k in 1 .. min(BN_VK_TOPK_MAX, n_vocab). */
#define BN_VK_TOPK_MAX 256u
void bn_vk_op_topk(struct bn_vk_ops *o, const struct bn_vk_region *logits, uint32_t n_vocab, uint32_t k,
                   const struct bn_vk_region *ids, const struct bn_vk_region *vals);

/* Host-side RoPE frequency words (see shaders/rope_f32_f32.comp): for each
 * j < n_rot / 2, frac(inv_freq_j / 2pi) as a 64-bit fraction, low word
 * first. Exposed for tests. */
void bn_vk_rope_freqs(float base, uint32_t n_rot, const float *freq_factors, uint32_t *words);

#endif
