// ffn_act: out = relu(g)^2 * u (act 0) or silu(g) * u (act 1), elementwise,
// in the scalar reference's order of operations.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#define PC_ACT
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer G { float g[]; };
layout(binding = 1, std430) readonly buffer U { float u[]; };
layout(binding = 2, std430) writeonly buffer Out { float outv[]; };

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    if (i >= pc.width) return;
    const uint e = gl_WorkGroupID.y * pc.width + i;
    const float gv = g[e];
    precise float y;
    if (pc.act == 0) {
        const float r = gv > 0.0 ? gv : 0.0;
        y = r * r * u[e];
    } else {
        y = gv / (1.0 + exp(-gv)) * u[e];
    }
    outv[e] = y;
}
