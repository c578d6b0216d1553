// proj: the ternary projections of decode (one token) in one dispatch each,
// fused with what comes before and after them:
//   prologue: every workgroup quantizes the input row itself, with the
//     rmsnorm when pc.norm (common/norm_quant.glsl, as quantize_f32_i8):
//     all workgroups run the same code on the same row, so all get the same
//     int8 values and scale, and the int8 row never leaves shared memory;
//   body: the workgroup's weight rows as matvec_t2_i8_f32 computes them
//     (exact int32 per 256-weight block, then the same float scaling);
//   epilogue, by variant:
//     default   residual: out[r] = out[r] + y[r]   (x = x + W a)
//     -DGATE_UP the workgroup computes the same rows of both segments
//               (gate, up): out[r] = relu(g)^2 * u or silu(g) * u, as ffn_act
//     -DQKV     segments q, k, v, each workgroup rows of one of them, a
//               head or a part of one holding whole rope pairs: q and k
//               rows rotated (common/rope.glsl, as rope);
//               q -> out, k -> cache_k and v -> cache_v at row pos (F16 as
//               kv_store, or -DCACHE_F32)
// so the results equal those of the unfused shaders bit for bit. Grid: x =
// workgroups (segments one after the other for QKV).
// Variants: -DUSE_DOT uses OpSDot (devices with integer dot product);
// -DUSE_SUBGROUP reduces the prologue's sum and maximum with subgroup
// arithmetic (common/wg_reduce.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#extension GL_EXT_control_flow_attributes : require
#ifdef USE_DOT
#extension GL_EXT_spirv_intrinsics : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_PROJ
#include "common/push.glsl"
#include "common/ternary.glsl"

#if defined(QKV)
#define N_SEG 3
#elif defined(GATE_UP)
#define N_SEG 2
#else
#define N_SEG 1
#endif

// Bindings: the row, the norm weight, the codes of each segment, their
// block scales, then the outputs.
layout(binding = 0, std430) readonly buffer X { float x[]; };
layout(binding = 1, std430) readonly buffer NW { float nw[]; };
layout(binding = 2, std430) readonly buffer C0 { uvec4 c0[]; };
#if N_SEG >= 2
layout(binding = 3, std430) readonly buffer C1 { uvec4 c1[]; };
#endif
#if N_SEG >= 3
layout(binding = 4, std430) readonly buffer C2 { uvec4 c2[]; };
#endif
layout(binding = 2 + N_SEG, std430) readonly buffer S0 { float d0[]; };
#if N_SEG >= 2
layout(binding = 3 + N_SEG, std430) readonly buffer S1 { float d1[]; };
#endif
#if N_SEG >= 3
layout(binding = 4 + N_SEG, std430) readonly buffer S2 { float d2[]; };
#endif
layout(binding = 2 + 2 * N_SEG, std430) buffer Out { float outv[]; };
#ifdef QKV
layout(binding = 3 + 2 * N_SEG, std430) readonly buffer Freq { uvec2 freq[]; }; // as rope_f32_f32
#ifdef CACHE_F32
layout(binding = 4 + 2 * N_SEG, std430) writeonly buffer CK { float ck[]; };
layout(binding = 5 + 2 * N_SEG, std430) writeonly buffer CV { float cv[]; };
#else
layout(binding = 4 + 2 * N_SEG, std430) writeonly buffer CK { uint ck[]; };
layout(binding = 5 + 2 * N_SEG, std430) writeonly buffer CV { uint cv[]; };
#endif
#include "common/f16.glsl"
#include "common/rope.glsl"
#endif

// The host keeps K within MAX_Q_WORDS * 4, nb within MAX_ITEMS and the
// rows of one workgroup within MAX_ROWS.
const uint MAX_Q_WORDS = 2048; // the int8 row, four per word: K <= 8192
const uint MAX_ITEMS = 1024;
const uint MAX_ROWS = 512;
shared uvec4 sq[MAX_Q_WORDS / 4]; // 16 int8 per entry: one 128-bit load per code word
shared int acc[MAX_ITEMS];
shared float y[MAX_ROWS];
shared float red[WG];

float nq_x(uint i) { return x[i]; }
float nq_w(uint i) { return nw[i]; }
#include "common/norm_quant.glsl"

uvec4 codes(uint seg, uint i)
{
#if N_SEG >= 2
    if (seg == 1u) return c1[i];
#endif
#if N_SEG >= 3
    if (seg == 2u) return c2[i];
#endif
    return c0[i];
}

float block_scale(uint seg, uint i)
{
#if N_SEG >= 2
    if (seg == 1u) return d1[i];
#endif
#if N_SEG >= 3
    if (seg == 2u) return d2[i];
#endif
    return d0[i];
}

// Segment and first weight row of this workgroup; GATE_UP workgroups cover
// rows r0 .. of both segments (local rows rows .. 2 rows - 1 are up's).
uint g_seg = 0u;
uint g_r0 = 0u;
uint g_rows = 0u; // weight rows per segment in this workgroup

void local_row(uint lr, out uint seg, out uint row)
{
#if defined(GATE_UP)
    seg = lr >= g_rows ? 1u : 0u;
    row = g_r0 + lr - seg * g_rows;
#elif defined(QKV)
    seg = g_seg;
    row = g_r0 + lr;
    if (g_seg < 2u && pc.neox != 0u) {
        // A part of a head holds whole NEOX pairs (j, j + head_dim / 2): its
        // first half of local rows are j0 .., its second half j0 + head_dim / 2 ..
        // (the identity when the workgroup holds the whole head).
        const uint h0 = g_r0 - g_r0 % pc.head_dim, j0 = (g_r0 - h0) / 2u, hr = g_rows / 2u;
        row = h0 + (lr < hr ? j0 + lr : pc.head_dim / 2u + j0 + lr - hr);
    }
#else
    seg = g_seg;
    row = g_r0 + lr;
#endif
}

#ifdef QKV
uint qkv_row(uint lr)
{
    uint seg, row;
    local_row(lr, seg, row);
    return row;
}
#endif

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint R = pc.rows_per_wg;

    uint wgid = gl_WorkGroupID.x;
#ifdef QKV
    for (g_seg = 0u; g_seg < 2u; g_seg++) {
        const uint n = (pc.seg_rows[g_seg] + R - 1u) / R;
        if (wgid < n) break;
        wgid -= n;
    }
#endif
    g_r0 = wgid * R;
    g_rows = min(R, pc.seg_rows[g_seg] - g_r0);
    const uint total = N_SEG == 2 ? 2u * g_rows : g_rows;

    // Prologue: the int8 row into shared memory, 16 values per entry (the
    // activation layout of matvec_t2_i8_f32), zero past K; each invocation
    // packs words of four neighbouring values.
    const bool norm = pc.norm != 0u;
    const float f = norm ? nq_rms_factor(pc.width, pc.eps) : 1.0;
    const float sc = nq_scale(pc.width, norm, f, true);
    for (uint w = lid; w < 4u * pc.k_words; w += WG) {
        uint packed = 0u;
        [[unroll]] for (uint b = 0u; b < 4u; b++) {
            const uint i = 4u * w + b;
            const int v = i < pc.width ? nq_quant(nq_value(i, norm, f, true), sc) : 0;
            packed |= (uint(v) & 0xFFu) << (8u * b);
        }
        sq[w >> 2][w & 3u] = packed;
    }
    barrier();

    // Body: items are (row, block) pairs, as many rows at a time as the
    // item array holds; consecutive items are consecutive blocks of a row.
    const uint row_v4 = pc.k_words / 4u;
    const uint chunk = MAX_ITEMS / pc.nb;
    for (uint lr0 = 0u; lr0 < total; lr0 += chunk) {
        const uint nr = min(chunk, total - lr0);
        for (uint it = lid; it < nr * pc.nb; it += WG) {
            const uint r = it / pc.nb, b = it - r * pc.nb;
            uint seg, row;
            local_row(lr0 + r, seg, row);
            const uint c_base = row * row_v4 + 4u * b;
            const uint n4 = min(4u, row_v4 - 4u * b);
            int s = 0;
            for (uint u = 0u; u < n4; u++) {
                const uvec4 c = codes(seg, c_base + u);
                const uint qb = 16u * b + 4u * u; // the 64 activations of these 64 weights
                s += dot16(c.x, sq[qb]) + dot16(c.y, sq[qb + 1u]) + dot16(c.z, sq[qb + 2u]) + dot16(c.w, sq[qb + 3u]);
            }
            acc[it] = s;
        }
        barrier();
        for (uint r = lid; r < nr; r += WG) {
            uint seg, row;
            local_row(lr0 + r, seg, row);
            const uint a0 = r * pc.nb;
            precise float v;
            if (((pc.per_block >> seg) & 1u) != 0u) {
                const uint db = row * pc.nb;
                precise float sum = 0.0;
                for (uint b = 0u; b < pc.nb; b++) sum += block_scale(seg, db + b) * float(acc[a0 + b]);
                v = sum;
            } else {
                int a = 0;
                for (uint b = 0u; b < pc.nb; b++) a += acc[a0 + b];
                v = float(a) * pc.w_scale[seg];
            }
            v = v / sc * pc.lin_scale[seg];
            y[lr0 + r] = v;
        }
        barrier();
    }

    // Epilogue.
#if defined(GATE_UP)
    for (uint r = lid; r < g_rows; r += WG) {
        const float g = y[r], u = y[g_rows + r];
        precise float v;
        if (pc.act == 0u) {
            const float rl = g > 0.0 ? g : 0.0;
            v = rl * rl * u;
        } else {
            v = g / (1.0 + exp(-g)) * u;
        }
        outv[g_r0 + r] = v;
    }
#elif defined(QKV)
    if (g_seg < 2u) {
        // The pairs of this workgroup's part of a head: with the whole head,
        // j < n_rot / 2; with a part (only when n_rot = head_dim), the
        // g_rows / 2 pairs from j0 on. Local rows as local_row lays them out.
        const uint off = min(pc.n_rot, g_rows) / 2u;
        const uint j0 = (g_r0 % pc.head_dim) / 2u;
        for (uint p = lid; p < off; p += WG) {
            float cs, sn;
            rope_cos_sin(pc.pos, freq[j0 + p], cs, sn);
            const uint i0 = pc.neox != 0u ? p : 2u * p;
            const uint i1 = pc.neox != 0u ? p + off : 2u * p + 1u;
            const vec2 rot = rope_rotate(y[i0], y[i1], cs, sn);
            y[i0] = rot.x;
            y[i1] = rot.y;
        }
        barrier();
    }
    if (g_seg == 0u) {
        for (uint r = lid; r < g_rows; r += WG) outv[qkv_row(r)] = y[r];
    } else {
        // Cache row pos of width seg_rows[1] (= seg_rows[2], n_head_kv * head_dim).
        const uint dst = pc.pos * pc.seg_rows[1];
#ifdef CACHE_F32
        for (uint r = lid; r < g_rows; r += WG) {
            if (g_seg == 1u) ck[dst + qkv_row(r)] = y[r];
            else cv[dst + qkv_row(r)] = y[r];
        }
#else
        // Pairs into one word: local rows 2i and 2i + 1 are neighbouring rows,
        // the first even (the host keeps g_rows / 2 even for parts of heads).
        for (uint i = lid; 2u * i < g_rows; i += WG) {
            const uint word = f32_bits_to_f16(floatBitsToUint(y[2u * i])) |
                              (f32_bits_to_f16(floatBitsToUint(y[2u * i + 1u])) << 16);
            if (g_seg == 1u) ck[(dst + qkv_row(2u * i)) / 2u] = word;
            else cv[(dst + qkv_row(2u * i)) / 2u] = word;
        }
#endif
    }
#else
    for (uint r = lid; r < g_rows; r += WG) {
        precise float v = outv[g_r0 + r] + y[r];
        outv[g_r0 + r] = v;
    }
#endif
}
