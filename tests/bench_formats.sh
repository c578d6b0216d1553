#!/bin/sh
# `bitnet-vk bench --json` and `--csv` read by real parsers (python3's json
# and csv modules): the same results in both, every documented key with the
# right type, positive speeds, the roofline share consistent with the GB/s
# and bandwidth columns, and the bandwidth the mean of one probe per round.
# usage: bench_formats.sh BITNET_VK BN_MKMODEL WORKDIR PYTHON3
set -eu
cli="$1"; mk="$2"; dir="$3"; py="$4"
model="$dir/bench_formats.gguf"
"$mk" --preset tiny -o "$model" >/dev/null
args="-m $model -p 8 -n 2,4 -r 2 --min-time 0 -t 1 --bw-mib 16"
"$cli" bench $args --json > "$dir/bench_formats.json"
"$cli" bench $args --csv > "$dir/bench_formats.csv"
rm -f "$model"
"$py" - "$dir/bench_formats.json" "$dir/bench_formats.csv" <<'PY'
import csv, json, sys
rows = json.load(open(sys.argv[1]))
table = list(csv.DictReader(open(sys.argv[2])))
assert isinstance(rows, list) and len(rows) == 3, 'three results (pp8, tg2, tg4): %r' % rows
assert len(table) == 3, 'three CSV rows'
strings = ['device', 'device_name', 'backend', 'kernels', 'test', 'validation']
numbers = ['n_tokens', 'reps', 'threads', 'tokens_per_s', 'stddev', 'median', 'bytes_per_token', 'gbps',
           'bandwidth_gbps', 'roofline_pct', 'load_s', 'peak_rss_mib', 'device_mib', 'nmse']
lists = ['samples_ns', 'samples_ts', 'bandwidth_samples_gbps']  # JSON only (the first two as llama-bench's)
for r, c in zip(rows, table):
    assert set(r) == set(strings + numbers + lists), 'keys: %s' % sorted(r)
    assert set(c) == set(r) - set(lists), 'CSV columns = JSON keys but the samples'
    ts, ns = r['samples_ts'], r['samples_ns']
    assert len(ts) == len(ns) == r['reps'] == 2, 'one sample per repetition: %r' % r
    assert abs(sum(ts) / 2 - r['tokens_per_s']) <= 1e-3 * r['tokens_per_s'] + 1e-3, 'mean of the samples'
    for t, n in zip(ts, ns):
        assert t > 0 and abs(r['n_tokens'] / t * 1e9 - n) <= 1e-3 * n + 1, 'samples_ns = n_tokens / samples_ts'
    bw = r['bandwidth_samples_gbps']
    assert len(bw) == r['reps'] and min(bw) > 0, 'one bandwidth probe per round: %r' % r
    assert abs(sum(bw) / len(bw) - r['bandwidth_gbps']) <= 1e-3 * r['bandwidth_gbps'] + 1e-3, 'their mean'
    assert bw == rows[0]['bandwidth_samples_gbps'], 'the same probes for every test of the device'
    for k in strings: assert isinstance(r[k], str) and r[k] == c[k], k
    for k in numbers: assert isinstance(r[k], (int, float)) and not isinstance(r[k], bool), k
    assert r['device'] == 'cpu' and r['validation'] == 'reference'
    assert r['tokens_per_s'] > 0 and r['stddev'] >= 0 and r['median'] > 0 and r['bandwidth_gbps'] > 0
    if r['test'].startswith('tg'):
        assert r['bytes_per_token'] > 0 and r['gbps'] > 0
        assert abs(r['roofline_pct'] - 100 * r['gbps'] / r['bandwidth_gbps']) < 0.01 * r['roofline_pct'] + 0.01
    else:
        assert r['gbps'] == 0 and r['roofline_pct'] == 0
print('bench_formats: %d results parsed from JSON and CSV' % len(rows))
PY
echo "bench_formats: 1 passed, 0 failed"
