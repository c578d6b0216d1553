/*
 * Backend choice from the --device preference:
 *
 *   auto       the Vulkan GPU the backend picks (discrete, integrated,
 *              virtual; never a CPU device), else the CPU with a one-line
 *              note saying why
 *   cpu        the CPU backend
 *   vulkan     the same GPU choice as auto, but failing is an error
 *   vulkan:N   Vulkan device N of `bitnet-vk devices`, lavapipe included
 *   lavapipe   the first CPU-type Vulkan device (Mesa lavapipe)
 *
 * A named device that cannot be used is an error (exit 3), never a silent
 * substitution. A build without the Vulkan backend runs "auto" on the CPU
 * with no note (nothing was tried) and refuses the Vulkan names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"

#if defined(BN_HAVE_VULKAN)
#include "backend_vk.h"
#include "vk_device.h"
#endif

/* Makes a backend ready for the model: supports() then upload_weights().
 * On failure the backend is destroyed and err says why. */
static enum bn_status prepare(struct bn_backend *be, const struct bn_model *m, char *err, size_t errlen)
{
    enum bn_status st = be->iface.supports(be->ctx, m, err, errlen);
    if (st == BN_OK) st = be->iface.upload_weights(be->ctx, m, err, errlen);
    if (st != BN_OK) {
        be->iface.destroy(be->ctx);
        be->ctx = NULL;
    }
    return st;
}

static enum bn_status make_cpu(const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                               struct bn_backend *out, char *err, size_t errlen)
{
    enum bn_status st = bn_backend_cpu_create(out, cpu_opts, err, errlen);
    if (st != BN_OK) return st;
    return prepare(out, m, err, errlen);
}

/* The Vulkan names: kind 'v' for "vulkan" (index -1), 'n' for "vulkan:N",
 * 'l' for "lavapipe"; 0 when pref is none of them. BN_ERR_USAGE for a
 * "vulkan:" whose number is missing or malformed. */
static enum bn_status parse_vulkan_pref(const char *pref, char *kind, long *index, char *err, size_t errlen)
{
    *kind = 0;
    *index = -1;
    if (strcmp(pref, "vulkan") == 0) {
        *kind = 'v';
        return BN_OK;
    }
    if (strcmp(pref, "lavapipe") == 0) {
        *kind = 'l';
        return BN_OK;
    }
    if (strncmp(pref, "vulkan:", 7) != 0) return BN_OK;
    const char *num = pref + 7;
    bool digits = num[0] != '\0' && strlen(num) <= 6;
    for (const char *p = num; digits && *p; p++) digits = *p >= '0' && *p <= '9';
    if (!digits)
        return bn_errf(err, errlen, BN_ERR_USAGE, "--device %s: expected a device number after 'vulkan:'", pref);
    *kind = 'n';
    *index = strtol(num, NULL, 10);
    return BN_OK;
}

/* A preference other than auto and cpu: one of the Vulkan names, in a
 * build that has the Vulkan backend; else why not. */
static enum bn_status vulkan_name(const char *pref, char *kind, long *index, char *err, size_t errlen)
{
    enum bn_status st = parse_vulkan_pref(pref, kind, index, err, errlen);
    if (st != BN_OK) return st;
    if (*kind == 0)
        return bn_errf(err, errlen, BN_ERR_USAGE, "--device %s: expected auto, cpu, vulkan, vulkan:N or lavapipe",
                       pref);
#if !defined(BN_HAVE_VULKAN)
    return bn_errf(err, errlen, BN_ERR_DEVICE, "--device %s: this build has no Vulkan backend", pref);
#endif
    return BN_OK;
}

#if defined(BN_HAVE_VULKAN)
/* The device a Vulkan name of kind 'v' (the GPU choice), 'l' (the first
 * CPU-type device) or 'n' (*index) comes to, found and checked through a
 * short-lived instance (a backend makes its own); the reason in why when
 * there is none or it cannot be used. */
static enum bn_status resolve_vulkan(char kind, long *index, char *why, size_t whylen)
{
    bn_vk_instance *vi = NULL;
    enum bn_status st = bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &vi, why, whylen);
    if (st != BN_OK) return st;
    if (kind == 'v') *index = bn_vk_instance_pick_auto(vi, why, whylen);
    else if (kind == 'l') *index = bn_vk_instance_pick_cpu(vi, why, whylen);
    if (*index < 0) st = BN_ERR_DEVICE; /* why says it */
    else st = bn_vk_instance_check_device(vi, (uint32_t)*index, why, whylen);
    bn_vk_instance_destroy(vi);
    return st;
}

/* Opens the Vulkan backend on device `index` (-1: the auto choice) and
 * prepares it for the model. Of the CPU options, the int8 head and the
 * GPU profile apply to it too. */
static enum bn_status make_vulkan(long index, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                                  struct bn_backend *out, char *err, size_t errlen)
{
    /* A number names one device, CPU type or not; -1 is the GPU choice. */
    struct bn_backend_vk_opts o = {.device_index = (int)index, .allow_cpu_device = index >= 0};
    o.head_q8 = cpu_opts && cpu_opts->head_q8;
    o.profile = cpu_opts && cpu_opts->gpu_profile;
    enum bn_status st = bn_backend_vk_create(out, &o, err, errlen);
    if (st != BN_OK) return st;
    return prepare(out, m, err, errlen);
}
#endif

enum bn_status bn_backend_select(const char *pref, const struct bn_model *m, const struct bn_backend_cpu_opts *cpu_opts,
                                 struct bn_backend *out, char *note, size_t note_len, char *err, size_t errlen)
{
    if (note && note_len) note[0] = '\0';
    memset(out, 0, sizeof *out);
    if (pref == NULL) pref = "auto";
    if (strcmp(pref, "cpu") == 0) return make_cpu(m, cpu_opts, out, err, errlen);
    if (strcmp(pref, "auto") == 0) {
#if defined(BN_HAVE_VULKAN)
        char why[256];
        if (make_vulkan(-1, m, cpu_opts, out, why, sizeof why) == BN_OK) return BN_OK;
        memset(out, 0, sizeof *out);
        bn_errf(note, note_len, BN_OK, "--device auto: %s; running on the CPU", why);
#endif
        return make_cpu(m, cpu_opts, out, err, errlen);
    }

    char kind;
    long index;
    enum bn_status st = vulkan_name(pref, &kind, &index, err, errlen);
#if defined(BN_HAVE_VULKAN)
    if (st != BN_OK) return st;
    char why[256];
    if (kind == 'l' && (st = resolve_vulkan(kind, &index, why, sizeof why)) != BN_OK)
        return bn_errf(err, errlen, st, "--device %s: %s", pref, why);
    st = make_vulkan(index, m, cpu_opts, out, why, sizeof why);
    if (st != BN_OK) {
        memset(out, 0, sizeof *out);
        return bn_errf(err, errlen, st, "--device %s: %s", pref, why);
    }
    return BN_OK;
#else
    return st; /* every Vulkan name is refused here */
#endif
}

enum bn_status bn_backend_check_device(const char *pref, int *vk_index, char *err, size_t errlen)
{
    *vk_index = -1;
    if (pref == NULL) pref = "auto";
    if (strcmp(pref, "cpu") == 0) return BN_OK;
    const bool is_auto = strcmp(pref, "auto") == 0;
    char kind = 'v';
    long index = -1;
    enum bn_status st = is_auto ? BN_OK : vulkan_name(pref, &kind, &index, err, errlen);
#if defined(BN_HAVE_VULKAN)
    if (st != BN_OK) return st;
    char why[256] = "";
    st = resolve_vulkan(kind, &index, why, sizeof why);
    if (st == BN_OK) *vk_index = (int)index;
    else if (is_auto) st = BN_OK; /* auto: the CPU, as bn_backend_select would fall back */
    else bn_errf(err, errlen, st, "--device %s: %s", pref, why);
    return st;
#else
    return is_auto ? BN_OK : st; /* every Vulkan name is refused here */
#endif
}
