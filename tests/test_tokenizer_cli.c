/*
 * test_tokenizer_cli.c - `bitnet-vk tokenize`: ids on one line, BOS and
 * special-token flags, -f reading bytes verbatim (tabs, newlines, invalid
 * UTF-8), and one-line errors with the CLI's exit codes (1 usage, 2 bad
 * model file).
 */
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf.h"
#include "test_util.h"
#include "tokenizer.h"

static char dir[64];

struct result {
    int code;
    char *out; /* stdout, NUL-terminated */
    size_t out_n;
    int err_lines;
    char err[512];
};

static struct result run(const char *args)
{
    struct result r = {0};
    char cmd[4096], outf[128], errf[128];
    snprintf(outf, sizeof outf, "%s/out.txt", dir);
    snprintf(errf, sizeof errf, "%s/err.txt", dir);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' tokenize %s >'%s' 2>'%s'", BN_CLI, args, outf, errf);
    int st = system(cmd);
    r.code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    size_t n = 0;
    char *o = test_read_file(outf, &n);
    r.out = malloc(n + 1);
    if (r.out) {
        if (o && n) memcpy(r.out, o, n);
        r.out[n] = '\0';
        r.out_n = n;
    }
    free(o);
    char *e = test_read_file(errf, &n);
    for (size_t i = 0; e && i < n; i++) r.err_lines += e[i] == '\n';
    if (e) snprintf(r.err, sizeof r.err, "%.*s", (int)(n < 500 ? n : 500), e);
    free(e);
    return r;
}

static bool out_is(const struct result *r, const char *want)
{
    return r->code == 0 && r->out && strcmp(r->out, want) == 0 && r->err_lines == 0;
}

/* The ids line for text by the library, for comparison. */
static void lib_line(const bn_tokenizer *tk, const char *text, size_t len, bool bos, bool special, char *line,
                     size_t cap)
{
    int32_t *ids = NULL;
    size_t n = 0, k = 0;
    line[0] = '\0';
    if (bn_tokenizer_encode(tk, text, len, bos, special, &ids, &n, NULL, 0) != BN_OK) return;
    for (size_t i = 0; i < n && k + 16 < cap; i++) k += (size_t)snprintf(line + k, cap - k, i ? " %d" : "%d", ids[i]);
    snprintf(line + k, cap - k, "\n");
    free(ids);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void test_llama3(const char *vocabdir)
{
    char model[1024], args[2048], err[512];
    snprintf(model, sizeof model, "%s/ggml-vocab-llama-bpe.gguf", vocabdir);
    struct result r;

    snprintf(args, sizeof args, "-m '%s' -p 'Hello world'", model);
    r = run(args);
    CHECKF(out_is(&r, "128000 9906 1917\n"), "BOS + 'Hello world' on one line: [%s] %s", r.out, r.err);
    free(r.out);
    snprintf(args, sizeof args, "-m '%s' -p 'Hello world' --no-bos", model);
    r = run(args);
    CHECKF(out_is(&r, "9906 1917\n"), "--no-bos: [%s]", r.out);
    free(r.out);
    snprintf(args, sizeof args, "--no-bos -m '%s' -p 'Hi<|eot_id|>'", model);
    r = run(args);
    CHECKF(out_is(&r, "13347 128009\n"), "control tokens parsed by default: [%s]", r.out);
    free(r.out);
    snprintf(args, sizeof args, "-m '%s' --no-special --no-bos -p '<|eot_id|>'", model);
    r = run(args);
    CHECKF(r.code == 0 && r.out && !strstr(r.out, "128009") && strchr(r.out, ' '),
           "--no-special: the text stays text: [%s]", r.out);
    free(r.out);
    snprintf(args, sizeof args, "-m '%s' -p ''", model);
    r = run(args);
    CHECKF(out_is(&r, "128000\n"), "empty text: BOS only: [%s]", r.out);
    free(r.out);
    snprintf(args, sizeof args, "-m '%s' -p '' --no-bos", model);
    r = run(args);
    CHECKF(out_is(&r, "\n"), "empty text without BOS: an empty line: [%s]", r.out);
    free(r.out);

    /* -f: the bytes exactly, including what a shell or a text reader would
     * change: CR LF, tabs, a NUL, invalid UTF-8, no final newline. */
    static const char bytes[] = "line one\r\n\tindented \xFF\xC3 broken\x00nul\n\n  end";
    const size_t nb = sizeof bytes - 1;
    char path[128];
    snprintf(path, sizeof path, "%s/input.txt", dir);
    write_file(path, bytes, nb);
    bn_gguf *g = NULL;
    bn_tokenizer *tk = NULL;
    if (bn_gguf_open(model, &g, err, sizeof err) == BN_OK && bn_tokenizer_create(g, &tk, err, sizeof err) == BN_OK) {
        char want[8192];
        lib_line(tk, bytes, nb, true, true, want, sizeof want);
        snprintf(args, sizeof args, "-m '%s' -f '%s'", model, path);
        r = run(args);
        CHECKF(out_is(&r, want), "-f reads the bytes verbatim: [%s] want [%s]", r.out, want);
        /* And the ids decode back to those bytes as llama.cpp reads them:
         * each invalid byte (FF, and C3 before a space) as U+FFFD. */
        static const char read_as[] = "line one\r\n\tindented \xEF\xBF\xBD\xEF\xBF\xBD broken\x00nul\n\n  end";
        const size_t nr = sizeof read_as - 1;
        size_t k = 0;
        char dec[256];
        const char *p = r.out ? r.out : "";
        bool first = true;
        while (*p && *p != '\n') {
            char *end;
            long id = strtol(p, &end, 10);
            if (end == p) break;
            if (!first || id != bn_tokenizer_bos(tk)) {
                size_t m = bn_tokenizer_piece(tk, (int32_t)id, dec + k, sizeof dec - k);
                k += m;
            }
            first = false;
            p = end;
        }
        CHECK(k == nr && memcmp(dec, read_as, nr) == 0,
              "the ids decode back to the file's bytes, as llama.cpp reads them");
        free(r.out);
    } else {
        CHECKF(0, "llama-bpe loads: %s", err);
    }
    bn_tokenizer_destroy(tk);
    bn_gguf_close(g);
    remove(path);
}

static void test_spm(const char *vocabdir)
{
    char args[2048];
    snprintf(args, sizeof args, "-m '%s/ggml-vocab-llama-spm.gguf' -p 'Hello'", vocabdir);
    struct result r = run(args);
    CHECKF(out_is(&r, "1 15043\n"), "SentencePiece: BOS + '\\xe2\\x96\\x81Hello': [%s]", r.out);
    free(r.out);
}

static void expect_error(const char *args, int code, const char *what)
{
    struct result r = run(args);
    CHECKF(r.code == code && r.err_lines == 1 && r.out_n == 0 && strncmp(r.err, "bitnet-vk: ", 11) == 0,
           "%s: exit %d (want %d), %d stderr lines, %zu stdout bytes: %s", what, r.code, code, r.err_lines, r.out_n,
           r.err);
    free(r.out);
}

static void test_errors(const char *vocabdir)
{
    char args[2048], path[128];
    snprintf(args, sizeof args, "-p hi");
    expect_error(args, 1, "no -m");
    snprintf(args, sizeof args, "-m '%s/ggml-vocab-gpt-2.gguf'", vocabdir);
    expect_error(args, 1, "no text");
    snprintf(args, sizeof args, "-m '%s/ggml-vocab-gpt-2.gguf' -p a -f b", vocabdir);
    expect_error(args, 1, "both -p and -f");
    snprintf(args, sizeof args, "-m '%s/ggml-vocab-gpt-2.gguf' -f '%s/missing.txt'", vocabdir, dir);
    expect_error(args, 1, "missing text file");
    snprintf(args, sizeof args, "-m '%s/ggml-vocab-gpt-2.gguf' -p a --bogus", vocabdir);
    expect_error(args, 1, "unknown option");
    snprintf(args, sizeof args, "-m '%s/missing.gguf' -p a", dir);
    expect_error(args, 2, "missing model");
    snprintf(path, sizeof path, "%s/junk.gguf", dir);
    write_file(path, "GGUF\x03\x00\x00\x00junk", 12);
    snprintf(args, sizeof args, "-m '%s' -p a", path);
    expect_error(args, 2, "broken model");
    remove(path);
    struct result r = run("--help");
    CHECK(r.code == 0 && r.out && strstr(r.out, "--no-special"), "--help");
    free(r.out);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/bn-tokenize-XXXXXX");
    if (!mkdtemp(dir)) {
        CHECK(0, "temporary directory");
        return test_report("test_tokenizer_cli");
    }
    const char *td = test_testdata();
    if (td) {
        char vocabdir[1024];
        snprintf(vocabdir, sizeof vocabdir, "%s/vocab", td);
        test_llama3(vocabdir);
        test_spm(vocabdir);
        test_errors(vocabdir);
    }
    char f[128];
    snprintf(f, sizeof f, "%s/out.txt", dir);
    remove(f);
    snprintf(f, sizeof f, "%s/err.txt", dir);
    remove(f);
    rmdir(dir);
    if (!td) {
        test_report("test_tokenizer_cli");
        return test_skip_or_fail("the vocabularies are in shared/testdata");
    }
    return test_report("test_tokenizer_cli");
}
