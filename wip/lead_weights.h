/* >>weights ================================================================
   Weights: finding a tensor by its diffusers name, checking its shape, and
   uploading it into the model's single weight allocation

   Models ask for tensors by their diffusers names ("down_blocks.0.resnets.1.
   conv1.weight"). A diffusers folder stores exactly those names; a
   single-file checkpoint stores the original LDM names, so a key map
   translates (sdiff__ldm_name). Loading runs the model's weight-listing
   function twice: the first pass only adds up bytes, then one backend
   allocation is made, and the second pass fills it. Convolution weights are
   reordered to [Co, KH, KW, Ci] for channels-last convolution on the way.
   ========================================================================= */
typedef enum sdiff__keymap {
    SDIFF__KEYS_DIFFUSERS = 0,  /* names as diffusers writes them             */
    SDIFF__KEYS_LDM_UNET,       /* model.diffusion_model.input_blocks...      */
    SDIFF__KEYS_LDM_VAE,        /* first_stage_model.encoder.down...          */
    SDIFF__KEYS_LDM_CLIP        /* cond_stage_model.transformer.text_model... */
} sdiff__keymap;

/* Where a component's tensors come from: one or more safetensors files. */
typedef struct sdiff__wsource {
    const char *component;          /* "unet", "vae", "text_encoder" (messages) */
    sdiff__safetensors *files;
    int n_files;
    sdiff__keymap keymap;
    int ldm_layers_per_block;       /* UNet: resnets per down block            */
    int ldm_n_blocks;               /* UNet/VAE: number of resolution levels   */
} sdiff__wsource;

/* --- the LDM key map (diffusers' loaders/single_file_utils.py, inverted) */
SDIFF__PRIVATE bool sdiff__starts(const char *s, const char *prefix, const char **rest) {
    size_t n = strlen(prefix);
    if (strncmp(s, prefix, n) != 0) return false;
    if (rest) *rest = s + n;
    return true;
}
/* ResNet sub-names: diffusers -> LDM UNet ("norm1" -> "in_layers.0", ...). */
SDIFF__PRIVATE const char *sdiff__ldm_unet_resnet_part(const char *p, const char **rest) {
    static const char *const map[][2] = {{"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."},
                                          {"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."},
                                          {"time_emb_proj.", "emb_layers.1."}, {"conv_shortcut.", "skip_connection."}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sdiff__starts(p, map[i][0], rest)) return map[i][1];
    return NULL;
}
/* VAE attention sub-names: diffusers -> LDM. */
SDIFF__PRIVATE const char *sdiff__ldm_vae_attn_part(const char *p, const char **rest) {
    static const char *const map[][2] = {{"group_norm.", "norm."}, {"to_q.", "q."}, {"to_k.", "k."},
                                          {"to_v.", "v."}, {"to_out.0.", "proj_out."}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sdiff__starts(p, map[i][0], rest)) return map[i][1];
    return NULL;
}
/* Writes up to two candidate LDM names for a diffusers name (the UNet's
   upsampler sits at index 1 or 2 of its output block, depending on whether
   the block has attention). Returns how many were written (0: no mapping). */
SDIFF__PRIVATE int sdiff__ldm_name(const sdiff__wsource *src, const char *name, char out[2][256]) {
    const char *r, *part;
    int b, l, n = 0;
    char tail[200];
#define SDIFF__LDM_OUT(...) (snprintf(out[n], 256, __VA_ARGS__) < 256 ? ++n : n)
    if (src->keymap == SDIFF__KEYS_LDM_CLIP) {
        /* the text model keeps its transformers names under a prefix */
        SDIFF__LDM_OUT("cond_stage_model.transformer.%s", name);
        if (sdiff__starts(name, "text_model.", &r)) SDIFF__LDM_OUT("cond_stage_model.transformer.%s", r);
        return n;
    }
    if (src->keymap == SDIFF__KEYS_LDM_UNET) {
        const int L = src->ldm_layers_per_block;
        static const char *const direct[][2] = {
            {"time_embedding.linear_1.", "time_embed.0."}, {"time_embedding.linear_2.", "time_embed.2."},
            {"conv_in.", "input_blocks.0.0."}, {"conv_norm_out.", "out.0."}, {"conv_out.", "out.2."}};
        for (size_t i = 0; i < sizeof direct / sizeof direct[0]; i++)
            if (sdiff__starts(name, direct[i][0], &r)) { SDIFF__LDM_OUT("model.diffusion_model.%s%s", direct[i][1], r); return n; }
        if (sscanf(name, "down_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3 &&
            (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.0.%s%s", 1 + b * (L + 1) + l, part, r);
        else if (sscanf(name, "down_blocks.%d.attentions.%d.%199s", &b, &l, tail) == 3)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.1.%s", 1 + b * (L + 1) + l, tail);
        else if (sscanf(name, "down_blocks.%d.downsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("model.diffusion_model.input_blocks.%d.0.op.%s", 1 + b * (L + 1) + L, tail);
        else if (sscanf(name, "mid_block.resnets.%d.%199s", &l, tail) == 2 &&
                 (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.middle_block.%d.%s%s", 2 * l, part, r);
        else if (sscanf(name, "mid_block.attentions.%d.%199s", &l, tail) == 2)
            SDIFF__LDM_OUT("model.diffusion_model.middle_block.%d.%s", 1 + 2 * l, tail);
        else if (sscanf(name, "up_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3 &&
                 (part = sdiff__ldm_unet_resnet_part(tail, &r)) != NULL)
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.0.%s%s", b * (L + 1) + l, part, r);
        else if (sscanf(name, "up_blocks.%d.attentions.%d.%199s", &b, &l, tail) == 3)
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.1.%s", b * (L + 1) + l, tail);
        else if (sscanf(name, "up_blocks.%d.upsamplers.0.conv.%199s", &b, tail) == 2) {
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.1.conv.%s", b * (L + 1) + L, tail);
            SDIFF__LDM_OUT("model.diffusion_model.output_blocks.%d.2.conv.%s", b * (L + 1) + L, tail);
        }
        return n;
    }
    if (src->keymap == SDIFF__KEYS_LDM_VAE) {
        const char *coder = sdiff__starts(name, "encoder.", &r) ? "encoder" : sdiff__starts(name, "decoder.", &r) ? "decoder" : NULL;
        if (!coder) { SDIFF__LDM_OUT("first_stage_model.%s", name); return n; } /* quant_conv, post_quant_conv */
        const char *rest = r;
        if (sdiff__starts(rest, "conv_norm_out.", &r)) SDIFF__LDM_OUT("first_stage_model.%s.norm_out.%s", coder, r);
        else if (sscanf(rest, "down_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3) {
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.down.%d.block.%d.nin_shortcut.%s", coder, b, l, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.down.%d.block.%d.%s", coder, b, l, tail);
        }
        else if (sscanf(rest, "down_blocks.%d.downsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("first_stage_model.%s.down.%d.downsample.conv.%s", coder, b, tail);
        else if (sscanf(rest, "up_blocks.%d.resnets.%d.%199s", &b, &l, tail) == 3) {
            int lvl = src->ldm_n_blocks - 1 - b;
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.up.%d.block.%d.nin_shortcut.%s", coder, lvl, l, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.up.%d.block.%d.%s", coder, lvl, l, tail);
        } else if (sscanf(rest, "up_blocks.%d.upsamplers.0.conv.%199s", &b, tail) == 2)
            SDIFF__LDM_OUT("first_stage_model.%s.up.%d.upsample.conv.%s", coder, src->ldm_n_blocks - 1 - b, tail);
        else if (sscanf(rest, "mid_block.resnets.%d.%199s", &l, tail) == 2) {
            if (sdiff__starts(tail, "conv_shortcut.", &r))
                SDIFF__LDM_OUT("first_stage_model.%s.mid.block_%d.nin_shortcut.%s", coder, l + 1, r);
            else SDIFF__LDM_OUT("first_stage_model.%s.mid.block_%d.%s", coder, l + 1, tail);
        } else if (sscanf(rest, "mid_block.attentions.0.%199s", tail) == 1 && (part = sdiff__ldm_vae_attn_part(tail, &r)))
            SDIFF__LDM_OUT("first_stage_model.%s.mid.attn_1.%s%s", coder, part, r);
        else SDIFF__LDM_OUT("first_stage_model.%s.%s", coder, rest); /* conv_in, conv_out */
        return n;
    }
#undef SDIFF__LDM_OUT
    return 0;
}

/* The tensor stored under a diffusers name, wherever it lives. */
SDIFF__PRIVATE const sdiff__st_tensor *sdiff__wsource_find(const sdiff__wsource *src, const char *name,
                                                          char *stored_name, size_t stored_size) {
    char cand[2][256];
    int nc;
    const char *rest;
    if (src->keymap == SDIFF__KEYS_DIFFUSERS) {
        /* transformers 5 saves CLIPTextModel without its "text_model." prefix */
        snprintf(cand[0], sizeof cand[0], "%s", name);
        nc = 1;
        if (sdiff__starts(name, "text_model.", &rest)) snprintf(cand[nc++], sizeof cand[1], "%s", rest);
    } else nc = sdiff__ldm_name(src, name, cand);
    for (int c = 0; c < nc; c++)
        for (int f = 0; f < src->n_files; f++) {
            const sdiff__st_tensor *t = sdiff__st_find(&src->files[f], cand[c]);
            if (t) { snprintf(stored_name, stored_size, "%s", cand[c]); return t; }
        }
    if (nc) memcpy(stored_name, cand[0], SDIFF__MIN(stored_size, sizeof cand[0]));
    else snprintf(stored_name, stored_size, "%s", name);
    stored_name[stored_size - 1] = 0;
    return NULL;
}

/* --- the two-pass loader */
typedef struct sdiff__weights {       /* what a model component owns         */
    sdiff__backend *be;
    void *block;                        /* one backend allocation             */
    sdiff__tensor *tensors;             /* headers, one per weight            */
    size_t n_tensors;
    int64_t n_params;
} sdiff__weights;

typedef struct sdiff__wloader {
    const sdiff__wsource *src;
    sdiff__weights *w;
    bool planning;                      /* pass 1: count only                 */
    size_t bytes, n;                    /* pass 1 totals / pass 2 cursors     */
    float *scratch;                     /* host buffer for reordering         */
    size_t scratch_cap;
    sdiff_status status;                /* first failure (sticky)             */
    sdiff__tensor dummy;                /* what pass 1 and failures return    */
} sdiff__wloader;

SDIFF__PRIVATE void sdiff__weights_free(sdiff__weights *w) {
    if (w->block) w->be->free(w->be, w->block);
    sdiff__free(w->tensors);
    memset(w, 0, sizeof *w);
}
SDIFF__PRIVATE void sdiff__wl_fail(sdiff__wloader *wl, sdiff_status st, const char *fmt, ...) SDIFF__PRINTF(3, 4);
SDIFF__PRIVATE void sdiff__wl_fail(sdiff__wloader *wl, sdiff_status st, const char *fmt, ...) {
    if (wl->status != SDIFF_OK) return;
    wl->status = st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sdiff__g_error, sizeof sdiff__g_error, fmt, ap);
    va_end(ap);
}
SDIFF__PRIVATE void sdiff__shape_str(char *buf, size_t size, int nd, const int64_t *ne) {
    size_t o = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < nd && o < size; i++) o += (size_t)snprintf(buf + o, size - o, i ? ", %lld" : "%lld", (long long)ne[i]);
    if (o < size) snprintf(buf + o, size - o, "]");
}
/* Fills rows [row0, row0 + ne[0]) of t (pass 2) from the stored tensor `name`,
   whose expected shape in PyTorch's layout is nd/ne. Layout rules:
   - nd == 4 (a convolution [Co, Ci, KH, KW]) is stored as [Co, KH, KW, Ci];
   - nd == 2 also accepts a stored [N, K, 1, 1] (1x1 convolutions and the
     LDM VAE's conv-shaped attention projections are linear layers in NHWC). */
SDIFF__PRIVATE void sdiff__wl_fill(sdiff__wloader *wl, sdiff__tensor *t, int64_t row0, const char *name, int nd,
                                   const int64_t *ne) {
    char stored[256], want[96], got[96];
    const sdiff__st_tensor *st = sdiff__wsource_find(wl->src, name, stored, sizeof stored);
    if (!st) {
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "%s: missing tensor '%s'%s%s", wl->src->component, name,
                       strcmp(stored, name) ? ", stored as " : "", strcmp(stored, name) ? stored : "");
        return;
    }
    bool ok = st->nd == nd || (nd == 2 && st->nd == 4 && st->shape[2] == 1 && st->shape[3] == 1);
    for (int i = 0; ok && i < nd; i++) ok = st->shape[i] == ne[i];
    if (!ok) {
        sdiff__shape_str(want, sizeof want, nd, ne);
        sdiff__shape_str(got, sizeof got, st->nd, st->shape);
        sdiff__wl_fail(wl, SDIFF_ERR_MODEL, "%s: tensor '%s' has shape %s, expected %s", wl->src->component, stored, got, want);
        return;
    }
    if (st->dtype < 0) {
        sdiff__wl_fail(wl, SDIFF_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %s; weights must be F32, F16 or BF16",
                       wl->src->component, stored, st->dtype_name);
        return;
    }
    if (wl->planning) return;
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= ne[i];
    sdiff__backend *be = wl->w->be;
    sdiff__tensor part = *t;                                    /* rows [row0, row0+ne[0]) */
    part.nd = nd == 4 ? 4 : nd;
    for (int i = 0; i < nd; i++) part.ne[i] = ne[i];
    if (nd == 4) { part.ne[1] = ne[2]; part.ne[2] = ne[3]; part.ne[3] = ne[1]; }
    part.row_stride = part.ne[part.nd - 1];
    part.data = (char *)t->data + (size_t)(row0 * (numel / ne[0])) * sdiff__dtype_size(t->dtype);
    if (nd != 4) {
        be->upload(be, &part, st->data, (sdiff__dtype)st->dtype);
        return;
    }
    /* [Co, Ci, KH, KW] -> [Co, KH, KW, Ci] through f32 scratch */
    if ((size_t)numel > wl->scratch_cap) {
        float *s = (float *)sdiff__realloc(wl->scratch, (size_t)numel * 2 * sizeof(float));
        if (!s) { sdiff__wl_fail(wl, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory loading '%s'", stored); return; }
        wl->scratch = s;
        wl->scratch_cap = (size_t)numel;
    }
    float *src = wl->scratch, *dst = wl->scratch + numel;
    sdiff__to_f32(src, st->data, (sdiff__dtype)st->dtype, (size_t)numel);
    const int64_t co = ne[0], ci = ne[1], kk = ne[2] * ne[3];
    for (int64_t o = 0; o < co; o++)
        for (int64_t i = 0; i < ci; i++)
            for (int64_t k = 0; k < kk; k++) dst[(o * kk + k) * ci + i] = src[(o * ci + i) * kk + k];
    be->upload(be, &part, dst, SDIFF__F32);
}
/* A new weight tensor of shape ne (pass 2: in the weight block). */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_alloc(sdiff__wloader *wl, int nd, const int64_t *ne) {
    int64_t numel = 1;
    for (int i = 0; i < nd; i++) numel *= ne[i];
    size_t bytes = ((size_t)numel * sdiff__dtype_size(wl->w->be->weight_dtype) + 255) & ~(size_t)255;
    if (wl->planning || wl->status != SDIFF_OK) {
        wl->bytes += bytes;
        wl->n++;
        wl->w->n_params += numel;
        return &wl->dummy;
    }
    sdiff__tensor *t = &wl->w->tensors[wl->n++];
    t->dtype = wl->w->be->weight_dtype;
    t->nd = nd;
    for (int i = 0; i < 4; i++) t->ne[i] = i < nd ? ne[i] : 1;
    if (nd == 4) { t->ne[1] = ne[2]; t->ne[2] = ne[3]; t->ne[3] = ne[1]; }
    t->row_stride = t->ne[nd - 1];
    t->data = (char *)wl->w->block + wl->bytes;
    wl->bytes += bytes;
    return t;
}
/* The weight `name` (printf-style), of the given PyTorch shape. */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_get(sdiff__wloader *wl, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                                            const char *fmt, ...) SDIFF__PRINTF(7, 8);
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_get(sdiff__wloader *wl, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3,
                                            const char *fmt, ...) {
    char name[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(name, sizeof name, fmt, ap);
    va_end(ap);
    int64_t ne[4] = {n0, n1, n2, n3};
    sdiff__tensor *t = sdiff__wl_alloc(wl, nd, ne);
    sdiff__wl_fill(wl, t, 0, name, nd, ne);
    return t;
}
/* Several [n_i, K] weights stacked into one [sum n_i, K] tensor, so that e.g.
   q, k and v run as one matrix product. prefix + parts[i] + suffix name them. */
SDIFF__PRIVATE sdiff__tensor *sdiff__wl_stack(sdiff__wloader *wl, int n_parts, const int64_t *rows, int64_t k,
                                              const char *prefix, const char *const *parts, const char *suffix) {
    int64_t total = 0;
    for (int i = 0; i < n_parts; i++) total += rows[i];
    int64_t ne[2] = {total, k};
    sdiff__tensor *t = sdiff__wl_alloc(wl, k ? 2 : 1, ne);
    if (!k) ne[0] = total;
    int64_t row0 = 0;
    for (int i = 0; i < n_parts; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", prefix, parts[i], suffix);
        int64_t pne[2] = {rows[i], k};
        sdiff__wl_fill(wl, t, row0, name, k ? 2 : 1, pne);
        row0 += rows[i];
    }
    return t;
}
/* Runs a model's weight-listing function `list(wl, model)` twice (plan, then
   load) and leaves the weights in w. */
typedef void (*sdiff__wlist_fn)(sdiff__wloader *wl, void *model);
SDIFF__PRIVATE sdiff_status sdiff__weights_load(sdiff__backend *be, const sdiff__wsource *src, sdiff__wlist_fn list,
                                               void *model, sdiff__weights *w) {
    memset(w, 0, sizeof *w);
    w->be = be;
    sdiff__wloader wl;
    memset(&wl, 0, sizeof wl);
    wl.src = src;
    wl.w = w;
    wl.planning = true;
    wl.dummy.nd = 1;
    wl.dummy.ne[0] = 1;
    wl.dummy.row_stride = 1;
    list(&wl, model);
    if (wl.status != SDIFF_OK) return wl.status;
    w->block = be->alloc(be, wl.bytes);
    w->tensors = (sdiff__tensor *)sdiff__calloc(wl.n ? wl.n : 1, sizeof *w->tensors);
    if (!w->block || !w->tensors) {
        sdiff__weights_free(w);
        return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "%s: out of %s memory for %zu MiB of weights", src->component,
                          be->name, wl.bytes >> 20);
    }
    w->n_tensors = wl.n;
    int64_t params = w->n_params;
    wl.planning = false;
    wl.bytes = wl.n = 0;
    list(&wl, model);
    w->n_params = params;
    sdiff__free(wl.scratch);
    if (wl.status == SDIFF_OK && be->status != SDIFF_OK) wl.status = be->status;
    if (wl.status != SDIFF_OK) sdiff__weights_free(w);
    return wl.status;
}
