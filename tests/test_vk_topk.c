/*
 * The Vulkan backend's topk op (shaders/topk_f32.comp) and sampling with it:
 *  1. the op against a host top-k (a full sort by value descending, then id)
 *     on random logits drawn from a coarse grid, so that many values tie,
 *     with -inf, -0/+0, denormals and FLT_MAX mixed in; vocabularies from 1
 *     to 128256 entries (one slice, and many slices merged), k from 1 to
 *     256: ids equal and values bit for bit. A row with NaN and +inf checks
 *     the sanitizing (NaN as -inf, +inf as FLT_MAX). Again with staged
 *     (unmappable) memory.
 *  2. bn_engine_eval_topk on each golden model, after the prompt and after a
 *     decode step, on the CPU (no topk op: the host selection) and on
 *     Vulkan (the op): the top k of bn_engine_eval's logits on the same
 *     backend, exactly, for k = 1, 40 and 256.
 *  3. `generate --temp 0.8 --top-k 40 --seed 5 --ids -n 16 --kv-type f32` on
 *     each golden model gives the same ids with --device cpu (host top-k from
 *     the logits) and --device vulkan:N (the topk op, 80 numbers per token).
 * Validation errors (BN_VK_VALIDATION=1) fail the test.
 */
#include <float.h>
#include <stdint.h>

#include "backend.h"
#include "engine.h"
#include "model.h"
#include "test_util.h"
#include "test_vk_util.h"
#include "vk_device.h"

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 32);
}

static float sanitize(float v)
{
    if (isnan(v)) return -INFINITY;
    return v > FLT_MAX ? FLT_MAX : v;
}

struct ent {
    float v;
    int32_t id;
};

/* Value descending, then id ascending: the op's documented order. */
static int ent_cmp(const void *a, const void *b)
{
    const struct ent *x = a, *y = b;
    if (x->v != y->v) return x->v > y->v ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

/* Random logits on a grid of quarter steps in [-8, 8): about 64 distinct
 * values, so a vocabulary of thousands has long runs of ties everywhere,
 * the k-th place included. Some special values go in at random places. */
static void fill(float *l, uint32_t V, bool with_nan)
{
    for (uint32_t i = 0; i < V; i++) l[i] = (float)((int)(rnd() % 64) - 32) * 0.25f;
    static const float special[] = {-INFINITY, -0.0f, 0.0f, 1e-40f, -1e-40f, FLT_MAX, 7.75f};
    for (uint32_t j = 0; j < V / 16; j++) l[rnd() % V] = special[rnd() % 7];
    if (with_nan)
        for (uint32_t j = 0; j < V / 8 + 1; j++) l[rnd() % V] = rnd() % 2 ? NAN : INFINITY;
}

static void check_topk(struct bn_backend *be, uint32_t V, uint32_t k, bool with_nan)
{
    float *l = malloc((size_t)V * sizeof *l);
    struct ent *ref = malloc((size_t)V * sizeof *ref);
    int32_t *ids = malloc(k * sizeof *ids);
    float *vals = malloc(k * sizeof *vals);
    fill(l, V, with_nan);
    for (uint32_t i = 0; i < V; i++) ref[i] = (struct ent){sanitize(l[i]), (int32_t)i};
    qsort(ref, V, sizeof *ref, ent_cmp);

    bn_buf *b[3] = {test_vk_upload(be, l, (size_t)V * 4), test_vk_upload(be, NULL, k * 4), test_vk_upload(be, NULL, k * 4)};
    be->iface.topk(be->ctx, b[0], V, k, b[1], b[2]);
    bool ok = test_vk_download(be, b[1], ids, k * 4) && test_vk_download(be, b[2], vals, k * 4);
    uint32_t bad = k;
    for (uint32_t j = 0; ok && j < k && bad == k; j++)
        if (ids[j] != ref[j].id || memcmp(&vals[j], &ref[j].v, 4) != 0) bad = j;
    CHECKF(ok && bad == k, "topk vocab %u k %u%s: rank %u is id %d (%a), want %d (%a)", V, k,
           with_nan ? " (NaN, inf)" : "", bad, bad < k ? ids[bad] : -1, bad < k ? (double)vals[bad] : 0.0,
           bad < k ? ref[bad].id : -1, bad < k ? (double)ref[bad].v : 0.0);
    for (int i = 0; i < 3; i++) be->iface.buf_free(be->ctx, b[i]);
    free(vals);
    free(ids);
    free(ref);
    free(l);
}

static void test_op(struct bn_backend *be)
{
    CHECK(be->iface.topk != NULL, "the Vulkan backend has the topk op");
    if (!be->iface.topk) return;
    /* One slice (<= 4096 entries) and several merged, up to the 2B4T vocabulary
     * (64 slices, the most the op uses). */
    static const uint32_t vocabs[] = {1, 7, 300, 1000, 4096, 4097, 20000, 128256};
    static const uint32_t ks[] = {1, 2, 40, 255, 256};
    for (size_t vi = 0; vi < sizeof vocabs / sizeof vocabs[0]; vi++)
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
            const uint32_t V = vocabs[vi], k = ks[ki] < V ? ks[ki] : V;
            check_topk(be, V, k, false);
            if (ki == 2) check_topk(be, V, k, true);
        }
}

static void check_clean(const struct bn_backend *be, const char *what)
{
    struct bn_backend_vk_stats s = test_vk_stats(be);
    CHECKF(s.validation_errors == 0, "%s: %u validation errors", what, s.validation_errors);
    printf("%s: %s, %llu dispatches\n", what, s.device, (unsigned long long)s.dispatches);
}

/* bn_engine_eval_topk against bn_engine_eval's logits on the same backend:
 * the same forward pass, so the same bits, and the selection must agree. */
static void check_engine(struct bn_backend *be, const char *td, const char *name)
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
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 64;
    p.kv_type = BN_KV_F32;
    bn_engine *e = NULL;
    if (st == BN_OK) st = bn_engine_create(m, be, &p, &e, err, sizeof err);
    CHECKF(st == BN_OK, "%s on %s: %s", name, be->iface.name, err);
    const uint32_t V = m->hp.n_vocab;
    float *l = malloc((size_t)V * sizeof *l);
    struct ent *ref = malloc((size_t)V * sizeof *ref);
    const int32_t prompt[5] = {1, 17, 250, 3, 99}, step = 7;
    static const uint32_t ks[] = {1, 40, 256};
    for (size_t ki = 0; e && ki < 3; ki++) {
        const uint32_t k = ks[ki];
        int32_t ids[256];
        float vals[256];
        for (int phase = 0; phase < 2; phase++) {
            const int32_t *tok = phase ? &step : prompt;
            const uint32_t n = phase ? 1 : 5;
            if (phase == 0) bn_engine_reset(e);
            /* The logits, then the same position again with the top-k. */
            const uint32_t pos = bn_engine_pos(e);
            st = bn_engine_eval(e, tok, n, false, l, err, sizeof err);
            if (st == BN_OK) {
                bn_engine_reset(e);
                if (phase == 1) st = bn_engine_eval(e, prompt, 5, false, NULL, err, sizeof err);
            }
            if (st == BN_OK && bn_engine_pos(e) != pos) st = BN_ERR_USAGE;
            if (st == BN_OK) st = bn_engine_eval_topk(e, tok, n, k, ids, vals, err, sizeof err);
            CHECKF(st == BN_OK, "%s on %s: eval: %s", name, be->iface.name, err);
            if (st != BN_OK) break;
            for (uint32_t i = 0; i < V; i++) ref[i] = (struct ent){sanitize(l[i]), (int32_t)i};
            qsort(ref, V, sizeof *ref, ent_cmp);
            uint32_t same = 0;
            for (uint32_t j = 0; j < k; j++) same += ids[j] == ref[j].id && memcmp(&vals[j], &ref[j].v, 4) == 0;
            CHECKF(same == k, "%s on %s, k %u, %s: %u of %u equal", name, be->iface.name, k,
                   phase ? "decode" : "prompt", same, k);
        }
    }
    int32_t ids[1];
    float vals[1];
    CHECK(!e || bn_engine_eval_topk(e, prompt, 1, V + 1, ids, vals, err, sizeof err) == BN_ERR_USAGE,
          "k above n_vocab is refused");
    CHECK(!e || bn_engine_eval_topk(e, prompt, 1, 0, ids, vals, err, sizeof err) == BN_ERR_USAGE, "k = 0 is refused");
    free(ref);
    free(l);
    bn_engine_destroy(e);
    bn_model_close(m);
}

/* Reads up to max ids printed by `generate --ids`; the exit status in *rc. */
static int generate_ids(const char *cmd, int32_t *ids, int max, int *rc)
{
    FILE *p = popen(cmd, "r");
    int n = 0;
    while (p && n < max && fscanf(p, "%d", &ids[n]) == 1) n++;
    *rc = p ? pclose(p) : -1;
    return n;
}

/* Sampling on the device (the topk op, bn_sampler_sample_candidates) against
 * the CPU (the logits read back, the host top-k), as a user runs them.
 *
 * Why the CPU kernels are pinned to the scalar set: the draw compares a
 * uniform against cumulative weights, so it is only as stable as the logits
 * are equal. With the F32 cache the scalar and AVX2 kernels and the Vulkan
 * shaders give the same logits to NMSE ~1e-13 (float rounding) on these
 * prompts, and for these seeds no draw falls within rounding of a boundary:
 * the 16 ids agree exactly. The AVX-512 kernels (the default on a machine
 * that has them) currently differ on i2s_bitnet_b158 from position 3 of the
 * prompt by NMSE ~1.7e-4 against the reference (inside the golden bar of
 * 1e-3 that tests/test_golden.c applies, so not a failure there), which is
 * enough to move a draw; the scalar set is the one every other set is tested
 * against. A difference here is then a real change in the op, the selection
 * or the sampler, not noise. */
static void check_cli_sampling(const char *td, const char *name, int dev)
{
    char cmd[4096], path[1024], list[1024] = "";
    FILE *f;
    snprintf(path, sizeof path, "%s/golden/%s/seq9.tokens.txt", td, name);
    int n = 0, t;
    if ((f = fopen(path, "r")) != NULL) {
        while (n < 64 && fscanf(f, "%d", &t) == 1)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%d", n++ ? " " : "", t);
        fclose(f);
    }
    CHECKF(n > 0, "%s: prompt ids", path);
    int32_t cpu[16], gpu[16];
    int rc_cpu, rc_gpu;
    const char *fmt = "BITNET_CPU=scalar '%s' generate -m '%s/golden/%s/model.gguf' --tokens '%s' --temp 0.8 --top-k 40 --seed 5 "
                      "--ids -n 16 --ignore-eos --kv-type f32 --device %s";
    snprintf(cmd, sizeof cmd, fmt, BN_CLI, td, name, list, "cpu");
    int n_cpu = generate_ids(cmd, cpu, 16, &rc_cpu);
    char devname[32];
    snprintf(devname, sizeof devname, "vulkan:%d", dev);
    snprintf(cmd, sizeof cmd, fmt, BN_CLI, td, name, list, devname);
    int n_gpu = generate_ids(cmd, gpu, 16, &rc_gpu);
    CHECKF(rc_cpu == 0 && rc_gpu == 0 && n_cpu == 16 && n_gpu == 16, "%s: generate rc %d/%d, %d/%d ids", name,
           rc_cpu, rc_gpu, n_cpu, n_gpu);
    int same = 0;
    for (int i = 0; i < 16 && i < n_cpu && i < n_gpu; i++) same += cpu[i] == gpu[i];
    CHECKF(same == 16, "%s: top-k sampling, %d of 16 ids equal on cpu and vulkan:%d", name, same, dev);
    /* Sampling really ran: 16 greedy-looking ids would not test the draw. */
    int distinct = 0;
    for (int i = 0; i < n_cpu; i++) {
        int seen = 0;
        for (int j = 0; j < i; j++) seen |= cpu[j] == cpu[i];
        distinct += !seen;
    }
    printf("%s: top-k 40 sampling, %d ids (%d distinct) equal on cpu and vulkan:%d\n", name, same, distinct, dev);
}

int main(void)
{
    struct bn_backend be;
    unsetenv("BN_VK_MAX_BUFFER_RANGE");
    unsetenv("BN_VK_FORCE_STAGING");
    if (test_vk_open(&be) != 0) return test_skip_or_fail("no usable Vulkan device");
    test_op(&be);
    check_clean(&be, "topk op");
    be.iface.destroy(be.ctx);
    /* Memory the host cannot map (a discrete GPU's): the results come back
     * through staging copies. */
    setenv("BN_VK_FORCE_STAGING", "1", 1);
    if (test_vk_open(&be) == 0) {
        check_topk(&be, 300, 40, false);
        check_topk(&be, 128256, 256, true);
        check_clean(&be, "topk op, staged memory");
        be.iface.destroy(be.ctx);
    }
    unsetenv("BN_VK_FORCE_STAGING");

    const char *td = test_testdata();
    if (!td) return test_failed_count ? test_report("test_vk_topk") : test_skip_or_fail("no shared test data");
    static const char *models[] = {"i2s_bitnet_b158", "tq2_bitnet"};
    for (int b = 0; b < 2; b++) {
        char err[256];
        if (b == 0 ? bn_backend_cpu_create(&be, NULL, err, sizeof err) != BN_OK : test_vk_open(&be) != 0) {
            CHECKF(0, "backend %d: %s", b, b == 0 ? err : "no Vulkan device");
            continue;
        }
        for (size_t mi = 0; mi < 2; mi++) check_engine(&be, td, models[mi]);
        if (b == 1) check_clean(&be, "engine top-k");
        be.iface.destroy(be.ctx);
    }
    const int dev = test_vk_device_index();
    CHECK(dev >= 0, "a Vulkan device index for the command line");
    for (size_t mi = 0; dev >= 0 && mi < 2; mi++) check_cli_sampling(td, models[mi], dev);
    return test_report("test_vk_topk");
}
