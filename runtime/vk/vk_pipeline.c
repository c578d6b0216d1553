/*
 * vk_pipeline.c - pipeline records from embedded SPIR-V, and the dispatch,
 * barrier and submit helpers.
 */
#include "vk_pipeline.h"

#include <stdio.h>
#include <string.h>

enum bn_status bn_vk_pipeline_create(const struct bn_vk_device *dev, VkPipelineCache cache,
                                     const struct bn_vk_pipeline_desc *d, struct bn_vk_pipeline *out, char *err,
                                     size_t errlen)
{
    enum bn_status st = BN_OK;
    VkShaderModule module = VK_NULL_HANDLE;
    memset(out, 0, sizeof *out);
    BN_ASSERT(d->n_bindings <= BN_VK_MAX_BINDINGS && d->n_spec <= BN_VK_MAX_SPEC);
    out->name = d->name;
    out->n_bindings = d->n_bindings;
    out->write_mask = d->write_mask;
    out->push_size = d->push_size;
    out->wg_size = d->wg_size;

    VkShaderModuleCreateInfo smci = {.sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    smci.codeSize = d->spv_len;
    smci.pCode = d->spv;
    BN_VK_TRY(dev->fn.vkCreateShaderModule(dev->device, &smci, NULL, &module), st, err, errlen, fail);

    VkDescriptorSetLayoutBinding b[BN_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < d->n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo dlci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dlci.bindingCount = d->n_bindings;
    dlci.pBindings = b;
    BN_VK_TRY(dev->fn.vkCreateDescriptorSetLayout(dev->device, &dlci, NULL, &out->set_layout), st, err, errlen, fail);

    VkPushConstantRange pcr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = d->push_size};
    VkPipelineLayoutCreateInfo plci = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    plci.setLayoutCount = 1;
    plci.pSetLayouts = &out->set_layout;
    plci.pushConstantRangeCount = d->push_size ? 1 : 0;
    plci.pPushConstantRanges = d->push_size ? &pcr : NULL;
    BN_VK_TRY(dev->fn.vkCreatePipelineLayout(dev->device, &plci, NULL, &out->layout), st, err, errlen, fail);

    VkSpecializationMapEntry entries[BN_VK_MAX_SPEC];
    for (uint32_t i = 0; i < d->n_spec; i++)
        entries[i] = (VkSpecializationMapEntry){.constantID = i, .offset = 4 * i, .size = 4};
    VkSpecializationInfo si = {.mapEntryCount = d->n_spec, .pMapEntries = entries, .dataSize = 4 * d->n_spec,
                               .pData = d->spec};
    VkComputePipelineCreateInfo cpci = {.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    cpci.stage.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO;
    cpci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    cpci.stage.module = module;
    cpci.stage.pName = "main";
    cpci.stage.pSpecializationInfo = d->n_spec ? &si : NULL;
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rss = {
        .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO,
        .requiredSubgroupSize = d->subgroup_size};
    if (d->subgroup_size) cpci.stage.pNext = &rss;
    cpci.layout = out->layout;
    BN_VK_TRY(dev->fn.vkCreateComputePipelines(dev->device, cache, 1, &cpci, NULL, &out->pipeline), st, err, errlen,
              fail);
    if (dev->fn.vkSetDebugUtilsObjectNameEXT) {
        VkDebugUtilsObjectNameInfoEXT ni = {.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_OBJECT_NAME_INFO_EXT};
        ni.objectType = VK_OBJECT_TYPE_PIPELINE;
        /* A pointer on 64-bit systems, a uint64_t elsewhere: 8 bytes both ways. */
        _Static_assert(sizeof out->pipeline == sizeof ni.objectHandle, "non-dispatchable handles are 64-bit");
        memcpy(&ni.objectHandle, &out->pipeline, sizeof ni.objectHandle);
        ni.pObjectName = d->name;
        (void)dev->fn.vkSetDebugUtilsObjectNameEXT(dev->device, &ni); /* a name is a debugging aid only */
    }
    /* The pipeline keeps what it needs of the module. */
    dev->fn.vkDestroyShaderModule(dev->device, module, NULL);
    return BN_OK;
fail:
    if (module != VK_NULL_HANDLE) dev->fn.vkDestroyShaderModule(dev->device, module, NULL);
    bn_vk_pipeline_destroy(dev, out);
    if (st == BN_ERR_DEVICE) {
        /* Name the shader: the VkResult alone does not say which one. */
        char inner[200];
        snprintf(inner, sizeof inner, "%s", err ? err : "");
        bn_errf(err, errlen, st, "%s (shader %s)", inner, d->name);
    }
    return st;
}

void bn_vk_pipeline_destroy(const struct bn_vk_device *dev, struct bn_vk_pipeline *p)
{
    if (p->pipeline != VK_NULL_HANDLE) dev->fn.vkDestroyPipeline(dev->device, p->pipeline, NULL);
    if (p->layout != VK_NULL_HANDLE) dev->fn.vkDestroyPipelineLayout(dev->device, p->layout, NULL);
    if (p->set_layout != VK_NULL_HANDLE) dev->fn.vkDestroyDescriptorSetLayout(dev->device, p->set_layout, NULL);
    memset(p, 0, sizeof *p);
}

enum bn_status bn_vk_cmd_dispatch(const struct bn_vk_device *dev, VkCommandBuffer cmd, VkDescriptorSet set,
                                  const struct bn_vk_pipeline *p, const struct bn_vk_region *regions,
                                  uint32_t n_regions, const void *push, uint32_t push_size, const uint32_t groups[3],
                                  char *err, size_t errlen)
{
    const struct bn_vk_limits *lim = &dev->info->limits;
    /* Mismatches here are bugs in an encoder, but they would corrupt memory
     * on the device: refuse with a message naming the shader. */
    if (n_regions != p->n_bindings || push_size != p->push_size)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s: %u bindings and %u push bytes, pipeline has %u and %u",
                       p->name, n_regions, push_size, p->n_bindings, p->push_size);
    for (int i = 0; i < 3; i++)
        if (groups[i] == 0 || groups[i] > lim->max_workgroup_count[i])
            return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s: %u workgroups in dimension %d (device allows %u)",
                           p->name, groups[i], i, lim->max_workgroup_count[i]);
    VkDescriptorBufferInfo info[BN_VK_MAX_BINDINGS];
    VkWriteDescriptorSet w[BN_VK_MAX_BINDINGS];
    for (uint32_t i = 0; i < n_regions; i++) {
        if (regions[i].buffer == VK_NULL_HANDLE || regions[i].size == 0 ||
            regions[i].size > lim->max_storage_buffer_range)
            return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s: binding %u has a range of %llu bytes (device allows %llu)",
                           p->name, i, (unsigned long long)regions[i].size,
                           (unsigned long long)lim->max_storage_buffer_range);
        info[i] = (VkDescriptorBufferInfo){.buffer = regions[i].buffer, .offset = regions[i].offset,
                                           .range = regions[i].size};
        w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                      .dstSet = set,
                                      .dstBinding = i,
                                      .descriptorCount = 1,
                                      .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                      .pBufferInfo = &info[i]};
    }
    dev->fn.vkUpdateDescriptorSets(dev->device, n_regions, w, 0, NULL);
    dev->fn.vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    dev->fn.vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    if (push_size) dev->fn.vkCmdPushConstants(cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    dev->fn.vkCmdDispatch(cmd, groups[0], groups[1], groups[2]);
    return BN_OK;
}

void bn_vk_cmd_barrier(const struct bn_vk_device *dev, VkCommandBuffer cmd, bool to_host)
{
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = to_host ? VK_ACCESS_HOST_READ_BIT
                               : VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    const VkPipelineStageFlags src = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    const VkPipelineStageFlags dst =
        to_host ? VK_PIPELINE_STAGE_HOST_BIT : VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
    dev->fn.vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

enum bn_status bn_vk_cmd_create(const struct bn_vk_device *dev, VkCommandPoolCreateFlags flags, VkCommandPool *pool,
                                VkCommandBuffer *cmd, VkFence *fence, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.flags = flags;
    pci.queueFamilyIndex = dev->queue_family;
    BN_VK_TRY(dev->fn.vkCreateCommandPool(dev->device, &pci, NULL, pool), st, err, errlen, done);
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = *pool;
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    BN_VK_TRY(dev->fn.vkAllocateCommandBuffers(dev->device, &cai, cmd), st, err, errlen, done);
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    BN_VK_TRY(dev->fn.vkCreateFence(dev->device, &fci, NULL, fence), st, err, errlen, done);
done:
    return st;
}

enum bn_status bn_vk_submit_wait(const struct bn_vk_device *dev, VkCommandBuffer cmd, VkFence fence, char *err,
                                 size_t errlen)
{
    enum bn_status st = BN_OK;
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cmd;
    VkResult r = bn_vk_queue_submit(dev, &si, fence);
    if (r == VK_ERROR_DEVICE_LOST) return bn_vk_device_lost_error(dev, "vkQueueSubmit", err, errlen);
    BN_VK_TRY(r, st, err, errlen, done);
    r = dev->fn.vkWaitForFences(dev->device, 1, &fence, VK_TRUE, (uint64_t)dev->fence_timeout_s * 1000000000ull);
    r = bn_vk_device_wait_hook(dev, r);
    if (r == VK_TIMEOUT) return bn_vk_device_timeout_error(dev, err, errlen);
    if (r == VK_ERROR_DEVICE_LOST) {
        bn_vk_device_mark_lost(dev);
        return bn_vk_device_lost_error(dev, "vkWaitForFences", err, errlen);
    }
    BN_VK_TRY(r, st, err, errlen, done);
    BN_VK_TRY(dev->fn.vkResetFences(dev->device, 1, &fence), st, err, errlen, done);
done:
    return st;
}
