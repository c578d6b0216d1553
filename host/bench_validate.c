/*
 * bench_validate.c - before `bitnet-vk bench` times a device other than the
 * CPU, the device must reproduce the CPU backend's first steps: a
 * BENCH_VALIDATE_BATCH-token batch (the prompt path), then one decode step
 * (the generation path). A device that disagrees is not timed and nothing
 * is reported: a fast wrong answer is not a speed.
 *
 * Tolerance (the default of --max-nmse, BENCH_VALIDATE_NMSE_MAX): honest runs differ from the
 * CPU by float summation order and by the int8 activation roundings that
 * flips (a value a hair from .5 rounds the other way); through many layers
 * of random weights such flips grow. Measured: NMSE 5e-14 on the trained 4M
 * model, 2.5e-3 .. 3.5e-3 on the 2B4T-shaped random model (30 layers; the
 * committed Vulkan backend as well). A real bug lands far above: logits of
 * the wrong row give 0.8, wrong weights about 2.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "backend.h"
#include "bench.h"
#include "cli.h"

static uint32_t argmax(const float *x, uint32_t n)
{
    uint32_t best = 0;
    for (uint32_t i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

/* Whether logits match the reference: NMSE (sum of squared differences over
 * the reference's sum of squares) at most max_nmse, and the same
 * argmax, unless the reference itself has a near-tie there: its gap
 * between its top logit and the device's pick is below the RMS difference
 * of the two vectors, which rounding can flip. */
static bool logits_match(const float *got, const float *ref, uint32_t n, double max_nmse, double *nmse, char *why,
                         size_t whylen)
{
    double num = 0, den = 0;
    for (uint32_t i = 0; i < n; i++) {
        const double d = (double)got[i] - (double)ref[i];
        num += d * d;
        den += (double)ref[i] * (double)ref[i];
    }
    *nmse = den > 0 ? num / den : num;
    if (!(*nmse <= max_nmse)) {
        snprintf(why, whylen, "NMSE %.3g > %.3g", *nmse, max_nmse);
        return false;
    }
    const uint32_t a = argmax(got, n), b = argmax(ref, n);
    if (a != b && (double)(ref[b] - ref[a]) > sqrt(num / n)) {
        snprintf(why, whylen, "argmax %u, the CPU's %u (gap %.3g)", a, b, (double)(ref[b] - ref[a]));
        return false;
    }
    return true;
}

/* The first steps on engine e: a BENCH_VALIDATE_BATCH-token batch, then one decode
 * step; their logits into batch and step. */
static enum bn_status first_steps(bn_engine *e, const int32_t *tokens, float *batch, float *step, char *err,
                                  size_t errlen)
{
    bn_engine_reset(e);
    enum bn_status st = bn_engine_eval(e, tokens, BENCH_VALIDATE_BATCH, false, batch, err, errlen);
    if (st == BN_OK) st = bn_engine_eval(e, tokens + BENCH_VALIDATE_BATCH, 1, false, step, err, errlen);
    bn_engine_reset(e);
    return st;
}

/* The CPU backend's first steps (all cores, the file's head). Returns 0 or
 * an exit code after printing the error. */
int bench_make_reference(const struct bn_model *m, const int32_t *tokens, struct bench_first_step *ref)
{
    char err[512];
    struct bn_backend be;
    struct bn_backend_cpu_opts co = {0};
    enum bn_status st = bn_backend_select("cpu", m, &co, &be, NULL, 0, err, sizeof err);
    if (st != BN_OK) return cli_fail(bn_status_exit_code(st), "%s", err);
    struct bn_engine_params ep = bn_engine_default_params();
    ep.n_ctx = BENCH_VALIDATE_BATCH + 1;
    ep.n_batch = BENCH_VALIDATE_BATCH;
    bn_engine *e = NULL;
    if ((st = bn_engine_create(m, &be, &ep, &e, err, sizeof err)) == BN_OK)
        st = first_steps(e, tokens, ref->batch, ref->step, err, sizeof err);
    bn_engine_destroy(e);
    be.iface.destroy(be.ctx);
    return st == BN_OK ? 0 : cli_fail(bn_status_exit_code(st), "%s", err);
}

/* Runs the device's first steps and compares them with the reference.
 * Returns 0, or 3 after a one-line message: nothing may be reported. */
int bench_check_first_step(bn_engine *e, const struct bn_model *m, const int32_t *tokens,
                           const struct bench_first_step *ref, const char *dev, double max_nmse, double *worst)
{
    char err[512], why[160];
    const uint32_t V = m->hp.n_vocab;
    float *batch = malloc((size_t)V * sizeof *batch), *step = malloc((size_t)V * sizeof *step);
    if (!batch || !step) {
        free(batch);
        free(step);
        return cli_fail(3, "out of memory");
    }
    int rc = 0;
    double nb = 0, ns = 0;
    enum bn_status st = first_steps(e, tokens, batch, step, err, sizeof err);
    if (st != BN_OK) rc = cli_fail(bn_status_exit_code(st), "%s", err);
    else if (!logits_match(batch, ref->batch, V, max_nmse, &nb, why, sizeof why))
        rc = cli_fail(3, "bench: %s disagrees with the CPU on a %d-token batch (%s); not reporting its speed", dev,
                      BENCH_VALIDATE_BATCH, why);
    else if (!logits_match(step, ref->step, V, max_nmse, &ns, why, sizeof why))
        rc = cli_fail(3, "bench: %s disagrees with the CPU on a decode step (%s); not reporting its speed", dev, why);
    *worst = nb > ns ? nb : ns;
    free(batch);
    free(step);
    return rc;
}
