#!/bin/sh
# Runs each libFuzzer harness for a given time from its seed corpus and
# committed regression inputs; fails on the first crash, leak, UB report,
# timeout or out-of-memory.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]      (default 60 s per harness)
# BUILD_DIR is a -DBN_FUZZ=ON build (clang). New corpus entries go to a
# scratch directory under BUILD_DIR, so runs never touch the committed seeds;
# crash inputs land in BUILD_DIR/fuzz-artifacts/ (copy one into
# tests/fuzz/regressions/HARNESS/ once fixed). FUZZ_HARNESSES picks a subset.
set -eu
build="$1"
secs="${2:-60}"
src="$(cd "$(dirname "$0")" && pwd)"
harnesses="${FUZZ_HARNESSES:-fuzz_gguf_model fuzz_tokenizer fuzz_chat}"
art="$build/fuzz-artifacts"
mkdir -p "$art"
# Leaks are findings too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
for h in $harnesses; do
    exe="$build/tests/fuzz/$h"
    [ -x "$exe" ] || { echo "run.sh: $exe not built (configure with -DBN_FUZZ=ON)"; exit 1; }
    work="$build/fuzz-corpus/$h"
    mkdir -p "$work"
    # Allocation must stay bounded by the input's size (issue 7): a model
    # input of at most 256 KB may not make the loader ask for 64 MB at once.
    # The text harnesses hold the real vocabularies (about 450 MB).
    case $h in
        fuzz_gguf_model) max_len=262144 malloc_mb=64 ;;
        *) max_len=8192 malloc_mb=2560 ;;
    esac
    log="$build/fuzz-$h.log"
    echo "== $h: ${secs} s"
    # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a blow-up.
    if ! "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2560 -malloc_limit_mb="$malloc_mb" -max_len="$max_len" \
            -print_final_stats=1 -artifact_prefix="$art/$h-" \
            "$work" "$src/corpus/$h" "$src/regressions/$h" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "run.sh: $h failed (full log: $log; inputs in $art)"
        exit 1
    fi
    # The figures the issue note wants: executions and coverage.
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$log" | tr '\n' ' '
    grep -E 'cov: [0-9]+' "$log" | tail -n 1 | sed -E 's/.*(cov: [0-9]+ ft: [0-9]+ corp: [^ ]+).*/\1/'
done
