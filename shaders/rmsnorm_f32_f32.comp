// rmsnorm: out[t] = x[row0 + t] / sqrt(mean(x^2) + eps) * w, one workgroup
// per row. The sum of squares is a workgroup reduction (common/wg_reduce.glsl:
// a tree, or subgroups with -DUSE_SUBGROUP), so it differs from the scalar
// reference's sequential sum only by rounding.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_NORM
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer X { float x[]; };
layout(binding = 1, std430) readonly buffer W { float w[]; };
layout(binding = 2, std430) writeonly buffer Out { float outv[]; };

shared float red[WG];
#include "common/wg_reduce.glsl"

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    const uint src = (pc.row0 + t) * pc.width, dst = t * pc.width;
    precise float ss = 0.0;
    for (uint i = lid; i < pc.width; i += WG) ss += x[src + i] * x[src + i];
    const float scale = 1.0 / sqrt(wg_sum(ss) / float(pc.width) + pc.eps);
    for (uint i = lid; i < pc.width; i += WG) {
        precise float v = x[src + i] * scale;
        if (pc.has_w != 0) v = v * w[i];
        outv[dst + i] = v;
    }
}
