// head: logits[t][row0 + r] = sum_k W[r][k] * x[t][k] over one row range
// (part) of a float table, float32 accumulation. A workgroup computes
// R rows x T tokens: each thread accumulates a strided slice of k, 16 bytes
// of a row at a time, for all R x T outputs (every weight read serves up to
// T tokens); then, after one barrier, R x T threads each add up the WG
// partials of one output. One barrier rather than a log2(WG)-step tree:
// barriers are what costs most on CPU implementations (lavapipe), and R x T
// sums of WG values are cheap anywhere. Rows are a multiple of 8 long.
// Variants: F16 table (eight halves per step, widened exactly) or
// -DTABLE_F32; -DUSE_SUBGROUP sums the partials within subgroups first
// (subgroupAdd) where the device has subgroup arithmetic.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_16bit_storage : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // at least R * T

#define PC_HEAD
#include "common/push.glsl"

const uint R = 4; // table rows per workgroup
const uint T = 4; // tokens per workgroup

#ifdef TABLE_F32
layout(binding = 0, std430) readonly buffer Table { vec4 table[]; };
const uint PER = 4; // weights per table element
#else
// Halves loaded as halves and widened by the conversion instruction
// (16-bit storage only, no float16 arithmetic): exact, and native on CPUs
// with F16C as well as on GPUs.
layout(binding = 0, std430) readonly buffer Table { f16vec4 table[]; };
const uint PER = 8;
#endif
layout(binding = 1, std430) readonly buffer X { vec4 x[]; };
layout(binding = 2, std430) writeonly buffer Out { float outv[]; };

shared float red[R * T * WG];

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint r0 = gl_WorkGroupID.x * R, t0 = gl_WorkGroupID.y * T;
    const uint kv = pc.k / PER;             // table elements per row
    const uint nt = min(T, pc.n_tok - t0);  // decode: 1, the loops below skip the rest
    const uint nr = min(R, pc.n_rows - r0);
    float p[R * T];
    [[unroll]] for (uint v = 0; v < R * T; v++) p[v] = 0.0;

    for (uint w = lid; w < kv; w += WG) {
        [[unroll]] for (uint rr = 0; rr < R; rr++) {
            if (rr >= nr) break;
#ifdef TABLE_F32
            const vec4 wa = table[(r0 + rr) * kv + w];
            [[unroll]] for (uint tt = 0; tt < T; tt++)
                if (tt < nt) p[rr * T + tt] += dot(wa, x[(t0 + tt) * kv + w]);
#else
            const vec4 wa = vec4(table[2 * ((r0 + rr) * kv + w)]);
            const vec4 wb = vec4(table[2 * ((r0 + rr) * kv + w) + 1]);
            [[unroll]] for (uint tt = 0; tt < T; tt++)
                if (tt < nt) p[rr * T + tt] += dot(wa, x[2 * ((t0 + tt) * kv + w)]) + dot(wb, x[2 * ((t0 + tt) * kv + w) + 1]);
#endif
        }
    }
#ifdef USE_SUBGROUP
    // Each output's partials summed within the subgroups first: R x T
    // threads then add gl_NumSubgroups totals each instead of WG.
    [[unroll]] for (uint v = 0; v < R * T; v++) {
        const float s = subgroupAdd(p[v]);
        if (subgroupElect()) red[v * WG + gl_SubgroupID] = s;
    }
    const uint n_part = gl_NumSubgroups;
#else
    [[unroll]] for (uint v = 0; v < R * T; v++) red[v * WG + lid] = p[v];
    const uint n_part = WG;
#endif
    barrier();
    if (lid < R * T) {
        const uint rr = lid / T, tt = lid % T;
        float sum = 0.0;
        for (uint i = 0; i < n_part; i++) sum += red[lid * WG + i];
        if (rr < nr && tt < nt) outv[(t0 + tt) * pc.out_stride + pc.row0 + r0 + rr] = sum;
    }
}
