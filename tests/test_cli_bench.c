/*
 * `bitnet-vk bench` as scripts use it: the --json array has one object per
 * device x thread count x test with exactly the documented keys and sane
 * values, --csv one line per result with the header's columns, the table
 * one row per result, --plot a well-formed SVG with one bar of positive
 * height per result and the roofline on the tg bars, and usage errors exit
 * 1 with one line. Speed itself is never checked here (bench/ records it).
 */
#define _POSIX_C_SOURCE 200809L /* symlink */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "synth_model.h"
#include "test_cli_util.h"

static char model[1024], scratch[1024];

/* Runs the CLI with args; stdout (malloc'd, NUL-terminated) into *out. */
static int run(const char *args, char **out, int *stderr_lines)
{
    struct cli_result r = cli_run(scratch, "", args, 120);
    *out = r.out;
    *stderr_lines = r.stderr_lines;
    free(r.err);
    return r.exit_code;
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
    snprintf(args, sizeof args, "bench -m '%s' -p 16 -n 4 -r 2 --min-time 0 -t 1,2 --bw-mib 16 --json", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --json exit %d", rc);
    if (!out) return;
    const char *s = out;
    while (*s == ' ' || *s == '\n') s++;
    CHECK(*s == '[', "a JSON array");
    CHECK(strchr(out, ']') != NULL, "closed");
    CHECKF(count(out, "{") == 4, "2 thread counts x 2 tests = 4 objects (got %d)", count(out, "{"));
    static const char *keys[] = {"\"device\": \"cpu\"", "\"device_name\": ", "\"backend\": \"cpu\"",
                                 "\"kernels\": ", "\"test\": ", "\"n_tokens\": ", "\"reps\": 2,",
                                 "\"tokens_per_s\": ", "\"stddev\": ", "\"median\": ", "\"bytes_per_token\": ", "\"gbps\": ",
                                 "\"bandwidth_gbps\": ", "\"roofline_pct\": ", "\"load_s\": ", "\"peak_rss_mib\": ",
                                 "\"device_mib\": ", "\"validation\": \"reference\"", "\"nmse\": ", "\"threads\": "};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        CHECKF(count(out, keys[i]) == 4, "key %s in every object", keys[i]);
    CHECK(count(out, "\"samples_ts\": [") == 4 && count(out, "\"samples_ns\": [") == 4, "the repetitions' samples");
    CHECK(count(out, "\"test\": \"pp16\"") == 2 && count(out, "\"test\": \"tg4\"") == 2, "pp16 and tg4 per thread count");
    CHECK(count(out, "\"threads\": 1,") == 2 && count(out, "\"threads\": 2,") == 2, "threads 1 and 2");
    /* every tokens_per_s is a positive number */
    int positive = 0;
    for (const char *p = out; (p = strstr(p, "\"tokens_per_s\": ")) != NULL;) {
        p += strlen("\"tokens_per_s\": ");
        positive += strtod(p, NULL) > 0.0;
    }
    CHECK(positive == 4, "positive speeds");
    /* the probe ran (bandwidth > 0) and the tg rows know their bytes per token */
    int bw = 0, bytes = 0;
    for (const char *p = out; (p = strstr(p, "\"bandwidth_gbps\": ")) != NULL;) {
        p += strlen("\"bandwidth_gbps\": ");
        bw += strtod(p, NULL) > 0.0;
    }
    for (const char *p = out; (p = strstr(p, "\"bytes_per_token\": ")) != NULL;) {
        p += strlen("\"bytes_per_token\": ");
        bytes += strtod(p, NULL) > 0.0;
    }
    CHECKF(bw == 4, "bandwidth measured for every row (%d of 4)", bw);
    CHECKF(bytes == 2, "bytes per token on the 2 tg rows (%d)", bytes);
    free(out);
}

static void test_csv(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 -t 1 --bw-mib 0 --csv", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --csv exit %d", rc);
    if (!out) return;
    CHECK(strncmp(out, "device,device_name,", 19) == 0, "the header first");
    CHECKF(count(out, "\n") == 3, "header + 2 results (%d lines)", count(out, "\n"));
    /* every line has the header's number of fields (no field holds a comma here) */
    int fields[3] = {0}, line = 0;
    for (const char *p = out; *p && line < 3; p++) {
        if (*p == ',') fields[line]++;
        if (*p == '\n') line++;
    }
    CHECKF(fields[0] == fields[1] && fields[1] == fields[2] && fields[0] == 19, "20 fields per line (%d %d %d commas)",
           fields[0], fields[1], fields[2]);
    CHECK(strstr(out, "\"pp8\"") && strstr(out, "\"tg2\""), "pp8 and tg2 rows");
    free(out);
}

/* Whether the tags of an XML document balance (no attribute holds '<' or '>'). */
static bool xml_balanced(const char *s)
{
    char stack[64][32];
    int depth = 0;
    for (const char *p = strchr(s, '<'); p; p = strchr(p + 1, '<')) {
        if (p[1] == '?' || p[1] == '!') continue;
        const char *end = strchr(p, '>');
        if (!end) return false;
        const bool closing = p[1] == '/', empty = end[-1] == '/';
        const char *name = p + 1 + closing;
        size_t len = strcspn(name, " />\n");
        if (len == 0 || len >= sizeof stack[0]) return false;
        if (closing) {
            if (depth == 0 || strncmp(stack[depth - 1], name, len) != 0 || stack[depth - 1][len] != '\0') return false;
            depth--;
        } else if (!empty) {
            if (depth == 64) return false;
            memcpy(stack[depth], name, len);
            stack[depth++][len] = '\0';
        }
    }
    return depth == 0;
}

static void test_plot(void)
{
    char args[4096], svg[1100], *out = NULL;
    int lines;
    snprintf(svg, sizeof svg, "%s/test_cli_bench.svg", BN_BINARY_DIR);
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2,4 -r 2 --min-time 0 -t 1 --bw-mib 16 --plot '%s'", model, svg);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --plot exit %d", rc);
    free(out);
    size_t n = 0;
    char *s = test_read_text(svg, &n);
    CHECK(s != NULL, "the SVG was written");
    if (!s) return;
    CHECK(strstr(s, "<svg ") != NULL && strstr(s, "</svg>") != NULL, "an svg element");
    CHECK(xml_balanced(s), "well-formed: the tags balance");
    int bars = 0;
    for (const char *p = s; (p = strstr(p, "<rect class=\"bar\"")) != NULL; p++) {
        const char *h = strstr(p, "height=\"");
        bars += h && strtod(h + 8, NULL) > 0.0;
    }
    CHECKF(bars == 3, "3 bars of positive height for pp8, tg2, tg4 (%d)", bars);
    CHECKF(count(s, "class=\"roofline\"") == 2, "the roofline on both tg bars (%d)", count(s, "class=\"roofline\""));
    free(s);
    remove(svg);

    /* The title holds the model's file name, whatever its bytes: markup is
     * escaped, a control byte and a byte that is not UTF-8 become '?', and
     * well-formed UTF-8 stays, so the file is still XML a browser draws. */
    char odd[1100];
    snprintf(odd, sizeof odd, "%s/test_cli_bench m<&\x01\xe8\xc3\xa8.gguf", BN_BINARY_DIR);
    remove(odd);
    CHECKF(symlink(model, odd) == 0, "symlink %s", odd);
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 0 -r 1 --min-time 0 -t 1 --bw-mib 0 --plot '%s'", odd, svg);
    rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --plot, an odd model name: exit %d", rc);
    free(out);
    remove(odd);
    s = test_read_text(svg, &n);
    CHECK(s != NULL, "the SVG was written");
    if (!s) return;
    CHECKF(strstr(s, "bench: test_cli_bench m&lt;&amp;??\xc3\xa8.gguf</text>") != NULL, "the title escaped: %.300s", s);
    bool clean = true;
    for (size_t i = 0; i < n; i++) clean &= (unsigned char)s[i] >= 0x20 || s[i] == '\n' || s[i] == '\t';
    CHECK(clean, "no control bytes in the SVG");
    CHECK(xml_balanced(s), "well-formed: the tags balance");
    free(s);
    remove(svg);

    /* Every series has a colour of its own, past the ten of the palette:
     * twelve thread counts, twelve legend entries, twelve fills. */
    snprintf(args, sizeof args,
             "bench -m '%s' -p 8 -n 0 -r 1 --min-time 0 -t 1,2,3,4,5,6,7,8,9,10,11,12 --bw-mib 0 --plot '%s'", model, svg);
    rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --plot, 12 thread counts: exit %d", rc);
    free(out);
    s = test_read_text(svg, &n);
    CHECK(s != NULL, "the SVG was written");
    if (!s) return;
    char fills[16][40];
    int n_fills = 0, distinct = 0;
    const char *legend = "width=\"12\" height=\"12\" fill=\"";
    for (const char *p = s; n_fills < 16 && (p = strstr(p, legend)) != NULL; p += strlen(legend)) {
        const char *v = p + strlen(legend), *e = strchr(v, '"');
        snprintf(fills[n_fills], sizeof fills[0], "%.*s", e ? (int)(e - v) : 0, v);
        bool seen = false;
        for (int i = 0; i < n_fills; i++) seen |= strcmp(fills[i], fills[n_fills]) == 0;
        distinct += !seen;
        n_fills++;
    }
    CHECKF(n_fills == 12 && distinct == 12, "12 legend entries in 12 colours (%d entries, %d colours)", n_fills,
           distinct);
    free(s);
    remove(svg);

    /* A path that cannot be written fails before the run: one line, no table. */
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 -t 1 --bw-mib 0 --plot '%s/no/such/dir/p.svg'", model,
             BN_BINARY_DIR);
    rc = run(args, &out, &lines);
    CHECKF(rc == 3 && lines == 1 && out && out[0] == '\0', "unwritable --plot: exit %d, %d stderr lines, stdout '%s'",
           rc, lines, out ? out : "");
    free(out);
}

static void test_table(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8,16 -n 0 -r 1 --min-time 0 -t 1 --head q8 --bw-mib 0 --profile", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench table exit %d", rc);
    if (!out) return;
    CHECK(count(out, "\n| cpu ") == 2, "one row per test (pp8, pp16; -n 0 runs none)");
    CHECK(strstr(out, "+q8") != NULL, "the int8 head is shown");
    CHECK(lines > 4, "--profile writes the per-op table on stderr");
    free(out);
}

/* The number after "key": in the n-th object (0-based) of a JSON array, or -1. */
static double json_number(const char *s, const char *key, int nth)
{
    for (const char *p = s; (p = strstr(p, key)) != NULL; p += strlen(key))
        if (nth-- == 0) return strtod(p + strlen(key), NULL);
    return -1.0;
}

/* --min-time: rounds go on past -r until they took that long, every test
 * once per round, so every test of a device has the same count; each
 * repetition is in the samples. */
static void test_min_time(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 1 -t 1 --bw-mib 0 --json", model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --min-time exit %d", rc);
    if (!out) return;
    const double pp = json_number(out, "\"reps\": ", 0), tg = json_number(out, "\"reps\": ", 1);
    CHECKF(pp >= 3 && pp == tg, "a second of rounds of a tiny model: more than -r 1, the same for pp8 and tg2 (%g, %g)",
           pp, tg);
    int samples = 0;
    const char *p = strstr(out, "\"samples_ts\": [");
    for (; p && *p != ']'; p++) samples += *p == ',';
    CHECKF(p && samples + 1 == (int)pp, "one sample per repetition (%d of %g)", samples + 1, pp);
    free(out);
}

static void test_usage(void)
{
    static const char *bad[] = {"bench", "bench -m '%s' -p x", "bench -m '%s' -t 0", "bench -m '%s' --head q4",
                                "bench -m '%s' --bogus", "bench -m '%s' -r", "bench -m '%s' --json --csv",
                                "bench -m '%s' --bw-mib x", "bench -m '%s' --plot", "bench -m '%s' --max-nmse -1",
                                "bench -m '%s' --min-time x", "bench -m '%s' --min-time -1",
                                /* lists: nothing to run, empty or repeated entries, an unknown device */
                                "bench -m '%s' -p 0 -n 0", "bench -m '%s' -p 8,,16", "bench -m '%s' -t 1,",
                                "bench -m '%s' -n 4,04", "bench -m '%s' --device ''", "bench -m '%s' --device cpu,cpu",
                                "bench -m '%s' --device cpu,bogus"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char args[2048], *out = NULL;
        int lines;
        snprintf(args, sizeof args, bad[i], model);
        int rc = run(args, &out, &lines);
        CHECKF(rc == 1 && lines == 1, "'%s': exit %d, %d stderr lines (want 1, 1)", bad[i], rc, lines);
        free(out);
    }
    /* A device that is not there fails before the CPU is measured:
     * exit 1 (no such number) or 3 (no Vulkan here at all), one line, no
     * table. */
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 --device cpu,vulkan:999", model);
    int rc = run(args, &out, &lines);
    CHECKF((rc == 1 || rc == 3) && lines == 1 && out && out[0] == '\0',
           "--device cpu,vulkan:999: exit %d, %d stderr lines, stdout '%s'", rc, lines, out ? out : "");
    free(out);
}

/* --device auto that runs on the CPU backend (no GPU here, or a build
 * without Vulkan) runs every -t thread count, as --device cpu does. */
static void test_auto_threads(void)
{
    char args[2048], *out = NULL;
    int lines;
    snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 -t 1,2 --bw-mib 0 --device auto --json",
             model);
    int rc = run(args, &out, &lines);
    CHECKF(rc == 0, "bench --device auto exit %d", rc);
    if (!out) return;
    const int cpu_rows = count(out, "\"device\": \"cpu\"");
    if (cpu_rows > 0)
        CHECKF(cpu_rows == 4 && count(out, "\"threads\": 1,") == 2 && count(out, "\"threads\": 2,") == 2,
               "auto on the CPU: pp8 and tg2 at 1 and 2 threads (%d cpu rows)", cpu_rows);
    else
        CHECKF(count(out, "{") == 2, "auto on a GPU: pp8 and tg2 once (%d objects)", count(out, "{"));
    free(out);
}

/* Two names of one device are measured once: "auto" without a GPU is the
 * CPU, and beside "cpu" it adds no rows, before it or after it (a GPU,
 * where there is one, adds its own). */
static void test_aliases(void)
{
    char args[2048], *out = NULL;
    int lines;
    static const char *const lists[] = {"cpu,auto", "auto,cpu"};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "bench -m '%s' -p 8 -n 2 -r 1 --min-time 0 --bw-mib 0 --device %s --json", model,
                 lists[i]);
        int rc = run(args, &out, &lines);
        CHECKF(rc == 0, "bench --device %s exit %d", lists[i], rc);
        if (!out) continue;
        const int cpu_rows = count(out, "\"device\": \"cpu\""), rows = count(out, "{");
        CHECKF(cpu_rows == 2 && (rows == 2 || rows == 4), "%s: the CPU's pp8 and tg2 once (%d cpu rows of %d)",
               lists[i], cpu_rows, rows);
        free(out);
    }
}

int main(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    char err[512];
    snprintf(scratch, sizeof scratch, "%s/test_cli_bench.tmp", BN_BINARY_DIR);
    if (mkdir(scratch, 0755) != 0 && errno != EEXIST) {
        CHECKF(0, "mkdir %s", scratch);
        return test_report("test_cli_bench");
    }
    snprintf(model, sizeof model, "%s/test_cli_bench.gguf", BN_BINARY_DIR);
    if (bn_synth_write(&p, model, err, sizeof err) != BN_OK) {
        CHECKF(0, "%s", err);
        return test_report("test_cli_bench");
    }
    test_json();
    test_csv();
    test_plot();
    test_table();
    test_min_time();
    test_usage();
    test_auto_threads();
    test_aliases();
    remove(model);
    return test_report("test_cli_bench");
}
