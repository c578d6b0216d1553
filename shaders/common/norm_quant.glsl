// norm_quant.glsl - rmsnorm and int8 quantization of one row by one
// workgroup (DESIGN.md section 5):
//   x' = x * (1 / sqrt(mean(x^2) + eps)) * w   (or x' = x without the norm)
//   m = max(1e-5, max|x'|), s = 127 / m,
//   q = clamp(round_half_even(x' * s), -128, 127), NaN -> 0.
// quantize_f32_i8 and the fused projections (proj_t2_f32_f32) both use
// these functions, so with the same WG every workgroup of either gets the
// same factor, scale and int8 values bit for bit.
//
// The includer defines WG (a power of two), `shared float red[WG]`, and
// float nq_x(uint i) and nq_w(uint i), element i of the row and of the
// norm weight. Call from uniform control flow: the reductions
// (common/wg_reduce.glsl, tree or subgroup by USE_SUBGROUP) use barrier().

#include "wg_reduce.glsl"

// rmsnorm's factor 1 / sqrt(mean(x^2) + eps).
float nq_rms_factor(uint width, float eps)
{
    const uint lid = gl_LocalInvocationID.x;
    precise float ss = 0.0;
    for (uint i = lid; i < width; i += WG) ss += nq_x(i) * nq_x(i);
    return 1.0 / sqrt(wg_sum(ss) / float(width) + eps);
}

// Element i of x': normed with factor f and weight when norm, else as is.
float nq_value(uint i, bool norm, float f, bool has_w)
{
    if (!norm) return nq_x(i);
    precise float v = nq_x(i) * f;
    if (has_w) v = v * nq_w(i);
    return v;
}

// The quantization scale s = 127 / max(1e-5, max|x'|). "a > m" skips NaN,
// as the reference's comparison does; the maximum is exact in any order.
float nq_scale(uint width, bool norm, float f, bool has_w)
{
    const uint lid = gl_LocalInvocationID.x;
    float m = 0.0;
    for (uint i = lid; i < width; i += WG) {
        const float a = abs(nq_value(i, norm, f, has_w));
        if (a > m) m = a;
    }
    m = wg_max(m);
    if (!(m >= 1e-5)) m = 1e-5;
    return 127.0 / m;
}

// The int8 value of v at scale sc, as an int in -128 .. 127.
int nq_quant(float v, float sc)
{
    float r = roundEven(v * sc);
    if (r > 127.0) r = 127.0;
    if (r < -128.0) r = -128.0;
    if (r != r) r = 0.0;
    return int(r);
}
