#!/usr/bin/env python3
"""PyTorch's side of bench_conv.cu: the same convolution shapes through torch.nn.functional.conv2d
(cuDNN, fp16, channels_last, bias; the residual add as diffusers does it, a separate op), and the
matching GEMM alone (cuBLAS, [M,K] x [K,N]: what an im2col path costs without its im2col).
Medians of 20 after 5 warm-ups, CUDA events. Usage: python3 tools/kernels/bench_conv_ref.py"""
import re
import torch
import torch.nn.functional as F

src = open(__file__.replace('bench_conv_ref.py', 'bench_conv.cu')).read()
cases = [(m.group(1), *map(int, m.groups()[1:])) for m in
         re.finditer(r'\{"([^"]+)", (\d+), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+), (\d+)\}', src)]


def med_ms(fn, warm=5, iters=20):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record(); fn(); b.record(); b.synchronize()
        ts.append(a.elapsed_time(b))
    return sorted(ts)[len(ts) // 2]


torch.backends.cudnn.benchmark = True
print('torch', torch.__version__, 'cudnn', torch.backends.cudnn.version(), torch.cuda.get_device_name())
print('| case | M x N x K | cuDNN conv (+res) | TFLOP/s | cuBLAS GEMM alone | TFLOP/s |\n|---|---|---|---|---|---|')
for name, B, H, W, C, Co, k, stride, res in cases:
    pad = k // 2
    x = torch.randn(B, C, H, W, device='cuda', dtype=torch.half).to(memory_format=torch.channels_last)
    w = (torch.randn(Co, C, k, k, device='cuda', dtype=torch.half) / (C * k * k) ** 0.5).to(memory_format=torch.channels_last)
    bias = torch.randn(Co, device='cuda', dtype=torch.half)
    Ho, Wo = (H + 2 * pad - k) // stride + 1, (W + 2 * pad - k) // stride + 1
    r = torch.randn(B, Co, Ho, Wo, device='cuda', dtype=torch.half).to(memory_format=torch.channels_last) if res else None
    conv = (lambda: F.conv2d(x, w, bias, stride, pad) + r) if res else (lambda: F.conv2d(x, w, bias, stride, pad))
    M, K = B * Ho * Wo, C * k * k
    a = torch.randn(M, K, device='cuda', dtype=torch.half)
    bt = torch.randn(K, Co, device='cuda', dtype=torch.half)
    t_conv, t_gemm = med_ms(conv), med_ms(lambda: a @ bt)
    fl = 2.0 * M * Co * K
    print('| %s | %d x %d x %d | %.4f ms | %.0f | %.4f ms | %.0f |' % (name, M, Co, K, t_conv, fl / t_conv / 1e9, t_gemm,
                                                                   fl / t_gemm / 1e9))
    del x, w, r, a, bt
