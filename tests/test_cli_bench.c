/*
 * `bitnet-vk bench` as scripts use it: the --json array has one object per
 * device x thread count x test with exactly the documented keys and sane
 * values, the table has one row per result, and usage errors exit 1 with one
 * line. Speed itself is never checked here (bench/ records it).
 */
#include <stdint.h>
#include <sys/wait.h>

#include "synth_model.h"
#include "test_util.h"

static char model[1024];

/* Runs the CLI with args; stdout (malloc'd, NUL-terminated) into *out. */
static int run(const char *args, char **out, int *stderr_lines)
{
    char cmd[4096], outf[1100], errf[1100];
    snprintf(outf, sizeof outf, "%s/test_cli_bench.out", BN_BINARY_DIR);
    snprintf(errf, sizeof errf, "%s/test_cli_bench.err", BN_BINARY_DIR);
    snprintf(cmd, sizeof cmd, "timeout 120 '%s' %s >'%s' 2>'%s'", BN_CLI, args, outf, errf);
    int st = system(cmd);
    size_t n = 0;
    char *o = test_read_file(outf, &n);
    if (o) {
        char *z = realloc(o, n + 1);
        if (z) z[n] = '\0';
        o = z;
    }
    *out = o;
    size_t en = 0;
    char *e = test_read_file(errf, &en);
    *stderr_lines = 0;
    for (size_t i = 0; e && i < en; i++) *stderr_lines += e[i] == '\n';
    free(e);
    remove(outf);
    remove(errf);
    return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

static void test_json(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 16 -n 4 -r 2 -t 1,2 --json", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --json exit %d", rc);
    if (!out) return;
    const char *s = out;
    while (*s == ' ' || *s == '\n') s++;
    CHECK(*s == '[', "a JSON array");
    CHECK(strchr(out, ']') != NULL, "closed");
    CHECKF(count(out, "{") == 4, "2 thread counts x 2 tests = 4 objects (got %d)", count(out, "{"));
    static const char *keys[] = {"\"device\": \"cpu\"", "\"test\": ", "\"tokens_per_s\": ", "\"stddev\": ",
                                 "\"threads\": "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECKF(count(out, keys[i]) == 4, "key %s in every object", keys[i]);
    CHECK(count(out, "\"test\": \"pp16\"") == 2 && count(out, "\"test\": \"tg4\"") == 2, "pp16 and tg4 per thread count");
    CHECK(count(out, "\"threads\": 1}") == 2 && count(out, "\"threads\": 2}") == 2, "threads 1 and 2");
    /* every tokens_per_s is a positive number */
    int positive = 0;
    for (const char *p = out; (p = strstr(p, "\"tokens_per_s\": ")) != NULL;) {
        p += strlen("\"tokens_per_s\": ");
        positive += strtod(p, NULL) > 0.0;
    }
    CHECK(positive == 4, "positive speeds");
    free(out);
}

static void test_table(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8,16 -n 0 -r 1 -t 1 --head q8 --profile", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench table exit %d", rc);
    if (!out) return;
    CHECK(count(out, "| cpu ") == 2, "one row per test (pp8, pp16; -n 0 runs none)");
    CHECK(strstr(out, "+q8") != NULL, "the int8 head is shown");
    CHECK(lines > 4, "--profile writes the per-op table on stderr");
    free(out);
}

static void test_usage(void)
{
    static const char *bad[] = {"bench", "bench -m '%s' -p x", "bench -m '%s' -t 0", "bench -m '%s' --head q4",
                                "bench -m '%s' --bogus", "bench -m '%s' -r"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[2048], *out = NULL;
        int lines;
        snprintf(args, sizeof args, bad[i], model);
        int rc = run(args, &out, &lines);
        CHECKF(rc == 1 && lines == 1, "'%s': exit %d, %d stderr lines (want 1, 1)", bad[i], rc, lines);
        free(out);
    }
}

int main(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    char err[512];
    snprintf(model, sizeof model, "%s/test_cli_bench.gguf", BN_BINARY_DIR);
    if (bn_synth_write(&p, model, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return test_report("test_cli_bench");
    }
    test_json();
    test_table();
    test_usage();
    remove(model);
    return test_report("test_cli_bench");
}
