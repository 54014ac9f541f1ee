/* bench_cpu - one SD UNet evaluation (and optionally one VAE decode) on the
   CPU backend, at whatever config the folder holds, timed and checked
   against PyTorch's output for the same weights and inputs.

   The folders come from tools/bench_cpu_ref.py, which saves random weights
   at the real SD 1.5 config plus io.safetensors (inputs and PyTorch's
   output), so both sides run the same numbers on the same machine:

     python3 tools/bench_cpu_ref.py --threads 16 --vae      # PyTorch eager
     build/bench_cpu /tmp/sd15-unet /tmp/sd15-vae 16 3        # sdiff

   Prints one JSON line per model: median seconds, relative error against
   PyTorch, peak activation memory and peak process RSS. */
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include <sys/resource.h>
#include "bench_util.h"

/* A tensor of io.safetensors as floats, NCHW as PyTorch wrote it. */
static float *io_get(const sdiff__safetensors *io, const char *name, int64_t *shape, int64_t *numel) {
    float *v = st_get_f32(io, name, shape, numel);
    if (!v) { fprintf(stderr, "io.safetensors: no float tensor '%s'\n", name); exit(1); }
    return v;
}
static long peak_rss_mib(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024;
}

/* Runs fn `runs` times after one warm-up; returns the median seconds. */
typedef void (*bench_fn)(void *arg);
static double time_median(bench_fn fn, void *arg, int runs) {
    double t[64];
    fn(arg);
    for (int r = 0; r < runs && r < 64; r++) {
        double t0 = now_s();
        fn(arg);
        t[r] = now_s() - t0;
    }
    return median(t, runs);
}

typedef struct unet_job {
    sdiff_model *m;
    sdiff__tensor *x, *t, *ctx;
    float *out;                 /* NHWC host */
} unet_job;
static void run_unet(void *arg) {
    unet_job *j = (unet_job *)arg;
    sdiff__run r = {j->m->ctx->be, &j->m->arena};
    sdiff__arena_mark mark = sdiff__arena_mark_get(&j->m->arena);
    sdiff__tensor *y = sdiff__unet_forward(&r, &j->m->unet, j->x, j->t, j->ctx);
    r.be->download(r.be, y, j->out);
    sdiff__arena_release(&j->m->arena, mark);
}
typedef struct vae_job {
    sdiff_model *m;
    sdiff__tensor *z;
    float *out;
} vae_job;
static void run_vae(void *arg) {
    vae_job *j = (vae_job *)arg;
    sdiff__run r = {j->m->ctx->be, &j->m->arena};
    sdiff__arena_mark mark = sdiff__arena_mark_get(&j->m->arena);
    sdiff__tensor *y = sdiff__vae_decode(&r, &j->m->vae, j->z);
    r.be->download(r.be, y, j->out);
    sdiff__arena_release(&j->m->arena, mark);
}

static sdiff_model *open_component(sdiff_ctx *ctx, const char *dir, const char *which, sdiff__safetensors *io) {
    sdiff_model *m = (sdiff_model *)sdiff__calloc(1, sizeof *m);
    m->ctx = ctx;
    double t0 = now_s();
    if (sdiff__load_component(m, dir, which) != SDIFF_OK) { fprintf(stderr, "%s\n", sdiff_last_error()); exit(1); }
    fprintf(stderr, "%s: loaded in %.2f s\n", dir, now_s() - t0);
    sdiff__arena_init(&m->arena, ctx->be, (size_t)64 << 20);
    char path[1024];
    snprintf(path, sizeof path, "%s/io.safetensors", dir);
    if (sdiff__st_open(path, io) != SDIFF_OK) { fprintf(stderr, "%s\n", sdiff_last_error()); exit(1); }
    return m;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s UNET_DIR [VAE_DIR|-] [THREADS] [RUNS]\n", argv[0]);
        return 2;
    }
    const char *vae_dir = argc > 2 && strcmp(argv[2], "-") ? argv[2] : NULL;
    int threads = argc > 3 ? atoi(argv[3]) : 0, runs = argc > 4 ? atoi(argv[4]) : 3;
    if (runs < 1 || runs > 64) runs = 3;
    sdiff_ctx_params cp = sdiff_ctx_default_params();
    cp.n_threads = threads;
    sdiff_ctx *ctx;
    if (sdiff_ctx_create(&cp, &ctx) != SDIFF_OK) { fprintf(stderr, "%s\n", sdiff_last_error()); return 1; }

    { /* UNet */
        sdiff__safetensors io;
        sdiff_model *m = open_component(ctx, argv[1], "unet", &io);
        int64_t xs[4], cs[4], n, nc, nt, no;
        float *x = io_get(&io, "sample", xs, &n), *c = io_get(&io, "context", cs, &nc);
        float *t = io_get(&io, "timestep", NULL, &nt), *want = io_get(&io, "out", NULL, &no);
        float *xh = (float *)malloc((size_t)n * sizeof(float)), *got = (float *)malloc((size_t)no * sizeof(float));
        sdiff__nchw_to_nhwc(xh, x, xs[0], xs[1], xs[2] * xs[3]);
        unet_job j = {m, NULL, NULL, NULL, (float *)malloc((size_t)no * sizeof(float))};
        float tb[64];
        for (int b = 0; b < xs[0] && b < 64; b++) tb[b] = t[0];
        j.t = sdiff__new1(&m->arena, SDIFF__F32, xs[0]);
        ctx->be->upload(ctx->be, j.t, tb, SDIFF__F32);
        j.x = sdiff__new4(&m->arena, ctx->be->act_dtype, xs[0], xs[2], xs[3], xs[1]);
        j.ctx = sdiff__new3(&m->arena, ctx->be->act_dtype, cs[0], cs[1], cs[2]);
        ctx->be->upload(ctx->be, j.x, xh, SDIFF__F32);
        ctx->be->upload(ctx->be, j.ctx, c, SDIFF__F32);
        double med = time_median(run_unet, &j, runs);
        sdiff__nhwc_to_nchw(got, j.out, xs[0], xs[1], xs[2] * xs[3]);
        double err = ctx->be->status == SDIFF_OK ? rel_err(got, want, no) : INFINITY;
        printf("{\"model\": \"unet\", \"dir\": \"%s\", \"threads\": %d, \"batch\": %lld, \"latent\": [%lld, %lld], "
               "\"median_s\": %.4f, \"rel_err_vs_torch\": %.3g, \"peak_activation_mib\": %.1f, \"peak_rss_mib\": %ld, "
               "\"params_m\": %.1f}\n",
               argv[1], threads, (long long)xs[0], (long long)xs[2],
               (long long)xs[3], med, err, m->arena.peak / 1048576.0, peak_rss_mib(), m->unet.weights.n_params / 1e6);
        fflush(stdout);
        free(x); free(c); free(t); free(want); free(xh); free(got); free(j.out);
        sdiff__st_close(&io);
        sdiff__model_release(m);
    }
    if (vae_dir) {
        sdiff__safetensors io;
        sdiff_model *m = open_component(ctx, vae_dir, "vae", &io);
        int64_t zs[4], n, no;
        float *z = io_get(&io, "latents", zs, &n), *want = io_get(&io, "out", NULL, &no);
        float *zh = (float *)malloc((size_t)n * sizeof(float)), *got = (float *)malloc((size_t)no * sizeof(float));
        sdiff__nchw_to_nhwc(zh, z, zs[0], zs[1], zs[2] * zs[3]);
        vae_job j = {m, NULL, (float *)malloc((size_t)no * sizeof(float))};
        j.z = sdiff__new4(&m->arena, ctx->be->act_dtype, zs[0], zs[2], zs[3], zs[1]);
        ctx->be->upload(ctx->be, j.z, zh, SDIFF__F32);
        double med = time_median(run_vae, &j, runs);
        const int64_t f = (int64_t)1 << (m->vae.cfg.levels - 1);
        sdiff__nhwc_to_nchw(got, j.out, zs[0], 3, zs[2] * f * zs[3] * f);
        double err = ctx->be->status == SDIFF_OK ? rel_err(got, want, no) : INFINITY;
        printf("{\"model\": \"vae_decode\", \"dir\": \"%s\", \"latent\": [%lld, %lld], \"median_s\": %.4f, "
               "\"rel_err_vs_torch\": %.3g, \"peak_activation_mib\": %.1f, \"peak_rss_mib\": %ld}\n",
               vae_dir, (long long)zs[2], (long long)zs[3], med, err, m->arena.peak / 1048576.0, peak_rss_mib());
        free(z); free(want); free(zh); free(got); free(j.out);
        sdiff__st_close(&io);
        sdiff__model_release(m);
    }
    if (ctx->be->status != SDIFF_OK) fprintf(stderr, "backend: %s\n", sdiff_last_error());
    sdiff_ctx_free(ctx);
    return 0;
}
