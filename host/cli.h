/*
 * cli.h - the bitnet-vk command line: subcommands and the small helpers they
 * share. Only host/ prints to the user or exits; everything below returns
 * statuses. Exit codes: 0 ok, 1 usage, 2 bad model file, 3 device/runtime.
 */
#ifndef BN_CLI_H
#define BN_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "status.h"

int cli_generate(int argc, char **argv);
int cli_logits(int argc, char **argv);
int cli_info(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_perplexity(int argc, char **argv);
int cli_tokenize(int argc, char **argv);
int cli_devices(int argc, char **argv);

/* Prints "bitnet-vk: <message>" on stderr and returns code. */
int cli_fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Strict number parsing: the whole string, within [min, max]; on failure a
 * usage message naming the flag is printed and false returned. */
bool cli_parse_long(const char *flag, const char *s, long min, long max, long *out);
bool cli_parse_u64(const char *flag, const char *s, uint64_t *out);
bool cli_parse_float(const char *flag, const char *s, float min, float max, float *out);

/* Parses "1 2 3" (spaces, commas or tabs between ids) into a malloc'd array.
 * Returns false with a usage message on a bad id or an empty list. */
bool cli_parse_tokens(const char *s, int32_t **out, uint32_t *n);

/* Value of the flag at argv[*i] (advancing *i), or NULL after printing a
 * usage message when it is missing. */
const char *cli_flag_value(int argc, char **argv, int *i);

/* Reads a whole file, bytes verbatim, into a malloc'd buffer. Returns 0,
 * or an exit code after printing the error (1: cannot open or read). */
int cli_read_file(const char *path, char **text, size_t *len);

/* Flushes standard output. False when a write to it has failed (a full
 * disk, or a closed pipe while SIGPIPE is ignored): the caller stops and
 * reports it, since nobody reads what follows. */
bool cli_stdout_flush(void);

/* Seconds on a monotonic clock. */
double cli_now(void);

#endif
