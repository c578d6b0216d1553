/*
 * sampler.h - picks the next token from logits.
 *
 * Order of the steps (as llama.cpp applies them): repetition penalty over the
 * last repeat_last_n accepted tokens, top-k, top-p, min-p, temperature, then a
 * draw from the seeded generator. temp <= 0 is greedy: the argmax, the lowest
 * id on a tie, with no randomness (penalties still apply).
 *
 *     struct bn_sampler_params sp = bn_sampler_default_params();
 *     sp.temp = 0.8f; sp.seed = 42;
 *     bn_sampler *s; bn_sampler_create(&sp, n_vocab, &s, err, len);
 *     int32_t tok = bn_sampler_sample(s, logits);   // logits is modified
 *     bn_sampler_accept(s, tok);
 *     bn_sampler_destroy(s);
 *
 * Same seed, same parameters, same logits: same tokens, on every machine.
 */
#ifndef BN_SAMPLER_H
#define BN_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

struct bn_sampler_params {
    float temp;           /* <= 0: greedy                         default 0.8  */
    int32_t top_k;        /* <= 0: off                            default 40   */
    float top_p;          /* >= 1: off                            default 0.95 */
    float min_p;          /* <= 0: off                            default 0.05 */
    float repeat_penalty; /* 1: off                               default 1.0  */
    int32_t repeat_last_n;/* tokens looked back; 0 off, -1 = all  default 64   */
    uint64_t seed;        /*                                      default 0    */
};

typedef struct bn_sampler bn_sampler;

struct bn_sampler_params bn_sampler_default_params(void);

/* BN_ERR_USAGE with a message for out-of-range parameters (negative
 * temperature is allowed and means greedy; top_p and min_p must be in [0, 1],
 * repeat_penalty > 0, repeat_last_n >= -1). */
enum bn_status bn_sampler_create(const struct bn_sampler_params *p, uint32_t n_vocab, bn_sampler **out,
                                 char *err, size_t errlen);
void bn_sampler_destroy(bn_sampler *s); /* accepts NULL */

/* Picks a token from n_vocab logits (modified in place). */
int32_t bn_sampler_sample(bn_sampler *s, float *logits);
/* Picks a token from a pre-selected candidate list (ids[j], logits[j]),
 * j < n, 1 <= n <= n_vocab, distinct ids in any order (logits modified in
 * place): the top n of the vocabulary, as bn_engine_eval_topk returns them.
 * Applies the same top-k (when the params' top_k < n), top-p, min-p,
 * temperature and draw as bn_sampler_sample, and consumes the generator the
 * same way: with no repetition penalty active, the token equals
 * bn_sampler_sample's on the full logits with top_k = n and the same seed.
 * No repetition penalty is applied here (it needs the full logits). */
int32_t bn_sampler_sample_candidates(bn_sampler *s, const int32_t *ids, float *logits, uint32_t n);
/* Records a token of the context (prompt or generated) for the penalty. */
void bn_sampler_accept(bn_sampler *s, int32_t token);
void bn_sampler_reset(bn_sampler *s);

#endif
