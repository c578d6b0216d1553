/*
 * vk_memory.c - blocks of device memory, each bound to one buffer and
 * carved into aligned regions by a first-fit free list; plus staging
 * uploads and readback through a host-visible bounce buffer.
 */
#include "vk_memory.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vk_pipeline.h"

/* Default block sizes: big enough that a model needs a handful of
 * allocations (drivers limit their count), small enough not to strand much
 * memory. Requests above the block size get a block of their own. */
#define BLOCK_WEIGHTS (256ull << 20)
#define BLOCK_ACTIVATIONS (64ull << 20)
#define BLOCK_READBACK (4ull << 20)
#define BLOCK_STAGING (64ull << 20)
#define STAGING_CHUNK (32ull << 20) /* bytes one transfer submit carries */

struct span {
    VkDeviceSize off, size;
};

struct bn_vk_block {
    VkDeviceMemory memory;
    VkBuffer buffer;
    VkDeviceSize size;
    VkDeviceSize mem_bytes; /* of the VkDeviceMemory (>= size); counted in bytes */
    uint8_t *mapped;   /* whole block, when host-visible */
    bool coherent;
    bool dedicated;    /* one region; freed with it       */
    struct span *free; /* sorted by offset, never adjacent */
    uint32_t n_free, cap_free;
    VkDeviceSize used;
};

struct bn_vk_allocator {
    const struct bn_vk_device *dev;
    bool force_staging;  /* BN_VK_FORCE_STAGING=1: map staging blocks only */
    uint64_t heap_limit; /* BN_VK_HEAP_LIMIT: most bytes in blocks; 0 = none  */
    VkDeviceSize align;
    VkDeviceSize max_region;
    VkDeviceSize block_size[BN_VK_MEM_CLASS_COUNT];
    struct bn_vk_block **blocks[BN_VK_MEM_CLASS_COUNT];
    uint32_t n_blocks[BN_VK_MEM_CLASS_COUNT], cap_blocks[BN_VK_MEM_CLASS_COUNT];
    uint64_t bytes;
};

/* As messages name them: both middle classes hold the engine's buffers. */
static const char *const class_names[BN_VK_MEM_CLASS_COUNT] = {"weights", "engine buffers", "engine buffers",
                                                                "staging buffers"};

/* Memory property preferences per class: the first memory type that has
 * all `want` bits and none of the `avoid` bits wins, list entry by entry. */
struct pref {
    VkMemoryPropertyFlags want, avoid;
};
#define DL VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
#define HV VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT
#define HC VK_MEMORY_PROPERTY_HOST_COHERENT_BIT
#define HCACHED VK_MEMORY_PROPERTY_HOST_CACHED_BIT
static const struct pref prefs[BN_VK_MEM_CLASS_COUNT][4] = {
    [BN_VK_MEM_WEIGHTS] = {{DL, HV}, {DL | HV, 0}, {HV, 0}, {0, 0}},
    [BN_VK_MEM_ACTIVATIONS] = {{DL, HV}, {DL | HV, 0}, {HV, 0}, {0, 0}},
    /* Host-visible so the host reads results without another submission;
     * device-local (resizable BAR, UMA) when offered. */
    [BN_VK_MEM_READBACK] = {{DL | HV | HC, 0}, {HV | HC | HCACHED, 0}, {HV | HC, 0}, {HV, 0}},
    [BN_VK_MEM_STAGING] = {{HV | HC | HCACHED, 0}, {HV | HC, 0}, {HV, 0}, {0, 0}},
};

const char *bn_vk_fmt_bytes(uint64_t bytes, char buf[32])
{
    if (bytes < (1ull << 20)) snprintf(buf, 32, "%llu bytes", (unsigned long long)bytes);
    else if (bytes < (1ull << 30)) snprintf(buf, 32, "%.1f MiB", (double)bytes / (1ull << 20));
    else snprintf(buf, 32, "%.1f GiB", (double)bytes / (1ull << 30));
    return buf;
}

static VkDeviceSize round_up(VkDeviceSize x, VkDeviceSize a) { return (x + a - 1) / a * a; }
static VkDeviceSize min_size(VkDeviceSize a, VkDeviceSize b) { return a < b ? a : b; }

enum bn_status bn_vk_heap_limit_from_env(uint64_t *limit, char *err, size_t errlen)
{
    *limit = 0;
    const char *s = getenv("BN_VK_HEAP_LIMIT");
    if (s == NULL || s[0] == '\0') return BN_OK;
    char *end = NULL;
    errno = 0;
    unsigned long long v = (s[0] >= '0' && s[0] <= '9') ? strtoull(s, &end, 10) : 0;
    unsigned shift = 0;
    if (end && (*end == 'K' || *end == 'k')) shift = 10;
    else if (end && (*end == 'M' || *end == 'm')) shift = 20;
    else if (end && (*end == 'G' || *end == 'g')) shift = 30;
    if (end && shift) end++;
    if (end == NULL || *end != '\0' || errno != 0 || v == 0 || v > (UINT64_MAX >> shift))
        return bn_errf(err, errlen, BN_ERR_USAGE,
                       "BN_VK_HEAP_LIMIT=%s: expected a byte count such as 65536, 512K, 64M or 2G", s);
    *limit = (uint64_t)v << shift;
    return BN_OK;
}

enum bn_status bn_vk_allocator_create(const struct bn_vk_device *dev, bn_vk_allocator **out, char *err,
                                      size_t errlen)
{
    *out = NULL;
    uint64_t heap_limit = 0;
    enum bn_status st = bn_vk_heap_limit_from_env(&heap_limit, err, errlen);
    if (st != BN_OK) return st;
    bn_vk_allocator *a = calloc(1, sizeof *a);
    if (!a) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    a->heap_limit = heap_limit;
    const struct bn_vk_limits *lim = &dev->info->limits;
    a->dev = dev;
    /* 16 also keeps every region good for uvec4 access and fills (4). */
    a->align = lim->min_storage_buffer_offset_alignment > 16 ? lim->min_storage_buffer_offset_alignment : 16;
    a->max_region = min_size(lim->max_allocation_size, lim->max_buffer_size) / a->align * a->align;
    const VkDeviceSize defaults[BN_VK_MEM_CLASS_COUNT] = {BLOCK_WEIGHTS, BLOCK_ACTIVATIONS, BLOCK_READBACK,
                                                          BLOCK_STAGING};
    for (int c = 0; c < BN_VK_MEM_CLASS_COUNT; c++) {
        a->block_size[c] = min_size(defaults[c], a->max_region);
        /* Under a cap, one block of a class must not take the room every
         * other class needs: at most an eighth of it. */
        if (heap_limit) a->block_size[c] = min_size(a->block_size[c], round_up(heap_limit / 8, a->align));
    }
    const char *fs = getenv("BN_VK_FORCE_STAGING");
    a->force_staging = fs && fs[0] == '1';
    *out = a;
    return BN_OK;
}

static void block_destroy(const struct bn_vk_device *dev, struct bn_vk_block *b)
{
    if (!b) return;
    if (b->buffer != VK_NULL_HANDLE) dev->fn.vkDestroyBuffer(dev->device, b->buffer, NULL);
    if (b->mapped) dev->fn.vkUnmapMemory(dev->device, b->memory);
    if (b->memory != VK_NULL_HANDLE) dev->fn.vkFreeMemory(dev->device, b->memory, NULL);
    free(b->free);
    free(b);
}

void bn_vk_allocator_destroy(bn_vk_allocator *a)
{
    if (!a) return;
    for (int c = 0; c < BN_VK_MEM_CLASS_COUNT; c++) {
        for (uint32_t i = 0; i < a->n_blocks[c]; i++) block_destroy(a->dev, a->blocks[c][i]);
        free(a->blocks[c]);
    }
    free(a);
}

VkDeviceSize bn_vk_max_region(const bn_vk_allocator *a) { return a->max_region; }
uint64_t bn_vk_allocator_bytes(const bn_vk_allocator *a) { return a->bytes; }

/* Index of the memory type for this class and the buffer's type bits, or
 * -1. `skip` counts preference entries already tried (and failed). */
static int pick_type(const bn_vk_allocator *a, enum bn_vk_mem_class cls, uint32_t type_bits, int *entry)
{
    const VkPhysicalDeviceMemoryProperties *mp = &a->dev->memory;
    for (; *entry < 4; (*entry)++) {
        const struct pref *p = &prefs[cls][*entry];
        if (p->want == 0) return -1;
        for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
            VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
            if ((type_bits & (1u << i)) && (f & p->want) == p->want && (f & p->avoid) == 0) return (int)i;
        }
    }
    return -1;
}

/* The one message for memory that is not there, whether the driver said
 * so or BN_VK_HEAP_LIMIT did: what was asked for, for what, and how much
 * the backend already holds. */
static enum bn_status out_of_memory(const bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size, VkResult r,
                                    char *err, size_t errlen)
{
    char sz[32], used[32], cap[32];
    bn_vk_fmt_bytes(size, sz);
    bn_vk_fmt_bytes(a->bytes, used);
    if (r == VK_SUCCESS) /* the cap, not the driver */
        return bn_errf(err, errlen, BN_ERR_DEVICE,
                       "vulkan: out of device memory: %s for %s does not fit (%s in use, BN_VK_HEAP_LIMIT %s)", sz,
                       class_names[cls], used, bn_vk_fmt_bytes(a->heap_limit, cap));
    return bn_errf(err, errlen, BN_ERR_DEVICE,
                   "vulkan: out of %s memory: %s for %s could not be allocated (%s in use, %s)",
                   r == VK_ERROR_OUT_OF_HOST_MEMORY ? "host" : "device", sz, class_names[cls], used,
                   bn_vk_result_name(r));
}

/* A block of `size` bytes; *oom tells a failure for want of memory (the
 * caller may try a smaller block) from any other. */
static enum bn_status block_create(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size,
                                   struct bn_vk_block **out, bool *oom, char *err, size_t errlen)
{
    const struct bn_vk_device *dev = a->dev;
    enum bn_status st = BN_OK;
    *oom = false;
    struct bn_vk_block *b = calloc(1, sizeof *b);
    if (!b) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    b->size = size;
    VkBufferCreateInfo bci = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bci.size = size;
    bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkResult made = dev->fn.vkCreateBuffer(dev->device, &bci, NULL, &b->buffer);
    if (made == VK_ERROR_OUT_OF_DEVICE_MEMORY || made == VK_ERROR_OUT_OF_HOST_MEMORY) {
        b->buffer = VK_NULL_HANDLE;
        *oom = true;
        st = out_of_memory(a, cls, size, made, err, errlen);
        goto fail;
    }
    BN_VK_TRY(made, st, err, errlen, fail);
    VkMemoryRequirements req;
    dev->fn.vkGetBufferMemoryRequirements(dev->device, b->buffer, &req);
    if (a->heap_limit != 0 && (a->bytes > a->heap_limit || req.size > a->heap_limit - a->bytes)) {
        /* The test cap: what the driver would answer with a heap this small. */
        *oom = true;
        st = out_of_memory(a, cls, req.size, VK_SUCCESS, err, errlen);
        goto fail;
    }
    VkResult r = VK_ERROR_OUT_OF_DEVICE_MEMORY;
    int type = -1;
    bool tried = false; /* some memory type fits the buffer */
    /* A type whose heap is full is not the end: try the next preference. */
    for (int entry = 0; (type = pick_type(a, cls, req.memoryTypeBits, &entry)) >= 0; entry++) {
        VkMemoryAllocateInfo mai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
        mai.allocationSize = req.size;
        mai.memoryTypeIndex = (uint32_t)type;
        tried = true;
        r = dev->fn.vkAllocateMemory(dev->device, &mai, NULL, &b->memory);
        if (r == VK_SUCCESS) break;
        b->memory = VK_NULL_HANDLE;
        if (r != VK_ERROR_OUT_OF_DEVICE_MEMORY && r != VK_ERROR_OUT_OF_HOST_MEMORY) break;
    }
    if (r != VK_SUCCESS) {
        char sz[32];
        if (!tried)
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: cannot allocate %s of %s memory: no memory type fits",
                         bn_vk_fmt_bytes(size, sz), class_names[cls]);
        else if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
            *oom = true;
            st = out_of_memory(a, cls, req.size, r, err, errlen);
        } else
            st = bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: vkAllocateMemory of %s for %s failed: %s",
                         bn_vk_fmt_bytes(size, sz), class_names[cls], bn_vk_result_name(r));
        goto fail;
    }
    BN_VK_TRY(dev->fn.vkBindBufferMemory(dev->device, b->buffer, b->memory, 0), st, err, errlen, fail);
    VkMemoryPropertyFlags flags = dev->memory.memoryTypes[type].propertyFlags;
    b->coherent = (flags & HC) != 0;
    /* Unmapped memory takes the staging paths of a discrete GPU; the switch
     * lets tests run those paths on devices whose memory is all mappable. */
    if ((flags & HV) && (!a->force_staging || cls == BN_VK_MEM_STAGING)) {
        void *p = NULL;
        BN_VK_TRY(dev->fn.vkMapMemory(dev->device, b->memory, 0, VK_WHOLE_SIZE, 0, &p), st, err, errlen, fail);
        b->mapped = p;
    }
    b->free = malloc(4 * sizeof *b->free);
    if (!b->free) {
        st = bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
        goto fail;
    }
    b->cap_free = 4;
    b->n_free = 1;
    b->free[0] = (struct span){0, size};
    b->mem_bytes = req.size;
    a->bytes += req.size;
    *out = b;
    return BN_OK;
fail:
    block_destroy(dev, b);
    return st;
}

/* First fit in one block; false when no free span is big enough. */
static bool block_take(struct bn_vk_block *b, VkDeviceSize align, VkDeviceSize size, VkDeviceSize *off)
{
    for (uint32_t i = 0; i < b->n_free; i++) {
        struct span *s = &b->free[i];
        VkDeviceSize start = round_up(s->off, align);
        if (start - s->off + size > s->size) continue;
        VkDeviceSize head = start - s->off, tail = s->size - head - size;
        /* The aligned-away head stays free; it is smaller than align. */
        if (head && tail) {
            if (b->n_free == b->cap_free) {
                struct span *grown = realloc(b->free, 2 * b->cap_free * sizeof *grown);
                if (!grown) return false; /* let another block serve */
                b->free = grown;
                b->cap_free *= 2;
                s = &b->free[i];
            }
            memmove(s + 2, s + 1, (b->n_free - i - 1) * sizeof *s);
            b->n_free++;
            s[0].size = head;
            s[1] = (struct span){start + size, tail};
        } else if (head) {
            s->size = head;
        } else if (tail) {
            *s = (struct span){start + size, tail};
        } else {
            memmove(s, s + 1, (b->n_free - i - 1) * sizeof *s);
            b->n_free--;
        }
        b->used += size;
        *off = start;
        return true;
    }
    return false;
}

static enum bn_status alloc_region(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size, bool own_block,
                                   struct bn_vk_region *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    size = round_up(size ? size : 4, 4);
    if (size > a->max_region) {
        char s1[32], s2[32];
        return bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: %s for %s exceeds the device's allocation limit (%s)",
                       bn_vk_fmt_bytes(size, s1), class_names[cls], bn_vk_fmt_bytes(a->max_region, s2));
    }
    struct bn_vk_block *b = NULL;
    VkDeviceSize off = 0;
    for (uint32_t i = 0; i < a->n_blocks[cls] && !b && !own_block; i++)
        if (!a->blocks[cls][i]->dedicated && block_take(a->blocks[cls][i], a->align, size, &off)) b = a->blocks[cls][i];
    if (!b) {
        /* Make room in the list first, so a failure leaves nothing behind. */
        if (a->n_blocks[cls] == a->cap_blocks[cls]) {
            uint32_t cap = a->cap_blocks[cls] ? 2 * a->cap_blocks[cls] : 8;
            struct bn_vk_block **grown = realloc(a->blocks[cls], cap * sizeof *grown);
            if (!grown) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
            a->blocks[cls] = grown;
            a->cap_blocks[cls] = cap;
        }
        const bool dedicated = own_block || size > a->block_size[cls];
        bool oom = false;
        enum bn_status st = block_create(a, cls, dedicated ? size : a->block_size[cls], &b, &oom, err, errlen);
        /* No room for a whole block: a block of just this request may
         * still fit (nearly full heap, or BN_VK_HEAP_LIMIT). */
        if (st != BN_OK && oom && !dedicated && size < a->block_size[cls])
            st = block_create(a, cls, round_up(size, a->align), &b, &oom, err, errlen);
        if (st != BN_OK) return st;
        b->dedicated = dedicated;
        a->blocks[cls][a->n_blocks[cls]++] = b;
        if (!block_take(b, a->align, size, &off)) BN_ASSERT(0 && "a fresh block fits its request");
    }
    out->buffer = b->buffer;
    out->offset = off;
    out->size = size;
    out->mapped = b->mapped ? b->mapped + off : NULL;
    out->block = b;
    return BN_OK;
}

enum bn_status bn_vk_alloc(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size,
                           struct bn_vk_region *out, char *err, size_t errlen)
{
    return alloc_region(a, cls, size, false, out, err, errlen);
}

enum bn_status bn_vk_alloc_dedicated(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size,
                                     struct bn_vk_region *out, char *err, size_t errlen)
{
    return alloc_region(a, cls, size, true, out, err, errlen);
}

/* Returns [off, off + size) to the free list, merging with neighbours. */
static void block_give(struct bn_vk_block *b, VkDeviceSize off, VkDeviceSize size)
{
    uint32_t i = 0;
    while (i < b->n_free && b->free[i].off < off) i++;
    b->used -= size;
    bool join_prev = i > 0 && b->free[i - 1].off + b->free[i - 1].size == off;
    bool join_next = i < b->n_free && off + size == b->free[i].off;
    if (join_prev && join_next) {
        b->free[i - 1].size += size + b->free[i].size;
        memmove(&b->free[i], &b->free[i + 1], (b->n_free - i - 1) * sizeof *b->free);
        b->n_free--;
    } else if (join_prev) {
        b->free[i - 1].size += size;
    } else if (join_next) {
        b->free[i].off = off;
        b->free[i].size += size;
    } else {
        if (b->n_free == b->cap_free) {
            struct span *grown = realloc(b->free, 2 * b->cap_free * sizeof *grown);
            /* Without room the span is lost until the block is destroyed:
             * a leak inside our own block, never a corruption. */
            if (!grown) return;
            b->free = grown;
            b->cap_free *= 2;
        }
        memmove(&b->free[i + 1], &b->free[i], (b->n_free - i) * sizeof *b->free);
        b->free[i] = (struct span){off, size};
        b->n_free++;
    }
}

void bn_vk_free(bn_vk_allocator *a, struct bn_vk_region *r)
{
    if (!r || !r->block) return;
    struct bn_vk_block *b = r->block;
    block_give(b, r->offset, r->size);
    if (b->dedicated && b->used == 0) {
        /* A dedicated block holds one region: give its memory back now. */
        for (int c = 0; c < BN_VK_MEM_CLASS_COUNT; c++)
            for (uint32_t i = 0; i < a->n_blocks[c]; i++)
                if (a->blocks[c][i] == b) {
                    a->blocks[c][i] = a->blocks[c][--a->n_blocks[c]];
                    a->bytes -= b->mem_bytes;
                    block_destroy(a->dev, b);
                    c = BN_VK_MEM_CLASS_COUNT;
                    break;
                }
    }
    memset(r, 0, sizeof *r);
}

struct bn_vk_region bn_vk_region_sub(const struct bn_vk_region *r, VkDeviceSize offset, VkDeviceSize size)
{
    BN_ASSERT(offset <= r->size && size <= r->size - offset);
    struct bn_vk_region s = *r;
    s.offset += offset;
    s.size = size;
    s.mapped = r->mapped ? r->mapped + offset : NULL;
    return s;
}

enum bn_status bn_vk_allocator_flush(bn_vk_allocator *a, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    for (int c = 0; c < BN_VK_MEM_CLASS_COUNT; c++)
        for (uint32_t i = 0; i < a->n_blocks[c]; i++) {
            struct bn_vk_block *b = a->blocks[c][i];
            if (!b->mapped || b->coherent) continue;
            VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
            mr.memory = b->memory;
            mr.size = VK_WHOLE_SIZE;
            BN_VK_TRY(a->dev->fn.vkFlushMappedMemoryRanges(a->dev->device, 1, &mr), st, err, errlen, done);
        }
done:
    return st;
}

enum bn_status bn_vk_allocator_invalidate(bn_vk_allocator *a, const struct bn_vk_region *r, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    if (!r->block || !r->block->mapped || r->block->coherent) return BN_OK;
    VkMappedMemoryRange mr = {.sType = VK_STRUCTURE_TYPE_MAPPED_MEMORY_RANGE};
    mr.memory = r->block->memory;
    mr.size = VK_WHOLE_SIZE;
    BN_VK_TRY(a->dev->fn.vkInvalidateMappedMemoryRanges(a->dev->device, 1, &mr), st, err, errlen, done);
done:
    return st;
}

/* ============================ staging transfers ============================ */

struct bn_vk_transfer {
    const struct bn_vk_device *dev;
    bn_vk_allocator *alloc;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    struct bn_vk_region staging;
    VkDeviceSize used;   /* staging bytes handed out since the last flush */
    bool recording;
    uint64_t submits;
};

enum bn_status bn_vk_transfer_create(const struct bn_vk_device *dev, bn_vk_allocator *a, bn_vk_transfer **out,
                                     char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    *out = NULL;
    bn_vk_transfer *t = calloc(1, sizeof *t);
    if (!t) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    t->dev = dev;
    t->alloc = a;
    st = bn_vk_cmd_create(dev, VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT | VK_COMMAND_POOL_CREATE_TRANSIENT_BIT,
                          &t->pool, &t->cmd, &t->fence, err, errlen);
    if (st != BN_OK) goto fail;
    *out = t;
    return BN_OK;
fail:
    bn_vk_transfer_destroy(t);
    return st;
}

void bn_vk_transfer_destroy(bn_vk_transfer *t)
{
    if (!t) return;
    const struct bn_vk_device *dev = t->dev;
    bn_vk_free(t->alloc, &t->staging);
    if (t->fence != VK_NULL_HANDLE) dev->fn.vkDestroyFence(dev->device, t->fence, NULL);
    if (t->cmd != VK_NULL_HANDLE) dev->fn.vkFreeCommandBuffers(dev->device, t->pool, 1, &t->cmd);
    if (t->pool != VK_NULL_HANDLE) dev->fn.vkDestroyCommandPool(dev->device, t->pool, NULL);
    free(t);
}

VkDeviceSize bn_vk_transfer_chunk(const bn_vk_transfer *t)
{
    /* Within a staging block, which a heap cap shrinks, so that a small
     * model's upload fits the room a small heap has. */
    VkDeviceSize m = bn_vk_max_region(t->alloc);
    m = min_size(m, t->alloc->block_size[BN_VK_MEM_STAGING]);
    return m < STAGING_CHUNK ? m : STAGING_CHUNK;
}

uint64_t bn_vk_transfer_submits(const bn_vk_transfer *t) { return t->submits; }

static enum bn_status transfer_begin(bn_vk_transfer *t, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    if (t->recording) return BN_OK;
    if (t->staging.block == NULL &&
        (st = bn_vk_alloc(t->alloc, BN_VK_MEM_STAGING, bn_vk_transfer_chunk(t), &t->staging, err, errlen)) != BN_OK)
        return st;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    BN_VK_TRY(t->dev->fn.vkBeginCommandBuffer(t->cmd, &bi), st, err, errlen, done);
    t->recording = true;
done:
    return st;
}

enum bn_status bn_vk_transfer_flush(bn_vk_transfer *t, char *err, size_t errlen)
{
    enum bn_status st = bn_vk_allocator_flush(t->alloc, err, errlen);
    if (st != BN_OK || !t->recording) return st;
    t->recording = false;
    t->used = 0;
    /* Copies complete before anything the next submission runs; and their
     * results (readback) become visible to the host. */
    bn_vk_cmd_barrier(t->dev, t->cmd, true);
    BN_VK_TRY(t->dev->fn.vkEndCommandBuffer(t->cmd), st, err, errlen, done);
    t->submits++;
    st = bn_vk_submit_wait(t->dev, t->cmd, t->fence, err, errlen);
done:
    return st;
}

void *bn_vk_transfer_map(bn_vk_transfer *t, const struct bn_vk_region *dst, VkDeviceSize offset, VkDeviceSize size,
                         char *err, size_t errlen)
{
    BN_ASSERT(offset <= dst->size && size <= dst->size - offset);
    if (dst->mapped) return dst->mapped + offset;
    if (size > bn_vk_transfer_chunk(t)) {
        bn_errf(err, errlen, BN_ERR_DEVICE, "vulkan: staged write of %llu bytes exceeds the staging chunk",
                (unsigned long long)size);
        return NULL;
    }
    VkDeviceSize at = round_up(t->used, 16);
    if (t->recording && at + size > t->staging.size) {
        if (bn_vk_transfer_flush(t, err, errlen) != BN_OK) return NULL;
        at = 0;
    }
    if (transfer_begin(t, err, errlen) != BN_OK) return NULL;
    VkBufferCopy region = {.srcOffset = t->staging.offset + at, .dstOffset = dst->offset + offset, .size = size};
    t->dev->fn.vkCmdCopyBuffer(t->cmd, t->staging.buffer, dst->buffer, 1, &region);
    t->used = at + size;
    return t->staging.mapped + at;
}

enum bn_status bn_vk_transfer_write(bn_vk_transfer *t, const struct bn_vk_region *dst, VkDeviceSize offset,
                                    const void *src, VkDeviceSize size, char *err, size_t errlen)
{
    const VkDeviceSize chunk = bn_vk_transfer_chunk(t);
    for (VkDeviceSize done = 0; done < size; done += chunk) {
        const VkDeviceSize n = size - done < chunk ? size - done : chunk;
        void *p = bn_vk_transfer_map(t, dst, offset + done, n, err, errlen);
        if (!p) return BN_ERR_DEVICE;
        memcpy(p, (const uint8_t *)src + done, (size_t)n);
    }
    return BN_OK;
}

enum bn_status bn_vk_transfer_read(bn_vk_transfer *t, const struct bn_vk_region *src, VkDeviceSize offset,
                                   void *dst, VkDeviceSize size, char *err, size_t errlen)
{
    BN_ASSERT(offset <= src->size && size <= src->size - offset);
    enum bn_status st;
    if (src->mapped) {
        if ((st = bn_vk_allocator_invalidate(t->alloc, src, err, errlen)) != BN_OK) return st;
        memcpy(dst, src->mapped + offset, size);
        return BN_OK;
    }
    /* Pending uploads first, so the staging buffer is ours. */
    if ((st = bn_vk_transfer_flush(t, err, errlen)) != BN_OK) return st;
    const VkDeviceSize chunk = bn_vk_transfer_chunk(t);
    for (VkDeviceSize done = 0; done < size; done += chunk) {
        const VkDeviceSize n = size - done < chunk ? size - done : chunk;
        if ((st = transfer_begin(t, err, errlen)) != BN_OK) return st;
        VkBufferCopy region = {.srcOffset = src->offset + offset + done, .dstOffset = t->staging.offset, .size = n};
        t->dev->fn.vkCmdCopyBuffer(t->cmd, src->buffer, t->staging.buffer, 1, &region);
        if ((st = bn_vk_transfer_flush(t, err, errlen)) != BN_OK) return st;
        if ((st = bn_vk_allocator_invalidate(t->alloc, &t->staging, err, errlen)) != BN_OK) return st;
        memcpy((uint8_t *)dst + done, t->staging.mapped, n);
    }
    return BN_OK;
}
