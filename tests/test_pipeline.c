/* Whole pipelines against diffusers (txt2img with every sampler, batch,
   img2img), the two checkpoint layouts against each other, and bad input:
   each a clear error, never a crash. Uses the tiny model of test_models.c. */
#include <sys/stat.h>
#include <unistd.h>

typedef struct ref_params {
    char prompt[256], negative[256];
    uint64_t seed;
    int steps, width, height;
    float cfg, strength;
} ref_params;

static bool ref_params_load(ref_params *p) {
    char path[512];
    snprintf(path, sizeof path, "%s/ref_tiny_sd.json", g_fixtures);
    sdiff__json *j;
    if (sdiff__json_load(path, &j) != SDIFF_OK) { printf("    %s\n", sdiff_last_error()); return false; }
    const sdiff__json *q = sdiff__json_get(j, "params");
    snprintf(p->prompt, sizeof p->prompt, "%s", sdiff__json_string(q, "prompt", ""));
    snprintf(p->negative, sizeof p->negative, "%s", sdiff__json_string(q, "negative_prompt", ""));
    p->seed = (uint64_t)sdiff__json_number(q, "seed", 0);
    p->steps = (int)sdiff__json_number(q, "steps", 0);
    p->width = (int)sdiff__json_number(q, "width", 0);
    p->height = (int)sdiff__json_number(q, "height", 0);
    p->cfg = (float)sdiff__json_number(q, "guidance_scale", 0);
    p->strength = (float)sdiff__json_number(q, "strength", 0);
    sdiff__json_free(j);
    return p->steps > 0;
}
static sdiff_gen_params gen_params(sdiff_model *m, const ref_params *r, const char *sampler) {
    sdiff_gen_params gp = sdiff_gen_default_params(m);
    gp.prompt = r->prompt;
    gp.negative_prompt = r->negative;
    gp.seed = r->seed;
    gp.steps = r->steps;
    gp.width = r->width;
    gp.height = r->height;
    gp.cfg_scale = r->cfg;
    gp.sampler = sdiff_sampler_from_name(sampler);
    return gp;
}
/* max |ours/255 - ref| over every pixel of `batch` images */
static double image_max_diff(const sdiff_image *img, const float *ref, int batch) {
    double worst = 0;
    for (int b = 0; b < batch; b++) {
        size_t n = (size_t)img[b].width * img[b].height * 3;
        if (!img[b].data) return INFINITY;
        for (size_t i = 0; i < n; i++) {
            double d = fabs(img[b].data[i] / 255.0 - ref[b * n + i]);
            if (!(d <= worst)) worst = d;
        }
    }
    return worst;
}

SDIFF_TEST(txt2img_every_sampler_matches_diffusers) {
    static const char *const samplers[] = {"pndm", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddpm"};
    sdiff_model *m = tiny_model();
    ref_params rp;
    fixture fx;
    if (!m || !ref_params_load(&rp) || !fixture_open(&fx, "ref_tiny_sd.safetensors")) { g_test_failed++; return; }
    for (size_t s = 0; s < sizeof samplers / sizeof samplers[0]; s++) {
        char name[64];
        snprintf(name, sizeof name, "txt2img.%s", samplers[s]);
        float *ref = fixture_get(&fx, name, NULL, NULL);
        sdiff_gen_params gp = gen_params(m, &rp, samplers[s]);
        sdiff_image img;
        sdiff_status st = sdiff_generate(m, &gp, &img);
        CHECK_MSG(st == SDIFF_OK, "%s: %s", samplers[s], sdiff_last_error());
        double d = ref ? image_max_diff(&img, ref, 1) : INFINITY;
        CHECK_MSG(d <= 1.0 / 255 + 1e-6, "%s: max pixel difference %.3g (%.2f/255)", samplers[s], d, d * 255);
        if (getenv("TEST_VERBOSE")) printf("    %-16s max diff %.2f/255\n", samplers[s], d * 255);
        sdiff_image_free(&img);
        free(ref);
    }
    fixture_close(&fx);
}

SDIFF_TEST(txt2img_batch2_matches_diffusers) {
    sdiff_model *m = tiny_model();
    ref_params rp;
    fixture fx;
    if (!m || !ref_params_load(&rp) || !fixture_open(&fx, "ref_tiny_sd.safetensors")) { g_test_failed++; return; }
    float *ref = fixture_get(&fx, "txt2img.pndm_batch2", NULL, NULL);
    sdiff_gen_params gp = gen_params(m, &rp, "pndm");
    gp.batch = 2;
    sdiff_image img[2];
    CHECK(sdiff_generate(m, &gp, img) == SDIFF_OK);
    double d = ref ? image_max_diff(img, ref, 2) : INFINITY;
    CHECK_MSG(d <= 1.0 / 255 + 1e-6, "max pixel difference %.2f/255", d * 255);
    CHECK(sdiff_model_peak_activation_bytes(m) > 0);
    sdiff_image_free(&img[0]);
    sdiff_image_free(&img[1]);
    free(ref);
    fixture_close(&fx);
}

SDIFF_TEST(img2img_matches_diffusers) {
    static const char *const samplers[] = {"pndm", "ddim", "euler_a"};
    sdiff_model *m = tiny_model();
    ref_params rp;
    fixture fx;
    if (!m || !ref_params_load(&rp) || !fixture_open(&fx, "ref_tiny_sd.safetensors")) { g_test_failed++; return; }
    int64_t n;
    float *init = fixture_get(&fx, "img2img.init", &n, NULL);
    sdiff_image in = {rp.width, rp.height, 3, (uint8_t *)malloc((size_t)n)};
    for (int64_t i = 0; init && i < n; i++) in.data[i] = (uint8_t)init[i];
    for (size_t s = 0; s < sizeof samplers / sizeof samplers[0]; s++) {
        char name[64];
        snprintf(name, sizeof name, "img2img.%s", samplers[s]);
        float *ref = fixture_get(&fx, name, NULL, NULL);
        sdiff_gen_params gp = gen_params(m, &rp, samplers[s]);
        gp.init_image = &in;
        gp.strength = rp.strength;
        sdiff_image img;
        CHECK_MSG(sdiff_generate(m, &gp, &img) == SDIFF_OK, "%s", sdiff_last_error());
        double d = ref ? image_max_diff(&img, ref, 1) : INFINITY;
        CHECK_MSG(d <= 1.0 / 255 + 1e-6, "%s: max pixel difference %.2f/255", samplers[s], d * 255);
        sdiff_image_free(&img);
        free(ref);
    }
    free(in.data);
    free(init);
    fixture_close(&fx);
}

SDIFF_TEST(single_file_and_folder_give_identical_images) {
    sdiff_model *m = tiny_model(), *single = NULL;
    ref_params rp;
    if (!m || !ref_params_load(&rp)) { g_test_failed++; return; }
    char path[512], dir[512];
    snprintf(path, sizeof path, "%s/tiny-sd.safetensors", g_fixtures);
    snprintf(dir, sizeof dir, "%s/tiny-sd", g_fixtures);
    sdiff_load_params lp = sdiff_load_default_params();
    /* the built-in CLIP vocabulary does not fit the tiny text encoder: caught at load */
    CHECK(sdiff_model_load(g_ctx, path, NULL, &single) == SDIFF_ERR_MODEL && single == NULL);
    CHECK(strstr(sdiff_last_error(), "tokenizer has 49408 tokens") != NULL);
    lp.config_dir = dir;   /* the tiny model's head counts are not in its shapes */
    CHECK_MSG(sdiff_model_load(g_ctx, path, &lp, &single) == SDIFF_OK, "%s", sdiff_last_error());
    if (!single) return;
    /* what detection finds from names and shapes alone */
    sdiff__unet_config uc;
    sdiff__vae_config vc;
    sdiff__clip_config cc;
    sdiff__safetensors file;
    CHECK(single->n_files == 0); /* mappings are dropped after loading */
    CHECK(sdiff__st_open(path, &file) == SDIFF_OK);
    CHECK(sdiff__detect_unet(&file, &uc) == SDIFF_OK);
    CHECK(uc.levels == m->unet.cfg.levels && uc.layers_per_block == m->unet.cfg.layers_per_block &&
          uc.ch[0] == m->unet.cfg.ch[0] && uc.ch[1] == m->unet.cfg.ch[1] && uc.cross_dim == m->unet.cfg.cross_dim &&
          uc.down_attn[0] && !uc.down_attn[1] && !uc.up_attn[0] && uc.up_attn[1] && !uc.linear_proj);
    CHECK(sdiff__detect_vae(&file, &vc) == SDIFF_OK);
    CHECK(vc.levels == m->vae.cfg.levels && vc.ch[3] == m->vae.cfg.ch[3] && vc.layers_per_block == m->vae.cfg.layers_per_block);
    CHECK(sdiff__detect_clip(&file, &cc) == SDIFF_OK);
    CHECK(cc.layers == m->clip.cfg.layers && cc.hidden == m->clip.cfg.hidden && cc.intermediate == m->clip.cfg.intermediate);
    sdiff__st_close(&file);
    sdiff_gen_params gp = gen_params(m, &rp, "euler_a");
    sdiff_image a, b;
    CHECK(sdiff_generate(m, &gp, &a) == SDIFF_OK);
    CHECK(sdiff_generate(single, &gp, &b) == SDIFF_OK);
    CHECK(a.data && b.data && memcmp(a.data, b.data, (size_t)a.width * a.height * 3) == 0);
    sdiff_image_free(&a);
    sdiff_image_free(&b);
    sdiff_model_free(single);
}

/* --- bad input */
static bool g_cancel_seen;
static int g_progress_calls;
static bool cancel_at_2(int step, int total, void *user) {
    (void)user;
    g_progress_calls++;
    g_cancel_seen = total > 0;
    return step < 2;
}
SDIFF_TEST(generate_rejects_bad_parameters) {
    sdiff_model *m = tiny_model();
    ref_params rp;
    if (!m || !ref_params_load(&rp)) { g_test_failed++; return; }
    sdiff_image img[2];
    sdiff_gen_params gp = gen_params(m, &rp, "pndm");
    struct { const char *what; sdiff_gen_params p; } bad[12];
    int n = 0;
    for (int i = 0; i < 12; i++) bad[i].p = gp;
    bad[n].what = "invalid UTF-8 prompt"; bad[n++].p.prompt = "a \xff\xfe cat";
    bad[n].what = "overlong UTF-8"; bad[n++].p.negative_prompt = "\xc0\xaf";
    bad[n].what = "width not a multiple of 8"; bad[n++].p.width = 60;
    bad[n].what = "absurd height"; bad[n++].p.height = 1 << 20;
    bad[n].what = "negative width"; bad[n++].p.width = -64;
    bad[n].what = "steps 0"; bad[n++].p.steps = 0;
    bad[n].what = "batch 65"; bad[n++].p.batch = 65;
    bad[n].what = "NaN cfg"; bad[n++].p.cfg_scale = NAN;
    bad[n].what = "unknown sampler"; bad[n++].p.sampler = (sdiff_sampler)99;
    bad[n].what = "clip skip 99"; bad[n++].p.clip_skip = 99;
    sdiff_image small = {8, 8, 3, (uint8_t *)calloc(8 * 8 * 3, 1)};
    bad[n].what = "init image of the wrong size"; bad[n].p.init_image = &small; bad[n++].p.strength = 0.5f;
    bad[n].what = "strength 0"; bad[n].p.init_image = &small; bad[n].p.width = 8; bad[n].p.height = 8; bad[n++].p.strength = 0;
    for (int i = 0; i < n; i++) {
        sdiff_status st = sdiff_generate(m, &bad[i].p, img);
        CHECK_MSG(st == SDIFF_ERR_INVALID_ARG, "%s: status %d", bad[i].what, (int)st);
        CHECK_MSG(sdiff_last_error()[0] && img[0].data == NULL, "%s: no message or an image", bad[i].what);
        if (getenv("TEST_VERBOSE")) printf("    %-28s -> %s\n", bad[i].what, sdiff_last_error());
    }
    free(small.data);
    CHECK(sdiff_generate(m, NULL, img) == SDIFF_ERR_INVALID_ARG);
    /* cancellation through the progress callback */
    gp.progress = cancel_at_2;
    g_progress_calls = 0;
    CHECK(sdiff_generate(m, &gp, img) == SDIFF_ERR_CANCELLED);
    CHECK(g_progress_calls == 2 && g_cancel_seen && img[0].data == NULL);
}

/* A scratch copy of the tiny folder, to break one file of it. */
static void copy_file(const char *from, const char *to) {
    size_t n;
    char *d = test_read_file(from, &n);
    FILE *f = fopen(to, "wb");
    if (d && f) fwrite(d, 1, n, f);
    if (f) fclose(f);
    free(d);
}
static void make_tiny_copy(char *dir, size_t size) {
    static const char *const files[] = {"model_index.json", "scheduler/scheduler_config.json", "text_encoder/config.json",
        "text_encoder/model.safetensors", "tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
        "tokenizer/special_tokens_map.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors"};
    static const char *const subs[] = {"scheduler", "text_encoder", "tokenizer", "unet", "vae"};
    snprintf(dir, size, "/tmp/sdiff-test-%d", (int)getpid());
    mkdir(dir, 0700);
    char a[600], b[600];
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) { snprintf(a, sizeof a, "%s/%s", dir, subs[i]); mkdir(a, 0700); }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(a, sizeof a, "%s/tiny-sd/%s", g_fixtures, files[i]);
        snprintf(b, sizeof b, "%s/%s", dir, files[i]);
        copy_file(a, b);
    }
}
static void write_text(const char *dir, const char *name, const char *text) {
    char p[600];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) { fputs(text, f); fclose(f); }
}
/* Loads dir, expecting `want` and a message containing `needle`. */
static void expect_load_error(const char *dir, sdiff_status want, const char *needle, const char *what) {
    sdiff_model *bad = NULL;
    sdiff_status st = sdiff_model_load(g_ctx, dir, NULL, &bad);
    CHECK_MSG(st == want && bad == NULL, "%s: status %d (want %d): %s", what, (int)st, (int)want, sdiff_last_error());
    CHECK_MSG(strstr(sdiff_last_error(), needle) != NULL, "%s: message '%s' lacks '%s'", what, sdiff_last_error(), needle);
    if (getenv("TEST_VERBOSE")) printf("    %-24s -> %s\n", what, sdiff_last_error());
    sdiff_model_free(bad);
}
SDIFF_TEST(model_load_rejects_bad_checkpoints) {
    if (!tiny_model()) { g_test_failed++; return; }
    char dir[512], cfg[4096], path[600];
    make_tiny_copy(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/unet/config.json", dir);
    char *orig = test_read_file(path, NULL);
    CHECK(orig != NULL);
    if (!orig) return;
    sdiff_model *ok = NULL;  /* the copy itself loads */
    CHECK_MSG(sdiff_model_load(g_ctx, dir, NULL, &ok) == SDIFF_OK, "%s", sdiff_last_error());
    sdiff_model_free(ok);

    expect_load_error("/nonexistent/model", SDIFF_ERR_IO, "/nonexistent/model", "missing path");
    write_text(dir, "unet/config.json", "{\"block_out_channels\": [16, 32,");
    expect_load_error(dir, SDIFF_ERR_FORMAT, "unet/config.json", "invalid JSON");
    /* one more resnet per block than the weights have: a missing tensor */
    snprintf(cfg, sizeof cfg, "%s", orig);
    char *lpb = strstr(cfg, "\"layers_per_block\": 2");
    CHECK(lpb != NULL);
    if (lpb) {
        lpb[20] = '3';
        write_text(dir, "unet/config.json", cfg);
        expect_load_error(dir, SDIFF_ERR_MODEL, "missing tensor 'down_blocks.0.resnets.2", "missing tensor");
    }
    /* wider channels than the weights: a mis-shaped tensor */
    snprintf(cfg, sizeof cfg, "%s", orig);
    char *ch = strstr(cfg, "32\n");
    char *boc = strstr(cfg, "\"block_out_channels\"");
    if (boc && (ch = strstr(boc, "32")) != NULL) {
        ch[0] = '4'; ch[1] = '8';
        write_text(dir, "unet/config.json", cfg);
        expect_load_error(dir, SDIFF_ERR_MODEL, "has shape", "mis-shaped tensor");
    } else CHECK(!"block_out_channels not found");
    write_text(dir, "unet/config.json", orig);
    /* a truncated weight file */
    snprintf(path, sizeof path, "%s/vae/diffusion_pytorch_model.safetensors", dir);
    size_t n;
    char *w = test_read_file(path, &n);
    FILE *f = fopen(path, "wb");
    if (w && f) fwrite(w, 1, n / 2, f);
    if (f) fclose(f);
    free(w);
    expect_load_error(dir, SDIFF_ERR_FORMAT, "vae/diffusion_pytorch_model.safetensors", "truncated weights");
    /* a pipeline we do not run */
    write_text(dir, "model_index.json", "{\"_class_name\": \"FluxPipeline\"}");
    expect_load_error(dir, SDIFF_ERR_UNSUPPORTED, "FluxPipeline", "unknown pipeline");
    free(orig);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
}

/* Separate contexts on separate threads: same images as one at a time. */
#include <pthread.h>
typedef struct thread_job {
    const ref_params *rp;
    sdiff_image img;
    sdiff_status st;
} thread_job;
static void *generate_on_own_context(void *arg) {
    thread_job *j = (thread_job *)arg;
    sdiff_ctx_params cp = sdiff_ctx_default_params();
    cp.n_threads = 1;
    cp.log_level = SDIFF_LOG_ERROR;
    sdiff_ctx *ctx = NULL;
    sdiff_model *m = NULL;
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-sd", g_fixtures);
    j->st = sdiff_ctx_create(&cp, &ctx);
    if (j->st == SDIFF_OK) j->st = sdiff_model_load(ctx, path, NULL, &m);
    if (j->st == SDIFF_OK) {
        sdiff_gen_params gp = gen_params(m, j->rp, "dpmpp_2m");
        j->st = sdiff_generate(m, &gp, &j->img);
    }
    sdiff_model_free(m);
    sdiff_ctx_free(ctx);
    return NULL;
}
SDIFF_TEST(separate_contexts_run_concurrently) {
    sdiff_model *m = tiny_model();
    ref_params rp;
    if (!m || !ref_params_load(&rp)) { g_test_failed++; return; }
    sdiff_gen_params gp = gen_params(m, &rp, "dpmpp_2m");
    sdiff_image want;
    CHECK(sdiff_generate(m, &gp, &want) == SDIFF_OK);
    thread_job jobs[3];
    pthread_t th[3];
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < 3; i++) {
        jobs[i].rp = &rp;
        CHECK(pthread_create(&th[i], NULL, generate_on_own_context, &jobs[i]) == 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK(jobs[i].st == SDIFF_OK);
        CHECK(jobs[i].img.data && want.data && memcmp(jobs[i].img.data, want.data, (size_t)want.width * want.height * 3) == 0);
        sdiff_image_free(&jobs[i].img);
    }
    sdiff_image_free(&want);
}
