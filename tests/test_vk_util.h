/*
 * test_vk_util.h - opening the Vulkan backend in tests: the first GPU, else
 * a CPU device (Mesa lavapipe in CI); BN_VK_TEST_DEVICE=N names one.
 *
 *     struct bn_backend be;
 *     if (test_vk_open(&be) != 0) return test_skip_or_fail("no Vulkan device");
 */
#ifndef BN_TEST_VK_UTIL_H
#define BN_TEST_VK_UTIL_H

#include <stdio.h>
#include <stdlib.h>

#include "backend_vk.h"

/* 0 when opened; otherwise prints why and returns -1. */
static inline int test_vk_open(struct bn_backend *be)
{
    char err[512];
    const char *dev = getenv("BN_VK_TEST_DEVICE");
    struct bn_backend_vk_opts o = {.device_index = dev && dev[0] ? atoi(dev) : -1, .allow_cpu_device = true};
    if (bn_backend_vk_create(be, &o, err, sizeof err) != BN_OK) {
        fprintf(stderr, "no Vulkan device: %s\n", err);
        return -1;
    }
    return 0;
}

/* The backend's device name and counters. */
static inline struct bn_backend_vk_stats test_vk_stats(const struct bn_backend *be)
{
    struct bn_backend_vk_stats s;
    bn_backend_vk_get_stats(be, &s);
    return s;
}

#endif
