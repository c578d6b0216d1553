/*
 * bench_kernels: speed of the CPU kernels per instruction set and shape, on
 * the 2B4T shapes by default.
 *
 *     bn-bench-kernels [-t THREADS] [-r REPS] [-i scalar,avx2,avx512] [-m MiB]
 *
 * Ternary GEMV (decode) streams a stack of copies of each weight shape
 * larger than the last-level cache (-m, default 512 MiB), so it measures
 * memory, as a decode step does; ternary GEMM (prefill, 128 tokens) runs on
 * one copy, so it measures compute. The heads stream a full 128256 x 2560
 * table (F16: 657 MB, int8: 328 MB). Every kernel is first checked against
 * the scalar reference on the same data (bit for bit for the ternary ones,
 * NMSE for the heads) and not timed if it differs. Reports GB/s of weights
 * read and GMAC/s (multiply-adds), best of REPS, 1 GB = 1e9 bytes.
 */
#define _DEFAULT_SOURCE 1 /* madvise */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "dispatch.h"
#include "formats.h"
#include "kernels.h"
#include "kernels_isa.h"
#include "ternary_pack.h"
#include "threadpool.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 0x853c49e6748fea9bull;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

/* Anonymous memory on huge pages where available, like the backend's arena. */
static void *big_alloc(size_t bytes)
{
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
#if defined(MADV_HUGEPAGE)
    madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

struct gemm_job {
    const struct bn_cpu_kernels *kr;
    const struct bn_tpack *packs;
    int n_packs;
    const struct bn_tact *a;
    float *out;
};

static void gemm_thread(void *arg, int ith, int nth)
{
    const struct gemm_job *j = arg;
    for (int i = 0; i < j->n_packs; i++) {
        size_t t0, t1;
        bn_split_range(j->packs[i].n_tiles, ith, nth, &t0, &t1);
        if (t1 > t0) j->kr->ternary_gemm(&j->packs[i], (uint32_t)t0, (uint32_t)t1, j->a, 1.0f, j->out, j->packs[i].n, false);
    }
}

struct head_job {
    const struct bn_cpu_kernels *kr;
    const uint16_t *wf;
    const int8_t *wq;
    const float *d;
    size_t k, n;
    const float *x;
    const int16_t *xq;
    float xs;
    float *out;
};

static void head_thread(void *arg, int ith, int nth)
{
    const struct head_job *j = arg;
    size_t r0, r1;
    bn_split_range(j->n, ith, nth, &r0, &r1);
    if (j->wq) j->kr->head_q8(j->wq, j->d, j->k, r0, r1, j->xq, &j->xs, 1, j->out, j->n);
    else j->kr->head_f16(j->wf, j->k, r0, r1, j->x, 1, j->out, j->n);
}

static double nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? num / den : num;
}

/* One shape: a stack of copies for GEMV, GEMM on the first copy. */
static void bench_shape(bn_threadpool *pool, const struct bn_cpu_kernels *const *krs, int n_kr, uint32_t k, uint32_t n,
                        size_t stack_bytes, int reps)
{
    const size_t src_bytes = (size_t)k * n / 4 + 32, code_bytes = bn_tpack_codes_bytes(k, n);
    int copies = (int)(stack_bytes / code_bytes);
    if (copies < 1) copies = 1;
    uint8_t *src = malloc(src_bytes);
    for (size_t i = 0; i < src_bytes; i++) src[i] = (uint8_t)(rnd() % 3 << 6 | rnd() % 3 << 4 | rnd() % 3 << 2 | rnd() % 3);
    const float one = 1.0f;
    memcpy(src + (size_t)k * n / 4, &one, sizeof one);
    uint8_t *arena = big_alloc(code_bytes * (size_t)copies);
    struct bn_tpack *packs = calloc((size_t)copies, sizeof *packs);
    uint8_t *scratch = malloc(bn_tpack_scratch_bytes(k));
    for (int c = 0; c < copies; c++) {
        bn_tpack_init(&packs[c], BN_TFMT_I2_S, k, n, src, (uint32_t *)(arena + code_bytes * (size_t)c), NULL);
        if (c == 0) bn_tpack_repack(&packs[0], BN_TFMT_I2_S, src, 0, packs[0].n_tiles, scratch);
        else memcpy(packs[c].codes, packs[0].codes, code_bytes);
    }
    enum { T = 128 };
    int8_t *q = malloc((size_t)k * T);
    float *s = malloc(T * sizeof(float));
    int32_t *xs = malloc((size_t)T * (k / 128) * sizeof(int32_t));
    for (size_t i = 0; i < (size_t)k * T; i++) q[i] = (int8_t)rnd();
    for (int t = 0; t < T; t++) {
        s[t] = 1.0f;
        bn_act_sums_scalar(q + (size_t)t * k, k, xs + (size_t)t * (k / 128));
    }
    float *ref = malloc((size_t)n * T * sizeof(float)), *out = malloc((size_t)n * T * sizeof(float));
    struct bn_tact a = {.q = q, .q_stride = k, .s = s, .xsum = xs, .n_tok = T};
    bn_ternary_gemm_scalar(&packs[0], 0, packs[0].n_tiles, &a, 1.0f, ref, n, false);

    for (int i = 0; i < n_kr; i++) {
        const struct bn_cpu_kernels *kr = krs[i];
        struct gemm_job j = {.kr = kr, .packs = packs, .n_packs = 1, .a = &a, .out = out};
        bn_threadpool_run(pool, gemm_thread, &j);
        if (memcmp(out, ref, (size_t)n * T * sizeof(float)) != 0) {
            printf("%-8s %5u x %-6u  DIFFERS from the scalar reference: not timed\n", kr->name, k, n);
            continue;
        }
        /* GEMV over the whole stack */
        struct bn_tact a1 = a;
        a1.n_tok = 1;
        j.a = &a1;
        j.n_packs = copies;
        double best = 1e30;
        for (int r = 0; r < reps + 1; r++) {
            const double t0 = now();
            bn_threadpool_run(pool, gemm_thread, &j);
            const double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        const double gemv_gbs = (double)code_bytes * copies / best / 1e9;
        const double gemv_gmacs = (double)k * n * copies / best / 1e9;
        /* GEMM, 128 tokens, one copy */
        j.a = &a;
        j.n_packs = 1;
        const int gemm_reps = kr->isa == BN_CPU_SCALAR ? 1 : reps;
        best = 1e30;
        for (int r = 0; r < gemm_reps + 1; r++) {
            const double t0 = now();
            bn_threadpool_run(pool, gemm_thread, &j);
            const double dt = now() - t0;
            if (r > 0 && dt < best) best = dt;
        }
        const double gemm_gmacs = (double)k * n * T / best / 1e9;
        printf("%-8s %5u x %-6u  gemv %6.1f GB/s %7.1f GMAC/s   gemm(128) %7.1f GMAC/s\n", kr->name, k, n, gemv_gbs,
               gemv_gmacs, gemm_gmacs);
    }
    munmap(arena, code_bytes * (size_t)copies);
    free(packs);
    free(scratch);
    free(src);
    free(q);
    free(s);
    free(xs);
    free(ref);
    free(out);
}

static void bench_heads(bn_threadpool *pool, const struct bn_cpu_kernels *const *krs, int n_kr, int reps)
{
    const size_t k = 2560, n = 128256;
    uint16_t *wf = big_alloc(k * n * 2);
    int8_t *wq = big_alloc(k * n);
    float *d = malloc(n * sizeof(float)), *row = malloc(k * sizeof(float));
    float *x = malloc(k * sizeof(float)), *ref = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < k; i++) row[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
        for (size_t i = 0; i < k; i++) wf[r * k + i] = bn_fp32_to_fp16(row[i]);
        d[r] = bn_head_q8_quantize_row(row, k, wq + r * k);
    }
    for (size_t i = 0; i < k; i++) x[i] = (float)((int)(rnd() % 2001) - 1000) / 1000.0f;
    int16_t *xq = malloc(k * sizeof(int16_t));
    const float xs = bn_quantize_row_i16(x, k, xq);
    for (int q8 = 0; q8 < 2; q8++) {
        if (q8) bn_head_q8_scalar(wq, d, k, 0, n, xq, &xs, 1, ref, n);
        else bn_head_f16_scalar(wf, k, 0, n, x, 1, ref, n);
        for (int i = 0; i < n_kr; i++) {
            struct head_job j = {.kr = krs[i], .wf = wf, .wq = q8 ? wq : NULL, .d = d, .k = k, .n = n, .x = x, .xq = xq,
                                 .xs = xs, .out = out};
            bn_threadpool_run(pool, head_thread, &j);
            const double e = nmse(out, ref, n);
            if (e > 1e-7) {
                printf("%-8s head %s: NMSE %g against the scalar reference: not timed\n", krs[i]->name, q8 ? "q8 " : "f16", e);
                continue;
            }
            double best = 1e30;
            for (int r = 0; r < (krs[i]->isa == BN_CPU_SCALAR ? 1 : reps); r++) {
                const double t0 = now();
                bn_threadpool_run(pool, head_thread, &j);
                const double dt = now() - t0;
                if (dt < best) best = dt;
            }
            const double bytes = (double)k * n * (q8 ? 1 : 2);
            printf("%-8s head %s %zu x %zu   %6.1f GB/s %7.1f GMAC/s  (%.2f ms)\n", krs[i]->name, q8 ? "q8 " : "f16", k, n,
                   bytes / best / 1e9, (double)k * n / best / 1e9, best * 1e3);
        }
    }
    munmap(wf, k * n * 2);
    munmap(wq, k * n);
    free(d);
    free(row);
    free(x);
    free(xq);
    free(ref);
    free(out);
}

int main(int argc, char **argv)
{
    int threads = bn_cpu_physical_cores(), reps = 5;
    size_t mib = 512;
    const char *isas = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-m") && i + 1 < argc) mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-i") && i + 1 < argc) isas = argv[++i];
        else {
            fprintf(stderr, "usage: bn-bench-kernels [-t THREADS] [-r REPS] [-i scalar,avx2,avx512] [-m MiB]\n");
            return 1;
        }
    }
    const struct bn_cpu_kernels *krs[BN_CPU_ISA_COUNT];
    int n_kr = 0;
    for (int i = 0; i < BN_CPU_ISA_COUNT; i++) {
        const struct bn_cpu_kernels *kr = bn_cpu_kernels_get((enum bn_cpu_isa)i);
        if (kr && (!isas || strstr(isas, kr->name))) krs[n_kr++] = kr;
    }
    bn_threadpool *pool;
    char err[128];
    if (bn_threadpool_create(threads, &pool, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    printf("threads %d, gemv stack %zu MiB, best of %d\n", threads, mib, reps);
    static const uint32_t shapes[][2] = {{2560, 2560}, {2560, 640}, {2560, 6912}, {6912, 2560}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        bench_shape(pool, krs, n_kr, shapes[s][0], shapes[s][1], mib << 20, reps);
    bench_heads(pool, krs, n_kr, reps);
    bn_threadpool_destroy(pool);
    return 0;
}
