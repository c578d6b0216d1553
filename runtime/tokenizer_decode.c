/*
 * tokenizer_decode.c - token ids back to text: the raw bytes of a piece,
 * and the streaming UTF-8 repair that prints only whole characters.
 */
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"
#include "tokenizer_impl.h"
#include "tokenizer_utf8.h"

/* Produces the raw bytes of a token through put(): control, unknown and
 * user-defined tokens are their text (user-defined ones are matched in raw
 * text, so that is what they stand for); byte tokens are their byte; normal
 * tokens undo the model's text mapping. */
void tok_piece_emit(const bn_tokenizer *t, int32_t id, void (*put)(void *, unsigned char), void *ctx)
{
    if (id < 0 || (uint32_t)id >= t->n_vocab) return;
    const unsigned char *s = (const unsigned char *)tok_text(t, id);
    size_t n = tok_len(t, id);
    uint8_t ty = t->type[id];
    if (ty == TT_CONTROL || ty == TT_UNKNOWN || ty == TT_USER) {
        for (size_t i = 0; i < n; i++) put(ctx, s[i]);
        return;
    }
    if (ty == TT_BYTE) {
        int b = tok_parse_byte_token((const char *)s, n);
        if (b >= 0) {
            put(ctx, (unsigned char)b);
            return;
        }
    }
    if (t->model == TOK_GPT2) {
        /* Characters of the byte map become their byte; any other valid
         * character (not produced by BPE, but vocabularies may hold them) is
         * kept as UTF-8, and invalid bytes pass through unchanged. */
        for (size_t i = 0; i < n;) {
            uint32_t cp;
            int cl = bn_utf8_decode(s + i, n - i, &cp);
            int b = cl > 0 ? tok_gpt2_cp_to_byte(cp) : -1;
            if (b >= 0) {
                put(ctx, (unsigned char)b);
            } else {
                if (cl == 0) cl = 1;
                for (int k = 0; k < cl; k++) put(ctx, s[i + (size_t)k]);
            }
            i += (size_t)cl;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i + 3 <= n && s[i] == 0xE2 && s[i + 1] == 0x96 && s[i + 2] == 0x81) {
            put(ctx, ' ');
            i += 2;
        } else {
            put(ctx, s[i]);
        }
    }
}

struct raw_out {
    char *p;
    size_t cap, n; /* n counts every byte, written or not */
};

static void raw_put(void *ctx, unsigned char b)
{
    struct raw_out *o = ctx;
    if (o->n < o->cap) o->p[o->n] = (char)b;
    o->n++;
}

size_t bn_tokenizer_piece(const bn_tokenizer *t, int32_t id, char *buf, size_t cap)
{
    struct raw_out o = {buf, buf ? cap : 0, 0};
    tok_piece_emit(t, id, raw_put, &o);
    return o.n;
}

/* The streaming UTF-8 repair: complete valid characters go out, a valid but
 * unfinished prefix waits in d->pending, and each maximal invalid part
 * becomes one U+FFFD (the Unicode "maximal subpart" practice), after which
 * the offending byte is looked at again as a possible start. */
struct stream_out {
    struct bn_detok *d;
    char *p;
    size_t cap, n;
};

/* Whole characters only: when the caller's buffer is too small a character
 * is dropped rather than cut, so the output stays valid UTF-8. */
static void stream_write(struct stream_out *o, const unsigned char *b, size_t k)
{
    if (k > o->cap - o->n) return;
    memcpy(o->p + o->n, b, k);
    o->n += k;
}

static const unsigned char replacement[3] = {0xEF, 0xBF, 0xBD};

static void stream_put(void *ctx, unsigned char b)
{
    struct stream_out *o = ctx;
    struct bn_detok *d = o->d;
    if (d->n_pending > 0) {
        int need = bn_utf8_need(d->pending[0]);
        if (bn_utf8_cont_ok(d->pending[0], d->n_pending, b)) {
            d->pending[d->n_pending++] = b;
            if (d->n_pending == need) {
                stream_write(o, d->pending, (size_t)need);
                d->n_pending = 0;
            }
            return;
        }
        stream_write(o, replacement, 3);
        d->n_pending = 0;
    }
    int need = bn_utf8_need(b);
    if (need == 1) {
        stream_write(o, &b, 1);
    } else if (need == 0) {
        stream_write(o, replacement, 3);
    } else {
        d->pending[0] = b;
        d->n_pending = 1;
    }
}

/* A state the functions above cannot produce (a caller's uninitialised or
 * corrupted struct) is dropped as one U+FFFD. */
static void stream_check_state(struct stream_out *o)
{
    struct bn_detok *d = o->d;
    if (d->n_pending == 0) return;
    if (d->n_pending < 0 || d->n_pending > 3 || bn_utf8_need(d->pending[0]) <= d->n_pending) {
        d->n_pending = 0;
        stream_write(o, replacement, 3);
    }
}

size_t bn_tokenizer_decode_stream(const bn_tokenizer *t, struct bn_detok *d, int32_t id, char *out, size_t cap)
{
    if (!d) return 0;
    struct stream_out o = {d, out, out ? cap : 0, 0};
    stream_check_state(&o);
    tok_piece_emit(t, id, stream_put, &o);
    return o.n;
}

size_t bn_tokenizer_decode_flush(const bn_tokenizer *t, struct bn_detok *d, char *out, size_t cap)
{
    (void)t;
    if (!d) return 0;
    struct stream_out o = {d, out, out ? cap : 0, 0};
    stream_check_state(&o);
    if (d->n_pending > 0) {
        stream_write(&o, replacement, 3);
        d->n_pending = 0;
    }
    return o.n;
}
