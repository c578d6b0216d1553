#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

const char *bn_status_name(enum bn_status s)
{
    switch (s) {
    case BN_OK: return "ok";
    case BN_ERR_USAGE: return "usage error";
    case BN_ERR_MODEL: return "bad model file";
    case BN_ERR_DEVICE: return "device failure";
    case BN_ERR_NOMEM: return "out of memory";
    case BN_ERR_IO: return "i/o error";
    }
    return "unknown status";
}

int bn_status_exit_code(enum bn_status s)
{
    switch (s) {
    case BN_OK: return 0;
    case BN_ERR_USAGE: return 1;
    case BN_ERR_MODEL: return 2;
    case BN_ERR_IO: return 2; /* the model (or input) file could not be read */
    case BN_ERR_DEVICE:
    case BN_ERR_NOMEM: return 3;
    }
    return 3;
}

enum bn_status bn_errf(char *err, size_t len, enum bn_status st, const char *fmt, ...)
{
    if (err == NULL || len == 0) return st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    for (char *p = err; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return st;
}

void bn_assert_fail(const char *file, int line, const char *expr)
{
    fprintf(stderr, "%s:%d: assertion failed: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}
