/* Models against diffusers: the CPU backend's text encoder, UNet and VAE on
   the tiny random-weight fixtures (tools/gen_fixtures.py) must match the
   tensors diffusers computed, within 1e-4 relative error in fp32. */

typedef struct fixture {
    sdiff__safetensors st;
    bool ok;
} fixture;

static bool fixture_open(fixture *fx, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_fixtures, name);
    fx->ok = sdiff__st_open(path, &fx->st) == SDIFF_OK;
    if (!fx->ok) printf("    missing fixture %s: %s\n", path, sdiff_last_error());
    return fx->ok;
}
static void fixture_close(fixture *fx) {
    if (fx->ok) sdiff__st_close(&fx->st);
}
/* A reference tensor as floats (malloc'd), with its numel. */
static float *fixture_get(const fixture *fx, const char *name, int64_t *numel, int64_t *shape) {
    const sdiff__st_tensor *t = sdiff__st_find(&fx->st, name);
    if (!t || t->dtype < 0) { printf("    fixture tensor %s missing\n", name); g_test_failed++; return NULL; }
    int64_t n = 1;
    for (int i = 0; i < t->nd; i++) { n *= t->shape[i]; if (shape) shape[i] = t->shape[i]; }
    float *v = (float *)malloc((size_t)n * sizeof(float) + 1);
    sdiff__to_f32(v, t->data, (sdiff__dtype)t->dtype, (size_t)n);
    if (numel) *numel = n;
    return v;
}
/* One shared CPU context and the tiny pipeline, loaded once. */
static sdiff_ctx *g_ctx;
static sdiff_model *g_tiny;
static sdiff_model *tiny_model(void) {
    if (g_tiny) return g_tiny;
    sdiff_ctx_params cp = sdiff_ctx_default_params();
    cp.log_level = SDIFF_LOG_WARN;
    if (!g_ctx && sdiff_ctx_create(&cp, &g_ctx) != SDIFF_OK) { printf("    ctx: %s\n", sdiff_last_error()); return NULL; }
    char path[512];
    snprintf(path, sizeof path, "%s/tiny-sd", g_fixtures);
    if (sdiff_model_load(g_ctx, path, NULL, &g_tiny) != SDIFF_OK) printf("    load: %s\n", sdiff_last_error());
    return g_tiny;
}

/* Runs f on the backend and downloads the result (n floats). */
static void nchw_to_nhwc_host(float *dst, const float *src, int64_t b, int64_t c, int64_t hw) {
    sdiff__nchw_to_nhwc(dst, src, b, c, hw);
}

SDIFF_TEST(clip_text_encoder_matches_diffusers) {
    sdiff_model *m = tiny_model();
    fixture fx;
    CHECK(m != NULL);
    if (!m || !fixture_open(&fx, "ref_tiny_sd.safetensors")) { g_test_failed++; return; }
    int64_t n_ids, n_emb;
    float *ids_f = fixture_get(&fx, "text.ids", &n_ids, NULL);
    float *want = fixture_get(&fx, "text.embeds", &n_emb, NULL);
    float *want_skip = fixture_get(&fx, "text.embeds_clip_skip1", NULL, NULL);
    if (ids_f && want && want_skip) {
        int32_t ids[77], mine[77];
        for (int i = 0; i < 77; i++) ids[i] = (int32_t)ids_f[i];
        CHECK(sdiff__tokenize(m->tokenizer, "a photo of an astronaut riding a horse, 4k", mine, 77) == SDIFF_OK);
        CHECK(memcmp(ids, mine, sizeof ids) == 0);
        float *got = (float *)malloc((size_t)n_emb * sizeof(float));
        sdiff__run r = {m->ctx->be, &m->arena};
        for (int skip = 0; skip <= 2; skip += 2) {   /* ours 2 == diffusers' clip_skip=1 */
            sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
            sdiff__tensor *e = sdiff__clip_forward(&r, &m->clip, ids, 1, 77, skip);
            r.be->download(r.be, e, got);
            sdiff__arena_release(&m->arena, mark);
            CHECK(r.be->status == SDIFF_OK);
            CHECK_REL(got, skip ? want_skip : want, (size_t)n_emb, 1e-4);
        }
        free(got);
    }
    free(ids_f); free(want); free(want_skip);
    fixture_close(&fx);
}

/* The UNet of `m` (or of a bare UNet) on the fixture's sample/timestep/context. */
static void check_unet(sdiff__backend *be, sdiff__arena *ar, const sdiff__unet *u, const char *ref_name) {
    fixture fx;
    if (!fixture_open(&fx, ref_name)) { g_test_failed++; return; }
    int64_t shape[4] = {0}, n, nc;
    float *x = fixture_get(&fx, "unet.sample", &n, shape), *t = fixture_get(&fx, "unet.timestep", NULL, NULL);
    float *ctx = fixture_get(&fx, "unet.context", &nc, NULL), *want = fixture_get(&fx, "unet.out", NULL, NULL);
    if (x && t && ctx && want) {
        const int64_t B = shape[0], C = shape[1], H = shape[2], W = shape[3];
        float *xh = (float *)malloc((size_t)n * sizeof(float)), *got = (float *)malloc((size_t)n * sizeof(float));
        nchw_to_nhwc_host(xh, x, B, C, H * W);
        float tb[16];
        for (int i = 0; i < B && i < 16; i++) tb[i] = t[0];
        sdiff__run r = {be, ar};
        sdiff__arena_mark mark = sdiff__arena_mark_get(ar);
        sdiff__tensor *tt = sdiff__new1(ar, SDIFF__F32, B);
        be->upload(be, tt, tb, SDIFF__F32);
        sdiff__tensor *xt = sdiff__new4(ar, be->act_dtype, B, H, W, C);
        sdiff__tensor *ct = sdiff__new3(ar, be->act_dtype, B, nc / B / u->cfg.cross_dim, u->cfg.cross_dim);
        be->upload(be, xt, xh, SDIFF__F32);
        be->upload(be, ct, ctx, SDIFF__F32);
        sdiff__tensor *y = sdiff__unet_forward(&r, u, xt, tt, ct);
        be->download(be, y, xh);
        sdiff__arena_release(ar, mark);
        CHECK(be->status == SDIFF_OK);
        sdiff__nhwc_to_nchw(got, xh, B, C, H * W);
        CHECK_REL(got, want, (size_t)n, 1e-4);
        free(xh); free(got);
    }
    free(x); free(t); free(ctx); free(want);
    fixture_close(&fx);
}
SDIFF_TEST(unet_sd1_matches_diffusers) {
    sdiff_model *m = tiny_model();
    CHECK(m != NULL);
    if (m) check_unet(m->ctx->be, &m->arena, &m->unet, "ref_tiny_sd.safetensors");
}
SDIFF_TEST(unet_sd2_linear_proj_matches_diffusers) {
    /* SD 2.x features: linear projections, per-level head counts */
    sdiff_model *m = tiny_model();
    if (!m) { g_test_failed++; return; }
    sdiff_model *bare = (sdiff_model *)sdiff__calloc(1, sizeof *bare);
    bare->ctx = m->ctx;
    char dir[512];
    snprintf(dir, sizeof dir, "%s/tiny-sd2-unet", g_fixtures);
    sdiff_status st = sdiff__load_component(bare, dir, "unet");
    CHECK_MSG(st == SDIFF_OK, "%s", sdiff_last_error());
    CHECK(bare->unet.cfg.linear_proj && bare->unet.cfg.heads[0] == 2 && bare->unet.cfg.heads[1] == 4);
    if (st == SDIFF_OK) check_unet(m->ctx->be, &m->arena, &bare->unet, "ref_tiny_sd2_unet.safetensors");
    bare->ctx = NULL;
    sdiff__model_release(bare);
}

SDIFF_TEST(vae_decode_and_encode_match_diffusers) {
    sdiff_model *m = tiny_model();
    fixture fx;
    if (!m || !fixture_open(&fx, "ref_tiny_sd.safetensors")) { g_test_failed++; return; }
    sdiff__backend *be = m->ctx->be;
    sdiff__run r = {be, &m->arena};
    int64_t zs[4] = {0}, is[4] = {0}, nz, ni, nm;
    float *z = fixture_get(&fx, "vae.latents", &nz, zs), *dec = fixture_get(&fx, "vae.decoded", &ni, is);
    float *img = fixture_get(&fx, "vae.image", NULL, NULL), *mean = fixture_get(&fx, "vae.mean", &nm, NULL);
    float *std = fixture_get(&fx, "vae.std", NULL, NULL);
    if (z && dec && img && mean && std) {
        float *a = (float *)malloc((size_t)ni * 2 * sizeof(float)), *b = (float *)malloc((size_t)ni * 2 * sizeof(float));
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        /* decode */
        nchw_to_nhwc_host(a, z, zs[0], zs[1], zs[2] * zs[3]);
        sdiff__tensor *zt = sdiff__new4(&m->arena, be->act_dtype, zs[0], zs[2], zs[3], zs[1]);
        be->upload(be, zt, a, SDIFF__F32);
        sdiff__tensor *y = sdiff__vae_decode(&r, &m->vae, zt);
        be->download(be, y, a);
        sdiff__nhwc_to_nchw(b, a, is[0], is[1], is[2] * is[3]);
        CHECK_REL(b, dec, (size_t)ni, 1e-4);
        /* encode: moments = [mean, logvar] on channels */
        nchw_to_nhwc_host(a, img, is[0], is[1], is[2] * is[3]);
        sdiff__tensor *xt = sdiff__new4(&m->arena, be->act_dtype, is[0], is[2], is[3], is[1]);
        be->upload(be, xt, a, SDIFF__F32);
        sdiff__tensor *mo = sdiff__vae_encode(&r, &m->vae, xt);
        be->download(be, mo, a);
        sdiff__nhwc_to_nchw(b, a, 1, 2 * zs[1], zs[2] * zs[3]);
        for (int64_t i = 0; i < nm; i++) { /* std = exp(0.5 * clamp(logvar)) */
            float lv = b[nm + i] < -30 ? -30 : b[nm + i] > 20 ? 20 : b[nm + i];
            a[i] = expf(0.5f * lv);
        }
        CHECK_REL(b, mean, (size_t)nm, 1e-4);
        CHECK_REL(a, std, (size_t)nm, 1e-4);
        sdiff__arena_release(&m->arena, mark);
        CHECK(be->status == SDIFF_OK);
        free(a); free(b);
    }
    free(z); free(dec); free(img); free(mean); free(std);
    fixture_close(&fx);
}
