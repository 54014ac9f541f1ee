/* >>sched ==================================================================
   Schedulers: DDIM, PNDM, Euler, Euler ancestral, DPM-Solver++ 2M, DDPM

   Each one follows the diffusers class of the same name (scheduling_*.py)
   given the same scheduler_config.json, so a seed gives diffusers' image:
   timesteps and sigmas are computed in double where diffusers uses float64
   numpy and rounded to float where it casts to float32 torch; the step math
   is float32, one rounding per torch operation, in torch's order (so the
   implementation must be compiled without FP contraction, which is what
   -std=c11 gives with GCC; Clang only contracts within one expression, and
   every product below that feeds a sum is its own statement; the pragmas
   below also switch contraction off for this section under GCC and Clang,
   whatever the user's flags, e.g. -march=native in GNU C mode).

   How the pipeline drives it (diffusers' StableDiffusion[Img2Img]Pipeline):
     sdiff__sched_config cfg; sdiff__sched_config_default(&cfg) or
         sdiff__sched_config_set_*() for each key of scheduler_config.json
     sdiff__sched_create(sampler, &cfg, steps, eta, &s)
         sampler DEFAULT = the config's _class_name; any other sampler =
         diffusers' Other.from_config(config): the keys the JSON set carry
         over, the others take the new class's defaults. eta: DDIM only.
     first = 0
     txt2img: x = randn(B*4*h*w) * init_noise_sigma      (one randn call)
     img2img: first = sdiff__sched_img2img_begin(s, strength) (get_timesteps
         + set_begin_index; == sdiff__sched_len(s) when no step is left), then
         the VAE encoder's latent_dist.sample draws randn first, then
         noise = randn(B*4*h*w), then sdiff__sched_add_noise(s, first, x,
         noise, n) turns the encoded latents x into the starting latents.
     for i in first .. sdiff__sched_len(s)-1, in order (i indexes
     scheduler.timesteps):
         t = sdiff__sched_timestep(s, i)          (fed to the UNet)
         sdiff__sched_scale_input(s, i, x_copy, n) (scale_model_input)
         eps = unet(x_copy, t) (with CFG combined)
         sdiff__sched_step(s, i, eps, x, n, rng)  (Euler a, DDPM (t > 0), and
                                                   DDIM with eta > 0 draw
                                                   randn(n) from rng here)
   n is the whole latent batch (B*4*h*w): diffusers draws per-step noise for
   the batch in one randn call, and so do we.
   ========================================================================= */

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

typedef enum sdiff__beta_schedule {
    SDIFF__BETA_LINEAR = 0, SDIFF__BETA_SCALED_LINEAR, SDIFF__BETA_SQUAREDCOS_CAP_V2
} sdiff__beta_schedule;
typedef enum sdiff__pred_type { SDIFF__PRED_EPSILON = 0, SDIFF__PRED_V, SDIFF__PRED_SAMPLE } sdiff__pred_type;
typedef enum sdiff__spacing { SDIFF__SPACING_LEADING = 0, SDIFF__SPACING_LINSPACE, SDIFF__SPACING_TRAILING } sdiff__spacing;
typedef enum sdiff__ddpm_variance {
    SDIFF__VAR_FIXED_SMALL = 0, SDIFF__VAR_FIXED_SMALL_LOG, SDIFF__VAR_FIXED_LARGE, SDIFF__VAR_OTHER
} sdiff__ddpm_variance;

/* Which keys scheduler_config.json set (diffusers' from_config carries only
   those; the rest take the target class's __init__ defaults). */
enum {
    SDIFF__SK_NUM_TRAIN = 1u << 0, SDIFF__SK_BETA_START = 1u << 1, SDIFF__SK_BETA_END = 1u << 2,
    SDIFF__SK_BETA_SCHEDULE = 1u << 3, SDIFF__SK_PREDICTION = 1u << 4, SDIFF__SK_SPACING = 1u << 5,
    SDIFF__SK_STEPS_OFFSET = 1u << 6, SDIFF__SK_ALPHA_TO_ONE = 1u << 7, SDIFF__SK_CLIP = 1u << 8,
    SDIFF__SK_CLIP_RANGE = 1u << 9, SDIFF__SK_SKIP_PRK = 1u << 10, SDIFF__SK_ZERO_SNR = 1u << 11,
    SDIFF__SK_KARRAS = 1u << 12, SDIFF__SK_FINAL_SIGMA_MIN = 1u << 13, SDIFF__SK_LOWER_FINAL = 1u << 14,
    SDIFF__SK_EULER_FINAL = 1u << 15, SDIFF__SK_ORDER = 1u << 16, SDIFF__SK_VARIANCE = 1u << 17,
    SDIFF__SK_SIGMA_MIN = 1u << 18, SDIFF__SK_SIGMA_MAX = 1u << 19
};

typedef struct sdiff__sched_config {
    sdiff_sampler class_sampler;   /* _class_name (DDIM if absent)              */
    uint32_t present;              /* SDIFF__SK_* bits of the keys that are set */
    int num_train_timesteps;
    double beta_start, beta_end;
    sdiff__beta_schedule beta_schedule;
    sdiff__pred_type prediction_type;
    sdiff__spacing timestep_spacing;
    int steps_offset;
    bool set_alpha_to_one, clip_sample;
    double clip_sample_range;
    bool skip_prk_steps;           /* PNDM                                      */
    bool rescale_betas_zero_snr;
    bool use_karras_sigmas;        /* Euler, DPM-Solver                         */
    bool final_sigmas_sigma_min;   /* final_sigmas_type "sigma_min" (else zero) */
    bool lower_order_final, euler_at_final;
    int solver_order;              /* DPM-Solver: 1 or 2                        */
    sdiff__ddpm_variance variance_type;
    double sigma_min, sigma_max;   /* Euler's Karras range (if present)         */
    /* values set to something we do not run; checked when a class uses them */
    bool bad_thresholding, bad_interpolation, bad_timestep_type, bad_other_sigmas;
    bool bad_algorithm, bad_solver_type, bad_lambda_clip;
} sdiff__sched_config;

/* The values of Stable Diffusion 1.5's scheduler/scheduler_config.json
   (PNDMScheduler, scaled_linear 0.00085..0.012, steps_offset 1,
   skip_prk_steps, set_alpha_to_one false, clip_sample false), with exactly
   those keys marked present. */
SDIFF__PRIVATE void sdiff__sched_config_default(sdiff__sched_config *c) {
    memset(c, 0, sizeof *c);
    c->class_sampler = SDIFF_SAMPLER_PNDM;
    c->num_train_timesteps = 1000;
    c->beta_start = 0.00085;
    c->beta_end = 0.012;
    c->beta_schedule = SDIFF__BETA_SCALED_LINEAR;
    c->steps_offset = 1;
    c->set_alpha_to_one = false;
    c->clip_sample = false;
    c->skip_prk_steps = true;
    c->present = SDIFF__SK_NUM_TRAIN | SDIFF__SK_BETA_START | SDIFF__SK_BETA_END | SDIFF__SK_BETA_SCHEDULE |
                 SDIFF__SK_STEPS_OFFSET | SDIFF__SK_ALPHA_TO_ONE | SDIFF__SK_CLIP | SDIFF__SK_SKIP_PRK;
}

/* An empty config: nothing present, every class uses its own defaults. */
SDIFF__PRIVATE void sdiff__sched_config_empty(sdiff__sched_config *c, sdiff_sampler class_sampler) {
    memset(c, 0, sizeof *c);
    c->class_sampler = class_sampler;
}

/* diffusers' _class_name -> our sampler; karras picks the Karras variant of
   DPM-Solver (use_karras_sigmas). SDIFF_SAMPLER_COUNT_ for a class we lack. */
SDIFF__PRIVATE sdiff_sampler sdiff__sampler_from_class_name(const char *class_name, bool karras) {
    if (!class_name) return SDIFF_SAMPLER_COUNT_;
    if (!strcmp(class_name, "DDIMScheduler")) return SDIFF_SAMPLER_DDIM;
    if (!strcmp(class_name, "PNDMScheduler")) return SDIFF_SAMPLER_PNDM;
    if (!strcmp(class_name, "EulerDiscreteScheduler")) return SDIFF_SAMPLER_EULER;
    if (!strcmp(class_name, "EulerAncestralDiscreteScheduler")) return SDIFF_SAMPLER_EULER_A;
    if (!strcmp(class_name, "DPMSolverMultistepScheduler"))
        return karras ? SDIFF_SAMPLER_DPMPP_2M_KARRAS : SDIFF_SAMPLER_DPMPP_2M;
    if (!strcmp(class_name, "DDPMScheduler")) return SDIFF_SAMPLER_DDPM;
    return SDIFF_SAMPLER_COUNT_;
}

/* --- setters for the keys of scheduler_config.json. Unknown keys are
   ignored (diffusers ignores keys a class does not take); a value we cannot
   run in a key every class uses is an error at once, one only some classes
   use is an error when such a class is created. */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_string(sdiff__sched_config *c, const char *key, const char *v) {
    if (!strcmp(key, "_class_name")) {
        sdiff_sampler s = sdiff__sampler_from_class_name(v, false);
        if (s == SDIFF_SAMPLER_COUNT_)
            return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: class %s is not supported (DDIM, PNDM, "
                              "EulerDiscrete, EulerAncestralDiscrete, DPMSolverMultistep, DDPM are)", v);
        c->class_sampler = s;
    } else if (!strcmp(key, "beta_schedule")) {
        if (!strcmp(v, "linear")) c->beta_schedule = SDIFF__BETA_LINEAR;
        else if (!strcmp(v, "scaled_linear")) c->beta_schedule = SDIFF__BETA_SCALED_LINEAR;
        else if (!strcmp(v, "squaredcos_cap_v2")) c->beta_schedule = SDIFF__BETA_SQUAREDCOS_CAP_V2;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: beta_schedule \"%s\" is not supported", v);
        c->present |= SDIFF__SK_BETA_SCHEDULE;
    } else if (!strcmp(key, "prediction_type")) {
        if (!strcmp(v, "epsilon")) c->prediction_type = SDIFF__PRED_EPSILON;
        else if (!strcmp(v, "v_prediction")) c->prediction_type = SDIFF__PRED_V;
        else if (!strcmp(v, "sample")) c->prediction_type = SDIFF__PRED_SAMPLE;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: prediction_type \"%s\" is not supported", v);
        c->present |= SDIFF__SK_PREDICTION;
    } else if (!strcmp(key, "timestep_spacing")) {
        if (!strcmp(v, "leading")) c->timestep_spacing = SDIFF__SPACING_LEADING;
        else if (!strcmp(v, "linspace")) c->timestep_spacing = SDIFF__SPACING_LINSPACE;
        else if (!strcmp(v, "trailing")) c->timestep_spacing = SDIFF__SPACING_TRAILING;
        else return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: timestep_spacing \"%s\" is not supported", v);
        c->present |= SDIFF__SK_SPACING;
    } else if (!strcmp(key, "final_sigmas_type")) {
        if (!strcmp(v, "zero")) c->final_sigmas_sigma_min = false;
        else if (!strcmp(v, "sigma_min")) c->final_sigmas_sigma_min = true;
        else return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: final_sigmas_type \"%s\" is not zero or sigma_min", v);
        c->present |= SDIFF__SK_FINAL_SIGMA_MIN;
    } else if (!strcmp(key, "variance_type")) {
        c->variance_type = !strcmp(v, "fixed_small") ? SDIFF__VAR_FIXED_SMALL
                         : !strcmp(v, "fixed_small_log") ? SDIFF__VAR_FIXED_SMALL_LOG
                         : !strcmp(v, "fixed_large") ? SDIFF__VAR_FIXED_LARGE : SDIFF__VAR_OTHER;
        c->present |= SDIFF__SK_VARIANCE;
    } else if (!strcmp(key, "interpolation_type")) {
        c->bad_interpolation = strcmp(v, "linear") != 0;
    } else if (!strcmp(key, "timestep_type")) {
        c->bad_timestep_type = strcmp(v, "discrete") != 0;
    } else if (!strcmp(key, "algorithm_type")) {
        c->bad_algorithm = strcmp(v, "dpmsolver++") != 0 && strcmp(v, "deis") != 0; /* deis -> dpmsolver++ */
    } else if (!strcmp(key, "solver_type")) {
        c->bad_solver_type = strcmp(v, "midpoint") && strcmp(v, "logrho") && strcmp(v, "bh1") && strcmp(v, "bh2");
    }
    return SDIFF_OK;
}

SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_bool(sdiff__sched_config *c, const char *key, bool v) {
    if (!strcmp(key, "set_alpha_to_one")) { c->set_alpha_to_one = v; c->present |= SDIFF__SK_ALPHA_TO_ONE; }
    else if (!strcmp(key, "clip_sample")) { c->clip_sample = v; c->present |= SDIFF__SK_CLIP; }
    else if (!strcmp(key, "skip_prk_steps")) { c->skip_prk_steps = v; c->present |= SDIFF__SK_SKIP_PRK; }
    else if (!strcmp(key, "rescale_betas_zero_snr")) { c->rescale_betas_zero_snr = v; c->present |= SDIFF__SK_ZERO_SNR; }
    else if (!strcmp(key, "use_karras_sigmas")) { c->use_karras_sigmas = v; c->present |= SDIFF__SK_KARRAS; }
    else if (!strcmp(key, "lower_order_final")) { c->lower_order_final = v; c->present |= SDIFF__SK_LOWER_FINAL; }
    else if (!strcmp(key, "euler_at_final")) { c->euler_at_final = v; c->present |= SDIFF__SK_EULER_FINAL; }
    else if (!strcmp(key, "thresholding")) c->bad_thresholding = v;
    else if (!strcmp(key, "use_exponential_sigmas") || !strcmp(key, "use_beta_sigmas") ||
             !strcmp(key, "use_lu_lambdas") || !strcmp(key, "use_flow_sigmas") ||
             !strcmp(key, "use_dynamic_shifting")) c->bad_other_sigmas |= v;
    return SDIFF_OK;
}

SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_number(sdiff__sched_config *c, const char *key, double v) {
    if (!strcmp(key, "num_train_timesteps")) {
        if (!(v >= 1 && v <= 100000) || v != floor(v))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: num_train_timesteps %g is not an integer in 1..100000", v);
        c->num_train_timesteps = (int)v; c->present |= SDIFF__SK_NUM_TRAIN;
    } else if (!strcmp(key, "beta_start")) { c->beta_start = v; c->present |= SDIFF__SK_BETA_START; }
    else if (!strcmp(key, "beta_end")) { c->beta_end = v; c->present |= SDIFF__SK_BETA_END; }
    else if (!strcmp(key, "steps_offset")) {
        if (!(fabs(v) <= 100000) || v != floor(v))
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: steps_offset %g is not an integer", v);
        c->steps_offset = (int)v; c->present |= SDIFF__SK_STEPS_OFFSET;
    } else if (!strcmp(key, "clip_sample_range")) { c->clip_sample_range = v; c->present |= SDIFF__SK_CLIP_RANGE; }
    else if (!strcmp(key, "solver_order")) {
        if (v != 1 && v != 2 && v != 3)
            return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: solver_order %g is not 1, 2 or 3", v);
        c->solver_order = (int)v; c->present |= SDIFF__SK_ORDER;
    } else if (!strcmp(key, "sigma_min")) { c->sigma_min = v; c->present |= SDIFF__SK_SIGMA_MIN; }
    else if (!strcmp(key, "sigma_max")) { c->sigma_max = v; c->present |= SDIFF__SK_SIGMA_MAX; }
    else if (!strcmp(key, "lambda_min_clipped")) c->bad_lambda_clip = isfinite(v);
    else if (!strcmp(key, "set_alpha_to_one") || !strcmp(key, "clip_sample") || !strcmp(key, "skip_prk_steps") ||
             !strcmp(key, "use_karras_sigmas") || !strcmp(key, "lower_order_final"))
        return sdiff__sched_config_set_bool(c, key, v != 0);
    return SDIFF_OK;
}

/* A JSON null: "trained_betas": null and "sigma_min": null mean "absent". */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_null(sdiff__sched_config *c, const char *key) {
    if (!strcmp(key, "sigma_min")) c->present &= ~(uint32_t)SDIFF__SK_SIGMA_MIN;
    else if (!strcmp(key, "sigma_max")) c->present &= ~(uint32_t)SDIFF__SK_SIGMA_MAX;
    return SDIFF_OK;
}
/* "trained_betas" with values: not supported (no released SD config uses it). */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_set_array(sdiff__sched_config *c, const char *key) {
    SDIFF__UNUSED(c);
    if (!strcmp(key, "trained_betas"))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler: trained_betas is not supported");
    return SDIFF_OK;
}

/* StableDiffusionPipeline.__init__'s fix-ups of outdated configs: it sets
   steps_offset to 1 and clip_sample to false in the loaded scheduler's
   config (the values then also carry over to from_config). Call after
   reading scheduler_config.json, before sdiff__sched_create. */
SDIFF__PRIVATE void sdiff__sched_config_pipeline_fixups(sdiff__sched_config *c) {
    /* present keys are overwritten; absent ones were class defaults that the
       pipeline overwrote in the config dict, still listed in
       _use_default_values, so only the default class sees them: we mark them
       present, which is exact for the default class and for any class whose
       default equals the fixed value. */
    bool offset_now = (c->present & SDIFF__SK_STEPS_OFFSET) ? c->steps_offset : 0;
    if (offset_now != 1) { c->steps_offset = 1; c->present |= SDIFF__SK_STEPS_OFFSET; }
    bool clip_now = (c->present & SDIFF__SK_CLIP) ? c->clip_sample
                  : (c->class_sampler == SDIFF_SAMPLER_DDIM || c->class_sampler == SDIFF_SAMPLER_DDPM);
    if (clip_now) { c->clip_sample = false; c->present |= SDIFF__SK_CLIP; }
}

/* --- the scheduler object */
typedef enum sdiff__sched_kind {
    SDIFF__K_DDIM, SDIFF__K_PNDM, SDIFF__K_EULER, SDIFF__K_EULER_A, SDIFF__K_DPM, SDIFF__K_DDPM
} sdiff__sched_kind;

typedef struct sdiff__sched {
    sdiff__sched_kind kind;
    sdiff_sampler sampler;        /* resolved, never DEFAULT                   */
    sdiff__sched_config cfg;      /* resolved: every value the class uses      */
    int steps;                    /* num_inference_steps                       */
    int n_ts;                     /* len(scheduler.timesteps)                  */
    int t_start;                  /* first timestep evaluated (img2img)        */
    int64_t *its;                 /* integer timesteps (DDIM, PNDM, DDPM, DPM) */
    float *ts;                    /* timesteps as fed to the UNet              */
    float *sigmas;                /* n_ts + 1 (Euler, Euler a, DPM)            */
    int n_prk;                    /* PNDM: number of Runge-Kutta timesteps     */
    float *alphas_cumprod;        /* num_train_timesteps                       */
    float final_alpha_cumprod;
    float init_noise_sigma;
    float eta;                    /* DDIM                                      */
    /* state across steps, allocated for n elements at the first step */
    size_t n;
    float *buf[6];                /* PNDM: ets[0..3], cur_sample, cur_model_output; DPM: previous x0 */
    int n_ets, counter;
    bool has_cur_sample, has_cur_model_output;
    int lower_order_nums;
} sdiff__sched;

SDIFF__PRIVATE void sdiff__dpm_alpha_sigma(float sigma, float *alpha, float *sig);

SDIFF__PRIVATE void sdiff__sched_free(sdiff__sched *s) {
    if (!s) return;
    sdiff__free(s->its);
    sdiff__free(s->ts);
    sdiff__free(s->sigmas);
    sdiff__free(s->alphas_cumprod);
    for (int i = 0; i < 6; i++) sdiff__free(s->buf[i]);
    sdiff__free(s);
}

/* diffusers' __init__ defaults of each class, then the present keys. */
SDIFF__PRIVATE void sdiff__sched_resolve(sdiff__sched_kind k, const sdiff__sched_config *in, sdiff__sched_config *c) {
    sdiff__sched_config d;
    memset(&d, 0, sizeof d);
    d.class_sampler = in->class_sampler;
    d.num_train_timesteps = 1000;
    d.beta_start = 0.0001;
    d.beta_end = 0.02;
    d.beta_schedule = SDIFF__BETA_LINEAR;
    d.prediction_type = SDIFF__PRED_EPSILON;
    d.timestep_spacing = (k == SDIFF__K_DDIM || k == SDIFF__K_PNDM || k == SDIFF__K_DDPM)
                       ? SDIFF__SPACING_LEADING : SDIFF__SPACING_LINSPACE;
    d.set_alpha_to_one = k == SDIFF__K_DDIM;     /* DDIM True, PNDM False     */
    d.clip_sample = k == SDIFF__K_DDIM || k == SDIFF__K_DDPM;
    d.clip_sample_range = 1.0;
    d.lower_order_final = true;
    d.solver_order = 2;
    d.variance_type = SDIFF__VAR_FIXED_SMALL;
    uint32_t p = in->present;
#define SDIFF__TAKE(bit, field) if (p & (bit)) d.field = in->field
    SDIFF__TAKE(SDIFF__SK_NUM_TRAIN, num_train_timesteps);
    SDIFF__TAKE(SDIFF__SK_BETA_START, beta_start);
    SDIFF__TAKE(SDIFF__SK_BETA_END, beta_end);
    SDIFF__TAKE(SDIFF__SK_BETA_SCHEDULE, beta_schedule);
    SDIFF__TAKE(SDIFF__SK_PREDICTION, prediction_type);
    SDIFF__TAKE(SDIFF__SK_SPACING, timestep_spacing);
    SDIFF__TAKE(SDIFF__SK_STEPS_OFFSET, steps_offset);
    SDIFF__TAKE(SDIFF__SK_ALPHA_TO_ONE, set_alpha_to_one);
    SDIFF__TAKE(SDIFF__SK_CLIP, clip_sample);
    SDIFF__TAKE(SDIFF__SK_CLIP_RANGE, clip_sample_range);
    SDIFF__TAKE(SDIFF__SK_SKIP_PRK, skip_prk_steps);
    SDIFF__TAKE(SDIFF__SK_ZERO_SNR, rescale_betas_zero_snr);
    SDIFF__TAKE(SDIFF__SK_KARRAS, use_karras_sigmas);
    SDIFF__TAKE(SDIFF__SK_FINAL_SIGMA_MIN, final_sigmas_sigma_min);
    SDIFF__TAKE(SDIFF__SK_LOWER_FINAL, lower_order_final);
    SDIFF__TAKE(SDIFF__SK_EULER_FINAL, euler_at_final);
    SDIFF__TAKE(SDIFF__SK_ORDER, solver_order);
    SDIFF__TAKE(SDIFF__SK_VARIANCE, variance_type);
    SDIFF__TAKE(SDIFF__SK_SIGMA_MIN, sigma_min);
    SDIFF__TAKE(SDIFF__SK_SIGMA_MAX, sigma_max);
#undef SDIFF__TAKE
    d.present = p;
    d.bad_thresholding = in->bad_thresholding;
    d.bad_interpolation = in->bad_interpolation;
    d.bad_timestep_type = in->bad_timestep_type;
    d.bad_other_sigmas = in->bad_other_sigmas;
    d.bad_algorithm = in->bad_algorithm;
    d.bad_solver_type = in->bad_solver_type;
    d.bad_lambda_clip = in->bad_lambda_clip;
    if (k == SDIFF__K_PNDM) d.rescale_betas_zero_snr = false;   /* not a PNDM option */
    if (k != SDIFF__K_EULER && k != SDIFF__K_DPM) d.use_karras_sigmas = false;
    *c = d;
}

/* --- numpy helpers, in float64 as numpy computes them */

/* np.round: half to even (the default rounding mode). */
SDIFF__PRIVATE double sdiff__np_round(double x) { return nearbyint(x); }

/* np.linspace(start, stop, num)[i]: i * ((stop - start) / (num - 1)) + start,
   the last value exactly stop. */
SDIFF__PRIVATE double sdiff__np_linspace(double start, double stop, int num, int i) {
    if (num == 1) return start;
    if (i == num - 1) return stop;
    double step = (stop - start) / (double)(num - 1);
    double y = (double)i * step;
    return y + start;
}

/* np.arange(start, stop, step) for a float step: the length is
   ceil((stop - start) / step); value i is start + i * delta, with delta =
   (start + step) - start (numpy fills from its first two values). */
SDIFF__PRIVATE int sdiff__np_arange_len(double start, double stop, double step) {
    double n = ceil((stop - start) / step);
    return n > 0 ? (int)n : 0;
}
SDIFF__PRIVATE double sdiff__np_arange(double start, double step, int i) {
    if (i == 0) return start;
    double second = start + step;
    if (i == 1) return second;
    double delta = second - start;
    double y = (double)i * delta;
    return start + y;
}

/* np.interp(x, arange(len), fp) with fp float32 promoted to double. */
SDIFF__PRIVATE double sdiff__np_interp_idx(double x, const float *fp, int len) {
    if (x <= 0) return fp[0];
    if (x >= (double)(len - 1)) return fp[len - 1];
    int j = (int)floor(x);
    if ((double)j == x) return fp[j];
    double slope = ((double)fp[j + 1] - (double)fp[j]) / 1.0;
    double y = slope * (x - (double)j);
    return y + (double)fp[j];
}

/* diffusers' _sigma_to_t: the fractional training index of sigma, from
   log_sigmas (float32, ascending). */
SDIFF__PRIVATE double sdiff__sigma_to_t(double sigma, const float *log_sigmas, int len) {
    double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    int low = 0;
    for (int i = 0; i < len; i++) if (log_sigma - (double)log_sigmas[i] >= 0) low = i; /* cumsum().argmax() */
    if (low > len - 2) low = len - 2;
    int high = low + 1;
    float lo = log_sigmas[low], hi = log_sigmas[high];
    float den = lo - hi;                                  /* float32 - float32 */
    double w = ((double)lo - log_sigma) / (double)den;
    if (w < 0) w = 0;
    if (w > 1) w = 1;
    double a = (1.0 - w) * (double)low;
    double b = w * (double)high;
    return a + b;
}

/* --- betas and alphas_cumprod (float32 torch) */
SDIFF__PRIVATE double sdiff__alpha_bar_cosine(double t) {
    double c = cos((t + 0.008) / 1.008 * 3.14159265358979323846 / 2);
    return c * c;
}

/* torch.linspace(start, end, steps, dtype=float32)[i] (ATen's scalar formula:
   from the start below halfway, from the end above). */
SDIFF__PRIVATE float sdiff__torch_linspace_f32(float start, float end, int steps, int i) {
    if (steps == 1) return start;
    float step = (end - start) / (float)(steps - 1);
    if (i < steps / 2) { float d = step * (float)i; return start + d; }
    float d = step * (float)(steps - i - 1);
    return end - d;
}

SDIFF__PRIVATE void sdiff__sched_alphas(sdiff__sched *s) {
    const sdiff__sched_config *c = &s->cfg;
    int N = c->num_train_timesteps;
    float *betas = s->alphas_cumprod; /* computed in place */
    for (int i = 0; i < N; i++) {
        if (c->beta_schedule == SDIFF__BETA_LINEAR) {
            betas[i] = sdiff__torch_linspace_f32((float)c->beta_start, (float)c->beta_end, N, i);
        } else if (c->beta_schedule == SDIFF__BETA_SCALED_LINEAR) {
            /* torch.linspace(beta_start**0.5, beta_end**0.5, N) ** 2 */
            float b = sdiff__torch_linspace_f32((float)sqrt(c->beta_start), (float)sqrt(c->beta_end), N, i);
            betas[i] = b * b;
        } else { /* squaredcos_cap_v2: betas_for_alpha_bar in python floats */
            double t1 = (double)i / N, t2 = (double)(i + 1) / N;
            double b = 1 - sdiff__alpha_bar_cosine(t2) / sdiff__alpha_bar_cosine(t1);
            betas[i] = (float)(b < 0.999 ? b : 0.999);
        }
    }
    if (c->rescale_betas_zero_snr) {
        /* rescale_zero_terminal_snr, float32 torch ops */
        double acc = 1.0;
        for (int i = 0; i < N; i++) {
            acc *= (double)(1.0f - betas[i]);
            betas[i] = sqrtf((float)acc); /* alphas_bar_sqrt */
        }
        float s0 = betas[0], sT = betas[N - 1];
        float scale = s0 / (s0 - sT);
        float prev_bar = 0;
        for (int i = 0; i < N; i++) {
            float v = (betas[i] - sT) * scale;
            float bar = v * v;
            float alpha = i == 0 ? bar : bar / prev_bar;
            prev_bar = bar;
            betas[i] = 1.0f - alpha;
        }
    }
    /* alphas = 1 - betas; torch.cumprod accumulates in double on the CPU */
    double acc = 1.0;
    for (int i = 0; i < N; i++) {
        acc *= (double)(1.0f - betas[i]);
        s->alphas_cumprod[i] = (float)acc;
    }
    if (c->rescale_betas_zero_snr && (s->kind == SDIFF__K_EULER || s->kind == SDIFF__K_EULER_A || s->kind == SDIFF__K_DPM))
        s->alphas_cumprod[N - 1] = 1.0f / 16777216.0f; /* alphas_cumprod[-1] = 2**-24 */
    s->final_alpha_cumprod = c->set_alpha_to_one ? 1.0f : s->alphas_cumprod[0];
}

/* ((1 - alphas_cumprod) / alphas_cumprod) ** 0.5 in float32. */
SDIFF__PRIVATE float sdiff__train_sigma(const sdiff__sched *s, int t) {
    float a = s->alphas_cumprod[t];
    return sqrtf((1.0f - a) / a);
}

/* set_timesteps' integer schedules (DDIM / DDPM / PNDM base, ascending=false):
   writes n values, descending. */
SDIFF__PRIVATE void sdiff__int_timesteps(const sdiff__sched_config *c, int n, int64_t *out) {
    int N = c->num_train_timesteps;
    if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
        /* linspace: np.linspace(0, N - 1, n).round()[::-1] */
        for (int i = 0; i < n; i++) out[n - 1 - i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n, i));
    } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
        /* leading: (arange(n) * (N // n)).round()[::-1] + steps_offset */
        int ratio = N / n;
        for (int i = 0; i < n; i++) out[n - 1 - i] = (int64_t)i * ratio + c->steps_offset;
    } else {
        /* trailing: round(arange(N, 0, -N / n)) - 1 */
        double ratio = (double)N / n;
        int len = sdiff__np_arange_len(N, 0, -ratio);
        for (int i = 0; i < n; i++)
            out[i] = i < len ? (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1 : 0;
    }
}

SDIFF__PRIVATE sdiff_status sdiff__sched_timesteps(sdiff__sched *s) {
    const sdiff__sched_config *c = &s->cfg;
    int n = s->steps, N = c->num_train_timesteps;
    if (s->kind == SDIFF__K_DDIM || s->kind == SDIFF__K_DDPM) {
        s->n_ts = n;
        s->its = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t));
        if (!s->its) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        sdiff__int_timesteps(c, n, s->its);
    } else if (s->kind == SDIFF__K_PNDM) {
        int64_t *base = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t)); /* ascending _timesteps */
        if (!base) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
            for (int i = 0; i < n; i++) base[i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n, i));
        } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
            for (int i = 0; i < n; i++) base[i] = (int64_t)i * (N / n) + c->steps_offset;
        } else { /* trailing: round(arange(N, 0, -N/n))[::-1] - 1 */
            double ratio = (double)N / n;
            for (int i = 0; i < n; i++) base[n - 1 - i] = (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1;
        }
        if (c->skip_prk_steps) {
            /* plms: concat(ts[:-1], ts[-2:-1], ts[-1:])[::-1] */
            s->n_prk = 0;
            s->n_ts = n + 1;
            s->its = (int64_t *)sdiff__calloc((size_t)s->n_ts, sizeof(int64_t));
            if (!s->its) { sdiff__free(base); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
            /* ts[-2:-1] is empty when n == 1: then the schedule is just [t0] */
            int k = 0;
            for (int i = 0; i < n - 1; i++) s->its[k++] = base[i];
            if (n >= 2) s->its[k++] = base[n - 2];
            s->its[k++] = base[n - 1];
            for (int i = 0; i < k / 2; i++) { int64_t t = s->its[i]; s->its[i] = s->its[k - 1 - i]; s->its[k - 1 - i] = t; }
            s->n_ts = k;
        } else {
            /* prk: (ts[-4:].repeat(2) + tile([0, N//n//2], 4))[:-1].repeat(2)[1:-1][::-1];
               plms: ts[:-3][::-1] */
            int half = N / n / 2;
            int64_t a[8], r[14];
            for (int i = 0; i < 8; i++) a[i] = base[n - 4 + i / 2] + ((i & 1) ? half : 0);
            for (int i = 0; i < 14; i++) r[i] = a[i / 2];
            s->n_prk = 12;
            s->n_ts = 12 + (n - 3);
            s->its = (int64_t *)sdiff__calloc((size_t)s->n_ts, sizeof(int64_t));
            if (!s->its) { sdiff__free(base); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
            for (int i = 0; i < 12; i++) s->its[i] = r[12 - i];
            for (int i = 0; i < n - 3; i++) s->its[12 + i] = base[n - 4 - i];
        }
        sdiff__free(base);
    } else if (s->kind == SDIFF__K_DPM) {
        /* last_timestep = N - searchsorted(flip(lambda_t), lambda_min_clipped = -inf) = N */
        s->n_ts = n;
        s->its = (int64_t *)sdiff__calloc((size_t)n, sizeof(int64_t));
        s->sigmas = (float *)sdiff__calloc((size_t)n + 1, sizeof(float));
        float *train = (float *)sdiff__calloc((size_t)N, sizeof(float)), *logs = (float *)sdiff__calloc((size_t)N, sizeof(float));
        if (!s->its || !s->sigmas || !train || !logs) {
            sdiff__free(train); sdiff__free(logs);
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        }
        for (int t = 0; t < N; t++) { train[t] = sdiff__train_sigma(s, t); logs[t] = logf(train[t]); }
        if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) {
            /* linspace(0, last - 1, n + 1).round()[::-1][:-1] */
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)sdiff__np_round(sdiff__np_linspace(0, N - 1, n + 1, n - i));
        } else if (c->timestep_spacing == SDIFF__SPACING_LEADING) {
            /* (arange(n + 1) * (last // (n + 1))).round()[::-1][:-1] + steps_offset */
            int ratio = N / (n + 1);
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)(n - i) * ratio + c->steps_offset;
        } else { /* arange(last, 0, -N / n).round() - 1 */
            double ratio = (double)N / n;
            for (int i = 0; i < n; i++) s->its[i] = (int64_t)sdiff__np_round(sdiff__np_arange(N, -ratio, i)) - 1;
        }
        if (c->use_karras_sigmas) {
            /* in_sigmas = flip(train sigmas): sigma_min = train[0], sigma_max = train[N-1] */
            double smin = train[0], smax = train[N - 1];
            double min_inv = pow(smin, 1.0 / 7.0), max_inv = pow(smax, 1.0 / 7.0);
            for (int i = 0; i < n; i++) {
                double ramp = sdiff__np_linspace(0, 1, n, i);
                double d = min_inv - max_inv;
                double r = ramp * d;
                double sg = pow(max_inv + r, 7.0);
                s->sigmas[i] = (float)sg;
                double t = sdiff__sigma_to_t(sg, logs, N);
                if (c->beta_schedule != SDIFF__BETA_SQUAREDCOS_CAP_V2) t = sdiff__np_round(t);
                s->its[i] = (int64_t)t;
            }
        } else {
            for (int i = 0; i < n; i++) s->sigmas[i] = (float)sdiff__np_interp_idx((double)s->its[i], train, N);
        }
        s->sigmas[n] = c->final_sigmas_sigma_min ? train[0] : 0.0f;
        sdiff__free(train);
        sdiff__free(logs);
    } else { /* Euler, Euler ancestral: float timesteps, interpolated sigmas */
        s->n_ts = n;
        s->ts = (float *)sdiff__calloc((size_t)n, sizeof(float));
        s->sigmas = (float *)sdiff__calloc((size_t)n + 1, sizeof(float));
        double *sd = (double *)sdiff__calloc((size_t)n, sizeof(double));
        float *train = (float *)sdiff__calloc((size_t)N, sizeof(float)), *logs = (float *)sdiff__calloc((size_t)N, sizeof(float));
        if (!s->ts || !s->sigmas || !sd || !train || !logs) {
            sdiff__free(sd); sdiff__free(train); sdiff__free(logs);
            return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        }
        for (int t = 0; t < N; t++) { train[t] = sdiff__train_sigma(s, t); logs[t] = logf(train[t]); }
        for (int i = 0; i < n; i++) {
            float t;
            if (c->timestep_spacing == SDIFF__SPACING_LINSPACE) /* linspace(0, N-1, n, dtype=float32)[::-1] */
                t = (float)sdiff__np_linspace(0, N - 1, n, n - 1 - i);
            else if (c->timestep_spacing == SDIFF__SPACING_LEADING) /* (arange(n)*(N//n)).round()[::-1] + offset */
                t = (float)((int64_t)(n - 1 - i) * (N / n)) + (float)c->steps_offset;
            else /* arange(N, 0, -N/n).round() - 1, in float32 */
                t = (float)sdiff__np_round(sdiff__np_arange(N, -(double)N / n, i)) - 1.0f;
            s->ts[i] = t;
            sd[i] = sdiff__np_interp_idx((double)t, train, N); /* interpolation_type linear */
        }
        if (s->kind == SDIFF__K_EULER && c->use_karras_sigmas) {
            double smin = (c->present & SDIFF__SK_SIGMA_MIN) ? c->sigma_min : sd[n - 1];
            double smax = (c->present & SDIFF__SK_SIGMA_MAX) ? c->sigma_max : sd[0];
            double min_inv = pow(smin, 1.0 / 7.0), max_inv = pow(smax, 1.0 / 7.0);
            for (int i = 0; i < n; i++) {
                double ramp = sdiff__np_linspace(0, 1, n, i);
                double d = min_inv - max_inv;
                double r = ramp * d;
                sd[i] = pow(max_inv + r, 7.0);
                s->ts[i] = (float)sdiff__sigma_to_t(sd[i], logs, N);
            }
        }
        for (int i = 0; i < n; i++) s->sigmas[i] = (float)sd[i];
        s->sigmas[n] = (s->kind == SDIFF__K_EULER && c->final_sigmas_sigma_min) ? train[0] : 0.0f;
        float mx = 0;
        for (int i = 0; i <= n; i++) if (s->sigmas[i] > mx) mx = s->sigmas[i];
        /* init_noise_sigma: max sigma for linspace/trailing, else sqrt(max^2 + 1) */
        float mx2 = mx * mx;
        s->init_noise_sigma = c->timestep_spacing == SDIFF__SPACING_LEADING ? sqrtf(mx2 + 1.0f) : mx;
        sdiff__free(sd);
        sdiff__free(train);
        sdiff__free(logs);
    }
    if (!s->ts) {
        s->ts = (float *)sdiff__calloc((size_t)s->n_ts, sizeof(float));
        if (!s->ts) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
        for (int i = 0; i < s->n_ts; i++) s->ts[i] = (float)s->its[i];
    }
    return SDIFF_OK;
}

/* Creates the scheduler for `steps` denoising steps (set_timesteps). */
SDIFF__PRIVATE sdiff_status sdiff__sched_create(sdiff_sampler sampler, const sdiff__sched_config *cfg, int steps,
                                                double eta, sdiff__sched **out) {
    *out = NULL;
    if (!cfg) return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: no config");
    if ((int)sampler < 0 || sampler >= SDIFF_SAMPLER_COUNT_)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: unknown sampler %d", (int)sampler);
    sdiff_sampler sm = sampler;
    if (sm == SDIFF_SAMPLER_DEFAULT) {
        sm = cfg->class_sampler == SDIFF_SAMPLER_DEFAULT ? SDIFF_SAMPLER_DDIM : cfg->class_sampler;
        if (sm == SDIFF_SAMPLER_DPMPP_2M || sm == SDIFF_SAMPLER_DPMPP_2M_KARRAS)
            sm = (cfg->present & SDIFF__SK_KARRAS) && cfg->use_karras_sigmas ? SDIFF_SAMPLER_DPMPP_2M_KARRAS
                                                                            : SDIFF_SAMPLER_DPMPP_2M;
    }
    sdiff__sched_kind k = sm == SDIFF_SAMPLER_DDIM ? SDIFF__K_DDIM : sm == SDIFF_SAMPLER_PNDM ? SDIFF__K_PNDM
                        : sm == SDIFF_SAMPLER_EULER ? SDIFF__K_EULER : sm == SDIFF_SAMPLER_EULER_A ? SDIFF__K_EULER_A
                        : sm == SDIFF_SAMPLER_DDPM ? SDIFF__K_DDPM : SDIFF__K_DPM;
    sdiff__sched_config c;
    sdiff__sched_resolve(k, cfg, &c);
    if (sampler == SDIFF_SAMPLER_DPMPP_2M || sampler == SDIFF_SAMPLER_DPMPP_2M_KARRAS) {
        /* an explicit "DPM++ 2M (Karras)": from_config(config, algorithm_type="dpmsolver++",
           solver_order=2, use_karras_sigmas=<the name>) */
        c.use_karras_sigmas = sampler == SDIFF_SAMPLER_DPMPP_2M_KARRAS;
        c.solver_order = 2;
        c.bad_algorithm = c.bad_solver_type = false;
    }
    const char *name = sdiff_sampler_name(sm);
    int N = c.num_train_timesteps;
    if (steps < 1 || steps > N)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: steps %d out of range 1..%d (num_train_timesteps)",
                          name, steps, N);
    if (!(c.beta_start > 0 && c.beta_end > 0 && c.beta_start < 1 && c.beta_end < 1))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: beta_start %g / beta_end %g not in (0, 1)", c.beta_start, c.beta_end);
    if (c.bad_thresholding && k != SDIFF__K_PNDM && k != SDIFF__K_EULER && k != SDIFF__K_EULER_A)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: thresholding is not supported", name);
    if (k == SDIFF__K_EULER && (c.bad_interpolation || c.bad_timestep_type))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: only interpolation_type linear, timestep_type discrete", name);
    if ((k == SDIFF__K_EULER || k == SDIFF__K_DPM) && c.bad_other_sigmas)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: exponential/beta/lu/flow sigmas are not supported", name);
    if (k == SDIFF__K_DPM && (c.bad_algorithm || c.bad_solver_type || c.bad_lambda_clip || c.solver_order > 2))
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: only algorithm_type dpmsolver++, solver_type midpoint, "
                          "solver_order 1 or 2", name);
    if (k == SDIFF__K_DDPM && c.variance_type == SDIFF__VAR_OTHER)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: variance_type must be fixed_small(_log) or fixed_large", name);
    if (k == SDIFF__K_PNDM && c.prediction_type == SDIFF__PRED_SAMPLE)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: prediction_type sample is not epsilon or v_prediction", name);
    if (k == SDIFF__K_EULER_A && c.prediction_type == SDIFF__PRED_SAMPLE)
        return sdiff__err(SDIFF_ERR_UNSUPPORTED, "scheduler %s: prediction_type sample is not implemented (diffusers too)", name);
    if (k == SDIFF__K_PNDM && !c.skip_prk_steps && steps < 4)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: the Runge-Kutta warm-up (skip_prk_steps false) needs "
                          "at least 4 steps, got %d", name, steps);
    sdiff__sched *s = (sdiff__sched *)sdiff__calloc(1, sizeof *s);
    if (!s) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory");
    s->kind = k;
    s->sampler = sm;
    s->cfg = c;
    s->steps = steps;
    s->init_noise_sigma = 1.0f;
    s->eta = (float)eta;
    s->alphas_cumprod = (float *)sdiff__calloc((size_t)N, sizeof(float));
    if (!s->alphas_cumprod) { sdiff__sched_free(s); return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory"); }
    sdiff__sched_alphas(s);
    sdiff_status st = sdiff__sched_timesteps(s);
    if (st != SDIFF_OK) { sdiff__sched_free(s); return st; }
    *out = s;
    return SDIFF_OK;
}

/* The double Python would hold for a number the user typed and we got as a
   float (0.7f -> 0.7): the shortest decimal that rounds back to f. */
SDIFF__PRIVATE double sdiff__sched_decimal(float f) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, NULL);
        if ((float)d == f) return d;
    }
    return (double)f;
}

/* img2img: diffusers' get_timesteps(steps, strength) + set_begin_index:
   init_timestep = min(int(steps * strength), steps), t_start = steps -
   init_timestep; the evaluations start at timesteps[t_start] (scheduler
   order is 1 for every class here), the Euler/DPM step index at t_start.
   strength is the double diffusers sees (see sdiff__sched_decimal). */
SDIFF__PRIVATE sdiff_status sdiff__sched_set_strength(sdiff__sched *s, double strength) {
    if (!(strength >= 0.0 && strength <= 1.0))
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "img2img: strength %g is not in [0, 1]", strength);
    double prod = (double)s->steps * strength;
    int init = (int)prod;
    if (init > s->steps) init = s->steps;
    int t_start = s->steps - init;
    if (t_start < 0) t_start = 0;
    if (t_start >= s->n_ts)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "img2img: strength %g with %d steps leaves no denoising step "
                          "(int(steps * strength) = 0)", strength, s->steps);
    s->t_start = t_start;
    return SDIFF_OK;
}

/* img2img with the user's float strength (converted as Python would have
   read it): the first timestep index, or sdiff__sched_len(s) when no step is
   left or strength is out of range (sdiff_last_error says which). */
SDIFF__PRIVATE int sdiff__sched_img2img_begin(sdiff__sched *s, float strength) {
    if (sdiff__sched_set_strength(s, sdiff__sched_decimal(strength)) != SDIFF_OK) return s->n_ts;
    return s->t_start;
}

/* len(scheduler.timesteps): the evaluations of a txt2img run (PNDM makes
   steps + 1, or steps + 9 with the Runge-Kutta warm-up). */
SDIFF__PRIVATE int sdiff__sched_len(const sdiff__sched *s) { return s->n_ts; }
/* Model evaluations (UNet calls) the pipeline makes: len(timesteps[t_start:]). */
SDIFF__PRIVATE int sdiff__sched_num_evals(const sdiff__sched *s) { return s->n_ts - s->t_start; }
/* The timestep the UNet gets at index i (float: Euler's are fractional
   with Karras sigmas or linspace spacing; the others are integers). */
SDIFF__PRIVATE float sdiff__sched_timestep(const sdiff__sched *s, int i) { return s->ts[i]; }
/* txt2img: the initial latents are randn * init_noise_sigma. */
SDIFF__PRIVATE float sdiff__sched_init_noise_sigma(const sdiff__sched *s) { return s->init_noise_sigma; }

/* scale_model_input at index i; out may alias x. */
SDIFF__PRIVATE void sdiff__sched_scale_model_input(const sdiff__sched *s, int i, const float *x, float *out, size_t n) {
    if (s->kind == SDIFF__K_EULER || s->kind == SDIFF__K_EULER_A) {
        /* sample / (sigma**2 + 1) ** 0.5 */
        float sigma = s->sigmas[i];
        float s2 = sigma * sigma;
        float d = sqrtf(s2 + 1.0f);
        for (size_t j = 0; j < n; j++) out[j] = x[j] / d;
    } else if (out != x) {
        memcpy(out, x, n * sizeof(float));
    }
}

SDIFF__PRIVATE void sdiff__sched_scale_input(const sdiff__sched *s, int i, float *x, size_t n) {
    sdiff__sched_scale_model_input(s, i, x, x, n);
}

/* img2img: x <- add_noise(x, noise, timesteps[first]) (the begin index for
   Euler and DPM-Solver, the timestep value for the others). */
SDIFF__PRIVATE void sdiff__sched_add_noise(const sdiff__sched *s, int first, float *x, const float *noise, size_t n) {
    const float *orig = x;
    float *out = x;
    if (s->kind == SDIFF__K_EULER || s->kind == SDIFF__K_EULER_A) {
        /* original + noise * sigmas[begin_index] */
        float sigma = s->sigmas[first];
        for (size_t j = 0; j < n; j++) { float v = noise[j] * sigma; out[j] = orig[j] + v; }
    } else if (s->kind == SDIFF__K_DPM) {
        /* alpha_t * original + sigma_t * noise, alpha_t = 1 / sqrt(sigma^2 + 1) */
        float a, st;
        sdiff__dpm_alpha_sigma(s->sigmas[first], &a, &st);
        for (size_t j = 0; j < n; j++) { float u = a * orig[j], v = st * noise[j]; out[j] = u + v; }
    } else {
        /* sqrt(alphas_cumprod[t]) * original + sqrt(1 - alphas_cumprod[t]) * noise */
        float ac = s->alphas_cumprod[s->its[first]];
        float sa = sqrtf(ac), sb = sqrtf(1.0f - ac);
        for (size_t j = 0; j < n; j++) { float u = sa * orig[j], v = sb * noise[j]; out[j] = u + v; }
    }
}

SDIFF__PRIVATE sdiff_status sdiff__sched_buffers(sdiff__sched *s, size_t n) {
    if (s->n == n) return SDIFF_OK;
    if (s->n != 0)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: step called with %zu elements, earlier with %zu", n, s->n);
    int count = s->kind == SDIFF__K_PNDM ? 6 : s->kind == SDIFF__K_DPM ? 1 : 0;
    for (int i = 0; i < count; i++) {
        s->buf[i] = (float *)sdiff__calloc(n, sizeof(float));
        if (!s->buf[i]) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory (%zu floats)", n);
    }
    s->n = n;
    return SDIFF_OK;
}

/* PNDM's _get_prev_sample (formula (9) of the PNDM paper), float32 torch ops. */
SDIFF__PRIVATE void sdiff__pndm_prev(const sdiff__sched *s, const float *sample, int64_t t, int64_t prev_t,
                                     const float *mo, float *out, size_t n) {
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    float bt = 1.0f - at, bp = 1.0f - ap;
    float sa = sqrtf(at), sb = sqrtf(bt);
    float sample_coeff = sqrtf(ap / at);
    float d1 = at * sqrtf(bp);
    float d2 = sqrtf(at * bt * ap);
    float denom = d1 + d2;
    float diff = ap - at;
    for (size_t j = 0; j < n; j++) {
        float m = mo[j];
        if (s->cfg.prediction_type == SDIFF__PRED_V) { float u = sa * m, v = sb * sample[j]; m = u + v; }
        float q = diff * m;
        q = q / denom;
        float p = sample_coeff * sample[j];
        out[j] = p - q;
    }
}

SDIFF__PRIVATE void sdiff__pndm_step(sdiff__sched *s, int idx, const float *mo, float *x, size_t n) {
    int N = s->cfg.num_train_timesteps, steps = s->steps;
    float **ets = s->buf, *cur_sample = s->buf[4], *cur_mo = s->buf[5];
    int64_t t = s->its[idx];
    if (s->counter < s->n_prk && !s->cfg.skip_prk_steps) {
        /* step_prk: Runge-Kutta warm-up, four evaluations per step */
        int64_t diff = s->counter % 2 ? 0 : N / steps / 2;
        int64_t prev_t = t - diff;
        int64_t t_eff = s->its[s->counter / 4 * 4];
        const float sixth = (float)(1.0 / 6.0), third = (float)(1.0 / 3.0);
        int phase = s->counter % 4;
        const float *use_mo = mo;
        if (phase == 0) {
            for (size_t j = 0; j < n; j++) cur_mo[j] = 0.0f + sixth * mo[j];
            memcpy(ets[s->n_ets < 4 ? s->n_ets : 3], mo, n * sizeof(float));
            if (s->n_ets < 4) s->n_ets++;
            memcpy(cur_sample, x, n * sizeof(float));
            s->has_cur_sample = true;
        } else if (phase == 1 || phase == 2) {
            for (size_t j = 0; j < n; j++) { float v = third * mo[j]; cur_mo[j] = cur_mo[j] + v; }
        } else {
            for (size_t j = 0; j < n; j++) { float v = sixth * mo[j]; cur_mo[j] = cur_mo[j] + v; }
            use_mo = cur_mo;
        }
        sdiff__pndm_prev(s, cur_sample, t_eff, prev_t, use_mo, x, n);
        if (phase == 3) memset(cur_mo, 0, n * sizeof(float));
        s->counter++;
        return;
    }
    /* step_plms: linear multistep */
    int64_t prev_t = t - N / steps;
    if (s->counter != 1) {
        /* ets = ets[-3:] + [model_output] */
        if (s->n_ets == 4) {
            float *old = ets[0];
            ets[0] = ets[1]; ets[1] = ets[2]; ets[2] = ets[3]; ets[3] = old;
            s->n_ets = 3;
        }
        memcpy(ets[s->n_ets++], mo, n * sizeof(float));
    } else {
        prev_t = t;
        t = t + N / steps;
    }
    int ne = s->n_ets;
    const float *e1 = ne >= 1 ? ets[ne - 1] : NULL, *e2 = ne >= 2 ? ets[ne - 2] : NULL;
    const float *e3 = ne >= 3 ? ets[ne - 3] : NULL, *e4 = ne >= 4 ? ets[ne - 4] : NULL;
    float *m = cur_mo; /* scratch */
    const float *sample = x;
    if (ne == 1 && s->counter == 0) {
        memcpy(m, mo, n * sizeof(float));
        memcpy(cur_sample, x, n * sizeof(float));
        s->has_cur_sample = true;
    } else if (ne == 1 && s->counter == 1) {
        for (size_t j = 0; j < n; j++) { float v = mo[j] + e1[j]; m[j] = v / 2.0f; }
        sample = cur_sample;
        s->has_cur_sample = false;
    } else if (ne == 2) {
        for (size_t j = 0; j < n; j++) { float a = 3.0f * e1[j]; float v = a - e2[j]; m[j] = v / 2.0f; }
    } else if (ne == 3) {
        for (size_t j = 0; j < n; j++) {
            float a = 23.0f * e1[j], b = 16.0f * e2[j], c = 5.0f * e3[j];
            float v = a - b; v = v + c; m[j] = v / 12.0f;
        }
    } else {
        const float k = (float)(1.0 / 24.0);
        for (size_t j = 0; j < n; j++) {
            float a = 55.0f * e1[j], b = 59.0f * e2[j], c = 37.0f * e3[j], d = 9.0f * e4[j];
            float v = a - b; v = v + c; v = v - d; m[j] = k * v;
        }
    }
    sdiff__pndm_prev(s, sample, t, prev_t, m, x, n);
    s->counter++;
}

/* x0 and epsilon from the model output for the alphas_cumprod schedulers. */
SDIFF__PRIVATE void sdiff__pred_x0(sdiff__pred_type pt, float sa, float sb, float mo, float x, float *x0, float *eps) {
    if (pt == SDIFF__PRED_EPSILON) {
        float p = sb * mo; float d = x - p; *x0 = d / sa; *eps = mo;
    } else if (pt == SDIFF__PRED_SAMPLE) {
        *x0 = mo; float p = sa * mo; float d = x - p; *eps = d / sb;
    } else {
        float a = sa * x, b = sb * mo; *x0 = a - b;
        float c = sa * mo, d = sb * x; *eps = c + d;
    }
}

SDIFF__PRIVATE void sdiff__ddim_step(const sdiff__sched *s, int idx, const float *mo, float *x, size_t n, float *noise) {
    const sdiff__sched_config *c = &s->cfg;
    int64_t t = s->its[idx];
    int64_t prev_t = t - c->num_train_timesteps / s->steps; /* always N // steps, whatever the spacing */
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : s->final_alpha_cumprod;
    float bt = 1.0f - at, bp = 1.0f - ap;
    float sa = sqrtf(at), sb = sqrtf(bt), sap = sqrtf(ap);
    float variance = (bp / bt) * (1.0f - at / ap);
    float std = s->eta * sqrtf(variance);
    float std2 = std * std;
    float dir = sqrtf(1.0f - ap - std2);
    float r = (float)c->clip_sample_range;
    for (size_t j = 0; j < n; j++) {
        float x0, eps;
        sdiff__pred_x0(c->prediction_type, sa, sb, mo[j], x[j], &x0, &eps);
        if (c->clip_sample) x0 = x0 < -r ? -r : x0 > r ? r : x0;
        float u = sap * x0, v = dir * eps;
        float prev = u + v;
        if (noise) { float w = std * noise[j]; prev = prev + w; }
        x[j] = prev;
    }
}

SDIFF__PRIVATE void sdiff__ddpm_step(const sdiff__sched *s, int idx, const float *mo, float *x, size_t n, float *noise) {
    const sdiff__sched_config *c = &s->cfg;
    int64_t t = s->its[idx];
    int64_t prev_t = idx == s->n_ts - 1 ? -1 : s->its[idx + 1]; /* previous_timestep */
    float at = s->alphas_cumprod[t];
    float ap = prev_t >= 0 ? s->alphas_cumprod[prev_t] : 1.0f;
    float bt = 1.0f - at, bp = 1.0f - ap;
    float cur_a = at / ap, cur_b = 1.0f - cur_a;
    float sa = sqrtf(at), sb = sqrtf(bt);
    float c0 = sqrtf(ap) * cur_b; c0 = c0 / bt;
    float c1 = sqrtf(cur_a) * bp; c1 = c1 / bt;
    float var = (1.0f - ap) / (1.0f - at); var = var * cur_b;
    if (var < 1e-20f) var = 1e-20f;
    float sd = c->variance_type == SDIFF__VAR_FIXED_SMALL ? sqrtf(var)
             : c->variance_type == SDIFF__VAR_FIXED_SMALL_LOG ? expf(0.5f * logf(var)) : sqrtf(cur_b);
    float r = (float)c->clip_sample_range;
    for (size_t j = 0; j < n; j++) {
        float x0, eps;
        sdiff__pred_x0(c->prediction_type, sa, sb, mo[j], x[j], &x0, &eps);
        if (c->clip_sample) x0 = x0 < -r ? -r : x0 > r ? r : x0;
        float u = c0 * x0, v = c1 * x[j];
        float prev = u + v;
        if (noise) { float w = sd * noise[j]; prev = prev + w; }
        x[j] = prev;
    }
}

/* Euler (gamma = 0: s_churn is 0 in the pipeline) and Euler ancestral. */
SDIFF__PRIVATE void sdiff__euler_x0(sdiff__pred_type pt, float sigma, float mo, float x, float *x0) {
    if (pt == SDIFF__PRED_EPSILON) { float p = sigma * mo; *x0 = x - p; }
    else if (pt == SDIFF__PRED_SAMPLE) *x0 = mo;
    else {
        /* model_output * (-sigma / (sigma**2 + 1) ** 0.5) + sample / (sigma**2 + 1) */
        float s2 = sigma * sigma;
        s2 = s2 + 1.0f;
        float cout = -sigma / sqrtf(s2);
        float a = mo * cout, b = x / s2;
        *x0 = a + b;
    }
}

SDIFF__PRIVATE void sdiff__euler_step(const sdiff__sched *s, int idx, const float *mo, float *x, size_t n, float *noise) {
    const sdiff__sched_config *c = &s->cfg;
    float sigma = s->sigmas[idx], sigma_next = s->sigmas[idx + 1];
    float dt, sigma_up = 0;
    if (s->kind == SDIFF__K_EULER) {
        dt = sigma_next - sigma;                     /* sigma_hat = sigma * (0 + 1) */
    } else {
        /* sigma_up = (to^2 (from^2 - to^2) / from^2) ** 0.5, sigma_down = (to^2 - up^2) ** 0.5 */
        float t2 = sigma_next * sigma_next, f2 = sigma * sigma;
        float num = f2 - t2; num = t2 * num;
        sigma_up = sqrtf(num / f2);
        float up2 = sigma_up * sigma_up;
        float sigma_down = sqrtf(t2 - up2);
        dt = sigma_down - sigma;
    }
    for (size_t j = 0; j < n; j++) {
        float x0;
        sdiff__euler_x0(c->prediction_type, sigma, mo[j], x[j], &x0);
        float d = x[j] - x0; d = d / sigma;          /* derivative */
        float v = d * dt;
        float prev = x[j] + v;
        if (noise) { float w = noise[j] * sigma_up; prev = prev + w; }
        x[j] = prev;
    }
}

/* DPM-Solver++ (dpmsolver++, midpoint), orders 1 and 2. */
SDIFF__PRIVATE void sdiff__dpm_alpha_sigma(float sigma, float *alpha, float *sig) {
    float s2 = sigma * sigma;
    *alpha = 1.0f / sqrtf(s2 + 1.0f);
    *sig = sigma * *alpha;
}

SDIFF__PRIVATE void sdiff__dpm_step(sdiff__sched *s, int idx, const float *mo, float *x, size_t n, float *x0buf) {
    const sdiff__sched_config *c = &s->cfg;
    int len = s->n_ts;
    bool lower_final = idx == len - 1 && (c->euler_at_final || (c->lower_order_final && len < 15) ||
                                          !c->final_sigmas_sigma_min);
    float a_t, sg_t, a_s0, sg_s0;
    sdiff__dpm_alpha_sigma(s->sigmas[idx + 1], &a_t, &sg_t);
    sdiff__dpm_alpha_sigma(s->sigmas[idx], &a_s0, &sg_s0);
    float lam_t = logf(a_t) - logf(sg_t), lam_s0 = logf(a_s0) - logf(sg_s0);
    float h = lam_t - lam_s0;
    float em1 = expf(-h) - 1.0f;
    float ratio = sg_t / sg_s0;
    float c_d0 = a_t * em1;
    bool first = c->solver_order == 1 || s->lower_order_nums < 1 || lower_final;
    float c_d1 = 0, inv_r0 = 0;
    if (!first) {
        float a_s1, sg_s1;
        sdiff__dpm_alpha_sigma(s->sigmas[idx - 1], &a_s1, &sg_s1);
        float lam_s1 = logf(a_s1) - logf(sg_s1);
        float h0 = lam_s0 - lam_s1;
        float r0 = h0 / h;
        inv_r0 = 1.0f / r0;
        c_d1 = 0.5f * c_d0;
    }
    float *prev_x0 = x0buf;
    for (size_t j = 0; j < n; j++) {
        /* convert_model_output: the x0 prediction */
        float x0;
        if (c->prediction_type == SDIFF__PRED_EPSILON) { float p = sg_s0 * mo[j]; float d = x[j] - p; x0 = d / a_s0; }
        else if (c->prediction_type == SDIFF__PRED_SAMPLE) x0 = mo[j];
        else { float a = a_s0 * x[j], b = sg_s0 * mo[j]; x0 = a - b; }
        float u = ratio * x[j];
        float v = c_d0 * x0;
        float out = u - v;
        if (!first) {
            float dd = x0 - prev_x0[j];
            float d1 = inv_r0 * dd;
            float w = c_d1 * d1;
            out = out - w;
        }
        prev_x0[j] = x0;
        x[j] = out;
    }
    if (s->lower_order_nums < c->solver_order) s->lower_order_nums++;
}

/* One denoising step at timestep index i (first .. len-1, in order): x <-
   the previous sample. rng: the pipeline's generator; Euler a always, DDPM when t > 0
   and DDIM when eta > 0 draw randn(n) from it, after the model call, as
   diffusers' step does. */
SDIFF__PRIVATE sdiff_status sdiff__sched_step(sdiff__sched *s, int i, const float *model_output, float *x, size_t n,
                                              sdiff__rng *rng) {
    if (i < s->t_start || i >= s->n_ts)
        return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler: step %d out of range %d..%d", i, s->t_start, s->n_ts - 1);
    int idx = i;
    SDIFF__TRY(sdiff__sched_buffers(s, n));
    bool needs_noise = s->kind == SDIFF__K_EULER_A || (s->kind == SDIFF__K_DDPM && s->its[idx] > 0) ||
                       (s->kind == SDIFF__K_DDIM && s->eta > 0);
    float *noise = NULL;
    if (needs_noise) {
        if (!rng) return sdiff__err(SDIFF_ERR_INVALID_ARG, "scheduler %s: this step needs a random generator",
                                    sdiff_sampler_name(s->sampler));
        noise = (float *)sdiff__malloc(n * sizeof(float));
        if (!noise) return sdiff__err(SDIFF_ERR_OUT_OF_MEMORY, "scheduler: out of memory (%zu floats)", n);
        sdiff__rng_randn(rng, noise, n);
    }
    switch (s->kind) {
    case SDIFF__K_DDIM: sdiff__ddim_step(s, idx, model_output, x, n, noise); break;
    case SDIFF__K_PNDM: sdiff__pndm_step(s, idx, model_output, x, n); break;
    case SDIFF__K_EULER:
    case SDIFF__K_EULER_A: sdiff__euler_step(s, idx, model_output, x, n, noise); break;
    case SDIFF__K_DPM: sdiff__dpm_step(s, idx, model_output, x, n, s->buf[0]); break;
    case SDIFF__K_DDPM: sdiff__ddpm_step(s, idx, model_output, x, n, noise); break;
    }
    sdiff__free(noise);
    return SDIFF_OK;
}

/* "epsilon", "v_prediction" or "sample", as the config (or the classes'
   default, epsilon) has it. */
SDIFF__PRIVATE const char *sdiff__sched_prediction_name(const sdiff__sched_config *c) {
    sdiff__pred_type p = (c->present & SDIFF__SK_PREDICTION) ? c->prediction_type : SDIFF__PRED_EPSILON;
    return p == SDIFF__PRED_V ? "v_prediction" : p == SDIFF__PRED_SAMPLE ? "sample" : "epsilon";
}

#ifdef SDIFF__JSON_MAX_DEPTH /* with >>files' JSON reader */
/* scheduler_config.json -> config, with StableDiffusionPipeline's fix-ups. */
SDIFF__PRIVATE sdiff_status sdiff__sched_config_from_json(const sdiff__json *j, const char *what, sdiff__sched_config *c) {
    sdiff__sched_config_empty(c, SDIFF_SAMPLER_DDIM);
    if (!j || j->type != SDIFF__JSON_OBJECT) return sdiff__err(SDIFF_ERR_FORMAT, "%s: not a JSON object", what);
    for (size_t i = 0; i < j->count; i++) {
        const sdiff__json *v = &j->items[i];
        const char *key = j->keys[i];
        sdiff_status st = SDIFF_OK;
        if (v->type == SDIFF__JSON_STRING) st = sdiff__sched_config_set_string(c, key, v->string);
        else if (v->type == SDIFF__JSON_BOOL) st = sdiff__sched_config_set_bool(c, key, v->boolean);
        else if (v->type == SDIFF__JSON_NUMBER) st = sdiff__sched_config_set_number(c, key, v->number);
        else if (v->type == SDIFF__JSON_NULL) st = sdiff__sched_config_set_null(c, key);
        else if (v->type == SDIFF__JSON_ARRAY) st = sdiff__sched_config_set_array(c, key);
        if (st != SDIFF_OK) {
            char msg[sizeof sdiff__g_error];
            snprintf(msg, sizeof msg, "%s", sdiff__g_error);
            return sdiff__err(st, "%s: %s", what, msg);
        }
    }
    if (!sdiff__json_get(j, "_class_name"))
        return sdiff__err(SDIFF_ERR_FORMAT, "%s: no _class_name", what);
    sdiff__sched_config_pipeline_fixups(c);
    return SDIFF_OK;
}
#endif

/* --- public: sampler names */
static const char *const sdiff__sampler_names[SDIFF_SAMPLER_COUNT_] = {
    "default", "ddim", "pndm", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "ddpm"
};

SDIFF_API const char *sdiff_sampler_name(sdiff_sampler sampler) {
    if ((int)sampler < 0 || sampler >= SDIFF_SAMPLER_COUNT_) return "unknown";
    return sdiff__sampler_names[sampler];
}

SDIFF_API sdiff_sampler sdiff_sampler_from_name(const char *name) {
    if (!name) return SDIFF_SAMPLER_COUNT_;
    for (int i = 0; i < SDIFF_SAMPLER_COUNT_; i++)
        if (!strcmp(name, sdiff__sampler_names[i])) return (sdiff_sampler)i;
    return SDIFF_SAMPLER_COUNT_;
}

#if defined(__clang__)
#pragma STDC FP_CONTRACT ON
#elif defined(__GNUC__)
#pragma GCC pop_options
#endif
