// mma.cuh - the tensor-core helpers sdiff's NVRTC kernels share (attn_kernel.cu, conv_kernel.cu):
// shared-memory addresses, cp.async, ldmatrix, mma.sync m16n8k16 (fp16 in, fp32 accumulate) and
// fp16x2 packing. Plain PTX through inline asm: no CUDA headers, so NVRTC needs no include path.
// The library hands it to NVRTC as an in-memory header named "mma.cuh" (tools/kernels/gen_kernels.py).
#ifndef SDIFF_MMA_CUH
#define SDIFF_MMA_CUH
typedef unsigned short sd_half;
typedef unsigned int u32;
// Each kernel uses some of these: "unused" keeps NVRTC quiet about the rest.
#define MMA_FN static __device__ __forceinline__ __attribute__((unused))

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
#endif
