/*
 * bench_probe.c - what `bitnet-vk bench` measures about the host: memory
 * read bandwidth (the CPU's roofline: decode reads every weight once per
 * token, so tokens/s <= GB/s / bytes per token), peak resident memory and
 * the CPU's name. bench/bandwidth.c is the standalone probe with more
 * options (instruction sets, a file mapping); this one is what the bench
 * table's "% of bandwidth" column is measured against.
 */
#define _DEFAULT_SOURCE 1 /* madvise, MADV_HUGEPAGE */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"
#include "cli.h"

#define HUGE_ALIGN (2u << 20)

/* 16-byte lanes: wide enough that the loop is bound by memory, not by the
 * load ports, on every 64-bit CPU without asking for an instruction set. */
typedef uint64_t lane __attribute__((vector_size(16)));

struct slice {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
};

/* XORs the slice in 128-byte steps into eight accumulators; the result is
 * kept so the compiler keeps the loads. */
static void *read_slice(void *arg)
{
    struct slice *s = arg;
    lane a[8];
    memset(a, 0, sizeof a);
    for (size_t i = 0; i + 128 <= s->n; i += 128)
        for (int k = 0; k < 8; k++) {
            lane v;
            memcpy(&v, s->p + i + 16 * k, sizeof v);
            a[k] ^= v;
        }
    uint64_t x = 0;
    for (int k = 0; k < 8; k++) x ^= a[k][0] ^ a[k][1];
    s->sink = x;
    return NULL;
}

/* One pass of n threads over buf; GB/s. */
static double read_pass(const uint8_t *buf, size_t size, int n)
{
    pthread_t tid[BENCH_MAX_THREADS];
    bool started[BENCH_MAX_THREADS] = {false};
    struct slice sl[BENCH_MAX_THREADS];
    const size_t part = size / (size_t)n / 4096 * 4096;
    const double t0 = cli_now();
    for (int i = 0; i < n; i++) {
        sl[i] = (struct slice){buf + (size_t)i * part, part, 0};
        if (i > 0) started[i] = pthread_create(&tid[i], NULL, read_slice, &sl[i]) == 0;
    }
    read_slice(&sl[0]);
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else read_slice(&sl[i]); /* no thread: read it here, slower but complete */
    }
    const double dt = cli_now() - t0;
    volatile uint64_t sink = 0;
    for (int i = 0; i < n; i++) sink ^= sl[i].sink;
    (void)sink;
    return dt > 0 ? (double)part * (double)n / dt / 1e9 : 0.0;
}

double bench_cpu_read_bandwidth(size_t bytes, int n_threads, int reps)
{
    if (n_threads < 1) n_threads = 1;
    if (n_threads > BENCH_MAX_THREADS) n_threads = BENCH_MAX_THREADS;
    if ((size_t)n_threads > bytes / 4096) n_threads = bytes >= 4096 ? (int)(bytes / 4096) : 1; /* a page a thread */
    if (reps < 1) reps = 1;
    /* 2 MiB aligned so that transparent huge pages can back it, as they
     * back the backend's repacked weights. */
    uint8_t *map = mmap(NULL, bytes + HUGE_ALIGN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) return 0.0;
    uint8_t *buf = (uint8_t *)(((uintptr_t)map + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
#ifdef MADV_HUGEPAGE
    (void)madvise(buf, bytes, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < bytes; i += 64) buf[i] = (uint8_t)i;
    read_pass(buf, bytes, n_threads); /* warm-up: wakes the cores */
    double best = 0;
    for (int r = 0; r < reps; r++) {
        const double g = read_pass(buf, bytes, n_threads);
        if (g > best) best = g;
    }
    munmap(map, bytes + HUGE_ALIGN);
    return best;
}

void bench_rss_reset(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return;
    fputs("5", f); /* 5: reset the peak RSS (VmHWM) to the current RSS */
    fclose(f);
}

double bench_rss_peak_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0.0;
    char line[256];
    double kib = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0) kib = strtod(line + 6, NULL);
    fclose(f);
    return kib / 1024.0;
}

void bench_cpu_name(char *out, size_t len)
{
    snprintf(out, len, "cpu");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        /* x86: "model name"; arm64 kernels may only say "CPU part". */
        if (strncmp(line, "model name", 10) != 0) continue;
        const char *v = strchr(line, ':');
        if (!v) continue;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(out, len, "%s", v);
        out[strcspn(out, "\n")] = '\0';
        break;
    }
    fclose(f);
}
