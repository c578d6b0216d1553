/*
 * backend_vk.h - the Vulkan backend: the ops of runtime/backend.h recorded as
 * compute dispatches into one command buffer per forward call, submitted at
 * synchronize() with one fence wait.
 *
 *     struct bn_backend be;
 *     struct bn_backend_vk_opts o = {.device_index = -1};   // -1: auto choice
 *     if (bn_backend_vk_create(&be, &o, err, sizeof err) != BN_OK) -> CPU, err says why
 *     be.iface.supports(be.ctx, model, err, len);           // memory, features
 *     be.iface.upload_weights(be.ctx, model, err, len);     // repack + staging upload
 *     ... engine ...
 *     be.iface.destroy(be.ctx);                             // device, instance, loader
 */
#ifndef BN_BACKEND_VK_H
#define BN_BACKEND_VK_H

#include <stdbool.h>

#include "backend.h"

struct bn_backend_vk_opts {
    int device_index;       /* -1: first usable GPU (discrete, integrated, virtual) */
    bool allow_cpu_device;  /* let -1 pick a CPU device (lavapipe) too             */
    bool validation;        /* VK_LAYER_KHRONOS_validation (also BN_VK_VALIDATION=1) */
    bool head_q8;           /* --head q8: an int8 copy of the head, made at upload as
                               the CPU backend makes it (needs shaderInt64)          */
    bool profile;           /* timestamp queries around each dispatch, summed per
                               shader (bn_backend_vk_get_profile; also
                               BN_VK_PROFILE=1)                                     */
};

/* BN_ERR_DEVICE with a one-line reason ("no Vulkan loader ...", "device 1
 * lacks 8-bit storage", "no Vulkan GPU: ...") when no usable device could be
 * opened; BN_ERR_USAGE for a device index that does not exist. */
enum bn_status bn_backend_vk_create(struct bn_backend *out, const struct bn_backend_vk_opts *opts, char *err,
                                    size_t errlen);

/* Counters of a Vulkan backend, for tests and debugging (BN_VK_STATS=1
 * prints them at destroy). One forward pass is one submission: a greedy
 * decode loop makes exactly one per generated token. */
struct bn_backend_vk_stats {
    uint64_t submits;          /* forward passes submitted (synchronize calls with work) */
    uint64_t synchronizes;     /* synchronize() calls                                    */
    uint64_t transfer_submits; /* weight uploads and readbacks outside forward passes    */
    uint64_t dispatches;
    uint64_t barriers;
    uint32_t validation_errors; /* from VK_LAYER_KHRONOS_validation, when enabled       */
    bool int_dot;               /* ternary shaders use the packed 4x8-bit dot product   */
    bool subgroup;              /* reductions use subgroup arithmetic                   */
    bool head_q8;               /* the head runs as its int8 copy (--head q8)           */
    uint64_t device_bytes;      /* device memory held                                   */
    char device[256];
};
/* BN_ERR_USAGE when be is not a Vulkan backend. */
enum bn_status bn_backend_vk_get_stats(const struct bn_backend *be, struct bn_backend_vk_stats *out);

/* What `bitnet-vk bench` needs beyond the counters: the device as users
 * know it, its memory bandwidth and the device time per shader. */
struct bn_backend_vk_device_desc {
    char name[256];
    char type[16];       /* "discrete", "integrated", "virtual", "cpu" (lavapipe), "other" */
    char driver[520];    /* driver name and info, e.g. "llvmpipe: Mesa 22.3.6 (LLVM 15.0.6)" */
};
/* BN_ERR_USAGE when be is not a Vulkan backend. */
enum bn_status bn_backend_vk_describe(const struct bn_backend *be, struct bn_backend_vk_device_desc *out);

/* Device memory bandwidth from a copy shader timed with timestamp queries
 * (runtime/vk/vk_bandwidth.h): *gbps = (bytes read + written) / time, the
 * mean of reps copies of a `bytes` buffer. Waits for recorded work first.
 * When the probe cannot measure but the device is fine (no timestamps, no
 * room for its buffers, a clock too coarse): BN_OK, *gbps = 0 and the
 * reason in err. An error when the recorded work before it fails, or when
 * its own submission fails or times out: then the device's state is
 * unknown, and every later forward pass on this backend fails with it. */
enum bn_status bn_backend_vk_measure_bandwidth(const struct bn_backend *be, uint64_t bytes, int reps, double *gbps,
                                               char *err, size_t errlen);

/* Device time per pipeline (shader variant), summed over every forward
 * pass since the backend was created; only when it was created with
 * opts.profile or under BN_VK_PROFILE=1 (otherwise 0 entries). Copies at
 * most max entries into out and returns how many; names stay valid while
 * the backend lives. */
struct bn_backend_vk_op_time {
    const char *name;
    double ms;
    uint64_t dispatches;
};
uint32_t bn_backend_vk_get_profile(const struct bn_backend *be, struct bn_backend_vk_op_time *out, uint32_t max);

#endif
