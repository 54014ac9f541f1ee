#!/usr/bin/env python3
"""Fits sdiff__cu_gemm_pick's cost model (tools/kernels/gen_kernels.py, GEMM90_HELPER) to the timings
of every tile and split that tools/kernels/bench_gemm.cu --csv writes, and shows what the fitted model
picks per case against the best measured. No numpy: weighted least squares by normal equations.

    build/bench_gemm --csv bench_gemm.csv          # on the GPU (tools/gpu_check.sh gemm)
    python3 tools/kernels/fit_gemm_pick.py bench_gemm.csv

The model, per tile t and split s (1, 2, 4, 8): us = C0 + rounds * (ktb * sharing * (CK[t] + KS [s > 1])
+ ktb * CL / stages[t] + CE[t] + CX[t] [s > 1]), rounds of the blocks that fit at once (clusters of
s: about n_sm / s, one fewer at s = 2, two fewer from s = 4), ktb the K tiles of a block, sharing the
blocks per SM (two for all but the 256-row tiles, when there are enough), stages[t] the K tiles a
block keeps in flight (CL: the latency of a load the ring cannot hide). Fit it to the --cold CSV:
that is what a layer sees in place (PERF.md S14). Weighted by 1 / time, so small GEMMs count as much
as big ones. Paste the printed constants into sdiff__cu_gemm_pick and rerun gen_kernels.py."""
import collections
import csv
import math
import sys

TILES = [(128, 64), (128, 128), (256, 64), (256, 128), (128, 80), (256, 80), (64, 80)]  # sdiff__cu_gemm_tiles
N_SM = 132
NT = len(TILES)


def stages(bm, bn):  # sdiff__cu_gemm_smem's ring depth
    fit = (227 * 1024 // (1 if bm == 256 else 2) - 1024 - 256 - bm * (bn + 8) * 2) // ((bm + bn) * 128)
    return min(fit, 12)


def features(m, n, k, geglu, t, s):
    bm, bn = TILES[t]
    bn //= 2 if geglu else 1
    per_sm = 1 if bm == 256 else 2
    clusters = N_SM // s - (2 if s >= 4 else 1 if s == 2 else 0)
    units = math.ceil(m / bm) * math.ceil(n / bn) * s
    slots = per_sm * max(clusters, 1) * s
    rounds = math.ceil(units / slots)
    sharing = min(per_sm, math.ceil(min(units, slots) / N_SM))
    ktb = math.ceil(math.ceil(k / 64) / s)
    f = [0.0] * (3 + 3 * NT)
    f[0] = 1.0                                      # C0
    f[1 + t] = rounds * ktb * sharing               # CK[t]
    f[1 + NT + t] = rounds                          # CE[t]
    f[1 + 2 * NT + t] = rounds * (s > 1)            # CX[t]
    f[1 + 3 * NT] = (s > 1) * rounds * ktb * sharing  # KS
    f[2 + 3 * NT] = rounds * ktb / stages(*TILES[t])  # CL
    return f


def lstsq(xs, ys, ws):
    n = len(xs[0])
    a = [[1e-9 if i == j else 0.0 for j in range(n)] for i in range(n)]
    b = [0.0] * n
    for x, y, w in zip(xs, ys, ws):
        for i in range(n):
            b[i] += w * w * x[i] * y
            for j in range(n):
                a[i][j] += w * w * x[i] * x[j]
    for i in range(n):  # Gaussian elimination, partial pivoting
        p = max(range(i, n), key=lambda r: abs(a[r][i]))
        a[i], a[p], b[i], b[p] = a[p], a[i], b[p], b[i]
        for r in range(i + 1, n):
            f = a[r][i] / a[i][i]
            for c in range(i, n):
                a[r][c] -= f * a[i][c]
            b[r] -= f * b[i]
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (b[i] - sum(a[i][j] * x[j] for j in range(i + 1, n))) / a[i][i]
    return x


def main():
    rows = [r for r in csv.DictReader(open(sys.argv[1])) if 'f32' not in r['case'] and r.get('mc', '1') == '1']
    key = lambda r: (int(r['M']), int(r['N']), int(r['K']), int(r['geglu']), int(r['tile']), int(r['split']))
    xs = [features(*key(r)) for r in rows]
    ys = [float(r['us']) for r in rows]
    c = lstsq(xs, ys, [1 / y for y in ys])
    dot = lambda f: sum(a * b for a, b in zip(f, c))
    errs = sorted(abs(dot(x) - y) / y for x, y in zip(xs, ys))
    fmt = lambda v: ', '.join('%.3f' % q for q in v)
    print('C0 = %.3f, KS = %.3f, CL = %.3f' % (c[0], c[1 + 3 * NT], c[2 + 3 * NT]))
    print('CK = {%s}\nCE = {%s}\nCX = {%s}' % (fmt(c[1:1 + NT]), fmt(c[1 + NT:1 + 2 * NT]), fmt(c[1 + 2 * NT:1 + 3 * NT])))
    print('relative error: median %.3f, 90th percentile %.3f' % (errs[len(errs) // 2], errs[int(len(errs) * 0.9)]))
    by = collections.defaultdict(list)
    for r in rows:
        by[r['case']].append(r)
    total_best = total_pick = 0.0
    for name, rs in by.items():
        best = min(rs, key=lambda r: float(r['us']))
        pick = min(rs, key=lambda r: dot(features(*key(r))))
        total_best += float(best['us'])
        total_pick += float(pick['us'])
        print('%-36s best %s/%s %7.2f  pick %s/%s %7.2f' % (name, best['tile'], best['split'], float(best['us']),
                                                           pick['tile'], pick['split'], float(pick['us'])))
    print('sum over cases: best %.1f us, the model\'s picks %.1f us' % (total_best, total_pick))


main()
