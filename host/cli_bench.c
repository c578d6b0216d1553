/*
 * `bench`: prompt processing and generation speed per device, llama-bench
 * style, against each device's own memory bandwidth.
 *
 *   ppN: N prompt tokens in one batch from an empty cache, with the logits of
 *        the last one (what a prompt costs before the first sampled token);
 *   tgN: N single-token decode steps from an empty cache, each with logits.
 *
 * The tests of a device run in rounds, each test once per round: one
 * untimed round (warm-up: page faults, caches, clocks), then at least -r
 * timed rounds, and more until they have taken --min-time seconds, so each
 * test's repetitions are spread over the whole run rather than a few
 * seconds of it. Results are the mean, sample standard deviation and median
 * of the per-repetition tokens per second, with a warning on stderr when
 * the relative deviation passes 10% (a busy or shared machine).
 *
 * Devices (--device cpu,vulkan:0,lavapipe,...) run one after the other
 * through cli_open_engine; thread counts (-t 1,2) apply to the CPU. For
 * each device the run also measures:
 *   - its memory bandwidth: a multi-threaded read of host memory on the CPU
 *     (host/bench_probe.c), a device-to-device copy shader timed with
 *     timestamp queries on Vulkan (runtime/vk/vk_bandwidth.c);
 *   - the weight bytes read per generated token: the CPU backend's own
 *     count, or on Vulkan every tensor of the model that a decode step reads
 *     (all of them but the embedding table, which is read one row a token,
 *     unless it is also the head); GB/s = bytes per token x tokens/s, and
 *     the share of the measured bandwidth (the roofline);
 *   - load time (model open, backend repack/upload, engine), the peak host
 *     RSS while the device ran, and the device memory the backend holds.
 *
 * Before any timing, a device other than the CPU must reproduce the CPU
 * backend's first steps (a 4-token batch, then one decode step; see
 * host/bench_validate.c for the tolerance); if it does not, none of its
 * figures are reported and the exit code is 3 (the table's rows of devices
 * measured before it are printed by then; JSON, CSV and the plot are not).
 * The CPU backend is the reference (its kernels are tested bit for bit
 * against the scalar ones).
 *
 * --profile prints per test a per-op table on stderr: the CPU backend's op
 * timers, or on Vulkan the device time of every dispatch from timestamp
 * queries, summed per pipeline (only with --profile is a Vulkan backend
 * opened with those queries: they cost time of their own), and how much of
 * the measured forward time the ops cover.
 */
#define _POSIX_C_SOURCE 200809L /* fork, pipe, waitpid */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "backend_cpu.h"
#include "bench.h"
#include "cli.h"
#include "cli_engine.h"
#include "cli_output.h"
#include "engine.h"
#include "model.h"

#if defined(BN_HAVE_VULKAN)
#include "backend_vk.h"
#endif

#define MAX_LIST 16
#define MAX_RESULTS (MAX_LIST * MAX_LIST * 2 * MAX_LIST) /* devices x threads x tests */
#define MAX_PROFILE_OPS 64
#define BENCH_MAX_REPS 1000    /* timed repetitions of a test at most, whatever --min-time asks */
#define DEFAULT_MIN_TIME 30.0  /* seconds: see bench/README.md, "Repeatability" */
#define RELATIVE_SD_WARN 0.10  /* stddev / mean above this: a warning             */
#define PROFILE_COVER_WARN 10  /* per-op sum off the forward time by more: a warning (%) */
#define DRIFT_MIN_REPS 8       /* fewer repetitions: halves too small to compare      */
#define BW_DRIFT_WARN 0.10     /* the round probes' stddev / mean above this: a warning */
#define BW_ROUND_PASSES 3      /* a round's probe: the fastest of 3 CPU reads, the mean of 3 copies */

struct bench_opts {
    const char *model;
    long pp[MAX_LIST], tg[MAX_LIST], threads[MAX_LIST];
    int n_pp, n_tg, n_threads;
    char devbuf[256];            /* --device, split in place into devs */
    const char *devs[MAX_LIST];
    int n_dev;
    long reps;
    double min_time; /* seconds the timed rounds of a device take at least */
    long bw_mib;
    float max_nmse;
    bool head_q8;
    bool json, csv;
    bool profile;
    const char *plot;
};


static void print_help(void)
{
    printf("usage: bitnet-vk bench -m MODEL [options]\n"
           "  -p N[,N...]        prompt-processing tests: N tokens in one batch (default 128; 0 = none)\n"
           "  -n N[,N...]        generation tests: N single-token steps (default 32; 0 = none)\n"
           "  -r N               repetitions after one warm-up run: at least N (default 5)\n"
           "      --min-time S   repeat past -r until a device's timed runs took S seconds (default 30; 0 = just\n"
           "                     -r); tests alternate run by run, so each one's spread covers the whole time\n"
           "  -t N[,N...]        CPU threads (default: the physical cores)\n"
           "      --device D[,D] devices to measure, one after the other: cpu, vulkan, vulkan:N, lavapipe,\n"
           "                     auto (default cpu), each checked before any runs; a Vulkan device must match\n"
           "                     the CPU's first steps first\n"
           "      --max-nmse X   first-step check of a non-CPU device: logits NMSE against the CPU at most X\n"
           "                     (default 1e-2; see bench/README.md)\n"
           "      --head f16|q8  head: the file's table (default) or an int8 copy made at load (CPU and Vulkan)\n"
           "      --profile      per-op time table after each test, on stderr (Vulkan: timestamp queries)\n"
           "      --bw-mib N     buffer of the bandwidth probes in MiB (default 512; 0 = no probe)\n"
           "      --json         one JSON array of result objects on stdout instead of the table\n"
           "      --csv          CSV (a header line, one line per result) on stdout instead of the table\n"
           "      --plot F.svg   also draw tokens/s per test and device, with the roofline, as SVG\n");
}

/* Splits "a,b,c" in place into at most MAX_LIST entries; false with a
 * message on an empty entry ("1,,2", ",1", "1,"), a repeated one (two rows
 * of the same name would be one row to a script) or too many. */
static bool split_list(const char *flag, char *s, const char **items, int *n)
{
    *n = 0;
    for (char *p = s;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        if (*p == '\0') {
            cli_fail(1, "%s: an empty entry in the list", flag);
            return false;
        }
        for (int i = 0; i < *n; i++)
            if (!strcmp(items[i], p)) {
                cli_fail(1, "%s: '%s' twice in the list", flag, p);
                return false;
            }
        if (*n == MAX_LIST) {
            cli_fail(1, "%s: at most %d values", flag, MAX_LIST);
            return false;
        }
        items[(*n)++] = p;
        if (!comma) return true;
        p = comma + 1;
    }
}

/* "128" or "1,2,4" into list; false with a message on a bad entry. */
static bool parse_list(const char *flag, const char *s, long min, long max, long *list, int *n)
{
    char buf[256];
    const char *items[MAX_LIST];
    if (strlen(s) >= sizeof buf) {
        cli_fail(1, "%s: list too long", flag);
        return false;
    }
    strcpy(buf, s);
    if (!split_list(flag, buf, items, n)) return false;
    for (int i = 0; i < *n; i++) {
        if (!cli_parse_long(flag, items[i], min, max, &list[i])) return false;
        for (int j = 0; j < i; j++)
            if (list[j] == list[i]) { /* "8" and "08" */
                cli_fail(1, "%s: %ld twice in the list", flag, list[i]);
                return false;
            }
    }
    return true;
}

static int parse_opts(int argc, char **argv, struct bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->pp[0] = 128;
    o->n_pp = 1;
    o->tg[0] = 32;
    o->n_tg = 1;
    o->threads[0] = 0;
    o->n_threads = 1;
    o->reps = 5;
    o->min_time = DEFAULT_MIN_TIME;
    o->bw_mib = 512;
    o->max_nmse = (float)BENCH_VALIDATE_NMSE_MAX;
    strcpy(o->devbuf, "cpu");
    o->devs[0] = o->devbuf;
    o->n_dev = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
#define VALUE()                                              \
    do {                                                     \
        if (!(v = cli_flag_value(argc, argv, &i))) return 1; \
    } while (0)
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            print_help();
            return -1;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            VALUE();
            o->model = v;
        } else if (!strcmp(a, "-p")) {
            VALUE();
            if (!parse_list(a, v, 0, 1 << 16, o->pp, &o->n_pp)) return 1;
        } else if (!strcmp(a, "-n")) {
            VALUE();
            if (!parse_list(a, v, 0, 1 << 16, o->tg, &o->n_tg)) return 1;
        } else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
            VALUE();
            if (!parse_list(a, v, 1, BENCH_MAX_THREADS, o->threads, &o->n_threads)) return 1;
        } else if (!strcmp(a, "-r")) {
            VALUE();
            if (!cli_parse_long(a, v, 1, BENCH_MAX_REPS, &o->reps)) return 1;
        } else if (!strcmp(a, "--min-time")) {
            VALUE();
            float t;
            if (!cli_parse_float(a, v, 0.0f, 86400.0f, &t)) return 1;
            o->min_time = t;
        } else if (!strcmp(a, "--bw-mib")) {
            VALUE();
            if (!cli_parse_long(a, v, 0, 1 << 16, &o->bw_mib)) return 1;
        } else if (!strcmp(a, "--max-nmse")) {
            VALUE();
            if (!cli_parse_float(a, v, 0.0f, 1.0f, &o->max_nmse)) return 1;
        } else if (!strcmp(a, "--device")) {
            VALUE();
            if (strlen(v) >= sizeof o->devbuf) return cli_fail(1, "--device: list too long");
            strcpy(o->devbuf, v);
            if (!split_list(a, o->devbuf, o->devs, &o->n_dev)) return 1;
        } else if (!strcmp(a, "--head")) {
            VALUE();
            if (!strcmp(v, "q8")) o->head_q8 = true;
            else if (!strcmp(v, "f16")) o->head_q8 = false;
            else return cli_fail(1, "--head: '%s' is not f16 or q8", v);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--csv")) {
            o->csv = true;
        } else if (!strcmp(a, "--plot")) {
            VALUE();
            o->plot = v;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else {
            return cli_fail(1, "bench: unknown option '%s' (try --help)", a);
        }
#undef VALUE
    }
    if (!o->model) return cli_fail(1, "-m MODEL is required");
    if (o->json && o->csv) return cli_fail(1, "--json and --csv: choose one");
    bool any_test = false;
    for (int i = 0; i < o->n_pp; i++) any_test |= o->pp[i] > 0;
    for (int i = 0; i < o->n_tg; i++) any_test |= o->tg[i] > 0;
    if (!any_test) return cli_fail(1, "-p and -n: every test is 0 tokens, nothing to measure");
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean, sample standard deviation and median of x[0..n), n <= BENCH_MAX_REPS
 * (x stays in the order the repetitions ran). */
static void summarize(const double *x, int n, double *mean, double *sd, double *median)
{
    double s = 0, ss = 0, sorted[BENCH_MAX_REPS];
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
    memcpy(sorted, x, (size_t)n * sizeof *x);
    qsort(sorted, (size_t)n, sizeof *sorted, cmp_double);
    *median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

/* Weight bytes one decode step reads, from the model: every tensor but the
 * embedding table, which is read one row per token unless it is the head. */
static double model_bytes_per_token(const struct bn_model *m)
{
    double b = 0;
    for (uint32_t i = 0; i < m->n_tensors; i++) b += (double)m->tensors[i].nbytes;
    if (m->tok_embd && m->output != m->tok_embd) b -= (double)m->tok_embd->nbytes;
    return b;
}

static double ternary_bytes(const struct bn_model *m)
{
    double b = 0;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const struct bn_layer *y = &m->layers[l];
        const struct bn_linear *lin[] = {&y->wq, &y->wk, &y->wv, &y->wo, &y->w_gate, &y->w_up, &y->w_down};
        for (size_t k = 0; k < sizeof lin / sizeof lin[0]; k++) b += (double)lin[k]->w->nbytes;
    }
    return b;
}

/* --- per-op profiles ------------------------------------------------------ */

/* CPU: the backend's op timers over a test's timed repetitions. */
static int cpu_profile_ops(const struct bn_cpu_op_stats *stats, bool decode, struct bench_op *ops)
{
    int n = 0;
    for (int i = 0; i < BN_CPU_OP_COUNT; i++) {
        const struct bn_cpu_op_stats *s = &stats[i];
        if (!s->calls) continue;
        /* weight bytes over op time means bandwidth only when each weight
         * is read once per token, in decode */
        ops[n++] = (struct bench_op){bn_cpu_op_name((enum bn_cpu_op)i), s->calls, s->seconds,
                                     decode ? (double)s->bytes : 0.0};
    }
    return n;
}

#if defined(BN_HAVE_VULKAN)
struct vk_snapshot {
    struct bn_backend_vk_op_time t[MAX_PROFILE_OPS];
    uint32_t n;
    struct bn_backend_vk_stats stats; /* submissions, dispatches, barriers */
};

static void vk_snapshot_take(const struct bn_backend *be, struct vk_snapshot *s)
{
    s->n = bn_backend_vk_get_profile(be, s->t, MAX_PROFILE_OPS);
    if (bn_backend_vk_get_stats(be, &s->stats) != BN_OK) memset(&s->stats, 0, sizeof s->stats);
}

/* acc += after - before, per pipeline (by name) and for the counters: the
 * device work of one timed repetition, added to its test's total. */
static void vk_snapshot_accumulate(struct vk_snapshot *acc, const struct vk_snapshot *before,
                                   const struct vk_snapshot *after)
{
    for (uint32_t i = 0; i < after->n; i++) {
        double ms = after->t[i].ms;
        uint64_t calls = after->t[i].dispatches;
        for (uint32_t k = 0; k < before->n; k++)
            if (strcmp(before->t[k].name, after->t[i].name) == 0) {
                ms -= before->t[k].ms;
                calls -= before->t[k].dispatches;
            }
        if (!calls) continue;
        uint32_t k = 0;
        while (k < acc->n && strcmp(acc->t[k].name, after->t[i].name) != 0) k++;
        if (k == MAX_PROFILE_OPS) continue;
        if (k == acc->n) acc->t[acc->n++] = (struct bn_backend_vk_op_time){after->t[i].name, 0.0, 0};
        acc->t[k].ms += ms;
        acc->t[k].dispatches += calls;
    }
    acc->stats.submits += after->stats.submits - before->stats.submits;
    acc->stats.dispatches += after->stats.dispatches - before->stats.dispatches;
    acc->stats.barriers += after->stats.barriers - before->stats.barriers;
}

/* Vulkan: device time per pipeline of a test's timed repetitions. In
 * decode the ternary bytes are credited to the one pipeline named matvec* /
 * matmul* and the head bytes to the one named head*, when there is exactly
 * one of each (pipeline names are the shaders', and fused variants may
 * share the work; then no GB/s is claimed). */
static int vk_profile_ops(const struct vk_snapshot *acc, bool decode, double tern_bytes, double head_bytes,
                          struct bench_op *ops)
{
    int n = 0, n_mat = 0, n_head = 0, i_mat = -1, i_head = -1;
    for (uint32_t i = 0; i < acc->n; i++) {
        const char *name = acc->t[i].name;
        if (!strncmp(name, "matvec", 6) || !strncmp(name, "matmul", 6)) n_mat++, i_mat = n;
        if (!strncmp(name, "head", 4)) n_head++, i_head = n;
        ops[n++] = (struct bench_op){name, acc->t[i].dispatches, acc->t[i].ms * 1e-3, 0.0};
    }
    if (decode && n_mat == 1) ops[i_mat].bytes = tern_bytes;
    if (decode && n_head == 1) ops[i_head].bytes = head_bytes;
    return n;
}
#endif

/* --- the device list ------------------------------------------------------ */

/* What the check of one --device entry found. */
struct device_check {
    int32_t status;   /* enum bn_status */
    int32_t vk_index; /* the Vulkan device it comes to, -1 for the CPU */
    char err[512];
};

static void check_each(const struct bench_opts *o, struct device_check *c)
{
    for (int i = 0; i < o->n_dev; i++) {
        int index = -1;
        c[i].status = (int32_t)bn_backend_check_device(o->devs[i], &index, c[i].err, sizeof c[i].err);
        c[i].vk_index = index;
    }
}

/* Moves n bytes through a pipe whole; false on an error or an early end. */
static bool write_all(int fd, const void *buf, size_t n)
{
    for (const char *p = buf; n > 0;) {
        const ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool read_all(int fd, void *buf, size_t n)
{
    for (char *p = buf; n > 0;) {
        const ssize_t k = read(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

/* Every --device entry checked before any work (bn_backend_check_device),
 * so a bad one fails at once rather than after minutes on the others. An
 * entry other than "cpu" may load a Vulkan driver to be checked, and a
 * driver stays mapped in the process that loaded it: it would count in the
 * peak RSS of every device measured after the check (some 50 MiB for
 * lavapipe), the CPU's too. So those checks run in a child process, which
 * sends back what it found (on macOS, where a forked child may not use the
 * system frameworks, in this one). Fills vk_index per entry; returns 0 or
 * an exit code, said. */
static int check_devices(const struct bench_opts *o, int *vk_index)
{
    struct device_check c[MAX_LIST];
    memset(c, 0, sizeof c);
    bool any_vulkan = false;
    for (int i = 0; i < o->n_dev; i++) any_vulkan |= strcmp(o->devs[i], "cpu") != 0;
#if defined(__APPLE__)
    /* A child that is not exec'd must not use Apple's frameworks, which
     * MoltenVK's Metal is: here the check runs in this process. */
    any_vulkan = false;
#endif
    int fd[2];
    if (!any_vulkan || pipe(fd) != 0) {
        check_each(o, c); /* nothing to load, or no pipe: here, as the child would */
    } else {
        fflush(NULL);
        const pid_t pid = fork();
        if (pid == 0) {
            close(fd[0]);
            check_each(o, c);
            _exit(write_all(fd[1], c, (size_t)o->n_dev * sizeof c[0]) ? 0 : 1);
        }
        close(fd[1]);
        bool ok = pid > 0 && read_all(fd[0], c, (size_t)o->n_dev * sizeof c[0]);
        close(fd[0]);
        int ws = 0;
        if (pid > 0)
            while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {}
        if (pid < 0) check_each(o, c); /* no child: here */
        else if (!ok || !WIFEXITED(ws) || WEXITSTATUS(ws) != 0)
            return cli_fail(3, "--device: the check of the devices ended %s%d (a crash in the Vulkan driver?)",
                            WIFSIGNALED(ws) ? "with signal " : "with exit code ",
                            WIFSIGNALED(ws) ? WTERMSIG(ws) : WEXITSTATUS(ws));
    }
    for (int i = 0; i < o->n_dev; i++) {
        if (c[i].status != BN_OK) {
            c[i].err[sizeof c[i].err - 1] = '\0';
            return cli_fail(bn_status_exit_code((enum bn_status)c[i].status), "%s", c[i].err);
        }
        vk_index[i] = c[i].vk_index;
    }
    return 0;
}

/* Drops the entries that come to a device another one names ("auto"
 * without a GPU and "cpu", "vulkan" and "vulkan:0"), with a note: two rows
 * of one device would be one row twice to a script and to the plot. Of
 * "auto" and a name, the name stays: auto may still leave its GPU for the
 * CPU (a model the GPU cannot run), and a named device that cannot run is
 * an error, never a CPU row. Of two names, the first stays. vk_index is
 * kept beside devs. */
static void drop_aliases(struct bench_opts *o, int *vk_index)
{
    bool drop[MAX_LIST] = {false};
    int same_as[MAX_LIST];
    for (int i = 0; i < o->n_dev; i++) {
        const bool i_auto = strcmp(o->devs[i], "auto") == 0;
        for (int j = 0; j < o->n_dev && !drop[i]; j++) {
            if (j == i || drop[j] || vk_index[j] != vk_index[i]) continue;
            const bool j_auto = strcmp(o->devs[j], "auto") == 0;
            if ((i_auto && !j_auto) || (i_auto == j_auto && j < i)) {
                drop[i] = true;
                same_as[i] = j;
            }
        }
    }
    int n = 0;
    for (int i = 0; i < o->n_dev; i++) {
        if (drop[i]) {
            char what[32];
            if (vk_index[i] < 0) snprintf(what, sizeof what, "the CPU");
            else snprintf(what, sizeof what, "Vulkan device %d", vk_index[i]);
            fprintf(stderr, "bitnet-vk: --device %s is %s here, as %s is: measured once\n", o->devs[i], what,
                    o->devs[same_as[i]]);
            continue;
        }
        o->devs[n] = o->devs[i];
        vk_index[n++] = vk_index[i];
    }
    o->n_dev = n;
}

/* --- one device ---------------------------------------------------------- */

struct device_run {
    const struct bench_opts *o;
    const struct bn_model *m;
    const int32_t *tokens;
    struct bn_backend be;
    bn_engine *e;
    bool on_cpu;
    struct bn_cpu_profile prof;
    float *logits;
    double tern_bytes, head_bytes;
    double rss_peak; /* MiB, the peak before each bandwidth probe (whose buffers do not count) */
    double *bw;      /* GB/s of the probe after each timed round, [BENCH_MAX_REPS] */
    int n_bw;
    bool no_probe;   /* --bw-mib 0, or the probe failed (said once)                  */
};

/* Bytes the head reads per token as the device runs it. */
static double head_run_bytes(const struct device_run *d)
{
    const struct bn_tensor *h = d->m->output;
    if (!h) return 0.0;
    bool q8 = d->on_cpu && d->o->head_q8;
#if defined(BN_HAVE_VULKAN)
    struct bn_backend_vk_stats s;
    if (!d->on_cpu && bn_backend_vk_get_stats(&d->be, &s) == BN_OK) q8 = s.head_q8;
#endif
    return q8 ? (double)h->ne[1] * ((double)h->ne[0] + 4.0) : (double)h->nbytes;
}

/* One test's state across the rounds on a device: its timed repetitions
 * and what the backend counted during them (op timers, device time per
 * pipeline), apart from the other tests' that ran in between. */
struct test_run {
    struct bench_result *r;
    uint32_t n_prompt, n_gen; /* ppN: n_prompt = N; tgN: n_gen = N: r->samples */
                              /* and r->reps grow by one per timed repetition   */
    double wall;              /* seconds the timed repetitions took             */
    struct bn_cpu_op_stats cpu_ops[BN_CPU_OP_COUNT];
#if defined(BN_HAVE_VULKAN)
    struct vk_snapshot vk;
#endif
};

/* One repetition of a test from an empty cache; a timed one adds its speed
 * and its share of the backend's counters to t. */
static enum bn_status run_rep(struct device_run *d, struct test_run *t, bool timed, char *err, size_t len)
{
    struct bn_cpu_op_stats cpu_before[BN_CPU_OP_COUNT];
    memcpy(cpu_before, d->prof.ops, sizeof cpu_before);
#if defined(BN_HAVE_VULKAN)
    const bool vk_prof = timed && !d->on_cpu && d->o->profile;
    struct vk_snapshot before, after;
    if (vk_prof) vk_snapshot_take(&d->be, &before);
#endif
    enum bn_status st = BN_OK;
    bn_engine_reset(d->e);
    const double t0 = cli_now();
    if (t->n_prompt) {
        st = bn_engine_eval(d->e, d->tokens, t->n_prompt, false, d->logits, err, len); /* last row's logits */
    } else {
        for (uint32_t i = 0; i < t->n_gen && st == BN_OK; i++)
            st = bn_engine_eval(d->e, &d->tokens[i], 1, false, d->logits, err, len);
    }
    const double dt = cli_now() - t0;
    if (st != BN_OK || !timed) return st;
    t->r->samples[t->r->reps++] = (double)(t->n_prompt ? t->n_prompt : t->n_gen) / dt;
    t->wall += dt;
    for (int i = 0; i < BN_CPU_OP_COUNT; i++) {
        t->cpu_ops[i].seconds += d->prof.ops[i].seconds - cpu_before[i].seconds;
        t->cpu_ops[i].calls += d->prof.ops[i].calls - cpu_before[i].calls;
        t->cpu_ops[i].bytes += d->prof.ops[i].bytes - cpu_before[i].bytes;
    }
#if defined(BN_HAVE_VULKAN)
    if (vk_prof) {
        vk_snapshot_take(&d->be, &after);
        vk_snapshot_accumulate(&t->vk, &before, &after);
    }
#endif
    return BN_OK;
}

/* A test's repetitions into its result row: mean, sample standard
 * deviation, median and the samples in the order they ran, the warning on
 * a wide spread, and with --profile the per-op table. */
static int finish_test(struct device_run *d, struct test_run *t)
{
    struct bench_result *r = t->r;
    const int reps = r->reps;
    summarize(r->samples, reps, &r->mean, &r->stddev, &r->median);
    if (r->mean > 0 && r->stddev / r->mean > RELATIVE_SD_WARN)
        fprintf(stderr, "bitnet-vk: warning: %s %s: standard deviation %.1f%% of the mean (over %.0f%%): a busy "
                        "or shared machine; figures will not repeat closer than that\n",
                r->device, r->test, 100.0 * r->stddev / r->mean, 100.0 * RELATIVE_SD_WARN);
    /* A level that moved during the run (a shared host's memory system
     * changes pace for tens of seconds at a time) shows as halves that
     * differ by more than the spread: then a rerun can land outside it. */
    if (reps >= DRIFT_MIN_REPS) {
        double first, second, unused_mean, unused_sd;
        summarize(r->samples, reps / 2, &unused_mean, &unused_sd, &first);
        summarize(r->samples + reps / 2, reps - reps / 2, &unused_mean, &unused_sd, &second);
        if (fabs(first - second) > r->stddev)
            fprintf(stderr, "bitnet-vk: warning: %s %s: the speed moved during the run (median %.2f in its first half, "
                            "%.2f in its second, standard deviation %.2f): a busy or shared machine; a rerun may not "
                            "land within the standard deviation (a longer --min-time covers more of it)\n",
                    r->device, r->test, first, second, r->stddev);
    }
    if (!d->o->profile) return 0;

    const uint32_t n = t->n_prompt ? t->n_prompt : t->n_gen;
    const uint64_t tokens = (uint64_t)n * (uint64_t)reps;
    struct bench_op ops[MAX_PROFILE_OPS];
    int n_ops = 0;
    char title[256];
    if (d->on_cpu) {
        n_ops = cpu_profile_ops(t->cpu_ops, t->n_prompt == 0, ops);
        snprintf(title, sizeof title, "%s %s (%s, %d threads): %d runs, %.2f ms per token", r->device, r->test,
                 d->prof.isa, d->prof.n_threads, reps, t->wall / (double)tokens * 1e3);
    } else {
#if defined(BN_HAVE_VULKAN)
        n_ops = vk_profile_ops(&t->vk, t->n_prompt == 0, d->tern_bytes * (double)tokens,
                               head_run_bytes(d) * (double)tokens, ops);
#endif
        snprintf(title, sizeof title, "%s %s (device time per pipeline, timestamp queries): %d runs, %.2f ms per token",
                 r->device, r->test, reps, t->wall / (double)tokens * 1e3);
    }
    if (n_ops == 0) {
        fprintf(stderr, "bitnet-vk: warning: %s: no per-op times (the device has no timestamp queries)\n", r->device);
        return 0;
    }
    const double pct = bench_print_profile(stderr, title, ops, n_ops, t->wall);
    if (!d->on_cpu && t->n_prompt == 0) {
        /* Fused variants split the ternary weights over several pipelines:
         * their sum still says how fast the weights stream. Shaders that
         * read 2-bit ternary weights carry "_t2" in their names. */
        double t2_s = 0;
        for (int i = 0; i < n_ops; i++) t2_s += strstr(ops[i].name, "_t2") ? ops[i].seconds : 0.0;
        if (t2_s > 0)
            fprintf(stderr, "  ternary pipelines (*_t2*): %.1f ms, %.2f GB/s of ternary weights\n", t2_s * 1e3,
                    d->tern_bytes * (double)tokens / t2_s / 1e9);
    }
#if defined(BN_HAVE_VULKAN)
    if (!d->on_cpu) {
        /* What a forward pass costs the driver beyond the shaders' time:
         * per forward pass (one per token in decode, one per prompt in pp). */
        const double passes = t->n_prompt ? (double)reps : (double)tokens;
        fprintf(stderr, "  per %s: %.1f dispatches, %.1f barriers, %.2f submissions\n",
                t->n_prompt ? "prompt" : "token", (double)t->vk.stats.dispatches / passes,
                (double)t->vk.stats.barriers / passes, (double)t->vk.stats.submits / passes);
    }
#endif
    if (fabs(pct - 100.0) > PROFILE_COVER_WARN)
        fprintf(stderr, "bitnet-vk: warning: %s %s: the per-op times cover %.0f%% of the forward time (not within "
                        "%d%%)\n", r->device, r->test, pct, PROFILE_COVER_WARN);
    return 0;
}

/* What the device is, for the table: name, kind (lavapipe named as the CPU
 * driver it is), kernels. */
static void describe_device(struct device_run *d, struct bench_result *proto)
{
    const struct bench_opts *o = d->o;
    if (d->on_cpu) {
        bench_cpu_name(proto->device_name, sizeof proto->device_name);
        snprintf(proto->device_kind, sizeof proto->device_kind, "cpu");
        snprintf(proto->kernels, sizeof proto->kernels, "%s%s", d->prof.isa, o->head_q8 ? "+q8" : "");
        proto->threads = d->prof.n_threads;
        snprintf(proto->validation, sizeof proto->validation, "reference");
        return;
    }
    proto->threads = 1; /* a Vulkan device is driven from one thread */
    snprintf(proto->validation, sizeof proto->validation, "ok");
#if defined(BN_HAVE_VULKAN)
    struct bn_backend_vk_device_desc desc;
    struct bn_backend_vk_stats stats;
    if (bn_backend_vk_describe(&d->be, &desc) == BN_OK && bn_backend_vk_get_stats(&d->be, &stats) == BN_OK) {
        snprintf(proto->device_name, sizeof proto->device_name, "%s", desc.name);
        if (strcmp(desc.type, "cpu") == 0) {
            snprintf(proto->device_kind, sizeof proto->device_kind, "vulkan on CPU (%s)",
                     strstr(desc.driver, "llvmpipe") || strstr(desc.name, "llvmpipe") ? "lavapipe" : "CPU driver");
            fprintf(stderr, "bitnet-vk: %s is %s, a Vulkan driver that runs on the CPU: its figures are CPU figures, "
                            "not a GPU's\n", proto->device, desc.name);
        } else {
            snprintf(proto->device_kind, sizeof proto->device_kind, "vulkan %s GPU", desc.type);
        }
        snprintf(proto->kernels, sizeof proto->kernels, "spirv%s%s%s", stats.int_dot ? "+dot" : "",
                 stats.subgroup ? "+sg" : "", stats.head_q8 ? "+q8" : "");
        return;
    }
#endif
    snprintf(proto->device_name, sizeof proto->device_name, "%s", d->be.iface.name);
    snprintf(proto->device_kind, sizeof proto->device_kind, "%s", d->be.iface.name);
    snprintf(proto->kernels, sizeof proto->kernels, "-");
}

/* Weight bytes per generated token: the CPU backend's count from a tg test
 * when it ran one (it knows its repacked sizes and the int8 head), else the
 * model's, with an int8 head's bytes (a byte per weight and a float per
 * row) in place of the file's table when the head runs as one. */
static double bytes_per_token(const struct device_run *d, const struct bn_cpu_op_stats *ops, uint64_t tokens)
{
    if (d->on_cpu && tokens) {
        const uint64_t b = ops[BN_CPU_OP_MATMUL].bytes + ops[BN_CPU_OP_HEAD].bytes;
        if (b) return (double)b / (double)tokens;
    }
    return model_bytes_per_token(d->m) - d->head_bytes + (d->head_bytes > 0 ? head_run_bytes(d) : 0.0);
}

/* The device's memory bandwidth in GB/s, 0 without a probe (--bw-mib 0)
 * or when it cannot run (with a warning): the CPU's read probe at the
 * run's thread count, or the Vulkan copy shader. Below 0 (with the message
 * said) when the Vulkan device failed during it: then nothing more can
 * run on it. The probe's buffers are not the model's: the peak RSS is kept
 * before it and restarted after it, so they never count in the table's
 * peak. */
static double probe_bandwidth(struct device_run *d, const char *device, int passes)
{
    const size_t bytes = (size_t)d->o->bw_mib << 20;
    if (!bytes) return 0.0;
    d->rss_peak = fmax(d->rss_peak, bench_rss_peak_mib());
    double gbps = 0.0;
    if (d->on_cpu) {
        gbps = bench_cpu_read_bandwidth(bytes, d->prof.n_threads, passes);
        if (gbps <= 0.0)
            fprintf(stderr, "bitnet-vk: warning: %s: no bandwidth probe: %ld MiB of memory could not be mapped "
                            "(a smaller --bw-mib?)\n", device, d->o->bw_mib);
    } else {
#if defined(BN_HAVE_VULKAN)
        char err[256] = "";
        const enum bn_status st = bn_backend_vk_measure_bandwidth(&d->be, bytes, passes, &gbps, err, sizeof err);
        if (st != BN_OK) {
            cli_fail(bn_status_exit_code(st), "%s: %s", device, err);
            return -1.0;
        }
        if (gbps <= 0.0) fprintf(stderr, "bitnet-vk: warning: %s: no bandwidth probe: %s\n", device, err);
#else
        (void)device; /* only Vulkan devices are not the CPU */
#endif
    }
    bench_rss_reset();
    return gbps;
}

/* The memory system may be shared (another process, a virtual machine's
 * host), and then its pace changes for tens of seconds at a time. So the
 * bandwidth is probed after every timed round, at the same moments as the
 * tests, and rows [first, n) get the mean of those probes, their share of
 * it and the probes themselves: the share then compares decode and the
 * memory system over the same moments. A spread of the probes beyond
 * BW_DRIFT_WARN is reported, so figures that will not repeat say so.
 * Returns 0 or an exit code. */
static int bandwidth_of_rounds(const struct device_run *d, struct bench_result *res, int first, int n)
{
    if (d->n_bw == 0) return 0;
    double mean, sd, median;
    summarize(d->bw, d->n_bw, &mean, &sd, &median);
    double lo = d->bw[0], hi = d->bw[0];
    for (int i = 1; i < d->n_bw; i++) {
        lo = fmin(lo, d->bw[i]);
        hi = fmax(hi, d->bw[i]);
    }
    const char *device = res[first].device;
    if (sd > BW_DRIFT_WARN * mean)
        fprintf(stderr, "bitnet-vk: warning: %s: the measured bandwidth moved between %.1f and %.1f GB/s during the "
                        "tests (standard deviation %.0f%% of the mean; a shared memory system?): decode figures may "
                        "not repeat\n",
                device, lo, hi, 100.0 * sd / mean);
    else
        fprintf(stderr, "bitnet-vk: %s: bandwidth %.1f GB/s (%.1f to %.1f over %d rounds)\n", device, mean, lo, hi,
                d->n_bw);
    for (int i = first; i < n; i++) {
        res[i].bandwidth_gbps = mean;
        if (res[i].decode) res[i].roofline_pct = 100.0 * res[i].gbps / mean;
        if (!(res[i].bw_samples = malloc((size_t)d->n_bw * sizeof *res[i].bw_samples)))
            return cli_fail(3, "out of memory");
        memcpy(res[i].bw_samples, d->bw, (size_t)d->n_bw * sizeof *d->bw);
        res[i].n_bw_samples = d->n_bw;
    }
    return 0;
}

/* Every test on one opened device; rows appended to res. */
static int run_device(struct device_run *d, const struct bench_first_step *ref, double load_s,
                      const char *dev, struct bench_result *res, int *n_res)
{
    const struct bench_opts *o = d->o;
    struct bench_result proto;
    memset(&proto, 0, sizeof proto);
    snprintf(proto.device, sizeof proto.device, "%s", d->on_cpu ? "cpu" : dev);
    /* Checked before anything else is measured: a device that disagrees
     * gets no figures at all. */
    if (!d->on_cpu) {
        if (!ref->batch) return cli_fail(3, "bench: no CPU reference for %s", dev);
        int rc = bench_check_first_step(d->e, d->m, d->tokens, ref, dev, o->max_nmse, &proto.nmse);
        if (rc) return rc;
        fprintf(stderr, "bitnet-vk: %s matches the CPU on the first steps (NMSE %.2g, tolerance %.3g)\n", dev,
                proto.nmse, (double)o->max_nmse);
    }
    describe_device(d, &proto);
    const int first = *n_res;
    proto.load_s = load_s;
    struct test_run *tests = calloc(2 * MAX_LIST, sizeof *tests);
    d->bw = malloc(BENCH_MAX_REPS * sizeof *d->bw);
    d->no_probe = o->bw_mib == 0;
    if (!tests || !d->bw) {
        free(tests);
        free(d->bw);
        return cli_fail(3, "out of memory");
    }
    int n_tests = 0, rc = 0;
    for (int kind = 0; kind < 2 && rc == 0; kind++)
        for (int i = 0; i < (kind ? o->n_tg : o->n_pp); i++) {
            const long n = kind ? o->tg[i] : o->pp[i];
            if (n == 0 || *n_res + n_tests == MAX_RESULTS) continue;
            struct test_run *t = &tests[n_tests];
            t->r = &res[*n_res + n_tests];
            *t->r = proto;
            snprintf(t->r->test, sizeof t->r->test, "%s%ld", kind ? "tg" : "pp", n);
            t->r->decode = kind == 1;
            t->r->n_tokens = (uint32_t)n;
            t->n_prompt = kind ? 0 : (uint32_t)n;
            t->n_gen = kind ? (uint32_t)n : 0;
            n_tests++;
            t->r->reps = 0;
            if (!(t->r->samples = malloc(BENCH_MAX_REPS * sizeof *t->r->samples))) rc = cli_fail(3, "out of memory");
        }
    /* Rounds: every test once per round, so each test's repetitions are
     * spread over the whole run and meet the same moments of a shared
     * machine (the first round is the untimed warm-up), and after each
     * timed round a probe of the bandwidth. Rounds go on past -r until they
     * have taken --min-time seconds: a spread measured over a few seconds
     * misses the slower swings of a shared memory system, and then a second
     * run would not land within it. */
    char err[512];
    enum bn_status st = BN_OK;
    double t_timed = 0;
    for (long round = -1; rc == 0 && st == BN_OK && round < BENCH_MAX_REPS; round++) {
        if (round == 0) t_timed = cli_now();
        if (round >= o->reps && cli_now() - t_timed >= o->min_time) break;
        for (int i = 0; i < n_tests && st == BN_OK; i++) st = run_rep(d, &tests[i], round >= 0, err, sizeof err);
        if (st == BN_OK && round >= 0 && !d->no_probe) {
            const double g = probe_bandwidth(d, proto.device, BW_ROUND_PASSES);
            if (g < 0) rc = 3; /* the device failed: said */
            else if (g > 0) d->bw[d->n_bw++] = g;
            else d->no_probe = true;
        }
    }
    if (rc == 0 && st != BN_OK) rc = cli_fail(bn_status_exit_code(st), "%s", err);
    for (int i = 0; i < n_tests && rc == 0; i++) {
        struct test_run *t = &tests[i];
        struct bench_result *r = t->r;
        if ((rc = finish_test(d, t)) != 0) break;
        if (r->decode) {
            r->bytes_per_token = bytes_per_token(d, t->cpu_ops, (uint64_t)r->n_tokens * (uint64_t)r->reps);
            r->gbps = r->bytes_per_token * r->mean / 1e9;
        }
        (*n_res)++;
    }
    free(tests);
    if (rc == 0) rc = bandwidth_of_rounds(d, res, first, *n_res);
    free(d->bw);
    return rc;
}

int cli_bench(int argc, char **argv)
{
    struct bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    char err[512], note[256];
    enum bn_status st;
    struct bn_model *m = NULL;
    /* The devices and the plot's path are checked before any work. The
     * plot is only tried here and written at the end: a run stopped half
     * way leaves no file behind. */
    int vk_index[MAX_LIST];
    if ((rc = check_devices(&o, vk_index)) != 0) return rc;
    drop_aliases(&o, vk_index);
    struct cli_output plot = {0};
    if (o.plot) {
        if ((rc = cli_output_open(&plot, o.plot, "--plot")) != 0) return rc;
        cli_output_abort(&plot);
    }
    const double t_open = cli_now();
    if ((st = bn_model_open(o.model, &m, err, sizeof err)) != BN_OK) {
        cli_output_abort(&plot);
        return cli_fail(bn_status_exit_code(st), "%s", err);
    }
    const double open_s = cli_now() - t_open;

    long max_pp = 1, max_tg = 1;
    for (int i = 0; i < o.n_pp; i++) max_pp = o.pp[i] > max_pp ? o.pp[i] : max_pp;
    for (int i = 0; i < o.n_tg; i++) max_tg = o.tg[i] > max_tg ? o.tg[i] : max_tg;
    uint32_t n_tokens = (uint32_t)(max_pp > max_tg ? max_pp : max_tg);
    if (n_tokens < BENCH_VALIDATE_BATCH + 1) n_tokens = BENCH_VALIDATE_BATCH + 1;
    const size_t V = m->hp.n_vocab;
    int32_t *tokens = malloc(n_tokens * sizeof *tokens);
    float *logits = malloc(V * sizeof *logits);
    struct bench_result *res = calloc(MAX_RESULTS, sizeof *res);
    struct bench_first_step ref = {0};
    if (!tokens || !res || !logits) {
        rc = cli_fail(3, "out of memory");
        goto done;
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < n_tokens; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((seed >> 33) % m->hp.n_vocab);
    }

    /* The CPU reference first, before any device's memory is measured. */
    const char *const *devs = o.devs;
    const int n_dev = o.n_dev;
    bool need_ref = false;
    for (int i = 0; i < n_dev; i++) need_ref |= vk_index[i] >= 0;
    if (need_ref) {
        ref.batch = malloc(V * sizeof *ref.batch);
        ref.step = malloc(V * sizeof *ref.step);
        if (!ref.batch || !ref.step) {
            rc = cli_fail(3, "out of memory");
            goto done;
        }
        if ((rc = bench_make_reference(m, tokens, &ref)) != 0) goto done;
    }

    int n_res = 0;
    bool header = false, cpu_measured = false;
    for (int di = 0; di < n_dev && rc == 0; di++) {
        /* Thread counts apply to whatever runs on the CPU backend, "auto"
         * falling back to it included: known once the first one is open. */
        int n_runs = 1;
        for (int ti = 0; ti < n_runs && rc == 0; ti++) {
            struct device_run d = {.o = &o, .m = m, .tokens = tokens, .logits = logits};
            d.tern_bytes = ternary_bytes(m);
            d.head_bytes = m->output ? (double)m->output->nbytes : 0.0;
            struct bn_backend_cpu_opts cpu_opts = {.n_threads = (int)o.threads[ti], .head_q8 = o.head_q8,
                                                   .profile = &d.prof, .gpu_profile = o.profile};
            bench_rss_reset();
            const double t_load = cli_now();
            struct bn_engine_params ep = bn_engine_default_params();
            ep.n_ctx = n_tokens + 1;
            ep.n_batch = (uint32_t)max_pp;
            if ((st = cli_open_engine(devs[di], m, &cpu_opts, &ep, &d.be, &d.e, note, sizeof note, err, sizeof err)) !=
                BN_OK) {
                rc = cli_fail(bn_status_exit_code(st), "%s", err);
                break;
            }
            if (note[0] && ti == 0) fprintf(stderr, "bitnet-vk: %s\n", note); /* once, not per -t */
            d.on_cpu = strcmp(d.be.iface.name, "cpu") == 0;
            if (d.on_cpu && ti == 0 && cpu_measured) {
                /* "auto" whose GPU could not run the model, with "cpu" in the list */
                fprintf(stderr, "bitnet-vk: --device %s: the CPU, measured already: skipped\n", devs[di]);
                bn_engine_destroy(d.e);
                d.be.iface.destroy(d.be.ctx);
                break;
            }
            if (d.on_cpu) n_runs = o.n_threads;
            cpu_measured |= d.on_cpu;
            const double load_s = open_s + (cli_now() - t_load);
            const int first = n_res;
            rc = run_device(&d, &ref, load_s, devs[di], res, &n_res);
            double dev_mib = 0;
#if defined(BN_HAVE_VULKAN)
            struct bn_backend_vk_stats vs;
            if (!d.on_cpu && bn_backend_vk_get_stats(&d.be, &vs) == BN_OK) dev_mib = (double)vs.device_bytes / 1048576.0;
#endif
            const double rss = fmax(d.rss_peak, bench_rss_peak_mib());
            bn_engine_destroy(d.e);
            d.be.iface.destroy(d.be.ctx);
            for (int i = first; i < n_res; i++) {
                res[i].peak_rss_mib = rss;
                res[i].device_mib = dev_mib;
                if (rc == 0 && !o.json && !o.csv) {
                    if (!header) bench_print_table_header(stdout);
                    header = true;
                    bench_print_table_row(stdout, &res[i]);
                    fflush(stdout);
                }
            }
        }
    }
    /* The plot before JSON or CSV: a plot that cannot be written then
     * fails the run before its figures look complete on stdout. */
    if (rc == 0 && o.plot && (rc = cli_output_open(&plot, o.plot, "--plot")) == 0) {
        const char *base = strrchr(o.model, '/');
        char title[256];
        snprintf(title, sizeof title, "bitnet-vk bench: %s", base ? base + 1 : o.model);
        rc = bench_write_svg(&plot, res, n_res, title);
    }
    if (rc == 0 && o.json) bench_print_json(stdout, res, n_res);
    if (rc == 0 && o.csv) bench_print_csv(stdout, res, n_res);
done:
    cli_output_abort(&plot);
    free(ref.batch);
    free(ref.step);
    for (int i = 0; res && i < MAX_RESULTS; i++) {
        free(res[i].samples);
        free(res[i].bw_samples);
    }
    free(res);
    free(logits);
    free(tokens);
    bn_model_close(m);
    return rc;
}
