#!/bin/sh
# End-to-end CPU benchmark on a model with the real 2B4T shapes (the numbers
# of bench/results/cpu.md): the memory bandwidth probe (the roofline), then
# `bitnet-vk bench` (pp128 and tg32) at 1 and 2 threads (or -t LIST), with
# the F16 head and with --head q8, each with the per-op profile.
#
# usage: bench/e2e_cpu.sh [BUILD_DIR] [-t 1,2] [-r 5]
#   BUILD_DIR defaults to ./build; the model is made there (1.2 GB) if missing.
set -eu
build="${1:-build}"
[ $# -gt 0 ] && shift
threads="1,2"
reps=5
while [ $# -gt 0 ]; do
    case "$1" in
        -t) threads="$2"; shift 2 ;;
        -r) reps="$2"; shift 2 ;;
        *) echo "usage: $0 [BUILD_DIR] [-t LIST] [-r REPS]" >&2; exit 1 ;;
    esac
done
model="$build/models/synthetic-2b4t-i2s.gguf"
if [ ! -f "$model" ]; then
    mkdir -p "$build/models"
    "$build/bn-mkmodel" --preset 2b4t -o "$model"
fi
echo "## machine"
echo
echo '```'
lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Core|Flags' | sed 's/Flags:.*\(avx512_vnni\).*/Flags: ... avx2 avx512f avx512bw avx512_vnni .../'
echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (+ working tree)')"
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo '```'
echo
echo "## memory bandwidth (bn-bandwidth)"
echo
echo '```'
"$build/bench/bn-bandwidth" -s 2048 -r 8 -f "$model"
echo '```'
for head in f16 q8; do
    echo
    echo "## bitnet-vk bench -m $model -p 128 -n 32 -r $reps -t $threads --head $head --profile"
    echo
    "$build/bitnet-vk" bench -m "$model" -p 128 -n 32 -r "$reps" -t "$threads" --head "$head" --profile 2>"$build/bench-profile-$head.txt"
    echo
    echo '```'
    cat "$build/bench-profile-$head.txt"
    echo '```'
done
