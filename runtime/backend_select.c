/*
 * Backend choice from the --device preference. The Vulkan backend plugs in
 * here; until a build has it, "auto" says so and runs on the CPU, and a
 * named Vulkan device is an error rather than a silent substitution.
 */
#include <stdio.h>
#include <string.h>

#include "backend.h"

static enum bn_status make_cpu(const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                               struct bn_backend *out, char *err, size_t errlen)
{
    enum bn_status st = bn_backend_cpu_create(out, cpu_opts, err, errlen);
    if (st != BN_OK) return st;
    st = out->iface.supports(out->ctx, m, err, errlen);
    if (st == BN_OK) st = out->iface.upload_weights(out->ctx, m, err, errlen);
    if (st != BN_OK) {
        out->iface.destroy(out->ctx);
        out->ctx = NULL;
    }
    return st;
}

static bool is_vulkan_pref(const char *pref)
{
    if (strcmp(pref, "vulkan") == 0) return true;
    if (strncmp(pref, "vulkan:", 7) != 0 || pref[7] == '\0') return false;
    for (const char *p = pref + 7; *p; p++)
        if (*p < '0' || *p > '9') return false;
    return true;
}

enum bn_status bn_backend_select(const char *pref, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                                 struct bn_backend *out, char *note, size_t note_len, char *err, size_t errlen)
{
    if (note && note_len) note[0] = '\0';
    /* "auto" tries GPUs first; a build without the Vulkan backend has none
     * to try, so there is nothing to explain and the note stays empty. */
    if (pref == NULL || strcmp(pref, "auto") == 0) return make_cpu(m, cpu_opts, out, err, errlen);
    if (strcmp(pref, "cpu") == 0) return make_cpu(m, cpu_opts, out, err, errlen);
    if (is_vulkan_pref(pref))
        return bn_errf(err, errlen, BN_ERR_DEVICE, "--device %s: this build has no Vulkan backend", pref);
    return bn_errf(err, errlen, BN_ERR_USAGE, "--device %s: expected auto, cpu, vulkan or vulkan:N", pref);
}
