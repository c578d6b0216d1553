#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "bitnet-vk: %s\n", msg);
    return code;
}

bool cli_parse_long(const char *flag, const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
        cli_fail(1, "%s: '%s' is not an integer in [%ld, %ld]", flag, s, min, max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_u64(const char *flag, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (*s == '-') {
        cli_fail(1, "%s: '%s' is not a non-negative integer", flag, s);
        return false;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') {
        cli_fail(1, "%s: '%s' is not a non-negative integer", flag, s);
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

bool cli_parse_float(const char *flag, const char *s, float min, float max, float *out)
{
    char *end;
    errno = 0;
    float v = strtof(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !isfinite(v) || v < min || v > max) {
        cli_fail(1, "%s: '%s' is not a number in [%g, %g]", flag, s, (double)min, (double)max);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_tokens(const char *s, int32_t **out, uint32_t *n)
{
    size_t cap = 16, count = 0;
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) {
        cli_fail(3, "out of memory");
        return false;
    }
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n') p++;
        if (*p == '\0') break;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 0 || v > INT32_MAX ||
            (*end != '\0' && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
            free(ids);
            cli_fail(1, "--tokens: '%.32s' is not a list of non-negative token ids", p);
            return false;
        }
        if (count == cap) {
            int32_t *grown = realloc(ids, 2 * cap * sizeof *ids);
            if (!grown) {
                free(ids);
                cli_fail(3, "out of memory");
                return false;
            }
            ids = grown;
            cap *= 2;
        }
        ids[count++] = (int32_t)v;
        p = end;
    }
    if (count == 0) {
        free(ids);
        cli_fail(1, "--tokens: no token ids given");
        return false;
    }
    *out = ids;
    *n = (uint32_t)count;
    return true;
}

const char *cli_flag_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_fail(1, "%s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

bool cli_stdout_flush(void)
{
    return fflush(stdout) == 0 && !ferror(stdout);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
