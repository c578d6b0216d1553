/*
 * The BitNet b1.58 forward pass, written once (DESIGN.md section 5). Each
 * step is one backend op; the engine holds the activation buffers and the
 * KV cache and knows nothing of how the ops run.
 */
#include "engine.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct bn_engine {
    const struct bn_model *m;
    struct bn_backend *be;
    struct bn_engine_params p;
    uint32_t pos;             /* tokens in the KV cache                          */
    uint32_t logit_rows;      /* rows the logits buffer holds                    */

    /* Activations for up to n_batch tokens, row-major [token][width]. */
    bn_buf *tokens;           /* int32 [n_batch]                                 */
    bn_buf *x;                /* [n_batch, n_embd]  the residual stream          */
    bn_buf *xq;               /* int8 [n_batch, max(n_embd, q width, n_ff)]      */
    bn_buf *xq_scale;         /* [n_batch] activation scale s per token          */
    bn_buf *q, *k, *v;        /* [n_batch, n_head * hd], [n_batch, n_kv * hd] x2 */
    bn_buf *attn;             /* [n_batch, n_head * hd]                          */
    bn_buf *gate, *up, *ffn;  /* [n_batch, n_ff]                                 */
    bn_buf *xn;               /* [n_batch, n_embd]  final-norm rows for the head */
    bn_buf *logits;           /* [logit_rows, n_vocab]                           */
    bn_buf *ids;              /* int32 [1]: the greedy token (backend argmax op) */
    bn_buf *top_ids;          /* int32 [BN_ENGINE_TOPK_MAX] (backend topk op)    */
    bn_buf *top_vals;         /* float [BN_ENGINE_TOPK_MAX]                      */
    float *host_logits;       /* [n_vocab] when a backend lacks argmax or topk:
                                 the host then selects from these, each token  */
    bn_buf **cache_k;         /* per layer [n_ctx, n_kv * hd]                    */
    bn_buf **cache_v;
};

struct bn_engine_params bn_engine_default_params(void)
{
    return (struct bn_engine_params){.n_ctx = 0, .n_batch = 512, .kv_type = BN_KV_F16};
}

static size_t max3(size_t a, size_t b, size_t c)
{
    size_t m = a > b ? a : b;
    return m > c ? m : c;
}

static enum bn_status alloc_buf(bn_engine *e, bn_buf **out, size_t bytes, char *err, size_t errlen)
{
    *out = e->be->iface.buf_alloc(e->be->ctx, bytes, err, errlen);
    return *out ? BN_OK : BN_ERR_NOMEM;
}

enum bn_status bn_engine_create(const struct bn_model *m, struct bn_backend *be, const struct bn_engine_params *p,
                                bn_engine **out, char *err, size_t errlen)
{
    const struct bn_hparams *hp = &m->hp;
    *out = NULL;
    bn_engine *e = calloc(1, sizeof *e);
    if (!e) return bn_errf(err, errlen, BN_ERR_NOMEM, "engine: out of memory");
    e->m = m;
    e->be = be;
    e->p = p ? *p : bn_engine_default_params();
    if (e->p.n_ctx == 0) e->p.n_ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    if (e->p.n_batch == 0 || e->p.n_batch > e->p.n_ctx) e->p.n_batch = e->p.n_ctx;

    const size_t B = e->p.n_batch, E = hp->n_embd, F = hp->n_ff;
    const size_t QW = (size_t)hp->n_head * hp->head_dim, KVW = (size_t)hp->n_head_kv * hp->head_dim;
    const size_t kv_elem = e->p.kv_type == BN_KV_F16 ? 2 : 4;
    enum bn_status st = BN_OK;
    e->cache_k = calloc(hp->n_layer, sizeof *e->cache_k);
    e->cache_v = calloc(hp->n_layer, sizeof *e->cache_v);
    if (!e->cache_k || !e->cache_v) {
        bn_engine_destroy(e);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "engine: out of memory");
    }
    if (st == BN_OK) st = alloc_buf(e, &e->tokens, B * sizeof(int32_t), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->x, B * E * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->xq, B * max3(E, QW, F), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->xq_scale, B * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->q, B * QW * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->k, B * KVW * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->v, B * KVW * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->attn, B * QW * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->gate, B * F * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->up, B * F * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->ffn, B * F * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->xn, B * E * sizeof(float), err, errlen);
    if (st == BN_OK) st = alloc_buf(e, &e->logits, (size_t)hp->n_vocab * sizeof(float), err, errlen);
    if (st == BN_OK && be->iface.argmax) st = alloc_buf(e, &e->ids, sizeof(int32_t), err, errlen);
    if (st == BN_OK && be->iface.topk) st = alloc_buf(e, &e->top_ids, BN_ENGINE_TOPK_MAX * sizeof(int32_t), err, errlen);
    if (st == BN_OK && be->iface.topk) st = alloc_buf(e, &e->top_vals, BN_ENGINE_TOPK_MAX * sizeof(float), err, errlen);
    if (st == BN_OK && (!be->iface.argmax || !be->iface.topk)) {
        e->host_logits = malloc((size_t)hp->n_vocab * sizeof *e->host_logits);
        if (!e->host_logits) st = bn_errf(err, errlen, BN_ERR_NOMEM, "engine: out of memory");
    }
    e->logit_rows = 1;
    for (uint32_t il = 0; st == BN_OK && il < hp->n_layer; il++) {
        st = alloc_buf(e, &e->cache_k[il], (size_t)e->p.n_ctx * KVW * kv_elem, err, errlen);
        if (st == BN_OK) st = alloc_buf(e, &e->cache_v[il], (size_t)e->p.n_ctx * KVW * kv_elem, err, errlen);
    }
    if (st != BN_OK) {
        bn_engine_destroy(e);
        return st;
    }
    *out = e;
    return BN_OK;
}

void bn_engine_destroy(bn_engine *e)
{
    if (!e) return;
    const struct bn_backend_i *be = &e->be->iface;
    void *ctx = e->be->ctx;
    for (uint32_t il = 0; il < e->m->hp.n_layer; il++) {
        if (e->cache_v) be->buf_free(ctx, e->cache_v[il]);
        if (e->cache_k) be->buf_free(ctx, e->cache_k[il]);
    }
    free(e->host_logits);
    free(e->cache_v);
    free(e->cache_k);
    bn_buf *bufs[] = {e->top_vals, e->top_ids, e->ids, e->logits, e->xn, e->ffn, e->up, e->gate, e->attn, e->v,
                      e->k,      e->q,  e->xq_scale, e->xq, e->x, e->tokens};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) be->buf_free(ctx, bufs[i]);
    free(e);
}

uint32_t bn_engine_pos(const bn_engine *e) { return e->pos; }
uint32_t bn_engine_n_ctx(const bn_engine *e) { return e->p.n_ctx; }
void bn_engine_reset(bn_engine *e) { e->pos = 0; }

/* The int8 input of ternary projections: rows of x, rmsnorm'd with norm
 * (when not NULL), quantized into the engine's xq / xq_scale. */
static struct bn_proj_in proj_in(const bn_engine *e, const bn_buf *x, uint32_t n, uint32_t width,
                                 const struct bn_tensor *norm)
{
    return (struct bn_proj_in){.x = x, .n_rows = n, .width = width, .norm = norm, .eps = e->m->hp.rms_eps,
                               .xq = e->xq, .xq_scale = e->xq_scale};
}

/* One batch of n tokens at positions e->pos ..: the layers, then the head
 * for rows head_row0 .. n-1 into the logits buffer (none if head_row0 == n). */
static void forward(bn_engine *e, uint32_t n, uint32_t head_row0)
{
    const struct bn_model *m = e->m;
    const struct bn_hparams *hp = &m->hp;
    const struct bn_backend_i *op = &e->be->iface;
    void *c = e->be->ctx;
    const uint32_t QW = hp->n_head * hp->head_dim;
    /* rope.n_head is set by attn_qkv (q and k have different head counts). */
    const struct bn_attn_args attn = {.n_rows = n, .pos0 = e->pos, .n_head = hp->n_head, .n_head_kv = hp->n_head_kv,
                                      .head_dim = hp->head_dim, .n_ctx = e->p.n_ctx, .kv_type = e->p.kv_type};
    const struct bn_rope_args rope = {.n_rows = n, .pos0 = e->pos, .head_dim = hp->head_dim, .n_rot = hp->n_rot,
                                .base = hp->rope_base, .kind = hp->rope_kind, .freq_factors = m->rope_freqs};

    op->embed(c, m->tok_embd, e->tokens, n, e->x);                                   /* x = token_embd[tokens] */
    for (uint32_t il = 0; il < hp->n_layer; il++) {
        const struct bn_layer *L = &m->layers[il];
        /* Attention block: h = rmsnorm(x) * attn_norm, quantized once for q, k and v. */
        const struct bn_proj_in h = proj_in(e, e->x, n, hp->n_embd, L->attn_norm);
        /* q, k, v = Wq h, Wk h, Wv h; q, k = rope(q, k, pos); the cache keeps k and v */
        op->attn_qkv(c, &h, &L->wq, &L->wk, &L->wv, &rope, &attn, e->q, e->k, e->v, e->cache_k[il], e->cache_v[il]);
        op->attention(c, e->q, e->cache_k[il], e->cache_v[il], &attn, e->attn);  /* a = softmax(q K^T / sqrt(d)) V */
        const struct bn_proj_in a = proj_in(e, e->attn, n, QW, L->attn_sub_norm); /* a = rmsnorm(a) * attn_sub_norm */
        op->matmul_residual(c, &a, &L->wo, e->x);                                 /* x = x + Wo a */
        /* FFN block: h = rmsnorm(x) * ffn_norm, quantized once for gate and up;
         * the activation is silu for bitnet/llama. */
        const struct bn_proj_in hf = proj_in(e, e->x, n, hp->n_embd, L->ffn_norm);
        op->ffn_gate_up(c, &hf, &L->w_gate, &L->w_up, hp->ffn_act, e->gate, e->up, e->ffn); /* m = relu(Wg h)^2 * Wu h */
        const struct bn_proj_in mf = proj_in(e, e->ffn, n, hp->n_ff, L->ffn_sub_norm); /* m = rmsnorm(m) * ffn_sub_norm */
        op->matmul_residual(c, &mf, &L->w_down, e->x);                                 /* x = x + Wdown m */
    }
    const uint32_t n_head_rows = n - head_row0;
    if (n_head_rows == 0) return;
    op->rmsnorm(c, e->x, head_row0, n_head_rows, hp->n_embd, m->output_norm, hp->rms_eps, e->xn); /* rmsnorm(x) * output_norm */
    op->head(c, m->output, e->xn, n_head_rows, e->logits);                            /* logits = W_head . x */
}

static enum bn_status ensure_logit_rows(bn_engine *e, uint32_t rows, char *err, size_t errlen)
{
    if (rows <= e->logit_rows) return BN_OK;
    const struct bn_backend_i *be = &e->be->iface;
    be->buf_free(e->be->ctx, e->logits);
    e->logit_rows = 0;
    e->logits = be->buf_alloc(e->be->ctx, (size_t)rows * e->m->hp.n_vocab * sizeof(float), err, errlen);
    if (!e->logits) return BN_ERR_NOMEM;
    e->logit_rows = rows;
    return BN_OK;
}

/* bn_engine_eval, and with greedy != NULL also the backend's argmax of the
 * last row's logits into *greedy, or with top_k > 0 the backend's top-k into
 * top_ids / top_vals (the logits then stay on the device). */
static enum bn_status eval(bn_engine *e, const int32_t *tokens, uint32_t n, bool all_logits, float *logits,
                           int32_t *greedy, uint32_t top_k, int32_t *top_ids, float *top_vals, char *err,
                           size_t errlen)
{
    const uint32_t n_vocab = e->m->hp.n_vocab;
    if (n == 0) return bn_errf(err, errlen, BN_ERR_USAGE, "no tokens to evaluate");
    if (n > e->p.n_ctx - e->pos)
        return bn_errf(err, errlen, BN_ERR_USAGE, "context full: %u tokens at position %u pass n_ctx %u", n, e->pos,
                       e->p.n_ctx);
    for (uint32_t i = 0; i < n; i++)
        if (tokens[i] < 0 || (uint32_t)tokens[i] >= n_vocab)
            return bn_errf(err, errlen, BN_ERR_USAGE, "token id %d out of range (vocabulary has %u tokens)",
                           (int)tokens[i], n_vocab);
    const struct bn_backend_i *be = &e->be->iface;
    enum bn_status st;
    for (uint32_t done = 0; done < n;) {
        const uint32_t chunk = n - done < e->p.n_batch ? n - done : e->p.n_batch;
        const bool last = done + chunk == n;
        const bool want = (logits || greedy || top_k) && (all_logits || last);
        /* Rows of this chunk whose logits are wanted: all, or just the last one. */
        /* The head is the single biggest op: skip it for rows nobody reads. */
        const uint32_t head_row0 = !want ? chunk : all_logits ? 0 : chunk - 1;
        if (want && (st = ensure_logit_rows(e, chunk - head_row0, err, errlen)) != BN_OK) return st;
        be->buf_write(e->be->ctx, e->tokens, 0, tokens + done, chunk * sizeof(int32_t));
        forward(e, chunk, head_row0);
        if (greedy && last) be->argmax(e->be->ctx, e->logits, 1, n_vocab, e->ids);
        if (top_k && last) be->topk(e->be->ctx, e->logits, n_vocab, top_k, e->top_ids, e->top_vals);
        if ((st = be->synchronize(e->be->ctx, err, errlen)) != BN_OK) return st;
        e->pos += chunk;
        if (greedy && last && (st = be->buf_read(e->be->ctx, e->ids, 0, greedy, sizeof *greedy, err, errlen)) != BN_OK)
            return st;
        if (top_k && last) {
            st = be->buf_read(e->be->ctx, e->top_ids, 0, top_ids, top_k * sizeof *top_ids, err, errlen);
            if (st == BN_OK)
                st = be->buf_read(e->be->ctx, e->top_vals, 0, top_vals, top_k * sizeof *top_vals, err, errlen);
            if (st != BN_OK) return st;
        }
        if (want && logits) {
            float *dst = all_logits ? logits + (size_t)done * n_vocab : logits;
            st = be->buf_read(e->be->ctx, e->logits, 0, dst, (size_t)(chunk - head_row0) * n_vocab * sizeof(float),
                              err, errlen);
            if (st != BN_OK) return st;
        }
        done += chunk;
    }
    return BN_OK;
}

enum bn_status bn_engine_eval(bn_engine *e, const int32_t *tokens, uint32_t n, bool all_logits, float *logits,
                              char *err, size_t errlen)
{
    return eval(e, tokens, n, all_logits, logits, NULL, 0, NULL, NULL, err, errlen);
}

enum bn_status bn_engine_eval_argmax(bn_engine *e, const int32_t *tokens, uint32_t n, int32_t *token, char *err,
                                     size_t errlen)
{
    if (e->ids) return eval(e, tokens, n, false, NULL, token, 0, NULL, NULL, err, errlen);
    /* No argmax op: the logits come back and the host picks. */
    const uint32_t n_vocab = e->m->hp.n_vocab;
    const float *logits = e->host_logits;
    enum bn_status st = eval(e, tokens, n, false, e->host_logits, NULL, 0, NULL, NULL, err, errlen);
    if (st == BN_OK) {
        /* As the sampler's greedy pick: the lowest id wins a tie, NaN never. */
        uint32_t best = 0;
        float best_v = -INFINITY;
        for (uint32_t i = 0; i < n_vocab; i++)
            if (logits[i] > best_v) {
                best_v = logits[i];
                best = i;
            }
        *token = (int32_t)best;
    }
    return st;
}

/* The order of the top-k: larger value first, then the lower id. Values are
 * sanitized (no NaN), so this is a total order. */
static bool top_before(float va, int32_t ia, float vb, int32_t ib)
{
    return va > vb || (va == vb && ia < ib);
}

static float top_sanitize(float v)
{
    if (isnan(v)) return -INFINITY;
    return v > FLT_MAX ? FLT_MAX : v;
}

/* Host top-k for backends without the op: a sorted insertion into the k kept
 * so far. A logit that does not beat the current k-th costs one comparison,
 * which is nearly all of them, so this is about one pass over the logits. */
static void host_topk(const float *logits, uint32_t n_vocab, uint32_t k, int32_t *ids, float *vals)
{
    uint32_t len = 0;
    for (uint32_t i = 0; i < n_vocab; i++) {
        const float v = top_sanitize(logits[i]);
        if (len == k && !top_before(v, (int32_t)i, vals[k - 1], ids[k - 1])) continue;
        uint32_t j = len < k ? len++ : k - 1;
        for (; j > 0 && top_before(v, (int32_t)i, vals[j - 1], ids[j - 1]); j--) {
            vals[j] = vals[j - 1];
            ids[j] = ids[j - 1];
        }
        vals[j] = v;
        ids[j] = (int32_t)i;
    }
}

enum bn_status bn_engine_eval_topk(bn_engine *e, const int32_t *tokens, uint32_t n, uint32_t k, int32_t *ids,
                                   float *vals, char *err, size_t errlen)
{
    const uint32_t n_vocab = e->m->hp.n_vocab;
    if (k == 0 || k > BN_ENGINE_TOPK_MAX || k > n_vocab)
        return bn_errf(err, errlen, BN_ERR_USAGE, "top-k: k = %u, expected 1 to %u", k,
                       n_vocab < BN_ENGINE_TOPK_MAX ? n_vocab : BN_ENGINE_TOPK_MAX);
    if (e->top_ids) return eval(e, tokens, n, false, NULL, NULL, k, ids, vals, err, errlen);
    /* No topk op: the logits come back and the host selects. */
    enum bn_status st = eval(e, tokens, n, false, e->host_logits, NULL, 0, NULL, NULL, err, errlen);
    if (st == BN_OK) host_topk(e->host_logits, n_vocab, k, ids, vals);
    return st;
}
