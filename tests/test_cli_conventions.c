/*
 * What a llama.cpp or bitnet.cpp user expects of `generate` and friends,
 * through the binary:
 *  - the values llama.cpp gives a meaning: -n 0 (the prompt only), -c 0
 *    (the model's context), --seed -1 (random), -t -1 (the default),
 *    --repeat-last-n -1 (the context);
 *  - a prompt from -f is echoed like one from -p;
 *  - control tokens are not printed unless --special;
 *  - --ignore-eos never picks an end-of-generation token, on every sampling
 *    path (greedy, top-k candidates, full logits), and lavapipe picks the
 *    same greedy tokens as the CPU;
 *  - output that cannot be written (a full disk, a closed pipe with SIGPIPE
 *    ignored) is an error (exit 3, one line) and generation stops;
 *  - in --chat, -p is the system message, a message too long for the
 *    context is skipped, not the end of the chat, and a line of Unicode
 *    white space is no message;
 *  - `info` names the vocabulary, `logits -o -` writes to stdout, -f on a
 *    directory says so, a context past the trained one is warned about, and
 *    a prompt exactly as long as the context still yields one token.
 */
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_cli_util.h"

static char dir[1024], tiny[1100], eos_model[1100], fortunes[1100];

static struct cli_result run_cli(const char *env, const char *args) { return cli_run(dir, env, args, 120); }

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    CHECKF(f != NULL, "cannot write %s", path);
    if (!f) return;
    fputs(s, f);
    fclose(f);
}

/* The models/ directory beside tests/ (__FILE__ is absolute under CMake). */
static bool find_fortunes(void)
{
    const char *slash = strrchr(__FILE__, '/');
    if (!slash) return false;
    snprintf(fortunes, sizeof fortunes, "%.*s/../models/fortunes-4m-i2_s.gguf", (int)(slash - __FILE__), __FILE__);
    struct stat st;
    return stat(fortunes, &st) == 0;
}

/* A copy of the tiny model whose tokenizer.ggml.eos_token_id is `id`: the
 * u32 after the key's name and its type word. */
static bool write_eos_model(uint32_t id)
{
    size_t n = 0;
    unsigned char *g = (unsigned char *)test_read_file(tiny, &n);
    const char *key = "tokenizer.ggml.eos_token_id";
    const size_t klen = strlen(key);
    size_t at = 0;
    for (size_t i = 8; g && i + klen + 8 <= n && !at; i++)
        if (memcmp(g + i, key, klen) == 0 && g[i - 8] == klen) at = i + klen;
    uint32_t type = 0;
    if (at) memcpy(&type, g + at, 4);
    CHECKF(at && type == 4 /* GGUF UINT32 */, "eos_token_id found as a u32 (type %u)", type);
    bool ok = at && type == 4;
    if (ok) {
        memcpy(g + at + 4, &id, 4);
        FILE *f = fopen(eos_model, "wb");
        ok = f && fwrite(g, 1, n, f) == n;
        if (f) ok = fclose(f) == 0 && ok;
    }
    free(g);
    return ok;
}

static int count_id(const char *ids, long id)
{
    int count = 0;
    for (const char *p = ids; *p;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        count += v == id;
        p = end;
    }
    return count;
}

static void llama_values(void)
{
    char args[4096];
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 0 --device cpu", tiny);
    struct cli_result r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strcmp(r.out, "hi\n") == 0 && strstr(r.err, "generation 0 tokens"),
           "-n 0: the prompt only: exit %d, '%s': %s", r.exit_code, r.out, r.err);
    cli_result_free(&r);

    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 8 --temp 0 --ids --device cpu -t 1", tiny);
    struct cli_result ref = run_cli("", args);
    CHECKF(ref.exit_code == 0 && ref.out[0], "reference run: exit %d: %s", ref.exit_code, ref.err);
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 8 --temp 0 --ids --device cpu -c 0 -t -1", tiny);
    r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strcmp(r.out, ref.out) == 0, "-c 0 -t -1: the defaults: exit %d, '%s' vs '%s': %s",
           r.exit_code, r.out, ref.out, r.err);
    cli_result_free(&r);
    cli_result_free(&ref);

    /* --seed -1: a random seed, printed, different run to run. */
    char seed[2][64] = {"", ""};
    for (int i = 0; i < 2; i++) {
        snprintf(args, sizeof args, "generate -m '%s' -p hi -n 2 --seed -1 --device cpu", tiny);
        r = run_cli("", args);
        const char *s = strstr(r.err, "| seed ");
        CHECKF(r.exit_code == 0 && s, "--seed -1: exit %d: %s", r.exit_code, r.err);
        if (s) snprintf(seed[i], sizeof seed[i], "%s", s + 7);
        cli_result_free(&r);
    }
    CHECKF(seed[0][0] && strcmp(seed[0], seed[1]) != 0, "--seed -1 twice: seeds '%s' and '%s' differ", seed[0],
           seed[1]);
}

/* --repeat-last-n -1 is the context (llama.cpp): after --ctx-shift drops
 * old tokens, they are no longer penalized, exactly as with -c's value. */
static void repeat_window(bool have_fortunes)
{
    if (!have_fortunes) return;
    char args[4096];
    const char *common = "-p The -n 150 -c 32 --ctx-shift --temp 0 --repeat-penalty 1.5 --ids --device cpu";
    snprintf(args, sizeof args, "generate -m '%s' %s --repeat-last-n -1", fortunes, common);
    struct cli_result whole = run_cli("", args);
    snprintf(args, sizeof args, "generate -m '%s' %s --repeat-last-n 32", fortunes, common);
    struct cli_result ctx = run_cli("", args);
    CHECKF(whole.exit_code == 0 && ctx.exit_code == 0 && whole.out[0] && strcmp(whole.out, ctx.out) == 0,
           "--repeat-last-n -1 equals -c 32 under --ctx-shift: '%s' vs '%s'", whole.out, ctx.out);
    cli_result_free(&whole);
    cli_result_free(&ctx);
}

static void prompt_echo_and_special(bool have_fortunes)
{
    char args[4096], file[1100];
    snprintf(file, sizeof file, "%s/prompt.txt", dir);
    write_text(file, "The secret of life is");
    const char *m = have_fortunes ? fortunes : tiny;
    snprintf(args, sizeof args, "generate -m '%s' -p 'The secret of life is' -n 8 --temp 0 --device cpu", m);
    struct cli_result p = run_cli("", args);
    snprintf(args, sizeof args, "generate -m '%s' -f '%s' -n 8 --temp 0 --device cpu", m, file);
    struct cli_result f = run_cli("", args);
    CHECKF(p.exit_code == 0 && f.exit_code == 0 && strncmp(f.out, "The secret of life is", 21) == 0 &&
               strcmp(p.out, f.out) == 0,
           "-f echoes its prompt as -p does: '%s' vs '%s'", f.out, p.out);
    cli_result_free(&p);
    cli_result_free(&f);
    if (!have_fortunes) return;

    /* The trained model, sampled hot, now and then picks a control token
     * (<|start_header_id|> and the like): its text is printed only with
     * --special. */
    bool seen = false;
    for (int seed = 1; seed <= 40 && !seen; seed++) {
        const char *common = "--tokens '3067 128 195' -n 150 --temp 3 --top-k 0 --top-p 1 --min-p 0 --device cpu";
        snprintf(args, sizeof args, "generate -m '%s' %s --seed %d --special", fortunes, common, seed);
        struct cli_result sp = run_cli("", args);
        if (!strstr(sp.out, "<|")) {
            cli_result_free(&sp);
            continue;
        }
        seen = true;
        snprintf(args, sizeof args, "generate -m '%s' %s --seed %d", fortunes, common, seed);
        struct cli_result plain = run_cli("", args);
        CHECKF(plain.exit_code == 0 && !strstr(plain.out, "<|") && strlen(plain.out) < strlen(sp.out),
               "seed %d: control tokens only with --special: '%s'", seed, plain.out);
        cli_result_free(&plain);
        cli_result_free(&sp);
    }
    CHECK(seen, "some seed makes the trained model print a control token with --special");
}

/* The tiny model's greedy token made its end-of-generation token. */
static void ignore_eos(void)
{
    char args[4096];
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 1 --temp 0 --ids --device cpu", tiny);
    struct cli_result r = run_cli("", args);
    const long first = strtol(r.out, NULL, 10);
    CHECKF(r.exit_code == 0 && first > 0, "the tiny model's first greedy token: '%s'", r.out);
    cli_result_free(&r);
    if (!write_eos_model((uint32_t)first)) return;

    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 16 --temp 0 --ids --device cpu", eos_model);
    r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strstr(r.err, "generation 1 tokens"), "greedy stops at the new EOS: %s", r.err);
    cli_result_free(&r);

    /* Greedy (top-k on the engine), top-k sampling (candidates), top-k 0
     * and a repetition penalty (full logits): -n tokens, none the EOS. */
    const char *paths[] = {"--temp 0", "--temp 1 --seed 3", "--temp 1 --seed 3 --top-k 0",
                           "--temp 0 --repeat-penalty 1.1"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        snprintf(args, sizeof args, "generate -m '%s' -p hi -n 24 %s --ids --ignore-eos --device cpu", eos_model,
                 paths[i]);
        r = run_cli("", args);
        CHECKF(r.exit_code == 0 && strstr(r.err, "generation 24 tokens") && count_id(r.out, first) == 0,
               "--ignore-eos %s: 24 tokens without %ld: '%s' %s", paths[i], first, r.out, r.err);
        cli_result_free(&r);
    }

#if defined(BN_HAVE_VULKAN)
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 24 --temp 0 --ids --ignore-eos --device cpu", eos_model);
    struct cli_result cpu = run_cli("", args);
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 24 --temp 0 --ids --ignore-eos --device lavapipe",
             eos_model);
    r = run_cli("", args);
    if (r.exit_code == 3 && strstr(r.err, "--device")) {
        printf("no lavapipe (%s): its --ignore-eos check skipped\n", r.err);
        if (getenv("CI") && strcmp(getenv("CI"), "true") == 0) CHECK(0, "lavapipe is available under CI=true");
    } else {
        CHECKF(r.exit_code == 0 && strcmp(r.out, cpu.out) == 0, "--ignore-eos greedy on lavapipe: '%s', CPU '%s': %s",
               r.out, cpu.out, r.err);
    }
    cli_result_free(&r);
    cli_result_free(&cpu);
#endif
}

static void unwritable_output(void)
{
    const char *cmds[] = {"generate -m '%s' -p hi -n 4 --device cpu", "info -m '%s'",
                          "generate -m '%s' -p hi -n 4 --device cpu --ids"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        char args[2048];
        snprintf(args, sizeof args, cmds[i], tiny);
        struct cli_result r = cli_run_to(dir, "", args, "/dev/full", 60);
        CHECKF(r.exit_code == 3 && r.stderr_lines == 1 && strstr(r.err, "cannot write to standard output"),
               "%s >/dev/full: exit %d, one line: %s", args, r.exit_code, r.err);
        cli_result_free(&r);
    }

    /* A reader that goes away while SIGPIPE is ignored: generation stops
     * with an error instead of running to the end of -n. */
    char cmd[4096], rcf[1100];
    snprintf(rcf, sizeof rcf, "%s/rc.txt", dir);
    snprintf(cmd, sizeof cmd,
             "(trap '' PIPE; timeout 100 '%s' generate -m '%s' -p hi -n 200000 -c 64 --ctx-shift --device cpu -t 1 "
             "2>/dev/null; echo $? >'%s') | head -c 1 >/dev/null",
             BN_CLI, tiny, rcf);
    CHECK(system(cmd) != -1, "pipeline ran");
    char *rc = cli_read_text(rcf);
    CHECKF(atoi(rc) == 3, "closed pipe, SIGPIPE ignored: exit 3 (not the timeout's 124): '%s'", rc);
    free(rc);
}

static void chat(bool have_fortunes)
{
    if (!have_fortunes) return;
    char args[4096], in[1100];
    /* -p with --chat is the system message: the same prompt ids. */
    snprintf(in, sizeof in, "%s/chat.txt", dir);
    write_text(in, "hi\n");
    snprintf(args, sizeof args, "generate -m '%s' --chat -p 'Be brief.' -n 2 --temp 0 --verbose-prompt --device cpu <'%s'",
             fortunes, in);
    struct cli_result p = run_cli("", args);
    snprintf(args, sizeof args,
             "generate -m '%s' --chat --system 'Be brief.' -n 2 --temp 0 --verbose-prompt --device cpu <'%s'", fortunes,
             in);
    struct cli_result s = run_cli("", args);
    const char *pp = strstr(p.err, "turn 1 prompt"), *sp = strstr(s.err, "turn 1 prompt");
    CHECKF(p.exit_code == 0 && s.exit_code == 0 && pp && sp && strncmp(pp, sp, strcspn(sp, "\n")) == 0,
           "--chat -p equals --system: %s vs %s", p.err, s.err);
    cli_result_free(&p);
    cli_result_free(&s);

    /* A message past the 256-token context is skipped, a line of an
     * ideographic space is no message, and the next one is answered. */
    FILE *f = fopen(in, "wb");
    CHECK(f != NULL, "chat input written");
    if (!f) return;
    for (int i = 0; i < 1000; i++) fputs("word ", f);
    fputs("\n\xE3\x80\x80\nhi\n", f);
    fclose(f);
    snprintf(args, sizeof args, "generate -m '%s' --chat -n 4 --temp 0 --device cpu <'%s'", fortunes, in);
    struct cli_result r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strstr(r.err, "message skipped") && strstr(r.err, "| 1 turn |"),
           "an over-long message is skipped and the next answered: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
}

static void small_things(void)
{
    char args[4096], out[1100];
    snprintf(args, sizeof args, "info -m '%s'", tiny);
    struct cli_result r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strstr(r.out, "vocabulary:      300 tokens, gpt2"), "info names the vocabulary: %s",
           r.out);
    cli_result_free(&r);

    snprintf(out, sizeof out, "%s/logits.f32", dir);
    snprintf(args, sizeof args, "logits -m '%s' --tokens '1 2 3' --device cpu -o '%s'", tiny, out);
    r = run_cli("", args);
    cli_result_free(&r);
    size_t n_file = 0;
    char *file = test_read_file(out, &n_file);
    char cmd[4096], cmp_path[1100];
    snprintf(cmp_path, sizeof cmp_path, "%s/logits_stdout.f32", dir);
    snprintf(cmd, sizeof cmd, "'%s' logits -m '%s' --tokens '1 2 3' --device cpu -o - >'%s'", BN_CLI, tiny, cmp_path);
    CHECK(system(cmd) == 0, "logits -o - exits 0");
    size_t n_out = 0;
    char *piped = test_read_file(cmp_path, &n_out);
    CHECKF(file && piped && n_file == 300 * 4 && n_out == n_file && memcmp(file, piped, n_file) == 0,
           "logits -o - writes the file's bytes to stdout (%zu vs %zu bytes)", n_out, n_file);
    free(file);
    free(piped);

    snprintf(args, sizeof args, "generate -m '%s' -f '%s' --device cpu", tiny, dir);
    r = run_cli("", args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1 && strstr(r.err, "Is a directory"), "-f DIR: %s", r.err);
    cli_result_free(&r);

    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 2 -c 512 --device cpu", tiny);
    r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strstr(r.err, "warning: the context of 512 tokens is longer than the model was trained "
                                             "on (256)"),
           "-c past the trained context: warned: %s", r.err);
    cli_result_free(&r);
    snprintf(args, sizeof args, "generate -m '%s' -p hi -n 2 -c 256 --device cpu", tiny);
    r = run_cli("", args);
    CHECKF(r.exit_code == 0 && !strstr(r.err, "warning"), "-c at the trained context: no warning: %s", r.err);
    cli_result_free(&r);

    /* Eight prompt tokens in a context of eight: one token, then full. */
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3 4 5 6 7 8' -c 8 -n 4 --temp 0 --ids --device cpu",
             tiny);
    r = run_cli("", args);
    CHECKF(r.exit_code == 0 && strstr(r.err, "generation 1 tokens") && strstr(r.err, "context full (8 tokens)"),
           "a prompt as long as the context: one token: exit %d: %s", r.exit_code, r.err);
    cli_result_free(&r);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3 4 5 6 7 8 9' -c 8 -n 4 --device cpu", tiny);
    r = run_cli("", args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "a prompt longer than the context: exit %d: %s", r.exit_code,
           r.err);
    cli_result_free(&r);
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test_cli_conventions.tmp", BN_BINARY_DIR);
    mkdir(dir, 0755);
    snprintf(tiny, sizeof tiny, "%s/tiny.gguf", dir);
    snprintf(eos_model, sizeof eos_model, "%s/tiny-eos.gguf", dir);
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --preset tiny -o '%s' >/dev/null", BN_MKMODEL, tiny);
    if (system(cmd) != 0) {
        CHECK(0, "bn-mkmodel failed");
        return test_report("test_cli_conventions");
    }
    const bool have_fortunes = find_fortunes();
    CHECK(have_fortunes, "models/fortunes-4m-i2_s.gguf is in the source tree");
    llama_values();
    prompt_echo_and_special(have_fortunes);
    repeat_window(have_fortunes);
    ignore_eos();
    unwritable_output();
    chat(have_fortunes);
    small_things();
    return test_report("test_cli_conventions");
}
