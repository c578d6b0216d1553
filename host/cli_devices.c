/*
 * `bitnet-vk devices`: every Vulkan device with what bitnet-vk needs from it,
 * "usable" or the reason not, and what --device auto would pick.
 *
 * Exit status: 0 when the device list could be read (even if no device is
 * usable: the listing itself is the answer); 3 with one line when there is
 * nothing to list (no Vulkan backend in this build, no loader, no driver, no
 * device), so scripts can tell "Vulkan is absent" from "Vulkan is present".
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#if defined(BN_HAVE_VULKAN)
#include "vk_device.h"

static void print_size(const char *label, uint64_t bytes)
{
    if (bytes >= (1ull << 30)) printf("%s%.1f GiB", label, (double)bytes / (double)(1ull << 30));
    else if (bytes >= (1ull << 20)) printf("%s%.0f MiB", label, (double)bytes / (double)(1ull << 20));
    else printf("%s%.0f KiB", label, (double)bytes / 1024.0);
}

static void print_api(uint32_t v)
{
    printf("%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v), VK_API_VERSION_PATCH(v));
}

/* driverVersion is vendor-encoded; NVIDIA (and Intel on Windows) do not use
 * the VK_MAKE_API_VERSION layout. */
static void print_driver_version(uint32_t vendor, uint32_t v)
{
    if (vendor == 0x10DE) {
        printf("%u.%u.%u", (v >> 22) & 0x3ff, (v >> 14) & 0xff, (v >> 6) & 0xff);
        return;
    }
#if defined(_WIN32)
    if (vendor == 0x8086) {
        printf("%u.%u", v >> 14, v & 0x3fff);
        return;
    }
#endif
    print_api(v);
}

static const char *yes(bool b) { return b ? "yes" : "no"; }

static void print_device(const struct bn_vk_device_info *d)
{
    const struct bn_vk_features *f = &d->features;
    const struct bn_vk_limits *l = &d->limits;
    printf("device %u: %s\n", d->index, d->name);
    printf("  vendor:    %s (0x%04x), device 0x%04x\n", d->vendor, d->vendor_id, d->device_id);
    printf("  type:      %s\n", d->type_name);
    printf("  driver:    %s%s%s%sversion ", d->driver_name, d->driver_info[0] ? " (" : "", d->driver_info,
           d->driver_info[0] ? ") " : (d->driver_name[0] ? " " : ""));
    print_driver_version(d->vendor_id, d->driver_version);
    printf("\n  api:       Vulkan ");
    print_api(d->api_version);
    printf("\n  memory:   ");
    for (uint32_t i = 0; i < d->n_heaps; i++) {
        printf(" heap %u: ", i);
        print_size("", d->heaps[i].size);
        printf("%s%s", d->heaps[i].device_local ? " device-local" : " host", i + 1 < d->n_heaps ? ";" : "");
    }
    printf("\n  features:  storage8 %s, storage16 %s, int8 %s, float16 %s, int64 %s, subgroup-arith %s,\n"
           "             int-dot %s%s, subgroup-size-control %s\n",
           yes(f->storage8), yes(f->storage16), yes(f->int8), yes(f->float16), yes(f->int64), yes(f->subgroup_arith),
           yes(f->int_dot), f->int_dot ? (f->int_dot_accelerated ? " (accelerated)" : " (not accelerated)") : "",
           yes(f->subgroup_size_control));
    printf("  subgroup:  %u (%u..%u)\n", f->subgroup_size, f->min_subgroup_size, f->max_subgroup_size);
    print_size("  limits:    storage range ", l->max_storage_buffer_range);
    print_size(", allocation ", l->max_allocation_size);
    print_size(", buffer ", l->max_buffer_size);
    printf(",\n             workgroup %u invocations (%u x %u x %u), groups %u x %u x %u,\n", l->max_workgroup_invocations,
           l->max_workgroup_size[0], l->max_workgroup_size[1], l->max_workgroup_size[2], l->max_workgroup_count[0],
           l->max_workgroup_count[1], l->max_workgroup_count[2]);
    print_size("             shared memory ", l->max_shared_memory);
    printf(", push constants %u B, ", l->max_push_constants);
    if (l->timestamp_valid_bits) printf("timestamps %u bits at %g ns\n", l->timestamp_valid_bits, l->timestamp_period_ns);
    else printf("no timestamps\n");
    if (!d->usable) printf("  status:    not usable: %s\n", d->why_not);
    else if (d->type == VK_PHYSICAL_DEVICE_TYPE_CPU)
        printf("  status:    usable (a CPU device: used only when named, --device vulkan:%u or --device lavapipe)\n",
               d->index);
    else printf("  status:    usable\n");
}

static int list_devices(void)
{
    char err[512];
    bn_vk_instance *vi = NULL;
    enum bn_status st = bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &vi, err, sizeof err);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "devices: %s", err);
    uint32_t n = bn_vk_instance_device_count(vi);
    if (n == 0) {
        bn_vk_instance_destroy(vi);
        return cli_fail(3, "devices: no Vulkan devices (the loader found no driver that offers one)");
    }
    printf("Vulkan loader: %s (instance version ", bn_vk_instance_loader_name(vi));
    print_api(bn_vk_instance_loader_version(vi));
    printf(")\n");
    for (uint32_t i = 0; i < n; i++) print_device(bn_vk_instance_device_info(vi, i));
    char why[256];
    int pick = bn_vk_instance_pick_auto(vi, why, sizeof why);
    if (pick >= 0) printf("--device auto: device %d (%s)\n", pick, bn_vk_instance_device_info(vi, (uint32_t)pick)->name);
    else printf("--device auto: the CPU (%s)\n", why);
    if (bn_vk_instance_validation_enabled(vi))
        printf("validation: %u errors\n", bn_vk_instance_validation_errors(vi));
    bn_vk_instance_destroy(vi);
    return 0;
}
#endif

int cli_devices(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: bitnet-vk devices\n"
                   "Lists the Vulkan devices: name, vendor, type, driver, API version, memory heaps,\n"
                   "the features bitnet-vk uses, limits, and \"usable\" or the reason not.\n"
                   "Exit status 0 when devices were listed, 3 when Vulkan is absent.\n"
                   "Environment: BN_VK_VALIDATION=1 (validation layer), BN_VK_MAX_BUFFER_RANGE=N.\n");
            return 0;
        }
        return cli_fail(1, "devices: unknown option '%s'", argv[i]);
    }
#if defined(BN_HAVE_VULKAN)
    return list_devices();
#else
    return cli_fail(3, "devices: this build has no Vulkan backend");
#endif
}
