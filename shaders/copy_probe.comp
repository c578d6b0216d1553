// copy_probe: dst = src, 16 bytes per load and store, a grid-stride loop so
// that any workgroup count covers any size. Not an op of the model: the
// bandwidth probe of `bitnet-vk bench` (runtime/vk/vk_bandwidth.c) times it
// to find what the device's memory can stream, the roofline decode speed is
// reported against. Its push block lives here, not in common/push.glsl,
// because no op shares it.
#version 450

layout(local_size_x_id = 0) in;

layout(push_constant) uniform PushCopy {
    uint n;           // 16-byte elements to copy
} pc;

layout(binding = 0, std430) readonly buffer Src { uvec4 src[]; };
layout(binding = 1, std430) writeonly buffer Dst { uvec4 dst[]; };

void main()
{
    const uint stride = gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    for (uint i = gl_GlobalInvocationID.x; i < pc.n; i += stride) dst[i] = src[i];
}
