/*
 * sampler.c - repetition penalty, top-k, top-p, min-p, temperature and a
 * seeded draw, in the order llama.cpp applies them (see sampler.h).
 *
 * Design notes:
 *  - Reproducibility: the generator (xoshiro256** seeded by splitmix64) and
 *    the exponential (det_exp) use only IEEE basic operations, so the same
 *    seed, parameters and logits give the same token on every machine with
 *    IEEE doubles (the build uses -ffp-contract=off so nothing gets fused).
 *    libm's exp() is not used because its last bit may differ between
 *    platforms, which could move a draw that falls on a boundary.
 *  - Every non-greedy sample consumes exactly one draw from the generator,
 *    whatever the filters keep, so the stream stays aligned across steps;
 *    greedy sampling consumes none.
 *  - No allocation in bn_sampler_sample: the scratch arrays are sized by
 *    n_vocab at create. Only bn_sampler_accept may grow the history buffer.
 *  - Candidates are ordered by larger logit, then lower id. This total order
 *    breaks top-k ties towards lower ids and makes every prefix well defined.
 *  - NaN logits count as -inf, +inf as FLT_MAX (so softmax stays finite);
 *    -inf tokens are never drawn. When every logit is -inf the result is 0,
 *    the lowest id among the (all equal) maxima.
 */
#include "sampler.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The history for the repetition penalty is a ring buffer of at most this
 * many tokens: repeat_last_n = -1 ("all") and larger repeat_last_n values are
 * capped here, which is beyond any context length we run (and 4 MiB). */
#define BN_SAMPLER_HISTORY_MAX ((size_t)1 << 20)
/* First allocation of the history; it doubles in accept up to the cap. */
#define BN_SAMPLER_HISTORY_INIT ((size_t)4096)

struct bn_cand {
    float logit;
    int32_t id;
};

struct bn_sampler {
    struct bn_sampler_params p;
    uint32_t n_vocab;
    uint64_t rng[4];        /* xoshiro256** state                           */
    struct bn_cand *heap;   /* n_vocab: selection heap / sorted candidates  */
    struct bn_cand *kept;   /* n_vocab: candidates that survive the filters */
    double *weight;         /* n_vocab: unnormalized probability of kept[i] */
    unsigned char *seen;    /* n_vocab: all 0 between calls; penalize once  */
    int32_t *hist;          /* ring of accepted tokens                      */
    size_t hist_cap;        /* allocated entries                            */
    size_t hist_max;        /* entries wanted (repeat_last_n, capped)       */
    size_t hist_len;        /* entries filled                               */
    size_t hist_head;       /* oldest entry once the ring is full           */
};

struct bn_sampler_params bn_sampler_default_params(void)
{
    struct bn_sampler_params p;
    p.temp = 0.8f;
    p.top_k = 40;
    p.top_p = 0.95f;
    p.min_p = 0.05f;
    p.repeat_penalty = 1.0f;
    p.repeat_last_n = 64;
    p.seed = 0;
    return p;
}

/* ---- generator ---------------------------------------------------------- */

/* splitmix64 step: spreads any seed (0 included) over the 256-bit state, as
 * xoshiro's authors recommend, so the state is never all zero. */
static uint64_t splitmix64_next(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

static uint64_t rotl64(uint64_t v, unsigned k)
{
    return (v << k) | (v >> (64u - k));
}

static void rng_seed(uint64_t st[4], uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) st[i] = splitmix64_next(&x);
}

/* xoshiro256**: 64 output bits per step. */
static uint64_t rng_next(uint64_t st[4])
{
    uint64_t out = rotl64(st[1] * 5u, 7) * 9u;
    uint64_t t = st[1] << 17;
    st[2] ^= st[0];
    st[3] ^= st[1];
    st[1] ^= st[2];
    st[0] ^= st[3];
    st[2] ^= t;
    st[3] = rotl64(st[3], 45);
    return out;
}

/* Uniform double in [0, 1): the top 53 bits, each value exactly representable. */
static double rng_uniform(uint64_t st[4])
{
    return (double)(rng_next(st) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- deterministic exp -------------------------------------------------- */

/* 2^(-j/16), j = 0..15, correctly rounded. */
static const double exp2_neg16th[16] = {
    0x1.0000000000000p+0, 0x1.ea4afa2a490dap-1, 0x1.d5818dcfba487p-1, 0x1.c199bdd85529cp-1,
    0x1.ae89f995ad3adp-1, 0x1.9c49182a3f090p-1, 0x1.8ace5422aa0dbp-1, 0x1.7a11473eb0187p-1,
    0x1.6a09e667f3bcdp-1, 0x1.5ab07dd485429p-1, 0x1.4bfdad5362a27p-1, 0x1.3dea64c123422p-1,
    0x1.306fe0a31b715p-1, 0x1.2387a6e756238p-1, 0x1.172b83c7d517bp-1, 0x1.0b5586cf9890fp-1,
};

/* e^x for x <= 0 from IEEE basic operations only (see the note at the top),
 * to about 1e-15 relative. x = -q*ln2/16 + r with |r| <= ln2/32, so
 * e^x = 2^-(q/16) * 2^-(q%16 / 16) * e^r: a power of two built from its bits,
 * a table entry, and the Taylor series of e^r to r^7 (truncation below
 * 1e-18). Below -708 the result would be subnormal; 0 is returned, which is
 * nothing next to the weight 1 that the maximum always has. */
static double det_exp(double x)
{
    static const double sixteen_over_ln2 = 0x1.71547652b82fep+4;
    /* ln2/16 split so that q * hi is exact (hi has 32 significant bits). */
    static const double ln2_16_hi = 0x1.62e42feep-5;
    static const double ln2_16_lo = 0x1.a39ef35793c76p-37;

    BN_ASSERT(!(x > 0.0)); /* callers pass (logit - max) / temp */
    if (!(x > -708.0)) return 0.0;
    int q = (int)(0.5 - x * sixteen_over_ln2); /* round(-x * 16/ln2), 0..16343 */
    double qd = (double)q;
    double r = (x + qd * ln2_16_hi) + qd * ln2_16_lo;
    double p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    /* q >> 4 <= 1021, so 2^-(q >> 4) is a normal double. */
    uint64_t bits = (uint64_t)(1023 - (q >> 4)) << 52;
    double scale;
    memcpy(&scale, &bits, sizeof scale);
    return exp2_neg16th[q & 15] * p * scale;
}

/* ---- candidate heaps ---------------------------------------------------- */

/* The sampling order: larger logit first, then lower id. */
static bool cand_before(struct bn_cand a, struct bn_cand b)
{
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
}

/* With best_on_top the root is the first candidate in sampling order (used
 * to pop candidates in order); otherwise the root is the last one (used by
 * top-k to evict the worst of the k kept so far). */
static bool heap_above(struct bn_cand a, struct bn_cand b, bool best_on_top)
{
    return best_on_top ? cand_before(a, b) : cand_before(b, a);
}

static void sift_down(struct bn_cand *h, size_t n, size_t i, bool best_on_top)
{
    struct bn_cand x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_above(h[c + 1], h[c], best_on_top)) c++;
        if (!heap_above(h[c], x, best_on_top)) break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static void heapify(struct bn_cand *h, size_t n, bool best_on_top)
{
    for (size_t i = n / 2; i-- > 0;) sift_down(h, n, i, best_on_top);
}

/* The k best candidates (logit > -inf) into h[0..ret), sorted best first.
 * A heap of the k best so far with the worst at the root: most logits lose
 * against the root in one comparison, so this is about one pass over the
 * logits for the usual small k, and O(n log k) at worst. */
static size_t select_top_k(const float *logits, uint32_t n, size_t k, struct bn_cand *h)
{
    size_t len = 0;
    uint32_t i = 0;
    for (; i < n && len < k; i++)
        if (logits[i] > -INFINITY) h[len++] = (struct bn_cand){logits[i], (int32_t)i};
    heapify(h, len, false);
    for (; i < n; i++) {
        struct bn_cand c = {logits[i], (int32_t)i};
        if (c.logit > -INFINITY && cand_before(c, h[0])) {
            h[0] = c;
            sift_down(h, len, 0, false);
        }
    }
    /* Heap sort: the worst goes to the end each round, so h ends best first. */
    for (size_t end = len; end > 1; end--) {
        struct bn_cand t = h[0];
        h[0] = h[end - 1];
        h[end - 1] = t;
        sift_down(h, end - 1, 0, false);
    }
    return len;
}

/* ---- repetition penalty ------------------------------------------------- */

/* Each distinct token of the history is penalized once, however often it
 * occurs: positive logits are divided by the penalty, others multiplied, so
 * a penalty > 1 always makes the token less likely. */
static void apply_penalty(bn_sampler *s, float *logits)
{
    const float pen = s->p.repeat_penalty;
    if (s->hist_len == 0 || pen == 1.0f) return;
    for (size_t j = 0; j < s->hist_len; j++) {
        int32_t t = s->hist[j];
        if (s->seen[t]) continue;
        s->seen[t] = 1;
        float x = logits[t];
        logits[t] = x > 0.0f ? x / pen : x * pen;
    }
    for (size_t j = 0; j < s->hist_len; j++) s->seen[s->hist[j]] = 0;
}

/* ---- API ---------------------------------------------------------------- */

enum bn_status bn_sampler_create(const struct bn_sampler_params *p, uint32_t n_vocab, bn_sampler **out,
                                 char *err, size_t errlen)
{
    if (out == NULL || p == NULL)
        return bn_errf(err, errlen, BN_ERR_USAGE, "bn_sampler_create: params and out must not be NULL");
    *out = NULL;
    /* Token ids are int32_t. The !(in range) forms below also reject NaN. */
    if (n_vocab < 1 || n_vocab > (uint32_t)INT32_MAX)
        return bn_errf(err, errlen, BN_ERR_USAGE, "sampler: n_vocab = %lu, expected 1 to %ld",
                       (unsigned long)n_vocab, (long)INT32_MAX);
    if (!isfinite(p->temp))
        return bn_errf(err, errlen, BN_ERR_USAGE,
                       "sampler: temp = %g, expected a finite number (<= 0 means greedy)", (double)p->temp);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return bn_errf(err, errlen, BN_ERR_USAGE, "sampler: top_p = %g, expected a value in [0, 1]",
                       (double)p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return bn_errf(err, errlen, BN_ERR_USAGE, "sampler: min_p = %g, expected a value in [0, 1]",
                       (double)p->min_p);
    if (!(p->repeat_penalty > 0.0f && isfinite(p->repeat_penalty)))
        return bn_errf(err, errlen, BN_ERR_USAGE,
                       "sampler: repeat_penalty = %g, expected a finite value > 0 (1 is off)",
                       (double)p->repeat_penalty);
    if (p->repeat_last_n < -1)
        return bn_errf(err, errlen, BN_ERR_USAGE,
                       "sampler: repeat_last_n = %ld, expected >= -1 (0 off, -1 all)", (long)p->repeat_last_n);

    bn_sampler *s = calloc(1, sizeof *s);
    if (s == NULL) return bn_errf(err, errlen, BN_ERR_NOMEM, "sampler: out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    if (p->repeat_last_n == -1 || (size_t)p->repeat_last_n > BN_SAMPLER_HISTORY_MAX)
        s->hist_max = BN_SAMPLER_HISTORY_MAX;
    else
        s->hist_max = (size_t)p->repeat_last_n;
    s->hist_cap = s->hist_max < BN_SAMPLER_HISTORY_INIT ? s->hist_max : BN_SAMPLER_HISTORY_INIT;

    s->heap = calloc(n_vocab, sizeof *s->heap);
    s->kept = calloc(n_vocab, sizeof *s->kept);
    s->weight = calloc(n_vocab, sizeof *s->weight);
    s->seen = calloc(n_vocab, sizeof *s->seen);
    if (s->hist_cap > 0) s->hist = calloc(s->hist_cap, sizeof *s->hist);
    if (!s->heap || !s->kept || !s->weight || !s->seen || (s->hist_cap > 0 && !s->hist)) {
        bn_sampler_destroy(s);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "sampler: out of memory for a vocabulary of %lu tokens",
                       (unsigned long)n_vocab);
    }
    rng_seed(s->rng, p->seed);
    *out = s;
    return BN_OK;
}

void bn_sampler_destroy(bn_sampler *s)
{
    if (s == NULL) return;
    free(s->heap);
    free(s->kept);
    free(s->weight);
    free(s->seen);
    free(s->hist);
    free(s);
}

/* Clears the history and restarts the generator from the seed, so a new
 * generation with the same prompt repeats the previous one. */
void bn_sampler_reset(bn_sampler *s)
{
    BN_ASSERT(s != NULL);
    s->hist_len = 0;
    s->hist_head = 0;
    rng_seed(s->rng, s->p.seed);
}

/* Tokens outside [0, n_vocab) have no logit to penalize and are ignored. */
void bn_sampler_accept(bn_sampler *s, int32_t token)
{
    BN_ASSERT(s != NULL);
    if (token < 0 || (uint32_t)token >= s->n_vocab || s->hist_max == 0) return;
    if (s->hist_len == s->hist_cap && s->hist_cap < s->hist_max) {
        /* Grow towards hist_max. Until it is reached the ring has not wrapped
         * (head is 0), so realloc keeps the order. If memory is short the
         * ring simply stays at its present size. */
        size_t cap = s->hist_cap * 2 < s->hist_max ? s->hist_cap * 2 : s->hist_max;
        int32_t *h = realloc(s->hist, cap * sizeof *h);
        if (h != NULL) {
            s->hist = h;
            s->hist_cap = cap;
        } else {
            s->hist_max = s->hist_cap;
        }
    }
    if (s->hist_len < s->hist_cap) {
        s->hist[s->hist_len++] = token;
    } else { /* full: the newest replaces the oldest */
        s->hist[s->hist_head] = token;
        s->hist_head = (s->hist_head + 1) % s->hist_cap;
    }
}

/* ---- filters ------------------------------------------------------------ */

/* Top-p and min-p each keep a prefix of the candidates in sampling order, so
 * one scan applies both: candidates are offered in order with
 * e = exp(logit - max), their probability relative to the maximum (at
 * temperature 1, as in llama.cpp where temperature comes after the filters).
 * Min-p keeps e >= min_p; top-p stops once the kept mass reaches
 * top_p * (mass of all the candidates). */
struct prefix_scan {
    bool use_p, use_min;
    double target; /* top_p * total mass */
    double min_p;
    double cum; /* mass kept so far */
    size_t n_kept;
};

/* Returns false once the prefix is complete. */
static bool scan_offer(struct prefix_scan *ps, struct bn_cand c, double e, struct bn_cand *kept)
{
    if (ps->use_min && e < ps->min_p) return false;
    kept[ps->n_kept++] = c;
    ps->cum += e;
    return !(ps->use_p && ps->cum >= ps->target);
}

/* Top-p without top-k buckets the candidates by distance below the maximum,
 * in steps of 1/BN_BINS_PER_NAT, the last bin taking everything further. */
#define BN_BINS 256
#define BN_BINS_PER_NAT 4.0

/* Monotone in the logit (IEEE rounding is monotone), so every set
 * {bin < B} is a prefix of the sampling order. */
static size_t bin_of(float logit, double m)
{
    double d = (m - (double)logit) * BN_BINS_PER_NAT;
    return d < (double)(BN_BINS - 1) ? (size_t)d : (size_t)(BN_BINS - 1);
}

/* Top-p (and min-p) over all candidates. Sorting 128k logits per token would
 * dominate, so: one pass sums the mass per bin, the first bins that hold the
 * top-p mass (and, with min-p, no further than min-p can reach) form a
 * prefix S of the order, and only S is heapified and popped in order. If S
 * runs out before the scan completes (the per-bin sums round differently
 * from the in-order sum, or min-p's bound was loose) the rest, all of which
 * comes after S, is heapified and popped next, so the result is always that
 * of a full sort. */
static size_t filter_top_p(bn_sampler *s, const float *logits, double m, struct prefix_scan *ps)
{
    const uint32_t n = s->n_vocab;
    double mass[BN_BINS] = {0};
    double z = 0.0;
    for (uint32_t i = 0; i < n; i++) {
        if (!(logits[i] > -INFINITY)) continue;
        double e = det_exp((double)logits[i] - m);
        z += e;
        mass[bin_of(logits[i], m)] += e;
    }
    ps->target = (double)s->p.top_p * z;

    size_t nb = BN_BINS;
    double acc = 0.0;
    for (size_t b = 0; b < BN_BINS; b++) {
        acc += mass[b];
        if (acc >= ps->target) {
            nb = b + 1;
            break;
        }
    }
    if (ps->use_min) {
        /* e < min_p for logit - max < log(min_p) - 1, with room to spare for
         * rounding in log and det_exp; this only sizes S. */
        double reach = (1.0 - log(ps->min_p)) * BN_BINS_PER_NAT + 1.0;
        if (reach < (double)nb) nb = (size_t)reach;
    }

    bool more = true;
    for (int stage = 0; stage < 2 && more; stage++) {
        size_t len = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!(logits[i] > -INFINITY)) continue;
            if ((bin_of(logits[i], m) < nb) != (stage == 0)) continue;
            s->heap[len++] = (struct bn_cand){logits[i], (int32_t)i};
        }
        heapify(s->heap, len, true);
        while (len > 0 && more) {
            struct bn_cand c = s->heap[0];
            s->heap[0] = s->heap[--len];
            sift_down(s->heap, len, 0, true);
            more = scan_offer(ps, c, det_exp((double)c.logit - m), s->kept);
        }
    }
    return ps->n_kept;
}

/* Temperature and the draw over the kept candidates (in the order they were
 * kept), m the maximum logit and u the uniform of this sample. Shared by
 * bn_sampler_sample and bn_sampler_sample_candidates, which must agree. */
static int32_t draw_kept(bn_sampler *s, const struct bn_cand *kept, size_t n_kept, double m, double u)
{
    /* Temperature and the draw: weights exp((logit - max) / temp), then the
     * first kept token whose running sum exceeds u * total. */
    const double inv_temp = 1.0 / (double)s->p.temp;
    double total = 0.0;
    for (size_t j = 0; j < n_kept; j++) {
        s->weight[j] = det_exp(((double)kept[j].logit - m) * inv_temp);
        total += s->weight[j];
    }
    const double t = u * total;
    double cum = 0.0;
    size_t last = 0;
    for (size_t j = 0; j < n_kept; j++) {
        if (s->weight[j] <= 0.0) continue;
        cum += s->weight[j];
        if (t < cum) return kept[j].id;
        last = j;
    }
    /* Rounding left t at or past the final sum: the last token with weight. */
    return kept[last].id;
}

int32_t bn_sampler_sample(bn_sampler *s, float *logits)
{
    BN_ASSERT(s != NULL && logits != NULL);
    const uint32_t n = s->n_vocab;
    apply_penalty(s, logits);

    /* Sanitize in place, find the maximum (first one wins a tie) and count
     * the candidates (finite logits after sanitizing). */
    float maxv = -INFINITY;
    uint32_t argmax = 0;
    size_t n_cand = 0;
    for (uint32_t i = 0; i < n; i++) {
        float x = logits[i];
        if (isnan(x))
            x = -INFINITY;
        else if (x > FLT_MAX)
            x = FLT_MAX;
        logits[i] = x;
        if (x > maxv) {
            maxv = x;
            argmax = i;
        }
        if (x > -INFINITY) n_cand++;
    }
    if (!(s->p.temp > 0.0f)) return (int32_t)argmax;

    const double u = rng_uniform(s->rng);
    if (n_cand <= 1) return (int32_t)argmax; /* 0 when nothing is finite */

    const double m = (double)maxv;
    struct prefix_scan ps = {0};
    ps.use_p = s->p.top_p < 1.0f;
    ps.use_min = s->p.min_p > 0.0f;
    ps.min_p = (double)s->p.min_p;
    struct bn_cand *kept = s->kept;
    size_t n_kept;

    if (s->p.top_k > 0 && (size_t)s->p.top_k < n_cand) {
        /* Top-k, sorted; top-p's mass is that of the k (renormalized). */
        size_t k = select_top_k(logits, n, (size_t)s->p.top_k, s->heap);
        double z = 0.0;
        for (size_t j = 0; j < k; j++) {
            s->weight[j] = det_exp((double)s->heap[j].logit - m);
            z += s->weight[j];
        }
        ps.target = (double)s->p.top_p * z;
        for (size_t j = 0; j < k; j++)
            if (!scan_offer(&ps, s->heap[j], s->weight[j], kept)) break;
        n_kept = ps.n_kept;
    } else if (ps.use_p) {
        n_kept = filter_top_p(s, logits, m, &ps);
    } else {
        /* Min-p alone, or no filter: a threshold, no order needed. Far below
         * the cutoff det_exp is certainly < min_p and is skipped. */
        const double cutoff = ps.use_min ? log(ps.min_p) - 1.0 : -(double)INFINITY;
        n_kept = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!(logits[i] > -INFINITY)) continue;
            double x = (double)logits[i] - m;
            if (ps.use_min && (x < cutoff || det_exp(x) < ps.min_p)) continue;
            kept[n_kept++] = (struct bn_cand){logits[i], (int32_t)i};
        }
    }
    BN_ASSERT(n_kept >= 1); /* the maximum has e = 1 and passes every filter */
    return draw_kept(s, kept, n_kept, m, u);
}

static int cand_cmp_id(const void *a, const void *b)
{
    const int32_t x = ((const struct bn_cand *)a)->id, y = ((const struct bn_cand *)b)->id;
    return (x > y) - (x < y);
}

/* The candidates come from a top-n of the vocabulary (the GPU's topk op), so
 * each step below is the one bn_sampler_sample would take on the full logits
 * with top_k = n; the sums run in the same order, so the weights, the
 * filters and the draw are bit-identical. When the list holds every finite
 * logit of the vocabulary (fewer finite candidates than n, or n = n_vocab),
 * bn_sampler_sample skips top-k and sums in vocabulary order: that is
 * reproduced too, by visiting the candidates sorted by id. */
int32_t bn_sampler_sample_candidates(bn_sampler *s, const int32_t *ids, float *logits, uint32_t n)
{
    BN_ASSERT(s != NULL && ids != NULL && logits != NULL && n >= 1 && n <= s->n_vocab);
    struct bn_cand *h = s->heap;
    struct bn_cand best = {-INFINITY, INT32_MAX};
    size_t n_fin = 0;
    for (uint32_t j = 0; j < n; j++) {
        BN_ASSERT(ids[j] >= 0 && (uint32_t)ids[j] < s->n_vocab);
        float x = logits[j];
        if (isnan(x))
            x = -INFINITY;
        else if (x > FLT_MAX)
            x = FLT_MAX;
        logits[j] = x;
        const struct bn_cand c = {x, ids[j]};
        if (j == 0 || cand_before(c, best)) best = c;
        if (x > -INFINITY) h[n_fin++] = c;
    }
    /* The same generator steps as bn_sampler_sample: none when greedy, one
     * otherwise, drawn before the single-candidate shortcut. */
    if (!(s->p.temp > 0.0f)) return best.id;
    const double u = rng_uniform(s->rng);
    if (n_fin <= 1) return best.id;

    /* Best first, whatever order the caller's list is in. */
    heapify(h, n_fin, false);
    for (size_t end = n_fin; end > 1; end--) {
        struct bn_cand t = h[0];
        h[0] = h[end - 1];
        h[end - 1] = t;
        sift_down(h, end - 1, 0, false);
    }
    const double m = (double)best.logit;
    const bool complete = n_fin < n || n >= s->n_vocab;
    size_t k = n_fin;
    if (s->p.top_k > 0 && (size_t)s->p.top_k < n_fin) k = (size_t)s->p.top_k;

    struct prefix_scan ps = {0};
    ps.use_p = s->p.top_p < 1.0f;
    ps.use_min = s->p.min_p > 0.0f;
    ps.min_p = (double)s->p.min_p;
    struct bn_cand *kept = s->kept;
    size_t n_kept;
    if (!complete || k < n_fin) {
        /* bn_sampler_sample's top-k branch. */
        double z = 0.0;
        for (size_t j = 0; j < k; j++) {
            s->weight[j] = det_exp((double)h[j].logit - m);
            z += s->weight[j];
        }
        ps.target = (double)s->p.top_p * z;
        for (size_t j = 0; j < k; j++)
            if (!scan_offer(&ps, h[j], s->weight[j], kept)) break;
        n_kept = ps.n_kept;
    } else if (ps.use_p) {
        /* filter_top_p: the mass summed in vocabulary order, the prefix taken
         * in sampling order. */
        memcpy(kept, h, n_fin * sizeof *kept);
        qsort(kept, n_fin, sizeof *kept, cand_cmp_id);
        double z = 0.0;
        for (size_t j = 0; j < n_fin; j++) z += det_exp((double)kept[j].logit - m);
        ps.target = (double)s->p.top_p * z;
        for (size_t j = 0; j < n_fin; j++)
            if (!scan_offer(&ps, h[j], det_exp((double)h[j].logit - m), kept)) break;
        n_kept = ps.n_kept;
    } else {
        /* Min-p alone or no filter: kept in vocabulary order. */
        qsort(h, n_fin, sizeof *h, cand_cmp_id);
        const double cutoff = ps.use_min ? log(ps.min_p) - 1.0 : -(double)INFINITY;
        n_kept = 0;
        for (size_t j = 0; j < n_fin; j++) {
            double x = (double)h[j].logit - m;
            if (ps.use_min && (x < cutoff || det_exp(x) < ps.min_p)) continue;
            kept[n_kept++] = h[j];
        }
    }
    BN_ASSERT(n_kept >= 1);
    return draw_kept(s, kept, n_kept, m, u);
}
