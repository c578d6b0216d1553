/*
 * vk_tuning.h - per-device tuning of the Vulkan shaders: a table keyed by
 * vendor (and optionally device) id, with defaults for devices it does not
 * know, and an environment override for tests and experiments. The values
 * become specialization constants (workgroup size), push constants (rows
 * per workgroup, attention split) and shader variant choices (integer dot
 * product, fused decode projections, subgroup reductions). None of them changes an integer
 * result; the float results change only by rounding (the order of the
 * workgroup reductions follows the workgroup size).
 *
 *     struct bn_vk_tuning t;
 *     bn_vk_tuning_for(info, &t);                      // table entry, then BN_VK_TUNE
 *     ... t.wg, t.rows, t.int_dot, t.fuse, t.subgroup, t.attn_chunk ...
 *
 * Environment: BN_VK_TUNE="wg=128,rows=4,dot=0,fuse=0,subgroup=0,attn_chunk=32"
 * overrides any of the entry's fields (a malformed string is ignored with a
 * message on stderr, so a typo never changes results silently).
 */
#ifndef BN_VK_TUNING_H
#define BN_VK_TUNING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"
#include "vk_device.h"

struct bn_vk_tuning {
    const char *entry;   /* the table entry that matched ("default" if none)      */
    uint32_t wg;         /* invocations per workgroup of the row shaders, a power
                            of two, 32 .. 256; 0: four subgroups (64 .. 256)       */
    uint32_t rows;       /* decode GEMVs (matvec and fused projections): weight
                            rows per workgroup, 1 .. 64; 0: about two 256-weight
                            blocks per invocation (fused: at least 32)             */
    bool int_dot;        /* use the packed int8 dot product where the device has it */
    bool fuse;           /* decode: fused projections (norm + quantize prologue,
                            rope / KV store / activation / residual epilogue)      */
    bool subgroup;       /* workgroup sums and maxima with subgroup arithmetic
                            where the device has it (norms, quantization, head)   */
    uint32_t attn_chunk; /* decode attention: cache positions per split; 0: by
                            the cache length                                      */
};

/* The tuning for a device: its table entry (or the defaults), then the
 * BN_VK_TUNE override. */
void bn_vk_tuning_for(const struct bn_vk_device_info *info, struct bn_vk_tuning *out);

/* Applies an override string "key=value,..." (keys: wg, rows, dot, fuse,
 * subgroup, attn_chunk) to t. BN_ERR_USAGE with the reason for an unknown key or a
 * bad value (wg not 32, 64, 128 or 256, rows above 64, attn_chunk
 * above 256); t is unchanged then. Exposed for tests. */
enum bn_status bn_vk_tuning_parse(const char *spec, struct bn_vk_tuning *t, char *err, size_t errlen);

#endif
