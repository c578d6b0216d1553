/*
 * bn_sampler_sample_candidates against bn_sampler_sample: given the top n of
 * the vocabulary (as bn_engine_eval_topk returns them), it must pick exactly
 * the token bn_sampler_sample picks on the full logits with top_k = n and the
 * same seed, step after step (so the generators stay aligned too), for every
 * combination of top-p, min-p and temperature, with ties, with -inf in the
 * vocabulary, and when the list holds the whole vocabulary. Also: the
 * params' own top_k below n cuts the list further, as it would the logits;
 * the list may come in any order; NaN and +inf are treated alike.
 */
#include <float.h>
#include <stdbool.h>
#include <stdint.h>

#include "sampler.h"
#include "test_util.h"

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

struct ent {
    float v;
    int32_t id;
};

static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Logits like a model's (a spread of a few nats) on a fine grid, so ties
 * happen but are not everywhere; n_ninf of them -inf. */
static void fill(float *l, uint32_t V, uint32_t n_ninf)
{
    for (uint32_t i = 0; i < V; i++) l[i] = (float)((int)(rnd() % 2048) - 1024) / 128.0f;
    for (uint32_t j = 0; j < n_ninf; j++) l[rnd() % V] = -INFINITY;
}

/* The top n of l (value descending, id ascending), optionally shuffled. */
static void top_n(const float *l, uint32_t V, uint32_t n, bool shuffle, int32_t *ids, float *vals)
{
    struct ent *e = malloc((size_t)V * sizeof *e);
    for (uint32_t i = 0; i < V; i++) e[i] = (struct ent){l[i], (int32_t)i};
    qsort(e, V, sizeof *e, ent_cmp);
    if (shuffle)
        for (uint32_t j = n; j > 1; j--) {
            uint32_t r = rnd() % j;
            struct ent t = e[j - 1];
            e[j - 1] = e[r];
            e[r] = t;
        }
    for (uint32_t j = 0; j < n; j++) {
        ids[j] = e[j].id;
        vals[j] = e[j].v;
    }
    free(e);
}

/* steps draws of both samplers on fresh logits each step; returns how many
 * tokens agreed. p.top_k is the candidates sampler's; the full sampler gets
 * full_top_k. */
static int run_pair(struct bn_sampler_params p, int32_t full_top_k, uint32_t V, uint32_t n, uint32_t n_ninf,
                    bool shuffle, int steps)
{
    char err[256];
    bn_sampler *full = NULL, *cand = NULL;
    struct bn_sampler_params pf = p;
    pf.top_k = full_top_k;
    if (bn_sampler_create(&pf, V, &full, err, sizeof err) != BN_OK ||
        bn_sampler_create(&p, V, &cand, err, sizeof err) != BN_OK) {
        CHECKF(0, "sampler_create: %s", err);
        bn_sampler_destroy(full);
        return -1;
    }
    float *l = malloc((size_t)V * sizeof *l), *vals = malloc((size_t)n * sizeof *vals);
    int32_t *ids = malloc((size_t)n * sizeof *ids);
    int same = 0;
    for (int s = 0; s < steps; s++) {
        fill(l, V, n_ninf);
        top_n(l, V, n, shuffle, ids, vals);
        int32_t a = bn_sampler_sample(full, l);
        int32_t b = bn_sampler_sample_candidates(cand, ids, vals, n);
        same += a == b;
        bn_sampler_accept(full, a);
        bn_sampler_accept(cand, b);
    }
    free(ids);
    free(vals);
    free(l);
    bn_sampler_destroy(cand);
    bn_sampler_destroy(full);
    return same;
}

static void test_equivalence(void)
{
    static const float temps[] = {0.0f, 0.3f, 0.8f, 1.5f};
    static const float top_ps[] = {1.0f, 0.95f, 0.5f};
    static const float min_ps[] = {0.0f, 0.05f, 0.3f};
    static const uint32_t ns[] = {1, 2, 40, 256};
    const uint32_t V = 1000;
    const int steps = 40;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++)
            for (size_t c = 0; c < 3; c++)
                for (size_t d = 0; d < 4; d++) {
                    struct bn_sampler_params p = bn_sampler_default_params();
                    p.temp = temps[a];
                    p.top_p = top_ps[b];
                    p.min_p = min_ps[c];
                    p.seed = 1000 + a * 100 + b * 10 + c + d;
                    p.top_k = (int32_t)ns[d];
                    int same = run_pair(p, p.top_k, V, ns[d], 0, false, steps);
                    CHECKF(same == steps, "temp %.1f top_p %.2f min_p %.2f n %u: %d of %d tokens equal",
                           (double)p.temp, (double)p.top_p, (double)p.min_p, ns[d], same, steps);
                }
}

static void test_edges(void)
{
    struct bn_sampler_params p = bn_sampler_default_params();
    p.seed = 5;
    int same;
    /* The list holds the whole vocabulary (n = n_vocab): bn_sampler_sample
     * skips top-k and sums in vocabulary order. */
    for (int v = 0; v < 3; v++) {
        p.top_p = v == 0 ? 1.0f : 0.9f;
        p.min_p = v == 2 ? 0.0f : 0.05f;
        p.top_k = 300;
        same = run_pair(p, 300, 300, 300, 0, false, 50);
        CHECKF(same == 50, "n = n_vocab (top_p %.1f min_p %.2f): %d of 50", (double)p.top_p, (double)p.min_p, same);
        /* top_k beyond the vocabulary, as --top-k 1000 on a small model. */
        p.top_k = 1000;
        same = run_pair(p, 1000, 300, 300, 0, false, 50);
        CHECKF(same == 50, "top_k > n_vocab: %d of 50", same);
    }
    /* Most of the vocabulary -inf: fewer finite logits than n. */
    p.top_p = 0.9f;
    p.min_p = 0.05f;
    p.top_k = 40;
    same = run_pair(p, 40, 64, 40, 80, false, 50);
    CHECKF(same == 50, "fewer finite logits than n: %d of 50", same);
    /* The params' top_k below n cuts the list as it cuts the logits. */
    p.top_k = 10;
    same = run_pair(p, 10, 1000, 40, 0, false, 50);
    CHECKF(same == 50, "params top_k 10 < n 40: %d of 50", same);
    /* Any order of the list. */
    p.top_k = 40;
    same = run_pair(p, 40, 1000, 40, 0, true, 50);
    CHECKF(same == 50, "shuffled candidates: %d of 50", same);
    /* NaN and +inf in the list are sanitized as in bn_sampler_sample. */
    {
        char err[256];
        bn_sampler *a = NULL, *b = NULL;
        p.top_k = 3;
        CHECK(bn_sampler_create(&p, 8, &a, err, sizeof err) == BN_OK, "create");
        CHECK(bn_sampler_create(&p, 8, &b, err, sizeof err) == BN_OK, "create");
        if (a && b) {
            for (int s = 0; s < 20; s++) {
                float l[8] = {1.0f, NAN, INFINITY, 2.0f, -INFINITY, 0.5f, INFINITY, NAN};
                int32_t ids[3] = {2, 6, 3};
                float vals[3] = {INFINITY, INFINITY, 2.0f};
                int32_t x = bn_sampler_sample(a, l), y = bn_sampler_sample_candidates(b, ids, vals, 3);
                CHECKF(x == y, "inf candidates: %d vs %d", x, y);
            }
        }
        bn_sampler_destroy(a);
        bn_sampler_destroy(b);
    }
}

int main(void)
{
    test_equivalence();
    test_edges();
    return test_report("test_sampler_candidates");
}
