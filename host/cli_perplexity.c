/*
 * `perplexity`: how well a model predicts a text file.
 *
 * Method (tools/train/reference.py computes the same, in float64):
 * the file's text is tokenized without BOS. With a model that adds BOS
 * (tokenizer.ggml.add_bos_token), the tokens are cut into consecutive,
 * non-overlapping chunks of n_ctx - 1; each chunk runs as BOS + chunk from
 * position 0 (the KV cache is cleared between chunks) and every token of the
 * chunk is scored given BOS and the chunk's earlier tokens. Without BOS the
 * chunks are n_ctx tokens and each chunk's first token is context only.
 * Every text token is thus scored at most once, none with context from
 * another chunk. perplexity = exp(-(sum of log p(token)) / scored tokens);
 * the log-softmax is accumulated in double.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "cli_engine.h"
#include "engine.h"
#include "model.h"
#include "tokenizer.h"

struct ppl_opts {
    const char *model;
    const char *file;
    const char *device;
    long n_ctx;
    long n_batch;
    long n_threads;
    enum bn_kv_type kv_type;
};

static void print_help(void)
{
    printf("usage: bitnet-vk perplexity -m MODEL -f TEXT [options]\n"
           "  perplexity of the model on a text file: the tokens (no BOS) in chunks of\n"
           "  n_ctx - 1, each run as BOS + chunk from position 0, every chunk token scored\n"
           "  options:\n"
           "      -c N               context per chunk (default or 0: the model's, at most 4096)\n"
           "      -b N               tokens per forward call (default 512)\n"
           "      -t N               CPU threads (default or -1: the physical cores)\n"
           "      --device D         auto | cpu | vulkan[:N] (default auto)\n"
           "      --kv-type T        f16 | f32 KV cache (default f16)\n");
}

static int parse(int argc, char **argv, struct ppl_opts *o)
{
    memset(o, 0, sizeof *o);
    o->device = "auto";
    o->n_batch = 512;
    o->kv_type = BN_KV_F16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help();
            return -1;
        }
        bool has_value = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "-f") || !strcmp(a, "--file") ||
                         !strcmp(a, "-c") || !strcmp(a, "--ctx-size") || !strcmp(a, "-b") ||
                         !strcmp(a, "--batch-size") || !strcmp(a, "-t") || !strcmp(a, "--threads") ||
                         !strcmp(a, "--device") || !strcmp(a, "--kv-type");
        if (!has_value) return cli_fail(1, "perplexity: unknown option '%s' (try --help)", a);
        if (!(v = cli_flag_value(argc, argv, &i))) return 1;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            o->model = v;
        } else if (!strcmp(a, "-f") || !strcmp(a, "--file")) {
            o->file = v;
        } else if (!strcmp(a, "-c") || !strcmp(a, "--ctx-size")) {
            if (!cli_parse_long(a, v, 0, 1 << 20, &o->n_ctx)) return 1; /* 0: the model's */
        } else if (!strcmp(a, "-b") || !strcmp(a, "--batch-size")) {
            if (!cli_parse_long(a, v, 1, 1 << 20, &o->n_batch)) return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            if (!cli_parse_long(a, v, -1, 1024, &o->n_threads)) return 1;
            if (o->n_threads == 0) return cli_fail(1, "-t: 0 threads; give N >= 1, or -1 for the default");
            if (o->n_threads < 0) o->n_threads = 0; /* -1, as in llama.cpp: the default */
        } else if (!strcmp(a, "--device")) {
            o->device = v;
        } else { /* --kv-type */
            if (!strcmp(v, "f16")) o->kv_type = BN_KV_F16;
            else if (!strcmp(v, "f32")) o->kv_type = BN_KV_F32;
            else return cli_fail(1, "--kv-type: '%s' is not f16 or f32", v);
        }
    }
    if (!o->model) return cli_fail(1, "perplexity: -m MODEL is required");
    if (!o->file) return cli_fail(1, "perplexity: -f TEXT is required");
    return 0;
}

/* log p(target) under the softmax of one row of logits, in double. */
static double log_prob(const float *z, uint32_t n, int32_t target)
{
    float mx = z[0];
    for (uint32_t i = 1; i < n; i++)
        if (z[i] > mx) mx = z[i];
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += exp((double)z[i] - (double)mx);
    return (double)z[target] - (double)mx - log(sum);
}

int cli_perplexity(int argc, char **argv)
{
    struct ppl_opts o;
    int rc = parse(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;

    char err[512], note[256];
    enum bn_status st;
    struct bn_model *model = NULL;
    struct bn_backend be = {0};
    bn_engine *engine = NULL;
    bn_tokenizer *tok = NULL;
    char *text = NULL;
    size_t len = 0, n_tok = 0;
    int32_t *ids = NULL, *chunk = NULL;
    float *logits = NULL;

    double t0 = cli_now();
    if ((st = bn_model_open(o.model, &model, err, sizeof err)) != BN_OK ||
        (st = bn_tokenizer_create(model->gguf, &tok, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    struct bn_backend_cpu_opts cpu = {.n_threads = (int)o.n_threads};
    struct bn_engine_params ep = bn_engine_default_params();
    ep.n_ctx = (uint32_t)o.n_ctx;
    ep.n_batch = (uint32_t)o.n_batch;
    ep.kv_type = o.kv_type;
    if ((st = cli_open_engine(o.device, model, &cpu, &ep, &be, &engine, note, sizeof note, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }
    if (note[0]) fprintf(stderr, "bitnet-vk: %s\n", note);
    cli_warn_context(model, engine);
    if ((rc = cli_read_file(o.file, &text, &len)) != 0) goto done;
    /* Plain text: "<|...|>" in the file stays text (no special parsing). */
    if ((st = bn_tokenizer_encode(tok, text, len, false, false, &ids, &n_tok, err, sizeof err)) != BN_OK) {
        rc = cli_fail(bn_status_exit_code(st), "%s", err);
        goto done;
    }

    const uint32_t n_ctx = bn_engine_n_ctx(engine), n_vocab = model->hp.n_vocab;
    const int32_t bos = bn_tokenizer_bos(tok);
    const bool use_bos = bos >= 0 && bn_tokenizer_add_bos(tok);
    /* Tokens of the text per chunk, and how many lead a chunk unscored. */
    const uint32_t step = use_bos ? n_ctx - 1 : n_ctx;
    const uint32_t lead = use_bos ? 1 : 0;
    if (n_ctx < 2) {
        rc = cli_fail(1, "perplexity: the context must hold at least 2 tokens");
        goto done;
    }
    if (n_tok < (use_bos ? 1u : 2u)) {
        rc = cli_fail(1, "%s: too few tokens to score (%zu)", o.file, n_tok);
        goto done;
    }
    /* Logits for at most n_batch rows at a time: a chunk runs in pieces. */
    const uint32_t rows = o.n_batch < (long)n_ctx ? (uint32_t)o.n_batch : n_ctx;
    chunk = malloc((size_t)n_ctx * sizeof *chunk);
    logits = malloc((size_t)rows * n_vocab * sizeof *logits);
    if (!chunk || !logits) {
        rc = cli_fail(3, "out of memory");
        goto done;
    }
    fprintf(stderr, "bitnet-vk: %zu tokens, %s chunks of %u, n_ctx %u\n", n_tok, use_bos ? "BOS +" : "plain",
            step, n_ctx);

    double sum = 0.0, t_eval = cli_now();
    size_t scored = 0, n_chunks = 0;
    for (size_t start = 0; start < n_tok; start += step) {
        uint32_t n_text = (uint32_t)(n_tok - start < step ? n_tok - start : step);
        uint32_t n = lead + n_text;
        if (n < 2) break; /* a last chunk of one token has nothing to score without BOS */
        if (use_bos) chunk[0] = bos;
        memcpy(chunk + lead, ids + start, (size_t)n_text * sizeof *chunk);
        bn_engine_reset(engine);
        for (uint32_t p = 0; p < n; p += rows) {
            uint32_t m = n - p < rows ? n - p : rows;
            if ((st = bn_engine_eval(engine, chunk + p, m, true, logits, err, sizeof err)) != BN_OK) {
                rc = cli_fail(bn_status_exit_code(st), "%s", err);
                goto done;
            }
            /* The row of position i predicts chunk[i + 1]. */
            for (uint32_t i = p; i < p + m && i + 1 < n; i++)
                sum += log_prob(logits + (size_t)(i - p) * n_vocab, n_vocab, chunk[i + 1]);
        }
        scored += n - 1;
        n_chunks++;
    }
    double secs = cli_now() - t_eval;
    printf("perplexity = %.6f over %zu tokens (%zu chunks, n_ctx %u), mean log-likelihood %.6f\n",
           exp(-sum / (double)scored), scored, n_chunks, n_ctx, sum / (double)scored);
    fprintf(stderr, "bitnet-vk: load %.2f s, eval %.2f s (%.1f tok/s)\n", t_eval - t0, secs,
            secs > 0 ? (double)(scored + n_chunks * lead) / secs : 0.0);
    rc = 0;

done:
    free(logits);
    free(chunk);
    free(ids);
    free(text);
    bn_tokenizer_destroy(tok);
    bn_engine_destroy(engine);
    if (be.ctx) be.iface.destroy(be.ctx);
    bn_model_close(model);
    return rc;
}
