// bench_attn.cu - checks and times sdiff's NVRTC attention kernels (build/attn_kernel.h and
// build/attn_kernel_sm90.h, written by tools/kernels/gen_kernels.py from attn_kernel.cu and
// attn_kernel_sm90.cu, the same text sdiff_cuda.h ships).
// Build and run (H100):
//   python3 tools/kernels/gen_kernels.py
//   nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a tools/kernels/bench_attn.cu -o /tmp/bench_attn -lnvrtc -lcuda
//   /tmp/bench_attn [--kernel sync|sm90] [--only N] [--reps N] [-DATT_...=x ...]
//     --kernel: the mma.sync kernel or the TMA + wgmma one (default: sm90 on Hopper, else sync;
//               sm90 takes non-causal D = 40, 64, 72, 80 only and skips the other cases)
//     --reps: time N back-to-back launches per sample (their mean: launch latency hidden, as in a
//             graph replay; default 1, latency included)
// The kernel string is compiled by NVRTC for the device's own arch (sm_90a on Hopper), exactly
// as the library will. Each case: fresh random fp16 inputs laid out as the library passes them
// (self-attention: q, k, v column views of one packed [B, L, 3*H*D] tensor; cross-attention: q
// contiguous, k and v column views of a packed [B, Lk, 2*H*D] tensor), output poisoned with
// NaN first, compared with a simple fp32 reference kernel (rel = ||o - ref|| / ||ref||, must be
// <= 1e-2, NaN fails), then timed with CUDA events (5 warm-ups, median of 20), and rerun once to
// check the output is bit-identical (a moving result would mean a race).
#include "bench_common.cuh"
#include "attn_kernel.h"
#include "attn_kernel_sm90.h"

// fp32 reference: one block per (query, b*H + h); scores in shared memory.
__global__ void ref_attn(const __half *q, const __half *k, const __half *v, float *o, int B, int H, int Lq, int Lk,
                         int D, long long qs, long long ks, long long vs, int causal) {
    extern __shared__ float sc[];
    __shared__ float red[32];
    const int i = blockIdx.x, bh = blockIdx.y, b = bh / H, h = bh % H;
    const __half *qr = q + ((long long)b * Lq + i) * qs + h * D;
    const float scale = 1.f / sqrtf((float)D);
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < Lk; j += blockDim.x) {
        const __half *kr = k + ((long long)b * Lk + j) * ks + h * D;
        float acc = 0.f;
        for (int d = 0; d < D; ++d) acc += __half2float(qr[d]) * __half2float(kr[d]);
        acc *= scale;
        if (causal && j > i) acc = -INFINITY;
        sc[j] = acc;
        mx = fmaxf(mx, acc);
    }
    for (int off = 16; off; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = mx;
    __syncthreads();
    mx = -INFINITY;
    for (int w = 0; w < (int)blockDim.x / 32; ++w) mx = fmaxf(mx, red[w]);
    __syncthreads();
    float sum = 0.f;
    for (int j = threadIdx.x; j < Lk; j += blockDim.x) { float p = expf(sc[j] - mx); sc[j] = p; sum += p; }
    for (int off = 16; off; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = sum;
    __syncthreads();
    sum = 0.f;
    for (int w = 0; w < (int)blockDim.x / 32; ++w) sum += red[w];
    for (int d = threadIdx.x; d < D; d += blockDim.x) {
        float acc = 0.f;
        for (int j = 0; j < Lk; ++j) acc += sc[j] * __half2float(v[((long long)b * Lk + j) * vs + h * D + d]);
        o[((long long)b * Lq + i) * (H * D) + h * D + d] = acc / sum;
    }
}

struct Mod { int D, causal, split; CUmodule mod; CUfunction fn; int regs, local, cfg[4]; };
static std::vector<Mod> mods;
static std::string g_arch;
static bool g_sm90; // the TMA + wgmma kernel
static int g_n_sm; // the split tails' SM count (sm90)
// The launch; sm90: split = the kernel's {n_qt, n_full, splits} for a GPU of n_sm SMs (0: no split),
// and the floats its partials take.
static long long launch_dims(int D, int Lq, int Lk, int B, int H, int n_sm, unsigned grid[3], unsigned block[3],
                             unsigned *smem, int split[3]) {
    unsigned tile[2]; // the tensor maps' box rows: taken from the module's cfg below, which must agree
    if (g_sm90) return sdiff__cu_attention_sm90_launch_dims(D, Lq, Lk, B, H, n_sm, grid, block, smem, tile, split);
    sdiff__cu_attention_launch_dims(D, Lq, B, H, grid, block, smem);
    return 0;
}
static const char *g_extra[8]; static int g_nextra; // tuning sweeps: extra -D options (then tiles come from the module)

// split_build: the TMA kernel built with its split tails (-DATT_SPLIT=1, as the library's split variants)
static Mod &get_mod(int D, int causal, int split_build = 0) {
    for (auto &m : mods) if (m.D == D && m.causal == causal && m.split == split_build) return m;
    std::vector<std::string> defs = {"-DHEAD_DIM=" + std::to_string(D)};
    if (split_build) defs.push_back("-DATT_SPLIT=1");
    if (!g_sm90) defs.push_back("-DCAUSAL=" + std::to_string(causal));
    for (int i = 0; i < g_nextra; ++i) defs.push_back(g_extra[i]);
    Mod m; m.D = D; m.causal = causal; m.split = split_build;
    m.mod = g_sm90 ? nvrtc_module(sdiff__cu_attention_sm90_src, "sdiff_attention_sm90.cu", g_arch, defs)
                   : nvrtc_module(sdiff__cu_attention_src, "sdiff_attention.cu", g_arch, defs);
    CU(cuModuleGetFunction(&m.fn, m.mod, g_sm90 ? "sdiff_attention_fwd_tma" : "sdiff_attention_fwd"));
    CU(cuFuncGetAttribute(&m.regs, CU_FUNC_ATTRIBUTE_NUM_REGS, m.fn));
    CU(cuFuncGetAttribute(&m.local, CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES, m.fn));
    CUdeviceptr cp; size_t cb;
    CU(cuModuleGetGlobal(&cp, &cb, m.mod, "sdiff_attention_cfg"));
    CU(cuMemcpyDtoH(m.cfg, cp, sizeof m.cfg));
    unsigned grid[3], block[3], smem;
    int split[3];
    launch_dims(D, 4096, 4096, 1, 1, 0, grid, block, &smem, split);
    if (!g_nextra && (grid[0] != (unsigned)((4096 + m.cfg[0] - 1) / m.cfg[0]) || (unsigned)m.cfg[2] != block[0] || (unsigned)m.cfg[3] != smem)) {
        fprintf(stderr, "D=%d: kernel cfg {BM %d, BN %d, threads %d, smem %d} disagrees with launch_dims (grid.x %u, block %u, smem %u)\n",
                D, m.cfg[0], m.cfg[1], m.cfg[2], m.cfg[3], grid[0], block[0], smem);
        exit(1);
    }
    CU(cuFuncSetAttribute(m.fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, m.cfg[3]));
    mods.push_back(m);
    return mods.back();
}

struct Case { const char *name; int B, H, Lq, Lk, D, causal, cross; };

int main(int argc, char **argv) {
    int only = -1, reps = 1;
    const char *kernel = NULL;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--kernel") && i + 1 < argc) kernel = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (g_nextra < 8) g_extra[g_nextra++] = argv[i];
    }
    g_arch = device_arch();
    g_sm90 = kernel ? !strcmp(kernel, "sm90") : g_arch == "sm_90a";
    {
        int dev = 0;
        CK(cudaGetDevice(&dev));
        CK(cudaDeviceGetAttribute(&g_n_sm, cudaDevAttrMultiProcessorCount, dev));
    }
    printf("kernel: %s\n", g_sm90 ? "TMA + wgmma (attn_kernel_sm90.cu)" : "mma.sync (attn_kernel.cu)");
    Case cases[] = {
        {"self  SD2 64x64 lat", 2, 8, 4096, 4096, 64, 0, 0},
        {"self  SD1 64x64 lat", 2, 8, 4096, 4096, 40, 0, 0},
        {"cross SD1 64x64 lat", 2, 8, 4096, 77, 40, 0, 1},
        {"cross SD2 64x64 lat", 2, 5, 4096, 77, 64, 0, 1},
        {"self  32x32 H10", 2, 10, 1024, 1024, 64, 0, 0},
        {"self  16x16 H20", 2, 20, 256, 256, 64, 0, 0},
        {"self  SD1 32x32 D80", 2, 8, 1024, 1024, 80, 0, 0},
        {"cross SD1 32x32 D80", 2, 8, 1024, 77, 80, 0, 1},
        {"self  SD1 16x16 D160", 2, 8, 256, 256, 160, 0, 0},
        {"cross SD1 16x16 D160", 2, 8, 256, 77, 160, 0, 1},
        {"self  odd L=1000", 2, 8, 1000, 1000, 64, 0, 0},
        {"self  odd D72 L=1000", 2, 8, 1000, 1000, 72, 0, 0},
        {"self  D128 L=2048", 2, 8, 2048, 2048, 128, 0, 0},
        {"causal CLIP L=77", 1, 12, 77, 77, 64, 1, 0},
        {"causal L=1000 D64", 2, 8, 1000, 1000, 64, 1, 0},
        {"causal L=300 D40", 1, 4, 300, 300, 40, 1, 0},
        {"self  SD1 1024 lat", 2, 8, 16384, 16384, 40, 0, 0},
        {"self  odd D40 L=333", 1, 3, 333, 333, 40, 0, 0},
        {"self  D32 L=200/Lk=1", 2, 2, 200, 1, 32, 0, 0},
        {"self  SD1 1024 D80", 2, 8, 4096, 4096, 80, 0, 0},
        {"self  D80 L=333/Lk=1", 2, 2, 333, 1, 80, 0, 0},
    };
    const int ncases = sizeof cases / sizeof cases[0];
    struct Row { double rel, ms, tf; int ok, stable, skipped; };
    std::vector<Row> rows(ncases);
    unsigned seed = 12345u ^ (unsigned)time(0);
    int fails = 0;
    for (int ci = 0; ci < ncases; ++ci) {
        const Case &c = cases[ci];
        // the TMA kernel takes non-causal D = 40, 64, 72, 80 only (the library routes the rest to attn_kernel.cu)
        const bool skip = (only >= 0 && ci != only) || (g_sm90 && (c.causal || (c.D != 40 && c.D != 64 && c.D != 72 && c.D != 80)));
        rows[ci].skipped = skip;
        if (skip) continue;
        const int HD = c.H * c.D;
        const Mod m = get_mod(c.D, c.causal); // a copy: get_mod may grow the vector
        // Layout as the library passes it.
        size_t nq, nkv; long long qs, ks, vs;
        __half *qbuf, *kvbuf, *qp, *kp, *vp;
        if (!c.cross) {
            qs = ks = vs = 3LL * HD;
            nq = (size_t)c.B * c.Lq * 3 * HD; nkv = 0;
            CK(cudaMalloc(&qbuf, nq * 2)); kvbuf = 0;
            qp = qbuf; kp = qbuf + HD; vp = qbuf + 2 * HD;
        } else {
            qs = HD; ks = vs = 2LL * HD;
            nq = (size_t)c.B * c.Lq * HD; nkv = (size_t)c.B * c.Lk * 2 * HD;
            CK(cudaMalloc(&qbuf, nq * 2)); CK(cudaMalloc(&kvbuf, nkv * 2));
            qp = qbuf; kp = kvbuf; vp = kvbuf + HD;
        }
        seed = seed * 1664525u + 1013904223u;
        fill(qbuf, nq, seed, 2.0f);
        if (nkv) fill(kvbuf, nkv, seed ^ 0x9e3779b9u, 2.0f);
        const size_t no = (size_t)c.B * c.Lq * HD;
        __half *o; float *ref;
        CK(cudaMalloc(&o, no * 2)); CK(cudaMalloc(&ref, no * 4));
        CK(cudaMemset(o, 0xff, no * 2)); // NaN poison: unwritten outputs fail the check
        CK(cudaFuncSetAttribute(ref_attn, cudaFuncAttributeMaxDynamicSharedMemorySize, c.Lk * 4 > 48 * 1024 ? c.Lk * 4 : 48 * 1024));
        ref_attn<<<dim3(c.Lq, c.B * c.H), 128, c.Lk * 4>>>(qp, kp, vp, ref, c.B, c.H, c.Lq, c.Lk, c.D, qs, ks, vs, c.causal);
        CK(cudaGetLastError());
        unsigned grid[3], block[3], smem;
        int split[3] = {0, 0, 1};
        const long long part_floats = launch_dims(c.D, c.Lq, c.Lk, c.B, c.H, g_nextra ? 0 : g_n_sm, grid, block, &smem, split);
        if (g_nextra) { // tiles from the module; no split tails
            split[0] = (c.Lq + m.cfg[0] - 1) / m.cfg[0];
            split[1] = split[0] * c.B * c.H;
            grid[0] = g_sm90 ? split[1] : split[0]; block[0] = m.cfg[2]; smem = m.cfg[3];
            if (!g_sm90) grid[1] = c.B * c.H;
        }
        float *part = 0;
        int *count = 0;
        const int tails = g_sm90 ? (int)grid[0] - split[1] : 0; // blocks past n_full; counters: tails / splits
        if (part_floats) {
            CK(cudaMalloc(&part, part_floats * 4));
            CK(cudaMalloc(&count, (tails / split[2]) * sizeof(int)));
            CK(cudaMemset(count, 0, (tails / split[2]) * sizeof(int)));
        }
        int B = c.B, H = c.H, Lq = c.Lq, Lk = c.Lk;
        long long os = HD;
        float sl2e = 1.4426950408889634f / sqrtf((float)c.D);
        void *args_sync[] = {&qp, &kp, &vp, &o, &B, &H, &Lq, &Lk, &qs, &ks, &vs, &os, &sl2e};
        alignas(64) unsigned char maps[3][128];
        void *mp[3] = {maps[0], maps[1], maps[2]};
        void *args_tma[] = {maps[0], maps[1], maps[2], &o, &H, &Lq, &Lk, &os, &sl2e, &split[0], &split[1], &split[2], &part, &count};
        if (g_sm90) {
            const int r = sdiff__cu_attention_sm90_tmaps((sdiff__cu_tmap_encode_fn)(void *)cuTensorMapEncodeTiled, mp, qp, kp,
                                                         vp, c.D, c.H, c.B, c.Lq, c.Lk, qs, ks, vs, m.cfg[0], m.cfg[1]);
            if (r) { fprintf(stderr, "%s: cuTensorMapEncodeTiled failed (%d)\n", c.name, r); exit(1); }
        }
        void **args = g_sm90 ? args_tma : args_sync;
        CUfunction fn = part_floats ? get_mod(c.D, c.causal, 1).fn : m.fn; // the library's choice
        auto launch = [&]() { CU(cuLaunchKernel(fn, grid[0], grid[1], grid[2], block[0], block[1], block[2], smem, 0, args, 0)); };
        launch();
        CK(cudaGetLastError());
        CK(cudaDeviceSynchronize());
        std::vector<h16> ho(no), ho2(no);
        std::vector<float> hr(no);
        CK(cudaMemcpy(ho.data(), o, no * 2, cudaMemcpyDeviceToHost));
        CK(cudaMemcpy(hr.data(), ref, no * 4, cudaMemcpyDeviceToHost));
        Row &R = rows[ci];
        R.rel = rel_err_h(ho, hr);
        const bool nan = R.rel != R.rel;
        R.ok = !nan && R.rel <= 1e-2;
        R.ms = time_ms(launch, 5, 20, reps);
        R.tf = 4.0 * c.B * c.H * (double)c.Lq * c.Lk * c.D / (R.ms * 1e-3) / 1e12;
        CK(cudaMemcpy(ho2.data(), o, no * 2, cudaMemcpyDeviceToHost));
        R.stable = memcmp(ho.data(), ho2.data(), no * 2) == 0;
        if (!R.ok || !R.stable) fails++;
        printf("%-22s B=%d H=%-2d Lq=%-4d Lk=%-4d D=%-3d causal=%d  rel=%.2e%s  %.4f ms  %.1f TFLOP/s%s", c.name, c.B,
               c.H, c.Lq, c.Lk, c.D, c.causal, R.rel, nan ? " (NaN)" : "", R.ms, R.tf, R.stable ? "" : "  UNSTABLE");
        if (part_floats) { // the same without the split tails, for comparison
            const unsigned split_grid = grid[0];
            int whole[3];
            launch_dims(c.D, c.Lq, c.Lk, c.B, c.H, 0, grid, block, &smem, whole);
            const int saved[3] = {split[0], split[1], split[2]};
            split[1] = whole[1], split[2] = 1;
            fn = m.fn; // the build without the split tails, as the library runs unsplit launches
            const double ms = time_ms(launch, 5, 20, reps);
            printf("  (tails split in %d: %u blocks; unsplit %.4f ms)", saved[2], split_grid, ms);
            split[1] = saved[1], split[2] = saved[2];
            grid[0] = split_grid;
            fn = get_mod(c.D, c.causal, 1).fn;
        }
        printf("\n");
        fflush(stdout);
        if (part) { CK(cudaFree(part)); CK(cudaFree(count)); }
        CK(cudaFree(qbuf)); if (kvbuf) CK(cudaFree(kvbuf)); CK(cudaFree(o)); CK(cudaFree(ref));
    }
    printf("\nkernels (NVRTC, %s):\n", g_arch.c_str());
    for (auto &m : mods)
        printf("  HEAD_DIM=%-3d CAUSAL=%d  regs=%d local(spill)=%dB  BM=%d BN=%d threads=%d smem=%dB\n", m.D, m.causal,
               m.regs, m.local, m.cfg[0], m.cfg[1], m.cfg[2], m.cfg[3]);
    printf("\n| case | B | H | Lq | Lk | D | causal | rel err | ok | ms (median/20) | TFLOP/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int ci = 0; ci < ncases; ++ci) {
        const Case &c = cases[ci]; const Row &R = rows[ci];
        if (R.skipped) continue;
        printf("| %s | %d | %d | %d | %d | %d | %d | %.2e | %s | %.4f | %.1f |\n", c.name, c.B, c.H, c.Lq, c.Lk, c.D,
               c.causal, R.rel, R.ok && R.stable ? "PASS" : "FAIL", R.ms, R.tf);
    }
    printf("\n%s (%d failing)\n", fails ? "FAILED" : "ALL PASS", fails);
    return fails ? 1 : 0;
}
