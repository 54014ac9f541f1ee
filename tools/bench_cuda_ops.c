/* bench_cuda_ops - the CUDA backend's memory-bound ops alone, at the shapes SD 1.5 gives them
   (GroupNorm at every UNet and VAE level, LayerNorm, the time-embedding add), so a
   kernel change can be measured without the whole model.

     build/bench_cuda_ops [filter]           # time every case whose name contains filter
     build/bench_cuda_ops [filter] profile   # run each case once between cuProfilerStart/Stop,
                                        # for ncu --profile-from-start off
     build/bench_cuda_ops [filter] sweep     # GroupNorm also with each cluster size forced

   GroupNorm's cases also run with group_norm_regs off (", no registers kernel"), so the two
   kernels' times stand side by side where both apply.

   Each case is captured as a CUDA graph of REPS calls on the same tensors (so programmatic
   dependent launch and the graph's launch costs are the ones a UNet step sees), replayed
   RUNS times after a warm-up; the time per call is the median replay / REPS. "GB/s" counts
   the bytes the op must move at least (read x once, write y once; GroupNorm and LayerNorm
   need no second read when the tile stays on chip), so it says how far from bandwidth an op
   is. Inputs are random; no result is checked here (tests/gpu/ does that). */
#define SDIFF_IMPLEMENTATION
#ifndef SDIFF_NO_STB
#define SDIFF_NO_STB /* no PNG here */
#endif
#include "../sdiff.h"
#include "../sdiff_cuda.h"
#include "bench_util.h"
#include <dlfcn.h>

#define REPS 20
#define RUNS 15

typedef enum { OP_GN, OP_GN_SILU, OP_LN, OP_ADD_BC } op_kind;
typedef struct bench_case {
    const char *name;
    op_kind op;
    int64_t b, h, w, c; /* NHWC (GroupNorm, the add: [b, h*w, c]); LayerNorm: rows = b*h*w */
} bench_case;

static const bench_case CASES[] = {
    /* the UNet at 512x512, CFG batch 2: one of each level's channel counts */
    {"gn unet 64x64x320", OP_GN_SILU, 2, 64, 64, 320},   {"gn unet 64x64x960", OP_GN_SILU, 2, 64, 64, 960},
    {"gn unet 32x32x640", OP_GN_SILU, 2, 32, 32, 640},   {"gn unet 16x16x1280", OP_GN_SILU, 2, 16, 16, 1280},
    {"gn unet 8x8x2560", OP_GN_SILU, 2, 8, 8, 2560},     {"gn unet 64x64x320 (no silu)", OP_GN, 2, 64, 64, 320},
    {"gn unet 64x64x640", OP_GN_SILU, 2, 64, 64, 640},   {"gn unet 32x32x320", OP_GN_SILU, 2, 32, 32, 320},
    {"gn unet 32x32x960", OP_GN_SILU, 2, 32, 32, 960},   {"gn unet 32x32x1280", OP_GN_SILU, 2, 32, 32, 1280},
    {"gn unet 32x32x1920", OP_GN_SILU, 2, 32, 32, 1920}, {"gn unet 16x16x640", OP_GN_SILU, 2, 16, 16, 640},
    {"gn unet 16x16x2560", OP_GN_SILU, 2, 16, 16, 2560}, {"gn unet 8x8x1280", OP_GN_SILU, 2, 8, 8, 1280},
    /* the VAE decoder at 512x512, batch 1 */
    {"gn vae 64x64x512", OP_GN_SILU, 1, 64, 64, 512},    {"gn vae 128x128x512", OP_GN_SILU, 1, 128, 128, 512},
    {"gn vae 256x256x256", OP_GN_SILU, 1, 256, 256, 256}, {"gn vae 512x512x128", OP_GN_SILU, 1, 512, 512, 128},
    {"ln unet 8192x320", OP_LN, 2, 64, 64, 320},          {"ln unet 2048x640", OP_LN, 2, 32, 32, 640},
    {"ln unet 512x1280", OP_LN, 2, 16, 16, 1280},
    {"add temb unet 64x64x320", OP_ADD_BC, 2, 64, 64, 320},
};

static void profiler(bool start) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    int (*fn)(void) = lib ? (int (*)(void))dlsym(lib, start ? "cuProfilerStart" : "cuProfilerStop") : NULL;
    if (fn) fn();
}

static sdiff__tensor make(sdiff__backend *be, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    sdiff__tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = SDIFF__F16;
    t.nd = nd;
    const int64_t ne[4] = {n0, n1, n2, n3};
    for (int i = 0; i < 4; i++) t.ne[i] = i < nd ? ne[i] : 1;
    t.row_stride = ne[nd - 1];
    const size_t n = (size_t)sdiff__numel(&t);
    t.data = be->alloc(be, n * 2);
    float *h = (float *)malloc(n * sizeof(float));
    if (!t.data || !h) { fprintf(stderr, "bench_cuda_ops: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) h[i] = 2.0f * ((float)rand() / (float)RAND_MAX) - 1.0f;
    be->upload(be, &t, h, SDIFF__F32);
    free(h);
    return t;
}

/* One call of the case's op. */
static void run_op(sdiff__backend *be, const bench_case *k, sdiff__tensor *y, sdiff__tensor *x, sdiff__tensor *g,
                     sdiff__tensor *bt) {
    switch (k->op) {
    case OP_GN:
    case OP_GN_SILU: be->group_norm(be, y, x, g, bt, 32, 1e-5f, k->op == OP_GN_SILU); break;
    case OP_LN: be->layer_norm(be, y, x, g, bt, 1e-5f); break;
    case OP_ADD_BC: be->add(be, y, x, bt); break;
    }
}

/* Seconds per call: REPS calls captured as one graph, the median of RUNS replays. 0 on failure. */
static double time_op(sdiff__backend *be, const bench_case *k, sdiff__tensor *y, sdiff__tensor *x, sdiff__tensor *g,
                      sdiff__tensor *bt) {
    run_op(be, k, y, x, g, bt); /* eager first: compiles, sizes scratch */
    void *graph = NULL;
    if (be->graph_begin(be)) {
        for (int r = 0; r < REPS; r++) run_op(be, k, y, x, g, bt);
        graph = be->graph_end(be);
    }
    if (!graph) return 0;
    double t[RUNS];
    for (int r = 0; r < 3; r++) be->graph_launch(be, graph);
    sdiff__cuda_sync(be);
    for (int r = 0; r < RUNS; r++) {
        const double t0 = now_s();
        be->graph_launch(be, graph);
        sdiff__cuda_sync(be);
        t[r] = (now_s() - t0) / REPS;
    }
    be->graph_free(be, graph);
    return be->status == SDIFF_OK ? median(t, RUNS) : 0;
}

/* GroupNorm's plan for the case, in words. */
static void gn_plan(sdiff__backend *be, const bench_case *k, const sdiff__tensor *x, char *how, size_t n) {
    sdiff__cuda_gn_tiling t;
    const int w = sdiff__cuda_gn_regs_width(SDIFF__CUDA(be), k->h * k->w, k->c, k->c / 32, x->data, x->data);
    if (w)
        snprintf(how, n, "registers: %d channels a load, %lld loads a group", w, (long long)(k->h * k->w * (k->c / 32) / w));
    else if (sdiff__cuda_gn_cluster_plan(SDIFF__CUDA(be), k->b, k->h * k->w, k->c, 32, true, &t))
        snprintf(how, n, "clusters of %d, %d channels a slice: %lld clusters, %d fit at once", t.cs, t.ws,
                 (long long)(k->b * k->c / t.ws), sdiff__cuda_gn_clusters_fit(SDIFF__CUDA(be), t.cs));
    else
        snprintf(how, n, "three kernels");
}

int main(int argc, char **argv) {
    const char *filter = argc > 1 ? argv[1] : "";
    const bool profile = argc > 2 && !strcmp(argv[2], "profile");
    /* sweep: GroupNorm once per cluster size as well, the others made to look as if one cluster
       fit at a time (so the plan takes the size asked for wherever its tile fits) */
    const bool sweep = argc > 2 && !strcmp(argv[2], "sweep");
    sdiff__logger log = {0};
    log.level = SDIFF_LOG_WARN;
    sdiff__backend *be = sdiff__cuda_backend_create(0, &log);
    if (!be) { /* "make bench" runs every bench_* program, GPU or not */
        printf("bench_cuda_ops: no CUDA backend (%s); nothing to measure\n", sdiff_last_error());
        return 0;
    }
    sdiff__cuda *cb = SDIFF__CUDA(be);
    printf("| case | us per call | GB/s (bytes that must move) | GroupNorm's plan |\n|---|---:|---:|---|\n");
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        const bench_case *k = &CASES[i];
        if (!strstr(k->name, filter)) continue;
        const bool gn = k->op == OP_GN || k->op == OP_GN_SILU;
        const int64_t rows = k->b * k->h * k->w;
        sdiff__tensor x, y, g, bt;
        if (k->op == OP_LN) {
            x = make(be, 2, rows, k->c, 1, 1);
            y = make(be, 2, rows, k->c, 1, 1);
        } else {
            x = make(be, 4, k->b, k->h, k->w, k->c);
            y = make(be, 4, k->b, k->h, k->w, k->c);
        }
        g = make(be, 1, k->c, 1, 1, 1);
        bt = k->op == OP_ADD_BC ? make(be, 2, k->b, k->c, 1, 1) : make(be, 1, k->c, 1, 1, 1);
        const double bytes = 2.0 * (double)(sdiff__numel(&x) + sdiff__numel(&y));
        char how[96] = "";
        if (gn) gn_plan(be, k, &x, how, sizeof how);
        if (profile) {
            run_op(be, k, &y, &x, &g, &bt);
            sdiff__cuda_sync(be);
            profiler(true);
            run_op(be, k, &y, &x, &g, &bt);
            sdiff__cuda_sync(be);
            profiler(false);
        } else {
            const double s = time_op(be, k, &y, &x, &g, &bt);
            if (s <= 0) { fprintf(stderr, "bench_cuda_ops: %s failed: %s\n", k->name, sdiff_last_error()); return 1; }
            printf("| %s | %.2f | %.0f | %s |\n", k->name, s * 1e6, bytes / s / 1e9, how);
            if (gn) {
                cb->gn_no_regs = true;
                gn_plan(be, k, &x, how, sizeof how);
                const double sn = time_op(be, k, &y, &x, &g, &bt);
                printf("| %s, no registers kernel | %.2f | %.0f | %s |\n", k->name, sn * 1e6, sn > 0 ? bytes / sn / 1e9 : 0,
                       how);
                cb->gn_no_regs = sweep; /* the sweep forces cluster sizes */
            }
            for (int cs = 1; gn && sweep && cs <= SDIFF__CUDA_GN_CLUSTER_MAX; cs++) {
                int saved[9];
                memcpy(saved, cb->gn_clusters, sizeof saved);
                for (int j = 1; j <= SDIFF__CUDA_GN_CLUSTER_MAX; j++)
                    if (j != cs) cb->gn_clusters[j] = 1;
                gn_plan(be, k, &x, how, sizeof how);
                const double sc = time_op(be, k, &y, &x, &g, &bt);
                printf("| %s, forced | %.2f | %.0f | %s |\n", k->name, sc * 1e6, sc > 0 ? bytes / sc / 1e9 : 0, how);
                memcpy(cb->gn_clusters, saved, sizeof saved);
            }
            cb->gn_no_regs = false;
        }
        if (be->status != SDIFF_OK) { fprintf(stderr, "bench_cuda_ops: %s failed: %s\n", k->name, sdiff_last_error()); return 1; }
        be->free(be, x.data); be->free(be, y.data); be->free(be, g.data); be->free(be, bt.data);
    }
    be->destroy(be);
    return 0;
}
