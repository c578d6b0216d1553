#!/bin/sh
# Soak test (issue 7, acceptance 4): 2,000 greedy tokens on a 2B4T-shaped
# synthetic model, once per device, sampling the process's memory every
# 0.5 s. Memory must not grow per token: the anonymous resident memory at
# the end may exceed the value sampled right after the first generated token
# by at most SOAK_ALLOW_MIB (default 8) plus the KV-cache pages the run
# itself touches (below). "The end" is the last sample taken before the
# final token appeared: once it is printed the process tears down and frees
# its buffers, so later samples would hide a leak. Builds nothing: give it a
# build directory.
#
#   usage: bench/soak.sh BUILD_DIR [DEVICE ...]        (default: cpu lavapipe)
#
# The model is BUILD_DIR/models/synthetic-2b4t-i2s.gguf, made with
# `bn-mkmodel --preset 2b4t` when missing (1.2 GB). Per device it writes
# BUILD_DIR/soak/DEVICE.{ids,log,rss} (.rss: seconds, tokens so far, VmRSS
# kB, RssAnon kB, RssFile kB per sample) and prints one summary line.
#
# What is compared: RssAnon (heap, driver memory), where a leak shows.
# VmRSS is printed too, but it includes the mmap'd model file, whose pages
# the kernel may drop and fault in again under memory pressure.
#
# KV-cache allowance: the CPU backend's buffers come from calloc, and the
# kernel maps a large calloc'd block's pages in only when they are first
# written, so the F16 KV cache grows RssAnon by n_layer * 2 * n_kv_heads *
# head_dim * 2 bytes per token as the context fills (76,800 bytes for the
# 2B4T shape: 146 MiB over 2,000 tokens). That growth is bounded by the
# context and is not a leak; on the CPU device it is added to the
# allowance. The Vulkan backend zero-fills its buffers when it allocates
# them, so there the cache is resident before the first token and nothing is
# added.
#
# Environment: SOAK_TOKENS (2000), SOAK_CTX (2112), SOAK_ALLOW_MIB (8),
# SOAK_MODEL (another model; then set SOAK_KV_BYTES_PER_TOKEN for it, and
# SOAK_PROMPT, token ids valid for its vocabulary),
# SOAK_OUT (BUILD_DIR/soak), SOAK_THREADS (-t, default: the CLI's).
set -eu
if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [DEVICE ...]" >&2
    exit 1
fi
build="$1"
shift
devices="${*:-cpu lavapipe}"
cli="$build/bitnet-vk"
mk="$build/bn-mkmodel"
tokens="${SOAK_TOKENS:-2000}"
ctx="${SOAK_CTX:-2112}"
allow_mib="${SOAK_ALLOW_MIB:-8}"
kv_per_token="${SOAK_KV_BYTES_PER_TOKEN:-76800}"
prompt="${SOAK_PROMPT:-128000 791 6864 315}"
threads=""
if [ -n "${SOAK_THREADS:-}" ]; then threads="-t $SOAK_THREADS"; fi
if [ ! -x "$cli" ]; then
    echo "soak: $cli not found: build first (cmake --build $build)" >&2
    exit 1
fi
model="${SOAK_MODEL:-$build/models/synthetic-2b4t-i2s.gguf}"
if [ ! -f "$model" ]; then
    mkdir -p "$(dirname "$model")"
    echo "soak: making $model"
    "$mk" --preset 2b4t -o "$model"
fi
out="${SOAK_OUT:-$build/soak}"
mkdir -p "$out"

# field NAME PID: the kB value of one line of /proc/PID/status, or "".
field() {
    sed -n "s/^$1:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$2/status" 2>/dev/null || true
}

fail=0
for dev in $devices; do
    ids="$out/$dev.ids"
    log="$out/$dev.log"
    rss="$out/$dev.rss"
    : > "$ids"
    echo "# seconds tokens VmRSS_kB RssAnon_kB RssFile_kB" > "$rss"
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$cli" generate -m "$model" --tokens "$prompt" -n "$tokens" -c "$ctx" --temp 0 --ids --ignore-eos \
        --device "$dev" $threads > "$ids" 2> "$log" &
    pid=$!
    first_anon=""; first_vm=""; first_n=0; last_anon=""; last_vm=""; last_n=0; peak_anon=0
    while kill -0 "$pid" 2>/dev/null; do
        vm=$(field VmRSS "$pid"); anon=$(field RssAnon "$pid"); file=$(field RssFile "$pid")
        n=$(wc -w < "$ids")
        if [ -n "$anon" ]; then
            echo "$(( $(date +%s) - start )) $n $vm $anon $file" >> "$rss"
            if [ "$n" -ge 1 ] && [ -z "$first_anon" ]; then first_anon=$anon; first_vm=$vm; first_n=$n; fi
            if [ "$n" -ge 1 ] && [ "$n" -lt "$tokens" ]; then last_anon=$anon; last_vm=$vm; last_n=$n; fi
            if [ "$anon" -gt "$peak_anon" ]; then peak_anon=$anon; fi
        fi
        sleep 0.5
    done
    rc=0
    wait "$pid" || rc=$?
    secs=$(( $(date +%s) - start ))
    got=$(wc -w < "$ids")
    if [ "$rc" -ne 0 ] || [ "$got" -ne "$tokens" ] || [ -z "$first_anon" ] || [ -z "$last_anon" ]; then
        echo "soak $dev: FAIL: exit $rc, $got of $tokens tokens, log: $log"
        tail -n 3 "$log"
        fail=1
        continue
    fi
    kv_kib=0
    if [ "$dev" = cpu ]; then kv_kib=$(( (last_n - first_n) * kv_per_token / 1024 )); fi
    limit=$(( first_anon + allow_mib * 1024 + kv_kib ))
    verdict=ok
    if [ "$last_anon" -gt "$limit" ]; then verdict=FAIL; fail=1; fi
    echo "soak $dev: $verdict: $got tokens in ${secs} s; after token $first_n: RssAnon $first_anon kB" \
         "(VmRSS $first_vm kB); after token $last_n: RssAnon $last_anon kB (VmRSS $last_vm kB);" \
         "growth $(( last_anon - first_anon )) kB, limit $(( limit - first_anon )) kB" \
         "(${allow_mib} MiB + KV pages $kv_kib kB); peak RssAnon $peak_anon kB"
    tail -n 1 "$log"
done
exit "$fail"
