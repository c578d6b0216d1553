/*
 * status.h - error channel shared by every runtime module.
 *
 * Library code never prints and never exits. A function that can fail because
 * of the user, the file or the machine returns an enum bn_status and writes one
 * line into a caller-provided buffer, naming the file, the field and what was
 * expected:
 *
 *     char err[256];
 *     if (bn_model_open(path, &m, err, sizeof err) != BN_OK)
 *         fprintf(stderr, "bitnet-vk: %s\n", err);
 *
 * Broken invariants (bugs in our own code) go to BN_ASSERT instead.
 */
#ifndef BN_STATUS_H
#define BN_STATUS_H

#include <stddef.h>

enum bn_status {
    BN_OK = 0,
    BN_ERR_USAGE = 1,  /* bad argument from the caller                  */
    BN_ERR_MODEL = 2,  /* bad or unsupported model file                 */
    BN_ERR_DEVICE = 3, /* device or runtime failure                     */
    BN_ERR_NOMEM = 4,  /* out of host memory                            */
    BN_ERR_IO = 5,     /* a file could not be opened, read or written   */
};

/* Short name of a status, for messages ("bad model file"). */
const char *bn_status_name(enum bn_status s);

/* Process exit code for a status, per the CLI contract: 0 ok, 1 usage,
 * 2 bad model file, 3 device or runtime failure. */
int bn_status_exit_code(enum bn_status s);

/* printf into err (if err != NULL and len > 0); always NUL-terminates.
 * Newlines in the formatted text are replaced by spaces, so a message built
 * from file data stays one line. Returns st, so callers can write
 * `return bn_errf(err, len, BN_ERR_MODEL, "...")`. */
enum bn_status bn_errf(char *err, size_t len, enum bn_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Aborts with file:line:expression. For bugs only, never for bad input. */
#define BN_ASSERT(x)                                                        \
    do {                                                                    \
        if (!(x)) bn_assert_fail(__FILE__, __LINE__, #x);                   \
    } while (0)

#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void bn_assert_fail(const char *file, int line, const char *expr);

#endif
