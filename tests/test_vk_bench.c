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
 */
#include <stdint.h>
#include <sys/wait.h>

#include "backend_cpu.h"
#include "engine.h"
#include "model.h"
#include "synth_model.h"
#include "test_util.h"
#include "test_vk_util.h"

static char model[1024];

/* Runs the CLI with args; stdout and stderr (malloc'd, NUL-terminated). */
static int run(const char *args, char **out, char **err)
{
    char cmd[8192], outf[1100], errf[1100];
    snprintf(outf, sizeof outf, "%s/test_vk_bench.out", BN_BINARY_DIR);
    snprintf(errf, sizeof errf, "%s/test_vk_bench.err", BN_BINARY_DIR);
    snprintf(cmd, sizeof cmd, "timeout 300 '%s' %s >'%s' 2>'%s'", BN_CLI, args, outf, errf);
    int st = system(cmd);
    const char *files[2] = {outf, errf};
    char **dst[2] = {out, err};
    for (int i = 0; i < 2; i++) {
        size_t n = 0;
        char *s = test_read_file(files[i], &n);
        if (s) {
            char *z = realloc(s, n + 1);
            if (z) z[n] = '\0';
            else free(s);
            s = z;
        }
        *dst[i] = s;
        remove(files[i]);
    }
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
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

int main(void)
{
    const int dev = test_vk_device_index();
    if (dev < 0) return test_skip_or_fail("no Vulkan device");
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    char err[512];
    snprintf(model, sizeof model, "%s/test_vk_bench.gguf", BN_BINARY_DIR);
    if (bn_synth_write(&p, model, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return test_report("test_vk_bench");
    }
    char args[2048], *out = NULL, *log = NULL;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 4 -r 2 --min-time 0 -t 1 --bw-mib 16 --device cpu,vulkan:%d --json --profile",
             model, dev);
    int rc = run(args, &out, &log);
    CHECKF(rc == 0, "bench --device cpu,vulkan:%d exit %d: %s", dev, rc, log ? log : "");
    if (out && log) {
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

    /* A device that disagrees with the CPU is not reported: with a tolerance
     * of 0 any difference at all is a disagreement (a bit-exact device
     * passes, and then says NMSE 0). */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 --bw-mib 0 --device vulkan:%d --max-nmse 0 --json", model,
             dev);
    rc = run(args, &out, &log);
    if (rc == 0) {
        CHECK(out && strstr(out, "\"nmse\": 0,") != NULL, "accepted at tolerance 0 only when bit-exact");
    } else {
        CHECKF(rc == 3, "a disagreeing device: exit 3 (got %d)", rc);
        CHECK(log && count(log, "\n") == 1 && strstr(log, "disagrees with the CPU"), "one line saying why");
        CHECK(out && out[0] == '\0', "nothing reported");
    }
    free(out);
    free(log);

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
