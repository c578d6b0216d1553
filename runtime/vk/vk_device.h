/*
 * vk_device.h - Vulkan instance, physical-device discovery and feature
 * probing, and one logical device with one compute queue.
 *
 *     bn_vk_instance *vi;
 *     bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &vi, err, sizeof err);
 *     for (uint32_t i = 0; i < bn_vk_instance_device_count(vi); i++) {
 *         const struct bn_vk_device_info *info = bn_vk_instance_device_info(vi, i);
 *         ... info->name, info->usable, info->why_not ...
 *     }
 *     struct bn_vk_device *dev;
 *     bn_vk_device_create(vi, index, &dev, err, sizeof err);
 *     ... dev->fn.vkCreateBuffer(dev->device, ...) ...
 *     bn_vk_device_destroy(dev);
 *     bn_vk_instance_destroy(vi);
 *
 * A device is "usable" when it offers Vulkan 1.1+, a compute queue, storage
 * buffers with 8- and 16-bit access (storageBuffer8BitAccess,
 * storageBuffer16BitAccess) and shaderInt8; float16 arithmetic, subgroup
 * arithmetic, integer dot product and subgroup size control are optional and
 * select shader variants. Otherwise why_not says what is missing.
 *
 * Environment (debugging and tests):
 *   BN_VK_VALIDATION=1        enable VK_LAYER_KHRONOS_validation; messages go
 *                             to stderr, one line each ("bitnet-vk: vulkan
 *                             validation: error: ..."), and errors are
 *                             counted; =sync adds synchronization validation.
 *                             Without the layer installed a line says so and
 *                             the run goes on unvalidated.
 *   BN_VK_MAX_BUFFER_RANGE=N  lower maxStorageBufferRange,
 *                             maxMemoryAllocationSize and maxBufferSize to N
 *                             bytes (decimal, N >= 256), so tests exercise
 *                             the split of oversized tensors
 *   BN_VK_FAIL_SUBMIT=N       test hook: the Nth queue submission of a device
 *                             (1 = the first) returns VK_ERROR_DEVICE_LOST
 *                             without reaching the driver, and so does every
 *                             later one, as on a really lost device
 *   BN_VK_FAIL_WAIT=N         test hook: the Nth submission runs, then its
 *                             fence wait reports VK_ERROR_DEVICE_LOST (the
 *                             loss seen by vkWaitForFences)
 *   BN_VK_TIMEOUT_WAIT=N      test hook: the Nth submission runs, then its
 *                             fence wait reports VK_TIMEOUT, as for work
 *                             that outlasts BN_VK_TIMEOUT_S (the device is
 *                             not lost: only what the caller does next
 *                             keeps it from using what may still run)
 *   BN_VK_AUTO_CPU=1          test hook: when there is no usable GPU,
 *                             --device auto may pick a CPU-type device
 *                             (lavapipe), so tests without a GPU reach the
 *                             paths where auto falls back from Vulkan
 *   BN_VK_HEAP_LIMIT          (vk_memory.h) caps the device memory allocated
 */
#ifndef BN_VK_DEVICE_H
#define BN_VK_DEVICE_H

#include <stdbool.h>
#include <stdint.h>

#include "vk_loader.h"

struct bn_vk_features {
    bool storage8;              /* storageBuffer8BitAccess (required)                 */
    bool storage16;             /* storageBuffer16BitAccess (required)                */
    bool int8;                  /* shaderInt8 (required)                              */
    bool float16;               /* shaderFloat16                                       */
    bool int64;                 /* shaderInt64                                         */
    bool subgroup_arith;        /* subgroup arithmetic in compute shaders              */
    bool int_dot;               /* shaderIntegerDotProduct (VK 1.3 or the KHR ext)     */
    bool subgroup_size_control; /* subgroupSizeControl + computeFullSubgroups          */
    uint32_t subgroup_size;     /* default subgroup size                               */
    uint32_t min_subgroup_size, max_subgroup_size;
    uint32_t max_workgroup_subgroups; /* maxComputeWorkgroupSubgroups (0: unknown) */
    bool int_dot_accelerated;   /* int_dot and the 4x8-bit packed signed form is fast  */
};

struct bn_vk_limits {
    uint64_t max_storage_buffer_range;  /* after BN_VK_MAX_BUFFER_RANGE          */
    uint64_t max_allocation_size;       /* maxMemoryAllocationSize, same cap     */
    uint64_t max_buffer_size;           /* maxBufferSize (1.3) or allocation cap */
    uint32_t max_workgroup_count[3];
    uint32_t max_workgroup_size[3];
    uint32_t max_workgroup_invocations;
    uint32_t max_shared_memory;
    uint32_t max_push_constants;
    uint64_t min_storage_buffer_offset_alignment;
    float timestamp_period_ns;          /* 0 when the queue has no timestamps */
    uint32_t timestamp_valid_bits;      /* of the compute queue; 0: no timestamps */
};

struct bn_vk_heap {
    uint64_t size;
    bool device_local;
};

struct bn_vk_device_info {
    uint32_t index;                     /* position in vkEnumeratePhysicalDevices */
    char name[256];
    uint32_t vendor_id, device_id;
    const char *vendor;                 /* "NVIDIA", "AMD", "Intel", "Apple", "Mesa", ... */
    VkPhysicalDeviceType type;
    const char *type_name;              /* "discrete", "integrated", "virtual", "cpu", "other" */
    char driver_name[256];              /* VkPhysicalDeviceDriverProperties (1.2) or "" */
    char driver_info[256];
    uint32_t api_version, driver_version;
    uint32_t n_heaps;
    struct bn_vk_heap heaps[VK_MAX_MEMORY_HEAPS];
    struct bn_vk_features features;
    struct bn_vk_limits limits;
    bool usable;
    char why_not[256];                  /* empty when usable */
};

typedef struct bn_vk_instance bn_vk_instance;

struct bn_vk_instance_opts {
    bool validation; /* also enabled by BN_VK_VALIDATION=1 */
};

/* Opens the loader and creates an instance (API 1.1 or higher as the loader
 * allows), then probes every physical device. BN_ERR_DEVICE when there is no
 * loader or no instance, with the reason. */
enum bn_status bn_vk_instance_create(const struct bn_vk_instance_opts *opts, bn_vk_instance **out, char *err,
                                     size_t errlen);
void bn_vk_instance_destroy(bn_vk_instance *vi); /* accepts NULL */
uint32_t bn_vk_instance_device_count(const bn_vk_instance *vi);
const struct bn_vk_device_info *bn_vk_instance_device_info(const bn_vk_instance *vi, uint32_t i);
/* Validation messages of severity error seen so far. */
uint32_t bn_vk_instance_validation_errors(const bn_vk_instance *vi);
/* Whether the validation layer is on (requested and installed). */
bool bn_vk_instance_validation_enabled(const bn_vk_instance *vi);
/* The loader library that was opened ("libvulkan.so.1") and its instance
 * version (vkEnumerateInstanceVersion), for `bitnet-vk devices`. */
const char *bn_vk_instance_loader_name(const bn_vk_instance *vi);
uint32_t bn_vk_instance_loader_version(const bn_vk_instance *vi);

/* The device "auto" picks: the first usable discrete GPU, else integrated,
 * else virtual; never a CPU device (lavapipe). -1 when none, with the reason
 * in why (e.g. "no Vulkan GPU: llvmpipe is a CPU device (name it with
 * --device vulkan:0)"). */
int bn_vk_instance_pick_auto(const bn_vk_instance *vi, char *why, size_t whylen);
/* The first CPU-type device (lavapipe), usable or not (bn_vk_device_create
 * then says why not); -1 with the reason when there is none. This is what
 * `--device lavapipe` names. */
int bn_vk_instance_pick_cpu(const bn_vk_instance *vi, char *why, size_t whylen);

/* Queue submissions of one device, counted for the BN_VK_FAIL_SUBMIT,
 * BN_VK_FAIL_WAIT and BN_VK_TIMEOUT_WAIT hooks; a lost device is
 * remembered. Reached through a pointer so that code holding a const
 * device can submit. */
struct bn_vk_submit_state {
    uint64_t count;           /* submissions attempted so far                  */
    uint64_t fail_at;         /* BN_VK_FAIL_SUBMIT; 0 when off                 */
    uint64_t fail_wait_at;    /* BN_VK_FAIL_WAIT; 0 when off                   */
    uint64_t timeout_wait_at; /* BN_VK_TIMEOUT_WAIT; 0 when off                */
    bool lost;                /* VK_ERROR_DEVICE_LOST seen (submit or wait)    */
    const char *simulated_by; /* the hook that caused it; NULL when real       */
};

/* One logical device with the features the shaders use enabled. Owned by the
 * caller; the instance must outlive it. */
struct bn_vk_device {
    bn_vk_instance *instance;
    const struct bn_vk_instance_fns *ifn;
    const struct bn_vk_device_info *info;
    VkPhysicalDevice physical;
    VkDevice device;
    struct bn_vk_device_fns fn;
    VkQueue queue;
    uint32_t queue_family;
    VkPhysicalDeviceMemoryProperties memory;
    struct bn_vk_submit_state *submits;
    /* The longest wait for one submission before it counts as hung:
     * BN_VK_TIMEOUT_S, else 60 s, or 900 s on a CPU device (lavapipe runs a
     * 512-token 2B4T prompt batch in minutes on a small machine). */
    uint32_t fence_timeout_s;
};

/* Whether device index exists (else BN_ERR_USAGE), is usable (else
 * BN_ERR_DEVICE with why_not) and the settings a device reads from the
 * environment (BN_VK_TIMEOUT_S, BN_VK_FAIL_SUBMIT, BN_VK_FAIL_WAIT,
 * BN_VK_TIMEOUT_WAIT, BN_VK_HEAP_LIMIT) are valid (else BN_ERR_USAGE):
 * what bn_vk_device_create and the allocator would refuse, checked without
 * opening the device. */
enum bn_status bn_vk_instance_check_device(const bn_vk_instance *vi, uint32_t index, char *err, size_t errlen);

/* BN_ERR_DEVICE with the reason when the device is not usable or creation
 * fails (the VkResult named). */
enum bn_status bn_vk_device_create(bn_vk_instance *vi, uint32_t index, struct bn_vk_device **out, char *err,
                                   size_t errlen);
void bn_vk_device_destroy(struct bn_vk_device *dev); /* accepts NULL */

/* vkQueueSubmit of one batch on the device's queue, through the
 * BN_VK_FAIL_SUBMIT hook. Once the device is lost (here, or a fence wait
 * reported it through bn_vk_device_mark_lost) it returns
 * VK_ERROR_DEVICE_LOST without calling the driver. */
VkResult bn_vk_queue_submit(const struct bn_vk_device *dev, const VkSubmitInfo *si, VkFence fence);
void bn_vk_device_mark_lost(const struct bn_vk_device *dev);
/* The BN_VK_FAIL_WAIT and BN_VK_TIMEOUT_WAIT hooks: what the wait for the
 * submission just made is to report, given r from vkWaitForFences (its
 * work has completed when r is VK_SUCCESS): VK_ERROR_DEVICE_LOST,
 * VK_TIMEOUT, or r itself. */
VkResult bn_vk_device_wait_hook(const struct bn_vk_device *dev, VkResult r);
/* "vulkan: device lost (...)": one line for a lost device, naming the call
 * that saw it and whether the test hook caused it. Returns BN_ERR_DEVICE. */
enum bn_status bn_vk_device_lost_error(const struct bn_vk_device *dev, const char *call, char *err, size_t errlen);
/* "vulkan: the device did not finish its work ...": one line for a fence
 * wait that timed out, with the limit, or naming the hook that simulated
 * it. Returns BN_ERR_DEVICE. */
enum bn_status bn_vk_device_timeout_error(const struct bn_vk_device *dev, char *err, size_t errlen);

/* Every VkResult goes through this: on failure it writes "CALL failed:
 * VK_ERROR_X (file:line)" into err and jumps to the given label. */
#define BN_VK_TRY(call, st, err, errlen, label)                                                       \
    do {                                                                                          \
        VkResult bn_vk_r_ = (call);                                                               \
        if (bn_vk_r_ != VK_SUCCESS) {                                                             \
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s failed: %s (%s:%d)", #call,         \
                         bn_vk_result_name(bn_vk_r_), __FILE__, __LINE__);                        \
            goto label;                                                                           \
        }                                                                                         \
    } while (0)

#endif
