/*
 * vk_stream.c - one command buffer per forward pass: lazy begin, hazard
 * tracking for barriers, descriptor pools and a staging ring that live
 * until the submission completes, one submit with one fence wait.
 */
#include "vk_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SETS_PER_POOL 1024          /* ~30 layers x 15 dispatches + splits fit in one */
#define MAX_ACCESS 64               /* buffer ranges tracked between two barriers       */
#define STAGING_MIN (4ull << 20)    /* bytes of one staging chunk, at least             */
#define PROFILE_QUERIES 8192        /* timestamps per pass (two per dispatch)           */
#define PROFILE_NAMES 32            /* distinct pipelines profiled                      */

/* A buffer range accessed since the last barrier. */
struct access {
    VkBuffer buffer;
    VkDeviceSize begin, end;
    uint32_t group;
};

struct staging {
    struct bn_vk_region r;
    VkDeviceSize used;
};

struct bn_vk_stream {
    const struct bn_vk_device *dev;
    bn_vk_allocator *alloc;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
    bool recording;
    bool dead;                      /* a submission failed: the device state is unknown */

    VkDescriptorPool *pools;        /* grown on demand, reset after each submission */
    uint32_t n_pools, cur_pool;

    struct access reads[MAX_ACCESS], writes[MAX_ACCESS];
    uint32_t n_reads, n_writes;

    struct staging *staging;        /* host-visible chunks for stream_write */
    uint32_t n_staging, cur_staging;

    struct bn_vk_region *deferred;  /* freed after the submission completes */
    uint32_t n_deferred, cap_deferred;

    enum bn_status st;
    char err[256];
    struct bn_vk_stream_stats stats;

    /* With timestamps: one before and after each dispatch, summed
     * per pipeline after each submission. */
    VkQueryPool queries;
    uint32_t n_queries;
    const char **query_names;       /* [PROFILE_QUERIES / 2], pipeline of each pair */
    struct bn_vk_profile_entry profile[PROFILE_NAMES];
    uint32_t n_profile;
};

void bn_vk_stream_fail(bn_vk_stream *s, enum bn_status st, const char *msg)
{
    if (s->st != BN_OK) return;
    s->st = st;
    snprintf(s->err, sizeof s->err, "%s", msg);
}

void bn_vk_stream_kill(bn_vk_stream *s, enum bn_status st, const char *msg)
{
    bn_vk_stream_fail(s, st, msg);
    s->dead = true;
}

bool bn_vk_stream_ok(const bn_vk_stream *s) { return s->st == BN_OK; }
bool bn_vk_stream_pending(const bn_vk_stream *s) { return s->recording; }

enum bn_status bn_vk_stream_create(const struct bn_vk_device *dev, bn_vk_allocator *alloc, bool timestamps,
                                   bn_vk_stream **out, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    *out = NULL;
    bn_vk_stream *s = calloc(1, sizeof *s);
    if (!s) return bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
    s->dev = dev;
    s->alloc = alloc;
    st = bn_vk_cmd_create(dev, VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, &s->pool, &s->cmd, &s->fence, err,
                          errlen);
    if (st != BN_OK) goto fail;
    if (timestamps && dev->info->limits.timestamp_valid_bits > 0) {
        VkQueryPoolCreateInfo qci = {.sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qci.queryCount = PROFILE_QUERIES;
        BN_VK_TRY(dev->fn.vkCreateQueryPool(dev->device, &qci, NULL, &s->queries), st, err, errlen, fail);
        s->query_names = calloc(PROFILE_QUERIES / 2, sizeof *s->query_names);
        if (!s->query_names) {
            st = bn_errf(err, errlen, BN_ERR_NOMEM, "vulkan: out of memory");
            goto fail;
        }
    }
    *out = s;
    return BN_OK;
fail:
    bn_vk_stream_destroy(s);
    return st;
}

static void release_deferred(bn_vk_stream *s)
{
    for (uint32_t i = 0; i < s->n_deferred; i++) bn_vk_free(s->alloc, &s->deferred[i]);
    s->n_deferred = 0;
}

void bn_vk_stream_destroy(bn_vk_stream *s)
{
    if (!s) return;
    const struct bn_vk_device *dev = s->dev;
    release_deferred(s);
    free(s->deferred);
    for (uint32_t i = 0; i < s->n_staging; i++) bn_vk_free(s->alloc, &s->staging[i].r);
    free(s->staging);
    for (uint32_t i = 0; i < s->n_pools; i++) dev->fn.vkDestroyDescriptorPool(dev->device, s->pools[i], NULL);
    free(s->pools);
    if (s->queries != VK_NULL_HANDLE) dev->fn.vkDestroyQueryPool(dev->device, s->queries, NULL);
    free(s->query_names);
    if (s->fence != VK_NULL_HANDLE) dev->fn.vkDestroyFence(dev->device, s->fence, NULL);
    if (s->cmd != VK_NULL_HANDLE) dev->fn.vkFreeCommandBuffers(dev->device, s->pool, 1, &s->cmd);
    if (s->pool != VK_NULL_HANDLE) dev->fn.vkDestroyCommandPool(dev->device, s->pool, NULL);
    free(s);
}

/* Starts the command buffer on the first command after a finish(). */
static bool begin(bn_vk_stream *s)
{
    if (s->st != BN_OK) return false;
    if (s->recording) return true;
    char err[256];
    enum bn_status st = BN_OK;
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    BN_VK_TRY(s->dev->fn.vkBeginCommandBuffer(s->cmd, &bi), st, err, sizeof err, fail);
    s->recording = true;
    if (s->queries != VK_NULL_HANDLE) s->dev->fn.vkCmdResetQueryPool(s->cmd, s->queries, 0, PROFILE_QUERIES);
    s->n_queries = 0;
    return true;
fail:
    bn_vk_stream_fail(s, st, err);
    return false;
}

static void barrier(bn_vk_stream *s)
{
    bn_vk_cmd_barrier(s->dev, s->cmd, false);
    s->stats.barriers++;
    s->n_reads = s->n_writes = 0;
}

static bool overlaps(const struct access *a, VkBuffer b, VkDeviceSize begin, VkDeviceSize end, uint32_t group)
{
    if (group != 0 && a->group == group) return false;
    return a->buffer == b && a->begin < end && begin < a->end;
}

/* Whether accessing [begin, end) of b (writing when `write`) must wait for
 * the accesses recorded since the last barrier: read after write, write
 * after read, write after write. */
static bool conflicts(const bn_vk_stream *s, VkBuffer b, VkDeviceSize begin, VkDeviceSize end, bool write,
                      uint32_t group)
{
    for (uint32_t i = 0; i < s->n_writes; i++)
        if (overlaps(&s->writes[i], b, begin, end, group)) return true;
    for (uint32_t i = 0; write && i < s->n_reads; i++)
        if (overlaps(&s->reads[i], b, begin, end, group)) return true;
    return false;
}

/* Puts a barrier before the next command if any of its accesses conflict
 * (or the tracking lists are full), then records its accesses. */
static void track(bn_vk_stream *s, const struct bn_vk_region *r, uint32_t n, uint32_t write_mask, uint32_t group)
{
    bool need = s->n_reads + n > MAX_ACCESS || s->n_writes + n > MAX_ACCESS;
    for (uint32_t i = 0; i < n && !need; i++)
        need = conflicts(s, r[i].buffer, r[i].offset, r[i].offset + r[i].size, (write_mask >> i) & 1u, group);
    if (need) barrier(s);
    for (uint32_t i = 0; i < n; i++) {
        struct access a = {r[i].buffer, r[i].offset, r[i].offset + r[i].size, group};
        if ((write_mask >> i) & 1u) s->writes[s->n_writes++] = a;
        else s->reads[s->n_reads++] = a;
    }
}

static VkDescriptorSet alloc_set(bn_vk_stream *s, const struct bn_vk_pipeline *p)
{
    char err[256];
    enum bn_status st = BN_OK;
    VkDescriptorSet set = VK_NULL_HANDLE;
    for (;;) {
        if (s->cur_pool == s->n_pools) {
            VkDescriptorPool *grown = realloc(s->pools, (s->n_pools + 1) * sizeof *grown);
            if (!grown) {
                bn_vk_stream_fail(s, BN_ERR_NOMEM, "vulkan: out of memory");
                return VK_NULL_HANDLE;
            }
            s->pools = grown;
            VkDescriptorPoolSize size = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, SETS_PER_POOL * BN_VK_MAX_BINDINGS};
            VkDescriptorPoolCreateInfo dpci = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
            dpci.maxSets = SETS_PER_POOL;
            dpci.poolSizeCount = 1;
            dpci.pPoolSizes = &size;
            BN_VK_TRY(s->dev->fn.vkCreateDescriptorPool(s->dev->device, &dpci, NULL, &s->pools[s->n_pools]), st, err,
                      sizeof err, fail);
            s->n_pools++;
        }
        VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = s->pools[s->cur_pool];
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &p->set_layout;
        VkResult r = s->dev->fn.vkAllocateDescriptorSets(s->dev->device, &ai, &set);
        if (r == VK_SUCCESS) return set;
        /* A full pool: go on with the next one (made if need be). */
        if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) BN_VK_TRY(r, st, err, sizeof err, fail);
        s->cur_pool++;
    }
fail:
    bn_vk_stream_fail(s, st, err);
    return VK_NULL_HANDLE;
}

void bn_vk_stream_dispatch(bn_vk_stream *s, const struct bn_vk_pipeline *p, const struct bn_vk_region *regions,
                           uint32_t n_regions, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                           uint32_t gz, uint32_t group)
{
    if (!begin(s)) return;
    VkDescriptorSet set = alloc_set(s, p);
    if (set == VK_NULL_HANDLE) return;
    track(s, regions, n_regions, p->write_mask, group);
    char err[256];
    const uint32_t groups[3] = {gx, gy, gz};
    const bool timed = s->queries != VK_NULL_HANDLE && s->n_queries + 2 <= PROFILE_QUERIES;
    if (timed) s->dev->fn.vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, s->queries, s->n_queries);
    enum bn_status st = bn_vk_cmd_dispatch(s->dev, s->cmd, set, p, regions, n_regions, push, push_size, groups, err,
                                           sizeof err);
    if (timed) {
        s->dev->fn.vkCmdWriteTimestamp(s->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, s->queries, s->n_queries + 1);
        s->query_names[s->n_queries / 2] = p->name;
        s->n_queries += 2;
    }
    if (st != BN_OK) bn_vk_stream_fail(s, st, err);
    else s->stats.dispatches++;
}

/* Adds the finished pass's dispatch times to the per-pipeline totals. */
static void collect_profile(bn_vk_stream *s)
{
    if (s->queries == VK_NULL_HANDLE || s->n_queries == 0) return;
    uint64_t *ts = malloc(s->n_queries * sizeof *ts);
    if (!ts) return;
    VkResult r = s->dev->fn.vkGetQueryPoolResults(s->dev->device, s->queries, 0, s->n_queries,
                                                  s->n_queries * sizeof *ts, ts, sizeof *ts,
                                                  VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
    const uint32_t bits = s->dev->info->limits.timestamp_valid_bits;
    const uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    for (uint32_t i = 0; r == VK_SUCCESS && i < s->n_queries / 2; i++) {
        const double ns = (double)((ts[2 * i + 1] - ts[2 * i]) & mask) * s->dev->info->limits.timestamp_period_ns;
        uint32_t k = 0;
        while (k < s->n_profile && strcmp(s->profile[k].name, s->query_names[i]) != 0) k++;
        if (k == s->n_profile) {
            if (k == PROFILE_NAMES) continue;
            s->profile[s->n_profile++] = (struct bn_vk_profile_entry){.name = s->query_names[i]};
        }
        s->profile[k].ms += ns * 1e-6;
        s->profile[k].dispatches++;
    }
    free(ts);
}

uint32_t bn_vk_stream_get_profile(const bn_vk_stream *s, const struct bn_vk_profile_entry **out)
{
    *out = s->profile;
    return s->n_profile;
}

/* Host-visible staging space for `bytes` (at most one chunk's worth). */
static bool staging_take(bn_vk_stream *s, VkDeviceSize bytes, struct bn_vk_region *out)
{
    bytes = (bytes + 15) / 16 * 16;
    while (s->cur_staging < s->n_staging) {
        struct staging *c = &s->staging[s->cur_staging];
        if (c->used + bytes <= c->r.size) {
            *out = bn_vk_region_sub(&c->r, c->used, bytes);
            c->used += bytes;
            return true;
        }
        s->cur_staging++;
    }
    struct staging *grown = realloc(s->staging, (s->n_staging + 1) * sizeof *grown);
    if (!grown) {
        bn_vk_stream_fail(s, BN_ERR_NOMEM, "vulkan: out of memory");
        return false;
    }
    s->staging = grown;
    struct staging *c = &s->staging[s->n_staging];
    memset(c, 0, sizeof *c);
    char err[256];
    VkDeviceSize size = bytes > STAGING_MIN ? bytes : STAGING_MIN;
    if (size > bn_vk_max_region(s->alloc)) size = bn_vk_max_region(s->alloc);
    enum bn_status st = bn_vk_alloc(s->alloc, BN_VK_MEM_STAGING, size, &c->r, err, sizeof err);
    /* Short of memory, a chunk of just this write may still fit. */
    if (st != BN_OK && size > bytes) st = bn_vk_alloc(s->alloc, BN_VK_MEM_STAGING, bytes, &c->r, err, sizeof err);
    if (st != BN_OK) {
        bn_vk_stream_fail(s, st, err);
        return false;
    }
    s->n_staging++;
    *out = bn_vk_region_sub(&c->r, 0, bytes);
    c->used = bytes;
    return true;
}

void bn_vk_stream_write(bn_vk_stream *s, const struct bn_vk_region *dst, VkDeviceSize offset, const void *src,
                        VkDeviceSize bytes)
{
    BN_ASSERT(offset <= dst->size && bytes <= dst->size - offset);
    const VkDeviceSize chunk = bn_vk_max_region(s->alloc) / 2;
    for (VkDeviceSize done = 0; done < bytes;) {
        const VkDeviceSize n = bytes - done < chunk ? bytes - done : chunk;
        struct bn_vk_region st;
        if (!begin(s) || !staging_take(s, n, &st)) return;
        memcpy(st.mapped, (const uint8_t *)src + done, n);
        struct bn_vk_region d = bn_vk_region_sub(dst, offset + done, n);
        track(s, &d, 1, 1u, 0);
        VkBufferCopy c = {.srcOffset = st.offset, .dstOffset = d.offset, .size = n};
        s->dev->fn.vkCmdCopyBuffer(s->cmd, st.buffer, d.buffer, 1, &c);
        s->stats.copies++;
        done += n;
    }
}

void bn_vk_stream_zero(bn_vk_stream *s, const struct bn_vk_region *dst)
{
    if (!begin(s)) return;
    BN_ASSERT(dst->size % 4 == 0);
    track(s, dst, 1, 1u, 0);
    s->dev->fn.vkCmdFillBuffer(s->cmd, dst->buffer, dst->offset, dst->size, 0);
    s->stats.copies++;
}

void bn_vk_stream_release(bn_vk_stream *s, struct bn_vk_region *r)
{
    if (!r->block) return;
    if (!s->recording) {
        bn_vk_free(s->alloc, r);
        return;
    }
    if (s->n_deferred == s->cap_deferred) {
        uint32_t cap = s->cap_deferred ? 2 * s->cap_deferred : 16;
        struct bn_vk_region *grown = realloc(s->deferred, cap * sizeof *grown);
        if (!grown) {
            /* Keeping the memory is safe; freeing it early is not. */
            bn_vk_stream_fail(s, BN_ERR_NOMEM, "vulkan: out of memory");
            memset(r, 0, sizeof *r);
            return;
        }
        s->deferred = grown;
        s->cap_deferred = cap;
    }
    s->deferred[s->n_deferred++] = *r;
    memset(r, 0, sizeof *r);
}

/* Back to an empty stream once nothing recorded can still run. */
static void reset_after_submit(bn_vk_stream *s)
{
    for (uint32_t i = 0; i <= s->cur_pool && i < s->n_pools; i++)
        (void)s->dev->fn.vkResetDescriptorPool(s->dev->device, s->pools[i], 0); /* always VK_SUCCESS */
    s->cur_pool = 0;
    for (uint32_t i = 0; i < s->n_staging; i++) s->staging[i].used = 0;
    s->cur_staging = 0;
    s->n_reads = s->n_writes = 0;
    release_deferred(s);
}

enum bn_status bn_vk_stream_finish(bn_vk_stream *s, char *err, size_t errlen)
{
    enum bn_status st = BN_OK;
    if (s->dead) return bn_errf(err, errlen, BN_ERR_DEVICE, "%s", s->err);
    if (s->recording) {
        s->recording = false;
        char msg[256];
        /* Results of the pass become visible to the host after the fence. */
        bn_vk_cmd_barrier(s->dev, s->cmd, true);
        VkResult r = s->dev->fn.vkEndCommandBuffer(s->cmd);
        if (r != VK_SUCCESS && s->st == BN_OK) {
            snprintf(msg, sizeof msg, "vulkan: vkEndCommandBuffer failed: %s", bn_vk_result_name(r));
            bn_vk_stream_fail(s, BN_ERR_DEVICE, msg);
        }
        if (s->st == BN_OK) {
            /* Only a complete pass is worth running; after a failure the
             * buffer is dropped (the next begin resets it). */
            st = bn_vk_allocator_flush(s->alloc, msg, sizeof msg);
            if (st == BN_OK) {
                s->stats.submits++;
                st = bn_vk_submit_wait(s->dev, s->cmd, s->fence, msg, sizeof msg);
                /* After a timeout or a lost device the buffer may still be
                 * in use: nothing recorded may be touched again. */
                if (st != BN_OK) s->dead = true;
                else collect_profile(s);
            }
            if (st != BN_OK) bn_vk_stream_fail(s, st, msg);
        }
        if (!s->dead) reset_after_submit(s);
    } else {
        release_deferred(s);
    }
    st = s->st;
    if (st != BN_OK) bn_errf(err, errlen, st, "%s", s->err);
    if (!s->dead) s->st = BN_OK;
    return st;
}

void bn_vk_stream_get_stats(const bn_vk_stream *s, struct bn_vk_stream_stats *out) { *out = s->stats; }
