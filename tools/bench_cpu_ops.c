/* bench_cpu_ops.c - times the CPU backend's ops at Stable Diffusion 1.5
   shapes (512x512, batch 2 = CFG) and prints a table: op, shape, ms, GFLOP/s
   (or GB/s for memory-bound ops). The median of several runs after a warm-up.

   Build:  cc -O2 -std=c11 tools/bench_cpu_ops.c -o bench_cpu_ops -lpthread -lm
   Run:    ./bench_cpu_ops [threads (0 = all cores)] [runs] [filter]   */
#define SDIFF_IMPLEMENTATION
#include "../sdiff.h"
#include <time.h>

static double bench_now(void) {
    struct timespec ts;   /* C11's timespec_get: no POSIX feature macros needed */
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static sdiff__tensor bench_tensor(sdiff__backend *be, int nd, int64_t n0, int64_t n1, int64_t n2, int64_t n3) {
    sdiff__tensor t;
    int64_t ne[4] = {n0, n1, n2, n3};
    memset(&t, 0, sizeof t);
    t.dtype = SDIFF__F32;
    t.nd = nd;
    for (int i = 0; i < nd; i++) t.ne[i] = ne[i];
    t.row_stride = ne[nd - 1];
    size_t n = (size_t)sdiff__numel(&t);
    t.data = be->alloc(be, n * 4);
    if (!t.data) { fprintf(stderr, "out of memory\n"); exit(1); }
    unsigned s = 12345u + (unsigned)n;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        ((float *)t.data)[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    }
    return t;
}

typedef enum { B_LINEAR, B_CONV, B_ATTN, B_GN, B_LN, B_ADD } bench_kind;
typedef struct bench_case {
    bench_kind kind;
    const char *name;
    int64_t a, b, c, d, e;   /* linear: M N K; conv: B H W Ci Co (3x3 or 1x1 by e<0); attn: B H Lq Lk D */
    int stride;              /* conv: stride; attention: causal */
} bench_case;

static int bench_runs = 5;

/* Runs fn-like op through the switch below and reports the median. */
static void bench_one(sdiff__backend *be, const bench_case *bc) {
    sdiff__tensor t[6];
    int nt = 0;
    double flops = 0, bytes = 0;
    char shape[96];
    switch (bc->kind) {
    case B_LINEAR:
        t[nt++] = bench_tensor(be, 2, bc->a, bc->c, 1, 1);
        t[nt++] = bench_tensor(be, 2, bc->b, bc->c, 1, 1);
        t[nt++] = bench_tensor(be, 1, bc->b, 1, 1, 1);
        t[nt++] = bench_tensor(be, 2, bc->a, bc->b, 1, 1);
        flops = 2.0 * (double)bc->a * (double)bc->b * (double)bc->c;
        snprintf(shape, sizeof shape, "M=%lld N=%lld K=%lld", (long long)bc->a, (long long)bc->b, (long long)bc->c);
        break;
    case B_CONV: {
        int64_t k = bc->d > 0 ? 3 : 1, ci = bc->d > 0 ? bc->d : -bc->d, ho = bc->b / bc->stride, wo = bc->c / bc->stride;
        t[nt++] = bench_tensor(be, 4, bc->a, bc->b, bc->c, ci);
        t[nt++] = bench_tensor(be, 4, bc->e, k, k, ci);
        t[nt++] = bench_tensor(be, 1, bc->e, 1, 1, 1);
        t[nt++] = bench_tensor(be, 4, bc->a, ho, wo, bc->e);
        flops = 2.0 * (double)(bc->a * ho * wo) * (double)bc->e * (double)(k * k * ci);
        snprintf(shape, sizeof shape, "%lldx%lldx%lldx%lld k%lld s%d -> %lld", (long long)bc->a, (long long)bc->b,
                 (long long)bc->c, (long long)ci, (long long)k, bc->stride, (long long)bc->e);
        break;
    }
    case B_ATTN: {
        int64_t hd = bc->b * bc->e;
        t[nt++] = bench_tensor(be, 3, bc->a, bc->c, hd, 1);
        t[nt++] = bench_tensor(be, 3, bc->a, bc->d, hd, 1);
        t[nt++] = bench_tensor(be, 3, bc->a, bc->d, hd, 1);
        t[nt++] = bench_tensor(be, 3, bc->a, bc->c, hd, 1);
        flops = 4.0 * (double)(bc->a * bc->b) * (double)bc->c * (double)bc->d * (double)bc->e;
        if (bc->stride) flops /= 2;
        snprintf(shape, sizeof shape, "B=%lld H=%lld Lq=%lld Lk=%lld D=%lld%s", (long long)bc->a, (long long)bc->b,
                 (long long)bc->c, (long long)bc->d, (long long)bc->e, bc->stride ? " causal" : "");
        break;
    }
    case B_GN: case B_LN: case B_ADD: {
        int64_t cin = bc->b;
        t[nt++] = bench_tensor(be, 2, bc->a, cin, 1, 1);
        t[nt++] = bench_tensor(be, 2, bc->a, bc->b, 1, 1);
        t[nt++] = bench_tensor(be, 1, bc->b, 1, 1, 1);
        t[nt++] = bench_tensor(be, 1, bc->b, 1, 1, 1);
        bytes = 4.0 * (double)bc->a * (double)(cin + bc->b + (bc->kind == B_ADD ? bc->b : 0));
        snprintf(shape, sizeof shape, "%lld x %lld", (long long)bc->a, (long long)bc->b);
        break;
    }
    }
    double times[64];
    int runs = bench_runs < 64 ? bench_runs : 64;
    for (int r = -1; r < runs; r++) {
        double t0 = bench_now();
        switch (bc->kind) {
        case B_LINEAR: be->linear(be, &t[3], &t[0], &t[1], &t[2], SDIFF__ACT_NONE, NULL); break;
        case B_CONV: be->conv2d(be, &t[3], &t[0], &t[1], &t[2], bc->stride, t[1].ne[1] / 2, NULL); break;
        case B_ATTN: be->attention(be, &t[3], &t[0], &t[1], &t[2], (int)bc->b, bc->stride != 0); break;
        case B_GN: {
            sdiff__tensor x = t[0], y = t[1];   /* [2, HW, C] */
            x.nd = y.nd = 3; x.ne[0] = y.ne[0] = 2; x.ne[1] = y.ne[1] = bc->a / 2; x.ne[2] = y.ne[2] = bc->b;
            be->group_norm(be, &y, &x, &t[2], &t[3], 32, 1e-5f, true);
            break;
        }
        case B_LN: be->layer_norm(be, &t[1], &t[0], &t[2], &t[3], 1e-5f); break;
        case B_ADD: be->add(be, &t[1], &t[0], &t[1]); break;
        }
        if (r >= 0) times[r] = bench_now() - t0;
    }
    if (be->status != SDIFF_OK) { printf("%-10s %-36s failed: %s\n", bc->name, shape, sdiff__g_error); be->status = SDIFF_OK; }
    for (int i = 1; i < runs; i++)   /* insertion sort: median */
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) { double x = times[j]; times[j] = times[j - 1]; times[j - 1] = x; }
    double ms = times[runs / 2] * 1e3;
    if (flops > 0) printf("%-10s %-38s %9.2f %9.1f GFLOP/s\n", bc->name, shape, ms, flops / ms * 1e-6);
    else printf("%-10s %-38s %9.2f %9.1f GB/s\n", bc->name, shape, ms, bytes / ms * 1e-6);
    fflush(stdout);
    for (int i = 0; i < nt; i++) be->free(be, t[i].data);
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 0;
    if (argc > 2) bench_runs = atoi(argv[2]) > 0 ? atoi(argv[2]) : 5;
    const char *filter = argc > 3 ? argv[3] : NULL;
    sdiff__logger log = {SDIFF_LOG_INFO, NULL, NULL};
    sdiff__backend *be = sdiff__cpu_backend_create(threads, &log);
    if (!be) { fprintf(stderr, "no backend\n"); return 1; }
    static const bench_case cases[] = {
        /* the UNet's convolutions, batch 2 (CFG) */
        {B_CONV, "conv3x3", 2, 64, 64, 320, 320, 1},
        {B_CONV, "conv3x3", 2, 32, 32, 640, 640, 1},
        {B_CONV, "conv3x3", 2, 16, 16, 1280, 1280, 1},
        {B_CONV, "conv3x3", 2, 8, 8, 1280, 1280, 1},
        {B_CONV, "conv3x3", 2, 64, 64, 320, 320, 2},
        {B_CONV, "conv1x1", 2, 64, 64, -320, 320, 1},
        /* GEMMs: a 3x3 conv's im2col shape, projections, feed-forward, CLIP, time MLP */
        {B_LINEAR, "gemm", 4096, 320, 2880, 0, 0, 0},
        {B_LINEAR, "linear", 8192, 320, 320, 0, 0, 0},
        {B_LINEAR, "linear", 8192, 2560, 320, 0, 0, 0},
        {B_LINEAR, "linear", 8192, 320, 1280, 0, 0, 0},
        {B_LINEAR, "linear", 154, 768, 768, 0, 0, 0},
        {B_LINEAR, "linear", 154, 320, 768, 0, 0, 0},
        {B_LINEAR, "linear", 2, 1280, 1280, 0, 0, 0},
        /* attention: self at 64x64, cross to 77 text tokens, the VAE's single head */
        {B_ATTN, "attention", 2, 8, 4096, 4096, 40, 0},
        {B_ATTN, "attention", 2, 8, 4096, 77, 40, 0},
        {B_ATTN, "attention", 2, 8, 1024, 1024, 80, 0},
        {B_ATTN, "attention", 1, 1, 4096, 4096, 512, 0},
        {B_ATTN, "attention", 2, 12, 77, 77, 64, 1},
        /* memory-bound ops */
        {B_GN, "gn+silu", 8192, 320, 0, 0, 0, 0},
        {B_LN, "layernorm", 8192, 320, 0, 0, 0, 0},
        {B_ADD, "add", 8192, 320, 0, 0, 0, 0},
    };
    printf("%-10s %-38s %9s %17s\n", "op", "shape", "ms", "rate");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!filter || strstr(cases[i].name, filter)) bench_one(be, &cases[i]);
    be->destroy(be);
    return 0;
}
