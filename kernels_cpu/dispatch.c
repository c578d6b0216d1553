/*
 * Instruction-set detection and the kernel tables (dispatch.h).
 *
 * The chosen table is kept in one static pointer, set once under
 * pthread_once: the library's only global state. It never changes after the
 * first call, so readers need no lock.
 */
#include "dispatch.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "kernels_isa.h"

#if defined(BN_KERNELS_X86)
#include <cpuid.h>
#endif
#if defined(BN_KERNELS_NEON) && defined(__linux__)
#include <sys/auxv.h>
#endif

static const struct bn_cpu_kernels table_scalar = {
    .isa = BN_CPU_SCALAR,
    .name = "scalar",
    .ternary_gemm = bn_ternary_gemm_scalar,
    .act_sums = bn_act_sums_scalar,
    .norm_quantize_row = bn_norm_quantize_row_scalar,
    .rmsnorm_row = bn_rmsnorm_row_scalar,
    .head_f16 = bn_head_f16_scalar,
    .head_q8 = bn_head_q8_scalar,
    .dot_f32 = bn_dot_f32_scalar,
    .attention_head = bn_attention_head_scalar,
    .fp32_to_fp16 = bn_fp32_to_fp16_scalar,
    .fp16_to_fp32 = bn_fp16_to_fp32_scalar,
    .relu2_mul = bn_relu2_mul_scalar,
    .silu_mul = bn_silu_mul_scalar,
};

/* A table from the functions named bn_<op>_<ops>, the ternary ones from _<tern>. */
#define BN_TABLE(ISA, ops, tern, label)                                                                            \
    {                                                                                                              \
        .isa = ISA, .name = label, .ternary_gemm = bn_ternary_gemm_##tern, .act_sums = bn_act_sums_##tern,         \
        .norm_quantize_row = bn_norm_quantize_row_##ops, .rmsnorm_row = bn_rmsnorm_row_##ops,                      \
        .head_f16 = bn_head_f16_##ops, .head_q8 = bn_head_q8_##ops, .dot_f32 = bn_dot_f32_##ops,                   \
        .attention_head = bn_attention_head_##ops, .fp32_to_fp16 = bn_fp32_to_fp16_##ops,                          \
        .fp16_to_fp32 = bn_fp16_to_fp32_##ops, .relu2_mul = bn_relu2_mul_##ops, .silu_mul = bn_silu_mul_##ops,     \
    }

#if defined(BN_KERNELS_X86)
static const struct bn_cpu_kernels table_avx2 = BN_TABLE(BN_CPU_AVX2, avx2, avx2, "avx2");
static const struct bn_cpu_kernels table_avx512 = BN_TABLE(BN_CPU_AVX512, avx512, avx512, "avx512");
#endif
#if defined(BN_KERNELS_NEON)
static const struct bn_cpu_kernels table_neon = BN_TABLE(BN_CPU_NEON, neon, neon, "neon");
static const struct bn_cpu_kernels table_neon_dotprod = BN_TABLE(BN_CPU_NEON_DOTPROD, neon, neon_dotprod, "neon-dotprod");
#endif

static const char *const isa_names[BN_CPU_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon", "neon-dotprod"};

#if defined(BN_KERNELS_X86)
/* XCR0: which register states the OS saves on a context switch. Without
 * the YMM (and, for AVX-512, opmask/ZMM) bits the instructions fault even
 * when cpuid lists them. */
static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static bool cpu_has(enum bn_cpu_isa isa)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
    const bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
    if (!(osxsave && avx && fma && f16c)) return isa == BN_CPU_SCALAR;
    const uint64_t xcr0 = read_xcr0();
    if ((xcr0 & 0x6) != 0x6) return isa == BN_CPU_SCALAR; /* XMM + YMM state */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return isa == BN_CPU_SCALAR;
    const bool avx2 = b & (1u << 5);
    const bool avx512 = (b & (1u << 16)) /* F */ && (b & (1u << 30)) /* BW */ && (b & (1u << 31)) /* VL */ &&
                        (c & (1u << 11)) /* VNNI */ && (xcr0 & 0xe0) == 0xe0 /* opmask, ZMM0-15, ZMM16-31 */;
    switch (isa) {
    case BN_CPU_SCALAR: return true;
    case BN_CPU_AVX2: return avx2;
    case BN_CPU_AVX512: return avx2 && avx512;
    default: return false;
    }
}
#elif defined(BN_KERNELS_NEON)
static bool cpu_has(enum bn_cpu_isa isa)
{
    switch (isa) {
    case BN_CPU_SCALAR:
    case BN_CPU_NEON: return true; /* Advanced SIMD is part of AArch64 */
    case BN_CPU_NEON_DOTPROD:
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
        return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
        return false;
#endif
    default: return false;
    }
}
#else
static bool cpu_has(enum bn_cpu_isa isa) { return isa == BN_CPU_SCALAR; }
#endif

static const struct bn_cpu_kernels *table_of(enum bn_cpu_isa isa)
{
    switch (isa) {
    case BN_CPU_SCALAR: return &table_scalar;
#if defined(BN_KERNELS_X86)
    case BN_CPU_AVX2: return &table_avx2;
    case BN_CPU_AVX512: return &table_avx512;
#endif
#if defined(BN_KERNELS_NEON)
    case BN_CPU_NEON: return &table_neon;
    case BN_CPU_NEON_DOTPROD: return &table_neon_dotprod;
#endif
    default: return NULL;
    }
}

const struct bn_cpu_kernels *bn_cpu_kernels_get(enum bn_cpu_isa isa)
{
    if ((unsigned)isa >= BN_CPU_ISA_COUNT || !cpu_has(isa)) return NULL;
    return table_of(isa);
}

/* Preference order, widest first; the families never mix on one machine. */
static const enum bn_cpu_isa order[] = {BN_CPU_AVX512, BN_CPU_AVX2, BN_CPU_NEON_DOTPROD, BN_CPU_NEON, BN_CPU_SCALAR};

static int family(enum bn_cpu_isa isa)
{
    return isa == BN_CPU_AVX2 || isa == BN_CPU_AVX512 ? 1 : isa == BN_CPU_NEON || isa == BN_CPU_NEON_DOTPROD ? 2 : 0;
}

/* The best table at or below `want` in its family (scalar is below all). */
static const struct bn_cpu_kernels *best_at_or_below(enum bn_cpu_isa want)
{
    bool reached = false;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (order[i] == want) reached = true;
        if (reached && family(order[i]) == family(want) && bn_cpu_kernels_get(order[i])) return table_of(order[i]);
    }
    return &table_scalar;
}

static const struct bn_cpu_kernels *best_overall(void)
{
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (bn_cpu_kernels_get(order[i])) return table_of(order[i]);
    return &table_scalar;
}

static bool parse_isa(const char *name, enum bn_cpu_isa *out)
{
    for (int i = 0; i < BN_CPU_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) {
            *out = (enum bn_cpu_isa)i;
            return true;
        }
    return false;
}

/* The one-time choice (see the header comment of this file). */
static pthread_once_t chosen_once = PTHREAD_ONCE_INIT;
static const struct bn_cpu_kernels *chosen;
static char chosen_note[160];

static void choose(void)
{
    const char *env = getenv("BITNET_CPU");
    enum bn_cpu_isa want;
    chosen = best_overall();
    if (!env || !*env || strcmp(env, "auto") == 0) return;
    if (!parse_isa(env, &want)) {
        snprintf(chosen_note, sizeof chosen_note, "BITNET_CPU=%.32s is not scalar, avx2, avx512, neon or neon-dotprod: using %s",
                 env, chosen->name);
        return;
    }
    chosen = best_at_or_below(want);
    if (chosen->isa != want)
        snprintf(chosen_note, sizeof chosen_note, "BITNET_CPU=%s: this CPU or build lacks it, using %s", env,
                 chosen->name);
}

const struct bn_cpu_kernels *bn_cpu_kernels_best(void)
{
    pthread_once(&chosen_once, choose);
    return chosen;
}

const char *bn_cpu_kernels_note(void)
{
    pthread_once(&chosen_once, choose);
    return chosen_note;
}

const struct bn_cpu_kernels *bn_cpu_kernels_by_name(const char *name)
{
    enum bn_cpu_isa want;
    if (!name || strcmp(name, "auto") == 0) return bn_cpu_kernels_best();
    if (!parse_isa(name, &want)) return NULL;
    return best_at_or_below(want);
}
