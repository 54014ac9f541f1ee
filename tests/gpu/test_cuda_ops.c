/* test_cuda_ops.c - every CUDA op against the CPU backend's op, on fresh
   random inputs at SD 1.5's real shapes and at odd sizes. Inputs are rounded
   to fp16 first, so both backends see the same values; the CPU computes in
   fp32, the GPU in fp16 with fp32 accumulation. Pass: relative L2 error
   <= 1e-2 and no NaN/Inf (outputs start as NaN on both sides, so an element
   an op forgets to write fails). One line per case: op, shape, rel err. */

#include <time.h>   /* timespec_get, for the informational timing */

typedef struct gt_env {
    sdiff__backend *cpu, *gpu;
    sdiff__logger log;
    int n_fail;
} gt_env;
static gt_env g_gt;

/* A tensor on both backends with the same (fp16-representable) values. */
typedef struct gt_t { sdiff__tensor c, g; float *h; } gt_t;

static bool gt_setup(void) {
    if (g_gt.gpu) return true;
    g_gt.log.level = SDIFF_LOG_INFO;
    g_gt.gpu = sdiff__cuda_backend_create(0, &g_gt.log);
    if (!g_gt.gpu) { printf("  no CUDA backend: %s\n", sdiff_last_error()); return false; }
    g_gt.cpu = sdiff__cpu_backend_create(0, &g_gt.log);
    return g_gt.cpu != NULL;
}
static float gt_round(float v) { return sdiff__f16_to_f32(sdiff__f32_to_f16(v)); }

static void gt_shape(sdiff__tensor *t, sdiff__dtype dt, int nd, const int64_t *ne) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->nd = nd;
    for (int i = 0; i < 4; i++) t->ne[i] = i < nd ? ne[i] : 1;
    t->row_stride = ne[nd - 1];
}
/* fill: 0 = NaN (an output), 1 = random * scale */
static gt_t gt_new(int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3, int fill, float scale) {
    gt_t t;
    int64_t ne[4] = {n0, n1, n2, n3};
    gt_shape(&t.c, SDIFF__F32, nd, ne);
    gt_shape(&t.g, SDIFF__F16, nd, ne);
    size_t n = (size_t)sdiff__numel(&t.c);
    t.h = (float *)malloc(n * 4);
    for (size_t i = 0; i < n; i++) t.h[i] = fill ? gt_round(test_randf() * scale) : NAN;
    t.c.data = g_gt.cpu->alloc(g_gt.cpu, n * 4);
    t.g.data = g_gt.gpu->alloc(g_gt.gpu, n * 2);
    memcpy(t.c.data, t.h, n * 4);
    g_gt.gpu->upload(g_gt.gpu, &t.g, t.h, SDIFF__F32);
    return t;
}
#define gt_in(nd, a, b, c, d) gt_new(nd, a, b, c, d, 1, 1.0f)
#define gt_out(nd, a, b, c, d) gt_new(nd, a, b, c, d, 0, 0.0f)
static void gt_reload(gt_t *t, float scale) { /* new random contents, same memory */
    size_t n = (size_t)sdiff__numel(&t->c);
    for (size_t i = 0; i < n; i++) t->h[i] = gt_round(test_randf() * scale);
    memcpy(t->c.data, t->h, n * 4);
    g_gt.gpu->upload(g_gt.gpu, &t->g, t->h, SDIFF__F32);
}
static void gt_free(gt_t *t) {
    g_gt.cpu->free(g_gt.cpu, t->c.data);
    g_gt.gpu->free(g_gt.gpu, t->g.data);
    free(t->h);
}
/* A column view [.., col : col + ncols) of both tensors. */
static void gt_view(const gt_t *t, int64_t col, int64_t ncols, sdiff__tensor *vc, sdiff__tensor *vg) {
    *vc = t->c; *vg = t->g;
    vc->ne[t->c.nd - 1] = ncols; vg->ne[t->g.nd - 1] = ncols;
    vc->data = (float *)t->c.data + col;
    vg->data = (char *)t->g.data + col * 2;
}

/* Compares y's GPU result with the CPU one and prints the table line. */
static void gt_check(const char *op, const char *shape, gt_t *y, double tol) {
    size_t n = (size_t)sdiff__numel(&y->c);
    float *got = (float *)malloc(n * 4);
    for (size_t i = 0; i < n; i++) got[i] = NAN;
    double e = INFINITY;
    const char *why = "";
    if (g_gt.cpu->status != SDIFF_OK) why = "CPU op failed";
    else if (g_gt.gpu->status != SDIFF_OK) why = "GPU op failed";
    else {
        g_gt.gpu->download(g_gt.gpu, &y->g, got);
        if (g_gt.gpu->status != SDIFF_OK) why = "download failed";
        else e = test_rel_err(got, (const float *)y->c.data, n);
    }
    bool ok = e <= tol;
    printf("  %-20s %-40s %10.3g  %s%s%s\n", op, shape, e, ok ? "ok" : "FAIL", why[0] ? " - " : "", why);
    if (!ok) {
        g_test_failed++;
        if (why[0]) printf("      %s\n", sdiff_last_error());
        else { /* where it goes wrong: the first bad element */
            const float *want = (const float *)y->c.data;
            for (size_t i = 0; i < n; i++)
                if (!isfinite(got[i]) || fabs(got[i] - want[i]) > 0.05 + 0.05 * fabs(want[i])) {
                    printf("      first mismatch at %zu: got %g want %g\n", i, (double)got[i], (double)want[i]);
                    break;
                }
        }
        /* a failed backend stays failed: start the next case afresh */
        g_gt.gpu->status = SDIFF_OK;
        g_gt.cpu->status = SDIFF_OK;
    }
    free(got);
}
#define GT_TOL 1e-2

/* --- linear, conv2d ---------------------------------------------------- */
/* linear. residual: 0 none, 1 a separate tensor, 2 in place (y is the residual, as SD's blocks
   run it). */
static void gt_linear(int64_t m, int64_t k, int64_t n, bool bias, sdiff__act act, int residual, int64_t x_extra) {
    if (!gt_setup()) { g_test_failed++; return; }
    float ws = 1.0f / sqrtf((float)k);
    const int64_t ny = act == SDIFF__ACT_GEGLU ? n / 2 : n; /* GEGLU: w [n, k], y [m, n / 2] */
    gt_t x = gt_in(2, m, k + x_extra, 1, 1), w = gt_new(2, n, k, 1, 1, 1, ws), b = gt_in(1, n, 1, 1, 1);
    gt_t r = gt_in(2, m, ny, 1, 1), y = gt_out(2, m, ny, 1, 1);
    gt_t *out = residual == 2 ? &r : &y;
    sdiff__tensor xc = x.c, xg = x.g;
    if (x_extra) gt_view(&x, x_extra / 2, k, &xc, &xg);
    g_gt.cpu->linear(g_gt.cpu, &out->c, &xc, &w.c, bias ? &b.c : NULL, act, residual ? &r.c : NULL);
    g_gt.gpu->linear(g_gt.gpu, &out->g, &xg, &w.g, bias ? &b.g : NULL, act, residual ? &r.g : NULL);
    char s[128];
    snprintf(s, sizeof s, "%lldx%lld.%lldx%lld%s%s%s%s", (long long)m, (long long)k, (long long)n, (long long)k,
             bias ? " +b" : "", act == SDIFF__ACT_GELU ? " gelu" : act == SDIFF__ACT_SILU ? " silu" :
                                act == SDIFF__ACT_GEGLU ? " geglu" : act ? " qgelu" : "",
             residual == 2 ? " +=res" : residual ? " +res" : "", x_extra ? " xview" : "");
    gt_check("linear", s, out, GT_TOL);
    gt_free(&x); gt_free(&w); gt_free(&b); gt_free(&r); gt_free(&y);
}
SDIFF_TEST(cuda_linear) {
    gt_linear(8192, 320, 320, true, SDIFF__ACT_NONE, 0, 0);
    gt_linear(8192, 320, 320, true, SDIFF__ACT_NONE, 1, 0);
    gt_linear(2048, 1280, 320, true, SDIFF__ACT_NONE, 2, 0);        /* SD's FF out, in place */
    gt_linear(2048, 320, 2560, true, SDIFF__ACT_NONE, 0, 0);        /* SD's FF in */
    gt_linear(512, 1280, 3840, false, SDIFF__ACT_NONE, 0, 0);       /* split-K */
    gt_linear(154, 768, 1280, false, SDIFF__ACT_NONE, 0, 0);        /* partial row tile (cross-attention K, V) */
    gt_linear(77, 768, 768, true, SDIFF__ACT_NONE, 1, 0);
    gt_linear(77, 768, 3072, true, SDIFF__ACT_QUICK_GELU, 0, 0);
    gt_linear(77, 320, 1280, true, SDIFF__ACT_GELU, 0, 0);
    gt_linear(2, 320, 1280, true, SDIFF__ACT_SILU, 0, 0);
    gt_linear(2, 1280, 1280, true, SDIFF__ACT_SILU, 1, 0);
    gt_linear(300, 192, 100, true, SDIFF__ACT_NONE, 1, 0);          /* Co 100: partial column tile, element-wise */
    gt_linear(4096, 320, 320, false, SDIFF__ACT_NONE, 0, 640);      /* x a column view */
    gt_linear(33, 17, 29, true, SDIFF__ACT_NONE, 1, 0);             /* odd, non-tile */
    gt_linear(7, 24, 5, false, SDIFF__ACT_GELU, 1, 2);
    /* GEGLU (SD's feed-forward in: w [8C, C], y [M, 4C]) at every UNet level and the tails */
    gt_linear(8192, 320, 2560, true, SDIFF__ACT_GEGLU, 0, 0);
    gt_linear(2048, 640, 5120, true, SDIFF__ACT_GEGLU, 0, 0);
    gt_linear(512, 1280, 10240, true, SDIFF__ACT_GEGLU, 0, 0);
    gt_linear(128, 1280, 10240, true, SDIFF__ACT_GEGLU, 0, 0);      /* 8x8: split-K */
    gt_linear(100, 200, 84, true, SDIFF__ACT_GEGLU, 1, 0);          /* 42 outputs: partial tiles, a residual */
    gt_linear(33, 24, 50, false, SDIFF__ACT_GEGLU, 2, 0);           /* odd: the residual in place */
    gt_linear(64, 320, 1280, true, SDIFF__ACT_GEGLU, 0, 320);       /* x a column view */
}

/* conv2d: the CPU result once, then the GPU's on every route that applies, each checked. The routes
   (sdiff__cuda.conv_force; a route that does not apply to the shape leaves it to the library):
   the library's choice, the TMA kernel (Hopper), the cp.async kernel with wgmma (Hopper) and with
   mma.sync, im2col + GEMM, and the kernel for at most 8 output channels. residual: 0 none, 1 a separate tensor, 2 in place (y is the
   residual, as SD's resnets run it), 3 one row per image (SD's time embedding: [B, 1, 1, Co], a
   column view of a wider tensor, as the UNet's shared projection gives it). */
static void gt_conv(int64_t bn, int64_t h, int64_t w, int64_t ci, int64_t co, int k, int stride, int pad, int64_t ho,
                    int64_t wo, int residual) {
    if (!gt_setup()) { g_test_failed++; return; }
    sdiff__cuda *cb = SDIFF__CUDA(g_gt.gpu);
    const bool wgmma = cb->wgmma;
    gt_t x = gt_in(4, bn, h, w, ci), wt = gt_new(4, co, k, k, ci, 1, 1.0f / sqrtf((float)(k * k * ci)));
    gt_t b = gt_in(1, co, 1, 1, 1), y = gt_out(4, bn, ho, wo, co);
    gt_t r = residual == 3 ? gt_in(2, bn, co + 24, 1, 1) : gt_in(4, bn, ho, wo, co);
    sdiff__tensor rc = r.c, rg = r.g;
    if (residual == 3) { /* columns 8 .. 8 + co of each row, seen as [bn, 1, 1, co] */
        gt_view(&r, 8, co, &rc, &rg);
        rc.nd = rg.nd = 4;
        rc.ne[1] = rg.ne[1] = rc.ne[2] = rg.ne[2] = 1;
        rc.ne[3] = rg.ne[3] = co;
    }
    gt_t *out = residual == 2 ? &r : &y;
    const size_t nr = (size_t)sdiff__numel(&r.c);
    float *r_in = (float *)malloc(nr * 4);   /* the residual's values, for the in-place reruns */
    memcpy(r_in, r.h, nr * 4);
    g_gt.cpu->conv2d(g_gt.cpu, &out->c, &x.c, &wt.c, &b.c, stride, pad, residual ? &rc : NULL);
    static const struct { int force; bool wgmma; const char *name; } routes[] = {
        {SDIFF__CONV_AUTO, true, "auto"}, {SDIFF__CONV_TMA, true, "tma"}, {SDIFF__CONV_IMPLICIT, true, "wgmma"},
        {SDIFF__CONV_IMPLICIT, false, "mma.sync"}, {SDIFF__CONV_IM2COL, true, "im2col"},
        {SDIFF__CONV_FEW, true, "few"}};
    for (size_t i = 0; i < sizeof routes / sizeof *routes; i++) {
        if ((routes[i].force == SDIFF__CONV_TMA && !cb->tma) || (routes[i].wgmma == false && !wgmma) ||
            (routes[i].force == SDIFF__CONV_IMPLICIT && routes[i].wgmma && !wgmma))
            continue; /* the same as another route on this GPU */
        cb->conv_force = routes[i].force;
        cb->wgmma = wgmma && routes[i].wgmma;
        if (i > 0) { /* fresh output (and residual, when in place) for this route */
            g_gt.gpu->upload(g_gt.gpu, &r.g, r_in, SDIFF__F32);
            if (residual != 2) {
                for (size_t e = 0; e < (size_t)sdiff__numel(&y.c); e++) y.h[e] = NAN;
                g_gt.gpu->upload(g_gt.gpu, &y.g, y.h, SDIFF__F32);
            }
        }
        g_gt.gpu->conv2d(g_gt.gpu, &out->g, &x.g, &wt.g, &b.g, stride, pad, residual ? &rg : NULL);
        char s[128];
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld k%d s%d p%d ->%lldx%lldx%lld%s %s", (long long)bn, (long long)h,
                 (long long)w, (long long)ci, k, stride, pad, (long long)ho, (long long)wo, (long long)co,
                 residual == 3 ? " +res/img" : residual == 2 ? " +=res" : residual ? " +res" : "", routes[i].name);
        gt_check("conv2d", s, out, GT_TOL);
    }
    cb->conv_force = SDIFF__CONV_AUTO;
    cb->wgmma = wgmma;
    free(r_in);
    gt_free(&x); gt_free(&wt); gt_free(&b); gt_free(&r); gt_free(&y);
}
SDIFF_TEST(cuda_conv2d) {
    if (!gt_setup()) { g_test_failed++; return; }
    /* SD's shapes (both sizes of the TMA kernel's box: pixels of a row, whole rows, whole images) */
    gt_conv(2, 64, 64, 320, 320, 3, 1, 1, 64, 64, 2);
    gt_conv(2, 64, 64, 960, 320, 3, 1, 1, 64, 64, 0);
    gt_conv(2, 32, 32, 640, 640, 3, 1, 1, 32, 32, 1);
    gt_conv(2, 16, 16, 1280, 1280, 3, 1, 1, 16, 16, 2);
    gt_conv(2, 8, 8, 1280, 1280, 3, 1, 1, 8, 8, 2);
    gt_conv(2, 64, 64, 320, 4, 3, 1, 1, 64, 64, 0);      /* conv_out: Co 4, element-wise epilogue */
    gt_conv(2, 64, 64, 320, 320, 3, 2, 1, 32, 32, 0);    /* downsample */
    gt_conv(2, 32, 32, 640, 640, 3, 2, 1, 16, 16, 1);    /* downsample, split-K (TMA at stride 2) */
    gt_conv(2, 16, 16, 64, 128, 3, 2, 1, 8, 8, 2);       /* stride 2 in boxes of whole images, in place */
    gt_conv(1, 24, 48, 64, 80, 3, 3, 1, 8, 16, 1);       /* stride 3 */
    gt_conv(2, 64, 64, 4, 320, 3, 1, 1, 64, 64, 0);      /* conv_in */
    gt_conv(1, 128, 128, 256, 512, 3, 1, 1, 128, 128, 1); /* VAE decoder, Co 512 */
    gt_conv(1, 256, 256, 128, 128, 3, 1, 1, 256, 256, 1); /* VAE decoder scale: half rows in a box */
    gt_conv(1, 512, 512, 128, 3, 3, 1, 1, 512, 512, 0);   /* VAE conv_out, Co 3 */
    gt_conv(1, 128, 128, 128, 128, 3, 2, 0, 63, 63, 0);  /* VAE encoder: pad 0, bottom/right by y's size */
    /* partial tiles and odd sizes */
    gt_conv(2, 64, 64, 128, 300, 3, 1, 1, 64, 64, 1);    /* Co 300: partial column tiles, element-wise */
    gt_conv(3, 4, 4, 64, 40, 3, 1, 1, 4, 4, 2);          /* boxes of 8 images, 3 of them: 48 rows of 128 */
    gt_conv(3, 16, 8, 64, 72, 3, 1, 1, 16, 8, 1);        /* boxes of 16 rows of 8 */
    gt_conv(1, 2, 128, 64, 24, 3, 1, 1, 2, 128, 0);      /* one row per box */
    gt_conv(1, 16, 16, 64, 12, 3, 1, 1, 16, 16, 2);      /* split-K over a cluster, Co 12 element-wise, in place */
    gt_conv(2, 61, 59, 192, 72, 3, 1, 1, 61, 59, 2);     /* no box fits: the cp.async kernel */
    gt_conv(1, 81, 83, 64, 12, 5, 1, 2, 81, 83, 1);      /* 5x5, Co 12 (not a multiple of 8) */
    gt_conv(1, 32, 32, 64, 16, 5, 1, 2, 32, 32, 1);      /* 5x5 through the TMA kernel */
    gt_conv(1, 96, 96, 96, 64, 3, 1, 1, 96, 96, 1);      /* channels not in 64s: im2col */
    gt_conv(3, 33, 17, 96, 72, 3, 2, 1, 17, 9, 1);
    gt_conv(1, 7, 9, 13, 11, 3, 1, 1, 7, 9, 1);
    gt_conv(1, 9, 7, 5, 3, 3, 2, 1, 5, 4, 0);
    gt_conv(2, 37, 41, 64, 7, 3, 1, 1, 37, 41, 1);
    gt_conv(1, 33, 35, 16, 8, 3, 2, 0, 16, 17, 2);
    gt_conv(1, 64, 64, 512, 8, 3, 1, 1, 64, 64, 0);
    gt_conv(3, 5, 70, 64, 1, 3, 1, 1, 5, 70, 2);        /* Co 1, partial tiles in both directions, in place */
    gt_conv(1, 20, 24, 128, 6, 1, 1, 0, 20, 24, 1);     /* 1x1 with few channels: a GEMM, as every 1x1 */
    gt_conv(1, 9, 70, 3, 32, 3, 1, 1, 9, 70, 1);        /* few input channels (conv_few_ci), a partial tile */
    gt_conv(2, 7, 9, 1, 48, 5, 1, 2, 7, 9, 2);          /* 5x5 of one channel, in place */
    /* a residual row per image (SD's resnets' conv1 + time embedding) on every route */
    gt_conv(2, 64, 64, 320, 320, 3, 1, 1, 64, 64, 3);
    gt_conv(2, 8, 8, 1280, 1280, 3, 1, 1, 8, 8, 3);      /* split-K */
    gt_conv(3, 4, 4, 64, 40, 3, 1, 1, 4, 4, 3);          /* boxes of whole images */
    gt_conv(2, 64, 64, 320, 4, 3, 1, 1, 64, 64, 3);      /* Co 4: conv_few_co, then the add */
    gt_conv(2, 9, 7, 64, 40, 1, 1, 0, 9, 7, 3);          /* 1x1: the GEMM, then the add */
    gt_conv(2, 17, 9, 96, 36, 3, 2, 1, 9, 5, 3);         /* strided: cp.async / im2col, then the add */
    /* 1x1: a plain GEMM */
    gt_conv(2, 32, 32, 640, 320, 1, 1, 0, 32, 32, 1);
}

/* upsample_conv2d (SD's upsamplers: nearest 2x, then a 3x3 convolution) against the CPU's upsample
   + conv2d. On Hopper the four-phase TMA convolution takes every shape whose output grid tiles
   into its boxes and that is large enough (expect: it must); otherwise the op declines (checked:
   no error) and the model upsamples. */
static void gt_upconv(int64_t bn, int64_t h, int64_t w, int64_t ci, int64_t co, bool expect) {
    if (!gt_setup()) { g_test_failed++; return; }
    gt_t x = gt_in(4, bn, h, w, ci), wt = gt_new(4, co, 3, 3, ci, 1, 1.0f / sqrtf((float)(9 * ci)));
    gt_t b = gt_in(1, co, 1, 1, 1), u = gt_out(4, bn, 2 * h, 2 * w, ci), y = gt_out(4, bn, 2 * h, 2 * w, co);
    g_gt.cpu->upsample(g_gt.cpu, &u.c, &x.c);
    g_gt.cpu->conv2d(g_gt.cpu, &y.c, &u.c, &wt.c, &b.c, 1, 1, NULL);
    const bool taken = g_gt.gpu->upsample_conv2d(g_gt.gpu, &y.g, &x.g, &wt.g, &b.g);
    char s[128];
    snprintf(s, sizeof s, "%lldx%lldx%lldx%lld -> x2, %lld", (long long)bn, (long long)h, (long long)w, (long long)ci,
             (long long)co);
    if (taken) gt_check("upsample_conv2d", s, &y, GT_TOL);
    else {
        const bool ok = !(expect && SDIFF__CUDA(g_gt.gpu)->tma) && g_gt.gpu->status == SDIFF_OK;
        printf("  %-20s %-40s %10s  %s\n", "upsample_conv2d", s, "declined", ok ? "ok" : "FAIL");
        if (!ok) g_test_failed++;
    }
    gt_free(&x); gt_free(&wt); gt_free(&b); gt_free(&u); gt_free(&y);
}
SDIFF_TEST(cuda_upsample_conv2d) {
    gt_upconv(1, 64, 64, 512, 512, true);   /* VAE decoder */
    gt_upconv(1, 128, 128, 256, 256, true);
    gt_upconv(2, 64, 64, 640, 640, true);   /* UNet 1024: into the 128x128 level */
    gt_upconv(3, 32, 64, 64, 40, true);     /* three images, Co 40 */
    gt_upconv(1, 64, 64, 128, 12, true);    /* Co 12: element-wise stores */
    gt_upconv(2, 32, 32, 640, 640, false);  /* UNet 512: too small for the weights' transform to pay */
    gt_upconv(1, 65, 63, 64, 16, false);    /* no box fits: declined, the model upsamples */
}

/* --- norms, elementwise ------------------------------------------------ */
SDIFF_TEST(cuda_norms) {
    if (!gt_setup()) { g_test_failed++; return; }
    /* offset: added to x (a mean far from 0 against a std of ~1.7 tests the variance's precision);
       inplace: y is x; affine: gamma and beta (else NULL); cl: the cluster kernel is expected to take
       it on a GPU with clusters when group_norm_regs is off. Every case runs as the library chooses
       (group_norm_regs where a group fits its registers), then with group_norm_regs off (the cluster
       kernel where cl is set, which is checked), then as three kernels (no clusters, no registers;
       that pass is the second one on a GPU without clusters). */
    struct { int64_t b, h, w, c; int g; bool silu; float offset; bool inplace, affine, cl; } gn[] = {
        {2, 64, 64, 320, 32, true, 0, false, true, true},   {2, 8, 8, 1280, 32, false, 0, true, true, true},
        {1, 128, 128, 128, 32, true, 0, false, true, true}, {1, 512, 512, 128, 32, true, 0, true, true, false},
        {2, 8, 8, 2560, 32, false, 0, false, true, true},   {1, 64, 64, 512, 32, false, 40, false, true, true},
        {3, 5, 7, 12, 4, true, 0, false, true, true},       {2, 3, 3, 40, 8, true, -7, true, true, true},
        {2, 64, 64, 960, 32, true, 0, false, true, true},   {1, 128, 128, 512, 32, true, 0, true, true, true},
        {1, 7, 9, 1024, 8, false, 3, false, true, true},    /* 128 channels a group */
        {1, 5, 10, 36, 12, true, 0, false, true, true},     /* element-wise (C % 8), two slices of 18 */
        {12, 8, 8, 320, 32, true, 0, false, true, true},    /* 32 groups in one slice: more than warps */
        {1, 1, 1, 64, 8, true, 0, false, true, true},       /* one row: 7 of the cluster's blocks have none */
        {2, 16, 16, 640, 32, true, 0, false, false, true},  /* no gamma, no beta */
        {2, 32, 32, 640, 32, true, 40, false, true, true},  /* registers: 4 channels a load, offset */
        {2, 32, 32, 960, 32, false, 0, true, true, true},   /* registers: 2 channels a load, in place */
        {1, 9, 11, 96, 4, true, 0, false, true, true},      /* registers: 297 loads, a partial warp */
        {2, 5, 5, 48, 8, true, 0, false, true, true}};      /* registers: 6 channels a group */
    sdiff__cuda *cb = SDIFF__CUDA(g_gt.gpu);
    const bool clusters = cb->clusters;
    const size_t n_gn = sizeof gn / sizeof gn[0];
    const size_t passes = clusters ? 3 : 2;
    for (size_t k = 0; k < passes * n_gn; k++) {
        const size_t i = k % n_gn, pass = k / n_gn;
        cb->gn_no_regs = pass > 0;
        cb->clusters = clusters && pass < 2;
        sdiff__cuda_gn_tiling t = {0, 0, 0, 0, 0};
        gt_t x = gt_new(4, gn[i].b, gn[i].h, gn[i].w, gn[i].c, 1, 3.0f), y = gt_out(4, gn[i].b, gn[i].h, gn[i].w, gn[i].c);
        gt_t *out = gn[i].inplace ? &x : &y;
        const int regs = sdiff__cuda_gn_regs_width(cb, gn[i].h * gn[i].w, gn[i].c, gn[i].c / gn[i].g, x.g.data, out->g.data);
        if (cb->clusters && !regs) {
            const bool cl = sdiff__cuda_gn_cluster_plan(cb, gn[i].b, gn[i].h * gn[i].w, gn[i].c, gn[i].g, true, &t);
            CHECK_MSG(cl == gn[i].cl, "group_norm %lldx%lldx%lldx%lld: cluster kernel %s, expected %s", (long long)gn[i].b,
                      (long long)gn[i].h, (long long)gn[i].w, (long long)gn[i].c, cl ? "chosen" : "not chosen",
                      gn[i].cl ? "chosen" : "not");
        }
        if (gn[i].offset != 0) {
            for (int64_t j = 0; j < sdiff__numel(&x.c); j++) x.h[j] = gt_round(x.h[j] + gn[i].offset);
            memcpy(x.c.data, x.h, (size_t)sdiff__numel(&x.c) * 4);
            g_gt.gpu->upload(g_gt.gpu, &x.g, x.h, SDIFF__F32);
        }
        gt_t ga = gt_in(1, gn[i].c, 1, 1, 1), be = gt_in(1, gn[i].c, 1, 1, 1);
        for (int64_t j = 0; j < gn[i].c; j++) { ga.h[j] = gt_round(1.0f + 0.5f * ga.h[j]); ((float *)ga.c.data)[j] = ga.h[j]; }
        g_gt.gpu->upload(g_gt.gpu, &ga.g, ga.h, SDIFF__F32);
        const bool af = gn[i].affine;
        g_gt.cpu->group_norm(g_gt.cpu, &out->c, &x.c, af ? &ga.c : NULL, af ? &be.c : NULL, gn[i].g, 1e-5f, gn[i].silu);
        g_gt.gpu->group_norm(g_gt.gpu, &out->g, &x.g, af ? &ga.g : NULL, af ? &be.g : NULL, gn[i].g, 1e-5f, gn[i].silu);
        char s[128];
        char how[40] = "";
        if (regs) snprintf(how, sizeof how, " (registers, %d a load)", regs);
        else if (cb->clusters && gn[i].cl) snprintf(how, sizeof how, " (clusters of %d)", t.cs);
        else snprintf(how, sizeof how, " (three kernels)");
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld g%d%s%s%s%s%s", (long long)gn[i].b, (long long)gn[i].h,
                 (long long)gn[i].w, (long long)gn[i].c, gn[i].g, gn[i].silu ? " +silu" : "",
                 gn[i].offset != 0 ? " offset" : "", gn[i].inplace ? " in place" : "", af ? "" : " no affine", how);
        gt_check("group_norm", s, out, GT_TOL);
        gt_free(&x); gt_free(&y); gt_free(&ga); gt_free(&be);
    }
    cb->clusters = clusters;
    cb->gn_no_regs = false;
    int64_t ln[][2] = {{8192, 320}, {77, 768}, {512, 1280}, {9, 2560}, {13, 37}}; /* the last has no beta */
    for (int i = 0; i < 5; i++) {
        gt_t x = gt_new(2, ln[i][0], ln[i][1], 1, 1, 1, 2.0f), y = gt_out(2, ln[i][0], ln[i][1], 1, 1);
        gt_t ga = gt_in(1, ln[i][1], 1, 1, 1), be = gt_in(1, ln[i][1], 1, 1, 1);
        g_gt.cpu->layer_norm(g_gt.cpu, &y.c, &x.c, &ga.c, i == 4 ? NULL : &be.c, 1e-5f);
        g_gt.gpu->layer_norm(g_gt.gpu, &y.g, &x.g, &ga.g, i == 4 ? NULL : &be.g, 1e-5f);
        char s[64];
        snprintf(s, sizeof s, "%lldx%lld%s", (long long)ln[i][0], (long long)ln[i][1], i == 4 ? " no beta" : "");
        gt_check("layer_norm", s, &y, GT_TOL);
        gt_free(&x); gt_free(&y); gt_free(&ga); gt_free(&be);
    }
}

SDIFF_TEST(cuda_elementwise) {
    if (!gt_setup()) { g_test_failed++; return; }
    char s[96];
    /* add: full, [C], [B, C], in place */
    int64_t ad[][4] = {{2, 64, 64, 320}, {3, 5, 7, 13}};
    for (int i = 0; i < 2; i++) {
        int64_t B = ad[i][0], H = ad[i][1], W = ad[i][2], C = ad[i][3];
        gt_t a = gt_in(4, B, H, W, C), bf = gt_in(4, B, H, W, C), bc = gt_in(1, C, 1, 1, 1), bb = gt_in(2, B, C, 1, 1);
        gt_t y = gt_out(4, B, H, W, C);
        const char *names[3] = {"full", "[C]", "[B,C]"};
        gt_t *bs[3] = {&bf, &bc, &bb};
        for (int m = 0; m < 3; m++) {
            g_gt.cpu->add(g_gt.cpu, &y.c, &a.c, &bs[m]->c);
            g_gt.gpu->add(g_gt.gpu, &y.g, &a.g, &bs[m]->g);
            snprintf(s, sizeof s, "%lldx%lldx%lldx%lld + %s", (long long)B, (long long)H, (long long)W, (long long)C, names[m]);
            gt_check("add", s, &y, GT_TOL);
        }
        g_gt.cpu->add(g_gt.cpu, &a.c, &a.c, &bb.c); /* y aliases a */
        g_gt.gpu->add(g_gt.gpu, &a.g, &a.g, &bb.g);
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld in place", (long long)B, (long long)H, (long long)W, (long long)C);
        gt_check("add", s, &a, GT_TOL);
        gt_t bw = gt_in(2, B, C + 16, 1, 1); /* [B, C] as columns 8 .. 8 + C of wider rows */
        sdiff__tensor bvc, bvg;
        gt_view(&bw, 8, C, &bvc, &bvg);
        g_gt.cpu->add(g_gt.cpu, &y.c, &a.c, &bvc);
        g_gt.gpu->add(g_gt.gpu, &y.g, &a.g, &bvg);
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld + [B,C] view", (long long)B, (long long)H, (long long)W, (long long)C);
        gt_check("add", s, &y, GT_TOL);
        gt_free(&a); gt_free(&bf); gt_free(&bc); gt_free(&bb); gt_free(&bw); gt_free(&y);
    }
    int64_t an[] = {2 * 64 * 64 * 320, 1001};
    for (int i = 0; i < 2; i++)
        for (int act = 1; act <= 3; act++) {
            gt_t x = gt_new(1, an[i], 1, 1, 1, 1, 6.0f), y = gt_out(1, an[i], 1, 1, 1);
            g_gt.cpu->activate(g_gt.cpu, &y.c, &x.c, (sdiff__act)act);
            g_gt.gpu->activate(g_gt.gpu, &y.g, &x.g, (sdiff__act)act);
            snprintf(s, sizeof s, "%lld %s", (long long)an[i], act == 1 ? "silu" : act == 2 ? "gelu" : "quick_gelu");
            gt_check("activate", s, &y, GT_TOL);
            gt_free(&x); gt_free(&y);
        }
    int64_t up[][6] = {{2, 32, 32, 640, 64, 64}, {2, 8, 8, 1280, 16, 16}, {1, 5, 7, 3, 11, 13}, {1, 3, 3, 16, 7, 5},
                       {1, 6, 6, 8, 4, 9}};
    for (int i = 0; i < 5; i++) {
        gt_t x = gt_in(4, up[i][0], up[i][1], up[i][2], up[i][3]), y = gt_out(4, up[i][0], up[i][4], up[i][5], up[i][3]);
        g_gt.cpu->upsample(g_gt.cpu, &y.c, &x.c);
        g_gt.gpu->upsample(g_gt.gpu, &y.g, &x.g);
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld -> %lldx%lld", (long long)up[i][0], (long long)up[i][1],
                 (long long)up[i][2], (long long)up[i][3], (long long)up[i][4], (long long)up[i][5]);
        gt_check("upsample", s, &y, 0);   /* a copy: exact */
        gt_free(&x); gt_free(&y);
    }
    int64_t cc[][3] = {{2 * 64 * 64, 320, 320}, {2 * 16 * 16, 1280, 640}, {15, 3, 5}};
    for (int i = 0; i < 3; i++) {
        gt_t a = gt_in(2, cc[i][0], cc[i][1], 1, 1), b = gt_in(2, cc[i][0], cc[i][2], 1, 1);
        gt_t y = gt_out(2, cc[i][0], cc[i][1] + cc[i][2], 1, 1);
        g_gt.cpu->concat(g_gt.cpu, &y.c, &a.c, &b.c);
        g_gt.gpu->concat(g_gt.gpu, &y.g, &a.g, &b.g);
        snprintf(s, sizeof s, "%lldx(%lld+%lld)", (long long)cc[i][0], (long long)cc[i][1], (long long)cc[i][2]);
        gt_check("concat", s, &y, 0);
        gt_free(&a); gt_free(&b); gt_free(&y);
    }
    int64_t em[][3] = {{49408, 768, 77}, {100, 13, 9}};
    for (int i = 0; i < 2; i++) {
        gt_t t = gt_in(2, em[i][0], em[i][1], 1, 1), y = gt_out(2, em[i][2], em[i][1], 1, 1);
        int32_t ids[77];
        for (int j = 0; j < em[i][2]; j++) ids[j] = (int32_t)((j * 7919 + 3) % em[i][0]);
        ids[0] = (int32_t)em[i][0] - 1;
        g_gt.cpu->embed(g_gt.cpu, &y.c, &t.c, ids, (int)em[i][2]);
        g_gt.gpu->embed(g_gt.gpu, &y.g, &t.g, ids, (int)em[i][2]);
        snprintf(s, sizeof s, "%lld ids of %lldx%lld", (long long)em[i][2], (long long)em[i][0], (long long)em[i][1]);
        gt_check("embed", s, &y, 0);
        gt_free(&t); gt_free(&y);
    }
    /* timestep_embedding: t is F32 on both */
    struct { int b, dim; bool flip; float shift; } te[] = {{2, 320, true, 0.0f}, {3, 7, false, 1.0f}, {1, 256, false, 1.0f}};
    for (int i = 0; i < 3; i++) {
        float tv[3] = {999.0f, 1.0f, 500.5f};
        sdiff__tensor tc, tg;
        int64_t ne[1] = {te[i].b};
        gt_shape(&tc, SDIFF__F32, 1, ne);
        gt_shape(&tg, SDIFF__F32, 1, ne);
        tc.data = g_gt.cpu->alloc(g_gt.cpu, 16);
        tg.data = g_gt.gpu->alloc(g_gt.gpu, 16);
        memcpy(tc.data, tv, 12);
        g_gt.gpu->upload(g_gt.gpu, &tg, tv, SDIFF__F32);
        gt_t y = gt_out(2, te[i].b, te[i].dim, 1, 1);
        g_gt.cpu->timestep_embedding(g_gt.cpu, &y.c, &tc, te[i].flip, te[i].shift);
        g_gt.gpu->timestep_embedding(g_gt.gpu, &y.g, &tg, te[i].flip, te[i].shift);
        snprintf(s, sizeof s, "B%d dim %d flip %d shift %g", te[i].b, te[i].dim, te[i].flip, (double)te[i].shift);
        gt_check("timestep_embedding", s, &y, 1e-3);
        gt_free(&y);
        g_gt.cpu->free(g_gt.cpu, tc.data);
        g_gt.gpu->free(g_gt.gpu, tg.data);
    }
}

/* --- attention --------------------------------------------------------- */
/* fused: q, k, v are column views of one [B, L, 3*H*D] tensor (as the UNet's
   fused qkv projection makes them); else separate tensors. */
static void gt_attn(int64_t bn, int64_t lq, int64_t lk, int heads, int64_t d, bool causal, bool fused) {
    if (!gt_setup()) { g_test_failed++; return; }
    int64_t hd = heads * d;
    gt_t o = gt_out(3, bn, lq, hd, 1);
    gt_t qkv = gt_new(3, bn, lq, 3 * hd, 1, fused, 2.0f);
    gt_t q = gt_new(3, bn, lq, hd, 1, !fused, 2.0f), k = gt_new(3, bn, lk, hd, 1, !fused, 2.0f), v = gt_in(3, bn, lk, hd, 1);
    sdiff__tensor qc = q.c, qg = q.g, kc = k.c, kg = k.g, vc = v.c, vg = v.g;
    if (fused) {
        gt_view(&qkv, 0, hd, &qc, &qg);
        gt_view(&qkv, hd, hd, &kc, &kg);
        gt_view(&qkv, 2 * hd, hd, &vc, &vg);
    }
    g_gt.cpu->attention(g_gt.cpu, &o.c, &qc, &kc, &vc, heads, causal);
    g_gt.gpu->attention(g_gt.gpu, &o.g, &qg, &kg, &vg, heads, causal);
    char s[128];
    snprintf(s, sizeof s, "B%lld Lq%lld Lk%lld H%d D%lld%s%s", (long long)bn, (long long)lq, (long long)lk, heads,
             (long long)d, causal ? " causal" : "", fused ? " qkv-views" : "");
    gt_check("attention", s, &o, GT_TOL);
    gt_free(&o); gt_free(&qkv); gt_free(&q); gt_free(&k); gt_free(&v);
}
/* --- lincomb: the sampling loop's arithmetic ------------------------------ */
/* t's GPU side as F32 with the same values (the loop's latents, model output and kept vectors). */
static void gt_to_f32(gt_t *t) {
    size_t n = (size_t)sdiff__numel(&t->c);
    g_gt.gpu->free(g_gt.gpu, t->g.data);
    t->g.dtype = SDIFF__F32;
    t->g.data = g_gt.gpu->alloc(g_gt.gpu, n * 4);
    g_gt.gpu->upload(g_gt.gpu, &t->g, t->h, SDIFF__F32);
}
SDIFF_TEST(cuda_lincomb) {
    if (!gt_setup()) { g_test_failed++; return; }
    /* SD's latents at 512x512 with CFG, and an odd size */
    static const int64_t sh[][4] = {{2, 64, 64, 4}, {1, 7, 5, 3}};
    for (int i = 0; i < 2; i++) {
        const int64_t B = sh[i][0], H = sh[i][1], W = sh[i][2], C = sh[i][3];
        char s[96];
        snprintf(s, sizeof s, "%lldx%lldx%lldx%lld", (long long)B, (long long)H, (long long)W, (long long)C);
        const float cfg[2] = {1.0f - 7.5f, 7.5f}, scale = 0.0682f;
        const float c5[5] = {0.93f, -0.41f, 1.7f, -0.05f, 0.0125f};
        /* CFG: two F16 halves -> the F32 model output */
        gt_t u = gt_in(4, B, H, W, C), t = gt_in(4, B, H, W, C), mo = gt_out(4, B, H, W, C);
        gt_to_f32(&mo);
        const sdiff__tensor *xc[2] = {&u.c, &t.c}, *xg[2] = {&u.g, &t.g};
        g_gt.cpu->lincomb(g_gt.cpu, &mo.c, 2, xc, cfg, 0);
        g_gt.gpu->lincomb(g_gt.gpu, &mo.g, 2, xg, cfg, 0);
        gt_check("lincomb f16->f32", s, &mo, 1e-6);
        /* scale_model_input: F32 latents -> the F16 UNet input */
        gt_t x_in = gt_out(4, B, H, W, C);
        const sdiff__tensor *lc = &mo.c, *lg = &mo.g;
        g_gt.cpu->lincomb(g_gt.cpu, &x_in.c, 1, &lc, &scale, 0);
        g_gt.gpu->lincomb(g_gt.gpu, &x_in.g, 1, &lg, &scale, 0);
        gt_check("lincomb f32->f16", s, &x_in, 1e-3);
        /* a step: five F32 terms, in place, clamped */
        gt_t k[5];
        const sdiff__tensor *kc[5], *kg[5];
        for (int j = 0; j < 5; j++) {
            k[j] = gt_new(4, B, H, W, C, 1, 3.0f);
            gt_to_f32(&k[j]);
            kc[j] = &k[j].c; kg[j] = &k[j].g;
        }
        g_gt.cpu->lincomb(g_gt.cpu, &k[1].c, 5, kc, c5, 2.5f);
        g_gt.gpu->lincomb(g_gt.gpu, &k[1].g, 5, kg, c5, 2.5f);
        gt_check("lincomb f32 5 terms", s, &k[1], 1e-6);
        for (int j = 0; j < 5; j++) gt_free(&k[j]);
        gt_free(&u); gt_free(&t); gt_free(&mo); gt_free(&x_in);
    }
    /* mixed input dtypes are refused */
    gt_t a = gt_in(1, 64, 1, 1, 1), b = gt_in(1, 64, 1, 1, 1);
    gt_to_f32(&b);
    const sdiff__tensor *ab[2] = {&a.g, &b.g};
    const float c2[2] = {1, 1};
    g_gt.gpu->lincomb(g_gt.gpu, &b.g, 2, ab, c2, 0);
    CHECK(g_gt.gpu->status == SDIFF_ERR_INVALID_ARG);
    g_gt.gpu->status = SDIFF_OK;
    gt_free(&a); gt_free(&b);
}

SDIFF_TEST(cuda_attention) {
    /* On Hopper the D = 40, 64 and 80 cases run twice: the TMA kernel (the library's choice
       there), then the mma.sync one. */
    if (!gt_setup()) { g_test_failed++; return; }
    sdiff__cuda *cb = SDIFF__CUDA(g_gt.gpu);
    const bool tma = cb->tma;
    for (int pass = 0; pass < (tma ? 2 : 1); pass++) {
        cb->tma = tma && pass == 0;
        if (pass == 1) printf("  (D = 40, 64, 80 again on the mma.sync kernel)\n");
        gt_attn(2, 4096, 4096, 8, 40, false, true);   /* SD 1.5 self-attention, 64x64 */
        gt_attn(2, 4096, 77, 8, 40, false, false);    /* cross-attention */
        gt_attn(2, 1024, 1024, 5, 64, false, true);   /* SD 2.x head dim */
        gt_attn(1, 200, 333, 3, 64, false, false);
        gt_attn(1, 1000, 1000, 8, 40, false, true);   /* partial query and key tiles */
        gt_attn(3, 1, 130, 2, 64, false, false);      /* one query; a second key tile of 2 */
        gt_attn(2, 193, 1, 4, 40, false, true);       /* one key: 127 of the tile's keys masked */
        gt_attn(2, 1024, 77, 8, 80, false, false);    /* SD 1.x's 32x32 level: two-atom rows */
        gt_attn(2, 1000, 1000, 8, 80, false, true);   /* partial query and key tiles */
        gt_attn(1, 130, 129, 3, 80, false, false);
        if (pass == 0 && tma) {
            /* the TMA kernel's split tails (attn_kernel_sm90.cu), made to happen at small sizes by
               pretending the GPU has 3 or 4 SMs: the tiles past the last whole wave split in two
               key ranges of 32 or more key tiles, merged by the part that finishes last */
            const int n_sm = cb->n_sm;
            cb->n_sm = 4;
            gt_attn(1, 200, 8192, 3, 64, false, false);  /* 6 tiles: 2 split */
            gt_attn(1, 300, 12000, 2, 80, false, false); /* two-atom rows, a partial last key tile */
            cb->n_sm = 3;
            gt_attn(2, 300, 8300, 1, 40, false, false);  /* 4 tiles: 1 split, a partial query tile */
            cb->n_sm = n_sm;
        }
    }
    cb->tma = tma;
    gt_attn(2, 256, 256, 8, 160, false, true);
    gt_attn(2, 64, 77, 8, 160, false, false);
    gt_attn(1, 4096, 4096, 1, 512, false, false); /* VAE mid-block, one head (cuBLASLt math path) */
    gt_attn(2, 77, 77, 12, 64, true, true);       /* CLIP, causal */
    gt_attn(1, 37, 53, 3, 24, false, false);      /* odd */
    gt_attn(1, 33, 33, 2, 100, true, true);
    gt_attn(1, 5, 300, 1, 200, false, false);
    /* the cuBLASLt math path (head dims without a flash kernel, non-causal) */
    gt_attn(1, 4096, 4096, 1, 512, false, true);  /* VAE mid-block as the VAE calls it: packed qkv views */
    gt_attn(2, 1024, 1024, 1, 512, false, true);  /* one head, batched over the batch items, views */
    gt_attn(2, 1000, 2050, 2, 512, false, false); /* Lq != Lk, batched over the heads */
    gt_attn(2, 256, 256, 3, 200, false, true);    /* heads as column offsets of a packed qkv */
    gt_attn(1, 4096, 4096, 3, 96, false, false);  /* S past SDIFF_CUDA_ATTN_MAX: heads in groups */
    gt_attn(1, 8192, 6144, 1, 72, false, false);  /* S past SDIFF_CUDA_ATTN_MAX: query rows in chunks */
}

/* Time of the VAE mid-block attention (B1, 4096 pixels, one head of 512,
   packed qkv views) on the GPU: informational (diffusers' whole VAE decode
   at 512x512 takes about 23 ms on an H100). */
SDIFF_TEST(cuda_attention_vae_time) {
    if (!gt_setup()) { g_test_failed++; return; }
    const int64_t l = 4096, c = 512;
    gt_t qkv = gt_new(3, 1, l, 3 * c, 1, 1, 2.0f), o = gt_out(3, 1, l, c, 1);
    sdiff__tensor qc, qg, kc, kg, vc, vg;
    gt_view(&qkv, 0, c, &qc, &qg);
    gt_view(&qkv, c, c, &kc, &kg);
    gt_view(&qkv, 2 * c, c, &vc, &vg);
    (void)qc; (void)kc; (void)vc;
    g_gt.gpu->attention(g_gt.gpu, &o.g, &qg, &kg, &vg, 1, false); /* warm-up: compile, plans, scratch */
    sdiff__cuda_sync(g_gt.gpu);
    const int n = 20;
    struct timespec t0, t1;
    timespec_get(&t0, TIME_UTC);
    for (int i = 0; i < n; i++) g_gt.gpu->attention(g_gt.gpu, &o.g, &qg, &kg, &vg, 1, false);
    sdiff__cuda_sync(g_gt.gpu);
    timespec_get(&t1, TIME_UTC);
    const double ms = ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6) / n;
    printf("  attention B1 L%lld H1 D%lld qkv-views: %.3f ms per call (%s)\n", (long long)l, (long long)c, ms,
           g_gt.gpu->status == SDIFF_OK ? "ok" : "GPU op failed");
    if (g_gt.gpu->status != SDIFF_OK) g_test_failed++;
    gt_free(&qkv); gt_free(&o);
}

/* --- upload/download and graphs ---------------------------------------- */
SDIFF_TEST(cuda_upload_dtypes) {
    if (!gt_setup()) { g_test_failed++; return; }
    const int64_t n = 5000003; /* 20 MB of f32: two staging chunks when converting */
    float *src = (float *)malloc((size_t)n * 4), *back = (float *)malloc((size_t)n * 4);
    uint16_t *h16 = (uint16_t *)malloc((size_t)n * 2), *b16 = (uint16_t *)malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        src[i] = gt_round(test_randf() * 100.0f);
        h16[i] = sdiff__f32_to_f16(src[i]);
        b16[i] = sdiff__f32_to_bf16(src[i]);
    }
    sdiff__tensor t, tf;
    int64_t ne[1] = {n};
    gt_shape(&t, SDIFF__F16, 1, ne);
    gt_shape(&tf, SDIFF__F32, 1, ne);
    t.data = g_gt.gpu->alloc(g_gt.gpu, (size_t)n * 2);
    tf.data = g_gt.gpu->alloc(g_gt.gpu, (size_t)n * 4);
    const char *names[] = {"F32 -> F16", "F16 -> F16", "BF16 -> F16", "F32 -> F32", "F16 -> F32", "BF16 -> F32"};
    const void *srcs[] = {src, h16, b16, src, h16, b16};
    const sdiff__dtype dts[] = {SDIFF__F32, SDIFF__F16, SDIFF__BF16, SDIFF__F32, SDIFF__F16, SDIFF__BF16};
    for (int c = 0; c < 6; c++) {
        sdiff__tensor *tt = c < 3 ? &t : &tf;
        g_gt.gpu->upload(g_gt.gpu, tt, srcs[c], dts[c]);
        for (int64_t i = 0; i < n; i++) back[i] = NAN;
        g_gt.gpu->download(g_gt.gpu, tt, back);
        double e = g_gt.gpu->status == SDIFF_OK ? 0 : INFINITY;
        for (int64_t i = 0; i < n && e == 0; i++) {
            float want = dts[c] == SDIFF__BF16 ? sdiff__bf16_to_f32(b16[i]) : src[i];
            if (c < 3) want = sdiff__f16_to_f32(sdiff__f32_to_f16(want));
            if (!(back[i] == want)) { e = INFINITY; printf("      at %lld: got %g want %g\n", (long long)i, (double)back[i], (double)want); }
        }
        printf("  %-20s %-40s %10.3g  %s\n", "upload/download", names[c], e, e == 0 ? "ok" : "FAIL");
        if (e != 0) { g_test_failed++; if (g_gt.gpu->status) printf("      %s\n", sdiff_last_error()); g_gt.gpu->status = SDIFF_OK; }
    }
    g_gt.gpu->free(g_gt.gpu, t.data);
    g_gt.gpu->free(g_gt.gpu, tf.data);
    free(src); free(back); free(h16); free(b16);
}

/* download_image: the bytes of an F16 and an F32 "image" equal the CPU backend's (sdiff__image_byte)
   bit for bit: random values over [-1.5, 1.5], every byte's rounding tie and its fp16 neighbours,
   NaN and the infinities; 17 M values, so the F16 case spans two staging chunks. */
SDIFF_TEST(cuda_download_image) {
    if (!gt_setup()) { g_test_failed++; return; }
    const int64_t n = ((int64_t)17 << 20) + 5;
    float *src = (float *)malloc((size_t)n * 4);
    uint8_t *want = (uint8_t *)malloc((size_t)n), *got = (uint8_t *)malloc((size_t)n);
    int64_t k = 0;
    for (int b = 0; b < 255; b++) { /* (b + 0.5) / 255 * 2 - 1 lands v * 255 on the tie b + 0.5, near enough */
        const float tie = (float)((b + 0.5) / 255.0 * 2.0 - 1.0);
        const uint16_t h = sdiff__f32_to_f16(tie);
        const uint16_t hs[3] = {(uint16_t)(h - 1), h, (uint16_t)(h + 1)};
        for (int j = 0; j < 3; j++) src[k++] = sdiff__f16_to_f32(hs[j]);
        src[k++] = tie;
    }
    src[k++] = NAN; src[k++] = INFINITY; src[k++] = -INFINITY; src[k++] = -1.0f; src[k++] = 1.0f; src[k++] = 0.0f;
    for (; k < n; k++) src[k] = test_randf() * 1.5f;
    sdiff__tensor t;
    int64_t ne[1] = {n};
    for (int f32 = 0; f32 < 2; f32++) {
        gt_shape(&t, f32 ? SDIFF__F32 : SDIFF__F16, 1, ne);
        t.data = g_gt.gpu->alloc(g_gt.gpu, (size_t)n * (f32 ? 4 : 2));
        g_gt.gpu->upload(g_gt.gpu, &t, src, SDIFF__F32);
        memset(got, 0xAB, (size_t)n);
        g_gt.gpu->download_image(g_gt.gpu, &t, got);
        int64_t bad = g_gt.gpu->status == SDIFF_OK ? 0 : n;
        for (int64_t i = 0; i < n && g_gt.gpu->status == SDIFF_OK; i++) {
            want[i] = sdiff__image_byte(f32 ? src[i] : sdiff__f16_to_f32(sdiff__f32_to_f16(src[i])));
            if (got[i] != want[i] && bad++ < 3)
                printf("      at %lld: x %.9g got %d want %d\n", (long long)i, (double)src[i], got[i], want[i]);
        }
        printf("  %-20s %-40s %10lld  %s\n", "download_image", f32 ? "F32, 17M values" : "F16, 17M values",
               (long long)bad, bad == 0 ? "ok" : "FAIL");
        if (bad) { g_test_failed++; if (g_gt.gpu->status) printf("      %s\n", sdiff_last_error()); g_gt.gpu->status = SDIFF_OK; }
        g_gt.gpu->free(g_gt.gpu, t.data);
    }
    free(src); free(want); free(got);
}

/* upload_conv: [Co, Ci, KH, KW] in f32 / f16 / bf16 -> [Co, KH, KW, Ci] on the device, bit-exact
   against the CPU backend's reordering rounded to fp16 (the large case spans several staging chunks). */
SDIFF_TEST(cuda_upload_conv) {
    if (!gt_setup()) { g_test_failed++; return; }
    const int64_t shapes[][4] = {{5, 7, 3, 3}, {1280, 2560, 3, 3}, {3, 4, 5, 2}};
    for (int si = 0; si < 3; si++) {
        const int64_t co = shapes[si][0], ci = shapes[si][1], kh = shapes[si][2], kw = shapes[si][3], n = co * ci * kh * kw;
        float *f = (float *)malloc((size_t)n * 4), *want = (float *)malloc((size_t)n * 4), *got = (float *)malloc((size_t)n * 4);
        uint16_t *h = (uint16_t *)malloc((size_t)n * 2), *b = (uint16_t *)malloc((size_t)n * 2);
        for (int64_t i = 0; i < n; i++) {
            f[i] = test_randf() * 4.0f;
            h[i] = sdiff__f32_to_f16(f[i]);
            b[i] = sdiff__f32_to_bf16(f[i]);
        }
        const void *srcs[3] = {f, h, b};
        const sdiff__dtype dts[3] = {SDIFF__F32, SDIFF__F16, SDIFF__BF16};
        const int64_t ne[4] = {co, kh, kw, ci};
        sdiff__tensor tc, tg;
        gt_shape(&tc, SDIFF__F32, 4, ne);
        gt_shape(&tg, SDIFF__F16, 4, ne);
        tc.data = g_gt.cpu->alloc(g_gt.cpu, (size_t)n * 4);
        tg.data = g_gt.gpu->alloc(g_gt.gpu, (size_t)n * 2);
        for (int d = 0; d < 3; d++) {
            g_gt.cpu->upload_conv(g_gt.cpu, &tc, srcs[d], dts[d]);
            g_gt.gpu->upload_conv(g_gt.gpu, &tg, srcs[d], dts[d]);
            g_gt.gpu->download(g_gt.gpu, &tg, got);
            int64_t bad = g_gt.gpu->status != SDIFF_OK ? n : 0;
            for (int64_t i = 0; i < n && !bad; i++) {
                want[i] = gt_round(((const float *)tc.data)[i]);
                bad += !(got[i] == want[i]);
            }
            char s[96];
            snprintf(s, sizeof s, "[%lld,%lld,%lld,%lld] from %s", (long long)co, (long long)ci, (long long)kh,
                     (long long)kw, d == 0 ? "f32" : d == 1 ? "f16" : "bf16");
            printf("  %-20s %-40s %10lld  %s\n", "upload_conv", s, (long long)bad, bad ? "FAIL" : "ok");
            if (bad) { g_test_failed++; g_gt.gpu->status = SDIFF_OK; }
        }
        g_gt.cpu->free(g_gt.cpu, tc.data);
        g_gt.gpu->free(g_gt.gpu, tg.data);
        free(f); free(want); free(got); free(h); free(b);
    }
}

/* The graph test's ops on one backend: h2 = conv(silu(gn(x))) + b + x, y = silu(h2 . lw^T + b) over its rows. */
static void gt_graph_ops(sdiff__backend *be, sdiff__tensor *x, sdiff__tensor *w, sdiff__tensor *b, sdiff__tensor *ga,
                         sdiff__tensor *beta, sdiff__tensor *lw, sdiff__tensor *h1, sdiff__tensor *h2, sdiff__tensor *y) {
    be->group_norm(be, h1, x, ga, beta, 32, 1e-5f, true);
    be->conv2d(be, h2, h1, w, b, 1, 1, x);
    const int64_t rows = sdiff__numel(h2) / h2->ne[3], c = h2->ne[3];
    sdiff__tensor h2r = *h2, yr = *y;
    h2r.nd = 2; h2r.ne[0] = rows; h2r.ne[1] = c; h2r.row_stride = c;
    yr.nd = 2; yr.ne[0] = rows; yr.ne[1] = c; yr.row_stride = c;
    be->linear(be, &yr, &h2r, lw, b, SDIFF__ACT_SILU, NULL);
}
SDIFF_TEST(cuda_graph) {
    if (!gt_setup()) { g_test_failed++; return; }
    sdiff__backend *gb = g_gt.gpu, *cpu = g_gt.cpu;
    const int64_t B = 2, H = 16, W = 16, C = 320;
    gt_t x = gt_in(4, B, H, W, C), w = gt_new(4, C, 3, 3, C, 1, 1.0f / sqrtf(9.0f * C)), b = gt_in(1, C, 1, 1, 1);
    gt_t ga = gt_in(1, C, 1, 1, 1), be = gt_in(1, C, 1, 1, 1), lw = gt_new(2, C, C, 1, 1, 1, 1.0f / sqrtf((float)C));
    gt_t h1 = gt_out(4, B, H, W, C), h2 = gt_out(4, B, H, W, C), y = gt_out(4, B, H, W, C);
    /* eager once (sizes the scratch), then capture, then replay with new x */
    void *graph = NULL;
    for (int step = 0; step < 3; step++) {
        if (step) gt_reload(&x, 1.0f);
        bool cap = step == 1 && gb->graph_begin(gb);
        if (step == 1 && !cap) printf("      graph_begin returned false\n");
        if (step < 2 || !graph) gt_graph_ops(gb, &x.g, &w.g, &b.g, &ga.g, &be.g, &lw.g, &h1.g, &h2.g, &y.g);
        if (cap) graph = gb->graph_end(gb);
        if (graph) gb->graph_launch(gb, graph);
        gt_graph_ops(cpu, &x.c, &w.c, &b.c, &ga.c, &be.c, &lw.c, &h1.c, &h2.c, &y.c);
        const char *names[] = {"eager", "captured + launched", "replay, new input"};
        gt_check("graph gn+conv+linear", names[step], &y, GT_TOL);
    }
    CHECK(graph != NULL);
    if (graph) gb->graph_free(gb, graph);
    gt_free(&x); gt_free(&w); gt_free(&b); gt_free(&ga); gt_free(&be); gt_free(&lw);
    gt_free(&h1); gt_free(&h2); gt_free(&y);
}

/* Last (tests run in file order): the error paths stay sticky and clear. */
SDIFF_TEST(cuda_zz_errors) {
    if (!gt_setup()) { g_test_failed++; return; }
    sdiff__backend *gb = g_gt.gpu;
    gt_t a = gt_in(2, 4, 8, 1, 1), y = gt_out(2, 4, 9, 1, 1);
    gb->add(gb, &y.g, &a.g, &a.g);
    CHECK(gb->status == SDIFF_ERR_INVALID_ARG);
    printf("  shape error message: %s\n", sdiff_last_error());
    gb->status = SDIFF_OK;
    void *p = gb->alloc(gb, (size_t)1 << 50); /* 1 PiB: out of memory, NULL, backend not failed */
    CHECK(p == NULL && gb->status == SDIFF_OK);
    gt_free(&a); gt_free(&y);
    gb->destroy(gb);
    g_gt.cpu->destroy(g_gt.cpu);
    g_gt.gpu = g_gt.cpu = NULL;
}
