/*
 * Instance, device discovery, feature probing and the logical device, on
 * whatever Vulkan devices the machine has: Mesa lavapipe in CI (a CPU
 * device, so it must report type cpu and never be the auto choice), a real
 * GPU when one is lent. Also: BN_VK_MAX_BUFFER_RANGE lowers the limits, the
 * queue runs a fill, and with the validation layer the whole sequence gives
 * zero validation errors while a deliberate misuse is counted and printed as
 * one line.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "test_util.h"
#include "vk_device.h"

static bool is_pow2(uint64_t v) { return v && (v & (v - 1)) == 0; }

/* What any device must report, usable or not; plausibility of limits
 * against the Vulkan spec's required minimums for usable ones. */
static void check_info(const struct bn_vk_device_info *d, uint32_t i)
{
    CHECKF(d->index == i, "device %u: index %u", i, d->index);
    CHECKF(d->name[0] != '\0' && d->vendor && d->type_name, "device %u: name, vendor, type", i);
    CHECKF(d->n_heaps >= 1 && d->n_heaps <= VK_MAX_MEMORY_HEAPS && d->heaps[0].size > 0, "device %u: heaps", i);
    CHECKF(d->usable == (d->why_not[0] == '\0'), "device %u: why_not empty exactly when usable: %s", i, d->why_not);
    if (!d->usable) return;
    const struct bn_vk_features *f = &d->features;
    const struct bn_vk_limits *l = &d->limits;
    CHECKF(f->storage8 && f->storage16 && f->int8, "device %u: usable implies the required features", i);
    CHECKF(VK_API_VERSION_MINOR(d->api_version) >= 1 || VK_API_VERSION_MAJOR(d->api_version) > 1,
           "device %u: usable implies 1.1+", i);
    CHECKF(is_pow2(f->subgroup_size) && f->min_subgroup_size <= f->subgroup_size &&
               f->subgroup_size <= f->max_subgroup_size && is_pow2(f->min_subgroup_size) &&
               is_pow2(f->max_subgroup_size),
           "device %u: subgroup sizes %u (%u..%u)", i, f->subgroup_size, f->min_subgroup_size, f->max_subgroup_size);
    CHECKF(!f->int_dot_accelerated || f->int_dot, "device %u: accelerated int-dot implies int-dot", i);
    CHECKF(l->max_storage_buffer_range >= (1u << 27), "device %u: maxStorageBufferRange %llu", i,
           (unsigned long long)l->max_storage_buffer_range);
    CHECKF(l->max_allocation_size >= (1u << 30) && l->max_buffer_size >= (1u << 30), "device %u: allocation %llu buffer %llu",
           i, (unsigned long long)l->max_allocation_size, (unsigned long long)l->max_buffer_size);
    CHECKF(l->max_workgroup_invocations >= 128 && l->max_workgroup_size[0] >= 128 && l->max_workgroup_size[1] >= 128 &&
               l->max_workgroup_size[2] >= 64,
           "device %u: workgroup size", i);
    CHECKF(l->max_workgroup_count[0] >= 65535 && l->max_workgroup_count[1] >= 65535 &&
               l->max_workgroup_count[2] >= 65535,
           "device %u: workgroup count", i);
    CHECKF(l->max_shared_memory >= 16384 && l->max_push_constants >= 128, "device %u: shared %u push %u", i,
           l->max_shared_memory, l->max_push_constants);
    CHECKF(is_pow2(l->min_storage_buffer_offset_alignment) && l->min_storage_buffer_offset_alignment <= 256,
           "device %u: storage offset alignment %llu", i, (unsigned long long)l->min_storage_buffer_offset_alignment);
    CHECKF(l->timestamp_valid_bits <= 64 && (l->timestamp_valid_bits == 0) == (l->timestamp_period_ns == 0.0f),
           "device %u: timestamps %u bits, %g ns", i, l->timestamp_valid_bits, l->timestamp_period_ns);
}

/* Fills a host-visible buffer with a pattern on the device's queue and reads
 * it back: the queue, command pool, memory and fence paths all work. */
static void fill_roundtrip(struct bn_vk_device *dev)
{
    const struct bn_vk_device_fns *f = &dev->fn;
    VkDevice d = dev->device;
    VkBuffer buf = VK_NULL_HANDLE;
    VkDeviceMemory mem = VK_NULL_HANDLE;
    VkCommandPool pool = VK_NULL_HANDLE;
    VkFence fence = VK_NULL_HANDLE;
    enum bn_status st = BN_OK;
    char err[256] = "";
    const VkDeviceSize size = 4096;

    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size;
    bci.usage = VK_BUFFER_USAGE_TRANSFER_DST_BIT | VK_BUFFER_USAGE_STORAGE_BUFFER_BIT;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    BN_VK_TRY(f->vkCreateBuffer(d, &bci, NULL, &buf), st, err, sizeof err, done);
    VkMemoryRequirements req;
    f->vkGetBufferMemoryRequirements(d, buf, &req);
    uint32_t type = UINT32_MAX;
    const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    for (uint32_t i = 0; i < dev->memory.memoryTypeCount && type == UINT32_MAX; i++)
        if ((req.memoryTypeBits & (1u << i)) && (dev->memory.memoryTypes[i].propertyFlags & want) == want) type = i;
    CHECK(type != UINT32_MAX, "a host-visible coherent memory type");
    if (type == UINT32_MAX) goto done;
    VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    mai.allocationSize = req.size;
    mai.memoryTypeIndex = type;
    BN_VK_TRY(f->vkAllocateMemory(d, &mai, NULL, &mem), st, err, sizeof err, done);
    BN_VK_TRY(f->vkBindBufferMemory(d, buf, mem, 0), st, err, sizeof err, done);

    VkCommandPoolCreateInfo pci = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pci.queueFamilyIndex = dev->queue_family;
    BN_VK_TRY(f->vkCreateCommandPool(d, &pci, NULL, &pool), st, err, sizeof err, done);
    VkCommandBufferAllocateInfo cai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    cai.commandPool = pool;
    cai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    cai.commandBufferCount = 1;
    VkCommandBuffer cb;
    BN_VK_TRY(f->vkAllocateCommandBuffers(d, &cai, &cb), st, err, sizeof err, done);
    VkCommandBufferBeginInfo cbi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    cbi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    BN_VK_TRY(f->vkBeginCommandBuffer(cb, &cbi), st, err, sizeof err, done);
    f->vkCmdFillBuffer(cb, buf, 0, size, 0xB17E7u);
    /* Makes the transfer write visible to the host read after the fence. */
    VkBufferMemoryBarrier bar = {.sType = VK_STRUCTURE_TYPE_BUFFER_MEMORY_BARRIER};
    bar.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    bar.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    bar.srcQueueFamilyIndex = bar.dstQueueFamilyIndex = VK_QUEUE_FAMILY_IGNORED;
    bar.buffer = buf;
    bar.size = VK_WHOLE_SIZE;
    f->vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT, VK_PIPELINE_STAGE_HOST_BIT, 0, 0, NULL, 1, &bar, 0, NULL);
    BN_VK_TRY(f->vkEndCommandBuffer(cb), st, err, sizeof err, done);
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    BN_VK_TRY(f->vkCreateFence(d, &fci, NULL, &fence), st, err, sizeof err, done);
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &cb;
    BN_VK_TRY(f->vkQueueSubmit(dev->queue, 1, &si, fence), st, err, sizeof err, done);
    BN_VK_TRY(f->vkWaitForFences(d, 1, &fence, VK_TRUE, UINT64_MAX), st, err, sizeof err, done);
    void *p = NULL;
    BN_VK_TRY(f->vkMapMemory(d, mem, 0, VK_WHOLE_SIZE, 0, &p), st, err, sizeof err, done);
    const uint32_t *u = p;
    size_t bad = 0;
    for (size_t i = 0; i < size / 4; i++) bad += u[i] != 0xB17E7u;
    f->vkUnmapMemory(d, mem);
    CHECKF(bad == 0, "fill read back: %zu words wrong", bad);
done:
    CHECKF(st == BN_OK, "fill round trip: %s", err);
    if (fence) f->vkDestroyFence(d, fence, NULL);
    if (pool) f->vkDestroyCommandPool(d, pool, NULL);
    if (buf) f->vkDestroyBuffer(d, buf, NULL);
    if (mem) f->vkFreeMemory(d, mem, NULL);
}

#define CHECK_REQUIRED_REQUIRED(name) CHECKF(dev->fn.name != NULL, "%s loaded", #name);
#define CHECK_REQUIRED_OPTIONAL(name)
#define CHECK_REQUIRED(req, name) CHECK_REQUIRED_##req(name)

static void check_device(bn_vk_instance *vi, uint32_t index)
{
    struct bn_vk_device *dev = NULL;
    char err[256] = "";
    enum bn_status st = bn_vk_device_create(vi, index, &dev, err, sizeof err);
    CHECKF(st == BN_OK, "device %u: create: %s", index, err);
    if (st != BN_OK) return;
    CHECK(dev->device != VK_NULL_HANDLE && dev->queue != VK_NULL_HANDLE, "device and queue created");
    CHECK(dev->info == bn_vk_instance_device_info(vi, index) && dev->instance == vi, "device points back");
    CHECK(dev->memory.memoryTypeCount > 0 && dev->memory.memoryHeapCount > 0, "memory properties");
    BN_VK_DEVICE_FNS(CHECK_REQUIRED)
    fill_roundtrip(dev);
    bn_vk_device_destroy(dev);
}

/* Redirects stderr into a temporary file while fn runs and returns what was
 * written (malloc'd), so deliberate validation errors stay out of the log
 * that the validation stage of tools/test.sh searches. */
static char *capture_stderr(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/bn-vk-stderr-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn(arg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    close(fd);
    size_t n = 0;
    char *raw = test_read_file(path, &n);
    unlink(path);
    char *text = malloc(n + 1); /* test_read_file does not NUL-terminate */
    if (text) {
        if (raw) memcpy(text, raw, n);
        text[n] = '\0';
    }
    free(raw);
    return text;
}

/* A fence with a flag bit that does not exist: harmless to any driver, and
 * an error (VUID-VkFenceCreateInfo-flags-parameter) for the layer. */
static void misuse_fence(void *arg)
{
    struct bn_vk_device *dev = arg;
    VkFenceCreateInfo fci = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    fci.flags = 0x40000000u;
    VkFence fence = VK_NULL_HANDLE;
    if (dev->fn.vkCreateFence(dev->device, &fci, NULL, &fence) == VK_SUCCESS)
        dev->fn.vkDestroyFence(dev->device, fence, NULL);
}

static void check_validation(uint32_t index)
{
    bn_vk_instance *vi = NULL;
    char err[256] = "";
    enum bn_status st = bn_vk_instance_create(&(struct bn_vk_instance_opts){.validation = true}, &vi, err, sizeof err);
    CHECKF(st == BN_OK, "validation instance: %s", err);
    if (st != BN_OK) return;
    if (!bn_vk_instance_validation_enabled(vi)) {
        printf("validation layer not installed: validation checks skipped\n");
        bn_vk_instance_destroy(vi);
        return;
    }
    check_device(vi, index);
    CHECKF(bn_vk_instance_validation_errors(vi) == 0, "zero validation errors, got %u",
           bn_vk_instance_validation_errors(vi));

    /* The counter and the one-line format, on purpose. */
    struct bn_vk_device *dev = NULL;
    if (bn_vk_device_create(vi, index, &dev, err, sizeof err) == BN_OK) {
        char *text = capture_stderr(misuse_fence, dev);
        CHECKF(bn_vk_instance_validation_errors(vi) >= 1, "a misuse is counted (%u)",
               bn_vk_instance_validation_errors(vi));
        CHECKF(text && strncmp(text, "bitnet-vk: vulkan validation: error: ", 37) == 0 &&
                   strstr(text, "VUID-VkFenceCreateInfo-flags") && strchr(text, '\n') == text + strlen(text) - 1,
               "one line per message: %s", text ? text : "(nothing)");
        free(text);
        bn_vk_device_destroy(dev);
    }
    bn_vk_instance_destroy(vi);
}

int main(void)
{
    char err[256] = "";
    bn_vk_instance *vi = NULL;
    enum bn_status st = bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &vi, err, sizeof err);
    if (st != BN_OK) return test_skip_or_fail(err);
    uint32_t n = bn_vk_instance_device_count(vi);
    if (n == 0) {
        bn_vk_instance_destroy(vi);
        return test_skip_or_fail("no Vulkan devices");
    }
    CHECK(bn_vk_instance_device_info(vi, n) == NULL, "info past the end is NULL");
    for (uint32_t i = 0; i < n; i++) {
        const struct bn_vk_device_info *d = bn_vk_instance_device_info(vi, i);
        printf("device %u: %s (%s, %s) %s%s\n", i, d->name, d->vendor, d->type_name, d->usable ? "usable" : "not usable: ",
               d->why_not);
        check_info(d, i);
    }

    /* auto never picks a CPU device. */
    char why[256] = "";
    int pick = bn_vk_instance_pick_auto(vi, why, sizeof why);
    if (pick >= 0) {
        const struct bn_vk_device_info *d = bn_vk_instance_device_info(vi, (uint32_t)pick);
        CHECK(d->usable && d->type != VK_PHYSICAL_DEVICE_TYPE_CPU, "auto picks a usable GPU");
    } else {
        CHECK(why[0] != '\0', "auto says why it picks nothing");
        printf("auto: %s\n", why);
    }

    int cpu = bn_vk_instance_pick_cpu(vi, why, sizeof why);
    if (cpu < 0) {
        /* A GPU-only machine: the lavapipe checks cannot run. */
        printf("no CPU Vulkan device: %s\n", why);
        for (uint32_t i = 0; i < n; i++)
            if (bn_vk_instance_device_info(vi, i)->usable) check_device(vi, i);
        bn_vk_instance_destroy(vi);
        return test_report("test_vk_device");
    }
    const struct bn_vk_device_info *lp = bn_vk_instance_device_info(vi, (uint32_t)cpu);
    CHECKF(lp->type == VK_PHYSICAL_DEVICE_TYPE_CPU && strcmp(lp->type_name, "cpu") == 0, "lavapipe is type cpu (%s)",
           lp->type_name);
    CHECKF(lp->usable, "lavapipe usable: %s", lp->why_not);
    CHECK(lp->features.storage8 && lp->features.storage16 && lp->features.int8, "lavapipe: 8/16-bit storage, int8");
    uint32_t n_gpus = 0;
    for (uint32_t i = 0; i < n; i++) n_gpus += bn_vk_instance_device_info(vi, i)->type != VK_PHYSICAL_DEVICE_TYPE_CPU;
    if (n_gpus == 0) {
        char why_auto[256] = "";
        CHECKF(bn_vk_instance_pick_auto(vi, why_auto, sizeof why_auto) < 0 && strstr(why_auto, "is a CPU device"),
               "with only CPU devices auto picks none and says why: %s", why_auto);
    }

    /* Logical device, queue, a fill, and an index that does not exist. */
    check_device(vi, (uint32_t)cpu);
    struct bn_vk_device *dev = NULL;
    st = bn_vk_device_create(vi, n, &dev, err, sizeof err);
    CHECKF(st == BN_ERR_USAGE && dev == NULL && strstr(err, "no Vulkan device"), "missing index: %d %s", st, err);
    bn_vk_device_destroy(NULL);

    /* Lowered limits. */
    uint64_t orig_range = lp->limits.max_storage_buffer_range, orig_alloc = lp->limits.max_allocation_size;
    setenv("BN_VK_MAX_BUFFER_RANGE", "65536", 1);
    bn_vk_instance *capped = NULL;
    st = bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &capped, err, sizeof err);
    CHECKF(st == BN_OK, "capped instance: %s", err);
    if (st == BN_OK) {
        const struct bn_vk_limits *l = &bn_vk_instance_device_info(capped, (uint32_t)cpu)->limits;
        CHECKF(l->max_storage_buffer_range == (orig_range < 65536 ? orig_range : 65536) &&
                   l->max_allocation_size == (orig_alloc < 65536 ? orig_alloc : 65536) && l->max_buffer_size <= 65536,
               "BN_VK_MAX_BUFFER_RANGE lowers the limits: %llu %llu %llu",
               (unsigned long long)l->max_storage_buffer_range, (unsigned long long)l->max_allocation_size,
               (unsigned long long)l->max_buffer_size);
        bn_vk_instance_destroy(capped);
    }
    setenv("BN_VK_MAX_BUFFER_RANGE", "64k", 1);
    capped = NULL;
    st = bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &capped, err, sizeof err);
    CHECKF(st == BN_ERR_USAGE && capped == NULL && strstr(err, "BN_VK_MAX_BUFFER_RANGE"), "bad cap: %d %s", st, err);
    unsetenv("BN_VK_MAX_BUFFER_RANGE");
    bn_vk_instance_destroy(vi);

    check_validation((uint32_t)cpu);
    bn_vk_instance_destroy(NULL);
    return test_report("test_vk_device");
}
