/* >>layers =================================================================
   Layers shared by the models: small helpers that allocate an output in the
   arena and call one op, so a forward pass reads like the PyTorch module.
   ========================================================================= */
typedef struct sdiff__run {
    sdiff__backend *be;
    sdiff__arena *ar;
} sdiff__run;

/* The same leading shape as x, with the last dimension set to c. */
SDIFF__PRIVATE sdiff__tensor *sdiff__like(sdiff__run *r, const sdiff__tensor *x, int64_t c) {
    int64_t ne[4] = {x->ne[0], x->ne[1], x->ne[2], x->ne[3]};
    ne[x->nd - 1] = c;
    return sdiff__new(r->ar, r->be->act_dtype, x->nd, ne[0], ne[1], ne[2], ne[3]);
}
/* x @ w^T + b (w: [N, K]); act and residual optional. */
SDIFF__PRIVATE sdiff__tensor *sdiff__linear(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *w,
                                            const sdiff__tensor *b, sdiff__act act, const sdiff__tensor *res) {
    sdiff__tensor *y = sdiff__like(r, x, w->ne[0]);
    r->be->linear(r->be, y, x, w, b, act, res);
    return y;
}
/* NHWC convolution with "same"-style padding k/2 unless told otherwise. */
SDIFF__PRIVATE sdiff__tensor *sdiff__conv(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *w,
                                          const sdiff__tensor *b, int stride, int pad, const sdiff__tensor *res) {
    int64_t kh = w->ne[1], kw = w->ne[2];
    int64_t ho = (x->ne[1] + 2 * pad - kh) / stride + 1, wo = (x->ne[2] + 2 * pad - kw) / stride + 1;
    sdiff__tensor *y = sdiff__new4(r->ar, r->be->act_dtype, x->ne[0], ho, wo, w->ne[0]);
    r->be->conv2d(r->be, y, x, w, b, stride, pad, res);
    return y;
}
SDIFF__PRIVATE sdiff__tensor *sdiff__group_norm(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *g,
                                                const sdiff__tensor *b, int groups, float eps, bool silu) {
    sdiff__tensor *y = sdiff__like(r, x, sdiff__cols(x));
    r->be->group_norm(r->be, y, x, g, b, groups, eps, silu);
    return y;
}
SDIFF__PRIVATE sdiff__tensor *sdiff__layer_norm(sdiff__run *r, const sdiff__tensor *x, const sdiff__tensor *g,
                                                const sdiff__tensor *b, float eps) {
    sdiff__tensor *y = sdiff__like(r, x, sdiff__cols(x));
    r->be->layer_norm(r->be, y, x, g, b, eps);
    return y;
}
/* Attention over column views of packed projections: q from `qsrc` columns
   [0, C), k and v from `kvsrc` columns [koff, koff+C) and [voff, voff+C). */
SDIFF__PRIVATE sdiff__tensor *sdiff__attention(sdiff__run *r, const sdiff__tensor *qsrc, const sdiff__tensor *kvsrc,
                                               int64_t c, int64_t koff, int64_t voff, int heads, bool causal) {
    sdiff__tensor *q = sdiff__view_cols(r->ar, qsrc, 0, c);
    sdiff__tensor *k = sdiff__view_cols(r->ar, kvsrc, koff, c);
    sdiff__tensor *v = sdiff__view_cols(r->ar, kvsrc, voff, c);
    sdiff__tensor *o = sdiff__like(r, qsrc, c);
    r->be->attention(r->be, o, q, k, v, heads, causal);
    return o;
}
/* Reads an int or a list of ints from a config (diffusers writes either). */
SDIFF__PRIVATE int sdiff__cfg_ints(const sdiff__json *cfg, const char *key, int *out, int max, int fallback) {
    const sdiff__json *v = sdiff__json_get(cfg, key);
    if (v && v->type == SDIFF__JSON_ARRAY) {
        int n = (int)SDIFF__MIN(v->count, (size_t)max);
        for (int i = 0; i < n; i++) out[i] = v->items[i].type == SDIFF__JSON_NUMBER ? (int)v->items[i].number : fallback;
        return n;
    }
    int x = v && v->type == SDIFF__JSON_NUMBER ? (int)v->number : fallback;
    for (int i = 0; i < max; i++) out[i] = x;
    return 0;
}
/* Config integers must be sane before they size anything. */
SDIFF__PRIVATE bool sdiff__in_range(double x, double lo, double hi) { return x >= lo && x <= hi; }

/* >>clip ===================================================================
   Model: CLIP text encoder (transformers' CLIPTextModel)
     x = token_embedding[ids] + position_embedding[0..L)
     for each layer:  x += out_proj(attn(ln1(x), causal))
                      x += fc2(act(fc1(ln2(x))))      act: quick_gelu or gelu
     final_layer_norm(x)
   ========================================================================= */
#define SDIFF__MAX_LAYERS 64

typedef struct sdiff__clip_config {
    int vocab, hidden, intermediate, heads, layers, max_positions;
    float eps;
    sdiff__act act;
} sdiff__clip_config;

typedef struct sdiff__clip_layer {
    sdiff__tensor *ln1_g, *ln1_b, *qkv_w, *qkv_b, *out_w, *out_b, *ln2_g, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} sdiff__clip_layer;

typedef struct sdiff__clip {
    sdiff__clip_config cfg;
    sdiff__weights weights;
    sdiff__tensor *tok_emb, *pos_emb, *final_g, *final_b;
    sdiff__clip_layer layer[SDIFF__MAX_LAYERS];
} sdiff__clip;

SDIFF__PRIVATE sdiff_status sdiff__clip_config_parse(const sdiff__json *j, const char *what, sdiff__clip_config *c) {
    c->vocab = (int)sdiff__json_number(j, "vocab_size", 49408);
    c->hidden = (int)sdiff__json_number(j, "hidden_size", 768);
    c->intermediate = (int)sdiff__json_number(j, "intermediate_size", 3072);
    c->heads = (int)sdiff__json_number(j, "num_attention_heads", 12);
    c->layers = (int)sdiff__json_number(j, "num_hidden_layers", 12);
    c->max_positions = (int)sdiff__json_number(j, "max_position_embeddings", 77);
    c->eps = (float)sdiff__json_number(j, "layer_norm_eps", 1e-5);
    const char *act = sdiff__json_string(j, "hidden_act", "quick_gelu");
    if (strcmp(act, "quick_gelu") == 0) c->act = SDIFF__ACT_QUICK_GELU;
    else if (strcmp(act, "gelu") == 0) c->act = SDIFF__ACT_GELU;
    else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: hidden_act '%s' is not supported", what, act);
    if (!sdiff__in_range(c->vocab, 1, 1 << 20) || !sdiff__in_range(c->hidden, 1, 1 << 14) ||
        !sdiff__in_range(c->intermediate, 1, 1 << 16) || !sdiff__in_range(c->heads, 1, 256) ||
        c->hidden % c->heads != 0 || !sdiff__in_range(c->layers, 1, SDIFF__MAX_LAYERS) ||
        !sdiff__in_range(c->max_positions, 1, 4096))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: text encoder sizes are out of range", what);
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__clip_weights(sdiff__wloader *wl, void *model) {
    sdiff__clip *m = (sdiff__clip *)model;
    const int64_t H = m->cfg.hidden, I = m->cfg.intermediate;
    static const char *const qkv[] = {"q_proj", "k_proj", "v_proj"};
    const int64_t rows[3] = {H, H, H};
    m->tok_emb = sdiff__wl_get(wl, 2, m->cfg.vocab, H, 0, 0, "text_model.embeddings.token_embedding.weight");
    m->pos_emb = sdiff__wl_get(wl, 2, m->cfg.max_positions, H, 0, 0, "text_model.embeddings.position_embedding.weight");
    for (int i = 0; i < m->cfg.layers; i++) {
        sdiff__clip_layer *l = &m->layer[i];
        char p[96];
        snprintf(p, sizeof p, "text_model.encoder.layers.%d.", i);
        l->ln1_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm1.weight", p);
        l->ln1_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm1.bias", p);
        char sp[128];
        snprintf(sp, sizeof sp, "%sself_attn.", p);
        l->qkv_w = sdiff__wl_stack(wl, 3, rows, H, sp, qkv, ".weight");
        l->qkv_b = sdiff__wl_stack(wl, 3, rows, 0, sp, qkv, ".bias");
        l->out_w = sdiff__wl_get(wl, 2, H, H, 0, 0, "%sself_attn.out_proj.weight", p);
        l->out_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%sself_attn.out_proj.bias", p);
        l->ln2_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm2.weight", p);
        l->ln2_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%slayer_norm2.bias", p);
        l->fc1_w = sdiff__wl_get(wl, 2, I, H, 0, 0, "%smlp.fc1.weight", p);
        l->fc1_b = sdiff__wl_get(wl, 1, I, 0, 0, 0, "%smlp.fc1.bias", p);
        l->fc2_w = sdiff__wl_get(wl, 2, H, I, 0, 0, "%smlp.fc2.weight", p);
        l->fc2_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "%smlp.fc2.bias", p);
    }
    m->final_g = sdiff__wl_get(wl, 1, H, 0, 0, 0, "text_model.final_layer_norm.weight");
    m->final_b = sdiff__wl_get(wl, 1, H, 0, 0, 0, "text_model.final_layer_norm.bias");
}
/* ids: [batch, seq] token ids. clip_skip: 0/1 = last layer, 2 = penultimate,
   ... (A1111's numbering; diffusers' clip_skip is one less). Returns the
   hidden states [batch, seq, hidden] after the final layer norm. */
SDIFF__PRIVATE sdiff__tensor *sdiff__clip_forward(sdiff__run *r, const sdiff__clip *m, const int32_t *ids, int batch,
                                                  int seq, int clip_skip) {
    const int64_t H = m->cfg.hidden, rows = (int64_t)batch * seq;
    int n_layers = m->cfg.layers - (clip_skip > 1 ? clip_skip - 1 : 0);
    if (n_layers < 1) n_layers = 1;
    sdiff__tensor *out = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    int32_t *pos = (int32_t *)sdiff__calloc((size_t)rows, sizeof *pos);
    if (!pos) {
        sdiff__be_fail(r->be, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory");
        return out;
    }
    for (int64_t i = 0; i < rows; i++) pos[i] = (int32_t)(i % seq);
    sdiff__tensor *x = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    sdiff__tensor *p = sdiff__new3(r->ar, r->be->act_dtype, batch, seq, H);
    r->be->embed(r->be, x, m->tok_emb, ids, (int)rows);
    r->be->embed(r->be, p, m->pos_emb, pos, (int)rows);
    r->be->add(r->be, x, x, p);
    sdiff__free(pos);
    for (int i = 0; i < n_layers; i++) {
        const sdiff__clip_layer *l = &m->layer[i];
        sdiff__arena_mark lm = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *h = sdiff__layer_norm(r, x, l->ln1_g, l->ln1_b, m->cfg.eps);
        sdiff__tensor *qkv = sdiff__linear(r, h, l->qkv_w, l->qkv_b, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, H, H, 2 * H, m->cfg.heads, true);
        sdiff__tensor *x1 = sdiff__linear(r, a, l->out_w, l->out_b, SDIFF__ACT_NONE, x);
        h = sdiff__layer_norm(r, x1, l->ln2_g, l->ln2_b, m->cfg.eps);
        sdiff__tensor *f = sdiff__linear(r, h, l->fc1_w, l->fc1_b, m->cfg.act, NULL);
        /* the layer's result goes straight back into x (x itself is not an input here) */
        r->be->linear(r->be, x, f, l->fc2_w, l->fc2_b, SDIFF__ACT_NONE, x1);
        sdiff__arena_release(r->ar, lm);
    }
    r->be->layer_norm(r->be, out, x, m->final_g, m->final_b, m->cfg.eps);
    sdiff__arena_release(r->ar, mark);
    return out;
}

/* >>unet ===================================================================
   Model: UNet2DConditionModel (SD 1.x / 2.x)
     temb = linear_2(silu(linear_1(sinusoid(t))))
     h = conv_in(x);                          skips = [h]
     down blocks: (resnet -> transformer?) x L, each pushed to skips; then a
                  stride-2 conv (not on the last level), pushed too
     mid block:   resnet, transformer, resnet
     up blocks:   (concat(h, skips.pop()) -> resnet -> transformer?) x (L+1),
                  then nearest upsample to the next skip's size + conv
     out = conv_out(silu(group_norm(h)))
   A resnet:      h = conv1(silu(gn1(x))) + time_emb_proj(silu(temb))
                  y = conv2(silu(gn2(h))) + shortcut(x)
   A transformer: h = proj_in(gn(x)); per block: h += attn1(ln1(h));
                  h += attn2(ln2(h), context); h += ff(ln3(h)) (GEGLU);
                  y = proj_out(h) + x
   "attention_head_dim" in SD configs is really the number of heads (a
   diffusers naming quirk kept for compatibility): heads = that value,
   head size = channels / heads.
   ========================================================================= */
#define SDIFF__MAX_LEVELS 6
#define SDIFF__MAX_RESNETS 4
#define SDIFF__MAX_DEPTH 10

typedef struct sdiff__resnet {
    int64_t in, out;
    sdiff__tensor *norm1_g, *norm1_b, *conv1_w, *conv1_b, *temb_w, *temb_b, *norm2_g, *norm2_b, *conv2_w, *conv2_b,
        *short_w, *short_b;
} sdiff__resnet;

typedef struct sdiff__tblock {
    sdiff__tensor *ln1_g, *ln1_b, *qkv_w, *out1_w, *out1_b;           /* self-attention  */
    sdiff__tensor *ln2_g, *ln2_b, *q2_w, *kv2_w, *out2_w, *out2_b;    /* cross-attention */
    sdiff__tensor *ln3_g, *ln3_b, *ff1_w, *ff1_b, *ff2_w, *ff2_b;     /* GEGLU FFN       */
} sdiff__tblock;

typedef struct sdiff__transformer {
    int64_t ch;
    int heads, depth;
    sdiff__tensor *norm_g, *norm_b, *proj_in_w, *proj_in_b, *proj_out_w, *proj_out_b;
    sdiff__tblock block[SDIFF__MAX_DEPTH];
} sdiff__transformer;

typedef struct sdiff__unet_config {
    int in_channels, out_channels, levels, layers_per_block, cross_dim, groups, sample_size;
    int ch[SDIFF__MAX_LEVELS], heads[SDIFF__MAX_LEVELS], depth[SDIFF__MAX_LEVELS];
    bool down_attn[SDIFF__MAX_LEVELS], up_attn[SDIFF__MAX_LEVELS], linear_proj, flip_sin_to_cos;
    float eps, freq_shift;
} sdiff__unet_config;

typedef struct sdiff__unet {
    sdiff__unet_config cfg;
    sdiff__weights weights;
    sdiff__tensor *time1_w, *time1_b, *time2_w, *time2_b, *conv_in_w, *conv_in_b, *norm_out_g, *norm_out_b, *conv_out_w,
        *conv_out_b;
    sdiff__resnet down_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS], up_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__transformer down_tf[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS], up_tf[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__tensor *down_w[SDIFF__MAX_LEVELS], *down_b[SDIFF__MAX_LEVELS], *up_w[SDIFF__MAX_LEVELS], *up_b[SDIFF__MAX_LEVELS];
    sdiff__resnet mid_res[2];
    sdiff__transformer mid_tf;
} sdiff__unet;

SDIFF__PRIVATE sdiff_status sdiff__unet_config_parse(const sdiff__json *j, const char *what, sdiff__unet_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = (int)sdiff__json_number(j, "in_channels", 4);
    c->out_channels = (int)sdiff__json_number(j, "out_channels", 4);
    c->layers_per_block = (int)sdiff__json_number(j, "layers_per_block", 2);
    c->cross_dim = (int)sdiff__json_number(j, "cross_attention_dim", 768);
    c->groups = (int)sdiff__json_number(j, "norm_num_groups", 32);
    c->eps = (float)sdiff__json_number(j, "norm_eps", 1e-5);
    c->sample_size = (int)sdiff__json_number(j, "sample_size", 64);
    c->linear_proj = sdiff__json_bool(j, "use_linear_projection", false);
    c->flip_sin_to_cos = sdiff__json_bool(j, "flip_sin_to_cos", true);
    c->freq_shift = (float)sdiff__json_number(j, "freq_shift", 0);
    c->levels = sdiff__cfg_ints(j, "block_out_channels", c->ch, SDIFF__MAX_LEVELS, 0);
    const sdiff__json *down = sdiff__json_get(j, "down_block_types"), *up = sdiff__json_get(j, "up_block_types");
    if (c->levels < 1 || !down || down->type != SDIFF__JSON_ARRAY || !up || up->type != SDIFF__JSON_ARRAY ||
        down->count != (size_t)c->levels || up->count != (size_t)c->levels)
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels, down_block_types and up_block_types must be lists "
                          "of the same length (1..%d)", what, SDIFF__MAX_LEVELS);
    for (int i = 0; i < c->levels; i++) {
        const char *d = down->items[i].type == SDIFF__JSON_STRING ? down->items[i].string : "";
        const char *u = up->items[i].type == SDIFF__JSON_STRING ? up->items[i].string : "";
        if (strcmp(d, "CrossAttnDownBlock2D") == 0) c->down_attn[i] = true;
        else if (strcmp(d, "DownBlock2D") != 0)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: down block type '%s' is not supported", what, d);
        if (strcmp(u, "CrossAttnUpBlock2D") == 0) c->up_attn[i] = true;
        else if (strcmp(u, "UpBlock2D") != 0)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: up block type '%s' is not supported", what, u);
        if (!sdiff__in_range(c->ch[i], 1, 1 << 14) || c->ch[i] % c->groups != 0)
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels[%d] = %d is invalid for %d groups", what, i, c->ch[i], c->groups);
    }
    const char *mid = sdiff__json_string(j, "mid_block_type", "UNetMidBlock2DCrossAttn");
    if (strcmp(mid, "UNetMidBlock2DCrossAttn") != 0)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: mid block type '%s' is not supported", what, mid);
    const sdiff__json *nah = sdiff__json_get(j, "num_attention_heads");
    if (nah && nah->type != SDIFF__JSON_NULL)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: num_attention_heads is set; diffusers rejects that for this UNet", what);
    sdiff__cfg_ints(j, "attention_head_dim", c->heads, SDIFF__MAX_LEVELS, 8);
    sdiff__cfg_ints(j, "transformer_layers_per_block", c->depth, SDIFF__MAX_LEVELS, 1);
    static const char *const unsupported[] = {"class_embed_type", "addition_embed_type", "encoder_hid_dim",
                                              "time_cond_proj_dim"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        const sdiff__json *v = sdiff__json_get(j, unsupported[i]);
        if (v && v->type != SDIFF__JSON_NULL)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "%s: '%s' (SDXL-style conditioning) is not supported yet", what, unsupported[i]);
    }
    if (!sdiff__in_range(c->in_channels, 1, 64) || !sdiff__in_range(c->out_channels, 1, 64) ||
        !sdiff__in_range(c->layers_per_block, 1, SDIFF__MAX_RESNETS) || !sdiff__in_range(c->cross_dim, 1, 1 << 14) ||
        !sdiff__in_range(c->groups, 1, 1024))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: UNet sizes are out of range", what);
    for (int i = 0; i < c->levels; i++)
        if (!sdiff__in_range(c->heads[i], 1, 256) || c->ch[i] % c->heads[i] != 0 ||
            !sdiff__in_range(c->depth[i], 1, SDIFF__MAX_DEPTH))
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: level %d: %d channels cannot be split into %d heads (or bad depth)",
                              what, i, c->ch[i], c->heads[i]);
    return SDIFF_OK;
}

SDIFF__PRIVATE void sdiff__resnet_weights(sdiff__wloader *wl, sdiff__resnet *r, const char *p, int64_t in, int64_t out,
                                          int64_t temb) {
    r->in = in;
    r->out = out;
    r->norm1_g = sdiff__wl_get(wl, 1, in, 0, 0, 0, "%snorm1.weight", p);
    r->norm1_b = sdiff__wl_get(wl, 1, in, 0, 0, 0, "%snorm1.bias", p);
    r->conv1_w = sdiff__wl_get(wl, 4, out, in, 3, 3, "%sconv1.weight", p);
    r->conv1_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv1.bias", p);
    r->temb_w = temb ? sdiff__wl_get(wl, 2, out, temb, 0, 0, "%stime_emb_proj.weight", p) : NULL;
    r->temb_b = temb ? sdiff__wl_get(wl, 1, out, 0, 0, 0, "%stime_emb_proj.bias", p) : NULL;
    r->norm2_g = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%snorm2.weight", p);
    r->norm2_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%snorm2.bias", p);
    r->conv2_w = sdiff__wl_get(wl, 4, out, out, 3, 3, "%sconv2.weight", p);
    r->conv2_b = sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv2.bias", p);
    r->short_w = in != out ? sdiff__wl_get(wl, 2, out, in, 0, 0, "%sconv_shortcut.weight", p) : NULL;
    r->short_b = in != out ? sdiff__wl_get(wl, 1, out, 0, 0, 0, "%sconv_shortcut.bias", p) : NULL;
}
SDIFF__PRIVATE void sdiff__transformer_weights(sdiff__wloader *wl, sdiff__transformer *t, const char *p, int64_t ch,
                                               int heads, int depth, int64_t cross) {
    static const char *const qkv[] = {"to_q", "to_k", "to_v"}, *const kv[] = {"to_k", "to_v"};
    const int64_t rows[3] = {ch, ch, ch};
    t->ch = ch;
    t->heads = heads;
    t->depth = depth;
    t->norm_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm.weight", p);
    t->norm_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm.bias", p);
    t->proj_in_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sproj_in.weight", p);
    t->proj_in_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sproj_in.bias", p);
    for (int d = 0; d < depth; d++) {
        sdiff__tblock *b = &t->block[d];
        char bp[192], ap[200];
        snprintf(bp, sizeof bp, "%stransformer_blocks.%d.", p, d);
        b->ln1_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm1.weight", bp);
        b->ln1_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm1.bias", bp);
        snprintf(ap, sizeof ap, "%sattn1.", bp);
        b->qkv_w = sdiff__wl_stack(wl, 3, rows, ch, ap, qkv, ".weight");
        b->out1_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn1.to_out.0.weight", bp);
        b->out1_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sattn1.to_out.0.bias", bp);
        b->ln2_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm2.weight", bp);
        b->ln2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm2.bias", bp);
        snprintf(ap, sizeof ap, "%sattn2.", bp);
        b->q2_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn2.to_q.weight", bp);
        b->kv2_w = sdiff__wl_stack(wl, 2, rows, cross, ap, kv, ".weight");
        b->out2_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sattn2.to_out.0.weight", bp);
        b->out2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sattn2.to_out.0.bias", bp);
        b->ln3_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm3.weight", bp);
        b->ln3_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%snorm3.bias", bp);
        b->ff1_w = sdiff__wl_get(wl, 2, 8 * ch, ch, 0, 0, "%sff.net.0.proj.weight", bp);
        b->ff1_b = sdiff__wl_get(wl, 1, 8 * ch, 0, 0, 0, "%sff.net.0.proj.bias", bp);
        b->ff2_w = sdiff__wl_get(wl, 2, ch, 4 * ch, 0, 0, "%sff.net.2.weight", bp);
        b->ff2_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sff.net.2.bias", bp);
    }
    t->proj_out_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sproj_out.weight", p);
    t->proj_out_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sproj_out.bias", p);
}
/* Channels at each point, exactly as diffusers' constructor derives them. */
SDIFF__PRIVATE void sdiff__unet_weights(sdiff__wloader *wl, void *model) {
    sdiff__unet *m = (sdiff__unet *)model;
    const sdiff__unet_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block;
    const int64_t ch0 = c->ch[0], temb = 4 * ch0;
    char p[128];
    m->time1_w = sdiff__wl_get(wl, 2, temb, ch0, 0, 0, "time_embedding.linear_1.weight");
    m->time1_b = sdiff__wl_get(wl, 1, temb, 0, 0, 0, "time_embedding.linear_1.bias");
    m->time2_w = sdiff__wl_get(wl, 2, temb, temb, 0, 0, "time_embedding.linear_2.weight");
    m->time2_b = sdiff__wl_get(wl, 1, temb, 0, 0, 0, "time_embedding.linear_2.bias");
    m->conv_in_w = sdiff__wl_get(wl, 4, ch0, c->in_channels, 3, 3, "conv_in.weight");
    m->conv_in_b = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_in.bias");
    for (int i = 0; i < n; i++) {
        int64_t in = i ? c->ch[i - 1] : ch0, out = c->ch[i];
        for (int l = 0; l < L; l++) {
            snprintf(p, sizeof p, "down_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->down_res[i][l], p, l ? out : in, out, temb);
            if (c->down_attn[i]) {
                snprintf(p, sizeof p, "down_blocks.%d.attentions.%d.", i, l);
                sdiff__transformer_weights(wl, &m->down_tf[i][l], p, out, c->heads[i], c->depth[i], c->cross_dim);
            }
        }
        if (i < n - 1) {
            m->down_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "down_blocks.%d.downsamplers.0.conv.weight", i);
            m->down_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "down_blocks.%d.downsamplers.0.conv.bias", i);
        }
    }
    const int64_t top = c->ch[n - 1];
    sdiff__resnet_weights(wl, &m->mid_res[0], "mid_block.resnets.0.", top, top, temb);
    sdiff__transformer_weights(wl, &m->mid_tf, "mid_block.attentions.0.", top, c->heads[n - 1], c->depth[n - 1], c->cross_dim);
    sdiff__resnet_weights(wl, &m->mid_res[1], "mid_block.resnets.1.", top, top, temb);
    for (int i = 0; i < n; i++) {
        const int lvl = n - 1 - i; /* the down level this up block mirrors */
        int64_t out = c->ch[lvl], prev = c->ch[i ? lvl + 1 : lvl], in = c->ch[lvl > 0 ? lvl - 1 : 0];
        for (int l = 0; l <= L; l++) {
            int64_t skip = l == L ? in : out;
            snprintf(p, sizeof p, "up_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->up_res[i][l], p, (l ? out : prev) + skip, out, temb);
            if (c->up_attn[i]) {
                snprintf(p, sizeof p, "up_blocks.%d.attentions.%d.", i, l);
                sdiff__transformer_weights(wl, &m->up_tf[i][l], p, out, c->heads[lvl], c->depth[lvl], c->cross_dim);
            }
        }
        if (i < n - 1) {
            m->up_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "up_blocks.%d.upsamplers.0.conv.weight", i);
            m->up_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    m->norm_out_g = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_norm_out.weight");
    m->norm_out_b = sdiff__wl_get(wl, 1, ch0, 0, 0, 0, "conv_norm_out.bias");
    m->conv_out_w = sdiff__wl_get(wl, 4, c->out_channels, ch0, 3, 3, "conv_out.weight");
    m->conv_out_b = sdiff__wl_get(wl, 1, c->out_channels, 0, 0, 0, "conv_out.bias");
}

/* y = resnet(x, temb); temb_act = silu(temb) [B, T] or NULL (the VAE's). */
SDIFF__PRIVATE void sdiff__resnet_forward(sdiff__run *r, const sdiff__resnet *w, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *temb_act, int groups, float eps) {
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__group_norm(r, x, w->norm1_g, w->norm1_b, groups, eps, true);
    h = sdiff__conv(r, h, w->conv1_w, w->conv1_b, 1, 1, NULL);
    if (temb_act) {
        sdiff__tensor *t = sdiff__linear(r, temb_act, w->temb_w, w->temb_b, SDIFF__ACT_NONE, NULL);
        r->be->add(r->be, h, h, t);
    }
    h = sdiff__group_norm(r, h, w->norm2_g, w->norm2_b, groups, eps, true);
    const sdiff__tensor *shortcut = w->short_w ? sdiff__linear(r, x, w->short_w, w->short_b, SDIFF__ACT_NONE, NULL) : x;
    r->be->conv2d(r->be, y, h, w->conv2_w, w->conv2_b, 1, 1, shortcut);
    sdiff__arena_release(r->ar, mark);
}
/* y = transformer(x [B,H,W,C], context [B,Lc,Cc]). */
SDIFF__PRIVATE void sdiff__transformer_forward(sdiff__run *r, const sdiff__transformer *t, sdiff__tensor *y,
                                               const sdiff__tensor *x, const sdiff__tensor *context, int groups) {
    const int64_t C = t->ch, B = x->ne[0], N = x->ne[1] * x->ne[2];
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__group_norm(r, x, t->norm_g, t->norm_b, groups, 1e-6f, false);
    h = sdiff__linear(r, sdiff__reshape(r->ar, h, 3, B, N, C, 1), t->proj_in_w, t->proj_in_b, SDIFF__ACT_NONE, NULL);
    sdiff__tensor *h2 = sdiff__like(r, h, C); /* ping-pong partner of h */
    for (int d = 0; d < t->depth; d++) {
        const sdiff__tblock *b = &t->block[d];
        sdiff__arena_mark bm = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *n = sdiff__layer_norm(r, h, b->ln1_g, b->ln1_b, 1e-5f);
        sdiff__tensor *qkv = sdiff__linear(r, n, b->qkv_w, NULL, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, C, C, 2 * C, t->heads, false);
        r->be->linear(r->be, h2, a, b->out1_w, b->out1_b, SDIFF__ACT_NONE, h);
        sdiff__arena_release(r->ar, bm);
        n = sdiff__layer_norm(r, h2, b->ln2_g, b->ln2_b, 1e-5f);
        sdiff__tensor *q = sdiff__linear(r, n, b->q2_w, NULL, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *kv = sdiff__linear(r, context, b->kv2_w, NULL, SDIFF__ACT_NONE, NULL);
        a = sdiff__attention(r, q, kv, C, 0, C, t->heads, false);
        r->be->linear(r->be, h, a, b->out2_w, b->out2_b, SDIFF__ACT_NONE, h2);
        sdiff__arena_release(r->ar, bm);
        n = sdiff__layer_norm(r, h, b->ln3_g, b->ln3_b, 1e-5f);
        sdiff__tensor *f = sdiff__linear(r, n, b->ff1_w, b->ff1_b, SDIFF__ACT_NONE, NULL);
        sdiff__tensor *g = sdiff__like(r, f, 4 * C);
        r->be->geglu(r->be, g, f);
        r->be->linear(r->be, h2, g, b->ff2_w, b->ff2_b, SDIFF__ACT_NONE, h);
        sdiff__arena_release(r->ar, bm);
        sdiff__tensor *tmp = h; h = h2; h2 = tmp;
    }
    r->be->linear(r->be, sdiff__reshape(r->ar, y, 3, B, N, C, 1), h, t->proj_out_w, t->proj_out_b, SDIFF__ACT_NONE,
                  sdiff__reshape(r->ar, x, 3, B, N, C, 1));
    sdiff__arena_release(r->ar, mark);
}
/* Sinusoidal timestep features, float32 in the order diffusers computes them
   (get_timestep_embedding), so the UNet sees the same bits. */
SDIFF__PRIVATE void sdiff__timestep_features(float *out, const float *t, int batch, int dim, bool flip, float shift) {
    const int half = dim / 2;
    for (int b = 0; b < batch; b++) {
        float *o = out + (size_t)b * dim;
        for (int i = 0; i < half; i++) {
            float e = -9.21034037197618f * (float)i;  /* -ln(10000) * i */
            e = e / ((float)half - shift);
            float arg = t[b] * expf(e);
            float s = sinf(arg), c = cosf(arg);
            o[flip ? half + i : i] = s;
            o[flip ? i : half + i] = c;
        }
        if (dim % 2) o[dim - 1] = 0;
    }
}
/* x: [B, h, w, in_channels] (channels-last latents), t: B timesteps (host),
   context: [B, L, cross_dim]. Returns [B, h, w, out_channels]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__unet_forward(sdiff__run *r, const sdiff__unet *m, const sdiff__tensor *x,
                                                  const float *t, const sdiff__tensor *context) {
    const sdiff__unet_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block, G = c->groups;
    const int64_t B = x->ne[0];
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, B, x->ne[1], x->ne[2], c->out_channels);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);

    /* time embedding */
    float *feat = (float *)sdiff__calloc((size_t)B * c->ch[0], sizeof(float));
    if (!feat) { sdiff__be_fail(r->be, SDIFF_ERR_OUT_OF_MEMORY, "out of host memory"); return out; }
    sdiff__timestep_features(feat, t, (int)B, c->ch[0], c->flip_sin_to_cos, c->freq_shift);
    sdiff__tensor *tf = sdiff__new2(r->ar, r->be->act_dtype, B, c->ch[0]);
    r->be->upload(r->be, tf, feat, SDIFF__F32);
    sdiff__free(feat);
    sdiff__tensor *temb = sdiff__linear(r, tf, m->time1_w, m->time1_b, SDIFF__ACT_SILU, NULL);
    /* every resnet applies silu to temb first: do it once (diffusers' linear_2
       output is never used without it here) */
    temb = sdiff__linear(r, temb, m->time2_w, m->time2_b, SDIFF__ACT_SILU, NULL);

    /* down */
    sdiff__tensor *skips[1 + SDIFF__MAX_LEVELS * (SDIFF__MAX_RESNETS + 1)];
    int n_skips = 0;
    sdiff__tensor *h = sdiff__conv(r, x, m->conv_in_w, m->conv_in_b, 1, 1, NULL);
    skips[n_skips++] = h;
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < L; l++) {
            sdiff__tensor *y = sdiff__like(r, h, c->ch[i]);
            sdiff__resnet_forward(r, &m->down_res[i][l], y, h, temb, G, c->eps);
            h = y;
            if (c->down_attn[i]) {
                y = sdiff__like(r, h, c->ch[i]);
                sdiff__transformer_forward(r, &m->down_tf[i][l], y, h, context, G);
                h = y;
            }
            skips[n_skips++] = h;
        }
        if (i < n - 1) {
            h = sdiff__conv(r, h, m->down_w[i], m->down_b[i], 2, 1, NULL);
            skips[n_skips++] = h;
        }
    }
    /* mid */
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__resnet_forward(r, &m->mid_res[0], y, h, temb, G, c->eps);
    h = sdiff__like(r, y, c->ch[n - 1]);
    sdiff__transformer_forward(r, &m->mid_tf, h, y, context, G);
    y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__resnet_forward(r, &m->mid_res[1], y, h, temb, G, c->eps);
    h = y;
    /* up */
    for (int i = 0; i < n; i++) {
        const int64_t ch = c->ch[n - 1 - i];
        for (int l = 0; l <= L; l++) {
            sdiff__tensor *skip = skips[--n_skips];
            sdiff__tensor *cat = sdiff__like(r, h, sdiff__cols(h) + sdiff__cols(skip));
            r->be->concat(r->be, cat, h, skip);
            y = sdiff__like(r, h, ch);
            sdiff__resnet_forward(r, &m->up_res[i][l], y, cat, temb, G, c->eps);
            h = y;
            if (c->up_attn[i]) {
                y = sdiff__like(r, h, ch);
                sdiff__transformer_forward(r, &m->up_tf[i][l], y, h, context, G);
                h = y;
            }
        }
        if (i < n - 1) {
            /* to the size of the skip the next block concatenates (2x, except
               for odd sizes, where diffusers passes upsample_size too) */
            const sdiff__tensor *next = skips[n_skips - 1];
            sdiff__tensor *up = sdiff__new4(r->ar, r->be->act_dtype, B, next->ne[1], next->ne[2], ch);
            r->be->upsample(r->be, up, h);
            h = sdiff__conv(r, up, m->up_w[i], m->up_b[i], 1, 1, NULL);
        }
    }
    h = sdiff__group_norm(r, h, m->norm_out_g, m->norm_out_b, G, c->eps, true);
    r->be->conv2d(r->be, out, h, m->conv_out_w, m->conv_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}

/* >>vae ====================================================================
   Model: AutoencoderKL (the SD VAE)
     encode: conv_in -> down levels (resnets, then a stride-2 conv padded
             only at the bottom/right, except the last) -> mid (resnet,
             attention, resnet) -> silu(gn) -> conv_out -> quant_conv
             = [mean, logvar]
     decode: post_quant_conv -> conv_in -> mid -> up levels (resnets, then
             nearest 2x + conv, except the last) -> silu(gn) -> conv_out
   The mid-block attention is single-head self-attention over all pixels
   with a residual. Resnets here have no time embedding and eps 1e-6.
   ========================================================================= */
typedef struct sdiff__vae_config {
    int in_channels, out_channels, latent, levels, layers_per_block, groups, sample_size;
    int ch[SDIFF__MAX_LEVELS];
    float scaling_factor, shift_factor;
    bool quant_conv, post_quant_conv, mid_attention;
} sdiff__vae_config;

typedef struct sdiff__vae_attn {
    sdiff__tensor *norm_g, *norm_b, *qkv_w, *qkv_b, *out_w, *out_b;
} sdiff__vae_attn;

typedef struct sdiff__vae_mid {
    sdiff__resnet res[2];
    sdiff__vae_attn attn;
} sdiff__vae_mid;

typedef struct sdiff__vae {
    sdiff__vae_config cfg;
    sdiff__weights weights;
    /* encoder */
    sdiff__tensor *enc_in_w, *enc_in_b, *enc_norm_g, *enc_norm_b, *enc_out_w, *enc_out_b, *quant_w, *quant_b;
    sdiff__resnet enc_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS];
    sdiff__tensor *enc_down_w[SDIFF__MAX_LEVELS], *enc_down_b[SDIFF__MAX_LEVELS];
    sdiff__vae_mid enc_mid;
    /* decoder */
    sdiff__tensor *post_quant_w, *post_quant_b, *dec_in_w, *dec_in_b, *dec_norm_g, *dec_norm_b, *dec_out_w, *dec_out_b;
    sdiff__resnet dec_res[SDIFF__MAX_LEVELS][SDIFF__MAX_RESNETS + 1];
    sdiff__tensor *dec_up_w[SDIFF__MAX_LEVELS], *dec_up_b[SDIFF__MAX_LEVELS];
    sdiff__vae_mid dec_mid;
} sdiff__vae;

SDIFF__PRIVATE sdiff_status sdiff__vae_config_parse(const sdiff__json *j, const char *what, sdiff__vae_config *c) {
    memset(c, 0, sizeof *c);
    c->in_channels = (int)sdiff__json_number(j, "in_channels", 3);
    c->out_channels = (int)sdiff__json_number(j, "out_channels", 3);
    c->latent = (int)sdiff__json_number(j, "latent_channels", 4);
    c->layers_per_block = (int)sdiff__json_number(j, "layers_per_block", 2);
    c->groups = (int)sdiff__json_number(j, "norm_num_groups", 32);
    c->sample_size = (int)sdiff__json_number(j, "sample_size", 512);
    c->scaling_factor = (float)sdiff__json_number(j, "scaling_factor", 0.18215);
    c->shift_factor = (float)sdiff__json_number(j, "shift_factor", 0);
    c->quant_conv = sdiff__json_bool(j, "use_quant_conv", true);
    c->post_quant_conv = sdiff__json_bool(j, "use_post_quant_conv", true);
    c->mid_attention = sdiff__json_bool(j, "mid_block_add_attention", true);
    c->levels = sdiff__cfg_ints(j, "block_out_channels", c->ch, SDIFF__MAX_LEVELS, 0);
    if (c->levels < 1) return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels must be a list", what);
    if (!sdiff__in_range(c->in_channels, 1, 16) || !sdiff__in_range(c->out_channels, 1, 16) ||
        !sdiff__in_range(c->latent, 1, 64) || !sdiff__in_range(c->layers_per_block, 1, SDIFF__MAX_RESNETS) ||
        !sdiff__in_range(c->groups, 1, 1024) || !(c->scaling_factor > 0))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: VAE sizes are out of range", what);
    for (int i = 0; i < c->levels; i++)
        if (!sdiff__in_range(c->ch[i], 1, 1 << 14) || c->ch[i] % c->groups != 0)
            return sdiff__err(SDIFF_ERR_FORMAT, "%s: block_out_channels[%d] = %d is invalid for %d groups", what, i, c->ch[i], c->groups);
    return SDIFF_OK;
}
SDIFF__PRIVATE void sdiff__vae_mid_weights(sdiff__wloader *wl, sdiff__vae_mid *mid, const char *p, int64_t ch, bool attn) {
    static const char *const qkv[] = {"to_q", "to_k", "to_v"};
    const int64_t rows[3] = {ch, ch, ch};
    char q[128];
    snprintf(q, sizeof q, "%smid_block.resnets.0.", p);
    sdiff__resnet_weights(wl, &mid->res[0], q, ch, ch, 0);
    snprintf(q, sizeof q, "%smid_block.resnets.1.", p);
    sdiff__resnet_weights(wl, &mid->res[1], q, ch, ch, 0);
    if (!attn) return;
    snprintf(q, sizeof q, "%smid_block.attentions.0.", p);
    mid->attn.norm_g = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sgroup_norm.weight", q);
    mid->attn.norm_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sgroup_norm.bias", q);
    mid->attn.qkv_w = sdiff__wl_stack(wl, 3, rows, ch, q, qkv, ".weight");
    mid->attn.qkv_b = sdiff__wl_stack(wl, 3, rows, 0, q, qkv, ".bias");
    mid->attn.out_w = sdiff__wl_get(wl, 2, ch, ch, 0, 0, "%sto_out.0.weight", q);
    mid->attn.out_b = sdiff__wl_get(wl, 1, ch, 0, 0, 0, "%sto_out.0.bias", q);
}
SDIFF__PRIVATE void sdiff__vae_weights(sdiff__wloader *wl, void *model) {
    sdiff__vae *m = (sdiff__vae *)model;
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, L = c->layers_per_block;
    const int64_t top = c->ch[n - 1], lat = c->latent;
    char p[128];
    /* encoder */
    m->enc_in_w = sdiff__wl_get(wl, 4, c->ch[0], c->in_channels, 3, 3, "encoder.conv_in.weight");
    m->enc_in_b = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "encoder.conv_in.bias");
    for (int i = 0; i < n; i++) {
        int64_t in = i ? c->ch[i - 1] : c->ch[0], out = c->ch[i];
        for (int l = 0; l < L; l++) {
            snprintf(p, sizeof p, "encoder.down_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->enc_res[i][l], p, l ? out : in, out, 0);
        }
        if (i < n - 1) {
            m->enc_down_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "encoder.down_blocks.%d.downsamplers.0.conv.weight", i);
            m->enc_down_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "encoder.down_blocks.%d.downsamplers.0.conv.bias", i);
        }
    }
    sdiff__vae_mid_weights(wl, &m->enc_mid, "encoder.", top, c->mid_attention);
    m->enc_norm_g = sdiff__wl_get(wl, 1, top, 0, 0, 0, "encoder.conv_norm_out.weight");
    m->enc_norm_b = sdiff__wl_get(wl, 1, top, 0, 0, 0, "encoder.conv_norm_out.bias");
    m->enc_out_w = sdiff__wl_get(wl, 4, 2 * lat, top, 3, 3, "encoder.conv_out.weight");
    m->enc_out_b = sdiff__wl_get(wl, 1, 2 * lat, 0, 0, 0, "encoder.conv_out.bias");
    if (c->quant_conv) {
        m->quant_w = sdiff__wl_get(wl, 2, 2 * lat, 2 * lat, 0, 0, "quant_conv.weight");
        m->quant_b = sdiff__wl_get(wl, 1, 2 * lat, 0, 0, 0, "quant_conv.bias");
    }
    /* decoder */
    if (c->post_quant_conv) {
        m->post_quant_w = sdiff__wl_get(wl, 2, lat, lat, 0, 0, "post_quant_conv.weight");
        m->post_quant_b = sdiff__wl_get(wl, 1, lat, 0, 0, 0, "post_quant_conv.bias");
    }
    m->dec_in_w = sdiff__wl_get(wl, 4, top, lat, 3, 3, "decoder.conv_in.weight");
    m->dec_in_b = sdiff__wl_get(wl, 1, top, 0, 0, 0, "decoder.conv_in.bias");
    sdiff__vae_mid_weights(wl, &m->dec_mid, "decoder.", top, c->mid_attention);
    for (int i = 0; i < n; i++) {
        int64_t out = c->ch[n - 1 - i], prev = c->ch[i ? n - i : n - 1];
        for (int l = 0; l <= L; l++) {
            snprintf(p, sizeof p, "decoder.up_blocks.%d.resnets.%d.", i, l);
            sdiff__resnet_weights(wl, &m->dec_res[i][l], p, l ? out : prev, out, 0);
        }
        if (i < n - 1) {
            m->dec_up_w[i] = sdiff__wl_get(wl, 4, out, out, 3, 3, "decoder.up_blocks.%d.upsamplers.0.conv.weight", i);
            m->dec_up_b[i] = sdiff__wl_get(wl, 1, out, 0, 0, 0, "decoder.up_blocks.%d.upsamplers.0.conv.bias", i);
        }
    }
    m->dec_norm_g = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.weight");
    m->dec_norm_b = sdiff__wl_get(wl, 1, c->ch[0], 0, 0, 0, "decoder.conv_norm_out.bias");
    m->dec_out_w = sdiff__wl_get(wl, 4, c->out_channels, c->ch[0], 3, 3, "decoder.conv_out.weight");
    m->dec_out_b = sdiff__wl_get(wl, 1, c->out_channels, 0, 0, 0, "decoder.conv_out.bias");
}
/* y = resnet -> attention -> resnet on x [B,H,W,C]. */
SDIFF__PRIVATE void sdiff__vae_mid_forward(sdiff__run *r, const sdiff__vae_mid *mid, sdiff__tensor *y,
                                           const sdiff__tensor *x, int groups, bool attn) {
    const int64_t B = x->ne[0], N = x->ne[1] * x->ne[2], C = sdiff__cols(x);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__like(r, x, C);
    sdiff__resnet_forward(r, &mid->res[0], h, x, NULL, groups, 1e-6f);
    if (attn) {
        sdiff__tensor *h2 = sdiff__like(r, x, C);
        sdiff__arena_mark am = sdiff__arena_mark_get(r->ar);
        sdiff__tensor *n = sdiff__group_norm(r, h, mid->attn.norm_g, mid->attn.norm_b, groups, 1e-6f, false);
        sdiff__tensor *qkv = sdiff__linear(r, sdiff__reshape(r->ar, n, 3, B, N, C, 1), mid->attn.qkv_w, mid->attn.qkv_b,
                                           SDIFF__ACT_NONE, NULL);
        sdiff__tensor *a = sdiff__attention(r, qkv, qkv, C, C, 2 * C, 1, false);
        r->be->linear(r->be, sdiff__reshape(r->ar, h2, 3, B, N, C, 1), a, mid->attn.out_w, mid->attn.out_b,
                      SDIFF__ACT_NONE, sdiff__reshape(r->ar, h, 3, B, N, C, 1));
        sdiff__arena_release(r->ar, am);
        h = h2;
    }
    sdiff__resnet_forward(r, &mid->res[1], y, h, NULL, groups, 1e-6f);
    sdiff__arena_release(r->ar, mark);
}
/* image [B, H, W, 3] in [-1, 1] -> moments [B, H/f, W/f, 2*latent] (mean, logvar). */
SDIFF__PRIVATE sdiff__tensor *sdiff__vae_encode(sdiff__run *r, const sdiff__vae *m, const sdiff__tensor *image) {
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, G = c->groups;
    const int64_t f = (int64_t)1 << (n - 1);
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, image->ne[0], image->ne[1] / f, image->ne[2] / f, 2 * c->latent);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    sdiff__tensor *h = sdiff__conv(r, image, m->enc_in_w, m->enc_in_b, 1, 1, NULL);
    for (int i = 0; i < n; i++) {
        for (int l = 0; l < c->layers_per_block; l++) {
            sdiff__tensor *y = sdiff__like(r, h, c->ch[i]);
            sdiff__resnet_forward(r, &m->enc_res[i][l], y, h, NULL, G, 1e-6f);
            h = y;
        }
        if (i < n - 1) { /* F.pad(0, 1, 0, 1) then a 3x3 stride-2 conv: pad 0, and y one pixel short */
            sdiff__tensor *y = sdiff__new4(r->ar, r->be->act_dtype, h->ne[0], h->ne[1] / 2, h->ne[2] / 2, c->ch[i]);
            r->be->conv2d(r->be, y, h, m->enc_down_w[i], m->enc_down_b[i], 2, 0, NULL);
            h = y;
        }
    }
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__vae_mid_forward(r, &m->enc_mid, y, h, G, c->mid_attention);
    h = sdiff__group_norm(r, y, m->enc_norm_g, m->enc_norm_b, G, 1e-6f, true);
    if (c->quant_conv) {
        h = sdiff__conv(r, h, m->enc_out_w, m->enc_out_b, 1, 1, NULL);
        r->be->linear(r->be, out, h, m->quant_w, m->quant_b, SDIFF__ACT_NONE, NULL);
    } else r->be->conv2d(r->be, out, h, m->enc_out_w, m->enc_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}
/* latents [B, h, w, latent] (already divided by the scaling factor) ->
   image [B, h*f, w*f, 3] in about [-1, 1]. */
SDIFF__PRIVATE sdiff__tensor *sdiff__vae_decode(sdiff__run *r, const sdiff__vae *m, const sdiff__tensor *z) {
    const sdiff__vae_config *c = &m->cfg;
    const int n = c->levels, G = c->groups;
    const int64_t f = (int64_t)1 << (n - 1);
    sdiff__tensor *out = sdiff__new4(r->ar, r->be->act_dtype, z->ne[0], z->ne[1] * f, z->ne[2] * f, c->out_channels);
    sdiff__arena_mark mark = sdiff__arena_mark_get(r->ar);
    const sdiff__tensor *zz = c->post_quant_conv ? sdiff__linear(r, z, m->post_quant_w, m->post_quant_b, SDIFF__ACT_NONE, NULL) : z;
    sdiff__tensor *h = sdiff__conv(r, zz, m->dec_in_w, m->dec_in_b, 1, 1, NULL);
    sdiff__tensor *y = sdiff__like(r, h, c->ch[n - 1]);
    sdiff__vae_mid_forward(r, &m->dec_mid, y, h, G, c->mid_attention);
    h = y;
    for (int i = 0; i < n; i++) {
        const int64_t ch = c->ch[n - 1 - i];
        for (int l = 0; l <= c->layers_per_block; l++) {
            /* the big levels dominate memory: free each resnet's input */
            y = sdiff__like(r, h, ch);
            sdiff__resnet_forward(r, &m->dec_res[i][l], y, h, NULL, G, 1e-6f);
            h = y;
        }
        if (i < n - 1) {
            sdiff__tensor *up = sdiff__new4(r->ar, r->be->act_dtype, h->ne[0], 2 * h->ne[1], 2 * h->ne[2], ch);
            r->be->upsample(r->be, up, h);
            h = sdiff__conv(r, up, m->dec_up_w[i], m->dec_up_b[i], 1, 1, NULL);
        }
    }
    h = sdiff__group_norm(r, h, m->dec_norm_g, m->dec_norm_b, G, 1e-6f, true);
    r->be->conv2d(r->be, out, h, m->dec_out_w, m->dec_out_b, 1, 1, NULL);
    sdiff__arena_release(r->ar, mark);
    return out;
}
