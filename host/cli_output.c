#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_output.h"

int cli_output_open(struct cli_output *out, const char *path, const char *what)
{
    memset(out, 0, sizeof *out);
    out->path = path;
    out->what = what;
    if (strcmp(path, "-") == 0) {
        out->f = stdout;
        out->is_stdout = true;
        return 0;
    }
    struct stat st;
    const bool in_place = stat(path, &st) == 0 && !S_ISREG(st.st_mode);
    if (!in_place && (size_t)snprintf(out->tmp, sizeof out->tmp, "%s.tmp", path) >= sizeof out->tmp) {
        out->tmp[0] = '\0';
        return cli_fail(1, "%s %s: path too long", what, path);
    }
    out->f = fopen(in_place ? path : out->tmp, "wb");
    if (!out->f) {
        const int e = errno;
        out->tmp[0] = '\0';
        return cli_fail(3, "%s %s: cannot write: %s", what, path, strerror(e));
    }
    return 0;
}

int cli_output_commit(struct cli_output *out)
{
    if (!out->f) return cli_fail(3, "%s %s: not open", out->what, out->path);
    /* An earlier write may have failed; fclose reports the final flush,
     * where a full disk often shows up. */
    const bool write_failed = ferror(out->f) != 0;
    const int closed = out->is_stdout ? fflush(out->f) : fclose(out->f);
    int e = errno;
    out->f = NULL;
    bool ok = !write_failed && closed == 0;
    if (ok && out->tmp[0]) {
        ok = rename(out->tmp, out->path) == 0;
        e = errno;
    }
    if (!ok) {
        cli_output_abort(out);
        return cli_fail(3, "%s %s: write failed: %s", out->what, out->path, write_failed ? "an I/O error" : strerror(e));
    }
    out->tmp[0] = '\0';
    return 0;
}

void cli_output_abort(struct cli_output *out)
{
    if (out->f && !out->is_stdout) fclose(out->f);
    out->f = NULL;
    if (out->tmp[0]) remove(out->tmp);
    out->tmp[0] = '\0';
}
