#!/bin/sh
# Every benchmark of bench/results in one go: builds bitnet-vk (Release),
# makes the 2B4T-shaped synthetic models (the real shapes of
# microsoft/bitnet-b1.58-2B-4T, random weights, I2_S and TQ2_0, F16 tied
# head; 1.2 GB each, in the build directory), runs `bitnet-vk bench` on
# every usable device and writes bench/results/<date>-<device>.md with the
# machine, driver, commit, commands and results, plus an SVG plot per device.
#
# usage: bench/run-all.sh [BUILD_DIR] [--cpu-args "..."] [--vk-args "..."] [--models "i2_s tq2_0"]
#                         [--note "text for the top of each results file"]
#   BUILD_DIR defaults to ./build-bench.
#   --cpu-args  test sizes on the CPU (default: -p 128 -n 32 -r 5)
#   --vk-args   test sizes on Vulkan devices (default: -p 32 -n 16 -r 3, because a
#               CPU-based driver such as lavapipe takes about a second per
#               token on a small machine; raise them on a real GPU)
#
# Each Vulkan device is benchmarked next to the CPU at the same sizes, so its
# plot compares like with like. Run it on an otherwise idle machine; the
# load average before and after each run is recorded.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-bench"
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build="$1"; shift; fi
cpu_args="-p 128 -n 32 -r 5"
vk_args="-p 32 -n 16 -r 3"
models="i2_s tq2_0"
note=""
while [ $# -gt 0 ]; do
    case "$1" in
        --cpu-args) cpu_args="$2"; shift 2 ;;
        --vk-args) vk_args="$2"; shift 2 ;;
        --models) models="$2"; shift 2 ;;
        --note) note="$2"; shift 2 ;;
        *) echo "usage: $0 [BUILD_DIR] [--cpu-args ARGS] [--vk-args ARGS] [--models LIST] [--note TEXT]" >&2; exit 1 ;;
    esac
done

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$build" -j"$(nproc)" --target bitnet-vk bn-mkmodel >/dev/null
cli="$build/bitnet-vk"
mkdir -p "$build/models" "$root/bench/results"
for w in $models; do
    m="$build/models/synthetic-2b4t-$w.gguf"
    [ -f "$m" ] || "$build/bn-mkmodel" --preset 2b4t --wtype "$w" --embd-type f16 -o "$m"
done

date=$(date -u +%Y-%m-%d)
failed="$build/run-all.failed"
rm -f "$failed"
commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
# Results files being rewritten are not changes to what is measured.
git -C "$root" diff --quiet HEAD -- . ':(exclude)bench/results' 2>/dev/null || commit="$commit (+ uncommitted changes)"

# The usable Vulkan devices of `bitnet-vk devices`: "vulkan:N TYPE" lines.
vk_devices() {
    "$cli" devices 2>/dev/null | awk '
        /^device [0-9]+:/ { n = $2; sub(":", "", n); type = "" }
        /^  type:/ { type = $2 }
        /^  status: *usable/ { print "vulkan:" n, type }'
}

# Machine facts for the header of a results file; $1: the Vulkan device or "".
machine() {
    echo "| | |"
    echo "|---|---|"
    echo "| CPU | $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) logical CPUs |"
    echo "| memory | $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) |"
    echo "| OS | $(uname -sr), $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME") |"
    echo "| compiler | $(${CC:-cc} --version | head -1) |"
    if [ -n "$1" ]; then
        idx=${1#vulkan:}
        "$cli" devices 2>/dev/null | awk -v want="$idx" '
            /^device [0-9]+:/ { n = $2; sub(":", "", n); on = (n == want); if (on) { sub(/^device [0-9]+: /, ""); print "| Vulkan device | " $0 " |" } next }
            on && /^  (type|driver|api|memory):/ { k = $1; sub(":", "", k); sub(/^  [a-z]+: */, ""); print "| " k " | " $0 " |" }'
    fi
    echo "| date | $(date -u +%Y-%m-%dT%H:%MZ) |"
    echo "| commit | $commit |"
    echo "| load average before | $(cut -d' ' -f1-3 /proc/loadavg) |"
}

# One results file: $1 name, $2 bench --device list, $3 test sizes, $4 Vulkan device or "".
run_bench() {
    name="$1"; devs="$2"; sizes="$3"; vk="$4"
    out="$root/bench/results/$date-$name.md"
    {
        echo "# bitnet-vk bench: $name, $date"
        echo
        if [ -n "$note" ]; then echo "$note"; echo; fi
        if [ -n "$vk" ] && [ "$(echo "$devs" | grep -c lavapipe)" -gt 0 ]; then
            echo "lavapipe (Mesa llvmpipe) is a Vulkan driver that runs on the CPU: these are CPU"
            echo "figures for the Vulkan code path, not a GPU's. Its test sizes are small"
            echo "($sizes) because it takes seconds per token on this machine; the CPU"
            echo "backend runs at the same sizes beside it."
            echo
        fi
        echo "## Machine"
        echo
        machine "$vk"
        echo
        for w in $models; do
            m="$build/models/synthetic-2b4t-$w.gguf"
            rel="$(basename "$build")/models/synthetic-2b4t-$w.gguf"
            svg="$root/bench/results/$date-$name-$w.svg"
            echo "## $w: \`bitnet-vk bench -m $rel $sizes --device $devs --profile --plot $(basename "$svg")\`"
            echo
            echo "Model: \`bn-mkmodel --preset 2b4t --wtype $w --embd-type f16\` (n_embd 2560, 30 layers,"
            echo "20/5 heads, n_ff 6912, vocab 128256, tied F16 head; random weights)."
            echo
            rc=0
            # shellcheck disable=SC2086 # the sizes are words
            "$cli" bench -m "$m" $sizes --device "$devs" --profile --plot "$svg" 2>"$build/bench-$name-$w.err" || rc=$?
            if [ "$rc" -ne 0 ]; then
                # recorded, not hidden: the other models and devices still run
                if [ "$rc" -gt 128 ]; then why="killed by signal $((rc - 128))"; else why=$(tail -n 1 "$build/bench-$name-$w.err"); fi
                echo "**bench failed (exit $rc)**: $why"
                echo "bench $name $w failed (exit $rc)" >&2
                touch "$failed"
            else
                echo
                echo "![tokens/s, $w]($(basename "$svg"))"
            fi
            echo
            echo "Per-op profile and notes (stderr):"
            echo
            echo '```'
            cat "$build/bench-$name-$w.err"
            echo '```'
            echo
        done
        echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)."
    } > "$out"
    echo "wrote $out"
}

run_bench cpu cpu "$cpu_args" ""
vk_devices | while read -r dev type; do
    if [ "$type" = cpu ]; then name=lavapipe; devs="cpu,lavapipe"; else name="vulkan${dev#vulkan:}-$type"; devs="cpu,$dev"; fi
    run_bench "$name" "$devs" "$vk_args" "$dev"
done
if [ -f "$failed" ]; then echo "some benchmarks failed (see the results files)" >&2; exit 1; fi
