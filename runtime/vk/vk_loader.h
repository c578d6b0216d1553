/*
 * vk_loader.h - our own volk-style meta-loader: the binary never links
 * libvulkan. The loader library is opened at run time with dlopen, and every
 * Vulkan entry point is fetched through vkGetInstanceProcAddr /
 * vkGetDeviceProcAddr into per-level tables (no globals: one table per
 * instance and per device, so tests can open lavapipe and a GPU at once).
 *
 *     struct bn_vk_loader ld;
 *     if (bn_vk_loader_open(&ld, err, sizeof err) != BN_OK) -> CPU fallback, err says why
 *     ld.g.vkCreateInstance(&ici, NULL, &instance);
 *     struct bn_vk_instance_fns fi;
 *     bn_vk_load_instance(&ld, instance, &fi, err, sizeof err);
 *     ... fi.vkCreateDevice(...) ...
 *     struct bn_vk_device_fns fd;
 *     bn_vk_load_device(&fi, device, &fd, err, sizeof err);
 *     ... fd.vkCmdDispatch(...) ...
 *     bn_vk_loader_close(&ld);
 *
 * Every entry point is listed once below with REQUIRED or OPTIONAL. Loading
 * fails naming the first REQUIRED function that is missing; OPTIONAL ones are
 * left NULL for the caller to test.
 *
 * Test hook: BN_VK_LOADER_PATH=<file> makes the loader try only that file
 * (a path that does not exist simulates a machine without Vulkan).
 */
#ifndef BN_VK_LOADER_H
#define BN_VK_LOADER_H

#ifndef VK_NO_PROTOTYPES
#define VK_NO_PROTOTYPES
#endif
#include <vulkan/vulkan_core.h>

#include <stddef.h>

#include "status.h"

/* Loader-level commands, fetched with vkGetInstanceProcAddr(NULL, name). */
#define BN_VK_GLOBAL_FNS(X)                         \
    X(REQUIRED, vkCreateInstance)                   \
    X(REQUIRED, vkEnumerateInstanceExtensionProperties) \
    X(OPTIONAL, vkEnumerateInstanceLayerProperties) \
    X(OPTIONAL, vkEnumerateInstanceVersion)

/* Instance-level commands. */
#define BN_VK_INSTANCE_FNS(X)                               \
    X(REQUIRED, vkDestroyInstance)                          \
    X(REQUIRED, vkEnumeratePhysicalDevices)                 \
    X(REQUIRED, vkGetPhysicalDeviceProperties)              \
    X(REQUIRED, vkGetPhysicalDeviceProperties2)             \
    X(REQUIRED, vkGetPhysicalDeviceFeatures)                \
    X(REQUIRED, vkGetPhysicalDeviceFeatures2)               \
    X(REQUIRED, vkGetPhysicalDeviceMemoryProperties)        \
    X(REQUIRED, vkGetPhysicalDeviceQueueFamilyProperties)   \
    X(REQUIRED, vkEnumerateDeviceExtensionProperties)       \
    X(REQUIRED, vkCreateDevice)                             \
    X(REQUIRED, vkGetDeviceProcAddr)                        \
    X(OPTIONAL, vkCreateDebugUtilsMessengerEXT)             \
    X(OPTIONAL, vkDestroyDebugUtilsMessengerEXT)

/* Device-level commands, fetched with vkGetDeviceProcAddr. */
#define BN_VK_DEVICE_FNS(X)                         \
    X(REQUIRED, vkDestroyDevice)                    \
    X(REQUIRED, vkGetDeviceQueue)                   \
    X(REQUIRED, vkDeviceWaitIdle)                   \
    X(REQUIRED, vkQueueSubmit)                      \
    X(REQUIRED, vkQueueWaitIdle)                    \
    X(REQUIRED, vkAllocateMemory)                   \
    X(REQUIRED, vkFreeMemory)                       \
    X(REQUIRED, vkMapMemory)                        \
    X(REQUIRED, vkUnmapMemory)                      \
    X(REQUIRED, vkFlushMappedMemoryRanges)          \
    X(REQUIRED, vkInvalidateMappedMemoryRanges)     \
    X(REQUIRED, vkCreateBuffer)                     \
    X(REQUIRED, vkDestroyBuffer)                    \
    X(REQUIRED, vkGetBufferMemoryRequirements)      \
    X(REQUIRED, vkBindBufferMemory)                 \
    X(REQUIRED, vkCreateShaderModule)               \
    X(REQUIRED, vkDestroyShaderModule)              \
    X(REQUIRED, vkCreatePipelineCache)              \
    X(REQUIRED, vkDestroyPipelineCache)             \
    X(REQUIRED, vkCreateComputePipelines)           \
    X(REQUIRED, vkDestroyPipeline)                  \
    X(REQUIRED, vkCreatePipelineLayout)             \
    X(REQUIRED, vkDestroyPipelineLayout)            \
    X(REQUIRED, vkCreateDescriptorSetLayout)        \
    X(REQUIRED, vkDestroyDescriptorSetLayout)       \
    X(REQUIRED, vkCreateDescriptorPool)             \
    X(REQUIRED, vkDestroyDescriptorPool)            \
    X(REQUIRED, vkResetDescriptorPool)              \
    X(REQUIRED, vkAllocateDescriptorSets)           \
    X(REQUIRED, vkUpdateDescriptorSets)             \
    X(REQUIRED, vkCreateCommandPool)                \
    X(REQUIRED, vkDestroyCommandPool)               \
    X(REQUIRED, vkResetCommandPool)                 \
    X(REQUIRED, vkAllocateCommandBuffers)           \
    X(REQUIRED, vkFreeCommandBuffers)               \
    X(REQUIRED, vkBeginCommandBuffer)               \
    X(REQUIRED, vkEndCommandBuffer)                 \
    X(REQUIRED, vkResetCommandBuffer)               \
    X(REQUIRED, vkCmdBindPipeline)                  \
    X(REQUIRED, vkCmdBindDescriptorSets)            \
    X(REQUIRED, vkCmdPushConstants)                 \
    X(REQUIRED, vkCmdDispatch)                      \
    X(REQUIRED, vkCmdPipelineBarrier)               \
    X(REQUIRED, vkCmdCopyBuffer)                    \
    X(REQUIRED, vkCmdFillBuffer)                    \
    X(REQUIRED, vkCmdUpdateBuffer)                  \
    X(REQUIRED, vkCmdWriteTimestamp)                \
    X(REQUIRED, vkCmdResetQueryPool)                \
    X(REQUIRED, vkCreateQueryPool)                  \
    X(REQUIRED, vkDestroyQueryPool)                 \
    X(REQUIRED, vkGetQueryPoolResults)              \
    X(REQUIRED, vkCreateFence)                      \
    X(REQUIRED, vkDestroyFence)                     \
    X(REQUIRED, vkResetFences)                      \
    X(REQUIRED, vkWaitForFences)                    \
    X(REQUIRED, vkGetFenceStatus)                   \
    X(OPTIONAL, vkSetDebugUtilsObjectNameEXT)

#define BN_VK_DECLARE_PFN(req, name) PFN_##name name;

struct bn_vk_global_fns {
    BN_VK_GLOBAL_FNS(BN_VK_DECLARE_PFN)
};
struct bn_vk_instance_fns {
    BN_VK_INSTANCE_FNS(BN_VK_DECLARE_PFN)
};
struct bn_vk_device_fns {
    BN_VK_DEVICE_FNS(BN_VK_DECLARE_PFN)
};

struct bn_vk_loader {
    void *lib;                                  /* dlopen handle             */
    char lib_name[256];                         /* which file opened         */
    PFN_vkGetInstanceProcAddr vkGetInstanceProcAddr;
    struct bn_vk_global_fns g;
    uint32_t instance_version;                  /* VK_API_VERSION_1_0 if vkEnumerateInstanceVersion is absent */
};

/* Opens libvulkan.so.1 (then libvulkan.so; vulkan-1.dll / libvulkan.1.dylib /
 * libMoltenVK.dylib on other systems) and loads the global table.
 * BN_ERR_DEVICE with e.g. "no Vulkan loader (libvulkan.so.1 not found)". */
enum bn_status bn_vk_loader_open(struct bn_vk_loader *ld, char *err, size_t errlen);
/* Test seam: use a caller's vkGetInstanceProcAddr instead of dlopen. */
enum bn_status bn_vk_loader_open_custom(struct bn_vk_loader *ld, PFN_vkGetInstanceProcAddr gipa, char *err,
                                        size_t errlen);
/* dlclose and zero the struct; accepts a zeroed or closed loader. */
void bn_vk_loader_close(struct bn_vk_loader *ld);

enum bn_status bn_vk_load_instance(const struct bn_vk_loader *ld, VkInstance instance, struct bn_vk_instance_fns *fi,
                                   char *err, size_t errlen);
enum bn_status bn_vk_load_device(const struct bn_vk_instance_fns *fi, VkDevice device, struct bn_vk_device_fns *fd,
                                 char *err, size_t errlen);

/* "VK_ERROR_DEVICE_LOST", ... for messages. */
const char *bn_vk_result_name(VkResult r);

#endif
