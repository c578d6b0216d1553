/*
 * CPU backend: runs each op at once with the kernel table chosen by cpuid
 * (kernels_cpu/dispatch.h), split over a thread pool created once
 * (kernels_cpu/threadpool.h).
 *
 * Weights. upload_weights repacks every ternary tensor into the layout the
 * SIMD kernels read linearly (kernels_cpu/ternary_pack.h), into one
 * anonymous mapping backed by transparent huge pages where the kernel
 * offers them. The original file stays mapped read-only: right after a
 * tensor is repacked, its pages of the file mapping are given back with
 * madvise(MADV_DONTNEED), so the resident size stays near the file size
 * instead of file + copy (tests/large_2b4t.sh checks it). An F16 head read
 * from a file is copied into the arena the same way (decode streams it every
 * token; huge pages stream faster than the file's 4 KiB pages); --head q8
 * makes an int8 copy instead. Other tables are read in place.
 *
 * Threads. Each op splits its work statically: the ternary GEMM by tiles of
 * 16 output rows (all tokens of a tile on one thread, so a tile's weights
 * are read once per thread), the head by rows, attention by (token, head)
 * pairs, quantization by token. Every output element is computed by exactly one
 * thread with the same instructions whatever the split, so results do not
 * depend on the thread count or the batch size. Ops too small to pay for a
 * wake-up run on the calling thread.
 */
#define _DEFAULT_SOURCE 1 /* madvise, MADV_DONTNEED, MADV_HUGEPAGE */

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "backend_compose.h"
#include "backend_cpu.h"
#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "ternary_pack.h"
#include "threadpool.h"

struct bn_buf {
    size_t size;
    void *data;
};

struct cpu_ctx {
    const struct bn_cpu_kernels *kr;
    bn_threadpool *pool;
    int n_threads;
    bool head_q8;
    struct bn_cpu_profile *profile;   /* caller's, optional                          */

    /* weights, valid after upload_weights */
    const struct bn_model *model;
    struct bn_tpack *packs;           /* [model->n_tensors]; codes NULL if not ternary */
    uint8_t *arena;                   /* one mapping for all packed codes and scales   */
    size_t arena_size;
    const struct bn_tensor *head_of;  /* the F16 head copied into the arena, or NULL  */
    const uint16_t *head_f16;         /* that copy [n_vocab][n_embd]                  */
    const struct bn_tensor *q8_head;  /* the tensor the int8 head replaces            */
    int8_t *q8_w;                     /* [n_vocab][n_embd] in the arena               */
    float *q8_d;                      /* [n_vocab] row scales                         */

    /* scratch, grown on demand by the calling thread */
    int32_t *xsum;                    /* activation sums for the ternary GEMM         */
    size_t xsum_len;
    float *scratch;                   /* per thread: scores or one dequantized row    */
    size_t scratch_per_thread;        /* floats                                       */
    int16_t *x16;                     /* int8 head: the rows of x as int16 [n][k]     */
    size_t x16_len;
    float *x16_scale;                 /* their scales [n]                             */
    size_t x16_scale_len;
    float *rope_cs;                   /* cos/sin table [n_rows][n_rot/2][2]           */
    size_t rope_len;
    struct bn_rope_args rope_key;     /* what rope_cs was computed for                */
    bool rope_valid;

    enum bn_status st;                /* first failure since the last synchronize     */
    char err[256];
};

static void *bdata(const bn_buf *b) { return b->data; }

static void cpu_fail(struct cpu_ctx *c, enum bn_status st, const char *msg)
{
    if (c->st != BN_OK) return;
    bn_errf(c->err, sizeof c->err, st, "cpu backend: %s", msg);
    c->st = st;
}

const char *bn_cpu_op_name(enum bn_cpu_op op)
{
    static const char *const names[BN_CPU_OP_COUNT] = {"embed", "rmsnorm",  "quantize",  "matmul", "rope",
                                                       "kv_store", "attention", "ffn_act", "head"};
    return (unsigned)op < BN_CPU_OP_COUNT ? names[op] : "?";
}

/* ---- profiling ---------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double prof_begin(const struct cpu_ctx *c) { return c->profile ? now_s() : 0.0; }

static void prof_end(struct cpu_ctx *c, enum bn_cpu_op op, double t0, uint64_t bytes)
{
    if (!c->profile) return;
    struct bn_cpu_op_stats *s = &c->profile->ops[op];
    s->seconds += now_s() - t0;
    s->calls++;
    s->bytes += bytes;
}

/* ---- scratch ------------------------------------------------------------ */

static bool grow(void **p, size_t *len, size_t need, size_t elem)
{
    if (*len >= need) return true;
    void *q = realloc(*p, need * elem);
    if (!q) return false;
    *p = q;
    *len = need;
    return true;
}

/* Per-thread float scratch of at least n floats each. */
static float *thread_scratch(struct cpu_ctx *c, size_t n)
{
    if (c->scratch_per_thread < n) {
        float *s = realloc(c->scratch, n * (size_t)c->n_threads * sizeof(float));
        if (!s) return NULL;
        c->scratch = s;
        c->scratch_per_thread = n;
    }
    return c->scratch;
}

/* ---- lifetime ------------------------------------------------------------ */

static void free_weights(struct cpu_ctx *c)
{
    if (c->arena) munmap(c->arena, c->arena_size);
    c->arena = NULL;
    c->arena_size = 0;
    free(c->packs);
    c->packs = NULL;
    c->q8_head = NULL;
    c->head_of = NULL;
    c->head_f16 = NULL;
    c->q8_w = NULL;
    c->q8_d = NULL;
    c->model = NULL;
}

static void cpu_destroy(void *ctx)
{
    struct cpu_ctx *c = ctx;
    if (!c) return;
    free_weights(c);
    bn_threadpool_destroy(c->pool);
    free(c->xsum);
    free(c->x16);
    free(c->x16_scale);
    free(c->scratch);
    free(c->rope_cs);
    free(c);
}

static enum bn_status cpu_supports(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    (void)ctx;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const struct bn_layer *L = &m->layers[il];
        const struct bn_linear *lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            const struct bn_tensor *t = lins[i]->w;
            if (bn_tpack_check(t->type, (uint32_t)t->ne[0], (uint32_t)t->ne[1]) != 0)
                return bn_errf(err, errlen, BN_ERR_MODEL, "cpu backend: %s: type %u with row length %" PRId64
                               " is not a ternary layout it can run", t->name, t->type, t->ne[0]);
        }
    }
    return BN_OK;
}

/* ---- weights ------------------------------------------------------------ */

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

/* True when addr lies in a mapping of a file (a non-zero inode in
 * /proc/self/maps). MADV_DONTNEED on such a read-only private mapping only
 * drops our page-table entries; the data is read back from the page cache
 * on the next access. On anonymous memory (a model built in memory by a
 * test) it would zero the data, so it is only ever applied to files. */
static bool is_file_mapping(const void *addr)
{
#if defined(__linux__)
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return false;
    char line[512];
    bool file = false;
    const uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long long lo, hi, off, inode;
        char perms[8], dev[16];
        if (sscanf(line, "%llx-%llx %7s %llx %15s %llu", &lo, &hi, perms, &off, dev, &inode) != 6) continue;
        if (a >= lo && a < hi) {
            file = inode != 0;
            break;
        }
    }
    fclose(f);
    return file;
#else
    (void)addr;
    return false;
#endif
}

/* Gives back the resident pages of [p, p + n) of the file mapping: whole
 * pages only, so neighbours sharing an edge page stay resident. */
static void release_pages(const void *p, size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const uintptr_t lo = align_up((uintptr_t)p, page), hi = ((uintptr_t)p + n) / page * page;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

struct repack_job {
    const struct bn_tpack *pack;
    uint32_t fmt;
    const void *src;
    uint8_t *scratch; /* [n_threads][bn_tpack_scratch_bytes(k)] */
};

static void repack_thread(void *arg, int ith, int nth)
{
    struct repack_job *j = arg;
    size_t t0, t1;
    bn_split_range(j->pack->n_tiles, ith, nth, &t0, &t1);
    bn_tpack_repack(j->pack, j->fmt, j->src, (uint32_t)t0, (uint32_t)t1, j->scratch + (size_t)ith * bn_tpack_scratch_bytes(j->pack->k));
}

struct q8_job {
    struct cpu_ctx *c;
    const struct bn_tensor *t;
    float *rows; /* [n_threads][k] */
};

static void q8_thread(void *arg, int ith, int nth)
{
    struct q8_job *j = arg;
    const size_t k = (size_t)j->t->ne[0], n = (size_t)j->t->ne[1], row_bytes = j->t->nbytes / n;
    float *row = j->rows + (size_t)ith * k;
    size_t r0, r1;
    bn_split_range(n, ith, nth, &r0, &r1);
    for (size_t r = r0; r < r1; r++) {
        bn_row_to_f32_scalar(j->t->type, (const uint8_t *)j->t->data + r * row_bytes, k, row);
        j->c->q8_d[r] = bn_head_q8_quantize_row(row, k, j->c->q8_w + r * k);
    }
}

struct copy_job {
    const uint8_t *src;
    uint8_t *dst;
    size_t bytes;
    bool release;
};

/* Copies in 16 MiB slices, giving each slice's file pages back at once, so
 * the copy and the original are never both resident. */
static void copy_thread(void *arg, int ith, int nth)
{
    const struct copy_job *j = arg;
    const size_t slice = (size_t)16 << 20, n = (j->bytes + slice - 1) / slice;
    size_t s0, s1;
    bn_split_range(n, ith, nth, &s0, &s1);
    for (size_t s = s0; s < s1; s++) {
        const size_t off = s * slice, len = j->bytes - off < slice ? j->bytes - off : slice;
        memcpy(j->dst + off, j->src + off, len);
        if (j->release) release_pages(j->src + off, len);
    }
}

static enum bn_status cpu_upload_weights(void *ctx, const struct bn_model *m, char *err, size_t errlen)
{
    struct cpu_ctx *c = ctx;
    enum bn_status st = cpu_supports(ctx, m, err, errlen);
    if (st != BN_OK) return st;
    free_weights(c);
    c->packs = calloc(m->n_tensors, sizeof *c->packs);
    if (!c->packs) return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory");

    /* Sizes first: one mapping for everything, 64-byte aligned pieces. */
    size_t total = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const struct bn_layer *L = &m->layers[il];
        const struct bn_linear *lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            const struct bn_tensor *t = lins[i]->w;
            const uint32_t k = (uint32_t)t->ne[0], n = (uint32_t)t->ne[1];
            total += align_up(bn_tpack_codes_bytes(k, n), 64) + align_up(bn_tpack_scales_bytes(t->type, k, n), 64);
        }
    }
    const struct bn_tensor *head = m->output;
    const size_t hk = (size_t)head->ne[0], hn = (size_t)head->ne[1];
    const bool from_file = is_file_mapping(m->layers[0].wq.w->data);
    /* The F16 head is the biggest read of a decode step: streamed from the
     * file mapping it crosses a 4 KiB page every 4 KiB; copied into the
     * huge-page arena (and the file pages given back) it does not. */
    const bool copy_head = !c->head_q8 && head->type == BN_TYPE_F16 && from_file;
    if (c->head_q8) total += align_up(hk * hn, 64) + align_up(hn * sizeof(float), 64);
    if (copy_head) total += align_up(head->nbytes, 64);
    const size_t huge = (size_t)2 << 20;
    c->arena_size = align_up(total + huge, huge);
    void *map = mmap(NULL, c->arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        c->arena_size = 0;
        free_weights(c);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: cannot map %zu bytes for the repacked weights", total);
    }
    c->arena = map;
    uint8_t *base = (uint8_t *)align_up((uintptr_t)map, huge); /* huge-page aligned: fewer TLB misses while streaming */
#if defined(MADV_HUGEPAGE)
    madvise(base, c->arena_size - (size_t)(base - (uint8_t *)map), MADV_HUGEPAGE);
#endif

    size_t scratch_k = hk;
    for (uint32_t i = 0; i < m->n_tensors; i++)
        if ((size_t)m->tensors[i].ne[0] > scratch_k) scratch_k = (size_t)m->tensors[i].ne[0];
    /* Per thread: a dequantized head row (k floats) for the q8 copy, or a
     * repacking scratch (bn_tpack_scratch_bytes(k) < 4 k bytes). */
    uint8_t *scratch = malloc(scratch_k * (size_t)c->n_threads * sizeof(float));
    if (!scratch) {
        free_weights(c);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory");
    }
    size_t off = 0;
    for (uint32_t il = 0; il < m->hp.n_layer; il++) {
        const struct bn_layer *L = &m->layers[il];
        const struct bn_linear *lins[7] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
        for (int i = 0; i < 7; i++) {
            const struct bn_tensor *t = lins[i]->w;
            const uint32_t k = (uint32_t)t->ne[0], n = (uint32_t)t->ne[1];
            struct bn_tpack *p = &c->packs[t->index];
            uint32_t *codes = (uint32_t *)(base + off);
            off += align_up(bn_tpack_codes_bytes(k, n), 64);
            float *d = (float *)(base + off);
            off += align_up(bn_tpack_scales_bytes(t->type, k, n), 64);
            bn_tpack_init(p, t->type, k, n, t->data, codes, d);
            struct repack_job job = {.pack = p, .fmt = t->type, .src = t->data, .scratch = scratch};
            bn_threadpool_run(c->pool, repack_thread, &job);
            if (from_file) release_pages(t->data, t->nbytes);
        }
    }
    if (c->head_q8) {
        c->q8_w = (int8_t *)(base + off);
        off += align_up(hk * hn, 64);
        c->q8_d = (float *)(base + off);
        struct q8_job job = {.c = c, .t = head, .rows = (float *)scratch};
        bn_threadpool_run(c->pool, q8_thread, &job);
        c->q8_head = head;
        /* The embedding lookups fault back in only the rows they read. */
        if (from_file) release_pages(head->data, head->nbytes);
    }
    if (copy_head) {
        uint8_t *dst = base + off;
        off += align_up(head->nbytes, 64);
        struct copy_job job = {.src = head->data, .dst = dst, .bytes = head->nbytes, .release = true};
        bn_threadpool_run(c->pool, copy_thread, &job);
        c->head_f16 = (const uint16_t *)dst;
        c->head_of = head;
    }
    free(scratch);
    c->model = m;
    return BN_OK;
}

/* ---- buffers ------------------------------------------------------------ */

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

/* ---- ops ---------------------------------------------------------------- */

/* Below about this many multiply-adds (some microseconds on one core) an op
 * runs on the calling thread: waking the workers would cost more than it
 * saves, and on a busy machine a worker may not get a core for a while. */
#define PARALLEL_MIN_WORK 1000000.0

static void run_split(struct cpu_ctx *c, double work, bn_threadpool_fn fn, void *arg)
{
    if (work >= PARALLEL_MIN_WORK) bn_threadpool_run(c->pool, fn, arg);
    else fn(arg, 0, 1);
}

/* Row r of a 2-D table tensor. */
static const uint8_t *table_row(const struct bn_tensor *t, size_t r)
{
    return (const uint8_t *)t->data + r * (t->nbytes / (size_t)t->ne[1]);
}

static void cpu_embed(void *ctx, const struct bn_tensor *table, const bn_buf *tokens, uint32_t n_rows, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    const int32_t *tok = bdata(tokens);
    float *o = bdata(out);
    const size_t k = (size_t)table->ne[0];
    for (uint32_t t = 0; t < n_rows; t++) {
        BN_ASSERT(tok[t] >= 0 && tok[t] < table->ne[1]);
        const uint8_t *row = table_row(table, (size_t)tok[t]);
        if (table == c->head_of) row = (const uint8_t *)(c->head_f16 + (size_t)tok[t] * k);
        if (table->type == BN_TYPE_F16) c->kr->fp16_to_fp32((const uint16_t *)row, o + t * k, k);
        else if (bn_row_to_f32_scalar(table->type, row, k, o + t * k) != 0)
            cpu_fail(c, BN_ERR_MODEL, "embedding type not supported");
    }
    prof_end(c, BN_CPU_OP_EMBED, t0, 0);
}

static void cpu_rmsnorm(void *ctx, const bn_buf *x, uint32_t row0, uint32_t n_rows, uint32_t width,
                        const struct bn_tensor *w, float eps, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    const float *xi = bdata(x);
    float *o = bdata(out);
    for (uint32_t t = 0; t < n_rows; t++)
        c->kr->rmsnorm_row(xi + (size_t)(row0 + t) * width, w ? w->data : NULL, width, eps, o + (size_t)t * width);
    prof_end(c, BN_CPU_OP_RMSNORM, t0, 0);
}

struct quantize_job {
    const struct bn_cpu_kernels *kr;
    const float *x, *w;
    uint32_t n_rows, width;
    float eps;
    int8_t *q;
    float *s;
};

static void quantize_thread(void *arg, int ith, int nth)
{
    const struct quantize_job *j = arg;
    size_t r0, r1;
    bn_split_range(j->n_rows, ith, nth, &r0, &r1);
    for (size_t t = r0; t < r1; t++)
        j->s[t] = j->kr->norm_quantize_row(j->x + t * j->width, j->w, j->width, j->eps, j->q + t * j->width);
}

static void cpu_quantize(void *ctx, const bn_buf *x, uint32_t n_rows, uint32_t width, const struct bn_tensor *w,
                         float eps, bn_buf *q, bn_buf *q_scale)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    struct quantize_job j = {.kr = c->kr, .x = bdata(x), .w = w ? w->data : NULL, .n_rows = n_rows, .width = width,
                             .eps = eps, .q = bdata(q), .s = bdata(q_scale)};
    run_split(c, 4.0 * n_rows * width, quantize_thread, &j); /* ~4 passes over the row */
    prof_end(c, BN_CPU_OP_QUANTIZE, t0, 0);
}

struct matmul_job {
    const struct bn_cpu_kernels *kr;
    const struct bn_tpack *pack;
    struct bn_tact act;
    float lin_scale;
    float *out;
    bool accumulate;
};

static void matmul_thread(void *arg, int ith, int nth)
{
    const struct matmul_job *j = arg;
    size_t t0, t1;
    bn_split_range(j->pack->n_tiles, ith, nth, &t0, &t1);
    if (t1 > t0)
        j->kr->ternary_gemm(j->pack, (uint32_t)t0, (uint32_t)t1, &j->act, j->lin_scale, j->out, j->pack->n,
                            j->accumulate);
}

static void cpu_matmul_ternary(void *ctx, const struct bn_linear *lin, const bn_buf *q, const bn_buf *q_scale,
                               uint32_t n_rows, bn_buf *out, bool accumulate)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    const struct bn_tensor *w = lin->w;
    if (!c->packs || c->model == NULL || w->index >= c->model->n_tensors || !c->packs[w->index].codes) {
        cpu_fail(c, BN_ERR_DEVICE, "weights were not uploaded");
        return;
    }
    const struct bn_tpack *p = &c->packs[w->index];
    const size_t nsum = p->k / BN_ACT_SUM_BLOCK;
    if (!grow((void **)&c->xsum, &c->xsum_len, nsum * n_rows, sizeof(int32_t))) {
        cpu_fail(c, BN_ERR_NOMEM, "out of memory");
        return;
    }
    const int8_t *qi = bdata(q);
    for (uint32_t t = 0; t < n_rows; t++) c->kr->act_sums(qi + (size_t)t * p->k, p->k, c->xsum + t * nsum);
    struct matmul_job j = {.kr = c->kr, .pack = p, .lin_scale = lin->scale, .out = bdata(out), .accumulate = accumulate};
    j.act = (struct bn_tact){.q = qi, .q_stride = p->k, .s = bdata(q_scale), .xsum = c->xsum, .n_tok = n_rows};
    run_split(c, (double)p->k * p->n * n_rows, matmul_thread, &j);
    prof_end(c, BN_CPU_OP_MATMUL, t0, bn_tpack_codes_bytes(p->k, p->n));
}

/* cos/sin of every (row, pair) of a rope call, with the reference's
 * formula (angle in double, kernels.h); one table serves every head of q
 * and k of every layer of the forward pass. */
static bool rope_table(struct cpu_ctx *c, const struct bn_rope_args *a)
{
    const struct bn_rope_args *k = &c->rope_key;
    if (c->rope_valid && k->n_rows == a->n_rows && k->pos0 == a->pos0 && k->n_rot == a->n_rot && k->base == a->base &&
        k->freq_factors == a->freq_factors)
        return true;
    const uint32_t half = a->n_rot / 2;
    if (!grow((void **)&c->rope_cs, &c->rope_len, (size_t)a->n_rows * half * 2, sizeof(float))) return false;
    const float *ff = a->freq_factors ? a->freq_factors->data : NULL;
    for (uint32_t t = 0; t < a->n_rows; t++)
        for (uint32_t j = 0; j < half; j++) {
            double theta = (double)(a->pos0 + t) * pow((double)a->base, -2.0 * (double)j / (double)a->n_rot);
            if (ff) theta /= (double)ff[j];
            c->rope_cs[((size_t)t * half + j) * 2] = (float)cos(theta);
            c->rope_cs[((size_t)t * half + j) * 2 + 1] = (float)sin(theta);
        }
    c->rope_key = *a;
    c->rope_valid = true;
    return true;
}

static void cpu_rope(void *ctx, bn_buf *x, const struct bn_rope_args *a)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    if (!rope_table(c, a)) {
        cpu_fail(c, BN_ERR_NOMEM, "out of memory");
        return;
    }
    float *xi = bdata(x);
    const uint32_t half = a->n_rot / 2;
    const bool neox = a->kind == BN_ROPE_NEOX;
    for (uint32_t t = 0; t < a->n_rows; t++) {
        const float *cs = c->rope_cs + (size_t)t * half * 2;
        for (uint32_t h = 0; h < a->n_head; h++) {
            float *hx = xi + ((size_t)t * a->n_head + h) * a->head_dim;
            /* the reference's rotation, operation for operation */
            for (uint32_t j = 0; j < half; j++) {
                const uint32_t i0 = neox ? j : 2 * j, i1 = neox ? j + half : 2 * j + 1;
                const float co = cs[2 * j], si = cs[2 * j + 1], x0 = hx[i0], x1 = hx[i1];
                hx[i0] = x0 * co - x1 * si;
                hx[i1] = x0 * si + x1 * co;
            }
        }
    }
    prof_end(c, BN_CPU_OP_ROPE, t0, 0);
}

static void cpu_kv_store(void *ctx, const bn_buf *k, const bn_buf *v, const struct bn_attn_args *a, bn_buf *cache_k,
                         bn_buf *cache_v)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    const size_t width = (size_t)a->n_head_kv * a->head_dim;
    const float *ks = bdata(k), *vs = bdata(v);
    BN_ASSERT(a->pos0 + a->n_rows <= a->n_ctx);
    const size_t dst = (size_t)a->pos0 * width, n = (size_t)a->n_rows * width;
    if (a->kv_type == BN_KV_F16) {
        c->kr->fp32_to_fp16(ks, (uint16_t *)bdata(cache_k) + dst, n);
        c->kr->fp32_to_fp16(vs, (uint16_t *)bdata(cache_v) + dst, n);
    } else {
        memcpy((float *)bdata(cache_k) + dst, ks, n * sizeof(float));
        memcpy((float *)bdata(cache_v) + dst, vs, n * sizeof(float));
    }
    prof_end(c, BN_CPU_OP_KV_STORE, t0, 0);
}

struct attention_job {
    const struct bn_cpu_kernels *kr;
    const struct bn_attn_args *a;
    const float *q;
    const uint8_t *k, *v;
    float *out;
    float *scores; /* [n_threads][n_ctx] */
};

static void attention_thread(void *arg, int ith, int nth)
{
    const struct attention_job *j = arg;
    const struct bn_attn_args *a = j->a;
    const size_t kv_width = (size_t)a->n_head_kv * a->head_dim, q_width = (size_t)a->n_head * a->head_dim;
    const uint32_t group = a->n_head / a->n_head_kv;
    const int f16 = a->kv_type == BN_KV_F16;
    const size_t elem = f16 ? 2 : 4;
    float *scores = j->scores + (size_t)ith * a->n_ctx;
    /* (token, head) pairs dealt round-robin: with causal attention later
     * tokens cost more, so contiguous ranges would leave thread 0 idle */
    for (size_t i = (size_t)ith; i < (size_t)a->n_rows * a->n_head; i += (size_t)nth) {
        const uint32_t t = (uint32_t)(i / a->n_head), h = (uint32_t)(i % a->n_head);
        const size_t kv_off = (size_t)(h / group) * a->head_dim * elem;
        j->kr->attention_head(j->q + t * q_width + (size_t)h * a->head_dim, j->k + kv_off, j->v + kv_off, f16, kv_width,
                              a->head_dim, a->pos0 + t + 1 /* causal */, scores, j->out + t * q_width + (size_t)h * a->head_dim);
    }
}

static void cpu_attention(void *ctx, const bn_buf *q, const bn_buf *cache_k, const bn_buf *cache_v,
                          const struct bn_attn_args *a, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    float *scores = thread_scratch(c, a->n_ctx);
    if (!scores) {
        cpu_fail(c, BN_ERR_NOMEM, "out of memory for attention scores");
        return;
    }
    struct attention_job j = {.kr = c->kr, .a = a, .q = bdata(q), .k = bdata(cache_k), .v = bdata(cache_v),
                              .out = bdata(out), .scores = scores};
    /* q.k and the weighted sum of v: 2 x rows x heads x positions x head_dim */
    run_split(c, 2.0 * a->n_rows * a->n_head * (a->pos0 + a->n_rows) * a->head_dim, attention_thread, &j);
    prof_end(c, BN_CPU_OP_ATTENTION, t0, 0);
}

struct act_job {
    const struct bn_cpu_kernels *kr;
    const float *g, *u;
    float *out;
    size_t n;
    enum bn_ffn_act act;
};

static void act_thread(void *arg, int ith, int nth)
{
    const struct act_job *j = arg;
    size_t i0, i1;
    bn_split_range(j->n, ith, nth, &i0, &i1);
    if (j->act == BN_ACT_RELU2) j->kr->relu2_mul(j->g + i0, j->u + i0, i1 - i0, j->out + i0);
    else j->kr->silu_mul(j->g + i0, j->u + i0, i1 - i0, j->out + i0);
}

static void cpu_ffn_act(void *ctx, const bn_buf *gate, const bn_buf *up, uint32_t n_rows, uint32_t width,
                        enum bn_ffn_act act, bn_buf *out)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    struct act_job j = {.kr = c->kr, .g = bdata(gate), .u = bdata(up), .out = bdata(out),
                        .n = (size_t)n_rows * width, .act = act};
    /* elementwise, so the split cannot change a result; silu costs ~20 flops an element */
    run_split(c, 20.0 * (double)j.n, act_thread, &j);
    prof_end(c, BN_CPU_OP_FFN_ACT, t0, 0);
}

struct head_job {
    struct cpu_ctx *c;
    const struct bn_tensor *w;
    const float *x;
    uint32_t n_tok;
    float *out;
};

static void head_thread(void *arg, int ith, int nth)
{
    const struct head_job *j = arg;
    const struct cpu_ctx *c = j->c;
    const struct bn_tensor *w = j->w;
    const size_t k = (size_t)w->ne[0], n = (size_t)w->ne[1];
    size_t r0, r1;
    bn_split_range(n, ith, nth, &r0, &r1);
    if (c->q8_head == w) {
        c->kr->head_q8(c->q8_w, c->q8_d, k, r0, r1, c->x16, c->x16_scale, j->n_tok, j->out, n);
    } else if (w->type == BN_TYPE_F16) {
        c->kr->head_f16(w == c->head_of ? c->head_f16 : w->data, k, r0, r1, j->x, j->n_tok, j->out, n);
    } else {
        /* other table types: one row at a time through float */
        float *row = w->type == BN_TYPE_F32 ? NULL : c->scratch + (size_t)ith * c->scratch_per_thread;
        for (size_t r = r0; r < r1; r++) {
            const float *wr = row;
            if (w->type == BN_TYPE_F32) wr = (const float *)table_row(w, r);
            else bn_row_to_f32_scalar(w->type, table_row(w, r), k, row);
            for (uint32_t t = 0; t < j->n_tok; t++) j->out[t * n + r] = c->kr->dot_f32(wr, j->x + t * k, k);
        }
    }
}

static void cpu_head(void *ctx, const struct bn_tensor *w, const bn_buf *x, uint32_t n_rows, bn_buf *logits)
{
    struct cpu_ctx *c = ctx;
    const double t0 = prof_begin(c);
    const size_t k = (size_t)w->ne[0];
    if (!c->model) {
        cpu_fail(c, BN_ERR_DEVICE, "weights were not uploaded");
        return;
    }
    if (c->q8_head != w && w->type != BN_TYPE_F16 && w->type != BN_TYPE_F32 && !thread_scratch(c, k)) {
        cpu_fail(c, BN_ERR_NOMEM, "out of memory");
        return;
    }
    if (c->q8_head == w) {
        /* the int8 head takes int16 activations, quantized once per token */
        if (!grow((void **)&c->x16, &c->x16_len, k * n_rows, sizeof(int16_t)) ||
            !grow((void **)&c->x16_scale, &c->x16_scale_len, n_rows, sizeof(float))) {
            cpu_fail(c, BN_ERR_NOMEM, "out of memory");
            return;
        }
        const float *xi = bdata(x);
        for (uint32_t t = 0; t < n_rows; t++) c->x16_scale[t] = bn_quantize_row_i16(xi + t * k, k, c->x16 + t * k);
    }
    struct head_job j = {.c = c, .w = w, .x = bdata(x), .n_tok = n_rows, .out = bdata(logits)};
    run_split(c, (double)k * (double)w->ne[1] * n_rows, head_thread, &j);
    const uint64_t bytes = c->q8_head == w ? (uint64_t)k * (uint64_t)w->ne[1] : (uint64_t)w->nbytes;
    prof_end(c, BN_CPU_OP_HEAD, t0, bytes);
}

/* The fused ops run as the primitive sequences they stand for: the CPU
 * gains nothing from fewer passes, and the sequence is the reference. */
static const struct bn_backend_i cpu_primitives = {
    .quantize = cpu_quantize,
    .matmul_ternary = cpu_matmul_ternary,
    .rope = cpu_rope,
    .kv_store = cpu_kv_store,
    .ffn_act = cpu_ffn_act,
};

static void cpu_attn_qkv(void *ctx, const struct bn_proj_in *in, const struct bn_linear *wq, const struct bn_linear *wk,
                         const struct bn_linear *wv, const struct bn_rope_args *rope, const struct bn_attn_args *attn,
                         bn_buf *q, bn_buf *k, bn_buf *v, bn_buf *cache_k, bn_buf *cache_v)
{
    bn_compose_attn_qkv(&cpu_primitives, ctx, in, wq, wk, wv, rope, attn, q, k, v, cache_k, cache_v);
}

static void cpu_ffn_gate_up(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w_gate,
                            const struct bn_linear *w_up, enum bn_ffn_act act, bn_buf *gate, bn_buf *up, bn_buf *out)
{
    bn_compose_ffn_gate_up(&cpu_primitives, ctx, in, w_gate, w_up, act, gate, up, out);
}

static void cpu_matmul_residual(void *ctx, const struct bn_proj_in *in, const struct bn_linear *w, bn_buf *x)
{
    bn_compose_matmul_residual(&cpu_primitives, ctx, in, w, x);
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
    const struct bn_backend_cpu_opts defaults = {0};
    if (!opts) opts = &defaults;
    const struct bn_cpu_kernels *kr = bn_cpu_kernels_by_name(opts->isa);
    if (!kr)
        return bn_errf(err, errlen, BN_ERR_USAGE, "cpu backend: unknown kernel set '%s' (scalar, avx2, avx512, neon, neon-dotprod)",
                       opts->isa);
    if (opts->n_threads < 0) return bn_errf(err, errlen, BN_ERR_USAGE, "cpu backend: %d threads", opts->n_threads);
    struct cpu_ctx *c = calloc(1, sizeof *c);
    if (!c) return bn_errf(err, errlen, BN_ERR_NOMEM, "cpu backend: out of memory");
    c->kr = kr;
    c->n_threads = opts->n_threads > 0 ? opts->n_threads : bn_cpu_physical_cores();
    c->head_q8 = opts->head_q8;
    c->profile = opts->profile;
    char perr[160];
    if (bn_threadpool_create(c->n_threads, &c->pool, perr, sizeof perr) != 0) {
        free(c);
        return bn_errf(err, errlen, BN_ERR_DEVICE, "cpu backend: %s", perr);
    }
    if (c->profile) {
        snprintf(c->profile->isa, sizeof c->profile->isa, "%s", kr->name);
        c->profile->n_threads = c->n_threads;
    }
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
        .attn_qkv = cpu_attn_qkv,
        .ffn_gate_up = cpu_ffn_gate_up,
        .matmul_residual = cpu_matmul_residual,
        .synchronize = cpu_synchronize,
    };
    return BN_OK;
}
