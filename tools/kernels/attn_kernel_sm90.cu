// sdiff attention forward on Hopper (sm_90a): FlashAttention-3's structure (a TMA producer
// warpgroup with one issuing thread, mbarrier pipelines, asynchronous wgmma consumers), fp16
// in/out, fp32 accumulate. Non-causal, head dims 40, 64 and 80: SD 1.x's 40 (its 4096- and
// 16384-token self-attention is most of the UNet's attention time) and 80 (its 32x32 level), SD
// 2.x's 64; 72 builds too (tools/kernels/bench_attn.cu checks it) but the library does not route
// it. The mma.sync kernel (attn_kernel.cu) keeps the rest.
// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).
//
// Defines: HEAD_DIM (40, 64, 72 or 80, required). Optional overrides, for tuning sweeps (the host
// helper sdiff__cu_attention_sm90_launch_dims mirrors the defaults; tests/test_cuda.c checks that
// it does, through ATT_EXPECT_*): ATT_NCW (consumer warpgroups, 2 or 3), ATT_BN (keys per tile),
// ATT_STAGES (K/V pipeline depth), ATT_PINGPONG (0: consumers issue without taking turns).
//
// Work split: a block owns BM = 64 * NCW consecutive queries of one (batch, head). Warpgroup 0 is
// the producer: one thread issues the TMA copies (Q once, then K and V tile by tile, each into
// its own pipeline stage) and the others leave at once. Consumer warpgroup c (1..NCW) owns 64
// queries; warp k of it rows 16k..16k+15, so softmax rows never leave a warp. Per key tile j:
//   S_j = Q K_j^T      wgmma m64nBNk16, Q and K from shared memory
//   online softmax     in registers (log2 domain, as attn_kernel.cu)
//   O += P_j V_j       wgmma m64nDk16, P from registers (S's accumulator layout is the A-fragment
//                      layout), V from shared memory through the transpose bit (MN-major).
// FlashAttention-3's intra-warpgroup overlap: S_{j+1} and P_j V_j are in flight together while the
// warpgroup waits, and tile j+1's softmax runs while P_j V_j is still on the tensor cores; the
// other consumer warpgroups fill the rest. No block-wide barrier in the loop: each stage has a
// "full" mbarrier (the TMA's bytes arrived) and an "empty" one (every consumer warp retired the
// wgmma that read it), separately for K and V, so K is recycled as soon as S is done.
// Work units: block u of a 1-D grid takes query tile u (tiles numbered q-tile fastest, then batch
// x head) with every key. Split tails (ATT_SPLIT=1 builds, which the library takes only for a
// launch that splits): the tiles from n_full on, those that would leave a partial last wave of
// blocks, are split instead into `splits` key ranges of whole key tiles, one block each (a tail
// tile's parts are consecutive blocks). A part writes its unnormalised O, row maxima and row sums
// (fp32, each consumer thread its own fragment) to `part`, counts itself in (one counter per tail
// tile), and the part that counts last merges the parts in part order (the same sums whichever
// finishes last), resets the counter for the next launch, and writes O. SD's 1024x1024 image has
// 1376 tiles of 16384 tokens at D = 40: ten waves on 132 SMs and 56 tiles, which run as halves
// (half a wave instead of a whole one; the host's rule: sdiff__cu_attention_sm90_launch_dims).
// Shared memory: the TMA writes 128-byte rows (64 fp16) in the 128-byte swizzle: 16-byte chunk c
// of row r at chunk c ^ (r & 7), every tile 1024-byte aligned. A head dim above 64 takes two such
// "atoms" per tile (dims 0..63, then 64..127), each its own TMA box and its own [rows][128 bytes]
// block. Dims past HEAD_DIM are outside the tensor map, so the TMA fills them with zeros (as it
// does rows past Lq / Lk). That is wgmma's K-major 128-byte-swizzle layout for Q and K (the k-th 16
// dims: atom k / 4, +32 bytes per k % 4), and its MN-major one for V (N = HEAD_DIM spans the atoms,
// whose blocks are the descriptor's "leading byte offset" apart).

#ifdef ATT_SPLIT_HEAD_DIM              // the library's variants: one -D each (the split tails' build)
#define HEAD_DIM ATT_SPLIT_HEAD_DIM
#define ATT_SPLIT 1
#endif
#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#ifndef ATT_SPLIT                      // 0: the split tails' code compiled out (n_full, splits, part and
#define ATT_SPLIT 0                    // count ignored; every block a whole tile)
#endif
#if HEAD_DIM != 40 && HEAD_DIM != 64 && HEAD_DIM != 72 && HEAD_DIM != 80
#error "HEAD_DIM must be 40, 64, 72 or 80 (at most two 128-byte swizzle atoms; P V's wgmma is written for these N)"
#endif
#if defined(CAUSAL) && CAUSAL
#error "attn_kernel_sm90.cu is non-causal only (causal attention runs on attn_kernel.cu)"
#endif
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "attn_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma, TMA)"
#endif
#ifndef ATT_NCW                        // measured (NOTES.md): 3 beat 2 at D <= 64; above, 3 x 160
#define ATT_NCW (HEAD_DIM <= 64 ? 3 : 2) // registers spill and serialise the wgmmas: 2 x 240
#endif
#ifndef ATT_BN
#define ATT_BN 128
#endif
#ifndef ATT_STAGES                     // measured (NOTES.md): 3 beat 2 at D = 64, equal at D = 40;
#define ATT_STAGES (HEAD_DIM <= 64 ? 3 : 2) // rows of two atoms fit two stages in shared memory
#endif
#ifndef ATT_PINGPONG                   // consumer warpgroups issue their wgmmas in turn (FA3's scheduler barrier)
#define ATT_PINGPONG 1
#endif
#define NCW ATT_NCW
#define BN ATT_BN
#define STAGES ATT_STAGES
#define NT (128 * (NCW + 1))
#define BM (64 * NCW)
// Registers per thread after setmaxnreg: the launch gives every thread 65536 / NT (ptxas allocates
// that much when a kernel uses setmaxnreg); the producer hands most of its share to the consumers.
#define PRODUCER_REGS (NCW == 2 ? 24 : 32)
#define CONSUMER_REGS (NCW == 2 ? 240 : 160)
static_assert(NCW == 2 || NCW == 3, "two or three consumer warpgroups (the register split is for those)");
static_assert(128 * (PRODUCER_REGS + NCW * CONSUMER_REGS) <= NT * ((65536 / NT) & ~7),
              "setmaxnreg would ask for more registers than the block holds (and wait forever)");
#define KSTEPS ((HEAD_DIM + 15) / 16)      // k16 steps of S = Q K^T (D = 40: 3, the last half zeros)
#define ATOMS ((HEAD_DIM + 63) / 64)       // 128-byte swizzle atoms per row
#define Q_ATOM (BM * 128)                  // one atom block of the Q tile
#define TILE_ATOM (BN * 128)               // one atom block of a K or V tile
#define Q_BYTES (ATOMS * Q_ATOM)
#define TILE_BYTES (ATOMS * TILE_ATOM)
#define BAR_OFF (Q_BYTES + 2 * STAGES * TILE_BYTES)
#define SMEM_BYTES (BAR_OFF + 8 * (1 + 4 * STAGES) + 8 + 1024) // + 8: the split merge's flag; + 1024: the
                                                               // base is rounded up to 1024
#define PSTRIDE (HEAD_DIM / 2 + 4)         // floats of a consumer thread's partial: O, m[2], l[2]
#define NEG_INF __int_as_float(0xff800000)
static_assert(BN % 16 == 0 && BN <= 256, "keys per tile: a multiple of 16, at most 256 (one TMA box)");
static_assert(BM <= 256, "queries per block: one TMA box");
#ifdef ATT_EXPECT_SMEM // what the host's launch helper says (tests/test_cuda.c): a mismatch would hang
static_assert(BM == ATT_EXPECT_BM && BN == ATT_EXPECT_BN && NT == ATT_EXPECT_NT && SMEM_BYTES == ATT_EXPECT_SMEM,
              "sdiff__cu_attention_sm90_launch_dims disagrees with the kernel's tiles");
#endif

// Tile configuration, readable by a host program (tools/kernels/bench_attn.cu, cuModuleGetGlobal).
extern "C" __constant__ int sdiff_attention_cfg[4] = {BM, BN, NT, SMEM_BYTES};

#include "mma.cuh"

// A whole tile from token `row` of (head h, item b): one box per atom, `atom` bytes apart in
// shared memory; all of them complete `bar`.
static __device__ __forceinline__ void tma_tile(u32 dst, u32 atom, const sd_tmap *map, int h, int row, int b, u32 bar) {
#pragma unroll
    for (int a = 0; a < ATOMS; ++a) tma_load4(dst + a * atom, map, 64 * a, h, row, b, bar);
}

// The split tails' exchange (below): a GPU-scope fence, the count, and loads that skip L1 (another
// block wrote them).
static __device__ __forceinline__ void fence_gpu() { asm volatile("fence.acq_rel.gpu;\n" ::: "memory"); }
static __device__ __forceinline__ int count_in(int *p) {
    int old;
    asm volatile("atom.acq_rel.gpu.global.add.s32 %0, [%1], 1;\n" : "=r"(old) : "l"(p) : "memory");
    return old;
}
static __device__ __forceinline__ float ld_cg(const float *p) {
    float v;
    asm volatile("ld.global.cg.f32 %0, [%1];\n" : "=f"(v) : "l"(p) : "memory");
    return v;
}

// d (64 x N, fp32) += A (64 x 16, fp16 registers a[4], mma.sync's m16n8k16 A-fragment layout per
// warp) * B (16 x N, MN-major 128-byte-swizzle descriptor b: N contiguous, as V [keys][D] is;
// N above 64 continues in the next atom block, the descriptor's leading byte offset further).
template <int N> static __device__ __forceinline__ void wgmma_rs_tb(float *d, const u32 *a, u64 b) {
    if constexpr (N == 40)
        asm volatile("wgmma.mma_async.sync.aligned.m64n40k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19}, {%20,%21,%22,%23}, %24, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D4(d, 16) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else if constexpr (N == 64)
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, {%32,%33,%34,%35}, %36, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else if constexpr (N == 72)
        asm volatile("wgmma.mma_async.sync.aligned.m64n72k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35}, {%36,%37,%38,%39}, %40, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D4(d, 32) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else if constexpr (N == 80)
        asm volatile("wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, {%40,%41,%42,%43}, %44, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else static_assert(N == 40, "wgmma_rs_tb: N must be 40, 64, 72 or 80");
}

// Launch: grid (n_full + (ceil(Lq/BM) * B*H - n_full) * splits, 1, 1), block (NT, 1, 1), dynamic
// shared memory sdiff_attention_cfg[3]
// bytes (raise the function attribute first). tq, tk, tv: tensor maps of q, k, v as
// [B][L][H][HEAD_DIM], dims innermost first (d, h, token, b) so that the strides grow
// (sdiff__cu_attention_sm90_tmaps: boxes of 64 dims x 1 head x BM tokens for q, BN for k and v,
// 128-byte swizzle). o: element (b, i, h, d) at o[(b*Lq + i)*o_stride + h*HEAD_DIM + d],
// o 16-byte aligned, o_stride a multiple of 8. Split tails (above; splits = 1 and n_full = every
// tile: none): splits <= ceil(Lk/BN); part holds (tiles - n_full) * splits * NCW * 128 * PSTRIDE
// floats; count (tiles - n_full) ints, zero before the first launch (the kernel leaves them zero).
extern "C" __global__ void __launch_bounds__(NT, 1)
sdiff_attention_fwd_tma(const __grid_constant__ sd_tmap tq, const __grid_constant__ sd_tmap tk,
                        const __grid_constant__ sd_tmap tv, sd_half *__restrict__ o, int H, int Lq, int Lk,
                        long long o_stride, float scale_log2e, int n_qt, int n_full, int splits,
                        float *__restrict__ part, int *__restrict__ count) {
    extern __shared__ __align__(1024) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    const int u = blockIdx.x, tail = ATT_SPLIT && u >= n_full ? (u - n_full) / splits : -1;
    const int ti = tail < 0 ? u : n_full + tail, np = tail < 0 ? 1 : splits, pi = tail < 0 ? 0 : (u - n_full) % splits;
    const int bh = ti / n_qt, b = bh / H, h = bh - b * H;
    const int q0 = (ti - bh * n_qt) * BM;
    const int n_tiles = (Lk + BN - 1) / BN, j0 = pi * n_tiles / np, nl = (pi + 1) * n_tiles / np - j0; // key tiles
    const u32 base = (smem_addr(smem) + 1023u) & ~1023u; // the swizzle repeats every 1024 bytes
    const u32 qsm = base, ksm = base + Q_BYTES, vsm = ksm + STAGES * TILE_BYTES, bars = base + BAR_OFF;
    // barriers: full_q, then per stage full_k, full_v, empty_k, empty_v
    const u32 full_q = bars;
#define FULL_K(s) (bars + 8 * (1 + 4 * (s)))
#define FULL_V(s) (FULL_K(s) + 8)
#define EMPTY_K(s) (FULL_K(s) + 16)
#define EMPTY_V(s) (FULL_K(s) + 24)
    if (tid == 0) {
        mbar_init(full_q, 1);
        for (int s = 0; s < STAGES; ++s) {
            mbar_init(FULL_K(s), 1);
            mbar_init(FULL_V(s), 1);
            mbar_init(EMPTY_K(s), 4 * NCW); // one arrival per consumer warp
            mbar_init(EMPTY_V(s), 4 * NCW);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
        tmap_prefetch(&tq); // while the previous kernel drains (before pdl_begin)
        tmap_prefetch(&tk);
        tmap_prefetch(&tv);
    }
    pdl_begin();
    __syncthreads();

    if (wg == 0) {
        // ---- Producer. It needs few registers: give them to the consumers.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(PRODUCER_REGS));
        if (tid == 0) {
            mbar_expect_tx(full_q, Q_BYTES);
            tma_tile(qsm, Q_ATOM, &tq, h, q0, b, full_q);
            for (int j = 0; j < nl; ++j) {
                const int s = j % STAGES;
                const u32 ph = ((j / STAGES) & 1) ^ 1;
                mbar_wait(EMPTY_K(s), ph);
                mbar_expect_tx(FULL_K(s), TILE_BYTES);
                tma_tile(ksm + s * TILE_BYTES, TILE_ATOM, &tk, h, (j0 + j) * BN, b, FULL_K(s));
                mbar_wait(EMPTY_V(s), ph);
                mbar_expect_tx(FULL_V(s), TILE_BYTES);
                tma_tile(vsm + s * TILE_BYTES, TILE_ATOM, &tv, h, (j0 + j) * BN, b, FULL_V(s));
            }
        }
        return;
    }

    // ---- Consumers.
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(CONSUMER_REGS));
    const int c = wg - 1, wrow = (warp & 3) * 16; // this warp's first row within its warpgroup's 64
    const u32 qwg = qsm + c * 64 * 128; // this warpgroup's rows in Q's first atom block
    float sacc[BN / 2], oacc[HEAD_DIM / 2];
    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f}, alpha[2];
#pragma unroll
    for (int i = 0; i < HEAD_DIM / 2; ++i) oacc[i] = 0.f;
    const int g = lane >> 2, t4 = lane & 3; // fragment coordinates: rows g, g+8; columns 2*t4, 2*t4+1
    u32 pa[BN / 4];

    // S = Q K^T of the K tile in stage s (the first step overwrites S: scale_d = 0); not committed.
    auto issue_s = [&](int s) {
        const u32 ks = ksm + s * TILE_BYTES;
#pragma unroll
        for (int kk = 0; kk < KSTEPS; ++kk)
            wgmma_ss<BN>(sacc, wgmma_desc_sw128(qwg + (kk >> 2) * Q_ATOM + (kk & 3) * 32),
                         wgmma_desc_sw128(ks + (kk >> 2) * TILE_ATOM + (kk & 3) * 32), kk > 0);
    };
    // O += P V of the V tile in stage s: 16 keys (two 8-row groups, 2048 bytes) a step; not committed.
    auto issue_pv = [&](int s) {
        const u32 vs = vsm + s * TILE_BYTES;
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk)
            wgmma_rs_tb<HEAD_DIM>(oacc, pa + 4 * kk, wgmma_desc_sw128_mn(vs + kk * 2048, TILE_ATOM));
    };
    // Masking and online softmax of this block's tile j (key tile j0 + j): S_j (sacc) -> unnormalised
    // P_j in sacc (fp32); m, l updated; alpha = the factor O must be scaled by before P_j V_j is added.
    auto softmax_tile = [&](int j) {
        const int kbase = (j0 + j) * BN;
        if (kbase + BN > Lk) { // the keys past Lk are zeros from the TMA: mask them
#pragma unroll
            for (int i = 0; i < BN / 2; ++i)
                if (kbase + (i >> 2) * 8 + 2 * t4 + (i & 1) >= Lk) sacc[i] = NEG_INF;
        }
        // Row r (g or g+8) of this lane: sacc[4n + 2r + {0,1}].
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = NEG_INF;
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(sacc[4 * n + 2 * r], sacc[4 * n + 2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mnew = fmaxf(mrow[r], mx * scale_log2e); // finite: every tile has a real key
            alpha[r] = ex2(mrow[r] - mnew);                       // first tile: ex2(-inf) = 0
            mrow[r] = mnew;
            float ls = 0.f;
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) {
                const float p0 = ex2(fmaf(sacc[4 * n + 2 * r], scale_log2e, -mnew));
                const float p1 = ex2(fmaf(sacc[4 * n + 2 * r + 1], scale_log2e, -mnew));
                sacc[4 * n + 2 * r] = p0;
                sacc[4 * n + 2 * r + 1] = p1;
                ls += p0 + p1;
            }
            lrow[r] = lrow[r] * alpha[r] + ls;
        }
    };
    auto rescale_o = [&]() {
#pragma unroll
        for (int n = 0; n < HEAD_DIM / 8; ++n) {
            oacc[4 * n] *= alpha[0];
            oacc[4 * n + 1] *= alpha[0];
            oacc[4 * n + 2] *= alpha[1];
            oacc[4 * n + 3] *= alpha[1];
        }
    };
    // P as the A operand: keys 16kk..16kk+15 are S's columns 2kk, 2kk+1 of 8, so the fragment
    // {row g keys 2t4.., row g+8, row g keys 2t4+8.., row g+8} = sacc[8kk .. 8kk+7] packed.
    auto pack_p = [&]() {
#pragma unroll
        for (int i = 0; i < BN / 4; ++i) pa[i] = pack_h2(sacc[2 * i], sacc[2 * i + 1]);
    };
    // FlashAttention-3's scheduler barrier: the consumer warpgroups take turns to issue their wgmmas
    // (named barrier 1 + c is warpgroup c's turn: it waits there, and the warpgroup before it
    // arrives when done issuing), so their softmaxes fall between each other's matrix products
    // instead of all running at once.
    auto turn_wait = [&]() {
        if (ATT_PINGPONG) asm volatile("bar.sync %0, 256;\n" ::"r"(1 + c) : "memory");
    };
    auto turn_pass = [&]() {
        if (ATT_PINGPONG) asm volatile("bar.arrive %0, 256;\n" ::"r"(1 + (c + 1) % NCW) : "memory");
    };
    // The first turn: warpgroup 0 arrives on its own barrier, so its first wait completes. The last
    // warpgroup's last pass arrives on barrier 1 with no wait to meet it: harmless, as the block
    // ends (FlashAttention-3 does the same; a split part's merge below uses other barriers); every
    // warpgroup waits and passes nl times.
    if (ATT_PINGPONG && c == 0) asm volatile("bar.arrive 1, 256;\n" ::: "memory");
    // One arrival per warp on an "empty" barrier, after this warp's wgmma that read the stage retired.
    auto release = [&](u32 bar) {
        if (lane == 0) mbar_arrive(bar);
    };

    // Tile 0: S_0, softmax, P_0.
    mbar_wait(full_q, 0);
    mbar_wait(FULL_K(0), 0);
    turn_wait();
    wgmma_fence();
    issue_s(0);
    wgmma_commit();
    turn_pass();
    wgmma_wait<0>();
    wgmma_pin<BN / 2>(sacc);
    release(EMPTY_K(0));
    softmax_tile(0);
    pack_p();
    // Tile j: S_j and P_{j-1} V_{j-1} in flight together; softmax of S_j while P V runs.
    // Every wgmma in the loop is unconditional (a conditional one makes ptxas serialise them).
    for (int j = 1; j < nl; ++j) {
        const int s = j % STAGES, sp = (j - 1) % STAGES;
        mbar_wait(FULL_K(s), (j / STAGES) & 1);
        turn_wait();
        wgmma_pin<BN / 2>(sacc);
        wgmma_fence();
        issue_s(s);
        wgmma_commit();
        rescale_o(); // alpha of tile j-1, before its P V is added
        mbar_wait(FULL_V(sp), ((j - 1) / STAGES) & 1);
        wgmma_pin<HEAD_DIM / 2>(oacc);
        wgmma_fence();
        issue_pv(sp);
        wgmma_commit();
        turn_pass();
        wgmma_wait<1>(); // S_j
        wgmma_pin<BN / 2>(sacc);
        release(EMPTY_K(s));
        softmax_tile(j);
        wgmma_wait<0>(); // P_{j-1} V_{j-1}: pa and V_{j-1}'s stage are free
        wgmma_pin<HEAD_DIM / 2>(oacc);
        release(EMPTY_V(sp));
        pack_p();
    }
    {
        const int sl = (nl - 1) % STAGES;
        rescale_o();
        mbar_wait(FULL_V(sl), ((nl - 1) / STAGES) & 1);
        wgmma_pin<HEAD_DIM / 2>(oacc);
        wgmma_fence();
        issue_pv(sl);
        wgmma_commit();
        wgmma_wait<0>();
        wgmma_pin<HEAD_DIM / 2>(oacc);
        release(EMPTY_V(sl));
    }

    // The rows' sums over the quad of lanes that holds them.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 1);
        lrow[r] += __shfl_xor_sync(0xffffffffu, lrow[r], 2);
    }
    if (np > 1) { // ---- A split tile's part: out to `part`; the last part to count in merges them all.
        const int ct = tid - 128, nct = NCW * 128; // consumer thread: its slot k at [k][ct] (coalesced)
        float *mine = part + ((long long)tail * splits + pi) * nct * PSTRIDE + ct;
#pragma unroll
        for (int i = 0; i < HEAD_DIM / 2; ++i) mine[i * nct] = oacc[i];
#pragma unroll
        for (int r = 0; r < 2; ++r) { mine[(HEAD_DIM / 2 + r) * nct] = mrow[r]; mine[(HEAD_DIM / 2 + 2 + r) * nct] = lrow[r]; }
        fence_gpu(); // this thread's partial, visible on the GPU before the count below
        const u32 flag = bars + 8 * (1 + 4 * STAGES);
        asm volatile("bar.sync 5, %0;\n" ::"n"(NCW * 128) : "memory"); // every consumer's partial is out
        if (ct == 0) {
            const int last = count_in(count + tail) == splits - 1;
            if (last) count[tail] = 0; // for the next launch (no other part touches it again)
            asm volatile("st.shared.u32 [%0], %1;\n" ::"r"(flag), "r"(last) : "memory");
        }
        asm volatile("bar.sync 5, %0;\n" ::"n"(NCW * 128) : "memory");
        u32 last;
        asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(last) : "r"(flag) : "memory");
        if (!last) return;
        fence_gpu(); // the other parts' partials, seen after their counts
        const float *all = part + (long long)tail * splits * nct * PSTRIDE + ct;
        float mx[2] = {NEG_INF, NEG_INF};
        for (int q = 0; q < splits; ++q)
#pragma unroll
            for (int r = 0; r < 2; ++r) mx[r] = fmaxf(mx[r], q == pi ? mrow[r] : ld_cg(all + (q * PSTRIDE + HEAD_DIM / 2 + r) * nct));
        float o[HEAD_DIM / 2], l[2] = {0.f, 0.f};
#pragma unroll
        for (int i = 0; i < HEAD_DIM / 2; ++i) o[i] = 0.f;
        for (int q = 0; q < splits; ++q) { // in part order: the same sums whichever part is last
            const float *pq = all + q * PSTRIDE * nct;
            float w[2];
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                w[r] = ex2((q == pi ? mrow[r] : ld_cg(pq + (HEAD_DIM / 2 + r) * nct)) - mx[r]);
                l[r] += w[r] * (q == pi ? lrow[r] : ld_cg(pq + (HEAD_DIM / 2 + 2 + r) * nct));
            }
#pragma unroll
            for (int i = 0; i < HEAD_DIM / 2; ++i) o[i] += w[(i >> 1) & 1] * (q == pi ? oacc[i] : ld_cg(pq + i * nct));
        }
#pragma unroll
        for (int i = 0; i < HEAD_DIM / 2; ++i) oacc[i] = o[i];
        lrow[0] = l[0];
        lrow[1] = l[1];
    }

    // ---- Epilogue: O / l -> fp16 -> this warp's 16 rows of its warpgroup's Q tile (free now: its
    // wgmmas retired), in the same swizzle and atom blocks (conflict-free) -> 16-byte stores of
    // the real dims. Chunk n of a row (dims 8n..8n+7): atom n / 8, chunk n % 8 in it.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        const float inv = 1.f / lrow[r];
        const int row = wrow + g + 8 * r;
        const u32 rowaddr = qwg + row * 128 + t4 * 4;
#pragma unroll
        for (int n = 0; n < HEAD_DIM / 8; ++n) {
            const u32 val = pack_h2(oacc[4 * n + 2 * r] * inv, oacc[4 * n + 2 * r + 1] * inv);
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(rowaddr + (n >> 3) * Q_ATOM + (((n & 7) ^ (row & 7)) << 4)),
                         "r"(val) : "memory");
        }
    }
    __syncwarp();
    sd_half *ob = o + (long long)b * Lq * o_stride + h * HEAD_DIM;
    constexpr int DCH = HEAD_DIM / 8; // 16-byte chunks of a row
#pragma unroll
    for (int it = 0; it < (16 * DCH + 31) / 32; ++it) {
        const int i = lane + it * 32;
        if ((16 * DCH) % 32 == 0 || i < 16 * DCH) {
            const int r = wrow + i / DCH, ch = i % DCH, row = q0 + c * 64 + r;
            if (row < Lq) {
                u32 x0, x1, x2, x3;
                asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                             : "r"(qwg + (ch >> 3) * Q_ATOM + r * 128 + (((ch & 7) ^ (r & 7)) << 4)) : "memory");
                asm volatile("st.global.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"l"(ob + (long long)row * o_stride + ch * 8),
                             "r"(x0), "r"(x1), "r"(x2), "r"(x3) : "memory");
            }
        }
    }
#undef FULL_K
#undef FULL_V
#undef EMPTY_K
#undef EMPTY_V
}
