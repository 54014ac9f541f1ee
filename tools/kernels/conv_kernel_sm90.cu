// sdiff conv2d forward on Hopper (sm_90a): the implicit GEMM of conv_kernel.cu (y[m, n] = sum_k
// A[m, k] w[n, k], m = (b, oy, ox), k = (kh, kw, c); read that file's header first), fed by the
// TMA instead of cp.async, with the attention kernel's structure (attn_kernel_sm90.cu): one
// producer warpgroup whose first thread issues the copies, two consumer warpgroups of BM/2 output
// rows each, an mbarrier pipeline between them and no block-wide barrier in the main loop.
// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).
//
// Why the TMA makes the A operand cheap here: a tile of BM output pixels is a box of the output
// image: BM pixels of one row, or whole rows (bw = Wo, bh = BM / Wo), or whole images (bw = Wo,
// bh = Ho, bn = BM / (Wo * Ho)). The K tile of tap (kh, kw) and channels c..c+63 is then a box of
// the input: at stride 1 the same box shifted by (kw - pad, kh - pad), one 4-D TMA copy with
// coordinates (c, ox0 - pad + kw, oy0 - pad + kh, b0); at stride s the box s times as large
// whose every s-th pixel and row the TMA takes (the tensor map's element strides), from (c, s ox0
// - pad + kw, s oy0 - pad + kh, b0): SD's downsamplers need no im2col. Coordinates outside the
// image are the padding: the TMA writes zeros there, with no per-row bounds checks. The weights
// [Co][K] are a 2-D box (64 of K x BN rows) per K tile. Both land in the 128-byte swizzle (16-byte chunk c of
// row r at chunk c ^ (r & 7)), which is wgmma's K-major layout, so consumers read them directly.
// The host (sdiff__cu_conv2d_tma_box, _maps) picks the box shape and makes the two tensor maps; shapes
// whose output rows do not tile into such boxes (odd widths) stay on conv_kernel.cu.
//
// Traffic: every K tile reads BM x 64 values of x and BN x 64 of w from L2, so the L2 traffic per
// multiply-add is 1/BN + 1/BM; on the VAE's large levels that, not the tensor cores, is the limit
// (tools/PERF.md, S8), hence BM = 256 for the 128-channel convolutions there (BN = 256 would need
// twice the accumulator registers).
//
// Split-K for grids too small to fill the GPU (SD's 16x16 and 8x8 levels: 64 and 16 tiles of
// 128 x 80 on 132 SMs): the host launches clusters of S blocks along x (S = 1..8), block `rank` of a
// cluster sums K tiles [rank*KT/S, (rank+1)*KT/S) of the same output tile; the partial sums meet in
// distributed shared memory, where block `rank` adds up rows [rank*BM/S, (rank+1)*BM/S) of all S
// partials in rank order (the same order every run) and writes them. No workspace, no second kernel.
//
// Epilogue as conv_kernel.cu's (same rounding): y = fp16(fp16(acc + bias) + res).
//
// A nearest 2x upsampling followed by a 3x3 convolution (SD's upsamplers) is, for each of the four
// output phases (oy % 2, ox % 2), a 2x2 convolution of the small image with summed weights (the
// host sums them, sdiff_im2col's upsample_conv_weights): phase = 0..3 makes output pixel (b, i, j)
// of the Ho x Wo grid land at (b, 2i + phase / 2, 2j + phase % 2) of a [B][2Ho][2Wo][Co] y (and
// res); 4/9 of the multiply-adds, and the upsampled tensor is never written.
//
// Defines: CONV_TILE (0..4, the library's variants: the table below, mirrored by the host's
// sdiff__cu_conv2d_tma_tiles; tests/test_cuda.c checks they agree through CONV_EXPECT_*).
// Overrides, for sweeps: CONV_BM (output pixels per block: 128, or 256 with BN <= 128), CONV_BN
// (output channels per block: 64, 80, 128, 160 or 256), CONV_STAGES (pipeline depth; default: as
// many as fit in 227 KB, at most 8).

#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "conv_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)"
#endif
#if !defined(CONV_TILE) && !defined(CONV_BN)
#error "CONV_TILE (or CONV_BN) must be defined"
#endif
#ifndef CONV_TILE
#define CONV_TILE 0
#endif
#if CONV_TILE < 0 || CONV_TILE > 4
#error "CONV_TILE must be 0..4"
#endif
#ifndef CONV_BM                                 // tiles 0-3: 128 x 80, 128, 160, 256; tile 4: 256 x 128
#define CONV_BM (CONV_TILE == 4 ? 256 : 128)
#endif
#ifndef CONV_BN
#define CONV_BN (CONV_TILE == 0 ? 80 : CONV_TILE == 1 || CONV_TILE == 4 ? 128 : CONV_TILE == 2 ? 160 : 256)
#endif
#define BM CONV_BM                              // output pixels per block: two consumer warpgroups
#define MT (BM / 128)                           // 64-row wgmma tiles per consumer warpgroup
#define BN CONV_BN
#define NT 384                                  // producer warpgroup + two consumer warpgroups
#define A_BYTES (BM * 128)                      // one K tile of A: BM rows of 64 fp16
#define STAGE_BYTES ((BM + BN) * 128)
#define BAR_BYTES 256                           // room for 2 mbarriers per stage
#ifndef CONV_STAGES
#define CONV_STAGES_FIT ((227 * 1024 - 1024 - BAR_BYTES) / STAGE_BYTES)
#define CONV_STAGES (CONV_STAGES_FIT > 8 ? 8 : CONV_STAGES_FIT)
#endif
#define STAGES CONV_STAGES
#define EPI_STR (BN + 8)                        // halves per row of the epilogue tile
#define PART_STR (BN + 4)                       // floats per row of a split-K partial tile
#define PIPE_BYTES (STAGES * STAGE_BYTES)
#define SMEM_BYTES (PIPE_BYTES + BAR_BYTES + 1024) // + 1024: the base is rounded up to 1024
#define PRODUCER_REGS 40
#define CONSUMER_REGS 232
static_assert(BN == 64 || BN == 80 || BN == 128 || BN == 160 || BN == 256, "CONV_BN: 64, 80, 128, 160 or 256");
static_assert(BM == 128 || (BM == 256 && BN <= 128), "CONV_BM: 128, or 256 with BN <= 128 (accumulator registers)");
static_assert(STAGES >= 2 && 16 * STAGES <= BAR_BYTES, "2..16 stages");
static_assert(BM * EPI_STR * 2 <= PIPE_BYTES && BM * PART_STR * 4 <= PIPE_BYTES,
              "the epilogue and split-K tiles reuse the pipeline's memory");
static_assert(128 * (PRODUCER_REGS + 2 * CONSUMER_REGS) <= NT * ((65536 / NT) & ~7),
              "setmaxnreg would ask for more registers than the block holds (and wait forever)");

#ifdef CONV_EXPECT_SMEM // what the host's tables say (tests/test_cuda.c): a mismatch would fault
static_assert(BM == CONV_EXPECT_BM && BN == CONV_EXPECT_BN && SMEM_BYTES == CONV_EXPECT_SMEM,
              "sdiff__cu_conv2d_tma_tiles or _launch_dims disagrees with the kernel");
#endif

// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches its table.
extern "C" __constant__ int sdiff_conv2d_tma_cfg[4] = {BM, BN, NT, SMEM_BYTES};

#include "mma.cuh"

// Launch: grid (S, ceil(M / BM), ceil(Co / BN)) in clusters of (S, 1, 1), S <= KT (S = 1: a plain
// launch), block (NT, 1, 1), dynamic shared memory sdiff_conv2d_tma_cfg[3] bytes (raise the
// function attribute first).
// ta: x [B][H][W][C] as a 4-D map, dims innermost first (C, W, H, B), box (64, bw, bh, bn) with
// bw * bh * bn = BM; tb: w [Co][K] as 2-D (K, Co), box (64, BN); both 128-byte swizzle, zeros
// outside. The output tile of block (., y, .) starts at pixel m0 = y * BM = (b0, oy0, ox0) and is that
// box of the output: the host guarantees Wo % bw == 0 and Ho % bh == 0, so m0's box never wraps.
// KT = KH * KW * C / 64 K tiles; C % 64 == 0. y [M][Co] (phase < 0) or an upsampling's phase
// (above); res (optional): row m / res_px, res_ld values apart, for output pixel m (phase < 0:
// res_px = 1, res_ld = Co is y's layout; res_px = Ho * Wo is one row per image, added to all its
// pixels: a resnet's time embedding), y's layout when phase >= 0; vec as in conv_kernel.cu (res_ld
// % 8 == 0 too). Input pixel of tap (kh, kw) for output (oy, ox): (stride oy - padh + kh, stride ox -
// padw + kw), ta made with that stride (sdiff__cu_conv2d_tma_maps).
extern "C" __global__ void __launch_bounds__(NT, 1)
sdiff_conv2d_fwd_tma(const __grid_constant__ sd_tmap ta, const __grid_constant__ sd_tmap tb,
                     const sd_half *__restrict__ bias, const sd_half *res, sd_half *y, int M, int Ho, int Wo, int C,
                     int KW, int KT, int padh, int padw, int stride, int Co, int vec, int phase, int res_px,
                     int res_ld) {
    extern __shared__ __align__(1024) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    const int m0 = blockIdx.y * BM, n0 = blockIdx.z * BN;
    const int split = (int)cluster_size(), rank = (int)cluster_rank();
    const int kt0 = rank * KT / split, nkt = (rank + 1) * KT / split - kt0; // this block's K tiles
    const u32 base = (smem_addr(smem) + 1023u) & ~1023u; // the swizzle repeats every 1024 bytes
    const u32 bars = base + PIPE_BYTES;
#define FULL(s) (bars + 16 * (s))
#define EMPTY(s) (bars + 16 * (s) + 8)
    if (tid == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(FULL(s), 1);
            mbar_init(EMPTY(s), 8); // one arrival per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        tmap_prefetch(&ta); // while the previous kernel drains (before pdl_begin)
        tmap_prefetch(&tb);
    }
    pdl_begin();
    __syncthreads();

    if (wg == 0) {
        // ---- Producer: K tile kt = tap (kh, kw), channels c..c+63, into stage (kt - kt0) % STAGES.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER_REGS));
        if (tid == 0) {
            const int hw = Ho * Wo, b0 = m0 / hw, oy0 = (m0 - b0 * hw) / Wo, ox0 = m0 - b0 * hw - oy0 * Wo;
            const int cpt = C / 64, tap = kt0 / cpt;
            int c = (kt0 - tap * cpt) * 64, kh = tap / KW, kw = tap - kh * KW;
            for (int i = 0; i < nkt; ++i) {
                const int s = i % STAGES;
                mbar_wait(EMPTY(s), ((i / STAGES) & 1) ^ 1);
                const u32 dst = base + s * STAGE_BYTES;
                mbar_expect_tx(FULL(s), STAGE_BYTES);
                tma_load4(dst, &ta, c, stride * ox0 - padw + kw, stride * oy0 - padh + kh, b0, FULL(s));
                tma_load2(dst + A_BYTES, &tb, (kt0 + i) * 64, n0, FULL(s));
                c += 64;
                if (c == C) {
                    c = 0;
                    if (++kw == KW) { kw = 0; ++kh; }
                }
            }
        }
        if (split > 1) split_k_producer_sync(); // the partials' exchange below
        return;
    }

    // ---- Consumers: warpgroup cw owns output rows cw*BM/2 .. +BM/2, all BN columns, as MT wgmma
    // tiles of 64 rows (acc[mt]).
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER_REGS));
    const int cw = wg - 1;
    float acc[MT][BN / 2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int i = 0; i < BN / 2; ++i) acc[mt][i] = 0.f;
    // wgmma runs asynchronously: tile kt's instructions stay in flight while the warpgroup waits for
    // tile kt+1, and a stage is handed back once the wgmmas that read it have retired (wait<1>
    // after issuing the next tile).
    for (int i = 0; i < nkt; ++i) {
        const int s = i % STAGES;
        mbar_wait(FULL(s), (i / STAGES) & 1);
        const u32 as = base + s * STAGE_BYTES + cw * (BM / 2) * 128, bs = base + s * STAGE_BYTES + A_BYTES;
        wgmma_pin<MT * BN / 2>(&acc[0][0]);
        wgmma_fence();
#pragma unroll
        for (int ks = 0; ks < 4; ++ks)
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
                wgmma_ss<BN>(acc[mt], wgmma_desc_sw128(as + mt * 64 * 128 + ks * 32), wgmma_desc_sw128(bs + ks * 32), 1);
        wgmma_commit();
        wgmma_wait<1>();
        wgmma_pin<MT * BN / 2>(&acc[0][0]);
        if (i > 0 && lane == 0) mbar_arrive(EMPTY((i - 1) % STAGES));
    }
    wgmma_wait<0>();
    wgmma_pin<MT * BN / 2>(&acc[0][0]);
    // Every consumer's wgmmas have retired and every copy has landed (each was waited for), so the
    // pipeline's memory is free for the epilogue tile. Named barrier 1: the consumers only.
    asm volatile("bar.sync 1, 256;\n" ::: "memory");

    // Where output pixel m's Co values start in y (and res).
    auto out_at = [&](int m) -> long long {
        if (phase < 0) return (long long)m * Co;
        const int hw = Ho * Wo, b = m / hw, i = (m - b * hw) / Wo, j = m - b * hw - i * Wo;
        return (((long long)b * 2 * Ho + 2 * i + (phase >> 1)) * 2 * Wo + 2 * j + (phase & 1)) * Co;
    };
    // The residual of output pixel m's row, offset like out_at (NULL without one).
    auto res_row = [&](int m) -> const sd_half * {
        return !res ? nullptr : res + (phase < 0 ? (long long)(m / res_px) * res_ld : out_at(m));
    };
    // Fragment layout: acc[mt][4j..4j+3] = rows g, g, g+8, g+8 of this warp's 16 in 64-row tile mt,
    // columns 8j + 2t4 + {0, 1, 0, 1}.
    const int g = lane >> 2, t4 = lane & 3, row0 = cw * (BM / 2) + (warp & 3) * 16 + g;
    if (split > 1) {
        // ---- Split-K: this block's partial sums into a [BM][BN+4] fp32 tile; once every block of
        // the cluster has written its own, rows [rank*BM/split, (rank+1)*BM/split) are summed over
        // the cluster's tiles (rank 0 first), biased and written; a second cluster barrier keeps
        // every tile alive until the others have read it.
        split_k_store_partials<MT, BN>(base, acc, row0, t4, PART_STR);
        const int r0 = rank * BM / split, r1 = (rank + 1) * BM / split;
        for (int i = tid - 128; i < (r1 - r0) * (BN / 8); i += 256) {
            const int r = r0 + i / (BN / 8), c8 = (i % (BN / 8)) * 8, m = m0 + r, n = n0 + c8;
            float v[8];
#pragma unroll
            for (int e = 0; e < 8; ++e) v[e] = 0.f;
            for (int q = 0; q < split; ++q) {
                const u32 a = base + (r * PART_STR + c8) * 4;
                const float4 lo = cluster_ld4(a, (u32)q), hi = cluster_ld4(a + 16, (u32)q);
                v[0] += lo.x; v[1] += lo.y; v[2] += lo.z; v[3] += lo.w;
                v[4] += hi.x; v[5] += hi.y; v[6] += hi.z; v[7] += hi.w;
            }
            if (m < M && n < Co) {
                u32 h[4];
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const float b0 = bias && n + 2 * e < Co ? half_to_float(bias[n + 2 * e]) : 0.f;
                    const float b1 = bias && n + 2 * e + 1 < Co ? half_to_float(bias[n + 2 * e + 1]) : 0.f;
                    h[e] = pack_h2(v[2 * e] + b0, v[2 * e + 1] + b1);
                }
                const sd_half *rr = res_row(m);
                store_out8(y + out_at(m) + n, rr ? rr + n : nullptr, Co - n, h, vec);
            }
        }
        cluster_arrive();
        cluster_wait();
        return;
    }

    // ---- Epilogue 1: acc + bias, rounded to fp16, into a [BM][BN+8] tile.
#pragma unroll
    for (int j = 0; j < BN / 8; ++j) {
        const int col = j * 8 + 2 * t4, n = n0 + col;
        const float b0 = bias && n < Co ? half_to_float(bias[n]) : 0.f;
        const float b1 = bias && n + 1 < Co ? half_to_float(bias[n + 1]) : 0.f;
#pragma unroll
        for (int mt = 0; mt < MT; ++mt) {
            const float *d = &acc[mt][4 * j];
            const u32 a0 = base + ((row0 + mt * 64) * EPI_STR + col) * 2, a1 = a0 + 8 * EPI_STR * 2;
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a0), "r"(pack_h2(d[0] + b0, d[1] + b1)) : "memory");
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a1), "r"(pack_h2(d[2] + b0, d[3] + b1)) : "memory");
        }
    }
    asm volatile("bar.sync 1, 256;\n" ::: "memory");

    // ---- Epilogue 2: 8 outputs (16 bytes) per step, plus the residual, out to y.
#pragma unroll 4
    for (int i = tid - 128; i < BM * (BN / 8); i += 256) {
        const int r = i / (BN / 8), c8 = (i - r * (BN / 8)) * 8, m = m0 + r, n = n0 + c8;
        if (m >= M || n >= Co) continue;
        u32 v[4];
        asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                     : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                     : "r"(base + (r * EPI_STR + c8) * 2) : "memory");
        const sd_half *rr = res_row(m);
        store_out8(y + out_at(m) + n, rr ? rr + n : nullptr, Co - n, v, vec);
    }
#undef FULL
#undef EMPTY
}
