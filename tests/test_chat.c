/*
 * test_chat.c - chat prompt formats (runtime/chat.c): names, detection from
 * a model's tokenizer.chat_template, the exact text of each turn, and, with
 * the Llama 3 vocabulary of shared/testdata, the exact token ids.
 *
 * The id anchors are the Llama 3 tokenizer's: 128000 <|begin_of_text|>,
 * 128006/128007 the header tokens, 128009 <|eot_id|>, 9125 "system",
 * 882 "user", 78191 "assistant", 271 "\n\n".
 */
#include <stdint.h>

#include "chat.h"
#include "gguf.h"
#include "test_util.h"
#include "tokenizer.h"

static void test_names(void)
{
    enum bn_chat_format f = BN_CHAT_NONE;
    CHECK(bn_chat_format_from_name("bitnet", &f) && f == BN_CHAT_BITNET, "bitnet");
    CHECK(bn_chat_format_from_name("llama3", &f) && f == BN_CHAT_LLAMA3, "llama3");
    CHECK(bn_chat_format_from_name("none", &f) && f == BN_CHAT_NONE, "none");
    CHECK(!bn_chat_format_from_name("chatml", &f) && !bn_chat_format_from_name("", &f) &&
              !bn_chat_format_from_name(NULL, &f),
          "unknown names");
    CHECK(!strcmp(bn_chat_format_name(BN_CHAT_LLAMA3), "llama3") &&
              !strcmp(bn_chat_format_name(BN_CHAT_BITNET), "bitnet"),
          "names back");
}

/* Templates as the model files carry them. */
static const char tmpl_bitnet_hf[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | "
    "capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = "
    "bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}"
    "{% endif %}";
static const char tmpl_llama3[] =
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 "
    "%}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "
    "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
static const char tmpl_gguf_placeholder[] =
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\n"
    "BITNETAssistant: ' + eos_token }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}";
static const char tmpl_chatml[] =
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + "
    "'\n'}}{% endfor %}";

static void test_detect(void)
{
    bool m = false;
    CHECK(bn_chat_detect(tmpl_bitnet_hf, strlen(tmpl_bitnet_hf), "llama", &m) == BN_CHAT_BITNET && m,
          "the Hugging Face 2B4T template is bitnet");
    CHECK(bn_chat_detect(tmpl_gguf_placeholder, strlen(tmpl_gguf_placeholder), "bitnet-b1.58", &m) ==
                  BN_CHAT_BITNET && m,
          "the official GGUF's BITNET placeholder is bitnet");
    CHECK(bn_chat_detect(tmpl_llama3, strlen(tmpl_llama3), "bitnet-b1.58", &m) == BN_CHAT_LLAMA3 && m,
          "the Llama 3 instruct template is llama3, whatever the architecture");
    CHECK(bn_chat_detect(tmpl_chatml, strlen(tmpl_chatml), "bitnet-b1.58", &m) == BN_CHAT_BITNET && !m,
          "an unknown template on a BitNet model: bitnet, not matched");
    CHECK(bn_chat_detect(tmpl_chatml, strlen(tmpl_chatml), "llama", &m) == BN_CHAT_NONE && !m,
          "an unknown template on another model: none");
    CHECK(bn_chat_detect(NULL, 0, "bitnet-25", &m) == BN_CHAT_BITNET && !m, "no template, bitnet-25: bitnet");
    CHECK(bn_chat_detect(NULL, 0, NULL, NULL) == BN_CHAT_NONE, "no template, no architecture: none");
    /* Only the template's length counts, not a NUL after it. */
    CHECK(bn_chat_detect(tmpl_llama3, 10, "llama", &m) == BN_CHAT_NONE && !m, "a cut template is not matched");
}

static bool render(enum bn_chat_format f, bool first, const char *sys, const char *user, const char *want)
{
    struct bn_chat_text t = {0};
    char err[256];
    bool ok = bn_chat_render_turn(f, first, sys, user, strlen(user), &t, err, sizeof err) == BN_OK &&
              t.n == strlen(want) && memcmp(t.p, want, t.n) == 0;
    if (!ok) fprintf(stderr, "  rendered [%s]\n  wanted   [%s]\n", t.p ? t.p : "(null)", want);
    free(t.p);
    return ok;
}

static void test_render(void)
{
    CHECK(render(BN_CHAT_BITNET, true, "You are terse.", "Hello there",
                 "<|begin_of_text|>System: You are terse.<|eot_id|>User: Hello there<|eot_id|>Assistant: "),
          "bitnet first turn with a system message");
    CHECK(render(BN_CHAT_BITNET, true, NULL, "Hi", "<|begin_of_text|>User: Hi<|eot_id|>Assistant: "),
          "bitnet first turn without one");
    CHECK(render(BN_CHAT_BITNET, true, "", "Hi", "<|begin_of_text|>User: Hi<|eot_id|>Assistant: "),
          "an empty system message is none");
    CHECK(render(BN_CHAT_BITNET, false, "ignored", "What did I say?",
                 "<|eot_id|>User: What did I say?<|eot_id|>Assistant: "),
          "bitnet later turn: closes the answer first");
    CHECK(render(BN_CHAT_BITNET, false, NULL, " \t spaced out \r\n",
                 "<|eot_id|>User: spaced out<|eot_id|>Assistant: "),
          "messages are trimmed");
    /* U+3000 IDEOGRAPHIC SPACE is White_Space; U+200B ZERO WIDTH SPACE is not. */
    CHECK(render(BN_CHAT_BITNET, false, NULL, "\xE3\x80\x80x\xE2\x80\x8B",
                 "<|eot_id|>User: x\xE2\x80\x8B<|eot_id|>Assistant: "),
          "trimming is Unicode White_Space");
    CHECK(render(BN_CHAT_BITNET, false, NULL, "\xFF ", "<|eot_id|>User: \xFF<|eot_id|>Assistant: "),
          "invalid bytes are kept");
    CHECK(render(BN_CHAT_LLAMA3, true, "You are terse.", "Hello there",
                 "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>"
                 "<|start_header_id|>user<|end_header_id|>\n\nHello there<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"),
          "llama3 first turn");
    CHECK(render(BN_CHAT_LLAMA3, false, NULL, "More",
                 "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nMore<|eot_id|>"
                 "<|start_header_id|>assistant<|end_header_id|>\n\n"),
          "llama3 later turn");
    CHECK(render(BN_CHAT_NONE, true, "ignored", " as typed ", " as typed "), "none: the line as typed");
    CHECK(render(BN_CHAT_NONE, false, NULL, "next", "next"), "none: later turns too");
    CHECK(bn_chat_writes_bos(BN_CHAT_BITNET) && bn_chat_writes_bos(BN_CHAT_LLAMA3) && !bn_chat_writes_bos(BN_CHAT_NONE),
          "which formats write BOS");
    /* Turns append to the buffer. */
    struct bn_chat_text t = {0};
    bn_chat_render_turn(BN_CHAT_BITNET, true, NULL, "a", 1, &t, NULL, 0);
    bn_chat_render_turn(BN_CHAT_BITNET, false, NULL, "b", 1, &t, NULL, 0);
    CHECK(t.p && !strcmp(t.p, "<|begin_of_text|>User: a<|eot_id|>Assistant: <|eot_id|>User: b<|eot_id|>Assistant: "),
          "two turns in one buffer: the conversation");
    free(t.p);
    CHECK(bn_chat_render_turn(BN_CHAT_BITNET, true, NULL, NULL, 3, &t, NULL, 0) == BN_ERR_USAGE, "NULL text refused");
}

static bool ids_are(const int32_t *ids, size_t n, const int32_t *want, size_t wn)
{
    if (n != wn) return false;
    for (size_t i = 0; i < n; i++)
        if (ids[i] != want[i]) return false;
    return true;
}

static void expect_ids(const bn_tokenizer *tk, enum bn_chat_format f, bool first, const char *sys, const char *user,
                       const int32_t *want, size_t wn, const char *what)
{
    struct bn_chat_text t = {0};
    char err[256];
    int32_t *ids = NULL;
    size_t n = 0;
    bool ok = bn_chat_render_turn(f, first, sys, user, strlen(user), &t, err, sizeof err) == BN_OK &&
              bn_tokenizer_encode(tk, t.p, t.n, false, true, &ids, &n, err, sizeof err) == BN_OK;
    ok = ok && ids_are(ids, n, want, wn);
    if (!ok) {
        fprintf(stderr, "  %s: got", what);
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fputc('\n', stderr);
    }
    CHECKF(ok, "%s: exact ids", what);
    free(ids);
    free(t.p);
}

static void test_llama3_vocab(const char *dir)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-bpe.gguf", dir);
    bn_gguf *g = NULL;
    bn_tokenizer *tk = NULL;
    if (bn_gguf_open(path, &g, err, sizeof err) != BN_OK || bn_tokenizer_create(g, &tk, err, sizeof err) != BN_OK) {
        CHECKF(0, "llama-bpe loads: %s", err);
        bn_gguf_close(g);
        return;
    }
    bn_gguf_close(g);
    CHECK(bn_chat_check(BN_CHAT_BITNET, tk, err, sizeof err) == BN_OK, "bitnet's tokens are in the Llama 3 vocab");
    CHECK(bn_chat_check(BN_CHAT_LLAMA3, tk, err, sizeof err) == BN_OK, "llama3's too");
    CHECK(bn_chat_check(BN_CHAT_NONE, tk, err, sizeof err) == BN_OK, "none needs nothing");

    /* <|begin_of_text|> "System" ":" " You" " are" " terse" "." <|eot_id|>
     * "User" ":" " Hello" " there" <|eot_id|> "Assistant" ":" " " */
    const int32_t bitnet1[] = {128000, 2374, 25,    1472, 527,    51637, 13, 128009,
                               1502,   25,   22691, 1070, 128009, 72803, 25, 220};
    expect_ids(tk, BN_CHAT_BITNET, true, "You are terse.", "Hello there", bitnet1, sizeof bitnet1 / 4,
               "bitnet turn 1");
    /* <|eot_id|> "User" ":" " What" " did" " I" " say" "?" <|eot_id|> "Assistant" ":" " " */
    const int32_t bitnet2[] = {128009, 1502, 25, 3639, 1550, 358, 2019, 30, 128009, 72803, 25, 220};
    expect_ids(tk, BN_CHAT_BITNET, false, NULL, "What did I say?", bitnet2, sizeof bitnet2 / 4, "bitnet turn 2");
    const int32_t llama1[] = {128000, 128006, 9125, 128007, 271, 2675, 527, 51637, 13, 128009, 128006,
                              882,    128007, 271,  9906,   1070, 128009, 128006, 78191, 128007, 271};
    expect_ids(tk, BN_CHAT_LLAMA3, true, "You are terse.", "Hello there", llama1, sizeof llama1 / 4, "llama3 turn 1");
    bn_tokenizer_destroy(tk);

    /* The Llama 2 SentencePiece vocabulary has none of these tokens. */
    snprintf(path, sizeof path, "%s/vocab/ggml-vocab-llama-spm.gguf", dir);
    if (bn_gguf_open(path, &g, err, sizeof err) == BN_OK && bn_tokenizer_create(g, &tk, err, sizeof err) == BN_OK) {
        err[0] = '\0';
        CHECKF(bn_chat_check(BN_CHAT_BITNET, tk, err, sizeof err) == BN_ERR_MODEL && strstr(err, "<|begin_of_text|>") &&
                   strstr(err, "bitnet") && !strchr(err, '\n'),
               "a vocabulary without the format's tokens is refused, naming one: %s", err);
        CHECK(bn_chat_check(BN_CHAT_NONE, tk, err, sizeof err) == BN_OK, "none works with any vocabulary");
        bn_tokenizer_destroy(tk);
    }
    bn_gguf_close(g);
}

/* Lines that are no turn: white space by the same rule as the trimming,
 * so an ideographic space (U+3000) or a no-break space is as blank as a
 * tab; invalid UTF-8 is content. */
static void test_blank(void)
{
    CHECK(bn_chat_is_blank("", 0), "empty is blank");
    CHECK(bn_chat_is_blank(" \t\r\n\v\f", 6), "ASCII white space is blank");
    CHECK(bn_chat_is_blank("\xE3\x80\x80 \xC2\xA0", 6), "U+3000 and U+00A0 are blank");
    CHECK(!bn_chat_is_blank(" a ", 3), "a letter is not");
    CHECK(!bn_chat_is_blank(" \xFF ", 3), "an invalid byte is not");
    CHECK(!bn_chat_is_blank("\xE3\x80", 2), "a truncated U+3000 is not");
}

int main(void)
{
    test_names();
    test_blank();
    test_detect();
    test_render();
    const char *dir = test_testdata();
    if (!dir) {
        test_report("test_chat");
        return test_skip_or_fail("the Llama 3 vocabulary is in shared/testdata");
    }
    test_llama3_vocab(dir);
    return test_report("test_chat");
}
