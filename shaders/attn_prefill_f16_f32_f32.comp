// attn_prefill: causal attention for a batch of query rows (flash-attention
// style): the keys and values are streamed through shared memory in tiles
// of `chunk` positions, and each row keeps a running max m, sum l and
// output o (online softmax), so no score matrix is ever stored.
// Grid: x = tiles of BR query rows, y = query head. Four threads share a
// row; thread `part` holds dims part, part + 4, ... of q and o and their
// partial dot products meet in shared memory. Row t sees positions
// 0 .. pos0 + t. Variants: F16 cache or -DCACHE_F32.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x = 64) in;
// Floats per K (and per V) tile; the host sizes it to the device's shared
// memory and picks chunk <= min(BCMAX, TILE / head_dim).
layout(constant_id = 1) const uint TILE = 2048;

#define PC_ATTN
#include "common/push.glsl"

const uint BR = 16;      // query rows per workgroup
const uint BCMAX = 32;   // keys per tile, at most
const uint MAX_DPT = 64; // head_dim / 4, at most (head_dim <= 256)

layout(binding = 0, std430) readonly buffer Q { float q[]; };
#ifdef CACHE_F32
layout(binding = 1, std430) readonly buffer CK { float ck[]; };
layout(binding = 2, std430) readonly buffer CV { float cv[]; };
#else
layout(binding = 1, std430) readonly buffer CK { uint ck[]; };
layout(binding = 2, std430) readonly buffer CV { uint cv[]; };
#endif
layout(binding = 3, std430) writeonly buffer Out { float outv[]; };

shared float sk[TILE];
shared float sv[TILE];
shared float ss[BR * BCMAX * 4]; // partial dot products [row][key][part]

float cache_at(uint which, uint e)
{
#ifdef CACHE_F32
    return which == 0u ? ck[e] : cv[e];
#else
    return unpackHalf2x16(which == 0u ? ck[e / 2] : cv[e / 2])[e & 1u];
#endif
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint part = lid & 3u, r = lid >> 2;
    const uint h = gl_WorkGroupID.y, t0 = gl_WorkGroupID.x * BR;
    const uint hd = pc.head_dim, dpt = hd / 4;
    const uint t = t0 + r;
    const uint tq = min(t, pc.n_rows - 1); // rows past the batch compute a copy, never stored
    const uint my_last = pc.pos0 + tq;
    const uint n_keys = pc.pos0 + min(t0 + BR, pc.n_rows);
    const uint koff = (h / pc.group) * hd;
    const uint qoff = (tq * pc.n_head + h) * hd;

    float qr[MAX_DPT], o[MAX_DPT];
    for (uint i = 0; i < dpt; i++) {
        qr[i] = q[qoff + part + 4 * i];
        o[i] = 0.0;
    }
    float m = uintBitsToFloat(0xFF800000u), l = 0.0;

    for (uint k0 = 0; k0 < n_keys; k0 += pc.chunk) {
        const uint nk = min(pc.chunk, n_keys - k0);
        for (uint e = lid; e < nk * hd; e += 64) {
            const uint j = e / hd, d = e - j * hd;
            const uint src = (k0 + j) * pc.kv_width + koff + d;
            sk[e] = cache_at(0u, src);
            sv[e] = cache_at(1u, src);
        }
        barrier();
        for (uint j = 0; j < nk; j++) {
            precise float pd = 0.0;
            for (uint i = 0; i < dpt; i++) pd += qr[i] * sk[j * hd + part + 4 * i];
            ss[(r * BCMAX + j) * 4 + part] = pd;
        }
        barrier();
        // The four threads of a row compute the same softmax update.
        float mt = m;
        for (uint j = 0; j < nk && k0 + j <= my_last; j++) {
            const uint b = (r * BCMAX + j) * 4;
            mt = max(mt, (ss[b] + ss[b + 1] + ss[b + 2] + ss[b + 3]) * pc.scale);
        }
        // Key 0 is in the first tile and visible to every row, so mt is
        // finite from the first tile on.
        const float alpha = exp(m - mt);
        l *= alpha;
        for (uint i = 0; i < dpt; i++) o[i] *= alpha;
        for (uint j = 0; j < nk && k0 + j <= my_last; j++) {
            const uint b = (r * BCMAX + j) * 4;
            const float p = exp((ss[b] + ss[b + 1] + ss[b + 2] + ss[b + 3]) * pc.scale - mt);
            l += p;
            for (uint i = 0; i < dpt; i++) o[i] += p * sv[j * hd + part + 4 * i];
        }
        m = mt;
        barrier(); // the tiles are overwritten next
    }
    if (t < pc.n_rows) {
        const uint dst = (t * pc.n_head + h) * hd;
        for (uint i = 0; i < dpt; i++) outv[dst + part + 4 * i] = o[i] / l;
    }
}
