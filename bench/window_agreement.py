#!/usr/bin/env python3
"""How long a bench run must be for reruns to agree, from one long trace.

Reads `bitnet-vk bench --json` output of one long test (for example
`bench -p 0 -n 32 -r 600 --min-time 0 --json`, about ten minutes of tg32
repetitions in the order they ran) and cuts it into back-to-back windows the
length of a shorter run. For each window length it reports how often two
neighbouring windows agree the way bench/repeat.sh asks, |median_a - median_b|
<= max(sd_a, sd_b), how often three in a row all agree, and the windows'
mean relative standard deviation: what a run of that length would report on
the machine the trace came from.

usage: bench/window_agreement.py TRACE.json [SECONDS ...]
"""
import json
import statistics as st
import sys


def agree(a, b):
    return abs(st.median(a) - st.median(b)) <= max(st.stdev(a), st.stdev(b))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[-1])
    row = json.load(open(sys.argv[1]))[0]
    s = row['samples_ts']
    per_rep = sum(row['n_tokens'] / x for x in s) / len(s)  # seconds per repetition
    lengths = [float(x) for x in sys.argv[2:]] or [4, 10, 20, 30, 45, 60, 90]
    print('%s: %d repetitions of %.2f s; median %.2f, sd %.2f tokens/s'
          % (row['test'], len(s), per_rep, st.median(s), st.stdev(s)))
    print('| run length | repetitions | pairs agree | sets of 3 agree | mean relative sd |')
    print('|---:|---:|---:|---:|---:|')
    for seconds in lengths:
        w = max(2, round(seconds / per_rep))
        if 2 * w > len(s):
            continue
        pairs = [agree(s[i:i + w], s[i + w:i + 2 * w]) for i in range(len(s) - 2 * w + 1)]
        sets = []
        for i in range(0, len(s) - 3 * w + 1, max(1, w // 4)):
            runs = [s[i + k * w:i + (k + 1) * w] for k in range(3)]
            sets.append(agree(runs[0], runs[1]) and agree(runs[0], runs[2]) and agree(runs[1], runs[2]))
        rsd = st.mean(st.stdev(s[i:i + w]) / st.mean(s[i:i + w]) for i in range(0, len(s) - w + 1, w))
        three = '%.0f%% of %d' % (100 * sum(sets) / len(sets), len(sets)) if sets else '-'
        print('| %.0f s | %d | %.0f%% of %d | %s | %.1f%% |'
              % (seconds, w, 100 * sum(pairs) / len(pairs), len(pairs), three, 100 * rsd))


if __name__ == '__main__':
    main()
