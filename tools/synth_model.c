#include "synth_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels_cpu/formats.h"
#include "../runtime/tensor_types.h"

/* GGUF value type ids used for arrays (see runtime/gguf.h). */
#define GT_INT32 5u

void bn_synth_default_params(struct bn_synth_params *p)
{
    memset(p, 0, sizeof *p);
    p->arch = "bitnet-b1.58";
    p->wtype = BN_TYPE_I2_S;
    p->embd_type = BN_TYPE_F16;
    p->n_embd = 256;
    p->n_layer = 2;
    p->n_head = 4;
    p->n_head_kv = 2;
    p->n_ff = 512;
    p->n_vocab = 300;
    p->n_ctx = 256;
    p->rms_eps = 1e-5f;
    p->rope_base = 500000.0f;
    p->seed = 1;
    p->exact_scales = false;
    p->block_jitter = 0.25f;
    p->embd_gain = 1.0f;
    p->scale_tensors = false;
    p->output_tensor = false;
    p->name = NULL;
}

void bn_synth_2b4t_params(struct bn_synth_params *p)
{
    bn_synth_default_params(p);
    p->n_embd = 2560;
    p->n_layer = 30;
    p->n_head = 20;
    p->n_head_kv = 5;
    p->n_ff = 6912;
    p->n_vocab = 128256;
    p->n_ctx = 4096;
}

/* ---- random streams --------------------------------------------------------
 *
 * Every tensor draws from its own splitmix64 stream keyed by (seed, tensor
 * name, purpose). Values therefore depend only on the seed, the name and the
 * position in the tensor: never on the order tensors are written, on the
 * weight type or on the embedding type. splitmix64 is tiny, fully specified
 * by integer arithmetic and passes BigCrush, which is all a test model needs.
 */

enum stream_purpose { STREAM_VALUES = 1, STREAM_SCALE = 2, STREAM_JITTER = 3, STREAM_SCALE_TENSOR = 4 };

struct rng {
    uint64_t s;
};

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

static uint64_t rng_next(struct rng *r)
{
    r->s += 0x9E3779B97F4A7C15u;
    return mix64(r->s);
}

static struct rng rng_stream(uint64_t seed, const char *name, enum stream_purpose purpose)
{
    uint64_t h = 0xCBF29CE484222325u; /* FNV-1a: stable, endian-free name hash */
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        h ^= *c;
        h *= 0x100000001B3u;
    }
    struct rng r = {mix64(seed ^ mix64(h + (uint64_t)purpose * 0x9E3779B97F4A7C15u))};
    return r;
}

/* Uniform in [0, 1) with 24 bits: every value exactly representable. */
static float rng_unit(struct rng *r)
{
    return (float)(rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Trits uniform over {-1, 0, +1}: each 32-bit half of a draw, read as a
 * fraction u, yields the first ten base-3 digits of u (multiply by 3, the
 * carry out is the digit). The bias of digit k is below 3^k / 2^32 (1.4e-5
 * at worst), far below anything a test could see, and it is 20 times cheaper
 * than a draw per trit, which matters for the 2B4T shape (2.1e9 trits). */
static void rng_trits(struct rng *r, int8_t *t, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint64_t x = rng_next(r);
        for (unsigned half = 0; half < 2; half++) {
            uint32_t u = (uint32_t)(x >> (32 * half));
            for (unsigned k = 0; k < 10 && i < n; k++) {
                uint64_t m = (uint64_t)u * 3u;
                t[i++] = (int8_t)((int)(m >> 32) - 1);
                u = (uint32_t)m;
            }
        }
    }
}

/* ---- build context ---------------------------------------------------------- */

struct synth {
    const struct bn_synth_params *p;
    bn_gguf_writer *w;
    char *err;
    size_t errlen;
    int8_t *trits;   /* largest ternary tensor */
    uint8_t *packed; /* its packed form */
    float *row;      /* one embedding row */
};

static enum bn_status add_failed(struct synth *s, const char *what)
{
    /* With sizes computed here the writer can only fail for lack of memory. */
    return bn_errf(s->err, s->errlen, BN_ERR_NOMEM, "synth model: out of memory adding '%s'", what);
}

static bool is_bitnet_arch(const char *arch)
{
    return strcmp(arch, "bitnet-b1.58") == 0 || strcmp(arch, "bitnet-25") == 0 || strcmp(arch, "bitnet") == 0;
}

static uint32_t file_type_of(uint32_t wtype)
{
    switch (wtype) {
    case BN_TYPE_I2_S: return 40;
    case BN_TYPE_TQ2_0: return 37;
    default: return 36; /* TQ1_0 */
    }
}

static uint32_t ternary_block(uint32_t wtype)
{
    return wtype == BN_TYPE_I2_S ? BN_I2S_BLOCK : BN_TQ_BLOCK;
}

/* Nearest power of two (in the log sense), exactly representable in fp16
 * and float for the scale range used here. */
static float pow2_nearest(float x)
{
    int e;
    float m = frexpf(x, &e); /* x = m * 2^e, m in [0.5, 1) */
    return m >= 0.70710678f ? ldexpf(1.0f, e) : ldexpf(1.0f, e - 1);
}

static enum bn_status add_norm(struct synth *s, const char *name, uint32_t n)
{
    float *v = malloc((size_t)n * sizeof *v);
    if (!v) return add_failed(s, name);
    struct rng r = rng_stream(s->p->seed, name, STREAM_VALUES);
    for (uint32_t i = 0; i < n; i++) v[i] = 1.0f + 0.2f * (rng_unit(&r) - 0.5f);
    uint64_t ne[1] = {n};
    bool ok = bn_gguf_writer_add_tensor(s->w, name, BN_TYPE_F32, 1, ne, v, (uint64_t)n * 4u);
    free(v);
    return ok ? BN_OK : add_failed(s, name);
}

/* A ternary weight "<base>.weight" [ne0, ne1], plus "<base>.scale" when asked. */
static enum bn_status add_ternary(struct synth *s, const char *base, uint32_t ne0, uint32_t ne1)
{
    const struct bn_synth_params *p = s->p;
    char name[96];
    snprintf(name, sizeof name, "%s.weight", base);
    size_t n = (size_t)ne0 * ne1;

    struct rng r = rng_stream(p->seed, name, STREAM_VALUES);
    rng_trits(&r, s->trits, n);

    /* Magnitude ~ 1/sqrt(K) keeps outputs O(1) for O(1) normalised inputs:
     * a sum of K products with 2/3 of the trits non-zero. */
    struct rng rs = rng_stream(p->seed, name, STREAM_SCALE);
    float scale = (0.5f + rng_unit(&rs)) / sqrtf((float)ne0);
    if (p->exact_scales) scale = pow2_nearest(scale);

    uint64_t ne[2] = {ne0, ne1};
    uint64_t nbytes;
    if (!bn_type_tensor_bytes(p->wtype, ne, 2, &nbytes)) return add_failed(s, name);

    if (p->wtype == BN_TYPE_I2_S) {
        bn_i2s_pack(s->trits, n, scale, s->packed);
    } else {
        struct rng rj = rng_stream(p->seed, name, STREAM_JITTER);
        size_t bb = p->wtype == BN_TYPE_TQ2_0 ? BN_TQ2_0_BYTES : BN_TQ1_0_BYTES;
        for (size_t b = 0; b < n / BN_TQ_BLOCK; b++) {
            float jitter = p->block_jitter * (2.0f * rng_unit(&rj) - 1.0f); /* drawn even if unused: same stream */
            uint16_t d = bn_fp32_to_fp16(p->exact_scales ? scale : scale * (1.0f + jitter));
            if (p->wtype == BN_TYPE_TQ2_0)
                bn_tq2_pack_block(s->trits + b * BN_TQ_BLOCK, d, s->packed + b * bb);
            else
                bn_tq1_pack_block(s->trits + b * BN_TQ_BLOCK, d, s->packed + b * bb);
        }
    }
    if (!bn_gguf_writer_add_tensor(s->w, name, p->wtype, 2, ne, s->packed, nbytes)) return add_failed(s, name);

    if (p->scale_tensors) {
        snprintf(name, sizeof name, "%s.scale", base);
        struct rng rt = rng_stream(p->seed, name, STREAM_SCALE_TENSOR);
        float v = 0.5f + rng_unit(&rt);
        uint64_t one[1] = {1};
        if (!bn_gguf_writer_add_tensor(s->w, name, BN_TYPE_F32, 1, one, &v, 4)) return add_failed(s, name);
    }
    return BN_OK;
}

/* Q8_0 as ggml quantizes it: d = amax/127 stored as fp16, q = round(x/d). */
static void quant_q8_0_row(const float *x, uint8_t *out, size_t n)
{
    for (size_t b = 0; b < n / 32; b++) {
        float amax = 0.0f;
        for (size_t i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(x[b * 32 + i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint16_t dh = bn_fp32_to_fp16(d);
        uint8_t *blk = out + b * 34;
        blk[0] = (uint8_t)(dh & 0xFFu);
        blk[1] = (uint8_t)(dh >> 8);
        for (size_t i = 0; i < 32; i++) {
            long q = lrintf(x[b * 32 + i] * id);
            if (q > 127) q = 127;
            if (q < -127) q = -127;
            int8_t qi = (int8_t)q;
            memcpy(blk + 2 + i, &qi, 1);
        }
    }
}

/* An embedding-like matrix [n_embd, n_vocab]: values ~ unit variance, drawn
 * row by row as floats and only then converted, so they do not depend on
 * the storage type; only one row of floats is ever held. */
static enum bn_status add_embedding(struct synth *s, const char *name)
{
    const struct bn_synth_params *p = s->p;
    uint64_t ne[2] = {p->n_embd, p->n_vocab};
    uint64_t nbytes;
    if (!bn_type_tensor_bytes(p->embd_type, ne, 2, &nbytes) || nbytes > SIZE_MAX) return add_failed(s, name);
    uint8_t *buf = malloc((size_t)nbytes);
    if (!buf) return add_failed(s, name);
    size_t row_bytes = (size_t)(nbytes / p->n_vocab);

    struct rng r = rng_stream(p->seed, name, STREAM_VALUES);
    const float gain = 1.7320508f * p->embd_gain; /* sqrt(3): U(-1, 1) scaled to unit variance */
    for (uint32_t t = 0; t < p->n_vocab; t++) {
        float *x = s->row;
        for (uint32_t i = 0; i < p->n_embd; i++) x[i] = gain * (2.0f * rng_unit(&r) - 1.0f);
        uint8_t *o = buf + (size_t)t * row_bytes;
        switch (p->embd_type) {
        case BN_TYPE_F32:
            memcpy(o, x, row_bytes); /* GGUF is little-endian, as every supported host */
            break;
        case BN_TYPE_F16:
        case BN_TYPE_BF16:
            for (uint32_t i = 0; i < p->n_embd; i++) {
                uint16_t h = p->embd_type == BN_TYPE_F16 ? bn_fp32_to_fp16(x[i]) : bn_fp32_to_bf16(x[i]);
                o[2 * i] = (uint8_t)(h & 0xFFu);
                o[2 * i + 1] = (uint8_t)(h >> 8);
            }
            break;
        default:
            quant_q8_0_row(x, o, p->n_embd);
            break;
        }
    }
    bool ok = bn_gguf_writer_add_tensor(s->w, name, p->embd_type, 2, ne, buf, nbytes);
    free(buf);
    return ok ? BN_OK : add_failed(s, name);
}

/* ---- tokenizer ---------------------------------------------------------------- */

/* Common English words (and a few frequent word pieces), most frequent
 * first. Each adds the left-to-right merge chain of " word" and "word" while
 * the vocabulary has room, so every merge joins two existing tokens. */
static const char *const merge_words[] = {
    "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "on",
    "not", "he", "by", "are", "this", "at", "from", "but", "have", "an", "they", "which", "or",
    "one", "you", "were", "all", "we", "her", "she", "there", "would", "their", "will", "when",
    "who", "him", "been", "has", "more", "if", "no", "out", "do", "so", "can", "what", "up",
    "said", "about", "other", "into", "than", "its", "time", "only", "could", "new", "them",
    "some", "these", "then", "two", "first", "may", "any", "like", "now", "my", "such", "make",
    "over", "our", "even", "most", "after", "also", "made", "many", "did", "before", "see",
    "through", "where", "way", "well", "your", "know", "should", "down", "work", "year",
    "because", "people", "just", "say", "each", "take", "day", "good", "how", "long", "very",
    "world", "here", "life", "both", "under", "never", "same", "er", "re", "en", "ing", "ed",
    "es", "or", "al", "ar", "ic", "le", "ly", "ion", "ent", "ation",
};

/* GPT-2's byte-to-symbol map: printable Latin-1 bytes stand for themselves,
 * the other 68 take the code points from U+0100 up, in byte order. */
static unsigned byte_symbol_cp(unsigned b)
{
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) return b;
    unsigned k = 0;
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))) k++;
    return 0x100 + k;
}

/* Appends the UTF-8 symbol of byte b (all code points here are < 0x800). */
static size_t put_symbol(char *dst, unsigned b)
{
    unsigned cp = byte_symbol_cp(b);
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    dst[0] = (char)(0xC0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

struct vocab {
    char **tokens;
    int32_t *types;
    char **merges;
    uint32_t n_tokens, n_merges, cap_merges;
};

static void vocab_free(struct vocab *v, uint32_t n_vocab)
{
    if (v->tokens)
        for (uint32_t i = 0; i < n_vocab; i++) free(v->tokens[i]);
    if (v->merges)
        for (uint32_t i = 0; i < v->n_merges; i++) free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static bool vocab_has(const struct vocab *v, uint32_t from, const char *tok)
{
    for (uint32_t i = from; i < v->n_tokens; i++)
        if (strcmp(v->tokens[i], tok) == 0) return true;
    return false;
}

/* Adds the merge chain of one byte string; false only when out of memory. */
static bool vocab_add_chain(struct vocab *v, const char *word, uint32_t limit)
{
    char cur[64], sym[4], next[64];
    size_t len = put_symbol(cur, (unsigned char)word[0]);
    cur[len] = '\0';
    for (size_t k = 1; word[k] && v->n_tokens < limit; k++) {
        size_t sl = put_symbol(sym, (unsigned char)word[k]);
        sym[sl] = '\0';
        if (len + sl >= sizeof next) break;
        memcpy(next, cur, len);
        memcpy(next + len, sym, sl + 1);
        if (!vocab_has(v, 256, next)) {
            char merge[sizeof cur + sizeof sym + 1];
            snprintf(merge, sizeof merge, "%s %s", cur, sym);
            v->tokens[v->n_tokens] = dup_str(next);
            v->merges[v->n_merges] = dup_str(merge);
            if (!v->tokens[v->n_tokens] || !v->merges[v->n_merges]) {
                free(v->tokens[v->n_tokens]);
                v->tokens[v->n_tokens] = NULL;
                free(v->merges[v->n_merges]);
                return false;
            }
            v->types[v->n_tokens++] = 1;
            v->n_merges++;
        }
        memcpy(cur, next, len + sl + 1);
        len += sl;
    }
    return true;
}

static const char *const control_tokens[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
};
#define N_CONTROL 5u

static bool vocab_build(struct vocab *v, uint32_t n_vocab)
{
    size_t n_words = sizeof merge_words / sizeof merge_words[0];
    size_t max_merges = 0;
    for (size_t i = 0; i < n_words; i++) max_merges += 2 * strlen(merge_words[i]);
    v->tokens = calloc(n_vocab, sizeof *v->tokens);
    v->types = calloc(n_vocab, sizeof *v->types);
    v->merges = calloc(max_merges, sizeof *v->merges);
    if (!v->tokens || !v->types || !v->merges) return false;

    for (unsigned b = 0; b < 256; b++) {
        char s[4];
        s[put_symbol(s, b)] = '\0';
        if (!(v->tokens[b] = dup_str(s))) return false;
        v->types[b] = 1;
    }
    v->n_tokens = 256;

    uint32_t limit = n_vocab - N_CONTROL;
    for (size_t i = 0; i < n_words && v->n_tokens < limit; i++) {
        char spaced[32];
        snprintf(spaced, sizeof spaced, " %s", merge_words[i]);
        if (!vocab_add_chain(v, spaced, limit) || !vocab_add_chain(v, merge_words[i], limit)) return false;
    }
    for (unsigned i = 0; i < N_CONTROL; i++) {
        if (!(v->tokens[v->n_tokens] = dup_str(control_tokens[i]))) return false;
        v->types[v->n_tokens++] = 3;
    }
    for (uint32_t k = 0; v->n_tokens < n_vocab; k++) {
        char s[48];
        snprintf(s, sizeof s, "<|reserved_special_token_%u|>", (unsigned)k);
        if (!(v->tokens[v->n_tokens] = dup_str(s))) return false;
        v->types[v->n_tokens++] = 3;
    }
    return true;
}

/* ---- parameters --------------------------------------------------------------- */

static enum bn_status check_params(const struct bn_synth_params *p, char *err, size_t errlen)
{
    if (!p || !p->arch) return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: no parameters");
    if (!is_bitnet_arch(p->arch) && strcmp(p->arch, "llama") != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE,
                       "synth model: unknown architecture '%s' (bitnet-b1.58, bitnet-25, bitnet, llama)", p->arch);
    if (!bn_type_is_ternary(p->wtype))
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: weight type %s is not ternary (i2_s, tq1_0, tq2_0)",
                       bn_type_name(p->wtype));
    if (p->embd_type != BN_TYPE_F32 && p->embd_type != BN_TYPE_F16 && p->embd_type != BN_TYPE_BF16 &&
        p->embd_type != BN_TYPE_Q8_0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: embedding type %s not supported (f32, f16, bf16, q8_0)",
                       bn_type_name(p->embd_type));
    if (!p->n_embd || !p->n_layer || !p->n_head || !p->n_head_kv || !p->n_ff || !p->n_ctx)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: every dimension must be positive");
    if (p->n_embd % p->n_head != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: n_embd %u is not a multiple of n_head %u", p->n_embd,
                       p->n_head);
    if ((p->n_embd / p->n_head) % 2 != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: head dim %u is odd (RoPE rotates pairs)",
                       p->n_embd / p->n_head);
    if (p->n_head % p->n_head_kv != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: n_head %u is not a multiple of n_head_kv %u", p->n_head,
                       p->n_head_kv);
    uint32_t blk = ternary_block(p->wtype);
    if (p->n_embd % blk != 0 || p->n_ff % blk != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: %s needs n_embd (%u) and n_ff (%u) multiples of %u",
                       bn_type_name(p->wtype), p->n_embd, p->n_ff, blk);
    if (p->embd_type == BN_TYPE_Q8_0 && p->n_embd % 32 != 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: q8_0 needs n_embd a multiple of 32");
    if (p->n_vocab < 256 + N_CONTROL)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: n_vocab %u < %u (256 bytes + %u control tokens)",
                       p->n_vocab, 256 + N_CONTROL, N_CONTROL);
    if (!(p->rms_eps > 0.0f) || !isfinite(p->rms_eps) || !(p->rope_base > 0.0f) || !isfinite(p->rope_base))
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: rms_eps and rope_base must be positive and finite");
    if (!(p->embd_gain > 0.0f && p->embd_gain < 1e4f))
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: embd_gain %g outside (0, 1e4)", (double)p->embd_gain);
    if (!(p->block_jitter >= 0.0f && p->block_jitter < 1.0f))
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: block_jitter %g outside [0, 1)", (double)p->block_jitter);
    /* Whole tensors are built in memory: make sure their sizes fit size_t. */
    uint64_t emb = (uint64_t)p->n_embd * p->n_vocab * 4u;
    uint64_t ffn = (uint64_t)p->n_embd * p->n_ff;
    if (emb > SIZE_MAX / 2 || ffn > SIZE_MAX / 2 || (uint64_t)p->n_embd * p->n_embd > SIZE_MAX / 2)
        return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: shape too large for this machine");
    return BN_OK;
}

static enum bn_status add_metadata(struct synth *s, const struct vocab *v)
{
    const struct bn_synth_params *p = s->p;
    bn_gguf_writer *w = s->w;
    char key[128], name[128];
    const char *a = p->arch;
    bool ok = true;

#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    if (p->name)
        snprintf(name, sizeof name, "%s", p->name);
    else
        snprintf(name, sizeof name, "synthetic-%s-%s-E%u-L%u", a, bn_type_name(p->wtype), p->n_embd, p->n_layer);
    ok = ok && bn_gguf_writer_add_str(w, "general.architecture", a);
    ok = ok && bn_gguf_writer_add_str(w, "general.name", name);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("vocab_size"), p->n_vocab);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("context_length"), p->n_ctx);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("embedding_length"), p->n_embd);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("block_count"), p->n_layer);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("feed_forward_length"), p->n_ff);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("rope.dimension_count"), p->n_embd / p->n_head);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("attention.head_count"), p->n_head);
    ok = ok && bn_gguf_writer_add_u32(w, KEY("attention.head_count_kv"), p->n_head_kv);
    ok = ok && bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    ok = ok && bn_gguf_writer_add_f32(w, KEY("attention.layer_norm_rms_epsilon"), p->rms_eps);
    ok = ok && bn_gguf_writer_add_f32(w, KEY("rope.freq_base"), p->rope_base);
    ok = ok && bn_gguf_writer_add_u32(w, "general.file_type", file_type_of(p->wtype));
    ok = ok && bn_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2");
    /* Like the golden models: the official I2_S file names no pre-tokenizer,
     * llama.cpp's TQ conversions say llama-bpe. */
    if (p->wtype != BN_TYPE_I2_S) ok = ok && bn_gguf_writer_add_str(w, "tokenizer.ggml.pre", "llama-bpe");
    ok = ok && bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tokens, v->n_tokens);

    /* int32 elements, little-endian as the writer expects. */
    uint8_t *types = malloc((size_t)v->n_tokens * 4u);
    if (!types) return add_failed(s, "tokenizer.ggml.token_type");
    for (uint32_t i = 0; i < v->n_tokens; i++) {
        uint32_t u = (uint32_t)v->types[i];
        for (unsigned k = 0; k < 4; k++) types[4 * (size_t)i + k] = (uint8_t)(u >> (8 * k));
    }
    ok = ok && bn_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GT_INT32, types, v->n_tokens);
    free(types);

    uint32_t bos = 256 + v->n_merges; /* the control tokens follow the merges */
    ok = ok && bn_gguf_writer_add_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges, v->n_merges);
    ok = ok && bn_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", bos);
    ok = ok && bn_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", bos + 1);
    ok = ok && bn_gguf_writer_add_u32(w, "tokenizer.ggml.eot_token_id", bos + 2);
    ok = ok && bn_gguf_writer_add_bool(w, "tokenizer.ggml.add_eos_token", false);
    ok = ok && bn_gguf_writer_add_u32(w, "general.quantization_version", 2);
#undef KEY
    return ok ? BN_OK : add_failed(s, "metadata");
}

static enum bn_status add_tensors(struct synth *s)
{
    const struct bn_synth_params *p = s->p;
    uint32_t hd = p->n_embd / p->n_head;
    uint32_t q_dim = p->n_head * hd, kv_dim = p->n_head_kv * hd;
    bool sub = is_bitnet_arch(p->arch);
    char name[96];
    enum bn_status st = add_embedding(s, "token_embd.weight");

#define NORM(suffix, n) \
    (snprintf(name, sizeof name, "blk.%u.%s.weight", (unsigned)l, suffix), add_norm(s, name, n))
#define TERN(suffix, ne0, ne1) \
    (snprintf(name, sizeof name, "blk.%u.%s", (unsigned)l, suffix), add_ternary(s, name, ne0, ne1))
    for (uint32_t l = 0; st == BN_OK && l < p->n_layer; l++) {
        if (st == BN_OK) st = NORM("attn_norm", p->n_embd);
        if (st == BN_OK) st = TERN("attn_q", p->n_embd, q_dim);
        if (st == BN_OK) st = TERN("attn_k", p->n_embd, kv_dim);
        if (st == BN_OK) st = TERN("attn_v", p->n_embd, kv_dim);
        if (st == BN_OK) st = TERN("attn_output", q_dim, p->n_embd);
        if (st == BN_OK && sub) st = NORM("attn_sub_norm", q_dim);
        if (st == BN_OK) st = NORM("ffn_norm", p->n_embd);
        if (st == BN_OK) st = TERN("ffn_gate", p->n_embd, p->n_ff);
        if (st == BN_OK) st = TERN("ffn_up", p->n_embd, p->n_ff);
        if (st == BN_OK) st = TERN("ffn_down", p->n_ff, p->n_embd);
        if (st == BN_OK && sub) st = NORM("ffn_sub_norm", p->n_ff);
    }
#undef NORM
#undef TERN
    if (st == BN_OK) st = add_norm(s, "output_norm.weight", p->n_embd);
    if (st == BN_OK && p->output_tensor) st = add_embedding(s, "output.weight");
    return st;
}

enum bn_status bn_synth_build(const struct bn_synth_params *p, bn_gguf_writer **out, char *err, size_t errlen)
{
    if (out) *out = NULL;
    enum bn_status st = check_params(p, err, errlen);
    if (st != BN_OK) return st;
    if (!out) return bn_errf(err, errlen, BN_ERR_USAGE, "synth model: no output");

    struct synth s = {.p = p, .err = err, .errlen = errlen};
    size_t max_n = (size_t)p->n_embd * (p->n_ff > p->n_embd ? p->n_ff : p->n_embd);
    struct vocab v = {0};
    s.w = bn_gguf_writer_create(32);
    s.trits = malloc(max_n);
    s.packed = malloc(max_n / 3 + BN_I2S_TAIL); /* >= n/4 + 32 (I2_S) and n/256 * 66 (TQ2_0) */
    s.row = malloc((size_t)p->n_embd * sizeof *s.row);
    if (!s.w || !s.trits || !s.packed || !s.row || !vocab_build(&v, p->n_vocab))
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "synth model: out of memory");
    if (st == BN_OK) st = add_metadata(&s, &v);
    vocab_free(&v, p->n_vocab);
    if (st == BN_OK) st = add_tensors(&s);
    free(s.trits);
    free(s.packed);
    free(s.row);
    if (st != BN_OK) {
        bn_gguf_writer_destroy(s.w);
        return st;
    }
    *out = s.w;
    return BN_OK;
}

enum bn_status bn_synth_write(const struct bn_synth_params *p, const char *path, char *err, size_t errlen)
{
    bn_gguf_writer *w;
    enum bn_status st = bn_synth_build(p, &w, err, errlen);
    if (st != BN_OK) return st;
    st = bn_gguf_writer_write_file(w, path, err, errlen);
    bn_gguf_writer_destroy(w);
    return st;
}
