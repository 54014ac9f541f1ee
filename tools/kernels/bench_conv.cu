// bench_conv.cu - checks and times sdiff's NVRTC implicit-GEMM convolution (build/conv_kernel.h,
// written by tools/kernels/gen_kernels.py from conv_kernel.cu, the same text sdiff_cuda.h ships)
// at the convolution shapes of SD 1.5 (UNet at 512x512 and 1024x1024 with CFG, VAE decoder at
// 512x512) and odd sizes, for every tile variant the library builds.
// Build and run (H100):
//   python3 tools/kernels/gen_kernels.py
//   nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a tools/kernels/bench_conv.cu -o build/bench_conv -lnvrtc -lcuda
//   build/bench_conv [--csv FILE] [--tiles 3,4,5] [-DCONV_...=v ...]
//     --tiles: which CONV_TILE variants (default: 0-2, and the wgmma tiles 3-5 on sm_90a);
//     -D: a tuning sweep; those options go to every tile, whose shape then comes from the
//     module's sdiff_conv2d_cfg
// Each case: fresh random fp16 x, w, bias, residual; y poisoned with NaN; compared with a simple
// fp32 reference kernel (rel = ||y - ref|| / ||ref|| <= 1e-2, NaN fails); timed with CUDA events
// (5 warm-ups, median of 20); rerun once to check the output is bit-identical (a race would move it).
// The library picks a tile per shape with sdiff__cu_conv2d_pick_tile (same generated code); the
// "pick" column names that choice, so its cell is what the library gets.
#include "bench_common.cuh"
#include "conv_kernel.h"

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
    const char *tile_list = NULL;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
        else if (!strcmp(argv[i], "--tiles") && i + 1 < argc) tile_list = argv[++i];
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
    Case cases[] = {
        {"unet512 L0 conv", 2, 64, 64, 320, 320, 3, 1, 1},
        {"unet512 L0 up cat640", 2, 64, 64, 640, 320, 3, 1, 0},
        {"unet512 L0 up cat960", 2, 64, 64, 960, 320, 3, 1, 0},
        {"unet512 L0 downsample", 2, 64, 64, 320, 320, 3, 2, 0},
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
    printf(" library's pick | rel err |\n|---|---|");
    for (int ti = 0; ti < ntiles; ++ti) printf("---|");
    printf("---|---|\n");
    for (int ci = 0; ci < ncases; ++ci) {
        const Case &c = cases[ci];
        if (c.C % bk) continue; /* the kernel's requirement */
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
        char cells[6][48];
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
            // with a residual, y must not be res here (the timed reruns would accumulate)
            CK(cudaMemset(y, 0xff, ny * 2));
            launch();
            CK(cudaDeviceSynchronize());
            std::vector<h16> h1(ny), h2(ny);
            CK(cudaMemcpy(h1.data(), y, ny * 2, cudaMemcpyDeviceToHost));
            double rel = rel_err_h(h1, hr);
            double ms = time_ms(launch);
            CK(cudaMemcpy(h2.data(), y, ny * 2, cudaMemcpyDeviceToHost));
            bool stable = !memcmp(h1.data(), h2.data(), ny * 2), ok = rel == rel && rel <= 1e-2 && stable;
            if (!ok) fails++;
            if (!(rel <= best_rel)) best_rel = rel;
            double tf = 2.0 * M * c.Co * K / (ms * 1e-3) / 1e12;
            snprintf(cells[ti], sizeof cells[ti], "%.4f ms %.0f TF%s", ms, tf, ok ? "" : (stable ? " FAIL" : " UNSTABLE"));
            if (cf)
                fprintf(cf, "%s,%d,%d,%d,%d,%d,%d,%d,%lld,%d,%lld,%d,%.5f,%.1f,%.3g,%d\n", c.name, c.B, c.H, c.W, c.C,
                        c.Co, c.k, c.stride, M, c.Co, K, t, ms, tf, rel, t == pick);
        }
        printf("| %s | %lld x %d x %lld |", c.name, M, c.Co, K);
        for (int ti = 0; ti < ntiles; ++ti) printf(" %s |", cells[ti]);
        printf(" %d | %.2e |\n", pick, best_rel);
        fflush(stdout);
        CK(cudaFree(x)); CK(cudaFree(w)); CK(cudaFree(bias)); CK(cudaFree(res)); CK(cudaFree(y)); CK(cudaFree(ref));
    }
    if (cf) fclose(cf);
    printf("\n%s (%d failing)\n", fails ? "FAILED" : "ALL PASS", fails);
    return fails ? 1 : 0;
}
