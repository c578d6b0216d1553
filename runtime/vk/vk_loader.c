/*
 * vk_loader.c - opens the Vulkan loader at run time and fills the function
 * tables of vk_loader.h. Nothing here links libvulkan: the only symbol taken
 * from the library is vkGetInstanceProcAddr, and every other entry point is
 * fetched through it (global and instance level) or through
 * vkGetDeviceProcAddr (device level, which skips the loader's trampolines).
 */
#include "vk_loader.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(_WIN32)
#include <windows.h>
#else
#include <dlfcn.h>
#endif

/* The tables store every entry point as its own PFN type but the loaders
 * hand out PFN_vkVoidFunction; the bytes are copied, which needs equal sizes. */
_Static_assert(sizeof(PFN_vkVoidFunction) == sizeof(PFN_vkCreateInstance), "function pointer sizes differ");

/* ============================ entry tables ============================ */

/* One row per entry point, made from the X-macro lists in vk_loader.h, so a
 * function is named in exactly one place. */
struct fn_entry {
    const char *name;
    size_t offset;  /* of its member in the table struct */
    bool required;
};

#define BN_VK_IS_REQUIRED true
#define BN_VK_IS_OPTIONAL false
#define GLOBAL_ROW(req, fn) {#fn, offsetof(struct bn_vk_global_fns, fn), BN_VK_IS_##req},
#define INSTANCE_ROW(req, fn) {#fn, offsetof(struct bn_vk_instance_fns, fn), BN_VK_IS_##req},
#define DEVICE_ROW(req, fn) {#fn, offsetof(struct bn_vk_device_fns, fn), BN_VK_IS_##req},

static const struct fn_entry global_rows[] = {BN_VK_GLOBAL_FNS(GLOBAL_ROW)};
static const struct fn_entry instance_rows[] = {BN_VK_INSTANCE_FNS(INSTANCE_ROW)};
static const struct fn_entry device_rows[] = {BN_VK_DEVICE_FNS(DEVICE_ROW)};

/* Fetches one entry point. gipa and gdpa share a signature shape but not a
 * type, so the caller passes whichever applies and the other as NULL. */
struct fetcher {
    PFN_vkGetInstanceProcAddr gipa;
    VkInstance instance;
    PFN_vkGetDeviceProcAddr gdpa;
    VkDevice device;
};

static PFN_vkVoidFunction fetch(const struct fetcher *f, const char *name)
{
    return f->gdpa ? f->gdpa(f->device, name) : f->gipa(f->instance, name);
}

/* Fills table (of table_size bytes) from rows. On a missing REQUIRED entry
 * the table is zeroed, so nobody calls through a half-loaded table, and the
 * error names the function. */
static enum bn_status fill_table(const struct fetcher *f, const struct fn_entry *rows, size_t n_rows, void *table,
                                 size_t table_size, const char *level, char *err, size_t errlen)
{
    memset(table, 0, table_size);
    for (size_t i = 0; i < n_rows; i++) {
        PFN_vkVoidFunction fn = fetch(f, rows[i].name);
        if (fn == NULL && rows[i].required) {
            memset(table, 0, table_size);
            return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: the %s lacks %s, which bitnet-vk requires", level,
                           rows[i].name);
        }
        memcpy((char *)table + rows[i].offset, &fn, sizeof fn);
    }
    return BN_OK;
}

/* ============================ the library ============================ */

#if defined(_WIN32)
static const char *const default_names[] = {"vulkan-1.dll"};
#elif defined(__APPLE__)
/* MoltenVK can stand in for the loader: it exports vkGetInstanceProcAddr too. */
static const char *const default_names[] = {"libvulkan.1.dylib", "libvulkan.dylib", "libMoltenVK.dylib"};
#else
/* The versioned name is the runtime package's; the bare one is only the
 * development symlink, tried second. */
static const char *const default_names[] = {"libvulkan.so.1", "libvulkan.so"};
#endif

static void *lib_open(const char *name)
{
#if defined(_WIN32)
    return (void *)LoadLibraryA(name);
#else
    /* RTLD_LOCAL keeps the loader's symbols out of the global namespace, so
     * nothing else in the process binds to them by accident. */
    return dlopen(name, RTLD_NOW | RTLD_LOCAL);
#endif
}

static void *lib_symbol(void *lib, const char *name)
{
#if defined(_WIN32)
    FARPROC p = GetProcAddress((HMODULE)lib, name);
    void *v;
    memcpy(&v, &p, sizeof v);
    return v;
#else
    return dlsym(lib, name);
#endif
}

static void lib_close(void *lib)
{
#if defined(_WIN32)
    FreeLibrary((HMODULE)lib);
#else
    dlclose(lib);
#endif
}

/* Loads the global table and asks the loader for its version. */
static enum bn_status load_globals(struct bn_vk_loader *ld, char *err, size_t errlen)
{
    struct fetcher f = {.gipa = ld->vkGetInstanceProcAddr};
    enum bn_status st = fill_table(&f, global_rows, sizeof global_rows / sizeof global_rows[0], &ld->g, sizeof ld->g,
                                   "Vulkan loader", err, errlen);
    if (st != BN_OK) return st;
    /* A 1.0 loader has no vkEnumerateInstanceVersion: that absence is the
     * answer, not an error. */
    ld->instance_version = VK_API_VERSION_1_0;
    if (ld->g.vkEnumerateInstanceVersion) {
        uint32_t v = 0;
        VkResult r = ld->g.vkEnumerateInstanceVersion(&v);
        if (r != VK_SUCCESS)
            return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: vkEnumerateInstanceVersion failed: %s",
                           bn_vk_result_name(r));
        ld->instance_version = v;
    }
    return BN_OK;
}

enum bn_status bn_vk_loader_open(struct bn_vk_loader *ld, char *err, size_t errlen)
{
    memset(ld, 0, sizeof *ld);
    const char *only = getenv("BN_VK_LOADER_PATH");
    const char *const *names = default_names;
    size_t n_names = sizeof default_names / sizeof default_names[0];
    if (only && only[0]) {
        names = &only;
        n_names = 1;
    }
    for (size_t i = 0; i < n_names && ld->lib == NULL; i++) {
        ld->lib = lib_open(names[i]);
        if (ld->lib) snprintf(ld->lib_name, sizeof ld->lib_name, "%s", names[i]);
    }
    if (ld->lib == NULL) {
        if (n_names == 1) return bn_errf(err, errlen, BN_ERR_DEVICE, "no Vulkan loader (%s not found)", names[0]);
#if defined(_WIN32) || defined(__APPLE__)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "no Vulkan loader (%s not found)", names[0]);
#else
        return bn_errf(err, errlen, BN_ERR_DEVICE,
                       "no Vulkan loader (libvulkan.so.1 not found; install libvulkan1 or use --device cpu)");
#endif
    }
    /* ISO C has no conversion from void * to a function pointer; copying the
     * bytes is well defined on every platform with dlsym and keeps
     * -Wpedantic quiet without a pragma. */
    void *sym = lib_symbol(ld->lib, "vkGetInstanceProcAddr");
    if (sym == NULL) {
        char name[sizeof ld->lib_name];
        memcpy(name, ld->lib_name, sizeof name);
        bn_vk_loader_close(ld);
        return bn_errf(err, errlen, BN_ERR_DEVICE, "no Vulkan loader (%s has no vkGetInstanceProcAddr)", name);
    }
    _Static_assert(sizeof sym == sizeof ld->vkGetInstanceProcAddr, "void * and function pointer sizes differ");
    memcpy(&ld->vkGetInstanceProcAddr, &sym, sizeof sym);
    enum bn_status st = load_globals(ld, err, errlen);
    if (st != BN_OK) bn_vk_loader_close(ld);
    return st;
}

enum bn_status bn_vk_loader_open_custom(struct bn_vk_loader *ld, PFN_vkGetInstanceProcAddr gipa, char *err,
                                        size_t errlen)
{
    memset(ld, 0, sizeof *ld);
    if (gipa == NULL) return bn_errf(err, errlen, BN_ERR_USAGE, "vulkan: no vkGetInstanceProcAddr given");
    snprintf(ld->lib_name, sizeof ld->lib_name, "(custom vkGetInstanceProcAddr)");
    ld->vkGetInstanceProcAddr = gipa;
    enum bn_status st = load_globals(ld, err, errlen);
    if (st != BN_OK) bn_vk_loader_close(ld);
    return st;
}

void bn_vk_loader_close(struct bn_vk_loader *ld)
{
    if (ld == NULL) return;
    if (ld->lib) lib_close(ld->lib);
    memset(ld, 0, sizeof *ld);
}

enum bn_status bn_vk_load_instance(const struct bn_vk_loader *ld, VkInstance instance, struct bn_vk_instance_fns *fi,
                                   char *err, size_t errlen)
{
    BN_ASSERT(ld->vkGetInstanceProcAddr != NULL && instance != VK_NULL_HANDLE);
    struct fetcher f = {.gipa = ld->vkGetInstanceProcAddr, .instance = instance};
    return fill_table(&f, instance_rows, sizeof instance_rows / sizeof instance_rows[0], fi, sizeof *fi,
                      "Vulkan instance", err, errlen);
}

enum bn_status bn_vk_load_device(const struct bn_vk_instance_fns *fi, VkDevice device, struct bn_vk_device_fns *fd,
                                 char *err, size_t errlen)
{
    BN_ASSERT(fi->vkGetDeviceProcAddr != NULL && device != VK_NULL_HANDLE);
    struct fetcher f = {.gdpa = fi->vkGetDeviceProcAddr, .device = device};
    return fill_table(&f, device_rows, sizeof device_rows / sizeof device_rows[0], fd, sizeof *fd, "Vulkan device",
                      err, errlen);
}

/* ============================ messages ============================ */

const char *bn_vk_result_name(VkResult r)
{
    switch (r) {
#define NAME(x) \
    case x: return #x;
        NAME(VK_SUCCESS)
        NAME(VK_NOT_READY)
        NAME(VK_TIMEOUT)
        NAME(VK_EVENT_SET)
        NAME(VK_EVENT_RESET)
        NAME(VK_INCOMPLETE)
        NAME(VK_ERROR_OUT_OF_HOST_MEMORY)
        NAME(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        NAME(VK_ERROR_INITIALIZATION_FAILED)
        NAME(VK_ERROR_DEVICE_LOST)
        NAME(VK_ERROR_MEMORY_MAP_FAILED)
        NAME(VK_ERROR_LAYER_NOT_PRESENT)
        NAME(VK_ERROR_EXTENSION_NOT_PRESENT)
        NAME(VK_ERROR_FEATURE_NOT_PRESENT)
        NAME(VK_ERROR_INCOMPATIBLE_DRIVER)
        NAME(VK_ERROR_TOO_MANY_OBJECTS)
        NAME(VK_ERROR_FORMAT_NOT_SUPPORTED)
        NAME(VK_ERROR_FRAGMENTED_POOL)
        NAME(VK_ERROR_UNKNOWN)
        NAME(VK_ERROR_OUT_OF_POOL_MEMORY)
        NAME(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        NAME(VK_ERROR_FRAGMENTATION)
        NAME(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        NAME(VK_PIPELINE_COMPILE_REQUIRED)
        NAME(VK_ERROR_VALIDATION_FAILED_EXT)
#undef NAME
    default: return "VkResult (unknown code)";
    }
}
