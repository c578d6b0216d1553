// head_q8: the int8 head (--head q8) over one row range (part) of its
// table: logits[t][row0 + r] = float(acc) * d[r] / s[t] with the exact
// integer acc = sum_k wq[r][k] * xq[t][k] (int8 weights with a per-row
// scale d, made at load as the CPU's bn_head_q8_quantize_row; int16
// activations from quantize_f32_i16), so the result is the CPU's bn_head_q8
// bit for bit. It reads a byte per weight, half of the F16 head.
//
// A workgroup computes R rows x T tokens: each thread sums a strided slice
// of k, 16 weights at a time, in int32 (the host keeps a slice within
// 512 products of at most 127 * 32767, below 2^31, so it cannot overflow); after one
// barrier, R x T threads add the WG partials of one output in int64.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#extension GL_EXT_shader_explicit_arithmetic_types_int64 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // at least R * T

#define PC_HEAD
#include "common/push.glsl"

const uint R = 4; // table rows per workgroup
const uint T = 4; // tokens per workgroup

layout(binding = 0, std430) readonly buffer Table { uvec4 table[]; };   // [rows][k / 16] int8
layout(binding = 1, std430) readonly buffer Scales { float drow[]; };  // [rows] of this part
layout(binding = 2, std430) readonly buffer XQ { uvec4 xq[]; };        // [n_tok][k / 8] int16 pairs
layout(binding = 3, std430) readonly buffer XS { float xs[]; };        // [n_tok]
layout(binding = 4, std430) writeonly buffer Out { float outv[]; };

shared int red[R * T * WG];

// Four int8 weights of w times four int16 activations (two words).
int dot4(uint w, uint a01, uint a23)
{
    const int iw = int(w);
    return bitfieldExtract(iw, 0, 8) * bitfieldExtract(int(a01), 0, 16) +
           bitfieldExtract(iw, 8, 8) * bitfieldExtract(int(a01), 16, 16) +
           bitfieldExtract(iw, 16, 8) * bitfieldExtract(int(a23), 0, 16) +
           bitfieldExtract(iw, 24, 8) * bitfieldExtract(int(a23), 16, 16);
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint r0 = gl_WorkGroupID.x * R, t0 = gl_WorkGroupID.y * T;
    const uint kw = pc.k / 16u; // uvec4 of weights per row; two of activations
    const uint nt = min(T, pc.n_tok - t0);
    const uint nr = min(R, pc.n_rows - r0);
    int p[R * T];
    [[unroll]] for (uint v = 0; v < R * T; v++) p[v] = 0;

    for (uint w = lid; w < kw; w += WG) {
        [[unroll]] for (uint tt = 0; tt < T; tt++) {
            if (tt >= nt) break;
            const uvec4 a = xq[(t0 + tt) * 2u * kw + 2u * w];
            const uvec4 b = xq[(t0 + tt) * 2u * kw + 2u * w + 1u];
            [[unroll]] for (uint rr = 0; rr < R; rr++) {
                if (rr >= nr) break;
                const uvec4 c = table[(r0 + rr) * kw + w];
                p[rr * T + tt] += dot4(c.x, a.x, a.y) + dot4(c.y, a.z, a.w) + dot4(c.z, b.x, b.y) + dot4(c.w, b.z, b.w);
            }
        }
    }
    [[unroll]] for (uint v = 0; v < R * T; v++) red[v * WG + lid] = p[v];
    barrier();
    if (lid < R * T) {
        const uint rr = lid / T, tt = lid % T;
        int64_t acc = 0;
        for (uint i = 0; i < WG; i++) acc += int64_t(red[lid * WG + i]);
        if (rr < nr && tt < nt) {
            precise float y = float(acc) * drow[r0 + rr];
            y = y / xs[t0 + tt];
            outv[(t0 + tt) * pc.out_stride + pc.row0 + r0 + rr] = y;
        }
    }
}
