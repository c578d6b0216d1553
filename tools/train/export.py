"""Export a training checkpoint to GGUF and write the float64 references.

Files written to OUT (models/ by default):
    fortunes-4m-i2_s.gguf    arch bitnet-b1.58, I2_S ternary, F16 embeddings
    fortunes-4m-tq2_0.gguf   the same weights as TQ2_0 (see below)
    reference/               float64 reference outputs (reference.py)
and the model card's loss curve to docs/model-card-loss.png.

The TQ2_0 file keeps the architecture string bitnet-b1.58: the model was
trained with relu(gate)^2, and GGUF's `bitnet` architecture means silu(gate)
in bitnet-vk (and llama.cpp); a `bitnet` file would run the wrong activation.
bitnet-vk binds any ternary weight type to any architecture.
"""

import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import gguf  # noqa: E402
from model import weight_ternary  # noqa: E402
from reference import Reference  # noqa: E402

NAME = "fortunes-4m"

# Fixed prompts for the logits references. The bare BOS is the unconditional
# start; the others open a cookie or a Jargon File entry.
PROMPTS = [
    "",
    "Never trust a",
    "The secret of life is",
    "Q: How many programmers does it take to change a light bulb?\nA:",
    "kludge: n.\n\n",
]
DEMO_PROMPT = "The secret of life is"
N_GREEDY = 64
HELDOUT_CHARS = 12000  # the committed held-out text: enough for a stable
                       # perplexity, small enough for a quick test


def ternary_layers(state, cfg):
    """Trits and scale of each BitLinear, computed as training's forward pass
    computes them (float32 torch), so the exported model is the trained one."""
    layers = []
    names = {"q": "wq", "k": "wk", "v": "wv", "o": "wo", "gate": "w_gate", "up": "w_up", "down": "w_down"}
    for i in range(cfg["n_layer"]):
        L = {}
        for short, mod in names.items():
            w = state[f"blocks.{i}.{mod}.weight"].float()
            t, scale = weight_ternary(w)
            L[short] = (t.numpy().astype(np.int8), float(np.float32(scale.item())))
        for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            L[n] = state[f"blocks.{i}.{n}.weight"].float().numpy().astype(np.float32)
        layers.append(L)
    return layers


def reference_weights(embd16, out_norm, layers, tq2):
    """float64 views of exactly what the file holds (F16 embedding widened,
    fp16 block scale for TQ2_0)."""
    def lin(t, scale):
        s = float(np.float16(scale)) if tq2 else scale
        return t.astype(np.float64), s
    rl = []
    for L in layers:
        d = {k: lin(*L[k]) for k in ("q", "k", "v", "o", "gate", "up", "down")}
        for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            d[n] = L[n].astype(np.float64)
        rl.append(d)
    return {"embd": embd16.astype(np.float64), "out_norm": out_norm.astype(np.float64), "layers": rl}


def write_gguf(path, cfg, tok, embd16, out_norm, layers, wtype, n_params):
    a = "bitnet-b1.58"
    w = gguf.Writer()
    w.add("general.architecture", gguf.STR, a)
    w.add("general.name", gguf.STR, f"{NAME} ({'I2_S' if wtype == gguf.T_I2_S else 'TQ2_0'})")
    w.add("general.description", gguf.STR,
          f"A {n_params / 1e6:.1f}M-parameter BitNet b1.58 trained by bitnet-vk's tools/train on "
          "fortune cookies and the Jargon File; see docs/model-card.md")
    w.add(f"{a}.vocab_size", gguf.U32, cfg["n_vocab"])
    w.add(f"{a}.context_length", gguf.U32, cfg["n_ctx"])
    w.add(f"{a}.embedding_length", gguf.U32, cfg["n_embd"])
    w.add(f"{a}.block_count", gguf.U32, cfg["n_layer"])
    w.add(f"{a}.feed_forward_length", gguf.U32, cfg["n_ff"])
    w.add(f"{a}.rope.dimension_count", gguf.U32, cfg["head_dim"])
    w.add(f"{a}.attention.head_count", gguf.U32, cfg["n_head"])
    w.add(f"{a}.attention.head_count_kv", gguf.U32, cfg["n_head_kv"])
    w.add(f"{a}.attention.layer_norm_rms_epsilon", gguf.F32, cfg["rms_eps"])
    w.add(f"{a}.rope.freq_base", gguf.F32, cfg["rope_base"])
    w.add("general.file_type", gguf.U32, 40 if wtype == gguf.T_I2_S else 37)
    w.add("general.quantization_version", gguf.U32, 2)
    w.add("tokenizer.ggml.model", gguf.STR, "gpt2")
    w.add("tokenizer.ggml.pre", gguf.STR, "gpt-2")  # bpe.GPT2_PATTERN
    w.add_array("tokenizer.ggml.tokens", gguf.STR, tok.tokens)
    w.add_array("tokenizer.ggml.token_type", gguf.I32, tok.types)
    w.add_array("tokenizer.ggml.merges", gguf.STR, tok.merge_strings())
    w.add("tokenizer.ggml.bos_token_id", gguf.U32, tok.bos)
    w.add("tokenizer.ggml.eos_token_id", gguf.U32, tok.eos)
    w.add("tokenizer.ggml.eot_token_id", gguf.U32, tok.eot)
    w.add("tokenizer.ggml.add_bos_token", gguf.BOOL, True)
    w.add("tokenizer.ggml.add_eos_token", gguf.BOOL, False)

    D = cfg["n_embd"]
    w.add_tensor("token_embd.weight", [D, cfg["n_vocab"]], gguf.T_F16, embd16.astype("<f2").tobytes())

    def tern(name, t, scale):
        ne = [t.shape[1], t.shape[0]]  # ne0 = input width (row length)
        if wtype == gguf.T_I2_S:
            data = gguf.pack_i2s(t, scale)
        else:
            data = gguf.pack_tq2_0(t, np.float16(scale))
        w.add_tensor(name, ne, wtype, data)

    def norm(name, v):
        w.add_tensor(name, [v.shape[0]], gguf.T_F32, v.astype("<f4").tobytes())

    for i, L in enumerate(layers):
        p = f"blk.{i}."
        norm(p + "attn_norm.weight", L["attn_norm"])
        tern(p + "attn_q.weight", *L["q"])
        tern(p + "attn_k.weight", *L["k"])
        tern(p + "attn_v.weight", *L["v"])
        tern(p + "attn_output.weight", *L["o"])
        norm(p + "attn_sub_norm.weight", L["attn_sub_norm"])
        norm(p + "ffn_norm.weight", L["ffn_norm"])
        tern(p + "ffn_gate.weight", *L["gate"])
        tern(p + "ffn_up.weight", *L["up"])
        tern(p + "ffn_down.weight", *L["down"])
        norm(p + "ffn_sub_norm.weight", L["ffn_sub_norm"])
    norm("output_norm.weight", out_norm)
    w.write(path)


def ids_line(ids):
    return " ".join(str(int(i)) for i in ids) + "\n"


def plot_loss(hist, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    ax.plot(hist["step"], hist["train_loss"], label="training (mean of 25 steps)")
    ax.plot(hist["eval_step"], hist["eval_loss"], "o-", label="held-out")
    ax.set_xlabel("step (16 x 256 tokens)")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(f"{NAME}: BitNet b1.58 training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def export(ckpt_path, out, log=print):
    ck = torch.load(ckpt_path)
    cfg, state = ck["config"], ck["state"]
    tok = bpe.Tokenizer(ck["merges"], cfg["n_vocab"])
    os.makedirs(os.path.join(out, "reference", "tq2_0"), exist_ok=True)

    embd16 = state["embd.weight"].float().numpy().astype(np.float16)
    out_norm = state["out_norm.weight"].float().numpy().astype(np.float32)
    layers = ternary_layers(state, cfg)
    for wtype, suffix in ((gguf.T_I2_S, "i2_s"), (gguf.T_TQ2_0, "tq2_0")):
        path = os.path.join(out, f"{NAME}-{suffix}.gguf")
        write_gguf(path, cfg, tok, embd16, out_norm, layers, wtype, ck["n_params"])
        log(f"export: {path} ({os.path.getsize(path)} bytes)")

    ref = Reference(cfg, reference_weights(embd16, out_norm, layers, tq2=False))
    ref_tq = Reference(cfg, reference_weights(embd16, out_norm, layers, tq2=True))
    rdir = os.path.join(out, "reference")
    manifest = {"model": f"{NAME}-i2_s.gguf", "model_tq2_0": f"{NAME}-tq2_0.gguf", "n_vocab": cfg["n_vocab"],
                "bos": tok.bos, "eos": tok.eos, "prompts": []}
    for k, text in enumerate(PROMPTS, 1):
        ids = tok.encode(text, bos=True)
        z = ref.forward(ids)
        greedy, margins = ref.greedy(ids, N_GREEDY)
        base = os.path.join(rdir, f"prompt{k}")
        with open(base + ".tokens.txt", "w") as f:
            f.write(ids_line(ids))
        z.astype("<f4").tofile(base + ".all_logits.f32")
        with open(base + ".greedy.txt", "w") as f:
            f.write(ids_line(greedy))
        with open(base + ".margins.txt", "w") as f:
            f.write(" ".join(f"{m:.4f}" for m in margins) + "\n")
        ref_tq.forward(ids).astype("<f4").tofile(os.path.join(rdir, "tq2_0", f"prompt{k}.all_logits.f32"))
        manifest["prompts"].append({"file": f"prompt{k}", "text": text, "tokens": ids, "greedy": greedy,
                                    "margins": [round(m, 4) for m in margins],
                                    "greedy_text": tok.decode(greedy)})
        log(f"reference: prompt {k} ({len(ids)} tokens) -> {tok.decode(greedy)!r}")

    # Held-out text: whole held-out documents in their hashed order, as the
    # training stream joins documents, up to HELDOUT_CHARS.
    text = ""
    for d in ck["held_docs"]:
        if text and len(text) + len(d) + 2 > HELDOUT_CHARS:
            break
        text += d + "%\n"
    with open(os.path.join(rdir, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    tids = tok.encode(text)
    lp = ref.token_logprobs(tids, tok.bos, cfg["n_ctx"])
    lp.astype("<f4").tofile(os.path.join(rdir, "heldout.logprobs.f32"))
    with open(os.path.join(rdir, "heldout.tokens.txt"), "w") as f:
        f.write(ids_line(tids))
    ppl = float(np.exp(-lp.mean()))
    with open(os.path.join(rdir, "heldout.perplexity.txt"), "w") as f:
        f.write(f"{ppl:.6f} {len(tids)}\n")  # for tests/test_trained_model.c
    manifest["heldout"] = {"file": "heldout.txt", "n_tokens": len(tids), "n_ctx": cfg["n_ctx"],
                           "method": "text tokens without BOS in chunks of n_ctx-1; each chunk runs as "
                                     "[BOS]+chunk from position 0; every chunk token is scored",
                           "sum_logprob": float(lp.sum()), "perplexity": ppl}
    # The whole held-out set too (the model card's number; not used by tests).
    all_ids = tok.encode("".join(d + "%\n" for d in ck["held_docs"]))
    lp_all = ref.token_logprobs(all_ids, tok.bos, cfg["n_ctx"])
    manifest["heldout_full"] = {"n_docs": len(ck["held_docs"]), "n_tokens": len(all_ids),
                                "perplexity": float(np.exp(-lp_all.mean()))}
    manifest["training"] = {"seconds": ck["train_seconds"], "steps": ck.get("steps_done"), "config": cfg,
                            "train": ck["train"], "n_params": ck["n_params"], "corpus": ck["corpus"],
                            "torch": ck["torch"], "final_train_loss": ck["history"]["train_loss"][-1],
                            "final_heldout_loss": ck["history"]["eval_loss"][-1]}
    with open(os.path.join(rdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    log(f"reference: held-out {len(tids)} tokens, perplexity {ppl:.4f}; "
        f"full held-out {len(all_ids)} tokens, perplexity {manifest['heldout_full']['perplexity']:.4f}")

    docs = os.path.join(os.path.dirname(os.path.abspath(out)), "docs")
    if os.path.isdir(docs):
        plot_loss(ck["history"], os.path.join(docs, "model-card-loss.png"))
