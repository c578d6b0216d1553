// top-k: the k largest logits of one row, sorted by value descending, the
// lower id first among equal values; NaN counts as -inf and +inf as FLT_MAX
// (as the host sampler, runtime/sampler.c), and -0 equals +0 for ordering.
//
// Pass 0: workgroup g selects the top k of the slice [g*chunk, (g+1)*chunk)
// of the vocabulary. Pass 1 (one workgroup) selects the top k of the
// n_parts * k partial results. When n_parts == 1, pass 0 writes the final
// ids and values itself. Both passes run the same selection: a tile of TILE
// (key, id) pairs in shared memory, bitonic-sorted; the best k stay at the
// front while the rest of the tile is refilled with the next candidates.
//
// Ordering uses an integer key (the float bits mapped so that unsigned order
// is float order), never a float compare, so denormals cannot be flushed
// into ties; with (key, id) a total order, the result does not depend on the
// schedule. Values are read back from the logits by id: bit-exact.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64; // a power of two, <= TILE / 2

#define PC_TOPK
#include "common/push.glsl"

#define TILE 1024u       // a power of two, > k (k <= 256)
#define NO_ID 0xFFFFFFFFu // padding: key 0 sorts below every real logit

layout(binding = 0, std430) readonly buffer Logits { float logits[]; };
layout(binding = 1, std430) buffer Part { uvec2 part[]; }; // [n_parts][k] (key, id)
layout(binding = 2, std430) writeonly buffer Ids { int ids[]; };
layout(binding = 3, std430) writeonly buffer Vals { float vals[]; };

shared uint skey[TILE];
shared uint sid[TILE];

float sanitized(float v)
{
    if (v != v) return uintBitsToFloat(0xFF800000u); // -inf
    if (v > 3.40282347e38) return 3.40282347e38;
    return v;
}

// Unsigned order of the key = float order of the (sanitized) value: the sign
// bit flipped for non-negatives, every bit flipped for negatives. -0 is
// folded onto +0 first, as they compare equal. -inf maps to 0x007FFFFF, so
// key 0 (padding) is below every real value.
uint order_key(float v)
{
    uint b = floatBitsToUint(sanitized(v));
    if (b == 0x80000000u) b = 0u;
    return (b & 0x80000000u) != 0u ? ~b : b | 0x80000000u;
}

// true when (ka, ia) comes before (kb, ib): larger value, then lower id.
bool before(uint ka, uint ia, uint kb, uint ib)
{
    return ka > kb || (ka == kb && ia < ib);
}

// Candidate j of this workgroup's input (0 <= j < n_in).
uvec2 candidate(uint j, uint first)
{
    if (pc.pass == 0u) {
        const uint i = first + j;
        return uvec2(order_key(logits[i]), i);
    }
    return part[j];
}

// Sorts skey/sid[0, TILE) into the sampling order (best first).
void bitonic_sort(uint lid)
{
    for (uint size = 2u; size <= TILE; size <<= 1) {
        for (uint stride = size >> 1; stride > 0u; stride >>= 1) {
            for (uint p = lid; p < TILE / 2u; p += WG) {
                const uint i = 2u * stride * (p / stride) + (p % stride);
                const uint j = i + stride;
                // Blocks of `size` alternate direction until the last merge.
                const bool best_first = (i & size) == 0u;
                const uint ki = skey[i], ii = sid[i], kj = skey[j], ij = sid[j];
                if (before(kj, ij, ki, ii) == best_first) {
                    skey[i] = kj;
                    sid[i] = ij;
                    skey[j] = ki;
                    sid[j] = ii;
                }
            }
            barrier();
        }
    }
}

void main()
{
    const uint lid = gl_LocalInvocationID.x;
    const uint g = gl_WorkGroupID.x;
    const uint k = pc.k;
    uint first = 0u, n_in;
    if (pc.pass == 0u) {
        first = g * pc.chunk;
        n_in = min(pc.chunk, pc.n_vocab - first);
    } else {
        n_in = pc.n_parts * k;
    }

    // The first tile takes TILE candidates; each later one keeps the best k
    // in [0, k) and refills [k, TILE).
    uint next = 0u;
    for (uint round = 0u; round == 0u || next < n_in; round++) {
        const uint lo = round == 0u ? 0u : k;
        for (uint s = lo + lid; s < TILE; s += WG) {
            const uint j = next + (s - lo);
            const uvec2 c = j < n_in ? candidate(j, first) : uvec2(0u, NO_ID);
            skey[s] = c.x;
            sid[s] = c.y;
        }
        next += TILE - lo;
        barrier();
        bitonic_sort(lid);
    }

    if (pc.pass == 0u && pc.n_parts > 1u) {
        for (uint s = lid; s < k; s += WG) part[g * k + s] = uvec2(skey[s], sid[s]);
    } else {
        // k <= n_vocab, so the first k are real entries, never padding.
        for (uint s = lid; s < k; s += WG) {
            ids[s] = int(sid[s]);
            vals[s] = sanitized(logits[sid[s]]);
        }
    }
}
