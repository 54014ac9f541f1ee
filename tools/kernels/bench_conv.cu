// bench_conv.cu - checks and times sdiff's NVRTC implicit-GEMM convolutions (build/conv_kernel.h and
// build/conv_kernel_sm90.h, written by tools/kernels/gen_kernels.py from conv_kernel.cu and
// conv_kernel_sm90.cu, the same text sdiff_cuda.h ships) at the convolution shapes of SD 1.5 (UNet
// at 512x512 and 1024x1024 with CFG, VAE decoder at 512x512) and odd sizes, for every tile variant
// the library builds.
// Build and run (H100):
//   python3 tools/kernels/gen_kernels.py
//   nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a tools/kernels/bench_conv.cu -o build/bench_conv -lnvrtc -lcuda
//   build/bench_conv [--csv FILE] [--tiles 3,4,5] [--tma 0,1,2,3,4] [--only TEXT] [--reps N] [-DCONV_...=v ...]
//     --tiles: which CONV_TILE variants (default: 0-2, and the wgmma tiles 3-5 on sm_90a);
//     --tma: which CONV_TILE variants of the TMA kernel (sm_90a; default all; "none"), each at
//     every split-K cluster size, where sdiff__cu_conv2d_tma_box fits the shape;
//     --only: the cases whose name contains TEXT (the linear-layer cases, "lin ...", run only when
//     chosen so); --reps: time N back-to-back launches per sample
//     (their mean; launch latency hidden, as in a graph replay; default 1: one launch, latency included);
//     -D: a tuning sweep; those options go to every tile, whose shape then comes from the
//     module's sdiff_conv2d_cfg
// Each case: fresh random fp16 x, w, bias, residual; y poisoned with NaN; compared with a simple
// fp32 reference kernel (rel = ||y - ref|| / ||ref|| <= 1e-2, NaN fails); timed with CUDA events
// (5 warm-ups, median of 20); rerun once to check the output is bit-identical (a race would move it).
// The library picks a tile per shape with sdiff__cu_conv2d_pick_tile (same generated code); the
// "pick" column names that choice, so its cell is what the library gets.
#include "bench_common.cuh"
#include "conv_kernel.h"
#include "conv_kernel_sm90.h"

// fp32 reference: one thread per output, y = (conv + bias) + res (no intermediate rounding).
__global__ void ref_conv(const __half *x, const __half *w, const __half *bias, const __half *res, float *y, int B, int H,
                         int W, int C, int KH, int KW, int Ho, int Wo, int stride, int pad, int Co) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x, n = (long long)B * Ho * Wo * Co;
    if (i >= n) return;
    int co = (int)(i % Co);
    long long m = i / Co;
    int ox = (int)(m % Wo), oy = (int)(m / Wo % Ho), b = (int)(m / ((long long)Wo * Ho));
    float acc = bias ? __half2float(bias[co]) : 0.f;
    for (int kh = 0; kh < KH; ++kh)
        for (int kw = 0; kw < KW; ++kw) {
            int iy = oy * stride - pad + kh, ix = ox * stride - pad + kw;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
            const __half *xp = x + (((long long)b * H + iy) * W + ix) * C, *wp = w + (((long long)co * KH + kh) * KW + kw) * C;
            for (int c = 0; c < C; ++c) acc += __half2float(xp[c]) * __half2float(wp[c]);
        }
    y[i] = acc + (res ? __half2float(res[i]) : 0.f);
}

struct Case { const char *name; int B, H, W, C, Co, k, stride, res; };

int main(int argc, char **argv) {
    const char *csv = NULL;
    std::vector<std::string> extra;
    int bk = 64;
    const char *tile_list = NULL, *tma_list = NULL, *only = NULL;
    int reps = 1;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]) > 0 ? atoi(argv[i]) : 1;
        else if (!strcmp(argv[i], "--tiles") && i + 1 < argc) tile_list = argv[++i];
        else if (!strcmp(argv[i], "--tma") && i + 1 < argc) tma_list = argv[++i];
        else {
            extra.push_back(argv[i]);
            if (!strncmp(argv[i], "-DCONV_BK=", 10)) bk = atoi(argv[i] + 10);
        }
    }
    std::string arch = device_arch();
    int dev, n_sm;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    const int wgmma = arch == "sm_90a";
    std::vector<int> tiles;
    if (tile_list) {
        for (const char *p = tile_list; *p; ++p)
            if (*p >= '0' && *p <= '5') tiles.push_back(*p - '0');
    } else
        for (int t = 0; t < (wgmma ? 6 : 3); ++t) tiles.push_back(t);
    const int ntiles = (int)tiles.size();
    CUfunction fns[6];
    int cfgs[6][4];
    for (int ti = 0; ti < ntiles; ++ti) {
        const int t = tiles[ti];
        std::vector<std::string> defs = {"-DCONV_TILE=" + std::to_string(t)};
        defs.insert(defs.end(), extra.begin(), extra.end());
        CUmodule m = nvrtc_module(sdiff__cu_conv2d_src, "sdiff_conv2d.cu", arch, defs);
        CU(cuModuleGetFunction(&fns[t], m, "sdiff_conv2d_fwd"));
        CUdeviceptr cp; size_t cb; int cfg[4];
        CU(cuModuleGetGlobal(&cp, &cb, m, "sdiff_conv2d_cfg"));
        CU(cuMemcpyDtoH(cfg, cp, sizeof cfg));
        unsigned grid[3], block[3], smem;
        sdiff__cu_conv2d_launch_dims(t, 1000, 1000, grid, block, &smem);
        memcpy(cfgs[t], cfg, sizeof cfg);
        if (extra.empty() && (grid[0] != (unsigned)((1000 + cfg[0] - 1) / cfg[0]) ||
                              grid[1] != (unsigned)((1000 + cfg[1] - 1) / cfg[1]) || block[0] != (unsigned)cfg[2] ||
                              smem != (unsigned)cfg[3])) {
            fprintf(stderr, "tile %d: kernel cfg {%d,%d,%d,%d} disagrees with sdiff__cu_conv2d_launch_dims\n", t, cfg[0],
                    cfg[1], cfg[2], cfg[3]);
            return 1;
        }
        CU(cuFuncSetAttribute(fns[t], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg[3]));
        int regs; CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fns[t]));
        printf("tile %d: BM %d BN %d threads %d smem %d regs %d\n", t, cfg[0], cfg[1], cfg[2], cfg[3], regs);
    }
    // The TMA kernel's variants (sm_90a): CONV_TILE values.
    std::vector<int> tma_tiles;
    for (const char *p = wgmma ? (tma_list ? tma_list : "01234") : ""; *p; ++p)
        if (*p >= '0' && *p <= '4') tma_tiles.push_back(*p - '0');
    const int ntma = (int)tma_tiles.size();
    std::vector<CUfunction> tfns(5);
    int fit[9] = {n_sm, n_sm}; // clusters of s blocks that fit at once (the split-K clusters)
    for (int vi = 0; vi < ntma; ++vi) {
        const int t = tma_tiles[vi], bn = sdiff__cu_conv2d_tma_tiles[t][1];
        std::vector<std::string> defs = {"-DCONV_TILE=" + std::to_string(t)};
        CUmodule m = nvrtc_module(sdiff__cu_conv2d_tma_src, "sdiff_conv2d_tma.cu", arch, defs);
        CU(cuModuleGetFunction(&tfns[t], m, "sdiff_conv2d_fwd_tma"));
        CUdeviceptr cp; size_t cb; int cfg[4];
        CU(cuModuleGetGlobal(&cp, &cb, m, "sdiff_conv2d_tma_cfg"));
        CU(cuMemcpyDtoH(cfg, cp, sizeof cfg));
        unsigned grid[3], block[3], smem;
        sdiff__cu_conv2d_tma_launch_dims(t, 1, 1000, 1000, grid, block, &smem);
        if (cfg[1] != bn || grid[1] != (unsigned)((1000 + cfg[0] - 1) / cfg[0]) || block[0] != (unsigned)cfg[2] ||
            smem != (unsigned)cfg[3]) {
            fprintf(stderr, "tma tile %d: kernel cfg {%d,%d,%d,%d} disagrees with sdiff__cu_conv2d_tma_launch_dims\n", t,
                    cfg[0], cfg[1], cfg[2], cfg[3]);
            return 1;
        }
        CU(cuFuncSetAttribute(tfns[t], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg[3]));
        int regs; CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, tfns[t]));
        printf("tma tile %d: BM %d BN %d threads %d smem %d regs %d\n", t, cfg[0], cfg[1], cfg[2], cfg[3], regs);
        for (int cs = 2; cs <= 8 && vi == 0; ++cs) {
            CUlaunchAttribute at;
            at.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
            at.value.clusterDim.x = cs; at.value.clusterDim.y = 1; at.value.clusterDim.z = 1;
            CUlaunchConfig lc = {};
            lc.gridDimX = cs; lc.gridDimY = lc.gridDimZ = 1;
            lc.blockDimX = 384; lc.blockDimY = lc.blockDimZ = 1;
            lc.sharedMemBytes = cfg[3]; lc.attrs = &at; lc.numAttrs = 1;
            CU(cuOccupancyMaxActiveClusters(&fit[cs], tfns[t], &lc));
        }
    }
    if (ntma) printf("split-K clusters that fit at once, sizes 1-8: %d %d %d %d %d %d %d %d\n", fit[1], fit[2], fit[3], fit[4],
                     fit[5], fit[6], fit[7], fit[8]);
    Case cases[] = {
        {"unet512 L0 conv", 2, 64, 64, 320, 320, 3, 1, 1},
        {"unet512 L0 up cat640", 2, 64, 64, 640, 320, 3, 1, 0},
        {"unet512 L0 up cat960", 2, 64, 64, 960, 320, 3, 1, 0},
        {"unet512 L0 downsample", 2, 64, 64, 320, 320, 3, 2, 0},
        {"unet512 L1 downsample", 2, 32, 32, 640, 640, 3, 2, 0},
        {"unet512 L2 downsample", 2, 16, 16, 1280, 1280, 3, 2, 0},
        {"unet512 L1 conv", 2, 32, 32, 640, 640, 3, 1, 1},
        {"unet512 L1 in 320", 2, 32, 32, 320, 640, 3, 1, 0},
        {"unet512 L2 conv", 2, 16, 16, 1280, 1280, 3, 1, 1},
        {"unet512 L3 conv", 2, 8, 8, 1280, 1280, 3, 1, 1},
        {"unet512 L3 up cat2560", 2, 8, 8, 2560, 1280, 3, 1, 0},
        {"unet512 conv_out Co4", 2, 64, 64, 320, 4, 3, 1, 0},
        {"unet1024 L0 conv", 2, 128, 128, 320, 320, 3, 1, 1},
        {"unet1024 L1 conv", 2, 64, 64, 640, 640, 3, 1, 1},
        {"unet1024 L2 conv", 2, 32, 32, 1280, 1280, 3, 1, 1},
        {"unet1024 L3 conv", 2, 16, 16, 1280, 1280, 3, 1, 1},
        {"vae512 64 c512", 1, 64, 64, 512, 512, 3, 1, 1},
        {"vae512 128 c512", 1, 128, 128, 512, 512, 3, 1, 1},
        {"vae512 256 c256", 1, 256, 256, 256, 256, 3, 1, 1},
        {"vae512 256 up c512", 1, 256, 256, 512, 512, 3, 1, 0},
        {"vae512 512 c128", 1, 512, 512, 128, 128, 3, 1, 1},
        {"vae512 512 in256", 1, 512, 512, 256, 128, 3, 1, 0},
        {"vae512 512 up c256", 1, 512, 512, 256, 256, 3, 1, 0},
        {"vae512 conv_out Co3", 1, 512, 512, 128, 3, 3, 1, 0},
        // the UNet's linear layers at 512x512 with CFG as 1x1 convolutions of one row of M pixels (the
        // measurement behind keeping them on cuBLASLt: tools/PERF.md, S9)
        {"lin L0 8192x320x320", 1, 1, 8192, 320, 320, 1, 1, 0},
        {"lin L0 8192x320x320 +res", 1, 1, 8192, 320, 320, 1, 1, 1},
        {"lin L0 qkv 8192x960x320", 1, 1, 8192, 320, 960, 1, 1, 0},
        {"lin L0 ff1 2048x2560x320", 1, 1, 2048, 320, 2560, 1, 1, 0},
        {"lin L0 ff1 8192x2560x320", 1, 1, 8192, 320, 2560, 1, 1, 0},
        {"lin L0 ff2 2048x320x1280 +res", 1, 1, 2048, 1280, 320, 1, 1, 1},
        {"lin L0 ff2 8192x320x1280 +res", 1, 1, 8192, 1280, 320, 1, 1, 1},
        {"lin L1 2048x640x640 +res", 1, 1, 2048, 640, 640, 1, 1, 1},
        {"lin L1 qkv 2048x1920x640", 1, 1, 2048, 640, 1920, 1, 1, 0},
        {"lin L1 ff1 2048x5120x640", 1, 1, 2048, 640, 5120, 1, 1, 0},
        {"lin L1 ff2 2048x640x2560 +res", 1, 1, 2048, 2560, 640, 1, 1, 1},
        {"lin L2 512x1280x1280 +res", 1, 1, 512, 1280, 1280, 1, 1, 1},
        {"lin L2 qkv 512x3840x1280", 1, 1, 512, 1280, 3840, 1, 1, 0},
        {"lin L2 ff1 512x10240x1280", 1, 1, 512, 1280, 10240, 1, 1, 0},
        {"lin L2 ff2 512x1280x5120 +res", 1, 1, 512, 5120, 1280, 1, 1, 1},
        {"lin L3 128x1280x1280 +res", 1, 1, 128, 1280, 1280, 1, 1, 1},
        {"lin vae qkv 4096x1536x512", 1, 1, 4096, 512, 1536, 1, 1, 0},
        {"odd 33x17 s2 Co72", 3, 33, 17, 192, 72, 3, 2, 1},
        {"odd 1x1-pad0 k1", 2, 9, 7, 64, 40, 1, 1, 1},
        {"odd 5x5 k5 Co8", 1, 19, 21, 64, 8, 5, 1, 1},
    };
    const int ncases = sizeof cases / sizeof cases[0];
    unsigned seed = 777u ^ (unsigned)time(0);
    int fails = 0;
    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (cf) fprintf(cf, "case,B,H,W,C,Co,k,stride,M,N,K,tile,ms,tflops,rel,pick\n");
    printf("\n| case | M x N x K |");
    for (int ti = 0; ti < ntiles; ++ti) printf(" tile %d (%dx%d) |", tiles[ti], cfgs[tiles[ti]][0], cfgs[tiles[ti]][1]);
    for (int vi = 0; vi < ntma; ++vi)
        printf(" TMA %dx%d (best split) |", sdiff__cu_conv2d_tma_tiles[tma_tiles[vi]][0],
               sdiff__cu_conv2d_tma_tiles[tma_tiles[vi]][1]);
    if (ntma) printf(" TMA pick |");
    printf(" library's pick | rel err |\n|---|---|");
    for (int ti = 0; ti < ntiles + ntma + (ntma > 0); ++ti) printf("---|");
    printf("---|---|\n");
    for (int ci = 0; ci < ncases; ++ci) {
        const Case &c = cases[ci];
        if (c.C % bk || (only ? !strstr(c.name, only) : !strncmp(c.name, "lin ", 4))) continue; /* the kernel's requirement; --only */
        const int pad = c.k / 2, Ho = (c.H + 2 * pad - c.k) / c.stride + 1, Wo = (c.W + 2 * pad - c.k) / c.stride + 1;
        const long long M = (long long)c.B * Ho * Wo, K = (long long)c.k * c.k * c.C;
        const size_t nx = (size_t)c.B * c.H * c.W * c.C, nw = (size_t)c.Co * K, ny = (size_t)M * c.Co;
        __half *x, *w, *bias, *res, *y;
        float *ref;
        CK(cudaMalloc(&x, nx * 2)); CK(cudaMalloc(&w, nw * 2)); CK(cudaMalloc(&bias, c.Co * 2));
        CK(cudaMalloc(&res, ny * 2)); CK(cudaMalloc(&y, ny * 2)); CK(cudaMalloc(&ref, ny * 4));
        seed = seed * 1664525u + 1013904223u;
        fill(x, nx, seed, 1.0f);
        fill(w, nw, seed ^ 0x51u, 1.0f / sqrtf((float)K));
        fill(bias, c.Co, seed ^ 0x77u, 0.5f);
        fill(res, ny, seed ^ 0x99u, 1.0f);
        __half *rp = c.res ? res : NULL;
        ref_conv<<<(unsigned)((ny + 255) / 256), 256>>>(x, w, bias, rp, ref, c.B, c.H, c.W, c.C, c.k, c.k, Ho, Wo, c.stride,
                                                        pad, c.Co);
        CK(cudaGetLastError());
        std::vector<float> hr(ny);
        CK(cudaMemcpy(hr.data(), ref, ny * 4, cudaMemcpyDeviceToHost));
        const int pick = sdiff__cu_conv2d_pick_tile(M, c.Co, n_sm, wgmma);
        double best_rel = 0;
        char cells[16][64];
        // Runs one variant on NaN-poisoned y, checks it against the reference, times it, checks a
        // rerun is bit-identical; the table cell. variant (the csv column "tile"): the CONV_TILE, or 1000 x split + 10 x CONV_TILE for TMA.
        static char cell[48];
        auto check_and_time = [&](const std::function<void()> &launch, int variant, bool picked) -> const char * {
            // with a residual, y must not be res here (the timed reruns would accumulate)
            CK(cudaMemset(y, 0xff, ny * 2));
            launch();
            CK(cudaDeviceSynchronize());
            std::vector<h16> h1(ny), h2(ny);
            CK(cudaMemcpy(h1.data(), y, ny * 2, cudaMemcpyDeviceToHost));
            double rel = rel_err_h(h1, hr);
            double ms = time_ms(launch, 5, 20, reps);
            CK(cudaMemcpy(h2.data(), y, ny * 2, cudaMemcpyDeviceToHost));
            bool stable = !memcmp(h1.data(), h2.data(), ny * 2), ok = rel == rel && rel <= 1e-2 && stable;
            if (!ok) fails++;
            if (!(rel <= best_rel)) best_rel = rel;
            double tf = 2.0 * M * c.Co * K / (ms * 1e-3) / 1e12;
            if (cf)
                fprintf(cf, "%s,%d,%d,%d,%d,%d,%d,%d,%lld,%d,%lld,%d,%.5f,%.1f,%.3g,%d\n", c.name, c.B, c.H, c.W,
                        c.C, c.Co, c.k, c.stride, M, c.Co, K, variant, ms, tf, rel, picked);
            snprintf(cell, sizeof cell, "%.4f ms %.0f TF%s", ms, tf, ok ? "" : (stable ? " FAIL" : " UNSTABLE"));
            return cell;
        };
        for (int ti = 0; ti < ntiles; ++ti) {
            const int t = tiles[ti];
            unsigned grid[3], block[3], smem;
            sdiff__cu_conv2d_launch_dims(t, M, c.Co, grid, block, &smem);
            if (!extra.empty()) {
                grid[0] = (unsigned)((M + cfgs[t][0] - 1) / cfgs[t][0]);
                grid[1] = (unsigned)((c.Co + cfgs[t][1] - 1) / cfgs[t][1]);
                block[0] = (unsigned)cfgs[t][2];
                smem = (unsigned)cfgs[t][3];
            }
            int B = c.B, H = c.H, W = c.W, C = c.C, KH = c.k, KW = c.k, ho = Ho, wo = Wo, st = c.stride, pd = pad, Co = c.Co;
            int vec = c.Co % 8 == 0;
            void *args[] = {&x, &w, &bias, &rp, &y, &B, &H, &W, &C, &KH, &KW, &ho, &wo, &st, &pd, &Co, &vec};
            auto launch = [&]() {
                CU(cuLaunchKernel(fns[t], grid[0], grid[1], grid[2], block[0], block[1], block[2], smem, 0, args, 0));
            };
            snprintf(cells[ti], sizeof cells[ti], "%s", check_and_time(launch, t, pick == t));
        }
        unsigned boxes[5][3];
        int box_ok[5];
        for (int t = 0; t < 5; ++t)
            box_ok[t] = sdiff__cu_conv2d_tma_box(Ho, Wo, sdiff__cu_conv2d_tma_tiles[t][0], boxes[t]) &&
                        boxes[t][0] * c.stride <= 256 && boxes[t][1] * c.stride <= 256;
        // Every TMA variant at each split-K size; its cell shows the fastest split; then the
        // library's pick (tile and split) on its own.
        int tsplit = 1;
        const int tpick = ntma ? sdiff__cu_conv2d_tma_pick(M, c.Co, K / 64, fit, box_ok, &tsplit) : -1;
        for (int vi = 0; vi <= ntma && ntma; ++vi) {
            char *cellp = cells[ntiles + vi];
            const int t = vi < ntma ? tma_tiles[vi] : tpick;
            if (t < 0 || !box_ok[t]) { snprintf(cellp, sizeof cells[0], "-"); continue; }
            if (!tfns[t]) { snprintf(cellp, sizeof cells[0], "(tile %d not built)", t); continue; }
            const int bn = sdiff__cu_conv2d_tma_tiles[t][1];
            double best = 1e9;
            for (int split = 1; split <= 8; ++split) {
                if (vi == ntma ? split != tsplit : split > K / 64) continue;
                alignas(64) unsigned char maps[2][128];
                void *mp[2] = {maps[0], maps[1]};
                const int r = sdiff__cu_conv2d_tma_maps((sdiff__cu_tmap_encode_fn)(void *)cuTensorMapEncodeTiled, mp, x, w,
                                                        c.B, c.H, c.W, c.C, c.Co, K, boxes[t], bn, c.stride);
                if (r) { fprintf(stderr, "%s: cuTensorMapEncodeTiled failed (%d)\n", c.name, r); return 1; }
                unsigned grid[3], block[3], smem;
                sdiff__cu_conv2d_tma_launch_dims(t, split, M, c.Co, grid, block, &smem);
                int m_ = (int)M, ho = Ho, wo = Wo, C = c.C, KW = c.k, KT = (int)(K / 64), pd = pad, Co = c.Co,
                    vec = c.Co % 8 == 0;
                int phase = -1, res_px = 1, res_ld = c.Co;
                int stride = c.stride;
                void *args[] = {maps[0], maps[1], &bias, &rp, &y, &m_, &ho, &wo, &C, &KW, &KT, &pd, &pd, &stride, &Co, &vec,
                                &phase, &res_px, &res_ld};
                CUlaunchAttribute at;
                at.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
                at.value.clusterDim.x = split; at.value.clusterDim.y = 1; at.value.clusterDim.z = 1;
                CUlaunchConfig lc = {};
                lc.gridDimX = grid[0]; lc.gridDimY = grid[1]; lc.gridDimZ = grid[2];
                lc.blockDimX = block[0]; lc.blockDimY = block[1]; lc.blockDimZ = block[2];
                lc.sharedMemBytes = smem; lc.attrs = &at; lc.numAttrs = split > 1;
                auto launch = [&]() { CU(cuLaunchKernelEx(&lc, tfns[t], args, 0)); };
                const char *cell = check_and_time(launch, 1000 * split + 10 * t, vi == ntma);
                const double ms = atof(cell);
                const bool bad = strstr(cell, "FAIL") || strstr(cell, "UNSTABLE");
                if (bad || ms < best) {
                    best = bad ? -1 : ms;
                    snprintf(cellp, sizeof cells[0], "%s s%d%s", cell, split,
                             vi == ntma ? (t == 4 ? " t4" : t == 3 ? " t3" : t == 2 ? " t2" : t == 1 ? " t1" : " t0") : "");
                }
                if (best < 0) break;
            }
        }
        printf("| %s | %lld x %d x %lld |", c.name, M, c.Co, K);
        for (int ti = 0; ti < ntiles + ntma + (ntma > 0); ++ti) printf(" %s |", cells[ti]);
        printf(" %d | %.2e |\n", pick, best_rel);
        fflush(stdout);
        CK(cudaFree(x)); CK(cudaFree(w)); CK(cudaFree(bias)); CK(cudaFree(res)); CK(cudaFree(y)); CK(cudaFree(ref));
    }
    if (cf) fclose(cf);
    printf("\n%s (%d failing)\n", fails ? "FAILED" : "ALL PASS", fails);
    return fails ? 1 : 0;
}
