/*
 * test_util.h - the tiny harness every test executable uses.
 *
 *     int main(void) {
 *         CHECK(1 + 1 == 2, "arithmetic");
 *         CHECKF(x == y, "row %d: %d != %d", r, x, y);
 *         return test_report("test_name");
 *     }
 *
 * test_report prints "test_name: N passed, N failed" and returns the exit
 * code. test_testdata() returns the shared test data directory, or NULL after
 * printing why; tests then call test_skip_or_fail(), which fails under CI=true
 * and skips (exit 77, CTest's SKIP_RETURN_CODE) elsewhere.
 */
#ifndef BN_TEST_UTIL_H
#define BN_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int test_passed_count;
static int test_failed_count;

#define CHECK(cond, msg) CHECKF(cond, "%s", msg)
#define CHECKF(cond, ...)                                                   \
    do {                                                                    \
        if (cond) {                                                         \
            test_passed_count++;                                            \
        } else {                                                            \
            test_failed_count++;                                            \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);            \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

static inline int test_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, test_passed_count, test_failed_count);
    return test_failed_count == 0 ? 0 : 1;
}

static inline const char *test_testdata(void)
{
    struct stat st;
    if (stat(BN_TESTDATA_DIR, &st) == 0 && S_ISDIR(st.st_mode)) return BN_TESTDATA_DIR;
    fprintf(stderr, "shared test data not found at %s\n", BN_TESTDATA_DIR);
    return NULL;
}

static inline int test_skip_or_fail(const char *why)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "FAIL (CI=true): %s\n", why);
        return 1;
    }
    fprintf(stderr, "SKIP: %s\n", why);
    return 77;
}

/* Normalized mean squared error: sum (a-b)^2 / sum b^2 (b is the reference). */
static inline double test_nmse(const float *a, const float *b, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0 ? num / den : num;
}

/* Reads a whole file into a malloc'd buffer; NULL on failure. */
static inline void *test_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf && size) *size = (size_t)n;
    return buf;
}

/* Reads a whole file as a NUL-terminated string (malloc'd), its length in
 * *n when n is not NULL; NULL on failure. */
static inline char *test_read_text(const char *path, size_t *n)
{
    size_t len = 0;
    char *s = test_read_file(path, &len);
    if (!s) return NULL;
    char *t = realloc(s, len + 1);
    if (!t) {
        free(s);
        return NULL;
    }
    t[len] = '\0';
    if (n) *n = len;
    return t;
}

/* Reads up to max whitespace-separated ids from a text file; -1 if it
 * cannot be opened. */
static inline int test_read_ids(const char *path, int32_t *ids, int max)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    while (n < max && fscanf(f, "%d", &ids[n]) == 1) n++;
    fclose(f);
    return n;
}

/* Index of the largest value, the lowest index on ties. */
static inline uint32_t test_argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return (uint32_t)best;
}

/* Largest minus second largest value. */
static inline float test_top2_margin(const float *x, size_t n)
{
    uint32_t best = test_argmax(x, n);
    float second = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (i != best && x[i] > second) second = x[i];
    return x[best] - second;
}

/* With an F16 cache the argmax may flip where the reference itself is a
 * near-tie (the golden README measures 95% agreement); rows whose reference
 * margin is below this are exempt from the argmax check, never from NMSE. */
#define TEST_F16_ARGMAX_MIN_MARGIN 0.05f

#endif
