/*
 * bandwidth: the machine's memory read bandwidth, the roofline that decode
 * speed is reported against (DESIGN.md section 6: decode reads every weight
 * once per token, so tok/s <= GB/s / bytes per token).
 *
 *     bn-bandwidth [-s MiB] [-t THREADS] [-r REPS] [-f FILE]
 *
 * Reads a buffer much larger than the last-level cache with 1 .. THREADS
 * threads (each thread a contiguous slice, like the row split of a GEMV) and
 * prints the best and mean GB/s (1 GB = 1e9 bytes). With -f it also reads a
 * file through a private read-only mmap, the way model weights are read in
 * place, to show what 4 KiB page-cache pages cost against anonymous memory
 * with transparent huge pages.
 */
#define _DEFAULT_SOURCE 1 /* madvise, MADV_HUGEPAGE */
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* XORs 64-byte lines with the widest loads the CPU has (the kernels use
 * them too), so the loop is bound by memory, not by the load ports; the
 * result is returned so the compiler keeps the loads. */
#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        a0 = _mm256_xor_si256(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_xor_si256(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_xor_si256(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_xor_si256(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    return (uint64_t)_mm256_extract_epi64(a0, 0) ^ (uint64_t)_mm256_extract_epi64(a0, 3);
}

__attribute__((target("avx512f"))) static uint64_t read_avx512(const uint8_t *p, size_t n)
{
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 256 <= n; i += 256) {
        a0 = _mm512_xor_si512(a0, _mm512_load_si512((const void *)(p + i)));
        a1 = _mm512_xor_si512(a1, _mm512_load_si512((const void *)(p + i + 64)));
        a2 = _mm512_xor_si512(a2, _mm512_load_si512((const void *)(p + i + 128)));
        a3 = _mm512_xor_si512(a3, _mm512_load_si512((const void *)(p + i + 192)));
    }
    a0 = _mm512_xor_si512(_mm512_xor_si512(a0, a1), _mm512_xor_si512(a2, a3));
    return (uint64_t)_mm512_reduce_add_epi64(a0);
}
#endif

static uint64_t read_plain(const uint8_t *p, size_t n)
{
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        uint64_t x, y;
        memcpy(&x, p + i, 8);
        memcpy(&y, p + i + 8, 8);
        a ^= x;
        b ^= y;
    }
    return a ^ b;
}

static int have_avx2, have_avx512;

static uint64_t read_bytes(const uint8_t *p, size_t n)
{
#if defined(__x86_64__)
    if (have_avx512) return read_avx512(p, n);
    if (have_avx2) return read_avx2(p, n);
#endif
    return read_plain(p, n);
}

struct job {
    const uint8_t *p;
    size_t n;
    uint64_t sink;
};

static void *reader(void *arg)
{
    struct job *j = arg;
    j->sink = read_bytes(j->p, j->n);
    return NULL;
}

/* One timed pass of nth threads over buf; returns GB/s. */
static double pass(const uint8_t *buf, size_t size, int nth)
{
    pthread_t tid[64];
    struct job jobs[64];
    size_t slice = size / (size_t)nth / 4096 * 4096;
    double t0 = now();
    for (int i = 0; i < nth; i++) {
        jobs[i] = (struct job){buf + (size_t)i * slice, slice, 0};
        if (i > 0) pthread_create(&tid[i], NULL, reader, &jobs[i]);
    }
    reader(&jobs[0]);
    for (int i = 1; i < nth; i++) pthread_join(tid[i], NULL);
    double dt = now() - t0;
    volatile uint64_t sink = 0;
    for (int i = 0; i < nth; i++) sink ^= jobs[i].sink;
    (void)sink;
    return (double)slice * nth / dt / 1e9;
}

static void measure(const char *what, const uint8_t *buf, size_t size, int max_threads, int reps)
{
    for (int nth = 1; nth <= max_threads; nth++) {
        pass(buf, size, nth); /* warm-up: faults in the pages, wakes the cores */
        double best = 0, sum = 0;
        for (int r = 0; r < reps; r++) {
            double g = pass(buf, size, nth);
            sum += g;
            if (g > best) best = g;
        }
        printf("%-28s threads %d: best %6.1f GB/s, mean %6.1f GB/s\n", what, nth, best, sum / reps);
    }
}

int main(int argc, char **argv)
{
    size_t mib = 1024;
    int max_threads = (int)sysconf(_SC_NPROCESSORS_ONLN), reps = 5;
    const char *file = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-s") && i + 1 < argc) mib = (size_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) max_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else {
            fprintf(stderr, "usage: bn-bandwidth [-s MiB] [-t THREADS] [-r REPS] [-f FILE]\n");
            return 1;
        }
    }
    if (max_threads < 1) max_threads = 1;
    if (max_threads > 64) max_threads = 64;
    if (reps < 1) reps = 1;
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2");
    have_avx512 = __builtin_cpu_supports("avx512f");
#endif
    size_t size = mib << 20;
    /* 2 MiB aligned so transparent huge pages can back it (madvise mode). */
    uint8_t *buf = mmap(NULL, size + (2u << 20), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    uint8_t *al = (uint8_t *)(((uintptr_t)buf + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1));
#ifdef MADV_HUGEPAGE
    madvise(al, size, MADV_HUGEPAGE);
#endif
    for (size_t i = 0; i < size; i += 64) al[i] = (uint8_t)i;
    printf("buffer %zu MiB, %s loads\n", mib, have_avx512 ? "AVX-512" : have_avx2 ? "AVX2" : "64-bit");
    measure("anonymous (huge pages)", al, size, max_threads, reps);
    munmap(buf, size + (2u << 20));

    if (file) {
        int fd = open(file, O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0) {
            perror(file);
            return 1;
        }
        uint8_t *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        close(fd);
        if (m == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        measure("file mmap (4 KiB pages)", m, (size_t)st.st_size / 4096 * 4096, max_threads, reps);
        munmap(m, (size_t)st.st_size);
    }
    return 0;
}
