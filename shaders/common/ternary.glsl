// ternary.glsl - exact ternary x int8 dot products over the GPU weight layout.
//
// Layout (runtime/vk/vk_weights.c writes it): a weight row is K/16 uint32
// words of 2-bit codes (code = trit + 1; 3 never occurs in valid files and
// behaves as +2, like the scalar reference). Weight 16w + 4j + i sits in word
// w at bits 8i + 2j, so (word >> 2j) & 0x03030303 holds the codes of weights
// 16w + 4j .. 16w + 4j + 3 as four bytes, lined up with activation word
// 4w + j (four int8, little-endian).
//
// A shader that defines USE_DOT must enable GL_EXT_spirv_intrinsics first.

// Four codes (bytes 0..3) to four signed trits. Setting bit 7 of every byte
// first keeps the subtraction from borrowing across bytes:
// 0 -> 0xFF (-1), 1 -> 0x00, 2 -> 0x01, 3 -> 0x02.
uint codes_to_trits(uint c)
{
    uint b = c & 0x03030303u;
    return ((b | 0x80808080u) - 0x01010101u) ^ 0x80808080u;
}

#ifdef USE_DOT
// OpSDot (SPV_KHR_integer_dot_product) on two 4x8-bit packed vectors.
// Debian's glslc lacks GL_EXT_integer_dot_product, so the instruction is
// declared directly: capabilities DotProduct (6019) and
// DotProductInput4x8BitPacked (6018), opcode 4450, and the packed-vector
// format as a literal operand (0 = PackedVectorFormat4x8Bit).
spirv_instruction(extensions = ["SPV_KHR_integer_dot_product"], capabilities = [6019, 6018], id = 4450)
int sdot_4x8_packed(uint a, uint b, spirv_literal int fmt);

int dot4(uint a, uint b)
{
    return sdot_4x8_packed(a, b, 0);
}
#else
// The same sum with plain integer arithmetic: sign-extend each byte.
int dot4(uint a, uint b)
{
    ivec4 x = ivec4(int(a << 24), int(a << 16), int(a << 8), int(a)) >> 24;
    ivec4 y = ivec4(int(b << 24), int(b << 16), int(b << 8), int(b)) >> 24;
    return x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
}
#endif

// Sum over the 16 weights of one code word times their 16 activations.
int dot16(uint c, uvec4 q)
{
    return dot4(codes_to_trits(c), q.x) + dot4(codes_to_trits(c >> 2), q.y) +
           dot4(codes_to_trits(c >> 4), q.z) + dot4(codes_to_trits(c >> 6), q.w);
}
