/*
 * chat.c - chat prompt formats (see chat.h and docs/chat.md).
 */
#include "chat.h"

#include <stdlib.h>
#include <string.h>

#include "tokenizer_utf8.h"
#include "unicode_tables.h"

/* The pieces of a format. Turn layout:
 *   first turn:  bos [system_open SYS system_close] user_open MSG user_close assistant_open
 *   later turns: assistant_close user_open MSG user_close assistant_open */
struct format {
    const char *name;
    const char *bos;
    const char *system_open, *system_close;
    const char *user_open, *user_close;
    const char *assistant_open, *assistant_close;
    const char *const *specials; /* control tokens the text above contains */
};

static const char *const specials_bitnet[] = {"<|begin_of_text|>", "<|eot_id|>", NULL};
static const char *const specials_llama3[] = {"<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                                              "<|eot_id|>", NULL};
static const char *const specials_none[] = {NULL};

static const struct format formats[] = {
    [BN_CHAT_NONE] = {"none", "", "", "", "", "", "", "", specials_none},
    /* microsoft/bitnet-b1.58-2B-4T tokenizer_config.json: each message is
     * role | capitalize + ': ' + content | trim + '<|eot_id|>', bos_token
     * before the first, 'Assistant: ' as the generation prompt. */
    [BN_CHAT_BITNET] = {"bitnet", "<|begin_of_text|>", "System: ", "<|eot_id|>", "User: ", "<|eot_id|>",
                        "Assistant: ", "<|eot_id|>", specials_bitnet},
    /* Meta-Llama-3-8B-Instruct: '<|start_header_id|>' + role +
     * '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>'. */
    [BN_CHAT_LLAMA3] = {"llama3", "<|begin_of_text|>", "<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>",
                        "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>",
                        "<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", specials_llama3},
};

bool bn_chat_format_from_name(const char *name, enum bn_chat_format *out)
{
    for (size_t i = 0; name && i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(name, formats[i].name) == 0) {
            *out = (enum bn_chat_format)i;
            return true;
        }
    }
    return false;
}

const char *bn_chat_format_name(enum bn_chat_format f)
{
    return (size_t)f < sizeof formats / sizeof formats[0] ? formats[f].name : "?";
}

static bool contains(const char *hay, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; k <= n && i <= n - k; i++)
        if (memcmp(hay + i, needle, k) == 0) return true;
    return false;
}

enum bn_chat_format bn_chat_detect(const char *tmpl, size_t len, const char *arch, bool *matched)
{
    if (matched) *matched = true;
    if (tmpl) {
        /* The Llama 3 instruct template is the only one known here with
         * header tokens; check it first, since the BitNet vocabulary (Llama
         * 3's) also has them. */
        if (contains(tmpl, len, "<|start_header_id|>") && contains(tmpl, len, "<|end_header_id|>"))
            return BN_CHAT_LLAMA3;
        /* The Hugging Face 2B4T template ("role | capitalize + ': '"), and
         * the placeholder Microsoft's converter writes into the official
         * GGUF (roles "Human:" / "BITNETAssistant:"), which bitnet.cpp
         * recognises by "BITNET" and replaces with this same format. */
        if ((contains(tmpl, len, "| capitalize") && contains(tmpl, len, "<|eot_id|>")) ||
            contains(tmpl, len, "BITNET"))
            return BN_CHAT_BITNET;
    }
    if (matched) *matched = false;
    if (arch && (strcmp(arch, "bitnet-b1.58") == 0 || strcmp(arch, "bitnet-25") == 0)) return BN_CHAT_BITNET;
    return BN_CHAT_NONE;
}

enum bn_status bn_chat_check(enum bn_chat_format f, const bn_tokenizer *tk, char *err, size_t errlen)
{
    for (const char *const *s = formats[f].specials; *s; s++) {
        int32_t id = bn_tokenizer_find(tk, *s, strlen(*s));
        if (id < 0 || !bn_tokenizer_is_control(tk, id))
            return bn_errf(err, errlen, BN_ERR_MODEL,
                           "chat format '%s' needs the control token %s, which this vocabulary lacks "
                           "(choose another with --chat-template)",
                           formats[f].name, *s);
    }
    return BN_OK;
}

bool bn_chat_writes_bos(enum bn_chat_format f) { return formats[f].bos[0] != '\0'; }

static bool append(struct bn_chat_text *t, const char *s, size_t n)
{
    if (n > SIZE_MAX - t->n - 1) return false;
    if (t->n + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->n + n + 1) {
            if (cap > SIZE_MAX / 2) return false;
            cap *= 2;
        }
        char *p = realloc(t->p, cap);
        if (!p) return false;
        t->p = p;
        t->cap = cap;
    }
    if (n) memcpy(t->p + t->n, s, n);
    t->n += n;
    t->p[t->n] = '\0'; /* handy for printing; n excludes it */
    return true;
}

static bool append_str(struct bn_chat_text *t, const char *s) { return append(t, s, strlen(s)); }

/* Jinja's trim: white space (Unicode White_Space) off both ends. Invalid
 * UTF-8 bytes are content, never space. */
static void trim(const char *s, size_t n, size_t *start, size_t *end)
{
    size_t a = 0, b = 0;
    bool seen = false;
    for (size_t i = 0; i < n;) {
        uint32_t cp = 0;
        int k = bn_utf8_decode((const unsigned char *)s + i, n - i, &cp);
        bool space = k > 0 && bn_uprop_is_space(bn_unicode_props(cp));
        if (k == 0) k = 1;
        if (!space) {
            if (!seen) a = i;
            seen = true;
            b = i + (size_t)k;
        }
        i += (size_t)k;
    }
    *start = seen ? a : 0;
    *end = seen ? b : 0;
}

bool bn_chat_is_blank(const char *s, size_t n)
{
    size_t a, b;
    trim(s, n, &a, &b);
    return a == b;
}

static bool append_trimmed(struct bn_chat_text *t, const char *s, size_t n)
{
    size_t a, b;
    trim(s, n, &a, &b);
    return append(t, s + a, b - a);
}

enum bn_status bn_chat_render_turn(enum bn_chat_format f, bool first, const char *system, const char *user,
                                   size_t user_len, struct bn_chat_text *out, char *err, size_t errlen)
{
    if ((size_t)f >= sizeof formats / sizeof formats[0] || !out || (!user && user_len > 0))
        return bn_errf(err, errlen, BN_ERR_USAGE, "bn_chat_render_turn: bad argument");
    const struct format *fm = &formats[f];
    bool ok = true;
    if (f == BN_CHAT_NONE) {
        ok = append(out, user ? user : "", user_len);
    } else {
        if (first) {
            ok = append_str(out, fm->bos);
            if (ok && system && system[0]) {
                ok = append_str(out, fm->system_open) && append_trimmed(out, system, strlen(system)) &&
                     append_str(out, fm->system_close);
            }
        } else {
            ok = append_str(out, fm->assistant_close);
        }
        ok = ok && append_str(out, fm->user_open) && append_trimmed(out, user ? user : "", user_len) &&
             append_str(out, fm->user_close) && append_str(out, fm->assistant_open);
    }
    return ok ? BN_OK : bn_errf(err, errlen, BN_ERR_NOMEM, "out of memory for the chat prompt");
}
