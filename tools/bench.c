/* bench - sdiff end to end on one model folder: correctness against the
   diffusers reference tensors written by tools/gpu_ref.py, then timings.

     python3 tools/gpu_ref.py --out /tmp/sd15          # diffusers, same GPU
     build/bench /tmp/sd15 [cuda|cpu] [max_batch]
     build/bench /tmp/sd15 cuda first                  # process start to first image, then exit
     build/bench /tmp/sd15 cuda profile:unet           # one eager UNet evaluation (or :vae, :text)
                                                       # between cuProfilerStart/Stop, for
                                                       # ncu --profile-from-start off

   Correctness (relative error, fp16 backend vs diffusers fp16 and fp32):
   text encoder, one UNet evaluation, VAE decode, and the full 50-step
   txt2img image (mean absolute difference in 1/255 units).
   Timings (medians after a warm-up): ms per UNet step (the time between
   progress callbacks of a 50-step generation, CFG batch 2, graph replay on
   backends that have graphs), text encoder, VAE decode, seconds per image,
   images per minute at the largest batch that fits, and the peak activation
   memory beside them. Prints a markdown table last. */
#include "../sdiff_clip_vocab.h"
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include "../sdiff_cuda.h"
#include "bench_util.h"
#include <dlfcn.h>

/* cuProfilerStart / cuProfilerStop from the driver library (already loaded by the backend). */
static void profiler(bool start) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    int (*fn)(void) = lib ? (int (*)(void))dlsym(lib, start ? "cuProfilerStart" : "cuProfilerStop") : NULL;
    if (fn) fn();
    else fprintf(stderr, "bench: cuProfiler%s not found\n", start ? "Start" : "Stop");
}

/* One eager forward of `what` (unet: 2x4x64x64 with CFG context; vae: decode of 1x4x64x64;
   text: the two prompts of a generation), run twice, the second inside the profiler range. */
static int profile_one(sdiff_model *m, const char *what) {
    sdiff__backend *be = m->ctx->be;
    sdiff__run r = {be, &m->arena};
    for (int pass = 0; pass < 2; pass++) {
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        if (pass) profiler(true);
        if (!strcmp(what, "unet")) {
            sdiff__tensor *x = sdiff__new4(&m->arena, be->act_dtype, 2, 64, 64, 4);
            sdiff__tensor *c = sdiff__new3(&m->arena, be->act_dtype, 2, 77, m->unet.cfg.cross_dim);
            sdiff__tensor *t = sdiff__new1(&m->arena, SDIFF__F32, 2);
            float *h = (float *)calloc((size_t)2 * 77 * m->unet.cfg.cross_dim, sizeof(float)), tb[2] = {500, 500};
            if (pass == 0) {
                be->upload(be, x, h, SDIFF__F32);
                be->upload(be, c, h, SDIFF__F32);
                be->upload(be, t, tb, SDIFF__F32);
            }
            free(h);
            sdiff__unet_forward(&r, &m->unet, x, t, c);
        } else if (!strcmp(what, "vae")) {
            sdiff__tensor *z = sdiff__new4(&m->arena, be->act_dtype, 1, 64, 64, 4);
            sdiff__vae_decode(&r, &m->vae, z);
        } else {
            sdiff_gen_params gp = sdiff_gen_default_params(m);
            gp.prompt = "a photograph of an astronaut riding a horse";
            gp.negative_prompt = "";
            sdiff__tensor *ctxt;
            sdiff__encode_prompts(m, &gp, true, &ctxt);
        }
        if (pass) profiler(false);
        sdiff__arena_release(&m->arena, mark);
    }
    if (be->status != SDIFF_OK) { fprintf(stderr, "bench: %s\n", sdiff_last_error()); return 1; }
    printf("profiled one %s forward\n", what);
    return 0;
}

/* Device memory the backend allocated at its peak (weights, arena, scratch, workspaces), in MiB;
   -1 when the backend does not count it. */
static double device_peak_mib(sdiff_ctx *ctx) {
    if (strcmp(sdiff_ctx_backend_name(ctx), "cuda") != 0) return -1;
    return SDIFF__CUDA(ctx->be)->mem_peak / 1048576.0;
}

/* The error of `got` against a reference in both precisions, printed. */
static void report(const char *what, const float *got, const sdiff__safetensors *ref, const char *name, int64_t n) {
    char name32[128];
    snprintf(name32, sizeof name32, "%s_fp32", name);
    int64_t n16 = 0, n32 = 0;
    float *r16 = st_get_f32(ref, name, NULL, &n16), *r32 = st_get_f32(ref, name32, NULL, &n32);
    printf("check %-22s rel err vs diffusers fp16 %-9.3g vs fp32 %-9.3g %s\n", what,
           r16 && n16 == n ? rel_err(got, r16, n) : NAN, r32 && n32 == n ? rel_err(got, r32, n) : NAN,
           r16 && n16 == n && rel_err(got, r16, n) <= 1e-2 ? "ok" : "FAIL (limit 1e-2)");
    free(r16);
    free(r32);
}

typedef struct step_clock { double last, t[1024]; int n; } step_clock;
static bool on_step(int step, int total, void *user) {
    step_clock *c = (step_clock *)user;
    double t = now_s();
    if (step > 1 && c->n < 1024) c->t[c->n++] = t - c->last;
    c->last = t;
    (void)total;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s MODEL_DIR [cuda|cpu|auto] [MAX_BATCH]\n", argv[0]); return 2; }
    const char *dir = argv[1], *backend = argc > 2 ? argv[2] : "auto";
    const char *mode = argc > 3 ? argv[3] : "16";
    int max_batch = atoi(mode) > 0 ? atoi(mode) : 16;
    double t_start = now_s();
    sdiff_ctx_params cp = sdiff_ctx_default_params();
    cp.backend = strcmp(backend, "cuda") == 0 ? SDIFF_BACKEND_CUDA : strcmp(backend, "cpu") == 0 ? SDIFF_BACKEND_CPU : SDIFF_BACKEND_AUTO;
    sdiff_ctx *ctx;
    sdiff_model *m;
    if (sdiff_ctx_create(&cp, &ctx) != SDIFF_OK || sdiff_model_load(ctx, dir, NULL, &m) != SDIFF_OK) {
        fprintf(stderr, "bench: %s\n", sdiff_last_error());
        return 1;
    }
    double t_loaded = now_s();
    printf("model: %s\nload: %.2f s\n", sdiff_model_describe(m), t_loaded - t_start);
    if (!strncmp(mode, "profile:", 8)) return profile_one(m, mode + 8);
    const char *prompt = "a photograph of an astronaut riding a horse";
    if (!strcmp(mode, "first")) { /* process start to first image: load + one 50-step generation */
        sdiff_gen_params gp = sdiff_gen_default_params(m);
        gp.prompt = prompt;
        gp.width = gp.height = 512;
        gp.steps = 50;
        sdiff_image img;
        double t0 = now_s();
        if (sdiff_generate(m, &gp, &img) != SDIFF_OK) { fprintf(stderr, "bench: %s\n", sdiff_last_error()); return 1; }
        double t1 = now_s();
        printf("first image: %.2f s from process start (load %.2f s, generation %.2f s)\n", t1 - t_start,
               t_loaded - t_start, t1 - t0);
        sdiff_image_free(&img);
        sdiff_model_free(m);
        sdiff_ctx_free(ctx);
        return 0;
    }
    sdiff__backend *be = ctx->be;
    sdiff__run r = {be, &m->arena};
    char path[1024];
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    sdiff__safetensors ref;
    bool have_ref = sdiff__st_open(path, &ref) == SDIFF_OK;

    /* --- correctness of each model against diffusers */
    if (have_ref) {
        int64_t n, xs[4], cs[4];
        int32_t ids[77];
        sdiff__tokenize(m->tokenizer, prompt, ids, 77);
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        sdiff__tensor *e = sdiff__clip_forward(&r, &m->clip, ids, 1, 77, 0);
        float *got = (float *)malloc((size_t)77 * m->clip.cfg.hidden * sizeof(float));
        be->download(be, e, got);
        report("text encoder", got, &ref, "text.embeds", 77 * m->clip.cfg.hidden);
        free(got);
        sdiff__arena_release(&m->arena, mark);

        float *x = st_get_f32(&ref, "unet.sample", xs, &n), *c = st_get_f32(&ref, "unet.context", cs, NULL);
        float *t = st_get_f32(&ref, "unet.timestep", NULL, NULL);
        if (x && c && t) {
            float *xh = (float *)malloc((size_t)n * sizeof(float)), *o = (float *)malloc((size_t)n * sizeof(float));
            float tb[64];
            for (int b = 0; b < xs[0] && b < 64; b++) tb[b] = t[0];
            sdiff__nchw_to_nhwc(xh, x, xs[0], xs[1], xs[2] * xs[3]);
            sdiff__tensor *xt = sdiff__new4(&m->arena, be->act_dtype, xs[0], xs[2], xs[3], xs[1]);
            sdiff__tensor *ct = sdiff__new3(&m->arena, be->act_dtype, cs[0], cs[1], cs[2]);
            sdiff__tensor *tt = sdiff__new1(&m->arena, SDIFF__F32, xs[0]);
            be->upload(be, xt, xh, SDIFF__F32);
            be->upload(be, ct, c, SDIFF__F32);
            be->upload(be, tt, tb, SDIFF__F32);
            sdiff__tensor *y = sdiff__unet_forward(&r, &m->unet, xt, tt, ct);
            be->download(be, y, xh);
            sdiff__nhwc_to_nchw(o, xh, xs[0], xs[1], xs[2] * xs[3]);
            report("unet", o, &ref, "unet.out", n);
            free(xh);
            free(o);
        }
        free(x); free(c); free(t);
        sdiff__arena_release(&m->arena, mark);

        float *z = st_get_f32(&ref, "vae.latents", xs, &n);
        if (z) {
            const int64_t f = (int64_t)1 << (m->vae.cfg.levels - 1), np = xs[0] * 3 * xs[2] * f * xs[3] * f;
            float *zh = (float *)malloc((size_t)n * sizeof(float)), *img = (float *)malloc((size_t)np * sizeof(float));
            float *o = (float *)malloc((size_t)np * sizeof(float));
            sdiff__nchw_to_nhwc(zh, z, xs[0], xs[1], xs[2] * xs[3]);
            sdiff__tensor *zt = sdiff__new4(&m->arena, be->act_dtype, xs[0], xs[2], xs[3], xs[1]);
            be->upload(be, zt, zh, SDIFF__F32);
            sdiff__tensor *y = sdiff__vae_decode(&r, &m->vae, zt);
            be->download(be, y, img);
            sdiff__nhwc_to_nchw(o, img, xs[0], 3, xs[2] * f * xs[3] * f);
            report("vae decode", o, &ref, "vae.decoded", np);
            free(zh); free(img); free(o);
        }
        free(z);
        sdiff__arena_release(&m->arena, mark);
        if (be->status != SDIFF_OK) { fprintf(stderr, "bench: %s\n", sdiff_last_error()); return 1; }
    }

    /* --- the initial noise, as diffusers drew it in the pipeline's dtype */
    if (have_ref) {
        int64_t n;
        float *want = st_get_f32(&ref, "txt2img.noise", NULL, &n);
        if (want) {
            float *got = (float *)malloc((size_t)n * sizeof(float));
            sdiff__rng rng;
            sdiff__rng_seed(&rng, 42);
            rng.path = SDIFF__RNG_X86;
            rng.half = be->act_dtype == SDIFF__F16;
            sdiff__rng_randn(&rng, got, (size_t)n);
            int64_t differ = 0;
            for (int64_t i = 0; i < n; i++) differ += got[i] != want[i];
            printf("check %-22s %lld of %lld values differ from diffusers' torch.randn (%s)\n", "initial noise",
                   (long long)differ, (long long)n, rng.half ? "float16" : "float32");
            free(got);
        }
        free(want);
    }

    /* --- full txt2img: the reference image, and the per-step clock */
    sdiff_gen_params gp = sdiff_gen_default_params(m);
    gp.prompt = prompt;
    gp.negative_prompt = "";
    gp.width = gp.height = 512;
    gp.steps = 50;
    gp.cfg_scale = 7.5f;
    gp.seed = 42;
    step_clock clock = {0, {0}, 0};
    gp.progress = on_step;
    gp.progress_user = &clock;
    sdiff_image img;
    double t0 = now_s();
    if (sdiff_generate(m, &gp, &img) != SDIFF_OK) { fprintf(stderr, "bench: %s\n", sdiff_last_error()); return 1; }
    double first_image = now_s() - t0, since_start = now_s() - t_start, first_peak = device_peak_mib(ctx);
    if (have_ref) {
        int64_t n;
        float *want = st_get_f32(&ref, "txt2img.image", NULL, &n), *want32 = st_get_f32(&ref, "txt2img.image_fp32", NULL, NULL);
        if (want && n == (int64_t)img.width * img.height * 3) {
            double mad = 0, mad32 = 0;
            for (int64_t i = 0; i < n; i++) {
                mad += fabs(img.data[i] / 255.0 - want[i]);
                if (want32) mad32 += fabs(img.data[i] / 255.0 - want32[i]);
            }
            printf("check %-22s mean abs diff vs diffusers fp16 %.2f/255, vs fp32 %.2f/255 %s\n", "txt2img 50 steps",
                   255 * mad / n, want32 ? 255 * mad32 / n : NAN, 255 * mad / n <= 2 ? "ok" : "FAIL (limit 2/255)");
        }
        free(want);
        free(want32);
        sdiff_image_write_png(&img, "bench_txt2img.png", NULL);
    }
    sdiff_image_free(&img);

    /* --- timings (warm); the device peak is measured again from here: the first generation grew
       the arena block by block (the model keeps one block of the peak afterwards) */
    if (!strcmp(sdiff_ctx_backend_name(ctx), "cuda")) SDIFF__CUDA(ctx->be)->mem_peak = SDIFF__CUDA(ctx->be)->mem_used;
    double steps_ms = 0, gen_s[3], te[7], vae[5];
    for (int k = 0; k < 3; k++) {
        clock.n = 0;
        t0 = now_s();
        sdiff_generate(m, &gp, &img);
        gen_s[k] = now_s() - t0;
        sdiff_image_free(&img);
    }
    steps_ms = 1e3 * median(clock.t, clock.n);
    size_t peak = sdiff_model_peak_activation_bytes(m);
    const double dev_peak = device_peak_mib(ctx); /* 512x512 images, warm */
    sdiff_gen_params one = gp;
    one.progress = NULL;
    for (int k = 0; k < 7; k++) { /* text encoder: both prompts, as a generation encodes them */
        sdiff__tensor *ctxt;
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        t0 = now_s();
        sdiff__encode_prompts(m, &one, true, &ctxt);
        te[k] = now_s() - t0;
        sdiff__arena_release(&m->arena, mark);
    }
    /* the UNet call alone, as tools/bench_ref.py times diffusers' (one forward at 512x512 with CFG,
       the time between synchronisations): its graph replayed back to back, without the lincomb
       launches (input scaling, CFG, scheduler step) and time-embedding copies that sit between a
       generation's steps (the step interval above) */
    double unet_call_ms = NAN;
    if (!strcmp(sdiff_ctx_backend_name(ctx), "cuda")) {
        sdiff__backend *be = ctx->be;
        sdiff__run r = {be, &m->arena};
        sdiff__arena_mark mark = sdiff__arena_mark_get(&m->arena);
        sdiff__tensor *x = sdiff__new4(&m->arena, be->act_dtype, 2, 64, 64, 4);
        sdiff__tensor *c = sdiff__new3(&m->arena, be->act_dtype, 2, 77, m->unet.cfg.cross_dim);
        sdiff__tensor *t = sdiff__new1(&m->arena, SDIFF__F32, 2);
        float *h = (float *)calloc((size_t)2 * 77 * m->unet.cfg.cross_dim, sizeof(float)), tb[2] = {500, 500};
        for (int i = 0; i < 2 * 77 * m->unet.cfg.cross_dim; i++) h[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
        be->upload(be, x, h, SDIFF__F32);
        be->upload(be, c, h, SDIFF__F32);
        be->upload(be, t, tb, SDIFF__F32);
        free(h);
        const sdiff__tensor *temb = sdiff__unet_time_proj(&r, &m->unet, t), *kv = sdiff__unet_cross_kv(&r, &m->unet, c);
        sdiff__arena_mark step = sdiff__arena_mark_get(&m->arena);
        sdiff__unet_step(&r, &m->unet, x, temb, kv); /* eager: sizes the arena, as a generation's first step */
        sdiff__arena_release(&m->arena, step);
        void *graph = NULL;
        if (be->graph_begin(be)) {
            sdiff__unet_step(&r, &m->unet, x, temb, kv);
            graph = be->graph_end(be);
        }
        sdiff__arena_release(&m->arena, step);
        if (graph) {
            for (int k = 0; k < 3; k++) be->graph_launch(be, graph);
            sdiff__cuda_sync(be);
            t0 = now_s();
            for (int k = 0; k < 20; k++) be->graph_launch(be, graph);
            sdiff__cuda_sync(be);
            unet_call_ms = 1e3 * (now_s() - t0) / 20;
            be->graph_free(be, graph);
        }
        sdiff__arena_release(&m->arena, mark);
        if (be->status != SDIFF_OK) { fprintf(stderr, "bench: %s\n", sdiff_last_error()); return 1; }
    }
    float *lat = (float *)calloc(4 * 64 * 64, sizeof(float));
    for (int i = 0; i < 4 * 64 * 64; i++) lat[i] = (float)((i * 7919) % 200 - 100) / 100.0f;
    for (int k = 0; k < 5; k++) {
        t0 = now_s();
        sdiff__decode_images(m, lat, 1, 64, 64, &img);
        vae[k] = now_s() - t0;
        sdiff_image_free(&img);
    }
    free(lat);
    /* 1024x1024: the UNet step (10 steps, median interval) */
    double steps1024_ms = NAN;
    {
        sdiff_gen_params big = gp;
        big.width = big.height = 1024;
        big.steps = 10;
        clock.n = 0;
        sdiff_image bimg;
        if (sdiff_generate(m, &big, &bimg) == SDIFF_OK) {
            steps1024_ms = 1e3 * median(clock.t, clock.n);
            sdiff_image_free(&bimg);
        } else printf("1024x1024: %s\n", sdiff_last_error());
    }
    /* throughput: the largest batch that fits */
    double best_ipm = 0;
    int best_batch = 0;
    for (int b = 1; b <= max_batch; b *= 2) {
        sdiff_gen_params bp = one;
        bp.batch = b;
        bp.steps = 20;
        sdiff_image *imgs = (sdiff_image *)calloc((size_t)b, sizeof *imgs);
        t0 = now_s();
        sdiff_status st = sdiff_generate(m, &bp, imgs);
        double s = now_s() - t0;
        for (int i = 0; i < b; i++) sdiff_image_free(&imgs[i]);
        free(imgs);
        if (st != SDIFF_OK) { printf("batch %d: %s\n", b, sdiff_last_error()); break; }
        double ipm = 60.0 * b / (s * 50.0 / 20.0); /* scaled to 50 steps */
        printf("batch %2d: %.2f s for 20 steps -> %.1f images/min at 50 steps\n", b, s, ipm);
        if (ipm > best_ipm) { best_ipm = ipm; best_batch = b; }
    }
    printf("\n| sdiff (%s) | value |\n|---|---|\n", sdiff_ctx_backend_name(ctx));
    printf("| UNet step 512x512 CFG (ms, median of step intervals) | %.2f |\n", steps_ms);
    printf("| UNet call alone, 512x512 CFG (ms, 20 graph replays back to back) | %.2f |\n", unet_call_ms);
    printf("| text encoder, 2 prompts (ms) | %.2f |\n", 1e3 * median(te, 7));
    printf("| VAE decode 512x512 (ms) | %.2f |\n", 1e3 * median(vae, 5));
    printf("| whole image, 50 steps (s) | %.3f |\n", median(gen_s, 3));
    printf("| images/min at batch %d (50 steps) | %.1f |\n", best_batch, best_ipm);
    printf("| UNet step 1024x1024 CFG (ms) | %.2f |\n", steps1024_ms);
    printf("| peak activation memory (MiB) | %.0f |\n", peak / 1048576.0);
    printf("| peak GPU memory, 512x512 image, warm (MiB, all device allocations) | %.0f |\n", dev_peak);
    printf("| peak GPU memory, whole run before it (first generation, checks) (MiB) | %.0f |\n", first_peak);
    printf("| weights (MiB) | %.0f |\n", (double)(m->unet.weights.n_params + m->clip.weights.n_params + m->vae.weights.n_params) *
                                       sdiff__dtype_size(be->weight_dtype) / 1048576.0);
    printf("| this run: start to first image, after the checks (s) | %.2f (load %.2f, first generation %.2f) |\n",
           since_start, t_loaded - t_start, first_image);
    if (have_ref) sdiff__st_close(&ref);
    sdiff_model_free(m);
    sdiff_ctx_free(ctx);
    return 0;
}
