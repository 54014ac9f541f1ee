/* test_cuda.c - the CUDA backend without a GPU (CI): every kernel source
   compiles with NVRTC for sm_80 and sm_90a, every kernel opens with
   pdl_begin(), and a machine without a GPU falls back to the CPU (AUTO) or
   reports why (CUDA). */

SDIFF_TEST(cuda_kernels_compile) {
    if (!sdiff__cuda_load_nvrtc()) {
        printf("  skipped: no NVRTC (%s)\n", sdiff__g_cu.nvrtc_why);
        return;
    }
    const char *archs[] = {"sm_80", "sm_90a"};
    for (int i = 0; i < 2; i++) {
        sdiff_status st = sdiff__cuda_compile_all(archs[i]);
        CHECK_MSG(st == SDIFF_OK, "%s: %s", archs[i], sdiff_last_error());
    }
}

/* The TMA attention kernel's tiles are #defines in its source and again in the host's launch helper;
   a disagreement would not fail a launch but hang it (the mbarriers would wait for bytes that never
   come). Each variant is compiled with the helper's numbers as -DATT_EXPECT_*, which the kernel
   static_asserts; and once with a wrong one, which must not compile. */
static bool tcuda_compiles(const char *src, const char *const *opts, int n) {
    sdiff__cuda_libs *L = &sdiff__g_cu;
    nvrtcProgram pr = NULL;
    const char *hdr_src[1] = {sdiff__cu_mma_src}, *hdr_name[1] = {"mma.cuh"};
    if (L->nvrtcCreateProgram(&pr, src, "tma_tiles_check", 1, hdr_src, hdr_name) != 0) return false;
    const bool ok = L->nvrtcCompileProgram(pr, n, opts) == 0;
    L->nvrtcDestroyProgram(&pr);
    return ok;
}
SDIFF_TEST(cuda_attention_tma_tiles_agree) {
    if (!sdiff__cuda_load_nvrtc()) {
        printf("  skipped: no NVRTC (%s)\n", sdiff__g_cu.nvrtc_why);
        return;
    }
    for (int i = 0; i < SDIFF__CUDA_TMA_VARIANTS; i++) {
        const int d = sdiff__cuda_tma_dims[i];
        unsigned grid[3], block[3], smem, tile[2];
        sdiff__cu_attention_sm90_launch_dims(d, 4096, 2, 8, grid, block, &smem, tile);
        for (int wrong = 0; wrong < 2; wrong++) {
            char o[5][48];
            snprintf(o[0], sizeof o[0], "-DHEAD_DIM=%d", d);
            snprintf(o[1], sizeof o[1], "-DATT_EXPECT_BM=%u", tile[0]);
            snprintf(o[2], sizeof o[2], "-DATT_EXPECT_BN=%u", tile[1]);
            snprintf(o[3], sizeof o[3], "-DATT_EXPECT_NT=%u", block[0]);
            snprintf(o[4], sizeof o[4], "-DATT_EXPECT_SMEM=%u", smem + (unsigned)wrong);
            const char *opts[7] = {"--gpu-architecture=sm_90a", "--std=c++17", o[0], o[1], o[2], o[3], o[4]};
            const bool ok = tcuda_compiles(sdiff__cu_attention_sm90_src, opts, 7);
            CHECK_MSG(ok == !wrong, "D = %d: launch helper (BM %u, BN %u, %u threads, %u bytes%s) %s the kernel", d,
                      tile[0], tile[1], block[0], smem + (unsigned)wrong, wrong ? ", one too many" : "",
                      ok ? "accepted by" : "rejected by");
        }
        CHECK(grid[0] == (4096 + tile[0] - 1) / tile[0] && grid[1] == 16 && smem <= 227u * 1024u);
    }
}

/* Likewise the TMA convolution's tiles and shared memory (its pipeline depth is computed in the
   kernel and again in sdiff__cu_conv2d_tma_launch_dims: a disagreement would put its mbarriers
   outside the block's memory), for every variant the library builds (-DCONV_TILE=t). */
SDIFF_TEST(cuda_conv_tma_tiles_agree) {
    if (!sdiff__cuda_load_nvrtc()) {
        printf("  skipped: no NVRTC (%s)\n", sdiff__g_cu.nvrtc_why);
        return;
    }
    const sdiff__cuda_program *P = &sdiff__cuda_programs[SDIFF__CP_CONV_TMA];
    CHECK(P->n_variants == (int)(sizeof sdiff__cu_conv2d_tma_tiles / sizeof *sdiff__cu_conv2d_tma_tiles));
    for (int t = 0; t < P->n_variants; t++) {
        const int bm = sdiff__cu_conv2d_tma_tiles[t][0], bn = sdiff__cu_conv2d_tma_tiles[t][1];
        char o[4][48];
        snprintf(o[0], sizeof o[0], "-DCONV_TILE=%d", t);
        CHECK_MSG(!strcmp(P->variant_opts[t], o[0]), "variant %d is %s", t, P->variant_opts[t]);
        unsigned grid[3], block[3], smem;
        sdiff__cu_conv2d_tma_launch_dims(t, 2, 8192, 320, grid, block, &smem);
        snprintf(o[1], sizeof o[1], "-DCONV_EXPECT_BM=%d", bm);
        snprintf(o[2], sizeof o[2], "-DCONV_EXPECT_BN=%d", bn);
        for (int wrong = 0; wrong < 2; wrong++) {
            snprintf(o[3], sizeof o[3], "-DCONV_EXPECT_SMEM=%u", smem + (unsigned)wrong);
            const char *opts[6] = {"--gpu-architecture=sm_90a", "--std=c++17", o[0], o[1], o[2], o[3]};
            const bool ok = tcuda_compiles(sdiff__cu_conv2d_tma_src, opts, 6);
            CHECK_MSG(ok == !wrong, "tile %d (%d x %d): launch helper (%u bytes%s) %s the kernel", t, bm, bn,
                      smem + (unsigned)wrong, wrong ? ", one too many" : "", ok ? "accepted by" : "rejected by");
        }
        CHECK(grid[0] == 2 && grid[1] == (unsigned)(8192 / bm) && grid[2] == (unsigned)((320 + bn - 1) / bn) &&
              block[0] == 384 && smem <= 227u * 1024u);
    }
}

/* The library launches every kernel with programmatic dependent launch on Hopper, which is only
   correct if the kernel waits for its predecessor before touching memory: each __global__
   function's body must open with pdl_begin(). */
SDIFF_TEST(cuda_kernels_begin_with_pdl) {
    int kernels = 0;
    for (int p = 0; p < SDIFF__CP_COUNT; p++) {
        const char *src = sdiff__cuda_programs[p].src;
        for (const char *g = strstr(src, "__global__"); g; g = strstr(g + 1, "__global__")) {
            const char *body = strchr(g, '{');
            CHECK_MSG(body != NULL, "%s: a kernel without a body", sdiff__cuda_programs[p].name);
            if (!body) break;
            body++;
            while (*body == ' ' || *body == '\n') body++;
            CHECK_MSG(!strncmp(body, "pdl_begin();", 12), "%s: kernel at \"%.60s\" does not start with pdl_begin()",
                      sdiff__cuda_programs[p].name, g);
            kernels++;
        }
    }
    CHECK(kernels >= 20);
    CHECK(strstr(sdiff__cuda_src_prelude, "#include \"mma.cuh\"") != NULL);
    const char *wait = strstr(sdiff__cu_mma_src, "griddepcontrol.wait"),
               *release = strstr(sdiff__cu_mma_src, "griddepcontrol.launch_dependents");
    CHECK(wait != NULL && release != NULL && wait < release); /* wait first: see pdl_begin in mma.cuh */
}

typedef struct cuda_test_log { int n_fallback; char last[512]; } cuda_test_log;
static void cuda_test_log_fn(sdiff_log_level level, const char *tag, const char *message, void *user) {
    cuda_test_log *lg = (cuda_test_log *)user;
    (void)level;
    if (!strcmp(tag, "cuda") && strstr(message, "running on the CPU")) lg->n_fallback++;
    snprintf(lg->last, sizeof lg->last, "[%s] %s", tag, message);
}

SDIFF_TEST(cuda_fallback_without_gpu) {
    /* only meaningful where no GPU can be used (CI) */
    sdiff__logger quiet = {SDIFF_LOG_ERROR, NULL, NULL};
    sdiff__backend *probe = sdiff__g_cuda_backend_create ? sdiff__g_cuda_backend_create(0, &quiet) : NULL;
    CHECK(sdiff__g_cuda_backend_create != NULL);
    if (probe) {
        printf("  skipped: a GPU is usable here\n");
        probe->destroy(probe);
        return;
    }
    cuda_test_log lg;
    memset(&lg, 0, sizeof lg);
    sdiff_ctx_params p = sdiff_ctx_default_params();
    p.log_fn = cuda_test_log_fn;
    p.log_user = &lg;
    sdiff_ctx *ctx = NULL;
    CHECK(sdiff_ctx_create(&p, &ctx) == SDIFF_OK);
    CHECK(ctx && !strcmp(sdiff_ctx_backend_name(ctx), "cpu"));
    CHECK_MSG(lg.n_fallback == 1, "fallback lines: %d", lg.n_fallback);
    sdiff_ctx_free(ctx);

    p.backend = SDIFF_BACKEND_CUDA;
    ctx = NULL;
    sdiff_status st = sdiff_ctx_create(&p, &ctx);
    CHECK(st == SDIFF_ERR_BACKEND || st == SDIFF_ERR_INVALID_ARG || st == SDIFF_ERR_UNSUPPORTED);
    CHECK(ctx == NULL);
    CHECK_MSG(sdiff_last_error()[0] != 0, "no message");
    if (getenv("TEST_VERBOSE")) printf("    CUDA backend: %s\n", sdiff_last_error());
}
