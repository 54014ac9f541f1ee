/* >>pipeline ===============================================================
   Pipelines: txt2img and img2img with classifier-free guidance

   Follows diffusers' StableDiffusionPipeline / Img2ImgPipeline step by step,
   so the same seed gives the same image:
     1. tokenize and encode the prompt and the negative prompt (CFG batch is
        [negative x batch, prompt x batch], as diffusers concatenates it);
     2. latents = randn([batch, C, h, w]) * init_noise_sigma   (txt2img), or
        latents = add_noise(vae_sample(image) * scaling, randn, t_start)
                                                             (img2img);
     3. per step: eps = unet(scale_input([latents, latents]), t, context);
        eps = eps_uncond + cfg * (eps_text - eps_uncond); latents = step(...)
     4. image = vae_decode(latents / scaling); pixels = round(255 *
        clamp(image / 2 + 0.5, 0, 1)).
   Latents stay on the host in PyTorch's NCHW order, because random draws and
   scheduler arithmetic then happen in exactly diffusers' element order; they
   are transposed to channels-last only at the UNet's and VAE's edges.
   ========================================================================= */

/* NCHW host floats <-> NHWC (channels-last) host floats. */
SDIFF__PRIVATE void sdiff__nchw_to_nhwc(float *dst, const float *src, int64_t b, int64_t c, int64_t hw) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) dst[(n * hw + i) * c + ch] = src[(n * c + ch) * hw + i];
}
SDIFF__PRIVATE void sdiff__nhwc_to_nchw(float *dst, const float *src, int64_t b, int64_t c, int64_t hw) {
    for (int64_t n = 0; n < b; n++)
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t i = 0; i < hw; i++) dst[(n * c + ch) * hw + i] = src[(n * hw + i) * c + ch];
}
SDIFF__PRIVATE sdiff_status sdiff__check_gen_params(const sdiff_model *m, const sdiff_gen_params *p) {
    const int f = 1 << (m->vae.cfg.levels - 1);
    size_t bad;
    if (!p->prompt) return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt is NULL");
    if (!sdiff__utf8_valid(p->prompt, strlen(p->prompt), &bad))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "prompt is not valid UTF-8 (byte %zu)", bad);
    if (p->negative_prompt && !sdiff__utf8_valid(p->negative_prompt, strlen(p->negative_prompt), &bad))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "negative prompt is not valid UTF-8 (byte %zu)", bad);
    if (p->width <= 0 || p->height <= 0 || p->width % f || p->height % f)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "size %dx%d: width and height must be positive multiples of %d",
                          p->width, p->height, f);
    if (p->width > 8192 || p->height > 8192)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "size %dx%d is larger than 8192 on a side", p->width, p->height);
    if (p->steps < 1 || p->steps > 1000) return sdiff__err(SDIFF_ERR_INVALID_ARG, "steps = %d: must be 1..1000", p->steps);
    if (p->batch < 1 || p->batch > 64) return sdiff__err(SDIFF_ERR_INVALID_ARG, "batch = %d: must be 1..64", p->batch);
    if (!isfinite(p->cfg_scale) || fabsf(p->cfg_scale) > 1000)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "cfg scale %g is not a sane number", (double)p->cfg_scale);
    if ((unsigned)p->sampler >= SDIFF_SAMPLER_COUNT_) return sdiff__err(SDIFF_ERR_INVALID_ARG, "unknown sampler %d", (int)p->sampler);
    if (p->clip_skip < 0 || p->clip_skip > m->clip.cfg.layers)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "clip skip %d: the text encoder has %d layers", p->clip_skip, m->clip.cfg.layers);
    if (!(p->eta >= 0 && p->eta <= 1)) return sdiff__err(SDIFF_ERR_INVALID_ARG, "eta %g: must be 0..1", (double)p->eta);
    if (p->init_image) {
        const sdiff_image *im = p->init_image;
        if (!im->data || im->width != p->width || im->height != p->height || (im->channels != 3 && im->channels != 4))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "init image is %dx%dx%d; it must be RGB or RGBA of the output size %dx%d",
                              im->width, im->height, im->channels, p->width, p->height);
        if (!(p->strength > 0 && p->strength <= 1))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "strength %g: must be in (0, 1]", (double)p->strength);
    }
    return SDIFF_OK;
}

/* The CFG context [2*batch or batch, tokens, hidden] on the backend. */
SDIFF__PRIVATE sdiff_status sdiff__encode_prompts(sdiff_model *m, const sdiff_gen_params *p, bool cfg, sdiff__tensor **out) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int T = m->max_tokens, B = p->batch, H = m->clip.cfg.hidden, n_prompts = cfg ? 2 : 1;
    int32_t ids[2 * 77];
    SDIFF__TRY(sdiff__tokenize(m->tokenizer, p->prompt, ids + (cfg ? T : 0), T));
    if (cfg) SDIFF__TRY(sdiff__tokenize(m->tokenizer, p->negative_prompt ? p->negative_prompt : "", ids, T));
    for (int i = 0; i < n_prompts * T; i++)
        if (ids[i] < 0 || ids[i] >= m->clip.cfg.vocab)
            return sdiff__err(SDIFF_ERR_MODEL, "token id %d is outside the text encoder's %d-entry vocabulary", ids[i], m->clip.cfg.vocab);
    sdiff__tensor *ctx = sdiff__new3(&m->arena, r.be->act_dtype, (int64_t)n_prompts * B, T, H);
    float *host = (float *)sdiff__calloc((size_t)n_prompts * T * H, sizeof(float));
    if (!host) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
    sdiff__tensor *emb = sdiff__clip_forward(&r, &m->clip, ids, n_prompts, T, p->clip_skip);
    if (r.be->status == SDIFF_OK) r.be->download(r.be, emb, host);
    sdiff__arena_release(&m->arena, mark);
    /* repeat each prompt `batch` times: [neg x B, pos x B] */
    float *rep = (float *)sdiff__calloc((size_t)n_prompts * B * T * H, sizeof(float));
    if (rep) {
        for (int pi = 0; pi < n_prompts; pi++)
            for (int b = 0; b < B; b++) memcpy(rep + ((size_t)pi * B + b) * T * H, host + (size_t)pi * T * H, sizeof(float) * T * H);
        if (r.be->status == SDIFF_OK) r.be->upload(r.be, ctx, rep, SDIFF__F32);
    }
    sdiff__free(host);
    sdiff__free(rep);
    if (!rep) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    *out = ctx;
    return r.be->status;
}

/* img2img: diffusers' prepare_latents. image -> [-1, 1] -> VAE encoder ->
   sample (draws randn from the generator) -> * scaling factor, repeated for
   the batch. Writes batch*C*h*w NCHW floats. */
SDIFF__PRIVATE sdiff_status sdiff__encode_image(sdiff_model *m, const sdiff_image *im, int batch, sdiff__rng *rng, float *latents) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int64_t W = im->width, H = im->height, f = (int64_t)1 << (m->vae.cfg.levels - 1), C = m->vae.cfg.latent;
    const int64_t h = H / f, w = W / f, n = C * h * w;
    float *px = (float *)sdiff__calloc((size_t)(W * H * 3 > 2 * n ? W * H * 3 : 2 * n) + 2 * (size_t)n, sizeof(float));
    if (!px) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int64_t i = 0; i < W * H; i++)
        for (int c = 0; c < 3; c++) px[i * 3 + c] = (float)im->data[i * im->channels + c] / 255.0f * 2.0f - 1.0f;
    sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
    sdiff__tensor *x = sdiff__new4(&m->arena, r.be->act_dtype, 1, H, W, 3);
    r.be->upload(r.be, x, px, SDIFF__F32);
    sdiff__tensor *moments = sdiff__vae_encode(&r, &m->vae, x);
    float *mom = px, *mom_nchw = px + 2 * n;
    if (r.be->status == SDIFF_OK) r.be->download(r.be, moments, mom);
    sdiff__arena_release(&m->arena, mark);
    if (r.be->status != SDIFF_OK) { sdiff__free(px); return r.be->status; }
    sdiff__nhwc_to_nchw(mom_nchw, mom, 1, 2 * C, h * w);          /* [mean | logvar] on dim 1 */
    float *noise = latents;                                      /* reuse: overwritten below */
    sdiff__rng_randn(rng, noise, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        float logvar = mom_nchw[n + i];
        logvar = logvar < -30.0f ? -30.0f : logvar > 20.0f ? 20.0f : logvar;
        float sample = mom_nchw[i] + expf(0.5f * logvar) * noise[i];
        mom[i] = m->vae.cfg.scaling_factor * sample;
    }
    for (int b = 0; b < batch; b++) memcpy(latents + (size_t)b * n, mom, sizeof(float) * (size_t)n);
    sdiff__free(px);
    return SDIFF_OK;
}

/* latents (NCHW host) -> batch RGB images. */
SDIFF__PRIVATE sdiff_status sdiff__decode_images(sdiff_model *m, const float *latents, int batch, int64_t h, int64_t w,
                                                sdiff_image *out) {
    sdiff__run r = {m->ctx->be, &m->arena};
    const int64_t C = m->vae.cfg.latent, f = (int64_t)1 << (m->vae.cfg.levels - 1), H = h * f, W = w * f;
    float *z = (float *)sdiff__calloc((size_t)(C * h * w), sizeof(float));
    float *px = (float *)sdiff__calloc((size_t)(H * W * 3), sizeof(float));
    sdiff_status st = SDIFF_OK;
    if (!z || !px) st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int b = 0; b < batch && st == SDIFF_OK; b++) {   /* one at a time: the VAE's activations are large */
        const float *lb = latents + (size_t)b * C * h * w;
        float *tmp = px; /* NCHW -> NHWC with the scaling applied */
        for (int64_t i = 0; i < C * h * w; i++) tmp[i] = lb[i] / m->vae.cfg.scaling_factor;
        sdiff__nchw_to_nhwc(z, tmp, 1, C, h * w);
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        sdiff__tensor *zt = sdiff__new4(&m->arena, r.be->act_dtype, 1, h, w, C);
        r.be->upload(r.be, zt, z, SDIFF__F32);
        sdiff__tensor *img = sdiff__vae_decode(&r, &m->vae, zt);
        if (r.be->status == SDIFF_OK) r.be->download(r.be, img, px);
        sdiff__arena_release(&m->arena, mark);
        if ((st = r.be->status) != SDIFF_OK) break;
        uint8_t *data = (uint8_t *)sdiff__malloc((size_t)(H * W * 3));
        if (!data) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); break; }
        for (int64_t i = 0; i < H * W * 3; i++) {
            float v = px[i] / 2.0f + 0.5f;                          /* diffusers' denormalize */
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            data[i] = (uint8_t)lrintf(v * 255.0f);                  /* numpy round: half to even */
        }
        out[b].width = (int)W;
        out[b].height = (int)H;
        out[b].channels = 3;
        out[b].data = data;
    }
    sdiff__free(z);
    sdiff__free(px);
    return st;
}

SDIFF__PRIVATE sdiff_status sdiff__generate(sdiff_model *m, const sdiff_gen_params *p, sdiff_image *out) {
    sdiff__backend *be = m->ctx->be;
    sdiff__run r = {be, &m->arena};
    const int B = p->batch, f = 1 << (m->vae.cfg.levels - 1);
    const int64_t C = m->vae.cfg.latent, h = p->height / f, w = p->width / f, n = (int64_t)B * C * h * w;
    const bool cfg = p->cfg_scale > 1.0f;                    /* diffusers: guidance_scale > 1 */
    const int nb = cfg ? 2 * B : B;
    sdiff__sched *sched = NULL;
    sdiff__tensor *context = NULL;
    float *lat = NULL, *x_in = NULL, *eps = NULL, *noise = NULL, *tbuf = NULL;
    sdiff_status st;
    be->status = SDIFF_OK;
    sdiff__arena_release(&m->arena, (sdiff__arena_mark){0, 0, 0, 0});
    m->arena.peak = 0;

    if ((st = sdiff__sched_create(p->sampler, &m->sched, p->steps, p->eta, &sched)) != SDIFF_OK) goto done;
    if ((st = sdiff__encode_prompts(m, p, cfg, &context)) != SDIFF_OK) goto done;
    lat = (float *)sdiff__calloc((size_t)n, sizeof(float));
    x_in = (float *)sdiff__calloc((size_t)n * 2, sizeof(float));
    eps = (float *)sdiff__calloc((size_t)n * 2, sizeof(float));
    noise = (float *)sdiff__calloc((size_t)n, sizeof(float));
    tbuf = (float *)sdiff__calloc((size_t)nb, sizeof(float));
    if (!lat || !x_in || !eps || !noise || !tbuf) { st = sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); goto done; }

    sdiff__rng rng;
    sdiff__rng_seed(&rng, p->seed);
    int first = 0;
    if (p->init_image) {
        first = sdiff__sched_img2img_begin(sched, p->strength);
        if (first >= sdiff__sched_len(sched)) {
            st = sdiff__err(SDIFF_ERR_INVALID_ARG, "strength %g with %d steps leaves no step to run", (double)p->strength, p->steps);
            goto done;
        }
        if ((st = sdiff__encode_image(m, p->init_image, B, &rng, lat)) != SDIFF_OK) goto done;
        sdiff__rng_randn(&rng, noise, (size_t)n);
        sdiff__sched_add_noise(sched, first, lat, noise, (size_t)n);
    } else {
        sdiff__rng_randn(&rng, lat, (size_t)n);
        const float sigma = sdiff__sched_init_noise_sigma(sched);
        for (int64_t i = 0; i < n; i++) lat[i] *= sigma;
    }

    const int total = sdiff__sched_len(sched);
    for (int i = first; i < total; i++) {
        /* the UNet input: scale_model_input(latents), duplicated for CFG */
        memcpy(eps, lat, sizeof(float) * (size_t)n);
        sdiff__sched_scale_input(sched, i, eps, (size_t)n);
        for (int c = 0; c < (cfg ? 2 : 1); c++) sdiff__nchw_to_nhwc(x_in + (size_t)c * n, eps, B, C, h * w);
        const float t = sdiff__sched_timestep(sched, i);
        for (int b = 0; b < nb; b++) tbuf[b] = t;
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        sdiff__tensor *xt = sdiff__new4(&m->arena, be->act_dtype, nb, h, w, C);
        be->upload(be, xt, x_in, SDIFF__F32);
        sdiff__tensor *y = sdiff__unet_forward(&r, &m->unet, xt, tbuf, context);
        if (be->status == SDIFF_OK) be->download(be, y, x_in);
        sdiff__arena_release(&m->arena, mark);
        if ((st = be->status) != SDIFF_OK) goto done;
        sdiff__nhwc_to_nchw(eps, x_in, nb, C, h * w);
        if (cfg) /* uncond + scale * (text - uncond), in diffusers' order */
            for (int64_t k = 0; k < n; k++) eps[k] = eps[k] + p->cfg_scale * (eps[n + k] - eps[k]);
        sdiff__sched_step(sched, i, eps, lat, (size_t)n, &rng);
        if (p->progress && !p->progress(i - first + 1, total - first, p->progress_user)) {
            st = sdiff__err(SDIFF_ERR_CANCELLED, "cancelled at step %d of %d", i - first + 1, total - first);
            goto done;
        }
    }
    st = sdiff__decode_images(m, lat, B, h, w, out);
done:
    sdiff__sched_free(sched);
    sdiff__free(lat);
    sdiff__free(x_in);
    sdiff__free(eps);
    sdiff__free(noise);
    sdiff__free(tbuf);
    sdiff__arena_release(&m->arena, (sdiff__arena_mark){0, 0, 0, 0});
    if (st != SDIFF_OK)
        for (int b = 0; b < B; b++) sdiff_image_free(&out[b]);
    return st;
}
