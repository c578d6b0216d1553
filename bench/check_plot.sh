#!/bin/sh
# Renders a `bitnet-vk bench --plot` SVG in headless Chromium and checks the
# screenshot: every bar colour the SVG uses must cover a block of pixels
# (bars that render, with a visible height), and the dashed roofline colour
# must be there when the SVG has a roofline. The PNG is decoded with
# python3's zlib; no imaging library needed. A manual check (it needs
# chromium: Debian `apt-get install chromium`), not a CTest: ctest checks
# the SVG's structure (tests/test_cli_bench.c).
#
# usage: bench/check_plot.sh FILE.svg [OUT.png]
set -eu
svg="$1"
png="${2:-${svg%.svg}.png}"
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then echo "check_plot: no chromium (Debian: apt-get install chromium)" >&2; exit 2; fi
abs=$(cd "$(dirname "$svg")" && pwd)/$(basename "$svg")
w=$(sed -n 's/.*<svg [^>]*width="\([0-9]*\)".*/\1/p' "$abs" | head -1)
h=$(sed -n 's/.*<svg [^>]*height="\([0-9]*\)".*/\1/p' "$abs" | head -1)
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="${w:-960},${h:-540}" \
    --screenshot="$png" "file://$abs" >/dev/null 2>&1
[ -s "$png" ] || { echo "check_plot: chromium wrote no screenshot" >&2; exit 1; }
python3 - "$abs" "$png" <<'EOF'
import re, struct, sys, zlib

svg = open(sys.argv[1]).read()
bar_colours = sorted(set(re.findall(r'<rect class="bar"[^>]*fill="#([0-9a-f]{6})"', svg)))
has_roofline = 'class="roofline"' in svg

def decode_png(path):
    data = open(path, 'rb').read()
    assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG'
    pos, idat = 8, b''
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b'IHDR':
            w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
        elif kind == b'IDAT':
            idat += body
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6), 'expected 8-bit RGB or RGBA'
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(idat), w * bpp
    rows, prev, i = [], bytearray(stride), 0
    for _ in range(h):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1: line[x] = (line[x] + a) & 255
            elif f == 2: line[x] = (line[x] + b) & 255
            elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows

w, h, bpp, rows = decode_png(sys.argv[2])
counts = {}
for r in rows:
    for x in range(0, w * bpp, bpp):
        key = '%02x%02x%02x' % (r[x], r[x + 1], r[x + 2])
        counts[key] = counts.get(key, 0) + 1
background = max(counts, key=counts.get)
ok = True
print('check_plot: %s: %dx%d pixels, background #%s (%d pixels)' % (sys.argv[2], w, h, background, counts[background]))
for c in bar_colours:
    n = counts.get(c, 0)
    print('  bar colour #%s: %d pixels' % (c, n))
    ok &= n >= 30
if has_roofline:
    # the dashed line is antialiased: count reddish pixels near #d62728
    red = sum(v for k, v in counts.items()
              if int(k[0:2], 16) > 150 and int(k[2:4], 16) < 120 and int(k[4:6], 16) < 120)
    print('  roofline (red) pixels: %d' % red)
    ok &= red >= 10
if not bar_colours:
    print('  no bars in the SVG')
    ok = False
print('check_plot: %s' % ('PASS' if ok else 'FAIL'))
sys.exit(0 if ok else 1)
EOF
