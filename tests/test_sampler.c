/*
 * test_sampler.c - greedy, penalty, top-k/top-p/min-p, temperature, seeding
 * and parameter validation of runtime/sampler.c.
 *
 * Statistical checks use fixed seeds, so they are deterministic; their
 * tolerances are still several standard deviations wide so that a change of
 * generator would not make them flaky.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sampler.h"
#include "test_util.h"

/* Parameters with every filter and the penalty off, at temperature 1. */
static struct bn_sampler_params plain_params(uint64_t seed)
{
    struct bn_sampler_params p = bn_sampler_default_params();
    p.temp = 1.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 0;
    p.seed = seed;
    return p;
}

static bn_sampler *make(const struct bn_sampler_params *p, uint32_t n_vocab)
{
    char err[256] = "";
    bn_sampler *s = NULL;
    enum bn_status st = bn_sampler_create(p, n_vocab, &s, err, sizeof err);
    CHECKF(st == BN_OK && s != NULL, "create failed: %s", err);
    return s;
}

/* Samples once from a copy of logits (the sampler modifies its input). */
static int32_t sample_copy(bn_sampler *s, const float *logits, float *scratch, uint32_t n)
{
    memcpy(scratch, logits, n * sizeof *scratch);
    return bn_sampler_sample(s, scratch);
}

/* Draws `draws` tokens and counts them into counts[n]. Returns 0 if a token
 * fell outside [0, n). */
static int histogram(bn_sampler *s, const float *logits, uint32_t n, int draws, long *counts)
{
    float *scratch = malloc(n * sizeof *scratch);
    int ok = scratch != NULL;
    memset(counts, 0, n * sizeof *counts);
    for (int i = 0; ok && i < draws; i++) {
        int32_t t = sample_copy(s, logits, scratch, n);
        if (t < 0 || (uint32_t)t >= n)
            ok = 0;
        else
            counts[t]++;
    }
    free(scratch);
    return ok;
}

/* Test-only generator for logits (a 64-bit LCG), state passed explicitly. */
static double lcg_uniform(uint64_t *st)
{
    *st = *st * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
    return (double)(*st >> 11) * (1.0 / 9007199254740992.0);
}

static void softmax(const float *l, int n, double temp, double *p)
{
    double m = -INFINITY, z = 0;
    for (int i = 0; i < n; i++)
        if (l[i] > m) m = l[i];
    for (int i = 0; i < n; i++) z += p[i] = exp((l[i] - m) / temp);
    for (int i = 0; i < n; i++) p[i] /= z;
}

static void test_greedy(void)
{
    struct bn_sampler_params p = plain_params(1);
    p.temp = 0.0f;
    bn_sampler *s = make(&p, 4);
    if (!s) return;
    float a[4] = {0.1f, 2.0f, -1.0f, 1.5f};
    CHECK(bn_sampler_sample(s, a) == 1, "greedy picks the argmax");
    float b[4] = {1.0f, 3.0f, 3.0f, 2.0f};
    CHECK(bn_sampler_sample(s, b) == 1, "greedy tie goes to the lowest id");
    float c[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    CHECK(bn_sampler_sample(s, c) == 0, "greedy on all -inf gives 0");
    float d[4] = {NAN, 1.0f, NAN, 0.5f};
    CHECK(bn_sampler_sample(s, d) == 1, "greedy skips NaN");
    CHECK(isinf(d[0]) && d[0] < 0, "NaN logit becomes -inf in place");
    float e[4] = {NAN, NAN, NAN, NAN};
    CHECK(bn_sampler_sample(s, e) == 0, "greedy on all NaN gives 0");
    float f[4] = {1.0f, INFINITY, INFINITY, -INFINITY};
    CHECK(bn_sampler_sample(s, f) == 1, "greedy on +inf gives the first +inf");
    bn_sampler_destroy(s);

    p.temp = -1.0f; /* negative temperature is greedy too */
    s = make(&p, 4);
    if (!s) return;
    float g[4] = {0.0f, -1.0f, 4.0f, 4.0f};
    CHECK(bn_sampler_sample(s, g) == 2, "negative temp is greedy");
    bn_sampler_destroy(s);
}

static void test_greedy_ignores_seed(void)
{
    enum { N = 1000 };
    struct bn_sampler_params p1 = bn_sampler_default_params(), p2 = p1;
    p1.temp = 0.0f;
    p1.seed = 1;
    p2.temp = 0.0f;
    p2.seed = 987654321;
    bn_sampler *s1 = make(&p1, N), *s2 = make(&p2, N);
    float *l = malloc(N * sizeof *l), *x = malloc(N * sizeof *x);
    if (s1 && s2 && l && x) {
        uint64_t g = 7;
        int same = 1;
        for (int step = 0; step < 100; step++) {
            for (int i = 0; i < N; i++) l[i] = (float)(lcg_uniform(&g) * 10.0);
            int32_t a = sample_copy(s1, l, x, N), b = sample_copy(s2, l, x, N);
            if (a != b) same = 0;
        }
        CHECK(same, "greedy gives the same tokens under different seeds");
    }
    free(l);
    free(x);
    bn_sampler_destroy(s1);
    bn_sampler_destroy(s2);
}

static void test_penalty(void)
{
    struct bn_sampler_params p = plain_params(1);
    p.temp = 0.0f;
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 64;
    bn_sampler *s = make(&p, 4);
    if (!s) return;

    /* Token 0 (positive, 2.0 -> 1.0) twice in history, token 2 (negative,
     * -1.0 -> -2.0) once: 0 is penalized once (not to 0.5), 1 wins. */
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 2);
    bn_sampler_accept(s, 0);
    float a[4] = {2.0f, 1.5f, -1.0f, -1.2f};
    CHECK(bn_sampler_sample(s, a) == 1, "penalty moves the greedy pick from 0 to 1");
    CHECKF(a[0] == 1.0f, "positive logit divided once: %g", (double)a[0]);
    CHECKF(a[2] == -2.0f, "negative logit multiplied: %g", (double)a[2]);
    CHECKF(a[1] == 1.5f && a[3] == -1.2f, "others untouched: %g %g", (double)a[1], (double)a[3]);
    bn_sampler_destroy(s);

    /* Negative logits only: -0.5 * 1.5 = -0.75 < -0.6, so 1 wins. */
    p.repeat_penalty = 1.5f;
    s = make(&p, 2);
    if (!s) return;
    bn_sampler_accept(s, 0);
    float b[2] = {-0.5f, -0.6f};
    CHECK(bn_sampler_sample(s, b) == 1, "penalty on a negative logit");
    bn_sampler_reset(s);
    float c[2] = {-0.5f, -0.6f};
    CHECK(bn_sampler_sample(s, c) == 0, "reset clears the history");
    bn_sampler_accept(s, -3); /* out of range: ignored */
    bn_sampler_accept(s, 2);
    float c2[2] = {-0.5f, -0.6f};
    CHECK(bn_sampler_sample(s, c2) == 0, "out-of-range accepted tokens are ignored");
    bn_sampler_destroy(s);

    /* Window: with repeat_last_n = 1 only the newest token counts. */
    p.repeat_penalty = 2.0f;
    p.repeat_last_n = 1;
    s = make(&p, 4);
    if (!s) return;
    bn_sampler_accept(s, 0);
    bn_sampler_accept(s, 2);
    float d[4] = {2.0f, 1.5f, -1.0f, -1.2f};
    CHECK(bn_sampler_sample(s, d) == 0, "token outside the window is not penalized");
    CHECK(d[2] == -2.0f, "token inside the window is penalized");
    bn_sampler_destroy(s);

    /* repeat_last_n = 0: off. */
    p.repeat_last_n = 0;
    s = make(&p, 4);
    if (!s) return;
    bn_sampler_accept(s, 0);
    float e[4] = {2.0f, 1.5f, -1.0f, -1.2f};
    CHECK(bn_sampler_sample(s, e) == 0 && e[0] == 2.0f, "repeat_last_n 0 disables the penalty");
    bn_sampler_destroy(s);

    /* repeat_last_n = -1: the whole history, past the initial buffer size
     * and the ring's growth; token 0 accepted first is still penalized. */
    p.repeat_last_n = -1;
    s = make(&p, 100);
    if (!s) return;
    bn_sampler_accept(s, 0);
    for (int i = 0; i < 20000; i++) bn_sampler_accept(s, 1 + i % 50);
    float f[100];
    for (int i = 0; i < 100; i++) f[i] = 0.0f;
    f[0] = 2.0f;
    f[99] = 1.5f;
    CHECK(bn_sampler_sample(s, f) == 99, "repeat_last_n -1 remembers the first token");
    CHECK(f[0] == 1.0f, "... penalized once");
    bn_sampler_destroy(s);

    /* Ring wraps: last_n = 3 after 5 tokens keeps {2,3,4}. */
    p.repeat_last_n = 3;
    s = make(&p, 5);
    if (!s) return;
    for (int i = 0; i < 5; i++) bn_sampler_accept(s, i);
    float g[5] = {4.0f, 4.0f, 4.0f, 4.0f, 4.0f};
    (void)bn_sampler_sample(s, g);
    CHECKF(g[0] == 4.0f && g[1] == 4.0f && g[2] == 2.0f && g[3] == 2.0f && g[4] == 2.0f,
           "ring keeps the last 3: %g %g %g %g %g", (double)g[0], (double)g[1], (double)g[2], (double)g[3],
           (double)g[4]);
    bn_sampler_destroy(s);
}

static void test_top_k1_is_greedy(void)
{
    enum { N = 500 };
    const float temps[] = {0.05f, 0.7f, 1.0f, 3.0f, 100.0f};
    float *l = malloc(N * sizeof *l), *x = malloc(N * sizeof *x);
    if (!l || !x) {
        CHECK(0, "malloc");
        free(l);
        free(x);
        return;
    }
    uint64_t g = 11;
    int mismatches = 0;
    for (size_t ti = 0; ti < sizeof temps / sizeof temps[0]; ti++) {
        struct bn_sampler_params p = bn_sampler_default_params();
        p.top_k = 1;
        p.temp = temps[ti];
        p.seed = ti;
        bn_sampler *s = make(&p, N);
        if (!s) continue;
        for (int step = 0; step < 50; step++) {
            /* Quantized logits so that the maximum is often tied. */
            for (int i = 0; i < N; i++) l[i] = (float)floor(lcg_uniform(&g) * 8.0);
            int want = 0;
            for (int i = 1; i < N; i++)
                if (l[i] > l[want]) want = i;
            if (sample_copy(s, l, x, N) != want) mismatches++;
        }
        bn_sampler_destroy(s);
    }
    CHECKF(mismatches == 0, "top_k = 1 matches greedy (lowest id on ties): %d mismatches", mismatches);
    free(l);
    free(x);
}

static void test_seeding(void)
{
    enum { N = 1000, DRAWS = 1000 };
    float *l = malloc(N * sizeof *l), *x = malloc(N * sizeof *x);
    int32_t *seq[3] = {malloc(DRAWS * sizeof(int32_t)), malloc(DRAWS * sizeof(int32_t)),
                       malloc(DRAWS * sizeof(int32_t))};
    if (l && x && seq[0] && seq[1] && seq[2]) {
        uint64_t g = 3;
        for (int i = 0; i < N; i++) l[i] = (float)(lcg_uniform(&g) * 4.0);
        const uint64_t seeds[3] = {42, 42, 43};
        for (int k = 0; k < 3; k++) {
            struct bn_sampler_params p = bn_sampler_default_params();
            p.temp = 1.0f;
            p.top_k = 0;
            p.top_p = 1.0f;
            p.min_p = 0.0f;
            p.seed = seeds[k];
            bn_sampler *s = make(&p, N);
            if (!s) continue;
            for (int i = 0; i < DRAWS; i++) seq[k][i] = sample_copy(s, l, x, N);
            /* Reset restarts the generator: the first draws repeat. */
            bn_sampler_reset(s);
            int again = 1;
            for (int i = 0; i < 20; i++)
                if (sample_copy(s, l, x, N) != seq[k][i]) again = 0;
            CHECK(again, "reset restarts the sequence");
            bn_sampler_destroy(s);
        }
        int same = 0, diff = 0;
        for (int i = 0; i < DRAWS; i++) {
            same += seq[0][i] == seq[1][i];
            diff += seq[0][i] != seq[2][i];
        }
        CHECKF(same == DRAWS, "same seed, same sequence (%d of %d)", same, DRAWS);
        CHECKF(diff > DRAWS * 9 / 10, "different seed, different sequence (%d of %d differ)", diff, DRAWS);
    }
    free(l);
    free(x);
    for (int k = 0; k < 3; k++) free(seq[k]);
}

static void test_distribution(void)
{
    enum { N = 4, DRAWS = 200000 };
    const float l[N] = {1.0f, 2.0f, 0.5f, -1.0f};
    double want[N];
    long counts[N];
    softmax(l, N, 1.0, want);
    struct bn_sampler_params p = plain_params(2024);
    bn_sampler *s = make(&p, N);
    if (!s) return;
    CHECK(histogram(s, l, N, DRAWS, counts), "tokens in range");
    double worst = 0;
    for (int i = 0; i < N; i++) {
        double d = fabs((double)counts[i] / DRAWS - want[i]);
        if (d > worst) worst = d;
    }
    CHECKF(worst < 4e-3, "empirical distribution matches softmax: max error %.5f", worst);
    bn_sampler_destroy(s);
}

/* Log-probabilities: logits whose softmax is exactly prob (up to rounding). */
static void logits_from_probs(const double *prob, int n, float *l)
{
    for (int i = 0; i < n; i++) l[i] = (float)log(prob[i]);
}

static void test_top_p(void)
{
    enum { DRAWS = 50000 };
    long counts[4];
    const double prob[4] = {0.5, 0.25, 0.15, 0.1};
    float l[4];
    logits_from_probs(prob, 4, l);

    /* 0.5 < 0.7 <= 0.75: keeps {0, 1}, renormalized to 2/3 and 1/3. */
    struct bn_sampler_params p = plain_params(5);
    p.top_p = 0.7f;
    bn_sampler *s = make(&p, 4);
    if (!s) return;
    histogram(s, l, 4, DRAWS, counts);
    CHECKF(counts[2] == 0 && counts[3] == 0, "top_p 0.7 never draws 2 or 3 (%ld, %ld)", counts[2], counts[3]);
    CHECKF(fabs((double)counts[0] / DRAWS - 2.0 / 3.0) < 0.01, "top_p 0.7 renormalizes: P(0) = %.4f",
           (double)counts[0] / DRAWS);
    CHECK(counts[1] > 0, "top_p 0.7 draws 1");
    bn_sampler_destroy(s);

    /* top_p 0: only the most likely token. */
    p.top_p = 0.0f;
    s = make(&p, 4);
    if (!s) return;
    histogram(s, l, 4, 2000, counts);
    CHECKF(counts[0] == 2000, "top_p 0 keeps only the top token (%ld)", counts[0]);
    bn_sampler_destroy(s);

    /* Top-p measures mass within the top-k set: probs 0.4 0.3 0.2 0.1 with
     * top_p 0.72 keep {0,1,2} alone (0.7 < 0.72), but {0,1} after top_k 3
     * (0.4/0.9 + 0.3/0.9 = 0.778). */
    const double prob2[4] = {0.4, 0.3, 0.2, 0.1};
    logits_from_probs(prob2, 4, l);
    p.top_p = 0.72f;
    s = make(&p, 4);
    if (!s) return;
    histogram(s, l, 4, DRAWS, counts);
    CHECKF(counts[3] == 0 && counts[0] > 0 && counts[1] > 0 && counts[2] > 0,
           "top_p 0.72 keeps {0,1,2}: %ld %ld %ld %ld", counts[0], counts[1], counts[2], counts[3]);
    bn_sampler_destroy(s);
    p.top_k = 3;
    s = make(&p, 4);
    if (!s) return;
    histogram(s, l, 4, DRAWS, counts);
    CHECKF(counts[2] == 0 && counts[3] == 0 && counts[0] > 0 && counts[1] > 0,
           "top_k 3 + top_p 0.72 keeps {0,1}: %ld %ld %ld %ld", counts[0], counts[1], counts[2], counts[3]);
    bn_sampler_destroy(s);

    /* A larger vocabulary (the heap path), with the likely tokens scattered:
     * ids 700, 3, 999, 300 carry 0.5 0.25 0.15 0.1, the rest e^-30 each. */
    enum { N = 1000 };
    float *big = malloc(N * sizeof *big);
    long *bc = malloc(N * sizeof *bc);
    if (big && bc) {
        for (int i = 0; i < N; i++) big[i] = -30.0f;
        big[700] = (float)log(0.5);
        big[3] = (float)log(0.25);
        big[999] = (float)log(0.15);
        big[300] = (float)log(0.1);
        p = plain_params(6);
        p.top_p = 0.7f;
        s = make(&p, N);
        if (s) {
            histogram(s, big, N, 10000, bc);
            long others = 10000 - bc[700] - bc[3];
            CHECKF(others == 0 && bc[700] > 0 && bc[3] > 0, "top_p 0.7 on 1000 tokens keeps {700, 3}: %ld others",
                   others);
            bn_sampler_destroy(s);
        }
    }
    free(big);
    free(bc);
}

/* Sampling order for the reference: larger logit, then lower id. */
static int cmp_order(const void *a, const void *b, const float *l)
{
    int i = *(const int *)a, j = *(const int *)b;
    if (l[i] != l[j]) return l[i] > l[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* Insertion sort (qsort has no context argument in C11); n is small. */
static void sort_order(int *idx, int n, const float *l)
{
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i;
        while (j > 0 && cmp_order(&v, &idx[j - 1], l) < 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = v;
    }
}

/* Top-p on random logits against a reference computed by sorting, with and
 * without min-p, and the case where the first bucket guess runs out. */
static void test_top_p_reference(void)
{
    enum { N = 1000, DRAWS = 4000 };
    float *l = malloc(N * sizeof *l);
    int *idx = malloc(N * sizeof *idx);
    char *in = malloc(N);
    long *counts = malloc(N * sizeof *counts);
    if (!l || !idx || !in || !counts) {
        CHECK(0, "malloc");
        goto out;
    }
    uint64_t g = 1234;
    for (int i = 0; i < N; i++) l[i] = (float)(floor(lcg_uniform(&g) * 64.0) / 8.0); /* ties */
    for (int i = 0; i < N; i++) idx[i] = i;
    sort_order(idx, N, l);
    const float top_ps[3] = {0.3f, 0.6f, 0.9f};
    for (int k = 0; k < 3; k++) {
        double z = 0, cum = 0;
        for (int i = 0; i < N; i++) z += exp((double)l[i] - l[idx[0]]);
        memset(in, 0, N);
        int n_in = 0;
        for (int i = 0; i < N; i++) {
            in[idx[i]] = 1;
            n_in++;
            cum += exp((double)l[idx[i]] - l[idx[0]]);
            if (cum >= top_ps[k] * z) break;
        }
        struct bn_sampler_params p = plain_params(20 + (uint64_t)k);
        p.top_p = top_ps[k];
        bn_sampler *s = make(&p, N);
        if (!s) continue;
        histogram(s, l, N, DRAWS, counts);
        long outside = 0;
        for (int i = 0; i < N; i++)
            if (!in[i]) outside += counts[i];
        CHECKF(outside == 0 && counts[idx[0]] > 0,
               "top_p %.1f draws only the %d reference tokens (%ld outside)", (double)top_ps[k], n_in, outside);
        bn_sampler_destroy(s);
    }

    /* Min-p bounds the first bucket guess: the three near tokens pass
     * min_p 0.5, fall short of top_p 0.999, and the far ones (e^-10) fail
     * min_p when they are reached. */
    for (int i = 0; i < N; i++) l[i] = -10.0f;
    l[5] = 0.0f;
    l[17] = -0.1f;
    l[999] = -0.2f;
    struct bn_sampler_params p = plain_params(30);
    p.top_p = 0.999f;
    p.min_p = 0.5f;
    bn_sampler *s = make(&p, N);
    if (s) {
        histogram(s, l, N, DRAWS, counts);
        long rest = DRAWS - counts[5] - counts[17] - counts[999];
        CHECKF(rest == 0 && counts[5] > 0 && counts[17] > 0 && counts[999] > 0,
               "top_p 0.999 + min_p 0.5 keeps the 3 near tokens (%ld others)", rest);
        bn_sampler_destroy(s);
    }
out:
    free(l);
    free(idx);
    free(in);
    free(counts);
}

static void test_min_p(void)
{
    enum { DRAWS = 50000 };
    long counts[4];
    const double prob[4] = {0.1, 0.5, 0.25, 0.15};
    float l[4];
    logits_from_probs(prob, 4, l);

    /* Threshold 0.25 * 0.5 = 0.125: drops token 0 (0.1). */
    struct bn_sampler_params p = plain_params(8);
    p.min_p = 0.25f;
    bn_sampler *s = make(&p, 4);
    if (!s) return;
    histogram(s, l, 4, DRAWS, counts);
    CHECKF(counts[0] == 0 && counts[1] > 0 && counts[2] > 0 && counts[3] > 0,
           "min_p 0.25 keeps {1,2,3}: %ld %ld %ld %ld", counts[0], counts[1], counts[2], counts[3]);
    CHECKF(fabs((double)counts[1] / DRAWS - 0.5 / 0.9) < 0.01, "min_p renormalizes: P(1) = %.4f",
           (double)counts[1] / DRAWS);
    bn_sampler_destroy(s);

    /* Threshold 0.4 * 0.5 = 0.2: keeps {1,2}; same with top-k on (sorted path). */
    p.min_p = 0.4f;
    for (int with_k = 0; with_k < 2; with_k++) {
        p.top_k = with_k ? 3 : 0;
        s = make(&p, 4);
        if (!s) return;
        histogram(s, l, 4, DRAWS, counts);
        CHECKF(counts[0] == 0 && counts[3] == 0 && counts[1] > 0 && counts[2] > 0,
               "min_p 0.4 (top_k %d) keeps {1,2}: %ld %ld %ld %ld", p.top_k, counts[0], counts[1], counts[2],
               counts[3]);
        bn_sampler_destroy(s);
    }

    /* min_p 1 keeps the maxima only (both tied ones). */
    float t[4] = {1.0f, 3.0f, 0.0f, 3.0f};
    p = plain_params(9);
    p.min_p = 1.0f;
    s = make(&p, 4);
    if (!s) return;
    histogram(s, t, 4, 2000, counts);
    CHECKF(counts[0] == 0 && counts[2] == 0 && counts[1] > 0 && counts[3] > 0, "min_p 1 keeps the tied maxima");
    bn_sampler_destroy(s);
}

static void test_top_k(void)
{
    enum { N = 1000, K = 5, DRAWS = 10000 };
    float *l = malloc(N * sizeof *l);
    long *counts = malloc(N * sizeof *counts);
    if (l && counts) {
        /* Values 0..3: hundreds tie at 3; top-k keeps the K lowest ids of them. */
        uint64_t g = 99;
        for (int i = 0; i < N; i++) l[i] = (float)floor(lcg_uniform(&g) * 4.0);
        int want[K], nw = 0;
        for (int i = 0; i < N && nw < K; i++)
            if (l[i] == 3.0f) want[nw++] = i;
        struct bn_sampler_params p = plain_params(10);
        p.top_k = K;
        bn_sampler *s = make(&p, N);
        if (s) {
            histogram(s, l, N, DRAWS, counts);
            long in = 0;
            int all_seen = 1;
            for (int j = 0; j < nw; j++) {
                in += counts[want[j]];
                if (counts[want[j]] < DRAWS / K / 2) all_seen = 0;
            }
            CHECKF(in == DRAWS && all_seen && nw == K, "top_k %d keeps the lowest tied ids (%ld of %d inside)", K,
                   in, DRAWS);
            bn_sampler_destroy(s);
        }
    }
    free(l);
    free(counts);

    /* Fewer candidates than k (NaN and -inf are not candidates). */
    float m[4] = {-INFINITY, 1.0f, NAN, 2.0f};
    long c4[4];
    struct bn_sampler_params p = plain_params(12);
    p.top_k = 3;
    bn_sampler *s = make(&p, 4);
    if (!s) return;
    histogram(s, m, 4, 5000, c4);
    CHECKF(c4[0] == 0 && c4[2] == 0 && c4[1] > 0 && c4[3] > 0, "-inf and NaN are never drawn");
    float allinf[4] = {-INFINITY, NAN, -INFINITY, -INFINITY};
    CHECK(bn_sampler_sample(s, allinf) == 0, "sampling all -inf gives 0");
    float one[4] = {-INFINITY, NAN, 5.0f, -INFINITY};
    CHECK(bn_sampler_sample(s, one) == 2, "a single finite logit is drawn");
    float pinf[4] = {0.0f, INFINITY, 1.0f, INFINITY};
    histogram(s, pinf, 4, 2000, c4);
    CHECKF(c4[1] + c4[3] == 2000 && c4[1] > 0 && c4[3] > 0, "+inf logits share the mass");
    bn_sampler_destroy(s);
}

static void test_temperature(void)
{
    enum { N = 4, DRAWS = 100000 };
    const float l[N] = {1.0f, 2.0f, 0.5f, -1.0f};
    const float temps[3] = {0.5f, 1.0f, 2.0f};
    double ptop[3];
    long counts[N];
    for (int k = 0; k < 3; k++) {
        struct bn_sampler_params p = plain_params(77);
        p.temp = temps[k];
        bn_sampler *s = make(&p, N);
        if (!s) return;
        histogram(s, l, N, DRAWS, counts);
        double want[N];
        softmax(l, N, temps[k], want);
        ptop[k] = (double)counts[1] / DRAWS;
        CHECKF(fabs(ptop[k] - want[1]) < 6e-3, "temp %.1f: P(argmax) %.4f, softmax %.4f", (double)temps[k],
               ptop[k], want[1]);
        bn_sampler_destroy(s);
    }
    CHECKF(ptop[0] > ptop[1] + 0.1 && ptop[1] > ptop[2] + 0.1, "temp 0.5 sharpens, 2 flattens: %.3f %.3f %.3f",
           ptop[0], ptop[1], ptop[2]);
}

static void test_create_validation(void)
{
    struct bn_sampler_params d = bn_sampler_default_params();
    CHECK(d.temp == 0.8f && d.top_k == 40 && d.top_p == 0.95f && d.min_p == 0.05f && d.repeat_penalty == 1.0f &&
              d.repeat_last_n == 64 && d.seed == 0,
          "default params");

    struct bad {
        const char *name;
        struct bn_sampler_params p;
        uint32_t n_vocab;
    } cases[20];
    int nc = 0;
#define BAD(field, value, vocab)                                                                               \
    do {                                                                                                       \
        cases[nc].name = #field;                                                                               \
        cases[nc].p = d;                                                                                       \
        cases[nc].p.field = (value);                                                                           \
        cases[nc].n_vocab = (vocab);                                                                           \
        nc++;                                                                                                  \
    } while (0)
    BAD(temp, NAN, 10);
    BAD(temp, INFINITY, 10);
    BAD(temp, -INFINITY, 10);
    BAD(top_p, -0.01f, 10);
    BAD(top_p, 1.5f, 10);
    BAD(top_p, NAN, 10);
    BAD(min_p, -0.5f, 10);
    BAD(min_p, 1.01f, 10);
    BAD(min_p, NAN, 10);
    BAD(repeat_penalty, 0.0f, 10);
    BAD(repeat_penalty, -1.0f, 10);
    BAD(repeat_penalty, INFINITY, 10);
    BAD(repeat_penalty, NAN, 10);
    BAD(repeat_last_n, -2, 10);
    BAD(seed, 0, 0);                    /* n_vocab 0 */
    BAD(seed, 0, 0x80000000u);          /* ids would not fit int32_t */
#undef BAD
    bn_sampler *sentinel = make(&d, 10); /* a non-NULL value *out must lose */
    for (int i = 0; sentinel && i < nc; i++) {
        char err[256];
        memset(err, 0, sizeof err);
        bn_sampler *s = sentinel;
        enum bn_status st = bn_sampler_create(&cases[i].p, cases[i].n_vocab, &s, err, sizeof err);
        const char *want = cases[i].n_vocab == 10 ? cases[i].name : "n_vocab";
        CHECKF(st == BN_ERR_USAGE && s == NULL, "case %d (%s): status %d", i, want, (int)st);
        CHECKF(err[0] != '\0' && strchr(err, '\n') == NULL && strstr(err, want) != NULL,
               "case %d: one-line message naming %s: \"%s\"", i, want, err);
        if (st == BN_OK) bn_sampler_destroy(s);
    }
    bn_sampler_destroy(sentinel);
    bn_sampler *s = NULL;
    CHECK(bn_sampler_create(&d, 10, &s, NULL, 0) == BN_OK, "create with no error buffer");
    bn_sampler_destroy(s);
    CHECK(bn_sampler_create(&cases[0].p, 10, &s, NULL, 0) == BN_ERR_USAGE, "bad params with no error buffer");
    CHECK(bn_sampler_create(NULL, 10, &s, NULL, 0) == BN_ERR_USAGE, "NULL params");

    /* The edges of each range are accepted. */
    struct bn_sampler_params e = d;
    e.temp = -3.0f;
    e.top_p = 0.0f;
    e.min_p = 1.0f;
    e.repeat_penalty = 1e-6f;
    e.repeat_last_n = -1;
    e.top_k = -7;
    s = NULL;
    CHECK(bn_sampler_create(&e, 1, &s, NULL, 0) == BN_OK, "edge values accepted");
    bn_sampler_destroy(s);
    e.top_p = 1.0f;
    e.min_p = 0.0f;
    e.repeat_last_n = INT32_MAX; /* capped, not allocated */
    s = NULL;
    CHECK(bn_sampler_create(&e, 1, &s, NULL, 0) == BN_OK, "top_p 1, min_p 0, huge repeat_last_n accepted");
    bn_sampler_destroy(s);
    bn_sampler_destroy(NULL);
}

/* A Llama-3-sized vocabulary through each filter path, with a time report;
 * also checks top-k's tokens against a reference selection. */
static void test_large_vocab(void)
{
    enum { N = 128256, STEPS = 30 };
    float *l = malloc(N * sizeof *l), *x = malloc(N * sizeof *x);
    if (!l || !x) {
        CHECK(0, "malloc");
        free(l);
        free(x);
        return;
    }
    uint64_t g = 5;
    for (int i = 0; i < N; i++) {
        /* Roughly logit-like: most mass in a few hundred tokens. */
        double u = lcg_uniform(&g);
        l[i] = (float)(u * u * u * 20.0 - 5.0);
    }
    /* Reference top-40 threshold: the 40th largest logit (ties by id). */
    int top[40], nt = 0;
    {
        char *used = calloc(N, 1);
        for (nt = 0; used && nt < 40; nt++) {
            int b = -1;
            for (int i = 0; i < N; i++)
                if (!used[i] && (b < 0 || l[i] > l[b])) b = i;
            used[b] = 1;
            top[nt] = b;
        }
        free(used);
    }
    struct {
        const char *what;
        int32_t top_k;
        float top_p, min_p;
    } const modes[] = {
        {"top_k 40, top_p 0.95, min_p 0.05", 40, 0.95f, 0.05f},
        {"top_p 0.95, min_p 0.05", 0, 0.95f, 0.05f},
        {"top_p 0.95", 0, 0.95f, 0.0f},
        {"min_p 0.05", 0, 1.0f, 0.05f},
        {"no filter", 0, 1.0f, 0.0f},
    };
    for (size_t mi = 0; mi < sizeof modes / sizeof modes[0]; mi++) {
        struct bn_sampler_params p = bn_sampler_default_params();
        p.top_k = modes[mi].top_k;
        p.top_p = modes[mi].top_p;
        p.min_p = modes[mi].min_p;
        p.repeat_penalty = 1.1f;
        p.seed = mi;
        bn_sampler *s = make(&p, N);
        if (!s) continue;
        int outside = 0;
        clock_t t0 = clock();
        for (int step = 0; step < STEPS; step++) {
            int32_t t = sample_copy(s, l, x, N);
            if (t < 0 || t >= N) {
                outside++;
                continue;
            }
            if (modes[mi].top_k == 40) {
                /* The penalty lowers accepted tokens, so only check the
                 * first step against the unpenalized reference. */
                int found = 0;
                for (int j = 0; j < nt; j++) found |= top[j] == t;
                if (step == 0 && !found) outside++;
            }
            bn_sampler_accept(s, t);
        }
        double ms = (double)(clock() - t0) * 1000.0 / CLOCKS_PER_SEC / STEPS;
        printf("  n_vocab %d, %s: %.3f ms/token\n", N, modes[mi].what, ms);
        CHECKF(outside == 0, "%s: tokens valid", modes[mi].what);
        bn_sampler_destroy(s);
    }
    free(l);
    free(x);
}

int main(void)
{
    test_greedy();
    test_greedy_ignores_seed();
    test_penalty();
    test_top_k1_is_greedy();
    test_seeding();
    test_distribution();
    test_top_p();
    test_top_p_reference();
    test_min_p();
    test_top_k();
    test_temperature();
    test_create_validation();
    test_large_vocab();
    return test_report("test_sampler");
}
