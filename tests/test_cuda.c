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
