/*
 * The Vulkan meta-loader without a Vulkan driver: a stub vkGetInstanceProcAddr
 * stands in for the loader, so REQUIRED/OPTIONAL handling, the level each
 * table is fetched at, and the messages can be checked on any machine.
 * BN_VK_LOADER_PATH makes the real open fail (or hit a library that is not a
 * Vulkan loader) the way a machine without Vulkan does.
 */
#include <stdint.h>
#include <stdlib.h>

#include "test_util.h"
#include "vk_loader.h"

/* ---- the stub loader ---- */

static const char *missing;          /* the one name the stub does not have */
static VkResult version_result = VK_SUCCESS;
static int gipa_null_calls, gipa_instance_calls, gdpa_calls;
static char fake_instance_obj, fake_device_obj;
#define FAKE_INSTANCE ((VkInstance)(void *)&fake_instance_obj)
#define FAKE_DEVICE ((VkDevice)(void *)&fake_device_obj)

static void VKAPI_CALL stub_any(void) {}

static VkResult VKAPI_CALL stub_enumerate_instance_version(uint32_t *v)
{
    *v = VK_MAKE_API_VERSION(0, 1, 3, 250);
    return version_result;
}

static PFN_vkVoidFunction VKAPI_CALL stub_gdpa(VkDevice device, const char *name)
{
    gdpa_calls++;
    if (device != FAKE_DEVICE) return NULL;
    if (missing && strcmp(name, missing) == 0) return NULL;
    return stub_any;
}

static PFN_vkVoidFunction VKAPI_CALL stub_gipa(VkInstance instance, const char *name)
{
    if (instance == VK_NULL_HANDLE) gipa_null_calls++;
    else gipa_instance_calls++;
    if (missing && strcmp(name, missing) == 0) return NULL;
    if (strcmp(name, "vkEnumerateInstanceVersion") == 0) return (PFN_vkVoidFunction)stub_enumerate_instance_version;
    if (strcmp(name, "vkGetDeviceProcAddr") == 0) return (PFN_vkVoidFunction)stub_gdpa;
    return stub_any;
}

static void reset_stub(const char *miss)
{
    missing = miss;
    version_result = VK_SUCCESS;
    gipa_null_calls = gipa_instance_calls = gdpa_calls = 0;
}

/* ---- tests ---- */

static void test_globals(void)
{
    struct bn_vk_loader ld;
    char err[256] = "";

    reset_stub(NULL);
    CHECKF(bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err) == BN_OK, "custom open: %s", err);
    CHECK(ld.g.vkCreateInstance != NULL && ld.g.vkEnumerateInstanceExtensionProperties != NULL, "globals loaded");
    CHECK(ld.instance_version == VK_MAKE_API_VERSION(0, 1, 3, 250), "instance version from vkEnumerateInstanceVersion");
    CHECK(gipa_null_calls > 0 && gipa_instance_calls == 0, "globals are fetched with a NULL instance");
    CHECK(ld.lib == NULL, "a custom loader opens no library");
    bn_vk_loader_close(&ld);
    CHECK(ld.vkGetInstanceProcAddr == NULL && ld.g.vkCreateInstance == NULL, "close zeroes the loader");
    bn_vk_loader_close(&ld); /* closing twice is harmless */

    /* A 1.0 loader: no vkEnumerateInstanceVersion is an answer, not an error. */
    reset_stub("vkEnumerateInstanceVersion");
    CHECKF(bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err) == BN_OK, "1.0 loader: %s", err);
    CHECK(ld.g.vkEnumerateInstanceVersion == NULL, "OPTIONAL missing -> NULL");
    CHECK(ld.instance_version == VK_API_VERSION_1_0, "1.0 when vkEnumerateInstanceVersion is absent");
    bn_vk_loader_close(&ld);

    reset_stub("vkEnumerateInstanceLayerProperties");
    CHECKF(bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err) == BN_OK, "no layer query: %s", err);
    CHECK(ld.g.vkEnumerateInstanceLayerProperties == NULL, "OPTIONAL layer query missing -> NULL");
    bn_vk_loader_close(&ld);

    reset_stub("vkCreateInstance");
    enum bn_status st = bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "vkCreateInstance"), "REQUIRED missing names it: %d %s", st, err);
    CHECK(ld.vkGetInstanceProcAddr == NULL && ld.g.vkEnumerateInstanceExtensionProperties == NULL,
          "a failed open leaves nothing half loaded");

    reset_stub(NULL);
    version_result = VK_ERROR_OUT_OF_HOST_MEMORY;
    st = bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "VK_ERROR_OUT_OF_HOST_MEMORY"), "version query failure: %s", err);

    st = bn_vk_loader_open_custom(&ld, NULL, err, sizeof err);
    CHECKF(st == BN_ERR_USAGE, "NULL vkGetInstanceProcAddr: %d", st);
}

#define CHECK_LOADED(req, fn) CHECKF(t.fn != NULL, "%s loaded", #fn);

static void test_instance_and_device(void)
{
    struct bn_vk_loader ld;
    struct bn_vk_instance_fns fi;
    struct bn_vk_device_fns fd;
    char err[256] = "";

    reset_stub(NULL);
    CHECKF(bn_vk_loader_open_custom(&ld, stub_gipa, err, sizeof err) == BN_OK, "open: %s", err);
    gipa_null_calls = 0;
    CHECKF(bn_vk_load_instance(&ld, FAKE_INSTANCE, &fi, err, sizeof err) == BN_OK, "instance table: %s", err);
    CHECK(gipa_instance_calls > 0 && gipa_null_calls == 0, "instance functions are fetched with the instance");
    {
        struct bn_vk_instance_fns t = fi;
        BN_VK_INSTANCE_FNS(CHECK_LOADED)
    }
    CHECKF(bn_vk_load_device(&fi, FAKE_DEVICE, &fd, err, sizeof err) == BN_OK, "device table: %s", err);
    CHECK(gdpa_calls > 0, "device functions come from vkGetDeviceProcAddr");
    {
        struct bn_vk_device_fns t = fd;
        BN_VK_DEVICE_FNS(CHECK_LOADED)
    }

    missing = "vkCreateDebugUtilsMessengerEXT";
    CHECKF(bn_vk_load_instance(&ld, FAKE_INSTANCE, &fi, err, sizeof err) == BN_OK, "optional instance fn: %s", err);
    CHECK(fi.vkCreateDebugUtilsMessengerEXT == NULL && fi.vkCreateDevice != NULL, "OPTIONAL instance fn -> NULL");

    missing = "vkCreateDevice";
    enum bn_status st = bn_vk_load_instance(&ld, FAKE_INSTANCE, &fi, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "vkCreateDevice"), "REQUIRED instance fn named: %s", err);
    CHECK(fi.vkDestroyInstance == NULL, "a failed table is zeroed");

    missing = NULL;
    CHECKF(bn_vk_load_instance(&ld, FAKE_INSTANCE, &fi, err, sizeof err) == BN_OK, "reload: %s", err);
    missing = "vkSetDebugUtilsObjectNameEXT";
    CHECKF(bn_vk_load_device(&fi, FAKE_DEVICE, &fd, err, sizeof err) == BN_OK, "optional device fn: %s", err);
    CHECK(fd.vkSetDebugUtilsObjectNameEXT == NULL && fd.vkCmdDispatch != NULL, "OPTIONAL device fn -> NULL");
    missing = "vkCmdDispatch";
    st = bn_vk_load_device(&fi, FAKE_DEVICE, &fd, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "vkCmdDispatch"), "REQUIRED device fn named: %s", err);
    CHECK(fd.vkDestroyDevice == NULL, "a failed device table is zeroed");
    bn_vk_loader_close(&ld);
}

static void test_real_open(void)
{
    struct bn_vk_loader ld;
    char err[256] = "";

    /* A machine without Vulkan, simulated. */
    setenv("BN_VK_LOADER_PATH", "/nonexistent/libvulkan.so.1", 1);
    enum bn_status st = bn_vk_loader_open(&ld, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "no Vulkan loader"), "missing loader: %d %s", st, err);
    CHECK(ld.lib == NULL && ld.vkGetInstanceProcAddr == NULL, "nothing kept after a failed open");
    bn_vk_loader_close(&ld);

    /* A library that opens but is no Vulkan loader. */
    setenv("BN_VK_LOADER_PATH", "libm.so.6", 1);
    st = bn_vk_loader_open(&ld, err, sizeof err);
    CHECKF(st == BN_ERR_DEVICE && strstr(err, "vkGetInstanceProcAddr"), "not a loader: %d %s", st, err);
    CHECK(ld.lib == NULL, "the wrong library is closed again");
    unsetenv("BN_VK_LOADER_PATH");

    /* The real loader, when this machine has one (not required here: the
     * gpu-labelled tests insist on it). */
    st = bn_vk_loader_open(&ld, err, sizeof err);
    if (st == BN_OK) {
        CHECK(ld.lib != NULL && ld.g.vkCreateInstance != NULL, "real loader: globals");
        CHECK(ld.instance_version >= VK_API_VERSION_1_0, "real loader: version");
        printf("real loader: %s, instance version %u.%u.%u\n", ld.lib_name, VK_API_VERSION_MAJOR(ld.instance_version),
               VK_API_VERSION_MINOR(ld.instance_version), VK_API_VERSION_PATCH(ld.instance_version));
    } else {
        CHECKF(st == BN_ERR_DEVICE && strstr(err, "no Vulkan loader"), "without a loader: %s", err);
        printf("no real loader here: %s\n", err);
    }
    bn_vk_loader_close(&ld);
}

int main(void)
{
    test_globals();
    test_instance_and_device();
    test_real_open();
    CHECK(strcmp(bn_vk_result_name(VK_ERROR_DEVICE_LOST), "VK_ERROR_DEVICE_LOST") == 0, "result names");
    CHECK(strcmp(bn_vk_result_name((VkResult)-123456), "VkResult (unknown code)") == 0, "unknown result name");
    return test_report("test_vk_loader");
}
