/*
 * vk_memory.h - device memory for the Vulkan backend: buffers sub-allocated
 * from large blocks, and staging for uploads and readback.
 *
 *     struct bn_vk_allocator *a;
 *     bn_vk_allocator_create(dev, &a, err, len);
 *     struct bn_vk_region r;
 *     bn_vk_alloc(a, BN_VK_MEM_WEIGHTS, bytes, &r, err, len);  // one descriptor range
 *     struct bn_vk_transfer *t;
 *     bn_vk_transfer_create(dev, a, &t, err, len);
 *     void *p = bn_vk_transfer_map(t, &r, 0, n, err, len);     // write n bytes there
 *     bn_vk_transfer_flush(t, err, len);                        // staged copies land
 *     bn_vk_transfer_read(t, &r, 0, host, n, err, len);
 *     bn_vk_transfer_destroy(t);
 *     bn_vk_free(a, &r);
 *     bn_vk_allocator_destroy(a);
 *
 * Each memory class has its own blocks (one VkDeviceMemory bound to one
 * VkBuffer), chosen by a preference list of memory properties: weights and
 * activations go device-local, then host-visible + device-local, then
 * host-visible (lavapipe and UMA devices offer only memory that is both).
 * A region is an aligned range of one block's buffer, never larger than
 * maxMemoryAllocationSize / maxBufferSize; callers keep every range they
 * bind within maxStorageBufferRange (big tensors are split into row ranges).
 *
 * Not thread-safe; the backend uses it from one thread.
 *
 * When a heap has no room for a whole block, a block of just the request
 * is tried before giving up. Out of memory, from the driver or from the cap
 * below, is BN_ERR_DEVICE with one message: "vulkan: out of device memory:
 * SIZE for CLASS ..." (host memory: "out of host memory").
 *
 * Test switches: BN_VK_FORCE_STAGING=1 leaves every block but staging ones
 * unmapped, so uploads, zero fills and readback take the staging paths that
 * discrete GPUs need, even on lavapipe. BN_VK_HEAP_LIMIT=N (bytes, or with
 * a K, M or G suffix) caps the device memory all blocks together may hold:
 * an allocation past it fails as VK_ERROR_OUT_OF_DEVICE_MEMORY would, so
 * tests reach the out-of-memory paths of weight upload and engine buffers.
 * A malformed value makes bn_vk_allocator_create fail with BN_ERR_USAGE.
 */
#ifndef BN_VK_MEMORY_H
#define BN_VK_MEMORY_H

#include <stdbool.h>
#include <stddef.h>

#include "vk_device.h"

enum bn_vk_mem_class {
    BN_VK_MEM_WEIGHTS,     /* read by shaders, written once at upload                 */
    BN_VK_MEM_ACTIVATIONS, /* read and written by shaders                              */
    BN_VK_MEM_READBACK,    /* small results the host reads after each forward pass    */
    BN_VK_MEM_STAGING,     /* host-visible bounce buffers                              */
    BN_VK_MEM_CLASS_COUNT
};

struct bn_vk_block;

/* A range of one VkBuffer: what one descriptor binds. */
struct bn_vk_region {
    VkBuffer buffer;
    VkDeviceSize offset;
    VkDeviceSize size;
    uint8_t *mapped;           /* host address of offset; NULL when not host-visible */
    struct bn_vk_block *block; /* owner; NULL for an empty region                    */
};

typedef struct bn_vk_allocator bn_vk_allocator;

enum bn_status bn_vk_allocator_create(const struct bn_vk_device *dev, bn_vk_allocator **out, char *err,
                                      size_t errlen);
/* BN_VK_HEAP_LIMIT: 0 when unset; bytes, with an optional K, M or G suffix
 * (powers of 1024). BN_ERR_USAGE for anything else. */
enum bn_status bn_vk_heap_limit_from_env(uint64_t *limit, char *err, size_t errlen);

/* Frees every block; regions still allocated become invalid. Accepts NULL. */
void bn_vk_allocator_destroy(bn_vk_allocator *a);

/* The largest region bn_vk_alloc can return (allocation and buffer limits). */
VkDeviceSize bn_vk_max_region(const bn_vk_allocator *a);

/* Allocates size bytes (rounded up to 4) aligned for storage-buffer
 * binding. Contents are undefined. BN_ERR_DEVICE (with the memory class and
 * size named) when no memory type has room or BN_VK_HEAP_LIMIT is reached. */
enum bn_status bn_vk_alloc(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size,
                           struct bn_vk_region *out, char *err, size_t errlen);
/* As bn_vk_alloc, but in a block of its own whatever the size, whose
 * memory goes back to the driver when the region is freed: for a
 * short-lived buffer (the bandwidth probe's) that must leave nothing
 * behind in the shared blocks the engine's figures count. */
enum bn_status bn_vk_alloc_dedicated(bn_vk_allocator *a, enum bn_vk_mem_class cls, VkDeviceSize size,
                                     struct bn_vk_region *out, char *err, size_t errlen);
/* Returns the range to its block and zeroes *r; accepts an empty region.
 * The caller guarantees no pending GPU work still uses it. */
void bn_vk_free(bn_vk_allocator *a, struct bn_vk_region *r);

/* Bytes of device memory held in blocks of all classes. */
uint64_t bn_vk_allocator_bytes(const bn_vk_allocator *a);

/* Makes host writes to non-coherent mapped blocks visible to the device
 * (vkFlushMappedMemoryRanges), or device writes visible to the host
 * (vkInvalidateMappedMemoryRanges). No-ops for coherent memory. */
enum bn_status bn_vk_allocator_flush(bn_vk_allocator *a, char *err, size_t errlen);
enum bn_status bn_vk_allocator_invalidate(bn_vk_allocator *a, const struct bn_vk_region *r, char *err, size_t errlen);

/* "16384 bytes", "1.5 MiB", "2.0 GiB": sizes in messages. Returns buf. */
const char *bn_vk_fmt_bytes(uint64_t bytes, char buf[32]);

/* Part of a region: bytes offset .. offset + size of r. */
struct bn_vk_region bn_vk_region_sub(const struct bn_vk_region *r, VkDeviceSize offset, VkDeviceSize size);

/* Uploads and readback outside the per-forward command stream (weights at
 * load time, results after a forward pass). */
typedef struct bn_vk_transfer bn_vk_transfer;

enum bn_status bn_vk_transfer_create(const struct bn_vk_device *dev, bn_vk_allocator *a, bn_vk_transfer **out,
                                     char *err, size_t errlen);
void bn_vk_transfer_destroy(bn_vk_transfer *t); /* accepts NULL; pending copies are dropped */

/* Most bytes one bn_vk_transfer_map call may ask for. */
VkDeviceSize bn_vk_transfer_chunk(const bn_vk_transfer *t);
/* A host pointer where the caller writes `size` bytes destined for
 * dst[offset ..]: dst's own memory when mapped, else staging memory whose
 * copy is recorded (and submitted when staging fills up). NULL on failure. */
void *bn_vk_transfer_map(bn_vk_transfer *t, const struct bn_vk_region *dst, VkDeviceSize offset, VkDeviceSize size,
                         char *err, size_t errlen);
/* Copies size bytes of host memory to dst[offset ..] through
 * bn_vk_transfer_map, a chunk at a time. */
enum bn_status bn_vk_transfer_write(bn_vk_transfer *t, const struct bn_vk_region *dst, VkDeviceSize offset,
                                    const void *src, VkDeviceSize size, char *err, size_t errlen);
/* Submits the recorded copies and waits for them. */
enum bn_status bn_vk_transfer_flush(bn_vk_transfer *t, char *err, size_t errlen);
/* Copies src[offset .. offset + size) to host memory; the device must be
 * idle with respect to src. */
enum bn_status bn_vk_transfer_read(bn_vk_transfer *t, const struct bn_vk_region *src, VkDeviceSize offset,
                                   void *dst, VkDeviceSize size, char *err, size_t errlen);
/* Queue submissions made so far (uploads and readbacks). */
uint64_t bn_vk_transfer_submits(const bn_vk_transfer *t);

#endif
