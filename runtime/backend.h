/*
 * backend.h - the interface every compute backend implements (CPU, Vulkan).
 *
 * A backend is a table of ops held by value plus a context pointer. The engine
 * (runtime/engine.c) writes the forward pass once in terms of these ops and
 * knows nothing of SIMD or Vulkan. Buffers are opaque handles (struct bn_buf,
 * defined by each backend): host memory on the CPU, device memory on a GPU.
 * Weights are the model's tensors; a backend keeps whatever repacked copy it
 * needs, keyed by bn_tensor.index, after upload_weights().
 *
 * Call sequence:
 *     bn_backend_cpu_create(&be, opts, err, len);       (or backend_select)
 *     be.iface.supports(be.ctx, model, why, len);       -> BN_OK or a reason
 *     be.iface.upload_weights(be.ctx, model, err, len);
 *     b = be.iface.buf_alloc(be.ctx, bytes, err, len);
 *     ... ops ...                      (recorded or run at once)
 *     be.iface.synchronize(be.ctx, err, len);           -> first error of the ops
 *     be.iface.buf_read(be.ctx, b, 0, host, bytes, err, len);
 *     be.iface.destroy(be.ctx);
 *
 * Ops do not return a status: a backend that records them (Vulkan) latches
 * the first failure and reports it from synchronize(); the engine calls
 * synchronize() once per forward pass. Ops may run asynchronously: host
 * memory passed to buf_write may be reused as soon as buf_write returns, and
 * results are visible to buf_read (which synchronizes first).
 *
 * Layouts: activations are row-major float32 [n_rows][width], one row per
 * token. Quantized activations are int8 [n_rows][width] plus one float32
 * scale per row (s = 127 / max|x|, DESIGN.md section 5). The KV cache of one
 * layer is [n_ctx][n_head_kv * head_dim] of the cache type.
 */
#ifndef BN_BACKEND_H
#define BN_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "status.h"

typedef struct bn_buf bn_buf;

enum bn_kv_type { BN_KV_F16, BN_KV_F32 };

/* Attention over the cache for a batch of n_rows consecutive positions
 * pos0 .. pos0 + n_rows - 1: row t sees cache positions 0 .. pos0 + t. */
struct bn_attn_args {
    uint32_t n_rows;
    uint32_t pos0;
    uint32_t n_head;
    uint32_t n_head_kv;  /* query head h reads kv head h / (n_head / n_head_kv) */
    uint32_t head_dim;
    uint32_t n_ctx;      /* rows of the cache buffers                         */
    enum bn_kv_type kv_type;
};

struct bn_rope_args {
    uint32_t n_rows;
    uint32_t pos0;       /* row t is at position pos0 + t                       */
    uint32_t n_head;     /* heads in the row (row width = n_head * head_dim)    */
    uint32_t head_dim;
    uint32_t n_rot;      /* rotated dims per head (<= head_dim)                 */
    float base;
    enum bn_rope_kind kind;
    const struct bn_tensor *freq_factors; /* (optional) [n_rot/2] divisors of theta */
};

/* The int8 input of ternary projections: rows of x, after rmsnorm with norm
 * (when not NULL), quantized once into xq / xq_scale as the quantize op does.
 * Several projections of the same input (q, k, v; gate, up) share it. */
struct bn_proj_in {
    const bn_buf *x;
    uint32_t n_rows;
    uint32_t width;
    const struct bn_tensor *norm; /* (optional) rmsnorm weight; NULL: quantize x as is */
    float eps;
    bn_buf *xq;                   /* int8 [n_rows][width]: scratch of the op          */
    bn_buf *xq_scale;             /* [n_rows]: scratch of the op                       */
};

struct bn_backend_i {
    /* name for messages: "cpu", "vulkan" */
    const char *name;
    /* frees everything the backend owns, buffers included; accepts NULL ctx */
    void (*destroy)(void *ctx);
    /* BN_OK if this backend can run the model, else BN_ERR_DEVICE and the reason */
    enum bn_status (*supports)(void *ctx, const struct bn_model *m, char *err, size_t errlen);
    /* makes the model's tensors usable by the ops (repack, upload); the model
     * must outlive the backend's use of it */
    enum bn_status (*upload_weights)(void *ctx, const struct bn_model *m, char *err, size_t errlen);

    /* buffers: zero-filled on allocation; NULL on failure with err set */
    bn_buf *(*buf_alloc)(void *ctx, size_t bytes, char *err, size_t errlen);
    void (*buf_free)(void *ctx, bn_buf *b); /* accepts NULL */
    void (*buf_write)(void *ctx, bn_buf *dst, size_t offset, const void *src, size_t bytes);
    /* synchronizes, then copies out */
    enum bn_status (*buf_read)(void *ctx, const bn_buf *src, size_t offset, void *dst, size_t bytes,
                               char *err, size_t errlen);

    /* out[t] = row tokens[t] of the table (any embedding type), as float32 */
    void (*embed)(void *ctx, const struct bn_tensor *table, const bn_buf *tokens /* int32 */,
                  uint32_t n_rows, bn_buf *out);
    /* out[t] = x[row0 + t] / sqrt(mean(x^2) + eps) * w, t < n_rows */
    void (*rmsnorm)(void *ctx, const bn_buf *x, uint32_t row0, uint32_t n_rows, uint32_t width,
                    const struct bn_tensor *w, float eps, bn_buf *out);
    /* per-row int8 quantization of x (after rmsnorm with w when w != NULL):
     * q[t] = round_half_even(x'[t] * s[t]) clamped to int8, s[t] = 127 / max(1e-5, max|x'[t]|) */
    void (*quantize)(void *ctx, const bn_buf *x, uint32_t n_rows, uint32_t width,
                     const struct bn_tensor *w /* optional norm weight */, float eps,
                     bn_buf *q, bn_buf *q_scale);
    /* out[t] (+)= lin.scale * (W q[t]) * w_scale / s[t]: the exact int32 ternary
     * dot, then float scaling (per tensor for I2_S, per 256-block for TQ).
     * accumulate: add into out (residual connections) instead of storing. */
    void (*matmul_ternary)(void *ctx, const struct bn_linear *lin, const bn_buf *q, const bn_buf *q_scale,
                           uint32_t n_rows, bn_buf *out, bool accumulate);
    /* rotates q (or k) in place */
    void (*rope)(void *ctx, bn_buf *x, const struct bn_rope_args *a);
    /* cache rows pos0 .. pos0 + n_rows - 1 of layer cache k/v <- k/v rows */
    void (*kv_store)(void *ctx, const bn_buf *k, const bn_buf *v, const struct bn_attn_args *a,
                     bn_buf *cache_k, bn_buf *cache_v);
    /* out[t] = softmax(q[t] K^T / sqrt(head_dim), causal) V per head */
    void (*attention)(void *ctx, const bn_buf *q, const bn_buf *cache_k, const bn_buf *cache_v,
                      const struct bn_attn_args *a, bn_buf *out);
    /* out = act(gate) * up, act = relu^2 or silu */
    void (*ffn_act)(void *ctx, const bn_buf *gate, const bn_buf *up, uint32_t n_rows, uint32_t width,
                    enum bn_ffn_act act, bn_buf *out);
    /* logits[t] = W x[t] for a float head W [n_embd, n_vocab] (F32/F16/BF16/Q8_0/Q6_K),
     * float32 accumulation */
    void (*head)(void *ctx, const struct bn_tensor *w, const bn_buf *x, uint32_t n_rows, bn_buf *logits);
    /* (optional, may be NULL) out_ids[t] (int32) = index of the largest of the n_vocab
     * logits of row t, the lowest index on ties: greedy decoding then reads back one id
     * per token instead of the logits. When NULL the engine reads the logits and takes
     * the argmax on the host. */
    void (*argmax)(void *ctx, const bn_buf *logits, uint32_t n_rows, uint32_t n_vocab, bn_buf *out_ids);
    /* (optional, may be NULL) the k largest of the n_vocab logits of the one row at
     * `logits` (the last row of a forward pass), 1 <= k <= min(256, n_vocab):
     * out_ids int32[k] and out_vals float[k], sorted by value descending, the lower id
     * first among equal values (the sampler's candidate order, runtime/sampler.c).
     * NaN counts as -inf and +inf as FLT_MAX, in the order and in out_vals; other
     * values come back bit-exact. Sampling with top-k then reads back 2k numbers per
     * token instead of the logits. When NULL the engine reads the logits and selects
     * on the host (bn_engine_eval_topk). */
    void (*topk)(void *ctx, const bn_buf *logits, uint32_t n_vocab, uint32_t k, bn_buf *out_ids,
                 bn_buf *out_vals);

    /* Fused ops. Each one's results are those of a fixed sequence of the ops
     * above, bit for bit: a backend may run it as that sequence (the CPU does)
     * or in fewer passes (the Vulkan decode path: the quantization in the
     * prologue of the matmul, rope, KV store or the activation in its
     * epilogue). Buffers the sequence uses only in between (in->xq and
     * in->xq_scale, and those marked scratch) hold unspecified values after.
     *
     * attn_qkv: quantize(in); q, k, v = matmul_ternary(wq, wk, wv); rope(q)
     * with attn->n_head heads and rope(k) with attn->n_head_kv (rope->n_head
     * is not read); kv_store(k, v) into cache rows attn->pos0 ... Results: q
     * and the cache rows; k and v are scratch. */
    void (*attn_qkv)(void *ctx, const struct bn_proj_in *in, const struct bn_linear *wq, const struct bn_linear *wk,
                     const struct bn_linear *wv, const struct bn_rope_args *rope, const struct bn_attn_args *attn,
                     bn_buf *q, bn_buf *k, bn_buf *v, bn_buf *cache_k, bn_buf *cache_v);
    /* ffn_gate_up: quantize(in); gate, up = matmul_ternary(w_gate, w_up);
     * out = ffn_act(gate, up). Result: out; gate and up are scratch. */
    void (*ffn_gate_up)(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w_gate,
                        const struct bn_linear *w_up, enum bn_ffn_act act, bn_buf *gate, bn_buf *up, bn_buf *out);
    /* matmul_residual: quantize(in); x += matmul_ternary(w) (accumulate).
     * The output projections of both blocks. */
    void (*matmul_residual)(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w, bn_buf *x);

    /* waits for all recorded ops; returns the first failure since the last call */
    enum bn_status (*synchronize)(void *ctx, char *err, size_t errlen);
};

struct bn_backend {
    struct bn_backend_i iface;
    void *ctx;
};

/* CPU backend (runtime/backend_cpu.c, runtime/backend_cpu.h). */
struct bn_backend_cpu_opts {
    int n_threads;                  /* 0 = the physical cores                                   */
    bool head_q8;                   /* --head q8: an int8 copy of the head (per-row scale), made
                                       at load; reads half the bytes of an F16 head per token.
                                       bn_backend_select passes it to a Vulkan backend too       */
    const char *isa;                /* (optional) kernel set: "scalar", "avx2", "avx512", "neon",
                                       "neon-dotprod"; NULL or "auto" = the best (or BITNET_CPU) */
    struct bn_cpu_profile *profile; /* (optional) filled with the kernels in use and per-op times */
    bool gpu_profile;               /* bn_backend_select: a Vulkan backend times each dispatch with
                                       timestamp queries (bn_backend_vk_get_profile); the CPU
                                       backend ignores it                                        */
};
enum bn_status bn_backend_cpu_create(struct bn_backend *out, const struct bn_backend_cpu_opts *opts,
                                     char *err, size_t errlen);

/* Picks a backend from a preference string: "auto", "cpu", "vulkan",
 * "vulkan:N". With "auto" a backend that is missing or cannot run the model
 * is skipped and the reason written to note (one line, may be empty), then the
 * CPU is used. A named device that cannot be used is an error (BN_ERR_DEVICE
 * or BN_ERR_USAGE for a malformed name). */
enum bn_status bn_backend_select(const char *pref, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                                 struct bn_backend *out, char *note, size_t note_len, char *err, size_t errlen);

/* Whether bn_backend_select could open pref, short of the model: the name is
 * well formed (else BN_ERR_USAGE) and a Vulkan name finds a usable device
 * with valid BN_VK_* settings (else BN_ERR_DEVICE or BN_ERR_USAGE, with the
 * reason), so a command that opens several devices in turn can refuse a bad
 * one before it spends minutes on the others. "auto" and "cpu" always pass.
 * *vk_index is the Vulkan device the name comes to, -1 for the CPU ("auto"
 * without a GPU), so two names of one device can be told apart; "auto" may
 * still land on the CPU later, when its GPU cannot run the model. */
enum bn_status bn_backend_check_device(const char *pref, int *vk_index, char *err, size_t errlen);

#endif
