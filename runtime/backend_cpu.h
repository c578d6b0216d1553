/*
 * backend_cpu.h - what the CPU backend reports beyond the backend interface:
 * which kernels and how many threads it runs, and (optionally) where the
 * time goes, op by op.
 *
 *     struct bn_cpu_profile prof = {0};
 *     struct bn_backend_cpu_opts o = {.n_threads = 2, .profile = &prof};
 *     bn_backend_cpu_create(&be, &o, err, sizeof err);   // fills prof.isa, prof.n_threads
 *     ... run ...                                         // adds to prof.ops[]
 *     printf("%s: %.3f s\n", bn_cpu_op_name(BN_CPU_OP_MATMUL), prof.ops[BN_CPU_OP_MATMUL].seconds);
 *
 * The backend writes the profile from the thread that calls the ops; the
 * caller owns it, keeps it alive as long as the backend, and may zero the
 * ops[] counters between runs. Timing costs two clock reads per op.
 */
#ifndef BN_BACKEND_CPU_H
#define BN_BACKEND_CPU_H

#include <stdint.h>

enum bn_cpu_op {
    BN_CPU_OP_EMBED,
    BN_CPU_OP_RMSNORM,
    BN_CPU_OP_QUANTIZE,  /* fused rmsnorm + int8 quantization */
    BN_CPU_OP_MATMUL,    /* ternary GEMV / GEMM              */
    BN_CPU_OP_ROPE,
    BN_CPU_OP_KV_STORE,
    BN_CPU_OP_ATTENTION,
    BN_CPU_OP_FFN_ACT,
    BN_CPU_OP_HEAD,
    BN_CPU_OP_COUNT,
};

struct bn_cpu_op_stats {
    double seconds;      /* wall time inside the op, threads included */
    uint64_t calls;
    uint64_t bytes;      /* weight bytes read (matmul, head)         */
};

struct bn_cpu_profile {
    char isa[16];        /* kernel set in use: "avx512", "avx2", "neon-dotprod", "neon", "scalar" */
    int n_threads;
    struct bn_cpu_op_stats ops[BN_CPU_OP_COUNT];
};

/* "matmul", "attention", ... */
const char *bn_cpu_op_name(enum bn_cpu_op op);

#endif
