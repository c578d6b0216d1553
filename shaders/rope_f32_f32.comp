// rope: rotates pairs of each head in place, NEOX (j, j + n_rot/2) or NORM
// (2j, 2j + 1), by theta_j = pos * inv_freq_j (common/rope.glsl says how
// the angle stays exact at any position).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#define PC_ROPE
#include "common/push.glsl"
#include "common/rope.glsl"

layout(binding = 0, std430) buffer X { float x[]; };
layout(binding = 1, std430) readonly buffer Freq { uvec2 freq[]; }; // (low, high) words per j

void main()
{
    const uint half_rot = pc.n_rot / 2;
    const uint i = gl_GlobalInvocationID.x;
    const uint t = gl_WorkGroupID.y;
    if (i >= pc.n_head * half_rot) return;
    const uint h = i / half_rot, j = i - h * half_rot;
    float cs, sn;
    rope_cos_sin(pc.pos0 + t, freq[j], cs, sn);
    const uint base = (t * pc.n_head + h) * pc.head_dim;
    const uint i0 = base + (pc.neox != 0 ? j : 2 * j);
    const uint i1 = base + (pc.neox != 0 ? j + half_rot : 2 * j + 1);
    const vec2 y = rope_rotate(x[i0], x[i1], cs, sn);
    x[i0] = y.x;
    x[i1] = y.y;
}
