/*
 * bench_tokenizer - tokenizer speed on one core: vocabulary load time and
 * encode throughput.
 *
 *     bench_tokenizer -m ggml-vocab-llama-bpe.gguf [-f TEXT] [-s BYTES] [-r REPS]
 *
 * Text: the file given, else the English licence texts every Debian system
 * ships in /usr/share/common-licenses, concatenated; either way repeated to
 * -s bytes (default 1 MiB). The tokenizer has no word cache, so repeating
 * the text does not flatter it. Each measurement is repeated -r times
 * (default 5); the best and the median wall times are printed, and the best
 * CPU time; the best is the number the targets (load < 100 ms, encode >= 10
 * MB/s) are checked against.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "tokenizer.h"

static double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wall time, and the process's CPU time: on a busy machine the CPU time
 * still tells what one core needs. */
struct times {
    double wall, cpu;
};

static struct times now(void)
{
    return (struct times){clock_s(CLOCK_MONOTONIC), clock_s(CLOCK_PROCESS_CPUTIME_ID)};
}

static struct times since(struct times t0)
{
    struct times t = now();
    return (struct times){t.wall - t0.wall, t.cpu - t0.cpu};
}

/* Appends a file to buf (cap bytes), returns the new length. */
static size_t append_file(const char *path, char *buf, size_t n, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (!f) return n;
    n += fread(buf + n, 1, cap - n, f);
    fclose(f);
    return n;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The licence texts in name order, so every machine reads the same text. */
static size_t load_licences(char *buf, size_t cap)
{
    const char *dir = "/usr/share/common-licenses";
    DIR *d = opendir(dir);
    if (!d) return 0;
    char *names[64];
    size_t k = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && k < 64) {
        if (e->d_name[0] == '.') continue;
        names[k] = malloc(strlen(e->d_name) + 1);
        if (names[k]) strcpy(names[k++], e->d_name);
    }
    closedir(d);
    qsort(names, k, sizeof names[0], cmp_str);
    size_t n = 0;
    for (size_t i = 0; i < k; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        n = append_file(path, buf, n, cap);
        free(names[i]);
    }
    return n;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    const char *model = NULL, *file = NULL;
    size_t size = 1 << 20;
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-m") && i + 1 < argc) model = argv[++i];
        else if (!strcmp(argv[i], "-f") && i + 1 < argc) file = argv[++i];
        else if (!strcmp(argv[i], "-s") && i + 1 < argc) size = strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_tokenizer -m VOCAB.gguf [-f TEXT] [-s BYTES] [-r REPS]\n");
            return 1;
        }
    }
    if (!model || size == 0 || reps < 1 || reps > 1000) {
        fprintf(stderr, "usage: bench_tokenizer -m VOCAB.gguf [-f TEXT] [-s BYTES] [-r REPS]\n");
        return 1;
    }

    /* The source text, then repeated up to size bytes. */
    size_t cap = 4u << 20;
    char *src = malloc(cap), *text = malloc(size);
    if (!src || !text) return 3;
    size_t n_src = file ? append_file(file, src, 0, cap) : load_licences(src, cap);
    if (n_src == 0) {
        fprintf(stderr, "bench_tokenizer: no text (%s)\n", file ? file : "/usr/share/common-licenses is empty");
        return 1;
    }
    for (size_t k = 0; k < size; k += n_src) memcpy(text + k, src, size - k < n_src ? size - k : n_src);

    char err[512];
    bn_gguf *g = NULL;
    if (bn_gguf_open(model, &g, err, sizeof err) != BN_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", err);
        return 2;
    }
    double *load = malloc((size_t)reps * sizeof *load), *enc = malloc((size_t)reps * sizeof *enc);
    double load_cpu = 1e9, enc_cpu = 1e9;
    bn_tokenizer *tk = NULL;
    size_t n_ids = 0;
    for (int r = 0; r < reps; r++) {
        bn_tokenizer_destroy(tk);
        struct times t0 = now();
        if (bn_tokenizer_create(g, &tk, err, sizeof err) != BN_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", err);
            return 2;
        }
        struct times dt = since(t0);
        load[r] = dt.wall;
        if (dt.cpu < load_cpu) load_cpu = dt.cpu;
    }
    for (int r = 0; r < reps; r++) {
        int32_t *ids = NULL;
        struct times t0 = now();
        if (bn_tokenizer_encode(tk, text, size, false, true, &ids, &n_ids, err, sizeof err) != BN_OK) {
            fprintf(stderr, "bench_tokenizer: %s\n", err);
            return 3;
        }
        struct times dt = since(t0);
        enc[r] = dt.wall;
        if (dt.cpu < enc_cpu) enc_cpu = dt.cpu;
        free(ids);
    }
    qsort(load, (size_t)reps, sizeof *load, cmp_double);
    qsort(enc, (size_t)reps, sizeof *enc, cmp_double);
    printf("vocab %s: %u tokens\n", model, bn_tokenizer_n_vocab(tk));
    printf("text: %zu bytes (%s, %zu bytes, repeated) -> %zu tokens (%.2f bytes/token)\n", size,
           file ? file : "/usr/share/common-licenses/*", n_src, n_ids, (double)size / (double)(n_ids ? n_ids : 1));
    printf("load:   best %7.1f ms   median %7.1f ms   cpu %7.1f ms   (target < 100 ms)\n", load[0] * 1e3,
           load[reps / 2] * 1e3, load_cpu * 1e3);
    printf("encode: best %7.1f MB/s median %7.1f MB/s cpu %7.1f MB/s (target >= 10 MB/s; %d runs)\n",
           size / enc[0] / 1e6, size / enc[reps / 2] / 1e6, size / enc_cpu / 1e6, reps);
    bn_tokenizer_destroy(tk);
    bn_gguf_close(g);
    free(load);
    free(enc);
    free(src);
    free(text);
    return 0;
}
