/* test_cpu_ops.c - the CPU backend's ops against naive double-precision
   references, on fresh random inputs with sizes that are not multiples of
   any tile (M = 77, N = 37, K = 13, ...), for every instruction set the
   machine supports and for 1 and several threads. Also: column views,
   aliasing, shape errors (sticky status), the thread pool. */

/* --- helpers ------------------------------------------------------------ */
static sdiff__tensor tc_tensor(sdiff__backend *be, int nd, const int64_t *ne) {
    sdiff__tensor t;
    memset(&t, 0, sizeof t);
    t.dtype = SDIFF__F32;
    t.nd = nd;
    for (int i = 0; i < nd; i++) t.ne[i] = ne[i];
    t.row_stride = ne[nd - 1];
    t.data = be->alloc(be, (size_t)sdiff__numel(&t) * 4);
    return t;
}
#define TC_T(be, ...) tc_tensor((be), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (int64_t[]){__VA_ARGS__})
static float *tc_f(const sdiff__tensor *t) { return (float *)t->data; }
static sdiff__tensor tc_rand(sdiff__tensor t, float scale, float offset) {
    for (int64_t i = 0; i < sdiff__numel(&t); i++) tc_f(&t)[i] = test_randf() * scale + offset;
    return t;
}
static float *tc_copy(const sdiff__tensor *t) {
    size_t n = (size_t)sdiff__numel(t) * 4;
    float *p = (float *)malloc(n);
    memcpy(p, t->data, n);
    return p;
}
static double tc_act(double x, sdiff__act act) {
    switch (act) {
    case SDIFF__ACT_SILU: return x / (1.0 + exp(-x));
    case SDIFF__ACT_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case SDIFF__ACT_QUICK_GELU: return x / (1.0 + exp(-1.702 * x));
    default: return x;
    }
}
/* A backend per (threads, instruction set index); returns NULL when the
   machine lacks that instruction set. */
static sdiff__backend *tc_backend(int threads, int isa) {
    if (isa >= SDIFF__GEMM_N_ISAS || !sdiff__gemm_isa_supported(&sdiff__gemm_isas[isa])) return NULL;
    sdiff__backend *be = sdiff__cpu_backend_create(threads, NULL);
    if (be) ((sdiff__cpu *)be)->isa = &sdiff__gemm_isas[isa];
    return be;
}

/* --- thread pool -------------------------------------------------------- */
typedef struct tc_pool_arg { int *hits; int max_thread; int64_t min_chunk; } tc_pool_arg;
static void tc_pool_fn(void *arg, int64_t b, int64_t e, int thread) {
    tc_pool_arg *a = (tc_pool_arg *)arg;
    for (int64_t i = b; i < e; i++) __atomic_fetch_add(&a->hits[i], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&a->hits[1000 + thread], 1, __ATOMIC_RELAXED);
    if (e - b < __atomic_load_n(&a->min_chunk, __ATOMIC_RELAXED)) __atomic_store_n(&a->min_chunk, e - b, __ATOMIC_RELAXED);
}
SDIFF_TEST(cpu_pool) {
    for (int threads = 1; threads <= 4; threads += 3) {
        sdiff__pool *pool = sdiff__pool_create(threads);
        CHECK(pool != NULL);
        if (!pool) continue;
        CHECK(sdiff__pool_threads(pool) == threads);
        static int hits[1100];
        int64_t ns[] = {1, 3, 4, 5, 17, 999};
        for (int rep = 0; rep < 50; rep++)
            for (size_t c = 0; c < sizeof ns / sizeof ns[0]; c++) {
                memset(hits, 0, sizeof hits);
                tc_pool_arg a = {hits, threads, INT64_MAX};
                int64_t grain = 1 + rep % 7;
                sdiff__pool_run(pool, ns[c], grain, tc_pool_fn, &a);
                int ok = 1, calls = 0;
                for (int64_t i = 0; i < ns[c]; i++) ok &= hits[i] == 1;
                for (int t = 0; t < 100; t++) { calls += hits[1000 + t]; if (t >= threads) ok &= hits[1000 + t] == 0; }
                CHECK_MSG(ok && calls >= 1 && calls <= threads, "n=%lld", (long long)ns[c]);
                CHECK(calls == 1 || a.min_chunk >= grain);
            }
        sdiff__pool_destroy(pool);
    }
    sdiff__pool *def = sdiff__pool_create(0);
    CHECK(def && sdiff__pool_threads(def) >= 1);
    sdiff__pool_destroy(def);
}

/* --- linear ------------------------------------------------------------- */
/* y [m, ny] of w [n, k]: ny = n, or n / 2 for GEGLU (y = h * gelu(g) of the layer's two halves). */
static double tc_dot_row(const float *x, const float *w, const float *bias, int64_t j, int64_t k) {
    double s = bias ? bias[j] : 0.0;
    for (int64_t t = 0; t < k; t++) s += (double)x[t] * w[j * k + t];
    return s;
}
static void tc_linear_ref(float *y, const float *x, int64_t ldx, const float *w, const float *bias, sdiff__act act,
                          const float *res, int64_t m, int64_t n, int64_t k) {
    const int64_t ny = act == SDIFF__ACT_GEGLU ? n / 2 : n;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ny; j++) {
            double s = tc_dot_row(x + i * ldx, w, bias, j, k);
            s = act == SDIFF__ACT_GEGLU ? s * tc_act(tc_dot_row(x + i * ldx, w, bias, ny + j, k), SDIFF__ACT_GELU)
                                        : tc_act(s, act);
            y[i * ny + j] = (float)(s + (res ? res[i * ny + j] : 0.0));
        }
}

/* Runs one linear case on be; returns the output (malloc'd) for comparisons. */
static float *tc_linear_case(sdiff__backend *be, int64_t m, int64_t n, int64_t k, int xpad, bool bias_on,
                             sdiff__act act, int res_mode /* 0 none, 1 separate, 2 aliases y */) {
    unsigned long long seed = g_test_rng;
    sdiff__tensor xb = tc_rand(TC_T(be, m, k + xpad), 1, 0);
    sdiff__tensor x = xb;          /* a column view when xpad > 0 */
    x.ne[1] = k;
    const int64_t ny = act == SDIFF__ACT_GEGLU ? n / 2 : n;
    sdiff__tensor w = tc_rand(TC_T(be, n, k), 1, 0), b = tc_rand(TC_T(be, n), 1, 0);
    sdiff__tensor y = tc_rand(TC_T(be, m, ny), 1, 0), r = tc_rand(TC_T(be, m, ny), 1, 0);
    float *want = (float *)malloc((size_t)(m * ny) * 4);
    float *resv = res_mode == 2 ? tc_copy(&y) : tc_copy(&r);
    tc_linear_ref(want, tc_f(&x), k + xpad, tc_f(&w), bias_on ? tc_f(&b) : NULL, act, res_mode ? resv : NULL, m, n, k);
    be->linear(be, &y, &x, &w, bias_on ? &b : NULL, act, res_mode == 1 ? &r : res_mode == 2 ? &y : NULL);
    CHECK(be->status == SDIFF_OK);
    CHECK_REL(tc_f(&y), want, (size_t)(m * ny), 1e-5);
    float *got = tc_copy(&y);
    be->free(be, xb.data); be->free(be, w.data); be->free(be, b.data); be->free(be, y.data); be->free(be, r.data);
    free(want); free(resv);
    g_test_rng = seed + 1;
    return got;
}

SDIFF_TEST(cpu_linear) {
    static const struct { int64_t m, n, k; int xpad; bool bias; sdiff__act act; int res; } cases[] = {
        {77, 37, 13, 0, true, SDIFF__ACT_NONE, 0},  {77, 37, 13, 3, true, SDIFF__ACT_GELU, 1},
        {2, 45, 70, 0, true, SDIFF__ACT_SILU, 0},   {4, 33, 9, 5, false, SDIFF__ACT_NONE, 1},
        {5, 64, 300, 0, true, SDIFF__ACT_QUICK_GELU, 0}, {130, 70, 520, 0, false, SDIFF__ACT_NONE, 2},
        {200, 700, 31, 2, true, SDIFF__ACT_NONE, 1}, {1, 1, 1, 0, true, SDIFF__ACT_NONE, 2},
        {9, 42, 20, 0, true, SDIFF__ACT_GEGLU, 0},  {33, 84, 40, 3, true, SDIFF__ACT_GEGLU, 2}, /* SD's feed-forward */
        {5, 10, 7, 0, false, SDIFF__ACT_GEGLU, 1},
    };
    for (int isa = 0; isa < SDIFF__GEMM_N_ISAS; isa++) {
        sdiff__backend *b1 = tc_backend(1, isa), *b3 = tc_backend(3, isa);
        if (!b1 || !b3) { if (b1) b1->destroy(b1); if (b3) b3->destroy(b3); continue; }
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            unsigned long long seed = g_test_rng;
            float *y1 = tc_linear_case(b1, cases[c].m, cases[c].n, cases[c].k, cases[c].xpad, cases[c].bias,
                                       cases[c].act, cases[c].res);
            g_test_rng = seed;
            float *y3 = tc_linear_case(b3, cases[c].m, cases[c].n, cases[c].k, cases[c].xpad, cases[c].bias,
                                       cases[c].act, cases[c].res);
            CHECK_MSG(!memcmp(y1, y3, (size_t)(cases[c].m * cases[c].n / (cases[c].act == SDIFF__ACT_GEGLU ? 2 : 1)) * 4),
                      "isa %s case %d: 1 vs 3 threads",
                      sdiff__gemm_isas[isa].name, (int)c);
            free(y1); free(y3);
        }
        b1->destroy(b1); b3->destroy(b3);
    }
}

/* --- conv2d ------------------------------------------------------------- */
static void tc_conv_ref(float *y, const float *x, const float *w, const float *bias, const float *res, int64_t bn,
                        int64_t h, int64_t wd, int64_t ci, int64_t co, int64_t kh, int64_t kw, int64_t ho, int64_t wo,
                        int stride, int pad) {
    for (int64_t b = 0; b < bn; b++)
        for (int64_t oy = 0; oy < ho; oy++)
            for (int64_t ox = 0; ox < wo; ox++)
                for (int64_t o = 0; o < co; o++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++) {
                            int64_t iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                            for (int64_t c = 0; c < ci; c++)
                                s += (double)x[((b * h + iy) * wd + ix) * ci + c] * w[((o * kh + ky) * kw + kx) * ci + c];
                        }
                    int64_t yi = ((b * ho + oy) * wo + ox) * co + o;
                    y[yi] = (float)(s + (res ? res[yi] : 0.0));
                }
}

typedef struct tc_conv { int64_t b, h, w, ci, co, k, ho, wo; int stride, pad; bool bias, res; } tc_conv;
static float *tc_conv_case(sdiff__backend *be, const tc_conv *c) {
    sdiff__tensor x = tc_rand(TC_T(be, c->b, c->h, c->w, c->ci), 1, 0);
    sdiff__tensor w = tc_rand(TC_T(be, c->co, c->k, c->k, c->ci), 1, 0), bias = tc_rand(TC_T(be, c->co), 1, 0);
    sdiff__tensor y = TC_T(be, c->b, c->ho, c->wo, c->co), r = tc_rand(TC_T(be, c->b, c->ho, c->wo, c->co), 1, 0);
    int64_t n = sdiff__numel(&y);
    float *want = (float *)malloc((size_t)n * 4);
    tc_conv_ref(want, tc_f(&x), tc_f(&w), c->bias ? tc_f(&bias) : NULL, c->res ? tc_f(&r) : NULL, c->b, c->h, c->w,
                c->ci, c->co, c->k, c->k, c->ho, c->wo, c->stride, c->pad);
    be->conv2d(be, &y, &x, &w, c->bias ? &bias : NULL, c->stride, c->pad, c->res ? &r : NULL);
    CHECK(be->status == SDIFF_OK);
    CHECK_REL(tc_f(&y), want, (size_t)n, 1e-5);
    float *got = tc_copy(&y);
    be->free(be, x.data); be->free(be, w.data); be->free(be, bias.data); be->free(be, y.data); be->free(be, r.data);
    free(want);
    return got;
}

SDIFF_TEST(cpu_conv2d) {
    static const tc_conv cases[] = {
        {2, 7, 5, 3, 10, 3, 7, 5, 1, 1, true, false},    /* 3x3 same, tiny Ci          */
        {1, 9, 8, 6, 13, 3, 5, 4, 2, 1, true, true},     /* 3x3 stride 2, pad 1        */
        {1, 8, 8, 5, 7, 3, 4, 4, 2, 0, true, false},     /* VAE: pad only bottom/right */
        {2, 6, 7, 40, 33, 3, 6, 7, 1, 1, false, true},   /* K = 360 > one K chunk      */
        {2, 5, 3, 37, 19, 1, 5, 3, 1, 0, true, true},    /* 1x1: a plain GEMM          */
        {1, 4, 4, 3, 5, 1, 2, 2, 2, 0, true, false},     /* 1x1 stride 2: im2col path  */
    };
    for (int isa = 0; isa < SDIFF__GEMM_N_ISAS; isa++) {
        sdiff__backend *b1 = tc_backend(1, isa), *b2 = tc_backend(2, isa);
        if (!b1 || !b2) { if (b1) b1->destroy(b1); if (b2) b2->destroy(b2); continue; }
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            unsigned long long seed = g_test_rng;
            float *y1 = tc_conv_case(b1, &cases[c]);
            g_test_rng = seed;
            float *y2 = tc_conv_case(b2, &cases[c]);
            int64_t n = cases[c].b * cases[c].ho * cases[c].wo * cases[c].co;
            CHECK_MSG(!memcmp(y1, y2, (size_t)n * 4), "isa %s case %d: 1 vs 2 threads", sdiff__gemm_isas[isa].name,
                      (int)c);
            free(y1); free(y2);
        }
        b1->destroy(b1); b2->destroy(b2);
    }
}

/* --- attention ---------------------------------------------------------- */
static void tc_attn_ref(float *o, const float *q, int64_t ldq, const float *k, int64_t ldk, const float *v,
                        int64_t ldv, int64_t bn, int64_t lq, int64_t lk, int64_t h, int64_t d, bool causal) {
    double *s = (double *)malloc((size_t)lk * sizeof(double));
    for (int64_t b = 0; b < bn; b++)
        for (int64_t hh = 0; hh < h; hh++)
            for (int64_t i = 0; i < lq; i++) {
                int64_t n = causal ? (i + 1 < lk ? i + 1 : lk) : lk;
                double mx = -INFINITY, sum = 0;
                for (int64_t t = 0; t < n; t++) {
                    double acc = 0;
                    for (int64_t c = 0; c < d; c++)
                        acc += (double)q[(b * lq + i) * ldq + hh * d + c] * k[(b * lk + t) * ldk + hh * d + c];
                    s[t] = acc / sqrt((double)d);
                    if (s[t] > mx) mx = s[t];
                }
                for (int64_t t = 0; t < n; t++) { s[t] = exp(s[t] - mx); sum += s[t]; }
                for (int64_t c = 0; c < d; c++) {
                    double acc = 0;
                    for (int64_t t = 0; t < n; t++) acc += s[t] * v[(b * lk + t) * ldv + hh * d + c];
                    o[(b * lq + i) * h * d + hh * d + c] = (float)(acc / sum);
                }
            }
    free(s);
}

typedef struct tc_attn { int64_t b, lq, lk, h, d; bool causal, packed; float scale; } tc_attn;
static float *tc_attn_case(sdiff__backend *be, const tc_attn *c) {
    int64_t hd = c->h * c->d;
    sdiff__tensor q, k, v, qkv = {0}, kv = {0};
    if (c->packed) {   /* fused QKV: column views into [B, L, 3*H*D] */
        qkv = tc_rand(TC_T(be, c->b, c->lq, 3 * hd), c->scale, 0);
        q = k = v = qkv;
        q.ne[2] = k.ne[2] = v.ne[2] = hd;
        k.data = tc_f(&qkv) + hd;
        v.data = tc_f(&qkv) + 2 * hd;
    } else {           /* q alone, k and v as views of a fused KV buffer */
        q = tc_rand(TC_T(be, c->b, c->lq, hd), c->scale, 0);
        kv = tc_rand(TC_T(be, c->b, c->lk, 2 * hd), c->scale, 0);
        k = v = kv;
        k.ne[2] = v.ne[2] = hd;
        v.data = tc_f(&kv) + hd;
    }
    sdiff__tensor o = TC_T(be, c->b, c->lq, hd);
    float *want = (float *)malloc((size_t)sdiff__numel(&o) * 4);
    tc_attn_ref(want, tc_f(&q), q.row_stride, tc_f(&k), k.row_stride, tc_f(&v), v.row_stride, c->b, c->lq, c->lk, c->h,
                c->d, c->causal);
    be->attention(be, &o, &q, &k, &v, (int)c->h, c->causal);
    CHECK(be->status == SDIFF_OK);
    CHECK_REL(tc_f(&o), want, (size_t)sdiff__numel(&o), 1e-5);
    float *got = tc_copy(&o);
    if (c->packed) be->free(be, qkv.data);
    else { be->free(be, q.data); be->free(be, kv.data); }
    be->free(be, o.data);
    free(want);
    return got;
}

SDIFF_TEST(cpu_attention) {
    static const tc_attn cases[] = {
        {2, 50, 77, 3, 13, false, false, 2.0f},   /* cross-attention, Lk = 77, odd D  */
        {1, 100, 100, 2, 40, true, true, 2.0f},   /* causal, fused QKV views          */
        {1, 61, 300, 1, 64, false, false, 3.0f},  /* large scores                     */
        {1, 450, 450, 1, 160, true, true, 1.0f},  /* causal over two key blocks       */
        {1, 40, 300, 1, 512, false, false, 1.0f}, /* VAE: one wide head, 3 key blocks */
        {2, 5, 3, 5, 7, false, true, 1.0f},       /* tiny                             */
    };
    for (int isa = 0; isa < SDIFF__GEMM_N_ISAS; isa++) {
        sdiff__backend *b1 = tc_backend(1, isa), *b2 = tc_backend(2, isa);
        if (!b1 || !b2) { if (b1) b1->destroy(b1); if (b2) b2->destroy(b2); continue; }
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            tc_attn cs = cases[c];
            if (cs.packed) cs.lk = cs.lq;
            unsigned long long seed = g_test_rng;
            float *o1 = tc_attn_case(b1, &cs);
            g_test_rng = seed;
            float *o2 = tc_attn_case(b2, &cs);
            CHECK_MSG(!memcmp(o1, o2, (size_t)(cs.b * cs.lq * cs.h * cs.d) * 4), "isa %s case %d: 1 vs 2 threads",
                      sdiff__gemm_isas[isa].name, (int)c);
            free(o1); free(o2);
        }
        b1->destroy(b1); b2->destroy(b2);
    }
}

/* --- arena ---------------------------------------------------------------- */
/* A backend with a growable range (as the CUDA one has), emulated in host memory: 4 MiB of
   capacity, grown in 64 KiB steps. */
static struct { char *mem; size_t mapped; int grows; } g_range;
static void *tr_reserve(sdiff__backend *be, size_t *capacity) {
    SDIFF__UNUSED(be);
    *capacity = (size_t)4 << 20;
    g_range.mem = (char *)malloc(*capacity);
    g_range.mapped = 0;
    g_range.grows = 0;
    return g_range.mem;
}
static bool tr_grow(sdiff__backend *be, void *base, size_t *size) {
    SDIFF__UNUSED(be);
    size_t want = (*size + 65535) / 65536 * 65536;
    if (base != g_range.mem || want > ((size_t)4 << 20)) return false;
    if (want > g_range.mapped) { g_range.mapped = want; g_range.grows++; }
    *size = g_range.mapped;
    return true;
}
static void tr_free(sdiff__backend *be, void *base) {
    SDIFF__UNUSED(be);
    free(base);
    g_range.mem = NULL;
}
SDIFF_TEST(arena_range) {
    sdiff__backend *be = sdiff__cpu_backend_create(1, NULL);
    be->range_reserve = tr_reserve;
    be->range_grow = tr_grow;
    be->range_free = tr_free;
    sdiff__arena a;
    sdiff__arena_init(&a, be, (size_t)1 << 20);
    const sdiff__arena_mark start = sdiff__arena_mark_get(&a);
    sdiff__tensor *t1 = sdiff__new1(&a, SDIFF__F32, 1000), *t2 = sdiff__new1(&a, SDIFF__F32, 300000);
    CHECK(a.ranged);
    CHECK(t1->data == g_range.mem);
    CHECK((char *)t2->data == g_range.mem + 4096);                 /* 4000 bytes, aligned to 256 */
    CHECK(g_range.mapped == (4096 + 1200128 + 65535) / 65536 * 65536); /* grown to what is used */
    sdiff__arena_release(&a, start);
    const int grows = g_range.grows;
    sdiff__tensor *t3 = sdiff__new1(&a, SDIFF__F32, 300000);
    CHECK(t3->data == g_range.mem && g_range.grows == grows);      /* reused in place, no growth */
    CHECK(a.peak == 4096 + 1200128);
    sdiff__tensor *big = sdiff__new1(&a, SDIFF__F32, (int64_t)1 << 20); /* 4 MiB more: over capacity */
    CHECK(big->data == NULL && be->status == SDIFF_ERR_OUT_OF_MEMORY);
    CHECK(strstr(sdiff__g_error, "out of") != NULL);
    sdiff__arena_free(&a);
    CHECK(g_range.mem == NULL);
    be->destroy(be);
}

/* --- normalisation ------------------------------------------------------ */
SDIFF_TEST(cpu_group_norm) {
    for (int threads = 1; threads <= 3; threads += 2) {
        sdiff__backend *be = sdiff__cpu_backend_create(threads, NULL);
        for (int variant = 0; variant < 3; variant++) {
            int64_t bn = 2, h = 3, w = 5, c = 12, groups = variant == 2 ? 1 : 4;
            bool silu = variant == 1, affine = variant != 2;
            float eps = variant == 1 ? 1e-6f : 1e-5f;
            /* an offset input: the variance must not cancel */
            sdiff__tensor x = tc_rand(TC_T(be, bn, h, w, c), 1, 3.0f), y = TC_T(be, bn, h, w, c);
            sdiff__tensor g = tc_rand(TC_T(be, c), 1, 1), b = tc_rand(TC_T(be, c), 1, 0);
            float *want = (float *)malloc((size_t)sdiff__numel(&x) * 4);
            int64_t p = h * w, cg = c / groups;
            for (int64_t bi = 0; bi < bn; bi++)
                for (int64_t gi = 0; gi < groups; gi++) {
                    double s = 0, s2 = 0, n = (double)(p * cg);
                    for (int64_t i = 0; i < p; i++)
                        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) s += tc_f(&x)[(bi * p + i) * c + ch];
                    double mean = s / n;
                    for (int64_t i = 0; i < p; i++)
                        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) {
                            double dv = tc_f(&x)[(bi * p + i) * c + ch] - mean;
                            s2 += dv * dv;
                        }
                    double rstd = 1.0 / sqrt(s2 / n + eps);
                    for (int64_t i = 0; i < p; i++)
                        for (int64_t ch = gi * cg; ch < (gi + 1) * cg; ch++) {
                            int64_t idx = (bi * p + i) * c + ch;
                            double v = (tc_f(&x)[idx] - mean) * rstd;
                            if (affine) v = v * tc_f(&g)[ch] + tc_f(&b)[ch];
                            want[idx] = (float)(silu ? tc_act(v, SDIFF__ACT_SILU) : v);
                        }
                }
            be->group_norm(be, &y, &x, affine ? &g : NULL, affine ? &b : NULL, (int)groups, eps, silu);
            CHECK(be->status == SDIFF_OK);
            CHECK_REL(tc_f(&y), want, (size_t)sdiff__numel(&x), 1e-5);
            be->group_norm(be, &x, &x, affine ? &g : NULL, affine ? &b : NULL, (int)groups, eps, silu);  /* in place */
            CHECK_REL(tc_f(&x), want, (size_t)sdiff__numel(&x), 1e-5);
            free(want);
            be->free(be, x.data); be->free(be, y.data); be->free(be, g.data); be->free(be, b.data);
        }
        be->destroy(be);
    }
}

SDIFF_TEST(cpu_layer_norm) {
    sdiff__backend *be = sdiff__cpu_backend_create(2, NULL);
    for (int affine = 0; affine < 2; affine++) {
        int64_t rows = 7, c = 37;
        sdiff__tensor x = tc_rand(TC_T(be, 1, rows, c), 2, 5.0f), y = TC_T(be, 1, rows, c);
        sdiff__tensor g = tc_rand(TC_T(be, c), 1, 1), b = tc_rand(TC_T(be, c), 1, 0);
        float want[7 * 37];
        for (int64_t r = 0; r < rows; r++) {
            double s = 0, s2 = 0;
            for (int64_t i = 0; i < c; i++) s += tc_f(&x)[r * c + i];
            double mean = s / c;
            for (int64_t i = 0; i < c; i++) s2 += (tc_f(&x)[r * c + i] - mean) * (tc_f(&x)[r * c + i] - mean);
            double rstd = 1.0 / sqrt(s2 / c + 1e-5);
            for (int64_t i = 0; i < c; i++) {
                double v = (tc_f(&x)[r * c + i] - mean) * rstd;
                want[r * c + i] = (float)(affine ? v * tc_f(&g)[i] + tc_f(&b)[i] : v);
            }
        }
        be->layer_norm(be, &y, &x, affine ? &g : NULL, affine ? &b : NULL, 1e-5f);
        CHECK(be->status == SDIFF_OK);
        CHECK_REL(tc_f(&y), want, (size_t)(rows * c), 1e-5);
        be->free(be, x.data); be->free(be, y.data); be->free(be, g.data); be->free(be, b.data);
    }
    be->destroy(be);
}

/* --- elementwise -------------------------------------------------------- */
SDIFF_TEST(cpu_elementwise) {
    sdiff__backend *be = sdiff__cpu_backend_create(2, NULL);
    /* add: full, [C], [B, C], and y aliasing a */
    for (int mode = 0; mode < 3; mode++) {
        sdiff__tensor a = tc_rand(TC_T(be, 3, 5, 7), 1, 0), y = TC_T(be, 3, 5, 7);
        sdiff__tensor b = mode == 0 ? tc_rand(TC_T(be, 3, 5, 7), 1, 0) : mode == 1 ? tc_rand(TC_T(be, 7), 1, 0)
                                                                             : tc_rand(TC_T(be, 3, 7), 1, 0);
        float want[105];
        for (int i = 0; i < 105; i++)
            want[i] = tc_f(&a)[i] + tc_f(&b)[mode == 0 ? i : mode == 1 ? i % 7 : (i / 35) * 7 + i % 7];
        be->add(be, &y, &a, &b);
        CHECK_REL(tc_f(&y), want, 105, 1e-6);
        be->add(be, &a, &a, &b);
        CHECK_REL(tc_f(&a), want, 105, 1e-6);
        be->free(be, a.data); be->free(be, b.data); be->free(be, y.data);
    }
    /* activate, out of place and in place, with values spanning exp's range */
    for (int act = 0; act <= SDIFF__ACT_QUICK_GELU; act++) {
        sdiff__tensor x = tc_rand(TC_T(be, 1000), 30, 0), y = TC_T(be, 1000);
        float want[1000];
        for (int i = 0; i < 1000; i++) want[i] = (float)tc_act(tc_f(&x)[i], (sdiff__act)act);
        be->activate(be, &y, &x, (sdiff__act)act);
        CHECK_REL(tc_f(&y), want, 1000, 1e-6);
        be->activate(be, &x, &x, (sdiff__act)act);
        CHECK_REL(tc_f(&x), want, 1000, 1e-6);
        be->free(be, x.data); be->free(be, y.data);
    }
    /* upsample: exactly 2x, and to other sizes (PyTorch's nearest) */
    static const int64_t ups[][2] = {{6, 8}, {5, 9}, {3, 3}, {2, 1}};
    for (int u = 0; u < 4; u++) {
        int64_t ho = ups[u][0], wo = ups[u][1];
        sdiff__tensor x = tc_rand(TC_T(be, 2, 3, 4, 5), 1, 0), y = TC_T(be, 2, ho, wo, 5);
        be->upsample(be, &y, &x);
        int ok = be->status == SDIFF_OK;
        for (int b = 0; b < 2; b++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++) {
                    int64_t iy = (int64_t)floorf((float)oy * (3.0f / (float)ho)), ix = (int64_t)floorf((float)ox * (4.0f / (float)wo));
                    iy = iy > 2 ? 2 : iy; ix = ix > 3 ? 3 : ix;
                    for (int c = 0; c < 5; c++)
                        ok &= tc_f(&y)[((b * ho + oy) * wo + ox) * 5 + c] == tc_f(&x)[((b * 3 + iy) * 4 + ix) * 5 + c];
                }
        CHECK_MSG(ok, "upsample to %lldx%lld", (long long)ho, (long long)wo);
        be->free(be, x.data); be->free(be, y.data);
    }
    /* concat */
    {
        sdiff__tensor a = tc_rand(TC_T(be, 2, 3, 4), 1, 0), b = tc_rand(TC_T(be, 2, 3, 5), 1, 0), y = TC_T(be, 2, 3, 9);
        be->concat(be, &y, &a, &b);
        int ok = 1;
        for (int r = 0; r < 6; r++)
            for (int c = 0; c < 9; c++) ok &= tc_f(&y)[r * 9 + c] == (c < 4 ? tc_f(&a)[r * 4 + c] : tc_f(&b)[r * 5 + c - 4]);
        CHECK(ok);
        be->free(be, a.data); be->free(be, b.data); be->free(be, y.data);
    }
    /* lincomb: five terms in their order, y one of them, a clamp; bad arguments */
    {
        sdiff__tensor x[5], y = TC_T(be, 3, 37);
        const sdiff__tensor *xs[5];
        const float c[5] = {0.5f, -1.25f, 2.0f, 1e-3f, -0.75f};
        for (int k = 0; k < 5; k++) { x[k] = tc_rand(TC_T(be, 3, 37), 2, 0); xs[k] = &x[k]; }
        float want[111], want_clamped[111];
        for (int i = 0; i < 111; i++) {
            double v = 0;
            for (int k = 0; k < 5; k++) v += (double)c[k] * tc_f(&x[k])[i];
            want[i] = (float)v;
            want_clamped[i] = (float)(v < -1 ? -1 : v > 1 ? 1 : v);
        }
        be->lincomb(be, &y, 5, xs, c, 0);
        CHECK_REL(tc_f(&y), want, 111, 1e-6);
        be->lincomb(be, &x[2], 5, xs, c, 1.0f);                     /* in place, clamped */
        CHECK_REL(tc_f(&x[2]), want_clamped, 111, 1e-6);
        CHECK(be->status == SDIFF_OK);
        sdiff__tensor small = TC_T(be, 3, 36);
        be->lincomb(be, &small, 2, xs, c, 0);                       /* sizes differ */
        CHECK(be->status == SDIFF_ERR_INVALID_ARG && strstr(sdiff__g_error, "lincomb") != NULL);
        be->status = SDIFF_OK;
        be->lincomb(be, &y, 6, xs, c, 0);                           /* too many terms */
        CHECK(be->status == SDIFF_ERR_INVALID_ARG);
        be->status = SDIFF_OK;
        be->lincomb(be, &y, 1, xs, c, NAN);                         /* a NaN clamp */
        CHECK(be->status == SDIFF_ERR_INVALID_ARG);
        be->status = SDIFF_OK;
        for (int k = 0; k < 5; k++) be->free(be, x[k].data);
        be->free(be, y.data); be->free(be, small.data);
    }
    /* embed, and an id past the table */
    {
        sdiff__tensor t = tc_rand(TC_T(be, 10, 6), 1, 0), y = TC_T(be, 4, 6);
        int32_t ids[4] = {3, 0, 9, 3};
        be->embed(be, &y, &t, ids, 4);
        int ok = be->status == SDIFF_OK;
        for (int i = 0; i < 4; i++) ok &= !memcmp(tc_f(&y) + i * 6, tc_f(&t) + ids[i] * 6, 24);
        CHECK(ok);
        ids[2] = 10;
        be->embed(be, &y, &t, ids, 4);
        CHECK(be->status == SDIFF_ERR_INVALID_ARG);
        be->status = SDIFF_OK;
        ids[2] = -1;
        be->embed(be, &y, &t, ids, 4);
        CHECK(be->status == SDIFF_ERR_INVALID_ARG);
        be->status = SDIFF_OK;
        be->free(be, t.data); be->free(be, y.data);
    }
    be->destroy(be);
}

/* --- upload / download / alloc ------------------------------------------ */
SDIFF_TEST(cpu_memory) {
    sdiff__backend *be = sdiff__cpu_backend_create(2, NULL);
    sdiff__tensor t = TC_T(be, 3, 5);
    CHECK(((uintptr_t)t.data & 63) == 0);
    float src[15], back[15];
    uint16_t h[15], bf[15];
    for (int i = 0; i < 15; i++) {
        src[i] = test_randf() * 100;
        h[i] = sdiff__f32_to_f16(src[i]);
        bf[i] = sdiff__f32_to_bf16(src[i]);
    }
    be->upload(be, &t, src, SDIFF__F32);
    be->download(be, &t, back);
    CHECK(!memcmp(src, back, sizeof src));
    be->upload(be, &t, h, SDIFF__F16);
    be->download(be, &t, back);
    int ok = 1;
    for (int i = 0; i < 15; i++) ok &= back[i] == sdiff__f16_to_f32(h[i]);
    be->upload(be, &t, bf, SDIFF__BF16);
    be->download(be, &t, back);
    for (int i = 0; i < 15; i++) ok &= back[i] == sdiff__bf16_to_f32(bf[i]);
    CHECK(ok && be->status == SDIFF_OK);
    be->free(be, t.data);
    be->destroy(be);
}

/* --- shape errors: sticky status, no writes ----------------------------- */
SDIFF_TEST(cpu_shape_errors) {
    sdiff__backend *be = sdiff__cpu_backend_create(2, NULL);
    sdiff__tensor x = tc_rand(TC_T(be, 4, 6), 1, 0), w = tc_rand(TC_T(be, 5, 7), 1, 0), y = TC_T(be, 4, 5);
    be->linear(be, &y, &x, &w, NULL, SDIFF__ACT_NONE, NULL);                 /* K 6 vs 7 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    CHECK(strstr(sdiff__g_error, "linear") != NULL);
    be->status = SDIFF_OK;
    sdiff__tensor w56 = tc_rand(TC_T(be, 5, 6), 1, 0), w106 = tc_rand(TC_T(be, 10, 6), 1, 0);
    be->linear(be, &y, &x, &w56, NULL, SDIFF__ACT_GEGLU, NULL);              /* GEGLU's w: 5 rows */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    be->linear(be, &y, &x, &w56, NULL, (sdiff__act)99, NULL);                /* no such activation */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG && strstr(sdiff__g_error, "activation") != NULL);
    be->status = SDIFF_OK;
    be->linear(be, &y, &x, &w106, NULL, SDIFF__ACT_NONE, NULL);              /* y [4, 5] for 10 outputs */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    be->linear(be, &y, &x, &w106, NULL, SDIFF__ACT_GEGLU, NULL);             /* GEGLU: y [4, 5] is right */
    CHECK(be->status == SDIFF_OK);
    be->free(be, w56.data); be->free(be, w106.data);
    be->linear(be, &y, &x, &w, NULL, SDIFF__ACT_NONE, NULL);                 /* failing again */
    /* sticky: a valid op after a failure does nothing */
    sdiff__tensor a = tc_rand(TC_T(be, 4, 5), 1, 0);
    memset(y.data, 0, 4 * 5 * 4);
    be->add(be, &y, &a, &a);
    CHECK(tc_f(&y)[0] == 0.0f);
    be->status = SDIFF_OK;

    sdiff__tensor cx = tc_rand(TC_T(be, 1, 4, 4, 3), 1, 0), cw = tc_rand(TC_T(be, 2, 3, 3, 4), 1, 0);
    sdiff__tensor cy = TC_T(be, 1, 4, 4, 2);
    be->conv2d(be, &cy, &cx, &cw, NULL, 1, 1, NULL);                         /* Ci 3 vs 4 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    sdiff__tensor cw3 = tc_rand(TC_T(be, 2, 3, 3, 3), 1, 0), cbig = TC_T(be, 1, 9, 9, 2);
    be->conv2d(be, &cbig, &cx, &cw3, NULL, 1, 1, NULL);                      /* y too large */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;

    sdiff__tensor q = tc_rand(TC_T(be, 1, 3, 10), 1, 0), o = TC_T(be, 1, 3, 10);
    be->attention(be, &o, &q, &q, &q, 3, false);                              /* 10 % 3 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    be->group_norm(be, &o, &q, NULL, NULL, 3, 1e-5f, false);                  /* 10 % 3 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    sdiff__tensor b7 = tc_rand(TC_T(be, 7), 1, 0);
    be->add(be, &y, &a, &b7);                                                 /* [7] vs C 5 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    sdiff__tensor view = x;                                                   /* a view where none is allowed */
    view.ne[1] = 5;
    be->add(be, &y, &view, &a);
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    be->upsample(be, &cy, &cw);                                               /* channels 2 vs 4 */
    CHECK(be->status == SDIFF_ERR_INVALID_ARG);
    be->status = SDIFF_OK;
    be->add(be, &y, &a, &a);
    CHECK(be->status == SDIFF_OK && tc_f(&y)[0] == 2 * tc_f(&a)[0]);
    void *ptrs[] = {x.data, w.data, y.data, a.data, cx.data, cw.data, cy.data, cw3.data, cbig.data, q.data, o.data, b7.data};
    for (size_t i = 0; i < sizeof ptrs / sizeof ptrs[0]; i++) be->free(be, ptrs[i]);
    be->destroy(be);
}
