#!/usr/bin/python3
"""Train the small BitNet b1.58 model that bitnet-vk ships, then export it.

    nice -n 19 /usr/bin/python3 tools/train/train.py            # everything
    /usr/bin/python3 tools/train/train.py --export-only         # from the checkpoint

Needs Debian's python3-torch, python3-numpy, python3-regex and
python3-matplotlib (Debian's /usr/bin/python3, not a pyenv one), and
libopenblas0-pthread: Debian's torch calls the system BLAS, and the default
reference BLAS makes training about ten times slower. The corpus packages are
installed by the script (see corpus.py). Steps:

1. corpus: fortune cookies and the Jargon File; a fixed 2% of documents held out;
2. a byte-level BPE tokenizer trained on the training documents;
3. training: fixed number of steps, fixed seeds, two threads;
4. export (export.py): GGUF files and float64 reference outputs in models/.

Training is deterministic for a given torch build and thread count, but not
bit-identical across machines; the committed model is the one of record.
"""

import argparse
import json
import math
import os
import random
import sys
import time

# Debian's torch calls OpenBLAS from each of its own threads; OpenBLAS
# threads on top of those oversubscribe the cores (about 20% slower on 2).
# Set before numpy or torch loads the library.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
import corpus  # noqa: E402
from model import BitNet  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

CONFIG = {
    # Dimensions are multiples of 256 so I2_S (128) and TQ2_0 (256) both fit.
    "n_vocab": 3072,          # 256 bytes + 2811 merges + 5 control tokens
    "n_embd": 256,
    "n_layer": 4,
    "n_head": 4,
    "n_head_kv": 2,
    "head_dim": 64,
    "n_ff": 768,
    "n_ctx": 256,
    "rms_eps": 1e-5,
    "rope_base": 10000.0,
}

TRAIN = {
    "seed": 1234,
    "batch": 16,
    "seq": 256,             # tokens per training window, BOS included
    "steps": 1000,
    "lr": 2e-3,
    "lr_min_frac": 0.1,
    "warmup": 100,
    "weight_decay": 0.05,
    "eval_every": 250,
    "threads": 2,
}


def log(msg):
    print(time.strftime("%H:%M:%S"), msg, flush=True)


def build_stream(tok, docs):
    """All documents as one token stream, separated like fortune files."""
    ids = []
    for d in docs:
        ids.extend(tok.encode(d + "%\n"))
    return np.array(ids, dtype=np.int64)


def windows(stream, bos, starts, seq):
    """Each window is BOS + seq-1 tokens of the stream, as a chunk of the
    perplexity evaluation is, and as a prompt is at inference."""
    x = np.empty((len(starts), seq + 1), dtype=np.int64)
    x[:, 0] = bos
    for r, s in enumerate(starts):
        x[r, 1:] = stream[s:s + seq]
    return torch.from_numpy(x)


def lr_at(step, t):
    if step < t["warmup"]:
        return t["lr"] * (step + 1) / t["warmup"]
    p = (step - t["warmup"]) / max(1, t["steps"] - t["warmup"])
    return t["lr"] * (t["lr_min_frac"] + (1 - t["lr_min_frac"]) * 0.5 * (1 + math.cos(math.pi * p)))


@torch.no_grad()
def evaluate(model, stream, bos, seq):
    """Mean loss over non-overlapping BOS-led windows of the held-out stream."""
    model.eval()
    n = (len(stream) - 1) // (seq - 1)
    tot, cnt = 0.0, 0
    for i in range(0, n, 16):
        starts = [j * (seq - 1) for j in range(i, min(n, i + 16))]
        x = windows(stream, bos, starts, seq - 1)
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(
            logits[:, :].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="sum")
        tot += loss.item()
        cnt += x[:, 1:].numel()
    model.train()
    return tot / cnt


def train(args):
    t = TRAIN
    torch.set_num_threads(t["threads"])
    torch.manual_seed(t["seed"])
    rng = np.random.default_rng(t["seed"])
    os.makedirs(args.work, exist_ok=True)
    t0 = time.time()

    train_docs, held_docs = corpus.load(log=log)
    random.Random(t["seed"]).shuffle(train_docs)
    n_merges = CONFIG["n_vocab"] - 256 - len(bpe.CONTROL_TOKENS)
    merges = bpe.train_bpe(train_docs, n_merges, log=log)
    tok = bpe.Tokenizer(merges, CONFIG["n_vocab"])
    stream = build_stream(tok, train_docs)
    held = build_stream(tok, held_docs)
    log(f"tokenizer: {len(merges)} merges; train {len(stream)} tokens, held out {len(held)} "
        f"({time.time() - t0:.0f} s)")

    model = BitNet(CONFIG)
    n_params = sum(p.numel() for p in model.parameters())
    decay = [p for n, p in model.named_parameters() if p.dim() == 2 and "embd" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() == 2 and "embd" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": t["weight_decay"]},
                             {"params": other, "weight_decay": 0.0}],
                            lr=t["lr"], betas=(0.9, 0.95), eps=1e-8)
    log(f"model: {n_params} parameters; {t['steps']} steps of {t['batch']}x{t['seq']} tokens")

    history = {"step": [], "train_loss": [], "eval_step": [], "eval_loss": []}
    t_train = time.time()
    run, run_n = 0.0, 0
    for step in range(t["steps"]):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, t)
        starts = rng.integers(0, len(stream) - t["seq"], size=t["batch"])
        x = windows(stream, tok.bos, starts, t["seq"])
        logits = model(x[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run += loss.item()
        run_n += 1
        if (step + 1) % 25 == 0 or step + 1 == t["steps"]:
            history["step"].append(step + 1)
            history["train_loss"].append(run / run_n)
            run, run_n = 0.0, 0
        if (step + 1) % t["eval_every"] == 0 or step + 1 == t["steps"]:
            ev = evaluate(model, held, tok.bos, t["seq"])
            history["eval_step"].append(step + 1)
            history["eval_loss"].append(ev)
            el = time.time() - t_train
            log(f"step {step + 1}: train {history['train_loss'][-1]:.3f} held-out {ev:.3f} "
                f"(ppl {math.exp(ev):.1f}), {el:.0f} s, {(step + 1) * t['batch'] * t['seq'] / el:.0f} tok/s")
            save(args, CONFIG, TRAIN, merges, model, history, time.time() - t_train, n_params,
                 train_docs, held_docs, stream, held)
    log(f"trained in {time.time() - t_train:.0f} s; checkpoint in {args.work}")


def save(args, config, train_cfg, merges, model, history, train_s, n_params, train_docs, held_docs, stream, held):
    """Checkpoint after every evaluation, so an interrupted run still leaves a model."""

    ckpt = {
        "config": config, "train": train_cfg, "steps_done": history["eval_step"][-1], "merges": merges, "state": model.state_dict(),
        "history": history, "train_seconds": train_s, "n_params": n_params,
        "corpus": {"train_docs": len(train_docs), "held_docs": len(held_docs),
                   "train_tokens": int(len(stream)), "held_tokens": int(len(held)),
                   "train_bytes": sum(map(len, train_docs)), "held_bytes": sum(map(len, held_docs))},
        "held_docs": held_docs, "torch": torch.__version__,
    }
    tmp = os.path.join(args.work, "checkpoint.pt.tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, os.path.join(args.work, "checkpoint.pt"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(ROOT, "build", "train"),
                    help="checkpoint directory (not committed)")
    ap.add_argument("--out", default=os.path.join(ROOT, "models"), help="where the GGUF files and references go")
    ap.add_argument("--export-only", action="store_true", help="skip training, export the checkpoint")
    ap.add_argument("--steps", type=int, help="override the number of training steps (for trials)")
    args = ap.parse_args()
    if args.steps:
        TRAIN["steps"] = args.steps
    if not args.export_only:
        train(args)
    import export  # here: training does not need numpy-only export code loaded
    export.export(os.path.join(args.work, "checkpoint.pt"), args.out, log=log)


if __name__ == "__main__":
    main()
