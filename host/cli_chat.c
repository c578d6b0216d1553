/*
 * cli_chat.c - `generate --chat`: one user line in, one streamed answer out,
 * until end of input. The engine's KV cache holds the whole conversation:
 * every answer token is evaluated as it is printed, and each turn evaluates
 * only its own new tokens (the end of the previous answer, the user's
 * message, the start of the next answer), so the second turn sees the first
 * without recomputing it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "cli_chat.h"
#include "cli_interrupt.h"

struct chat_state {
    const struct cli_chat_opts *o;
    enum bn_chat_format format;
    bn_sampler *sampler;
    float *logits;
    char *piece;
    size_t piece_cap;
    int32_t *answer; /* this turn's answer ids, for --verbose-prompt */
    size_t answer_cap;
    uint32_t n_ctx;
    /* totals for the summary line */
    int turns; /* turns evaluated */
    uint64_t n_prompt, n_gen;
    double t_prompt, t_gen;
};

/* The format from --chat-template, else from the model's template. Returns
 * an exit code (0 ok). */
static int pick_format(const struct cli_chat_opts *o, enum bn_chat_format *f)
{
    char err[512];
    if (o->format) {
        if (!bn_chat_format_from_name(o->format, f))
            return cli_fail(1, "--chat-template: '%s' is not bitnet, llama3 or none", o->format);
        if (bn_chat_check(*f, o->tok, err, sizeof err) != BN_OK) return cli_fail(1, "%s", err);
        return 0;
    }
    struct bn_gguf_str tmpl = {NULL, 0};
    bool found = false, matched = false;
    if (bn_gguf_get_str_opt(o->model->gguf, "tokenizer.chat_template", &tmpl, &found, err, sizeof err) != BN_OK)
        return cli_fail(2, "%s", err);
    *f = bn_chat_detect(found ? tmpl.data : NULL, found ? (size_t)tmpl.len : 0, o->model->hp.arch_name, &matched);
    if (!matched)
        fprintf(stderr, "bitnet-vk: %s chat template: using '%s' (choose with --chat-template bitnet|llama3|none)\n",
                found ? "unrecognised" : "no", bn_chat_format_name(*f));
    if (bn_chat_check(*f, o->tok, err, sizeof err) != BN_OK) return cli_fail(2, "%s", err);
    return 0;
}

static void print_ids(const char *what, int turn, uint32_t pos, const int32_t *ids, size_t n)
{
    fprintf(stderr, "bitnet-vk: turn %d %s at position %u (%zu tokens):", turn, what, pos, n);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
    fputc('\n', stderr);
}

static bool remember_answer_id(struct chat_state *s, size_t k, int32_t id)
{
    if (k == s->answer_cap) {
        size_t cap = s->answer_cap ? 2 * s->answer_cap : 256;
        int32_t *a = realloc(s->answer, cap * sizeof *a);
        if (!a) return false;
        s->answer = a;
        s->answer_cap = cap;
    }
    s->answer[k] = id;
    return true;
}

/* Streams the answer: sample, print, evaluate, until an end-of-generation
 * token (not printed, not evaluated: the next turn writes the format's own
 * end of answer), the -n limit or a full context (*stop). */
static int answer(struct chat_state *s, int turn, bool *stop)
{
    const struct cli_chat_opts *o = s->o;
    char err[512];
    struct bn_detok detok = {0};
    const uint32_t limit = o->n_predict < 0 ? UINT32_MAX : (uint32_t)o->n_predict;
    const uint32_t start = bn_engine_pos(o->engine);
    uint32_t gen = 0;
    int rc = 0;
    double t0 = cli_now();
    while (gen < limit) {
        if (cli_interrupted()) { /* Ctrl-C: end the answer and the chat */
            *stop = true;
            break;
        }
        int32_t tok = bn_sampler_sample(s->sampler, s->logits);
        /* The end of the answer is not recorded here: the next turn's text
         * writes the format's own, which is. */
        if (bn_tokenizer_is_eog(o->tok, tok)) break;
        bn_sampler_accept(s->sampler, tok);
        if (bn_engine_pos(o->engine) >= s->n_ctx) {
            fprintf(stderr, "\nbitnet-vk: context full (%u tokens): ending the chat\n", s->n_ctx);
            *stop = true;
            break;
        }
        if (o->special || !bn_tokenizer_is_control(o->tok, tok)) {
            size_t k = bn_tokenizer_decode_stream(o->tok, &detok, tok, s->piece, s->piece_cap);
            fwrite(s->piece, 1, k, stdout);
        }
        if (!cli_stdout_flush()) {
            rc = cli_fail(3, "cannot write to standard output: ending the chat");
            break;
        }
        if (o->verbose_prompt && !remember_answer_id(s, gen, tok)) {
            rc = cli_fail(3, "out of memory");
            break;
        }
        gen++;
        enum bn_status st = bn_engine_eval(o->engine, &tok, 1, false, s->logits, err, sizeof err);
        if (st != BN_OK) {
            putchar('\n');
            rc = cli_fail(bn_status_exit_code(st), "%s", err);
            break;
        }
    }
    s->t_gen += cli_now() - t0;
    s->n_gen += gen;
    fwrite(s->piece, 1, bn_tokenizer_decode_flush(o->tok, &detok, s->piece, s->piece_cap), stdout);
    putchar('\n');
    if (!cli_stdout_flush() && rc == 0) rc = cli_fail(3, "cannot write to standard output: ending the chat");
    if (rc == 0 && o->verbose_prompt) print_ids("answer", turn, start, s->answer, gen);
    return rc;
}

/* One turn: the formatted message is tokenized (special tokens of the
 * format parsed), evaluated at the end of the conversation so far, then
 * answered. */
static int turn_run(struct chat_state *s, int turn, const char *line, size_t len, bool *stop)
{
    const struct cli_chat_opts *o = s->o;
    char err[512];
    struct bn_chat_text text = {0};
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = 0;
    enum bn_status st = bn_chat_render_turn(s->format, turn == 1, o->system, line, len, &text, err, sizeof err);
    if (st == BN_OK) {
        bool bos = turn == 1 && !bn_chat_writes_bos(s->format) && bn_tokenizer_add_bos(o->tok);
        st = bn_tokenizer_encode(o->tok, text.p ? text.p : "", text.n, bos, true, &ids, &n, err, sizeof err);
    }
    free(text.p);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);

    uint32_t pos = bn_engine_pos(o->engine);
    if (n >= s->n_ctx - pos) {
        /* Nothing of it was evaluated: the conversation is as it was, and a
         * shorter message may still fit. */
        fprintf(stderr, "bitnet-vk: message skipped: it needs %zu tokens and %u of the context's %u are left\n", n,
                s->n_ctx - pos, s->n_ctx);
        free(ids);
        return 0;
    }
    if (o->verbose_prompt) print_ids("prompt", turn, pos, ids, n);
    for (size_t i = 0; i < n; i++) bn_sampler_accept(s->sampler, ids[i]);
    double t0 = cli_now();
    st = n ? bn_engine_eval(o->engine, ids, (uint32_t)n, false, s->logits, err, sizeof err) : BN_OK;
    s->t_prompt += cli_now() - t0;
    s->n_prompt += n;
    free(ids);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);
    s->turns++;
    if (n == 0) return 0; /* format none with nothing to say: no logits to sample */
    rc = answer(s, turn, stop);
    return rc;
}

int cli_chat(const struct cli_chat_opts *o)
{
    struct chat_state s = {.o = o};
    char err[512];
    int rc = pick_format(o, &s.format);
    if (rc != 0) return rc;
    const uint32_t n_vocab = o->model->hp.n_vocab;
    s.n_ctx = bn_engine_n_ctx(o->engine);
    s.piece_cap = bn_tokenizer_max_piece(o->tok) + 64;
    s.piece = malloc(s.piece_cap);
    s.logits = malloc((size_t)n_vocab * sizeof *s.logits);
    if (!s.piece || !s.logits) {
        rc = cli_fail(3, "out of memory");
        goto done;
    }
    enum bn_status st = bn_sampler_create(&o->sp, n_vocab, &s.sampler, err, sizeof err);
    if (st != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    const bool tty = isatty(STDIN_FILENO);
    fprintf(stderr, "bitnet-vk: chat format '%s': one message per line, end of input (Ctrl-D) ends\n",
            bn_chat_format_name(s.format));
    char *line = NULL;
    size_t line_cap = 0;
    for (bool stop = false; !stop;) {
        if (tty) {
            fputs("> ", stdout);
            fflush(stdout);
        }
        ssize_t got = getline(&line, &line_cap, stdin);
        if (got < 0) {
            if (ferror(stdin) && !cli_interrupted()) rc = cli_fail(3, "reading standard input failed");
            if (tty) putchar('\n');
            break;
        }
        size_t len = (size_t)got;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        if (bn_chat_is_blank(line, len)) continue;
        if ((rc = turn_run(&s, s.turns + 1, line, len, &stop)) != 0) break;
    }
    free(line);
    if (rc == 0)
        fprintf(stderr,
                "bitnet-vk: load %.0f ms | %d turn%s | prompt %llu tokens, %.2f tok/s | generation %llu tokens, "
                "%.2f tok/s | %s | seed %llu\n",
                o->t_load * 1e3, s.turns, s.turns == 1 ? "" : "s", (unsigned long long)s.n_prompt,
                (double)s.n_prompt / (s.t_prompt > 0 ? s.t_prompt : 1e-9), (unsigned long long)s.n_gen,
                (double)s.n_gen / (s.t_gen > 0 ? s.t_gen : 1e-9), o->backend_name, (unsigned long long)o->sp.seed);
    if (rc == 0 && cli_interrupted()) rc = CLI_EXIT_INTERRUPTED;
done:
    bn_sampler_destroy(s.sampler);
    free(s.answer);
    free(s.logits);
    free(s.piece);
    return rc;
}
