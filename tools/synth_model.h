/*
 * synth_model.h - writes valid GGUF models of any supported architecture,
 * weight type and shape from a seed, with a small byte-level tokenizer
 * section. Used by tests, benchmarks and the default demo model.
 *
 * Determinism contract (tests rely on it):
 *  - The same params give the same bytes.
 *  - The trits of every ternary tensor, the norm weights and the embedding
 *    values depend only on the seed and the shapes, never on wtype or
 *    embd_type: the same model written as I2_S, TQ1_0 and TQ2_0 holds the
 *    same ternary matrices.
 *  - Scales: each ternary tensor has a per-tensor scale drawn from the seed.
 *    I2_S stores it as its float scale. TQ1_0/TQ2_0 store d_b = scale *
 *    (1 + jitter_b) per 256-block, jitter_b uniform in [-block_jitter,
 *    +block_jitter] rounded to fp16. With exact_scales the per-tensor scale is
 *    a power of two (exactly representable in fp16 and float) and every block
 *    uses d_b = scale, so all three formats describe the same real matrix.
 */
#ifndef BN_SYNTH_MODEL_H
#define BN_SYNTH_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "../runtime/status.h"
#include "gguf_writer.h"

struct bn_synth_params {
    const char *arch;      /* "bitnet-b1.58" (default), "bitnet-25", "bitnet", "llama" */
    uint32_t wtype;        /* BN_TYPE_I2_S (default), BN_TYPE_TQ1_0, BN_TYPE_TQ2_0      */
    uint32_t embd_type;    /* BN_TYPE_F16 (default), F32, BF16, Q8_0                   */
    uint32_t n_embd, n_layer, n_head, n_head_kv, n_ff, n_vocab, n_ctx;
    float rms_eps;         /* 1e-5 */
    float rope_base;       /* 500000 */
    uint64_t seed;
    bool exact_scales;     /* see above */
    float block_jitter;    /* 0.25 */
    float embd_gain;       /* standard deviation of embedding values, 1.0; the
                              tied head's logits scale with it */
    bool scale_tensors;    /* bitnet: add F32 "<w>.scale" tensors of one element */
    bool output_tensor;    /* add a separate output.weight (llama) */
    const char *name;      /* general.name; NULL: made from the shape */
};

/* Defaults: a tiny bitnet-b1.58 I2_S model (n_embd 256, 2 layers, 4/2 heads,
 * n_ff 512, n_vocab 300, n_ctx 256, seed 1). */
void bn_synth_default_params(struct bn_synth_params *p);
/* The real microsoft/bitnet-b1.58-2B-4T shapes: n_embd 2560, 30 layers,
 * 20/5 heads, n_ff 6912, n_vocab 128256, n_ctx 4096. */
void bn_synth_2b4t_params(struct bn_synth_params *p);

/* Builds the model into a writer (caller destroys it), so tests can add or
 * change fields before writing. BN_ERR_USAGE for impossible shapes (e.g.
 * n_embd not a multiple of the weight type's block). */
enum bn_status bn_synth_build(const struct bn_synth_params *p, bn_gguf_writer **out, char *err, size_t errlen);

/* Builds and writes a file atomically. */
enum bn_status bn_synth_write(const struct bn_synth_params *p, const char *path, char *err, size_t errlen);

#endif
