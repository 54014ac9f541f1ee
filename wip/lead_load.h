/* >>load ===================================================================
   Checkpoints: the context, and loading a model from a diffusers folder or a
   single-file LDM checkpoint (architecture from config.json, or detected from
   tensor names and shapes)
   ========================================================================= */
struct sdiff_ctx {
    sdiff__logger log;
    sdiff__backend *be;
};

#define SDIFF__MAX_FILES 16

struct sdiff_model {
    sdiff_ctx *ctx;
    sdiff__safetensors files[SDIFF__MAX_FILES]; /* every mapped weight file   */
    int n_files;
    sdiff__tokenizer *tokenizer;
    sdiff__clip clip;
    sdiff__unet unet;
    sdiff__vae vae;
    sdiff__sched_config sched;                  /* scheduler_config.json      */
    sdiff__arena arena;                         /* activations                */
    int max_tokens;                             /* 77                         */
    char description[256];
};

/* Maps `path` into the model's file list; returns its index or -1. */
SDIFF__PRIVATE int sdiff__model_open_file(sdiff_model *m, const char *path) {
    if (m->n_files == SDIFF__MAX_FILES) {
        sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: too many weight files (at most %d)", path, SDIFF__MAX_FILES);
        return -1;
    }
    if (sdiff__st_open(path, &m->files[m->n_files]) != SDIFF_OK) return -1;
    return m->n_files++;
}
/* A diffusers component folder's weights: `stem`.safetensors, its .fp16
   variant, or a sharded `stem`.safetensors.index.json. Fills src. */
SDIFF__PRIVATE sdiff_status sdiff__open_component(sdiff_model *m, const char *dir, const char *stem,
                                                 const char *component, sdiff__wsource *src) {
    char path[1024], name[128];
    memset(src, 0, sizeof *src);
    src->component = component;
    src->keymap = SDIFF__KEYS_DIFFUSERS;
    static const char *const variants[] = {"%s.safetensors", "%s.fp16.safetensors"};
    for (int v = 0; v < 2; v++) {
        snprintf(name, sizeof name, variants[v], stem);
        if (!sdiff__path_join(path, sizeof path, dir, name)) return sdiff__err(SDIFF_ERR_INVALID_ARG, "%s: path too long", dir);
        if (!sdiff__path_exists(path)) continue;
        int f = sdiff__model_open_file(m, path);
        if (f < 0) return sdiff_last_error()[0] ? SDIFF_ERR_FORMAT : SDIFF_ERR_IO;
        src->files = &m->files[f];
        src->n_files = 1;
        return SDIFF_OK;
    }
    /* sharded: the index's weight_map names the files */
    snprintf(name, sizeof name, "%s.safetensors.index.json", stem);
    if (!sdiff__path_join(path, sizeof path, dir, name) || !sdiff__path_exists(path))
        return sdiff__err(SDIFF_ERR_IO, "%s: no %s.safetensors (pickled .bin weights are not read: they can run code)", dir, stem);
    sdiff__json *index;
    SDIFF__TRY(sdiff__json_load(path, &index));
    const sdiff__json *map = sdiff__json_get(index, "weight_map");
    sdiff_status st = SDIFF_OK;
    int first = m->n_files;
    if (!map || map->type != SDIFF__JSON_OBJECT) st = sdiff__err(SDIFF_ERR_FORMAT, "%s: no weight_map", path);
    for (size_t i = 0; st == SDIFF_OK && map && i < map->count; i++) {
        const sdiff__json *file = &map->items[i];
        if (file->type != SDIFF__JSON_STRING || strchr(file->string, '/') || strstr(file->string, "..")) {
            st = sdiff__err(SDIFF_ERR_FORMAT, "%s: invalid shard name", path);
            break;
        }
        bool seen = false;
        for (int f = first; f < m->n_files; f++) seen |= strcmp(strrchr(m->files[f].path, '/') + 1, file->string) == 0;
        if (seen) continue;
        char shard[1024];
        if (!sdiff__path_join(shard, sizeof shard, dir, file->string)) st = sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        else if (sdiff__model_open_file(m, shard) < 0) st = SDIFF_ERR_FORMAT;
    }
    sdiff__json_free(index);
    src->files = &m->files[first];
    src->n_files = m->n_files - first;
    return st;
}
/* Reads dir/sub/config.json. */
SDIFF__PRIVATE sdiff_status sdiff__load_config(const char *dir, const char *sub, sdiff__json **out) {
    char path[1024];
    if (snprintf(path, sizeof path, "%s/%s", dir, sub) >= (int)sizeof path)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "%s: path too long", dir);
    return sdiff__json_load(path, out);
}

/* --- architecture from tensor names and shapes (single-file checkpoints) */
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_findf(const sdiff__safetensors *st, const char *fmt, ...) SDIFF__PRINTF(2, 3);
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__st_findf(const sdiff__safetensors *st, const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    return sdiff__st_find(st, name);
}
/* SD 1.x/2.x UNet config from LDM names, the way diffusers'
   create_unet_diffusers_config_from_ldm reads the original yaml. */
SDIFF__PRIVATE sdiff_status sdiff__detect_unet(const sdiff__safetensors *st, sdiff__unet_config *c) {
    const char *P = "model.diffusion_model.";
    memset(c, 0, sizeof *c);
    const sdiff__st_tensor *t = sdiff__st_findf(st, "%sinput_blocks.0.0.weight", P), *o = sdiff__st_findf(st, "%sout.2.weight", P);
    if (!t || t->nd != 4 || !o || o->nd != 4)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: not a Stable Diffusion checkpoint (no %sinput_blocks.0.0.weight)", st->path, P);
    c->in_channels = (int)t->shape[1];
    c->out_channels = (int)o->shape[0];
    /* layers per block: input blocks before the first downsampler */
    int first_op = 0;
    for (int i = 1; i < 64 && !first_op; i++)
        if (sdiff__st_findf(st, "%sinput_blocks.%d.0.op.weight", P, i)) first_op = i;
    if (!first_op) return sdiff__err(SDIFF_ERR_MODEL, "%s: no downsampler found in the UNet", st->path);
    c->layers_per_block = first_op - 1;
    int n_in = 1; /* block 0 is conv_in; then resnets and downsamplers */
    while (n_in < 64 && (sdiff__st_findf(st, "%sinput_blocks.%d.0.op.weight", P, n_in) ||
                         sdiff__st_findf(st, "%sinput_blocks.%d.0.out_layers.3.weight", P, n_in)))
        n_in++;
    const int L = c->layers_per_block;
    if (L < 1 || L > SDIFF__MAX_RESNETS || n_in % (L + 1) != 0 || (n_in / (L + 1)) > SDIFF__MAX_LEVELS)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised UNet layout (%d input blocks)", st->path, n_in);
    c->levels = n_in / (L + 1);
    c->cross_dim = 0;
    for (int i = 0; i < c->levels; i++) {
        int blk = 1 + i * (L + 1);
        const sdiff__st_tensor *r = sdiff__st_findf(st, "%sinput_blocks.%d.0.out_layers.3.weight", P, blk);
        if (!r) return sdiff__err(SDIFF_ERR_MODEL, "%s: missing resnet weights in input block %d", st->path, blk);
        c->ch[i] = (int)r->shape[0];
        const sdiff__st_tensor *pin = sdiff__st_findf(st, "%sinput_blocks.%d.1.proj_in.weight", P, blk);
        c->down_attn[i] = c->up_attn[c->levels - 1 - i] = pin != NULL;
        if (pin) {
            c->linear_proj = pin->nd == 2;
            const sdiff__st_tensor *k = sdiff__st_findf(st, "%sinput_blocks.%d.1.transformer_blocks.0.attn2.to_k.weight", P, blk);
            if (k) c->cross_dim = (int)k->shape[1];
            int d = 0;
            while (d < SDIFF__MAX_DEPTH && sdiff__st_findf(st, "%sinput_blocks.%d.1.transformer_blocks.%d.norm1.weight", P, blk, d)) d++;
            c->depth[i] = d;
        }
    }
    if (!c->cross_dim) return sdiff__err(SDIFF_ERR_MODEL, "%s: UNet has no cross-attention", st->path);
    int top = c->levels - 1, d = 0;
    while (d < SDIFF__MAX_DEPTH && sdiff__st_findf(st, "%smiddle_block.1.transformer_blocks.%d.norm1.weight", P, d)) d++;
    for (int i = 0; i < c->levels; i++) {
        if (!c->depth[i]) c->depth[i] = d ? d : 1;
        /* SD 1.x: 8 heads everywhere; SD 2.x (1024-wide context): 64-wide heads */
        c->heads[i] = c->cross_dim == 768 ? 8 : c->ch[i] / 64;
    }
    c->depth[top] = d ? d : c->depth[top];
    c->groups = 32;
    c->eps = 1e-5f;
    c->flip_sin_to_cos = true;
    c->freq_shift = 0;
    c->sample_size = 64;
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__detect_vae(const sdiff__safetensors *st, sdiff__vae_config *c) {
    const char *P = "first_stage_model.";
    memset(c, 0, sizeof *c);
    const sdiff__st_tensor *in = sdiff__st_findf(st, "%sencoder.conv_in.weight", P),
                           *dz = sdiff__st_findf(st, "%sdecoder.conv_in.weight", P),
                           *out = sdiff__st_findf(st, "%sdecoder.conv_out.weight", P);
    if (!in || !dz || !out || in->nd != 4 || dz->nd != 4 || out->nd != 4)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: no VAE (%sencoder/decoder) in the checkpoint", st->path, P);
    c->in_channels = (int)in->shape[1];
    c->out_channels = (int)out->shape[0];
    c->latent = (int)dz->shape[1];
    while (c->levels < SDIFF__MAX_LEVELS) {
        const sdiff__st_tensor *r = sdiff__st_findf(st, "%sencoder.down.%d.block.0.conv1.weight", P, c->levels);
        if (!r) break;
        c->ch[c->levels++] = (int)r->shape[0];
    }
    while (c->layers_per_block < SDIFF__MAX_RESNETS && sdiff__st_findf(st, "%sencoder.down.0.block.%d.conv1.weight", P, c->layers_per_block))
        c->layers_per_block++;
    if (!c->levels || !c->layers_per_block) return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised VAE layout", st->path);
    c->groups = 32;
    c->sample_size = 512;
    c->scaling_factor = 0.18215f;
    c->quant_conv = sdiff__st_findf(st, "%squant_conv.weight", P) != NULL;
    c->post_quant_conv = sdiff__st_findf(st, "%spost_quant_conv.weight", P) != NULL;
    c->mid_attention = sdiff__st_findf(st, "%sencoder.mid.attn_1.q.weight", P) != NULL;
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__detect_clip(const sdiff__safetensors *st, sdiff__clip_config *c) {
    char pre[96] = "cond_stage_model.transformer.text_model.";
    const sdiff__st_tensor *tok = sdiff__st_findf(st, "%sembeddings.token_embedding.weight", pre);
    if (!tok) {
        snprintf(pre, sizeof pre, "cond_stage_model.transformer.");
        tok = sdiff__st_findf(st, "%sembeddings.token_embedding.weight", pre);
    }
    if (!tok) {
        if (sdiff__st_find(st, "cond_stage_model.model.token_embedding.weight"))
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: an SD 2.x single-file checkpoint (OpenCLIP text encoder): load its "
                              "diffusers folder instead", st->path);
        return sdiff__err(SDIFF_ERR_MODEL, "%s: no CLIP text encoder (cond_stage_model.transformer.*)", st->path);
    }
    const sdiff__st_tensor *pos = sdiff__st_findf(st, "%sembeddings.position_embedding.weight", pre),
                           *fc1 = sdiff__st_findf(st, "%sencoder.layers.0.mlp.fc1.weight", pre);
    if (tok->nd != 2 || !pos || pos->nd != 2 || !fc1 || fc1->nd != 2)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: unrecognised text encoder layout", st->path);
    c->vocab = (int)tok->shape[0];
    c->hidden = (int)tok->shape[1];
    c->max_positions = (int)pos->shape[0];
    c->intermediate = (int)fc1->shape[0];
    c->heads = c->hidden >= 64 ? c->hidden / 64 : 1; /* CLIP-L: 12 heads of 64 */
    c->layers = 0;
    while (c->layers < SDIFF__MAX_LAYERS && sdiff__st_findf(st, "%sencoder.layers.%d.mlp.fc1.weight", pre, c->layers)) c->layers++;
    c->eps = 1e-5f;
    c->act = SDIFF__ACT_QUICK_GELU;
    if (c->heads < 1) return sdiff__err(SDIFF_ERR_MODEL, "%s: text encoder too narrow", st->path);
    return SDIFF_OK;
}

SDIFF__PRIVATE void sdiff__model_release(sdiff_model *m) {
    if (!m) return;
    sdiff__weights_free(&m->clip.weights);
    sdiff__weights_free(&m->unet.weights);
    sdiff__weights_free(&m->vae.weights);
    sdiff__arena_free(&m->arena);
    for (int i = 0; i < m->n_files; i++) sdiff__st_close(&m->files[i]);
    if (m->tokenizer) sdiff__tokenizer_free(m->tokenizer);
    sdiff__free(m);
}
/* Configs of a diffusers folder: model_index.json must name an SD pipeline. */
SDIFF__PRIVATE sdiff_status sdiff__read_configs(sdiff_model *m, const char *dir) {
    sdiff__json *j = NULL;
    sdiff_status st;
    char what[1024];
#define SDIFF__CFG(sub, parse, dst)                                                   \
    do {                                                                             \
        snprintf(what, sizeof what, "%s/%s", dir, sub);                              \
        SDIFF__TRY(sdiff__json_load(what, &j));                                      \
        st = parse(j, what, dst);                                                    \
        sdiff__json_free(j);                                                         \
        if (st != SDIFF_OK) return st;                                               \
    } while (0)
    SDIFF__CFG("text_encoder/config.json", sdiff__clip_config_parse, &m->clip.cfg);
    SDIFF__CFG("unet/config.json", sdiff__unet_config_parse, &m->unet.cfg);
    SDIFF__CFG("vae/config.json", sdiff__vae_config_parse, &m->vae.cfg);
    SDIFF__CFG("scheduler/scheduler_config.json", sdiff__sched_config_from_json, &m->sched);
#undef SDIFF__CFG
    return SDIFF_OK;
}
/* Checks the parts fit together: the UNet's context width is the text
   encoder's, its in/out channels are the VAE's latents. */
SDIFF__PRIVATE sdiff_status sdiff__check_parts(const sdiff_model *m, const char *path) {
    if (m->unet.cfg.cross_dim != m->clip.cfg.hidden)
        return sdiff__err(SDIFF_ERR_MODEL, "%s: the UNet expects %d-wide text embeddings but the text encoder gives %d",
                          path, m->unet.cfg.cross_dim, m->clip.cfg.hidden);
    if (m->unet.cfg.in_channels != m->vae.cfg.latent || m->unet.cfg.out_channels != m->vae.cfg.latent)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: UNet with %d input channels over %d latent channels "
                          "(inpainting UNets are not supported yet)", path, m->unet.cfg.in_channels, m->vae.cfg.latent);
    if (m->vae.cfg.in_channels != 3 || m->vae.cfg.out_channels != 3)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: the VAE must map RGB images", path);
    return SDIFF_OK;
}
SDIFF__PRIVATE sdiff_status sdiff__model_load(sdiff_ctx *ctx, const char *path, const sdiff_load_params *lp, sdiff_model *m) {
    sdiff__wsource clip_src, unet_src, vae_src;
    char buf[1024];
    const bool folder = sdiff__is_dir(path);
    if (folder) {
        sdiff__json *index;
        if (!sdiff__path_join(buf, sizeof buf, path, "model_index.json")) return sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        SDIFF__TRY(sdiff__json_load(buf, &index));
        const char *cls = sdiff__json_string(index, "_class_name", "");
        bool ok = strcmp(cls, "StableDiffusionPipeline") == 0 || strcmp(cls, "StableDiffusionImg2ImgPipeline") == 0;
        sdiff_status st = ok ? SDIFF_OK : sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: pipeline '%s' is not supported (SD 1.x/2.x: StableDiffusionPipeline)", buf, cls);
        sdiff__json_free(index);
        SDIFF__TRY(st);
        SDIFF__TRY(sdiff__read_configs(m, path));
        if (!sdiff__path_join(buf, sizeof buf, path, "tokenizer")) return sdiff__err(SDIFF_ERR_INVALID_ARG, "path too long");
        SDIFF__TRY(sdiff__tokenizer_load_dir(buf, &m->tokenizer));
        snprintf(buf, sizeof buf, "%s/text_encoder", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "model", "text_encoder", &clip_src));
        snprintf(buf, sizeof buf, "%s/unet", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "diffusion_pytorch_model", "unet", &unet_src));
        snprintf(buf, sizeof buf, "%s/vae", path);
        SDIFF__TRY(sdiff__open_component(m, buf, "diffusion_pytorch_model", "vae", &vae_src));
    } else {
        int f = sdiff__model_open_file(m, path);
        if (f < 0) return sdiff__path_exists(path) ? SDIFF_ERR_FORMAT : SDIFF_ERR_IO;
        const sdiff__safetensors *st = &m->files[f];
        if (lp->config_dir) SDIFF__TRY(sdiff__read_configs(m, lp->config_dir));
        else {
            SDIFF__TRY(sdiff__detect_unet(st, &m->unet.cfg));
            SDIFF__TRY(sdiff__detect_vae(st, &m->vae.cfg));
            SDIFF__TRY(sdiff__detect_clip(st, &m->clip.cfg));
            sdiff__sched_config_default(&m->sched);
        }
        /* the tokenizer: explicit path, the config folder's, built in, or beside the file */
        const char *tp = lp->tokenizer_path;
        if (!tp && lp->config_dir && sdiff__path_join(buf, sizeof buf, lp->config_dir, "tokenizer")) tp = buf;
        if (tp && sdiff__is_dir(tp)) SDIFF__TRY(sdiff__tokenizer_load_dir(tp, &m->tokenizer));
        else if (tp) SDIFF__TRY(sdiff__tokenizer_load_bpe_file(tp, &m->tokenizer));
        else if (sdiff__tokenizer_load_builtin(&m->tokenizer) != SDIFF_OK) {
            const char *slash = strrchr(path, '/');
            snprintf(buf, sizeof buf, "%.*sbpe_simple_vocab_16e6.txt.gz", slash ? (int)(slash - path + 1) : 0, path);
            if (!sdiff__path_exists(buf))
                return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: a single-file checkpoint needs the CLIP vocabulary: include "
                                  "sdiff_clip_vocab.h, or set sdiff_load_params.tokenizer_path or config_dir", path);
            SDIFF__TRY(sdiff__tokenizer_load_bpe_file(buf, &m->tokenizer));
        }
        memset(&clip_src, 0, sizeof clip_src);
        clip_src.component = "text_encoder";
        clip_src.files = &m->files[f];
        clip_src.n_files = 1;
        clip_src.keymap = SDIFF__KEYS_LDM_CLIP;
        unet_src = vae_src = clip_src;
        unet_src.component = "unet";
        unet_src.keymap = SDIFF__KEYS_LDM_UNET;
        unet_src.ldm_layers_per_block = m->unet.cfg.layers_per_block;
        unet_src.ldm_n_blocks = m->unet.cfg.levels;
        vae_src.component = "vae";
        vae_src.keymap = SDIFF__KEYS_LDM_VAE;
        vae_src.ldm_n_blocks = m->vae.cfg.levels;
    }
    SDIFF__TRY(sdiff__check_parts(m, path));
    m->max_tokens = m->clip.cfg.max_positions < 77 ? m->clip.cfg.max_positions : 77;
    SDIFF__TRY(sdiff__weights_load(ctx->be, &clip_src, sdiff__clip_weights, &m->clip, &m->clip.weights));
    SDIFF__TRY(sdiff__weights_load(ctx->be, &unet_src, sdiff__unet_weights, &m->unet, &m->unet.weights));
    SDIFF__TRY(sdiff__weights_load(ctx->be, &vae_src, sdiff__vae_weights, &m->vae, &m->vae.weights));
    snprintf(m->description, sizeof m->description,
             "SD %s (%s; UNet %.1fM, text encoder %.1fM, VAE %.1fM params; %s; %s backend)",
             m->clip.cfg.hidden == 1024 ? "2.x" : "1.x", folder ? "diffusers folder" : "single file",
             (double)m->unet.weights.n_params / 1e6, (double)m->clip.weights.n_params / 1e6,
             (double)m->vae.weights.n_params / 1e6, sdiff__sched_prediction_name(&m->sched), ctx->be->name);
    sdiff__arena_init(&m->arena, ctx->be, (size_t)64 << 20);
    return SDIFF_OK;
}
