/*
 * model.h - a BitNet b1.58 model bound to the tensors of a GGUF file.
 *
 *     struct bn_model *m;
 *     if (bn_model_open("ggml-model-i2_s.gguf", &m, err, sizeof err) != BN_OK) ...
 *     ... m->hp.n_layer, m->layers[il].wq.w->data ...
 *     bn_model_close(m);
 *
 * bn_model_open reads the hyperparameters of the supported architectures,
 * binds every tensor by name, and checks each tensor's type and shape against
 * the architecture before anything else touches it. Weights are not copied:
 * tensor data pointers point into the read-only mmap of the file and stay
 * valid until bn_model_close(). Backends read the struct; nobody writes it.
 *
 * Supported (DESIGN.md section 4):
 *   bitnet-b1.58, bitnet-25  relu(gate)^2 * up, sub-norms, NEOX rope, tied head
 *   bitnet                   silu(gate) * up, sub-norms, NEOX rope, tied head,
 *                            optional per-tensor "<name>.scale" F32 tensors
 *   llama                    silu(gate) * up, NORM rope, output.weight or tied
 * Ternary weights: I2_S, TQ1_0, TQ2_0 (one type per tensor; types may mix).
 * Embedding / head: F32, F16, BF16, Q8_0, Q6_K. Norms: F32.
 */
#ifndef BN_MODEL_H
#define BN_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "status.h"
#include "tensor_types.h"

enum bn_arch { BN_ARCH_BITNET_B158, BN_ARCH_BITNET_25, BN_ARCH_BITNET, BN_ARCH_LLAMA };
enum bn_ffn_act { BN_ACT_RELU2, BN_ACT_SILU };
enum bn_rope_kind { BN_ROPE_NEOX, BN_ROPE_NORM };

struct bn_hparams {
    enum bn_arch arch;
    const char *arch_name;   /* "bitnet-b1.58", ... (static string)              */
    uint32_t n_vocab;
    uint32_t n_ctx_train;    /* <arch>.context_length                           */
    uint32_t n_embd;
    uint32_t n_layer;
    uint32_t n_ff;
    uint32_t n_head;
    uint32_t n_head_kv;
    uint32_t head_dim;       /* n_embd / n_head unless the file says otherwise  */
    uint32_t n_rot;          /* rope.dimension_count (<= head_dim)              */
    float rms_eps;           /* attention.layer_norm_rms_epsilon                */
    float rope_base;         /* rope.freq_base                                  */
    enum bn_ffn_act ffn_act;
    enum bn_rope_kind rope_kind;
    bool has_sub_norms;
    bool tied_head;          /* head reads token_embd                           */
    uint32_t file_type;      /* general.file_type, 0 if absent                  */
};

/* A view of one tensor in the file. ne[0] is the row length (the K of a
 * matmul); ne[1] the number of rows. */
struct bn_tensor {
    const char *name;        /* NUL-terminated copy, owned by the model          */
    uint32_t type;           /* enum bn_type                                     */
    uint32_t n_dims;
    int64_t ne[4];
    const void *data;        /* into the mmap                                    */
    size_t nbytes;
    uint32_t index;          /* position in bn_model.tensors (backend handle key) */
};

/* A ternary linear layer y = scale * (W x). */
struct bn_linear {
    const struct bn_tensor *w; /* [K = ne0, N = ne1], ternary type               */
    float scale;               /* from "<name>.scale" (bitnet), else 1.0         */
};

struct bn_layer {
    const struct bn_tensor *attn_norm;     /* [n_embd] F32                          */
    struct bn_linear wq;                   /* [n_embd, n_head * head_dim]           */
    struct bn_linear wk;                   /* [n_embd, n_head_kv * head_dim]        */
    struct bn_linear wv;                   /* [n_embd, n_head_kv * head_dim]        */
    const struct bn_tensor *attn_sub_norm; /* [n_head * head_dim], NULL for llama   */
    struct bn_linear wo;                   /* [n_head * head_dim, n_embd]           */
    const struct bn_tensor *ffn_norm;      /* [n_embd]                              */
    struct bn_linear w_gate;               /* [n_embd, n_ff]                        */
    struct bn_linear w_up;                 /* [n_embd, n_ff]                        */
    const struct bn_tensor *ffn_sub_norm;  /* [n_ff], NULL for llama                */
    struct bn_linear w_down;               /* [n_ff, n_embd]                        */
};

struct bn_model {
    struct bn_hparams hp;
    bn_gguf *gguf;                      /* owned; the mmap the tensors point into */
    struct bn_tensor *tensors;          /* every tensor of the file               */
    uint32_t n_tensors;
    const struct bn_tensor *tok_embd;   /* [n_embd, n_vocab]                      */
    const struct bn_tensor *output_norm;/* [n_embd]                               */
    const struct bn_tensor *output;     /* [n_embd, n_vocab]; == tok_embd if tied */
    const struct bn_tensor *rope_freqs; /* [n_rot/2] F32 or NULL (llama 3.1 style) */
    struct bn_layer *layers;            /* [n_layer]                              */
    uint64_t n_params_ternary;          /* weights in ternary tensors             */
};

/* Opens and validates a model file. Status: BN_ERR_IO (cannot open),
 * BN_ERR_MODEL (bad or unsupported file: names the field, the arch or the
 * type), BN_ERR_NOMEM. */
enum bn_status bn_model_open(const char *path, struct bn_model **out, char *err, size_t errlen);

/* Same over an already opened GGUF; takes ownership of g even on failure. */
enum bn_status bn_model_from_gguf(bn_gguf *g, struct bn_model **out, char *err, size_t errlen);

void bn_model_close(struct bn_model *m); /* accepts NULL */

/* Short human-readable summary for `info` (one line per fact), into buf. */
void bn_model_describe(const struct bn_model *m, char *buf, size_t len);

#endif
