#!/usr/bin/env python3
"""Generates runtime/unicode_tables.c and runtime/unicode_tables.h.

The tokenizer's pre-tokenizers need, for every code point, its Unicode
general category (\\p{L}, \\p{N}, \\p{P} in the regexes of the Hugging Face
tokenizers) and whether it is White_Space (\\s), plus the simple case folding
of the letters in the case-insensitive contractions of Llama 3's regex. They
come from the Unicode Character Database as Debian's package unicode-data
installs it (/usr/share/unicode):

    UnicodeData.txt   general category (field 3), with the <..., First> /
                      <..., Last> ranges expanded
    PropList.txt      White_Space
    CaseFolding.txt   statuses C and S (simple folding)

Output: a two-stage table. Stage 1 maps each block of 256 code points to a
block number; stage 2 holds the distinct blocks, one byte per code point:
bits 0-4 the category (enum bn_ucat in the header), bit 5 White_Space.

The generated files are committed, so building needs neither Python nor the
data. `--check` regenerates in memory and fails when the committed files
differ (a CTest test runs it when the data is installed); it exits 77
(skipped) when the installed data is another Unicode version.

usage: gen_unicode_tables.py [--ucd DIR] [--out DIR] [--check]
"""
import argparse
import os
import sys

# Order matters: the C helpers test letters and numbers as ranges.
CATEGORIES = ["Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps", "Pe",
              "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"]
SPACE_BIT = 0x20
N_CP = 0x110000
BLOCK = 256


def read_categories(path):
    cat = bytearray(N_CP)  # 0 = Cn (unassigned)
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            if len(fields) < 3:
                continue
            cp, name, gc = int(fields[0], 16), fields[1], fields[2]
            code = CATEGORIES.index(gc)
            if name.endswith(", First>"):
                first = cp
                continue
            if name.endswith(", Last>"):
                for c in range(first, cp + 1):
                    cat[c] = code
                first = None
                continue
            cat[cp] = code
    return cat


def read_property(path, prop):
    out = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            rng, name = [x.strip() for x in line.split(";")[:2]]
            if name != prop:
                continue
            if ".." in rng:
                a, b = [int(x, 16) for x in rng.split("..")]
            else:
                a = b = int(rng, 16)
            out.update(range(a, b + 1))
    return out


def read_ascii_folds(path):
    """Code points whose simple case folding is an ASCII lowercase letter."""
    folds = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            code, status, mapping = [x.strip() for x in line.split(";")[:3]]
            if status not in ("C", "S") or " " in mapping:
                continue
            target = int(mapping, 16)
            if ord("a") <= target <= ord("z"):
                folds[int(code, 16)] = target
    for c in range(ord("a"), ord("z") + 1):
        folds[c] = c
    return sorted(folds.items())


def build(ucd):
    cat = read_categories(os.path.join(ucd, "UnicodeData.txt"))
    for cp in read_property(os.path.join(ucd, "PropList.txt"), "White_Space"):
        cat[cp] |= SPACE_BIT
    folds = read_ascii_folds(os.path.join(ucd, "CaseFolding.txt"))

    blocks, index, stage1 = {}, [], []
    for b in range(N_CP // BLOCK):
        chunk = bytes(cat[b * BLOCK:(b + 1) * BLOCK])
        if chunk not in blocks:
            blocks[chunk] = len(index)
            index.append(chunk)
        stage1.append(blocks[chunk])
    if len(index) > 256:
        sys.exit("gen_unicode_tables: %d distinct blocks do not fit a uint8_t stage 1" % len(index))
    version = "unknown"
    readme = os.path.join(ucd, "ReadMe.txt")
    if os.path.exists(readme):
        with open(readme, encoding="utf-8") as f:
            for line in f:
                if "Version" in line and "Unicode Standard" in line:
                    version = line.split("Version", 1)[1].split("of the", 1)[0].strip()
                    break
    return stage1, index, folds, version


def c_bytes(data, per_line=24):
    lines = []
    for i in range(0, len(data), per_line):
        lines.append("    " + ", ".join(str(x) for x in data[i:i + per_line]) + ",")
    return "\n".join(lines)


def render(stage1, index, folds, version):
    enum = ",\n".join("    BN_UCAT_%s = %d" % (name.upper(), i) for i, name in enumerate(CATEGORIES))
    header = f"""/*
 * unicode_tables.h - Unicode general categories, White_Space and the simple
 * case folding onto ASCII letters, for the tokenizer's pre-tokenizers.
 *
 * GENERATED by tools/gen_unicode_tables.py from the Unicode Character
 * Database {version} (Debian package unicode-data). Do not edit; rerun the
 * generator.
 */
#ifndef BN_UNICODE_TABLES_H
#define BN_UNICODE_TABLES_H

#include <stdbool.h>
#include <stdint.h>

/* General categories; letters (LU..LO) and numbers (ND..NO) are ranges. */
enum bn_ucat {{
{enum}
}};

#define BN_UNICODE_VERSION "{version}"
#define BN_UPROP_CAT_MASK 0x1Fu
#define BN_UPROP_SPACE 0x{SPACE_BIT:02X}u /* White_Space */

extern const uint8_t bn_unicode_stage1[{len(stage1)}];
extern const uint8_t bn_unicode_stage2[{len(index)} * {BLOCK}];

/* Category bits | BN_UPROP_SPACE of a code point; code points past U+10FFFF
 * read as unassigned. */
static inline uint8_t bn_unicode_props(uint32_t cp)
{{
    if (cp >= 0x110000u) return BN_UCAT_CN;
    return bn_unicode_stage2[(uint32_t)bn_unicode_stage1[cp >> 8] * {BLOCK}u + (cp & 0xFFu)];
}}

/* One unsigned comparison per range: below the first wraps around. */
static inline bool bn_ucat_in(uint8_t p, unsigned lo, unsigned hi) {{ return (p & BN_UPROP_CAT_MASK) - lo <= hi - lo; }}
static inline bool bn_ucat_is_letter(uint8_t p) {{ return bn_ucat_in(p, BN_UCAT_LU, BN_UCAT_LO); }}
static inline bool bn_ucat_is_number(uint8_t p) {{ return bn_ucat_in(p, BN_UCAT_ND, BN_UCAT_NO); }}
static inline bool bn_ucat_is_punct(uint8_t p) {{ return bn_ucat_in(p, BN_UCAT_PC, BN_UCAT_PO); }}
static inline bool bn_uprop_is_space(uint8_t p) {{ return (p & BN_UPROP_SPACE) != 0; }}

/* The ASCII lowercase letter a code point folds to under simple case
 * folding ('S' and U+017F LONG S give 's', U+212A KELVIN SIGN 'k'), or 0. */
int bn_unicode_fold_ascii(uint32_t cp);

#endif
"""
    fold_rows = "\n".join("    {0x%04X, '%s'}," % (cp, chr(t)) for cp, t in folds)
    source = f"""/*
 * unicode_tables.c - GENERATED by tools/gen_unicode_tables.py from the
 * Unicode Character Database {version}. Do not edit; rerun the generator.
 */
#include "unicode_tables.h"

#include <stddef.h>

/* Block number of each 256-code-point block. */
const uint8_t bn_unicode_stage1[{len(stage1)}] = {{
{c_bytes(stage1)}
}};

/* The distinct blocks: category | White_Space bit per code point. */
const uint8_t bn_unicode_stage2[{len(index)} * {BLOCK}] = {{
{c_bytes(b"".join(index))}
}};

/* Sorted by code point for the binary search below. */
static const struct {{
    uint32_t cp;
    char to;
}} fold_ascii[{len(folds)}] = {{
{fold_rows}
}};

int bn_unicode_fold_ascii(uint32_t cp)
{{
    size_t lo = 0, hi = sizeof fold_ascii / sizeof fold_ascii[0];
    while (lo < hi) {{
        size_t mid = lo + (hi - lo) / 2;
        if (fold_ascii[mid].cp < cp) lo = mid + 1;
        else hi = mid;
    }}
    return lo < sizeof fold_ascii / sizeof fold_ascii[0] && fold_ascii[lo].cp == cp ? fold_ascii[lo].to : 0;
}}
"""
    return header, source


def committed_version(path):
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("#define BN_UNICODE_VERSION"):
                    return line.split('"')[1]
    except OSError:
        pass
    return None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ucd", default="/usr/share/unicode", help="directory of UnicodeData.txt etc.")
    ap.add_argument("--out", default=os.path.join(here, "..", "runtime"), help="where the .c/.h go")
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = ap.parse_args()
    stage1, index, folds, version = build(args.ucd)
    header, source = render(stage1, index, folds, version)
    files = {"unicode_tables.h": header, "unicode_tables.c": source}
    if args.check:
        committed = committed_version(os.path.join(args.out, "unicode_tables.h"))
        if committed and committed != version:
            print("gen_unicode_tables: skipped: the committed tables are Unicode %s, the installed data %s"
                  % (committed, version))
            return 77
    stale = []
    for name, text in files.items():
        path = os.path.join(args.out, name)
        if args.check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(name)
            except OSError:
                stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("gen_unicode_tables: %s out of date: rerun tools/gen_unicode_tables.py" % ", ".join(stale))
        return 1
    print("gen_unicode_tables: %s %s" % ("checked" if args.check else "wrote", ", ".join(files)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
