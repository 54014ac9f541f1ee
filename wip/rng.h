/* >>rng ====================================================================
   Random numbers: torch.randn on the CPU generator

   torch.randn(shape, generator=torch.Generator().manual_seed(seed)) with
   dtype float32 on the CPU, reproduced bit for bit, so a seed gives the
   image diffusers gives. The pieces, as PyTorch has them:

   - The engine is mt19937 (ATen's at::mt19937, CPUGeneratorImpl), seeded
     with the low 32 bits of the seed by the standard initialisation.
     random() is one 32-bit output; random64() is two, the first one in the
     high half.
   - A float uniform is (random() & 0xFFFFFF) * 2^-24; a double uniform is
     (random64() & (2^53 - 1)) * 2^-53 (TransformationHelper uniform_real).
   - randn of a contiguous float tensor with numel >= 16 (ATen normal_kernel):
     first ALL numel uniforms are drawn into the output, then every full block
     of 16 is turned into normals by Box-Muller: for j < 8,
     u1 = 1 - d[j], u2 = d[j+8], r = sqrt(-2 ln u1), theta = 2 pi u2,
     d[j] = r cos theta, d[j+8] = r sin theta. When numel % 16 != 0, 16 NEW
     uniforms are drawn into the last 16 slots (overwriting part of the last
     full block) and those 16 are transformed again.
   - numel < 16: element by element, at::normal_distribution<double>: two
     double uniforms u1, u2 (random64 each), r = sqrt(-2 log1p(-u2)),
     theta = 2 pi u1, return r cos theta and keep r sin theta in the
     generator; the next scalar draw returns the kept value first. The kept
     value survives across calls (and across >= 16 draws, which never touch
     it) until manual_seed; we keep it in the struct the same way.

   Which Box-Muller kernel: ATen compiles normal_kernel per CPU capability
   and registers NO AVX512 version (DistributionKernels.cpp,
   REGISTER_NO_AVX512_DISPATCH(normal_stub)), so on every x86-64 CPU with
   AVX2 -- AVX512 machines included -- torch runs normal_fill_AVX2, which
   computes in float32 with avx_mathfun's Cephes polynomials (log256_ps,
   sincos256_ps); the portable kernel (normal_fill_16: float log and sqrt,
   then theta, cos and sin in double, the product rounded to float) runs only
   on CPUs without AVX2 (ARM: Apple silicon, Graviton, Grace) or with
   ATEN_CPU_CAPABILITY=default. The two differ in the last bit or two of
   about 63% of the values (largest absolute difference 1.3e-6, relative
   norm 1.4e-7 over 65536 values: tests/test_sched.c's rng_paths_agree); the
   AVX2 one is the default here (SDIFF__RNG_X86), SDIFF__RNG_PORTABLE selects
   the other (for images made with PyTorch on ARM). We evaluate the
   same Cephes polynomials with scalar float operations in the same order,
   so the result does not depend on the CPU sdiff runs on.
   PyTorch's x86 wheels are built by GCC, which contracts the intrinsics'
   multiply-then-add pairs into FMAs (its default -ffp-contract=fast with
   -mfma); SDIFF__RNG_X86 does the same with explicit fmaf() at exactly the
   places GCC fuses. Checked against torch 2.11.0+cu130 on an AVX512 Xeon
   (torch's CPU capability AVX512, normal_stub running the AVX2 kernel):
   SDIFF__RNG_X86 matched every one of 19,600 values bit for bit (sizes 1 to
   16384, seeds up to 2^32 + 5, five calls in a row on one generator; the
   fixture tools/fixtures_sched.py writes keeps the same cases with 2048 for
   16384); SDIFF__RNG_X86_NOFMA differed in
   the last bit of about 1% of them, SDIFF__RNG_PORTABLE in about 60%.

   The CUDA generator (Philox) is a different stream; it is not provided.
   ========================================================================= */
#define SDIFF__MT_N 624

typedef enum sdiff__rng_path {
    SDIFF__RNG_X86 = 0,      /* x86-64 PyTorch (normal_fill_AVX2), default  */
    SDIFF__RNG_X86_NOFMA,    /* the same kernel built without FMA fusion     */
    SDIFF__RNG_PORTABLE      /* non-AVX2 PyTorch (normal_fill_16)            */
} sdiff__rng_path;

typedef struct sdiff__rng {
    uint32_t mt[SDIFF__MT_N];
    int next;                /* index of the next word; SDIFF__MT_N = regenerate */
    bool has_cached_normal;  /* at::normal_distribution<double>'s kept value   */
    double cached_normal;
    sdiff__rng_path path;
} sdiff__rng;

/* torch.Generator().manual_seed(seed): mt19937 seeded with (uint32)seed, the
   kept normal dropped. Keeps the chosen path. */
SDIFF__PRIVATE void sdiff__rng_seed(sdiff__rng *r, uint64_t seed) {
    r->mt[0] = (uint32_t)seed;
    for (int i = 1; i < SDIFF__MT_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->next = SDIFF__MT_N;
    r->has_cached_normal = false;
    r->cached_normal = 0.0;
}

/* One tempered 32-bit output (generator->random()). */
SDIFF__PRIVATE uint32_t sdiff__rng_u32(sdiff__rng *r) {
    if (r->next >= SDIFF__MT_N) {
        for (int i = 0; i < SDIFF__MT_N; i++) {
            uint32_t y = (r->mt[i] & 0x80000000u) | (r->mt[(i + 1) % SDIFF__MT_N] & 0x7fffffffu);
            r->mt[i] = r->mt[(i + 397) % SDIFF__MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        r->next = 0;
    }
    uint32_t y = r->mt[r->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* generator->random64(): the first draw is the high half. */
SDIFF__PRIVATE uint64_t sdiff__rng_u64(sdiff__rng *r) {
    uint64_t hi = sdiff__rng_u32(r);
    uint64_t lo = sdiff__rng_u32(r);
    return (hi << 32) | lo;
}

/* uniform_real_distribution<float>(0, 1): 24 random bits times 2^-24. */
SDIFF__PRIVATE float sdiff__rng_uniform_f32(sdiff__rng *r) {
    return (float)(sdiff__rng_u32(r) & 0xFFFFFFu) * (1.0f / 16777216.0f);
}
/* uniform_real_distribution<double>(0, 1): 53 random bits times 2^-53. */
SDIFF__PRIVATE double sdiff__rng_uniform_f64(sdiff__rng *r) {
    return (double)(sdiff__rng_u64(r) & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

SDIFF__PRIVATE float sdiff__rng_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
SDIFF__PRIVATE uint32_t sdiff__rng_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* a*b + c, rounded once (fused) or twice, as the compiled kernel does it. */
SDIFF__PRIVATE float sdiff__rng_madd(float a, float b, float c, bool fused) {
    if (fused) return fmaf(a, b, c);
    float p = a * b;
    return p + c;
}

/* avx_mathfun's log256_ps for one lane (x > 0): Cephes logf, float ops in
   the kernel's order. */
SDIFF__PRIVATE float sdiff__rng_cephes_log(float x, bool fused) {
    const float p[9] = {7.0376836292E-2f, -1.1514610310E-1f, 1.1676998740E-1f, -1.2420140846E-1f,
                        1.4249322787E-1f, -1.6668057665E-1f, 2.0000714765E-1f, -2.4999993993E-1f,
                        3.3333331174E-1f};
    const float q1 = -2.12194440e-4f, q2 = 0.693359375f, sqrthf = 0.707106781186547524f;
    if (x < sdiff__rng_bits_f32(0x00800000u)) x = sdiff__rng_bits_f32(0x00800000u); /* cut denormals */
    uint32_t bits = sdiff__rng_f32_bits(x);
    int32_t e_int = (int32_t)(bits >> 23) - 0x7f;
    x = sdiff__rng_bits_f32((bits & ~0x7f800000u) | sdiff__rng_f32_bits(0.5f)); /* mantissa in [0.5, 1) */
    float e = (float)e_int + 1.0f;
    bool below = x < sqrthf;
    float tmp = below ? x : 0.0f;
    x = x - 1.0f;
    e = e - (below ? 1.0f : 0.0f);
    x = x + tmp;
    float z = x * x;
    float y = p[0];
    for (int i = 1; i < 9; i++) y = sdiff__rng_madd(y, x, p[i], fused);
    y = y * x;
    /* y = y*z + e*q1: GCC fuses the first product into the add */
    if (fused) y = fmaf(y, z, e * q1);
    else { y = y * z; float t = e * q1; y = y + t; }
    /* y = y - z*0.5 */
    if (fused) y = fmaf(-z, 0.5f, y);
    else { float t = z * 0.5f; y = y - t; }
    x = x + y;
    x = sdiff__rng_madd(e, q2, x, fused);
    return x;
}

/* avx_mathfun's sincos256_ps for one lane: Cephes sinf/cosf with the
   three-part pi/4 reduction, float ops in the kernel's order. */
SDIFF__PRIVATE void sdiff__rng_cephes_sincos(float x, float *s, float *c, bool fused) {
    const float dp1 = -0.78515625f, dp2 = -2.4187564849853515625e-4f, dp3 = -3.77489497744594108e-8f;
    const float sp0 = -1.9515295891E-4f, sp1 = 8.3321608736E-3f, sp2 = -1.6666654611E-1f;
    const float cp0 = 2.443315711809948E-005f, cp1 = -1.388731625493765E-003f, cp2 = 4.166664568298827E-002f;
    const float fopi = 1.27323954473516f;
    uint32_t sign_sin = sdiff__rng_f32_bits(x) & 0x80000000u;
    x = fabsf(x);
    float y = x * fopi;
    int32_t j = (int32_t)y;           /* cvttps: truncation */
    j = (j + 1) & ~1;
    y = (float)j;
    uint32_t swap_sin = ((uint32_t)j & 4u) << 29;
    bool poly_sin = (j & 2) == 0;      /* the mask: 1st polynomial is the cosine one */
    x = sdiff__rng_madd(y, dp1, x, fused);
    x = sdiff__rng_madd(y, dp2, x, fused);
    x = sdiff__rng_madd(y, dp3, x, fused);
    uint32_t sign_cos = (~(uint32_t)(j - 2) & 4u) << 29;
    sign_sin ^= swap_sin;
    float z = x * x;
    float yc = cp0;
    yc = sdiff__rng_madd(yc, z, cp1, fused);
    yc = sdiff__rng_madd(yc, z, cp2, fused);
    yc = yc * z;
    /* yc = yc*z - z*0.5: GCC fuses the first product */
    if (fused) yc = fmaf(yc, z, -(z * 0.5f));
    else { yc = yc * z; float t = z * 0.5f; yc = yc - t; }
    yc = yc + 1.0f;
    float ys = sp0;
    ys = sdiff__rng_madd(ys, z, sp1, fused);
    ys = sdiff__rng_madd(ys, z, sp2, fused);
    ys = ys * z;
    ys = sdiff__rng_madd(ys, x, x, fused);
    /* select through the same adds and subtractions as the kernel */
    float ysin2 = poly_sin ? ys : 0.0f, ysin1 = poly_sin ? 0.0f : yc;
    ys = ys - ysin2;
    yc = yc - ysin1;
    float sv = ysin1 + ysin2, cv = yc + ys;
    *s = sdiff__rng_bits_f32(sdiff__rng_f32_bits(sv) ^ sign_sin);
    *c = sdiff__rng_bits_f32(sdiff__rng_f32_bits(cv) ^ sign_cos);
}

/* Box-Muller over 16 uniforms in place (normal_fill_16 / normal_fill_16_AVX2). */
SDIFF__PRIVATE void sdiff__rng_fill16(float *d, sdiff__rng_path path) {
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - d[j]; /* [0, 1) -> (0, 1] for the log */
        float u2 = d[j + 8];
        if (path == SDIFF__RNG_PORTABLE) {
            float radius = sqrtf(-2.0f * logf(u1));
            double theta = 2.0 * 3.14159265358979323846 * (double)u2;
            d[j] = (float)((double)radius * cos(theta));
            d[j + 8] = (float)((double)radius * sin(theta));
        } else {
            bool fused = path == SDIFF__RNG_X86;
            float radius = sqrtf(-2.0f * sdiff__rng_cephes_log(u1, fused));
            float theta = 6.28318530717958647692f * u2; /* (float)(2 pi) */
            float s, c;
            sdiff__rng_cephes_sincos(theta, &s, &c, fused);
            d[j] = radius * c;      /* fmadd(n, std = 1, mean = 0) == n */
            d[j + 8] = radius * s;
        }
    }
}

/* at::normal_distribution<double>(0, 1) for one element (numel < 16). */
SDIFF__PRIVATE double sdiff__rng_normal_f64(sdiff__rng *r) {
    if (r->has_cached_normal) {
        r->has_cached_normal = false;
        return r->cached_normal;
    }
    double u1 = sdiff__rng_uniform_f64(r);
    double u2 = sdiff__rng_uniform_f64(r);
    double radius = sqrt(-2.0 * log1p(-u2));
    double theta = 2.0 * 3.14159265358979323846 * u1;
    r->cached_normal = radius * sin(theta);
    r->has_cached_normal = true;
    return radius * cos(theta);
}

/* torch.randn(n elements, generator=r, dtype=float32) on the CPU, continuing
   the generator's stream. A tensor of any shape is one call with n = numel
   (diffusers' randn_tensor draws the whole batch in one call). */
SDIFF__PRIVATE void sdiff__rng_randn(sdiff__rng *r, float *out, size_t n) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = (float)sdiff__rng_normal_f64(r);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = sdiff__rng_uniform_f32(r);
    for (size_t i = 0; i + 16 <= n; i += 16) sdiff__rng_fill16(out + i, r->path);
    if (n % 16 != 0) { /* recompute the last 16 from fresh uniforms */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = sdiff__rng_uniform_f32(r);
        sdiff__rng_fill16(tail, r->path);
    }
}
