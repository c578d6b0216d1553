// wg_reduce.glsl - the sum and the maximum of one float per invocation
// over the workgroup, the same value returned to every invocation.
//   default         a tree in shared memory, log2(WG) barriers;
//   -DUSE_SUBGROUP  subgroupAdd / subgroupMax within each subgroup, then
//                   every invocation adds (or compares) the subgroups'
//                   totals in subgroup order: two barriers in all.
// The maximum is exact either way (its inputs must not be NaN); the sum's
// rounding follows the grouping, which is the same in every workgroup of
// a dispatch, so workgroups that reduce the same row agree bit for bit.
//
// The includer defines WG (a power of two) and `shared float red[WG]`,
// and with USE_SUBGROUP enables GL_KHR_shader_subgroup_arithmetic first.
// Call from uniform control flow.

float wg_sum(float v)
{
#ifdef USE_SUBGROUP
    v = subgroupAdd(v);
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    precise float s = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) s += red[i];
#else
    const uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (lid < h) red[lid] += red[lid + h];
        barrier();
    }
    const float s = red[0];
#endif
    barrier(); // everyone has read red before it is reused
    return s;
}

float wg_max(float v)
{
#ifdef USE_SUBGROUP
    v = subgroupMax(v);
    if (subgroupElect()) red[gl_SubgroupID] = v;
    barrier();
    float m = red[0];
    for (uint i = 1u; i < gl_NumSubgroups; i++)
        if (red[i] > m) m = red[i];
#else
    const uint lid = gl_LocalInvocationID.x;
    red[lid] = v;
    barrier();
    for (uint h = WG / 2u; h > 0u; h >>= 1) {
        if (lid < h && red[lid + h] > red[lid]) red[lid] = red[lid + h];
        barrier();
    }
    const float m = red[0];
#endif
    barrier();
    return m;
}
