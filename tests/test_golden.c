/*
 * End to end against ../shared/testdata/golden: logits from an independent
 * float64 implementation of the BitNet numerics, and its greedy tokens.
 * Checked in-process through the engine (F32 and F16 KV caches) and through
 * the bitnet-vk command line (`logits`, `generate --temp 0 --ids`).
 */
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "test_util.h"

static const char *models[] = {"i2s_bitnet_b158", "tq2_bitnet"};
static const int seq_lens[] = {1, 9, 40};

/* Greedy decoding after the prompt, in-process. */
static void greedy(bn_engine *e, const float *first, uint32_t n_vocab, int32_t *out, int n)
{
    float *logits = malloc(n_vocab * sizeof *logits);
    char err[256];
    memcpy(logits, first, n_vocab * sizeof *logits);
    for (int i = 0; i < n; i++) {
        out[i] = (int32_t)test_argmax(logits, n_vocab);
        if (i + 1 < n && bn_engine_eval(e, &out[i], 1, false, logits, err, sizeof err) != BN_OK) {
            CHECKF(0, "decode failed: %s", err);
            break;
        }
    }
    free(logits);
}

static void check_model(const char *td, const char *name, enum bn_kv_type kv, double tol)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/golden/%s/model.gguf", td, name);
    struct bn_model *m;
    if (bn_model_open(path, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return;
    }
    struct bn_backend be;
    CHECK(bn_backend_cpu_create(&be, NULL, err, sizeof err) == BN_OK, err);
    CHECK(be.iface.upload_weights(be.ctx, m, err, sizeof err) == BN_OK, err);
    const uint32_t n_vocab = m->hp.n_vocab;
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 128;
    p.kv_type = kv;
    const char *kvn = kv == BN_KV_F16 ? "f16" : "f32";
    for (size_t s = 0; s < sizeof seq_lens / sizeof seq_lens[0]; s++) {
        const int L = seq_lens[s];
        int32_t tokens[64], want_greedy[16], got_greedy[16];
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.tokens.txt", td, name, L);
        CHECKF(test_read_ids(path, tokens, 64) == L, "%s: expected %d tokens", path, L);
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.greedy.txt", td, name, L);
        CHECKF(test_read_ids(path, want_greedy, 16) == 16, "%s: expected 16 ids", path);
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.logits.f32", td, name, L);
        size_t size = 0;
        float *ref = test_read_file(path, &size);
        CHECKF(ref && size == n_vocab * sizeof(float), "%s: size %zu", path, size);
        if (!ref) continue;

        bn_engine *e;
        if (bn_engine_create(m, &be, &p, &e, err, sizeof err) != BN_OK) {
            CHECKF(0, "%s", err);
            free(ref);
            continue;
        }
        float *logits = malloc((size_t)L * n_vocab * sizeof *logits);
        /* All positions at once (the reference's all_logits exists for seq 9). */
        CHECKF(bn_engine_eval(e, tokens, (uint32_t)L, true, logits, err, sizeof err) == BN_OK, "%s", err);
        const float *last = logits + (size_t)(L - 1) * n_vocab;
        double nm = test_nmse(last, ref, n_vocab);
        CHECKF(nm <= tol, "%s seq%d kv %s: NMSE %.3g > %.3g", name, L, kvn, nm, tol);
        CHECKF(test_argmax(last, n_vocab) == test_argmax(ref, n_vocab), "%s seq%d kv %s: argmax %u != %u", name, L, kvn,
               test_argmax(last, n_vocab), test_argmax(ref, n_vocab));
        printf("%s seq%-2d kv %s: last-row NMSE %.3g\n", name, L, kvn, nm);
        if (L == 9) {
            snprintf(path, sizeof path, "%s/golden/%s/seq9.all_logits.f32", td, name);
            float *all = test_read_file(path, &size);
            CHECKF(all && size == 9 * n_vocab * sizeof(float), "%s", path);
            for (int r = 0; all && r < 9; r++) {
                double nr = test_nmse(logits + (size_t)r * n_vocab, all + (size_t)r * n_vocab, n_vocab);
                CHECKF(nr <= tol, "%s seq9 row %d kv %s: NMSE %.3g", name, r, kvn, nr);
                const float *want = all + (size_t)r * n_vocab;
                if (kv == BN_KV_F32 || test_top2_margin(want, n_vocab) >= TEST_F16_ARGMAX_MIN_MARGIN)
                    CHECKF(test_argmax(logits + (size_t)r * n_vocab, n_vocab) == test_argmax(want, n_vocab),
                           "%s seq9 row %d kv %s: argmax differs", name, r, kvn);
            }
            free(all);
        }
        greedy(e, last, n_vocab, got_greedy, 16);
        CHECKF(memcmp(got_greedy, want_greedy, sizeof got_greedy) == 0, "%s seq%d kv %s: greedy tokens differ", name,
               L, kvn);
        free(logits);
        free(ref);
        bn_engine_destroy(e);
    }
    be.iface.destroy(be.ctx);
    bn_model_close(m);
}

/* The same checks through the command line, as a user runs them. */
static void check_cli(const char *td, const char *name)
{
    char cmd[4096], path[1024], out[1024];
    for (size_t s = 0; s < sizeof seq_lens / sizeof seq_lens[0]; s++) {
        const int L = seq_lens[s];
        int32_t tokens[64], want[16];
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.tokens.txt", td, name, L);
        int n = test_read_ids(path, tokens, 64);
        char list[1024] = "";
        for (int i = 0; i < n; i++) snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", i ? " " : "", tokens[i]);
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.greedy.txt", td, name, L);
        test_read_ids(path, want, 16);

        snprintf(out, sizeof out, "%s/golden_%s_seq%d.f32", BN_BINARY_DIR, name, L);
        remove(out);
        snprintf(cmd, sizeof cmd, "'%s' logits -m '%s/golden/%s/model.gguf' --tokens '%s' -o '%s' --all --kv-type f32",
                 BN_CLI, td, name, list, out);
        CHECKF(system(cmd) == 0, "command failed: %s", cmd);
        size_t size = 0, rsize = 0;
        float *got = test_read_file(out, &size);
        snprintf(path, sizeof path, "%s/golden/%s/seq%d.logits.f32", td, name, L);
        float *ref = test_read_file(path, &rsize);
        CHECKF(got && ref && size == (size_t)L * rsize, "logits --all: %zu bytes, expected %zu", size, (size_t)L * rsize);
        if (got && ref && size == (size_t)L * rsize) {
            size_t nv = rsize / sizeof(float);
            double nm = test_nmse(got + (size_t)(L - 1) * nv, ref, nv);
            CHECKF(nm <= 1e-3, "cli %s seq%d: NMSE %.3g", name, L, nm);
            CHECKF(test_argmax(got + (size_t)(L - 1) * nv, (uint32_t)nv) == test_argmax(ref, (uint32_t)nv), "cli %s seq%d: argmax",
                   name, L);
        }
        free(got);
        free(ref);
        remove(out);

        /* Default F16 cache, as a user runs it. */
        snprintf(cmd, sizeof cmd, "'%s' generate -m '%s/golden/%s/model.gguf' --tokens '%s' --temp 0 --ids -n 16 --ignore-eos 2>/dev/null",
                 BN_CLI, td, name, list);
        FILE *p = popen(cmd, "r");
        int32_t got_ids[16];
        int k = 0;
        while (p && k < 16 && fscanf(p, "%d", &got_ids[k]) == 1) k++;
        int rc = p ? pclose(p) : -1;
        CHECKF(rc == 0 && k == 16 && memcmp(got_ids, want, sizeof want) == 0, "cli generate %s seq%d: rc %d, %d ids", name,
               L, rc, k);
    }
}

int main(void)
{
    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("golden test data missing");
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        check_model(td, models[i], BN_KV_F32, 1e-3);
        check_model(td, models[i], BN_KV_F16, 3e-3);
        check_cli(td, models[i]);
    }
    return test_report("test_golden");
}
