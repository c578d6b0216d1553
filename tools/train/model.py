"""A small BitNet b1.58 in the 2B4T architecture, for training in PyTorch.

Per layer (as ../shared/DESIGN.md section 5 describes the inference):
    h = rmsnorm(x) * attn_norm; q, k, v = BitLinear(h); NEOX RoPE on q, k;
    causal softmax attention with grouped KV heads; a = rmsnorm(a) * attn_sub_norm;
    x = x + Wo a; h = rmsnorm(x) * ffn_norm; m = relu(Wgate h)^2 * (Wup h);
    m = rmsnorm(m) * ffn_sub_norm; x = x + Wdown m.
The head is the token embedding (tied). No biases anywhere.

BitLinear quantizes in the forward pass exactly as inference does: weights to
{-1, 0, +1} times their absolute mean (one scale per tensor, I2_S's layout),
inputs per token to int8 with scale 127 / max|x|. Gradients pass straight
through both roundings (the straight-through estimator), so the float "shadow"
weights keep learning while the forward pass only ever sees ternary weights.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def weight_ternary(w):
    """(trits, scale): scale = mean|w|, trits = clamp(round(w / scale), -1, 1)."""
    scale = w.abs().mean().clamp(min=1e-5)
    return (w / scale).round().clamp(-1, 1), scale


def act_int8(x):
    """Per-row int8 quantization, returned dequantized: round half to even
    (torch.round) of x * 127 / max(1e-5, max|x|), clamped to [-128, 127]."""
    s = 127.0 / x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-5)
    return (x * s).round().clamp(-128, 127) / s


class BitLinear(nn.Linear):
    def __init__(self, n_in, n_out):
        super().__init__(n_in, n_out, bias=False)
        nn.init.normal_(self.weight, std=0.02)

    def forward(self, x):
        w = self.weight
        t, scale = weight_ternary(w)
        wq = w + (t * scale - w).detach()  # straight-through
        xq = x + (act_int8(x) - x).detach()
        return F.linear(xq, wq)


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(n_pos, head_dim, base):
    j = torch.arange(head_dim // 2, dtype=torch.float64)
    inv = base ** (-2.0 * j / head_dim)
    ang = torch.arange(n_pos, dtype=torch.float64)[:, None] * inv[None, :]
    return torch.cos(ang).float(), torch.sin(ang).float()


def rope_neox(x, cos, sin):
    """x: (B, H, T, d). NEOX pairs (j, j + d/2) rotate by pos * base^(-2j/d)."""
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, hd = c["n_embd"], c["head_dim"]
        self.n_head, self.n_kv, self.hd = c["n_head"], c["n_head_kv"], hd
        eps = c["rms_eps"]
        self.attn_norm = RMSNorm(d, eps)
        self.wq = BitLinear(d, c["n_head"] * hd)
        self.wk = BitLinear(d, c["n_head_kv"] * hd)
        self.wv = BitLinear(d, c["n_head_kv"] * hd)
        self.attn_sub_norm = RMSNorm(c["n_head"] * hd, eps)
        self.wo = BitLinear(c["n_head"] * hd, d)
        self.ffn_norm = RMSNorm(d, eps)
        self.w_gate = BitLinear(d, c["n_ff"])
        self.w_up = BitLinear(d, c["n_ff"])
        self.ffn_sub_norm = RMSNorm(c["n_ff"], eps)
        self.w_down = BitLinear(c["n_ff"], d)

    def forward(self, x, cos, sin, mask):
        B, T, _ = x.shape
        h = self.attn_norm(x)
        q = self.wq(h).view(B, T, self.n_head, self.hd).transpose(1, 2)
        k = self.wk(h).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        v = self.wv(h).view(B, T, self.n_kv, self.hd).transpose(1, 2)
        q, k = rope_neox(q, cos, sin), rope_neox(k, cos, sin)
        g = self.n_head // self.n_kv  # query head h reads KV head h // g
        k = k.repeat_interleave(g, dim=1)
        v = v.repeat_interleave(g, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(self.hd) + mask
        a = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, -1)
        x = x + self.wo(self.attn_sub_norm(a))
        h = self.ffn_norm(x)
        m = F.relu(self.w_gate(h)).square() * self.w_up(h)
        return x + self.w_down(self.ffn_sub_norm(m))


class BitNet(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embd = nn.Embedding(c["n_vocab"], c["n_embd"])
        nn.init.normal_(self.embd.weight, std=0.02)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layer"]))
        self.out_norm = RMSNorm(c["n_embd"], c["rms_eps"])
        cos, sin = rope_tables(c["n_ctx"], c["head_dim"], c["rope_base"])
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, ids):
        T = ids.shape[1]
        mask = torch.full((T, T), float("-inf")).triu(1)
        x = self.embd(ids)
        cos, sin = self.cos[:T], self.sin[:T]
        for b in self.blocks:
            x = b(x, cos, sin, mask)
        return self.out_norm(x) @ self.embd.weight.t()
