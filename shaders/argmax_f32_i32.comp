// argmax: ids[t] = index of the largest logit of row t, the lowest index on
// ties, NaN counted as -inf and +inf as FLT_MAX (as the host's greedy
// sampler, runtime/sampler.c). One workgroup per row; each thread
// scans a strided slice in increasing order, then a tree keeps the larger
// value, or the lower index of equal values.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two

#define PC_ARGMAX
#include "common/push.glsl"

layout(binding = 0, std430) readonly buffer Logits { float logits[]; };
layout(binding = 1, std430) writeonly buffer Ids { int ids[]; };

shared float sv[WG];
shared uint si[WG];

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint t = gl_WorkGroupID.x;
    const uint base = t * pc.n_vocab;
    float best = uintBitsToFloat(0xFF800000u); // -inf
    uint idx = 0xFFFFFFFFu;
    for (uint i = lid; i < pc.n_vocab; i += WG) {
        float v = logits[base + i];
        if (v != v) v = uintBitsToFloat(0xFF800000u);
        else if (v > 3.40282347e38) v = 3.40282347e38;
        if (v > best || idx == 0xFFFFFFFFu) {
            best = v;
            idx = i;
        }
    }
    sv[lid] = best;
    si[lid] = idx;
    barrier();
    for (uint s = WG / 2; s > 0; s >>= 1) {
        if (lid < s) {
            const float ov = sv[lid + s];
            const uint oi = si[lid + s];
            if (oi != 0xFFFFFFFFu && (si[lid] == 0xFFFFFFFFu || ov > sv[lid] || (ov == sv[lid] && oi < si[lid]))) {
                sv[lid] = ov;
                si[lid] = oi;
            }
        }
        barrier();
    }
    if (lid == 0) ids[t] = int(si[0]);
}
