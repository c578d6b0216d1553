// matmul: ternary weights times a batch of int8 activation rows, for
// prefill. A workgroup computes a tile of TN weight rows x TM tokens; each
// 256-weight block of the tile's weights and activations is staged in
// shared memory once and reused by all the tile's outputs.
//
// Numerics as matvec_t2_i8_f32.comp: exact int32 per block, then per output,
// blocks in order, d_b * float(acc_b) (TQ) or the int32 total times w_scale
// (I2_S), then / s[t] * lin_scale. Variants: -DUSE_DOT (OpSDot).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_DOT
#extension GL_EXT_spirv_intrinsics : require
#endif

// 128 invocations is the least every Vulkan device allows.
layout(local_size_x = 128) in;
const uint TN = 32; // weight rows per tile
const uint TM = 32; // tokens per tile
// Thread layout: rows rr and rr + 16, tokens 4 tg .. 4 tg + 3.

#define PC_MATMUL
#include "common/push.glsl"
#include "common/ternary.glsl"

layout(binding = 0, std430) readonly buffer Codes { uvec4 codes[]; };
layout(binding = 1, std430) readonly buffer Scales { float dscale[]; };
layout(binding = 2, std430) readonly buffer Q { uvec4 qv[]; };
layout(binding = 3, std430) readonly buffer QS { float qs[]; };
layout(binding = 4, std430) buffer Out { float outv[]; };

shared uint sc[TN * 16];  // one block of codes per row (16 words)
shared uvec4 sq[TM * 16]; // one block of activations per token (256 bytes)

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint n0 = gl_WorkGroupID.x * TN, t0 = gl_WorkGroupID.y * TM;
    const uint rr = lid % 16, tg = lid / 16;
    const uint row_v4 = pc.k_words / 4;
    // A short batch leaves token groups empty: they only help load tiles.
    const bool busy = t0 + tg * 4 < pc.n_tok;

    precise float fsum[8];
    int isum[8];
    [[unroll]] for (uint o = 0; o < 8; o++) {
        fsum[o] = 0.0;
        isum[o] = 0;
    }

    for (uint b = 0; b < pc.nb; b++) {
        {
            // Codes: TN rows x 4 uvec4, one uvec4 per thread. Missing rows
            // and the tail of a short block read as code 1 (trit 0).
            const uint r = lid / 4, u = lid % 4, row = n0 + r;
            uvec4 c = uvec4(0x55555555u);
            if (row < pc.n_rows && 4 * b + u < row_v4) c = codes[row * row_v4 + 4 * b + u];
            sc[r * 16 + 4 * u] = c.x;
            sc[r * 16 + 4 * u + 1] = c.y;
            sc[r * 16 + 4 * u + 2] = c.z;
            sc[r * 16 + 4 * u + 3] = c.w;
        }
        for (uint i = lid; i < TM * 16; i += 128) {
            const uint tt = i / 16, u = i % 16, tok = t0 + tt;
            uvec4 v = uvec4(0u);
            if (tok < pc.n_tok && 16 * b + u < pc.k_words) v = qv[tok * pc.k_words + 16 * b + u];
            sq[i] = v;
        }
        barrier();

        int a[8];
        [[unroll]] for (uint o = 0; o < 8; o++) a[o] = 0;
        for (uint w = 0; busy && w < 16; w++) {
            const uint c0 = sc[rr * 16 + w], c1 = sc[(rr + 16) * 16 + w];
            const uvec4 x0 = uvec4(codes_to_trits(c0), codes_to_trits(c0 >> 2), codes_to_trits(c0 >> 4),
                                   codes_to_trits(c0 >> 6));
            const uvec4 x1 = uvec4(codes_to_trits(c1), codes_to_trits(c1 >> 2), codes_to_trits(c1 >> 4),
                                   codes_to_trits(c1 >> 6));
            [[unroll]] for (uint j = 0; j < 4; j++) {
                const uvec4 q = sq[(tg * 4 + j) * 16 + w];
                a[j] += dot4(x0.x, q.x) + dot4(x0.y, q.y) + dot4(x0.z, q.z) + dot4(x0.w, q.w);
                a[4 + j] += dot4(x1.x, q.x) + dot4(x1.y, q.y) + dot4(x1.z, q.z) + dot4(x1.w, q.w);
            }
        }
        if (pc.per_block != 0) {
            [[unroll]] for (uint i = 0; i < 2; i++) {
                const uint row = n0 + rr + 16 * i;
                const float d = row < pc.n_rows ? dscale[row * pc.nb + b] : 0.0;
                [[unroll]] for (uint j = 0; j < 4; j++) fsum[4 * i + j] += d * float(a[4 * i + j]);
            }
        } else {
            [[unroll]] for (uint o = 0; o < 8; o++) isum[o] += a[o];
        }
        barrier(); // the tiles are overwritten next block
    }

    [[unroll]] for (uint i = 0; i < 2; i++) {
        const uint row = n0 + rr + 16 * i;
        if (row >= pc.n_rows) continue;
        [[unroll]] for (uint j = 0; j < 4; j++) {
            const uint tok = t0 + tg * 4 + j;
            if (tok >= pc.n_tok) continue;
            precise float y = pc.per_block != 0 ? fsum[4 * i + j] : float(isum[4 * i + j]) * pc.w_scale;
            y = y / qs[tok] * pc.lin_scale;
            const uint o = tok * pc.out_stride + pc.row0 + row;
            if (pc.accumulate != 0) y = outv[o] + y;
            outv[o] = y;
        }
    }
}
