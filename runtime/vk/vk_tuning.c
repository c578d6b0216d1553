/*
 * vk_tuning.c - the tuning table (see vk_tuning.h).
 *
 * The entries are starting points chosen from each vendor's documented
 * execution width (a workgroup of about four subgroups, so the reductions
 * have several subgroups to spread over and the tree stays short), with
 * subgroup reductions wherever the device has them; not measurements: a
 * measured better value for a device goes in as its own row, keyed by
 * device id, above its vendor's row.
 */
#include "vk_tuning.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tuning_row {
    uint32_t vendor_id;
    uint32_t device_id; /* 0: every device of the vendor */
    struct bn_vk_tuning t;
};

#define ROW(vendor, device, name, wg_, rows_, fuse_, sg_) \
    {vendor, device, {.entry = name, .wg = wg_, .rows = rows_, .int_dot = true, .fuse = fuse_, .subgroup = sg_}}
static const struct tuning_row table[] = {
    ROW(0x10DE, 0, "nvidia", 128, 0, true, true),   /* warps of 32                                  */
    ROW(0x1002, 0, "amd", 256, 0, true, true),      /* wave64 (RDNA may run wave32; 256 suits both) */
    ROW(0x8086, 0, "intel", 128, 0, true, true),    /* SIMD8..32                                    */
    ROW(0x106B, 0, "apple", 128, 0, true, true),    /* SIMD groups of 32 (MoltenVK)                 */
    ROW(0x13B5, 0, "arm", 64, 0, true, true),       /* Mali: 16 wide                                */
    ROW(0x5143, 0, "qualcomm", 128, 0, true, true), /* Adreno: 64 or 128 wide                       */
    /* lavapipe / llvmpipe, 4..16 wide on a few CPU cores (measured on 2B4T
     * shapes): the most rows per workgroup, and no fused projections, whose
     * per-workgroup quantization of the input row costs a CPU device about
     * as much as a whole unfused quantize dispatch, in every workgroup.
     * Subgroup reductions are within the noise there (kept on). */
    ROW(0x10005, 0, "mesa-cpu", 64, 64, false, true),
};
#undef ROW

static const struct bn_vk_tuning defaults = {
    .entry = "default", .wg = 0, .int_dot = true, .fuse = true, .subgroup = true};

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
    char buf[16];
    if (len == 0 || len >= sizeof buf) return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    errno = 0;
    unsigned long v = strtoul(buf, &end, 10);
    if (errno || *end || buf[0] == '-' || v > 0xFFFFFFFFul) return false;
    *out = (uint32_t)v;
    return true;
}

enum bn_status bn_vk_tuning_parse(const char *spec, struct bn_vk_tuning *t, char *err, size_t errlen)
{
    struct bn_vk_tuning n = *t;
    for (const char *p = spec; p && *p;) {
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (!eq) return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TUNE: '%.*s' is not key=value", (int)len, p);
        const size_t klen = (size_t)(eq - p);
        uint32_t v;
        if (!parse_u32(eq + 1, len - klen - 1, &v))
            return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TUNE: bad number in '%.*s'", (int)len, p);
        if (klen == 2 && !memcmp(p, "wg", 2)) {
            if (v < 32 || v > 256 || (v & (v - 1)))
                return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TUNE: wg=%u, expected 32, 64, 128 or 256", v);
            n.wg = v;
        } else if (klen == 4 && !memcmp(p, "rows", 4)) {
            if (v > 64) return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TUNE: rows=%u, expected 0 .. 64", v);
            n.rows = v;
        } else if (klen == 3 && !memcmp(p, "dot", 3)) {
            n.int_dot = v != 0;
        } else if (klen == 4 && !memcmp(p, "fuse", 4)) {
            n.fuse = v != 0;
        } else if (klen == 8 && !memcmp(p, "subgroup", 8)) {
            n.subgroup = v != 0;
        } else if (klen == 10 && !memcmp(p, "attn_chunk", 10)) {
            if (v > 256) return bn_errf(err, errlen, BN_ERR_USAGE, "BN_VK_TUNE: attn_chunk=%u, expected 0 .. 256", v);
            n.attn_chunk = v;
        } else {
            return bn_errf(err, errlen, BN_ERR_USAGE,
                           "BN_VK_TUNE: unknown key '%.*s' (wg, rows, dot, fuse, subgroup, attn_chunk)", (int)klen, p);
        }
        p = comma ? comma + 1 : NULL;
    }
    *t = n;
    return BN_OK;
}

void bn_vk_tuning_for(const struct bn_vk_device_info *info, struct bn_vk_tuning *out)
{
    *out = defaults;
    /* The first row that matches: device rows come before their vendor's. */
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (table[i].vendor_id == info->vendor_id && (!table[i].device_id || table[i].device_id == info->device_id)) {
            *out = table[i].t;
            break;
        }
    const char *env = getenv("BN_VK_TUNE");
    char err[256];
    if (env && env[0] && bn_vk_tuning_parse(env, out, err, sizeof err) != BN_OK)
        fprintf(stderr, "bitnet-vk: %s; ignored\n", err);
}
