#!/usr/bin/env python3
"""Sums an ncu kernel-time CSV by kernel: where one forward's GPU time goes.

    ncu --profile-from-start off --clock-control none --cache-control none \
        --metrics gpu__time_duration.sum --csv --print-units base \
        build/bench /tmp/sd15 cuda profile:unet > unet.csv
    python3 tools/ncu_summary.py unet.csv [top]

Kernels are grouped by name (cuBLAS/cuBLASLt's generated names folded into "cuBLAS GEMM: ...")
and, below that, by name + grid, so one shape's share is visible too. The times are ncu's,
kernel by kernel with nothing overlapping, so their sum is a little above a graph replay's."""
import csv
import sys
from collections import defaultdict

SCALE = {'nsecond': 1e-3, 'ns': 1e-3, 'usecond': 1.0, 'us': 1.0, 'msecond': 1e3, 'ms': 1e3, 'second': 1e6, 's': 1e6}


def short(name):
    base = name.split('(')[0].strip()
    if base.startswith(('sm90_xmma', 'sm80_xmma', 'cutlass', 'ampere_', 'sm90_', 'nvjet', 'gemm', 'gemv')):
        return 'cuBLAS GEMM: ' + base[:60]
    return base


def main():
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    lines = open(path, errors='replace').read().splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith('"ID"'))
    by_name, by_shape, count = defaultdict(float), defaultdict(float), defaultdict(int)
    total, n = 0.0, 0
    for row in csv.DictReader(lines[start:]):
        if row.get('Metric Name') != 'gpu__time_duration.sum':
            continue
        us = float(row['Metric Value'].replace(',', '')) * SCALE.get(row.get('Metric Unit', 'ns'), 1e-3)
        name = short(row['Kernel Name'])
        by_name[name] += us
        count[name] += 1
        by_shape[(name, row.get('Grid Size', ''), row.get('Block Size', ''))] += us
        total += us
        n += 1
    print('%d kernels, %.3f ms in total (ncu, serialised)\n' % (n, total / 1e3))
    print('| kernel | launches | ms | share |\n|---|---:|---:|---:|')
    for name, us in sorted(by_name.items(), key=lambda kv: -kv[1]):
        print('| %s | %d | %.3f | %.1f%% |' % (name, count[name], us / 1e3, 100 * us / total))
    print('\ntop %d by kernel and grid:\n| kernel | grid | block | ms |\n|---|---|---|---:|' % top)
    for (name, grid, block), us in sorted(by_shape.items(), key=lambda kv: -kv[1])[:top]:
        print('| %s | %s | %s | %.3f |' % (name, grid, block, us / 1e3))


main()
