/* compile_check.c - compiles the sdiff attention kernel string (build/attn_kernel.h, written by
   tools/attn/gen_attn_header.py from attn_kernel.cu) with NVRTC, no
   include paths, for every HEAD_DIM / CAUSAL variant and target arch, and prints ptxas's
   register / spill report (NVRTC --ptxas-options=-v puts it in the program log). No GPU needed.
   Build and run:
     python3 tools/attn/gen_attn_header.py
     cc -std=c11 -O1 -Ibuild -I/usr/local/cuda/include tools/attn/compile_check.c -o /tmp/attn_cc \
        -L/usr/local/cuda/lib64 -lnvrtc && /tmp/attn_cc
   Exit status 1 if any variant fails to compile or spills. */
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "attn_kernel.h"

int main(void) {
    static const char *archs[] = {"sm_80", "sm_86", "sm_89", "sm_90a"};
    static const int dims[] = {40, 64, 72, 80, 128, 160};
    int bad = 0;
    for (size_t a = 0; a < sizeof archs / sizeof *archs; ++a)
        for (size_t d = 0; d < sizeof dims / sizeof *dims; ++d)
            for (int c = 0; c < 2; ++c) {
                char o_arch[64], o_hd[32], o_c[32];
                const char *opts[4];
                nvrtcProgram p;
                nvrtcResult r;
                size_t ls, cub = 0;
                char *log, *line;
                int regs = -1, spill_st = -1, spill_ld = -1, stack = -1;
                unsigned grid[3], block[3], smem;
                snprintf(o_arch, sizeof o_arch, "--gpu-architecture=%s", archs[a]);
                snprintf(o_hd, sizeof o_hd, "-DHEAD_DIM=%d", dims[d]);
                snprintf(o_c, sizeof o_c, "-DCAUSAL=%d", c);
                opts[0] = o_arch; opts[1] = o_hd; opts[2] = o_c; opts[3] = "--ptxas-options=-v";
                if (nvrtcCreateProgram(&p, sdiff__cu_attention_src, "sdiff_attention.cu", 0, 0, 0) != NVRTC_SUCCESS) return 2;
                r = nvrtcCompileProgram(p, 4, opts);
                nvrtcGetProgramLogSize(p, &ls);
                log = (char *)calloc(ls + 1, 1);
                nvrtcGetProgramLog(p, log);
                if (r == NVRTC_SUCCESS) nvrtcGetCUBINSize(p, &cub);
                for (line = log; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : 0) {
                    const char *u = strstr(line, "Used ");
                    const char *s = strstr(line, "bytes stack frame");
                    if (u && u < strchr(line, '\n')) sscanf(u, "Used %d registers", &regs);
                    if (s && s < strchr(line, '\n')) {
                        const char *q = s;
                        while (q > line && q[-1] != '.') --q; /* "ptxas         .     0 bytes stack frame, ..." */
                        sscanf(q, " %d bytes stack frame, %d bytes spill stores, %d bytes spill loads", &stack, &spill_st,
                               &spill_ld);
                    }
                }
                sdiff__cu_attention_launch_dims(dims[d], 4096, 2, 8, grid, block, &smem);
                printf("%-6s HEAD_DIM=%-3d CAUSAL=%d  %s  regs=%3d stack=%d spill_st=%d spill_ld=%d cubin=%zuB  "
                       "launch: grid(%u,%u) block %u smem %u\n",
                       archs[a], dims[d], c, r == NVRTC_SUCCESS ? "ok  " : "FAIL", regs, stack, spill_st, spill_ld, cub,
                       grid[0], grid[1], block[0], smem);
                if (r != NVRTC_SUCCESS) printf("%s\n", log);
                if (r != NVRTC_SUCCESS || spill_st != 0 || spill_ld != 0 || stack != 0) bad = 1;
                free(log);
                nvrtcDestroyProgram(&p);
            }
    printf("%s\n", bad ? "SOME VARIANTS FAILED OR SPILL" : "all variants compile, 0 spills");
    return bad;
}
