/*
 * vk_weights.c - repacking the model's tensors into the shaders' layouts
 * and uploading them, row range by row range.
 */
#include "vk_weights.h"

#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "threadpool.h"

uint32_t bn_vk_pack_codes16(const uint8_t codes[16])
{
    /* Weight 4j + i at bits 8i + 2j: a shift by 2j and a mask then line up
     * four consecutive weights with the four int8 of one activation word. */
    uint32_t w = 0;
    for (uint32_t j = 0; j < 4; j++)
        for (uint32_t i = 0; i < 4; i++) w |= (uint32_t)(codes[4 * j + i] & 3u) << (8 * i + 2 * j);
    return w;
}

static float fp16_at(const uint8_t *p) { return bn_fp16_to_fp32((uint16_t)(p[0] | (p[1] << 8))); }

/* The raw 2-bit codes (0..3, code = trit + 1) of one row of k weights, and
 * for TQ the block scales. Raw codes, not trits: a malformed code 3 must
 * reach the shader as 3 (it counts +2 there, as in the scalar reference). */
static void row_codes(uint32_t type, const uint8_t *row, uint32_t k, uint8_t *codes, float *d)
{
    static const uint8_t pow3[5] = {1, 3, 9, 27, 81};
    switch (type) {
    case BN_TYPE_I2_S: /* byte p of a 128-block: weights p, p+32, p+64, p+96 in bits 7-6 .. 1-0 */
        for (uint32_t b = 0; b < k; b += 128)
            for (uint32_t p = 0; p < 32; p++) {
                const uint8_t c = row[b / 4 + p];
                codes[b + p] = c >> 6;
                codes[b + p + 32] = (c >> 4) & 3;
                codes[b + p + 64] = (c >> 2) & 3;
                codes[b + p + 96] = c & 3;
            }
        break;
    case BN_TYPE_TQ2_0: /* weight 128g + 32l + m in byte 32g + m, bits 2l */
        for (uint32_t b = 0; b < k / 256; b++) {
            const uint8_t *q = row + (size_t)b * BN_TQ2_0_BYTES;
            uint8_t *c = codes + 256 * b;
            for (uint32_t g = 0; g < 2; g++)
                for (uint32_t m = 0; m < 32; m++)
                    for (uint32_t l = 0; l < 4; l++) c[128 * g + 32 * l + m] = (q[32 * g + m] >> (2 * l)) & 3;
            d[b] = fp16_at(q + 64);
        }
        break;
    default: /* TQ1_0: base-3 digits as fixed-point fractions (formats.h) */
        for (uint32_t b = 0; b < k / 256; b++) {
            const uint8_t *q = row + (size_t)b * BN_TQ1_0_BYTES;
            uint8_t *c = codes + 256 * b;
#define DIGIT(byte, n) ((uint8_t)((((uint8_t)((byte) * pow3[n])) * 3u) >> 8))
            for (uint32_t n = 0; n < 5; n++)
                for (uint32_t m = 0; m < 32; m++) c[m + 32 * n] = DIGIT(q[m], n);
            for (uint32_t n = 0; n < 5; n++)
                for (uint32_t m = 0; m < 16; m++) c[160 + m + 16 * n] = DIGIT(q[32 + m], n);
            for (uint32_t n = 0; n < 4; n++)
                for (uint32_t j = 0; j < 4; j++) c[240 + j + 4 * n] = DIGIT(q[48 + j], n);
#undef DIGIT
            d[b] = fp16_at(q + 52);
        }
        break;
    }
}

static size_t file_row_bytes(const struct bn_tensor *t)
{
    const size_t k = (size_t)t->ne[0];
    switch (t->type) {
    case BN_TYPE_I2_S: return k / 4;
    case BN_TYPE_TQ2_0: return k / 256 * BN_TQ2_0_BYTES;
    case BN_TYPE_TQ1_0: return k / 256 * BN_TQ1_0_BYTES;
    default: return t->nbytes / (size_t)(t->ne[1] ? t->ne[1] : 1); /* tables, vectors */
    }
}

/* Device bytes per row: the data and (TQ) the scales. */
static void device_row_bytes(const struct bn_vk_weight *w, uint64_t *data, uint64_t *scales)
{
    *scales = 0;
    switch (w->kind) {
    case BN_VK_W_TERNARY:
        *data = (uint64_t)w->k_words * 4;
        *scales = w->per_block ? (uint64_t)w->nb * 4 : 0;
        break;
    case BN_VK_W_F16: *data = (uint64_t)w->k * 2; break;
    default: *data = (uint64_t)w->k * 4; break;
    }
}

static enum bn_status describe(const struct bn_tensor *t, struct bn_vk_weight *w, char *err, size_t errlen)
{
    memset(w, 0, sizeof *w);
    w->k = (uint32_t)t->ne[0];
    w->n = t->n_dims > 1 ? (uint32_t)t->ne[1] : 1;
    if (bn_type_is_ternary(t->type)) {
        /* Every ternary format's rows are whole 128-weight multiples. */
        if (w->k % 128 != 0)
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: row length %u is not a multiple of 128", t->name, w->k);
        w->kind = BN_VK_W_TERNARY;
        w->k_words = w->k / 16;
        w->nb = (w->k + 255) / 256;
        w->per_block = t->type != BN_TYPE_I2_S;
        w->w_scale = 1.0f;
        if (t->type == BN_TYPE_I2_S) w->w_scale = bn_i2s_scale(t->data, (size_t)w->k * w->n);
        return BN_OK;
    }
    switch (t->type) {
    /* Table rows are read 16 bytes at a time (shaders/head_f16_f32_f32.comp). */
    case BN_TYPE_F16:
        if (t->n_dims > 1 && w->k % 8 != 0)
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: row length %u is not a multiple of 8", t->name, w->k);
        w->kind = BN_VK_W_F16;
        return BN_OK;
    case BN_TYPE_F32:
    case BN_TYPE_BF16:
    case BN_TYPE_Q8_0:
    case BN_TYPE_Q6_K:
        if (t->n_dims > 1 && w->k % 8 != 0)
            return bn_errf(err, errlen, BN_ERR_MODEL, "%s: row length %u is not a multiple of 8", t->name, w->k);
        w->kind = BN_VK_W_F32;
        return BN_OK;
    default:
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: type %s is not supported by the Vulkan backend", t->name,
                       bn_type_name(t->type));
    }
}

/* Writes rows [r0, r0 + n) of t into part p, in staging-sized pieces. */
static enum bn_status fill_part(const struct bn_tensor *t, const struct bn_vk_weight *w, struct bn_vk_part *p,
                                bn_vk_transfer *tr, uint8_t *codes, float *dbuf, char *err, size_t errlen)
{
    uint64_t row_data, row_scales;
    device_row_bytes(w, &row_data, &row_scales);
    const size_t src_row = file_row_bytes(t);
    const uint64_t chunk = bn_vk_transfer_chunk(tr);
    const uint32_t rows_per_piece = (uint32_t)(chunk / row_data > 0 ? chunk / row_data : 1);
    for (uint32_t r = 0; r < p->n_rows; r += rows_per_piece) {
        const uint32_t n = p->n_rows - r < rows_per_piece ? p->n_rows - r : rows_per_piece;
        uint8_t *dst = bn_vk_transfer_map(tr, &p->data, (VkDeviceSize)r * row_data, (VkDeviceSize)n * row_data, err,
                                          errlen);
        if (!dst) return BN_ERR_DEVICE;
        for (uint32_t i = 0; i < n; i++) {
            const uint32_t row = p->row0 + r + i;
            const uint8_t *src = (const uint8_t *)t->data + (size_t)row * src_row;
            uint8_t *out = dst + (size_t)i * row_data;
            if (w->kind == BN_VK_W_TERNARY) {
                row_codes(t->type, src, w->k, codes, dbuf + (size_t)(r + i) * w->nb);
                for (uint32_t word = 0; word < w->k_words; word++) {
                    uint32_t v = bn_vk_pack_codes16(codes + 16 * word);
                    memcpy(out + 4 * word, &v, 4);
                }
            } else if (w->kind == BN_VK_W_F16 || t->type == BN_TYPE_F32) {
                memcpy(out, src, (size_t)row_data);
            } else {
                float *f = (float *)(void *)out; /* regions are 16-byte aligned */
                if (bn_row_to_f32_scalar(t->type, src, w->k, f) != 0)
                    return bn_errf(err, errlen, BN_ERR_MODEL, "%s: cannot widen type %s", t->name, bn_type_name(t->type));
            }
        }
    }
    /* The part's scales were collected above; writing copies them out at
     * once, so dbuf is free for the next part. */
    if (w->kind == BN_VK_W_TERNARY && w->per_block)
        return bn_vk_transfer_write(tr, &p->scales, 0, dbuf, (uint64_t)p->n_rows * row_scales, err, errlen);
    return BN_OK;
}

static enum bn_status upload_tensor(struct bn_vk_weights *ws, const struct bn_tensor *t, bn_vk_allocator *a,
                                    bn_vk_transfer *tr, const struct bn_vk_part_limits *lim, char *err, size_t errlen)
{
    if (!t || ws->w[t->index].kind != BN_VK_W_NONE) return BN_OK; /* absent, or tied and done */
    struct bn_vk_weight w;
    enum bn_status st = describe(t, &w, err, errlen);
    if (st != BN_OK) return st;
    uint64_t row_data, row_scales;
    device_row_bytes(&w, &row_data, &row_scales);
    if (row_data > lim->max_bytes)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: one row takes %llu bytes, more than a device binding (%llu)",
                       t->name, (unsigned long long)row_data, (unsigned long long)lim->max_bytes);
    uint64_t rows_per_part = lim->max_bytes / row_data;
    if (rows_per_part > lim->max_rows) rows_per_part = lim->max_rows;
    w.n_parts = (uint32_t)((w.n + rows_per_part - 1) / rows_per_part);
    w.parts = calloc(w.n_parts, sizeof *w.parts);
    uint8_t *codes = w.kind == BN_VK_W_TERNARY ? malloc(w.k) : NULL;
    float *dbuf = w.per_block ? malloc((size_t)rows_per_part * w.nb * sizeof(float)) : NULL;
    if (!w.parts || (w.kind == BN_VK_W_TERNARY && !codes) || (w.per_block && !dbuf)) {
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);
        goto done;
    }
    for (uint32_t i = 0; i < w.n_parts && st == BN_OK; i++) {
        struct bn_vk_part *p = &w.parts[i];
        p->row0 = (uint32_t)(i * rows_per_part);
        p->n_rows = (uint32_t)(w.n - p->row0 < rows_per_part ? w.n - p->row0 : rows_per_part);
        st = bn_vk_alloc(a, BN_VK_MEM_WEIGHTS, p->n_rows * row_data, &p->data, err, errlen);
        if (st == BN_OK && row_scales)
            st = bn_vk_alloc(a, BN_VK_MEM_WEIGHTS, p->n_rows * row_scales, &p->scales, err, errlen);
        if (st == BN_OK) st = fill_part(t, &w, p, tr, codes, dbuf, err, errlen);
        ws->bytes += p->n_rows * (row_data + row_scales);
    }
done:
    free(codes);
    free(dbuf);
    ws->w[t->index] = w; /* freed with the rest on failure */
    return st;
}

static enum bn_status upload_head_q8(struct bn_vk_weights *ws, const struct bn_tensor *t, bn_vk_allocator *a,
                                     bn_vk_transfer *tr, const struct bn_vk_part_limits *lim, char *err,
                                     size_t errlen);

enum bn_status bn_vk_weights_upload(struct bn_vk_weights *ws, const struct bn_model *m, bool head_q8,
                                    bn_vk_allocator *a, bn_vk_transfer *t, const struct bn_vk_part_limits *lim,
                                    char *err, size_t errlen)
{
    memset(ws, 0, sizeof *ws);
    ws->n = m->n_tensors;
    ws->w = calloc(m->n_tensors ? m->n_tensors : 1, sizeof *ws->w);
    if (!ws->w) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    enum bn_status st = BN_OK;
    for (uint32_t il = 0; il < m->hp.n_layer && st == BN_OK; il++) {
        const struct bn_layer *L = &m->layers[il];
        const struct bn_tensor *ts[] = {L->attn_norm, L->wq.w,     L->wk.w,       L->wv.w,
                                        L->attn_sub_norm, L->wo.w, L->ffn_norm,   L->w_gate.w,
                                        L->w_up.w,   L->ffn_sub_norm, L->w_down.w};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0] && st == BN_OK; i++)
            st = upload_tensor(ws, ts[i], a, t, lim, err, errlen);
    }
    if (st == BN_OK) st = upload_tensor(ws, m->tok_embd, a, t, lim, err, errlen);
    if (st == BN_OK) st = upload_tensor(ws, m->output_norm, a, t, lim, err, errlen);
    if (st == BN_OK && head_q8 && m->output) st = upload_head_q8(ws, m->output, a, t, lim, err, errlen);
    else if (st == BN_OK) st = upload_tensor(ws, m->output, a, t, lim, err, errlen);
    if (st == BN_OK) st = bn_vk_transfer_flush(t, err, errlen);
    if (st != BN_OK) bn_vk_weights_free(ws, a);
    return st;
}

static void free_weight(struct bn_vk_weight *w, bn_vk_allocator *a)
{
    for (uint32_t p = 0; w->parts && p < w->n_parts; p++) {
        bn_vk_free(a, &w->parts[p].scales);
        bn_vk_free(a, &w->parts[p].data);
    }
    free(w->parts);
    memset(w, 0, sizeof *w);
}

void bn_vk_weights_free(struct bn_vk_weights *ws, bn_vk_allocator *a)
{
    for (uint32_t i = 0; ws->w && i < ws->n; i++) free_weight(&ws->w[i], a);
    free_weight(&ws->head_q8, a);
    free(ws->w);
    memset(ws, 0, sizeof *ws);
}

/* Rows [row0, row0 + n) of the head, widened and quantized into dst (n
 * int8 rows of k) and d (their scales), split over the pool's threads:
 * every row is quantized by the same function whatever the split. */
struct q8_rows_job {
    const struct bn_tensor *t;
    size_t src_row;
    uint32_t row0, n, k;
    uint8_t *dst;
    float *d;
    float *scratch; /* k floats per thread */
};

static void q8_rows(void *arg, int ith, int nth)
{
    const struct q8_rows_job *j = arg;
    size_t begin, end;
    bn_split_range(j->n, ith, nth, &begin, &end);
    float *row = j->scratch + (size_t)ith * j->k;
    for (size_t i = begin; i < end; i++) {
        const uint8_t *src = (const uint8_t *)j->t->data + (size_t)(j->row0 + i) * j->src_row;
        (void)bn_row_to_f32_scalar(j->t->type, src, j->k, row); /* the type was checked before */
        j->d[i] = bn_head_q8_quantize_row(row, j->k, (int8_t *)(j->dst + i * j->k));
    }
}

/* Rows [p->row0, + n_rows) of the head, quantized, into part p: the int8
 * rows in staging-sized pieces, the row scales collected in d and copied
 * after. */
static enum bn_status fill_q8_part(const struct bn_tensor *t, const struct bn_vk_part *p, uint32_t k,
                                   bn_vk_transfer *tr, bn_threadpool *pool, float *scratch, float *d, char *err,
                                   size_t errlen)
{
    const uint64_t chunk = bn_vk_transfer_chunk(tr);
    const uint32_t rows_per_piece = (uint32_t)(chunk / k > 0 ? chunk / k : 1);
    for (uint32_t r = 0; r < p->n_rows; r += rows_per_piece) {
        const uint32_t n = p->n_rows - r < rows_per_piece ? p->n_rows - r : rows_per_piece;
        uint8_t *dst = bn_vk_transfer_map(tr, &p->data, (VkDeviceSize)r * k, (VkDeviceSize)n * k, err, errlen);
        if (!dst) return BN_ERR_DEVICE;
        struct q8_rows_job job = {t, file_row_bytes(t), p->row0 + r, n, k, dst, d + r, scratch};
        bn_threadpool_run(pool, q8_rows, &job);
    }
    return bn_vk_transfer_write(tr, &p->scales, 0, d, (uint64_t)p->n_rows * 4, err, errlen);
}

/* --head q8: the head t quantized row by row on the host exactly as the
 * CPU backend does (bn_row_to_f32_scalar, then bn_head_q8_quantize_row),
 * uploaded as int8 rows and row scales into ws->head_q8. */
static enum bn_status upload_head_q8(struct bn_vk_weights *ws, const struct bn_tensor *t, bn_vk_allocator *a,
                                     bn_vk_transfer *tr, const struct bn_vk_part_limits *lim, char *err,
                                     size_t errlen)
{
    struct bn_vk_weight w;
    enum bn_status st = describe(t, &w, err, errlen);
    if (st != BN_OK) return st;
    if (w.kind == BN_VK_W_TERNARY || t->n_dims < 2)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: --head q8 needs a float table", t->name);
    /* The shader reads 16 weights (and 16 activations) at a time. */
    if (w.k % 16 != 0)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: --head q8 on Vulkan needs a row length that is a multiple of 16, "
                       "not %u", t->name, w.k);
    w.kind = BN_VK_W_Q8;
    if (w.k > lim->max_bytes)
        return bn_errf(err, errlen, BN_ERR_MODEL, "%s: one int8 row takes %u bytes, more than a device binding",
                       t->name, w.k);
    uint64_t rows_per_part = lim->max_bytes / w.k;
    if (rows_per_part > lim->max_rows) rows_per_part = lim->max_rows;
    /* Every row widens the same way: checked once, here. */
    float *row = malloc((size_t)w.k * sizeof *row);
    if (!row) return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);
    const int bad_type = bn_row_to_f32_scalar(t->type, t->data, w.k, row);
    free(row);
    if (bad_type) return bn_errf(err, errlen, BN_ERR_MODEL, "%s: cannot widen type %s", t->name, bn_type_name(t->type));
    /* The head of a 2B4T model is 328 M weights: seconds on one thread. */
    bn_threadpool *pool = NULL;
    if (bn_threadpool_create(bn_cpu_physical_cores(), &pool, err, errlen) != 0) return BN_ERR_NOMEM;
    w.n_parts = (uint32_t)((w.n + rows_per_part - 1) / rows_per_part);
    w.parts = calloc(w.n_parts, sizeof *w.parts);
    float *scratch = malloc((size_t)w.k * (size_t)bn_threadpool_size(pool) * sizeof *scratch);
    float *d = malloc((size_t)rows_per_part * sizeof *d);
    if (!w.parts || !scratch || !d) st = bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", t->name);
    for (uint32_t i = 0; st == BN_OK && i < w.n_parts; i++) {
        struct bn_vk_part *p = &w.parts[i];
        p->row0 = (uint32_t)(i * rows_per_part);
        p->n_rows = (uint32_t)(w.n - p->row0 < rows_per_part ? w.n - p->row0 : rows_per_part);
        st = bn_vk_alloc(a, BN_VK_MEM_WEIGHTS, (uint64_t)p->n_rows * w.k, &p->data, err, errlen);
        if (st == BN_OK) st = bn_vk_alloc(a, BN_VK_MEM_WEIGHTS, (uint64_t)p->n_rows * 4, &p->scales, err, errlen);
        if (st == BN_OK) st = fill_q8_part(t, p, w.k, tr, pool, scratch, d, err, errlen);
        if (st == BN_OK) ws->bytes += (uint64_t)p->n_rows * (w.k + 4);
    }
    bn_threadpool_destroy(pool);
    free(scratch);
    free(d);
    ws->head_q8 = w; /* freed by bn_vk_weights_free, also on failure */
    if (st == BN_OK) ws->head_q8_of = t;
    return st;
}

const struct bn_vk_weight *bn_vk_weights_get(const struct bn_vk_weights *ws, const struct bn_tensor *t)
{
    if (!t || t->index >= ws->n || ws->w[t->index].kind == BN_VK_W_NONE) return NULL;
    return &ws->w[t->index];
}

uint64_t bn_vk_weights_estimate(const struct bn_model *m, bool head_q8)
{
    const struct bn_tensor *h = m->output;
    uint64_t total = head_q8 && h ? (uint64_t)h->ne[1] * ((uint64_t)h->ne[0] + 4) : 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) {
        const struct bn_tensor *t = &m->tensors[i];
        if (head_q8 && t == h && h != m->tok_embd) continue; /* only its int8 copy goes up */
        struct bn_vk_weight w;
        if (describe(t, &w, NULL, 0) != BN_OK) continue; /* not something we upload */
        uint64_t row_data, row_scales;
        device_row_bytes(&w, &row_data, &row_scales);
        total += (uint64_t)w.n * (row_data + row_scales);
    }
    return total;
}
