// attn_decode, pass 1 of decode attention: split-K over the cache. Grid:
// x = split s (chunk positions each), y = query head, z = query row t, which
// sees cache positions 0 .. pos0 + t. Each workgroup writes, for its chunk,
// m = max score, l = sum exp(score - m) and o = sum exp(score - m) v into
// scratch [t][head][split][head_dim + 2]; attn_reduce_f32_f32 combines them.
// Splits past a row's last position are skipped here and there.
// Scores are computed as the reference does (sequential dot over head_dim,
// then times 1/sqrt(head_dim)). Variants: F16 cache or -DCACHE_F32.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_ATTN
#include "common/push.glsl"

const uint MAX_HD = 256;    // the host checks head_dim
const uint MAX_CHUNK = 256; // the host checks chunk

layout(binding = 0, std430) readonly buffer Q { float q[]; };
#ifdef CACHE_F32
layout(binding = 1, std430) readonly buffer CK { float ck[]; };
layout(binding = 2, std430) readonly buffer CV { float cv[]; };
#else
layout(binding = 1, std430) readonly buffer CK { uint ck[]; };
layout(binding = 2, std430) readonly buffer CV { uint cv[]; };
#endif
layout(binding = 3, std430) writeonly buffer Scratch { float scratch[]; };

shared float sq[MAX_HD];
shared float sp[MAX_CHUNK];
shared float red[WG];

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint s = gl_WorkGroupID.x, h = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    const uint len = pc.pos0 + t + 1;
    const uint p0 = s * pc.chunk;
    if (p0 >= len) return;
    const uint n = min(pc.chunk, len - p0);
    const uint hd = pc.head_dim;
    const uint koff = (h / pc.group) * hd;
    const uint out0 = ((t * pc.n_head + h) * pc.n_split + s) * (hd + 2);

    for (uint d = lid; d < hd; d += WG) sq[d] = q[(t * pc.n_head + h) * hd + d];
    barrier();

    float mloc = uintBitsToFloat(0xFF800000u);
    for (uint j = lid; j < n; j += WG) {
        const uint row = (p0 + j) * pc.kv_width + koff;
        precise float dot = 0.0;
#ifdef CACHE_F32
        for (uint d = 0; d < hd; d++) dot += sq[d] * ck[row + d];
#else
        for (uint d = 0; d < hd; d += 2) {
            const vec2 kv = unpackHalf2x16(ck[(row + d) / 2]);
            dot += sq[d] * kv.x;
            dot += sq[d + 1] * kv.y;
        }
#endif
        const float sc = dot * pc.scale;
        sp[j] = sc;
        mloc = max(mloc, sc);
    }
    red[lid] = mloc;
    barrier();
    for (uint st = WG / 2; st > 0; st >>= 1) {
        if (lid < st) red[lid] = max(red[lid], red[lid + st]);
        barrier();
    }
    const float m = red[0];
    barrier(); // red is reused for the sum

    float lsum = 0.0;
    for (uint j = lid; j < n; j += WG) {
        const float e = exp(sp[j] - m);
        sp[j] = e;
        lsum += e;
    }
    red[lid] = lsum;
    barrier();
    for (uint st = WG / 2; st > 0; st >>= 1) {
        if (lid < st) red[lid] += red[lid + st];
        barrier();
    }

    for (uint d = lid; d < hd; d += WG) {
        precise float o = 0.0;
        for (uint j = 0; j < n; j++) {
            const uint e = (p0 + j) * pc.kv_width + koff + d;
#ifdef CACHE_F32
            o += sp[j] * cv[e];
#else
            o += sp[j] * unpackHalf2x16(cv[e / 2])[e & 1u];
#endif
        }
        scratch[out0 + d] = o;
    }
    if (lid == 0) {
        scratch[out0 + hd] = m;
        scratch[out0 + hd + 1] = red[0];
    }
}
