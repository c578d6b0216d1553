"""Float64 reference forward pass with the inference numerics of
../shared/DESIGN.md section 5, on the weights exactly as exported.

Ternary layers follow the golden data's recipe: each token's input row is
rounded to float32, m = max(1e-5, max|x|), s = 127 / m in float32,
q = clamp(round_half_to_even(x * s), -128, 127) with the product in float32;
acc = sum t * q is an exact integer; y = acc * scale / s (for TQ2_0 with the
fp16 block scale d, all blocks of a tensor carrying the same d here).
Everything else is float64: RMSNorm, NEOX RoPE, causal attention with an
exact (F32-like) KV cache, relu(gate)^2 * up, and the tied F16 head widened
exactly. This is numpy, not torch, so nothing here shares code with training.
"""

import numpy as np


def quantize_rows(x):
    xf = x.astype(np.float32)
    m = np.maximum(np.float32(1e-5), np.abs(xf).max(axis=-1, keepdims=True))
    s = (np.float32(127.0) / m).astype(np.float32)
    q = np.clip(np.rint(xf * s), -128, 127)  # float32 product, rint = half to even
    return q.astype(np.float64), s.astype(np.float64)


def ternary(q, s, layer):
    trits, scale = layer  # trits float64 [out, in], scale a Python float
    acc = q @ trits.T     # integers below 2^53: exact in float64
    return acc * scale / s


def rmsnorm(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


class Reference:
    """weights: dict with 'embd' (float64 of the F16 values, [V, D]),
    'out_norm', and per layer dicts of norms and (trits, scale) pairs."""

    def __init__(self, cfg, weights):
        self.c, self.w = cfg, weights
        hd = cfg["head_dim"]
        self.inv = cfg["rope_base"] ** (-2.0 * np.arange(hd // 2) / hd)

    def rope(self, x, pos):
        # x [T, H, hd]; pairs (j, j + hd/2)
        ang = pos[:, None] * self.inv[None, :]
        cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        h = x.shape[-1] // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

    def forward(self, ids):
        """Logits [T, V] for a sequence starting at position 0."""
        c, w = self.c, self.w
        T, H, KV, hd, eps = len(ids), c["n_head"], c["n_head_kv"], c["head_dim"], c["rms_eps"]
        pos = np.arange(T, dtype=np.float64)
        mask = np.triu(np.full((T, T), -np.inf), 1)
        x = w["embd"][np.asarray(ids)]
        for L in w["layers"]:
            q8, s = quantize_rows(rmsnorm(x, L["attn_norm"], eps))
            q = self.rope(ternary(q8, s, L["q"]).reshape(T, H, hd), pos)
            k = self.rope(ternary(q8, s, L["k"]).reshape(T, KV, hd), pos)
            v = ternary(q8, s, L["v"]).reshape(T, KV, hd)
            a = np.empty((T, H, hd))
            for h in range(H):
                g = h // (H // KV)
                att = q[:, h, :] @ k[:, g, :].T / np.sqrt(hd) + mask
                att = np.exp(att - att.max(axis=-1, keepdims=True))
                att /= att.sum(axis=-1, keepdims=True)
                a[:, h, :] = att @ v[:, g, :]
            q8, s = quantize_rows(rmsnorm(a.reshape(T, H * hd), L["attn_sub_norm"], eps))
            x = x + ternary(q8, s, L["o"])
            q8, s = quantize_rows(rmsnorm(x, L["ffn_norm"], eps))
            m = np.maximum(ternary(q8, s, L["gate"]), 0.0) ** 2 * ternary(q8, s, L["up"])
            q8, s = quantize_rows(rmsnorm(m, L["ffn_sub_norm"], eps))
            x = x + ternary(q8, s, L["down"])
        return rmsnorm(x, w["out_norm"], eps) @ w["embd"].T

    def greedy(self, ids, n):
        """n greedy tokens (lowest id on a tie) and the top-1 minus top-2 margins."""
        ids, out, margins = list(ids), [], []
        for _ in range(n):
            z = self.forward(ids)[-1]
            best = int(np.argmax(z))  # argmax returns the first (lowest) index on ties
            top2 = np.sort(z)[-2:]
            out.append(best)
            margins.append(float(top2[1] - top2[0]))
            ids.append(best)
        return out, margins

    def token_logprobs(self, text_ids, bos, n_ctx):
        """The perplexity method of `bitnet-vk perplexity`: the text's tokens
        (no BOS) in consecutive chunks of n_ctx - 1; each chunk runs as
        [BOS] + chunk from position 0, and every token of the chunk is scored
        given what precedes it in its chunk. Returns one log-probability per
        text token."""
        out = []
        step = n_ctx - 1
        for i in range(0, len(text_ids), step):
            chunk = list(text_ids[i:i + step])
            z = self.forward([bos] + chunk)[:-1]
            z = z - z.max(axis=-1, keepdims=True)
            lse = np.log(np.exp(z).sum(axis=-1))
            out.extend(z[np.arange(len(chunk)), chunk] - lse)
        return np.array(out)
