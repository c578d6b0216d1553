/*
 * Device failure paths of the Vulkan backend, through the binary (issue 7):
 * each ends with exit 3 and exactly one line on stderr naming what failed,
 * or, under --device auto, with a note and the run on the CPU giving the
 * CPU's output. Run on lavapipe (label gpu); in the sanitizer stage every
 * child process is also checked by LeakSanitizer, so a path that leaks
 * exits non-zero and fails here.
 *
 *  - out of device memory, simulated with BN_VK_HEAP_LIMIT: while uploading
 *    the weights, and while creating the engine's buffers (a huge context),
 *    in generate, perplexity and bench;
 *  - device lost, simulated with BN_VK_FAIL_SUBMIT=N: on the first queue
 *    submission (prompt), a later one (mid-generation: the tokens so far
 *    and a newline on stdout, nothing after), on the sampling path, in
 *    `logits`, and in a staged weight upload (BN_VK_FORCE_STAGING=1); and
 *    with BN_VK_FAIL_WAIT=N, reported by the fence wait instead;
 *  - --device auto reaches Vulkan without a GPU through BN_VK_AUTO_CPU=1
 *    (checked first, so the fallbacks are not vacuous);
 *  - malformed hook values are usage errors (exit 1, one line).
 *
 * Uses the trained model in models/, whose greedy output varies from token
 * to token, so "same output as the CPU" means something.
 */
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "test_cli_util.h"

#define N_GEN 12
/* A context whose KV cache alone (4 layers, 2 KiB a token) exceeds the cap
 * of the engine-buffer cases, while the weights (about 3 MiB) fit under it. */
#define HUGE_CTX "65536"
#define ENGINE_CAP "16M"
#define WEIGHTS_CAP "1M"
/* Holds the weights (about 3 MiB on the device) but not bench's engine
 * buffers for -p 64. */
#define BENCH_CAP "4M"
/* Holds the weights, the engine and a staging chunk of an eighth of the cap
 * (not the 32 MiB chunk of an uncapped heap). */
#define STAGING_CAP "16M"

static char dir[1024], model[1100];

/* A hang (a fence never signalled) fails after 300 s. */
static struct cli_result run_cli(const char *env, const char *args) { return cli_run(dir, env, args, 300); }

/* A malformed setting (env, "NAME=value") is a usage error: exit 1, one
 * stderr line naming it, nothing on stdout. */
static void expect_usage_error(const char *env, const char *args)
{
    struct cli_result r = run_cli(env, args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1 && strstr(r.err, env) && r.out[0] == '\0',
           "%s is a usage error: exit %d: %s", env, r.exit_code, r.err);
    cli_result_free(&r);
}

/* The i-th line of text (0-based) starts with prefix. */
static bool line_starts(const char *text, int i, const char *prefix)
{
    const char *p = text;
    for (; i > 0 && p; i--) {
        p = strchr(p, '\n');
        if (p) p++;
    }
    return p && strncmp(p, prefix, strlen(prefix)) == 0;
}

/* A failure: exit 3, one stderr line beginning with `prefix` and holding
 * `what`. */
static void expect_failure(const struct cli_result *r, const char *prefix, const char *what, const char *name)
{
    CHECKF(r->exit_code == 3, "%s: exit %d (want 3): %s", name, r->exit_code, r->err);
    CHECKF(r->stderr_lines == 1, "%s: %d stderr lines (want 1): %s", name, r->stderr_lines, r->err);
    CHECKF(line_starts(r->err, 0, prefix) && strstr(r->err, what), "%s: message: %s", name, r->err);
}

/* The other subcommands that open an engine fall back the same way:
 * perplexity with a huge context, and bench, whose engine is sized by its
 * tests (BENCH_CAP holds the weights, not its engine buffers). Each ends on
 * the CPU after the note, with the CPU's figures. */
static void check_auto_engine_fallback(void)
{
    char args[4096], text[1200];
    const char *slash = strrchr(model, '/');
    snprintf(text, sizeof text, "%.*s/reference/heldout.txt", (int)(slash - model), model);

    snprintf(args, sizeof args, "perplexity -m '%s' -f '%s' -c %s --device cpu", model, text, HUGE_CTX);
    struct cli_result cpu = run_cli("", args);
    CHECKF(cpu.exit_code == 0 && strstr(cpu.out, "perplexity = "), "perplexity, CPU: exit %d: %s", cpu.exit_code,
           cpu.err);
    snprintf(args, sizeof args, "perplexity -m '%s' -f '%s' -c %s --device auto", model, text, HUGE_CTX);
    struct cli_result r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_HEAP_LIMIT=" ENGINE_CAP, args);
    CHECKF(r.exit_code == 0, "perplexity, engine buffers, auto: exit %d: %s", r.exit_code, r.err);
    CHECKF(line_starts(r.err, 0, "bitnet-vk: --device auto: vulkan: out of device memory: ") &&
               strstr(r.err, "for engine buffers") && strstr(r.err, "running on the CPU\n"),
           "perplexity, engine buffers, auto: note first: %s", r.err);
    CHECKF(strcmp(r.out, cpu.out) == 0, "perplexity after the fallback: '%s', CPU: '%s'", r.out, cpu.out);
    cli_result_free(&r);
    cli_result_free(&cpu);

    snprintf(args, sizeof args, "bench -m '%s' -p 64 -n 2 -r 1 --min-time 0 -t 1 --bw-mib 0 --csv --device auto", model);
    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_HEAP_LIMIT=" BENCH_CAP, args);
    CHECKF(r.exit_code == 0, "bench, engine buffers, auto: exit %d: %s", r.exit_code, r.err);
    CHECKF(line_starts(r.err, 0, "bitnet-vk: --device auto: vulkan: out of device memory: ") &&
               strstr(r.err, "for engine buffers") && strstr(r.err, "running on the CPU\n"),
           "bench, engine buffers, auto: note first: %s", r.err);
    int rows = 0;
    for (const char *p = strchr(r.out, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
        const char *ref = strstr(p + 1, ",\"reference\","), *end = strchr(p + 1, '\n');
        rows += strncmp(p + 1, "\"cpu\",", 6) == 0 && ref && (!end || ref < end);
    }
    CHECKF(rows == 2, "bench after the fallback: pp64 and tg2 as CPU rows: %s", r.out);
    cli_result_free(&r);
}

static void check_heap_limit(const char *ref, const char *ref_huge)
{
    char args[2048];
    struct cli_result r;

    /* Room for the weights through staging, as on a discrete GPU: the
     * staging chunk shrinks to the cap instead of asking for 32 MiB. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device lavapipe", model, N_GEN);
    r = run_cli("BN_VK_FORCE_STAGING=1 BN_VK_HEAP_LIMIT=" STAGING_CAP, args);
    CHECKF(r.exit_code == 0 && strcmp(r.out, ref) == 0, "staged upload under a %s cap: exit %d, '%s' vs '%s': %s",
           STAGING_CAP, r.exit_code, r.out, ref, r.err);
    cli_result_free(&r);

    /* Weights do not fit: the named device fails before any output. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device lavapipe", model, N_GEN);
    r = run_cli("BN_VK_HEAP_LIMIT=" WEIGHTS_CAP, args);
    expect_failure(&r, "bitnet-vk: --device lavapipe: vulkan: out of device memory: ", "for weights does not fit",
                   "heap limit, weights, lavapipe");
    CHECKF(strstr(r.err, "BN_VK_HEAP_LIMIT 1.0 MiB") != NULL, "the cap is named: %s", r.err);
    CHECKF(r.out[0] == '\0', "no output: '%s'", r.out);
    cli_result_free(&r);

    /* ... and auto goes to the CPU, saying why, with the CPU's output. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids", model, N_GEN);
    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_HEAP_LIMIT=" WEIGHTS_CAP, args);
    CHECKF(r.exit_code == 0, "heap limit, weights, auto: exit %d: %s", r.exit_code, r.err);
    CHECKF(line_starts(r.err, 0, "bitnet-vk: --device auto: vulkan: out of device memory: ") &&
               strstr(r.err, "running on the CPU\n") && strstr(r.err, "| cpu |"),
           "heap limit, weights, auto: note, then the CPU: %s", r.err);
    CHECKF(r.stderr_lines == 2, "note and stats line only: %s", r.err);
    CHECKF(strcmp(r.out, ref) == 0, "auto after the fallback: '%s', CPU: '%s'", r.out, ref);
    cli_result_free(&r);

    /* The weights fit but the KV cache of a huge context does not. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids -c %s --device lavapipe", model, N_GEN,
             HUGE_CTX);
    r = run_cli("BN_VK_HEAP_LIMIT=" ENGINE_CAP, args);
    expect_failure(&r, "bitnet-vk: vulkan: out of device memory: ", "for engine buffers does not fit",
                   "heap limit, engine buffers, lavapipe");
    CHECKF(r.out[0] == '\0', "no output: '%s'", r.out);
    cli_result_free(&r);

    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids -c %s --device auto", model, N_GEN,
             HUGE_CTX);
    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_HEAP_LIMIT=" ENGINE_CAP, args);
    CHECKF(r.exit_code == 0, "heap limit, engine buffers, auto: exit %d: %s", r.exit_code, r.err);
    CHECKF(line_starts(r.err, 0, "bitnet-vk: --device auto: vulkan: out of device memory: ") &&
               strstr(r.err, "for engine buffers") && strstr(r.err, "running on the CPU\n") &&
               strstr(r.err, "| cpu |"),
           "heap limit, engine buffers, auto: note, then the CPU: %s", r.err);
    /* The huge context is also past the model's trained one: warned. */
    CHECKF(r.stderr_lines == 3 && strstr(r.err, "longer than the model was trained on"),
           "note, context warning and stats line only: %s", r.err);
    CHECKF(strcmp(r.out, ref_huge) == 0, "auto after the fallback: '%s', CPU: '%s'", r.out, ref_huge);
    cli_result_free(&r);

    check_auto_engine_fallback();

    snprintf(args, sizeof args, "generate -m '%s' -p The -n 2 --device lavapipe", model);
    expect_usage_error("BN_VK_HEAP_LIMIT=lots", args);
}

/* The first `n` ids of a space-separated list, then a newline. */
static void first_ids(const char *ids, int n, char *out, size_t len)
{
    size_t k = 0;
    for (const char *p = ids; *p && *p != '\n' && k + 2 < len; p++) {
        if (*p == ' ' && --n == 0) break;
        out[k++] = *p;
    }
    out[k++] = '\n';
    out[k] = '\0';
}

static void check_device_lost(const char *ref)
{
    char args[3000];
    struct cli_result r;
    const char *lost =
        "bitnet-vk: vulkan: device lost (vkQueueSubmit returned VK_ERROR_DEVICE_LOST at queue submission ";

    /* The prompt's submission: nothing generated, nothing printed. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device lavapipe", model, N_GEN);
    r = run_cli("BN_VK_FAIL_SUBMIT=1", args);
    expect_failure(&r, lost, "submission 1, simulated by BN_VK_FAIL_SUBMIT", "device lost at submission 1");
    CHECKF(r.out[0] == '\0', "lost at submission 1: no output: '%s'", r.out);
    cli_result_free(&r);

    /* One submission per token: the 4th fails after 3 ids were printed. The
     * line is ended and nothing follows it. */
    r = run_cli("BN_VK_FAIL_SUBMIT=4", args);
    expect_failure(&r, lost, "submission 4,", "device lost at submission 4");
    char want[256];
    first_ids(ref, 3, want, sizeof want);
    CHECKF(strcmp(r.out, want) == 0, "lost at submission 4: stdout '%s', want '%s'", r.out, want);
    cli_result_free(&r);

    /* The loss seen by the fence wait instead of the submission. */
    r = run_cli("BN_VK_FAIL_WAIT=3", args);
    expect_failure(&r, "bitnet-vk: vulkan: device lost (vkWaitForFences returned VK_ERROR_DEVICE_LOST",
                   "submission 3, simulated by BN_VK_FAIL_WAIT", "device lost in the wait for submission 3");
    first_ids(ref, 2, want, sizeof want);
    CHECKF(strcmp(r.out, want) == 0, "lost waiting for submission 3: stdout '%s', want '%s'", r.out, want);
    cli_result_free(&r);

    /* Under auto the loss mid-run is fatal too: the tokens so far came from
     * the device, and the CPU would have to start over. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids", model, N_GEN);
    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_FAIL_SUBMIT=3", args);
    expect_failure(&r, lost, "submission 3,", "device lost at submission 3, auto");
    cli_result_free(&r);

    /* The sampling path (top-k candidates come back instead of an id). */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0.8 --seed 7 --ids --device lavapipe", model,
             N_GEN);
    r = run_cli("BN_VK_FAIL_SUBMIT=2", args);
    expect_failure(&r, lost, "submission 2,", "device lost while sampling");
    cli_result_free(&r);

    /* logits: one pass, one submission. */
    char out_path[1100];
    snprintf(out_path, sizeof out_path, "%s/logits.f32", dir);
    snprintf(args, sizeof args, "logits -m '%s' --tokens '1 2 3' -o '%s' --device lavapipe", model, out_path);
    r = run_cli("BN_VK_FAIL_SUBMIT=1", args);
    expect_failure(&r, lost, "submission 1,", "device lost in logits");
    cli_result_free(&r);

    /* A staged weight upload submits too: the named device fails, auto
     * falls back as for any device that cannot take the model. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device lavapipe", model, N_GEN);
    r = run_cli("BN_VK_FORCE_STAGING=1 BN_VK_FAIL_SUBMIT=1", args);
    expect_failure(&r, "bitnet-vk: --device lavapipe: vulkan: device lost (vkQueueSubmit", "submission 1,",
                   "device lost uploading weights");
    cli_result_free(&r);
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids", model, N_GEN);
    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_FORCE_STAGING=1 BN_VK_FAIL_SUBMIT=1", args);
    CHECKF(r.exit_code == 0 && line_starts(r.err, 0, "bitnet-vk: --device auto: vulkan: device lost") &&
               strstr(r.err, "| cpu |") && strcmp(r.out, ref) == 0,
           "device lost uploading weights, auto: exit %d, '%s': %s", r.exit_code, r.out, r.err);
    cli_result_free(&r);

    r = run_cli("BN_VK_AUTO_CPU=1 BN_VK_FAIL_SUBMIT=0", args);
    CHECKF(r.exit_code == 0 && strstr(r.err, "BN_VK_FAIL_SUBMIT=0") && strstr(r.err, "| cpu |"),
           "a malformed submission number under auto: a note, the CPU: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    snprintf(args, sizeof args, "generate -m '%s' -p The -n 2 --device lavapipe", model);
    expect_usage_error("BN_VK_FAIL_SUBMIT=x", args);

    /* The fence timeout: a value in range runs as usual, anything else is a
     * usage error naming the variable. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device lavapipe", model, N_GEN);
    r = run_cli("BN_VK_TIMEOUT_S=30", args);
    CHECKF(r.exit_code == 0 && strcmp(r.out, ref) == 0, "BN_VK_TIMEOUT_S=30: exit %d, '%s': %s", r.exit_code, r.out,
           r.err);
    cli_result_free(&r);
    const char *bad_timeouts[] = {"BN_VK_TIMEOUT_S=0", "BN_VK_TIMEOUT_S=86401", "BN_VK_TIMEOUT_S=10s",
                                  "BN_VK_TIMEOUT_S=-5"};
    for (size_t i = 0; i < sizeof bad_timeouts / sizeof bad_timeouts[0]; i++) expect_usage_error(bad_timeouts[i], args);
}

/* models/ beside tests/: __FILE__ is the absolute source path under CMake. */
static bool find_model(void)
{
    const char *f = __FILE__;
    const char *slash = strrchr(f, '/');
    if (!slash) return false;
    int n = snprintf(model, sizeof model, "%.*s/../models/fortunes-4m-i2_s.gguf", (int)(slash - f), f);
    struct stat st;
    return n > 0 && (size_t)n < sizeof model && stat(model, &st) == 0;
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test_vk_failures.tmp", BN_BINARY_DIR);
    char cmd[1100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
    if (!find_model()) return test_skip_or_fail("models/fortunes-4m-i2_s.gguf not found beside tests/");

    /* Greedy references on the CPU, at both context sizes. */
    char args[2048];
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids --device cpu", model, N_GEN);
    struct cli_result cpu = run_cli("", args);
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids -c %s --device cpu", model, N_GEN,
             HUGE_CTX);
    struct cli_result cpu_huge = run_cli("", args);
    CHECKF(cpu.exit_code == 0 && cpu.out[0] != '\0', "CPU reference: exit %d: %s", cpu.exit_code, cpu.err);
    CHECKF(cpu_huge.exit_code == 0 && cpu_huge.out[0] != '\0', "CPU reference, -c %s: exit %d: %s", HUGE_CTX,
           cpu_huge.exit_code, cpu_huge.err);

    /* Without lavapipe there is nothing to fail. */
    snprintf(args, sizeof args, "generate -m '%s' -p The -n %d --temp 0 --ids", model, N_GEN);
    struct cli_result probe = run_cli("BN_VK_AUTO_CPU=1", args);
    if (!strstr(probe.err, "| vulkan |")) {
        printf("no usable Vulkan device: %s", probe.err);
        cli_result_free(&probe);
        cli_result_free(&cpu);
        cli_result_free(&cpu_huge);
        return test_skip_or_fail("no usable Vulkan device (lavapipe)");
    }
    /* The hook makes auto take lavapipe; the device agrees with the CPU on
     * this model (the golden tests check that in depth). */
    CHECKF(probe.exit_code == 0 && probe.stderr_lines == 1 && strcmp(probe.out, cpu.out) == 0,
           "BN_VK_AUTO_CPU=1: auto runs on lavapipe: exit %d, '%s' vs CPU '%s': %s", probe.exit_code, probe.out,
           cpu.out, probe.err);
    cli_result_free(&probe);

    if (cpu.exit_code == 0 && cpu_huge.exit_code == 0) {
        check_heap_limit(cpu.out, cpu_huge.out);
        check_device_lost(cpu.out);
    }
    cli_result_free(&cpu);
    cli_result_free(&cpu_huge);
    return test_report("test_vk_failures");
}
