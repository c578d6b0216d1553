/*
 * backend_vk.c - the Vulkan backend: the ops of runtime/backend.h as
 * dispatches recorded into one command buffer per forward pass
 * (vk_stream.c), submitted at synchronize() with one fence wait. Weights are
 * repacked and uploaded once (vk_weights.c); each op's shader, push
 * constants and grid are chosen in vk_ops.c. This file is the glue: device
 * and object lifetimes, buffers, and the iface table.
 *
 * Environment: BN_VK_STATS=1 prints the submission counters at destroy
 * (one submission per forward pass is the contract), and with
 * BN_VK_PROFILE=1 the device time per shader; BN_VK_DISABLE_INTDOT=1
 * BN_VK_TUNE (vk_tuning.h) and BN_VK_MAX_BUFFER_RANGE / BN_VK_VALIDATION
 * (vk_device.h) for tests.
 */
#include "backend_vk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_bandwidth.h"
#include "backend_compose.h"
#include "vk_device.h"
#include "vk_memory.h"
#include "vk_ops.h"
#include "vk_stream.h"
#include "vk_weights.h"

/* Buffers up to this size are host-visible (device-local where the device
 * offers that), so results such as logits and token ids are read back
 * without a second submission. */
#define READBACK_MAX (1u << 20)
/* Rows of one part: the grids put rows in dimension x, which every device
 * allows 65535 workgroups in, and every row shader covers at least one row
 * per workgroup. */
#define PART_MAX_ROWS 65535u
/* The attention shaders' MAX_HD; they split head_dim four ways. */
#define MAX_HEAD_DIM 256u

struct bn_buf {
    struct bn_vk_region r;
    size_t size;
};

struct vk_ctx {
    bn_vk_instance *vi;
    struct bn_vk_device *dev;
    bn_vk_allocator *alloc;
    bn_vk_transfer *transfer;
    bn_vk_stream *stream;
    struct bn_vk_ops ops;
    bool ops_ready;
    struct bn_vk_weights weights;
    bool head_q8; /* --head q8: the head runs as an int8 copy */
    uint64_t syncs;
};

static void vk_destroy(void *ctx)
{
    struct vk_ctx *c = ctx;
    if (!c) return;
    if (c->stream) {
        char err[256];
        (void)bn_vk_stream_finish(c->stream, err, sizeof err); /* nothing may run while we free */
    }
    const char *stats = getenv("BN_VK_STATS");
    if (stats && stats[0] == '1' && c->stream) {
        struct bn_vk_stream_stats s;
        bn_vk_stream_get_stats(c->stream, &s);
        fprintf(stderr,
                "bitnet-vk: vulkan stats: %llu submissions for %llu synchronize calls, %llu transfer submissions, "
                "%llu dispatches, %llu barriers\n",
                (unsigned long long)s.submits, (unsigned long long)c->syncs,
                (unsigned long long)(c->transfer ? bn_vk_transfer_submits(c->transfer) : 0),
                (unsigned long long)s.dispatches, (unsigned long long)s.barriers);
        if (c->ops_ready) {
            char rows[16] = "auto";
            if (c->ops.tune.rows) snprintf(rows, sizeof rows, "%u", c->ops.tune.rows);
            fprintf(stderr,
                    "bitnet-vk: vulkan tuning: %s (wg %u, matvec rows %s, int-dot %s, fused decode %s, subgroup "
                    "reductions %s, subgroup size %u%s)\n",
                    c->ops.tune.entry, c->ops.wg, rows, c->ops.use_dot ? "on" : "off", c->ops.tune.fuse ? "on" : "off",
                    c->ops.use_subgroup ? "on" : "off", c->dev->info->features.subgroup_size,
                    c->ops.subgroup_size ? " pinned" : "");
        }
        const struct bn_vk_profile_entry *pe;
        const uint32_t n = bn_vk_stream_get_profile(c->stream, &pe);
        for (uint32_t i = 0; i < n; i++)
            fprintf(stderr, "bitnet-vk: vulkan profile: %-26s %10.2f ms in %llu dispatches\n", pe[i].name, pe[i].ms,
                    (unsigned long long)pe[i].dispatches);
    }
    /* Even after a lost device nothing we free may still be in use. */
    if (c->dev) (void)c->dev->fn.vkDeviceWaitIdle(c->dev->device);
    /* The reverse of creation: weights (uploaded last), ops, stream,
     * transfer, allocator, device, instance. */
    if (c->alloc) bn_vk_weights_free(&c->weights, c->alloc);
    if (c->ops_ready) bn_vk_ops_free(&c->ops);
    bn_vk_stream_destroy(c->stream);
    bn_vk_transfer_destroy(c->transfer);
    bn_vk_allocator_destroy(c->alloc);
    bn_vk_device_destroy(c->dev);
    bn_vk_instance_destroy(c->vi);
    free(c);
}

static double gib(uint64_t b) { return (double)b / (double)(1ull << 30); }

/* Device memory the engine's buffers take at the default batch (512) and
 * context (the model's, at most 4096) with an F16 cache. */
static uint64_t activation_bytes(const struct bn_hparams *hp)
{
    const uint64_t B = 512, E = hp->n_embd, F = hp->n_ff;
    const uint64_t QW = (uint64_t)hp->n_head * hp->head_dim, KVW = (uint64_t)hp->n_head_kv * hp->head_dim;
    const uint64_t ctx = hp->n_ctx_train < 4096 ? hp->n_ctx_train : 4096;
    uint64_t wide = E > QW ? E : QW;
    wide = wide > F ? wide : F;
    return (uint64_t)hp->n_layer * 2 * ctx * KVW * 2 + B * 4 * (3 * E + 2 * QW + 2 * KVW + 3 * F) + B * wide +
           (uint64_t)hp->n_vocab * 4;
}

static enum bn_status vk_supports(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    struct vk_ctx *c = ctx;
    const struct bn_hparams *hp = &m->hp;
    const struct bn_vk_device_info *info = c->dev->info;
    /* Shapes the shaders are written for (attention tiles, F16 pairs). */
    if (hp->head_dim > MAX_HEAD_DIM || hp->head_dim % 4 != 0)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: head_dim %u unsupported (needs a multiple of 4, at most %u)",
                       hp->head_dim, MAX_HEAD_DIM);
    if (hp->n_rot % 2 != 0 || hp->n_rot > hp->head_dim || hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: rope/head shape unsupported (n_rot %u, heads %u/%u)",
                       hp->n_rot, hp->n_head, hp->n_head_kv);
    uint64_t heap = 0;
    for (uint32_t i = 0; i < info->n_heaps; i++)
        if (info->heaps[i].device_local && info->heaps[i].size > heap) heap = info->heaps[i].size;
    if (heap == 0)
        for (uint32_t i = 0; i < info->n_heaps; i++)
            if (info->heaps[i].size > heap) heap = info->heaps[i].size;
    const uint64_t need = bn_vk_weights_estimate(m, c->head_q8) + activation_bytes(hp);
    if (need > heap)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "model needs %.1f GiB, device has %.1f GiB", gib(need), gib(heap));
    return BN_OK;
}

static enum bn_status vk_upload_weights(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    struct vk_ctx *c = ctx;
    const struct bn_vk_limits *lim = &c->dev->info->limits;
    /* A new model: its tensors and tables replace the old ones. Recorded
     * work that still uses them is submitted first. */
    enum bn_status st = bn_vk_stream_finish(c->stream, err, errlen);
    if (st != BN_OK) return st;
    bn_vk_ops_forget_model(&c->ops);
    bn_vk_weights_free(&c->weights, c->alloc);
    struct bn_vk_part_limits pl = {.max_bytes = lim->max_storage_buffer_range, .max_rows = PART_MAX_ROWS};
    if (pl.max_bytes > bn_vk_max_region(c->alloc)) pl.max_bytes = bn_vk_max_region(c->alloc);
    const bool q8 = c->head_q8 && m->output;
    /* The int8 head's shader sums in int64 and holds bounded slices. */
    if (q8 && !c->dev->info->features.int64)
        return bn_errf(err, errlen, BN_ERR_DEVICE,
                       "vulkan: --head q8 needs 64-bit integers in shaders (shaderInt64), which this device lacks");
    if (q8 && !bn_vk_head_q8_fits(&c->ops, (uint32_t)m->output->ne[0]))
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: --head q8: head rows of %llu are too long for the int8 "
                       "head shader", (unsigned long long)m->output->ne[0]);
    return bn_vk_weights_upload(&c->weights, m, q8, c->alloc, c->transfer, &pl, err, errlen);
}

static bn_buf *vk_buf_alloc(void *ctx, size_t bytes, char *err, size_t errlen)
{
    struct vk_ctx *c = ctx;
    const uint64_t range = c->dev->info->limits.max_storage_buffer_range;
    if (bytes > range) {
        char s1[32], s2[32];
        bn_errf(err, errlen, BN_ERR_DEVICE,
                "vulkan: a buffer of %s exceeds the device's storage-buffer range (%s); use a smaller -b or -c",
                bn_vk_fmt_bytes(bytes, s1), bn_vk_fmt_bytes(range, s2));
        return NULL;
    }
    bn_buf *b = calloc(1, sizeof *b);
    if (!b) {
        bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
        return NULL;
    }
    b->size = bytes;
    enum bn_vk_mem_class cls = bytes <= READBACK_MAX ? BN_VK_MEM_READBACK : BN_VK_MEM_ACTIVATIONS;
    if (bn_vk_alloc(c->alloc, cls, bytes, &b->r, err, errlen) != BN_OK) {
        free(b);
        return NULL;
    }
    /* Zero-filled, as the interface promises: at once when mapped (nothing
     * recorded can use a fresh region), else in order in the stream. */
    if (b->r.mapped) memset(b->r.mapped, 0, (size_t)b->r.size);
    else bn_vk_stream_zero(c->stream, &b->r);
    return b;
}

static void vk_buf_free(void *ctx, bn_buf *b)
{
    struct vk_ctx *c = ctx;
    if (!b) return;
    bn_vk_stream_release(c->stream, &b->r);
    free(b);
}

static void vk_buf_write(void *ctx, bn_buf *dst, size_t offset, const void *src, size_t bytes)
{
    struct vk_ctx *c = ctx;
    BN_ASSERT(offset <= dst->size && bytes <= dst->size - offset);
    if (bytes) bn_vk_stream_write(c->stream, &dst->r, offset, src, bytes);
}

static enum bn_status vk_synchronize(void *ctx, char *err, size_t errlen)
{
    struct vk_ctx *c = ctx;
    c->syncs++;
    return bn_vk_stream_finish(c->stream, err, errlen);
}

static enum bn_status vk_buf_read(void *ctx, const bn_buf *src, size_t offset, void *dst, size_t bytes, char *err,
                                  size_t errlen)
{
    struct vk_ctx *c = ctx;
    BN_ASSERT(offset <= src->size && bytes <= src->size - offset);
    enum bn_status st = bn_vk_stream_finish(c->stream, err, errlen);
    if (st != BN_OK || bytes == 0) return st;
    return bn_vk_transfer_read(c->transfer, &src->r, offset, dst, bytes, err, errlen);
}

/* The device copy of a tensor; NULL (failure latched) if it has none. */
static const struct bn_vk_weight *weight(struct vk_ctx *c, const struct bn_tensor *t)
{
    const struct bn_vk_weight *w = bn_vk_weights_get(&c->weights, t);
    if (!w) {
        char msg[256];
        snprintf(msg, sizeof msg, "vulkan: tensor %s was not uploaded (upload_weights first)", t ? t->name : "(null)");
        bn_vk_stream_fail(c->stream, BN_ERR_DEVICE, msg);
    }
    return w;
}

static void vk_embed(void *ctx, const struct bn_tensor *table, const bn_buf *tokens, uint32_t n_rows, bn_buf *out)
{
    struct vk_ctx *c = ctx;
    const struct bn_vk_weight *w = weight(c, table);
    if (w) bn_vk_op_embed(&c->ops, w, &tokens->r, n_rows, &out->r);
}

static void vk_rmsnorm(void *ctx, const bn_buf *x, uint32_t row0, uint32_t n_rows, uint32_t width,
                       const struct bn_tensor *w, float eps, bn_buf *out)
{
    struct vk_ctx *c = ctx;
    const struct bn_vk_weight *dw = w ? weight(c, w) : NULL;
    if (!w || dw) bn_vk_op_rmsnorm(&c->ops, &x->r, row0, n_rows, width, dw, eps, &out->r);
}

static void vk_quantize(void *ctx, const bn_buf *x, uint32_t n_rows, uint32_t width, const struct bn_tensor *w,
                        float eps, bn_buf *q, bn_buf *q_scale)
{
    struct vk_ctx *c = ctx;
    const struct bn_vk_weight *dw = w ? weight(c, w) : NULL;
    if (!w || dw) bn_vk_op_quantize(&c->ops, &x->r, n_rows, width, dw, eps, &q->r, &q_scale->r);
}

/* The device copy of a ternary weight; NULL (failure latched) otherwise. */
static const struct bn_vk_weight *ternary(struct vk_ctx *c, const struct bn_linear *lin)
{
    const struct bn_vk_weight *w = weight(c, lin->w);
    if (w && w->kind != BN_VK_W_TERNARY) {
        bn_vk_stream_fail(c->stream, BN_ERR_MODEL, "vulkan: matmul_ternary on a weight that is not ternary");
        return NULL;
    }
    return w;
}

static void vk_matmul_ternary(void *ctx, const struct bn_linear *lin, const bn_buf *q, const bn_buf *q_scale,
                              uint32_t n_rows, bn_buf *out, bool accumulate)
{
    struct vk_ctx *c = ctx;
    const struct bn_vk_weight *w = ternary(c, lin);
    if (w) bn_vk_op_matmul(&c->ops, w, lin->scale, &q->r, &q_scale->r, n_rows, &out->r, accumulate);
}

static void vk_rope(void *ctx, bn_buf *x, const struct bn_rope_args *a)
{
    struct vk_ctx *c = ctx;
    bn_vk_op_rope(&c->ops, &x->r, a);
}

static void vk_kv_store(void *ctx, const bn_buf *k, const bn_buf *v, const struct bn_attn_args *a, bn_buf *cache_k,
                        bn_buf *cache_v)
{
    struct vk_ctx *c = ctx;
    BN_ASSERT(a->pos0 + a->n_rows <= a->n_ctx);
    bn_vk_op_kv_store(&c->ops, &k->r, &v->r, a, &cache_k->r, &cache_v->r);
}

static void vk_attention(void *ctx, const bn_buf *q, const bn_buf *cache_k, const bn_buf *cache_v,
                         const struct bn_attn_args *a, bn_buf *out)
{
    struct vk_ctx *c = ctx;
    bn_vk_op_attention(&c->ops, &q->r, &cache_k->r, &cache_v->r, a, &out->r);
}

static void vk_ffn_act(void *ctx, const bn_buf *gate, const bn_buf *up, uint32_t n_rows, uint32_t width,
                       enum bn_ffn_act act, bn_buf *out)
{
    struct vk_ctx *c = ctx;
    bn_vk_op_ffn_act(&c->ops, &gate->r, &up->r, n_rows, width, act, &out->r);
}

static void vk_head(void *ctx, const struct bn_tensor *w, const bn_buf *x, uint32_t n_rows, bn_buf *logits)
{
    struct vk_ctx *c = ctx;
    if (c->weights.head_q8_of && c->weights.head_q8_of == w) {
        bn_vk_op_head_q8(&c->ops, &c->weights.head_q8, &x->r, n_rows, &logits->r);
        return;
    }
    const struct bn_vk_weight *dw = weight(c, w);
    if (dw) bn_vk_op_head(&c->ops, dw, &x->r, n_rows, &logits->r);
}

static void vk_argmax(void *ctx, const bn_buf *logits, uint32_t n_rows, uint32_t n_vocab, bn_buf *out_ids)
{
    struct vk_ctx *c = ctx;
    bn_vk_op_argmax(&c->ops, &logits->r, n_rows, n_vocab, &out_ids->r);
}

static void vk_topk(void *ctx, const bn_buf *logits, uint32_t n_vocab, uint32_t k, bn_buf *out_ids, bn_buf *out_vals)
{
    struct vk_ctx *c = ctx;
    bn_vk_op_topk(&c->ops, &logits->r, n_vocab, k, &out_ids->r, &out_vals->r);
}

/* The fused ops: one dispatch each for decode (vk_ops.h, proj_*); prefill,
 * and shapes the fused shader does not hold, run the primitive sequence. */
static const struct bn_backend_i vk_primitives = {
    .quantize = vk_quantize,
    .matmul_ternary = vk_matmul_ternary,
    .rope = vk_rope,
    .kv_store = vk_kv_store,
    .ffn_act = vk_ffn_act,
};

/* The input row and its norm weight on the device; false (failure latched
 * when a tensor is missing) if the fused form cannot be used. */
static bool proj_in(struct vk_ctx *c, const struct bn_proj_in *in, struct bn_vk_proj_in *out)
{
    if (in->n_rows != 1) return false;
    const struct bn_vk_weight *norm = in->norm ? weight(c, in->norm) : NULL;
    if (in->norm && !norm) return false;
    *out = (struct bn_vk_proj_in){.x = &in->x->r, .width = in->width, .norm = norm, .eps = in->eps};
    return true;
}

static void vk_attn_qkv(void *ctx, const struct bn_proj_in *in, const struct bn_linear *wq, const struct bn_linear *wk,
                        const struct bn_linear *wv, const struct bn_rope_args *rope, const struct bn_attn_args *attn,
                        bn_buf *q, bn_buf *k, bn_buf *v, bn_buf *cache_k, bn_buf *cache_v)
{
    struct vk_ctx *c = ctx;
    struct bn_vk_proj_in pin;
    if (proj_in(c, in, &pin)) {
        BN_ASSERT(attn->pos0 + attn->n_rows <= attn->n_ctx);
        const struct bn_vk_weight *const w[3] = {ternary(c, wq), ternary(c, wk), ternary(c, wv)};
        if (!w[0] || !w[1] || !w[2]) return;
        const float scale[3] = {wq->scale, wk->scale, wv->scale};
        if (bn_vk_op_proj_qkv(&c->ops, &pin, w, scale, rope, attn, &q->r, &cache_k->r, &cache_v->r)) return;
    }
    if (!bn_vk_stream_ok(c->stream)) return;
    bn_compose_attn_qkv(&vk_primitives, ctx, in, wq, wk, wv, rope, attn, q, k, v, cache_k, cache_v);
}

static void vk_ffn_gate_up(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w_gate,
                           const struct bn_linear *w_up, enum bn_ffn_act act, bn_buf *gate, bn_buf *up, bn_buf *out)
{
    struct vk_ctx *c = ctx;
    struct bn_vk_proj_in pin;
    if (proj_in(c, in, &pin)) {
        const struct bn_vk_weight *wg = ternary(c, w_gate), *wu = ternary(c, w_up);
        if (!wg || !wu) return;
        if (bn_vk_op_proj_gate_up(&c->ops, &pin, wg, w_gate->scale, wu, w_up->scale, act, &out->r)) return;
    }
    if (!bn_vk_stream_ok(c->stream)) return;
    bn_compose_ffn_gate_up(&vk_primitives, ctx, in, w_gate, w_up, act, gate, up, out);
}

static void vk_matmul_residual(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w, bn_buf *x)
{
    struct vk_ctx *c = ctx;
    struct bn_vk_proj_in pin;
    if (proj_in(c, in, &pin)) {
        const struct bn_vk_weight *dw = ternary(c, w);
        if (!dw) return;
        if (bn_vk_op_proj_residual(&c->ops, &pin, dw, w->scale, &x->r)) return;
    }
    if (!bn_vk_stream_ok(c->stream)) return;
    bn_compose_matmul_residual(&vk_primitives, ctx, in, w, x);
}

enum bn_status bn_backend_vk_create(struct bn_backend *out, const struct bn_backend_vk_opts *opts, char *err,
                                    size_t errlen)
{
    memset(out, 0, sizeof *out);
    struct vk_ctx *c = calloc(1, sizeof *c);
    if (!c) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    struct bn_vk_instance_opts io = {.validation = opts && opts->validation};
    enum bn_status st = bn_vk_instance_create(&io, &c->vi, err, errlen);
    int index = opts ? opts->device_index : -1;
    if (st == BN_OK && index < 0) {
        index = bn_vk_instance_pick_auto(c->vi, err, errlen);
        if (index < 0 && opts && opts->allow_cpu_device) index = bn_vk_instance_pick_cpu(c->vi, err, errlen);
        if (index < 0) st = BN_ERR_DEVICE;
    }
    if (st == BN_OK) st = bn_vk_device_create(c->vi, (uint32_t)index, &c->dev, err, errlen);
    if (st == BN_OK) st = bn_vk_allocator_create(c->dev, &c->alloc, err, errlen);
    if (st == BN_OK) st = bn_vk_transfer_create(c->dev, c->alloc, &c->transfer, err, errlen);
    const char *prof = getenv("BN_VK_PROFILE");
    const bool timestamps = (opts && opts->profile) || (prof && prof[0] == '1');
    if (st == BN_OK) st = bn_vk_stream_create(c->dev, c->alloc, timestamps, &c->stream, err, errlen);
    if (st == BN_OK && (st = bn_vk_ops_init(&c->ops, c->dev, c->alloc, c->stream, err, errlen)) == BN_OK)
        c->ops_ready = true;
    c->head_q8 = opts && opts->head_q8;
    if (st != BN_OK) {
        vk_destroy(c);
        return st;
    }
    out->ctx = c;
    out->iface = (struct bn_backend_i){
        .name = "vulkan",
        .destroy = vk_destroy,
        .supports = vk_supports,
        .upload_weights = vk_upload_weights,
        .buf_alloc = vk_buf_alloc,
        .buf_free = vk_buf_free,
        .buf_write = vk_buf_write,
        .buf_read = vk_buf_read,
        .embed = vk_embed,
        .rmsnorm = vk_rmsnorm,
        .quantize = vk_quantize,
        .matmul_ternary = vk_matmul_ternary,
        .rope = vk_rope,
        .kv_store = vk_kv_store,
        .attention = vk_attention,
        .ffn_act = vk_ffn_act,
        .head = vk_head,
        .argmax = vk_argmax,
        .topk = vk_topk,
        .attn_qkv = vk_attn_qkv,
        .ffn_gate_up = vk_ffn_gate_up,
        .matmul_residual = vk_matmul_residual,
        .synchronize = vk_synchronize,
    };
    return BN_OK;
}

enum bn_status bn_backend_vk_get_stats(const struct bn_backend *be, struct bn_backend_vk_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!be || be->iface.destroy != vk_destroy || !be->ctx) return BN_ERR_USAGE;
    const struct vk_ctx *c = be->ctx;
    struct bn_vk_stream_stats s;
    bn_vk_stream_get_stats(c->stream, &s);
    out->submits = s.submits;
    out->synchronizes = c->syncs;
    out->transfer_submits = bn_vk_transfer_submits(c->transfer);
    out->dispatches = s.dispatches;
    out->barriers = s.barriers;
    out->validation_errors = bn_vk_instance_validation_errors(c->vi);
    out->int_dot = c->ops.use_dot;
    out->subgroup = c->ops.use_subgroup;
    out->head_q8 = c->weights.head_q8_of != NULL;
    out->device_bytes = bn_vk_allocator_bytes(c->alloc);
    snprintf(out->device, sizeof out->device, "%s", c->dev->info->name);
    return BN_OK;
}

enum bn_status bn_backend_vk_describe(const struct bn_backend *be, struct bn_backend_vk_device_desc *out)
{
    memset(out, 0, sizeof *out);
    if (!be || be->iface.destroy != vk_destroy || !be->ctx) return BN_ERR_USAGE;
    const struct bn_vk_device_info *info = ((const struct vk_ctx *)be->ctx)->dev->info;
    snprintf(out->name, sizeof out->name, "%s", info->name);
    snprintf(out->type, sizeof out->type, "%s", info->type_name);
    if (info->driver_name[0] && info->driver_info[0])
        snprintf(out->driver, sizeof out->driver, "%s: %s", info->driver_name, info->driver_info);
    else snprintf(out->driver, sizeof out->driver, "%s", info->driver_name);
    return BN_OK;
}

enum bn_status bn_backend_vk_measure_bandwidth(const struct bn_backend *be, uint64_t bytes, int reps, double *gbps,
                                               char *err, size_t errlen)
{
    *gbps = 0;
    if (!be || be->iface.destroy != vk_destroy || !be->ctx)
        return bn_errf(err, errlen, BN_ERR_USAGE, "bandwidth probe: not a Vulkan backend");
    struct vk_ctx *c = be->ctx;
    enum bn_status st = bn_vk_stream_finish(c->stream, err, errlen); /* the probe has the queue to itself */
    if (st != BN_OK) return st;
    struct bn_vk_bandwidth bw;
    st = bn_vk_measure_bandwidth(c->dev, c->alloc, bytes, reps, &bw, err, errlen);
    if (st == BN_OK && bw.gbps <= 0.0)
        bn_errf(err, errlen, BN_OK, "vulkan: the copies took no time the timestamps could see (too coarse a clock)");
    if (st == BN_OK) *gbps = bw.gbps;
    if (st == BN_OK || !bw.device_failed) return BN_OK; /* not measured: err says why */
    bn_vk_stream_kill(c->stream, st, err);
    return st;
}

uint32_t bn_backend_vk_get_profile(const struct bn_backend *be, struct bn_backend_vk_op_time *out, uint32_t max)
{
    if (!be || be->iface.destroy != vk_destroy || !be->ctx) return 0;
    const struct bn_vk_profile_entry *pe;
    const uint32_t n = bn_vk_stream_get_profile(((const struct vk_ctx *)be->ctx)->stream, &pe);
    uint32_t k = 0;
    for (; k < n && k < max; k++) out[k] = (struct bn_backend_vk_op_time){pe[k].name, pe[k].ms, pe[k].dispatches};
    return k;
}
