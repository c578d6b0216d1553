/*
 * vk_device.c - the Vulkan instance, what each physical device offers, and
 * one logical device with one compute queue.
 *
 * Feature probing uses the per-feature structs (8-bit storage, 16-bit
 * storage, float16/int8, integer dot product, subgroup size control) rather
 * than the VkPhysicalDeviceVulkan1xFeatures aggregates: the same structs
 * work on a 1.1 device through the KHR/EXT extensions and on 1.2/1.3
 * devices as core, and may be chained into VkDeviceCreateInfo unchanged.
 * A struct is chained only when the device's version or one of its
 * extensions defines it, so the validation layer sees no unknown structs.
 */
#include "vk_device.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_memory.h"

#if !defined(VK_VERSION_1_3)
#error "bitnet-vk needs the Vulkan 1.3 headers (Debian: libvulkan-dev)"
#endif

/* Lowest value BN_VK_MAX_BUFFER_RANGE accepts: below the usual 256-byte
 * storage-buffer offset alignment no split can be described. */
#define MIN_RANGE_CAP 256u

/* Device extensions bitnet-vk knows, as bits of probe.exts. */
enum {
    EXT_8BIT_STORAGE = 1u << 0,        /* core in 1.2 */
    EXT_FLOAT16_INT8 = 1u << 1,        /* core in 1.2 */
    EXT_DRIVER_PROPERTIES = 1u << 2,   /* core in 1.2 */
    EXT_INT_DOT = 1u << 3,             /* core in 1.3 */
    EXT_SUBGROUP_SIZE_CONTROL = 1u << 4, /* core in 1.3 */
    EXT_PORTABILITY_SUBSET = 1u << 5,  /* MoltenVK: must be enabled when offered */
};

static const struct {
    const char *name;
    uint32_t bit;
} known_exts[] = {
    {"VK_KHR_8bit_storage", EXT_8BIT_STORAGE},
    {"VK_KHR_shader_float16_int8", EXT_FLOAT16_INT8},
    {"VK_KHR_driver_properties", EXT_DRIVER_PROPERTIES},
    {"VK_KHR_shader_integer_dot_product", EXT_INT_DOT},
    {"VK_EXT_subgroup_size_control", EXT_SUBGROUP_SIZE_CONTROL},
    {"VK_KHR_portability_subset", EXT_PORTABILITY_SUBSET},
};

/* What device creation needs to know beyond the public info. */
struct probe {
    VkPhysicalDevice physical;
    uint32_t api;           /* usable version: min(device, instance), patch dropped */
    uint32_t exts;          /* EXT_* bits the device offers                        */
    uint32_t queue_family;  /* first family with COMPUTE; UINT32_MAX when none     */
};

struct bn_vk_instance {
    struct bn_vk_loader ld;
    struct bn_vk_instance_fns fn;
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;     /* VK_NULL_HANDLE without validation */
    uint32_t api_version;                   /* the apiVersion the instance asked for */
    bool validation;                        /* the layer is enabled              */
    atomic_uint validation_errors;          /* callbacks may come from any thread */
    uint32_t n_devices;
    struct probe *probes;                   /* [n_devices] */
    struct bn_vk_device_info *infos;        /* [n_devices] */
};

/* ============================ small helpers ============================ */

static uint32_t major_minor(uint32_t v)
{
    return VK_MAKE_API_VERSION(0, VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), 0);
}

static const char *vendor_name(uint32_t id)
{
    switch (id) {
    case 0x10DE: return "NVIDIA";
    case 0x1002: return "AMD";
    case 0x8086: return "Intel";
    case 0x106B: return "Apple";
    case 0x10005: return "Mesa";
    case 0x13B5: return "ARM";
    case 0x5143: return "Qualcomm";
    default: return "unknown";
    }
}

static const char *type_name(VkPhysicalDeviceType t)
{
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "cpu";
    default: return "other";
    }
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

/* Appends ", what" (or "what" first) to a fixed buffer. */
static void append_reason(char *buf, size_t len, const char *what)
{
    size_t n = strlen(buf);
    if (n + 1 >= len) return;
    snprintf(buf + n, len - n, "%s%s", n ? ", " : "", what);
}

/* The environment variable `name` as a plain decimal number from min to
 * max: 0 when unset or empty (out untouched), 1 when set (*out), -1 for
 * anything else, which the caller reports in its own words. */
static int env_number(const char *name, uint64_t min, uint64_t max, uint64_t *out)
{
    const char *s = getenv(name);
    if (s == NULL || s[0] == '\0') return 0;
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || v < min || v > max) return -1;
    *out = v;
    return 1;
}

/* BN_VK_MAX_BUFFER_RANGE: 0 when unset; BN_ERR_USAGE for anything but a
 * plain decimal byte count of at least MIN_RANGE_CAP. */
static enum bn_status read_range_cap(uint64_t *cap, char *err, size_t errlen)
{
    *cap = 0;
    if (env_number("BN_VK_MAX_BUFFER_RANGE", MIN_RANGE_CAP, UINT64_MAX, cap) >= 0) return BN_OK;
    return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_MAX_BUFFER_RANGE=%s: expected a byte count of at least %u",
                   getenv("BN_VK_MAX_BUFFER_RANGE"), MIN_RANGE_CAP);
}

/* BN_VK_FAIL_SUBMIT, BN_VK_FAIL_WAIT and BN_VK_TIMEOUT_WAIT: 0 when
 * unset; BN_ERR_USAGE for anything but a plain decimal submission number
 * of at least 1. */
static enum bn_status read_fail_submit(const char *name, uint64_t *at, char *err, size_t errlen)
{
    *at = 0;
    if (env_number(name, 1, UINT64_MAX, at) >= 0) return BN_OK;
    return bn_errf(err, errlen, BN_ERR_USAGE, "%s=%s: expected a submission number (1 = the first)", name,
                   getenv(name));
}

/* BN_VK_TIMEOUT_S: the default when unset; BN_ERR_USAGE for anything but
 * a plain decimal count of seconds from 1 to 86400. */
#define GPU_FENCE_TIMEOUT_S 60
#define CPU_FENCE_TIMEOUT_S 900
static enum bn_status read_fence_timeout(VkPhysicalDeviceType type, uint32_t *out, char *err, size_t errlen)
{
    uint64_t v = type == VK_PHYSICAL_DEVICE_TYPE_CPU ? CPU_FENCE_TIMEOUT_S : GPU_FENCE_TIMEOUT_S;
    if (env_number("BN_VK_TIMEOUT_S", 1, 86400, &v) < 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TIMEOUT_S=%s: expected seconds from 1 to 86400",
                       getenv("BN_VK_TIMEOUT_S"));
    *out = (uint32_t)v;
    return BN_OK;
}

/* BN_VK_VALIDATION: unset, "" or "0" is off; "sync" adds synchronization
 * validation (hazards between dispatches); anything else is core validation. */
static int validation_level_from_env(void)
{
    const char *s = getenv("BN_VK_VALIDATION");
    if (s == NULL || s[0] == '\0' || strcmp(s, "0") == 0) return 0;
    return strcmp(s, "sync") == 0 ? 2 : 1;
}

/* Prints one validation message as one line on stderr (newlines in the
 * message become spaces) and counts errors. Library code prints nothing
 * else: this only runs when the user asked for validation. */
static VKAPI_ATTR VkBool32 VKAPI_CALL on_validation_message(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                            VkDebugUtilsMessageTypeFlagsEXT types,
                                                            const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                            void *user)
{
    struct bn_vk_instance *vi = user;
    bool is_error = (severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) != 0;
    if (is_error && (types & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT))
        atomic_fetch_add(&vi->validation_errors, 1u);
    const char *msg = data && data->pMessage ? data->pMessage : "(no message)";
    /* One fputs of the whole line, so messages from several threads do not
     * interleave mid-line (stdio locks the stream per call). */
    static const char prefix[] = "bitnet-vk: vulkan validation: ";
    const char *level = is_error ? "error: " : "warning: ";
    size_t n = strlen(msg), len = sizeof prefix - 1 + strlen(level) + n + 2;
    char *line = malloc(len);
    if (line == NULL) return VK_FALSE;
    snprintf(line, len, "%s%s%s\n", prefix, level, msg);
    for (char *p = line; p < line + len - 2; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    fputs(line, stderr);
    free(line);
    return VK_FALSE; /* never abort the call that triggered the message */
}

/* BN_VK_TRY for the second call of a two-call enumeration, where
 * VK_INCOMPLETE only means the list grew since the count: what came back is
 * still a valid (shorter) list. */
#define BN_VK_TRY_LIST(call, st, err, errlen, label)                                                 \
    do {                                                                                         \
        VkResult bn_vk_r_ = (call);                                                              \
        if (bn_vk_r_ != VK_SUCCESS && bn_vk_r_ != VK_INCOMPLETE) {                               \
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s failed: %s (%s:%d)", #call,        \
                         bn_vk_result_name(bn_vk_r_), __FILE__, __LINE__);                       \
            goto label;                                                                          \
        }                                                                                        \
    } while (0)

/* ============================ probing ============================ */

static enum bn_status device_extensions(const struct bn_vk_instance *vi, VkPhysicalDevice pd, uint32_t *bits,
                                        char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    VkExtensionProperties *props = NULL;
    uint32_t n = 0;
    *bits = 0;
    BN_VK_TRY(vi->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL), st, err, errlen, done);
    props = calloc(n ? n : 1, sizeof *props);
    if (props == NULL) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory listing extensions");
    BN_VK_TRY_LIST(vi->fn.vkEnumerateDeviceExtensionProperties(pd, NULL, &n, props), st, err, errlen, done);
    for (uint32_t i = 0; i < n; i++)
        for (size_t k = 0; k < sizeof known_exts / sizeof known_exts[0]; k++)
            if (strcmp(props[i].extensionName, known_exts[k].name) == 0) *bits |= known_exts[k].bit;
done:
    free(props);
    return st;
}

static uint32_t first_compute_family(const struct bn_vk_instance *vi, VkPhysicalDevice pd, uint32_t *ts_bits)
{
    uint32_t n = 0, found = UINT32_MAX;
    *ts_bits = 0;
    vi->fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof *q);
    if (q == NULL) return UINT32_MAX;
    vi->fn.vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    for (uint32_t i = 0; i < n && found == UINT32_MAX; i++) {
        if (q[i].queueFlags & VK_QUEUE_COMPUTE_BIT) {
            found = i;
            *ts_bits = q[i].timestampValidBits;
        }
    }
    free(q);
    return found;
}

/* Fills info and probe for one physical device. A device whose queries
 * fail is listed as not usable with the reason; it never hides the others. */
static void probe_device(struct bn_vk_instance *vi, uint32_t index, VkPhysicalDevice pd, uint64_t range_cap,
                         struct probe *pr, struct bn_vk_device_info *info)
{
    char err[256];
    memset(info, 0, sizeof *info);
    memset(pr, 0, sizeof *pr);
    pr->physical = pd;
    info->index = index;

    VkPhysicalDeviceProperties p;
    vi->fn.vkGetPhysicalDeviceProperties(pd, &p);
    snprintf(info->name, sizeof info->name, "%s", p.deviceName);
    info->vendor_id = p.vendorID;
    info->device_id = p.deviceID;
    info->vendor = vendor_name(p.vendorID);
    info->type = p.deviceType;
    info->type_name = type_name(p.deviceType);
    info->api_version = p.apiVersion;
    info->driver_version = p.driverVersion;
    pr->api = major_minor(p.apiVersion) < vi->api_version ? major_minor(p.apiVersion) : vi->api_version;

    VkPhysicalDeviceMemoryProperties mem;
    vi->fn.vkGetPhysicalDeviceMemoryProperties(pd, &mem);
    info->n_heaps = mem.memoryHeapCount;
    for (uint32_t i = 0; i < mem.memoryHeapCount && i < VK_MAX_MEMORY_HEAPS; i++) {
        info->heaps[i].size = mem.memoryHeaps[i].size;
        info->heaps[i].device_local = (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0;
    }

    uint32_t ts_bits = 0;
    pr->queue_family = first_compute_family(vi, pd, &ts_bits);

    struct bn_vk_limits *lim = &info->limits;
    lim->max_storage_buffer_range = p.limits.maxStorageBufferRange;
    for (int i = 0; i < 3; i++) {
        lim->max_workgroup_count[i] = p.limits.maxComputeWorkGroupCount[i];
        lim->max_workgroup_size[i] = p.limits.maxComputeWorkGroupSize[i];
    }
    lim->max_workgroup_invocations = p.limits.maxComputeWorkGroupInvocations;
    lim->max_shared_memory = p.limits.maxComputeSharedMemorySize;
    lim->max_push_constants = p.limits.maxPushConstantsSize;
    lim->min_storage_buffer_offset_alignment = p.limits.minStorageBufferOffsetAlignment;
    lim->timestamp_valid_bits = ts_bits;
    lim->timestamp_period_ns = ts_bits ? p.limits.timestampPeriod : 0.0f;

    /* A 1.0 device cannot be asked through the *2 queries; it is listed
     * with what the 1.0 queries say and marked not usable. */
    if (pr->api < VK_API_VERSION_1_1) {
        lim->max_allocation_size = lim->max_buffer_size = lim->max_storage_buffer_range;
        snprintf(info->why_not, sizeof info->why_not, "Vulkan 1.0 only (bitnet-vk needs 1.1)");
        return;
    }
    if (device_extensions(vi, pd, &pr->exts, err, sizeof err) != BN_OK) {
        snprintf(info->why_not, sizeof info->why_not, "%s", err);
        return;
    }
    bool v12 = pr->api >= VK_API_VERSION_1_2, v13 = pr->api >= VK_API_VERSION_1_3;
    bool has_8bit = v12 || (pr->exts & EXT_8BIT_STORAGE);
    bool has_f16i8 = v12 || (pr->exts & EXT_FLOAT16_INT8);
    bool has_driver = v12 || (pr->exts & EXT_DRIVER_PROPERTIES);
    bool has_dot = v13 || (pr->exts & EXT_INT_DOT);
    bool has_ssc = v13 || (pr->exts & EXT_SUBGROUP_SIZE_CONTROL);

    /* Properties. Each struct is prepended to the chain only when defined. */
    void *head = NULL;
#define PREPEND(s)        \
    do {                  \
        (s).pNext = head; \
        head = &(s);      \
    } while (0)
    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceMaintenance4Properties m4 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    VkPhysicalDeviceDriverProperties drv = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES};
    VkPhysicalDeviceSubgroupSizeControlProperties sscp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceShaderIntegerDotProductProperties dotp = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    PREPEND(sg);
    PREPEND(m3);
    if (v13) PREPEND(m4);
    if (has_driver) PREPEND(drv);
    if (has_ssc) PREPEND(sscp);
    if (has_dot) PREPEND(dotp);
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    p2.pNext = head;
    vi->fn.vkGetPhysicalDeviceProperties2(pd, &p2);

    /* Features, the same way. */
    head = NULL;
    VkPhysicalDevice16BitStorageFeatures f16s = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    VkPhysicalDevice8BitStorageFeatures f8s = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
    VkPhysicalDeviceShaderFloat16Int8Features fi8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceSubgroupSizeControlFeatures fssc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    PREPEND(f16s);
    if (has_8bit) PREPEND(f8s);
    if (has_f16i8) PREPEND(fi8);
    if (has_dot) PREPEND(fdot);
    if (has_ssc) PREPEND(fssc);
#undef PREPEND
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.pNext = head;
    vi->fn.vkGetPhysicalDeviceFeatures2(pd, &f2);

    if (has_driver) {
        snprintf(info->driver_name, sizeof info->driver_name, "%s", drv.driverName);
        snprintf(info->driver_info, sizeof info->driver_info, "%s", drv.driverInfo);
    }

    struct bn_vk_features *ft = &info->features;
    ft->storage16 = f16s.storageBuffer16BitAccess;
    ft->storage8 = has_8bit && f8s.storageBuffer8BitAccess;
    ft->int8 = has_f16i8 && fi8.shaderInt8;
    ft->float16 = has_f16i8 && fi8.shaderFloat16;
    ft->int64 = f2.features.shaderInt64;
    ft->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                         (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    ft->int_dot = has_dot && fdot.shaderIntegerDotProduct;
    ft->int_dot_accelerated = ft->int_dot && dotp.integerDotProduct4x8BitPackedSignedAccelerated;
    ft->subgroup_size_control = has_ssc && fssc.subgroupSizeControl && fssc.computeFullSubgroups &&
                                (sscp.requiredSubgroupSizeStages & VK_SHADER_STAGE_COMPUTE_BIT);
    ft->subgroup_size = sg.subgroupSize;
    ft->min_subgroup_size = has_ssc && sscp.minSubgroupSize ? sscp.minSubgroupSize : sg.subgroupSize;
    ft->max_subgroup_size = has_ssc && sscp.maxSubgroupSize ? sscp.maxSubgroupSize : sg.subgroupSize;
    ft->max_workgroup_subgroups = has_ssc ? sscp.maxComputeWorkgroupSubgroups : 0;

    /* maxBufferSize exists from 1.3 on; before, one buffer can be no larger
     * than one allocation in practice. */
    lim->max_allocation_size = m3.maxMemoryAllocationSize;
    lim->max_buffer_size = v13 ? m4.maxBufferSize : m3.maxMemoryAllocationSize;
    if (range_cap) {
        lim->max_storage_buffer_range = min_u64(lim->max_storage_buffer_range, range_cap);
        lim->max_allocation_size = min_u64(lim->max_allocation_size, range_cap);
        lim->max_buffer_size = min_u64(lim->max_buffer_size, range_cap);
    }

    if (pr->queue_family == UINT32_MAX) append_reason(info->why_not, sizeof info->why_not, "no compute queue");
    if (!ft->storage8) append_reason(info->why_not, sizeof info->why_not, "no 8-bit storage buffers");
    if (!ft->storage16) append_reason(info->why_not, sizeof info->why_not, "no 16-bit storage buffers");
    if (!ft->int8) append_reason(info->why_not, sizeof info->why_not, "no shaderInt8");
    info->usable = info->why_not[0] == '\0';
}

/* ============================ instance ============================ */

static bool has_layer(const struct bn_vk_loader *ld, const char *name)
{
    uint32_t n = 0;
    bool found = false;
    if (ld->g.vkEnumerateInstanceLayerProperties == NULL) return false;
    if (ld->g.vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *props = calloc(n, sizeof *props);
    if (props == NULL) return false;
    VkResult r = ld->g.vkEnumerateInstanceLayerProperties(&n, props);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(props[i].layerName, name) == 0;
    free(props);
    return found;
}

/* Whether the loader (layer == NULL) or the named layer offers an instance extension. */
static bool has_instance_ext(const struct bn_vk_loader *ld, const char *layer, const char *name)
{
    uint32_t n = 0;
    bool found = false;
    if (ld->g.vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0) return false;
    VkExtensionProperties *props = calloc(n, sizeof *props);
    if (props == NULL) return false;
    VkResult r = ld->g.vkEnumerateInstanceExtensionProperties(layer, &n, props);
    if (r == VK_SUCCESS || r == VK_INCOMPLETE)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(props[i].extensionName, name) == 0;
    free(props);
    return found;
}

static const char *const validation_layer = "VK_LAYER_KHRONOS_validation";

enum bn_status bn_vk_instance_create(const struct bn_vk_instance_opts *opts, bn_vk_instance **out, char *err,
                                     size_t errlen)
{
    enum bn_status st;
    VkPhysicalDevice *physical = NULL;
    uint64_t range_cap = 0;
    *out = NULL;
    struct bn_vk_instance *vi = calloc(1, sizeof *vi);
    if (vi == NULL) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    atomic_init(&vi->validation_errors, 0u);

    if ((st = read_range_cap(&range_cap, err, errlen)) != BN_OK) goto fail;
    if ((st = bn_vk_loader_open(&vi->ld, err, errlen)) != BN_OK) goto fail;
    if (major_minor(vi->ld.instance_version) < VK_API_VERSION_1_1) {
        st = bn_errf(err, errlen, BN_ERR_DEVICE, "Vulkan loader %s is version 1.0 (bitnet-vk needs 1.1)",
                     vi->ld.lib_name);
        goto fail;
    }
    /* Ask for the newest version whose structs we use; each device is then
     * used at min(its version, this). */
    vi->api_version = major_minor(vi->ld.instance_version) < VK_API_VERSION_1_3 ? major_minor(vi->ld.instance_version)
                                                                                : VK_API_VERSION_1_3;

    const char *exts[4];
    uint32_t n_exts = 0;
    VkInstanceCreateFlags flags = 0;
    /* Without this the loader hides portability drivers (MoltenVK). */
    if (has_instance_ext(&vi->ld, NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }

    int level = (opts && opts->validation) ? 1 : 0;
    int env_level = validation_level_from_env();
    if (env_level > level) level = env_level;
    bool messenger = false, sync = false;
    if (level > 0) {
        if (!has_layer(&vi->ld, validation_layer)) {
            fprintf(stderr, "bitnet-vk: vulkan validation: %s is not installed; running without it\n",
                    validation_layer);
        } else {
            vi->validation = true;
            messenger = has_instance_ext(&vi->ld, NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
                        has_instance_ext(&vi->ld, validation_layer, VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
            if (messenger) exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            else fprintf(stderr, "bitnet-vk: vulkan validation: no %s; messages cannot be counted\n",
                         VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
            sync = level == 2 && has_instance_ext(&vi->ld, validation_layer, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME);
            if (sync) exts[n_exts++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
        }
    }

    VkDebugUtilsMessengerCreateInfoEXT mci = {.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
    mci.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
    /* Not GENERAL: that is the loader's channel ("Found no drivers!"), and
     * what it finds already comes back as our own one-line error. */
    mci.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
    mci.pfnUserCallback = on_validation_message;
    mci.pUserData = vi;
    VkValidationFeatureEnableEXT sync_enable = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT vf = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT};
    vf.enabledValidationFeatureCount = 1;
    vf.pEnabledValidationFeatures = &sync_enable;

    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "bitnet-vk";
    app.pEngineName = "bitnet-vk";
    app.apiVersion = vi->api_version;
    VkInstanceCreateInfo ici = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    ici.flags = flags;
    ici.pApplicationInfo = &app;
    ici.enabledExtensionCount = n_exts;
    ici.ppEnabledExtensionNames = n_exts ? exts : NULL;
    ici.enabledLayerCount = vi->validation ? 1 : 0;
    ici.ppEnabledLayerNames = vi->validation ? &validation_layer : NULL;
    /* Chained here, the messenger also sees vkCreateInstance and
     * vkDestroyInstance, which the separate messenger cannot. */
    if (messenger) {
        mci.pNext = ici.pNext;
        ici.pNext = &mci;
    }
    if (sync) {
        vf.pNext = ici.pNext;
        ici.pNext = &vf;
    }
    VkResult r = vi->ld.g.vkCreateInstance(&ici, NULL, &vi->instance);
    if (r != VK_SUCCESS) {
        vi->instance = VK_NULL_HANDLE;
        /* The loader's answer when it finds no driver (ICD) at all. */
        if (r == VK_ERROR_INCOMPATIBLE_DRIVER)
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "no Vulkan driver (vkCreateInstance: %s)", bn_vk_result_name(r));
        else st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: vkCreateInstance failed: %s", bn_vk_result_name(r));
        goto fail;
    }
    if ((st = bn_vk_load_instance(&vi->ld, vi->instance, &vi->fn, err, errlen)) != BN_OK) {
        /* Without the table there is no vkDestroyInstance to call: fetch
         * just that one so the instance is not leaked. */
        PFN_vkDestroyInstance destroy =
            (PFN_vkDestroyInstance)vi->ld.vkGetInstanceProcAddr(vi->instance, "vkDestroyInstance");
        if (destroy) destroy(vi->instance, NULL);
        vi->instance = VK_NULL_HANDLE;
        goto fail;
    }
    if (messenger && vi->fn.vkCreateDebugUtilsMessengerEXT) {
        mci.pNext = NULL;
        BN_VK_TRY(vi->fn.vkCreateDebugUtilsMessengerEXT(vi->instance, &mci, NULL, &vi->messenger), st, err, errlen,
                  fail);
    }

    uint32_t n = 0;
    BN_VK_TRY(vi->fn.vkEnumeratePhysicalDevices(vi->instance, &n, NULL), st, err, errlen, fail);
    physical = calloc(n ? n : 1, sizeof *physical);
    vi->probes = calloc(n ? n : 1, sizeof *vi->probes);
    vi->infos = calloc(n ? n : 1, sizeof *vi->infos);
    if (physical == NULL || vi->probes == NULL || vi->infos == NULL) {
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
        goto fail;
    }
    BN_VK_TRY_LIST(vi->fn.vkEnumeratePhysicalDevices(vi->instance, &n, physical), st, err, errlen, fail);
    vi->n_devices = n;
    for (uint32_t i = 0; i < n; i++) probe_device(vi, i, physical[i], range_cap, &vi->probes[i], &vi->infos[i]);
    free(physical);
    *out = vi;
    return BN_OK;

fail:
    free(physical);
    bn_vk_instance_destroy(vi);
    return st;
}

void bn_vk_instance_destroy(bn_vk_instance *vi)
{
    if (vi == NULL) return;
    free(vi->infos);
    free(vi->probes);
    if (vi->messenger != VK_NULL_HANDLE) vi->fn.vkDestroyDebugUtilsMessengerEXT(vi->instance, vi->messenger, NULL);
    if (vi->instance != VK_NULL_HANDLE) vi->fn.vkDestroyInstance(vi->instance, NULL);
    bn_vk_loader_close(&vi->ld);
    free(vi);
}

uint32_t bn_vk_instance_device_count(const bn_vk_instance *vi) { return vi ? vi->n_devices : 0; }

const struct bn_vk_device_info *bn_vk_instance_device_info(const bn_vk_instance *vi, uint32_t i)
{
    return vi && i < vi->n_devices ? &vi->infos[i] : NULL;
}

uint32_t bn_vk_instance_validation_errors(const bn_vk_instance *vi)
{
    return vi ? atomic_load(&((bn_vk_instance *)vi)->validation_errors) : 0;
}

bool bn_vk_instance_validation_enabled(const bn_vk_instance *vi) { return vi && vi->validation; }

const char *bn_vk_instance_loader_name(const bn_vk_instance *vi) { return vi ? vi->ld.lib_name : ""; }

uint32_t bn_vk_instance_loader_version(const bn_vk_instance *vi) { return vi ? vi->ld.instance_version : 0; }

int bn_vk_instance_pick_auto(const bn_vk_instance *vi, char *why, size_t whylen)
{
    static const VkPhysicalDeviceType order[] = {VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU,
                                                 VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU,
                                                 VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU};
    if (why && whylen) why[0] = '\0';
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
        for (uint32_t i = 0; i < vi->n_devices; i++)
            if (vi->infos[i].type == order[k] && vi->infos[i].usable) return (int)i;
    /* Test hook: with no GPU, a usable CPU device stands in for one, so the
     * paths where auto leaves Vulkan for the CPU run without a GPU. */
    const char *cpu_ok = getenv("BN_VK_AUTO_CPU");
    if (cpu_ok && cpu_ok[0] == '1')
        for (uint32_t i = 0; i < vi->n_devices; i++)
            if (vi->infos[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU && vi->infos[i].usable) return (int)i;
    /* Nothing to pick: explain with the most telling device. An unusable
     * GPU says more than a CPU device, which is skipped by design. */
    if (vi->n_devices == 0) {
        bn_errf(why, whylen, BN_ERR_DEVICE, "no Vulkan devices");
        return -1;
    }
    for (uint32_t i = 0; i < vi->n_devices; i++) {
        const struct bn_vk_device_info *d = &vi->infos[i];
        if (d->type != VK_PHYSICAL_DEVICE_TYPE_CPU && !d->usable) {
            bn_errf(why, whylen, BN_ERR_DEVICE, "Vulkan device %u (%s) not usable: %s", i, d->name, d->why_not);
            return -1;
        }
    }
    for (uint32_t i = 0; i < vi->n_devices; i++) {
        const struct bn_vk_device_info *d = &vi->infos[i];
        if (d->type == VK_PHYSICAL_DEVICE_TYPE_CPU) {
            bn_errf(why, whylen, BN_ERR_DEVICE,
                    "no Vulkan GPU: %s is a CPU device (name it with --device vulkan:%u or --device lavapipe)",
                    d->name, i);
            return -1;
        }
    }
    bn_errf(why, whylen, BN_ERR_DEVICE, "no Vulkan GPU: %s is of type %s", vi->infos[0].name, vi->infos[0].type_name);
    return -1;
}

int bn_vk_instance_pick_cpu(const bn_vk_instance *vi, char *why, size_t whylen)
{
    if (why && whylen) why[0] = '\0';
    for (uint32_t i = 0; vi && i < vi->n_devices; i++)
        if (vi->infos[i].type == VK_PHYSICAL_DEVICE_TYPE_CPU) return (int)i;
    bn_errf(why, whylen, BN_ERR_DEVICE, "no CPU Vulkan device (lavapipe: install mesa-vulkan-drivers)");
    return -1;
}

/* ============================ logical device ============================ */

/* What a device reads from the environment. */
struct device_settings {
    uint64_t fail_at, fail_wait_at, timeout_wait_at;
    uint32_t timeout_s;
};

static enum bn_status check_device(const bn_vk_instance *vi, uint32_t index, struct device_settings *set, char *err,
                                   size_t errlen)
{
    if (index >= vi->n_devices)
        return bn_errf(err, errlen, BN_ERR_USAGE, "no Vulkan device %u (%u found; see 'bitnet-vk devices')", index,
                       vi->n_devices);
    const struct bn_vk_device_info *info = &vi->infos[index];
    if (!info->usable)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "Vulkan device %u (%s) not usable: %s", index, info->name,
                       info->why_not);
    enum bn_status st;
    uint64_t heap_limit;
    if ((st = read_fail_submit("BN_VK_FAIL_SUBMIT", &set->fail_at, err, errlen)) != BN_OK ||
        (st = read_fail_submit("BN_VK_FAIL_WAIT", &set->fail_wait_at, err, errlen)) != BN_OK ||
        (st = read_fail_submit("BN_VK_TIMEOUT_WAIT", &set->timeout_wait_at, err, errlen)) != BN_OK ||
        (st = read_fence_timeout(info->type, &set->timeout_s, err, errlen)) != BN_OK ||
        (st = bn_vk_heap_limit_from_env(&heap_limit, err, errlen)) != BN_OK)
        return st;
    return BN_OK;
}

enum bn_status bn_vk_instance_check_device(const bn_vk_instance *vi, uint32_t index, char *err, size_t errlen)
{
    struct device_settings unused;
    return check_device(vi, index, &unused, err, errlen);
}

enum bn_status bn_vk_device_create(bn_vk_instance *vi, uint32_t index, struct bn_vk_device **out, char *err,
                                   size_t errlen)
{
    *out = NULL;
    struct device_settings set;
    enum bn_status st = check_device(vi, index, &set, err, errlen);
    if (st != BN_OK) return st;
    const struct bn_vk_device_info *info = &vi->infos[index];
    const struct probe *pr = &vi->probes[index];
    struct bn_vk_device *dev = calloc(1, sizeof *dev);
    if (dev == NULL) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    dev->submits = calloc(1, sizeof *dev->submits);
    if (dev->submits == NULL) {
        free(dev);
        return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    }
    dev->fence_timeout_s = set.timeout_s;
    dev->submits->fail_at = set.fail_at;
    dev->submits->fail_wait_at = set.fail_wait_at;
    dev->submits->timeout_wait_at = set.timeout_wait_at;
    dev->instance = vi;
    dev->ifn = &vi->fn;
    dev->info = info;
    dev->physical = pr->physical;
    dev->queue_family = pr->queue_family;
    vi->fn.vkGetPhysicalDeviceMemoryProperties(dev->physical, &dev->memory);

    /* Enable exactly what was probed, through the structs probing used. */
    const struct bn_vk_features *ft = &info->features;
    bool v12 = pr->api >= VK_API_VERSION_1_2, v13 = pr->api >= VK_API_VERSION_1_3;
    const char *exts[8];
    uint32_t n_exts = 0;
    void *head = NULL;
    VkPhysicalDevice16BitStorageFeatures f16s = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_16BIT_STORAGE_FEATURES};
    f16s.storageBuffer16BitAccess = VK_TRUE;
    f16s.pNext = head;
    head = &f16s;
    VkPhysicalDevice8BitStorageFeatures f8s = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_8BIT_STORAGE_FEATURES};
    f8s.storageBuffer8BitAccess = VK_TRUE;
    f8s.pNext = head;
    head = &f8s;
    if (!v12) exts[n_exts++] = VK_KHR_8BIT_STORAGE_EXTENSION_NAME;
    VkPhysicalDeviceShaderFloat16Int8Features fi8 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES};
    fi8.shaderInt8 = VK_TRUE;
    fi8.shaderFloat16 = ft->float16 ? VK_TRUE : VK_FALSE;
    fi8.pNext = head;
    head = &fi8;
    if (!v12) exts[n_exts++] = VK_KHR_SHADER_FLOAT16_INT8_EXTENSION_NAME;
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    if (ft->int_dot) {
        fdot.shaderIntegerDotProduct = VK_TRUE;
        fdot.pNext = head;
        head = &fdot;
        if (!v13) exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    }
    VkPhysicalDeviceSubgroupSizeControlFeatures fssc = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    if (ft->subgroup_size_control) {
        fssc.subgroupSizeControl = VK_TRUE;
        fssc.computeFullSubgroups = VK_TRUE;
        fssc.pNext = head;
        head = &fssc;
        if (!v13) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    }
    /* The portability spec requires enabling this whenever it is offered. */
    if (pr->exts & EXT_PORTABILITY_SUBSET) exts[n_exts++] = "VK_KHR_portability_subset";
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f2.features.shaderInt64 = ft->int64 ? VK_TRUE : VK_FALSE;
    f2.pNext = head;

    float priority = 1.0f;
    VkDeviceQueueCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qci.queueFamilyIndex = dev->queue_family;
    qci.queueCount = 1;
    qci.pQueuePriorities = &priority;
    VkDeviceCreateInfo dci = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    dci.pNext = &f2; /* features go through the chain, so pEnabledFeatures stays NULL */
    dci.queueCreateInfoCount = 1;
    dci.pQueueCreateInfos = &qci;
    dci.enabledExtensionCount = n_exts;
    dci.ppEnabledExtensionNames = n_exts ? exts : NULL;
    BN_VK_TRY(vi->fn.vkCreateDevice(dev->physical, &dci, NULL, &dev->device), st, err, errlen, fail_no_device);
    if ((st = bn_vk_load_device(&vi->fn, dev->device, &dev->fn, err, errlen)) != BN_OK) {
        /* As for the instance: fetch only vkDestroyDevice to clean up. */
        PFN_vkDestroyDevice destroy = (PFN_vkDestroyDevice)vi->fn.vkGetDeviceProcAddr(dev->device, "vkDestroyDevice");
        if (destroy) destroy(dev->device, NULL);
        dev->device = VK_NULL_HANDLE;
        goto fail;
    }
    dev->fn.vkGetDeviceQueue(dev->device, dev->queue_family, 0, &dev->queue);
    *out = dev;
    return BN_OK;

fail_no_device:
    dev->device = VK_NULL_HANDLE;
fail:
    bn_vk_device_destroy(dev);
    return st;
}

void bn_vk_device_destroy(struct bn_vk_device *dev)
{
    if (dev == NULL) return;
    if (dev->device != VK_NULL_HANDLE) {
        /* Work still in flight would use freed objects; waiting is the only
         * safe order even after a failure. Its result cannot change what we
         * do next, so it is not checked. A lost device answers at once
         * with VK_ERROR_DEVICE_LOST: one call, never a retry loop. */
        (void)dev->fn.vkDeviceWaitIdle(dev->device);
        dev->fn.vkDestroyDevice(dev->device, NULL);
    }
    free(dev->submits);
    free(dev);
}

VkResult bn_vk_queue_submit(const struct bn_vk_device *dev, const VkSubmitInfo *si, VkFence fence)
{
    struct bn_vk_submit_state *s = dev->submits;
    s->count++;
    if (s->lost) return VK_ERROR_DEVICE_LOST;
    if (s->fail_at != 0 && s->count >= s->fail_at) {
        /* Nothing reaches the queue, so the fence stays unsignalled: the
         * caller must not wait on it, exactly as after a real loss. */
        s->lost = true;
        s->simulated_by = "BN_VK_FAIL_SUBMIT";
        return VK_ERROR_DEVICE_LOST;
    }
    VkResult r = dev->fn.vkQueueSubmit(dev->queue, 1, si, fence);
    if (r == VK_ERROR_DEVICE_LOST) s->lost = true;
    return r;
}

void bn_vk_device_mark_lost(const struct bn_vk_device *dev) { dev->submits->lost = true; }

VkResult bn_vk_device_wait_hook(const struct bn_vk_device *dev, VkResult r)
{
    struct bn_vk_submit_state *s = dev->submits;
    if (r != VK_SUCCESS) return r;
    if (s->fail_wait_at != 0 && s->count >= s->fail_wait_at) {
        s->simulated_by = "BN_VK_FAIL_WAIT";
        return VK_ERROR_DEVICE_LOST;
    }
    if (s->timeout_wait_at != 0 && s->count == s->timeout_wait_at) {
        s->simulated_by = "BN_VK_TIMEOUT_WAIT";
        return VK_TIMEOUT;
    }
    return VK_SUCCESS;
}

enum bn_status bn_vk_device_timeout_error(const struct bn_vk_device *dev, char *err, size_t errlen)
{
    const struct bn_vk_submit_state *s = dev->submits;
    if (s->simulated_by)
        return bn_errf(err, errlen, BN_ERR_DEVICE,
                       "vulkan: the device did not finish its work (a timeout at queue submission %llu, simulated by "
                       "%s)",
                       (unsigned long long)s->count, s->simulated_by);
    return bn_errf(err, errlen, BN_ERR_DEVICE,
                   "vulkan: the device did not finish its work within %u s (hung? BN_VK_TIMEOUT_S raises the limit; "
                   "a smaller -b shortens each submission)",
                   dev->fence_timeout_s);
}

enum bn_status bn_vk_device_lost_error(const struct bn_vk_device *dev, const char *call, char *err, size_t errlen)
{
    const struct bn_vk_submit_state *s = dev->submits;
    return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: device lost (%s returned VK_ERROR_DEVICE_LOST at queue "
                   "submission %llu%s%s): the driver reset or crashed; the run cannot go on",
                   call, (unsigned long long)s->count, s->simulated_by ? ", simulated by " : "",
                   s->simulated_by ? s->simulated_by : "");
}
