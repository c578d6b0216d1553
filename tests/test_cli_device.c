/*
 * The --device contract and `bitnet-vk devices`, through the binary:
 *  - the binary does not link libvulkan (no NEEDED entry), so it starts
 *    where Vulkan is absent;
 *  - with the loader hidden (BN_VK_LOADER_PATH=/nonexistent) or no driver
 *    (VK_ICD_FILENAMES pointing nowhere), --device auto runs on the CPU and
 *    says why in one note line, while a named Vulkan device exits 3 with one
 *    line;
 *  - malformed device names are usage errors (exit 1);
 *  - `devices` lists each device with what bitnet-vk needs and exits 0, or
 *    exits 3 with one line when there is no Vulkan to list.
 * Works in a build without the Vulkan backend too (then every Vulkan name
 * says so). The listing part needs a Vulkan device (label gpu).
 */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "synth_model.h"
#include "test_cli_util.h"

static char dir[1024], model[1100];

/* A hang (a fence never signalled) fails after 120 s. */
static struct cli_result run_cli(const char *env, const char *args) { return cli_run(dir, env, args, 120); }

static void check_no_libvulkan(void)
{
    char cmd[2048], path[1100];
    snprintf(path, sizeof path, "%s/readelf.txt", dir);
    snprintf(cmd, sizeof cmd, "readelf -d '%s' >'%s' 2>/dev/null", BN_CLI, path);
    if (system(cmd) != 0) {
        printf("readelf not available: NEEDED check skipped\n");
        return;
    }
    char *text = cli_read_text(path);
    CHECK(text && strstr(text, "NEEDED"), "readelf lists NEEDED entries");
    CHECKF(text && !strstr(text, "libvulkan"), "bitnet-vk does not link libvulkan:\n%s", text ? text : "");
    free(text);
}

#if defined(BN_HAVE_VULKAN)
#define NO_LOADER "no Vulkan loader"
#define NO_DRIVER "no Vulkan driver"
#else
#define NO_LOADER "this build has no Vulkan backend"
#define NO_DRIVER "this build has no Vulkan backend"
#endif

static void check_fallback(void)
{
    char args[2048];
    const char *hide = "BN_VK_LOADER_PATH=/nonexistent";
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -n 2 --temp 0 --ids --device auto", model);
    struct cli_result r = run_cli(hide, args);
    CHECKF(r.exit_code == 0 && r.out[0] != '\0', "auto without a loader runs on the CPU: exit %d: %s", r.exit_code,
           r.err);
#if defined(BN_HAVE_VULKAN)
    CHECKF(strstr(r.err, "bitnet-vk: --device auto: no Vulkan loader") && strstr(r.err, "running on the CPU"),
           "auto names the reason in a note: %s", r.err);
#else
    CHECKF(!strstr(r.err, "--device"), "a build without Vulkan falls back silently: %s", r.err);
#endif
    cli_result_free(&r);

    /* Loader present but no driver behind it. */
    r = run_cli("VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json", args);
    CHECKF(r.exit_code == 0 && r.out[0] != '\0', "auto without a driver runs on the CPU: exit %d: %s", r.exit_code,
           r.err);
#if defined(BN_HAVE_VULKAN)
    CHECKF(strstr(r.err, "--device auto: ") && strstr(r.err, "running on the CPU"), "no driver: note: %s", r.err);
#endif
    cli_result_free(&r);

    const char *named[] = {"vulkan", "vulkan:0", "lavapipe"};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -n 2 --temp 0 --device %s", model, named[i]);
        r = run_cli(hide, args);
        CHECKF(r.exit_code == 3 && r.stderr_lines == 1 && r.out[0] == '\0' && strstr(r.err, NO_LOADER) &&
                   strncmp(r.err, "bitnet-vk: --device ", 20) == 0,
               "--device %s without a loader: exit %d, %d lines: %s", named[i], r.exit_code, r.stderr_lines, r.err);
        cli_result_free(&r);
    }
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -n 2 --temp 0 --device vulkan", model);
    r = run_cli("VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json", args);
    CHECKF(r.exit_code == 3 && r.stderr_lines == 1 && strstr(r.err, NO_DRIVER), "--device vulkan, no driver: %d %s",
           r.exit_code, r.err);
    cli_result_free(&r);

    const char *bad[] = {"vulkan:", "vulkan:x", "vulkan:-1", "vulkan:1234567", "gpu", "Vulkan", "cpu:0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -n 2 --device '%s'", model, bad[i]);
        r = run_cli("", args);
        CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "--device %s is a usage error: exit %d: %s", bad[i],
               r.exit_code, r.err);
        cli_result_free(&r);
    }

    r = run_cli(hide, "devices");
    CHECKF(r.exit_code == 3 && r.stderr_lines == 1 && r.out[0] == '\0' && strstr(r.err, NO_LOADER),
           "devices without a loader: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    r = run_cli("", "devices --bogus");
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "devices --bogus: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    r = run_cli("", "devices --help");
    CHECKF(r.exit_code == 0 && strstr(r.out, "usage: bitnet-vk devices"), "devices --help: exit %d", r.exit_code);
    cli_result_free(&r);
}

#if defined(BN_HAVE_VULKAN)
/* Returns false when there is no Vulkan device to list. */
static bool check_listing(void)
{
    struct cli_result r = run_cli("", "devices");
    if (r.exit_code == 3) {
        printf("no Vulkan devices to list: %s", r.err);
        CHECKF(r.stderr_lines == 1, "devices without Vulkan: one line: %s", r.err);
        cli_result_free(&r);
        return false;
    }
    CHECKF(r.exit_code == 0 && r.err[0] == '\0', "devices: exit %d: %s", r.exit_code, r.err);
    const char *fields[] = {"Vulkan loader: ", "device 0: ", "  vendor: ", "  type: ", "  driver: ", "  api: ",
                            "  memory: ", "  features: ", "storage8 ", "storage16 ", "int8 ", "float16 ",
                            "subgroup-arith ", "int-dot ", "subgroup-size-control ", "  limits: ", "  status: ",
                            "--device auto: "};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        CHECKF(strstr(r.out, fields[i]) != NULL, "devices shows '%s'", fields[i]);
    /* lavapipe, when installed (CI): a CPU device, usable, not auto's pick. */
    if (strstr(r.out, "llvmpipe")) {
        CHECK(strstr(r.out, "  type:      cpu") && strstr(r.out, "Mesa"), "lavapipe listed as a Mesa CPU device");
        CHECK(strstr(r.out, "  status:    usable") != NULL, "lavapipe usable");
    }
    printf("%s", r.out);
    cli_result_free(&r);

    /* A device number that does not exist is a usage error. */
    char args[2048];
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -n 2 --device vulkan:99", model);
    r = run_cli("", args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1 && strstr(r.err, "vulkan:99"), "vulkan:99: exit %d: %s",
           r.exit_code, r.err);
    cli_result_free(&r);
    return true;
}
#endif

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test_cli_device.tmp", BN_BINARY_DIR);
    char cmd[2100];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
    snprintf(model, sizeof model, "%s/tiny.gguf", dir);
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    char err[256];
    if (bn_synth_write(&p, model, err, sizeof err) != BN_OK) {
        fprintf(stderr, "cannot write the model: %s\n", err);
        return 1;
    }

    check_no_libvulkan();
    check_fallback();
#if defined(BN_HAVE_VULKAN)
    bool listed = check_listing();
    if (!listed && test_failed_count == 0) return test_skip_or_fail("no Vulkan device: listing not checked");
#else
    struct cli_result r = run_cli("", "devices");
    CHECKF(r.exit_code == 3 && r.stderr_lines == 1 && strstr(r.err, "no Vulkan backend"), "devices: %d %s",
           r.exit_code, r.err);
    cli_result_free(&r);
#endif
    return test_report("test_cli_device");
}
