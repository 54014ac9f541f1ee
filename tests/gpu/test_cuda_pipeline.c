/* test_cuda_pipeline.c - whole generations on the CUDA backend against the
   CPU backend (the last link of the chain of trust for the sampling loop,
   whose scheduler steps, CFG and scale_model_input run as lincomb ops next
   to the latents): the tiny model of tests/fixtures with every sampler, a
   batch of two, img2img, and a cancel from the progress callback. The CPU
   side matches diffusers (tests/test_pipeline.c); the GPU computes in fp16,
   so the images differ by fp16 rounding: pass at a mean absolute difference
   <= 0.5/255 and a maximum <= 4/255 (H100: means 0.04-0.08/255, maximum
   1/255). Both sides draw fp32 noise (SDIFF_NOISE_AUTO would draw fp16
   noise on the GPU, other numbers: a 42/255 difference after one step).
   One line per case: mean and max difference in 1/255. */

typedef struct gp_env { sdiff_ctx *ctx[2]; sdiff_model *model[2]; } gp_env; /* [0] CPU, [1] CUDA */
static gp_env g_gp;

static bool gp_setup(void) {
    if (g_gp.model[1]) return true;
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-sd", g_fixtures);
    for (int i = 0; i < 2; i++) {
        sdiff_ctx_params cp = sdiff_ctx_default_params();
        cp.backend = i ? SDIFF_BACKEND_CUDA : SDIFF_BACKEND_CPU;
        cp.log_level = SDIFF_LOG_WARN;
        if (sdiff_ctx_create(&cp, &g_gp.ctx[i]) != SDIFF_OK || sdiff_model_load(g_gp.ctx[i], path, NULL, &g_gp.model[i]) != SDIFF_OK) {
            printf("  %s: %s\n", i ? "CUDA" : "CPU", sdiff_last_error());
            return false;
        }
    }
    return true;
}

static sdiff_gen_params gp_params(int backend, sdiff_sampler sampler) {
    sdiff_gen_params p = sdiff_gen_default_params(g_gp.model[backend]);
    p.prompt = "a red cube on a wooden table";
    p.negative_prompt = "blurry";
    p.steps = 12;
    p.cfg_scale = 7.5f;
    p.seed = 1234;
    p.sampler = sampler;
    p.noise = SDIFF_NOISE_FP32;   /* the same noise on both backends */
    return p;
}

/* Generates with `p` on both backends and compares the images. */
static void gp_compare(const char *what, sdiff_gen_params p) {
    sdiff_image img[2][2];
    memset(img, 0, sizeof img);
    sdiff_status st[2];
    for (int i = 0; i < 2; i++) st[i] = sdiff_generate(g_gp.model[i], &p, img[i]);
    double sum = 0, worst = 0;
    size_t count = 0;
    bool ok = st[0] == SDIFF_OK && st[1] == SDIFF_OK;
    for (int b = 0; ok && b < (p.batch ? p.batch : 1); b++) {
        size_t n = (size_t)img[0][b].width * img[0][b].height * 3;
        ok = img[1][b].width == img[0][b].width && img[1][b].height == img[0][b].height;
        for (size_t k = 0; ok && k < n; k++) {
            double d = fabs((double)img[0][b].data[k] - (double)img[1][b].data[k]);
            sum += d;
            if (d > worst) worst = d;
            count++;
        }
    }
    double mean = count ? sum / (double)count : INFINITY;
    ok = ok && mean <= 0.5 && worst <= 4.0;
    printf("  %-28s mean %6.3f/255  max %5.1f/255  %s\n", what, mean, worst, ok ? "ok" : "FAIL");
    if (!ok) {
        g_test_failed++;
        if (st[0] != SDIFF_OK || st[1] != SDIFF_OK) printf("      %s\n", sdiff_last_error());
    }
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 2; b++) sdiff_image_free(&img[i][b]);
}

SDIFF_TEST(cuda_txt2img_every_sampler) {
    if (!gp_setup()) { g_test_failed++; return; }
    static const sdiff_sampler samplers[] = {SDIFF_SAMPLER_PNDM, SDIFF_SAMPLER_DDIM, SDIFF_SAMPLER_EULER,
                                             SDIFF_SAMPLER_EULER_A, SDIFF_SAMPLER_DPMPP_2M,
                                             SDIFF_SAMPLER_DPMPP_2M_KARRAS, SDIFF_SAMPLER_DDPM};
    for (size_t s = 0; s < sizeof samplers / sizeof samplers[0]; s++)
        gp_compare(sdiff_sampler_name(samplers[s]), gp_params(1, samplers[s]));
    sdiff_gen_params p = gp_params(1, SDIFF_SAMPLER_DDIM);
    p.eta = 0.7f;                                                   /* noise at every step */
    gp_compare("ddim eta 0.7", p);
    p = gp_params(1, SDIFF_SAMPLER_EULER_A);
    p.batch = 2;
    gp_compare("euler_a batch 2", p);
    p = gp_params(1, SDIFF_SAMPLER_PNDM);
    p.cfg_scale = 1.0f;                                             /* no CFG: one UNet half */
    gp_compare("pndm without cfg", p);
}

SDIFF_TEST(cuda_img2img) {
    if (!gp_setup()) { g_test_failed++; return; }
    sdiff_gen_params p = gp_params(1, SDIFF_SAMPLER_EULER_A);
    sdiff_image init = {p.width, p.height, 3, (uint8_t *)malloc((size_t)p.width * p.height * 3)};
    for (int y = 0; y < p.height; y++)                               /* a gradient with a square */
        for (int x = 0; x < p.width; x++)
            for (int c = 0; c < 3; c++)
                init.data[((size_t)y * p.width + x) * 3 + c] =
                    (uint8_t)((x > p.width / 4 && x < p.width / 2 && y > p.height / 3) ? 40 * c : (x * 255 / p.width + 60 * c) % 256);
    p.init_image = &init;
    p.strength = 0.6f;
    gp_compare("img2img euler_a 0.6", p);
    p.sampler = SDIFF_SAMPLER_DPMPP_2M;
    gp_compare("img2img dpmpp_2m 0.6", p);
    free(init.data);
}

/* The progress callback sees 1, 2, ... in order and can stop the generation. */
typedef struct gp_progress { int calls, last, stop_at; bool in_order; } gp_progress;
static bool gp_on_progress(int step, int total, void *user) {
    gp_progress *g = (gp_progress *)user;
    g->in_order &= step == g->last + 1 && step <= total;
    g->last = step;
    g->calls++;
    return step != g->stop_at;
}
SDIFF_TEST(cuda_progress_and_cancel) {
    if (!gp_setup()) { g_test_failed++; return; }
    sdiff_gen_params p = gp_params(1, SDIFF_SAMPLER_DPMPP_2M);
    gp_progress g = {0, 0, -1, true};
    p.progress = gp_on_progress;
    p.progress_user = &g;
    sdiff_image img;
    CHECK(sdiff_generate(g_gp.model[1], &p, &img) == SDIFF_OK);
    CHECK_MSG(g.in_order && g.calls == p.steps && g.last == p.steps, "calls %d, last %d", g.calls, g.last);
    sdiff_image_free(&img);
    g = (gp_progress){0, 0, 3, true};
    memset(&img, 0, sizeof img);
    CHECK(sdiff_generate(g_gp.model[1], &p, &img) == SDIFF_ERR_CANCELLED);
    CHECK_MSG(g.calls == 3 && img.data == NULL, "calls %d", g.calls);
    /* and the model still generates afterwards */
    p.progress = NULL;
    CHECK(sdiff_generate(g_gp.model[1], &p, &img) == SDIFF_OK);
    sdiff_image_free(&img);
}
