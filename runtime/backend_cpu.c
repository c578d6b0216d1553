/*
 * CPU backend: runs each op at once with the kernels of kernels_cpu/.
 *
 * Weights are used in place, straight from the read-only mmap of the model
 * file (the scalar kernels read every ternary format as stored), so loading
 * costs no copy. Buffers are plain host memory, zero-filled by calloc so
 * untouched KV cache pages cost no resident memory.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "formats.h"
#include "kernels.h"

struct bn_buf {
    size_t size;
    void *data;
};

struct cpu_ctx {
    float *scratch;     /* one row of the widest table, for dequantization */
    size_t scratch_len; /* floats                                          */
    enum bn_status st;  /* first failure since the last synchronize        */
    char err[256];
};

static void *bdata(const bn_buf *b) { return b->data; }

static void cpu_fail(struct cpu_ctx *c, enum bn_status st, const char *msg)
{
    if (c->st == BN_OK) bn_errf(c->err, sizeof c->err, st, "cpu backend: %s", msg);
    if (c->st == BN_OK) c->st = st;
}

static void cpu_destroy(void *ctx)
{
    struct cpu_ctx *c = ctx;
    if (!c) return;
    free(c->scratch);
    free(c);
}

static enum bn_status cpu_supports(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    (void)ctx;
    (void)m;
    (void)err;
    (void)errlen;
    return BN_OK; /* the reference kernels read every type the model binder accepts */
}

static enum bn_status cpu_upload_weights(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    struct cpu_ctx *c = ctx;
    size_t need = m->hp.n_embd;
    free(c->scratch);
    c->scratch = malloc(need * sizeof(float));
    c->scratch_len = need;
    if (!c->scratch) return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory for %zu floats", need);
    return BN_OK;
}

static bn_buf *cpu_buf_alloc(void *ctx, size_t bytes, char *err, size_t errlen)
{
    (void)ctx;
    bn_buf *b = malloc(sizeof *b);
    void *data = calloc(1, bytes ? bytes : 1);
    if (!b || !data) {
        free(b);
        free(data);
        bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory allocating %zu bytes", bytes);
        return NULL;
    }
    b->size = bytes;
    b->data = data;
    return b;
}

static void cpu_buf_free(void *ctx, bn_buf *b)
{
    (void)ctx;
    if (!b) return;
    free(b->data);
    free(b);
}

static void cpu_buf_write(void *ctx, bn_buf *dst, size_t offset, const void *src, size_t bytes)
{
    BN_ASSERT(offset <= dst->size && bytes <= dst->size - offset);
    (void)ctx;
    memcpy((uint8_t *)dst->data + offset, src, bytes);
}

static enum bn_status cpu_buf_read(void *ctx, const bn_buf *src, size_t offset, void *dst, size_t bytes, char *err,
                                   size_t errlen)
{
    (void)ctx;
    (void)err;
    (void)errlen;
    BN_ASSERT(offset <= src->size && bytes <= src->size - offset);
    memcpy(dst, (const uint8_t *)src->data + offset, bytes);
    return BN_OK;
}

/* Row r of a 2-D table tensor. */
static const uint8_t *table_row(const struct bn_tensor *t, size_t r)
{
    return (const uint8_t *)t->data + r * (t->nbytes / (size_t)t->ne[1]);
}

static void cpu_embed(void *ctx, const struct bn_tensor *table, const bn_buf *tokens, uint32_t n_rows, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const int32_t *tok = bdata(tokens);
    float *o = bdata(out);
    const size_t k = (size_t)table->ne[0];
    for (uint32_t t = 0; t < n_rows; t++) {
        BN_ASSERT(tok[t] >= 0 && tok[t] < table->ne[1]);
        if (bn_row_to_f32_scalar(table->type, table_row(table, (size_t)tok[t]), k, o + t * k) != 0)
            cpu_fail(c, BN_ERR_MODEL, "embedding type not supported");
    }
}

static void cpu_rmsnorm(void *ctx, const bn_buf *x, uint32_t row0, uint32_t n_rows, uint32_t width,
                        const struct bn_tensor *w, float eps, bn_buf *out)
{
    (void)ctx;
    const float *xi = bdata(x);
    float *o = bdata(out);
    for (uint32_t t = 0; t < n_rows; t++)
        bn_rmsnorm_row_scalar(xi + (size_t)(row0 + t) * width, w ? w->data : NULL, width, eps, o + (size_t)t * width);
}

static void cpu_quantize(void *ctx, const bn_buf *x, uint32_t n_rows, uint32_t width, const struct bn_tensor *w,
                         float eps, bn_buf *q, bn_buf *q_scale)
{
    struct cpu_ctx *c = ctx;
    const float *xi = bdata(x);
    int8_t *qo = bdata(q);
    float *so = bdata(q_scale);
    if (w && c->scratch_len < width) {
        float *s = realloc(c->scratch, width * sizeof(float));
        if (!s) {
            cpu_fail(c, BN_ERR_NOMEM, "out of memory");
            return;
        }
        c->scratch = s;
        c->scratch_len = width;
    }
    for (uint32_t t = 0; t < n_rows; t++) {
        const float *row = xi + (size_t)t * width;
        if (w) {
            bn_rmsnorm_row_scalar(row, w->data, width, eps, c->scratch);
            row = c->scratch;
        }
        so[t] = bn_quantize_row_i8_scalar(row, width, qo + (size_t)t * width);
    }
}

static void cpu_matmul_ternary(void *ctx, const struct bn_linear *lin, const bn_buf *q, const bn_buf *q_scale,
                               uint32_t n_rows, bn_buf *out, bool accumulate)
{
    struct cpu_ctx *c = ctx;
    const struct bn_tensor *w = lin->w;
    const size_t k = (size_t)w->ne[0], n = (size_t)w->ne[1];
    const int8_t *qi = bdata(q);
    const float *si = bdata(q_scale);
    float *o = bdata(out);
    const uint8_t *data = w->data;
    float w_scale = 1.0f;
    size_t row_bytes;
    switch (w->type) {
    case BN_TYPE_I2_S:
        memcpy(&w_scale, data + k * n / 4, sizeof w_scale);
        row_bytes = k / 4;
        break;
    case BN_TYPE_TQ2_0: row_bytes = k / 256 * BN_TQ2_0_BYTES; break;
    case BN_TYPE_TQ1_0: row_bytes = k / 256 * BN_TQ1_0_BYTES; break;
    default: cpu_fail(c, BN_ERR_MODEL, "weight type is not ternary"); return;
    }
    for (uint32_t t = 0; t < n_rows; t++) {
        const int8_t *qr = qi + (size_t)t * k;
        float *orow = o + (size_t)t * n;
        for (size_t r = 0; r < n; r++) {
            const uint8_t *wr = data + r * row_bytes;
            float y;
            if (w->type == BN_TYPE_I2_S) y = bn_row_i2s_scalar(wr, w_scale, qr, k);
            else if (w->type == BN_TYPE_TQ2_0) y = bn_row_tq2_scalar(wr, qr, k);
            else y = bn_row_tq1_scalar(wr, qr, k);
            y = y / si[t] * lin->scale;
            orow[r] = accumulate ? orow[r] + y : y;
        }
    }
}

static void cpu_rope(void *ctx, bn_buf *x, const struct bn_rope_args *a)
{
    (void)ctx;
    float *xi = bdata(x);
    const float *ff = a->freq_factors ? a->freq_factors->data : NULL;
    for (uint32_t t = 0; t < a->n_rows; t++)
        for (uint32_t h = 0; h < a->n_head; h++)
            bn_rope_head_scalar(xi + ((size_t)t * a->n_head + h) * a->head_dim, a->n_rot, a->pos0 + t, a->base,
                                a->kind == BN_ROPE_NEOX, ff);
}

static void cpu_kv_store(void *ctx, const bn_buf *k, const bn_buf *v, const struct bn_attn_args *a, bn_buf *cache_k,
                         bn_buf *cache_v)
{
    (void)ctx;
    const size_t width = (size_t)a->n_head_kv * a->head_dim;
    const float *ks = bdata(k), *vs = bdata(v);
    BN_ASSERT(a->pos0 + a->n_rows <= a->n_ctx);
    for (uint32_t t = 0; t < a->n_rows; t++) {
        const size_t dst = (size_t)(a->pos0 + t) * width, src = (size_t)t * width;
        if (a->kv_type == BN_KV_F16) {
            uint16_t *kc = bdata(cache_k), *vc = bdata(cache_v);
            for (size_t i = 0; i < width; i++) {
                kc[dst + i] = bn_fp32_to_fp16(ks[src + i]);
                vc[dst + i] = bn_fp32_to_fp16(vs[src + i]);
            }
        } else {
            memcpy((float *)bdata(cache_k) + dst, ks + src, width * sizeof(float));
            memcpy((float *)bdata(cache_v) + dst, vs + src, width * sizeof(float));
        }
    }
}

static void cpu_attention(void *ctx, const bn_buf *q, const bn_buf *cache_k, const bn_buf *cache_v,
                          const struct bn_attn_args *a, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const size_t kv_width = (size_t)a->n_head_kv * a->head_dim;
    const size_t q_width = (size_t)a->n_head * a->head_dim;
    const uint32_t group = a->n_head / a->n_head_kv;
    const int f16 = a->kv_type == BN_KV_F16;
    const size_t elem = f16 ? 2 : 4;
    float *scores = malloc((size_t)a->n_ctx * sizeof(float));
    if (!scores) {
        cpu_fail(c, BN_ERR_NOMEM, "out of memory for attention scores");
        return;
    }
    const float *qi = bdata(q);
    float *o = bdata(out);
    for (uint32_t t = 0; t < a->n_rows; t++) {
        const uint32_t n_kv = a->pos0 + t + 1; /* causal: positions up to this token */
        for (uint32_t h = 0; h < a->n_head; h++) {
            const size_t kv_off = (size_t)(h / group) * a->head_dim * elem;
            bn_attention_head_scalar(qi + t * q_width + (size_t)h * a->head_dim,
                                     (const uint8_t *)bdata(cache_k) + kv_off, (const uint8_t *)bdata(cache_v) + kv_off,
                                     f16, kv_width, a->head_dim, n_kv, scores,
                                     o + t * q_width + (size_t)h * a->head_dim);
        }
    }
    free(scores);
}

static void cpu_ffn_act(void *ctx, const bn_buf *gate, const bn_buf *up, uint32_t n_rows, uint32_t width,
                        enum bn_ffn_act act, bn_buf *out)
{
    (void)ctx;
    const size_t n = (size_t)n_rows * width;
    if (act == BN_ACT_RELU2) bn_relu2_mul_scalar(bdata(gate), bdata(up), n, bdata(out));
    else bn_silu_mul_scalar(bdata(gate), bdata(up), n, bdata(out));
}

static void cpu_head(void *ctx, const struct bn_tensor *w, const bn_buf *x, uint32_t n_rows, bn_buf *logits)
{
    struct cpu_ctx *c = ctx;
    const size_t k = (size_t)w->ne[0], n = (size_t)w->ne[1];
    const float *xi = bdata(x);
    float *o = bdata(logits);
    if (c->scratch_len < k) {
        cpu_fail(c, BN_ERR_DEVICE, "weights were not uploaded");
        return;
    }
    for (uint32_t t = 0; t < n_rows; t++)
        for (size_t r = 0; r < n; r++)
            o[t * n + r] = bn_dot_row_f32_scalar(w->type, table_row(w, r), xi + t * k, k, c->scratch);
}

static enum bn_status cpu_synchronize(void *ctx, char *err, size_t errlen)
{
    struct cpu_ctx *c = ctx;
    enum bn_status st = c->st;
    if (st != BN_OK) bn_errf(err, errlen, st, "%s", c->err);
    c->st = BN_OK;
    return st;
}

enum bn_status bn_backend_cpu_create(struct bn_backend *out, const struct bn_backend_cpu_opts *opts, char *err,
                                     size_t errlen)
{
    (void)opts;
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory");
    out->ctx = c;
    out->iface = (struct bn_backend_i){
        .name = "cpu",
        .destroy = cpu_destroy,
        .supports = cpu_supports,
        .upload_weights = cpu_upload_weights,
        .buf_alloc = cpu_buf_alloc,
        .buf_free = cpu_buf_free,
        .buf_write = cpu_buf_write,
        .buf_read = cpu_buf_read,
        .embed = cpu_embed,
        .rmsnorm = cpu_rmsnorm,
        .quantize = cpu_quantize,
        .matmul_ternary = cpu_matmul_ternary,
        .rope = cpu_rope,
        .kv_store = cpu_kv_store,
        .attention = cpu_attention,
        .ffn_act = cpu_ffn_act,
        .head = cpu_head,
        .synchronize = cpu_synchronize,
    };
    return BN_OK;
}
