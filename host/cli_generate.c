/*
 * `generate` and `logits`: load a model, pick a backend, run the engine.
 * `generate --chat` opens the same way, then hands over to cli_chat.c.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "chat.h"
#include "cli.h"
#include "cli_chat.h"
#include "cli_engine.h"
#include "cli_interrupt.h"
#include "cli_output.h"
#include "engine.h"
#include "model.h"
#include "sampler.h"
#include "tokenizer.h"

struct run_opts {
    const char *model;
    const char *prompt;      /* -p TEXT                   */
    const char *prompt_file; /* -f FILE                   */
    const char *tokens;      /* --tokens "1 2 3"          */
    const char *device;
    const char *out;         /* logits: -o FILE           */
    long n_predict;
    long n_ctx;
    long n_batch;
    long n_threads;
    bool head_q8;            /* --head q8                 */
    enum bn_kv_type kv_type;
    bool ids;                /* print generated ids         */
    bool special;            /* print control tokens' text  */
    bool all;                /* logits at every position    */
    bool ignore_eos;
    bool no_bos;
    bool seed_given;
    bool n_given;            /* -n was given              */
    bool chat;               /* --chat                    */
    const char *system;      /* --system TEXT             */
    const char *chat_template; /* --chat-template NAME    */
    bool verbose_prompt;     /* prompt ids on stderr      */
    bool ctx_shift;          /* --ctx-shift               */
    struct bn_sampler_params sp;
};

static void print_generate_help(void)
{
    printf("usage: bitnet-vk generate -m MODEL (-p TEXT | -f FILE | --tokens \"1 2 3\" | --chat) [options]\n"
           "  -m, --model FILE       GGUF model (bitnet-b1.58 I2_S, bitnet/llama TQ1_0/TQ2_0)\n"
           "  -p, --prompt TEXT      prompt text\n"
           "  -f, --file FILE        read the prompt from a file (bytes verbatim)\n"
           "      --tokens \"IDS\"     prompt as token ids (no BOS is added)\n"
           "  -n, --n-predict N      tokens to generate (default 64; -1 = until the context is full,\n"
           "                         0 = none: evaluate the prompt only)\n"
           "  -c, --ctx-size N       context length (default or 0: the model's, at most 4096)\n"
           "  -b, --batch-size N     most prompt tokens per forward pass (default 512)\n"
           "  -t, --threads N        CPU threads (default or -1: the physical cores)\n"
           "      --head H           f16 | q8: head from the file, or an int8 copy made at load\n"
           "                         (half the bytes per token; see docs/numerics.md)\n"
           "      --device D         auto | cpu | vulkan | vulkan:N | lavapipe (default auto)\n"
           "      --kv-type T        f16 | f32 KV cache (default f16)\n"
           "      --temp T           temperature, 0 = greedy (default 0.8)\n"
           "      --top-k N          (default 40, 0 = off)\n"
           "      --top-p P          (default 0.95, 1 = off)\n"
           "      --min-p P          (default 0.05, 0 = off)\n"
           "      --repeat-penalty R (default 1.0 = off)\n"
           "      --repeat-last-n N  (default 64, -1 = whole context)\n"
           "  -s, --seed N           sampler seed (default or -1: random, printed on stderr)\n"
           "      --ids              print generated token ids instead of text\n"
           "      --special          print control tokens (<|eot_id|>, ...) as their text\n"
           "      --ignore-eos       never pick an end-of-generation token: generate all -n tokens\n"
           "      --ctx-shift        when the context is full, keep its last half and go on\n"
           "                         (default: stop with a message)\n"
           "      --no-bos           do not add BOS to a text prompt\n"
           "      --chat             interactive chat: one message per line on stdin, Ctrl-D ends;\n"
           "                         -n limits each answer (default: until the model ends it)\n"
           "      --system TEXT      chat: the system message (-p TEXT with --chat is the same)\n"
           "      --chat-template T  chat: bitnet | llama3 | none (default: from the model)\n"
           "      --verbose-prompt   print the prompt token ids on stderr (chat: each turn's and answer's)\n");
}

static void print_logits_help(void)
{
    printf("usage: bitnet-vk logits -m MODEL --tokens \"1 2 3\" -o OUT.f32 [--all] [options]\n"
           "  writes raw little-endian float32 logits to OUT.f32 (\"-\": standard output):\n"
           "  the last position (n_vocab floats), or every position with --all\n"
           "  (n_tokens * n_vocab floats)\n"
           "  options: -c N, -b N, -t N, --device D, --kv-type f16|f32, --head f16|q8\n");
}

/* Returns 0 to go on, or an exit code (with the message printed). -1: help shown. */
static int parse_opts(int argc, char **argv, bool logits_cmd, struct run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->n_predict = 64;
    o->n_batch = 512;
    o->kv_type = BN_KV_F16;
    o->sp = bn_sampler_default_params();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = NULL;
        long l;
        uint64_t u;
#define VALUE()                                                  \
    do {                                                         \
        if (!(v = cli_flag_value(argc, argv, &i))) return 1;     \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (logits_cmd) print_logits_help();
            else print_generate_help();
            return -1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o->model = v;
        } else if (!strcmp(a, "--tokens")) {
            VALUE();
            o->tokens = v;
        } else if (!strcmp(a, "--device")) {
            VALUE();
            o->device = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            VALUE();
            if (!cli_parse_long(a, v, 0, 1 << 20, &o->n_ctx)) return 1;
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            VALUE();
            if (!cli_parse_long(a, v, 1, 1 << 20, &o->n_batch)) return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VALUE();
            if (!cli_parse_long(a, v, -1, 1024, &o->n_threads)) return 1;
            if (o->n_threads == 0) return cli_fail(1, "-t: 0 threads; give N >= 1, or -1 for the default");
            if (o->n_threads < 0) o->n_threads = 0; /* -1, as in llama.cpp: the default */
        } else if (!strcmp(a, "--head")) {
            VALUE();
            if (!strcmp(v, "q8")) o->head_q8 = true;
            else if (!strcmp(v, "f16")) o->head_q8 = false;
            else return cli_fail(1, "--head: '%s' is not f16 or q8", v);
        } else if (!strcmp(a, "--kv-type")) {
            VALUE();
            if (!strcmp(v, "f16")) o->kv_type = BN_KV_F16;
            else if (!strcmp(v, "f32")) o->kv_type = BN_KV_F32;
            else return cli_fail(1, "--kv-type: '%s' is not f16 or f32", v);
        } else if (logits_cmd && !strcmp(a, "-o")) {
            VALUE();
            o->out = v;
        } else if (logits_cmd && !strcmp(a, "--all")) {
            o->all = true;
        } else if (!logits_cmd && (!strcmp(a, "-p") || !strcmp(a, "--prompt"))) {
            VALUE();
            o->prompt = v;
        } else if (!logits_cmd && (!strcmp(a, "-f") || !strcmp(a, "--file"))) {
            VALUE();
            o->prompt_file = v;
        } else if (!logits_cmd && (!strcmp(a, "-n") || !strcmp(a, "--n-predict"))) {
            VALUE();
            if (!cli_parse_long(a, v, -1, 1 << 24, &l)) return 1;
            o->n_predict = l;
            o->n_given = true;
        } else if (!logits_cmd && !strcmp(a, "--temp")) {
            VALUE();
            if (!cli_parse_float(a, v, -1e9f, 1e9f, &o->sp.temp)) return 1;
        } else if (!logits_cmd && !strcmp(a, "--top-k")) {
            VALUE();
            if (!cli_parse_long(a, v, 0, 1 << 30, &l)) return 1;
            o->sp.top_k = (int32_t)l;
        } else if (!logits_cmd && !strcmp(a, "--top-p")) {
            VALUE();
            if (!cli_parse_float(a, v, 0.0f, 1.0f, &o->sp.top_p)) return 1;
        } else if (!logits_cmd && !strcmp(a, "--min-p")) {
            VALUE();
            if (!cli_parse_float(a, v, 0.0f, 1.0f, &o->sp.min_p)) return 1;
        } else if (!logits_cmd && !strcmp(a, "--repeat-penalty")) {
            VALUE();
            if (!cli_parse_float(a, v, 1e-6f, 1e6f, &o->sp.repeat_penalty)) return 1;
        } else if (!logits_cmd && !strcmp(a, "--repeat-last-n")) {
            VALUE();
            if (!cli_parse_long(a, v, -1, 1 << 24, &l)) return 1;
            o->sp.repeat_last_n = (int32_t)l;
        } else if (!logits_cmd && (!strcmp(a, "-s") || !strcmp(a, "--seed"))) {
            VALUE();
            o->seed_given = strcmp(v, "-1") != 0; /* -1, as in llama.cpp: a random seed */
            if (o->seed_given && !cli_parse_u64(a, v, &u)) return 1;
            o->sp.seed = o->seed_given ? u : 0;
        } else if (!logits_cmd && !strcmp(a, "--ids")) {
            o->ids = true;
        } else if (!logits_cmd && !strcmp(a, "--special")) {
            o->special = true;
        } else if (!logits_cmd && !strcmp(a, "--ignore-eos")) {
            o->ignore_eos = true;
        } else if (!logits_cmd && !strcmp(a, "--ctx-shift")) {
            o->ctx_shift = true;
        } else if (!logits_cmd && !strcmp(a, "--no-bos")) {
            o->no_bos = true;
        } else if (!logits_cmd && !strcmp(a, "--chat")) {
            o->chat = true;
        } else if (!logits_cmd && !strcmp(a, "--system")) {
            VALUE();
            o->system = v;
        } else if (!logits_cmd && !strcmp(a, "--chat-template")) {
            VALUE();
            enum bn_chat_format f;
            if (!bn_chat_format_from_name(v, &f))
                return cli_fail(1, "--chat-template: '%s' is not bitnet, llama3 or none", v);
            o->chat_template = v;
        } else if (!logits_cmd && !strcmp(a, "--verbose-prompt")) {
            o->verbose_prompt = true;
        } else {
            return cli_fail(1, "%s: unknown option '%s' (try --help)", logits_cmd ? "logits" : "generate", a);
        }
#undef VALUE
    }
    if (!o->model) return cli_fail(1, "-m MODEL is required");
    int sources = (o->prompt != NULL) + (o->prompt_file != NULL) + (o->tokens != NULL);
    if (logits_cmd) {
        if (!o->tokens) return cli_fail(1, "logits: --tokens \"IDS\" is required");
        if (!o->out) return cli_fail(1, "logits: -o OUT.f32 is required");
    } else if (o->chat) {
        /* As in llama.cpp's and bitnet.cpp's conversation mode, -p is the
         * system message: the conversation itself comes from stdin. */
        if (o->prompt && o->system) return cli_fail(1, "generate --chat: -p and --system both give the system message");
        if (o->prompt) o->system = o->prompt;
        o->prompt = NULL;
        if (o->prompt_file || o->tokens)
            return cli_fail(1, "generate --chat reads the conversation from standard input: -f and --tokens do not "
                               "apply (the system message is --system TEXT or -p TEXT)");
        if (o->ids || o->ignore_eos || o->no_bos)
            return cli_fail(1, "generate --chat: --ids, --ignore-eos and --no-bos do not apply");
    } else if (sources != 1) {
        return cli_fail(1, "generate: give exactly one of -p TEXT, -f FILE, --tokens \"IDS\" or --chat");
    } else if (o->system || o->chat_template) {
        return cli_fail(1, "generate: --system and --chat-template need --chat");
    }
    return 0;
}

/* Everything a run holds, freed in reverse order by run_close. */
struct run {
    struct bn_model *model;
    struct bn_backend be;
    bn_engine *engine;
    bn_tokenizer *tok;
    double t_load;
    char note[256]; /* why the backend is not the first choice; printed once the input is known good */
};

static void run_close(struct run *r)
{
    bn_tokenizer_destroy(r->tok);
    bn_engine_destroy(r->engine);
    if (r->be.ctx) r->be.iface.destroy(r->be.ctx);
    bn_model_close(r->model);
}

static int run_open(const struct run_opts *o, struct run *r, bool want_tokenizer)
{
    char err[512];
    enum bn_status st;
    memset(r, 0, sizeof *r);
    double t0 = cli_now();
    if ((st = bn_model_open(o->model, &r->model, err, sizeof err)) != BN_OK)
        return cli_fail(bn_status_exit_code(st), "%s", err);
    if (want_tokenizer && (st = bn_tokenizer_create(r->model->gguf, &r->tok, err, sizeof err)) != BN_OK)
        return cli_fail(bn_status_exit_code(st), "%s", err);
    struct bn_backend_cpu_opts cpu = {.n_threads = (int)o->n_threads, .head_q8 = o->head_q8};
    struct bn_engine_params ep = bn_engine_default_params();
    ep.n_ctx = (uint32_t)o->n_ctx;
    ep.n_batch = (uint32_t)o->n_batch;
    ep.kv_type = o->kv_type;
    st = cli_open_engine(o->device, r->model, &cpu, &ep, &r->be, &r->engine, r->note, sizeof r->note, err, sizeof err);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);
    r->t_load = cli_now() - t0;
    return 0;
}

/* Checks ids against the vocabulary, then prints the backend note: bad input
 * must end with exactly one line on stderr, so the note waits for it. */
static int run_accept_input(struct run *r, const int32_t *ids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= r->model->hp.n_vocab)
            return cli_fail(1, "token id %d out of range (vocabulary has %u tokens)", (int)ids[i], r->model->hp.n_vocab);
    if (r->note[0]) fprintf(stderr, "bitnet-vk: %s\n", r->note);
    r->note[0] = '\0';
    cli_warn_context(r->model, r->engine);
    return 0;
}

/* The prompt's ids, and for a text prompt (-p or -f) the text itself in
 * *text (malloc'd; the caller frees it), which is echoed before the
 * continuation. */
static int prompt_ids(const struct run_opts *o, const struct run *r, int32_t **ids, uint32_t *n, char **text,
                      size_t *len)
{
    if (o->tokens) return cli_parse_tokens(o->tokens, ids, n) ? 0 : 1;
    int rc;
    if (o->prompt_file) {
        if ((rc = cli_read_file(o->prompt_file, text, len)) != 0) return rc;
    } else {
        *len = strlen(o->prompt);
        if (!(*text = malloc(*len + 1))) return cli_fail(3, "out of memory");
        memcpy(*text, o->prompt, *len + 1);
    }
    char err[512];
    size_t count = 0;
    bool bos = !o->no_bos && bn_tokenizer_add_bos(r->tok);
    enum bn_status st = bn_tokenizer_encode(r->tok, *text, *len, bos, true, ids, &count, err, sizeof err);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);
    if (count == 0) {
        free(*ids);
        *ids = NULL; /* the caller frees *ids on every path */
        return cli_fail(1, "the prompt is empty: nothing to start from");
    }
    *n = (uint32_t)count;
    return 0;
}

/* How each step's next token is chosen, and what the engine hands back for
 * it. Greedy decoding needs only the argmax: with a backend argmax op (the
 * GPU) the logits never leave the device, one id comes back per token.
 * Sampling with top-k and no penalty (which needs every logit) likewise
 * needs only the k best: ids and values come back, not the logits, and
 * bn_sampler_sample_candidates draws the token bn_sampler_sample would.
 * --ignore-eos takes the end-of-generation tokens out of the choice, as
 * llama.cpp's logit bias of -inf does: the engine is asked for that many
 * more candidates, and those tokens are dropped from them (or from the full
 * logits). */
enum pick_kind { PICK_ARGMAX, PICK_TOPK, PICK_LOGITS };

struct picker {
    enum pick_kind kind;
    bool greedy;          /* PICK_TOPK: the best allowed candidate, no draw      */
    uint32_t k_engine;    /* PICK_TOPK: candidates asked of the engine           */
    int32_t *ban;         /* --ignore-eos: the end-of-generation ids, never picked */
    uint32_t n_ban;
    const bn_tokenizer *tok;
    int32_t next;         /* PICK_ARGMAX: the engine's choice                     */
    int32_t ids[BN_ENGINE_TOPK_MAX];
    float *logits;        /* n_vocab floats; PICK_TOPK uses the first k_engine    */
};

/* False when out of memory. The banned ids are listed once here, not
 * looked up in the whole vocabulary at every token. */
static bool picker_init(struct picker *p, const struct bn_sampler_params *sp, const bn_tokenizer *tok, bool ignore_eos,
                        uint32_t n_vocab, float *logits)
{
    *p = (struct picker){.tok = tok, .logits = logits};
    uint32_t n_ban = 0;
    for (uint32_t id = 0; ignore_eos && id < n_vocab; id++) n_ban += bn_tokenizer_is_eog(tok, (int32_t)id);
    if (n_ban > 0 && !(p->ban = malloc(n_ban * sizeof *p->ban))) return false;
    for (uint32_t id = 0; n_ban > 0 && id < n_vocab; id++)
        if (bn_tokenizer_is_eog(tok, (int32_t)id)) p->ban[p->n_ban++] = (int32_t)id;
    const uint32_t kmax = n_vocab < BN_ENGINE_TOPK_MAX ? n_vocab : BN_ENGINE_TOPK_MAX;
    const bool penalty = sp->repeat_penalty != 1.0f;
    const uint32_t top_k = sp->top_k < (int32_t)n_vocab ? (uint32_t)sp->top_k : n_vocab;
    p->greedy = !(sp->temp > 0.0f);
    if (penalty) {
        p->kind = PICK_LOGITS;
    } else if (p->greedy) {
        p->kind = n_ban == 0 ? PICK_ARGMAX : n_ban + 1 <= kmax ? PICK_TOPK : PICK_LOGITS;
        p->k_engine = n_ban + 1;
    } else {
        p->kind = sp->top_k >= 1 && top_k + n_ban <= kmax ? PICK_TOPK : PICK_LOGITS;
        p->k_engine = top_k + n_ban;
    }
    return true;
}

static void picker_free(struct picker *p) { free(p->ban); }

static enum bn_status picker_eval(struct picker *p, bn_engine *e, const int32_t *toks, uint32_t n, char *err,
                                  size_t errlen)
{
    switch (p->kind) {
    case PICK_ARGMAX: return bn_engine_eval_argmax(e, toks, n, &p->next, err, errlen);
    case PICK_TOPK: return bn_engine_eval_topk(e, toks, n, p->k_engine, p->ids, p->logits, err, errlen);
    default: return bn_engine_eval(e, toks, n, false, p->logits, err, errlen);
    }
}

static int32_t picker_pick(struct picker *p, bn_sampler *s)
{
    if (p->kind == PICK_ARGMAX) return p->next;
    if (p->kind == PICK_LOGITS) {
        for (uint32_t i = 0; i < p->n_ban; i++) p->logits[p->ban[i]] = -INFINITY;
        return bn_sampler_sample(s, p->logits);
    }
    uint32_t n = 0; /* the candidates, best first, less the banned ones */
    for (uint32_t j = 0; j < p->k_engine; j++) {
        if (p->n_ban > 0 && bn_tokenizer_is_eog(p->tok, p->ids[j])) continue;
        p->ids[n] = p->ids[j];
        p->logits[n++] = p->logits[j];
    }
    return p->greedy ? p->ids[0] : bn_sampler_sample_candidates(s, p->ids, p->logits, n);
}

int cli_generate(int argc, char **argv)
{
    struct run_opts o;
    int rc = parse_opts(argc, argv, false, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    if (!o.seed_given) o.sp.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);

    struct run r;
    int32_t *prompt = NULL;
    char *text = NULL; /* the prompt as text, echoed */
    size_t text_len = 0;
    float *logits = NULL;
    bn_sampler *sampler = NULL;
    char *piece = NULL;
    int32_t *hist = NULL; /* --ctx-shift: the tokens in the context, then the next one */
    struct picker pick = {0};
    char err[512];
    enum bn_status st;
    if ((rc = run_open(&o, &r, true)) != 0) goto done;
    cli_interrupt_install();
    if (o.chat) {
        struct cli_chat_opts co = {
            .model = r.model,
            .engine = r.engine,
            .tok = r.tok,
            .sp = o.sp,
            .system = o.system,
            .format = o.chat_template,
            .n_predict = o.n_given ? o.n_predict : -1,
            .verbose_prompt = o.verbose_prompt,
            .special = o.special,
            .t_load = r.t_load,
            .backend_name = r.be.iface.name,
        };
        if (r.note[0]) fprintf(stderr, "bitnet-vk: %s\n", r.note);
        cli_warn_context(r.model, r.engine);
        rc = cli_chat(&co);
        goto done;
    }
    uint32_t n_prompt = 0;
    if ((rc = prompt_ids(&o, &r, &prompt, &n_prompt, &text, &text_len)) != 0) goto done;
    if (o.verbose_prompt) {
        fprintf(stderr, "bitnet-vk: prompt (%u tokens):", n_prompt);
        for (uint32_t i = 0; i < n_prompt; i++) fprintf(stderr, " %d", (int)prompt[i]);
        fputc('\n', stderr);
    }

    const uint32_t n_ctx = bn_engine_n_ctx(r.engine), n_vocab = r.model->hp.n_vocab;
    if (n_prompt > n_ctx) {
        rc = cli_fail(1, "the prompt has %u tokens; the context holds %u (use -c to raise it)", n_prompt, n_ctx);
        goto done;
    }
    if ((rc = run_accept_input(&r, prompt, n_prompt)) != 0) goto done;
    logits = malloc((size_t)n_vocab * sizeof *logits);
    piece = malloc(bn_tokenizer_max_piece(r.tok) + 64);
    if (o.ctx_shift && (hist = malloc(((size_t)n_ctx + 1) * sizeof *hist)) != NULL)
        memcpy(hist, prompt, n_prompt * sizeof *hist);
    if (!logits || !piece || (o.ctx_shift && !hist)) {
        rc = cli_fail(3, "out of memory");
        goto done;
    }
    /* --repeat-last-n -1 is the context, as in llama.cpp: with --ctx-shift,
     * tokens shifted out of it are no longer penalized. */
    if (o.sp.repeat_last_n < 0) o.sp.repeat_last_n = (int32_t)n_ctx;
    if ((st = bn_sampler_create(&o.sp, n_vocab, &sampler, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    for (uint32_t i = 0; i < n_prompt; i++) bn_sampler_accept(sampler, prompt[i]);

    if (!picker_init(&pick, &o.sp, r.tok, o.ignore_eos, n_vocab, logits)) {
        rc = cli_fail(3, "out of memory");
        goto done;
    }
    double t0 = cli_now();
    if ((st = picker_eval(&pick, r.engine, prompt, n_prompt, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    double t_prompt = cli_now() - t0;

    /* Echo the prompt as given, like a completion. */
    if (!o.ids && text) fwrite(text, 1, text_len, stdout);
    struct bn_detok detok = {0};
    uint32_t n_gen = 0;
    const uint32_t limit = o.n_predict < 0 ? UINT32_MAX : (uint32_t)o.n_predict;
    t0 = cli_now();
    while (n_gen < limit) {
        int32_t tok = picker_pick(&pick, sampler);
        bn_sampler_accept(sampler, tok);
        n_gen++;
        bool eog = bn_tokenizer_is_eog(r.tok, tok); /* never, with --ignore-eos */
        if (o.ids) {
            printf("%s%d", n_gen > 1 ? " " : "", (int)tok);
        } else if (!eog && (o.special || !bn_tokenizer_is_control(r.tok, tok))) {
            size_t k = bn_tokenizer_decode_stream(r.tok, &detok, tok, piece, bn_tokenizer_max_piece(r.tok) + 64);
            fwrite(piece, 1, k, stdout);
        }
        if (!cli_stdout_flush()) break; /* nobody reads on: said below */
        if (eog || n_gen == limit) break;
        if (cli_interrupted()) {
            fprintf(stderr, "\nbitnet-vk: interrupted: stopping\n");
            break;
        }
        const int32_t *feed = &tok;
        uint32_t n_feed = 1;
        if (hist) hist[bn_engine_pos(r.engine)] = tok;
        if (bn_engine_pos(r.engine) >= n_ctx) {
            if (!hist) {
                fprintf(stderr, "\nbitnet-vk: context full (%u tokens): stopping\n", n_ctx);
                break;
            }
            /* --ctx-shift: the cache cannot drop its oldest entries in
             * place (RoPE has baked their positions in), so the newest
             * half of the text, this token last, is evaluated again from
             * position 0: one prompt evaluation per n_ctx / 2 tokens. */
            n_feed = n_ctx / 2 > 0 ? n_ctx / 2 : 1;
            memmove(hist, hist + (n_ctx + 1 - n_feed), n_feed * sizeof *hist);
            feed = hist;
            bn_engine_reset(r.engine);
        }
        if ((st = picker_eval(&pick, r.engine, feed, n_feed, err, sizeof err)) != BN_OK) {
            printf("\n");
            rc = cli_fail(bn_status_exit_code(st), "%s", err);
            goto done;
        }
    }
    double t_gen = cli_now() - t0;
    if (!o.ids) fwrite(piece, 1, bn_tokenizer_decode_flush(r.tok, &detok, piece, bn_tokenizer_max_piece(r.tok) + 64), stdout);
    printf("\n");
    if (!cli_stdout_flush()) {
        rc = cli_fail(3, "cannot write to standard output: stopped after %u tokens", n_gen);
        goto done;
    }
    fprintf(stderr,
            "bitnet-vk: load %.0f ms | prompt %u tokens, %.2f tok/s | generation %u tokens, %.2f tok/s | %s | seed %llu\n",
            r.t_load * 1e3, n_prompt, n_prompt / (t_prompt > 0 ? t_prompt : 1e-9), n_gen,
            n_gen / (t_gen > 0 ? t_gen : 1e-9), r.be.iface.name, (unsigned long long)o.sp.seed);
    rc = cli_interrupted() ? CLI_EXIT_INTERRUPTED : 0;
done:
    picker_free(&pick);
    free(hist);
    free(piece);
    bn_sampler_destroy(sampler);
    free(logits);
    free(text);
    free(prompt);
    run_close(&r);
    return rc;
}

int cli_logits(int argc, char **argv)
{
    struct run_opts o;
    int rc = parse_opts(argc, argv, true, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    struct run r;
    int32_t *ids = NULL;
    uint32_t n = 0;
    float *logits = NULL;
    struct cli_output out = {0};
    char err[512];
    enum bn_status st;
    if (!cli_parse_tokens(o.tokens, &ids, &n)) return 1;
    /* Opened first, so an unwritable path fails before any work. */
    if ((rc = cli_output_open(&out, o.out, "-o")) != 0) {
        free(ids);
        return rc;
    }
    if ((rc = run_open(&o, &r, false)) != 0) goto done;
    if (n > bn_engine_n_ctx(r.engine)) {
        rc = cli_fail(1, "%u tokens do not fit the context of %u (use -c to raise it)", n, bn_engine_n_ctx(r.engine));
        goto done;
    }
    if ((rc = run_accept_input(&r, ids, n)) != 0) goto done;
    const size_t n_vocab = r.model->hp.n_vocab;
    const size_t rows = o.all ? n : 1;
    logits = malloc(rows * n_vocab * sizeof *logits);
    if (!logits) {
        rc = cli_fail(3, "out of memory for %zu logits", rows * n_vocab);
        goto done;
    }
    if ((st = bn_engine_eval(r.engine, ids, n, o.all, logits, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    /* The file format is little-endian float32; so is every host we build for. */
    fwrite(logits, sizeof *logits, rows * n_vocab, out.f);
    rc = cli_output_commit(&out);
done:
    cli_output_abort(&out);
    free(logits);
    free(ids);
    run_close(&r);
    return rc;
}
