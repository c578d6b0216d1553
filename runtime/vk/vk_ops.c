/*
 * vk_ops.c - the op encoders: pick the shader variant, fill its push
 * constants, size its grid, record it. Everything numeric happens in the
 * shaders; the host only computes what the reference computes on the host
 * too (1/sqrt(head_dim), the RoPE frequencies).
 */
#include "vk_ops.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bn_shaders.h"
#include "vk_push.h"

struct pipe_info {
    const char *name;
    const uint32_t *spv;
    const size_t *spv_len;
    uint32_t n_bindings;
    uint32_t write_mask;
    uint32_t push_size;
    uint32_t fixed_wg; /* local size fixed in the shader; 0: specialized to ops->wg */
    /* The variant with subgroup-arithmetic reductions (-DUSE_SUBGROUP), for
     * shaders that reduce over the workgroup; NULL for the others. */
    const char *name_sg;
    const uint32_t *spv_sg;
    const size_t *spv_sg_len;
};

#define PIPE(name, nb, writes, push, wg) \
    {#name, name##_spv, &name##_spv_len, nb, writes, sizeof(struct push), wg, NULL, NULL, NULL}
#define PIPE_SG(name, nb, writes, push, wg)                                                                \
    {#name, name##_spv, &name##_spv_len, nb, writes, sizeof(struct push), wg, #name "_sg", name##_sg_spv, \
     &name##_sg_spv_len}
static const struct pipe_info pipe_info[BN_VK_PIPE_COUNT] = {
    [BN_VK_PIPE_EMBED_F16] = PIPE(embed_f16_i32_f32, 3, 1u << 2, bn_pc_embed, 0),
    [BN_VK_PIPE_EMBED_F32] = PIPE(embed_f32_i32_f32, 3, 1u << 2, bn_pc_embed, 0),
    [BN_VK_PIPE_RMSNORM] = PIPE_SG(rmsnorm_f32_f32, 3, 1u << 2, bn_pc_norm, 0),
    [BN_VK_PIPE_QUANTIZE] = PIPE_SG(quantize_f32_i8, 4, 3u << 2, bn_pc_norm, 0),
    [BN_VK_PIPE_QUANTIZE_NORM] = PIPE_SG(quantize_f32_i8_norm, 4, 3u << 2, bn_pc_norm, 0),
    [BN_VK_PIPE_MATVEC] = PIPE(matvec_t2_i8_f32, 5, 1u << 4, bn_pc_matmul, 0),
    [BN_VK_PIPE_MATVEC_DOT] = PIPE(matvec_t2_i8_f32_dot, 5, 1u << 4, bn_pc_matmul, 0),
    [BN_VK_PIPE_MATMUL] = PIPE(matmul_t2_i8_f32, 5, 1u << 4, bn_pc_matmul, 128),
    [BN_VK_PIPE_MATMUL_DOT] = PIPE(matmul_t2_i8_f32_dot, 5, 1u << 4, bn_pc_matmul, 128),
    [BN_VK_PIPE_ROPE] = PIPE(rope_f32_f32, 2, 1u << 0, bn_pc_rope, 0),
    [BN_VK_PIPE_KV_F16] = PIPE(kv_store_f32_f16, 4, 3u << 2, bn_pc_kv, 0),
    [BN_VK_PIPE_KV_F32] = PIPE(kv_store_f32_f32, 4, 3u << 2, bn_pc_kv, 0),
    [BN_VK_PIPE_ATTN_DECODE_F16] = PIPE(attn_decode_f16_f32_f32, 4, 1u << 3, bn_pc_attn, 0),
    [BN_VK_PIPE_ATTN_DECODE_F32] = PIPE(attn_decode_f32_f32_f32, 4, 1u << 3, bn_pc_attn, 0),
    [BN_VK_PIPE_ATTN_REDUCE] = PIPE(attn_reduce_f32_f32, 2, 1u << 1, bn_pc_attn, 0),
    [BN_VK_PIPE_ATTN_PREFILL_F16] = PIPE(attn_prefill_f16_f32_f32, 4, 1u << 3, bn_pc_attn, 64),
    [BN_VK_PIPE_ATTN_PREFILL_F32] = PIPE(attn_prefill_f32_f32_f32, 4, 1u << 3, bn_pc_attn, 64),
    [BN_VK_PIPE_FFN_ACT] = PIPE(ffn_act_f32_f32, 3, 1u << 2, bn_pc_act, 0),
    [BN_VK_PIPE_HEAD_F16] = PIPE_SG(head_f16_f32_f32, 3, 1u << 2, bn_pc_head, 0),
    [BN_VK_PIPE_HEAD_F32] = PIPE_SG(head_f32_f32_f32, 3, 1u << 2, bn_pc_head, 0),
    [BN_VK_PIPE_QUANTIZE_I16] = PIPE_SG(quantize_f32_i16, 3, 3u << 1, bn_pc_norm, 0),
    [BN_VK_PIPE_HEAD_Q8] = PIPE(head_q8_i8_f32, 5, 1u << 4, bn_pc_head, 0),
    [BN_VK_PIPE_ARGMAX] = PIPE(argmax_f32_i32, 2, 1u << 1, bn_pc_argmax, 0),
    [BN_VK_PIPE_TOPK] = PIPE(topk_f32, 4, 7u << 1, bn_pc_topk, 0),
    [BN_VK_PIPE_PROJ] = PIPE_SG(proj_t2_f32_f32, 5, 1u << 4, bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_DOT] = PIPE_SG(proj_t2_f32_f32_dot, 5, 1u << 4, bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_GATE_UP] = PIPE_SG(proj_gate_up_t2_f32_f32, 7, 1u << 6, bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_GATE_UP_DOT] = PIPE_SG(proj_gate_up_t2_f32_f32_dot, 7, 1u << 6, bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_QKV_F16] = PIPE_SG(proj_qkv_t2_f32_f16, 12, (1u << 8) | (3u << 10), bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_QKV_F16_DOT] = PIPE_SG(proj_qkv_t2_f32_f16_dot, 12, (1u << 8) | (3u << 10), bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_QKV_F32] = PIPE_SG(proj_qkv_t2_f32_f32, 12, (1u << 8) | (3u << 10), bn_pc_proj, 0),
    [BN_VK_PIPE_PROJ_QKV_F32_DOT] = PIPE_SG(proj_qkv_t2_f32_f32_dot, 12, (1u << 8) | (3u << 10), bn_pc_proj, 0),
};
#undef PIPE
#undef PIPE_SG

/* Shader-side constants the host sizes grids and buffers with. */
#define MATVEC_MAX_ITEMS 1024 /* matvec_t2_i8_f32.comp MAX_ITEMS        */
#define MATMUL_TN 32          /* matmul_t2_i8_f32.comp TN, TM           */
#define MATMUL_TM 32
#define HEAD_R 4              /* head_f16_f32_f32.comp R, T             */
#define HEAD_T 4
#define HEAD_MAX_WG 128       /* its shared memory is R * T * WG floats  */
#define ATTN_BR 16            /* attn_prefill: rows per workgroup       */
#define ATTN_BCMAX 32         /* attn_prefill: keys per tile, at most   */
#define ATTN_SHARED_FIXED (ATTN_BR * ATTN_BCMAX * 4 * 4) /* its score array, bytes */
#define ATTN_MAX_CHUNK 256    /* attn_decode: MAX_CHUNK                  */
#define TOPK_TILE 1024        /* topk_f32.comp TILE                      */
#define TOPK_MAX_PARTS 64     /* bounds the merge pass's input           */
#define PROJ_MAX_Q_WORDS 2048 /* proj_t2_f32_f32.comp: MAX_Q_WORDS, MAX_ROWS */
#define PROJ_MAX_ROWS 512
#define PROJ_SHARED_FIXED ((PROJ_MAX_Q_WORDS + MATVEC_MAX_ITEMS + PROJ_MAX_ROWS) * 4) /* + 4 * wg */

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

static void fail(struct bn_vk_ops *o, enum bn_status st, const char *fmt, const char *what)
{
    char msg[256];
    snprintf(msg, sizeof msg, fmt, what);
    bn_vk_stream_fail(o->stream, st, msg);
}

enum bn_status bn_vk_ops_init(struct bn_vk_ops *o, const struct bn_vk_device *dev, bn_vk_allocator *alloc,
                              bn_vk_stream *stream, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->dev = dev;
    o->alloc = alloc;
    o->stream = stream;
    const struct bn_vk_device_info *info = dev->info;
    bn_vk_tuning_for(info, &o->tune);
    /* The tuned size, or a few subgroups per workgroup; a power of two for
     * the tree reductions, within the device's limits. */
    uint32_t wg = o->tune.wg;
    if (wg == 0) {
        const uint32_t sg = info->features.subgroup_size ? info->features.subgroup_size : 32;
        wg = 64;
        while (wg < 4 * sg && wg < 256) wg *= 2;
    }
    const struct bn_vk_limits *lim = &info->limits;
    while (wg > 32 && (wg > lim->max_workgroup_invocations || wg > lim->max_workgroup_size[0])) wg /= 2;
    o->wg = wg;
    uint32_t tile = (info->limits.max_shared_memory - ATTN_SHARED_FIXED - 256) / 8;
    o->attn_tile = tile > 4096 ? 4096 : tile;
    const char *no_dot = getenv("BN_VK_DISABLE_INTDOT");
    o->use_dot = info->features.int_dot && o->tune.int_dot && !(no_dot && no_dot[0] && strcmp(no_dot, "0") != 0);
    /* A subgroup reduction groups a sum by subgroup, so every pipeline that
     * reduces the same row (quantize and the fused projections' prologue)
     * must run at one subgroup size, or fused and unfused could round
     * differently: the size is pinned where the device allows it (subgroup
     * size control, the workgroup within its subgroup count), needs no pin
     * where it cannot vary, and otherwise the tree reductions stay. */
    const struct bn_vk_features *f = &info->features;
    const bool can_pin = f->subgroup_size_control && f->subgroup_size >= f->min_subgroup_size &&
                         f->subgroup_size <= f->max_subgroup_size &&
                         wg <= (uint64_t)f->max_workgroup_subgroups * f->subgroup_size;
    o->subgroup_size = can_pin ? f->subgroup_size : 0;
    o->use_subgroup = f->subgroup_arith && o->tune.subgroup && (can_pin || f->min_subgroup_size == f->max_subgroup_size);
    VkPhysicalDeviceProperties props;
    dev->ifn->vkGetPhysicalDeviceProperties(dev->physical, &props);
    o->max_bindings = props.limits.maxPerStageDescriptorStorageBuffers;
    if (o->max_bindings > props.limits.maxDescriptorSetStorageBuffers)
        o->max_bindings = props.limits.maxDescriptorSetStorageBuffers;
    return bn_vk_alloc(alloc, BN_VK_MEM_ACTIVATIONS, 16, &o->dummy, err, errlen);
}

void bn_vk_ops_forget_model(struct bn_vk_ops *o)
{
    for (uint32_t i = 0; i < o->n_ropes; i++) bn_vk_stream_release(o->stream, &o->ropes[i].r);
    o->n_ropes = 0;
}

void bn_vk_ops_free(struct bn_vk_ops *o)
{
    for (uint32_t i = 0; i < o->n_ropes; i++) bn_vk_free(o->alloc, &o->ropes[i].r);
    free(o->ropes);
    bn_vk_free(o->alloc, &o->scratch);
    bn_vk_free(o->alloc, &o->topk_part);
    bn_vk_free(o->alloc, &o->head_x16);
    bn_vk_free(o->alloc, &o->dummy);
    for (int i = 0; i < BN_VK_PIPE_COUNT; i++) bn_vk_pipeline_destroy(o->dev, &o->pipes[i]);
    memset(o, 0, sizeof *o);
}

/* The workgroup size pipeline id runs with: fixed in its shader, or the
 * ops' size, capped for the head shaders (their shared memory is
 * R * T * WG words). */
static uint32_t pipe_wg(const struct bn_vk_ops *o, enum bn_vk_pipe id)
{
    if (pipe_info[id].fixed_wg) return pipe_info[id].fixed_wg;
    const bool head = id == BN_VK_PIPE_HEAD_F16 || id == BN_VK_PIPE_HEAD_F32 || id == BN_VK_PIPE_HEAD_Q8;
    return head && o->wg > HEAD_MAX_WG ? HEAD_MAX_WG : o->wg;
}

/* The pipeline, created on its first use; NULL after a failure (latched). */
static const struct bn_vk_pipeline *pipe(struct bn_vk_ops *o, enum bn_vk_pipe id)
{
    if (!bn_vk_stream_ok(o->stream)) return NULL;
    struct bn_vk_pipeline *p = &o->pipes[id];
    if (p->pipeline != VK_NULL_HANDLE) return p;
    const struct pipe_info *pi = &pipe_info[id];
    const uint32_t wg = pipe_wg(o, id);
    const bool sg = o->use_subgroup && pi->spv_sg;
    struct bn_vk_pipeline_desc d = {.name = sg ? pi->name_sg : pi->name,
                                    .spv = sg ? pi->spv_sg : pi->spv,
                                    .spv_len = sg ? *pi->spv_sg_len : *pi->spv_len,
                                    .n_bindings = pi->n_bindings,
                                    .write_mask = pi->write_mask,
                                    .push_size = pi->push_size,
                                    .wg_size = wg,
                                    .spec = {wg, o->attn_tile},
                                    .n_spec = 2,
                                    .subgroup_size = sg ? o->subgroup_size : 0};
    char err[256];
    enum bn_status st = bn_vk_pipeline_create(o->dev, VK_NULL_HANDLE, &d, p, err, sizeof err);
    if (st != BN_OK) {
        bn_vk_stream_fail(o->stream, st, err);
        return NULL;
    }
    return p;
}

/* An activation region of the ops' own (scratch) holding at least bytes;
 * false after a failure, which is latched on the stream. A smaller one is
 * handed to the stream rather than freed: earlier recorded passes may
 * still read it. */
static bool ensure_scratch(struct bn_vk_ops *o, struct bn_vk_region *r, VkDeviceSize bytes)
{
    if (r->size >= bytes) return true;
    bn_vk_stream_release(o->stream, r);
    char err[256];
    const enum bn_status st = bn_vk_alloc(o->alloc, BN_VK_MEM_ACTIVATIONS, bytes, r, err, sizeof err);
    if (st != BN_OK) bn_vk_stream_fail(o->stream, st, err);
    return st == BN_OK;
}

static void dispatch(struct bn_vk_ops *o, const struct bn_vk_pipeline *p, const struct bn_vk_region *r, uint32_t n,
                     const void *push, uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz, uint32_t group)
{
    bn_vk_stream_dispatch(o->stream, p, r, n, push, push_size, gx, gy, gz, group);
}

static uint32_t next_group(struct bn_vk_ops *o)
{
    if (++o->group_seq == 0) o->group_seq = 1;
    return o->group_seq;
}

void bn_vk_op_embed(struct bn_vk_ops *o, const struct bn_vk_weight *table, const struct bn_vk_region *tokens,
                    uint32_t n_rows, const struct bn_vk_region *out)
{
    if (n_rows == 0) return;
    const bool f16 = table->kind == BN_VK_W_F16;
    const struct bn_vk_pipeline *p = pipe(o, f16 ? BN_VK_PIPE_EMBED_F16 : BN_VK_PIPE_EMBED_F32);
    if (!p) return;
    const uint32_t group = next_group(o);
    for (uint32_t i = 0; i < table->n_parts; i++) {
        const struct bn_vk_part *part = &table->parts[i];
        struct bn_pc_embed pc = {.n_rows = n_rows, .width = table->k, .row0 = part->row0, .part_rows = part->n_rows};
        const struct bn_vk_region r[3] = {part->data, *tokens, *out};
        dispatch(o, p, r, 3, &pc, sizeof pc, ceil_div(f16 ? table->k / 2 : table->k, p->wg_size), n_rows, 1, group);
    }
}

void bn_vk_op_rmsnorm(struct bn_vk_ops *o, const struct bn_vk_region *x, uint32_t row0, uint32_t n_rows,
                      uint32_t width, const struct bn_vk_weight *w, float eps, const struct bn_vk_region *out)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *p = pipe(o, BN_VK_PIPE_RMSNORM);
    if (!p) return;
    struct bn_pc_norm pc = {.n_rows = n_rows, .width = width, .row0 = row0, .has_w = w != NULL, .eps = eps};
    const struct bn_vk_region r[3] = {*x, w ? w->parts[0].data : o->dummy, *out};
    dispatch(o, p, r, 3, &pc, sizeof pc, n_rows, 1, 1, 0);
}

void bn_vk_op_quantize(struct bn_vk_ops *o, const struct bn_vk_region *x, uint32_t n_rows, uint32_t width,
                       const struct bn_vk_weight *w, float eps, const struct bn_vk_region *q,
                       const struct bn_vk_region *q_scale)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *p = pipe(o, w ? BN_VK_PIPE_QUANTIZE_NORM : BN_VK_PIPE_QUANTIZE);
    if (!p) return;
    struct bn_pc_norm pc = {.n_rows = n_rows, .width = width, .row0 = 0, .has_w = w != NULL, .eps = eps};
    const struct bn_vk_region r[4] = {*x, w ? w->parts[0].data : o->dummy, *q, *q_scale};
    dispatch(o, p, r, 4, &pc, sizeof pc, n_rows, 1, 1, 0);
}

/* Weight rows per matvec workgroup: the tuned count, or about two blocks
 * per thread; within the shader's item array either way. */
static uint32_t matvec_rows(const struct bn_vk_ops *o, uint32_t wg, uint32_t nb)
{
    uint32_t rows = o->tune.rows ? o->tune.rows : ceil_div(2 * wg, nb);
    if (rows > MATVEC_MAX_ITEMS / nb) rows = MATVEC_MAX_ITEMS / nb;
    if (rows > 64) rows = 64;
    return rows ? rows : 1;
}

void bn_vk_op_matmul(struct bn_vk_ops *o, const struct bn_vk_weight *w, float lin_scale, const struct bn_vk_region *q,
                     const struct bn_vk_region *q_scale, uint32_t n_rows, const struct bn_vk_region *out,
                     bool accumulate)
{
    if (n_rows == 0) return;
    if (w->nb > MATVEC_MAX_ITEMS) {
        fail(o, BN_ERR_MODEL, "vulkan: ternary rows longer than 262144 weights are not supported%s", "");
        return;
    }
    /* Decode reads each weight once per token: the matvec spreads a row's
     * blocks over threads. Prefill tiles weights x tokens in shared memory. */
    const bool vec = n_rows == 1;
    const enum bn_vk_pipe id = vec ? (o->use_dot ? BN_VK_PIPE_MATVEC_DOT : BN_VK_PIPE_MATVEC)
                                   : (o->use_dot ? BN_VK_PIPE_MATMUL_DOT : BN_VK_PIPE_MATMUL);
    const struct bn_vk_pipeline *p = pipe(o, id);
    if (!p) return;
    const uint32_t rows_per_wg = matvec_rows(o, p->wg_size, w->nb);
    const uint32_t group = next_group(o);
    for (uint32_t i = 0; i < w->n_parts; i++) {
        const struct bn_vk_part *part = &w->parts[i];
        struct bn_pc_matmul pc = {.n_tok = n_rows,
                                  .k_words = w->k_words,
                                  .n_rows = part->n_rows,
                                  .row0 = part->row0,
                                  .out_stride = w->n,
                                  .nb = w->nb,
                                  .per_block = w->per_block,
                                  .accumulate = accumulate,
                                  .w_scale = w->w_scale,
                                  .lin_scale = lin_scale,
                                  .rows_per_wg = rows_per_wg};
        const struct bn_vk_region r[5] = {part->data, w->per_block ? part->scales : o->dummy, *q, *q_scale, *out};
        if (vec) dispatch(o, p, r, 5, &pc, sizeof pc, ceil_div(part->n_rows, rows_per_wg), n_rows, 1, group);
        else dispatch(o, p, r, 5, &pc, sizeof pc, ceil_div(part->n_rows, MATMUL_TN), ceil_div(n_rows, MATMUL_TM), 1, group);
    }
}

void bn_vk_rope_freqs(float base, uint32_t n_rot, const float *freq_factors, uint32_t *words)
{
    const double two_pi = 6.283185307179586476925286766559;
    for (uint32_t j = 0; j < n_rot / 2; j++) {
        /* The reference's angle is pos * inv_freq in double; the shader
         * needs inv_freq in turns, modulo whole turns. */
        double inv = pow((double)base, -2.0 * (double)j / (double)n_rot);
        if (freq_factors) inv /= (double)freq_factors[j];
        double turns = inv / two_pi;
        turns -= floor(turns);
        const double hi = floor(ldexp(turns, 32));
        const double lo = floor(ldexp(ldexp(turns, 32) - hi, 32));
        words[2 * j] = (uint32_t)lo;
        words[2 * j + 1] = (uint32_t)hi;
    }
}

/* The frequency table of these RoPE arguments, made and uploaded (in the
 * stream, ahead of its first use) the first time they are seen. */
static const struct bn_vk_region *rope_table(struct bn_vk_ops *o, const struct bn_rope_args *a)
{
    const void *ff = a->freq_factors ? a->freq_factors->data : NULL;
    for (uint32_t i = 0; i < o->n_ropes; i++)
        if (o->ropes[i].base == a->base && o->ropes[i].n_rot == a->n_rot && o->ropes[i].freq_factors == ff)
            return &o->ropes[i].r;
    struct bn_vk_rope_table *grown = realloc(o->ropes, (o->n_ropes + 1) * sizeof *grown);
    uint32_t *words = malloc((size_t)a->n_rot * sizeof *words);
    if (!grown || !words) {
        if (grown) o->ropes = grown;
        free(words);
        fail(o, BN_ERR_NOMEM, "vulkan: out of memory%s", "");
        return NULL;
    }
    o->ropes = grown;
    struct bn_vk_rope_table *t = &o->ropes[o->n_ropes];
    memset(t, 0, sizeof *t);
    char err[256];
    enum bn_status st = bn_vk_alloc(o->alloc, BN_VK_MEM_WEIGHTS, (VkDeviceSize)a->n_rot * 4, &t->r, err, sizeof err);
    if (st != BN_OK) {
        free(words);
        bn_vk_stream_fail(o->stream, st, err);
        return NULL;
    }
    t->base = a->base;
    t->n_rot = a->n_rot;
    t->freq_factors = ff;
    o->n_ropes++;
    bn_vk_rope_freqs(a->base, a->n_rot, ff, words);
    bn_vk_stream_write(o->stream, &t->r, 0, words, (VkDeviceSize)a->n_rot * 4);
    free(words);
    return &t->r;
}

void bn_vk_op_rope(struct bn_vk_ops *o, const struct bn_vk_region *x, const struct bn_rope_args *a)
{
    if (a->n_rows == 0 || a->n_rot < 2) return;
    const struct bn_vk_pipeline *p = pipe(o, BN_VK_PIPE_ROPE);
    const struct bn_vk_region *table = p ? rope_table(o, a) : NULL;
    if (!table) return;
    struct bn_pc_rope pc = {.n_rows = a->n_rows,
                            .n_head = a->n_head,
                            .head_dim = a->head_dim,
                            .n_rot = a->n_rot,
                            .pos0 = a->pos0,
                            .neox = a->kind == BN_ROPE_NEOX};
    const struct bn_vk_region r[2] = {*x, *table};
    dispatch(o, p, r, 2, &pc, sizeof pc, ceil_div(a->n_head * (a->n_rot / 2), p->wg_size), a->n_rows, 1, 0);
}

void bn_vk_op_kv_store(struct bn_vk_ops *o, const struct bn_vk_region *k, const struct bn_vk_region *v,
                       const struct bn_attn_args *a, const struct bn_vk_region *cache_k,
                       const struct bn_vk_region *cache_v)
{
    if (a->n_rows == 0) return;
    const bool f16 = a->kv_type == BN_KV_F16;
    const struct bn_vk_pipeline *p = pipe(o, f16 ? BN_VK_PIPE_KV_F16 : BN_VK_PIPE_KV_F32);
    if (!p) return;
    const uint32_t width = a->n_head_kv * a->head_dim;
    struct bn_pc_kv pc = {.n_rows = a->n_rows, .width = width, .pos0 = a->pos0};
    const struct bn_vk_region r[4] = {*k, *v, *cache_k, *cache_v};
    dispatch(o, p, r, 4, &pc, sizeof pc, ceil_div(f16 ? width / 2 : width, p->wg_size), a->n_rows, 1, 0);
}

/* Cache positions per decode split: enough splits to spread a long cache
 * over the device, few enough that the reduce pass stays short. */
static uint32_t decode_chunk(const struct bn_vk_ops *o, uint32_t len)
{
    if (o->tune.attn_chunk) return o->tune.attn_chunk;
    if (len <= 4096) return 64;
    return len <= 8192 ? 128 : ATTN_MAX_CHUNK;
}

void bn_vk_op_attention(struct bn_vk_ops *o, const struct bn_vk_region *q, const struct bn_vk_region *cache_k,
                        const struct bn_vk_region *cache_v, const struct bn_attn_args *a,
                        const struct bn_vk_region *out)
{
    if (a->n_rows == 0) return;
    const bool f16 = a->kv_type == BN_KV_F16;
    const uint32_t hd = a->head_dim, len = a->pos0 + a->n_rows;
    struct bn_pc_attn pc = {.n_rows = a->n_rows,
                            .pos0 = a->pos0,
                            .n_head = a->n_head,
                            .group = a->n_head / a->n_head_kv,
                            .head_dim = hd,
                            .kv_width = a->n_head_kv * hd,
                            .scale = 1.0f / sqrtf((float)hd)};
    if (a->n_rows > 1) {
        const struct bn_vk_pipeline *p = pipe(o, f16 ? BN_VK_PIPE_ATTN_PREFILL_F16 : BN_VK_PIPE_ATTN_PREFILL_F32);
        if (!p) return;
        pc.chunk = o->attn_tile / hd < ATTN_BCMAX ? o->attn_tile / hd : ATTN_BCMAX;
        const struct bn_vk_region r[4] = {*q, *cache_k, *cache_v, *out};
        dispatch(o, p, r, 4, &pc, sizeof pc, ceil_div(a->n_rows, ATTN_BR), a->n_head, 1, 0);
        return;
    }
    /* Decode: partial softmax per split of the cache, then the reduce. */
    const struct bn_vk_pipeline *p1 = pipe(o, f16 ? BN_VK_PIPE_ATTN_DECODE_F16 : BN_VK_PIPE_ATTN_DECODE_F32);
    const struct bn_vk_pipeline *p2 = pipe(o, BN_VK_PIPE_ATTN_REDUCE);
    if (!p1 || !p2) return;
    pc.chunk = decode_chunk(o, len);
    pc.n_split = ceil_div(len, pc.chunk);
    const VkDeviceSize bytes = (VkDeviceSize)a->n_rows * a->n_head * pc.n_split * (hd + 2) * sizeof(float);
    if (!ensure_scratch(o, &o->scratch, bytes)) return;
    const struct bn_vk_region scratch = bn_vk_region_sub(&o->scratch, 0, bytes);
    const struct bn_vk_region r1[4] = {*q, *cache_k, *cache_v, scratch};
    dispatch(o, p1, r1, 4, &pc, sizeof pc, pc.n_split, a->n_head, a->n_rows, 0);
    const struct bn_vk_region r2[2] = {scratch, *out};
    dispatch(o, p2, r2, 2, &pc, sizeof pc, a->n_head, a->n_rows, 1, 0);
}

void bn_vk_op_ffn_act(struct bn_vk_ops *o, const struct bn_vk_region *gate, const struct bn_vk_region *up,
                      uint32_t n_rows, uint32_t width, enum bn_ffn_act act, const struct bn_vk_region *out)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *p = pipe(o, BN_VK_PIPE_FFN_ACT);
    if (!p) return;
    struct bn_pc_act pc = {.width = width, .n_rows = n_rows, .act = act == BN_ACT_SILU};
    const struct bn_vk_region r[3] = {*gate, *up, *out};
    dispatch(o, p, r, 3, &pc, sizeof pc, ceil_div(width, p->wg_size), n_rows, 1, 0);
}

void bn_vk_op_head(struct bn_vk_ops *o, const struct bn_vk_weight *w, const struct bn_vk_region *x, uint32_t n_rows,
                   const struct bn_vk_region *logits)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *p = pipe(o, w->kind == BN_VK_W_F16 ? BN_VK_PIPE_HEAD_F16 : BN_VK_PIPE_HEAD_F32);
    if (!p) return;
    const uint32_t group = next_group(o);
    for (uint32_t i = 0; i < w->n_parts; i++) {
        const struct bn_vk_part *part = &w->parts[i];
        struct bn_pc_head pc = {.n_tok = n_rows, .k = w->k, .n_rows = part->n_rows, .row0 = part->row0,
                                .out_stride = w->n};
        const struct bn_vk_region r[3] = {part->data, *x, *logits};
        dispatch(o, p, r, 3, &pc, sizeof pc, ceil_div(part->n_rows, HEAD_R), ceil_div(n_rows, HEAD_T), 1, group);
    }
}

/* head_q8_i8_f32.comp: a thread's int32 partial covers ceil(k / 16 / WG)
 * runs of 16 products of at most 127 * 32767; 32 runs (512 products) stay
 * below 2^31. */
#define HEAD_Q8_MAX_RUNS 32

bool bn_vk_head_q8_fits(const struct bn_vk_ops *o, uint32_t k)
{
    return ceil_div(k / 16, pipe_wg(o, BN_VK_PIPE_HEAD_Q8)) <= HEAD_Q8_MAX_RUNS;
}

void bn_vk_op_head_q8(struct bn_vk_ops *o, const struct bn_vk_weight *w, const struct bn_vk_region *x,
                      uint32_t n_rows, const struct bn_vk_region *logits)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *pq = pipe(o, BN_VK_PIPE_QUANTIZE_I16);
    const struct bn_vk_pipeline *ph = pipe(o, BN_VK_PIPE_HEAD_Q8);
    if (!pq || !ph) return;
    /* int16 rows, then the scales at an offset any device accepts for a
     * storage-buffer binding (minStorageBufferOffsetAlignment <= 256) */
    const VkDeviceSize q_bytes = ((VkDeviceSize)n_rows * w->k * 2 + 255) / 256 * 256, bytes = q_bytes + n_rows * 4;
    if (!ensure_scratch(o, &o->head_x16, bytes)) return;
    const struct bn_vk_region xq = bn_vk_region_sub(&o->head_x16, 0, q_bytes);
    const struct bn_vk_region xs = bn_vk_region_sub(&o->head_x16, q_bytes, (VkDeviceSize)n_rows * 4);
    struct bn_pc_norm qc = {.n_rows = n_rows, .width = w->k};
    const struct bn_vk_region rq[3] = {*x, xq, xs};
    dispatch(o, pq, rq, 3, &qc, sizeof qc, n_rows, 1, 1, 0);
    const uint32_t group = next_group(o);
    for (uint32_t i = 0; i < w->n_parts; i++) {
        const struct bn_vk_part *part = &w->parts[i];
        struct bn_pc_head pc = {.n_tok = n_rows, .k = w->k, .n_rows = part->n_rows, .row0 = part->row0,
                                .out_stride = w->n};
        const struct bn_vk_region r[5] = {part->data, part->scales, xq, xs, *logits};
        dispatch(o, ph, r, 5, &pc, sizeof pc, ceil_div(part->n_rows, HEAD_R), ceil_div(n_rows, HEAD_T), 1, group);
    }
}

void bn_vk_op_argmax(struct bn_vk_ops *o, const struct bn_vk_region *logits, uint32_t n_rows, uint32_t n_vocab,
                     const struct bn_vk_region *ids)
{
    if (n_rows == 0) return;
    const struct bn_vk_pipeline *p = pipe(o, BN_VK_PIPE_ARGMAX);
    if (!p) return;
    struct bn_pc_argmax pc = {.n_rows = n_rows, .n_vocab = n_vocab};
    const struct bn_vk_region r[2] = {*logits, *ids};
    dispatch(o, p, r, 2, &pc, sizeof pc, n_rows, 1, 1, 0);
}

void bn_vk_op_topk(struct bn_vk_ops *o, const struct bn_vk_region *logits, uint32_t n_vocab, uint32_t k,
                   const struct bn_vk_region *ids, const struct bn_vk_region *vals)
{
    if (k == 0 || k > BN_VK_TOPK_MAX || k > n_vocab) {
        bn_vk_stream_fail(o->stream, BN_ERR_USAGE, "vulkan: top-k needs 1 <= k <= min(256, n_vocab)");
        return;
    }
    const struct bn_vk_pipeline *p = pipe(o, BN_VK_PIPE_TOPK);
    if (!p) return;
    /* Slices of about four tiles spread the selection over the device; the
     * cap keeps the single-workgroup merge short (at most 64 * k inputs). */
    uint32_t n_parts = ceil_div(n_vocab, 4 * TOPK_TILE);
    if (n_parts > TOPK_MAX_PARTS) n_parts = TOPK_MAX_PARTS;
    const uint32_t chunk = ceil_div(n_vocab, n_parts);
    n_parts = ceil_div(n_vocab, chunk); /* no empty slice */
    struct bn_pc_topk pc = {.n_vocab = n_vocab, .k = k, .chunk = chunk, .n_parts = n_parts, .pass = 0};
    struct bn_vk_region part = o->dummy;
    if (n_parts > 1) {
        const VkDeviceSize bytes = (VkDeviceSize)TOPK_MAX_PARTS * BN_VK_TOPK_MAX * 2 * sizeof(uint32_t);
        /* Allocated once at its largest size, so it never moves under a
         * recorded pass. */
        if (!ensure_scratch(o, &o->topk_part, bytes)) return;
        part = bn_vk_region_sub(&o->topk_part, 0, (VkDeviceSize)n_parts * k * 2 * sizeof(uint32_t));
    }
    const struct bn_vk_region r[4] = {*logits, part, *ids, *vals};
    dispatch(o, p, r, 4, &pc, sizeof pc, n_parts, 1, 1, 0);
    if (n_parts > 1) {
        pc.pass = 1;
        dispatch(o, p, r, 4, &pc, sizeof pc, 1, 1, 1, 0);
    }
}

/* Whether the fused projection shader holds these weights over an input of
 * `width`: the device binds as many buffers as the variant has, one part
 * per weight (one binding), the same row layout, the int8 row and the item
 * array within the shader's shared arrays, and fusion not tuned off. */
static bool proj_fits(const struct bn_vk_ops *o, uint32_t width, const struct bn_vk_weight *const *w, uint32_t n)
{
    if (!o->tune.fuse || !bn_vk_stream_ok(o->stream)) return false;
    if (o->max_bindings < (n == 3 ? 12u : 3 + 2 * n)) return false; /* the variant's bindings */
    if ((uint64_t)PROJ_SHARED_FIXED + 4ull * o->wg > o->dev->info->limits.max_shared_memory) return false;
    for (uint32_t i = 0; i < n; i++) {
        if (w[i]->kind != BN_VK_W_TERNARY || w[i]->n_parts != 1 || w[i]->k != width) return false;
        if (w[i]->k_words != w[0]->k_words || w[i]->nb != w[0]->nb) return false;
    }
    return 4ull * w[0]->k_words <= PROJ_MAX_Q_WORDS && w[0]->nb <= MATVEC_MAX_ITEMS;
}

/* Rows per workgroup of the fused projections: the tuned count, else the
 * matvec's but at least 32. Every workgroup quantizes the whole input row
 * first: about as much arithmetic as 1 / 16 of a row per element, so
 * more rows per workgroup spread it thinner, fewer rows give more
 * workgroups to spread over the device. */
static uint32_t proj_rows(const struct bn_vk_ops *o, uint32_t wg, uint32_t nb)
{
    if (o->tune.rows) return o->tune.rows;
    const uint32_t rows = ceil_div(2 * wg, nb);
    return rows < 32 ? 32 : rows > 64 ? 64 : rows;
}

/* The push constants every fused projection shares: the input row and one
 * segment per weight. */
static struct bn_pc_proj proj_push(const struct bn_vk_proj_in *in, const struct bn_vk_weight *const *w,
                                   const float *lin_scale, uint32_t n, uint32_t rows_per_wg)
{
    struct bn_pc_proj pc = {.width = in->width,
                            .k_words = w[0]->k_words,
                            .nb = w[0]->nb,
                            .norm = in->norm != NULL,
                            .eps = in->eps,
                            .rows_per_wg = rows_per_wg};
    for (uint32_t i = 0; i < n; i++) {
        pc.seg_rows[i] = w[i]->n;
        pc.per_block |= (uint32_t)w[i]->per_block << i;
        pc.w_scale[i] = w[i]->w_scale;
        pc.lin_scale[i] = lin_scale[i];
    }
    return pc;
}

/* The first bindings of every variant: the row, the norm weight, each
 * segment's codes, then each segment's block scales (dummy for I2_S). */
static uint32_t proj_regions(const struct bn_vk_ops *o, const struct bn_vk_proj_in *in,
                             const struct bn_vk_weight *const *w, uint32_t n, struct bn_vk_region *r)
{
    uint32_t k = 0;
    r[k++] = *in->x;
    r[k++] = in->norm ? in->norm->parts[0].data : o->dummy;
    for (uint32_t i = 0; i < n; i++) r[k++] = w[i]->parts[0].data;
    for (uint32_t i = 0; i < n; i++) r[k++] = w[i]->per_block ? w[i]->parts[0].scales : o->dummy;
    return k;
}

static enum bn_vk_pipe proj_pipe(const struct bn_vk_ops *o, enum bn_vk_pipe plain)
{
    return o->use_dot ? (enum bn_vk_pipe)(plain + 1) : plain; /* each _DOT follows its plain variant */
}

bool bn_vk_op_proj_residual(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *w,
                            float lin_scale, const struct bn_vk_region *out)
{
    if (!proj_fits(o, in->width, &w, 1)) return false;
    const struct bn_vk_pipeline *p = pipe(o, proj_pipe(o, BN_VK_PIPE_PROJ));
    if (!p) return true; /* failure latched */
    const uint32_t rows = proj_rows(o, p->wg_size, w->nb);
    const struct bn_pc_proj pc = proj_push(in, &w, &lin_scale, 1, rows);
    struct bn_vk_region r[5];
    uint32_t k = proj_regions(o, in, &w, 1, r);
    r[k++] = *out;
    dispatch(o, p, r, k, &pc, sizeof pc, ceil_div(w->n, rows), 1, 1, 0);
    return true;
}

bool bn_vk_op_proj_gate_up(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *w_gate,
                           float gate_scale, const struct bn_vk_weight *w_up, float up_scale, enum bn_ffn_act act,
                           const struct bn_vk_region *out)
{
    const struct bn_vk_weight *const w[2] = {w_gate, w_up};
    if (!proj_fits(o, in->width, w, 2) || w_gate->n != w_up->n) return false;
    const struct bn_vk_pipeline *p = pipe(o, proj_pipe(o, BN_VK_PIPE_PROJ_GATE_UP));
    if (!p) return true;
    /* The same rows of both weights per workgroup (2 * rows in all). */
    const uint32_t rows = proj_rows(o, p->wg_size, w_gate->nb);
    const float scale[2] = {gate_scale, up_scale};
    struct bn_pc_proj pc = proj_push(in, w, scale, 2, rows);
    pc.act = act == BN_ACT_SILU;
    struct bn_vk_region r[7];
    uint32_t k = proj_regions(o, in, w, 2, r);
    r[k++] = *out;
    dispatch(o, p, r, k, &pc, sizeof pc, ceil_div(w_gate->n, rows), 1, 1, 0);
    return true;
}

bool bn_vk_op_proj_qkv(struct bn_vk_ops *o, const struct bn_vk_proj_in *in, const struct bn_vk_weight *const w[3],
                       const float lin_scale[3], const struct bn_rope_args *rope, const struct bn_attn_args *attn,
                       const struct bn_vk_region *q, const struct bn_vk_region *cache_k,
                       const struct bn_vk_region *cache_v)
{
    const uint32_t hd = attn->head_dim, kv_width = attn->n_head_kv * hd;
    /* Rope's pairs stay inside a workgroup (below). */
    if (!proj_fits(o, in->width, w, 3) || attn->n_rows != 1 || rope->n_rot < 2 || rope->n_rot > hd || hd % 4 != 0 ||
        hd > PROJ_MAX_ROWS || w[0]->n != attn->n_head * hd || w[1]->n != kv_width || w[2]->n != kv_width)
        return false;
    const bool f16 = attn->kv_type == BN_KV_F16;
    const struct bn_vk_pipeline *p = pipe(o, proj_pipe(o, f16 ? BN_VK_PIPE_PROJ_QKV_F16 : BN_VK_PIPE_PROJ_QKV_F32));
    const struct bn_vk_region *table = p ? rope_table(o, rope) : NULL;
    if (!table) return true;
    /* A workgroup holds a head, or where every dim is rotated a part of one
     * with whole pairs (the shader's local_row), split down towards the
     * other projections' rows per workgroup so that the dispatch has enough
     * workgroups; a part keeps a multiple of four rows (F16 pairs). */
    uint32_t rows = hd;
    if (rope->n_rot == hd) {
        const uint32_t target = proj_rows(o, p->wg_size, w[0]->nb);
        while (rows / 2 >= target && (rows / 2) % 4 == 0) rows /= 2;
    }
    struct bn_pc_proj pc = proj_push(in, w, lin_scale, 3, rows);
    pc.head_dim = hd;
    pc.n_rot = rope->n_rot;
    pc.pos = attn->pos0;
    pc.neox = rope->kind == BN_ROPE_NEOX;
    struct bn_vk_region r[12];
    uint32_t k = proj_regions(o, in, w, 3, r);
    r[k++] = *q;
    r[k++] = *table;
    r[k++] = *cache_k;
    r[k++] = *cache_v;
    const uint32_t groups = w[0]->n / rows + 2 * (kv_width / rows);
    dispatch(o, p, r, k, &pc, sizeof pc, groups, 1, 1, 0);
    return true;
}
