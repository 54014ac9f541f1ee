#!/usr/bin/env python3
"""The tensor-core kernels' sources of truth are the .cu files in this folder (.cu, so nvcc -Xptxas -v
reads them directly): attn_kernel.cu (flash attention, mma.sync), attn_kernel_sm90.cu (flash
attention on Hopper: TMA and wgmma), conv_kernel.cu and conv_kernel_sm90.cu (implicit-GEMM convolution)
and gemm_kernel_sm90.cu (the Hopper GEMM), all including mma.cuh. This script turns each into C:
the region between its GENERATED markers in sdiff_cuda.h (what the library ships), and a
stand-alone header in build/ (attn_kernel.h, ...,
gemm_kernel_sm90.h; not committed) for the tools in this folder.
Usage: python3 tools/kernels/gen_kernels.py [--check]   (--check: exit 1 if sdiff_cuda.h is stale)"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.dirname(os.path.dirname(here))


def c_string(path):
    """The file as the body of a C string literal. Its #include "mma.cuh" stays: NVRTC gets mma.cuh
    as an in-memory header (sdiff__cu_mma_src, named "mma.cuh"), so the helpers ship once."""
    lines = open(os.path.join(here, path)).read().rstrip('\n').split('\n')
    return '\n'.join('    "%s\\n"' % l.replace('\\', '\\\\').replace('"', '\\"') for l in lines)


ATTN_DOC = r'''   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_80/86/89/90a, -DHEAD_DIM=D
   [-DCAUSAL=1]; name "sdiff_attention_fwd", extern "C"):

     __global__ void sdiff_attention_fwd(const half *q, const half *k, const half *v, half *o,
         int B, int H, int Lq, int Lk, long long q_stride, long long k_stride,
         long long v_stride, long long o_stride, float scale_log2e);

   half = 16-bit IEEE fp16 storage (unsigned short in the source). Element (b, i, h, d) of q is
   q[(b*Lq + i)*q_stride + h*D + d]; k, v likewise with Lk; o likewise with Lq (o_stride = H*D for
   a contiguous o). Requirements: D % 8 == 0 (SD: 40, 64, 72, 80, 128, 160), all strides multiples
   of 8 elements, all base pointers 16-byte aligned (cp.async / 16-byte stores), Lq, Lk >= 1.
   scale_log2e = 1.4426950408889634f / sqrtf((float)D). CAUSAL=1: query i sees keys 0..i.

   Launch: sdiff__cu_attention_launch_dims() below gives grid = (ceil(Lq/BM), B*H, 1),
   block = (128, 1, 1) and the dynamic shared memory in bytes. When it is above 48 KB
   (only D in (96, 128]) raise CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES on the function first
   (all sizes fit sm_86/89's 99 KB). Tile table (must match the #if table in the source; the
   module also exports __constant__ int sdiff_attention_cfg[4] = {BM, BN, threads, smem}):
     padded D (DP)  rows/warp  BM   keys/tile BN   smem (bytes)
     <= 64          32         128  64             (D=64: 36864, D=40: 28672)
     <= 96          32         128  32             (D=72, 80: 33792)
     <= 128         16         64   64             (D=128: 69632)
     > 128          16         64   32             (D=160: 43008)
   smem = STAGE + max(STAGE, BM*(DP+8)*2), STAGE = 2*BN*(DP+8)*2 (K and V tiles of one stage). */
'''
ATTN_HELPER = r'''
/* Launch configuration for sdiff_attention_fwd compiled with -DHEAD_DIM=head_dim. */
static inline void sdiff__cu_attention_launch_dims(int head_dim, int Lq, int B, int H, unsigned grid[3], unsigned block[3],
                                            unsigned *smem) {
    int dp = (head_dim + 15) / 16 * 16, mt, bn, warps = 4, bm, str;
    unsigned stage, qbytes;
    if (dp <= 64) { mt = 2; bn = 64; }
    else if (dp <= 96) { mt = 2; bn = 32; }
    else if (dp <= 128) { mt = 1; bn = 64; }
    else { mt = 1; bn = 32; }
    bm = warps * 16 * mt;
    str = dp + 8;
    stage = (unsigned)(2 * bn * str * 2);
    qbytes = (unsigned)(bm * str * 2);
    grid[0] = (unsigned)((Lq + bm - 1) / bm);
    grid[1] = (unsigned)(B * H);
    grid[2] = 1;
    block[0] = (unsigned)(warps * 32);
    block[1] = block[2] = 1;
    *smem = stage + (qbytes > stage ? qbytes : stage);
}
'''
ATTN90_DOC = r'''   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
   -DHEAD_DIM=D, D = 40, 64, 72 or 80; name "sdiff_attention_fwd_tma", extern "C"):

     __global__ void sdiff_attention_fwd_tma(const CUtensorMap tq, const CUtensorMap tk,
         const CUtensorMap tv, half *o, int H, int Lq, int Lk, long long o_stride, float scale_log2e);

   Non-causal only; Lq, Lk >= 1 (with no keys the consumers would wait forever). q, k, v as for
   attn_kernel.cu (element (b, i, h, d) of q at q[(b*Lq + i)*q_stride + h*D + d]), given as TMA
   tensor maps that sdiff__cu_attention_sm90_tmaps() below makes with the driver's
   cuTensorMapEncodeTiled; they need 16-byte aligned bases and strides in multiples of 8
   elements. o as for attn_kernel.cu (16-byte aligned, o_stride a multiple of 8). The results
   equal attn_kernel.cu's up to fp32 rounding order.

   Launch: sdiff__cu_attention_sm90_launch_dims() below gives the grid (1-D: a block per query
   tile of BM queries of one (batch item, head), and where the tiles would leave a partial last
   wave on the GPU's n_sm SMs, `splits` blocks per tail tile, each a range of the keys: the
   kernel's split = {n_qt, n_full, splits} arguments), the floats the split tails' partials take
   (the kernel's `part`; its `count` takes tiles - n_full ints, zero before the first launch),
   block = (128 * (consumer warpgroups + 1), 1, 1) and the dynamic shared memory in bytes (raise
   CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first: it is above 48 KB). Tiles (they must
   match the source's defaults: tests/test_cuda.c compiles each variant with them as
   -DATT_EXPECT_*; the module also exports __constant__ int sdiff_attention_cfg[4] = {BM, BN,
   threads, smem}): a row of D dims is A = ceil(D/64) 128-byte atoms.
     A = 1 (D <= 64): 3 consumer warpgroups, BM = 192 queries, 3 K/V stages
     A = 2 (D <= 128): 2 consumer warpgroups, BM = 128 queries, 2 K/V stages
   BN = 128 keys; one more warpgroup is the TMA producer; smem = A*(BM + 2*stages*BN)*128 +
   8*(1 + 4*stages) + 8 + 1024 (the tiles, the mbarriers, the merge's flag, and room to align the
   tiles to 1024 bytes). */
'''
ATTN90_HELPER = r'''
/* Launch configuration for sdiff_attention_fwd_tma compiled with -DHEAD_DIM=head_dim, on a GPU of
   n_sm SMs (0: never split); tile = {BM, BN}, the rows of the tensor maps' boxes; split = the
   kernel's {n_qt, n_full, splits}. Returns the floats of the kernel's `part` (0: no split). The
   tail: the tiles - n_full = tiles % n_sm last tiles, when there is more than one wave, split into
   the s of 2..4 that makes the tail's waves, ceil(tail * s / n_sm) / s of a whole tile's time,
   shortest; none unless that saves at least a quarter of a tile, and only into parts of at least
   32 key tiles (4096 keys): a part pays for its own Q load, pipeline fill and merge, and thirds of
   4096 keys (SD's 64x64 level) made the kernel slower, 0.1377 -> 0.1427 ms, while halves of 16384
   (its 1024x1024 image) made it faster, 1.912 -> 1.715 ms (H100, tools/kernels/NOTES.md, S16). */
static inline long long sdiff__cu_attention_sm90_launch_dims(int head_dim, int Lq, int Lk, int B, int H, int n_sm,
                                                             unsigned grid[3], unsigned block[3], unsigned *smem,
                                                             unsigned tile[2], int split[3]) {
    const int atoms = (head_dim + 63) / 64, ncw = atoms == 1 ? 3 : 2, bm = 64 * ncw, bn = 128,
              stages = atoms == 1 ? 3 : 2;
    const int n_qt = (Lq + bm - 1) / bm, tiles = n_qt * B * H, key_tiles = (Lk + bn - 1) / bn;
    const int tail = n_sm > 0 && tiles > n_sm ? tiles % n_sm : 0;
    int splits = 1;
    double best = 1.0;
    for (int s = 2; tail && s <= 4 && key_tiles / s >= 32; s++) {
        const double t = (double)((tail * s + n_sm - 1) / n_sm) / s;
        if (t < best) best = t, splits = s;
    }
    if (best > 0.75) splits = 1;
    const int n_full = splits > 1 ? tiles - tail : tiles;
    tile[0] = (unsigned)bm;
    tile[1] = (unsigned)bn;
    split[0] = n_qt, split[1] = n_full, split[2] = splits;
    grid[0] = (unsigned)(n_full + (tiles - n_full) * splits);
    grid[1] = grid[2] = 1;
    block[0] = (unsigned)(128 * (ncw + 1));
    block[1] = block[2] = 1;
    *smem = (unsigned)(atoms * (bm + 2 * stages * bn) * 128 + 8 * (1 + 4 * stages) + 8 + 1024);
    return splits > 1 ? (long long)(tiles - n_full) * splits * ncw * 128 * (head_dim / 2 + 4) : 0;
}
/* The tensor maps (CUtensorMap: 128 bytes each, 64-byte aligned) of q, k and v for sdiff_attention_fwd_tma:
   each a [B][L][H][D] fp16 tensor seen as 4-D with dims innermost first (d, head, token, item),
   so that the byte strides (2D, 2*row_stride, 2*L*row_stride) grow; boxes of 64 dims (those past
   D are outside the tensor: the TMA writes zeros) x 1 head x bm (q) or bn (k, v) tokens, in the
   128-byte swizzle. bm, bn: launch_dims' tile (the kernel's sdiff_attention_cfg[0..1]). Returns 0, or the first
   failing CUresult (the bases must be 16-byte aligned, the row strides multiples of 8). */
static inline int sdiff__cu_attention_sm90_tmaps(sdiff__cu_tmap_encode_fn encode, void *maps[3], const void *q,
                                          const void *k, const void *v, int head_dim, int H, int B, long long Lq,
                                          long long Lk, long long q_stride, long long k_stride, long long v_stride,
                                          unsigned bm, unsigned bn) {
    const void *base[3] = {q, k, v};
    const long long len[3] = {Lq, Lk, Lk}, stride[3] = {q_stride, k_stride, v_stride};
    const unsigned ones[4] = {1, 1, 1, 1};
    for (int i = 0; i < 3; i++) {
        const unsigned long long dims[4] = {(unsigned long long)head_dim, (unsigned long long)H,
                                            (unsigned long long)len[i], (unsigned long long)B};
        const unsigned long long strides[3] = {(unsigned long long)head_dim * 2, (unsigned long long)stride[i] * 2,
                                               (unsigned long long)(len[i] * stride[i] * 2)};
        const unsigned box[4] = {64, 1, i == 0 ? bm : bn, 1};
        /* 6: CU_TENSOR_MAP_DATA_TYPE_FLOAT16; 0: no interleave; 3: CU_TENSOR_MAP_SWIZZLE_128B;
           2: CU_TENSOR_MAP_L2_PROMOTION_L2_128B; 0: out-of-bounds elements read as zero */
        const int r = encode(maps[i], 6, 4, (void *)base[i], dims, strides, box, ones, 0, 3, 2, 0);
        if (r) return r;
    }
    return 0;
}
'''
CONV_DOC = r'''   Kernel (compile with NVRTC, mma.cuh given as a header, -DCONV_TILE=t: t in 0..2 (mma.sync) for
   --gpu-architecture=sm_80/86/89/90a, t in 3..5 (wgmma) for sm_90a only; name "sdiff_conv2d_fwd",
   extern "C"):

     __global__ void sdiff_conv2d_fwd(const half *x, const half *w, const half *bias,
         const half *res, half *y, int B, int H, int W, int C, int KH, int KW, int Ho, int Wo,
         int stride, int pad, int Co, int vec);

   x [B, H, W, C] and y, res [B, Ho, Wo, Co] NHWC, w [Co, KH, KW, C]; bias [Co] and res may be
   NULL, res may be y. y = fp16(fp16(conv(x, w) + bias) + res), fp32 accumulation.
   Requirements: C % 64 == 0, x and w 16-byte aligned, B*Ho*Wo*Co, B*H*W*C and Co*KH*KW*C
   below 2^31; vec = 1 only when Co % 8 == 0 and y, res are 16-byte aligned.

   Launch: sdiff__cu_conv2d_launch_dims() below gives grid = (ceil(M/BM), ceil(Co/BN), 1) for
   M = B*Ho*Wo, the block and the dynamic shared memory; above 48 KB, raise
   CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first. Tile table (must match the #if table
   in the source; the module exports __constant__ int sdiff_conv2d_cfg[4] = {BM, BN, threads,
   smem}; K tiles of 64; smem = max(stages*(BM+BN)*128, BM*(BN+8)*2)):
     CONV_TILE  BM   BN   warps  stages  smem (bytes)  instruction
     0          128  128  8      3       98304         mma.sync
     1          128  64   4      3       73728         mma.sync
     2          64   64   4      3       49152         mma.sync
     3          128  256  8      4       196608        wgmma (sm_90a)
     4          128  160  8      4       147456        wgmma (sm_90a)
     5          128  128  8      4       131072        wgmma (sm_90a) */
'''
CONV_HELPER = r'''
/* Launch configuration for sdiff_conv2d_fwd compiled with -DCONV_TILE=tile, M = B*Ho*Wo. */
static inline void sdiff__cu_conv2d_launch_dims(int tile, long long M, int Co, unsigned grid[3], unsigned block[3],
                                         unsigned *smem) {
    static const int bm_of[6] = {128, 128, 64, 128, 128, 128}, bn_of[6] = {128, 64, 64, 256, 160, 128},
                     warps_of[6] = {8, 4, 4, 8, 8, 8}, stages_of[6] = {3, 3, 3, 4, 4, 4};
    const int bm = bm_of[tile], bn = bn_of[tile];
    const unsigned pipe = (unsigned)(stages_of[tile] * (bm + bn) * 128), epi = (unsigned)(bm * (bn + 8) * 2);
    grid[0] = (unsigned)((M + bm - 1) / bm);
    grid[1] = (unsigned)((Co + bn - 1) / bn);
    grid[2] = 1;
    block[0] = (unsigned)(warps_of[tile] * 32);
    block[1] = block[2] = 1;
    *smem = pipe > epi ? pipe : epi;
}
/* The tile for M x Co outputs on n_sm multiprocessors, among the mma.sync tiles 0-2 or, with
   wgmma (sm_90a), the wgmma tiles 3-5: the least estimated time, where a tile variant's time is
   its waves (blocks / (n_sm * blocks resident per SM)) times the work of one wave per SM
   (resident blocks * BM * BN), over its relative efficiency (big tiles reuse each loaded value
   more). A partial wave costs a whole one: that is what makes small tiles win on small outputs
   (SD's 8x8 and 16x16 levels) and 128 x 160 win on SD's 320 channels. */
static inline int sdiff__cu_conv2d_pick_tile(long long M, int Co, int n_sm, int wgmma) {
    static const int bm_of[6] = {128, 128, 64, 128, 128, 128}, bn_of[6] = {128, 64, 64, 256, 160, 128},
                     resident[6] = {2, 3, 3, 1, 1, 1};
    static const double eff[6] = {1.0, 0.9, 0.75, 1.0, 0.95, 0.9};
    const int first = wgmma ? 3 : 0;
    int best = first;
    double best_cost = 0;
    for (int t = first; t < first + 3; ++t) {
        const long long blocks = ((M + bm_of[t] - 1) / bm_of[t]) * ((Co + bn_of[t] - 1) / bn_of[t]);
        const long long per_wave = (long long)n_sm * resident[t], waves = (blocks + per_wave - 1) / per_wave;
        const double cost = (double)waves * resident[t] * bm_of[t] * bn_of[t] / eff[t];
        if (t == first || cost < best_cost) { best = t; best_cost = cost; }
    }
    return best;
}
'''
CONV90_DOC = r'''   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
   -DCONV_TILE=t, t = 0..4 (BM x BN = 128 x 80, 128 x 128, 128 x 160, 128 x 256, 256 x 128: the
   table sdiff__cu_conv2d_tma_tiles below); name "sdiff_conv2d_fwd_tma", extern "C"):

     __global__ void sdiff_conv2d_fwd_tma(const CUtensorMap ta, const CUtensorMap tb,
         const half *bias, const half *res, half *y, int M, int Ho, int Wo, int C, int KW, int KT,
         int padh, int padw, int stride, int Co, int vec, int phase, int res_px, int res_ld);

   The convolution of conv_kernel.cu (same layouts, same result up to fp32 rounding order) for
   output rows that tile into boxes of BM pixels (sdiff__cu_conv2d_tma_box below) whose input
   boxes (stride times as large) fit the TMA's 256, x and w given as the tensor maps
   sdiff__cu_conv2d_tma_maps() makes with that stride (x, w 16-byte aligned, C % 64 == 0).
   M = B*Ho*Wo, KT = KH*KW*C/64; y, res, bias, vec as for conv_kernel.cu, with the
   padding per direction; phase 0..3 (else -1): output pixel (b, i, j) goes to (b, 2i + phase/2,
   2j + phase%2) of a [B, 2Ho, 2Wo, Co] y (a nearest 2x upsampling's 3x3 convolution, one phase).
   res (optional) has y's layout (res_px = 1, res_ld = Co; always when phase >= 0), or one row
   per res_px output pixels, res_ld values apart (res_px = Ho*Wo: a row per image).

   Launch: sdiff__cu_conv2d_tma_launch_dims() gives grid = (S, ceil(M/BM), ceil(Co/BN)), launched
   in clusters of (S, 1, 1) when S > 1 (split-K: S blocks share an output tile, S <= KT), block =
   (384, 1, 1) (a TMA producer warpgroup and two wgmma consumer warpgroups of BM/2 rows) and the
   dynamic shared memory (raise CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES first): stages =
   min(8, (227 KB - 1280) / ((BM + BN) * 128)) K tiles of 64 in flight, smem = stages * (BM +
   BN) * 128 + 256 + 1024 (the mbarriers, and room to align the tiles to 1024 bytes); the module
   exports __constant__ int sdiff_conv2d_tma_cfg[4] = {BM, BN, threads, smem}. */
'''
CONV90_HELPER = r'''
/* The tiles {BM, BN} of sdiff_conv2d_fwd_tma's variants, -DCONV_TILE=0..4 (the kernel's table). */
static const int sdiff__cu_conv2d_tma_tiles[5][2] = {{128, 80}, {128, 128}, {128, 160}, {128, 256}, {256, 128}};
/* Launch configuration for sdiff_conv2d_fwd_tma compiled with -DCONV_TILE=tile, M = B*Ho*Wo, split-K
   over clusters of `split` blocks. */
static inline void sdiff__cu_conv2d_tma_launch_dims(int tile, int split, long long M, int Co, unsigned grid[3],
                                             unsigned block[3], unsigned *smem) {
    const int bm = sdiff__cu_conv2d_tma_tiles[tile][0], bn = sdiff__cu_conv2d_tma_tiles[tile][1];
    const unsigned stage = (unsigned)((bm + bn) * 128), fit = (227u * 1024u - 1280u) / stage,
                   stages = fit > 8 ? 8 : fit;
    grid[0] = (unsigned)split;
    grid[1] = (unsigned)((M + bm - 1) / bm);
    grid[2] = (unsigned)((Co + bn - 1) / bn);
    block[0] = 384;
    block[1] = block[2] = 1;
    *smem = stages * stage + 256 + 1024;
}
/* The variant (tile) the library takes for M x Co outputs and KT K tiles, with the split-K
   cluster size (*split). fit[s]: how many clusters of s blocks the GPU runs at once (fit[1]: the
   SMs; a cluster must fit in one GPC, so an H100 holds 66 pairs but only 15 clusters of 8; 0: clusters
   of s are not to be used, nor larger ones).
   box_ok[t]: the output tiles into tile t's boxes (sdiff__cu_conv2d_tma_box). The least estimated
   time: waves x (K tiles per block + fixed costs) x BM x BN / efficiency, a wave being fit[s]
   clusters and a partial wave costing a whole one. The efficiencies (work per time of a full
   wave, relative to 128 x 256; a smaller tile reads more from L2 per multiply-add: 1/BM + 1/BN)
   and the fixed costs in K tiles (a block's pipeline fill and epilogue: 2; the split's exchange:
   4 + s) were fitted to every tile at every split on SD's shapes (bench_conv.cu, H100, S8-5 in
   tools/PERF.md): the pick is the fastest measured on all 21 shapes but one, which it misses by
   1.2 us. */
static inline int sdiff__cu_conv2d_tma_pick(long long M, int Co, long long KT, const int fit[9], const int box_ok[5],
                                     int *split) {
    static const double eff[5] = {0.65, 0.8, 0.93, 1.0, 0.9};
    const double block_cost = 2;
    int best = -1;
    double best_cost = 0;
    *split = 1;
    for (int t = 0; t < 5; ++t)
        for (int s = 1; s <= 8 && s <= KT && fit[s] > 0 && box_ok[t]; ++s) {
            const int bm = sdiff__cu_conv2d_tma_tiles[t][0], bn = sdiff__cu_conv2d_tma_tiles[t][1];
            const long long tiles = ((M + bm - 1) / bm) * ((Co + bn - 1) / bn), waves = (tiles + fit[s] - 1) / fit[s];
            const double cost = (double)waves * ((double)((KT + s - 1) / s) + block_cost + (s > 1 ? 4 + s : 0)) *
                                bm * bn / eff[t];
            if (best < 0 || cost < best_cost) { best = t; *split = s; best_cost = cost; }
        }
    return best;
}
/* The box of bm output pixels (128 or 256) a block computes, box = {bw, bh, bn} (pixels of a
   row, rows, images) with bw * bh * bn = bm, such that the blocks' boxes tile the output without
   wrapping: bm pixels of a row when Wo is a multiple of bm, whole rows when Wo divides bm and the
   rows divide Ho, whole images when an image divides bm. Returns 0 when none fits (the caller
   takes conv_kernel.cu). SD's latents and images (powers of two) always fit. */
static inline int sdiff__cu_conv2d_tma_box(int Ho, int Wo, int bm, unsigned box[3]) {
    if (Wo <= 0 || Ho <= 0) return 0;
    if (Wo % bm == 0) { box[0] = (unsigned)bm; box[1] = 1; box[2] = 1; return 1; }
    if (bm % Wo) return 0;
    if (Ho % (bm / Wo) == 0) { box[0] = (unsigned)Wo; box[1] = (unsigned)(bm / Wo); box[2] = 1; return 1; }
    if (Ho * Wo <= bm && bm % (Ho * Wo) == 0) {
        box[0] = (unsigned)Wo; box[1] = (unsigned)Ho; box[2] = (unsigned)(bm / (Ho * Wo));
        return 1;
    }
    return 0;
}
/* The two tensor maps (CUtensorMap: 128 bytes each, 64-byte aligned) of sdiff_conv2d_fwd_tma: x
   [B][H][W][C] as 4-D (C, W, H, B) with boxes of 64 channels x the output box (a tap's input box:
   the output box shifted, at stride 1; at stride s s times as large in W and H, of which the TMA
   takes every s-th pixel and row: its element strides; box[0] s, box[1] s <= 256), and w [Co][K]
   as 2-D (K, Co) with boxes of 64 x bn (the tile's BN); both in the 128-byte swizzle, zeros
   outside (the padding). Returns 0, or the first failing CUresult (x, w must be 16-byte aligned;
   C % 8 == 0; stride 1..8). */
static inline int sdiff__cu_conv2d_tma_maps(sdiff__cu_tmap_encode_fn encode, void *maps[2], const void *x, const void *w,
                                     int B, int H, int W, int C, int Co, long long K, const unsigned box[3],
                                     int bn, int stride) {
    const unsigned ones[4] = {1, 1, 1, 1}, steps[4] = {1, (unsigned)stride, (unsigned)stride, 1};
    const unsigned long long xd[4] = {(unsigned long long)C, (unsigned long long)W, (unsigned long long)H,
                                      (unsigned long long)B},
                             xs[3] = {(unsigned long long)C * 2, (unsigned long long)W * C * 2,
                                      (unsigned long long)H * W * C * 2},
                             wd[2] = {(unsigned long long)K, (unsigned long long)Co}, ws[1] = {(unsigned long long)K * 2};
    const unsigned xbox[4] = {64, box[0] * (unsigned)stride, box[1] * (unsigned)stride, box[2]}, wbox[2] = {64, (unsigned)bn};
    /* 6: CU_TENSOR_MAP_DATA_TYPE_FLOAT16; 0: no interleave; 3: CU_TENSOR_MAP_SWIZZLE_128B;
       2: CU_TENSOR_MAP_L2_PROMOTION_L2_128B; 0: out-of-bounds elements read as zero */
    int r = encode(maps[0], 6, 4, (void *)x, xd, xs, xbox, steps, 0, 3, 2, 0);
    if (!r) r = encode(maps[1], 6, 2, (void *)w, wd, ws, wbox, ones, 0, 3, 2, 0);
    return r;
}
'''
GEMM90_DOC = r'''   Kernel (compile with NVRTC, mma.cuh given as a header, --gpu-architecture=sm_90a only,
   -DGEMM_TILE=0..6, or -DOUT_F32=1 (fp32 out, the 256 x 128 tile); names "sdiff_gemm_tma" and
   (fp16 out only) "sdiff_gemm_tma_geglu", extern "C", the same parameters):

     __global__ void sdiff_gemm_tma(const CUtensorMap ta, const CUtensorMap tb, const half *bias,
         const half *res, void *y, int M, int N, int KT, int tiles_n, int n_tiles, long long ldy,
         long long ldr, float alpha);

   y[m, n] = fp16(fp16(alpha * sum_k a[m, k] w[n, k] + bias[n]) + res[m, n]) (bias, res optional;
   res may be y), or with OUT_F32 y[m, n] = alpha * sum (fp32); _geglu: w has 2N rows and y[m, n]
   = fp16(h * gelu(g)) (+ res) of the fp16 outputs h = n and g = N + n of that linear layer. a
   [M][K] (row stride lda) and w (row stride ldw) as TMA tensor maps made by sdiff__cu_gemm_maps()
   below (16-byte aligned bases, row strides multiples of 8 elements; K, M, N need not be tile
   multiples). Launch (sdiff__cu_gemm_launch_dims below): split 1: a persistent grid of min(tiles,
   blocks that fit at once); split > 1: grid (split, tiles) in clusters of (split, 1, 1), K shared
   between a cluster's blocks. Block 384 threads (BM 256) or 256; dynamic shared memory sdiff__cu_gemm_smem(tile)
   bytes (above 48 KB: raise the function attribute first); the module exports __constant__ int
   sdiff_gemm_tma_cfg[4] = {BM, BN, threads, smem}. sdiff__cu_gemm_pick() chooses the tile and split. */
'''
GEMM90_HELPER = r'''
/* sdiff_gemm_tma's tiles (GEMM_TILE 0..6): {BM, BN}; BM 256: one block per SM, else two. */
#define SDIFF__CU_GEMM_TILES 7
static const int sdiff__cu_gemm_tiles[SDIFF__CU_GEMM_TILES][2] = {{128, 64}, {128, 128}, {256, 64}, {256, 128},
                                                                 {128, 80}, {256, 80}, {64, 80}};
/* The ring's depth of a tile: as many 64-wide K stages of the bm x 64 and bn x 64 operand tiles as
   fit beside the epilogue's [bm][bn + 8] fp16 tile, the mbarriers and 1024 bytes of alignment in
   the block's share of the SM's 227 KB, at most 12. */
static inline unsigned sdiff__cu_gemm_stages(int tile) {
    const int bm = sdiff__cu_gemm_tiles[tile][0], bn = sdiff__cu_gemm_tiles[tile][1];
    const unsigned fit = (227u * 1024u / (bm == 256 ? 1u : 2u) - 1024u - 256u - (unsigned)(bm * (bn + 8) * 2)) /
                         ((unsigned)(bm + bn) * 128u);
    return fit > 12 ? 12 : fit;
}
/* Dynamic shared memory of a tile: its ring, the epilogue tile, the mbarriers, the alignment. */
static inline unsigned sdiff__cu_gemm_smem(int tile) {
    const int bm = sdiff__cu_gemm_tiles[tile][0], bn = sdiff__cu_gemm_tiles[tile][1];
    return sdiff__cu_gemm_stages(tile) * (unsigned)(bm + bn) * 128u + (unsigned)(bm * (bn + 8) * 2) + 256u + 1024u;
}
/* Grid and block for y [M][N] with a tile and a split-K of split (see the kernel's doc): tiles
   (= *n_tiles, *tiles_n along N; with geglu a tile covers bn / 2 of y's columns). */
static inline void sdiff__cu_gemm_launch_dims(long long M, long long N, int geglu, int tile, int split, int n_sm,
                                              unsigned grid[3], unsigned *threads, int *tiles_n, int *n_tiles) {
    const int bm = sdiff__cu_gemm_tiles[tile][0], bn = sdiff__cu_gemm_tiles[tile][1] / (geglu ? 2 : 1),
              per_sm = bm == 256 ? 1 : 2;
    const long long tn = (N + bn - 1) / bn, tiles = ((M + bm - 1) / bm) * tn;
    *tiles_n = (int)tn;
    *n_tiles = (int)tiles;
    *threads = bm == 256 ? 384u : 256u;
    grid[0] = split > 1 ? (unsigned)split : (unsigned)(tiles < (long long)per_sm * n_sm ? tiles : (long long)per_sm * n_sm);
    grid[1] = split > 1 ? (unsigned)tiles : 1u;
    grid[2] = 1;
}
/* The tile and split-K (*split: 1, 2, 4 or 8, at most max_split: 1 without clusters) for y [M][N] =
   a [M][K] . w^T (geglu: w has 2N rows) on n_sm SMs: the least time of a cost model fitted to
   tools/kernels/bench_gemm.cu --cold's timings of every tile and split on an H100, each launch alone with L2 flushed, as a layer sees its
   weights in place (tools/kernels/fit_gemm_pick.py: median error 7%, its picks 1% above the best
   per shape; tools/PERF.md, S14). A block of tile t that sums kt K tiles takes kt * CK[t] us for
   its wgmmas (times the blocks sharing its SM: all but the 256-row tiles run two per SM; KS more
   per K tile when split, the SMs then all streaming at once), kt * CL / stages[t] for the loads its
   ring of stages[t] K tiles cannot hide, CE[t] for its epilogue, and CX[t] for a split's exchange;
   the blocks run in rounds of as many as fit at once (clusters of s must fit in a GPC: about n_sm /
   s of them, one fewer at s = 2, two fewer from s = 4), plus C0 for the launch. */
static inline int sdiff__cu_gemm_pick(long long M, long long N, long long K, int geglu, int n_sm, int max_split,
                                      int *split) {
    static const double C0 = 5.465, KS = 0.084, CL = 1.172,
                        CK[SDIFF__CU_GEMM_TILES] = {0.071, 0.288, 0.157, 0.334, 0.099, 0.186, 0.052},
                        CE[SDIFF__CU_GEMM_TILES] = {1.909, 3.040, 2.415, 4.499, 2.675, 3.254, 2.093},
                        CX[SDIFF__CU_GEMM_TILES] = {2.878, 3.408, 3.438, 4.064, 2.745, 3.450, 1.614};
    const long long kt = (K + 63) / 64;
    double best = 1e300;
    int best_tile = 0;
    *split = 1;
    for (int t = 0; t < SDIFF__CU_GEMM_TILES; t++)
        for (int s = 1; s <= 8 && s <= kt && s <= max_split; s *= 2) {
            const int bm = sdiff__cu_gemm_tiles[t][0], bn = sdiff__cu_gemm_tiles[t][1] / (geglu ? 2 : 1),
                      per_sm = bm == 256 ? 1 : 2, clusters = n_sm / s - (s >= 4 ? 2 : s == 2 ? 1 : 0);
            const long long units = ((M + bm - 1) / bm) * ((N + bn - 1) / bn) * s,
                            slots = (long long)per_sm * (clusters > 1 ? clusters : 1) * s,
                            rounds = (units + slots - 1) / slots, active = units < slots ? units : slots,
                            busy = (active + n_sm - 1) / n_sm, sharing = busy < per_sm ? busy : per_sm;
            const double ck = CK[t] + (s > 1 ? KS : 0.0), cx = s > 1 ? CX[t] : 0.0, ktb = (double)((kt + s - 1) / s),
                         us = C0 + (double)rounds * (ktb * ((double)sharing * ck + CL / sdiff__cu_gemm_stages(t)) + CE[t] + cx);
            if (us < best) { best = us; best_tile = t; *split = s; }
        }
    return best_tile;
}
/* The two tensor maps (CUtensorMap: 128 bytes each, 64-byte aligned) of sdiff_gemm_tma: a [M][K]
   with row stride lda and w [w_rows][K] with row stride ldw (elements), 2-D (K, rows) with boxes of
   64 x BM (a) and 64 x BN / 2 (w: the kernel loads a tile's w rows in two halves) of the tile,
   128-byte swizzle, zeros outside. Returns 0, or the first failing CUresult (bases 16-byte aligned,
   lda and ldw multiples of 8). */
static inline int sdiff__cu_gemm_maps(sdiff__cu_tmap_encode_fn encode, void *maps[2], const void *a, long long lda,
                                      long long M, const void *w, long long ldw, long long w_rows, long long K, int tile) {
    const unsigned ones[2] = {1, 1}, abox[2] = {64, (unsigned)sdiff__cu_gemm_tiles[tile][0]},
                   wbox[2] = {64, (unsigned)sdiff__cu_gemm_tiles[tile][1] / 2};
    const unsigned long long ad[2] = {(unsigned long long)K, (unsigned long long)M},
                             as[1] = {(unsigned long long)lda * 2},
                             wd[2] = {(unsigned long long)K, (unsigned long long)w_rows},
                             ws[1] = {(unsigned long long)ldw * 2};
    /* 6: CU_TENSOR_MAP_DATA_TYPE_FLOAT16; 0: no interleave; 3: CU_TENSOR_MAP_SWIZZLE_128B;
       2: CU_TENSOR_MAP_L2_PROMOTION_L2_128B; 0: out-of-bounds elements read as zero */
    int r = encode(maps[0], 6, 2, (void *)a, ad, as, abox, ones, 0, 3, 2, 0);
    if (!r) r = encode(maps[1], 6, 2, (void *)w, wd, ws, wbox, ones, 0, 3, 2, 0);
    return r;
}
'''
KERNELS = [
    dict(cu='attn_kernel.cu', var='sdiff__cu_attention_src', header='attn_kernel.h', guard='SDIFF_ATTN_KERNEL_H',
         marker='flash attention', helper_fn='sdiff__cu_attention_launch_dims', doc=ATTN_DOC, helper=ATTN_HELPER,
         title='attn_kernel.h - sdiff CUDA attention forward kernel (FlashAttention-2 style), as NVRTC source.',
         intro='The FlashAttention-2-style kernel (mma.sync m16n8k16, fp16 in, fp32 accumulate).'),
    dict(cu='attn_kernel_sm90.cu', var='sdiff__cu_attention_sm90_src', header='attn_kernel_sm90.h',
         guard='SDIFF_ATTN_KERNEL_SM90_H', marker='flash attention (TMA, wgmma)',
         helper_fn='sdiff__cu_attention_sm90_launch_dims', doc=ATTN90_DOC, helper=ATTN90_HELPER,
         title='attn_kernel_sm90.h - sdiff CUDA attention forward kernel for Hopper (wgmma), as NVRTC source.',
         intro='The FlashAttention-3-style kernel on Hopper (TMA, mbarriers, wgmma; fp16 in, fp32 accumulate; sm_90a only).',
         helper_fn2='sdiff__cu_attention_sm90_tmaps'),
    dict(cu='conv_kernel.cu', var='sdiff__cu_conv2d_src', header='conv_kernel.h', guard='SDIFF_CONV_KERNEL_H',
         marker='implicit-GEMM convolution', helper_fn='sdiff__cu_conv2d_launch_dims', doc=CONV_DOC, helper_fn2='sdiff__cu_conv2d_pick_tile',
         helper=CONV_HELPER,
         title='conv_kernel.h - sdiff CUDA implicit-GEMM convolution kernel, as NVRTC source.',
         intro='The implicit-GEMM convolution (mma.sync m16n8k16, or wgmma on sm_90a; NHWC fp16, fp32 accumulate).'),
    dict(cu='conv_kernel_sm90.cu', var='sdiff__cu_conv2d_tma_src', header='conv_kernel_sm90.h',
         guard='SDIFF_CONV_KERNEL_SM90_H', marker='implicit-GEMM convolution (TMA, wgmma)',
         helper_fn='sdiff__cu_conv2d_tma_launch_dims', doc=CONV90_DOC, helper=CONV90_HELPER,
         helper_fns_int=['sdiff__cu_conv2d_tma_pick', 'sdiff__cu_conv2d_tma_box', 'sdiff__cu_conv2d_tma_maps'],
         title='conv_kernel_sm90.h - sdiff CUDA implicit-GEMM convolution for Hopper (TMA, wgmma), as NVRTC source.',
         intro='The implicit-GEMM convolution on Hopper (a TMA producer, mbarriers, wgmma consumers; sm_90a only).'),
    dict(cu='gemm_kernel_sm90.cu', var='sdiff__cu_gemm_tma_src', header='gemm_kernel_sm90.h',
         guard='SDIFF_GEMM_KERNEL_SM90_H', marker='GEMM (TMA, wgmma)',
         helper_fn='sdiff__cu_gemm_launch_dims', doc=GEMM90_DOC, helper=GEMM90_HELPER,
         helper_fns_int=['sdiff__cu_gemm_pick', 'sdiff__cu_gemm_maps'],
         title='gemm_kernel_sm90.h - sdiff CUDA GEMM for Hopper (TMA, wgmma), as NVRTC source.',
         intro='The GEMM on Hopper (a TMA producer, mbarriers, wgmma consumers, persistent; sm_90a only).'),
]


def region(lib, marker, text):
    begin = '/* BEGIN GENERATED: %s (tools/kernels/gen_kernels.py) */\n' % marker
    end = '/* END GENERATED: %s */\n' % marker
    if begin not in lib or end not in lib:
        sys.exit('sdiff_cuda.h has no GENERATED markers for %s' % marker)
    i, j = lib.index(begin), lib.index(end)
    return lib[:i] + begin + text + lib[j:]


MMA_DOC = '''/* The tensor-core helpers the kernels below #include as "mma.cuh" (NVRTC gets this string as an
   in-memory header of that name). */
'''
TMAP_TYPE = r'''/* cuTensorMapEncodeTiled's type (cuda.h's enums as int, cuuint64_t as unsigned long long): the TMA
   kernels' tensor maps (attn_kernel_sm90.cu, conv_kernel_sm90.cu) are made with it on the host. */
typedef int (*sdiff__cu_tmap_encode_fn)(void *map, int dtype, unsigned rank, void *addr, const unsigned long long *dims,
                                        const unsigned long long *strides, const unsigned *box,
                                        const unsigned *elem_strides, int interleave, int swizzle, int l2_promotion,
                                        int oob_fill);
'''


def main():
    lib_path = os.path.join(repo, 'sdiff_cuda.h')
    lib = open(lib_path).read()
    os.makedirs(os.path.join(repo, 'build'), exist_ok=True)
    mma = 'static const char sdiff__cu_mma_src[] =\n%s;\n' % c_string('mma.cuh')
    open(os.path.join(repo, 'build', 'mma_kernel.h'), 'w').write(
        '/* mma_kernel.h - GENERATED by tools/kernels/gen_kernels.py from tools/kernels/mma.cuh. */\n'
        '#ifndef SDIFF_MMA_KERNEL_H\n#define SDIFF_MMA_KERNEL_H\n' + MMA_DOC + mma + TMAP_TYPE + '#endif\n')
    new_lib = region(lib, 'tensor-core helpers', MMA_DOC + mma + TMAP_TYPE)
    for k in KERNELS:
        body = 'static const char %s[] =\n%s;\n' % (k['var'], c_string(k['cu']))
        hdr = ('/* %s\n   GENERATED by tools/kernels/gen_kernels.py from tools/kernels/%s: edit that, rerun.\n\n'
               % (k['title'], k['cu']) + k['doc'] + '#ifndef %s\n#define %s\n#include "mma_kernel.h"\n\n'
               % (k['guard'], k['guard']) + body +
               k['helper'] + '\n#endif /* %s */\n' % k['guard'])
        open(os.path.join(repo, 'build', k['header']), 'w').write(hdr)
        helper = k['helper'].replace('static inline void ' + k['helper_fn'], 'SDIFF__PRIVATE void ' + k['helper_fn'])
        for fn in ([k['helper_fn2']] if 'helper_fn2' in k else []) + k.get('helper_fns_int', []):
            helper = helper.replace('static inline int ' + fn, 'SDIFF__PRIVATE int ' + fn)
        new_lib = region(new_lib, k['marker'], '/* ' + k['intro'] + '\n' + k['doc'] + body + helper)
    if '--check' in sys.argv:
        if new_lib != lib:
            sys.exit('sdiff_cuda.h is stale: run python3 tools/kernels/gen_kernels.py')
        print('sdiff_cuda.h matches the kernel sources')
        return
    if new_lib != lib:
        open(lib_path, 'w').write(new_lib)
    print('wrote build/mma_kernel.h, %s and the regions in sdiff_cuda.h' % ', '.join('build/' + k['header'] for k in KERNELS))


main()
