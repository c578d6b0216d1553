/*
 * test_cli_util.h - running the bitnet-vk binary from a test: exit code,
 * stdout and stderr, with `timeout` turning a hang into a failure.
 *
 *     struct cli_result r = cli_run(dir, "BN_VK_FAIL_SUBMIT=1", "generate -m M ...", 300);
 *     CHECK(r.exit_code == 3 && r.stderr_lines == 1, "...");
 *     cli_result_free(&r);
 *
 * dir is a scratch directory for the two output files; BN_CLI is the binary
 * (a compile definition of every test).
 */
#ifndef BN_TEST_CLI_UTIL_H
#define BN_TEST_CLI_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "test_util.h"

struct cli_result {
    int exit_code; /* -1 if killed by a signal */
    int stderr_lines;
    char *out, *err; /* malloc'd, NUL-terminated */
};

/* The file as a NUL-terminated string; "" when it cannot be read. */
static inline char *cli_read_text(const char *path)
{
    char *s = test_read_text(path, NULL);
    return s ? s : calloc(1, 1);
}

/* Runs "ENV cli ARGS" through the shell with stdout to the file stdout_to
 * (NULL: dir/stdout.txt, read back into r.out; else r.out is ""), killed
 * after timeout_s seconds. */
static inline struct cli_result cli_run_to(const char *dir, const char *env, const char *args, const char *stdout_to,
                                           int timeout_s)
{
    struct cli_result r = {0};
    char cmd[4096], errf[1100], outf[1100];
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    snprintf(outf, sizeof outf, "%s/stdout.txt", dir);
    const int len = snprintf(cmd, sizeof cmd, "%s timeout %d '%s' %s >'%s' 2>'%s'", env, timeout_s, BN_CLI, args,
                             stdout_to ? stdout_to : outf, errf);
    CHECKF(len > 0 && (size_t)len < sizeof cmd, "command line fits (%d bytes)", len);
    int st = len > 0 && (size_t)len < sizeof cmd ? system(cmd) : -1;
    r.exit_code = (st == -1 || !WIFEXITED(st)) ? -1 : WEXITSTATUS(st);
    r.out = stdout_to ? calloc(1, 1) : cli_read_text(outf);
    r.err = cli_read_text(errf);
    for (const char *p = r.err; p && *p; p++) r.stderr_lines += *p == '\n';
    return r;
}

/* Runs "ENV cli ARGS" through the shell, killed after timeout_s seconds. */
static inline struct cli_result cli_run(const char *dir, const char *env, const char *args, int timeout_s)
{
    return cli_run_to(dir, env, args, NULL, timeout_s);
}

static inline void cli_result_free(struct cli_result *r)
{
    free(r->out);
    free(r->err);
}

#endif
