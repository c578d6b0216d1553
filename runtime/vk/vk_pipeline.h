/*
 * vk_pipeline.h - compute pipelines as records, and the few command helpers
 * every encoder shares: one dispatch helper, one barrier helper, one
 * submit-and-wait.
 *
 *     struct bn_vk_pipeline p;
 *     bn_vk_pipeline_create(dev, &(struct bn_vk_pipeline_desc){
 *         .name = "rmsnorm_f32_f32", .spv = rmsnorm_f32_f32_spv, .spv_len = rmsnorm_f32_f32_spv_len,
 *         .n_bindings = 3, .write_mask = 1u << 2, .push_size = sizeof(struct bn_pc_norm),
 *         .wg_size = 64, .spec = {64}, .n_spec = 1}, &p, err, len);
 *     bn_vk_cmd_dispatch(dev, cmd, set, &p, regions, 3, &push, sizeof push, groups, err, len);
 *     bn_vk_cmd_barrier(dev, cmd, false);
 *     bn_vk_submit_wait(dev, cmd, fence, err, len);
 *     bn_vk_pipeline_destroy(dev, &p);
 *
 * Every pipeline binds n_bindings storage buffers at set 0, bindings
 * 0 .. n_bindings - 1, and takes push_size bytes of push constants.
 * Specialization constants 0.. carry the workgroup size (and tile sizes);
 * shaders with a fixed local size record it in wg_size.
 */
#ifndef BN_VK_PIPELINE_H
#define BN_VK_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "vk_device.h"
#include "vk_memory.h"

#define BN_VK_MAX_BINDINGS 12 /* proj_qkv: x, norm, 3 codes, 3 scales, q, freq, 2 caches */
#define BN_VK_MAX_SPEC 4

struct bn_vk_pipeline_desc {
    const char *name;
    const uint32_t *spv;
    size_t spv_len;          /* bytes */
    uint32_t n_bindings;
    uint32_t write_mask;     /* bit i: binding i is written (hazard tracking) */
    uint32_t push_size;
    uint32_t wg_size;        /* invocations per workgroup (x)                 */
    uint32_t spec[BN_VK_MAX_SPEC];
    uint32_t n_spec;
    uint32_t subgroup_size;  /* required subgroup size (subgroup size control);
                                0: the driver's choice                         */
};

struct bn_vk_pipeline {
    const char *name;
    uint32_t n_bindings;
    uint32_t write_mask;
    uint32_t push_size;
    uint32_t wg_size;
    VkDescriptorSetLayout set_layout;
    VkPipelineLayout layout;
    VkPipeline pipeline;
};

enum bn_status bn_vk_pipeline_create(const struct bn_vk_device *dev, VkPipelineCache cache,
                                     const struct bn_vk_pipeline_desc *d, struct bn_vk_pipeline *out, char *err,
                                     size_t errlen);
/* Accepts a zeroed record. */
void bn_vk_pipeline_destroy(const struct bn_vk_device *dev, struct bn_vk_pipeline *p);

/* Writes the regions into set, binds pipeline and set, pushes the
 * constants and dispatches groups[3] workgroups. BN_ERR_DEVICE (nothing
 * recorded) when a group count passes maxComputeWorkGroupCount, a range
 * passes maxStorageBufferRange, or the binding count or push size differs
 * from the pipeline record. */
enum bn_status bn_vk_cmd_dispatch(const struct bn_vk_device *dev, VkCommandBuffer cmd, VkDescriptorSet set,
                                  const struct bn_vk_pipeline *p, const struct bn_vk_region *regions,
                                  uint32_t n_regions, const void *push, uint32_t push_size, const uint32_t groups[3],
                                  char *err, size_t errlen);

/* The one barrier: shader and transfer writes before it are visible to
 * shader and transfer reads and writes after it (compute -> compute, and
 * copies either side). to_host also makes them visible to host reads after
 * the submission's fence (end of a command buffer). */
void bn_vk_cmd_barrier(const struct bn_vk_device *dev, VkCommandBuffer cmd, bool to_host);

/* What each submitter (transfer, stream, bandwidth probe) records and
 * waits with: a command pool with `flags` on the device's queue family,
 * one primary command buffer from it, and an unsignalled fence. On failure
 * the handles made so far are left in *pool and *fence for the caller's
 * own teardown. */
enum bn_status bn_vk_cmd_create(const struct bn_vk_device *dev, VkCommandPoolCreateFlags flags, VkCommandPool *pool,
                                VkCommandBuffer *cmd, VkFence *fence, char *err, size_t errlen);

/* Submits one ended command buffer and waits for its fence, at most
 * dev->fence_timeout_s seconds: a device that hangs or is lost ends in
 * BN_ERR_DEVICE with a message, never in a hang. Resets the fence. */
enum bn_status bn_vk_submit_wait(const struct bn_vk_device *dev, VkCommandBuffer cmd, VkFence fence, char *err,
                                 size_t errlen);

#endif
