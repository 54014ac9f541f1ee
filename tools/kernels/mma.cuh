// mma.cuh - the device helpers sdiff's NVRTC kernels share: pdl_begin (every kernel; the library's
// prelude includes this file) and the tensor-core ones (attn_kernel.cu, attn_kernel_sm90.cu,
// conv_kernel.cu): shared-memory addresses, cp.async, ldmatrix, mma.sync m16n8k16 (fp16 in, fp32
// accumulate), fp16x2 packing and, for sm_90a, wgmma with its descriptors and fences. Plain PTX through inline asm: no CUDA headers, so NVRTC needs no include path.
// The library hands it to NVRTC as an in-memory header named "mma.cuh" (tools/kernels/gen_kernels.py).
#ifndef SDIFF_MMA_CUH
#define SDIFF_MMA_CUH
typedef unsigned short sd_half;
typedef unsigned int u32;
// Each kernel uses some of these: "unused" keeps NVRTC quiet about the rest.
#define MMA_FN static __device__ __forceinline__ __attribute__((unused))

// Programmatic dependent launch (Hopper and later; nothing before): the library launches its
// kernels with programmatic stream serialization, so a kernel's blocks may be scheduled while
// the kernel before it drains, instead of after it has finished and the launch has gone
// through. Every kernel calls pdl_begin() before it touches memory that earlier work may write
// (the norms read their gamma and beta, model parameters, before it): griddepcontrol.wait
// returns once the previous grid has completed and its writes are visible (at once when there
// is no such dependency), then launch_dependents lets the next kernel be launched; its blocks
// take SMs only as this grid's last blocks leave them, and wait in their own pdl_begin(). What a
// kernel does before it (the TMA kernels' mbarrier setup and tmap_prefetch) overlaps the previous
// kernel's tail (a UNet step 5.69 -> 5.60 ms on two machines, no change on two others: PERF.md S14).
MMA_FN void pdl_begin() {
#if __CUDA_ARCH__ >= 900
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

MMA_FN u32 smem_addr(const void *p) {
    u32 r;
    asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(r) : "l"(p));
    return r;
}
// 16-byte async copy global -> shared; bytes = 0 writes 16 zero bytes (src not read).
MMA_FN void cp_async16(u32 dst, const void *src, int bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes) : "memory");
}
MMA_FN void cp_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> MMA_FN void cp_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
MMA_FN void ldsm_x4(u32 a, u32 &r0, u32 &r1, u32 &r2, u32 &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a) : "memory");
}
MMA_FN void ldsm_x4_t(u32 a, u32 &r0, u32 &r1, u32 &r2, u32 &r3) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(a) : "memory");
}
// d += a(16x16 row-major fp16) * b(16x8, k-major "col" fp16), fp32 accumulators.
MMA_FN void mma16816(float *d, const u32 *a, u32 b0, u32 b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
// d += a(16x8 row-major fp16, a[0..1]) * b(8x8, k-major fp16): the last 8 of a reduction that is
// 8 more than a multiple of 16 (attention at D = 40, 72), at half an m16n8k16's cost.
MMA_FN void mma1688(float *d, const u32 *a, u32 b0) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5}, {%6}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(b0));
}
// 2^x (MUFU, approximate; flushes denormals): the flash-attention softmax in the log2 domain.
MMA_FN float ex2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}
// One fp16 (16-bit storage) -> float.
MMA_FN float half_to_float(sd_half h) {
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}
// Two floats -> packed fp16x2, lo in the low 16 bits (the lower column / k index).
MMA_FN u32 pack_h2(float lo, float hi) {
    u32 r;
    asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}
// GELU, the exact (erf) form: PyTorch's default, the GEGLU of SD's feed-forward.
MMA_FN float gelu_erf(float x) { return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f)); }
// GEGLU's output from the fp32 sums of its two halves, rounded as the unfused route rounds them (a
// linear layer's fp16 outputs h and g, then h * gelu(g) in fp32).
MMA_FN float geglu_out(float h, float g) {
    const u32 hg = pack_h2(h, g);
    return half_to_float((sd_half)(hg & 0xffffu)) * gelu_erf(half_to_float((sd_half)(hg >> 16)));
}
// The convolution epilogues' last step: 8 fp16 outputs (v: four packed pairs, lowest first) to
// y[0..7], each plus res[e] when res is given (rounded as a separate fp16 add). left: the outputs
// left in the row from y (those past it are not written); vec: one 16-byte load and store (y and
// res 16-byte aligned, left >= 8).
// v (8 fp16 as four packed pairs, lowest first) += r (8 fp16, the same order), each sum rounded to fp16.
MMA_FN void add_h8(u32 *v, uint4 r) {
    const u32 rw[4] = {r.x, r.y, r.z, r.w};
#pragma unroll
    for (int e = 0; e < 4; ++e)
        v[e] = pack_h2(half_to_float((sd_half)(v[e] & 0xffffu)) + half_to_float((sd_half)(rw[e] & 0xffffu)),
                       half_to_float((sd_half)(v[e] >> 16)) + half_to_float((sd_half)(rw[e] >> 16)));
}
MMA_FN void store_out8(sd_half *y, const sd_half *res, int left, u32 *v, int vec) {
    if (vec) {
        if (res) add_h8(v, *(const uint4 *)res);
        uint4 ov;
        ov.x = v[0]; ov.y = v[1]; ov.z = v[2]; ov.w = v[3];
        *(uint4 *)y = ov;
        return;
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        if (e >= left) break;
        sd_half h = (sd_half)((v[e >> 1] >> ((e & 1) * 16)) & 0xffffu);
        if (res) h = (sd_half)(pack_h2(half_to_float(h) + half_to_float(res[e]), 0.f) & 0xffffu);
        y[e] = h;
    }
}
// ---- Thread block clusters (sm_90 and later): group_norm_cluster's exchange, conv_kernel_sm90.cu's
// split-K. Without a cluster launch a block is a cluster of one.
#if __CUDA_ARCH__ >= 900
MMA_FN u32 cluster_rank() { u32 r; asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r)); return r; }
MMA_FN u32 cluster_size() { u32 r; asm volatile("mov.u32 %0, %%cluster_nctarank;" : "=r"(r)); return r; }
MMA_FN void cluster_arrive() { asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory"); }
MMA_FN void cluster_wait() { asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); }
// The four floats at shared address a (16-byte aligned) in the shared memory of the cluster's block `rank`.
MMA_FN float4 cluster_ld4(u32 a, u32 rank) {
    u32 r;
    float4 v;
    asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(rank));
    asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "r"(r) : "memory");
    return v;
}
MMA_FN float4 cluster_load4(const float *p, u32 rank) { return cluster_ld4(smem_addr(p), rank); }
// The producer warpgroup's part in a split-K exchange (gemm_kernel_sm90.cu, conv_kernel_sm90.cu):
// the consumers pass two cluster barriers (partials written; partials read), and every thread of
// the cluster must arrive at both, the producer's idle ones included.
MMA_FN void split_k_producer_sync() {
    __syncwarp();
    cluster_arrive();
    cluster_wait();
    cluster_arrive();
    cluster_wait();
}
// The consumers' part: a warpgroup's accumulators (TILES 64-row wgmma tiles of COLS fp32 columns, in
// the fragment layout below: rows g, g+8 of each warp's 16, columns 8j + 2t4) stored as rows row0 +
// 64 mt (+ 8) of the fp32 partial tile at shared address base, part_str floats a row, then the
// first cluster barrier: the partials are visible to the cluster.
template <int TILES, int COLS>
MMA_FN void split_k_store_partials(u32 base, float (*acc)[COLS / 2], int row0, int t4, int part_str) {
#pragma unroll
    for (int mt = 0; mt < TILES; ++mt)
#pragma unroll
        for (int j = 0; j < COLS / 8; ++j) {
            const float *d = &acc[mt][4 * j];
            const u32 a0 = base + ((row0 + mt * 64) * part_str + j * 8 + 2 * t4) * 4, a1 = a0 + 8 * part_str * 4;
            asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a0), "f"(d[0]), "f"(d[1]) : "memory");
            asm volatile("st.shared.v2.f32 [%0], {%1, %2};\n" ::"r"(a1), "f"(d[2]), "f"(d[3]) : "memory");
        }
    cluster_arrive();
    cluster_wait();
}
#endif
// ---- Hopper (sm_90a only): wgmma, the warpgroup (4 warps, 128 threads) tensor-core instruction.
// A and B come from shared memory through 64-bit descriptors; D (fp32) stays in registers, laid
// out per warp like mma.sync's m16n8 accumulators: warp w of the group owns rows 16w..16w+15,
// d[4j..4j+3] = rows g, g, g+8, g+8 (g = lane/4), columns 8j + 2(lane%4) + {0,1,0,1}.
// wgmma runs asynchronously: issue after wgmma_fence(), then wgmma_commit(), and read D only
// after wgmma_wait<n>() has retired its group.
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
typedef unsigned long long u64;
// Shared-memory operand descriptors. The operand is built from core matrices of 8 rows x 16
// bytes. Without swizzle (layout type 0) each core matrix is 128 contiguous bytes; lbo is the
// byte distance between core matrices adjacent along K, sbo along M/N. With the 128-byte swizzle
// (layout type 1; rows of 64 fp16, 16-byte chunk c of row r stored at chunk c ^ (r & 7), the tile
// 1024-byte aligned) rows are 128 bytes apart and sbo is the 8-row group, 1024 bytes. K-major
// (wgmma_desc_sw128: rows along M/N, 64 of K in a row): lbo is unused (1); the k-th 16-wide step
// starts 32*k bytes further (the hardware applies the swizzle to the address it computes).
// MN-major (wgmma_desc_sw128_mn, read with the transpose bit: rows along K, 64 of M/N in a row):
// 16 of K are two 8-row groups (+2048 bytes a step), and an M/N extent over 64 continues in the
// next block of rows, lbo bytes further.
MMA_FN u64 wgmma_desc(u32 saddr, u32 lbo, u32 sbo) {
    return (u64)((saddr & 0x3FFFFu) >> 4) | ((u64)((lbo & 0x3FFFFu) >> 4) << 16) | ((u64)((sbo & 0x3FFFFu) >> 4) << 32);
}
MMA_FN u64 wgmma_desc_sw128(u32 saddr) { return wgmma_desc(saddr, 16, 1024) | ((u64)1 << 62); }
MMA_FN u64 wgmma_desc_sw128_mn(u32 saddr, u32 lbo) { return wgmma_desc(saddr, lbo, 1024) | ((u64)1 << 62); }
// Generic-proxy shared-memory writes (st.shared, cp.async) must be fenced before wgmma (async proxy) reads them.
MMA_FN void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
MMA_FN void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
MMA_FN void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> MMA_FN void wgmma_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins accumulator registers in place: the compiler must not read, move or reuse them across a
// point where an in-flight wgmma may still write them (before issue and after the wait).
template <int R> MMA_FN void wgmma_pin(float *d) {
#pragma unroll
    for (int i = 0; i < R; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
// A CUtensorMap (cuda.h): 128 opaque bytes, made on the host by cuTensorMapEncodeTiled.
struct __align__(64) sd_tmap { unsigned long long v[16]; };
// ---- mbarriers (shared::cta) and the TMA (attn_kernel_sm90.cu, conv_kernel_sm90.cu).
MMA_FN void mbar_init(u32 bar, u32 count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
MMA_FN void mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
MMA_FN void mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the barrier's phase with this parity has completed (a fresh barrier counts its
// phase before 0, parity 1, as completed: producers start there).
MMA_FN void mbar_wait(u32 bar, u32 parity) {
    asm volatile("{\n.reg .pred p;\nWAIT_%=:\n"
                 "mbarrier.try_wait.parity.shared::cta.b64 p, [%0], %1;\n"
                 "@!p bra WAIT_%=;\n}\n" ::"r"(bar), "r"(parity) : "memory");
}
// One box of a 4-D or 2-D tensor map (coordinates innermost first, outside the tensor: zeros)
// into shared memory; completes `bar`'s transaction bytes.
MMA_FN void tma_load4(u32 dst, const sd_tmap *map, int c0, int c1, int c2, int c3, u32 bar) {
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
                 ::"r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(bar) : "memory");
}
MMA_FN void tma_load2(u32 dst, const sd_tmap *map, int c0, int c1, u32 bar) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3}], [%4];\n"
                 ::"r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(bar) : "memory");
}
// A tensor map's descriptor fetched ahead of the first copy that uses it (the TMA kernels do it
// before pdl_begin, while the previous kernel drains).
MMA_FN void tmap_prefetch(const sd_tmap *map) { asm volatile("prefetch.tensormap [%0];\n" ::"l"(map) : "memory"); }
#define WG_D4(d, i) "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3])
#define WG_D8(d, i) WG_D4(d, i), WG_D4(d, i + 4)
// d (64 x N, fp32) += A (64 x 16, K-major descriptor a) * B (N x 16, K-major descriptor b);
// scale_d = 0: d = A*B. N: 64, 80, 128, 160, 256.
template <int N> MMA_FN void wgmma_ss(float *d, u64 a, u64 b, int scale_d) {
    if constexpr (N == 64)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24) : "l"(a), "l"(b), "r"(scale_d));
    else if constexpr (N == 80)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %42, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n80k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39}, %40, %41, p, 1, 1, 0, 0;\n}\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32) : "l"(a), "l"(b), "r"(scale_d));
    else if constexpr (N == 128)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56) : "l"(a), "l"(b), "r"(scale_d));
    else if constexpr (N == 160)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %82, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n160k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79}, %80, %81, p, 1, 1, 0, 0;\n}\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56), WG_D8(d, 64), WG_D8(d, 72) : "l"(a), "l"(b), "r"(scale_d));
    else if constexpr (N == 256)
        asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
                     "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 {"
                     "%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63,%64,%65,%66,%67,%68,%69,%70,%71,%72,%73,%74,%75,%76,%77,%78,%79,%80,%81,%82,%83,%84,%85,%86,%87,%88,%89,%90,%91,%92,%93,%94,%95,%96,%97,%98,%99,%100,%101,%102,%103,%104,%105,%106,%107,%108,%109,%110,%111,%112,%113,%114,%115,%116,%117,%118,%119,%120,%121,%122,%123,%124,%125,%126,%127}, %128, %129, p, 1, 1, 0, 0;\n}\n"
                     : WG_D8(d, 0), WG_D8(d, 8), WG_D8(d, 16), WG_D8(d, 24), WG_D8(d, 32), WG_D8(d, 40), WG_D8(d, 48), WG_D8(d, 56), WG_D8(d, 64), WG_D8(d, 72), WG_D8(d, 80), WG_D8(d, 88), WG_D8(d, 96), WG_D8(d, 104), WG_D8(d, 112), WG_D8(d, 120) : "l"(a), "l"(b), "r"(scale_d));
    else static_assert(N == 64, "wgmma_ss: N must be 64, 80, 128, 160 or 256");
}
#endif
#endif
