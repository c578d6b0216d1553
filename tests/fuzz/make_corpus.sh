#!/bin/sh
# Remakes the seed corpora in tests/fuzz/corpus/ (committed; rerun only to
# change them):
#   fuzz_gguf_model  three tiny synthetic models (one per architecture family
#                    and ternary type, from bn-mkmodel), and the metadata of
#                    the two golden models and two real vocabularies cut off
#                    where their tensor data or merges begin (the parser's
#                    paths without megabytes of weights);
#   fuzz_tokenizer,  short texts: ASCII, accents, CJK, emoji, control tokens,
#   fuzz_chat        invalid UTF-8, each led by the vocabulary-picking byte.
# Kept small (well under 2 MB in all).
# usage: tests/fuzz/make_corpus.sh BN_MKMODEL [TESTDATA_DIR]
set -eu
mk="$1"
td="${2:-$(cd "$(dirname "$0")/../../.." && pwd)/shared/testdata}"
dir="$(cd "$(dirname "$0")" && pwd)/corpus"
g="$dir/fuzz_gguf_model" t="$dir/fuzz_tokenizer" c="$dir/fuzz_chat"
mkdir -p "$g" "$t" "$c"

# $common is split into words on purpose (SC2086).
common="--preset tiny --n-embd 256 --n-layer 1 --n-head 2 --n-head-kv 1 --n-ff 256 --n-vocab 261 --n-ctx 64"
# shellcheck disable=SC2086
"$mk" $common --arch bitnet-b1.58 --wtype i2_s --embd-type q8_0 -o "$g/synth-b158-i2s.gguf"
# shellcheck disable=SC2086
"$mk" $common --arch bitnet --wtype tq2_0 --embd-type f16 --scale-tensors -o "$g/synth-bitnet-tq2.gguf"
# shellcheck disable=SC2086
"$mk" $common --arch llama --wtype tq1_0 --embd-type bf16 --output-tensor -o "$g/synth-llama-tq1.gguf"
head -c 40000 "$td/golden/i2s_bitnet_b158/model.gguf" >"$g/golden-i2s-head.gguf"
head -c 40000 "$td/golden/tq2_bitnet/model.gguf" >"$g/golden-tq2-head.gguf"
head -c 60000 "$td/vocab/ggml-vocab-llama-spm.gguf" >"$g/vocab-spm-head.gguf"
head -c 60000 "$td/vocab/ggml-vocab-gpt-2.gguf" >"$g/vocab-gpt2-head.gguf"

# Byte 0 picks the vocabulary (index mod 9, fuzz_common.h's order) and, for
# fuzz_chat, the format ((byte / 9) mod 3: none, bitnet, llama3).
i=0
for text in "Hello world" "  leading spaces and\ttabs\n\nnewlines " "caf\303\251 na\303\257ve \303\274ber" \
    "\344\270\255\346\226\207 \346\227\245\346\234\254\350\252\236" "\360\237\230\200 emoji \360\237\221\215\360\237\217\275" \
    "<|begin_of_text|>x<|eot_id|><s></s><|endoftext|>" "\377\376 bad \300\200 utf8 \355\240\200" \
    "12345678901234567890 3.14159" "int main(void) { return 0; }"; do
    for v in 0 1 2 3 4 5 6 7 8; do
        # The text's escapes (\t, \303...) are meant for printf (SC2059).
        # shellcheck disable=SC2059
        printf "\\$(printf '%03o' $v)$text" >"$t/text-$i-$v"
    done
    for f in 0 1 2; do
        b=$(( (i % 9) + 9 * f ))
        # shellcheck disable=SC2059
        printf "\\$(printf '%03o' $b)You are terse.\\000$text\\000and again: $text" >"$c/chat-$i-$f"
    done
    i=$((i + 1))
done
du -sh "$dir"
