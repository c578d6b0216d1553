/*
 * `bench`: prompt processing and generation speed, llama-bench style.
 *
 *   ppN: N prompt tokens in one batch from an empty cache, with the logits of
 *        the last one (what a prompt costs before the first sampled token);
 *   tgN: N single-token decode steps from an empty cache, each with logits.
 *
 * Each test runs once untimed (warm-up: page faults, caches, clocks), then
 * -r times; the table shows the mean and standard deviation of the
 * per-repetition tokens per second. Devices are benchmarked one after the
 * other from the --device list, each through bn_backend_select, so any
 * backend the build has takes part; thread counts (-t 1,2) apply to the CPU.
 * On the CPU the backend's own op timing gives the weight bytes read per
 * token (hence GB/s) and, with --profile, a per-op table.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "backend_cpu.h"
#include "cli.h"
#include "engine.h"
#include "model.h"

#define MAX_LIST 16
#define MAX_RESULTS (MAX_LIST * MAX_LIST * 2 * MAX_LIST) /* devices x threads x tests */

struct bench_opts {
    const char *model;
    long pp[MAX_LIST], tg[MAX_LIST], threads[MAX_LIST];
    int n_pp, n_tg, n_threads;
    char devices[256];
    long reps;
    bool head_q8;
    bool json;
    bool profile;
};

struct result {
    char device[48];
    char test[24];
    double mean, stddev;
    int threads;
    double gbps; /* weight bytes per token x tokens per second; 0 if unknown */
};

static void print_help(void)
{
    printf("usage: bitnet-vk bench -m MODEL [options]\n"
           "  -p N[,N...]        prompt-processing tests: N tokens in one batch (default 128; 0 = none)\n"
           "  -n N[,N...]        generation tests: N single-token steps (default 32; 0 = none)\n"
           "  -r N               repetitions after one warm-up run (default 3)\n"
           "  -t N[,N...]        CPU threads (default: the physical cores)\n"
           "      --device D[,D] devices to measure, one after the other (default cpu)\n"
           "      --head f16|q8  CPU head: the file's table (default) or an int8 copy made at load\n"
           "      --profile      per-op time table (CPU) after each test, on stderr\n"
           "      --json         one JSON array of {device, test, tokens_per_s, stddev, threads} on stdout\n"
           "                     (threads: the CPU threads; 1 for a GPU device, driven from one thread)\n");
}

/* "128" or "1,2,4" into list; false with a message on a bad entry. */
static bool parse_list(const char *flag, const char *s, long min, long max, long *list, int *n)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) {
        cli_fail(1, "%s: list too long", flag);
        return false;
    }
    strcpy(buf, s);
    *n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == MAX_LIST) {
            cli_fail(1, "%s: at most %d values", flag, MAX_LIST);
            return false;
        }
        if (!cli_parse_long(flag, tok, min, max, &list[*n])) return false;
        (*n)++;
    }
    if (*n == 0) {
        cli_fail(1, "%s: no value", flag);
        return false;
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
    o->reps = 3;
    strcpy(o->devices, "cpu");
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
            if (!parse_list(a, v, 1, 1024, o->threads, &o->n_threads)) return 1;
        } else if (!strcmp(a, "-r")) {
            VALUE();
            if (!cli_parse_long(a, v, 1, 1000, &o->reps)) return 1;
        } else if (!strcmp(a, "--device")) {
            VALUE();
            if (strlen(v) >= sizeof o->devices) return cli_fail(1, "--device: list too long");
            strcpy(o->devices, v);
        } else if (!strcmp(a, "--head")) {
            VALUE();
            if (!strcmp(v, "q8")) o->head_q8 = true;
            else if (!strcmp(v, "f16")) o->head_q8 = false;
            else return cli_fail(1, "--head: '%s' is not f16 or q8", v);
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--profile")) {
            o->profile = true;
        } else {
            return cli_fail(1, "bench: unknown option '%s' (try --help)", a);
        }
#undef VALUE
    }
    if (!o->model) return cli_fail(1, "-m MODEL is required");
    return 0;
}

static void mean_stddev(const double *x, int n, double *mean, double *sd)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(ss / (n - 1)) : 0.0;
}

static uint64_t prof_bytes(const struct bn_cpu_profile *p)
{
    return p->ops[BN_CPU_OP_MATMUL].bytes + p->ops[BN_CPU_OP_HEAD].bytes;
}

/* The per-op table; GB/s (weight bytes over op time) only for decode,
 * where each weight is read once per token. */
static void print_profile(const struct bn_cpu_profile *p, const char *test, double wall, uint64_t tokens, bool decode)
{
    double total = 0;
    for (int i = 0; i < BN_CPU_OP_COUNT; i++) total += p->ops[i].seconds;
    fprintf(stderr, "profile %s (%s, %d threads): %.1f ms per token, ops %.1f%% of wall time\n", test, p->isa,
            p->n_threads, wall / (double)tokens * 1e3, 100.0 * total / wall);
    fprintf(stderr, "  %-10s %8s %12s %7s %8s\n", "op", "calls", "ms/token", "%", "GB/s");
    for (int i = 0; i < BN_CPU_OP_COUNT; i++) {
        const struct bn_cpu_op_stats *s = &p->ops[i];
        if (!s->calls) continue;
        char gb[16] = "";
        if (decode && s->bytes && s->seconds > 0) snprintf(gb, sizeof gb, "%.1f", (double)s->bytes / s->seconds / 1e9);
        fprintf(stderr, "  %-10s %8llu %12.3f %6.1f%% %8s\n", bn_cpu_op_name((enum bn_cpu_op)i),
                (unsigned long long)s->calls, s->seconds / (double)tokens * 1e3, 100.0 * s->seconds / wall, gb);
    }
}

/* One test, warm-up + reps; n_prompt > 0: ppN, else tgN with n_gen steps. */
static int run_test(bn_engine *e, const int32_t *tokens, uint32_t n_prompt, uint32_t n_gen, long reps, float *logits,
                    struct bn_cpu_profile *prof, const struct bench_opts *o, struct result *r)
{
    char err[512];
    enum bn_status st;
    double *tps = calloc((size_t)reps, sizeof *tps);
    if (!tps) return cli_fail(3, "out of memory");
    const uint32_t n = n_prompt ? n_prompt : n_gen;
    double wall = 0;
    for (long rep = -1; rep < reps; rep++) {
        if (rep == 0 && prof) memset(prof->ops, 0, sizeof prof->ops); /* count the timed runs only */
        bn_engine_reset(e);
        const double t0 = cli_now();
        if (n_prompt) {
            st = bn_engine_eval(e, tokens, n_prompt, false, logits, err, sizeof err); /* the last row's logits */
        } else {
            st = BN_OK;
            for (uint32_t i = 0; i < n_gen && st == BN_OK; i++) st = bn_engine_eval(e, &tokens[i], 1, false, logits, err, sizeof err);
        }
        const double dt = cli_now() - t0;
        if (st != BN_OK) {
            free(tps);
            return cli_fail(bn_status_exit_code(st), "%s", err);
        }
        if (rep >= 0) {
            tps[rep] = n / dt;
            wall += dt;
        }
    }
    mean_stddev(tps, (int)reps, &r->mean, &r->stddev);
    free(tps);
    r->gbps = 0;
    if (prof) {
        const double bytes_per_token = (double)prof_bytes(prof) / (double)((uint64_t)n * (uint64_t)reps);
        if (!n_prompt) r->gbps = bytes_per_token * r->mean / 1e9;
        if (o->profile) print_profile(prof, r->test, wall, (uint64_t)n * (uint64_t)reps, n_prompt == 0);
    }
    return 0;
}

int cli_bench(int argc, char **argv)
{
    struct bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0) return rc < 0 ? 0 : rc;
    char err[512], note[256];
    enum bn_status st;
    struct bn_model *m = NULL;
    if ((st = bn_model_open(o.model, &m, err, sizeof err)) != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);

    long max_pp = 1, max_tg = 1;
    for (int i = 0; i < o.n_pp; i++) max_pp = o.pp[i] > max_pp ? o.pp[i] : max_pp;
    for (int i = 0; i < o.n_tg; i++) max_tg = o.tg[i] > max_tg ? o.tg[i] : max_tg;
    const uint32_t n_tokens = (uint32_t)(max_pp > max_tg ? max_pp : max_tg);
    int32_t *tokens = malloc(n_tokens * sizeof *tokens);
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof *logits);
    struct result *res = calloc(MAX_RESULTS, sizeof *res);
    if (!tokens || !res || !logits) {
        free(tokens);
        free(logits);
        free(res);
        bn_model_close(m);
        return cli_fail(3, "out of memory");
    }
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (uint32_t i = 0; i < n_tokens; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        tokens[i] = (int32_t)((seed >> 33) % m->hp.n_vocab);
    }

    int n_res = 0;
    rc = 0;
    /* the device list, split once up front (backends may use strtok too) */
    char devbuf[256], *devs[MAX_LIST];
    int n_dev = 0;
    strcpy(devbuf, o.devices);
    for (char *save = NULL, *d = strtok_r(devbuf, ",", &save); d && n_dev < MAX_LIST; d = strtok_r(NULL, ",", &save))
        devs[n_dev++] = d;
    for (int di = 0; di < n_dev && rc == 0; di++) {
        const char *dev = devs[di];
        const bool cpu = strcmp(dev, "cpu") == 0;
        for (int ti = 0; ti < (cpu ? o.n_threads : 1) && rc == 0; ti++) {
            struct bn_cpu_profile prof;
            memset(&prof, 0, sizeof prof);
            struct bn_backend_cpu_opts cpu_opts = {.n_threads = (int)o.threads[ti], .head_q8 = o.head_q8, .profile = &prof};
            struct bn_backend be = {0};
            if ((st = bn_backend_select(dev, m, &cpu_opts, &be, note, sizeof note, err, sizeof err)) != BN_OK) {
                rc = cli_fail(bn_status_exit_code(st), "%s", err);
                break;
            }
            if (note[0]) fprintf(stderr, "bitnet-vk: %s\n", note);
            const bool on_cpu = strcmp(be.iface.name, "cpu") == 0;
            struct bn_engine_params ep = bn_engine_default_params();
            ep.n_ctx = n_tokens + 1;
            ep.n_batch = (uint32_t)max_pp;
            bn_engine *e = NULL;
            if ((st = bn_engine_create(m, &be, &ep, &e, err, sizeof err)) != BN_OK) {
                rc = cli_fail(bn_status_exit_code(st), "%s", err);
                be.iface.destroy(be.ctx);
                break;
            }
            const int threads = on_cpu ? prof.n_threads : 1; /* a GPU run drives the device from one thread */
            for (int kind = 0; kind < 2 && rc == 0; kind++)
                for (int i = 0; i < (kind ? o.n_tg : o.n_pp) && rc == 0; i++) {
                    const long n = kind ? o.tg[i] : o.pp[i];
                    if (n == 0 || n_res == MAX_RESULTS) continue;
                    struct result *r = &res[n_res];
                    if (on_cpu) snprintf(r->device, sizeof r->device, "cpu");
                    else snprintf(r->device, sizeof r->device, "%s", dev);
                    snprintf(r->test, sizeof r->test, "%s%ld", kind ? "tg" : "pp", n);
                    r->threads = threads;
                    rc = run_test(e, tokens, kind ? 0 : (uint32_t)n, kind ? (uint32_t)n : 0, o.reps, logits,
                                  on_cpu ? &prof : NULL, &o, r);
                    if (rc == 0) {
                        if (!o.json) {
                            if (n_res == 0) {
                                printf("| %-12s | %-12s | %7s | %-6s | %20s | %7s |\n", "device", "kernels", "threads", "test",
                                       "t/s", "GB/s");
                                printf("| %-12s | %-12s | %7s | %-6s | %20s | %7s |\n", "---", "---", "---:", "---", "---:", "---:");
                            }
                            char gb[16] = "";
                            if (r->gbps > 0) snprintf(gb, sizeof gb, "%.1f", r->gbps);
                            char kern[24];
                            snprintf(kern, sizeof kern, "%s%s", on_cpu ? prof.isa : "-", on_cpu && o.head_q8 ? "+q8" : "");
                            printf("| %-12s | %-12s | %7d | %-6s | %10.2f ± %7.2f | %7s |\n", r->device, kern, r->threads,
                                   r->test, r->mean, r->stddev, gb);
                            fflush(stdout);
                        }
                        n_res++;
                    }
                }
            bn_engine_destroy(e);
            be.iface.destroy(be.ctx);
        }
    }
    if (rc == 0 && o.json) {
        printf("[\n");
        for (int i = 0; i < n_res; i++)
            printf("  {\"device\": \"%s\", \"test\": \"%s\", \"tokens_per_s\": %.3f, \"stddev\": %.3f, \"threads\": %d}%s\n",
                   res[i].device, res[i].test, res[i].mean, res[i].stddev, res[i].threads, i + 1 < n_res ? "," : "");
        printf("]\n");
    }
    free(res);
    free(logits);
    free(tokens);
    bn_model_close(m);
    return rc;
}
