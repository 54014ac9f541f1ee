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
        int split[3];
        sdiff__cu_attention_sm90_launch_dims(d, 4096, 4096, 2, 8, 132, grid, block, &smem, tile, split);
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
        const int n_qt = (4096 + (int)tile[0] - 1) / (int)tile[0];
        CHECK(split[0] == n_qt && grid[1] == 1 && smem <= 227u * 1024u);
        /* the split tails: 4096 keys are 32 key tiles, too few to split (parts keep 32 or more) */
        CHECK(split[1] == n_qt * 16 && split[2] == 1 && grid[0] == (unsigned)(n_qt * 16));
        /* 16384 tokens at D = 40 (192 queries a block): 86 x 16 = 1376 tiles, the 56 past ten waves
           of 132 split in two (half a wave instead of a whole one), 128 key tiles a tile */
        const long long pf = sdiff__cu_attention_sm90_launch_dims(d, 16384, 16384, 2, 8, 132, grid, block, &smem, tile, split);
        if (tile[0] == 192)
            CHECK(split[1] == 1320 && split[2] == 2 && grid[0] == 1320 + 56 * 2 && pf == 56LL * 2 * 384 * (d / 2 + 4));
        sdiff__cu_attention_sm90_launch_dims(d, 16384, 16384, 2, 8, 0, grid, block, &smem, tile, split); /* no SM count */
        CHECK(split[2] == 1 && grid[0] == (unsigned)split[1]);
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

/* Likewise the Hopper GEMM's tiles and shared memory (sdiff__cu_gemm_tiles, _smem) for every
   variant the library builds, and the tile and split its cost model picks for SD 1.5's shapes. */
SDIFF_TEST(cuda_gemm_tma_tiles_agree) {
    if (!sdiff__cuda_load_nvrtc()) {
        printf("  skipped: no NVRTC (%s)\n", sdiff__g_cu.nvrtc_why);
        return;
    }
    const sdiff__cuda_program *P = &sdiff__cuda_programs[SDIFF__CP_GEMM_TMA];
    CHECK(P->n_variants == SDIFF__CU_GEMM_TILES + 1);
    for (int v = 0; v < P->n_variants; v++) {
        const int t = v < SDIFF__CU_GEMM_TILES ? v : 3; /* the last: fp32 out, tile 3 */
        char o[4][48];
        snprintf(o[0], sizeof o[0], v < SDIFF__CU_GEMM_TILES ? "-DGEMM_TILE=%d" : "-DOUT_F32=1", t);
        CHECK_MSG(!strcmp(P->variant_opts[v], o[0]), "variant %d is %s", v, P->variant_opts[v]);
        snprintf(o[1], sizeof o[1], "-DGEMM_EXPECT_BM=%d", sdiff__cu_gemm_tiles[t][0]);
        snprintf(o[2], sizeof o[2], "-DGEMM_EXPECT_BN=%d", sdiff__cu_gemm_tiles[t][1]);
        for (int wrong = 0; wrong < 2; wrong++) {
            snprintf(o[3], sizeof o[3], "-DGEMM_EXPECT_SMEM=%u", sdiff__cu_gemm_smem(t) + (unsigned)wrong);
            const char *opts[6] = {"--gpu-architecture=sm_90a", "--std=c++17", o[0], o[1], o[2], o[3]};
            const bool ok = tcuda_compiles(sdiff__cu_gemm_tma_src, opts, 6);
            CHECK_MSG(ok == !wrong, "variant %d: sdiff__cu_gemm_smem (%u bytes%s) %s the kernel", v,
                      sdiff__cu_gemm_smem(t) + (unsigned)wrong, wrong ? ", one too many" : "", ok ? "accepted by" : "rejected by");
        }
        CHECK(sdiff__cu_gemm_smem(t) <= (sdiff__cu_gemm_tiles[t][0] == 256 ? 227u * 1024u : 227u * 1024u / 2));
    }
    /* the pick on an H100 (132 SMs): a tile, a split of 1, 2, 4 or 8 that leaves every block K
       tiles; the big grids unsplit, the 8x8 level's long-K ones split */
    static const long long shapes[][4] = {{8192, 320, 320, 0}, {8192, 1280, 320, 1}, {2048, 640, 2560, 0},
                                          {512, 5120, 1280, 1}, {128, 1280, 5120, 0}, {128, 1280, 11520, 0},
                                          {3, 20160, 1280, 0}, {77, 100, 200, 0}, {262144, 128, 256, 0}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int split = 0;
        const long long m = shapes[i][0], n = shapes[i][1], k = shapes[i][2];
        const int t = sdiff__cu_gemm_pick(m, n, k, (int)shapes[i][3], 132, 8, &split);
        CHECK_MSG(t >= 0 && t < SDIFF__CU_GEMM_TILES && (split == 1 || split == 2 || split == 4 || split == 8) &&
                      split <= (k + 63) / 64,
                  "%lldx%lldx%lld: tile %d split %d", m, n, k, t, split);
        if (m >= 2048) CHECK_MSG(split == 1, "%lldx%lldx%lld: split %d", m, n, k, split);
        if (m == 128 && k >= 5120) CHECK_MSG(split > 1, "%lldx%lldx%lld: not split", m, n, k);
        sdiff__cu_gemm_pick(m, n, k, (int)shapes[i][3], 132, 1, &split); /* no clusters: never split */
        CHECK_MSG(split == 1, "%lldx%lldx%lld: split %d with max_split 1", m, n, k, split);
    }
}

/* The library launches every kernel with programmatic dependent launch on Hopper, which is only
   correct if the kernel waits for its predecessor before touching memory it may write: each
   __global__ function's body opens with pdl_begin(), or (the TMA kernels, whose prologue overlaps
   the previous kernel's tail: barrier setup, descriptor and weight prefetches into L2, which can
   never read stale data; the norms, which read their parameters gamma and beta first) reaches it
   before any other load or store of global memory. Kernels that open with a call of a shared body
   (the GEMM's gemm_body, the norms' gn_regs and ln_vec) have that body checked instead. */
SDIFF_TEST(cuda_kernels_begin_with_pdl) {
    static const char *const before_wait_banned[] = {"tma_load", "cp_async", ".global", "__ldg", "atomic", "bias[",
                                                     "res[", "ldmatrix", "ld.", "st.", "gn_load", "gnr_ld", "gnr_st",
                                                     "xr[", "xb[", "yr[", "yb["};
    static const char *const bodies[][2] = {{"gemm_body<", "void gemm_body("}, {"gn_regs<", "void gn_regs("},
                                            {"ln_vec<", "void ln_vec("}};
    int kernels = 0, with_prologue = 0;
    for (int p = 0; p < SDIFF__CP_COUNT; p++) {
        const char *src = sdiff__cuda_programs[p].src;
        for (const char *g = strstr(src, "__global__"); g; g = strstr(g + 1, "__global__")) {
            const char *body = strchr(g, '{');
            CHECK_MSG(body != NULL, "%s: a kernel without a body", sdiff__cuda_programs[p].name);
            if (!body) break;
            body++;
            while (*body == ' ' || *body == '\n') body++;
            kernels++;
            if (!strncmp(body, "pdl_begin();", 12)) continue;
            bool missing = false;
            for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++)
                if (!strncmp(body, bodies[b][0], strlen(bodies[b][0]))) {
                    const char *def = strstr(src, bodies[b][1]);
                    body = def ? strchr(def, '{') : NULL;
                    CHECK_MSG(body != NULL, "%s: %s not found", sdiff__cuda_programs[p].name, bodies[b][1]);
                    missing = !body;
                    break;
                }
            if (missing) continue;
            const char *wait = strstr(body, "pdl_begin();"), *next = strstr(body, "__global__");
            CHECK_MSG(wait != NULL && (!next || wait < next), "%s: kernel at \"%.60s\" never calls pdl_begin()",
                      sdiff__cuda_programs[p].name, g);
            if (!wait || (next && wait > next)) continue;
            for (size_t b = 0; b < sizeof before_wait_banned / sizeof before_wait_banned[0]; b++) {
                const char *hit = strstr(body, before_wait_banned[b]);
                CHECK_MSG(!hit || hit > wait, "%s: kernel at \"%.60s\" has \"%s\" before pdl_begin()",
                          sdiff__cuda_programs[p].name, g, before_wait_banned[b]);
            }
            with_prologue++;
        }
    }
    CHECK(with_prologue >= 4); /* attention, convolution, the GEMM's two */
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
