// sdiff attention forward: FlashAttention-2 style, fp16 in/out, fp32 accumulate (mma.sync m16n8k16)
// Plain NVRTC source: no CUDA headers (its one #include, mma.cuh, NVRTC gets as an in-memory header).
// fp16 is carried as 16-bit storage (unsigned short) and converted with PTX (cvt.rn.f16x2.f32);
// tensor cores read it raw.
//
// Defines: HEAD_DIM (multiple of 8, required), CAUSAL (0/1, default 0).
// Optional overrides (defaults below derive them from HEAD_DIM; the host helper
// sdiff__cu_attention_launch_dims mirrors the same table): ATT_MT (16-row m-tiles per
// warp), ATT_WARPS (warps per block), ATT_BN (keys per tile), ATT_MINB (min blocks/SM).
//
// Layout: a block owns BM = ATT_WARPS*16*ATT_MT consecutive queries of one (batch, head);
// warp w owns rows [w*16*MT, (w+1)*16*MT) of them, so softmax rows never leave a warp.
// Shared memory (dynamic, 16-byte aligned): two stages, each a K tile [BN][STR] followed by
// a V tile [BN][STR] (fp16, STR = DP + 8 halves; DP = HEAD_DIM rounded up to 16). The +8
// half (16-byte) row pad makes the 8 row addresses of every ldmatrix fall in different
// 16-byte bank groups: (2*DP+16) mod 128 is an odd multiple of 16. The Q tile [BM][STR] is
// staged in the stage-1 region (it is moved to registers before stage 1 is first filled),
// and at the end the output is staged in the stage-0 region for 16-byte global stores.
// Columns [HEAD_DIM, DP) of Q, K and V are zero-filled (cp.async src-size 0) so the padded
// dot products equal the real ones; rows past Lq / Lk are zero-filled too (a zero V row
// times a zero probability stays 0: stale shared memory could hold NaN/Inf bit patterns).

#ifndef HEAD_DIM
#error "HEAD_DIM must be defined"
#endif
#if (HEAD_DIM % 8) != 0
#error "HEAD_DIM must be a multiple of 8 (16-byte cp.async chunks)"
#endif
#ifndef CAUSAL
#define CAUSAL 0
#endif
#define DP (((HEAD_DIM) + 15) / 16 * 16)
/* Default tiles (mirrored by sdiff__cu_attention_launch_dims):
   DP <= 64: 2 m-tiles/warp (32 rows), 64 keys; DP <= 96: 32 rows, 32 keys;
   DP <= 128: 16 rows, 64 keys; larger: 16 rows, 32 keys. Chosen so the fp32 O/S
   accumulators and Q fragments fit in registers with 0 spills at 2 blocks/SM. */
#if DP <= 64
#define ATT_DEF_MT 2
#define ATT_DEF_BN 64
#elif DP <= 96
#define ATT_DEF_MT 2
#define ATT_DEF_BN 32
#elif DP <= 128
#define ATT_DEF_MT 1
#define ATT_DEF_BN 64
#else
#define ATT_DEF_MT 1
#define ATT_DEF_BN 32
#endif
#ifndef ATT_MT
#define ATT_MT ATT_DEF_MT
#endif
#ifndef ATT_BN
#define ATT_BN ATT_DEF_BN
#endif
#ifndef ATT_WARPS
#define ATT_WARPS 4
#endif
#ifndef ATT_MINB
#define ATT_MINB 2
#endif
#define MT ATT_MT
#define BN ATT_BN
#define NT (ATT_WARPS * 32)
#define BM (ATT_WARPS * 16 * MT)
#define STR (DP + 8)
#define CH (DP / 8)
#define DCH (HEAD_DIM / 8)
#define TILE_BYTES (BN * STR * 2)
#define STAGE_BYTES (2 * TILE_BYTES)
#define Q_BYTES (BM * STR * 2)
#define NEG_INF __int_as_float(0xff800000)
// HEAD_DIM = 16k + 8 (SD 1.x's 40; 72): the padding is the last 8 of DP. S = Q K^T ends with an
// m16n8k8 over the real 8 dims instead of an m16n8k16 over 8 real and 8 zero ones, and O += P V
// skips the n-tile that is all padding: 80 instead of 96 tensor-core steps per tile at D = 40.
#define HALF_LAST ((HEAD_DIM) % 16 == 8)

// Tile configuration, readable by the host (cuModuleGetGlobal) to check it matches.
extern "C" __constant__ int sdiff_attention_cfg[4] = {BM, BN, NT,
    STAGE_BYTES + (Q_BYTES > STAGE_BYTES ? Q_BYTES : STAGE_BYTES)};

#include "mma.cuh"

// K/V tile t -> stage st (the caller commits the group). Rows >= Lk and columns >= HEAD_DIM
// are zero-filled.
static __device__ __forceinline__ void load_kv(u32 ks, const sd_half *kb, const sd_half *vb, const sd_half *k,
                                               const sd_half *v, int kbase, int Lk, long long k_stride,
                                               long long v_stride, int tid) {
#pragma unroll
    for (int it = 0; it < (BN * CH + NT - 1) / NT; ++it) {
        const int i = tid + it * NT;
        if ((BN * CH) % NT == 0 || i < BN * CH) {
            const int r = i / CH, c = i - (i / CH) * CH;
            const int kr = kbase + r;
            const bool ok = kr < Lk && c < DCH;
            const u32 off = (r * STR + c * 8) * 2;
            cp_async16(ks + off, ok ? (const void *)(kb + (long long)kr * k_stride + c * 8) : (const void *)k,
                       ok ? 16 : 0);
            cp_async16(ks + TILE_BYTES + off, ok ? (const void *)(vb + (long long)kr * v_stride + c * 8) : (const void *)v,
                       ok ? 16 : 0);
        }
    }
}

// Launch: grid (ceil(Lq/BM), B*H, 1), block (NT, 1, 1), dynamic shared memory
// sdiff_attention_cfg[3] bytes (> 48 KB needs the function attribute raised).
// q/k/v/o: base pointers of the [B, L, *] row views; element (b, i, h, d) of q is at
// q[(b*Lq + i)*q_stride + h*HEAD_DIM + d] (k, v with Lk; o with Lq). Pointers 16-byte
// aligned, strides multiples of 8 elements. scale_log2e = log2(e) / sqrt(HEAD_DIM).
extern "C" __global__ void __launch_bounds__(NT, ATT_MINB)
sdiff_attention_fwd(const sd_half *__restrict__ q, const sd_half *__restrict__ k, const sd_half *__restrict__ v,
                    sd_half *__restrict__ o, int B, int H, int Lq, int Lk, long long q_stride, long long k_stride,
                    long long v_stride, long long o_stride, float scale_log2e) {
    pdl_begin();
    extern __shared__ __align__(16) unsigned char smem[];
    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int bh = blockIdx.y, b = bh / H, h = bh - b * H;
    const int q0 = blockIdx.x * BM;
    const int wrow = warp * 16 * MT; // first row of this warp inside the block
    const sd_half *qb = q + (long long)b * Lq * q_stride + h * HEAD_DIM;
    const sd_half *kb = k + (long long)b * Lk * k_stride + h * HEAD_DIM;
    const sd_half *vb = v + (long long)b * Lk * v_stride + h * HEAD_DIM;
    sd_half *ob = o + (long long)b * Lq * o_stride + h * HEAD_DIM;
    const u32 sbase = smem_addr(smem);
    const u32 qsm = sbase + STAGE_BYTES;

    // ---- Q tile -> shared (stage-1 region), one commit group.
#pragma unroll
    for (int it = 0; it < (BM * CH + NT - 1) / NT; ++it) {
        const int i = tid + it * NT;
        if ((BM * CH) % NT == 0 || i < BM * CH) {
            const int r = i / CH, c = i - (i / CH) * CH;
            const int qi = q0 + r;
            const bool ok = qi < Lq && c < DCH;
            cp_async16(qsm + (r * STR + c * 8) * 2, ok ? (const void *)(qb + (long long)qi * q_stride + c * 8) : (const void *)q,
                       ok ? 16 : 0);
        }
    }
    cp_commit();

    int n_tiles = (Lk + BN - 1) / BN;
#if CAUSAL
    {
        const int last = (q0 + BM < Lq ? q0 + BM : Lq); // rows < last; row i sees keys <= i
        const int nt2 = (last + BN - 1) / BN;
        n_tiles = nt2 < n_tiles ? nt2 : n_tiles;
    }
#endif


    load_kv(sbase, kb, vb, k, v, 0, Lk, k_stride, v_stride, tid);
    cp_commit();
    cp_wait<1>(); // Q landed (K/V tile 0 may still be in flight)
    __syncthreads();

    // ---- Q fragments (mma A operand, row-major 16x16 per (mt, kk)) -> registers.
    // ldmatrix.x4: lanes 0-15 address rows 0-15 at column kk*16, lanes 16-31 rows 0-15 at
    // column kk*16+8; matrices 0..3 = (rows 0-7, c0-7), (rows 8-15, c0-7), (rows 0-7, c8-15),
    // (rows 8-15, c8-15) = a0..a3 of the m16n8k16 A fragment.
    u32 qf[MT][DP / 16][4];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int kk = 0; kk < DP / 16; ++kk)
            ldsm_x4(qsm + ((wrow + mt * 16 + (lane & 15)) * STR + kk * 16 + (lane >> 4) * 8) * 2, qf[mt][kk][0],
                    qf[mt][kk][1], qf[mt][kk][2], qf[mt][kk][3]);
    __syncthreads(); // all warps hold Q before stage 1 is overwritten

    float oacc[MT][DP / 8][4];
    float mrow[MT][2], lrow[MT][2];
#pragma unroll
    for (int mt = 0; mt < MT; ++mt) {
#pragma unroll
        for (int dt = 0; dt < DP / 8; ++dt)
#pragma unroll
            for (int e = 0; e < 4; ++e) oacc[mt][dt][e] = 0.f;
        mrow[mt][0] = mrow[mt][1] = NEG_INF;
        lrow[mt][0] = lrow[mt][1] = 0.f;
    }
    const int g = lane >> 2, t4 = lane & 3; // mma fragment coordinates: row g / g+8, cols 2*t4, 2*t4+1

    // One barrier per tile: after it, tile j is visible to all warps and every warp has
    // finished tile j-1, so stage (j+1)&1 (= that of tile j-1) can be refilled while tile j
    // is computed.
    for (int j = 0; j < n_tiles; ++j) {
        cp_wait<0>(); // this thread's copies of tile j have landed
        __syncthreads();
        if (j + 1 < n_tiles) {
            load_kv(sbase + ((j + 1) & 1) * STAGE_BYTES, kb, vb, k, v, (j + 1) * BN, Lk, k_stride, v_stride, tid);
            cp_commit();
        }
        const u32 ks = sbase + (j & 1) * STAGE_BYTES, vs = ks + TILE_BYTES;

        // ---- S = Q K^T for this warp's rows: s[mt][nt] is the 16x8 block (rows mt*16.., keys nt*8..).
        // B operand (16 d x 8 keys, k-major) = rows of K as stored. ldmatrix.x4 (no trans):
        // matrices (keys 0-7, d 0-7), (keys 0-7, d 8-15), (keys 8-15, d 0-7), (keys 8-15, d 8-15)
        // = b0,b1 of key n-tile 2np and b0,b1 of n-tile 2np+1.
        float s[MT][BN / 8][4];
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
                for (int e = 0; e < 4; ++e) s[mt][nt][e] = 0.f;
#pragma unroll
        for (int kk = 0; kk < DP / 16; ++kk) {
#pragma unroll
            for (int np = 0; np < BN / 16; ++np) {
                u32 b0, b1, b2, b3;
                ldsm_x4(ks + ((np * 16 + (lane & 7) + ((lane >> 4) << 3)) * STR + kk * 16 + ((lane >> 3) & 1) * 8) * 2,
                        b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    if (HALF_LAST && kk == DP / 16 - 1) { // keys x dims 0-7 of this step: b0, b2
                        mma1688(s[mt][2 * np], qf[mt][kk], b0);
                        mma1688(s[mt][2 * np + 1], qf[mt][kk], b2);
                    } else {
                        mma16816(s[mt][2 * np], qf[mt][kk], b0, b1);
                        mma16816(s[mt][2 * np + 1], qf[mt][kk], b2, b3);
                    }
                }
            }
        }

        // ---- Masking (only on tiles that cross Lk or, causal, the diagonal of this warp).
        const int kbase = j * BN;
        bool need = kbase + BN > Lk;
#if CAUSAL
        need = need || (kbase + BN - 1 > q0 + wrow);
#endif
        if (need) {
#pragma unroll
            for (int mt = 0; mt < MT; ++mt)
#pragma unroll
                for (int nt = 0; nt < BN / 8; ++nt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        const int key = kbase + nt * 8 + 2 * t4 + (e & 1);
                        bool off = key >= Lk;
#if CAUSAL
                        const int row = q0 + wrow + mt * 16 + g + 8 * (e >> 1);
                        off = off || key > row;
#endif
                        if (off) s[mt][nt][e] = NEG_INF;
                    }
        }

        // ---- Online softmax in the log2 domain. Each row lives in the 4 lanes of a quad.
        // m: running max of scaled scores; l: this lane's partial row sum (quad-reduced at
        // the end; alpha is quad-uniform so partial sums rescale correctly).
#pragma unroll
        for (int mt = 0; mt < MT; ++mt)
#pragma unroll
            for (int r = 0; r < 2; ++r) {
                float mx = NEG_INF;
#pragma unroll
                for (int nt = 0; nt < BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * r], s[mt][nt][2 * r + 1]));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
                mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
                const float mnew = fmaxf(mrow[mt][r], mx * scale_log2e);
                const float muse = mnew == NEG_INF ? 0.f : mnew; // fully masked so far: avoid inf-inf
                const float alpha = ex2(mrow[mt][r] - muse);      // first tile: ex2(-inf) = 0
                mrow[mt][r] = mnew;
                float ls = 0.f;
#pragma unroll
                for (int nt = 0; nt < BN / 8; ++nt) {
                    const float p0 = ex2(fmaf(s[mt][nt][2 * r], scale_log2e, -muse));
                    const float p1 = ex2(fmaf(s[mt][nt][2 * r + 1], scale_log2e, -muse));
                    s[mt][nt][2 * r] = p0;
                    s[mt][nt][2 * r + 1] = p1;
                    ls += p0 + p1;
                }
                lrow[mt][r] = lrow[mt][r] * alpha + ls;
#pragma unroll
                for (int dt = 0; dt < DP / 8; ++dt) {
                    oacc[mt][dt][2 * r] *= alpha;
                    oacc[mt][dt][2 * r + 1] *= alpha;
                }
            }

        // ---- O += P V. The C fragments of key n-tiles 2kj, 2kj+1 are exactly the A fragment
        // of k-step kj (a0 = rows g keys 2t4.., a1 = rows g+8, a2/a3 = keys +8), so P never
        // touches shared memory. B operand (16 keys x 8 d) from V stored [key][d] (row-major
        // B) needs ldmatrix.trans: matrices (keys 0-7, d 0-7), (keys 8-15, d 0-7),
        // (keys 0-7, d 8-15), (keys 8-15, d 8-15) = b0,b1 of d-tile 2dp, b0,b1 of 2dp+1.
#pragma unroll
        for (int kj = 0; kj < BN / 16; ++kj) {
            u32 pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; ++mt) {
                pa[mt][0] = pack_h2(s[mt][2 * kj][0], s[mt][2 * kj][1]);
                pa[mt][1] = pack_h2(s[mt][2 * kj][2], s[mt][2 * kj][3]);
                pa[mt][2] = pack_h2(s[mt][2 * kj + 1][0], s[mt][2 * kj + 1][1]);
                pa[mt][3] = pack_h2(s[mt][2 * kj + 1][2], s[mt][2 * kj + 1][3]);
            }
#pragma unroll
            for (int dp = 0; dp < DP / 16; ++dp) {
                u32 b0, b1, b2, b3;
                ldsm_x4_t(vs + ((kj * 16 + (lane & 15)) * STR + dp * 16 + (lane >> 4) * 8) * 2, b0, b1, b2, b3);
#pragma unroll
                for (int mt = 0; mt < MT; ++mt) {
                    mma16816(oacc[mt][2 * dp], pa[mt], b0, b1);
                    if (!(HALF_LAST && dp == DP / 16 - 1)) mma16816(oacc[mt][2 * dp + 1], pa[mt], b2, b3); // else padding
                }
            }
        }
    }
    __syncthreads(); // the epilogue reuses the stage-0 region, which other warps may still read

    // ---- Epilogue: O / l -> fp16 -> this warp's rows of the stage-0 region -> 16-byte stores.
    // (No copies are pending: the last tile's wait drained them.)
#pragma unroll
    for (int mt = 0; mt < MT; ++mt)
#pragma unroll
        for (int r = 0; r < 2; ++r) {
            float l = lrow[mt][r];
            l += __shfl_xor_sync(0xffffffffu, l, 1);
            l += __shfl_xor_sync(0xffffffffu, l, 2);
            const float inv = l > 0.f ? 1.f / l : 0.f;
            const u32 rowaddr = sbase + ((wrow + mt * 16 + g + 8 * r) * STR + 2 * t4) * 2;
#pragma unroll
            for (int dt = 0; dt < DP / 8; ++dt) {
                const u32 val = pack_h2(oacc[mt][dt][2 * r] * inv, oacc[mt][dt][2 * r + 1] * inv);
                asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(rowaddr + dt * 16), "r"(val) : "memory");
            }
        }
    __syncwarp();
#pragma unroll
    for (int it = 0; it < (16 * MT * DCH + 31) / 32; ++it) {
        const int i = lane + it * 32;
        if ((16 * MT * DCH) % 32 == 0 || i < 16 * MT * DCH) {
            const int r = i / DCH, c = i - (i / DCH) * DCH;
            const int row = q0 + wrow + r;
            if (row < Lq) {
                u32 x0, x1, x2, x3;
                asm volatile("ld.shared.v4.b32 {%0,%1,%2,%3}, [%4];\n"
                             : "=r"(x0), "=r"(x1), "=r"(x2), "=r"(x3)
                             : "r"(sbase + ((wrow + r) * STR + c * 8) * 2) : "memory");
                asm volatile("st.global.v4.b32 [%0], {%1,%2,%3,%4};\n" ::"l"(ob + (long long)row * o_stride + c * 8),
                             "r"(x0), "r"(x1), "r"(x2), "r"(x3) : "memory");
            }
        }
    }
}
