/*
 * engine.h - the BitNet b1.58 forward pass over a model and a backend, with
 * its KV cache. One sequence, positions 0 .. n_ctx - 1.
 *
 *     bn_engine *e;
 *     struct bn_engine_params p = bn_engine_default_params();
 *     bn_engine_create(model, &backend, &p, &e, err, len);
 *     bn_engine_eval(e, prompt, n_prompt, false, logits, err, len);  // prefill
 *     for (;;) { tok = sample(logits); bn_engine_eval(e, &tok, 1, false, logits, err, len); }
 *     bn_engine_destroy(e);
 *
 * The engine borrows the model and the backend: both must outlive it, and the
 * backend must already hold the model's weights (upload_weights).
 */
#ifndef BN_ENGINE_H
#define BN_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"
#include "status.h"

struct bn_engine_params {
    uint32_t n_ctx;          /* KV cache length; 0 = min(model context, 4096) */
    uint32_t n_batch;        /* most tokens per forward call; longer inputs are split */
    enum bn_kv_type kv_type; /* F16 (default) or F32                           */
};

typedef struct bn_engine bn_engine;

struct bn_engine_params bn_engine_default_params(void);

enum bn_status bn_engine_create(const struct bn_model *m, struct bn_backend *be, const struct bn_engine_params *p,
                                bn_engine **out, char *err, size_t errlen);
void bn_engine_destroy(bn_engine *e); /* accepts NULL */

/* Runs n tokens at positions pos .. pos + n - 1 (pos = tokens evaluated so
 * far) and advances pos. Writes the logits of the last token (n_vocab floats)
 * to logits, or of every token (n * n_vocab floats) when all_logits; logits
 * may be NULL to compute none. Fails with BN_ERR_USAGE if the tokens would
 * pass n_ctx or a token id is out of range. */
enum bn_status bn_engine_eval(bn_engine *e, const int32_t *tokens, uint32_t n, bool all_logits, float *logits,
                              char *err, size_t errlen);

/* Greedy step: like bn_engine_eval without logits, then *token = the argmax
 * of the last token's logits (the lowest id on ties). With a backend argmax
 * op only that id comes back from the device; otherwise the logits are read
 * and the argmax taken on the host. */
enum bn_status bn_engine_eval_argmax(bn_engine *e, const int32_t *tokens, uint32_t n, int32_t *token, char *err,
                                     size_t errlen);

/* Sampling step with top-k: like bn_engine_eval without logits, then the k
 * largest logits of the last token, best first, the lower id first among
 * equal values: ids[0..k) and vals[0..k) (NaN reported as -inf, +inf as
 * FLT_MAX, as the sampler treats them). 1 <= k <= min(BN_ENGINE_TOPK_MAX,
 * n_vocab), else BN_ERR_USAGE. With a backend topk op only the 2k numbers come
 * back from the device; otherwise the logits are read and selected on the
 * host, with the same result. Feed them to bn_sampler_sample_candidates. */
#define BN_ENGINE_TOPK_MAX 256u
enum bn_status bn_engine_eval_topk(bn_engine *e, const int32_t *tokens, uint32_t n, uint32_t k, int32_t *ids,
                                   float *vals, char *err, size_t errlen);

uint32_t bn_engine_pos(const bn_engine *e);
uint32_t bn_engine_n_ctx(const bn_engine *e);
void bn_engine_reset(bn_engine *e); /* back to position 0 */

#endif
