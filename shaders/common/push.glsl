// push.glsl - the push-constant block of every shader family, one per
// PC_<FAMILY> define. Keep in sync with runtime/vk/vk_push.h: the C structs
// there have the same members in the same order, and their sizes are
// _Static_assert'ed. All members are 32-bit, so std430 packs them tightly.

#ifdef PC_EMBED
// embed: out[t] = table[tokens[t] - row0] for tokens inside this part.
layout(push_constant) uniform PushEmbed {
    uint n_rows;      // tokens
    uint width;       // row length (elements)
    uint row0;        // first table row of the bound part
    uint part_rows;   // rows of the bound part
} pc;
#endif

#ifdef PC_NORM
// rmsnorm and quantize: one workgroup per row.
layout(push_constant) uniform PushNorm {
    uint n_rows;
    uint width;
    uint row0;        // first input row (rmsnorm); 0 for quantize
    uint has_w;       // 1: multiply by the norm weight
    float eps;
} pc;
#endif

#ifdef PC_MATMUL
// ternary matvec / matmul over one row range (part) of the weight.
layout(push_constant) uniform PushMatmul {
    uint n_tok;       // activation rows
    uint k_words;     // K / 16: code words per weight row, activation words / 4
    uint n_rows;      // weight rows in this part
    uint row0;        // output column of the part's first row
    uint out_stride;  // N of the whole matrix (output row length)
    uint nb;          // 256-weight blocks per row (last one may be short)
    uint per_block;   // 1: TQ scales d_b per block; 0: one I2_S scale
    uint accumulate;  // 1: out += y (residual)
    float w_scale;    // I2_S tensor scale
    float lin_scale;  // optional per-layer scale
    uint rows_per_wg; // matvec: weight rows per workgroup
} pc;
#endif

#ifdef PC_ROPE
layout(push_constant) uniform PushRope {
    uint n_rows;
    uint n_head;
    uint head_dim;
    uint n_rot;
    uint pos0;
    uint neox;        // 1: pairs (j, j + n_rot/2); 0: pairs (2j, 2j + 1)
} pc;
#endif

#ifdef PC_KV
layout(push_constant) uniform PushKv {
    uint n_rows;
    uint width;       // n_head_kv * head_dim
    uint pos0;
} pc;
#endif

#ifdef PC_ATTN
// attention (decode split, its reduce, and prefill).
layout(push_constant) uniform PushAttn {
    uint n_rows;
    uint pos0;
    uint n_head;
    uint group;       // query heads per kv head
    uint head_dim;
    uint kv_width;    // cache row length: n_head_kv * head_dim
    uint chunk;       // decode: cache positions per split; prefill: keys per tile
    uint n_split;     // decode: splits per head
    float scale;      // 1 / sqrt(head_dim)
} pc;
#endif

#ifdef PC_ACT
layout(push_constant) uniform PushAct {
    uint width;
    uint n_rows;
    uint act;         // 0: relu(g)^2 * u, 1: silu(g) * u
} pc;
#endif

#ifdef PC_HEAD
// float head over one row range (part) of the table.
layout(push_constant) uniform PushHead {
    uint n_tok;
    uint k;           // row length (a multiple of 8)
    uint n_rows;      // table rows in this part
    uint row0;        // output column of the part's first row
    uint out_stride;  // n_vocab
} pc;
#endif

#ifdef PC_ARGMAX
layout(push_constant) uniform PushArgmax {
    uint n_rows;
    uint n_vocab;
} pc;
#endif

#ifdef PC_TOPK
layout(push_constant) uniform PushTopk {
    uint n_vocab;
    uint k;        // 1 .. min(256, n_vocab)
    uint chunk;    // vocabulary entries per pass-0 workgroup
    uint n_parts;  // pass-0 workgroups
    uint pass;     // 0: per slice, 1: merge of the partial results
} pc;
#endif

#ifdef PC_PROJ
// fused projection for decode (proj_t2_f32_f32): the input row quantized in
// the prologue, up to three ternary weights (segments) with the same K.
layout(push_constant) uniform PushProj {
    uint width;        // input row length K
    uint k_words;      // K / 16 (K padded to the weights' layout)
    uint nb;           // 256-weight blocks per row
    uint norm;         // 1: rmsnorm the row with the norm weight first
    float eps;
    uint rows_per_wg;  // weight rows per workgroup and segment
    uint seg_rows[3];  // rows of each segment's weight
    uint per_block;    // bit s: segment s has TQ block scales
    float w_scale[3];  // I2_S tensor scale per segment
    float lin_scale[3]; // per-layer scale per segment
    uint head_dim;     // qkv: rows of one head
    uint n_rot;        // qkv: rotated dims per head
    uint pos;          // qkv: the token's position (rope angle, cache row)
    uint neox;         // qkv: 1: pairs (j, j + n_rot/2); 0: (2j, 2j + 1)
    uint act;          // gate_up: 0: relu(g)^2 * u, 1: silu(g) * u
} pc;
#endif
