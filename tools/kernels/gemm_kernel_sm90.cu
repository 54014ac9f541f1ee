// sdiff GEMM on Hopper (sm_90a): y[m, n] = alpha * sum_k a[m, k] w[n, k] (+ bias[n]) (+ res[m, n]), the
// linear layers' y = x w^T with both operands K-major, fp16 in, fp32 accumulate, fp16 (or fp32) out;
// optionally with GEGLU fused (y = h * gelu(g) of the layer's two halves: SD's feed-forward).
// The library runs its Hopper GEMMs on it instead of cuBLASLt: cuBLASLt's own Hopper kernels
// (nvjet_*) are flagged by compute-sanitizer racecheck whenever their shared-memory ring wraps
// (tools/PERF.md, S12), and a library whose users run the sanitizer on their programs must not
// report races it cannot explain; and an epilogue of our own takes the GEGLU, which saves the
// feed-forward's widest tensor a round trip through memory (PERF.md, S13).
// tools/kernels/bench_gemm.cu checks and times it against cuBLASLt.
// The structure is conv_kernel_sm90.cu's without the image: a producer warpgroup whose first
// thread issues 2-D TMA copies (a K tile of 64 of a, and of w, into the 128-byte swizzle that is
// wgmma's K-major layout) and one or two consumer warpgroups of 128 rows that run the wgmmas,
// with an mbarrier ring between them.
//
// Persistent: the host launches as many blocks as fit at once (two per SM for the 128-row tiles,
// each with half the shared memory; one for the 256-row tiles); block b takes output tiles b,
// b + grid, b + 2 grid, ... (tile t = (t / tiles_n, t % tiles_n): neighbouring blocks share the rows
// of a, so a stays in L2), and its producer runs ahead into the next tile while the consumers write
// the last one. Two blocks per SM hide an epilogue: while one writes its tile the other's wgmmas
// keep the tensor cores busy (CUTLASS's "ping-pong", obtained from the block scheduler instead of
// two consumer warpgroups sharing one ring, whose mbarrier parities could not tell a consumer two
// phases ahead from one in step); the 256-row tiles read each w tile once for 256 rows instead.
//
// Split-K (split > 1; for grids too small to fill the GPU: SD's 8x8 and 16x16 levels, the time
// projections): clusters of `split` blocks along x, one tile per cluster; block `rank` sums K tiles
// [rank * KT / split, (rank + 1) * KT / split), the partial tiles meet in distributed shared memory
// and block `rank` finishes rows [rank * BM / split, (rank + 1) * BM / split) adding the partials in
// rank order (the same order every run). No workspace, no second kernel, as conv_kernel_sm90.cu.
//
// Epilogue (the rounding of the library's other routes and of diffusers, a linear layer then the
// residual add): y = fp16(fp16(alpha * acc + bias) + res), through a [BM][BN+8] fp16 tile of its
// own in shared memory (the ring already holds the next tile's operands), then 16-byte stores with
// the residual loads of EPI_BATCH chunks per thread in flight together. GEGLU (sdiff_gemm_tma_geglu): a tile's
// w rows are BN/2 rows of the layer's first half (h) and the same BN/2 of its second (g), loaded
// as two TMA boxes, so the tile holds both halves of BN/2 outputs; the fp16 tile is made as
// always and y = fp16(h * gelu(g)) of its two halves, rounded as the unfused route rounds. Straight from the
// registers (4-byte stores, a residual load per pair) it was 1.3-2.5x slower: res may be y, so
// every load had to wait for the store before it (PERF.md, S12). OUT_F32 (attention scores):
// y = alpha * acc in fp32, straight from the registers.
//
// Defines: GEMM_TILE (0..6, BM x BN: 128 x 64, 128 x 128, 256 x 64, 256 x 128, 128 x 80, 256 x 80,
// 64 x 80; mirrored by the host's sdiff__cu_gemm_tiles. BM 256: two consumer warpgroups and one
// block per SM; else one (of 64 rows at BM 64) and two blocks per SM. The 80-wide tiles are
// cuBLASLt's trick for SD's widths: 320, 640 and 1280 columns in 4, 8 and 16 of them make about
// one wave of 128 tiles at each level, where 64 and 128 leave 40% of the SMs idle or need a second
// wave, PERF.md S13), OUT_F32 (1: fp32 output, no bias or residual), GEMM_BPS (blocks per SM,
// default as above), GEMM_STAGES (the ring's depth; default: as many as fit beside the epilogue
// tile in the block's share of the SM's 227 KB, at most 12).

#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "gemm_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)"
#endif
#ifndef OUT_F32
#define OUT_F32 0
#endif
#ifndef GEMM_TILE // the fp32-output build (attention scores) is the 256 x 128 tile's
#define GEMM_TILE (OUT_F32 ? 3 : 1)
#endif
#if GEMM_TILE < 0 || GEMM_TILE > 6
#error "GEMM_TILE must be 0..6"
#endif
#define BM (GEMM_TILE == 6 ? 64 : GEMM_TILE == 2 || GEMM_TILE == 3 || GEMM_TILE == 5 ? 256 : 128)
#define BN (GEMM_TILE >= 4 ? 80 : GEMM_TILE & 1 ? 128 : 64)
#define CWG (BM == 256 ? 2 : 1)                 // consumer warpgroups, 128 rows each (64 at BM 64)
#define MT (BM == 64 ? 1 : 2)                   // 64-row wgmma tiles per consumer warpgroup
#define NT (128 * (1 + CWG))                    // producer warpgroup + consumers
#ifndef GEMM_BPS
#define GEMM_BPS (CWG == 1 ? 2 : 1)
#endif
#define BPS GEMM_BPS                            // blocks per SM
#define A_BYTES (BM * 128)                      // one K tile of a: BM rows of 64 fp16
#define STAGE_BYTES ((BM + BN) * 128)
#define BAR_BYTES 256
#define EPI_STR (BN + 8)                        // halves per row of the epilogue tile
#define EPI_BYTES (BM * EPI_STR * 2)
#ifndef GEMM_STAGES
#define GEMM_STAGES_FIT ((227 * 1024 / BPS - 1024 - BAR_BYTES - EPI_BYTES) / STAGE_BYTES)
#define GEMM_STAGES (GEMM_STAGES_FIT > 12 ? 12 : GEMM_STAGES_FIT)
#endif
#define STAGES GEMM_STAGES
#define EPI_BATCH 4                             // 16-byte output chunks per thread in flight
#define PART_STR (BN + 4)                       // floats per row of a split-K partial tile
#define PIPE_BYTES (STAGES * STAGE_BYTES)
#define SMEM_BYTES (PIPE_BYTES + EPI_BYTES + BAR_BYTES + 1024)
#define PRODUCER_REGS 40
#define CONSUMER_REGS (CWG == 1 ? 216 : 232)
static_assert(STAGES >= 2 && 16 * STAGES <= BAR_BYTES, "2..16 stages");
static_assert(BM * PART_STR * 4 <= PIPE_BYTES + EPI_BYTES, "the split-K partial tile reuses the ring's and the epilogue's memory");
static_assert(BPS * 128 * (PRODUCER_REGS + CWG * CONSUMER_REGS) <= 65536, "the blocks of an SM must fit its registers");

#ifdef GEMM_EXPECT_SMEM // what the host's tables say (tests/test_cuda.c)
static_assert(BM == GEMM_EXPECT_BM && BN == GEMM_EXPECT_BN && SMEM_BYTES == GEMM_EXPECT_SMEM,
              "sdiff__cu_gemm_tiles or sdiff__cu_gemm_smem disagrees with the kernel");
#endif

// Tile configuration, readable by the host (cuModuleGetGlobal).
extern "C" __constant__ int sdiff_gemm_tma_cfg[4] = {BM, BN, NT, SMEM_BYTES};

#include "mma.cuh"

// Elements n and n + 1 of row p as a packed pair (lo = n; a missing one, n + 1 == N, reads as 0):
// one 4-byte load where p allows it. Only called with n < N.
static __device__ __forceinline__ u32 load_pair(const sd_half *p, int n, int N) {
    if (n + 1 < N && !((unsigned long long)(p + n) & 3)) return *(const u32 *)(p + n);
    return (u32)p[n] | (n + 1 < N ? (u32)p[n + 1] << 16 : 0u);
}
// Outputs (m, n) and (m, n + 1) of y (the second only when n + 1 < N; only called with n < N):
// fp16(fp16(alpha * v + bias) + res) with the bias and residual pairs already loaded (b, r: packed
// fp16, r used when has_res), or alpha * v in fp32 with OUT_F32.
static __device__ __forceinline__ void store_pair(void *yv, long long ldy, int m, int n, int N, float v0, float v1,
                                                  float alpha, u32 b, u32 r, bool has_res) {
    const bool two = n + 1 < N;
#if OUT_F32
    float *y = (float *)yv + m * ldy + n;
    if (two && !((unsigned long long)y & 7)) {
        float2 f;
        f.x = alpha * v0;
        f.y = alpha * v1;
        *(float2 *)y = f;
    } else {
        y[0] = alpha * v0;
        if (two) y[1] = alpha * v1;
    }
#else
    u32 h = pack_h2(alpha * v0 + half_to_float((sd_half)(b & 0xffffu)), alpha * v1 + half_to_float((sd_half)(b >> 16)));
    if (has_res)
        h = pack_h2(half_to_float((sd_half)(h & 0xffffu)) + half_to_float((sd_half)(r & 0xffffu)),
                    half_to_float((sd_half)(h >> 16)) + half_to_float((sd_half)(r >> 16)));
    sd_half *y = (sd_half *)yv + m * ldy + n;
    if (two && !((unsigned long long)y & 3)) {
        *(u32 *)y = h;
    } else {
        y[0] = (sd_half)(h & 0xffffu);
        if (two) y[1] = (sd_half)(h >> 16);
    }
#endif
}

// v[0..3] = the sum over the cluster's blocks 0..split-1 (in that order) of the four floats at shared
// address a: every load in flight before the first add.
static __device__ __forceinline__ void cluster_sum4(float *v, u32 a, int split) {
    float4 p[8];
#pragma unroll
    for (int q = 0; q < 8; ++q)
        if (q < split) p[q] = cluster_ld4(a, (u32)q);
    v[0] = v[1] = v[2] = v[3] = 0.f;
#pragma unroll
    for (int q = 0; q < 8; ++q)
        if (q < split) { v[0] += p[q].x; v[1] += p[q].y; v[2] += p[q].z; v[3] += p[q].w; }
}

#if !OUT_F32
// Epilogue 2: the tile's COLS columns of fp16 outputs (in the epilogue tile at epi, rows EPI_STR
// halves apart; with GEGLU h * gelu(g) of its columns c and BN/2 + c) plus the residual out to y as
// 16-byte chunks (8 outputs), EPI_BATCH chunks per thread at a time with their residual loads
// issued together (res may be y: each chunk is read and then written by the same thread). c_first:
// this thread's index among the consumers.
template <int COLS, bool GEGLU>
static __device__ __forceinline__ void write_tile(int c_first, u32 epi, void *yv, long long ldy, const sd_half *res,
                                                  long long ldr, int m0, int n0, int M, int N) {
    const bool vec = !(ldy & 7) && !(N & 7) && !((unsigned long long)yv & 15) &&
                     (!res || (!(ldr & 7) && !((unsigned long long)res & 15)));
    constexpr int CPR = COLS / 8, CHUNKS = BM * CPR, STEP = 128 * CWG; // chunks per row, per tile
#pragma unroll 1
    for (int c0 = c_first; c0 < CHUNKS; c0 += STEP * EPI_BATCH) {
        uint4 rv[EPI_BATCH];
#pragma unroll
        for (int e = 0; e < EPI_BATCH; ++e) {
            const int c = c0 + e * STEP, r = c / CPR, m = m0 + r, n = n0 + (c - r * CPR) * 8;
            rv[e].x = rv[e].y = rv[e].z = rv[e].w = 0u;
            if (vec && res && c < CHUNKS && m < M && n < N) rv[e] = *(const uint4 *)(res + m * ldr + n);
        }
#pragma unroll
        for (int e = 0; e < EPI_BATCH; ++e) {
            const int c = c0 + e * STEP, r = c / CPR, m = m0 + r, c8 = (c - r * CPR) * 8, n = n0 + c8;
            if (c >= CHUNKS || m >= M || n >= N) continue;
            u32 v[4];
            asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                         : "=r"(v[0]), "=r"(v[1]), "=r"(v[2]), "=r"(v[3])
                         : "r"(epi + (r * EPI_STR + c8) * 2) : "memory");
            if (GEGLU) { // v = h, the same 8 columns of g BN/2 further: y = h * gelu(g)
                u32 gv[4];
                asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(gv[0]), "=r"(gv[1]), "=r"(gv[2]), "=r"(gv[3])
                             : "r"(epi + (r * EPI_STR + BN / 2 + c8) * 2) : "memory");
#pragma unroll
                for (int q = 0; q < 4; ++q)
                    v[q] = pack_h2(geglu_out(half_to_float((sd_half)(v[q] & 0xffffu)), half_to_float((sd_half)(gv[q] & 0xffffu))),
                                   geglu_out(half_to_float((sd_half)(v[q] >> 16)), half_to_float((sd_half)(gv[q] >> 16))));
            }
            sd_half *yp = (sd_half *)yv + m * ldy + n;
            if (!vec) {
                store_out8(yp, res ? res + m * ldr + n : nullptr, N - n, v, 0);
                continue;
            }
            if (res) add_h8(v, rv[e]);
            uint4 ov;
            ov.x = v[0]; ov.y = v[1]; ov.z = v[2]; ov.w = v[3];
            *(uint4 *)yp = ov;
        }
    }
}
#endif

// Launch: split == 1: grid (min(n_tiles, 2 * SMs), 1, 1); split > 1: grid (split, n_tiles, 1) in
// clusters of (split, 1, 1). Block (NT, 1, 1), dynamic shared memory sdiff_gemm_tma_cfg[3] bytes.
// ta: a as a 2-D map (K, M), box (64, BM); tb: w as (K, rows of w), box (64, BN / 2) (a tile's w
// rows come in two halves); 128-byte swizzle, zeros outside (so K need not be a multiple of 64, nor
// M, N of the tile). KT = ceil(K / 64). y: row m at y + m * ldy (fp16, or fp32 with OUT_F32); res
// (optional; may be y) likewise with ldr. N: y's columns. sdiff_gemm_tma: w [N][K], bias (optional)
// [N], tiles_n = ceil(N / BN); sdiff_gemm_tma_geglu: w [2N][K] (a linear layer of 2N outputs), y[m, n] = h * gelu(g)
// of its outputs h = n and g = N + n, bias (optional) [2N], tiles_n = ceil(N / (BN / 2)) (a tile
// computes BN / 2 of h and the same BN / 2 of g). n_tiles = ceil(M / BM) * tiles_n.
// GEGLU is a template parameter, two kernels (sdiff_gemm_tma, sdiff_gemm_tma_geglu): as a run-time
// flag its code made the plain kernel 10-15% slower (PERF.md, S13).
template <bool GEGLU>
static __device__ __forceinline__ void gemm_body(const sd_tmap &ta, const sd_tmap &tb, const sd_half *__restrict__ bias,
                                                 const sd_half *res, void *yv, int M, int N, int KT, int tiles_n,
                                                 int n_tiles, long long ldy, long long ldr, float alpha) {
    constexpr bool geglu = GEGLU;
    extern __shared__ __align__(1024) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    const int split = (int)cluster_size(), rank = (int)cluster_rank();
    // split == 1: tiles blockIdx.x, + gridDim.x, ...; split > 1: tile blockIdx.y, this rank's K tiles.
    const int t_first = split > 1 ? (int)blockIdx.y : (int)blockIdx.x, t_step = split > 1 ? n_tiles : (int)gridDim.x;
    const int kt0 = rank * KT / split, nkt = (rank + 1) * KT / split - kt0;
    const u32 base = (smem_addr(smem) + 1023u) & ~1023u;
    const u32 epi = base + PIPE_BYTES, bars = epi + EPI_BYTES;
#define FULL(s) (bars + 16 * (s))
#define EMPTY(s) (bars + 16 * (s) + 8)
    if (tid == 0) {
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(FULL(s), 1);
            mbar_init(EMPTY(s), 4 * CWG); // one arrival per consumer warp
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        tmap_prefetch(&ta); // while the previous kernel drains (before pdl_begin)
        tmap_prefetch(&tb);
    }
    pdl_begin();
    __syncthreads();

    if (wg == 0) {
        // ---- Producer: the ring's iterations run on across tiles (it counts every K tile).
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER_REGS));
        if (tid == 0) {
            int it = 0;
            for (int t = t_first; t < n_tiles; t += t_step) {
                // w rows of the tile's two halves: n0.. and n0 + BN/2.., or with geglu h's n0.. and g's N + n0..
                const int m0 = (t / tiles_n) * BM, n0 = (t % tiles_n) * (geglu ? BN / 2 : BN);
                const int w0 = n0, w1 = geglu ? N + n0 : n0 + BN / 2;
                for (int i = 0; i < nkt; ++i, ++it) {
                    const int s = it % STAGES;
                    mbar_wait(EMPTY(s), ((it / STAGES) & 1) ^ 1);
                    const u32 dst = base + s * STAGE_BYTES;
                    mbar_expect_tx(FULL(s), STAGE_BYTES);
                    tma_load2(dst, &ta, (kt0 + i) * 64, m0, FULL(s));
                    tma_load2(dst + A_BYTES, &tb, (kt0 + i) * 64, w0, FULL(s));
                    tma_load2(dst + A_BYTES + BN / 2 * 128, &tb, (kt0 + i) * 64, w1, FULL(s));
                }
            }
        }
        if (split > 1) split_k_producer_sync(); // the partials' exchange below
        return;
    }

    // ---- Consumers: warpgroup cw owns rows cw*128 .. +128 of the tile, all BN columns, as MT wgmma
    // tiles of 64 rows (acc[mt]).
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER_REGS));
    const int cw = wg - 1;
    float acc[MT][BN / 2];
    // Fragment layout: acc[mt][4j..4j+3] = rows g, g, g+8, g+8 of this warp's 16 in 64-row tile mt,
    // columns 8j + 2t4 + {0, 1, 0, 1}.
    const int g = lane >> 2, t4 = lane & 3, row0 = cw * 128 + (warp & 3) * 16 + g;
    int it = 0;
    for (int t = t_first; t < n_tiles; t += t_step) {
        const int m0 = (t / tiles_n) * BM, n0 = (t % tiles_n) * (geglu ? BN / 2 : BN); // y's first row and column
        // The first K tile's first wgmma overwrites the accumulators (scale_d = 0); a stage is
        // handed back once the wgmmas that read it have retired (wait<1> after the next tile's).
        for (int i = 0; i < nkt; ++i, ++it) {
            const int s = it % STAGES;
            mbar_wait(FULL(s), (it / STAGES) & 1);
            const u32 as = base + s * STAGE_BYTES + cw * 128 * 128, bs = base + s * STAGE_BYTES + A_BYTES;
            wgmma_pin<MT * BN / 2>(&acc[0][0]);
            wgmma_fence();
#pragma unroll
            for (int ks = 0; ks < 4; ++ks)
#pragma unroll
                for (int mt = 0; mt < MT; ++mt)
                    wgmma_ss<BN>(acc[mt], wgmma_desc_sw128(as + mt * 64 * 128 + ks * 32), wgmma_desc_sw128(bs + ks * 32),
                                 i > 0 || ks > 0);
            wgmma_commit();
            wgmma_wait<1>();
            wgmma_pin<MT * BN / 2>(&acc[0][0]);
            if (i > 0 && lane == 0) mbar_arrive(EMPTY((it - 1) % STAGES));
        }
        wgmma_wait<0>();
        wgmma_pin<MT * BN / 2>(&acc[0][0]);
        if (lane == 0) mbar_arrive(EMPTY((it - 1) % STAGES));

        if (split > 1) {
            // ---- Split-K: this block's partial sums into a [BM][BN+4] fp32 tile in the ring's and
            // the epilogue tile's memory (free: every copy this block asked for has been waited for
            // and consumed, and a block has only this tile);
            // once every block of the cluster has written its own, rows [rank*BM/split,
            // (rank+1)*BM/split) are summed over the cluster's tiles (rank 0 first) and written; a
            // second cluster barrier keeps every tile alive until the others have read it.
            asm volatile("bar.sync 1, %0;\n" ::"n"(128 * CWG) : "memory");
            split_k_store_partials<MT, BN>(base, acc, row0, t4, PART_STR);
            const int r0 = rank * BM / split, r1 = (rank + 1) * BM / split, c4n = (geglu ? BN / 2 : BN) / 4;
            for (int i = tid - 128; i < (r1 - r0) * c4n; i += 128 * CWG) {
                const int r = r0 + i / c4n, c4 = (i % c4n) * 4, m = m0 + r, n = n0 + c4;
                // every block's partials in flight together, then summed in rank order (with geglu: h's, then g's)
                float h[4], g[4] = {0.f, 0.f, 0.f, 0.f};
                cluster_sum4(h, base + (r * PART_STR + c4) * 4, split);
                if (geglu) cluster_sum4(g, base + (r * PART_STR + BN / 2 + c4) * 4, split);
                if (m >= M) continue;
                u32 b[2] = {0u, 0u}, rp[2] = {0u, 0u};
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    if (n + 2 * e < N) {
                        if (res) rp[e] = load_pair(res + m * ldr, n + 2 * e, N);
                        if (bias && !geglu) b[e] = load_pair(bias, n + 2 * e, N);
                    }
                float a = alpha;
                if (geglu) { // h * gelu(g) first, then on as a plain output with no bias
#pragma unroll
                    for (int e = 0; e < 4; ++e)
                        if (n + e < N)
                            h[e] = geglu_out(alpha * h[e] + (bias ? half_to_float(bias[n + e]) : 0.f),
                                             alpha * g[e] + (bias ? half_to_float(bias[N + n + e]) : 0.f));
                    a = 1.f;
                }
#pragma unroll
                for (int e = 0; e < 2; ++e)
                    if (n + 2 * e < N) store_pair(yv, ldy, m, n + 2 * e, N, h[2 * e], h[2 * e + 1], a, b[e], rp[e], res);
            }
            cluster_arrive();
            cluster_wait();
            return;
        }

#if OUT_F32
        // ---- Epilogue (fp32 scores): straight from the registers.
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const int n = n0 + j * 8 + 2 * t4;
            if (n >= N) continue;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int m = m0 + mt * 64 + row0 + 8 * h;
                    const float *d = &acc[mt][4 * j + 2 * h];
                    if (m < M) store_pair(yv, ldy, m, n, N, d[0], d[1], alpha, 0u, 0u, false);
                }
        }
#else
        // ---- Epilogue 1: alpha * acc + bias, rounded to fp16, into the [BM][BN+8] tile of its own
        // (the ring is the next tile's by now). Column c < BN/2 is w row w0 + c, c >= BN/2 is w1 + c
        // - BN/2 (the producer's two halves). The barrier first: every consumer has finished
        // reading the previous tile out of it.
        const int w0 = n0, w1 = geglu ? N + n0 : n0 + BN / 2;
        asm volatile("bar.sync 1, %0;\n" ::"n"(128 * CWG) : "memory");
#pragma unroll
        for (int j = 0; j < BN / 8; ++j) {
            const int col = j * 8 + 2 * t4, cc = j < BN / 16 ? col : col - BN / 2, wr = (j < BN / 16 ? w0 : w1) + cc;
            const bool ok0 = (geglu ? n0 + cc : wr) < N, ok1 = (geglu ? n0 + cc : wr) + 1 < N;
            const float b0 = bias && ok0 ? half_to_float(bias[wr]) : 0.f, b1 = bias && ok1 ? half_to_float(bias[wr + 1]) : 0.f;
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                const float *d = &acc[mt][4 * j];
                const u32 a0 = epi + ((row0 + mt * 64) * EPI_STR + col) * 2, a1 = a0 + 8 * EPI_STR * 2;
                asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a0), "r"(pack_h2(alpha * d[0] + b0, alpha * d[1] + b1)) : "memory");
                asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(a1), "r"(pack_h2(alpha * d[2] + b0, alpha * d[3] + b1)) : "memory");
            }
        }
        asm volatile("bar.sync 1, %0;\n" ::"n"(128 * CWG) : "memory");
        if (geglu) write_tile<BN / 2, true>(tid - 128, epi, yv, ldy, res, ldr, m0, n0, M, N);
        else write_tile<BN, false>(tid - 128, epi, yv, ldy, res, ldr, m0, n0, M, N);
#endif
    }
#undef FULL
#undef EMPTY
}

#define GEMM_PARAMS                                                                                                     \
    const __grid_constant__ sd_tmap ta, const __grid_constant__ sd_tmap tb, const sd_half *__restrict__ bias,            \
        const sd_half *res, void *yv, int M, int N, int KT, int tiles_n, int n_tiles, long long ldy, long long ldr,     \
        float alpha
extern "C" __global__ void __launch_bounds__(NT, BPS) sdiff_gemm_tma(GEMM_PARAMS) {
    gemm_body<false>(ta, tb, bias, res, yv, M, N, KT, tiles_n, n_tiles, ldy, ldr, alpha);
}
#if !OUT_F32
extern "C" __global__ void __launch_bounds__(NT, BPS) sdiff_gemm_tma_geglu(GEMM_PARAMS) {
    gemm_body<true>(ta, tb, bias, res, yv, M, N, KT, tiles_n, n_tiles, ldy, ldr, alpha);
}
#endif
