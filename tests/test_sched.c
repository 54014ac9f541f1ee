/* test_sched.c - torch.randn on the CPU generator (>>rng) and the schedulers
   (>>sched) against diffusers. The fixtures (tests/fixtures/randn.json,
   sched_cases.json, sched_<name>.json) come from tools/fixtures_sched.py;
   without them those tests print "skipped: no fixture". The others check
   reference values that need no fixture. */

/* --- a minimal JSON reader for the fixtures (tests only) */
typedef enum tj_type { TJ_NULL, TJ_BOOL, TJ_NUM, TJ_STR, TJ_ARR, TJ_OBJ } tj_type;
typedef struct tj_val {
    tj_type type;
    double num;            /* TJ_NUM, TJ_BOOL */
    float f32;             /* TJ_NUM: strtof of the same text (exact float)  */
    char *str;             /* TJ_STR; the key for members of an object       */
    char *key;
    struct tj_val *items;  /* TJ_ARR, TJ_OBJ */
    int n;
} tj_val;

static const char *tj_ws(const char *p) { while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++; return p; }

static const char *tj_parse(const char *p, tj_val *v);

static const char *tj_string(const char *p, char **out) {
    const char *s = ++p;
    while (*p && *p != '"') p += (*p == '\\' && p[1]) ? 2 : 1;
    size_t n = (size_t)(p - s);
    *out = (char *)malloc(n + 1);
    memcpy(*out, s, n);
    (*out)[n] = 0;
    return *p ? p + 1 : p;
}

static const char *tj_parse(const char *p, tj_val *v) {
    memset(v, 0, sizeof *v);
    p = tj_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        v->type = *p == '{' ? TJ_OBJ : TJ_ARR;
        int cap = 0;
        p = tj_ws(p + 1);
        while (*p && *p != close) {
            if (v->n == cap) { cap = cap ? cap * 2 : 8; v->items = (tj_val *)realloc(v->items, (size_t)cap * sizeof(tj_val)); }
            char *key = NULL;
            if (v->type == TJ_OBJ) { p = tj_string(tj_ws(p), &key); p = tj_ws(p); if (*p == ':') p++; }
            p = tj_parse(p, &v->items[v->n]);
            v->items[v->n++].key = key;
            p = tj_ws(p);
            if (*p == ',') p = tj_ws(p + 1);
        }
        return *p ? p + 1 : p;
    }
    if (*p == '"') { v->type = TJ_STR; return tj_string(p, &v->str); }
    if (!strncmp(p, "true", 4)) { v->type = TJ_BOOL; v->num = 1; return p + 4; }
    if (!strncmp(p, "false", 5)) { v->type = TJ_BOOL; v->num = 0; return p + 5; }
    if (!strncmp(p, "null", 4)) { v->type = TJ_NULL; return p + 4; }
    char *end;
    v->type = TJ_NUM;
    v->num = strtod(p, &end);
    v->f32 = strtof(p, NULL);
    return end > p ? end : p + 1;
}

static void tj_free(tj_val *v) {
    for (int i = 0; i < v->n; i++) { tj_free(&v->items[i]); free(v->items[i].key); }
    free(v->items);
    free(v->str);
}

static const tj_val *tj_get(const tj_val *o, const char *key) {
    if (!o || o->type != TJ_OBJ) return NULL;
    for (int i = 0; i < o->n; i++) if (!strcmp(o->items[i].key, key)) return &o->items[i];
    return NULL;
}

/* The floats of a numeric array (malloc'ed), or NULL. */
static float *tj_floats(const tj_val *a, int *n) {
    *n = 0;
    if (!a || a->type != TJ_ARR) return NULL;
    float *f = (float *)malloc((size_t)(a->n ? a->n : 1) * sizeof(float));
    for (int i = 0; i < a->n; i++) f[i] = a->items[i].f32;
    *n = a->n;
    return f;
}

static bool tj_load(const char *name, tj_val *v) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", g_fixtures, name);
    char *text = test_read_file(path, NULL);
    if (!text) { printf("    skipped: no fixture %s\n", path); return false; }
    tj_parse(text, v);
    free(text);
    return true;
}

/* --- references that need no fixture */

SDIFF_TEST(rng_mt19937_reference) {
    /* std::mt19937 with the default seed 5489: the C++ standard's reference
       (the 10000th output is 4123659995) */
    sdiff__rng r;
    r.path = SDIFF__RNG_X86;
    sdiff__rng_seed(&r, 5489);
    const uint32_t first[5] = {3499211612u, 581869302u, 3890346734u, 3586334585u, 545404204u};
    for (int i = 0; i < 5; i++) CHECK(sdiff__rng_u32(&r) == first[i]);
    sdiff__rng_seed(&r, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = sdiff__rng_u32(&r);
    CHECK_MSG(v == 4123659995u, "10000th output %u", v);
}

static void check_4dp(const float *got, const float *want, int n, const char *what) {
    for (int i = 0; i < n; i++)
        CHECK_MSG(fabsf(got[i] - want[i]) <= 0.00005f + 1e-6f, "%s[%d] = %.5f, torch prints %.4f", what, i, got[i], want[i]);
}

SDIFF_TEST(rng_randn_reference) {
    /* torch.manual_seed(0): torch.randn(15) (the numel < 16 path: double
       Box-Muller, second value kept) and torch.randn(16) (float path), as
       PyTorch prints them to 4 decimals. randn(3) is randn(15)'s start. */
    static const float small[15] = {1.5410f, -0.2934f, -2.1788f, 0.5684f, -1.0845f, -1.3986f, 0.4033f, 0.8380f,
                                    -0.7193f, -0.4033f, -0.5966f, 0.1820f, -0.8567f, 1.1006f, -1.0712f};
    static const float big[16] = {-1.1258f, -1.1524f, -0.2506f, -0.4339f, 0.8487f, 0.6920f, -0.3160f, -2.1152f,
                                  0.3223f, -1.2633f, 0.3500f, 0.3081f, 0.1198f, 1.2377f, 1.1168f, -0.2473f};
    for (int path = SDIFF__RNG_X86; path <= SDIFF__RNG_PORTABLE; path++) {
        sdiff__rng r;
        r.path = (sdiff__rng_path)path;
        float o[16];
        sdiff__rng_seed(&r, 0);
        sdiff__rng_randn(&r, o, 15);
        check_4dp(o, small, 15, "randn(15)");
        sdiff__rng_seed(&r, 0);
        sdiff__rng_randn(&r, o, 3);
        check_4dp(o, small, 3, "randn(3)");
        sdiff__rng_seed(&r, 0);
        sdiff__rng_randn(&r, o, 16);
        check_4dp(o, big, 16, "randn(16)");
    }
}

SDIFF_TEST(rng_paths_agree) {
    /* the x86 (Cephes float) and portable (libm) Box-Muller kernels agree to
       float rounding; the largest absolute difference is printed with -v */
    enum { N = 65536 };
    static float a[N], b[N];
    sdiff__rng r;
    r.path = SDIFF__RNG_X86;
    sdiff__rng_seed(&r, 42);
    sdiff__rng_randn(&r, a, N);
    r.path = SDIFF__RNG_PORTABLE;
    sdiff__rng_seed(&r, 42);
    sdiff__rng_randn(&r, b, N);
    double mx = 0;
    int diff = 0;
    for (int i = 0; i < N; i++) { double d = fabs((double)a[i] - b[i]); if (d > mx) mx = d; diff += a[i] != b[i]; }
    if (getenv("TEST_VERBOSE")) printf("    %d of %d differ, max abs diff %.3g\n", diff, N, mx);
    CHECK_MSG(mx < 2e-6, "max abs diff %.3g", mx);
    CHECK_REL(a, b, N, 1e-6);
}

SDIFF_TEST(sched_names) {
    CHECK(!strcmp(sdiff_sampler_name(SDIFF_SAMPLER_EULER_A), "euler_a"));
    CHECK(!strcmp(sdiff_sampler_name(SDIFF_SAMPLER_DPMPP_2M_KARRAS), "dpmpp_2m_karras"));
    for (int i = 0; i < SDIFF_SAMPLER_COUNT_; i++)
        CHECK(sdiff_sampler_from_name(sdiff_sampler_name((sdiff_sampler)i)) == (sdiff_sampler)i);
    CHECK(sdiff_sampler_from_name("lms") == SDIFF_SAMPLER_COUNT_);
    CHECK(sdiff_sampler_from_name(NULL) == SDIFF_SAMPLER_COUNT_);
    CHECK(!strcmp(sdiff_sampler_name(SDIFF_SAMPLER_COUNT_), "unknown"));
    CHECK(sdiff__sampler_from_class_name("PNDMScheduler", false) == SDIFF_SAMPLER_PNDM);
    CHECK(sdiff__sampler_from_class_name("DPMSolverMultistepScheduler", true) == SDIFF_SAMPLER_DPMPP_2M_KARRAS);
    CHECK(sdiff__sampler_from_class_name("LMSDiscreteScheduler", false) == SDIFF_SAMPLER_COUNT_);
}

SDIFF_TEST(sched_sd15_timesteps) {
    sdiff__sched_config c;
    sdiff__sched_config_default(&c);
    sdiff__sched *s;
    /* DDIM, 50 steps, leading spacing, steps_offset 1: 981, 961, ..., 1 */
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_DDIM, &c, 50, 0.0, &s) == SDIFF_OK);
    CHECK(sdiff__sched_num_evals(s) == 50);
    for (int i = 0; i < 50; i++) CHECK_MSG(sdiff__sched_timestep(s, i) == (float)(981 - 20 * i), "ddim t[%d]", i);
    /* scaled_linear 0.00085..0.012: alphas_cumprod[0] = 1 - 0.00085,
       [999] = 0.0046601 (sigma_max = sqrt((1 - a) / a) = 14.6146, the
       familiar SD 1.5 value) */
    CHECK_MSG(fabsf(s->alphas_cumprod[0] - 0.99915f) < 1e-7f, "ac[0] %.9g", s->alphas_cumprod[0]);
    CHECK_MSG(fabsf(s->alphas_cumprod[999] - 0.0046601f) < 1e-6f, "ac[999] %.9g", s->alphas_cumprod[999]);
    CHECK(sdiff__sched_init_noise_sigma(s) == 1.0f);
    sdiff__sched_free(s);
    /* PNDM with skip_prk_steps (SD 1.5's default class): 981, 961, 961, 941, ..., 1 */
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_DEFAULT, &c, 50, 0.0, &s) == SDIFF_OK);
    CHECK(s->sampler == SDIFF_SAMPLER_PNDM);
    CHECK(sdiff__sched_num_evals(s) == 51);
    CHECK(sdiff__sched_timestep(s, 0) == 981.0f && sdiff__sched_timestep(s, 1) == 961.0f);
    CHECK(sdiff__sched_timestep(s, 2) == 961.0f && sdiff__sched_timestep(s, 3) == 941.0f);
    CHECK(sdiff__sched_timestep(s, 50) == 1.0f);
    sdiff__sched_free(s);
    /* Euler from SD 1.5's config: timestep_spacing is absent, so Euler's
       default linspace applies: 999, 978.6.., ..., 0; init sigma = max sigma */
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_EULER, &c, 50, 0.0, &s) == SDIFF_OK);
    CHECK(sdiff__sched_timestep(s, 0) == 999.0f && sdiff__sched_timestep(s, 49) == 0.0f);
    CHECK_MSG(fabsf(sdiff__sched_init_noise_sigma(s) - 14.6146f) < 1e-3f, "init sigma %g", sdiff__sched_init_noise_sigma(s));
    sdiff__sched_free(s);
    /* PRK: 10 steps -> 12 Runge-Kutta + 7 PLMS evaluations */
    c.skip_prk_steps = false;
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_PNDM, &c, 10, 0.0, &s) == SDIFF_OK);
    CHECK(sdiff__sched_num_evals(s) == 19);
    CHECK(sdiff__sched_timestep(s, 0) == 901.0f && sdiff__sched_timestep(s, 1) == 851.0f);
    CHECK(sdiff__sched_timestep(s, 11) == 601.0f && sdiff__sched_timestep(s, 12) == 601.0f);
    CHECK(sdiff__sched_timestep(s, 18) == 1.0f);
    sdiff__sched_free(s);
}

SDIFF_TEST(sched_invalid_args) {
    sdiff__sched_config c;
    sdiff__sched_config_default(&c);
    sdiff__sched *s = (sdiff__sched *)&c;
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_DDIM, &c, 0, 0.0, &s) == SDIFF_ERR_INVALID_ARG && s == NULL);
    CHECK(strstr(sdiff__g_error, "steps 0") != NULL);
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_EULER, &c, 1001, 0.0, &s) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_EULER, &c, -3, 0.0, &s) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_COUNT_, &c, 10, 0.0, &s) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_create((sdiff_sampler)-1, &c, 10, 0.0, &s) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_config_set_string(&c, "beta_schedule", "sigmoid") == SDIFF_ERR_UNSUPPORTED);
    CHECK(sdiff__sched_config_set_string(&c, "_class_name", "LMSDiscreteScheduler") == SDIFF_ERR_UNSUPPORTED);
    CHECK(sdiff__sched_config_set_number(&c, "num_train_timesteps", 0) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_config_set_array(&c, "trained_betas") == SDIFF_ERR_UNSUPPORTED);
    CHECK(sdiff__sched_config_set_string(&c, "some_future_key", "x") == SDIFF_OK);
    c.skip_prk_steps = false;
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_PNDM, &c, 3, 0.0, &s) == SDIFF_ERR_INVALID_ARG);
    sdiff__sched_config_default(&c);
    CHECK(sdiff__sched_config_set_string(&c, "algorithm_type", "sde-dpmsolver++") == SDIFF_OK);
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_EULER, &c, 10, 0.0, &s) == SDIFF_OK); /* not a key Euler reads */
    sdiff__sched_free(s);
    c.class_sampler = SDIFF_SAMPLER_DPMPP_2M;
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_DEFAULT, &c, 10, 0.0, &s) == SDIFF_ERR_UNSUPPORTED);
    sdiff__sched_config_default(&c);
    CHECK(sdiff__sched_create(SDIFF_SAMPLER_DDIM, &c, 10, 0.0, &s) == SDIFF_OK);
    CHECK(sdiff__sched_set_strength(s, 1.5) == SDIFF_ERR_INVALID_ARG);
    CHECK(sdiff__sched_set_strength(s, 0.05) == SDIFF_ERR_INVALID_ARG); /* int(10 * 0.05) = 0 steps */
    CHECK(sdiff__sched_set_strength(s, 0.7) == SDIFF_OK && sdiff__sched_num_evals(s) == 7);
    CHECK(sdiff__sched_img2img_begin(s, 0.7f) == 3);  /* 0.7f is 0.7 for Python: int(10 * 0.7) = 7 */
    CHECK(sdiff__sched_img2img_begin(s, 0.05f) == sdiff__sched_len(s));
    CHECK(sdiff__sched_img2img_begin(s, -0.5f) == sdiff__sched_len(s));
    sdiff__sched_plan plan;
    CHECK(sdiff__sched_plan_step(s, 10, &plan) == SDIFF_ERR_INVALID_ARG && plan.n == 0);
    CHECK(sdiff__sched_plan_step(s, 2, &plan) == SDIFF_ERR_INVALID_ARG); /* before the begin index */
    sdiff__sched_free(s);
    /* float strength as the user typed it: 0.7f is 0.7 for Python, int(10 * 0.7) = 7 */
    CHECK(sdiff__sched_decimal(0.7f) == 0.7);
    CHECK(sdiff__sched_decimal(0.6f) == 0.6);
}

/* --- trajectories against diffusers */

/* A step on host arrays: the plan's instructions through sdiff__lincomb_f32, the arithmetic of
   the CPU backend's lincomb op (the pipeline tests run the same plans through the backend). The
   kept vectors are made at the first step. */
static sdiff_status sched_step_host(sdiff__sched *s, int i, float *mo, float *x, size_t n, sdiff__rng *rng,
                                    float **kept) {
    for (int k = 0; k < sdiff__sched_state_count(s); k++)
        if (!kept[k]) kept[k] = (float *)calloc(n, sizeof(float));
    float *noise = (float *)calloc(n, sizeof(float));
    if (sdiff__sched_step_noise(s, i)) sdiff__rng_randn(rng, noise, n);
    sdiff__sched_plan p;
    sdiff_status st = sdiff__sched_plan_step(s, i, &p);
    for (int k = 0; k < p.n && st == SDIFF_OK; k++) {
        const sdiff__sched_insn *in = &p.insn[k];
        float *vec[SDIFF__SV_STATE + SDIFF__SCHED_MAX_STATE] = {x, mo, noise};
        for (int j = 0; j < SDIFF__SCHED_MAX_STATE; j++) vec[SDIFF__SV_STATE + j] = kept[j];
        const float *src[SDIFF__SCHED_MAX_TERMS];
        for (int j = 0; j < in->n; j++) src[j] = vec[in->src[j]];
        sdiff__lincomb_f32(vec[in->dst], in->n, src, in->c, in->clamp, n);
    }
    free(noise);
    return st;
}

/* The synthetic model of tools/fixtures_sched.py, float32. */
static void sched_test_model(const float *x, float t, float *eps, size_t n) {
    float b = 0.05f * cosf(t / 100.0f);
    for (size_t k = 0; k < n; k++) {
        float pat = (float)((int)(k % 7) - 3) / 3.0f;
        float a = 0.3f * tanhf(x[k]);
        float c = 0.1f * pat;
        eps[k] = (a + b) + c;
    }
}

static void sched_config_from_json(const tj_val *cfg, sdiff__sched_config *c) {
    sdiff__sched_config_empty(c, SDIFF_SAMPLER_DDIM);
    for (int i = 0; i < cfg->n; i++) {
        const tj_val *v = &cfg->items[i];
        sdiff_status st = SDIFF_OK;
        if (v->type == TJ_STR) st = sdiff__sched_config_set_string(c, v->key, v->str);
        else if (v->type == TJ_BOOL) st = sdiff__sched_config_set_bool(c, v->key, v->num != 0);
        else if (v->type == TJ_NUM) st = sdiff__sched_config_set_number(c, v->key, v->num);
        else if (v->type == TJ_NULL) st = sdiff__sched_config_set_null(c, v->key);
        else st = sdiff__sched_config_set_array(c, v->key);
        CHECK_MSG(st == SDIFF_OK, "config key %s", v->key);
    }
}

static void sched_run_case(const char *name) {
    char file[256];
    snprintf(file, sizeof file, "sched_%s.json", name);
    tj_val j;
    if (!tj_load(file, &j)) return;
    sdiff__sched_config c;
    sched_config_from_json(tj_get(&j, "config"), &c);
    sdiff_sampler sampler = sdiff_sampler_from_name(tj_get(&j, "sampler")->str);
    int steps = (int)tj_get(&j, "steps")->num;
    const tj_val *shape = tj_get(&j, "shape");
    size_t n = 1;
    for (int i = 0; i < shape->n; i++) n *= (size_t)shape->items[i].num;
    sdiff__sched *s = NULL;
    sdiff_status st = sdiff__sched_create(sampler, &c, steps, tj_get(&j, "eta")->num, &s);
    CHECK_MSG(st == SDIFF_OK, "%s: %s", name, sdiff__g_error);
    if (st != SDIFF_OK) { tj_free(&j); return; }
    const tj_val *strength = tj_get(&j, "strength");
    sdiff__rng rng;
    rng.path = SDIFF__RNG_X86;
    sdiff__rng_seed(&rng, (uint64_t)tj_get(&j, "seed")->num);
    float *x = (float *)malloc(n * sizeof(float)), *eps = (float *)malloc(n * sizeof(float));
    float *in = (float *)malloc(n * sizeof(float)), *kept[SDIFF__SCHED_MAX_STATE] = {NULL};
    if (strength && strength->type == TJ_NUM) {
        CHECK(sdiff__sched_set_strength(s, strength->num) == SDIFF_OK);
        int nm = 0;
        float *mean = tj_floats(tj_get(&j, "latent_mean"), &nm);
        float *noise = (float *)malloc(n * sizeof(float));
        sdiff__rng_randn(&rng, noise, n); /* the VAE encoder's latent_dist.sample */
        for (size_t k = 0; k < n; k++) { float v = 0.1f * noise[k]; in[k] = mean[k] + v; }
        sdiff__rng_randn(&rng, noise, n); /* prepare_latents' noise */
        memcpy(x, in, n * sizeof(float));
        sdiff__sched_add_noise(s, s->t_start, x, noise, n);
        free(mean);
        free(noise);
    } else {
        sdiff__rng_randn(&rng, x, n);
        float sig = sdiff__sched_init_noise_sigma(s);
        for (size_t k = 0; k < n; k++) x[k] = x[k] * sig;
    }
    int nt = 0;
    float *ts = tj_floats(tj_get(&j, "timesteps"), &nt);
    int first = s->t_start;
    CHECK_MSG(nt == sdiff__sched_num_evals(s), "%s: %d evaluations, diffusers %d", name, sdiff__sched_num_evals(s), nt);
    for (int i = 0; i < nt && i < sdiff__sched_num_evals(s); i++)
        CHECK_MSG(fabsf(sdiff__sched_timestep(s, first + i) - ts[i]) <= 1e-6f * fabsf(ts[i]),
                  "%s: timestep %d = %.9g, diffusers %.9g", name, i, sdiff__sched_timestep(s, first + i), ts[i]);
    int ns = 0;
    float *sig = tj_floats(tj_get(&j, "sigmas"), &ns);
    if (sig && s->sigmas) {
        CHECK(ns == s->n_ts + 1);
        if (ns == s->n_ts + 1) CHECK_REL(s->sigmas, sig, (size_t)ns, 1e-6);
    }
    CHECK_MSG(fabsf(sdiff__sched_init_noise_sigma(s) - (float)tj_get(&j, "init_noise_sigma")->num) <=
                  1e-6f * sdiff__sched_init_noise_sigma(s), "%s: init_noise_sigma", name);
    int ni = 0;
    float *init = tj_floats(tj_get(&j, "init"), &ni);
    CHECK(ni == (int)n);
    if (ni == (int)n) CHECK_REL(x, init, n, 1e-6);
    const tj_val *samples = tj_get(&j, "samples");
    for (int i = 0; i < nt && i < sdiff__sched_num_evals(s) && ni == (int)n; i++) {
        float t = sdiff__sched_timestep(s, first + i);
        memcpy(in, x, n * sizeof(float));
        const float k_in = sdiff__sched_input_scale(s, first + i);
        for (size_t k = 0; k < n; k++) in[k] = in[k] * k_in;
        sched_test_model(in, t, eps, n);
        CHECK(sched_step_host(s, first + i, eps, x, n, &rng, kept) == SDIFF_OK);
        int nw = 0;
        float *want = tj_floats(&samples->items[i], &nw);
        double e = test_rel_err(x, want, n);
        CHECK_MSG(e <= 1e-5, "%s: step %d (t %g) rel err %.3g", name, i, t, e);
        if (getenv("TEST_VERBOSE") && i == nt - 1) printf("    %s: final rel err %.3g\n", name, e);
        free(want);
    }
    free(ts); free(sig); free(init); free(x); free(eps); free(in);
    for (int k = 0; k < SDIFF__SCHED_MAX_STATE; k++) free(kept[k]);
    sdiff__sched_free(s);
    tj_free(&j);
}

SDIFF_TEST(sched_vs_diffusers) {
    tj_val j;
    if (!tj_load("sched_cases.json", &j)) return;
    int na = 0;
    float *ac = tj_floats(tj_get(&j, "alphas_cumprod_sd15"), &na);
    sdiff__sched_config c;
    sdiff__sched_config_default(&c);
    sdiff__sched *s;
    if (ac && sdiff__sched_create(SDIFF_SAMPLER_DDIM, &c, 10, 0.0, &s) == SDIFF_OK) {
        CHECK(na == 1000);
        if (na == 1000) CHECK_REL(s->alphas_cumprod, ac, 1000, 1e-6);
        sdiff__sched_free(s);
    }
    free(ac);
    const tj_val *cases = tj_get(&j, "cases");
    for (int i = 0; cases && i < cases->n; i++) sched_run_case(cases->items[i].str);
    tj_free(&j);
}

SDIFF_TEST(rng_vs_torch) {
    tj_val j;
    if (!tj_load("randn.json", &j)) return;
    const tj_val *cases = tj_get(&j, "cases");
    for (int i = 0; cases && i < cases->n; i++) {
        const tj_val *cs = &cases->items[i];
        const tj_val *calls = tj_get(cs, "calls");
        int nv = 0;
        float *want = tj_floats(tj_get(cs, "values"), &nv);
        float *got = (float *)malloc((size_t)nv * sizeof(float) + 4);
        sdiff__rng r;
        r.path = SDIFF__RNG_X86;
        sdiff__rng_seed(&r, (uint64_t)tj_get(cs, "seed")->num);
        size_t at = 0;
        for (int k = 0; k < calls->n; k++) {
            size_t m = (size_t)calls->items[k].num;
            if (at + m <= (size_t)nv) sdiff__rng_randn(&r, got + at, m);
            at += m;
        }
        CHECK(at == (size_t)nv);
        int bad = 0, first = -1;
        for (int k = 0; k < nv && at == (size_t)nv; k++) if (got[k] != want[k]) { if (first < 0) first = k; bad++; }
        CHECK_MSG(bad == 0, "seed %.0f: %d of %d values differ from torch (first at %d: %.9g vs %.9g)",
                  tj_get(cs, "seed")->num, bad, nv, first, first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
        free(got);
        free(want);
    }
    tj_free(&j);
}
