// embed: out[t] = row tokens[t] of the table, as float32.
// Variants: table F16 (two halves per uint32 word; widening is exact) or
// -DTABLE_F32 (F32 tables, and BF16/Q8_0/Q6_K tables the backend widened
// to F32 at upload). A table split into row ranges is bound one part per
// dispatch; each dispatch writes only the tokens whose row it holds.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;

#define PC_EMBED
#include "common/push.glsl"

#ifdef TABLE_F32
layout(binding = 0, std430) readonly buffer Table { float table[]; };
#else
layout(binding = 0, std430) readonly buffer Table { uint table[]; };
#endif
layout(binding = 1, std430) readonly buffer Tokens { int tokens[]; };
layout(binding = 2, std430) writeonly buffer Out { float outv[]; };

void main()
{
    const uint t = gl_WorkGroupID.y;
    const uint i = gl_GlobalInvocationID.x;
    const int tok = tokens[t];
    if (tok < int(pc.row0) || uint(tok) - pc.row0 >= pc.part_rows) return;
    const uint r = uint(tok) - pc.row0;
#ifdef TABLE_F32
    if (i >= pc.width) return;
    outv[t * pc.width + i] = table[r * pc.width + i];
#else
    const uint words = pc.width / 2;
    if (i >= words) return;
    const vec2 v = unpackHalf2x16(table[r * words + i]);
    outv[t * pc.width + 2 * i] = v.x;
    outv[t * pc.width + 2 * i + 1] = v.y;
#endif
}
