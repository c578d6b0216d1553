/*
 * test_chat_pty.c - `generate --chat` in a real terminal: the CLI runs on a
 * pseudo-terminal (so it sees a tty, prints its "> " prompt and reads lines
 * as a user types them), two turns are typed, then Ctrl-D.
 *
 * Asserted, from the --verbose-prompt lines: the exact prompt ids of both
 * turns for a fixed conversation in the BitNet 2B4T format (built here from
 * the format's pieces spelled out, not through runtime/chat.c), and that
 * turn 2 is evaluated at the position where turn 1's answer ended: the KV
 * cache kept the first turn and only the new tokens were evaluated. Also:
 * exit status 0, and one-line usage errors for bad chat flags.
 *
 * The model is a small synthetic bitnet-b1.58 one written into a temporary
 * directory (tools/synth_model.h), with the demo model's byte-level
 * vocabulary and control tokens.
 */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "gguf.h"
#include "synth_model.h"
#include "test_util.h"
#include "tokenizer.h"

#define TIMEOUT_S 120.0

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the child on a pseudo-terminal ----------------------------------------- */

struct session {
    int master;
    pid_t pid;
    char *out; /* everything the child wrote, NUL-terminated, \r removed */
    size_t n, cap;
    bool eof;
};

static bool spawn(struct session *s, char *const argv[])
{
    memset(s, 0, sizeof *s);
    s->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (s->master < 0 || grantpt(s->master) != 0 || unlockpt(s->master) != 0) return false;
    const char *name = ptsname(s->master);
    if (!name) return false;
    char slave_name[256];
    snprintf(slave_name, sizeof slave_name, "%s", name);
    s->cap = 1 << 16;
    s->out = malloc(s->cap);
    if (!s->out) return false;
    s->out[0] = '\0';
    s->pid = fork();
    if (s->pid < 0) return false;
    if (s->pid == 0) {
        /* A new session whose controlling terminal is the slave; no echo, so
         * the output holds only what the program writes. */
        setsid();
        int slave = open(slave_name, O_RDWR);
        if (slave < 0) _exit(126);
        struct termios tio;
        if (tcgetattr(slave, &tio) == 0) {
            tio.c_lflag &= ~(tcflag_t)ECHO;
            tcsetattr(slave, TCSANOW, &tio);
        }
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        if (slave > 2) close(slave);
        close(s->master);
        execv(argv[0], argv);
        _exit(127);
    }
    return true;
}

/* Reads what is available within ms milliseconds. */
static void pump(struct session *s, int ms)
{
    struct pollfd p = {s->master, POLLIN, 0};
    if (s->eof || poll(&p, 1, ms) <= 0) return;
    char buf[4096];
    ssize_t got = read(s->master, buf, sizeof buf);
    if (got <= 0) {
        s->eof = true; /* EIO once the child has closed the terminal */
        return;
    }
    for (ssize_t i = 0; i < got; i++) {
        if (buf[i] == '\r') continue;
        if (s->n + 2 > s->cap) {
            char *grown = realloc(s->out, s->cap * 2);
            if (!grown) return;
            s->out = grown;
            s->cap *= 2;
        }
        s->out[s->n++] = buf[i];
    }
    s->out[s->n] = '\0';
}

/* Waits until `mark` appears after offset *from and then "> " after it;
 * *from moves past the prompt. */
static bool wait_for(struct session *s, const char *mark, size_t *from, double deadline)
{
    while (now_s() < deadline && !s->eof) {
        const char *m = strstr(s->out + *from, mark);
        const char *p = m ? strstr(m, "> ") : NULL;
        if (p) {
            *from = (size_t)(p - s->out) + 2;
            return true;
        }
        pump(s, 50);
    }
    return false;
}

static void type_text(struct session *s, const char *text)
{
    size_t n = strlen(text), done = 0;
    while (done < n) {
        ssize_t k = write(s->master, text + done, n - done);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return;
        done += (size_t)k;
    }
}

static int finish(struct session *s, double deadline)
{
    int status = 0;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid) break;
        if (now_s() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            return -1;
        }
        pump(s, 50);
    }
    while (!s->eof) pump(s, 50);
    close(s->master);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- parsing the --verbose-prompt lines --------------------------------------- */

struct ids_line {
    long pos;
    size_t n;
    int32_t ids[512];
    bool found;
};

/* "bitnet-vk: turn T WHAT at position P (N tokens): id id ..." */
static struct ids_line find_line(const char *out, int turn, const char *what)
{
    struct ids_line l = {0};
    char head[96];
    snprintf(head, sizeof head, "bitnet-vk: turn %d %s at position ", turn, what);
    const char *p = strstr(out, head);
    if (!p) return l;
    p += strlen(head);
    char *end;
    l.pos = strtol(p, &end, 10);
    const char *colon = strchr(end, ':');
    const char *eol = strchr(end, '\n');
    if (!colon || !eol || colon > eol) return l;
    p = colon + 1;
    while (p < eol && l.n < 512) {
        long v = strtol(p, &end, 10);
        if (end == p) break;
        l.ids[l.n++] = (int32_t)v;
        p = end;
    }
    l.found = true;
    return l;
}

/* ---- expected ids ------------------------------------------------------------- */

struct idbuf {
    int32_t v[512];
    size_t n;
};

static void add_id(struct idbuf *b, int32_t id)
{
    if (b->n < 512) b->v[b->n++] = id;
}

static void add_text(struct idbuf *b, const bn_tokenizer *tk, const char *s)
{
    int32_t *ids = NULL;
    size_t n = 0;
    char err[256];
    if (bn_tokenizer_encode(tk, s, strlen(s), false, false, &ids, &n, err, sizeof err) != BN_OK) {
        CHECKF(0, "encode '%s': %s", s, err);
        return;
    }
    for (size_t i = 0; i < n; i++) add_id(b, ids[i]);
    free(ids);
}

static bool same_ids(const struct ids_line *l, const struct idbuf *b)
{
    if (!l->found || l->n != b->n) return false;
    for (size_t i = 0; i < b->n; i++)
        if (l->ids[i] != b->v[i]) return false;
    return true;
}

/* ---- the tests ------------------------------------------------------------------ */

/* Returns false only when the system has no pseudo-terminals at all. */
static bool test_two_turns(const char *model)
{
    char err[512];
    bn_gguf *g = NULL;
    bn_tokenizer *tk = NULL;
    if (bn_gguf_open(model, &g, err, sizeof err) != BN_OK || bn_tokenizer_create(g, &tk, err, sizeof err) != BN_OK) {
        CHECKF(0, "model tokenizer: %s", err);
        bn_gguf_close(g);
        return true;
    }
    bn_gguf_close(g);
    const int32_t bos = bn_tokenizer_find(tk, "<|begin_of_text|>", 17);
    const int32_t eot = bn_tokenizer_find(tk, "<|eot_id|>", 10);
    CHECK(bos >= 0 && eot >= 0, "the model has <|begin_of_text|> and <|eot_id|>");
    /* <|begin_of_text|>System: You are terse.<|eot_id|>User: Hello there<|eot_id|>Assistant: */
    struct idbuf want1 = {.n = 0}, want2 = {.n = 0};
    add_id(&want1, bos);
    add_text(&want1, tk, "System: You are terse.");
    add_id(&want1, eot);
    add_text(&want1, tk, "User: Hello there");
    add_id(&want1, eot);
    add_text(&want1, tk, "Assistant: ");
    /* <|eot_id|>User: What did I say?<|eot_id|>Assistant: */
    add_id(&want2, eot);
    add_text(&want2, tk, "User: What did I say?");
    add_id(&want2, eot);
    add_text(&want2, tk, "Assistant: ");

    char *argv[] = {BN_CLI, "generate", "-m", (char *)model, "--chat", "--system", "You are terse.", "--temp", "0",
                    "--seed", "1", "-n", "6", "--verbose-prompt", "--device", "cpu", "-c", "256", NULL};
    struct session s;
    if (!spawn(&s, argv)) {
        bool none = errno == ENOENT || errno == ENODEV || errno == ENXIO || errno == EACCES;
        if (!none) CHECKF(0, "spawn on a pseudo-terminal: %s", strerror(errno));
        if (s.master >= 0) close(s.master);
        free(s.out);
        bn_tokenizer_destroy(tk);
        return !none;
    }
    const double deadline = now_s() + TIMEOUT_S;
    size_t at = 0;
    bool ok1 = wait_for(&s, "chat format 'bitnet'", &at, deadline);
    CHECK(ok1, "the chat starts in the bitnet format and prompts with \"> \"");
    if (ok1) type_text(&s, "Hello there\n");
    bool ok2 = ok1 && wait_for(&s, "bitnet-vk: turn 1 answer", &at, deadline);
    CHECK(ok2, "turn 1 is answered and the prompt comes back");
    if (ok2) type_text(&s, "  What did I say?\n"); /* leading spaces: trimmed */
    bool ok3 = ok2 && wait_for(&s, "bitnet-vk: turn 2 answer", &at, deadline);
    CHECK(ok3, "turn 2 is answered and the prompt comes back");
    type_text(&s, "\x04"); /* Ctrl-D: end of input */
    int code = finish(&s, deadline);
    CHECKF(code == 0, "exit status %d after Ctrl-D", code);

    struct ids_line p1 = find_line(s.out, 1, "prompt"), a1 = find_line(s.out, 1, "answer");
    struct ids_line p2 = find_line(s.out, 2, "prompt"), a2 = find_line(s.out, 2, "answer");
    CHECKF(p1.found && p1.pos == 0 && same_ids(&p1, &want1), "turn 1: the exact prompt ids at position 0 (%zu ids)",
           p1.n);
    CHECKF(a1.found && a1.pos == (long)want1.n && a1.n <= 6, "turn 1: the answer follows the prompt (position %ld)",
           a1.pos);
    CHECKF(p2.found && same_ids(&p2, &want2), "turn 2: the exact prompt ids (%zu ids)", p2.n);
    CHECKF(p2.found && a1.found && p2.pos == a1.pos + (long)a1.n,
           "turn 2 is evaluated where turn 1's answer ended (%ld == %ld + %zu): the first turn stayed in the cache",
           p2.pos, a1.pos, a1.n);
    CHECKF(a2.found && a2.pos == p2.pos + (long)want2.n, "turn 2: the answer follows its prompt");
    CHECK(strstr(s.out, "| 2 turns |") != NULL, "the summary counts two turns");
    if (test_failed_count) fprintf(stderr, "--- session output ---\n%s\n--- end ---\n", s.out);
    free(s.out);
    bn_tokenizer_destroy(tk);
    return true;
}

/* Bad chat flags: exit 1 and one line on stderr, before any model work. */
static void test_usage_errors(const char *model, const char *dir)
{
    const char *cases[] = {
        "generate -m '%s' --chat -p hi --system hello",
        "generate -m '%s' --chat --tokens 1",
        "generate -m '%s' --chat --chat-template chatml",
        "generate -m '%s' -p hi --system hello",
        "generate -m '%s' --chat --ignore-eos",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[2048], cmd[4096], errf[1100];
        snprintf(args, sizeof args, cases[i], model);
        snprintf(errf, sizeof errf, "%s/stderr.txt", dir);
        snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s </dev/null >/dev/null 2>'%s'", BN_CLI, args, errf);
        int st = system(cmd);
        size_t n = 0;
        char *e = test_read_file(errf, &n);
        int lines = 0;
        for (size_t k = 0; e && k < n; k++) lines += e[k] == '\n';
        CHECKF(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 1 && lines == 1, "%s: exit 1, one line: %s", args,
               e ? e : "");
        free(e);
    }
}

int main(void)
{
    char dir[] = "/tmp/bn-chat-pty-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "temporary directory");
        return test_report("test_chat_pty");
    }
    char model[512], err[512];
    snprintf(model, sizeof model, "%s/chat.gguf", dir);
    struct bn_synth_params p;
    bn_synth_default_params(&p);
    p.seed = 7;
    enum bn_status st = bn_synth_write(&p, model, err, sizeof err);
    CHECKF(st == BN_OK, "synthetic model: %s", st == BN_OK ? "" : err);
    bool have_pty = true;
    if (st == BN_OK) {
        have_pty = test_two_turns(model);
        test_usage_errors(model, dir);
    }
    char path[600];
    snprintf(path, sizeof path, "%s/stderr.txt", dir);
    remove(path);
    remove(model);
    rmdir(dir);
    if (!have_pty) {
        test_report("test_chat_pty");
        return test_skip_or_fail("no pseudo-terminals on this system (posix_openpt failed)");
    }
    return test_report("test_chat_pty");
}
