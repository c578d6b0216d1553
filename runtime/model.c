/*
 * Model binder: hyperparameters by architecture, tensors by name, and every
 * shape and type checked against the architecture before any engine or
 * backend sees them.
 */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Caps that keep derived sizes (activations, KV cache, int32 accumulators)
 * far from overflow whatever the file says. Real models are well inside. */
#define MAX_WIDTH (1u << 22) /* n_embd, n_ff, head widths: int32 dot never overflows */
#define MAX_LAYERS 4096u
#define MAX_VOCAB (1u << 24)

struct arch_info {
    const char *name;
    enum bn_arch arch;
    enum bn_ffn_act act;
    enum bn_rope_kind rope;
    bool sub_norms;
};

static const struct arch_info archs[] = {
    {"bitnet-b1.58", BN_ARCH_BITNET_B158, BN_ACT_RELU2, BN_ROPE_NEOX, true},
    {"bitnet-25", BN_ARCH_BITNET_25, BN_ACT_RELU2, BN_ROPE_NEOX, true},
    {"bitnet", BN_ARCH_BITNET, BN_ACT_SILU, BN_ROPE_NEOX, true},
    {"llama", BN_ARCH_LLAMA, BN_ACT_SILU, BN_ROPE_NORM, false},
};

/* Shared state of one open call, so helpers can name the file in errors. */
struct binder {
    struct bn_model *m;
    const char *file;
    const char *prefix; /* architecture name, the key prefix */
    char *err;
    size_t errlen;
};

static enum bn_status get_u32_key(struct binder *b, const char *suffix, uint32_t *out, bool required)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", b->prefix, suffix);
    if (required) return bn_gguf_get_u32(b->m->gguf, key, out, b->err, b->errlen);
    return bn_gguf_get_u32_opt(b->m->gguf, key, out, NULL, b->err, b->errlen);
}

static enum bn_status get_f32_key(struct binder *b, const char *suffix, float *out, bool required)
{
    char key[128];
    snprintf(key, sizeof key, "%s.%s", b->prefix, suffix);
    enum bn_status st = required ? bn_gguf_get_f32(b->m->gguf, key, out, b->err, b->errlen)
                                 : bn_gguf_get_f32_opt(b->m->gguf, key, out, NULL, b->err, b->errlen);
    if (st == BN_OK && !isfinite(*out))
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: key '%s' is not a finite number", b->file, key);
    return st;
}

static enum bn_status read_hparams(struct binder *b)
{
    struct bn_hparams *hp = &b->m->hp;
    enum bn_status st;
    if ((st = get_u32_key(b, "embedding_length", &hp->n_embd, true)) != BN_OK) return st;
    if ((st = get_u32_key(b, "block_count", &hp->n_layer, true)) != BN_OK) return st;
    if ((st = get_u32_key(b, "feed_forward_length", &hp->n_ff, true)) != BN_OK) return st;
    if ((st = get_u32_key(b, "attention.head_count", &hp->n_head, true)) != BN_OK) return st;
    hp->n_head_kv = hp->n_head;
    if ((st = get_u32_key(b, "attention.head_count_kv", &hp->n_head_kv, false)) != BN_OK) return st;
    hp->n_ctx_train = 4096;
    if ((st = get_u32_key(b, "context_length", &hp->n_ctx_train, false)) != BN_OK) return st;
    hp->rms_eps = 1e-5f;
    if ((st = get_f32_key(b, "attention.layer_norm_rms_epsilon", &hp->rms_eps, false)) != BN_OK) return st;
    hp->rope_base = 10000.0f;
    if ((st = get_f32_key(b, "rope.freq_base", &hp->rope_base, false)) != BN_OK) return st;

    if (hp->n_embd == 0 || hp->n_embd > MAX_WIDTH)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.embedding_length is %u, expected 1..%u", b->file,
                       b->prefix, hp->n_embd, MAX_WIDTH);
    if (hp->n_layer == 0 || hp->n_layer > MAX_LAYERS)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.block_count is %u, expected 1..%u", b->file, b->prefix,
                       hp->n_layer, MAX_LAYERS);
    if (hp->n_ff == 0 || hp->n_ff > MAX_WIDTH)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.feed_forward_length is %u, expected 1..%u", b->file,
                       b->prefix, hp->n_ff, MAX_WIDTH);
    if (hp->n_head == 0 || hp->n_head > hp->n_embd)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.attention.head_count is %u, expected 1..%u", b->file,
                       b->prefix, hp->n_head, hp->n_embd);
    if (hp->n_head_kv == 0 || hp->n_head % hp->n_head_kv != 0)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: %s.attention.head_count_kv is %u, expected a divisor of head_count %u", b->file, b->prefix,
                       hp->n_head_kv, hp->n_head);
    char key[128];
    snprintf(key, sizeof key, "%s.attention.key_length", b->prefix);
    bool have_key_length = false;
    if ((st = bn_gguf_get_u32_opt(b->m->gguf, key, &hp->head_dim, &have_key_length, b->err, b->errlen)) != BN_OK)
        return st;
    if (!have_key_length) {
        if (hp->n_embd % hp->n_head != 0)
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                           "%s: %s.embedding_length %u is not a multiple of attention.head_count %u (and no "
                           "attention.key_length gives the head size)",
                           b->file, b->prefix, hp->n_embd, hp->n_head);
        hp->head_dim = hp->n_embd / hp->n_head;
    }
    const uint32_t max_head_dim = MAX_WIDTH / hp->n_head;
    if (hp->head_dim < 2 || hp->head_dim % 2 != 0 || hp->head_dim > max_head_dim)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s is %u, expected an even 2..%u (for %u heads)", b->file,
                       have_key_length ? key : "the head size embedding_length / attention.head_count", hp->head_dim,
                       max_head_dim & ~1u, hp->n_head);
    /* Values the size of keys: the only layout the attention ops know. */
    uint32_t value_length = hp->head_dim;
    if ((st = get_u32_key(b, "attention.value_length", &value_length, false)) != BN_OK) return st;
    if (value_length != hp->head_dim)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: %s.attention.value_length is %u, expected the key size %u (other value sizes are not "
                       "supported)",
                       b->file, b->prefix, value_length, hp->head_dim);
    hp->n_rot = hp->head_dim;
    if ((st = get_u32_key(b, "rope.dimension_count", &hp->n_rot, false)) != BN_OK) return st;
    if (hp->n_rot == 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.rope.dimension_count is %u, expected an even 2..%u",
                       b->file, b->prefix, hp->n_rot, hp->head_dim);
    if (!(hp->rms_eps > 0.0f))
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.attention.layer_norm_rms_epsilon is %g, expected > 0",
                       b->file, b->prefix, (double)hp->rms_eps);
    if (!(hp->rope_base > 0.0f))
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: %s.rope.freq_base is %g, expected > 0", b->file, b->prefix,
                       (double)hp->rope_base);
    if (hp->n_ctx_train == 0) hp->n_ctx_train = 4096;
    uint32_t ft = 0;
    if ((st = bn_gguf_get_u32_opt(b->m->gguf, "general.file_type", &ft, NULL, b->err, b->errlen)) != BN_OK) return st;
    hp->file_type = ft;
    return BN_OK;
}

/* Finds a tensor by name; NULL when absent. */
static const struct bn_tensor *find(struct binder *b, const char *name)
{
    int64_t i = bn_gguf_find_tensor(b->m->gguf, name);
    return i < 0 ? NULL : &b->m->tensors[i];
}

/* Checks a tensor's dims: n_dims significant dims must equal ne0 [, ne1]. */
static enum bn_status check_shape(struct binder *b, const struct bn_tensor *t, int64_t ne0, int64_t ne1)
{
    int64_t rest = 1;
    for (uint32_t d = 2; d < t->n_dims; d++) rest *= t->ne[d];
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || rest != 1) {
        if (ne1 == 1)
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld]",
                           b->file, t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)ne0);
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]",
                       b->file, t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)ne0, (long long)ne1);
    }
    return BN_OK;
}

static enum bn_status bind_vector(struct binder *b, const char *name, int64_t n, bool required,
                                  const struct bn_tensor **out)
{
    const struct bn_tensor *t = find(b, name);
    *out = t;
    if (!t) {
        if (!required) return BN_OK;
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: missing tensor '%s'", b->file, name);
    }
    if (t->type != BN_TYPE_F32)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s' has type %s, expected f32", b->file, name,
                       bn_type_name(t->type));
    return check_shape(b, t, n, 1);
}

static enum bn_status bind_table(struct binder *b, const char *name, bool required, const struct bn_tensor **out)
{
    const struct bn_hparams *hp = &b->m->hp;
    const struct bn_tensor *t = find(b, name);
    *out = t;
    if (!t) {
        if (!required) return BN_OK;
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: missing tensor '%s'", b->file, name);
    }
    switch (t->type) {
    case BN_TYPE_F32:
    case BN_TYPE_F16:
    case BN_TYPE_BF16:
    case BN_TYPE_Q8_0:
    case BN_TYPE_Q6_K: break;
    default:
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: tensor '%s' has type %s, expected f32, f16, bf16, q8_0 or q6_k", b->file, name,
                       bn_type_name(t->type));
    }
    return check_shape(b, t, hp->n_embd, hp->n_vocab);
}

static enum bn_status bind_linear(struct binder *b, int il, const char *base, int64_t k, int64_t n,
                                  struct bn_linear *out)
{
    char name[96];
    snprintf(name, sizeof name, "blk.%d.%s.weight", il, base);
    const struct bn_tensor *t = find(b, name);
    if (!t) return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: missing tensor '%s'", b->file, name);
    if (!bn_type_is_ternary(t->type))
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: tensor '%s' has type %s, expected a ternary type (i2_s, tq1_0, tq2_0)", b->file, name,
                       bn_type_name(t->type));
    enum bn_status st = check_shape(b, t, k, n);
    if (st != BN_OK) return st;
    out->w = t;
    out->scale = 1.0f;
    if (t->type == BN_TYPE_I2_S) {
        float s;
        memcpy(&s, (const uint8_t *)t->data + (size_t)k * (size_t)n / 4, sizeof s);
        if (!isfinite(s))
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s': i2_s scale is not a finite number",
                           b->file, name);
    }
    /* llama.cpp's bitnet conversions may carry the weight scale separately. */
    snprintf(name, sizeof name, "blk.%d.%s.scale", il, base);
    const struct bn_tensor *s = find(b, name);
    if (s) {
        if (s->type != BN_TYPE_F32 || s->ne[0] != 1 || s->nbytes != 4)
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s' must be one f32 value", b->file, name);
        memcpy(&out->scale, s->data, sizeof out->scale);
        if (!isfinite(out->scale))
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor '%s' is not a finite number", b->file, name);
    }
    b->m->n_params_ternary += (uint64_t)k * (uint64_t)n;
    return BN_OK;
}

static enum bn_status bind_layer(struct binder *b, int il)
{
    const struct bn_hparams *hp = &b->m->hp;
    struct bn_layer *l = &b->m->layers[il];
    const int64_t e = hp->n_embd, ff = hp->n_ff;
    const int64_t qw = (int64_t)hp->n_head * hp->head_dim, kvw = (int64_t)hp->n_head_kv * hp->head_dim;
    char name[96];
    enum bn_status st;
#define VEC(field, base, n, req)                                                      \
    snprintf(name, sizeof name, "blk.%d.%s.weight", il, base);                        \
    if ((st = bind_vector(b, name, n, req, &l->field)) != BN_OK) return st;
#define LIN(field, base, k, n) \
    if ((st = bind_linear(b, il, base, k, n, &l->field)) != BN_OK) return st;
    VEC(attn_norm, "attn_norm", e, true)
    LIN(wq, "attn_q", e, qw)
    LIN(wk, "attn_k", e, kvw)
    LIN(wv, "attn_v", e, kvw)
    LIN(wo, "attn_output", qw, e)
    VEC(ffn_norm, "ffn_norm", e, true)
    LIN(w_gate, "ffn_gate", e, ff)
    LIN(w_up, "ffn_up", e, ff)
    LIN(w_down, "ffn_down", ff, e)
    if (hp->has_sub_norms) {
        VEC(attn_sub_norm, "attn_sub_norm", qw, true)
        VEC(ffn_sub_norm, "ffn_sub_norm", ff, true)
    }
#undef VEC
#undef LIN
    return BN_OK;
}

static enum bn_status bind_model(struct binder *b)
{
    struct bn_model *m = b->m;
    struct bn_hparams *hp = &m->hp;
    enum bn_status st;

    struct bn_gguf_str arch;
    if ((st = bn_gguf_get_str(m->gguf, "general.architecture", &arch, b->err, b->errlen)) != BN_OK) return st;
    const struct arch_info *ai = NULL;
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (bn_gguf_str_eq(arch, archs[i].name)) ai = &archs[i];
    if (!ai) {
        char shown[65];
        size_t n = arch.len < 64 ? (size_t)arch.len : 64;
        for (size_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)arch.data[i];
            shown[i] = (ch >= 32 && ch < 127) ? (char)ch : '?';
        }
        shown[n] = '\0';
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: unsupported architecture '%s' (general.architecture), expected bitnet-b1.58, bitnet-25, "
                       "bitnet or llama",
                       b->file, shown);
    }
    hp->arch = ai->arch;
    hp->arch_name = ai->name;
    hp->ffn_act = ai->act;
    hp->rope_kind = ai->rope;
    hp->has_sub_norms = ai->sub_norms;
    b->prefix = ai->name;
    if ((st = read_hparams(b)) != BN_OK) return st;

    /* Tensor views, with names copied so they are NUL-terminated. */
    int64_t nt = bn_gguf_n_tensors(m->gguf);
    m->tensors = calloc(nt > 0 ? (size_t)nt : 1, sizeof *m->tensors);
    if (!m->tensors) return bn_errf(b->err, b->errlen, BN_ERR_NOMEM, "%s: out of memory", b->file);
    m->n_tensors = (uint32_t)nt;
    for (int64_t i = 0; i < nt; i++) {
        const struct bn_gguf_tensor *gt = bn_gguf_tensor_at(m->gguf, i);
        struct bn_tensor *t = &m->tensors[i];
        char *name = malloc((size_t)gt->name.len + 1);
        if (!name) return bn_errf(b->err, b->errlen, BN_ERR_NOMEM, "%s: out of memory", b->file);
        memcpy(name, gt->name.data, (size_t)gt->name.len);
        name[gt->name.len] = '\0';
        t->name = name;
        t->type = gt->type;
        t->n_dims = gt->n_dims;
        for (int d = 0; d < 4; d++) t->ne[d] = (int64_t)gt->ne[d];
        t->data = gt->data;
        t->nbytes = (size_t)gt->nbytes;
        t->index = (uint32_t)i;
    }

    /* n_vocab: from the embedding, cross-checked against the metadata. */
    const struct bn_tensor *te = find(b, "token_embd.weight");
    if (!te) return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: missing tensor 'token_embd.weight'", b->file);
    if (te->ne[1] <= 0 || te->ne[1] > (int64_t)MAX_VOCAB)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL, "%s: tensor 'token_embd.weight' has %lld rows, expected 1..%u",
                       b->file, (long long)te->ne[1], MAX_VOCAB);
    hp->n_vocab = (uint32_t)te->ne[1];
    uint32_t vocab_key = hp->n_vocab;
    if ((st = get_u32_key(b, "vocab_size", &vocab_key, false)) != BN_OK) return st;
    if (vocab_key != hp->n_vocab)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: %s.vocab_size is %u but 'token_embd.weight' has %u rows", b->file, b->prefix, vocab_key,
                       hp->n_vocab);
    /* Every id the tokenizer can produce needs an embedding row (more rows
     * than tokens, a padded embedding, is fine). */
    const struct bn_gguf_kv *tokens = NULL;
    bool have_tokens = false;
    if ((st = bn_gguf_get_arr_opt(m->gguf, "tokenizer.ggml.tokens", BN_GGUF_STRING, &tokens, &have_tokens, b->err,
                                  b->errlen)) != BN_OK)
        return st;
    if (have_tokens && tokens->arr_n > hp->n_vocab)
        return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                       "%s: tokenizer.ggml.tokens has %llu tokens but 'token_embd.weight' has %u rows", b->file,
                       (unsigned long long)tokens->arr_n, hp->n_vocab);
    if ((st = bind_table(b, "token_embd.weight", true, &m->tok_embd)) != BN_OK) return st;
    if ((st = bind_table(b, "output.weight", false, &m->output)) != BN_OK) return st;
    hp->tied_head = m->output == NULL;
    if (!m->output) m->output = m->tok_embd;
    if ((st = bind_vector(b, "output_norm.weight", hp->n_embd, true, &m->output_norm)) != BN_OK) return st;
    if ((st = bind_vector(b, "rope_freqs.weight", hp->n_rot / 2, false, &m->rope_freqs)) != BN_OK) return st;
    /* Each angle is divided by its factor. */
    for (uint32_t j = 0; m->rope_freqs && j < hp->n_rot / 2; j++) {
        float f;
        memcpy(&f, (const uint8_t *)m->rope_freqs->data + (size_t)j * sizeof f, sizeof f);
        if (!(f > 0.0f) || !isfinite(f))
            return bn_errf(b->err, b->errlen, BN_ERR_MODEL,
                           "%s: tensor 'rope_freqs.weight' element %u is %g, expected a finite number > 0", b->file,
                           j, (double)f);
    }

    m->layers = calloc(hp->n_layer, sizeof *m->layers);
    if (!m->layers) return bn_errf(b->err, b->errlen, BN_ERR_NOMEM, "%s: out of memory", b->file);
    for (uint32_t il = 0; il < hp->n_layer; il++)
        if ((st = bind_layer(b, (int)il)) != BN_OK) return st;
    return BN_OK;
}

enum bn_status bn_model_from_gguf(bn_gguf *g, struct bn_model **out, char *err, size_t errlen)
{
    *out = NULL;
    struct bn_model *m = calloc(1, sizeof *m);
    if (!m) {
        bn_gguf_close(g);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "%s: out of memory", bn_gguf_name(g));
    }
    m->gguf = g;
    struct binder b = {.m = m, .file = bn_gguf_name(g), .err = err, .errlen = errlen};
    enum bn_status st = bind_model(&b);
    if (st != BN_OK) {
        bn_model_close(m);
        return st;
    }
    *out = m;
    return BN_OK;
}

enum bn_status bn_model_open(const char *path, struct bn_model **out, char *err, size_t errlen)
{
    bn_gguf *g;
    *out = NULL;
    enum bn_status st = bn_gguf_open(path, &g, err, errlen);
    if (st != BN_OK) return st;
    return bn_model_from_gguf(g, out, err, errlen);
}

void bn_model_close(struct bn_model *m)
{
    if (!m) return;
    if (m->tensors)
        for (uint32_t i = 0; i < m->n_tensors; i++) free((void *)m->tensors[i].name);
    free(m->tensors);
    free(m->layers);
    bn_gguf_close(m->gguf);
    free(m);
}

void bn_model_describe(const struct bn_model *m, char *buf, size_t len)
{
    const struct bn_hparams *hp = &m->hp;
    const struct bn_tensor *w0 = m->layers[0].wq.w;
    snprintf(buf, len,
             "architecture:    %s\n"
             "ternary weights: %s (%.1f M parameters)\n"
             "embedding:       %s [%u x %u], head %s\n"
             "layers:          %u\n"
             "n_embd:          %u\n"
             "n_ff:            %u\n"
             "heads:           %u (kv %u), head_dim %u, rope %s over %u dims, base %g\n"
             "ffn activation:  %s%s\n"
             "rms epsilon:     %g\n"
             "context (train): %u\n"
             "file size:       %llu bytes, gguf v%u, %u tensors\n",
             hp->arch_name, bn_type_name(w0->type), (double)m->n_params_ternary / 1e6, bn_type_name(m->tok_embd->type),
             hp->n_embd, hp->n_vocab, hp->tied_head ? "tied to token_embd" : "output.weight", hp->n_layer, hp->n_embd,
             hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim, hp->rope_kind == BN_ROPE_NEOX ? "neox" : "norm",
             hp->n_rot, (double)hp->rope_base, hp->ffn_act == BN_ACT_RELU2 ? "relu^2" : "silu",
             hp->has_sub_norms ? ", sub-norms" : "", (double)hp->rms_eps, hp->n_ctx_train,
             (unsigned long long)bn_gguf_file_size(m->gguf), bn_gguf_version(m->gguf), m->n_tensors);
}
