// bench_common.cuh - what the stand-alone kernel benches (bench_attn.cu, bench_conv.cu) share:
// error-checking macros, fp16 decoding, random fills, NVRTC compilation of a kernel string for
// the device's own arch (as the library does), event timing and the relative error.
#pragma once
#include <cuda.h>
#include <cuda_runtime.h>
#include <nvrtc.h>
#include <cuda_fp16.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <vector>
#include <algorithm>
#include <string>
#include <functional>
#include "mma_kernel.h"

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, cudaGetErrorString(e_)); exit(1); } } while (0)
#define CU(x) do { CUresult e_ = (x); if (e_ != CUDA_SUCCESS) { const char *s_ = 0; cuGetErrorString(e_, &s_); fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, s_ ? s_ : "?"); exit(1); } } while (0)
#define NV(x) do { nvrtcResult e_ = (x); if (e_ != NVRTC_SUCCESS) { fprintf(stderr, "%s:%d %s: %s\n", __FILE__, __LINE__, #x, nvrtcGetErrorString(e_)); exit(1); } } while (0)

typedef unsigned short h16;

static float h2f(h16 h) {
    unsigned s = (h >> 15) & 1, e = (h >> 10) & 31, m = h & 1023;
    float f;
    if (e == 0) f = ldexpf((float)m, -24);
    else if (e == 31) f = m ? NAN : INFINITY;
    else f = ldexpf((float)(m | 1024), (int)e - 25);
    return s ? -f : f;
}

// Random fp16 in [-amp, amp] from a hash (fresh seed per case).
__global__ void fill_rand(__half *p, size_t n, unsigned seed, float amp) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned x = (unsigned)i * 2654435761u ^ seed;
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
    float f = ((x >> 8) * (1.0f / 16777216.0f) * 2.f - 1.f) * amp;
    p[i] = __float2half_rn(f);
}
static void fill(__half *p, size_t n, unsigned seed, float amp) {
    fill_rand<<<(unsigned)((n + 255) / 256), 256>>>(p, n, seed, amp);
    CK(cudaGetLastError());
}

// The device's arch as the library names it (sm_90a on Hopper).
static std::string device_arch() {
    CK(cudaFree(0));
    int dev; CK(cudaGetDevice(&dev));
    cudaDeviceProp prop; CK(cudaGetDeviceProperties(&prop, dev));
    char a[32];
    snprintf(a, sizeof a, "sm_%d%d%s", prop.major, prop.minor, prop.major == 9 ? "a" : "");
    printf("device: %s (%s, %d SMs)\n", prop.name, a, prop.multiProcessorCount);
    return a;
}

// Compiles src with NVRTC for arch and the given options, mma.cuh as an in-memory header (as the
// library does); loads it. Prints the log when there is one.
static CUmodule nvrtc_module(const char *src, const char *name, const std::string &arch, const std::vector<std::string> &defs) {
    std::string ao = "--gpu-architecture=" + arch;
    std::vector<const char *> opts = {ao.c_str(), "--std=c++17"};
    for (auto &d : defs) opts.push_back(d.c_str());
    nvrtcProgram prog;
    const char *hdr_src[1] = {sdiff__cu_mma_src}, *hdr_name[1] = {"mma.cuh"};
    NV(nvrtcCreateProgram(&prog, src, name, 1, hdr_src, hdr_name));
    nvrtcResult r = nvrtcCompileProgram(prog, (int)opts.size(), opts.data());
    size_t ls; nvrtcGetProgramLogSize(prog, &ls);
    if (r != NVRTC_SUCCESS || ls > 1) {
        std::string log(ls, 0); nvrtcGetProgramLog(prog, &log[0]);
        fprintf(stderr, "NVRTC log (%s", name);
        for (auto &d : defs) fprintf(stderr, " %s", d.c_str());
        fprintf(stderr, "):\n%s\n", log.c_str());
    }
    NV(r);
    size_t n; NV(nvrtcGetCUBINSize(prog, &n));
    std::vector<char> cubin(n); NV(nvrtcGetCUBIN(prog, cubin.data()));
    nvrtcDestroyProgram(&prog);
    CUmodule m;
    CU(cuModuleLoadData(&m, cubin.data()));
    return m;
}

// Median milliseconds of `iters` timed runs after `warm` untimed ones.
// reps > 1: each sample is the mean of reps back-to-back launches, whose launch latency then hides
// behind the previous kernel as in a CUDA graph replay (reps = 1 includes it).
static double time_ms(const std::function<void()> &launch, int warm = 5, int iters = 20, int reps = 1) {
    static cudaEvent_t e0, e1;
    if (!e0) { CK(cudaEventCreate(&e0)); CK(cudaEventCreate(&e1)); }
    for (int w = 0; w < warm; ++w) launch();
    std::vector<float> ts;
    for (int it = 0; it < iters; ++it) {
        CK(cudaEventRecord(e0));
        for (int r = 0; r < reps; ++r) launch();
        CK(cudaEventRecord(e1));
        CK(cudaEventSynchronize(e1));
        float ms; CK(cudaEventElapsedTime(&ms, e0, e1));
        ts.push_back(ms / reps);
    }
    CK(cudaGetLastError());
    std::sort(ts.begin(), ts.end());
    return ts[ts.size() / 2];
}

// ||got - ref|| / ||ref|| over n values (got fp16 on the host, ref fp32); NaN if either has a NaN.
static double rel_err_h(const std::vector<h16> &got, const std::vector<float> &ref) {
    double num = 0, den = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        float a = h2f(got[i]);
        if (a != a || ref[i] != ref[i]) return NAN;
        double d = (double)a - ref[i];
        num += d * d; den += (double)ref[i] * ref[i];
    }
    return sqrt(num / (den > 0 ? den : 1));
}
