#!/usr/bin/env python3
"""Generates the Unicode tables of sdiff's CLIP tokenizer (wip/tokenizer.h).

The tables hold exactly what the tokenizer needs to reproduce the
`tokenizers` pipeline of transformers' CLIPTokenizer:
  - \\p{L} and \\p{N} (general categories L* and N*) as code point ranges,
  - the lowercase mapping (Rust's char::to_lowercase == Python's per-char
    str.lower(): full mappings, U+0130 is the only one that gives 2 chars and
    is handled in C),
  - NFC: canonical combining classes, canonical decompositions (one level;
    the C code recurses) and which two-char decompositions recompose
    (primary composites, i.e. not composition-excluded). Hangul is algorithmic
    in C and left out here.
\\s (Unicode White_Space) is a fixed 25-code-point list written by hand in C:
Python's unicodedata does not expose the property.

The data comes from this Python's unicodedata (3.11: Unicode 14.0.0). The
output replaces everything between the BEGIN/END GENERATED markers of
wip/tokenizer.h, so running it twice gives the same file.

Usage: python3 tools/gen_unicode_tables.py [path/to/tokenizer.h]
"""
import sys
import unicodedata as ud

BEGIN = "/* BEGIN GENERATED UNICODE TABLES (tools/gen_unicode_tables.py) */"
END = "/* END GENERATED UNICODE TABLES */"
MAXCP = 0x110000


def ranges(pred):
    out, start = [], None
    for c in range(MAXCP):
        if pred(c):
            if start is None:
                start = c
        elif start is not None:
            out.append((start, c - 1))
            start = None
    if start is not None:
        out.append((start, MAXCP - 1))
    return out


def valued_ranges(value):
    """Runs of equal non-zero value(c): (lo, hi, v)."""
    out = []
    for c in range(MAXCP):
        v = value(c)
        if v == 0:
            continue
        if out and out[-1][1] == c - 1 and out[-1][2] == v:
            out[-1] = (out[-1][0], c, v)
        else:
            out.append((c, c, v))
    return out


def lower_runs():
    """Single-char lowercase mappings as runs (lo, hi, stride, delta): every
    cp = lo + k*stride <= hi maps to cp + delta. Greedy, stride 1 or 2."""
    m = {}
    for c in range(MAXCP):
        lo = chr(c).lower()
        if len(lo) == 1 and ord(lo) != c:
            m[c] = ord(lo) - c
    keys = sorted(m)
    runs, i = [], 0
    while i < len(keys):
        c, d = keys[i], m[keys[i]]
        best = (c, 1, 1)  # hi, stride, count consumed
        for stride in (1, 2):
            j, hi = i, c
            while j + 1 < len(keys) and keys[j + 1] == hi + stride and m[keys[j + 1]] == d:
                j += 1
                hi += stride
            # a stride-2 run must not skip over a mapped code point with another delta
            if stride == 2 and any(x in m for x in range(c + 1, hi, 2)):
                continue
            if j - i + 1 > best[2]:
                best = (hi, stride, j - i + 1)
        runs.append((c, best[0], best[1], d))
        i += best[2]
    return runs


def c_array(ctype, name, rows, per_line, fmt):
    lines = [f"static const {ctype} {name}[] = {{"]
    for k in range(0, len(rows), per_line):
        lines.append("    " + " ".join(fmt(r) for r in rows[k:k + per_line]))
    lines.append("};")
    return "\n".join(lines)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "wip/tokenizer.h"
    letters = ranges(lambda c: ud.category(chr(c))[0] == "L")
    numbers = ranges(lambda c: ud.category(chr(c))[0] == "N")
    lower = lower_runs()
    ccc = valued_ranges(lambda c: ud.combining(chr(c)))
    decomp = []
    for c in range(MAXCP):
        d = ud.decomposition(chr(c))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        assert len(parts) in (1, 2)
        composes = len(parts) == 2 and ud.normalize("NFC", chr(c)) == chr(c)
        decomp.append((c, parts[0], parts[1] if len(parts) == 2 else 0, composes))
    comp_index = sorted((i for i, r in enumerate(decomp) if r[3]), key=lambda i: (decomp[i][1], decomp[i][2]))
    assert len(decomp) < 65536

    # Self-check: the multi-char lowercase mappings the C code special-cases.
    multi = [c for c in range(MAXCP) if len(chr(c).lower()) > 1]
    assert multi == [0x130], multi

    out = [BEGIN,
           f"/* Unicode {ud.unidata_version} (Python {sys.version.split()[0]} unicodedata). "
           f"{len(letters)} letter ranges, {len(numbers)} number ranges, {len(lower)} lowercase runs,",
           f"   {len(ccc)} combining-class runs, {len(decomp)} canonical decompositions "
           f"({len(comp_index)} recompose). */",
           "/* \\p{L}: inclusive [lo, hi] pairs, sorted. */",
           c_array("uint32_t", "sdiff__tok_letter_ranges", letters, 6, lambda r: f"0x{r[0]:X},0x{r[1]:X},"),
           "/* \\p{N}: inclusive [lo, hi] pairs, sorted. */",
           c_array("uint32_t", "sdiff__tok_number_ranges", numbers, 6, lambda r: f"0x{r[0]:X},0x{r[1]:X},"),
           "/* Lowercase: {lo, hi, stride, delta}: lo, lo+stride, ... <= hi map to cp + delta. */",
           c_array("int32_t", "sdiff__tok_lower_runs", lower, 4,
                   lambda r: f"0x{r[0]:X},0x{r[1]:X},{r[2]},{r[3]},"),
           "/* Canonical combining class: {lo, hi, ccc}, non-zero only (decimal). */",
           c_array("uint32_t", "sdiff__tok_ccc_runs", ccc, 8, lambda r: f"{r[0]},{r[1]},{r[2]},"),
           "/* Canonical decompositions, one level: {cp, first, second (0: singleton)}, sorted by cp (decimal). */",
           c_array("uint32_t", "sdiff__tok_decomp", decomp, 6, lambda r: f"{r[0]},{r[1]},{r[2]},"),
           "/* Indices into sdiff__tok_decomp of the primary composites, sorted by (first, second). */",
           c_array("uint16_t", "sdiff__tok_comp_index", comp_index, 18, lambda i: f"{i},"),
           END]
    text = open(path, encoding="utf-8").read()
    a, b = text.index(BEGIN), text.index(END) + len(END)
    text = text[:a] + "\n".join(out) + text[b:]
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{path}: {len(letters)} L, {len(numbers)} N, {len(lower)} lower, {len(ccc)} ccc, "
          f"{len(decomp)} decomp, {len(comp_index)} comp")


if __name__ == "__main__":
    main()
