#!/bin/sh
# Repeatability of `bitnet-vk bench`: runs the same bench command K times
# (each run its own process: load, warm-up, reps) and checks that every
# pair of runs agrees on the median tokens/s within the standard deviation
# the runs report themselves, |median_a - median_b| <= max(sd_a, sd_b),
# for every device and test. Prints a markdown table, with each run's
# measured bandwidth and, for tg tests, its % of that bandwidth beside it
# (on a shared or virtual machine the memory system itself can drift
# between runs: this shows when it did, and whether decode followed it), then
# the warnings each run printed; exit 1 when a pair disagrees, 2 on a usage
# or bench error.
#
# usage: bench/repeat.sh [-k RUNS] CLI BENCH-ARGS...
#   e.g. bench/repeat.sh -k 3 build-bench/bitnet-vk bench -m M -p 128 -n 32 -r 5 --device cpu
set -eu
k=3
if [ "${1:-}" = "-k" ]; then k="$2"; shift 2; fi
if [ $# -lt 2 ]; then
    echo "usage: $0 [-k RUNS] CLI bench ARGS..." >&2
    exit 2
fi
case "$k" in '' | *[!0-9]*) echo "$0: -k $k: expected a number of runs" >&2; exit 2 ;; esac
if [ "$k" -lt 2 ]; then echo "$0: -k $k: at least 2 runs are needed to compare" >&2; exit 2; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
i=1
while [ "$i" -le "$k" ]; do
    if ! "$@" --csv >"$tmp/run$i.csv" 2>"$tmp/run$i.err"; then
        echo "$0: run $i failed: $(tail -n 1 "$tmp/run$i.err")" >&2
        exit 2
    fi
    i=$((i + 1))
done

# bench's own warnings (stddev over 10%, bandwidth moved), per run, after
# the table.
warnings() {
    j=1
    while [ "$j" -le "$k" ]; do
        grep 'warning' "$tmp/run$j.err" | sed "s/^/run $j: /" || true
        j=$((j + 1))
    done
}

# The runs' CSV files in run order (a glob would put run10 before run2);
# the bench command in "$@" is not needed any more.
set --
i=1
while [ "$i" -le "$k" ]; do
    set -- "$@" "$tmp/run$i.csv"
    i=$((i + 1))
done

# CSV columns by name (header of the first run); fields may be quoted and
# hold commas (device names do), so each line is split by hand.
awk -v k="$k" '
    function split_csv(line, out,    n, i, c, q, f) {
        n = 0; f = ""; q = 0
        for (i = 1; i <= length(line); i++) {
            c = substr(line, i, 1)
            if (c == "\"") q = !q
            else if (c == "," && !q) { out[++n] = f; f = "" }
            else f = f c
        }
        out[++n] = f
        return n
    }
    FNR == 1 {
        nf = split_csv($0, h)
        for (c = 1; c <= nf; c++) col[h[c]] = c
        run++
        next
    }
    {
        split_csv($0, f)
        key = f[col["device"]] SUBSEP f[col["test"]]
        if (!(key in seen)) { seen[key] = 1; order[++nkeys] = key; dev[key] = f[col["device"]]; test[key] = f[col["test"]] }
        med[key, run] = f[col["median"]] + 0
        sd[key, run] = f[col["stddev"]] + 0
        bw[key, run] = f[col["bandwidth_gbps"]] + 0
        pct[key, run] = f[col["roofline_pct"]] + 0
    }
    END {
        printf "| device | test |"
        for (r = 1; r <= k; r++) printf " run %d median ± sd |", r
        printf " worst pair | gap | allowed | agree | measured bw per run, GB/s | %% of bw per run |\n|---|---|"
        for (r = 1; r <= k; r++) printf "---:|"
        printf "---|---:|---:|---|---|---|\n"
        bad = 0
        for (n = 1; n <= nkeys; n++) {
            key = order[n]
            printf "| %s | %s |", dev[key], test[key]
            for (r = 1; r <= k; r++) printf " %.2f ± %.2f |", med[key, r], sd[key, r]
            # The pair shown is the one that decides: the largest gap for
            # its allowance (the largest gap may well be allowed while a
            # smaller one between two steadier runs is not).
            ok = 1; worst = -1; gap = 0; allowed = 0; pair = ""
            for (a = 1; a <= k; a++)
                for (b = a + 1; b <= k; b++) {
                    g = med[key, a] - med[key, b]; if (g < 0) g = -g
                    s = sd[key, a] > sd[key, b] ? sd[key, a] : sd[key, b]
                    q = s > 0 ? g / s : (g > 0 ? 1e300 : 0)
                    if (q > worst) { worst = q; gap = g; allowed = s; pair = a "-" b }
                    if (g > s) ok = 0
                }
            bws = ""; pcts = ""
            for (r = 1; r <= k; r++) {
                bws = bws (r > 1 ? ", " : "") sprintf("%.1f", bw[key, r])
                if (pct[key, r] > 0) pcts = pcts (pcts != "" ? ", " : "") sprintf("%.0f%%", pct[key, r])
            }
            printf " %s | %.2f | %.2f | %s | %s | %s |\n", pair, gap, allowed, ok ? "yes" : "NO", bws, pcts
            if (!ok) bad = 1
        }
        exit bad
    }' "$@" && rc=0 || rc=$?
warnings
exit "$rc"
