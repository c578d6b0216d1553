/*
 * The golden models of ../shared/testdata/golden through the Vulkan backend
 * (tests/test_golden.c is the CPU version): logits against the independent
 * float64 reference on every prompt and, for seq9, every position (NMSE
 * <= 1e-3 with an F32 cache and argmax equal on every row; <= 3e-3 with the
 * default F16 cache, argmax checked where the reference margin is clear),
 * and the 16 greedy tokens exactly, decoded with the backend's argmax op in
 * one queue submission per token. Then: the plain-integer ternary shaders
 * and memory the host cannot map (staged transfers, BN_VK_FORCE_STAGING)
 * give the same logits bit for bit; tensors split into row ranges
 * (BN_VK_MAX_BUFFER_RANGE) give the same logits bit for bit; and the
 * command line, `logits` and `generate --device vulkan:N`, meets the same
 * bar. Validation errors (BN_VK_VALIDATION=1) fail the test.
 */
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "test_util.h"
#include "test_vk_util.h"
#include "vk_device.h"

static const char *models[] = {"i2s_bitnet_b158", "tq2_bitnet"};
static const int seq_lens[] = {1, 9, 40};
#define N_SEQ 3

struct run {
    enum bn_kv_type kv;
    uint32_t n_ctx, n_batch;
    bool check;          /* compare with the reference (else only capture) */
    bool staged;         /* BN_VK_FORCE_STAGING: each read is a transfer   */
    float *logits[N_SEQ]; /* captured: every position of each prompt       */
};

static void run_free(struct run *r)
{
    for (int s = 0; s < N_SEQ; s++) free(r->logits[s]);
}

/* Every prompt of one model through `be`: logits of every position into
 * r->logits, checked against the reference when r->check; then greedy
 * decoding through the argmax op. */
static void run_model(struct bn_backend *be, const char *td, const char *name, struct run *r)
{
    char path[1024], err[512];
    struct bn_model *m;
    snprintf(path, sizeof path, "%s/golden/%s/model.gguf", td, name);
    if (bn_model_open(path, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    enum bn_status st = be->iface.supports(be->ctx, m, err, sizeof err);
    if (st == BN_OK) st = be->iface.upload_weights(be->ctx, m, err, sizeof err);
    CHECKF(st == BN_OK, "%s: %s", name, err);
    const uint32_t V = m->hp.n_vocab;
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = r->n_ctx;
    p.n_batch = r->n_batch;
    p.kv_type = r->kv;
    const char *kvn = r->kv == BN_KV_F16 ? "f16" : "f32";
    const double tol = r->kv == BN_KV_F16 ? 3e-3 : 1e-3;
    bn_engine *e = NULL;
    if (st == BN_OK && bn_engine_create(m, be, &p, &e, err, sizeof err) != BN_OK) CHECKF(0, "%s", err);
    for (int s = 0; e && s < N_SEQ; s++) {
        const int L = seq_lens[s];
        int32_t tokens[64], want[16], got[16];
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.tokens.txt", td, name, L);
        CHECKF(test_read_ids(path, tokens, 64) == L, "%s: expected %d tokens", path, L);
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.greedy.txt", td, name, L);
        CHECKF(test_read_ids(path, want, 16) == 16, "%s: expected 16 ids", path);
        float *logits = r->logits[s] = calloc((size_t)L * V, sizeof *logits);
        bn_engine_reset(e);
        CHECKF(bn_engine_eval(e, tokens, (uint32_t)L, true, logits, err, sizeof err) == BN_OK, "%s", err);
        if (r->check) {
            size_t size = 0;
            snprintf(path, sizeof path, "%s/golden/%s/seq%d.logits.f32", td, name, L);
            float *ref = test_read_file(path, &size);
            CHECKF(ref && size == V * sizeof(float), "%s: size %zu", path, size);
            const float *last = logits + (size_t)(L - 1) * V;
            double nm = ref ? test_nmse(last, ref, V) : 1.0;
            CHECKF(nm <= tol, "%s seq%d kv %s: NMSE %.3g > %.3g", name, L, kvn, nm, tol);
            CHECKF(ref && test_argmax(last, V) == test_argmax(ref, V), "%s seq%d kv %s: argmax differs", name, L, kvn);
            printf("%s seq%-2d kv %s n_batch %u: last-row NMSE %.3g", name, L, kvn, r->n_batch, nm);
            free(ref);
            if (L == 9) {
                snprintf(path, sizeof path, "%s/golden/%s/seq9.all_logits.f32", td, name);
                float *all = test_read_file(path, &size);
                CHECKF(all && size == 9 * V * sizeof(float), "%s", path);
                double worst = 0;
                for (int row = 0; all && row < 9; row++) {
                    const float *w = all + (size_t)row * V, *g = logits + (size_t)row * V;
                    double nr = test_nmse(g, w, V);
                    worst = nr > worst ? nr : worst;
                    CHECKF(nr <= tol, "%s seq9 row %d kv %s: NMSE %.3g", name, row, kvn, nr);
                    if (r->kv == BN_KV_F32 || test_top2_margin(w, V) >= TEST_F16_ARGMAX_MIN_MARGIN)
                        CHECKF(test_argmax(g, V) == test_argmax(w, V), "%s seq9 row %d kv %s: argmax differs", name, row, kvn);
                }
                printf(", worst row NMSE %.3g", worst);
                free(all);
            }
            printf("\n");
        }
        /* Greedy through the argmax op: one submission per forward pass (the
         * prompt takes one per batch), so one per generated token. */
        bn_engine_reset(e);
        const struct bn_backend_vk_stats before = test_vk_stats(be);
        bool ok = bn_engine_eval_argmax(e, tokens, (uint32_t)L, &got[0], err, sizeof err) == BN_OK;
        for (int i = 1; ok && i < 16; i++) ok = bn_engine_eval_argmax(e, &got[i - 1], 1, &got[i], err, sizeof err) == BN_OK;
        CHECKF(ok, "%s seq%d: greedy: %s", name, L, err);
        const struct bn_backend_vk_stats after = test_vk_stats(be);
        const uint64_t passes = (L + r->n_batch - 1) / r->n_batch + 15, reads = r->staged ? 16 : 0;
        CHECKF(after.submits - before.submits == passes && after.transfer_submits - before.transfer_submits == reads,
               "%s seq%d: %llu submissions (+%llu transfers) for 16 greedy tokens", name, L,
               (unsigned long long)(after.submits - before.submits),
               (unsigned long long)(after.transfer_submits - before.transfer_submits));
        if (r->check)
            CHECKF(ok && memcmp(got, want, sizeof got) == 0, "%s seq%d kv %s: greedy tokens differ", name, L, kvn);
    }
    bn_engine_destroy(e);
    bn_model_close(m);
}

/* Bit-equal logits of two captures of the same prompts. */
static void same_logits(const struct run *a, const struct run *b, uint32_t n_vocab, const char *what)
{
    for (int s = 0; s < N_SEQ; s++) {
        const size_t n = (size_t)seq_lens[s] * n_vocab;
        CHECKF(a->logits[s] && b->logits[s] && memcmp(a->logits[s], b->logits[s], n * sizeof(float)) == 0,
               "%s: seq%d logits differ", what, seq_lens[s]);
    }
}

/* Logits of two captures within an NMSE bar, every position of each prompt. */
static void near_logits(const struct run *a, const struct run *b, uint32_t n_vocab, double tol, const char *what)
{
    for (int s = 0; s < N_SEQ; s++) {
        const size_t n = (size_t)seq_lens[s] * n_vocab;
        const double nm = a->logits[s] && b->logits[s] ? test_nmse(b->logits[s], a->logits[s], n) : 1.0;
        CHECKF(nm <= tol, "%s: seq%d NMSE %.3g > %.3g", what, seq_lens[s], nm, tol);
        printf("%s seq%-2d: NMSE %.3g against the F16 head\n", what, seq_lens[s], nm);
    }
}

static uint32_t model_vocab(const char *td, const char *name)
{
    char path[1024], err[256];
    struct bn_model *m;
    snprintf(path, sizeof path, "%s/golden/%s/model.gguf", td, name);
    if (bn_model_open(path, &m, err, sizeof err) != BN_OK) return 0;
    uint32_t v = m->hp.n_vocab;
    bn_model_close(m);
    return v;
}

static void check_clean(const struct bn_backend *be, const char *what)
{
    struct bn_backend_vk_stats s = test_vk_stats(be);
    CHECKF(s.validation_errors == 0, "%s: %u validation errors", what, s.validation_errors);
}

/* `logits --device vulkan:N` and `generate --device vulkan:N`, as a user runs them. */
static void check_cli(const char *td, const char *name, int dev)
{
    char cmd[4096], path[1024], out[1024], list[1024] = "";
    int32_t tokens[64], want[16];
    snprintf(path, sizeof path, "%s/golden/%s/seq9.tokens.txt", td, name);
    int n = test_read_ids(path, tokens, 64);
    for (int i = 0; i < n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? " " : "", tokens[i]);
    snprintf(path, sizeof path, "%s/golden/%s/seq9.greedy.txt", td, name);
    test_read_ids(path, want, 16);

    snprintf(out, sizeof out, "%s/vk_golden_%s.f32", BN_BINARY_DIR, name);
    remove(out);
    snprintf(cmd, sizeof cmd, "'%s' logits -m '%s/golden/%s/model.gguf' --tokens '%s' -o '%s' --all --kv-type f32 --device vulkan:%d",
             BN_CLI, td, name, list, out, dev);
    CHECKF(system(cmd) == 0, "command failed: %s", cmd);
    size_t size = 0, rsize = 0;
    float *got = test_read_file(out, &size);
    snprintf(path, sizeof path, "%s/golden/%s/seq9.all_logits.f32", td, name);
    float *ref = test_read_file(path, &rsize);
    CHECKF(got && ref && size == rsize, "logits --all: %zu bytes, expected %zu", size, rsize);
    if (got && ref && size == rsize) {
        const size_t V = rsize / sizeof(float) / 9;
        for (int row = 0; row < 9; row++) {
            double nm = test_nmse(got + row * V, ref + row * V, V);
            CHECKF(nm <= 1e-3 && test_argmax(got + row * V, (uint32_t)V) == test_argmax(ref + row * V, (uint32_t)V),
                   "cli %s row %d: NMSE %.3g or argmax", name, row, nm);
        }
    }
    free(got);
    free(ref);
    remove(out);

    /* Default F16 cache; the stats line counts the queue submissions. */
    snprintf(out, sizeof out, "%s/vk_golden_%s.stats", BN_BINARY_DIR, name);
    snprintf(cmd, sizeof cmd,
             "BN_VK_STATS=1 '%s' generate -m '%s/golden/%s/model.gguf' --tokens '%s' --temp 0 --ids -n 16 --ignore-eos "
             "--device vulkan:%d 2>'%s'",
             BN_CLI, td, name, list, dev, out);
    FILE *p = popen(cmd, "r");
    int32_t ids[16];
    int k = 0;
    while (p && k < 16 && fscanf(p, "%d", &ids[k]) == 1) k++;
    int rc = p ? pclose(p) : -1;
    CHECKF(rc == 0 && k == 16 && memcmp(ids, want, sizeof want) == 0, "cli generate %s: rc %d, %d ids", name, rc, k);
    char *log = test_read_file(out, &size);
    unsigned long long subs = 0, syncs = 0;
    const char *line = log ? strstr(log, "vulkan stats: ") : NULL;
    CHECKF(line && sscanf(line, "vulkan stats: %llu submissions for %llu synchronize", &subs, &syncs) == 2 && subs == 16,
           "cli generate %s: expected 16 submissions for 16 tokens, stats: %s", name, line ? line : "(none)");
    free(log);
    remove(out);
}

int main(void)
{
    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("golden test data missing");
    struct bn_backend be, be2;
    unsetenv("BN_VK_MAX_BUFFER_RANGE");
    unsetenv("BN_VK_DISABLE_INTDOT");
    unsetenv("BN_VK_FORCE_STAGING");
    if (test_vk_open(&be) != 0) return test_skip_or_fail("no usable Vulkan device");
    const struct bn_backend_vk_stats s0 = test_vk_stats(&be);
    printf("device: %s (%s ternary shaders)\n", s0.device, s0.int_dot ? "integer-dot" : "plain-integer");

    for (size_t mi = 0; mi < sizeof models / sizeof models[0]; mi++) {
        const char *name = models[mi];
        const uint32_t V = model_vocab(td, name);
        struct run f32 = {.kv = BN_KV_F32, .n_ctx = 128, .n_batch = 512, .check = true};
        struct run f16 = {.kv = BN_KV_F16, .n_ctx = 128, .n_batch = 512, .check = true};
        run_model(&be, td, name, &f32);
        run_model(&be, td, name, &f16);

        /* The other ternary shader variant: the same integers, so the same bits. */
        if (s0.int_dot) {
            setenv("BN_VK_DISABLE_INTDOT", "1", 1);
            if (test_vk_open(&be2) == 0) {
                struct run plain = {.kv = BN_KV_F32, .n_ctx = 128, .n_batch = 512, .check = false};
                run_model(&be2, td, name, &plain);
                same_logits(&f32, &plain, V, "plain-integer shaders");
                check_clean(&be2, "plain-integer shaders");
                be2.iface.destroy(be2.ctx);
                run_free(&plain);
            }
            unsetenv("BN_VK_DISABLE_INTDOT");
        }

        /* --head q8: the int8 copy of the head, wired through the engine;
         * its own rounding (int8 rows, int16 activations) is the only
         * difference from the F16 head (test_vk_ops checks the op bit for
         * bit against the CPU's). */
        if (test_vk_open_head(&be2, true) == 0) {
            struct run q8 = {.kv = BN_KV_F32, .n_ctx = 128, .n_batch = 512, .check = false};
            run_model(&be2, td, name, &q8);
            CHECK(test_vk_stats(&be2).head_q8, "--head q8 runs the int8 head");
            near_logits(&f32, &q8, V, 1e-3, "int8 head");
            check_clean(&be2, "int8 head");
            be2.iface.destroy(be2.ctx);
            run_free(&q8);
        }

        /* Memory the host cannot map, as on a discrete GPU without a
         * host-visible device heap: staged uploads, fills and readback. */
        setenv("BN_VK_FORCE_STAGING", "1", 1);
        if (test_vk_open(&be2) == 0) {
            struct run staged = {.kv = BN_KV_F32, .n_ctx = 128, .n_batch = 512, .check = false, .staged = true};
            run_model(&be2, td, name, &staged);
            same_logits(&f32, &staged, V, "staged memory");
            check_clean(&be2, "staged memory");
            be2.iface.destroy(be2.ctx);
            run_free(&staged);
        }
        unsetenv("BN_VK_FORCE_STAGING");

        /* Split tensors: every binding at most 32 KiB (the embedding and the
         * FFN matrices become several row ranges). Small batches and
         * context keep the activations within that range too, so the split
         * run is compared with an unsplit run of the same batching. */
        struct run whole = {.kv = BN_KV_F32, .n_ctx = 64, .n_batch = 8, .check = true};
        struct run split = {.kv = BN_KV_F32, .n_ctx = 64, .n_batch = 8, .check = true};
        run_model(&be, td, name, &whole);
        setenv("BN_VK_MAX_BUFFER_RANGE", "32768", 1);
        if (test_vk_open(&be2) == 0) {
            run_model(&be2, td, name, &split);
            same_logits(&whole, &split, V, "split tensors");
            check_clean(&be2, "split tensors");
            be2.iface.destroy(be2.ctx);
        }
        unsetenv("BN_VK_MAX_BUFFER_RANGE");
        run_free(&whole);
        run_free(&split);
        run_free(&f32);
        run_free(&f16);
    }
    check_clean(&be, "golden models");
    be.iface.destroy(be.ctx);

    const int dev = test_vk_device_index();
    CHECK(dev >= 0, "a Vulkan device index for the command line");
    for (size_t mi = 0; dev >= 0 && mi < sizeof models / sizeof models[0]; mi++) check_cli(td, models[mi], dev);
    return test_report("test_vk_golden");
}
