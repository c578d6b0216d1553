// kv_store: cache rows pos0 .. pos0 + n_rows - 1 <- k and v rows.
// F16 cache (default): two elements per thread, packed into one word with
// round-to-nearest-even in integer arithmetic (common/f16.glsl), exactly as
// the CPU stores them. -DCACHE_F32: a plain copy.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#define PC_KV
#include "common/push.glsl"
#include "common/f16.glsl"

// The float rows are read as bits: the conversion must see them unchanged.
layout(binding = 0, std430) readonly buffer K { uint k[]; };
layout(binding = 1, std430) readonly buffer V { uint v[]; };
layout(binding = 2, std430) writeonly buffer CK { uint ck[]; };
layout(binding = 3, std430) writeonly buffer CV { uint cv[]; };

void main()
{
    const uint i = gl_GlobalInvocationID.x;
    const uint t = gl_WorkGroupID.y;
    const uint src = t * pc.width, dst = (pc.pos0 + t) * pc.width;
#ifdef CACHE_F32
    if (i >= pc.width) return;
    ck[dst + i] = k[src + i];
    cv[dst + i] = v[src + i];
#else
    if (2 * i >= pc.width) return; // width is even
    const uint s = src + 2 * i;
    ck[dst / 2 + i] = f32_bits_to_f16(k[s]) | (f32_bits_to_f16(k[s + 1]) << 16);
    cv[dst / 2 + i] = f32_bits_to_f16(v[s]) | (f32_bits_to_f16(v[s + 1]) << 16);
#endif
}
