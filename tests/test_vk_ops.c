/*
 * Every op of the Vulkan backend against the scalar reference kernels
 * (kernels_cpu/), on random shapes including ragged ones: ternary integer
 * accumulators bit-exact (unit scales make the float output the exact
 * integer), plain quantization and KV stores bit-exact, float ops by NMSE
 * (< 1e-6). The ternary matmuls run with both shader variants (packed
 * integer dot product and plain integer), and embed / head / matmul once
 * more with tensors split into row ranges (BN_VK_MAX_BUFFER_RANGE).
 * Runs on the first GPU, else on a CPU device (Mesa lavapipe in CI).
 */
#include <stdint.h>

#include "backend.h"
#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "kernels_isa.h"
#include "model.h"
#include "tensor_types.h"
#include "test_util.h"
#include "test_vk_util.h"

#define NMSE_TOL 1e-6

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() >> 8) / 16777216.0f; }

/* ============================ a model of test tensors ============================ */

/* The backend uploads what a model's layers and head name; a test puts its
 * tensors in these slots and calls upload_weights again. */
enum { SLOT_TERNARY, SLOT_NORM, SLOT_TABLE, SLOT_HEAD, N_SLOTS };
struct tmodel {
    struct bn_model m;
    struct bn_layer layer;
    struct bn_tensor t[N_SLOTS];
    uint8_t *data[N_SLOTS];
};

static void tm_init(struct tmodel *tm)
{
    memset(tm, 0, sizeof *tm);
    tm->m.hp.n_layer = 1;
    tm->m.layers = &tm->layer;
    tm->m.tensors = tm->t;
    tm->m.n_tensors = N_SLOTS;
    for (uint32_t i = 0; i < N_SLOTS; i++) tm->t[i].index = i;
}

static void tm_free(struct tmodel *tm)
{
    for (int i = 0; i < N_SLOTS; i++) free(tm->data[i]);
    tm_init(tm);
}

/* A tensor of type/shape in a slot, with random contents the caller may
 * then adjust; returns its data. */
static uint8_t *tm_tensor(struct tmodel *tm, int slot, uint32_t type, uint32_t k, uint32_t n)
{
    struct bn_tensor *t = &tm->t[slot];
    uint64_t ne[2] = {k, n}, bytes = 0;
    BN_ASSERT(bn_type_tensor_bytes(type, ne, n > 1 ? 2 : 1, &bytes));
    free(tm->data[slot]);
    uint8_t *d = tm->data[slot] = malloc(bytes);
    for (uint64_t i = 0; i < bytes; i++) d[i] = (uint8_t)rnd();
    static const char *names[N_SLOTS] = {"test.ternary", "test.norm", "test.table", "test.head"};
    t->name = names[slot];
    t->type = type;
    t->n_dims = n > 1 ? 2 : 1;
    t->ne[0] = k;
    t->ne[1] = n;
    t->ne[2] = t->ne[3] = 1;
    t->data = d;
    t->nbytes = bytes;
    switch (slot) {
    case SLOT_TERNARY: tm->layer.wq.w = t; tm->layer.wq.scale = 1.0f; break;
    case SLOT_NORM: tm->layer.attn_norm = t; break;
    case SLOT_TABLE: tm->m.tok_embd = t; break;
    default: tm->m.output = t; break;
    }
    return d;
}

static void put_f16(uint8_t *p, float v)
{
    uint16_t h = bn_fp32_to_fp16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

/* Sane block scales for the formats that carry them (random bytes could be
 * inf or NaN). unit: every scale 1. */
static void fix_scales(struct bn_tensor *t, bool unit)
{
    uint8_t *d = (uint8_t *)t->data;
    const uint64_t n = (uint64_t)t->ne[0] * (uint64_t)t->ne[1];
    switch (t->type) {
    case BN_TYPE_I2_S: {
        float s = unit ? 1.0f : frand(0.5f, 2.0f);
        memcpy(d + n / 4, &s, 4);
        break;
    }
    case BN_TYPE_TQ2_0:
        for (uint64_t b = 0; b < n / 256; b++) put_f16(d + b * 66 + 64, unit ? 1.0f : frand(0.01f, 0.05f));
        break;
    case BN_TYPE_TQ1_0:
        for (uint64_t b = 0; b < n / 256; b++) put_f16(d + b * 54 + 52, unit ? 1.0f : frand(0.01f, 0.05f));
        break;
    case BN_TYPE_F16:
        for (uint64_t i = 0; i < n; i++) put_f16(d + 2 * i, frand(-1.0f, 1.0f));
        break;
    case BN_TYPE_F32:
        for (uint64_t i = 0; i < n; i++) {
            float v = frand(-1.0f, 1.0f);
            memcpy(d + 4 * i, &v, 4);
        }
        break;
    case BN_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++) {
            uint16_t h = bn_fp32_to_bf16(frand(-1.0f, 1.0f));
            d[2 * i] = (uint8_t)h;
            d[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    case BN_TYPE_Q8_0:
        for (uint64_t b = 0; b < n / 32; b++) put_f16(d + b * 34, frand(0.001f, 0.01f));
        break;
    case BN_TYPE_Q6_K:
        for (uint64_t b = 0; b < n / 256; b++) put_f16(d + b * 210 + 208, frand(0.0001f, 0.001f));
        break;
    default: break;
    }
}

/* ============================ backend helpers ============================ */

static bool upload_model(struct bn_backend *be, struct tmodel *tm)
{
    char err[256];
    enum bn_status st = be->iface.upload_weights(be->ctx, &tm->m, err, sizeof err);
    CHECKF(st == BN_OK, "upload_weights: %s", err);
    return st == BN_OK;
}

static void free_bufs(struct bn_backend *be, bn_buf **b, int n)
{
    for (int i = 0; i < n; i++) be->iface.buf_free(be->ctx, b[i]);
}

static float *rand_floats(size_t n, float lo, float hi)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = frand(lo, hi);
    return x;
}

/* ============================ norms and quantization ============================ */

static void test_rmsnorm(struct bn_backend *be)
{
    static const uint32_t widths[] = {1, 7, 64, 100, 1000, 2560};
    struct tmodel tm;
    tm_init(&tm);
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const uint32_t W = widths[wi], rows = 1 + rnd() % 9, row0 = rnd() % 3, total = row0 + rows;
        float *w = (float *)(void *)tm_tensor(&tm, SLOT_NORM, BN_TYPE_F32, W, 1);
        for (uint32_t i = 0; i < W; i++) w[i] = frand(0.5f, 1.5f);
        if (!upload_model(be, &tm)) break;
        float *x = rand_floats((size_t)total * W, -3.0f, 3.0f);
        float *ref = malloc((size_t)rows * W * sizeof *ref), *got = malloc((size_t)rows * W * sizeof *got);
        for (int with_w = 0; with_w < 2; with_w++) {
            bn_buf *b[2] = {test_vk_upload(be, x, (size_t)total * W * 4), test_vk_upload(be, NULL, (size_t)rows * W * 4)};
            be->iface.rmsnorm(be->ctx, b[0], row0, rows, W, with_w ? tm.layer.attn_norm : NULL, 1e-5f, b[1]);
            test_vk_download(be, b[1], got, (size_t)rows * W * 4);
            for (uint32_t t = 0; t < rows; t++)
                bn_rmsnorm_row_scalar(x + (size_t)(row0 + t) * W, with_w ? w : NULL, W, 1e-5f, ref + (size_t)t * W);
            double e = test_nmse(got, ref, (size_t)rows * W);
            CHECKF(e < NMSE_TOL, "rmsnorm W %u rows %u row0 %u w %d: NMSE %.3g", W, rows, row0, with_w, e);
            free_bufs(be, b, 2);
        }
        free(x);
        free(ref);
        free(got);
    }
    tm_free(&tm);
}

static void test_quantize(struct bn_backend *be)
{
    static const uint32_t widths[] = {1, 7, 64, 100, 1000, 2560, 6912};
    struct tmodel tm;
    tm_init(&tm);
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const uint32_t W = widths[wi], rows = 1 + rnd() % 17;
        float *w = (float *)(void *)tm_tensor(&tm, SLOT_NORM, BN_TYPE_F32, W, 1);
        for (uint32_t i = 0; i < W; i++) w[i] = frand(0.5f, 1.5f);
        if (!upload_model(be, &tm)) break;
        float *x = rand_floats((size_t)rows * W, -2.0f, 2.0f);
        /* Halves that round to even at s = 1 (max |x| = 127), a zero row
         * (scale floor 1e-5) and a row of NaN-free extremes. */
        if (W >= 8) {
            const float halves[8] = {127.0f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 1.5f, -126.5f};
            for (uint32_t i = 0; i < W; i++) x[i] = i < 8 ? halves[i] : 0.25f;
        }
        if (rows > 1)
            for (uint32_t i = 0; i < W; i++) x[W + i] = 0.0f;
        int8_t *qr = malloc((size_t)rows * W), *qg = malloc((size_t)rows * W);
        float *sr = malloc(rows * sizeof *sr), *sg = malloc(rows * sizeof *sg), *tmp = malloc(W * sizeof *tmp);
        for (int norm = 0; norm < 2; norm++) {
            bn_buf *b[3] = {test_vk_upload(be, x, (size_t)rows * W * 4), test_vk_upload(be, NULL, (size_t)rows * W),
                            test_vk_upload(be, NULL, rows * 4)};
            be->iface.quantize(be->ctx, b[0], rows, W, norm ? tm.layer.attn_norm : NULL, 1e-5f, b[1], b[2]);
            test_vk_download(be, b[1], qg, (size_t)rows * W);
            test_vk_download(be, b[2], sg, rows * 4);
            for (uint32_t t = 0; t < rows; t++) {
                const float *row = x + (size_t)t * W;
                if (norm) {
                    bn_rmsnorm_row_scalar(row, w, W, 1e-5f, tmp);
                    row = tmp;
                }
                sr[t] = bn_quantize_row_i8_scalar(row, W, qr + (size_t)t * W);
            }
            if (!norm) {
                /* max|x| is exact in any order: the same bits. */
                CHECKF(memcmp(qg, qr, (size_t)rows * W) == 0 && memcmp(sg, sr, rows * 4) == 0,
                       "quantize W %u rows %u: not bit-exact", W, rows);
            } else {
                /* The sum of squares is a tree on the device: the normalized
                 * row may differ in the last bit, which moves a value across
                 * a rounding boundary at most rarely, and by one. */
                size_t off1 = 0, worse = 0;
                for (size_t i = 0; i < (size_t)rows * W; i++) {
                    int d = abs((int)qg[i] - (int)qr[i]);
                    off1 += d == 1;
                    worse += d > 1;
                }
                double se = 0;
                for (uint32_t t = 0; t < rows; t++) se = fmax(se, fabs(sg[t] / sr[t] - 1.0));
                CHECKF(worse == 0 && off1 <= (size_t)rows * W / 1000 + 2 && se < 1e-5,
                       "rmsnorm+quantize W %u rows %u: %zu off by one, %zu worse, scale rel err %.3g", W, rows, off1,
                       worse, se);
            }
            free_bufs(be, b, 3);
        }
        free(x);
        free(qr);
        free(qg);
        free(sr);
        free(sg);
        free(tmp);
    }
    tm_free(&tm);
}

/* ============================ ternary matmul ============================ */

static size_t ternary_row_bytes(uint32_t type, uint32_t k)
{
    return type == BN_TYPE_I2_S ? k / 4 : type == BN_TYPE_TQ2_0 ? k / 256 * 66 : k / 256 * 54;
}

/* Exact sum of trit * q over one row. */
static int64_t ref_acc(uint32_t type, const uint8_t *row, const int8_t *q, uint32_t k)
{
    if (type == BN_TYPE_I2_S) return bn_dot_i2s_i8_scalar(row, q, k);
    int64_t acc = 0;
    for (uint32_t b = 0; b < k / 256; b++)
        acc += type == BN_TYPE_TQ2_0 ? bn_dot_tq2_block_i8_scalar(row + b * 66, q + 256 * b)
                                     : bn_dot_tq1_block_i8_scalar(row + b * 54, q + 256 * b);
    return acc;
}

/* The reference's float output, as the CPU backend computes it. */
static float ref_y(const struct bn_tensor *w, const uint8_t *row, const int8_t *q, float s, float lin)
{
    const uint32_t k = (uint32_t)w->ne[0];
    float y;
    if (w->type == BN_TYPE_I2_S)
        y = bn_row_i2s_scalar(row, bn_i2s_scale(w->data, (size_t)k * (size_t)w->ne[1]), q, k);
    else if (w->type == BN_TYPE_TQ2_0) y = bn_row_tq2_scalar(row, q, k);
    else y = bn_row_tq1_scalar(row, q, k);
    return y / s * lin;
}

/* One matmul of a random ternary matrix [k, n] on `rows` random int8 rows.
 * unit: all scales 1, so the output is the exact integer. */
static void matmul_case(struct bn_backend *be, uint32_t type, uint32_t k, uint32_t n, uint32_t rows, bool unit,
                        bool accumulate)
{
    struct tmodel tm;
    tm_init(&tm);
    const uint8_t *wd = tm_tensor(&tm, SLOT_TERNARY, type, k, n);
    fix_scales(&tm.t[SLOT_TERNARY], unit);
    const float lin = unit ? 1.0f : frand(0.5f, 2.0f);
    tm.layer.wq.scale = lin;
    if (!upload_model(be, &tm)) {
        tm_free(&tm);
        return;
    }
    int8_t *q = malloc((size_t)rows * k);
    for (size_t i = 0; i < (size_t)rows * k; i++) q[i] = (int8_t)(rnd() & 0xFF);
    float *s = malloc(rows * sizeof *s), *out0 = rand_floats((size_t)rows * n, -1.0f, 1.0f);
    for (uint32_t t = 0; t < rows; t++) s[t] = unit ? 1.0f : frand(10.0f, 1000.0f);
    float *got = malloc((size_t)rows * n * sizeof *got), *ref = malloc((size_t)rows * n * sizeof *ref);
    bn_buf *b[3] = {test_vk_upload(be, q, (size_t)rows * k), test_vk_upload(be, s, rows * 4), test_vk_upload(be, out0, (size_t)rows * n * 4)};
    be->iface.matmul_ternary(be->ctx, &tm.layer.wq, b[0], b[1], rows, b[2], accumulate);
    test_vk_download(be, b[2], got, (size_t)rows * n * 4);
    const size_t rb = ternary_row_bytes(type, k);
    size_t exact = 0, wrong_int = 0;
    for (uint32_t t = 0; t < rows; t++)
        for (uint32_t r = 0; r < n; r++) {
            const size_t o = (size_t)t * n + r;
            const uint8_t *row = wd + r * rb;
            const int8_t *qt = q + (size_t)t * k;
            float y = ref_y(&tm.t[SLOT_TERNARY], row, qt, s[t], lin);
            ref[o] = accumulate ? out0[o] + y : y;
            exact += memcmp(&ref[o], &got[o], 4) == 0;
            if (unit && !accumulate && got[o] != (float)ref_acc(type, row, qt, k)) wrong_int++;
        }
    const char *tn = bn_type_name(type);
    if (unit && !accumulate)
        CHECKF(wrong_int == 0, "matmul %s k %u n %u rows %u: %zu integer accumulators differ", tn, k, n, rows, wrong_int);
    double e = test_nmse(got, ref, (size_t)rows * n);
    CHECKF(e < NMSE_TOL, "matmul %s k %u n %u rows %u acc %d: NMSE %.3g (%zu of %zu bit-equal)", tn, k, n, rows,
           accumulate, e, exact, (size_t)rows * n);
    free_bufs(be, b, 3);
    free(q);
    free(s);
    free(out0);
    free(got);
    free(ref);
    tm_free(&tm);
}

static void test_matmul(struct bn_backend *be, bool quick)
{
    static const uint32_t types[] = {BN_TYPE_I2_S, BN_TYPE_TQ2_0, BN_TYPE_TQ1_0};
    static const uint32_t ks_i2s[] = {128, 384, 2560}, ks_tq[] = {256, 768, 6912};
    static const uint32_t ns[] = {1, 5, 33, 130, 67};
    static const uint32_t rowss[] = {1, 3, 40};
    int c = 0;
    for (size_t ti = 0; ti < 3; ti++)
        for (size_t ki = 0; ki < 3; ki++)
            for (size_t ri = 0; ri < 3; ri++, c++) {
                if (quick && (ki != 1 || ri == 2)) continue; /* activations fit a small range */
                const uint32_t k = types[ti] == BN_TYPE_I2_S ? ks_i2s[ki] : ks_tq[ki];
                matmul_case(be, types[ti], k, ns[c % 5], rowss[ri], true, false);
                matmul_case(be, types[ti], k, ns[(c + 2) % 5], rowss[ri], false, (c & 1) != 0);
            }
}

/* ============================ tables ============================ */

static const uint32_t table_types[] = {BN_TYPE_F16, BN_TYPE_F32, BN_TYPE_BF16, BN_TYPE_Q8_0, BN_TYPE_Q6_K};

static void test_embed(struct bn_backend *be, uint32_t n_vocab)
{
    for (size_t ti = 0; ti < sizeof table_types / sizeof table_types[0]; ti++) {
        const uint32_t type = table_types[ti], k = type == BN_TYPE_Q6_K ? 512 : 96 + 32 * (rnd() % 4);
        struct tmodel tm;
        tm_init(&tm);
        const uint8_t *d = tm_tensor(&tm, SLOT_TABLE, type, k, n_vocab);
        fix_scales(&tm.t[SLOT_TABLE], false);
        if (!upload_model(be, &tm)) {
            tm_free(&tm);
            continue;
        }
        const uint32_t rows = 7;
        int32_t tok[7] = {0, (int32_t)n_vocab - 1, 1, 0, (int32_t)(rnd() % n_vocab), (int32_t)(rnd() % n_vocab),
                          (int32_t)(n_vocab / 2)};
        float *got = malloc((size_t)rows * k * 4), *ref = malloc((size_t)rows * k * 4);
        bn_buf *b[2] = {test_vk_upload(be, tok, sizeof tok), test_vk_upload(be, NULL, (size_t)rows * k * 4)};
        be->iface.embed(be->ctx, &tm.t[SLOT_TABLE], b[0], rows, b[1]);
        test_vk_download(be, b[1], got, (size_t)rows * k * 4);
        const size_t rb = tm.t[SLOT_TABLE].nbytes / n_vocab;
        for (uint32_t t = 0; t < rows; t++) bn_row_to_f32_scalar(type, d + (size_t)tok[t] * rb, k, ref + (size_t)t * k);
        CHECKF(memcmp(got, ref, (size_t)rows * k * 4) == 0, "embed %s k %u vocab %u: not exact", bn_type_name(type), k,
               n_vocab);
        free_bufs(be, b, 2);
        free(got);
        free(ref);
        tm_free(&tm);
    }
}

static void test_head(struct bn_backend *be, uint32_t n_vocab)
{
    for (size_t ti = 0; ti < sizeof table_types / sizeof table_types[0]; ti++) {
        /* Rows of any multiple of 8 where the type allows (F16, F32, BF16). */
        const uint32_t type = table_types[ti];
        const uint32_t k = type == BN_TYPE_Q6_K ? 256 : type == BN_TYPE_Q8_0 ? 128 + 64 * (rnd() % 5) : 8 * (17 + rnd() % 20);
        for (uint32_t rows = 1; rows <= 6; rows += 5) {
            struct tmodel tm;
            tm_init(&tm);
            const uint8_t *d = tm_tensor(&tm, SLOT_HEAD, type, k, n_vocab);
            fix_scales(&tm.t[SLOT_HEAD], false);
            if (!upload_model(be, &tm)) {
                tm_free(&tm);
                continue;
            }
            float *x = rand_floats((size_t)rows * k, -1.0f, 1.0f), *scratch = malloc(k * 4);
            float *got = malloc((size_t)rows * n_vocab * 4), *ref = malloc((size_t)rows * n_vocab * 4);
            bn_buf *b[2] = {test_vk_upload(be, x, (size_t)rows * k * 4), test_vk_upload(be, NULL, (size_t)rows * n_vocab * 4)};
            be->iface.head(be->ctx, &tm.t[SLOT_HEAD], b[0], rows, b[1]);
            test_vk_download(be, b[1], got, (size_t)rows * n_vocab * 4);
            const size_t rb = tm.t[SLOT_HEAD].nbytes / n_vocab;
            for (uint32_t t = 0; t < rows; t++)
                for (uint32_t r = 0; r < n_vocab; r++)
                    ref[(size_t)t * n_vocab + r] = bn_dot_row_f32_scalar(type, d + r * rb, x + (size_t)t * k, k, scratch);
            double e = test_nmse(got, ref, (size_t)rows * n_vocab);
            CHECKF(e < NMSE_TOL, "head %s k %u vocab %u rows %u: NMSE %.3g", bn_type_name(type), k, n_vocab, rows, e);
            free_bufs(be, b, 2);
            free(x);
            free(scratch);
            free(got);
            free(ref);
            tm_free(&tm);
        }
    }
}

/* The int8 head (a backend opened with head_q8): the CPU's bn_head_q8 on
 * the same quantized table and activations, bit for bit, whatever the
 * table type, with an all-zero table row, an all-zero token row and one
 * with an outlier; row lengths that are not a multiple of 16 are refused
 * at upload with a message. */
static void test_head_q8(struct bn_backend *be, uint32_t n_vocab)
{
    static const uint32_t types[] = {BN_TYPE_F16, BN_TYPE_F32, BN_TYPE_BF16};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        const uint32_t type = types[ti], k = 16 * (9 + rnd() % 40), rows = ti == 0 ? 1 : 6;
        struct tmodel tm;
        tm_init(&tm);
        uint8_t *d = tm_tensor(&tm, SLOT_HEAD, type, k, n_vocab);
        fix_scales(&tm.t[SLOT_HEAD], false);
        const size_t rb = tm.t[SLOT_HEAD].nbytes / n_vocab;
        memset(d + 5 * rb, 0, rb); /* scale 0 */
        if (!upload_model(be, &tm)) {
            tm_free(&tm);
            continue;
        }
        CHECK(test_vk_stats(be).head_q8, "the int8 head is in use");
        float *x = rand_floats((size_t)rows * k, -1.0f, 1.0f);
        if (rows > 2) {
            memset(x + k, 0, k * sizeof *x);
            x[2 * k + 3] = 4000.0f;
        }
        int8_t *wq = malloc((size_t)n_vocab * k);
        float *wd = malloc(n_vocab * sizeof *wd), *row = malloc(k * sizeof *row), *xs = malloc(rows * sizeof *xs);
        int16_t *xq = malloc((size_t)rows * k * sizeof *xq);
        float *got = malloc((size_t)rows * n_vocab * 4), *ref = malloc((size_t)rows * n_vocab * 4);
        for (uint32_t r = 0; r < n_vocab; r++) {
            bn_row_to_f32_scalar(type, d + r * rb, k, row);
            wd[r] = bn_head_q8_quantize_row(row, k, wq + (size_t)r * k);
        }
        for (uint32_t t = 0; t < rows; t++) xs[t] = bn_quantize_row_i16(x + (size_t)t * k, k, xq + (size_t)t * k);
        bn_head_q8_scalar(wq, wd, k, 0, n_vocab, xq, xs, rows, ref, n_vocab);
        bn_buf *b[2] = {test_vk_upload(be, x, (size_t)rows * k * 4), test_vk_upload(be, NULL, (size_t)rows * n_vocab * 4)};
        be->iface.head(be->ctx, &tm.t[SLOT_HEAD], b[0], rows, b[1]);
        test_vk_download(be, b[1], got, (size_t)rows * n_vocab * 4);
        size_t diff = 0;
        for (size_t i = 0; i < (size_t)rows * n_vocab; i++) diff += memcmp(&got[i], &ref[i], 4) != 0;
        CHECKF(diff == 0, "head q8 %s k %u vocab %u rows %u: %zu of %zu logits differ from bn_head_q8 (NMSE %.3g)",
               bn_type_name(type), k, n_vocab, rows, diff, (size_t)rows * n_vocab,
               test_nmse(got, ref, (size_t)rows * n_vocab));
        free_bufs(be, b, 2);
        free(x);
        free(wq);
        free(wd);
        free(row);
        free(xs);
        free(xq);
        free(got);
        free(ref);
        tm_free(&tm);
    }
    /* A row length the shader cannot read 16 at a time. */
    struct tmodel tm;
    tm_init(&tm);
    tm_tensor(&tm, SLOT_HEAD, BN_TYPE_F16, 8 * 17, n_vocab);
    fix_scales(&tm.t[SLOT_HEAD], false);
    char err[256] = "";
    const enum bn_status st = be->iface.upload_weights(be->ctx, &tm.m, err, sizeof err);
    CHECKF(st != BN_OK && strstr(err, "multiple of 16"), "head q8 with rows of 136: %s", st == BN_OK ? "accepted" : err);
    tm_free(&tm);
}

static void test_argmax_op(struct bn_backend *be)
{
    CHECK(be->iface.argmax != NULL, "the Vulkan backend has the argmax op");
    if (!be->iface.argmax) return;
    static const uint32_t vocabs[] = {7, 1000, 128256};
    for (size_t vi = 0; vi < 3; vi++) {
        const uint32_t V = vocabs[vi], rows = 4;
        float *l = rand_floats((size_t)rows * V, -10.0f, 10.0f);
        /* Row 1: the maximum twice (the lower id wins); row 2: NaN first and
         * ties; row 3: nothing finite (id 0). */
        l[V + V / 3] = 50.0f;
        l[V + V - 1] = 50.0f;
        l[2 * V] = NAN;
        l[2 * V + V / 2] = 20.0f;
        l[2 * V + V / 4] = 20.0f;
        for (uint32_t i = 0; i < V; i++) l[3 * V + i] = i % 2 ? -INFINITY : NAN;
        int32_t got[4] = {-1, -1, -1, -1}, want[4];
        for (uint32_t t = 0; t < rows; t++) {
            float best = -INFINITY;
            want[t] = 0;
            for (uint32_t i = 0; i < V; i++)
                if (l[(size_t)t * V + i] > best) {
                    best = l[(size_t)t * V + i];
                    want[t] = (int32_t)i;
                }
        }
        bn_buf *b[2] = {test_vk_upload(be, l, (size_t)rows * V * 4), test_vk_upload(be, NULL, sizeof got)};
        be->iface.argmax(be->ctx, b[0], rows, V, b[1]);
        test_vk_download(be, b[1], got, sizeof got);
        CHECKF(memcmp(got, want, sizeof got) == 0, "argmax vocab %u: %d %d %d %d, want %d %d %d %d", V, got[0], got[1],
               got[2], got[3], want[0], want[1], want[2], want[3]);
        free_bufs(be, b, 2);
        free(l);
    }
}

/* ============================ rope, cache, attention, activation ============================ */

static void test_rope(struct bn_backend *be)
{
    struct {
        uint32_t head_dim, n_rot, n_head, pos0;
        enum bn_rope_kind kind;
        float base;
        bool ff;
    } cases[] = {{64, 64, 4, 0, BN_ROPE_NEOX, 500000.0f, false},  {128, 128, 2, 4090, BN_ROPE_NEOX, 500000.0f, false},
                 {64, 32, 3, 1000, BN_ROPE_NORM, 10000.0f, false}, {128, 128, 5, 100000, BN_ROPE_NORM, 500000.0f, true},
                 {80, 80, 2, 7, BN_ROPE_NEOX, 10000.0f, true},     {64, 64, 1, 65535, BN_ROPE_NEOX, 1e6f, false}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const uint32_t hd = cases[ci].head_dim, rows = 1 + rnd() % 6, W = cases[ci].n_head * hd;
        struct bn_tensor fft = {.name = "rope_freqs", .type = BN_TYPE_F32, .n_dims = 1};
        float *ff = rand_floats(cases[ci].n_rot / 2, 1.0f, 8.0f);
        fft.data = ff;
        fft.ne[0] = cases[ci].n_rot / 2;
        struct bn_rope_args a = {.n_rows = rows, .pos0 = cases[ci].pos0, .n_head = cases[ci].n_head, .head_dim = hd,
                                 .n_rot = cases[ci].n_rot, .base = cases[ci].base, .kind = cases[ci].kind,
                                 .freq_factors = cases[ci].ff ? &fft : NULL};
        float *x = rand_floats((size_t)rows * W, -2.0f, 2.0f), *got = malloc((size_t)rows * W * 4);
        bn_buf *b = test_vk_upload(be, x, (size_t)rows * W * 4);
        be->iface.rope(be->ctx, b, &a);
        test_vk_download(be, b, got, (size_t)rows * W * 4);
        double maxd = 0;
        for (uint32_t t = 0; t < rows; t++)
            for (uint32_t h = 0; h < a.n_head; h++)
                bn_rope_head_scalar(x + ((size_t)t * a.n_head + h) * hd, a.n_rot, a.pos0 + t, a.base,
                                    a.kind == BN_ROPE_NEOX, cases[ci].ff ? ff : NULL);
        for (size_t i = 0; i < (size_t)rows * W; i++) maxd = fmax(maxd, fabs((double)got[i] - x[i]));
        double e = test_nmse(got, x, (size_t)rows * W);
        CHECKF(e < NMSE_TOL && maxd < 1e-5, "rope case %zu (pos %u..): NMSE %.3g, max diff %.3g", ci, a.pos0, e, maxd);
        be->iface.buf_free(be->ctx, b);
        free(x);
        free(got);
        free(ff);
    }
}

static void test_kv_store(struct bn_backend *be)
{
    const uint32_t n_kv = 2, hd = 64, W = n_kv * hd, n_ctx = 40;
    for (int f16 = 0; f16 < 2; f16++) {
        const uint32_t rows = 5, pos0 = 30;
        float *k = rand_floats((size_t)rows * W, -100.0f, 100.0f), *v = rand_floats((size_t)rows * W, -1.0f, 1.0f);
        /* Half-precision edge cases: overflow, ties, subnormals, NaN. */
        const float special[] = {65504.0f, 65520.0f, 1e9f, -INFINITY, NAN, 6e-8f, 3e-8f, 1e-6f, -2.98e-8f, 0.0f, -0.0f,
                                 1.00048828125f, 1.00146484375f};
        for (size_t i = 0; i < sizeof special / sizeof special[0]; i++) k[i] = v[i + 20] = special[i];
        const size_t elem = f16 ? 2 : 4, cache_bytes = (size_t)n_ctx * W * elem;
        struct bn_attn_args a = {.n_rows = rows, .pos0 = pos0, .n_head = 4, .n_head_kv = n_kv, .head_dim = hd,
                                 .n_ctx = n_ctx, .kv_type = f16 ? BN_KV_F16 : BN_KV_F32};
        bn_buf *b[4] = {test_vk_upload(be, k, (size_t)rows * W * 4), test_vk_upload(be, v, (size_t)rows * W * 4),
                        test_vk_upload(be, NULL, cache_bytes), test_vk_upload(be, NULL, cache_bytes)};
        be->iface.kv_store(be->ctx, b[0], b[1], &a, b[2], b[3]);
        uint8_t *gk = malloc(cache_bytes), *gv = malloc(cache_bytes), *rk = calloc(1, cache_bytes),
                *rv = calloc(1, cache_bytes);
        test_vk_download(be, b[2], gk, cache_bytes);
        test_vk_download(be, b[3], gv, cache_bytes);
        for (size_t i = 0; i < (size_t)rows * W; i++) {
            const size_t dst = (size_t)pos0 * W + i;
            if (f16) {
                uint16_t hk = bn_fp32_to_fp16(k[i]), hv = bn_fp32_to_fp16(v[i]);
                memcpy(rk + 2 * dst, &hk, 2);
                memcpy(rv + 2 * dst, &hv, 2);
            } else {
                memcpy(rk + 4 * dst, &k[i], 4);
                memcpy(rv + 4 * dst, &v[i], 4);
            }
        }
        CHECKF(memcmp(gk, rk, cache_bytes) == 0 && memcmp(gv, rv, cache_bytes) == 0, "kv_store %s: not bit-exact",
               f16 ? "f16" : "f32");
        free_bufs(be, b, 4);
        free(k);
        free(v);
        free(gk);
        free(gv);
        free(rk);
        free(rv);
    }
}

static void test_attention(struct bn_backend *be)
{
    struct {
        uint32_t n_head, n_kv, hd, rows, pos0;
    } cases[] = {{4, 2, 64, 1, 0},  {4, 2, 64, 1, 37},  {6, 2, 64, 1, 300}, {2, 1, 128, 1, 129},
                 {4, 2, 64, 9, 0},  {6, 6, 128, 17, 5}, {4, 1, 64, 40, 70}, {3, 3, 256, 3, 20}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int f16 = 0; f16 < 2; f16++) {
            const uint32_t hd = cases[ci].hd, rows = cases[ci].rows, pos0 = cases[ci].pos0;
            const uint32_t QW = cases[ci].n_head * hd, KVW = cases[ci].n_kv * hd, n_ctx = pos0 + rows + 3;
            struct bn_attn_args a = {.n_rows = rows, .pos0 = pos0, .n_head = cases[ci].n_head,
                                     .n_head_kv = cases[ci].n_kv, .head_dim = hd, .n_ctx = n_ctx,
                                     .kv_type = f16 ? BN_KV_F16 : BN_KV_F32};
            const size_t elem = f16 ? 2 : 4, cache_bytes = (size_t)n_ctx * KVW * elem;
            uint8_t *ck = malloc(cache_bytes), *cv = malloc(cache_bytes);
            for (size_t i = 0; i < (size_t)n_ctx * KVW; i++) {
                float kv = frand(-1.0f, 1.0f), vv = frand(-1.0f, 1.0f);
                if (f16) {
                    uint16_t hk = bn_fp32_to_fp16(kv), hv = bn_fp32_to_fp16(vv);
                    memcpy(ck + 2 * i, &hk, 2);
                    memcpy(cv + 2 * i, &hv, 2);
                } else {
                    memcpy(ck + 4 * i, &kv, 4);
                    memcpy(cv + 4 * i, &vv, 4);
                }
            }
            float *q = rand_floats((size_t)rows * QW, -3.0f, 3.0f), *got = malloc((size_t)rows * QW * 4),
                  *ref = malloc((size_t)rows * QW * 4), *scores = malloc(n_ctx * 4);
            bn_buf *b[4] = {test_vk_upload(be, q, (size_t)rows * QW * 4), test_vk_upload(be, ck, cache_bytes),
                            test_vk_upload(be, cv, cache_bytes), test_vk_upload(be, NULL, (size_t)rows * QW * 4)};
            be->iface.attention(be->ctx, b[0], b[1], b[2], &a, b[3]);
            test_vk_download(be, b[3], got, (size_t)rows * QW * 4);
            const uint32_t group = a.n_head / a.n_head_kv;
            for (uint32_t t = 0; t < rows; t++)
                for (uint32_t h = 0; h < a.n_head; h++) {
                    const size_t off = (size_t)(h / group) * hd * elem;
                    bn_attention_head_scalar(q + (size_t)t * QW + (size_t)h * hd, ck + off, cv + off, f16, KVW, hd,
                                             pos0 + t + 1, scores, ref + (size_t)t * QW + (size_t)h * hd);
                }
            double e = test_nmse(got, ref, (size_t)rows * QW);
            CHECKF(e < NMSE_TOL, "attention case %zu %s (rows %u pos0 %u hd %u): NMSE %.3g", ci, f16 ? "f16" : "f32",
                   rows, pos0, hd, e);
            free_bufs(be, b, 4);
            free(ck);
            free(cv);
            free(q);
            free(got);
            free(ref);
            free(scores);
        }
}

static void test_ffn_act(struct bn_backend *be)
{
    const uint32_t rows = 3, W = 1000;
    float *g = rand_floats((size_t)rows * W, -12.0f, 12.0f), *u = rand_floats((size_t)rows * W, -2.0f, 2.0f);
    float *got = malloc((size_t)rows * W * 4), *ref = malloc((size_t)rows * W * 4);
    for (int act = 0; act < 2; act++) {
        bn_buf *b[3] = {test_vk_upload(be, g, (size_t)rows * W * 4), test_vk_upload(be, u, (size_t)rows * W * 4),
                        test_vk_upload(be, NULL, (size_t)rows * W * 4)};
        be->iface.ffn_act(be->ctx, b[0], b[1], rows, W, act ? BN_ACT_SILU : BN_ACT_RELU2, b[2]);
        test_vk_download(be, b[2], got, (size_t)rows * W * 4);
        if (act) bn_silu_mul_scalar(g, u, (size_t)rows * W, ref);
        else bn_relu2_mul_scalar(g, u, (size_t)rows * W, ref);
        double e = test_nmse(got, ref, (size_t)rows * W);
        CHECKF(e < NMSE_TOL, "ffn_act %s: NMSE %.3g", act ? "silu" : "relu2", e);
        free_bufs(be, b, 3);
    }
    free(g);
    free(u);
    free(got);
    free(ref);
}

/* ============================ driver ============================ */

static void check_clean(struct bn_backend *be, const char *what)
{
    struct bn_backend_vk_stats s = test_vk_stats(be);
    CHECKF(s.validation_errors == 0, "%s: %u validation errors", what, s.validation_errors);
    printf("%s: %s, %s ternary shaders, %llu dispatches in %llu submissions\n", what, s.device,
           s.int_dot ? "integer-dot" : "plain-integer", (unsigned long long)s.dispatches, (unsigned long long)s.submits);
}

int main(void)
{
    struct bn_backend be;
    unsetenv("BN_VK_MAX_BUFFER_RANGE");
    unsetenv("BN_VK_FORCE_STAGING");
    if (test_vk_open(&be) != 0) return test_skip_or_fail("no usable Vulkan device");
    const bool has_dot = test_vk_stats(&be).int_dot;
    test_rmsnorm(&be);
    test_quantize(&be);
    test_matmul(&be, false);
    test_embed(&be, 333);
    test_head(&be, 333);
    test_argmax_op(&be);
    test_rope(&be);
    test_kv_store(&be);
    test_attention(&be);
    test_ffn_act(&be);
    check_clean(&be, "all ops");
    be.iface.destroy(be.ctx);

    /* The other ternary variant: plain integers where the device has the
     * dot product (else the dot product cannot run here at all). */
    if (has_dot) {
        setenv("BN_VK_DISABLE_INTDOT", "1", 1);
        if (test_vk_open(&be) == 0) {
            CHECK(!test_vk_stats(&be).int_dot, "BN_VK_DISABLE_INTDOT=1 selects the plain-integer shaders");
            test_matmul(&be, false);
            check_clean(&be, "plain-integer matmul");
            be.iface.destroy(be.ctx);
        }
        unsetenv("BN_VK_DISABLE_INTDOT");
    } else {
        printf("the device has no integer dot product: only the plain-integer shaders ran\n");
    }

    /* --head q8: the int8 head, also split into parts. */
    for (int split = 0; split < 2; split++) {
        if (split) setenv("BN_VK_MAX_BUFFER_RANGE", "32768", 1);
        if (test_vk_open_head(&be, true) == 0) {
            test_head_q8(&be, split ? 600 : 333);
            check_clean(&be, split ? "int8 head, split" : "int8 head");
            be.iface.destroy(be.ctx);
        }
        unsetenv("BN_VK_MAX_BUFFER_RANGE");
    }

    /* Memory the host cannot map (a discrete GPU's): uploads, zero fills and
     * readback go through staging copies. */
    setenv("BN_VK_FORCE_STAGING", "1", 1);
    if (test_vk_open(&be) == 0) {
        test_rmsnorm(&be);
        test_quantize(&be);
        test_matmul(&be, true);
        test_embed(&be, 333);
        test_head(&be, 333);
        test_argmax_op(&be);
        test_kv_store(&be);
        test_attention(&be);
        check_clean(&be, "staged memory");
        be.iface.destroy(be.ctx);
    }
    unsetenv("BN_VK_FORCE_STAGING");

    /* Tensors split into row ranges of at most 16 KiB: tables of 333 rows
     * become several parts, and so do the bigger ternary matrices. */
    setenv("BN_VK_MAX_BUFFER_RANGE", "16384", 1);
    if (test_vk_open(&be) == 0) {
        test_embed(&be, 333);
        test_head(&be, 333);
        test_matmul(&be, true);
        check_clean(&be, "split tensors");
        be.iface.destroy(be.ctx);
    }
    unsetenv("BN_VK_MAX_BUFFER_RANGE");
    return test_report("test_vk_ops");
}
