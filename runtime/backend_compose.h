/*
 * backend_compose.h - the fused ops of runtime/backend.h written as the
 * sequences of primitive ops they stand for. A backend without a faster
 * form of a fused op (the CPU; the Vulkan backend for prefill) points its
 * iface entry at a function that calls these with its own primitive table,
 * so the sequence is written once and its results are the definition.
 */
#ifndef BN_BACKEND_COMPOSE_H
#define BN_BACKEND_COMPOSE_H

#include "backend.h"

void bn_compose_attn_qkv(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                         const struct bn_linear *wq, const struct bn_linear *wk, const struct bn_linear *wv,
                         const struct bn_rope_args *rope, const struct bn_attn_args *attn, bn_buf *q, bn_buf *k,
                         bn_buf *v, bn_buf *cache_k, bn_buf *cache_v);
void bn_compose_ffn_gate_up(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                            const struct bn_linear *w_gate, const struct bn_linear *w_up, enum bn_ffn_act act,
                            bn_buf *gate, bn_buf *up, bn_buf *out);
void bn_compose_matmul_residual(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                                const struct bn_linear *w, bn_buf *x);

#endif
