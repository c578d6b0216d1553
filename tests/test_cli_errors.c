/*
 * The command line on bad input: hostile model files give exit 2 and exactly
 * one line on stderr (never a crash, hang or partial output), usage errors
 * exit 1, and a failed write leaves no partial output file.
 */
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf_writer.h"
#include "tensor_types.h"
#include "synth_model.h"
#include "test_util.h"

static char dir[1024];

struct result {
    int exit_code; /* -1 if killed by a signal */
    int stderr_lines;
    size_t stdout_bytes;
    char first_line[512];
};

/* Runs the CLI with a shell command line, capturing stderr and stdout size.
 * `timeout` turns a hang into a failure instead of a stuck test. */
static struct result run_cli(const char *args)
{
    struct result r = {0};
    char cmd[4096], errf[1100], outf[1100];
    snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
    snprintf(outf, sizeof outf, "%s/stdout.txt", dir);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s >'%s' 2>'%s'", BN_CLI, args, outf, errf);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st)) r.exit_code = -1;
    else r.exit_code = WEXITSTATUS(st);
    size_t n = 0;
    char *e = test_read_file(errf, &n);
    for (size_t i = 0; e && i < n; i++)
        if (e[i] == '\n') r.stderr_lines++;
    if (e && n > 0 && e[n - 1] != '\n') r.stderr_lines++;
    if (e) {
        size_t k = 0;
        while (k < n && k < sizeof r.first_line - 1 && e[k] != '\n') {
            r.first_line[k] = e[k];
            k++;
        }
        r.first_line[k] = '\0';
    }
    free(e);
    free(test_read_file(outf, &r.stdout_bytes));
    return r;
}

static void write_bytes(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

/* A hostile file must give exit 2, one line on stderr naming the file, and
 * nothing on stdout, for both `info` and `generate`. */
static void expect_bad_model(const char *what, const uint8_t *data, size_t n)
{
    char path[1100], args[4096];
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    write_bytes(path, data, n);
    const char *cmds[] = {"info -m '%s'", "generate -m '%s' --tokens '1 2' -n 2 --temp 0"};
    for (int c = 0; c < 2; c++) {
        snprintf(args, sizeof args, cmds[c], path);
        struct result r = run_cli(args);
        CHECKF(r.exit_code == 2 && r.stderr_lines == 1 && r.stdout_bytes == 0 && strstr(r.first_line, "bad.gguf"),
               "%s (%s): exit %d, %d stderr lines, %zu stdout bytes: %s", what, c ? "generate" : "info", r.exit_code,
               r.stderr_lines, r.stdout_bytes, r.first_line);
    }
}

static uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Offsets of the fields of a valid file, found by walking it. */
struct layout {
    size_t kv[64];      /* offset of each key's length field    */
    size_t tensor[64];  /* offset of each tensor's name length  */
    size_t n_kv, n_tensors, end;
};

static size_t skip_value(const uint8_t *d, size_t o, uint32_t type)
{
    static const size_t sizes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    if (type == 8) return o + 8 + get_u64(d + o);
    if (type == 9) {
        uint32_t et = get_u32(d + o);
        uint64_t n = get_u64(d + o + 4);
        o += 12;
        for (uint64_t i = 0; i < n; i++) o = skip_value(d, o, et);
        return o;
    }
    return o + sizes[type];
}

static struct layout walk(const uint8_t *d)
{
    struct layout l = {0};
    l.n_tensors = get_u64(d + 8);
    l.n_kv = get_u64(d + 16);
    size_t o = 24;
    for (size_t i = 0; i < l.n_kv; i++) {
        if (i < 64) l.kv[i] = o;
        o += 8 + get_u64(d + o);
        uint32_t t = get_u32(d + o);
        o = skip_value(d, o + 4, t);
    }
    for (size_t i = 0; i < l.n_tensors; i++) {
        if (i < 64) l.tensor[i] = o;
        o += 8 + get_u64(d + o);
        uint32_t nd = get_u32(d + o);
        o += 4 + 8 * (size_t)nd + 4 + 8;
    }
    l.end = o;
    return l;
}

/* Offset of the value of key index i (just past its type field). */
static size_t kv_value(const uint8_t *d, const struct layout *l, size_t i)
{
    return l->kv[i] + 8 + get_u64(d + l->kv[i]) + 4;
}

static void hostile_files(const uint8_t *good, size_t n)
{
    uint8_t *d = malloc(n);
    struct layout l = walk(good);
    char what[128];

    /* Truncated at many points: inside the header, the tensor table, the data. */
    const size_t cuts[] = {0, 3, 4, 7, 8, 15, 23, 24, 30, l.kv[1], l.kv[5] + 3, l.tensor[0], l.tensor[0] + 9,
                           l.tensor[3] + 20, l.end - 1, l.end + 1, n / 2, n - 33, n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(what, sizeof what, "truncated at %zu", cuts[i]);
        expect_bad_model(what, good, cuts[i]);
    }

    memcpy(d, good, n);
    put_u64(d + 8, (uint64_t)1 << 62);
    expect_bad_model("tensor count 2^62", d, n);

    memcpy(d, good, n);
    put_u64(d + 16, UINT64_MAX);
    expect_bad_model("kv count 2^64-1", d, n);

    memcpy(d, good, n);
    put_u64(d + l.kv[0], (uint64_t)1 << 63);
    expect_bad_model("key length 2^63", d, n);

    memcpy(d, good, n);
    put_u64(d + kv_value(good, &l, 1), (uint64_t)1 << 63); /* general.name is a string */
    expect_bad_model("string value length 2^63", d, n);

    memcpy(d, good, n);
    put_u64(d + l.tensor[2], (uint64_t)1 << 63);
    expect_bad_model("tensor name length 2^63", d, n);

    /* Tensor 1's offset field sits after name, n_dims, dims and type. */
    size_t t1 = l.tensor[1] + 8 + get_u64(good + l.tensor[1]);
    size_t off1 = t1 + 4 + 8 * get_u32(good + t1) + 4;
    memcpy(d, good, n);
    put_u64(d + off1, (uint64_t)n);
    expect_bad_model("tensor offset past the end", d, n);
    memcpy(d, good, n);
    put_u64(d + off1, UINT64_MAX - 31);
    expect_bad_model("tensor offset overflowing", d, n);
    memcpy(d, good, n);
    put_u32(d + t1 + 4 + 8 * get_u32(good + t1), 99);
    expect_bad_model("unknown tensor type", d, n);
    memcpy(d, good, n);
    put_u64(d + t1 + 4, (uint64_t)1 << 40);
    expect_bad_model("tensor dimension 2^40", d, n);

    /* Duplicate tensor name: give a tensor the name of an earlier one of the
     * same length (blk.0.attn_q.weight / blk.0.attn_k.weight). */
    int dup_done = 0;
    for (size_t a = 0; a < l.n_tensors && a < 64 && !dup_done; a++)
        for (size_t b = a + 1; b < l.n_tensors && b < 64 && !dup_done; b++) {
            uint64_t la = get_u64(good + l.tensor[a]);
            if (la != get_u64(good + l.tensor[b])) continue;
            memcpy(d, good, n);
            memcpy(d + l.tensor[b] + 8, good + l.tensor[a] + 8, la);
            expect_bad_model("duplicate tensor name", d, n);
            dup_done = 1;
        }
    CHECK(dup_done, "fixture has two tensor names of the same length");

    /* Random byte flips in the header and tensor table. Flipped files may
     * still be valid (a changed name string); then the run must succeed or
     * fail with exit 2 and one line, never crash or hang. */
    uint64_t s = 12345;
    char path[1100], args[4096];
    snprintf(path, sizeof path, "%s/flip.gguf", dir);
    for (int trial = 0; trial < 60; trial++) {
        memcpy(d, good, n);
        for (int k = 0; k < 1 + trial % 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t pos = (size_t)(s >> 33) % l.end;
            d[pos] ^= (uint8_t)(1u << ((s >> 20) & 7));
        }
        write_bytes(path, d, n);
        snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2' -n 2 --temp 0 --ids", path);
        struct result r = run_cli(args);
        CHECKF(r.exit_code == 0 || (r.exit_code == 2 && r.stderr_lines == 1) || (r.exit_code == 1 && r.stderr_lines == 1),
               "flip trial %d: exit %d, %d stderr lines: %s", trial, r.exit_code, r.stderr_lines, r.first_line);
    }
    free(d);
}

/* A known key of the wrong type, via the writer. */
static void wrong_key_types(void)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    bn_gguf_writer *w = NULL;
    char err[512];
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_OK, err);
    if (!w) return;
    uint8_t *data = NULL;
    size_t n = 0;
    CHECK(bn_gguf_writer_to_memory(w, &data, &n, err, sizeof err) == BN_OK, err);
    bn_gguf_writer_destroy(w);
    /* The synthetic file is valid: info succeeds. */
    char path[1100], args[4096];
    snprintf(path, sizeof path, "%s/good.gguf", dir);
    write_bytes(path, data, n);
    snprintf(args, sizeof args, "info -m '%s'", path);
    struct result r = run_cli(args);
    CHECKF(r.exit_code == 0, "synthetic model info: exit %d: %s", r.exit_code, r.first_line);

    /* Change the type of bitnet-b1.58.block_count from uint32 (4) to string (8):
     * its 4-byte value then reads as part of a length, so the error is either
     * the type or the length, both exit 2. Also try float32 (6): the type error. */
    struct layout l = walk(data);
    for (size_t i = 0; i < l.n_kv && i < 64; i++) {
        uint64_t kl = get_u64(data + l.kv[i]);
        if (kl == strlen("bitnet-b1.58.block_count") && memcmp(data + l.kv[i] + 8, "bitnet-b1.58.block_count", kl) == 0) {
            size_t type_at = l.kv[i] + 8 + kl;
            put_u32(data + type_at, 6);
            expect_bad_model("block_count as float32", data, n);
            put_u32(data + type_at, 8);
            expect_bad_model("block_count as string", data, n);
            put_u32(data + type_at, 4);
        }
        if (kl == strlen("general.architecture") && memcmp(data + l.kv[i] + 8, "general.architecture", kl) == 0) {
            size_t val = l.kv[i] + 8 + kl + 4;
            uint8_t save = data[val + 8];
            data[val + 8] = 'X'; /* "Xitnet-b1.58": an unsupported architecture */
            expect_bad_model("unsupported architecture", data, n);
            data[val + 8] = save;
        }
    }
    free(data);

    /* An unsupported weight type for a known tensor: an F32 attn_q. */
    struct bn_synth_params q = p;
    (void)q;
}

/* Like expect_bad_model, and the message names `needle` (the field). */
static void expect_bad_field(const char *what, const uint8_t *data, size_t n, const char *needle)
{
    char path[1100], args[4096];
    expect_bad_model(what, data, n);
    snprintf(path, sizeof path, "%s/bad.gguf", dir);
    snprintf(args, sizeof args, "info -m '%s'", path);
    struct result r = run_cli(args);
    CHECKF(strstr(r.first_line, needle) != NULL, "%s: the message names %s: %s", what, needle, r.first_line);
}

/* The synthetic tiny model with one more key or tensor, in memory. */
static uint8_t *synth_with(const char *key, uint32_t value, bool rope_freqs_zero, size_t *n)
{
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    bn_gguf_writer *w = NULL;
    char err[512];
    CHECK(bn_synth_build(&p, &w, err, sizeof err) == BN_OK, err);
    if (!w) return NULL;
    bool ok = !key || bn_gguf_writer_add_u32(w, key, value);
    if (rope_freqs_zero) {
        const uint64_t half = p.n_embd / p.n_head / 2;
        float zeros[256] = {0};
        zeros[0] = 1.0f; /* a bad element other than the first is found too */
        ok = ok && bn_gguf_writer_add_tensor(w, "rope_freqs.weight", BN_TYPE_F32, 1, &half, zeros, half * 4);
    }
    uint8_t *data = NULL;
    CHECK(ok && bn_gguf_writer_to_memory(w, &data, n, err, sizeof err) == BN_OK, "synthetic model with one more field");
    bn_gguf_writer_destroy(w);
    return data;
}

/* Hyperparameters a model loads with only if they fit together: each
 * refusal names the key (or tensor) and the value. */
static void inconsistent_fields(void)
{
    size_t n = 0;
    uint8_t *d = synth_with("bitnet-b1.58.attention.value_length", 32, false, &n);
    if (d) expect_bad_field("value_length 32 with keys of 64", d, n, "attention.value_length is 32");
    free(d);
    d = synth_with("bitnet-b1.58.attention.key_length", 4194304, false, &n);
    if (d) expect_bad_field("key_length 4194304", d, n, "attention.key_length is 4194304");
    free(d);
    d = synth_with(NULL, 0, true, &n);
    if (d) expect_bad_field("rope_freqs of zeros", d, n, "'rope_freqs.weight' element 1 is 0");
    free(d);

    d = synth_with(NULL, 0, false, &n);
    if (!d) return;
    struct layout l = walk(d);
    /* 6 heads do not divide an embedding of 256. */
    for (size_t i = 0; i < l.n_kv && i < 64; i++) {
        const char *key = "bitnet-b1.58.attention.head_count";
        if (get_u64(d + l.kv[i]) == strlen(key) && memcmp(d + l.kv[i] + 8, key, strlen(key)) == 0) {
            const size_t at = kv_value(d, &l, i);
            const uint32_t save = get_u32(d + at);
            put_u32(d + at, 6);
            expect_bad_field("6 heads over 256", d, n, "embedding_length 256 is not a multiple of attention.head_count 6");
            put_u32(d + at, save);
        }
    }
    /* More tokens than embedding rows: token_embd.weight of 200 rows (the
     * data stays, the shape shrinks) and vocab_size 200. */
    for (size_t i = 0; i < l.n_kv && i < 64; i++) {
        const char *key = "bitnet-b1.58.vocab_size";
        if (get_u64(d + l.kv[i]) == strlen(key) && memcmp(d + l.kv[i] + 8, key, strlen(key)) == 0)
            put_u32(d + kv_value(d, &l, i), 200);
    }
    for (size_t i = 0; i < l.n_tensors && i < 64; i++) {
        const char *name = "token_embd.weight";
        if (get_u64(d + l.tensor[i]) == strlen(name) && memcmp(d + l.tensor[i] + 8, name, strlen(name)) == 0)
            put_u64(d + l.tensor[i] + 8 + strlen(name) + 4 + 8, 200); /* ne[1] */
    }
    expect_bad_field("300 tokens over 200 rows", d, n,
                     "tokenizer.ggml.tokens has 300 tokens but 'token_embd.weight' has 200 rows");
    free(d);

    /* A FIFO with no writer: refused at once, not waited on. */
    char fifo[1100], args[2048];
    snprintf(fifo, sizeof fifo, "%s/fifo.gguf", dir);
    unlink(fifo);
    CHECK(mkfifo(fifo, 0600) == 0, "mkfifo");
    snprintf(args, sizeof args, "info -m '%s'", fifo);
    struct result r = run_cli(args);
    CHECKF(r.exit_code == 2 && r.stderr_lines == 1 && strstr(r.first_line, "not a regular file"),
           "a FIFO as the model: exit %d: %s", r.exit_code, r.first_line);
    unlink(fifo);
}

static void usage_errors(const char *model)
{
    char args[4096];
    struct result r;
    r = run_cli("");
    CHECKF(r.exit_code == 1, "no command: exit %d", r.exit_code);
    r = run_cli("frobnicate");
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "unknown command: exit %d", r.exit_code);
    r = run_cli("generate --tokens '1'");
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "missing -m: exit %d", r.exit_code);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1' --temp abc", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "bad --temp: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1' -n -3", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "-n -3: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1' -c -5", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "-c -5: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 x 3'", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "bad --tokens: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 99999' -n 1", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1 && strstr(r.first_line, "out of range"),
           "token out of range: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1 2 3' -c 2", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "prompt longer than context: exit %d %s", r.exit_code,
           r.first_line);
    snprintf(args, sizeof args, "generate -m '%s' --tokens '1' --device warp9", model);
    r = run_cli(args);
    CHECKF(r.exit_code == 1 && r.stderr_lines == 1, "bad --device: exit %d %s", r.exit_code, r.first_line);
    snprintf(args, sizeof args, "info -m '%s/does-not-exist.gguf'", dir);
    r = run_cli(args);
    CHECKF(r.exit_code == 2 && r.stderr_lines == 1 && strstr(r.first_line, "does-not-exist.gguf"),
           "missing model: exit %d %s", r.exit_code, r.first_line);
    /* A failing write leaves no partial output file. */
    snprintf(args, sizeof args, "logits -m '%s' --tokens '1 2' -o '%s/no/such/dir/out.f32'", model, dir);
    r = run_cli(args);
    CHECKF(r.exit_code == 3 && r.stderr_lines == 1, "unwritable output: exit %d %s", r.exit_code, r.first_line);
    /* A bad model never leaves an output file either. */
    char out[1100];
    snprintf(out, sizeof out, "%s/never.f32", dir);
    remove(out);
    snprintf(args, sizeof args, "logits -m '%s/does-not-exist.gguf' --tokens '1' -o '%s'", dir, out);
    r = run_cli(args);
    FILE *f = fopen(out, "rb");
    CHECKF(r.exit_code == 2 && f == NULL, "no output file after a failed load: exit %d", r.exit_code);
    if (f) fclose(f);
}

/* An output path that is not a regular file (here a FIFO; /dev/null in
 * practice) is written in place: replacing it with a renamed temporary file
 * would turn it into a plain file. The bytes through the FIFO equal those
 * written to a regular file. */
static void special_output(const char *model)
{
    char fifo[1100], got[1100], want[1100], args[4096], cmd[8192];
    snprintf(fifo, sizeof fifo, "%s/out.fifo", dir);
    snprintf(got, sizeof got, "%s/from_fifo.f32", dir);
    snprintf(want, sizeof want, "%s/regular.f32", dir);
    remove(fifo);
    if (mkfifo(fifo, 0600) != 0) {
        printf("no FIFO here; the in-place output is not checked\n");
        return;
    }
    snprintf(args, sizeof args, "logits -m '%s' --tokens '1 2 3' -o '%s'", model, want);
    struct result r = run_cli(args);
    CHECKF(r.exit_code == 0, "logits to a regular file: exit %d %s", r.exit_code, r.first_line);
    /* The reader starts first and ends with the writer's close. */
    snprintf(cmd, sizeof cmd, "timeout 30 cat '%s' >'%s' & timeout 60 '%s' logits -m '%s' --tokens '1 2 3' -o '%s' 2>/dev/null; "
             "rc=$?; wait; exit $rc", fifo, got, BN_CLI, model, fifo);
    const int st = system(cmd);
    CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "logits to a FIFO: status %d", st);
    struct stat sb;
    CHECKF(stat(fifo, &sb) == 0 && S_ISFIFO(sb.st_mode), "the FIFO is still a FIFO after the write");
    size_t n_got = 0, n_want = 0;
    uint8_t *a = test_read_file(got, &n_got), *b = test_read_file(want, &n_want);
    CHECKF(a && b && n_want > 0 && n_got == n_want && memcmp(a, b, n_want) == 0,
           "the FIFO carried the logits: %zu bytes, the regular file %zu", n_got, n_want);
    free(a);
    free(b);
    remove(fifo);
    remove(got);
    remove(want);
}

int main(void)
{
    const char *td = test_testdata();
    if (!td) return test_skip_or_fail("golden test data missing");
    snprintf(dir, sizeof dir, "%s/test_cli_errors.d", BN_BINARY_DIR);
    mkdir(dir, 0755);
    char model[1024];
    snprintf(model, sizeof model, "%s/golden/i2s_bitnet_b158/model.gguf", td);
    size_t n = 0;
    uint8_t *good = test_read_file(model, &n);
    if (!good) return test_skip_or_fail("cannot read the golden model");
    usage_errors(model);
    special_output(model);
    hostile_files(good, n);
    wrong_key_types();
    inconsistent_fields();
    free(good);
    return test_report("test_cli_errors");
}
