/*
 * cli_read.c - reading a whole input file (prompt, text to tokenize) as
 * bytes, verbatim: no newline translation, any content.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cli_read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(1, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (!buf) {
            fclose(f);
            return cli_fail(3, "%s: out of memory", path);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        char *grown = cap <= SIZE_MAX / 2 ? realloc(buf, cap * 2) : NULL;
        if (!grown) free(buf);
        buf = grown;
        cap *= 2;
    }
    const int bad = ferror(f), e = errno; /* "Is a directory", for one */
    fclose(f);
    if (bad) {
        free(buf);
        return cli_fail(1, "%s: cannot read: %s", path, strerror(e));
    }
    *text = buf;
    *len = n;
    return 0;
}
