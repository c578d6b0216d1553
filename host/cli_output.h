/*
 * cli_output.h - a file the command line writes (logits -o, bench --plot):
 * all of it or nothing. A regular file, or a new one, is written under a
 * temporary name beside it and renamed over it once complete, so a failure
 * leaves no partial file and an old file stays whole. Anything else already
 * at the path (/dev/null, a pipe, a terminal) is written in place and never
 * replaced: renaming over /dev/null would turn it into a plain file. The
 * path "-" is standard output.
 */
#ifndef BN_CLI_OUTPUT_H
#define BN_CLI_OUTPUT_H

#include <stdbool.h>
#include <stdio.h>

struct cli_output {
    FILE *f;
    const char *path;
    const char *what; /* the flag, for messages */
    char tmp[4096];   /* "" when written in place */
    bool is_stdout;   /* "-": never closed here  */
};

/* Opens path for writing. Returns 0, or an exit code after printing why
 * (naming `what`, the flag). */
int cli_output_open(struct cli_output *out, const char *path, const char *what);

/* Closes, checks that every write reached the file, and renames the
 * temporary file over path. Returns 0, or an exit code after printing why
 * (the temporary file is removed). */
int cli_output_commit(struct cli_output *out);

/* Gives up: closes and removes the temporary file. Safe on a zeroed struct
 * and after commit. */
void cli_output_abort(struct cli_output *out);

#endif
