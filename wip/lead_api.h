/* >>api ====================================================================
   Public API implementation
   ========================================================================= */
SDIFF_API const char *sdiff_status_string(sdiff_status status) {
    switch (status) {
    case SDIFF_OK: return "ok";
    case SDIFF_ERR_INVALID_ARG: return "invalid argument";
    case SDIFF_ERR_OUT_OF_MEMORY: return "out of memory";
    case SDIFF_ERR_IO: return "I/O error";
    case SDIFF_ERR_FORMAT: return "malformed file";
    case SDIFF_ERR_MODEL: return "missing or mis-shaped tensor";
    case SDIFF_ERR_UNSUPPORTED: return "unsupported";
    case SDIFF_ERR_CANCELLED: return "cancelled";
    case SDIFF_ERR_BACKEND: return "backend failure";
    }
    return "unknown status";
}
SDIFF_API const char *sdiff_last_error(void) { return sdiff__g_error; }

SDIFF_API sdiff_ctx_params sdiff_ctx_default_params(void) {
    sdiff_ctx_params p;
    memset(&p, 0, sizeof p);
    p.backend = SDIFF_BACKEND_AUTO;
    p.log_level = SDIFF_LOG_INFO;
    return p;
}
SDIFF_API sdiff_status sdiff_ctx_create(const sdiff_ctx_params *params, sdiff_ctx **out_ctx) {
    sdiff__g_error[0] = 0;
    if (!out_ctx) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_ctx_create: out_ctx is NULL");
    *out_ctx = NULL;
    sdiff_ctx_params p = params ? *params : sdiff_ctx_default_params();
    if ((unsigned)p.backend > SDIFF_BACKEND_CUDA) return sdiff__err(SDIFF_ERR_INVALID_ARG, "unknown backend %d", (int)p.backend);
    if (p.n_threads < 0 || p.n_threads > 1024) return sdiff__err(SDIFF_ERR_INVALID_ARG, "n_threads = %d", p.n_threads);
    sdiff_ctx *ctx = (sdiff_ctx *)sdiff__calloc(1, sizeof *ctx);
    if (!ctx) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of memory");
    ctx->log.level = p.log_level;
    ctx->log.fn = p.log_fn;
    ctx->log.user = p.log_user;
    if (p.backend == SDIFF_BACKEND_CUDA) {
        sdiff__free(ctx);
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "the CUDA backend is not compiled in (include sdiff_cuda.h)");
    }
    ctx->be = sdiff__cpu_backend_create(p.n_threads, &ctx->log);
    if (!ctx->be) {
        sdiff__free(ctx);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "could not start the CPU backend");
    }
    *out_ctx = ctx;
    return SDIFF_OK;
}
SDIFF_API void sdiff_ctx_free(sdiff_ctx *ctx) {
    if (!ctx) return;
    if (ctx->be) ctx->be->destroy(ctx->be);
    sdiff__free(ctx);
}
SDIFF_API const char *sdiff_ctx_backend_name(const sdiff_ctx *ctx) { return ctx && ctx->be ? ctx->be->name : ""; }

SDIFF_API sdiff_load_params sdiff_load_default_params(void) {
    sdiff_load_params p;
    memset(&p, 0, sizeof p);
    return p;
}
SDIFF_API sdiff_status sdiff_model_load(sdiff_ctx *ctx, const char *path, const sdiff_load_params *params,
                                        sdiff_model **out_model) {
    sdiff__g_error[0] = 0;
    if (!out_model) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_model_load: out_model is NULL");
    *out_model = NULL;
    if (!ctx || !path) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_model_load: ctx and path are required");
    sdiff_load_params lp = params ? *params : sdiff_load_default_params();
    sdiff_model *m = (sdiff_model *)sdiff__calloc(1, sizeof *m);
    if (!m) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of memory");
    m->ctx = ctx;
    sdiff_status st = sdiff__model_load(ctx, path, &lp, m);
    if (st != SDIFF_OK) {
        sdiff__log(&ctx->log, SDIFF_LOG_ERROR, "load", "%s", sdiff__g_error);
        sdiff__model_release(m);
        return st;
    }
    sdiff__log(&ctx->log, SDIFF_LOG_INFO, "load", "%s: %s", path, m->description);
    *out_model = m;
    return SDIFF_OK;
}
SDIFF_API void sdiff_model_free(sdiff_model *model) { sdiff__model_release(model); }
SDIFF_API const char *sdiff_model_describe(const sdiff_model *model) { return model ? model->description : ""; }

SDIFF_API sdiff_gen_params sdiff_gen_default_params(const sdiff_model *model) {
    sdiff_gen_params p;
    memset(&p, 0, sizeof p);
    p.prompt = "";
    p.steps = 50;                   /* diffusers' defaults */
    p.cfg_scale = 7.5f;
    p.batch = 1;
    p.strength = 0.8f;
    int size = 512;
    if (model) size = model->unet.cfg.sample_size * (1 << (model->vae.cfg.levels - 1));
    p.width = p.height = size;
    return p;
}
SDIFF_API sdiff_status sdiff_generate(sdiff_model *model, const sdiff_gen_params *params, sdiff_image *out_images) {
    sdiff__g_error[0] = 0;
    if (!model || !params || !out_images) return sdiff__err(SDIFF_ERR_INVALID_ARG, "sdiff_generate: NULL argument");
    sdiff_gen_params p = *params;  /* 0 == default for batch and size */
    sdiff_gen_params def = sdiff_gen_default_params(model);
    if (p.batch == 0) p.batch = 1;
    if (p.width == 0) p.width = def.width;
    if (p.height == 0) p.height = def.height;
    for (int b = 0; b < (p.batch > 0 && p.batch <= 64 ? p.batch : 1); b++) memset(&out_images[b], 0, sizeof out_images[b]);
    SDIFF__TRY(sdiff__check_gen_params(model, &p));
    sdiff_status st = sdiff__generate(model, &p, out_images);
    if (st != SDIFF_OK && st != SDIFF_ERR_CANCELLED)
        sdiff__log(&model->ctx->log, SDIFF_LOG_ERROR, "generate", "%s", sdiff__g_error);
    return st;
}
SDIFF_API size_t sdiff_model_peak_activation_bytes(const sdiff_model *model) { return model ? model->arena.peak : 0; }
