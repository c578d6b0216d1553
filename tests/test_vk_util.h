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
#include "test_util.h"
#include "vk_device.h"

/* 0 when opened (with the int8 head when head_q8); otherwise prints why
 * and returns -1. */
static inline int test_vk_open_head(struct bn_backend *be, bool head_q8)
{
    char err[512];
    const char *dev = getenv("BN_VK_TEST_DEVICE");
    struct bn_backend_vk_opts o = {.device_index = dev && dev[0] ? atoi(dev) : -1, .allow_cpu_device = true,
                                   .head_q8 = head_q8};
    if (bn_backend_vk_create(be, &o, err, sizeof err) != BN_OK) {
        fprintf(stderr, "no Vulkan device: %s\n", err);
        return -1;
    }
    return 0;
}

static inline int test_vk_open(struct bn_backend *be) { return test_vk_open_head(be, false); }

/* The backend's device name and counters. */
static inline struct bn_backend_vk_stats test_vk_stats(const struct bn_backend *be)
{
    struct bn_backend_vk_stats s;
    bn_backend_vk_get_stats(be, &s);
    return s;
}

/* A backend buffer holding bytes of data (or zeros when data is NULL). */
static inline bn_buf *test_vk_upload(struct bn_backend *be, const void *data, size_t bytes)
{
    char err[256];
    bn_buf *b = be->iface.buf_alloc(be->ctx, bytes, err, sizeof err);
    CHECKF(b != NULL, "buf_alloc %zu: %s", bytes, err);
    if (b && data) be->iface.buf_write(be->ctx, b, 0, data, bytes);
    return b;
}

/* Synchronizes, then reads bytes of b back into dst. */
static inline bool test_vk_download(struct bn_backend *be, const bn_buf *b, void *dst, size_t bytes)
{
    char err[256];
    enum bn_status st = be->iface.synchronize(be->ctx, err, sizeof err);
    CHECKF(st == BN_OK, "synchronize: %s", err);
    if (st == BN_OK) st = be->iface.buf_read(be->ctx, b, 0, dst, bytes, err, sizeof err);
    CHECKF(st == BN_OK, "buf_read: %s", err);
    return st == BN_OK;
}

/* The device index test_vk_open uses, for `--device vulkan:N`; -1 if none. */
static inline int test_vk_device_index(void)
{
    const char *dev = getenv("BN_VK_TEST_DEVICE");
    if (dev && dev[0]) return atoi(dev);
    bn_vk_instance *vi;
    char err[256];
    if (bn_vk_instance_create(&(struct bn_vk_instance_opts){0}, &vi, err, sizeof err) != BN_OK) return -1;
    int i = bn_vk_instance_pick_auto(vi, err, sizeof err);
    if (i < 0) i = bn_vk_instance_pick_cpu(vi, err, sizeof err);
    bn_vk_instance_destroy(vi);
    return i;
}

#endif
