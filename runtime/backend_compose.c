/*
 * backend_compose.c - the fused ops as sequences of primitive ops (see
 * backend_compose.h). The order here is the contract every faster form of
 * these ops reproduces.
 */
#include "backend_compose.h"

static void quantize_in(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in)
{
    op->quantize(ctx, in->x, in->n_rows, in->width, in->norm, in->eps, in->xq, in->xq_scale);
}

void bn_compose_attn_qkv(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                         const struct bn_linear *wq, const struct bn_linear *wk, const struct bn_linear *wv,
                         const struct bn_rope_args *rope, const struct bn_attn_args *attn, bn_buf *q, bn_buf *k,
                         bn_buf *v, bn_buf *cache_k, bn_buf *cache_v)
{
    const uint32_t n = in->n_rows;
    quantize_in(op, ctx, in);
    op->matmul_ternary(ctx, wq, in->xq, in->xq_scale, n, q, false);
    op->matmul_ternary(ctx, wk, in->xq, in->xq_scale, n, k, false);
    op->matmul_ternary(ctx, wv, in->xq, in->xq_scale, n, v, false);
    struct bn_rope_args r = *rope;
    r.n_head = attn->n_head;
    op->rope(ctx, q, &r);
    r.n_head = attn->n_head_kv;
    op->rope(ctx, k, &r);
    op->kv_store(ctx, k, v, attn, cache_k, cache_v);
}

void bn_compose_ffn_gate_up(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                            const struct bn_linear *w_gate, const struct bn_linear *w_up, enum bn_ffn_act act,
                            bn_buf *gate, bn_buf *up, bn_buf *out)
{
    const uint32_t n = in->n_rows;
    quantize_in(op, ctx, in);
    op->matmul_ternary(ctx, w_gate, in->xq, in->xq_scale, n, gate, false);
    op->matmul_ternary(ctx, w_up, in->xq, in->xq_scale, n, up, false);
    op->ffn_act(ctx, gate, up, n, (uint32_t)w_gate->w->ne[1], act, out);
}

void bn_compose_matmul_residual(const struct bn_backend_i *op, void *ctx, const struct bn_proj_in *in,
                                const struct bn_linear *w, bn_buf *x)
{
    quantize_in(op, ctx, in);
    op->matmul_ternary(ctx, w, in->xq, in->xq_scale, in->n_rows, x, true);
}
