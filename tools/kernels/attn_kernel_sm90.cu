// sdiff attention forward on Hopper (sm_90a): FlashAttention-2's algorithm on wgmma, fp16 in/out,
// fp32 accumulate. Same contract and signature as attn_kernel.cu (the mma.sync kernel for
// sm_80..sm_90), which stays the reference for everything said there about inputs and masking.
// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).
//
// Defines: HEAD_DIM (multiple of 8, <= 256, required), CAUSAL (0/1, default 0).
// Optional overrides (the host helper sdiff__cu_attention_sm90_launch_dims mirrors the defaults):
// ATT_BN (keys per tile), ATT_MINB (min blocks/SM the registers must allow).
//
// Work split: a block = 2 warpgroups (256 threads) owns BM = 128 consecutive queries of one
// (batch, head); warpgroup w owns queries [64w, 64w + 64), so a wgmma's M = 64 rows are one
// warpgroup's and softmax rows never leave a warp (warp k of the group: rows 16k..16k+15).
// Per key tile (BN keys), each warpgroup runs
//   S = Q K^T      wgmma m64nBNk16, Q and K from shared memory, DP/16 steps
//   online softmax on S in registers (log2 domain, as attn_kernel.cu)
//   O += P V       wgmma m64nDk16, P from registers (S's accumulator layout IS the A-fragment
//                  layout, so P never touches shared memory), V from shared memory, BN/16 steps.
// Shared memory: Q [BM][DP], then three stages of K [BN][DP] and V [BN][DP] (fp16), all in the
// no-swizzle "core matrix" layout: 8 rows x 16 bytes form a 128-byte core matrix, the DP/8 core
// matrices of an 8-row group follow each other (16-byte chunk c of row r at byte
// (r/8)*DP*16 + c*128 + (r%8)*16). wgmma reads whole core matrices (128 contiguous bytes, no
// bank conflicts for any DP), and a tile is written by thread i at byte 16*i (cp.async, no
// conflicts either). One layout serves all three operands: Q and K are K-major (rows = M or N,
// chunks along the reduction), V is MN-major (rows = keys = the reduction, chunks along D = N),
// read with wgmma's transpose bit. Columns [HEAD_DIM, DP) and rows past Lq / Lk are zero-filled
// (cp.async src-size 0): the padded dot products equal the real ones, and a zero V row times a
// zero probability stays 0.
// Pipeline: one barrier and one wgmma wait per key tile: P V of tile j and S of tile j+1 are
// issued together, tile j+2 is copied (cp.async) meanwhile; the other warpgroup and a second
// block (when registers allow) keep the tensor cores busy during a warpgroup's softmax.

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#if (HEAD_DIM % 8) != 0 || HEAD_DIM > 256
#error "HEAD_DIM must be a multiple of 8, at most 256"
#endif
#if !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "attn_kernel_sm90.cu needs --gpu-architecture=sm_90a (wgmma)"
#endif
#ifndef CAUSAL
#define CAUSAL 0
#endif
#define DP (((HEAD_DIM) + 15) / 16 * 16)
#ifndef ATT_BN                         // measured (NOTES.md): 64 keys and two blocks per SM beat 128 keys
#define ATT_BN 64
#endif
#ifndef ATT_MINB                       // two blocks per SM need <= 128 registers: D <= 96
#define ATT_MINB (DP <= 96 ? 2 : 1)
#endif
#define BN ATT_BN
#define NT 256
#define BM 128
#define CH (DP / 8)                    // 16-byte chunks (core matrices) per row
#define DCH (HEAD_DIM / 8)             // chunks holding real data
#define GROUP_BYTES (DP * 16)          // one 8-row group
#define Q_BYTES (BM * DP * 2)
#define TILE_BYTES (BN * DP * 2)
#define STAGE_BYTES (2 * TILE_BYTES)   // K tile, then V tile
#define OSTR (DP + 8)                  // epilogue staging row stride (halves)
#define SMEM_BYTES (Q_BYTES + 3 * STAGE_BYTES)
#define NEG_INF __int_as_float(0xff800000)
static_assert(BM * OSTR * 2 <= 3 * STAGE_BYTES, "the output tile is staged in the K/V stages");
static_assert(BN % 16 == 0 && BN <= 256, "keys per tile: a multiple of 16, at most 256");

// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches.
extern "C" __constant__ int sdiff_attention_cfg[4] = {BM, BN, NT, SMEM_BYTES};

#include "mma.cuh"

// An A operand in registers has mma.sync's m16n8k16 A-fragment layout per warp.
// d (64 x N, fp32) += A (64 x 16, fp16 registers a[4]) * B (16 x N, MN-major descriptor b: the
// transpose bit set, so B is stored with N contiguous, as V [keys][D] is). N: 40, 64, 72, 80, 128, 160.
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
    else if constexpr (N == 128)
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, {%64,%65,%66,%67}, %68, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else if constexpr (N == 160)
        asm volatile("wgmma.mma_async.sync.aligned.m64n160k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79}, {%80,%81,%82,%83}, %84, 1, 1, 1, 1;\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56), WG_D8(d, 64), WG_D8(d, 72) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b));
    else static_assert(N == 40, "wgmma_rs_tb: N must be 40, 64, 72, 80, 128 or 160");
}

// rows [base, base + R) of a [L, *] view (element (i, d) at src[i * stride + d]) -> the core-matrix
// layout at dst. Thread i writes bytes [16i, 16i + 16): chunk (i/8) % CH of row (i/8/CH)*8 + i%8.
template <int R>
static __device__ __forceinline__ void load_rows(u32 dst, const sd_half *src, long long stride, int base, int L,
                                                 const sd_half *any, int tid) {
#pragma unroll
    for (int it = 0; it < (R * CH + NT - 1) / NT; ++it) {
        const int i = tid + it * NT;
        if ((R * CH) % NT == 0 || i < R * CH) {
            const int rest = i >> 3, c = rest % CH, row = (rest / CH) * 8 + (i & 7), gr = base + row;
            const bool ok = gr < L && c < DCH;
            cp_async16(dst + i * 16, ok ? (const void *)(src + (long long)gr * stride + c * 8) : (const void *)any,
                       ok ? 16 : 0);
        }
    }
}

// Launch: grid (ceil(Lq/BM), B*H, 1), block (NT, 1, 1), dynamic shared memory
// sdiff_attention_cfg[3] bytes (above 48 KB: raise the function attribute first).
// Arguments as attn_kernel.cu's sdiff_attention_fwd.
extern "C" __global__ void __launch_bounds__(NT, ATT_MINB)
sdiff_attention_fwd(const sd_half *__restrict__ q, const sd_half *__restrict__ k, const sd_half *__restrict__ v,
                    sd_half *__restrict__ o, int B, int H, int Lq, int Lk, long long q_stride, long long k_stride,
                    long long v_stride, long long o_stride, float scale_log2e) {
    pdl_begin();
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, wg = warp >> 2;
    const int bh = blockIdx.y, b = bh / H, h = bh - b * H;
    const int q0 = blockIdx.x * BM;
    const int wrow = warp * 16; // this warp's first row in the block (warpgroup wg: rows 64wg..)
    const sd_half *qb = q + (long long)b * Lq * q_stride + h * HEAD_DIM;
    const sd_half *kb = k + (long long)b * Lk * k_stride + h * HEAD_DIM;
    const sd_half *vb = v + (long long)b * Lk * v_stride + h * HEAD_DIM;
    sd_half *ob = o + (long long)b * Lq * o_stride + h * HEAD_DIM;
    const u32 qsm = smem_addr(smem), stage0 = qsm + Q_BYTES;

    int n_tiles = (Lk + BN - 1) / BN;
#if CAUSAL
    {
        const int last = (q0 + BM < Lq ? q0 + BM : Lq); // rows < last; row i sees keys <= i
        const int nt2 = (last + BN - 1) / BN;
        n_tiles = nt2 < n_tiles ? nt2 : n_tiles;
    }
#endif
    // Three stages: tile j+1 must be resident while tile j's P V is still running, and a stage
    // is refilled only after every warpgroup has retired the P V that read it.
    load_rows<BM>(qsm, qb, q_stride, q0, Lq, q, tid);
    load_rows<BN>(stage0, kb, k_stride, 0, Lk, k, tid);
    load_rows<BN>(stage0 + TILE_BYTES, vb, v_stride, 0, Lk, v, tid);
    cp_commit();
    if (n_tiles > 1) {
        load_rows<BN>(stage0 + STAGE_BYTES, kb, k_stride, BN, Lk, k, tid);
        load_rows<BN>(stage0 + STAGE_BYTES + TILE_BYTES, vb, v_stride, BN, Lk, v, tid);
    }
    cp_commit();

    // Descriptors (no swizzle): K-major Q and K, leading (K-direction) core-matrix stride 128
    // bytes, stride (M/N-direction) one 8-row group; MN-major V, leading (K = keys) one 8-row
    // group, stride (N = D) 128 bytes. A 16-wide step advances two core matrices along K.
    const u64 q_desc = wgmma_desc(qsm + wg * 8 * GROUP_BYTES, 128, GROUP_BYTES);
    float sacc[BN / 2], oacc[HEAD_DIM / 2];
    float mrow[2] = {NEG_INF, NEG_INF}, lrow[2] = {0.f, 0.f};
#pragma unroll
    for (int i = 0; i < HEAD_DIM / 2; ++i) oacc[i] = 0.f;
    const int g = lane >> 2, t4 = lane & 3; // fragment coordinates: rows g, g+8; columns 2*t4, 2*t4+1
    // S = Q K^T of the tile in stage st (the first step overwrites S: scale_d = 0); not committed.
    auto issue_s = [&](int st) {
        const u32 ks = stage0 + st * STAGE_BYTES;
#pragma unroll
        for (int kk = 0; kk < DP / 16; ++kk)
            wgmma_ss<BN>(sacc, q_desc + (u64)((kk * 256) >> 4), wgmma_desc(ks + kk * 256, 128, GROUP_BYTES), kk > 0);
    };

    cp_wait<1>(); // Q and tile 0
    fence_proxy_async();
    __syncthreads();
    wgmma_pin<BN / 2>(sacc);
    wgmma_pin<HEAD_DIM / 2>(oacc); // keeps O's zeroing out of the S wgmma's flight
    wgmma_fence();
    issue_s(0);
    wgmma_commit();

    // Masking, online softmax and packing of tile j: S_j (sacc) -> P_j (pa), O rescaled.
    u32 pa[BN / 4];
    auto softmax_tile = [&](int j) {
        // ---- Masking (only on tiles that cross Lk or, causal, the diagonal of this warp).
        const int kbase = j * BN;
        bool need = kbase + BN > Lk;
#if CAUSAL
        need = need || (kbase + BN - 1 > q0 + wrow);
#endif
        if (need) {
#pragma unroll
            for (int i = 0; i < BN / 2; ++i) {
                const int key = kbase + (i >> 2) * 8 + 2 * t4 + (i & 1);
                bool off = key >= Lk;
#if CAUSAL
                off = off || key > q0 + wrow + g + 8 * ((i >> 1) & 1);
#endif
                if (off) sacc[i] = NEG_INF;
            }
        }
        // ---- Online softmax (log2 domain). Row r (g or g+8) of this lane: sacc[4n + 2r + {0,1}].
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float mx = NEG_INF;
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) mx = fmaxf(mx, fmaxf(sacc[4 * n + 2 * r], sacc[4 * n + 2 * r + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mnew = fmaxf(mrow[r], mx * scale_log2e);
            const float muse = mnew == NEG_INF ? 0.f : mnew; // fully masked so far: avoid inf-inf
            const float alpha = ex2(mrow[r] - muse);          // first tile: ex2(-inf) = 0
            mrow[r] = mnew;
            float ls = 0.f;
#pragma unroll
            for (int n = 0; n < BN / 8; ++n) {
                const float p0 = ex2(fmaf(sacc[4 * n + 2 * r], scale_log2e, -muse));
                const float p1 = ex2(fmaf(sacc[4 * n + 2 * r + 1], scale_log2e, -muse));
                sacc[4 * n + 2 * r] = p0;
                sacc[4 * n + 2 * r + 1] = p1;
                ls += p0 + p1;
            }
            lrow[r] = lrow[r] * alpha + ls;
#pragma unroll
            for (int n = 0; n < HEAD_DIM / 8; ++n) {
                oacc[4 * n + 2 * r] *= alpha;
                oacc[4 * n + 2 * r + 1] *= alpha;
            }
        }
        // P as the A operand: keys 16kk..16kk+15 are S's columns 2kk, 2kk+1 of 8, so the fragment
        // {row g keys 2t4.., row g+8, row g keys 2t4+8.., row g+8} = sacc[8kk .. 8kk+7] packed.
        // All of P is packed before the next fence: a register the wgmmas read must not be
        // written after it (ptxas would serialise them).
#pragma unroll
        for (int i = 0; i < BN / 4; ++i) pa[i] = pack_h2(sacc[2 * i], sacc[2 * i + 1]);
    };
    // O += P_j V_j (V of the tile in stage st); not committed.
    auto issue_pv = [&](int st) {
        const u32 vs = stage0 + st * STAGE_BYTES + TILE_BYTES;
#pragma unroll
        for (int kk = 0; kk < BN / 16; ++kk)
            wgmma_rs_tb<HEAD_DIM>(oacc, pa + 4 * kk, wgmma_desc(vs + kk * 2 * GROUP_BYTES, GROUP_BYTES, 128));
    };

    // Iteration j: S_j (issued before) and P V_{j-1} retire; softmax turns S_j into P_j; then
    // P_j V_j and S_{j+1} go to the tensor cores back to back, and the next softmax waits for
    // both. The last tile is peeled off, so every wgmma in the loop is unconditional (a
    // conditional one makes ptxas serialise them all).
    for (int j = 0; j + 1 < n_tiles; ++j) {
        wgmma_wait<0>();
        wgmma_pin<BN / 2>(sacc);
        wgmma_pin<HEAD_DIM / 2>(oacc);
        softmax_tile(j);
        // Tile j+1 landed for everyone, and every warpgroup retired P V_{j-1}: its stage,
        // (j+2)%3, takes tile j+2.
        cp_wait<0>();
        fence_proxy_async();
        __syncthreads();
        if (j + 2 < n_tiles) {
            const u32 st = stage0 + ((j + 2) % 3) * STAGE_BYTES;
            load_rows<BN>(st, kb, k_stride, (j + 2) * BN, Lk, k, tid);
            load_rows<BN>(st + TILE_BYTES, vb, v_stride, (j + 2) * BN, Lk, v, tid);
        }
        cp_commit();
        wgmma_pin<BN / 2>(sacc);
        wgmma_pin<HEAD_DIM / 2>(oacc);
        wgmma_fence();
        issue_pv(j % 3);
        issue_s((j + 1) % 3);
        wgmma_commit();
    }
    wgmma_wait<0>();
    wgmma_pin<BN / 2>(sacc);
    wgmma_pin<HEAD_DIM / 2>(oacc);
    softmax_tile(n_tiles - 1);
    wgmma_pin<HEAD_DIM / 2>(oacc);
    wgmma_fence();
    issue_pv((n_tiles - 1) % 3);
    wgmma_commit();
    wgmma_wait<0>();
    wgmma_pin<HEAD_DIM / 2>(oacc);
    __syncthreads(); // the epilogue reuses the stages, which the other warpgroup may still read

    // ---- Epilogue: O / l -> fp16 -> this warp's rows of the stage region ([BM][OSTR]) -> 16-byte stores.
#pragma unroll
    for (int r = 0; r < 2; ++r) {
        float l = lrow[r];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const float inv = l > 0.f ? 1.f / l : 0.f;
        const u32 rowaddr = stage0 + ((wrow + g + 8 * r) * OSTR + 2 * t4) * 2;
#pragma unroll
        for (int n = 0; n < HEAD_DIM / 8; ++n) {
            const u32 val = pack_h2(oacc[4 * n + 2 * r] * inv, oacc[4 * n + 2 * r + 1] * inv);
            asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(rowaddr + n * 16), "r"(val) : "memory");
        }
    }
    __syncwarp();
#pragma unroll
    for (int it = 0; it < (16 * DCH + 31) / 32; ++it) {
        const int i = lane + it * 32;
        if ((16 * DCH) % 32 == 0 || i < 16 * DCH) {
            const int r = i / DCH, c = i - (i / DCH) * DCH;
            const int row = q0 + wrow + r;
            if (row < Lq) {
                u32 x0, x1, x2, x3;
                asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                             : "r"(stage0 + ((wrow + r) * OSTR + c * 8) * 2) : "memory");
                asm volatile("st.global.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"l"(ob + (long long)row * o_stride + c * 8),
                             "r"(x0), "r"(x1), "r"(x2), "r"(x3) : "memory");
            }
        }
    }
}
