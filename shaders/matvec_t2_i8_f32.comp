// matvec: ternary weights (GPU layout, see common/ternary.glsl) times int8
// activation rows, for decode. Grid: x = groups of rows_per_wg weight rows,
// y = activation rows (tokens).
//
// Numerics, as the scalar reference: every 256-weight block b of a row gets
// an exact int32 acc_b (one work item each). Then one thread per row scales:
//   per_block (TQ1_0/TQ2_0): y = sum over b, in order, of d_b * float(acc_b)
//   else (I2_S):             y = float(sum of acc_b) * w_scale
// and out (+)= y / s[t] * lin_scale. `precise` keeps the compiler from
// fusing these into fma, which would round differently from the CPU.
// Variants: -DUSE_DOT uses OpSDot (devices with integer dot product).
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_DOT
#extension GL_EXT_spirv_intrinsics : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

#define PC_MATMUL
#include "common/push.glsl"
#include "common/ternary.glsl"

layout(binding = 0, std430) readonly buffer Codes { uvec4 codes[]; }; // [n_rows][k_words / 4]
layout(binding = 1, std430) readonly buffer Scales { float dscale[]; }; // [n_rows][nb] (per_block)
layout(binding = 2, std430) readonly buffer Q { uvec4 qv[]; };        // [n_tok][k_words]
layout(binding = 3, std430) readonly buffer QS { float qs[]; };       // [n_tok]
layout(binding = 4, std430) buffer Out { float outv[]; };             // [n_tok][out_stride]

// The host keeps rows_per_wg * nb within this many items.
const uint MAX_ITEMS = 1024;
shared int acc[MAX_ITEMS];

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint r0 = gl_WorkGroupID.x * pc.rows_per_wg;
    const uint t = gl_WorkGroupID.y;
    const uint rows = min(pc.rows_per_wg, pc.n_rows - r0);
    const uint items = rows * pc.nb;
    const uint row_v4 = pc.k_words / 4; // K is a multiple of 128: whole uvec4s
    const uint q0 = t * pc.k_words;

    // Consecutive items are consecutive blocks of one row: neighbouring
    // threads read neighbouring 64-byte runs of codes.
    for (uint it = lid; it < items; it += WG) {
        const uint r = it / pc.nb, b = it - r * pc.nb;
        const uint c0 = (r0 + r) * row_v4 + 4 * b;
        const uint n4 = min(4u, row_v4 - 4 * b);
        int s = 0;
        for (uint u = 0; u < n4; u++) {
            const uvec4 c = codes[c0 + u];
            const uint qb = q0 + 16 * b + 4 * u;
            s += dot16(c.x, qv[qb]) + dot16(c.y, qv[qb + 1]) + dot16(c.z, qv[qb + 2]) + dot16(c.w, qv[qb + 3]);
        }
        acc[it] = s;
    }
    barrier();

    for (uint r = lid; r < rows; r += WG) {
        const uint a0 = r * pc.nb;
        precise float y;
        if (pc.per_block != 0) {
            const uint d0 = (r0 + r) * pc.nb;
            precise float sum = 0.0;
            for (uint b = 0; b < pc.nb; b++) sum += dscale[d0 + b] * float(acc[a0 + b]);
            y = sum;
        } else {
            int a = 0;
            for (uint b = 0; b < pc.nb; b++) a += acc[a0 + b];
            y = float(a) * pc.w_scale;
        }
        y = y / qs[t] * pc.lin_scale;
        const uint o = t * pc.out_stride + pc.row0 + r0 + r;
        if (pc.accumulate != 0) y = outv[o] + y;
        outv[o] = y;
    }
}
