"""Byte-level BPE in the GPT-2 form, trained from scratch.

The tokenizer has to be readable by any GGUF "gpt2" tokenizer, so it follows
GPT-2's conventions exactly:

* text is first cut into pre-tokens by GPT-2's regex (tokenizer.ggml.pre =
  "gpt-2"); merges never cross a pre-token boundary;
* every byte is shown as one printable code point (GPT-2's byte-to-unicode
  map), so token strings and merges are plain UTF-8 strings;
* ids 0..255 are the 256 byte symbols in byte order, then one token per merge
  in merge order, then the control tokens.

Encoding applies the lowest-ranked merge first, repeatedly, inside each
pre-token: the rule llama.cpp and bitnet-vk use.
"""

import collections

import regex  # Debian python3-regex: \p{L} / \p{N} classes that `re` lacks

# GPT-2's pre-tokenizer (the same pattern llama.cpp uses for "gpt-2").
GPT2_PATTERN = regex.compile(
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

CONTROL_TOKENS = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>",
                  "<|start_header_id|>", "<|end_header_id|>"]


def byte_to_symbol():
    """GPT-2's map: printable Latin-1 bytes stand for themselves, the other 68
    bytes take the code points from U+0100 upwards, in byte order."""
    printable = (list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD))
                 + list(range(0xAE, 0x100)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


BYTE_SYM = byte_to_symbol()
SYM_BYTE = {s: b for b, s in BYTE_SYM.items()}


def pretokenize(text):
    return GPT2_PATTERN.findall(text)


def train_bpe(texts, n_merges, log=print):
    """Learns n_merges merges from an iterable of texts.

    Works on the multiset of distinct pre-tokens. Pair counts are kept
    incrementally (only the words that contain the merged pair are
    re-counted), which keeps a few thousand merges over a few MB of text to
    about a minute in pure Python. Ties go to the lexicographically largest
    pair so the result is deterministic.
    """
    word_freq = collections.Counter()
    for t in texts:
        word_freq.update(pretokenize(t))
    words = [[BYTE_SYM[b] for b in w.encode("utf-8")] for w in word_freq]
    freqs = list(word_freq.values())

    pair_count = collections.Counter()
    pair_words = collections.defaultdict(set)
    for wi, syms in enumerate(words):
        for a, b in zip(syms, syms[1:]):
            pair_count[(a, b)] += freqs[wi]
            pair_words[(a, b)].add(wi)

    merges = []
    for step in range(n_merges):
        if not pair_count:
            break
        best = max(pair_count.items(), key=lambda kv: (kv[1], kv[0]))[0]
        if pair_count[best] < 2:
            break
        merges.append(best)
        joined = best[0] + best[1]
        for wi in list(pair_words.get(best, ())):
            syms = words[wi]
            f = freqs[wi]
            # remove this word's old pair counts, re-add after merging
            for a, b in zip(syms, syms[1:]):
                pair_count[(a, b)] -= f
                if pair_count[(a, b)] <= 0:
                    del pair_count[(a, b)]
                pair_words[(a, b)].discard(wi)
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == best[0] and syms[i + 1] == best[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for a, b in zip(out, out[1:]):
                pair_count[(a, b)] += f
                pair_words[(a, b)].add(wi)
        pair_words.pop(best, None)
        if log and (step + 1) % 500 == 0:
            log(f"bpe: {step + 1} merges, last {joined!r}")
    return merges


class Tokenizer:
    def __init__(self, merges, n_vocab):
        self.merges = list(merges)
        self.tokens = [BYTE_SYM[b] for b in range(256)] + [a + b for a, b in self.merges]
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("duplicate token strings")
        self.bos = len(self.tokens)
        self.tokens += CONTROL_TOKENS
        self.eos, self.eot = self.bos + 1, self.bos + 2
        k = 0
        while len(self.tokens) < n_vocab:  # pad to the model's vocabulary size
            self.tokens.append(f"<|reserved_special_token_{k}|>")
            k += 1
        # token_type: 1 normal, 3 control (llama.cpp's llama_token_type)
        self.types = [1] * self.bos + [3] * (len(self.tokens) - self.bos)
        self.rank = {m: i for i, m in enumerate(self.merges)}
        self.id_of = {t: i for i, t in enumerate(self.tokens[:self.bos])}
        self.cache = {}

    def _encode_word(self, w):
        ids = self.cache.get(w)
        if ids is not None:
            return ids
        syms = [BYTE_SYM[b] for b in w.encode("utf-8")]
        while len(syms) > 1:
            best, best_rank = None, None
            for i in range(len(syms) - 1):
                r = self.rank.get((syms[i], syms[i + 1]))
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            syms[best:best + 2] = [syms[best] + syms[best + 1]]
        ids = [self.id_of[s] for s in syms]
        self.cache[w] = ids
        return ids

    def encode(self, text, bos=False):
        out = [self.bos] if bos else []
        for w in pretokenize(text):
            out.extend(self._encode_word(w))
        return out

    def decode(self, ids):
        data = bytearray()
        for i in ids:
            if i >= self.bos:
                continue  # control tokens print nothing
            data.extend(SYM_BYTE[c] for c in self.tokens[i])
        return data.decode("utf-8", errors="replace")

    def merge_strings(self):
        return [a + " " + b for a, b in self.merges]
