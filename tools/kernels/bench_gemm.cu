// bench_gemm.cu - checks and times sdiff's Hopper GEMM (build/gemm_kernel_sm90.h, written by
// tools/kernels/gen_kernels.py from gemm_kernel_sm90.cu, the text sdiff_cuda.h ships) against
// cuBLASLt (the heuristic's first algorithm, as the library used it before) at every GEMM shape
// of an SD 1.5 generation at 512x512 with CFG (UNet, text encoder, VAE; tools/PERF.md S12 lists
// how they were collected) and odd sizes, for every column tile and split-K.
// Build and run (H100):
//   python3 tools/kernels/gen_kernels.py
//   nvcc -O2 -Ibuild -gencode=arch=compute_90a,code=sm_90a tools/kernels/bench_gemm.cu -o build/bench_gemm \
//        -lnvrtc -lcuda -lcublasLt
//   build/bench_gemm [--only TEXT[|TEXT...]] [--tiles 4,6] [--cold] [--csv FILE] [--no-time] [-DGEMM_...=v ...]
//     --csv: every tile at every split-K, one row each; --no-time: check only (under compute-sanitizer);
//     --cold: each launch timed alone after L2 is flushed and a rewritten (below)
// The table's "pick" column is the tile and split sdiff__cu_gemm_pick (the library's choice) takes
// and its time; GEGLU cases (SD's feed-forward in, fused) have w of 2N rows and N outputs.
// Each case: fresh random fp16 a, w, bias, residual; y poisoned with NaN; compared with an fp32
// reference (rel = ||y - ref|| / ||ref|| <= 1e-2, NaN fails); timed as the mean of 10 back-to-back
// launches (latency hidden, as in a graph replay), median of 15 samples; rerun to check the
// output is bit-identical. --cold times each launch alone (median of 15) after a 256 MB write has
// evicted L2 and a has been rewritten: what a UNet layer sees (its input just written by the layer
// before, in L2; its weights in DRAM, since a step's 1.7 GB of weights do not fit in L2), which the
// back-to-back launches hide (PERF.md S13: in place our 128-tile grids took 4 us more than here).
#include "bench_common.cuh"
#include "gemm_kernel_sm90.h"
#include <cublasLt.h>

#define LT(x) do { cublasStatus_t s_ = (x); if (s_) { fprintf(stderr, "%s:%d %s: %d\n", __FILE__, __LINE__, #x, (int)s_); exit(1); } } while (0)

// fp32 reference: y = alpha * a.w^T + bias + res, or with geglu h * gelu(g) + res of the 2N outputs.
__device__ float ref_dot(const __half *a, long long lda, const __half *w, long long ldw, const __half *bias, int m,
                         int n, int K, float alpha) {
    float acc = 0.f;
    for (int k = 0; k < K; ++k) acc += __half2float(a[m * lda + k]) * __half2float(w[n * ldw + k]);
    return alpha * acc + (bias ? __half2float(bias[n]) : 0.f);
}
__global__ void ref_gemm(const __half *a, long long lda, const __half *w, long long ldw, const __half *bias,
                         const __half *res, float *y, int M, int N, int K, float alpha, int geglu) {
    long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (i >= (long long)M * N) return;
    const int n = (int)(i % N), m = (int)(i / N);
    float v = ref_dot(a, lda, w, ldw, bias, m, n, K, alpha);
    if (geglu) {
        const float g = ref_dot(a, lda, w, ldw, bias, m, N + n, K, alpha);
        v *= 0.5f * g * (1.f + erff(g * 0.70710678f));
    }
    y[i] = v + (res ? __half2float(res[i]) : 0.f);
}

struct Case { const char *name; int M, N, K, lda, ldw, bias, res, f32, geglu; };

static const sdiff__cu_tmap_encode_fn encode = (sdiff__cu_tmap_encode_fn)(void *)cuTensorMapEncodeTiled;

int main(int argc, char **argv) {
    const char *only = NULL, *csv = NULL;
    int timing = 1, cold = 0;
    unsigned tile_mask = ~0u;
    std::vector<std::string> extra;
    for (int i = 1; i < argc; ++i) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--csv") && i + 1 < argc) csv = argv[++i];
        else if (!strcmp(argv[i], "--no-time")) timing = 0;
        else if (!strcmp(argv[i], "--cold")) cold = 1;
        else if (!strcmp(argv[i], "--tiles") && i + 1 < argc) {
            tile_mask = 0;
            for (const char *p = argv[++i]; *p; ++p)
                if (*p >= '0' && *p <= '9') tile_mask |= 1u << (*p - '0');
        }
        else extra.push_back(argv[i]);
    }
    FILE *cf = csv ? fopen(csv, "w") : NULL;
    if (cf) fprintf(cf, "case,M,N,K,geglu,tile,bm,bn,split,us,rel\n");
    std::string arch = device_arch();
    if (arch != "sm_90a") { printf("needs sm_90a\n"); return 0; }
    int dev, n_sm;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev));
    const int NTL = SDIFF__CU_GEMM_TILES;
    CUfunction fn[NTL][3]; // [tile][plain fp16, fp32, GEGLU]
    unsigned smem[NTL];
    for (int v = 0; v < NTL; ++v)
        for (int f32 = 0; f32 < 2; ++f32) {
            std::vector<std::string> defs = {"-DGEMM_TILE=" + std::to_string(v),
                                             "-DOUT_F32=" + std::to_string(f32)};
            defs.insert(defs.end(), extra.begin(), extra.end());
            CUmodule m = nvrtc_module(sdiff__cu_gemm_tma_src, "sdiff_gemm_tma.cu", arch, defs);
            CU(cuModuleGetFunction(&fn[v][f32], m, "sdiff_gemm_tma"));
            if (!f32) CU(cuModuleGetFunction(&fn[v][2], m, "sdiff_gemm_tma_geglu"));
            CUdeviceptr cp; size_t cb; int cfg[4];
            CU(cuModuleGetGlobal(&cp, &cb, m, "sdiff_gemm_tma_cfg"));
            CU(cuMemcpyDtoH(cfg, cp, sizeof cfg));
            smem[v] = (unsigned)cfg[3];
            if (extra.empty() && (cfg[0] != sdiff__cu_gemm_tiles[v][0] || cfg[1] != sdiff__cu_gemm_tiles[v][1] ||
                                  cfg[3] != (int)sdiff__cu_gemm_smem(v))) {
                fprintf(stderr, "tile %d: cfg {%d,%d,%d,%d} disagrees with sdiff__cu_gemm_tiles/_smem\n", v,
                        cfg[0], cfg[1], cfg[2], cfg[3]);
                return 1;
            }
            CU(cuFuncSetAttribute(fn[v][f32], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg[3]));
            if (!f32) CU(cuFuncSetAttribute(fn[v][2], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, cfg[3]));
            int regs; CU(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, fn[v][f32]));
            if (!f32) printf("tile %d: BM %d BN %d threads %d smem %d regs %d\n", v, cfg[0], cfg[1], cfg[2], cfg[3], regs);
        }
    Case cases[] = {
        // UNet 512x512, CFG (2 images): tokens 8192 / 2048 / 512 / 128 at the four levels
        {"unet L0 q 8192x320x320", 8192, 320, 320, 320, 320, 0, 0, 0},
        {"unet L0 proj 8192x320x320 +b", 8192, 320, 320, 320, 320, 1, 0, 0},
        {"unet L0 out 8192x320x320 +b+res", 8192, 320, 320, 320, 320, 1, 1, 0},
        {"unet L0 qkv 8192x960x320", 8192, 960, 320, 320, 320, 0, 0, 0},
        {"unet L0 ff1 8192x2560x320", 8192, 2560, 320, 320, 320, 1, 0, 0},
        {"unet L0 ff2 8192x320x1280 +res", 8192, 320, 1280, 1280, 1280, 1, 1, 0},
        {"unet L0 sc 8192x320x640", 8192, 320, 640, 640, 640, 1, 0, 0},
        {"unet L0 sc 8192x320x960", 8192, 320, 960, 960, 960, 1, 0, 0},
        {"unet L1 2048x640x640 +res", 2048, 640, 640, 640, 640, 1, 1, 0},
        {"unet L1 qkv 2048x1920x640", 2048, 1920, 640, 640, 640, 0, 0, 0},
        {"unet L1 ff1 2048x5120x640", 2048, 5120, 640, 640, 640, 1, 0, 0},
        {"unet L1 ff2 2048x640x2560 +res", 2048, 640, 2560, 2560, 2560, 1, 1, 0},
        {"unet L1 sc 2048x640x1920", 2048, 640, 1920, 1920, 1920, 1, 0, 0},
        {"unet L1 down 2048x320x2880", 2048, 320, 2880, 2880, 2880, 1, 0, 0},
        {"unet L2 512x1280x1280 +res", 512, 1280, 1280, 1280, 1280, 1, 1, 0},
        {"unet L2 qkv 512x3840x1280", 512, 3840, 1280, 1280, 1280, 0, 0, 0},
        {"unet L2 ff1 512x10240x1280", 512, 10240, 1280, 1280, 1280, 1, 0, 0},
        {"unet L2 ff2 512x1280x5120 +res", 512, 1280, 5120, 5120, 5120, 1, 1, 0},
        {"unet L2 down 512x640x5760", 512, 640, 5760, 5760, 5760, 1, 0, 0},
        {"unet L3 128x1280x1280 +res", 128, 1280, 1280, 1280, 1280, 1, 1, 0},
        {"unet L3 ff2 128x1280x5120 +res", 128, 1280, 5120, 5120, 5120, 1, 1, 0},
        {"unet L3 down 128x1280x11520", 128, 1280, 11520, 11520, 11520, 1, 0, 0},
        {"unet temb 3x20160x1280", 3, 20160, 1280, 1280, 1280, 1, 0, 0},
        {"unet text kv 154x24960x768", 154, 24960, 768, 768, 768, 0, 0, 0},
        // CLIP text encoder (2 prompts of 77 tokens)
        {"clip qkv 154x2304x768", 154, 2304, 768, 768, 768, 1, 0, 0},
        {"clip out 154x768x768 +res", 154, 768, 768, 768, 768, 1, 1, 0},
        {"clip ff1 154x3072x768", 154, 3072, 768, 768, 768, 1, 0, 0},
        {"clip ff2 154x768x3072 +res", 154, 768, 3072, 3072, 3072, 1, 1, 0},
        // VAE decoder at 512x512
        {"vae qkv 4096x1536x512", 4096, 1536, 512, 512, 512, 1, 0, 0},
        {"vae out 4096x512x512 +res", 4096, 512, 512, 512, 512, 1, 1, 0},
        {"vae sc 65536x256x512", 65536, 256, 512, 512, 512, 1, 0, 0},
        {"vae sc 262144x128x256", 262144, 128, 256, 256, 256, 1, 0, 0},
        {"vae scores 4096x4096x512 f32", 4096, 4096, 512, 1536, 1536, 0, 0, 1},
        // odd sizes: ragged M, N, K; strided a
        {"odd 77x100x200 +b+res", 77, 100, 200, 200, 200, 1, 1, 0},
        {"odd 1000x72x40 lda 48", 1000, 72, 40, 48, 40, 1, 0, 0},
        {"odd 5x1000x1288 +res", 5, 1000, 1288, 1288, 1288, 0, 1, 0},
        {"odd 300x130x64 f32", 300, 130, 64, 64, 64, 0, 0, 1},
        // VAE attention's O = P . V (w = V^T, transposed into scratch by the library)
        {"vae pv 4096x512x4096", 4096, 512, 4096, 4096, 4096, 0, 0, 0},
        // GEGLU fused (N outputs of a 2N-row w): SD's feed-forward in at each level, odd sizes
        {"geglu L0 8192x1280x320", 8192, 1280, 320, 320, 320, 1, 0, 0, 1},
        {"geglu L1 2048x2560x640", 2048, 2560, 640, 640, 640, 1, 0, 0, 1},
        {"geglu L2 512x5120x1280", 512, 5120, 1280, 1280, 1280, 1, 0, 0, 1},
        {"geglu L3 128x5120x1280", 128, 5120, 1280, 1280, 1280, 1, 0, 0, 1},
        {"geglu odd 77x100x200 +res", 77, 100, 200, 200, 200, 1, 1, 0, 1},
    };
    const int ncases = sizeof cases / sizeof cases[0];
    unsigned seed = 4242u ^ (unsigned)time(0);
    cublasLtHandle_t lt; LT(cublasLtCreate(&lt));
    void *ws; const size_t ws_bytes = 32u << 20; CK(cudaMalloc(&ws, ws_bytes));
    void *flush = NULL; const size_t flush_bytes = 256u << 20;
    if (cold) CK(cudaMalloc(&flush, flush_bytes));
    int fails = 0;
    printf("\n| case | M x N x K | cuBLASLt us | ours best us (tile/split) | pick us (tile/split) | TF | best us per tile 0-6 | rel err |\n|---|---|---|---|---|---|---|---|\n");
    for (int ci = 0; ci < ncases; ++ci) {
        const Case &c = cases[ci];
        if (only) { // any of the '|'-separated parts
            bool hit = false;
            for (const char *p = only; *p;) {
                const char *e = strchr(p, '|');
                const std::string part(p, e ? (size_t)(e - p) : strlen(p));
                if (!part.empty() && strstr(c.name, part.c_str())) hit = true;
                p = e ? e + 1 : p + part.size();
            }
            if (!hit) continue;
        }
        __half *a, *w, *bias, *res, *a_copy = NULL; float *ref; void *y;
        const size_t ysz = (size_t)c.M * c.N * (c.f32 ? 4 : 2);
        const int wrows = c.geglu ? 2 * c.N : c.N;
        CK(cudaMalloc(&a, (size_t)c.M * c.lda * 2)); CK(cudaMalloc(&w, (size_t)wrows * c.ldw * 2));
        CK(cudaMalloc(&bias, (size_t)wrows * 2)); CK(cudaMalloc(&res, (size_t)c.M * c.N * 2));
        CK(cudaMalloc(&ref, (size_t)c.M * c.N * 4)); CK(cudaMalloc(&y, ysz));
        fill(a, (size_t)c.M * c.lda, seed++, 1.f);
        if (cold) {
            CK(cudaMalloc(&a_copy, (size_t)c.M * c.lda * 2));
            CK(cudaMemcpy(a_copy, a, (size_t)c.M * c.lda * 2, cudaMemcpyDeviceToDevice));
        } fill(w, (size_t)wrows * c.ldw, seed++, 1.f / sqrtf((float)c.K));
        fill(bias, wrows, seed++, 0.5f); fill(res, (size_t)c.M * c.N, seed++, 1.f);
        const float alpha = c.f32 ? 1.f / sqrtf((float)c.K) : 1.f;
        const __half *bp = c.bias ? bias : NULL, *rp = c.res ? res : NULL;
        ref_gemm<<<(unsigned)(((long long)c.M * c.N + 255) / 256), 256>>>(a, c.lda, w, c.ldw, bp, rp, ref, c.M, c.N, c.K, alpha, c.geglu);
        CK(cudaDeviceSynchronize());
        std::vector<float> href((size_t)c.M * c.N);
        CK(cudaMemcpy(href.data(), ref, href.size() * 4, cudaMemcpyDeviceToHost));
        const int KT = (c.K + 63) / 64;
        // the library's pick
        int pick_split = 1, pick_tile = 3;
        if (!c.f32) pick_tile = sdiff__cu_gemm_pick(c.M, c.N, c.K, c.geglu, n_sm, &pick_split);
        double best = 1e9, worst_rel = 0, tbest[NTL] = {}, tpick = -1; int best_v = 0, best_s = 0;
        // --cold: evict L2 (a 256 MB write), rewrite a (the layer before just wrote it), then one launch
        auto timed = [&](const std::function<void()> &launch) {
            if (!cold) return time_ms(launch, 3, 15, 10) * 1000;
            static cudaEvent_t e0, e1;
            if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
            std::vector<float> ts;
            for (int it = 0; it < 18; ++it) {
                CK(cudaMemsetAsync(flush, it, flush_bytes));
                CK(cudaMemcpyAsync(a, a_copy, (size_t)c.M * c.lda * 2, cudaMemcpyDeviceToDevice));
                CK(cudaEventRecord(e0));
                launch();
                CK(cudaEventRecord(e1));
                CK(cudaEventSynchronize(e1));
                float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
                if (it >= 3) ts.push_back(ms * 1000);
            }
            std::sort(ts.begin(), ts.end());
            return (double)ts[ts.size() / 2];
        };
        for (int v = 0; v < NTL; ++v) {
            if (!(tile_mask >> v & 1)) continue;
            alignas(64) CUtensorMap maps[2];
            void *mp[2] = {&maps[0], &maps[1]};
            if (sdiff__cu_gemm_maps(encode, mp, a, c.lda, c.M, w, c.ldw, wrows, c.K, v)) { printf("maps failed\n"); return 1; }
            for (int s = 1; s <= 8 && s <= KT; s *= 2) {
                unsigned grid[3], threads; int tiles_n, n_tiles;
                sdiff__cu_gemm_launch_dims(c.M, c.N, c.geglu, v, s, n_sm, grid, &threads, &tiles_n, &n_tiles);
                if (s > 1 && (n_tiles > 2 * n_sm || c.f32)) continue;
                long long ldy = c.N, ldr = c.N;
                const void *rr = rp;
                void *args[] = {&maps[0], &maps[1], (void *)&bp, (void *)&rr, &y, (void *)&c.M, (void *)&c.N, (void *)&KT,
                                &tiles_n, &n_tiles, &ldy, &ldr, (void *)&alpha};
                CUlaunchAttribute at;
                at.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
                at.value.clusterDim.x = s; at.value.clusterDim.y = 1; at.value.clusterDim.z = 1;
                CUlaunchConfig lc = {};
                lc.gridDimX = grid[0]; lc.gridDimY = grid[1]; lc.gridDimZ = 1;
                lc.blockDimX = threads; lc.blockDimY = lc.blockDimZ = 1;
                lc.sharedMemBytes = smem[v]; lc.attrs = &at; lc.numAttrs = s > 1 ? 1 : 0;
                auto launch = [&]() { CU(cuLaunchKernelEx(&lc, fn[v][c.geglu ? 2 : c.f32], args, NULL)); };
                CK(cudaMemset(y, 0xff, ysz));
                launch();
                CK(cudaDeviceSynchronize());
                std::vector<unsigned char> h1(ysz), h2(ysz);
                CK(cudaMemcpy(h1.data(), y, ysz, cudaMemcpyDeviceToHost));
                double rel;
                if (c.f32) {
                    double num = 0, den = 0;
                    const float *g = (const float *)h1.data();
                    for (size_t i = 0; i < href.size(); ++i) {
                        if (g[i] != g[i]) { num = NAN; break; }
                        num += (g[i] - href[i]) * (double)(g[i] - href[i]); den += (double)href[i] * href[i];
                    }
                    rel = sqrt(num / (den > 0 ? den : 1));
                } else {
                    std::vector<h16> g(href.size());
                    memcpy(g.data(), h1.data(), ysz);
                    rel = rel_err_h(g, href);
                }
                launch();
                CK(cudaDeviceSynchronize());
                CK(cudaMemcpy(h2.data(), y, ysz, cudaMemcpyDeviceToHost));
                const bool same = !memcmp(h1.data(), h2.data(), ysz);
                if (!(rel <= 1e-2) || !same) {
                    printf("FAIL %s tile %d split %d: rel %.3e%s\n", c.name, v, s, rel, same ? "" : " (not bit-identical on rerun)");
                    ++fails;
                }
                if (rel > worst_rel || rel != rel) worst_rel = rel;
                const double t = timing ? timed(launch) : 0;
                if (t < best) { best = t; best_v = v; best_s = s; }
                if (v == pick_tile && s == pick_split) tpick = t;
                if (!tbest[v] || t < tbest[v]) tbest[v] = t;
                if (cf) fprintf(cf, "%s,%d,%d,%d,%d,%d,%d,%d,%d,%.2f,%.3e\n", c.name, c.M, c.N, c.K, c.geglu, v,
                                sdiff__cu_gemm_tiles[v][0], sdiff__cu_gemm_tiles[v][1], s, t, rel);
            }
        }
        // cuBLASLt, set up as the library did (column-major: y^T = w . a^T)
        double tlt = -1;
        if (!c.f32 && !c.geglu && timing) {
            cublasLtMatmulDesc_t desc; cublasLtMatrixLayout_t la, lb, lcc;
            LT(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
            int32_t opt = CUBLAS_OP_T, opn = CUBLAS_OP_N, bt = CUDA_R_16F;
            uint32_t epi = c.bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
            LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opt, sizeof opt));
            LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opn, sizeof opn));
            LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
            if (c.bias) {
                LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
                LT(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
            }
            LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16F, c.K, c.N, c.ldw));
            LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16F, c.K, c.M, c.lda));
            LT(cublasLtMatrixLayoutCreate(&lcc, CUDA_R_16F, c.N, c.M, c.N));
            cublasLtMatmulPreference_t pref; LT(cublasLtMatmulPreferenceCreate(&pref));
            uint64_t w64 = ws_bytes;
            LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &w64, sizeof w64));
            cublasLtMatmulHeuristicResult_t hr; int nr = 0;
            cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lcc, lcc, pref, 1, &hr, &nr);
            if (nr > 0) {
                const float one = 1.f, beta = c.res ? 1.f : 0.f;
                auto launch = [&]() {
                    LT(cublasLtMatmul(lt, desc, &one, w, la, a, lb, &beta, c.res ? (void *)res : y, lcc, y, lcc, &hr.algo, ws,
                                      ws_bytes, 0));
                };
                tlt = timed(launch);
            }
            cublasLtMatmulPreferenceDestroy(pref); cublasLtMatrixLayoutDestroy(la); cublasLtMatrixLayoutDestroy(lb);
            cublasLtMatrixLayoutDestroy(lcc); cublasLtMatmulDescDestroy(desc);
        }
        const double fl = 2.0 * c.M * wrows * c.K;
        char per_tile[128] = "";
        for (int v = 0; v < NTL; ++v)
            snprintf(per_tile + strlen(per_tile), sizeof per_tile - strlen(per_tile), "%s%.1f", v ? " " : "", tbest[v]);
        printf("| %s | %dx%dx%d | %.2f | %.2f (%d/%d) | %.2f (%d/%d) | %.0f | %s | %.2e |\n", c.name, c.M, c.N, c.K, tlt,
               best, best_v, best_s, tpick, pick_tile, pick_split, best > 0 ? fl / (best * 1e-6) / 1e12 : 0, per_tile,
               worst_rel);
        fflush(stdout);
        if (cold) cudaFree(a_copy);
        cudaFree(a); cudaFree(w); cudaFree(bias); cudaFree(res); cudaFree(ref); cudaFree(y);
    }
    if (cf) fclose(cf);
    printf("\n%s (%d failing)\n", fails ? "SOME FAIL" : "ALL PASS", fails);
    return fails != 0;
}
