/*
 * vk_bandwidth.h - what a Vulkan device's memory can stream: a compute
 * shader copies one device buffer into another, timed on the device with
 * timestamp queries. This is the roofline `bitnet-vk bench` reports decode
 * speed against (decode reads every weight once per token).
 *
 *     struct bn_vk_bandwidth bw;
 *     bn_vk_measure_bandwidth(dev, alloc, 256u << 20, 5, &bw, err, sizeof err);
 *     printf("%.1f GB/s\n", bw.gbps);
 *
 * It records and submits its own command buffer and waits for it, so the
 * device must have no other work in flight on the queue from this thread.
 */
#ifndef BN_VK_BANDWIDTH_H
#define BN_VK_BANDWIDTH_H

#include <stdbool.h>
#include <stdint.h>

#include "vk_device.h"
#include "vk_memory.h"

struct bn_vk_bandwidth {
    double gbps;          /* mean over the timed copies: (bytes read + bytes written) / time, 1 GB = 1e9 bytes */
    double best_gbps;     /* the fastest copy                                                                   */
    uint64_t bytes;       /* bytes of one buffer (each copy reads and writes this many)                        */
    int reps;             /* timed copies, after one untimed warm-up                                            */
    bool device_failed;   /* the submission failed or timed out: the device's state is unknown                  */
};

/* Copies `bytes` (rounded down to 16, capped at the largest region a
 * descriptor may bind) reps times after a warm-up. An error when the queue
 * has no timestamps (BN_ERR_DEVICE), the probe cannot be set up (no memory)
 * or any Vulkan call fails, with out->device_failed
 * set when that was the submission or what came after it. The buffers have
 * blocks of their own and are freed before returning either way (after a
 * failed submission, once the device is idle), so the probe leaves no
 * device memory behind. */
enum bn_status bn_vk_measure_bandwidth(const struct bn_vk_device *dev, bn_vk_allocator *alloc, uint64_t bytes,
                                       int reps, struct bn_vk_bandwidth *out, char *err, size_t errlen);

#endif
