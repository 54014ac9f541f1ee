/* >>cpu ====================================================================
   CPU backend: thread pool, GEMM, ops

   Everything is fp32, activations NHWC / [B, L, C] as everywhere else.
   The heavy ops (linear, conv2d, attention) share one packed, cache-blocked
   SGEMM:  C[M,N] = A[M,K] . B[N,K]^T  with B the weights in their stored
   layout. A micro-kernel keeps an MR x NR tile of C in registers; A is packed
   into MR-row panels ([k][MR]) and B into NR-column panels ([k][NR]), so the
   kernel's inner loop is NR/VL vector loads of B, MR broadcasts of A and
   MR*NR/VL FMAs. The kernel is written once with GCC/Clang vector extensions
   and compiled for AVX-512, AVX2+FMA and a portable target; the best one the
   CPU supports is picked at run time, so no -march flag is needed.
     Blocking: KC = 256 (an A micro-panel, KC*MR floats, stays in L1 while
     the B micro-panels stream from L2), MC = 96 rows by NC = 320 columns per
     task (B block KC*NC*4 = 320 KB lives in L2 next to the packed A block and
     the task's accumulator tile).
     Threads: B is packed once per call by all threads, then (MC x NC) tasks
     are taken from an atomic counter. Small problems shrink NC and MC so
     that even M = 77 (CLIP) gives every thread work; M <= 4 (timestep MLP)
     skips packing and runs as dot products over N.
   conv2d is an implicit GEMM: rows are output pixels, K = KH*KW*Ci in the
   weight's [Co,KH,KW,Ci] order, and the A packer gathers the input patches
   (zeros outside x) straight into the panel layout, so no im2col matrix is
   ever materialised. 1x1 stride-1 convolutions are plain GEMMs.
   attention is flash-style: per (batch, head, 96-query block) the scores of
   one key block go through the same micro-kernel, an online softmax (running
   max and sum) turns them into probabilities, and P.V is accumulated with
   the micro-kernel again. K and V are packed once per call, shared by all
   query blocks. exp() is vectorised (the softmax needs Lq*Lk of them).
   ========================================================================= */

/* --- thread pool -------------------------------------------------------- */
/* Workers spin for a short while after a job (ops come back to back, and a
   futex wake-up costs more than a small op), then sleep on a condition
   variable, so an idle pool uses no CPU. */
#define SDIFF__POOL_SPIN 4096

struct sdiff__pool;
typedef struct sdiff__pool_worker {
    struct sdiff__pool *pool;
    int index;
} sdiff__pool_worker;

struct sdiff__pool {
    int n_threads;                 /* including the calling thread           */
    pthread_t *threads;            /* n_threads - 1 workers                  */
    sdiff__pool_worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    /* the current job; written under mu, read by workers under mu */
    sdiff__pool_fn fn;
    void *arg;
    int64_t n, n_chunks;
    uint64_t gen;                  /* job counter, also read atomically      */
    int pending;                   /* chunks not finished yet (atomic)       */
    int stop;
};

SDIFF__PRIVATE void sdiff__pool_pause(void) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
    __builtin_ia32_pause();
#endif
}

SDIFF__PRIVATE void sdiff__pool_chunk(int64_t n, int64_t n_chunks, int64_t i, int64_t *begin, int64_t *end) {
    *begin = n * i / n_chunks;
    *end = n * (i + 1) / n_chunks;
}

SDIFF__PRIVATE void *sdiff__pool_main(void *p) {
    sdiff__pool_worker *w = (sdiff__pool_worker *)p;
    sdiff__pool *pool = w->pool;
    uint64_t seen = 0;
    for (;;) {
        for (int i = 0; i < SDIFF__POOL_SPIN && __atomic_load_n(&pool->gen, __ATOMIC_ACQUIRE) == seen; i++)
            sdiff__pool_pause();
        pthread_mutex_lock(&pool->mu);
        while (pool->gen == seen && !pool->stop) pthread_cond_wait(&pool->wake, &pool->mu);
        if (pool->stop) { pthread_mutex_unlock(&pool->mu); break; }
        seen = pool->gen;
        sdiff__pool_fn fn = pool->fn;
        void *arg = pool->arg;
        int64_t n = pool->n, n_chunks = pool->n_chunks;
        pthread_mutex_unlock(&pool->mu);
        if (w->index < n_chunks) {
            int64_t b, e;
            sdiff__pool_chunk(n, n_chunks, w->index, &b, &e);
            fn(arg, b, e, w->index);
            if (__atomic_sub_fetch(&pool->pending, 1, __ATOMIC_ACQ_REL) == 0) {
                pthread_mutex_lock(&pool->mu);
                pthread_cond_signal(&pool->done);
                pthread_mutex_unlock(&pool->mu);
            }
        }
    }
    return NULL;
}

SDIFF__PRIVATE void sdiff__pool_destroy(sdiff__pool *pool) {
    if (!pool) return;
    pthread_mutex_lock(&pool->mu);
    pool->stop = 1;
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 0; i < pool->n_threads - 1; i++) pthread_join(pool->threads[i], NULL);
    pthread_cond_destroy(&pool->wake);
    pthread_cond_destroy(&pool->done);
    pthread_mutex_destroy(&pool->mu);
    sdiff__free(pool->threads);
    sdiff__free(pool->workers);
    sdiff__free(pool);
}

SDIFF__PRIVATE sdiff__pool *sdiff__pool_create(int n_threads) {
    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)SDIFF__MIN(n, 1024) : 1;
    }
    sdiff__pool *pool = (sdiff__pool *)sdiff__calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->threads = (pthread_t *)sdiff__calloc((size_t)n_threads, sizeof(pthread_t));
    pool->workers = (sdiff__pool_worker *)sdiff__calloc((size_t)n_threads, sizeof(sdiff__pool_worker));
    if (!pool->threads || !pool->workers) {
        sdiff__free(pool->threads); sdiff__free(pool->workers); sdiff__free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->wake, NULL);
    pthread_cond_init(&pool->done, NULL);
    pool->n_threads = 1;   /* counts started threads, so destroy joins only those */
    for (int i = 1; i < n_threads; i++) {
        pool->workers[i].pool = pool;
        pool->workers[i].index = i;
        if (pthread_create(&pool->threads[i - 1], NULL, sdiff__pool_main, &pool->workers[i]) != 0) {
            sdiff__pool_destroy(pool);
            return NULL;
        }
        pool->n_threads++;
    }
    return pool;
}

SDIFF__PRIVATE int sdiff__pool_threads(const sdiff__pool *pool) { return pool ? pool->n_threads : 1; }

SDIFF__PRIVATE void sdiff__pool_run(sdiff__pool *pool, int64_t n, int64_t grain, sdiff__pool_fn fn, void *arg) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int64_t n_chunks = SDIFF__MIN((int64_t)sdiff__pool_threads(pool), SDIFF__MAX(n / grain, 1));
    if (n_chunks <= 1) { fn(arg, 0, n, 0); return; }
    pthread_mutex_lock(&pool->mu);
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    pool->n_chunks = n_chunks;
    __atomic_store_n(&pool->pending, (int)n_chunks - 1, __ATOMIC_RELAXED);
    __atomic_store_n(&pool->gen, pool->gen + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    int64_t b, e;
    sdiff__pool_chunk(n, n_chunks, 0, &b, &e);
    fn(arg, b, e, 0);
    for (int i = 0; i < SDIFF__POOL_SPIN && __atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) != 0; i++)
        sdiff__pool_pause();
    pthread_mutex_lock(&pool->mu);
    while (__atomic_load_n(&pool->pending, __ATOMIC_ACQUIRE) != 0) pthread_cond_wait(&pool->done, &pool->mu);
    pthread_mutex_unlock(&pool->mu);
}

/* --- vector kernels, one set per instruction set ------------------------ */
typedef float sdiff__v16f __attribute__((vector_size(64)));
typedef int32_t sdiff__v16i __attribute__((vector_size(64)));
typedef float sdiff__v8f __attribute__((vector_size(32)));
typedef int32_t sdiff__v8i __attribute__((vector_size(32)));
typedef float sdiff__v4f __attribute__((vector_size(16)));
typedef int32_t sdiff__v4i __attribute__((vector_size(16)));

/* Unaligned vector load/store (memcpy compiles to one vmovups). */
#define SDIFF__VLD(v, p) memcpy(&(v), (p), sizeof(v))
#define SDIFF__VST(p, v) memcpy((p), &(v), sizeof(v))
/* Lane select: mask lanes are all-ones (take a) or zero (take b). */
#define SDIFF__VSEL(V, VI, m, a, b) ((V)(((VI)(a) & (m)) | ((VI)(b) & ~(m))))

/* out = exp(in), lane-wise: exp(x) = 2^k * e^r with k = round(x / ln2) and
   |r| <= ln2/2, e^r by its degree-7 Taylor polynomial (error < 1e-8, below
   fp32 rounding). Inputs below -87 give 0 (also -inf: masked scores), above
   88 are clamped. Rounding goes through an int conversion, not the
   "add 1.5*2^23" trick, so -ffast-math cannot break it. */
#define SDIFF__VEXP(V, VI, out, in)                                                   \
    do {                                                                              \
        V x_ = (in);                                                                  \
        VI under_ = x_ < -87.0f;                                                      \
        x_ = SDIFF__VSEL(V, VI, under_, (V){0} - 87.0f, x_);                       \
        x_ = SDIFF__VSEL(V, VI, x_ > 88.0f, (V){0} + 88.0f, x_);                   \
        VI k_ = __builtin_convertvector(x_ * 1.44269504088896341f + 126.5f, VI) - 126;\
        V kf_ = __builtin_convertvector(k_, V);                                       \
        V r_ = x_ - kf_ * 0.693359375f + kf_ * 2.12194440e-4f;                        \
        V p_ = r_ * (1.0f / 5040.0f) + (1.0f / 720.0f);                               \
        p_ = p_ * r_ + (1.0f / 120.0f);                                               \
        p_ = p_ * r_ + (1.0f / 24.0f);                                                \
        p_ = p_ * r_ + (1.0f / 6.0f);                                                 \
        p_ = p_ * r_ + 0.5f;                                                          \
        p_ = p_ * r_ + 1.0f;                                                          \
        p_ = p_ * r_ + 1.0f;                                                          \
        V s_ = (V)((k_ + 127) << 23);                                                 \
        (out) = (V)((VI)(p_ * s_) & ~under_);                                         \
    } while (0)

/* out = gelu(in) = 0.5 x (1 + erf(x / sqrt2)), lane-wise, erf by Abramowitz &
   Stegun 7.1.26 (absolute error < 1.5e-7, under fp32's resolution of erf
   near 1). */
#define SDIFF__VGELU(V, VI, out, in)                                                  \
    do {                                                                              \
        V gx_ = (in), gz_ = gx_ * 0.70710678118654752f;                               \
        VI gneg_ = gz_ < 0.0f;                                                        \
        V ga_ = SDIFF__VSEL(V, VI, gneg_, -gz_, gz_);                                 \
        V gt_ = 1.0f / (1.0f + 0.3275911f * ga_);                                     \
        V gp_ = gt_ * 1.061405429f - 1.453152027f;                                    \
        gp_ = gp_ * gt_ + 1.421413741f;                                               \
        gp_ = gp_ * gt_ - 0.284496736f;                                               \
        gp_ = gp_ * gt_ + 0.254829592f;                                               \
        gp_ = gp_ * gt_;                                                              \
        V ge_;                                                                        \
        SDIFF__VEXP(V, VI, ge_, -(ga_ * ga_));                                        \
        V gerf_ = 1.0f - gp_ * ge_;                                                   \
        gerf_ = SDIFF__VSEL(V, VI, gneg_, -gerf_, gerf_);                             \
        (out) = 0.5f * gx_ * (1.0f + gerf_);                                          \
    } while (0)

/* Defines, for one instruction set SFX:
   kernel:  c[MR x NR] (row stride ldc) = (accum ? c : 0) + ap . bp over kc,
            ap as [kc][MR] with rows lda apart, bp as [kc][NR] with rows ldb
            apart (packed panels: lda = MR, ldb = NR; attention passes its
            probability tile in place with a wider stride). The accumulators are an
            array the unroll pragmas flatten into registers: MR*NR/VL of them
            (AVX-512 12x32: 24 of 32 zmm; AVX2 6x16: 12 of 16 ymm), plus
            NR/VL for B and one broadcast.
   dot:     out[i] = a_i . b over k for m <= 4 rows of a (GEMV path).
   softmax: one key block of attention, scores transposed (s[key][query],
            rows keys, cols queries, a multiple of VL): the online-softmax
            update vectorised across queries, no horizontal reductions:
            m' = max(m, scale*s), s = exp(scale*s - m'), alpha = exp(m - m'),
            l = l*alpha + sum(s).
   act:     y = act(x) * mul (mul optional), n of them; y may alias x. The
            tail goes through the same vector code (padded), so a value's
            result does not depend on where a thread's chunk starts. */
#define SDIFF__CPU_ISA_DEFINE(SFX, ATTR, V, VI, VL, MR, NV)                                        \
    ATTR SDIFF__PRIVATE void sdiff__gemm_kernel_##SFX(int64_t kc, const float *ap, int64_t lda,      \
                                                      const float *bp, int64_t ldb, float *c,       \
                                                      int64_t ldc, int accum) {                     \
        V acc[MR][NV];                                                                             \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                      \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] = (V){0};               \
        for (int64_t k = 0; k < kc; k++) {                                                         \
            V b[NV];                                                                               \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) SDIFF__VLD(b[j], bp + j * VL);    \
            _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++) {                                \
                float a = ap[i];                                                                   \
                _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) acc[i][j] += b[j] * a;        \
            }                                                                                      \
            ap += lda;                                                                             \
            bp += ldb;                                                                             \
        }                                                                                          \
        _Pragma("GCC unroll 16") for (int i = 0; i < MR; i++)                                      \
            _Pragma("GCC unroll 4") for (int j = 0; j < NV; j++) {                                 \
                float *cp = c + i * ldc + j * VL;                                                  \
                if (accum) { V t; SDIFF__VLD(t, cp); acc[i][j] += t; }                             \
                SDIFF__VST(cp, acc[i][j]);                                                         \
            }                                                                                      \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__gemm_dot_##SFX(int64_t k, const float *a, int64_t lda, int m,    \
                                                   const float *b, float *out) {                    \
        V acc[4] = {{0}, {0}, {0}, {0}};                                                           \
        int64_t kk = 0;                                                                            \
        for (; kk + VL <= k; kk += VL) {                                                           \
            V bv, av;                                                                              \
            SDIFF__VLD(bv, b + kk);                                                                \
            for (int i = 0; i < m; i++) { SDIFF__VLD(av, a + i * lda + kk); acc[i] += av * bv; }   \
        }                                                                                          \
        for (int i = 0; i < m; i++) {                                                              \
            float s = 0;                                                                           \
            for (int l = 0; l < VL; l++) s += acc[i][l];                                           \
            for (int64_t t = kk; t < k; t++) s += a[i * lda + t] * b[t];                           \
            out[i] = s;                                                                            \
        }                                                                                          \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__cpu_softmax_##SFX(float *s, int64_t lds, int64_t rows, int64_t cols,      \
                                                      float scale, float *m, float *l, float *alpha) {  \
        for (int64_t c = 0; c < cols; c += VL) {                                                   \
            V mo, mn, v, a, lv, sum = {0};                                                         \
            SDIFF__VLD(mo, m + c);                                                                 \
            mn = mo;                                                                               \
            for (int64_t r = 0; r < rows; r++) {                                                   \
                SDIFF__VLD(v, s + r * lds + c);                                                    \
                v *= scale;                                                                        \
                mn = SDIFF__VSEL(V, VI, v > mn, v, mn);                                            \
            }                                                                                      \
            SDIFF__VEXP(V, VI, a, mo - mn);                                                        \
            for (int64_t r = 0; r < rows; r++) {                                                   \
                SDIFF__VLD(v, s + r * lds + c);                                                    \
                SDIFF__VEXP(V, VI, v, v * scale - mn);                                             \
                SDIFF__VST(s + r * lds + c, v);                                                    \
                sum += v;                                                                          \
            }                                                                                      \
            SDIFF__VLD(lv, l + c);                                                                 \
            lv = lv * a + sum;                                                                     \
            SDIFF__VST(l + c, lv);                                                                 \
            SDIFF__VST(m + c, mn);                                                                 \
            SDIFF__VST(alpha + c, a);                                                              \
        }                                                                                          \
    }                                                                                              \
    ATTR SDIFF__PRIVATE void sdiff__cpu_act_##SFX(float *y, const float *x, int64_t n, sdiff__act act,  \
                                                  const float *mul) {                              \
        for (int64_t i = 0; i < n; i += VL) {                                                      \
            V v, r, mv;                                                                            \
            float tmp[VL];                                                                         \
            int64_t len = n - i < VL ? n - i : VL;                                                 \
            if (len == VL) SDIFF__VLD(v, x + i);                                                   \
            else { memset(tmp, 0, sizeof tmp); memcpy(tmp, x + i, (size_t)len * 4); SDIFF__VLD(v, tmp); } \
            if (act == SDIFF__ACT_GELU) {                                                          \
                SDIFF__VGELU(V, VI, r, v);                                                         \
            } else if (act == SDIFF__ACT_SILU || act == SDIFF__ACT_QUICK_GELU) {                   \
                V e;                                                                               \
                SDIFF__VEXP(V, VI, e, v * (act == SDIFF__ACT_SILU ? -1.0f : -1.702f));             \
                r = v / (1.0f + e);                                                                \
            } else {                                                                               \
                r = v;                                                                             \
            }                                                                                      \
            if (mul) {                                                                             \
                if (len == VL) SDIFF__VLD(mv, mul + i);                                            \
                else { memset(tmp, 0, sizeof tmp); memcpy(tmp, mul + i, (size_t)len * 4); SDIFF__VLD(mv, tmp); } \
                r *= mv;                                                                           \
            }                                                                                      \
            if (len == VL) SDIFF__VST(y + i, r);                                                   \
            else { SDIFF__VST(tmp, r); memcpy(y + i, tmp, (size_t)len * 4); }                      \
        }                                                                                          \
    }

#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#  define SDIFF__CPU_X86 1
SDIFF__CPU_ISA_DEFINE(avx512, __attribute__((target("avx512f"))), sdiff__v16f, sdiff__v16i, 16, 12, 2)
SDIFF__CPU_ISA_DEFINE(avx2, __attribute__((target("avx2,fma"))), sdiff__v8f, sdiff__v8i, 8, 6, 2)
#endif
SDIFF__CPU_ISA_DEFINE(generic, , sdiff__v4f, sdiff__v4i, 4, 6, 2)

typedef struct sdiff__gemm_isa {
    const char *name;
    int mr, nr;
    void (*kernel)(int64_t kc, const float *ap, int64_t lda, const float *bp, int64_t ldb, float *c, int64_t ldc,
                   int accum);
    void (*dot)(int64_t k, const float *a, int64_t lda, int m, const float *b, float *out);
    void (*softmax)(float *s, int64_t lds, int64_t rows, int64_t cols, float scale, float *m, float *l, float *alpha);
    void (*act)(float *y, const float *x, int64_t n, sdiff__act act, const float *mul);
} sdiff__gemm_isa;

/* Best first. */
static const sdiff__gemm_isa sdiff__gemm_isas[] = {
#ifdef SDIFF__CPU_X86
    {"avx512", 12, 32, sdiff__gemm_kernel_avx512, sdiff__gemm_dot_avx512, sdiff__cpu_softmax_avx512,
     sdiff__cpu_act_avx512},
    {"avx2", 6, 16, sdiff__gemm_kernel_avx2, sdiff__gemm_dot_avx2, sdiff__cpu_softmax_avx2, sdiff__cpu_act_avx2},
#endif
    {"generic", 6, 8, sdiff__gemm_kernel_generic, sdiff__gemm_dot_generic, sdiff__cpu_softmax_generic,
     sdiff__cpu_act_generic},
};
#define SDIFF__GEMM_N_ISAS ((int)(sizeof sdiff__gemm_isas / sizeof sdiff__gemm_isas[0]))

SDIFF__PRIVATE bool sdiff__gemm_isa_supported(const sdiff__gemm_isa *isa) {
#ifdef SDIFF__CPU_X86
    __builtin_cpu_init();
    if (!strcmp(isa->name, "avx512")) return __builtin_cpu_supports("avx512f");
    if (!strcmp(isa->name, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return !strcmp(isa->name, "generic");
}

/* --- the backend object ------------------------------------------------- */
#define SDIFF__GEMM_KC 256
#define SDIFF__GEMM_MC 96      /* multiple of every MR (12, 6)                */
#define SDIFF__GEMM_NC 320     /* multiple of every NR (32, 16, 8)            */
#define SDIFF__ATTN_QB 96      /* queries per attention task (MR, NR multiple) */

typedef struct sdiff__cpu {
    sdiff__backend be;           /* first, so a backend pointer is a cpu one  */
    sdiff__pool *pool;           /* NULL: run on the calling thread           */
    int n_threads;
    const sdiff__gemm_isa *isa;
    float *ws;                   /* shared workspace: packed B, packed K/V    */
    size_t ws_floats;
    float *scratch;              /* n_threads per-thread slices               */
    size_t scratch_floats;       /* per thread, a multiple of 16 (64 bytes)   */
} sdiff__cpu;

SDIFF__PRIVATE void *sdiff__cpu_alloc_aligned(size_t bytes) {
    if (bytes > SIZE_MAX - 64) return NULL;
    unsigned char *raw = (unsigned char *)sdiff__malloc(bytes + 64);
    if (!raw) return NULL;
    size_t off = 64 - ((uintptr_t)raw & 63);   /* 1..64: room for the offset byte */
    unsigned char *p = raw + off;
    p[-1] = (unsigned char)off;
    return p;
}
SDIFF__PRIVATE void sdiff__cpu_free_aligned(void *ptr) {
    if (!ptr) return;
    unsigned char *p = (unsigned char *)ptr;
    sdiff__free(p - p[-1]);
}

/* Grows the shared workspace to n floats; false (and the backend failed) on OOM. */
SDIFF__PRIVATE bool sdiff__cpu_reserve_ws(sdiff__cpu *cb, size_t n, const char *op) {
    if (n <= cb->ws_floats) return true;
    float *p = n < SIZE_MAX / 4 ? (float *)sdiff__cpu_alloc_aligned(n * 4) : NULL;
    if (!p) {
        sdiff__be_fail(&cb->be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for a %zu-byte workspace", op, n * 4);
        return false;
    }
    sdiff__cpu_free_aligned(cb->ws);
    cb->ws = p;
    cb->ws_floats = n;
    return true;
}
/* Grows every thread's scratch slice to n floats. */
SDIFF__PRIVATE bool sdiff__cpu_reserve_scratch(sdiff__cpu *cb, size_t n, const char *op) {
    n = (n + 15) & ~(size_t)15;
    if (n <= cb->scratch_floats) return true;
    float *p = n < SIZE_MAX / 4 / (size_t)cb->n_threads ? (float *)sdiff__cpu_alloc_aligned(n * 4 * (size_t)cb->n_threads)
                                                        : NULL;
    if (!p) {
        sdiff__be_fail(&cb->be, SDIFF_ERR_OUT_OF_MEMORY, "%s: out of memory for %d x %zu bytes of scratch", op,
                       cb->n_threads, n * 4);
        return false;
    }
    sdiff__cpu_free_aligned(cb->scratch);
    cb->scratch = p;
    cb->scratch_floats = n;
    return true;
}
SDIFF__PRIVATE float *sdiff__cpu_thread_scratch(sdiff__cpu *cb, int thread) {
    return cb->scratch + (size_t)thread * cb->scratch_floats;
}

SDIFF__PRIVATE void sdiff__cpu_run(sdiff__cpu *cb, int64_t n, int64_t grain, sdiff__pool_fn fn, void *arg) {
    if (cb->pool) sdiff__pool_run(cb->pool, n, grain, fn, arg);
    else if (n > 0) fn(arg, 0, n, 0);
}

SDIFF__PRIVATE int64_t sdiff__cpu_round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* --- packing ------------------------------------------------------------ */
/* B panel from an [N,K] matrix (weights, attention keys): dst[k][NR] =
   b[n0 + j][k0 + k], zero past n_valid. */
SDIFF__PRIVATE void sdiff__gemm_pack_b_nk(float *dst, int nr, const float *b, int64_t ldb, int64_t n_valid,
                                          int64_t k0, int64_t kc) {
    for (int j = 0; j < nr; j++) {
        if (j < n_valid) {
            const float *src = b + j * ldb + k0;
            for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = src[k];
        } else {
            for (int64_t k = 0; k < kc; k++) dst[k * nr + j] = 0.0f;
        }
    }
}
/* B panel from a [K,N] matrix (attention values): dst[k][NR] = b[k][j]. */
SDIFF__PRIVATE void sdiff__gemm_pack_b_kn(float *dst, int nr, const float *b, int64_t ldb, int64_t n_valid,
                                          int64_t kc) {
    for (int64_t k = 0; k < kc; k++) {
        const float *src = b + k * ldb;
        int j = 0;
        for (; j < n_valid; j++) dst[k * nr + j] = src[j];
        for (; j < nr; j++) dst[k * nr + j] = 0.0f;
    }
}
/* A panels from a dense [M,K] matrix: rows [0, m) of a (already offset to
   the block's first row), columns [k0, k0 + kc). dst holds
   ceil(m / MR) panels of [kc][MR], rows past m zero. */
SDIFF__PRIVATE void sdiff__gemm_pack_a(float *dst, int mr, const float *a, int64_t lda, int64_t m, int64_t k0,
                                       int64_t kc) {
    for (int64_t p = 0; p * mr < m; p++, dst += kc * mr) {
        for (int i = 0; i < mr; i++) {
            int64_t row = p * mr + i;
            if (row < m) {
                const float *src = a + row * lda + k0;
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = src[k];
            } else {
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = 0.0f;
            }
        }
    }
}

/* The input side of a convolution seen as the A matrix of a GEMM. */
typedef struct sdiff__cpu_conv {
    const float *x;
    int64_t h, w, ci, kh, kw, ho, wo;
    int stride, pad;
} sdiff__cpu_conv;

/* Implicit im2col: A row m is output pixel (b, oy, ox), column k = (ky*KW +
   kx)*Ci + ci is x[b, oy*s - pad + ky, ox*s - pad + kx, ci], zero outside. */
SDIFF__PRIVATE void sdiff__gemm_pack_a_conv(float *dst, int mr, const sdiff__cpu_conv *cv, int64_t m0, int64_t m,
                                            int64_t k0, int64_t kc) {
    for (int64_t p = 0; p * mr < m; p++, dst += kc * mr) {
        for (int i = 0; i < mr; i++) {
            int64_t row = p * mr + i;
            if (row >= m) {
                for (int64_t k = 0; k < kc; k++) dst[k * mr + i] = 0.0f;
                continue;
            }
            int64_t pix = m0 + row, ox = pix % cv->wo, t = pix / cv->wo, oy = t % cv->ho, b = t / cv->ho;
            int64_t k = k0, k1 = k0 + kc;
            while (k < k1) {
                int64_t tap = k / cv->ci, c = k % cv->ci, len = SDIFF__MIN(cv->ci - c, k1 - k);
                int64_t iy = oy * cv->stride - cv->pad + tap / cv->kw, ix = ox * cv->stride - cv->pad + tap % cv->kw;
                float *d = dst + (k - k0) * mr + i;
                if (iy >= 0 && iy < cv->h && ix >= 0 && ix < cv->w) {
                    const float *src = cv->x + ((b * cv->h + iy) * cv->w + ix) * cv->ci + c;
                    for (int64_t l = 0; l < len; l++) d[l * mr] = src[l];
                } else {
                    for (int64_t l = 0; l < len; l++) d[l * mr] = 0.0f;
                }
                k += len;
            }
        }
    }
}

/* --- GEMM driver -------------------------------------------------------- */
typedef struct sdiff__gemm_job {
    sdiff__cpu *cb;
    const sdiff__gemm_isa *isa;
    int64_t m, n, k;
    const float *a;               /* dense A [M,K] (row stride lda) ...        */
    int64_t lda;
    const sdiff__cpu_conv *conv;  /* ... or a convolution's implicit A         */
    const float *b;               /* [N,K], row stride ldb                     */
    int64_t ldb;
    float *c;                     /* [M,N] contiguous                          */
    const float *bias;            /* [N] or NULL                               */
    sdiff__act act;
    const float *res;             /* [M,N] or NULL; may alias c                */
    /* blocking */
    int64_t npad, mc, nc, m_blocks, n_blocks, k_chunks;
    int64_t next;                 /* atomic task counter                       */
} sdiff__gemm_job;

/* y[0..n) = act(acc + bias) + res. acc is the caller's scratch and is
   overwritten; res may alias y (a residual added in place). */
SDIFF__PRIVATE void sdiff__gemm_epilogue(const sdiff__gemm_isa *isa, float *y, float *acc, int64_t n,
                                         const float *bias, sdiff__act act, const float *res) {
    if (bias) for (int64_t j = 0; j < n; j++) acc[j] += bias[j];
    if (act != SDIFF__ACT_NONE) isa->act(acc, acc, n, act, NULL);
    if (res) for (int64_t j = 0; j < n; j++) y[j] = acc[j] + res[j];
    else memcpy(y, acc, (size_t)n * 4);
}

SDIFF__PRIVATE void sdiff__gemm_pack_b_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__gemm_job *g = (const sdiff__gemm_job *)arg;
    int nr = g->isa->nr;
    int64_t n_panels = g->npad / nr;
    SDIFF__UNUSED(thread);
    for (int64_t u = begin; u < end; u++) {
        int64_t pc = u / n_panels, p = u % n_panels, k0 = pc * SDIFF__GEMM_KC;
        int64_t kc = SDIFF__MIN(SDIFF__GEMM_KC, g->k - k0);
        float *dst = g->cb->ws + k0 * g->npad + p * kc * nr;
        sdiff__gemm_pack_b_nk(dst, nr, g->b + p * nr * g->ldb, g->ldb, SDIFF__MIN(nr, g->n - p * nr), k0, kc);
    }
}

SDIFF__PRIVATE void sdiff__gemm_task(void *arg, int64_t begin, int64_t end, int thread) {
    sdiff__gemm_job *g = (sdiff__gemm_job *)arg;
    const sdiff__gemm_isa *isa = g->isa;
    int mr = isa->mr, nr = isa->nr;
    int64_t ldcb = g->nc;                                     /* a multiple of nr */
    float *apack = sdiff__cpu_thread_scratch(g->cb, thread);
    float *cbuf = apack + SDIFF__GEMM_MC * SDIFF__GEMM_KC;
    int64_t n_tasks = g->m_blocks * g->n_blocks;
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    for (;;) {
        int64_t t = __atomic_fetch_add(&g->next, 1, __ATOMIC_RELAXED);
        if (t >= n_tasks) break;
        int64_t m0 = t / g->n_blocks * g->mc, n0 = t % g->n_blocks * g->nc;
        int64_t ml = SDIFF__MIN(g->mc, g->m - m0), nl = SDIFF__MIN(g->nc, g->n - n0);
        int64_t mp = (ml + mr - 1) / mr, np = (nl + nr - 1) / nr;
        for (int64_t pc = 0; pc < g->k_chunks; pc++) {
            int64_t k0 = pc * SDIFF__GEMM_KC, kc = SDIFF__MIN(SDIFF__GEMM_KC, g->k - k0);
            if (g->conv) sdiff__gemm_pack_a_conv(apack, mr, g->conv, m0, ml, k0, kc);
            else sdiff__gemm_pack_a(apack, mr, g->a + m0 * g->lda, g->lda, ml, k0, kc);
            const float *bpc = g->cb->ws + k0 * g->npad + (n0 / nr) * kc * nr;
            for (int64_t ip = 0; ip < mp; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(kc, apack + ip * kc * mr, mr, bpc + jp * kc * nr, nr, cbuf + ip * mr * ldcb + jp * nr,
                                ldcb, pc > 0);
        }
        for (int64_t i = 0; i < ml; i++) {
            int64_t row = (m0 + i) * g->n + n0;
            sdiff__gemm_epilogue(isa, g->c + row, cbuf + i * ldcb, nl, g->bias ? g->bias + n0 : NULL, g->act,
                                 g->res ? g->res + row : NULL);
        }
    }
}

SDIFF__PRIVATE void sdiff__gemm_dot_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__gemm_job *g = (const sdiff__gemm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t j = begin; j < end; j++) {
        float acc[4];
        g->isa->dot(g->k, g->a, g->lda, (int)g->m, g->b + j * g->ldb, acc);
        for (int64_t i = 0; i < g->m; i++) {
            int64_t o = i * g->n + j;
            sdiff__gemm_epilogue(g->isa, g->c + o, &acc[i], 1, g->bias ? g->bias + j : NULL, g->act,
                                 g->res ? g->res + o : NULL);
        }
    }
}

SDIFF__PRIVATE void sdiff__gemm_all(void *arg, int64_t begin, int64_t end, int thread) {
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    sdiff__gemm_task(arg, 0, 0, thread);
}

/* Runs a GEMM described by g (m, n, k, a/conv, b, c, epilogue filled in). */
SDIFF__PRIVATE void sdiff__gemm_run(sdiff__gemm_job *g, const char *op) {
    sdiff__cpu *cb = g->cb;
    const sdiff__gemm_isa *isa = cb->isa;
    g->isa = isa;
    if (!g->conv && g->m <= 4) {
        /* GEMV-like: memory bound on B, so read B once, unpacked. */
        sdiff__cpu_run(cb, g->n, 16, sdiff__gemm_dot_task, g);
        return;
    }
    int mr = isa->mr, nr = isa->nr;
    g->npad = sdiff__cpu_round_up(g->n, nr);
    g->k_chunks = (g->k + SDIFF__GEMM_KC - 1) / SDIFF__GEMM_KC;
    if (!sdiff__cpu_reserve_ws(cb, (size_t)(g->k * g->npad), op)) return;
    if (!sdiff__cpu_reserve_scratch(cb, SDIFF__GEMM_MC * SDIFF__GEMM_KC + SDIFF__GEMM_MC * SDIFF__GEMM_NC, op)) return;
    /* Enough tasks to keep every thread busy: shrink the N block first (B
       panels are shared anyway), then the M block. */
    int64_t want = cb->n_threads > 1 ? 3 * (int64_t)cb->n_threads : 1;
    g->mc = SDIFF__GEMM_MC;
    g->nc = SDIFF__MIN((int64_t)SDIFF__GEMM_NC, g->npad);
    for (;;) {
        g->m_blocks = (g->m + g->mc - 1) / g->mc;
        g->n_blocks = (g->n + g->nc - 1) / g->nc;
        if (g->m_blocks * g->n_blocks >= want) break;
        if (g->nc > 2 * nr) g->nc = sdiff__cpu_round_up(g->nc / 2, nr);
        else if (g->mc > 2 * mr) g->mc = sdiff__cpu_round_up(g->mc / 2, mr);
        else break;
    }
    g->next = 0;
    sdiff__cpu_run(cb, g->k_chunks * (g->npad / nr), 4, sdiff__gemm_pack_b_task, g);
    sdiff__cpu_run(cb, cb->n_threads, 1, sdiff__gemm_all, g);
}

/* --- validation helpers ------------------------------------------------- */
SDIFF__PRIVATE bool sdiff__cpu_ok(sdiff__backend *be, const sdiff__tensor *t, const char *op, const char *name,
                                  bool contiguous) {
    if (!t || !t->data || t->nd < 1 || t->nd > SDIFF__MAX_DIMS || t->dtype != SDIFF__F32) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s is missing, empty or not F32", op, name);
        return false;
    }
    for (int i = 0; i < t->nd; i++)
        if (t->ne[i] < 1) {
            sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has shape dimension %d = %lld", op, name, i,
                           (long long)t->ne[i]);
            return false;
        }
    if (contiguous ? !sdiff__is_contiguous(t) : t->row_stride < sdiff__cols(t)) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has row_stride %lld for %lld columns", op, name,
                       (long long)t->row_stride, (long long)sdiff__cols(t));
        return false;
    }
    return true;
}
/* An optional [n] parameter vector (bias, gamma, beta). */
SDIFF__PRIVATE bool sdiff__cpu_ok_vec(sdiff__backend *be, const sdiff__tensor *t, int64_t n, const char *op,
                                      const char *name) {
    if (!t) return true;
    if (!sdiff__cpu_ok(be, t, op, name, true)) return false;
    if (sdiff__numel(t) != n) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s has %lld elements, want %lld", op, name,
                       (long long)sdiff__numel(t), (long long)n);
        return false;
    }
    return true;
}
SDIFF__PRIVATE bool sdiff__cpu_same_shape(const sdiff__tensor *a, const sdiff__tensor *b) {
    if (a->nd != b->nd) return false;
    for (int i = 0; i < a->nd; i++) if (a->ne[i] != b->ne[i]) return false;
    return true;
}
SDIFF__PRIVATE bool sdiff__cpu_shape_fail(sdiff__backend *be, const char *op, const char *what,
                                          const sdiff__tensor *a, const sdiff__tensor *b) {
    char sa[96], sb[96];
    const sdiff__tensor *ts[2] = {a, b};
    char *ss[2] = {sa, sb};
    for (int t = 0; t < 2; t++) {
        int o = snprintf(ss[t], 96, "[");
        for (int i = 0; i < ts[t]->nd && o < 80; i++)
            o += snprintf(ss[t] + o, (size_t)(96 - o), "%s%lld", i ? "," : "", (long long)ts[t]->ne[i]);
        snprintf(ss[t] + o, (size_t)(96 - o), "]");
    }
    sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "%s: %s (shapes %s and %s)", op, what, sa, sb);
    return false;
}

#define SDIFF__CPU(be) ((sdiff__cpu *)(be))

/* --- memory ops --------------------------------------------------------- */
SDIFF__PRIVATE void *sdiff__cpu_alloc(sdiff__backend *be, size_t bytes) {
    SDIFF__UNUSED(be);
    return sdiff__cpu_alloc_aligned(bytes);
}
SDIFF__PRIVATE void sdiff__cpu_free(sdiff__backend *be, void *ptr) {
    SDIFF__UNUSED(be);
    sdiff__cpu_free_aligned(ptr);
}

typedef struct sdiff__cpu_copy_job {
    float *dst;
    const void *src;
    sdiff__dtype dt;
} sdiff__cpu_copy_job;

SDIFF__PRIVATE void sdiff__cpu_upload_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__cpu_copy_job *j = (const sdiff__cpu_copy_job *)arg;
    SDIFF__UNUSED(thread);
    sdiff__to_f32(j->dst + begin, (const unsigned char *)j->src + begin * (int64_t)sdiff__dtype_size(j->dt), j->dt,
                  (size_t)(end - begin));
}
SDIFF__PRIVATE void sdiff__cpu_upload(sdiff__backend *be, sdiff__tensor *t, const void *src, sdiff__dtype src_dt) {
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, t, "upload", "t", true)) return;
    if (!src) { sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "upload: NULL source"); return; }
    sdiff__cpu_copy_job j = {(float *)t->data, src, src_dt};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__numel(t), 1 << 16, sdiff__cpu_upload_task, &j);
}
SDIFF__PRIVATE void sdiff__cpu_download(sdiff__backend *be, const sdiff__tensor *t, float *dst) {
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, t, "download", "t", true)) return;
    if (!dst) { sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "download: NULL destination"); return; }
    memcpy(dst, t->data, (size_t)sdiff__numel(t) * 4);
}

/* --- linear, conv2d ----------------------------------------------------- */
SDIFF__PRIVATE void sdiff__cpu_linear(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                      const sdiff__tensor *w, const sdiff__tensor *bias, sdiff__act act,
                                      const sdiff__tensor *residual) {
    const char *op = "linear";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", false) ||
        !sdiff__cpu_ok(be, w, op, "w", true))
        return;
    int64_t m = sdiff__rows(x), k = sdiff__cols(x);
    if (w->nd != 2 || w->ne[1] != k) { sdiff__cpu_shape_fail(be, op, "w is not [N, K]", w, x); return; }
    int64_t n = w->ne[0];
    if (sdiff__rows(y) != m || sdiff__cols(y) != n) { sdiff__cpu_shape_fail(be, op, "y is not [M, N]", y, x); return; }
    if (!sdiff__cpu_ok_vec(be, bias, n, op, "bias")) return;
    if (residual) {
        if (!sdiff__cpu_ok(be, residual, op, "residual", true)) return;
        if (sdiff__numel(residual) != m * n) { sdiff__cpu_shape_fail(be, op, "residual is not y's size", residual, y); return; }
    }
    sdiff__gemm_job g;
    memset(&g, 0, sizeof g);
    g.cb = SDIFF__CPU(be);
    g.m = m; g.n = n; g.k = k;
    g.a = (const float *)x->data; g.lda = x->row_stride;
    g.b = (const float *)w->data; g.ldb = k;
    g.c = (float *)y->data;
    g.bias = bias ? (const float *)bias->data : NULL;
    g.act = act;
    g.res = residual ? (const float *)residual->data : NULL;
    sdiff__gemm_run(&g, op);
}

SDIFF__PRIVATE void sdiff__cpu_conv2d(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                      const sdiff__tensor *w, const sdiff__tensor *bias, int stride, int pad,
                                      const sdiff__tensor *residual) {
    const char *op = "conv2d";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true) ||
        !sdiff__cpu_ok(be, w, op, "w", true))
        return;
    if (x->nd != 4 || w->nd != 4 || y->nd != 4) { sdiff__cpu_shape_fail(be, op, "x, w and y must be 4-D", x, w); return; }
    if (stride < 1 || pad < 0) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "conv2d: stride %d / pad %d out of range", stride, pad);
        return;
    }
    int64_t bn = x->ne[0], h = x->ne[1], wd = x->ne[2], ci = x->ne[3];
    int64_t co = w->ne[0], kh = w->ne[1], kw = w->ne[2], ho = y->ne[1], wo = y->ne[2];
    if (w->ne[3] != ci) { sdiff__cpu_shape_fail(be, op, "w's input channels differ from x's", w, x); return; }
    if (y->ne[0] != bn || y->ne[3] != co) { sdiff__cpu_shape_fail(be, op, "y's batch or channels are wrong", y, w); return; }
    /* y's size sets the bottom/right padding, but every output must see x
       (or the top/left padding) with its first tap. */
    if ((ho - 1) * stride > h - 1 + 2 * (int64_t)pad || (wo - 1) * stride > wd - 1 + 2 * (int64_t)pad) {
        sdiff__cpu_shape_fail(be, op, "y is larger than the padded input allows", y, x);
        return;
    }
    if (!sdiff__cpu_ok_vec(be, bias, co, op, "bias")) return;
    if (residual) {
        if (!sdiff__cpu_ok(be, residual, op, "residual", true)) return;
        if (!sdiff__cpu_same_shape(residual, y)) { sdiff__cpu_shape_fail(be, op, "residual is not y's shape", residual, y); return; }
    }
    sdiff__cpu_conv cv = {(const float *)x->data, h, wd, ci, kh, kw, ho, wo, stride, pad};
    sdiff__gemm_job g;
    memset(&g, 0, sizeof g);
    g.cb = SDIFF__CPU(be);
    g.m = bn * ho * wo; g.n = co; g.k = kh * kw * ci;
    if (kh == 1 && kw == 1 && stride == 1 && pad == 0 && ho == h && wo == wd) {
        g.a = (const float *)x->data;   /* a 1x1 convolution is a plain GEMM */
        g.lda = ci;
    } else {
        g.conv = &cv;
    }
    g.b = (const float *)w->data; g.ldb = g.k;
    g.c = (float *)y->data;
    g.bias = bias ? (const float *)bias->data : NULL;
    g.act = SDIFF__ACT_NONE;
    g.res = residual ? (const float *)residual->data : NULL;
    sdiff__gemm_run(&g, op);
}

/* --- attention ----------------------------------------------------------
   Scores are computed transposed, S^T[key][query] = K . Q^T, with keys as
   the kernel's M side and queries as its N side. Then the softmax runs
   along S^T's rows with queries in the vector lanes (no horizontal sums),
   and O^T[d][query] += V^T . P^T takes P^T straight from S^T as the
   kernel's B operand (ldb = the tile's row length): nothing is transposed
   or repacked per key block. Head dims pad to MR (12), not NR (32), which
   matters for D = 40. */
typedef struct sdiff__attn_job {
    sdiff__cpu *cb;
    const sdiff__gemm_isa *isa;
    float *o;
    const float *q, *k, *v;
    int64_t ldq, ldk, ldv;
    int64_t b, h, lq, lk, d, qb, kb, n_kb, n_qb;
    size_t kblock_floats, vblock_floats;   /* packed K / V per (b, h, key block) */
    float *kpack, *vpack;
    bool causal;
    int64_t next;
} sdiff__attn_job;

/* Packs (b, h, key block): keys as A panels ([D][MR] per MR keys) and
   values as A panels of V^T ([keys][MR] per MR head dims). */
SDIFF__PRIVATE void sdiff__attn_pack_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__attn_job *j = (const sdiff__attn_job *)arg;
    int mr = j->isa->mr;
    SDIFF__UNUSED(thread);
    for (int64_t u = begin; u < end; u++) {
        int64_t bh = u / j->n_kb, kbi = u % j->n_kb, bi = bh / j->h, hi = bh % j->h;
        int64_t k0 = kbi * j->kb, kl = SDIFF__MIN(j->kb, j->lk - k0);
        const float *ks = j->k + (bi * j->lk + k0) * j->ldk + hi * j->d;
        const float *vs = j->v + (bi * j->lk + k0) * j->ldv + hi * j->d;
        float *kp = j->kpack + (size_t)u * j->kblock_floats, *vp = j->vpack + (size_t)u * j->vblock_floats;
        sdiff__gemm_pack_a(kp, mr, ks, j->ldk, kl, 0, j->d);
        for (int64_t p = 0; p * mr < j->d; p++)
            sdiff__gemm_pack_b_kn(vp + p * mr * kl, mr, vs + p * mr, j->ldv, SDIFF__MIN(mr, j->d - p * mr), kl);
    }
}

SDIFF__PRIVATE void sdiff__attn_task(void *arg, int64_t begin, int64_t end, int thread) {
    sdiff__attn_job *j = (sdiff__attn_job *)arg;
    const sdiff__gemm_isa *isa = j->isa;
    int mr = isa->mr, nr = isa->nr;
    const int64_t qb = j->qb, d = j->d, dm = sdiff__cpu_round_up(d, mr), kbm = sdiff__cpu_round_up(j->kb, mr);
    float *qp = sdiff__cpu_thread_scratch(j->cb, thread);      /* [qb/NR][D][NR]     */
    float *st = qp + qb * d;                                    /* S^T [kbm][qb]      */
    float *ot = st + kbm * qb;                                  /* O^T [dm][qb]       */
    float *mx = ot + dm * qb, *sum = mx + qb, *alpha = sum + qb;
    int64_t n_tasks = j->b * j->h * j->n_qb;
    const float scale = 1.0f / sqrtf((float)d);
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    for (;;) {
        int64_t t = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (t >= n_tasks) break;
        int64_t bh = t / j->n_qb, bi = bh / j->h, hi = bh % j->h;
        int64_t q0 = t % j->n_qb * qb, ql = SDIFF__MIN(qb, j->lq - q0), np = (ql + nr - 1) / nr, cols = np * nr;
        const float *qs = j->q + (bi * j->lq + q0) * j->ldq + hi * d;
        for (int64_t p = 0; p < np; p++)
            sdiff__gemm_pack_b_nk(qp + p * d * nr, nr, qs + p * nr * j->ldq, j->ldq, SDIFF__MIN(nr, ql - p * nr), 0, d);
        memset(ot, 0, (size_t)(dm * qb) * 4);
        for (int64_t c = 0; c < cols; c++) { mx[c] = -INFINITY; sum[c] = 0.0f; }
        int64_t kend = j->causal ? SDIFF__MIN(j->lk, q0 + ql) : j->lk;
        for (int64_t kbi = 0; kbi * j->kb < kend; kbi++) {
            int64_t k0 = kbi * j->kb, kl = SDIFF__MIN(j->kb, kend - k0);
            const float *kp = j->kpack + (size_t)(bh * j->n_kb + kbi) * j->kblock_floats;
            const float *vp = j->vpack + (size_t)(bh * j->n_kb + kbi) * j->vblock_floats;
            int64_t kblen = SDIFF__MIN(j->kb, j->lk - k0);   /* the packed block's length */
            for (int64_t ip = 0; ip * mr < kl; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(d, kp + ip * d * mr, mr, qp + jp * d * nr, nr, st + ip * mr * qb + jp * nr, qb, 0);
            if (j->causal && k0 + kl - 1 > q0)   /* key k0+r is hidden from query q0+c when k0+r > q0+c */
                for (int64_t r = 0; r < kl; r++)
                    for (int64_t c = 0; c < SDIFF__MIN(cols, k0 + r - q0); c++) st[r * qb + c] = -INFINITY;
            isa->softmax(st, qb, kl, cols, scale, mx, sum, alpha);
            for (int64_t r = 0; r < d; r++) {
                float *orow = ot + r * qb;
                for (int64_t c = 0; c < cols; c++) orow[c] *= alpha[c];
            }
            for (int64_t ip = 0; ip * mr < d; ip++)
                for (int64_t jp = 0; jp < np; jp++)
                    isa->kernel(kl, vp + ip * mr * kblen, mr, st + jp * nr, qb, ot + ip * mr * qb + jp * nr, qb, 1);
        }
        for (int64_t c = 0; c < ql; c++) {
            float inv = 1.0f / sum[c], *dst = j->o + (bi * j->lq + q0 + c) * j->h * d + hi * d;
            for (int64_t r = 0; r < d; r++) dst[r] = ot[r * qb + c] * inv;
        }
    }
}

SDIFF__PRIVATE void sdiff__attn_all(void *arg, int64_t begin, int64_t end, int thread) {
    SDIFF__UNUSED(begin); SDIFF__UNUSED(end);
    sdiff__attn_task(arg, 0, 0, thread);
}

SDIFF__PRIVATE void sdiff__cpu_attention(sdiff__backend *be, sdiff__tensor *o, const sdiff__tensor *q,
                                         const sdiff__tensor *k, const sdiff__tensor *v, int heads, bool causal) {
    const char *op = "attention";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, o, op, "o", true) || !sdiff__cpu_ok(be, q, op, "q", false) ||
        !sdiff__cpu_ok(be, k, op, "k", false) || !sdiff__cpu_ok(be, v, op, "v", false))
        return;
    if (q->nd != 3 || k->nd != 3 || v->nd != 3 || !sdiff__cpu_same_shape(o, q)) {
        sdiff__cpu_shape_fail(be, op, "q, k, v must be [B, L, H*D] and o q's shape", q, k);
        return;
    }
    if (!sdiff__cpu_same_shape(k, v) || k->ne[0] != q->ne[0] || k->ne[2] != q->ne[2]) {
        sdiff__cpu_shape_fail(be, op, "k and v must be [B, Lk, H*D] like q", q, k);
        return;
    }
    if (heads < 1 || q->ne[2] % heads) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "attention: %lld columns do not split into %d heads",
                       (long long)q->ne[2], heads);
        return;
    }
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__attn_job j;
    memset(&j, 0, sizeof j);
    j.cb = cb;
    j.isa = cb->isa;
    int mr = j.isa->mr;
    j.o = (float *)o->data;
    j.q = (const float *)q->data; j.k = (const float *)k->data; j.v = (const float *)v->data;
    j.ldq = q->row_stride; j.ldk = k->row_stride; j.ldv = v->row_stride;
    j.b = q->ne[0]; j.lq = q->ne[1]; j.lk = k->ne[1]; j.h = heads; j.d = q->ne[2] / heads;
    j.causal = causal;
    /* 96 queries per task (a multiple of every MR and NR), fewer when the
       sequence is short. Key block: up to 504 keys (MR multiple), fewer for
       wide heads, so a packed key block (kb x D, <= 256 KB) and the score tile stay in
       L2. */
    j.qb = SDIFF__MIN((int64_t)SDIFF__ATTN_QB, sdiff__cpu_round_up(j.lq, j.isa->nr));
    j.kb = SDIFF__MAX((int64_t)mr, SDIFF__MIN(512, 65536 / j.d) / mr * mr);
    j.kb = SDIFF__MIN(j.kb, sdiff__cpu_round_up(j.lk, mr));
    j.n_kb = (j.lk + j.kb - 1) / j.kb;
    j.n_qb = (j.lq + j.qb - 1) / j.qb;
    int64_t dm = sdiff__cpu_round_up(j.d, mr);
    j.kblock_floats = (size_t)(j.kb * j.d);
    j.vblock_floats = (size_t)(j.kb * dm);
    size_t units = (size_t)(j.b * j.h * j.n_kb);
    if (!sdiff__cpu_reserve_ws(cb, units * (j.kblock_floats + j.vblock_floats), op)) return;
    size_t per_thread = (size_t)(j.qb * (j.d + j.kb + dm + 3));
    if (!sdiff__cpu_reserve_scratch(cb, per_thread, op)) return;
    j.kpack = cb->ws;
    j.vpack = cb->ws + units * j.kblock_floats;
    sdiff__cpu_run(cb, (int64_t)units, 1, sdiff__attn_pack_task, &j);
    sdiff__cpu_run(cb, cb->n_threads, 1, sdiff__attn_all, &j);
}

/* --- normalisation ------------------------------------------------------ */
typedef struct sdiff__norm_job {
    const float *x;
    float *y;
    const float *gamma, *beta;
    int64_t rows, c, p, groups, n_chunks;
    float eps;
    bool silu;
    double *part;        /* group_norm: [B * n_chunks][groups][2] partial sums */
    float *coef;         /* group_norm: [B][C][2] scale, shift                 */
    sdiff__cpu *cb;
} sdiff__norm_job;

/* Partial per-group sums of one (batch item, position chunk) in double. */
SDIFF__PRIVATE void sdiff__gn_stats_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    double *acc = (double *)(void *)sdiff__cpu_thread_scratch(j->cb, thread);   /* [C][2] */
    int64_t c = j->c, cg = c / j->groups;
    for (int64_t u = begin; u < end; u++) {
        int64_t b = u / j->n_chunks, ch = u % j->n_chunks;
        int64_t p0 = j->p * ch / j->n_chunks, p1 = j->p * (ch + 1) / j->n_chunks;
        double *s = acc, *s2 = acc + c;
        for (int64_t i = 0; i < c; i++) { s[i] = 0; s2[i] = 0; }
        for (int64_t p = p0; p < p1; p++) {
            const float *row = j->x + (b * j->p + p) * c;
            for (int64_t i = 0; i < c; i++) { double v = row[i]; s[i] += v; s2[i] += v * v; }
        }
        double *out = j->part + u * j->groups * 2;
        for (int64_t g = 0; g < j->groups; g++) {
            double a = 0, a2 = 0;
            for (int64_t i = g * cg; i < (g + 1) * cg; i++) { a += s[i]; a2 += s2[i]; }
            out[2 * g] = a; out[2 * g + 1] = a2;
        }
    }
}

/* y = x * scale[c] + shift[c] (+ SiLU), over rows of the [B*P, C] view. */
SDIFF__PRIVATE void sdiff__gn_apply_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *coef = j->coef + r / j->p * j->c * 2, *x = j->x + r * j->c;
        float *y = j->y + r * j->c;
        for (int64_t i = 0; i < j->c; i++) y[i] = x[i] * coef[2 * i] + coef[2 * i + 1];
        if (j->silu) j->cb->isa->act(y, y, j->c, SDIFF__ACT_SILU, NULL);
    }
}

SDIFF__PRIVATE void sdiff__cpu_group_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *gamma, const sdiff__tensor *beta, int groups, float eps,
                                          bool silu) {
    const char *op = "group_norm";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true)) return;
    if (!sdiff__cpu_same_shape(x, y) || x->nd < 2) { sdiff__cpu_shape_fail(be, op, "y must be x's shape, [B, ..., C]", y, x); return; }
    int64_t bn = x->ne[0], c = sdiff__cols(x), p = sdiff__numel(x) / (bn * c);
    if (groups < 1 || c % groups) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "group_norm: %lld channels do not split into %d groups",
                       (long long)c, groups);
        return;
    }
    if (!sdiff__cpu_ok_vec(be, gamma, c, op, "gamma") || !sdiff__cpu_ok_vec(be, beta, c, op, "beta")) return;
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__norm_job j;
    memset(&j, 0, sizeof j);
    j.cb = cb;
    j.x = (const float *)x->data; j.y = (float *)y->data;
    j.c = c; j.p = p; j.groups = groups; j.eps = eps; j.silu = silu;
    j.n_chunks = SDIFF__MAX(1, SDIFF__MIN(p, 2 * (int64_t)cb->n_threads));
    int64_t units = bn * j.n_chunks;
    if (!sdiff__cpu_reserve_scratch(cb, (size_t)(4 * c), op)) return;   /* [C][2] doubles */
    size_t part_bytes = (size_t)(units * groups * 2) * sizeof(double), coef_bytes = (size_t)(bn * c * 2) * 4;
    void *mem = sdiff__malloc(part_bytes + coef_bytes);
    if (!mem) { sdiff__be_fail(be, SDIFF_ERR_OUT_OF_MEMORY, "group_norm: out of memory"); return; }
    j.part = (double *)mem;
    j.coef = (float *)(void *)((char *)mem + part_bytes);
    sdiff__cpu_run(cb, units, 1, sdiff__gn_stats_task, &j);
    const float *gm = gamma ? (const float *)gamma->data : NULL, *bt = beta ? (const float *)beta->data : NULL;
    int64_t cg = c / groups;
    double n = (double)(p * cg);
    for (int64_t b = 0; b < bn; b++)
        for (int64_t g = 0; g < groups; g++) {
            double s = 0, s2 = 0;
            for (int64_t ch = 0; ch < j.n_chunks; ch++) {
                const double *pt = j.part + ((b * j.n_chunks + ch) * groups + g) * 2;
                s += pt[0]; s2 += pt[1];
            }
            double mean = s / n, var = SDIFF__MAX(s2 / n - mean * mean, 0.0), rstd = 1.0 / sqrt(var + (double)eps);
            for (int64_t i = g * cg; i < (g + 1) * cg; i++) {
                double sc = rstd * (gm ? gm[i] : 1.0f);
                j.coef[(b * c + i) * 2] = (float)sc;
                j.coef[(b * c + i) * 2 + 1] = (float)((bt ? bt[i] : 0.0f) - mean * sc);
            }
        }
    sdiff__cpu_run(cb, bn * p, SDIFF__MAX(1, 16384 / c), sdiff__gn_apply_task, &j);
    sdiff__free(mem);
}

SDIFF__PRIVATE void sdiff__ln_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__norm_job *j = (const sdiff__norm_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->x + r * j->c;
        float *y = j->y + r * j->c;
        double s = 0, s2 = 0;
        for (int64_t i = 0; i < j->c; i++) s += x[i];
        double mean = s / (double)j->c;
        for (int64_t i = 0; i < j->c; i++) { double d = x[i] - mean; s2 += d * d; }
        float rstd = (float)(1.0 / sqrt(s2 / (double)j->c + (double)j->eps)), mf = (float)mean;
        for (int64_t i = 0; i < j->c; i++) {
            float v = (x[i] - mf) * rstd;
            y[i] = v * (j->gamma ? j->gamma[i] : 1.0f) + (j->beta ? j->beta[i] : 0.0f);
        }
    }
}

SDIFF__PRIVATE void sdiff__cpu_layer_norm(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x,
                                          const sdiff__tensor *gamma, const sdiff__tensor *beta, float eps) {
    const char *op = "layer_norm";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true)) return;
    if (!sdiff__cpu_same_shape(x, y)) { sdiff__cpu_shape_fail(be, op, "y must be x's shape", y, x); return; }
    int64_t c = sdiff__cols(x);
    if (!sdiff__cpu_ok_vec(be, gamma, c, op, "gamma") || !sdiff__cpu_ok_vec(be, beta, c, op, "beta")) return;
    sdiff__norm_job j;
    memset(&j, 0, sizeof j);
    j.x = (const float *)x->data; j.y = (float *)y->data;
    j.gamma = gamma ? (const float *)gamma->data : NULL;
    j.beta = beta ? (const float *)beta->data : NULL;
    j.c = c; j.rows = sdiff__rows(x); j.eps = eps;
    sdiff__cpu_run(SDIFF__CPU(be), j.rows, SDIFF__MAX(1, 8192 / c), sdiff__ln_task, &j);
}

/* --- elementwise -------------------------------------------------------- */
typedef struct sdiff__ew_job {
    float *y;
    const float *a, *b;
    int64_t c, cb, rows_per_b;   /* column counts; add: rows per batch item      */
    int mode;                    /* add: 0 full, 1 [C], 2 [B, C]                */
    sdiff__act act;
    const sdiff__gemm_isa *isa;
} sdiff__ew_job;

SDIFF__PRIVATE void sdiff__cpu_geglu_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *x = j->a + r * 2 * j->c;
        float *y = j->y + r * j->c;
        j->isa->act(y, x + j->c, j->c, SDIFF__ACT_GELU, x);
    }
}
SDIFF__PRIVATE void sdiff__cpu_geglu(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x) {
    const char *op = "geglu";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true)) return;
    int64_t n = sdiff__cols(y);
    if (sdiff__cols(x) != 2 * n || sdiff__rows(x) != sdiff__rows(y)) {
        sdiff__cpu_shape_fail(be, op, "x must be [M, 2N] for y [M, N]", x, y);
        return;
    }
    sdiff__ew_job j = {(float *)y->data, (const float *)x->data, NULL, n, 0, 0, 0, SDIFF__ACT_NONE, SDIFF__CPU(be)->isa};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__rows(y), SDIFF__MAX(1, 4096 / n), sdiff__cpu_geglu_task, &j);
}

SDIFF__PRIVATE void sdiff__cpu_add_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        const float *a = j->a + r * j->c;
        const float *b = j->mode == 0 ? j->b + r * j->c : j->mode == 1 ? j->b : j->b + r / j->rows_per_b * j->c;
        float *y = j->y + r * j->c;
        for (int64_t i = 0; i < j->c; i++) y[i] = a[i] + b[i];
    }
}
SDIFF__PRIVATE void sdiff__cpu_add(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a,
                                   const sdiff__tensor *b) {
    const char *op = "add";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, a, op, "a", true) ||
        !sdiff__cpu_ok(be, b, op, "b", true))
        return;
    if (!sdiff__cpu_same_shape(a, y)) { sdiff__cpu_shape_fail(be, op, "y must be a's shape", y, a); return; }
    int64_t c = sdiff__cols(a), rows = sdiff__rows(a);
    sdiff__ew_job j = {(float *)y->data, (const float *)a->data, (const float *)b->data, c, 0, 1, 0, SDIFF__ACT_NONE,
                       SDIFF__CPU(be)->isa};
    if (sdiff__cpu_same_shape(a, b)) j.mode = 0;
    else if (b->nd == 1 && b->ne[0] == c) j.mode = 1;
    else if (b->nd == 2 && b->ne[0] == a->ne[0] && b->ne[1] == c && a->nd >= 2) {
        j.mode = 2;
        j.rows_per_b = rows / a->ne[0];
    } else {
        sdiff__cpu_shape_fail(be, op, "b must be a's shape, [C] or [B, C]", a, b);
        return;
    }
    sdiff__cpu_run(SDIFF__CPU(be), rows, SDIFF__MAX(1, 16384 / c), sdiff__cpu_add_task, &j);
}

SDIFF__PRIVATE void sdiff__cpu_act_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;
    SDIFF__UNUSED(thread);
    j->isa->act(j->y + begin, j->a + begin, end - begin, j->act, NULL);
}
SDIFF__PRIVATE void sdiff__cpu_activate(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x, sdiff__act act) {
    const char *op = "activate";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true)) return;
    if (sdiff__numel(x) != sdiff__numel(y)) { sdiff__cpu_shape_fail(be, op, "y must be x's size", y, x); return; }
    if (act < SDIFF__ACT_NONE || act > SDIFF__ACT_QUICK_GELU) {
        sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "activate: unknown activation %d", (int)act);
        return;
    }
    sdiff__ew_job j = {(float *)y->data, (const float *)x->data, NULL, 0, 0, 0, 0, act, SDIFF__CPU(be)->isa};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__numel(x), 8192, sdiff__cpu_act_task, &j);
}

/* PyTorch's "nearest" source index: floor(dst * (in / out)) with the scale
   in float, clamped. */
SDIFF__PRIVATE int64_t sdiff__cpu_nearest(int64_t dst, int64_t in, int64_t out) {
    if (out == 2 * in) return dst >> 1;
    int64_t s = (int64_t)floorf((float)dst * ((float)in / (float)out));
    return SDIFF__MIN(s, in - 1);
}
typedef struct sdiff__upsample_job {
    float *y;
    const float *x;
    int64_t h, w, c, ho, wo;
} sdiff__upsample_job;
SDIFF__PRIVATE void sdiff__cpu_upsample_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__upsample_job *j = (const sdiff__upsample_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {                  /* r = b * Ho + oy */
        int64_t b = r / j->ho, iy = sdiff__cpu_nearest(r % j->ho, j->h, j->ho);
        const float *x = j->x + (b * j->h + iy) * j->w * j->c;
        float *y = j->y + r * j->wo * j->c;
        for (int64_t ox = 0; ox < j->wo; ox++)
            memcpy(y + ox * j->c, x + sdiff__cpu_nearest(ox, j->w, j->wo) * j->c, (size_t)j->c * 4);
    }
}
SDIFF__PRIVATE void sdiff__cpu_upsample(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *x) {
    const char *op = "upsample";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, x, op, "x", true)) return;
    if (x->nd != 4 || y->nd != 4 || y->ne[0] != x->ne[0] || y->ne[3] != x->ne[3]) {
        sdiff__cpu_shape_fail(be, op, "y must be [B, Ho, Wo, C] for x [B, H, W, C]", y, x);
        return;
    }
    sdiff__upsample_job j = {(float *)y->data, (const float *)x->data, x->ne[1], x->ne[2], x->ne[3], y->ne[1], y->ne[2]};
    sdiff__cpu_run(SDIFF__CPU(be), y->ne[0] * y->ne[1], 4, sdiff__cpu_upsample_task, &j);
}

SDIFF__PRIVATE void sdiff__cpu_concat_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__ew_job *j = (const sdiff__ew_job *)arg;   /* c = Ca, cb = Cb */
    SDIFF__UNUSED(thread);
    for (int64_t r = begin; r < end; r++) {
        float *y = j->y + r * (j->c + j->cb);
        memcpy(y, j->a + r * j->c, (size_t)j->c * 4);
        memcpy(y + j->c, j->b + r * j->cb, (size_t)j->cb * 4);
    }
}
SDIFF__PRIVATE void sdiff__cpu_concat(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *a,
                                      const sdiff__tensor *b) {
    const char *op = "concat";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, a, op, "a", true) ||
        !sdiff__cpu_ok(be, b, op, "b", true))
        return;
    bool ok = a->nd == b->nd && a->nd == y->nd && sdiff__cols(y) == sdiff__cols(a) + sdiff__cols(b);
    for (int i = 0; ok && i < a->nd - 1; i++) ok = a->ne[i] == b->ne[i] && a->ne[i] == y->ne[i];
    if (!ok) { sdiff__cpu_shape_fail(be, op, "a and b must agree but in the last dim, y hold both", a, b); return; }
    sdiff__ew_job j = {(float *)y->data, (const float *)a->data, (const float *)b->data, sdiff__cols(a), sdiff__cols(b),
                       0, 0, SDIFF__ACT_NONE, SDIFF__CPU(be)->isa};
    sdiff__cpu_run(SDIFF__CPU(be), sdiff__rows(y), SDIFF__MAX(1, 8192 / sdiff__cols(y)), sdiff__cpu_concat_task, &j);
}

typedef struct sdiff__embed_job {
    float *y;
    const float *table;
    const int32_t *ids;
    int64_t c;
} sdiff__embed_job;
SDIFF__PRIVATE void sdiff__cpu_embed_task(void *arg, int64_t begin, int64_t end, int thread) {
    const sdiff__embed_job *j = (const sdiff__embed_job *)arg;
    SDIFF__UNUSED(thread);
    for (int64_t i = begin; i < end; i++) memcpy(j->y + i * j->c, j->table + (int64_t)j->ids[i] * j->c, (size_t)j->c * 4);
}
SDIFF__PRIVATE void sdiff__cpu_embed(sdiff__backend *be, sdiff__tensor *y, const sdiff__tensor *table,
                                     const int32_t *ids, int n) {
    const char *op = "embed";
    if (be->status != SDIFF_OK) return;
    if (!sdiff__cpu_ok(be, y, op, "y", true) || !sdiff__cpu_ok(be, table, op, "table", true)) return;
    if (!ids || n < 1 || table->nd != 2 || sdiff__rows(y) != n || sdiff__cols(y) != table->ne[1]) {
        sdiff__cpu_shape_fail(be, op, "y must be [n, C] for a [rows, C] table and n ids", y, table);
        return;
    }
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= table->ne[0]) {
            sdiff__be_fail(be, SDIFF_ERR_INVALID_ARG, "embed: id %d at %d is outside the table's %lld rows", (int)ids[i],
                           i, (long long)table->ne[0]);
            return;
        }
    sdiff__embed_job j = {(float *)y->data, (const float *)table->data, ids, table->ne[1]};
    sdiff__cpu_run(SDIFF__CPU(be), n, 64, sdiff__cpu_embed_task, &j);
}

/* --- creation ----------------------------------------------------------- */
SDIFF__PRIVATE void sdiff__cpu_destroy(sdiff__backend *be) {
    if (!be) return;
    sdiff__cpu *cb = SDIFF__CPU(be);
    sdiff__pool_destroy(cb->pool);
    sdiff__cpu_free_aligned(cb->ws);
    sdiff__cpu_free_aligned(cb->scratch);
    sdiff__free(cb);
}

SDIFF__PRIVATE sdiff__backend *sdiff__cpu_backend_create(int n_threads, const sdiff__logger *log) {
    sdiff__cpu *cb = (sdiff__cpu *)sdiff__calloc(1, sizeof *cb);
    if (!cb) return NULL;
    sdiff__backend *be = &cb->be;
    be->name = "cpu";
    be->status = SDIFF_OK;
    be->act_dtype = SDIFF__F32;
    be->weight_dtype = SDIFF__F32;
    be->log = log;
    be->destroy = sdiff__cpu_destroy;
    be->alloc = sdiff__cpu_alloc;
    be->free = sdiff__cpu_free;
    be->upload = sdiff__cpu_upload;
    be->download = sdiff__cpu_download;
    be->linear = sdiff__cpu_linear;
    be->conv2d = sdiff__cpu_conv2d;
    be->group_norm = sdiff__cpu_group_norm;
    be->layer_norm = sdiff__cpu_layer_norm;
    be->attention = sdiff__cpu_attention;
    be->geglu = sdiff__cpu_geglu;
    be->add = sdiff__cpu_add;
    be->activate = sdiff__cpu_activate;
    be->upsample = sdiff__cpu_upsample;
    be->concat = sdiff__cpu_concat;
    be->embed = sdiff__cpu_embed;
    for (int i = 0; i < SDIFF__GEMM_N_ISAS && !cb->isa; i++)
        if (sdiff__gemm_isa_supported(&sdiff__gemm_isas[i])) cb->isa = &sdiff__gemm_isas[i];
    cb->pool = sdiff__pool_create(n_threads);
    if (!cb->pool) sdiff__log(log, SDIFF_LOG_WARN, "cpu", "could not start worker threads; running on one thread");
    cb->n_threads = sdiff__pool_threads(cb->pool);
    sdiff__log(log, SDIFF_LOG_INFO, "cpu", "%d threads, %s kernels (%dx%d tiles)", cb->n_threads, cb->isa->name,
               cb->isa->mr, cb->isa->nr);
    return be;
}
