/*
 * vk_stream.h - the command stream of one forward pass: ops are recorded
 * into one command buffer as they come, with a barrier only where a
 * dispatch touches memory an earlier one (since the last barrier) wrote, or
 * writes memory an earlier one read. The stream is submitted once, at
 * bn_vk_stream_finish(), with one fence wait.
 *
 *     bn_vk_stream *s;
 *     bn_vk_stream_create(dev, alloc, false, &s, err, len);   // true: time each dispatch
 *     bn_vk_stream_write(s, &tokens, 0, ids, n * 4);        // staged copy, in order
 *     bn_vk_stream_dispatch(s, &pipeline, regions, n, &push, sizeof push, groups, 0);
 *     ...
 *     bn_vk_stream_finish(s, err, len);                      // submit, wait; first error
 *     bn_vk_stream_destroy(s);
 *
 * Errors latch: after the first failure every call records nothing and
 * finish() reports it. Descriptor sets come from pools that are reset after
 * each submission; small host writes go through a host-visible staging ring
 * that is reused after each submission.
 *
 * A stream created with timestamps times every dispatch with timestamp
 * queries (bn_vk_stream_get_profile; the backend prints them with
 * BN_VK_STATS=1).
 */
#ifndef BN_VK_STREAM_H
#define BN_VK_STREAM_H

#include <stdbool.h>
#include <stddef.h>

#include "vk_memory.h"
#include "vk_pipeline.h"

typedef struct bn_vk_stream bn_vk_stream;

struct bn_vk_stream_stats {
    uint64_t submits;    /* queue submissions of recorded work  */
    uint64_t dispatches;
    uint64_t barriers;
    uint64_t copies;     /* staged writes and fills               */
};

enum bn_status bn_vk_stream_create(const struct bn_vk_device *dev, bn_vk_allocator *alloc, bool timestamps,
                                   bn_vk_stream **out, char *err, size_t errlen);
/* Waits for nothing: call finish() first. Accepts NULL. */
void bn_vk_stream_destroy(bn_vk_stream *s);

/* Latches a failure (the first one wins). */
void bn_vk_stream_fail(bn_vk_stream *s, enum bn_status st, const char *msg);
/* Latches it for good, as a failed submission of the stream's own does:
 * for work submitted elsewhere on the device (the bandwidth probe) that
 * failed or timed out, after which nothing more may run on it. */
void bn_vk_stream_kill(bn_vk_stream *s, enum bn_status st, const char *msg);
bool bn_vk_stream_ok(const bn_vk_stream *s);

/* Records one dispatch (see bn_vk_cmd_dispatch). Writes of dispatches with
 * the same nonzero `group` never conflict with each other: an op that
 * covers one output in several dispatches (one per weight part) writes
 * disjoint elements. */
void bn_vk_stream_dispatch(bn_vk_stream *s, const struct bn_vk_pipeline *p, const struct bn_vk_region *regions,
                           uint32_t n_regions, const void *push, uint32_t push_size, uint32_t gx, uint32_t gy,
                           uint32_t gz, uint32_t group);
/* Records a copy of host bytes into dst[offset ..]: the bytes are taken now. */
void bn_vk_stream_write(bn_vk_stream *s, const struct bn_vk_region *dst, VkDeviceSize offset, const void *src,
                        VkDeviceSize bytes);
/* Records a zero fill of a whole region (size a multiple of 4). */
void bn_vk_stream_zero(bn_vk_stream *s, const struct bn_vk_region *dst);

/* True when commands were recorded since the last finish(). */
bool bn_vk_stream_pending(const bn_vk_stream *s);
/* Frees r in alloc once no recorded work can use it any more: now, if
 * nothing is pending, else after the next finish(). */
void bn_vk_stream_release(bn_vk_stream *s, struct bn_vk_region *r);

/* Submits what was recorded (if anything), waits, and returns the first
 * failure since the last finish(), clearing it. */
enum bn_status bn_vk_stream_finish(bn_vk_stream *s, char *err, size_t errlen);

void bn_vk_stream_get_stats(const bn_vk_stream *s, struct bn_vk_stream_stats *out);

/* Created with timestamps (and timestamps on the queue): device time per
 * pipeline, from a timestamp before and after each dispatch. Dispatches
 * that overlap (no barrier between them) count their overlap twice. */
struct bn_vk_profile_entry {
    const char *name;
    double ms;
    uint64_t dispatches;
};
uint32_t bn_vk_stream_get_profile(const bn_vk_stream *s, const struct bn_vk_profile_entry **out);

#endif
