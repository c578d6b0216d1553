// attn_reduce, pass 2 of decode attention: combines the splits of
// attn_decode for one (query row, head):
//   M = max m_s, L = sum l_s exp(m_s - M), out = sum o_s exp(m_s - M) / L.
// Grid: x = head, y = query row.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

#define PC_ATTN
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer Scratch { float scratch[]; };
layout(binding = 1, std430) writeonly buffer Out { float outv[]; };

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
    const uint hd = pc.head_dim;
    const uint len = pc.pos0 + t + 1;
    const uint ns = (len + pc.chunk - 1) / pc.chunk;
    const uint base = (t * pc.n_head + h) * pc.n_split * (hd + 2);
    float mx = uintBitsToFloat(0xFF800000u);
    for (uint s = 0; s < ns; s++) mx = max(mx, scratch[base + s * (hd + 2) + hd]);
    float l = 0.0;
    for (uint s = 0; s < ns; s++) {
        const uint b = base + s * (hd + 2);
        l += scratch[b + hd + 1] * exp(scratch[b + hd] - mx);
    }
    for (uint d = lid; d < hd; d += WG) {
        float o = 0.0;
        for (uint s = 0; s < ns; s++) {
            const uint b = base + s * (hd + 2);
            o += scratch[b + d] * exp(scratch[b + hd] - mx);
        }
        outv[(t * pc.n_head + h) * hd + d] = o / l;
    }
}
