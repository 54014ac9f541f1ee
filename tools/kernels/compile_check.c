/* compile_check.c - compiles sdiff's tensor-core kernel strings (build/attn_kernel.h,
   build/attn_kernel_sm90.h, build/conv_kernel.h, build/conv_kernel_sm90.h and
   build/gemm_kernel_sm90.h, written by
   tools/kernels/gen_kernels.py) with NVRTC (mma.cuh as an in-memory
   header, as the library passes it), for
   every variant the library builds (and the attention head dims it may build later) and every
   target arch, and prints ptxas's register / spill report (NVRTC --ptxas-options=-v puts it in the
   program log). No GPU needed. Build and run:
     python3 tools/kernels/gen_kernels.py
     cc -std=c11 -O1 -Ibuild -I/usr/local/cuda/include tools/kernels/compile_check.c -o build/kernels_cc \
        -L/usr/local/cuda/lib64 -lnvrtc && build/kernels_cc
   Exit status 1 if any variant fails to compile, warns (ptxas's notes on serialised wgmma included),
   spills or uses a stack frame. */
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attn_kernel.h"
#include "attn_kernel_sm90.h"
#include "conv_kernel.h"
#include "conv_kernel_sm90.h"
#include "gemm_kernel_sm90.h"

/* Compiles src with the given -D options for arch; prints one report line. 0: clean. */
static int check(const char *src, const char *name, const char *arch, const char *d1, const char *d2,
                 const char *launch) {
    char o_arch[64];
    const char *opts[5];
    int n = 0, regs = -1, spill_st = -1, spill_ld = -1, stack = -1;
    nvrtcProgram p;
    size_t ls, cub = 0;
    char *log, *line;
    snprintf(o_arch, sizeof o_arch, "--gpu-architecture=%s", arch);
    opts[n++] = o_arch;
    opts[n++] = "--std=c++17";
    opts[n++] = "--ptxas-options=-v";
    if (d1) opts[n++] = d1;
    if (d2) opts[n++] = d2;
    const char *hdr_src[1] = {sdiff__cu_mma_src}, *hdr_name[1] = {"mma.cuh"};
    if (nvrtcCreateProgram(&p, src, name, 1, hdr_src, hdr_name) != NVRTC_SUCCESS) return 1;
    nvrtcResult r = nvrtcCompileProgram(p, n, opts);
    nvrtcGetProgramLogSize(p, &ls);
    log = (char *)calloc(ls + 1, 1);
    nvrtcGetProgramLog(p, log);
    if (r == NVRTC_SUCCESS) nvrtcGetCUBINSize(p, &cub);
    for (line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : 0) {
        const char *u = strstr(line, "Used "), *s = strstr(line, "bytes stack frame"), *nl = strchr(line, '\n');
        if (u && (!nl || u < nl)) sscanf(u, "Used %d registers", &regs);
        if (s && (!nl || s < nl)) {
            const char *q = s;
            while (q > line && q[-1] != '.') --q; /* "ptxas         .     0 bytes stack frame, ..." */
            sscanf(q, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &stack, &spill_st, &spill_ld);
        }
    }
    printf("%-6s %-16s %-13s %s  regs=%3d stack=%d spill_st=%d spill_ld=%d cubin=%zuB  %s\n", arch, d1 ? d1 : "",
           d2 ? d2 : "", r == NVRTC_SUCCESS ? "ok  " : "FAIL", regs, stack, spill_st, spill_ld, cub, launch);
    /* ptxas's wgmma notes ("Potential Performance Loss: wgmma.mma_async instructions are
       serialized ...", "warpgroup.arrive/wait is injected ...") mean the kernel lost its overlap */
    const int warned = strstr(log, "warning") != NULL || strstr(log, "Performance Loss") != NULL ||
                       strstr(log, "is injected") != NULL;
    if (r != NVRTC_SUCCESS || warned) printf("%s\n", log);
    free(log);
    nvrtcDestroyProgram(&p);
    return r != NVRTC_SUCCESS || warned || spill_st != 0 || spill_ld != 0 || stack != 0;
}

int main(void) {
    static const char *archs[] = {"sm_80", "sm_86", "sm_89", "sm_90a"};
    static const int dims[] = {40, 64, 72, 80, 128, 160};
    int bad = 0;
    for (size_t a = 0; a < sizeof archs / sizeof *archs; ++a) {
        for (size_t d = 0; d < sizeof dims / sizeof *dims; ++d)
            for (int c = 0; c < 2; ++c) {
                char o_hd[32], o_c[32], launch[128];
                unsigned grid[3], block[3], smem;
                snprintf(o_hd, sizeof o_hd, "-DHEAD_DIM=%d", dims[d]);
                snprintf(o_c, sizeof o_c, "-DCAUSAL=%d", c);
                sdiff__cu_attention_launch_dims(dims[d], 4096, 2, 8, grid, block, &smem);
                snprintf(launch, sizeof launch, "launch: grid(%u,%u) block %u smem %u", grid[0], grid[1], block[0], smem);
                bad |= check(sdiff__cu_attention_src, "sdiff_attention.cu", archs[a], o_hd, o_c, launch);
                /* the TMA kernel: sm_90a, non-causal, D = 40, 64, 72, 80 */
                if (strcmp(archs[a], "sm_90a") || c || dims[d] > 80) continue;
                unsigned tile[2];
                int split[3];
                sdiff__cu_attention_sm90_launch_dims(dims[d], 4096, 4096, 2, 8, 132, grid, block, &smem, tile, split);
                snprintf(launch, sizeof launch, "TMA launch: grid(%u,%u) block %u smem %u", grid[0], grid[1], block[0], smem);
                bad |= check(sdiff__cu_attention_sm90_src, "sdiff_attention_sm90.cu", archs[a], o_hd, NULL, launch);
                bad |= check(sdiff__cu_attention_sm90_src, "sdiff_attention_sm90.cu", archs[a], o_hd, "-DATT_SPLIT=1",
                             "(split tails)");
            }
        for (int t = 0; t < 6; ++t) {
            char o_t[32], launch[128];
            if (t >= 3 && strcmp(archs[a], "sm_90a")) continue; /* wgmma tiles: sm_90a only */
            unsigned grid[3], block[3], smem;
            snprintf(o_t, sizeof o_t, "-DCONV_TILE=%d", t);
            sdiff__cu_conv2d_launch_dims(t, 8192, 320, grid, block, &smem);
            snprintf(launch, sizeof launch, "launch (M 8192, Co 320): grid(%u,%u) block %u smem %u", grid[0], grid[1],
                     block[0], smem);
            bad |= check(sdiff__cu_conv2d_src, "sdiff_conv2d.cu", archs[a], o_t, NULL, launch);
            if (t < 3) bad |= check(sdiff__cu_conv2d_src, "sdiff_conv2d.cu", archs[a], o_t, "-DCONV_BK=32", "(K tiles of 32)");
        }
        /* the TMA convolution: sm_90a only, every tile it builds */
        for (int t = 0; !strcmp(archs[a], "sm_90a") && t < 5; ++t) {
            char o_t[32], launch[128];
            unsigned grid[3], block[3], smem;
            snprintf(o_t, sizeof o_t, "-DCONV_TILE=%d", t);
            sdiff__cu_conv2d_tma_launch_dims(t, 1, 8192, 320, grid, block, &smem);
            snprintf(launch, sizeof launch, "TMA %dx%d (M 8192, Co 320): grid(%u,%u) block %u smem %u",
                     sdiff__cu_conv2d_tma_tiles[t][0], sdiff__cu_conv2d_tma_tiles[t][1], grid[1], grid[2], block[0], smem);
            bad |= check(sdiff__cu_conv2d_tma_src, "sdiff_conv2d_tma.cu", archs[a], o_t, NULL, launch);
        }
        /* the GEMM: sm_90a only, every tile, fp16 and fp32 output */
        for (int t = 0; !strcmp(archs[a], "sm_90a") && t < SDIFF__CU_GEMM_TILES; ++t)
            for (int f = 0; f < 2; ++f) {
                char o_t[32], o_f[32], launch[128];
                unsigned grid[3], threads;
                int tiles_n, n_tiles;
                snprintf(o_t, sizeof o_t, "-DGEMM_TILE=%d", t);
                snprintf(o_f, sizeof o_f, "-DOUT_F32=%d", f);
                sdiff__cu_gemm_launch_dims(8192, 2560, 0, t, 1, 132, grid, &threads, &tiles_n, &n_tiles);
                snprintf(launch, sizeof launch, "GEMM %dx%d (8192 x 2560, 132 SMs): grid %u block %u smem %u",
                         sdiff__cu_gemm_tiles[t][0], sdiff__cu_gemm_tiles[t][1], grid[0], threads, sdiff__cu_gemm_smem(t));
                bad |= check(sdiff__cu_gemm_tma_src, "sdiff_gemm_tma.cu", archs[a], o_t, o_f, launch);
            }
    }
    printf("%s\n", bad ? "SOME VARIANTS FAILED OR SPILL" : "all variants compile, 0 spills");
    return bad;
}
