/*
 * `bitnet-vk bench` on a Vulkan device (lavapipe in CI) next to the CPU: the
 * device passes the first-step check against the CPU before it is timed
 * ("validation": "ok" and a small NMSE in the JSON), its bandwidth is
 * measured with the copy shader, a CPU-type device is labelled as the
 * CPU-based driver it is, and --profile prints a per-op table from
 * timestamp queries with the "ops X ms of Y ms forward" line for both
 * devices. Speed itself is never checked here. The timestamps are there
 * only when asked for (they cost device time): a backend opened through
 * bn_backend_select times its dispatches with gpu_profile and not without.
 * The copy probe leaves no device memory behind, and when its submission
 * fails the backend refuses further work instead of freeing what the
 * device may still use.
 */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "backend_cpu.h"
#include "engine.h"
#include "model.h"
#include "synth_model.h"
#include "test_cli_util.h"
#include "test_vk_util.h"

static char model[1024], scratch[1024];

/* Runs "ENV cli ARGS"; stdout and stderr (malloc'd, NUL-terminated). */
static int run(const char *env, const char *args, char **out, char **err)
{
    struct cli_result r = cli_run(scratch, env, args, 300);
    *out = r.out;
    *err = r.err;
    return r.exit_code;
}

/* The number after the first key in s, -1 when there is none. */
static double json_after(const char *s, const char *key)
{
    const char *p = strstr(s, key);
    return p ? strtod(p + strlen(key), NULL) : -1.0;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; p && (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* How many shaders a Vulkan backend opened with gpu_profile = profile
 * reports time for after one forward pass; -1 when it could not run. */
static int profiled_shaders(int dev, bool profile)
{
    char err[512] = "", note[256], pref[32];
    struct bn_model *m = NULL;
    if (bn_model_open(model, &m, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return -1;
    }
    struct bn_cpu_profile cpu_prof = {0};
    struct bn_backend_cpu_opts co = {.n_threads = 1, .profile = &cpu_prof, .gpu_profile = profile};
    struct bn_backend be;
    snprintf(pref, sizeof pref, "vulkan:%d", dev);
    int n = -1;
    if (bn_backend_select(pref, m, &co, &be, note, sizeof note, err, sizeof err) == BN_OK) {
        struct bn_engine_params p = bn_engine_default_params();
        p.n_ctx = 8;
        p.n_batch = 2;
        bn_engine *e = NULL;
        const int32_t tokens[2] = {1, 2};
        float *logits = malloc(m->hp.n_vocab * sizeof *logits);
        if (logits && bn_engine_create(m, &be, &p, &e, err, sizeof err) == BN_OK &&
            bn_engine_eval(e, tokens, 2, false, logits, err, sizeof err) == BN_OK) {
            struct bn_backend_vk_op_time t[64];
            n = (int)bn_backend_vk_get_profile(&be, t, 64);
        } else {
            CHECKF(0, "forward on %s: %s", pref, err);
        }
        bn_engine_destroy(e);
        free(logits);
        be.iface.destroy(be.ctx);
    } else {
        CHECKF(0, "%s: %s", pref, err);
    }
    bn_model_close(m);
    return n;
}

/* A Vulkan backend and engine on the test model, and the device
 * submissions made so far; false (reported) when it cannot open. */
struct vk_run {
    struct bn_model *m;
    struct bn_backend be;
    bn_engine *e;
    float *logits;
};

static bool vk_run_open(struct vk_run *r, int dev)
{
    char err[512] = "", note[256], pref[32];
    memset(r, 0, sizeof *r);
    snprintf(pref, sizeof pref, "vulkan:%d", dev);
    struct bn_backend_cpu_opts co = {.n_threads = 1};
    struct bn_engine_params p = bn_engine_default_params();
    p.n_ctx = 8;
    p.n_batch = 2;
    bool ok = bn_model_open(model, &r->m, err, sizeof err) == BN_OK &&
              bn_backend_select(pref, r->m, &co, &r->be, note, sizeof note, err, sizeof err) == BN_OK;
    if (!ok) r->be.ctx = NULL;
    ok = ok && bn_engine_create(r->m, &r->be, &p, &r->e, err, sizeof err) == BN_OK;
    ok = ok && (r->logits = malloc(r->m->hp.n_vocab * sizeof *r->logits)) != NULL;
    CHECKF(ok, "%s: %s", pref, err);
    return ok;
}

static void vk_run_close(struct vk_run *r)
{
    bn_engine_destroy(r->e);
    if (r->be.ctx) r->be.iface.destroy(r->be.ctx);
    free(r->logits);
    bn_model_close(r->m);
}

static uint64_t device_submissions(const struct vk_run *r)
{
    struct bn_backend_vk_stats s;
    if (bn_backend_vk_get_stats(&r->be, &s) != BN_OK) return 0;
    return s.submits + s.transfer_submits;
}

/* The probe's buffers have blocks of their own, freed with them: a probe
 * of a shared block's size (64 MiB, which the engine's partly used block
 * cannot take) must not leave new blocks behind, or the table's device
 * memory would count them. */
static void test_probe_leaves_no_memory(int dev)
{
    struct vk_run r;
    if (!vk_run_open(&r, dev)) {
        vk_run_close(&r);
        return;
    }
    char err[512] = "";
    const int32_t tokens[2] = {1, 2};
    struct bn_backend_vk_stats before, after;
    double gbps = 0;
    const bool ok = bn_engine_eval(r.e, tokens, 2, false, r.logits, err, sizeof err) == BN_OK &&
                    bn_backend_vk_get_stats(&r.be, &before) == BN_OK &&
                    bn_backend_vk_measure_bandwidth(&r.be, 64u << 20, 2, &gbps, err, sizeof err) == BN_OK &&
                    bn_backend_vk_get_stats(&r.be, &after) == BN_OK;
    CHECKF(ok && (gbps > 0 || strstr(err, "timestamps")), "forward and probe: %.1f GB/s, '%s'", gbps, err);
    if (ok)
        CHECKF(after.device_bytes == before.device_bytes, "the probe left no device memory: %llu bytes before, %llu after",
               (unsigned long long)before.device_bytes, (unsigned long long)after.device_bytes);
    vk_run_close(&r);
}

/* BN_VK_TIMEOUT_WAIT=N makes the Nth submission's fence wait time out, as
 * a hung device's would; the device is not lost. Counted on a first
 * backend: the probe after one forward pass is submission N. On a second
 * backend with the hook there, the probe fails, the backend refuses the
 * next forward pass with the same message (its queue may still be busy
 * with the copies), and it is destroyed cleanly. */
static void test_probe_failure_ends_device(int dev)
{
    struct vk_run r;
    char err[512] = "", hook[32];
    const int32_t tokens[2] = {1, 2};
    if (!vk_run_open(&r, dev)) {
        vk_run_close(&r);
        return;
    }
    bool ok = bn_engine_eval(r.e, tokens, 2, false, r.logits, err, sizeof err) == BN_OK;
    const uint64_t probe_at = device_submissions(&r) + 1;
    vk_run_close(&r);
    CHECKF(ok && probe_at > 1, "forward: %s", err);
    if (!ok) return;
    snprintf(hook, sizeof hook, "%llu", (unsigned long long)probe_at);
    setenv("BN_VK_TIMEOUT_WAIT", hook, 1);
    ok = vk_run_open(&r, dev);
    unsetenv("BN_VK_TIMEOUT_WAIT");
    if (!ok) {
        vk_run_close(&r);
        return;
    }
    CHECKF(bn_engine_eval(r.e, tokens, 2, false, r.logits, err, sizeof err) == BN_OK,
           "the forward pass before submission %s still runs: %s", hook, err);
    double gbps = 1;
    const enum bn_status st = bn_backend_vk_measure_bandwidth(&r.be, 16u << 20, 2, &gbps, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && gbps == 0 && strstr(err, "did not finish") &&
               strstr(err, "simulated by BN_VK_TIMEOUT_WAIT"),
           "a hung probe, named as simulated: status %d, '%s'", (int)st, err);
    char err2[512] = "";
    CHECKF(bn_engine_eval(r.e, tokens, 2, false, r.logits, err2, sizeof err2) == BN_ERR_DEVICE &&
               strstr(err2, "did not finish"),
           "after it no forward pass runs: '%s'", err2);
    vk_run_close(&r);
}

int main(void)
{
    const int dev = test_vk_device_index();
    if (dev < 0) return test_skip_or_fail("no Vulkan device");
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    char err[512];
    snprintf(scratch, sizeof scratch, "%s/test_vk_bench.tmp", BN_BINARY_DIR);
    if (mkdir(scratch, 0755) != 0 && errno != EEXIST) {
        CHECKF(0, "mkdir %s", scratch);
        return test_report("test_vk_bench");
    }
    snprintf(model, sizeof model, "%s/test_vk_bench.gguf", BN_BINARY_DIR);
    if (bn_synth_write(&p, model, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return test_report("test_vk_bench");
    }
    char args[2048], *out = NULL, *log = NULL;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 4 -r 2 --min-time 0 -t 1 --bw-mib 16 --device cpu,vulkan:%d --json --profile",
             model, dev);
    int rc = run("", args, &out, &log);
    CHECKF(rc == 0, "bench --device cpu,vulkan:%d exit %d: %s", dev, rc, log ? log : "");
    double rss_with_vk = -1;
    if (out && log) {
        rss_with_vk = json_after(out, "\"peak_rss_mib\": "); /* the first row: the CPU's */
        CHECKF(count(out, "{") == 4, "2 devices x 2 tests = 4 objects (%d)", count(out, "{"));
        char name[32];
        snprintf(name, sizeof name, "\"device\": \"vulkan:%d\"", dev);
        CHECKF(count(out, name) == 2, "two rows for vulkan:%d", dev);
        CHECK(count(out, "\"validation\": \"ok\"") == 2, "the Vulkan rows passed the first-step check");
        CHECK(count(out, "\"validation\": \"reference\"") == 2, "the CPU rows are the reference");
        /* the Vulkan rows' NMSE is small but was measured */
        const char *v = strstr(out, "\"validation\": \"ok\", \"nmse\": ");
        CHECK(v && strtod(v + strlen("\"validation\": \"ok\", \"nmse\": "), NULL) <= 1e-3, "NMSE within the tolerance");
        /* every row has a measured bandwidth */
        int bw = 0;
        for (const char *q = out; (q = strstr(q, "\"bandwidth_gbps\": ")) != NULL;) {
            q += strlen("\"bandwidth_gbps\": ");
            bw += strtod(q, NULL) > 0.0;
        }
        CHECKF(bw == 4, "bandwidth measured on both devices (%d of 4 rows)", bw);
        if (strstr(out, "\"backend\": \"vulkan on CPU"))
            CHECK(strstr(log, "not a GPU's") != NULL, "a CPU-type Vulkan device is called what it is");
        CHECKF(count(log, "ms forward (") == 4, "a per-op table per device and test (%d)", count(log, "ms forward ("));
        CHECK(count(log, "device time per pipeline") == 2, "the Vulkan tables come from timestamp queries");
        /* Under BN_VK_VALIDATION=1 (CI's validation stage) the layer's
         * reports reach stderr: the probe and the passes make none. */
        CHECKF(!strstr(log, "vulkan validation: error"), "no validation errors: %s", log);
    }
    free(out);
    free(log);

    /* The CPU's peak RSS is its own: the Vulkan driver that the check of
     * the device list loads (tens of MiB) is not in it. */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 4 -r 2 --min-time 0 -t 1 --bw-mib 16 --device cpu --json", model);
    rc = run("", args, &out, &log);
    const double rss_alone = out ? json_after(out, "\"peak_rss_mib\": ") : -1;
    CHECKF(rc == 0 && rss_alone > 0 && rss_with_vk > 0 && fabs(rss_with_vk - rss_alone) < 20.0,
           "the CPU's peak RSS: %.1f MiB alone, %.1f MiB before vulkan:%d", rss_alone, rss_with_vk, dev);
    free(out);
    free(log);

    /* A device's settings are checked with the list: a bad one fails before
     * the CPU is measured, with one line and no table. */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 4 -r 2 --min-time 0 --device cpu,vulkan:%d", model, dev);
    rc = run("BN_VK_TIMEOUT_S=abc", args, &out, &log);
    CHECKF(rc == 1 && out && out[0] == '\0' && log && count(log, "\n") == 1 && strstr(log, "BN_VK_TIMEOUT_S"),
           "BN_VK_TIMEOUT_S=abc: exit %d, stdout '%s', stderr '%s'", rc, out ? out : "", log ? log : "");
    free(out);
    free(log);

    /* "auto" and a name of the same device: the name stays (auto could
     * still leave the device for the CPU), so its rows are there. The test
     * hook lets auto take a CPU-type device when there is no GPU. */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 --bw-mib 0 --device auto,vulkan:%d --json",
             model, dev);
    rc = run("BN_VK_AUTO_CPU=1", args, &out, &log);
    char name[32];
    snprintf(name, sizeof name, "\"device\": \"vulkan:%d\"", dev);
    CHECKF(rc == 0 && out && count(out, name) == 2, "auto,vulkan:%d: exit %d, the named device's 2 rows: %s", dev, rc,
           out ? out : "");
    if (out && log && strstr(log, "measured once"))
        CHECKF(count(out, "\"device\": \"auto\"") == 0 && count(out, "{") == 2, "auto dropped for vulkan:%d: %s",
               dev, log);
    free(out);
    free(log);

    /* A device that disagrees with the CPU is not reported: with a tolerance
     * of 0 any difference at all is a disagreement (a bit-exact device
     * passes, and then says NMSE 0). */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 --bw-mib 0 --device vulkan:%d --max-nmse 0 --json", model,
             dev);
    rc = run("", args, &out, &log);
    if (rc == 0) {
        CHECK(out && strstr(out, "\"nmse\": 0,") != NULL, "accepted at tolerance 0 only when bit-exact");
    } else {
        CHECKF(rc == 3, "a disagreeing device: exit 3 (got %d)", rc);
        CHECK(log && count(log, "\n") == 1 && strstr(log, "disagrees with the CPU"), "one line saying why");
        CHECK(out && out[0] == '\0', "nothing reported");
    }
    free(out);
    free(log);

    test_probe_leaves_no_memory(dev);
    test_probe_failure_ends_device(dev);

    /* Only a profile asked for gets timestamp queries (and BN_VK_PROFILE,
     * the override for other commands, is not set here). */
    if (!getenv("BN_VK_PROFILE")) {
        const int with = profiled_shaders(dev, true), without = profiled_shaders(dev, false);
        CHECKF(with > 0, "gpu_profile: %d shaders timed after a forward pass", with);
        CHECKF(without == 0, "no gpu_profile: no shader timed (%d)", without);
    }
    remove(model);
    return test_report("test_vk_bench");
}
