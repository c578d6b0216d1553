/*
 * vk_bandwidth.c - the device-to-device copy probe (see vk_bandwidth.h):
 * one command buffer with a warm-up copy and `reps` timed copies, each
 * between two timestamps and followed by a barrier so that no two copies
 * overlap.
 */
#include "vk_bandwidth.h"

#include <string.h>

#include "bn_shaders.h"
#include "vk_pipeline.h"

#define PROBE_WG 256u        /* invocations per workgroup, lowered to the device's limit */
#define PROBE_GROUPS 4096u   /* grid-stride loop: a million invocations fill any GPU      */
#define PROBE_MAX_REPS 64

struct probe {
    const struct bn_vk_device *dev;
    struct bn_vk_region src, dst;
    struct bn_vk_pipeline pipe;
    VkDescriptorPool dpool;
    VkCommandPool cpool;
    VkCommandBuffer cmd;
    VkFence fence;
    VkQueryPool queries;
};

static void probe_free(struct probe *p, bn_vk_allocator *alloc)
{
    const struct bn_vk_device *dev = p->dev;
    if (p->queries != VK_NULL_HANDLE) dev->fn.vkDestroyQueryPool(dev->device, p->queries, NULL);
    if (p->fence != VK_NULL_HANDLE) dev->fn.vkDestroyFence(dev->device, p->fence, NULL);
    if (p->cmd != VK_NULL_HANDLE) dev->fn.vkFreeCommandBuffers(dev->device, p->cpool, 1, &p->cmd);
    if (p->cpool != VK_NULL_HANDLE) dev->fn.vkDestroyCommandPool(dev->device, p->cpool, NULL);
    if (p->dpool != VK_NULL_HANDLE) dev->fn.vkDestroyDescriptorPool(dev->device, p->dpool, NULL);
    bn_vk_pipeline_destroy(dev, &p->pipe);
    bn_vk_free(alloc, &p->dst);
    bn_vk_free(alloc, &p->src);
}

/* Buffers, pipeline, descriptor set, command buffer, fence and queries. */
static enum bn_status probe_init(struct probe *p, bn_vk_allocator *alloc, uint64_t bytes, uint32_t n_queries,
                                 VkDescriptorSet *set, char *err, size_t errlen)
{
    const struct bn_vk_device *dev = p->dev;
    const struct bn_vk_limits *lim = &dev->info->limits;
    enum bn_status st = bn_vk_alloc_dedicated(alloc, BN_VK_MEM_ACTIVATIONS, bytes, &p->src, err, errlen);
    if (st == BN_OK) st = bn_vk_alloc_dedicated(alloc, BN_VK_MEM_ACTIVATIONS, bytes, &p->dst, err, errlen);
    if (st != BN_OK) return st;
    uint32_t wg = PROBE_WG;
    if (wg > lim->max_workgroup_size[0]) wg = lim->max_workgroup_size[0];
    if (wg > lim->max_workgroup_invocations) wg = lim->max_workgroup_invocations;
    const struct bn_vk_pipeline_desc d = {.name = "copy_probe",
                                          .spv = copy_probe_spv,
                                          .spv_len = copy_probe_spv_len,
                                          .n_bindings = 2,
                                          .write_mask = 1u << 1,
                                          .push_size = sizeof(uint32_t),
                                          .wg_size = wg,
                                          .spec = {wg},
                                          .n_spec = 1};
    st = bn_vk_pipeline_create(dev, VK_NULL_HANDLE, &d, &p->pipe, err, errlen);
    if (st != BN_OK) return st;

    VkDescriptorPoolSize size = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 2};
    VkDescriptorPoolCreateInfo dpci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
    dpci.maxSets = 1;
    dpci.poolSizeCount = 1;
    dpci.pPoolSizes = &size;
    BN_VK_TRY(dev->fn.vkCreateDescriptorPool(dev->device, &dpci, NULL, &p->dpool), st, err, errlen, done);
    VkDescriptorSetAllocateInfo dai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    dai.descriptorPool = p->dpool;
    dai.descriptorSetCount = 1;
    dai.pSetLayouts = &p->pipe.set_layout;
    BN_VK_TRY(dev->fn.vkAllocateDescriptorSets(dev->device, &dai, set), st, err, errlen, done);

    if ((st = bn_vk_cmd_create(dev, 0, &p->cpool, &p->cmd, &p->fence, err, errlen)) != BN_OK) goto done;
    VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = n_queries;
    BN_VK_TRY(dev->fn.vkCreateQueryPool(dev->device, &qci, NULL, &p->queries), st, err, errlen, done);
done:
    return st;
}

/* Warm-up plus reps copies, each between two timestamps, then submit and
 * wait; *submitted once the copies went to the queue. */
static enum bn_status probe_run(struct probe *p, VkDescriptorSet set, uint64_t bytes, int reps, bool *submitted,
                                char *err, size_t errlen)
{
    const struct bn_vk_device *dev = p->dev;
    enum bn_status st = BN_OK;
    const uint32_t n16 = (uint32_t)(bytes / 16);
    uint32_t groups = (n16 + p->pipe.wg_size - 1) / p->pipe.wg_size;
    if (groups > PROBE_GROUPS) groups = PROBE_GROUPS;
    if (groups > dev->info->limits.max_workgroup_count[0]) groups = dev->info->limits.max_workgroup_count[0];
    const uint32_t grid[3] = {groups, 1, 1};
    const struct bn_vk_region regions[2] = {p->src, p->dst};
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    BN_VK_TRY(dev->fn.vkBeginCommandBuffer(p->cmd, &bi), st, err, errlen, done);
    dev->fn.vkCmdResetQueryPool(p->cmd, p->queries, 0, 2u * (uint32_t)(reps + 1));
    for (int i = 0; i <= reps; i++) {
        dev->fn.vkCmdWriteTimestamp(p->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, p->queries, 2u * (uint32_t)i);
        /* The first copy writes the set and binds it with the pipeline and
         * push constants; the others reuse that state (writing the set
         * again would invalidate the command buffer it is bound in). */
        if (i == 0) {
            st = bn_vk_cmd_dispatch(dev, p->cmd, set, &p->pipe, regions, 2, &n16, sizeof n16, grid, err, errlen);
            if (st != BN_OK) {
                (void)dev->fn.vkEndCommandBuffer(p->cmd);
                return st;
            }
        } else {
            dev->fn.vkCmdDispatch(p->cmd, grid[0], grid[1], grid[2]);
        }
        dev->fn.vkCmdWriteTimestamp(p->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, p->queries, 2u * (uint32_t)i + 1);
        bn_vk_cmd_barrier(dev, p->cmd, false); /* the next copy starts after this one ends */
    }
    BN_VK_TRY(dev->fn.vkEndCommandBuffer(p->cmd), st, err, errlen, done);
    *submitted = true;
    st = bn_vk_submit_wait(dev, p->cmd, p->fence, err, errlen);
done:
    return st;
}

enum bn_status bn_vk_measure_bandwidth(const struct bn_vk_device *dev, bn_vk_allocator *alloc, uint64_t bytes,
                                       int reps, struct bn_vk_bandwidth *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    const struct bn_vk_limits *lim = &dev->info->limits;
    if (lim->timestamp_valid_bits == 0 || lim->timestamp_period_ns <= 0.0f)
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: the compute queue has no timestamps to time a copy with");
    if (reps < 1) reps = 1;
    if (reps > PROBE_MAX_REPS) reps = PROBE_MAX_REPS;
    uint64_t cap = lim->max_storage_buffer_range;
    if (cap > bn_vk_max_region(alloc)) cap = bn_vk_max_region(alloc);
    if (cap > 16ull * UINT32_MAX) cap = 16ull * UINT32_MAX; /* the element count is a uint */
    if (bytes > cap) bytes = cap;
    bytes = bytes / 16 * 16;
    if (bytes == 0) return bn_errf(err, errlen, BN_ERR_USAGE, "vulkan: bandwidth probe of 0 bytes");

    struct probe p = {.dev = dev};
    VkDescriptorSet set = VK_NULL_HANDLE;
    enum bn_status st = probe_init(&p, alloc, bytes, 2u * (uint32_t)(reps + 1), &set, err, errlen);
    bool submitted = false;
    if (st == BN_OK) st = probe_run(&p, set, bytes, reps, &submitted, err, errlen);
    uint64_t ts[2 * (PROBE_MAX_REPS + 1)];
    if (st == BN_OK) {
        const uint32_t n = 2u * (uint32_t)(reps + 1);
        VkResult r = dev->fn.vkGetQueryPoolResults(dev->device, p.queries, 0, n, n * sizeof ts[0], ts, sizeof ts[0],
                                                   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
        if (r != VK_SUCCESS)
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: vkGetQueryPoolResults failed: %s", bn_vk_result_name(r));
    }
    if (st == BN_OK) {
        const uint32_t bits = lim->timestamp_valid_bits;
        const uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
        double sum = 0;
        for (int i = 1; i <= reps; i++) { /* copy 0 is the warm-up */
            const double s = (double)((ts[2 * i + 1] - ts[2 * i]) & mask) * lim->timestamp_period_ns * 1e-9;
            const double g = s > 0 ? 2.0 * (double)bytes / s / 1e9 : 0.0;
            sum += g;
            if (g > out->best_gbps) out->best_gbps = g;
        }
        out->gbps = sum / reps;
        out->bytes = bytes;
        out->reps = reps;
    }
    if (st != BN_OK && submitted) {
        /* A timed-out copy may still be running: nothing it uses is freed
         * before the device is idle (a lost one answers at once). */
        out->device_failed = true;
        (void)dev->fn.vkDeviceWaitIdle(dev->device);
    }
    probe_free(&p, alloc);
    return st;
}
