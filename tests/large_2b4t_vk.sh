#!/bin/sh
# A model with the real microsoft/bitnet-b1.58-2B-4T shapes (1.2 GB,
# synthetic) end to end on the Vulkan backend: the first GPU, else Mesa
# lavapipe (BN_VK_TEST_DEVICE=N names a device). Generates a few tokens
# greedily and checks that each forward pass is one queue submission
# (BN_VK_STATS=1), i.e. one per generated token; prints the speeds.
# usage: large_2b4t_vk.sh BITNET_VK BN_MKMODEL WORKDIR
set -eu
cli="$1"; mk="$2"; dir="$3"
n=4
mkdir -p "$dir"
model="$dir/synthetic-2b4t-i2s.gguf"
if [ ! -f "$model" ]; then
    "$mk" --preset 2b4t -o "$model"
fi
skip() {
    if [ "${CI:-}" = "true" ]; then echo "FAIL (CI=true): $1"; exit 1; fi
    echo "SKIP: $1"; exit 77
}
if [ -n "${BN_VK_TEST_DEVICE:-}" ]; then
    dev="vulkan:$BN_VK_TEST_DEVICE"
elif "$cli" devices 2>/dev/null | grep -q "^--device auto: device"; then
    dev=vulkan
else
    dev=lavapipe
fi
out="$dir/large_2b4t_vk.out"
log="$dir/large_2b4t_vk.log"
rc=0
BN_VK_STATS=1 "$cli" generate -m "$model" --tokens "128000 791 6864 315" -n "$n" -c 512 \
    --temp 0 --ids --ignore-eos --device "$dev" > "$out" 2> "$log" || rc=$?
cat "$log"
if [ "$rc" -ne 0 ]; then
    if grep -q "no Vulkan\|no CPU Vulkan device" "$log"; then skip "no Vulkan device"; fi
    echo "FAIL: generate --device $dev exited $rc"; exit 1
fi
ids=$(cat "$out")
got=$(echo "$ids" | wc -w)
subs=$(sed -n 's/.*vulkan stats: \([0-9]*\) submissions.*/\1/p' "$log")
echo "device $dev: generated ids: $ids; queue submissions: ${subs:-none} for $n tokens"
if [ "$got" -ne "$n" ]; then echo "FAIL: expected $n generated ids, got '$ids'"; exit 1; fi
if [ "${subs:-0}" -ne "$n" ]; then echo "FAIL: expected one queue submission per generated token"; exit 1; fi
echo "large_2b4t_vk: 2 passed, 0 failed"
