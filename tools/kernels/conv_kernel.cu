// sdiff conv2d forward: implicit GEMM on tensor cores (mma.sync m16n8k16), NHWC fp16 in and out,
// fp32 accumulation, bias and residual fused into the epilogue.
// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).
//
// As a GEMM: y[m, n] = sum_k A[m, k] * w[n, k], with
//   m = (b, oy, ox) over M = B*Ho*Wo output pixels (y is [M, Co], row-major = NHWC),
//   n over the Co output channels,
//   k = (kh, kw, c) over K = KH*KW*C (w is [Co, KH, KW, C]: one output channel's K values are
//   contiguous, so w is already the GEMM's k-major B operand),
//   A[m, (kh, kw, c)] = x[b, oy*stride - pad + kh, ox*stride - pad + kw, c], 0 outside the image.
// A is never materialised (that is the point: im2col would write and re-read KH*KW copies of x):
// each K tile (CONV_BK = 64 by default) lies inside one tap (kh, kw) because C % CONV_BK == 0, so
// a tile row is CONV_BK contiguous channels of one input pixel, or zeros (cp.async with src-size
// 0) where the tap falls in the padding.
// Epilogue, rounding as PyTorch's fp16 conv followed by a separate residual add:
//   y = fp16(fp16(acc + bias) + res)   (bias and res optional; res may be y itself).
//
// Requirements (checked by the host): C % CONV_BK == 0; x and w 16-byte aligned; M*Co, B*H*W*C and
// Co*K below 2^31. vec = 1 when Co % 8 == 0 and y, res are 16-byte aligned (16-byte stores);
// otherwise the epilogue goes element by element.
//
// Tiles (-D overrides; the host helper sdiff__cu_conv2d_launch_dims mirrors the table):
// CONV_BM x CONV_BN outputs per block, K in steps of CONV_BK, CONV_STAGES-deep cp.async pipeline,
// CONV_WM x CONV_WN warps each owning a (BM/WM) x (BN/WN) sub-tile.
// Shared memory (dynamic): CONV_STAGES stages of an A tile [BM][BK] and a B tile [BN][BK] (fp16).
// With 128-byte rows (BK 64) chunk c (16 bytes) of row r is stored at chunk c ^ (r & 7), with
// 64-byte rows (BK 32) at c ^ ((r >> 1) & 3): the 8 rows an ldmatrix reads at one logical chunk
// then hit 8 different 16-byte bank groups (unswizzled they would share banks: an 8- or 4-way
// conflict). The epilogue reuses the same memory as a [BM][BN+8] fp16 tile.
// Measured on an H100 (tools/PERF.md): BK 64 with 3 stages beats BK 32 with 4 or 6 stages by
// 3-17% on every SD shape, and BK 64 with 4 stages (one block of 128x128 per SM) loses.

#include "mma.cuh"

// The library's tile variants, -DCONV_TILE=t (single -D options per variant; the host's table in
// sdiff__cu_conv2d_launch_dims mirrors this one). Any CONV_* given explicitly wins (benches sweep).
// Tiles 0-2: mma.sync, any sm_80+ GPU. Tiles 3-5 (sm_90a only): wgmma, two warpgroups of 64 rows
// each, one m64nBNk16 instruction per 16 of K (a warp's accumulators = 16 rows x BN, the same
// fragment layout as WM = 8 warps of mma.sync tiles, so the epilogue is shared).
#if !defined(CONV_TILE) || CONV_TILE == 0       // 128 x 128, 8 warps of 64 x 32: large M and Co
#define CONV_T_BM 128
#define CONV_T_BN 128
#define CONV_T_WM 2
#define CONV_T_WN 4
#elif CONV_TILE == 1                            // 128 x 64, 4 warps of 64 x 32: Co = 64*k, not 128*k
#define CONV_T_BM 128
#define CONV_T_BN 64
#define CONV_T_WM 2
#define CONV_T_WN 2
#elif CONV_TILE == 2                            // 64 x 64, 4 warps of 32 x 32: few output tiles
#define CONV_T_BM 64
#define CONV_T_BN 64
#define CONV_T_WM 2
#define CONV_T_WN 2
#elif CONV_TILE >= 3 && CONV_TILE <= 5          // wgmma 128 x 256 (Co 256*k), x 160 (Co 320), x 128
#define CONV_WGMMA 1
#define CONV_T_BM 128
#define CONV_T_BN (CONV_TILE == 3 ? 256 : CONV_TILE == 4 ? 160 : 128)
#define CONV_T_WM 8
#define CONV_T_WN 1
#define CONV_T_STAGES 4
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "CONV_TILE 3-5 (wgmma) need --gpu-architecture=sm_90a"
#endif
#else
#error "CONV_TILE must be 0..5"
#endif
#ifndef CONV_WGMMA
#define CONV_WGMMA 0
#endif
#ifndef CONV_T_STAGES
#define CONV_T_STAGES 3
#endif
#ifndef CONV_BM
#define CONV_BM CONV_T_BM
#endif
#ifndef CONV_BN
#define CONV_BN CONV_T_BN
#endif
#ifndef CONV_WM
#define CONV_WM CONV_T_WM
#endif
#ifndef CONV_WN
#define CONV_WN CONV_T_WN
#endif
#ifndef CONV_STAGES
#define CONV_STAGES CONV_T_STAGES
#endif
#ifndef CONV_MINB                      // blocks per SM the registers must allow
#define CONV_MINB (CONV_WGMMA ? 1 : CONV_WM * CONV_WN == 8 ? 2 : 3)
#endif
#ifndef CONV_BK
#define CONV_BK 64                     // K per tile: 64 or 32 (the host requires C % 64 == 0)
#endif
#define CONV_CPR (CONV_BK / 8)         // 16-byte chunks per tile row
#define CONV_NT (CONV_WM * CONV_WN * 32)
#define CONV_WTM (CONV_BM / CONV_WM)   // warp tile rows
#define CONV_WTN (CONV_BN / CONV_WN)   // warp tile columns
#define CONV_MT (CONV_WTM / 16)        // 16-row mma tiles per warp
#define CONV_NTL (CONV_WTN / 8)        // 8-column mma tiles per warp
#define CONV_A_BYTES (CONV_BM * CONV_BK * 2)
#define CONV_ROW_BYTES (CONV_BK * 2)
#define CONV_STAGE_BYTES ((CONV_BM + CONV_BN) * CONV_BK * 2)
#define CONV_EPI_STR (CONV_BN + 8)     // halves; +8 keeps the epilogue's row writes conflict-light
#define CONV_PIPE_BYTES (CONV_STAGES * CONV_STAGE_BYTES)
#define CONV_EPI_BYTES (CONV_BM * CONV_EPI_STR * 2)
#define CONV_SMEM (CONV_PIPE_BYTES > CONV_EPI_BYTES ? CONV_PIPE_BYTES : CONV_EPI_BYTES)
#define CONV_ROWS_PER_PASS (CONV_NT / CONV_CPR)   // a pass copies one tile row per CONV_CPR threads
#define CONV_A_ITERS (CONV_BM / CONV_ROWS_PER_PASS)
#define CONV_B_ITERS (CONV_BN / CONV_ROWS_PER_PASS)

static_assert(CONV_MT >= 1 && CONV_WTM % 16 == 0, "warp tile rows must be a multiple of 16");
static_assert(CONV_NTL % 2 == 0, "warp tile columns must be a multiple of 16 (B is loaded 16 columns at a time)");
static_assert(CONV_BM % CONV_ROWS_PER_PASS == 0 && CONV_BN % CONV_ROWS_PER_PASS == 0,
              "tile rows must be a multiple of threads/4");
static_assert(CONV_STAGES >= 2, "at least two pipeline stages");
static_assert(CONV_BK == 32 || CONV_BK == 64, "K tiles of 32 or 64");
static_assert(!CONV_WGMMA || (CONV_BK == 64 && CONV_STAGES >= 3 && CONV_WM * 16 == CONV_BM && CONV_WN == 1),
              "wgmma tiles: 128-byte swizzled rows (K tiles of 64), one 64-row warpgroup per 4 warps, >= 3 stages");

// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches its table.
extern "C" __constant__ int sdiff_conv2d_cfg[4] = {CONV_BM, CONV_BN, CONV_NT, CONV_SMEM};

// Byte offset of 16-byte chunk `chunk` of row `row` in a [rows][CONV_BK] fp16 tile: 64-byte rows
// swizzle by (row >> 1) & 3, 128-byte rows by row & 7 (either way the 8 rows of one ldmatrix
// read land in 8 different 16-byte bank groups).
static __device__ __forceinline__ u32 conv_swz(int row, int chunk) {
#if CONV_BK == 32
    return (u32)(row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4));
#else
    return (u32)(row * 128 + ((chunk ^ (row & 7)) << 4));
#endif
}

// Launch: grid (ceil(M/BM), ceil(Co/BN), 1), block (CONV_NT, 1, 1), dynamic shared memory
// sdiff_conv2d_cfg[3] bytes (above 48 KB: raise the function's attribute first).
extern "C" __global__ void __launch_bounds__(CONV_NT, CONV_MINB)
sdiff_conv2d_fwd(const sd_half *__restrict__ x, const sd_half *__restrict__ w, const sd_half *__restrict__ bias,
                 const sd_half *res, sd_half *y, int B, int H, int W, int C, int KH, int KW, int Ho, int Wo,
                 int stride, int pad, int Co, int vec) {
    pdl_begin();
    extern __shared__ __align__(1024) unsigned char smem[]; // 1024: the 128-byte swizzle atom (wgmma)
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int M = B * Ho * Wo, K = KH * KW * C, KT = K / CONV_BK;
    const int m0 = blockIdx.x * CONV_BM, n0 = blockIdx.y * CONV_BN;
    const u32 sbase = smem_addr(smem);
    const int chunk = tid % CONV_CPR, trow = tid / CONV_CPR;

    // ---- The rows this thread copies: for A, the top-left input pixel of each output pixel's
    // window (iy0, ix0) and its image's offset; rows past M get iy0 far outside (always zeros).
    int a_iy[CONV_A_ITERS], a_ix[CONV_A_ITERS];
    long long a_off[CONV_A_ITERS];
#pragma unroll
    for (int i = 0; i < CONV_A_ITERS; ++i) {
        const int m = m0 + trow + i * CONV_ROWS_PER_PASS;
        if (m < M) {
            const int hw = Ho * Wo, b = m / hw, rem = m - b * hw, oy = rem / Wo, ox = rem - oy * Wo;
            a_iy[i] = oy * stride - pad;
            a_ix[i] = ox * stride - pad;
            a_off[i] = (long long)b * H * W * C + chunk * 8;
        } else {
            a_iy[i] = -(1 << 30);
            a_ix[i] = 0;
            a_off[i] = 0;
        }
    }
    const sd_half *b_src[CONV_B_ITERS];
    bool b_ok[CONV_B_ITERS];
#pragma unroll
    for (int i = 0; i < CONV_B_ITERS; ++i) {
        const int n = n0 + trow + i * CONV_ROWS_PER_PASS;
        b_ok[i] = n < Co;
        b_src[i] = w + (long long)(b_ok[i] ? n : 0) * K + chunk * 8;
    }

    // ---- The load cursor: the next K tile to copy is at channel ld_c of tap (ld_kh, ld_kw).
    int ld_k = 0, ld_c = 0, ld_kh = 0, ld_kw = 0;
    auto load_tile = [&](int stage) {
        const u32 as = sbase + stage * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;
#pragma unroll
        for (int i = 0; i < CONV_A_ITERS; ++i) {
            const int iy = a_iy[i] + ld_kh, ix = a_ix[i] + ld_kw;
            const bool ok = (unsigned)iy < (unsigned)H && (unsigned)ix < (unsigned)W;
            const sd_half *src = ok ? x + a_off[i] + ((long long)iy * W + ix) * C + ld_c : x;
            cp_async16(as + conv_swz(trow + i * CONV_ROWS_PER_PASS, chunk), src, ok ? 16 : 0);
        }
#pragma unroll
        for (int i = 0; i < CONV_B_ITERS; ++i)
            cp_async16(bs + conv_swz(trow + i * CONV_ROWS_PER_PASS, chunk), b_ok[i] ? b_src[i] + ld_k : w,
                       b_ok[i] ? 16 : 0);
        ld_k += CONV_BK;
        ld_c += CONV_BK;
        if (ld_c == C) {
            ld_c = 0;
            if (++ld_kw == KW) { ld_kw = 0; ++ld_kh; }
        }
    };

    float acc[CONV_MT][CONV_NTL][4];
#pragma unroll
    for (int i = 0; i < CONV_MT; ++i)
#pragma unroll
        for (int j = 0; j < CONV_NTL; ++j)
#pragma unroll
            for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

#if CONV_WGMMA
    // wgmma main loop. wgmma runs asynchronously: each warpgroup keeps the previous K tile's
    // instructions in flight while it issues the next, so a stage is free only two tiles later.
    // Prefetch depth STAGES - 2: at the top of iteration kt every warpgroup has waited for its
    // tile kt-2 wgmmas (wait<1> at the end of kt-1), so after the barrier the stage of tile kt-2
    // is refilled with tile kt + STAGES - 2.
#pragma unroll
    for (int s = 0; s < CONV_STAGES - 2; ++s) {
        if (s < KT) load_tile(s);
        cp_commit();
    }
    if (sbase & 1023) __trap(); // the descriptors' swizzle assumes 1024-byte aligned tiles
    float *d = &acc[0][0][0];
    const u32 a_wg = (u32)((warp >> 2) * 64 * CONV_ROW_BYTES); // this warpgroup's 64 rows of A
    for (int kt = 0; kt < KT; ++kt) {
        cp_wait<CONV_STAGES - 3>();
        fence_proxy_async(); // this thread's copies of tile kt, visible to wgmma
        __syncthreads();
        if (kt + CONV_STAGES - 2 < KT) load_tile((kt + CONV_STAGES - 2) % CONV_STAGES);
        cp_commit();
        const u32 as = sbase + (kt % CONV_STAGES) * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;
        wgmma_pin<CONV_NTL * 4>(d);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < CONV_BK / 16; ++ks) {
            const u64 da = wgmma_desc_sw128(as + a_wg + ks * 32), db = wgmma_desc_sw128(bs + ks * 32);
            wgmma_ss<CONV_BN>(d, da, db, 1);
        }
        wgmma_commit();
        wgmma_wait<1>();
        wgmma_pin<CONV_NTL * 4>(d);
    }
    wgmma_wait<0>();
    wgmma_pin<CONV_NTL * 4>(d);
    const int wm = warp, wn = 0;
#else
#pragma unroll
    for (int s = 0; s < CONV_STAGES - 1; ++s) {
        if (s < KT) load_tile(s);
        cp_commit(); // always: the wait below counts groups
    }
    const int wm = warp / CONV_WN, wn = warp - (warp / CONV_WN) * CONV_WN;
    const int a_row = wm * CONV_WTM + (lane & 7) + ((lane >> 3) & 1) * 8, a_half = lane >> 4;
    const int b_row = wn * CONV_WTN + (lane & 7) + (lane >> 4) * 8, b_half = (lane >> 3) & 1;

    // One barrier per K tile: after it, tile kt has landed for every thread and every warp is done
    // with tile kt-1, whose stage is the one refilled (with tile kt + STAGES - 1) right away.
    for (int kt = 0; kt < KT; ++kt) {
        cp_wait<CONV_STAGES - 2>();
        __syncthreads();
        if (kt + CONV_STAGES - 1 < KT) load_tile((kt + CONV_STAGES - 1) % CONV_STAGES);
        cp_commit();
        const u32 as = sbase + (kt % CONV_STAGES) * CONV_STAGE_BYTES, bs = as + CONV_A_BYTES;
#pragma unroll
        for (int ks = 0; ks < CONV_BK / 16; ++ks) {
            // A fragments: ldmatrix.x4 matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7,
            // k 8-15), (rows 8-15, k 8-15) = a0..a3 of the m16n8k16 A operand.
            u32 af[CONV_MT][4];
#pragma unroll
            for (int mt = 0; mt < CONV_MT; ++mt)
                ldsm_x4(as + conv_swz(a_row + mt * 16, ks * 2 + a_half), af[mt][0], af[mt][1], af[mt][2], af[mt][3]);
            // B fragments, 16 columns at a time: matrices (n 0-7, k 0-7), (n 0-7, k 8-15),
            // (n 8-15, k 0-7), (n 8-15, k 8-15) = b0, b1 of column tile 2p and of 2p+1.
            u32 bf[CONV_NTL][2];
#pragma unroll
            for (int p = 0; p < CONV_NTL / 2; ++p)
                ldsm_x4(bs + conv_swz(b_row + p * 16, ks * 2 + b_half), bf[2 * p][0], bf[2 * p][1], bf[2 * p + 1][0],
                        bf[2 * p + 1][1]);
#pragma unroll
            for (int mt = 0; mt < CONV_MT; ++mt)
#pragma unroll
                for (int nt = 0; nt < CONV_NTL; ++nt) mma16816(acc[mt][nt], af[mt], bf[nt][0], bf[nt][1]);
        }
    }
#endif
    cp_wait<0>();
    __syncthreads(); // the epilogue tile overwrites the pipeline stages

    // ---- Epilogue 1: acc + bias, rounded to fp16, into the [BM][BN+8] tile. Fragment layout:
    // acc[mt][nt] = rows g and g+8 of m-tile mt, columns 2*t4 and 2*t4+1 of n-tile nt.
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int nt = 0; nt < CONV_NTL; ++nt) {
        const int col = wn * CONV_WTN + nt * 8 + 2 * t4, n = n0 + col;
        const float b0 = bias && n < Co ? half_to_float(bias[n]) : 0.f;
        const float b1 = bias && n + 1 < Co ? half_to_float(bias[n + 1]) : 0.f;
#pragma unroll
        for (int mt = 0; mt < CONV_MT; ++mt) {
            const int row = wm * CONV_WTM + mt * 16 + g;
            const u32 a0 = sbase + (row * CONV_EPI_STR + col) * 2, a1 = a0 + 8 * CONV_EPI_STR * 2;
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a0), "r"(pack_h2(acc[mt][nt][0] + b0, acc[mt][nt][1] + b1))
                         : "memory");
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a1), "r"(pack_h2(acc[mt][nt][2] + b0, acc[mt][nt][3] + b1))
                         : "memory");
        }
    }
    __syncthreads();

    // ---- Epilogue 2: 8 outputs (16 bytes) per step, plus the residual, out to y.
#pragma unroll 4
    for (int i = tid; i < CONV_BM * (CONV_BN / 8); i += CONV_NT) {
        const int r = i / (CONV_BN / 8), c8 = (i - r * (CONV_BN / 8)) * 8, m = m0 + r, n = n0 + c8;
        if (m >= M || n >= Co) continue;
        u32 v[4];
        asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                     : "r"(sbase + (r * CONV_EPI_STR + c8) * 2) : "memory");
        const long long o = (long long)m * Co + n;
        store_out8(y + o, res ? res + o : nullptr, Co - n, v, vec);
    }
}
