/*
 * bench.h - what the files of `bitnet-vk bench` share: one result row per
 * device x thread count x test, the per-op profile rows, and the helpers
 * that measure the machine (host/bench_probe.c), write the results
 * (host/bench_output.c) and draw them (host/bench_plot.c). The command
 * itself, which runs the tests, is host/cli_bench.c.
 */
#ifndef BN_BENCH_H
#define BN_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "engine.h"
#include "model.h"

/* One test on one device: llama-bench's ppN (N prompt tokens as one batch)
 * or tgN (N single-token decode steps), mean and sample standard deviation
 * of the tokens per second of the timed repetitions. */
struct bench_result {
    char device[48];          /* as named on the command line: "cpu", "vulkan:0", "lavapipe" */
    char device_name[256];    /* what it is: the CPU model, or the Vulkan device name        */
    char device_kind[40];     /* "cpu", "vulkan-gpu", "vulkan-cpu (lavapipe)", ...             */
    char kernels[24];         /* CPU kernel set ("avx512", "+q8" for the int8 head); "spirv"  */
    char test[24];            /* "pp128", "tg32"                                               */
    bool decode;              /* tg: one token per forward pass                                */
    uint32_t n_tokens;
    int threads;              /* CPU threads; 1 for a Vulkan device, driven from one thread    */
    int reps;
    double mean, stddev;      /* tokens per second                                             */
    double median;            /* of the repetitions: what repeated runs should agree on        */
    double *samples;          /* tokens/s of each timed repetition, in the order they ran      */
    double bytes_per_token;   /* weight bytes read per generated token (tg only, else 0)        */
    double gbps;              /* bytes_per_token x mean (tg only)                               */
    double bandwidth_gbps;    /* the device's measured memory bandwidth, the mean of a probe
                                 after each timed round (0: not measured)                       */
    double *bw_samples;       /* GB/s of each of those probes, in order                         */
    int n_bw_samples;
    double roofline_pct;      /* gbps / bandwidth_gbps x 100 (tg only)                          */
    double load_s;            /* model open + backend (weights repacked, uploaded) + engine     */
    double peak_rss_mib;      /* host resident memory, peak while this device ran               */
    double device_mib;        /* device memory the Vulkan backend holds; 0 on the CPU           */
    char validation[16];      /* "reference" (cpu), "ok" (matched the CPU first step)           */
    double nmse;              /* of the validated first step against the CPU; 0 for the CPU    */
};

/* One row of a per-op profile: a CPU op kind or a Vulkan pipeline. */
struct bench_op {
    const char *name;
    uint64_t calls;
    double seconds;
    double bytes;             /* weight bytes read, when known (else 0) */
};

/* Most CPU threads bench runs (-t), and so the read probe too. */
#define BENCH_MAX_THREADS 1024

/* Host memory read bandwidth in GB/s (1e9 bytes): n_threads threads each
 * stream a slice of a `bytes` buffer; the fastest of reps passes after a
 * warm-up (the best rate, as STREAM reports it: on a shared or virtual
 * machine a mean drags in other tenants' traffic and can fall below what
 * decode itself reaches). 0 when the buffer cannot be allocated.
 * n_threads is capped at BENCH_MAX_THREADS. */
double bench_cpu_read_bandwidth(size_t bytes, int n_threads, int reps);

/* Peak resident set of this process: bench_rss_reset() makes the current
 * RSS the new peak (Linux /proc/self/clear_refs; a no-op elsewhere),
 * bench_rss_peak_mib() reads it back (0 if unknown). */
void bench_rss_reset(void);
double bench_rss_peak_mib(void);

/* The CPU model name ("AMD EPYC 9R45"), or "cpu" if unknown. */
void bench_cpu_name(char *out, size_t len);

/* Prints the per-op table (op, calls, total ms, share, GB/s) and the line
 * "ops X ms of Y ms forward (Z%)" on f; returns the share in percent. */
double bench_print_profile(FILE *f, const char *title, struct bench_op *ops, int n_ops, double forward_s);

/* The first-step check of a non-CPU device (host/bench_validate.c): a
 * BENCH_VALIDATE_BATCH-token batch, then one decode step, whose logits must
 * match the CPU backend's within NMSE max_nmse (--max-nmse, by default
 * BENCH_VALIDATE_NMSE_MAX: bench_validate.c says why that value) with the
 * same argmax. */
#define BENCH_VALIDATE_BATCH 4
#define BENCH_VALIDATE_NMSE_MAX 1e-2
struct bench_first_step {
    float *batch; /* logits of the last of the batch's tokens (n_vocab) */
    float *step;  /* logits of the decode step after them (n_vocab)     */
};
/* Fills ref (allocated by the caller) from the CPU backend: all cores, the
 * file's head. tokens: at least BENCH_VALIDATE_BATCH + 1. Returns 0 or an
 * exit code after printing the error. */
int bench_make_reference(const struct bn_model *m, const int32_t *tokens, struct bench_first_step *ref);
/* Runs the first steps on e (then resets it) and compares them with ref;
 * *worst = the larger NMSE. Returns 0, or 3 after a one-line message. */
int bench_check_first_step(bn_engine *e, const struct bn_model *m, const int32_t *tokens,
                           const struct bench_first_step *ref, const char *dev, double max_nmse, double *worst);

/* Output formats of the whole run. */
void bench_print_table_header(FILE *f);
void bench_print_table_row(FILE *f, const struct bench_result *r);
void bench_print_json(FILE *f, const struct bench_result *r, int n);
void bench_print_csv(FILE *f, const struct bench_result *r, int n);

/* A bar chart of tokens/s per test and device with error bars and the
 * roofline (bandwidth / bytes per token) marked on every tg bar, as SVG,
 * written to out and committed (host/cli_output.h). The caller opens out
 * before the run, so a path that cannot be written fails before minutes of
 * work. Returns 0, or an exit code after printing the error (nothing is
 * left at the path then). */
struct cli_output;
int bench_write_svg(struct cli_output *out, const struct bench_result *r, int n, const char *title);

#endif
