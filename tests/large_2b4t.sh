#!/bin/sh
# A model with the real microsoft/bitnet-b1.58-2B-4T shapes (n_embd 2560,
# 30 layers, 20/5 heads, n_ff 6912, vocab 128256, I2_S, F16 embedding) loads
# from mmap without copying the ternary weights twice and generates:
# peak RSS (GNU time) must stay below file size + 300 MB at n_ctx 512.
# usage: large_2b4t.sh BITNET_VK BN_MKMODEL WORKDIR
set -eu
cli="$1"; mk="$2"; dir="$3"
mkdir -p "$dir"
model="$dir/synthetic-2b4t-i2s.gguf"
if [ ! -f "$model" ]; then
    "$mk" --preset 2b4t -o "$model"
fi
size=$(stat -c %s "$model")
log="$dir/large_2b4t.time"
/usr/bin/time -v -o "$log" "$cli" generate -m "$model" --tokens "128000 791 6864 315" -n 2 -c 512 \
    --temp 0 --ids --ignore-eos > "$dir/large_2b4t.out"
ids=$(cat "$dir/large_2b4t.out")
rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$log")
limit_kb=$(( size / 1024 + 300 * 1024 ))
echo "model: $size bytes; generated ids: $ids; peak RSS: ${rss_kb} kB; limit ${limit_kb} kB"
n=$(echo "$ids" | wc -w)
if [ "$n" -ne 2 ]; then echo "FAIL: expected 2 generated ids, got '$ids'"; exit 1; fi
if [ "$rss_kb" -ge "$limit_kb" ]; then echo "FAIL: peak RSS above file size + 300 MB"; exit 1; fi
echo "large_2b4t: 2 passed, 0 failed"
